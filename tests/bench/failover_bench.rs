//! `make bench`, tracker failover part (issue 11): a torrent whose tier-1
//! tracker is a UDP port that never answers and whose tier-2 tracker works
//! (`pollen tracker` over HTTP). One pollen seeder on 127.0.0.1 announces
//! to the working tracker only; a leecher starts with an empty directory and
//! the clock runs until its download is complete. pollen and libtorrent
//! alternate, `POLLEN_BENCH_RUNS` times each (default 3); medians are
//! printed, never asserted, and every download is checked byte for byte.
//!
//! What it shows: BEP 12's tier-by-tier walk waits on the silent tracker
//! before it asks tier 2. libtorrent (its defaults: tiers in order) gives
//! up on it after its tracker timeouts; pollen announces to every tier at
//! once and needs no give-up at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clients::{assert_same_files, libtorrent, pollen_command, Proc, Role};
use common::process::{Pollen, Tracker};
use common::{have_libtorrent, payload, TempDir};
use pollen::create::{create_torrent, CreateOptions};

/// The payload: one file of 8 MiB (the download itself takes milliseconds;
/// finding the seeder is what is measured).
const SIZE: usize = 8 << 20;
/// Runs per client unless `POLLEN_BENCH_RUNS` says.
const DEFAULT_RUNS: usize = 3;
/// Longest one download may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn main() {
    println!();
    println!(
        "failover bench: tier 1 a silent UDP tracker, tier 2 `pollen tracker` (HTTP); \
         8 MiB from one pollen seeder on 127.0.0.1"
    );
    if !have_libtorrent() {
        println!("  skipped: libtorrent (python3-libtorrent) not installed");
        return;
    }
    if !cfg!(feature = "tracker-server") {
        println!("  skipped: pollen was built without the tracker-server feature");
        return;
    }
    let runs = std::env::var("POLLEN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);

    let tmp = TempDir::new("failover-bench");
    let seed_dir = tmp.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = seed_dir.join("payload.bin");
    std::fs::write(&data, payload(43, SIZE)).unwrap();

    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let silent_url = format!("udp://{}", silent.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !flag.load(Ordering::Relaxed) {
            let _ = silent.recv_from(&mut buf);
        }
    });

    let tracker = Tracker::start(&[]);
    let torrent = tmp.path().join("leech.torrent");
    write_torrent(&data, vec![silent_url, tracker.http.clone()], &torrent);
    let seed_torrent = tmp.path().join("seed.torrent");
    write_torrent(&data, vec![tracker.http.clone()], &seed_torrent);
    let mut seeder = Pollen::start([
        seed_torrent.as_os_str(),
        "-d".as_ref(),
        seed_dir.as_os_str(),
        "--seed".as_ref(),
        "-v".as_ref(),
    ]);
    seeder.port();
    let announced = common::process::wait_for(Duration::from_secs(60), || {
        seeder.stderr().contains("tracker http://")
    });
    assert!(announced, "the seeder never announced\n{}", seeder.stderr());

    let mut times: [(&str, Vec<f64>); 2] = [("pollen", Vec::new()), ("libtorrent", Vec::new())];
    for run in 0..runs {
        for (name, samples) in &mut times {
            let dest = tmp.path().join(format!("{name}-{run}"));
            std::fs::create_dir_all(&dest).unwrap();
            let seconds = time_to_complete(name, &torrent, &dest, tmp.path());
            assert_same_files(&seed_dir, &dest, &["payload.bin"]);
            samples.push(seconds);
        }
    }
    println!("  time from start to complete, median of {runs}:");
    for (name, samples) in &times {
        let list: Vec<String> = samples.iter().map(|s| format!("{s:.2}")).collect();
        println!(
            "    {name:<10} {:>7.2} s   (runs: {} s)",
            median(samples),
            list.join(", ")
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
}

/// Seconds from starting leecher `name` into `dest` until it says the
/// download is complete (pollen: `download complete` in its log;
/// libtorrent: `complete` on stdout); then waits for it to exit.
fn time_to_complete(name: &str, torrent: &Path, dest: &Path, logs: &Path) -> f64 {
    let start = Instant::now();
    if name == "pollen" {
        let mut command = pollen_command(["-v", "-p", "0", "-d"]);
        command.arg(dest).arg(torrent);
        let mut leecher = Proc::spawn("pollen-leecher", command, logs);
        leecher.wait_for_stderr("download complete", RUN_LIMIT);
        let seconds = start.elapsed().as_secs_f64();
        leecher.wait_success(RUN_LIMIT);
        seconds
    } else {
        let command = libtorrent(Role::Leech, torrent, dest, RUN_LIMIT);
        let mut leecher = Proc::spawn("libtorrent-leecher", command, logs);
        leecher.wait_for_line("complete", RUN_LIMIT);
        let seconds = start.elapsed().as_secs_f64();
        leecher.wait_success(RUN_LIMIT);
        seconds
    }
}

/// Writes a torrent of the single file `data` announcing to `trackers`
/// (each in its own tier) to `path`.
fn write_torrent(data: &Path, trackers: Vec<String>, path: &Path) {
    let options = CreateOptions {
        trackers,
        piece_len: Some(256 * 1024),
        ..CreateOptions::default()
    };
    std::fs::write(path, create_torrent(data, &options).unwrap()).unwrap();
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
