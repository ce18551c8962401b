//! What the daemon keeps on disk and takes from outside files: its state
//! directory (every torrent's metainfo and record, the running totals),
//! the settings file (reloaded on SIGHUP, rewritten by `session-set`) and
//! the watch folder.
//!
//! Layer 2 over layer-1 [`crate::daemon`]. A torrent's record is written
//! (atomically) the moment it is added, started, stopped, moved in the
//! queue or completes, so a kill -9 right after an RPC answer loses
//! nothing the answer promised; its transfer counters are written every
//! [`STATE_SAVE_PERIOD`] and at exit. Its verified pieces live in its
//! resume file (`DEST/.pollen/`), saved by the session as for any torrent.

use std::path::Path;
use std::time::{Duration, Instant};

use super::daemon::{unix_now, Earlier, LimitMode};
use super::{AddOptions, Session, TorrentId};
use crate::daemon::state::{SavedTorrent, TorrentRecord, Totals};
use crate::daemon::watch::{self, Outcome};
use crate::daemon::{Settings, StateDir};
use crate::metainfo::Metainfo;

/// How often every torrent's transfer counters are saved (state changes
/// are saved at once): a crash loses at most this much of the counts.
pub const STATE_SAVE_PERIOD: Duration = Duration::from_secs(300);

/// How often the watch folder is scanned.
pub const WATCH_PERIOD: Duration = Duration::from_secs(2);

impl Session {
    /// Brings back every torrent the state directory holds, each with its
    /// destination, queue place, limits, totals and stopped state. A
    /// damaged file is skipped with a warning; a torrent that cannot be
    /// added now (its destination gone, another pollen on it) is logged
    /// and its record kept for the next start. Blocks (reads the files).
    pub(super) fn restore_torrents(&mut self, state: &StateDir, now: Instant) {
        let loaded = state.load(&self.config.dest);
        for problem in &loaded.problems {
            log::warn!("state: {problem}");
        }
        let count = loaded.torrents.len();
        for saved in loaded.torrents {
            let hex = saved.record.info_hash.to_hex();
            match self.restore_one(&saved) {
                Ok(tid) => {
                    self.enter_torrent(tid, now);
                    self.apply_record(tid, &saved.record, now);
                }
                Err(why) => log::error!("state: torrent {hex}: {why}; kept for the next start"),
            }
        }
        if count > 0 {
            log::info!(
                "state: {} of {count} torrents restored",
                self.torrents.len()
            );
        }
    }

    /// Adds one saved torrent, paused (the queue starts it).
    fn restore_one(&mut self, saved: &SavedTorrent) -> Result<TorrentId, String> {
        let options = AddOptions {
            dest: Some(saved.record.dest.clone()),
            paused: true,
            force_check: false,
        };
        match (&saved.metainfo, &saved.record.magnet) {
            (Some(bytes), _) => {
                let meta = Metainfo::from_bytes(bytes).map_err(|e| e.to_string())?;
                if meta.info_hash != saved.record.info_hash {
                    return Err("its metainfo has another info-hash".into());
                }
                self.add_torrent_with(meta, &options)
                    .map_err(|e| e.to_string())
            }
            (None, Some(link)) => {
                let magnet = crate::magnet::parse(link).map_err(|e| e.to_string())?;
                self.add_magnet_with(&magnet, &options)
                    .map_err(|e| e.to_string())
            }
            (None, None) => Err("no metainfo and no magnet link".into()),
        }
    }

