//! Resume means no re-hash (issue 11): a restart on complete data with a
//! valid resume file hashes no piece at all; a file changed behind pollen's
//! back (even with its mtime set back) has only its own pieces hashed, and
//! the bad one is fetched again; a session stopped in the middle of its
//! start-up check saves what it verified and nothing it did not.
//!
//! The counts come from the `checked existing data: ...` log line and from
//! `Session::stats().pieces_checked`, never from timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::process::{assert_same_tree, wait_for, Pollen};
use common::{pollen, seeded_torrent, TempDir};
use pollen::metainfo::Metainfo;
use pollen::session::{Config, Session};

/// 8.5 MB in 256 KiB pieces; pieces straddle the files.
const FILES: &[(&str, usize, u64)] = &[
    ("trust/a.bin", 3_000_001, 81),
    ("trust/b.bin", 4_000_003, 82),
    ("trust/c.bin", 1_500_000, 83),
];

const PIECE_LEN: u32 = 256 * 1024;

fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf, Metainfo) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(PIECE_LEN));
    let meta = pollen::load_torrent(&torrent).unwrap();
    (tmp, seed, torrent, meta)
}

/// The numbers of the start-up check's log line.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    verified: u32,
    pieces: u32,
    hashed: u32,
    trusted: u32,
}

/// Parses `checked existing data: V of P pieces verified (H hashed, T
/// trusted from the resume state)` out of a `-v` log.
fn checked(log: &str) -> Checked {
    let line = log
        .lines()
        .find_map(|l| l.split("checked existing data: ").nth(1))
        .unwrap_or_else(|| panic!("no check line in:\n{log}"));
    let numbers: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let [verified, pieces, hashed, trusted] = numbers[..] else {
        panic!("unexpected check line {line:?}");
    };
    Checked {
        verified,
        pieces,
        hashed,
        trusted,
    }
}

/// Runs pollen to completion on `dest` (from `peer` if given); returns its log.
fn run(torrent: &Path, dest: &Path, peer: Option<&str>, extra: &[&str]) -> String {
    let mut args: Vec<std::ffi::OsString> = vec![
        torrent.into(),
        "-d".into(),
        dest.into(),
        "--no-tracker".into(),
        "-v".into(),
    ];
    if let Some(peer) = peer {
        args.extend(["--peer".into(), peer.into()]);
    }
    args.extend(extra.iter().map(|s| s.into()));
    let out = pollen(args);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log
}

fn seeder(torrent: &Path, seed: &Path) -> Pollen {
    Pollen::seeder(torrent, seed, &[])
}

/// The torrent file whose path ends with `name`, and the pieces touching it.
fn file_pieces(meta: &Metainfo, name: &str) -> (usize, std::ops::Range<u32>) {
    let index = meta
        .files
        .iter()
        .position(|f| f.path.ends_with(name))
        .unwrap();
    (index, meta.layout.pieces_of_file(index))
}

