//! The scripted peer tested against itself: a `ProbeLeecher` downloads from
//! each kind of `ScriptedSeeder` and sees exactly the behaviour scripted, so
//! later tests can trust both ends when one of them is pollen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::scripted_peer::{
    wait_until, MetadataBehavior, OwnedMessage, PeerError, ProbeLeecher, ScriptedSeeder,
    SeederBehavior, OVERSIZED_FRAME_LEN, OVERSIZED_METADATA_LEN, PROBE_PEER_ID, SEEDER_PEER_ID,
    SEEDER_UT_METADATA_ID,
};
use common::{write_tree, TempDir};
use pollen::bitfield::Bitfield;
use pollen::create::{create_torrent, CreateOptions};
use pollen::hash::Sha1Hash;
use pollen::metadata::MetadataMessage;
use pollen::metainfo::Metainfo;
use pollen::wire::extension::ExtHandshake;
use pollen::wire::{Message, WireError};

/// A short wait for things that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// A generous wait for things that must happen (they take milliseconds).
const SOON: Duration = Duration::from_secs(3);

/// About 200 KB in three files (one nested), cut into `piece_len` pieces
/// that straddle the files; the data lives under the returned directory.
fn share(piece_len: u32) -> (TempDir, Metainfo) {
    let tmp = TempDir::new("scripted-peer");
    write_tree(
        tmp.path(),
        &[
            ("share/a.bin", 70_000, 31),
            ("share/c.txt", 30_123, 32),
            ("share/sub/b.bin", 100_001, 33),
        ],
    );
    let options = CreateOptions {
        piece_len: Some(piece_len),
        ..CreateOptions::default()
    };
    let torrent = create_torrent(&tmp.path().join("share"), &options).unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    (tmp, meta)
}

/// The torrent's byte stream, read from the files in torrent order.
fn stream_of(tmp: &TempDir, meta: &Metainfo) -> Vec<u8> {
    meta.files
        .iter()
        .flat_map(|f| fs::read(tmp.path().join(&f.path)).unwrap())
        .collect()
}

/// Downloads every piece through `probe` and returns whether each matched its hash.
fn download_all(probe: &mut ProbeLeecher, meta: &Metainfo) -> Vec<(Vec<u8>, bool)> {
    meta.layout
        .pieces()
        .map(|p| {
            let data = probe.download_piece(&meta.layout, p.get()).unwrap();
            let ok = Some(&Sha1Hash::of(&data)) == meta.piece_hash(p);
            (data, ok)
        })
        .collect()
}

#[test]
fn honest_seeder_serves_every_piece_with_its_hash() {
    let (tmp, meta) = share(16 * 1024);
    assert_eq!(meta.layout.piece_count(), 13);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    assert_eq!(probe.remote().unwrap().peer_id, seeder.peer_id());
    assert_eq!(seeder.peer_id()[..15], SEEDER_PEER_ID[..15]);
    assert!(probe.bitfield().is_complete());

    let pieces = download_all(&mut probe, &meta);
    assert!(pieces.iter().all(|(_, ok)| *ok));
    let downloaded: Vec<u8> = pieces.into_iter().flat_map(|(data, _)| data).collect();
    assert!(downloaded == stream_of(&tmp, &meta), "bytes differ");

    assert_eq!(seeder.blocks_served(), 13);
    assert_eq!(seeder.requests().len(), 13);
    assert_eq!(seeder.peer_ids(), vec![probe.peer_id()]);
    assert_eq!(probe.peer_id()[..15], PROBE_PEER_ID[..15]);
    assert_eq!((seeder.connections(), seeder.handshakes()), (1, 1));
    assert_eq!(seeder.interested(), 1);
    assert!(seeder.errors().is_empty(), "{:?}", seeder.errors());
}

