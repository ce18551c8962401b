//! pollen against pollen on 127.0.0.1: one seeder and two leechers with
//! `--peer`, a multi-file torrent whose pieces straddle files and which has
//! an empty file; every leecher's files must equal the seeder's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};

/// 16 KiB pieces over files of awkward sizes, nested, with an empty file.
const FILES: &[(&str, usize, u64)] = &[
    ("share/a.bin", 1_000_003, 1),
    ("share/empty.txt", 0, 0),
    ("share/nested/deeper/b.bin", 2_500_000, 2),
    ("share/nested/c.txt", 17, 3),
    ("share/z.bin", 700_001, 4),
];

#[test]
fn one_seeder_two_leechers_byte_identical() {
    let tmp = TempDir::new("swarm");
    let seed_dir = tmp.path().join("seed");
    write_tree(&seed_dir, FILES);
    let options = CreateOptions {
        piece_len: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let torrent = tmp.path().join("share.torrent");
    std::fs::write(
        &torrent,
        create_torrent(&seed_dir.join("share"), &options).unwrap(),
    )
    .unwrap();

    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "--dest".as_ref(),
        seed_dir.as_os_str(),
        "--seed".as_ref(),
        "--no-tracker".as_ref(),
        "-q".as_ref(),
    ]);
    let seed_peer = seeder.peer_arg();
    let dir_a = tmp.path().join("a");
    let dir_b = tmp.path().join("b");
    let mut leecher_a = Pollen::start([
        torrent.as_os_str(),
        "--dest".as_ref(),
        dir_a.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        seed_peer.as_ref(),
        "-q".as_ref(),
    ]);
    let a_peer = leecher_a.peer_arg();
    let mut leecher_b = Pollen::start([
        torrent.as_os_str(),
        "--dest".as_ref(),
        dir_b.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        seed_peer.as_ref(),
        "--peer".as_ref(),
        a_peer.as_ref(),
        "-q".as_ref(),
    ]);
    for (name, leecher) in [("a", &mut leecher_a), ("b", &mut leecher_b)] {
        let status = leecher.wait(Duration::from_secs(120));
        assert!(
            status.success(),
            "leecher {name} failed: {}",
            leecher.stderr()
        );
    }
    assert_same_tree(&seed_dir, &dir_a);
    assert_same_tree(&seed_dir, &dir_b);
    assert_eq!(
        std::fs::metadata(dir_a.join("share/empty.txt"))
            .unwrap()
            .len(),
        0
    );
    // The seeder is still up and healthy; a clean stop exits 0.
    seeder.terminate();
    assert!(
        seeder.wait(Duration::from_secs(20)).success(),
        "{}",
        seeder.stderr()
    );
}

#[test]
fn a_leecher_started_on_complete_data_verifies_it_and_exits() {
    let tmp = TempDir::new("swarm-complete");
    let dir = tmp.path().join("seed");
    write_tree(&dir, FILES);
    let torrent = tmp.path().join("share.torrent");
    std::fs::write(
        &torrent,
        create_torrent(&dir.join("share"), &CreateOptions::default()).unwrap(),
    )
    .unwrap();
    let mut pollen = Pollen::start([
        torrent.as_os_str(),
        "--dest".as_ref(),
        dir.as_os_str(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ]);
    assert!(pollen.wait(Duration::from_secs(60)).success());
    assert!(
        pollen.stderr().contains("pieces verified on disk"),
        "{}",
        pollen.stderr()
    );
}
