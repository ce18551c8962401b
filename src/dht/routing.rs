//! The Kademlia routing table (BEP 5): up to 160 buckets of [`K`] nodes.
//!
//! Layer 0: pure (time is passed in). The table starts as one bucket
//! covering the whole id space; only the last bucket (the one whose range
//! holds our own id) is split when it overflows, so bucket `i` holds the
//! nodes whose id shares exactly `i` leading bits with ours and the last
//! bucket holds every node closer than that.
//!
//! A node is *good* when it has answered one of our queries, answered or
//! queried us within [`GOOD_INTERVAL`] and has not failed since, *bad* after [`BAD_FAILURES`]
//! failed queries in a row, *questionable* otherwise. A full bucket takes a
//! newcomer only in place of a bad node; otherwise the newcomer waits in a
//! small replacement cache and the table asks its owner to ping the
//! bucket's stalest questionable node, whose failure makes room. So a new
//! node never evicts a good one.
//!
//! Poisoning defences: at most one node per IP address in a bucket (on
//! loopback too: a local test network gives each node its own 127.x
//! address), nodes with our own id or port 0 are refused, a known id never
//! changes address, and a node that only queried us is not good until it
//! answers one of our queries.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::id::{NodeId, ID_BITS};
use super::krpc::CompactNode;

/// Nodes per bucket and nodes returned by a `find_node` (BEP 5: k = 8).
pub const K: usize = 8;

/// How long a node stays good after it last answered or queried us, and
/// how long a bucket may go unchanged before it is refreshed (BEP 5: 15
/// minutes).
pub const GOOD_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Failed queries in a row that make a node bad (BEP 5: "several"; two
/// tolerates one lost datagram).
pub const BAD_FAILURES: u8 = 2;

/// Newcomers kept per full bucket, waiting for a slot: enough to refill a
/// bucket after a few of its nodes die, small enough to stay cheap.
pub const MAX_REPLACEMENTS: usize = 8;

/// One node in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Its id and address.
    pub info: CompactNode,
    /// When it last answered or queried us.
    pub last_seen: Instant,
    /// Whether it ever answered one of our queries.
    pub answered: bool,
    /// Failed queries in a row.
    pub failures: u8,
}

impl Node {
    /// Good (BEP 5): it has answered one of our queries at some time, we
    /// heard from it (an answer or a query) within [`GOOD_INTERVAL`], and
    /// it has not failed since. A node that only ever queried us stays
    /// questionable until it answers a ping: anyone can send a query from
    /// a spoofed address.
    pub fn is_good(&self, now: Instant) -> bool {
        self.answered
            && self.failures == 0
            && now.saturating_duration_since(self.last_seen) < GOOD_INTERVAL
    }

    /// Bad: [`BAD_FAILURES`] failed queries in a row.
    pub fn is_bad(&self) -> bool {
        self.failures >= BAD_FAILURES
    }
}

/// How we heard from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// It sent us a query.
    Queried,
    /// It answered one of our queries.
    Answered,
}

/// What [`RoutingTable::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// A new node took a free slot (or a bad node's).
    Added,
    /// The node was already there; its state was refreshed.
    Updated,
    /// Its bucket is full of good or questionable nodes: it waits in the
    /// replacement cache, and `ping` (if any) should be pinged so a slot
    /// frees up if it is gone.
    Full {
        /// The bucket's stalest questionable node.
        ping: Option<CompactNode>,
    },
    /// Not taken: our own id, port 0, an id already known at another
    /// address, or an IP already in that bucket.
    Refused,
}

#[derive(Debug, Clone)]
struct Bucket {
    nodes: Vec<Node>,
    replacements: Vec<Node>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}

