//! One torrent inside the session: its sans-IO core and the I/O the
//! session does for it (files, start-up check, trackers, resume state).
//!
//! Layer 2. A [`Slot`] is opened by [`Session::add_torrent`]: it takes the
//! download's single-instance lock first (a second pollen on the same
//! torrent and destination stops there, before `--clean`, the resume state
//! or the files are touched), then opens storage and reads the resume
//! state, whose trusted pieces go straight into the core's `have`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{announce, Config, Session};
use crate::bitfield::Bitfield;
use crate::error::Error;
use crate::lock::{InstanceLock, LockError};
use crate::metainfo::Metainfo;
use crate::resume;
use crate::rng::Rng;
use crate::storage::{PieceHashing, Storage};
use crate::torrent::{Torrent, TorrentConfig};

/// A torrent's key in the session: stable while the torrent is in the
/// session (a removed torrent's key may be given to a later one).
pub type TorrentId = usize;

/// One torrent in the session.
pub(super) struct Slot {
    /// One pollen per download: held until the session is dropped.
    _lock: InstanceLock,
    pub(super) meta: Arc<Metainfo>,
    /// The protocol state machine (layer 0): the session drives it.
    pub(super) torrent: Torrent,
    pub(super) storage: Storage,
    /// Where its files go.
    pub(super) dest: PathBuf,
    pub(super) tracker: announce::TrackerState,
    /// Next piece to verify at start-up; `None` once the check is done.
    pub(super) checking: Option<u32>,
    /// The piece the start-up check is part-way through (a piece larger
    /// than one pass's `Config::check_bytes_per_pass`).
    pub(super) check_job: Option<PieceHashing>,
    /// Downloaded pieces too large to hash in one pass, being hashed a
    /// slice per pass (`verify_pieces`).
    pub(super) verifying: VecDeque<PieceHashing>,
    pub(super) started: Instant,
    pub(super) completed_at: Option<Instant>,
    /// Where the resume state is saved.
    pub(super) resume_path: PathBuf,
    /// The files' stamps when the resume state was last saved (or at
    /// start): a later change we did not make untrusts the file's pieces.
    pub(super) last_stamps: Vec<resume::FileStamp>,
    /// Pieces were verified since the resume state was last saved.
    pub(super) resume_dirty: bool,
    /// When the resume state may next be saved.
    pub(super) next_resume_save: Instant,
    /// Paused by the caller: no connections, no announces, until resumed.
    pub(super) paused: bool,
    /// Complete and done seeding: a seeding limit was met (then it is
    /// paused too).
    pub(super) seed_done: bool,
    /// Files found at their final names that pollen did not make, not yet
    /// judged by the start-up check (`existing.rs`); a refused one stays.
    pub(super) existing: Vec<crate::storage::Existing>,
    /// Bytes this torrent still needed on disk when it was added.
    pub(super) space_needed: u64,
    /// Its BEP 19 web seeds (`web_seed.rs`).
    pub(super) web_seeds: super::web_seed::WebSeeds,
    /// Why it stopped on its own (a daemon's torrent failure, see
    /// `Session::fail_torrent`); cleared when it is resumed.
    pub(super) error: Option<String>,
}

impl Session {
    /// Adds a torrent, downloaded into `config.dest` with the session's
    /// settings: takes its single-instance lock, opens its files and
    /// resume state. Peers and trackers are contacted once the loop runs.
    ///
    /// Fails with [`Error::DuplicateTorrent`] when the session has it
    /// already, and with [`Error::AlreadyRunning`] when another pollen (or
    /// another session) has the same torrent and destination.
    pub fn add_torrent(&mut self, meta: Metainfo) -> Result<TorrentId, Error> {
        self.add_torrent_with(meta, &AddOptions::default())
    }

    /// [`Session::add_torrent`] with per-torrent [`AddOptions`] (its own
    /// destination, added paused, re-checked): what a daemon's RPC needs.
    pub fn add_torrent_with(
        &mut self,
        meta: Metainfo,
        options: &AddOptions,
    ) -> Result<TorrentId, Error> {
        self.check_room_for(&meta.info_hash, &meta.name)?;
        let dest = self.dest_of(options);
        // First of all: nothing may touch the files (`--clean`, the resume
        // state, storage) while another pollen owns them.
        let lock = take_lock(&dest, &meta.info_hash, &meta.name)?;
        if self.config.clean {
            clean(&dest, &meta);
        }
        let files = self.open_files(&meta, &dest, options.force_check)?;
        let tid = self.insert_slot(lock, meta, Some(files), &dest)?;
        if options.paused {
            if let Some(slot) = self.torrents.get_mut(tid) {
                slot.paused = true;
            }
        }
        log::debug!("torrent {tid}: added");
        Ok(tid)
    }

