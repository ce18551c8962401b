//! The DHT node (BEP 5): a sans-IO state machine in the quinn-proto style.
//!
//! Layer 0: pure, no sockets, no clock. The session owns the UDP socket and
//! drives the node:
//!
//! ```text
//! handle_datagram(from, bytes, now)   a datagram arrived
//! handle_timeout(now)                 called at or after next_deadline()
//! poll_transmit() -> Transmit         datagrams to send, until None
//! poll_event() -> DhtEvent            peers found, until None
//! ```
//!
//! The node answers others' queries (rate-limited per source), keeps the
//! routing table, runs iterative lookups, and for each torrent it is told
//! about ([`Dht::add_torrent`]) looks up peers and announces us, again on a
//! schedule.
//!
//! Inside, the node works on typed KRPC [`Message`]s: a datagram is
//! decoded at the edge ([`Dht::handle_datagram`]), answers and queries wait
//! in a bounded queue of messages that [`Dht::poll_transmit`] encodes. A
//! response is matched to its pending query by transaction id *and* source
//! address; a query that gets no answer within [`QUERY_TIMEOUT`] counts as
//! a failure of that node in the routing table. Every queue and table is
//! bounded by a named cap below.
//!
//! Timers, all reported exactly by [`Dht::next_deadline`]: pending queries'
//! timeouts, the token secret's rotation, bucket refreshes and torrents'
//! re-lookups (both only while the table has nodes and a lookup may start:
//! before that there is no one to ask, and the first answer starts them),
//! the ping of the stalest questionable node (every [`PING_INTERVAL`]),
//! and bootstrap retries until a lookup of our own id got answers. After
//! any `handle_*` call at `now`, everything due at `now` has been done, so
//! `next_deadline()` is always later than `now` (the simulation asserts
//! it after every event).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::id::NodeId;
use super::krpc::{self, Body, CompactNode, InfoHash, Message, Query, Response};
use super::lookup::{Lookup, LookupKind};
use super::peer_store::PeerStore;
use super::routing::{Contact, Insert, RoutingTable, K};
use super::state_file::{SavedState, MAX_SAVED_NODES};
use super::token::TokenSecrets;
use crate::rng::Rng;

/// How long we wait for an answer before counting a query as failed:
/// a DHT round trip is well under a second; 3 s forgives a slow or
/// distant node without stalling lookups.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// Most queries of ours awaiting an answer: 16 lookups x alpha plus pings
/// and bootstrap queries fit; transaction ids (2 bytes) stay easy to keep
/// unique.
pub const MAX_PENDING: usize = 256;

/// Most lookups running at once (bootstrap, refreshes, torrents); more
/// torrents wait their turn.
pub const MAX_LOOKUPS: usize = 16;

/// Most datagrams waiting to be sent: the session drains the queue every
/// pass, so this only matters under a flood; then answers are dropped
/// (UDP may lose them anyway) and our queries are not sent.
pub const MAX_TRANSMIT_QUEUE: usize = 512;

/// Most events waiting for the session (drained every pass).
pub const MAX_EVENTS: usize = 256;

/// Queries answered per second per source IP (a token bucket that holds
/// [`RATE_BURST`]): a normal node sends a few; a flood is dropped silently
/// so we are no amplifier.
pub const RATE_PER_SEC: u64 = 20;

/// Queries a source IP may send in one burst.
pub const RATE_BURST: u64 = 20;

/// Source IPs whose rate we track; when all are busy a new source is not
/// answered until one goes quiet, so the table cannot grow without bound.
pub const MAX_RATE_SOURCES: usize = 1024;

/// How often a torrent's peers are looked up again, and it re-announced
/// (BEP 5 clients re-announce every 15-30 minutes; stored peers expire
/// after 30).
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The first retry after a lookup found no peer; it doubles up to
/// [`REANNOUNCE_INTERVAL`] (15 s, 30 s, 1 min, ...: a torrent that has no
/// peer yet, like a fresh magnet link whose seeder announces a moment
/// later, is not left waiting long, and one nobody has costs about one
/// lookup per 15 minutes after an hour).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(15);

/// Below this many nodes in the table a new contact is asked for the
/// nodes near our id (bootstrap) rather than just pinged.
pub const BOOTSTRAP_TABLE_LEN: usize = K;

/// Bootstrap contacts remembered to retry with while the table is empty.
pub const MAX_BOOTSTRAP_NODES: usize = 32;

/// How often the bootstrap contacts are asked again while the table is
/// still empty (network down at start, or they were unreachable): an
/// empty node has nothing else to do, and one query per contact every 15
/// s is no burden on a bootstrap router.
pub const BOOTSTRAP_RETRY: Duration = Duration::from_secs(15);

/// How often the stalest questionable node is pinged (BEP 5: questionable
/// nodes are pinged; a dead one fails twice and gives its slot to a
/// replacement). One ping per 10 s is negligible traffic and checks a
/// full table of ~150 nodes every 25 minutes.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Milli-tokens per query in the rate limiter.
const MILLI: u64 = 1000;

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The encoded KRPC message.
    pub bytes: Vec<u8>,
}

/// Something the session should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// Peers for a torrent we asked about (from `get_peers` responses'
    /// `values`), to add to its peer list.
    Peers {
        /// The torrent.
        info_hash: InfoHash,
        /// Where those peers listen (TCP).
        peers: Vec<SocketAddr>,
    },
}

/// Numbers for the status line and the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DhtStats {
    /// Good nodes in the routing table.
    pub good_nodes: usize,
    /// All nodes in the routing table.
    pub nodes: usize,
    /// Lookups running now.
    pub lookups: usize,
}

/// Why we sent a query, to act on its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A questionable node, pinged to see if it is still there.
    Ping,
    /// A contact given by [`Dht::add_node`], asked for nodes near our id.
    Bootstrap,
    /// Part of the lookup with this number.
    Lookup(u64),
    /// An `announce_peer` at the end of a lookup.
    Announce,
}

/// A query awaiting its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    to: SocketAddrV4,
    /// The id we expect to answer, when we know it.
    id: Option<NodeId>,
    pub(crate) purpose: Purpose,
    pub(crate) deadline: Instant,
}

/// A torrent we look up peers for.
#[derive(Debug, Clone)]
struct Torrent {
    announce_port: Option<u16>,
    /// When to start the next lookup (ignored while one runs).
    next_lookup: Instant,
    /// The running lookup's number.
    running: Option<u64>,
    /// Wait after a lookup that found no peer.
    retry: Duration,
}

