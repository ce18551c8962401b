//! Specs of the storage: blocks land in the right files in any order, reads
//! across file boundaries, piece verification and hashing in slices, the
//! open-handle cap, sync after renames, and the refusals (paths outside the
//! destination, symlinks) with errors that name the file.
//!
//! Layer 1, test-only: real files in temp dirs.

use super::*;
use crate::bencode::{encode, Dict, List, Value};

/// A scratch directory removed on drop.
use crate::test_util::TempDir;

/// Payload byte `i` of the torrent stream.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// A multi-file torrent (pieces straddle files, one empty file, one
/// padding file) whose piece hashes match `byte_at`.
fn torrent() -> Metainfo {
    let sizes: [(i64, &[&[u8]], bool); 6] = [
        (10_000, &[b"a", b"one"], false),
        (0, &[b"a", b"b", b"empty"], false),
        (6_384, &[b".pad", b"6384"], true),
        (40_000, &[b"c", b"two"], false),
        (5, &[b"tiny"], false),
        (70_000, &[b"c", b"three"], false),
    ];
    let total: i64 = sizes.iter().map(|s| s.0).sum();
    let stream: Vec<u8> = (0..total as u64)
        .enumerate()
        .map(|(i, _)| byte_at(i as u64))
        .collect();
    // Padding files hold zeros.
    let mut stream = stream;
    stream[10_000..16_384].fill(0);
    let pieces: Vec<u8> = stream
        .chunks(16384)
        .flat_map(|p| Sha1Hash::of(p).0)
        .collect();
    let files = sizes
        .iter()
        .map(|(len, path, pad)| {
            let mut entry = vec![
                (&b"length"[..], Value::Int(*len)),
                (
                    &b"path"[..],
                    Value::List(List::new(path.iter().map(|p| Value::Bytes(p)).collect())),
                ),
            ];
            if *pad {
                entry.push((&b"attr"[..], Value::Bytes(b"p")));
            }
            Value::Dict(Dict::new(entry))
        })
        .collect();
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"t")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let bytes = encode(&Value::Dict(Dict::new(vec![(b"info", info)])));
    Metainfo::from_bytes(&bytes).unwrap()
}

fn piece_bytes(meta: &Metainfo, piece: PieceIndex) -> Vec<u8> {
    let start = meta.layout.piece_offset(piece);
    (start..start + u64::from(meta.layout.piece_size(piece)))
        .map(|i| {
            if (10_000..16_384).contains(&i) {
                0
            } else {
                byte_at(i)
            }
        })
        .collect()
}

#[test]
fn blocks_written_in_any_order_verify_and_land_in_the_right_files() {
    let dir = TempDir::new("write");
    let meta = torrent();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    let pieces: Vec<_> = meta.layout.pieces().rev().collect();
    for &piece in &pieces {
        assert!(!storage
            .verify_piece(piece, meta.piece_hash(piece).unwrap())
            .unwrap());
        let data = piece_bytes(&meta, piece);
        // Write in 5,000-byte runs, back to front, to cross file edges mid-run.
        let mut begin = data.len();
        while begin > 0 {
            let start = begin.saturating_sub(5_000);
            storage
                .write(piece, start as u32, &data[start..begin])
                .unwrap();
            begin = start;
        }
    }
    storage.create_empty_files().unwrap();
    for piece in meta.layout.pieces() {
        assert!(storage
            .verify_piece(piece, meta.piece_hash(piece).unwrap())
            .unwrap());
    }
    // Until finished, files carry the `.part` suffix.
    assert!(dir.0.join("t/c/two.part").exists());
    assert!(!dir.0.join("t/c/two").exists());
    for file in 0..meta.files.len() {
        storage.finish_file(file).unwrap();
    }
    assert!(!dir.0.join("t/c/two.part").exists());
    for piece in meta.layout.pieces() {
        assert!(storage
            .verify_piece(piece, meta.piece_hash(piece).unwrap())
            .unwrap());
    }
    let two = fs::read(dir.0.join("t/c/two")).unwrap();
    assert_eq!(two.len(), 40_000);
    assert!(two
        .iter()
        .enumerate()
        .all(|(i, &b)| b == byte_at(16_384 + i as u64)));
    assert_eq!(fs::read(dir.0.join("t/tiny")).unwrap().len(), 5);
    assert_eq!(fs::metadata(dir.0.join("t/a/b/empty")).unwrap().len(), 0);
    assert!(
        !dir.0.join("t/.pad").exists(),
        "padding files are never written"
    );
}

