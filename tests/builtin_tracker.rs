//! Swarms through `pollen tracker`: seeders and leechers find each other
//! over HTTP and over UDP; a UDP tracker that loses the first datagrams is
//! reached by retransmission; a dead first tier falls through to the next;
//! scrape counts match the swarm; hostile requests get a failure reason and
//! never crash the tracker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::process::{assert_same_tree, wait_for, Pollen, Tracker};
use common::{pollen, write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};

/// A torrent of a small tree announcing to `trackers` (each its own tier).
fn make_torrent(tmp: &TempDir, trackers: Vec<String>) -> (PathBuf, PathBuf) {
    let seed = tmp.path().join("seed");
    write_tree(
        &seed,
        &[("t/one.bin", 1_500_000, 21), ("t/two.bin", 333_333, 22)],
    );
    let options = CreateOptions {
        trackers,
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let torrent = tmp.path().join("t.torrent");
    std::fs::write(&torrent, create_torrent(&seed.join("t"), &options).unwrap()).unwrap();
    (torrent, seed)
}

fn start_seeder(torrent: &Path, dir: &Path) -> Pollen {
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dir.as_os_str(),
        "--seed".as_ref(),
        "-q".as_ref(),
    ]);
    seeder.port();
    seeder
}

fn leech(tmp: &TempDir, torrent: &Path, name: &str) -> Pollen {
    let dest = tmp.path().join(name);
    Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "-v".as_ref(),
    ])
}

