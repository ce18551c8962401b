//! `make bench`, daemon part: one daemon seeding 1,000 small torrents,
//! pollen against Transmission's own daemon (Debian `transmission-daemon`)
//! in the same run, both driven through the same RPC by the same client.
//!
//! For each daemon: start it with an empty state directory and the data
//! already in its download folder, add the 1,000 torrents through
//! `torrent-add` (`metainfo`, base64), wait until every one is checked and
//! seeding, let it settle, then print:
//!
//! - *add s*: the 1,000 `torrent-add` calls, one after another;
//! - *seeding s*: from the first add until `torrent-get` says every torrent
//!   is seeding (status 6, 100 %);
//! - *get ms*: one `torrent-get` of six fields of every torrent (median of
//!   5): what a front-end's refresh costs;
//! - *VmHWM* / *VmRSS*: peak and current resident memory after that;
//! - *idle CPU ms/min*: user + system time over [`IDLE_WINDOW`] with no
//!   peer, no tracker and no RPC client, scaled to one minute, and its
//!   wake-ups per second (voluntary context switches);
//! - *restart s*: pollen only: SIGTERM, start again on the same state
//!   directory, until every torrent is seeding again (from its resume
//!   state: nothing is hashed again).
//!
//! Neither daemon makes outside traffic: no tracker in the torrents, DHT,
//! LPD, PEX and port forwarding off. `POLLEN_BENCH_TORRENTS` sets another
//! count. Figures are printed, never asserted; Linux only (`/proc`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{
    clock_ticks_per_second, cpu_ticks, free_port, pollen_command, status_field, wait_for, Proc,
};
use common::daemon::{base64, Rpc};
use common::{payload, TempDir};
use pollen::create::{create_torrent, CreateOptions};
use serde_json::json;

/// Torrents per daemon, unless `POLLEN_BENCH_TORRENTS` says.
const DEFAULT_TORRENTS: usize = 1000;
/// Each torrent's one file: 64 KiB and a few bytes (4 or 5 pieces).
const FILE_LEN: usize = 64 * 1024;
const PIECE_LEN: u32 = 16 * 1024;
/// How long each daemon is watched while idle.
const IDLE_WINDOW: Duration = Duration::from_secs(60);
/// Pause after every torrent seeds before the idle window.
const SETTLE: Duration = Duration::from_secs(5);
/// Longest the adds plus the checks may take.
const READY_LIMIT: Duration = Duration::from_secs(600);
/// Where Debian's Transmission daemon lives.
const TRANSMISSION_DAEMON: &str = "/usr/bin/transmission-daemon";

/// One daemon's figures.
#[derive(Default)]
struct Figures {
    add_s: f64,
    seeding_s: f64,
    get_ms: f64,
    hwm_kb: u64,
    rss_kb: u64,
    idle_cpu_ms_per_min: f64,
    wakeups_per_s: f64,
    restart_s: Option<f64>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches: nothing to list
    }
    println!("\n== daemon: one daemon seeding many small torrents (RPC-driven) ==");
    if !Path::new("/proc/self/stat").exists() {
        println!("  skipped: no /proc (Linux only)");
        return;
    }
    let count: usize = std::env::var("POLLEN_BENCH_TORRENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TORRENTS);
    let tmp = TempDir::new("daemon-bench");
    let data = tmp.path().join("data");
    let torrents = make_torrents(&data, &tmp.path().join("torrents"), count);
    println!("  {count} torrents of {FILE_LEN} bytes, pieces of {PIECE_LEN} bytes");
    let ticks = clock_ticks_per_second();
    let mut rows = Vec::new();
    let pollen = run_pollen(tmp.path(), &data, &torrents, ticks);
    rows.push(("pollen daemon", pollen));
    if Path::new(TRANSMISSION_DAEMON).exists() {
        let transmission = run_transmission(tmp.path(), &data, &torrents, ticks);
        rows.push(("transmission-daemon 3.00", transmission));
    } else {
        println!(
            "  transmission-daemon: skipped (not installed: apt-get install transmission-daemon)"
        );
    }
    print_table(count, &rows);
}

