//! The fast extension (BEP 6) in the torrent core: HAVE_ALL / HAVE_NONE in
//! place of a BITFIELD, REJECT_REQUEST for every request we will not serve,
//! the allowed-fast set, and SUGGEST_PIECE hints.
//!
//! Layer 0: pure. The extension is in force on a connection only when both
//! handshakes set its bit (reserved byte 7, 0x04); pollen always sets it
//! ([`our_handshake`]), so it is in force exactly when the peer's handshake
//! has it. It is remembered per peer ([`crate::peer::PeerState::fast`]).
//! Without it, any of the five BEP 6 messages from the peer closes the
//! connection ([`CloseReason::FastMessageWithoutFast`]).
//!
//! Where BEP 6 is silent pollen does what libtorrent does: the allowed-fast
//! set has [`ALLOWED_FAST_SET_LEN`] pieces; a CHOKE from a fast peer keeps
//! our requests in flight until each is answered by a PIECE or a REJECT (or
//! times out); a SUGGEST_PIECE only orders our picks for that peer.
//!
//! A sequential download (`--strategy sequential`, for streaming) does not
//! ask a choking peer for its allowed-fast pieces: they are scattered, and
//! the user asked for the pieces in order; it waits for the UNCHOKE. Nor
//! does it follow SUGGEST_PIECE hints.
//!
//! IPv6 peers get no allowed-fast set: BEP 6 defines the set from an IPv4
//! address only (its first three octets), and pollen sends ALLOWED_FAST to
//! IPv4 peers alone (an IPv4-mapped IPv6 address counts as IPv4).

use std::net::{IpAddr, SocketAddr};

use super::{OutMessage, PeerKey, Torrent};
use crate::close_reason::CloseReason;
use crate::hash::Sha1Hash;
use crate::metainfo::Block;
use crate::wire::{BlockRequest, Handshake, Message};

/// Pieces in the allowed-fast set we give each peer (libtorrent's default
/// `allowed_fast_set_size` is 5): enough for a new peer to get a first piece
/// to trade while every upload slot is taken, too few to be worth gaming.
pub const ALLOWED_FAST_SET_LEN: u32 = 5;

/// Our handshake for a torrent: the BEP 10 extension protocol and BEP 6
/// fast extension bits set. The core's rules assume this is what we sent.
pub fn our_handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
    Handshake::new(info_hash, peer_id)
        .with_extensions()
        .with_fast()
}

