//! The HTTP side of the built-in tracker: one request head in, a typed
//! [`TrackerRequest`] out; and the bytes of the response going back.
//!
//! Layer 0: pure (no I/O, no clock). Implements the server half of the
//! announce of BEP 3 ("Trackers"), with the compact flag of BEP 23 and the
//! scrape of BEP 48. The mio server buffers bytes until
//! [`request_head_complete`] finds the blank line, hands the head to
//! [`parse_request`], and writes what [`http_response`] builds.
//!
//! Everything here comes from strangers on the network, so:
//!
//! - The head is capped at [`MAX_REQUEST_HEAD_BYTES`]; a larger one is an
//!   error, never a bigger buffer. Only `GET` is served, and only
//!   `HTTP/1.0` and `HTTP/1.1`. Header lines are skipped unread: nothing a
//!   tracker needs is in them.
//! - Query values are percent-decoded byte for byte: `%XX` (either case) is
//!   one byte, every other byte stands for itself, and a `%` not followed by
//!   two hex digits rejects the request. A `+` is kept as the byte `+`, never
//!   turned into a space: a tracker query is not an HTML form, and the
//!   info-hash is raw bytes, where `+` is 0x2B (clients that mean 0x20 send
//!   `%20`, as pollen's own [`announce_url`](crate::tracker::announce_url)
//!   does).
//! - The info-hash and peer id must decode to exactly 20 bytes; numbers are
//!   plain decimal digits (no sign, no spaces) that fit a `u64`; a parameter
//!   the announce uses may appear only once, so two parts of the system can
//!   never read two different values from one request.
//! - The `ip` parameter is ignored: the state records the address the
//!   connection came from. Believing `ip` would let anyone announce a victim's
//!   address into every swarm and aim all its peers at it.
//!
//! A bad announce or scrape is a [`RequestError`] whose text becomes the
//! bencoded `failure reason` ([`failure_body`]), sent with status 200 so that
//! clients show it (many ignore the body of any other status); a broken
//! request line gets the plain status of [`RequestError::http_status`].

use std::fmt;

use crate::bencode::{self, Dict, Value};
use crate::tracker::announce::Event;

/// Largest request head we read, in bytes. A real announce is about 300
/// bytes (the longest part is two 60-character escaped 20-byte values); 8 KiB
/// leaves room for long cookies and user agents while bounding the buffer of
/// every connection.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// Peers sent when the client does not ask for a number (BEP 3 suggests 50).
pub const DEFAULT_NUMWANT: usize = 50;

/// Most peers sent in one reply, whatever `numwant` says. 200 is what the
/// greediest clients ask for; more only makes replies large without making a
/// swarm better connected.
pub const MAX_NUMWANT: usize = 200;

/// Most info-hashes in one scrape. An 8 KiB head holds at most about 130
/// escaped hashes; the cap keeps a scrape reply small whatever the head cap
/// becomes (BEP 15 allows about 74 per UDP scrape).
pub const MAX_SCRAPE_HASHES: usize = 100;

/// Longest `key` kept, in bytes. Clients send 8 hex digits; anything longer
/// than this is not a key.
pub const MAX_KEY_LEN: usize = 64;

/// A parsed tracker request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerRequest {
    /// `GET /announce?...`: a peer telling us about itself (BEP 3).
    Announce(AnnounceParams),
    /// `GET /scrape?...`: swarm counts for these info-hashes (BEP 48). Empty
    /// when the request names none (a "full scrape").
    Scrape(Vec<[u8; 20]>),
    /// A `GET` of any other path, lossily decoded for the log (a stranger's
    /// text: escape it when logging); the server answers 404.
    Other(String),
}

