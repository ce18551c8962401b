//! Metainfo: the contents of a `.torrent` file, checked and ready to use
//! (BEP 3 "metainfo files"; BEP 12 `announce-list`; BEP 19 `url-list`;
//! BEP 27 `private`; BEP 47 padding files and symlinks; BEP 52 hybrid
//! torrents, whose v2 file tree must agree with the v1 file list).
//!
//! Layer 0: pure. [`Metainfo::from_bytes`] takes the file's bytes and either
//! returns a torrent every later layer can trust (piece count matches the
//! hashes, lengths are non-negative and add up, every file path is
//! sanitized and unique) or a [`MetainfoError`] that says what is wrong.
//!
//! The info-hash is the SHA-1 of the `info` dictionary's raw bytes exactly as
//! they appear in the file, so torrents whose keys are not in canonical order
//! (or that end in a stray newline) still get the hash every other client
//! computes.
//!
//! Cost: the file is read through a flat [`bencode::Doc`] (12 bytes per
//! value) and paths are made unique in time linear in their bytes, so any
//! file under [`MAX_TORRENT_BYTES`] parses in a fraction of a second and
//! tens of MB (`make bench` measures the worst shapes known).

mod error;
mod hybrid;
pub mod layout;
pub mod sanitize;

use std::path::PathBuf;

pub use error::MetainfoError;
pub use layout::{Block, FileSpan, Layout, PieceIndex, BLOCK_LEN};

use crate::bencode::{self, Kind, Limits, Node};
use crate::hash::Sha1Hash;

/// Largest `.torrent` file accepted (libtorrent's limit): bounds the memory a
/// hostile file can make us spend before any other check runs.
pub const MAX_TORRENT_BYTES: u64 = 10 * 1024 * 1024;

/// Most pieces in one torrent (libtorrent's limit; 2^21 pieces keeps the
/// bitfield message under 256 KiB).
pub const MAX_PIECES: u32 = 2_097_152;

/// Largest piece length accepted: 512 MiB, about what libtorrent allows
/// (32,767 blocks of 16 KiB). Pieces are verified from disk in small chunks,
/// so a large piece costs time per check, not memory.
pub const MAX_PIECE_LEN: u32 = 512 * 1024 * 1024;

/// Most elements in one file path (libtorrent's directory-depth limit).
pub const MAX_PATH_DEPTH: usize = 100;

/// Most warnings kept for the user. A hostile torrent can need hundreds of
/// thousands of repairs; the first few show what kind, the rest would only
/// cost memory, so they are counted in one last line.
pub const MAX_WARNINGS: usize = 50;

/// Bytes allowed after the top-level dictionary: whitespace that editors,
/// web servers and copy-paste add (libtorrent and Transmission ignore any
/// trailing bytes; pollen refuses anything else, which is a sign of damage).
const TRAILING_WHITESPACE: &[u8] = b" \t\r\n";

/// A path element that marks an old BitComet padding file (written before
/// BEP 47's `attr`); libtorrent treats any path containing it as padding.
const BITCOMET_PADDING: &[u8] = b"_____padding_file_";

/// A torrent's info-hash: the SHA-1 of its raw `info` dictionary.
pub type InfoHash = Sha1Hash;

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFile {
    /// Where it will be written, relative to the destination directory:
    /// sanitized, unique, made only of normal components. For a multi-file
    /// torrent it starts with the torrent's name. Padding files and
    /// symlinks, which are never written, have a path for display only.
    pub path: PathBuf,
    /// Its length in bytes (0 for a symlink, whatever the torrent says).
    pub len: u64,
    /// Offset of its first byte in the torrent's byte stream.
    pub offset: u64,
    /// A BEP 47 padding file (`attr` contains `p`, or an old BitComet
    /// `_____padding_file_` name): zeros that are never written to disk.
    pub padding: bool,
    /// A BEP 47 symlink (`attr` contains `l`): it holds no bytes of the
    /// torrent and pollen does not create it.
    pub symlink: bool,
}

impl TorrentFile {
    /// Whether the file exists on disk: not padding, not a symlink.
    pub fn on_disk(&self) -> bool {
        !self.padding && !self.symlink
    }
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
    /// Things that were ignored or repaired, for the user to see (at most
    /// [`MAX_WARNINGS`], then one line counting the rest).
    pub warnings: Vec<String>,
}

