//! The session: one single-threaded mio event loop that downloads and seeds
//! one torrent.
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
//!     dispatch_events(now)              per ready socket: accept_peers, receive_udp_tracker,
//!                                         on_writable, receive (finishes a connect, then bytes in)
//!     tick(now)                         the due periodic phases, in order: check_existing_data,
//!                                         verify_pieces (large pieces, a slice per pass),
//!                                         add_peers, check_timeouts, send_keepalives, show_status
//!                                         (once a second), cleanup, send_haves, request_blocks,
//!                                         rechoke (every 10 s), announce, check_finished, save_resume
//!     before_sleep(now)                 serve_requests, flush_all (in rounds), cleanup, write_trace
//! ```
//!
//! Closing is deferred: any phase marks `conn.closing`, and `cleanup`
//! deregisters and removes it, so a slab key is never reused within one
//! batch of events.
//!
//! # Start-up
//!
//! [`Session::new`] first takes the single-instance lock ([`crate::lock`]):
//! a second pollen on the same torrent and destination stops there, before
//! `--clean`, the resume state or the files are touched. Then the pieces
//! the resume state vouches for ([`crate::resume::trusted_pieces`]) go
//! straight into `have`; `check_existing_data` hashes every other piece, a
//! slice per pass (all of them under `--check`). Only then are blocks
//! requested.

mod announce;
mod cleanup;
mod config;
mod conn;
mod connect;
mod drive;
mod receive;
pub mod status;
mod stop;
mod terminal;
mod upload;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

pub use config::{Config, DEFAULT_CHECK_BYTES_PER_PASS, DEFAULT_MAX_PEERS};
pub use stop::StopHandle;

use crate::bitfield::Bitfield;
use crate::error::Error;
use crate::lock::{InstanceLock, LockError};
use crate::metainfo::Metainfo;
use crate::ratelimit::TokenBucket;
use crate::resume;
use crate::rng::Rng;
use crate::storage::{PieceHashing, Storage};
use crate::torrent::{Torrent, TorrentConfig};
use crate::trace::{phase, Tracer};
use conn::Conn;

pub use crate::torrent::Stats;

/// The listener's token. Peer connections use their slab keys, counting up
/// from 0; the fixed tokens and the tracker sockets' range
/// (`announce::udp_tier`) sit at the top, far from any slab key.
const LISTENER: Token = Token(usize::MAX);

/// Most trace lines buffered within one pass (older ones are dropped and
/// counted): bounds memory when a fast download produces thousands of events.
const TRACE_BUFFER_LINES: usize = 65_536;

/// Standard input's token, registered under `--tui` for the `q` key.
const KEYBOARD: Token = Token(usize::MAX - 2);

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

/// A progress callback: called from the loop once a second, so it must be quick.
pub type ProgressCallback = Box<dyn FnMut(&status::StatusSnapshot) + Send>;

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece verified (and, with `--seed`, seeding was stopped).
    Complete,
    /// Stopped (signal or caller) before completion.
    Stopped,
}

