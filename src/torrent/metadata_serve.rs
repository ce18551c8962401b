//! Serving our metadata (BEP 9, the seeding side of `ut_metadata`): a peer
//! that knows only the info-hash (a magnet link) asks us for the info
//! dictionary in 16 KiB pieces, and we answer each `request` with a `data`
//! message or a `reject`.
//!
//! Layer 0: part of the sans-IO [`Torrent`]; time is passed in. The bytes
//! served are the torrent's raw info dictionary exactly as it was in the
//! `.torrent` file ([`crate::metainfo::Metainfo::info_bytes`]), so their
//! SHA-1 is the info-hash; a re-encoding could differ.
//!
//! Rules:
//! - Our extension handshake offers `ut_metadata` under
//!   [`UT_METADATA_ID`] with `metadata_size`; every reply goes out under
//!   the id *the peer* announced in its own handshake. A peer that
//!   announced none gets no reply (it could not read one).
//! - A request for a piece past the end gets a `reject`.
//! - Private torrents (BEP 27) do not offer `ut_metadata` and reject every
//!   request. BEP 9 does not forbid serving them, but libtorrent does not
//!   load its metadata extension at all for a private torrent it has the
//!   metadata of, and the point of `private` is that the torrent spreads
//!   only with its `.torrent` file and its tracker.
//! - Amplification is bounded: a request is about 30 bytes and a `data`
//!   message 16 KiB, so one peer gets at most
//!   [`MAX_METADATA_PIECES_PER_WINDOW`] pieces and
//!   [`MAX_METADATA_REJECTS_PER_WINDOW`] rejects per
//!   [`METADATA_REPLY_WINDOW`]; requests past the piece cap are rejected
//!   (BEP 9's answer for "busy"; the asker backs off and asks again), and
//!   past both caps they are dropped, so a flood of requests costs a
//!   bounded amount of output whatever the peer does.
//! - `data` and `reject` messages sent to us are not ours to handle here
//!   (we have the metadata): they are ignored, as are malformed messages
//!   and unknown `msg_type`s (BEP 9: ignore them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{OutMessage, PeerKey, Torrent};
use crate::metadata::{piece_count, MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE_LEN};
use crate::metainfo::Metainfo;
use crate::wire::extension::{self, ExtHandshake, MetadataOffer, UT_METADATA_ID};

/// The window over which metadata replies to one peer are counted.
pub const METADATA_REPLY_WINDOW: Duration = Duration::from_secs(1);

/// Metadata pieces sent to one peer per [`METADATA_REPLY_WINDOW`]: 64 x
/// 16 KiB = 1 MiB/s, so an honest peer gets a typical (tens of KiB) info
/// dictionary at once and even a 10 MiB one in ten seconds, while a peer
/// that asks for the same pieces in a loop cannot make us send more.
pub const MAX_METADATA_PIECES_PER_WINDOW: u32 = 64;

/// Rejects sent to one peer per [`METADATA_REPLY_WINDOW`]; further
/// requests are dropped unanswered. A reject is as small as the request,
/// but a peer that floods requests and never reads must not grow our
/// output queue without bound.
pub const MAX_METADATA_REJECTS_PER_WINDOW: u32 = 64;

/// One peer's side of the metadata exchange, as the core tracks it.
#[derive(Debug, Clone, Default)]
pub(super) struct MetadataPeer {
    /// The id it receives `ut_metadata` messages under (its handshake's
    /// `m.ut_metadata`), if it announced one and has not turned it off.
    ut_metadata: Option<u8>,
    /// When the current reply window began.
    window_start: Option<Instant>,
    /// Pieces sent in the current window.
    pieces_sent: u32,
    /// Rejects sent in the current window.
    rejects_sent: u32,
    /// It sent a well-formed extension handshake (it speaks BEP 10).
    extensions: bool,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// With the piece.
    Data,
    /// With a reject.
    Reject,
    /// Not at all: the peer is over both caps.
    Drop,
}

