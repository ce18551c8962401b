//! Metainfo: the contents of a `.torrent` file, checked and ready to use
//! (BEP 3 "metainfo files"; BEP 12 `announce-list`; BEP 19 `url-list`;
//! BEP 27 `private`; BEP 47 padding files).
//!
//! Layer 0: pure. [`Metainfo::from_bytes`] takes the file's bytes and either
//! returns a torrent every later layer can trust (piece count matches the
//! hashes, lengths are non-negative and add up, every file path is
//! sanitized and unique) or a [`MetainfoError`] that says what is wrong.
//!
//! The info-hash is the SHA-1 of the `info` dictionary's raw bytes exactly as
//! they appear in the file, so torrents whose keys are not in canonical order
//! still get the hash every other client computes.

mod error;
pub mod layout;
pub mod sanitize;

use std::path::PathBuf;

pub use error::MetainfoError;
pub use layout::{Block, FileSpan, Layout, PieceIndex, BLOCK_LEN};

use crate::bencode::{self, Dict, Limits, Value};
use crate::hash::Sha1Hash;
use sanitize::PathDeduper;

/// Largest `.torrent` file accepted (libtorrent's limit): bounds the memory a
/// hostile file can make us spend before any other check runs.
pub const MAX_TORRENT_BYTES: u64 = 10 * 1024 * 1024;

/// Most pieces in one torrent (libtorrent's limit; 2^21 pieces keeps the
/// bitfield message under 256 KiB).
pub const MAX_PIECES: u32 = 2_097_152;

/// Largest piece length accepted: 128 MiB, twice the largest that common
/// creators emit. A piece is the unit we verify, so it bounds verify buffers.
pub const MAX_PIECE_LEN: u32 = 128 * 1024 * 1024;

/// Most elements in one file path (libtorrent's directory-depth limit).
pub const MAX_PATH_DEPTH: usize = 100;

/// A torrent's info-hash: the SHA-1 of its raw `info` dictionary.
pub type InfoHash = Sha1Hash;

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFile {
    /// Where it will be written, relative to the destination directory:
    /// sanitized, unique, made only of normal components. For a multi-file
    /// torrent it starts with the torrent's name.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Offset of its first byte in the torrent's byte stream.
    pub offset: u64,
    /// A BEP 47 padding file (`attr` contains `p`): zeros that are never
    /// written to disk.
    pub padding: bool,
    /// The path as the torrent spelled it (lossy UTF-8, `/`-joined), for display.
    pub raw_path: String,
}

/// A checked torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of the raw `info` dictionary.
    pub info_hash: InfoHash,
    /// The sanitized name: file name (single-file) or top directory (multi-file).
    pub name: String,
    /// Whether the torrent lists `files` (a directory) rather than one `length`.
    pub multi_file: bool,
    /// The files in torrent order.
    pub files: Vec<TorrentFile>,
    /// Piece and file arithmetic.
    pub layout: Layout,
    /// The SHA-1 of each piece, by index.
    pub piece_hashes: Vec<Sha1Hash>,
    /// Tracker URLs in tiers (BEP 12); `announce` alone is one tier of one.
    /// Only http, https and udp URLs are kept.
    pub trackers: Vec<Vec<String>>,
    /// BEP 27: only the trackers may hand out peers.
    pub private: bool,
    /// Free-text comment.
    pub comment: Option<String>,
    /// The program that made the torrent.
    pub created_by: Option<String>,
    /// Creation time, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// BEP 19 web seeds (http and https only).
    pub url_list: Vec<String>,
    /// The raw `info` dictionary (for serving metadata to peers, BEP 9).
    pub info_bytes: Vec<u8>,
    /// Things that were ignored or repaired, for the user to see.
    pub warnings: Vec<String>,
}

impl Metainfo {
    /// Parses and checks a `.torrent` file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_TORRENT_BYTES {
            return Err(MetainfoError::TooLarge { len });
        }
        let root = bencode::decode(bytes, Limits::TORRENT)?;
        let Value::Dict(root) = root else {
            return Err(MetainfoError::NotADictionary);
        };
        let info = match root.get(b"info") {
            None => return Err(MetainfoError::Missing("info")),
            Some(Value::Dict(info)) => info,
            Some(_) => return Err(wrong("info", "a dictionary")),
        };
        let info_hash = Sha1Hash::of(info.raw);
        let mut warnings = Vec::new();
        let parsed = parse_info(info, info_hash, &mut warnings)?;
        let trackers = parse_trackers(&root, &mut warnings);
        Ok(Metainfo {
            info_hash,
            name: parsed.name,
            multi_file: parsed.multi_file,
            files: parsed.files,
            layout: parsed.layout,
            piece_hashes: parsed.piece_hashes,
            trackers,
            private: info.get_int(b"private") == Some(1),
            comment: lossy(&root, b"comment"),
            created_by: lossy(&root, b"created by"),
            creation_date: root.get_int(b"creation date"),
            url_list: parse_url_list(&root),
            info_bytes: info.raw.to_vec(),
            warnings,
        })
    }

    /// The expected SHA-1 of a piece.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<&Sha1Hash> {
        self.piece_hashes.get(piece.as_usize())
    }

    /// Bytes in the whole torrent.
    pub fn total_len(&self) -> u64 {
        self.layout.total_len()
    }
}

