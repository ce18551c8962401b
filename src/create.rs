//! Torrent creation: hash a file or a directory into a `.torrent`
//! (BEP 3 metainfo; BEP 12 `announce-list`; BEP 27 `private`).
//!
//! Layer 1: blocking disk reads, no sockets, no clock (the caller passes the
//! creation date). Files are read in a fixed order (sorted by path bytes, so
//! the same tree always gives the same info-hash), streamed through one
//! piece-sized buffer and hashed piece by piece; pieces straddle file
//! boundaries exactly as BEP 3's single byte stream says.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::bencode::{encode, Dict, List, Value};
use crate::hash::Sha1Hash;
use crate::metainfo::{is_tracker_url, MAX_PATH_DEPTH};

/// Smallest piece length offered: one block (BEP 3 clients request 16 KiB).
pub const MIN_PIECE_LEN: u32 = 16 * 1024;

/// Largest piece length offered: larger pieces make every hash failure and
/// every partial piece in memory costlier.
pub const MAX_CREATE_PIECE_LEN: u32 = 32 * 1024 * 1024;

/// Pieces the automatic piece length aims for: about 1,500 keeps the
/// `pieces` string near 30 KB and pieces small enough to share quickly.
const TARGET_PIECE_COUNT: u64 = 1_500;

/// What to put in the torrent besides the files.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker URLs; each becomes its own BEP 12 tier, the first is `announce`.
    pub trackers: Vec<String>,
    /// Piece length; `None` picks one from the total size.
    pub piece_len: Option<u32>,
    /// Set BEP 27 `private`.
    pub private: bool,
    /// Free-text comment.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// BEP 19 web seeds: written as `url-list` (a list, even of one).
    pub web_seeds: Vec<String>,
}

/// How far the hashing has got, reported to the callback of
/// [`create_torrent_with_progress`] after each piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateProgress {
    /// Bytes read and hashed so far.
    pub hashed_bytes: u64,
    /// Bytes in all the input's files.
    pub total_bytes: u64,
}

/// Why a torrent could not be made.
#[derive(Debug)]
pub enum CreateError {
    /// Reading the input failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The input holds no bytes (an empty file, or only empty files).
    Empty(PathBuf),
    /// A file name is not UTF-8, which BEP 3 requires.
    NotUtf8(PathBuf),
    /// The directory tree is deeper than [`MAX_PATH_DEPTH`].
    TooDeep(PathBuf),
    /// The piece length is not a power of two within the allowed range.
    BadPieceLength(u32),
    /// A tracker URL is not http, https or udp.
    BadTracker(String),
    /// A file changed size while it was hashed.
    Changed(PathBuf),
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CreateError::Empty(path) => write!(f, "{}: nothing to share (0 bytes)", path.display()),
            CreateError::NotUtf8(path) => {
                write!(f, "{}: file name is not UTF-8", path.display())
            }
            CreateError::TooDeep(path) => write!(
                f,
                "{}: directories nested deeper than {MAX_PATH_DEPTH}",
                path.display()
            ),
            CreateError::BadPieceLength(n) => write!(
                f,
                "piece size {n} is not a power of two from {MIN_PIECE_LEN} to {MAX_CREATE_PIECE_LEN}"
            ),
            CreateError::BadTracker(url) => {
                write!(f, "tracker {url:?} is not an http, https or udp URL")
            }
            CreateError::Changed(path) => {
                write!(f, "{}: file changed while it was read", path.display())
            }
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreateError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A file to include: where it is and its path inside the torrent.
struct InputFile {
    disk_path: PathBuf,
    elements: Vec<String>,
    len: u64,
}

/// The piece length for `total_len` bytes: a power of two near
/// about 1,500 pieces, within [`MIN_PIECE_LEN`] to [`MAX_CREATE_PIECE_LEN`].
pub fn auto_piece_len(total_len: u64) -> u32 {
    let wanted = (total_len / TARGET_PIECE_COUNT).max(1).next_power_of_two();
    let wanted = u32::try_from(wanted).unwrap_or(MAX_CREATE_PIECE_LEN);
    wanted.clamp(MIN_PIECE_LEN, MAX_CREATE_PIECE_LEN)
}

/// Makes the bytes of a `.torrent` for the file or directory at `path`.
/// Blocks (reads every byte of the input).
pub fn create_torrent(path: &Path, options: &CreateOptions) -> Result<Vec<u8>, CreateError> {
    create_torrent_with_progress(path, options, &mut |_| {})
}

/// [`create_torrent`], calling `progress` after each piece is hashed (so
/// it must be quick: a 3 GiB input in 16 KiB pieces calls it 196,608
/// times). The torrent is the same bytes either way.
pub fn create_torrent_with_progress(
    path: &Path,
    options: &CreateOptions,
    progress: &mut dyn FnMut(CreateProgress),
) -> Result<Vec<u8>, CreateError> {
    for url in &options.trackers {
        if !is_tracker_url(url) {
            return Err(CreateError::BadTracker(url.clone()));
        }
    }
    let io_error = |source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_error)?;
    let name = torrent_name(path)?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut Vec::new(), &mut files)?;
        files
    } else {
        vec![InputFile {
            disk_path: path.to_path_buf(),
            elements: Vec::new(),
            len: meta.len(),
        }]
    };
    let total_len: u64 = files.iter().map(|f| f.len).sum();
    if total_len == 0 {
        return Err(CreateError::Empty(path.to_path_buf()));
    }
    let piece_len = match options.piece_len {
        Some(n) if n.is_power_of_two() && (MIN_PIECE_LEN..=MAX_CREATE_PIECE_LEN).contains(&n) => n,
        Some(n) => return Err(CreateError::BadPieceLength(n)),
        None => auto_piece_len(total_len),
    };
    let pieces = hash_pieces(&files, piece_len, progress)?;
    Ok(encode_torrent(
        &name,
        meta.is_dir(),
        &files,
        piece_len,
        &pieces,
        options,
    ))
}

