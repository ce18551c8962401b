//! A torrent before its metadata (a magnet link): the asking side of BEP 9
//! over BEP 10, inside the torrent core.
//!
//! Layer 0: part of the sans-IO [`Torrent`]; time is passed in. A core
//! made for a magnet link knows only the info-hash: its placeholder
//! metainfo has no files and no pieces, and [`Torrent::await_metadata`]
//! gives it a [`MetadataFetch`]. Until the metadata arrives:
//!
//! - peers connect, handshake and get our extension handshake as usual
//!   (no BITFIELD: we have nothing), and every peer whose extension
//!   handshake offers `ut_metadata` with a `metadata_size` joins the fetch;
//! - the request phase asks them for metadata pieces instead of blocks;
//!   replies and rejects go to the fetch, and its outcome decides bans
//!   (see [`crate::metadata`]): a peer proven to have sent wrong metadata
//!   is banned ([`CloseReason::BadMetadata`]), one that breaks the
//!   exchange is closed;
//! - what peers say they have (BITFIELD, HAVE, HAVE ALL) cannot be checked
//!   without the piece count, so it is kept raw ([`EarlyPieces`], bounded)
//!   and replayed once the metadata is here; requests and blocks are
//!   ignored (we have nothing and asked for nothing).
//!
//! When the assembled info dictionary hashes to the info-hash, the core
//! queues [`Action::MetadataReceived`]; the driver builds the real
//! metainfo, opens the files and calls [`Torrent::handle_metadata`], which
//! turns this core into an ordinary one over the same connections: the
//! peers keep their choke and interest state, their early piece sets are
//! checked against the real piece count, and peers that speak BEP 10 get
//! our extension handshake again, now offering the metadata too.

use std::sync::Arc;
use std::time::Instant;

use super::{Action, OutMessage, PeerKey, Torrent};
use crate::bitfield::Bitfield;
use crate::close_reason::CloseReason;
use crate::metadata::{MetadataFetch, MetadataMessage, Outcome, PeerError};
use crate::metainfo::Metainfo;
use crate::partial_pieces::PartialPieces;
use crate::picker::Picker;
use crate::wire::Message;

/// Most HAVEs kept per peer before the metadata arrives. A peer sends one
/// per piece it completes; one that sends more while we fetch a few KiB of
/// metadata is flooding, and the rest are dropped (we only lose a little
/// knowledge of what it has).
pub const MAX_EARLY_HAVES: usize = 4096;

/// What a peer said it has before we knew the piece count. The raw
/// BITFIELD is bounded by the frame limits before metadata
/// ([`crate::wire::FrameLimits::before_metadata`]), the HAVEs by
/// [`MAX_EARLY_HAVES`].
#[derive(Debug, Clone, Default)]
pub(super) struct EarlyPieces {
    bitfield: Option<Vec<u8>>,
    have_all: bool,
    haves: Vec<u32>,
}

impl Torrent {
    /// Makes this core wait for its metadata (a magnet link): it must have
    /// been made with a placeholder metainfo of no pieces carrying the
    /// link's info-hash. Until [`Torrent::handle_metadata`], it fetches
    /// the info dictionary from its peers and downloads nothing.
    pub fn await_metadata(&mut self) {
        self.fetch = Some(Box::new(MetadataFetch::new(self.meta.info_hash)));
        self.checking = false;
    }

    /// Whether the metadata is still being fetched.
    pub fn is_awaiting_metadata(&self) -> bool {
        self.fetch.is_some()
    }

    /// While fetching: metadata pieces received so far and the pieces of
    /// the size being fetched (`None` until a peer announced one).
    pub fn metadata_progress(&self) -> Option<(usize, Option<u32>)> {
        let fetch = self.fetch.as_ref()?;
        let total = fetch.total_len().map(crate::metadata::piece_count);
        Some((fetch.received_pieces(), total))
    }

