//! Trackers never hold each other up (issue 11: "Finish in a hostile, messy
//! swarm").
//!
//! - A tier-1 UDP tracker that never answers does not delay tier 2: pollen
//!   announces to every tier at once, learns the seeder from the working
//!   tracker in tier 2 (HTTP, or UDP on a second socket) and completes
//!   while the silent one is still unanswered (BEP 12's walk would wait out
//!   the whole UDP retransmit schedule first; libtorrent gives up after
//!   10-15 s, see `make bench`).
//! - Five HTTP trackers that accept and never answer, each in its own tier,
//!   cost one blocking announce per loop pass at most, each within the
//!   5 s total timeout, and the seeder serves its peer between them.
//!
//! Both assertions are structural, read from `--trace`: which announces
//! ended, how long each blocked, and what the loop did in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::http_tracker::{Reply, TestTracker};
use common::process::{assert_same_tree, wait_for, Pollen, Tracker};
use common::scripted_peer::ProbeLeecher;
use common::{write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};
use pollen::metainfo::Metainfo;

/// An HTTP announce's total timeout (`HttpTimeouts::default().total`): the
/// documented cap on how long one loop pass may block on a tracker.
const HTTP_TOTAL_CAP: Duration = Duration::from_secs(5);

/// Slack allowed over [`HTTP_TOTAL_CAP`] when reading how long an announce
/// blocked: the timer fires at the cap, and a loaded test machine may take a
/// little longer to unwind the call.
const TIMER_SLACK: Duration = Duration::from_secs(1);

/// A UDP socket on 127.0.0.1 that never answers and counts what it gets.
struct SilentUdp {
    url: String,
    datagrams: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentUdp {
    fn start() -> SilentUdp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let url = format!("udp://{}", socket.local_addr().unwrap());
        let datagrams = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, flag) = (Arc::clone(&datagrams), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if socket.recv_from(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        SilentUdp {
            url,
            datagrams,
            stop,
            thread: Some(thread),
        }
    }

    fn datagrams(&self) -> usize {
        self.datagrams.load(Ordering::Relaxed)
    }
}

impl Drop for SilentUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes a torrent of the tree under `content` announcing to `trackers`
/// (each in its own tier) to `path`.
fn write_torrent(content: &Path, trackers: Vec<String>, path: &Path) -> Metainfo {
    let options = CreateOptions {
        trackers,
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let bytes = create_torrent(content, &options).unwrap();
    std::fs::write(path, &bytes).unwrap();
    Metainfo::from_bytes(&bytes).unwrap()
}

/// One `tracker` line of a trace: when it was recorded (the announce's
/// end), the URL, and how long the announce ran.
#[derive(Debug)]
struct AnnounceLine {
    at: Duration,
    url: String,
    took: Duration,
    failed: bool,
    text: String,
}

/// The time column of a trace line.
fn line_time(line: &str) -> Option<Duration> {
    let secs: f64 = line.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

/// A trace duration: `3.2 ms` or `5.001 s`.
fn parse_took(text: &str) -> Option<Duration> {
    let (number, unit) = text.trim().split_once(' ')?;
    let value: f64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_secs_f64(value / 1000.0)),
        "s" => Some(Duration::from_secs_f64(value)),
        _ => None,
    }
}

/// Every announce line of `trace` (phase `announce`).
fn announce_lines(trace: &str) -> Vec<AnnounceLine> {
    trace
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let at = line_time(line)?;
            words.next();
            if words.next()? != "announce" {
                return None;
            }
            let url = words.next()?.to_string();
            let (failed, took) = if let Some((_, rest)) = line.split_once(": failed after ") {
                (true, parse_took(rest.split(':').next()?)?)
            } else {
                (false, parse_took(line.rsplit_once(" in ")?.1)?)
            };
            Some(AnnounceLine {
                at,
                url,
                took,
                failed,
                text: line.to_string(),
            })
        })
        .collect()
}

#[test]
fn a_silent_udp_tier_does_not_hold_up_the_http_tier() {
    let tracker = TestTracker::start(Reply::Peers);
    silent_first_tier_then(&tracker.url(), "failover-silent-http");
}