/// The torrent's `name`: the last component of the (canonical) path.
fn torrent_name(path: &Path) -> Result<String, CreateError> {
    let canonical = fs::canonicalize(path).map_err(|source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = canonical.file_name().unwrap_or(canonical.as_os_str());
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| CreateError::NotUtf8(path.to_path_buf()))
}

/// Every regular file under `dir`, sorted by path; symlinked directories are
/// not followed (they may loop), symlinked files are.
fn collect_files(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<InputFile>,
) -> Result<(), CreateError> {
    if prefix.len() >= MAX_PATH_DEPTH {
        return Err(CreateError::TooDeep(dir.to_path_buf()));
    }
    let io_error = |source| CreateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_error)?
        .collect::<Result<_, _>>()
        .map_err(io_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::NotUtf8(path.clone()))?;
        let link_meta = fs::symlink_metadata(&path).map_err(|source| CreateError::Io {
            path: path.clone(),
            source,
        })?;
        let meta = fs::metadata(&path).map_err(|source| CreateError::Io {
            path: path.clone(),
            source,
        })?;
        prefix.push(name);
        if meta.is_dir() && !link_meta.file_type().is_symlink() {
            collect_files(&path, prefix, out)?;
        } else if meta.is_file() {
            out.push(InputFile {
                disk_path: path,
                elements: prefix.clone(),
                len: meta.len(),
            });
        }
        prefix.pop();
    }
    Ok(())
}

/// The concatenated SHA-1 of every piece of the files' byte stream,
/// telling `progress` after each piece.
fn hash_pieces(
    files: &[InputFile],
    piece_len: u32,
    progress: &mut dyn FnMut(CreateProgress),
) -> Result<Vec<u8>, CreateError> {
    let total_bytes: u64 = files.iter().map(|f| f.len).sum();
    let mut hashed_bytes: u64 = 0;
    let mut report = |piece_bytes: usize| {
        hashed_bytes += piece_bytes as u64;
        progress(CreateProgress {
            hashed_bytes,
            total_bytes,
        });
    };
    let piece_len = usize::try_from(piece_len).unwrap_or(usize::MAX);
    let mut pieces = Vec::new();
    let mut buf = vec![0u8; piece_len];
    let mut filled = 0;
    for file in files {
        let io_error = |source| CreateError::Io {
            path: file.disk_path.clone(),
            source,
        };
        let mut reader = File::open(&file.disk_path).map_err(io_error)?;
        let mut read_total: u64 = 0;
        while let Some(space) = buf.get_mut(filled..) {
            let n = match reader.read(space) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            filled += n;
            read_total += n as u64;
            if filled == piece_len {
                pieces.extend_from_slice(&Sha1Hash::of(&buf).0);
                report(filled);
                filled = 0;
            }
        }
        if read_total != file.len {
            return Err(CreateError::Changed(file.disk_path.clone()));
        }
    }
    if let Some(rest) = buf.get(..filled).filter(|rest| !rest.is_empty()) {
        pieces.extend_from_slice(&Sha1Hash::of(rest).0);
        report(filled);
    }
    Ok(pieces)
}