/// Writes `count` payload files into `data` and their torrents (no
/// tracker) into `dir`.
fn make_torrents(data: &Path, dir: &Path, count: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(data).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    (0..count)
        .map(|i| {
            let file = data.join(format!("f{i:05}.bin"));
            std::fs::write(&file, payload(9000 + i as u64, FILE_LEN + i % 7)).unwrap();
            let options = CreateOptions {
                piece_len: Some(PIECE_LEN),
                ..Default::default()
            };
            let torrent = dir.join(format!("t{i:05}.torrent"));
            std::fs::write(&torrent, create_torrent(&file, &options).unwrap()).unwrap();
            torrent
        })
        .collect()
}

/// pollen daemon: the figures, then a restart on the same state.
fn run_pollen(tmp: &Path, data: &Path, torrents: &[PathBuf], ticks: f64) -> Figures {
    let state = tmp.join("pollen-state");
    let logs = tmp.join("pollen-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let start = |name: &str| -> (Proc, Rpc) {
        let rpc_port = free_port();
        let mut command = pollen_command([
            "daemon".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
            "--dest".as_ref(),
            data.as_os_str(),
            "--rpc-bind".as_ref(),
            format!("127.0.0.1:{rpc_port}").as_ref(),
            "--port".as_ref(),
            "0".as_ref(),
            "--no-dht".as_ref(),
            "--download-queue".as_ref(),
            "0".as_ref(),
            "-q".as_ref(),
        ]);
        command.env("POLLEN_DHT_ROUTERS", "");
        let mut proc = Proc::spawn(name, command, &logs);
        let rpc = Rpc::new(([127, 0, 0, 1], rpc_port).into());
        assert!(
            wait_for(Duration::from_secs(30), || std::net::TcpStream::connect(
                rpc.addr
            )
            .is_ok()),
            "pollen daemon did not listen: {}",
            proc.report()
        );
        proc.assert_running();
        (proc, rpc)
    };
    let (mut proc, mut rpc) = start("pollen-1");
    let mut figures = measure(&mut proc, &mut rpc, torrents, ticks);
    // Restart: every torrent comes back from the state directory and its
    // resume state, nothing hashed again.
    proc.terminate(Duration::from_secs(60));
    let began = Instant::now();
    let (mut proc, mut rpc) = start("pollen-2");
    wait_all_seeding(&mut rpc, torrents.len(), READY_LIMIT);
    figures.restart_s = Some(began.elapsed().as_secs_f64());
    proc.terminate(Duration::from_secs(60));
    figures
}

/// transmission-daemon with DHT, LPD, PEX, uTP and port forwarding off.
fn run_transmission(tmp: &Path, data: &Path, torrents: &[PathBuf], ticks: f64) -> Figures {
    let config = tmp.join("transmission-config");
    let logs = tmp.join("transmission-logs");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    let rpc_port = free_port();
    let settings = json!({
        "download-dir": data,
        "incomplete-dir-enabled": false,
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "blocklist-enabled": false,
        "download-queue-enabled": false,
        "seed-queue-enabled": false,
        "rpc-authentication-required": false,
        "rpc-bind-address": "127.0.0.1",
        "rpc-port": rpc_port,
        "rpc-whitelist-enabled": true,
        "rpc-whitelist": "127.0.0.1",
        "peer-port": free_port(),
        "peer-port-random-on-start": false,
        "message-level": 1,
    });
    std::fs::write(config.join("settings.json"), settings.to_string()).unwrap();
    let mut command = Command::new(TRANSMISSION_DAEMON);
    command.args(["-f", "-g"]).arg(&config);
    let mut proc = Proc::spawn("transmission", command, &logs);
    let mut rpc = Rpc::new(([127, 0, 0, 1], rpc_port).into());
    assert!(
        wait_for(Duration::from_secs(30), || std::net::TcpStream::connect(
            rpc.addr
        )
        .is_ok()),
        "transmission-daemon did not listen: {}",
        proc.report()
    );
    let figures = measure(&mut proc, &mut rpc, torrents, ticks);
    proc.terminate(Duration::from_secs(60));
    figures
}

