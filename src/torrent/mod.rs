//! One torrent's protocol logic as a sans-IO state machine: the heart of
//! the client (BEP 3 peer wire rules, piece picking, endgame, choking, the
//! smart ban), with no socket, no file and no clock.
//!
//! Layer 0. A [`Torrent`] is driven from outside in the style of
//! quinn-proto and smoltcp: inputs are `handle_*` calls with the time
//! passed in (a peer's handshake, each decoded message, a block written, a
//! piece checked, a disconnect), and the periodic phases of the classic
//! loop (`check_timeouts`, `send_haves`, `request_blocks`, `rechoke`,
//! `send_pex`) are plain methods too. Outputs wait in a queue drained with
//! [`Torrent::poll_action`]: messages to send, peers to close, pieces to
//! hash, digests to read ([`Action`]). The session drives one per torrent
//! over real sockets and files; the tests drive several against each other
//! in memory on a virtual clock.
//!
//! It owns what the protocol decides with: our verified pieces (`have`),
//! the [`Picker`], the [`PartialPieces`] in progress, each peer's
//! [`PeerState`], the choker's state, the known addresses with their
//! strikes and bans ([`PeerList`]), the [`SmartBan`] records and the
//! torrent's counters.

mod action;
mod download;
mod fast;
mod invariants;
mod metadata_fetch;
mod metadata_serve;
mod pex;
mod seed_limit;
mod timeouts;
mod upload;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use action::{
    Action, BlockDigest, BlockWrite, DigestPurpose, Handled, Note, OutMessage, PeerKey,
};
pub use fast::{allowed_fast_set, our_handshake, ALLOWED_FAST_SET_LEN};
pub use metadata_fetch::MAX_EARLY_HAVES;
pub use metadata_serve::{
    MAX_METADATA_PIECES_PER_WINDOW, MAX_METADATA_REJECTS_PER_WINDOW, METADATA_REPLY_WINDOW,
};
pub use pex::{MAX_PEX_LISTED, PEX_PERIOD};
pub use seed_limit::{SeedLimitMet, SeedLimits};
pub use timeouts::REQUEST_TIMEOUT;
pub use upload::Serve;

use crate::bitfield::Bitfield;
use crate::choker::ChokerKind;
use crate::close_reason::CloseReason;
use crate::metainfo::{Metainfo, BLOCK_LEN};
use crate::partial_pieces::PartialPieces;
use crate::peer::{PeerState, MAX_REQUESTS_FOR_MISSING};
use crate::peer_list::PeerList;
use crate::picker::{Picker, Strategy};
use crate::rate::RateMeter;
use crate::ratelimit::TokenBucket;
use crate::rng::Rng;
use crate::smart_ban::SmartBan;
use crate::wire::{BlockRequest, Handshake, Message};

/// Our client name in the BEP 10 handshake.
const CLIENT_NAME: &str = concat!("pollen ", env!("CARGO_PKG_VERSION"));

/// How often peers are rechoked (BEP 3 and most clients: ten seconds).
pub const RECHOKE_PERIOD: Duration = Duration::from_secs(10);

/// How often request timeouts and snubbing are looked at.
pub const CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Requests a peer may send while choked before it is disconnected (a few
/// race with our CHOKE; a stream of them is a broken or hostile peer).
const MAX_REQUESTS_WHILE_CHOKED: u32 = 100;

/// Default cap on connected peers: enough for a healthy swarm, few enough
/// for a router's file-descriptor and memory budget.
pub const DEFAULT_MAX_PEERS: usize = 50;

/// How one torrent is downloaded and shared.
#[derive(Debug, Clone)]
pub struct TorrentConfig {
    /// Piece selection strategy.
    pub strategy: Strategy,
    /// Start endgame once this percentage of pieces is verified; by
    /// default it starts when every missing block has been requested.
    pub endgame_percent: Option<u8>,
    /// Choking algorithm while downloading.
    pub choker: ChokerKind,
    /// The upload limit (bytes per second) proportional share divides.
    pub max_up: Option<u64>,
    /// Most peers: when every slot is taken, a very slow peer may be
    /// replaced by a waiting candidate.
    pub max_peers: usize,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        TorrentConfig {
            strategy: Strategy::RarestFirst,
            endgame_percent: None,
            choker: ChokerKind::TitForTat,
            max_up: None,
            max_peers: DEFAULT_MAX_PEERS,
        }
    }
}

