//! The single-instance lock: one pollen per download (one torrent into one
//! destination directory).
//!
//! Layer 1: blocking file I/O (an open, a `flock`, a small write), no
//! sockets, no clock. No BEP: two BitTorrent clients writing the same files
//! is a local matter.
//!
//! # Why
//!
//! Two pollens on the same torrent and destination both write the same
//! pieces, rename each other's `.part` files and save each other's resume
//! state; one of them can end "complete" with bytes on disk it never
//! verified. So [`InstanceLock::acquire`] takes an exclusive, non-blocking
//! `flock(2)` ([`File::try_lock`]) on `DEST/.pollen/<info-hash hex>.lock`
//! before anything touches the torrent's files, and the session holds it
//! for its whole life. A second pollen (another process, or a second
//! session in the same process: `flock` locks belong to an open file
//! description, and each acquire opens the file anew) gets
//! [`LockError::Held`].
//!
//! # A killed process never blocks
//!
//! The kernel drops a `flock` when the last descriptor of that open file is
//! closed, which a SIGKILL or a crash also does. So the lock file left
//! behind by a dead pollen is just a file: the next acquire locks it at once.
//! There is no pid check and no timeout to get wrong.
//!
//! # The file is never removed
//!
//! Removing the lock file on exit would race with a starting pollen: B opens
//! the file, A (the holder) unlinks it and exits, C creates a new file under
//! the same name and locks it, and B then locks the old, unlinked one. B and
//! C would both believe they are alone. Left in place, every pollen locks
//! the same inode. `--clean` leaves it alone too.
//!
//! # What is inside
//!
//! The holder's process id in decimal and a newline, written after locking
//! (the file is truncated first), so the refusal can say who holds it. It
//! is only a hint for the message: the lock itself is the `flock`, never
//! the pid.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::metainfo::InfoHash;
use crate::resume::RESUME_DIR;

/// The lock file's extension (after the info-hash in hex).
const LOCK_EXTENSION: &str = "lock";

/// Most bytes read from a lock file for the holder's pid: a pid is at most
/// 10 digits; anything longer is not ours and is shown as no pid at all.
const MAX_PID_TEXT_BYTES: usize = 16;

/// Where the lock of `info_hash` downloaded into `dest` lives:
/// `dest/.pollen/<info-hash hex>.lock`, next to the resume file. Touches
/// nothing on disk.
pub fn lock_path(dest: &Path, info_hash: &InfoHash) -> PathBuf {
    dest.join(RESUME_DIR)
        .join(format!("{}.{LOCK_EXTENSION}", info_hash.to_hex()))
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another pollen holds it.
    Held {
        /// Its process id, as written in the lock file (`None` when the
        /// file holds no readable pid, e.g. it has just locked it).
        pid: Option<u32>,
    },
    /// The lock file could not be created, opened or locked.
    Io {
        /// The lock file (or its directory).
        path: PathBuf,
        /// What was being done: "create directory", "open", "lock".
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { pid: Some(pid) } => write!(f, "locked by another pollen (pid {pid})"),
            LockError::Held { pid: None } => write!(f, "locked by another pollen"),
            LockError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { source, .. } => Some(source),
            LockError::Held { .. } => None,
        }
    }
}

/// The held lock of one download; released when dropped (or when the
/// process dies, however it dies).
#[derive(Debug)]
pub struct InstanceLock {
    /// The open lock file: the `flock` lives as long as this handle.
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock of `info_hash` in `dest` without waiting: creates
    /// `dest/.pollen/` and the lock file if needed, locks it exclusively,
    /// then writes our pid into it. Blocks (a few small file operations).
    pub fn acquire(dest: &Path, info_hash: &InfoHash) -> Result<InstanceLock, LockError> {
        InstanceLock::acquire_path(lock_path(dest, info_hash))
    }

    /// Takes the lock file at `path` as [`InstanceLock::acquire`] does
    /// (the DHT's saved state has one too: one node id per process).
    pub fn acquire_path(path: PathBuf) -> Result<InstanceLock, LockError> {
        let io_error = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io {
                path,
                action,
                source,
            }
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        }
        // Not truncated on open: the file may be the holder's, with its pid.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: read_pid(&file),
                })
            }
            Err(fs::TryLockError::Error(source)) => return Err(io_error("lock", &path)(source)),
        }
        if let Err(e) = write_pid(&file, std::process::id()) {
            // The lock holds without it; only the refusal message loses the pid.
            log::debug!("{}: pid not written: {e}", path.display());
        }
        Ok(InstanceLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Replaces the lock file's contents with `pid` and a newline.
fn write_pid(file: &File, pid: u32) -> io::Result<()> {
    file.set_len(0)?;
    file.write_all_at(format!("{pid}\n").as_bytes(), 0)
}

/// The pid written in a lock file; `None` if it holds anything else.
fn read_pid(file: &File) -> Option<u32> {
    let mut buf = [0u8; MAX_PID_TEXT_BYTES];
    let len = file.read_at(&mut buf, 0).ok()?;
    parse_pid(buf.get(..len)?)
}

/// A decimal pid and optional surrounding whitespace; nothing else.
fn parse_pid(text: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&pid| pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Sha1Hash;
    use crate::test_util::TempDir;

    const HASH: InfoHash = Sha1Hash([0xab; 20]);

    #[test]
    fn lock_path_is_next_to_the_resume_file() {
        let path = lock_path(Path::new("/data"), &HASH);
        let expected = format!("/data/.pollen/{}.lock", "ab".repeat(20));
        assert_eq!(path, PathBuf::from(expected));
    }

    #[test]
    fn a_second_acquire_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = TempDir::new("lock-twice");
        let first = InstanceLock::acquire(&dir.0, &HASH).unwrap();
        assert_eq!(
            fs::read_to_string(first.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // A second open file description in the same process conflicts.
        match InstanceLock::acquire(&dir.0, &HASH) {
            Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        // Another torrent in the same directory has its own lock.
        let other = InstanceLock::acquire(&dir.0, &Sha1Hash([1; 20])).unwrap();
        drop(first);
        let again = InstanceLock::acquire(&dir.0, &HASH).unwrap();
        assert!(again.path().exists());
        drop((again, other));
        // The file stays after the lock is released.
        assert!(lock_path(&dir.0, &HASH).exists());
    }

    #[test]
    fn a_leftover_lock_file_with_stale_contents_does_not_block() {
        let dir = TempDir::new("lock-stale");
        let path = lock_path(&dir.0, &HASH);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"999999999 and much more text than a pid\n").unwrap();
        let lock = InstanceLock::acquire(&dir.0, &HASH).unwrap();
        assert_eq!(
            fs::read_to_string(lock.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn parse_pid_takes_only_a_positive_decimal_number() {
        assert_eq!(parse_pid(b"1234\n"), Some(1234));
        assert_eq!(parse_pid(b" 7 "), Some(7));
        for bad in [
            &b""[..],
            b"\n",
            b"0",
            b"-5",
            b"+5",
            b"12ab",
            b"99999999999",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unusable_directory_is_an_io_error_naming_the_path() {
        let dir = TempDir::new("lock-blocked");
        fs::write(dir.0.join(RESUME_DIR), b"a file in the way").unwrap();
        let err = InstanceLock::acquire(&dir.0, &HASH).unwrap_err();
        assert!(
            matches!(
                err,
                LockError::Io {
                    action: "create directory",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(RESUME_DIR), "{err}");
    }
}
