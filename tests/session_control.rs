//! The session API for several torrents: one session downloads two
//! torrents, a torrent is paused and resumed while the loop runs (through a
//! `SessionHandle` from another thread), and a removed torrent gives back
//! its lock at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{seeded_torrent, TempDir};
use pollen::session::{Config, Outcome, Session};

/// A session config for a quiet leecher into `dest` that dials `peers`.
fn leecher_config(dest: &Path, peers: Vec<SocketAddr>) -> Config {
    Config {
        dest: dest.to_path_buf(),
        listen_ip: [127, 0, 0, 1].into(),
        peers,
        use_trackers: false,
        ..Config::default()
    }
}

#[test]
fn a_paused_torrent_drops_its_peers_and_completes_once_resumed() {
    let tmp = TempDir::new("pause");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("p/data.bin", 3_000_000, 7)], None);
    // Slow enough that the pause lands mid-download.
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "512K"]);
    let peer: SocketAddr = seeder.peer_arg().parse().unwrap();
    let dest = tmp.path().join("dest");
    let mut session = Session::bind(leecher_config(&dest, vec![peer])).unwrap();
    let id = session.add_torrent_file(&torrent).unwrap();
    let handle = session.handle();
    let (reports, progress) = mpsc::channel();
    session.on_progress(Box::new(move |p| {
        let _ = reports.send((p.done_bytes, p.peers_connected));
    }));
    let runner = std::thread::spawn(move || session.run());
    let next = |what: &str, cond: &dyn Fn(u64, usize) -> bool| loop {
        let (done, peers) = progress
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no progress report while waiting for {what}"));
        if cond(done, peers) {
            return done;
        }
    };
    let before = next("the first bytes", &|done, peers| done > 0 && peers > 0);
    assert!(handle.pause(id));
    let paused_at = next("the pause to drop the peer", &|_, peers| peers == 0);
    assert!(paused_at >= before);
    assert!(paused_at < 3_000_000, "finished before the pause landed");
    assert!(handle.resume(id));
    let outcome = runner.join().unwrap().unwrap();
    assert_eq!(outcome, Outcome::Complete);
    assert_same_tree(&seed, &dest);
    assert!(!seeder.has_exited(), "the seeder died: {}", seeder.stderr());
}

#[test]
fn one_session_downloads_two_torrents_and_a_removed_one_frees_its_lock() {
    let tmp = TempDir::new("remove");
    let (seed_a, torrent_a) = seeded_torrent(&tmp.path().join("a"), &[("a.bin", 700_000, 1)], None);
    let (seed_b, torrent_b) = seeded_torrent(&tmp.path().join("b"), &[("b.bin", 900_000, 2)], None);
    let mut seeder_a = Pollen::seeder(&torrent_a, &seed_a, &[]);
    let mut seeder_b = Pollen::seeder(&torrent_b, &seed_b, &[]);
    let peers = vec![
        seeder_a.peer_arg().parse().unwrap(),
        seeder_b.peer_arg().parse().unwrap(),
    ];
    let dest = tmp.path().join("dest");
    let mut session = Session::bind(leecher_config(&dest, peers.clone())).unwrap();
    let a = session.add_torrent_file(&torrent_a).unwrap();
    let bytes = std::fs::read(&torrent_b).unwrap();
    let b = session.add_torrent_bytes(&bytes).unwrap();
    assert_ne!(a, b);
    assert_eq!(session.torrent_ids(), vec![a, b]);

    // A third torrent, added and removed again: its lock is free at once,
    // so another session may take the same download.
    let (_, torrent_c) = seeded_torrent(&tmp.path().join("c"), &[("c.bin", 1000, 3)], None);
    let c = session.add_torrent_file(&torrent_c).unwrap();
    let mut other = Session::bind(leecher_config(&dest, Vec::new())).unwrap();
    let held = other.add_torrent_file(&torrent_c).unwrap_err();
    assert!(
        held.to_string().contains("already being downloaded"),
        "{held}"
    );
    assert!(session.remove(c));
    assert!(!session.remove(c), "removed twice");
    other.add_torrent_file(&torrent_c).unwrap();
    drop(other);

    // The same torrent again is refused as a duplicate, not as "another pollen".
    let again = session.add_torrent_file(&torrent_a).unwrap_err();
    assert!(
        again.to_string().contains("already in this session"),
        "{again}"
    );

    // Bad bytes are refused with a clear error, and nothing is added.
    let bad = session.add_torrent_bytes(b"d4:infoi1ee").unwrap_err();
    assert!(bad.is_bad_input(), "{bad}");
    assert!(bad.to_string().starts_with("(torrent bytes): "), "{bad}");
    assert_eq!(session.torrent_count(), 2);

    assert_eq!(session.run().unwrap(), Outcome::Complete);
    assert!(session.is_complete(a) && session.is_complete(b));
    assert_same_tree(&seed_a, &dest);
    assert_same_tree(&seed_b, &dest);
    let total = session.total_stats();
    assert_eq!(total.downloaded, 700_000 + 900_000);
    assert_eq!(session.torrent_stats(a).unwrap().downloaded, 700_000);
    assert_eq!(session.torrent_stats(b).unwrap().downloaded, 900_000);
    assert!(
        !seeder_a.has_exited(),
        "seeder a died: {}",
        seeder_a.stderr()
    );
    assert!(
        !seeder_b.has_exited(),
        "seeder b died: {}",
        seeder_b.stderr()
    );
}
