//! Which tracker to announce to next: the tiers of a torrent's
//! `announce-list` and the order we walk them in (BEP 12, "Multitracker
//! Metadata Extension").
//!
//! Layer 0: pure (no I/O, no clock; randomness is passed in). The session
//! asks [`Tiers::current`] for a URL, announces, and reports the outcome with
//! [`Tiers::on_success`] or [`Tiers::on_failure`].
//!
//! BEP 12's rules: the tiers are tried in order, every URL of a tier before
//! the next tier; each tier is shuffled once when read; a tracker that
//! answers moves to the front of its tier; and each announce starts again
//! from the first tier. When every URL has failed, [`Tiers::on_failure`] says
//! [`Failover::RoundFailed`] and the walk wraps to the start, so the caller
//! can back off before the next round instead of spinning through dead
//! trackers.
//!
//! URLs given by hand (`--tracker`) come first, each in a tier of its own and
//! in the order given. BEP 12 does not say where they go; first, because the
//! user named them on purpose (a private or local tracker, one known to
//! work), while a torrent's own list is often years old and full of dead
//! trackers that would each cost a timeout before the user's one was tried.
//!
//! Invariants: no tier is empty, no URL appears twice (the first occurrence
//! is kept), and the position always names an existing URL.

use crate::rng::Rng;

/// What the caller should do after a failed announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// Another URL is still untried in this round: announce to
    /// [`Tiers::current`] now.
    NextTracker,
    /// Every URL failed in this round (or there are none). The walk is back at
    /// the first URL; wait before trying again.
    RoundFailed,
}

/// The trackers of one torrent in tiers, and where the walk through them is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    /// The tiers in order; each tier's URLs in the order we try them.
    tiers: Vec<Vec<String>>,
    /// Index of the tier being tried.
    tier: usize,
    /// Index of the URL being tried within that tier.
    index: usize,
}

impl Tiers {
    /// The tiers for a torrent: `by_hand` URLs first, each in its own tier in
    /// the given order, then the torrent's `announce_list` tiers, each
    /// shuffled with `rng`.
    ///
    /// Empty URLs, repeated URLs and tiers left empty are dropped. For a
    /// torrent with only `announce`, pass `vec![vec![announce]]`.
    pub fn new(announce_list: Vec<Vec<String>>, by_hand: Vec<String>, rng: &mut Rng) -> Tiers {
        let mut seen: Vec<String> = Vec::new();
        let mut tiers = Vec::new();
        for url in by_hand {
            let tier = keep_new(vec![url], &mut seen);
            if !tier.is_empty() {
                tiers.push(tier);
            }
        }
        for tier in announce_list {
            let mut tier = keep_new(tier, &mut seen);
            rng.shuffle(&mut tier);
            if !tier.is_empty() {
                tiers.push(tier);
            }
        }
        Tiers {
            tiers,
            tier: 0,
            index: 0,
        }
    }

    /// The URL to announce to now; `None` when there are no trackers at all.
    pub fn current(&self) -> Option<&str> {
        self.tiers
            .get(self.tier)
            .and_then(|tier| tier.get(self.index))
            .map(String::as_str)
    }

    /// The announce to [`Tiers::current`] succeeded: move that URL to the
    /// front of its tier and start the next announce from the first tier.
    pub fn on_success(&mut self) {
        if let Some(tier) = self.tiers.get_mut(self.tier) {
            if self.index < tier.len() {
                let url = tier.remove(self.index);
                tier.insert(0, url);
            }
        }
        self.rewind();
    }

    /// The announce to [`Tiers::current`] failed: move on to the next URL of
    /// the tier, or the first URL of the next tier. After the last URL of
    /// the last tier the walk wraps to the start and reports
    /// [`Failover::RoundFailed`].
    pub fn on_failure(&mut self) -> Failover {
        let tier_len = self.tiers.get(self.tier).map_or(0, Vec::len);
        if self.index + 1 < tier_len {
            self.index += 1;
            return Failover::NextTracker;
        }
        if self.tier + 1 < self.tiers.len() {
            self.tier += 1;
            self.index = 0;
            return Failover::NextTracker;
        }
        self.rewind();
        Failover::RoundFailed
    }

    /// Every URL, tier by tier, in the order they will be tried.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// How many URLs there are in all.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    /// Whether there are no trackers at all (a trackerless torrent).
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Back to the first URL of the first tier.
    fn rewind(&mut self) {
        self.tier = 0;
        self.index = 0;
    }
}

