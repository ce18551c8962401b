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
//! Odd content that does not stop a message from being understood is
//! skipped, not fatal: unknown keys, a `values` entry that is not 6 bytes
//! (IPv6 ones included) or has port 0, a node with port 0, a trailing
//! partial node, a response `token` over [`MAX_TOKEN_LEN`]. What a message
//! cannot do without is an error: `t` (at most [`MAX_TRANSACTION_LEN`]),
//! `y`, a query's `q` and (for the four known methods) `a.id` and the
//! method's arguments, a response's `r.id`, an error's code and text. An
//! unknown method is still a message ([`Query::Unknown`]) so the node can
//! answer error 204 with the right transaction id.
//!
//! Every message we send carries `v` = [`CLIENT_VERSION`], and keys are
//! written in sorted order (the bencode encoder sorts them).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::id::{NodeId, ID_LEN};
use crate::bencode::{self, Dict, Limits, List, Strictness, Value};

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

/// Longest error text kept from a `y` = `e` message, in bytes (it is only
/// logged).
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// Bytes of one compact node info: 20-byte id, IPv4 address, port.
pub const COMPACT_NODE_LEN: usize = ID_LEN + COMPACT_PEER_LEN;

/// Bytes of one compact IPv4 peer: address and port, big-endian.
pub const COMPACT_PEER_LEN: usize = 6;

/// Our `v` key: two letters naming the client and two version bytes
/// (major, minor), the convention libtorrent and others follow. `PO` is
/// pollen's letters in its peer id (`-PO0100-`); 0.1 is its version.
pub const CLIENT_VERSION: &[u8; 4] = b"PO\x00\x01";

/// Bencode limits for one datagram. A KRPC message is a dictionary whose
/// `a`/`r`/`e` value holds strings and at most one list (`values`): depth
/// 3 is all BEP 5 needs; 8 leaves room for other extensions' keys. A
/// 1500-byte datagram holds at most 750 values (`0:`), and a full
/// `get_peers` answer about 200: 512 tokens cover it.
const KRPC_LIMITS: Limits = Limits {
    max_depth: 8,
    max_tokens: 512,
    strictness: Strictness::Lenient,
};

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

/// Decodes one datagram; see the module doc for what is skipped and what
/// is an error.
pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
    if bytes.len() > MAX_DATAGRAM_LEN {
        return Err(KrpcError::TooLong(bytes.len()));
    }
    let value = bencode::decode(bytes, KRPC_LIMITS).map_err(|_| KrpcError::NotBencode)?;
    let dict = value.as_dict().ok_or(KrpcError::NotBencode)?;
    let transaction = dict
        .get_bytes(b"t")
        .filter(|t| t.len() <= MAX_TRANSACTION_LEN)
        .ok_or(KrpcError::Malformed("t"))?
        .to_vec();
    let body = match dict.get_bytes(b"y") {
        Some(b"q") => Body::Query(decode_query(dict)?),
        Some(b"r") => Body::Response(decode_response(dict)?),
        Some(b"e") => decode_error(dict)?,
        _ => return Err(KrpcError::Malformed("y")),
    };
    Ok(Message { transaction, body })
}

/// The query in `q` and `a`. An unknown method is [`Query::Unknown`] (its
/// arguments unread but the id), so the node can answer error 204.
fn decode_query(dict: &Dict<'_>) -> Result<Query, KrpcError> {
    let method = dict.get_bytes(b"q").ok_or(KrpcError::Malformed("q"))?;
    let args = dict.get_dict(b"a");
    let id = args
        .and_then(|a| a.get_bytes(b"id"))
        .and_then(NodeId::from_slice);
    let known = matches!(
        method,
        b"ping" | b"find_node" | b"get_peers" | b"announce_peer"
    );
    if !known {
        return Ok(Query::Unknown { id });
    }
    let args = args.ok_or(KrpcError::Malformed("a"))?;
    let id = id.ok_or(KrpcError::Malformed("a.id"))?;
    Ok(match method {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: NodeId(id_arg(args, b"target", "a.target")?),
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: id_arg(args, b"info_hash", "a.info_hash")?,
        },
        _ => decode_announce(id, args)?,
    })
}

