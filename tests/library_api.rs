//! The library API from the outside: `pollen::Download` downloads from a
//! local seeder with a progress callback, a stop handle ends a seeding
//! session from another thread, a magnet link downloads through the same
//! builder, and the `download` example program works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{run_with_deadline, seeded_torrent, TempDir};

fn setup(tag: &str) -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = TempDir::new(tag);
    let files = [("lib/a.bin", 2_000_000, 41), ("lib/b.bin", 123, 42)];
    let (seed, torrent) = seeded_torrent(tmp.path(), &files, None);
    (tmp, seed, torrent)
}

#[test]
fn download_builder_with_progress_and_stop_handle() {
    let (tmp, seed, torrent) = setup("api");
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer: SocketAddr = seeder.peer_arg().parse().unwrap();
    let dest = tmp.path().join("dest");
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    let outcome = pollen::Download::new(&torrent)
        .dest(&dest)
        .peer(peer)
        .trackers(false)
        .on_progress(move |p| sink.lock().unwrap().push((p.done_bytes, p.total_bytes)))
        .run()
        .unwrap();
    assert_eq!(outcome, pollen::Outcome::Complete);
    assert_same_tree(&seed, &dest);
    let reports = reports.lock().unwrap();
    assert!(!reports.is_empty(), "no progress report");
    assert!(reports.iter().all(|&(_, total)| total == 2_000_123));

    // A seeding session ends when its stop handle is used.
    // Stopped once its loop runs (its first progress report), not after a
    // guessed delay.
    let (running, first_report) = std::sync::mpsc::sync_channel(1);
    let seeding = pollen::Download::new(&torrent)
        .dest(&dest)
        .trackers(false)
        .seed(true)
        .on_progress(move |_| {
            let _ = running.try_send(());
        });
    let stop = seeding.stop_handle();
    let runner = std::thread::spawn(move || seeding.run());
    assert!(
        first_report.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the seeding run never reported progress"
    );
    stop.stop();
    let outcome = runner.join().unwrap().unwrap();
    assert_eq!(outcome, pollen::Outcome::Complete);
    seeder.kill();
}

#[test]
fn download_builder_takes_a_magnet_link() {
    let (tmp, seed, torrent) = setup("api-magnet");
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    let meta = pollen::load_torrent(&torrent).unwrap();
    let hex = meta.info_hash.to_hex();
    let link = format!("magnet:?xt=urn:btih:{hex}&dn=lib&x.pe={peer}");
    let dest = tmp.path().join("dest");
    let outcome = pollen::Download::new(&link)
        .dest(&dest)
        .trackers(false)
        .run()
        .unwrap();
    assert_eq!(outcome, pollen::Outcome::Complete);
    assert_same_tree(&seed, &dest);
    let saved = dest.join(".pollen").join(format!("{hex}.torrent"));
    let again = pollen::load_torrent(&saved).unwrap();
    assert_eq!(again.info_hash, meta.info_hash);
    // A malformed link is bad input, named as such, before anything binds.
    let err = pollen::Download::new("magnet:?xt=urn:btih:1234")
        .dest(&dest)
        .run()
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    seeder.kill();
}

#[test]
fn the_download_example_downloads_from_a_local_seeder() {
    let (tmp, seed, torrent) = setup("api-example");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", "download"]);
    let built = run_with_deadline(build, Duration::from_secs(300));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        std::path::PathBuf::from,
    );
    let example = target.join("debug/examples/download");
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("dest");
    let mut run = Command::new(example);
    run.arg(&torrent).arg(&dest).arg(&peer);
    let out = run_with_deadline(run, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Complete");
    assert_same_tree(&seed, &dest);
    seeder.kill();
}
