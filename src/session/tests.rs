//! Specs of the session's phases over several torrents, driven by hand
//! (no loop, no peer): a session bound to 127.0.0.1, torrents of a few
//! 16 KiB pieces, their files written to a scratch directory.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::{Config, Session};
use crate::metainfo::Metainfo;
use crate::test_util::TempDir;
use crate::torrent::RECHOKE_PERIOD;

const PIECE_LEN: usize = 16 * 1024;

/// A one-file torrent named `name` (the name sets its info-hash) of
/// `pieces` pieces; the piece hashes are made up.
fn torrent(name: &str, pieces: usize) -> Metainfo {
    let text = format!(
        "d4:infod6:lengthi{}e4:name{}:{name}12:piece lengthi{PIECE_LEN}e6:pieces{}:{}ee",
        pieces * PIECE_LEN,
        name.len(),
        pieces * 20,
        "x".repeat(pieces * 20)
    );
    Metainfo::from_bytes(text.as_bytes()).unwrap()
}

/// A session on 127.0.0.1 with no trackers, downloading into `dir`.
fn session(dir: &TempDir, check_bytes_per_pass: u32) -> Session {
    Session::bind(Config {
        dest: dir.0.clone(),
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        use_trackers: false,
        show_status: false,
        check_bytes_per_pass,
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn one_choke_epoch_rechokes_every_torrent_so_later_epochs_share_one_wake_up() {
    let dir = TempDir::new("choke-epoch");
    let mut session = session(&dir, super::DEFAULT_CHECK_BYTES_PER_PASS);
    session.add_torrent(torrent("early", 1)).unwrap();
    // The second torrent is added strictly later: its own epoch would be too.
    let between = Instant::now();
    while Instant::now() <= between {}
    session.add_torrent(torrent("late", 1)).unwrap();

    let epoch = between + RECHOKE_PERIOD;
    let due: Vec<bool> = session
        .torrents
        .iter()
        .map(|(_, s)| s.torrent.rechoke_due(epoch))
        .collect();
    assert_eq!(due, [true, false]);
    session.rechoke(epoch);
    let next = epoch + RECHOKE_PERIOD;
    for (_, slot) in &session.torrents {
        assert!(!slot.torrent.rechoke_due(next - Duration::from_nanos(1)));
        assert!(slot.torrent.rechoke_due(next));
    }
}

#[test]
fn the_start_up_check_shares_one_budget_per_pass_among_all_torrents() {
    let dir = TempDir::new("check-budget");
    let mut session = session(&dir, PIECE_LEN as u32);
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        // Sparse: read as zeros (no piece matches), holding nothing to lose.
        let file = std::fs::File::create(dir.0.join(name)).unwrap();
        file.set_len(2 * PIECE_LEN as u64).unwrap();
        ids.push(session.add_torrent(torrent(name, 2)).unwrap());
    }
    let hashed = |session: &Session| -> Vec<u32> {
        ids.iter()
            .map(|&id| session.torrent_stats(id).unwrap().pieces_checked)
            .collect()
    };
    // One piece's worth per pass, for the two torrents together, in order.
    let now = Instant::now();
    for expected in [[1, 0], [2, 0], [2, 1], [2, 2]] {
        session.check_existing_data(now);
        assert_eq!(hashed(&session), expected);
    }
    assert!(session.torrents.iter().all(|(_, s)| s.checking.is_none()));
}

#[test]
fn a_second_session_on_one_destination_runs_its_dht_node_with_a_fresh_id_and_saves_nothing() {
    let dir = TempDir::new("dht-two");
    let first = session(&dir, super::DEFAULT_CHECK_BYTES_PER_PASS);
    let second = session(&dir, super::DEFAULT_CHECK_BYTES_PER_PASS);
    let (one, two) = (first.dht.as_ref().unwrap(), second.dht.as_ref().unwrap());
    assert!(one.state_path.is_some(), "the first holds the saved state");
    assert!(two.state_path.is_none(), "the second leaves it alone");
    assert_ne!(one.node.id(), two.node.id());
    drop(first);
    let third = session(&dir, super::DEFAULT_CHECK_BYTES_PER_PASS);
    assert!(
        third.dht.as_ref().unwrap().state_path.is_some(),
        "free again once the first is gone"
    );
}