/// A source IP's token bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateEntry {
    milli_tokens: u64,
    last: Instant,
}

/// A DHT node.
#[derive(Debug, Clone)]
pub struct Dht {
    id: NodeId,
    rng: Rng,
    table: RoutingTable,
    tokens: TokenSecrets,
    store: PeerStore,
    pub(crate) pending: BTreeMap<[u8; 2], Pending>,
    lookups: BTreeMap<u64, Lookup>,
    next_lookup_number: u64,
    torrents: BTreeMap<InfoHash, Torrent>,
    pub(crate) bootstrap: Vec<SocketAddrV4>,
    pub(crate) bootstrap_retry_at: Option<Instant>,
    /// A lookup of our own id got answers: we have joined the DHT.
    pub(crate) bootstrapped: bool,
    transmits: VecDeque<(SocketAddrV4, Message)>,
    events: VecDeque<DhtEvent>,
    pub(crate) rate: BTreeMap<IpAddr, RateEntry>,
    /// No maintenance ping before this.
    next_ping_at: Instant,
    /// The latest `now` we were given (for `saved_state` and `stats`).
    last_now: Instant,
    /// The last lookups that ended (for the specs and the simulation).
    #[cfg(test)]
    pub(crate) finished: VecDeque<Finished>,
}

/// A lookup that ended (test builds only).
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) number: u64,
    pub(crate) target: NodeId,
    pub(crate) queries: usize,
    pub(crate) closest: Vec<CompactNode>,
}

impl Dht {
    /// A node with id `id` (fresh or saved), its randomness seeded from
    /// `seed` (transaction ids, token secrets, refresh targets).
    pub fn new(id: NodeId, seed: u64, now: Instant) -> Dht {
        let mut rng = Rng::new(seed);
        let tokens = TokenSecrets::new(&mut rng, now);
        Dht {
            id,
            rng,
            table: RoutingTable::new(id, now),
            tokens,
            store: PeerStore::new(),
            pending: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_lookup_number: 0,
            torrents: BTreeMap::new(),
            bootstrap: Vec::new(),
            bootstrap_retry_at: None,
            bootstrapped: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rate: BTreeMap::new(),
            next_ping_at: now,
            last_now: now,
            #[cfg(test)]
            finished: VecDeque::new(),
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// A node to contact: a bootstrap node, one from the saved state, or
    /// one a peer named in a BEP 5 PORT message. It is pinged (or asked
    /// for nodes near our id while the table is nearly empty) and joins
    /// the routing table if it answers. IPv6 addresses are ignored (BEP 32
    /// is not implemented).
    pub fn add_node(&mut self, addr: SocketAddr, now: Instant) {
        self.last_now = now;
        let SocketAddr::V4(addr) = addr else {
            return;
        };
        if addr.port() == 0
            || addr.ip().is_unspecified()
            || self.pending.values().any(|p| p.to == addr)
        {
            return;
        }
        if self.table.len() < BOOTSTRAP_TABLE_LEN {
            if !self.bootstrap.contains(&addr) && self.bootstrap.len() < MAX_BOOTSTRAP_NODES {
                self.bootstrap.push(addr);
            }
            self.bootstrap_retry_at = Some(now + BOOTSTRAP_RETRY);
            let query = Query::FindNode {
                id: self.id,
                target: self.id,
            };
            self.send_query(addr, None, query, Purpose::Bootstrap, now);
        } else {
            self.send_query(addr, None, Query::Ping { id: self.id }, Purpose::Ping, now);
        }
        self.step(now);
    }

    /// Starts finding peers for `info_hash`: a `get_peers` lookup now (as
    /// soon as the table has nodes), then again on the re-announce
    /// schedule; with `announce_port`, each lookup ends with
    /// `announce_peer` to the closest nodes that gave a token.
    pub fn add_torrent(&mut self, info_hash: InfoHash, announce_port: Option<u16>, now: Instant) {
        self.last_now = now;
        let torrent = self.torrents.entry(info_hash).or_insert(Torrent {
            announce_port,
            next_lookup: now,
            running: None,
            retry: RETRY_INTERVAL,
        });
        torrent.announce_port = announce_port;
        self.step(now);
    }

    /// Stops looking up and announcing `info_hash`.
    pub fn remove_torrent(&mut self, info_hash: &InfoHash) {
        if let Some(torrent) = self.torrents.remove(info_hash) {
            if let Some(number) = torrent.running {
                self.lookups.remove(&number);
            }
        }
    }

    /// A datagram from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        match krpc::decode(bytes) {
            Ok(message) => self.handle_message(from, message, now),
            Err(e) => log::trace!("dht: dropped a datagram from {from}: {e}"),
        }
    }

    /// A decoded message from `from` (what [`Dht::handle_datagram`] does
    /// after decoding).
    pub(crate) fn handle_message(&mut self, from: SocketAddr, message: Message, now: Instant) {
        self.last_now = now;
        let SocketAddr::V4(from) = from else {
            return;
        };
        match message.body {
            Body::Query(query) => self.handle_query(from, message.transaction, query, now),
            Body::Response(response) => {
                self.handle_response(from, &message.transaction, response, now)
            }
            Body::Error {
                code,
                message: text,
            } => {
                log::debug!("dht: error {code} from {from}: {text}");
                self.handle_error(from, &message.transaction);
            }
        }
        self.step(now);
    }

