//! BEP 52 hybrid torrents: a v2 `file tree` (with `meta version` 2) beside
//! the v1 `pieces` and file list, both describing the same files.
//!
//! Layer 0: pure. pollen downloads by the v1 half only, but a hybrid whose
//! halves disagree would make pollen and a v2 client write different files
//! from one info-hash, so such a torrent is refused, as libtorrent refuses
//! it ("the v1 and v2 file metadata does not match"). The checks:
//!
//! - `meta version` is 1 or 2 (or absent); a `file tree` needs version 2 and
//!   version 2 needs a `file tree`;
//! - the piece length is a power of two of at least 16 KiB (BEP 52);
//! - the tree is well formed: every node a dictionary with a non-empty
//!   name, a file is a node whose only key is `""` holding `length` and,
//!   when it is not empty, a 32-byte non-zero `pieces root`; no padding
//!   files; at most [`MAX_PATH_DEPTH`] levels;
//! - its non-empty files, in order, are the v1 list's non-empty files that
//!   are not padding or symlinks: same path (after sanitizing), same length,
//!   and the same offset, which v2 puts on a piece boundary (v1 reaches it
//!   with BEP 47 padding files).
//!
//! Empty files and symlinks are skipped on both sides; the v2 `piece layers`
//! (outside `info`) are not read, since pollen verifies with the v1 hashes.

use super::sanitize::sanitize_elements;
use super::{MetainfoError, TorrentFile, MAX_PATH_DEPTH};
use crate::bencode::doc::Entries;
use crate::bencode::{Kind, Node};

/// Smallest v2 piece length: one 16 KiB merkle leaf (BEP 52).
const MIN_V2_PIECE_LEN: u32 = 16 * 1024;

/// Length of a v2 `pieces root`: a SHA-256 digest.
const PIECES_ROOT_LEN: usize = 32;

/// Checks the v2 half of `info` against the v1 files `v1` yields: those
/// that hold data (not empty, not padding, not symlinks) in order, with
/// their raw path elements (the torrent's name alone for a single-file
/// torrent). A torrent without a v2 half passes (and `v1` is not called).
pub(super) fn check<'a, 'f, I>(
    info: Node<'_, 'a>,
    piece_len: u32,
    v1: impl FnOnce() -> I,
) -> Result<(), MetainfoError>
where
    I: Iterator<Item = (Vec<&'a [u8]>, &'f TorrentFile)>,
{
    let version = info.get_int(b"meta version");
    let tree = info.get(b"file tree");
    match (version, tree) {
        (Some(v), _) if v > 2 => Err(MetainfoError::UnknownMetaVersion(v)),
        (Some(2), None) => Err(malformed("'meta version' is 2 but there is no tree")),
        (Some(2), Some(tree)) => check_hybrid(tree, piece_len, v1()),
        (_, Some(_)) => Err(malformed("it needs 'meta version' 2")),
        (_, None) => Ok(()),
    }
}

fn malformed(why: impl Into<String>) -> MetainfoError {
    MetainfoError::FileTree(why.into())
}

fn mismatch(why: String) -> MetainfoError {
    MetainfoError::HybridMismatch(why)
}

fn check_hybrid<'a, 'f>(
    tree: Node<'_, 'a>,
    piece_len: u32,
    v1: impl Iterator<Item = (Vec<&'a [u8]>, &'f TorrentFile)>,
) -> Result<(), MetainfoError> {
    if piece_len < MIN_V2_PIECE_LEN || !piece_len.is_power_of_two() {
        return Err(MetainfoError::V2PieceLength(piece_len));
    }
    let mut walk = Walk {
        piece_len: u64::from(piece_len),
        v1,
        v2_offset: 0,
    };
    walk.tree(tree)?;
    match walk.v1.next() {
        Some((path, _)) => Err(mismatch(format!(
            "v1 file {:?} is not in the v2 tree",
            display(&path)
        ))),
        None => Ok(()),
    }
}

/// Walks the tree in order, matching each v2 file with the next v1 file.
struct Walk<V> {
    piece_len: u64,
    v1: V,
    /// Where the next non-empty v2 file starts: v2 aligns files to pieces.
    v2_offset: u64,
}

/// One directory being walked.
struct Level<'d, 'a> {
    /// Its entries not walked yet.
    entries: Entries<'d, 'a>,
    /// How many path elements lead to it.
    depth: usize,
}

