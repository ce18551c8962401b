//! The smart ban against real sockets: pollen downloads from an honest
//! [`ScriptedSeeder`], a poisoner that answers every request with random
//! bytes, and a peer that keeps sending PIECEs nobody asked for.
//!
//! With multi-block pieces, pollen asks both the honest seeder and the
//! poisoner for blocks of the same piece, so pieces fail with blocks from
//! two peers. The scenario is run many times in a row because the mix is
//! different every run; in every run:
//! - the files end up byte-identical to the payload;
//! - the honest seeder never gets a strike (it used to be banned for the
//!   poisoner's blocks, stalling the download at ~95 %);
//! - the poisoner is banned once its blocks are identified;
//! - the flooding peer is dropped for its unrequested blocks (random bytes
//!   for pieces pollen has already verified: had pollen written one, the
//!   files would differ), and never struck (what it was asked for was good).

mod common;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::process::{assert_same_tree, wait_for, Pollen};
use common::scripted_peer::{stamp_port, ScriptedSeeder, SeederBehavior, SEEDER_PEER_ID};
use common::{seeded_torrent, TempDir};
use pollen::bitfield::Bitfield;
use pollen::metainfo::Metainfo;

/// Runs of the whole scenario: each mixes blocks differently.
const RUNS: usize = 8;

/// One run, start to exit (3 MiB at the 2 MiB/s `--max-down` takes about
/// two seconds; the slack covers a loaded CI machine).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// 3 MiB: in 256 KiB pieces (16 blocks each, so nearly every piece gets
/// blocks from both seeders), or in 16 KiB pieces (one block each).
const FILES: &[(&str, usize, u64)] = &[("poisoned/data.bin", 3 * 1024 * 1024, 11)];

fn leecher_args(torrent: &Path, dest: &Path, peers: &[SocketAddr]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        torrent.into(),
        "--dest".into(),
        dest.into(),
        "--no-tracker".into(),
        "-p".into(),
        "0".into(),
        "-v".into(),
        // Paced requests: every peer keeps getting some all through the
        // download, so the poisoner's blocks mix with the honest ones
        // however fast the honest seeder is.
        "--max-down".into(),
        "2M".into(),
    ];
    for peer in peers {
        args.push("--peer".into());
        args.push(peer.to_string().into());
    }
    args
}

#[test]
fn honest_seeder_is_never_struck_and_the_poisoner_is_banned() {
    let tmp = TempDir::new("smart-ban");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(256 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let mut smart_strikes = 0;
    for run in 0..RUNS {
        let honest = ScriptedSeeder::start(&meta, &seed, SeederBehavior::Honest);
        let poisoner = ScriptedSeeder::start(&meta, &seed, SeederBehavior::RandomBytes);
        // The flooder has the even pieces; pollen tells it (HAVE) about the
        // odd ones it verifies, and those are the ones it floods.
        let mut evens = Bitfield::new(meta.layout.piece_count());
        for piece in (0..meta.layout.piece_count()).step_by(2) {
            evens.set(piece);
        }
        let flooder = ScriptedSeeder::start_with_pieces(
            &meta,
            &seed,
            SeederBehavior::UnrequestedFlood,
            evens,
        );
        assert_ne!(
            stamp_port(SEEDER_PEER_ID, honest.port()),
            stamp_port(SEEDER_PEER_ID, poisoner.port())
        );
        let dest = tmp.path().join(format!("run{run}"));
        let peers = [honest.addr(), poisoner.addr(), flooder.addr()];
        let mut pollen = Pollen::start(leecher_args(&torrent, &dest, &peers));
        let status = pollen.wait(RUN_LIMIT);
        let log = pollen.stderr();
        assert!(status.success(), "run {run}: {status}\n{log}");
        assert_same_tree(&seed, &dest);

        let honest_strike = format!("{}: strike", honest.addr());
        let honest_ban = format!("{}: banned", honest.addr());
        assert!(
            !log.contains(&honest_strike) && !log.contains(&honest_ban),
            "run {run}: the honest seeder was struck:\n{log}"
        );
        let flooder_strike = format!("{}: strike", flooder.addr());
        assert!(
            !log.contains(&flooder_strike),
            "run {run}: the flooder's requested blocks were good, yet it was struck:\n{log}"
        );
        assert!(
            log.contains(&format!("{}: banned", poisoner.addr())),
            "run {run}: the poisoner was not banned:\n{log}"
        );
        assert!(
            log.contains(&format!("{} (outgoing): dropped: sent", flooder.addr()))
                && log.contains("blocks we never asked for"),
            "run {run}: the flooder was not dropped for its unrequested blocks:\n{log}"
        );
        smart_strikes += log.matches("(smart ban)").count();
        // Once banned, the poisoner is never dialled again.
        assert_eq!(poisoner.connections(), 1, "run {run}");
        assert!(wait_for(Duration::from_secs(5), || poisoner
            .open_connections()
            == 0));
    }
    // Pieces with blocks from both seeders did fail, and were judged block
    // by block (not only pieces the poisoner sent alone).
    println!("smart-ban verdicts over {RUNS} runs: {smart_strikes}");
    assert!(
        smart_strikes > 0,
        "no piece ever mixed the two seeders' blocks"
    );
}

#[test]
fn a_poisoner_alone_with_single_block_pieces_is_banned_and_the_honest_seeder_finishes() {
    // 16 KiB pieces: every piece has one sender, so blame is immediate.
    let tmp = TempDir::new("smart-ban-single");
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(16 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let honest = ScriptedSeeder::start(&meta, &seed, SeederBehavior::Honest);
    let poisoner = ScriptedSeeder::start(&meta, &seed, SeederBehavior::RandomBytes);
    let dest = tmp.path().join("dest");
    let peers = [honest.addr(), poisoner.addr()];
    let mut pollen = Pollen::start(leecher_args(&torrent, &dest, &peers));
    let status = pollen.wait(RUN_LIMIT);
    let log = pollen.stderr();
    assert!(status.success(), "{status}\n{log}");
    assert_same_tree(&seed, &dest);
    assert!(
        !log.contains(&format!("{}: strike", honest.addr())),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: banned", poisoner.addr())),
        "{log}"
    );
}
