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
//! | `wire` | handshakes and messages in and out, peer timeouts | `receive`, `on_writable`, `request_blocks`, `send_haves`, `send_keepalives`, `send_pex`, `serve_requests`, `rechoke`, `check_timeouts` |
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
    /// Telling peers that speak `ut_pex` about the other peers (BEP 11).
    pub const SEND_PEX: &str = "send_pex";
    /// The daemon's queue, seeding limits, watch folder and saved state
    /// (`pollen daemon` only).
    pub const DRIVE_DAEMON: &str = "drive_daemon";
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
    /// The DHT node's timers, datagrams and found peers (BEP 5).
    pub const DRIVE_DHT: &str = "drive_dht";
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
    /// DHT datagrams (BEP 5), in and out.
    Dht,
}

impl Kind {
    /// Every kind, in the order `--trace-kinds` documents them.
    pub const ALL: [Kind; 6] = [
        Kind::Loop,
        Kind::Wire,
        Kind::Choke,
        Kind::Pick,
        Kind::Tracker,
        Kind::Dht,
    ];

    /// The kind's name on the command line: `loop`, `wire`, `choke`, `pick`,
    /// `tracker`, `dht`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Loop => "loop",
            Kind::Wire => "wire",
            Kind::Choke => "choke",
            Kind::Pick => "pick",
            Kind::Tracker => "tracker",
            Kind::Dht => "dht",
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
/// `wire,choke,pick,tracker,dht,loop`.
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

    /// A DHT datagram (kind `dht`) from (`incoming`) or to `node`, decoded
    /// only if it will be recorded: `dht <- 127.0.0.2:6881 get_peers 5e1f..`.
    pub fn dht(
        &mut self,
        now: Instant,
        phase: &str,
        node: SocketAddr,
        incoming: bool,
        bytes: &[u8],
    ) {
        if !self.enabled(Kind::Dht, Some(node)) {
            return;
        }
        let arrow = if incoming { "<-" } else { "->" };
        let text = describe_krpc(bytes);
        self.record(
            now,
            Kind::Dht,
            phase,
            Some(node),
            format_args!("dht {arrow} {node} {text}"),
        );
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
/// `BITFIELD (37/128 pieces)`, `EXTENDED id 0 (48 B)`, `KEEP_ALIVE`; an
/// extended message whose payload can be read says what it is
/// (`EXTENDED id 2 (40 B): ut_pex added 3 dropped 1`, see
/// `describe_extended`).
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
        Message::Extended { id, payload } => {
            let mut text = format!("{name} id {id} ({} B)", payload.len());
            if let Some(what) = describe_extended(id, payload) {
                let _ = write!(text, ": {what}");
            }
            text
        }
        Message::Unknown { id, payload } => format!("{name} id {id} ({} B)", payload.len()),
        Message::KeepAlive
        | Message::Choke
        | Message::Unchoke
        | Message::Interested
        | Message::NotInterested
        | Message::HaveAll
        | Message::HaveNone => name.to_string(),
    }
}

/// Most extension names a traced BEP 10 handshake lists (a hostile `m`
/// may hold thousands): real clients offer about ten.
const MAX_TRACED_EXTENSIONS: usize = 16;

/// Longest extension name written to the trace, in characters.
const MAX_TRACED_NAME_CHARS: usize = 32;

