//! The start-up check and completion: each torrent's pieces already on
//! disk are hashed a budget of bytes per pass, and a torrent whose last
//! piece is verified is synced and reported.
//!
//! Layer 2: blocking disk reads through layer-1 storage, decisions in the
//! torrent core ([`crate::torrent::Torrent::handle_existing_piece`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Session, TorrentId};
use crate::error::Error;
use crate::storage::PieceHashing;

/// How a complete torrent got there ([`Session::completion`]): what a
/// summary line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where its data is: the file of a single-file torrent, the top
    /// directory of a multi-file one.
    pub path: PathBuf,
    /// Its size in bytes.
    pub total_bytes: u64,
    /// Payload bytes downloaded by this session (0: everything was on disk).
    pub downloaded_bytes: u64,
    /// From its start in this session (start-up check included) to its
    /// last piece verified.
    pub took: Duration,
}

impl Session {
    /// How torrent `id` completed, or `None` while it is incomplete (or
    /// not in the session).
    pub fn completion(&self, id: TorrentId) -> Option<Completion> {
        let slot = self.torrents.get(id)?;
        let completed_at = slot.completed_at?;
        Some(Completion {
            path: slot.dest.join(&slot.meta.name),
            total_bytes: slot.meta.total_len(),
            downloaded_bytes: slot.torrent.stats().downloaded,
            took: completed_at.saturating_duration_since(slot.started),
        })
    }

    /// Start-up check phase: verifies a slice of the pieces already on
    /// disk, so a restarted or complete download does not fetch what it
    /// has. One budget of `Config::check_bytes_per_pass` bytes per pass is
    /// shared by every torrent, spent in torrent order (so torrents become
    /// ready one after another): with a budget each, a thousand torrents
    /// would hash for seconds in one pass while no peer is answered.
    pub(super) fn check_existing_data(&mut self, now: Instant) {
        let mut budget = self.config.check_bytes_per_pass.max(1);
        for tid in self.torrent_ids() {
            if budget == 0 {
                return;
            }
            if self
                .torrents
                .get(tid)
                .is_some_and(|s| s.checking.is_some() && !s.paused)
            {
                budget = self.check_torrent_data(tid, budget, now);
            }
        }
    }

    /// Checks torrent `tid`'s pieces on disk with up to `budget` bytes of
    /// hashing; returns what is left of the budget.
    ///
    /// Pieces already in `have` when the check starts are the ones the
    /// resume state vouches for: they are skipped, not hashed. Every other
    /// piece is hashed (a huge one across several passes); one that fails
    /// is not ours, whatever was believed before. Nothing else changes
    /// `have` meanwhile: no block is requested until the check is done.
    fn check_torrent_data(&mut self, tid: TorrentId, budget: u32, now: Instant) -> u32 {
        let Some(slot) = self.torrents.get_mut(tid) else {
            return budget;
        };
        let Some(mut index) = slot.checking else {
            return budget;
        };
        let count = slot.meta.layout.piece_count();
        let mut budget = budget;
        while index < count && budget > 0 {
            let job = match slot.check_job.take() {
                Some(job) => job,
                None => {
                    let piece = slot.meta.layout.piece(index);
                    let Some(piece) = piece.filter(|p| !slot.torrent.have().has(p.get())) else {
                        index += 1;
                        continue;
                    };
                    PieceHashing::new(piece)
                }
            };
            let mut job = job;
            let piece = job.piece();
            let Some(expected) = slot.meta.piece_hash(piece).copied() else {
                index += 1;
                continue;
            };
            let step = budget.min(slot.meta.layout.piece_size(piece));
            match slot.storage.verify_step(&mut job, step, &expected) {
                Ok(None) => slot.check_job = Some(job),
                Ok(Some(ok)) => {
                    slot.resume_dirty |= !ok && slot.torrent.have().has(piece.get());
                    slot.torrent.handle_existing_piece(piece.get(), ok);
                    index += 1;
                }
                Err(e) => {
                    self.fail_torrent(tid, Error::Storage(e));
                    return 0;
                }
            }
            budget = budget.saturating_sub(step);
        }
        // Files already on disk are judged once all their pieces are
        // checked: before anything is written to them.
        if !self.judge_existing_files(tid, index) {
            return 0;
        }
        let Some(slot) = self.torrents.get_mut(tid) else {
            return budget;
        };
        if index < count {
            slot.checking = Some(index);
            return budget;
        }
        slot.checking = None;
        let have = slot.torrent.have().count_ones();
        let hashed = slot.torrent.stats().pieces_checked;
        log::info!(
            "{}: checked existing data: {have} of {count} pieces verified ({hashed} hashed, {} trusted from the resume state)",
            slot.meta.name,
            count.saturating_sub(hashed)
        );
        // What the hashing found is saved soon, so a crash does not cost it again.
        slot.resume_dirty |= hashed > 0;
        let files: Vec<usize> = (0..slot.meta.files.len()).collect();
        if let Err(e) = slot.storage.create_empty_files() {
            self.fail_torrent(tid, Error::Storage(e));
        }
        self.finish_files(tid, &files);
        if let Some(slot) = self.torrents.get_mut(tid) {
            slot.torrent.handle_check_done();
        }
        self.apply_actions(tid, now);
        budget
    }