/// A 20-byte argument of a query.
fn id_arg(args: &Dict<'_>, key: &[u8], what: &'static str) -> Result<[u8; ID_LEN], KrpcError> {
    args.get_bytes(key)
        .and_then(|b| b.try_into().ok())
        .ok_or(KrpcError::Malformed(what))
}

/// `announce_peer`'s arguments. With `implied_port` set the `port` is not
/// used, so it may be missing (it is then 0); without it, the port must be
/// 1 to 65535.
fn decode_announce(id: NodeId, args: &Dict<'_>) -> Result<Query, KrpcError> {
    let info_hash = id_arg(args, b"info_hash", "a.info_hash")?;
    let implied_port = args.get_int(b"implied_port").is_some_and(|n| n != 0);
    let port = match args.get_int(b"port") {
        Some(n) => u16::try_from(n).map_err(|_| KrpcError::Malformed("a.port"))?,
        None => 0,
    };
    if port == 0 && !implied_port {
        return Err(KrpcError::Malformed("a.port"));
    }
    let token = args
        .get_bytes(b"token")
        .filter(|t| t.len() <= MAX_TOKEN_LEN)
        .ok_or(KrpcError::Malformed("a.token"))?
        .to_vec();
    Ok(Query::AnnouncePeer {
        id,
        info_hash,
        port,
        implied_port,
        token,
    })
}

/// The response in `r`: `id` is required, the rest is taken when usable.
fn decode_response(dict: &Dict<'_>) -> Result<Response, KrpcError> {
    let r = dict.get_dict(b"r").ok_or(KrpcError::Malformed("r"))?;
    let id = r
        .get_bytes(b"id")
        .and_then(NodeId::from_slice)
        .ok_or(KrpcError::Malformed("r.id"))?;
    let nodes = decode_nodes(r.get_bytes(b"nodes").unwrap_or_default(), MAX_NODES);
    let values = r.get_list(b"values").map(decode_values).unwrap_or_default();
    let token = r
        .get_bytes(b"token")
        .filter(|t| t.len() <= MAX_TOKEN_LEN)
        .map(<[u8]>::to_vec);
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

/// The good 6-byte entries of a `values` list, at most [`MAX_VALUES`].
fn decode_values(list: &List<'_>) -> Vec<SocketAddrV4> {
    list.items
        .iter()
        .filter_map(Value::as_bytes)
        .filter_map(decode_peer)
        .take(MAX_VALUES)
        .collect()
}

/// The error in `e`: a list of a code and a message.
fn decode_error(dict: &Dict<'_>) -> Result<Body, KrpcError> {
    let items = &dict.get_list(b"e").ok_or(KrpcError::Malformed("e"))?.items;
    let code = items
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::Malformed("e code"))?;
    let text = items
        .get(1)
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Malformed("e message"))?;
    let text = text.get(..MAX_ERROR_MESSAGE_LEN).unwrap_or(text);
    Ok(Body::Error {
        code,
        message: String::from_utf8_lossy(text).into_owned(),
    })
}

/// The compact node infos in `bytes`, at most `max` of them. A trailing
/// partial entry is ignored, and so is a node with port 0 (it cannot be
/// reached).
pub fn decode_nodes(bytes: &[u8], max: usize) -> Vec<CompactNode> {
    bytes
        .chunks_exact(COMPACT_NODE_LEN)
        .filter_map(CompactNode::from_compact)
        .take(max)
        .collect()
}

/// The compact node infos of `nodes`, 26 bytes each.
pub fn encode_nodes(nodes: &[CompactNode]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * COMPACT_NODE_LEN);
    for node in nodes {
        out.extend_from_slice(&node.to_compact());
    }
    out
}

/// A compact peer: 6 bytes, port not 0.
fn decode_peer(bytes: &[u8]) -> Option<SocketAddrV4> {
    let bytes: [u8; COMPACT_PEER_LEN] = bytes.try_into().ok()?;
    let [a, b, c, d, p1, p2] = bytes;
    let port = u16::from_be_bytes([p1, p2]);
    (port != 0).then(|| SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port))
}

/// The 6 bytes of a compact peer.
fn encode_peer(addr: &SocketAddrV4) -> [u8; COMPACT_PEER_LEN] {
    let [a, b, c, d] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    [a, b, c, d, p1, p2]
}

