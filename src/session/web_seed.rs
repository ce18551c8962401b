//! Web seeds (BEP 19) in the loop: each `url-list` entry of a torrent is
//! driven over a nonblocking HTTP connection and joins the torrent core
//! as a pseudo-peer.
//!
//! Layer 2. A web seed is, to the core, a peer under a [`PeerKey`] from a
//! reserved range ([`TOKEN_BASE`] up; its socket's mio token is the same
//! number, far from the connection slab's keys and the tracker tokens at
//! the top of the space). It has every piece (a full BITFIELD), never chokes us,
//! is never interested and is never served. The core's `request_blocks`
//! picks blocks for it like for any peer; its REQUESTs come here
//! (`apply_actions` routes [`Action::Send`] and [`Action::Close`] of these
//! keys to this file instead of the slab), are queued, and each run of
//! contiguous blocks (up to [`MAX_RUN_BYTES`]) becomes one HTTP range
//! request per file it covers ([`crate::web_seed`]). The reply's bytes are
//! cut back into blocks and handed to the core as PIECE messages
//! (`handle_peer_message`), so they are written, hashed, struck and
//! smart-banned exactly like a peer's: a web seed can never put data on
//! disk that is not verified.
//!
//! One request is in flight per web seed, on one keep-alive connection.
//! The host name is looked up off the loop by the tracker code's
//! [`Resolver`] (one per torrent, woken through the loop's waker).
//!
//! A web seed that fails (connect refused or timed out, an HTTP error, a
//! bad or short reply) or whose data fails a hash check (the core's
//! [`Torrent::take_struck`](crate::torrent::Torrent::take_struck) names
//! its address) leaves the core (its requests go back to the pool) and is
//! backed off: [`FIRST_BACKOFF`] doubling up to [`MAX_BACKOFF`]. It is
//! never banned for good (the server's file may be fixed), but it is not
//! asked while backed off. Its address is never in the peer list, so the
//! strikes never ban it either.
//!
//! `https://` web seeds are skipped with one log line (no TLS in the loop
//! yet); at most [`MAX_WEB_SEEDS`] are used per torrent; two URLs on the
//! same `host:port` take turns (one joins at a time), since the core
//! knows a peer by its address.
//!
//! The status line's `peers C of K` counts BitTorrent connections only,
//! not web seeds (its activity word does count them: a download from a
//! web seed alone says `downloading`); the TUI's peer table shows a
//! joined web seed as a row of its own (client `-PW…`).

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token, Waker};

use super::{Session, TorrentId, MAX_TORRENTS};
use crate::close_reason::CloseReason;
use crate::metainfo::{Block, Metainfo, BLOCK_LEN};
use crate::torrent::{OutMessage, PeerKey};
use crate::tracker::resolve::{Lookup, Resolver};
use crate::web_seed::http::{encode_request, follow};
use crate::web_seed::{
    file_ranges, file_url, FileExtent, FileRange, HttpUrl, Progress, RangeAsk, ResponseParser,
    Scheme,
};
use crate::wire::{Handshake, Message};

/// Most web seeds used per torrent (the rest of a long `url-list` is
/// ignored): each holds a socket and a pseudo-peer slot.
pub(super) const MAX_WEB_SEEDS: usize = 4;

/// The first web seed key and token: half the token space, far above
/// any slab key (connections stay below the peer cap) and far below the
/// fixed and tracker tokens at the top.
const TOKEN_BASE: usize = usize::MAX / 2;

/// First back-off after a failure; doubles per failure in a row.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(30);

/// Longest back-off: a broken server may be fixed, so it is tried again.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Silence after which a request in flight fails (the core gives its
/// blocks to others after its own 15 s request timeout anyway).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// An idle keep-alive connection is closed after this long.
const IDLE_CONN_TIMEOUT: Duration = Duration::from_secs(60);

/// Most bytes asked in one run of contiguous blocks: a few pieces, so one
/// HTTP request moves a lot, while a failure loses little.
const MAX_RUN_BYTES: u64 = 4 * 1024 * 1024;

/// Most blocks queued for a web seed (the core's pipeline is capped lower).
const MAX_QUEUED_BLOCKS: usize = 2 * crate::peer::MAX_PIPELINE;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes read from one web seed per loop pass before the loop moves on
/// (the rest is read on the next pass), like a peer's read budget.
const READ_BUDGET_BYTES: usize = 1024 * 1024;

