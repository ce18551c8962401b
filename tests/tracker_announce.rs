//! The HTTP announce inside the loop: a leecher finds the seeder only
//! through a tracker (started, completed, stopped events in order); a dead
//! or garbage-speaking tracker costs an error line, not the download.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::http_tracker::{param, Reply, TestTracker};
use common::process::{assert_same_tree, wait_for, Pollen};
use common::{write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};

fn make_torrent(tmp: &TempDir, trackers: Vec<String>) -> (std::path::PathBuf, std::path::PathBuf) {
    let seed_dir = tmp.path().join("seed");
    write_tree(
        &seed_dir,
        &[("data/x.bin", 3_000_000, 7), ("data/y.bin", 123_457, 8)],
    );
    let options = CreateOptions {
        trackers,
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let torrent = tmp.path().join("t.torrent");
    std::fs::write(
        &torrent,
        create_torrent(&seed_dir.join("data"), &options).unwrap(),
    )
    .unwrap();
    (torrent, seed_dir)
}

#[test]
fn leecher_finds_the_seeder_through_the_tracker() {
    let tracker = TestTracker::start(Reply::Peers);
    let tmp = TempDir::new("tracker");
    let (torrent, seed_dir) = make_torrent(&tmp, vec![tracker.url()]);
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed_dir.as_os_str(),
        "--seed".as_ref(),
        "-q".as_ref(),
    ]);
    seeder.port();
    assert!(
        wait_for(Duration::from_secs(30), || !tracker.events().is_empty()),
        "seeder never announced"
    );
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "-v".as_ref(),
    ]);
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed_dir, &dest);
    // Seeder: started (left=0). Leecher: started, completed, stopped.
    let announces = tracker.announces.lock().unwrap().clone();
    let leecher_port = leecher.port().to_string();
    let leecher_events: Vec<(String, String)> = announces
        .iter()
        .filter(|q| param(q, "port").as_deref() == Some(leecher_port.as_str()))
        .map(|q| {
            (
                param(q, "event").unwrap_or_default(),
                param(q, "left").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        leecher_events
            .iter()
            .map(|(e, _)| e.as_str())
            .collect::<Vec<_>>(),
        ["started", "completed", "stopped"],
        "{announces:?}"
    );
    assert_eq!(leecher_events[0].1, "3123457");
    assert_eq!(leecher_events[1].1, "0");
    let seeder_left = param(&announces[0], "left");
    assert_eq!(
        seeder_left.as_deref(),
        Some("0"),
        "a seeder announces left=0"
    );
    assert!(announces[0].contains("info_hash=") && announces[0].contains("compact=1"));
}

#[test]
fn dead_and_garbage_trackers_do_not_stop_the_download() {
    let garbage = TestTracker::start(Reply::Garbage);
    // Port 1 (tcpmux) on loopback: no service listens there, and a port-0
    // bind never picks it (it is below the ephemeral range), so the
    // connection is refused. A port bound and released could be taken by a
    // parallel test and time out instead.
    let dead = "http://127.0.0.1:1/announce".to_string();
    let tmp = TempDir::new("tracker-bad");
    let (torrent, seed_dir) = make_torrent(&tmp, vec![dead, garbage.url()]);
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed_dir.as_os_str(),
        "--seed".as_ref(),
        "--no-tracker".as_ref(),
        "-q".as_ref(),
    ]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--peer".as_ref(),
        peer.as_ref(),
        "-v".as_ref(),
    ]);
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed_dir, &dest);
    let log = leecher.stderr();
    assert!(
        log.contains("Connection refused") || log.contains("connection refused"),
        "{log}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || !garbage.events().is_empty())
            || log.contains("download complete")
    );
}
