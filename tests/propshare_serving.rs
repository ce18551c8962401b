//! A leeching pollen under `--choker propshare` keeps its loop turning once
//! a peer's share of the upload is spent.
//!
//! Proportional share is a leeching policy: from the first rechoke (ten
//! seconds in), each unchoked peer gets its own token bucket. When a peer
//! that asks for a lot spent its bucket, the serve phase used to keep that
//! peer in its round and ask it again and again: the loop spun at 100 %
//! CPU, served nobody, downloaded nothing more and ignored SIGTERM.
//!
//! Here pollen downloads from a scripted seeder at a capped rate (so it is
//! still leeching well past the first rechoke) while a probe keeps asking
//! it for deep batches of the pieces it already has. pollen must finish
//! the download and exit 0.

mod common;

use std::time::{Duration, Instant};

use common::process::Pollen;
use common::scripted_peer::{PeerError, ProbeLeecher, ScriptedSeeder, SeederBehavior};
use common::{seeded_torrent, TempDir};
use pollen::metainfo::Metainfo;
use pollen::wire::Message;

/// 4 MiB at the 256 KiB/s `--max-down` below: about 16 s, so the first
/// rechoke (10 s) hands out buckets while pollen still downloads.
const FILES: &[(&str, usize, u64)] = &[("share/data.bin", 4 << 20, 5)];

/// Requests the probe sends per batch: 512 KiB, more than a 256 KiB/s
/// share holds (half a second of it).
const BATCH: usize = 32;

/// The whole scenario; a spinning pollen never finishes.
const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn propshare_leecher_keeps_downloading_while_a_peer_outruns_its_share() {
    let tmp = TempDir::new("propshare-serving");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(64 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let source = ScriptedSeeder::start(&meta, &seed, SeederBehavior::Honest);
    let dest = tmp.path().join("dest");
    let mut pollen = Pollen::start([
        torrent.as_os_str(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--choker".as_ref(),
        "propshare".as_ref(),
        "--max-down".as_ref(),
        "256K".as_ref(),
        "--peer".as_ref(),
        source.addr().to_string().as_ref(),
        "-p".as_ref(),
        "0".as_ref(),
        "-vv".as_ref(),
    ]);
    let port = pollen.port();
    let deadline = Instant::now() + LIMIT;
    // A BITFIELD is sent only once pollen has a piece.
    assert!(common::process::wait_for(LIMIT, || pollen
        .stderr()
        .lines()
        .any(|l| l.contains("] piece ") && l.ends_with(" verified"))));
    let mut probe = ProbeLeecher::open(port, &meta).unwrap();
    probe.set_timeout(Duration::from_secs(2));
    let mut served = 0usize;
    let mut next = 0u32;
    while !pollen.has_exited() {
        assert!(
            Instant::now() < deadline,
            "pollen did not finish (probe got {served} blocks):\n{}",
            pollen.stderr()
        );
        let have: Vec<u32> = probe.bitfield().iter_ones().collect();
        for _ in 0..BATCH {
            let Some(&piece) = have.get(next as usize % have.len().max(1)) else {
                break;
            };
            next = next.wrapping_add(1);
            let _ = probe.request(piece, 0, 16 * 1024);
        }
        // Read what comes until the batch is answered or the reads time out.
        for _ in 0..BATCH {
            match probe.next_message() {
                Ok(common::scripted_peer::OwnedMessage::Piece { .. }) => served += 1,
                Ok(_) => {}
                Err(PeerError::Closed) => break,
                Err(_) => break,
            }
        }
        let _ = probe.send(&Message::KeepAlive);
    }
    let status = pollen.wait(Duration::from_secs(5));
    assert!(status.success(), "{status}\n{}", pollen.stderr());
    common::process::assert_same_tree(&seed, &dest);
    assert!(served > 0, "the probe was never served");
}
