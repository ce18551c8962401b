//! Pieces in progress: which blocks of each started piece are wanted,
//! requested or received, and from whom.
//!
//! Layer 0: pure. Every piece is in exactly one of three disjoint states:
//! *verified* (in the session's have-bitfield), *in progress* (here), or
//! *wanted* (neither). Within a piece in progress each block is `Wanted`,
//! `Requested` (by one or more peers; more than one only in endgame) or
//! `Received` (written to disk). The transitions are checked: a block that
//! arrives unrequested, twice, or for a piece not in progress is reported,
//! never silently counted. A piece is complete when every block is
//! received; the session then verifies it from disk and calls
//! [`PartialPieces::finish`] or [`PartialPieces::fail`].
//!
//! Each received block remembers which peer sent it, so a piece that fails
//! its hash check can be blamed block by block (see [`crate::smart_ban`]).
//! A failed piece with several senders is fetched again *single-source*:
//! the first peer to ask claims it, and others leave it alone until that
//! peer chokes us, times out or goes, so the second attempt either passes
//! (and the smart ban compares blocks) or fails with one sender to blame.
//!
//! Keeping these states disjoint is what prevents the classic "stuck at
//! 99.9 %" bug: a block can always be found in exactly one state, so a
//! released request always becomes wanted again.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::bitfield::Bitfield;
use crate::metainfo::{Block, Layout, PieceIndex};
use crate::picker::Picker;
use crate::rng::Rng;

/// Peers requesting the same block at once in endgame: enough to route
/// around one slow or dead peer without flooding the swarm with duplicates.
pub const MAX_ENDGAME_REQUESTS_PER_BLOCK: u8 = 2;

/// The state of one block of a piece in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Wanted,
    /// Requested from this many peers.
    Requested(u8),
    /// Written to disk; sent by `Partial::contributors[n]`.
    Received(u16),
}

/// One piece being downloaded.
#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<BlockState>,
    received: usize,
    /// How many blocks are `Wanted` (kept so that "any wanted?" costs O(1),
    /// not a scan: a 512 MiB piece has 32,768 blocks).
    wanted: usize,
    /// No block below this index is `Wanted`: the next request scans from
    /// here, so requesting a whole piece costs O(blocks), not O(blocks^2).
    first_wanted: usize,
    /// Peers that sent at least one block of it, in order of their first
    /// block (a `Received` block names its sender by index here).
    contributors: Vec<SocketAddr>,
    /// Fetch it from one peer only (it failed before with several senders).
    single_source: bool,
    /// The peer that claimed a single-source piece.
    owner: Option<SocketAddr>,
}

impl Partial {
    fn new(count: usize) -> Partial {
        Partial {
            blocks: vec![BlockState::Wanted; count],
            received: 0,
            wanted: count,
            first_wanted: 0,
            contributors: Vec::new(),
            single_source: false,
            owner: None,
        }
    }

    /// Whether `peer` may ask for this piece's wanted blocks now.
    fn open_to(&self, peer: SocketAddr) -> bool {
        !self.single_source || self.owner.is_none_or(|owner| owner == peer)
    }
}

/// Who sent what of a piece that failed its hash check: see [`PartialPieces::fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPiece {
    /// Every peer that sent at least one block.
    pub contributors: Vec<SocketAddr>,
    /// The sender of each block, by block index.
    pub senders: Vec<(u32, SocketAddr)>,
}

/// What [`PartialPieces::receive`] made of an arriving block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A new block; `piece_complete` when it was the piece's last.
    New {
        /// Every block of the piece has now arrived.
        piece_complete: bool,
    },
    /// A copy of a block we already have (endgame); discard it.
    Duplicate,
    /// A block we never asked for, or of a piece not in progress.
    Unrequested,
}

/// Every piece in progress.
#[derive(Debug, Clone, Default)]
pub struct PartialPieces {
    /// Ordered by index, so "finish partial pieces first" is deterministic.
    pieces: BTreeMap<u32, Partial>,
}

