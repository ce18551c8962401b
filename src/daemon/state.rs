//! The daemon's state directory: one record and one metainfo file per
//! torrent, the session totals, and the lock that keeps a second daemon out.
//!
//! Layer 1: blocking disk I/O (small reads, atomic writes, one `flock`), no
//! sockets, no clock: every time is passed in as Unix seconds. No BEP: the
//! files are pollen's own (bencoded as in BEP 3).
//!
//! # Crash safety
//!
//! Every file is written through [`crate::resume::save_bytes`]: a `.tmp`
//! next to it, `fsync`, rename over the old file, `fsync` of the directory.
//! A kill at any moment leaves the old file or the new one, never half of
//! one; [`StateDir::load`] deletes the `.tmp` leftovers. The verified pieces
//! are not here: they stay in the destination's resume file
//! (`DEST/.pollen/<hash>.resume`), which the session saves as before.
//!
//! # A record (`torrents/<hex>.state`, version 1)
//!
//! One bencoded dictionary, keys sorted; unknown keys are ignored:
//!
//! | key | value |
//! | --- | --- |
//! | `version` | 1 ([`RECORD_VERSION`]); another is refused |
//! | `info hash` | the 20 bytes; must match the file's name |
//! | `name`, `magnet` | UTF-8 strings (`magnet` absent once the metadata is here) |
//! | `dest` | the destination directory's bytes |
//! | `paused` | 0 or 1 |
//! | `added date`, `done date` | Unix seconds (0: never) |
//! | `queue position` | integer |
//! | `seed ratio` | decimal text of the own ratio limit (absent: none) |
//! | `seed ratio mode`, `seed idle mode` | 0 global, 1 own, 2 unlimited |
//! | `seed idle minutes` | integer (absent: none) |
//! | `uploaded`, `downloaded`, `corrupt` | bytes, ever |
//! | `seconds downloading`, `seconds seeding` | seconds, ever |

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::bencode::{self, Dict, Limits, Strictness, Value};
use crate::hash::Sha1Hash;
use crate::lock::{InstanceLock, LockError};
use crate::metainfo::{InfoHash, MAX_TORRENT_BYTES};
use crate::resume::save_bytes;

/// The directory under the root holding the per-torrent files.
pub const TORRENTS_DIR: &str = "torrents";

/// The lock file under the root: one daemon per state directory.
pub const LOCK_FILE: &str = "daemon.lock";

/// The session totals file under the root.
pub const STATS_FILE: &str = "stats";

/// The extension of a torrent's record.
const STATE_EXTENSION: &str = "state";

/// The extension of a torrent's metainfo.
const TORRENT_EXTENSION: &str = "torrent";

/// The suffix of a write in progress (as [`crate::resume::save_bytes`] names it).
const TMP_SUFFIX: &str = ".tmp";

/// The format version written in every record.
pub const RECORD_VERSION: i64 = 1;

/// Largest record file read or written: a record is a few hundred bytes
/// plus the name, destination and magnet link; anything near this is not
/// ours, and the cap bounds what a damaged file can make us allocate.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Largest stats file read: five integers; the cap bounds a damaged file.
pub const MAX_STATS_BYTES: u64 = 4 * 1024;

/// Most torrents loaded from one state directory: the session's own cap
/// (`session::MAX_TORRENTS`), so everything loaded can also be started.
pub const MAX_LOADED_TORRENTS: usize = 10_000;

/// Most problem lines [`StateDir::load`] returns: a directory full of
/// foreign files must not flood the log; the rest are counted in one line.
pub const MAX_PROBLEMS: usize = 100;

/// Bencode limits for records and stats: flat dictionaries, canonical
/// (we write them sorted), few values.
const RECORD_LIMITS: Limits = Limits {
    max_depth: 4,
    max_tokens: 1_000,
    strictness: Strictness::Canonical,
};

/// Why the state directory could not be opened.
#[derive(Debug)]
pub enum StateError {
    /// Another daemon holds the directory's lock.
    Locked {
        /// Its process id as written in the lock file, when readable.
        pid: Option<u32>,
    },
    /// A directory or the lock file could not be created or locked.
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What was being done ("create directory", "open", "lock").
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Locked { pid: Some(pid) } => {
                write!(f, "state directory is used by another pollen (pid {pid})")
            }
            StateError::Locked { pid: None } => {
                write!(f, "state directory is used by another pollen")
            }
            StateError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Io { source, .. } => Some(source),
            StateError::Locked { .. } => None,
        }
    }
}