impl MetadataPeer {
    /// Whether the peer sent us a BEP 10 extension handshake.
    pub(super) fn speaks_extensions(&self) -> bool {
        self.extensions
    }

    /// The id it receives `ut_metadata` messages under, if it offered one.
    pub(super) fn their_id(&self) -> Option<u8> {
        self.ut_metadata
    }

    /// What the caps allow for a request that deserves a piece (`data`)
    /// or a reject, at `now`; counts what it allows.
    fn admit(&mut self, data: bool, now: Instant) -> Reply {
        let expired = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= METADATA_REPLY_WINDOW);
        if expired {
            self.window_start = Some(now);
            self.pieces_sent = 0;
            self.rejects_sent = 0;
        }
        if data && self.pieces_sent < MAX_METADATA_PIECES_PER_WINDOW {
            self.pieces_sent += 1;
            Reply::Data
        } else if self.rejects_sent < MAX_METADATA_REJECTS_PER_WINDOW {
            self.rejects_sent += 1;
            Reply::Reject
        } else {
            Reply::Drop
        }
    }
}

impl Torrent {
    /// Our extension handshake payload: `reqq`, our name, and the
    /// `ut_metadata` offer: with `metadata_size` when we serve metadata,
    /// without it while we fetch it (a magnet link), none for a private
    /// torrent.
    pub(super) fn our_ext_handshake(&self) -> Vec<u8> {
        let offer = match served_metadata(&self.meta) {
            Some(info) => MetadataOffer::Serving(info.len()),
            None if self.fetch.is_some() => MetadataOffer::Asking,
            None => MetadataOffer::None,
        };
        extension::our_handshake_with(
            crate::peer::MAX_QUEUED_REQUESTS,
            super::CLIENT_NAME,
            offer,
            self.pex_offers(),
        )
    }

    /// A BEP 10 extended message from a connected peer: its handshake, or
    /// a `ut_metadata` message under our id. Other ids are ignored.
    pub(super) fn on_extended(&mut self, key: PeerKey, id: u8, payload: &[u8], now: Instant) {
        match id {
            extension::HANDSHAKE_ID => self.on_ext_handshake(key, payload),
            UT_METADATA_ID => self.on_ut_metadata(key, payload, now),
            extension::UT_PEX_ID => self.on_ut_pex(key, payload),
            _ => {}
        }
    }

    /// The peer's extension handshake: its `reqq` and its `ut_metadata` id.
    /// A malformed one is ignored (the peer then speaks no extensions).
    fn on_ext_handshake(&mut self, key: PeerKey, payload: &[u8]) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let ext = match ExtHandshake::parse(payload) {
            Ok(ext) => ext,
            Err(e) => return log::debug!("{}: bad extension handshake ignored: {e}", peer.addr),
        };
        peer.metadata.extensions = true;
        peer.state
            .set_max_requests(ext.reqq.and_then(|n| usize::try_from(n).ok()));
        // BEP 10: `m` is additive; 0 turns the extension off.
        if let Some(id) = ext.ut_metadata {
            peer.metadata.ut_metadata = (id != 0).then_some(id);
        }
        log::debug!(
            "{}: extension handshake: client {:?}, reqq {:?}, ut_metadata {:?}, metadata_size {:?}",
            peer.addr,
            ext.client,
            ext.reqq,
            ext.ut_metadata,
            ext.metadata_size
        );
        // A magnet's core fetches from every peer that offers the metadata.
        if let (Some(_), Some(size)) = (peer.metadata.ut_metadata, ext.metadata_size) {
            self.offer_metadata(key, size);
        }
        self.on_pex_handshake(key, &ext);
    }

    /// A `ut_metadata` message: a request is answered (see the module doc);
    /// anything else is ignored.
    fn on_ut_metadata(&mut self, key: PeerKey, payload: &[u8], now: Instant) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let addr = peer.addr;
        let Some(their_id) = peer.metadata.ut_metadata else {
            log::debug!("{addr}: ut_metadata message before it announced the extension, ignored");
            return;
        };
        let piece = match MetadataMessage::decode(payload) {
            Ok(MetadataMessage::Request { piece }) => piece,
            Ok(other) if self.fetch.is_some() => return self.on_metadata_reply(key, other, now),
            Ok(other) => {
                log::debug!("{addr}: unexpected ut_metadata message ignored: {other:?}");
                return;
            }
            Err(e) => {
                log::debug!("{addr}: bad ut_metadata message ignored: {e}");
                return;
            }
        };
        let meta = Arc::clone(&self.meta);
        let data = metadata_piece(&meta, piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let message = match (peer.metadata.admit(data.is_some(), now), data) {
            (Reply::Data, Some((total_size, data))) => MetadataMessage::Data {
                piece,
                total_size,
                data,
            },
            (Reply::Drop, _) => {
                log::debug!(
                    "{addr}: ut_metadata request for piece {piece} dropped (over the caps)"
                );
                return;
            }
            _ => MetadataMessage::Reject { piece },
        };
        let payload = message.encode();
        self.send(
            key,
            OutMessage::Extended {
                id: their_id,
                payload,
            },
        );
    }
}

