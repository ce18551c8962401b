//! The announce codec: the URL we send to an HTTP tracker and the reply it
//! sends back (BEP 3 "Trackers"; compact peers of BEP 23; `peers6` and
//! `ipv6=` of BEP 7).
//!
//! Layer 0: pure (no I/O, no clock). [`announce_url`] turns an
//! [`AnnounceRequest`] into the exact bytes of the GET URL; [`parse_response`]
//! turns the bencoded body into an [`AnnounceResponse`]. [`super::http`] does
//! the network part in between.
//!
//! The info-hash and peer id are raw bytes, so they are percent-encoded one
//! byte at a time: the unreserved characters `A-Z a-z 0-9 - . _ ~` stay
//! literal, every other byte becomes `%XX` with upper-case hex. No general URL
//! library is used, because the tracker hashes exactly these bytes.
//!
//! The reply is untrusted. Intervals are clamped to
//! [`MIN_INTERVAL`]..=[`MAX_INTERVAL`], at most [`MAX_PEERS_PER_REPLY`] peers
//! are kept, peers with port 0 are dropped, and a peer address must be an IP
//! literal: a host name in a reply is skipped, never resolved (resolving would
//! block the event loop and let a tracker aim us at any name it likes).
//! Optional fields of the wrong type are treated as absent; a reply without
//! usable `peers` is [`TrackerError::Malformed`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::TrackerError;
use crate::bencode::{self, Dict, Limits, List, Value};

/// Announce interval used when the reply has none: the 30 minutes most
/// trackers send (BEP 3 gives no default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Shortest interval we accept: a broken or hostile tracker asking for an
/// announce every second would have us hammer it and stall our own loop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// Longest interval we accept: past three hours our peer list goes stale and
/// the tracker forgets us, so a larger value is treated as this one.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3 * 60 * 60);

/// Most peers kept from one reply. Trackers send 50 by default and a few
/// hundred at most on request; every peer kept costs memory and a connection
/// attempt, so the rest of a larger list is ignored.
pub const MAX_PEERS_PER_REPLY: usize = 500;

/// Longest tracker text kept (`failure reason`, `warning message`), in
/// characters: enough for any real message, short enough for one log line.
pub const MAX_TRACKER_TEXT_CHARS: usize = 256;

/// Longest `tracker id` we echo back, in bytes. Real ids are short; a huge one
/// would bloat every later announce URL, so it is ignored.
const MAX_TRACKER_ID_LEN: usize = 256;

/// Bytes of a compact port: big-endian `u16` after the address (BEP 23).
const COMPACT_PORT_LEN: usize = 2;

/// Why we announce (BEP 3 `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Event {
    /// A periodic announce; the `event` parameter is left out.
    #[default]
    Empty,
    /// The first announce of a download.
    Started,
    /// The download just finished (sent once, not when starting as a seeder).
    Completed,
    /// We are shutting down gracefully.
    Stopped,
}

impl Event {
    /// The value of the `event` parameter, or `None` when it is left out.
    pub fn as_param(self) -> Option<&'static str> {
        match self {
            Event::Empty => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }
}

/// What we tell a tracker in one announce (the BEP 3 query parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent's info-hash: SHA-1 of the bencoded `info` dictionary.
    pub info_hash: [u8; 20],
    /// Our peer id, the same one we send in handshakes.
    pub peer_id: [u8; 20],
    /// The TCP port we accept peers on.
    pub port: u16,
    /// Payload bytes sent to peers since the `started` announce.
    pub uploaded: u64,
    /// Payload bytes received from peers since the `started` announce.
    pub downloaded: u64,
    /// Bytes we still need to complete the torrent (0 for a seeder).
    pub left: u64,
    /// Why we announce.
    pub event: Event,
    /// How many peers we would like; `None` leaves the tracker's default.
    pub numwant: Option<u32>,
    /// A random number that lets the tracker recognise us if our IP changes;
    /// sent as eight hex digits.
    pub key: Option<u32>,
    /// The `tracker id` the tracker gave us in an earlier reply, echoed back.
    pub tracker_id: Option<String>,
    /// Our IPv6 address, sent as `ipv6=` (BEP 7) so that a tracker we reach
    /// over IPv4 can list us to IPv6 peers too; `None` leaves it out. HTTP
    /// only: a UDP announce has no field for it (BEP 15).
    pub ipv6: Option<Ipv6Addr>,
}

