//! `pollen daemon` driven by real Transmission front-ends, on loopback:
//! - Debian's `transmission-remote` (package transmission-cli) adds a
//!   `.torrent` and a magnet link, lists them until both are at 100 %,
//!   shows one (`-i`), stops and starts it, removes one keeping its data
//!   and the other with its data;
//! - the Python `transmission-rpc` package (installed by `make test-deps`
//!   into `target/rpc-venv`) does the same through its `Client`
//!   (`tests/common/rpc_client.py`);
//! - the daemon killed with SIGKILL during three downloads, restarted on
//!   the same state directory: all three come back (same names and
//!   hashes, not stopped), no piece verified before the kill is lost, and
//!   all three finish.
//!
//! Peers come from a `pollen tracker` (the daemon has no `--peer`): the
//! torrents name it, and one pollen seeds them. Every download is compared
//! byte for byte with what was seeded.
//!
//! A missing `transmission-remote` or `transmission-rpc` makes its test
//! ignored, with the reason; under `POLLEN_INTEROP=1` a failure
//! (`common::harness`). Every process is killed when its test ends, every
//! wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::daemon::{tracked_magnet, Daemon, Rpc};
use common::harness::{self, program, trial, Need};
use common::process::{wait_for, Pollen, Tracker};
use common::{run_with_deadline, write_tree, TempDir};
use pollen::metainfo::Metainfo;
use serde_json::{json, Value};

fn main() {
    harness::run(vec![
        trial!(
            transmission_remote_adds_lists_stops_starts_and_removes,
            [
                tracker_feature(),
                program("transmission-remote", "transmission-cli")
            ]
        ),
        trial!(
            python_transmission_rpc_drives_the_daemon,
            [tracker_feature(), python_rpc()]
        ),
        trial!(
            kill_9_during_three_downloads_then_restart_finishes_all,
            [tracker_feature()]
        ),
    ]);
}

/// Torrent A: a folder of two files whose pieces straddle them.
const ALPHA: &[(&str, usize, u64)] = &[
    ("alpha/one.bin", 2_500_001, 1601),
    ("alpha/sub/two.bin", 1_300_000, 1602),
];
/// Torrent B (added as a magnet link): one file.
const BETA: &[(&str, usize, u64)] = &[("beta.bin", 3_000_017, 1603)];
/// The three torrents of the kill -9 test: big enough, at the seeder's
/// upload limit, to be mid-way when the daemon is killed.
const TRIO: &[(&str, usize, u64)] = &[
    ("trio-1.bin", 8 * 1024 * 1024, 1611),
    ("trio-2.bin", 8 * 1024 * 1024 + 12_345, 1612),
    ("trio-3.bin", 8 * 1024 * 1024 - 777, 1613),
];
const PIECE_LEN: u32 = 32 * 1024;
/// The seeder's upload limit in the kill -9 test: the three downloads
/// (~24 MiB) take many seconds, so they are caught mid-way.
const TRIO_MAX_UP: &str = "1M";

/// Longest one `transmission-remote` run may take.
const REMOTE_LIMIT: Duration = Duration::from_secs(30);
/// Longest the downloads of one test may take (metadata included).
const TRANSFER_LIMIT: Duration = Duration::from_secs(180);
/// Longest a state change (stop, start, remove) may take to show.
const CHANGE_LIMIT: Duration = Duration::from_secs(30);
/// The Python client's own deadline (passed to the script), and the
/// test's limit on the script (a little longer).
const PYTHON_LIMIT: Duration = Duration::from_secs(240);

/// `status` of a stopped torrent in Transmission's RPC.
const STATUS_STOPPED: u64 = 0;

fn tracker_feature() -> Need {
    Need::Feature {
        name: "tracker-server",
        enabled: cfg!(feature = "tracker-server"),
    }
}

/// `target/rpc-venv/bin/python`, which `make test-deps` makes.
fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rpc-venv/bin/python")
}