#[test]
fn honest_seeder_serves_pieces_of_several_blocks() {
    let (tmp, meta) = share(64 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    let pieces = download_all(&mut probe, &meta);
    assert!(pieces.iter().all(|(_, ok)| *ok));
    // 200,124 bytes: 12 full blocks and a short one, in 4 pieces.
    assert_eq!(seeder.blocks_served(), 13);
    assert!(seeder.errors().is_empty(), "{:?}", seeder.errors());
}

/// The id the probe receives `ut_metadata` under (BEP 10 `m`).
const PROBE_UT_METADATA_ID: u8 = 5;

/// The next extended message (BEP 10, message id 20) through `probe`: (extended id, payload).
fn next_extended(probe: &mut ProbeLeecher) -> (u8, Vec<u8>) {
    loop {
        match probe.next_message().unwrap() {
            OwnedMessage::Other { id: 20, payload } if !payload.is_empty() => {
                return (payload[0], payload[1..].to_vec())
            }
            OwnedMessage::KeepAlive | OwnedMessage::Bitfield(_) => continue,
            other => panic!("expected an extended message, got {}", other.name()),
        }
    }
}

#[test]
fn metadata_seeders_announce_and_answer_ut_metadata_as_scripted() {
    let (tmp, meta) = share(16 * 1024);
    let info = &meta.info_bytes;
    assert!(info.len() < 16 * 1024, "one metadata piece");
    for behavior in [
        MetadataBehavior::Honest,
        MetadataBehavior::Corrupt,
        MetadataBehavior::Oversized,
        MetadataBehavior::RejectAll,
    ] {
        let seeder = ScriptedSeeder::start_with_metadata(
            &meta,
            tmp.path(),
            SeederBehavior::Honest,
            behavior,
        );
        let mut probe = ProbeLeecher::connect(seeder.port(), meta.info_hash.0, 13).unwrap();
        assert!(probe.read_handshake().unwrap().supports_extensions());
        let (id, payload) = next_extended(&mut probe);
        assert_eq!(id, 0, "{behavior:?}: the extension handshake comes first");
        let theirs = ExtHandshake::parse(&payload).unwrap();
        assert_eq!(theirs.ut_metadata, Some(SEEDER_UT_METADATA_ID));
        let size = match behavior {
            MetadataBehavior::Oversized => OVERSIZED_METADATA_LEN,
            _ => info.len(),
        };
        assert_eq!(theirs.metadata_size, Some(size as u64), "{behavior:?}");

        let ours = format!("d1:md11:ut_metadatai{PROBE_UT_METADATA_ID}eee");
        probe
            .send(&Message::Extended {
                id: 0,
                payload: ours.as_bytes(),
            })
            .unwrap();
        let request = MetadataMessage::Request { piece: 0 }.encode();
        probe
            .send(&Message::Extended {
                id: SEEDER_UT_METADATA_ID,
                payload: &request,
            })
            .unwrap();
        let (id, reply) = next_extended(&mut probe);
        assert_eq!(
            id, PROBE_UT_METADATA_ID,
            "{behavior:?}: replies under our id"
        );
        match (behavior, MetadataMessage::decode(&reply).unwrap()) {
            (MetadataBehavior::Honest, MetadataMessage::Data { data, .. }) => {
                assert!(data == &info[..], "the info dictionary as it is");
            }
            (MetadataBehavior::Corrupt, MetadataMessage::Data { data, .. }) => {
                assert_eq!(data.len(), info.len());
                assert_eq!(data[0], !info[0]);
                assert!(data[1..] == info[1..]);
            }
            (
                MetadataBehavior::Oversized | MetadataBehavior::RejectAll,
                MetadataMessage::Reject { piece: 0 },
            ) => {}
            (_, other) => panic!("{behavior:?}: {other:?}"),
        }
        assert_eq!(seeder.metadata_requests(), 1);
        assert!(seeder.errors().is_empty(), "{:?}", seeder.errors());
    }
}

#[test]
fn corrupt_seeder_pieces_fail_their_hash_check() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::CorruptPieces);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    let pieces = download_all(&mut probe, &meta);
    assert!(pieces.iter().all(|(_, ok)| !*ok));
}

