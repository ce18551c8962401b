//! The UDP tracker protocol: its packets, and a state machine for one
//! announce or scrape to one tracker (BEP 15, "UDP Tracker Protocol").
//!
//! Layer 0: pure (no sockets, no clock, no name resolution). The session owns
//! the socket and the clock and drives a [`UdpExchange`] the way quinn-proto's
//! connections are driven:
//!
//! ```text
//! session                                    UdpExchange
//! new(query, now, cached id, timeouts, rng)  queues a connect (or the request)
//! poll_transmit(now)                         -> a datagram to send, if any
//! handle_datagram(bytes, now)                a reply: connected, or done
//! handle_timeout(now) at next_deadline()     resend with back-off, or give up
//! poll_result()                              -> Ok(reply) or Err(TrackerError), once
//! ```
//!
//! An exchange is a connect (action 0) that yields a connection id, then the
//! request itself: an announce (action 1) or a scrape (action 2). A
//! connection id less than [`CONNECTION_ID_LIFETIME`] old may be passed in
//! to skip the connect; [`UdpExchange::connection`] hands the new one back
//! for the session to cache per tracker. An unanswered packet is sent again
//! after `base × 2^n` (BEP 15: 15 s × 2^n, n = 0..=8), and the exchange
//! gives up after the last wait. The connect is redone when the connection
//! id has expired by the time the request is (re)sent.
//!
//! BEP 15's full schedule lasts 2 h 8 min: it is how long to keep retrying
//! one tracker, not how long anything should wait for it. The session's
//! announces use [`ANNOUNCE_TIMEOUTS`] instead: the same doubling from 4 s
//! and [`ANNOUNCE_RETRIES`] resends, so a silent tracker is given up after
//! 28 s and its tier moves on (next URL, or its back-off) as after any
//! failure. libtorrent sends one datagram and gives up after 10 to 30 s of
//! silence (`tracker_receive_timeout`, `tracker_completion_timeout`).
//!
//! Packets, all integers big-endian (offsets in bytes):
//!
//! ```text
//! connect request   0 protocol id u64 (0x41727101980) | 8 action 0 | 12 transaction id     = 16
//! connect reply     0 action 0 | 4 transaction id | 8 connection id u64                      = 16
//! announce request  0 connection id | 8 action 1 | 12 tid | 16 info_hash | 36 peer_id
//!                   56 downloaded u64 | 64 left u64 | 72 uploaded u64 | 80 event
//!                   84 ip (0) | 88 key | 92 num_want i32 (-1) | 96 port u16            = 98
//! announce reply    0 action 1 | 4 tid | 8 interval | 12 leechers | 16 seeders
//!                   20 peers: 6 bytes each (IPv4), 18 bytes each (tracker reached over IPv6)
//! scrape request    0 connection id | 8 action 2 | 12 tid | 16 info_hash × 1..=74
//! scrape reply      0 action 2 | 4 tid | 8 (seeders, completed, leechers) × the hashes asked
//! error reply       0 action 3 | 4 tid | 8 message (the rest of the datagram)
//! ```
//!
//! Decoding is strict: a reply must have the action and transaction id we
//! wait for and exactly the length its fields give, or it is
//! [`TrackerError::Malformed`]; an error reply is [`TrackerError::Failure`].
//! The state machine ignores datagrams too short to carry a transaction id
//! and those whose id is not the one it waits for (a late answer to an
//! earlier packet, or not meant for us); a datagram with our id ends the
//! exchange, with the decoder's verdict. Peers are filtered and capped as in
//! HTTP announces ([`MAX_PEERS_PER_REPLY`](super::MAX_PEERS_PER_REPLY), no
//! port 0).

use std::time::{Duration, Instant};

use super::announce::{
    clamp_interval, push_compact, tracker_text, AnnounceRequest, AnnounceResponse, Event,
};
use super::scrape::ScrapeStats;
use super::TrackerError;
use crate::rng::Rng;

/// The connection id of every connect request: a magic number that tells the
/// tracker this is BEP 15.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Action of a connect request and reply.
const ACTION_CONNECT: u32 = 0;
/// Action of an announce request and reply.
const ACTION_ANNOUNCE: u32 = 1;
/// Action of a scrape request and reply.
const ACTION_SCRAPE: u32 = 2;
/// Action of an error reply.
const ACTION_ERROR: u32 = 3;

/// Length of a connect request: protocol id, action, transaction id.
pub const CONNECT_REQUEST_LEN: usize = 16;
/// Length of an announce request (the fields of BEP 15's table end at 98).
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Length of the fixed part of a scrape request, before the info-hashes:
/// connection id, action, transaction id.
const SCRAPE_REQUEST_HEADER_LEN: usize = 16;
/// Length of the action and transaction id that open every reply.
const REPLY_HEADER_LEN: usize = 8;
/// Length of a connect reply: the header and the connection id.
const CONNECT_REPLY_LEN: usize = 16;
/// Length of an announce reply before its peers: the header, interval,
/// leechers, seeders.
const ANNOUNCE_REPLY_HEADER_LEN: usize = 20;
/// Length of one torrent's counts in a scrape reply: seeders, completed,
/// leechers.
const SCRAPE_ENTRY_LEN: usize = 12;

/// `num_want` that leaves the number of peers to the tracker (BEP 15: -1).
const NUM_WANT_DEFAULT: i32 = -1;

/// Most info-hashes in one scrape request: BEP 15's "up to about 74" (the
/// request is then 16 + 74 × 20 = 1,496 bytes, about one Ethernet frame).
/// A full scrape of every torrent is not possible over UDP.
pub const MAX_SCRAPE_HASHES: usize = 74;

/// Largest datagram accepted from a tracker: 16 KiB. That holds more than
/// [`MAX_PEERS_PER_REPLY`](super::MAX_PEERS_PER_REPLY) peers even as 18-byte
/// IPv6 entries (9,020 bytes); trackers keep their replies far smaller, so
/// anything longer is not a reply. The session can size its receive buffer
/// one byte larger to notice a longer datagram instead of reading it cut.
pub const MAX_DATAGRAM_LEN: usize = 16 * 1024;

/// How long a connection id may be used after its connect reply arrived
/// (BEP 15: one minute; trackers accept it for two, which leaves room for a
/// request in flight).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Requests: what we send.

/// A connect request with `transaction_id`.
pub fn encode_connect(transaction_id: u32) -> Vec<u8> {
    let mut packet = Vec::with_capacity(CONNECT_REQUEST_LEN);
    packet.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    packet.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    packet
}

/// An announce request for `request` on `connection_id`.
///
/// `ip` is always 0 (the tracker uses the datagram's source address);
/// `key` is 0 when `request.key` is `None`; `num_want` is -1 (the tracker's
/// default) when `request.numwant` is `None`, and at most `i32::MAX`.
/// `request.tracker_id` has no place in BEP 15 and is not sent.
pub fn encode_announce(
    connection_id: u64,
    transaction_id: u32,
    request: &AnnounceRequest,
) -> Vec<u8> {
    let num_want = request
        .numwant
        .map_or(NUM_WANT_DEFAULT, |n| i32::try_from(n).unwrap_or(i32::MAX));
    let mut packet = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
    packet.extend_from_slice(&connection_id.to_be_bytes());
    packet.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    packet.extend_from_slice(&request.info_hash);
    packet.extend_from_slice(&request.peer_id);
    packet.extend_from_slice(&request.downloaded.to_be_bytes());
    packet.extend_from_slice(&request.left.to_be_bytes());
    packet.extend_from_slice(&request.uploaded.to_be_bytes());
    packet.extend_from_slice(&event_code(request.event).to_be_bytes());
    packet.extend_from_slice(&0u32.to_be_bytes()); // ip: the source address
    packet.extend_from_slice(&request.key.unwrap_or(0).to_be_bytes());
    packet.extend_from_slice(&num_want.to_be_bytes());
    packet.extend_from_slice(&request.port.to_be_bytes());
    packet
}

