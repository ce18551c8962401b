//! The UDP side of the built-in tracker (BEP 15): datagrams in, typed
//! [`UdpRequest`]s out; replies as bytes; and the stateless connection ids.
//!
//! Layer 0: pure (no I/O, no clock). All integers are big-endian.
//!
//! | request | bytes | fields |
//! | --- | --- | --- |
//! | connect | 16 | protocol id `0x41727101980`, action 0, transaction id |
//! | announce | 98+ | connection id, action 1, transaction id, info-hash, peer id, downloaded, left, uploaded, event, IP, key, num_want, port |
//! | scrape | 16 + 20 n | connection id, action 2, transaction id, n info-hashes |
//!
//! A client must first *connect* to get a connection id and send it with
//! every announce and scrape. The id proves the client receives datagrams at
//! its source address, so nobody can announce a spoofed address or use the
//! tracker to bounce large replies at a victim. We keep no table of ids: an
//! id is a keyed hash of the client's IP and the current minute
//! ([`connection_id`]), so checking one is recomputing it
//! ([`connection_id_is_valid`]).
//!
//! Packets may be longer than the table says (BEP 41 appends options to an
//! announce; they are ignored). The announce's `IP address` field is ignored
//! like HTTP's `ip` parameter: the source address is what counts.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use super::http_request::{AnnounceParams, DEFAULT_NUMWANT, MAX_NUMWANT};
use super::state::{compact_peers, AnnounceReply, ScrapeEntry};
use crate::hash::Sha1Hash;
use crate::tracker::announce::Event;

/// The magic number opening every connect request (BEP 15).
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Length of a connect request, and of every request's header.
pub const HEADER_LEN: usize = 16;

/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;

/// Most info-hashes in one scrape: BEP 15's "about 74", which keeps the
/// reply within one unfragmented Ethernet datagram.
pub const MAX_UDP_SCRAPE_HASHES: usize = 74;

/// Longest error message sent, in bytes: one line of text, one datagram.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// Minutes a connection id stays valid after the minute it was issued in.
/// BEP 15 asks trackers to accept an id for two minutes after sending it;
/// with whole minutes, accepting the two previous minutes too means an id
/// lives between two and three minutes.
pub const CONNECTION_ID_GRACE_MINUTES: u64 = 2;

/// The action of a connect (request and reply).
const ACTION_CONNECT: u32 = 0;
/// The action of an announce.
const ACTION_ANNOUNCE: u32 = 1;
/// The action of a scrape.
const ACTION_SCRAPE: u32 = 2;
/// The action of an error reply.
const ACTION_ERROR: u32 = 3;

/// A parsed UDP tracker request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpRequest {
    /// Asks for a connection id.
    Connect {
        /// Chosen by the client, echoed in the reply.
        transaction_id: u32,
    },
    /// An announce; the connection id is not checked yet.
    Announce {
        /// The id from an earlier connect, to check with
        /// [`connection_id_is_valid`].
        connection_id: u64,
        /// Chosen by the client, echoed in the reply.
        transaction_id: u32,
        /// The announce, as HTTP would give it: compact, without peer ids.
        params: AnnounceParams,
    },
    /// A scrape; the connection id is not checked yet.
    Scrape {
        /// The id from an earlier connect.
        connection_id: u64,
        /// Chosen by the client, echoed in the reply.
        transaction_id: u32,
        /// The info-hashes, in order, at most [`MAX_UDP_SCRAPE_HASHES`].
        info_hashes: Vec<[u8; 20]>,
    },
}

/// Why a datagram is not a usable request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpRequestError {
    /// Shorter than its action needs.
    TooShort {
        /// The datagram's length in bytes.
        len: usize,
    },
    /// A connect without the BEP 15 protocol id: not a tracker client.
    BadProtocolId,
    /// An action other than connect, announce and scrape.
    UnknownAction(u32),
    /// An announce event outside 0..=3.
    BadEvent(u32),
    /// An announce with port 0.
    BadPort,
    /// An announce whose `downloaded`, `left` or `uploaded` is negative.
    Negative(&'static str),
    /// A scrape whose hashes are not whole 20-byte entries.
    BadScrapeLength {
        /// The datagram's length in bytes.
        len: usize,
    },
    /// A scrape of more than [`MAX_UDP_SCRAPE_HASHES`] info-hashes.
    TooManyHashes,
}

