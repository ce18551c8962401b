//! Trackers in interop: pollen announcing over UDP (BEP 15) to opentracker,
//! and pollen's built-in tracker (`pollen tracker`) introducing real clients
//! to each other and to pollen, over HTTP and UDP.
//!
//! The payload is a 24 MiB multi-file tree. The torrents are made by
//! `pollen create --no-date`, one per announce URL: the URL lives outside
//! `info`, so every torrent of one test has the same info-hash (checked),
//! and a client given the `udp://` one can only find its peers over UDP.
//! (aria2 cannot announce over UDP with its DHT off, so it always gets the
//! `http://` one.)
//!
//! Run by `make interop` (with `interop.rs`); plain `cargo test` reports
//! these tests as ignored with the reason, and so it does a test whose tool
//! is missing, unless `POLLEN_INTEROP=1`, which makes that a failure
//! (`common::harness`). Every process is killed when its test ends, and
//! every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::clients::{
    aria2c, assert_same_files, free_port, libtorrent, pollen_command, wait_for, Opentracker, Proc,
    Role,
};
use common::harness::{self, interop, program, trial, Need};
use common::process::Tracker;
use common::TempDir;
use common::{info_field, run_with_deadline, write_tree};

fn main() {
    let aria2 = || program("aria2c", "aria2");
    let tracker_server = || Need::Feature {
        name: "tracker-server",
        enabled: cfg!(feature = "tracker-server"),
    };
    harness::run(vec![
        trial!(
            pollen_announces_to_opentracker_over_udp_and_downloads_from_aria2c,
            [interop(), program("opentracker", "opentracker"), aria2()]
        ),
        trial!(
            aria2c_and_libtorrent_download_from_pollen_through_pollen_tracker,
            [interop(), tracker_server(), aria2(), Need::Libtorrent]
        ),
        trial!(
            pollen_downloads_from_libtorrent_through_pollen_tracker_over_udp,
            [interop(), tracker_server(), Need::Libtorrent]
        ),
    ]);
}

/// The shared tree: nested directories, pieces straddling every file
/// boundary, a short last piece. 25,165,824 bytes less 4,321 (24 MiB).
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 7_000_003, 201),
    ("share/docs/notes.txt", 54_321, 202),
    ("share/media/deep/b.bin", 11_111_111, 203),
    ("share/media/c.bin", 6_996_068, 204),
];

const PIECE_SIZE: &str = "256K";

/// Longest a client may take to check its data and reach the tracker.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Longest one 24 MiB transfer may take (a few seconds here).
const TRANSFER_LIMIT: Duration = Duration::from_secs(90);
/// Longest a pollen seeder may take to leave after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// A libtorrent seeder's own time limit: longer than any test.
const SEEDER_LIFETIME: Duration = Duration::from_secs(600);
/// How long (minutes) the aria2c leecher seeds after completing: just
/// long enough to announce `completed` before `stopped` (about 1 s).
const ARIA2_SEED_TIME: &str = "--seed-time=0.02";
/// Pause between two `pollen scrape` runs while waiting for counts.
const SCRAPE_EVERY: Duration = Duration::from_millis(200);

/// One test's scratch world: the seed's copy of the files under `seed/`,
/// logs, and the torrents.
struct Share {
    files: Vec<&'static str>,
    tmp: TempDir,
}

