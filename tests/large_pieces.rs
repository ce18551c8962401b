//! Pieces larger than one pass's hashing budget are verified a slice per
//! pass (`verify_pieces`), so a 512 MiB piece never freezes the loop; the
//! download still completes byte-identical, and a poisoner's bad blocks in
//! such a piece are still caught and blamed on it alone.
//!
//! The budget is `Config::check_bytes_per_pass`; here it is set to 100,000
//! bytes against 256 KiB pieces, so every piece takes three passes.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::process::assert_same_tree;
use common::scripted_peer::{ScriptedSeeder, SeederBehavior};
use common::{seeded_torrent, TempDir};
use pollen::metainfo::Metainfo;
use pollen::session::{Config, Outcome, Session};
use pollen::trace::{Filter, Kind};

const FILES: &[(&str, usize, u64)] = &[("large/data.bin", 3 * 1024 * 1024, 17)];

#[test]
fn pieces_larger_than_a_pass_are_verified_across_passes_and_poison_is_still_caught() {
    let tmp = TempDir::new("large-pieces");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(256 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let honest = ScriptedSeeder::start(&meta, &seed, SeederBehavior::Honest);
    let poisoner = ScriptedSeeder::start(&meta, &seed, SeederBehavior::RandomBytes);
    let dest = tmp.path().join("dest");
    let config = Config {
        dest: dest.clone(),
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        use_trackers: false,
        peers: vec![honest.addr(), poisoner.addr()],
        check_bytes_per_pass: 100_000,
        // Paced, so both seeders keep getting requests.
        max_down: Some(2 * 1024 * 1024),
        trace: Some((
            Some(tmp.path().join("trace.txt")),
            Filter::new(Some(vec![Kind::Pick]), None),
        )),
        ..Config::default()
    };
    let mut session = Session::new(meta, config).unwrap();
    assert_eq!(session.run().unwrap(), Outcome::Complete);
    assert_same_tree(&seed, &dest);
    let stats = session.stats();
    assert!(
        stats.hash_failures > 0,
        "the poisoner's blocks never failed a check"
    );
    drop(session);
    // Every piece was hashed by the verify phase, none at once on arrival.
    let trace = std::fs::read_to_string(tmp.path().join("trace.txt")).unwrap();
    let hashes: Vec<&str> = trace.lines().filter(|l| l.contains(" hash #")).collect();
    assert!(hashes.len() >= 12, "{} hash lines", hashes.len());
    assert!(
        hashes.iter().all(|l| l.contains("verify_pieces")),
        "{hashes:#?}"
    );
}