/// What a tracker told us in a successful announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// When to announce again, clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`]
    /// ([`DEFAULT_INTERVAL`] when the reply has none).
    pub interval: Duration,
    /// The tracker's minimum time between announces, clamped like `interval`.
    pub min_interval: Option<Duration>,
    /// Peers to connect to: IPv4 from `peers`, then IPv6 from `peers6`; none
    /// with port 0, at most [`MAX_PEERS_PER_REPLY`].
    pub peers: Vec<SocketAddr>,
    /// Seeders in the swarm, when the tracker says and the count fits a `u32`.
    pub complete: Option<u32>,
    /// Leechers in the swarm, when the tracker says and the count fits a `u32`.
    pub incomplete: Option<u32>,
    /// The tracker's `warning message`, truncated to [`MAX_TRACKER_TEXT_CHARS`].
    /// Untrusted text: escape it before showing it.
    pub warning: Option<String>,
    /// An id to echo back in later announces ([`AnnounceRequest::tracker_id`]).
    pub tracker_id: Option<String>,
}

/// The full announce URL: `base` with the BEP 3 query appended.
///
/// A query already in `base` (a private tracker's passkey) is kept and the
/// announce parameters follow it; a `#fragment` is dropped, since it is never
/// sent to a server. The result is ready to send byte for byte: nothing in it
/// needs further encoding.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> String {
    append_query(base, &query(req))
}

/// `base` with `params` (already encoded `name=value` pairs joined by `&`)
/// added to its query: after a `?`, or after the query already there (a
/// private tracker's passkey). A `#fragment` is dropped, since it is never
/// sent to a server. Shared by the announce and the scrape (BEP 48) URLs.
pub(crate) fn append_query(base: &str, params: &str) -> String {
    let base = base
        .split_once('#')
        .map_or(base, |(before, _fragment)| before);
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with(['?', '&']) {
        ""
    } else {
        "&"
    };
    format!("{base}{separator}{params}")
}

/// The announce parameters, `name=value` joined by `&`.
fn query(req: &AnnounceRequest) -> String {
    let mut params: Vec<(&str, String)> = vec![
        ("info_hash", percent_encode(&req.info_hash)),
        ("peer_id", percent_encode(&req.peer_id)),
        ("port", req.port.to_string()),
        ("uploaded", req.uploaded.to_string()),
        ("downloaded", req.downloaded.to_string()),
        ("left", req.left.to_string()),
        ("compact", "1".to_owned()),
        ("no_peer_id", "1".to_owned()),
    ];
    if let Some(event) = req.event.as_param() {
        params.push(("event", event.to_owned()));
    }
    if let Some(numwant) = req.numwant {
        params.push(("numwant", numwant.to_string()));
    }
    if let Some(key) = req.key {
        params.push(("key", format!("{key:08X}")));
    }
    if let Some(tracker_id) = &req.tracker_id {
        params.push(("trackerid", percent_encode(tracker_id.as_bytes())));
    }
    if let Some(ip) = req.ipv6 {
        params.push(("ipv6", percent_encode(ip.to_string().as_bytes())));
    }
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte except the unreserved ones (RFC 3986).
pub(crate) fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(upper_hex_digit(byte >> 4));
            out.push(upper_hex_digit(byte & 0x0f));
        }
    }
    out
}

/// `A-Z a-z 0-9 - . _ ~`: the bytes a URL may carry without encoding.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// The upper-case hex digit for the low four bits of `nibble`.
fn upper_hex_digit(nibble: u8) -> char {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    char::from(DIGITS[usize::from(nibble & 0x0f)])
}

/// Decodes a tracker reply (announce or scrape) into its top-level
/// dictionary; a `failure reason` becomes [`TrackerError::Failure`].
pub(crate) fn decode_reply<'a>(
    body: &'a [u8],
    what: &str,
) -> Result<bencode::Dict<'a>, TrackerError> {
    let value = bencode::decode(body, Limits::MESSAGE)
        .map_err(|error| TrackerError::Malformed(error.to_string()))?;
    let bencode::Value::Dict(dict) = value else {
        return Err(TrackerError::Malformed(format!(
            "{what} is a {}, not a dictionary",
            value.kind_name()
        )));
    };
    if let Some(reason) = dict.get(b"failure reason") {
        let text = reason.as_bytes().map_or_else(
            || format!("(a non-text {})", reason.kind_name()),
            tracker_text,
        );
        return Err(TrackerError::Failure(text));
    }
    Ok(dict)
}

/// Parses a tracker's reply body.
///
/// A `failure reason` is returned as [`TrackerError::Failure`]; anything that
/// is not a bencoded dictionary with usable `peers` or `peers6` is
/// [`TrackerError::Malformed`].
pub fn parse_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let dict = decode_reply(body, "reply")?;
    let dict = &dict;
    Ok(AnnounceResponse {
        interval: dict
            .get_int(b"interval")
            .map_or(DEFAULT_INTERVAL, clamp_interval),
        min_interval: dict.get_int(b"min interval").map(clamp_interval),
        peers: parse_peers(dict)?,
        complete: count(dict, b"complete"),
        incomplete: count(dict, b"incomplete"),
        warning: dict.get_bytes(b"warning message").map(tracker_text),
        tracker_id: dict
            .get_str(b"tracker id")
            .filter(|id| id.len() <= MAX_TRACKER_ID_LEN)
            .map(str::to_owned),
    })
}

