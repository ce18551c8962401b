//! The mainline DHT (BEP 5): a Kademlia node that finds peers for a
//! torrent with no tracker, and tells others we have it.
//!
//! Layer 0: pure. The node ([`Dht`]) is a sans-IO state machine: bytes and
//! `now` in, datagrams and events out; the session owns its UDP socket and
//! saves its state ([`state_file`]) next to the resume files.
//!
//! | file | what |
//! | --- | --- |
//! | [`id`] | 160-bit node ids, XOR distance, bucket prefixes |
//! | [`krpc`] | the bencoded KRPC messages and compact node/peer formats |
//! | [`state_file`] | our id and known nodes, saved across restarts |
//! | [`routing`] | the routing table: k-buckets, node states, replacement |
//! | [`lookup`] | one iterative find_node / get_peers lookup |
//! | [`token`] | announce tokens from a rotating secret |
//! | [`peer_store`] | peers announced to us, bounded and expiring |
//! | `node` | the [`Dht`] state machine |
//! | `sim` | (tests) a simulated network of 1,000 nodes on a virtual clock |

pub mod id;
pub mod krpc;
pub mod lookup;
mod node;
pub mod peer_store;
pub mod routing;
#[cfg(test)]
mod sim;
pub mod state_file;
pub mod token;

pub use id::NodeId;
pub use node::{Dht, DhtEvent, DhtStats, Transmit};
