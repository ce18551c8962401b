//! The mainline DHT (BEP 5), pollen to pollen on loopback: a network of
//! pollen nodes, each on its own address in 127.0.0.0/8 (`--bind`; the
//! routing table keeps one node per IP per bucket), joined through a first
//! node (`--dht-bootstrap`); a seeder announces its torrent, and a leecher
//! that knows only `magnet:?xt=urn:btih:HEX` (no `tr=`, no `x.pe`, no
//! tracker) finds it through the DHT and downloads it byte for byte. A
//! stopped node leaves `DEST/.pollen/dht.state`, and a restart with no
//! bootstrap node rejoins from it and finds the seeder again. `--no-dht`
//! with a trackerless magnet is refused; a private torrent (BEP 27) is
//! never looked up or announced.
//!
//! The test itself speaks KRPC through pollen's own codec
//! (`common::krpc_node`): a probe asks every node `get_peers` to wait,
//! with a deadline, until the seeder's announce is stored before a
//! leecher starts, and a scripted node stands in for the whole DHT when a
//! test must see every query a pollen sends.
//!
//! Every process is killed when its test ends and every wait has a
//! deadline (`common::process`). A node's DHT UDP port is its TCP port
//! (`--port 0`, read back from its `listening on` line).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::krpc_node::{Probe, ScriptedNode};
use common::process::{assert_same_tree, Pollen};
use common::{pollen, seeded_torrent, TempDir};
use pollen::dht::state_file;
use pollen::metainfo::Metainfo;
use pollen::rng::Rng;

/// The shared torrent: two files whose pieces straddle them; 1,500,007 bytes.
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 1_000_003, 1501),
    ("share/docs/b.txt", 500_004, 1502),
];
/// 32 KiB pieces: 46 pieces, a one-piece info dictionary.
const PIECE_LEN: u32 = 32 * 1024;

/// Nodes of the network in `a_trackerless_magnet_is_found_through_a_dht_of_twenty_pollens`.
const NETWORK_SIZE: u8 = 20;
/// Longest the seeder's announce may take to be stored in the DHT (the
/// network forms, the seeder looks up and announces).
const ANNOUNCE_LIMIT: Duration = Duration::from_secs(90);
/// Longest a magnet download (DHT lookup, metadata, data) may take.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(120);
/// Longest pollen may take to leave after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// `127.0.X.N`.
fn ip(x: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, x, n)
}

/// A running pollen DHT node and where it is.
struct Node {
    process: Pollen,
    /// Its TCP listener, and its DHT UDP socket (same port).
    addr: SocketAddrV4,
    /// Its `--dest`.
    dest: PathBuf,
}

impl Node {
    /// `HOST:PORT` for `--dht-bootstrap`.
    fn bootstrap_arg(&self) -> String {
        self.addr.to_string()
    }
}

/// Starts pollen on `ip` (`--bind IP --port 0 --no-tracker`) with `args`
/// (torrents and other options) and reads its port.
fn start_node(ip: Ipv4Addr, dest: &Path, args: &[&str]) -> Node {
    let ip_text = ip.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "-d",
        dest.to_str().unwrap(),
        "--no-tracker",
        "--bind",
        &ip_text,
        "--port",
        "0",
    ]);
    let mut process = Pollen::start(all);
    let port = process.port();
    Node {
        process,
        addr: SocketAddrV4::new(ip, port),
        dest: dest.to_path_buf(),
    }
}

