//! The protocol trace behind `--trace [FILE]`: one line per event, in the
//! order the loop produced them, so a student can watch a download happen.
//!
//! Layer 0: pure (no I/O, no clock). The caller passes every `now: Instant`,
//! the [`Tracer`] formats lines into a bounded buffer, and the session
//! [`drain`](Tracer::drain)s them and writes them itself in its before-sleep
//! phase. The session holds an `Option<Tracer>`, so tracing costs one
//! `is_some` check per event when it is off; when it is on,
//! [`Tracer::enabled`] lets a caller skip building a description that the
//! [`Filter`] would throw away.
//!
//! A line is the time since start (seconds with microseconds), the loop phase
//! that produced the event, then the event:
//!
//! ```text
//!    0.012345 wait            wake: 3 events after 1.2 ms
//!    0.013001 receive         <- 127.0.0.1:51413 PIECE #12 +32768 (16384 B)
//!    0.013120 receive         hash #12 ok
//!    0.013502 send_haves      HAVE #12 sent to 3 peers
//!   10.000211 rechoke         unchoke 127.0.0.1:6881: rate 1.2 MiB/s, slot 2 of 4
//! ```
//!
//! Which phases emit which [`Kind`]s (the phase names are in [`phase`]):
//!
//! | kind | events | phases |
//! | --- | --- | --- |
//! | `loop` | each wake from `epoll_wait` | `wait` |
//! | `wire` | handshakes and messages in and out, peer timeouts | `receive`, `on_writable`, `request_blocks`, `send_haves`, `send_keepalives`, `serve_requests`, `rechoke`, `check_timeouts` |
//! | `choke` | each choke and unchoke we send, with the reason | `rechoke`, `receive` (a newly interested peer gets a free slot) |
//! | `pick` | each piece picked for a peer, hash results, HAVE broadcasts | `request_blocks`, `receive`, `send_haves` |
//! | `tracker` | each announce: URL, event, time taken, peers or error | `announce`, `receive` (UDP tracker replies) |
//!
//! Invariants:
//! - A line never holds a control character: text that comes from outside
//!   (peer client names, tracker URLs and errors, reasons) is escaped
//!   (`\u{1b}`, `\n`), so a trace file cannot carry terminal escapes or
//!   forge extra lines. Tracker URLs are otherwise written as given: a private
//!   tracker's passkey ends up in the trace.
//! - The buffer never holds more than its capacity. When a pass records more
//!   lines than that, the oldest are dropped and counted, and the next
//!   [`drain`](Tracer::drain) starts with a line saying how many were lost.
//!   Tracing a fast download must never stall the loop (the file is written
//!   once per pass, never per event) nor grow memory without bound.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::wire::{Handshake, Message};

/// Width the phase name is padded to, so the event texts line up (the
/// longest phase of the loop, `send_keepalives`, is 15 characters).
const PHASE_WIDTH: usize = 15;

/// Phase names for the trace's second column, one per step of the loop
/// (see the loop table in the crate docs).
pub mod phase {
    /// Sleeping in `epoll_wait` until a socket is ready or a timer is due.
    pub const WAIT: &str = "wait";
    /// Accepting incoming peer connections.
    pub const ACCEPT_PEERS: &str = "accept_peers";
    /// Reading from a socket and handling what was decoded.
    pub const RECEIVE: &str = "receive";
    /// A socket became writable: a connect finished or output can be flushed.
    pub const ON_WRITABLE: &str = "on_writable";
    /// Dialing known peers.
    pub const ADD_PEERS: &str = "add_peers";
    /// Hashing downloaded pieces too large for one pass, a slice per pass.
    pub const VERIFY_PIECES: &str = "verify_pieces";
    /// Dropping silent peers and expiring requests.
    pub const CHECK_TIMEOUTS: &str = "check_timeouts";
    /// Sending keep-alives to idle connections.
    pub const SEND_KEEPALIVES: &str = "send_keepalives";
    /// Closing the connections marked for closing.
    pub const CLEANUP: &str = "cleanup";
    /// Telling every peer about newly verified pieces.
    pub const SEND_HAVES: &str = "send_haves";
    /// Picking pieces and refilling request pipelines.
    pub const REQUEST_BLOCKS: &str = "request_blocks";
    /// Choosing the peers we upload to.
    pub const RECHOKE: &str = "rechoke";
    /// Announcing to a tracker.
    pub const ANNOUNCE: &str = "announce";
    /// Reading requested blocks from disk and queueing PIECEs.
    pub const SERVE_REQUESTS: &str = "serve_requests";
    /// Writing every connection's output buffer.
    pub const FLUSH_ALL: &str = "flush_all";
    /// The tracer itself (the dropped-lines notice).
    pub const TRACE: &str = "trace";
}