/// The info dictionary we serve, or `None` when we do not serve it: a
/// private torrent, or no raw bytes kept (or more than
/// [`MAX_METADATA_SIZE`], which the torrent size limit already rules out).
fn served_metadata(meta: &Metainfo) -> Option<&[u8]> {
    let info = meta.info_bytes.as_slice();
    let servable = !meta.private && !info.is_empty() && info.len() <= MAX_METADATA_SIZE;
    servable.then_some(info)
}

/// Metadata piece `piece` and the total size, if we serve metadata and
/// the piece exists.
fn metadata_piece(meta: &Metainfo, piece: u32) -> Option<(u32, &[u8])> {
    let info = served_metadata(meta)?;
    let total = u32::try_from(info.len()).ok()?;
    if piece >= piece_count(total) {
        return None;
    }
    let start = usize::try_from(piece)
        .ok()?
        .checked_mul(METADATA_PIECE_LEN)?;
    let end = start.saturating_add(METADATA_PIECE_LEN).min(info.len());
    Some((total, info.get(start..end)?))
}

#[cfg(test)]
mod tests {
    use super::super::sim::test_torrent;
    use super::super::{Action, TorrentConfig};
    use super::*;
    use crate::bitfield::Bitfield;
    use crate::hash::Sha1Hash;
    use crate::metainfo::Metainfo;
    use crate::rng::Rng;
    use crate::wire::{Handshake, Message};

    /// The peer's own `ut_metadata` id: not ours, so a reply sent under
    /// ours would show.
    const THEIR_ID: u8 = 9;
    const PEER: PeerKey = 7;

    /// A seeding core for `meta` with one peer (key 7) that speaks BEP 10.
    fn seeder(meta: Arc<Metainfo>, now: Instant) -> Torrent {
        let count = meta.layout.piece_count();
        let handshake = Handshake::new(meta.info_hash.0, [7; 20]).with_extensions();
        let mut core = Torrent::new(
            meta,
            TorrentConfig::default(),
            Bitfield::full(count),
            Rng::new(3),
            now,
        );
        core.handle_check_done();
        core.handle_handshake(PEER, ([127, 0, 0, 1], 7000).into(), &handshake, now);
        core
    }

    /// A torrent of 2,000 one-KiB pieces: 40,000 bytes of piece hashes, so
    /// an info dictionary of three metadata pieces (the last one short).
    fn three_piece_metadata() -> Arc<Metainfo> {
        let (meta, _) = test_torrent(2000 * 1024, 1024, 4);
        assert_eq!(piece_count(meta.info_bytes.len() as u32), 3);
        meta
    }

    /// The extended messages queued (id, payload), in order; other actions
    /// are left out.
    fn sent_extended(core: &mut Torrent) -> Vec<(u8, Vec<u8>)> {
        std::iter::from_fn(|| core.poll_action())
            .filter_map(|action| match action {
                Action::Send {
                    peer: PEER,
                    message: OutMessage::Extended { id, payload },
                } => Some((id, payload)),
                _ => None,
            })
            .collect()
    }

