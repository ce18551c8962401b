//! The resume state and its bencoded form, and which saved pieces may be
//! trusted without hashing them again.
//!
//! Layer 0: pure (no I/O, no clock): bytes and values in, values and bytes
//! out. The format is described in the [module doc](super).
//!
//! Everything [`decode`] reads comes from a file that a crash, a full disk or
//! a user may have damaged, so it is checked like peer input: the size is
//! capped before parsing, nesting and value counts are bounded, every
//! integer is range-checked, and any fault is a [`ResumeError`], never a
//! panic.

use super::ResumeError;
use crate::bencode::{self, Dict, Limits, List, Strictness, Value};
use crate::bitfield::Bitfield;
use crate::hash::Sha1Hash;
use crate::metainfo::{InfoHash, Layout, Metainfo};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: i64 = 1;

/// Bytes allowed per `files` entry. The longest one,
/// `d5:ctimei-9223372036854775808e5:mtimei-9223372036854775808e4:sizei9223372036854775807ee`,
/// is 88; the rest is room for one key a later version-1 writer may add.
const PER_FILE_BYTES: u64 = 128;

/// Bytes allowed besides the bitfield and the file entries. The keys, the
/// version, the info-hash and the piece count take under 100; the rest is
/// room for keys a later version-1 writer may add.
const FIXED_BYTES: u64 = 4096;

/// Deepest nesting in a resume file: the root dictionary (1), the `files`
/// list (2), one file's dictionary (3).
const MAX_DEPTH: usize = 3;

/// Bencode values allowed per `files` entry: its dictionary, three keys and
/// three values make 7; 10 leaves room for one added key.
const TOKENS_PER_FILE: usize = 10;

/// Bencode values allowed besides the file entries: the root dictionary,
/// five keys and five values make 11; the rest is room for added keys.
const FIXED_TOKENS: usize = 64;

/// What was verified, and what the files looked like on disk at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The torrent this state belongs to.
    pub info_hash: InfoHash,
    /// The pieces that had passed their hash check.
    pub have: Bitfield,
    /// Each torrent file on disk when saved, in torrent order.
    pub files: Vec<FileStamp>,
}

/// One file's size, modification time and status-change time on disk;
/// `None` when the file did not exist (or the value could not be read).
/// Padding files and symlinks always have `None` for all three: they are
/// never on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStamp {
    /// Its length on disk in bytes.
    pub len_on_disk: Option<u64>,
    /// Its modification time in nanoseconds since the Unix epoch (negative
    /// before it). An `i64` covers the years 1677 to 2262.
    pub mtime_ns: Option<i64>,
    /// Its status-change time (`st_ctime`), in the same unit. Unlike the
    /// mtime, no ordinary program can set it back: restoring an edited
    /// file's mtime (`touch -d`, `utimensat`) moves it. `None` in resume
    /// files written before it was recorded.
    pub ctime_ns: Option<i64>,
}

/// The most bytes a resume file for `piece_count` pieces and `file_count`
/// files may hold: twice the bitfield, 128 bytes per file and 4 KiB (far
/// more than the encoding needs). Larger files are refused unread.
pub fn max_resume_bytes(piece_count: u32, file_count: usize) -> u64 {
    let bitfield_bytes = u64::from(piece_count.div_ceil(8));
    let files = u64::try_from(file_count).unwrap_or(u64::MAX);
    bitfield_bytes
        .saturating_mul(2)
        .saturating_add(files.saturating_mul(PER_FILE_BYTES))
        .saturating_add(FIXED_BYTES)
}

/// The bencoded resume file for `state` (canonical: keys sorted).
pub fn encode(state: &ResumeState) -> Vec<u8> {
    let files = state.files.iter().map(file_entry).collect();
    let root = Dict::new(vec![
        (b"version", Value::Int(FORMAT_VERSION)),
        (b"info hash", Value::Bytes(&state.info_hash.0)),
        (b"pieces", Value::Int(i64::from(state.have.len()))),
        (b"have", Value::Bytes(state.have.as_bytes())),
        (b"files", Value::List(List::new(files))),
    ]);
    bencode::encode(&Value::Dict(root))
}