/// A family of trace events, chosen with `--trace-kinds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The loop itself: each wake from `epoll_wait`.
    Loop,
    /// Handshakes and peer messages, in and out, and peer timeouts.
    Wire,
    /// Chokes and unchokes we send, with the reason.
    Choke,
    /// Piece picks, hash checks and HAVE broadcasts.
    Pick,
    /// Tracker announces.
    Tracker,
}

impl Kind {
    /// Every kind, in the order `--trace-kinds` documents them.
    pub const ALL: [Kind; 5] = [
        Kind::Loop,
        Kind::Wire,
        Kind::Choke,
        Kind::Pick,
        Kind::Tracker,
    ];

    /// The kind's name on the command line: `loop`, `wire`, `choke`, `pick`, `tracker`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Loop => "loop",
            Kind::Wire => "wire",
            Kind::Choke => "choke",
            Kind::Pick => "pick",
            Kind::Tracker => "tracker",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    /// Parses one kind name (ASCII case ignored); the error names the
    /// unknown word and lists the valid ones.
    fn from_str(text: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
                format!(
                    "unknown trace kind {:?} (expected {})",
                    text,
                    names.join(", ")
                )
            })
    }
}

/// Parses the comma-separated list of `--trace-kinds`, such as
/// `wire,choke,pick,tracker,loop`.
///
/// Spaces around names are ignored and repeats kept once, in first-seen
/// order. An unknown or empty name is an error naming it.
pub fn parse_kinds(text: &str) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for word in text.split(',').map(str::trim) {
        if word.is_empty() {
            return Err(format!("empty trace kind in {text:?}"));
        }
        let kind = word.parse::<Kind>()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// Which events a [`Tracer`] records: `--trace-kinds` and `--trace-peer`.
///
/// The peer filter keeps the events about that peer *and every event about
/// no peer in particular* (loop wakes, tracker announces, hash checks, HAVE
/// broadcasts): those are the context a student needs to follow one peer's
/// conversation. Use `--trace-kinds wire` as well to see that peer alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The kinds to record; `None` records all of them.
    kinds: Option<Vec<Kind>>,
    /// The only peer whose events are recorded; `None` records every peer.
    peer: Option<SocketAddr>,
}

impl Filter {
    /// A filter keeping `kinds` (all if `None`) about `peer` (any if `None`).
    ///
    /// A `peer` with port 0 matches every port of its IP address: a peer that
    /// connects to us comes from a port nobody can know in advance.
    pub fn new(kinds: Option<Vec<Kind>>, peer: Option<SocketAddr>) -> Filter {
        Filter { kinds, peer }
    }

    /// Whether an event of `kind` about `peer` (`None`: about no peer) passes.
    pub fn allows(&self, kind: Kind, peer: Option<SocketAddr>) -> bool {
        let kind_ok = self
            .kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind));
        kind_ok && peer_matches(self.peer, peer)
    }
}

/// Whether an event about `peer` passes a peer filter of `wanted`.
fn peer_matches(wanted: Option<SocketAddr>, peer: Option<SocketAddr>) -> bool {
    match (wanted, peer) {
        (None, _) | (_, None) => true,
        (Some(wanted), Some(peer)) if wanted.port() == 0 => wanted.ip() == peer.ip(),
        (Some(wanted), Some(peer)) => wanted == peer,
    }
}

/// One formatted line and when it was recorded.
#[derive(Debug)]
struct Line {
    /// Time since the tracer's start.
    at: Duration,
    /// The whole line, without a newline.
    text: String,
}

/// Formats trace events into a bounded buffer of lines.
///
/// Every recording method checks the [`Filter`] first, so callers may call
/// them unconditionally; [`Tracer::enabled`] is there to skip work done
/// *before* the call (describing a message).
#[derive(Debug)]
pub struct Tracer {
    /// The instant timestamps count from.
    start: Instant,
    /// Which events to record.
    filter: Filter,
    /// The most lines kept between two drains.
    capacity_lines: usize,
    /// Lines not drained yet, oldest first.
    lines: VecDeque<Line>,
    /// Lines dropped since the last drain.
    dropped: u64,
    /// When the newest dropped line was recorded.
    last_dropped_at: Duration,
}

impl Tracer {
    /// A tracer whose timestamps count from `start`, keeping the events
    /// `filter` allows, and at most `capacity_lines` lines between drains
    /// (0 keeps none, only the count of dropped lines).
    pub fn new(start: Instant, filter: Filter, capacity_lines: usize) -> Tracer {
        Tracer {
            start,
            filter,
            capacity_lines,
            lines: VecDeque::new(),
            dropped: 0,
            last_dropped_at: Duration::ZERO,
        }
    }

    /// Whether an event of `kind` about `peer` would be recorded. Cheap: call
    /// it before formatting anything costly.
    pub fn enabled(&self, kind: Kind, peer: Option<SocketAddr>) -> bool {
        self.filter.allows(kind, peer)
    }

