//! The session: one single-threaded mio event loop that downloads and seeds
//! any number of torrents through one listening port.
//!
//! Layer 2: the only owner of mio, the slab of connections, the sockets and
//! the clock. The protocol itself (BEP 3 rules, picking, choking, the smart
//! ban) is the sans-IO [`crate::torrent::Torrent`] core: the session hands
//! it each handshake and decoded message and runs its phases, then carries
//! out the actions it returns (`apply_actions` in `drive.rs`); everything
//! it stores goes through layer-1 storage.
//!
//! # The loop
//!
//! [`Session::run`] is the classic select loop:
//!
//! ```text
//! while not stopping:
//!     timeout = next_deadline(now)      the nearest timer (like redis's aeSearchNearestTimer)
//!     wait_for_events(timeout)          epoll_wait / poll(2)
//!     now = Instant::now()              the clock is read once per pass
//!     dispatch_events(now)              per ready socket: accept_peers, receive_dht,
//!                                         receive_udp_tracker, web_seed_event, rpc_event,
//!                                         on_writable, receive (finishes a connect, then bytes in)
//!     tick(now)                         the due periodic phases, in order: check_existing_data,
//!                                         verify_pieces (large pieces, a slice per pass),
//!                                         add_peers, check_timeouts, send_keepalives, send_pex,
//!                                         drive_daemon, show_status (once a second), cleanup, send_haves,
//!                                         request_blocks, drive_web_seeds, rechoke (every 10 s),
//!                                         announce, drive_dht, check_finished, save_resume
//!     before_sleep(now)                 serve_requests, flush_all (in rounds), cleanup, write_trace
//! ```
//!
//! Closing is deferred: any phase marks `conn.closing`, and `cleanup`
//! deregisters and removes it, so a slab key is never reused within one
//! batch of events.
//!
//! Every phase runs over every torrent. Each torrent is a `Slot` (`slot.rs`):
//! its sans-IO core plus its files, trackers and resume state. Incoming
//! connections are routed to their torrent by the info-hash of their
//! handshake; the connection cap, the rate limits and the one blocking
//! HTTP announce per pass are shared by all torrents.
//!
//! # Start-up
//!
//! [`Session::add_torrent`] first takes the torrent's single-instance lock
//! ([`crate::lock`]): a second pollen on the same torrent and destination
//! stops there, before `--clean`, the resume state or the files are
//! touched. Then the pieces the resume state vouches for
//! ([`crate::resume::trusted_pieces`]) go straight into `have`;
//! `check_existing_data` hashes every other piece, a slice per pass (all of
//! them under `--check`). Only then are blocks requested.

mod announce;
mod check;
mod cleanup;
mod config;
mod conn;
mod connect;
mod control;
mod daemon;
mod daemon_state;
mod dht;
mod drive;
mod evict;
mod existing;
mod listen;
mod magnet;
mod receive;
mod resume_save;
mod rpc;
mod rpc_exec;
mod slot;
pub mod status;
mod stop;
#[cfg(test)]
mod tests;
mod upload;
mod web_seed;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

pub use check::Completion;
pub use config::{Config, DEFAULT_CHECK_BYTES_PER_PASS, DEFAULT_MAX_PEERS};
pub use control::{SessionHandle, MAX_PENDING_COMMANDS};
pub use daemon::DaemonConfig;
pub use dht::{DHT_STATE_FILE, PUBLIC_DHT_ROUTERS};
pub use rpc::{MAX_RPC_CONNECTIONS, RPC_IDLE_TIMEOUT, RPC_READ_BUDGET, RPC_REQUEST_TIMEOUT};
pub use slot::{AddOptions, TorrentId};
pub use stop::StopHandle;

pub use crate::torrent::Stats;

use crate::error::Error;
use crate::metainfo::Metainfo;
use crate::ratelimit::TokenBucket;
use crate::resume;
use crate::rng::Rng;
use crate::trace::{phase, Tracer};
use conn::Conn;
use slot::Slot;