impl Share {
    fn new(tag: &str) -> Share {
        let tmp = TempDir::new(tag);
        write_tree(&tmp.path().join("seed"), SHARE);
        Share {
            files: SHARE.iter().map(|(path, _, _)| *path).collect(),
            tmp,
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Where a seeder's files are (the torrent's `share/` is inside).
    fn seed_dir(&self) -> PathBuf {
        self.dir().join("seed")
    }

    /// A fresh directory for the leecher called `name`.
    fn leech_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Makes `NAME.torrent` announcing only to `url`, with `pollen create
    /// --no-date`, and returns its path and info-hash (hex).
    fn torrent(&self, name: &str, url: &str) -> (PathBuf, String) {
        let torrent = self.dir().join(format!("{name}.torrent"));
        let mut create =
            pollen_command(["create".as_ref(), self.seed_dir().join("share").as_os_str()]);
        create.arg("-o").arg(&torrent).args([
            "--tracker",
            url,
            "--piece-size",
            PIECE_SIZE,
            "--no-date",
            "--force",
        ]);
        let out = run_with_deadline(create, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "pollen create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run_with_deadline(
            pollen_command(["info".as_ref(), torrent.as_os_str()]),
            Duration::from_secs(30),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hash = info_field(&stdout, "info-hash:")
            .unwrap_or_else(|| panic!("no info-hash in pollen info:\n{stdout}"))
            .to_string();
        let trackers = info_field(&stdout, "trackers:").unwrap_or_default();
        assert!(
            trackers.ends_with(url),
            "{name}.torrent lists {trackers:?}, not {url}"
        );
        (torrent, hash)
    }

    /// Two torrents of the share, one per URL, checked to have one info-hash.
    fn torrent_pair(&self, http: &str, udp: &str) -> (PathBuf, PathBuf, String) {
        let (http_torrent, hash) = self.torrent("http", http);
        let (udp_torrent, udp_hash) = self.torrent("udp", udp);
        assert_eq!(
            hash, udp_hash,
            "the announce URL changed the info-hash of the same data"
        );
        (http_torrent, udp_torrent, hash)
    }

    fn assert_downloaded(&self, leech_dir: &Path) {
        assert_same_files(&self.seed_dir(), leech_dir, &self.files);
    }

    /// A pollen seeder of `torrent` (data in `seed/`), listening.
    fn pollen_seeder(&self, torrent: &Path) -> Proc {
        let mut command = pollen_command(["--seed", "-v", "-p", "0", "-d"]);
        command.arg(self.seed_dir()).arg(torrent);
        let mut seeder = Proc::spawn("pollen-seeder", command, self.dir());
        seeder.wait_for_line("listening on", STARTUP_LIMIT);
        seeder
    }

    /// A pollen leecher of `torrent` that finds its peers through the
    /// torrent's tracker only; `-v` so it logs each announce.
    fn pollen_leecher(&self, torrent: &Path) -> (Proc, PathBuf) {
        let dest = self.leech_dir("pollen-leech");
        let mut command = pollen_command(["-v", "-p", "0", "-d"]);
        command.arg(&dest).arg(torrent);
        (Proc::spawn("pollen-leecher", command, self.dir()), dest)
    }
}

/// Counts one tracker reports in `pollen scrape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    seeders: u64,
    leechers: u64,
    completed: u64,
}

/// `pollen scrape TORRENT`: the counts of the line for `url`
/// (`URL: seeders N, leechers N, completed N`), or `None` if the tracker
/// did not answer.
fn pollen_scrape(torrent: &Path, url: &str) -> Option<Counts> {
    let out = run_with_deadline(
        pollen_command(["scrape".as_ref(), torrent.as_os_str()]),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(url)?.strip_prefix(':'))?;
    let count = |label: &str| -> Option<u64> {
        let at = line.find(label)? + label.len();
        line[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some(Counts {
        seeders: count("seeders")?,
        leechers: count("leechers")?,
        completed: count("completed")?,
    })
}

/// Polls `pollen scrape` until `ok` holds; panics with every log if
/// `limit` passes or one of `watched` exits first.
fn wait_for_scrape(
    torrent: &Path,
    url: &str,
    limit: Duration,
    watched: &mut [&mut Proc],
    what: &str,
    ok: impl Fn(Counts) -> bool,
) -> Counts {
    let mut last = None;
    wait_for(limit, || {
        last = pollen_scrape(torrent, url);
        std::thread::sleep(SCRAPE_EVERY);
        last.is_some_and(&ok) || watched.iter_mut().any(|p| !p.running())
    });
    match last {
        Some(counts) if ok(counts) => counts,
        _ => {
            let logs: String = watched.iter().map(|p| p.report()).collect();
            panic!("{url} never reported {what} within {limit:?} (last scrape {last:?})\n{logs}");
        }
    }
}

/// Asserts that a pollen leecher got its peers from `url` (its `-v` log
/// names the tracker of each successful announce).
fn assert_announced_to(leecher: &Proc, url: &str) {
    let log = leecher.stderr();
    assert!(
        log.contains(&format!("tracker {url}: Started:")),
        "pollen leecher never announced to {url}\n{}",
        leecher.report()
    );
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

/// Prints how long a test phase took (shown with `--nocapture`).
fn took(test: &str, phase: &str, since: Instant) {
    eprintln!("{test}: {phase} in {:.1} s", since.elapsed().as_secs_f64());
}

/// opentracker serves HTTP and UDP on one port with one peer table: the
/// aria2c seeder announces over HTTP, pollen over UDP, and pollen finds it.
fn pollen_announces_to_opentracker_over_udp_and_downloads_from_aria2c() {
    let test = "pollen_announces_to_opentracker_over_udp_and_downloads_from_aria2c";
    let share = Share::new("interop-udp-opentracker");
    // The torrents name the tracker's port, so make them once it is picked;
    // a few ports are tried in case another process takes the one picked.
    let mut errors = Vec::new();
    let (mut tracker, http_torrent, udp_torrent, hash, udp_url) = loop {
        assert!(errors.len() < 3, "opentracker would not start:\n{errors:?}");
        let port = free_port();
        let http = format!("http://127.0.0.1:{port}/announce");
        let udp = format!("udp://127.0.0.1:{port}");
        let (http_torrent, udp_torrent, hash) = share.torrent_pair(&http, &udp);
        match Opentracker::start(share.dir(), port, &[&hash]) {
            Ok(tracker) => break (tracker, http_torrent, udp_torrent, hash, udp),
            Err(e) => errors.push(e),
        }
    };

    let start = Instant::now();
    let seeder_cmd = aria2c(Role::Seed, &http_torrent, &share.seed_dir(), free_port());
    let mut seeder = Proc::spawn("aria2c-seeder", seeder_cmd, share.dir());
    tracker.wait_for_seeders(&hash, 1, STARTUP_LIMIT, &mut [&mut seeder]);
    took(test, "aria2c seeding, listed by opentracker", start);

    let start = Instant::now();
    let (mut leecher, dest) = share.pollen_leecher(&udp_torrent);
    leecher.wait_success(TRANSFER_LIMIT);
    took(test, "pollen download over UDP-announced swarm", start);
    share.assert_downloaded(&dest);
    assert_announced_to(&leecher, &udp_url);
    seeder.assert_running();
}

/// A pollen seeder, an aria2c leecher announcing over HTTP and a libtorrent
/// leecher announcing over UDP meet at `pollen tracker`; both leechers
/// complete, and the tracker's scrape counts both downloads.
fn aria2c_and_libtorrent_download_from_pollen_through_pollen_tracker() {
    let test = "aria2c_and_libtorrent_download_from_pollen_through_pollen_tracker";
    let share = Share::new("interop-pollen-tracker-swarm");
    let tracker = Tracker::start(&[]);
    let (http_torrent, udp_torrent, _) = share.torrent_pair(&tracker.http, &tracker.udp);

    let start = Instant::now();
    let mut seeder = share.pollen_seeder(&udp_torrent);
    let before = wait_for_scrape(
        &udp_torrent,
        &tracker.udp,
        STARTUP_LIMIT,
        &mut [&mut seeder],
        "the pollen seeder",
        |c| c.seeders >= 1,
    );
    took(test, "pollen seeding, listed by pollen tracker", start);
    assert_eq!(
        before,
        Counts {
            seeders: 1,
            leechers: 0,
            completed: 0
        },
        "before any leecher"
    );

    let start = Instant::now();
    let aria_dest = share.leech_dir("aria2c-leech");
    let mut aria_cmd = aria2c(Role::Leech, &http_torrent, &aria_dest, free_port());
    // With `--seed-time=0` aria2c goes from `started` straight to `stopped`
    // and never announces `completed`; seeding a moment makes it say so.
    // (aria2c takes the last of repeated options.)
    aria_cmd.arg(ARIA2_SEED_TIME);
    let mut aria = Proc::spawn("aria2c-leecher", aria_cmd, share.dir());
    let lt_dest = share.leech_dir("libtorrent-leech");
    let lt_cmd = libtorrent(Role::Leech, &udp_torrent, &lt_dest, TRANSFER_LIMIT);
    let mut lt = Proc::spawn("libtorrent-leecher", lt_cmd, share.dir());
    lt.wait_for_line("listening", STARTUP_LIMIT);

    let both_done = wait_for(TRANSFER_LIMIT + Duration::from_secs(10), || {
        !aria.running() && !lt.running()
    });
    let report = |procs: &[&Proc]| -> String {
        let logs: String = procs.iter().map(|p| p.report()).collect();
        format!(
            "{logs}----- pollen tracker stderr -----\n{}",
            tracker.process.stderr()
        )
    };
    assert!(
        both_done,
        "the leechers did not finish\n{}",
        report(&[&aria, &lt, &seeder])
    );
    took(test, "aria2c and libtorrent downloads (together)", start);
    for proc in [&mut aria, &mut lt] {
        let status = proc.exit_status().unwrap();
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            proc.name(),
            report(&[proc, &seeder])
        );
    }
    assert!(lt.stdout().contains("complete"), "{}", lt.report());
    share.assert_downloaded(&aria_dest);
    share.assert_downloaded(&lt_dest);

    // Both leechers said `completed` and then `stopped` (aria2c over HTTP,
    // libtorrent over UDP); the seeder is still there. The same numbers come
    // back over either transport.
    let after = wait_for_scrape(
        &udp_torrent,
        &tracker.udp,
        Duration::from_secs(10),
        &mut [&mut seeder],
        "both downloads completed and both leechers gone",
        |c| c.completed >= 2 && c.seeders <= 1 && c.leechers == 0,
    );
    let over_http = pollen_scrape(&http_torrent, &tracker.http);
    assert_eq!(over_http, Some(after), "HTTP and UDP scrapes disagree");
    assert_eq!(
        after,
        Counts {
            seeders: 1,
            leechers: 0,
            completed: 2
        },
        "after both leechers left\n{}",
        report(&[&aria, &lt, &seeder])
    );
    stop_pollen_seeder(&mut seeder);
}

/// A libtorrent seeder announces to `pollen tracker` over UDP; a pollen
/// leecher announces there over UDP too, finds it, and downloads.
fn pollen_downloads_from_libtorrent_through_pollen_tracker_over_udp() {
    let test = "pollen_downloads_from_libtorrent_through_pollen_tracker_over_udp";
    let share = Share::new("interop-lt-pollen-tracker-udp");
    let tracker = Tracker::start(&[]);
    let (_, udp_torrent, _) = share.torrent_pair(&tracker.http, &tracker.udp);

    let start = Instant::now();
    let seeder_cmd = libtorrent(Role::Seed, &udp_torrent, &share.seed_dir(), SEEDER_LIFETIME);
    let mut seeder = Proc::spawn("libtorrent-seeder", seeder_cmd, share.dir());
    seeder.wait_for_line("seeding", STARTUP_LIMIT);
    wait_for_scrape(
        &udp_torrent,
        &tracker.udp,
        STARTUP_LIMIT,
        &mut [&mut seeder],
        "the libtorrent seeder",
        |c| c.seeders >= 1,
    );
    took(test, "libtorrent seeding, listed by pollen tracker", start);

    let start = Instant::now();
    let (mut leecher, dest) = share.pollen_leecher(&udp_torrent);
    leecher.wait_success(TRANSFER_LIMIT);
    took(test, "pollen download", start);
    share.assert_downloaded(&dest);
    assert_announced_to(&leecher, &tracker.udp);
    seeder.assert_running();
}
