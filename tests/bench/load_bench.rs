//! `make bench`, load part (issue 17): the figures `tests/load.rs` asserts
//! bounds on, as times (printed, never asserted). Each leecher is timed
//! from its start until it exits with the download complete (checked byte
//! for byte); medians of `POLLEN_BENCH_RUNS` runs (default 3).
//!
//! - dead addresses: a leecher whose tracker (tests/common/http_tracker.rs)
//!   lists one pollen seeder, alone or with 200 loopback addresses that
//!   never answer a SYN. Columns: the median time without and with them,
//!   and their ratio ("do not slow the loop": the ratio is the cost of the
//!   dead addresses). pollen and aria2c as the leecher, in the same run.
//! - crowd: a pollen seeder under 500 junk connections opened at once (one
//!   in ten flooding REQUESTs, one in ten never reading, the rest idle);
//!   the leecher starts 12 s later, when every slot is held. Columns: the
//!   median time alone and under the crowd, their ratio, and the leecher's
//!   share of what the seeder sent while it downloaded.
//! - cycles: 10,000 connect/handshake/close cycles against one seeder
//!   (4 threads): cycles per second, and the seeder's fds and VmRSS before
//!   and after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clients::{aria2c, free_port, pollen_bin, status_field, Proc, Role};
use common::http_tracker::{Reply, TestTracker};
use common::load::{announce_port, blocks, cycle, fd_count, url_port, Crowd, DeadAddrs};
use common::process::{assert_same_tree, wait_for, Pollen};
use common::{have_program, write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};
use pollen::metainfo::Metainfo;

/// The payload: one file of 8 MiB in 64 KiB pieces.
const SIZE: usize = 8 << 20;
/// Piece length.
const PIECE_LEN: u32 = 64 * 1024;
/// Runs per figure unless `POLLEN_BENCH_RUNS` says.
const DEFAULT_RUNS: usize = 3;
/// Longest one download may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// Dead addresses listed with the seeder.
const DEAD: usize = 200;
/// Junk connections of the crowd.
const CROWD: usize = 500;
/// When the leecher starts after the crowd (see tests/load.rs).
const CROWD_SETTLE: Duration = Duration::from_secs(12);
/// Connect/disconnect cycles, and the threads running them.
const CYCLES: usize = 10_000;
const CYCLE_THREADS: usize = 4;