#[test]
fn wrong_info_hash_seeder_answers_for_another_torrent() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::WrongInfoHash);
    let ours = meta.info_hash.0;

    let mut probe = ProbeLeecher::connect(seeder.port(), ours, 13).unwrap();
    let theirs = probe.read_handshake().unwrap();
    assert_ne!(theirs.info_hash, ours);

    match ProbeLeecher::open(seeder.port(), &meta) {
        Err(PeerError::WrongInfoHash { got }) => assert_eq!(got, theirs.info_hash),
        other => panic!("expected a wrong info-hash, got {:?}", other.err()),
    }
    // Our handshake was right: the seeder counted both and carries on.
    assert_eq!(seeder.handshakes(), 2);
    assert!(!probe.is_closed_within(QUIET));
}

#[test]
fn oversized_frame_seeder_breaks_the_codec_limit() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::OversizedFrame);
    match ProbeLeecher::open(seeder.port(), &meta) {
        Err(PeerError::Wire(WireError::FrameTooLong { len, .. })) => {
            assert_eq!(len, OVERSIZED_FRAME_LEN);
        }
        other => panic!("expected FrameTooLong, got {:?}", other.err()),
    }
    // The probe was dropped, closing the connection the seeder kept reading.
    assert!(seeder.wait_for_disconnect(SOON));
}

#[test]
fn bad_bitfield_seeder_breaks_the_bitfield_length() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::BadBitfield);
    match ProbeLeecher::open(seeder.port(), &meta) {
        Err(PeerError::Wire(WireError::BitfieldLength { piece_count, .. })) => {
            assert_eq!(piece_count, 13);
        }
        other => panic!("expected BitfieldLength, got {:?}", other.err()),
    }
}

#[test]
fn silent_seeder_unchokes_but_never_answers() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Silent);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    assert!(!probe.is_choked());
    probe.request(0, 0, 16 * 1024).unwrap();
    probe.set_timeout(QUIET);
    assert!(matches!(probe.read_piece(), Err(PeerError::Timeout)));
    assert!(wait_until(Instant::now() + SOON, || seeder
        .requests()
        .len()
        == 1));
    assert_eq!(seeder.blocks_served(), 0);
}

#[test]
fn choke_after_first_block_seeder_chokes_for_good() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::ChokeAfterFirstBlock);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    probe.request(0, 0, 16 * 1024).unwrap();
    probe.request(1, 0, 16 * 1024).unwrap();
    let first = probe.read_piece().unwrap();
    assert_eq!((first.piece, first.begin), (0, 0));
    assert!(matches!(probe.read_piece(), Err(PeerError::Choked)));
    assert!(probe.is_choked());
    assert!(wait_until(Instant::now() + SOON, || seeder
        .requests_while_choked()
        == 1));

    // Asking again does not help.
    probe
        .send(&pollen::wire::Message::Interested)
        .expect("send INTERESTED");
    probe.set_timeout(QUIET);
    assert!(matches!(probe.next_message(), Err(PeerError::Timeout)));
    assert_eq!(seeder.blocks_served(), 1);
}

#[test]
fn unrequested_piece_seeder_sends_a_block_right_after_unchoke() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::UnrequestedPiece);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    match probe.next_message().unwrap() {
        OwnedMessage::Piece { piece, begin, data } => {
            assert_eq!((piece, begin, data.len()), (0, 0, 16 * 1024));
        }
        other => panic!("expected an unrequested PIECE, got {}", other.name()),
    }
    assert!(seeder.requests().is_empty());
    // Then it serves honestly.
    let data = probe.download_piece(&meta.layout, 3).unwrap();
    assert_eq!(
        Some(&Sha1Hash::of(&data)),
        meta.piece_hash(meta.layout.piece(3).unwrap())
    );
}

#[test]
fn disconnecting_seeder_closes_after_its_blocks() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::DisconnectAfterBlocks(2));
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    for piece in 0..3 {
        probe.request(piece, 0, 16 * 1024).unwrap();
    }
    assert_eq!(probe.read_piece().unwrap().piece, 0);
    assert_eq!(probe.read_piece().unwrap().piece, 1);
    assert!(matches!(probe.read_piece(), Err(PeerError::Closed)));
    // The seeder hung up itself: that is not the remote disconnecting.
    assert!(wait_until(Instant::now() + SOON, || seeder
        .open_connections()
        == 0));
    assert!(!seeder.saw_disconnect());
    assert!(seeder.errors().is_empty(), "{:?}", seeder.errors());
}

