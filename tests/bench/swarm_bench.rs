//! `make bench`, swarm part, on 127.0.0.1, with one libtorrent seeder (a
//! neutral third client) and an opentracker that every peer announces to
//! over HTTP (aria2c needs a tracker to find peers, so pollen uses one too).
//! The torrent is one 256 MiB file in 256 KiB pieces, made by `pollen create`.
//! Figures are printed, never asserted. Two scenarios share the seeder:
//!
//! - **single**: pollen and aria2c each download the file alone,
//!   `POLLEN_BENCH_RUNS` times (default 5), the two alternating.
//! - **swarm4**: four leechers of one client start at once, each into its
//!   own empty directory; they find the seeder and each other through the
//!   tracker and trade pieces among themselves while downloading. Four
//!   pollen, then four aria2c (alternating who goes first),
//!   `POLLEN_BENCH_RUNS` times (default 3). Wall time is from the first
//!   start until the last of the four exits; CPU time is the sum of the four
//!   leechers' user + system time; peak RSS is the largest of the four.
//!
//! Every download is checked byte for byte. Wall time is from start to exit
//! (aria2c lingers about 2 s after finishing, and its first data arrives
//! about 2 s after start); CPU time (user + system) and peak RSS come from
//! `/usr/bin/time` (Debian package `time`). The leechers share the machine's
//! cores with the seeder, so a loopback client is mostly limited by CPU: its
//! own and libtorrent's.
//!
//! Arguments that are not flags pick scenarios by name, e.g.
//! `cargo bench --bench swarm_bench -- swarm4`; by default both run.
//! `POLLEN_BENCH_MIB=1024` changes the payload size (default 256 MiB), and
//! `POLLEN_BENCH_BASELINE=/path/to/an/older/pollen` measures that binary too,
//! as the client `pollen-before`, alternating with the others in the same
//! run: a before/after comparison on the same seeder, tracker and machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{
    aria2c, assert_same_files, free_port, libtorrent, pollen_bin, pollen_command, tracked_torrent,
    Proc, Role, POLL_EVERY,
};
use common::{have_libtorrent, have_program, payload, TempDir};

/// The payload: one file of 256 MiB, unless `POLLEN_BENCH_MIB` says.
fn size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let mib = std::env::var("POLLEN_BENCH_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(256);
        mib << 20
    })
}
const PIECE_SIZE: &str = "256K";
/// Runs per client of the single-leecher scenario, unless `POLLEN_BENCH_RUNS` says.
const DEFAULT_RUNS: usize = 5;
/// Leechers of one client that download at once in the swarm scenario.
const LEECHERS: usize = 4;
/// Runs per client of the swarm scenario, unless `POLLEN_BENCH_RUNS` says.
const DEFAULT_SWARM_RUNS: usize = 3;
/// Longest one download (or one swarm run) may take before the bench gives up on it.
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

/// One swarm run of [`LEECHERS`] leechers of one client.
#[derive(Debug, Clone, Copy)]
struct SwarmSample {
    /// Seconds from the first start until the first leecher exited.
    first: f64,
    /// Seconds from the first start until the last leecher exited.
    wall: f64,
    /// User + system seconds, summed over the leechers.
    cpu: f64,
    /// The largest peak RSS of any one leecher.
    max_rss_kib: u64,
}

/// A client under test: its name and how to start it downloading into a directory.
struct Client {
    name: &'static str,
    command: Box<dyn Fn(&Path) -> Command>,
    samples: Vec<Sample>,
    swarm_samples: Vec<SwarmSample>,
}