/// One `files` entry; an unknown value is left out.
fn file_entry(stamp: &FileStamp) -> Value<'static> {
    let mut entries = Vec::new();
    // A size past i64::MAX cannot be written; left out, it reads as missing.
    if let Some(size) = stamp.len_on_disk.and_then(|n| i64::try_from(n).ok()) {
        entries.push((&b"size"[..], Value::Int(size)));
    }
    if let Some(mtime) = stamp.mtime_ns {
        entries.push((&b"mtime"[..], Value::Int(mtime)));
    }
    if let Some(ctime) = stamp.ctime_ns {
        entries.push((&b"ctime"[..], Value::Int(ctime)));
    }
    Value::Dict(Dict::new(entries))
}

/// Parses a resume file for the torrent with `expected_info_hash`,
/// `piece_count` pieces and `file_count` files, checking every value.
pub fn decode(
    bytes: &[u8],
    expected_info_hash: &InfoHash,
    piece_count: u32,
    file_count: usize,
) -> Result<ResumeState, ResumeError> {
    let max_bytes = max_resume_bytes(piece_count, file_count);
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > max_bytes {
        return Err(ResumeError::TooLarge { len, max_bytes });
    }
    let root = bencode::decode(bytes, limits(file_count)).map_err(ResumeError::Bencode)?;
    let Value::Dict(root) = root else {
        return Err(ResumeError::NotADictionary);
    };
    let version = int(&root, "version")?;
    if version != FORMAT_VERSION {
        return Err(ResumeError::UnsupportedVersion(version));
    }
    let info_hash = decode_info_hash(&root, expected_info_hash)?;
    let saved_pieces = int(&root, "pieces")?;
    if u32::try_from(saved_pieces) != Ok(piece_count) {
        return Err(ResumeError::PieceCount {
            saved: saved_pieces,
            expected: piece_count,
        });
    }
    let have =
        Bitfield::from_bytes(string(&root, "have")?, piece_count).map_err(ResumeError::Bitfield)?;
    let files = decode_files(&root, file_count)?;
    Ok(ResumeState {
        info_hash,
        have,
        files,
    })
}

/// Decoder bounds for a resume file of `file_count` files.
fn limits(file_count: usize) -> Limits {
    Limits {
        max_depth: MAX_DEPTH,
        max_tokens: file_count
            .saturating_mul(TOKENS_PER_FILE)
            .saturating_add(FIXED_TOKENS),
        strictness: Strictness::Lenient,
    }
}

/// The integer under `key`.
fn int(dict: &Dict<'_>, key: &'static str) -> Result<i64, ResumeError> {
    match dict.get(key.as_bytes()) {
        Some(Value::Int(n)) => Ok(*n),
        Some(_) => Err(ResumeError::WrongType {
            key,
            expected: "an integer",
        }),
        None => Err(ResumeError::Missing(key)),
    }
}

/// The byte string under `key`.
fn string<'a>(dict: &Dict<'a>, key: &'static str) -> Result<&'a [u8], ResumeError> {
    match dict.get(key.as_bytes()) {
        Some(Value::Bytes(bytes)) => Ok(bytes),
        Some(_) => Err(ResumeError::WrongType {
            key,
            expected: "a string",
        }),
        None => Err(ResumeError::Missing(key)),
    }
}

/// The `info hash`, which must be 20 bytes and the expected one.
fn decode_info_hash(root: &Dict<'_>, expected: &InfoHash) -> Result<InfoHash, ResumeError> {
    let bytes = string(root, "info hash")?;
    let found = <[u8; 20]>::try_from(bytes)
        .map(Sha1Hash)
        .map_err(|_| ResumeError::WrongType {
            key: "info hash",
            expected: "a 20-byte string",
        })?;
    if &found != expected {
        return Err(ResumeError::OtherTorrent { found });
    }
    Ok(found)
}

