//! IPv6 between real pollen processes on `::1` (and 127.0.0.1 where the
//! two families meet).
//!
//! - a seeder listening only on `::1` (`--bind ::1`) serves a leecher told
//!   `--peer [::1]:PORT`, byte for byte;
//! - the same from a magnet link whose `x.pe` is `[::1]:PORT` (metadata
//!   and pieces over IPv6);
//! - the same through `pollen tracker --bind ::1`: over HTTP (the seeder
//!   comes back in `peers6`, BEP 7) and over UDP (18-byte peers, BEP 15);
//! - a seeder on the default dual-stack socket (`[::]`) serves one
//!   leecher at 127.0.0.1 and one at `[::1]`, and its log and trace name
//!   the IPv4 one as `127.0.0.1`, never `::ffff:127.0.0.1`;
//! - three pollens on `::1`, each told only the previous one, end up
//!   connected through PEX `added6` (BEP 11 with BEP 7 addresses).
//!
//! Each test prints `skipped: no IPv6 loopback` and returns when `::1`
//! cannot be bound (a box or container without IPv6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{assert_same_tree, wait_for, Pollen};
use common::{seeded_torrent, TempDir};

/// Longest a small loopback download may take (a loaded 2-core box).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(60);

/// How long the PEX chain has to turn into a triangle: PEX messages go out
/// within a second of a new connection; the rest is slack for a busy box.
const MESH_LIMIT: Duration = Duration::from_secs(120);

/// Whether this host has an IPv6 loopback to test on; says so when not.
fn have_ipv6_loopback() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback ({e})");
            false
        }
    }
}

/// A 2.5 MB torrent in 64 KiB pieces, with no tracker in it; its seed
/// directory and path.
fn torrent(tmp: &TempDir) -> (PathBuf, PathBuf) {
    seeded_torrent(
        tmp.path(),
        &[("six/a.bin", 2_000_000, 61), ("six/b.bin", 500_001, 62)],
        Some(64 * 1024),
    )
}

/// `pollen` with `torrent` and `args`.
fn start(torrent: &Path, args: &[&str]) -> Pollen {
    let mut all: Vec<OsString> = vec![torrent.into()];
    all.extend(args.iter().map(OsString::from));
    Pollen::start(all)
}

/// A seeder of `torrent` (its data in `seed`) listening on `::1` only,
/// with `extra` options.
fn ipv6_seeder(torrent: &Path, seed: &Path, extra: &[&str]) -> Pollen {
    let mut args = vec!["-d", seed.to_str().unwrap(), "--seed", "--bind", "::1"];
    args.extend_from_slice(extra);
    start(torrent, &args)
}

/// Waits for `leecher` to exit 0 and compares its download with `seed`.
fn assert_downloaded(leecher: &mut Pollen, seed: &Path, dest: &Path) {
    let status = leecher.wait(DOWNLOAD_LIMIT);
    assert!(status.success(), "{status}: {}", leecher.stderr());
    assert_same_tree(seed, dest);
}

#[test]
fn a_seeder_only_on_ipv6_loopback_serves_a_leecher_told_its_address() {
    if !have_ipv6_loopback() {
        return;
    }
    let tmp = TempDir::new("v6-peer");
    let (seed, torrent) = torrent(&tmp);
    let mut seeder = ipv6_seeder(&torrent, &seed, &["--no-tracker", "-q"]);
    // It listens on ::1 alone: the leecher can only use IPv6.
    let first = seeder.next_line();
    let port: u16 = first
        .strip_prefix("listening on [::1]:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not listening on ::1: {first:?}"));
    let dest = tmp.path().join("leech");
    let peer = format!("[::1]:{port}");
    let mut leecher = start(
        &torrent,
        &[
            "-d",
            dest.to_str().unwrap(),
            "--no-tracker",
            "--peer",
            &peer,
            "-vv",
        ],
    );
    assert_downloaded(&mut leecher, &seed, &dest);
    assert!(
        leecher.stderr().contains(&format!("{peer}: handshake ok")),
        "{}",
        leecher.stderr()
    );
}

