//! `make soak` (not CI, not part of `make bench`, not run by `cargo test`):
//! one release pollen seeds for an hour to a churn of leechers, and its
//! memory, CPU and open file descriptors are sampled all along. What it
//! shows is whether those lines stay flat: a leak of memory, of sockets or
//! of per-peer state, or a loop that gets busier with every peer it has
//! seen, climbs over an hour of churn. Figures are printed and written,
//! never asserted; Linux only (`/proc`).
//!
//! The setup, all on 127.0.0.1:
//!
//! - a torrent of two files (40 MiB and 8 MiB, neither a whole number of
//!   256 KiB pieces) made with the library's `create_torrent`, announcing
//!   to an opentracker (Debian's, whitelisting this torrent only);
//! - one seeder: `pollen --seed --no-dht -q --bind 127.0.0.1 -p 0 -d DIR
//!   TORRENT` (the binary `cargo bench` builds: the release profile), with
//!   an empty `POLLEN_DHT_ROUTERS`, so no packet leaves the loopback;
//! - a churn of leechers, [`DEFAULT_LEECHERS`] at a time (`SOAK_LEECHERS`
//!   sets another count), started in rotation: pollen (`--no-dht --peer
//!   SEEDER`, and the tracker), aria2c and libtorrent (`lt_peer.py leech`),
//!   each into a fresh empty temp directory. A leecher finds the seeder (and
//!   the other leechers) through the tracker, downloads everything and
//!   exits; as soon as one is gone the next starts. A download counts as
//!   done when the client exited 0 and both files are byte-identical to the
//!   seeder's; otherwise (a non-zero exit, wrong bytes, or still running
//!   after [`LEECH_LIMIT`], when it is killed) it counts as failed, and the
//!   tail of its log is printed for the first [`FAILURE_REPORTS`] failures.
//!   A client that is not installed is left out of the rotation (said at the
//!   start); without opentracker the soak is skipped.
//!
//! The churn runs `SOAK_MINUTES` (default 60; a fraction works) and the
//! seeder is sampled every `SOAK_SAMPLE_SECS` (default 60), plus once
//! before the first leecher starts (row 0, after the seeder's start-up
//! check: the tracker lists it as a seeder). Columns of the table (and of
//! the TSV, under the names in brackets):
//!
//! - *min* [`minute`]: minutes since the churn began;
//! - *RSS MiB* [`rss_mib`]: the seeder's resident memory, `VmRSS` of
//!   `/proc/PID/status`;
//! - *HWM MiB* [`hwm_mib`]: its peak resident memory so far, `VmHWM`;
//! - *CPU ms* [`cpu_ms`]: the user + system time it used in the interval
//!   since the previous row (`utime` + `stime` of `/proc/PID/stat`, in
//!   clock ticks of 10 ms); row 0 has the time since it was started (its
//!   start-up check); the TSV also has the interval's length [`interval_s`];
//! - *fds* [`fds`]: its open file descriptors (entries of `/proc/PID/fd`):
//!   listening and peer sockets, the open data files, the event loop's own;
//! - *conns* [`conns`]: its TCP connections in state ESTABLISHED at that
//!   moment (its socket inodes looked up in `/proc/net/tcp` and `tcp6`):
//!   the peers it has, plus a tracker request if one is under way;
//! - *pollen*, *aria2c*, *lt* [`pollen_done`, `aria2c_done`,
//!   `libtorrent_done`]: downloads completed (and checked) by each client
//!   in the interval;
//! - *failed* [`failed`]: downloads that failed in the interval, any client;
//! - *leeched MiB* [`leeched_mib`]: payload bytes of the downloads completed
//!   in the interval. The leechers also trade pieces among themselves, so
//!   this is what the swarm delivered, an upper bound on what the seeder
//!   uploaded.
//!
//! The table goes to stdout as the rows are taken; at the end the run writes
//! `target/soak/soak.tsv` (the table) and `target/soak/soak.svg` (three
//! stacked line charts against minutes: RSS with HWM dashed, CPU ms per
//! interval, and fds, each from 0 to a round number above its maximum,
//! with its minimum and maximum in its title), and prints their paths
//! (`CARGO_TARGET_DIR` moves them). The closing summary gives RSS at the
//! first and last rows and its maximum, the least-squares slope of RSS
//! against time over the rows after row 0 (MiB per hour), the smallest and
//! largest fd count, the median CPU use per minute of the intervals, the
//! totals per client, and how long the seeder took to stop on SIGTERM.
//! When the minutes are up, leechers still running are killed and counted
//! as *cut short* (neither done nor failed). If the seeder dies, the rows so
//! far are written out and the run fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{
    aria2c, clock_ticks_per_second, cpu_ticks, free_port, libtorrent, pollen_bin, pollen_command,
    status_field, Opentracker, Proc, Role,
};
use common::{have_libtorrent, have_program, payload, TempDir, NO_PUBLIC_DHT};
use pollen::create::{create_torrent, CreateOptions};

