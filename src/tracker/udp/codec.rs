//! The packets of the UDP tracker protocol (BEP 15): encoding our
//! requests, decoding a tracker's replies, and `udp://` URLs.
//!
//! Layer 0: pure (bytes in, values out). The exchange that sends these
//! packets and waits for their replies is [`super::UdpExchange`].
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
//! HTTP announces ([`MAX_PEERS_PER_REPLY`](crate::tracker::MAX_PEERS_PER_REPLY), no
//! port 0).

use crate::tracker::announce::{
    clamp_interval, push_compact, tracker_text, AnnounceRequest, AnnounceResponse, Event,
};
use crate::tracker::scrape::ScrapeStats;
use crate::tracker::TrackerError;

/// The connection id of every connect request: a magic number that tells the
/// tracker this is BEP 15.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Action of a connect request and reply.
pub(super) const ACTION_CONNECT: u32 = 0;
/// Action of an announce request and reply.
pub(super) const ACTION_ANNOUNCE: u32 = 1;
/// Action of a scrape request and reply.
pub(super) const ACTION_SCRAPE: u32 = 2;
/// Action of an error reply.
pub(super) const ACTION_ERROR: u32 = 3;

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
/// [`MAX_PEERS_PER_REPLY`](crate::tracker::MAX_PEERS_PER_REPLY) peers even as 18-byte
/// IPv6 entries (9,020 bytes); trackers keep their replies far smaller, so
/// anything longer is not a reply. The session can size its receive buffer
/// one byte larger to notice a longer datagram instead of reading it cut.
pub const MAX_DATAGRAM_LEN: usize = 16 * 1024;

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
/// add, cut to [`MAX_TRACKER_TEXT_CHARS`](crate::tracker::MAX_TRACKER_TEXT_CHARS).
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

#[cfg(test)]
mod tests;