impl CompactNode {
    /// The node in one 26-byte compact node info; `None` for another
    /// length or port 0.
    pub fn from_compact(bytes: &[u8]) -> Option<CompactNode> {
        let id = NodeId::from_slice(bytes.get(..ID_LEN)?)?;
        let addr = decode_peer(bytes.get(ID_LEN..)?)?;
        Some(CompactNode { id, addr })
    }

    /// The node's 26-byte compact node info.
    pub fn to_compact(&self) -> [u8; COMPACT_NODE_LEN] {
        let mut out = [0u8; COMPACT_NODE_LEN];
        let (id, addr) = out.split_at_mut(ID_LEN);
        id.copy_from_slice(&self.id.0);
        addr.copy_from_slice(&encode_peer(&self.addr));
        out
    }
}

/// Encodes `message` as the bencoded dictionary BEP 5 describes (keys in
/// sorted order, our client version `v` included). Empty `nodes` and
/// `values` and a false `implied_port` are left out. [`Query::Unknown`]
/// (never sent by the node; encoded for tests) has the method `unknown`.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut entries: Vec<(&[u8], Value<'_>)> = vec![
        (b"t", Value::Bytes(&message.transaction)),
        (b"v", Value::Bytes(CLIENT_VERSION)),
    ];
    // Owned bytes the dictionary borrows: compact nodes and peers.
    let nodes;
    let values: Vec<[u8; COMPACT_PEER_LEN]>;
    match &message.body {
        Body::Query(query) => {
            entries.push((b"y", Value::Bytes(b"q")));
            let (method, args) = query_args(query);
            entries.push((b"q", Value::Bytes(method)));
            entries.push((b"a", Value::Dict(Dict::new(args))));
        }
        Body::Response(response) => {
            entries.push((b"y", Value::Bytes(b"r")));
            nodes = encode_nodes(&response.nodes);
            values = response.values.iter().map(encode_peer).collect();
            let mut r: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::Bytes(&response.id.0))];
            if !nodes.is_empty() {
                r.push((b"nodes", Value::Bytes(&nodes)));
            }
            if !values.is_empty() {
                let items = values.iter().map(|v| Value::Bytes(v)).collect();
                r.push((b"values", Value::List(List::new(items))));
            }
            if let Some(token) = &response.token {
                r.push((b"token", Value::Bytes(token)));
            }
            entries.push((b"r", Value::Dict(Dict::new(r))));
        }
        Body::Error { code, message } => {
            entries.push((b"y", Value::Bytes(b"e")));
            let items = vec![Value::Int(*code), Value::Bytes(message.as_bytes())];
            entries.push((b"e", Value::List(List::new(items))));
        }
    }
    bencode::encode(&Value::Dict(Dict::new(entries)))
}

