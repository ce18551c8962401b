//! A pollen seeder answers a deep pipeline of requests, promptly and completely.
//!
//! Real leechers send many REQUESTs at once and wait for the blocks:
//! Transmission keeps max(32, 10 s x rate / 16 KiB) in flight, libtorrent
//! and aria2 grow to hundreds. A probe (which, like many peers, speaks no
//! extension) sends a batch of requests in one write and reads the blocks.
//!
//! Both tests pin bugs found by the transmission-cli interop test
//! (`interop.rs`), now fixed: the loop serves and flushes in rounds until
//! the queue is empty or the socket is full (src/session/mod.rs,
//! `before_sleep`), and the request queue (2000) is advertised as `reqq`
//! in a BEP 10 handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::clients::{pollen_command, Proc};
use common::scripted_peer::{PeerError, ProbeLeecher};
use common::{write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};
use pollen::metainfo::Metainfo;
use pollen::wire::{BlockRequest, Message};

const PIECE: u32 = 256 * 1024;
const BLOCK: u32 = 16 * 1024;
const BLOCKS_PER_PIECE: u32 = PIECE / BLOCK;

/// A pollen seeder of a 16 MiB file and a probe connected to it, unchoked,
/// that has seen the seeder announce every piece.
struct Seeded {
    probe: ProbeLeecher,
    _seeder: Proc,
    _tmp: TempDir,
}

fn seeded(tag: &str) -> Seeded {
    let tmp = TempDir::new(tag);
    write_tree(tmp.path(), &[("share/data.bin", 16 << 20, 7)]);
    let options = CreateOptions {
        piece_len: Some(PIECE),
        ..CreateOptions::default()
    };
    let torrent = create_torrent(&tmp.path().join("share"), &options).unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let torrent_path = tmp.path().join("share.torrent");
    std::fs::write(&torrent_path, &torrent).unwrap();

    let mut command = pollen_command(["--seed", "--no-tracker", "-v", "-p", "0", "-d"]);
    command.arg(tmp.path()).arg(&torrent_path);
    let mut seeder = Proc::spawn("pollen-seeder", command, tmp.path());
    let listening = seeder.wait_for_line("listening on", Duration::from_secs(10));
    let port: u16 = listening.rsplit(':').next().unwrap().parse().unwrap();
    // Connect once the start-up check is done, so the seeder opens with a full BITFIELD.
    seeder.wait_for_stderr("checked existing data", Duration::from_secs(30));

    let probe = ProbeLeecher::open(port, &meta).unwrap();
    assert!(probe.bitfield().is_complete());
    Seeded {
        probe,
        _seeder: seeder,
        _tmp: tmp,
    }
}

/// Sends `count` block requests (from the torrent's start) in one write and
/// returns how many blocks arrive within `limit`, and how long that took.
fn request_burst(probe: &mut ProbeLeecher, count: u32, limit: Duration) -> (u32, Duration) {
    let mut requests = Vec::new();
    for i in 0..count {
        let (piece, begin) = (i / BLOCKS_PER_PIECE, (i % BLOCKS_PER_PIECE) * BLOCK);
        Message::Request(BlockRequest {
            piece,
            begin,
            len: BLOCK,
        })
        .encode(&mut requests);
    }
    let start = Instant::now();
    let deadline = start + limit;
    probe.send_raw(&requests).unwrap();
    let mut received = 0;
    while received < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        probe.set_timeout(left);
        match probe.read_piece() {
            Ok(_) => received += 1,
            Err(PeerError::Timeout) => break,
            Err(e) => panic!("after {received} blocks: {e:?}"),
        }
    }
    (received, start.elapsed())
}

#[test]
fn seeder_serves_64_pipelined_requests_without_waiting_for_a_timer() {
    let mut s = seeded("upload-pipelining-64");
    // 1 MiB on loopback takes milliseconds; the bug makes it about 3 s.
    let limit = Duration::from_secs(1);
    let (received, took) = request_burst(&mut s.probe, 64, limit);
    assert_eq!(
        received, 64,
        "only {received} of 64 blocks within {limit:?}"
    );
    assert!(took < limit, "64 pipelined blocks took {took:?}");
}

#[test]
fn seeder_answers_600_pipelined_requests() {
    let mut s = seeded("upload-pipelining-600");
    // 9.4 MiB on loopback: well under a second once bug 1 is fixed.
    let limit = Duration::from_secs(10);
    let (received, took) = request_burst(&mut s.probe, 600, limit);
    assert_eq!(
        received, 600,
        "only {received} of 600 blocks within {limit:?} ({took:?})"
    );
}
