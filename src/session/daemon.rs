//! The daemon's side of the session (`pollen daemon`): the RPC server,
//! what the RPC knows of each torrent beyond its core (its RPC id, dates,
//! whether the user stopped it, its place in the queue, its own seeding
//! limits), the queue itself, and the state directory that brings it all
//! back after a restart.
//!
//! Layer 2. [`Session::serve_daemon`] binds the RPC listener and loads
//! the state directory; from then on `drive_daemon` (once a second, in
//! the housekeeping phases) runs the queue (at most
//! `download-queue-size` torrents downloading and `seed-queue-size`
//! seeding, first come first served), stops torrents that met their
//! seeding limit, notes completions, saves what changed, scans the watch
//! folder and, after SIGHUP, reloads the settings.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::rpc::RpcServer;
use super::{Session, TorrentId};
use crate::error::Error;
use crate::rpc::access::{AccessPolicy, Credentials};

/// How long a removed torrent's RPC id is reported in `torrent-get`'s
/// `removed` list (clients asking for `recently-active` every few seconds
/// learn of it).
const REMOVED_MEMORY: Duration = Duration::from_secs(60);

/// Most removed ids remembered for `removed`.
const MAX_REMOVED: usize = 1024;

/// How the daemon is set up: the RPC server, who may use it, where
/// downloads may go, the queue and the default seeding limits.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where the RPC listens (`--rpc-bind`, default 127.0.0.1:9091).
    pub rpc_bind: SocketAddr,
    /// HTTP Basic credentials the RPC requires (`--rpc-auth`).
    pub credentials: Option<Credentials>,
    /// Client addresses let in (`--rpc-allow`); empty: any.
    pub allowed_addresses: Vec<String>,
    /// Host names let in besides IP literals and `localhost` (`--rpc-host`).
    pub allowed_hosts: Vec<String>,
    /// The Transmission web UI's folder, served at `/transmission/web/`.
    pub web_ui: Option<PathBuf>,
    /// Folders downloads may go under: a `download-dir` elsewhere is
    /// refused. The session's `Config::dest` is always one.
    pub download_roots: Vec<PathBuf>,
    /// The state directory (`--state`): torrents, their settings, totals.
    /// `None`: nothing is saved (tests, a library caller's own bookkeeping).
    pub state_dir: Option<PathBuf>,
    /// The settings file reloaded on SIGHUP and rewritten by `session-set`.
    pub settings_file: Option<PathBuf>,
    /// A folder watched for `.torrent` files (`--watch`).
    pub watch_dir: Option<PathBuf>,
    /// Most torrents downloading at once (`download-queue-size`), if on.
    pub download_queue: Option<u32>,
    /// Most torrents seeding at once (`seed-queue-size`), if on.
    pub seed_queue: Option<u32>,
    /// Default seeding ratio limit (`seedRatioLimit`), if on.
    pub seed_ratio: Option<f64>,
    /// Default idle seeding limit (`idle-seeding-limit`), if on: a
    /// torrent that uploaded nothing for this long stops seeding.
    pub idle_seeding: Option<Duration>,
    /// Torrents added through the RPC start at once unless asked paused.
    pub start_added: bool,
    /// Set (by a SIGHUP handler) to reload the settings file.
    pub reload: Arc<AtomicBool>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            rpc_bind: SocketAddr::from(([127, 0, 0, 1], 9091)),
            credentials: None,
            allowed_addresses: Vec::new(),
            allowed_hosts: Vec::new(),
            web_ui: None,
            download_roots: Vec::new(),
            state_dir: None,
            settings_file: None,
            watch_dir: None,
            download_queue: Some(5),
            seed_queue: None,
            seed_ratio: None,
            idle_seeding: None,
            start_added: true,
            reload: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A torrent's own seeding limit, as Transmission's modes say it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) enum LimitMode<T> {
    /// The session's default (mode 0).
    #[default]
    Global,
    /// Its own (mode 1).
    Own(T),
    /// None at all (mode 2).
    Unlimited,
}

impl<T: Copy> LimitMode<T> {
    /// The limit in force, given the session's default.
    pub(super) fn resolve(self, global: Option<T>) -> Option<T> {
        match self {
            LimitMode::Global => global,
            LimitMode::Own(value) => Some(value),
            LimitMode::Unlimited => None,
        }
    }
}