fn encode_torrent(
    name: &str,
    is_dir: bool,
    files: &[InputFile],
    piece_len: u32,
    pieces: &[u8],
    options: &CreateOptions,
) -> Vec<u8> {
    let mut info = vec![
        (&b"name"[..], Value::Bytes(name.as_bytes())),
        (b"piece length", Value::Int(piece_len.into())),
        (b"pieces", Value::Bytes(pieces)),
    ];
    if is_dir {
        let entries = files
            .iter()
            .map(|f| {
                let path = f
                    .elements
                    .iter()
                    .map(|e| Value::Bytes(e.as_bytes()))
                    .collect();
                Value::Dict(Dict::new(vec![
                    (
                        &b"length"[..],
                        Value::Int(i64::try_from(f.len).unwrap_or(i64::MAX)),
                    ),
                    (b"path", Value::List(List::new(path))),
                ]))
            })
            .collect();
        info.push((b"files", Value::List(List::new(entries))));
    } else {
        let len = files.first().map_or(0, |f| f.len);
        info.push((
            b"length",
            Value::Int(i64::try_from(len).unwrap_or(i64::MAX)),
        ));
    }
    if options.private {
        info.push((b"private", Value::Int(1)));
    }
    let mut root = vec![(&b"info"[..], Value::Dict(Dict::new(info)))];
    if let Some(first) = options.trackers.first() {
        root.push((b"announce", Value::Bytes(first.as_bytes())));
    }
    if options.trackers.len() > 1 {
        let tiers = options
            .trackers
            .iter()
            .map(|url| Value::List(List::new(vec![Value::Bytes(url.as_bytes())])))
            .collect();
        root.push((b"announce-list", Value::List(List::new(tiers))));
    }
    if !options.web_seeds.is_empty() {
        let urls = options
            .web_seeds
            .iter()
            .map(|url| Value::Bytes(url.as_bytes()))
            .collect();
        root.push((b"url-list", Value::List(List::new(urls))));
    }
    if let Some(comment) = &options.comment {
        root.push((b"comment", Value::Bytes(comment.as_bytes())));
    }
    if let Some(created_by) = &options.created_by {
        root.push((b"created by", Value::Bytes(created_by.as_bytes())));
    }
    if let Some(date) = options.creation_date {
        root.push((b"creation date", Value::Int(date)));
    }
    encode(&Value::Dict(Dict::new(root)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;
    use crate::storage::Storage;

    use crate::test_util::TempDir;

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn auto_piece_length_scales_with_size() {
        assert_eq!(auto_piece_len(1), MIN_PIECE_LEN);
        assert_eq!(auto_piece_len(100 << 20), 128 * 1024);
        assert_eq!(auto_piece_len(4 << 30), 4 << 20);
        assert_eq!(auto_piece_len(u64::MAX), MAX_CREATE_PIECE_LEN);
    }

    #[test]
    fn created_directory_torrent_parses_and_verifies_against_the_files() {
        let dir = TempDir::new("dir");
        let root = dir.0.join("share");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("b.bin"), payload(40_000, 1)).unwrap();
        fs::write(root.join("a.txt"), payload(10_000, 2)).unwrap();
        fs::write(root.join("sub/empty"), b"").unwrap();
        fs::write(root.join("sub/deeper/c"), payload(70_005, 3)).unwrap();
        let options = CreateOptions {
            trackers: vec![
                "http://127.0.0.1:1/announce".into(),
                "udp://127.0.0.1:2".into(),
            ],
            piece_len: Some(16384),
            private: true,
            comment: Some("hello".into()),
            created_by: Some("pollen test".into()),
            creation_date: Some(1_700_000_000),
            web_seeds: Vec::new(),
        };
        let bytes = create_torrent(&root, &options).unwrap();
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(meta.name, "share");
        assert!(meta.private);
        assert_eq!(meta.comment.as_deref(), Some("hello"));
        assert_eq!(meta.creation_date, Some(1_700_000_000));
        assert_eq!(meta.trackers.len(), 2);
        let paths: Vec<_> = meta.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                PathBuf::from("share/a.txt"),
                PathBuf::from("share/b.bin"),
                PathBuf::from("share/sub/deeper/c"),
                PathBuf::from("share/sub/empty"),
            ]
        );
        assert_eq!(meta.total_len(), 120_005);
        // The files in place verify against the hashes just made.
        let mut storage = Storage::new(&dir.0, &meta).unwrap();
        for piece in meta.layout.pieces() {
            assert!(storage
                .verify_piece(piece, meta.piece_hash(piece).unwrap())
                .unwrap());
        }
    }

    #[test]
    fn same_tree_gives_the_same_info_hash() {
        let dir = TempDir::new("stable");
        fs::write(dir.0.join("x"), payload(5_000, 9)).unwrap();
        let a = create_torrent(&dir.0.join("x"), &CreateOptions::default()).unwrap();
        let b = create_torrent(&dir.0.join("x"), &CreateOptions::default()).unwrap();
        assert_eq!(a, b);
        let meta = Metainfo::from_bytes(&a).unwrap();
        assert!(!meta.multi_file);
        assert!(meta.trackers.is_empty());
    }

    #[test]
    fn progress_is_reported_per_piece_and_does_not_change_the_torrent() {
        let dir = TempDir::new("progress");
        fs::write(dir.0.join("x"), payload(100_000, 4)).unwrap();
        let options = CreateOptions {
            piece_len: Some(32 * 1024),
            ..CreateOptions::default()
        };
        let mut seen = Vec::new();
        let with = create_torrent_with_progress(&dir.0.join("x"), &options, &mut |p| seen.push(p))
            .unwrap();
        assert_eq!(with, create_torrent(&dir.0.join("x"), &options).unwrap());
        let hashed: Vec<u64> = seen.iter().map(|p| p.hashed_bytes).collect();
        assert_eq!(hashed, vec![32_768, 65_536, 98_304, 100_000]);
        assert!(seen.iter().all(|p| p.total_bytes == 100_000));
    }

    #[test]
    fn web_seeds_are_written_as_url_list() {
        let dir = TempDir::new("webseeds");
        fs::write(dir.0.join("data"), payload(1000, 4)).unwrap();
        let options = CreateOptions {
            web_seeds: vec!["http://127.0.0.1:1/files/".into(), "http://b/".into()],
            ..CreateOptions::default()
        };
        let bytes = create_torrent(&dir.0.join("data"), &options).unwrap();
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(meta.url_list, options.web_seeds);
    }

    #[test]
    fn bad_inputs_are_refused_with_reasons() {
        let dir = TempDir::new("bad");
        fs::write(dir.0.join("empty"), b"").unwrap();
        let err = create_torrent(&dir.0.join("empty"), &CreateOptions::default()).unwrap_err();
        assert!(
            err.to_string().ends_with("nothing to share (0 bytes)"),
            "{err}"
        );
        let err = create_torrent(&dir.0.join("missing"), &CreateOptions::default()).unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
        fs::write(dir.0.join("data"), b"x").unwrap();
        let options = CreateOptions {
            piece_len: Some(1000),
            ..CreateOptions::default()
        };
        let err = create_torrent(&dir.0.join("data"), &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "piece size 1000 is not a power of two from 16384 to 33554432"
        );
        let options = CreateOptions {
            trackers: vec!["ftp://x".into()],
            ..CreateOptions::default()
        };
        let err = create_torrent(&dir.0.join("data"), &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tracker \"ftp://x\" is not an http, https or udp URL"
        );
    }
}