/// What a BEP 10 extended message says, when its payload can be read:
/// `handshake m {ut_metadata 1, ut_pex 2} p 6881` for the handshake (id
/// 0), `ut_pex added 3 dropped 1` for a BEP 11 message (`added 3 (1
/// IPv6)` when `added6` had some),
/// `ut_metadata request #0` (`data`, `reject`) for a BEP 9 one. The
/// message ids are each receiver's own choice, so other ids are told
/// apart by their content: a dictionary with `added`/`dropped` keys is
/// `ut_pex`, one with `msg_type` is `ut_metadata`.
fn describe_extended(id: u8, payload: &[u8]) -> Option<String> {
    use crate::bencode::{self, Limits};
    use crate::metadata::MetadataMessage;
    if id == crate::wire::extension::HANDSHAKE_ID {
        return describe_ext_handshake(payload);
    }
    let is_pex = bencode::decode(payload, Limits::MESSAGE)
        .ok()
        .and_then(|v| {
            let dict = v.as_dict()?;
            let keys = [&b"added"[..], b"added6", b"dropped", b"dropped6"];
            Some(keys.iter().any(|k| dict.get(k).is_some()))
        })
        .unwrap_or(false);
    if is_pex {
        let pex = crate::pex::PexMessage::decode(payload).ok()?;
        // How many came from `added6` (BEP 7 addresses), when any did.
        let v6 = pex.added.iter().filter(|p| p.addr.is_ipv6()).count();
        return Some(format!(
            "ut_pex added {}{} dropped {}",
            pex.added.len(),
            if v6 > 0 {
                format!(" ({v6} IPv6)")
            } else {
                String::new()
            },
            pex.dropped.len()
        ));
    }
    match MetadataMessage::decode(payload).ok()? {
        MetadataMessage::Request { piece } => Some(format!("ut_metadata request #{piece}")),
        MetadataMessage::Data { piece, data, .. } => {
            Some(format!("ut_metadata data #{piece} ({} B)", data.len()))
        }
        MetadataMessage::Reject { piece } => Some(format!("ut_metadata reject #{piece}")),
        MetadataMessage::Unknown { .. } => None,
    }
}

/// The extensions a BEP 10 handshake offers, with their ids, and its
/// listen port `p`: `handshake m {ut_metadata 1, ut_pex 2} p 6881`.
fn describe_ext_handshake(payload: &[u8]) -> Option<String> {
    use crate::bencode::{self, Limits};
    let value = bencode::decode(payload, Limits::MESSAGE).ok()?;
    let dict = value.as_dict()?;
    let mut text = String::from("handshake m {");
    if let Some(m) = dict.get_dict(b"m") {
        for (i, (name, id)) in m.entries.iter().take(MAX_TRACED_EXTENSIONS).enumerate() {
            let name: String = String::from_utf8_lossy(name)
                .chars()
                .take(MAX_TRACED_NAME_CHARS)
                .collect();
            let sep = if i == 0 { "" } else { ", " };
            match id.as_int() {
                Some(id) => write!(text, "{sep}{name} {id}"),
                None => write!(text, "{sep}{name} ?"),
            }
            .ok()?;
        }
        if m.entries.len() > MAX_TRACED_EXTENSIONS {
            text.push_str(", ...");
        }
    }
    text.push('}');
    let parsed = crate::wire::extension::ExtHandshake::parse(payload).ok()?;
    if let Some(port) = parsed.listen_port {
        write!(text, " p {port}").ok()?;
    }
    Some(text)
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
mod tests;

/// A KRPC datagram in a few words: the query and its target, or what a
/// response carries, or the error.
pub fn describe_krpc(bytes: &[u8]) -> String {
    use crate::dht::krpc::{self, Body, Query};
    let hex = |id: &[u8; 20]| crate::dht::NodeId(*id).to_string();
    let message = match krpc::decode(bytes) {
        Ok(message) => message,
        Err(e) => return format!("undecodable ({} B): {e}", bytes.len()),
    };
    match message.body {
        Body::Query(Query::Ping { .. }) => "ping".to_string(),
        Body::Query(Query::FindNode { target, .. }) => format!("find_node {target}"),
        Body::Query(Query::GetPeers { info_hash, .. }) => format!("get_peers {}", hex(&info_hash)),
        Body::Query(Query::AnnouncePeer {
            info_hash, port, ..
        }) => format!("announce_peer {} port {port}", hex(&info_hash)),
        Body::Query(Query::Unknown { .. }) => "unknown query".to_string(),
        Body::Response(r) => format!(
            "response: {} nodes, {} peers{}",
            r.nodes.len(),
            r.values.len(),
            if r.token.is_some() { ", token" } else { "" }
        ),
        Body::Error { code, message } => format!("error {code} {message:?}"),
    }
}