    /// Timers: query timeouts, lookups' next steps, bucket refresh, token
    /// rotation, re-announces.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.step(now);
    }

    /// When [`Dht::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = Some(self.tokens.next_rotation());
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.pending.values().map(|p| p.deadline).min());
        if self.can_start_lookup() {
            consider(self.table.next_refresh());
            consider(
                self.torrents
                    .values()
                    .filter(|t| t.running.is_none())
                    .map(|t| t.next_lookup)
                    .min(),
            );
        }
        if !self.bootstrapped {
            consider(self.bootstrap_retry_at);
        }
        consider(
            self.table
                .next_questionable()
                .map(|t| t.max(self.next_ping_at)),
        );
        next
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (to, message) = self.poll_message()?;
        Some(Transmit {
            to: SocketAddr::V4(to),
            bytes: krpc::encode(&message),
        })
    }

    /// The next message to send, not yet encoded (what
    /// [`Dht::poll_transmit`] encodes).
    pub(crate) fn poll_message(&mut self) -> Option<(SocketAddrV4, Message)> {
        self.transmits.pop_front()
    }

    /// The next event for the session.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// Our id and the table's good nodes (at most
    /// [`MAX_SAVED_NODES`], the most recently seen first), to save.
    pub fn saved_state(&self) -> SavedState {
        SavedState {
            id: self.id,
            nodes: self.table.good_nodes(self.last_now, MAX_SAVED_NODES),
        }
    }

    /// Routing table and lookup numbers.
    pub fn stats(&self) -> DhtStats {
        DhtStats {
            good_nodes: self.table.good_len(self.last_now),
            nodes: self.table.len(),
            lookups: self.lookups.len(),
        }
    }

    /// Starts a `find_node` lookup of `target` (what a bucket refresh
    /// does); `None` when the table is empty or too many lookups run.
    #[cfg(test)]
    pub(crate) fn find_node(&mut self, target: NodeId, now: Instant) -> Option<u64> {
        self.last_now = now;
        if !self.can_start_lookup() {
            return None;
        }
        let number = self.start_lookup(target, LookupKind::FindNode, &[]);
        self.step(now);
        Some(number)
    }

    /// The routing table (read-only).
    #[cfg(test)]
    pub(crate) fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Whether a lookup can start now: someone to ask and room for it.
    fn can_start_lookup(&self) -> bool {
        !self.table.is_empty() && self.lookups.len() < MAX_LOOKUPS
    }

    fn bootstrap_pending(&self) -> bool {
        self.pending
            .values()
            .any(|p| p.purpose == Purpose::Bootstrap)
    }

    /// Everything due at `now`, in order: timeouts, the secret, lookups'
    /// next queries (and their ends), new refresh and torrent lookups,
    /// bootstrap retries. Idempotent for one `now`.
    fn step(&mut self, now: Instant) {
        self.expire_pending(now);
        if now >= self.tokens.next_rotation() {
            self.tokens.rotate_if_due(&mut self.rng, now);
            self.store.expire(now);
        }
        let numbers: Vec<u64> = self.lookups.keys().copied().collect();
        for number in numbers {
            self.advance_lookup(number, now);
        }
        self.start_refreshes(now);
        self.start_torrent_lookups(now);
        self.retry_bootstrap(now);
        self.ping_questionable(now);
    }

    /// Pings the stalest questionable node, at most every
    /// [`PING_INTERVAL`].
    fn ping_questionable(&mut self, now: Instant) {
        if now < self.next_ping_at || self.table.next_questionable().is_none_or(|t| t > now) {
            return;
        }
        self.next_ping_at = now + PING_INTERVAL;
        if let Some(stale) = self.table.stalest_questionable(now) {
            if !self.pending.values().any(|p| p.to == stale.addr) {
                self.send_query(
                    stale.addr,
                    Some(stale.id),
                    Query::Ping { id: self.id },
                    Purpose::Ping,
                    now,
                );
            }
        }
    }

    fn expire_pending(&mut self, now: Instant) {
        let expired: Vec<[u8; 2]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for transaction in expired {
            if let Some(pending) = self.pending.remove(&transaction) {
                self.query_failed(pending, now);
            }
        }
    }

    /// A query got no (right) answer: the node failed, for the table and
    /// for its lookup.
    fn query_failed(&mut self, pending: Pending, now: Instant) {
        if let Some(id) = pending.id {
            self.table.failed(&id, pending.to, now);
        }
        if let Purpose::Lookup(number) = pending.purpose {
            if let Some(lookup) = self.lookups.get_mut(&number) {
                lookup.on_failure(pending.to);
            }
        }
    }

    fn start_refreshes(&mut self, now: Instant) {
        if !self.can_start_lookup() || self.table.next_refresh().is_none_or(|t| t > now) {
            return;
        }
        for target in self.table.take_refresh_due(now, &mut self.rng) {
            if !self.can_start_lookup() {
                break;
            }
            log::debug!("dht: refreshing the bucket of {target}");
            let number = self.start_lookup(target, LookupKind::FindNode, &[]);
            self.advance_lookup(number, now);
        }
    }

    fn start_torrent_lookups(&mut self, now: Instant) {
        let due: Vec<InfoHash> = self
            .torrents
            .iter()
            .filter(|(_, t)| t.running.is_none() && t.next_lookup <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for info_hash in due {
            if !self.can_start_lookup() {
                break;
            }
            let announce_port = self.torrents.get(&info_hash).and_then(|t| t.announce_port);
            let kind = LookupKind::GetPeers {
                info_hash,
                announce_port,
            };
            // Peers announced to our own node count too: we are one of the
            // nodes a lookup may end at.
            let stored = self.store.peers(&info_hash, now);
            self.push_peers(info_hash, stored);
            let number = self.start_lookup(NodeId(info_hash), kind, &[]);
            if let Some(torrent) = self.torrents.get_mut(&info_hash) {
                torrent.running = Some(number);
            }
            // Only now: a lookup with no one to ask ends at once, and its
            // end schedules the torrent's next one.
            self.advance_lookup(number, now);
        }
    }

    /// Until a lookup of our own id got answers, every
    /// [`BOOTSTRAP_RETRY`]: with an empty table, asks the bootstrap
    /// contacts again; else (nodes that queried us, or whose answer to
    /// the first contact was lost) looks up our own id through the table.
    fn retry_bootstrap(&mut self, now: Instant) {
        let due = self.bootstrap_retry_at.is_some_and(|t| t <= now);
        if !due || self.bootstrapped {
            return;
        }
        self.bootstrap_retry_at = Some(now + BOOTSTRAP_RETRY);
        if self.table.is_empty() {
            if self.bootstrap_pending() {
                return;
            }
            let query = Query::FindNode {
                id: self.id,
                target: self.id,
            };
            for addr in self.bootstrap.clone() {
                self.send_query(addr, None, query.clone(), Purpose::Bootstrap, now);
            }
        } else if self.own_lookup().is_none() && self.can_start_lookup() {
            let number = self.start_lookup(self.id, LookupKind::FindNode, &[]);
            self.advance_lookup(number, now);
        }
    }

    /// The running lookup of our own id, if any.
    fn own_lookup(&mut self) -> Option<&mut Lookup> {
        let own = self.id;
        self.lookups
            .values_mut()
            .find(|l| l.target() == own && l.kind() == LookupKind::FindNode)
    }

    /// Starts a lookup of `target` from the table's closest nodes and
    /// `extra` seeds; returns its number. Its first queries go out at the
    /// next [`Dht::advance_lookup`] (the caller's, or the next step's).
    fn start_lookup(&mut self, target: NodeId, kind: LookupKind, extra: &[CompactNode]) -> u64 {
        let mut seeds = self.table.closest(&target, K);
        seeds.extend_from_slice(extra);
        let number = self.next_lookup_number;
        self.next_lookup_number += 1;
        self.lookups
            .insert(number, Lookup::new(target, self.id, kind, &seeds));
        number
    }

    /// Sends a lookup's next queries; ends it when it is done.
    fn advance_lookup(&mut self, number: u64, now: Instant) {
        loop {
            let Some(lookup) = self.lookups.get_mut(&number) else {
                return;
            };
            let batch = lookup.next_queries();
            if batch.is_empty() {
                break;
            }
            let query = match lookup.kind() {
                LookupKind::FindNode => Query::FindNode {
                    id: self.id,
                    target: lookup.target(),
                },
                LookupKind::GetPeers { info_hash, .. } => Query::GetPeers {
                    id: self.id,
                    info_hash,
                },
            };
            for node in batch {
                if !self.send_query(
                    node.addr,
                    Some(node.id),
                    query.clone(),
                    Purpose::Lookup(number),
                    now,
                ) {
                    if let Some(lookup) = self.lookups.get_mut(&number) {
                        lookup.on_failure(node.addr);
                    }
                }
            }
        }
        if self.lookups.get(&number).is_some_and(Lookup::is_done) {
            self.finish_lookup(number, now);
        }
    }

    /// A lookup is done: announce if it should, and schedule its torrent's
    /// next one.
    fn finish_lookup(&mut self, number: u64, now: Instant) {
        let Some(lookup) = self.lookups.remove(&number) else {
            return;
        };
        #[cfg(test)]
        {
            if self.finished.len() >= 64 {
                self.finished.pop_front();
            }
            self.finished.push_back(Finished {
                number,
                target: lookup.target(),
                queries: lookup.queries(),
                closest: lookup.closest_answered(),
            });
        }
        log::debug!(
            "dht: lookup of {} done after {} queries, {} peers",
            lookup.target(),
            lookup.queries(),
            lookup.peers_found()
        );
        let LookupKind::GetPeers { info_hash, .. } = lookup.kind() else {
            if lookup.target() == self.id && !lookup.closest_answered().is_empty() {
                self.bootstrapped = true;
            }
            return;
        };
        let Some(torrent) = self.torrents.get_mut(&info_hash) else {
            return;
        };
        if torrent.running != Some(number) {
            return;
        }
        torrent.running = None;
        if lookup.peers_found() > 0 {
            torrent.retry = RETRY_INTERVAL;
            torrent.next_lookup = now + REANNOUNCE_INTERVAL;
        } else {
            torrent.next_lookup = now + torrent.retry;
            torrent.retry = (torrent.retry * 2).min(REANNOUNCE_INTERVAL);
        }
        let Some(port) = torrent.announce_port else {
            return;
        };
        for (node, token) in lookup.announce_targets() {
            let query = Query::AnnouncePeer {
                id: self.id,
                info_hash,
                port,
                implied_port: false,
                token,
            };
            self.send_query(node.addr, Some(node.id), query, Purpose::Announce, now);
        }
    }

    /// Queues a query with a fresh transaction id and remembers it;
    /// `false` when the pending table or the transmit queue is full.
    fn send_query(
        &mut self,
        to: SocketAddrV4,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
        now: Instant,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING || self.transmits.len() >= MAX_TRANSMIT_QUEUE {
            return false;
        }
        let Some(transaction) = self.fresh_transaction() else {
            return false;
        };
        self.pending.insert(
            transaction,
            Pending {
                to,
                id,
                purpose,
                deadline: now + QUERY_TIMEOUT,
            },
        );
        self.push_transmit(
            to,
            Message {
                transaction: transaction.to_vec(),
                body: Body::Query(query),
            },
        );
        true
    }

    /// A 2-byte transaction id not used by a pending query.
    fn fresh_transaction(&mut self) -> Option<[u8; 2]> {
        for _ in 0..16 {
            let bits = self.rng.next_u64().to_be_bytes();
            let transaction = [bits[0], bits[1]];
            if !self.pending.contains_key(&transaction) {
                return Some(transaction);
            }
        }
        None
    }

    fn push_transmit(&mut self, to: SocketAddrV4, message: Message) {
        if self.transmits.len() < MAX_TRANSMIT_QUEUE {
            self.transmits.push_back((to, message));
        } else {
            log::debug!("dht: transmit queue full, dropped a message to {to}");
        }
    }

    fn push_peers(&mut self, info_hash: InfoHash, peers: Vec<SocketAddrV4>) {
        if peers.is_empty() {
            return;
        }
        if self.events.len() >= MAX_EVENTS {
            log::debug!("dht: event queue full, dropped {} peers", peers.len());
            return;
        }
        self.events.push_back(DhtEvent::Peers {
            info_hash,
            peers: peers.into_iter().map(SocketAddr::V4).collect(),
        });
    }

    /// Offers a node that queried or answered us to the table; pings the
    /// questionable node a full bucket names.
    /// A node that only queried us is pinged at once: it becomes good when
    /// it answers (a query's source address may be spoofed).
    fn offer(&mut self, info: CompactNode, contact: Contact, now: Instant) {
        let to_ping = match self.table.insert(info, contact, now) {
            Insert::Full { ping: Some(stale) } => Some(stale),
            Insert::Added if contact == Contact::Queried => Some(info),
            _ => None,
        };
        if let Some(node) = to_ping {
            if !self.pending.values().any(|p| p.to == node.addr) {
                self.send_query(
                    node.addr,
                    Some(node.id),
                    Query::Ping { id: self.id },
                    Purpose::Ping,
                    now,
                );
            }
        }
    }

    /// Whether `ip` may have another query answered (its token bucket).
    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let full = RATE_BURST * MILLI;
        if !self.rate.contains_key(&ip) && self.rate.len() >= MAX_RATE_SOURCES {
            // Forget sources whose bucket has refilled: they are quiet.
            let refill = Duration::from_millis(RATE_BURST * MILLI / RATE_PER_SEC);
            self.rate
                .retain(|_, e| now.saturating_duration_since(e.last) < refill);
            if self.rate.len() >= MAX_RATE_SOURCES {
                return false;
            }
        }
        let entry = self.rate.entry(ip).or_insert(RateEntry {
            milli_tokens: full,
            last: now,
        });
        let elapsed_ms = u64::try_from(now.saturating_duration_since(entry.last).as_millis())
            .unwrap_or(u64::MAX);
        entry.milli_tokens = entry
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(RATE_PER_SEC))
            .min(full);
        entry.last = now;
        if entry.milli_tokens >= MILLI {
            entry.milli_tokens -= MILLI;
            true
        } else {
            false
        }
    }

    fn handle_query(
        &mut self,
        from: SocketAddrV4,
        transaction: Vec<u8>,
        query: Query,
        now: Instant,
    ) {
        if !self.allow(IpAddr::V4(*from.ip()), now) {
            log::trace!("dht: rate limit: dropped a query from {from}");
            return;
        }
        let sender = query.sender();
        let body = self.answer(from, query, now);
        self.push_transmit(from, Message { transaction, body });
        if let Some(id) = sender {
            self.offer(CompactNode { id, addr: from }, Contact::Queried, now);
        }
    }

    /// Our answer to `query` from `from` (BEP 5).
    fn answer(&mut self, from: SocketAddrV4, query: Query, now: Instant) -> Body {
        let mut response = Response {
            id: self.id,
            ..Response::default()
        };
        match query {
            Query::Ping { .. } => {}
            Query::FindNode { target, .. } => response.nodes = self.table.closest(&target, K),
            Query::GetPeers { info_hash, .. } => {
                response.token = Some(self.tokens.token(IpAddr::V4(*from.ip())).to_vec());
                response.values = self.store.peers(&info_hash, now);
                if response.values.is_empty() {
                    response.nodes = self.table.closest(&NodeId(info_hash), K);
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.verify(IpAddr::V4(*from.ip()), &token) {
                    return protocol_error("bad token");
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    return protocol_error("bad port");
                }
                let peer = SocketAddrV4::new(*from.ip(), port);
                self.store.announce(info_hash, peer, now);
                if self.torrents.contains_key(&info_hash) {
                    // A peer of one of our torrents announced itself to us:
                    // the session can dial it now, not after our next lookup
                    // (in a small DHT we may be the node it announces to).
                    self.push_peers(info_hash, vec![peer]);
                }
            }
            Query::Unknown { .. } => {
                return Body::Error {
                    code: 204,
                    message: "Method Unknown".to_string(),
                }
            }
        }
        Body::Response(response)
    }

    fn handle_response(
        &mut self,
        from: SocketAddrV4,
        transaction: &[u8],
        response: Response,
        now: Instant,
    ) {
        let Some(pending) = self.take_pending(from, transaction) else {
            return;
        };
        if pending.id.is_some_and(|id| id != response.id) {
            log::debug!("dht: {from} answered with another id than the one we knew");
            self.query_failed(pending, now);
            return;
        }
        self.offer(
            CompactNode {
                id: response.id,
                addr: from,
            },
            Contact::Answered,
            now,
        );
        match pending.purpose {
            Purpose::Ping | Purpose::Announce => {}
            Purpose::Bootstrap => self.bootstrap_answered(&response.nodes),
            Purpose::Lookup(number) => {
                let Some(lookup) = self.lookups.get_mut(&number) else {
                    return;
                };
                let peers = lookup.on_response(
                    from,
                    &response.nodes,
                    &response.values,
                    response.token.as_deref(),
                );
                if let LookupKind::GetPeers { info_hash, .. } = lookup.kind() {
                    self.push_peers(info_hash, peers);
                }
            }
        }
    }

    /// A bootstrap contact answered: its nodes feed the lookup of our own
    /// id (started now if none runs).
    fn bootstrap_answered(&mut self, nodes: &[CompactNode]) {
        if let Some(lookup) = self.own_lookup() {
            lookup.add_candidates(nodes);
        } else if self.lookups.len() < MAX_LOOKUPS {
            // Its queries go out in the step that follows every message.
            self.start_lookup(self.id, LookupKind::FindNode, nodes);
        }
    }

    fn handle_error(&mut self, from: SocketAddrV4, transaction: &[u8]) {
        let Some(pending) = self.take_pending(from, transaction) else {
            return;
        };
        // The node is alive: no failure for the table, but no answer
        // for the lookup.
        if let Purpose::Lookup(number) = pending.purpose {
            if let Some(lookup) = self.lookups.get_mut(&number) {
                lookup.on_failure(from);
            }
        }
    }

    /// The pending query `transaction` if it was sent to `from`.
    fn take_pending(&mut self, from: SocketAddrV4, transaction: &[u8]) -> Option<Pending> {
        let key: [u8; 2] = transaction.try_into().ok()?;
        if self.pending.get(&key)?.to != from {
            log::debug!("dht: an answer from {from} to a query sent elsewhere, ignored");
            return None;
        }
        self.pending.remove(&key)
    }
}

