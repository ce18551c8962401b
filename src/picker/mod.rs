//! The piece picker: which piece to start next from a given peer
//! (BEP 3 leaves the choice to the client; rarest-first is the classic).
//!
//! Layer 0: pure. It keeps, for each piece, how many connected peers have it
//! (its *availability*), updated incrementally: a HAVE adds one, a BITFIELD
//! adds a peer's whole set, a disconnect takes it away.
//!
//! # Rarest first without scanning every piece (libtorrent's buckets)
//!
//! The *pickable* pieces (every piece but those we removed after verifying
//! them) are kept in one flat list ordered by availability. The list is cut
//! into *buckets*, one per availability level, and each piece knows its
//! position in the list:
//!
//! ```text
//! availability   0      1          2              3
//! list         [ 7 | 2  9  4 | 0  5  8  1  3 | 6 ]
//! bucket start   0   2         5               10   (one past the end: 11)
//! ```
//!
//! - A HAVE raises one piece by one level: swap it with the last piece of
//!   its bucket and move that bucket's end down by one, so it is now the
//!   first piece of the next bucket. O(1), and the order stays sorted.
//! - A BITFIELD, HAVE_ALL or disconnect changes many pieces at once: it only
//!   updates the counts and marks the order *dirty*; the next pick rebuilds
//!   it once (a counting sort, O(pieces + levels)) and shuffles every bucket.
//! - A pick walks the buckets from availability 1 up (a piece at 0 is one no
//!   connected peer has) and returns the first piece the peer has and the
//!   caller wants. Within a bucket it starts at a random position and wraps
//!   around, so equally rare pieces are chosen at random (every candidate
//!   can be chosen; with the shuffle on rebuild the choice is close to
//!   uniform) and leechers fetching from one seeder spread over different
//!   pieces and can trade with each other.
//!
//! A pick costs a few probes when the peer has a fair share of the rare
//! pieces. It is O(pieces) only when the peer has none of the rarer
//! pieces, or when the `wanted` filter rejects most of them: that is why
//! verified pieces should leave the list with [`Picker::remove_piece`].
//!
//! # Who calls what
//!
//! | event | call |
//! | --- | --- |
//! | HAVE (a new bit) | [`Picker::add_piece`] |
//! | BITFIELD, HAVE_ALL | [`Picker::remove_peer`] (its old set) then [`Picker::add_peer`] |
//! | a peer disconnects | [`Picker::remove_peer`] |
//! | a piece verifies (download, resume or re-check) | [`Picker::remove_piece`] |
//! | a piece turns out bad after all (failed hash of a removed piece, re-check) | [`Picker::restore_piece`] |
//!
//! The `wanted` filter given to [`Picker::pick`] stays the safety net: it
//! must still reject verified pieces and pieces in progress. Pieces in
//! progress are finished first by the caller (see [`mod@crate::partial_pieces`]);
//! the picker only chooses new pieces.

use std::cell::RefCell;

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
    /// when every peer starts from the same seeder). A pick scans every
    /// piece the peer has: O(pieces).
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

/// Availability of every piece among connected peers, and the pickable
/// pieces in rarest-first order.
#[derive(Debug, Clone)]
pub struct Picker {
    /// How many connected peers have each piece.
    availability: Vec<u32>,
    /// Pieces taken out of the pickable set (verified).
    removed: Bitfield,
    /// The lowest piece not removed (where a sequential pick starts).
    first_unremoved: u32,
    strategy: Strategy,
    /// The bucket order. It sits in a `RefCell` because a pick (which only
    /// reads availability, so takes `&self`) may rebuild a dirty order
    /// first. Borrowed mutably only inside `pick` before the walk and in
    /// `&mut self` methods (through `get_mut`, which cannot fail).
    order: RefCell<Order>,
}

/// Marks a piece that is not in the list (removed).
const NOT_LISTED: u32 = u32::MAX;

/// The pickable pieces sorted by availability, cut into buckets.
#[derive(Debug, Clone)]
struct Order {
    /// Pickable pieces, by availability (random order within a level).
    list: Vec<u32>,
    /// Where each piece sits in `list`, or [`NOT_LISTED`].
    position: Vec<u32>,
    /// Bucket `a` (pieces of availability `a`) is
    /// `list[starts[a]..starts[a + 1]]`; the last entry is `list.len()`.
    starts: Vec<usize>,
    /// Counts changed wholesale: rebuild before the next walk. While dirty,
    /// `list`, `position` and `starts` are stale and left alone.
    dirty: bool,
}

impl Picker {
    /// A picker for `piece_count` pieces, none available yet.
    pub fn new(piece_count: u32, strategy: Strategy) -> Picker {
        let len = usize::try_from(piece_count).unwrap_or(0);
        Picker {
            availability: vec![0; len],
            removed: Bitfield::new(piece_count),
            first_unremoved: 0,
            strategy,
            order: RefCell::new(Order {
                list: Vec::new(),
                position: vec![NOT_LISTED; len],
                starts: vec![0, 0],
                dirty: true,
            }),
        }
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.slot(piece).map_or(0, |&n| n)
    }