/// The venv's `transmission_rpc` module: found when its python imports it.
fn python_rpc() -> Need {
    let found = Command::new(venv_python())
        .args([
            "-c",
            "import transmission_rpc, sys; sys.stdout.write(transmission_rpc.__file__)",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).into_owned()));
    Need::File {
        path: found.unwrap_or_else(|| {
            PathBuf::from(format!(
                "{} (import transmission_rpc)",
                venv_python().display()
            ))
        }),
        how: "`make test-deps` installs the Python package transmission-rpc into target/rpc-venv",
    }
}

/// Writes `files` under `seed` and a torrent of `top` (under `seed`)
/// announcing to `tracker`, as `root/NAME.torrent`; returns its path and
/// metainfo.
fn make_torrent(
    root: &Path,
    seed: &Path,
    files: &[(&str, usize, u64)],
    top: &str,
    tracker: &str,
) -> (PathBuf, Metainfo) {
    write_tree(seed, files);
    let options = pollen::create::CreateOptions {
        trackers: vec![tracker.to_string()],
        piece_len: Some(PIECE_LEN),
        ..Default::default()
    };
    let bytes = pollen::create::create_torrent(&seed.join(top), &options).unwrap();
    let path = root.join(format!("{top}.torrent"));
    std::fs::write(&path, &bytes).unwrap();
    (path, Metainfo::from_bytes(&bytes).unwrap())
}