impl UdpRequestError {
    /// Whether an error reply is worth sending: only to what looks like a
    /// tracker client. Anything else (too short, no protocol id, unknown
    /// action) may be stray or spoofed traffic and is dropped silently.
    pub fn deserves_reply(&self) -> bool {
        !matches!(
            self,
            UdpRequestError::TooShort { .. }
                | UdpRequestError::BadProtocolId
                | UdpRequestError::UnknownAction(_)
        )
    }
}

impl fmt::Display for UdpRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdpRequestError::TooShort { len } => write!(f, "datagram too short ({len} bytes)"),
            UdpRequestError::BadProtocolId => f.write_str("connect without the protocol id"),
            UdpRequestError::UnknownAction(action) => write!(f, "unknown action {action}"),
            UdpRequestError::BadEvent(event) => write!(f, "invalid event {event}"),
            UdpRequestError::BadPort => f.write_str("invalid port 0"),
            UdpRequestError::Negative(name) => write!(f, "invalid {name}: negative"),
            UdpRequestError::BadScrapeLength { len } => {
                write!(f, "scrape of {len} bytes is not whole 20-byte info-hashes")
            }
            UdpRequestError::TooManyHashes => {
                write!(f, "too many info-hashes, at most {MAX_UDP_SCRAPE_HASHES}")
            }
        }
    }
}

impl std::error::Error for UdpRequestError {}

/// Reads big-endian fields from the front of a datagram. Every read checks
/// the length first; the caller checks the total length up front, so a
/// failed read means a short datagram.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.bytes().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.bytes().map(i64::from_be_bytes)
    }
}

/// The transaction id of a datagram long enough to have one, so the server
/// can address an error reply.
pub fn transaction_id(datagram: &[u8]) -> Option<u32> {
    let bytes = datagram.get(12..16)?;
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_be_bytes)
}

/// Parses one datagram.
pub fn parse_udp_request(datagram: &[u8]) -> Result<UdpRequest, UdpRequestError> {
    let too_short = UdpRequestError::TooShort {
        len: datagram.len(),
    };
    let mut reader = Reader(datagram);
    let (Some(connection_id), Some(action), Some(transaction_id)) =
        (reader.u64(), reader.u32(), reader.u32())
    else {
        return Err(too_short);
    };
    match action {
        ACTION_CONNECT if connection_id != PROTOCOL_ID => Err(UdpRequestError::BadProtocolId),
        ACTION_CONNECT => Ok(UdpRequest::Connect { transaction_id }),
        ACTION_ANNOUNCE => Ok(UdpRequest::Announce {
            connection_id,
            transaction_id,
            params: parse_announce(datagram, &mut reader)?,
        }),
        ACTION_SCRAPE => Ok(UdpRequest::Scrape {
            connection_id,
            transaction_id,
            info_hashes: parse_scrape(reader.0)?,
        }),
        other => Err(UdpRequestError::UnknownAction(other)),
    }
}

/// The announce body after the header. The length is checked first, so the
/// reads cannot run short; should one anyway, it is reported as short.
fn parse_announce(
    datagram: &[u8],
    body: &mut Reader<'_>,
) -> Result<AnnounceParams, UdpRequestError> {
    let short = UdpRequestError::TooShort {
        len: datagram.len(),
    };
    if datagram.len() < ANNOUNCE_REQUEST_LEN {
        return Err(short);
    }
    let info_hash = body.bytes::<20>().ok_or(short)?;
    let peer_id = body.bytes::<20>().ok_or(short)?;
    let downloaded = count("downloaded", body.i64().ok_or(short)?)?;
    let left = count("left", body.i64().ok_or(short)?)?;
    let uploaded = count("uploaded", body.i64().ok_or(short)?)?;
    let event = match body.u32().ok_or(short)? {
        0 => Event::Empty,
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        other => return Err(UdpRequestError::BadEvent(other)),
    };
    let _ip_ignored = body.u32().ok_or(short)?;
    let key = body.bytes::<4>().ok_or(short)?;
    let num_want = body.bytes::<4>().map(i32::from_be_bytes).ok_or(short)?;
    let port = body.u16().ok_or(short)?;
    if port == 0 {
        return Err(UdpRequestError::BadPort);
    }
    Ok(AnnounceParams {
        info_hash,
        peer_id,
        port,
        uploaded,
        downloaded,
        left,
        event,
        // Negative (BEP 15: -1) means "the default".
        numwant: usize::try_from(num_want).map_or(DEFAULT_NUMWANT, |n| n.min(MAX_NUMWANT)),
        compact: true,
        no_peer_id: true,
        key: Some(key.to_vec()),
    })
}