    /// Whether `piece` was taken out of picking ([`Picker::remove_piece`]).
    pub fn is_removed(&self, piece: u32) -> bool {
        self.removed.has(piece)
    }

    /// A peer announced `piece` (HAVE): O(1), the order stays sorted.
    pub fn add_piece(&mut self, piece: u32) {
        let Some(n) = self.slot_mut(piece) else {
            return;
        };
        let old = *n;
        *n = old.saturating_add(1);
        if *n != old {
            self.order.get_mut().raise(piece, old);
        }
    }

    /// A peer with these pieces connected or sent its BITFIELD (or
    /// HAVE_ALL). O(pieces); the order is rebuilt at the next pick.
    pub fn add_peer(&mut self, has: &Bitfield) {
        let mut changed = false;
        for piece in has.iter_ones() {
            if let Some(n) = self.slot_mut(piece) {
                *n = n.saturating_add(1);
                changed = true;
            }
        }
        self.order.get_mut().dirty |= changed;
    }

    /// A peer with these pieces went away. O(pieces); the order is rebuilt
    /// at the next pick.
    pub fn remove_peer(&mut self, has: &Bitfield) {
        let mut changed = false;
        for piece in has.iter_ones() {
            if let Some(n) = self.slot_mut(piece).filter(|n| **n > 0) {
                *n -= 1;
                changed = true;
            }
        }
        self.order.get_mut().dirty |= changed;
    }

    /// We verified `piece`: it will never be picked again (until
    /// [`Picker::restore_piece`]). Its availability is still counted.
    /// O(availability levels). Does nothing if already removed.
    pub fn remove_piece(&mut self, piece: u32) {
        if !self.removed.set(piece) {
            return;
        }
        let level = self.availability(piece);
        self.order.get_mut().remove(piece, level);
        while self.removed.has(self.first_unremoved) {
            self.first_unremoved += 1;
        }
    }

    /// `piece` is wanted again after [`Picker::remove_piece`] (it failed a
    /// hash check or a re-check after all). O(availability levels). Does
    /// nothing if it was not removed.
    pub fn restore_piece(&mut self, piece: u32) {
        if !self.removed.clear(piece) {
            return;
        }
        let level = self.availability(piece);
        self.order.get_mut().insert(piece, level);
        self.first_unremoved = self.first_unremoved.min(piece);
    }

    /// The piece to start next from a peer that has `peer_has`, among those
    /// for which `wanted` is true (the caller's filter: not verified, not in
    /// progress). A removed piece, or one no connected peer has
    /// (availability 0), is never picked.
    pub fn pick(
        &self,
        peer_has: &Bitfield,
        wanted: impl Fn(u32) -> bool,
        rng: &mut Rng,
    ) -> Option<u32> {
        let candidate = |p: u32| peer_has.has(p) && wanted(p);
        match self.strategy {
            Strategy::RarestFirst => self.pick_rarest(candidate, rng),
            Strategy::Sequential => (self.first_unremoved..peer_has.len())
                .find(|&p| self.is_pickable(p) && candidate(p)),
            Strategy::Random => {
                let candidates = peer_has
                    .iter_ones()
                    .filter(|&p| self.is_pickable(p) && wanted(p));
                // Reservoir sampling: the k-th candidate replaces the choice with probability 1/k.
                let mut choice = None;
                for (seen, piece) in candidates.enumerate() {
                    if rng.below(seen + 1) == 0 {
                        choice = Some(piece);
                    }
                }
                choice
            }
        }
    }