/// Minutes of churn, unless `SOAK_MINUTES` says.
const DEFAULT_MINUTES: f64 = 60.0;
/// Seconds between samples, unless `SOAK_SAMPLE_SECS` says.
const DEFAULT_SAMPLE_SECS: u64 = 60;
/// Leechers running at once, unless `SOAK_LEECHERS` says.
const DEFAULT_LEECHERS: usize = 3;
const MIB: usize = 1 << 20;
/// The payload: (path under the seed directory, length, payload stream).
const FILES: [(&str, usize, u64); 2] = [
    ("soak/a.bin", 40 * MIB + 12_345, 1701),
    ("soak/b.bin", 8 * MIB - 777, 1702),
];
const PIECE_LEN: u32 = 256 * 1024;
/// Longest one leecher may run before it is killed and counted as failed
/// (a loopback download of 48 MiB takes seconds).
const LEECH_LIMIT: Duration = Duration::from_secs(300);
/// Longest the seeder may take to check its data and announce itself.
const SEEDER_READY_LIMIT: Duration = Duration::from_secs(120);
/// Longest the seeder may take to stop on SIGTERM at the end.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How often the churn loop looks at its leechers.
const TICK: Duration = Duration::from_millis(100);
/// Failures whose logs are printed (the rest are only counted).
const FAILURE_REPORTS: usize = 3;

/// A leeching client of the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Pollen,
    Aria2c,
    Libtorrent,
}

impl Client {
    const ALL: [Client; 3] = [Client::Pollen, Client::Aria2c, Client::Libtorrent];

    fn name(self) -> &'static str {
        match self {
            Client::Pollen => "pollen",
            Client::Aria2c => "aria2c",
            Client::Libtorrent => "libtorrent",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One running leecher; its process is killed (field order) before its
/// directory is removed.
struct Leecher {
    client: Client,
    proc: Proc,
    dir: TempDir,
    started: Instant,
}

/// Downloads that ended in one interval.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    done: [u32; 3],
    failed: u32,
    leeched_bytes: u64,
}

/// One row of the table (see the module doc for each column).
#[derive(Debug, Clone, Copy)]
struct Sample {
    minute: f64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_ms: f64,
    interval_s: f64,
    fds: usize,
    conns: usize,
    counts: Counts,
}

/// What the run saw besides the rows.
#[derive(Debug, Default)]
struct Totals {
    done: [u32; 3],
    failed: [u32; 3],
    cut_short: u32,
    leeched_bytes: u64,
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn main() {
    let minutes = env_number::<f64>("SOAK_MINUTES")
        .filter(|m| m.is_finite() && *m > 0.0)
        .unwrap_or(DEFAULT_MINUTES);
    let sample_secs = env_number::<u64>("SOAK_SAMPLE_SECS")
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_SAMPLE_SECS);
    let concurrency = env_number::<usize>("SOAK_LEECHERS")
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_LEECHERS);
    let total_bytes: usize = FILES.iter().map(|f| f.1).sum();
    println!();
    println!(
        "soak: one pollen seeder of {:.1} MiB on 127.0.0.1, {concurrency} leechers at a time \
         (pollen, aria2c, libtorrent in rotation), {minutes} min, a sample every {sample_secs} s",
        total_bytes as f64 / MIB as f64
    );
    if !Path::new("/proc/self/stat").exists() {
        println!("  skipped: no /proc (Linux only)");
        return;
    }
    if !have_program("opentracker") {
        println!("  skipped: opentracker not installed (make soak installs it)");
        return;
    }
    let clients: Vec<Client> = Client::ALL
        .into_iter()
        .filter(|c| match c {
            Client::Pollen => true,
            Client::Aria2c => have_program("aria2c"),
            Client::Libtorrent => have_libtorrent(),
        })
        .collect();
    for missing in Client::ALL.iter().filter(|c| !clients.contains(c)) {
        println!(
            "  note: {} not installed, left out of the rotation",
            missing.name()
        );
    }