/// The torrent and web seed index of a token or peer key in the web seed
/// range, if it is one.
pub(super) fn web_seed_of(key: usize) -> Option<(TorrentId, usize)> {
    let n = key
        .checked_sub(TOKEN_BASE)
        .filter(|n| *n < MAX_TORRENTS * MAX_WEB_SEEDS)?;
    Some((n / MAX_WEB_SEEDS, n % MAX_WEB_SEEDS))
}

/// The peer key (and token) of torrent `tid`'s web seed `index`.
fn key_of(tid: TorrentId, index: usize) -> PeerKey {
    TOKEN_BASE + tid * MAX_WEB_SEEDS + index
}

/// A torrent's web seeds.
pub(super) struct WebSeeds {
    seeds: Vec<WebSeed>,
    /// Looks up their host names off the loop.
    resolver: Resolver,
    /// Where each file lies in the torrent.
    extents: Vec<FileExtent>,
    /// Each file's path elements inside the torrent's directory.
    paths: Vec<Vec<String>>,
}

/// Where a web seed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not in the core; may join at `retry_at`.
    Idle { retry_at: Instant },
    /// In the core as a pseudo-peer under this address.
    Joined { addr: SocketAddr },
    /// Never used (https).
    Disabled,
}

/// One web seed.
struct WebSeed {
    base: HttpUrl,
    status: Status,
    /// Failures in a row (sets the back-off).
    failures: u32,
    /// Blocks the core asked for, not yet in a run.
    queue: VecDeque<Block>,
    conn: Option<HttpConn>,
    job: Option<Job>,
    /// Its read budget ran out: read again next pass.
    read_pending: bool,
    /// It finished a run outside the receive phase: the next pass must
    /// come at once, so `request_blocks` gives it more.
    refill: bool,
}

/// One HTTP connection.
struct HttpConn {
    socket: TcpStream,
    host: String,
    port: u16,
    connected: bool,
    write_buf: Vec<u8>,
    write_interest: bool,
    /// When it was opened (connect timeout) or last did something.
    last_activity: Instant,
    /// It carried a reply already (a close before any byte of the next
    /// reply is the server's keep-alive ending, not a failure).
    reused: bool,
}

/// A run of contiguous blocks being fetched.
struct Job {
    /// Blocks not yet handed to the core, in order.
    blocks: VecDeque<Block>,
    /// File ranges not yet asked for, in order.
    ranges: VecDeque<FileRange>,
    /// Bytes of the run received and not yet cut into blocks.
    run_buf: Vec<u8>,
    /// The request in flight.
    exchange: Option<Exchange>,
}

/// One HTTP request and its reply.
struct Exchange {
    url: HttpUrl,
    ask: RangeAsk,
    parser: ResponseParser,
    /// Redirects followed.
    hops: u32,
    /// The request is written to the connection's buffer.
    sent: bool,
    /// Some reply byte arrived.
    got_bytes: bool,
    /// Re-sent once after a reused connection closed.
    retried: bool,
}