/// The canonical allowed-fast set of BEP 6 for a peer at `ip`: up to `k`
/// distinct piece indices of a torrent of `piece_count` pieces, in the
/// order the algorithm finds them. The IPv4 address masked to its first
/// three octets, followed by the info-hash, is hashed with SHA-1; each
/// digest gives five big-endian 32-bit numbers taken modulo the piece
/// count, and the digest is hashed again until `k` indices are found.
/// `k` larger than the piece count is cut to it (the loop must end).
/// `None` for an IPv6 address, for which BEP 6 defines no set.
pub fn allowed_fast_set(
    ip: IpAddr,
    info_hash: &[u8; 20],
    piece_count: u32,
    k: u32,
) -> Option<Vec<u32>> {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
    };
    let want = usize::try_from(k.min(piece_count)).unwrap_or(0);
    let mut set = Vec::with_capacity(want);
    let masked = u32::from(v4) & 0xFFFF_FF00;
    let mut x = masked.to_be_bytes().to_vec();
    x.extend_from_slice(info_hash);
    while set.len() < want {
        let digest = Sha1Hash::of(&x).0;
        for word in digest.chunks_exact(4) {
            if set.len() >= want {
                break;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % piece_count;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = digest.to_vec();
    }
    Some(set)
}

impl Torrent {
    /// Right after the handshakes, when the fast extension is in force:
    /// HAVE_ALL or HAVE_NONE in place of a BITFIELD when that says it all
    /// (HAVE_NONE while the start-up check runs: HAVEs follow it), then
    /// ALLOWED_FAST for the pieces of the peer's set that we have.
    pub(super) fn greet_fast_peer(&mut self, key: PeerKey, addr: SocketAddr) {
        let pieces = if self.checking || self.have.count_ones() == 0 {
            OutMessage::HaveNone
        } else if self.have.is_complete() {
            OutMessage::HaveAll
        } else {
            OutMessage::Bitfield(self.have.as_bytes().to_vec())
        };
        self.send(key, pieces);
        let piece_count = self.meta.layout.piece_count();
        let info_hash = self.meta.info_hash.0;
        let set = allowed_fast_set(addr.ip(), &info_hash, piece_count, ALLOWED_FAST_SET_LEN)
            .unwrap_or_default();
        let ours: Vec<u32> = if self.checking {
            Vec::new()
        } else {
            set.into_iter().filter(|&p| self.have.has(p)).collect()
        };
        for &piece in &ours {
            self.send(key, OutMessage::AllowedFast(piece));
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.state.set_allowed_fast_for_it(ours);
        }
    }

    /// One of the five BEP 6 messages arrived from a peer with the
    /// extension in force (`handle_message` closes the others first;
    /// `first`: nothing but extension handshakes and keepalives came
    /// before it).
    pub(super) fn on_fast_message(&mut self, key: PeerKey, message: Message<'_>, first: bool) {
        let piece_count = self.meta.layout.piece_count();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        match message {
            Message::HaveAll if first => {
                self.set_peer_pieces(key, crate::bitfield::Bitfield::full(piece_count));
            }
            Message::HaveNone if first => {}
            Message::HaveAll | Message::HaveNone => {
                self.close(key, CloseReason::LateHaveAllOrNone);
            }
            Message::Reject(request) => self.on_reject(key, request),
            // Out-of-range indices are ignored, as libtorrent does: a hint
            // about a piece that does not exist asks nothing of us.
            Message::AllowedFast { piece }
                if piece < piece_count && !peer.state.add_allowed_fast(piece) =>
            {
                log::debug!("{}: ALLOWED_FAST #{piece} not remembered", peer.addr);
            }
            Message::Suggest { piece } if piece < piece_count => peer.state.add_suggested(piece),
            _ => {}
        }
    }

    /// A REJECT_REQUEST: the request goes back to the pool if it was ours
    /// in flight to this peer; a reject for anything else is ignored.
    fn on_reject(&mut self, key: PeerKey, request: BlockRequest) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(block) = self.meta.layout.check_block(
            request.piece,
            request.begin,
            request.len,
            crate::metainfo::BLOCK_LEN,
        ) else {
            return;
        };
        if peer.state.take_request(&block) {
            self.partial_pieces.release(&block);
        }
    }

    /// Sends REJECT_REQUEST for `block` to a fast peer (only a fast peer
    /// may get one).
    pub(super) fn reject(&mut self, key: PeerKey, block: &Block) {
        if self.peers.get(&key).is_some_and(|p| p.state.fast()) {
            self.send(key, OutMessage::Reject(super::download::request_of(block)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::test_torrent;
    use super::super::{Action, Serve, TorrentConfig};
    use super::*;
    use crate::bitfield::Bitfield;
    use crate::metainfo::BLOCK_LEN;
    use crate::rng::Rng;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Instant;

    /// Pieces of the scripted torrent: one block each, enough that the
    /// allowed-fast set (5) is a true subset.
    const PIECES: u32 = 16;

    /// The scripted peer's key and address.
    const PEER: PeerKey = 7;

    fn peer_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7000))
    }

    /// A core of [`PIECES`] one-block pieces that has `have`, past its
    /// start-up check, and a peer through the handshake (with the fast
    /// bit when `fast`); returns the core and what it sent the peer.
    fn core_with_peer(have: &[u32], fast: bool, now: Instant) -> (Torrent, Vec<Action>) {
        let (meta, _) = test_torrent((PIECES * BLOCK_LEN) as usize, BLOCK_LEN, 6);
        let mut handshake = Handshake::new(meta.info_hash.0, [7; 20]);
        if fast {
            handshake = handshake.with_fast();
        }
        let mut core = Torrent::new(
            meta,
            TorrentConfig::default(),
            Bitfield::new(PIECES),
            Rng::new(6),
            now,
        );
        for &piece in have {
            core.handle_existing_piece(piece, true);
        }
        core.handle_check_done();
        drain(&mut core);
        core.handle_handshake(PEER, peer_addr(), &handshake, now);
        let sent = drain(&mut core);
        (core, sent)
    }

    /// The actions queued, without the trace notes.
    fn drain(core: &mut Torrent) -> Vec<Action> {
        std::iter::from_fn(|| core.poll_action())
            .filter(|a| !matches!(a, Action::Note(_)))
            .collect()
    }

    fn send(message: OutMessage) -> Action {
        Action::Send {
            peer: PEER,
            message,
        }
    }

    fn request(piece: u32) -> BlockRequest {
        BlockRequest {
            piece,
            begin: 0,
            len: BLOCK_LEN,
        }
    }

    /// The allowed-fast set the core computes for the scripted peer.
    fn peer_set(core: &Torrent) -> Vec<u32> {
        let info_hash = core.meta().info_hash.0;
        allowed_fast_set(peer_addr().ip(), &info_hash, PIECES, ALLOWED_FAST_SET_LEN).unwrap()
    }

    /// A piece outside the scripted peer's allowed-fast set.
    fn not_allowed(core: &Torrent) -> u32 {
        let set = peer_set(core);
        (0..PIECES).find(|p| !set.contains(p)).unwrap()
    }

    fn all_pieces() -> Vec<u32> {
        (0..PIECES).collect()
    }

    #[test]
    fn a_complete_seeder_sends_have_all_then_allowed_fast_to_a_fast_peer() {
        let now = Instant::now();
        let (core, sent) = core_with_peer(&all_pieces(), true, now);
        let mut expected = vec![send(OutMessage::HaveAll)];
        let set = peer_set(&core);
        assert_eq!(set.len(), 5);
        expected.extend(set.into_iter().map(|p| send(OutMessage::AllowedFast(p))));
        assert_eq!(sent, expected);
    }

    #[test]
    fn a_complete_seeder_sends_a_bitfield_and_no_allowed_fast_to_a_peer_without_fast() {
        let now = Instant::now();
        let (core, sent) = core_with_peer(&all_pieces(), false, now);
        let field = core.have().as_bytes().to_vec();
        assert_eq!(sent, vec![send(OutMessage::Bitfield(field))]);
    }

    #[test]
    fn a_peer_with_nothing_says_have_none_and_a_partial_one_a_bitfield() {
        let now = Instant::now();
        let (_, sent) = core_with_peer(&[], true, now);
        assert_eq!(sent, vec![send(OutMessage::HaveNone)]);
        let (_, sent) = core_with_peer(&[], false, now);
        assert_eq!(sent, vec![], "BEP 3: no BITFIELD when we have nothing");

        // Only the allowed-fast pieces we have are offered.
        let (core, _) = core_with_peer(&[], true, now);
        let set = peer_set(&core);
        let have = [set[0], set[2]];
        let (core, sent) = core_with_peer(&have, true, now);
        let mut expected = vec![send(OutMessage::Bitfield(core.have().as_bytes().to_vec()))];
        expected.extend(have.iter().map(|&p| send(OutMessage::AllowedFast(p))));
        assert_eq!(sent, expected);
    }

    #[test]
    fn every_fast_message_from_a_peer_without_fast_closes_it() {
        let now = Instant::now();
        let messages = [
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(request(1)),
            Message::AllowedFast { piece: 1 },
            Message::Suggest { piece: 1 },
        ];
        for message in messages {
            let name = message.name();
            let (mut core, _) = core_with_peer(&[], false, now);
            core.handle_message(PEER, message, now);
            assert_eq!(
                drain(&mut core),
                vec![Action::Close {
                    peer: PEER,
                    reason: CloseReason::FastMessageWithoutFast { message: name }
                }],
                "{name}"
            );
        }
    }

    #[test]
    fn have_all_from_a_fast_peer_counts_only_as_its_first_message() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[], true, now);
        core.handle_message(PEER, Message::HaveAll, now);
        assert_eq!(drain(&mut core), vec![send(OutMessage::Interested)]);
        assert_eq!(core.availability(3), 1);
        core.handle_message(PEER, Message::HaveNone, now);
        assert_eq!(
            drain(&mut core),
            vec![Action::Close {
                peer: PEER,
                reason: CloseReason::LateHaveAllOrNone
            }]
        );
    }

    #[test]
    fn requests_while_choked_are_rejected_except_for_allowed_fast_pieces() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&all_pieces(), true, now);
        let allowed = peer_set(&core)[0];
        let other = not_allowed(&core);
        core.handle_message(PEER, Message::Request(request(other)), now);
        assert_eq!(
            drain(&mut core),
            vec![send(OutMessage::Reject(request(other)))]
        );
        core.handle_message(PEER, Message::Request(request(allowed)), now);
        assert_eq!(drain(&mut core), vec![]);
        assert!(core.has_requests_to_serve(PEER));
        let served = core.serve_next(PEER, None, now);
        let Serve::Block(block) = served else {
            panic!("not served while choked: {served:?}");
        };
        assert_eq!(block.piece.get(), allowed);
        assert!(!core.has_requests_to_serve(PEER));
    }

    #[test]
    fn a_peer_without_fast_gets_nothing_for_a_request_while_choked() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&all_pieces(), false, now);
        core.handle_message(PEER, Message::Request(request(0)), now);
        assert_eq!(drain(&mut core), vec![]);
        assert!(!core.has_requests_to_serve(PEER));
    }

    #[test]
    fn each_queued_request_is_rejected_when_we_choke_a_fast_peer() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&all_pieces(), true, now);
        let allowed = peer_set(&core)[1];
        core.handle_message(PEER, Message::Interested, now);
        assert_eq!(drain(&mut core), vec![send(OutMessage::Unchoke)]);
        let others: Vec<u32> = (0..PIECES)
            .filter(|p| !peer_set(&core).contains(p))
            .take(3)
            .collect();
        for &piece in &others {
            core.handle_message(PEER, Message::Request(request(piece)), now);
        }
        core.handle_message(PEER, Message::Request(request(allowed)), now);
        assert_eq!(drain(&mut core), vec![]);
        // No longer interested: the next choke epoch chokes it.
        core.handle_message(PEER, Message::NotInterested, now);
        core.rechoke(now, &|_| false);
        let mut expected = vec![send(OutMessage::Choke)];
        expected.extend(others.iter().map(|&p| send(OutMessage::Reject(request(p)))));
        assert_eq!(drain(&mut core), expected);
        // The allowed-fast request is still served.
        let served = core.serve_next(PEER, None, now);
        assert!(
            matches!(served, Serve::Block(b) if b.piece.get() == allowed),
            "{served:?}"
        );
    }

    #[test]
    fn a_cancelled_request_is_answered_with_reject_for_a_fast_peer_only() {
        let now = Instant::now();
        for fast in [true, false] {
            let (mut core, _) = core_with_peer(&all_pieces(), fast, now);
            core.handle_message(PEER, Message::Interested, now);
            core.handle_message(PEER, Message::Request(request(4)), now);
            drain(&mut core);
            core.handle_message(PEER, Message::Cancel(request(4)), now);
            let answer = if fast {
                vec![send(OutMessage::Reject(request(4)))]
            } else {
                vec![]
            };
            assert_eq!(drain(&mut core), answer, "fast: {fast}");
            assert!(!core.has_requests_to_serve(PEER));
            // A second CANCEL has nothing left to answer.
            core.handle_message(PEER, Message::Cancel(request(4)), now);
            assert_eq!(drain(&mut core), vec![]);
        }
    }

    #[test]
    fn a_request_for_a_missing_piece_is_rejected_for_a_fast_peer_until_a_stream_closes_it() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[0, 1], true, now);
        core.handle_message(PEER, Message::Interested, now);
        drain(&mut core);
        core.handle_message(PEER, Message::Request(request(5)), now);
        assert_eq!(drain(&mut core), vec![send(OutMessage::Reject(request(5)))]);
        for _ in 0..crate::peer::MAX_REQUESTS_FOR_MISSING {
            core.handle_message(PEER, Message::Request(request(5)), now);
        }
        let last = drain(&mut core).pop();
        assert_eq!(
            last,
            Some(Action::Close {
                peer: PEER,
                reason: CloseReason::RequestForMissingPiece { piece: 5 }
            })
        );
    }

    /// The peer's requests in flight from us, as (piece, begin).
    fn in_flight(core: &mut Torrent, now: Instant) -> Vec<(u32, u32)> {
        let peers = core.peers(now);
        let mut blocks: Vec<(u32, u32)> = peers[0]
            .state
            .requested()
            .iter()
            .map(|r| (r.block.piece.get(), r.block.begin))
            .collect();
        blocks.sort_unstable();
        blocks
    }

    fn requests_sent(actions: &[Action]) -> Vec<u32> {
        let mut pieces: Vec<u32> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    message: OutMessage::Request(r),
                    ..
                } => Some(r.piece),
                _ => None,
            })
            .collect();
        pieces.sort_unstable();
        pieces
    }

    #[test]
    fn a_fast_peer_that_chokes_us_keeps_our_requests_until_it_rejects_them() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[], true, now);
        core.handle_message(PEER, Message::HaveAll, now);
        core.handle_message(PEER, Message::Unchoke, now);
        core.request_blocks(now, None);
        let asked = requests_sent(&drain(&mut core));
        assert_eq!(asked, all_pieces(), "one request per one-block piece");
        core.handle_message(PEER, Message::Choke, now);
        assert_eq!(in_flight(&mut core, now).len(), asked.len());
        // Choked with no allowed-fast piece: nothing more is asked.
        core.request_blocks(now, None);
        assert_eq!(drain(&mut core), vec![]);
        // Each REJECT returns one block to the pool, once.
        core.handle_message(PEER, Message::Reject(request(3)), now);
        core.handle_message(PEER, Message::Reject(request(3)), now);
        assert_eq!(in_flight(&mut core, now).len(), asked.len() - 1);
        assert!(!in_flight(&mut core, now).contains(&(3, 0)));
        // Unchoked again, the rejected block is asked for again, only it.
        core.handle_message(PEER, Message::Unchoke, now);
        core.request_blocks(now, None);
        assert_eq!(requests_sent(&drain(&mut core)), vec![3]);
    }

    #[test]
    fn a_peer_without_fast_that_chokes_us_drops_our_requests() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[], false, now);
        core.handle_message(PEER, Message::Bitfield(&[0xFF, 0xFF]), now);
        core.handle_message(PEER, Message::Unchoke, now);
        core.request_blocks(now, None);
        drain(&mut core);
        core.handle_message(PEER, Message::Choke, now);
        assert_eq!(in_flight(&mut core, now), vec![]);
    }

    #[test]
    fn only_allowed_fast_pieces_are_requested_from_a_peer_that_chokes_us() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[], true, now);
        core.handle_message(PEER, Message::HaveAll, now);
        core.handle_message(PEER, Message::AllowedFast { piece: 9 }, now);
        core.handle_message(PEER, Message::AllowedFast { piece: 2 }, now);
        // Out of range: ignored, not a reason to close.
        core.handle_message(PEER, Message::AllowedFast { piece: PIECES }, now);
        drain(&mut core);
        core.request_blocks(now, None);
        assert_eq!(requests_sent(&drain(&mut core)), vec![2, 9]);
        core.request_blocks(now, None);
        assert_eq!(drain(&mut core), vec![], "never the same block twice");
    }

    #[test]
    fn while_fetching_metadata_a_fast_peer_gets_have_none_and_others_are_held_to_the_bit() {
        let now = Instant::now();
        let (meta, _) = test_torrent((PIECES * BLOCK_LEN) as usize, BLOCK_LEN, 6);
        let placeholder = std::sync::Arc::new(crate::metainfo::Metainfo::awaiting(
            meta.info_hash,
            "magnet",
            Vec::new(),
        ));
        let mut core = Torrent::new(
            placeholder,
            TorrentConfig::default(),
            Bitfield::new(0),
            Rng::new(6),
            now,
        );
        core.await_metadata();
        let fast = Handshake::new(meta.info_hash.0, [7; 20]).with_fast();
        core.handle_handshake(PEER, peer_addr(), &fast, now);
        assert_eq!(drain(&mut core), vec![send(OutMessage::HaveNone)]);
        // Its HAVE_ALL waits for the metadata, as a BITFIELD would.
        core.handle_message(PEER, Message::HaveAll, now);
        assert_eq!(drain(&mut core), vec![]);

        let other = 8;
        let legacy = Handshake::new(meta.info_hash.0, [8; 20]);
        core.handle_handshake(other, peer_addr(), &legacy, now);
        assert_eq!(drain(&mut core), vec![], "no BITFIELD: nothing to say");
        core.handle_message(other, Message::HaveAll, now);
        assert_eq!(
            drain(&mut core),
            vec![Action::Close {
                peer: other,
                reason: CloseReason::FastMessageWithoutFast {
                    message: "HAVE_ALL"
                }
            }]
        );
    }

    #[test]
    fn a_sequential_download_waits_for_the_unchoke_instead_of_allowed_fast_pieces() {
        let now = Instant::now();
        let (meta, _) = test_torrent((PIECES * BLOCK_LEN) as usize, BLOCK_LEN, 6);
        let handshake = Handshake::new(meta.info_hash.0, [7; 20]).with_fast();
        let config = TorrentConfig {
            strategy: crate::picker::Strategy::Sequential,
            ..TorrentConfig::default()
        };
        let mut core = Torrent::new(meta, config, Bitfield::new(PIECES), Rng::new(6), now);
        core.handle_check_done();
        core.handle_handshake(PEER, peer_addr(), &handshake, now);
        core.handle_message(PEER, Message::HaveAll, now);
        core.handle_message(PEER, Message::AllowedFast { piece: 9 }, now);
        drain(&mut core);
        core.request_blocks(now, None);
        assert_eq!(drain(&mut core), vec![]);
        core.handle_message(PEER, Message::Unchoke, now);
        core.request_blocks(now, None);
        let asked: Vec<u32> = drain(&mut core)
            .into_iter()
            .filter_map(|a| match a {
                Action::Send {
                    message: OutMessage::Request(r),
                    ..
                } => Some(r.piece),
                _ => None,
            })
            .collect();
        assert_eq!(asked, all_pieces(), "in order once unchoked");
    }

    #[test]
    fn a_suggested_piece_is_picked_first_for_that_peer() {
        let now = Instant::now();
        let (mut core, _) = core_with_peer(&[], true, now);
        core.handle_message(PEER, Message::HaveAll, now);
        core.handle_message(PEER, Message::Suggest { piece: 11 }, now);
        core.handle_message(PEER, Message::Unchoke, now);
        drain(&mut core);
        core.request_blocks(now, None);
        let first = drain(&mut core).into_iter().find_map(|a| match a {
            Action::Send {
                message: OutMessage::Request(r),
                ..
            } => Some(r.piece),
            _ => None,
        });
        assert_eq!(first, Some(11));
    }

    /// The example of BEP 6: info-hash of twenty 0xAA bytes, peer
    /// 80.4.4.200, a torrent of 1313 pieces.
    fn bep6_example(k: u32) -> Option<Vec<u32>> {
        let ip = IpAddr::V4(Ipv4Addr::new(80, 4, 4, 200));
        allowed_fast_set(ip, &[0xAA; 20], 1313, k)
    }

    #[test]
    fn allowed_fast_set_matches_the_bep_example_of_seven_pieces() {
        assert_eq!(
            bep6_example(7),
            Some(vec![1059, 431, 808, 1217, 287, 376, 1188])
        );
    }

    #[test]
    fn allowed_fast_set_matches_the_bep_example_of_nine_pieces() {
        assert_eq!(
            bep6_example(9),
            Some(vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508])
        );
    }

    #[test]
    fn allowed_fast_set_depends_only_on_the_first_three_octets() {
        let other = IpAddr::V4(Ipv4Addr::new(80, 4, 4, 1));
        assert_eq!(
            allowed_fast_set(other, &[0xAA; 20], 1313, 7),
            bep6_example(7)
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(80, 4, 4, 200).to_ipv6_mapped());
        assert_eq!(
            allowed_fast_set(mapped, &[0xAA; 20], 1313, 7),
            bep6_example(7)
        );
    }

    #[test]
    fn allowed_fast_set_is_cut_to_the_piece_count_and_ends() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut set = allowed_fast_set(ip, &[1; 20], 3, 5).unwrap();
        set.sort_unstable();
        assert_eq!(set, vec![0, 1, 2]);
        assert_eq!(allowed_fast_set(ip, &[1; 20], 0, 5), Some(vec![]));
    }

    #[test]
    fn ipv6_peers_get_no_allowed_fast_set() {
        let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(allowed_fast_set(ip, &[0xAA; 20], 1313, 7), None);
    }

    #[test]
    fn our_handshake_offers_the_fast_and_extension_protocols() {
        let ours = our_handshake([1; 20], [2; 20]);
        assert!(ours.supports_fast() && ours.supports_extensions());
        assert!(!ours.supports_dht());
    }
}