/// One torrent's counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Payload bytes received and verified or pending verification.
    pub downloaded: u64,
    /// Payload bytes sent.
    pub uploaded: u64,
    /// Payload bytes received that were thrown away (duplicates, failed hashes).
    pub wasted: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Pieces hashed by the start-up check: every piece with `--check` or
    /// without a usable resume state, else only those it does not vouch for.
    pub pieces_checked: u32,
}

/// A connected peer (handshakes exchanged) as the core sees it.
#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    peer_id: [u8; 20],
    state: PeerState,
    /// Its upload bandwidth share under proportional share choking.
    upload_share: Option<TokenBucket>,
    /// A close was asked for; nothing more is sent to it or taken from it.
    closing: bool,
    /// When the handshakes were exchanged.
    joined_at: Instant,
    /// Its `ut_metadata` id and how many metadata replies it got lately.
    metadata: metadata_serve::MetadataPeer,
    /// What it said it has before the metadata arrived (a magnet link).
    early: metadata_fetch::EarlyPieces,
    /// Its `ut_pex` id, where it listens, and what we told it (BEP 11).
    pex: pex::PexPeerState,
}

/// What a connected peer looks like from outside (status line, TUI).
#[derive(Debug, Clone)]
pub struct PeerView<'a> {
    /// The driver's key.
    pub key: PeerKey,
    /// Its address.
    pub addr: SocketAddr,
    /// Its id from the handshake.
    pub peer_id: [u8; 20],
    /// Its protocol state.
    pub state: &'a PeerState,
    /// Payload bytes per second it sends us.
    pub down_rate: u64,
    /// Payload bytes per second we send it.
    pub up_rate: u64,
}

/// One torrent's protocol state machine. See the module doc.
#[derive(Debug)]
pub struct Torrent {
    meta: Arc<Metainfo>,
    config: TorrentConfig,
    /// Verified pieces.
    have: Bitfield,
    picker: Picker,
    partial_pieces: PartialPieces,
    /// Digests of blocks from failed pieces with several senders, to find
    /// who sent the bad ones once the piece passes.
    smart_ban: SmartBan,
    /// The block senders of failed pieces whose digests are being read.
    failed_senders: BTreeMap<u32, Vec<(u32, SocketAddr)>>,
    peer_list: PeerList,
    /// Peers through the handshake, by the driver's key (ordered, so turns
    /// and ties are deterministic for a given seed).
    peers: BTreeMap<PeerKey, Peer>,
    rng: Rng,
    /// Pieces verified since the last send-haves phase.
    pending_haves: Vec<u32>,
    /// The start-up check is running: nothing is requested or announced.
    checking: bool,
    optimistic: Option<PeerKey>,
    next_rechoke: Instant,
    next_optimistic: Instant,
    next_check: Instant,
    /// The peer that went first in the last request phase.
    request_turn: PeerKey,
    stats: Stats,
    down_rate: RateMeter,
    up_rate: RateMeter,
    actions: VecDeque<Action>,
    /// Addresses struck since the driver last asked ([`Torrent::take_struck`]),
    /// at most [`MAX_STRUCK_KEPT`].
    struck: Vec<SocketAddr>,
    /// The metadata fetch of a magnet link, until the metadata arrives.
    fetch: Option<Box<crate::metadata::MetadataFetch<PeerKey>>>,
}

/// Most struck addresses kept for the driver between two
/// [`Torrent::take_struck`] calls (it asks every pass; a pass fails a few
/// pieces at most).
const MAX_STRUCK_KEPT: usize = 64;

