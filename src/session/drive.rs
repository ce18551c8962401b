//! Driving the torrent core: the session carries out what
//! [`crate::torrent::Torrent`] asks for, and runs its phases.
//!
//! Layer 2. After every input to the core (a handshake, a message, a
//! phase), `apply_actions` drains its queue: messages go into connection
//! write buffers, closes mark connections, whole pieces are hashed from
//! disk (large ones a slice per pass, `verify_pieces`), digests of blocks
//! are read for the smart ban, verified pieces finish their files, and
//! the core's notes become `--trace` lines.

use std::time::Instant;

use super::{Session, TorrentId};
use crate::error::Error;
use crate::hash::Sha1Hash;
use crate::metainfo::PieceIndex;
use crate::storage::{PieceHashing, StorageError};
use crate::torrent::{Action, BlockDigest, Note};

impl Session {
    /// Carries out every action torrent `tid`'s core has queued.
    pub(super) fn apply_actions(&mut self, tid: TorrentId, now: Instant) {
        loop {
            let Some(action) = self
                .torrents
                .get_mut(tid)
                .and_then(|s| s.torrent.poll_action())
            else {
                return;
            };
            match action {
                Action::Send { peer, message } if super::web_seed::web_seed_of(peer).is_some() => {
                    self.web_seed_send(tid, peer, message);
                }
                Action::Close { peer, reason } if super::web_seed::web_seed_of(peer).is_some() => {
                    self.web_seed_close(tid, peer, &reason, now);
                }
                Action::Send { peer, message } => {
                    if let Some(conn) = self.conns.get_mut(peer).filter(|c| c.is_active()) {
                        conn.send(&message.as_message(), now);
                    }
                }
                Action::Close { peer, reason } => {
                    if let Some(conn) = self.conns.get_mut(peer) {
                        conn.close(reason);
                    }
                }
                Action::CheckPiece { piece } => self.verify_piece(tid, piece),
                Action::DigestBlocks {
                    piece,
                    blocks,
                    purpose,
                } => match self.block_digests(tid, piece, &blocks) {
                    Ok(digests) => {
                        if let Some(slot) = self.torrents.get_mut(tid) {
                            slot.torrent.handle_block_digests(piece, purpose, digests);
                        }
                    }
                    Err(e) => self.fail_torrent(tid, Error::Storage(e)),
                },
                Action::PieceVerified { piece } => {
                    let Some(slot) = self.torrents.get_mut(tid) else {
                        return;
                    };
                    slot.resume_dirty = true;
                    let files: Vec<usize> = slot
                        .meta
                        .layout
                        .piece_spans(piece)
                        .iter()
                        .map(|s| s.file)
                        .collect();
                    self.finish_files(tid, &files);
                }
                Action::MetadataReceived { info } => self.metadata_arrived(tid, &info),
                Action::Note(note) => self.trace_note(note, now),
            }
        }
    }

    /// Writes one of the core's notes to the trace, stamped with the phase.
    fn trace_note(&mut self, note: Note, now: Instant) {
        let Some((tracer, _)) = self.tracer.as_mut() else {
            return;
        };
        let phase = self.phase;
        match note {
            Note::Choke { addr, unchoke, why } => tracer.choke(now, phase, addr, unchoke, &why),
            Note::Pick { addr, piece, why } => tracer.pick(now, phase, addr, piece, &why),
            Note::Hash { piece, ok } => tracer.hash(now, phase, piece, ok),
            Note::HaveBroadcast { piece, peers } => tracer.have_broadcast(now, phase, piece, peers),
            Note::Timeout { addr, what } => tracer.timeout(now, phase, addr, what),
        }
    }

    /// Request phase: each core fills its unchoking peers' pipelines,
    /// within the download limit they share. The torrents take turns going
    /// first, so a limit's tokens do not always go to the same one.
    pub(super) fn request_blocks(&mut self, now: Instant) {
        let mut order = self.torrent_ids();
        if order.is_empty() {
            return;
        }
        self.request_turn = (self.request_turn + 1) % order.len();
        order.rotate_left(self.request_turn);
        for tid in order {
            let Some(slot) = self.torrents.get_mut(tid) else {
                continue;
            };
            if let Some(ready) = slot.torrent.request_blocks(now, self.down_limit.as_mut()) {
                self.throttle_until(ready);
                return;
            }
        }
    }

