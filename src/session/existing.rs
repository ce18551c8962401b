//! Never lose a user's file, in the session: the room check when a torrent
//! is added, and the verdict on files found at their final names as the
//! start-up check reaches the end of each.
//!
//! Layer 2 over layer-1 storage ([`crate::storage::survey`] says which
//! files are judged and why; [`crate::storage::judge`] is the rule).

use super::{Session, TorrentId};
use crate::bitfield::Bitfield;
use crate::error::Error;
use crate::metainfo::Metainfo;
use crate::storage::{self, Refusal, Storage, Verdict};

impl Session {
    /// The bytes torrent `meta` still needs on disk (see
    /// [`storage::space_needed`]), or [`Error::NoSpace`] when they, with
    /// what the session's other torrents needed, exceed the room left on
    /// the destination's file system. `have` holds the pieces the resume
    /// state vouches for. A file system that cannot say how much room it
    /// has is not checked. Blocks (a `stat` per file, a `statvfs`).
    pub(super) fn check_space(
        &self,
        meta: &Metainfo,
        storage: &Storage,
        have: &Bitfield,
        dest: &std::path::Path,
    ) -> Result<u64, Error> {
        let layout = &meta.layout;
        let verified: u64 = have
            .iter_ones()
            .filter_map(|p| layout.piece(p))
            .map(|p| u64::from(layout.piece_size(p)))
            .sum();
        let missing = layout.total_len().saturating_sub(verified);
        let need = storage::space_needed(missing, storage.unallocated_bytes());
        let others: u64 = self.torrents.iter().map(|(_, s)| s.space_needed).sum();
        let total = need.saturating_add(others);
        match storage::free_bytes(dest) {
            Ok(free) if total > free => Err(Error::NoSpace {
                dest: dest.to_path_buf(),
                need_bytes: total,
                free_bytes: free,
            }),
            Ok(_) => Ok(need),
            Err(e) => {
                log::debug!("{}: free space unknown ({e}); not checked", dest.display());
                Ok(need)
            }
        }
    }

    /// Judges each of torrent `tid`'s files found at their final names
    /// whose pieces are all below `checked_below` (the start-up check has
    /// hashed or trusted them): kept, replaced under `--overwrite`, or
    /// refused, which stops the session before anything is written to it.
    /// Returns false when the session must stop. Blocks (an unlink or a
    /// truncate under `--overwrite`).
    pub(super) fn judge_existing_files(&mut self, tid: TorrentId, checked_below: u32) -> bool {
        let overwrite = self.config.overwrite;
        let Some(slot) = self.torrents.get_mut(tid) else {
            return true;
        };
        let mut pending = std::mem::take(&mut slot.existing);
        let mut failure = None;
        pending.retain(|found| {
            if failure.is_some() {
                return true;
            }
            let pieces = slot.meta.layout.pieces_of_file(found.file);
            if pieces.end > checked_below {
                return true; // not all checked yet
            }
            let total = pieces.end.saturating_sub(pieces.start);
            let have = slot.torrent.have();
            let matched = u32::try_from(pieces.filter(|&p| have.has(p)).count()).unwrap_or(0);
            let torrent_len = slot.meta.files.get(found.file).map_or(0, |f| f.len);
            let verdict = storage::judge(torrent_len, found.len_on_disk, matched, total);
            let path = slot.dest.join(
                slot.meta
                    .files
                    .get(found.file)
                    .map(|f| f.path.as_path())
                    .unwrap_or_else(|| std::path::Path::new("")),
            );
            match (verdict, overwrite) {
                (Verdict::Keep, _) => {
                    if matched > 0 {
                        log::info!(
                            "{}: {matched} of {total} pieces already there; resuming it",
                            path.display()
                        );
                    }
                    false
                }
                (Verdict::Foreign, true) => {
                    log::warn!("{}: matches none of the torrent's pieces; replacing it (--overwrite)", path.display());
                    if let Err(e) = slot.storage.discard_file(found.file) {
                        failure = Some(Error::Storage(e));
                    }
                    false
                }
                (Verdict::Longer, true) => {
                    log::warn!("{}: longer than the torrent's file; cutting it to {torrent_len} bytes (--overwrite)", path.display());
                    if let Err(e) = slot.storage.cut_to_length(found.file) {
                        failure = Some(Error::Storage(e));
                    }
                    false
                }
                (Verdict::Foreign, false) => {
                    failure = Some(Error::Refused(Refusal::Foreign { path }));
                    true
                }
                (Verdict::Longer, false) => {
                    failure = Some(Error::Refused(Refusal::Longer {
                        path,
                        len_on_disk: found.len_on_disk,
                        torrent_len,
                    }));
                    true
                }
            }
        });
        slot.existing = pending;
        match failure {
            Some(error) => {
                self.fail_torrent(tid, error);
                false
            }
            None => true,
        }
    }
}
