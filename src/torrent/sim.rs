//! An in-memory swarm on a virtual clock: several [`Torrent`] cores driven
//! against each other, in the spirit of quinn-proto's test `Pair`.
//!
//! Tests only (`#[cfg(test)]`). The harness plays the session's part for
//! every core (the roles of `src/session/drive.rs`, `receive.rs`,
//! `upload.rs` and `cleanup.rs`), but over memory instead of sockets and
//! files, so a whole swarm runs deterministically in milliseconds:
//!
//! - **Time.** One `Instant::now()` is taken when the swarm is built
//!   (`t0`); the virtual `now` is `t0` plus the time simulated so far. A
//!   [`Swarm::step`] jumps straight to the next thing that can happen (a
//!   segment arriving, a core's deadline, room on a link to serve into).
//!   Nothing sleeps and the clock is never read again.
//! - **Nodes.** A [`Node`] is a core, an address, a peer id and a *disk*: a
//!   `Vec<u8>` holding the torrent's bytes. Blocks are written into it,
//!   [`Action::CheckPiece`] hashes a piece from it with SHA-1 against the
//!   metainfo, [`Action::DigestBlocks`] digests blocks from it, and blocks
//!   to serve are read from it.
//! - **Links.** A [`Link`] joins two nodes with one pipe each way. What a
//!   core sends goes through the real wire codec: [`Handshake::encode`],
//!   [`Message::encode`], then is cut into [`SEGMENT_LEN`] segments (so frames
//!   arrive split, as over TCP) that arrive after the link's latency, and,
//!   with a bandwidth, one after another at that rate. The receiver
//!   decodes its buffer with [`Handshake::decode`] and [`decode_frame`], as
//!   the session does. A link can be made silent (everything on it is lost)
//!   or closed (both ends see the hang-up).
//! - **Peer keys.** A link's index is the [`PeerKey`] both of its ends use.
//! - **One step** is one pass of the session's loop: deliver the segments
//!   that are due and handle what they carry (dispatch), run every core's
//!   periodic phases ([`Torrent::handle_timeout`]: tick), close what was
//!   marked (cleanup), serve queued REQUESTs while each link has room
//!   (before sleep: [`Torrent::serve_next`], a block read from disk, a PIECE
//!   frame), and clean up again.
//!
//! Everything observable is logged as [`Event`]s (messages sent, blocks
//! served and written, pieces verified, closes, the cores' notes) for the
//! tests to assert on. Cores are seeded with fixed [`Rng`]s and every
//! collection is walked in order, so a run is the same every time.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::TorrentConfig;
use super::{Action, BlockDigest, Handled, Note, OutMessage, PeerKey, Serve, Torrent};
use crate::bencode::{encode, Dict, Value};
use crate::bitfield::Bitfield;
use crate::close_reason::CloseReason;
use crate::hash::Sha1Hash;
use crate::metainfo::{Block, Metainfo, PieceIndex};
use crate::rng::Rng;
use crate::wire::{decode_frame, FrameLimits, Handshake, Message, HANDSHAKE_LEN};

/// Bytes per segment on a link: about a TCP segment on Ethernet, so a
/// 16 KiB PIECE arrives in a dozen parts and the decoder sees split frames.
pub const SEGMENT_LEN: usize = 1400;

/// A node serves queued REQUESTs to a peer while fewer bytes than this
/// wait to go out on the link (the session's write-buffer high-water mark,
/// scaled down): on a slow link, requests wait in the core's queue, where a
/// CANCEL or a CHOKE can still remove them.
pub const HIGH_WATER_BYTES: u64 = 4 * 16 * 1024;

/// Most steps one [`Swarm::run_until`] may take: far more than any test
/// needs (a step is at most [`super::CHECK_PERIOD`] of virtual time and usually
/// much less), so a swarm that spins without progress still stops.
pub const MAX_STEPS_PER_RUN: u64 = 2_000_000;

/// A node's index in the swarm.
pub type NodeId = usize;

/// A link's index in the swarm; also the [`PeerKey`] both ends use for it.
pub type LinkId = usize;

/// What a node starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every byte of the payload on its disk (verified by its start-up check).
    Seeder,
    /// A disk of zeros.
    Leecher,
}