/// A KRPC error 203 (protocol error) with `text`.
fn protocol_error(text: &str) -> Body {
    Body::Error {
        code: 203,
        message: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::lookup::ALPHA;
    use crate::dht::routing::GOOD_INTERVAL;
    use std::net::Ipv4Addr;

    fn addr(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 6881)
    }

    fn new_dht(seed: u64) -> (Dht, Rng, Instant) {
        let mut rng = Rng::new(seed);
        let now = Instant::now();
        (Dht::new(NodeId::random(&mut rng), seed, now), rng, now)
    }

    fn query(transaction: &[u8], query: Query) -> Message {
        Message {
            transaction: transaction.to_vec(),
            body: Body::Query(query),
        }
    }

    fn respond(transaction: &[u8], response: Response) -> Message {
        Message {
            transaction: transaction.to_vec(),
            body: Body::Response(response),
        }
    }

    fn drain(dht: &mut Dht) -> Vec<(SocketAddrV4, Message)> {
        std::iter::from_fn(|| dht.poll_message()).collect()
    }

    /// What we sent that is not a query of ours (such as the ping a new
    /// querier gets back).
    fn replies(out: &[(SocketAddrV4, Message)]) -> Vec<(SocketAddrV4, Message)> {
        out.iter()
            .filter(|(_, m)| !matches!(m.body, Body::Query(_)))
            .cloned()
            .collect()
    }

    fn only_response(out: &[(SocketAddrV4, Message)]) -> Response {
        match replies(out).as_slice() {
            [(
                _,
                Message {
                    body: Body::Response(r),
                    ..
                },
            )] => r.clone(),
            other => panic!("expected one response, got {other:?}"),
        }
    }

    fn error_code(out: &[(SocketAddrV4, Message)]) -> i64 {
        match replies(out).as_slice() {
            [(
                _,
                Message {
                    body: Body::Error { code, .. },
                    ..
                },
            )] => *code,
            other => panic!("expected one error, got {other:?}"),
        }
    }

    /// Makes `count` nodes known by having them ping us.
    fn fill(dht: &mut Dht, rng: &mut Rng, count: u32, now: Instant) -> Vec<CompactNode> {
        let mut nodes = Vec::new();
        for n in 0..count {
            let info = CompactNode {
                id: NodeId::random(rng),
                addr: addr(1000 + n),
            };
            dht.handle_message(
                SocketAddr::V4(info.addr),
                query(b"pp", Query::Ping { id: info.id }),
                now,
            );
            // It answers the ping we send back, so it is good.
            for (to, message) in drain(dht) {
                if matches!(message.body, Body::Query(Query::Ping { .. })) {
                    let answer = respond(
                        &message.transaction,
                        Response {
                            id: info.id,
                            ..Response::default()
                        },
                    );
                    dht.handle_message(SocketAddr::V4(to), answer, now);
                }
            }
            nodes.push(info);
        }
        drain(dht);
        nodes
    }

    #[test]
    fn a_ping_is_answered_with_our_id_and_the_querier_joins_the_table() {
        let (mut dht, mut rng, now) = new_dht(1);
        let them = NodeId::random(&mut rng);
        dht.handle_message(
            SocketAddr::V4(addr(1)),
            query(b"ab", Query::Ping { id: them }),
            now,
        );
        let out = drain(&mut dht);
        assert_eq!(out[0].0, addr(1));
        assert_eq!(out[0].1.transaction, b"ab".to_vec(), "transaction echoed");
        assert!(matches!(&out[0].1.body, Body::Response(r) if r.id == dht.id()));
        assert_eq!(dht.stats().nodes, 1);
        assert_eq!(dht.stats().good_nodes, 0, "it only queried us");
        // We ping it back; its answer makes it good.
        let (to, ping) = out.get(1).expect("a ping back").clone();
        assert_eq!(to, addr(1));
        assert!(matches!(ping.body, Body::Query(Query::Ping { .. })));
        let answer = respond(
            &ping.transaction,
            Response {
                id: them,
                ..Response::default()
            },
        );
        dht.handle_message(SocketAddr::V4(addr(1)), answer, now);
        assert_eq!(dht.stats().good_nodes, 1);
    }

    #[test]
    fn find_node_is_answered_with_the_closest_nodes() {
        let (mut dht, mut rng, now) = new_dht(2);
        let known = fill(&mut dht, &mut rng, 30, now);
        let target = NodeId::random(&mut rng);
        let me = NodeId::random(&mut rng);
        dht.handle_message(
            SocketAddr::V4(addr(1)),
            query(b"fn", Query::FindNode { id: me, target }),
            now,
        );
        let out = drain(&mut dht);
        let nodes = &only_response(&out).nodes;
        assert_eq!(nodes.len(), K);
        let mut sorted = known.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        assert!(nodes.iter().all(|n| known.contains(n)));
        assert_eq!(nodes[0], sorted[0], "the closest known node comes first");
    }

    #[test]
    fn get_peers_gives_nodes_and_a_token_then_announced_peers() {
        let (mut dht, mut rng, now) = new_dht(3);
        fill(&mut dht, &mut rng, 10, now);
        let info_hash = [9u8; 20];
        let me = NodeId::random(&mut rng);
        let get = Query::GetPeers { id: me, info_hash };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"g1", get.clone()), now);
        let out = drain(&mut dht);
        let first = only_response(&out);
        assert!(first.values.is_empty());
        assert!(!first.nodes.is_empty(), "no peers: nodes instead");
        let token = first.token.clone().expect("a token");
        let announce = Query::AnnouncePeer {
            id: me,
            info_hash,
            port: 51413,
            implied_port: false,
            token,
        };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"a1", announce), now);
        assert_eq!(only_response(&drain(&mut dht)).id, dht.id());
        dht.handle_message(SocketAddr::V4(addr(2)), query(b"g2", get), now);
        let out = drain(&mut dht);
        let second = only_response(&out);
        assert_eq!(second.values, vec![SocketAddrV4::new(*addr(1).ip(), 51413)]);
        assert!(second.nodes.is_empty(), "peers instead of nodes");
        assert!(second.token.is_some(), "always a token");
    }

    #[test]
    fn a_peer_announced_to_us_for_our_own_torrent_is_handed_over_at_once_and_at_each_lookup() {
        let (mut dht, mut rng, now) = new_dht(33);
        let info_hash = [7u8; 20];
        dht.add_torrent(info_hash, Some(6881), now);
        let me = NodeId::random(&mut rng);
        let get = Query::GetPeers { id: me, info_hash };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"g1", get), now);
        let token = token_in(drain(&mut dht));
        let announce = Query::AnnouncePeer {
            id: me,
            info_hash,
            port: 51413,
            implied_port: false,
            token,
        };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"a1", announce), now);
        drain(&mut dht);
        let peer = SocketAddr::V4(SocketAddrV4::new(*addr(1).ip(), 51413));
        let expected = DhtEvent::Peers {
            info_hash,
            peers: vec![peer],
        };
        assert_eq!(dht.poll_event(), Some(expected.clone()), "at once");
        assert_eq!(dht.poll_event(), None);
        // A peer for a torrent that is not ours is only stored.
        fn token_in(out: Vec<(SocketAddrV4, Message)>) -> Vec<u8> {
            out.into_iter()
                .find_map(|(_, m)| match m.body {
                    Body::Response(r) => r.token,
                    _ => None,
                })
                .expect("a response with a token")
        }
        let other = [8u8; 20];
        let get = Query::GetPeers {
            id: me,
            info_hash: other,
        };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"g2", get), now);
        let token = token_in(drain(&mut dht));
        let announce = Query::AnnouncePeer {
            id: me,
            info_hash: other,
            port: 51413,
            implied_port: false,
            token,
        };
        dht.handle_message(SocketAddr::V4(addr(1)), query(b"a2", announce), now);
        assert_eq!(dht.poll_event(), None);
        // The next lookup of our torrent starts with what our store holds
        // (the first one, still running, asks a node that never answers).
        let mut events = Vec::new();
        for step in 1..=120 {
            dht.handle_timeout(now + Duration::from_secs(10 * step));
            drain(&mut dht);
            events.extend(std::iter::from_fn(|| dht.poll_event()));
        }
        assert!(events.contains(&expected), "{events:?}");
    }

    #[test]
    fn implied_port_takes_the_source_port() {
        let (mut dht, mut rng, now) = new_dht(4);
        let me = NodeId::random(&mut rng);
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 7777);
        let token = dht.tokens.token(IpAddr::V4(*from.ip())).to_vec();
        let announce = Query::AnnouncePeer {
            id: me,
            info_hash: [1; 20],
            port: 1,
            implied_port: true,
            token,
        };
        dht.handle_message(SocketAddr::V4(from), query(b"a1", announce), now);
        only_response(&drain(&mut dht));
        assert_eq!(dht.store.peers(&[1; 20], now), vec![from]);
    }

    #[test]
    fn announce_with_a_bad_or_foreign_token_gets_error_203() {
        let (mut dht, mut rng, now) = new_dht(5);
        let me = NodeId::random(&mut rng);
        let foreign = dht.tokens.token(IpAddr::V4(*addr(2).ip())).to_vec();
        for token in [b"nope".to_vec(), foreign, Vec::new()] {
            let announce = Query::AnnouncePeer {
                id: me,
                info_hash: [1; 20],
                port: 6881,
                implied_port: false,
                token,
            };
            dht.handle_message(SocketAddr::V4(addr(1)), query(b"a1", announce), now);
            assert_eq!(error_code(&drain(&mut dht)), 203);
        }
        assert!(dht.store.peers(&[1; 20], now).is_empty());
    }

    #[test]
    fn an_unknown_method_gets_error_204() {
        let (mut dht, _, now) = new_dht(6);
        dht.handle_message(
            SocketAddr::V4(addr(1)),
            query(b"u1", Query::Unknown { id: None }),
            now,
        );
        assert_eq!(error_code(&drain(&mut dht)), 204);
    }

    #[test]
    fn a_flood_from_one_ip_is_rate_limited() {
        let (mut dht, mut rng, now) = new_dht(7);
        let me = NodeId::random(&mut rng);
        for _ in 0..100 {
            dht.handle_message(
                SocketAddr::V4(addr(1)),
                query(b"p", Query::Ping { id: me }),
                now,
            );
        }
        assert_eq!(replies(&drain(&mut dht)).len() as u64, RATE_BURST);
        dht.handle_message(
            SocketAddr::V4(addr(2)),
            query(b"p", Query::Ping { id: me }),
            now,
        );
        assert_eq!(replies(&drain(&mut dht)).len(), 1, "another IP is answered");
        let later = now + Duration::from_secs(1);
        for _ in 0..100 {
            dht.handle_message(
                SocketAddr::V4(addr(1)),
                query(b"p", Query::Ping { id: me }),
                later,
            );
        }
        assert_eq!(
            drain(&mut dht).len() as u64,
            RATE_PER_SEC,
            "refilled at the rate"
        );
    }

    #[test]
    fn the_rate_table_is_bounded() {
        let (mut dht, mut rng, now) = new_dht(8);
        let me = NodeId::random(&mut rng);
        for n in 0..(MAX_RATE_SOURCES as u32 + 50) {
            dht.handle_message(
                SocketAddr::V4(addr(n)),
                query(b"p", Query::Ping { id: me }),
                now,
            );
        }
        assert_eq!(dht.rate.len(), MAX_RATE_SOURCES);
        drain(&mut dht);
        let later = now + Duration::from_secs(2);
        dht.handle_message(
            SocketAddr::V4(addr(99_999)),
            query(b"p", Query::Ping { id: me }),
            later,
        );
        assert_eq!(drain(&mut dht).len(), 1, "quiet sources are forgotten");
    }

    #[test]
    fn answers_are_matched_by_transaction_and_source_address() {
        let (mut dht, mut rng, now) = new_dht(9);
        dht.add_node(SocketAddr::V4(addr(1)), now);
        let out = drain(&mut dht);
        assert_eq!(out.len(), 1);
        let (to, sent) = &out[0];
        assert_eq!(*to, addr(1));
        assert!(
            matches!(sent.body, Body::Query(Query::FindNode { target, .. }) if target == dht.id())
        );
        let them = NodeId::random(&mut rng);
        let answer = Response {
            id: them,
            ..Response::default()
        };
        dht.handle_message(
            SocketAddr::V4(addr(2)),
            respond(&sent.transaction, answer.clone()),
            now,
        );
        assert_eq!(dht.stats().nodes, 0, "an answer from elsewhere is ignored");
        dht.handle_message(SocketAddr::V4(addr(1)), respond(b"zz", answer.clone()), now);
        assert_eq!(dht.stats().nodes, 0, "an unknown transaction is ignored");
        dht.handle_message(
            SocketAddr::V4(addr(1)),
            respond(&sent.transaction, answer.clone()),
            now,
        );
        assert_eq!(dht.stats().nodes, 1);
        let key = [sent.transaction[0], sent.transaction[1]];
        assert!(!dht.pending.contains_key(&key), "answered once");
    }

    #[test]
    fn next_deadline_is_exact_and_timeouts_are_idempotent() {
        let (mut dht, _, now) = new_dht(10);
        assert_eq!(
            dht.next_deadline(),
            Some(now + crate::dht::token::ROTATE_INTERVAL),
            "idle"
        );
        dht.add_node(SocketAddr::V4(addr(1)), now);
        drain(&mut dht);
        assert_eq!(dht.next_deadline(), Some(now + QUERY_TIMEOUT));
        dht.handle_timeout(now + QUERY_TIMEOUT);
        dht.handle_timeout(now + QUERY_TIMEOUT);
        assert!(drain(&mut dht).is_empty());
        assert_eq!(
            dht.next_deadline(),
            Some(now + BOOTSTRAP_RETRY),
            "empty table: retry the bootstrap"
        );
        dht.handle_timeout(now + BOOTSTRAP_RETRY);
        let again = drain(&mut dht);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, addr(1));
        dht.handle_timeout(now + BOOTSTRAP_RETRY);
        assert!(drain(&mut dht).is_empty(), "idempotent");
    }

    #[test]
    fn a_torrent_is_looked_up_and_announced_to_nodes_that_gave_a_token() {
        let (mut dht, mut rng, now) = new_dht(11);
        let info_hash = [5u8; 20];
        let nodes = fill(&mut dht, &mut rng, 4, now);
        dht.add_torrent(info_hash, Some(6881), now);
        assert_eq!(drain(&mut dht).len(), ALPHA, "alpha get_peers at once");
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 200, 0, 1), 5000);
        let mut rounds = 0;
        let mut announced = Vec::new();
        let mut queries = dht.pending.clone();
        while !queries.is_empty() && rounds < 10 {
            rounds += 1;
            for (transaction, pending) in queries {
                let id = pending.id.expect("a known id");
                let message = match pending.purpose {
                    Purpose::Announce => {
                        announced.push(pending.to);
                        respond(
                            &transaction,
                            Response {
                                id,
                                ..Response::default()
                            },
                        )
                    }
                    _ => respond(
                        &transaction,
                        Response {
                            id,
                            values: vec![peer],
                            token: Some(b"t".to_vec()),
                            ..Response::default()
                        },
                    ),
                };
                dht.handle_message(SocketAddr::V4(pending.to), message, now);
            }
            queries = dht.pending.clone();
        }
        let events: Vec<DhtEvent> = std::iter::from_fn(|| dht.poll_event()).collect();
        assert_eq!(
            events,
            vec![DhtEvent::Peers {
                info_hash,
                peers: vec![SocketAddr::V4(peer)]
            }],
            "one event: the peer is deduplicated within the lookup"
        );
        announced.sort();
        let mut expected: Vec<SocketAddrV4> = nodes.iter().map(|n| n.addr).collect();
        expected.sort();
        assert_eq!(
            announced, expected,
            "announced to every node that gave a token"
        );
        assert_eq!(dht.stats().lookups, 0);
        assert_eq!(
            dht.next_deadline(),
            Some(now + crate::dht::token::ROTATE_INTERVAL)
        );
        let t = &dht.torrents[&info_hash];
        assert_eq!(t.next_lookup, now + REANNOUNCE_INTERVAL);
    }

    #[test]
    fn a_lookup_that_finds_nothing_retries_sooner_with_backoff() {
        let (mut dht, mut rng, now) = new_dht(12);
        fill(&mut dht, &mut rng, 3, now);
        dht.add_torrent([6; 20], None, now);
        let sent = drain(&mut dht);
        assert_eq!(sent.len(), 3.min(ALPHA));
        // Nobody answers.
        let t1 = now + QUERY_TIMEOUT;
        dht.handle_timeout(t1);
        assert_eq!(dht.torrents[&[6; 20]].next_lookup, t1 + RETRY_INTERVAL);
        // Run the clock (maintenance pings fail too) through the retry.
        let mut lookups = 0;
        let mut last = t1;
        for _ in 0..1000 {
            let t = dht.next_deadline().expect("a deadline");
            assert!(
                t > last,
                "the deadline moves on: {:?} after {:?}",
                t - now,
                last - now
            );
            last = t;
            if t >= t1 + RETRY_INTERVAL * 2 {
                break;
            }
            dht.handle_timeout(t);
            lookups += drain(&mut dht)
                .iter()
                .filter(|(_, m)| matches!(m.body, Body::Query(Query::GetPeers { .. })))
                .count();
        }
        let next = dht.torrents[&[6; 20]].next_lookup;
        assert!(lookups <= 3, "looked up again, no more: {lookups}");
        let waited = next.saturating_duration_since(t1 + RETRY_INTERVAL);
        assert!(
            waited >= RETRY_INTERVAL * 2 && waited <= RETRY_INTERVAL * 2 + QUERY_TIMEOUT,
            "backs off: {waited:?}"
        );
        dht.remove_torrent(&[6; 20]);
        assert!(dht.torrents.is_empty());
    }

    #[test]
    fn a_node_that_keeps_failing_leaves_the_table_for_a_replacement() {
        let (mut dht, mut rng, now) = new_dht(13);
        let nodes = fill(&mut dht, &mut rng, 40, now);
        let before = dht.stats().nodes;
        let target = nodes
            .iter()
            .find(|n| dht.table.get(&n.id).is_some())
            .copied()
            .expect("in table");
        for _ in 0..2 {
            dht.send_query(
                target.addr,
                Some(target.id),
                Query::Ping { id: dht.id },
                Purpose::Ping,
                now,
            );
        }
        dht.handle_timeout(now + QUERY_TIMEOUT);
        assert!(dht.table.get(&target.id).is_none_or(|n| n.is_bad()));
        assert!(dht.stats().nodes >= before - 1);
    }

    #[test]
    fn saved_state_holds_our_id_and_good_nodes() {
        let (mut dht, mut rng, now) = new_dht(14);
        fill(&mut dht, &mut rng, 5, now);
        let saved = dht.saved_state();
        assert_eq!(saved.id, dht.id());
        assert_eq!(saved.nodes.len(), 5);
        dht.handle_timeout(now + GOOD_INTERVAL);
        assert!(dht.saved_state().nodes.is_empty(), "no longer good");
    }

    #[test]
    fn ipv6_contacts_and_datagrams_are_ignored() {
        let (mut dht, mut rng, now) = new_dht(15);
        let v6: SocketAddr = "[::1]:6881".parse().expect("addr");
        dht.add_node(v6, now);
        dht.handle_message(
            v6,
            query(
                b"p",
                Query::Ping {
                    id: NodeId::random(&mut rng),
                },
            ),
            now,
        );
        assert!(drain(&mut dht).is_empty());
    }

    #[test]
    fn a_ping_datagram_is_answered_with_a_datagram() {
        let (mut dht, mut rng, now) = new_dht(16);
        let ping = query(
            b"aa",
            Query::Ping {
                id: NodeId::random(&mut rng),
            },
        );
        dht.handle_datagram(SocketAddr::V4(addr(1)), &krpc::encode(&ping), now);
        let sent = dht.poll_transmit().expect("an answer");
        assert_eq!(sent.to, SocketAddr::V4(addr(1)));
        let answer = krpc::decode(&sent.bytes).expect("decodes");
        assert_eq!(answer.transaction, b"aa".to_vec());
        assert!(matches!(answer.body, Body::Response(r) if r.id == dht.id()));
        let ping_back = dht.poll_transmit().expect("a ping to the new node");
        let ping_back = krpc::decode(&ping_back.bytes).expect("decodes");
        assert!(matches!(ping_back.body, Body::Query(Query::Ping { .. })));
        dht.handle_datagram(SocketAddr::V4(addr(1)), b"garbage", now);
        assert!(dht.poll_transmit().is_none(), "garbage is dropped");
    }
}