/// The `files` list, one entry per torrent file.
fn decode_files(root: &Dict<'_>, file_count: usize) -> Result<Vec<FileStamp>, ResumeError> {
    let list = match root.get(b"files") {
        Some(Value::List(list)) => list,
        Some(_) => {
            return Err(ResumeError::WrongType {
                key: "files",
                expected: "a list",
            })
        }
        None => return Err(ResumeError::Missing("files")),
    };
    if list.items.len() != file_count {
        return Err(ResumeError::FileCount {
            saved: list.items.len(),
            expected: file_count,
        });
    }
    list.items
        .iter()
        .enumerate()
        .map(|(index, item)| decode_file(index, item))
        .collect()
}

/// One `files` entry: `size` absent or `-1` means missing; `mtime` or
/// `ctime` absent means unknown.
fn decode_file(index: usize, item: &Value<'_>) -> Result<FileStamp, ResumeError> {
    let bad = |reason| ResumeError::BadFile { index, reason };
    let entry = item.as_dict().ok_or(bad("not a dictionary"))?;
    let len_on_disk = match entry.get(b"size") {
        None | Some(Value::Int(-1)) => None,
        Some(Value::Int(n)) => Some(u64::try_from(*n).map_err(|_| bad("`size` is negative"))?),
        Some(_) => return Err(bad("`size` is not an integer")),
    };
    let time = |key: &[u8], wrong| match entry.get(key) {
        None => Ok(None),
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(_) => Err(bad(wrong)),
    };
    Ok(FileStamp {
        len_on_disk,
        mtime_ns: time(b"mtime", "`mtime` is not an integer")?,
        ctime_ns: time(b"ctime", "`ctime` is not an integer")?,
    })
}

/// The pieces of `saved.have` that may be trusted without re-hashing, given
/// the files' stamps now (`current`, in torrent order).
///
/// A piece is trusted only if it is in `saved.have` and every file it
/// touches is unchanged since the save (same size and modification time,
/// both known, and the same status-change time) and is long enough now to
/// hold the piece's bytes. A ctime is compared like the others: one known
/// on one side only counts as a change, so a resume file written before
/// ctimes were recorded costs one re-check of the files it lists (and
/// saves them with ctimes); where neither side knows one, size and mtime
/// decide alone. Padding files and symlinks are never on disk and are
/// ignored. A state for another torrent or
/// piece count trusts nothing.
pub fn trusted_pieces(saved: &ResumeState, current: &[FileStamp], meta: &Metainfo) -> Bitfield {
    let layout = &meta.layout;
    if saved.info_hash != meta.info_hash || saved.have.len() != layout.piece_count() {
        return Bitfield::new(layout.piece_count());
    }
    let mut trusted = saved.have.clone();
    for (index, file) in meta.files.iter().enumerate() {
        if !file.on_disk() {
            continue;
        }
        let good_len = trusted_len(saved.files.get(index), current.get(index));
        untrust_from(&mut trusted, layout, index, good_len);
    }
    trusted
}

/// How many leading bytes of a file may be trusted: none if it changed since
/// the save (or either stamp is unknown), else the bytes it holds now.
fn trusted_len(saved: Option<&FileStamp>, now: Option<&FileStamp>) -> u64 {
    match (saved, now) {
        (Some(saved), Some(now)) if is_known(saved) && saved == now => now.len_on_disk.unwrap_or(0),
        _ => 0,
    }
}

/// Whether both the size and the time of a stamp are known.
fn is_known(stamp: &FileStamp) -> bool {
    stamp.len_on_disk.is_some() && stamp.mtime_ns.is_some()
}

/// Clears every piece that holds a byte of `file` at or after `from` (an
/// offset inside the file).
fn untrust_from(trusted: &mut Bitfield, layout: &Layout, file: usize, from: u64) {
    let pieces = layout.pieces_of_file(file);
    if from >= layout.file_len(file) {
        return;
    }
    let first_byte = layout.file_offset(file).saturating_add(from);
    let first = u32::try_from(first_byte / u64::from(layout.piece_len())).unwrap_or(u32::MAX);
    for piece in first.max(pieces.start)..pieces.end {
        trusted.clear(piece);
    }
}

#[cfg(test)]
pub(super) mod tests;