#[test]
fn a_magnet_link_with_an_ipv6_x_pe_fetches_metadata_and_data_over_ipv6() {
    if !have_ipv6_loopback() {
        return;
    }
    let tmp = TempDir::new("v6-magnet");
    let (seed, torrent) = torrent(&tmp);
    let mut seeder = ipv6_seeder(&torrent, &seed, &["--no-tracker", "-q"]);
    let port = seeder.port();
    let hex = pollen::load_torrent(&torrent).unwrap().info_hash.to_hex();
    let magnet = format!("magnet:?xt=urn:btih:{hex}&x.pe=[::1]:{port}");
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start([
        magnet.as_str(),
        "-d",
        dest.to_str().unwrap(),
        "--no-tracker",
        "-q",
    ]);
    assert_downloaded(&mut leecher, &seed, &dest);
}

/// `pollen tracker --bind ::1` with HTTP and UDP on free ports, and its
/// two announce URLs.
fn ipv6_tracker() -> (Pollen, String, String) {
    let mut process = Pollen::start(["tracker", "--bind", "::1", "-p", "0", "-u", "0"]);
    let http = process.next_line().rsplit(' ').next().unwrap().to_string();
    let udp = process.next_line().rsplit(' ').next().unwrap().to_string();
    assert!(
        http.starts_with("http://[::1]:") && udp.starts_with("udp://[::1]:"),
        "{http} {udp}"
    );
    (process, http, udp)
}