#[test]
fn sync_all_covers_files_whose_handles_were_closed_and_renamed_names() {
    let dir = TempDir::new("sync");
    let meta = torrent();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    for piece in meta.layout.pieces() {
        storage.write(piece, 0, &piece_bytes(&meta, piece)).unwrap();
    }
    // Every handle closed (as past MAX_OPEN_FILES, or by finish_file):
    // the written files must still be synced.
    storage.close_all();
    assert_eq!(storage.unsynced_files.len(), 4, "a, two, tiny, three");
    assert!(storage.unsynced_dirs.contains(&dir.0.join("t/c")));
    storage.sync_all().unwrap();
    assert!(storage.unsynced_files.is_empty() && storage.unsynced_dirs.is_empty());
    storage.finish_file(0).unwrap();
    assert!(storage.unsynced_dirs.contains(&dir.0.join("t/a")));
    storage.sync_all().unwrap();
    assert!(storage.unsynced_dirs.is_empty());
}

#[test]
fn hashing_a_piece_in_slices_gives_the_same_digest_as_at_once() {
    let dir = TempDir::new("slices");
    let meta = torrent();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    for piece in meta.layout.pieces() {
        storage.write(piece, 0, &piece_bytes(&meta, piece)).unwrap();
    }
    for piece in meta.layout.pieces() {
        let whole = storage.hash_piece(piece).unwrap();
        for slice in [1, 999, 5_000, 16_384, 1 << 20] {
            let mut job = PieceHashing::new(piece);
            let mut steps = 0;
            let hash = loop {
                steps += 1;
                if let Some(hash) = storage.hash_step(&mut job, slice).unwrap() {
                    break hash;
                }
            };
            assert_eq!(hash, whole, "piece {piece}, slices of {slice}");
            let size = meta.layout.piece_size(piece);
            assert_eq!(
                steps,
                size.div_ceil(slice),
                "piece {piece}, slices of {slice}"
            );
        }
        let expected = meta.piece_hash(piece).unwrap();
        let mut job = PieceHashing::new(piece);
        assert_eq!(
            storage.verify_step(&mut job, 1 << 20, expected).unwrap(),
            Some(true)
        );
    }
}

#[test]
fn read_returns_what_was_written_across_files() {
    let dir = TempDir::new("read");
    let meta = torrent();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    let piece = meta.layout.piece(3).unwrap();
    let data = piece_bytes(&meta, piece);
    storage.write(piece, 0, &data).unwrap();
    let mut buf = vec![0u8; 3_000];
    storage.read(piece, 100, &mut buf).unwrap();
    assert_eq!(buf, data[100..3_100]);
}

#[test]
fn a_corrupted_byte_fails_verification() {
    let dir = TempDir::new("corrupt");
    let meta = torrent();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    let piece = meta.layout.piece(0).unwrap();
    let mut data = piece_bytes(&meta, piece);
    data[42] ^= 1;
    storage.write(piece, 0, &data).unwrap();
    assert!(!storage
        .verify_piece(piece, meta.piece_hash(piece).unwrap())
        .unwrap());
}