/// What the daemon remembers of one torrent besides its metainfo and its
/// verified pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct TorrentRecord {
    /// The torrent's info-hash (the files are named by it).
    pub info_hash: InfoHash,
    /// Its display name.
    pub name: String,
    /// The destination directory.
    pub dest: PathBuf,
    /// Stopped by the user (not started at restart).
    pub paused: bool,
    /// When it was added, Unix seconds.
    pub added_date: i64,
    /// When it completed, Unix seconds (0: not yet).
    pub done_date: i64,
    /// Its place in the download queue (0 first).
    pub queue_position: u32,
    /// Its own ratio limit (`None`: the session default).
    pub seed_ratio: Option<f64>,
    /// 0: the global ratio limit, 1: its own, 2: unlimited (Transmission's `seedRatioMode`).
    pub seed_ratio_mode: u8,
    /// Its own idle limit in minutes (`None`: the session default).
    pub seed_idle_minutes: Option<u64>,
    /// 0: the global idle limit, 1: its own, 2: unlimited (Transmission's `seedIdleMode`).
    pub seed_idle_mode: u8,
    /// The magnet link it was added by, while its metadata has not arrived.
    pub magnet: Option<String>,
    /// Bytes uploaded, all sessions.
    pub uploaded_ever: u64,
    /// Bytes downloaded, all sessions.
    pub downloaded_ever: u64,
    /// Bytes discarded by failed hash checks, all sessions.
    pub corrupt_ever: u64,
    /// Seconds spent downloading, all sessions.
    pub seconds_downloading: u64,
    /// Seconds spent seeding, all sessions.
    pub seconds_seeding: u64,
}

impl TorrentRecord {
    /// A fresh record: started, first in the queue, session limits, no
    /// history.
    pub fn new(info_hash: InfoHash, name: String, dest: PathBuf, added_date: i64) -> Self {
        TorrentRecord {
            info_hash,
            name,
            dest,
            paused: false,
            added_date,
            done_date: 0,
            queue_position: 0,
            seed_ratio: None,
            seed_ratio_mode: 0,
            seed_idle_minutes: None,
            seed_idle_mode: 0,
            magnet: None,
            uploaded_ever: 0,
            downloaded_ever: 0,
            corrupt_ever: 0,
            seconds_downloading: 0,
            seconds_seeding: 0,
        }
    }
}

/// One torrent as loaded from the state directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedTorrent {
    /// Its record.
    pub record: TorrentRecord,
    /// Its metainfo bytes exactly as saved (not parsed here: the caller
    /// parses them and must check the info-hash); `None` for a magnet link
    /// whose metadata has not arrived.
    pub metainfo: Option<Vec<u8>>,
}

/// What [`StateDir::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The torrents, by queue position then added date; queue positions
    /// renumbered 0, 1, 2... in that order.
    pub torrents: Vec<SavedTorrent>,
    /// One line per file skipped (damaged, foreign, oversize, orphaned), for
    /// the log.
    pub problems: Vec<String>,
}

impl Loaded {
    /// Records a problem, keeping at most [`MAX_PROBLEMS`] lines plus one
    /// that counts the rest.
    fn problem(&mut self, line: String) {
        match self.problems.len() {
            n if n < MAX_PROBLEMS => self.problems.push(line),
            n if n == MAX_PROBLEMS => self.problems.push("more problems not shown".into()),
            _ => {}
        }
    }
}

/// The daemon's running totals across sessions (Transmission's
/// `cumulative-stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Torrents added.
    pub files_added: u64,
    /// Daemon starts.
    pub session_count: u64,
    /// Seconds the daemon ran.
    pub seconds_active: u64,
}

/// The open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    torrents: PathBuf,
    /// The `flock` on `root/daemon.lock`, held while this lives.
    _lock: InstanceLock,
}

/// `$XDG_STATE_HOME/pollen`, else `$HOME/.local/state/pollen`, from the
/// process environment; `None` when neither is usable.
pub fn default_root() -> Option<PathBuf> {
    default_root_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

/// [`default_root`] from the given values of `XDG_STATE_HOME` and `HOME`.
/// An empty or relative `XDG_STATE_HOME` is ignored (the XDG base
/// directory spec says so); an empty `HOME` gives `None`.
pub fn default_root_from(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(xdg) = xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(xdg.join("pollen"));
    }
    let home = home.filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".local/state/pollen"))
}

