//! The top-level error: what ends a whole command, and its exit status.
//!
//! Layer 0 type, raised by layers 1 to 3. Per-peer and per-tracker errors
//! have their own types and never convert into this one, so a hostile peer
//! can never end the session through `?`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::create::CreateError;
use crate::lock::LockError;
use crate::metainfo::MetainfoError;
use crate::storage::StorageError;

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status for a failure while running (disk, network).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for bad input (arguments, torrent file).
pub const EXIT_BAD_INPUT: i32 = 2;

/// A failure that ends the command.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong; the message says how.
    Usage(String),
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
}

impl Error {
    /// The process exit status for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::TorrentUnreadable { .. } | Error::Torrent { .. } => {
                EXIT_BAD_INPUT
            }
            Error::Create(CreateError::Io { source, .. })
                if source.kind() != io::ErrorKind::NotFound =>
            {
                EXIT_FAILURE
            }
            Error::Create(CreateError::Changed(_)) => EXIT_FAILURE,
            Error::Create(_) => EXIT_BAD_INPUT,
            Error::Output { .. }
            | Error::Storage(_)
            | Error::Bind(..)
            | Error::Io(..)
            | Error::AlreadyRunning { .. }
            | Error::Lock(_) => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message}"),
            Error::TorrentUnreadable { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            Error::Torrent { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Create(e) => write!(f, "{e}"),
            Error::Output { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Storage(e) => write!(f, "{e}"),
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
        }
    }
}

impl std::error::Error for Error {}

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
        assert_eq!(error.exit_code(), EXIT_FAILURE);
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
}