/// The URLs of `tier` that are not empty and not in `seen`, recording them in
/// `seen`. A torrent has a few dozen URLs at most, so a list is enough.
fn keep_new(tier: Vec<String>, seen: &mut Vec<String>) -> Vec<String> {
    let mut kept = Vec::new();
    for url in tier {
        if !url.is_empty() && !seen.contains(&url) {
            seen.push(url.clone());
            kept.push(url);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|url| (*url).to_owned()).collect()
    }

    fn list(tiers: &[&[&str]]) -> Vec<Vec<String>> {
        tiers.iter().map(|tier| strings(tier)).collect()
    }

    /// Tiers laid out exactly as given (no shuffle), for walking tests.
    fn fixed(tiers: &[&[&str]]) -> Tiers {
        Tiers {
            tiers: list(tiers),
            tier: 0,
            index: 0,
        }
    }

    /// Fails `n` times, collecting the URL tried before each failure and
    /// what `on_failure` said.
    fn fail(tiers: &mut Tiers, n: usize) -> Vec<(String, Failover)> {
        (0..n)
            .map(|_| {
                let url = tiers.current().unwrap_or_default().to_owned();
                (url, tiers.on_failure())
            })
            .collect()
    }

    #[test]
    fn shuffle_keeps_every_url_in_its_tier() {
        let big: Vec<String> = (0..20).map(|i| format!("http://t{i}/announce")).collect();
        let input = vec![
            big.clone(),
            strings(&["udp://b:1"]),
            strings(&["udp://c:1", "udp://d:1"]),
        ];
        let mut shuffled_somewhere = false;
        for seed in 0..8 {
            let tiers = Tiers::new(input.clone(), vec![], &mut Rng::new(seed));
            assert_eq!(tiers.tiers().len(), 3);
            for (got, given) in tiers.tiers().iter().zip(&input) {
                let mut sorted_got = got.clone();
                let mut sorted_given = given.clone();
                sorted_got.sort();
                sorted_given.sort();
                assert_eq!(sorted_got, sorted_given, "seed {seed}");
            }
            shuffled_somewhere |= tiers.tiers()[0] != big;
        }
        assert!(shuffled_somewhere, "twenty URLs never shuffled");
    }

    #[test]
    fn urls_by_hand_come_first_each_in_its_own_tier() {
        let tiers = Tiers::new(
            list(&[&["http://a/announce"]]),
            strings(&["udp://mine:1", "http://also-mine/announce"]),
            &mut Rng::new(1),
        );
        assert_eq!(
            tiers.tiers(),
            list(&[
                &["udp://mine:1"],
                &["http://also-mine/announce"],
                &["http://a/announce"]
            ])
        );
        assert_eq!(tiers.current(), Some("udp://mine:1"));
        assert_eq!(tiers.len(), 3);
    }

    #[test]
    fn empty_and_repeated_urls_and_empty_tiers_are_dropped() {
        let tiers = Tiers::new(
            list(&[
                &[],
                &["", "http://a/x"],
                &["http://a/x"],
                &["udp://b:1", "udp://b:1"],
            ]),
            strings(&["udp://b:1", ""]),
            &mut Rng::new(1),
        );
        assert_eq!(tiers.tiers(), list(&[&["udp://b:1"], &["http://a/x"]]));
    }

    #[test]
    fn no_trackers_means_no_current_and_every_failure_is_a_round() {
        let mut tiers = Tiers::new(vec![], vec![], &mut Rng::new(1));
        assert!(tiers.is_empty());
        assert_eq!(tiers.current(), None);
        assert_eq!(tiers.on_failure(), Failover::RoundFailed);
        tiers.on_success();
        assert_eq!(tiers.current(), None);
    }

    #[test]
    fn failure_walks_each_tier_before_the_next_then_reports_the_round() {
        let mut tiers = fixed(&[&["a1", "a2"], &["b1"], &["c1", "c2", "c3"]]);
        use Failover::{NextTracker as Next, RoundFailed as Round};
        let expected = [
            ("a1", Next),
            ("a2", Next),
            ("b1", Next),
            ("c1", Next),
            ("c2", Next),
            ("c3", Round),
            ("a1", Next),
        ];
        let walked = fail(&mut tiers, expected.len());
        let expected: Vec<(String, Failover)> = expected
            .iter()
            .map(|(url, what)| ((*url).to_owned(), *what))
            .collect();
        assert_eq!(walked, expected);
        assert_eq!(tiers.current(), Some("a2"));
    }

    #[test]
    fn a_single_tracker_fails_a_round_every_time() {
        let mut tiers = fixed(&[&["only"]]);
        for _ in 0..3 {
            assert_eq!(tiers.on_failure(), Failover::RoundFailed);
            assert_eq!(tiers.current(), Some("only"));
        }
    }

    #[test]
    fn success_promotes_within_the_tier_and_restarts_from_the_first_tier() {
        // BEP 12's example: tracker1 fails, tracker2 answers.
        let mut tiers = fixed(&[&["t1", "t2", "t3"], &["backup"]]);
        assert_eq!(tiers.on_failure(), Failover::NextTracker);
        assert_eq!(tiers.current(), Some("t2"));
        tiers.on_success();
        assert_eq!(tiers.tiers()[0], strings(&["t2", "t1", "t3"]));
        assert_eq!(tiers.current(), Some("t2"));

        // Later t2 and t1 fail and t3 answers: t3, t2, t1.
        tiers.on_failure();
        tiers.on_failure();
        assert_eq!(tiers.current(), Some("t3"));
        tiers.on_success();
        assert_eq!(tiers.tiers()[0], strings(&["t3", "t2", "t1"]));
        assert_eq!(tiers.current(), Some("t3"));
    }

    #[test]
    fn success_in_a_later_tier_promotes_there_and_returns_to_the_first_tier() {
        let mut tiers = fixed(&[&["a"], &["b1", "b2"]]);
        assert_eq!(fail(&mut tiers, 2).len(), 2);
        assert_eq!(tiers.current(), Some("b2"));
        tiers.on_success();
        assert_eq!(tiers.tiers(), list(&[&["a"], &["b2", "b1"]]));
        assert_eq!(tiers.current(), Some("a"));
        assert_eq!(tiers.on_failure(), Failover::NextTracker);
        assert_eq!(tiers.current(), Some("b2"));
    }
}
