//! `make bench`, multi-torrent part: what a torrent costs inside one pollen
//! process. One process seeds 100 torrents of 1 to 4 MiB (one file each,
//! 256 KiB pieces, made with the library's `create_torrent`) through its one
//! port:
//!
//! ```text
//! pollen --seed --no-tracker -q -p 0 -d DIR t001.torrent ... t100.torrent
//! ```
//!
//! and, as the baseline in the same run, one process seeds one torrent of
//! about the same size. Each is started twice: **first** (no resume state:
//! every piece is hashed) and **restart** (after a clean stop: the resume
//! state vouches for every piece). For each start the bench prints:
//!
//! - *1st answer s*: from connecting (as soon as it says it listens) until
//!   it answers a handshake for its last torrent: how long the start-up
//!   keeps its loop from a peer;
//! - *ready s*: from spawn until every torrent has finished its start-up
//!   check (`RUST_LOG=pollen::session=info` makes the `-q` process log one
//!   `checked existing data` line per torrent; nothing else changes);
//! - *hashed*: pieces hashed by those checks (0 on a restart);
//! - *saved s*: until every torrent's resume state is on disk (on a first
//!   start pollen saves each right after its check, with an `fsync` of its
//!   data files and of the state: the idle figures are taken after that);
//! - *CPU to ready s*: its user + system time by then (`/proc/PID/stat`);
//! - *VmHWM* and *VmRSS* then (`/proc/PID/status`): peak and current
//!   resident memory;
//! - *idle CPU ms*: user + system time over [`IDLE_WINDOW`] with no peer
//!   and no tracker (in clock ticks of 10 ms), and *wake-ups/s*: its
//!   voluntary context switches over that window (each is one sleep of the
//!   loop);
//! - *stop s*: from SIGTERM until it exited (it saves every resume state).
//!
//! Then a pollen leecher fetches one of the 100 from the restarted seeder
//! (byte-identical), to show every torrent is served. `POLLEN_BENCH_TORRENTS`
//! sets another count than 100. The data was just
//! written (and synced), so the first start reads it from the page cache:
//! its time is hashing, not the disk. Figures are printed, never asserted; Linux only
//! (`/proc`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{
    assert_same_files, clock_ticks_per_second, cpu_ticks, pollen_bin, pollen_command, status_field,
    wait_for, Proc,
};
use common::{payload, TempDir};
use pollen::create::{create_torrent, CreateOptions};
use pollen::metainfo::Metainfo;
use pollen::wire::{Handshake, HANDSHAKE_LEN};

/// Torrents in the many-torrent process, unless `POLLEN_BENCH_TORRENTS` says.
const DEFAULT_TORRENTS: usize = 100;
const MIB: usize = 1 << 20;
/// The baseline's one torrent: about the mean size of the 100.
const SOLO_LEN: usize = 5 * MIB / 2 + 12_345;
const PIECE_LEN: u32 = 256 * 1024;
/// How long each process is watched while idle.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// Pause after the checks end before the idle window: the resume states
/// the first start saves right after its checks are written meanwhile.
const SETTLE: Duration = Duration::from_secs(2);
/// Longest a start-up (every torrent's check) may take before the bench gives up.
const READY_LIMIT: Duration = Duration::from_secs(300);
/// Longest a stop (SIGTERM: resume states saved) may take.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// Longest the leecher may take to fetch one torrent.
const FETCH_LIMIT: Duration = Duration::from_secs(60);
/// The line pollen logs once per torrent when its start-up check is done.
const CHECKED: &str = "checked existing data:";

/// The figures of one start of one seeding process.
struct Figures {
    /// How many torrents it seeds.
    torrents: usize,
    first_answer: f64,
    ready: f64,
    saved: f64,
    hashed: u64,
    cpu_to_ready: f64,
    hwm_kib: u64,
    rss_kib: u64,
    idle_cpu_ms: f64,
    wakeups_per_s: f64,
    stop: f64,
}