    let tmp = TempDir::new("soak");
    let seed_dir = tmp.path().join("seed");
    let logs = tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    for (rel, len, stream) in FILES {
        let path = seed_dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, payload(stream, len)).unwrap();
    }
    let expected: Vec<(&str, Vec<u8>)> = FILES
        .iter()
        .map(|(rel, _, _)| (*rel, fs::read(seed_dir.join(rel)).unwrap()))
        .collect();
    let torrent = tmp.path().join("soak.torrent");
    let (mut tracker, info_hash) = start_tracker(&logs, &seed_dir.join("soak"), &torrent);

    let mut seeder_command = pollen_command([torrent.as_os_str()]);
    seeder_command
        .arg("-d")
        .arg(&seed_dir)
        .args(["--seed", "--no-dht", "-q", "--bind", "127.0.0.1", "-p", "0"])
        .env(NO_PUBLIC_DHT.0, NO_PUBLIC_DHT.1);
    let mut seeder = Proc::spawn("seeder", seeder_command, &logs);
    let spawned = Instant::now();
    let listening = seeder.wait_for_line("listening on", SEEDER_READY_LIMIT);
    let seed_peer = format!("127.0.0.1:{}", listening.rsplit(':').next().unwrap_or(""));
    tracker.wait_for_seeders(&info_hash, 1, SEEDER_READY_LIMIT, &mut [&mut seeder]);
    let pid = seeder.pid();
    println!(
        "  seeder: {} (pid {pid}) at {seed_peer}, ready in {:.2} s; tracker {}",
        pollen_bin(),
        spawned.elapsed().as_secs_f64(),
        tracker.announce_url()
    );
    println!(
        "  leechers: {}",
        clients
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let ms_per_tick = 1000.0 / clock_ticks_per_second();
    let interval = Duration::from_secs(sample_secs);
    let rows_wanted = ((minutes * 60.0) / sample_secs as f64).ceil().max(1.0) as u32;
    let mut samples = Vec::new();
    let mut last_ticks = cpu_ticks(pid);
    let start = Instant::now();
    let mut last_sample_at = start;
    samples.push(take_sample(
        pid,
        0.0,
        last_ticks as f64 * ms_per_tick,
        spawned.elapsed().as_secs_f64(),
        Counts::default(),
    ));
    print_header();
    print_row(&samples[0]);

    let leecher_command = |client: Client, dir: &Path| -> Command {
        match client {
            Client::Pollen => {
                let mut command = pollen_command([torrent.as_os_str()]);
                command
                    .arg("--dest")
                    .arg(dir)
                    .args(["--no-dht", "-q", "--bind", "127.0.0.1", "--peer"])
                    .arg(&seed_peer)
                    .env(NO_PUBLIC_DHT.0, NO_PUBLIC_DHT.1);
                command
            }
            Client::Aria2c => aria2c(Role::Leech, &torrent, dir, free_port()),
            Client::Libtorrent => libtorrent(Role::Leech, &torrent, dir, LEECH_LIMIT),
        }
    };

    let mut leechers: Vec<Leecher> = Vec::new();
    let mut counts = Counts::default();
    let mut totals = Totals::default();
    let mut reported = 0usize;
    let mut started_count = 0usize;
    let mut seeder_died = false;
    loop {
        if !seeder.running() {
            seeder_died = true;
            break;
        }
        // Reap the leechers that are done (or overdue).
        let mut i = 0;
        while i < leechers.len() {
            let leecher = &mut leechers[i];
            let overdue = leecher.started.elapsed() > LEECH_LIMIT;
            if leecher.proc.running() && !overdue {
                i += 1;
                continue;
            }
            let mut leecher = leechers.swap_remove(i);
            let verdict = if overdue && leecher.proc.running() {
                leecher.proc.kill();
                Err(format!("still running after {LEECH_LIMIT:?}, killed"))
            } else {
                judge(&mut leecher, &expected)
            };
            let c = leecher.client.index();
            match verdict {
                Ok(()) => {
                    counts.done[c] += 1;
                    counts.leeched_bytes += total_bytes as u64;
                    totals.done[c] += 1;
                    totals.leeched_bytes += total_bytes as u64;
                }
                Err(why) => {
                    counts.failed += 1;
                    totals.failed[c] += 1;
                    if reported < FAILURE_REPORTS {
                        reported += 1;
                        eprintln!(
                            "soak: {} failed: {why}\n{}",
                            leecher.proc.name(),
                            leecher.proc.report()
                        );
                    }
                }
            }
        }
        let now = Instant::now();
        let row = samples.len() as u32;
        if now >= start + interval * row {
            let ticks = cpu_ticks(pid);
            let sample = take_sample(
                pid,
                now.duration_since(start).as_secs_f64() / 60.0,
                ticks.saturating_sub(last_ticks) as f64 * ms_per_tick,
                now.duration_since(last_sample_at).as_secs_f64(),
                std::mem::take(&mut counts),
            );
            last_ticks = ticks;
            last_sample_at = now;
            print_row(&sample);
            samples.push(sample);
            if row >= rows_wanted {
                break;
            }
        }
        while leechers.len() < concurrency {
            let client = clients[started_count % clients.len()];
            started_count += 1;
            let name = format!("{}-{started_count}", client.name());
            let dir = TempDir::new(&format!("soak-{name}"));
            let proc = Proc::spawn(&name, leecher_command(client, dir.path()), dir.path());
            leechers.push(Leecher {
                client,
                proc,
                dir,
                started: Instant::now(),
            });
        }
        std::thread::sleep(TICK);
    }
    totals.cut_short = leechers.len() as u32;
    drop(leechers);

    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("soak");
    fs::create_dir_all(&out_dir).unwrap();
    let tsv = out_dir.join("soak.tsv");
    let svg = out_dir.join("soak.svg");
    fs::write(&tsv, tsv_text(&samples)).unwrap();
    let title = format!(
        "pollen soak: one seeder of {:.0} MiB, {concurrency} leechers at a time, {} rows every {sample_secs} s",
        total_bytes as f64 / MIB as f64,
        samples.len()
    );
    fs::write(&svg, svg_text(&samples, &title)).unwrap();
    println!("  table: {}", tsv.display());
    println!("  plot:  {}", svg.display());
    if seeder_died {
        panic!(
            "the seeder exited during the soak: {:?}\n{}",
            seeder.exit_status(),
            seeder.report()
        );
    }
    let stopping = Instant::now();
    let stop = match seeder.terminate(STOP_LIMIT) {
        Some(status) => format!(
            "stopped on SIGTERM in {:.2} s ({status})",
            stopping.elapsed().as_secs_f64()
        ),
        None => format!("still running {STOP_LIMIT:?} after SIGTERM, killed"),
    };
    println!("{}", summary(&samples, &totals, &clients, &stop));
}