impl Torrent {
    /// A torrent that has the pieces in `have` (trusted from a resume
    /// state, or none), before its start-up check.
    pub fn new(
        meta: Arc<Metainfo>,
        config: TorrentConfig,
        have: Bitfield,
        rng: Rng,
        now: Instant,
    ) -> Torrent {
        let piece_count = meta.layout.piece_count();
        let mut picker = Picker::new(piece_count, config.strategy);
        for piece in have.iter_ones() {
            picker.remove_piece(piece);
        }
        Torrent {
            meta,
            config,
            have,
            picker,
            partial_pieces: PartialPieces::new(),
            smart_ban: SmartBan::new(),
            failed_senders: BTreeMap::new(),
            peer_list: PeerList::new(),
            peers: BTreeMap::new(),
            rng,
            pending_haves: Vec::new(),
            checking: true,
            optimistic: None,
            next_rechoke: now + RECHOKE_PERIOD,
            next_optimistic: now,
            next_check: now,
            request_turn: 0,
            stats: Stats::default(),
            down_rate: RateMeter::new(),
            up_rate: RateMeter::new(),
            actions: VecDeque::new(),
            struck: Vec::new(),
            fetch: None,
        }
    }

    /// The next thing the driver must do, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The torrent's metainfo.
    pub fn meta(&self) -> &Arc<Metainfo> {
        &self.meta
    }

    /// Our verified pieces.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether every piece is verified (never while the metadata is
    /// still being fetched: no pieces are known then).
    pub fn is_complete(&self) -> bool {
        self.fetch.is_none() && self.have.is_complete()
    }

    /// Whether the start-up check is still running.
    pub fn is_checking(&self) -> bool {
        self.checking
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Payload bytes per second received lately.
    pub fn down_rate(&mut self, now: Instant) -> u64 {
        self.down_rate.rate(now)
    }

    /// Payload bytes per second sent lately.
    pub fn up_rate(&mut self, now: Instant) -> u64 {
        self.up_rate.rate(now)
    }

    /// Bytes of the torrent not yet verified.
    pub fn bytes_left(&self) -> u64 {
        let layout = &self.meta.layout;
        let have: u64 = self
            .have
            .iter_ones()
            .filter_map(|p| layout.piece(p))
            .map(|p| u64::from(layout.piece_size(p)))
            .sum();
        layout.total_len().saturating_sub(have)
    }

    /// The known peer addresses, with their strikes and bans.
    pub fn peer_list(&self) -> &PeerList {
        &self.peer_list
    }

    /// The known peer addresses, to add to or dial from.
    pub fn peer_list_mut(&mut self) -> &mut PeerList {
        &mut self.peer_list
    }

    /// The connected peers, with their rates at `now`.
    pub fn peers(&mut self, now: Instant) -> Vec<PeerView<'_>> {
        let rates: Vec<(u64, u64)> = self
            .peers
            .values_mut()
            .filter(|p| !p.closing)
            .map(|p| (p.state.down_rate(now), p.state.up_rate(now)))
            .collect();
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .zip(rates)
            .map(|((&key, p), (down_rate, up_rate))| PeerView {
                key,
                addr: p.addr,
                peer_id: p.peer_id,
                state: &p.state,
                down_rate,
                up_rate,
            })
            .collect()
    }

    /// How many peers are connected (handshakes exchanged, not closing).
    pub fn peer_count(&self) -> usize {
        self.peers.values().filter(|p| !p.closing).count()
    }

    /// Whether `piece` is in progress (some of its blocks asked for or here).
    pub fn is_in_progress(&self, piece: u32) -> bool {
        self.partial_pieces.contains(piece)
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.picker.availability(piece)
    }