/// The parameters of one announce, checked (BEP 3, compact of BEP 23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceParams {
    /// The torrent's info-hash, 20 raw bytes.
    pub info_hash: [u8; 20],
    /// The announcing peer's id, 20 raw bytes.
    pub peer_id: [u8; 20],
    /// The TCP port the peer accepts connections on, never 0.
    pub port: u16,
    /// Payload bytes the peer has sent since its `started` (0 when absent).
    pub uploaded: u64,
    /// Payload bytes the peer has received since its `started` (0 when absent).
    pub downloaded: u64,
    /// Bytes the peer still needs; 0 means it is a seeder.
    pub left: u64,
    /// Why the peer announces.
    pub event: Event,
    /// How many peers it wants: [`DEFAULT_NUMWANT`] when absent, at most
    /// [`MAX_NUMWANT`].
    pub numwant: usize,
    /// Whether it wants the compact peer list (BEP 23; the default).
    pub compact: bool,
    /// Whether it asked to leave peer ids out of a non-compact list.
    pub no_peer_id: bool,
    /// The peer's `key`, raw bytes, at most [`MAX_KEY_LEN`]. Kept for logs;
    /// peers are identified by source address and port, not by key.
    pub key: Option<Vec<u8>>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The head is longer than [`MAX_REQUEST_HEAD_BYTES`].
    HeadTooLarge {
        /// The cap, in bytes.
        limit_bytes: usize,
    },
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    BadRequestLine,
    /// A method other than `GET` (lossily decoded, cut short).
    MethodNotAllowed(String),
    /// A `%` in the query is not followed by two hex digits.
    BadEscape,
    /// A required parameter is absent.
    Missing(&'static str),
    /// A parameter the announce uses appears more than once.
    Duplicate(&'static str),
    /// A parameter has a value we cannot use; `problem` says why.
    Invalid {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with its value.
        problem: &'static str,
    },
    /// A scrape names more than [`MAX_SCRAPE_HASHES`] info-hashes.
    TooManyHashes,
}

impl RequestError {
    /// The HTTP status to answer with. Parameter errors are 200 with a
    /// bencoded `failure reason` ([`failure_body`]), because clients only
    /// show the reason of a 200 reply; a broken request gets a plain error
    /// status.
    pub fn http_status(&self) -> u16 {
        match self {
            RequestError::HeadTooLarge { .. } => 431,
            RequestError::BadRequestLine => 400,
            RequestError::MethodNotAllowed(_) => 405,
            RequestError::BadEscape
            | RequestError::Missing(_)
            | RequestError::Duplicate(_)
            | RequestError::Invalid { .. }
            | RequestError::TooManyHashes => 200,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::HeadTooLarge { limit_bytes } => {
                write!(f, "request head is larger than {limit_bytes} bytes")
            }
            RequestError::BadRequestLine => f.write_str("malformed HTTP request line"),
            RequestError::MethodNotAllowed(method) => {
                write!(
                    f,
                    "method \"{}\" not allowed, only GET",
                    method.escape_debug()
                )
            }
            RequestError::BadEscape => f.write_str(
                "bad percent-escape in the query (a % must be followed by two hex digits)",
            ),
            RequestError::Missing(name) => write!(f, "missing parameter {name}"),
            RequestError::Duplicate(name) => write!(f, "parameter {name} given more than once"),
            RequestError::Invalid { name, problem } => write!(f, "invalid {name}: {problem}"),
            RequestError::TooManyHashes => {
                write!(f, "too many info_hash values, at most {MAX_SCRAPE_HASHES}")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// The length of the request head in `buf`, through the blank line that ends
/// it, or `None` while it is incomplete.
///
/// Lines may end in CRLF or a bare LF (RFC 9112 lets a server accept both).
/// Only the first [`MAX_REQUEST_HEAD_BYTES`] bytes are searched: `None` with
/// `buf.len() >= MAX_REQUEST_HEAD_BYTES` means the head is too large and the
/// connection should get [`RequestError::HeadTooLarge`] and be closed.
pub fn request_head_complete(buf: &[u8]) -> Option<usize> {
    let window = buf.get(..MAX_REQUEST_HEAD_BYTES).unwrap_or(buf);
    let mut line_start = 0;
    for (i, &byte) in window.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = window.get(line_start..i).unwrap_or_default();
        if (line.is_empty() || line == b"\r") && line_start > 0 {
            return Some(i + 1);
        }
        line_start = i + 1;
    }
    None
}

/// Parses one request head (as delimited by [`request_head_complete`]).
pub fn parse_request(head: &[u8]) -> Result<TrackerRequest, RequestError> {
    if head.len() > MAX_REQUEST_HEAD_BYTES {
        return Err(RequestError::HeadTooLarge {
            limit_bytes: MAX_REQUEST_HEAD_BYTES,
        });
    }
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (method, target) = split_request_line(line)?;
    if method != b"GET" {
        let shown: String = String::from_utf8_lossy(method).chars().take(16).collect();
        return Err(RequestError::MethodNotAllowed(shown));
    }
    let target = strip_absolute_form(target);
    let (path, query) = match target.iter().position(|&byte| byte == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (target, &b""[..]),
    };
    match path {
        b"/announce" => parse_announce(&parse_query(query)?).map(TrackerRequest::Announce),
        b"/scrape" => parse_scrape(&parse_query(query)?).map(TrackerRequest::Scrape),
        _ => Ok(TrackerRequest::Other(
            String::from_utf8_lossy(path).into_owned(),
        )),
    }
}

/// Splits `GET /x HTTP/1.1` into method and target, checking the version.
fn split_request_line(line: &[u8]) -> Result<(&[u8], &[u8]), RequestError> {
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::BadRequestLine);
    };
    let valid_method = !method.is_empty() && method.iter().all(u8::is_ascii_uppercase);
    let valid_version = version == b"HTTP/1.1" || version == b"HTTP/1.0";
    if !valid_method || !valid_version || target.is_empty() {
        return Err(RequestError::BadRequestLine);
    }
    Ok((method, target))
}

/// `http://host:port/path?q` becomes `/path?q` (the absolute form a proxy
/// may send, RFC 9112 section 3.2.2); an origin-form target is unchanged.
fn strip_absolute_form(target: &[u8]) -> &[u8] {
    let Some(rest) = target.strip_prefix(b"http://") else {
        return target;
    };
    match rest.iter().position(|&byte| byte == b'/') {
        Some(at) => &rest[at..],
        None => b"/",
    }
}

/// One decoded query parameter: name and value, raw bytes.
type Param = (Vec<u8>, Vec<u8>);

/// The query as decoded `(name, value)` pairs in order; empty pieces
/// (`a=1&&b=2`) are skipped, a piece without `=` has an empty value.
fn parse_query(query: &[u8]) -> Result<Vec<Param>, RequestError> {
    query
        .split(|&byte| byte == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&byte| byte == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &b""[..]),
            };
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes (either case); every other byte, `+` included,
/// stands for itself.
fn percent_decode(input: &[u8]) -> Result<Vec<u8>, RequestError> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'%' {
            out.push(byte);
            rest = tail;
            continue;
        }
        let (high, low) = match tail {
            [high, low, ..] => (hex_value(*high), hex_value(*low)),
            _ => (None, None),
        };
        let (Some(high), Some(low)) = (high, low) else {
            return Err(RequestError::BadEscape);
        };
        out.push(high << 4 | low);
        rest = tail.get(2..).unwrap_or_default();
    }
    Ok(out)
}

