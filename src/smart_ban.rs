//! The smart ban: finding exactly which peer sent the bad blocks of a piece
//! that failed its hash check, so that an honest peer is never blamed for
//! another peer's data.
//!
//! Layer 0: pure (no I/O, no clock). The session reads blocks from disk and
//! hands their digests in; this module only remembers and compares.
//!
//! BEP 3 gives one SHA-1 per piece, not per block, so a failed piece with
//! blocks from several peers does not say who lied. Striking every sender
//! bans the honest seeder that happened to share a piece with a poisoner
//! (pollen did that before). Instead (the idea of libtorrent's "smart ban";
//! this is pollen's own code):
//!
//! 1. A piece fails with one sender: that sender is to blame (the session
//!    strikes it without coming here).
//! 2. A piece fails with several senders: nobody is struck yet. The session
//!    digests each block as it is on disk and records it with its sender
//!    ([`SmartBan::handle_failed`]), then fetches the piece again from one
//!    peer (see [`crate::partial_pieces::PartialPieces::fail`]).
//! 3. The piece passes at last: the good blocks are digested and compared
//!    with the records ([`SmartBan::handle_passed`]). A sender whose block
//!    differs from the good one sent bad data, proven: it gets a strike. A
//!    sender whose blocks all match was honest.
//!
//! Memory is bounded by [`MAX_RECORDS`] block records (about 60 bytes each);
//! when full, the records of the piece that failed longest ago are dropped.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use crate::hash::Sha1Hash;

/// Most block records kept: 16,384 records are about 1 MiB and cover
/// 256 MiB of suspect blocks, far more than a few poisoned pieces need.
pub const MAX_RECORDS: usize = 16_384;

/// One block of a failed piece as it was on disk, and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// The block's index within its piece.
    pub block: u32,
    /// The peer that sent it.
    pub sender: SocketAddr,
    /// SHA-1 of the block's bytes.
    pub digest: Sha1Hash,
}

/// What comparing a passed piece with its records showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Peers that sent at least one block unlike the good one (each once).
    pub culprits: Vec<SocketAddr>,
    /// Peers whose recorded blocks all matched (each once).
    pub cleared: Vec<SocketAddr>,
}

/// The records of every piece that failed with several senders and has
/// not passed since.
#[derive(Debug, Clone, Default)]
pub struct SmartBan {
    pieces: BTreeMap<u32, Vec<BlockRecord>>,
    /// Suspect pieces, oldest failure first (for eviction).
    order: VecDeque<u32>,
    records: usize,
}

impl SmartBan {
    /// Nothing suspect.
    pub fn new() -> SmartBan {
        SmartBan::default()
    }

    /// Whether `piece` failed with several senders and has not passed since.
    pub fn is_suspect(&self, piece: u32) -> bool {
        self.pieces.contains_key(&piece)
    }

