//! The choker: which peers we upload to (BEP 3 "choking").
//!
//! Layer 0: pure; callers pass rates and a random generator. Every rechoke
//! (every 10 s) the interested peers that give us the most get the regular
//! upload slots ("tit for tat"; when we are seeding there is no tit, and
//! the slots change hands instead, half of them each epoch: see
//! [`seed_rechoke`]); one more interested peer, rotated every 30 s and
//! chosen at random, holds the optimistic slot, so newcomers get a chance
//! to prove themselves.
//!
//! [`ChokerKind::PropShare`] is the alternative from Levin, LaCurts, Spring
//! and Bhattacharjee, "BitTorrent is an Auction" (SIGCOMM 2008): instead
//! of equal slots for the top few, every peer that gave us something in the
//! last epoch gets upload bandwidth in proportion to what it gave, and a
//! fixed share ([`PROPSHARE_OPTIMISTIC_PERCENT`]) is kept for one
//! optimistic peer so newcomers can start trading. See
//! [`propshare_allocation`] and [`propshare_unchoke`]. It is a leeching
//! policy: a seeder receives nothing to be proportional to, so the caller
//! uses [`rechoke`] when seeding.

use crate::rng::Rng;

/// Regular upload slots (aria2 uses 3 + 1 optimistic; libtorrent and
/// Transmission 8 on fast links; 4 suits small uplinks).
pub const UPLOAD_SLOTS: usize = 4;

/// Which policy picks the peers we upload to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChokerKind {
    /// The top [`UPLOAD_SLOTS`] peers by rate, plus one optimistic peer
    /// (BEP 3's tit for tat; the default).
    #[default]
    TitForTat,
    /// Bandwidth in proportion to what each peer gave us, plus an
    /// optimistic share (see [`propshare_allocation`]).
    PropShare,
}

impl std::str::FromStr for ChokerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<ChokerKind, String> {
        match text {
            "tft" => Ok(ChokerKind::TitForTat),
            "propshare" => Ok(ChokerKind::PropShare),
            other => Err(format!("unknown choker {other:?} (tft or propshare)")),
        }
    }
}

/// Percent of the upload budget PropShare keeps for the optimistic peer:
/// the paper's 20 %, the same fraction tit for tat gives it (one slot of
/// four regular plus one).
pub const PROPSHARE_OPTIMISTIC_PERCENT: u64 = 20;

/// Most peers PropShare unchokes for what they gave us (the optimistic
/// peer comes on top): libtorrent's and Transmission's slot count, since
/// proportional shares make small slots cheap.
pub const PROPSHARE_MAX_PEERS: usize = 8;

/// Smallest PropShare allocation worth an unchoke, in bytes/s: below a
/// 16 KiB block every four seconds the peer's requests would time out.
pub const PROPSHARE_MIN_SHARE_BYTES_PER_SEC: u64 = 4 * 1024;

/// How PropShare divides our upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareBudget {
    /// Upload bandwidth to divide, bytes/s: the configured upload limit,
    /// or the measured upload rate when there is none.
    pub bytes_per_sec: u64,
    /// Percent of it kept for the optimistic peer (clamped to 100).
    pub optimistic_percent: u64,
    /// Most peers given a share for what they gave us.
    pub max_peers: usize,
    /// Smaller proportional shares are dropped and their bandwidth
    /// divided among the others (the largest contributor always stays).
    pub min_share: u64,
}

impl ShareBudget {
    /// `bytes_per_sec` divided with the default percent, cap and minimum.
    pub fn new(bytes_per_sec: u64) -> ShareBudget {
        ShareBudget {
            bytes_per_sec,
            optimistic_percent: PROPSHARE_OPTIMISTIC_PERCENT,
            max_peers: PROPSHARE_MAX_PEERS,
            min_share: PROPSHARE_MIN_SHARE_BYTES_PER_SEC,
        }
    }
}

/// One peer's PropShare allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The caller's id for the peer.
    pub id: usize,
    /// Upload bandwidth for it, bytes/s.
    pub bytes_per_sec: u64,
}

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

