//! The rules the torrent core's bookkeeping keeps between calls, checked on
//! demand (layer 0, pure).
//!
//! The core keeps the same facts in several places: our verified pieces
//! (`have`), the [`Picker`](crate::picker::Picker)'s removed set and
//! availability counts, the blocks in progress
//! ([`PartialPieces`](crate::partial_pieces::PartialPieces)) and each peer's
//! requests in flight. [`Torrent::check_invariants`] checks they agree.
//! The fuzz target `torrent_core` (tests/fuzz/) calls it after every event of
//! an arbitrary sequence; a disagreement is the classic "stuck at 99.9 %"
//! or "requests to a peer long gone" bug before it shows.

use std::collections::BTreeMap;

use super::Torrent;
use crate::metainfo::BLOCK_LEN;

impl Torrent {
    /// Checks that the core's bookkeeping agrees with itself; `Err` names
    /// the first rule broken:
    ///
    /// - a piece in progress is not verified;
    /// - the picker has taken out exactly the verified pieces, and counts
    ///   for each piece the connected peers that have it;
    /// - every request in flight belongs to a connected peer (one closing
    ///   still counts until [`Torrent::handle_disconnected`]), is for a
    ///   piece in progress, and each block is marked requested as many
    ///   times as peers asked for it.
    ///
    /// Costs O(pieces x peers + blocks in progress): for tests and fuzzing,
    /// never called by the loop.
    pub fn check_invariants(&self) -> Result<(), String> {
        for piece in self.partial_pieces.pieces() {
            if self.have.has(piece) {
                return Err(format!("piece {piece} is both verified and in progress"));
            }
        }
        if self.fetch.is_none() {
            for piece in 0..self.meta.layout.piece_count() {
                if self.have.has(piece) != self.picker.is_removed(piece) {
                    return Err(format!(
                        "piece {piece}: verified {} but removed from the picker {}",
                        self.have.has(piece),
                        self.picker.is_removed(piece)
                    ));
                }
                let holders = self
                    .peers
                    .values()
                    .filter(|p| p.state.has().has(piece))
                    .count();
                let counted = self.picker.availability(piece);
                if usize::try_from(counted).ok() != Some(holders) {
                    return Err(format!(
                        "piece {piece}: availability {counted}, but {holders} peers have it"
                    ));
                }
            }
        }
        let mut asked: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        for (key, peer) in &self.peers {
            for request in peer.state.requested() {
                let piece = request.block.piece.get();
                if !self.partial_pieces.contains(piece) {
                    return Err(format!(
                        "peer {key} has a request in flight for piece {piece}, not in progress"
                    ));
                }
                let index = request.block.begin / BLOCK_LEN;
                *asked.entry((piece, index)).or_default() += 1;
            }
        }
        for (piece, index, marked) in self.partial_pieces.outstanding() {
            let held = asked.remove(&(piece, index)).unwrap_or(0);
            if held != u32::from(marked) {
                return Err(format!(
                    "block {index} of piece {piece} is marked requested {marked} times, \
                     but {held} connected peers asked for it"
                ));
            }
        }
        if let Some(((piece, index), held)) = asked.into_iter().next() {
            return Err(format!(
                "{held} peers asked for block {index} of piece {piece}, which is not marked requested"
            ));
        }
        Ok(())
    }
}