fn main() {
    println!();
    println!(
        "swarm bench: {} MiB single file, 256 KiB pieces, one libtorrent seeder on 127.0.0.1",
        size() >> 20
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
    // `cargo bench` passes `--bench`; any other argument names a scenario to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |scenario: &str| wanted.is_empty() || wanted.iter().any(|w| w == scenario);
    let runs_override = std::env::var("POLLEN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0);

    let tmp = TempDir::new("swarm-bench");
    let seed_dir = tmp.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = seed_dir.join("payload.bin");
    std::fs::write(&data, payload(42, size())).unwrap();
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
        swarm_samples: Vec::new(),
    }];
    println!("  pollen: {}", pollen_bin());
    if let Some(before) = std::env::var_os("POLLEN_BENCH_BASELINE") {
        let before = PathBuf::from(before);
        println!("  pollen-before: {}", before.display());
        let torrent = torrent.clone();
        clients.push(Client {
            name: "pollen-before",
            command: Box::new(move |dest| {
                let mut command = Command::new(&before);
                command
                    .args(["-q", "-p", "0", "-d"])
                    .arg(dest)
                    .arg(&torrent);
                command
            }),
            samples: Vec::new(),
            swarm_samples: Vec::new(),
        });
    }
    if have_program("aria2c") {
        println!("  aria2c: {}", first_line("aria2c", &["--version"]));
        let torrent = torrent.clone();
        clients.push(Client {
            name: "aria2c",
            command: Box::new(move |dest| aria2c(Role::Leech, &torrent, dest, free_port())),
            samples: Vec::new(),
            swarm_samples: Vec::new(),
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
    println!("  tracker: opentracker (HTTP announce), for every client");

    if want("single") {
        let runs = runs_override.unwrap_or(DEFAULT_RUNS);
        single_leecher(&mut clients, runs, &seed_dir, tmp.path());
        seeder.assert_running();
    }
    if want("swarm4") {
        let runs = runs_override.unwrap_or(DEFAULT_SWARM_RUNS);
        swarm(&mut clients, runs, &seed_dir, tmp.path());
        seeder.assert_running();
    }
    drop(seeder);
    drop(tracker);
}

/// Scenario "single": one leecher at a time.
fn single_leecher(clients: &mut [Client], runs: usize, seed_dir: &Path, tmp: &Path) {
    println!();
    println!("scenario single: one leecher at a time");
    println!("  {runs} runs per client, alternating");
    let dest = tmp.join("download");
    for round in 0..runs {
        let count = clients.len();
        for i in 0..count {
            // Alternate who goes first, so neither always meets a warmer seeder.
            let client = &mut clients[(i + round) % count];
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).unwrap();
            let sample = timed(client.name, (client.command)(&dest), tmp);
            assert_same_files(seed_dir, &dest, &["payload.bin"]);
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
    let _ = std::fs::remove_dir_all(&dest);

    println!("  medians of {runs} runs:");
    println!("  client     wall s     MiB/s   CPU s (user+sys)   peak RSS MiB");
    let mut medians = Vec::new();
    for client in clients.iter() {
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
        medians.push((client.name, (wall, cpu, rss)));
    }
    print_ratios("", &medians);
}

/// Scenario "swarm4": [`LEECHERS`] leechers of one client at once, trading
/// with the seeder and with each other.
fn swarm(clients: &mut [Client], runs: usize, seed_dir: &Path, tmp: &Path) {
    println!();
    println!(
        "scenario swarm4: {LEECHERS} leechers of one client start at once, find the seeder and \
         each other through the tracker"
    );
    println!(
        "  {runs} runs per client, alternating; wall = until all {LEECHERS} exited, \
         CPU = sum of the {LEECHERS}, peak RSS = max of the {LEECHERS}"
    );
    if clients.len() == 1 {
        println!("  aria2c not installed (package aria2): pollen only, no ratio");
    }
    let dirs: Vec<PathBuf> = (1..=LEECHERS)
        .map(|i| tmp.join(format!("swarm-leecher-{i}")))
        .collect();
    for round in 0..runs {
        let count = clients.len();
        for i in 0..count {
            let client = &mut clients[(i + round) % count];
            for dir in &dirs {
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).unwrap();
            }
            // Write back what earlier runs left dirty, so that no run pays for
            // another's writeback (1 GiB per run here); not timed.
            let _ = Command::new("sync").status();
            let sample = swarm_run(client, &dirs, tmp);
            for dir in &dirs {
                assert_same_files(seed_dir, dir, &["payload.bin"]);
            }
            println!(
                "  run {}  {:7} x{LEECHERS}  all done {:6.2} s (first {:6.2} s)  {:7.1} MiB/s \
                 total  CPU {:6.2} s  peak RSS {:6.1} MiB",
                round + 1,
                client.name,
                sample.wall,
                sample.first,
                swarm_mib_per_s(sample.wall),
                sample.cpu,
                sample.max_rss_kib as f64 / 1024.0
            );
            client.swarm_samples.push(sample);
        }
    }
    for dir in &dirs {
        let _ = std::fs::remove_dir_all(dir);
    }

    println!(
        "  medians of {runs} runs ({LEECHERS} x {} MiB delivered per run):",
        size() >> 20
    );
    println!(
        "  client   all done s   first s   total MiB/s   CPU s (sum of {LEECHERS})   \
         peak RSS MiB (max of {LEECHERS})"
    );
    let mut medians = Vec::new();
    for client in clients.iter() {
        let samples = &client.swarm_samples;
        let wall = median(samples.iter().map(|s| s.wall));
        let first = median(samples.iter().map(|s| s.first));
        let cpu = median(samples.iter().map(|s| s.cpu));
        let rss = median(samples.iter().map(|s| s.max_rss_kib as f64)) / 1024.0;
        println!(
            "  {:8} {:10.2} {:9.2} {:13.1} {:19.2} {:25.1}",
            client.name,
            wall,
            first,
            swarm_mib_per_s(wall),
            cpu,
            rss
        );
        medians.push((client.name, (wall, cpu, rss)));
    }
    print_ratios("swarm4 ", &medians);
}

/// `pollen/aria2c` (and `pollen/pollen-before`, when measured) ratios of
/// the medians (wall s, CPU s, peak RSS MiB) of each client.
fn print_ratios(scenario: &str, medians: &[(&str, (f64, f64, f64))]) {
    let of = |name: &str| medians.iter().find(|(n, _)| *n == name).map(|(_, m)| *m);
    let Some(pollen) = of("pollen") else {
        return;
    };
    for other in ["aria2c", "pollen-before"] {
        if let Some(o) = of(other) {
            println!(
                "  {scenario}pollen/{other}: wall {:.2}x, MiB/s {:.2}x, CPU {:.2}x, peak RSS {:.2}x",
                pollen.0 / o.0,
                o.0 / pollen.0,
                pollen.1 / o.1,
                pollen.2 / o.2
            );
        }
    }
}

/// Starts one leecher of `client` per directory in `dirs`, all at once and
/// each under `/usr/bin/time`, and waits until every one has exited
/// successfully.
fn swarm_run(client: &Client, dirs: &[PathBuf], log_dir: &Path) -> SwarmSample {
    let start = Instant::now();
    let mut leechers: Vec<(Proc, PathBuf, Option<f64>)> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let name = format!("{}-swarm-{}", client.name, i + 1);
            let report = log_dir.join(format!("{name}.time"));
            let command = under_time((client.command)(dir), &report);
            (Proc::spawn(&name, command, log_dir), report, None)
        })
        .collect();
    let deadline = start + RUN_LIMIT;
    loop {
        let mut failed = None;
        for (proc, _, done) in leechers.iter_mut() {
            if done.is_some() {
                continue;
            }
            if let Some(status) = proc.exit_status() {
                *done = Some(start.elapsed().as_secs_f64());
                if !status.success() {
                    failed = Some(format!(
                        "{} failed: {status}\n{}",
                        proc.name(),
                        proc.report()
                    ));
                }
            }
        }
        if let Some(message) = failed {
            stop_all(&mut leechers);
            panic!("{message}");
        }
        if leechers.iter().all(|(_, _, done)| done.is_some()) {
            break;
        }
        if Instant::now() >= deadline {
            let logs: String = leechers.iter().map(|(p, _, _)| p.report()).collect();
            stop_all(&mut leechers);
            panic!(
                "{} x{}: not all done within {RUN_LIMIT:?}\n{logs}",
                client.name,
                dirs.len()
            );
        }
        std::thread::sleep(POLL_EVERY);
    }
    let mut sample = SwarmSample {
        first: f64::INFINITY,
        wall: 0.0,
        cpu: 0.0,
        max_rss_kib: 0,
    };
    for (_, report, done) in &leechers {
        let done = done.expect("every leecher exited");
        let (cpu, rss) = read_time_report(report);
        sample.first = sample.first.min(done);
        sample.wall = sample.wall.max(done);
        sample.cpu += cpu;
        sample.max_rss_kib = sample.max_rss_kib.max(rss);
    }
    sample
}

/// Kills every leecher still running: first the client under
/// `/usr/bin/time` (killing `time` alone would orphan it), then `time`.
fn stop_all(leechers: &mut [(Proc, PathBuf, Option<f64>)]) {
    for (proc, _, _) in leechers.iter_mut() {
        if !proc.running() {
            continue;
        }
        let pid = proc.pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", child]).status();
        }
        proc.kill();
    }
}