/// The value of one hex digit, either case.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The single value of `name`: `None` when absent, an error when repeated.
fn single<'q>(pairs: &'q [Param], name: &'static str) -> Result<Option<&'q [u8]>, RequestError> {
    let mut values = pairs
        .iter()
        .filter(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value.as_slice());
    let first = values.next();
    if values.next().is_some() {
        return Err(RequestError::Duplicate(name));
    }
    Ok(first)
}

/// The value of a required parameter.
fn required<'q>(pairs: &'q [Param], name: &'static str) -> Result<&'q [u8], RequestError> {
    single(pairs, name)?.ok_or(RequestError::Missing(name))
}

/// A 20-byte value (info-hash, peer id).
fn twenty_bytes(name: &'static str, value: &[u8]) -> Result<[u8; 20], RequestError> {
    <[u8; 20]>::try_from(value).map_err(|_| RequestError::Invalid {
        name,
        problem: "not 20 bytes after percent-decoding",
    })
}

/// A decimal number: digits only, fitting a `u64`.
fn number(name: &'static str, value: &[u8]) -> Result<u64, RequestError> {
    let invalid = |problem| RequestError::Invalid { name, problem };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid("not a non-negative decimal number"));
    }
    // All ASCII digits, so valid UTF-8; `parse` only fails on overflow here.
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| invalid("too large"))
}