impl StateDir {
    /// Opens the state directory at `root`: creates it (mode 0700: it holds
    /// every torrent's paths and sits next to the RPC password file) and
    /// `root/torrents`, then locks `root/daemon.lock`. An existing
    /// directory keeps its mode. A second daemon on the same root gets
    /// [`StateError::Locked`]. Blocks (a few file operations).
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        let torrents = root.join(TORRENTS_DIR);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&torrents)
            .map_err(|source| StateError::Io {
                path: torrents.clone(),
                action: "create directory",
                source,
            })?;
        let lock = InstanceLock::acquire_path(root.join(LOCK_FILE)).map_err(|e| match e {
            LockError::Held { pid } => StateError::Locked { pid },
            LockError::Io {
                path,
                action,
                source,
            } => StateError::Io {
                path,
                action,
                source,
            },
        })?;
        Ok(StateDir {
            root: root.to_path_buf(),
            torrents,
            _lock: lock,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the record of `info_hash` lives: `root/torrents/<hex>.state`.
    pub fn record_path(&self, info_hash: &InfoHash) -> PathBuf {
        self.torrents
            .join(format!("{}.{STATE_EXTENSION}", info_hash.to_hex()))
    }

    /// Where the metainfo of `info_hash` lives: `root/torrents/<hex>.torrent`.
    pub fn metainfo_path(&self, info_hash: &InfoHash) -> PathBuf {
        self.torrents
            .join(format!("{}.{TORRENT_EXTENSION}", info_hash.to_hex()))
    }

    /// Saves `record` atomically. A record that encodes to more than
    /// [`MAX_RECORD_BYTES`] (a huge name or magnet link) is refused with
    /// `InvalidInput`, since it could not be loaded back. Blocks (two
    /// `fsync`s).
    pub fn save_record(&self, record: &TorrentRecord) -> io::Result<()> {
        let bytes = encode_record(record);
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record of {} is {} bytes, over the {MAX_RECORD_BYTES}-byte cap",
                    record.info_hash.to_hex(),
                    bytes.len()
                ),
            ));
        }
        save_bytes(&self.record_path(&record.info_hash), &bytes)
    }

    /// Saves the metainfo bytes of `info_hash` atomically, exactly as
    /// given. More than [`MAX_TORRENT_BYTES`] is refused with
    /// `InvalidInput`. Blocks (two `fsync`s).
    pub fn save_metainfo(&self, info_hash: &InfoHash, bytes: &[u8]) -> io::Result<()> {
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_TORRENT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "metainfo of {} is {} bytes, over the {MAX_TORRENT_BYTES}-byte cap",
                    info_hash.to_hex(),
                    bytes.len()
                ),
            ));
        }
        save_bytes(&self.metainfo_path(info_hash), bytes)
    }

    /// Forgets `info_hash`: removes its metainfo, then its record (files
    /// already gone are fine), then syncs the directory. A kill between the
    /// two leaves a record without metainfo, which [`StateDir::load`]
    /// reports and skips (or, for a magnet record, loads again).
    pub fn remove(&self, info_hash: &InfoHash) -> io::Result<()> {
        for path in [self.metainfo_path(info_hash), self.record_path(info_hash)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(context("remove", &path, e)),
            }
        }
        File::open(&self.torrents)
            .and_then(|d| d.sync_all())
            .map_err(|e| context("sync directory", &self.torrents, e))
    }

    /// Reads every torrent back. Never fails: each file that cannot be
    /// used (unreadable, damaged, oversize, foreign, a record whose hash is
    /// not its name's, a record without metainfo that is not a magnet
    /// link) is left on disk, skipped and reported in
    /// [`Loaded::problems`]; leftover `.tmp` files are deleted. A metainfo
    /// without a record (a kill while adding) comes back with a fresh
    /// record: `dest` = `default_dest`, the name the hash in hex (the
    /// caller takes the real one from the metainfo), added at the file's
    /// modification time, last in the queue. At most
    /// [`MAX_LOADED_TORRENTS`] torrents are loaded. Blocks (reads every
    /// file).
    pub fn load(&self, default_dest: &Path) -> Loaded {
        let mut loaded = Loaded::default();
        let files = self.list_files(&mut loaded);
        let mut count = 0usize;
        for (hash, (record_path, metainfo_path)) in files {
            if count >= MAX_LOADED_TORRENTS {
                loaded.problem(format!(
                    "{}: more than {MAX_LOADED_TORRENTS} torrents; the rest are not loaded",
                    self.torrents.display()
                ));
                break;
            }
            let saved = load_one(
                &hash,
                record_path.as_deref(),
                metainfo_path.as_deref(),
                default_dest,
            );
            match saved {
                Ok(saved) => {
                    loaded.torrents.push(saved);
                    count += 1;
                }
                Err(line) => loaded.problem(line),
            }
        }
        loaded.torrents.sort_by(|a, b| {
            let key = |t: &SavedTorrent| {
                (
                    t.record.queue_position,
                    t.record.added_date,
                    t.record.info_hash,
                )
            };
            key(a).cmp(&key(b))
        });
        for (position, torrent) in loaded.torrents.iter_mut().enumerate() {
            torrent.record.queue_position = u32::try_from(position).unwrap_or(u32::MAX);
        }
        loaded
    }

    /// The record and metainfo files in `torrents/`, by info-hash; deletes
    /// `.tmp` leftovers and reports everything else that is not ours.
    fn list_files(&self, loaded: &mut Loaded) -> BTreeMap<InfoHash, FilePair> {
        let mut files: BTreeMap<InfoHash, FilePair> = BTreeMap::new();
        let entries = match fs::read_dir(&self.torrents) {
            Ok(entries) => entries,
            Err(e) => {
                loaded.problem(format!("cannot read {}: {e}", self.torrents.display()));
                return files;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    loaded.problem(format!("cannot read {}: {e}", self.torrents.display()));
                    break;
                }
            };
            let path = entry.path();
            let name = entry.file_name();
            if name.as_bytes().ends_with(TMP_SUFFIX.as_bytes()) {
                // An interrupted save: the file under the real name is in force.
                match fs::remove_file(&path) {
                    Ok(()) => log::debug!(
                        "{}: leftover of an interrupted save removed",
                        path.display()
                    ),
                    Err(e) => loaded.problem(format!("cannot remove {}: {e}", path.display())),
                }
                continue;
            }
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            match (is_file, parse_name(&name)) {
                (true, Some((hash, Kind::Record))) => {
                    files.entry(hash).or_default().0 = Some(path);
                }
                (true, Some((hash, Kind::Metainfo))) => {
                    files.entry(hash).or_default().1 = Some(path);
                }
                _ => loaded.problem(format!("{}: not a pollen state file", path.display())),
            }
        }
        files
    }

    /// Saves the session totals atomically to `root/stats`. Blocks (two
    /// `fsync`s).
    pub fn save_stats(&self, totals: &Totals) -> io::Result<()> {
        save_bytes(&self.root.join(STATS_FILE), &encode_totals(totals))
    }

    /// The session totals saved last; zeros when there are none, or when
    /// the file is damaged (logged as a warning). Blocks (one small read).
    pub fn load_stats(&self) -> Totals {
        let path = self.root.join(STATS_FILE);
        let result = read_capped(&path, MAX_STATS_BYTES).and_then(|bytes| match bytes {
            None => Ok(Totals::default()),
            Some(bytes) => decode_totals(&bytes),
        });
        result.unwrap_or_else(|e| {
            log::warn!("{}: {e}; totals start from zero", path.display());
            Totals::default()
        })
    }
}