/// One torrent's download/seed session.
pub struct Session {
    /// One pollen per download: held until the session is dropped.
    _lock: InstanceLock,
    meta: std::sync::Arc<Metainfo>,
    /// The torrent's protocol state machine (layer 0): this session drives it.
    torrent: Torrent,
    config: Config,
    peer_id: [u8; 20],
    poll: Poll,
    events: Events,
    listener: TcpListener,
    listen_addr: SocketAddr,
    conns: Slab<Conn>,
    storage: Storage,
    /// For the tracker exchanges' transaction ids and keys.
    rng: Rng,
    /// The phase running now, for the trace lines of the core's notes.
    phase: &'static str,
    /// Next piece to verify at start-up; `None` once the check is done.
    checking: Option<u32>,
    /// The piece the start-up check is part-way through (a piece larger
    /// than one pass's `Config::check_bytes_per_pass`).
    check_job: Option<PieceHashing>,
    /// Downloaded pieces too large to hash in one pass, being hashed a
    /// slice per pass (`verify_pieces`).
    verifying: std::collections::VecDeque<PieceHashing>,
    next_housekeeping: Instant,
    tracker: announce::TrackerState,
    status: status::StatusLine,
    started: Instant,
    /// Set (and the loop woken) to stop the session.
    stop: StopHandle,
    /// Wakes the loop from other threads (lookups, stop handles).
    waker: Arc<Waker>,
    stopping: bool,
    /// A fatal error that stopped the loop.
    fatal: Option<Error>,
    completed_at: Option<Instant>,
    /// `--max-down`: tokens are taken per REQUEST sent.
    down_limit: Option<TokenBucket>,
    /// `--max-up`: tokens are taken per block served.
    up_limit: Option<TokenBucket>,
    /// When a rate limit that stopped a phase will have tokens again.
    throttled_until: Option<Instant>,
    /// Queued requests could be served right now (the next poll must not sleep).
    more_to_serve: bool,
    /// The files' stamps when the resume state was last saved (or at
    /// start): a later change we did not make untrusts the file's pieces.
    last_stamps: Vec<resume::FileStamp>,
    /// Where the resume state is saved.
    resume_path: PathBuf,
    /// Called once a second with the numbers of the status line (library API).
    progress: Option<ProgressCallback>,
    /// `--trace`: the event formatter and where its lines go.
    tracer: Option<(Tracer, Box<dyn std::io::Write + Send>)>,
    /// The full-screen view (`--tui`): the terminal, and a flag SIGWINCH sets.
    terminal: Option<(terminal::Terminal, Arc<AtomicBool>)>,
    /// Pieces were verified since the resume state was last saved.
    resume_dirty: bool,
    /// When the resume state may next be saved.
    next_resume_save: Instant,
}