    /// Notes each torrent that has just verified its last piece, and each
    /// that has met its seeding limit; ends the run when every torrent is
    /// complete and, if seeding, has met its limit (never without one).
    pub(super) fn check_finished(&mut self, now: Instant) {
        for tid in self.torrent_ids() {
            self.check_torrent_finished(tid, now);
        }
        if self.config.seed_limits().is_set() {
            self.check_seed_limits(now);
        }
        let seeds = self.config.seeds();
        let all_done = self
            .torrents
            .iter()
            .all(|(_, s)| s.completed_at.is_some() && (!seeds || s.seed_done));
        if all_done && !self.torrents.is_empty() && !self.config.keep_running {
            self.stopping = true;
        }
    }

    /// Stops seeding each complete torrent that has met a seeding limit
    /// (`Config::seed_ratio`, `Config::seed_time`): it is paused (its peers
    /// are closed, it accepts and dials nobody) and marked done. Not while
    /// blocks already counted as uploaded wait in a write buffer: closing
    /// then would cut off the peer that made the ratio.
    fn check_seed_limits(&mut self, now: Instant) {
        let limits = self.config.seed_limits();
        let sending: std::collections::HashSet<TorrentId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.write_buf.is_empty())
            .filter_map(|(_, c)| c.torrent)
            .collect();
        for tid in self.torrent_ids() {
            if sending.contains(&tid) {
                continue;
            }
            let Some(slot) = self.torrents.get_mut(tid) else {
                continue;
            };
            let Some(since) = slot.completed_at.filter(|_| !slot.seed_done) else {
                continue;
            };
            let uploaded = slot.torrent.stats().uploaded;
            let seeded_for = now.saturating_duration_since(since);
            if let Some(met) = limits.met(uploaded, slot.meta.total_len(), seeded_for) {
                slot.seed_done = true;
                log::info!("{}: {met}; stopped seeding", slot.meta.name);
                self.pause(tid);
            }
        }
    }

    /// Torrent `tid` has just verified its last piece: sync its files, say
    /// so, and tell its trackers.
    fn check_torrent_finished(&mut self, tid: TorrentId, now: Instant) {
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        if slot.checking.is_some() || slot.completed_at.is_some() || !slot.torrent.is_complete() {
            return;
        }
        slot.completed_at = Some(now);
        if slot.torrent.stats().downloaded == 0 {
            log::info!(
                "{}: all {} pieces verified on disk",
                slot.meta.name,
                slot.meta.layout.piece_count()
            );
            self.report_completion(tid);
            return;
        }
        if let Err(e) = slot.storage.sync_all() {
            return self.fail_torrent(tid, Error::Storage(e));
        }
        let elapsed = now.saturating_duration_since(slot.started).as_secs_f64();
        log::info!("{}: download complete in {elapsed:.1} s", slot.meta.name);
        if self.torrents.iter().all(|(_, s)| s.torrent.is_complete()) {
            let snapshot = self.status_snapshot(now);
            self.status.finish_line(&snapshot, now);
        }
        self.report_completion(tid);
        self.tell_trackers_complete(tid, now);
    }

    /// Hands torrent `tid`'s [`Completion`] to the completion callback,
    /// after ending an in-place status line so the caller's output starts
    /// on a fresh line.
    fn report_completion(&mut self, tid: TorrentId) {
        let Some(done) = self.completion(tid) else {
            return;
        };
        if let Some(callback) = self.completed.as_mut() {
            self.status.clear();
            callback(tid, &done);
        }
    }
}