/// The parts of the `info` dictionary.
struct ParsedInfo {
    name: String,
    multi_file: bool,
    files: Vec<TorrentFile>,
    layout: Layout,
    piece_hashes: Vec<Sha1Hash>,
}

fn wrong(key: &'static str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType { key, expected }
}

fn parse_info(
    info: &Dict<'_>,
    info_hash: InfoHash,
    warnings: &mut Vec<String>,
) -> Result<ParsedInfo, MetainfoError> {
    let piece_len = parse_piece_len(info)?;
    let pieces = match info.get(b"pieces") {
        Some(Value::Bytes(pieces)) => *pieces,
        Some(_) => return Err(wrong("pieces", "a string")),
        None if info.get(b"file tree").is_some() || info.get_int(b"meta version") == Some(2) => {
            return Err(MetainfoError::V2Only)
        }
        None => return Err(MetainfoError::Missing("pieces")),
    };
    if pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(pieces.len()));
    }
    let hash_count = pieces.len() / 20;
    if hash_count > MAX_PIECES as usize {
        return Err(MetainfoError::TooManyPieces(hash_count as u64));
    }
    let raw_name =
        utf8_variant(info, b"name.utf-8", b"name").ok_or(MetainfoError::Missing("name"))?;
    let name = sanitize::sanitize_name(raw_name, &info_hash.to_hex());
    if name.as_bytes() != raw_name {
        warnings.push(format!(
            "name {:?} is written as {name:?}",
            String::from_utf8_lossy(raw_name)
        ));
    }
    let multi_file = match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::LengthAndFiles),
        (None, None) => return Err(MetainfoError::Missing("length")),
        (_, files) => files.is_some(),
    };
    let files = if multi_file {
        parse_files(info, &name, warnings)?
    } else {
        vec![single_file(info, &name, raw_name)?]
    };
    let lens: Vec<u64> = files.iter().map(|f| f.len).collect();
    let layout = Layout::new(piece_len, &lens)?;
    if layout.piece_count() > MAX_PIECES {
        return Err(MetainfoError::TooManyPieces(layout.piece_count().into()));
    }
    if hash_count != layout.piece_count() as usize {
        return Err(MetainfoError::PieceCountMismatch {
            hashes: hash_count,
            expected: layout.piece_count(),
        });
    }
    let piece_hashes = pieces
        .chunks_exact(20)
        .filter_map(|chunk| <[u8; 20]>::try_from(chunk).ok().map(Sha1Hash))
        .collect();
    Ok(ParsedInfo {
        name,
        multi_file,
        files,
        layout,
        piece_hashes,
    })
}

fn parse_piece_len(info: &Dict<'_>) -> Result<u32, MetainfoError> {
    let piece_len = match info.get(b"piece length") {
        Some(Value::Int(n)) => *n,
        Some(_) => return Err(wrong("piece length", "an integer")),
        None => return Err(MetainfoError::Missing("piece length")),
    };
    if piece_len <= 0 {
        return Err(MetainfoError::PieceLengthNotPositive(piece_len));
    }
    u32::try_from(piece_len)
        .ok()
        .filter(|&n| n <= MAX_PIECE_LEN)
        .ok_or(MetainfoError::PieceLengthTooLarge(piece_len))
}

/// A non-negative length from `key`.
fn parse_len(dict: &Dict<'_>, key: &'static str) -> Result<u64, MetainfoError> {
    match dict.get(key.as_bytes()) {
        Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| MetainfoError::NegativeLength(*n)),
        Some(_) => Err(wrong(key, "an integer")),
        None => Err(MetainfoError::Missing(key)),
    }
}

fn single_file(info: &Dict<'_>, name: &str, raw_name: &[u8]) -> Result<TorrentFile, MetainfoError> {
    Ok(TorrentFile {
        path: PathBuf::from(name),
        len: parse_len(info, "length")?,
        offset: 0,
        padding: false,
        raw_path: String::from_utf8_lossy(raw_name).into_owned(),
    })
}

