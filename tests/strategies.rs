//! Piece strategies and rate limits in real swarms on 127.0.0.1: rarest-first
//! spreads different pieces over the leechers (so they can trade), a leecher
//! throttled with --max-up does not hold the swarm back, and
//! `--strategy sequential` completes pieces in order.
//!
//! Progress is observed from outside, by reading each leecher's file and
//! comparing every 16 KiB block with the payload (pollen writes blocks in
//! place as they arrive).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{assert_same_tree, Pollen};
use common::{payload, seeded_torrent, TempDir};

const PIECE: usize = 64 * 1024;
const BLOCK: usize = 16 * 1024;
const LEN: usize = 8 * 1024 * 1024 + 12_345;
const SEED: u64 = 77;

fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) =
        seeded_torrent(tmp.path(), &[("data.bin", LEN, SEED)], Some(PIECE as u32));
    (tmp, seed, torrent)
}

/// Which blocks of `file` (or of `file.part`, its name until complete)
/// already hold the payload's bytes.
fn blocks_present(file: &Path, expected: &[u8]) -> Vec<bool> {
    let data = std::fs::read(file)
        .or_else(|_| std::fs::read(pollen::storage::part_name(file)))
        .unwrap_or_default();
    expected
        .chunks(BLOCK)
        .enumerate()
        .map(|(i, want)| data.get(i * BLOCK..i * BLOCK + want.len()) == Some(want))
        .collect()
}

/// Pieces whose every block is present.
fn pieces_present(blocks: &[bool]) -> Vec<bool> {
    blocks
        .chunks(PIECE / BLOCK)
        .map(|b| b.iter().all(|&x| x))
        .collect()
}

fn args<'a>(torrent: &'a Path, dest: &'a Path, extra: &[&'a str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        torrent.into(),
        "-d".into(),
        dest.into(),
        "--no-tracker".into(),
    ];
    if !extra.contains(&"-v") {
        args.push("-q".into());
    }
    args.extend(extra.iter().map(|s| s.into()));
    args
}

#[test]
fn rarest_first_spreads_pieces_and_a_throttled_leecher_does_not_stall_the_swarm() {
    let (tmp, seed, torrent) = setup("rarest");
    let expected = payload(SEED, LEN);
    // The leechers first (each dialling the ones before it), then a slow
    // seeder that dials all of them, so they all start together and the
    // swarm's state can be watched on the way.
    let mut peers: Vec<String> = Vec::new();
    let mut leechers = Vec::new();
    for i in 0..4 {
        let dest = tmp.path().join(format!("l{i}"));
        let mut extra: Vec<String> = vec!["--seed".into()];
        if i == 3 {
            // The throttled one: it uploads to the others at 256 KiB/s at most.
            extra.extend(["--max-up".into(), "256K".into()]);
        }
        for peer in &peers {
            extra.extend(["--peer".into(), peer.clone()]);
        }
        let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut leecher = Pollen::start(args(&torrent, &dest, &extra_refs));
        peers.push(leecher.peer_arg());
        leechers.push((dest, leecher));
    }
    let mut seeder_extra = vec![
        "--seed".to_string(),
        "--max-up".into(),
        "2M".into(),
        "-v".into(),
    ];
    for peer in &peers {
        seeder_extra.extend(["--peer".into(), peer.clone()]);
    }
    let seeder_refs: Vec<&str> = seeder_extra.iter().map(String::as_str).collect();
    let mut seeder = Pollen::start(args(&torrent, &seed, &seeder_refs));
    seeder.port();
    let files: Vec<PathBuf> = leechers.iter().map(|(d, _)| d.join("data.bin")).collect();
    let piece_count = LEN.div_ceil(PIECE);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut snapshot_at_25 = None;
    loop {
        let held: Vec<Vec<bool>> = files
            .iter()
            .map(|f| pieces_present(&blocks_present(f, &expected)))
            .collect();
        let counts: Vec<usize> = held
            .iter()
            .map(|h| h.iter().filter(|&&x| x).count())
            .collect();
        let average = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        if snapshot_at_25.is_none() && average >= piece_count as f64 * 0.25 {
            let distinct = (0..piece_count)
                .filter(|&p| held.iter().any(|h| h[p]))
                .count();
            snapshot_at_25 = Some((counts.clone(), distinct));
        }
        if counts.iter().all(|&c| c == piece_count) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "swarm did not finish: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (counts, distinct) = snapshot_at_25.unwrap();
    eprintln!(
        "rarest-first at 25%: leechers hold {counts:?} of {piece_count} pieces; the swarm holds {distinct} distinct pieces"
    );
    for (dest, _) in &leechers {
        assert_same_tree(&seed, dest);
    }
    for (_, leecher) in &mut leechers {
        leecher.terminate();
        assert!(
            leecher.wait(Duration::from_secs(20)).success(),
            "{}",
            leecher.stderr()
        );
    }
    seeder.terminate();
    assert!(seeder.wait(Duration::from_secs(20)).success());
    // The leechers fetched different pieces and traded them, so the slow
    // seeder sent the torrent about once, not once per leecher.
    let log = seeder.stderr();
    let uploaded: u64 = log
        .lines()
        .find_map(|l| l.split("uploaded ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no totals line:\n{log}"));
    let copies = uploaded as f64 / LEN as f64;
    eprintln!("the seeder uploaded {copies:.2} copies of the torrent to 4 leechers");
    assert!(copies < 2.0, "the seeder uploaded {copies:.2} copies");
}

#[test]
fn sequential_strategy_completes_pieces_in_order() {
    let (tmp, seed, torrent) = setup("sequential");
    let expected = payload(SEED, LEN);
    let mut seeder = Pollen::start(args(&torrent, &seed, &["--seed", "--max-up", "3M"]));
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start(args(
        &torrent,
        &dest,
        &["--strategy", "sequential", "--peer", &peer],
    ));
    let file = dest.join("data.bin");
    let piece_count = LEN.div_ceil(PIECE);
    let mut completed_at: Vec<Option<Instant>> = vec![None; piece_count];
    let mut started_at: Vec<Option<Instant>> = vec![None; piece_count];
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed_at.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "not done");
        let now = Instant::now();
        let blocks = blocks_present(&file, &expected);
        for (p, piece_blocks) in blocks.chunks(PIECE / BLOCK).enumerate() {
            if started_at[p].is_none() && piece_blocks.iter().any(|&b| b) {
                started_at[p] = Some(now);
            }
            if completed_at[p].is_none() && piece_blocks.iter().all(|&b| b) {
                completed_at[p] = Some(now);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        leecher.wait(Duration::from_secs(30)).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed, &dest);
    let first_half_done = completed_at[..piece_count / 2]
        .iter()
        .map(|t| t.unwrap())
        .max()
        .unwrap();
    let last_quarter_started = started_at[piece_count * 3 / 4..]
        .iter()
        .map(|t| t.unwrap())
        .min()
        .unwrap();
    assert!(
        first_half_done <= last_quarter_started,
        "the last quarter started {:?} before the first half was done",
        first_half_done - last_quarter_started
    );
    seeder.kill();
}
