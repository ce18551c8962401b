//! The choker: which peers we upload to (BEP 3 "choking").
//!
//! Layer 0: pure; callers pass rates and a random generator. Every rechoke
//! (every 10 s) the interested peers that give us the most (or, when we
//! are seeding, that we upload to fastest) get the regular upload slots;
//! one more interested peer, rotated every 30 s and chosen at random,
//! holds the optimistic slot, so newcomers get a chance to prove
//! themselves ("tit for tat").

use crate::rng::Rng;

/// Regular upload slots (aria2 uses 3 + 1 optimistic; libtorrent and
/// Transmission 8 on fast links; 4 suits small uplinks).
pub const UPLOAD_SLOTS: usize = 4;

/// What the choker needs to know about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's id for the peer (its slab key).
    pub id: usize,
    /// It is interested in us.
    pub interested: bool,
    /// Bytes/s it sends us (leeching) or we send it (seeding).
    pub rate: u64,
    /// It has stopped reading what we send (bytes wait, none move): it
    /// gets a slot only if nobody else wants one.
    pub stalled: bool,
}

/// The ids to unchoke: the `slots` interested peers with the best rates
/// (peers that stopped reading last), plus `optimistic` if it is still
/// interested. Everyone else is choked. Ties keep the order of
/// `candidates`: the caller shuffles them, so equal peers take turns.
pub fn rechoke(candidates: &[Candidate], slots: usize, optimistic: Option<usize>) -> Vec<usize> {
    let mut interested: Vec<&Candidate> = candidates.iter().filter(|c| c.interested).collect();
    interested.sort_by(|a, b| a.stalled.cmp(&b.stalled).then(b.rate.cmp(&a.rate)));
    let mut unchoke: Vec<usize> = interested.iter().take(slots).map(|c| c.id).collect();
    if let Some(id) = optimistic {
        let still_interested = interested.iter().any(|c| c.id == id);
        if still_interested && !unchoke.contains(&id) {
            unchoke.push(id);
        }
    }
    unchoke
}

/// A new optimistic unchoke: a random interested peer that would not get a
/// regular slot, or `None` if there is no such peer.
pub fn pick_optimistic(
    candidates: &[Candidate],
    regular: &[usize],
    rng: &mut Rng,
) -> Option<usize> {
    let eligible: Vec<usize> = candidates
        .iter()
        .filter(|c| c.interested && !regular.contains(&c.id))
        .map(|c| c.id)
        .collect();
    eligible.get(rng.below(eligible.len())).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: usize, interested: bool, rate: u64) -> Candidate {
        Candidate {
            id,
            interested,
            rate,
            stalled: false,
        }
    }

    #[test]
    fn peers_that_stopped_reading_lose_their_slots_and_ties_keep_input_order() {
        let stalled = |id| Candidate {
            stalled: true,
            ..c(id, true, 0)
        };
        let peers = [
            stalled(1),
            stalled(2),
            c(9, true, 0),
            c(3, true, 0),
            stalled(4),
        ];
        assert_eq!(rechoke(&peers, 2, None), vec![9, 3]);
        assert_eq!(rechoke(&peers, 3, None), vec![9, 3, 1]);
    }

    #[test]
    fn fastest_interested_peers_get_the_slots() {
        let peers = [
            c(1, true, 10),
            c(2, true, 50),
            c(3, false, 99),
            c(4, true, 30),
            c(5, true, 0),
        ];
        assert_eq!(rechoke(&peers, 2, None), vec![2, 4]);
        assert_eq!(rechoke(&peers, 10, None), vec![2, 4, 1, 5]);
    }

    #[test]
    fn optimistic_peer_is_added_while_interested() {
        let peers = [
            c(1, true, 10),
            c(2, true, 50),
            c(5, true, 0),
            c(6, false, 0),
        ];
        assert_eq!(rechoke(&peers, 1, Some(5)), vec![2, 5]);
        assert_eq!(rechoke(&peers, 1, Some(6)), vec![2]);
        assert_eq!(rechoke(&peers, 1, Some(2)), vec![2]);
    }

    #[test]
    fn optimistic_pick_avoids_regular_slots_and_uninterested_peers() {
        let peers = [
            c(1, true, 10),
            c(2, true, 50),
            c(3, false, 0),
            c(4, true, 0),
        ];
        let mut rng = Rng::new(5);
        for _ in 0..50 {
            let pick = pick_optimistic(&peers, &[2], &mut rng).unwrap();
            assert!(pick == 1 || pick == 4);
        }
        assert_eq!(pick_optimistic(&peers, &[1, 2, 4], &mut rng), None);
    }
}
