//! Hand-made KRPC (BEP 5) for the DHT tests, written and read without
//! pollen's own codec so that the tests check the wire format on their own:
//! - builders for the four queries and for responses, bencode spelled out
//!   byte by byte (dictionary keys in sorted order, as BEP 3 requires);
//! - a small strict bencode reader ([`decode`]) that also says whether a
//!   datagram is canonical (sorted keys, no leading zeros), and [`Krpc`],
//!   a datagram read as a query, a response or an error;
//! - [`Node`], a UDP socket on a 127.0.0.0/8 address with a 20-byte id that
//!   asks a node something and waits (with a deadline, resending) for the
//!   answer carrying its transaction id.
//!
//! Used by `tests/dht_hostile.rs` through `#[path]`, so `tests/common/mod.rs`
//! is left alone.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Deepest nesting [`decode`] follows (KRPC needs three levels).
const MAX_DEPTH: usize = 32;

/// How long one receive waits before a resend or deadline is looked at.
const RECV_SLICE: Duration = Duration::from_millis(50);

/// How often [`Node::ask`] sends its query again (UDP may lose it, and a
/// rate-limited node drops it).
pub const RESEND_EVERY: Duration = Duration::from_millis(400);

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Benc {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Benc>),
    Dict(BTreeMap<Vec<u8>, Benc>),
}

impl Benc {
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Benc::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Benc::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn dict(&self) -> Option<&BTreeMap<Vec<u8>, Benc>> {
        match self {
            Benc::Dict(d) => Some(d),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Benc> {
        self.dict()?.get(key.as_bytes())
    }
}

/// A decoded datagram and whether its encoding was canonical (keys sorted
/// and unique, integers without leading zeros or `-0`).
pub struct Decoded {
    pub value: Benc,
    pub canonical: bool,
}

/// Reads one whole bencoded value from `bytes` (trailing bytes are an
/// error), or says why not.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let mut reader = Reader {
        bytes,
        at: 0,
        canonical: true,
    };
    let value = reader.value(0)?;
    if reader.at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - reader.at));
    }
    Ok(Decoded {
        value,
        canonical: reader.canonical,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    canonical: bool,
}

impl Reader<'_> {
    fn peek(&self) -> Result<u8, String> {
        self.bytes
            .get(self.at)
            .copied()
            .ok_or_else(|| "truncated".to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Benc, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        match self.peek()? {
            b'i' => {
                self.at += 1;
                let text = self.until(b'e')?;
                if text.starts_with("-0") || (text.starts_with('0') && text.len() > 1) {
                    self.canonical = false;
                }
                text.parse().map(Benc::Int).map_err(|e| format!("{e}"))
            }
            b'l' => {
                self.at += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.at += 1;
                Ok(Benc::List(list))
            }
            b'd' => {
                self.at += 1;
                let mut dict = BTreeMap::new();
                let mut last: Option<Vec<u8>> = None;
                while self.peek()? != b'e' {
                    let key = self.string()?;
                    if last.as_ref().is_some_and(|l| *l >= key) {
                        self.canonical = false;
                    }
                    last = Some(key.clone());
                    let value = self.value(depth + 1)?;
                    dict.insert(key, value);
                }
                self.at += 1;
                Ok(Benc::Dict(dict))
            }
            b'0'..=b'9' => self.string().map(Benc::Bytes),
            other => Err(format!("unexpected byte {other:#04x}")),
        }
    }

    fn until(&mut self, end: u8) -> Result<String, String> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|b| *b == end)
            .ok_or("truncated number")?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(text)
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let text = self.until(b':')?;
        if text.starts_with('0') && text.len() > 1 {
            self.canonical = false;
        }
        let len: usize = text.parse().map_err(|e| format!("length {text:?}: {e}"))?;
        let end = self.at.checked_add(len).ok_or("length overflow")?;
        let bytes = self.bytes.get(self.at..end).ok_or("truncated string")?;
        self.at = end;
        Ok(bytes.to_vec())
    }
}