/// A byte count that BEP 15 sends signed; negative is refused.
fn count(name: &'static str, n: i64) -> Result<u64, UdpRequestError> {
    u64::try_from(n).map_err(|_| UdpRequestError::Negative(name))
}

/// The info-hashes after a scrape header.
fn parse_scrape(body: &[u8]) -> Result<Vec<[u8; 20]>, UdpRequestError> {
    if !body.len().is_multiple_of(20) {
        return Err(UdpRequestError::BadScrapeLength {
            len: HEADER_LEN + body.len(),
        });
    }
    if body.len() / 20 > MAX_UDP_SCRAPE_HASHES {
        return Err(UdpRequestError::TooManyHashes);
    }
    let mut hashes = Vec::with_capacity(body.len() / 20);
    let mut reader = Reader(body);
    while let Some(hash) = reader.bytes::<20>() {
        hashes.push(hash);
    }
    Ok(hashes)
}

/// A reply header: action and transaction id.
fn header(action: u32, transaction_id: u32, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + capacity);
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out
}

/// A count as a `u32` field, saturating.
fn u32_field<T>(n: T) -> [u8; 4]
where
    u32: TryFrom<T>,
{
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// The reply to a connect: action 0, transaction id, connection id (16 bytes).
pub fn encode_connect_response(transaction_id: u32, connection_id: u64) -> Vec<u8> {
    let mut out = header(ACTION_CONNECT, transaction_id, 8);
    out.extend_from_slice(&connection_id.to_be_bytes());
    out
}

/// The reply to an announce: interval, leechers, seeders, then the peers of
/// the request's family (BEP 15: 6-byte entries to an IPv4 request, 18-byte
/// entries to an IPv6 one). `ipv6` is whether the request came over IPv6.
pub fn encode_announce_response(transaction_id: u32, reply: &AnnounceReply, ipv6: bool) -> Vec<u8> {
    let (v4, v6) = compact_peers(&reply.peers);
    let peers = if ipv6 { v6 } else { v4 };
    let mut out = header(ACTION_ANNOUNCE, transaction_id, 12 + peers.len());
    out.extend_from_slice(&u32_field(reply.interval.as_secs()));
    out.extend_from_slice(&u32_field(reply.leechers));
    out.extend_from_slice(&u32_field(reply.seeders));
    out.extend_from_slice(&peers);
    out
}

/// The reply to a scrape: seeders, completed, leechers for each hash, in the
/// order asked. BEP 15 has no way to leave a hash out, so the caller passes
/// one entry per requested hash (zeros for a hash it refuses).
pub fn encode_scrape_response(transaction_id: u32, entries: &[ScrapeEntry]) -> Vec<u8> {
    let mut out = header(ACTION_SCRAPE, transaction_id, 12 * entries.len());
    for entry in entries {
        out.extend_from_slice(&u32_field(entry.seeders));
        out.extend_from_slice(&u32_field(entry.completed));
        out.extend_from_slice(&u32_field(entry.leechers));
    }
    out
}

/// An error reply: action 3, transaction id, the message. The message is cut
/// (at a character boundary) to [`MAX_ERROR_MESSAGE_LEN`] bytes and so that
/// the whole reply is at most `max_reply_len` bytes: pass the request's
/// length, and a spoofed request can never bounce more bytes at its victim
/// than it cost.
pub fn encode_error_response(transaction_id: u32, message: &str, max_reply_len: usize) -> Vec<u8> {
    let room = max_reply_len.saturating_sub(8).min(MAX_ERROR_MESSAGE_LEN);
    let mut end = message.len().min(room);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = message.get(..end).unwrap_or_default();
    let mut out = header(ACTION_ERROR, transaction_id, text.len());
    out.extend_from_slice(text.as_bytes());
    out
}

/// The connection id for a client at `source` during minute `now_minute`:
/// the first 8 bytes of SHA-1(`secret`, minute, IP). Only the IP is hashed,
/// not the port: proving the address is the point, and a NAT may change the
/// port between two datagrams. `secret` is random per tracker run, so ids
/// cannot be forged or carried over from another run.
pub fn connection_id(secret: u64, source: IpAddr, now_minute: u64) -> u64 {
    let mut input = Vec::with_capacity(8 + 8 + 17);
    input.extend_from_slice(&secret.to_be_bytes());
    input.extend_from_slice(&now_minute.to_be_bytes());
    match source.to_canonical() {
        IpAddr::V4(ip) => {
            input.push(4);
            input.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            input.push(6);
            input.extend_from_slice(&ip.octets());
        }
    }
    let digest = Sha1Hash::of(&input);
    let first = digest.0.first_chunk::<8>().copied().unwrap_or_default();
    u64::from_be_bytes(first)
}

/// Whether `id` was issued to `source` during `now_minute` or the
/// [`CONNECTION_ID_GRACE_MINUTES`] before it.
pub fn connection_id_is_valid(secret: u64, source: IpAddr, id: u64, now_minute: u64) -> bool {
    (0..=CONNECTION_ID_GRACE_MINUTES)
        .filter_map(|back| now_minute.checked_sub(back))
        .any(|minute| connection_id(secret, source, minute) == id)
}

/// The connection-id secret and the instant minutes are counted from, so the
/// server can pass `now: Instant`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionIds {
    secret: u64,
    epoch: Instant,
}