/// BEP 15's number for an announce event. Note the order differs from the
/// HTTP names' usual listing: completed is 1, started 2.
fn event_code(event: Event) -> u32 {
    match event {
        Event::Empty => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

/// A scrape request for the first [`MAX_SCRAPE_HASHES`] of `info_hashes`
/// (the rest need a request of their own).
pub fn encode_scrape(connection_id: u64, transaction_id: u32, info_hashes: &[[u8; 20]]) -> Vec<u8> {
    let hashes = info_hashes.get(..MAX_SCRAPE_HASHES).unwrap_or(info_hashes);
    let mut packet = Vec::with_capacity(SCRAPE_REQUEST_HEADER_LEN + 20 * hashes.len());
    packet.extend_from_slice(&connection_id.to_be_bytes());
    packet.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    for hash in hashes {
        packet.extend_from_slice(hash);
    }
    packet
}

// ---------------------------------------------------------------------------
// Replies: what the tracker sends.

/// The action and transaction id that open a reply, or `None` when the
/// datagram is too short to hold them.
pub fn reply_header(datagram: &[u8]) -> Option<(u32, u32)> {
    let (action, rest) = datagram.split_first_chunk::<4>()?;
    let transaction_id = rest.first_chunk::<4>()?;
    Some((
        u32::from_be_bytes(*action),
        u32::from_be_bytes(*transaction_id),
    ))
}

/// Decodes a connect reply to the request sent with `transaction_id`: the
/// connection id.
pub fn decode_connect_reply(datagram: &[u8], transaction_id: u32) -> Result<u64, TrackerError> {
    let body = open_reply(datagram, ACTION_CONNECT, transaction_id)?;
    exact_len(datagram, CONNECT_REPLY_LEN, "connect")?;
    let id = body
        .first_chunk::<8>()
        .ok_or_else(|| malformed_len(datagram, "connect"))?;
    Ok(u64::from_be_bytes(*id))
}

/// Decodes an announce reply to the request sent with `transaction_id`.
///
/// Peers are 6-byte IPv4 entries, or 18-byte IPv6 ones when the tracker was
/// reached over IPv6 (`ipv6`); a partial entry is malformed. The interval is
/// clamped like an HTTP tracker's; a negative leecher or seeder count is left
/// out. There is no `min_interval`, warning or tracker id in BEP 15.
pub fn decode_announce_reply(
    datagram: &[u8],
    transaction_id: u32,
    ipv6: bool,
) -> Result<AnnounceResponse, TrackerError> {
    let body = open_reply(datagram, ACTION_ANNOUNCE, transaction_id)?;
    if datagram.len() < ANNOUNCE_REPLY_HEADER_LEN {
        return Err(malformed_len(datagram, "announce"));
    }
    let (interval, rest) = body
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed_len(datagram, "announce"))?;
    let (leechers, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed_len(datagram, "announce"))?;
    let (seeders, peer_bytes) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed_len(datagram, "announce"))?;
    let mut peers = Vec::new();
    if ipv6 {
        push_compact::<16>(peer_bytes, "peers", &mut peers)?;
    } else {
        push_compact::<4>(peer_bytes, "peers", &mut peers)?;
    }
    Ok(AnnounceResponse {
        interval: clamp_interval(i64::from(i32::from_be_bytes(*interval))),
        min_interval: None,
        peers,
        complete: u32::try_from(i32::from_be_bytes(*seeders)).ok(),
        incomplete: u32::try_from(i32::from_be_bytes(*leechers)).ok(),
        warning: None,
        tracker_id: None,
    })
}

/// Decodes a scrape reply to the request sent with `transaction_id` for
/// `hash_count` torrents: their counts, in the order they were asked.
///
/// The reply must hold exactly `hash_count` entries; a negative count is
/// malformed.
pub fn decode_scrape_reply(
    datagram: &[u8],
    transaction_id: u32,
    hash_count: usize,
) -> Result<Vec<ScrapeStats>, TrackerError> {
    let body = open_reply(datagram, ACTION_SCRAPE, transaction_id)?;
    let expected_len = SCRAPE_ENTRY_LEN
        .checked_mul(hash_count)
        .and_then(|entries| entries.checked_add(REPLY_HEADER_LEN))
        .ok_or_else(|| TrackerError::Malformed("too many torrents in one scrape".into()))?;
    exact_len(datagram, expected_len, "scrape")?;
    body.chunks_exact(SCRAPE_ENTRY_LEN)
        .map(scrape_entry)
        .collect()
}

/// One torrent's counts in a scrape reply: seeders, completed, leechers.
fn scrape_entry(entry: &[u8]) -> Result<ScrapeStats, TrackerError> {
    let (seeders, rest) = entry
        .split_first_chunk::<4>()
        .ok_or_else(|| TrackerError::Malformed("short scrape entry".into()))?;
    let (completed, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| TrackerError::Malformed("short scrape entry".into()))?;
    let leechers = rest
        .first_chunk::<4>()
        .ok_or_else(|| TrackerError::Malformed("short scrape entry".into()))?;
    Ok(ScrapeStats {
        seeders: scrape_count(*seeders, "seeders")?,
        leechers: scrape_count(*leechers, "leechers")?,
        completed: scrape_count(*completed, "completed")?,
    })
}

/// A scrape count: BEP 15 sends an `int32`, so a negative one is malformed.
fn scrape_count(bytes: [u8; 4], what: &str) -> Result<u32, TrackerError> {
    u32::try_from(i32::from_be_bytes(bytes))
        .map_err(|_| TrackerError::Malformed(format!("negative {what} count in a scrape reply")))
}

/// Checks the parts every reply shares and returns what follows the header:
/// not over [`MAX_DATAGRAM_LEN`], long enough for a header, our transaction
/// id, and the `expected` action. An error reply (action 3) becomes
/// [`TrackerError::Failure`] with its message.
fn open_reply(datagram: &[u8], expected: u32, transaction_id: u32) -> Result<&[u8], TrackerError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(TrackerError::Malformed(format!(
            "a {}-byte datagram is longer than any reply ({MAX_DATAGRAM_LEN} bytes)",
            datagram.len()
        )));
    }
    let (action, got_id) = reply_header(datagram).ok_or_else(|| {
        TrackerError::Malformed(format!(
            "a {}-byte datagram is too short for a reply",
            datagram.len()
        ))
    })?;
    if got_id != transaction_id {
        return Err(TrackerError::Malformed(format!(
            "transaction id {got_id:#010x}, expected {transaction_id:#010x}"
        )));
    }
    let body = datagram.get(REPLY_HEADER_LEN..).unwrap_or_default();
    match action {
        ACTION_ERROR => Err(TrackerError::Failure(error_message(body))),
        action if action == expected => Ok(body),
        other => Err(TrackerError::Malformed(format!(
            "action {other} in reply to action {expected}"
        ))),
    }
}

/// The text of an error reply, without the NUL terminator some trackers
/// add, cut to [`MAX_TRACKER_TEXT_CHARS`](super::MAX_TRACKER_TEXT_CHARS).
fn error_message(body: &[u8]) -> String {
    let end = body
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    tracker_text(body.get(..end).unwrap_or(body))
}

/// `Ok` when `datagram` is exactly `len` bytes long.
fn exact_len(datagram: &[u8], len: usize, what: &str) -> Result<(), TrackerError> {
    if datagram.len() == len {
        Ok(())
    } else {
        Err(TrackerError::Malformed(format!(
            "{what} reply is {} bytes, expected {len}",
            datagram.len()
        )))
    }
}

/// The error for a reply too short for its fixed fields.
fn malformed_len(datagram: &[u8], what: &str) -> TrackerError {
    TrackerError::Malformed(format!(
        "{what} reply of {} bytes is too short",
        datagram.len()
    ))
}

// ---------------------------------------------------------------------------
// URLs.

/// The host and port of a `udp://host:port[/path]` tracker URL, or `None`
/// when it is not one.
///
/// The scheme is matched without regard to case; the port is required and
/// must be 1..=65535; an IPv6 literal is written in brackets (`[::1]:6969`)
/// and returned without them. The host is returned as written: resolving a
/// name is the session's job, not done here. A path or query (BEP 41's
/// URL data) is allowed and ignored.
pub fn parse_udp_url(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("udp") {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_end)?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            (host, after.strip_prefix(':')?)
        }
        None => authority.rsplit_once(':')?,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok || (host.contains(':') && !authority.starts_with('[')) {
        return None;
    }
    Some((host.to_owned(), parse_port(port)?))
}

