//! Several torrents in one pollen process, through one listening port
//! (issue 12): one leecher downloads two torrents at once from two seeders
//! that each have only one of them; one seeder of two torrents serves two
//! leechers on its single port, each routed to its torrent by the
//! info-hash of its handshake; a handshake for a torrent it does not serve
//! is closed while the others go on being served; and a command line with
//! a missing torrent, or the same torrent twice, is refused with one line
//! before anything is downloaded.
//!
//! Real `pollen` processes on 127.0.0.1 (port 0, read back), real files in
//! temp dirs, compared byte for byte. Every wait has a deadline and every
//! process is killed when its test ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::scripted_peer::{PeerError, ProbeLeecher};
use common::{pollen, seeded_torrent, write_tree, TempDir};
use pollen::hash::Sha1Hash;
use pollen::metainfo::Metainfo;

/// Torrent a: a folder of two files; pieces straddle the file boundary.
const A_FILES: &[(&str, usize, u64)] = &[
    ("alpha/one.bin", 3_000_001, 121),
    ("alpha/two.bin", 1_234_567, 122),
];

/// Torrent b: one file with a short last piece.
const B_FILES: &[(&str, usize, u64)] = &[("beta.bin", 5_000_003, 123)];

const PIECE_LEN: u32 = 256 * 1024;

/// Longest a download of both torrents may take (a second or two here,
/// in a debug build).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(60);

/// Longest pollen may take to close a connection it refuses.
const SOON: Duration = Duration::from_secs(5);

/// Two torrents, each with its own seed directory, and a third directory
/// holding both (for a seeder of the two).
struct Pair {
    a_seed: PathBuf,
    a_torrent: PathBuf,
    b_seed: PathBuf,
    b_torrent: PathBuf,
    /// The data of a and b side by side.
    both: PathBuf,
    tmp: TempDir,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let tmp = TempDir::new(tag);
        let (a_seed, a_torrent) = seeded_torrent(&tmp.path().join("a"), A_FILES, Some(PIECE_LEN));
        let (b_seed, b_torrent) = seeded_torrent(&tmp.path().join("b"), B_FILES, Some(PIECE_LEN));
        // The payload is a formula of its seed: writing it again gives the same bytes.
        let both = tmp.path().join("both");
        write_tree(&both, A_FILES);
        write_tree(&both, B_FILES);
        Pair {
            a_seed,
            a_torrent,
            b_seed,
            b_torrent,
            both,
            tmp,
        }
    }

    /// A fresh directory under the test's scratch directory (not created).
    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// One pollen seeding both torrents through its one port.
    fn seeder_of_both(&self) -> Pollen {
        Pollen::seeder_of(&[&self.a_torrent, &self.b_torrent], &self.both, &[])
    }

    fn meta(torrent: &Path) -> Metainfo {
        pollen::load_torrent(torrent).unwrap()
    }
}

