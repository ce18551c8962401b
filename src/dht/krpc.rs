//! KRPC, the DHT's message format (BEP 5): bencoded dictionaries over UDP.
//!
//! Layer 0: pure, no I/O, no clock. A message is a query (`y` = `q`: `ping`,
//! `find_node`, `get_peers`, `announce_peer`), a response (`y` = `r`) or an
//! error (`y` = `e`), with a transaction id `t` chosen by the querier and
//! echoed in the answer. Nodes travel as "compact node info" (20-byte id,
//! 4-byte IPv4 address, 2-byte port), peers as compact 6-byte entries.
//!
//! Every datagram comes from a stranger: decoding never panics, rejects a
//! datagram over [`MAX_DATAGRAM_LEN`] or nested deeper than the bencode
//! limits allow, and caps what it takes from one message (nodes, values).
//! Odd content that does not stop a message from being understood (a
//! `values` entry of the wrong length, unknown keys) is skipped, not fatal.
//!
//! STATUS: skeleton; the codec is being written (issue 15).

use std::fmt;
use std::net::SocketAddrV4;

use super::id::NodeId;

/// Largest datagram decoded; a larger one is dropped unread. A KRPC
/// message with 8 nodes and 50 peers is well under 1 KiB; 1500 bytes is
/// one Ethernet frame.
pub const MAX_DATAGRAM_LEN: usize = 1500;

/// Longest transaction id accepted (and echoed). Ours are 2 bytes; other
/// clients use up to 4 or 8.
pub const MAX_TRANSACTION_LEN: usize = 16;

/// Most peers taken from one `get_peers` response's `values` (the rest is
/// ignored): bounds what one reply can push into a peer list.
pub const MAX_VALUES: usize = 100;

/// Most nodes taken from one response's `nodes` (BEP 5 sends k = 8).
pub const MAX_NODES: usize = 16;

/// Longest `announce_peer` token accepted (ours are 8 bytes).
pub const MAX_TOKEN_LEN: usize = 32;

/// A 20-byte info-hash, as a lookup target or in `get_peers`/`announce_peer`.
pub type InfoHash = [u8; 20];

/// One decoded KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `t`: the transaction id, at most [`MAX_TRANSACTION_LEN`] bytes.
    pub transaction: Vec<u8>,
    /// What the message says.
    pub body: Body,
}

/// A query, a response or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y` = `q`.
    Query(Query),
    /// `y` = `r`. A response does not say which query it answers: the
    /// transaction id does.
    Response(Response),
    /// `y` = `e`: a code (201 generic, 202 server, 203 protocol, 204
    /// method unknown) and a message.
    Error {
        /// The error code.
        code: i64,
        /// The error text (lossy UTF-8, capped in length).
        message: String,
    },
}

/// A query, with the querying node's id (`a.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querier's id.
        id: NodeId,
    },
    /// `find_node`: the k closest nodes to `target`.
    FindNode {
        /// The querier's id.
        id: NodeId,
        /// The id looked for.
        target: NodeId,
    },
    /// `get_peers`: peers of `info_hash`, or the closest nodes to it.
    GetPeers {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
    },
    /// `announce_peer`: the querier downloads `info_hash` and listens on
    /// `port` (or, with `implied_port`, on the UDP source port).
    AnnouncePeer {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// The TCP port the querier accepts peers on.
        port: u16,
        /// `implied_port` = 1: use the datagram's source port instead.
        implied_port: bool,
        /// The token we gave it in a `get_peers` response.
        token: Vec<u8>,
    },
    /// A method we do not know (answered with error 204), with the
    /// querier's id when it sent a valid one.
    Unknown {
        /// The querier's id, if present and 20 bytes.
        id: Option<NodeId>,
    },
}

impl Query {
    /// The querier's id, if it sent a valid one.
    pub fn sender(&self) -> Option<NodeId> {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => Some(*id),
            Query::Unknown { id } => *id,
        }
    }
}

/// A response's fields (`r`): every field but `id` is optional, and which
/// ones matter depends on the query it answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// `nodes`: compact IPv4 node infos, at most [`MAX_NODES`].
    pub nodes: Vec<CompactNode>,
    /// `values`: compact IPv4 peers, at most [`MAX_VALUES`]; entries of the
    /// wrong length (or port 0) are skipped.
    pub values: Vec<SocketAddrV4>,
    /// `token`: for a later `announce_peer` to this node.
    pub token: Option<Vec<u8>>,
}

/// A node's id and IPv4 address ("compact node info", 26 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompactNode {
    /// The node's id.
    pub id: NodeId,
    /// Where it answers.
    pub addr: SocketAddrV4,
}

/// Why a datagram is not a KRPC message we can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KrpcError {
    /// Over [`MAX_DATAGRAM_LEN`].
    TooLong(usize),
    /// Not a bencoded dictionary within the limits.
    NotBencode,
    /// A required key is missing or has the wrong type or length.
    Malformed(&'static str),
}

impl fmt::Display for KrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KrpcError::TooLong(len) => write!(f, "datagram of {len} bytes is too long"),
            KrpcError::NotBencode => write!(f, "not a bencoded dictionary"),
            KrpcError::Malformed(what) => write!(f, "malformed KRPC message: {what}"),
        }
    }
}

impl std::error::Error for KrpcError {}

/// Decodes one datagram.
pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
    let _ = bytes;
    Err(KrpcError::NotBencode) // SKELETON: the codec helper writes this
}

/// Encodes `message` as the bencoded dictionary BEP 5 describes (keys in
/// sorted order, our client version `v` included).
pub fn encode(message: &Message) -> Vec<u8> {
    let _ = message;
    Vec::new() // SKELETON: the codec helper writes this
}
