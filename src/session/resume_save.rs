//! Saving each torrent's resume state: the data synced first, then the
//! verified pieces with the files' stamps, atomically; a file changed
//! behind pollen's back loses its trust first.
//!
//! Layer 2 over layer-1 [`crate::resume`] (the file) and layer-0 state.

use std::time::Instant;

use super::slot::Slot;
use super::{Session, TorrentId, RESUME_SAVE_PERIOD};
use crate::resume;

impl Session {
    /// Saves torrent `tid`'s resume state: data to stable storage first
    /// (`fsync`), then the verified-piece bitfield with the files' sizes
    /// and times, written atomically. A failure is logged; the next start
    /// re-checks instead.
    pub(super) fn save_resume(&mut self, tid: TorrentId, now: Instant) {
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        if slot.torrent.is_awaiting_metadata() {
            return; // nothing to save: no files, no pieces yet
        }
        slot.next_resume_save = now + RESUME_SAVE_PERIOD;
        slot.resume_dirty = false;
        if let Err(e) = slot.storage.sync_all() {
            log::warn!("resume state not saved: {e}");
            return;
        }
        let stamps = resume::stamp_files(&slot.dest, &slot.meta);
        slot.untrust_changed_files(&stamps);
        let state = resume::ResumeState {
            info_hash: slot.meta.info_hash,
            have: slot.torrent.have().clone(),
            files: stamps,
        };
        if let Err(e) = resume::save(&slot.resume_path, &state) {
            log::warn!(
                "{}: resume state not saved: {e}",
                slot.resume_path.display()
            );
        }
    }
}

impl Slot {
    /// Before the resume state vouches for the files as they are now: a
    /// file whose size or times changed since the last stamps, and not
    /// because we wrote, created or renamed it, was changed behind our back
    /// (an editor, a tagger, another program). Its pieces are no longer
    /// trusted: they leave `have` and are fetched again, and the state
    /// saved now does not claim them.
    pub(super) fn untrust_changed_files(&mut self, stamps: &[resume::FileStamp]) {
        let ours = self.storage.take_touched();
        let changed: Vec<usize> = self
            .last_stamps
            .iter()
            .zip(stamps)
            .enumerate()
            .filter(|(file, (before, now))| before != now && !ours.contains(file))
            .map(|(file, _)| file)
            .collect();
        for file in changed {
            let pieces = self.meta.layout.pieces_of_file(file);
            if pieces.clone().any(|p| self.torrent.have().has(p)) {
                let path = self
                    .meta
                    .files
                    .get(file)
                    .map(|f| f.path.display().to_string());
                log::warn!(
                    "{}: changed behind pollen's back; its pieces will be fetched again",
                    path.unwrap_or_default()
                );
            }
            for piece in pieces {
                if self.torrent.have().has(piece) {
                    self.resume_dirty |= self.torrent.unverify(piece);
                }
            }
        }
        self.last_stamps = stamps.to_vec();
    }
}