/// One simulated client: a torrent core and everything the session would
/// give it.
#[derive(Debug)]
pub struct Node {
    /// The core under test.
    pub core: Torrent,
    /// The address every other node knows it by.
    pub addr: SocketAddr,
    /// Its peer id.
    pub peer_id: [u8; 20],
    /// The torrent's bytes as on its disk.
    pub disk: Vec<u8>,
    /// A poisoner: the harness flips bytes in every PIECE it serves.
    pub corrupt_uploads: bool,
    /// A BEP 3 client without the fast extension (BEP 6): its handshake
    /// lacks the bit, and the bit in its peers' handshakes is hidden from
    /// its core, as if it did not know it. Set before connecting it.
    pub legacy: bool,
}

/// How a link behaves (both directions alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Time from a segment's last byte going out to its arrival.
    pub latency: Duration,
    /// Bytes per second each way; `None` is unlimited.
    pub bandwidth: Option<u64>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(10),
            bandwidth: None,
        }
    }
}

impl LinkConfig {
    /// A link with this latency and no bandwidth limit.
    pub fn latency(latency: Duration) -> LinkConfig {
        LinkConfig {
            latency,
            bandwidth: None,
        }
    }

    /// The same link limited to `bytes_per_sec` each way.
    pub fn bandwidth(self, bytes_per_sec: u64) -> LinkConfig {
        LinkConfig {
            bandwidth: Some(bytes_per_sec),
            ..self
        }
    }
}

/// Whether a link carries anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Bytes flow.
    Open,
    /// Everything sent on it, or in flight when it fell silent, is lost.
    Silent,
    /// Both ends are gone.
    Closed,
}

/// What a segment carries.
#[derive(Debug)]
enum Payload {
    Bytes(Vec<u8>),
    /// The sender closed the connection.
    Fin,
}

/// A piece of a byte stream on its way.
#[derive(Debug)]
struct Segment {
    /// When its last byte has left the sender (bandwidth).
    sent_at: Instant,
    /// When it arrives (plus latency).
    deliver_at: Instant,
    payload: Payload,
}

/// One direction of a link: segments in order of arrival.
#[derive(Debug)]
struct Pipe {
    segments: VecDeque<Segment>,
    /// When the last queued byte will have left the sender.
    busy_until: Instant,
}

impl Pipe {
    /// The first segment, if it has arrived by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Segment> {
        if self.segments.front()?.deliver_at > now {
            return None;
        }
        self.segments.pop_front()
    }
}

/// One end of a link: what the session's `Conn` holds for it.
#[derive(Debug)]
struct End {
    node: NodeId,
    /// Bytes received and not yet decoded.
    inbox: Vec<u8>,
    sent_handshake: bool,
    /// Handshakes exchanged: messages flow.
    active: bool,
    /// Marked for closing (the cleanup closes it).
    closing: Option<CloseReason>,
    /// Closed: nothing more goes in or out.
    gone: bool,
    /// This end's core unchokes the other (its last CHOKE/UNCHOKE sent).
    unchoking: bool,
}

/// A connection between two nodes. `pipes[i]` carries what `ends[i]` sends.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    state: LinkState,
    ends: [End; 2],
    pipes: [Pipe; 2],
}

/// Something that happened, for tests to assert on. `at` is virtual time
/// since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `from`'s core sent `message` to `to` ([`Action::Send`]).
    Sent {
        /// When.
        at: Duration,
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
        /// The message.
        message: OutMessage,
    },
    /// `from` served `block` to `to` as a PIECE, read from its disk.
    Served {
        /// When.
        at: Duration,
        /// The uploader.
        from: NodeId,
        /// The downloader.
        to: NodeId,
        /// The block.
        block: Block,
    },
    /// `node` wrote `block`, sent by `from`, to its disk.
    Written {
        /// When.
        at: Duration,
        /// The downloader.
        node: NodeId,
        /// The uploader.
        from: NodeId,
        /// The block.
        block: Block,
    },
    /// `node` verified `piece`.
    Verified {
        /// When.
        at: Duration,
        /// The node.
        node: NodeId,
        /// The piece.
        piece: u32,
    },
    /// `node` closed its connection to `peer` (its core's decision, or
    /// the peer's hang-up seen as [`CloseReason::PeerClosed`]).
    Closed {
        /// When.
        at: Duration,
        /// The node.
        node: NodeId,
        /// The other end.
        peer: NodeId,
        /// Why.
        reason: CloseReason,
    },
    /// A note from `node`'s core (what the session writes to `--trace`).
    Noted {
        /// When.
        at: Duration,
        /// The node.
        node: NodeId,
        /// The note.
        note: Note,
    },
}

