//! Which trackers to announce to, and when: the tiers of a torrent's
//! `announce-list` (BEP 12, "Multitracker Metadata Extension"), each one
//! scheduled on its own.
//!
//! Layer 0: pure (no I/O; the clock is passed in as `now`, randomness as an
//! [`Rng`]). The session asks [`Tiers::due`] which tiers want to announce,
//! takes each one's URL and event from [`Tier::begin`], does the network
//! part, and reports the outcome with [`Tier::succeeded`] or
//! [`Tier::failed`]. [`Tiers::next_deadline`] says when the next tier wakes.
//!
//! **Every tier announces on its own.** BEP 12 walks the tiers in order and
//! only asks tier 2 when every URL of tier 1 failed; a tier-1 UDP tracker
//! that never answers then holds back a working tier 2 for as long as the
//! UDP retransmit schedule lasts. Here, as in Transmission (and libtorrent's
//! `announce_to_all_tiers`), every tier has its own current URL, its own next
//! announce time, interval and back-off, and its own announce in flight, so a
//! dead tier never delays the others. Peers from any tier join the same list.
//!
//! **BEP 12 inside a tier.** A tier's URLs are shuffled once when read; a
//! failed announce moves to the tier's next URL at once; one that answers
//! moves to the front of its tier and is used from then on. When every URL
//! of a tier has failed in a row ([`Failover::RoundFailed`]) the tier waits
//! [`FIRST_BACKOFF`], doubling per failed round up to [`MAX_BACKOFF`], so
//! dead trackers are not asked every pass.
//!
//! **Events per tier.** Each tier must see `started` first; a tier that saw
//! us start incomplete is owed `completed` when the download finishes; and
//! on exit every tier that saw `started` gets `stopped`
//! ([`Tier::exit_events`]). A tier whose `started` never got through just
//! announces `started` later, with what is left then.
//!
//! URLs given by hand (`--tracker`) come first, each in a tier of its own and
//! in the order given. BEP 12 does not say where they go; first, because the
//! user named them on purpose (a private or local tracker, one known to
//! work).
//!
//! Invariants: no tier is empty, no URL appears twice (the first occurrence
//! is kept), a tier's position always names one of its URLs, at most
//! [`MAX_TIERS`] tiers of at most [`MAX_TIER_URLS`] URLs, and a tier with an
//! announce in flight is never due.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Event;
use crate::rng::Rng;

/// First wait after every URL of a tier failed in a row; doubles with each
/// failed round up to [`MAX_BACKOFF`]. Long enough that a dead tracker costs
/// little, short enough that one that was only restarting is back soon.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(15);

/// Longest wait between rounds of a tier whose trackers keep failing (about
/// the usual announce interval: a tracker that comes back is asked again
/// within the half hour).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// Most tiers used; later ones are ignored. Every tier announces in
/// parallel (a UDP socket each, a share of the loop's time for HTTP), and a
/// torrent is untrusted input: public lists of "every tracker" hold about a
/// hundred, most of them dead, and peers come from the first few that work.
pub const MAX_TIERS: usize = 64;

/// Most URLs kept in one tier; later ones are ignored. A tier is walked one
/// URL at a time, so a longer one would take hours to go round anyway.
pub const MAX_TIER_URLS: usize = 32;

/// What the caller should know after a failed announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// The tier has another URL untried in this round: it is due again now.
    NextTracker,
    /// Every URL of the tier failed in this round; the tier is back at its
    /// first URL and waits (the back-off) before the next round.
    RoundFailed,
}

/// One tier: its URLs in BEP 12 order and its own announce schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The URLs in the order we try them (the one that last answered first).
    urls: Vec<String>,
    /// Index of the URL being tried.
    index: usize,
    /// When the tier next announces; meaningless while `in_flight` is set.
    next_at: Instant,
    /// The event of the announce in flight, if one is.
    in_flight: Option<Event>,
    /// Rounds in a row in which every URL of the tier failed.
    failed_rounds: u32,
    /// A tracker of this tier accepted our `started`.
    started: bool,
    /// A `completed` announce is owed to this tier.
    completed_due: bool,
    /// The `tracker id` this tier's tracker gave us, sent back on each announce.
    tracker_id: Option<String>,
}