/// `LEN:BYTES`.
pub fn bstr(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

/// `iNe`.
pub fn bint(n: i64) -> Vec<u8> {
    format!("i{n}e").into_bytes()
}

/// A dictionary from already-encoded values, keys sorted as bencode wants.
pub fn bdict(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let sorted: BTreeMap<&[u8], &[u8]> = entries
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_slice()))
        .collect();
    let mut out = b"d".to_vec();
    for (key, value) in sorted {
        out.extend(bstr(key));
        out.extend_from_slice(value);
    }
    out.push(b'e');
    out
}

/// A list of already-encoded values.
pub fn blist(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"l".to_vec();
    for item in items {
        out.extend_from_slice(item);
    }
    out.push(b'e');
    out
}

/// A query: `{"a": args, "q": method, "t": t, "y": "q"}`.
pub fn query(t: &[u8], method: &str, args: &[(&str, Vec<u8>)]) -> Vec<u8> {
    bdict(&[
        ("a", bdict(args)),
        ("q", bstr(method.as_bytes())),
        ("t", bstr(t)),
        ("y", bstr(b"q")),
    ])
}

/// `ping` from node `id`.
pub fn ping(t: &[u8], id: &[u8; 20]) -> Vec<u8> {
    query(t, "ping", &[("id", bstr(id))])
}

/// `find_node` for `target`.
pub fn find_node(t: &[u8], id: &[u8; 20], target: &[u8; 20]) -> Vec<u8> {
    query(
        t,
        "find_node",
        &[("id", bstr(id)), ("target", bstr(target))],
    )
}

/// `get_peers` for `info_hash`.
pub fn get_peers(t: &[u8], id: &[u8; 20], info_hash: &[u8; 20]) -> Vec<u8> {
    query(
        t,
        "get_peers",
        &[("id", bstr(id)), ("info_hash", bstr(info_hash))],
    )
}

/// `announce_peer` of `info_hash` on TCP `port` with `token`.
pub fn announce_peer(
    t: &[u8],
    id: &[u8; 20],
    info_hash: &[u8; 20],
    port: u16,
    token: &[u8],
) -> Vec<u8> {
    query(
        t,
        "announce_peer",
        &[
            ("id", bstr(id)),
            ("info_hash", bstr(info_hash)),
            ("port", bint(i64::from(port))),
            ("token", bstr(token)),
        ],
    )
}

/// A response: `{"r": {"id": id, ..fields}, "t": t, "y": "r"}`.
pub fn response(t: &[u8], id: &[u8; 20], fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut r = vec![("id", bstr(id))];
    r.extend(fields.iter().cloned());
    bdict(&[("r", bdict(&r)), ("t", bstr(t)), ("y", bstr(b"r"))])
}

/// An error: `{"e": [code, text], "t": t, "y": "e"}`.
pub fn error(t: &[u8], code: i64, text: &str) -> Vec<u8> {
    bdict(&[
        ("e", blist(&[bint(code), bstr(text.as_bytes())])),
        ("t", bstr(t)),
        ("y", bstr(b"e")),
    ])
}

/// Compact IPv4 peer info: 4 address bytes, 2 port bytes.
pub fn compact_peer(addr: SocketAddrV4) -> Vec<u8> {
    let mut out = addr.ip().octets().to_vec();
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// A KRPC datagram as read by [`Krpc::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Krpc {
    Query {
        t: Vec<u8>,
        method: Vec<u8>,
        args: Benc,
    },
    Response {
        t: Vec<u8>,
        r: Benc,
    },
    Error {
        t: Vec<u8>,
        code: i64,
        text: Vec<u8>,
    },
}