fn main() {
    let count = std::env::var("POLLEN_BENCH_TORRENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 1)
        .unwrap_or(DEFAULT_TORRENTS);
    println!();
    println!(
        "multi-torrent bench: {count} torrents of 1-4 MiB seeded by one pollen process, \
         against a one-torrent process"
    );
    if !Path::new("/proc/self/stat").exists() {
        println!("  skipped: no /proc (Linux only)");
        return;
    }
    let tmp = TempDir::new("multi-bench");
    let data = tmp.path().join("data");
    let torrents_dir = tmp.path().join("torrents");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&torrents_dir).unwrap();
    let many: Vec<PathBuf> = (1..=count)
        .map(|i| make_torrent(&data, &torrents_dir, &format!("t{i:03}"), many_len(i), i))
        .collect();
    let solo = make_torrent(&data, &torrents_dir, "solo", SOLO_LEN, 0);
    let many_bytes: usize = (1..=count).map(many_len).sum();
    // Write the fresh data back now (not timed): the seeders' first resume
    // saves sync their files, and would otherwise pay for this writeback.
    let _ = Command::new("sync").status();
    println!(
        "  pollen: {}; {count} torrents, {:.1} MiB in all; baseline torrent {:.1} MiB; \
         {} KiB pieces",
        pollen_bin(),
        many_bytes as f64 / MIB as f64,
        SOLO_LEN as f64 / MIB as f64,
        PIECE_LEN / 1024
    );
    let command = |torrents: &[PathBuf]| {
        let mut command = pollen_command(["--seed", "--no-tracker", "-q", "-p", "0", "-d"]);
        command.arg(&data).args(torrents);
        command.env("RUST_LOG", "pollen::session=info");
        command
    };
    println!(
        "  command: RUST_LOG=pollen::session=info pollen --seed --no-tracker -q -p 0 -d DIR \
         t001.torrent ... t{count:03}.torrent (baseline: solo.torrent)"
    );
    let ticks = clock_ticks_per_second();
    let mut rows = Vec::new();
    for torrents in [vec![solo], many.clone()] {
        for start in ["first", "restart"] {
            let name = format!("seeder-of-{}-{start}", torrents.len());
            let metas: Vec<Metainfo> = torrents
                .iter()
                .map(|t| pollen::load_torrent(t).unwrap())
                .collect();
            let mut seeder = Proc::spawn(&name, command(&torrents), tmp.path());
            let mut figures = measure(&mut seeder, &data, &metas, ticks);
            if torrents.len() > 1 && start == "restart" {
                fetch_one(&mut seeder, &many, &data, tmp.path());
            }
            figures.stop = stop(&mut seeder);
            rows.push((start, figures));
        }
    }
    print_table(&rows);
}

/// Length of torrent `i` of the many: spread over 1 to 4 MiB, never a
/// whole number of pieces.
fn many_len(i: usize) -> usize {
    MIB + (i * 7 % 31) * (3 * MIB) / 31 + 1000 + i
}

/// Writes `len` payload bytes to `data/NAME.bin` and its torrent to
/// `torrents/NAME.torrent`; returns the torrent's path.
fn make_torrent(data: &Path, torrents: &Path, name: &str, len: usize, seed: usize) -> PathBuf {
    let file = data.join(format!("{name}.bin"));
    std::fs::write(&file, payload(1000 + seed as u64, len)).unwrap();
    let options = CreateOptions {
        piece_len: Some(PIECE_LEN),
        ..Default::default()
    };
    let torrent = torrents.join(format!("{name}.torrent"));
    std::fs::write(&torrent, create_torrent(&file, &options).unwrap()).unwrap();
    torrent
}

/// Sends a handshake for the last of `metas` as soon as `seeder` listens
/// and times the answer; waits until all its torrents have finished their
/// start-up check, then until each has its resume file under `data`;
/// then takes its figures (see the module doc).
fn measure(seeder: &mut Proc, data: &Path, metas: &[Metainfo], ticks: f64) -> Figures {
    let count = metas.len();
    let resume_files: Vec<PathBuf> = metas
        .iter()
        .map(|meta| pollen::resume::resume_path(data, meta))
        .collect();
    let spawned = Instant::now();
    let pid = seeder.pid();
    let last = metas.last().expect("at least one torrent");
    let first_answer = handshake_answer(listening_port(seeder), last.info_hash.0);
    let mut checked = 0;
    wait_for(READY_LIMIT, || {
        checked = seeder.stderr().matches(CHECKED).count();
        checked >= count || !seeder.running()
    });
    let ready = spawned.elapsed().as_secs_f64();
    seeder.assert_running();
    assert!(
        checked >= count,
        "{} checked {checked} of {count} torrents within {READY_LIMIT:?}\n{}",
        seeder.name(),
        seeder.report()
    );
    let cpu_to_ready = cpu_ticks(pid) as f64 / ticks;
    let hwm_kib = status_field(pid, "VmHWM:");
    let rss_kib = status_field(pid, "VmRSS:");
    let all_saved = wait_for(READY_LIMIT, || {
        resume_files.iter().all(|f| f.exists()) || !seeder.running()
    });
    assert!(all_saved, "{}: resume states not saved", seeder.name());
    let saved = spawned.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let (cpu_before, switches_before) = (
        cpu_ticks(pid),
        status_field(pid, "voluntary_ctxt_switches:"),
    );
    let window_start = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let window = window_start.elapsed().as_secs_f64();
    let (cpu_after, switches_after) = (
        cpu_ticks(pid),
        status_field(pid, "voluntary_ctxt_switches:"),
    );
    seeder.assert_running();
    Figures {
        torrents: count,
        first_answer,
        ready,
        saved,
        hashed: hashed_pieces(&seeder.stderr()),
        cpu_to_ready,
        hwm_kib,
        rss_kib,
        idle_cpu_ms: 1000.0 * (cpu_after - cpu_before) as f64 / ticks,
        wakeups_per_s: (switches_after - switches_before) as f64 / window,
        stop: 0.0,
    }
}