/// The same with the working tier on UDP too (`pollen tracker`): two UDP
/// exchanges in flight at once, each on its own socket and token.
#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn a_silent_udp_tier_does_not_hold_up_a_udp_tier() {
    let tracker = Tracker::start(&[]);
    silent_first_tier_then(&tracker.udp, "failover-silent-udp");
}

/// A leecher whose tier 1 is a silent UDP tracker and tier 2 the working
/// tracker at `working` finds the seeder through tier 2 and completes,
/// while tier 1 is still unanswered.
fn silent_first_tier_then(working: &str, tag: &str) {
    let silent = SilentUdp::start();
    let tmp = TempDir::new(tag);
    let seed = tmp.path().join("seed");
    write_tree(
        &seed,
        &[("data/a.bin", 1_200_000, 31), ("data/b.bin", 77_777, 32)],
    );
    // The leecher's torrent: tier 1 the silent UDP tracker, tier 2 the
    // working one. The seeder's copy (same info-hash) names only the
    // working one, so every datagram the silent socket counts is the
    // leecher's.
    let torrent = tmp.path().join("t.torrent");
    write_torrent(
        &seed.join("data"),
        vec![silent.url.clone(), working.to_string()],
        &torrent,
    );
    let seed_torrent = tmp.path().join("seed.torrent");
    write_torrent(&seed.join("data"), vec![working.to_string()], &seed_torrent);

    let seeder = Pollen::start([
        seed_torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--seed".as_ref(),
        "-v".as_ref(),
    ]);
    let announced = format!("tracker {working}: Started");
    assert!(
        wait_for(Duration::from_secs(30), || seeder
            .stderr()
            .contains(&announced)),
        "the seeder never announced:\n{}",
        seeder.stderr()
    );

    let dest = tmp.path().join("leech");
    let trace = tmp.path().join("trace.txt");
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "-v".as_ref(),
        "--trace-kinds".as_ref(),
        "tracker".as_ref(),
        format!("--trace={}", trace.display()).as_ref(),
    ]);
    // Generous: BEP 12's walk would need the silent tracker's whole
    // retransmit schedule (2 h) first; pollen needs a second or two.
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed, &dest);

    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines = announce_lines(&trace);
    let ok_started = format!("{working} event=started: ");
    assert!(
        lines
            .iter()
            .any(|l| !l.failed && l.text.contains(&ok_started)),
        "tier 2 never answered a started:\n{trace}"
    );
    // The silent tier was asked at the same time, and its exchange was
    // still waiting when the download completed and pollen left: its only
    // line is the one recorded at exit. Had pollen waited for it (or given
    // up on it first), it would have a "failed after" line of its own.
    let silent_lines: Vec<&AnnounceLine> = lines.iter().filter(|l| l.url == silent.url).collect();
    assert_eq!(silent_lines.len(), 1, "{trace}");
    assert!(
        silent_lines[0]
            .text
            .ends_with("abandoned at exit, no answer yet"),
        "{trace}"
    );
    let sent = silent.datagrams();
    assert!(
        (1..=3).contains(&sent),
        "the silent tracker got {sent} datagrams; the give-up sends 3 at most"
    );
    assert!(leecher.stderr().contains("download complete"));
}

/// Requests blocks from `probe` one at a time, a little apart, until
/// `enough` says so or `limit` passes; returns how many were served.
fn keep_downloading(
    probe: &mut ProbeLeecher,
    piece_count: u32,
    limit: Duration,
    mut enough: impl FnMut() -> bool,
) -> usize {
    let deadline = Instant::now() + limit;
    let mut served = 0;
    let mut piece = 0;
    while Instant::now() < deadline {
        probe.request(piece, 0, 16 * 1024).unwrap();
        let block = probe.read_piece().unwrap();
        assert_eq!((block.piece, block.begin), (piece, 0));
        served += 1;
        piece = (piece + 1) % piece_count;
        if served % 10 == 0 && enough() {
            break;
        }
        // A steady trickle of requests: enough to show the loop is serving,
        // few enough to keep the trace small.
        std::thread::sleep(Duration::from_millis(20));
    }
    served
}