impl Krpc {
    /// Reads `bytes` as a KRPC message, strictly: canonical bencode, a
    /// dictionary with a string `t`, `y` one of `q`/`r`/`e` and the matching
    /// field of the right type.
    pub fn parse(bytes: &[u8]) -> Result<Krpc, String> {
        let decoded = decode(bytes)?;
        if !decoded.canonical {
            return Err("not canonical bencode".into());
        }
        let top = decoded.value;
        let t = top.get("t").and_then(Benc::bytes).ok_or("no string t")?;
        let t = t.to_vec();
        match top.get("y").and_then(Benc::bytes).ok_or("no string y")? {
            b"q" => Ok(Krpc::Query {
                t,
                method: top
                    .get("q")
                    .and_then(Benc::bytes)
                    .ok_or("no string q")?
                    .to_vec(),
                args: top
                    .get("a")
                    .filter(|a| a.dict().is_some())
                    .ok_or("no dict a")?
                    .clone(),
            }),
            b"r" => Ok(Krpc::Response {
                t,
                r: top
                    .get("r")
                    .filter(|r| r.dict().is_some())
                    .ok_or("no dict r")?
                    .clone(),
            }),
            b"e" => match top.get("e") {
                Some(Benc::List(items)) if items.len() == 2 => Ok(Krpc::Error {
                    t,
                    code: items[0].int().ok_or("error code not an int")?,
                    text: items[1].bytes().ok_or("error text not a string")?.to_vec(),
                }),
                _ => Err("e is not [code, text]".into()),
            },
            other => Err(format!("y = {:?}", String::from_utf8_lossy(other))),
        }
    }

    pub fn t(&self) -> &[u8] {
        match self {
            Krpc::Query { t, .. } | Krpc::Response { t, .. } | Krpc::Error { t, .. } => t,
        }
    }

    /// A response's `r.id`, if it is 20 bytes.
    pub fn responder_id(&self) -> Option<[u8; 20]> {
        match self {
            Krpc::Response { r, .. } => r.get("id")?.bytes()?.try_into().ok(),
            _ => None,
        }
    }

    /// A response's field `key` as bytes.
    pub fn field(&self, key: &str) -> Option<&[u8]> {
        match self {
            Krpc::Response { r, .. } => r.get(key)?.bytes(),
            _ => None,
        }
    }

    /// A response's `nodes` as (id, address) pairs; `Err` if its length is
    /// not a multiple of 26.
    pub fn nodes(&self) -> Result<Vec<([u8; 20], SocketAddrV4)>, String> {
        let Some(nodes) = self.field("nodes") else {
            return Ok(Vec::new());
        };
        if nodes.len() % 26 != 0 {
            return Err(format!("nodes of {} bytes", nodes.len()));
        }
        Ok(nodes
            .chunks(26)
            .map(|c| {
                let id: [u8; 20] = c[..20].try_into().unwrap();
                let ip = Ipv4Addr::new(c[20], c[21], c[22], c[23]);
                (
                    id,
                    SocketAddrV4::new(ip, u16::from_be_bytes([c[24], c[25]])),
                )
            })
            .collect())
    }

    /// A response's `values` as peers; `Err` if an entry is not 6 bytes.
    pub fn values(&self) -> Result<Vec<SocketAddrV4>, String> {
        let values = match self {
            Krpc::Response { r, .. } => match r.get("values") {
                None => return Ok(Vec::new()),
                Some(Benc::List(items)) => items,
                Some(other) => return Err(format!("values is {other:?}")),
            },
            _ => return Ok(Vec::new()),
        };
        values
            .iter()
            .map(|v| match v.bytes() {
                Some(b) if b.len() == 6 => Ok(SocketAddrV4::new(
                    Ipv4Addr::new(b[0], b[1], b[2], b[3]),
                    u16::from_be_bytes([b[4], b[5]]),
                )),
                _ => Err(format!("values entry {v:?}")),
            })
            .collect()
    }

    /// A query's argument `key` as bytes.
    pub fn arg(&self, key: &str) -> Option<&[u8]> {
        match self {
            Krpc::Query { args, .. } => args.get(key)?.bytes(),
            _ => None,
        }
    }
}

/// 20 pseudo-random bytes from `seed` (splitmix64), for node ids.
pub fn id_from_seed(seed: u64) -> [u8; 20] {
    let mut state = seed;
    let mut out = [0u8; 20];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bytes = z.to_be_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}

/// A hand-driven DHT node: a UDP socket on a loopback address and an id.
pub struct Node {
    pub socket: UdpSocket,
    pub id: [u8; 20],
    next_t: u32,
}