impl Metainfo {
    /// Parses and checks a `.torrent` file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_TORRENT_BYTES {
            return Err(MetainfoError::TooLarge { len });
        }
        let (doc, used) = bencode::doc::parse_prefix(bytes, Limits::TORRENT)?;
        check_trailing(bytes, used)?;
        let root = doc.root();
        if root.kind() != Kind::Dict {
            return Err(MetainfoError::NotADictionary);
        }
        let info = match root.get(b"info") {
            None => return Err(MetainfoError::Missing("info")),
            Some(info) if info.kind() == Kind::Dict => info,
            Some(_) => return Err(wrong("info", "a dictionary")),
        };
        let info_hash = Sha1Hash::of(info.raw());
        let mut warnings = Warnings::default();
        let parsed = parse_info(info, info_hash, &mut warnings)?;
        let trackers = parse_trackers(root, &mut warnings);
        Ok(Metainfo {
            info_hash,
            name: parsed.name,
            multi_file: parsed.multi_file,
            files: parsed.files,
            layout: parsed.layout,
            piece_hashes: parsed.piece_hashes,
            trackers,
            private: info.get_int(b"private") == Some(1),
            comment: lossy(root, b"comment"),
            created_by: lossy(root, b"created by"),
            creation_date: root.get_int(b"creation date"),
            url_list: parse_url_list(root),
            info_bytes: info.raw().to_vec(),
            warnings: warnings.finish(),
        })
    }

    /// A stand-in for a torrent known only by its info-hash (a magnet
    /// link), until its metadata arrives: `name` (the link's `dn`, or the
    /// info-hash in hex) for the status line, the link's trackers, and no
    /// files, pieces or info dictionary.
    pub fn awaiting(info_hash: InfoHash, name: &str, trackers: Vec<Vec<String>>) -> Metainfo {
        Metainfo {
            info_hash,
            name: name.to_string(),
            multi_file: false,
            files: Vec::new(),
            layout: Layout::empty(),
            piece_hashes: Vec::new(),
            trackers,
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            url_list: Vec::new(),
            info_bytes: Vec::new(),
            warnings: Vec::new(),
        }
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

/// Anything after the top-level value must be whitespace.
fn check_trailing(bytes: &[u8], used: usize) -> Result<(), MetainfoError> {
    let rest = bytes.get(used..).unwrap_or_default();
    match rest.iter().position(|b| !TRAILING_WHITESPACE.contains(b)) {
        None => Ok(()),
        Some(at) => Err(MetainfoError::Bencode(bencode::DecodeError {
            kind: bencode::DecodeErrorKind::TrailingData,
            offset: used + at,
        })),
    }
}

/// Warnings as they are found, capped at [`MAX_WARNINGS`].
#[derive(Debug, Default)]
struct Warnings {
    kept: Vec<String>,
    dropped: usize,
}

impl Warnings {
    /// Adds the warning `make` writes, if there is room for it.
    fn push(&mut self, make: impl FnOnce() -> String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(make());
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.kept
                .push(format!("... and {} more like these", self.dropped));
        }
        self.kept
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
    info: Node<'_, '_>,
    info_hash: InfoHash,
    warnings: &mut Warnings,
) -> Result<ParsedInfo, MetainfoError> {
    let piece_len = parse_piece_len(info)?;
    let pieces = match info.get(b"pieces") {
        Some(pieces) => pieces.as_bytes().ok_or(wrong("pieces", "a string"))?,
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
        warnings.push(|| {
            format!(
                "name {:?} is written as {name:?}",
                String::from_utf8_lossy(raw_name)
            )
        });
    }
    let multi_file = match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::LengthAndFiles),
        (None, None) => return Err(MetainfoError::Missing("length")),
        (_, files) => files.is_some(),
    };
    let files = if multi_file {
        parse_files(info, &name, warnings)?
    } else {
        vec![single_file(info, &name)?]
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
    hybrid::check(info, piece_len, || v1_files(info, raw_name, &files))?;
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

fn parse_piece_len(info: Node<'_, '_>) -> Result<u32, MetainfoError> {
    let piece_len = match info.get(b"piece length") {
        Some(n) => n.as_int().ok_or(wrong("piece length", "an integer"))?,
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
fn parse_len(dict: Node<'_, '_>, key: &'static str) -> Result<u64, MetainfoError> {
    match dict.get(key.as_bytes()) {
        Some(n) => {
            let n = n.as_int().ok_or(wrong(key, "an integer"))?;
            u64::try_from(n).map_err(|_| MetainfoError::NegativeLength(n))
        }
        None => Err(MetainfoError::Missing(key)),
    }
}

fn single_file(info: Node<'_, '_>, name: &str) -> Result<TorrentFile, MetainfoError> {
    Ok(TorrentFile {
        path: PathBuf::from(name),
        len: parse_len(info, "length")?,
        offset: 0,
        padding: false,
        symlink: false,
    })
}

fn parse_files(
    info: Node<'_, '_>,
    name: &str,
    warnings: &mut Warnings,
) -> Result<Vec<TorrentFile>, MetainfoError> {
    let list = info.get_list(b"files").ok_or(wrong("files", "a list"))?;
    let items = || list.items().into_iter().flatten();
    if list.is_empty_container() {
        return Err(MetainfoError::EmptyFiles);
    }
    let mut files = Vec::with_capacity(items().count());
    // The sanitized paths of the files to be written, and whose they are.
    let mut paths: Vec<String> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut changed: Vec<usize> = Vec::new();
    let mut offset: u64 = 0;
    for (index, item) in items().enumerate() {
        if item.kind() != Kind::Dict {
            return Err(wrong("files", "a list of dictionaries"));
        }
        let entry = parse_entry(item, index, name, warnings)?;
        if let Some(path) = entry.to_claim {
            paths.push(path);
            owners.push(index);
        }
        if entry.changed {
            changed.push(index);
        }
        let len = entry.file.len;
        files.push(TorrentFile {
            offset,
            ..entry.file
        });
        offset = offset
            .checked_add(len)
            .ok_or(MetainfoError::TotalOverflow)?;
    }
    let renamed = sanitize::make_unique(&mut paths).map_err(|at| {
        let raw = owners
            .get(at)
            .and_then(|&i| items().nth(i))
            .map(raw_path)
            .unwrap_or_default();
        MetainfoError::TooManyDuplicates(joined(&raw))
    })?;
    for (path, &owner) in paths.into_iter().zip(&owners) {
        if let Some(file) = files.get_mut(owner) {
            file.path = PathBuf::from(path);
        }
    }
    let mut repaired: Vec<usize> = renamed
        .iter()
        .filter_map(|&r| owners.get(r).copied())
        .collect();
    repaired.extend(changed);
    repaired.sort_unstable();
    repaired.dedup();
    let mut entries = items().enumerate();
    for index in repaired {
        warnings.push(|| {
            let raw = entries
                .find(|(i, _)| *i == index)
                .map(|(_, entry)| raw_path(entry))
                .unwrap_or_default();
            let path = files.get(index).map(|f| f.path.display().to_string());
            format!(
                "file {:?} is written as {:?}",
                joined(&raw),
                path.unwrap_or_default()
            )
        });
    }
    Ok(files)
}

/// One `files` entry, before its path is made unique.
struct Entry {
    /// The file (`offset` is set by the caller; `path` too, unless it is a
    /// padding file or a symlink, whose path is for display only).
    file: TorrentFile,
    /// The sanitized path to make unique, for a file that will be written.
    to_claim: Option<String>,
    /// Whether sanitizing changed the path.
    changed: bool,
}

/// One `files` entry. BEP 47: a symlink holds no bytes whatever its
/// `length` says (libtorrent reads it as 0) and is not created; a padding
/// file needs no `path`, because it is never written.
fn parse_entry(
    entry: Node<'_, '_>,
    index: usize,
    name: &str,
    warnings: &mut Warnings,
) -> Result<Entry, MetainfoError> {
    let attr = entry.get_bytes(b"attr").unwrap_or_default();
    let symlink = attr.contains(&b'l');
    let len = if symlink {
        0
    } else {
        parse_len(entry, "length")?
    };
    let mut padding = !symlink && attr.contains(&b'p');
    let path_list = match padding {
        true => None,
        false => Some(path_list(entry)?),
    };
    let elements = || path_list.into_iter().flat_map(elements_of);
    padding |= !symlink && elements().any(is_bitcomet_padding);
    let mut file = TorrentFile {
        path: PathBuf::new(),
        len,
        offset: 0,
        padding,
        symlink,
    };
    if padding {
        // Never created on disk; named only for display.
        file.path = PathBuf::from(name).join(".pad").join(index.to_string());
        return Ok(Entry {
            file,
            to_claim: None,
            changed: false,
        });
    }
    let (path, changed) = sanitized_path(name, elements());
    if symlink {
        warnings.push(|| {
            let raw: Vec<&[u8]> = elements().collect();
            format!("symlink {:?} is not created", joined(&raw))
        });
        file.path = PathBuf::from(path);
        return Ok(Entry {
            file,
            to_claim: None,
            changed: false,
        });
    }
    Ok(Entry {
        file,
        to_claim: Some(path),
        changed,
    })
}

/// `name/` and the sanitized elements (`_` if none survive), and whether
/// sanitizing changed anything.
fn sanitized_path<'a>(name: &str, elements: impl Iterator<Item = &'a [u8]>) -> (String, bool) {
    let mut path = String::from(name);
    let mut changed = false;
    let mut survived = false;
    for raw in elements {
        match sanitize::sanitize_element(raw) {
            None => changed = true,
            Some(clean) => {
                changed |= clean.as_bytes() != raw;
                survived = true;
                path.push('/');
                path.push_str(&clean);
            }
        }
    }
    if !survived {
        path.push_str("/_");
    }
    (path, changed)
}

/// Whether a path element names an old BitComet padding file.
fn is_bitcomet_padding(element: &[u8]) -> bool {
    element
        .windows(BITCOMET_PADDING.len())
        .any(|w| w == BITCOMET_PADDING)
}

/// The path list of one `files` entry (`path.utf-8` preferred), checked:
/// 1 to [`MAX_PATH_DEPTH`] strings.
fn path_list<'d, 'a>(entry: Node<'d, 'a>) -> Result<Node<'d, 'a>, MetainfoError> {
    let utf8 = entry.get_list(b"path.utf-8").filter(|list| {
        list.items()
            .into_iter()
            .flatten()
            .all(|e| e.as_str().is_some())
    });
    let list = match (utf8, entry.get(b"path")) {
        (Some(list), _) => list,
        (_, Some(list)) if list.kind() == Kind::List => list,
        (_, Some(_)) => return Err(wrong("path", "a list")),
        (_, None) => return Err(MetainfoError::Missing("path")),
    };
    let mut count = 0;
    for element in list.items().into_iter().flatten() {
        if element.kind() != Kind::Bytes {
            return Err(wrong("path", "a list of strings"));
        }
        count += 1;
    }
    if count == 0 {
        return Err(MetainfoError::EmptyPath);
    }
    if count > MAX_PATH_DEPTH {
        return Err(MetainfoError::PathTooDeep(count));
    }
    Ok(list)
}

/// The raw elements of a path list checked by [`path_list`].
fn elements_of<'d, 'a>(list: Node<'d, 'a>) -> impl Iterator<Item = &'a [u8]> + use<'d, 'a> {
    list.items()
        .into_iter()
        .flatten()
        .filter_map(Node::as_bytes)
}

/// The raw path elements of one `files` entry, for messages.
fn raw_path<'a>(entry: Node<'_, 'a>) -> Vec<&'a [u8]> {
    path_list(entry)
        .map(|list| elements_of(list).collect())
        .unwrap_or_default()
}

/// Raw path elements joined with `/` (lossy UTF-8), for messages.
fn joined(elements: &[&[u8]]) -> String {
    elements
        .iter()
        .map(|e| String::from_utf8_lossy(e))
        .collect::<Vec<_>>()
        .join("/")
}

/// The v1 files as the hybrid check compares them, one at a time: those
/// that hold data (not empty, not padding, not symlinks), with their raw
/// path elements (the name alone for a single-file torrent).
fn v1_files<'d, 'a, 'f>(
    info: Node<'d, 'a>,
    raw_name: &'a [u8],
    files: &'f [TorrentFile],
) -> impl Iterator<Item = (Vec<&'a [u8]>, &'f TorrentFile)> + use<'d, 'a, 'f> {
    let entries = info.get_list(b"files").and_then(Node::items);
    let single = entries.is_none();
    let entries = entries
        .into_iter()
        .flatten()
        .map(Some)
        .chain(std::iter::repeat(None));
    files
        .iter()
        .zip(entries)
        .filter(|(file, _)| file.on_disk() && file.len > 0)
        .map(move |(file, entry)| {
            let path = match (single, entry) {
                (true, _) => vec![raw_name],
                (false, Some(entry)) => raw_path(entry),
                (false, None) => Vec::new(),
            };
            (path, file)
        })
}