impl PartialPieces {
    /// Nothing in progress.
    pub fn new() -> PartialPieces {
        PartialPieces::default()
    }

    /// Number of pieces in progress.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether nothing is in progress.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// How many peers sent blocks of `piece` so far.
    pub fn contributor_count(&self, piece: PieceIndex) -> usize {
        let Some(partial) = self.pieces.get(&piece.get()) else {
            return 0;
        };
        let mut senders: Vec<u16> = partial
            .blocks
            .iter()
            .filter_map(|b| match b {
                BlockState::Received(sender) => Some(*sender),
                _ => None,
            })
            .collect();
        senders.sort_unstable();
        senders.dedup();
        senders.len()
    }

    /// `peer` was banned for bad data: the blocks it sent of pieces still
    /// in progress are not trusted either, and are wanted again (so a
    /// piece does not fail a second time on its data). Returns the bytes
    /// thrown away.
    pub fn discard_from(&mut self, layout: &Layout, peer: SocketAddr) -> u64 {
        let mut bytes = 0;
        for (&index, partial) in self.pieces.iter_mut() {
            let Some(sender) = partial
                .contributors
                .iter()
                .position(|c| *c == peer)
                .and_then(|n| u16::try_from(n).ok())
            else {
                continue;
            };
            let piece = layout.piece(index);
            for (n, state) in partial.blocks.iter_mut().enumerate() {
                if *state != BlockState::Received(sender) {
                    continue;
                }
                *state = BlockState::Wanted;
                partial.received = partial.received.saturating_sub(1);
                partial.wanted += 1;
                partial.first_wanted = partial.first_wanted.min(n);
                let block = piece.zip(u32::try_from(n).ok());
                if let Some(block) = block.and_then(|(p, n)| layout.block(p, n)) {
                    bytes += u64::from(block.len);
                }
            }
            if partial.owner == Some(peer) {
                partial.owner = None;
            }
        }
        bytes
    }

    /// Whether `piece` is in progress.
    pub fn contains(&self, piece: u32) -> bool {
        self.pieces.contains_key(&piece)
    }

