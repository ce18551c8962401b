//! The top-level library error: what ends a whole download, tracker or
//! torrent creation.
//!
//! Layer 0 type, raised by layers 1 and 2. Per-peer and per-tracker errors
//! have their own types and never convert into this one, so a hostile peer
//! can never end the session through `?` (a peer's
//! [`crate::close_reason::CloseReason`] closes that peer only).
//!
//! Command-line concerns are not here: usage errors and exit statuses belong
//! to the `pollen` binary's `cli` module, which maps
//! [`Error::is_bad_input`] to its exit status.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::create::CreateError;
use crate::lock::LockError;
use crate::metainfo::MetainfoError;
use crate::storage::{Refusal, StorageError};

/// A failure that ends the download (or the tracker, or the torrent creation).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The torrent file could not be read (missing, a directory, unreadable).
    TorrentUnreadable {
        /// The path given.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The torrent file was read but cannot be used.
    Torrent {
        /// The path given.
        path: PathBuf,
        /// Which rule it breaks.
        source: MetainfoError,
    },
    /// Making a torrent failed.
    Create(CreateError),
    /// Writing an output file failed.
    Output {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A disk fault in the torrent's files.
    Storage(StorageError),
    /// Something already on disk where the torrent's files go would be
    /// lost (a file that is not this torrent's, a directory in the way):
    /// nothing was written to it ([`crate::storage::survey`]).
    Refused(Refusal),
    /// The destination's file system has less room than the download still
    /// needs (checked before it starts).
    NoSpace {
        /// The destination directory.
        dest: PathBuf,
        /// Bytes the torrents still need on disk, all together.
        need_bytes: u64,
        /// Bytes free there for pollen.
        free_bytes: u64,
    },
    /// The listening socket could not be bound (port busy, no permission).
    Bind(std::net::SocketAddr, io::Error),
    /// A system call the event loop needs failed.
    Io(&'static str, io::Error),
    /// Another pollen is downloading (or seeding) the same torrent into the
    /// same directory ([`crate::lock`]).
    AlreadyRunning {
        /// The torrent's name.
        name: String,
        /// The destination directory, as given.
        dest: PathBuf,
        /// The other pollen's process id, when its lock file says.
        pid: Option<u32>,
    },
    /// The single-instance lock could not be taken for another reason
    /// (the destination is not writable, the file system refuses locks).
    Lock(LockError),
    /// The session already runs its most torrents (the number given).
    TooManyTorrents(usize),
    /// The session already has this torrent (same info-hash).
    DuplicateTorrent {
        /// The torrent's name.
        name: String,
    },
    /// A magnet link that cannot be used (malformed, or v2-only).
    Magnet(crate::magnet::MagnetError),
    /// The daemon's state directory cannot be used (another daemon has
    /// it, or it cannot be created).
    State(crate::daemon::StateError),
}

impl Error {
    /// Whether the caller's input is at fault (the torrent file, the files
    /// to make a torrent of), rather than something that failed while
    /// running (disk, network, another pollen). The command line exits 2
    /// for bad input, 1 otherwise.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::TorrentUnreadable { .. } | Error::Torrent { .. } | Error::Magnet(_) => true,
            Error::Create(CreateError::Io { source, .. }) => {
                source.kind() == io::ErrorKind::NotFound
            }
            Error::Create(CreateError::Changed(_)) => false,
            Error::Create(_) => true,
            Error::Output { .. }
            | Error::Storage(_)
            | Error::Refused(_)
            | Error::NoSpace { .. }
            | Error::Bind(..)
            | Error::Io(..)
            | Error::AlreadyRunning { .. }
            | Error::Lock(_)
            | Error::TooManyTorrents(_)
            | Error::DuplicateTorrent { .. }
            | Error::State(_) => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TorrentUnreadable { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            Error::Torrent { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Create(e) => write!(f, "{e}"),
            Error::Output { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Storage(e) => write!(f, "{e}"),
            Error::Refused(e) => write!(f, "{e}"),
            Error::NoSpace {
                dest,
                need_bytes,
                free_bytes,
            } => write!(
                f,
                "not enough space on {}: need {} more, {} free",
                dest.display(),
                crate::units::format_bytes(*need_bytes),
                crate::units::format_bytes(*free_bytes)
            ),
            Error::Bind(addr, e) if e.kind() == io::ErrorKind::AddrNotAvailable => write!(
                f,
                "cannot listen on {addr}: {e} (no interface of this machine has that address; see --bind)"
            ),
            Error::Bind(addr, e) => write!(
                f,
                "cannot listen on {addr}: {e} (choose another port with --port, or 0 for any)"
            ),
            Error::Io(what, e) => write!(f, "cannot {what}: {e}"),
            Error::AlreadyRunning { name, dest, pid } => {
                write!(
                    f,
                    "{name} is already being downloaded into {} by another pollen",
                    dest.display()
                )?;
                match pid {
                    Some(pid) => write!(f, " (pid {pid})"),
                    None => Ok(()),
                }
            }
            Error::Lock(e) => write!(f, "{e}"),
            Error::TooManyTorrents(max) => {
                write!(f, "too many torrents: one session runs at most {max}")
            }
            Error::DuplicateTorrent { name } => {
                write!(f, "{name} is already in this session (same info-hash)")
            }
            Error::Magnet(e) => write!(f, "{e}"),
            Error::State(e) => write!(f, "{e}"),
        }
    }
}

/// The cause under each variant. Variants whose message is the wrapped
/// error's own (`Create`, `Storage`, `Lock`) are transparent: their source
/// is the wrapped error's source, so a report that walks the chain does not
/// print the same text twice.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::TorrentUnreadable { source, .. } | Error::Output { source, .. } => Some(source),
            Error::Torrent { source, .. } => Some(source),
            Error::Bind(_, source) | Error::Io(_, source) => Some(source),
            Error::Create(e) => e.source(),
            Error::Storage(e) => e.source(),
            Error::Lock(e) => e.source(),
            Error::State(e) => e.source(),
            Error::AlreadyRunning { .. }
            | Error::Refused(_)
            | Error::NoSpace { .. }
            | Error::TooManyTorrents(_)
            | Error::DuplicateTorrent { .. }
            | Error::Magnet(_) => None,
        }
    }
}