fn main() {
    println!();
    println!(
        "load bench: 8 MiB from one pollen seeder on 127.0.0.1 (medians; figures, not assertions)"
    );
    let runs = std::env::var("POLLEN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    let tmp = TempDir::new("load-bench");
    let (seed, torrent, meta) = share(tmp.path());
    let mut clients = vec!["pollen"];
    if have_program("aria2c") {
        clients.push("aria2c");
    } else {
        println!("  aria2c not installed: its rows are skipped");
    }
    dead_addresses(&clients, runs, &seed, &torrent, tmp.path());
    crowd(&clients, runs, &seed, &torrent, &meta, tmp.path());
    cycles(&seed, &torrent, &meta);
}

/// Writes the payload and a torrent of it (no tracker: each scenario's
/// leecher gets a copy announcing to its own).
fn share(root: &Path) -> (PathBuf, PathBuf, Metainfo) {
    let seed = root.join("seed");
    write_tree(&seed, &[("load.bin", SIZE, 29)]);
    let torrent = root.join("t.torrent");
    let bytes = write_torrent(&seed, None, &torrent);
    (seed, torrent, Metainfo::from_bytes(&bytes).unwrap())
}

/// A torrent of `seed/load.bin` announcing to `tracker`, written to `path`.
fn write_torrent(seed: &Path, tracker: Option<String>, path: &Path) -> Vec<u8> {
    let options = CreateOptions {
        piece_len: Some(PIECE_LEN),
        trackers: tracker.into_iter().collect(),
        ..Default::default()
    };
    let bytes = create_torrent(&seed.join("load.bin"), &options).unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn dead_addresses(clients: &[&str], runs: usize, seed: &Path, torrent: &Path, tmp: &Path) {
    let mut seeder = Pollen::seeder(torrent, seed, &[]);
    let seeder_port = seeder.port();
    let dead = DeadAddrs::new(DEAD);
    let mut rows = Vec::new();
    for &client in clients {
        let mut medians = Vec::new();
        for with_dead in [false, true] {
            let tracker = TestTracker::start(Reply::Peers);
            let tracker_port = url_port(&tracker.url());
            if with_dead {
                for p in dead.ports() {
                    announce_port(tracker_port, p);
                }
            }
            announce_port(tracker_port, seeder_port);
            let tracked = tmp.join(format!("dead-{client}-{with_dead}.torrent"));
            write_torrent(seed, Some(tracker.url()), &tracked);
            let mut samples = Vec::new();
            for run in 0..runs {
                let dest = tmp.join(format!("dead-{client}-{with_dead}-{run}"));
                samples.push(download(client, &tracked, &dest, tmp));
                assert_same_tree(seed, &dest);
                let _ = std::fs::remove_dir_all(&dest);
            }
            medians.push(median(&samples));
        }
        rows.push((client, medians[0], medians[1]));
    }
    println!("  dead addresses: the seeder alone in the tracker's list, or with {DEAD} that never answer a SYN");
    println!("    client     alone (s)  +{DEAD} dead (s)  ratio");
    for (client, alone, with) in rows {
        println!(
            "    {client:<10} {alone:>9.2}  {with:>14.2}  {:>5.1}",
            with / alone
        );
    }
    seeder.kill();
}

fn crowd(clients: &[&str], runs: usize, seed: &Path, torrent: &Path, meta: &Metainfo, tmp: &Path) {
    let mut rows = Vec::new();
    for &client in clients {
        let (mut alone, mut crowded, mut shares) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            for with_crowd in [false, true] {
                let mut seeder = Pollen::seeder(torrent, seed, &[]);
                let port = seeder.port();
                let mut junk = with_crowd.then(|| {
                    let crowd = Crowd::start(
                        port,
                        meta.info_hash.0,
                        blocks(meta.total_len(), u64::from(PIECE_LEN)),
                        CROWD,
                    );
                    std::thread::sleep(CROWD_SETTLE);
                    crowd
                });
                let before = junk
                    .as_ref()
                    .map_or(0, |c| c.flooded_bytes.load(Ordering::Relaxed));
                let dest = tmp.join(format!("crowd-{client}-{with_crowd}-{run}"));
                let seconds = download_from(client, seed, &dest, tmp, port);
                assert_same_tree(seed, &dest);
                let _ = std::fs::remove_dir_all(&dest);
                if let Some(crowd) = junk.as_mut() {
                    let flooded = crowd.flooded_bytes.load(Ordering::Relaxed) - before;
                    shares.push(100.0 * SIZE as f64 / (SIZE as f64 + flooded as f64));
                    crowd.stop();
                    crowded.push(seconds);
                } else {
                    alone.push(seconds);
                }
                seeder.kill();
            }
        }
        rows.push((client, median(&alone), median(&crowded), median(&shares)));
    }
    println!("  crowd: the leecher alone with the seeder, or arriving after {CROWD} junk connections hold every slot");
    println!("    client     alone (s)  crowd (s)  ratio  its share of the upload (%)");
    for (client, alone, crowded, share) in rows {
        println!(
            "    {client:<10} {alone:>9.2}  {crowded:>9.2}  {:>5.1}  {share:>5.0}",
            crowded / alone
        );
    }
}

fn cycles(seed: &Path, torrent: &Path, meta: &Metainfo) {
    let mut seeder = Pollen::seeder(torrent, seed, &[]);
    let (port, pid) = (seeder.port(), seeder.id());
    for i in 0..100 {
        cycle(port, meta.info_hash.0, i);
    }
    let (fds, rss) = (fd_count(pid), status_field(pid, "VmRSS:"));
    let next = Arc::new(AtomicUsize::new(100));
    let started = Instant::now();
    let threads: Vec<_> = (0..CYCLE_THREADS)
        .map(|_| {
            let (next, hash) = (Arc::clone(&next), meta.info_hash.0);
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < 100 + CYCLES {
                    cycle(port, hash, next.load(Ordering::Relaxed));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    wait_for(Duration::from_secs(30), || fd_count(pid) == fds);
    println!(
        "  cycles: {CYCLES} connect/handshake/close cycles in {seconds:.2} s ({:.0}/s); \
         seeder fds {fds} -> {}, VmRSS {rss} -> {} KiB",
        CYCLES as f64 / seconds,
        fd_count(pid),
        status_field(pid, "VmRSS:")
    );
    seeder.kill();
}

/// Seconds for `client` to download `torrent` (which names its tracker)
/// into `dest` and exit.
fn download(client: &str, torrent: &Path, dest: &Path, logs: &Path) -> f64 {
    std::fs::create_dir_all(dest).unwrap();
    let start = Instant::now();
    let mut leecher = leecher(client, torrent, dest, logs);
    leecher.wait_success(RUN_LIMIT);
    start.elapsed().as_secs_f64()
}

/// Seconds for `client` to download `seed`'s torrent from the seeder at
/// 127.0.0.1:`port`, found through a tracker that lists it alone (aria2c
/// takes no peer address on its command line).
fn download_from(client: &str, seed: &Path, dest: &Path, logs: &Path, port: u16) -> f64 {
    let tracker = TestTracker::start(Reply::Peers);
    announce_port(url_port(&tracker.url()), port);
    let tracked = logs.join(format!("{client}-{port}.torrent"));
    write_torrent(seed, Some(tracker.url()), &tracked);
    download(client, &tracked, dest, logs)
}

/// `client` leeching `torrent` into `dest` through the torrent's tracker.
fn leecher(client: &str, torrent: &Path, dest: &Path, logs: &Path) -> Proc {
    if client == "pollen" {
        let mut command = std::process::Command::new(pollen_bin());
        command
            .env(common::NO_PUBLIC_DHT.0, common::NO_PUBLIC_DHT.1)
            .arg(torrent)
            .arg("--dest")
            .arg(dest)
            .args(["--no-dht", "-q", "-p", "0"]);
        Proc::spawn("pollen-leecher", command, logs)
    } else {
        Proc::spawn(
            "aria2c-leecher",
            aria2c(Role::Leech, torrent, dest, free_port()),
            logs,
        )
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