/// Makes the torrent of `content` announcing to an opentracker on a free
/// port, and starts that tracker (a few ports are tried, in case another
/// process takes the one picked). Returns the tracker and the info-hash.
fn start_tracker(logs: &Path, content: &Path, torrent: &Path) -> (Opentracker, String) {
    let mut errors = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let options = CreateOptions {
            trackers: vec![format!("http://127.0.0.1:{port}/announce")],
            piece_len: Some(PIECE_LEN),
            ..Default::default()
        };
        fs::write(torrent, create_torrent(content, &options).unwrap()).unwrap();
        let info_hash = pollen::load_torrent(torrent).unwrap().info_hash.to_hex();
        match Opentracker::start(logs, port, &[&info_hash]) {
            Ok(tracker) => return (tracker, info_hash),
            Err(e) => errors.push(e),
        }
    }
    panic!("opentracker would not start:\n{}", errors.join("\n"));
}

/// Whether a leecher that exited did its job: exit status 0 and every file
/// byte-identical to the seeder's.
fn judge(leecher: &mut Leecher, expected: &[(&str, Vec<u8>)]) -> Result<(), String> {
    let status = leecher.proc.exit_status();
    if !status.is_some_and(|s| s.success()) {
        return Err(format!("exit status {status:?}"));
    }
    for (rel, want) in expected {
        let got = fs::read(leecher.dir.path().join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        if &got != want {
            return Err(format!(
                "{rel} differs: {} bytes expected, {} got",
                want.len(),
                got.len()
            ));
        }
    }
    Ok(())
}

/// Reads the seeder's figures (the CPU time is measured by the caller).
fn take_sample(pid: u32, minute: f64, cpu_ms: f64, interval_s: f64, counts: Counts) -> Sample {
    Sample {
        minute,
        rss_kib: status_field(pid, "VmRSS:"),
        hwm_kib: status_field(pid, "VmHWM:"),
        cpu_ms,
        interval_s,
        fds: fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0),
        conns: established_connections(pid),
        counts,
    }
}

