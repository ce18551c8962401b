//! The mainline DHT (BEP 5) between pollen and libtorrent on loopback, with
//! bare magnet links (`magnet:?xt=urn:btih:HEX`: no tracker, no `x.pe`), so
//! peers can only come from the DHT:
//! - pollen, joined through a libtorrent node only, downloads a torrent
//!   that libtorrent seeds;
//! - libtorrent, joined through pollen's node only, downloads a torrent
//!   that only pollen seeds;
//! - and first, the harness itself: two libtorrent sessions, one joined
//!   through the other, move the same kind of magnet (so a failure of the
//!   two tests above is pollen's, not the script's), and a probe speaking
//!   pollen's KRPC codec reads the leecher's announce back from the seeder;
//! - pollen's KRPC codec against libtorrent's DHT: a scripted node
//!   (`common::krpc_node`), libtorrent's only bootstrap node, decodes every
//!   datagram libtorrent sends it, and libtorrent accepts its answers: it
//!   announces its torrent there with the token it was given.
//!
//! libtorrent runs `tests/common/lt_dht.py` (its DHT settings are the ones
//! /work/shared/INTEROP.md found to work on loopback). pollen is bound to
//! 127.0.0.2 (`--bind`; the DHT's UDP socket shares its TCP port), libtorrent
//! to 127.0.0.1.
//!
//! Run by `make interop` (`POLLEN_INTEROP=1`); plain `cargo test` reports
//! these tests as ignored, with the reason (`common::harness`). Every
//! process is killed when its test ends, and every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clients::{assert_same_files, pollen_command, Proc};
use common::harness::{self, interop, trial, Need};
use common::krpc_node::{Probe, ScriptedNode, TOKEN};
use common::{seeded_torrent, TempDir};
use pollen::metainfo::Metainfo;

fn main() {
    harness::run(vec![
        trial!(
            two_libtorrent_sessions_move_a_bare_magnet_through_the_dht,
            [interop(), Need::Libtorrent]
        ),
        trial!(
            libtorrent_looks_up_and_announces_through_a_node_speaking_pollens_krpc,
            [interop(), Need::Libtorrent]
        ),
        trial!(
            pollen_downloads_a_bare_magnet_from_a_libtorrent_seeder_through_the_dht,
            [interop(), Need::Libtorrent]
        ),
        trial!(
            libtorrent_downloads_a_bare_magnet_from_a_pollen_seeder_through_the_dht,
            [interop(), Need::Libtorrent]
        ),
    ]);
}

/// A multi-file tree whose pieces straddle the files; 6,012,346 bytes.
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 4_000_001, 501),
    ("share/docs/readme.txt", 12_345, 502),
    ("share/b.bin", 2_000_000, 503),
];
const PIECE_LEN: u32 = 64 * 1024;

/// pollen's address: libtorrent has 127.0.0.1, and a DHT routing table
/// keeps one node per IP per bucket.
const POLLEN_IP: &str = "127.0.0.2";

/// Longest a seeder may take to start and check its data.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Longest a bare-magnet download (DHT lookup, metadata, data) may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// libtorrent's own time limit: longer than any test, so it only matters
/// if the test runner itself were killed.
const STOP_AFTER: Duration = Duration::from_secs(600);

fn names() -> Vec<&'static str> {
    SHARE.iter().map(|(path, _, _)| *path).collect()
}

/// The shared torrent, made under `root`: (seed dir, torrent, metainfo).
fn share(root: &Path) -> (PathBuf, PathBuf, Metainfo) {
    let (seed, torrent) = seeded_torrent(root, SHARE, Some(PIECE_LEN));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(meta.trackers.is_empty(), "a trackerless torrent");
    (seed, torrent, meta)
}

/// `magnet:?xt=urn:btih:HEX`: no name, no tracker, no peer.
fn bare_magnet(meta: &Metainfo) -> String {
    format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex())
}

/// `lt_dht.py MODE SOURCE SAVE BOOTSTRAP LIMIT` (see the script's doc).
fn lt_dht(mode: &str, source: &str, save: &Path, bootstrap: &str) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/lt_dht.py"))
        .args([mode, source])
        .arg(save)
        .args([bootstrap, &STOP_AFTER.as_secs().to_string()]);
    command
}

/// A libtorrent seeder of `torrent` from `seed`, the first node of its DHT
/// (no bootstrap), started and checked; returns it and its port.
fn libtorrent_seeder(torrent: &Path, seed: &Path, logs: &Path) -> (Proc, u16) {
    let command = lt_dht("seed", torrent.to_str().unwrap(), seed, "-");
    let mut seeder = Proc::spawn("libtorrent-seeder", command, logs);
    let port = seeder
        .wait_for_line("listening", STARTUP_LIMIT)
        .parse()
        .unwrap();
    seeder.wait_for_line("seeding", STARTUP_LIMIT);
    (seeder, port)
}

/// A libtorrent magnet leecher joined through `bootstrap`, run until it
/// exits 0 and checked to have fetched the metadata of `meta`.
fn libtorrent_magnet_leecher(meta: &Metainfo, dest: &Path, bootstrap: &str, logs: &Path) -> Proc {
    let command = lt_dht("magnet", &bare_magnet(meta), dest, bootstrap);
    let mut leecher = Proc::spawn("libtorrent-leecher", command, logs);
    leecher.wait_success(TRANSFER_LIMIT);
    let hex = meta.info_hash.to_hex();
    assert!(
        leecher.stdout().contains(&format!("metadata {hex}")),
        "{}",
        leecher.report()
    );
    leecher
}