    fn their_handshake() -> Vec<u8> {
        format!("d1:md11:ut_metadatai{THEIR_ID}ee1:v4:teste").into_bytes()
    }

    fn ask(core: &mut Torrent, piece: u32, now: Instant) {
        let payload = MetadataMessage::Request { piece }.encode();
        core.handle_message(
            PEER,
            Message::Extended {
                id: UT_METADATA_ID,
                payload: &payload,
            },
            now,
        );
    }

    /// The extension handshake the core sends first, parsed.
    fn our_ext_handshake(core: &mut Torrent) -> ExtHandshake {
        let ours = std::iter::from_fn(|| core.poll_action())
            .find_map(|action| match action {
                Action::Send {
                    message: OutMessage::ExtHandshake(payload),
                    ..
                } => Some(payload),
                _ => None,
            })
            .unwrap();
        ExtHandshake::parse(&ours).unwrap()
    }

    fn greet(core: &mut Torrent, now: Instant) {
        let payload = their_handshake();
        core.handle_message(
            PEER,
            Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: &payload,
            },
            now,
        );
    }

    #[test]
    fn our_handshake_offers_ut_metadata_with_the_raw_info_size() {
        let now = Instant::now();
        let meta = three_piece_metadata();
        let mut core = seeder(Arc::clone(&meta), now);
        let parsed = our_ext_handshake(&mut core);
        assert_eq!(parsed.ut_metadata, Some(UT_METADATA_ID));
        assert_eq!(parsed.metadata_size, Some(meta.info_bytes.len() as u64));
    }

    #[test]
    fn every_piece_is_served_under_their_id_and_reassembles_to_the_info_hash() {
        let now = Instant::now();
        let meta = three_piece_metadata();
        let mut core = seeder(Arc::clone(&meta), now);
        greet(&mut core, now);
        sent_extended(&mut core);
        let mut assembled = Vec::new();
        for piece in 0..3 {
            ask(&mut core, piece, now);
            let sent = sent_extended(&mut core);
            assert_eq!(sent.len(), 1, "one reply to piece {piece}");
            let (id, payload) = &sent[0];
            assert_eq!(*id, THEIR_ID);
            match MetadataMessage::decode(payload).unwrap() {
                MetadataMessage::Data {
                    piece: got,
                    total_size,
                    data,
                } => {
                    assert_eq!(got, piece);
                    assert_eq!(total_size as usize, meta.info_bytes.len());
                    let expected = if piece < 2 {
                        METADATA_PIECE_LEN
                    } else {
                        meta.info_bytes.len() - 2 * METADATA_PIECE_LEN
                    };
                    assert_eq!(data.len(), expected);
                    assembled.extend_from_slice(data);
                }
                other => panic!("piece {piece}: {other:?}"),
            }
        }
        assert_eq!(Sha1Hash::of(&assembled), meta.info_hash);
    }

    #[test]
    fn a_piece_past_the_end_is_rejected() {
        let now = Instant::now();
        let mut core = seeder(three_piece_metadata(), now);
        greet(&mut core, now);
        sent_extended(&mut core);
        for piece in [3, 4, u32::MAX] {
            ask(&mut core, piece, now);
            let sent = sent_extended(&mut core);
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].0, THEIR_ID);
            assert_eq!(
                MetadataMessage::decode(&sent[0].1).unwrap(),
                MetadataMessage::Reject { piece }
            );
        }
    }

    #[test]
    fn a_peer_without_a_ut_metadata_id_gets_no_reply() {
        let now = Instant::now();
        let mut core = seeder(three_piece_metadata(), now);
        sent_extended(&mut core);
        ask(&mut core, 0, now);
        assert!(sent_extended(&mut core).is_empty());
        // A handshake that disables ut_metadata (id 0) leaves it unable too.
        let payload = b"d1:md11:ut_metadatai0eee".to_vec();
        core.handle_message(
            PEER,
            Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: &payload,
            },
            now,
        );
        ask(&mut core, 0, now);
        assert!(sent_extended(&mut core).is_empty());
    }

    #[test]
    fn a_repeated_handshake_without_m_keeps_the_id_and_zero_turns_it_off() {
        let now = Instant::now();
        let mut core = seeder(three_piece_metadata(), now);
        greet(&mut core, now);
        sent_extended(&mut core);
        let send_handshake = |core: &mut Torrent, payload: &[u8]| {
            core.handle_message(
                PEER,
                Message::Extended {
                    id: extension::HANDSHAKE_ID,
                    payload,
                },
                now,
            );
        };
        send_handshake(&mut core, b"d4:reqqi500ee");
        ask(&mut core, 0, now);
        let sent = sent_extended(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].0, THEIR_ID,
            "the id is kept (BEP 10: m is additive)"
        );
        send_handshake(&mut core, b"d1:md11:ut_metadatai0eee");
        ask(&mut core, 0, now);
        assert!(sent_extended(&mut core).is_empty(), "turned off");
    }

    #[test]
    fn a_private_torrent_offers_no_metadata_and_rejects_requests() {
        let now = Instant::now();
        let mut meta = (*three_piece_metadata()).clone();
        meta.private = true;
        let mut core = seeder(Arc::new(meta), now);
        let parsed = our_ext_handshake(&mut core);
        assert_eq!(parsed.ut_metadata, None);
        assert_eq!(parsed.metadata_size, None);
        greet(&mut core, now);
        ask(&mut core, 0, now);
        let sent = sent_extended(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            MetadataMessage::decode(&sent[0].1).unwrap(),
            MetadataMessage::Reject { piece: 0 }
        );
    }

    #[test]
    fn a_request_flood_gets_capped_data_then_capped_rejects_then_nothing() {
        let t0 = Instant::now();
        let mut core = seeder(three_piece_metadata(), t0);
        greet(&mut core, t0);
        sent_extended(&mut core);
        let flood = 4 * MAX_METADATA_PIECES_PER_WINDOW;
        let mut replies = Vec::new();
        for n in 0..flood {
            ask(&mut core, n % 3, t0 + Duration::from_millis(u64::from(n)));
            replies.extend(sent_extended(&mut core));
        }
        // `flood` requests arrive within 256 ms of virtual time: one window.
        let kinds: Vec<bool> = replies
            .iter()
            .map(|(_, p)| matches!(MetadataMessage::decode(p), Ok(MetadataMessage::Data { .. })))
            .collect();
        let data = kinds.iter().filter(|&&d| d).count();
        let rejects = kinds.len() - data;
        assert_eq!(data, MAX_METADATA_PIECES_PER_WINDOW as usize);
        assert_eq!(rejects, MAX_METADATA_REJECTS_PER_WINDOW as usize);
        assert!(kinds[..data].iter().all(|&d| d), "data first, then rejects");
        // The next window serves again.
        ask(&mut core, 1, t0 + METADATA_REPLY_WINDOW);
        let sent = sent_extended(&mut core);
        assert!(matches!(
            MetadataMessage::decode(&sent[0].1),
            Ok(MetadataMessage::Data { piece: 1, .. })
        ));
    }

    #[test]
    fn malformed_and_unexpected_metadata_messages_are_ignored() {
        let now = Instant::now();
        let mut core = seeder(three_piece_metadata(), now);
        greet(&mut core, now);
        sent_extended(&mut core);
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 5,
            data: b"hello",
        }
        .encode();
        let reject = MetadataMessage::Reject { piece: 0 }.encode();
        for payload in [
            &b""[..],
            b"garbage",
            b"d8:msg_typei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei7e5:piecei0ee",
            b"d8:msg_typei0e5:piecei0eetrailing",
            &data,
            &reject,
        ] {
            core.handle_message(
                PEER,
                Message::Extended {
                    id: UT_METADATA_ID,
                    payload,
                },
                now,
            );
            let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
            assert!(actions.is_empty(), "{payload:?} gave {actions:?}");
        }
    }
}
