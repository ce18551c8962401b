//! Peer exchange (BEP 11) between real pollen processes on 127.0.0.1.
//!
//! Five pollens in a chain, each told only the previous one (`--peer`),
//! end up each connected to at least three others: what they learn from
//! each other's `ut_pex` messages. Their downloads are rate-limited
//! (`--max-down`) so that nobody finishes and leaves while we watch.
//! Connections are followed through the debug log (`handshake ok`, then
//! `closed`/`dropped` for the same address); PEX messages through
//! `--trace`.
//!
//! A private torrent (BEP 27) in the same shape sends no `ut_pex` message
//! and offers no `ut_pex` in its extension handshakes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{wait_for, Pollen};
use common::{seeded_torrent, TempDir};

/// How long the chain has to turn into a mesh. PEX messages go out within
/// a second of a new connection, so this is mostly slack for a busy
/// machine; the BEP's once-a-minute rule can add one period.
const MESH_LIMIT: Duration = Duration::from_secs(150);

/// Each leecher's download limit: 4 MiB at 16 KiB/s takes minutes.
const MAX_DOWN: &str = "16k";

/// A torrent of 4 MiB in 64 KiB pieces, private or not.
fn torrent(tmp: &Path, private: bool) -> (PathBuf, PathBuf) {
    let (seed, plain) = seeded_torrent(tmp, &[("px/a.bin", 4 << 20, 91)], Some(64 * 1024));
    if !private {
        return (seed, plain);
    }
    let options = pollen::create::CreateOptions {
        piece_len: Some(64 * 1024),
        private: true,
        ..Default::default()
    };
    let private_torrent = tmp.join("private.torrent");
    std::fs::write(
        &private_torrent,
        pollen::create::create_torrent(&seed.join("px"), &options).unwrap(),
    )
    .unwrap();
    (seed, private_torrent)
}

/// One pollen of the swarm, with its trace file.
struct Node {
    process: Pollen,
    port: u16,
    trace: PathBuf,
}

impl Node {
    /// Node `n`: the seeder (`n == 0`) or a rate-limited leecher told only
    /// `peer`; debug log on, traced to `tmp/trace-n`.
    fn start(n: usize, torrent: &Path, seed: &Path, tmp: &Path, peer: Option<String>) -> Node {
        let trace = tmp.join(format!("trace-{n}"));
        let dest = if n == 0 {
            seed.to_path_buf()
        } else {
            tmp.join(format!("leech-{n}"))
        };
        let mut args: Vec<std::ffi::OsString> = vec![
            torrent.into(),
            "-d".into(),
            dest.into(),
            "--no-tracker".into(),
            // Peers found through PORT messages and the DHT would hide
            // whether PEX works: these tests are about PEX alone.
            "--no-dht".into(),
            "-vv".into(),
            format!("--trace={}", trace.display()).into(),
        ];
        if n == 0 {
            args.push("--seed".into());
        } else {
            args.extend(["--max-down".into(), MAX_DOWN.into()]);
        }
        if let Some(peer) = peer {
            args.extend(["--peer".into(), peer.into()]);
        }
        let mut process = Pollen::start(args);
        let port = process.port();
        Node {
            process,
            port,
            trace,
        }
    }

    /// The addresses it is connected to now, from its debug log: each
    /// `handshake ok` adds one, a `closed` or `dropped` removes it.
    fn connected(&self) -> BTreeSet<String> {
        let mut up = BTreeSet::new();
        for line in self.process.stderr().lines() {
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

    fn trace_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Starts `count` nodes, each told only the previous one.
fn chain(count: usize, torrent: &Path, seed: &Path, tmp: &Path) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for n in 0..count {
        let peer = nodes.last_mut().map(|p| p.process.peer_arg());
        nodes.push(Node::start(n, torrent, seed, tmp, peer));
    }
    nodes
}

fn report(nodes: &[Node]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            format!(
                "node {n} (port {}) connected to {:?}\n",
                node.port,
                node.connected()
            )
        })
        .collect()
}

#[test]
fn five_pollens_told_one_peer_each_find_each_other_through_pex() {
    let tmp = TempDir::new("pex-mesh");
    let (seed, torrent) = torrent(tmp.path(), false);
    let nodes = chain(5, &torrent, &seed, tmp.path());
    let meshed = wait_for(MESH_LIMIT, || {
        nodes.iter().all(|node| node.connected().len() >= 3)
    });
    assert!(meshed, "no mesh after {MESH_LIMIT:?}:\n{}", report(&nodes));
    // The last one was told only of the one before it: the others came
    // from ut_pex messages, which the traces show.
    let pex_lines: Vec<String> = nodes
        .iter()
        .flat_map(Node::trace_lines)
        .filter(|l| l.contains(": ut_pex added "))
        .collect();
    assert!(
        pex_lines
            .iter()
            .any(|l| l.contains(" send_pex ") && l.contains(" -> ")),
        "no ut_pex sent in the send_pex phase:\n{}",
        pex_lines.join("\n")
    );
    assert!(
        pex_lines.iter().any(|l| l.contains(" <- ")),
        "no ut_pex received:\n{}",
        pex_lines.join("\n")
    );
    let offers = nodes[4]
        .trace_lines()
        .into_iter()
        .filter(|l| l.contains(" -> ") && l.contains("EXTENDED id 0"))
        .collect::<Vec<_>>();
    assert!(
        offers
            .iter()
            .all(|l| l.contains("ut_pex 2") && l.contains(" p ")),
        "{offers:?}"
    );
}

#[test]
fn a_private_torrent_sends_and_offers_no_ut_pex() {
    let tmp = TempDir::new("pex-private");
    let (seed, torrent) = torrent(tmp.path(), true);
    let nodes = chain(3, &torrent, &seed, tmp.path());
    // The middle node has the seeder (dialled) and the last node (which
    // dialled it): with PEX it would list each to the other at once.
    let middle = &nodes[1];
    let both = wait_for(MESH_LIMIT, || middle.connected().len() >= 2);
    assert!(both, "{}", report(&nodes));
    // Wait until the middle node's loop is three seconds past the last
    // extension handshake it received: several send_pex phases have run.
    let handshake_at = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains(" <- ") && l.contains("EXTENDED id 0"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .fold(None, |last: Option<f64>, t| {
                Some(last.map_or(t, |l| l.max(t)))
            })
    };
    let mut lines = Vec::new();
    let past = wait_for(MESH_LIMIT, || {
        lines = middle.trace_lines();
        let (Some(at), Some(last)) = (
            handshake_at(&lines),
            lines
                .last()
                .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok()),
        ) else {
            return false;
        };
        let greeted = lines
            .iter()
            .filter(|l| l.contains(" <- ") && l.contains("EXTENDED id 0"))
            .count();
        greeted >= 2 && last >= at + 3.0
    });
    assert!(past, "{}", lines.join("\n"));
    let offers: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" -> ") && l.contains("EXTENDED id 0"))
        .collect();
    assert!(offers.len() >= 2, "{}", lines.join("\n"));
    for node in &nodes {
        for line in node.trace_lines() {
            assert!(!line.contains("ut_pex"), "private torrent: {line}");
        }
    }
    // Without PEX the ends of the chain never meet.
    assert_eq!(nodes[2].connected().len(), 1, "{}", report(&nodes));
}