/// [`Swarm::run_until`] ran out of virtual time or steps before its
/// condition held. Its `Debug` is the readable report, so `unwrap` shows it.
pub struct Stalled(String);

impl fmt::Debug for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A single-file torrent of `total_len` random bytes (from `seed`) in
/// pieces of `piece_len`, bencoded by hand and parsed back as any torrent
/// would be. Returns the metainfo and the payload.
pub fn test_torrent(total_len: usize, piece_len: u32, seed: u64) -> (Arc<Metainfo>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut payload = Vec::with_capacity(total_len + 8);
    while payload.len() < total_len {
        payload.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    payload.truncate(total_len);
    let piece_bytes = usize::try_from(piece_len).expect("piece length fits usize");
    let pieces: Vec<u8> = payload
        .chunks(piece_bytes)
        .flat_map(|piece| Sha1Hash::of(piece).0)
        .collect();
    let info = Value::Dict(Dict::new(vec![
        (
            b"length",
            Value::Int(i64::try_from(total_len).expect("length fits i64")),
        ),
        (b"name", Value::Bytes(b"sim.bin")),
        (b"piece length", Value::Int(i64::from(piece_len))),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let bytes = encode(&Value::Dict(Dict::new(vec![(b"info", info)])));
    let meta = Metainfo::from_bytes(&bytes).expect("the test torrent parses");
    (Arc::new(meta), payload)
}

/// Several torrent cores sharing one torrent, wired together in memory on
/// a virtual clock. See the module doc.
#[derive(Debug)]
pub struct Swarm {
    t0: Instant,
    elapsed: Duration,
    seed: u64,
    meta: Arc<Metainfo>,
    payload: Vec<u8>,
    nodes: Vec<Node>,
    links: Vec<Link>,
    events: Vec<Event>,
    /// The nodes whose loop has something to do this step.
    woken: Vec<bool>,
}

impl Swarm {
    /// A swarm with no node yet, sharing a torrent of `total_len` random
    /// bytes in pieces of `piece_len`; `seed` fixes the payload and every
    /// core's random choices.
    pub fn new(total_len: usize, piece_len: u32, seed: u64) -> Swarm {
        let (meta, payload) = test_torrent(total_len, piece_len, seed);
        Swarm {
            t0: Instant::now(),
            elapsed: Duration::ZERO,
            seed,
            meta,
            payload,
            nodes: Vec::new(),
            links: Vec::new(),
            events: Vec::new(),
            woken: Vec::new(),
        }
    }

    // ----- building ------------------------------------------------------

    /// Adds a node with the default [`TorrentConfig`].
    pub fn add_node(&mut self, role: Role) -> NodeId {
        self.add_node_with(role, TorrentConfig::default())
    }

    /// Adds a node: its core is built, its disk filled (a seeder's with the
    /// payload), and its start-up check run against that disk.
    pub fn add_node_with(&mut self, role: Role, config: TorrentConfig) -> NodeId {
        let id = self.nodes.len();
        let piece_count = self.meta.layout.piece_count();
        let rng = Rng::new(self.seed.wrapping_add(1 + id as u64));
        let core = Torrent::new(
            Arc::clone(&self.meta),
            config,
            Bitfield::new(piece_count),
            rng,
            self.now(),
        );
        let disk = match role {
            Role::Seeder => self.payload.clone(),
            Role::Leecher => vec![0; self.payload.len()],
        };
        let port = 6881 + u16::try_from(id).expect("fewer than 60,000 nodes");
        let peer_id: [u8; 20] = format!("-SM0001-{id:012}")
            .into_bytes()
            .try_into()
            .expect("20 bytes");
        self.nodes.push(Node {
            core,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            peer_id,
            disk,
            corrupt_uploads: false,
            legacy: false,
        });
        if role == Role::Seeder {
            for piece in self.meta.layout.pieces() {
                let ok = self.check_piece(id, piece);
                self.nodes[id].core.handle_existing_piece(piece.get(), ok);
            }
        }
        self.nodes[id].core.handle_check_done();
        self.apply_actions(id);
        id
    }

    /// Connects `a` to `b` over a default link (10 ms, unlimited).
    pub fn connect(&mut self, a: NodeId, b: NodeId) -> LinkId {
        self.connect_with(a, b, LinkConfig::default())
    }

    /// `a` dials `b` over a link behaving as `config`: both learn the
    /// other's address (as the session's dial and accept do) and `a` sends
    /// its handshake. A node that banned the other neither dials nor
    /// accepts it: the link is [`LinkState::Closed`] from the start.
    pub fn connect_with(&mut self, a: NodeId, b: NodeId, config: LinkConfig) -> LinkId {
        assert_ne!(a, b, "a node cannot connect to itself here");
        let now = self.now();
        let end = |node| End {
            node,
            inbox: Vec::new(),
            sent_handshake: false,
            active: false,
            closing: None,
            gone: false,
            unchoking: false,
        };
        let pipe = || Pipe {
            segments: VecDeque::new(),
            busy_until: now,
        };
        let (addr_a, addr_b) = (self.nodes[a].addr, self.nodes[b].addr);
        let dialled = self.nodes[a].core.peer_list_mut().mark_connected(addr_b);
        let accepted = dialled && self.nodes[b].core.peer_list_mut().mark_connected(addr_a);
        let link = self.links.len();
        self.links.push(Link {
            config,
            state: if accepted {
                LinkState::Open
            } else {
                LinkState::Closed
            },
            ends: [end(a), end(b)],
            pipes: [pipe(), pipe()],
        });
        if accepted {
            self.send_handshake(link, 0);
        } else if dialled {
            // `b` refused the connection at once: `a` sees it closed.
            let reason = CloseReason::ClosedBeforeHandshake;
            self.nodes[a]
                .core
                .handle_disconnected(link, addr_b, &reason, now);
            self.events.push(Event::Closed {
                at: self.elapsed,
                node: a,
                peer: b,
                reason,
            });
        }
        link
    }

    /// Makes a link silent: whatever is in flight and whatever is sent on
    /// it from now on is lost, both ways. Neither end is told.
    pub fn silence(&mut self, link: LinkId) {
        let link = &mut self.links[link];
        if link.state == LinkState::Open {
            link.state = LinkState::Silent;
            for pipe in &mut link.pipes {
                pipe.segments.clear();
            }
        }
    }

    /// Breaks a link: both ends see the peer hang up (at the next cleanup).
    pub fn close_link(&mut self, link: LinkId) {
        let link = &mut self.links[link];
        for end in &mut link.ends {
            if !end.gone {
                end.closing.get_or_insert(CloseReason::PeerClosed);
            }
        }
    }

    // ----- looking ---------------------------------------------------------

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.t0 + self.elapsed
    }

    /// Virtual time simulated so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The seed's bytes every node should end up with.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// A node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// A node, to change (e.g. make it a poisoner).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Whether `id` has verified every piece and its disk holds the payload.
    pub fn is_complete(&self, id: NodeId) -> bool {
        let node = &self.nodes[id];
        node.core.is_complete() && node.disk == self.payload
    }

    /// Whether every node is complete.
    pub fn all_complete(&self) -> bool {
        (0..self.nodes.len()).all(|id| self.is_complete(id))
    }

    /// What state `link` is in.
    pub fn link_state(&self, link: LinkId) -> LinkState {
        self.links[link].state
    }

    /// The peers `id` unchokes now (as its CHOKE and UNCHOKE messages say).
    pub fn unchoked_by(&self, id: NodeId) -> Vec<NodeId> {
        self.links
            .iter()
            .filter_map(|link| {
                let side = link.ends.iter().position(|e| e.node == id)?;
                let end = &link.ends[side];
                (end.active && !end.gone && end.unchoking).then(|| link.ends[1 - side].node)
            })
            .collect()
    }

    /// Everything logged so far, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The messages `from` sent to `to`, with their times.
    pub fn sent(&self, from: NodeId, to: NodeId) -> Vec<(Duration, OutMessage)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Sent {
                    at,
                    from: f,
                    to: t,
                    message,
                } if *f == from && *t == to => Some((*at, message.clone())),
                _ => None,
            })
            .collect()
    }

    /// How many blocks `node` wrote that came from `from`.
    pub fn blocks_written(&self, node: NodeId, from: NodeId) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Written { node: n, from: f, .. } if *n == node && *f == from))
            .count()
    }

    /// One line per node: what it has and whom it is connected to.
    pub fn report(&self) -> String {
        let mut lines = Vec::new();
        for (id, node) in self.nodes.iter().enumerate() {
            let peers: Vec<String> = self
                .links
                .iter()
                .filter_map(|l| {
                    let side = l.ends.iter().position(|e| e.node == id)?;
                    let end = &l.ends[side];
                    (end.active && !end.gone).then(|| format!("#{}", l.ends[1 - side].node))
                })
                .collect();
            let stats = node.core.stats();
            lines.push(format!(
                "  node #{id} {}: {}/{} pieces, peers [{}], down {} B, up {} B, wasted {} B, \
                 hash failures {}",
                node.addr,
                node.core.have().count_ones(),
                self.meta.layout.piece_count(),
                peers.join(" "),
                stats.downloaded,
                stats.uploaded,
                stats.wasted,
                stats.hash_failures
            ));
        }
        lines.join("\n")
    }

    // ----- running ---------------------------------------------------------

    /// Steps until `done` holds (checked before every step) and returns
    /// the virtual time it took; `Err` with a report of every node when
    /// `max` of virtual time or [`MAX_STEPS_PER_RUN`] steps pass first.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Swarm) -> bool,
        max: Duration,
    ) -> Result<Duration, Stalled> {
        let start = self.elapsed;
        let mut steps = 0u64;
        loop {
            if done(self) {
                return Ok(self.elapsed - start);
            }
            if self.elapsed - start >= max || steps >= MAX_STEPS_PER_RUN {
                return Err(Stalled(format!(
                    "swarm: condition not met after {:?} of virtual time ({steps} steps, \
                     limit {max:?})\n{}",
                    self.elapsed - start,
                    self.report()
                )));
            }
            self.step();
            steps += 1;
        }
    }

    /// One pass of the loop: jump to the next event, deliver what is due,
    /// tick the cores that have something to do (bytes or a hang-up came
    /// in, or their deadline passed), serve, clean up.
    pub fn step(&mut self) {
        let next = self.next_event();
        if next > self.now() {
            self.elapsed = next - self.t0;
        }
        self.woken = vec![false; self.nodes.len()];
        for link in 0..self.links.len() {
            self.deliver(link);
        }
        self.cleanup();
        let now = self.now();
        for node in 0..self.nodes.len() {
            if self.woken[node] || now >= self.nodes[node].core.next_deadline() {
                self.nodes[node].core.handle_timeout(now);
                self.apply_actions(node);
            }
        }
        self.cleanup();
        self.serve();
        self.cleanup();
    }

    /// The earliest time something can happen: a core's deadline, a
    /// segment's arrival, or room to serve on a full link.
    fn next_event(&self) -> Instant {
        let now = self.now();
        let mut next = self
            .nodes
            .iter()
            .map(|n| n.core.next_deadline())
            .min()
            .unwrap_or(now);
        for (id, link) in self.links.iter().enumerate() {
            for (side, pipe) in link.pipes.iter().enumerate() {
                if let Some(front) = pipe.segments.front() {
                    next = next.min(front.deliver_at);
                }
                let sender = link.ends[side].node;
                if self.nodes[sender].core.has_requests_to_serve(id) {
                    if let Some(s) = pipe.segments.iter().find(|s| s.sent_at > now) {
                        next = next.min(s.sent_at);
                    }
                }
            }
        }
        next
    }

    // ----- the network -----------------------------------------------------

    /// Bytes `side` of `link` has queued that have not left yet: the time
    /// the link stays busy, at its bandwidth (none wait on an unlimited link).
    fn backlog(&self, link: LinkId, side: usize) -> u64 {
        let link = &self.links[link];
        let busy = link.pipes[side]
            .busy_until
            .saturating_duration_since(self.now());
        let bytes_per_sec = u128::from(link.config.bandwidth.unwrap_or(0));
        u64::try_from(busy.as_nanos() * bytes_per_sec / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// Puts `bytes` from `side` of `link` on the wire, a segment at a time.
    fn send_bytes(&mut self, link: LinkId, side: usize, bytes: &[u8]) {
        let now = self.now();
        let link = &mut self.links[link];
        let end = &link.ends[side];
        if link.state != LinkState::Open || end.gone || end.closing.is_some() {
            return;
        }
        let config = link.config;
        let pipe = &mut link.pipes[side];
        for chunk in bytes.chunks(SEGMENT_LEN) {
            let start = pipe.busy_until.max(now);
            let sent_at = start + transmit_time(chunk.len(), config.bandwidth);
            pipe.busy_until = sent_at;
            pipe.segments.push_back(Segment {
                sent_at,
                deliver_at: sent_at + config.latency,
                payload: Payload::Bytes(chunk.to_vec()),
            });
        }
    }

    /// Encodes `message` and sends it from `side` of `link`.
    fn send_message(&mut self, link: LinkId, side: usize, message: &Message<'_>) {
        let mut frame = Vec::new();
        message.encode(&mut frame);
        self.send_bytes(link, side, &frame);
    }

    /// Sends the handshake of `side`'s node (BEP 10 and BEP 6 bits set, as
    /// the session's).
    fn send_handshake(&mut self, link: LinkId, side: usize) {
        let node = &self.nodes[self.links[link].ends[side].node];
        let mut ours = super::our_handshake(self.meta.info_hash.0, node.peer_id);
        if node.legacy {
            ours = Handshake::new(self.meta.info_hash.0, node.peer_id).with_extensions();
        }
        self.links[link].ends[side].sent_handshake = true;
        self.send_bytes(link, side, &ours.encode());
    }

    /// Hands every due segment of `link` to its receiver, which decodes it.
    fn deliver(&mut self, link: LinkId) {
        let now = self.now();
        for side in 0..2 {
            let receiver = 1 - side;
            let mut fin = false;
            let mut arrived = false;
            let l = &mut self.links[link];
            while let Some(segment) = l.pipes[side].pop_due(now) {
                let end = &mut l.ends[receiver];
                if l.state != LinkState::Open || end.gone {
                    continue;
                }
                if let Some(woken) = self.woken.get_mut(end.node) {
                    *woken = true;
                }
                match segment.payload {
                    Payload::Bytes(bytes) => {
                        end.inbox.extend_from_slice(&bytes);
                        arrived = true;
                    }
                    Payload::Fin => fin = true,
                }
            }
            if arrived {
                self.receive(link, receiver);
            }
            if fin {
                let end = &mut self.links[link].ends[receiver];
                let reason = if end.active {
                    CloseReason::PeerClosed
                } else {
                    CloseReason::ClosedBeforeHandshake
                };
                end.closing.get_or_insert(reason);
            }
        }
    }

    /// Decodes and handles everything whole in `side`'s inbox, as the
    /// session's `decode_buffered` does: the handshake first, then frames.
    fn receive(&mut self, link: LinkId, side: usize) {
        let end = &mut self.links[link].ends[side];
        if end.gone || end.closing.is_some() {
            return;
        }
        let buf = std::mem::take(&mut end.inbox);
        let mut used = 0;
        if !end.active {
            match Handshake::decode(&buf) {
                Ok(Some(handshake)) => {
                    used = HANDSHAKE_LEN;
                    self.on_handshake(link, side, &handshake);
                }
                Ok(None) => {}
                Err(e) => self.mark_closing(link, side, CloseReason::BadHandshake(e)),
            }
        }
        let limits = FrameLimits::for_pieces(self.meta.layout.piece_count());
        while self.is_active(link, side) {
            let rest = buf.get(used..).unwrap_or_default();
            match decode_frame(rest, &limits) {
                Ok(Some((message, len))) => {
                    used += len;
                    self.on_message(link, side, message);
                }
                Ok(None) => break,
                Err(e) => {
                    self.mark_closing(link, side, CloseReason::BadMessage(e));
                    break;
                }
            }
        }
        let end = &mut self.links[link].ends[side];
        if !end.gone {
            end.inbox = buf.get(used..).unwrap_or_default().to_vec();
        }
    }

    fn is_active(&self, link: LinkId, side: usize) -> bool {
        let end = &self.links[link].ends[side];
        end.active && !end.gone && end.closing.is_none()
    }

    fn mark_closing(&mut self, link: LinkId, side: usize, reason: CloseReason) {
        self.links[link].ends[side].closing.get_or_insert(reason);
    }

    /// The other side's handshake arrived at `side` (the session's
    /// `on_handshake`): checked, answered, and given to the core.
    fn on_handshake(&mut self, link: LinkId, side: usize, handshake: &Handshake) {
        let node = self.links[link].ends[side].node;
        let peer = self.links[link].ends[1 - side].node;
        if handshake.info_hash != self.meta.info_hash.0 {
            return self.mark_closing(link, side, CloseReason::WrongInfoHash);
        }
        if handshake.peer_id == self.nodes[node].peer_id {
            return self.mark_closing(link, side, CloseReason::ConnectedToSelf);
        }
        if let Err(reason) = self.nodes[node].core.check_handshake(&handshake.peer_id) {
            return self.mark_closing(link, side, reason);
        }
        self.links[link].ends[side].active = true;
        if !self.links[link].ends[side].sent_handshake {
            self.send_handshake(link, side);
        }
        let addr = self.nodes[peer].addr;
        let now = self.now();
        let mut seen = *handshake;
        if self.nodes[node].legacy {
            // A client that knows no fast extension ignores its bit.
            seen = Handshake::new(seen.info_hash, seen.peer_id).with_extensions();
        }
        self.nodes[node]
            .core
            .handle_handshake(link, addr, &seen, now);
        self.apply_actions(node);
    }

    /// One decoded message for `side`'s core (the session's
    /// `handle_message`): a block it wants is written to its disk.
    fn on_message(&mut self, link: LinkId, side: usize, message: Message<'_>) {
        let node = self.links[link].ends[side].node;
        let from = self.links[link].ends[1 - side].node;
        let now = self.now();
        let data = match message {
            Message::Piece { data, .. } => data,
            _ => &[],
        };
        if let Handled::Write(write) = self.nodes[node].core.handle_message(link, message, now) {
            let at = self.disk_offset(&write.block);
            self.nodes[node].disk[at..at + data.len()].copy_from_slice(data);
            self.events.push(Event::Written {
                at: self.elapsed,
                node,
                from,
                block: write.block,
            });
            self.nodes[node].core.handle_block_written(write);
        }
        self.apply_actions(node);
    }

    /// Cleanup phase: every end marked for closing is closed, its core
    /// told, and the other end sent a FIN. Repeats while closing one end
    /// makes a core close another.
    fn cleanup(&mut self) {
        loop {
            let mut closed_any = false;
            for link in 0..self.links.len() {
                for side in 0..2 {
                    let end = &mut self.links[link].ends[side];
                    if end.gone {
                        continue;
                    }
                    let Some(reason) = end.closing.take() else {
                        continue;
                    };
                    closed_any = true;
                    self.close_end(link, side, reason);
                }
            }
            if !closed_any {
                return;
            }
        }
    }

    fn close_end(&mut self, link: LinkId, side: usize, reason: CloseReason) {
        let now = self.now();
        let node = self.links[link].ends[side].node;
        let peer = self.links[link].ends[1 - side].node;
        let l = &mut self.links[link];
        l.ends[side].gone = true;
        l.ends[side].active = false;
        if let Some(woken) = self.woken.get_mut(node) {
            *woken = true;
        }
        l.ends[side].unchoking = false;
        l.ends[side].inbox.clear();
        let latency = l.config.latency;
        let pipe = &mut l.pipes[side];
        let sent_at = pipe.busy_until.max(now);
        pipe.segments.push_back(Segment {
            sent_at,
            deliver_at: sent_at + latency,
            payload: Payload::Fin,
        });
        if l.ends.iter().all(|e| e.gone) {
            l.state = LinkState::Closed;
        }
        let addr = self.nodes[peer].addr;
        self.nodes[node]
            .core
            .handle_disconnected(link, addr, &reason, now);
        self.events.push(Event::Closed {
            at: self.elapsed,
            node,
            peer,
            reason,
        });
        self.apply_actions(node);
    }

    /// Serve phase (the session's `serve_requests`): each node reads the
    /// next block each peer asked for from its disk and sends it as a
    /// PIECE, while the link has room ([`HIGH_WATER_BYTES`]).
    fn serve(&mut self) {
        let now = self.now();
        for link in 0..self.links.len() {
            for side in 0..2 {
                let node = self.links[link].ends[side].node;
                let peer = self.links[link].ends[1 - side].node;
                while self.is_active(link, side)
                    && self.backlog(link, side) < HIGH_WATER_BYTES
                    && self.nodes[node].core.has_requests_to_serve(link)
                {
                    let Serve::Block(block) = self.nodes[node].core.serve_next(link, None, now)
                    else {
                        break;
                    };
                    let at = self.disk_offset(&block);
                    let len = usize::try_from(block.len).expect("block length fits usize");
                    let mut data = self.nodes[node].disk[at..at + len].to_vec();
                    if self.nodes[node].corrupt_uploads {
                        for byte in data.iter_mut().step_by(1000) {
                            *byte ^= 0xFF;
                        }
                    }
                    let piece = Message::Piece {
                        piece: block.piece.get(),
                        begin: block.begin,
                        data: &data,
                    };
                    self.send_message(link, side, &piece);
                    self.events.push(Event::Served {
                        at: self.elapsed,
                        from: node,
                        to: peer,
                        block,
                    });
                }
            }
        }
    }

    // ----- the driver: carrying out actions -------------------------------

    /// Carries out everything `node`'s core has queued (the session's
    /// `apply_actions`).
    fn apply_actions(&mut self, node: NodeId) {
        while let Some(action) = self.nodes[node].core.poll_action() {
            match action {
                Action::Send { peer, message } => self.on_send(node, peer, message),
                Action::Close { peer, reason } => {
                    let side = self.side_of(peer, node);
                    self.mark_closing(peer, side, reason);
                }
                Action::CheckPiece { piece } => {
                    let ok = self.check_piece(node, piece);
                    self.nodes[node].core.handle_piece_checked(piece, ok);
                }
                Action::DigestBlocks {
                    piece,
                    blocks,
                    purpose,
                } => {
                    let digests = self.digest_blocks(node, piece, &blocks);
                    self.nodes[node]
                        .core
                        .handle_block_digests(piece, purpose, digests);
                }
                Action::PieceVerified { piece } => self.events.push(Event::Verified {
                    at: self.elapsed,
                    node,
                    piece: piece.get(),
                }),
                Action::Note(note) => self.events.push(Event::Noted {
                    at: self.elapsed,
                    node,
                    note,
                }),
                // Every simulated node starts with its metainfo.
                Action::MetadataReceived { .. } => {}
            }
        }
    }

    /// An [`Action::Send`]: logged, then encoded onto the link.
    fn on_send(&mut self, node: NodeId, link: PeerKey, message: OutMessage) {
        let side = self.side_of(link, node);
        if !self.is_active(link, side) {
            return;
        }
        match message {
            OutMessage::Unchoke => self.links[link].ends[side].unchoking = true,
            OutMessage::Choke => self.links[link].ends[side].unchoking = false,
            _ => {}
        }
        self.send_message(link, side, &message.as_message());
        self.events.push(Event::Sent {
            at: self.elapsed,
            from: node,
            to: self.links[link].ends[1 - side].node,
            message,
        });
    }

    /// Which end of `link` is `node`'s.
    fn side_of(&self, link: LinkId, node: NodeId) -> usize {
        let ends = &self.links[link].ends;
        match ends.iter().position(|e| e.node == node) {
            Some(side) => side,
            None => panic!("node #{node} used key {link}, a link it is not on"),
        }
    }

    /// Where `block` starts on a node's disk.
    fn disk_offset(&self, block: &Block) -> usize {
        let offset = self.meta.layout.piece_offset(block.piece) + u64::from(block.begin);
        usize::try_from(offset).expect("the test torrent fits in memory")
    }

    /// Hashes `piece` from `node`'s disk against the metainfo.
    fn check_piece(&self, node: NodeId, piece: PieceIndex) -> bool {
        let layout = &self.meta.layout;
        let at = usize::try_from(layout.piece_offset(piece)).expect("fits in memory");
        let len = usize::try_from(layout.piece_size(piece)).expect("fits in memory");
        let bytes = &self.nodes[node].disk[at..at + len];
        self.meta.piece_hash(piece) == Some(&Sha1Hash::of(bytes))
    }

    /// SHA-1 of each of `blocks` of `piece` as on `node`'s disk.
    fn digest_blocks(&self, node: NodeId, piece: PieceIndex, blocks: &[u32]) -> Vec<BlockDigest> {
        blocks
            .iter()
            .filter_map(|&n| {
                let block = self.meta.layout.block(piece, n)?;
                let at = self.disk_offset(&block);
                let len = usize::try_from(block.len).ok()?;
                Some((n, Sha1Hash::of(&self.nodes[node].disk[at..at + len])))
            })
            .collect()
    }
}

/// How long `len` bytes take to leave at `bandwidth` bytes per second.
fn transmit_time(len: usize, bandwidth: Option<u64>) -> Duration {
    match bandwidth {
        None => Duration::ZERO,
        Some(bytes_per_sec) => {
            let nanos = u128::from(u64::try_from(len).unwrap_or(u64::MAX)) * 1_000_000_000
                / u128::from(bytes_per_sec.max(1));
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        }
    }
}