/// TCP connections of process `pid` in state ESTABLISHED: its socket
/// inodes (`/proc/PID/fd` links `socket:[INODE]`) found in `/proc/net/tcp`
/// or `tcp6` with state `01`.
fn established_connections(pid: u32) -> usize {
    let inodes: HashSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.get(3) == Some(&"01")
                        && fields.get(9).is_some_and(|inode| inodes.contains(*inode))
                })
                .count()
        })
        .sum()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_header() {
    println!(
        "  {:>6} {:>8} {:>8} {:>8} {:>5} {:>6} {:>7} {:>7} {:>5} {:>7} {:>12}",
        "min",
        "RSS MiB",
        "HWM MiB",
        "CPU ms",
        "fds",
        "conns",
        "pollen",
        "aria2c",
        "lt",
        "failed",
        "leeched MiB"
    );
}

fn print_row(s: &Sample) {
    println!(
        "  {:>6.2} {:>8.2} {:>8.2} {:>8.0} {:>5} {:>6} {:>7} {:>7} {:>5} {:>7} {:>12.0}",
        s.minute,
        mib(s.rss_kib),
        mib(s.hwm_kib),
        s.cpu_ms,
        s.fds,
        s.conns,
        s.counts.done[0],
        s.counts.done[1],
        s.counts.done[2],
        s.counts.failed,
        s.counts.leeched_bytes as f64 / MIB as f64
    );
}

fn tsv_text(samples: &[Sample]) -> String {
    let mut out = String::from(
        "minute\trss_mib\thwm_mib\tcpu_ms\tinterval_s\tfds\tconns\tpollen_done\taria2c_done\t\
         libtorrent_done\tfailed\tleeched_mib\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:.3}\t{:.3}\t{:.3}\t{:.0}\t{:.3}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}",
            s.minute,
            mib(s.rss_kib),
            mib(s.hwm_kib),
            s.cpu_ms,
            s.interval_s,
            s.fds,
            s.conns,
            s.counts.done[0],
            s.counts.done[1],
            s.counts.done[2],
            s.counts.failed,
            s.counts.leeched_bytes as f64 / MIB as f64
        );
    }
    out
}

