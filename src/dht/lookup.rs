//! One iterative Kademlia lookup (BEP 5): `find_node` for an id, or
//! `get_peers` for an info-hash.
//!
//! Layer 0: pure; it does not send anything or keep time. The node asks it
//! whom to query next ([`Lookup::next_queries`]) and tells it about answers
//! and failures (timeouts are the node's pending-query deadlines). The
//! candidates are kept sorted by XOR distance to the target, at most
//! [`MAX_CANDIDATES`] of them; at most [`ALPHA`] queries are in flight, only
//! to nodes among the [`K`] closest live candidates; the lookup is done
//! when those `K` have all answered (or there is no one left to ask, or
//! [`MAX_QUERIES`] were sent). A `get_peers` lookup also collects the peers
//! in `values` (deduplicated) and the responders' tokens, for the
//! `announce_peer` round at its end.

use std::collections::HashSet;
use std::net::SocketAddrV4;

use super::id::NodeId;
use super::krpc::{CompactNode, InfoHash, MAX_TOKEN_LEN};
use super::routing::{distance_key, K};

/// Queries in flight per lookup (Kademlia's alpha, BEP 5 implementations
/// use 3).
pub const ALPHA: usize = 3;

/// Candidates remembered: three buckets' worth leaves room for nodes that
/// fail without losing the ones that may matter.
pub const MAX_CANDIDATES: usize = 3 * K;

/// Most queries one lookup sends. Each answer from the k closest known
/// nodes roughly halves the distance left, so on a network of 10 million
/// nodes (about 21 bits of depth beyond a bucket) a lookup needs some 3
/// rounds of alpha before its final k; with failures that is 20-40
/// queries. 64 bounds the traffic a lookup among unresponsive or hostile
/// nodes can cost.
pub const MAX_QUERIES: usize = 64;

/// Distinct peers remembered per lookup to deduplicate `values`: more than
/// a torrent's peer list takes from one source.
pub const MAX_LOOKUP_PEERS: usize = 1000;

/// What a lookup looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node`: the nodes closest to an id (bootstrap, refresh).
    FindNode,
    /// `get_peers` for a torrent, then `announce_peer` with this TCP port
    /// if there is one.
    GetPeers {
        /// The torrent.
        info_hash: InfoHash,
        /// Our TCP port to announce, or `None` to only look.
        announce_port: Option<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Answered { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    node: CompactNode,
    /// Its distance to the target ([`distance_key`]).
    distance: (u128, u32),
    state: State,
}

/// A running lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: NodeId,
    own: NodeId,
    kind: LookupKind,
    candidates: Vec<Candidate>,
    queries: usize,
    peers: HashSet<SocketAddrV4>,
}

impl Lookup {
    /// A lookup of `target` started from `seeds` (our table's closest
    /// nodes); `own` is never queried.
    pub fn new(target: NodeId, own: NodeId, kind: LookupKind, seeds: &[CompactNode]) -> Lookup {
        let mut lookup = Lookup {
            target,
            own,
            kind,
            candidates: Vec::new(),
            queries: 0,
            peers: HashSet::new(),
        };
        lookup.add_candidates(seeds);
        lookup
    }

    /// The id looked for.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// What it looks for.
    pub fn kind(&self) -> LookupKind {
        self.kind
    }

    /// Queries sent so far.
    pub fn queries(&self) -> usize {
        self.queries
    }

    /// Distinct peers found so far.
    pub fn peers_found(&self) -> usize {
        self.peers.len()
    }