    /// Records any event: `text` after the timestamp and `phase`, if the
    /// filter allows `kind` about `peer`. The other recording methods are
    /// this with a fixed kind and wording.
    pub fn record(
        &mut self,
        now: Instant,
        kind: Kind,
        phase: &str,
        peer: Option<SocketAddr>,
        text: fmt::Arguments<'_>,
    ) {
        if !self.enabled(kind, peer) {
            return;
        }
        let at = now.saturating_duration_since(self.start);
        let mut line = String::new();
        write_prefix(&mut line, at, phase);
        let start = line.len();
        // Writing to a String cannot fail.
        let _ = line.write_fmt(text);
        if line[start..].chars().any(char::is_control) {
            let raw = line.split_off(start);
            push_escaped(&mut line, &raw);
        }
        self.push(Line { at, text: line });
    }

    /// The loop woke from `epoll_wait` with `events` ready after sleeping
    /// `waited` (kind `loop`, phase `wait`).
    pub fn poll_wake(&mut self, now: Instant, events: usize, waited: Duration) {
        let text = format_args!(
            "wake: {events} {} after {}",
            plural(events, "event", "events"),
            Millis(waited)
        );
        self.record(now, Kind::Loop, phase::WAIT, None, text);
    }

    /// We received `text` from `peer` (kind `wire`), e.g. a [`describe`]d message.
    pub fn wire_in(&mut self, now: Instant, phase: &str, peer: SocketAddr, text: &str) {
        self.record(
            now,
            Kind::Wire,
            phase,
            Some(peer),
            format_args!("<- {peer} {text}"),
        );
    }

    /// We sent (queued) `text` to `peer` (kind `wire`).
    pub fn wire_out(&mut self, now: Instant, phase: &str, peer: SocketAddr, text: &str) {
        self.record(
            now,
            Kind::Wire,
            phase,
            Some(peer),
            format_args!("-> {peer} {text}"),
        );
    }

    /// [`Tracer::wire_in`] of `message`, described only if it will be recorded.
    pub fn message_in(
        &mut self,
        now: Instant,
        phase: &str,
        peer: SocketAddr,
        message: &Message<'_>,
    ) {
        if self.enabled(Kind::Wire, Some(peer)) {
            self.wire_in(now, phase, peer, &describe(message));
        }
    }

    /// [`Tracer::wire_out`] of `message`, described only if it will be recorded.
    pub fn message_out(
        &mut self,
        now: Instant,
        phase: &str,
        peer: SocketAddr,
        message: &Message<'_>,
    ) {
        if self.enabled(Kind::Wire, Some(peer)) {
            self.wire_out(now, phase, peer, &describe(message));
        }
    }

    /// We choked or unchoked `peer`, and why (kind `choke`):
    /// `unchoke 127.0.0.1:6881: rate 1.2 MiB/s, slot 2 of 4`.
    pub fn choke(
        &mut self,
        now: Instant,
        phase: &str,
        peer: SocketAddr,
        unchoked: bool,
        reason: &str,
    ) {
        let verb = if unchoked { "unchoke" } else { "choke" };
        let text = format_args!("{verb} {peer}: {reason}");
        self.record(now, Kind::Choke, phase, Some(peer), text);
    }

    /// We picked `piece` to download from `peer`, and why (kind `pick`):
    /// `pick #17 for 127.0.0.1:6881: availability 1, rarest-first`.
    pub fn pick(&mut self, now: Instant, phase: &str, peer: SocketAddr, piece: u32, reason: &str) {
        let text = format_args!("pick #{piece} for {peer}: {reason}");
        self.record(now, Kind::Pick, phase, Some(peer), text);
    }

    /// `piece` passed (`ok`) or failed its hash check (kind `pick`).
    pub fn hash(&mut self, now: Instant, phase: &str, piece: u32, ok: bool) {
        let verdict = if ok { "ok" } else { "FAILED" };
        self.record(
            now,
            Kind::Pick,
            phase,
            None,
            format_args!("hash #{piece} {verdict}"),
        );
    }

    /// A HAVE for `piece` went to `peers` peers (kind `pick`).
    pub fn have_broadcast(&mut self, now: Instant, phase: &str, piece: u32, peers: usize) {
        let text = format_args!(
            "HAVE #{piece} sent to {peers} {}",
            plural(peers, "peer", "peers")
        );
        self.record(now, Kind::Pick, phase, None, text);
    }

    /// An announce to `url` with `event` (`started`, `completed`, `stopped`,
    /// or empty for a periodic one) ended after `took`, with `Ok(peers)`
    /// received or `Err(error)` (kind `tracker`):
    /// `http://t/announce event=started: 12 peers in 45.3 ms`.
    pub fn tracker(
        &mut self,
        now: Instant,
        phase: &str,
        url: &str,
        event: &str,
        took: Duration,
        result: Result<usize, &str>,
    ) {
        let event = EventParam(event);
        let took = Millis(took);
        match result {
            Ok(peers) => {
                let noun = plural(peers, "peer", "peers");
                let text = format_args!("{url}{event}: {peers} {noun} in {took}");
                self.record(now, Kind::Tracker, phase, None, text);
            }
            Err(error) => {
                let text = format_args!("{url}{event}: failed after {took}: {error}");
                self.record(now, Kind::Tracker, phase, None, text);
            }
        }
    }