impl Tier {
    /// A tier of `urls` (not empty), due at `now`.
    fn new(urls: Vec<String>, now: Instant) -> Tier {
        Tier {
            urls,
            index: 0,
            next_at: now,
            in_flight: None,
            failed_rounds: 0,
            started: false,
            completed_due: false,
            tracker_id: None,
        }
    }

    /// The tier's URLs in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URL the tier announces to now (or is announcing to).
    pub fn current(&self) -> &str {
        self.urls.get(self.index).map_or("", String::as_str)
    }

    /// Makes the tier due at `now` (a user's "reannounce"), unless an
    /// announce is in flight already.
    pub fn announce_now(&mut self, now: Instant) {
        if !self.is_busy() {
            self.next_at = self.next_at.min(now);
        }
    }

    /// Whether an announce of this tier is in flight.
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// When the tier next wants to announce; `None` while one is in flight
    /// (the transport then owns the timing).
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.is_busy()).then_some(self.next_at)
    }

    /// Whether the tier wants to announce at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|at| at <= now)
    }

    /// Starts an announce if the tier is due: the URL and the event to send
    /// (`started` until one got through, then `completed` if owed, else a
    /// periodic one). The tier is busy until [`Tier::succeeded`] or
    /// [`Tier::failed`].
    pub fn begin(&mut self, now: Instant) -> Option<(String, Event)> {
        if !self.is_due(now) {
            return None;
        }
        let event = if !self.started {
            Event::Started
        } else if self.completed_due {
            Event::Completed
        } else {
            Event::Empty
        };
        self.in_flight = Some(event);
        Some((self.current().to_owned(), event))
    }

    /// The announce in flight got an answer: its URL moves to the front of
    /// the tier, the event is done with, and the tier announces again after
    /// `interval` (at once if a `completed` is still owed). `tracker_id` is
    /// the one the reply carried, if any.
    pub fn succeeded(&mut self, now: Instant, interval: Duration, tracker_id: Option<String>) {
        match self.in_flight.take() {
            Some(Event::Started) => self.started = true,
            Some(Event::Completed) => self.completed_due = false,
            _ => {}
        }
        if self.index < self.urls.len() {
            let url = self.urls.remove(self.index);
            self.urls.insert(0, url);
        }
        self.index = 0;
        self.failed_rounds = 0;
        if tracker_id.is_some() {
            self.tracker_id = tracker_id;
        }
        self.next_at = if self.completed_due {
            now
        } else {
            now.checked_add(interval).unwrap_or(now)
        };
    }

    /// The announce in flight failed: the tier moves to its next URL, due
    /// at once, or after its last URL back to the first one, due after the
    /// back-off ([`FIRST_BACKOFF`] doubling up to [`MAX_BACKOFF`]).
    pub fn failed(&mut self, now: Instant) -> Failover {
        if self.in_flight.take() == Some(Event::Started) {
            // The retry is a `started` that carries what is left then.
            self.completed_due = false;
        }
        if self.index + 1 < self.urls.len() {
            self.index += 1;
            self.next_at = now;
            return Failover::NextTracker;
        }
        self.index = 0;
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        self.next_at = now.checked_add(self.backoff()).unwrap_or(now);
        Failover::RoundFailed
    }

    /// The wait after the current run of failed rounds.
    pub fn backoff(&self) -> Duration {
        let doublings = self.failed_rounds.saturating_sub(1).min(16);
        FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF)
    }

    /// The download completed: a tier that saw us start incomplete (or has
    /// that `started` in flight) is owed `completed`, due at once when idle.
    pub fn download_completed(&mut self, now: Instant) {
        if self.started || self.in_flight == Some(Event::Started) {
            self.completed_due = true;
            if !self.is_busy() {
                self.next_at = now;
            }
        }
    }

    /// What to tell this tier on exit: nothing if it never saw `started`,
    /// else `completed` if still owed, then `stopped`.
    pub fn exit_events(&self) -> Vec<Event> {
        match (self.started, self.completed_due) {
            (false, _) => Vec::new(),
            (true, false) => vec![Event::Stopped],
            (true, true) => vec![Event::Completed, Event::Stopped],
        }
    }

    /// The tracker id to send back to this tier's tracker.
    pub fn tracker_id(&self) -> Option<&str> {
        self.tracker_id.as_deref()
    }
}