    /// The addresses proven to have sent bad data since the last call
    /// (each strike, whether or not the address is in the peer list): the
    /// session backs off a web seed whose data failed a hash check.
    pub fn take_struck(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.struck)
    }

    /// Whether a request of ours for `block` is in flight to peer `key`.
    pub fn has_requested(&self, key: PeerKey, block: &crate::metainfo::Block) -> bool {
        self.peers
            .get(&key)
            .is_some_and(|p| !p.closing && p.state.has_requested(block))
    }

    /// Whether the peer has queued requests we could serve now (while we
    /// choke it, only those for its allowed-fast pieces stay queued).
    pub fn has_requests_to_serve(&self, peer: PeerKey) -> bool {
        self.peers.get(&peer).is_some_and(|p| {
            !p.closing
                && p.state.peek_queued().is_some_and(|b| {
                    !p.state.am_choking() || p.state.is_allowed_fast_for_it(b.piece.get())
                })
        })
    }

    /// When the core next wants [`Torrent::handle_timeout`].
    pub fn next_deadline(&self) -> Instant {
        let fetch = self.fetch.as_ref().and_then(|f| f.next_deadline());
        let core = self.next_rechoke.min(self.next_check);
        fetch.map_or(core, |at| at.min(core))
    }

    /// Runs the periodic phases that are due, in the loop's order: what
    /// one tick of the session does for this torrent (request timeouts and
    /// snubbing, HAVEs, requests, the choke epoch).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_check {
            self.check_timeouts(now);
        }
        self.send_haves();
        self.request_blocks(now, None);
        if self.rechoke_due(now) {
            self.rechoke(now, &|_| false);
            self.replace_slow_peers(now);
        }
    }

    /// Whether the choke epoch is due.
    pub fn rechoke_due(&self, now: Instant) -> bool {
        now >= self.next_rechoke
    }

    // ----- the start-up check -------------------------------------------

    /// The start-up check hashed `piece` from disk: it is ours or not,
    /// whatever the resume state said.
    pub fn handle_existing_piece(&mut self, piece: u32, ok: bool) {
        self.stats.pieces_checked += 1;
        if ok {
            self.have.set(piece);
            self.picker.remove_piece(piece);
        } else {
            self.unverify(piece);
        }
    }

    /// The start-up check is done: tell connected peers what we have, and
    /// start wanting what they have.
    pub fn handle_check_done(&mut self) {
        self.checking = false;
        self.stats.downloaded = 0;
        let keys: Vec<PeerKey> = self.active_keys();
        let pieces: Vec<u32> = self.have.iter_ones().collect();
        for &key in &keys {
            for &piece in &pieces {
                self.send(key, OutMessage::Have(piece));
            }
        }
        for key in keys {
            self.update_interest(key);
        }
    }

    /// `piece` failed a hash check: it is not ours, whatever the resume
    /// state or an earlier check said. Returns whether it was believed ours.
    pub fn unverify(&mut self, piece: u32) -> bool {
        let was = self.have.clear(piece);
        if was {
            log::warn!("piece {piece} was believed verified but fails its hash check");
        }
        self.picker.restore_piece(piece);
        was
    }

    // ----- peers coming and going ---------------------------------------

    /// Whether a handshake from `peer_id` may be accepted: not banned, and
    /// not already connected under another key. `Err` is the reason to close.
    pub fn check_handshake(&self, peer_id: &[u8; 20]) -> Result<(), CloseReason> {
        if self.peer_list.is_banned_id(peer_id) {
            return Err(CloseReason::BannedPeerId);
        }
        if self
            .peers
            .values()
            .any(|p| !p.closing && p.peer_id == *peer_id)
        {
            return Err(CloseReason::DuplicatePeerId);
        }
        Ok(())
    }

    /// The handshakes are exchanged with the peer at `addr` under the
    /// driver's `key` (ours was [`our_handshake`]): it joins, and gets our
    /// bitfield (unless we have nothing or are still checking; with the
    /// fast extension in force HAVE_ALL / HAVE_NONE where they fit, then
    /// ALLOWED_FAST) and, if it speaks BEP 10, our extension handshake. A
    /// banned or duplicate peer is closed instead.
    pub fn handle_handshake(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        handshake: &Handshake,
        now: Instant,
    ) {
        if let Err(reason) = self.check_handshake(&handshake.peer_id) {
            self.actions.push_back(Action::Close { peer: key, reason });
            return;
        }
        self.peer_list.set_peer_id(addr, handshake.peer_id);
        let piece_count = self.meta.layout.piece_count();
        let mut state = PeerState::new(piece_count);
        let fast = handshake.supports_fast() && our_handshake([0; 20], [0; 20]).supports_fast();
        if fast {
            state.set_fast();
        }
        self.peers.insert(
            key,
            Peer {
                addr,
                peer_id: handshake.peer_id,
                state,
                upload_share: None,
                closing: false,
                joined_at: now,
                metadata: metadata_serve::MetadataPeer::default(),
                early: metadata_fetch::EarlyPieces::default(),
                pex: pex::PexPeerState::default(),
            },
        );
        if fast {
            self.greet_fast_peer(key, addr);
        } else if !self.checking && self.have.count_ones() > 0 {
            let bytes = self.have.as_bytes().to_vec();
            self.send(key, OutMessage::Bitfield(bytes));
        }
        if handshake.supports_extensions() {
            let payload = self.our_ext_handshake();
            self.send(key, OutMessage::ExtHandshake(payload));
        }
    }

    /// The peer's connection is gone (closed by either side, for `reason`):
    /// its requests go back to the pool, its pieces leave the availability
    /// counts, and the peer list learns how it ended.
    pub fn handle_disconnected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        reason: &CloseReason,
        now: Instant,
    ) {
        if let Some(fetch) = self.fetch.as_mut() {
            fetch.remove_peer(key);
        }
        if let Some(mut peer) = self.peers.remove(&key) {
            // The address it listens on (a peer that dialled us) is free
            // to dial again, as the connection's own is.
            if let Some(listen) = peer.pex.listen_addr().filter(|l| *l != addr) {
                self.peer_list.disconnected(listen, reason, now);
            }
            for block in peer.state.take_all_requests() {
                self.partial_pieces.release(&block);
            }
            self.partial_pieces.disown(peer.addr);
            self.picker.remove_peer(peer.state.has());
        }
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
        self.peer_list.disconnected(addr, reason, now);
    }

    // ----- messages -----------------------------------------------------

    /// Handles one message from a connected peer. A PIECE we asked for
    /// comes back as [`Handled::Write`]: the caller writes its data.
    pub fn handle_message(&mut self, key: PeerKey, message: Message<'_>, now: Instant) -> Handled {
        let piece_count = self.meta.layout.piece_count();
        let Some(peer) = self.peers.get_mut(&key).filter(|p| !p.closing) else {
            return Handled::Done;
        };
        // BITFIELD should come first; extension handshakes (libtorrent and
        // Transmission send theirs before it) and keepalives do not count.
        let first = if matches!(message, Message::Extended { .. } | Message::KeepAlive) {
            peer.state.is_before_first_message()
        } else {
            peer.state.note_message()
        };
        log::trace!("{} <- {}", peer.addr, message.name());
        if message.is_fast_extension() && !peer.state.fast() {
            let message = message.name();
            self.close(key, CloseReason::FastMessageWithoutFast { message });
            return Handled::Done;
        }
        if self.fetch.is_some() && self.hold_early_message(key, &message) {
            return Handled::Done;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return Handled::Done;
        };
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Unknown { .. } => {}
            Message::HaveAll
            | Message::HaveNone
            | Message::Reject(_)
            | Message::AllowedFast { .. }
            | Message::Suggest { .. } => self.on_fast_message(key, message, first),
            Message::Extended { id, payload } => self.on_extended(key, id, payload, now),
            Message::Choke => {
                for block in peer.state.peer_choked() {
                    self.partial_pieces.release(&block);
                }
                self.partial_pieces.disown(peer.addr);
            }
            Message::Unchoke => peer.state.peer_unchoked(now),
            Message::Interested => {
                peer.state.set_peer_interested(true);
                self.unchoke_if_slot_free(key);
            }
            Message::NotInterested => peer.state.set_peer_interested(false),
            Message::Have { piece } => {
                if piece >= piece_count {
                    self.close(key, CloseReason::HaveOutOfRange { piece, piece_count });
                } else if peer.state.add_piece(piece) {
                    self.picker.add_piece(piece);
                    self.update_interest(key);
                }
            }
            Message::Bitfield(bytes) => {
                // BEP 3 puts BITFIELD first, but aria2 sends a fresh one after
                // its first pieces arrive: a late one replaces what we knew.
                if !first {
                    log::debug!("{}: late BITFIELD replaces its piece set", peer.addr);
                }
                match Bitfield::from_bytes(bytes, piece_count) {
                    Ok(field) => self.set_peer_pieces(key, field),
                    Err(e) => self.close(key, CloseReason::BadBitfield(e)),
                }
            }
            Message::Request(request) => self.on_request(key, request),
            Message::Cancel(request) => {
                // BEP 6: a cancelled request still gets one answer.
                if let Some(block) =
                    peer.state
                        .cancel_queued(request.piece, request.begin, request.len)
                {
                    self.reject(key, &block);
                }
            }
            Message::Piece { piece, begin, data } => {
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                return self.on_block(key, piece, begin, len, now);
            }
        }
        Handled::Done
    }

    /// The peer told us its pieces (BITFIELD or HAVE_ALL).
    fn set_peer_pieces(&mut self, key: PeerKey, field: Bitfield) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        self.picker.add_peer(&field);
        let old = peer.state.set_pieces(field);
        self.picker.remove_peer(&old);
        if peer.state.is_seed() && self.have.is_complete() {
            return self.close(key, CloseReason::BothComplete);
        }
        self.update_interest(key);
    }

    /// A REQUEST: queue it if we are unchoking the peer (or it is for one
    /// of its allowed-fast pieces), have the piece and the range is valid.
    /// Otherwise, with the fast extension in force, answer REJECT_REQUEST
    /// (BEP 6); without it, drop it. A bad range, or a stream of requests
    /// while choked or for pieces we lack, closes the peer.
    fn on_request(&mut self, key: PeerKey, request: BlockRequest) {
        let layout = &self.meta.layout;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(block) = layout.check_block(request.piece, request.begin, request.len, BLOCK_LEN)
        else {
            return self.close(
                key,
                CloseReason::RequestOutOfRange {
                    piece: request.piece,
                    begin: request.begin,
                    len: request.len,
                },
            );
        };
        let fast = peer.state.fast();
        if peer.state.am_choking() && !peer.state.is_allowed_fast_for_it(request.piece) {
            if peer.state.note_request_while_choked() > MAX_REQUESTS_WHILE_CHOKED {
                return self.close(key, CloseReason::RequestsWhileChoked);
            }
            return self.reject(key, &block);
        }
        if !self.have.has(request.piece) {
            let missing = CloseReason::RequestForMissingPiece {
                piece: request.piece,
            };
            if !fast || peer.state.note_request_for_missing() > MAX_REQUESTS_FOR_MISSING {
                return self.close(key, missing);
            }
            return self.reject(key, &block);
        }
        if !peer.state.queue_request(block) && fast {
            // The queue is full (a duplicate is answered once, when served).
            if !peer.state.is_queued(&block) {
                self.reject(key, &block);
            }
        }
    }

    /// Sends INTERESTED or NOT_INTERESTED when our interest in the peer changed.
    fn update_interest(&mut self, key: PeerKey) {
        if self.checking {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key).filter(|p| !p.closing) else {
            return;
        };
        let change = peer.state.update_interest(&self.have);
        self.send_control(key, change);
    }

    // ----- helpers ------------------------------------------------------

    /// Queues a message to a peer that is not closing.
    fn send(&mut self, key: PeerKey, message: OutMessage) {
        if self.peers.get(&key).is_some_and(|p| !p.closing) {
            self.actions.push_back(Action::Send { peer: key, message });
        }
    }

    /// Queues the message a [`PeerState`] transition returned, if any.
    fn send_control(&mut self, key: PeerKey, message: Option<Message<'static>>) {
        if let Some(message) = message.and_then(OutMessage::from_control) {
            self.send(key, message);
        }
    }

    /// Asks the driver to close a peer (the first reason wins).
    fn close(&mut self, key: PeerKey, reason: CloseReason) {
        if let Some(peer) = self.peers.get_mut(&key).filter(|p| !p.closing) {
            peer.closing = true;
            self.actions.push_back(Action::Close { peer: key, reason });
        }
    }

    /// Keys of the peers not closing, in order.
    fn active_keys(&self) -> Vec<PeerKey> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .map(|(&k, _)| k)
            .collect()
    }

    fn note(&mut self, note: Note) {
        self.actions.push_back(Action::Note(note));
    }
}

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
