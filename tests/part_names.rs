//! A torrent whose file names collide with pollen's `.part` names: files
//! `x` and `x.part`. While incomplete, `x` cannot grow as `x.part` (that is
//! the other file's name, and finishing `x.part` would rename its own
//! partial file over `x`'s data, verified pieces included): it grows as
//! `x.part.part`, and `x.part` as `x.part.part.part` (`storage::partial_paths`).
//! The download must end byte-identical, with exactly the torrent's names.

mod common;

use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{seeded_torrent, TempDir};

/// `x` is large and `x.part` one small piece, so `x.part` usually
/// finishes first: the order that spoiled `x` before the fix.
const FILES: &[(&str, usize, u64)] =
    &[("pair/x", 3 * 1024 * 1024, 91), ("pair/x.part", 20_000, 92)];

#[test]
fn files_named_like_partial_files_download_intact() {
    let tmp = TempDir::new("part-names");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(32 * 1024));
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let dest = tmp.path().join("dest");
    let peer = seeder.peer_arg();
    let mut leecher = Pollen::leecher(&torrent, &dest, &peer);
    let status = leecher.wait(Duration::from_secs(60));
    assert!(status.success(), "{status}\n{}", leecher.stderr());
    assert_same_tree(&seed, &dest);
    let mut names: Vec<String> = std::fs::read_dir(dest.join("pair"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x", "x.part"], "leftover partial files");
}