/// Asserts every file of `files` under `dest` holds what was seeded under `seed`.
fn assert_same_files(seed: &Path, dest: &Path, files: &[(&str, usize, u64)]) {
    for (rel, len, _) in files {
        let want = std::fs::read(seed.join(rel)).unwrap();
        assert_eq!(want.len(), *len);
        let got = std::fs::read(dest.join(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", dest.join(rel).display()));
        assert!(want == got, "{rel} differs from what was seeded");
    }
}

/// Runs `transmission-remote 127.0.0.1:PORT ARGS`, asserts it succeeded,
/// returns its stdout.
fn remote(rpc: SocketAddr, args: &[&str]) -> String {
    let mut command = Command::new("transmission-remote");
    command.arg(rpc.to_string()).args(args);
    let out = run_with_deadline(command, REMOTE_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "transmission-remote {args:?}: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts `transmission-remote` said the daemon answered `success`.
fn assert_responded_success(args: &[&str], stdout: &str) {
    assert!(
        stdout.contains("responded: \"success\""),
        "transmission-remote {args:?}: {stdout}"
    );
}

/// One row of `transmission-remote -l`.
#[derive(Debug, Clone)]
struct Row {
    id: u32,
    /// The Done column (`100%`, `42%`, `n/a`).
    done: String,
    status: String,
    name: String,
}

/// Parses the table `-l` prints: a header naming the columns, one row per
/// torrent, a `Sum:` line. Status and Name are cut at the header's column
/// offsets (both may hold spaces).
fn parse_list(stdout: &str) -> Vec<Row> {
    let mut lines = stdout.lines();
    let header = lines.next().expect("a header line");
    let status_at = header.find("Status").expect("a Status column");
    let name_at = header.find("Name").expect("a Name column");
    lines
        .filter(|line| !line.trim_start().starts_with("Sum:") && !line.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next().unwrap().trim_end_matches('*').parse().unwrap();
            let done = words.next().unwrap().to_string();
            Row {
                id,
                done,
                status: line
                    .get(status_at..name_at)
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                name: line.get(name_at..).unwrap_or("").trim().to_string(),
            }
        })
        .collect()
}

/// The value after `label:` in `-i` output (`  Percent Done: 100%`).
fn info_value<'a>(stdout: &'a str, label: &str) -> Option<&'a str> {
    stdout.lines().find_map(|line| {
        line.trim_start()
            .strip_prefix(label)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Polls `-l` until `done` holds for its rows; returns them.
fn wait_list(
    rpc: SocketAddr,
    limit: Duration,
    what: &str,
    done: impl Fn(&[Row]) -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let ok = wait_for(limit, || {
        rows = parse_list(&remote(rpc, &["-l"]));
        done(&rows)
    });
    assert!(ok, "{what}: not seen within {limit:?}; last list: {rows:?}");
    rows
}

/// Polls `-t ID -i` until its `State:` satisfies `good`; returns the output.
fn wait_state(rpc: SocketAddr, id: &str, what: &str, good: impl Fn(&str) -> bool) -> String {
    let mut info = String::new();
    let ok = wait_for(CHANGE_LIMIT, || {
        info = remote(rpc, &["-t", id, "-i"]);
        info_value(&info, "State").is_some_and(&good)
    });
    assert!(
        ok,
        "{what}: not seen within {CHANGE_LIMIT:?}; last -i:\n{info}"
    );
    info
}

/// The two-torrent swarm both client trials use: a tracker, one pollen
/// seeding alpha (two files) and beta.bin, and a daemon with an empty state.
struct Swarm {
    tmp: TempDir,
    tracker: Tracker,
    _seeder: Pollen,
    seed: PathBuf,
    dest: PathBuf,
    alpha: PathBuf,
    alpha_meta: Metainfo,
    beta_meta: Metainfo,
    daemon: Daemon,
}

impl Swarm {
    fn start(tag: &str) -> Swarm {
        let tmp = TempDir::new(tag);
        let tracker = Tracker::start(&[]);
        let seed = tmp.path().join("seed");
        let (alpha, alpha_meta) = make_torrent(tmp.path(), &seed, ALPHA, "alpha", &tracker.http);
        let (beta, beta_meta) = make_torrent(tmp.path(), &seed, BETA, "beta.bin", &tracker.http);
        let seeder = Pollen::tracked_seeder(&[&alpha, &beta], &seed, &[]);
        let dest = tmp.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let daemon = Daemon::start(&tmp.path().join("state"), &dest, &[]);
        Swarm {
            tmp,
            tracker,
            _seeder: seeder,
            seed,
            dest,
            alpha,
            alpha_meta,
            beta_meta,
            daemon,
        }
    }
}

fn transmission_remote_adds_lists_stops_starts_and_removes() {
    let Swarm {
        tmp: _tmp,
        tracker,
        _seeder,
        seed,
        dest,
        alpha,
        alpha_meta,
        beta_meta,
        daemon,
    } = Swarm::start("daemon-remote");
    let rpc = daemon.rpc;

    let add_file = ["-a", alpha.to_str().unwrap()];
    assert_responded_success(&add_file, &remote(rpc, &add_file));
    let link = tracked_magnet(&beta_meta, &tracker.http);
    let add_magnet = ["-a", link.as_str()];
    assert_responded_success(&add_magnet, &remote(rpc, &add_magnet));

    // Both at 100 %, the magnet's row named once its metadata came.
    let rows = wait_list(rpc, TRANSFER_LIMIT, "both rows at 100%", |rows| {
        rows.len() == 2 && rows.iter().all(|row| row.done == "100%")
    });
    let row = |name: &str| {
        rows.iter()
            .find(|row| row.name == name)
            .unwrap_or_else(|| panic!("no row named {name}: {rows:?}"))
            .clone()
    };
    let (a, b) = (row("alpha"), row("beta.bin"));
    eprintln!("list at 100%: {rows:?}");
    assert_same_files(&seed, &dest, ALPHA);
    assert_same_files(&seed, &dest, BETA);

    let a_id = a.id.to_string();
    let info = remote(rpc, &["-t", &a_id, "-i"]);
    assert_eq!(info_value(&info, "Name"), Some("alpha"), "{info}");
    let hex = alpha_meta.info_hash.to_hex();
    assert_eq!(info_value(&info, "Hash"), Some(hex.as_str()), "{info}");
    assert_eq!(info_value(&info, "Percent Done"), Some("100%"), "{info}");

    // Stop, then start again.
    let stop = ["-t", a_id.as_str(), "-S"];
    assert_responded_success(&stop, &remote(rpc, &stop));
    wait_state(rpc, &a_id, "A stopped", |state| state == "Stopped");
    wait_list(rpc, CHANGE_LIMIT, "A's row Stopped", |rows| {
        rows.iter()
            .any(|row| row.id == a.id && row.status == "Stopped")
    });
    let start = ["-t", a_id.as_str(), "-s"];
    assert_responded_success(&start, &remote(rpc, &start));
    let info = wait_state(rpc, &a_id, "A seeding again", |state| {
        state == "Seeding" || state == "Idle"
    });
    assert_eq!(info_value(&info, "Percent Done"), Some("100%"), "{info}");

    // Remove A, keeping its data.
    let remove = ["-t", a_id.as_str(), "-r"];
    assert_responded_success(&remove, &remote(rpc, &remove));
    wait_list(rpc, CHANGE_LIMIT, "only B listed", |rows| {
        rows.len() == 1 && rows[0].id == b.id && rows[0].name == "beta.bin"
    });
    assert_same_files(&seed, &dest, ALPHA);

    // Remove B with its data.
    let b_id = b.id.to_string();
    let delete = ["-t", b_id.as_str(), "--remove-and-delete"];
    assert_responded_success(&delete, &remote(rpc, &delete));
    let gone = dest.join("beta.bin");
    assert!(
        wait_for(CHANGE_LIMIT, || !gone.exists()),
        "{} still there after --remove-and-delete",
        gone.display()
    );
    wait_list(rpc, CHANGE_LIMIT, "no torrent listed", |rows| {
        rows.is_empty()
    });
    assert_same_files(&seed, &dest, ALPHA);
}

fn python_transmission_rpc_drives_the_daemon() {
    let Swarm {
        tmp: _tmp,
        tracker,
        _seeder,
        seed,
        dest,
        alpha,
        alpha_meta,
        beta_meta,
        daemon,
    } = Swarm::start("daemon-pyrpc");

    let mut command = Command::new(venv_python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/rpc_client.py"))
        .arg(daemon.rpc.ip().to_string())
        .arg(daemon.rpc.port().to_string())
        .arg(&alpha)
        .arg(tracked_magnet(&beta_meta, &tracker.http))
        .arg(PYTHON_LIMIT.as_secs().to_string());
    let out = run_with_deadline(command, PYTHON_LIMIT + Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "rpc_client.py: {}\nstdout: {stdout}\nstderr: {stderr}\ndaemon: {}",
        out.status,
        daemon.process.stderr()
    );
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("RESULT "))
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no RESULT line: {stdout}"));
    eprintln!("rpc_client.py: {result}");

    assert_eq!(result["a"]["name"], "alpha", "{result}");
    assert_eq!(
        result["a"]["hash"],
        alpha_meta.info_hash.to_hex(),
        "{result}"
    );
    assert_eq!(result["b"]["name"], "beta.bin", "{result}");
    assert_eq!(
        result["b"]["hash"],
        beta_meta.info_hash.to_hex(),
        "{result}"
    );
    assert_eq!(result["a"]["stopped_status"], "stopped", "{result}");
    assert_ne!(result["a"]["started_status"], "stopped", "{result}");
    assert!(
        result["session"]["rpc_version"].as_u64().unwrap() >= 15,
        "{result}"
    );
    assert_eq!(
        result["session"]["download_dir"],
        dest.to_str().unwrap(),
        "{result}"
    );
    assert!(
        result["stats"]["torrent_count"].as_u64().unwrap() == 2,
        "{result}"
    );
    assert_eq!(result["remaining"], json!(["alpha"]), "{result}");

    assert_same_files(&seed, &dest, ALPHA);
    let gone = dest.join("beta.bin");
    assert!(
        wait_for(CHANGE_LIMIT, || !gone.exists()),
        "{} still there after remove_torrent(delete_data=True)",
        gone.display()
    );
}

/// `torrent-get` of the fields the kill -9 test watches, by hash.
fn trio_view(rpc: &mut Rpc) -> Vec<Value> {
    rpc.torrents(&[
        "id",
        "name",
        "hashString",
        "status",
        "haveValid",
        "leftUntilDone",
        "percentDone",
        "error",
        "errorString",
    ])
}

fn kill_9_during_three_downloads_then_restart_finishes_all() {
    let tmp = TempDir::new("daemon-kill9");
    let tracker = Tracker::start(&[]);
    let seed = tmp.path().join("seed");
    let torrents: Vec<(PathBuf, Metainfo)> = TRIO
        .iter()
        .map(|file| make_torrent(tmp.path(), &seed, &[*file], file.0, &tracker.http))
        .collect();
    let paths: Vec<&Path> = torrents.iter().map(|(path, _)| path.as_path()).collect();
    let _seeder = Pollen::tracked_seeder(&paths, &seed, &["--max-up", TRIO_MAX_UP]);
    let state = tmp.path().join("state");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let mut hashes: Vec<String> = torrents
        .iter()
        .map(|(_, meta)| meta.info_hash.to_hex())
        .collect();
    hashes.sort();

    let mut daemon = Daemon::start(&state, &dest, &[]);
    let mut rpc = daemon.client();
    for (path, _) in &torrents {
        let added = rpc.add_file(path, json!({}));
        assert!(added["torrent-added"].is_object(), "{added}");
    }
    // Mid-way: every torrent has verified pieces, none is complete.
    let mut view = Vec::new();
    let midway = wait_for(TRANSFER_LIMIT, || {
        view = trio_view(&mut rpc);
        view.len() == 3
            && view
                .iter()
                .all(|t| t["haveValid"].as_u64().unwrap_or(0) > 0)
    });
    assert!(midway, "not all three under way: {view:?}");
    // A periodic resume save after those pieces (every few seconds): the
    // restart finds a resume file written mid-download.
    let since = SystemTime::now();
    let saved = wait_for(TRANSFER_LIMIT, || {
        torrents.iter().all(|(_, meta)| {
            std::fs::metadata(pollen::resume::resume_path(&dest, meta))
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified > since)
        })
    });
    assert!(saved, "no resume save after the first pieces");
    let view = trio_view(&mut rpc);
    assert!(
        view.iter()
            .all(|t| t["leftUntilDone"].as_u64().unwrap_or(0) > 0),
        "one finished before the kill (the seeder's --max-up is too high?): {view:?}"
    );
    let before: Vec<(String, u64)> = view
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["haveValid"].as_u64().unwrap(),
            )
        })
        .collect();
    eprintln!("verified bytes at the kill: {before:?}");
    daemon.process.kill();
    drop(daemon);

    // Same state and destination, new ports; -v logs what resume trusted.
    let daemon = Daemon::start(&state, &dest, &["-v"]);
    let mut rpc = daemon.client();
    let view = trio_view(&mut rpc);
    let mut back: Vec<String> = view
        .iter()
        .map(|t| t["hashString"].as_str().unwrap().to_string())
        .collect();
    back.sort();
    assert_eq!(back, hashes, "{view:?}");
    for t in &view {
        let (name, hash) = (
            t["name"].as_str().unwrap(),
            t["hashString"].as_str().unwrap(),
        );
        let meta = &torrents
            .iter()
            .find(|(_, meta)| meta.info_hash.to_hex() == hash)
            .unwrap()
            .1;
        assert_eq!(name, meta.name, "{t}");
        assert_ne!(t["status"].as_u64(), Some(STATUS_STOPPED), "{t}");
    }
    eprintln!("verified bytes right after the restart: {view:?}");

    let mut view = Vec::new();
    let finished = wait_for(TRANSFER_LIMIT, || {
        view = trio_view(&mut rpc);
        view.len() == 3
            && view
                .iter()
                .all(|t| t["leftUntilDone"].as_u64() == Some(0) && t["percentDone"] == 1.0)
    });
    assert!(
        finished,
        "not all finished after the restart: {view:?}\ndaemon: {}",
        daemon.process.stderr()
    );
    assert_same_files(&seed, &dest, TRIO);
    // Nothing verified before the kill was lost. The files were written
    // after the last resume save, so their stamps changed and pollen
    // hashes them again rather than trust the save (src/resume/mod.rs):
    // `NAME: checked existing data: N of M pieces verified`.
    let log = daemon.process.stderr();
    let resumed: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("trusted"))
        .collect();
    eprintln!("after the restart, the daemon logged: {resumed:#?}");
    for (name, have_valid) in &before {
        let verified = log.lines().find_map(|line| {
            line.split_once(&format!("{name}: checked existing data: "))
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
        });
        let at_kill = have_valid / u64::from(PIECE_LEN);
        assert!(
            verified.is_some_and(|n| n >= at_kill),
            "{name}: {at_kill} pieces verified before the kill, {verified:?} after: {resumed:#?}"
        );
    }
}