    /// Walks the buckets from availability 1 up; within each, from a random
    /// start, wrapping around.
    fn pick_rarest(&self, candidate: impl Fn(u32) -> bool, rng: &mut Rng) -> Option<u32> {
        if let Ok(mut order) = self.order.try_borrow_mut() {
            if order.dirty {
                order.rebuild(&self.availability, &self.removed, rng);
            }
        }
        let order = self.order.try_borrow().ok().filter(|o| !o.dirty)?;
        for level in 1..order.starts.len().saturating_sub(1) {
            let bucket = order.bucket(level);
            if bucket.is_empty() {
                continue;
            }
            let (head, tail) = bucket.split_at(rng.below(bucket.len()));
            let found = tail.iter().chain(head).copied().find(|&p| candidate(p));
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Not removed, and some connected peer has it.
    fn is_pickable(&self, piece: u32) -> bool {
        !self.removed.has(piece) && self.availability(piece) > 0
    }

    fn slot(&self, piece: u32) -> Option<&u32> {
        self.availability.get(usize::try_from(piece).ok()?)
    }

    fn slot_mut(&mut self, piece: u32) -> Option<&mut u32> {
        self.availability.get_mut(usize::try_from(piece).ok()?)
    }
}

impl Order {
    /// The pieces of availability `level` (empty past the last level).
    fn bucket(&self, level: usize) -> &[u32] {
        let start = self.starts.get(level).copied().unwrap_or(0);
        let end = self.starts.get(level + 1).copied().unwrap_or(start);
        self.list.get(start..end).unwrap_or(&[])
    }

    /// Counting sort of the pickable pieces by availability, each bucket
    /// shuffled: O(pieces + levels).
    fn rebuild(&mut self, availability: &[u32], removed: &Bitfield, rng: &mut Rng) {
        let level = |a: u32| usize::try_from(a).unwrap_or(usize::MAX);
        let pickable = || {
            (0u32..)
                .zip(availability)
                .filter(|&(piece, _)| !removed.has(piece))
        };
        let levels = pickable()
            .map(|(_, &a)| level(a))
            .max()
            .map_or(1, |m| m + 1);
        // starts[a + 1] counts level a, then becomes its end after the prefix sum.
        self.starts = vec![0; levels + 1];
        for (_, &a) in pickable() {
            if let Some(count) = self.starts.get_mut(level(a) + 1) {
                *count += 1;
            }
        }
        for a in 1..self.starts.len() {
            self.starts[a] += self.starts[a - 1];
        }
        let mut next = self.starts.clone();
        self.list.clear();
        self.list.resize(self.starts[levels], NOT_LISTED);
        for (piece, &a) in pickable() {
            if let Some(at) = next.get_mut(level(a)) {
                if let Some(slot) = self.list.get_mut(*at) {
                    *slot = piece;
                }
                *at += 1;
            }
        }
        for a in 0..levels {
            let (start, end) = (self.starts[a], self.starts[a + 1]);
            rng.shuffle(&mut self.list[start..end]);
        }
        self.position.fill(NOT_LISTED);
        for (at, &piece) in (0u32..).zip(&self.list) {
            if let Some(slot) = usize::try_from(piece)
                .ok()
                .and_then(|p| self.position.get_mut(p))
            {
                *slot = at;
            }
        }
        self.dirty = false;
    }

    /// `piece` went from availability `from` to `from + 1`: swap it with the
    /// last piece of its bucket and move the bucket's end over it.
    fn raise(&mut self, piece: u32, from: u32) {
        let Some(at) = self.listed_at(piece) else {
            return;
        };
        let Ok(level) = usize::try_from(from) else {
            return;
        };
        while self.starts.len() < level + 3 {
            self.starts.push(self.list.len()); // an empty bucket above the top
        }
        let last = self.starts[level + 1] - 1;
        self.swap(at, last);
        self.starts[level + 1] = last;
    }

    /// `piece` left the pickable set; it had availability `level`. It
    /// bubbles to the end of the list one bucket at a time, then is popped.
    fn remove(&mut self, piece: u32, level: u32) {
        let (Some(mut at), Ok(level)) = (self.listed_at(piece), usize::try_from(level)) else {
            return;
        };
        if level + 1 >= self.starts.len() {
            return; // not in a bucket: cannot happen while counts and order agree
        }
        for end in self.starts.iter_mut().skip(level + 1) {
            *end -= 1;
            let last = *end;
            swap_listed(&mut self.list, &mut self.position, at, last);
            at = last;
        }
        self.list.pop();
        if let Some(slot) = self.slot_mut(piece) {
            *slot = NOT_LISTED;
        }
    }

    /// `piece`, of availability `level`, is pickable again: push it at the
    /// end and bubble it down to the first bucket boundary of its level.
    fn insert(&mut self, piece: u32, level: u32) {
        if self.dirty || self.listed_at(piece).is_some() {
            return;
        }
        let Ok(level) = usize::try_from(level) else {
            return;
        };
        while self.starts.len() < level + 2 {
            self.starts.push(self.list.len());
        }
        let mut at = self.list.len();
        self.list.push(piece);
        if let Some(slot) = self.slot_mut(piece) {
            *slot = u32::try_from(at).unwrap_or(NOT_LISTED);
        }
        // From the top bucket down: the piece is the last of bucket b after
        // its start moves up by one, then swaps with that bucket's first.
        for start in self.starts.iter_mut().skip(level + 1).rev() {
            let first = *start;
            swap_listed(&mut self.list, &mut self.position, at, first);
            at = first;
            *start += 1;
        }
    }

    /// Where `piece` sits in the list, if the order is current and lists it.
    fn listed_at(&self, piece: u32) -> Option<usize> {
        if self.dirty {
            return None;
        }
        let at = *self.position.get(usize::try_from(piece).ok()?)?;
        if at == NOT_LISTED {
            return None;
        }
        usize::try_from(at).ok()
    }

    fn swap(&mut self, a: usize, b: usize) {
        swap_listed(&mut self.list, &mut self.position, a, b);
    }

    fn slot_mut(&mut self, piece: u32) -> Option<&mut u32> {
        self.position.get_mut(usize::try_from(piece).ok()?)
    }
}

/// Swaps list entries `a` and `b` and updates both pieces' positions.
fn swap_listed(list: &mut [u32], position: &mut [u32], a: usize, b: usize) {
    if a == b {
        return;
    }
    list.swap(a, b);
    for at in [a, b] {
        let Some(&piece) = list.get(at) else {
            continue;
        };
        if let Some(slot) = usize::try_from(piece)
            .ok()
            .and_then(|p| position.get_mut(p))
        {
            *slot = u32::try_from(at).unwrap_or(NOT_LISTED);
        }
    }
}

#[cfg(test)]
mod tests;