/// Seeding: the `slots` regular slots change hands, half of them per
/// epoch. While interested peers wait (more than the free slots can take),
/// the peers that `held` a regular slot keep half of them (rounded down),
/// and the waiters take the rest, so every interested peer gets its turn
/// whatever its speed. Ranking by upload rate alone, as
/// [`rechoke`] does, lets the fastest readers (or the greediest: peers that
/// flood REQUESTs and read at full speed) keep the slots for good, and an
/// honest leecher would get nothing but the odd optimistic slot: a seed has
/// no tit to answer with tat. libtorrent's default seed choker rotates its
/// slots for the same reason; rotating half at a time keeps some transfers
/// going and leaves waiting peers for the optimistic slot. Peers that stopped reading are
/// last; which holder gives way, and which waiter comes in, follow the
/// order of `candidates` (the caller shuffles them).
pub fn seed_rechoke(candidates: &[Candidate], held: &[usize], slots: usize) -> Vec<usize> {
    let interested = candidates.iter().filter(|c| c.interested);
    let (stalled, reading): (Vec<&Candidate>, Vec<&Candidate>) =
        interested.partition(|c| c.stalled);
    let (holders, waiters): (Vec<&Candidate>, Vec<&Candidate>) =
        reading.into_iter().partition(|c| held.contains(&c.id));
    let free = slots.saturating_sub(holders.len());
    let keep = if waiters.len() > free {
        holders.len().min(slots) / 2
    } else {
        holders.len()
    };
    let (kept, giving_way) = holders.split_at(keep.min(holders.len()));
    kept.iter()
        .chain(&waiters)
        .chain(giving_way)
        .chain(&stalled)
        .take(slots)
        .map(|c| c.id)
        .collect()
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

/// PropShare: divides `budget` among the interested peers that are still
/// reading, in proportion to `rate` (what each sent us last epoch).
///
/// - The optimistic peer, if interested and reading, gets
///   `optimistic_percent` of the budget (on top of any proportional share
///   it earned); without one, everything is divided proportionally.
/// - The rest goes to the `max_peers` biggest contributors (ties keep the
///   order of `candidates`), each `rest * rate / total`, rounded down; the
///   bytes lost to rounding go to the biggest contributor, so the shares
///   add up to the budget exactly. Shares below `min_share` are dropped,
///   smallest first, and the rest divided again.
/// - When nobody gave us anything (start-up), the rest is split equally
///   among the first `max_peers` of them: equal contributions, equal shares.
///   When the optimistic peer is the only taker, it gets the whole budget.
///
/// Returns the biggest contributors first, then the optimistic peer.
pub fn propshare_allocation(
    candidates: &[Candidate],
    budget: &ShareBudget,
    optimistic: Option<usize>,
) -> Vec<Share> {
    let eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.interested && !c.stalled)
        .collect();
    let optimistic = optimistic.filter(|id| eligible.iter().any(|c| c.id == *id));
    let mut reserve = match optimistic {
        Some(_) => part(
            budget.bytes_per_sec,
            budget.optimistic_percent.min(100),
            100,
        ),
        None => 0,
    };
    let rest = budget.bytes_per_sec - reserve;
    let mut contributors: Vec<&Candidate> =
        eligible.iter().copied().filter(|c| c.rate > 0).collect();
    contributors.sort_by_key(|c| std::cmp::Reverse(c.rate));
    contributors.truncate(budget.max_peers);
    let mut shares = if contributors.is_empty() {
        let newcomers: Vec<&Candidate> = eligible
            .iter()
            .copied()
            .filter(|c| Some(c.id) != optimistic)
            .take(budget.max_peers)
            .collect();
        divide(&newcomers, rest, |_| 1)
    } else {
        proportional(&mut contributors, rest, budget.min_share)
    };
    if shares.is_empty() {
        reserve = budget.bytes_per_sec; // the optimistic peer is the only taker
    }
    if let Some(id) = optimistic {
        match shares.iter_mut().find(|s| s.id == id) {
            Some(share) => share.bytes_per_sec += reserve,
            None => shares.push(Share {
                id,
                bytes_per_sec: reserve,
            }),
        }
    }
    shares
}

/// `rest` divided among `contributors` (sorted by rate, biggest first) by
/// rate, dropping the smallest while its share is below `min_share`.
fn proportional(contributors: &mut Vec<&Candidate>, rest: u64, min_share: u64) -> Vec<Share> {
    loop {
        let shares = divide(contributors, rest, |c| c.rate);
        let too_small =
            shares.len() > 1 && shares.last().is_some_and(|s| s.bytes_per_sec < min_share);
        if !too_small {
            return shares;
        }
        contributors.pop();
    }
}