impl<'a, 'f, V> Walk<V>
where
    V: Iterator<Item = (Vec<&'a [u8]>, &'f TorrentFile)>,
{
    /// Depth-first over the tree with an explicit stack (the bencode depth
    /// limit already bounds it; [`MAX_PATH_DEPTH`] bounds it for paths).
    fn tree(&mut self, tree: Node<'_, 'a>) -> Result<(), MetainfoError> {
        let Some(entries) = tree.entries() else {
            return Err(malformed("it is not a dictionary"));
        };
        let mut path: Vec<&'a [u8]> = Vec::new();
        let mut stack = vec![Level { entries, depth: 0 }];
        while let Some(level) = stack.last_mut() {
            let Some((name, node)) = level.entries.next() else {
                stack.pop();
                continue;
            };
            let depth = level.depth;
            path.truncate(depth);
            path.push(name);
            if name.is_empty() {
                return Err(malformed(format!(
                    "an entry in {:?} has an empty name",
                    display(&path[..depth])
                )));
            }
            if path.len() > MAX_PATH_DEPTH {
                return Err(MetainfoError::PathTooDeep(path.len()));
            }
            let Some(entries) = node.entries() else {
                return Err(malformed(format!(
                    "{:?} is not a dictionary",
                    display(&path)
                )));
            };
            let mut first_two = entries.clone();
            match (first_two.next(), first_two.next()) {
                (Some((b"", leaf)), None) => self.file(&path, leaf)?,
                _ if node.get(b"").is_some() => {
                    return Err(malformed(format!(
                        "{:?} is both a file and a directory",
                        display(&path)
                    )))
                }
                _ => stack.push(Level {
                    entries,
                    depth: depth + 1,
                }),
            }
        }
        Ok(())
    }

    /// A file of the tree: checks its own fields, then compares it with the
    /// next v1 file.
    fn file(&mut self, path: &[&'a [u8]], leaf: Node<'_, 'a>) -> Result<(), MetainfoError> {
        if leaf.kind() != Kind::Dict {
            return Err(malformed(format!(
                "{:?} is not a dictionary",
                display(path)
            )));
        }
        let attr = leaf.get_bytes(b"attr").unwrap_or_default();
        if attr.contains(&b'p') {
            return Err(malformed(format!("{:?} is a padding file", display(path))));
        }
        if attr.contains(&b'l') {
            return Ok(()); // a symlink: no bytes
        }
        let len = leaf
            .get_int(b"length")
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| malformed(format!("{:?} has no valid 'length'", display(path))))?;
        if len == 0 {
            return Ok(());
        }
        let root = leaf.get_bytes(b"pieces root").unwrap_or_default();
        if root.len() != PIECES_ROOT_LEN || root.iter().all(|&b| b == 0) {
            return Err(malformed(format!(
                "{:?} has no valid 'pieces root'",
                display(path)
            )));
        }
        self.compare(path, len)
    }

    fn compare(&mut self, path: &[&'a [u8]], len: u64) -> Result<(), MetainfoError> {
        let Some((v1_path, v1_file)) = self.v1.next() else {
            return Err(mismatch(format!(
                "v2 file {:?} is not in the v1 file list",
                display(path)
            )));
        };
        let same_path =
            sanitize_elements(path.iter().copied()) == sanitize_elements(v1_path.iter().copied());
        if !same_path {
            return Err(mismatch(format!(
                "v2 has {:?} where v1 has {:?}",
                display(path),
                display(&v1_path)
            )));
        }
        if len != v1_file.len {
            return Err(mismatch(format!(
                "{:?} is {len} bytes in v2 and {} in v1",
                display(path),
                v1_file.len
            )));
        }
        if self.v2_offset != v1_file.offset {
            return Err(mismatch(format!(
                "{:?} starts at byte {} in v2 and {} in v1",
                display(path),
                self.v2_offset,
                v1_file.offset
            )));
        }
        let aligned = len
            .div_ceil(self.piece_len)
            .checked_mul(self.piece_len)
            .and_then(|n| self.v2_offset.checked_add(n))
            .ok_or(MetainfoError::TotalOverflow)?;
        self.v2_offset = aligned;
        Ok(())
    }
}

/// Raw path elements joined with `/` (lossy UTF-8), for messages.
fn display(path: &[&[u8]]) -> String {
    path.iter()
        .map(|e| String::from_utf8_lossy(e))
        .collect::<Vec<_>>()
        .join("/")
}