    /// Something about `peer` timed out (kind `wire`), `what` says what (a
    /// [`crate::close_reason::CloseReason`], or a request that expired):
    /// `timeout 127.0.0.1:6881: no message for 120 s`.
    pub fn timeout(
        &mut self,
        now: Instant,
        phase: &str,
        peer: SocketAddr,
        what: impl fmt::Display,
    ) {
        let text = format_args!("timeout {peer}: {what}");
        self.record(now, Kind::Wire, phase, Some(peer), text);
    }

    /// Lines waiting to be drained (the dropped-lines notice not counted).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there is nothing to drain: no line and no dropped-lines notice.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.dropped == 0
    }

    /// Takes every line recorded since the last drain, oldest first, without
    /// newlines. If lines were dropped, the first line says how many:
    /// `   1.234567 trace           ... 1234 lines dropped (trace buffer full)`,
    /// stamped with the time of the newest dropped line so the output stays
    /// in time order.
    pub fn drain(&mut self) -> impl Iterator<Item = String> + '_ {
        let notice = self.take_dropped_notice();
        notice
            .into_iter()
            .chain(self.lines.drain(..).map(|line| line.text))
    }

    /// Appends `line`, dropping the oldest line if the buffer is over capacity.
    fn push(&mut self, line: Line) {
        self.lines.push_back(line);
        if self.lines.len() > self.capacity_lines {
            if let Some(oldest) = self.lines.pop_front() {
                self.dropped += 1;
                self.last_dropped_at = oldest.at;
            }
        }
    }

    /// The dropped-lines notice, if any line was dropped; resets the count.
    fn take_dropped_notice(&mut self) -> Option<String> {
        if self.dropped == 0 {
            return None;
        }
        let dropped = std::mem::take(&mut self.dropped);
        let mut line = String::new();
        write_prefix(&mut line, self.last_dropped_at, phase::TRACE);
        let noun = if dropped == 1 { "line" } else { "lines" };
        // Writing to a String cannot fail.
        let _ = write!(line, "... {dropped} {noun} dropped (trace buffer full)");
        Some(line)
    }
}

/// Writes the timestamp (`   0.012345`: seconds and microseconds, right
/// aligned in 11 columns) and the padded, escaped phase name.
fn write_prefix(line: &mut String, at: Duration, phase: &str) {
    // Writing to a String cannot fail.
    let _ = write!(line, "{:>4}.{:06} ", at.as_secs(), at.subsec_micros());
    let start = line.len();
    push_escaped(line, phase);
    let written = line[start..].chars().count();
    line.extend(std::iter::repeat_n(
        ' ',
        PHASE_WIDTH.saturating_sub(written) + 1,
    ));
}

/// Appends `text` with every control character escaped (`\u{1b}`, `\n`).
fn push_escaped(line: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_debug());
        } else {
            line.push(c);
        }
    }
}

/// `one` for 1, `many` otherwise.
fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// Shows a duration as `1.2 ms` below a second and `1.234 s` above.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < Duration::from_secs(1) {
            write!(f, "{:.1} ms", self.0.as_secs_f64() * 1000.0)
        } else {
            write!(f, "{:.3} s", self.0.as_secs_f64())
        }
    }
}

/// Shows an announce event as ` event=started`, or nothing when empty.
struct EventParam<'a>(&'a str);

impl fmt::Display for EventParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " event={}", self.0)
        }
    }
}

/// Describes a peer message for the trace, in BEP 3 words: `HAVE #7`,
/// `REQUEST #12 +32768 (16384 B)`, `PIECE #12 +32768 (16384 B)`,
/// `BITFIELD (37/128 pieces)`, `EXTENDED id 0 (48 B)`, `KEEP_ALIVE`.
///
/// A BITFIELD counts the bits set out of all its bits: the torrent's piece
/// count rounded up to a multiple of 8 (the message does not carry the count).
pub fn describe(message: &Message<'_>) -> String {
    let name = message.name();
    match *message {
        Message::Have { piece } | Message::Suggest { piece } | Message::AllowedFast { piece } => {
            format!("{name} #{piece}")
        }
        Message::Request(block) | Message::Cancel(block) | Message::Reject(block) => {
            format!("{name} #{} +{} ({} B)", block.piece, block.begin, block.len)
        }
        Message::Piece { piece, begin, data } => {
            format!("{name} #{piece} +{begin} ({} B)", data.len())
        }
        Message::Bitfield(bytes) => {
            let set: u32 = bytes.iter().map(|byte| byte.count_ones()).sum();
            format!("{name} ({set}/{} pieces)", bytes.len().saturating_mul(8))
        }
        Message::Port(port) => format!("{name} {port}"),
        Message::Extended { id, payload } | Message::Unknown { id, payload } => {
            format!("{name} id {id} ({} B)", payload.len())
        }
        Message::KeepAlive
        | Message::Choke
        | Message::Unchoke
        | Message::Interested
        | Message::NotInterested
        | Message::HaveAll
        | Message::HaveNone => name.to_string(),
    }
}