    /// The metadata is here and the driver has opened the files: from now
    /// on this is an ordinary core for `meta`, with the pieces in `have`
    /// (trusted from a resume state, or none) and its start-up check to
    /// run. Connected peers stay: their early piece sets are checked
    /// against the real piece count (a bad one closes the peer), and those
    /// that speak BEP 10 get our extension handshake again.
    pub fn handle_metadata(&mut self, meta: Arc<Metainfo>, have: Bitfield) {
        let piece_count = meta.layout.piece_count();
        let mut picker = Picker::new(piece_count, self.config.strategy);
        for piece in have.iter_ones() {
            picker.remove_piece(piece);
        }
        self.meta = meta;
        self.have = have;
        self.picker = picker;
        self.partial_pieces = PartialPieces::new();
        self.fetch = None;
        self.checking = true;
        for key in self.active_keys() {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.state.set_pieces(Bitfield::new(piece_count));
            let early = std::mem::take(&mut peer.early);
            let speaks_bep10 = peer.metadata.speaks_extensions();
            self.replay_early_pieces(key, early, piece_count);
            if speaks_bep10 {
                let payload = self.our_ext_handshake();
                self.send(key, OutMessage::ExtHandshake(payload));
            }
        }
    }

    /// Applies what a peer said it had before the metadata arrived.
    fn replay_early_pieces(&mut self, key: PeerKey, early: EarlyPieces, piece_count: u32) {
        if early.have_all {
            self.set_peer_pieces(key, Bitfield::full(piece_count));
        } else if let Some(bytes) = early.bitfield {
            match Bitfield::from_bytes(&bytes, piece_count) {
                Ok(field) => self.set_peer_pieces(key, field),
                Err(e) => return self.close(key, CloseReason::BadBitfield(e)),
            }
        }
        for piece in early.haves {
            if piece >= piece_count {
                return self.close(key, CloseReason::HaveOutOfRange { piece, piece_count });
            }
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            if peer.state.add_piece(piece) {
                self.picker.add_piece(piece);
            }
        }
    }

