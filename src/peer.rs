//! One peer's protocol state: the four BEP 3 flags, what it has, the
//! requests in flight each way, and its transfer rates.
//!
//! Layer 0: pure; times are passed in. The session owns one per connection
//! beside the socket and its buffers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::metainfo::{Block, BLOCK_LEN};
use crate::rate::RateMeter;
use crate::wire::Message;

/// Fewest requests kept in flight to an unchoking peer: enough to cover a
/// round trip before any rate is measured (slow start).
pub const MIN_PIPELINE: usize = 16;

/// Most requests in flight to one peer (libtorrent's cap): 500 blocks is
/// 8 MiB, plenty for a fast loopback peer.
pub const MAX_PIPELINE: usize = 500;

/// Seconds of the peer's measured rate kept in flight (libtorrent: 3 s), so
/// the pipe never drains while a request crosses the network.
const PIPELINE_SECONDS: u64 = 3;

/// A peer that unchoked us but sends nothing for this long is snubbing us
/// (libtorrent and Transmission: one minute).
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(60);

/// Most of a peer's requests we queue to serve, advertised as `reqq` in
/// our BEP 10 handshake (libtorrent and Transmission use about 2000; at 12
/// bytes a request the queue costs at most 24 KB per peer).
pub const MAX_QUEUED_REQUESTS: usize = 2000;

/// Most PIECEs answering no request of ours (and no request we recently
/// gave up on) a peer may send before it is closed: one can be a race or a
/// client quirk; a stream of them is waste at best and an attack at worst.
pub const MAX_UNREQUESTED_BLOCKS: u32 = 8;

/// The window [`MAX_UNREQUESTED_BLOCKS`] counts over: a stream of
/// unrequested blocks is closed, while a quirk now and then over weeks of
/// seeding is not held against an honest peer forever.
pub const UNREQUESTED_WINDOW: Duration = Duration::from_secs(60);

/// Requests we gave up on (cancelled, timed out, or dropped by a CHOKE)
/// that are remembered so a late answer is not taken for an unrequested
/// block: one full pipeline's worth.
pub const MAX_RELEASED_REMEMBERED: usize = MAX_PIPELINE;

/// Most pieces a peer's ALLOWED_FAST messages (BEP 6) are believed for:
/// clients send a handful (libtorrent's default set is 5 pieces); a peer
/// sending more gets no more memory for them.
pub const MAX_ALLOWED_FAST_FROM_PEER: usize = 32;

/// Most SUGGEST_PIECE hints (BEP 6) remembered per peer, newest kept
/// (libtorrent's `max_suggest_pieces` is 16 too): a hint only orders our
/// picks, so old ones may be forgotten.
pub const MAX_SUGGESTED_PIECES: usize = 16;

/// Requests for pieces we do not have that a peer under the fast extension
/// may send (each is answered with REJECT_REQUEST) before it is closed: a
/// few race a piece that failed its check again; a stream is a broken peer.
pub const MAX_REQUESTS_FOR_MISSING: u32 = 100;

/// One of our requests in flight to this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutRequest {
    /// The block asked for.
    pub block: Block,
    /// When the REQUEST was queued.
    pub sent_at: Instant,
}