impl From<CreateError> for Error {
    fn from(error: CreateError) -> Self {
        Error::Create(error)
    }
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Self {
        Error::Storage(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn already_running_names_the_torrent_the_directory_and_the_pid_when_known() {
        let error = Error::AlreadyRunning {
            name: "ubuntu.iso".into(),
            dest: PathBuf::from("/srv/dl"),
            pid: Some(4242),
        };
        assert_eq!(
            error.to_string(),
            "ubuntu.iso is already being downloaded into /srv/dl by another pollen (pid 4242)"
        );
        assert!(!error.is_bad_input());
        assert!(error.source().is_none());
        let error = Error::AlreadyRunning {
            name: "ubuntu.iso".into(),
            dest: PathBuf::from("."),
            pid: None,
        };
        assert_eq!(
            error.to_string(),
            "ubuntu.iso is already being downloaded into . by another pollen"
        );
    }

    #[test]
    fn torrent_problems_and_bad_create_input_are_bad_input() {
        let path = PathBuf::from("x.torrent");
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let unreadable = Error::TorrentUnreadable {
            path: path.clone(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(unreadable.is_bad_input());
        let create_missing = Error::Create(CreateError::Io {
            path: path.clone(),
            source: missing,
        });
        assert!(create_missing.is_bad_input());
        let create_denied = Error::Create(CreateError::Io {
            path: path.clone(),
            source: denied,
        });
        assert!(!create_denied.is_bad_input());
        assert!(Error::Create(CreateError::Empty(path.clone())).is_bad_input());
        assert!(!Error::Create(CreateError::Changed(path)).is_bad_input());
        let bind = Error::Bind(
            std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            io::Error::from(io::ErrorKind::AddrInUse),
        );
        assert!(!bind.is_bad_input());
    }

    #[test]
    fn no_space_says_how_much_more_is_needed_and_how_much_is_free() {
        let error = Error::NoSpace {
            dest: PathBuf::from("/dest"),
            need_bytes: 1288 * 1024 * 1024,
            free_bytes: 300 * 1024 * 1024,
        };
        assert_eq!(
            error.to_string(),
            "not enough space on /dest: need 1.3 GiB more, 300.0 MiB free"
        );
        assert!(!error.is_bad_input());
    }

    #[test]
    fn source_is_the_wrapped_cause() {
        let unreadable = Error::TorrentUnreadable {
            path: PathBuf::from("x.torrent"),
            source: io::Error::new(io::ErrorKind::NotFound, "gone"),
        };
        let source = unreadable
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(source.map(io::Error::kind), Some(io::ErrorKind::NotFound));
        let io = Error::Io("wait for events", io::Error::other("boom"));
        assert_eq!(io.source().map(ToString::to_string), Some("boom".into()));
    }

    #[test]
    fn wrappers_that_show_the_inner_message_pass_its_source_through() {
        let inner = CreateError::Io {
            path: PathBuf::from("dir"),
            source: io::Error::other("disk on fire"),
        };
        let error = Error::Create(inner);
        assert_eq!(error.to_string(), "dir: disk on fire");
        assert_eq!(
            error.source().map(ToString::to_string),
            Some("disk on fire".into())
        );
    }
}