    /// Before the metadata: a message about pieces, which cannot be
    /// checked yet, is kept raw; requests and blocks are ignored. Returns
    /// false for the messages handled as usual (choking, interest,
    /// extended messages, keepalives).
    pub(super) fn hold_early_message(&mut self, key: PeerKey, message: &Message<'_>) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return true;
        };
        let early = &mut peer.early;
        match message {
            Message::Bitfield(bytes) => {
                early.bitfield = Some(bytes.to_vec());
                early.have_all = false;
            }
            Message::HaveAll => early.have_all = true,
            Message::HaveNone => {
                early.have_all = false;
                early.bitfield = None;
            }
            Message::Have { piece } => {
                if early.haves.len() < MAX_EARLY_HAVES {
                    early.haves.push(*piece);
                }
            }
            Message::Request(_)
            | Message::Cancel(_)
            | Message::Piece { .. }
            | Message::Reject(_)
            | Message::Suggest { .. }
            | Message::AllowedFast { .. } => {
                log::debug!(
                    "{}: {} before the metadata ignored",
                    peer.addr,
                    message.name()
                );
            }
            _ => return false,
        }
        true
    }

    /// A peer's extension handshake offered `ut_metadata` with a size:
    /// it joins the fetch, unless the size is impossible (then it is
    /// closed: it cannot give us this torrent's metadata).
    pub(super) fn offer_metadata(&mut self, key: PeerKey, size: u64) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        match fetch.handle_size(key, size) {
            Ok(()) => {}
            Err(PeerError::TooManyPeers) => {}
            Err(e) => self.close(key, CloseReason::MetadataViolation(e)),
        }
    }

    /// Request phase while fetching: one metadata piece to each idle peer
    /// of the fetch, under the id each peer chose for `ut_metadata`.
    pub(super) fn request_metadata(&mut self, now: Instant) {
        while let Some((key, piece)) = self.fetch.as_mut().and_then(|f| f.poll_request(now)) {
            let their_id = self.peers.get(&key).and_then(|p| p.metadata.their_id());
            let Some(id) = their_id else {
                if let Some(fetch) = self.fetch.as_mut() {
                    fetch.remove_peer(key);
                }
                continue;
            };
            log::debug!("metadata: asking peer {key} for piece {piece}");
            let payload = MetadataMessage::Request { piece }.encode();
            self.send(key, OutMessage::Extended { id, payload });
        }
    }

    /// Timeouts while fetching: requests unanswered too long go to
    /// other peers; a peer that keeps ignoring them leaves the fetch.
    pub(super) fn check_metadata_timeouts(&mut self, now: Instant) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        for (key, dropped) in fetch.handle_timeout(now) {
            log::debug!("metadata: peer {key} timed out (dropped from the fetch: {dropped})");
        }
    }

    /// A `data` or `reject` message of the metadata exchange from a peer.
    pub(super) fn on_metadata_reply(
        &mut self,
        key: PeerKey,
        message: MetadataMessage<'_>,
        now: Instant,
    ) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        let result = match message {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => fetch.handle_data(key, piece, total_size, data),
            MetadataMessage::Reject { piece } => fetch.handle_reject(key, piece, now).map(|_| None),
            MetadataMessage::Request { .. } | MetadataMessage::Unknown { .. } => Ok(None),
        };
        match result {
            Ok(None) => {}
            Ok(Some(Outcome::Verified { info, liars })) => {
                for liar in liars {
                    self.ban_for_metadata(liar);
                }
                log::info!(
                    "{}: metadata received ({} bytes), info-hash verified",
                    self.meta.name,
                    info.len()
                );
                self.actions.push_back(Action::MetadataReceived { info });
            }
            Ok(Some(Outcome::Mismatch { suppliers, proven })) => {
                log::warn!(
                    "{}: metadata from {} peer(s) does not match the info-hash",
                    self.meta.name,
                    suppliers.len()
                );
                if proven {
                    for supplier in suppliers {
                        self.ban_for_metadata(supplier);
                    }
                }
            }
            // A late reply to a request given up on, or a peer that keeps
            // rejecting: not a violation; the fetch asks others.
            Err(PeerError::Unrequested(_) | PeerError::UnknownPeer | PeerError::GaveUp) => {}
            Err(e) => self.close(key, CloseReason::MetadataViolation(e)),
        }
    }

    /// Bans the peer under `key`, proven to have sent wrong metadata.
    fn ban_for_metadata(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        log::warn!("{}: banned: sent metadata that does not match", peer.addr);
        let (addr, peer_id) = (peer.addr, peer.peer_id);
        self.peer_list.ban(addr, Some(peer_id));
        self.close(key, CloseReason::BadMetadata);
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::test_torrent;
    use super::super::TorrentConfig;
    use super::*;
    use crate::rng::Rng;
    use crate::wire::extension::{self, UT_METADATA_ID};
    use crate::wire::Handshake;
    use std::net::SocketAddr;

    const HONEST: PeerKey = 1;
    const LIAR: PeerKey = 2;
    /// The ids the peers chose for `ut_metadata` (not ours, so replies
    /// under the wrong id would show).
    const THEIR_ID: u8 = 7;

    fn addr(key: PeerKey) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 6000 + u16::try_from(key).unwrap()))
    }

    /// A core waiting for the metadata of `meta`.
    fn fetching(meta: &Metainfo, now: Instant) -> Torrent {
        let placeholder = Arc::new(Metainfo::awaiting(meta.info_hash, "magnet", Vec::new()));
        let mut core = Torrent::new(
            placeholder,
            TorrentConfig::default(),
            Bitfield::new(0),
            Rng::new(5),
            now,
        );
        core.await_metadata();
        core
    }

    fn join(core: &mut Torrent, key: PeerKey, size: usize, now: Instant) {
        let hs = Handshake::new(core.meta.info_hash.0, [key as u8; 20]).with_extensions();
        core.handle_handshake(key, addr(key), &hs, now);
        let ext = format!("d1:md11:ut_metadatai{THEIR_ID}ee13:metadata_sizei{size}ee");
        core.handle_message(
            key,
            Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: ext.as_bytes(),
            },
            now,
        );
    }

    /// The metadata requests queued, as (peer, piece).
    fn requests(core: &mut Torrent) -> Vec<(PeerKey, u32)> {
        let mut out = Vec::new();
        while let Some(action) = core.poll_action() {
            if let Action::Send {
                peer,
                message: OutMessage::Extended { id, payload },
            } = action
            {
                assert_eq!(id, THEIR_ID, "sent under the peer's id");
                if let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload) {
                    out.push((peer, piece));
                }
            }
        }
        out
    }

    fn reply(core: &mut Torrent, key: PeerKey, piece: u32, total: usize, data: &[u8]) {
        let payload = MetadataMessage::Data {
            piece,
            total_size: u32::try_from(total).unwrap(),
            data,
        }
        .encode();
        core.handle_message(
            key,
            Message::Extended {
                id: UT_METADATA_ID,
                payload: &payload,
            },
            Instant::now(),
        );
    }

    fn received(core: &mut Torrent) -> Option<Vec<u8>> {
        std::iter::from_fn(|| core.poll_action()).find_map(|a| match a {
            Action::MetadataReceived { info } => Some(info),
            _ => None,
        })
    }

    #[test]
    fn a_magnet_core_is_not_complete_and_asks_peers_for_metadata_pieces() {
        let (meta, _) = test_torrent(64 * 1024, 16 * 1024, 1);
        let now = Instant::now();
        let mut core = fetching(&meta, now);
        assert!(!core.is_complete(), "no pieces known is not complete");
        assert!(core.is_awaiting_metadata());
        join(&mut core, HONEST, meta.info_bytes.len(), now);
        core.request_blocks(now, None);
        let asked = requests(&mut core);
        assert_eq!(asked, vec![(HONEST, 0)]);
        reply(
            &mut core,
            HONEST,
            0,
            meta.info_bytes.len(),
            &meta.info_bytes,
        );
        assert_eq!(received(&mut core).as_deref(), Some(&meta.info_bytes[..]));
    }

    #[test]
    fn a_peer_alone_sending_wrong_metadata_is_banned() {
        let (meta, _) = test_torrent(64 * 1024, 16 * 1024, 2);
        let now = Instant::now();
        let mut core = fetching(&meta, now);
        join(&mut core, LIAR, meta.info_bytes.len(), now);
        core.request_blocks(now, None);
        assert_eq!(requests(&mut core), vec![(LIAR, 0)]);
        let mut wrong = meta.info_bytes.clone();
        wrong[5] ^= 1;
        reply(&mut core, LIAR, 0, wrong.len(), &wrong);
        let closed: Vec<_> = std::iter::from_fn(|| core.poll_action())
            .filter_map(|a| match a {
                Action::Close { peer, reason } => Some((peer, reason)),
                _ => None,
            })
            .collect();
        assert_eq!(closed, vec![(LIAR, CloseReason::BadMetadata)]);
        assert!(core.peer_list().is_banned(addr(LIAR)));
    }

    #[test]
    fn an_impossible_metadata_size_closes_the_peer_without_a_ban() {
        let (meta, _) = test_torrent(64 * 1024, 16 * 1024, 3);
        let now = Instant::now();
        let mut core = fetching(&meta, now);
        join(&mut core, LIAR, crate::metadata::MAX_METADATA_SIZE + 1, now);
        let closed = std::iter::from_fn(|| core.poll_action()).any(|a| {
            matches!(
                a,
                Action::Close {
                    peer: LIAR,
                    reason: CloseReason::MetadataViolation(_)
                }
            )
        });
        assert!(closed);
        assert!(!core.peer_list().is_banned(addr(LIAR)));
    }

    #[test]
    fn pieces_announced_before_the_metadata_count_once_it_arrives() {
        let (meta, _) = test_torrent(64 * 1024, 16 * 1024, 4);
        let now = Instant::now();
        let mut core = fetching(&meta, now);
        join(&mut core, HONEST, meta.info_bytes.len(), now);
        join(&mut core, LIAR, meta.info_bytes.len(), now);
        core.handle_message(HONEST, Message::Bitfield(&[0b1010_0000]), now);
        core.handle_message(HONEST, Message::Have { piece: 1 }, now);
        core.handle_message(LIAR, Message::Have { piece: 99 }, now);
        while core.poll_action().is_some() {}
        core.handle_metadata(Arc::clone(&meta), Bitfield::new(4));
        assert!(!core.is_awaiting_metadata());
        assert_eq!(core.availability(0), 1);
        assert_eq!(core.availability(1), 1);
        assert_eq!(core.availability(2), 1);
        assert_eq!(core.availability(3), 0);
        let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::Close {
                peer: LIAR,
                reason: CloseReason::HaveOutOfRange { piece: 99, .. }
            }
        )));
        let handshakes_again = actions
            .iter()
            .filter(|a| {
                matches!(a, Action::Send { peer: HONEST, message: OutMessage::ExtHandshake(p) }
                    if extension::ExtHandshake::parse(p).unwrap().metadata_size
                        == Some(meta.info_bytes.len() as u64))
            })
            .count();
        assert_eq!(
            handshakes_again, 1,
            "the peer learns we now serve the metadata"
        );
    }
}
