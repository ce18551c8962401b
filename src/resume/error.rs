//! Why saved resume data cannot be used.
//!
//! Layer 0: pure (the one I/O variant only carries the operating system's
//! error). Every variant means the same thing to the session: show the
//! message as a warning and re-check the data on disk, as if no resume file
//! existed (`shared/PROTOCOL.md`, "Lost resume data"). None of them is fatal.

use std::fmt;
use std::io;

use crate::bencode::DecodeError;
use crate::bitfield::BitfieldError;
use crate::hash::Sha1Hash;

/// A resume file that cannot be trusted, and why.
#[derive(Debug)]
pub enum ResumeError {
    /// The file exists but could not be read.
    Read(io::Error),
    /// The file is larger than a resume file for this torrent can be
    /// ([`super::max_resume_bytes`]); it was not read.
    TooLarge {
        /// Its size in bytes (at least; reading stopped at the cap).
        len: u64,
        /// The most bytes a resume file for this torrent may hold.
        max_bytes: u64,
    },
    /// The bytes are not valid bencode.
    Bencode(DecodeError),
    /// The top-level value is not a dictionary.
    NotADictionary,
    /// A required key is absent.
    Missing(&'static str),
    /// A key holds the wrong kind of value.
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// The `version` is not one this build writes ([`super::FORMAT_VERSION`]).
    UnsupportedVersion(i64),
    /// The file belongs to another torrent.
    OtherTorrent {
        /// The info-hash the file names.
        found: Sha1Hash,
    },
    /// The saved piece count is not the torrent's.
    PieceCount {
        /// The count in the file.
        saved: i64,
        /// The torrent's piece count.
        expected: u32,
    },
    /// The `have` bitfield has the wrong length or spare bits set.
    Bitfield(BitfieldError),
    /// The number of file entries is not the torrent's file count.
    FileCount {
        /// Entries in the file.
        saved: usize,
        /// Files in the torrent.
        expected: usize,
    },
    /// One file entry is malformed.
    BadFile {
        /// Its index in torrent order.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Read(e) => write!(f, "cannot read resume file: {e}"),
            ResumeError::TooLarge { len, max_bytes } => write!(
                f,
                "resume file is {len} bytes, more than the {max_bytes} this torrent needs"
            ),
            ResumeError::Bencode(e) => write!(f, "resume file is corrupt: {e}"),
            ResumeError::NotADictionary => write!(f, "resume file is not a dictionary"),
            ResumeError::Missing(key) => write!(f, "resume file has no `{key}`"),
            ResumeError::WrongType { key, expected } => {
                write!(f, "resume file's `{key}` is not {expected}")
            }
            ResumeError::UnsupportedVersion(v) => {
                write!(f, "resume file has unsupported version {v}")
            }
            ResumeError::OtherTorrent { found } => write!(
                f,
                "resume file belongs to another torrent ({})",
                found.to_hex()
            ),
            ResumeError::PieceCount { saved, expected } => write!(
                f,
                "resume file counts {saved} pieces, the torrent has {expected}"
            ),
            ResumeError::Bitfield(e) => write!(f, "resume file's `have`: {e}"),
            ResumeError::FileCount { saved, expected } => write!(
                f,
                "resume file lists {saved} files, the torrent has {expected}"
            ),
            ResumeError::BadFile { index, reason } => {
                write!(f, "resume file's entry for file {index}: {reason}")
            }
        }
    }
}

impl std::error::Error for ResumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResumeError::Read(e) => Some(e),
            ResumeError::Bencode(e) => Some(e),
            ResumeError::Bitfield(e) => Some(e),
            _ => None,
        }
    }
}