impl ConnectionIds {
    /// Ids keyed by `secret` (draw it from the session's [`Rng`](crate::rng::Rng)),
    /// minutes counted from `epoch` (the tracker's start).
    pub fn new(secret: u64, epoch: Instant) -> ConnectionIds {
        ConnectionIds { secret, epoch }
    }

    /// The id to send in a connect reply to `source`.
    pub fn issue(&self, source: IpAddr, now: Instant) -> u64 {
        connection_id(self.secret, source, self.minute(now))
    }

    /// Whether `id` is one we issued to `source` recently enough.
    pub fn is_valid(&self, source: IpAddr, id: u64, now: Instant) -> bool {
        connection_id_is_valid(self.secret, source, id, self.minute(now))
    }

    /// Whole minutes since the epoch.
    fn minute(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / 60
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tracker::server::state::{ReplyPeer, ANNOUNCE_INTERVAL, MIN_ANNOUNCE_INTERVAL};

    fn connect_bytes(protocol_id: u64, transaction_id: u32) -> Vec<u8> {
        let mut out = protocol_id.to_be_bytes().to_vec();
        out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
        out.extend_from_slice(&transaction_id.to_be_bytes());
        out
    }

    /// An announce datagram laid out field by field as BEP 15 shows it.
    fn announce_bytes(event: u32, left: i64, num_want: i32, port: u16) -> Vec<u8> {
        let mut out = 0x1122_3344_5566_7788_u64.to_be_bytes().to_vec();
        out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        out.extend_from_slice(&0xCAFE_u32.to_be_bytes());
        out.extend_from_slice(&[0xAB; 20]);
        out.extend_from_slice(b"-PL0001-abcdefghijkl");
        out.extend_from_slice(&7_i64.to_be_bytes()); // downloaded
        out.extend_from_slice(&left.to_be_bytes());
        out.extend_from_slice(&9_i64.to_be_bytes()); // uploaded
        out.extend_from_slice(&event.to_be_bytes());
        out.extend_from_slice(&[6, 6, 6, 6]); // IP: ignored
        out.extend_from_slice(&[1, 2, 3, 4]); // key
        out.extend_from_slice(&num_want.to_be_bytes());
        out.extend_from_slice(&port.to_be_bytes());
        out
    }

    fn scrape_bytes(count: usize) -> Vec<u8> {
        let mut out = 5_u64.to_be_bytes().to_vec();
        out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
        out.extend_from_slice(&1_u32.to_be_bytes());
        for i in 0..count {
            out.extend_from_slice(&[u8::try_from(i % 256).unwrap(); 20]);
        }
        out
    }

    #[test]
    fn parses_a_connect() {
        assert_eq!(
            parse_udp_request(&connect_bytes(PROTOCOL_ID, 77)),
            Ok(UdpRequest::Connect { transaction_id: 77 })
        );
        assert_eq!(
            connect_bytes(PROTOCOL_ID, 0)[..8],
            [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80]
        );
    }

    #[test]
    fn parses_an_announce() {
        let got = parse_udp_request(&announce_bytes(2, 100, -1, 6881));
        let expected = UdpRequest::Announce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 0xCAFE,
            params: AnnounceParams {
                info_hash: [0xAB; 20],
                peer_id: *b"-PL0001-abcdefghijkl",
                port: 6881,
                uploaded: 9,
                downloaded: 7,
                left: 100,
                event: Event::Started,
                numwant: DEFAULT_NUMWANT,
                compact: true,
                no_peer_id: true,
                key: Some(vec![1, 2, 3, 4]),
            },
        };
        assert_eq!(got, Ok(expected.clone()));
        // BEP 41 options after the fixed part are ignored.
        let mut with_options = announce_bytes(2, 100, -1, 6881);
        with_options.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o', 0]);
        assert_eq!(parse_udp_request(&with_options), Ok(expected));
        for (event, expected) in [
            (0, Event::Empty),
            (1, Event::Completed),
            (3, Event::Stopped),
        ] {
            let Ok(UdpRequest::Announce { params, .. }) =
                parse_udp_request(&announce_bytes(event, 1, 10, 1))
            else {
                panic!("event {event}");
            };
            assert_eq!((params.event, params.numwant), (expected, 10));
        }
        let Ok(UdpRequest::Announce { params, .. }) =
            parse_udp_request(&announce_bytes(0, 1, i32::MAX, 1))
        else {
            panic!();
        };
        assert_eq!(params.numwant, MAX_NUMWANT);
    }