    /// Queries sent and not yet answered or failed.
    pub fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.state == State::InFlight)
            .count()
    }

    /// Adds nodes named in a response (or seeds): new ids at new
    /// addresses only, never our own id; the farthest are dropped beyond
    /// [`MAX_CANDIDATES`] (failed ones first, never one with a query in
    /// flight).
    pub fn add_candidates(&mut self, nodes: &[CompactNode]) {
        for node in nodes {
            let known = self
                .candidates
                .iter()
                .any(|c| c.node.id == node.id || c.node.addr == node.addr);
            if known
                || node.id == self.own
                || node.addr.port() == 0
                || node.addr.ip().is_unspecified()
            {
                continue;
            }
            let distance = distance_key(&node.id, &self.target);
            let at = self.candidates.partition_point(|c| c.distance < distance);
            self.candidates.insert(
                at,
                Candidate {
                    node: *node,
                    distance,
                    state: State::Fresh,
                },
            );
        }
        while self.candidates.len() > MAX_CANDIDATES {
            // Failed nodes go first (the farthest of them), then the
            // farthest not in flight.
            let failed = self
                .candidates
                .iter()
                .rposition(|c| c.state == State::Failed);
            let Some(drop) = failed.or_else(|| {
                self.candidates
                    .iter()
                    .rposition(|c| c.state != State::InFlight)
            }) else {
                break;
            };
            self.candidates.remove(drop);
        }
    }

    /// The nodes to query now (marked in flight): the closest not yet asked
    /// among the `K` closest live candidates, up to [`ALPHA`] in flight and
    /// [`MAX_QUERIES`] in all.
    pub fn next_queries(&mut self) -> Vec<CompactNode> {
        let mut out = Vec::new();
        while self.in_flight() < ALPHA && self.queries < MAX_QUERIES {
            let Some(next) = self.next_fresh() else {
                break;
            };
            if let Some(candidate) = self.candidates.get_mut(next) {
                candidate.state = State::InFlight;
                out.push(candidate.node);
                self.queries += 1;
            }
        }
        out
    }

    /// The node at `addr` answered: its `nodes` join the candidates, and
    /// the peers in `values` not seen before in this lookup are returned.
    pub fn on_response(
        &mut self,
        addr: SocketAddrV4,
        nodes: &[CompactNode],
        values: &[SocketAddrV4],
        token: Option<&[u8]>,
    ) -> Vec<SocketAddrV4> {
        if let Some(candidate) = self.candidates.iter_mut().find(|c| c.node.addr == addr) {
            let token = token
                .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
                .map(<[u8]>::to_vec);
            candidate.state = State::Answered { token };
        }
        self.add_candidates(nodes);
        let mut new_peers = Vec::new();
        if matches!(self.kind, LookupKind::GetPeers { .. }) {
            for peer in values {
                if peer.port() != 0
                    && self.peers.len() < MAX_LOOKUP_PEERS
                    && self.peers.insert(*peer)
                {
                    new_peers.push(*peer);
                }
            }
        }
        new_peers
    }

    /// The query to `addr` failed (timeout, error, or a different id
    /// answered).
    pub fn on_failure(&mut self, addr: SocketAddrV4) {
        if let Some(candidate) = self.candidates.iter_mut().find(|c| c.node.addr == addr) {
            candidate.state = State::Failed;
        }
    }

    /// Done: nothing in flight and no one left worth asking.
    pub fn is_done(&self) -> bool {
        self.in_flight() == 0 && (self.queries >= MAX_QUERIES || self.next_fresh().is_none())
    }

    /// The `K` closest nodes that answered, nearest first.
    pub fn closest_answered(&self) -> Vec<CompactNode> {
        self.candidates
            .iter()
            .filter(|c| matches!(c.state, State::Answered { .. }))
            .take(K)
            .map(|c| c.node)
            .collect()
    }

    /// The `K` closest nodes that gave a token, with it: where to send
    /// `announce_peer`.
    pub fn announce_targets(&self) -> Vec<(CompactNode, Vec<u8>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                State::Answered { token: Some(token) } => Some((c.node, token.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// Index of the closest candidate never asked among the `K` closest
    /// that have not failed.
    fn next_fresh(&self) -> Option<usize> {
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state != State::Failed)
            .take(K)
            .find(|(_, c)| c.state == State::Fresh)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::net::Ipv4Addr;

    fn addr(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 6881)
    }

    fn nodes(rng: &mut Rng, count: u32, first_ip: u32) -> Vec<CompactNode> {
        (0..count)
            .map(|n| CompactNode {
                id: NodeId::random(rng),
                addr: addr(first_ip + n),
            })
            .collect()
    }

    #[test]
    fn at_most_alpha_queries_fly_closest_first() {
        let mut rng = Rng::new(1);
        let target = NodeId::random(&mut rng);
        let seeds = nodes(&mut rng, 10, 1);
        let mut lookup = Lookup::new(
            target,
            NodeId::random(&mut rng),
            LookupKind::FindNode,
            &seeds,
        );
        let first = lookup.next_queries();
        assert_eq!(first.len(), ALPHA);
        let mut sorted = seeds.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        assert_eq!(first, sorted[..ALPHA].to_vec());
        assert!(lookup.next_queries().is_empty(), "alpha in flight");
        lookup.on_failure(first[0].addr);
        assert_eq!(lookup.next_queries(), vec![sorted[ALPHA]]);
    }

    #[test]
    fn finishes_when_the_k_closest_have_answered() {
        let mut rng = Rng::new(2);
        let target = NodeId::random(&mut rng);
        let seeds = nodes(&mut rng, 20, 1);
        let mut lookup = Lookup::new(
            target,
            NodeId::random(&mut rng),
            LookupKind::FindNode,
            &seeds,
        );
        let mut answered = 0;
        while !lookup.is_done() {
            let batch = lookup.next_queries();
            assert!(!batch.is_empty());
            for node in batch {
                lookup.on_response(node.addr, &[], &[], None);
                answered += 1;
            }
        }
        assert_eq!(answered, K, "only the k closest are asked");
        let mut sorted = seeds.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        assert_eq!(lookup.closest_answered(), sorted[..K].to_vec());
    }

    #[test]
    fn candidates_are_deduplicated_and_bounded_and_own_id_skipped() {
        let mut rng = Rng::new(3);
        let own = NodeId::random(&mut rng);
        let target = NodeId::random(&mut rng);
        let mut lookup = Lookup::new(target, own, LookupKind::FindNode, &[]);
        assert!(lookup.is_done(), "nothing to ask");
        let many = nodes(&mut rng, 100, 1);
        lookup.add_candidates(&many);
        lookup.add_candidates(&many);
        let same_addr = CompactNode {
            id: NodeId::random(&mut rng),
            addr: many[0].addr,
        };
        let me = CompactNode {
            id: own,
            addr: addr(5000),
        };
        lookup.add_candidates(&[same_addr, me]);
        assert_eq!(lookup.candidates.len(), MAX_CANDIDATES);
        assert!(lookup
            .candidates
            .iter()
            .all(|c| c.node.id != own && c.node != same_addr));
        let mut sorted = many.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        let kept: Vec<CompactNode> = lookup.candidates.iter().map(|c| c.node).collect();
        assert_eq!(
            kept,
            sorted[..MAX_CANDIDATES].to_vec(),
            "the closest are kept, in order"
        );
    }

    #[test]
    fn the_query_budget_ends_a_lookup() {
        let mut rng = Rng::new(4);
        let target = NodeId::random(&mut rng);
        let mut lookup = Lookup::new(
            target,
            NodeId::random(&mut rng),
            LookupKind::FindNode,
            &nodes(&mut rng, 8, 1),
        );
        let mut ip = 100;
        // Every node fails, and every failure is replaced by new names.
        while !lookup.is_done() {
            for node in lookup.next_queries() {
                lookup.on_failure(node.addr);
                lookup.add_candidates(&nodes(&mut rng, 2, ip));
                ip += 2;
            }
        }
        assert_eq!(lookup.queries(), MAX_QUERIES);
    }

    #[test]
    fn get_peers_collects_unique_peers_and_tokens() {
        let mut rng = Rng::new(5);
        let info_hash = [7u8; 20];
        let seeds = nodes(&mut rng, 3, 1);
        let kind = LookupKind::GetPeers {
            info_hash,
            announce_port: Some(6881),
        };
        let mut lookup = Lookup::new(NodeId(info_hash), NodeId::random(&mut rng), kind, &seeds);
        let batch = lookup.next_queries();
        let peer = addr(900);
        assert_eq!(
            lookup.on_response(batch[0].addr, &[], &[peer, peer], Some(b"tok")),
            vec![peer]
        );
        assert!(
            lookup
                .on_response(batch[1].addr, &[], &[peer], None)
                .is_empty(),
            "seen already"
        );
        lookup.on_response(batch[2].addr, &[], &[], Some(&[0u8; MAX_TOKEN_LEN + 1]));
        assert_eq!(lookup.peers_found(), 1);
        assert_eq!(lookup.announce_targets(), vec![(batch[0], b"tok".to_vec())]);
        assert!(lookup.is_done());
    }

    #[test]
    fn an_answer_from_an_unknown_address_marks_nothing() {
        let mut rng = Rng::new(6);
        let target = NodeId::random(&mut rng);
        let mut lookup = Lookup::new(
            target,
            NodeId::random(&mut rng),
            LookupKind::FindNode,
            &nodes(&mut rng, 1, 1),
        );
        let batch = lookup.next_queries();
        lookup.on_response(addr(999), &[], &[], None);
        assert_eq!(lookup.in_flight(), 1);
        lookup.on_response(batch[0].addr, &[], &[], None);
        assert!(lookup.is_done());
    }
}
