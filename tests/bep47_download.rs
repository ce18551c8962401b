//! BEP 47 padding files and symlinks, and a hybrid torrent, downloaded
//! pollen to pollen on 127.0.0.1 (fixtures/README.md): the data files arrive
//! byte-identical, and nothing else appears under the destination: no
//! padding file, no symlink (even one whose target climbs out of it), no
//! file for a symlink's bogus `length`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{fixtures, write_tree, TempDir};

/// Each fixture with the files that hold its data (make-handmade.py,
/// make-hybrid.py).
/// A payload tree: (relative path, length, seed) per file.
type Tree = &'static [(&'static str, usize, u64)];

const CASES: &[(&str, Tree)] = &[
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
    (
        "hybrid.torrent",
        &[
            ("hybrid/a.bin", 20_000, 48),
            ("hybrid/sub/b.bin", 5_000, 49),
        ],
    ),
];

/// Every regular file under `dir` (relative), skipping pollen's `.pollen`
/// resume directory.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            assert!(!kind.is_symlink(), "{} is a symlink", path.display());
            if path.file_name().is_some_and(|n| n == ".pollen") {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn only_data_files_are_written() {
    for (torrent, tree) in CASES {
        let tmp = TempDir::new("bep47");
        let seed_dir = tmp.path().join("seed");
        write_tree(&seed_dir, tree);
        let dest = tmp.path().join("inner/dest");
        std::fs::create_dir_all(&dest).unwrap();
        let torrent = fixtures().join(torrent);
        let mut seeder = Pollen::seeder(&torrent, &seed_dir, &[]);
        let peer = seeder.peer_arg();
        let mut leecher = Pollen::leecher(&torrent, &dest, &peer);
        let status = leecher.wait(Duration::from_secs(60));
        assert!(
            status.success(),
            "{}: {}",
            torrent.display(),
            leecher.stderr()
        );
        assert_same_tree(&seed_dir, &dest);
        let expected: Vec<PathBuf> = tree.iter().map(|(p, _, _)| PathBuf::from(p)).collect();
        assert_eq!(files_under(&dest), expected, "{}", torrent.display());
        // Nothing next to the destination either (a symlink target tries ../..).
        let around: Vec<_> = std::fs::read_dir(tmp.path().join("inner"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(around, vec![std::ffi::OsString::from("dest")]);
    }
}