/// The routing table of the node with id `own`.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table: one bucket covering the whole space.
    pub fn new(own: NodeId, now: Instant) -> RoutingTable {
        RoutingTable {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Nodes in the table (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table has no node.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.nodes.is_empty())
    }

    /// Good nodes in the table.
    pub fn good_len(&self, now: Instant) -> usize {
        self.nodes().filter(|n| n.is_good(now)).count()
    }

    /// How many buckets the table has now.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Every node in the table.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// The node with id `id`, if in the table.
    pub fn get(&self, id: &NodeId) -> Option<&Node> {
        self.buckets
            .get(self.bucket_index(id))
            .and_then(|b| b.nodes.iter().find(|n| n.info.id == *id))
    }

    /// The bucket `id` falls in.
    pub fn bucket_index(&self, id: &NodeId) -> usize {
        let last = self.buckets.len().saturating_sub(1);
        self.own.common_prefix_len(id).min(last)
    }

    /// Offers a node we heard from directly (a query or an answer).
    pub fn insert(&mut self, info: CompactNode, contact: Contact, now: Instant) -> Insert {
        if info.id == self.own || info.addr.port() == 0 || info.addr.ip().is_unspecified() {
            return Insert::Refused;
        }
        loop {
            let index = self.bucket_index(&info.id);
            let can_split = index + 1 == self.buckets.len() && self.buckets.len() < ID_BITS;
            let Some(bucket) = self.buckets.get_mut(index) else {
                return Insert::Refused;
            };
            if let Some(node) = bucket.nodes.iter_mut().find(|n| n.info.id == info.id) {
                return refresh(node, &mut bucket.last_changed, info.addr, contact, now);
            }
            if bucket
                .nodes
                .iter()
                .any(|n| same_ip_rule(n.info.addr, info.addr))
            {
                return Insert::Refused;
            }
            let node = new_node(info, contact, now);
            if bucket.nodes.len() < K {
                bucket.nodes.push(node);
                bucket.last_changed = now;
                bucket.replacements.retain(|r| r.info.id != info.id);
                return Insert::Added;
            }
            if let Some(bad) = bucket.nodes.iter_mut().find(|n| n.is_bad()) {
                *bad = node;
                bucket.last_changed = now;
                return Insert::Added;
            }
            if can_split {
                self.split_last(now);
                continue;
            }
            return Insert::Full {
                ping: add_replacement(bucket, node, now),
            };
        }
    }

    /// A query to node `id` at `addr` got no answer: one more failure; a
    /// node that turns bad gives its slot to the freshest replacement.
    pub fn failed(&mut self, id: &NodeId, addr: SocketAddrV4, now: Instant) {
        let index = self.bucket_index(id);
        let Some(bucket) = self.buckets.get_mut(index) else {
            return;
        };
        bucket.replacements.retain(|r| r.info.id != *id);
        let Some(position) = bucket
            .nodes
            .iter()
            .position(|n| n.info.id == *id && n.info.addr == addr)
        else {
            return;
        };
        let Some(node) = bucket.nodes.get_mut(position) else {
            return;
        };
        node.failures = node.failures.saturating_add(1);
        if !node.is_bad() {
            return;
        }
        // Freshest replacement whose IP is not already in the bucket.
        let others: Vec<SocketAddrV4> = bucket
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != position)
            .map(|(_, n)| n.info.addr)
            .collect();
        let pick = (0..bucket.replacements.len()).rev().find(|&r| {
            bucket
                .replacements
                .get(r)
                .is_some_and(|rep| !others.iter().any(|a| same_ip_rule(*a, rep.info.addr)))
        });
        if let Some(r) = pick {
            let replacement = bucket.replacements.remove(r);
            if let Some(slot) = bucket.nodes.get_mut(position) {
                *slot = replacement;
                bucket.last_changed = now;
            }
        }
    }

    /// Up to `n` nodes closest to `target` by XOR distance, nearest first;
    /// bad nodes are left out.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<CompactNode> {
        let mut all: Vec<((u128, u32), CompactNode)> = self
            .nodes()
            .filter(|node| !node.is_bad())
            .map(|node| (distance_key(&node.info.id, target), node.info))
            .collect();
        all.sort_unstable_by_key(|(key, _)| *key);
        all.into_iter().take(n).map(|(_, info)| info).collect()
    }

    /// Up to `n` good nodes, for the saved state (the most recently seen
    /// first).
    pub fn good_nodes(&self, now: Instant, n: usize) -> Vec<CompactNode> {
        let mut good: Vec<&Node> = self.nodes().filter(|node| node.is_good(now)).collect();
        good.sort_by_key(|node| std::cmp::Reverse(node.last_seen));
        good.into_iter().take(n).map(|node| node.info).collect()
    }

    /// The questionable node heard from least recently, to ping (bad
    /// nodes are not pinged: they wait for a replacement).
    pub fn stalest_questionable(&self, now: Instant) -> Option<CompactNode> {
        self.nodes()
            .filter(|n| !n.is_bad() && !n.is_good(now))
            .min_by_key(|n| n.last_seen)
            .map(|n| n.info)
    }

    /// When the first node is (or becomes) questionable: from then on
    /// [`RoutingTable::stalest_questionable`] has one.
    pub fn next_questionable(&self) -> Option<Instant> {
        self.nodes()
            .filter(|n| !n.is_bad())
            .map(|n| {
                if n.failures > 0 {
                    n.last_seen
                } else {
                    n.last_seen + GOOD_INTERVAL
                }
            })
            .min()
    }

    /// When the next bucket becomes due for a refresh.
    pub fn next_refresh(&self) -> Option<Instant> {
        self.buckets
            .iter()
            .map(|b| b.last_changed + GOOD_INTERVAL)
            .min()
    }

    /// Buckets unchanged for [`GOOD_INTERVAL`], each with a random id in its
    /// range to look up; each is marked refreshed at `now`.
    pub fn take_refresh_due(&mut self, now: Instant, rng: &mut crate::rng::Rng) -> Vec<NodeId> {
        let own = self.own;
        let mut targets = Vec::new();
        for (index, bucket) in self.buckets.iter_mut().enumerate() {
            if bucket.last_changed + GOOD_INTERVAL <= now {
                bucket.last_changed = now;
                targets.push(own.random_at_prefix(index, rng));
            }
        }
        targets
    }

    fn split_last(&mut self, now: Instant) {
        let new_index = self.buckets.len();
        let own = self.own;
        let mut fresh = Bucket::new(now);
        if let Some(last) = self.buckets.last_mut() {
            let (stay, go): (Vec<Node>, Vec<Node>) = last
                .nodes
                .drain(..)
                .partition(|n| own.common_prefix_len(&n.info.id) < new_index);
            last.nodes = stay;
            fresh.nodes = go;
            let (stay, go): (Vec<Node>, Vec<Node>) = last
                .replacements
                .drain(..)
                .partition(|n| own.common_prefix_len(&n.info.id) < new_index);
            last.replacements = stay;
            fresh.replacements = go;
            fresh.last_changed = last.last_changed;
        }
        self.buckets.push(fresh);
    }
}