/// The listener's token. Peer connections use their slab keys, counting up
/// from 0; the fixed tokens and the tracker sockets' range
/// (`announce::udp_tier`) sit at the top, far from any slab key.
const LISTENER: Token = Token(usize::MAX);

/// Most trace lines buffered within one pass (older ones are dropped and
/// counted): bounds memory when a fast download produces thousands of events.
const TRACE_BUFFER_LINES: usize = 65_536;

/// Most readiness events taken from one poll.
const EVENTS_CAPACITY: usize = 1024;

/// How often the housekeeping phases run (timeouts, status line, connects).
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);

/// How often the resume state is saved while pieces complete: a crash
/// re-checks at most the files written in the last few seconds.
const RESUME_SAVE_PERIOD: Duration = Duration::from_secs(5);

/// Serve-and-flush rounds per pass: up to this many write-buffer loads per
/// peer before the loop looks at other sockets again.
const SERVE_ROUNDS_PER_PASS: usize = 8;

/// Most torrents in one session: each gets its own range of UDP tracker
/// tokens (`MAX_TIERS` each, at the top of the token space, far above any
/// connection's slab key).
pub const MAX_TORRENTS: usize = 10_000;

/// A progress callback: called from the loop once a second, so it must be quick.
pub type ProgressCallback = Box<dyn FnMut(&status::StatusSnapshot) + Send>;

/// A completion callback: called from the loop once for each torrent
/// whose last piece is verified (or found complete on disk), with its
/// [`Completion`]; the CLI prints its `done:` line from it.
pub type CompleteCallback = Box<dyn FnMut(TorrentId, &Completion) + Send>;

/// A view callback: called once a second, instead of the status line, with
/// everything a full-screen view shows (the CLI's `--tui` draws it).
/// Dropped when the session ends, before its last lines are printed.
pub type ViewCallback = Box<dyn FnMut(&crate::ui::Snapshot) + Send>;

/// How much is verified ([`Session::verified`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    /// Verified pieces.
    pub pieces: u32,
    /// All pieces.
    pub piece_count: u32,
    /// Verified bytes.
    pub bytes: u64,
    /// All bytes.
    pub total_bytes: u64,
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece of every torrent verified (and, with `--seed`, seeding
    /// was stopped).
    Complete,
    /// Stopped (signal or caller) before completion.
    Stopped,
}

/// The event loop and every torrent it runs.
///
/// ```no_run
/// use pollen::session::{Config, Session};
///
/// let mut session = Session::bind(Config { dest: "downloads".into(), ..Config::default() })?;
/// let ubuntu = session.add_torrent_file("ubuntu.torrent".as_ref())?;
/// let _debian = session.add_torrent_bytes(&std::fs::read("debian.torrent")?)?;
/// let handle = session.handle(); // Send + Clone: pause, resume, remove, stop
/// std::thread::spawn(move || handle.pause(ubuntu));
/// session.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    config: Config,
    peer_id: [u8; 20],
    poll: Poll,
    events: Events,
    listener: TcpListener,
    listen_addr: SocketAddr,
    conns: Slab<Conn>,
    /// Every torrent, by [`TorrentId`].
    torrents: Slab<Slot>,
    /// For the tracker exchanges' transaction ids and turns.
    rng: Rng,
    /// The phase running now, for the trace lines of the cores' notes.
    phase: &'static str,
    next_housekeeping: Instant,
    /// While peers are connected, no blocking HTTP announce (of any
    /// torrent) starts before this.
    http_not_before: Option<Instant>,
    /// The torrent whose peers went first in the last request phase.
    request_turn: usize,
    status: status::StatusLine,
    started: Instant,
    /// Set (and the loop woken) to stop the session.
    stop: StopHandle,
    /// Pause, resume and remove commands from [`SessionHandle`]s.
    commands: Arc<std::sync::Mutex<std::collections::VecDeque<control::Command>>>,
    /// Wakes the loop from other threads (lookups, stop handles).
    waker: Arc<Waker>,
    stopping: bool,
    /// A fatal error that stopped the loop.
    fatal: Option<Error>,
    /// `--max-down`, shared by every torrent: tokens are taken per REQUEST sent.
    down_limit: Option<TokenBucket>,
    /// `--max-up`, shared by every torrent: tokens are taken per block served.
    up_limit: Option<TokenBucket>,
    /// When a rate limit that stopped a phase will have tokens again.
    throttled_until: Option<Instant>,
    /// Queued requests could be served right now (the next poll must not sleep).
    more_to_serve: bool,
    /// Called once a second with the numbers of the status line (library API).
    progress: Option<ProgressCallback>,
    /// Called once per torrent when it completes (library API).
    completed: Option<CompleteCallback>,
    /// `--trace`: the event formatter and where its lines go.
    tracer: Option<(Tracer, Box<dyn std::io::Write + Send>)>,
    /// The full-screen view (the CLI's `--tui`), if one was set.
    view: Option<ViewCallback>,
    /// The DHT node and its socket (`None` with `--no-dht`).
    dht: Option<dht::DhtSide>,
    /// The daemon's RPC server and bookkeeping (`pollen daemon`).
    daemon: Option<Box<daemon::DaemonSide>>,
}