#[test]
fn open_handles_stay_under_the_cap() {
    let dir = TempDir::new("handles");
    let sizes: Vec<(String, i64)> = (0..100).map(|i| (format!("f{i:03}"), 1_000)).collect();
    let pieces: Vec<u8> = vec![0; 7 * 20];
    let files = sizes
        .iter()
        .map(|(name, len)| {
            Value::Dict(Dict::new(vec![
                (&b"length"[..], Value::Int(*len)),
                (
                    &b"path"[..],
                    Value::List(List::new(vec![Value::Bytes(name.as_bytes())])),
                ),
            ]))
        })
        .collect();
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"many")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let meta =
        Metainfo::from_bytes(&encode(&Value::Dict(Dict::new(vec![(b"info", info)])))).unwrap();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    for piece in meta.layout.pieces() {
        let len = meta.layout.piece_size(piece) as usize;
        storage.write(piece, 0, &vec![7u8; len]).unwrap();
        assert!(storage.open.len() <= MAX_OPEN_FILES);
    }
    assert_eq!(fs::read_dir(dir.0.join("many")).unwrap().count(), 100);
}

#[test]
fn paths_outside_the_destination_are_refused() {
    let mut meta = torrent();
    meta.files[0].path = PathBuf::from("../escape");
    assert!(Storage::new(Path::new("/tmp/x"), &meta).is_err());
    meta.files[0].path = PathBuf::from("/etc/passwd");
    assert!(Storage::new(Path::new("/tmp/x"), &meta).is_err());
}

#[test]
fn errors_name_the_file() {
    let dir = TempDir::new("error");
    let meta = torrent();
    // A file where the directory `t` should be: creating t/a fails.
    fs::write(dir.0.join("t"), b"in the way").unwrap();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    let piece = meta.layout.piece(0).unwrap();
    let err = storage.write(piece, 0, &[1, 2, 3]).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot create directory "),
        "{err}"
    );
    assert!(err.to_string().contains("t/a"), "{err}");
}

#[test]
fn symlinks_are_never_created_and_hold_no_bytes() {
    let dir = TempDir::new("symlink");
    let data: Vec<u8> = (0..20_000u64).map(byte_at).collect();
    let pieces: Vec<u8> = data.chunks(16384).flat_map(|p| Sha1Hash::of(p).0).collect();
    let path = |elements: &[&'static [u8]]| {
        Value::List(List::new(
            elements.iter().map(|e| Value::Bytes(e)).collect(),
        ))
    };
    let files = vec![
        Value::Dict(Dict::new(vec![
            (&b"length"[..], Value::Int(10_000)),
            (b"path", path(&[b"a"])),
        ])),
        Value::Dict(Dict::new(vec![
            (&b"attr"[..], Value::Bytes(b"l")),
            (b"length", Value::Int(12_345)),
            (b"path", path(&[b"link"])),
            (b"symlink path", path(&[b"..", b"a"])),
        ])),
        Value::Dict(Dict::new(vec![
            (&b"length"[..], Value::Int(0)),
            (b"path", path(&[b"empty"])),
        ])),
        Value::Dict(Dict::new(vec![
            (&b"length"[..], Value::Int(10_000)),
            (b"path", path(&[b"b"])),
        ])),
    ];
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"t")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let meta =
        Metainfo::from_bytes(&encode(&Value::Dict(Dict::new(vec![(b"info", info)])))).unwrap();
    let mut storage = Storage::new(&dir.0, &meta).unwrap();
    for piece in meta.layout.pieces() {
        let start = meta.layout.piece_offset(piece) as usize;
        let len = meta.layout.piece_size(piece) as usize;
        storage.write(piece, 0, &data[start..start + len]).unwrap();
    }
    storage.create_empty_files().unwrap();
    for piece in meta.layout.pieces() {
        assert!(storage
            .verify_piece(piece, meta.piece_hash(piece).unwrap())
            .unwrap());
    }
    for file in 0..meta.files.len() {
        storage.finish_file(file).unwrap();
    }
    assert!(dir.0.join("t/empty").exists());
    assert!(!dir.0.join("t/link").exists());
    assert!(!dir.0.join("t/link.part").exists());
    assert_eq!(fs::read(dir.0.join("t/b")).unwrap(), data[10_000..]);
}