/// A query's method name and its `a` dictionary's entries.
fn query_args(query: &Query) -> (&'static [u8], Vec<(&'static [u8], Value<'_>)>) {
    match query {
        Query::Ping { id } => (b"ping", vec![(b"id", Value::Bytes(&id.0))]),
        Query::FindNode { id, target } => (
            b"find_node",
            vec![
                (b"id", Value::Bytes(&id.0)),
                (b"target", Value::Bytes(&target.0)),
            ],
        ),
        Query::GetPeers { id, info_hash } => (
            b"get_peers",
            vec![
                (b"id", Value::Bytes(&id.0)),
                (b"info_hash", Value::Bytes(info_hash)),
            ],
        ),
        Query::AnnouncePeer {
            id,
            info_hash,
            port,
            implied_port,
            token,
        } => {
            let mut args: Vec<(&'static [u8], Value<'_>)> = vec![
                (b"id", Value::Bytes(&id.0)),
                (b"info_hash", Value::Bytes(info_hash)),
                (b"port", Value::Int(i64::from(*port))),
                (b"token", Value::Bytes(token)),
            ];
            if *implied_port {
                args.push((b"implied_port", Value::Int(1)));
            }
            (b"announce_peer", args)
        }
        Query::Unknown { id } => {
            let args = id
                .as_ref()
                .map(|id| (&b"id"[..], Value::Bytes(&id.0)))
                .into_iter()
                .collect();
            (b"unknown", args)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERIER: &[u8; 20] = b"abcdefghij0123456789";
    const OTHER: &[u8; 20] = b"mnopqrstuvwxyz123456";

    fn msg(body: Body) -> Message {
        Message {
            transaction: b"aa".to_vec(),
            body,
        }
    }

    fn node(n: u8) -> CompactNode {
        CompactNode {
            id: NodeId([n; 20]),
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 6881 + u16::from(n)),
        }
    }

    fn peer(n: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, n), 50_000 + u16::from(n))
    }

    /// The BEP 5 examples (the ones with real bytes) and what they mean.
    fn bep5_examples() -> Vec<(&'static [u8], Message)> {
        vec![
            (
                b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
                msg(Body::Query(Query::Ping {
                    id: NodeId(*QUERIER),
                })),
            ),
            (
                b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
                msg(Body::Response(Response {
                    id: NodeId(*OTHER),
                    ..Response::default()
                })),
            ),
            (
                b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
                msg(Body::Query(Query::FindNode {
                    id: NodeId(*QUERIER),
                    target: NodeId(*OTHER),
                })),
            ),
            (
                b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
                msg(Body::Query(Query::GetPeers {
                    id: NodeId(*QUERIER),
                    info_hash: *OTHER,
                })),
            ),
            (
                b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
                msg(Body::Response(Response {
                    id: NodeId(*QUERIER),
                    nodes: Vec::new(),
                    values: vec![
                        SocketAddrV4::new(Ipv4Addr::new(97, 120, 106, 101), 0x2e75),
                        SocketAddrV4::new(Ipv4Addr::new(105, 100, 104, 116), 0x6e6d),
                    ],
                    token: Some(b"aoeusnth".to_vec()),
                })),
            ),
            (
                b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
                msg(Body::Query(Query::AnnouncePeer {
                    id: NodeId(*QUERIER),
                    info_hash: *OTHER,
                    port: 6881,
                    implied_port: true,
                    token: b"aoeusnth".to_vec(),
                })),
            ),
            (
                b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
                msg(Body::Error {
                    code: 201,
                    message: "A Generic Error Ocurred".to_string(),
                }),
            ),
        ]
    }

    /// `bep` with our `v` key where sorted order puts it: after `t`.
    fn with_our_version(bep: &[u8]) -> Vec<u8> {
        let t = b"1:t2:aa";
        let at = bep
            .windows(t.len())
            .position(|w| w == t)
            .map(|p| p + t.len())
            .unwrap();
        let mut out = bep[..at].to_vec();
        out.extend_from_slice(b"1:v4:");
        out.extend_from_slice(CLIENT_VERSION);
        out.extend_from_slice(&bep[at..]);
        out
    }

    /// One message of every kind, with every optional field used somewhere.
    fn every_kind() -> Vec<Message> {
        let id = NodeId([7; 20]);
        let mut all: Vec<Message> = bep5_examples().into_iter().map(|(_, m)| m).collect();
        all.extend([
            msg(Body::Query(Query::AnnouncePeer {
                id,
                info_hash: [9; 20],
                port: 51_413,
                implied_port: false,
                token: vec![0, 1, 2, 255],
            })),
            msg(Body::Query(Query::Unknown { id: Some(id) })),
            msg(Body::Query(Query::Unknown { id: None })),
            msg(Body::Response(Response {
                id,
                nodes: (1..=8).map(node).collect(),
                values: Vec::new(),
                token: Some(vec![1; 8]),
            })),
            msg(Body::Response(Response {
                id,
                nodes: (1..=3).map(node).collect(),
                values: (1..=5).map(peer).collect(),
                token: None,
            })),
            Message {
                transaction: vec![0xff; MAX_TRANSACTION_LEN],
                body: Body::Error {
                    code: 204,
                    message: "Method Unknown".to_string(),
                },
            },
            Message {
                transaction: Vec::new(),
                body: Body::Error {
                    code: -1,
                    message: String::new(),
                },
            },
        ]);
        all
    }

    #[test]
    fn decodes_the_bep5_examples() {
        for (bytes, expected) in bep5_examples() {
            assert_eq!(
                decode(bytes),
                Ok(expected),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn encodes_the_bep5_examples_byte_for_byte_plus_our_version() {
        for (bep, message) in bep5_examples() {
            assert_eq!(
                encode(&message),
                with_our_version(bep),
                "{}",
                String::from_utf8_lossy(bep)
            );
        }
    }

    #[test]
    fn round_trips_every_message_kind() {
        for message in every_kind() {
            let bytes = encode(&message);
            assert!(bytes.len() <= MAX_DATAGRAM_LEN);
            assert_eq!(decode(&bytes), Ok(message));
        }
    }

    #[test]
    fn a_full_response_fits_one_datagram_and_round_trips() {
        let message = msg(Body::Response(Response {
            id: NodeId([1; 20]),
            nodes: (1..=u8::try_from(MAX_NODES).unwrap()).map(node).collect(),
            values: (1..=u8::try_from(MAX_VALUES).unwrap()).map(peer).collect(),
            token: Some(vec![3; MAX_TOKEN_LEN]),
        }));
        let bytes = encode(&message);
        assert!(bytes.len() <= MAX_DATAGRAM_LEN, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Ok(message));
    }

    #[test]
    fn every_truncation_and_every_tail_of_a_message_is_an_error_without_panicking() {
        for message in every_kind() {
            let bytes = encode(&message);
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
                // A tail is garbage: whatever it decodes to, no panic.
                let _ = decode(&bytes[cut + 1..]);
            }
        }
    }

    #[test]
    fn flipping_any_byte_never_panics() {
        for message in every_kind() {
            let bytes = encode(&message);
            for at in 0..bytes.len() {
                for flip in [0x01, 0x10, 0x80, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[at] ^= flip;
                    let _ = decode(&damaged);
                }
            }
        }
    }

    #[test]
    fn decode_rejects_garbage_and_non_dictionaries() {
        for bytes in [
            &b""[..],
            b"garbage",
            b"i42e",
            b"4:spam",
            b"le",
            b"de",
            b"d1:t2:aae",
            b"\x00\x01\x02",
            b"d1:t2:aa1:y1:qe",
            b"d1:t2:aa1:y1:xe",
            b"d1:t2:aa1:y1:re",
            b"d1:rde1:t2:aa1:y1:re",
            b"d1:t2:aa1:y1:ee",
            b"d1:eli201ee1:t2:aa1:y1:ee",
            b"d1:el3:abce1:t2:aa1:y1:ee",
            b"d1:t2:aa1:y1:q1:y1:qe",
        ] {
            assert!(decode(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn decode_rejects_an_oversized_datagram_unread() {
        let mut bytes = encode(&every_kind()[0]);
        bytes.resize(MAX_DATAGRAM_LEN + 1, b' ');
        assert_eq!(
            decode(&bytes),
            Err(KrpcError::TooLong(MAX_DATAGRAM_LEN + 1))
        );
    }

    #[test]
    fn decode_rejects_deep_nesting_and_huge_length_prefixes() {
        let mut deep = b"d1:ad2:id20:abcdefghij01234567891:x".to_vec();
        deep.extend(std::iter::repeat_n(b'l', 500));
        deep.extend(std::iter::repeat_n(b'e', 500));
        deep.extend_from_slice(b"e1:q4:ping1:t2:aa1:y1:qe");
        assert_eq!(decode(&deep), Err(KrpcError::NotBencode));
        for bytes in [
            &b"d1:t99999999999999999999:aae"[..],
            b"d1:t18446744073709551616:aae",
            b"d1:t4294967296:aa1:y1:qe",
            b"d1:ad2:id999999:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        ] {
            assert_eq!(decode(bytes), Err(KrpcError::NotBencode));
        }
    }

    #[test]
    fn decode_rejects_more_values_than_the_token_limit() {
        let mut bytes = b"d1:rd2:id20:abcdefghij01234567891:xl".to_vec();
        bytes.extend(std::iter::repeat_n(&b"0:"[..], 600).flatten());
        bytes.extend_from_slice(b"ee1:t2:aa1:y1:re");
        assert!(bytes.len() <= MAX_DATAGRAM_LEN);
        assert_eq!(decode(&bytes), Err(KrpcError::NotBencode));
    }

    #[test]
    fn unknown_keys_and_unsorted_keys_are_accepted() {
        let bytes = b"d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:abcdefghij01234567894:wantl2:n4e1:xld1:ali1eeeee1:v4:LT\x01\x02e";
        assert_eq!(
            decode(bytes),
            Ok(msg(Body::Query(Query::Ping {
                id: NodeId(*QUERIER)
            })))
        );
    }

    #[test]
    fn values_with_garbage_entries_yield_only_the_good_ones() {
        let good = encode_peer(&peer(1));
        let also_good = encode_peer(&peer(2));
        let mut list = b"d1:rd2:id20:abcdefghij01234567896:valuesl".to_vec();
        list.extend_from_slice(b"6:");
        list.extend_from_slice(&good);
        list.extend_from_slice(b"5:abcde7:abcdefg18:abcdefghijklmnopqr0:i7eli1ee");
        list.extend_from_slice(b"6:\x01\x02\x03\x04\x00\x00"); // port 0
        list.extend_from_slice(b"6:");
        list.extend_from_slice(&also_good);
        list.extend_from_slice(b"ee1:t2:aa1:y1:re");
        let message = decode(&list).unwrap();
        let Body::Response(response) = message.body else {
            panic!("not a response")
        };
        assert_eq!(response.values, vec![peer(1), peer(2)]);
    }

    #[test]
    fn values_that_are_not_a_list_are_ignored() {
        let bytes = b"d1:rd2:id20:abcdefghij01234567896:values6:abcdefe1:t2:aa1:y1:re";
        let Body::Response(response) = decode(bytes).unwrap().body else {
            panic!("not a response")
        };
        assert!(response.values.is_empty());
    }

    #[test]
    fn values_are_capped_at_max_values() {
        let mut bytes = b"d1:rd2:id20:abcdefghij01234567896:valuesl".to_vec();
        for n in 1..=u8::try_from(MAX_VALUES + 20).unwrap() {
            bytes.extend_from_slice(b"6:");
            bytes.extend_from_slice(&encode_peer(&peer(n)));
        }
        bytes.extend_from_slice(b"ee1:t2:aa1:y1:re");
        let Body::Response(response) = decode(&bytes).unwrap().body else {
            panic!("not a response")
        };
        assert_eq!(response.values.len(), MAX_VALUES);
        assert_eq!(response.values[0], peer(1));
    }

    #[test]
    fn nodes_are_cut_at_the_last_whole_entry_and_capped() {
        let three = encode_nodes(&[node(1), node(2), node(3)]);
        assert_eq!(
            decode_nodes(&three[..3 * 26 - 1], 16),
            vec![node(1), node(2)]
        );
        assert_eq!(decode_nodes(&three[..25], 16), vec![]);
        assert_eq!(decode_nodes(&three, 2), vec![node(1), node(2)]);
        let many: Vec<CompactNode> = (1..=20).map(node).collect();
        let bytes = msg(Body::Response(Response {
            id: NodeId([1; 20]),
            nodes: many.clone(),
            ..Response::default()
        }));
        let Body::Response(response) = decode(&encode(&bytes)).unwrap().body else {
            panic!("not a response")
        };
        assert_eq!(response.nodes, many[..MAX_NODES].to_vec());
    }

    #[test]
    fn a_node_with_port_zero_is_skipped() {
        let mut zero = node(2);
        zero.addr.set_port(0);
        let bytes = encode_nodes(&[node(1), zero, node(3)]);
        assert_eq!(decode_nodes(&bytes, 16), vec![node(1), node(3)]);
    }

    #[test]
    fn compact_node_round_trips() {
        let n = node(42);
        assert_eq!(CompactNode::from_compact(&n.to_compact()), Some(n));
        assert_eq!(CompactNode::from_compact(&n.to_compact()[..25]), None);
    }

    #[test]
    fn an_unknown_method_keeps_its_transaction_and_sender() {
        let bytes = b"d1:ad2:id20:abcdefghij01234567891:xi1ee1:q9:vote_four1:t4:wxyz1:y1:qe";
        assert_eq!(
            decode(bytes),
            Ok(Message {
                transaction: b"wxyz".to_vec(),
                body: Body::Query(Query::Unknown {
                    id: Some(NodeId(*QUERIER))
                }),
            })
        );
        let no_args = b"d1:q3:put1:t2:zz1:y1:qe";
        assert_eq!(
            decode(no_args).map(|m| m.body),
            Ok(Body::Query(Query::Unknown { id: None }))
        );
        let short_id = b"d1:ad2:id3:abce1:q3:put1:t2:zz1:y1:qe";
        assert_eq!(
            decode(short_id).map(|m| m.body),
            Ok(Body::Query(Query::Unknown { id: None }))
        );
    }

    #[test]
    fn a_query_without_a_valid_sender_id_is_malformed() {
        for bytes in [
            &b"d1:ade1:q4:ping1:t2:aa1:y1:qe"[..],
            b"d1:q4:ping1:t2:aa1:y1:qe",
            b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe",
            b"d1:ad2:id21:abcdefghij0123456789Xe1:q9:find_node1:t2:aa1:y1:qe",
            b"d1:ad2:idi5ee1:q9:get_peers1:t2:aa1:y1:qe",
        ] {
            assert!(
                matches!(decode(bytes), Err(KrpcError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn query_arguments_must_be_whole() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"d1:ad2:id20:abcdefghij01234567896:target3:abce1:q9:find_node1:t2:aa1:y1:qe",
                "a.target",
            ),
            (
                b"d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:aa1:y1:qe",
                "a.info_hash",
            ),
            (
                b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee1:q13:announce_peer1:t2:aa1:y1:qe",
                "a.token",
            ),
            (
                b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
                "a.port",
            ),
        ];
        for (bytes, what) in cases {
            assert_eq!(decode(bytes), Err(KrpcError::Malformed(what)));
        }
    }

    #[test]
    fn announce_port_zero_needs_implied_port() {
        let without = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
        assert_eq!(decode(without), Err(KrpcError::Malformed("a.port")));
        let implied = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
        assert_eq!(
            decode(implied).map(|m| m.body),
            Ok(Body::Query(Query::AnnouncePeer {
                id: NodeId(*QUERIER),
                info_hash: *OTHER,
                port: 0,
                implied_port: true,
                token: b"x".to_vec(),
            }))
        );
    }

    #[test]
    fn an_announce_token_over_the_cap_is_malformed_and_a_response_token_is_dropped() {
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        let query = format!(
            "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token{}:{long}e1:q13:announce_peer1:t2:aa1:y1:qe",
            long.len()
        );
        assert_eq!(
            decode(query.as_bytes()),
            Err(KrpcError::Malformed("a.token"))
        );
        let response = format!(
            "d1:rd2:id20:abcdefghij01234567895:token{}:{long}e1:t2:aa1:y1:re",
            long.len()
        );
        let Body::Response(r) = decode(response.as_bytes()).unwrap().body else {
            panic!("not a response")
        };
        assert_eq!(r.token, None);
    }

    #[test]
    fn a_transaction_id_over_the_cap_is_malformed() {
        let t = "t".repeat(MAX_TRANSACTION_LEN + 1);
        let bytes = format!("d1:rd2:id20:abcdefghij0123456789e1:t{}:{t}1:y1:re", t.len());
        assert_eq!(decode(bytes.as_bytes()), Err(KrpcError::Malformed("t")));
    }

    #[test]
    fn an_error_text_is_capped_and_lossy() {
        let long = "e".repeat(MAX_ERROR_MESSAGE_LEN + 50);
        let bytes = format!("d1:eli202e{}:{long}e1:t2:aa1:y1:ee", long.len());
        let Body::Error { code, message } = decode(bytes.as_bytes()).unwrap().body else {
            panic!("not an error")
        };
        assert_eq!(code, 202);
        assert_eq!(message.len(), MAX_ERROR_MESSAGE_LEN);
        let bytes = b"d1:eli203e3:a\xffbe1:t2:aa1:y1:ee";
        assert_eq!(
            decode(bytes).map(|m| m.body),
            Ok(Body::Error {
                code: 203,
                message: "a\u{fffd}b".to_string()
            })
        );
    }
}