/// Adds every torrent, waits until all seed, and takes the figures.
fn measure(proc: &mut Proc, rpc: &mut Rpc, torrents: &[PathBuf], ticks: f64) -> Figures {
    let began = Instant::now();
    for torrent in torrents {
        let bytes = std::fs::read(torrent).unwrap();
        rpc.ok("torrent-add", json!({ "metainfo": base64(&bytes) }));
    }
    let add_s = began.elapsed().as_secs_f64();
    wait_all_seeding(rpc, torrents.len(), READY_LIMIT);
    let seeding_s = began.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let mut gets: Vec<f64> = (0..5)
        .map(|_| {
            let at = Instant::now();
            let list = rpc.torrents(&[
                "id",
                "name",
                "status",
                "percentDone",
                "rateDownload",
                "rateUpload",
            ]);
            assert_eq!(list.len(), torrents.len());
            at.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    gets.sort_by(f64::total_cmp);
    proc.assert_running();
    let pid = proc.pid();
    let cpu_before = cpu_ticks(pid);
    let switches_before = status_field(pid, "voluntary_ctxt_switches:");
    std::thread::sleep(IDLE_WINDOW);
    let cpu = cpu_ticks(pid).saturating_sub(cpu_before) as f64 / ticks;
    let switches = status_field(pid, "voluntary_ctxt_switches:").saturating_sub(switches_before);
    let window = IDLE_WINDOW.as_secs_f64();
    Figures {
        add_s,
        seeding_s,
        get_ms: gets[gets.len() / 2],
        hwm_kb: status_field(pid, "VmHWM:"),
        rss_kb: status_field(pid, "VmRSS:"),
        idle_cpu_ms_per_min: cpu * 1000.0 * 60.0 / window,
        wakeups_per_s: switches as f64 / window,
        restart_s: None,
    }
}

/// Waits until `count` torrents are listed and every one seeds at 100 %.
fn wait_all_seeding(rpc: &mut Rpc, count: usize, limit: Duration) {
    let mut last = String::new();
    let done = wait_for(limit, || {
        let list = rpc.torrents(&["status", "percentDone"]);
        let seeding = list
            .iter()
            .filter(|t| t["status"] == 6 && t["percentDone"].as_f64() == Some(1.0))
            .count();
        last = format!("{seeding} of {} seeding", list.len());
        if list.len() == count && seeding == count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
        false
    });
    assert!(done, "not every torrent seeds in time: {last}");
}

fn print_table(count: usize, rows: &[(&str, Figures)]) {
    println!(
        "  {:<26} {:>7} {:>10} {:>8} {:>10} {:>10} {:>13} {:>10} {:>10}",
        "daemon",
        "add s",
        "seeding s",
        "get ms",
        "VmHWM MiB",
        "VmRSS MiB",
        "idle ms/min",
        "wakeups/s",
        "restart s"
    );
    for (name, f) in rows {
        println!(
            "  {:<26} {:>7.1} {:>10.1} {:>8.1} {:>10.1} {:>10.1} {:>13.0} {:>10.1} {:>10}",
            name,
            f.add_s,
            f.seeding_s,
            f.get_ms,
            f.hwm_kb as f64 / 1024.0,
            f.rss_kb as f64 / 1024.0,
            f.idle_cpu_ms_per_min,
            f.wakeups_per_s,
            f.restart_s.map_or("-".to_string(), |s| format!("{s:.1}")),
        );
    }
    if let [(_, p), (_, t)] = rows {
        println!(
            "  pollen / transmission: peak memory {:.2}x, idle CPU {:.2}x, torrent-get {:.2}x ({count} torrents)",
            p.hwm_kb as f64 / t.hwm_kb.max(1) as f64,
            p.idle_cpu_ms_per_min / t.idle_cpu_ms_per_min.max(0.001),
            p.get_ms / t.get_ms.max(0.001),
        );
    }
}
