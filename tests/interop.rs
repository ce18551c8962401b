//! pollen against real BitTorrent clients on 127.0.0.1: a 64 MiB multi-file
//! torrent made by `pollen create`, announced to opentracker over HTTP, moves
//! from aria2c and libtorrent seeders to pollen and from a pollen seeder to
//! aria2c, libtorrent and transmission-cli, byte for byte. One pollen
//! process also downloads two torrents at once through its one port, one
//! from a libtorrent seeder and the other from a pollen seeder. libtorrent
//! given only a magnet link (and the seeder's address) gets the metadata
//! from a pollen seeder (BEP 9), then the data; so does aria2c, which the
//! seeder dials. A pollen seeder and a crowd of libtorrent leechers speak
//! the fast extension (BEP 6) to each other, as its `--trace` shows.
//!
//! Run by `make interop` (`POLLEN_INTEROP=1 cargo test --release --test
//! interop -- --test-threads=1`), which installs the Debian packages first.
//! Plain `cargo test` reports these tests as ignored, with the reason; so it
//! does a test whose tool is missing, which with `POLLEN_INTEROP=1` fails
//! instead (`common::harness`; `harness = false` in Cargo.toml). Every
//! process is killed when its test ends, and every wait has a deadline (see
//! `common::clients`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::clients::{
    aria2c, assert_same_files, free_port, libtorrent, pollen_command, tracked_torrent,
    transmission_leecher, Opentracker, Proc, Role,
};
use common::harness::{self, interop, program, trial, Need};
use common::process::Pollen;
use common::{seeded_torrent, write_tree, TempDir};

fn main() {
    let opentracker = || program("opentracker", "opentracker");
    let aria2 = || program("aria2c", "aria2");
    harness::run(vec![
        trial!(
            pollen_downloads_from_an_aria2c_seeder_found_through_opentracker,
            [interop(), opentracker(), aria2()]
        ),
        trial!(
            pollen_downloads_from_a_libtorrent_seeder_found_through_opentracker,
            [interop(), opentracker(), Need::Libtorrent]
        ),
        trial!(
            aria2c_downloads_from_a_pollen_seeder,
            [interop(), opentracker(), aria2()]
        ),
        trial!(
            libtorrent_downloads_from_a_pollen_seeder,
            [interop(), opentracker(), Need::Libtorrent]
        ),
        trial!(
            transmission_downloads_from_a_pollen_seeder_that_dials_it,
            [
                interop(),
                opentracker(),
                program("transmission-cli", "transmission-cli")
            ]
        ),
        trial!(
            pollen_downloads_two_torrents_at_once_from_a_libtorrent_and_a_pollen_seeder,
            [interop(), Need::Libtorrent]
        ),
        trial!(
            libtorrent_downloads_from_a_pollen_seeder_given_only_a_magnet,
            [interop(), Need::Libtorrent]
        ),
        trial!(
            aria2c_downloads_from_a_pollen_seeder_given_only_a_magnet,
            [interop(), aria2()]
        ),
        trial!(
            a_pollen_seeder_speaks_the_fast_extension_with_a_crowd_of_libtorrent_leechers,
            [interop(), Need::Libtorrent]
        ),
    ]);
}

/// The shared tree: nested directories; pieces straddle every file boundary
/// (no size is a multiple of 256 KiB) and the last piece is short. Total
/// 67,054,543 bytes (64 MiB less 54,321).
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 10_000_000, 101),
    ("share/docs/readme.txt", 12_345, 102),
    ("share/media/deep/b.bin", 40_000_001, 103),
    ("share/media/c.bin", 17_042_197, 104),
];

const PIECE_SIZE: &str = "256K";

/// Longest a client may take to check its data and reach the tracker.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Longest one 64 MiB transfer may take (they take 1 to 6 s here).
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// Longest a pollen seeder may take to leave after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// One test's world: a scratch directory holding the seed's copy of the
/// files (under `seed/`), the torrent, and an opentracker tracking it.
struct Swarm {
    // Fields drop in order: the tracker (and its log) before the directory.
    tracker: Opentracker,
    info_hash: String,
    torrent: PathBuf,
    files: Vec<&'static str>,
    tmp: TempDir,
}

