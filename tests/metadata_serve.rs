//! A pollen seeder serves its metadata (BEP 9 over BEP 10) to a peer that
//! knows nothing but the info-hash, as a client given only a magnet link.
//!
//! The peer here speaks only the wire, over a blocking socket on
//! 127.0.0.1: the handshake with the extension bit, an extension handshake
//! offering `ut_metadata`, a request for every metadata piece; it frames
//! messages by hand (it does not know the piece count, so it cannot use
//! pollen's frame limits) and decodes the `ut_metadata` payloads with
//! pollen's codec. The assembled bytes must hash to the info-hash and be
//! exactly the `info` dictionary of the `.torrent` file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::process::Pollen;
use common::{write_tree, TempDir};
use pollen::bencode::{self, Limits};
use pollen::create::{create_torrent, CreateOptions};
use pollen::hash::Sha1Hash;
use pollen::metadata::{piece_count, MetadataMessage, METADATA_PIECE_LEN};
use pollen::metainfo::Metainfo;
use pollen::wire::{Handshake, HANDSHAKE_LEN};

/// The id under which this peer receives `ut_metadata` messages: not
/// pollen's, so a reply sent under the wrong id would show.
const OUR_UT_METADATA: u8 = 3;
/// The extended message id (BEP 10).
const EXTENDED: u8 = 20;
/// Longest frame this peer reads (a metadata piece is 16 KiB plus a
/// small header; a bitfield of this test's torrents is far smaller).
const MAX_FRAME_LEN: usize = 64 * 1024;
/// How long the whole exchange may take.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(20);

/// Files with long names, so the info dictionary spans several 16 KiB
/// metadata pieces while the payload stays small.
fn many_files(count: usize) -> Vec<(String, usize, u64)> {
    (0..count)
        .map(|i| {
            let name = format!("album/track-{i:04}-with-a-long-descriptive-name.dat");
            (name, 700 + i % 300, i as u64)
        })
        .collect()
}

/// Writes the files under `root/seed`, a torrent of `root/seed/album` to
/// `root/t.torrent`, and returns the torrent's path and metainfo.
fn album_torrent(root: &Path, private: bool) -> (std::path::PathBuf, Metainfo) {
    let files = many_files(500);
    let files: Vec<(&str, usize, u64)> =
        files.iter().map(|(n, l, s)| (n.as_str(), *l, *s)).collect();
    write_tree(&root.join("seed"), &files);
    let options = CreateOptions {
        piece_len: Some(16 * 1024),
        private,
        ..Default::default()
    };
    let bytes = create_torrent(&root.join("seed/album"), &options).unwrap();
    let torrent = root.join("t.torrent");
    std::fs::write(&torrent, &bytes).unwrap();
    (torrent, Metainfo::from_bytes(&bytes).unwrap())
}

/// A peer that knows only an info-hash, on one connection to pollen.
struct MagnetPeer {
    stream: TcpStream,
    deadline: Instant,
}

/// What pollen said in its extension handshake.
struct TheirOffer {
    ut_metadata: Option<u8>,
    metadata_size: Option<i64>,
}

impl MagnetPeer {
    /// Connects, exchanges handshakes (ours with the extension bit) and
    /// sends our extension handshake.
    fn connect(port: u16, info_hash: [u8; 20]) -> MagnetPeer {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut peer = MagnetPeer {
            stream,
            deadline: Instant::now() + EXCHANGE_LIMIT,
        };
        let ours = Handshake::new(info_hash, *b"-MP0001-magnetpeer00").with_extensions();
        peer.stream.write_all(&ours.encode()).unwrap();
        let mut theirs = [0u8; HANDSHAKE_LEN];
        peer.stream.read_exact(&mut theirs).unwrap();
        let theirs = Handshake::decode(&theirs).unwrap().unwrap();
        assert_eq!(theirs.info_hash, info_hash);
        assert!(theirs.supports_extensions(), "pollen sets the BEP 10 bit");
        let ext = format!("d1:md11:ut_metadatai{OUR_UT_METADATA}ee1:v10:magnetpeere");
        peer.send_extended(0, ext.as_bytes());
        peer
    }