/// Pieces hashed by the start-up checks, summed over the `checked existing
/// data: ... (N hashed, ...)` lines.
fn hashed_pieces(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.contains(CHECKED))
        .filter_map(|line| {
            let after = line.rsplit_once('(')?.1;
            after.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// A pollen leecher fetches the middle torrent of the many from `seeder`
/// and checks it byte for byte.
fn fetch_one(seeder: &mut Proc, many: &[PathBuf], data: &Path, tmp: &Path) {
    let port = listening_port(seeder);
    let torrent = &many[many.len() / 2 - 1];
    let name = torrent.file_stem().unwrap().to_string_lossy().into_owned();
    let dest = tmp.join("fetched");
    let mut command = pollen_command(["-q", "--no-tracker", "-p", "0", "-d"]);
    command
        .arg(&dest)
        .arg("--peer")
        .arg(format!("127.0.0.1:{port}"))
        .arg(torrent);
    let started = Instant::now();
    let mut leecher = Proc::spawn("leecher", command, tmp);
    leecher.wait_success(FETCH_LIMIT);
    let seconds = started.elapsed().as_secs_f64();
    let file = format!("{name}.bin");
    assert_same_files(data, &dest, &[file.as_str()]);
    let len = std::fs::metadata(dest.join(&file)).unwrap().len();
    println!(
        "  a leecher fetched {file} ({:.1} MiB), torrent {} of the {}, from the \
         restarted seeder in {seconds:.2} s (start to exit), byte-identical",
        len as f64 / MIB as f64,
        many.len() / 2,
        many.len()
    );
}

/// The port `seeder` listens on, from its `listening on ADDR:PORT` line.
fn listening_port(seeder: &mut Proc) -> u16 {
    seeder
        .wait_for_line("listening on", READY_LIMIT)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the listening line")
}

/// Seconds from connecting to 127.0.0.1:`port` until the peer there
/// answers our handshake for `info_hash`.
fn handshake_answer(port: u16, info_hash: [u8; 20]) -> f64 {
    let started = Instant::now();
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(READY_LIMIT)).unwrap();
    let ours = Handshake::new(info_hash, *b"-BM0001-multi-bench-");
    stream.write_all(&ours.encode()).unwrap();
    let mut answer = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut answer).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let theirs = Handshake::decode(&answer).unwrap().unwrap();
    assert!(
        theirs.info_hash == info_hash,
        "answered for another torrent"
    );
    seconds
}

/// Stops `seeder` with SIGTERM (it saves its resume states), checks it
/// left cleanly, and returns how many seconds that took.
fn stop(seeder: &mut Proc) -> f64 {
    let asked = Instant::now();
    let status = seeder.terminate(STOP_LIMIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "{} did not stop cleanly ({status:?})\n{}",
        seeder.name(),
        seeder.report()
    );
    asked.elapsed().as_secs_f64()
}

fn print_table(rows: &[(&str, Figures)]) {
    println!(
        "  torrents  start    1st answer s  ready s  hashed  CPU to ready s  VmHWM MiB  VmRSS MiB  \
         saved s  idle CPU ms in {} s  wake-ups/s  stop s",
        IDLE_WINDOW.as_secs()
    );
    for (start, f) in rows {
        println!(
            "  {:8}  {start:8} {:12.3} {:7.2} {:7} {:15.2} {:10.1} {:10.1} {:8.2} {:19.0} {:11.1} {:7.2}",
            f.torrents,
            f.first_answer,
            f.ready,
            f.hashed,
            f.cpu_to_ready,
            f.hwm_kib as f64 / 1024.0,
            f.rss_kib as f64 / 1024.0,
            f.saved,
            f.idle_cpu_ms,
            f.wakeups_per_s,
            f.stop
        );
    }
    let restart = |one: bool| {
        rows.iter()
            .find(|(s, f)| *s == "restart" && (f.torrents == 1) == one)
            .map(|(_, f)| f)
    };
    if let (Some(one), Some(many)) = (restart(true), restart(false)) {
        let extra = many.torrents.saturating_sub(one.torrents).max(1) as f64;
        println!(
            "  restart, per extra torrent: VmRSS {:+.1} KiB, VmHWM {:+.1} KiB",
            (many.rss_kib as f64 - one.rss_kib as f64) / extra,
            (many.hwm_kib as f64 - one.hwm_kib as f64) / extra
        );
    }
}