    /// Send-haves phase: each core tells its peers about new pieces.
    pub(super) fn send_haves(&mut self, _now: Instant) {
        for (_, slot) in &mut self.torrents {
            slot.torrent.send_haves();
        }
    }

    /// PEX phase (BEP 11), once a second with the housekeeping: each core
    /// sends the peers whose turn has come (at most one message a minute
    /// each) the connected peers joined and left since their last message.
    /// Only queues messages; never blocks.
    pub(super) fn send_pex(&mut self, now: Instant) {
        for (_, slot) in &mut self.torrents {
            if !slot.paused {
                slot.torrent.send_pex(now);
            }
        }
    }

    /// Gives each of torrent `tid`'s `files` whose pieces are all verified
    /// its real name (dropping the `.part` suffix).
    pub(super) fn finish_files(&mut self, tid: TorrentId, files: &[usize]) {
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        for &file in files {
            let complete = slot
                .meta
                .layout
                .pieces_of_file(file)
                .all(|p| slot.torrent.have().has(p));
            if complete {
                if let Err(e) = slot.storage.finish_file(file) {
                    return self.fail_torrent(tid, Error::Storage(e));
                }
            }
        }
    }

    /// Every block of `piece` is on disk: hash it from disk and tell the
    /// core how it went.
    ///
    /// A piece larger than one pass's hashing budget
    /// (`Config::check_bytes_per_pass`; pieces go up to 512 MiB) is queued
    /// instead and hashed a slice per pass by `verify_pieces`, so peers keep
    /// being served meanwhile.
    fn verify_piece(&mut self, tid: TorrentId, piece: PieceIndex) {
        let budget = self.config.check_bytes_per_pass;
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        if slot.meta.layout.piece_size(piece) > budget {
            slot.verifying.push_back(PieceHashing::new(piece));
            return;
        }
        let Some(expected) = slot.meta.piece_hash(piece).copied() else {
            return;
        };
        match slot.storage.verify_piece(piece, &expected) {
            Ok(ok) => slot.torrent.handle_piece_checked(piece, ok),
            Err(e) => self.fail_torrent(tid, Error::Storage(e)),
        }
    }

    /// Verify phase: hashes the queued large pieces, at most one pass's
    /// budget of bytes (`Config::check_bytes_per_pass`), oldest first.
    /// Blocks on disk reads.
    pub(super) fn verify_pieces(&mut self, now: Instant) {
        let mut budget = self.config.check_bytes_per_pass.max(1);
        for tid in self.torrent_ids() {
            while budget > 0 {
                let Some(slot) = self.torrents.get_mut(tid) else {
                    break;
                };
                let Some(mut job) = slot.verifying.pop_front() else {
                    break;
                };
                let piece = job.piece();
                let Some(expected) = slot.meta.piece_hash(piece).copied() else {
                    continue;
                };
                let step = budget.min(slot.meta.layout.piece_size(piece));
                budget = budget.saturating_sub(step);
                match slot.storage.verify_step(&mut job, step, &expected) {
                    Ok(None) => slot.verifying.push_front(job),
                    Ok(Some(ok)) => {
                        slot.torrent.handle_piece_checked(piece, ok);
                        self.apply_actions(tid, now);
                    }
                    Err(e) => return self.fail_torrent(tid, Error::Storage(e)),
                }
            }
        }
    }

    /// SHA-1 of each of `blocks` of `piece` as it is on disk.
    fn block_digests(
        &mut self,
        tid: TorrentId,
        piece: PieceIndex,
        blocks: &[u32],
    ) -> Result<Vec<BlockDigest>, StorageError> {
        let mut buf = vec![0u8; crate::metainfo::BLOCK_LEN as usize];
        let mut digests = Vec::new();
        let Some(slot) = self.torrents.get_mut(tid) else {
            return Ok(digests);
        };
        for &index in blocks {
            let Some(block) = slot.meta.layout.block(piece, index) else {
                continue;
            };
            let Some(bytes) = usize::try_from(block.len)
                .ok()
                .and_then(|n| buf.get_mut(..n))
            else {
                continue;
            };
            slot.storage.read(piece, block.begin, bytes)?;
            digests.push((index, Sha1Hash::of(bytes)));
        }
        Ok(digests)
    }
}