    fn send_extended(&mut self, id: u8, payload: &[u8]) {
        let len = u32::try_from(payload.len() + 2).unwrap();
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&[EXTENDED, id]);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next frame's message id and payload (keep-alives skipped).
    fn next_frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            assert!(Instant::now() < self.deadline, "exchange took too long");
            let mut prefix = [0u8; 4];
            self.stream.read_exact(&mut prefix).unwrap();
            let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap();
            assert!(len <= MAX_FRAME_LEN, "frame of {len} bytes");
            if len == 0 {
                continue;
            }
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body).unwrap();
            let rest = body.split_off(1);
            return (body[0], rest);
        }
    }

    /// The next extended message: (extended id, payload).
    fn next_extended(&mut self) -> (u8, Vec<u8>) {
        loop {
            let (id, mut body) = self.next_frame();
            if id == EXTENDED && !body.is_empty() {
                let payload = body.split_off(1);
                return (body[0], payload);
            }
        }
    }

    /// Reads until pollen's extension handshake and returns its offer.
    fn their_offer(&mut self) -> TheirOffer {
        let (id, payload) = self.next_extended();
        assert_eq!(id, 0, "the first extended message is the handshake");
        let value = bencode::decode(&payload, Limits::MESSAGE).unwrap();
        let dict = value.as_dict().unwrap();
        TheirOffer {
            ut_metadata: dict
                .get_dict(b"m")
                .and_then(|m| m.get_int(b"ut_metadata"))
                .map(|n| u8::try_from(n).unwrap()),
            metadata_size: dict.get_int(b"metadata_size"),
        }
    }

    /// Sends a `ut_metadata` request for `piece` under pollen's id `theirs`
    /// and returns the reply, which must come under our id.
    fn ask(&mut self, theirs: u8, piece: u32) -> Vec<u8> {
        self.send_extended(theirs, &MetadataMessage::Request { piece }.encode());
        let (id, payload) = self.next_extended();
        assert_eq!(id, OUR_UT_METADATA, "replies come under our id");
        payload
    }
}

#[test]
fn a_peer_with_only_the_info_hash_gets_the_info_dictionary_from_a_seeder() {
    let dir = TempDir::new("metaserve");
    let (torrent, meta) = album_torrent(dir.path(), false);
    let total = meta.info_bytes.len();
    assert!(total > 2 * METADATA_PIECE_LEN, "info dict of {total} bytes");
    let mut seeder = Pollen::seeder(&torrent, &dir.path().join("seed"), &[]);

    let mut peer = MagnetPeer::connect(seeder.port(), meta.info_hash.0);
    let offer = peer.their_offer();
    let theirs = offer.ut_metadata.expect("pollen offers ut_metadata");
    assert_ne!(theirs, 0);
    assert_eq!(offer.metadata_size, Some(total as i64));

    let pieces = piece_count(u32::try_from(total).unwrap());
    let mut assembled = Vec::new();
    for piece in 0..pieces {
        let reply = peer.ask(theirs, piece);
        match MetadataMessage::decode(&reply).unwrap() {
            MetadataMessage::Data {
                piece: got,
                total_size,
                data,
            } => {
                assert_eq!(got, piece);
                assert_eq!(total_size as usize, total);
                assert!(data.len() == METADATA_PIECE_LEN || piece + 1 == pieces);
                assembled.extend_from_slice(data);
            }
            other => panic!("piece {piece}: {other:?}"),
        }
    }
    assert_eq!(Sha1Hash::of(&assembled), meta.info_hash);
    assert_eq!(assembled, meta.info_bytes, "the raw info dictionary");

    let past_the_end = peer.ask(theirs, pieces);
    assert_eq!(
        MetadataMessage::decode(&past_the_end).unwrap(),
        MetadataMessage::Reject { piece: pieces }
    );
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
}

#[test]
fn a_private_torrent_offers_no_metadata_and_rejects_requests() {
    let dir = TempDir::new("metaserve-private");
    let (torrent, meta) = album_torrent(dir.path(), true);
    let mut seeder = Pollen::seeder(&torrent, &dir.path().join("seed"), &[]);

    let mut peer = MagnetPeer::connect(seeder.port(), meta.info_hash.0);
    let offer = peer.their_offer();
    assert_eq!(offer.ut_metadata, None);
    assert_eq!(offer.metadata_size, None);
    // A peer that asks anyway, under the id pollen uses for everyone.
    let reply = peer.ask(pollen::wire::extension::UT_METADATA_ID, 0);
    assert_eq!(
        MetadataMessage::decode(&reply).unwrap(),
        MetadataMessage::Reject { piece: 0 }
    );
}