/// `key.utf-8` when it is valid UTF-8, else `key` (BEP 3 says strings are
/// UTF-8; some old tools wrote a local code page and added the `.utf-8` key).
fn utf8_variant<'a>(dict: Node<'_, 'a>, utf8_key: &[u8], key: &[u8]) -> Option<&'a [u8]> {
    match dict.get_str(utf8_key) {
        Some(text) => Some(text.as_bytes()),
        None => dict.get_bytes(key),
    }
}

fn lossy(dict: Node<'_, '_>, key: &[u8]) -> Option<String> {
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
fn parse_trackers(root: Node<'_, '_>, warnings: &mut Warnings) -> Vec<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut keep = |value: Node<'_, '_>, warnings: &mut Warnings| -> Option<String> {
        let url = value.as_str()?.trim().to_string();
        if !is_tracker_url(&url) {
            warnings.push(|| format!("ignoring tracker {url:?}: not http, https or udp"));
            return None;
        }
        seen.insert(url.clone()).then_some(url)
    };
    let mut tiers = Vec::new();
    for tier in root
        .get_list(b"announce-list")
        .and_then(Node::items)
        .into_iter()
        .flatten()
    {
        let urls: Vec<String> = tier
            .items()
            .into_iter()
            .flatten()
            .filter_map(|u| keep(u, warnings))
            .collect();
        if !urls.is_empty() {
            tiers.push(urls);
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
fn parse_url_list(root: Node<'_, '_>) -> Vec<String> {
    let items: Vec<Node<'_, '_>> = match root.get(b"url-list") {
        Some(list) if list.kind() == Kind::List => list.items().into_iter().flatten().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(Node::as_str)
        .filter(|url| {
            let lower = url.to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