    /// Puts a saved record's values into torrent `tid`'s entry.
    fn apply_record(&mut self, tid: TorrentId, record: &TorrentRecord, now: Instant) {
        let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) else {
            return;
        };
        entry.stopped = record.paused;
        entry.queue_position = u64::from(record.queue_position);
        entry.added_date = record.added_date;
        entry.done_date = record.done_date;
        entry.start_date = if record.paused { 0 } else { unix_now() };
        entry.ratio = match (record.seed_ratio_mode, record.seed_ratio) {
            (1, Some(r)) => LimitMode::Own(r),
            (2, _) => LimitMode::Unlimited,
            _ => LimitMode::Global,
        };
        entry.idle = match (record.seed_idle_mode, record.seed_idle_minutes) {
            (1, Some(m)) => LimitMode::Own(Duration::from_secs(m.saturating_mul(60))),
            (2, _) => LimitMode::Unlimited,
            _ => LimitMode::Global,
        };
        entry.magnet = record.magnet.clone();
        // A link still in the record: the state directory has no metainfo
        // for it yet (it is saved when the metadata arrives, or found in
        // DEST/.pollen/ if an earlier run fetched it).
        entry.meta_saved = record.magnet.is_none();
        entry.earlier = Earlier {
            uploaded: record.uploaded_ever,
            downloaded: record.downloaded_ever,
            corrupt: record.corrupt_ever,
            seconds_downloading: record.seconds_downloading,
            seconds_seeding: record.seconds_seeding,
        };
        entry.upload_seen_at = now;
        entry.dirty = false;
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.files_added = daemon.files_added.saturating_sub(1); // restored, not added
        }
    }

    /// The record of torrent `tid` as it stands now.
    fn record_of(&self, tid: TorrentId, now: Instant) -> Option<TorrentRecord> {
        let entry = self.daemon.as_ref()?.entries.get(&tid)?;
        let slot = self.torrents.get(tid)?;
        let stats = slot.torrent.stats();
        let (ratio_mode, ratio) = match entry.ratio {
            LimitMode::Global => (0, None),
            LimitMode::Own(r) => (1, Some(r)),
            LimitMode::Unlimited => (2, None),
        };
        let (idle_mode, idle) = match entry.idle {
            LimitMode::Global => (0, None),
            LimitMode::Own(d) => (1, Some(d.as_secs() / 60)),
            LimitMode::Unlimited => (2, None),
        };
        let seeding = slot
            .completed_at
            .filter(|_| !slot.paused)
            .map_or(0, |at| now.saturating_duration_since(at).as_secs());
        Some(TorrentRecord {
            info_hash: slot.meta.info_hash,
            name: slot.meta.name.clone(),
            dest: slot.dest.clone(),
            paused: entry.stopped,
            added_date: entry.added_date,
            done_date: entry.done_date,
            queue_position: u32::try_from(entry.queue_position).unwrap_or(u32::MAX),
            seed_ratio: ratio,
            seed_ratio_mode: ratio_mode,
            seed_idle_minutes: idle,
            seed_idle_mode: idle_mode,
            magnet: entry.magnet.clone(),
            uploaded_ever: entry.earlier.uploaded + stats.uploaded,
            downloaded_ever: entry.earlier.downloaded + stats.downloaded,
            corrupt_ever: entry.earlier.corrupt + stats.wasted,
            seconds_downloading: entry.earlier.seconds_downloading,
            seconds_seeding: entry.earlier.seconds_seeding + seeding,
        })
    }

    /// Saves torrent `tid`'s metainfo (the bytes it was added with) and
    /// its record: done before `torrent-add` answers. Blocks (fsyncs).
    pub(super) fn save_new_torrent(
        &mut self,
        tid: TorrentId,
        metainfo: Option<&[u8]>,
        now: Instant,
    ) {
        let Some(record) = self.record_of(tid, now) else {
            return;
        };
        let Some(state) = self.daemon.as_ref().and_then(|d| d.state.as_ref()) else {
            return;
        };
        if let Some(bytes) = metainfo {
            if let Err(e) = state.save_metainfo(&record.info_hash, bytes) {
                log::error!("state: {}: cannot save its metainfo: {e}", record.name);
            }
        }
        if let Err(e) = state.save_record(&record) {
            log::error!("state: {}: cannot save its record: {e}", record.name);
        }
        if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
            entry.dirty = false;
        }
    }

    /// Saves the records that changed (`all`: every record, with its
    /// counters), the metainfo of magnets whose metadata arrived, and the
    /// totals when `all`. Blocks (fsyncs).
    pub(super) fn save_daemon_state(&mut self, all: bool, now: Instant) {
        let Some(daemon) = self.daemon.as_ref() else {
            return;
        };
        if daemon.state.is_none() {
            return;
        }
        let due: Vec<TorrentId> = daemon
            .entries
            .iter()
            .filter(|(_, e)| all || e.dirty)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in due {
            self.save_fetched_metadata(tid);
            let Some(record) = self.record_of(tid, now) else {
                continue;
            };
            let Some(state) = self.daemon.as_ref().and_then(|d| d.state.as_ref()) else {
                return;
            };
            if let Err(e) = state.save_record(&record) {
                log::error!("state: {}: cannot save its record: {e}", record.name);
            }
            if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
                entry.dirty = false;
            }
        }
        if all {
            self.save_totals();
        }
    }

    /// A magnet whose metadata arrived: its metainfo goes into the state
    /// directory, and only once it is there does the record drop the link
    /// (so a failed save leaves the link to fetch it again after a restart).
    fn save_fetched_metadata(&mut self, tid: TorrentId) {
        let Some(bytes) = self.metadata_to_save(tid) else {
            return;
        };
        let Some(slot) = self.torrents.get(tid) else {
            return;
        };
        let (hash, name) = (slot.meta.info_hash, slot.meta.name.clone());
        let Some(state) = self.daemon.as_ref().and_then(|d| d.state.as_ref()) else {
            return;
        };
        if let Err(e) = state.save_metainfo(&hash, &bytes) {
            return log::error!("state: {name}: cannot save its metainfo: {e}");
        }
        if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
            entry.meta_saved = true;
            entry.magnet = None;
        }
    }

    /// The metainfo of a torrent added by magnet link whose metadata has
    /// arrived and is not in the state directory yet: the `.torrent` file
    /// the session saved beside its data. Blocks (one read).
    fn metadata_to_save(&self, tid: TorrentId) -> Option<Vec<u8>> {
        let entry = self.daemon.as_ref()?.entries.get(&tid)?;
        let slot = self.torrents.get(tid)?;
        if entry.meta_saved || slot.torrent.metadata_progress().is_some() {
            return None;
        }
        std::fs::read(crate::resume::torrent_path(
            &slot.dest,
            &slot.meta.info_hash,
        ))
        .ok()
    }

    /// This run's totals (`current`) and those of every run (`cumulative`,
    /// Transmission's `cumulative-stats`): what earlier runs saved plus this one.
    pub(super) fn transfer_totals(&self) -> (Totals, Totals) {
        let stats = self.total_stats();
        let (earlier, added, started) = self
            .daemon
            .as_ref()
            .map_or((Totals::default(), 0, unix_now()), |d| {
                (d.earlier_totals, d.files_added, d.started_unix)
            });
        let current = Totals {
            uploaded_bytes: stats.uploaded,
            downloaded_bytes: stats.downloaded,
            files_added: added,
            session_count: 1,
            seconds_active: u64::try_from(unix_now().saturating_sub(started)).unwrap_or(0),
        };
        let cumulative = Totals {
            uploaded_bytes: earlier.uploaded_bytes + current.uploaded_bytes,
            downloaded_bytes: earlier.downloaded_bytes + current.downloaded_bytes,
            files_added: earlier.files_added + current.files_added,
            session_count: earlier.session_count + 1,
            seconds_active: earlier.seconds_active + current.seconds_active,
        };
        (current, cumulative)
    }

    /// Saves the running totals (Transmission's `cumulative-stats`).
    fn save_totals(&self) {
        let Some(state) = self.daemon.as_ref().and_then(|d| d.state.as_ref()) else {
            return;
        };
        let (_, totals) = self.transfer_totals();
        if let Err(e) = state.save_stats(&totals) {
            log::error!("state: cannot save the totals: {e}");
        }
    }

    /// Forgets a removed torrent's files in the state directory.
    pub(super) fn forget_saved(&self, info_hash: &crate::metainfo::InfoHash) {
        if let Some(state) = self.daemon.as_ref().and_then(|d| d.state.as_ref()) {
            if let Err(e) = state.remove(info_hash) {
                log::error!("state: cannot remove {}: {e}", info_hash.to_hex());
            }
        }
    }

    /// The watch folder's scan (every [`WATCH_PERIOD`]): each `.torrent`
    /// file is added and renamed `.added`, or renamed `.invalid` with the
    /// reason logged. Blocks (reads a few small files).
    pub(super) fn scan_watch_dir(&mut self, now: Instant) {
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        let Some(dir) = daemon.config.watch_dir.clone() else {
            return;
        };
        if now < daemon.next_watch {
            return;
        }
        daemon.next_watch = now + WATCH_PERIOD;
        let files = match watch::scan(&dir, unix_now()) {
            Ok(files) => files,
            Err(e) => return log::debug!("watch: {}: {e}", dir.display()),
        };
        for path in files {
            let outcome = self.add_watched(&path, now);
            if let Err(why) = &outcome {
                log::warn!("watch: {}: {why}", path.display());
            }
            let mark = if outcome.is_ok() {
                Outcome::Added
            } else {
                Outcome::Invalid
            };
            if let Err(e) = watch::mark(&path, mark) {
                log::error!("watch: cannot rename {}: {e}", path.display());
            }
        }
    }

    /// Adds one watched `.torrent` file (one already in the session counts
    /// as added).
    fn add_watched(&mut self, path: &Path, now: Instant) -> Result<(), String> {
        let bytes = watch::read_torrent(path)?;
        let meta = Metainfo::from_bytes(&bytes).map_err(|e| e.to_string())?;
        if self
            .torrents
            .iter()
            .any(|(_, s)| s.meta.info_hash == meta.info_hash)
        {
            log::info!("watch: {}: already added", path.display());
            return Ok(());
        }
        let paused = self.daemon.as_ref().is_some_and(|d| !d.config.start_added);
        let options = AddOptions {
            dest: None,
            paused,
            force_check: false,
        };
        let name = meta.name.clone();
        let tid = self
            .add_torrent_with(meta, &options)
            .map_err(|e| e.to_string())?;
        self.enter_torrent(tid, now);
        self.save_new_torrent(tid, Some(&bytes), now);
        log::info!("watch: added {name} from {}", path.display());
        Ok(())
    }

    /// After SIGHUP: reads the settings file again and applies what can
    /// change while running (limits, queues, seeding limits, the default
    /// download folder, the watch folder, start-added). A bad file is
    /// logged and changes nothing.
    pub(super) fn reload_settings(&mut self) {
        let Some(path) = self
            .daemon
            .as_ref()
            .and_then(|d| d.config.settings_file.clone())
        else {
            return;
        };
        match Settings::load(&path) {
            Ok(settings) => {
                self.apply_settings(&settings);
                log::info!("settings reloaded from {}", path.display());
            }
            Err(e) => log::error!("settings not reloaded: {e}"),
        }
    }

    /// Applies the runtime part of `settings`.
    pub(super) fn apply_settings(&mut self, settings: &Settings) {
        let rate = |enabled: bool, kb: u64| enabled.then(|| kb.saturating_mul(1000));
        let down = rate(settings.speed_limit_down_enabled, settings.speed_limit_down);
        let up = rate(settings.speed_limit_up_enabled, settings.speed_limit_up);
        if down != self.config.max_down {
            self.config.max_down = down;
            self.down_limit = super::config_limit(down);
        }
        if up != self.config.max_up {
            self.config.max_up = up;
            self.up_limit = super::config_limit(up);
        }
        self.config.max_peers =
            usize::try_from(settings.peer_limit_global.max(1)).unwrap_or(usize::MAX);
        if let Some(dir) = &settings.download_dir {
            if self.allowed_download_dir(dir) || self.config.dest == *dir {
                self.config.dest = dir.clone();
            } else {
                log::warn!(
                    "settings: download-dir {} is not under a download root; kept {}",
                    dir.display(),
                    self.config.dest.display()
                );
            }
        }
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        let config = &mut daemon.config;
        config.download_queue = settings
            .download_queue_enabled
            .then_some(settings.download_queue_size);
        config.seed_queue = settings
            .seed_queue_enabled
            .then_some(settings.seed_queue_size);
        config.seed_ratio = settings.ratio_limit_enabled.then_some(settings.ratio_limit);
        config.idle_seeding = settings
            .idle_seeding_limit_enabled
            .then(|| Duration::from_secs(settings.idle_seeding_limit.saturating_mul(60)));
        config.start_added = settings.start_added_torrents;
        config.watch_dir = settings
            .watch_dir
            .clone()
            .filter(|_| settings.watch_dir_enabled);
    }

    /// The settings as they stand, written back to the settings file
    /// (after `session-set`). Blocks (an fsync).
    pub(super) fn settings_changed(&mut self) {
        let Some(daemon) = self.daemon.as_ref() else {
            return;
        };
        let Some(path) = daemon.config.settings_file.clone() else {
            return;
        };
        let mut settings = Settings::load(&path).unwrap_or_default();
        let config = &daemon.config;
        settings.download_dir = Some(self.config.dest.clone());
        settings.speed_limit_down_enabled = self.config.max_down.is_some();
        if let Some(down) = self.config.max_down {
            settings.speed_limit_down = down / 1000;
        }
        settings.speed_limit_up_enabled = self.config.max_up.is_some();
        if let Some(up) = self.config.max_up {
            settings.speed_limit_up = up / 1000;
        }
        settings.peer_limit_global = u32::try_from(self.config.max_peers).unwrap_or(u32::MAX);
        settings.download_queue_enabled = config.download_queue.is_some();
        if let Some(size) = config.download_queue {
            settings.download_queue_size = size;
        }
        settings.seed_queue_enabled = config.seed_queue.is_some();
        if let Some(size) = config.seed_queue {
            settings.seed_queue_size = size;
        }
        settings.ratio_limit_enabled = config.seed_ratio.is_some();
        if let Some(ratio) = config.seed_ratio {
            settings.ratio_limit = ratio;
        }
        settings.idle_seeding_limit_enabled = config.idle_seeding.is_some();
        if let Some(idle) = config.idle_seeding {
            settings.idle_seeding_limit = idle.as_secs() / 60;
        }
        settings.start_added_torrents = config.start_added;
        if let Err(e) = settings.save(&path) {
            log::error!("settings: cannot save {}: {e}", path.display());
        }
    }
}
