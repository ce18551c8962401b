//! `make bench`, swarm part: pollen and aria2c each download the same 256 MiB
//! file (256 KiB pieces) from one libtorrent seeder on 127.0.0.1, both
//! finding it through an opentracker. Figures are printed, never asserted.
//!
//! Each client runs `POLLEN_BENCH_RUNS` times (default 5), the two
//! alternating, into an empty directory; every download is checked byte for
//! byte. Wall time is from start to exit (aria2c lingers about 2 s after
//! finishing, and its first data arrives about 2 s after start); CPU time
//! (user + system) and peak RSS come from `/usr/bin/time` (Debian package
//! `time`). The leecher shares the machine's cores with the seeder, so a
//! loopback client is mostly limited by CPU: its own and libtorrent's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{
    aria2c, assert_same_files, free_port, libtorrent, pollen_bin, pollen_command, tracked_torrent,
    Proc, Role,
};
use common::{have_libtorrent, have_program, payload, TempDir};

/// The payload: one file of 256 MiB.
const SIZE: usize = 256 << 20;
const PIECE_SIZE: &str = "256K";
const DEFAULT_RUNS: usize = 5;
/// Longest one download may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// The seeder's own time limit (the bench kills it when done).
const SEEDER_LIMIT: Duration = Duration::from_secs(3600);

/// What `/usr/bin/time` reported for one run, plus our own wall clock.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
    max_rss_kib: u64,
}

/// A client under test: its name and how to start it downloading into a directory.
struct Client {
    name: &'static str,
    command: Box<dyn Fn(&Path) -> Command>,
    samples: Vec<Sample>,
}

fn main() {
    println!();
    println!(
        "swarm bench: 256 MiB single file, 256 KiB pieces, one libtorrent seeder on 127.0.0.1"
    );
    let missing: Vec<&str> = [
        ("libtorrent (python3-libtorrent)", have_libtorrent()),
        ("opentracker", have_program("opentracker")),
        (
            "/usr/bin/time (package time)",
            Path::new("/usr/bin/time").exists(),
        ),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        println!("  skipped: {} not installed", missing.join(", "));
        return;
    }
    let runs = std::env::var("POLLEN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);

    let tmp = TempDir::new("swarm-bench");
    let seed_dir = tmp.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = seed_dir.join("payload.bin");
    std::fs::write(&data, payload(42, SIZE)).unwrap();
    let torrent = tmp.path().join("payload.torrent");
    let (mut tracker, info_hash) = tracked_torrent(tmp.path(), &data, &torrent, PIECE_SIZE);
    let seeder_cmd = libtorrent(Role::Seed, &torrent, &seed_dir, SEEDER_LIMIT);
    let mut seeder = Proc::spawn("libtorrent-seeder", seeder_cmd, tmp.path());
    seeder.wait_for_line("seeding", Duration::from_secs(120));
    tracker.wait_for_seeders(&info_hash, 1, Duration::from_secs(60), &mut [&mut seeder]);

    let mut clients = vec![Client {
        name: "pollen",
        command: Box::new({
            let torrent = torrent.clone();
            move |dest| {
                let mut command = pollen_command(["-q", "-p", "0", "-d"]);
                command.arg(dest).arg(&torrent);
                command
            }
        }),
        samples: Vec::new(),
    }];
    println!("  pollen: {}", pollen_bin());
    if have_program("aria2c") {
        println!("  aria2c: {}", first_line("aria2c", &["--version"]));
        let torrent = torrent.clone();
        clients.push(Client {
            name: "aria2c",
            command: Box::new(move |dest| aria2c(Role::Leech, &torrent, dest, free_port())),
            samples: Vec::new(),
        });
    } else {
        println!("  aria2c not installed (package aria2): measuring pollen only");
    }
    println!(
        "  seeder: libtorrent {}",
        first_line(
            "/usr/bin/python3",
            &["-c", "import libtorrent; print(libtorrent.__version__)"]
        )
    );
    println!("  {runs} runs per client, alternating");

    let dest = tmp.path().join("download");
    for round in 0..runs {
        let count = clients.len();
        for i in 0..count {
            // Alternate who goes first, so neither always meets a warmer seeder.
            let client = &mut clients[(i + round) % count];
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).unwrap();
            let sample = timed(client.name, (client.command)(&dest), tmp.path());
            assert_same_files(&seed_dir, &dest, &["payload.bin"]);
            println!(
                "  run {}  {:7}  {:6.2} s  {:7.1} MiB/s  CPU {:5.2} s  peak RSS {:6.1} MiB",
                round + 1,
                client.name,
                sample.wall,
                mib_per_s(sample.wall),
                sample.cpu,
                sample.max_rss_kib as f64 / 1024.0
            );
            client.samples.push(sample);
        }
    }
    seeder.assert_running();
    drop(seeder);
    drop(tracker);

    println!("  medians of {runs} runs:");
    println!("  client     wall s     MiB/s   CPU s (user+sys)   peak RSS MiB");
    let mut medians = Vec::new();
    for client in &clients {
        let wall = median(client.samples.iter().map(|s| s.wall));
        let cpu = median(client.samples.iter().map(|s| s.cpu));
        let rss = median(client.samples.iter().map(|s| s.max_rss_kib as f64)) / 1024.0;
        println!(
            "  {:8} {:8.2} {:9.1} {:18.2} {:14.1}",
            client.name,
            wall,
            mib_per_s(wall),
            cpu,
            rss
        );
        medians.push((wall, cpu, rss));
    }
    if let [pollen, aria2] = medians.as_slice() {
        println!(
            "  pollen/aria2c: wall {:.2}x, MiB/s {:.2}x, CPU {:.2}x, peak RSS {:.2}x",
            pollen.0 / aria2.0,
            aria2.0 / pollen.0,
            pollen.1 / aria2.1,
            pollen.2 / aria2.2
        );
    }
}

/// Runs `command` under `/usr/bin/time` until it exits (successfully).
fn timed(name: &str, command: Command, log_dir: &Path) -> Sample {
    let report = log_dir.join(format!("{name}.time"));
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    let start = Instant::now();
    let mut proc = Proc::spawn(name, wrapped, log_dir);
    proc.wait_success(RUN_LIMIT);
    let wall = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&report).unwrap();
    // The last line: a failing child makes time print a status line first.
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [_, user, sys, rss] = fields.as_slice() else {
        panic!("unexpected /usr/bin/time output: {text:?}");
    };
    Sample {
        wall,
        cpu: user + sys,
        max_rss_kib: *rss as u64,
    }
}

fn mib_per_s(seconds: f64) -> f64 {
    SIZE as f64 / (1024.0 * 1024.0) / seconds
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The first line a program prints (for version strings), or "?".
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".to_string())
}