#[test]
fn one_process_downloads_two_torrents_at_once_from_two_seeders() {
    let pair = Pair::new("multi-two-seeders");
    // Seeder A has only a, seeder B only b: each torrent of the leecher
    // dials both, and one of the two refuses it.
    let mut seeder_a = Pollen::seeder(&pair.a_torrent, &pair.a_seed, &[]);
    let mut seeder_b = Pollen::seeder(&pair.b_torrent, &pair.b_seed, &[]);
    let dest = pair.dir("leech");
    let mut leecher = Pollen::start([
        "--no-tracker".as_ref(),
        "-q".as_ref(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--peer".as_ref(),
        seeder_a.peer_arg().as_ref(),
        "--peer".as_ref(),
        seeder_b.peer_arg().as_ref(),
        pair.a_torrent.as_os_str(),
        pair.b_torrent.as_os_str(),
    ]);
    leecher.port();
    let status = leecher.wait(DOWNLOAD_LIMIT);
    assert!(status.success(), "{status}\n{}", leecher.stderr());
    assert_same_tree(&pair.a_seed, &dest);
    assert_same_tree(&pair.b_seed, &dest);
    assert!(!seeder_a.has_exited() && !seeder_b.has_exited());
}

#[test]
fn one_seeder_of_two_torrents_serves_each_leecher_its_torrent_on_one_port() {
    let pair = Pair::new("multi-one-port");
    let mut seeder = pair.seeder_of_both();
    let peer = seeder.peer_arg();
    // Both at once: the seeder's one listener takes both and routes each
    // connection by the info-hash in its handshake.
    let (dest_a, dest_b) = (pair.dir("leech-a"), pair.dir("leech-b"));
    let mut leecher_a = Pollen::leecher(&pair.a_torrent, &dest_a, &peer);
    let mut leecher_b = Pollen::leecher(&pair.b_torrent, &dest_b, &peer);
    for (name, leecher) in [("a", &mut leecher_a), ("b", &mut leecher_b)] {
        let status = leecher.wait(DOWNLOAD_LIMIT);
        assert!(
            status.success(),
            "leecher {name}: {status}\n{}",
            leecher.stderr()
        );
    }
    assert_same_tree(&pair.a_seed, &dest_a);
    assert_same_tree(&pair.b_seed, &dest_b);
    assert!(!dest_a.join("beta.bin").exists() && !dest_b.join("alpha").exists());
    assert!(!seeder.has_exited(), "seeder died:\n{}", seeder.stderr());
}

#[test]
fn a_handshake_for_an_unserved_torrent_is_closed_and_the_others_are_still_served() {
    let pair = Pair::new("multi-unknown-hash");
    let mut seeder = pair.seeder_of_both();
    let port = seeder.port();
    let (meta_a, meta_b) = (Pair::meta(&pair.a_torrent), Pair::meta(&pair.b_torrent));
    // A peer of a, connected before the stranger comes.
    let mut before = ProbeLeecher::open(port, &meta_a).unwrap();

    let stranger_hash = [0x55; 20];
    assert!(stranger_hash != meta_a.info_hash.0 && stranger_hash != meta_b.info_hash.0);
    let count = meta_a.layout.piece_count();
    let mut stranger = ProbeLeecher::connect(port, stranger_hash, count).unwrap();
    stranger.set_timeout(SOON);
    // Closed without an answer: pollen names no torrent to a stranger.
    match stranger.read_handshake() {
        Err(PeerError::Closed) => {}
        other => panic!("unknown info-hash: expected a close, got {other:?}"),
    }

    assert!(!before.is_closed_within(Duration::from_millis(300)));
    assert_piece_served(&mut before, &meta_a, 1);
    for meta in [&meta_a, &meta_b] {
        // `open` checks the seeder answers with this torrent's info-hash.
        let mut probe = ProbeLeecher::open(port, meta).unwrap();
        assert!(probe.bitfield().count_ones() == meta.layout.piece_count());
        assert_piece_served(&mut probe, meta, meta.layout.piece_count() - 1);
    }
    assert!(!seeder.has_exited(), "seeder died:\n{}", seeder.stderr());
}

/// Downloads `piece` through `probe` and checks it against `meta`'s hash.
fn assert_piece_served(probe: &mut ProbeLeecher, meta: &Metainfo, piece: u32) {
    let data = probe.download_piece(&meta.layout, piece).unwrap();
    assert_eq!(
        Some(&Sha1Hash::of(&data)),
        meta.piece_hash(meta.layout.piece(piece).unwrap()),
        "{}: piece {piece}",
        meta.name
    );
}

/// Runs a leecher of `torrents` into `dest` from `peer` that must be
/// refused before it starts: exit 2, one line on stderr (returned), no
/// listening line, nothing written under `dest`.
fn assert_refused(dest: &Path, peer: &str, torrents: &[&Path]) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--no-tracker".as_ref(),
        "-q".as_ref(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--peer".as_ref(),
        peer.as_ref(),
    ];
    args.extend(torrents.iter().map(|t| t.as_os_str()));
    let out = pollen(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "nothing started (no listening line)");
    assert!(
        !dest.exists(),
        "nothing was written under {}",
        dest.display()
    );
    stderr
}

#[test]
fn a_missing_torrent_is_refused_with_its_name_and_nothing_is_downloaded() {
    let pair = Pair::new("multi-missing");
    let mut seeder = Pollen::seeder(&pair.a_torrent, &pair.a_seed, &[]);
    let missing = pair.dir("missing.torrent");
    let dest = pair.dir("leech");
    let stderr = assert_refused(&dest, &seeder.peer_arg(), &[&pair.a_torrent, &missing]);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "the line names the missing torrent: {stderr}"
    );
}

#[test]
fn the_same_torrent_twice_is_refused_clearly_and_nothing_is_downloaded() {
    let pair = Pair::new("multi-twice");
    let mut seeder = Pollen::seeder(&pair.a_torrent, &pair.a_seed, &[]);
    let peer = seeder.peer_arg();
    // Another file with the same info-hash is the same torrent.
    let copy = pair.dir("copy.torrent");
    std::fs::copy(&pair.a_torrent, &copy).unwrap();
    let a = pair.a_torrent.display();
    let cases = [
        (&pair.a_torrent, format!("{a} is given twice")),
        (
            &copy,
            format!("{} and {a} are the same torrent", copy.display()),
        ),
    ];
    for (again, expected) in cases {
        let torrents = [pair.a_torrent.as_path(), pair.b_torrent.as_path(), again];
        let stderr = assert_refused(&pair.dir("leech"), &peer, &torrents);
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert!(!stderr.contains("another pollen"), "{stderr}");
    }
}