/// Flips one byte of `path` at `offset`; with `keep_mtime`, sets the
/// modification time back afterwards (the ctime still moves).
fn corrupt(path: &Path, offset: u64, keep_mtime: bool) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[!byte[0]], offset).unwrap();
    if keep_mtime {
        file.set_modified(mtime).unwrap();
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
    } else {
        // A later mtime even on a coarse clock.
        file.set_modified(mtime + Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn a_restart_on_complete_data_with_a_valid_resume_file_hashes_nothing() {
    let (_tmp, seed, torrent, meta) = setup("trust-complete");
    let pieces = meta.layout.piece_count();
    // No resume state yet: every piece is hashed, then the state is saved.
    let first = checked(&run(&torrent, &seed, None, &[]));
    assert_eq!(
        first,
        Checked {
            verified: pieces,
            pieces,
            hashed: pieces,
            trusted: 0
        }
    );
    // With it: nothing is hashed.
    let log = run(&torrent, &seed, None, &[]);
    assert_eq!(
        checked(&log),
        Checked {
            verified: pieces,
            pieces,
            hashed: 0,
            trusted: pieces
        }
    );
    assert!(
        log.contains(&format!("all {pieces} pieces verified on disk")),
        "{log}"
    );
    // --check still hashes every piece.
    let check = checked(&run(&torrent, &seed, None, &["--check"]));
    assert_eq!((check.verified, check.hashed), (pieces, pieces));
    for (path, len, stream) in FILES {
        assert_eq!(
            std::fs::read(seed.join(path)).unwrap(),
            common::payload(*stream, *len),
            "{path}"
        );
    }
}

/// Downloads the torrent into `dest`, corrupts one byte of b.bin (keeping
/// its mtime or not), restarts without `--check`: only b.bin's pieces are
/// hashed, the bad one is fetched again.
fn edited_file_is_rehashed_alone(tag: &str, keep_mtime: bool) {
    let (tmp, seed, torrent, meta) = setup(tag);
    let pieces = meta.layout.piece_count();
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    run(&torrent, &dest, Some(&peer), &[]);
    assert_same_tree(&seed, &dest);

    let (_, touching_b) = file_pieces(&meta, "b.bin");
    corrupt(&dest.join("trust/b.bin"), 2_000_000, keep_mtime);
    let log = run(&torrent, &dest, Some(&peer), &[]);
    let b_pieces = touching_b.end - touching_b.start;
    assert_eq!(
        checked(&log),
        Checked {
            verified: pieces - 1,
            pieces,
            hashed: b_pieces,
            trusted: pieces - b_pieces
        },
        "{log}"
    );
    assert!(log.contains("download complete"), "{log}");
    assert_same_tree(&seed, &dest);
    // The state saved after the repair is trusted again in full.
    let after = checked(&run(&torrent, &dest, Some(&peer), &[]));
    assert_eq!(after.hashed, 0);
    s.kill();
}

#[test]
fn a_file_edited_behind_pollens_back_has_only_its_pieces_hashed_and_the_bad_one_fetched() {
    edited_file_is_rehashed_alone("trust-edited", false);
}

#[test]
fn an_edit_hidden_by_setting_the_mtime_back_is_still_seen_through_the_ctime() {
    edited_file_is_rehashed_alone("trust-mtime-back", true);
}

#[test]
fn a_session_stopped_during_its_check_saves_what_it_verified_and_nothing_else() {
    let (_tmp, seed, torrent, meta) = setup("trust-stopped");
    let pieces = meta.layout.piece_count();
    // A valid resume state for complete data...
    run(&torrent, &seed, None, &[]);
    // ...then b.bin changes, late in the file: its pieces are untrusted.
    let (_, touching_b) = file_pieces(&meta, "b.bin");
    let bad_piece = u32::try_from((3_000_001 + 3_900_000) / u64::from(PIECE_LEN)).unwrap();
    assert!(touching_b.contains(&bad_piece) && bad_piece >= touching_b.start + 8);
    corrupt(&seed.join("trust/b.bin"), 3_900_000, false);

    // The first pass hashes one slice (8 pieces); the progress callback,
    // called later in that same pass, asks the session to stop.
    let config = Config {
        dest: seed.clone(),
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        use_trackers: false,
        check_bytes_per_pass: 8 * PIECE_LEN,
        ..Config::default()
    };
    let mut session = Session::new(meta.clone(), config).unwrap();
    let stop = session.stop_flag();
    session.on_progress(Box::new(move |_| stop.store(true, Ordering::Relaxed)));
    assert_eq!(session.run().unwrap(), pollen::Outcome::Stopped);
    assert_eq!(session.stats().pieces_checked, 8);
    drop(session);

    // Saved: the trusted pieces and the 8 hashed ones; not the rest of b.bin.
    let path = pollen::resume::resume_path(&seed, &meta);
    let saved = pollen::resume::load(&path, &meta).unwrap().unwrap();
    let have: Vec<u32> = saved.have.iter_ones().collect();
    let expected: Vec<u32> = (0..pieces)
        .filter(|p| !(touching_b.start + 8..touching_b.end).contains(p))
        .collect();
    assert_eq!(have, expected);
    assert!(!saved.have.has(bad_piece));

    // The next start hashes only the pieces not reached, and finds the bad
    // one; with no peer to fetch it from, it is stopped after its check.
    let mut next = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ]);
    assert!(
        wait_for(Duration::from_secs(30), || next
            .stderr()
            .contains("checked existing data: ")),
        "{}",
        next.stderr()
    );
    next.terminate();
    // Stopped before completion: 143, as for any SIGTERM'd download.
    assert_eq!(next.wait(Duration::from_secs(20)).code(), Some(143));
    let log = next.stderr();
    let remaining = touching_b.end - touching_b.start - 8;
    assert_eq!(
        checked(&log),
        Checked {
            verified: pieces - 1,
            pieces,
            hashed: remaining,
            trusted: pieces - remaining
        }
    );
    // Its saved state never claims the bad piece.
    let saved = pollen::resume::load(&path, &meta).unwrap().unwrap();
    assert!(!saved.have.has(bad_piece));
    assert_eq!(saved.have.count_ones(), pieces - 1);
}

#[test]
fn a_check_in_slices_smaller_than_a_piece_verifies_every_piece() {
    // 100,000-byte slices of 256 KiB pieces: each piece takes three passes.
    let (_tmp, seed, _torrent, meta) = setup("trust-slices");
    let config = Config {
        dest: seed.clone(),
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        use_trackers: false,
        force_check: true,
        check_bytes_per_pass: 100_000,
        ..Config::default()
    };
    let mut session = Session::new(meta.clone(), config).unwrap();
    assert_eq!(session.run().unwrap(), pollen::Outcome::Complete);
    assert_eq!(session.stats().pieces_checked, meta.layout.piece_count());
}

#[test]
fn a_file_changed_behind_a_running_seeders_back_is_not_vouched_for_at_exit() {
    let (_tmp, seed, torrent, meta) = setup("trust-behind-back");
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--seed".as_ref(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ]);
    seeder.port();
    assert!(wait_for(Duration::from_secs(30), || seeder
        .stderr()
        .contains("checked existing data")));
    // Another program edits a.bin in place while pollen seeds it.
    corrupt(&seed.join("trust/a.bin"), 1_000, false);
    seeder.terminate();
    // No longer complete once a.bin is untrusted: a stop before completion.
    assert_eq!(seeder.wait(Duration::from_secs(30)).code(), Some(143));
    let log = seeder.stderr();
    assert!(log.contains("changed behind pollen's back"), "{log}");
    // The state saved at exit does not claim a.bin's pieces...
    let (file, touching_a) = file_pieces(&meta, "a.bin");
    assert_eq!(file, 0);
    let path = pollen::resume::resume_path(&seed, &meta);
    let saved = pollen::resume::load(&path, &meta).unwrap().unwrap();
    for piece in touching_a.clone() {
        assert!(!saved.have.has(piece), "piece {piece} still vouched for");
    }
    // ...but still every other piece.
    let others = (0..meta.layout.piece_count()).filter(|p| !touching_a.contains(p));
    for piece in others {
        assert!(saved.have.has(piece), "piece {piece} lost");
    }
}