/// The record and metainfo files of one hash, as found.
type FilePair = (Option<PathBuf>, Option<PathBuf>);

/// Which of the two per-torrent files a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<hex>.state`
    Record,
    /// `<hex>.torrent`
    Metainfo,
}

/// `<40 hex>.state` or `<40 hex>.torrent`; anything else is `None`.
fn parse_name(name: &std::ffi::OsStr) -> Option<(InfoHash, Kind)> {
    let name = name.to_str()?;
    let (stem, extension) = name.split_once('.')?;
    let kind = match extension {
        STATE_EXTENSION => Kind::Record,
        TORRENT_EXTENSION => Kind::Metainfo,
        _ => return None,
    };
    Some((Sha1Hash::from_hex(stem)?, kind))
}

/// One torrent from its files, or the problem line that skips it.
fn load_one(
    hash: &InfoHash,
    record_path: Option<&Path>,
    metainfo_path: Option<&Path>,
    default_dest: &Path,
) -> Result<SavedTorrent, String> {
    let metainfo = match metainfo_path {
        None => None,
        Some(path) => match read_capped(path, MAX_TORRENT_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        },
    };
    let record = match record_path {
        Some(path) => match read_capped(path, MAX_RECORD_BYTES).and_then(|b| {
            let bytes = b.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            decode_record(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }) {
            Ok(record) if record.info_hash != *hash => {
                return Err(format!(
                    "{}: holds the record of {}",
                    path.display(),
                    record.info_hash.to_hex()
                ))
            }
            Ok(record) => record,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        },
        None => {
            let mut record = TorrentRecord::new(
                *hash,
                hash.to_hex(),
                default_dest.to_path_buf(),
                metainfo_path.map_or(0, modified_unix),
            );
            record.queue_position = u32::MAX;
            record
        }
    };
    if metainfo.is_none() && record.magnet.is_none() {
        let path = record_path.map_or_else(String::new, |p| p.display().to_string());
        return Err(format!("{path}: no metainfo and no magnet link"));
    }
    Ok(SavedTorrent { record, metainfo })
}

/// A file's modification time in Unix seconds; 0 when unknown.
fn modified_unix(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map_or(0, |m| m.mtime())
}

/// The bytes of `path`, refusing a file over `max_bytes` before reading
/// it and reading at most one byte past it (a file growing meanwhile);
/// `Ok(None)` when it does not exist.
fn read_capped(path: &Path, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let too_large = |len| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, over the {max_bytes}-byte cap"),
        )
    };
    let len = file.metadata()?.len();
    if len > max_bytes {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > max_bytes {
        return Err(too_large(read));
    }
    Ok(Some(bytes))
}

/// An I/O error that names what was being done to which path.
fn context(action: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}

