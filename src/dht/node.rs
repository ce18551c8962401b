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
//! STATUS: skeleton; the node is being written (issue 15).

use std::net::SocketAddr;
use std::time::Instant;

use super::id::NodeId;
use super::krpc::InfoHash;
use super::state_file::SavedState;

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

/// A DHT node.
#[derive(Debug)]
pub struct Dht {
    id: NodeId,
}

impl Dht {
    /// A node with id `id` (fresh or saved), its randomness seeded from
    /// `seed` (transaction ids, token secrets, refresh targets).
    pub fn new(id: NodeId, seed: u64, now: Instant) -> Dht {
        let _ = (seed, now);
        Dht { id }
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
        let _ = (addr, now);
    }

    /// Starts finding peers for `info_hash`: a `get_peers` lookup now (as
    /// soon as the table has nodes), then again on the re-announce
    /// schedule; with `announce_port`, each lookup ends with
    /// `announce_peer` to the closest nodes that gave a token.
    pub fn add_torrent(&mut self, info_hash: InfoHash, announce_port: Option<u16>, now: Instant) {
        let _ = (info_hash, announce_port, now);
    }

    /// Stops looking up and announcing `info_hash`.
    pub fn remove_torrent(&mut self, info_hash: &InfoHash) {
        let _ = info_hash;
    }

    /// A datagram from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let _ = (from, bytes, now);
    }

    /// Timers: query timeouts, lookups' next steps, bucket refresh, token
    /// rotation, re-announces.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// When [`Dht::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }

    /// The next event for the session.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        None
    }

    /// Our id and the table's good nodes, to save.
    pub fn saved_state(&self) -> SavedState {
        SavedState {
            id: self.id,
            nodes: Vec::new(),
        }
    }

    /// Routing table and lookup numbers.
    pub fn stats(&self) -> DhtStats {
        DhtStats::default()
    }
}