/// The protocol state of one connected peer. Its fields are private: each
/// rule that changes them is one method (a transition), so no caller can
/// apply half a rule (unchoke without forgetting the choked-request count,
/// choke without dropping the queue). Transitions that must be told to the
/// peer return the message to send.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// We refuse to upload to it (BEP 3: starts true).
    am_choking: bool,
    /// We want something it has (starts false).
    am_interested: bool,
    /// It refuses to upload to us (starts true).
    peer_choking: bool,
    /// It wants something we have (starts false).
    peer_interested: bool,
    /// The pieces it has.
    has: Bitfield,
    /// Our requests it has not answered yet.
    requested: Vec<OutRequest>,
    /// Its requests we have not served yet (at most [`MAX_QUEUED_REQUESTS`]).
    queued: VecDeque<Block>,
    /// What it sends us.
    down: RateMeter,
    /// What we send it.
    up: RateMeter,
    /// Some message arrived after the handshake (so a BITFIELD now is late).
    got_message: bool,
    /// When its last block arrived (for snubbing and stall detection).
    last_block_at: Option<Instant>,
    /// Holds the optimistic unchoke slot.
    optimistic: bool,
    /// REQUESTs it sent while we were choking it.
    requests_while_choked: u32,
    /// The most requests it queues (`reqq` from its BEP 10 handshake).
    max_requests: Option<usize>,
    /// When it last unchoked us.
    unchoked_at: Option<Instant>,
    /// It unchoked us, holds our requests, and has sent nothing for
    /// [`SNUB_TIMEOUT`]: one request at a time, and no upload slot for it.
    snubbed: bool,
    /// Our requests we gave up on, newest last (at most
    /// [`MAX_RELEASED_REMEMBERED`]): a late PIECE for one is no offence.
    released: VecDeque<Block>,
    /// PIECEs it sent that answered nothing we asked for, within the
    /// current [`UNREQUESTED_WINDOW`], and when that window began.
    unrequested: (u32, Option<Instant>),
    /// The BEP 6 fast extension is in force: both handshakes set its bit.
    fast: bool,
    /// The pieces we told it with ALLOWED_FAST: their requests are served
    /// even while we choke it.
    allowed_fast_for_it: Vec<u32>,
    /// The pieces it told us with ALLOWED_FAST (at most
    /// [`MAX_ALLOWED_FAST_FROM_PEER`]): we may request them while it chokes us.
    allowed_fast_from_it: Vec<u32>,
    /// Its SUGGEST_PIECE hints, newest last (at most [`MAX_SUGGESTED_PIECES`]).
    suggested: VecDeque<u32>,
    /// Its requests for pieces we do not have (fast extension: rejected).
    requests_for_missing: u32,
}

impl PeerState {
    /// A freshly connected peer for a torrent of `piece_count` pieces.
    pub fn new(piece_count: u32) -> PeerState {
        PeerState {
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            has: Bitfield::new(piece_count),
            requested: Vec::new(),
            queued: VecDeque::new(),
            down: RateMeter::new(),
            up: RateMeter::new(),
            got_message: false,
            last_block_at: None,
            optimistic: false,
            requests_while_choked: 0,
            max_requests: None,
            unchoked_at: None,
            snubbed: false,
            released: VecDeque::new(),
            unrequested: (0, None),
            fast: false,
            allowed_fast_for_it: Vec::new(),
            allowed_fast_from_it: Vec::new(),
            suggested: VecDeque::new(),
            requests_for_missing: 0,
        }
    }

    // ----- what it looks like ------------------------------------------

    /// We refuse to upload to it.
    pub fn am_choking(&self) -> bool {
        self.am_choking
    }

    /// We want something it has.
    pub fn am_interested(&self) -> bool {
        self.am_interested
    }

    /// It refuses to upload to us.
    pub fn peer_choking(&self) -> bool {
        self.peer_choking
    }

    /// It wants something we have.
    pub fn peer_interested(&self) -> bool {
        self.peer_interested
    }

    /// The pieces it has.
    pub fn has(&self) -> &Bitfield {
        &self.has
    }

    /// Our requests in flight to it.
    pub fn requested(&self) -> &[OutRequest] {
        &self.requested
    }

    /// How many of its requests wait to be served.
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// It is snubbing us (see [`SNUB_TIMEOUT`]).
    pub fn snubbed(&self) -> bool {
        self.snubbed
    }

    /// It holds the optimistic unchoke slot.
    pub fn optimistic(&self) -> bool {
        self.optimistic
    }

    /// Payload bytes it sent us.
    pub fn downloaded(&self) -> u64 {
        self.down.total()
    }

    /// Payload bytes we sent it.
    pub fn uploaded(&self) -> u64 {
        self.up.total()
    }

    /// Bytes per second it sends us lately.
    pub fn down_rate(&mut self, now: Instant) -> u64 {
        self.down.rate(now)
    }

    /// Bytes per second we send it lately.
    pub fn up_rate(&mut self, now: Instant) -> u64 {
        self.up.rate(now)
    }