impl Session {
    /// Prepares a session for one torrent: [`Session::bind`], then
    /// [`Session::add_torrent`]. No connection is made until
    /// [`Session::run`].
    ///
    /// Fails with [`Error::AlreadyRunning`] when another pollen (or another
    /// session in this process) has the same torrent and destination.
    pub fn new(meta: Metainfo, config: Config) -> Result<Session, Error> {
        let mut session = Session::bind(config)?;
        session.add_torrent(meta)?;
        Ok(session)
    }

    /// A session with no torrent yet: binds the listening socket (one port
    /// for every torrent), sets up the poll, the trace and the TUI.
    pub fn bind(config: Config) -> Result<Session, Error> {
        let poll = Poll::new().map_err(|e| Error::Io("create the event poll", e))?;
        let mut listener = listen::bind_listener(config.listen_ip, config.port)?;
        let bind = SocketAddr::new(config.listen_ip, config.port);
        let listen_addr = listener.local_addr().map_err(|e| Error::Bind(bind, e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::Io("register the listener", e))?;
        let mut rng = Rng::from_entropy();
        let now = Instant::now();
        // The one mio Waker of this poll: lookup threads and stop handles
        // wake the loop through it.
        let waker = Arc::new(
            Waker::new(poll.registry(), announce::WAKE)
                .map_err(|e| Error::Io("create the loop's waker", e))?,
        );
        let stop = StopHandle::new();
        stop.attach(Arc::clone(&waker));
        let (max_down, max_up) = (config.max_down, config.max_up);
        let mut session = Session {
            peer_id: make_peer_id(&mut rng),
            status: status::StatusLine::new(config.show_status),
            config,
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            listener,
            listen_addr,
            conns: Slab::new(),
            torrents: Slab::new(),
            rng,
            phase: phase::RECEIVE,
            next_housekeeping: now,
            http_not_before: None,
            request_turn: 0,
            started: now,
            stop,
            commands: Arc::default(),
            waker,
            stopping: false,
            fatal: None,
            down_limit: config_limit(max_down),
            up_limit: config_limit(max_up),
            throttled_until: None,
            more_to_serve: false,
            progress: None,
            completed: None,
            view: None,
            tracer: None,
            dht: None,
            daemon: None,
        };
        session.dht = session.open_dht(now);
        if let Some((path, filter)) = session.config.trace.clone() {
            let sink: Box<dyn std::io::Write + Send> = match path {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&path).map_err(|e| Error::Output {
                        path: path.clone(),
                        source: e,
                    })?,
                )),
                None => Box::new(std::io::stderr()),
            };
            session.tracer = Some((Tracer::new(now, filter, TRACE_BUFFER_LINES), sink));
        }
        Ok(session)
    }

    /// The address the session listens on (with the real port when 0 was
    /// asked): `[::]:PORT` by default, which takes IPv4 peers at that port
    /// too; `0.0.0.0:PORT` on a host without IPv6; else the bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// A flag that stops the session when set, for a signal handler (a
    /// signal also interrupts the loop's wait, so it is seen at once).
    /// From another thread, use [`Session::stop_handle`], which also wakes
    /// the loop.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.flag()
    }

    /// A handle that stops this session from any thread, at once.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Makes `handle` (made before this session, e.g. by the library's
    /// `Download` builder) stop this session: it replaces the session's own.
    pub fn set_stop_handle(&mut self, handle: &StopHandle) {
        handle.attach(Arc::clone(&self.waker));
        self.stop = handle.clone();
    }

    /// Calls `callback` once a second with the progress numbers.
    pub fn on_progress(&mut self, callback: ProgressCallback) {
        self.progress = Some(callback);
    }

    /// Calls `callback` once for each torrent that completes (its last
    /// piece verified, or everything found on disk by the start-up check).
    pub fn on_complete(&mut self, callback: CompleteCallback) {
        self.completed = Some(callback);
    }

    /// Calls `view` once a second, instead of printing the status line,
    /// with the full-screen view's numbers (the pieces, the peers).
    pub fn on_view(&mut self, view: ViewCallback) {
        self.status = status::StatusLine::new(false);
        self.view = Some(view);
    }

    /// The first torrent's counters (see [`Session::torrent_stats`] for
    /// each, [`Session::total_stats`] for the sum).
    pub fn stats(&self) -> Stats {
        self.torrents
            .iter()
            .next()
            .map(|(_, s)| s.torrent.stats().clone())
            .unwrap_or_default()
    }

    /// One torrent's counters so far.
    pub fn torrent_stats(&self, id: TorrentId) -> Option<Stats> {
        self.torrents.get(id).map(|s| s.torrent.stats().clone())
    }

    /// Every torrent's counters added up.
    pub fn total_stats(&self) -> Stats {
        let mut total = Stats::default();
        for (_, slot) in &self.torrents {
            let s = slot.torrent.stats();
            total.downloaded += s.downloaded;
            total.uploaded += s.uploaded;
            total.wasted += s.wasted;
            total.hash_failures += s.hash_failures;
            total.pieces_checked += s.pieces_checked;
        }
        total
    }

    /// What is verified so far, all torrents together.
    pub fn verified(&self) -> Verified {
        let mut done = Verified::default();
        for (_, slot) in &self.torrents {
            done.pieces += slot.torrent.have().count_ones();
            done.piece_count += slot.meta.layout.piece_count();
            done.total_bytes += slot.meta.total_len();
            done.bytes += slot
                .meta
                .total_len()
                .saturating_sub(slot.torrent.bytes_left());
        }
        done
    }

    /// How many torrents the session runs.
    pub fn torrent_count(&self) -> usize {
        self.torrents.len()
    }

    /// The keys of every torrent, in order.
    pub fn torrent_ids(&self) -> Vec<TorrentId> {
        self.torrents.iter().map(|(tid, _)| tid).collect()
    }

    /// Whether every piece of torrent `id` is verified.
    pub fn is_complete(&self, id: TorrentId) -> bool {
        self.torrents
            .get(id)
            .is_some_and(|s| s.torrent.is_complete())
    }

    /// Runs the loop until every torrent is complete (without `seed`), the
    /// stop flag is set, or a fatal error (disk, a file in the way) occurs:
    /// then the resume state is saved, `stopped` announced, and the first
    /// such error returned (later ones, like the other blocks of a full
    /// disk, are only logged at debug level).
    pub fn run(&mut self) -> Result<Outcome, Error> {
        while !self.stopping {
            let timeout = self.next_deadline(Instant::now());
            self.wait_for_events(timeout)?;
            let now = Instant::now();
            self.dispatch_events(now);
            self.tick(now);
            self.before_sleep(now);
        }
        self.shut_down()
    }

    /// How long the poll may sleep: until the nearest timer, or not at all
    /// while a start-up check or a large piece's hashing has work.
    fn next_deadline(&self, now: Instant) -> Duration {
        let reads_pending =
            self.conns.iter().any(|(_, c)| c.read_pending) || self.web_seeds_pending();
        let hashing = self
            .torrents
            .iter()
            .any(|(_, s)| s.checking.is_some() || !s.verifying.is_empty());
        if hashing || self.more_to_serve || reads_pending {
            return Duration::ZERO;
        }
        let mut nearest = self.next_housekeeping;
        for (tid, slot) in self.torrents.iter() {
            nearest = nearest.min(slot.torrent.next_deadline());
            if let Some(at) = self.tracker_deadline(tid) {
                nearest = nearest.min(at);
            }
        }
        if let Some(at) = self.throttled_until {
            nearest = nearest.min(at);
        }
        if let Some(at) = self.dht_deadline() {
            nearest = nearest.min(at);
        }
        nearest.saturating_duration_since(now)
    }

    /// Sleeps in the kernel until a socket is ready or `timeout` passes. A
    /// signal interrupts the wait; the stop flag is checked right after.
    fn wait_for_events(&mut self, timeout: Duration) -> Result<(), Error> {
        let before = Instant::now();
        let result = self.poll.poll(&mut self.events, Some(timeout));
        if let Some((tracer, _)) = self.tracer.as_mut() {
            let now = Instant::now();
            tracer.poll_wake(
                now,
                self.events.iter().count(),
                now.saturating_duration_since(before),
            );
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(Error::Io("wait for events", e)),
        }
    }

    /// Hands each readiness event to its phase: the listener to
    /// `accept_peers`, a peer socket to `on_writable` or `receive`, a UDP
    /// tracker socket to `receive_udp_tracker`, a web seed's HTTP socket to
    /// `web_seed_event`. First, peers that used up
    /// their read budget last pass are read again (`receive_pending`).
    /// Events for keys no longer in the slab are ignored.
    fn dispatch_events(&mut self, now: Instant) {
        self.phase = phase::RECEIVE;
        self.dispatch_ready(now);
        self.trace_sent(phase::RECEIVE, now);
    }

    /// The body of `dispatch_events`.
    fn dispatch_ready(&mut self, now: Instant) {
        self.receive_pending(now);
        let ready: Vec<(Token, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable(),
                )
            })
            .collect();
        for (token, readable, writable) in ready {
            if token == LISTENER {
                self.accept_peers(now);
                continue;
            }
            if token == announce::WAKE {
                continue; // a lookup ended or a stop was asked: the tick takes it in
            }
            if token == dht::DHT {
                self.receive_dht(now);
                continue;
            }
            if let Some(which) = rpc::rpc_token(token) {
                self.rpc_event(which, readable, writable, now);
                continue;
            }
            if let Some((tid, tier)) = announce::udp_tier(token) {
                self.receive_udp_tracker(tid, tier, now);
                continue;
            }
            if let Some((tid, index)) = web_seed::web_seed_of(token.0) {
                self.web_seed_event(tid, index, readable, writable, now);
                continue;
            }
            let key = token.0;
            if !self.conns.contains(key) {
                continue;
            }
            if writable {
                self.on_writable(key, now);
            }
            if readable {
                self.receive(key, now);
            }
        }
    }

    /// Runs the periodic phases that are due, in the classic order, each
    /// over every torrent.
    fn tick(&mut self, now: Instant) {
        self.throttled_until = None;
        if self.stop.is_stopping() {
            log::info!("stop requested");
            self.stopping = true;
            return;
        }
        self.take_commands();
        if self
            .torrents
            .iter()
            .any(|(_, s)| s.checking.is_some() && !s.paused)
        {
            self.check_existing_data(now);
        }
        if self.torrents.iter().any(|(_, s)| !s.verifying.is_empty()) {
            self.run_phase(phase::VERIFY_PIECES, now, Self::verify_pieces);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_PERIOD;
            self.run_phase(phase::ADD_PEERS, now, Self::add_peers);
            self.run_phase(phase::CHECK_TIMEOUTS, now, Self::check_timeouts);
            self.run_phase(phase::SEND_KEEPALIVES, now, Self::send_keepalives);
            self.run_phase(phase::SEND_PEX, now, Self::send_pex);
            self.check_rpc_timeouts(now);
            self.run_phase(phase::DRIVE_DAEMON, now, Self::drive_daemon);
            self.show_status(now);
        }
        self.run_phase(phase::CLEANUP, now, Self::cleanup);
        self.run_phase(phase::SEND_HAVES, now, Self::send_haves);
        self.run_phase(phase::REQUEST_BLOCKS, now, Self::request_blocks);
        self.run_phase(phase::REQUEST_BLOCKS, now, Self::drive_web_seeds);
        if self
            .torrents
            .iter()
            .any(|(_, s)| s.torrent.rechoke_due(now))
        {
            self.run_phase(phase::RECHOKE, now, Self::rechoke);
        }
        self.run_phase(phase::ANNOUNCE, now, Self::announce);
        self.drive_dht(now); // no core actions: not through run_phase
        self.check_finished(now);
        for tid in self.torrent_ids() {
            let due = self
                .torrents
                .get(tid)
                .is_some_and(|s| s.resume_dirty && now >= s.next_resume_save);
            if due {
                self.save_resume(tid, now);
            }
        }
    }

    /// Work before sleeping: serve queued requests, flush every write
    /// buffer, and close what was marked for closing.
    fn before_sleep(&mut self, now: Instant) {
        // Serve and flush in rounds: a flush that empties a buffer makes room
        // for more blocks, and no event would come to say so.
        self.phase = phase::SERVE_REQUESTS;
        self.more_to_serve = false;
        for _ in 0..SERVE_ROUNDS_PER_PASS {
            let served = self.serve_requests(now);
            self.trace_sent(phase::SERVE_REQUESTS, now);
            self.flush_all(now);
            if served == 0 {
                break;
            }
        }
        self.more_to_serve = self.throttled_until.is_none() && self.has_servable_requests();
        self.cleanup(now);
        self.write_trace();
    }

    /// Runs one phase of the tick; the cores' actions are carried out,
    /// and under `--trace` the messages it queued are recorded with its name.
    fn run_phase(&mut self, name: &'static str, now: Instant, phase: fn(&mut Session, Instant)) {
        self.phase = name;
        phase(self, now);
        for tid in self.torrent_ids() {
            self.apply_actions(tid, now);
        }
        self.trace_sent(name, now);
    }

    /// Moves the messages queued since the last call into the trace,
    /// stamped with the phase that queued them.
    pub(super) fn trace_sent(&mut self, phase: &str, now: Instant) {
        let Some((tracer, _)) = self.tracer.as_mut() else {
            return;
        };
        for (_, conn) in self.conns.iter_mut() {
            let addr = conn.addr;
            let log = conn.sent_log.get_or_insert_with(Vec::new);
            for text in log.drain(..) {
                tracer.wire_out(now, phase, addr, &text);
            }
        }
    }

    /// Writes the trace lines of this pass (one buffered write per pass,
    /// never per event, so tracing cannot stall the loop for long).
    fn write_trace(&mut self) {
        if let Some((tracer, sink)) = self.tracer.as_mut() {
            for line in tracer.drain() {
                let _ = writeln!(sink, "{line}");
            }
            let _ = sink.flush();
        }
    }

    /// Stops the loop with a fatal error. Only the first is kept: `run`
    /// returns it and its caller reports it, once (the CLI prints one
    /// line); what fails after it (the other blocks of a full disk) is
    /// only logged at debug level.
    fn fail(&mut self, error: Error) {
        if self.fatal.is_none() {
            log::debug!("stopping: {error}");
            self.fatal = Some(error);
        } else {
            log::debug!("also, while stopping: {error}");
        }
        self.stopping = true;
    }

    /// Torrent `tid` failed on its own (its disk, a file in the way, its
    /// metadata). A daemon (`Config::keep_running`) stops that torrent
    /// only: it is paused with the error kept for `torrent-get`'s
    /// `errorString`, and the others go on. Otherwise the session stops,
    /// as [`Session::fail`] does.
    fn fail_torrent(&mut self, tid: TorrentId, error: Error) {
        if !self.config.keep_running {
            return self.fail(error);
        }
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        if slot.error.is_none() {
            log::error!("{}: {error}; torrent stopped", slot.meta.name);
            slot.error = Some(error.to_string());
        }
        self.pause(tid);
    }

    /// Leaves cleanly: flushes, tells the trackers we stopped, reports.
    fn shut_down(&mut self) -> Result<Outcome, Error> {
        self.flush_all(Instant::now());
        for tid in self.torrent_ids() {
            self.announce_on_exit(tid);
        }
        self.save_dht(Instant::now());
        self.save_daemon_state(true, Instant::now());
        self.status.clear();
        self.view = None; // a terminal view restores the screen before anything is printed
        self.write_trace();
        // Also when stopped mid-check: `have` then holds the trusted pieces
        // and those hashed so far, nothing unverified, and the pieces not
        // reached yet are hashed at the next start.
        // A complete torrent whose saved state still matches its files (a
        // stat per file, no write) is not saved again: a seeder of many
        // torrents stops without an fsync per torrent.
        for tid in self.torrent_ids() {
            let saved = self.torrents.get(tid).is_some_and(|s| {
                s.torrent.is_complete()
                    && s.checking.is_none()
                    && !s.resume_dirty
                    && s.resume_path.exists()
                    && resume::stamp_files(&s.dest, &s.meta) == s.last_stamps
            });
            if !saved {
                self.save_resume(tid, Instant::now());
            }
        }
        let stats = self.total_stats();
        let (uploaded, downloaded, wasted) = (stats.uploaded, stats.downloaded, stats.wasted);
        log::info!(
            "session totals: uploaded {uploaded} B, downloaded {downloaded} B, wasted {wasted} B"
        );
        if let Some(error) = self.fatal.take() {
            return Err(error);
        }
        Ok(
            if self.torrents.iter().all(|(_, s)| s.torrent.is_complete()) {
                Outcome::Complete
            } else {
                Outcome::Stopped
            },
        )
    }

    /// Flushes every connection's write buffer and registers WRITABLE
    /// interest exactly where bytes remain.
    fn flush_all(&mut self, now: Instant) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.write_buf.is_empty() && c.stage != conn::Stage::Connecting)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.flush(key, now);
        }
    }

    /// Flushes one connection; on failure marks it for closing.
    fn flush(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Err(e) = conn.flush(now) {
            conn.close(crate::close_reason::CloseReason::WriteFailed(e.kind()));
            return;
        }
        let want_write = !conn.write_buf.is_empty();
        if want_write != conn.write_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.socket, Token(key), interest)
            {
                conn.close(crate::close_reason::CloseReason::ReregisterFailed(e.kind()));
                return;
            }
            conn.write_interest = want_write;
        }
    }
}

/// A token bucket for a configured rate limit.
fn config_limit(bytes_per_second: Option<u64>) -> Option<TokenBucket> {
    bytes_per_second.map(TokenBucket::new)
}

/// The first 8 bytes of a peer id: the client tag in Azureus style
/// (`-PO0100-` for pollen 0.1.0), as text for logs and the trace.
pub(super) fn client_tag(peer_id: &[u8; 20]) -> String {
    String::from_utf8_lossy(peer_id.get(..8).unwrap_or_default()).into_owned()
}

/// Our peer id: Azureus style, `-PO0100-` then 12 random printable bytes.
fn make_peer_id(rng: &mut Rng) -> [u8; 20] {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut id = *b"-PO0100-000000000000";
    for byte in id.iter_mut().skip(8) {
        *byte = ALPHABET
            .get(rng.below(ALPHABET.len()))
            .copied()
            .unwrap_or(b'0');
    }
    id
}