/// A node seeding a small torrent of its own (pollen needs a torrent to
/// run), joined through `bootstrap`. Node `n`'s files live in `root/nodeN`.
fn filler_node(root: &Path, ip: Ipv4Addr, n: u8, bootstrap: &[String]) -> Node {
    let dir = root.join(format!("node{n}"));
    let name = format!("filler{n}/data.bin");
    let files = [(name.as_str(), 20_000 + usize::from(n), 2000 + u64::from(n))];
    let (seed, torrent) = seeded_torrent(&dir, &files, None);
    let mut args = vec![torrent.to_str().unwrap(), "--seed", "-q"];
    for b in bootstrap {
        args.extend(["--dht-bootstrap", b.as_str()]);
    }
    start_node(ip, &seed, &args)
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

/// Waits for `leecher` to exit 0 within [`DOWNLOAD_LIMIT`]; panics with its log otherwise.
fn wait_success(leecher: &mut Pollen) {
    let status = leecher.wait(DOWNLOAD_LIMIT);
    assert!(
        status.success(),
        "leecher exited {status}; stderr:\n{}",
        leecher.stderr()
    );
}

/// Twenty pollens on 127.0.0.2 to 127.0.0.21, each joined through the
/// first (and one random earlier node); the one on 127.0.0.11 seeds; once
/// the DHT lists it, the one on 127.0.0.21 downloads the torrent from a
/// bare magnet link, byte for byte.
#[test]
fn a_trackerless_magnet_is_found_through_a_dht_of_twenty_pollens() {
    let tmp = TempDir::new("dht-net");
    let (seed, torrent, meta) = share(tmp.path());
    let mut rng = Rng::new(15);
    let seeder_index = NETWORK_SIZE / 2 - 1;
    let mut nodes: Vec<Node> = Vec::new();
    for n in 0..NETWORK_SIZE - 1 {
        let mut bootstrap: Vec<String> =
            nodes.first().map(Node::bootstrap_arg).into_iter().collect();
        if nodes.len() > 1 {
            bootstrap.push(nodes[1 + rng.below(nodes.len() - 1)].bootstrap_arg());
        }
        let node = if n == seeder_index {
            let mut args = vec![torrent.to_str().unwrap(), "--seed", "-v"];
            for b in &bootstrap {
                args.extend(["--dht-bootstrap", b.as_str()]);
            }
            start_node(ip(0, n + 2), &seed, &args)
        } else {
            filler_node(tmp.path(), ip(0, n + 2), n, &bootstrap)
        };
        nodes.push(node);
    }
    let addrs: Vec<SocketAddrV4> = nodes.iter().map(|n| n.addr).collect();
    let seeder_addr = nodes[usize::from(seeder_index)].addr;
    Probe::new().wait_until_announced(&addrs, meta.info_hash.0, seeder_addr, ANNOUNCE_LIMIT);

    let dest = tmp.path().join("leech");
    let first = nodes[0].bootstrap_arg();
    let other = nodes[1 + rng.below(nodes.len() - 1)].bootstrap_arg();
    let mut leecher = start_node(
        ip(0, NETWORK_SIZE + 1),
        &dest,
        &[
            &bare_magnet(&meta),
            "--dht-bootstrap",
            &first,
            "--dht-bootstrap",
            &other,
            "-v",
        ],
    );
    wait_success(&mut leecher.process);
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    let seeder = &mut nodes[usize::from(seeder_index)].process;
    assert!(
        !seeder.has_exited(),
        "the seeder died:\n{}",
        seeder.stderr()
    );
}

/// The saved DHT state: a node stopped by SIGTERM and a leecher that
/// finished each leave `DEST/.pollen/dht.state` (our id and known nodes);
/// the leecher, restarted on its address (a new port) with that file and
/// no `--dht-bootstrap`, finds the seeder again through the saved nodes.
#[test]
fn a_restart_without_bootstrap_rejoins_from_the_saved_state() {
    let tmp = TempDir::new("dht-state");
    let (seed, torrent, meta) = share(tmp.path());
    let mut first = filler_node(tmp.path(), ip(1, 2), 0, &[]);
    let bootstrap = vec![first.bootstrap_arg()];
    let mut args = vec![torrent.to_str().unwrap(), "--seed", "-v"];
    args.extend(["--dht-bootstrap", bootstrap[0].as_str()]);
    let seeder = start_node(ip(1, 3), &seed, &args);
    let mut nodes: Vec<Node> = (1..5)
        .map(|n| filler_node(tmp.path(), ip(1, n + 3), n, &bootstrap))
        .collect();
    let mut addrs: Vec<SocketAddrV4> = nodes.iter().map(|n| n.addr).collect();
    addrs.extend([first.addr, seeder.addr]);
    Probe::new().wait_until_announced(&addrs, meta.info_hash.0, seeder.addr, ANNOUNCE_LIMIT);

    // A node stopped by SIGTERM saves its state.
    let stopped = nodes.pop().unwrap();
    let mut process = stopped.process;
    process.terminate();
    process.wait(STOP_LIMIT);
    let saved = read_state(&stopped.dest);
    assert!(!saved.nodes.is_empty(), "a stopped node saved no nodes");

    // A leecher that finishes saves its state too.
    let dest = tmp.path().join("leech");
    let mut leecher = start_node(
        ip(1, 9),
        &dest,
        &[&bare_magnet(&meta), "--dht-bootstrap", &bootstrap[0], "-v"],
    );
    wait_success(&mut leecher.process);
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    let saved = read_state(&dest);
    assert!(
        saved
            .nodes
            .iter()
            .any(|n| n.addr.ip().octets()[..3] == [127, 0, 1]),
        "the leecher saved no node of this network: {:?}",
        saved.nodes
    );

    // Restarted into a fresh folder that holds only the DHT state (and the
    // torrent file the magnet fetched, so the link is not refused for want
    // of a tracker), on the same address but a new port (--port 0), with
    // no bootstrap node: the saved nodes are its only way into the DHT.
    // (On its old port, the others, which still list it, would query it
    // within a minute or so and a restart with no state at all would
    // rejoin too; its first run's announce names the old port as well.)
    let again = tmp.path().join("again");
    let hex = meta.info_hash.to_hex();
    std::fs::create_dir_all(again.join(".pollen")).unwrap();
    for name in ["dht.state".to_string(), format!("{hex}.torrent")] {
        std::fs::copy(
            dest.join(".pollen").join(&name),
            again.join(".pollen").join(&name),
        )
        .unwrap();
    }
    let mut restarted = start_node(ip(1, 9), &again, &[&bare_magnet(&meta), "-v"]).process;
    wait_success(&mut restarted);
    assert_same_tree(&seed.join("share"), &again.join("share"));
    assert!(!first.process.has_exited(), "{}", first.process.stderr());
}

/// Reads and decodes `dest/.pollen/dht.state`.
fn read_state(dest: &Path) -> state_file::SavedState {
    let path = dest.join(".pollen").join("dht.state");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    state_file::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// With `--no-dht`, a magnet link with no tracker and no peer has no way
/// to its metadata: refused up front, one line, exit 2, nothing created.
#[test]
fn no_dht_refuses_a_trackerless_magnet() {
    let tmp = TempDir::new("dht-off");
    let dest = tmp.path().join("dest");
    let hex = "c9e15763f722f23e98a29decdfae341b98d53056";
    let link = format!("magnet:?xt=urn:btih:{hex}");
    let d = dest.to_str().unwrap();
    for args in [
        vec![link.as_str(), "-d", d, "--no-dht"],
        vec![link.as_str(), "-d", d, "--no-dht", "--no-tracker"],
    ] {
        let out = pollen(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(hex), "{args:?}: {stderr}");
        assert!(!dest.exists(), "nothing is created for a refused magnet");
    }
    // A bootstrap node is no use with the DHT off: still refused.
    let out = pollen([
        link.as_str(),
        "-d",
        d,
        "--no-dht",
        "--dht-bootstrap",
        "127.0.0.1:9",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// BEP 27: a private torrent's peers come from its trackers only. One
/// pollen seeds a public and a private torrent, joined to a DHT that is a
/// single scripted node, which sees every query pollen sends: by the time
/// the public torrent (added at the same start) has been looked up and
/// announced, no query has named the private one.
#[test]
fn a_private_torrent_is_never_looked_up_or_announced() {
    let tmp = TempDir::new("dht-private");
    let public_root = tmp.path().join("public");
    let (seed, public, public_meta) = share(&public_root);
    let private_dir = tmp.path().join("private");
    let (private_seed, _) = seeded_torrent(&private_dir, &[("secret/s.bin", 300_000, 1503)], None);
    let private = private_dir.join("p.torrent");
    let options = pollen::create::CreateOptions {
        private: true,
        ..Default::default()
    };
    std::fs::write(
        &private,
        pollen::create::create_torrent(&private_seed.join("secret"), &options).unwrap(),
    )
    .unwrap();
    let private_meta = Metainfo::from_bytes(&std::fs::read(&private).unwrap()).unwrap();
    assert!(private_meta.private);
    // Both torrents' data under one folder, for one process.
    std::fs::rename(private_seed.join("secret"), seed.join("secret")).unwrap();

    let mut fake = ScriptedNode::bind(ip(2, 1), 27);
    let fake_addr = fake.addr().to_string();
    let node = start_node(
        ip(2, 2),
        &seed,
        &[
            public.to_str().unwrap(),
            private.to_str().unwrap(),
            "--seed",
            "--dht-bootstrap",
            &fake_addr,
            "-v",
        ],
    );
    let mut seeder = node.process;
    fake.expect_announce(ANNOUNCE_LIMIT, public_meta.info_hash.0, || seeder.stderr());
    let private_hash = Some(private_meta.info_hash.0);
    let leaked: Vec<_> = fake
        .seen
        .iter()
        .filter(|q| q.info_hash == private_hash)
        .collect();
    assert!(
        leaked.is_empty(),
        "the private torrent went to the DHT: {leaked:?}"
    );
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
    seeder.kill();
}