    // ----- our side: choking, interest, serving ----------------------------

    /// We unchoke it: its count of requests sent while choked starts over.
    /// The UNCHOKE to send, unless it was unchoked already.
    pub fn unchoke(&mut self) -> Option<Message<'static>> {
        if !self.am_choking {
            return None;
        }
        self.am_choking = false;
        self.requests_while_choked = 0;
        Some(Message::Unchoke)
    }

    /// We choke it: its queued requests are dropped (BEP 3). Under the
    /// fast extension (BEP 6) the requests for its allowed-fast pieces stay
    /// queued and the others are returned, each to be answered with a
    /// REJECT_REQUEST. The CHOKE to send, unless it was choked already.
    pub fn choke(&mut self) -> Option<(Message<'static>, Vec<Block>)> {
        if self.am_choking {
            return None;
        }
        self.am_choking = true;
        let queued = std::mem::take(&mut self.queued);
        let mut rejected = Vec::new();
        for block in queued {
            if !self.fast {
                continue; // BEP 3: a CHOKE drops them all, silently
            }
            if self.allowed_fast_for_it.contains(&block.piece.get()) {
                self.queued.push_back(block);
            } else {
                rejected.push(block);
            }
        }
        Some((Message::Choke, rejected))
    }

    /// The BEP 6 fast extension is in force with it (both handshakes set
    /// its bit); it stays so for the life of the connection.
    pub fn set_fast(&mut self) {
        self.fast = true;
    }

    /// Whether the BEP 6 fast extension is in force with it.
    pub fn fast(&self) -> bool {
        self.fast
    }

    /// The pieces we sent it ALLOWED_FAST for (served while we choke it).
    pub fn set_allowed_fast_for_it(&mut self, pieces: Vec<u32>) {
        self.allowed_fast_for_it = pieces;
    }

    /// Whether we told it `piece` is allowed fast.
    pub fn is_allowed_fast_for_it(&self, piece: u32) -> bool {
        self.fast && self.allowed_fast_for_it.contains(&piece)
    }

    /// It sent ALLOWED_FAST for `piece`: remembered unless known already or
    /// [`MAX_ALLOWED_FAST_FROM_PEER`] are remembered; whether it was added.
    pub fn add_allowed_fast(&mut self, piece: u32) -> bool {
        if self.allowed_fast_from_it.len() >= MAX_ALLOWED_FAST_FROM_PEER
            || self.allowed_fast_from_it.contains(&piece)
        {
            return false;
        }
        self.allowed_fast_from_it.push(piece);
        true
    }

    /// The pieces it allows us to request while it chokes us.
    pub fn allowed_fast(&self) -> &[u32] {
        &self.allowed_fast_from_it
    }

    /// It suggested `piece` (SUGGEST_PIECE): remembered as the newest hint,
    /// the oldest forgotten beyond [`MAX_SUGGESTED_PIECES`].
    pub fn add_suggested(&mut self, piece: u32) {
        self.suggested.retain(|&p| p != piece);
        if self.suggested.len() >= MAX_SUGGESTED_PIECES {
            self.suggested.pop_front();
        }
        self.suggested.push_back(piece);
    }

    /// Its SUGGEST_PIECE hints, oldest first.
    pub fn suggested(&self) -> impl Iterator<Item = u32> + '_ {
        self.suggested.iter().copied()
    }

    /// It asked for a piece we do not have (fast extension): how many so far.
    pub fn note_request_for_missing(&mut self) -> u32 {
        self.requests_for_missing = self.requests_for_missing.saturating_add(1);
        self.requests_for_missing
    }

    /// Marks (or unmarks) it as the optimistic unchoke.
    pub fn set_optimistic(&mut self, optimistic: bool) {
        self.optimistic = optimistic;
    }

    /// Our interest follows whether it has a piece we lack (`ours`): the
    /// INTERESTED or NOT_INTERESTED to send when that changed.
    pub fn update_interest(&mut self, ours: &Bitfield) -> Option<Message<'static>> {
        let interested = self.has_something_for(ours);
        if interested == self.am_interested {
            return None;
        }
        self.am_interested = interested;
        Some(if interested {
            Message::Interested
        } else {
            Message::NotInterested
        })
    }

    /// A REQUEST arrived while we choke it: how many so far.
    pub fn note_request_while_choked(&mut self) -> u32 {
        self.requests_while_choked = self.requests_while_choked.saturating_add(1);
        self.requests_while_choked
    }

    /// Queues its request for `block` (unless queued already or the queue
    /// holds [`MAX_QUEUED_REQUESTS`]); whether it was queued.
    pub fn queue_request(&mut self, block: Block) -> bool {
        if self.queued.len() >= MAX_QUEUED_REQUESTS || self.queued.contains(&block) {
            return false;
        }
        self.queued.push_back(block);
        true
    }

    /// It withdrew its request (CANCEL): the block taken off the queue, if
    /// it was queued (under the fast extension it gets a REJECT_REQUEST).
    pub fn cancel_queued(&mut self, piece: u32, begin: u32, len: u32) -> Option<Block> {
        let at = self
            .queued
            .iter()
            .position(|b| b.piece.get() == piece && b.begin == begin && b.len == len)?;
        self.queued.remove(at)
    }

    /// Whether its request for `block` is queued.
    pub fn is_queued(&self, block: &Block) -> bool {
        self.queued.contains(block)
    }

    /// The next of its queued requests, whether or not it may be served now.
    pub fn peek_queued(&self) -> Option<&Block> {
        self.queued.front()
    }

    /// The next of its requests to serve, taken off the queue.
    pub fn pop_queued(&mut self) -> Option<Block> {
        self.queued.pop_front()
    }

    /// Puts back a request taken with [`PeerState::pop_queued`] that could
    /// not be served yet (a rate limit).
    pub fn unpop_queued(&mut self, block: Block) {
        self.queued.push_front(block);
    }

    /// We sent it a block of `len` bytes.
    pub fn block_sent(&mut self, len: u64, now: Instant) {
        self.up.add(len, now);
    }

    // ----- its side: messages it sent ------------------------------------

    /// A message other than an extension handshake or a keepalive arrived:
    /// whether it is the first (so a BITFIELD or HAVE_ALL is in its place).
    pub fn note_message(&mut self) -> bool {
        let first = !self.got_message;
        self.got_message = true;
        first
    }

    /// Whether no message but extension handshakes and keepalives came yet.
    pub fn is_before_first_message(&self) -> bool {
        !self.got_message
    }

    /// Its `reqq` (BEP 10): the most requests it queues.
    pub fn set_max_requests(&mut self, max: Option<usize>) {
        self.max_requests = max;
    }

    /// It choked us: our requests in flight are dropped (BEP 3), returned
    /// so they go back to the pool, and remembered as released. Under the
    /// fast extension a CHOKE cancels nothing (BEP 6): each request is still
    /// answered by a PIECE or a REJECT_REQUEST, so they stay in flight (as
    /// libtorrent keeps them) until then or until they time out; none is
    /// returned.
    pub fn peer_choked(&mut self) -> Vec<Block> {
        self.peer_choking = true;
        if self.fast {
            return Vec::new();
        }
        self.take_all_requests()
    }

    /// It unchoked us.
    pub fn peer_unchoked(&mut self, now: Instant) {
        self.peer_choking = false;
        self.unchoked_at = Some(now);
    }

    /// It became interested or not.
    pub fn set_peer_interested(&mut self, interested: bool) {
        self.peer_interested = interested;
    }

    /// It now has `piece`: true if that is news.
    pub fn add_piece(&mut self, piece: u32) -> bool {
        self.has.set(piece)
    }

    /// Its whole piece set (BITFIELD, HAVE_ALL); the old one is returned.
    pub fn set_pieces(&mut self, pieces: Bitfield) -> Bitfield {
        std::mem::replace(&mut self.has, pieces)
    }

    /// A PIECE for `block` arrived: counted in its rate, it is no longer
    /// snubbing us; true when it answers one of our requests in flight
    /// (which is then done).
    pub fn block_arrived(&mut self, block: &Block, now: Instant) -> bool {
        self.down.add(u64::from(block.len), now);
        self.last_block_at = Some(now);
        self.snubbed = false;
        self.take_request(block)
    }

    /// We sent a REQUEST for `block`.
    pub fn add_request(&mut self, block: Block, now: Instant) {
        self.requested.push(OutRequest {
            block,
            sent_at: now,
        });
    }

    /// How many requests to keep in flight: the peer's rate times
    /// three seconds of it, in blocks, within [`MIN_PIPELINE`] to [`MAX_PIPELINE`].
    pub fn pipeline_target(&mut self, now: Instant) -> usize {
        if self.snubbed {
            return 1;
        }
        let bytes = self.down.rate(now).saturating_mul(PIPELINE_SECONDS);
        let blocks = usize::try_from(bytes / u64::from(BLOCK_LEN)).unwrap_or(MAX_PIPELINE);
        let cap = self
            .max_requests
            .unwrap_or(MAX_PIPELINE)
            .clamp(1, MAX_PIPELINE);
        blocks.clamp(MIN_PIPELINE, MAX_PIPELINE).min(cap)
    }

    /// Whether one of our requests in flight is for `block`.
    pub fn has_requested(&self, block: &Block) -> bool {
        self.requested.iter().any(|r| r.block == *block)
    }

    /// Removes our request for `block`; true if there was one.
    pub fn take_request(&mut self, block: &Block) -> bool {
        match self.requested.iter().position(|r| r.block == *block) {
            Some(i) => {
                self.requested.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes and returns our requests older than `timeout` (remembered
    /// as released: the answer may still come).
    pub fn take_expired(&mut self, now: Instant, timeout: Duration) -> Vec<Block> {
        let mut expired = Vec::new();
        self.requested.retain(|r| {
            let late = now.saturating_duration_since(r.sent_at) > timeout;
            if late {
                expired.push(r.block);
            }
            !late
        });
        for block in &expired {
            self.remember_released(*block);
        }
        expired
    }

    /// Removes every request in flight, remembering them as released.
    pub fn take_all_requests(&mut self) -> Vec<Block> {
        let blocks: Vec<Block> = self.requested.drain(..).map(|r| r.block).collect();
        for block in &blocks {
            self.remember_released(*block);
        }
        blocks
    }

    /// Removes our request for `block` because we sent a CANCEL; true if
    /// there was one. The block may still arrive (it crossed the CANCEL).
    pub fn cancel_request(&mut self, block: &Block) -> bool {
        let had = self.take_request(block);
        if had {
            self.remember_released(*block);
        }
        had
    }

    /// A PIECE for `block` arrived that answers no request in flight:
    /// true when it answers one we gave up on (no offence; forgotten now).
    pub fn take_released(&mut self, block: &Block) -> bool {
        match self.released.iter().position(|b| b == block) {
            Some(i) => {
                self.released.remove(i);
                true
            }
            None => false,
        }
    }

    /// It sent a PIECE that answers nothing we asked for: the count of such
    /// blocks in the current [`UNREQUESTED_WINDOW`], this one included.
    pub fn note_unrequested(&mut self, now: Instant) -> u32 {
        let (count, since) = self.unrequested;
        let fresh = since.is_none_or(|at| now.saturating_duration_since(at) > UNREQUESTED_WINDOW);
        self.unrequested = if fresh {
            (1, Some(now))
        } else {
            (count.saturating_add(1), since)
        };
        self.unrequested.0
    }

    fn remember_released(&mut self, block: Block) {
        if self.released.len() >= MAX_RELEASED_REMEMBERED {
            self.released.pop_front();
        }
        self.released.push_back(block);
    }

    /// Whether it has a piece we lack (`ours` is our have-bitfield).
    pub fn has_something_for(&self, ours: &Bitfield) -> bool {
        self.has.has_any_missing_in(ours)
    }

    /// Updates [`PeerState::snubbed`]: our requests wait and nothing has
    /// come for [`SNUB_TIMEOUT`] since it unchoked us or sent its last
    /// block. True when it has just started snubbing us.
    pub fn check_snubbed(&mut self, now: Instant) -> bool {
        let since = match (self.last_block_at, self.unchoked_at) {
            (Some(block), Some(unchoke)) => block.max(unchoke),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => return false,
        };
        let was = self.snubbed;
        self.snubbed = !self.peer_choking
            && !self.requested.is_empty()
            && now.saturating_duration_since(since) > SNUB_TIMEOUT;
        self.snubbed && !was
    }

    /// Whether it has every piece.
    pub fn is_seed(&self) -> bool {
        self.has.is_complete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Layout;

    #[test]
    fn pipeline_grows_with_rate_within_bounds() {
        let t0 = Instant::now();
        let mut peer = PeerState::new(10);
        assert_eq!(peer.pipeline_target(t0), MIN_PIPELINE);
        // 10 MB/s for 5 s: 3 s of it is ~1,830 blocks, capped.
        for ms in (0..5_000).step_by(10) {
            peer.down.add(100_000, t0 + Duration::from_millis(ms));
        }
        assert_eq!(
            peer.pipeline_target(t0 + Duration::from_secs(5)),
            MAX_PIPELINE
        );
        // 1 MB/s: ~183 blocks.
        let mut slow = PeerState::new(10);
        for ms in (0..5_000).step_by(100) {
            slow.down.add(100_000, t0 + Duration::from_millis(ms));
        }
        let target = slow.pipeline_target(t0 + Duration::from_secs(5));
        assert!((150..=220).contains(&target), "{target}");
    }

    #[test]
    fn a_peer_that_unchokes_and_sends_nothing_is_snubbed() {
        let layout = Layout::new(16384, &[16384]).unwrap();
        let t0 = Instant::now();
        let mut peer = PeerState::new(1);
        peer.peer_choking = false;
        peer.unchoked_at = Some(t0);
        peer.requested.push(OutRequest {
            block: layout.block(layout.piece(0).unwrap(), 0).unwrap(),
            sent_at: t0,
        });
        peer.check_snubbed(t0 + Duration::from_secs(30));
        assert!(!peer.snubbed);
        peer.check_snubbed(t0 + Duration::from_secs(61));
        assert!(peer.snubbed);
        assert_eq!(peer.pipeline_target(t0 + Duration::from_secs(61)), 1);
        peer.last_block_at = Some(t0 + Duration::from_secs(62));
        peer.check_snubbed(t0 + Duration::from_secs(63));
        assert!(!peer.snubbed);
    }

    #[test]
    fn expired_requests_are_taken_out() {
        let layout = Layout::new(16384, &[65536]).unwrap();
        let t0 = Instant::now();
        let mut peer = PeerState::new(4);
        for (i, piece) in layout.pieces().enumerate() {
            let block = layout.block(piece, 0).unwrap();
            peer.requested.push(OutRequest {
                block,
                sent_at: t0 + Duration::from_secs(i as u64 * 10),
            });
        }
        let expired = peer.take_expired(t0 + Duration::from_secs(35), Duration::from_secs(20));
        assert_eq!(expired.len(), 2);
        assert_eq!(peer.requested.len(), 2);
        let kept = peer.requested[0].block;
        assert!(peer.take_request(&kept));
        assert!(!peer.take_request(&kept));
    }

    #[test]
    fn late_answers_to_released_requests_are_recognised_once() {
        let layout = Layout::new(16384, &[65536]).unwrap();
        let t0 = Instant::now();
        let mut peer = PeerState::new(4);
        let blocks: Vec<Block> = layout
            .pieces()
            .map(|p| layout.block(p, 0).unwrap())
            .collect();
        for block in &blocks {
            peer.requested.push(OutRequest {
                block: *block,
                sent_at: t0,
            });
        }
        assert!(peer.cancel_request(&blocks[0]));
        assert!(!peer.cancel_request(&blocks[0]));
        let dropped = peer.take_all_requests();
        assert_eq!(dropped.len(), 3);
        assert!(peer.requested.is_empty());
        for block in &blocks {
            assert!(peer.take_released(block));
            assert!(
                !peer.take_released(block),
                "each late answer is forgiven once"
            );
        }
    }

    #[test]
    fn released_requests_are_remembered_within_a_bound() {
        let layout = Layout::new(16384, &[16384 * 600]).unwrap();
        let mut peer = PeerState::new(600);
        let t0 = Instant::now();
        for piece in layout.pieces() {
            peer.requested.push(OutRequest {
                block: layout.block(piece, 0).unwrap(),
                sent_at: t0,
            });
        }
        assert_eq!(peer.take_all_requests().len(), 600);
        let first = layout.block(layout.piece(0).unwrap(), 0).unwrap();
        let last = layout.block(layout.piece(599).unwrap(), 0).unwrap();
        assert!(!peer.take_released(&first), "the oldest were forgotten");
        assert!(peer.take_released(&last));
    }

    #[test]
    fn unrequested_blocks_are_counted_per_window() {
        let t0 = Instant::now();
        let mut peer = PeerState::new(1);
        for n in 1..=5 {
            assert_eq!(
                peer.note_unrequested(t0 + Duration::from_secs(n)),
                u32::try_from(n).unwrap()
            );
        }
        // A minute after the window opened, the count starts again.
        let later = t0 + UNREQUESTED_WINDOW + Duration::from_secs(2);
        assert_eq!(peer.note_unrequested(later), 1);
        assert_eq!(peer.note_unrequested(later), 2);
    }

    fn blocks(layout: &Layout) -> Vec<Block> {
        layout
            .pieces()
            .map(|p| layout.block(p, 0).unwrap())
            .collect()
    }

    #[test]
    fn a_choke_under_the_fast_extension_keeps_allowed_fast_requests_and_returns_the_rest() {
        let layout = Layout::new(16384, &[16384 * 4]).unwrap();
        let blocks = blocks(&layout);
        for fast in [false, true] {
            let mut peer = PeerState::new(4);
            if fast {
                peer.set_fast();
            }
            peer.set_allowed_fast_for_it(vec![2]);
            assert_eq!(peer.is_allowed_fast_for_it(2), fast);
            peer.unchoke();
            for block in &blocks {
                assert!(peer.queue_request(*block));
            }
            let (message, rejected) = peer.choke().unwrap();
            assert_eq!(message, Message::Choke);
            if fast {
                assert_eq!(rejected, vec![blocks[0], blocks[1], blocks[3]]);
                assert_eq!(peer.peek_queued(), Some(&blocks[2]));
            } else {
                assert_eq!(rejected, vec![], "BEP 3: dropped silently");
                assert_eq!(peer.queued_len(), 0);
            }
            assert!(peer.choke().is_none(), "choked already");
        }
    }

    #[test]
    fn a_choke_from_a_fast_peer_keeps_our_requests_in_flight() {
        let layout = Layout::new(16384, &[16384 * 2]).unwrap();
        let t0 = Instant::now();
        for fast in [false, true] {
            let mut peer = PeerState::new(2);
            if fast {
                peer.set_fast();
            }
            for block in blocks(&layout) {
                peer.add_request(block, t0);
            }
            let dropped = peer.peer_choked();
            assert!(peer.peer_choking());
            if fast {
                assert!(dropped.is_empty());
                assert_eq!(peer.requested().len(), 2);
            } else {
                assert_eq!(dropped.len(), 2);
                assert!(peer.requested().is_empty());
            }
        }
    }

    #[test]
    fn allowed_fast_and_suggested_pieces_are_remembered_within_bounds() {
        let mut peer = PeerState::new(1000);
        for piece in 0..100 {
            peer.add_allowed_fast(piece);
        }
        assert!(!peer.add_allowed_fast(3), "known already");
        assert_eq!(peer.allowed_fast().len(), MAX_ALLOWED_FAST_FROM_PEER);
        for piece in 0..100 {
            peer.add_suggested(piece);
        }
        peer.add_suggested(90);
        let kept: Vec<u32> = peer.suggested().collect();
        assert_eq!(kept.len(), MAX_SUGGESTED_PIECES);
        assert_eq!(kept.last(), Some(&90), "a repeated hint is the newest");
        assert!(!kept.contains(&83), "the oldest are forgotten");
    }
}