/// A number of seconds from the tracker as a sane interval: negative counts
/// as zero, and the result is clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub(crate) fn clamp_interval(seconds: i64) -> Duration {
    let seconds = u64::try_from(seconds).unwrap_or(0);
    Duration::from_secs(seconds).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// A swarm count, if present, an integer, and within `u32`.
fn count(dict: &Dict<'_>, key: &[u8]) -> Option<u32> {
    dict.get_int(key).and_then(|n| u32::try_from(n).ok())
}

/// Tracker text as a `String`: invalid UTF-8 replaced, cut to
/// [`MAX_TRACKER_TEXT_CHARS`] characters.
pub(crate) fn tracker_text(bytes: &[u8]) -> String {
    // A UTF-8 character is at most 4 bytes; do not decode more than we keep.
    let head = bytes.get(..MAX_TRACKER_TEXT_CHARS * 4).unwrap_or(bytes);
    String::from_utf8_lossy(head)
        .chars()
        .take(MAX_TRACKER_TEXT_CHARS)
        .collect()
}

/// The peers of `peers` (compact string or list of dictionaries) and
/// `peers6` (compact string), in that order, filtered and capped.
fn parse_peers(dict: &Dict<'_>) -> Result<Vec<SocketAddr>, TrackerError> {
    let v4 = dict.get(b"peers");
    let v6 = dict.get(b"peers6");
    if v4.is_none() && v6.is_none() {
        return Err(TrackerError::Malformed("no `peers` in the reply".into()));
    }
    let mut peers = Vec::new();
    match v4 {
        None => {}
        Some(Value::Bytes(bytes)) => push_compact::<4>(bytes, "peers", &mut peers)?,
        Some(Value::List(list)) => push_dict_peers(list, &mut peers),
        Some(other) => return Err(wrong_type("peers", other)),
    }
    match v6 {
        None => {}
        Some(Value::Bytes(bytes)) => push_compact::<16>(bytes, "peers6", &mut peers)?,
        Some(other) => return Err(wrong_type("peers6", other)),
    }
    Ok(peers)
}

/// The error for a peer list of the wrong bencode type.
fn wrong_type(key: &str, value: &Value<'_>) -> TrackerError {
    TrackerError::Malformed(format!("`{key}` is a {}", value.kind_name()))
}

/// Adds `peer` unless its port is 0 or the list is full.
fn keep(peers: &mut Vec<SocketAddr>, peer: SocketAddr) {
    if peer.port() != 0 && peers.len() < MAX_PEERS_PER_REPLY {
        peers.push(peer);
    }
}

/// Adds the peers of a compact string: each an `IP_LEN`-byte address then a
/// big-endian port (BEP 23 for IPv4, BEP 7 for IPv6). A length that is not a
/// whole number of entries is malformed.
pub(crate) fn push_compact<const IP_LEN: usize>(
    bytes: &[u8],
    key: &str,
    peers: &mut Vec<SocketAddr>,
) -> Result<(), TrackerError>
where
    IpAddr: From<[u8; IP_LEN]>,
{
    let entry_len = IP_LEN + COMPACT_PORT_LEN;
    if !bytes.len().is_multiple_of(entry_len) {
        return Err(TrackerError::Malformed(format!(
            "`{key}` is {} bytes, not a multiple of {entry_len}",
            bytes.len()
        )));
    }
    for entry in bytes.chunks_exact(entry_len) {
        if let Some(peer) = compact_peer::<IP_LEN>(entry) {
            keep(peers, peer);
        }
    }
    Ok(())
}

/// One compact entry: address bytes, then the port big-endian.
fn compact_peer<const IP_LEN: usize>(entry: &[u8]) -> Option<SocketAddr>
where
    IpAddr: From<[u8; IP_LEN]>,
{
    let (ip, port) = entry.split_first_chunk::<IP_LEN>()?;
    let port = <[u8; COMPACT_PORT_LEN]>::try_from(port).ok()?;
    Some(SocketAddr::new(IpAddr::from(*ip), u16::from_be_bytes(port)))
}

/// Adds the peers of a non-compact list (`ip`, `port`, `peer id`
/// dictionaries). Entries that are not dictionaries, whose `ip` is not an IP
/// literal, or whose `port` is not in 1..=65535 are skipped.
fn push_dict_peers(list: &List<'_>, peers: &mut Vec<SocketAddr>) {
    for item in &list.items {
        if let Some(peer) = item.as_dict().and_then(dict_peer) {
            keep(peers, peer);
        }
    }
}

/// One non-compact peer; `None` unless `ip` is an IP literal (IPv6 possibly
/// in brackets) and `port` fits a `u16`.
fn dict_peer(dict: &Dict<'_>) -> Option<SocketAddr> {
    let ip = dict.get_str(b"ip")?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(ip);
    let ip: IpAddr = ip.parse().ok()?;
    let port = u16::try_from(dict.get_int(b"port")?).ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;