impl Swarm {
    fn new(tag: &str, share: &[(&'static str, usize, u64)]) -> Swarm {
        let tmp = TempDir::new(tag);
        let seed = tmp.path().join("seed");
        write_tree(&seed, share);
        let torrent = tmp.path().join("share.torrent");
        let (tracker, info_hash) =
            tracked_torrent(tmp.path(), &seed.join("share"), &torrent, PIECE_SIZE);
        Swarm {
            tracker,
            info_hash,
            torrent,
            files: share.iter().map(|(path, _, _)| *path).collect(),
            tmp,
        }
    }

    /// Where the seeder's files are (the torrent's `share/` is inside).
    fn seed_dir(&self) -> PathBuf {
        self.tmp.path().join("seed")
    }

    /// A fresh directory for a leecher's download.
    fn leech_dir(&self) -> PathBuf {
        let dir = self.tmp.path().join("leech");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn logs(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// Waits until the tracker lists `seeder` as a seed.
    fn wait_for_seeder(&mut self, seeder: &mut Proc) {
        self.tracker
            .wait_for_seeders(&self.info_hash, 1, STARTUP_LIMIT, &mut [seeder]);
    }

    /// Asserts the leecher's copy equals the seed's, byte for byte.
    fn assert_downloaded(&self, leech_dir: &std::path::Path) {
        assert_same_files(&self.seed_dir(), leech_dir, &self.files);
    }

    /// A pollen seeder for this torrent that announces to the tracker.
    fn pollen_seeder(&self, extra: &[&str]) -> Proc {
        let mut command = pollen_command(["--seed", "-v", "-p", "0", "-d"]);
        command.arg(self.seed_dir()).args(extra).arg(&self.torrent);
        let mut seeder = Proc::spawn("pollen-seeder", command, self.logs());
        seeder.wait_for_line("listening on", STARTUP_LIMIT);
        seeder
    }

    /// A pollen leecher that finds its peers through the tracker only.
    fn pollen_leecher(&self) -> (Proc, PathBuf) {
        let dest = self.leech_dir();
        let mut command = pollen_command(["-v", "-p", "0", "-d"]);
        command.arg(&dest).arg(&self.torrent);
        (Proc::spawn("pollen-leecher", command, self.logs()), dest)
    }
}

/// Stops a pollen seeder with SIGTERM and checks it leaves cleanly (exit 0).
fn stop_pollen_seeder(seeder: &mut Proc) {
    seeder.assert_running();
    match seeder.terminate(STOP_LIMIT) {
        Some(status) => assert!(
            status.success(),
            "pollen seeder exited with {status} after SIGTERM\n{}",
            seeder.report()
        ),
        None => panic!(
            "pollen seeder ignored SIGTERM for {STOP_LIMIT:?}\n{}",
            seeder.report()
        ),
    }
}

fn pollen_downloads_from_an_aria2c_seeder_found_through_opentracker() {
    let mut swarm = Swarm::new("interop-aria2-seeds", SHARE);
    let seeder_cmd = aria2c(Role::Seed, &swarm.torrent, &swarm.seed_dir(), free_port());
    let mut seeder = Proc::spawn("aria2c-seeder", seeder_cmd, swarm.logs());
    swarm.wait_for_seeder(&mut seeder);

    let (mut leecher, dest) = swarm.pollen_leecher();
    leecher.wait_success(TRANSFER_LIMIT);
    swarm.assert_downloaded(&dest);
}

fn pollen_downloads_from_a_libtorrent_seeder_found_through_opentracker() {
    let mut swarm = Swarm::new("interop-lt-seeds", SHARE);
    let seeder_cmd = libtorrent(Role::Seed, &swarm.torrent, &swarm.seed_dir(), STOP_AFTER);
    let mut seeder = Proc::spawn("libtorrent-seeder", seeder_cmd, swarm.logs());
    seeder.wait_for_line("seeding", STARTUP_LIMIT);
    swarm.wait_for_seeder(&mut seeder);

    let (mut leecher, dest) = swarm.pollen_leecher();
    leecher.wait_success(TRANSFER_LIMIT);
    swarm.assert_downloaded(&dest);
}

/// A libtorrent peer's own time limit: longer than any test, so it only
/// matters if the test harness itself were killed.
const STOP_AFTER: Duration = Duration::from_secs(600);

fn aria2c_downloads_from_a_pollen_seeder() {
    let mut swarm = Swarm::new("interop-pollen-to-aria2", SHARE);
    let mut seeder = swarm.pollen_seeder(&[]);
    swarm.wait_for_seeder(&mut seeder);

    let dest = swarm.leech_dir();
    let leecher_cmd = aria2c(Role::Leech, &swarm.torrent, &dest, free_port());
    let mut leecher = Proc::spawn("aria2c-leecher", leecher_cmd, swarm.logs());
    leecher.wait_success(TRANSFER_LIMIT);
    swarm.assert_downloaded(&dest);
    stop_pollen_seeder(&mut seeder);
}

fn libtorrent_downloads_from_a_pollen_seeder() {
    let mut swarm = Swarm::new("interop-pollen-to-lt", SHARE);
    let mut seeder = swarm.pollen_seeder(&[]);
    swarm.wait_for_seeder(&mut seeder);

    let dest = swarm.leech_dir();
    let leecher_cmd = libtorrent(Role::Leech, &swarm.torrent, &dest, TRANSFER_LIMIT);
    let mut leecher = Proc::spawn("libtorrent-leecher", leecher_cmd, swarm.logs());
    leecher.wait_success(TRANSFER_LIMIT + Duration::from_secs(10));
    assert!(
        leecher.stdout().contains("complete"),
        "{}",
        leecher.report()
    );
    swarm.assert_downloaded(&dest);
    stop_pollen_seeder(&mut seeder);
}

/// transmission-cli 3.00 never dials loopback peers a tracker gives it, so
/// it listens and the pollen seeder dials it (`--peer`).
///
/// Transmission queues many requests and then waits for the blocks, so
/// this also checks that a pollen seeder serves a deep queue at once and
/// advertises its queue size (`reqq`, BEP 10); see `upload_pipelining.rs`.
fn transmission_downloads_from_a_pollen_seeder_that_dials_it() {
    let swarm = Swarm::new("interop-pollen-to-tr", SHARE);
    let dest = swarm.leech_dir();
    let port = free_port();
    let config = swarm.tmp.path().join("transmission");
    let (leecher_cmd, done) = transmission_leecher(&swarm.torrent, &dest, &config, port);
    let mut leecher = Proc::spawn("transmission-leecher", leecher_cmd, swarm.logs());
    let listening = common::clients::wait_for(STARTUP_LIMIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || !leecher.running()
    });
    leecher.assert_running();
    assert!(listening, "transmission never listened on {port}");

    let peer = format!("127.0.0.1:{port}");
    let mut seeder = swarm.pollen_seeder(&["--peer", &peer]);
    // Transmission starts sending data only after its first choke round (~10 s).
    let finished = common::clients::wait_for(TRANSFER_LIMIT, || {
        done.exists() || !leecher.running() || !seeder.running()
    });
    leecher.assert_running();
    seeder.assert_running();
    assert!(
        finished,
        "transmission did not finish within {TRANSFER_LIMIT:?}\n{}{}",
        leecher.report(),
        seeder.report()
    );
    swarm.assert_downloaded(&dest);
    stop_pollen_seeder(&mut seeder);
    leecher.kill();
}

/// The libtorrent-seeded torrent of the two-torrent test: a folder whose
/// pieces straddle its files (16 MiB less a little).
const LT_SHARE: &[(&str, usize, u64)] = &[
    ("from-lt/a.bin", 9_000_001, 111),
    ("from-lt/b.bin", 7_654_321, 112),
];

/// The pollen-seeded torrent of the two-torrent test: one file, short last piece.
const POLLEN_SHARE: &[(&str, usize, u64)] = &[("from-pollen.bin", 15_000_017, 113)];

/// One pollen process, one listening port, two torrents at the same time:
/// one seeded by libtorrent, the other by pollen, neither seeder having
/// the other's. The leecher is given both seeders (`--peer`, no tracker),
/// so each of its torrents also dials the seeder that refuses it.
fn pollen_downloads_two_torrents_at_once_from_a_libtorrent_and_a_pollen_seeder() {
    let tmp = TempDir::new("interop-two-torrents");
    let piece_len = Some(256 * 1024);
    let (lt_seed, lt_torrent) = seeded_torrent(&tmp.path().join("lt"), LT_SHARE, piece_len);
    let (pollen_seed, pollen_torrent) =
        seeded_torrent(&tmp.path().join("pollen"), POLLEN_SHARE, piece_len);

    let lt_cmd = libtorrent(Role::Seed, &lt_torrent, &lt_seed, STOP_AFTER);
    let mut lt = Proc::spawn("libtorrent-seeder", lt_cmd, tmp.path());
    let lt_peer = format!("127.0.0.1:{}", lt.wait_for_line("listening", STARTUP_LIMIT));
    lt.wait_for_line("seeding", STARTUP_LIMIT);
    let mut pollen_seeder = Pollen::seeder(&pollen_torrent, &pollen_seed, &[]);

    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start([
        "-v".as_ref(),
        "--no-tracker".as_ref(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--peer".as_ref(),
        lt_peer.as_ref(),
        "--peer".as_ref(),
        pollen_seeder.peer_arg().as_ref(),
        lt_torrent.as_os_str(),
        pollen_torrent.as_os_str(),
    ]);
    leecher.port();
    let status = leecher.wait(TRANSFER_LIMIT);
    assert!(
        status.success(),
        "{status}\n{}\n{}",
        leecher.stderr(),
        lt.report()
    );
    let names = |share: &[(&'static str, usize, u64)]| -> Vec<&'static str> {
        share.iter().map(|(path, _, _)| *path).collect()
    };
    assert_same_files(&lt_seed, &dest, &names(LT_SHARE));
    assert_same_files(&pollen_seed, &dest, &names(POLLEN_SHARE));
    lt.assert_running();
    assert!(!pollen_seeder.has_exited(), "{}", pollen_seeder.stderr());
}

/// libtorrent knows only `magnet:?xt=urn:btih:HEX` and the seeder's
/// address (`lt_peer.py magnet`, which dials it with `connect_peer`; no
/// tracker): it must fetch the info dictionary from pollen over
/// `ut_metadata`, check it against the info-hash, then download the data.
fn libtorrent_downloads_from_a_pollen_seeder_given_only_a_magnet() {
    let tmp = TempDir::new("interop-magnet-pollen-to-lt");
    let (seed, torrent) = seeded_torrent(tmp.path(), SHARE, Some(256 * 1024));
    let meta = pollen::metainfo::Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let hex = meta.info_hash.to_hex();
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);

    let dest = tmp.path().join("leech");
    std::fs::create_dir_all(&dest).unwrap();
    let mut command = std::process::Command::new("/usr/bin/python3");
    command
        .arg(common::clients::lt_peer_script())
        .arg("magnet")
        .arg(format!("magnet:?xt=urn:btih:{hex}"))
        .arg(&dest)
        .arg(seeder.peer_arg())
        .arg(TRANSFER_LIMIT.as_secs().to_string());
    let mut leecher = Proc::spawn("libtorrent-magnet-leecher", command, tmp.path());
    let made = leecher.wait_for_line("metadata", TRANSFER_LIMIT);
    assert_eq!(made, hex, "the torrent libtorrent made from our metadata");
    leecher.wait_success(TRANSFER_LIMIT + Duration::from_secs(10));
    assert!(
        leecher.stdout().contains("complete"),
        "{}",
        leecher.report()
    );
    let names: Vec<&str> = SHARE.iter().map(|(path, _, _)| *path).collect();
    assert_same_files(&seed, &dest, &names);
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
}

/// aria2c knows only `magnet:?xt=urn:btih:HEX` (it has no tracker, DHT or
/// `x.pe` to find peers with), so the pollen seeder dials it (`--peer`):
/// aria2c fetches the metadata over `ut_metadata`, then the data.
fn aria2c_downloads_from_a_pollen_seeder_given_only_a_magnet() {
    let tmp = TempDir::new("interop-magnet-pollen-to-aria2");
    let (seed, torrent) = seeded_torrent(tmp.path(), SHARE, Some(256 * 1024));
    let meta = pollen::metainfo::Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    let dest = tmp.path().join("leech");
    std::fs::create_dir_all(&dest).unwrap();
    let port = free_port();
    let leecher_cmd = aria2c(Role::Leech, std::path::Path::new(&magnet), &dest, port);
    let mut leecher = Proc::spawn("aria2c-magnet-leecher", leecher_cmd, tmp.path());
    let listening = common::clients::wait_for(STARTUP_LIMIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || !leecher.running()
    });
    leecher.assert_running();
    assert!(listening, "aria2c never listened on {port}");

    let peer = format!("127.0.0.1:{port}");
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--peer", &peer]);
    leecher.wait_success(TRANSFER_LIMIT);
    let names: Vec<&str> = SHARE.iter().map(|(path, _, _)| *path).collect();
    assert_same_files(&seed, &dest, &names);
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
}

/// The fast-extension test's torrent: 8 MiB in 64 KiB pieces.
const FAST_SHARE: &[(&str, usize, u64)] = &[("fast.bin", 8 << 20, 121)];

/// libtorrent leechers in the fast-extension test: more than a pollen
/// seeder's upload slots (4 and the optimistic one).
const CROWD: usize = 8;

/// Longest the fast-extension test waits for every BEP 6 message to show.
const FAST_LIMIT: Duration = Duration::from_secs(120);

/// A pollen seeder with a low upload limit (so requests queue up) and more
/// libtorrent leechers than upload slots; both sides set the fast bit. Its
/// `--trace` must show HAVE_NONE from the leechers, our HAVE_ALL and
/// ALLOWED_FAST, and REJECT_REQUESTs for the queued requests of the peers
/// its choke epochs (every 10 s) choke.
fn a_pollen_seeder_speaks_the_fast_extension_with_a_crowd_of_libtorrent_leechers() {
    let tmp = TempDir::new("interop-fast");
    let (seed, torrent) = seeded_torrent(tmp.path(), FAST_SHARE, Some(64 * 1024));
    let trace = tmp.path().join("trace.txt");
    let trace_arg = format!("--trace={}", trace.display());
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "256K", &trace_arg]);

    let dest = tmp.path().join("crowd");
    std::fs::create_dir_all(&dest).unwrap();
    let mut command = std::process::Command::new("/usr/bin/python3");
    command
        .arg(common::clients::lt_peer_script())
        .arg("crowd")
        .arg(CROWD.to_string())
        .arg(&torrent)
        .arg(&dest)
        .arg(seeder.peer_arg())
        .arg(STOP_AFTER.as_secs().to_string());
    let mut crowd = Proc::spawn("libtorrent-crowd", command, tmp.path());
    crowd.wait_for_line("crowd", STARTUP_LIMIT);

    // Sent lines read `-> ADDR NAME ...`, received ones `<- ADDR NAME ...`.
    let wanted = [
        ("<-", "HANDSHAKE", "(extensions, fast"),
        ("<-", "HAVE_NONE", ""),
        ("->", "HAVE_ALL", ""),
        ("->", "ALLOWED_FAST", "#"),
        ("->", "REJECT_REQUEST", "#"),
    ];
    let seen = |text: &str, (dir, name, rest): (&str, &str, &str)| {
        text.lines().any(|line| {
            let mut words = line.split_whitespace().skip(2);
            words.next() == Some(dir)
                && words.next().is_some()
                && words.next() == Some(name)
                && line.contains(rest)
        })
    };
    let mut text = String::new();
    let all_seen = common::clients::wait_for(FAST_LIMIT, || {
        text = std::fs::read_to_string(&trace).unwrap_or_default();
        wanted.iter().all(|&w| seen(&text, w)) || !crowd.running() || seeder.has_exited()
    });
    let missing: Vec<_> = wanted.iter().filter(|&&w| !seen(&text, w)).collect();
    let count = |name: &str| text.lines().filter(|l| l.contains(name)).count();
    println!(
        "trace: {} HAVE_ALL, {} ALLOWED_FAST, {} REJECT_REQUEST, {} CHOKE lines",
        count("HAVE_ALL"),
        count("ALLOWED_FAST"),
        count("REJECT_REQUEST"),
        count(" CHOKE")
    );
    for name in ["HAVE_NONE", "HAVE_ALL", "ALLOWED_FAST", "REJECT_REQUEST"] {
        if let Some(line) = text.lines().find(|l| l.contains(name)) {
            println!("first {name}: {}", line.trim());
        }
    }
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    assert!(
        all_seen && missing.is_empty(),
        "not in the trace: {missing:?}\nlast lines, newest first:\n{}\n{}",
        tail.join("\n"),
        crowd.report()
    );
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
    crowd.kill();
}