/// `total` divided among `peers` by `weight`, rounded down, the remainder
/// to the first peer.
fn divide(peers: &[&Candidate], total: u64, weight: impl Fn(&Candidate) -> u64) -> Vec<Share> {
    let weights: u128 = peers.iter().map(|c| u128::from(weight(c))).sum();
    let mut shares: Vec<Share> = peers
        .iter()
        .map(|c| Share {
            id: c.id,
            bytes_per_sec: part(total, weight(c), weights),
        })
        .collect();
    // Each part is rounded down, so together they never exceed `total`.
    let given = shares
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.bytes_per_sec));
    if let Some(first) = shares.first_mut() {
        first.bytes_per_sec = first
            .bytes_per_sec
            .saturating_add(total.saturating_sub(given));
    }
    shares
}

/// `total * numerator / denominator` rounded down, without overflow (0
/// when `denominator` is 0).
fn part(total: u64, numerator: u64, denominator: u128) -> u64 {
    if denominator == 0 {
        return 0;
    }
    let exact = u128::from(total) * u128::from(numerator) / denominator;
    u64::try_from(exact).unwrap_or(u64::MAX)
}

/// The ids to unchoke under PropShare: the peers with a non-zero share,
/// biggest share first (ties keep the allocation's order), at most `cap`.
/// Everyone else is choked. With `cap` at least `max_peers + 1` every peer
/// [`propshare_allocation`] gave bandwidth is unchoked.
pub fn propshare_unchoke(allocation: &[Share], cap: usize) -> Vec<usize> {
    let mut sharing: Vec<&Share> = allocation.iter().filter(|s| s.bytes_per_sec > 0).collect();
    sharing.sort_by_key(|s| std::cmp::Reverse(s.bytes_per_sec));
    sharing.iter().take(cap).map(|s| s.id).collect()
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
    fn seeding_slots_change_hands_so_fast_flooders_cannot_keep_them() {
        // Four fast flooders hold the slots; a slow honest leecher (6) and
        // an uninterested peer (7) wait.
        let peers = [
            c(1, true, 900),
            c(2, true, 800),
            c(3, true, 700),
            c(4, true, 600),
            c(6, true, 10),
            c(7, false, 0),
        ];
        let next = seed_rechoke(&peers, &[1, 2, 3, 4], 4);
        assert_eq!(next, vec![1, 2, 6, 3], "half the holders give way");
        // Next epoch the one left out gets its turn back.
        assert_eq!(seed_rechoke(&peers, &next, 4), vec![1, 2, 4, 3]);
        // Nobody waits beyond the free slots: the holders keep theirs.
        assert_eq!(seed_rechoke(&peers, &[1, 2, 3, 6], 5), vec![1, 2, 3, 6, 4]);
        // More wait than the free slots take: half the holders give way.
        assert_eq!(seed_rechoke(&peers, &[1, 2, 3], 4), vec![1, 4, 6, 2]);
    }

    #[test]
    fn seeding_peers_that_stopped_reading_come_last() {
        let stalled = Candidate {
            stalled: true,
            ..c(8, true, 0)
        };
        let peers = [stalled, c(9, true, 0), c(10, true, 0)];
        assert_eq!(seed_rechoke(&peers, &[8], 4), vec![9, 10, 8]);
        assert_eq!(seed_rechoke(&peers, &[8, 9], 1), vec![10]);
        assert_eq!(seed_rechoke(&peers, &[9], 2), vec![9, 10]);
        assert_eq!(seed_rechoke(&peers, &[], 0), Vec::<usize>::new());
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

    fn share(id: usize, bytes_per_sec: u64) -> Share {
        Share { id, bytes_per_sec }
    }

    fn budget(bytes_per_sec: u64, max_peers: usize, min_share: u64) -> ShareBudget {
        ShareBudget {
            bytes_per_sec,
            optimistic_percent: 20,
            max_peers,
            min_share,
        }
    }

    #[test]
    fn propshare_divides_the_budget_by_what_each_peer_gave() {
        let stalled = Candidate {
            stalled: true,
            ..c(8, true, 900)
        };
        let peers = [
            c(1, true, 300),
            c(2, true, 100),
            c(3, false, 500), // not interested: nothing
            c(4, true, 0),    // gave nothing: nothing, unless optimistic
            stalled,          // not reading: nothing
        ];
        // (budget, optimistic, expected shares)
        let cases: &[(ShareBudget, Option<usize>, &[Share])] = &[
            // 20 % of 1000 for the optimistic peer, 800 split 3:1.
            (
                budget(1000, 8, 0),
                Some(4),
                &[share(1, 600), share(2, 200), share(4, 200)],
            ),
            // No optimistic peer: all 1000 split 3:1.
            (budget(1000, 8, 0), None, &[share(1, 750), share(2, 250)]),
            // An optimistic peer that cannot take it: same.
            (budget(1000, 8, 0), Some(3), &[share(1, 750), share(2, 250)]),
            (budget(1000, 8, 0), Some(8), &[share(1, 750), share(2, 250)]),
            // The optimistic peer also contributed: both parts add up.
            (budget(1000, 8, 0), Some(2), &[share(1, 600), share(2, 400)]),
            // Only the biggest contributor fits under the cap.
            (budget(1000, 1, 0), Some(4), &[share(1, 800), share(4, 200)]),
            // 250 is below the minimum: 2 is dropped, 1 takes it all.
            (budget(1000, 8, 300), None, &[share(1, 1000)]),
            // No budget: nobody gets anything.
            (
                budget(0, 8, 0),
                Some(4),
                &[share(1, 0), share(2, 0), share(4, 0)],
            ),
        ];
        for (i, (budget, optimistic, expected)) in cases.iter().enumerate() {
            assert_eq!(
                propshare_allocation(&peers, budget, *optimistic),
                expected.to_vec(),
                "case {i}"
            );
        }
    }

    #[test]
    fn propshare_rounding_and_minimum_keep_the_total_exact() {
        // (rates, budget, min share, expected shares in id order of rate)
        let cases: &[(&[u64], u64, u64, &[u64])] = &[
            (&[1, 1, 1], 100, 0, &[34, 33, 33]),
            // 900 / 90 / 10: the 10 is dropped, 1000 re-split 90:9 = 909.09 / 90.9.
            (&[90, 9, 1], 1000, 50, &[910, 90]),
            (&[90, 9, 1], 1000, 0, &[900, 90, 10]),
            // Huge rates do not overflow.
            (
                &[u64::MAX, u64::MAX],
                u64::MAX,
                0,
                &[u64::MAX / 2 + 1, u64::MAX / 2],
            ),
        ];
        for &(rates, total, min_share, expected) in cases {
            let peers: Vec<Candidate> = (0..).zip(rates).map(|(id, &r)| c(id, true, r)).collect();
            let shares = propshare_allocation(&peers, &budget(total, 8, min_share), None);
            let got: Vec<u64> = shares.iter().map(|s| s.bytes_per_sec).collect();
            assert_eq!(got, expected, "{rates:?}");
            assert_eq!(got.iter().fold(0u64, |a, &b| a.saturating_add(b)), total);
        }
    }

    #[test]
    fn propshare_splits_equally_when_nobody_has_given_anything_yet() {
        let peers = [
            c(1, true, 0),
            c(2, true, 0),
            c(3, false, 0),
            c(4, true, 0),
            c(5, true, 0),
            c(6, true, 0),
        ];
        // 1000 - 200 reserved = 800 over the first four newcomers but the optimistic one.
        assert_eq!(
            propshare_allocation(&peers, &budget(1000, 4, 0), Some(2)),
            vec![
                share(1, 200),
                share(4, 200),
                share(5, 200),
                share(6, 200),
                share(2, 200)
            ]
        );
        assert_eq!(
            propshare_allocation(&peers, &budget(1000, 2, 0), None),
            vec![share(1, 500), share(2, 500)]
        );
        assert_eq!(
            propshare_allocation(&[], &budget(1000, 4, 0), Some(1)),
            vec![]
        );
    }

    #[test]
    fn propshare_unchokes_peers_with_a_share_biggest_first_up_to_the_cap() {
        let allocation = [share(1, 600), share(2, 0), share(3, 200), share(4, 250)];
        assert_eq!(propshare_unchoke(&allocation, 10), vec![1, 4, 3]);
        assert_eq!(propshare_unchoke(&allocation, 2), vec![1, 4]);
        assert_eq!(propshare_unchoke(&allocation, 0), Vec::<usize>::new());
        assert_eq!(
            propshare_unchoke(&[share(7, 5), share(8, 5)], 1),
            vec![7] // ties keep the allocation's order
        );
    }

    #[test]
    fn choker_kinds_parse_from_their_option_names() {
        let cases = [
            ("tft", Ok(ChokerKind::TitForTat)),
            ("propshare", Ok(ChokerKind::PropShare)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<ChokerKind>(), expected);
        }
        assert!("fastest".parse::<ChokerKind>().is_err());
        assert_eq!(ChokerKind::default(), ChokerKind::TitForTat);
    }
}