/// Every tier of one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Tier>,
}

impl Tiers {
    /// The tiers for a torrent, all due at `now`: `by_hand` URLs first, each
    /// in its own tier in the given order, then the torrent's
    /// `announce_list` tiers, each shuffled with `rng`.
    ///
    /// Empty URLs, repeated URLs and tiers left empty are dropped; only the
    /// first [`MAX_TIERS`] tiers and [`MAX_TIER_URLS`] URLs of a tier are
    /// kept. For a torrent with only `announce`, pass `vec![vec![announce]]`.
    pub fn new(
        announce_list: Vec<Vec<String>>,
        by_hand: Vec<String>,
        rng: &mut Rng,
        now: Instant,
    ) -> Tiers {
        // A set, and a stop at MAX_TIERS: a hostile announce-list of
        // hundreds of thousands of URLs costs one pass, not a square.
        let mut seen: HashSet<String> = HashSet::new();
        let mut tiers: Vec<Tier> = Vec::new();
        let by_hand = by_hand.into_iter().map(|url| (vec![url], false));
        let listed = announce_list.into_iter().map(|tier| (tier, true));
        for (urls, shuffle) in by_hand.chain(listed) {
            if tiers.len() == MAX_TIERS {
                break;
            }
            let mut urls = keep_new(urls, &mut seen);
            if urls.is_empty() {
                continue;
            }
            if shuffle {
                rng.shuffle(&mut urls);
            }
            tiers.push(Tier::new(urls, now));
        }
        Tiers { tiers }
    }

    /// Tier number `index` (0 is the first).
    pub fn get(&self, index: usize) -> Option<&Tier> {
        self.tiers.get(index)
    }

    /// Tier number `index`, to begin an announce or report its outcome.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Tier> {
        self.tiers.get_mut(index)
    }

    /// Every tier, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Tier> {
        self.tiers.iter()
    }

    /// How many tiers there are.
    pub fn len(&self) -> usize {
        self.tiers.len()
    }

    /// Whether there are no trackers at all (a trackerless torrent).
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The tiers that want to announce at `now`, the longest-waiting first
    /// (ties in tier order), so a tier that keeps failing over to its next
    /// URL cannot starve the others of the loop's one blocking announce.
    pub fn due(&self, now: Instant) -> Vec<usize> {
        let mut due: Vec<(Instant, usize)> = self
            .tiers
            .iter()
            .enumerate()
            .filter_map(|(index, tier)| {
                tier.next_deadline()
                    .filter(|at| *at <= now)
                    .map(|at| (at, index))
            })
            .collect();
        due.sort();
        due.into_iter().map(|(_, index)| index).collect()
    }

    /// The earliest time an idle tier wants to announce.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.tiers.iter().filter_map(Tier::next_deadline).min()
    }

    /// The download completed: every tier that saw us start owes `completed`.
    pub fn download_completed(&mut self, now: Instant) {
        for tier in &mut self.tiers {
            tier.download_completed(now);
        }
    }
}