/// What the daemon knows of one torrent besides its core.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Its RPC id.
    pub(super) id: u64,
    /// The user (or a met seeding limit) stopped it.
    pub(super) stopped: bool,
    /// It wants to run but the queue holds it.
    pub(super) queued: bool,
    /// Its place in the queue (smaller goes first).
    pub(super) queue_position: u64,
    /// Unix times: added, last started, completed (0: not yet).
    pub(super) added_date: i64,
    pub(super) start_date: i64,
    pub(super) done_date: i64,
    /// Unix time a byte last moved.
    pub(super) activity_date: i64,
    /// Its seeding limits.
    pub(super) ratio: LimitMode<f64>,
    pub(super) idle: LimitMode<Duration>,
    /// It stopped because it met its seeding limit (`isFinished`).
    pub(super) finished: bool,
    /// Totals from earlier runs (this run's are the core's `Stats`).
    pub(super) earlier: Earlier,
    /// The link it was added by, while its metadata has not arrived.
    pub(super) magnet: Option<String>,
    /// Its upload count when last seen, and when it last grew (idle limit).
    pub(super) last_uploaded: u64,
    pub(super) upload_seen_at: Instant,
    /// Its download count when last seen (activity date).
    pub(super) last_downloaded: u64,
    /// Something the state directory should know changed.
    pub(super) dirty: bool,
    /// Its metainfo is in the state directory (false for a magnet link
    /// until its metadata arrives and is saved).
    pub(super) meta_saved: bool,
}

/// A torrent's transfer totals from earlier runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Earlier {
    pub(super) uploaded: u64,
    pub(super) downloaded: u64,
    pub(super) corrupt: u64,
    pub(super) seconds_downloading: u64,
    pub(super) seconds_seeding: u64,
}

/// The daemon's side of the session.
pub(super) struct DaemonSide {
    pub(super) config: DaemonConfig,
    pub(super) server: RpcServer,
    /// Who may use the RPC (with the current session id).
    pub(super) policy: AccessPolicy,
    /// Per torrent, by session key.
    pub(super) entries: HashMap<TorrentId, Entry>,
    next_id: u64,
    next_queue_position: u64,
    /// RPC ids of torrents removed lately, and when.
    pub(super) removed: VecDeque<(u64, Instant)>,
    /// When the daemon started (Unix seconds), for `session-stats`.
    pub(super) started_unix: i64,
    /// Torrents added this run.
    pub(super) files_added: u64,
    /// The state directory, locked while the daemon runs.
    pub(super) state: Option<crate::daemon::StateDir>,
    /// The totals of earlier runs (`cumulative-stats`).
    pub(super) earlier_totals: crate::daemon::state::Totals,
    /// When the watch folder is next scanned.
    pub(super) next_watch: Instant,
    /// When every record's counters are next saved.
    pub(super) next_state_save: Instant,
}

impl DaemonSide {
    /// Every torrent, first in the queue first.
    pub(super) fn queue_order(&self) -> Vec<TorrentId> {
        let mut order: Vec<(u64, TorrentId)> = self
            .entries
            .iter()
            .map(|(tid, e)| (e.queue_position, *tid))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, tid)| tid).collect()
    }
}