impl Session {
    /// Prepares a session: takes the download's single-instance lock
    /// (held until the session is dropped), binds the listening socket,
    /// opens storage and reads the resume state. No connection is made
    /// until [`Session::run`].
    ///
    /// Fails with [`Error::AlreadyRunning`] when another pollen (or another
    /// session in this process) has the same torrent and destination.
    pub fn new(meta: Metainfo, config: Config) -> Result<Session, Error> {
        // First of all: nothing may touch the files (`--clean`, the resume
        // state, storage) while another pollen owns them.
        let lock = take_lock(&config.dest, &meta)?;
        let poll = Poll::new().map_err(|e| Error::Io("create the event poll", e))?;
        let bind = SocketAddr::new(config.listen_ip, config.port);
        let mut listener = TcpListener::bind(bind).map_err(|e| Error::Bind(bind, e))?;
        let listen_addr = listener.local_addr().map_err(|e| Error::Bind(bind, e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::Io("register the listener", e))?;
        if config.clean {
            clean(&config.dest, &meta);
        }
        let storage = Storage::new(&config.dest, &meta)?;
        let resume_path = resume::resume_path(&config.dest, &meta);
        let last_stamps = resume::stamp_files(&config.dest, &meta);
        let trusted = if config.force_check {
            None
        } else {
            trusted_from_resume(&resume_path, &last_stamps, &meta)
        };
        let mut rng = Rng::from_entropy();
        let piece_count = meta.layout.piece_count();
        let now = Instant::now();
        // The one mio Waker of this poll: lookup threads and stop handles
        // wake the loop through it.
        let waker = Arc::new(
            Waker::new(poll.registry(), announce::WAKE)
                .map_err(|e| Error::Io("create the loop's waker", e))?,
        );
        let tracker =
            announce::TrackerState::new(&meta, &config, now, &mut rng, Arc::clone(&waker))
                .map_err(|e| Error::Io("start the tracker state", e))?;
        let stop = StopHandle::new();
        stop.attach(Arc::clone(&waker));
        let (max_down, max_up) = (config.max_down, config.max_up);
        let meta = std::sync::Arc::new(meta);
        if let Some(trusted) = &trusted {
            log::info!(
                "resume: {} of {} pieces trusted without re-hashing",
                trusted.count_ones(),
                trusted.len()
            );
        }
        let torrent_config = TorrentConfig {
            strategy: config.strategy,
            endgame_percent: config.endgame_percent,
            choker: config.choker,
            max_up: config.max_up,
            max_peers: config.max_peers,
        };
        let have = trusted.unwrap_or_else(|| Bitfield::new(piece_count));
        let core_rng = Rng::new(rng.next_u64());
        let mut torrent = Torrent::new(
            std::sync::Arc::clone(&meta),
            torrent_config,
            have,
            core_rng,
            now,
        );
        for addr in &config.peers {
            torrent.peer_list_mut().add(*addr);
        }
        let mut session = Session {
            _lock: lock,
            peer_id: make_peer_id(&mut rng),
            torrent,
            status: status::StatusLine::new(config.show_status),
            meta,
            config,
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            listener,
            listen_addr,
            conns: Slab::new(),
            storage,
            rng,
            phase: phase::RECEIVE,
            checking: Some(0),
            check_job: None,
            verifying: std::collections::VecDeque::new(),
            next_housekeeping: now,
            tracker,
            started: now,
            stop,
            waker,
            stopping: false,
            fatal: None,
            completed_at: None,
            down_limit: config_limit(max_down),
            up_limit: config_limit(max_up),
            throttled_until: None,
            more_to_serve: false,
            resume_path,
            last_stamps,
            progress: None,
            terminal: None,
            tracer: None,
            resume_dirty: false,
            next_resume_save: now,
        };
        if session.config.tui {
            session.start_tui()?;
        }
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

    /// The address the session listens on (with the real port when 0 was asked).
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

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        self.torrent.stats()
    }

    /// Runs the loop until the download completes (without `seed`), the
    /// stop flag is set, or a fatal error (disk) occurs.
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
    /// while the start-up check has work.
    fn next_deadline(&self, now: Instant) -> Duration {
        let reads_pending = self.conns.iter().any(|(_, c)| c.read_pending);
        let hashing = self.checking.is_some() || !self.verifying.is_empty();
        if hashing || self.more_to_serve || reads_pending {
            return Duration::ZERO;
        }
        let mut nearest = self.next_housekeeping.min(self.torrent.next_deadline());
        if let Some(at) = self.tracker_deadline() {
            nearest = nearest.min(at);
        }
        if let Some(at) = self.throttled_until {
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
    /// tracker socket to `receive_udp_tracker`. First, peers that used up
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
            if let Some(tier) = announce::udp_tier(token) {
                self.receive_udp_tracker(tier, now);
                continue;
            }
            if token == KEYBOARD {
                self.read_keys();
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

    /// Runs the periodic phases that are due, in the classic order.
    fn tick(&mut self, now: Instant) {
        self.throttled_until = None;
        if self.stop.is_stopping() {
            log::info!("stop requested");
            self.stopping = true;
            return;
        }
        if self.checking.is_some() {
            self.check_existing_data(now);
        }
        if !self.verifying.is_empty() {
            self.run_phase(phase::VERIFY_PIECES, now, Self::verify_pieces);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_PERIOD;
            self.run_phase(phase::ADD_PEERS, now, Self::add_peers);
            self.run_phase(phase::CHECK_TIMEOUTS, now, Self::check_timeouts);
            self.run_phase(phase::SEND_KEEPALIVES, now, Self::send_keepalives);
            self.show_status(now);
        }
        self.run_phase(phase::CLEANUP, now, Self::cleanup);
        self.run_phase(phase::SEND_HAVES, now, Self::send_haves);
        self.run_phase(phase::REQUEST_BLOCKS, now, Self::request_blocks);
        if self.torrent.rechoke_due(now) {
            self.run_phase(phase::RECHOKE, now, Self::rechoke);
        }
        self.run_phase(phase::ANNOUNCE, now, Self::announce);
        self.check_finished(now);
        if self.resume_dirty && now >= self.next_resume_save {
            self.save_resume(now);
        }
    }

    /// Work before sleeping: serve queued requests, flush every write
    /// buffer, and close what was marked for closing.
    fn before_sleep(&mut self, now: Instant) {
        // Serve and flush in rounds: a flush that empties a buffer makes room
        // for more blocks, and no event would come to say so.
        self.more_to_serve = false;
        self.phase = phase::SERVE_REQUESTS;
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

    /// Runs one phase of the tick; under `--trace`, the messages it queued
    /// are then recorded with its name.
    fn run_phase(&mut self, name: &'static str, now: Instant, phase: fn(&mut Session, Instant)) {
        self.phase = name;
        phase(self, now);
        self.apply_actions(now);
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

    /// Verifies a slice of pieces already on disk (start-up check), so a
    /// restarted or complete download does not fetch what it has.
    ///
    /// Pieces already in `have` when the check starts are the ones the
    /// resume state vouches for (see [`trusted_from_resume`]): they are
    /// skipped, not hashed. Every other piece is hashed, at most
    /// `Config::check_bytes_per_pass` bytes per pass (a huge piece across
    /// several passes); one that fails is not ours,
    /// whatever was believed before (`unverify`). Nothing else changes
    /// `have` meanwhile: no block is requested until the check is done.
    fn check_existing_data(&mut self, now: Instant) {
        let Some(mut index) = self.checking else {
            return;
        };
        let count = self.meta.layout.piece_count();
        let mut budget = self.config.check_bytes_per_pass.max(1);
        while index < count && budget > 0 {
            let job = match self.check_job.take() {
                Some(job) => job,
                None => {
                    let piece = self.meta.layout.piece(index);
                    let Some(piece) = piece.filter(|p| !self.torrent.have().has(p.get())) else {
                        index += 1;
                        continue;
                    };
                    PieceHashing::new(piece)
                }
            };
            let mut job = job;
            let piece = job.piece();
            let Some(expected) = self.meta.piece_hash(piece).copied() else {
                index += 1;
                continue;
            };
            let step = budget.min(self.meta.layout.piece_size(piece));
            match self.storage.verify_step(&mut job, step, &expected) {
                Ok(None) => self.check_job = Some(job),
                Ok(Some(ok)) => {
                    self.resume_dirty |= !ok && self.torrent.have().has(piece.get());
                    self.torrent.handle_existing_piece(piece.get(), ok);
                    index += 1;
                }
                Err(e) => return self.fail(Error::Storage(e)),
            }
            budget = budget.saturating_sub(step);
        }
        if index < count {
            self.checking = Some(index);
            return;
        }
        self.checking = None;
        let have = self.torrent.have().count_ones();
        let hashed = self.torrent.stats().pieces_checked;
        log::info!(
            "checked existing data: {have} of {count} pieces verified ({hashed} hashed, {} trusted from the resume state)",
            count.saturating_sub(hashed)
        );
        // What the hashing found is saved soon, so a crash does not cost it again.
        self.resume_dirty |= hashed > 0;
        if let Err(e) = self.storage.create_empty_files() {
            self.fail(Error::Storage(e));
        }
        let files: Vec<usize> = (0..self.meta.files.len()).collect();
        self.finish_files(&files);
        self.after_check(now);
    }

    /// Once the check is done: the core tells connected peers what we have.
    fn after_check(&mut self, now: Instant) {
        self.torrent.handle_check_done();
        self.apply_actions(now);
    }

    /// Ends the run when every piece is verified: at once without `seed`,
    /// otherwise keeps seeding.
    fn check_finished(&mut self, now: Instant) {
        if self.checking.is_some() || self.completed_at.is_some() || !self.torrent.is_complete() {
            return;
        }
        self.completed_at = Some(now);
        if self.torrent.stats().downloaded == 0 {
            log::info!(
                "all {} pieces verified on disk",
                self.meta.layout.piece_count()
            );
            if !self.config.seed {
                self.stopping = true;
            }
            return;
        }
        if let Err(e) = self.storage.sync_all() {
            return self.fail(Error::Storage(e));
        }
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        log::info!("download complete in {elapsed:.1} s");
        let snapshot = self.status_snapshot(now);
        self.status.finish_line(&snapshot);
        self.on_complete(now);
        if !self.config.seed {
            self.stopping = true;
        }
    }

    /// Saves the resume state: data to stable storage first (`fsync`), then
    /// the verified-piece bitfield with the files' sizes and times, written
    /// atomically. A failure is logged; the next start re-checks instead.
    fn save_resume(&mut self, now: Instant) {
        self.next_resume_save = now + RESUME_SAVE_PERIOD;
        self.resume_dirty = false;
        if let Err(e) = self.storage.sync_all() {
            log::warn!("resume state not saved: {e}");
            return;
        }
        let stamps = resume::stamp_files(&self.config.dest, &self.meta);
        self.untrust_changed_files(&stamps);
        let state = resume::ResumeState {
            info_hash: self.meta.info_hash,
            have: self.torrent.have().clone(),
            files: stamps,
        };
        if let Err(e) = resume::save(&self.resume_path, &state) {
            log::warn!(
                "{}: resume state not saved: {e}",
                self.resume_path.display()
            );
        }
    }

    /// Before the resume state vouches for the files as they are now: a
    /// file whose size or times changed since the last stamps, and not
    /// because we wrote, created or renamed it, was changed behind our back
    /// (an editor, a tagger, another program). Its pieces are no longer
    /// trusted: they leave `have` and are fetched again, and the state
    /// saved now does not claim them.
    fn untrust_changed_files(&mut self, stamps: &[resume::FileStamp]) {
        let ours = self.storage.take_touched();
        let changed: Vec<usize> = self
            .last_stamps
            .iter()
            .zip(stamps)
            .enumerate()
            .filter(|(file, (before, now))| before != now && !ours.contains(file))
            .map(|(file, _)| file)
            .collect();
        for file in changed {
            let pieces = self.meta.layout.pieces_of_file(file);
            if pieces.clone().any(|p| self.torrent.have().has(p)) {
                let path = self
                    .meta
                    .files
                    .get(file)
                    .map(|f| f.path.display().to_string());
                log::warn!(
                    "{}: changed behind pollen's back; its pieces will be fetched again",
                    path.unwrap_or_default()
                );
            }
            for piece in pieces {
                if self.torrent.have().has(piece) {
                    self.resume_dirty |= self.torrent.unverify(piece);
                }
            }
        }
        self.last_stamps = stamps.to_vec();
    }

    /// Stops the loop with a fatal error.
    fn fail(&mut self, error: Error) {
        log::error!("{error}");
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
        self.stopping = true;
    }

    /// Leaves cleanly: flushes, tells the tracker we stopped, reports.
    fn shut_down(&mut self) -> Result<Outcome, Error> {
        self.flush_all(Instant::now());
        self.announce_on_exit();
        self.status.clear();
        self.terminal = None; // restores the terminal before anything is printed
        self.write_trace();
        // Also when stopped mid-check: `have` then holds the trusted pieces
        // and those hashed so far, nothing unverified, and the pieces not
        // reached yet are hashed at the next start.
        self.save_resume(Instant::now());
        let stats = self.torrent.stats();
        let (uploaded, downloaded, wasted) = (stats.uploaded, stats.downloaded, stats.wasted);
        log::info!(
            "session totals: uploaded {uploaded} B, downloaded {downloaded} B, wasted {wasted} B"
        );
        if let Some(error) = self.fatal.take() {
            return Err(error);
        }
        Ok(if self.torrent.is_complete() {
            Outcome::Complete
        } else {
            Outcome::Stopped
        })
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

/// The pieces the saved resume state lets us trust without re-hashing, or
/// `None` (missing, corrupt or stale state: everything is re-checked).
fn trusted_from_resume(
    path: &std::path::Path,
    stamps: &[resume::FileStamp],
    meta: &Metainfo,
) -> Option<Bitfield> {
    match resume::load(path, meta) {
        Ok(Some(state)) => Some(resume::trusted_pieces(&state, stamps, meta)),
        Ok(None) => None,
        Err(e) => {
            log::warn!("{}: {e}; re-checking the data on disk", path.display());
            None
        }
    }
}

/// The single-instance lock of `meta` in `dest`, or why not: another
/// pollen's ([`Error::AlreadyRunning`]) or a file system fault.
fn take_lock(dest: &std::path::Path, meta: &Metainfo) -> Result<InstanceLock, Error> {
    InstanceLock::acquire(dest, &meta.info_hash).map_err(|e| match e {
        LockError::Held { pid } => Error::AlreadyRunning {
            name: meta.name.clone(),
            dest: dest.to_path_buf(),
            pid,
        },
        other => Error::Lock(other),
    })
}

/// `--clean`: removes this torrent's files (final and `.part` names) and its
/// resume state. Only paths the torrent names, under `dest`.
fn clean(dest: &std::path::Path, meta: &Metainfo) {
    let partials = crate::storage::partial_paths(dest, meta);
    for (file, partial) in meta.files.iter().zip(partials) {
        if !file.on_disk() {
            continue;
        }
        for candidate in [partial, dest.join(&file.path)] {
            if std::fs::remove_file(&candidate).is_ok() {
                log::info!("removed {}", candidate.display());
            }
        }
    }
    let _ = std::fs::remove_file(resume::resume_path(dest, meta));
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