/// Describes a handshake for the trace: the peer's client (quoted and
/// escaped, as it comes from the peer), its reserved bytes in hex, and the
/// extensions those bits announce:
/// `HANDSHAKE client "-PO0100-" reserved 0000000000100000 (extensions)`.
///
/// The names in parentheses are `extensions` (BEP 10), `fast` (BEP 6) and
/// `dht` (BEP 5); the parentheses are left out when none is set.
pub fn describe_handshake(client: &str, reserved: &[u8; 8]) -> String {
    let mut text = format!("HANDSHAKE client {client:?} reserved ");
    for byte in reserved {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    let bits = Handshake {
        reserved: *reserved,
        ..Handshake::new([0; 20], [0; 20])
    };
    let features: Vec<&str> = [
        (bits.supports_extensions(), "extensions"),
        (bits.supports_fast(), "fast"),
        (bits.supports_dht(), "dht"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if !features.is_empty() {
        let _ = write!(text, " ({})", features.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BlockRequest;

    const PEER: &str = "127.0.0.1:51413";
    const OTHER: &str = "10.0.0.2:6881";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn us(micros: u64) -> Duration {
        Duration::from_micros(micros)
    }

    /// A tracer recording everything, started at `start`.
    fn tracer(start: Instant, capacity: usize) -> Tracer {
        Tracer::new(start, Filter::default(), capacity)
    }

    /// Records one event with `event` on a fresh tracer and returns its lines.
    fn lines_of(filter: Filter, event: impl FnOnce(&mut Tracer, Instant)) -> Vec<String> {
        let start = Instant::now();
        let mut tracer = Tracer::new(start, filter, 16);
        event(&mut tracer, start);
        tracer.drain().collect()
    }

    #[test]
    fn every_event_kind_formats_one_aligned_line() {
        type Event = Box<dyn Fn(&mut Tracer, Instant)>;
        let table: Vec<(Event, &str)> = vec![
            (
                Box::new(|t, s| t.poll_wake(s + us(12_345), 3, us(1_200))),
                "   0.012345 wait            wake: 3 events after 1.2 ms",
            ),
            (
                Box::new(|t, s| t.poll_wake(s + ms(1_000), 1, ms(987))),
                "   1.000000 wait            wake: 1 event after 987.0 ms",
            ),
            (
                Box::new(|t, s| t.poll_wake(s + ms(2_500), 0, ms(1_500))),
                "   2.500000 wait            wake: 0 events after 1.500 s",
            ),
            (
                Box::new(|t, s| {
                    let piece = Message::Piece {
                        piece: 12,
                        begin: 32768,
                        data: &[0; 16384],
                    };
                    t.wire_in(s + us(13_001), phase::RECEIVE, addr(PEER), &describe(&piece));
                }),
                "   0.013001 receive         <- 127.0.0.1:51413 PIECE #12 +32768 (16384 B)",
            ),
            (
                Box::new(|t, s| t.wire_out(s, phase::SEND_HAVES, addr(PEER), "HAVE #7")),
                "   0.000000 send_haves      -> 127.0.0.1:51413 HAVE #7",
            ),
            (
                Box::new(|t, s| {
                    t.message_out(s, phase::SEND_KEEPALIVES, addr(PEER), &Message::KeepAlive);
                }),
                "   0.000000 send_keepalives -> 127.0.0.1:51413 KEEP_ALIVE",
            ),
            (
                Box::new(|t, s| t.message_in(s, phase::RECEIVE, addr(PEER), &Message::Unchoke)),
                "   0.000000 receive         <- 127.0.0.1:51413 UNCHOKE",
            ),
            (
                Box::new(|t, s| {
                    let reason = "rate 1.2 MiB/s, slot 2 of 4";
                    t.choke(s + ms(10_000), phase::RECHOKE, addr(OTHER), true, reason);
                }),
                "  10.000000 rechoke         unchoke 10.0.0.2:6881: rate 1.2 MiB/s, slot 2 of 4",
            ),
            (
                Box::new(|t, s| {
                    t.choke(s, phase::RECHOKE, addr(OTHER), false, "not interested");
                }),
                "   0.000000 rechoke         choke 10.0.0.2:6881: not interested",
            ),
            (
                Box::new(|t, s| {
                    let reason = "availability 1, rarest-first";
                    t.pick(s + us(7), phase::REQUEST_BLOCKS, addr(OTHER), 17, reason);
                }),
                "   0.000007 request_blocks  pick #17 for 10.0.0.2:6881: availability 1, rarest-first",
            ),
            (
                Box::new(|t, s| t.hash(s, phase::RECEIVE, 17, true)),
                "   0.000000 receive         hash #17 ok",
            ),
            (
                Box::new(|t, s| t.hash(s, phase::RECEIVE, 18, false)),
                "   0.000000 receive         hash #18 FAILED",
            ),
            (
                Box::new(|t, s| t.have_broadcast(s, phase::SEND_HAVES, 17, 3)),
                "   0.000000 send_haves      HAVE #17 sent to 3 peers",
            ),
            (
                Box::new(|t, s| t.have_broadcast(s, phase::SEND_HAVES, 17, 1)),
                "   0.000000 send_haves      HAVE #17 sent to 1 peer",
            ),
            (
                Box::new(|t, s| {
                    let url = "http://t.example/announce";
                    t.tracker(s, phase::ANNOUNCE, url, "started", us(45_300), Ok(12));
                }),
                "   0.000000 announce        http://t.example/announce event=started: 12 peers in 45.3 ms",
            ),
            (
                Box::new(|t, s| {
                    let url = "udp://t.example:6969";
                    t.tracker(s, phase::RECEIVE, url, "", ms(5_000), Err("timed out"));
                }),
                "   0.000000 receive         udp://t.example:6969: failed after 5.000 s: timed out",
            ),
            (
                Box::new(|t, s| {
                    t.timeout(s + ms(120_000), phase::CHECK_TIMEOUTS, addr(PEER), "no message for 120 s");
                }),
                " 120.000000 check_timeouts  timeout 127.0.0.1:51413: no message for 120 s",
            ),
            (
                Box::new(|t, s| {
                    let text = format_args!("connect to {} failed", addr(OTHER));
                    t.record(s, Kind::Wire, phase::ON_WRITABLE, Some(addr(OTHER)), text);
                }),
                "   0.000000 on_writable     connect to 10.0.0.2:6881 failed",
            ),
        ];
        for (event, expected) in table {
            assert_eq!(lines_of(Filter::default(), event), [expected]);
        }
    }

    #[test]
    fn timestamps_count_from_start_and_never_go_negative() {
        let start = Instant::now() + ms(5_000);
        let mut tracer = tracer(start, 8);
        tracer.hash(start - ms(1), phase::RECEIVE, 0, true);
        tracer.hash(
            start + Duration::from_secs(12_345) + us(6),
            phase::RECEIVE,
            1,
            true,
        );
        let lines: Vec<String> = tracer.drain().collect();
        assert_eq!(
            lines,
            [
                "   0.000000 receive         hash #0 ok",
                "12345.000006 receive         hash #1 ok",
            ]
        );
    }

    #[test]
    fn long_phase_names_still_get_a_separating_space() {
        let lines = lines_of(Filter::default(), |t, s| {
            t.hash(s, "check_existing_data", 3, true);
        });
        assert_eq!(lines, ["   0.000000 check_existing_data hash #3 ok"]);
    }

    #[test]
    fn kind_filter_keeps_only_the_listed_kinds() {
        let filter = Filter::new(Some(vec![Kind::Choke, Kind::Tracker]), None);
        for kind in Kind::ALL {
            let wanted = matches!(kind, Kind::Choke | Kind::Tracker);
            assert_eq!(filter.allows(kind, None), wanted, "{kind}");
            assert_eq!(filter.allows(kind, Some(addr(PEER))), wanted, "{kind}");
        }
        let lines = lines_of(filter, |t, s| {
            t.poll_wake(s, 1, ms(1));
            t.wire_in(s, phase::RECEIVE, addr(PEER), "CHOKE");
            t.choke(s, phase::RECHOKE, addr(PEER), true, "slot 1 of 4");
            t.pick(s, phase::REQUEST_BLOCKS, addr(PEER), 1, "rarest");
            t.hash(s, phase::RECEIVE, 1, true);
            t.tracker(s, phase::ANNOUNCE, "http://t/a", "", ms(1), Ok(0));
        });
        assert_eq!(
            lines,
            [
                "   0.000000 rechoke         unchoke 127.0.0.1:51413: slot 1 of 4",
                "   0.000000 announce        http://t/a: 0 peers in 1.0 ms",
            ]
        );
    }

    #[test]
    fn peer_filter_keeps_that_peer_and_events_about_no_peer() {
        let filter = Filter::new(None, Some(addr(PEER)));
        let table = [
            (Kind::Wire, Some(PEER), true),
            (Kind::Wire, Some(OTHER), false),
            (Kind::Wire, Some("127.0.0.1:51414"), false),
            (Kind::Choke, Some(OTHER), false),
            (Kind::Pick, Some(PEER), true),
            (Kind::Loop, None, true),
            (Kind::Tracker, None, true),
            (Kind::Pick, None, true),
        ];
        for (kind, peer, wanted) in table {
            let peer = peer.map(addr);
            assert_eq!(filter.allows(kind, peer), wanted, "{kind} {peer:?}");
            let tracer = Tracer::new(Instant::now(), filter.clone(), 1);
            assert_eq!(tracer.enabled(kind, peer), wanted, "{kind} {peer:?}");
        }
        let lines = lines_of(filter, |t, s| {
            t.poll_wake(s, 2, ms(3));
            t.wire_in(s, phase::RECEIVE, addr(OTHER), "HAVE #1");
            t.message_in(s, phase::RECEIVE, addr(PEER), &Message::Have { piece: 2 });
            t.timeout(s, phase::CHECK_TIMEOUTS, addr(OTHER), "silent");
        });
        assert_eq!(
            lines,
            [
                "   0.000000 wait            wake: 2 events after 3.0 ms",
                "   0.000000 receive         <- 127.0.0.1:51413 HAVE #2",
            ]
        );
    }

    #[test]
    fn peer_filter_with_port_zero_matches_every_port_of_that_ip() {
        let filter = Filter::new(Some(vec![Kind::Wire]), Some(addr("127.0.0.1:0")));
        assert!(filter.allows(Kind::Wire, Some(addr(PEER))));
        assert!(filter.allows(Kind::Wire, Some(addr("127.0.0.1:1"))));
        assert!(!filter.allows(Kind::Wire, Some(addr(OTHER))));
        assert!(!filter.allows(Kind::Choke, Some(addr(PEER))));
        let v6 = Filter::new(None, Some(addr("[::1]:0")));
        assert!(v6.allows(Kind::Wire, Some(addr("[::1]:6881"))));
        assert!(!v6.allows(Kind::Wire, Some(addr(PEER))));
    }

    #[test]
    fn default_filter_allows_everything() {
        let filter = Filter::default();
        for kind in Kind::ALL {
            assert!(filter.allows(kind, None));
            assert!(filter.allows(kind, Some(addr(OTHER))));
        }
    }

    #[test]
    fn overflow_drops_the_oldest_lines_and_reports_how_many_first() {
        let start = Instant::now();
        let mut tracer = tracer(start, 3);
        for piece in 0..10u32 {
            tracer.hash(start + us(u64::from(piece)), phase::RECEIVE, piece, true);
            assert!(tracer.len() <= 3);
        }
        let lines: Vec<String> = tracer.drain().collect();
        assert_eq!(
            lines,
            [
                // Stamped with the newest dropped line (#6), so time still only goes forward.
                "   0.000006 trace           ... 7 lines dropped (trace buffer full)",
                "   0.000007 receive         hash #7 ok",
                "   0.000008 receive         hash #8 ok",
                "   0.000009 receive         hash #9 ok",
            ]
        );
        assert!(tracer.is_empty());
        assert_eq!(tracer.drain().count(), 0, "the count resets on drain");

        tracer.hash(start + ms(1), phase::RECEIVE, 10, false);
        let lines: Vec<String> = tracer.drain().collect();
        assert_eq!(lines, ["   0.001000 receive         hash #10 FAILED"]);
    }

    #[test]
    fn overflow_by_one_line_says_line() {
        let start = Instant::now();
        let mut tracer = tracer(start, 1);
        tracer.hash(start, phase::RECEIVE, 0, true);
        tracer.hash(start + us(1), phase::RECEIVE, 1, true);
        let lines: Vec<String> = tracer.drain().collect();
        assert_eq!(
            lines,
            [
                "   0.000000 trace           ... 1 line dropped (trace buffer full)",
                "   0.000001 receive         hash #1 ok",
            ]
        );
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_the_count() {
        let start = Instant::now();
        let mut tracer = tracer(start, 0);
        for _ in 0..5 {
            tracer.poll_wake(start + ms(2), 1, ms(1));
            assert_eq!(tracer.len(), 0);
        }
        assert!(!tracer.is_empty());
        let lines: Vec<String> = tracer.drain().collect();
        assert_eq!(
            lines,
            ["   0.002000 trace           ... 5 lines dropped (trace buffer full)"]
        );
    }

    #[test]
    fn filtered_out_events_neither_fill_nor_overflow_the_buffer() {
        let start = Instant::now();
        let mut tracer = Tracer::new(start, Filter::new(Some(vec![Kind::Loop]), None), 1);
        for piece in 0..100 {
            tracer.hash(start, phase::RECEIVE, piece, true);
        }
        assert!(tracer.is_empty());
    }

    #[test]
    fn control_characters_from_outside_are_escaped() {
        let lines = lines_of(Filter::default(), |t, s| {
            let client = "evil\x1b[2J\x07";
            let handshake = describe_handshake(client, &[0; 8]);
            t.wire_in(s, phase::RECEIVE, addr(PEER), &handshake);
            let url = "http://t/a\r\n   9.999999 forged line";
            t.tracker(
                s,
                phase::ANNOUNCE,
                url,
                "",
                ms(1),
                Err("bad\x1b]0;title\x07"),
            );
            t.choke(s, phase::RECHOKE, addr(PEER), true, "tab\there\u{9b}31m");
            t.record(s, Kind::Loop, "ph\x1base", None, format_args!("x"));
        });
        assert_eq!(
            lines,
            [
                r#"   0.000000 receive         <- 127.0.0.1:51413 HANDSHAKE client "evil\u{1b}[2J\u{7}" reserved 0000000000000000"#,
                r"   0.000000 announce        http://t/a\r\n   9.999999 forged line: failed after 1.0 ms: bad\u{1b}]0;title\u{7}",
                r"   0.000000 rechoke         unchoke 127.0.0.1:51413: tab\there\u{9b}31m",
                r"   0.000000 ph\u{1b}ase     x",
            ]
        );
        for line in &lines {
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
    }

    #[test]
    fn describe_names_every_message_with_its_fields() {
        let block = BlockRequest {
            piece: 12,
            begin: 32768,
            len: 16384,
        };
        let mut bitfield = [0u8; 16];
        bitfield[..4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        bitfield[4] = 0b1110_0000;
        bitfield[5] = 0b0000_0011;
        let table = [
            (Message::KeepAlive, "KEEP_ALIVE"),
            (Message::Choke, "CHOKE"),
            (Message::Unchoke, "UNCHOKE"),
            (Message::Interested, "INTERESTED"),
            (Message::NotInterested, "NOT_INTERESTED"),
            (Message::Have { piece: 7 }, "HAVE #7"),
            (Message::Bitfield(&bitfield), "BITFIELD (37/128 pieces)"),
            (Message::Bitfield(&[]), "BITFIELD (0/0 pieces)"),
            (Message::Request(block), "REQUEST #12 +32768 (16384 B)"),
            (
                Message::Piece {
                    piece: 12,
                    begin: 32768,
                    data: &[7; 16384],
                },
                "PIECE #12 +32768 (16384 B)",
            ),
            (Message::Cancel(block), "CANCEL #12 +32768 (16384 B)"),
            (Message::Port(6881), "PORT 6881"),
            (Message::Suggest { piece: 3 }, "SUGGEST_PIECE #3"),
            (Message::HaveAll, "HAVE_ALL"),
            (Message::HaveNone, "HAVE_NONE"),
            (
                Message::Reject(block),
                "REJECT_REQUEST #12 +32768 (16384 B)",
            ),
            (Message::AllowedFast { piece: 9 }, "ALLOWED_FAST #9"),
            (
                Message::Extended {
                    id: 0,
                    payload: &[b'd'; 48],
                },
                "EXTENDED id 0 (48 B)",
            ),
            (
                Message::Unknown {
                    id: 42,
                    payload: &[1, 2, 3],
                },
                "UNKNOWN id 42 (3 B)",
            ),
        ];
        for (message, expected) in table {
            assert_eq!(describe(&message), expected);
        }
    }

    #[test]
    fn describe_handshake_shows_client_reserved_bits_and_extensions() {
        let extensions = Handshake::new([0; 20], [0; 20]).with_extensions();
        let all = extensions.with_fast().with_dht();
        let unknown_bit = [0x80, 0, 0, 0, 0, 0, 0, 0];
        let table = [
            (
                "-PO0100-",
                extensions.reserved,
                r#"HANDSHAKE client "-PO0100-" reserved 0000000000100000 (extensions)"#,
            ),
            (
                "libtorrent 2.0",
                all.reserved,
                r#"HANDSHAKE client "libtorrent 2.0" reserved 0000000000100005 (extensions, fast, dht)"#,
            ),
            (
                "say \"hi\"",
                unknown_bit,
                r#"HANDSHAKE client "say \"hi\"" reserved 8000000000000000"#,
            ),
        ];
        for (client, reserved, expected) in table {
            assert_eq!(describe_handshake(client, &reserved), expected);
        }
    }

    #[test]
    fn parse_kinds_reads_a_comma_list() {
        let table: [(&str, Result<Vec<Kind>, String>); 7] = [
            (
                "wire,choke,pick,tracker,loop",
                Ok(vec![
                    Kind::Wire,
                    Kind::Choke,
                    Kind::Pick,
                    Kind::Tracker,
                    Kind::Loop,
                ]),
            ),
            ("wire", Ok(vec![Kind::Wire])),
            (" Wire , PICK,wire ", Ok(vec![Kind::Wire, Kind::Pick])),
            (
                "wire,chock",
                Err(
                    r#"unknown trace kind "chock" (expected loop, wire, choke, pick, tracker)"#
                        .into(),
                ),
            ),
            ("", Err(r#"empty trace kind in """#.into())),
            ("wire,", Err(r#"empty trace kind in "wire,""#.into())),
            (
                "w\x1b",
                Err(
                    r#"unknown trace kind "w\u{1b}" (expected loop, wire, choke, pick, tracker)"#
                        .into(),
                ),
            ),
        ];
        for (text, expected) in table {
            assert_eq!(parse_kinds(text), expected, "{text:?}");
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
    }
}