/// The XOR distance of `a` and `b` as two integers that order like
/// [`NodeId::distance`] (big-endian), cheaper to compute and compare when
/// sorting many nodes.
pub fn distance_key(a: &NodeId, b: &NodeId) -> (u128, u32) {
    let (a_high, a_low) = split(a);
    let (b_high, b_low) = split(b);
    (a_high ^ b_high, a_low ^ b_low)
}

fn split(id: &NodeId) -> (u128, u32) {
    let mut high = [0u8; 16];
    let mut low = [0u8; 4];
    let (h, l) = id.0.split_at(16);
    high.copy_from_slice(h);
    low.copy_from_slice(l);
    (u128::from_be_bytes(high), u32::from_be_bytes(low))
}

/// Whether two addresses count as the same IP for the one-per-bucket rule
/// (loopback too: local test networks give each node its own 127.x address).
fn same_ip_rule(a: SocketAddrV4, b: SocketAddrV4) -> bool {
    a.ip() == b.ip()
}

fn new_node(info: CompactNode, contact: Contact, now: Instant) -> Node {
    Node {
        info,
        last_seen: now,
        answered: contact == Contact::Answered,
        failures: 0,
    }
}

fn refresh(
    node: &mut Node,
    last_changed: &mut Instant,
    addr: SocketAddrV4,
    contact: Contact,
    now: Instant,
) -> Insert {
    if node.info.addr != addr {
        return Insert::Refused;
    }
    node.last_seen = now;
    node.failures = 0;
    if contact == Contact::Answered {
        node.answered = true;
        *last_changed = now;
    }
    Insert::Updated
}