/// Harness check: libtorrent seeds, a second libtorrent session joined
/// through the first downloads the bare magnet.
fn two_libtorrent_sessions_move_a_bare_magnet_through_the_dht() {
    let tmp = TempDir::new("interop-dht-lt");
    let (seed, torrent, meta) = share(tmp.path());
    let (mut seeder, port) = libtorrent_seeder(&torrent, &seed, tmp.path());
    let dest = tmp.path().join("leech");
    let mut leecher =
        libtorrent_magnet_leecher(&meta, &dest, &format!("127.0.0.1:{port}"), tmp.path());
    assert_same_files(&seed, &dest, &names());
    // The leecher announced itself to the seeder's node (the only other
    // node): pollen's codec asks for it and reads it back.
    let leecher_port: u16 = leecher
        .wait_for_line("listening", STARTUP_LIMIT)
        .parse()
        .unwrap();
    Probe::new().wait_until_announced(
        &[SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)],
        meta.info_hash.0,
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, leecher_port),
        STARTUP_LIMIT,
    );
    seeder.assert_running();
}

/// libtorrent seeds with a scripted node (pollen's KRPC codec) as its only
/// bootstrap node: every datagram it sends there decodes, and it accepts
/// the answers: it looks its torrent up and announces it there, with the
/// token the node gave and its own port.
fn libtorrent_looks_up_and_announces_through_a_node_speaking_pollens_krpc() {
    let tmp = TempDir::new("interop-dht-krpc");
    let (seed, torrent, meta) = share(tmp.path());
    let mut node = ScriptedNode::bind(Ipv4Addr::new(127, 0, 0, 3), 5);
    let command = lt_dht(
        "seed",
        torrent.to_str().unwrap(),
        &seed,
        &node.addr().to_string(),
    );
    let mut seeder = Proc::spawn("libtorrent-seeder", command, tmp.path());
    let port: u16 = seeder
        .wait_for_line("listening", STARTUP_LIMIT)
        .parse()
        .unwrap();
    let hash = Some(meta.info_hash.0);
    node.expect_announce(STARTUP_LIMIT, meta.info_hash.0, || seeder.report());
    let announce = node
        .seen
        .iter()
        .find(|q| q.method == "announce_peer")
        .unwrap();
    assert_eq!(announce.token.as_deref(), Some(TOKEN));
    let (announced_port, implied) = announce.port.unwrap();
    assert!(
        announced_port == port || (implied && announce.from.port() == port),
        "{announce:?}, libtorrent listens on {port}"
    );
    assert!(
        node.seen
            .iter()
            .any(|q| q.method == "get_peers" && q.info_hash == hash),
        "{:?}",
        node.seen
    );
    seeder.assert_running();
}

/// libtorrent seeds; pollen on 127.0.0.2, joined through the libtorrent
/// node only, downloads the bare magnet.
fn pollen_downloads_a_bare_magnet_from_a_libtorrent_seeder_through_the_dht() {
    let tmp = TempDir::new("interop-dht-pollen-leech");
    let (seed, torrent, meta) = share(tmp.path());
    let (mut seeder, port) = libtorrent_seeder(&torrent, &seed, tmp.path());
    let dest = tmp.path().join("leech");
    let bootstrap = format!("127.0.0.1:{port}");
    let mut command = pollen_command([
        "-v",
        "--no-tracker",
        "--bind",
        POLLEN_IP,
        "--port",
        "0",
        "--dht-bootstrap",
        &bootstrap,
        "-d",
    ]);
    command.arg(&dest).arg(bare_magnet(&meta));
    let mut leecher = Proc::spawn("pollen-leecher", command, tmp.path());
    leecher.wait_success(TRANSFER_LIMIT);
    assert!(
        leecher.stderr().contains("info-hash verified"),
        "{}",
        leecher.report()
    );
    assert_same_files(&seed, &dest, &names());
    seeder.assert_running();
}

/// pollen on 127.0.0.2 seeds, the first node of its DHT; libtorrent,
/// joined through pollen's node only, downloads the bare magnet.
fn libtorrent_downloads_a_bare_magnet_from_a_pollen_seeder_through_the_dht() {
    let tmp = TempDir::new("interop-dht-pollen-seed");
    let (seed, torrent, meta) = share(tmp.path());
    let mut command = pollen_command([
        "-v",
        "--seed",
        "--no-tracker",
        "--bind",
        POLLEN_IP,
        "--port",
        "0",
        "-d",
    ]);
    command.arg(&seed).arg(&torrent);
    let mut seeder = Proc::spawn("pollen-seeder", command, tmp.path());
    let listening = seeder.wait_for_line("listening on", STARTUP_LIMIT);
    let port = listening.rsplit(':').next().unwrap().to_string();
    let dest = tmp.path().join("leech");
    libtorrent_magnet_leecher(&meta, &dest, &format!("{POLLEN_IP}:{port}"), tmp.path());
    assert_same_files(&seed, &dest, &names());
    seeder.assert_running();
}