    #[test]
    fn parses_a_scrape() {
        let Ok(UdpRequest::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        }) = parse_udp_request(&scrape_bytes(3))
        else {
            panic!();
        };
        assert_eq!((connection_id, transaction_id), (5, 1));
        assert_eq!(info_hashes, vec![[0; 20], [1; 20], [2; 20]]);
        assert!(parse_udp_request(&scrape_bytes(MAX_UDP_SCRAPE_HASHES)).is_ok());
    }

    #[test]
    fn refuses_hostile_datagrams() {
        let mut odd_scrape = scrape_bytes(1);
        odd_scrape.push(0);
        let mut unknown = connect_bytes(PROTOCOL_ID, 1);
        unknown[11] = 9;
        let cases: Vec<(Vec<u8>, UdpRequestError, bool)> = vec![
            (vec![], UdpRequestError::TooShort { len: 0 }, false),
            (
                connect_bytes(PROTOCOL_ID, 1)[..15].to_vec(),
                UdpRequestError::TooShort { len: 15 },
                false,
            ),
            (
                connect_bytes(PROTOCOL_ID + 1, 1),
                UdpRequestError::BadProtocolId,
                false,
            ),
            (unknown, UdpRequestError::UnknownAction(9), false),
            (
                announce_bytes(2, 1, 1, 1)[..97].to_vec(),
                UdpRequestError::TooShort { len: 97 },
                false,
            ),
            (
                announce_bytes(4, 1, 1, 1),
                UdpRequestError::BadEvent(4),
                true,
            ),
            (announce_bytes(2, 1, 1, 0), UdpRequestError::BadPort, true),
            (
                announce_bytes(2, -1, 1, 1),
                UdpRequestError::Negative("left"),
                true,
            ),
            (
                odd_scrape,
                UdpRequestError::BadScrapeLength { len: 37 },
                true,
            ),
            (
                scrape_bytes(MAX_UDP_SCRAPE_HASHES + 1),
                UdpRequestError::TooManyHashes,
                true,
            ),
        ];
        for (datagram, expected, replies) in cases {
            assert_eq!(parse_udp_request(&datagram), Err(expected), "{expected}");
            assert_eq!(expected.deserves_reply(), replies, "{expected}");
        }
    }

    #[test]
    fn every_truncated_announce_is_refused() {
        let full = announce_bytes(2, 1, 1, 1);
        for cut in 0..full.len() {
            assert!(parse_udp_request(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(transaction_id(&full), Some(0xCAFE));
        assert_eq!(transaction_id(&full[..15]), None);
    }

    #[test]
    fn encodes_replies_byte_for_byte() {
        assert_eq!(
            encode_connect_response(0x0102_0304, 0x1112_1314_1516_1718),
            [0, 0, 0, 0, 1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        let reply = AnnounceReply {
            interval: ANNOUNCE_INTERVAL,
            min_interval: MIN_ANNOUNCE_INTERVAL,
            seeders: 3,
            leechers: 4,
            peers: vec![
                ReplyPeer {
                    addr: "10.0.0.1:6881".parse().unwrap(),
                    peer_id: [0; 20],
                },
                ReplyPeer {
                    addr: "[::1]:258".parse().unwrap(),
                    peer_id: [0; 20],
                },
            ],
        };
        assert_eq!(
            encode_announce_response(9, &reply, false),
            [
                0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 60, 0, 0, 0, 4, 0, 0, 0, 3, 10, 0, 0, 1, 0x1a,
                0xe1
            ]
        );
        let v6 = encode_announce_response(9, &reply, true);
        assert_eq!(v6.len(), 20 + 18);
        assert_eq!(
            v6[20..],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]
        );
        let entries = [ScrapeEntry {
            info_hash: [0; 20],
            seeders: 1,
            leechers: 2,
            completed: 3,
        }];
        assert_eq!(
            encode_scrape_response(5, &entries),
            [0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2]
        );
        assert_eq!(
            encode_error_response(5, "no", 100),
            [0, 0, 0, 3, 0, 0, 0, 5, b'n', b'o']
        );
    }

    #[test]
    fn error_replies_are_never_longer_than_asked() {
        let long = "é".repeat(300);
        for max in [0, 8, 9, 10, 16, 98, 1000] {
            let reply = encode_error_response(1, &long, max);
            assert!(reply.len() <= max.max(8), "max {max}: {}", reply.len());
            assert!(reply.len() <= 8 + MAX_ERROR_MESSAGE_LEN);
            assert!(std::str::from_utf8(&reply[8..]).is_ok());
        }
    }

    #[test]
    fn connection_ids_last_two_to_three_minutes_and_only_for_their_ip() {
        let secret = 0x5eed;
        let me: IpAddr = "192.168.1.5".parse().unwrap();
        let other: IpAddr = "192.168.1.6".parse().unwrap();
        let id = connection_id(secret, me, 10);
        for (minute, valid) in [(9, false), (10, true), (11, true), (12, true), (13, false)] {
            assert_eq!(
                connection_id_is_valid(secret, me, id, minute),
                valid,
                "minute {minute}"
            );
        }
        assert!(!connection_id_is_valid(secret, other, id, 10));
        assert!(!connection_id_is_valid(secret + 1, me, id, 10));
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(192, 168, 1, 5).to_ipv6_mapped());
        assert_eq!(connection_id(secret, mapped, 10), id);
        assert!(connection_id_is_valid(
            secret,
            me,
            connection_id(secret, me, 0),
            0
        ));

        let t0 = Instant::now();
        let ids = ConnectionIds::new(secret, t0);
        let issued = ids.issue(me, t0 + Duration::from_secs(59));
        assert!(ids.is_valid(me, issued, t0 + Duration::from_secs(59 + 120)));
        assert!(!ids.is_valid(me, issued, t0 + Duration::from_secs(180)));
    }
}