fn parse_files(
    info: &Dict<'_>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<TorrentFile>, MetainfoError> {
    let list = info.get_list(b"files").ok_or(wrong("files", "a list"))?;
    if list.items.is_empty() {
        return Err(MetainfoError::EmptyFiles);
    }
    let mut deduper = PathDeduper::new();
    let mut files = Vec::with_capacity(list.items.len());
    let mut offset: u64 = 0;
    for item in &list.items {
        let entry = item
            .as_dict()
            .ok_or(wrong("files", "a list of dictionaries"))?;
        let len = parse_len(entry, "length")?;
        let elements = parse_path(entry)?;
        let raw_path = elements
            .iter()
            .map(|e| String::from_utf8_lossy(e))
            .collect::<Vec<_>>()
            .join("/");
        let padding = entry.get_bytes(b"attr").is_some_and(|a| a.contains(&b'p'));
        let path = if padding {
            // Never created on disk; named only for display.
            PathBuf::from(name)
                .join(".pad")
                .join(files.len().to_string())
        } else {
            claim_path(&mut deduper, name, &elements, &raw_path, warnings)?
        };
        files.push(TorrentFile {
            path,
            len,
            offset,
            padding,
            raw_path,
        });
        offset = offset
            .checked_add(len)
            .ok_or(MetainfoError::TotalOverflow)?;
    }
    Ok(files)
}

/// The raw path elements of one `files` entry (`path.utf-8` preferred).
fn parse_path<'a>(entry: &Dict<'a>) -> Result<Vec<&'a [u8]>, MetainfoError> {
    let list = match (entry.get_list(b"path.utf-8"), entry.get(b"path")) {
        (Some(list), _) if list.items.iter().all(|e| e.as_str().is_some()) => list,
        (_, Some(Value::List(list))) => list,
        (_, Some(_)) => return Err(wrong("path", "a list")),
        (_, None) => return Err(MetainfoError::Missing("path")),
    };
    if list.items.is_empty() {
        return Err(MetainfoError::EmptyPath);
    }
    if list.items.len() > MAX_PATH_DEPTH {
        return Err(MetainfoError::PathTooDeep(list.items.len()));
    }
    list.items
        .iter()
        .map(|e| e.as_bytes().ok_or(wrong("path", "a list of strings")))
        .collect()
}

/// Sanitizes a file's path under the torrent's directory and makes it unique.
fn claim_path(
    deduper: &mut PathDeduper,
    name: &str,
    elements: &[&[u8]],
    raw_path: &str,
    warnings: &mut Vec<String>,
) -> Result<PathBuf, MetainfoError> {
    let mut clean = vec![name.to_string()];
    let mut rest = sanitize::sanitize_elements(elements.iter().copied());
    if rest.is_empty() {
        rest.push("_".to_string());
    }
    clean.extend(rest);
    let path = deduper
        .claim(clean)
        .ok_or_else(|| MetainfoError::TooManyDuplicates(raw_path.to_string()))?;
    let expected: PathBuf = [name, raw_path].iter().collect();
    if path != expected {
        warnings.push(format!(
            "file {raw_path:?} is written as {:?}",
            path.display().to_string()
        ));
    }
    Ok(path)
}

/// `key.utf-8` when it is valid UTF-8, else `key` (BEP 3 says strings are
/// UTF-8; some old tools wrote a local code page and added the `.utf-8` key).
fn utf8_variant<'a>(dict: &Dict<'a>, utf8_key: &[u8], key: &[u8]) -> Option<&'a [u8]> {
    match dict.get_str(utf8_key) {
        Some(text) => Some(text.as_bytes()),
        None => dict.get_bytes(key),
    }
}

fn lossy(dict: &Dict<'_>, key: &[u8]) -> Option<String> {
    dict.get_bytes(key)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// Whether a tracker URL uses a scheme pollen can announce to.
pub fn is_tracker_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "udp://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
}

/// BEP 12 tiers from `announce-list`, or `announce` alone. Unusable URLs are
/// dropped with a warning; a URL is kept once, in its first tier.
fn parse_trackers(root: &Dict<'_>, warnings: &mut Vec<String>) -> Vec<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut keep = |value: &Value<'_>, warnings: &mut Vec<String>| -> Option<String> {
        let url = value.as_str()?.trim().to_string();
        if !is_tracker_url(&url) {
            warnings.push(format!("ignoring tracker {url:?}: not http, https or udp"));
            return None;
        }
        seen.insert(url.clone()).then_some(url)
    };
    let mut tiers = Vec::new();
    if let Some(list) = root.get_list(b"announce-list") {
        for tier in &list.items {
            let urls: Vec<String> = tier
                .as_list()
                .map(|t| t.items.iter().filter_map(|u| keep(u, warnings)).collect())
                .unwrap_or_default();
            if !urls.is_empty() {
                tiers.push(urls);
            }
        }
    }
    if tiers.is_empty() {
        if let Some(url) = root.get(b"announce").and_then(|u| keep(u, warnings)) {
            tiers.push(vec![url]);
        }
    }
    tiers
}

/// BEP 19 `url-list`: one string or a list of them; http and https only.
fn parse_url_list(root: &Dict<'_>) -> Vec<String> {
    let items: Vec<&Value<'_>> = match root.get(b"url-list") {
        Some(Value::List(list)) => list.items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|url| {
            let lower = url.to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