/// A `u64` as a bencode integer (saturating: bencode integers here are
/// `i64`; 2^63 bytes is beyond any real count).
fn int_u64(n: u64) -> Value<'static> {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The bencoded record (keys sorted by the encoder).
pub fn encode_record(record: &TorrentRecord) -> Vec<u8> {
    let ratio = record.seed_ratio.map(|r| r.to_string());
    let mut entries: Vec<(&[u8], Value<'_>)> = vec![
        (b"version", Value::Int(RECORD_VERSION)),
        (b"info hash", Value::Bytes(&record.info_hash.0)),
        (b"name", Value::Bytes(record.name.as_bytes())),
        (b"dest", Value::Bytes(record.dest.as_os_str().as_bytes())),
        (b"paused", Value::Int(i64::from(record.paused))),
        (b"added date", Value::Int(record.added_date)),
        (b"done date", Value::Int(record.done_date)),
        (
            b"queue position",
            Value::Int(i64::from(record.queue_position)),
        ),
        (
            b"seed ratio mode",
            Value::Int(i64::from(record.seed_ratio_mode)),
        ),
        (
            b"seed idle mode",
            Value::Int(i64::from(record.seed_idle_mode)),
        ),
        (b"uploaded", int_u64(record.uploaded_ever)),
        (b"downloaded", int_u64(record.downloaded_ever)),
        (b"corrupt", int_u64(record.corrupt_ever)),
        (b"seconds downloading", int_u64(record.seconds_downloading)),
        (b"seconds seeding", int_u64(record.seconds_seeding)),
    ];
    if let Some(ratio) = &ratio {
        entries.push((b"seed ratio", Value::Bytes(ratio.as_bytes())));
    }
    if let Some(minutes) = record.seed_idle_minutes {
        entries.push((b"seed idle minutes", int_u64(minutes)));
    }
    if let Some(magnet) = &record.magnet {
        entries.push((b"magnet", Value::Bytes(magnet.as_bytes())));
    }
    bencode::encode(&Value::Dict(Dict::new(entries)))
}

/// A record from its bytes; the error says which key is wrong.
pub fn decode_record(bytes: &[u8]) -> Result<TorrentRecord, String> {
    let value = bencode::decode(bytes, RECORD_LIMITS).map_err(|e| e.to_string())?;
    let dict = value.as_dict().ok_or("not a dictionary")?;
    let version = int(dict, "version")?;
    if version != RECORD_VERSION {
        return Err(format!("record version {version}, not {RECORD_VERSION}"));
    }
    let hash = dict
        .get_bytes(b"info hash")
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or("key \"info hash\" is not 20 bytes")?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match dict.get(key.as_bytes()) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| format!("key {key:?} is not UTF-8 text")),
        }
    };
    let dest = dict.get_bytes(b"dest").ok_or("key \"dest\" is missing")?;
    let seed_ratio = match text("seed ratio")? {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or("key \"seed ratio\" is not a ratio")?,
        ),
    };
    Ok(TorrentRecord {
        info_hash: Sha1Hash(hash),
        name: text("name")?.ok_or("key \"name\" is missing")?,
        dest: PathBuf::from(OsString::from_vec(dest.to_vec())),
        paused: ranged(dict, "paused", 1)? == 1,
        added_date: int(dict, "added date")?,
        done_date: int(dict, "done date")?,
        queue_position: u32::try_from(unsigned(dict, "queue position")?)
            .map_err(|_| "key \"queue position\" is too large")?,
        seed_ratio,
        seed_ratio_mode: ranged(dict, "seed ratio mode", 2)?,
        seed_idle_minutes: match dict.get(b"seed idle minutes") {
            None => None,
            Some(_) => Some(unsigned(dict, "seed idle minutes")?),
        },
        seed_idle_mode: ranged(dict, "seed idle mode", 2)?,
        magnet: text("magnet")?,
        uploaded_ever: unsigned(dict, "uploaded")?,
        downloaded_ever: unsigned(dict, "downloaded")?,
        corrupt_ever: unsigned(dict, "corrupt")?,
        seconds_downloading: unsigned(dict, "seconds downloading")?,
        seconds_seeding: unsigned(dict, "seconds seeding")?,
    })
}

/// The integer under `key`.
fn int(dict: &Dict<'_>, key: &str) -> Result<i64, String> {
    dict.get_int(key.as_bytes())
        .ok_or_else(|| format!("key {key:?} is missing or not an integer"))
}

/// The non-negative integer under `key`.
fn unsigned(dict: &Dict<'_>, key: &str) -> Result<u64, String> {
    u64::try_from(int(dict, key)?).map_err(|_| format!("key {key:?} is negative"))
}

/// The integer under `key`, in `0..=max`.
fn ranged(dict: &Dict<'_>, key: &str, max: u8) -> Result<u8, String> {
    u8::try_from(unsigned(dict, key)?)
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| format!("key {key:?} is not in 0..={max}"))
}