/// An optional number, `default` when absent.
fn number_or(pairs: &[Param], name: &'static str, default: u64) -> Result<u64, RequestError> {
    single(pairs, name)?.map_or(Ok(default), |value| number(name, value))
}

/// An optional `0`/`1` flag, `default` when absent.
fn flag(pairs: &[Param], name: &'static str, default: bool) -> Result<bool, RequestError> {
    match single(pairs, name)? {
        None => Ok(default),
        Some(b"1") => Ok(true),
        Some(b"0") => Ok(false),
        Some(_) => Err(RequestError::Invalid {
            name,
            problem: "not 0 or 1",
        }),
    }
}

/// The `event` parameter. `paused` (BEP 21, a partial seed going quiet) is
/// a regular announce to us.
fn event(pairs: &[Param]) -> Result<Event, RequestError> {
    match single(pairs, "event")? {
        None | Some(b"" | b"empty" | b"paused") => Ok(Event::Empty),
        Some(b"started") => Ok(Event::Started),
        Some(b"completed") => Ok(Event::Completed),
        Some(b"stopped") => Ok(Event::Stopped),
        Some(_) => Err(RequestError::Invalid {
            name: "event",
            problem: "not started, completed, stopped or empty",
        }),
    }
}

/// Checks the parameters of an announce.
fn parse_announce(pairs: &[Param]) -> Result<AnnounceParams, RequestError> {
    let info_hash = twenty_bytes("info_hash", required(pairs, "info_hash")?)?;
    let peer_id = twenty_bytes("peer_id", required(pairs, "peer_id")?)?;
    let port = number("port", required(pairs, "port")?)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&port| port != 0)
        .ok_or(RequestError::Invalid {
            name: "port",
            problem: "not in 1..=65535",
        })?;
    let numwant = match single(pairs, "numwant")? {
        None => DEFAULT_NUMWANT,
        Some(value) => {
            let wanted = number("numwant", value)?;
            usize::try_from(wanted).map_or(MAX_NUMWANT, |n| n.min(MAX_NUMWANT))
        }
    };
    let key = single(pairs, "key")?;
    if key.is_some_and(|key| key.len() > MAX_KEY_LEN) {
        return Err(RequestError::Invalid {
            name: "key",
            problem: "longer than 64 bytes",
        });
    }
    Ok(AnnounceParams {
        info_hash,
        peer_id,
        port,
        // Only statistics: a minimal client that leaves them out loses nothing.
        uploaded: number_or(pairs, "uploaded", 0)?,
        downloaded: number_or(pairs, "downloaded", 0)?,
        // Required: guessing would list a leecher as a seeder or back.
        left: number("left", required(pairs, "left")?)?,
        event: event(pairs)?,
        numwant,
        compact: flag(pairs, "compact", true)?,
        no_peer_id: flag(pairs, "no_peer_id", false)?,
        key: key.map(<[u8]>::to_vec),
    })
}

/// The info-hashes of a scrape, each 20 bytes, duplicates dropped.
fn parse_scrape(pairs: &[Param]) -> Result<Vec<[u8; 20]>, RequestError> {
    let mut hashes: Vec<[u8; 20]> = Vec::new();
    for (_, value) in pairs.iter().filter(|(key, _)| key == b"info_hash") {
        let hash = twenty_bytes("info_hash", value)?;
        if !hashes.contains(&hash) {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(RequestError::TooManyHashes);
            }
            hashes.push(hash);
        }
    }
    Ok(hashes)
}

/// A complete HTTP/1.1 response: status line, `Content-Type: text/plain`,
/// `Content-Length`, `Connection: close` (one request per connection keeps
/// the server simple), a blank line and `body`.
pub fn http_response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    if status == 405 {
        out.extend_from_slice(b"Allow: GET\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The reason phrase of the statuses the tracker sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The bencoded body of a refusal: `d14:failure reason<len>:<reason>e`
/// (BEP 3).
pub fn failure_body(reason: &str) -> Vec<u8> {
    bencode::encode(&Value::Dict(Dict::new(vec![(
        b"failure reason",
        Value::Bytes(reason.as_bytes()),
    )])))
}

#[cfg(test)]
mod tests;
