//! The piece picker: which piece to start next from a given peer
//! (BEP 3 leaves the choice to the client; rarest-first is the classic).
//!
//! Layer 0: pure. It keeps, for each piece, how many connected peers have it
//! (its *availability*), updated incrementally: a HAVE adds one, a BITFIELD
//! adds a peer's whole set, a disconnect takes it away. A pick scans for the
//! least available piece that this peer has and that is still wanted,
//! breaking ties at random so that leechers fetching from the same seeder
//! spread over different pieces and can trade with each other.
//!
//! Pieces already in progress are finished first by the caller (see
//! [`crate::download`]); the picker only chooses new pieces.

use crate::bitfield::Bitfield;
use crate::rng::Rng;

/// Piece-selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Least available piece first, random among equals (the default).
    #[default]
    RarestFirst,
    /// Lowest index first, for playing media while it downloads.
    Sequential,
    /// Any piece the peer has, uniformly at random (spreads pieces fastest
    /// when every peer starts from the same seeder).
    Random,
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Strategy, String> {
        match text {
            "rarest" => Ok(Strategy::RarestFirst),
            "sequential" => Ok(Strategy::Sequential),
            "random" => Ok(Strategy::Random),
            other => Err(format!(
                "unknown strategy {other:?} (rarest, random or sequential)"
            )),
        }
    }
}

/// Availability of every piece among connected peers.
#[derive(Debug, Clone)]
pub struct Picker {
    availability: Vec<u32>,
    strategy: Strategy,
}

impl Picker {
    /// A picker for `piece_count` pieces, none available yet.
    pub fn new(piece_count: u32, strategy: Strategy) -> Picker {
        let len = usize::try_from(piece_count).unwrap_or(0);
        Picker {
            availability: vec![0; len],
            strategy,
        }
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.slot(piece).map_or(0, |&n| n)
    }

    /// A peer announced `piece` (HAVE).
    pub fn add_piece(&mut self, piece: u32) {
        if let Some(n) = self.slot_mut(piece) {
            *n = n.saturating_add(1);
        }
    }

    /// A peer with these pieces connected or sent its BITFIELD.
    pub fn add_peer(&mut self, has: &Bitfield) {
        for piece in has.iter_ones() {
            self.add_piece(piece);
        }
    }

    /// A peer with these pieces went away.
    pub fn remove_peer(&mut self, has: &Bitfield) {
        for piece in has.iter_ones() {
            if let Some(n) = self.slot_mut(piece) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// The piece to start next from a peer that has `peer_has`, among those
    /// for which `wanted` is true (not verified, not in progress).
    pub fn pick(
        &self,
        peer_has: &Bitfield,
        wanted: impl Fn(u32) -> bool,
        rng: &mut Rng,
    ) -> Option<u32> {
        let candidates = peer_has.iter_ones().filter(|&p| wanted(p));
        match self.strategy {
            Strategy::Sequential => candidates.min(),
            Strategy::Random => {
                // Reservoir sampling: the k-th candidate replaces the choice with probability 1/k.
                let mut choice = None;
                for (seen, piece) in candidates.enumerate() {
                    if rng.below(seen + 1) == 0 {
                        choice = Some(piece);
                    }
                }
                choice
            }
            Strategy::RarestFirst => {
                let mut best: Option<(u32, u32)> = None; // (availability, piece)
                let mut ties = 0usize;
                for piece in candidates {
                    let avail = self.availability(piece);
                    match best {
                        Some((best_avail, _)) if avail > best_avail => {}
                        Some((best_avail, _)) if avail == best_avail => {
                            // Reservoir sampling: each tie is kept with probability 1/ties.
                            ties += 1;
                            if rng.below(ties) == 0 {
                                best = Some((avail, piece));
                            }
                        }
                        _ => {
                            best = Some((avail, piece));
                            ties = 1;
                        }
                    }
                }
                best.map(|(_, piece)| piece)
            }
        }
    }

    fn slot(&self, piece: u32) -> Option<&u32> {
        self.availability.get(usize::try_from(piece).ok()?)
    }

    fn slot_mut(&mut self, piece: u32) -> Option<&mut u32> {
        self.availability.get_mut(usize::try_from(piece).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(len: u32, ones: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &i in ones {
            b.set(i);
        }
        b
    }

    #[test]
    fn rarest_piece_the_peer_has_is_picked() {
        let mut picker = Picker::new(4, Strategy::RarestFirst);
        picker.add_peer(&field(4, &[0, 1, 2, 3]));
        picker.add_peer(&field(4, &[0, 1, 3]));
        picker.add_peer(&field(4, &[0, 3]));
        // availability: 0:3 1:2 2:1 3:3
        let mut rng = Rng::new(1);
        let all = field(4, &[0, 1, 2, 3]);
        assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(2));
        assert_eq!(picker.pick(&all, |p| p != 2, &mut rng), Some(1));
        assert_eq!(
            picker
                .pick(&field(4, &[0, 3]), |_| true, &mut rng)
                .map(|p| p == 0 || p == 3),
            Some(true)
        );
        assert_eq!(picker.pick(&field(4, &[]), |_| true, &mut rng), None);
    }

    #[test]
    fn ties_are_broken_at_random_across_all_candidates() {
        let mut picker = Picker::new(8, Strategy::RarestFirst);
        let all = Bitfield::full(8);
        picker.add_peer(&all);
        let mut rng = Rng::new(9);
        let mut seen = [false; 8];
        for _ in 0..400 {
            seen[picker.pick(&all, |_| true, &mut rng).unwrap() as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn have_and_disconnect_move_availability() {
        let mut picker = Picker::new(3, Strategy::RarestFirst);
        let peer = field(3, &[0, 2]);
        picker.add_peer(&peer);
        picker.add_piece(2);
        assert_eq!((picker.availability(0), picker.availability(2)), (1, 2));
        picker.remove_peer(&peer);
        assert_eq!((picker.availability(0), picker.availability(2)), (0, 1));
        picker.add_piece(99); // out of range: ignored
    }

    #[test]
    fn random_covers_every_candidate_regardless_of_rarity() {
        let mut picker = Picker::new(4, Strategy::Random);
        picker.add_peer(&field(4, &[0, 1, 2, 3]));
        picker.add_peer(&field(4, &[0, 1, 2]));
        let mut rng = Rng::new(4);
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            seen[picker
                .pick(&Bitfield::full(4), |p| p != 1, &mut rng)
                .unwrap() as usize] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[0] > 50 && seen[2] > 50 && seen[3] > 50, "{seen:?}");
        assert_eq!("random".parse::<Strategy>(), Ok(Strategy::Random));
        assert!("fastest".parse::<Strategy>().is_err());
    }

    #[test]
    fn sequential_takes_the_lowest_wanted_index() {
        let mut picker = Picker::new(5, Strategy::Sequential);
        picker.add_peer(&field(5, &[4]));
        let mut rng = Rng::new(1);
        let has = field(5, &[1, 3, 4]);
        assert_eq!(picker.pick(&has, |p| p != 1, &mut rng), Some(3));
    }
}