/// Files `node` in the bucket's replacement cache and names the stalest
/// questionable node to ping.
fn add_replacement(bucket: &mut Bucket, node: Node, now: Instant) -> Option<CompactNode> {
    if let Some(known) = bucket
        .replacements
        .iter_mut()
        .find(|r| r.info.id == node.info.id)
    {
        if known.info.addr == node.info.addr {
            known.last_seen = now;
        }
    } else if !bucket
        .replacements
        .iter()
        .any(|r| same_ip_rule(r.info.addr, node.info.addr))
    {
        if bucket.replacements.len() >= MAX_REPLACEMENTS {
            bucket.replacements.remove(0);
        }
        bucket.replacements.push(node);
    }
    bucket
        .nodes
        .iter()
        .filter(|n| !n.is_good(now))
        .min_by_key(|n| n.last_seen)
        .map(|n| n.info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::net::Ipv4Addr;

    fn addr(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 6881)
    }

    /// An id sharing exactly `prefix` bits with `own`.
    fn id_at(own: &NodeId, prefix: usize, rng: &mut Rng) -> NodeId {
        own.random_at_prefix(prefix, rng)
    }

    fn node(id: NodeId, n: u32) -> CompactNode {
        CompactNode { id, addr: addr(n) }
    }

    fn table(seed: u64) -> (RoutingTable, Rng, Instant) {
        let mut rng = Rng::new(seed);
        let now = Instant::now();
        let own = NodeId::random(&mut rng);
        (RoutingTable::new(own, now), rng, now)
    }

    #[test]
    fn own_id_port_zero_and_duplicates_are_handled() {
        let (mut t, mut rng, now) = table(1);
        assert_eq!(
            t.insert(node(t.own, 1), Contact::Answered, now),
            Insert::Refused
        );
        let other = NodeId::random(&mut rng);
        let zero = CompactNode {
            id: other,
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 0),
        };
        assert_eq!(t.insert(zero, Contact::Answered, now), Insert::Refused);
        assert_eq!(
            t.insert(node(other, 1), Contact::Queried, now),
            Insert::Added
        );
        assert_eq!(
            t.insert(node(other, 1), Contact::Answered, now),
            Insert::Updated
        );
        assert_eq!(
            t.insert(node(other, 2), Contact::Answered, now),
            Insert::Refused,
            "id moved"
        );
        assert_eq!(t.len(), 1);
        assert!(t.get(&other).is_some_and(|n| n.answered && n.is_good(now)));
    }

    #[test]
    fn the_bucket_holding_our_id_splits_and_the_others_fill_to_k() {
        let (mut t, mut rng, now) = table(2);
        let own = t.own;
        let mut ip = 0;
        for prefix in 0..4 {
            for _ in 0..K + 3 {
                ip += 1;
                t.insert(
                    node(id_at(&own, prefix, &mut rng), ip),
                    Contact::Answered,
                    now,
                );
            }
        }
        assert!(
            t.bucket_count() >= 4,
            "split to {} buckets",
            t.bucket_count()
        );
        for prefix in 0..4 {
            let in_bucket = t
                .nodes()
                .filter(|n| own.common_prefix_len(&n.info.id) == prefix)
                .count();
            assert_eq!(in_bucket, K, "bucket {prefix}");
        }
        assert_eq!(t.len(), 4 * K);
    }

    #[test]
    fn one_node_per_ip_per_bucket() {
        let (mut t, mut rng, now) = table(3);
        let own = t.own;
        let a = id_at(&own, 0, &mut rng);
        let b = id_at(&own, 0, &mut rng);
        assert_eq!(t.insert(node(a, 7), Contact::Answered, now), Insert::Added);
        assert_eq!(
            t.insert(node(b, 7), Contact::Answered, now),
            Insert::Refused
        );
        let c = id_at(&own, 1, &mut rng);
        // The split puts prefix-1 ids in their own bucket: the IP may appear there once.
        for n in 100..100 + K as u32 {
            t.insert(node(id_at(&own, 0, &mut rng), n), Contact::Answered, now);
        }
        assert_eq!(t.insert(node(c, 7), Contact::Answered, now), Insert::Added);
    }

    #[test]
    fn loopback_nodes_get_one_slot_per_ip_per_bucket_too() {
        let (mut t, mut rng, now) = table(4);
        let own = t.own;
        let results: Vec<Insert> = (1..=3u16)
            .map(|port| {
                let info = CompactNode {
                    id: id_at(&own, 0, &mut rng),
                    addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6880 + port),
                };
                t.insert(info, Contact::Answered, now)
            })
            .collect();
        assert_eq!(results[0], Insert::Added);
        assert!(
            results[1..].iter().all(|r| *r != Insert::Added),
            "{results:?}"
        );
        let other_ip = CompactNode {
            id: id_at(&own, 0, &mut rng),
            addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 6881),
        };
        assert_eq!(t.insert(other_ip, Contact::Answered, now), Insert::Added);
    }

    #[test]
    fn a_node_that_only_queried_us_is_not_good_until_it_answers() {
        let (mut t, mut rng, now) = table(5);
        let own = t.own;
        let info = CompactNode {
            id: id_at(&own, 0, &mut rng),
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 6881),
        };
        assert_eq!(t.insert(info, Contact::Queried, now), Insert::Added);
        assert!(t.get(&info.id).is_some_and(|n| !n.is_good(now)));
        t.insert(info, Contact::Answered, now);
        assert!(t.get(&info.id).is_some_and(|n| n.is_good(now)));
    }

    fn fill_bucket_zero(t: &mut RoutingTable, rng: &mut Rng, now: Instant) -> Vec<CompactNode> {
        let own = t.own;
        // Fill the near side first so bucket 0 no longer splits.
        t.insert(node(id_at(&own, 5, rng), 999), Contact::Answered, now);
        let mut nodes = Vec::new();
        for n in 1..=K as u32 {
            let info = node(id_at(&own, 0, rng), n);
            t.insert(info, Contact::Answered, now);
            nodes.push(info);
        }
        for n in 0..K as u32 {
            t.insert(node(id_at(&own, 0, rng), 500 + n), Contact::Answered, now);
        }
        nodes
    }

    #[test]
    fn new_nodes_never_evict_good_ones() {
        let (mut t, mut rng, now) = table(5);
        let first = fill_bucket_zero(&mut t, &mut rng, now);
        let own = t.own;
        for n in 0..50 {
            let got = t.insert(
                node(id_at(&own, 0, &mut rng), 1000 + n),
                Contact::Answered,
                now,
            );
            assert_eq!(
                got,
                Insert::Full { ping: None },
                "all good: nothing to ping"
            );
        }
        for info in &first {
            assert!(t.get(&info.id).is_some(), "good node kept");
        }
    }

    #[test]
    fn a_full_bucket_pings_questionable_nodes_and_bad_ones_are_replaced() {
        let (mut t, mut rng, t0) = table(6);
        let first = fill_bucket_zero(&mut t, &mut rng, t0);
        let own = t.own;
        let later = t0 + GOOD_INTERVAL + Duration::from_secs(1);
        let newcomer = node(id_at(&own, 0, &mut rng), 2000);
        let Insert::Full { ping: Some(stale) } = t.insert(newcomer, Contact::Answered, later)
        else {
            panic!("a questionable node should be named for a ping");
        };
        assert!(first.contains(&stale));
        assert!(
            t.get(&newcomer.id).is_none(),
            "it waits: questionable is not bad"
        );
        t.failed(&stale.id, stale.addr, later);
        assert!(t.get(&stale.id).is_some(), "one failure is not bad yet");
        t.failed(&stale.id, stale.addr, later);
        assert!(t.get(&stale.id).is_none(), "bad node evicted");
        assert!(t.get(&newcomer.id).is_some(), "replacement took its slot");
    }

    #[test]
    fn a_bad_node_is_replaced_by_a_newcomer_directly() {
        let (mut t, mut rng, now) = table(7);
        let first = fill_bucket_zero(&mut t, &mut rng, now);
        let dead = first[3];
        t.failed(&dead.id, dead.addr, now);
        t.failed(&dead.id, dead.addr, now);
        // The replacement cache was filled by fill_bucket_zero: one took the slot.
        assert!(t.get(&dead.id).is_none());
        let victim = first[4];
        t.failed(&victim.id, victim.addr, now);
        // Empty the cache so the next bad node stays until a newcomer comes.
        t.buckets[0].replacements.clear();
        t.failed(&victim.id, victim.addr, now);
        assert!(t.get(&victim.id).is_some_and(|n| n.is_bad()));
        assert!(
            t.closest(&victim.id, 100).iter().all(|n| n.id != victim.id),
            "bad nodes are not handed out"
        );
        let own = t.own;
        let newcomer = node(id_at(&own, 0, &mut rng), 3000);
        assert_eq!(t.insert(newcomer, Contact::Queried, now), Insert::Added);
        assert!(t.get(&victim.id).is_none());
    }

    #[test]
    fn distance_key_orders_like_the_xor_distance() {
        let mut rng = Rng::new(11);
        let target = NodeId::random(&mut rng);
        let mut ids: Vec<NodeId> = (0..200).map(|_| NodeId::random(&mut rng)).collect();
        for prefix in [0, 100, 130, 150, 159] {
            ids.push(target.random_at_prefix(prefix, &mut rng));
        }
        for a in &ids {
            for b in ids.iter().take(20) {
                let by_key = distance_key(a, &target).cmp(&distance_key(b, &target));
                assert_eq!(by_key, a.distance(&target).cmp(&b.distance(&target)));
            }
        }
    }

    #[test]
    fn closest_sorts_by_xor_distance() {
        let (mut t, mut rng, now) = table(8);
        for n in 0..100 {
            t.insert(node(NodeId::random(&mut rng), n), Contact::Answered, now);
        }
        let target = NodeId::random(&mut rng);
        let got = t.closest(&target, K);
        assert_eq!(got.len(), K);
        let mut all: Vec<CompactNode> = t.nodes().map(|n| n.info).collect();
        all.sort_by_key(|n| n.id.distance(&target));
        assert_eq!(got, all[..K].to_vec());
    }

    #[test]
    fn unchanged_buckets_come_due_for_refresh_after_fifteen_minutes() {
        let (mut t, mut rng, t0) = table(9);
        let own = t.own;
        for n in 0..40 {
            t.insert(node(NodeId::random(&mut rng), n), Contact::Answered, t0);
        }
        assert_eq!(t.next_refresh(), Some(t0 + GOOD_INTERVAL));
        assert!(t
            .take_refresh_due(t0 + GOOD_INTERVAL - Duration::from_secs(1), &mut rng)
            .is_empty());
        let due = t0 + GOOD_INTERVAL;
        let targets = t.take_refresh_due(due, &mut rng);
        assert_eq!(targets.len(), t.bucket_count());
        for (index, target) in targets.iter().enumerate() {
            assert_eq!(
                t.bucket_index(target),
                index,
                "the target falls in its bucket"
            );
        }
        let _ = own;
        assert!(t.take_refresh_due(due, &mut rng).is_empty(), "idempotent");
        assert_eq!(t.next_refresh(), Some(due + GOOD_INTERVAL));
    }

    #[test]
    fn good_nodes_are_the_saved_ones() {
        let (mut t, mut rng, t0) = table(10);
        for n in 0..20 {
            t.insert(node(NodeId::random(&mut rng), n), Contact::Answered, t0);
        }
        let later = t0 + GOOD_INTERVAL;
        let fresh = node(t.own.random_at_prefix(30, &mut rng), 100);
        assert_eq!(t.insert(fresh, Contact::Answered, later), Insert::Added);
        assert_eq!(t.good_nodes(later, 10), vec![fresh]);
        assert_eq!(t.good_len(later), 1);
        assert_eq!(t.next_questionable(), Some(t0 + GOOD_INTERVAL));
        let stale = t.stalest_questionable(later).expect("a questionable node");
        assert_ne!(stale, fresh);
        assert_eq!(t.stalest_questionable(t0), None, "all good at first");
        assert_eq!(t.good_nodes(t0, 5).len(), 5);
    }
}