impl WebSeeds {
    /// The usable web seeds of `meta` (http only, at most
    /// [`MAX_WEB_SEEDS`]); lookups wake the loop through `waker`.
    pub(super) fn new(meta: &Metainfo, waker: Arc<Waker>, now: Instant) -> WebSeeds {
        let mut seeds = Vec::new();
        for text in &meta.url_list {
            if seeds.len() >= MAX_WEB_SEEDS {
                log::info!(
                    "{}: more than {MAX_WEB_SEEDS} web seeds; the rest are not used",
                    meta.name
                );
                break;
            }
            let base = match HttpUrl::parse(text) {
                Ok(base) => base,
                Err(e) => {
                    log::info!("web seed {text}: not used: {e}");
                    continue;
                }
            };
            let status = if base.scheme == Scheme::Https {
                log::info!("web seed {text}: https web seeds are not supported yet; skipped");
                Status::Disabled
            } else {
                Status::Idle { retry_at: now }
            };
            seeds.push(WebSeed {
                base,
                status,
                failures: 0,
                queue: VecDeque::new(),
                conn: None,
                job: None,
                read_pending: false,
                refill: false,
            });
        }
        let paths = meta
            .files
            .iter()
            .map(|f| {
                let skip = usize::from(meta.multi_file);
                f.path
                    .components()
                    .skip(skip)
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        WebSeeds {
            seeds,
            resolver: Resolver::new(Arc::new(move || {
                let _ = waker.wake(); // a failed wake only delays the answer
            })),
            extents: crate::web_seed::ranges::extents(meta),
            paths,
        }
    }

    /// How many are in the core as pseudo-peers now.
    pub(super) fn joined_count(&self) -> usize {
        self.seeds
            .iter()
            .filter(|s| matches!(s.status, Status::Joined { .. }))
            .count()
    }
}

/// What reading a web seed's socket came to.
enum ReadStep {
    /// Keep reading.
    Again,
    /// Stop reading for now.
    Stop,
}

impl Session {
    /// Web seed phase (every pass, after `request_blocks`): takes the
    /// core's verdicts (struck addresses), joins due web seeds, starts the
    /// next run of blocks, reads what the last pass left, and times out
    /// silent connections. May not block: lookups run off the loop.
    pub(super) fn drive_web_seeds(&mut self, now: Instant) {
        for tid in self.torrent_ids() {
            let Some(slot) = self.torrents.get_mut(tid) else {
                continue;
            };
            let struck = slot.torrent.take_struck();
            let count = slot.web_seeds.seeds.len();
            slot.web_seeds.resolver.poll(now);
            for addr in struck {
                for index in 0..count {
                    if self.web_seed_addr(tid, index) == Some(addr) {
                        self.back_off(tid, index, "its data failed a hash check", now);
                    }
                }
            }
            let mut joined = false;
            for index in 0..count {
                self.check_web_seed_timeouts(tid, index, now);
                joined |= self.maybe_join(tid, index, now);
            }
            if joined {
                // Their first requests now, not a housekeeping period later.
                self.request_blocks(now);
                for other in self.torrent_ids() {
                    self.apply_actions(other, now);
                }
            }
            for index in 0..count {
                if let Some(seed) = self.seed_mut(tid, index) {
                    seed.refill = false;
                }
                self.advance(tid, index, now);
                if self.seed(tid, index).is_some_and(|s| s.read_pending) {
                    self.web_seed_event(tid, index, true, false, now);
                }
            }
        }
    }

    /// Whether some web seed has bytes left to read from last pass (the
    /// next poll must not sleep).
    pub(super) fn web_seeds_pending(&self) -> bool {
        self.torrents
            .iter()
            .any(|(_, s)| s.web_seeds.seeds.iter().any(|w| w.read_pending || w.refill))
    }

    /// A message the core sends to web seed `key`: REQUESTs are queued,
    /// CANCELs take queued blocks back; the rest means nothing to HTTP.
    pub(super) fn web_seed_send(&mut self, tid: TorrentId, key: PeerKey, message: OutMessage) {
        let Some((_, index)) = web_seed_of(key) else {
            return;
        };
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        let layout = &slot.meta.layout;
        let Some(seed) = slot.web_seeds.seeds.get_mut(index) else {
            return;
        };
        match message {
            OutMessage::Request(r) => {
                let block = layout.check_block(r.piece, r.begin, r.len, BLOCK_LEN);
                if let Some(block) = block.filter(|_| seed.queue.len() < MAX_QUEUED_BLOCKS) {
                    seed.queue.push_back(block);
                }
            }
            OutMessage::Cancel(r) => seed
                .queue
                .retain(|b| !(b.piece.get() == r.piece && b.begin == r.begin)),
            _ => {}
        }
    }

    /// The core closes web seed `key`: it is done with it (both complete),
    /// or it misbehaved (too slow, unrequested data): backed off.
    pub(super) fn web_seed_close(
        &mut self,
        tid: TorrentId,
        key: PeerKey,
        reason: &CloseReason,
        now: Instant,
    ) {
        let Some((_, index)) = web_seed_of(key) else {
            return;
        };
        if *reason == CloseReason::BothComplete {
            self.detach(tid, index, now);
        } else {
            self.back_off(tid, index, &reason.to_string(), now);
        }
    }

    /// A readiness event on web seed `index`'s socket.
    pub(super) fn web_seed_event(
        &mut self,
        tid: TorrentId,
        index: usize,
        readable: bool,
        writable: bool,
        now: Instant,
    ) {
        if writable {
            self.web_seed_writable(tid, index, now);
        }
        if readable {
            if let Some(seed) = self.seed_mut(tid, index) {
                seed.read_pending = false;
            }
            let mut buf = vec![0u8; READ_CHUNK_BYTES];
            let mut budget = READ_BUDGET_BYTES;
            while let ReadStep::Again = self.read_once(tid, index, &mut buf, now) {
                budget = budget.saturating_sub(READ_CHUNK_BYTES);
                if budget == 0 {
                    if let Some(seed) = self.seed_mut(tid, index) {
                        seed.read_pending = seed.conn.is_some();
                    }
                    return;
                }
            }
        }
    }

    // ----- joining and leaving the core ---------------------------------

    /// Joins web seed `index` to the core when it is due, its torrent
    /// wants data and its address is known.
    /// Returns whether it joined.
    fn maybe_join(&mut self, tid: TorrentId, index: usize, now: Instant) -> bool {
        let peer_id = web_seed_peer_id(key_of(tid, index));
        let Some(slot) = self.torrents.get_mut(tid) else {
            return false;
        };
        let wanting = !slot.paused && slot.checking.is_none() && !slot.torrent.is_complete();
        let joined: Vec<SocketAddr> = slot
            .web_seeds
            .seeds
            .iter()
            .filter_map(|s| match s.status {
                Status::Joined { addr } => Some(addr),
                _ => None,
            })
            .collect();
        let Some(seed) = slot.web_seeds.seeds.get(index) else {
            return false;
        };
        match seed.status {
            Status::Idle { retry_at } if wanting && now >= retry_at => {}
            Status::Joined { .. } if !wanting => {
                self.detach(tid, index, now);
                return false;
            }
            _ => return false,
        }
        let (host, port) = (seed.base.host.clone(), seed.base.port);
        let addr = match slot.web_seeds.resolver.lookup(&host, port, now) {
            Lookup::Ready(addr) => addr,
            Lookup::Pending => return false,
            Lookup::Failed(why) => {
                self.back_off(tid, index, &why, now);
                return false;
            }
        };
        if joined.contains(&addr) {
            return false; // another URL on this server is in; this one waits its turn
        }
        let key = key_of(tid, index);
        let info_hash = slot.meta.info_hash.0;
        if let Some(seed) = slot.web_seeds.seeds.get_mut(index) {
            seed.status = Status::Joined { addr };
            log::info!("web seed {}: joined as a peer ({addr})", seed.base);
        }
        let handshake = Handshake::new(info_hash, peer_id);
        slot.torrent.handle_handshake(key, addr, &handshake, now);
        // Every piece, said the BEP 3 way (HAVE ALL is for fast-extension peers).
        let all = crate::bitfield::Bitfield::full(slot.meta.layout.piece_count());
        slot.torrent
            .handle_message(key, Message::Bitfield(all.as_bytes()), now);
        slot.torrent.handle_message(key, Message::Unchoke, now);
        self.apply_actions(tid, now);
        true
    }

    /// Web seed `index` failed: it leaves the core and waits, longer after
    /// each failure in a row.
    fn back_off(&mut self, tid: TorrentId, index: usize, why: &str, now: Instant) {
        let Some(seed) = self.seed_mut(tid, index) else {
            return;
        };
        if seed.status == Status::Disabled {
            return;
        }
        seed.failures = seed.failures.saturating_add(1);
        let shift = seed.failures.saturating_sub(1).min(16);
        let delay = FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF);
        log::warn!(
            "web seed {}: {why}; backing off {} s",
            seed.base,
            delay.as_secs()
        );
        self.leave(tid, index, now + delay, now);
    }

    /// Web seed `index` leaves the core without blame (the torrent is
    /// complete or paused); it may join again at once when wanted.
    fn detach(&mut self, tid: TorrentId, index: usize, now: Instant) {
        if let Some(seed) = self.seed(tid, index) {
            if let Status::Joined { .. } = seed.status {
                log::debug!("web seed {}: leaves (nothing more wanted)", seed.base);
            }
        }
        self.leave(tid, index, now, now);
    }

    /// Drops web seed `index`'s connection and work, and takes it out of
    /// the core (its requests go back to the pool), until `retry_at`.
    fn leave(&mut self, tid: TorrentId, index: usize, retry_at: Instant, now: Instant) {
        let registry = self.poll.registry();
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        let Some(seed) = slot.web_seeds.seeds.get_mut(index) else {
            return;
        };
        drop_conn(registry, seed);
        seed.job = None;
        seed.queue.clear();
        let was = std::mem::replace(&mut seed.status, Status::Idle { retry_at });
        if let Status::Joined { addr } = was {
            let key = key_of(tid, index);
            slot.torrent
                .handle_disconnected(key, addr, &CloseReason::PeerClosed, now);
            self.apply_actions(tid, now);
        }
    }

    /// Connect, reply and idle timeouts of web seed `index`.
    fn check_web_seed_timeouts(&mut self, tid: TorrentId, index: usize, now: Instant) {
        let registry = self.poll.registry();
        let Some(seed) = seed_in(&mut self.torrents, tid, index) else {
            return;
        };
        let Some(conn) = &seed.conn else {
            return;
        };
        let quiet = now.saturating_duration_since(conn.last_activity);
        let in_flight = seed
            .job
            .as_ref()
            .and_then(|j| j.exchange.as_ref())
            .is_some_and(|e| e.sent);
        let why = if !conn.connected && quiet > CONNECT_TIMEOUT {
            "connect timed out"
        } else if in_flight && quiet > REPLY_TIMEOUT {
            "no reply within 30 s"
        } else {
            if !in_flight && quiet > IDLE_CONN_TIMEOUT {
                drop_conn(registry, seed);
            }
            return;
        };
        self.back_off(tid, index, why, now);
    }

    // ----- runs of blocks and their requests -----------------------------

    /// Moves web seed `index` on: starts a run from its queue when idle,
    /// fills padding, asks for the run's next file range (connecting, or
    /// looking the host up, first), and finishes a run that is complete.
    fn advance(&mut self, tid: TorrentId, index: usize, now: Instant) {
        // Each turn does one step; a few ranges of padding or a finished
        // run take several, and the loop ends when one must wait.
        for _ in 0..64 {
            let joined = self
                .seed(tid, index)
                .is_some_and(|s| matches!(s.status, Status::Joined { .. }));
            if !joined {
                return;
            }
            let step = self.advance_step(tid, index, now);
            self.deliver_ready(tid, index, now);
            match step {
                Ok(true) => continue,
                Ok(false) => return,
                Err(why) => return self.back_off(tid, index, &why, now),
            }
        }
    }

    /// One step of `advance`: `Ok(true)` when another may follow at once.
    fn advance_step(&mut self, tid: TorrentId, index: usize, now: Instant) -> Result<bool, String> {
        let key = key_of(tid, index);
        let registry = self.poll.registry();
        let Some(slot) = self.torrents.get_mut(tid) else {
            return Ok(false);
        };
        let torrent = &slot.torrent;
        let layout = &slot.meta.layout;
        let webs = &mut slot.web_seeds;
        let Some(seed) = webs.seeds.get_mut(index) else {
            return Ok(false);
        };
        let Some(job) = seed.job.as_mut() else {
            seed.queue.retain(|b| torrent.has_requested(key, b));
            let Some(job) = start_job(&mut seed.queue, layout, &webs.extents) else {
                return Ok(false);
            };
            seed.job = Some(job);
            return Ok(true);
        };
        if job.exchange.is_none() {
            let Some(range) = job.ranges.pop_front() else {
                if job.blocks.is_empty() {
                    seed.job = None; // the run is done
                    seed.failures = 0;
                    seed.refill = true;
                    return Ok(true);
                }
                return Err("the replies ended short of the blocks asked for".into());
            };
            if range.padding {
                let len = usize::try_from(range.len).map_err(|_| "padding too long")?;
                job.run_buf.resize(job.run_buf.len().saturating_add(len), 0);
                return Ok(true);
            }
            let path: Vec<&str> = webs
                .paths
                .get(range.file)
                .map(|p| p.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let url = file_url(&seed.base, slot.meta.multi_file, &slot.meta.name, &path);
            let ask = RangeAsk {
                first: range.first,
                last: range.last(),
                file_len: webs.extents.get(range.file).map_or(0, |e| e.len),
            };
            job.exchange = Some(Exchange {
                url,
                ask,
                parser: ResponseParser::new(ask),
                hops: 0,
                sent: false,
                got_bytes: false,
                retried: false,
            });
        }
        let Some(exchange) = job.exchange.as_mut() else {
            return Ok(false);
        };
        if exchange.sent {
            return Ok(false); // waiting for the reply
        }
        // The request needs a connection to its host.
        let (host, port) = (exchange.url.host.clone(), exchange.url.port);
        let usable = seed
            .conn
            .as_ref()
            .is_some_and(|c| c.host.eq_ignore_ascii_case(&host) && c.port == port);
        if !usable {
            drop_conn(registry, seed);
            let addr = match webs.resolver.lookup(&host, port, now) {
                Lookup::Ready(addr) => addr,
                Lookup::Pending => return Ok(false),
                Lookup::Failed(why) => return Err(why),
            };
            seed.conn = Some(open_conn(registry, key, addr, host, port, now)?);
            return Ok(false); // the request goes out once connected
        }
        let Some(conn) = seed.conn.as_mut().filter(|c| c.connected) else {
            return Ok(false);
        };
        conn.write_buf
            .extend_from_slice(&encode_request(&exchange.url, &exchange.ask));
        conn.last_activity = now;
        exchange.sent = true;
        exchange.parser = ResponseParser::new(exchange.ask);
        log::debug!(
            "web seed {}: GET {} bytes {}-{}",
            seed.base,
            exchange.url,
            exchange.ask.first,
            exchange.ask.last
        );
        flush_conn(registry, key, conn).map_err(|e| format!("write failed: {e}"))?;
        Ok(false)
    }

    /// Hands the core every whole block the run's buffer holds, as PIECE
    /// messages from the web seed's key.
    fn deliver_ready(&mut self, tid: TorrentId, index: usize, now: Instant) {
        let key = key_of(tid, index);
        loop {
            let Some(job) = self.seed_mut(tid, index).and_then(|s| s.job.as_mut()) else {
                return;
            };
            let Some(&block) = job.blocks.front() else {
                return;
            };
            let Ok(len) = usize::try_from(block.len) else {
                return;
            };
            if job.run_buf.len() < len {
                return;
            }
            job.blocks.pop_front();
            let data: Vec<u8> = job.run_buf.drain(..len).collect();
            let message = Message::Piece {
                piece: block.piece.get(),
                begin: block.begin,
                data: &data,
            };
            let addr = self.web_seed_addr(tid, index);
            if let (Some((tracer, _)), Some(addr)) = (self.tracer.as_mut(), addr) {
                tracer.message_in(now, crate::trace::phase::RECEIVE, addr, &message);
            }
            self.handle_peer_message(tid, key, message, now);
        }
    }

    // ----- the socket ------------------------------------------------------

    /// The socket is writable: a connect finished (then the request goes
    /// out), or there is room for the rest of the request.
    fn web_seed_writable(&mut self, tid: TorrentId, index: usize, now: Instant) {
        let key = key_of(tid, index);
        let registry = self.poll.registry();
        let Some(conn) = seed_in(&mut self.torrents, tid, index).and_then(|s| s.conn.as_mut())
        else {
            return;
        };
        if conn.connected {
            if let Err(e) = flush_conn(registry, key, conn) {
                self.back_off(tid, index, &format!("write failed: {e}"), now);
            }
            return;
        }
        match super::connect::connect_result(&conn.socket) {
            Ok(false) => {}
            Ok(true) => {
                conn.connected = true;
                conn.last_activity = now;
                self.advance(tid, index, now);
            }
            Err(e) => self.back_off(tid, index, &format!("connect failed: {e}"), now),
        }
    }

    /// One read from web seed `index`'s socket, fed to its reply.
    fn read_once(
        &mut self,
        tid: TorrentId,
        index: usize,
        buf: &mut [u8],
        now: Instant,
    ) -> ReadStep {
        let registry = self.poll.registry();
        let Some(seed) = seed_in(&mut self.torrents, tid, index) else {
            return ReadStep::Stop;
        };
        let Some(conn) = seed.conn.as_mut().filter(|c| c.connected) else {
            return ReadStep::Stop;
        };
        let n = match conn.socket.read(buf) {
            Ok(0) => return self.on_closed(tid, index, now),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStep::Stop,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return ReadStep::Again,
            Err(e) => {
                self.back_off(tid, index, &format!("read failed: {e}"), now);
                return ReadStep::Stop;
            }
        };
        conn.last_activity = now;
        let input = buf.get(..n).unwrap_or_default();
        let Some(job) = seed.job.as_mut() else {
            drop_conn(registry, seed); // bytes nobody asked for: not this connection
            return ReadStep::Stop;
        };
        let Some(exchange) = job.exchange.as_mut().filter(|e| e.sent) else {
            drop_conn(registry, seed);
            return ReadStep::Stop;
        };
        exchange.got_bytes = true;
        let result = exchange.parser.feed(input, &mut job.run_buf);
        let outcome = match result {
            Ok((used, progress)) => self.on_reply_progress(tid, index, used < n, progress, now),
            Err(e) => Err(e.to_string()),
        };
        self.deliver_ready(tid, index, now);
        match outcome {
            Ok(()) => ReadStep::Again,
            Err(why) => {
                self.back_off(tid, index, &why, now);
                ReadStep::Stop
            }
        }
    }

    /// A reply moved on: finished (the next range goes out, on this
    /// connection if the server keeps it and sent nothing extra), or
    /// redirected (followed on a new connection).
    fn on_reply_progress(
        &mut self,
        tid: TorrentId,
        index: usize,
        extra: bool,
        progress: Progress,
        now: Instant,
    ) -> Result<(), String> {
        let registry = self.poll.registry();
        let Some(seed) = seed_in(&mut self.torrents, tid, index) else {
            return Ok(());
        };
        let Some(job) = seed.job.as_mut() else {
            return Ok(());
        };
        match progress {
            Progress::More => return Ok(()),
            Progress::Done { keep_alive } => {
                job.exchange = None;
                if keep_alive && !extra {
                    if let Some(conn) = seed.conn.as_mut() {
                        conn.reused = true;
                    }
                } else {
                    drop_conn(registry, seed);
                }
            }
            Progress::Redirect(location) => {
                let Some(exchange) = job.exchange.as_mut() else {
                    return Ok(());
                };
                let next = follow(&mut exchange.hops, &exchange.url, &location)
                    .map_err(|e| e.to_string())?;
                log::debug!("web seed {}: redirected to {next}", seed.base);
                exchange.url = next;
                exchange.sent = false;
                exchange.got_bytes = false;
                drop_conn(registry, seed);
            }
        }
        // The read loop goes on after this: the next request must be out
        // first (deliveries happen in the caller).
        self.deliver_ready(tid, index, now);
        self.advance(tid, index, now);
        Ok(())
    }

    /// The server closed the connection. Idle, or before any byte of a
    /// request sent on a reused connection (its keep-alive ended): open a
    /// new one. In the middle of a reply: a failure.
    fn on_closed(&mut self, tid: TorrentId, index: usize, now: Instant) -> ReadStep {
        let registry = self.poll.registry();
        let Some(seed) = seed_in(&mut self.torrents, tid, index) else {
            return ReadStep::Stop;
        };
        let reused = seed.conn.as_ref().is_some_and(|c| c.reused);
        let exchange = seed.job.as_ref().and_then(|j| j.exchange.as_ref());
        let verdict = exchange.map(|e| (e.sent, e.got_bytes, e.retried));
        drop_conn(registry, seed);
        match verdict {
            Some((true, got_bytes, retried)) if got_bytes || !reused || retried => {
                self.back_off(tid, index, "connection closed before the reply ended", now);
            }
            Some(_) => {
                if let Some(e) = seed_in(&mut self.torrents, tid, index)
                    .and_then(|s| s.job.as_mut())
                    .and_then(|j| j.exchange.as_mut())
                {
                    e.retried = true;
                }
                self.advance(tid, index, now);
            }
            None => {}
        }
        ReadStep::Stop
    }

    // ----- helpers -------------------------------------------------------

    fn seed(&self, tid: TorrentId, index: usize) -> Option<&WebSeed> {
        self.torrents.get(tid)?.web_seeds.seeds.get(index)
    }

    fn seed_mut(&mut self, tid: TorrentId, index: usize) -> Option<&mut WebSeed> {
        seed_in(&mut self.torrents, tid, index)
    }

    /// The address web seed `index` joined the core under, if it is in.
    fn web_seed_addr(&self, tid: TorrentId, index: usize) -> Option<SocketAddr> {
        match self.seed(tid, index)?.status {
            Status::Joined { addr } => Some(addr),
            _ => None,
        }
    }
}

/// Torrent `tid`'s web seed `index`, borrowing only the torrents (so the
/// poll's registry may be borrowed alongside).
fn seed_in(
    torrents: &mut slab::Slab<super::slot::Slot>,
    tid: TorrentId,
    index: usize,
) -> Option<&mut WebSeed> {
    torrents.get_mut(tid)?.web_seeds.seeds.get_mut(index)
}

/// The next run from `queue`: the lowest block and those that follow it
/// without a gap, up to [`MAX_RUN_BYTES`], with the file ranges they cover.
fn start_job(
    queue: &mut VecDeque<Block>,
    layout: &crate::metainfo::Layout,
    extents: &[FileExtent],
) -> Option<Job> {
    let offset = |b: &Block| layout.piece_offset(b.piece) + u64::from(b.begin);
    queue.make_contiguous().sort_by_key(offset);
    let first = queue.pop_front()?;
    let start = offset(&first);
    let mut end = start + u64::from(first.len);
    let mut blocks = VecDeque::from([first]);
    while let Some(next) = queue.front() {
        let next_end = end + u64::from(next.len);
        if offset(next) != end || next_end - start > MAX_RUN_BYTES {
            break;
        }
        end = next_end;
        blocks.extend(queue.pop_front());
    }
    Some(Job {
        blocks,
        ranges: file_ranges(extents, start, end - start).into(),
        run_buf: Vec::new(),
        exchange: None,
    })
}

/// A nonblocking connect to `addr`, registered under web seed `key`'s token.
fn open_conn(
    registry: &Registry,
    key: PeerKey,
    addr: SocketAddr,
    host: String,
    port: u16,
    now: Instant,
) -> Result<HttpConn, String> {
    let mut socket = TcpStream::connect(addr).map_err(|e| format!("connect failed: {e}"))?;
    // A request is one small write and then we wait for the reply: no
    // reason to let Nagle hold it back.
    let _ = socket.set_nodelay(true);
    registry
        .register(
            &mut socket,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| format!("register failed: {e}"))?;
    Ok(HttpConn {
        socket,
        host,
        port,
        connected: false,
        write_buf: Vec::new(),
        write_interest: true,
        last_activity: now,
        reused: false,
    })
}

/// Writes what the connection holds, and wants WRITABLE exactly while
/// bytes remain.
fn flush_conn(registry: &Registry, key: PeerKey, conn: &mut HttpConn) -> io::Result<()> {
    while !conn.write_buf.is_empty() {
        match conn.socket.write(&conn.write_buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.write_buf.drain(..n.min(conn.write_buf.len()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let want = !conn.write_buf.is_empty();
    if want != conn.write_interest {
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.reregister(&mut conn.socket, Token(key), interest)?;
        conn.write_interest = want;
    }
    Ok(())
}

/// Closes the web seed's connection, if any (a reply in flight on it is
/// asked again on the next one).
fn drop_conn(registry: &Registry, seed: &mut WebSeed) {
    seed.read_pending = false;
    if let Some(mut conn) = seed.conn.take() {
        let _ = registry.deregister(&mut conn.socket);
    }
    if let Some(exchange) = seed.job.as_mut().and_then(|j| j.exchange.as_mut()) {
        if !exchange.got_bytes {
            exchange.sent = false;
        }
    }
}

/// The peer id a web seed gets in the core: `-PW0100-` and its key in
/// hex, so no two collide and the TUI tells them from peers.
fn web_seed_peer_id(key: PeerKey) -> [u8; 20] {
    let mut id = *b"-PW0100-000000000000";
    // 12 hex digits of the key, on 32- and 64-bit targets alike.
    let low = u64::try_from(key).unwrap_or(u64::MAX) % (1u64 << 48);
    let hex = format!("{low:012x}");
    for (slot, byte) in id.iter_mut().skip(8).zip(hex.bytes()) {
        *slot = byte;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_seed_keys_round_trip_and_stay_clear_of_other_tokens() {
        for tid in [0, 1, MAX_TORRENTS - 1] {
            for index in 0..MAX_WEB_SEEDS {
                assert_eq!(web_seed_of(key_of(tid, index)), Some((tid, index)));
            }
        }
        assert_eq!(web_seed_of(0), None);
        assert_eq!(web_seed_of(TOKEN_BASE - 1), None);
        assert_eq!(web_seed_of(TOKEN_BASE + MAX_TORRENTS * MAX_WEB_SEEDS), None);
        for fixed in [usize::MAX, usize::MAX - 1, usize::MAX - 2, usize::MAX - 3] {
            assert_eq!(web_seed_of(fixed), None);
        }
        let top = key_of(MAX_TORRENTS - 1, MAX_WEB_SEEDS - 1);
        // The UDP tracker tokens count down from usize::MAX - 3.
        assert!(top < usize::MAX - 3 - MAX_TORRENTS * crate::tracker::tiers::MAX_TIERS);
    }

    #[test]
    fn web_seed_peer_ids_differ_per_key() {
        let a = web_seed_peer_id(key_of(0, 0));
        let b = web_seed_peer_id(key_of(0, 1));
        assert_ne!(a, b);
        assert!(a.starts_with(b"-PW0100-"));
    }

    #[test]
    fn runs_take_contiguous_blocks_in_order_up_to_the_cap() {
        let layout = crate::metainfo::Layout::new(32 * 1024, &[40_000, 60_000]).unwrap();
        let extents = [
            FileExtent {
                offset: 0,
                len: 40_000,
                padding: false,
            },
            FileExtent {
                offset: 40_000,
                len: 60_000,
                padding: false,
            },
        ];
        let block = |p: u32, n: u32| layout.block(layout.piece(p).unwrap(), n).unwrap();
        // Out of order, with a gap before the last one.
        let mut queue = VecDeque::from([block(1, 0), block(0, 1), block(0, 0), block(2, 1)]);
        let job = start_job(&mut queue, &layout, &extents).unwrap();
        assert_eq!(
            job.blocks,
            VecDeque::from([block(0, 0), block(0, 1), block(1, 0)])
        );
        let ranges: Vec<(usize, u64, u64)> = job
            .ranges
            .iter()
            .map(|r| (r.file, r.first, r.len))
            .collect();
        assert_eq!(ranges, vec![(0, 0, 40_000), (1, 0, 49_152 - 40_000)]);
        assert_eq!(queue, VecDeque::from([block(2, 1)]));
    }
}