    /// The pieces in progress, lowest index first.
    pub fn pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.pieces.keys().copied()
    }

    /// Every block requested and not yet arrived, as (piece, block index,
    /// how many peers it was requested from), in order. For consistency
    /// checks ([`crate::torrent::Torrent::check_invariants`]), not the loop.
    pub fn outstanding(&self) -> Vec<(u32, u32, u8)> {
        let mut out = Vec::new();
        for (&piece, partial) in &self.pieces {
            for (index, state) in partial.blocks.iter().enumerate() {
                if let (BlockState::Requested(n), Ok(index)) = (*state, u32::try_from(index)) {
                    out.push((piece, index, n));
                }
            }
        }
        out
    }

    /// Starts `piece` with every block wanted. Does nothing if already started.
    pub fn start(&mut self, layout: &Layout, piece: PieceIndex) {
        let count = usize::try_from(layout.block_count(piece)).unwrap_or(0);
        self.pieces
            .entry(piece.get())
            .or_insert_with(|| Partial::new(count));
    }

    /// The first wanted block of `piece`, marked requested for `peer`.
    /// `None` when every block is requested or received, or when the piece
    /// is single-source and claimed by another peer. `peer` claims an
    /// unclaimed single-source piece.
    pub fn request_wanted(
        &mut self,
        layout: &Layout,
        piece: PieceIndex,
        peer: SocketAddr,
    ) -> Option<Block> {
        let partial = self.pieces.get_mut(&piece.get())?;
        if !partial.open_to(peer) || partial.wanted == 0 {
            return None;
        }
        let n = partial.first_wanted
            + partial
                .blocks
                .get(partial.first_wanted..)?
                .iter()
                .position(|s| *s == BlockState::Wanted)?;
        let state = partial.blocks.get_mut(n)?;
        *state = BlockState::Requested(1);
        partial.wanted -= 1;
        partial.first_wanted = n + 1;
        if partial.single_source {
            partial.owner = Some(peer);
        }
        layout.block(piece, u32::try_from(n).ok()?)
    }

    /// Endgame: a block of `piece` already requested from fewer than
    /// [`MAX_ENDGAME_REQUESTS_PER_BLOCK`] peers and not in `skip` (the
    /// asking peer's own requests), marked requested once more.
    pub fn request_duplicate(
        &mut self,
        layout: &Layout,
        piece: PieceIndex,
        skip: impl Fn(&Block) -> bool,
    ) -> Option<Block> {
        let partial = self.pieces.get_mut(&piece.get())?;
        for (n, state) in partial.blocks.iter_mut().enumerate() {
            let BlockState::Requested(count) = *state else {
                continue;
            };
            if count >= MAX_ENDGAME_REQUESTS_PER_BLOCK {
                continue;
            }
            let Some(block) = layout.block(piece, u32::try_from(n).ok()?) else {
                continue;
            };
            if skip(&block) {
                continue;
            }
            *state = BlockState::Requested(count + 1);
            return Some(block);
        }
        None
    }

    /// The first wanted block of any piece in progress that `peer` has and
    /// may fetch (lowest piece first), marked requested: finishing started
    /// pieces before starting new ones keeps few pieces open.
    pub fn request_any_wanted(
        &mut self,
        layout: &Layout,
        peer_has: &Bitfield,
        peer: SocketAddr,
    ) -> Option<Block> {
        let piece = self
            .pieces
            .iter()
            .find(|(&p, partial)| peer_has.has(p) && partial.open_to(peer) && partial.wanted > 0)
            .map(|(&p, _)| p)?;
        self.request_wanted(layout, layout.piece(piece)?, peer)
    }

    /// `peer` will not finish the single-source pieces it claimed (it
    /// choked us, timed out or went away): another peer may claim them.
    pub fn disown(&mut self, peer: SocketAddr) {
        for partial in self.pieces.values_mut() {
            if partial.owner == Some(peer) {
                partial.owner = None;
            }
        }
    }

    /// Endgame: a block some other peer is already fetching, from a piece
    /// this peer has, that this peer has not been asked for (`skip`). A
    /// single-source piece claimed by another peer is left to its owner:
    /// duplicating it would mix senders again and defeat the smart ban.
    pub fn request_any_duplicate(
        &mut self,
        layout: &Layout,
        peer_has: &Bitfield,
        peer: SocketAddr,
        skip: impl Fn(&Block) -> bool,
    ) -> Option<Block> {
        let pieces: Vec<u32> = self
            .pieces
            .iter()
            .filter(|(&p, partial)| peer_has.has(p) && partial.open_to(peer))
            .map(|(&p, _)| p)
            .collect();
        pieces
            .into_iter()
            .filter_map(|p| layout.piece(p))
            .find_map(|piece| self.request_duplicate(layout, piece, &skip))
    }

    /// Whether any block of any piece in progress is still wanted (unrequested).
    pub fn has_wanted_blocks(&self) -> bool {
        self.pieces.values().any(|p| p.wanted > 0)
    }

    /// A request for `block` will not be answered (choked, timed out, peer
    /// gone, cancelled): one fewer peer is fetching it, and with none left it
    /// is wanted again.
    pub fn release(&mut self, block: &Block) {
        let Some(partial) = self.pieces.get_mut(&block.piece.get()) else {
            return;
        };
        let Ok(index) = usize::try_from(block.begin / crate::metainfo::BLOCK_LEN) else {
            return;
        };
        let Some(state) = partial.blocks.get_mut(index) else {
            return;
        };
        *state = match *state {
            BlockState::Requested(n) if n > 1 => BlockState::Requested(n - 1),
            BlockState::Requested(_) => {
                partial.wanted += 1;
                partial.first_wanted = partial.first_wanted.min(index);
                BlockState::Wanted
            }
            other => other,
        };
    }

    /// A block arrived from `from`.
    pub fn receive(&mut self, block: &Block, from: SocketAddr) -> Received {
        let Some(partial) = self.pieces.get_mut(&block.piece.get()) else {
            return Received::Unrequested;
        };
        let index = usize::try_from(block.begin / crate::metainfo::BLOCK_LEN).unwrap_or(usize::MAX);
        let Some(state) = partial.blocks.get_mut(index) else {
            return Received::Unrequested;
        };
        match *state {
            BlockState::Received(_) => Received::Duplicate,
            BlockState::Wanted => Received::Unrequested,
            BlockState::Requested(_) => {
                let sender = match partial.contributors.iter().position(|a| *a == from) {
                    Some(n) => n,
                    None => {
                        partial.contributors.push(from);
                        partial.contributors.len() - 1
                    }
                };
                // More than 65,535 senders of one piece cannot happen (one
                // block each would need a 1 GiB piece); saturate regardless.
                *state = BlockState::Received(u16::try_from(sender).unwrap_or(u16::MAX));
                partial.received += 1;
                Received::New {
                    piece_complete: partial.received == partial.blocks.len(),
                }
            }
        }
    }

    /// The piece verified: forget it.
    pub fn finish(&mut self, piece: PieceIndex) {
        self.pieces.remove(&piece.get());
    }

    /// The piece failed its hash check: every block is wanted again, and
    /// with `single_source` the piece is fetched from one peer next time.
    /// Returns who sent which block (for the smart ban).
    pub fn fail(&mut self, piece: PieceIndex, single_source: bool) -> FailedPiece {
        let Some(partial) = self.pieces.get_mut(&piece.get()) else {
            return FailedPiece {
                contributors: Vec::new(),
                senders: Vec::new(),
            };
        };
        let mut senders = Vec::new();
        for (n, state) in partial.blocks.iter_mut().enumerate() {
            if let BlockState::Received(sender) = *state {
                let who = partial.contributors.get(usize::from(sender));
                if let (Some(who), Ok(n)) = (who, u32::try_from(n)) {
                    senders.push((n, *who));
                }
            }
            *state = BlockState::Wanted;
        }
        // Who really sent the blocks now (a banned peer's were discarded).
        let mut contributors: Vec<SocketAddr> = Vec::new();
        for (_, who) in &senders {
            if !contributors.contains(who) {
                contributors.push(*who);
            }
        }
        partial.contributors.clear();
        partial.received = 0;
        partial.wanted = partial.blocks.len();
        partial.first_wanted = 0;
        partial.single_source = single_source;
        partial.owner = None;
        FailedPiece {
            contributors,
            senders,
        }
    }

    /// Bytes received so far of pieces in progress (for progress display).
    pub fn received_blocks(&self) -> usize {
        self.pieces.values().map(|p| p.received).sum()
    }
}