/// The median of `values` (0 when empty).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Least-squares slope of `points` (x, y); `None` with fewer than two
/// distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

fn summary(samples: &[Sample], totals: &Totals, clients: &[Client], stop: &str) -> String {
    let first = samples.first().map_or(0.0, |s| mib(s.rss_kib));
    let last = samples.last().map_or(0.0, |s| mib(s.rss_kib));
    let max = samples.iter().map(|s| mib(s.rss_kib)).fold(0.0, f64::max);
    let hwm = samples.last().map_or(0.0, |s| mib(s.hwm_kib));
    let after_first: Vec<(f64, f64)> = samples
        .iter()
        .skip(1)
        .map(|s| (s.minute / 60.0, mib(s.rss_kib)))
        .collect();
    let slope = slope(&after_first).map_or("n/a".to_string(), |s| format!("{s:+.2} MiB/h"));
    let fd_min = samples.iter().map(|s| s.fds).min().unwrap_or(0);
    let fd_max = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    let cpu_per_min = median(
        samples
            .iter()
            .skip(1)
            .filter(|s| s.interval_s > 0.0)
            .map(|s| s.cpu_ms * 60.0 / s.interval_s)
            .collect(),
    );
    let per_client: Vec<String> = clients
        .iter()
        .map(|c| {
            format!(
                "{} {} done/{} failed",
                c.name(),
                totals.done[c.index()],
                totals.failed[c.index()]
            )
        })
        .collect();
    format!(
        "  summary: RSS first {first:.2} MiB, last {last:.2} MiB, max {max:.2} MiB (VmHWM {hwm:.2} MiB); \
         RSS slope {slope} (rows after 0); fds {fd_min}..{fd_max}; median CPU {cpu_per_min:.0} ms/min; \
         downloads: {}; {} cut short at the end; {:.2} GiB leeched; seeder {stop}",
        per_client.join(", "),
        totals.cut_short,
        totals.leeched_bytes as f64 / (1u64 << 30) as f64
    )
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for
/// nothing above 0): the top of a chart's y axis.
fn round_up(value: f64) -> f64 {
    if value.is_nan() || value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|top| *top >= value)
        .unwrap_or(10.0 * power)
}