/// A seeder on `::1` and a dual-stack leecher that knows only `url`, an
/// announce URL of a tracker on `[::1]`: the leecher must be told of the
/// seeder at `[::1]:PORT` by the tracker, then download from it.
fn swarm_through_ipv6_tracker(pick: fn(&(Pollen, String, String)) -> String) {
    if !have_ipv6_loopback() {
        return;
    }
    let tracker = ipv6_tracker();
    let url = pick(&tracker);
    let tmp = TempDir::new("v6-tracker");
    let (seed, torrent) = torrent(&tmp);
    let mut seeder = ipv6_seeder(&torrent, &seed, &["--tracker", &url, "-v"]);
    let port = seeder.port();
    // The leecher asks once the tracker knows the seeder (else it would
    // hear of no peer and ask again later: slower, not wrong).
    let announced = format!("tracker {url}: Started: ");
    assert!(
        wait_for(DOWNLOAD_LIMIT, || seeder.stderr().contains(&announced)),
        "the seeder never announced: {}",
        seeder.stderr()
    );
    let dest = tmp.path().join("leech");
    let mut leecher = start(
        &torrent,
        &["-d", dest.to_str().unwrap(), "--tracker", &url, "-vv"],
    );
    assert_downloaded(&mut leecher, &seed, &dest);
    let log = leecher.stderr();
    assert!(
        log.contains(&format!("[::1]:{port}: handshake ok")),
        "the leecher did not reach the seeder at [::1]:{port}:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn an_http_tracker_on_ipv6_hands_out_the_ipv6_seeder_in_peers6() {
    swarm_through_ipv6_tracker(|(_, http, _)| http.clone());
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn a_udp_tracker_on_ipv6_hands_out_the_ipv6_seeder_in_18_byte_entries() {
    swarm_through_ipv6_tracker(|(_, _, udp)| udp.clone());
}

#[test]
fn a_default_seeder_takes_ipv4_and_ipv6_peers_and_names_ipv4_ones_plainly() {
    if !have_ipv6_loopback() {
        return;
    }
    let tmp = TempDir::new("v6-dual");
    let (seed, torrent) = torrent(&tmp);
    let trace = tmp.path().join("seeder.trace");
    let trace_arg = format!("--trace={}", trace.display());
    let mut seeder = start(
        &torrent,
        &[
            "-d",
            seed.to_str().unwrap(),
            "--seed",
            "--no-tracker",
            "-vv",
            &trace_arg,
        ],
    );
    let first = seeder.next_line();
    let port: u16 = first
        .strip_prefix("listening on [::]:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not the dual-stack socket: {first:?}"));
    let dest4 = tmp.path().join("over-ipv4");
    let dest6 = tmp.path().join("over-ipv6");
    let (peer4, peer6) = (format!("127.0.0.1:{port}"), format!("[::1]:{port}"));
    let mut over4 = start(
        &torrent,
        &[
            "-d",
            dest4.to_str().unwrap(),
            "--no-tracker",
            "--peer",
            &peer4,
            "-q",
        ],
    );
    let mut over6 = start(
        &torrent,
        &[
            "-d",
            dest6.to_str().unwrap(),
            "--no-tracker",
            "--peer",
            &peer6,
            "-q",
        ],
    );
    assert_downloaded(&mut over4, &seed, &dest4);
    assert_downloaded(&mut over6, &seed, &dest6);
    // The trace is written a batch at a time: wait for both peers in it.
    let traced = || std::fs::read_to_string(&trace).unwrap_or_default();
    let both = wait_for(DOWNLOAD_LIMIT, || {
        let text = traced();
        text.contains(" 127.0.0.1:") && text.contains(" [::1]:")
    });
    let log = seeder.stderr();
    assert!(both, "trace:\n{}\nlog:\n{log}", traced());
    assert!(!traced().contains("::ffff:"), "{}", traced());
    assert!(!log.contains("::ffff:"), "{log}");
    for family in ["127.0.0.1:", "[::1]:"] {
        assert!(
            log.lines()
                .any(|l| l.contains(family) && l.contains(": incoming connection")),
            "no incoming connection from {family} in:\n{log}"
        );
    }
}

/// The addresses `node` is connected to now, from its debug log: each
/// `handshake ok` adds one, a `closed` or `dropped` removes it.
fn connected(node: &Pollen) -> BTreeSet<String> {
    let mut up = BTreeSet::new();
    for line in node.stderr().lines() {
        let Some((_, text)) = line.split_once("] ") else {
            continue;
        };
        if let Some((addr, _)) = text.split_once(": handshake ok") {
            up.insert(addr.to_string());
            continue;
        }
        for direction in [" (incoming): ", " (outgoing): "] {
            if let Some((addr, rest)) = text.split_once(direction) {
                if rest.starts_with("closed: ") || rest.starts_with("dropped: ") {
                    up.remove(addr);
                }
            }
        }
    }
    up
}

#[test]
fn three_pollens_on_ipv6_loopback_find_each_other_through_pex_added6() {
    if !have_ipv6_loopback() {
        return;
    }
    let tmp = TempDir::new("v6-pex");
    let (seed, torrent) = torrent(&tmp);
    let mut nodes: Vec<(Pollen, PathBuf)> = Vec::new();
    for n in 0..3 {
        let trace = tmp.path().join(format!("trace-{n}"));
        let dest = if n == 0 {
            seed.clone()
        } else {
            tmp.path().join(format!("leech-{n}"))
        };
        let mut args: Vec<String> = vec![
            "-d".into(),
            dest.to_str().unwrap().into(),
            "--no-tracker".into(),
            "--bind".into(),
            "::1".into(),
            "-vv".into(),
            format!("--trace={}", trace.display()),
        ];
        if n == 0 {
            args.push("--seed".into());
        } else {
            // Slow downloads: nobody finishes and leaves while we watch.
            args.extend(["--max-down".into(), "16k".into()]);
        }
        if let Some((previous, _)) = nodes.last_mut() {
            args.extend(["--peer".into(), format!("[::1]:{}", previous.port())]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut node = start(&torrent, &args);
        node.port();
        nodes.push((node, trace));
    }
    let report = |nodes: &[(Pollen, PathBuf)]| -> String {
        nodes
            .iter()
            .enumerate()
            .map(|(n, (node, _))| format!("node {n}: {:?}\n", connected(node)))
            .collect()
    };
    // Node 2 was told only of node 1, and node 0 only of nobody: the
    // third edge comes from a ut_pex message.
    let meshed = wait_for(MESH_LIMIT, || {
        nodes.iter().all(|(node, _)| connected(node).len() >= 2)
    });
    assert!(
        meshed,
        "no triangle after {MESH_LIMIT:?}:\n{}",
        report(&nodes)
    );
    let pex_lines: Vec<String> = nodes
        .iter()
        .flat_map(|(_, trace)| {
            std::fs::read_to_string(trace)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(": ut_pex added ") && l.contains(" <- "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        pex_lines.iter().any(|l| l.contains(" IPv6) ")),
        "no ut_pex with added6 entries received:\n{}",
        pex_lines.join("\n")
    );
    for (node, _) in &nodes {
        assert!(
            connected(node).iter().all(|a| a.starts_with("[::1]:")),
            "{}",
            report(&nodes)
        );
    }
}