/// Everything [`next_block`] consults, borrowed from the session.
pub struct BlockChoice<'a> {
    /// The torrent's shape.
    pub layout: &'a Layout,
    /// Availability of pieces.
    pub picker: &'a Picker,
    /// Our verified pieces.
    pub have: &'a Bitfield,
    /// The peer asking.
    pub peer: SocketAddr,
    /// The pieces the peer has.
    pub peer_has: &'a Bitfield,
    /// Endgame forced early (`--endgame PCT` reached): duplicate requests
    /// are allowed even while other peers' pieces still have wanted blocks.
    pub endgame: bool,
    /// The peer has no request in flight. Only such a peer is given a
    /// duplicate (as libtorrent does): a peer with work in its pipeline
    /// is busy anyway, and duplicates asked of it while every block is
    /// still on its way (a small torrent fits in the pipelines at once)
    /// would be wasted bandwidth, not a faster finish.
    pub idle: bool,
}

/// The next block to request from a peer: a wanted block of a piece in
/// progress, else the first block of a newly picked piece, else (endgame,
/// when nothing is left unrequested, and only for an idle peer) a block
/// another peer is already fetching. `already_asked` says which blocks
/// this peer has been asked for.
pub fn next_block(
    partial_pieces: &mut PartialPieces,
    choice: &BlockChoice<'_>,
    already_asked: impl Fn(&Block) -> bool,
    rng: &mut Rng,
) -> Option<Block> {
    if let Some(block) =
        partial_pieces.request_any_wanted(choice.layout, choice.peer_has, choice.peer)
    {
        return Some(block);
    }
    let wanted = |p: u32| !choice.have.has(p) && !partial_pieces.contains(p);
    if let Some(piece) = choice
        .picker
        .pick(choice.peer_has, wanted, rng)
        .and_then(|p| choice.layout.piece(p))
    {
        partial_pieces.start(choice.layout, piece);
        return partial_pieces.request_wanted(choice.layout, piece, choice.peer);
    }
    if partial_pieces.has_wanted_blocks() && !choice.endgame {
        return None; // wanted blocks remain, just not ones this peer has
    }
    if !choice.idle {
        return None; // duplicates only for a peer with nothing in flight
    }
    partial_pieces.request_any_duplicate(choice.layout, choice.peer_has, choice.peer, already_asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn setup() -> (Layout, PieceIndex, PartialPieces) {
        // Piece 0 has 3 blocks: 16 KiB, 16 KiB, 8 KiB.
        let layout = Layout::new(40 * 1024, &[40 * 1024]).unwrap();
        let piece = layout.piece(0).unwrap();
        let mut partial_pieces = PartialPieces::new();
        partial_pieces.start(&layout, piece);
        (layout, piece, partial_pieces)
    }

    #[test]
    fn blocks_are_requested_in_order_then_run_out() {
        let (layout, piece, mut d) = setup();
        let begins: Vec<u32> = std::iter::from_fn(|| d.request_wanted(&layout, piece, addr(1)))
            .map(|b| b.begin)
            .collect();
        assert_eq!(begins, vec![0, 16384, 32768]);
        assert!(!d.has_wanted_blocks());
    }

    #[test]
    fn a_banned_peers_blocks_are_wanted_again_and_it_is_no_contributor() {
        let (layout, piece, mut d) = setup();
        let blocks: Vec<Block> =
            std::iter::from_fn(|| d.request_wanted(&layout, piece, addr(1))).collect();
        d.receive(&blocks[0], addr(1));
        d.receive(&blocks[2], addr(2));
        assert_eq!(d.contributor_count(piece), 2);
        assert_eq!(d.discard_from(&layout, addr(2)), 8 * 1024);
        assert_eq!(d.contributor_count(piece), 1);
        // Block 2 is wanted again, block 1 still requested, block 0 kept.
        assert_eq!(d.request_wanted(&layout, piece, addr(3)), Some(blocks[2]));
        assert_eq!(d.receive(&blocks[0], addr(3)), Received::Duplicate);
        assert_eq!(d.fail(piece, false).contributors, vec![addr(1)]);
    }

    #[test]
    fn released_requests_become_wanted_again() {
        let (layout, piece, mut d) = setup();
        let first = d.request_wanted(&layout, piece, addr(1)).unwrap();
        d.release(&first);
        assert_eq!(d.request_wanted(&layout, piece, addr(1)), Some(first));
    }

    #[test]
    fn completion_is_reported_on_the_last_new_block() {
        let (layout, piece, mut d) = setup();
        let blocks: Vec<Block> =
            std::iter::from_fn(|| d.request_wanted(&layout, piece, addr(1))).collect();
        assert_eq!(
            d.receive(&blocks[0], addr(1)),
            Received::New {
                piece_complete: false
            }
        );
        assert_eq!(d.receive(&blocks[0], addr(2)), Received::Duplicate);
        assert_eq!(
            d.receive(&blocks[2], addr(2)),
            Received::New {
                piece_complete: false
            }
        );
        assert_eq!(
            d.receive(&blocks[1], addr(1)),
            Received::New {
                piece_complete: true
            }
        );
        let failed = d.fail(piece, true);
        assert_eq!(failed.contributors, vec![addr(1), addr(2)]);
        assert_eq!(
            failed.senders,
            vec![(0, addr(1)), (1, addr(1)), (2, addr(2))]
        );
        assert!(
            d.contains(0),
            "a failed piece stays in progress, every block wanted"
        );
        assert_eq!(d.received_blocks(), 0);
    }

    #[test]
    fn unrequested_blocks_are_reported() {
        let (layout, piece, mut d) = setup();
        let block = layout.block(piece, 1).unwrap();
        assert_eq!(d.receive(&block, addr(1)), Received::Unrequested);
        d.finish(piece);
        assert_eq!(d.receive(&block, addr(1)), Received::Unrequested);
    }

    #[test]
    fn next_block_finishes_started_pieces_then_picks_then_duplicates() {
        use crate::picker::Strategy;
        let layout = Layout::new(32768, &[3 * 32768]).unwrap(); // 3 pieces x 2 blocks
        let mut picker = Picker::new(3, Strategy::Sequential);
        let all = Bitfield::full(3);
        picker.add_peer(&all);
        let mut have = Bitfield::new(3);
        have.set(1);
        let mut d = PartialPieces::new();
        let mut rng = Rng::new(1);
        let choice = BlockChoice {
            layout: &layout,
            picker: &picker,
            have: &have,
            peer: addr(1),
            peer_has: &all,
            endgame: false,
            idle: true,
        };
        let mut asked: Vec<Block> = Vec::new();
        let mut take = |d: &mut PartialPieces, asked: &mut Vec<Block>| {
            let snapshot = asked.clone();
            let block = next_block(d, &choice, |b| snapshot.contains(b), &mut rng)?;
            asked.push(block);
            Some((block.piece.get(), block.begin))
        };
        // Pieces 0 and 2 (1 is verified), two blocks each, in order.
        assert_eq!(take(&mut d, &mut asked), Some((0, 0)));
        assert_eq!(take(&mut d, &mut asked), Some((0, 16384)));
        assert_eq!(take(&mut d, &mut asked), Some((2, 0)));
        assert_eq!(take(&mut d, &mut asked), Some((2, 16384)));
        // Everything is requested by this peer: no duplicates to itself.
        assert_eq!(take(&mut d, &mut asked), None);
        // Another peer gets endgame duplicates.
        let mut other = Vec::new();
        assert_eq!(take(&mut d, &mut other), Some((0, 0)));
        // But not while it has requests of its own in flight.
        let busy = BlockChoice {
            idle: false,
            ..choice
        };
        assert_eq!(next_block(&mut d, &busy, |_| false, &mut rng), None);
    }

    #[test]
    fn endgame_duplicates_are_capped_and_skip_the_asking_peer() {
        let (layout, piece, mut d) = setup();
        let blocks: Vec<Block> =
            std::iter::from_fn(|| d.request_wanted(&layout, piece, addr(1))).collect();
        // Another peer already asked for block 0; it may not get it twice.
        let dup = d
            .request_duplicate(&layout, piece, |b| b.begin == 0)
            .unwrap();
        assert_eq!(dup.begin, 16384);
        let dup2 = d.request_duplicate(&layout, piece, |_| false).unwrap();
        assert_eq!(dup2.begin, 0);
        let dup3 = d.request_duplicate(&layout, piece, |_| false).unwrap();
        assert_eq!(dup3.begin, 32768);
        assert_eq!(d.request_duplicate(&layout, piece, |_| false), None);
        // Releasing one of two requests keeps the block requested.
        d.release(&blocks[0]);
        assert!(!d.has_wanted_blocks());
        d.release(&blocks[0]);
        assert!(d.has_wanted_blocks());
    }

    #[test]
    fn a_failed_single_source_piece_is_fetched_from_the_peer_that_claims_it() {
        let (layout, piece, mut d) = setup();
        let all = Bitfield::full(1);
        for block in
            std::iter::from_fn(|| d.request_wanted(&layout, piece, addr(1))).collect::<Vec<_>>()
        {
            d.receive(&block, addr(1));
        }
        d.fail(piece, true);
        let first = d.request_any_wanted(&layout, &all, addr(2)).unwrap();
        assert_eq!(first.begin, 0);
        assert_eq!(
            d.request_any_wanted(&layout, &all, addr(3)),
            None,
            "claimed by peer 2"
        );
        assert_eq!(
            d.request_any_wanted(&layout, &all, addr(2)).unwrap().begin,
            16384
        );
        // Peer 2 chokes us: its request is released and the claim dropped.
        d.release(&first);
        d.disown(addr(2));
        assert_eq!(
            d.request_any_wanted(&layout, &all, addr(3)).unwrap().begin,
            0
        );
    }

    #[test]
    fn a_failed_piece_without_single_source_is_open_to_every_peer() {
        let (layout, piece, mut d) = setup();
        let all = Bitfield::full(1);
        let block = d.request_wanted(&layout, piece, addr(1)).unwrap();
        d.receive(&block, addr(1));
        let failed = d.fail(piece, false);
        assert_eq!(failed.contributors, vec![addr(1)]);
        assert!(d.request_any_wanted(&layout, &all, addr(2)).is_some());
        assert!(d.request_any_wanted(&layout, &all, addr(3)).is_some());
    }

    #[test]
    fn the_wanted_count_and_cursor_agree_with_the_blocks_through_any_history() {
        // 64 blocks; random requests, releases, receipts and failures.
        let layout = Layout::new(64 * 16384, &[64 * 16384]).unwrap();
        let piece = layout.piece(0).unwrap();
        let mut d = PartialPieces::new();
        d.start(&layout, piece);
        let mut rng = Rng::new(7);
        let mut asked: Vec<Block> = Vec::new();
        for _ in 0..5_000 {
            match rng.below(10) {
                0..=3 => asked.extend(d.request_wanted(&layout, piece, addr(1))),
                4..=6 if !asked.is_empty() => {
                    let block = asked.swap_remove(rng.below(asked.len()));
                    d.release(&block);
                }
                7..=8 if !asked.is_empty() => {
                    let block = asked.swap_remove(rng.below(asked.len()));
                    d.receive(&block, addr(1));
                }
                9 if rng.below(20) == 0 => {
                    d.fail(piece, false);
                    asked.clear();
                }
                _ => {}
            }
            let partial = &d.pieces[&0];
            let scan = partial
                .blocks
                .iter()
                .filter(|b| **b == BlockState::Wanted)
                .count();
            assert_eq!(partial.wanted, scan);
            let first = partial.blocks.iter().position(|b| *b == BlockState::Wanted);
            assert!(first.is_none_or(|f| f >= partial.first_wanted));
        }
    }

    #[test]
    fn endgame_leaves_a_claimed_single_source_piece_to_its_owner() {
        let (layout, piece, mut d) = setup();
        let all = Bitfield::full(1);
        let block = d.request_wanted(&layout, piece, addr(1)).unwrap();
        d.receive(&block, addr(1));
        d.fail(piece, true);
        // Peer 2 claims the piece and asks for every block.
        while d.request_any_wanted(&layout, &all, addr(2)).is_some() {}
        assert!(!d.has_wanted_blocks());
        assert_eq!(
            d.request_any_duplicate(&layout, &all, addr(3), |_| false),
            None
        );
        assert!(d
            .request_any_duplicate(&layout, &all, addr(2), |_| false)
            .is_some());
    }
}