/// `command` run under `/usr/bin/time`, which writes the child's elapsed,
/// user and system seconds and peak RSS (KiB) to `report`.
fn under_time(command: Command, report: &Path) -> Command {
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(report)
        .arg(command.get_program())
        .args(command.get_args());
    wrapped
}

/// CPU seconds (user + system) and peak RSS (KiB) from an [`under_time`] report.
fn read_time_report(report: &Path) -> (f64, u64) {
    let text = std::fs::read_to_string(report).unwrap();
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
    (user + sys, *rss as u64)
}

/// Runs `command` under `/usr/bin/time` until it exits (successfully).
fn timed(name: &str, command: Command, log_dir: &Path) -> Sample {
    let report = log_dir.join(format!("{name}.time"));
    let wrapped = under_time(command, &report);
    let start = Instant::now();
    let mut proc = Proc::spawn(name, wrapped, log_dir);
    proc.wait_success(RUN_LIMIT);
    let wall = start.elapsed().as_secs_f64();
    let (cpu, max_rss_kib) = read_time_report(&report);
    Sample {
        wall,
        cpu,
        max_rss_kib,
    }
}

fn mib_per_s(seconds: f64) -> f64 {
    size() as f64 / (1024.0 * 1024.0) / seconds
}

/// All the leechers of a swarm run together: `LEECHERS` copies of the payload in `seconds`.
fn swarm_mib_per_s(seconds: f64) -> f64 {
    LEECHERS as f64 * mib_per_s(seconds)
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