impl Node {
    /// A node on `ip`, a free port, with an id made from `seed`.
    pub fn bind(ip: Ipv4Addr, seed: u64) -> Node {
        assert!(ip.is_loopback(), "test traffic stays on 127.0.0.0/8");
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket.set_read_timeout(Some(RECV_SLICE)).unwrap();
        Node {
            socket,
            id: id_from_seed(seed),
            next_t: 0,
        }
    }

    /// A node on the same socket as `other` (same address and port), with
    /// `other`'s id until the caller sets another: one sender claiming
    /// many ids.
    pub fn sharing(other: &Node) -> Node {
        Node {
            socket: other.socket.try_clone().unwrap(),
            id: other.id,
            next_t: 0,
        }
    }

    pub fn addr(&self) -> SocketAddrV4 {
        match self.socket.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(a) => panic!("{a} is not IPv4"),
        }
    }

    /// A transaction id not used before by this node (4 bytes, like
    /// some clients; pollen must echo whatever it gets).
    pub fn fresh_t(&mut self) -> Vec<u8> {
        self.next_t += 1;
        let mut t = b"h".to_vec();
        t.extend_from_slice(&self.next_t.to_be_bytes()[1..]);
        t
    }

    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.socket.send_to(bytes, to).unwrap();
    }

    /// The next datagram within `limit`, with its source.
    pub fn recv(&self, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok((len, from)) = self.socket.recv_from(&mut buf) {
                return Some((buf[..len].to_vec(), from));
            }
        }
        None
    }

    /// Sends the query `make(t)` (with a fresh transaction id `t`) to `to`
    /// every [`RESEND_EVERY`] until a response or error from `to` echoes
    /// `t`, for at most `limit`. Queries `to` sends us meanwhile go to
    /// `on_query` (which may answer them); other datagrams are skipped.
    pub fn ask_with(
        &mut self,
        to: SocketAddr,
        make: impl Fn(&[u8]) -> Vec<u8>,
        limit: Duration,
        mut on_query: impl FnMut(&Node, &Krpc, SocketAddr),
    ) -> Option<Krpc> {
        let t = self.fresh_t();
        let datagram = make(&t);
        let deadline = Instant::now() + limit;
        let mut next_send = Instant::now();
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            if Instant::now() >= next_send {
                self.send(to, &datagram);
                next_send = Instant::now() + RESEND_EVERY;
            }
            let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(message) = Krpc::parse(&buf[..len]) else {
                continue;
            };
            if let Krpc::Query { .. } = message {
                on_query(self, &message, from);
            } else if from == to && message.t() == t.as_slice() {
                return Some(message);
            }
        }
        None
    }

    /// [`Node::ask_with`], leaving queries to us unanswered.
    pub fn ask(
        &mut self,
        to: SocketAddr,
        make: impl Fn(&[u8]) -> Vec<u8>,
        limit: Duration,
    ) -> Option<Krpc> {
        self.ask_with(to, make, limit, |_, _, _| {})
    }

    /// Answers `query` from `from` as a node that knows nobody and no peer:
    /// our id, empty `nodes`, a token for `get_peers`, 204 for an unknown
    /// method.
    pub fn answer_plainly(&self, query: &Krpc, from: SocketAddr) {
        let Krpc::Query { t, method, .. } = query else {
            return;
        };
        let reply = match method.as_slice() {
            b"ping" | b"announce_peer" => response(t, &self.id, &[]),
            b"find_node" => response(t, &self.id, &[("nodes", bstr(b""))]),
            b"get_peers" => response(
                t,
                &self.id,
                &[("nodes", bstr(b"")), ("token", bstr(b"tok"))],
            ),
            _ => error(t, 204, "Method Unknown"),
        };
        self.send(from, &reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bep5_ping_example_is_spelled_out_byte_for_byte() {
        assert_eq!(
            ping(b"aa", b"abcdefghij0123456789"),
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec()
        );
        assert_eq!(
            response(b"aa", b"mnopqrstuvwxyz123456", &[]),
            b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re".to_vec()
        );
    }
}