#[test]
fn five_dead_http_trackers_never_freeze_the_peers() {
    // Listeners that are never accepted: the kernel completes each
    // connection, the request is never read, so every announce to them
    // costs the whole total timeout.
    let dead: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let urls: Vec<String> = dead
        .iter()
        .map(|l| format!("http://{}/announce", l.local_addr().unwrap()))
        .collect();
    let tmp = TempDir::new("failover-dead-http");
    write_tree(tmp.path(), &[("share/data.bin", 2 << 20, 41)]);
    let torrent = tmp.path().join("t.torrent");
    let meta = write_torrent(&tmp.path().join("share"), urls.clone(), &torrent);
    let piece_count = meta.layout.piece_count();

    let trace_path = tmp.path().join("trace.txt");
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        tmp.path().as_os_str(),
        "--seed".as_ref(),
        "-v".as_ref(),
        "--trace-kinds".as_ref(),
        "tracker,wire".as_ref(),
        format!("--trace={}", trace_path.display()).as_ref(),
    ]);
    let port = seeder.port();
    assert!(
        wait_for(Duration::from_secs(30), || seeder
            .stderr()
            .contains("checked existing data")),
        "{}",
        seeder.stderr()
    );

    // The seeder may be in its first blocking announce: wait longer than
    // one for each step.
    let mut probe = ProbeLeecher::connect(port, meta.info_hash.0, piece_count).unwrap();
    probe.set_timeout(HTTP_TOTAL_CAP * 4);
    probe.read_handshake().unwrap();
    probe.read_bitfield().unwrap();
    probe.interested_until_unchoked().unwrap();

    let dead_announces = || {
        let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
        announce_lines(&trace)
            .into_iter()
            .filter(|l| urls.contains(&l.url) && l.failed)
            .count()
    };
    let served = keep_downloading(&mut probe, piece_count, Duration::from_secs(90), || {
        dead_announces() >= 2
    });
    seeder.terminate();
    assert!(seeder.wait(Duration::from_secs(30)).success());

    let trace = std::fs::read_to_string(&trace_path).unwrap();
    // Announces that ran (not those still queued when the seeder left).
    let dead_lines: Vec<AnnounceLine> = announce_lines(&trace)
        .into_iter()
        .filter(|l| urls.contains(&l.url) && !l.text.ends_with("abandoned at exit, no answer yet"))
        .collect();
    assert!(
        dead_lines.len() >= 2,
        "{served} blocks served, but fewer than two dead announces:\n{}",
        seeder.stderr()
    );
    for line in &dead_lines {
        assert!(line.failed, "{}", line.text);
        assert!(
            line.took <= HTTP_TOTAL_CAP + TIMER_SLACK,
            "a pass blocked past the cap: {}",
            line.text
        );
    }
    let mut asked: Vec<&str> = dead_lines.iter().map(|l| l.url.as_str()).collect();
    asked.dedup();
    assert!(asked.len() >= 2, "one tier, not several: {asked:?}");

    // Between the end of one blocking announce and the start of the next,
    // the loop sent the probe blocks.
    let pieces_sent: Vec<Duration> = trace
        .lines()
        .filter(|l| l.contains(" serve_requests ") && l.contains(" PIECE #"))
        .filter_map(line_time)
        .collect();
    for pair in dead_lines.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let next_start = later.at.saturating_sub(later.took);
        let between = pieces_sent
            .iter()
            .filter(|at| **at > earlier.at && **at < next_start)
            .count();
        assert!(
            between > 0,
            "no block served between\n{}\nand\n{}",
            earlier.text,
            later.text
        );
    }
}

/// The trace's line parser, on lines as `Tracer::tracker` writes them.
#[test]
fn announce_lines_read_time_url_and_duration() {
    let trace = "\
   0.010000 announce        http://t/announce event=started: 1 peer in 3.2 ms
   5.020000 announce        udp://t:1 event=started: failed after 5.001 s: could not reach the tracker: x
   6.000000 receive         <- 127.0.0.1:1 PIECE #1 +0 (16384 B)
";
    let lines = announce_lines(trace);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].url, "http://t/announce");
    assert!(!lines[0].failed);
    assert_eq!(lines[0].took, Duration::from_micros(3200));
    assert_eq!(lines[1].at, Duration::from_millis(5020));
    assert!(lines[1].failed);
    assert_eq!(lines[1].took, Duration::from_millis(5001));
}