/// A port of 1 to 5 decimal digits in 1..=65535 (no sign, no spaces).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&port| port != 0)
}

// ---------------------------------------------------------------------------
// The state machine.

/// Retransmission timing of one exchange (BEP 15 "Time outs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTimeouts {
    /// Wait for a reply after the first send; each resend waits twice as
    /// long as the one before (BEP 15: 15 s).
    pub base: Duration,
    /// Resends before giving up (BEP 15: 8, so the last wait is
    /// 15 s × 2^8 = 64 min and an exchange gives up after about 2 h 8 min).
    pub max_retries: u32,
}

impl Default for UdpTimeouts {
    /// BEP 15's numbers: 15 s, doubled up to 8 times.
    fn default() -> Self {
        UdpTimeouts {
            base: Duration::from_secs(15),
            max_retries: 8,
        }
    }
}

impl UdpTimeouts {
    /// How long to wait for a reply after send number `retry` (0 for the
    /// first): `base × 2^retry`, never overflowing (the factor stops at
    /// `u32::MAX`, the product at `Duration::MAX`).
    pub fn wait(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry))
    }

    /// How long an exchange with a tracker that never answers lasts, from
    /// the first send to giving up: the sum of every wait.
    pub fn give_up_after(&self) -> Duration {
        (0..=self.max_retries).fold(Duration::ZERO, |sum, retry| {
            sum.saturating_add(self.wait(retry))
        })
    }
}

/// Resends of an announce before the session gives up on a silent UDP
/// tracker: two, so three datagrams in all (one lost datagram, or two, is
/// survived), and with [`ANNOUNCE_TIMEOUTS`]'s 4 s base the exchange gives up
/// after 4 + 8 + 16 = 28 s. BEP 15's eight resends would hold the tier for
/// over two hours; libtorrent waits 10 to 30 s and never resends.
pub const ANNOUNCE_RETRIES: u32 = 2;

/// Timing of the session's UDP announces: BEP 15's doubling from 4 s rather
/// than 15 s (a tracker that answers at all does so in well under a second;
/// three tries over 28 s are still gentle on an overloaded one), stopping
/// after [`ANNOUNCE_RETRIES`] resends.
pub const ANNOUNCE_TIMEOUTS: UdpTimeouts = UdpTimeouts {
    base: Duration::from_secs(4),
    max_retries: ANNOUNCE_RETRIES,
};

/// A connection id and when its connect reply arrived; the session caches
/// one per tracker and passes it to the next [`UdpExchange::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConnection {
    /// The id the tracker gave us.
    pub id: u64,
    /// When its connect reply arrived.
    pub obtained_at: Instant,
}

impl UdpConnection {
    /// Whether the id may still be used at `now`: less than
    /// [`CONNECTION_ID_LIFETIME`] after it was obtained.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.obtained_at) < CONNECTION_ID_LIFETIME
    }
}

/// The request an exchange makes once connected: an announce or a scrape.
pub trait UdpQuery {
    /// What a successful reply decodes to.
    type Reply;

    /// The request datagram.
    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8>;

    /// Decodes the reply to the request sent with `transaction_id`.
    fn decode(&self, datagram: &[u8], transaction_id: u32) -> Result<Self::Reply, TrackerError>;
}

/// An announce over UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// What we tell the tracker.
    pub request: AnnounceRequest,
    /// Whether the tracker is reached over IPv6, which makes its peers
    /// 18-byte IPv6 entries (BEP 15).
    pub ipv6: bool,
}

impl UdpQuery for AnnounceQuery {
    type Reply = AnnounceResponse;

    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8> {
        encode_announce(connection_id, transaction_id, &self.request)
    }

    fn decode(
        &self,
        datagram: &[u8],
        transaction_id: u32,
    ) -> Result<AnnounceResponse, TrackerError> {
        decode_announce_reply(datagram, transaction_id, self.ipv6)
    }
}

/// A scrape over UDP of 1 to [`MAX_SCRAPE_HASHES`] torrents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeQuery {
    /// The torrents asked about, in order.
    info_hashes: Vec<[u8; 20]>,
}

impl ScrapeQuery {
    /// A scrape of `info_hashes`; `None` when there are none or more than
    /// [`MAX_SCRAPE_HASHES`] (split them over several scrapes).
    pub fn new(info_hashes: &[[u8; 20]]) -> Option<ScrapeQuery> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return None;
        }
        Some(ScrapeQuery {
            info_hashes: info_hashes.to_vec(),
        })
    }

    /// The torrents asked about; the reply's counts come in this order.
    pub fn info_hashes(&self) -> &[[u8; 20]] {
        &self.info_hashes
    }
}

impl UdpQuery for ScrapeQuery {
    type Reply = Vec<ScrapeStats>;

    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8> {
        encode_scrape(connection_id, transaction_id, &self.info_hashes)
    }

    fn decode(
        &self,
        datagram: &[u8],
        transaction_id: u32,
    ) -> Result<Vec<ScrapeStats>, TrackerError> {
        decode_scrape_reply(datagram, transaction_id, self.info_hashes.len())
    }
}

/// One announce to one UDP tracker.
pub type UdpAnnounce = UdpExchange<AnnounceQuery>;

/// One scrape of one UDP tracker.
pub type UdpScrape = UdpExchange<ScrapeQuery>;

/// Where an exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the reply to the connect sent with this transaction id.
    Connecting {
        /// Kept across resends of the same connect.
        transaction_id: u32,
    },
    /// Waiting for the reply to the request sent with this transaction id,
    /// on the connection id in `UdpExchange::connection`.
    Requesting {
        /// Kept across resends of the same request.
        transaction_id: u32,
    },
    /// Finished: the result is in (or was taken from) `UdpExchange::result`.
    Done,
}

/// One exchange with one UDP tracker: connect if needed, then the request,
/// with BEP 15's resends (a pure state machine, driven as the module doc
/// shows).
///
/// A transaction id is drawn for each new packet (each connect, each
/// request) and kept when that same packet is sent again, so a late reply to
/// the first send still counts. The back-off step `n` counts every timeout of
/// the exchange, connect and request together, and is never reset: one
/// exchange therefore ends within `base × (2^(max_retries+1) − 1)` whatever
/// the tracker does, even one that answers every connect and nothing else.
#[derive(Debug)]
pub struct UdpExchange<Q: UdpQuery> {
    /// The request to make once connected.
    query: Q,
    /// When to resend and when to give up.
    timeouts: UdpTimeouts,
    /// Where transaction ids come from: forked from the session's generator.
    transaction_ids: Rng,
    /// The connection id in use (cached or obtained here), if any.
    connection: Option<UdpConnection>,
    /// Where the exchange stands.
    step: Step,
    /// Timeouts so far: BEP 15's `n`.
    retries: u32,
    /// The datagram waiting for `poll_transmit`.
    outgoing: Option<Vec<u8>>,
    /// When to act next: while a datagram waits, when it was queued (due at
    /// once); after it is sent, when it counts as lost.
    deadline: Option<Instant>,
    /// The outcome, until `poll_result` takes it.
    result: Option<Result<Q::Reply, TrackerError>>,
}

impl<Q: UdpQuery> UdpExchange<Q> {
    /// Starts an exchange at `now`: the request at once if `cached` is still
    /// fresh, a connect first otherwise. Transaction ids are drawn from a
    /// generator seeded from `rng`.
    pub fn new(
        query: Q,
        now: Instant,
        cached: Option<UdpConnection>,
        timeouts: UdpTimeouts,
        rng: &mut Rng,
    ) -> Self {
        let mut exchange = UdpExchange {
            query,
            timeouts,
            transaction_ids: Rng::new(rng.next_u64()),
            connection: cached,
            step: Step::Done,
            retries: 0,
            outgoing: None,
            deadline: None,
            result: None,
        };
        exchange.send_request(now);
        exchange
    }

