//! DHT (BEP 5) test doubles speaking KRPC through pollen's own codec
//! (`pollen::dht::krpc`), on a UDP socket in 127.0.0.0/8:
//! - [`ScriptedNode`], a node that knows no other node and no peer, gives a
//!   token to every `get_peers`, and records every query it gets: as the only
//!   bootstrap node of a client, it sees everything that client looks up and
//!   announces;
//! - [`Probe`], which asks nodes `get_peers` directly, to wait (with a
//!   deadline) until an announce is stored somewhere. Once it has asked, it
//!   is in the nodes' routing tables and they may ask it in turn (a lookup
//!   that starts while the table holds little else may ask only the probe):
//!   it answers like an honest node that stores nothing, with the nodes it
//!   has heard from and no token, so no announce is ever lost on it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use pollen::dht::krpc::{self, Body, CompactNode, Message, Query, Response};
use pollen::dht::NodeId;
use pollen::rng::Rng;

use super::process::wait_for;

/// How long one receive waits before the caller's condition is looked at again.
const RECV_SLICE: Duration = Duration::from_millis(50);

/// The token a scripted node or probe hands out.
pub const TOKEN: &[u8] = b"test-token";

/// One query a [`ScriptedNode`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Who sent it.
    pub from: SocketAddr,
    /// `ping`, `find_node`, `get_peers`, `announce_peer` or `unknown`.
    pub method: &'static str,
    /// The info-hash of a `get_peers` or `announce_peer`.
    pub info_hash: Option<[u8; 20]>,
    /// An `announce_peer`'s port and `implied_port`.
    pub port: Option<(u16, bool)>,
    /// An `announce_peer`'s token.
    pub token: Option<Vec<u8>>,
}

/// A KRPC node that knows nobody and records what it is asked.
pub struct ScriptedNode {
    socket: UdpSocket,
    id: NodeId,
    /// Every query so far, in order.
    pub seen: Vec<Seen>,
    /// Datagrams that did not decode, with the decoder's reason.
    pub undecoded: Vec<(Vec<u8>, String)>,
}