    /// Where a torrent added with `options` goes.
    pub(super) fn dest_of(&self, options: &AddOptions) -> PathBuf {
        options
            .dest
            .clone()
            .unwrap_or_else(|| self.config.dest.clone())
    }

    /// Refuses a torrent the session cannot take: it is full, or has this
    /// one already (checked before the lock: it would be our own, and
    /// blame "another pollen").
    pub(super) fn check_room_for(
        &self,
        info_hash: &crate::metainfo::InfoHash,
        name: &str,
    ) -> Result<(), Error> {
        if self.torrents.len() >= super::MAX_TORRENTS {
            return Err(Error::TooManyTorrents(super::MAX_TORRENTS));
        }
        if self
            .torrents
            .iter()
            .any(|(_, s)| s.meta.info_hash == *info_hash)
        {
            return Err(Error::DuplicateTorrent {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Opens `meta`'s files under the destination: reads the resume state,
    /// surveys what is in the way, checks the free space. The lock must be
    /// held.
    pub(super) fn open_files(
        &self,
        meta: &Metainfo,
        dest: &std::path::Path,
        force_check: bool,
    ) -> Result<OpenedFiles, Error> {
        let resume_path = resume::resume_path(dest, meta);
        let last_stamps = resume::stamp_files(dest, meta);
        let saved = load_resume(&resume_path, meta);
        // Before storage opens anything: what is in the way is named now,
        // what must be hashed to be judged waits for the start-up check.
        let existing = crate::storage::survey(dest, meta, saved.as_ref(), &last_stamps)
            .map_err(Error::Refused)?;
        let storage = Storage::new(dest, meta)?;
        let trusted = match saved {
            Some(state) if !force_check && !self.config.force_check => {
                Some(resume::trusted_pieces(&state, &last_stamps, meta))
            }
            _ => None,
        };
        if let Some(trusted) = &trusted {
            log::info!(
                "{}: resume: {} of {} pieces trusted without re-hashing",
                meta.name,
                trusted.count_ones(),
                trusted.len()
            );
        }
        let have = trusted.unwrap_or_else(|| Bitfield::new(meta.layout.piece_count()));
        let space_needed = self.check_space(meta, &storage, &have, dest)?;
        Ok(OpenedFiles {
            storage,
            have,
            resume_path,
            last_stamps,
            existing,
            space_needed,
        })
    }

    /// Puts a torrent in the session: its core, its trackers, and its files
    /// (`None` for a magnet link before its metadata: a placeholder `meta`
    /// and a core that fetches the metadata first).
    pub(super) fn insert_slot(
        &mut self,
        lock: InstanceLock,
        meta: Metainfo,
        files: Option<OpenedFiles>,
        dest: &std::path::Path,
    ) -> Result<TorrentId, Error> {
        let config = &self.config;
        let now = Instant::now();
        let tracker =
            announce::TrackerState::new(&meta, config, now, &mut self.rng, Arc::clone(&self.waker))
                .map_err(|e| Error::Io("start the tracker state", e))?;
        let web_seeds = super::web_seed::WebSeeds::new(&meta, Arc::clone(&self.waker), now);
        let meta = Arc::new(meta);
        let awaiting = files.is_none();
        let files = match files {
            Some(files) => files,
            None => OpenedFiles {
                storage: Storage::new(dest, &meta)?,
                have: Bitfield::new(0),
                resume_path: resume::resume_path(dest, &meta),
                last_stamps: Vec::new(),
                existing: Vec::new(),
                space_needed: 0,
            },
        };
        let core_rng = Rng::new(self.rng.next_u64());
        let mut torrent = Torrent::new(
            Arc::clone(&meta),
            torrent_config(config),
            files.have,
            core_rng,
            now,
        );
        if awaiting {
            torrent.await_metadata();
        }
        // Before any address is listed: a `--peer` or tracker naming us is not a peer.
        torrent.peer_list_mut().set_listen_addr(self.listen_addr);
        for addr in &config.peers {
            torrent.peer_list_mut().add(*addr);
        }
        let tid = self.torrents.insert(Slot {
            _lock: lock,
            meta,
            torrent,
            storage: files.storage,
            dest: dest.to_path_buf(),
            tracker,
            checking: (!awaiting).then_some(0),
            check_job: None,
            verifying: VecDeque::new(),
            started: now,
            completed_at: None,
            resume_path: files.resume_path,
            last_stamps: files.last_stamps,
            resume_dirty: false,
            next_resume_save: now,
            paused: false,
            seed_done: false,
            existing: files.existing,
            space_needed: files.space_needed,
            web_seeds,
            error: None,
        });
        Ok(tid)
    }
}

/// How one torrent is added ([`Session::add_torrent_with`],
/// [`Session::add_magnet_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Its own destination (`None`: the session's `Config::dest`).
    pub dest: Option<PathBuf>,
    /// Added paused: nothing is dialled or announced until
    /// [`Session::resume`] (the start-up check waits too).
    pub paused: bool,
    /// Re-hash every piece on disk, trusting no resume state.
    pub force_check: bool,
}

/// A torrent's files, opened under the destination ([`Session::open_files`]).
pub(super) struct OpenedFiles {
    pub(super) storage: Storage,
    /// The pieces the resume state vouches for (or none).
    pub(super) have: Bitfield,
    pub(super) resume_path: PathBuf,
    pub(super) last_stamps: Vec<resume::FileStamp>,
    pub(super) existing: Vec<crate::storage::Existing>,
    pub(super) space_needed: u64,
}

impl Session {
    /// [`Session::add_torrent`] for the `.torrent` file at `path`.
    pub fn add_torrent_file(&mut self, path: &std::path::Path) -> Result<TorrentId, Error> {
        self.add_torrent(crate::load_torrent(path)?)
    }

    /// [`Session::add_torrent`] for a `.torrent` file's bytes (from a
    /// network, a database...); a bad one is [`Error::Torrent`] with the
    /// path `(torrent bytes)`.
    pub fn add_torrent_bytes(&mut self, bytes: &[u8]) -> Result<TorrentId, Error> {
        let meta = Metainfo::from_bytes(bytes).map_err(|source| Error::Torrent {
            path: PathBuf::from("(torrent bytes)"),
            source,
        })?;
        self.add_torrent(meta)
    }
}

/// What the core needs of the session's settings.
fn torrent_config(config: &Config) -> TorrentConfig {
    TorrentConfig {
        strategy: config.strategy,
        endgame_percent: config.endgame_percent,
        choker: config.choker,
        max_up: config.max_up,
        max_peers: config.max_peers,
    }
}

/// The saved resume state, or `None` (missing, corrupt or from another
/// torrent: everything is re-checked).
fn load_resume(path: &std::path::Path, meta: &Metainfo) -> Option<resume::ResumeState> {
    match resume::load(path, meta) {
        Ok(state) => state,
        Err(e) => {
            log::warn!("{}: {e}; re-checking the data on disk", path.display());
            None
        }
    }
}

/// The single-instance lock of the torrent `info_hash` (called `name`) in `dest`, or why not: another
/// pollen's ([`Error::AlreadyRunning`]) or a file system fault.
pub(super) fn take_lock(
    dest: &std::path::Path,
    info_hash: &crate::metainfo::InfoHash,
    name: &str,
) -> Result<InstanceLock, Error> {
    InstanceLock::acquire(dest, info_hash).map_err(|e| match e {
        LockError::Held { pid } => Error::AlreadyRunning {
            name: name.to_string(),
            dest: dest.to_path_buf(),
            pid,
        },
        other => Error::Lock(other),
    })
}

/// `--clean`: removes this torrent's files (final and `.part` names) and its
/// resume state. Only paths the torrent names, under `dest`.
pub(super) fn clean(dest: &std::path::Path, meta: &Metainfo) {
    let partials = crate::storage::partial_paths(dest, meta);
    for (file, partial) in meta.files.iter().zip(partials) {
        if !file.on_disk() {
            continue;
        }
        for candidate in [partial, dest.join(&file.path)] {
            if std::fs::remove_file(&candidate).is_ok() {
                log::info!("removed {}", candidate.display());
            }
        }
    }
    let _ = std::fs::remove_file(resume::resume_path(dest, meta));
}
