//! pollen's piece/file arithmetic against torrents made by reference tools:
//! the payload the fixtures were made from is regenerated, and every piece
//! must verify through `Storage` (pieces that straddle files, an empty file
//! in the middle of a piece, short last pieces).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixtures, write_tree, TempDir};
use pollen::storage::Storage;

/// The fixtures' payload trees (fixtures/fixturelib.py, `TREES`).
const TREES: &[(&str, usize, u64)] = &[
    ("single.bin", 100_000, 1),
    ("multi/a/one.bin", 10_000, 2),
    ("multi/a/empty.txt", 0, 0),
    ("multi/a/b/two.bin", 40_000, 3),
    ("multi/a/b/five.bin", 5, 4),
    ("multi/c/three.bin", 70_000, 5),
    ("transmission-multi/docs/readme.txt", 3_000, 6),
    ("transmission-multi/docs/empty.dat", 0, 0),
    ("transmission-multi/data/x/big.bin", 60_000, 7),
    ("transmission-multi/data/small.bin", 1, 8),
];

#[test]
fn every_piece_of_every_reference_torrent_verifies_against_its_payload() {
    let tmp = TempDir::new("layout");
    write_tree(tmp.path(), TREES);
    for file in [
        "single.torrent",
        "multi.torrent",
        "multi-transmission.torrent",
    ] {
        let meta = pollen::load_torrent(&fixtures().join(file)).unwrap();
        let mut storage = Storage::new(tmp.path(), &meta).unwrap();
        for piece in meta.layout.pieces() {
            let ok = storage
                .verify_piece(piece, meta.piece_hash(piece).unwrap())
                .unwrap();
            assert!(ok, "{file}: piece {piece} does not verify");
        }
    }
}

#[test]
fn a_missing_file_fails_only_its_pieces() {
    let tmp = TempDir::new("layout-missing");
    write_tree(tmp.path(), TREES);
    std::fs::remove_file(tmp.path().join("multi/a/one.bin")).unwrap();
    let meta = pollen::load_torrent(&fixtures().join("multi.torrent")).unwrap();
    let mut storage = Storage::new(tmp.path(), &meta).unwrap();
    let verified: Vec<bool> = meta
        .layout
        .pieces()
        .map(|p| {
            storage
                .verify_piece(p, meta.piece_hash(p).unwrap())
                .unwrap()
        })
        .collect();
    // one.bin sits at offsets 40,005..50,005: inside piece 1 only.
    assert_eq!(verified, vec![true, false, true, true]);
}

/// The payloads of the BEP 47, piece-size, trailing-newline and hybrid
/// fixtures (fixtures/make-handmade.py and make-hybrid.py): only the files
/// that hold data; padding is zeros that are never on disk, symlinks hold
/// nothing.
/// A payload tree: (relative path, length, seed) per file.
type Tree = &'static [(&'static str, usize, u64)];

const EDGE_TREES: &[(&str, Tree)] = &[
    ("trailing-newline.torrent", &[("trailing.bin", 30_000, 40)]),
    (
        "symlink-no-length.torrent",
        &[
            ("links/data.bin", 20_000, 41),
            ("links/tail.bin", 5_000, 42),
        ],
    ),
    (
        "pad-no-path.torrent",
        &[("padded/a.bin", 10_000, 43), ("padded/b.bin", 20_000, 44)],
    ),
    (
        "bitcomet-padding.torrent",
        &[
            ("bitcomet/a.bin", 10_000, 45),
            ("bitcomet/b.bin", 3_000, 46),
        ],
    ),
    ("piece-256mib.torrent", &[("big-piece.bin", 1_000, 47)]),
    (
        "hybrid.torrent",
        &[
            ("hybrid/a.bin", 20_000, 48),
            ("hybrid/sub/b.bin", 5_000, 49),
        ],
    ),
];

#[test]
fn padding_symlinks_and_big_pieces_verify_from_the_data_files_alone() {
    for (file, tree) in EDGE_TREES {
        let tmp = TempDir::new("layout-edge");
        write_tree(tmp.path(), tree);
        let meta = pollen::load_torrent(&fixtures().join(file)).unwrap();
        let on_disk: Vec<_> = meta.files.iter().filter(|f| f.on_disk()).collect();
        assert_eq!(on_disk.len(), tree.len(), "{file}");
        for (torrent_file, (path, len, _)) in on_disk.iter().zip(tree.iter()) {
            assert_eq!(torrent_file.path, std::path::Path::new(path), "{file}");
            assert_eq!(torrent_file.len, *len as u64, "{file}");
        }
        let mut storage = Storage::new(tmp.path(), &meta).unwrap();
        for piece in meta.layout.pieces() {
            let ok = storage
                .verify_piece(piece, meta.piece_hash(piece).unwrap())
                .unwrap();
            assert!(ok, "{file}: piece {piece} does not verify");
        }
    }
}