#[test]
fn partial_seeder_announces_and_serves_only_its_pieces() {
    let (tmp, meta) = share(16 * 1024);
    let mut have = Bitfield::new(13);
    have.set(0);
    have.set(12);
    let seeder = ScriptedSeeder::start_with_pieces(&meta, tmp.path(), SeederBehavior::Honest, have);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    assert_eq!(probe.bitfield().iter_ones().collect::<Vec<_>>(), [0, 12]);

    probe.request(1, 0, 16 * 1024).unwrap();
    let last = probe.download_piece(&meta.layout, 12).unwrap();
    assert_eq!(
        Some(&Sha1Hash::of(&last)),
        meta.piece_hash(meta.layout.piece(12).unwrap())
    );
    assert_eq!(seeder.bad_requests(), 1);
    assert_eq!(seeder.blocks_served(), 1);
}

#[test]
fn seeder_counts_requests_outside_the_torrent_and_serves_on() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    probe.request(13, 0, 16 * 1024).unwrap(); // no such piece
    probe.request(0, 0, 32 * 1024).unwrap(); // over one block
    probe.request(0, 16_000, 1_000).unwrap(); // past the piece's end
    probe.request(12, 0, 3_000).unwrap(); // the last piece holds 3,900 bytes: fine
    let block = probe.read_piece().unwrap();
    assert_eq!((block.piece, block.data.len()), (12, 3_000));
    assert_eq!(seeder.bad_requests(), 3);
}

#[test]
fn seeder_closes_on_an_oversized_prefix_from_the_remote() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    probe.send_raw(&OVERSIZED_FRAME_LEN.to_be_bytes()).unwrap();
    assert!(probe.is_closed_within(SOON));
    // The seeder files the error after closing the socket.
    assert!(wait_until(Instant::now() + SOON, || !seeder
        .errors()
        .is_empty()));
    let errors = seeder.errors();
    assert!(
        errors.len() == 1 && errors[0].contains("FrameTooLong"),
        "{errors:?}"
    );
    assert!(!seeder.saw_disconnect());
}

#[test]
fn seeder_drops_a_handshake_for_another_torrent() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::connect(seeder.port(), [0x55; 20], 13).unwrap();
    assert!(probe.is_closed_within(SOON));
    assert_eq!((seeder.connections(), seeder.handshakes()), (1, 0));
    assert!(wait_until(Instant::now() + SOON, || seeder
        .errors()
        .first()
        .is_some_and(|e| e.contains("WrongInfoHash"))));
}

#[test]
fn seeder_sees_the_probe_disconnect() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    assert_eq!(seeder.open_connections(), 1);
    assert!(!seeder.saw_disconnect());
    drop(probe);
    assert!(seeder.wait_for_disconnect(SOON));
    assert!(wait_until(Instant::now() + SOON, || seeder
        .open_connections()
        == 0));
}

#[test]
fn probe_sees_the_seeder_stop_and_drop_is_prompt() {
    let (tmp, meta) = share(16 * 1024);
    let seeder = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let mut probe = ProbeLeecher::open(seeder.port(), &meta).unwrap();
    assert!(!probe.is_closed_within(QUIET));

    // Dropping joins every thread (each notices the stop flag within one
    // read poll); the probe then sees its connection closed.
    drop(seeder);
    assert!(probe.is_closed_within(SOON));
}

#[test]
fn seeders_and_probes_in_one_test_are_distinct_peers() {
    let (tmp, meta) = share(16 * 1024);
    let a = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    let b = ScriptedSeeder::start(&meta, tmp.path(), SeederBehavior::Honest);
    assert_ne!(a.peer_id(), b.peer_id());
    let p = ProbeLeecher::open(a.port(), &meta).unwrap();
    let q = ProbeLeecher::open(a.port(), &meta).unwrap();
    assert_ne!(p.peer_id(), q.peer_id());
    assert_eq!(a.peer_ids(), vec![p.peer_id(), q.peer_id()]);
}