/// The first [`MAX_TIER_URLS`] URLs of `tier` that are not empty and not in
/// `seen`, recording them in `seen`. A torrent has a few dozen URLs at most
/// that count, so a list is enough.
fn keep_new(tier: Vec<String>, seen: &mut HashSet<String>) -> Vec<String> {
    let mut kept = Vec::new();
    for url in tier {
        if kept.len() == MAX_TIER_URLS {
            break;
        }
        if !url.is_empty() && seen.insert(url.clone()) {
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

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Tiers laid out exactly as given (no shuffle), all due at `t0`.
    fn fixed(tiers: &[&[&str]], t0: Instant) -> Tiers {
        Tiers {
            tiers: list(tiers).into_iter().map(|t| Tier::new(t, t0)).collect(),
        }
    }

    fn urls_of(tiers: &Tiers) -> Vec<Vec<String>> {
        tiers.iter().map(|tier| tier.urls().to_vec()).collect()
    }

    /// Tier `index` of `tiers`.
    fn tier(tiers: &mut Tiers, index: usize) -> &mut Tier {
        tiers.get_mut(index).unwrap()
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
            let tiers = Tiers::new(input.clone(), vec![], &mut Rng::new(seed), Instant::now());
            assert_eq!(tiers.len(), 3);
            for (got, given) in urls_of(&tiers).iter().zip(&input) {
                let mut sorted_got = got.clone();
                let mut sorted_given = given.clone();
                sorted_got.sort();
                sorted_given.sort();
                assert_eq!(sorted_got, sorted_given, "seed {seed}");
            }
            shuffled_somewhere |= urls_of(&tiers)[0] != big;
        }
        assert!(shuffled_somewhere, "twenty URLs never shuffled");
    }

    #[test]
    fn urls_by_hand_come_first_each_in_its_own_tier() {
        let tiers = Tiers::new(
            list(&[&["http://a/announce"]]),
            strings(&["udp://mine:1", "http://also-mine/announce"]),
            &mut Rng::new(1),
            Instant::now(),
        );
        assert_eq!(
            urls_of(&tiers),
            list(&[
                &["udp://mine:1"],
                &["http://also-mine/announce"],
                &["http://a/announce"]
            ])
        );
        assert_eq!(tiers.get(0).unwrap().current(), "udp://mine:1");
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
            Instant::now(),
        );
        assert_eq!(urls_of(&tiers), list(&[&["udp://b:1"], &["http://a/x"]]));
    }

    #[test]
    fn a_hostile_announce_list_is_capped() {
        let huge: Vec<Vec<String>> = (0..1000)
            .map(|t| (0..100).map(|u| format!("udp://t{t}-{u}:1")).collect())
            .collect();
        let tiers = Tiers::new(huge, vec![], &mut Rng::new(3), Instant::now());
        assert_eq!(tiers.len(), MAX_TIERS);
        assert!(tiers.iter().all(|t| t.urls().len() == MAX_TIER_URLS));
    }

    #[test]
    fn no_trackers_means_nothing_is_ever_due() {
        let t0 = Instant::now();
        let tiers = Tiers::new(vec![], vec![], &mut Rng::new(1), t0);
        assert!(tiers.is_empty());
        assert_eq!(tiers.next_deadline(), None);
        assert!(tiers.due(t0 + secs(3600)).is_empty());
    }

    #[test]
    fn every_tier_is_due_at_once_and_begins_with_started() {
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["udp://a:1"], &["http://b/announce"]], t0);
        assert_eq!(tiers.due(t0), vec![0, 1]);
        assert_eq!(
            tier(&mut tiers, 0).begin(t0),
            Some(("udp://a:1".to_owned(), Event::Started))
        );
        assert_eq!(
            tier(&mut tiers, 1).begin(t0),
            Some(("http://b/announce".to_owned(), Event::Started))
        );
        assert!(tiers.due(t0).is_empty(), "busy tiers are not due");
        assert_eq!(tiers.next_deadline(), None);
        assert_eq!(
            tier(&mut tiers, 0).begin(t0),
            None,
            "one announce at a time"
        );
    }

    #[test]
    fn a_silent_first_tier_does_not_hold_up_the_second() {
        // Tier 0's tracker never answers; tier 1 announces, gets its answer and
        // announces again on its own interval, all while tier 0 is in flight.
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["udp://silent:1"], &["http://ok/announce"]], t0);
        tier(&mut tiers, 0).begin(t0);
        tier(&mut tiers, 1).begin(t0);
        tier(&mut tiers, 1).succeeded(t0 + secs(1), secs(60), None);
        assert_eq!(tiers.next_deadline(), Some(t0 + secs(61)));
        assert_eq!(tiers.due(t0 + secs(61)), vec![1]);
        assert_eq!(
            tier(&mut tiers, 1).begin(t0 + secs(61)),
            Some(("http://ok/announce".to_owned(), Event::Empty))
        );
        // Tier 0 gives up at last: its back-off is its own.
        assert_eq!(
            tier(&mut tiers, 0).failed(t0 + secs(28)),
            Failover::RoundFailed
        );
        assert_eq!(tier(&mut tiers, 0).next_deadline(), Some(t0 + secs(43)));
        assert_eq!(tier(&mut tiers, 1).next_deadline(), None, "still in flight");
    }

    #[test]
    fn failure_walks_the_tier_then_backs_off_doubling_to_the_cap() {
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["a1", "a2"], &["b1"]], t0);
        let a = tier(&mut tiers, 0);
        let mut now = t0;
        let mut walked = Vec::new();
        let mut waits = Vec::new();
        for _ in 0..16 {
            let (url, _) = a.begin(now).unwrap();
            let failover = a.failed(now);
            walked.push((url, failover));
            let next = a.next_deadline().unwrap();
            if failover == Failover::RoundFailed {
                waits.push(next.duration_since(now).as_secs());
            }
            now = next;
        }
        use Failover::{NextTracker as Next, RoundFailed as Round};
        assert_eq!(
            walked[..4],
            [
                ("a1".to_owned(), Next),
                ("a2".to_owned(), Round),
                ("a1".to_owned(), Next),
                ("a2".to_owned(), Round)
            ]
        );
        assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1800]);
        // The other tier never moved.
        assert_eq!(tiers.get(1).unwrap().next_deadline(), Some(t0));
    }

    #[test]
    fn success_promotes_within_the_tier_and_resets_the_back_off() {
        // BEP 12's example: tracker1 fails, tracker2 answers.
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["t1", "t2", "t3"]], t0);
        let t = tier(&mut tiers, 0);
        t.begin(t0);
        assert_eq!(t.failed(t0), Failover::NextTracker);
        assert_eq!(t.begin(t0).unwrap().0, "t2");
        t.succeeded(t0, secs(1800), None);
        assert_eq!(t.urls(), strings(&["t2", "t1", "t3"]));
        assert_eq!(t.current(), "t2");
        assert_eq!(t.next_deadline(), Some(t0 + secs(1800)));

        // Later t2 and t1 fail and t3 answers: t3, t2, t1.
        let t1 = t0 + secs(1800);
        t.begin(t1);
        t.failed(t1);
        t.begin(t1);
        t.failed(t1);
        assert_eq!(t.begin(t1).unwrap().0, "t3");
        t.succeeded(t1, secs(900), None);
        assert_eq!(t.urls(), strings(&["t3", "t2", "t1"]));

        // A whole failed round, then success: the next failed round starts
        // again from the first back-off.
        for _ in 0..3 {
            let at = t.next_deadline().unwrap();
            t.begin(at);
            t.failed(at);
        }
        assert_eq!(t.backoff(), FIRST_BACKOFF);
        let at = t.next_deadline().unwrap();
        t.begin(at);
        t.succeeded(at, secs(60), None);
        assert_eq!(t.backoff(), FIRST_BACKOFF);
    }

    #[test]
    fn events_are_kept_per_tier() {
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["a"], &["b"], &["c"]], t0);
        // a's started gets through, b's fails, c never announced yet.
        tier(&mut tiers, 0).begin(t0);
        tier(&mut tiers, 0).succeeded(t0, secs(600), Some("id-a".into()));
        tier(&mut tiers, 1).begin(t0);
        tier(&mut tiers, 1).failed(t0);

        let done = t0 + secs(5);
        tiers.download_completed(done);
        // a owes completed at once; c, never asked yet, has waited longer.
        assert_eq!(tiers.due(done), vec![2, 0]);
        assert_eq!(
            tier(&mut tiers, 0).begin(done),
            Some(("a".to_owned(), Event::Completed))
        );
        assert_eq!(tiers.get(0).unwrap().tracker_id(), Some("id-a"));
        // b never saw us start: it starts (complete) after its back-off, and
        // is owed no `completed`.
        let retry = t0 + FIRST_BACKOFF;
        assert_eq!(
            tier(&mut tiers, 1).begin(retry),
            Some(("b".to_owned(), Event::Started))
        );
        tier(&mut tiers, 1).succeeded(retry, secs(600), None);
        assert_eq!(tiers.get(1).unwrap().exit_events(), [Event::Stopped]);
        assert_eq!(tiers.get(2).unwrap().exit_events(), []);

        // a's completed fails: still owed, along with stopped, on exit.
        tier(&mut tiers, 0).failed(done);
        assert_eq!(
            tiers.get(0).unwrap().exit_events(),
            [Event::Completed, Event::Stopped]
        );
        let again = tier(&mut tiers, 0).next_deadline().unwrap();
        tier(&mut tiers, 0).begin(again);
        tier(&mut tiers, 0).succeeded(again, secs(600), None);
        assert_eq!(tiers.get(0).unwrap().exit_events(), [Event::Stopped]);
    }

    #[test]
    fn completion_during_a_started_in_flight_owes_completed_if_it_lands() {
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["a"], &["b"]], t0);
        tier(&mut tiers, 0).begin(t0);
        tier(&mut tiers, 1).begin(t0);
        tiers.download_completed(t0 + secs(1));
        // a's started lands: completed is due at once, not after the interval.
        tier(&mut tiers, 0).succeeded(t0 + secs(2), secs(1800), None);
        assert_eq!(tier(&mut tiers, 0).next_deadline(), Some(t0 + secs(2)));
        assert_eq!(
            tier(&mut tiers, 0).begin(t0 + secs(2)).unwrap().1,
            Event::Completed
        );
        // b's started is lost: its retry is a started from a seed, nothing owed.
        tier(&mut tiers, 1).failed(t0 + secs(2));
        let retry = tiers.get(1).unwrap().next_deadline().unwrap();
        assert_eq!(tier(&mut tiers, 1).begin(retry).unwrap().1, Event::Started);
        tier(&mut tiers, 1).succeeded(retry, secs(1800), None);
        assert_eq!(tiers.get(1).unwrap().exit_events(), [Event::Stopped]);
    }

    #[test]
    fn due_tiers_come_longest_waiting_first() {
        let t0 = Instant::now();
        let mut tiers = fixed(&[&["a1", "a2"], &["b"], &["c"]], t0);
        // a1 fails at t0+5: a2 is due "now" (t0+5), after b and c that have
        // waited since t0.
        tier(&mut tiers, 0).begin(t0);
        tier(&mut tiers, 0).failed(t0 + secs(5));
        assert_eq!(tiers.due(t0 + secs(5)), vec![1, 2, 0]);
    }

    #[test]
    fn a_huge_announce_list_keeps_the_first_max_tiers_without_reading_the_rest() {
        // 200,000 one-URL tiers (a 10 MiB torrent holds about this many):
        // the walk stops at MAX_TIERS; a square-cost de-duplication would
        // not finish here.
        let list: Vec<Vec<String>> = (0..200_000)
            .map(|i| vec![format!("http://t{i}.example/announce")])
            .collect();
        let tiers = Tiers::new(list, Vec::new(), &mut Rng::new(1), Instant::now());
        assert_eq!(tiers.len(), MAX_TIERS);
    }
}