impl ScriptedNode {
    /// A node on `ip`, port 0 (read it back with [`ScriptedNode::addr`]).
    pub fn bind(ip: Ipv4Addr, seed: u64) -> ScriptedNode {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket.set_read_timeout(Some(RECV_SLICE)).unwrap();
        ScriptedNode {
            socket,
            id: NodeId::random(&mut Rng::new(seed)),
            seen: Vec::new(),
            undecoded: Vec::new(),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Answers and records queries until `done(&self.seen)` holds (true)
    /// or `limit` passes (false).
    pub fn serve_until(&mut self, limit: Duration, mut done: impl FnMut(&[Seen]) -> bool) -> bool {
        let mut buf = [0u8; 2048];
        wait_for(limit, || {
            if let Ok((len, from)) = self.socket.recv_from(&mut buf) {
                let bytes = &buf[..len];
                match krpc::decode(bytes) {
                    Ok(message) => {
                        if let Body::Query(query) = &message.body {
                            self.seen.push(seen(from, query));
                            answer(&self.socket, self.id, from, &message, query);
                        }
                    }
                    Err(e) => self.undecoded.push((bytes.to_vec(), e.to_string())),
                }
            }
            done(&self.seen)
        })
    }

    /// Serves until an `announce_peer` for `info_hash` arrives (or `limit`
    /// passes), then asserts it did and that every datagram decoded;
    /// `log` (the announcer's output) goes in the failure message.
    pub fn expect_announce(
        &mut self,
        limit: Duration,
        info_hash: [u8; 20],
        log: impl Fn() -> String,
    ) {
        let hash = Some(info_hash);
        let announced = self.serve_until(limit, |seen| {
            seen.iter()
                .any(|q| q.method == "announce_peer" && q.info_hash == hash)
        });
        assert!(
            announced,
            "no announce_peer within {limit:?}; queries: {:?}\n{}",
            self.seen,
            log()
        );
        assert!(self.undecoded.is_empty(), "{:?}", self.undecoded);
    }
}

/// What `query` from `from` says, for the record.
fn seen(from: SocketAddr, query: &Query) -> Seen {
    let mut record = Seen {
        from,
        method: "unknown",
        info_hash: None,
        port: None,
        token: None,
    };
    match query {
        Query::Ping { .. } => record.method = "ping",
        Query::FindNode { .. } => record.method = "find_node",
        Query::GetPeers { info_hash, .. } => {
            record.method = "get_peers";
            record.info_hash = Some(*info_hash);
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            ..
        } => {
            record.method = "announce_peer";
            record.info_hash = Some(*info_hash);
            record.port = Some((*port, *implied_port));
            record.token = Some(token.clone());
        }
        Query::Unknown { .. } => {}
    }
    record
}

/// Answers `query` (from `from`, in `message`) as a node that knows no
/// other node and no peer: `get_peers` gets [`TOKEN`], an unknown method
/// error 204, everything else a bare response with our id.
pub fn answer(socket: &UdpSocket, id: NodeId, from: SocketAddr, message: &Message, query: &Query) {
    let body = match query {
        Query::Unknown { .. } => Body::Error {
            code: 204,
            message: "Method Unknown".to_string(),
        },
        Query::GetPeers { .. } => Body::Response(Response {
            id,
            token: Some(TOKEN.to_vec()),
            ..Response::default()
        }),
        _ => Body::Response(Response {
            id,
            ..Response::default()
        }),
    };
    let reply = Message {
        transaction: message.transaction.clone(),
        body,
    };
    let _ = socket.send_to(&krpc::encode(&reply), from);
}

/// A KRPC client on 127.0.0.1 that asks nodes for peers, answering the
/// queries that reach it meanwhile (see the module doc).
pub struct Probe {
    socket: UdpSocket,
    id: NodeId,
    next_transaction: u16,
    /// Every node it has heard from (answers and queries), for its answers.
    known: Vec<CompactNode>,
}

/// How long the probe waits for answers to one round of `get_peers`.
const PROBE_ROUND: Duration = Duration::from_millis(500);

impl Probe {
    pub fn new() -> Probe {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_read_timeout(Some(RECV_SLICE)).unwrap();
        Probe {
            socket,
            id: NodeId::random(&mut Rng::new(0x0d47)),
            next_transaction: 0,
            known: Vec::new(),
        }
    }

    /// One round: `get_peers` for `info_hash` to every node in `nodes`;
    /// the peers their answers list (within [`PROBE_ROUND`]).
    pub fn peers(&mut self, nodes: &[SocketAddrV4], info_hash: [u8; 20]) -> Vec<SocketAddrV4> {
        for node in nodes {
            self.next_transaction = self.next_transaction.wrapping_add(1);
            let query = Message {
                transaction: self.next_transaction.to_be_bytes().to_vec(),
                body: Body::Query(Query::GetPeers {
                    id: self.id,
                    info_hash,
                }),
            };
            self.socket.send_to(&krpc::encode(&query), node).unwrap();
        }
        let mut found = Vec::new();
        let deadline = Instant::now() + PROBE_ROUND;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(message) = krpc::decode(&buf[..len]) else {
                continue;
            };
            let sender = match &message.body {
                Body::Response(response) => {
                    found.extend(response.values.iter().copied());
                    Some(response.id)
                }
                Body::Query(query) => {
                    self.answer(from, &message, query);
                    query.sender()
                }
                Body::Error { .. } => None,
            };
            if let (Some(id), SocketAddr::V4(addr)) = (sender, from) {
                if !self.known.iter().any(|n| n.addr == addr) {
                    self.known.push(CompactNode { id, addr });
                }
            }
        }
        found
    }

    /// Answers `query` as a node that stores nothing: the nodes it knows
    /// (at most 8), no token, error 204 for an unknown method.
    fn answer(&self, from: SocketAddr, message: &Message, query: &Query) {
        let body = match query {
            Query::Unknown { .. } => Body::Error {
                code: 204,
                message: "Method Unknown".to_string(),
            },
            Query::FindNode { .. } | Query::GetPeers { .. } => Body::Response(Response {
                id: self.id,
                nodes: self.known.iter().take(8).copied().collect(),
                ..Response::default()
            }),
            Query::Ping { .. } | Query::AnnouncePeer { .. } => Body::Response(Response {
                id: self.id,
                ..Response::default()
            }),
        };
        let reply = Message {
            transaction: message.transaction.clone(),
            body,
        };
        let _ = self.socket.send_to(&krpc::encode(&reply), from);
    }

    /// Waits up to `limit` until some node in `nodes` lists `peer` for
    /// `info_hash`; panics otherwise.
    pub fn wait_until_announced(
        &mut self,
        nodes: &[SocketAddrV4],
        info_hash: [u8; 20],
        peer: SocketAddrV4,
        limit: Duration,
    ) {
        let found = wait_for(limit, || self.peers(nodes, info_hash).contains(&peer));
        let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
        assert!(found, "no node lists {peer} for {hex} after {limit:?}");
    }
}
