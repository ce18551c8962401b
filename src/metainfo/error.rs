//! Why a torrent file is refused.
//!
//! Layer 0: pure. One variant per rule in `shared/PROTOCOL.md` ("torrent
//! limits"), each with a message that names the fact, so the user reads
//! `pieces length 24 is not a multiple of 20` rather than "invalid torrent".

use std::fmt;

use super::layout::LayoutError;
use crate::bencode::DecodeError;

/// A torrent that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetainfoError {
    /// The file is larger than [`super::MAX_TORRENT_BYTES`].
    TooLarge {
        /// Its size.
        len: u64,
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
    /// `piece length` is zero or negative.
    PieceLengthNotPositive(i64),
    /// `piece length` is larger than [`super::MAX_PIECE_LEN`].
    PieceLengthTooLarge(i64),
    /// The `pieces` string is not a whole number of 20-byte hashes.
    PiecesNotMultipleOf20(usize),
    /// The number of hashes does not match the total length.
    PieceCountMismatch {
        /// Hashes in `pieces`.
        hashes: usize,
        /// Pieces the lengths call for.
        expected: u32,
    },
    /// More pieces than [`super::MAX_PIECES`].
    TooManyPieces(u64),
    /// A file length is negative.
    NegativeLength(i64),
    /// Both `length` and `files` are present (BEP 3 says exactly one).
    LengthAndFiles,
    /// `files` is an empty list.
    EmptyFiles,
    /// The files hold no bytes at all.
    ZeroTotalLength,
    /// The lengths add up past 2^64.
    TotalOverflow,
    /// A file path has more than [`super::MAX_PATH_DEPTH`] elements.
    PathTooDeep(usize),
    /// A file path is an empty list.
    EmptyPath,
    /// More than [`super::sanitize::MAX_DUPLICATES`] files map to one name.
    TooManyDuplicates(String),
    /// A BitTorrent v2-only torrent (BEP 52), which pollen does not speak.
    V2Only,
    /// `meta version` is above 2 (BEP 52 defines 1 and 2).
    UnknownMetaVersion(i64),
    /// A hybrid torrent's piece length is not a power of two of at least
    /// 16 KiB, as BEP 52 requires.
    V2PieceLength(u32),
    /// A hybrid torrent's v2 `file tree` is malformed or missing; says why.
    FileTree(String),
    /// A hybrid torrent's v2 `file tree` lists other files than its v1
    /// `files`; says where they first differ.
    HybridMismatch(String),
}

impl From<DecodeError> for MetainfoError {
    fn from(error: DecodeError) -> Self {
        MetainfoError::Bencode(error)
    }
}

impl From<LayoutError> for MetainfoError {
    fn from(error: LayoutError) -> Self {
        match error {
            LayoutError::ZeroPieceLength => MetainfoError::PieceLengthNotPositive(0),
            LayoutError::ZeroTotalLength => MetainfoError::ZeroTotalLength,
            LayoutError::TotalOverflow => MetainfoError::TotalOverflow,
            LayoutError::TooManyPieces(n) => MetainfoError::TooManyPieces(n),
        }
    }
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetainfoError as E;
        match self {
            E::TooLarge { len } => write!(
                f,
                "torrent file is {len} bytes, more than the {} allowed",
                super::MAX_TORRENT_BYTES
            ),
            E::Bencode(e) => write!(f, "not a torrent file: {e}"),
            E::NotADictionary => write!(f, "not a torrent file: top level is not a dictionary"),
            E::Missing(key) => write!(f, "missing '{key}'"),
            E::WrongType { key, expected } => write!(f, "'{key}' is not {expected}"),
            E::PieceLengthNotPositive(n) => write!(f, "piece length {n} is not positive"),
            E::PieceLengthTooLarge(n) => write!(
                f,
                "piece length {n} is larger than the {} allowed",
                super::MAX_PIECE_LEN
            ),
            E::PiecesNotMultipleOf20(n) => write!(f, "pieces length {n} is not a multiple of 20"),
            E::PieceCountMismatch { hashes, expected } => write!(
                f,
                "pieces holds {hashes} hashes but the files need {expected}"
            ),
            E::TooManyPieces(n) => write!(
                f,
                "{n} pieces is more than the {} allowed",
                super::MAX_PIECES
            ),
            E::NegativeLength(n) => write!(f, "file length {n} is negative"),
            E::LengthAndFiles => write!(f, "info has both 'length' and 'files'"),
            E::EmptyFiles => write!(f, "'files' is an empty list"),
            E::ZeroTotalLength => write!(f, "total length is zero"),
            E::TotalOverflow => write!(f, "file lengths add up past 2^64 bytes"),
            E::PathTooDeep(n) => write!(
                f,
                "a file path has {n} elements, more than the {} allowed",
                super::MAX_PATH_DEPTH
            ),
            E::EmptyPath => write!(f, "a file has an empty path"),
            E::TooManyDuplicates(name) => write!(f, "too many files named '{name}'"),
            E::V2Only => write!(
                f,
                "BitTorrent v2-only torrent (no 'pieces'); pollen supports v1 and hybrid torrents"
            ),
            E::UnknownMetaVersion(n) => write!(f, "unknown 'meta version' {n}"),
            E::V2PieceLength(n) => write!(
                f,
                "piece length {n} is not a power of two of at least 16 KiB, \
                 as a hybrid (v1+v2) torrent needs"
            ),
            E::FileTree(why) => write!(f, "bad v2 'file tree': {why}"),
            E::HybridMismatch(why) => {
                write!(f, "hybrid torrent's v1 and v2 file lists disagree: {why}")
            }
        }
    }
}

impl std::error::Error for MetainfoError {}