/// The bencoded totals.
fn encode_totals(totals: &Totals) -> Vec<u8> {
    bencode::encode(&Value::Dict(Dict::new(vec![
        (b"uploaded bytes", int_u64(totals.uploaded_bytes)),
        (b"downloaded bytes", int_u64(totals.downloaded_bytes)),
        (b"files added", int_u64(totals.files_added)),
        (b"session count", int_u64(totals.session_count)),
        (b"seconds active", int_u64(totals.seconds_active)),
    ])))
}

/// Totals from their bytes; a missing key counts as zero.
fn decode_totals(bytes: &[u8]) -> io::Result<Totals> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let value = bencode::decode(bytes, RECORD_LIMITS).map_err(|e| invalid(e.to_string()))?;
    let dict = value
        .as_dict()
        .ok_or_else(|| invalid("not a dictionary".into()))?;
    let get = |key: &str| match dict.get(key.as_bytes()) {
        None => Ok(0),
        Some(_) => unsigned(dict, key).map_err(invalid),
    };
    Ok(Totals {
        uploaded_bytes: get("uploaded bytes")?,
        downloaded_bytes: get("downloaded bytes")?,
        files_added: get("files added")?,
        session_count: get("session count")?,
        seconds_active: get("seconds active")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::os::unix::fs::PermissionsExt;

    const HASH: InfoHash = Sha1Hash([0xab; 20]);

    fn full_record(hash: InfoHash) -> TorrentRecord {
        TorrentRecord {
            info_hash: hash,
            name: "Ubuntu ISO ✓".into(),
            dest: PathBuf::from(OsString::from_vec(b"/data/\xffdir".to_vec())),
            paused: true,
            added_date: 1_700_000_000,
            done_date: -5,
            queue_position: 7,
            seed_ratio: Some(1.25),
            seed_ratio_mode: 1,
            seed_idle_minutes: Some(30),
            seed_idle_mode: 2,
            magnet: Some("magnet:?xt=urn:btih:abab".into()),
            uploaded_ever: u64::try_from(i64::MAX).unwrap(),
            downloaded_ever: 1 << 40,
            corrupt_ever: 3,
            seconds_downloading: 4,
            seconds_seeding: 5,
        }
    }

    #[test]
    fn the_session_cap_is_the_load_cap() {
        assert_eq!(MAX_LOADED_TORRENTS, crate::session::MAX_TORRENTS);
    }

    #[test]
    fn default_root_prefers_an_absolute_xdg_state_home() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_root_from(os("/x/state"), os("/home/a")),
            Some(PathBuf::from("/x/state/pollen"))
        );
        for xdg in [None, os(""), os("relative/state")] {
            assert_eq!(
                default_root_from(xdg, os("/home/a")),
                Some(PathBuf::from("/home/a/.local/state/pollen"))
            );
        }
        assert_eq!(default_root_from(None, None), None);
        assert_eq!(default_root_from(os(""), os("")), None);
    }

    #[test]
    fn a_record_round_trips_through_its_encoding_and_the_disk() {
        let dir = TempDir::new("daemon-state-roundtrip");
        let state = StateDir::open(&dir.0).unwrap();
        let record = full_record(HASH);
        let bytes = encode_record(&record);
        assert_eq!(decode_record(&bytes).unwrap(), record);
        let plain = TorrentRecord::new(Sha1Hash([1; 20]), "a".into(), "/d".into(), 9);
        assert_eq!(decode_record(&encode_record(&plain)).unwrap(), plain);
        // Counts past what a bencode integer holds saturate.
        let mut huge = plain.clone();
        huge.seconds_seeding = u64::MAX;
        let back = decode_record(&encode_record(&huge)).unwrap();
        assert_eq!(back.seconds_seeding, u64::try_from(i64::MAX).unwrap());

        state.save_record(&record).unwrap();
        state.save_record(&plain).unwrap();
        state
            .save_metainfo(&plain.info_hash, b"d4:infod...e")
            .unwrap();
        let loaded = state.load(Path::new("/default"));
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        // `plain` is at position 0, the magnet record (7) after it, renumbered.
        let mut expected_magnet = record.clone();
        expected_magnet.queue_position = 1;
        assert_eq!(
            loaded.torrents,
            [
                SavedTorrent {
                    record: plain,
                    metainfo: Some(b"d4:infod...e".to_vec())
                },
                SavedTorrent {
                    record: expected_magnet,
                    metainfo: None
                },
            ]
        );
    }

    #[test]
    fn open_creates_a_private_directory_and_a_second_open_is_locked() {
        let dir = TempDir::new("daemon-state-lock");
        let root = dir.0.join("state");
        let first = StateDir::open(&root).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert!(root.join(TORRENTS_DIR).is_dir());
        match StateDir::open(&root) {
            Err(StateError::Locked { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        StateDir::open(&root).unwrap();
    }

    #[test]
    fn a_root_that_is_a_file_is_an_io_error_naming_it() {
        let dir = TempDir::new("daemon-state-blocked");
        let root = dir.0.join("state");
        fs::write(&root, b"in the way").unwrap();
        let err = StateDir::open(&root).unwrap_err();
        assert!(matches!(err, StateError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("state"), "{err}");
    }

    #[test]
    fn a_leftover_tmp_is_deleted_and_a_truncated_record_is_reported_while_the_others_load() {
        let dir = TempDir::new("daemon-state-kill");
        let state = StateDir::open(&dir.0).unwrap();
        let good = TorrentRecord::new(Sha1Hash([1; 20]), "good".into(), "/d".into(), 1);
        state.save_record(&good).unwrap();
        state.save_metainfo(&good.info_hash, b"meta").unwrap();
        // A kill during a save: the old record stands, its `.tmp` is junk.
        let tmp = dir
            .0
            .join(format!("torrents/{}.state.tmp", "01".repeat(20)));
        fs::write(&tmp, b"d7:vers").unwrap();
        // A damaged record (no kill can make this, a bad disk can).
        let bad = Sha1Hash([2; 20]);
        let whole = encode_record(&TorrentRecord::new(bad, "bad".into(), "/d".into(), 2));
        fs::write(state.record_path(&bad), &whole[..whole.len() / 2]).unwrap();
        state.save_metainfo(&bad, b"meta").unwrap();

        let loaded = state.load(Path::new("/default"));
        assert!(!tmp.exists());
        assert_eq!(loaded.torrents.len(), 1);
        assert_eq!(loaded.torrents[0].record, good);
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        assert!(
            loaded.problems[0].contains(&bad.to_hex()),
            "{:?}",
            loaded.problems
        );
        // The damaged files are left for the user.
        assert!(state.record_path(&bad).exists());
    }

    #[test]
    fn a_metainfo_without_record_comes_back_with_a_default_record_last_in_the_queue() {
        let dir = TempDir::new("daemon-state-orphan");
        let state = StateDir::open(&dir.0).unwrap();
        let mut queued = TorrentRecord::new(Sha1Hash([1; 20]), "q".into(), "/d".into(), 1);
        queued.queue_position = 3;
        state.save_record(&queued).unwrap();
        state.save_metainfo(&queued.info_hash, b"m1").unwrap();
        state.save_metainfo(&HASH, b"m2").unwrap();
        // A record without metainfo nor magnet: reported.
        let lost = Sha1Hash([3; 20]);
        state
            .save_record(&TorrentRecord::new(lost, "l".into(), "/d".into(), 1))
            .unwrap();

        let loaded = state.load(Path::new("/default"));
        let torrents = &loaded.torrents;
        assert_eq!(torrents.len(), 2);
        assert_eq!(torrents[0].record.info_hash, queued.info_hash);
        assert_eq!(torrents[0].record.queue_position, 0);
        let recovered = &torrents[1].record;
        assert_eq!(recovered.info_hash, HASH);
        assert_eq!(recovered.dest, Path::new("/default"));
        assert_eq!(recovered.name, HASH.to_hex());
        assert_eq!(recovered.queue_position, 1);
        assert!(!recovered.paused);
        assert!(recovered.added_date > 0);
        assert_eq!(torrents[1].metainfo.as_deref(), Some(&b"m2"[..]));
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        assert!(
            loaded.problems[0].contains("no metainfo"),
            "{:?}",
            loaded.problems
        );
    }

    #[test]
    fn foreign_oversize_and_misnamed_files_are_reported_never_loaded() {
        let dir = TempDir::new("daemon-state-foreign");
        let state = StateDir::open(&dir.0).unwrap();
        let torrents = dir.0.join(TORRENTS_DIR);
        fs::write(torrents.join("notes.txt"), b"hello").unwrap();
        fs::create_dir(torrents.join(format!("{}.state", "cd".repeat(20)))).unwrap();
        // A record under another torrent's name.
        let mut record = full_record(HASH);
        state.save_record(&record).unwrap();
        fs::rename(
            state.record_path(&HASH),
            state.record_path(&Sha1Hash([9; 20])),
        )
        .unwrap();
        // An oversize record, refused before it is read.
        let big = Sha1Hash([4; 20]);
        File::create(state.record_path(&big))
            .unwrap()
            .set_len(MAX_RECORD_BYTES + 1)
            .unwrap();
        // An oversize metainfo.
        let huge = Sha1Hash([5; 20]);
        record.info_hash = huge;
        state.save_record(&record).unwrap();
        File::create(state.metainfo_path(&huge))
            .unwrap()
            .set_len(MAX_TORRENT_BYTES + 1)
            .unwrap();

        let loaded = state.load(Path::new("/default"));
        assert!(loaded.torrents.is_empty(), "{:?}", loaded.torrents);
        let problems = loaded.problems.join("\n");
        assert_eq!(loaded.problems.len(), 5, "{problems}");
        assert!(
            problems.contains("notes.txt: not a pollen state file"),
            "{problems}"
        );
        assert!(problems.contains("holds the record of"), "{problems}");
        assert!(problems.contains("over the 65536-byte cap"), "{problems}");
        assert!(
            problems.contains("over the 10485760-byte cap"),
            "{problems}"
        );
    }

    #[test]
    fn damaged_records_are_typed_errors_naming_the_key() {
        let good = encode_record(&full_record(HASH));
        for cut in 0..good.len() {
            assert!(decode_record(&good[..cut]).is_err(), "cut at {cut}");
        }
        let cases: [(&[u8], &str); 5] = [
            (b"i1e", "not a dictionary"),
            (b"d7:versioni2ee", "version 2"),
            (b"d9:info hash3:abc7:versioni1ee", "info hash"),
            (b"le", "not a dictionary"),
            (b"d4:name3:abc7:versioni1ee", "info hash"),
        ];
        for (bytes, wanted) in cases {
            let err = decode_record(bytes).unwrap_err();
            assert!(err.contains(wanted), "{bytes:?}: {err}");
        }
        let with = |key: &str, value: Value<'static>| {
            let mut record = encode_record(&full_record(HASH));
            let decoded = bencode::decode(&record, RECORD_LIMITS).unwrap();
            let mut dict = decoded.as_dict().unwrap().clone();
            dict.entries.retain(|(k, _)| *k != key.as_bytes());
            dict.entries.push((key.as_bytes(), value));
            record = bencode::encode(&Value::Dict(Dict::new(dict.entries)));
            decode_record(&record).unwrap_err()
        };
        assert!(with("paused", Value::Int(2)).contains("paused"));
        assert!(with("uploaded", Value::Int(-1)).contains("uploaded"));
        assert!(with("queue position", Value::Int(1 << 40)).contains("queue position"));
        assert!(with("seed ratio", Value::Bytes(b"NaN")).contains("seed ratio"));
        assert!(with("seed ratio", Value::Bytes(b"-1")).contains("seed ratio"));
        assert!(with("name", Value::Bytes(b"\xff")).contains("name"));
        assert!(with("seed idle mode", Value::Int(3)).contains("seed idle mode"));
    }

    #[test]
    fn an_oversize_record_or_metainfo_is_refused_on_save() {
        let dir = TempDir::new("daemon-state-save-cap");
        let state = StateDir::open(&dir.0).unwrap();
        let mut record = full_record(HASH);
        record.magnet = Some("m".repeat(70_000));
        let err = state.save_record(&record).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let huge = vec![0u8; usize::try_from(MAX_TORRENT_BYTES).unwrap() + 1];
        let err = state.save_metainfo(&HASH, &huge).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!state.record_path(&HASH).exists());
        assert!(!state.metainfo_path(&HASH).exists());
    }

    #[test]
    fn remove_deletes_both_files_and_accepts_missing_ones() {
        let dir = TempDir::new("daemon-state-remove");
        let state = StateDir::open(&dir.0).unwrap();
        state.save_record(&full_record(HASH)).unwrap();
        state.save_metainfo(&HASH, b"m").unwrap();
        state.remove(&HASH).unwrap();
        assert!(!state.record_path(&HASH).exists());
        assert!(!state.metainfo_path(&HASH).exists());
        state.remove(&HASH).unwrap();
        let loaded = state.load(Path::new("/d"));
        assert!(loaded.torrents.is_empty() && loaded.problems.is_empty());
    }

    #[test]
    fn totals_round_trip_and_a_damaged_file_reads_as_zeros() {
        let dir = TempDir::new("daemon-state-stats");
        let state = StateDir::open(&dir.0).unwrap();
        assert_eq!(state.load_stats(), Totals::default());
        let totals = Totals {
            uploaded_bytes: 1,
            downloaded_bytes: 2,
            files_added: 3,
            session_count: 4,
            seconds_active: 5,
        };
        state.save_stats(&totals).unwrap();
        assert_eq!(state.load_stats(), totals);
        fs::write(dir.0.join(STATS_FILE), b"d14:uploaded bytesi-1ee").unwrap();
        assert_eq!(state.load_stats(), Totals::default());
        fs::write(dir.0.join(STATS_FILE), b"d14:uploaded").unwrap();
        assert_eq!(state.load_stats(), Totals::default());
    }

    #[test]
    fn problems_are_capped() {
        let mut loaded = Loaded::default();
        for n in 0..MAX_PROBLEMS + 50 {
            loaded.problem(format!("p{n}"));
        }
        assert_eq!(loaded.problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(loaded.problems.last().unwrap(), "more problems not shown");
    }
}