/// Now as Unix seconds (0 if the clock is before 1970).
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Session {
    /// Serves the Transmission RPC on `config.rpc_bind` from this loop and
    /// runs the daemon's bookkeeping (queue, seeding limits, watch folder,
    /// state directory). Returns the RPC's address (with the real port
    /// when 0 was asked). Torrents already in the session are taken in,
    /// in order.
    pub fn serve_daemon(&mut self, config: DaemonConfig) -> Result<SocketAddr, Error> {
        // The state directory first: a second daemon on it stops here,
        // before it binds anything or touches a torrent.
        let state = match &config.state_dir {
            Some(dir) => Some(crate::daemon::StateDir::open(dir).map_err(Error::State)?),
            None => None,
        };
        let earlier_totals = state.as_ref().map(|s| s.load_stats()).unwrap_or_default();
        let server = RpcServer::bind(config.rpc_bind, self.poll.registry())
            .map_err(|e| Error::Bind(config.rpc_bind, e))?;
        let addr = server.addr;
        let mut random = [0u8; 24];
        for chunk in random.chunks_mut(8) {
            let bytes = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
        }
        let policy = AccessPolicy {
            credentials: config.credentials.clone(),
            allowed_addresses: config.allowed_addresses.clone(),
            allowed_hosts: config.allowed_hosts.clone(),
            session_id: crate::rpc::access::session_id(random),
        };
        let now = Instant::now();
        self.daemon = Some(Box::new(DaemonSide {
            config,
            server,
            policy,
            entries: HashMap::new(),
            next_id: 1,
            next_queue_position: 0,
            removed: VecDeque::new(),
            started_unix: unix_now(),
            files_added: 0,
            state: None,
            earlier_totals,
            next_watch: now,
            next_state_save: now + super::daemon_state::STATE_SAVE_PERIOD,
        }));
        for tid in self.torrent_ids() {
            self.enter_torrent(tid, now);
        }
        if let Some(state) = &state {
            self.restore_torrents(state, now);
        }
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.state = state;
        }
        log::info!("rpc: listening on http://{addr}{}", crate::rpc::RPC_PATH);
        Ok(addr)
    }

    /// The RPC's address, when the session serves one.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.daemon.as_ref().map(|d| d.server.addr)
    }

    /// Gives torrent `tid` its RPC entry (a new id, the next queue place).
    /// A torrent added paused counts as stopped by the user.
    pub(super) fn enter_torrent(&mut self, tid: TorrentId, now: Instant) -> Option<u64> {
        let paused = self.torrents.get(tid)?.paused;
        let daemon = self.daemon.as_mut()?;
        let id = daemon.next_id;
        daemon.next_id = daemon.next_id.saturating_add(1);
        let position = daemon.next_queue_position;
        daemon.next_queue_position = daemon.next_queue_position.saturating_add(1);
        let unix = unix_now();
        daemon.entries.insert(
            tid,
            Entry {
                id,
                stopped: paused,
                queued: false,
                queue_position: position,
                added_date: unix,
                start_date: if paused { 0 } else { unix },
                done_date: 0,
                activity_date: 0,
                ratio: LimitMode::Global,
                idle: LimitMode::Global,
                finished: false,
                earlier: Earlier::default(),
                magnet: None,
                last_uploaded: 0,
                upload_seen_at: now,
                last_downloaded: 0,
                dirty: true,
                meta_saved: true,
            },
        );
        daemon.files_added = daemon.files_added.saturating_add(1);
        Some(id)
    }

    /// The daemon's periodic work (once a second, with housekeeping):
    /// completions and activity noted, seeding limits, the queue, the
    /// watch folder, a SIGHUP's reload, and saving what changed.
    pub(super) fn drive_daemon(&mut self, now: Instant) {
        if self.daemon.is_none() {
            return;
        }
        if self.take_reload() {
            self.reload_settings();
        }
        self.scan_watch_dir(now);
        self.note_progress(now);
        self.stop_finished_seeds(now);
        self.run_queue(now);
        self.forget_removed(now);
        let all = self
            .daemon
            .as_ref()
            .is_some_and(|d| now >= d.next_state_save);
        if all {
            if let Some(daemon) = self.daemon.as_mut() {
                daemon.next_state_save = now + super::daemon_state::STATE_SAVE_PERIOD;
            }
        }
        self.save_daemon_state(all, now);
    }

    /// Whether a SIGHUP asked for the settings to be reloaded (and clears it).
    fn take_reload(&self) -> bool {
        self.daemon.as_ref().is_some_and(|d| {
            d.config
                .reload
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Notes completions (`doneDate`) and the last moment bytes moved.
    fn note_progress(&mut self, now: Instant) {
        let unix = unix_now();
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        for (tid, entry) in daemon.entries.iter_mut() {
            let Some(slot) = self.torrents.get(*tid) else {
                continue;
            };
            let stats = slot.torrent.stats();
            if stats.uploaded != entry.last_uploaded {
                entry.last_uploaded = stats.uploaded;
                entry.upload_seen_at = now;
                entry.activity_date = unix;
            }
            if stats.downloaded != entry.last_downloaded {
                entry.last_downloaded = stats.downloaded;
                entry.activity_date = unix;
            }
            if entry.done_date == 0 && slot.completed_at.is_some() {
                entry.done_date = unix;
                entry.dirty = true;
            }
            if !entry.meta_saved && slot.torrent.metadata_progress().is_none() {
                entry.dirty = true; // its metainfo is saved with the record
            }
        }
    }

    /// Stops each seeding torrent that met its ratio or idle limit (its
    /// own, or the session's): it is marked finished, as Transmission does.
    fn stop_finished_seeds(&mut self, now: Instant) {
        let Some(daemon) = self.daemon.as_ref() else {
            return;
        };
        let mut done = Vec::new();
        for (tid, entry) in &daemon.entries {
            let Some(slot) = self.torrents.get(*tid) else {
                continue;
            };
            if entry.stopped || slot.paused || slot.completed_at.is_none() {
                continue;
            }
            let size = slot.meta.total_len().max(1);
            let uploaded = entry.earlier.uploaded + slot.torrent.stats().uploaded;
            let downloaded = entry.earlier.downloaded + slot.torrent.stats().downloaded;
            let ratio_met = entry
                .ratio
                .resolve(daemon.config.seed_ratio)
                .is_some_and(|limit| {
                    let base = if downloaded > 0 { downloaded } else { size };
                    uploaded as f64 / base as f64 >= limit
                });
            let idle_met = entry
                .idle
                .resolve(daemon.config.idle_seeding)
                .is_some_and(|limit| now.saturating_duration_since(entry.upload_seen_at) >= limit);
            if ratio_met || idle_met {
                done.push(*tid);
            }
        }
        for tid in done {
            if let Some(name) = self.torrents.get(tid).map(|s| s.meta.name.clone()) {
                log::info!("{name}: seeding limit met; stopped");
            }
            if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
                entry.finished = true;
                entry.stopped = true;
                entry.dirty = true;
            }
            self.pause(tid);
        }
    }

    /// The queue: of the torrents the user wants running, the first
    /// `download-queue-size` incomplete ones (by queue position) download
    /// and the first `seed-queue-size` complete ones seed; the rest wait,
    /// paused. A torrent stopped by its own failure stays stopped.
    fn run_queue(&mut self, now: Instant) {
        let Some(daemon) = self.daemon.as_ref() else {
            return;
        };
        let order = daemon.queue_order();
        let (mut downloading, mut seeding) = (0u32, 0u32);
        let mut plan = Vec::new();
        for tid in order {
            let (Some(entry), Some(slot)) = (daemon.entries.get(&tid), self.torrents.get(tid))
            else {
                continue;
            };
            if entry.stopped || slot.error.is_some() {
                plan.push((tid, false, false));
                continue;
            }
            let complete = slot.completed_at.is_some() || slot.torrent.is_complete();
            let (count, cap) = if complete {
                (&mut seeding, daemon.config.seed_queue)
            } else {
                (&mut downloading, daemon.config.download_queue)
            };
            let run = cap.is_none_or(|cap| *count < cap);
            if run {
                *count += 1;
            }
            plan.push((tid, run, !run));
        }
        for (tid, run, queued) in plan {
            if let Some(entry) = self.daemon.as_mut().and_then(|d| d.entries.get_mut(&tid)) {
                entry.queued = queued;
            }
            let Some(slot) = self.torrents.get(tid) else {
                continue;
            };
            if run && slot.paused && slot.error.is_none() {
                self.resume(tid);
            } else if !run && !slot.paused {
                self.pause(tid);
            }
        }
        let _ = now;
    }

    /// Drops removed ids older than [`REMOVED_MEMORY`].
    fn forget_removed(&mut self, now: Instant) {
        if let Some(daemon) = self.daemon.as_mut() {
            while daemon
                .removed
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) > REMOVED_MEMORY)
            {
                daemon.removed.pop_front();
            }
        }
    }

    /// Notes that torrent `id` (an RPC id) was removed, for `removed`.
    pub(super) fn note_removed(&mut self, tid: TorrentId, now: Instant) {
        if let Some(daemon) = self.daemon.as_mut() {
            if let Some(entry) = daemon.entries.remove(&tid) {
                if daemon.removed.len() >= MAX_REMOVED {
                    daemon.removed.pop_front();
                }
                daemon.removed.push_back((entry.id, now));
            }
        }
    }

    /// Whether `dir` (absolute, no `..`) lies under one of the download
    /// roots: the one check every `download-dir` passes before anything is
    /// written there. Symbolic links are resolved on the part that exists.
    pub(super) fn allowed_download_dir(&self, dir: &Path) -> bool {
        let Some(daemon) = self.daemon.as_ref() else {
            return false;
        };
        if !dir.is_absolute()
            || dir.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir | std::path::Component::CurDir
                )
            })
        {
            return false;
        }
        let resolved = resolve_existing_prefix(dir);
        std::iter::once(&self.config.dest)
            .chain(daemon.config.download_roots.iter())
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .any(|root| resolved.starts_with(&root))
    }
}

/// `path` with its longest existing prefix resolved (symbolic links
/// followed) and the rest appended as is.
fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(&existing) {
            let mut out = resolved;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_modes_resolve_as_transmission_says() {
        assert_eq!(LimitMode::Global.resolve(Some(2.0)), Some(2.0));
        assert_eq!(LimitMode::Own(1.5).resolve(Some(2.0)), Some(1.5));
        assert_eq!(LimitMode::<f64>::Unlimited.resolve(Some(2.0)), None);
        assert_eq!(LimitMode::<f64>::Global.resolve(None), None);
    }

    #[test]
    fn the_existing_prefix_is_resolved_and_the_rest_kept() {
        let dir = crate::test_util::TempDir::new("daemon-prefix");
        let real = dir.0.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.0.join("link")).unwrap();
        let resolved = resolve_existing_prefix(&dir.0.join("link/new/deeper"));
        let expected = std::fs::canonicalize(&real).unwrap().join("new/deeper");
        assert_eq!(resolved, expected);
    }
}