    /// Block records held, over every suspect piece.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// `piece` failed its hash check; `records` are its blocks as they were
    /// on disk. Added to what an earlier failure of the same piece left.
    pub fn handle_failed(&mut self, piece: u32, records: Vec<BlockRecord>) {
        let mut records = records;
        records.truncate(MAX_RECORDS);
        while self.records + records.len() > MAX_RECORDS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(dropped) = self.pieces.remove(&oldest) {
                self.records -= dropped.len();
            }
        }
        self.records += records.len();
        if !self.pieces.contains_key(&piece) {
            self.order.push_back(piece);
        }
        self.pieces.entry(piece).or_default().extend(records);
    }

    /// `piece` passed its hash check; `good` holds the digest of each of
    /// its blocks, by block index. Returns who sent bad blocks and who was
    /// honest, and forgets the piece. A piece never recorded gives an empty
    /// verdict.
    pub fn handle_passed(&mut self, piece: u32, good: &[Sha1Hash]) -> Verdict {
        let Some(records) = self.pieces.remove(&piece) else {
            return Verdict::default();
        };
        self.records -= records.len();
        self.order.retain(|p| *p != piece);
        let mut verdict = Verdict::default();
        for record in &records {
            let Some(expected) = usize::try_from(record.block).ok().and_then(|n| good.get(n))
            else {
                continue;
            };
            if *expected != record.digest && !verdict.culprits.contains(&record.sender) {
                verdict.culprits.push(record.sender);
            }
        }
        for record in &records {
            let sender = record.sender;
            if !verdict.culprits.contains(&sender) && !verdict.cleared.contains(&sender) {
                verdict.cleared.push(sender);
            }
        }
        verdict
    }

    /// The block indices recorded for `piece` (which good digests
    /// [`SmartBan::handle_passed`] will need), lowest first, each once.
    pub fn recorded_blocks(&self, piece: u32) -> Vec<u32> {
        let mut blocks: Vec<u32> = self
            .pieces
            .get(&piece)
            .map(|records| records.iter().map(|r| r.block).collect())
            .unwrap_or_default();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn digest(byte: u8) -> Sha1Hash {
        Sha1Hash::of(&[byte; 16])
    }

    fn record(block: u32, port: u16, byte: u8) -> BlockRecord {
        BlockRecord {
            block,
            sender: peer(port),
            digest: digest(byte),
        }
    }

    #[test]
    fn only_the_sender_of_a_differing_block_is_blamed() {
        let mut ban = SmartBan::new();
        // Blocks 0 and 2 from the honest peer 1, block 1 (bad) from peer 2.
        ban.handle_failed(7, vec![record(0, 1, 0), record(1, 2, 99), record(2, 1, 2)]);
        assert!(ban.is_suspect(7));
        assert_eq!(ban.recorded_blocks(7), vec![0, 1, 2]);
        let good = [digest(0), digest(1), digest(2)];
        let verdict = ban.handle_passed(7, &good);
        assert_eq!(verdict.culprits, vec![peer(2)]);
        assert_eq!(verdict.cleared, vec![peer(1)]);
        assert!(!ban.is_suspect(7));
        assert_eq!(ban.record_count(), 0);
    }

    #[test]
    fn records_of_two_failures_are_all_compared() {
        let mut ban = SmartBan::new();
        ban.handle_failed(3, vec![record(0, 1, 0), record(1, 2, 50)]);
        ban.handle_failed(3, vec![record(0, 3, 60), record(1, 1, 1)]);
        let verdict = ban.handle_passed(3, &[digest(0), digest(1)]);
        assert_eq!(verdict.culprits, vec![peer(2), peer(3)]);
        assert_eq!(verdict.cleared, vec![peer(1)]);
    }

    #[test]
    fn a_piece_that_was_never_recorded_blames_nobody() {
        let mut ban = SmartBan::new();
        assert_eq!(ban.handle_passed(1, &[digest(0)]), Verdict::default());
    }

    #[test]
    fn a_record_past_the_good_blocks_is_ignored() {
        let mut ban = SmartBan::new();
        ban.handle_failed(0, vec![record(5, 2, 9), record(0, 1, 0)]);
        let verdict = ban.handle_passed(0, &[digest(0)]);
        assert!(verdict.culprits.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_dropping_the_oldest_piece() {
        let mut ban = SmartBan::new();
        let half = u32::try_from(MAX_RECORDS / 2).unwrap();
        let many = |port| (0..half).map(|b| record(b, port, 0)).collect::<Vec<_>>();
        ban.handle_failed(1, many(1));
        ban.handle_failed(2, many(2));
        assert_eq!(ban.record_count(), MAX_RECORDS);
        ban.handle_failed(3, vec![record(0, 3, 0)]);
        assert!(!ban.is_suspect(1), "the oldest piece's records went");
        assert!(ban.is_suspect(2) && ban.is_suspect(3));
        assert_eq!(ban.record_count(), MAX_RECORDS / 2 + 1);
        // One failure larger than the whole budget keeps what fits.
        ban.handle_failed(4, (0..2 * half).map(|b| record(b, 4, 0)).collect());
        assert!(ban.record_count() <= MAX_RECORDS);
    }
}
