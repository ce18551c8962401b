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