fn swarm_through(url_of: impl Fn(&Tracker) -> String) {
    let tracker = Tracker::start(&[]);
    let tmp = TempDir::new("builtin");
    let (torrent, seed) = make_torrent(&tmp, vec![url_of(&tracker)]);
    let _seeder = start_seeder(&torrent, &seed);
    let mut a = leech(&tmp, &torrent, "a");
    let mut b = leech(&tmp, &torrent, "b");
    for (name, leecher) in [("a", &mut a), ("b", &mut b)] {
        assert!(
            leecher.wait(Duration::from_secs(60)).success(),
            "{name}: {}",
            leecher.stderr()
        );
        assert_same_tree(&seed, &tmp.path().join(name));
    }
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn seeder_and_leechers_meet_through_the_http_tracker() {
    swarm_through(|t| t.http.clone());
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn seeder_and_leechers_meet_through_the_udp_tracker() {
    swarm_through(|t| t.udp.clone());
}

/// Forwards datagrams between clients and the tracker, dropping the first
/// `drop` datagrams from clients.
fn lossy_proxy(tracker: &str, drop: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let target: std::net::SocketAddr = tracker.trim_start_matches("udp://").parse().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let url = format!("udp://{}", socket.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (counter, flag) = (Arc::clone(&dropped), Arc::clone(&stop));
    std::thread::spawn(move || {
        let mut client = None;
        let mut buf = [0u8; 4096];
        while !flag.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if from == target {
                if let Some(client) = client {
                    let _ = socket.send_to(&buf[..n], client);
                }
            } else if counter.load(Ordering::Relaxed) < drop {
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                client = Some(from);
                let _ = socket.send_to(&buf[..n], target);
            }
        }
    });
    (url, dropped, stop)
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn udp_announce_survives_lost_datagrams_by_retransmitting() {
    let tracker = Tracker::start(&[]);
    let tmp = TempDir::new("builtin-lossy");
    let (proxy_url, dropped, stop) = lossy_proxy(&tracker.udp, 1);
    // The seeder uses the tracker directly, the leecher the lossy path.
    let (torrent, seed) = make_torrent(&tmp, vec![proxy_url]);
    let seed_torrent = tmp.path().join("seed.torrent");
    let seed_options = CreateOptions {
        trackers: vec![tracker.udp.clone()],
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    std::fs::write(
        &seed_torrent,
        create_torrent(&seed.join("t"), &seed_options).unwrap(),
    )
    .unwrap();
    let _seeder = start_seeder(&seed_torrent, &seed);
    let mut leecher = leech(&tmp, &torrent, "leech");
    // BEP 15: the first connect is lost, the retransmission 15 s later goes through.
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 1);
    assert_same_tree(&seed, &tmp.path().join("leech"));
    stop.store(true, Ordering::Relaxed);
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn a_dead_first_tier_falls_through_to_the_second() {
    let tracker = Tracker::start(&[]);
    let tmp = TempDir::new("builtin-tiers");
    let dead_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_http = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tiers = vec![
        format!("udp://127.0.0.1:{dead_port}"),
        format!("http://127.0.0.1:{dead_http}/announce"),
        tracker.http.clone(),
    ];
    let (torrent, seed) = make_torrent(&tmp, tiers);
    let _seeder = start_seeder(&torrent, &seed);
    let mut leecher = leech(&tmp, &torrent, "leech");
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    assert_same_tree(&seed, &tmp.path().join("leech"));
    let log = leecher.stderr();
    assert!(
        log.contains(&format!("tracker {}: Started", tracker.http)),
        "{log}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn scrape_counts_match_the_swarm() {
    let tracker = Tracker::start(&[]);
    let tmp = TempDir::new("builtin-scrape");
    let (torrent, seed) = make_torrent(&tmp, vec![tracker.http.clone(), tracker.udp.clone()]);
    let _seeder = start_seeder(&torrent, &seed);
    let mut leecher = leech(&tmp, &torrent, "leech");
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    // One seeder left in the swarm; the leecher completed once, then stopped.
    let expected = "seeders 1, leechers 0, completed 1";
    let mut last = String::new();
    let agreed = wait_for(Duration::from_secs(20), || {
        let out = pollen(["scrape".as_ref(), torrent.as_os_str()]);
        last = String::from_utf8_lossy(&out.stdout).to_string();
        out.status.success() && last.lines().filter(|l| l.ends_with(expected)).count() == 2
    });
    assert!(agreed, "{last}");
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn hostile_requests_get_failure_reasons_and_the_tracker_survives() {
    use std::io::{Read, Write};
    let tracker = Tracker::start(&[]);
    let addr = tracker
        .http
        .trim_start_matches("http://")
        .trim_end_matches("/announce")
        .to_string();
    let ask = |request: &[u8]| -> String {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).to_string()
    };
    let short_hash = ask(
        b"GET /announce?info_hash=abc&peer_id=12345678901234567890&port=1&left=0 HTTP/1.1\r\n\r\n",
    );
    assert!(short_hash.contains("failure reason"), "{short_hash}");
    let no_port = ask(b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=12345678901234567890&left=0 HTTP/1.1\r\n\r\n");
    assert!(no_port.contains("failure reason"), "{no_port}");
    let huge = ask(&[b'A'; 100_000]);
    assert!(
        huge.starts_with("HTTP/1.1 431") || huge.is_empty(),
        "{huge}"
    );
    assert!(ask(b"GET /elsewhere HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    // Garbage datagrams get no answer and change nothing.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"garbage", tracker.udp.trim_start_matches("udp://"))
        .unwrap();
    // Still serving.
    let ok = ask(b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=12345678901234567890&port=9&left=0 HTTP/1.1\r\n\r\n");
    assert!(ok.contains("8:intervali"), "{ok}");
}

/// In a build without the tracker (`--no-default-features`), `pollen
/// tracker` says so in one line and exits 2 (bad input), whatever options
/// it is given.
#[test]
#[cfg_attr(
    feature = "tracker-server",
    ignore = "this build has the tracker (`cargo test --no-default-features` runs this check)"
)]
fn without_the_tracker_feature_the_command_says_so() {
    for args in [&["tracker"][..], &["tracker", "-p", "0", "-u", "0"]] {
        let out = pollen(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            "error: tracker: this pollen was built without the built-in tracker \
             (cargo feature tracker-server)\n"
        );
        assert!(out.stdout.is_empty());
    }
}
