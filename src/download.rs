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
//! [`Downloads::finish`] or [`Downloads::reset`].
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
    Received,
}

/// One piece being downloaded.
#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<BlockState>,
    received: usize,
    /// Peers that sent at least one block of it (for strikes on a hash failure).
    contributors: Vec<SocketAddr>,
}

/// What [`Downloads::receive`] made of an arriving block.
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
pub struct Downloads {
    /// Ordered by index, so "finish partial pieces first" is deterministic.
    pieces: BTreeMap<u32, Partial>,
}

impl Downloads {
    /// Nothing in progress.
    pub fn new() -> Downloads {
        Downloads::default()
    }

    /// Number of pieces in progress.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether nothing is in progress.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Whether `piece` is in progress.
    pub fn contains(&self, piece: u32) -> bool {
        self.pieces.contains_key(&piece)
    }

    /// The pieces in progress, lowest index first.
    pub fn pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.pieces.keys().copied()
    }

    /// Starts `piece` with every block wanted. Does nothing if already started.
    pub fn start(&mut self, layout: &Layout, piece: PieceIndex) {
        let count = usize::try_from(layout.block_count(piece)).unwrap_or(0);
        self.pieces.entry(piece.get()).or_insert_with(|| Partial {
            blocks: vec![BlockState::Wanted; count],
            received: 0,
            contributors: Vec::new(),
        });
    }

    /// The first wanted block of `piece`, marked requested. `None` when every
    /// block is requested or received.
    pub fn request_wanted(&mut self, layout: &Layout, piece: PieceIndex) -> Option<Block> {
        let partial = self.pieces.get_mut(&piece.get())?;
        let n = partial
            .blocks
            .iter()
            .position(|s| *s == BlockState::Wanted)?;
        let state = partial.blocks.get_mut(n)?;
        *state = BlockState::Requested(1);
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

    /// The first wanted block of any piece in progress that the peer has
    /// (lowest piece first), marked requested: finishing started pieces
    /// before starting new ones keeps few pieces open.
    pub fn request_any_wanted(&mut self, layout: &Layout, peer_has: &Bitfield) -> Option<Block> {
        let piece = self
            .pieces
            .iter()
            .find(|(&p, partial)| peer_has.has(p) && partial.blocks.contains(&BlockState::Wanted))
            .map(|(&p, _)| p)?;
        self.request_wanted(layout, layout.piece(piece)?)
    }

    /// Endgame: a block some other peer is already fetching, from a piece
    /// this peer has, that this peer has not been asked for (`skip`).
    pub fn request_any_duplicate(
        &mut self,
        layout: &Layout,
        peer_has: &Bitfield,
        skip: impl Fn(&Block) -> bool,
    ) -> Option<Block> {
        let pieces: Vec<u32> = self
            .pieces
            .keys()
            .copied()
            .filter(|&p| peer_has.has(p))
            .collect();
        pieces
            .into_iter()
            .filter_map(|p| layout.piece(p))
            .find_map(|piece| self.request_duplicate(layout, piece, &skip))
    }

    /// Whether any block of any piece in progress is still wanted (unrequested).
    pub fn has_wanted_blocks(&self) -> bool {
        self.pieces
            .values()
            .any(|p| p.blocks.contains(&BlockState::Wanted))
    }

    /// A request for `block` will not be answered (choked, timed out, peer
    /// gone, cancelled): one fewer peer is fetching it, and with none left it
    /// is wanted again.
    pub fn release(&mut self, block: &Block) {
        if let Some(state) = self.state_mut(block) {
            *state = match *state {
                BlockState::Requested(n) if n > 1 => BlockState::Requested(n - 1),
                BlockState::Requested(_) => BlockState::Wanted,
                other => other,
            };
        }
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
            BlockState::Received => Received::Duplicate,
            BlockState::Wanted => Received::Unrequested,
            BlockState::Requested(_) => {
                *state = BlockState::Received;
                partial.received += 1;
                if !partial.contributors.contains(&from) {
                    partial.contributors.push(from);
                }
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

    /// The piece failed its hash check: forget it so it is picked afresh,
    /// and return the peers that sent its blocks (each gets a strike).
    pub fn reset(&mut self, piece: PieceIndex) -> Vec<SocketAddr> {
        self.pieces
            .remove(&piece.get())
            .map(|p| p.contributors)
            .unwrap_or_default()
    }

    /// Bytes received so far of pieces in progress (for progress display).
    pub fn received_blocks(&self) -> usize {
        self.pieces.values().map(|p| p.received).sum()
    }

    fn state_mut(&mut self, block: &Block) -> Option<&mut BlockState> {
        let partial = self.pieces.get_mut(&block.piece.get())?;
        let index = usize::try_from(block.begin / crate::metainfo::BLOCK_LEN).ok()?;
        partial.blocks.get_mut(index)
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
    /// The pieces the peer has.
    pub peer_has: &'a Bitfield,
    /// Endgame forced early (`--endgame PCT` reached): duplicate requests
    /// are allowed even while other peers' pieces still have wanted blocks.
    pub endgame: bool,
}

/// The next block to request from a peer: a wanted block of a piece in
/// progress, else the first block of a newly picked piece, else (endgame,
/// when nothing is left unrequested) a block another peer is already
/// fetching. `already_asked` says which blocks this peer has been asked for.
pub fn next_block(
    downloads: &mut Downloads,
    choice: &BlockChoice<'_>,
    already_asked: impl Fn(&Block) -> bool,
    rng: &mut Rng,
) -> Option<Block> {
    if let Some(block) = downloads.request_any_wanted(choice.layout, choice.peer_has) {
        return Some(block);
    }
    let wanted = |p: u32| !choice.have.has(p) && !downloads.contains(p);
    if let Some(piece) = choice
        .picker
        .pick(choice.peer_has, wanted, rng)
        .and_then(|p| choice.layout.piece(p))
    {
        downloads.start(choice.layout, piece);
        return downloads.request_wanted(choice.layout, piece);
    }
    if downloads.has_wanted_blocks() && !choice.endgame {
        return None; // wanted blocks remain, just not ones this peer has
    }
    downloads.request_any_duplicate(choice.layout, choice.peer_has, already_asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn setup() -> (Layout, PieceIndex, Downloads) {
        // Piece 0 has 3 blocks: 16 KiB, 16 KiB, 8 KiB.
        let layout = Layout::new(40 * 1024, &[40 * 1024]).unwrap();
        let piece = layout.piece(0).unwrap();
        let mut downloads = Downloads::new();
        downloads.start(&layout, piece);
        (layout, piece, downloads)
    }

    #[test]
    fn blocks_are_requested_in_order_then_run_out() {
        let (layout, piece, mut d) = setup();
        let begins: Vec<u32> = std::iter::from_fn(|| d.request_wanted(&layout, piece))
            .map(|b| b.begin)
            .collect();
        assert_eq!(begins, vec![0, 16384, 32768]);
        assert!(!d.has_wanted_blocks());
    }

    #[test]
    fn released_requests_become_wanted_again() {
        let (layout, piece, mut d) = setup();
        let first = d.request_wanted(&layout, piece).unwrap();
        d.release(&first);
        assert_eq!(d.request_wanted(&layout, piece), Some(first));
    }

    #[test]
    fn completion_is_reported_on_the_last_new_block() {
        let (layout, piece, mut d) = setup();
        let blocks: Vec<Block> = std::iter::from_fn(|| d.request_wanted(&layout, piece)).collect();
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
        assert_eq!(d.reset(piece), vec![addr(1), addr(2)]);
        assert!(!d.contains(0));
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
        let mut d = Downloads::new();
        let mut rng = Rng::new(1);
        let choice = BlockChoice {
            layout: &layout,
            picker: &picker,
            have: &have,
            peer_has: &all,
            endgame: false,
        };
        let mut asked: Vec<Block> = Vec::new();
        let mut take = |d: &mut Downloads, asked: &mut Vec<Block>| {
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
    }

    #[test]
    fn endgame_duplicates_are_capped_and_skip_the_asking_peer() {
        let (layout, piece, mut d) = setup();
        let blocks: Vec<Block> = std::iter::from_fn(|| d.request_wanted(&layout, piece)).collect();
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
}