    /// The datagram to send to the tracker now, if any. Call after `new` and
    /// after every `handle_*` until it returns `None`; the wait for a reply
    /// starts at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let datagram = self.outgoing.take()?;
        // A wait too long for `Instant` to represent never ends.
        self.deadline = now.checked_add(self.timeouts.wait(self.retries));
        Some(datagram)
    }

    /// Takes in a datagram from the tracker's address.
    ///
    /// One too short to hold a transaction id, or whose id is not the one
    /// awaited, is ignored. One with our id ends the exchange with a reply
    /// or an error, except a good connect reply, which queues the request.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) {
        let awaited = match self.step {
            Step::Connecting { transaction_id } | Step::Requesting { transaction_id } => {
                transaction_id
            }
            Step::Done => return,
        };
        match reply_header(datagram) {
            Some((_, transaction_id)) if transaction_id == awaited => {}
            _ => return,
        }
        if let Step::Connecting { .. } = self.step {
            match decode_connect_reply(datagram, awaited) {
                Ok(id) => {
                    self.connection = Some(UdpConnection {
                        id,
                        obtained_at: now,
                    });
                    self.send_request(now);
                }
                Err(error) => self.finish(Err(error)),
            }
        } else {
            let reply = self.query.decode(datagram, awaited);
            self.finish(reply);
        }
    }

    /// When [`UdpExchange::handle_timeout`] should next be called; `None`
    /// once finished (or when the wait is too long for `Instant`, with an
    /// absurd [`UdpTimeouts::base`]). While a datagram waits for
    /// `poll_transmit` this is the time it was queued, i.e. due at once.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Acts on the clock: when the datagram in flight has waited its full
    /// time, sends it again (reconnecting first if the connection id has
    /// expired) or, after [`UdpTimeouts::max_retries`] resends, gives up with
    /// [`TrackerError::Transport`]. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.deadline.is_some_and(|deadline| deadline <= now);
        if self.step == Step::Done || self.outgoing.is_some() || !due {
            return;
        }
        if self.retries >= self.timeouts.max_retries {
            let sends = u64::from(self.retries) + 1;
            self.finish(Err(TrackerError::Transport(format!(
                "no reply from the UDP tracker after {sends} attempts"
            ))));
            return;
        }
        self.retries += 1;
        match self.step {
            Step::Connecting { transaction_id } => self.queue(encode_connect(transaction_id), now),
            Step::Requesting { transaction_id } => self.resend_request(transaction_id, now),
            Step::Done => {}
        }
    }

    /// The outcome, once: `Some` the first time it is called after the
    /// exchange finished, `None` before and after.
    pub fn poll_result(&mut self) -> Option<Result<Q::Reply, TrackerError>> {
        self.result.take()
    }

    /// Whether the exchange has finished (its result may already be taken).
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// The connection id in use, for the session to cache per tracker; it
    /// may have expired by the time it is read (see
    /// [`UdpConnection::is_fresh`]).
    pub fn connection(&self) -> Option<UdpConnection> {
        self.connection
    }

    /// The request this exchange makes.
    pub fn query(&self) -> &Q {
        &self.query
    }

    /// Queues a new request with a new transaction id, or a connect first
    /// when there is no fresh connection id.
    fn send_request(&mut self, now: Instant) {
        let transaction_id = self.next_transaction_id();
        match self.fresh_connection_id(now) {
            Some(id) => {
                self.step = Step::Requesting { transaction_id };
                self.queue(self.query.encode(id, transaction_id), now);
            }
            None => {
                self.step = Step::Connecting { transaction_id };
                self.queue(encode_connect(transaction_id), now);
            }
        }
    }

    /// Queues the same request again, or a new connect if the connection id
    /// has expired meanwhile.
    fn resend_request(&mut self, transaction_id: u32, now: Instant) {
        match self.fresh_connection_id(now) {
            Some(id) => self.queue(self.query.encode(id, transaction_id), now),
            None => self.send_request(now),
        }
    }

    /// The connection id, if there is one and it may still be used at `now`.
    fn fresh_connection_id(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|connection| connection.is_fresh(now))
            .map(|connection| connection.id)
    }

    /// Makes `datagram` the next one `poll_transmit` returns.
    fn queue(&mut self, datagram: Vec<u8>, now: Instant) {
        self.outgoing = Some(datagram);
        self.deadline = Some(now);
    }

    /// Ends the exchange with `result`.
    fn finish(&mut self, result: Result<Q::Reply, TrackerError>) {
        self.step = Step::Done;
        self.outgoing = None;
        self.deadline = None;
        self.result = Some(result);
    }

    /// A fresh random transaction id.
    fn next_transaction_id(&mut self) -> u32 {
        // The high half of a 64-bit draw; `to_be_bytes` avoids a narrowing cast.
        let [a, b, c, d, ..] = self.transaction_ids.next_u64().to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::tracker::{MAX_INTERVAL, MAX_PEERS_PER_REPLY, MAX_TRACKER_TEXT_CHARS, MIN_INTERVAL};

    // -- helpers: hex, a request, and a tracker's side of the packets --------

    /// Bytes from hex digits; whitespace is ignored.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: std::array::from_fn(|i| u8::try_from(i).unwrap()),
            peer_id: *b"-PL0001-abcdefghijkl",
            port: 6881,
            uploaded: 7,
            downloaded: 1000,
            left: 1 << 40,
            event: Event::Started,
            numwant: None,
            key: Some(0xCAFE_BABE),
            tracker_id: Some("ignored over UDP".into()),
        }
    }

    /// A reply as a tracker builds it: action, transaction id, body.
    fn reply(action: u32, transaction_id: u32, body: &[u8]) -> Vec<u8> {
        let mut datagram = action.to_be_bytes().to_vec();
        datagram.extend_from_slice(&transaction_id.to_be_bytes());
        datagram.extend_from_slice(body);
        datagram
    }

    fn connect_reply(transaction_id: u32, connection_id: u64) -> Vec<u8> {
        reply(ACTION_CONNECT, transaction_id, &connection_id.to_be_bytes())
    }

    fn announce_reply(
        transaction_id: u32,
        interval: i32,
        leechers: i32,
        seeders: i32,
        peers: &[u8],
    ) -> Vec<u8> {
        let mut body = interval.to_be_bytes().to_vec();
        body.extend_from_slice(&leechers.to_be_bytes());
        body.extend_from_slice(&seeders.to_be_bytes());
        body.extend_from_slice(peers);
        reply(ACTION_ANNOUNCE, transaction_id, &body)
    }

    /// A scrape reply from (seeders, completed, leechers) per torrent.
    fn scrape_reply(transaction_id: u32, entries: &[(i32, i32, i32)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (seeders, completed, leechers) in entries {
            body.extend_from_slice(&seeders.to_be_bytes());
            body.extend_from_slice(&completed.to_be_bytes());
            body.extend_from_slice(&leechers.to_be_bytes());
        }
        reply(ACTION_SCRAPE, transaction_id, &body)
    }

    fn error_reply(transaction_id: u32, message: &[u8]) -> Vec<u8> {
        reply(ACTION_ERROR, transaction_id, message)
    }

    /// The connection id (or protocol id), action and transaction id that
    /// open every request, read as a tracker would.
    fn request_header(packet: &[u8]) -> (u64, u32, u32) {
        (
            u64::from_be_bytes(packet[0..8].try_into().unwrap()),
            u32::from_be_bytes(packet[8..12].try_into().unwrap()),
            u32::from_be_bytes(packet[12..16].try_into().unwrap()),
        )
    }

    /// An announce request read back field by field at BEP 15's offsets.
    fn parse_announce_request(packet: &[u8]) -> (u64, u32, AnnounceRequest) {
        let u64_at = |at: usize| u64::from_be_bytes(packet[at..at + 8].try_into().unwrap());
        let u32_at = |at: usize| u32::from_be_bytes(packet[at..at + 4].try_into().unwrap());
        assert_eq!(packet.len(), ANNOUNCE_REQUEST_LEN);
        assert_eq!(u32_at(8), ACTION_ANNOUNCE);
        assert_eq!(u32_at(84), 0, "ip");
        let event = match u32_at(80) {
            0 => Event::Empty,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            other => panic!("event {other}"),
        };
        let num_want = i32::from_be_bytes(packet[92..96].try_into().unwrap());
        let key = u32_at(88);
        let request = AnnounceRequest {
            info_hash: packet[16..36].try_into().unwrap(),
            peer_id: packet[36..56].try_into().unwrap(),
            downloaded: u64_at(56),
            left: u64_at(64),
            uploaded: u64_at(72),
            event,
            key: (key != 0).then_some(key),
            numwant: u32::try_from(num_want).ok(),
            port: u16::from_be_bytes(packet[96..98].try_into().unwrap()),
            tracker_id: None,
        };
        (u64_at(0), u32_at(12), request)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    // -- requests --------------------------------------------------------------

    #[test]
    fn connect_request_is_byte_exact() {
        assert_eq!(
            encode_connect(0x1234_5678),
            hex("00000417 27101980  00000000  12345678")
        );
        assert_eq!(encode_connect(0).len(), CONNECT_REQUEST_LEN);
    }

    #[test]
    fn announce_request_is_byte_exact() {
        let packet = encode_announce(0x0123_4567_89AB_CDEF, 0xDEAD_BEEF, &request());
        let expected = hex("0123456789abcdef 00000001 deadbeef
             000102030405060708090a0b0c0d0e0f10111213
             2d504c303030312d6162636465666768696a6b6c
             00000000000003e8 0000010000000000 0000000000000007
             00000002 00000000 cafebabe ffffffff 1ae1");
        assert_eq!(packet, expected);
        assert_eq!(packet.len(), ANNOUNCE_REQUEST_LEN);
    }

    #[test]
    fn announce_request_event_numbers_and_defaults() {
        let cases = [
            (Event::Empty, None, None, "00000000", "00000000", "ffffffff"),
            (
                Event::Completed,
                Some(50),
                Some(1),
                "00000001",
                "00000001",
                "00000032",
            ),
            (
                Event::Started,
                Some(0),
                None,
                "00000002",
                "00000000",
                "00000000",
            ),
            (
                Event::Stopped,
                Some(u32::MAX),
                Some(u32::MAX),
                "00000003",
                "ffffffff",
                "7fffffff",
            ),
        ];
        for (event, numwant, key, event_hex, key_hex, num_want_hex) in cases {
            let req = AnnounceRequest {
                event,
                numwant,
                key,
                ..request()
            };
            let packet = encode_announce(1, 2, &req);
            assert_eq!(packet[80..84], hex(event_hex), "{event:?}");
            assert_eq!(packet[88..92], hex(key_hex), "{key:?}");
            assert_eq!(packet[92..96], hex(num_want_hex), "{numwant:?}");
        }
    }

    #[test]
    fn announce_request_round_trips_through_a_tracker_side_parse() {
        let cases = [
            request(),
            AnnounceRequest {
                info_hash: [0xff; 20],
                peer_id: [0; 20],
                port: u16::MAX,
                uploaded: u64::MAX,
                downloaded: u64::MAX - 1,
                left: 0,
                event: Event::Stopped,
                numwant: Some(200),
                key: Some(1),
                tracker_id: None,
            },
            AnnounceRequest {
                port: 1,
                event: Event::Empty,
                numwant: Some(0),
                key: None,
                ..request()
            },
        ];
        for (i, req) in cases.into_iter().enumerate() {
            let tid = u32::try_from(i).unwrap() * 0x1111_1111;
            let packet = encode_announce(u64::MAX - 5, tid, &req);
            let expected = AnnounceRequest {
                tracker_id: None,
                ..req
            };
            assert_eq!(
                parse_announce_request(&packet),
                (u64::MAX - 5, tid, expected),
                "case {i}"
            );
        }
    }

    #[test]
    fn scrape_request_is_byte_exact_and_capped() {
        let packet = encode_scrape(0x0102_0304_0506_0708, 9, &[[0xAA; 20], [0x01; 20]]);
        let expected = hex(&format!(
            "0102030405060708 00000002 00000009 {} {}",
            "aa".repeat(20),
            "01".repeat(20)
        ));
        assert_eq!(packet, expected);

        let many = vec![[3u8; 20]; MAX_SCRAPE_HASHES + 10];
        let packet = encode_scrape(1, 2, &many);
        assert_eq!(packet.len(), 16 + 20 * MAX_SCRAPE_HASHES);
    }

    // -- replies ---------------------------------------------------------------

    #[test]
    fn connect_reply_gives_the_connection_id() {
        let datagram = hex("00000000 12345678 0123456789abcdef");
        assert_eq!(
            decode_connect_reply(&datagram, 0x1234_5678),
            Ok(0x0123_4567_89AB_CDEF)
        );
    }

    #[test]
    fn announce_reply_gives_ipv4_peers() {
        let datagram = hex("00000001 0000abcd 00000708 00000003 00000005
             7f000001 1ae1  0a000002 0050");
        assert_eq!(
            decode_announce_reply(&datagram, 0xABCD, false),
            Ok(AnnounceResponse {
                interval: Duration::from_secs(1800),
                min_interval: None,
                peers: vec![addr("127.0.0.1:6881"), addr("10.0.0.2:80")],
                complete: Some(5),
                incomplete: Some(3),
                warning: None,
                tracker_id: None,
            })
        );
    }

    #[test]
    fn announce_reply_gives_ipv6_peers_when_reached_over_ipv6() {
        let datagram = hex("00000001 00000001 00000708 00000000 00000001
             00000000000000000000000000000001 1ae1
             20010db8000000000000000000000002 c8d5");
        let reply = decode_announce_reply(&datagram, 1, true).unwrap();
        assert_eq!(
            reply.peers,
            vec![addr("[::1]:6881"), addr("[2001:db8::2]:51413")]
        );
        // The same 36 bytes are six IPv4 entries to a client that used IPv4:
        // the format follows the address family, not the bytes.
        let as_v4 = decode_announce_reply(&datagram, 1, false).unwrap();
        assert!(as_v4.peers.iter().all(SocketAddr::is_ipv4));
    }

    #[test]
    fn announce_reply_clamps_the_interval_and_filters_what_it_cannot_use() {
        let max_secs = i32::try_from(MAX_INTERVAL.as_secs()).unwrap();
        let cases = [
            (1800, Duration::from_secs(1800)),
            (0, MIN_INTERVAL),
            (-5, MIN_INTERVAL),
            (max_secs + 1, MAX_INTERVAL),
            (i32::MAX, MAX_INTERVAL),
        ];
        for (interval, expected) in cases {
            let datagram = announce_reply(1, interval, 0, 0, &[]);
            let reply = decode_announce_reply(&datagram, 1, false).unwrap();
            assert_eq!(reply.interval, expected, "interval {interval}");
        }

        let datagram = announce_reply(1, 60, -1, i32::MIN, &hex("01020304 0000 01020304 0001"));
        let reply = decode_announce_reply(&datagram, 1, false).unwrap();
        assert_eq!((reply.complete, reply.incomplete), (None, None));
        assert_eq!(reply.peers, vec![addr("1.2.3.4:1")], "port 0 is dropped");

        let many: Vec<u8> = (0..MAX_PEERS_PER_REPLY + 20)
            .flat_map(|_| hex("7f000001 1ae1"))
            .collect();
        let datagram = announce_reply(1, 60, 0, 0, &many);
        let reply = decode_announce_reply(&datagram, 1, false).unwrap();
        assert_eq!(reply.peers.len(), MAX_PEERS_PER_REPLY);
    }

    #[test]
    fn scrape_reply_gives_counts_in_the_order_asked() {
        let datagram = hex("00000002 00000007
             00000001 00000002 00000003
             7fffffff 00000000 00000010");
        assert_eq!(
            decode_scrape_reply(&datagram, 7, 2),
            Ok(vec![
                ScrapeStats {
                    seeders: 1,
                    completed: 2,
                    leechers: 3
                },
                ScrapeStats {
                    seeders: 0x7fff_ffff,
                    completed: 0,
                    leechers: 16
                },
            ])
        );
    }

    #[test]
    fn replies_round_trip_from_a_tracker_side_encode() {
        for (tid, id) in [(0, 0), (1, u64::MAX), (u32::MAX, 0x0417_2710_1980)] {
            assert_eq!(decode_connect_reply(&connect_reply(tid, id), tid), Ok(id));
        }
        let entries = [(0, 0, 0), (i32::MAX, 1, 2), (5, 50, 500)];
        for count in 0..=entries.len() {
            let datagram = scrape_reply(42, &entries[..count]);
            let decoded = decode_scrape_reply(&datagram, 42, count).unwrap();
            let expected: Vec<ScrapeStats> = entries[..count]
                .iter()
                .map(|&(s, c, l)| ScrapeStats {
                    seeders: u32::try_from(s).unwrap(),
                    completed: u32::try_from(c).unwrap(),
                    leechers: u32::try_from(l).unwrap(),
                })
                .collect();
            assert_eq!(decoded, expected, "{count} entries");
        }
    }

    #[test]
    fn an_error_reply_is_a_failure_whatever_was_asked() {
        let cases: [(&[u8], &str); 4] = [
            (b"torrent not registered", "torrent not registered"),
            (b"Connection ID missmatch.\0", "Connection ID missmatch."),
            (b"", ""),
            (b"\xffbad\0\0", "\u{fffd}bad"),
        ];
        for (message, expected) in cases {
            let datagram = error_reply(5, message);
            let failure = Err(TrackerError::Failure(expected.into()));
            assert_eq!(decode_connect_reply(&datagram, 5), failure);
            assert_eq!(
                decode_announce_reply(&datagram, 5, false).map(|_| ()),
                failure.clone().map(|_: u64| ())
            );
            assert_eq!(
                decode_scrape_reply(&datagram, 5, 1).map(|_| ()),
                failure.map(|_: u64| ())
            );
        }
        let long = vec![b'x'; 10_000];
        let Err(TrackerError::Failure(text)) = decode_connect_reply(&error_reply(5, &long), 5)
        else {
            panic!("not a failure");
        };
        assert_eq!(text.len(), MAX_TRACKER_TEXT_CHARS);
    }

    /// A decoder run on a datagram, reduced to "which error, if any".
    type Decoder = fn(&[u8]) -> Result<(), TrackerError>;

    fn as_connect(datagram: &[u8]) -> Result<(), TrackerError> {
        decode_connect_reply(datagram, 1).map(|_| ())
    }

    fn as_announce(datagram: &[u8]) -> Result<(), TrackerError> {
        decode_announce_reply(datagram, 1, false).map(|_| ())
    }

    fn as_announce6(datagram: &[u8]) -> Result<(), TrackerError> {
        decode_announce_reply(datagram, 1, true).map(|_| ())
    }

    fn as_scrape_of_two(datagram: &[u8]) -> Result<(), TrackerError> {
        decode_scrape_reply(datagram, 1, 2).map(|_| ())
    }

    #[test]
    fn replies_are_checked_strictly() {
        let mut long_connect = connect_reply(1, 9);
        long_connect.push(0);
        let mut oversized = announce_reply(1, 60, 0, 0, &[]);
        oversized.resize(MAX_DATAGRAM_LEN + 2, 0);
        let cases: Vec<(&str, Decoder, Vec<u8>)> = vec![
            ("empty", as_connect, vec![]),
            ("header cut", as_connect, connect_reply(1, 9)[..7].to_vec()),
            (
                "connect cut",
                as_connect,
                connect_reply(1, 9)[..15].to_vec(),
            ),
            ("connect too long", as_connect, long_connect),
            ("connect wrong tid", as_connect, connect_reply(2, 9)),
            (
                "connect answered as announce",
                as_connect,
                announce_reply(1, 60, 0, 0, &[]),
            ),
            ("unknown action", as_connect, reply(7, 1, &[0; 8])),
            (
                "announce without counts",
                as_announce,
                reply(ACTION_ANNOUNCE, 1, &[0; 11]),
            ),
            (
                "announce wrong tid",
                as_announce,
                announce_reply(2, 60, 0, 0, &[]),
            ),
            (
                "announce answered as connect",
                as_announce,
                connect_reply(1, 9),
            ),
            (
                "partial ipv4 peer",
                as_announce,
                announce_reply(1, 60, 0, 0, &[1; 7]),
            ),
            (
                "partial ipv6 peer",
                as_announce6,
                announce_reply(1, 60, 0, 0, &[1; 24]),
            ),
            ("over the datagram limit", as_announce, oversized),
            (
                "scrape one short",
                as_scrape_of_two,
                scrape_reply(1, &[(1, 1, 1)]),
            ),
            (
                "scrape one extra",
                as_scrape_of_two,
                scrape_reply(1, &[(1, 1, 1); 3]),
            ),
            (
                "scrape entry cut",
                as_scrape_of_two,
                scrape_reply(1, &[(1, 1, 1); 2])[..31].to_vec(),
            ),
            (
                "scrape negative",
                as_scrape_of_two,
                scrape_reply(1, &[(1, 1, 1), (1, -1, 1)]),
            ),
            (
                "scrape wrong tid",
                as_scrape_of_two,
                scrape_reply(2, &[(1, 1, 1); 2]),
            ),
        ];
        for (name, decode, datagram) in cases {
            let result = decode(&datagram);
            assert!(
                matches!(result, Err(TrackerError::Malformed(_))),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn every_truncation_of_a_reply_is_malformed() {
        // (decoder, a valid reply, its peer entry length if it has peers)
        let cases: [(Decoder, Vec<u8>, Option<usize>); 4] = [
            (as_connect, connect_reply(1, 9), None),
            (as_scrape_of_two, scrape_reply(1, &[(1, 2, 3); 2]), None),
            (as_announce, announce_reply(1, 60, 1, 1, &[9; 12]), Some(6)),
            (
                as_announce6,
                announce_reply(1, 60, 1, 1, &[9; 36]),
                Some(18),
            ),
        ];
        for (decode, datagram, peer_len) in cases {
            assert_eq!(decode(&datagram), Ok(()));
            for cut in 0..datagram.len() {
                // An announce reply cut at a peer boundary is a shorter valid reply.
                let at_peer_boundary = peer_len.is_some_and(|peer_len| {
                    cut >= ANNOUNCE_REPLY_HEADER_LEN
                        && (cut - ANNOUNCE_REPLY_HEADER_LEN).is_multiple_of(peer_len)
                });
                let result = decode(&datagram[..cut]);
                if at_peer_boundary {
                    assert_eq!(result, Ok(()), "cut at {cut}");
                } else {
                    assert!(
                        matches!(result, Err(TrackerError::Malformed(_))),
                        "cut at {cut} of {}: {result:?}",
                        datagram.len()
                    );
                }
            }
        }
    }

    #[test]
    fn reply_header_needs_eight_bytes() {
        assert_eq!(reply_header(&[0; 7]), None);
        assert_eq!(reply_header(&hex("00000003 0000002a")), Some((3, 42)));
    }

    // -- URLs ------------------------------------------------------------------

    #[test]
    fn parse_udp_url_takes_host_and_port() {
        let cases = [
            (
                "udp://tracker.example.org:6969",
                "tracker.example.org",
                6969,
            ),
            (
                "udp://tracker.example.org:6969/announce",
                "tracker.example.org",
                6969,
            ),
            ("UDP://127.0.0.1:80/announce?passkey=x", "127.0.0.1", 80),
            ("udp://[::1]:6969/announce", "::1", 6969),
            ("udp://[2001:db8::1]:1", "2001:db8::1", 1),
            ("udp://t-1_x:65535#frag", "t-1_x", 65535),
        ];
        for (url, host, port) in cases {
            assert_eq!(parse_udp_url(url), Some((host.to_owned(), port)), "{url}");
        }
    }

    #[test]
    fn parse_udp_url_refuses_everything_else() {
        let cases = [
            "http://tracker.example.org:6969/announce",
            "udp://tracker.example.org/announce",
            "udp://tracker.example.org:/announce",
            "udp://tracker.example.org:0",
            "udp://tracker.example.org:65536",
            "udp://tracker.example.org:+80",
            "udp://tracker.example.org:0080x",
            "udp://:6969",
            "udp://user@host:6969",
            "udp://::1:6969",
            "udp://[::1]6969",
            "udp://[::1]",
            "udp://[not-v6]:6969",
            "udp://[fe80::1%eth0]:6969",
            "udp://ho st:6969",
            "udp:/host:6969",
            "",
        ];
        for url in cases {
            assert_eq!(parse_udp_url(url), None, "{url}");
        }
    }

    // -- the state machine -----------------------------------------------------

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn announce_at(
        now: Instant,
        cached: Option<UdpConnection>,
        timeouts: UdpTimeouts,
    ) -> UdpAnnounce {
        let query = AnnounceQuery {
            request: request(),
            ipv6: false,
        };
        UdpExchange::new(query, now, cached, timeouts, &mut Rng::new(7))
    }

    /// Takes the one datagram due now and returns its header; fails if
    /// there is none or more than one.
    fn sent<Q: UdpQuery>(exchange: &mut UdpExchange<Q>, now: Instant) -> (u64, u32, u32, Vec<u8>) {
        let packet = exchange.poll_transmit(now).expect("a datagram to send");
        assert_eq!(exchange.poll_transmit(now), None, "a second datagram");
        let (id, action, tid) = request_header(&packet);
        (id, action, tid, packet)
    }

    #[test]
    fn happy_path_connects_then_announces() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        assert_eq!(
            exchange.next_deadline(),
            Some(t0),
            "the connect is due at once"
        );

        let (protocol, action, connect_tid, _) = sent(&mut exchange, t0);
        assert_eq!((protocol, action), (PROTOCOL_ID, ACTION_CONNECT));
        assert_eq!(exchange.next_deadline(), Some(t0 + secs(15)));

        let t1 = t0 + Duration::from_millis(40);
        exchange.handle_datagram(&connect_reply(connect_tid, 0xC0FFEE), t1);
        let (id, action, announce_tid, packet) = sent(&mut exchange, t1);
        assert_eq!((id, action), (0xC0FFEE, ACTION_ANNOUNCE));
        assert_ne!(
            announce_tid, connect_tid,
            "a new transaction id per request"
        );
        assert_eq!(packet, encode_announce(0xC0FFEE, announce_tid, &request()));
        assert_eq!(
            exchange.connection(),
            Some(UdpConnection {
                id: 0xC0FFEE,
                obtained_at: t1
            })
        );

        let t2 = t1 + Duration::from_millis(40);
        let peers = hex("7f000001 1ae1");
        exchange.handle_datagram(&announce_reply(announce_tid, 900, 1, 2, &peers), t2);
        assert!(exchange.is_done());
        assert_eq!(exchange.next_deadline(), None);
        assert_eq!(exchange.poll_transmit(t2), None);
        let reply = exchange.poll_result().unwrap().unwrap();
        assert_eq!(reply.peers, vec![addr("127.0.0.1:6881")]);
        assert_eq!(reply.interval, secs(900));
        assert_eq!((reply.complete, reply.incomplete), (Some(2), Some(1)));
        assert_eq!(exchange.poll_result(), None, "the result is given once");
    }

    #[test]
    fn a_lost_connect_is_sent_again_at_15_s_then_45_s() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, first) = sent(&mut exchange, t0);

        exchange.handle_timeout(t0 + secs(14));
        assert_eq!(exchange.poll_transmit(t0 + secs(14)), None, "too early");

        exchange.handle_timeout(t0 + secs(15));
        let (_, action, tid_again, second) = sent(&mut exchange, t0 + secs(15));
        assert_eq!(action, ACTION_CONNECT);
        assert_eq!(
            tid_again, tid,
            "the same connect, so a late reply still counts"
        );
        assert_eq!(second, first);
        assert_eq!(exchange.next_deadline(), Some(t0 + secs(45)));

        exchange.handle_timeout(t0 + secs(45));
        assert!(exchange.poll_transmit(t0 + secs(45)).is_some());
        assert_eq!(exchange.next_deadline(), Some(t0 + secs(105)));

        // The reply to the first send arrives late: still accepted.
        exchange.handle_datagram(&connect_reply(tid, 5), t0 + secs(50));
        let (id, action, _, _) = sent(&mut exchange, t0 + secs(50));
        assert_eq!((id, action), (5, ACTION_ANNOUNCE));
        // The back-off is the exchange's: the announce waits 15 s × 2^2.
        assert_eq!(exchange.next_deadline(), Some(t0 + secs(110)));
    }

    #[test]
    fn resends_follow_bep_15_then_it_gives_up() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let expected_sends = [0, 15, 45, 105, 225, 465, 945, 1905, 3825];
        let mut sends = Vec::new();
        let mut now = t0;
        while !exchange.is_done() {
            if let Some(packet) = exchange.poll_transmit(now) {
                assert_eq!(request_header(&packet).1, ACTION_CONNECT);
                sends.push(now.duration_since(t0).as_secs());
            }
            let Some(deadline) = exchange.next_deadline() else {
                break;
            };
            now = deadline;
            exchange.handle_timeout(now);
        }
        assert_eq!(sends, expected_sends);
        assert_eq!(now, t0 + secs(7665), "gives up 64 min after the 9th send");
        assert_eq!(
            exchange.poll_result(),
            Some(Err(TrackerError::Transport(
                "no reply from the UDP tracker after 9 attempts".into()
            )))
        );
    }

    #[test]
    fn short_timeouts_give_up_sooner() {
        let timeouts = UdpTimeouts {
            base: Duration::from_millis(100),
            max_retries: 2,
        };
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, timeouts);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for (send_at, lost_at) in [(0, 100), (100, 300), (300, 700)] {
            assert!(
                exchange.poll_transmit(ms(send_at)).is_some(),
                "send at {send_at} ms"
            );
            assert_eq!(exchange.next_deadline(), Some(ms(lost_at)));
            exchange.handle_timeout(ms(lost_at));
        }
        assert!(exchange.is_done());
        assert!(matches!(
            exchange.poll_result(),
            Some(Err(TrackerError::Transport(_)))
        ));
    }

    #[test]
    fn datagrams_not_for_us_are_ignored() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, _) = sent(&mut exchange, t0);
        let other = tid.wrapping_add(1);
        let strays = [
            vec![],
            vec![0; 7],
            connect_reply(other, 1),
            error_reply(other, b"not you"),
            announce_reply(other, 60, 0, 0, &[]),
            b"\x00\x00\x00\x00garbage!".to_vec(),
        ];
        for stray in &strays {
            exchange.handle_datagram(stray, t0 + secs(1));
            assert_eq!(exchange.poll_transmit(t0 + secs(1)), None);
            assert_eq!(exchange.poll_result(), None);
            assert_eq!(exchange.next_deadline(), Some(t0 + secs(15)));
        }
        exchange.handle_datagram(&connect_reply(tid, 3), t0 + secs(2));
        assert_eq!(sent(&mut exchange, t0 + secs(2)).1, ACTION_ANNOUNCE);
    }

    #[test]
    fn an_error_reply_ends_the_exchange_with_failure() {
        let t0 = Instant::now();
        // At the connect.
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, _) = sent(&mut exchange, t0);
        exchange.handle_datagram(&error_reply(tid, b"go away"), t0);
        assert_eq!(
            exchange.poll_result(),
            Some(Err(TrackerError::Failure("go away".into())))
        );
        assert_eq!(exchange.next_deadline(), None);

        // At the announce.
        let cached = UdpConnection {
            id: 8,
            obtained_at: t0,
        };
        let mut exchange = announce_at(t0, Some(cached), UdpTimeouts::default());
        let (_, action, tid, _) = sent(&mut exchange, t0);
        assert_eq!(action, ACTION_ANNOUNCE);
        exchange.handle_datagram(&error_reply(tid, b"unregistered torrent\0"), t0);
        assert_eq!(
            exchange.poll_result(),
            Some(Err(TrackerError::Failure("unregistered torrent".into())))
        );
    }

    #[test]
    fn a_broken_reply_with_our_transaction_id_ends_the_exchange_as_malformed() {
        let t0 = Instant::now();
        let cases: [fn(u32) -> Vec<u8>; 3] = [
            |tid| connect_reply(tid, 1)[..12].to_vec(),
            |tid| announce_reply(tid, 60, 0, 0, &[]),
            |tid| reply(9, tid, &[0; 8]),
        ];
        for make in cases {
            let mut exchange = announce_at(t0, None, UdpTimeouts::default());
            let (_, _, tid, _) = sent(&mut exchange, t0);
            exchange.handle_datagram(&make(tid), t0);
            assert!(matches!(
                exchange.poll_result(),
                Some(Err(TrackerError::Malformed(_)))
            ));
            assert!(exchange.is_done());
        }
    }

    #[test]
    fn a_cached_connection_id_is_used_while_under_a_minute_old() {
        let t0 = Instant::now();
        let cases = [
            (Duration::ZERO, true),
            (secs(30), true),
            (Duration::from_millis(59_999), true),
            (secs(60), false),
            (secs(600), false),
        ];
        for (age, reused) in cases {
            let cached = UdpConnection {
                id: 77,
                obtained_at: t0,
            };
            let mut exchange = announce_at(t0 + age, Some(cached), UdpTimeouts::default());
            let (id, action, _, _) = sent(&mut exchange, t0 + age);
            if reused {
                assert_eq!((id, action), (77, ACTION_ANNOUNCE), "age {age:?}");
            } else {
                assert_eq!((id, action), (PROTOCOL_ID, ACTION_CONNECT), "age {age:?}");
            }
        }
    }

    #[test]
    fn an_expired_connection_id_is_renewed_before_a_resend() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, _) = sent(&mut exchange, t0);
        exchange.handle_datagram(&connect_reply(tid, 1), t0);
        let (_, _, announce_tid, first) = sent(&mut exchange, t0);

        // Lost at 15 s and 45 s: the same announce goes again, id still fresh.
        for at in [15, 45] {
            exchange.handle_timeout(t0 + secs(at));
            let (id, action, tid, packet) = sent(&mut exchange, t0 + secs(at));
            assert_eq!((id, action, tid), (1, ACTION_ANNOUNCE, announce_tid));
            assert_eq!(packet, first);
        }
        // Lost again at 105 s: the id is 105 s old, so connect again.
        exchange.handle_timeout(t0 + secs(105));
        let (protocol, action, reconnect_tid, _) = sent(&mut exchange, t0 + secs(105));
        assert_eq!((protocol, action), (PROTOCOL_ID, ACTION_CONNECT));
        assert_ne!(reconnect_tid, announce_tid);

        exchange.handle_datagram(&announce_reply(announce_tid, 60, 0, 0, &[]), t0 + secs(106));
        assert_eq!(
            exchange.poll_result(),
            None,
            "the old announce's tid is stale now"
        );

        exchange.handle_datagram(&connect_reply(reconnect_tid, 2), t0 + secs(107));
        let (id, action, new_tid, _) = sent(&mut exchange, t0 + secs(107));
        assert_eq!((id, action), (2, ACTION_ANNOUNCE));
        assert_eq!(
            exchange.connection(),
            Some(UdpConnection {
                id: 2,
                obtained_at: t0 + secs(107)
            })
        );
        exchange.handle_datagram(&announce_reply(new_tid, 60, 0, 0, &[]), t0 + secs(108));
        assert!(matches!(exchange.poll_result(), Some(Ok(_))));
    }

    #[test]
    fn an_ipv6_announce_reads_18_byte_peers() {
        let t0 = Instant::now();
        let cached = UdpConnection {
            id: 1,
            obtained_at: t0,
        };
        let query = AnnounceQuery {
            request: request(),
            ipv6: true,
        };
        let mut exchange = UdpExchange::new(
            query,
            t0,
            Some(cached),
            UdpTimeouts::default(),
            &mut Rng::new(1),
        );
        let (_, _, tid, _) = sent(&mut exchange, t0);
        let peer = hex("20010db8000000000000000000000001 1ae1");
        exchange.handle_datagram(&announce_reply(tid, 60, 0, 0, &peer), t0);
        let reply = exchange.poll_result().unwrap().unwrap();
        assert_eq!(reply.peers, vec![addr("[2001:db8::1]:6881")]);
    }

    #[test]
    fn a_scrape_connects_then_asks_for_every_hash() {
        let t0 = Instant::now();
        let hashes = [[1u8; 20], [2u8; 20]];
        let query = ScrapeQuery::new(&hashes).unwrap();
        let mut exchange: UdpScrape =
            UdpExchange::new(query, t0, None, UdpTimeouts::default(), &mut Rng::new(3));
        let (_, action, tid, _) = sent(&mut exchange, t0);
        assert_eq!(action, ACTION_CONNECT);
        exchange.handle_datagram(&connect_reply(tid, 99), t0);
        let (id, action, tid, packet) = sent(&mut exchange, t0);
        assert_eq!((id, action), (99, ACTION_SCRAPE));
        assert_eq!(packet, encode_scrape(99, tid, &hashes));
        exchange.handle_datagram(&scrape_reply(tid, &[(1, 2, 3), (4, 5, 6)]), t0);
        let stats = exchange.poll_result().unwrap().unwrap();
        assert_eq!(
            stats,
            vec![
                ScrapeStats {
                    seeders: 1,
                    completed: 2,
                    leechers: 3
                },
                ScrapeStats {
                    seeders: 4,
                    completed: 5,
                    leechers: 6
                },
            ]
        );
    }

    #[test]
    fn a_scrape_query_holds_one_to_74_hashes() {
        assert_eq!(ScrapeQuery::new(&[]), None);
        assert!(ScrapeQuery::new(&[[0; 20]; MAX_SCRAPE_HASHES]).is_some());
        assert_eq!(ScrapeQuery::new(&[[0; 20]; MAX_SCRAPE_HASHES + 1]), None);
    }

    #[test]
    fn nothing_happens_after_the_end() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, _) = sent(&mut exchange, t0);
        exchange.handle_datagram(&error_reply(tid, b"no"), t0);
        exchange.handle_datagram(&connect_reply(tid, 1), t0);
        exchange.handle_timeout(t0 + secs(10_000));
        assert_eq!(exchange.poll_transmit(t0 + secs(10_000)), None);
        assert_eq!(exchange.next_deadline(), None);
        assert_eq!(
            exchange.poll_result(),
            Some(Err(TrackerError::Failure("no".into())))
        );
        assert_eq!(exchange.poll_result(), None);
    }

    #[test]
    fn exchanges_draw_different_transaction_ids() {
        let t0 = Instant::now();
        let mut rng = Rng::new(11);
        let query = || AnnounceQuery {
            request: request(),
            ipv6: false,
        };
        let mut a = UdpExchange::new(query(), t0, None, UdpTimeouts::default(), &mut rng);
        let mut b = UdpExchange::new(query(), t0, None, UdpTimeouts::default(), &mut rng);
        assert_ne!(sent(&mut a, t0).2, sent(&mut b, t0).2);
    }

    #[test]
    fn a_silent_tracker_is_given_up_after_three_sends_in_28_s() {
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, ANNOUNCE_TIMEOUTS);
        let mut sends = Vec::new();
        let mut now = t0;
        while !exchange.is_done() {
            if exchange.poll_transmit(now).is_some() {
                sends.push(now.duration_since(t0).as_secs());
            }
            let Some(deadline) = exchange.next_deadline() else {
                break;
            };
            now = deadline;
            exchange.handle_timeout(now);
        }
        assert_eq!(sends, [0, 4, 12]);
        assert_eq!(now, t0 + secs(28));
        assert_eq!(ANNOUNCE_TIMEOUTS.give_up_after(), secs(28));
        assert!(
            (secs(15)..=secs(30)).contains(&ANNOUNCE_TIMEOUTS.give_up_after()),
            "a silent tracker is dropped within 15-30 s"
        );
        assert_eq!(
            exchange.poll_result(),
            Some(Err(TrackerError::Transport(
                "no reply from the UDP tracker after 3 attempts".into()
            )))
        );
    }

    #[test]
    fn give_up_after_sums_every_wait() {
        assert_eq!(UdpTimeouts::default().give_up_after(), secs(7665));
        let one = UdpTimeouts {
            base: secs(3),
            max_retries: 0,
        };
        assert_eq!(one.give_up_after(), secs(3));
        let huge = UdpTimeouts {
            base: Duration::MAX,
            max_retries: 8,
        };
        assert_eq!(huge.give_up_after(), Duration::MAX);
    }

    #[test]
    fn timeouts_double_and_saturate() {
        let timeouts = UdpTimeouts::default();
        let waits: Vec<u64> = (0..=8).map(|n| timeouts.wait(n).as_secs()).collect();
        assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
        assert_eq!(
            timeouts.wait(200),
            timeouts.wait(32),
            "the factor stops at u32::MAX"
        );
        let huge = UdpTimeouts {
            base: Duration::MAX,
            max_retries: 8,
        };
        assert_eq!(huge.wait(1), Duration::MAX);
        let t0 = Instant::now();
        let mut exchange = announce_at(t0, None, huge);
        assert!(exchange.poll_transmit(t0).is_some(), "no overflow panic");
        assert_eq!(exchange.next_deadline(), None);
    }
}
