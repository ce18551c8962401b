//! What can end a `pollen` command, and the exit status for each.
//!
//! Layer 3. The library's [`pollen::Error`] says what failed; this adds
//! what only a command line has (a wrong command line) and maps both to the
//! documented exit statuses: 0 done, 1 failure while running, 2 bad input,
//! and for a download stopped before completion the shell's 128 + signal
//! number (130 Ctrl-C or `q`, 143 SIGTERM, 129 SIGHUP).

use std::fmt;

/// Exit status for a failure while running (disk, network, another pollen).
pub const EXIT_FAILURE: u8 = 1;

/// Exit status for bad input (arguments, torrent file, files to share).
pub const EXIT_BAD_INPUT: u8 = 2;

/// A failure that ends a command.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (or asks for something that cannot be
    /// done); the message says how.
    Usage(String),
    /// The command ran and the library failed.
    Pollen(pollen::Error),
    /// The command ran and failed for a reason the library does not raise
    /// (e.g. no tracker answered a scrape); the message says what happened.
    Failed(String),
    /// A download was stopped before completion (a signal, or `q`): not a
    /// failure, but not done either. The message says how far it got.
    Stopped {
        /// The exit status: 128 + the signal's number, as shells report it.
        code: u8,
        /// What to tell the user.
        message: String,
    },
}

impl CliError {
    /// The process exit status: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_BAD_INPUT,
            CliError::Pollen(e) if e.is_bad_input() => EXIT_BAD_INPUT,
            CliError::Pollen(_) | CliError::Failed(_) => EXIT_FAILURE,
            CliError::Stopped { code, .. } => *code,
        }
    }

    /// Whether main should print it as an error (`error: ...`); a stop is
    /// reported as it is.
    pub fn is_error(&self) -> bool {
        !matches!(self, CliError::Stopped { .. })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message) | CliError::Failed(message) => f.write_str(message),
            CliError::Pollen(e) => write!(f, "{e}"),
            CliError::Stopped { message, .. } => f.write_str(message),
        }
    }
}

/// `Pollen` is transparent: it shows the library error's message, so its
/// source is the library error's source.
impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Usage(_) | CliError::Failed(_) | CliError::Stopped { .. } => None,
            CliError::Pollen(e) => e.source(),
        }
    }
}

impl From<pollen::Error> for CliError {
    fn from(error: pollen::Error) -> Self {
        CliError::Pollen(error)
    }
}

impl From<pollen::create::CreateError> for CliError {
    fn from(error: pollen::create::CreateError) -> Self {
        CliError::Pollen(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn usage_errors_are_bad_input_and_print_their_message() {
        let error = CliError::Usage("--max-up \"fast\" is not a rate".into());
        assert_eq!(error.exit_code(), EXIT_BAD_INPUT);
        assert_eq!(error.to_string(), "--max-up \"fast\" is not a rate");
    }

    #[test]
    fn library_errors_keep_their_message_and_map_to_1_or_2() {
        let unreadable = CliError::from(pollen::Error::TorrentUnreadable {
            path: PathBuf::from("a.torrent"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing"),
        });
        assert_eq!(unreadable.exit_code(), EXIT_BAD_INPUT);
        assert_eq!(unreadable.to_string(), "a.torrent: missing");
        let running = CliError::from(pollen::Error::AlreadyRunning {
            name: "x".into(),
            dest: PathBuf::from("."),
            pid: None,
        });
        assert_eq!(running.exit_code(), EXIT_FAILURE);
    }
}