/// Formats a chart label: whole numbers without decimals, small ones with two.
fn label(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// One series of a chart: its points and whether it is dashed.
struct Series {
    points: Vec<(f64, f64)>,
    dashed: bool,
}

const SVG_WIDTH: f64 = 720.0;
const PANEL_HEIGHT: f64 = 180.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_RIGHT: f64 = 690.0;
/// Space above the first panel for the overall title.
const SVG_HEADER: f64 = 30.0;

/// The plot: three stacked line charts (RSS and HWM, CPU per interval, fds)
/// against minutes, as a self-contained SVG.
fn svg_text(samples: &[Sample], title: &str) -> String {
    let x_max = samples
        .iter()
        .map(|s| s.minute)
        .fold(0.0, f64::max)
        .max(1.0 / 60.0);
    let rss = |s: &Sample| (s.minute, mib(s.rss_kib));
    let hwm = |s: &Sample| (s.minute, mib(s.hwm_kib));
    let rss_values: Vec<f64> = samples.iter().map(|s| mib(s.rss_kib)).collect();
    let cpu: Vec<(f64, f64)> = samples
        .iter()
        .skip(1)
        .map(|s| (s.minute, s.cpu_ms))
        .collect();
    let fds: Vec<(f64, f64)> = samples.iter().map(|s| (s.minute, s.fds as f64)).collect();
    let range = |values: &[f64]| {
        if values.is_empty() {
            return (0.0, 0.0);
        }
        (
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (rss_min, rss_max) = range(&rss_values);
    let cpu_values: Vec<f64> = cpu.iter().map(|p| p.1).collect();
    let (cpu_min, cpu_max) = range(&cpu_values);
    let fd_values: Vec<f64> = fds.iter().map(|p| p.1).collect();
    let (fd_min, fd_max) = range(&fd_values);
    let height = SVG_HEADER + 3.0 * PANEL_HEIGHT;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" viewBox="0 0 {SVG_WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>"#,
        SVG_WIDTH / 2.0
    );
    let sample_secs = samples.get(1).map_or(0.0, |s| s.interval_s);
    let panels = [
        (
            format!(
                "RSS MiB (solid; VmHWM dashed): min {}, max {}",
                label(rss_min),
                label(rss_max)
            ),
            vec![
                Series {
                    points: samples.iter().map(rss).collect(),
                    dashed: false,
                },
                Series {
                    points: samples.iter().map(hwm).collect(),
                    dashed: true,
                },
            ],
        ),
        (
            format!(
                "CPU ms per {sample_secs:.0} s interval: min {}, max {}",
                label(cpu_min),
                label(cpu_max)
            ),
            vec![Series {
                points: cpu,
                dashed: false,
            }],
        ),
        (
            format!("open fds: min {}, max {}", label(fd_min), label(fd_max)),
            vec![Series {
                points: fds,
                dashed: false,
            }],
        ),
    ];
    for (n, (name, series)) in panels.iter().enumerate() {
        let top = SVG_HEADER + n as f64 * PANEL_HEIGHT;
        panel(&mut out, top, x_max, name, series);
    }
    out.push_str("</svg>\n");
    out
}

/// One chart, `PANEL_HEIGHT` tall from `top`: title, axes from 0 to
/// `x_max` minutes (ticks at a round step) and from 0 to a round number
/// above the largest y, and each series as a polyline (with dots while there are few points).
fn panel(out: &mut String, top: f64, x_max: f64, name: &str, series: &[Series]) {
    let plot_top = top + 25.0;
    let plot_bottom = top + PANEL_HEIGHT - 40.0;
    let y_top = round_up(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x = |minute: f64| PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * minute / x_max;
    let y = |value: f64| plot_bottom - (plot_bottom - plot_top) * value / y_top;
    let _ = writeln!(
        out,
        r#"<text x="{PLOT_LEFT}" y="{}" font-weight="bold">{name}</text>"#,
        top + 15.0
    );
    // Axes, a dotted line at the top value, and the labels.
    let _ = writeln!(
        out,
        r#"<polyline points="{PLOT_LEFT},{plot_top} {PLOT_LEFT},{plot_bottom} {PLOT_RIGHT},{plot_bottom}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r##"<line x1="{PLOT_LEFT}" y1="{plot_top}" x2="{PLOT_RIGHT}" y2="{plot_top}" stroke="#bbb" stroke-dasharray="2,3"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
        PLOT_LEFT - 5.0,
        plot_top + 4.0,
        label(y_top),
        PLOT_LEFT - 5.0,
        plot_bottom + 4.0
    );
    // Ticks on the minutes axis at a round step (about six of them), and the last minute.
    let step = round_up(x_max / 6.0);
    let mut tick = 0.0;
    while tick < x_max - step / 2.0 {
        let _ = writeln!(
            out,
            r#"<line x1="{0:.1}" y1="{plot_bottom}" x2="{0:.1}" y2="{1}" stroke="black"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}</text>"#,
            x(tick),
            plot_bottom + 4.0,
            plot_bottom + 16.0,
            label(tick)
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{PLOT_RIGHT}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{}" text-anchor="middle">minutes</text>"#,
        plot_bottom + 16.0,
        label((x_max * 100.0).round() / 100.0),
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        plot_bottom + 30.0
    );
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(m, v)| format!("{:.1},{:.1}", x(m), y(v)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#1f5fa8" stroke-width="1.5"{dash}/>"##,
            points.join(" ")
        );
        if !s.dashed && s.points.len() <= 120 {
            for &(m, v) in &s.points {
                let _ = writeln!(
                    out,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f5fa8"/>"##,
                    x(m),
                    y(v)
                );
            }
        }
    }
}
