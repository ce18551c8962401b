//! A scripted BitTorrent peer for integration tests: a [`ScriptedSeeder`] that
//! plays honest or hostile (with its data, and, when asked, with its
//! metadata: BEP 9 `ut_metadata` over BEP 10, see [`MetadataBehavior`]), and
//! a [`ProbeLeecher`] that drives one connection to pollen step by step.
//!
//! Test code, not part of pollen: blocking `std::net` sockets on 127.0.0.1
//! only, one thread per accepted connection. The peer speaks BEP 3 through
//! pollen's own codec (`pollen::wire`), so what is scripted is the
//! *behaviour*, not the framing.
//!
//! Nothing here can hang a test: every socket has read and write timeouts,
//! every wait has a deadline, and dropping a [`ScriptedSeeder`] stops and
//! joins its threads. A closed connection is a normal outcome (a test often
//! wants pollen to drop a hostile peer), so network reads return
//! [`PeerError`] instead of panicking.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pollen::bitfield::Bitfield;
use pollen::metadata::{MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE_LEN};
use pollen::metainfo::{Block, Layout, Metainfo, BLOCK_LEN};
use pollen::storage::Storage;
use pollen::wire::extension::ExtHandshake;
use pollen::wire::{
    decode_frame, BlockRequest, FrameLimits, Handshake, Message, WireError, HANDSHAKE_LEN,
};

/// The seeders' peer id (BEP 20 style: client "SP", version 0001), before
/// each seeder stamps its port on it ([`stamp_port`]).
pub const SEEDER_PEER_ID: [u8; 20] = *b"-SP0001-scriptedseed";
/// The probes' peer id, before each probe stamps its local port on it.
pub const PROBE_PEER_ID: [u8; 20] = *b"-PR0001-probeleecher";

/// `base` with its last five bytes replaced by `port` in decimal. Several
/// seeders (or probes) in one test must be distinct peers: pollen, like most
/// clients, keeps one connection per peer id and closes the others.
pub fn stamp_port(base: [u8; 20], port: u16) -> [u8; 20] {
    let mut id = base;
    for (byte, digit) in id.iter_mut().skip(15).zip(format!("{port:05}").bytes()) {
        *byte = digit;
    }
    id
}

/// How long a seeder read blocks before looking at the stop flag again.
const SEEDER_READ_POLL: Duration = Duration::from_millis(200);
/// How long a probe read blocks before looking at its deadline again.
const PROBE_READ_POLL: Duration = Duration::from_millis(20);
/// Longest one write may block (the remote is not reading); then the
/// connection is given up. Also bounds how long a seeder's drop can take.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the probe waits for pollen to accept its TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop and [`wait_until`] look again.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// Connections a seeder serves at once; more are closed on accept, so a
/// reconnect loop in pollen cannot spawn threads without bound.
const MAX_OPEN_CONNECTIONS: usize = 64;
/// Requests a seeder remembers for [`ScriptedSeeder::requests`]; later ones are only counted.
const MAX_LOGGED_REQUESTS: usize = 100_000;
/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 32 * 1024;
/// The length prefix [`SeederBehavior::OversizedFrame`] sends: 1 MiB + 1,
/// above libtorrent's 1 MiB drop line and far above any frame pollen accepts.
pub const OVERSIZED_FRAME_LEN: u32 = (1 << 20) + 1;

/// The `metadata_size` [`MetadataBehavior::Oversized`] announces: one byte
/// over pollen's cap ([`MAX_METADATA_SIZE`], 10 MiB).
pub const OVERSIZED_METADATA_LEN: usize = MAX_METADATA_SIZE + 1;
/// The BEP 10 message id of extended messages.
const EXTENDED_ID: u8 = 20;
/// The extended id of the extension handshake (BEP 10).
const EXT_HANDSHAKE_ID: u8 = 0;
/// The id under which a seeder receives `ut_metadata` messages: not
/// pollen's own (1), so a message sent under the wrong id would show.
pub const SEEDER_UT_METADATA_ID: u8 = 3;

/// Polls `cond` every 10 ms until it holds or `deadline` passes; returns its last answer.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        thread::sleep(POLL_EVERY);
    }
}

/// Why a scripted connection step did not produce what was asked.
///
/// Several of these are the outcome a test wants (pollen closed the
/// connection, pollen sent a bad frame), so helpers return them rather than panic.
#[derive(Debug)]
pub enum PeerError {
    /// The deadline passed first (or a write blocked past its timeout).
    Timeout,
    /// The remote closed the connection (end of stream or reset).
    Closed,
    /// The remote broke the wire protocol (as pollen's codec sees it).
    Wire(WireError),
    /// The remote's handshake named another torrent.
    WrongInfoHash {
        /// The info-hash the remote sent.
        got: [u8; 20],
    },
    /// The remote choked us while we waited for a block.
    Choked,
    /// The remote rejected a request (BEP 6 REJECT_REQUEST).
    Rejected(BlockRequest),
    /// A well-formed message that makes no sense at this point.
    Unexpected(String),
    /// The seeder is shutting down (its owner was dropped).
    Stopped,
    /// Any other socket error (connection refused...).
    Io(io::Error),
}

impl PeerError {
    /// Sorts a socket error into timeout, closed by the remote, or other.
    fn from_io(e: io::Error) -> PeerError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => {
                PeerError::Timeout
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected => PeerError::Closed,
            _ => PeerError::Io(e),
        }
    }
}

/// A received message that owns its payload (a [`Message`] borrows the read buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedMessage {
    /// A zero-length frame.
    KeepAlive,
    /// CHOKE.
    Choke,
    /// UNCHOKE.
    Unchoke,
    /// INTERESTED.
    Interested,
    /// NOT_INTERESTED.
    NotInterested,
    /// HAVE for this piece.
    Have(u32),
    /// BITFIELD, raw bytes.
    Bitfield(Vec<u8>),
    /// REQUEST.
    Request(BlockRequest),
    /// PIECE: a block of data.
    Piece {
        /// Piece index.
        piece: u32,
        /// Offset of the block in the piece.
        begin: u32,
        /// The block.
        data: Vec<u8>,
    },
    /// CANCEL.
    Cancel(BlockRequest),
    /// HAVE_ALL (BEP 6).
    HaveAll,
    /// HAVE_NONE (BEP 6).
    HaveNone,
    /// REJECT_REQUEST (BEP 6).
    Reject(BlockRequest),
    /// Anything else (PORT, SUGGEST_PIECE, ALLOWED_FAST, EXTENDED, unknown ids):
    /// the id and the payload after it.
    Other {
        /// Message id.
        id: u8,
        /// The bytes after the id.
        payload: Vec<u8>,
    },
}

impl OwnedMessage {
    /// A short name for failure messages (never the payload, which may be 16 KiB).
    pub fn name(&self) -> String {
        match self {
            OwnedMessage::Piece { piece, begin, data } => {
                format!("PIECE {piece}/{begin} ({} bytes)", data.len())
            }
            OwnedMessage::Other { id, payload } => {
                format!("message id {id} ({} bytes)", payload.len())
            }
            other => format!("{other:?}"),
        }
    }
}

impl From<Message<'_>> for OwnedMessage {
    fn from(message: Message<'_>) -> OwnedMessage {
        match message {
            Message::KeepAlive => OwnedMessage::KeepAlive,
            Message::Choke => OwnedMessage::Choke,
            Message::Unchoke => OwnedMessage::Unchoke,
            Message::Interested => OwnedMessage::Interested,
            Message::NotInterested => OwnedMessage::NotInterested,
            Message::Have { piece } => OwnedMessage::Have(piece),
            Message::Bitfield(bytes) => OwnedMessage::Bitfield(bytes.to_vec()),
            Message::Request(r) => OwnedMessage::Request(r),
            Message::Piece { piece, begin, data } => OwnedMessage::Piece {
                piece,
                begin,
                data: data.to_vec(),
            },
            Message::Cancel(r) => OwnedMessage::Cancel(r),
            Message::HaveAll => OwnedMessage::HaveAll,
            Message::HaveNone => OwnedMessage::HaveNone,
            Message::Reject(r) => OwnedMessage::Reject(r),
            other => {
                // Re-encode and keep what follows the 4-byte prefix and the id byte.
                let mut frame = Vec::new();
                other.encode(&mut frame);
                OwnedMessage::Other {
                    id: other.id().unwrap_or(0),
                    payload: frame.get(5..).unwrap_or_default().to_vec(),
                }
            }
        }
    }
}

/// When a blocking receive gives up: at a deadline, when a stop flag is set, or both.
struct Wait<'a> {
    deadline: Option<Instant>,
    stop: Option<&'a AtomicBool>,
}

impl Wait<'_> {
    fn check(&self) -> Result<(), PeerError> {
        if self.stop.is_some_and(|s| s.load(Ordering::Acquire)) {
            return Err(PeerError::Stopped);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PeerError::Timeout);
        }
        Ok(())
    }
}

/// One peer connection: a socket with timeouts and a read buffer that
/// pollen's codec decodes from.
struct Conn {
    stream: TcpStream,
    /// Received bytes not decoded yet; bounded by the codec's frame limit.
    buf: Vec<u8>,
    /// Scratch space for one read.
    chunk: Vec<u8>,
    limits: FrameLimits,
}

impl Conn {
    fn new(stream: TcpStream, piece_count: u32, read_poll: Duration) -> io::Result<Conn> {
        // Accepted sockets must block (with timeouts) whatever the listener is.
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(read_poll))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            chunk: vec![0; READ_CHUNK_BYTES],
            limits: FrameLimits::for_pieces(piece_count),
        })
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        self.stream.write_all(bytes).map_err(PeerError::from_io)
    }

    fn send(&mut self, message: &Message<'_>) -> Result<(), PeerError> {
        let mut frame = Vec::new();
        message.encode(&mut frame);
        self.send_raw(&frame)
    }

    fn recv_handshake(&mut self, wait: &Wait<'_>) -> Result<Handshake, PeerError> {
        loop {
            if let Some(handshake) = Handshake::decode(&self.buf).map_err(PeerError::Wire)? {
                self.buf.drain(..HANDSHAKE_LEN);
                return Ok(handshake);
            }
            self.fill(wait)?;
        }
    }

    fn recv(&mut self, wait: &Wait<'_>) -> Result<OwnedMessage, PeerError> {
        loop {
            let decoded = decode_frame(&self.buf, &self.limits)
                .map_err(PeerError::Wire)?
                .map(|(message, used)| (OwnedMessage::from(message), used));
            if let Some((message, used)) = decoded {
                self.buf.drain(..used);
                return Ok(message);
            }
            self.fill(wait)?;
        }
    }

    /// Reads once more into the buffer, retrying on read timeouts until
    /// `wait` gives up; `Closed` at end of stream.
    fn fill(&mut self, wait: &Wait<'_>) -> Result<(), PeerError> {
        loop {
            wait.check()?;
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return Err(PeerError::Closed),
                Ok(n) => {
                    let got = self.chunk.get(..n).unwrap_or_default();
                    self.buf.extend_from_slice(got);
                    return Ok(());
                }
                Err(e) => match PeerError::from_io(e) {
                    PeerError::Timeout => continue,
                    other => return Err(other),
                },
            }
        }
    }

    /// Reads and discards until the remote closes (`Closed`) or `wait` gives up.
    fn discard_until_closed(&mut self, wait: &Wait<'_>) -> PeerError {
        loop {
            self.buf.clear();
            if let Err(e) = self.fill(wait) {
                return e;
            }
        }
    }
}

/// How a [`ScriptedSeeder`] behaves on each connection. Every hostile
/// behaviour is otherwise honest, so a test can tell whether pollen noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeederBehavior {
    /// Handshake, BITFIELD, UNCHOKE after INTERESTED, answer every valid REQUEST.
    Honest,
    /// Answers the handshake with another info-hash (every byte inverted),
    /// then carries on as honest.
    WrongInfoHash,
    /// After the handshake and BITFIELD, sends a length prefix of
    /// [`OVERSIZED_FRAME_LEN`] and a few bytes of it, then only reads.
    OversizedFrame,
    /// Sends a BITFIELD one byte longer than the piece count allows, then carries on.
    BadBitfield,
    /// Serves every block with its first byte inverted, so every piece fails its hash.
    CorruptPieces,
    /// Handshakes, sends BITFIELD, unchokes, then never answers a request.
    Silent,
    /// Serves one block, then sends CHOKE and never unchokes that connection again.
    ChokeAfterFirstBlock,
    /// Right after UNCHOKE, sends a PIECE nobody requested (block 0 of its
    /// first piece), then serves honestly.
    UnrequestedPiece,
    /// Serves this many blocks on a connection, then closes it at the next request.
    DisconnectAfterBlocks(u32),
    /// Answers every request on time with the right length but random
    /// bytes (a poisoner: every block it sends is bad).
    RandomBytes,
    /// Serves requests honestly, but after each one also sends a PIECE of
    /// random bytes for a block of a piece the remote already announced
    /// with HAVE (so it can never have been requested: if the remote wrote
    /// it, its verified data would be spoiled). Start it with only some
    /// pieces, or the remote has no reason to send it HAVEs.
    UnrequestedFlood,
}

/// What a [`ScriptedSeeder`] started with
/// [`ScriptedSeeder::start_with_metadata`] does about the torrent's metadata
/// (BEP 9 `ut_metadata`, over BEP 10: it sets the extension bit and sends an
/// extension handshake after its BITFIELD). Its data is served as its
/// [`SeederBehavior`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataBehavior {
    /// Announces the true `metadata_size` and serves every piece as it is.
    Honest,
    /// Announces the true `metadata_size` and answers every request with a
    /// piece of the right length whose first byte is inverted: the
    /// assembled metadata never hashes to the info-hash.
    Corrupt,
    /// Announces a `metadata_size` of [`OVERSIZED_METADATA_LEN`] and rejects
    /// any request.
    Oversized,
    /// Announces the true `metadata_size` and rejects every request.
    RejectAll,
}

/// What the seeder saw, shared by its threads.
#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    open: AtomicUsize,
    handshakes: AtomicUsize,
    interested: AtomicUsize,
    blocks_served: AtomicUsize,
    bad_requests: AtomicUsize,
    requests_while_choked: AtomicUsize,
    disconnects: AtomicUsize,
    requests: Mutex<Vec<BlockRequest>>,
    metadata_requests: AtomicUsize,
    metadata_pieces_sent: AtomicUsize,
    metadata_rejects_sent: AtomicUsize,
    peer_ids: Mutex<Vec<[u8; 20]>>,
    errors: Mutex<Vec<String>>,
}

/// Locks a stats list, ignoring poisoning (a panicked thread's list is still worth reading).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// Everything a seeder's threads read.
struct Shared {
    meta: Metainfo,
    data_dir: PathBuf,
    behavior: SeederBehavior,
    /// `None`: the seeder does not speak BEP 10 (nor serve metadata).
    metadata: Option<MetadataBehavior>,
    have: Bitfield,
    /// [`SEEDER_PEER_ID`] stamped with the listening port.
    peer_id: [u8; 20],
    stop: AtomicBool,
    stats: Stats,
}

impl Shared {
    fn record_error(&self, error: String) {
        lock(&self.stats.errors).push(error);
    }
}

/// A seeder on 127.0.0.1 that serves a torrent's data from disk, honestly or
/// not ([`SeederBehavior`]), and counts what the remote did.
///
/// `start` returns at once; a background thread accepts any number of
/// connections, each served on its own thread. Dropping it stops and joins
/// every thread (within about half a second).
pub struct ScriptedSeeder {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ScriptedSeeder {
    /// Starts a seeder of every piece of `meta`, whose files are under
    /// `data_dir` (the directory a download of `meta` would be saved to).
    pub fn start(meta: &Metainfo, data_dir: &Path, behavior: SeederBehavior) -> ScriptedSeeder {
        let all = Bitfield::full(meta.layout.piece_count());
        ScriptedSeeder::start_with_pieces(meta, data_dir, behavior, all)
    }

    /// Starts a seeder of every piece of `meta` that also speaks BEP 10
    /// and answers `ut_metadata` requests as `metadata` says.
    pub fn start_with_metadata(
        meta: &Metainfo,
        data_dir: &Path,
        behavior: SeederBehavior,
        metadata: MetadataBehavior,
    ) -> ScriptedSeeder {
        let all = Bitfield::full(meta.layout.piece_count());
        ScriptedSeeder::launch(meta, data_dir, behavior, Some(metadata), all)
    }

    /// Starts a seeder that announces and serves only the pieces in `have`;
    /// requests for other pieces are counted as bad and not answered.
    pub fn start_with_pieces(
        meta: &Metainfo,
        data_dir: &Path,
        behavior: SeederBehavior,
        have: Bitfield,
    ) -> ScriptedSeeder {
        ScriptedSeeder::launch(meta, data_dir, behavior, None, have)
    }

    fn launch(
        meta: &Metainfo,
        data_dir: &Path,
        behavior: SeederBehavior,
        metadata: Option<MetadataBehavior>,
        have: Bitfield,
    ) -> ScriptedSeeder {
        assert_eq!(have.len(), meta.layout.piece_count(), "bitfield length");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        // Non-blocking accept polled every 10 ms: the acceptor notices the
        // stop flag without a wake-up connection.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            meta: meta.clone(),
            data_dir: data_dir.to_path_buf(),
            behavior,
            metadata,
            have,
            peer_id: stamp_port(SEEDER_PEER_ID, addr.port()),
            stop: AtomicBool::new(false),
            stats: Stats::default(),
        });
        let for_thread = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("scripted-seeder-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &for_thread))
            .expect("spawn the seeder's accept thread");
        ScriptedSeeder {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on, `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The peer id it answers handshakes with (distinct per seeder).
    pub fn peer_id(&self) -> [u8; 20] {
        self.shared.peer_id
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.stats.connections.load(Ordering::SeqCst)
    }

    /// Connections being served right now.
    pub fn open_connections(&self) -> usize {
        self.shared.stats.open.load(Ordering::SeqCst)
    }

    /// Handshakes received for the right info-hash.
    pub fn handshakes(&self) -> usize {
        self.shared.stats.handshakes.load(Ordering::SeqCst)
    }

    /// INTERESTED messages received.
    pub fn interested(&self) -> usize {
        self.shared.stats.interested.load(Ordering::SeqCst)
    }

    /// PIECE messages sent (corrupt ones included); counted just before each
    /// is written, so a block the remote holds is always counted.
    pub fn blocks_served(&self) -> usize {
        self.shared.stats.blocks_served.load(Ordering::SeqCst)
    }

    /// Every REQUEST received, in order (the first 100,000).
    pub fn requests(&self) -> Vec<BlockRequest> {
        lock(&self.shared.stats.requests).clone()
    }

    /// `ut_metadata` requests received (under [`SEEDER_UT_METADATA_ID`]).
    pub fn metadata_requests(&self) -> usize {
        self.shared.stats.metadata_requests.load(Ordering::SeqCst)
    }

    /// `ut_metadata` data messages sent (corrupt ones included).
    pub fn metadata_pieces_sent(&self) -> usize {
        self.shared
            .stats
            .metadata_pieces_sent
            .load(Ordering::SeqCst)
    }

    /// `ut_metadata` rejects sent.
    pub fn metadata_rejects_sent(&self) -> usize {
        self.shared
            .stats
            .metadata_rejects_sent
            .load(Ordering::SeqCst)
    }

    /// REQUESTs outside the torrent, over 16 KiB, or for a piece this seeder lacks.
    pub fn bad_requests(&self) -> usize {
        self.shared.stats.bad_requests.load(Ordering::SeqCst)
    }

    /// REQUESTs received while the seeder was choking that connection (BEP 3: discarded).
    pub fn requests_while_choked(&self) -> usize {
        self.shared
            .stats
            .requests_while_choked
            .load(Ordering::SeqCst)
    }

    /// Connections the remote closed (end of stream or reset); not those the seeder closed.
    pub fn disconnects(&self) -> usize {
        self.shared.stats.disconnects.load(Ordering::SeqCst)
    }

    /// Whether the remote has closed at least one connection.
    pub fn saw_disconnect(&self) -> bool {
        self.disconnects() > 0
    }

    /// The peer ids of the handshakes received, in order.
    pub fn peer_ids(&self) -> Vec<[u8; 20]> {
        lock(&self.shared.stats.peer_ids).clone()
    }

    /// What went wrong on the seeder's side: a bad frame or handshake from the
    /// remote, an unreadable data file, a write that timed out. Empty when
    /// the remote behaved and the fixture is sound.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.stats.errors).clone()
    }

    /// Waits up to `limit` for the remote to close a connection.
    pub fn wait_for_disconnect(&self, limit: Duration) -> bool {
        wait_until(Instant::now() + limit, || self.saw_disconnect())
    }

    /// Waits up to `limit` until at least `count` blocks have been served.
    pub fn wait_for_blocks(&self, count: usize, limit: Duration) -> bool {
        wait_until(Instant::now() + limit, || self.blocks_served() >= count)
    }
}

impl Drop for ScriptedSeeder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            // The acceptor joins the connection threads; each notices the flag
            // within one read poll (200 ms) or one write timeout (500 ms).
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until the stop flag is set, then joins their threads.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                bump(&shared.stats.connections);
                reap_finished(&mut workers, shared);
                if workers.len() >= MAX_OPEN_CONNECTIONS {
                    shared.record_error(format!("over {MAX_OPEN_CONNECTIONS} connections"));
                    continue; // dropping the stream closes it
                }
                let for_thread = Arc::clone(shared);
                match thread::Builder::new().spawn(move || serve(stream, &for_thread)) {
                    Ok(worker) => workers.push(worker),
                    Err(e) => shared.record_error(format!("spawn a connection thread: {e}")),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL_EVERY),
            Err(e) => {
                shared.record_error(format!("accept: {e}"));
                thread::sleep(POLL_EVERY);
            }
        }
    }
    for worker in workers {
        join_worker(worker, shared);
    }
}

/// Joins the connection threads that have ended.
fn reap_finished(workers: &mut Vec<JoinHandle<()>>, shared: &Shared) {
    let (done, running): (Vec<_>, Vec<_>) = workers.drain(..).partition(|w| w.is_finished());
    *workers = running;
    for worker in done {
        join_worker(worker, shared);
    }
}

fn join_worker(worker: JoinHandle<()>, shared: &Shared) {
    if worker.join().is_err() {
        shared.record_error("a connection thread panicked".to_string());
    }
}

/// Serves one connection to its end and files the way it ended.
fn serve(stream: TcpStream, shared: &Shared) {
    bump(&shared.stats.open);
    let outcome = Conn::new(stream, shared.meta.layout.piece_count(), SEEDER_READ_POLL)
        .map_err(PeerError::Io)
        .and_then(|conn| SeederConn::new(conn, shared)?.run());
    match outcome {
        Err(PeerError::Closed) => bump(&shared.stats.disconnects),
        Ok(()) | Err(PeerError::Stopped) => {}
        Err(e) => shared.record_error(format!("connection ended: {e:?}")),
    }
    shared.stats.open.fetch_sub(1, Ordering::SeqCst);
}

/// Whether a seeder connection goes on after a message.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    HangUp,
}

/// The seeder's side of one connection.
struct SeederConn<'a> {
    conn: Conn,
    shared: &'a Shared,
    storage: Storage,
    /// Whether we are choking the remote.
    choking: bool,
    /// Set by [`SeederBehavior::ChokeAfterFirstBlock`]: never unchoke again.
    choked_for_good: bool,
    /// Blocks served on this connection.
    served: u32,
    /// The pieces the remote announced with HAVE (for
    /// [`SeederBehavior::UnrequestedFlood`], which spoils those).
    remote_has: Vec<u32>,
    /// State of the random bytes of the hostile behaviours.
    noise: u64,
    /// The id the remote receives `ut_metadata` under (its extension
    /// handshake's `m`), once it said.
    their_ut_metadata: Option<u8>,
}

impl<'a> SeederConn<'a> {
    fn new(conn: Conn, shared: &'a Shared) -> Result<SeederConn<'a>, PeerError> {
        let storage = Storage::new(&shared.data_dir, &shared.meta)
            .map_err(|e| PeerError::Unexpected(format!("seeder storage: {e}")))?;
        Ok(SeederConn {
            conn,
            shared,
            storage,
            choking: true,
            choked_for_good: false,
            served: 0,
            remote_has: Vec::new(),
            noise: 0x9E37_79B9_7F4A_7C15 ^ u64::from(shared.peer_id[19]),
            their_ut_metadata: None,
        })
    }

    /// Blocks until the stop flag is set; no deadline (the remote decides).
    fn wait(&self) -> Wait<'a> {
        let shared: &'a Shared = self.shared;
        Wait {
            deadline: None,
            stop: Some(&shared.stop),
        }
    }

    fn run(mut self) -> Result<(), PeerError> {
        self.handshake()?;
        self.send_bitfield()?;
        if let Some(metadata) = self.shared.metadata {
            self.send_ext_handshake(metadata)?;
        }
        if self.shared.behavior == SeederBehavior::OversizedFrame {
            let mut frame = OVERSIZED_FRAME_LEN.to_be_bytes().to_vec();
            frame.push(7); // a PIECE id, as if a huge block were coming
            frame.extend_from_slice(&[0xAB; 60]);
            self.conn.send_raw(&frame)?;
            let wait = self.wait();
            return Err(self.conn.discard_until_closed(&wait));
        }
        loop {
            let wait = self.wait();
            let message = self.conn.recv(&wait)?;
            if self.handle(message)? == Flow::HangUp {
                return Ok(());
            }
        }
    }

    /// Reads the remote's handshake (BEP 3: the initiator sends first), checks
    /// the info-hash and answers.
    fn handshake(&mut self) -> Result<(), PeerError> {
        let wait = self.wait();
        let theirs = self.conn.recv_handshake(&wait)?;
        let ours = self.shared.meta.info_hash.0;
        if theirs.info_hash != ours {
            return Err(PeerError::WrongInfoHash {
                got: theirs.info_hash,
            });
        }
        bump(&self.shared.stats.handshakes);
        lock(&self.shared.stats.peer_ids).push(theirs.peer_id);
        let reply = match self.shared.behavior {
            SeederBehavior::WrongInfoHash => ours.map(|b| !b),
            _ => ours,
        };
        let mut handshake = Handshake::new(reply, self.shared.peer_id);
        if self.shared.metadata.is_some() {
            handshake = handshake.with_extensions();
        }
        self.conn.send_raw(&handshake.encode())
    }

    /// Our extension handshake (BEP 10): `ut_metadata` under
    /// [`SEEDER_UT_METADATA_ID`] and the `metadata_size` `metadata` says.
    fn send_ext_handshake(&mut self, metadata: MetadataBehavior) -> Result<(), PeerError> {
        let size = match metadata {
            MetadataBehavior::Oversized => OVERSIZED_METADATA_LEN,
            _ => self.shared.meta.info_bytes.len(),
        };
        // Keys in bencode order: "m" < "metadata_size" < "v".
        let payload = format!(
            "d1:md11:ut_metadatai{SEEDER_UT_METADATA_ID}ee13:metadata_sizei{size}e1:v8:scriptede"
        );
        self.conn.send(&Message::Extended {
            id: EXT_HANDSHAKE_ID,
            payload: payload.as_bytes(),
        })
    }

    /// An extended message (BEP 10): the remote's extension handshake (its
    /// `ut_metadata` id is kept) or a `ut_metadata` message for us.
    fn on_extended(&mut self, payload: &[u8]) -> Result<Flow, PeerError> {
        let Some((&ext_id, body)) = payload.split_first() else {
            return Ok(Flow::Continue);
        };
        if ext_id == EXT_HANDSHAKE_ID {
            if let Ok(theirs) = ExtHandshake::parse(body) {
                if theirs.ut_metadata.is_some() {
                    self.their_ut_metadata = theirs.ut_metadata.filter(|&id| id != 0);
                }
            }
            return Ok(Flow::Continue);
        }
        let Some(metadata) = self.shared.metadata else {
            return Ok(Flow::Continue);
        };
        if ext_id != SEEDER_UT_METADATA_ID {
            self.shared
                .record_error(format!("extended message under id {ext_id}, not ours"));
            return Ok(Flow::Continue);
        }
        match MetadataMessage::decode(body) {
            Ok(MetadataMessage::Request { piece }) => self.on_metadata_request(metadata, piece),
            Ok(_) => Ok(Flow::Continue),
            Err(e) => {
                self.shared
                    .record_error(format!("bad ut_metadata message: {e}"));
                Ok(Flow::Continue)
            }
        }
    }

    /// Answers a request for metadata piece `piece` as `metadata` says.
    fn on_metadata_request(
        &mut self,
        metadata: MetadataBehavior,
        piece: u32,
    ) -> Result<Flow, PeerError> {
        let stats = &self.shared.stats;
        bump(&stats.metadata_requests);
        let Some(their_id) = self.their_ut_metadata else {
            self.shared
                .record_error("ut_metadata request before the remote's extension handshake".into());
            return Ok(Flow::Continue);
        };
        let info = &self.shared.meta.info_bytes;
        let start = usize::try_from(piece)
            .unwrap_or(usize::MAX)
            .saturating_mul(METADATA_PIECE_LEN);
        let end = start.saturating_add(METADATA_PIECE_LEN).min(info.len());
        let bytes = info.get(start..end).filter(|b| !b.is_empty());
        let serves = matches!(
            metadata,
            MetadataBehavior::Honest | MetadataBehavior::Corrupt
        );
        let payload = match bytes.filter(|_| serves) {
            Some(bytes) => {
                let mut data = bytes.to_vec();
                if metadata == MetadataBehavior::Corrupt {
                    if let Some(first) = data.first_mut() {
                        *first = !*first;
                    }
                }
                bump(&stats.metadata_pieces_sent);
                MetadataMessage::Data {
                    piece,
                    total_size: u32::try_from(info.len()).unwrap_or(u32::MAX),
                    data: &data,
                }
                .encode()
            }
            None => {
                bump(&stats.metadata_rejects_sent);
                MetadataMessage::Reject { piece }.encode()
            }
        };
        self.conn.send(&Message::Extended {
            id: their_id,
            payload: &payload,
        })?;
        Ok(Flow::Continue)
    }

    fn send_bitfield(&mut self) -> Result<(), PeerError> {
        let mut bytes = self.shared.have.as_bytes().to_vec();
        if self.shared.behavior == SeederBehavior::BadBitfield {
            bytes.push(0);
        }
        self.conn.send(&Message::Bitfield(&bytes))
    }

    fn handle(&mut self, message: OwnedMessage) -> Result<Flow, PeerError> {
        match message {
            OwnedMessage::Interested => {
                bump(&self.shared.stats.interested);
                if self.choking && !self.choked_for_good {
                    self.unchoke()?;
                }
                Ok(Flow::Continue)
            }
            OwnedMessage::Request(request) => self.on_request(request),
            OwnedMessage::Other {
                id: EXTENDED_ID,
                payload,
            } => self.on_extended(&payload),
            OwnedMessage::Have(piece) => {
                if self.remote_has.len() < MAX_LOGGED_REQUESTS {
                    self.remote_has.push(piece);
                }
                Ok(Flow::Continue)
            }
            // HAVE, CANCEL, keep-alives...: nothing to do for a seeder.
            _ => Ok(Flow::Continue),
        }
    }

    fn unchoke(&mut self) -> Result<(), PeerError> {
        self.conn.send(&Message::Unchoke)?;
        self.choking = false;
        if self.shared.behavior == SeederBehavior::UnrequestedPiece {
            let first = self.shared.have.iter_ones().next();
            let block = first
                .and_then(|p| self.shared.meta.layout.piece(p))
                .and_then(|p| self.shared.meta.layout.block(p, 0));
            if let Some(block) = block {
                self.send_block(block)?;
            }
        }
        Ok(())
    }

    fn on_request(&mut self, request: BlockRequest) -> Result<Flow, PeerError> {
        let stats = &self.shared.stats;
        {
            let mut log = lock(&stats.requests);
            if log.len() < MAX_LOGGED_REQUESTS {
                log.push(request);
            }
        }
        if self.choking {
            bump(&stats.requests_while_choked);
            return Ok(Flow::Continue);
        }
        let layout = &self.shared.meta.layout;
        let Some(block) = layout
            .check_block(request.piece, request.begin, request.len, BLOCK_LEN)
            .filter(|b| self.shared.have.has(b.piece.get()))
        else {
            bump(&stats.bad_requests);
            return Ok(Flow::Continue);
        };
        match self.shared.behavior {
            SeederBehavior::Silent => return Ok(Flow::Continue),
            SeederBehavior::DisconnectAfterBlocks(n) if self.served >= n => {
                return Ok(Flow::HangUp)
            }
            _ => {}
        }
        self.send_block(block)?;
        if self.shared.behavior == SeederBehavior::UnrequestedFlood {
            self.send_unrequested_noise()?;
        }
        if self.shared.behavior == SeederBehavior::ChokeAfterFirstBlock {
            self.conn.send(&Message::Choke)?;
            self.choking = true;
            self.choked_for_good = true;
        }
        Ok(Flow::Continue)
    }

    /// Sends a PIECE of random bytes for the first block of a piece the
    /// remote announced it has (nothing before its first HAVE).
    fn send_unrequested_noise(&mut self) -> Result<(), PeerError> {
        let count = u64::try_from(self.remote_has.len()).unwrap_or(0);
        if count == 0 {
            return Ok(());
        }
        let pick = usize::try_from(self.next_noise() % count).unwrap_or(0);
        let layout = &self.shared.meta.layout;
        if let Some((piece, block)) = self.remote_has.get(pick).and_then(|&piece| {
            let block = layout.piece(piece).and_then(|p| layout.block(p, 0))?;
            Some((piece, block))
        }) {
            let mut data = vec![0u8; usize::try_from(block.len).unwrap_or(0)];
            self.fill_noise(&mut data);
            bump(&self.shared.stats.blocks_served);
            return self.conn.send(&Message::Piece {
                piece,
                begin: 0,
                data: &data,
            });
        }
        Ok(())
    }

    /// The next number of a xorshift sequence (test noise, not cryptography).
    fn next_noise(&mut self) -> u64 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        self.noise
    }

    fn fill_noise(&mut self, data: &mut [u8]) {
        for chunk in data.chunks_mut(8) {
            let bytes = self.next_noise().to_le_bytes();
            for (out, byte) in chunk.iter_mut().zip(bytes) {
                *out = byte;
            }
        }
    }

    /// Reads `block` from disk and sends it as a PIECE (spoiled if the behaviour says so).
    fn send_block(&mut self, block: Block) -> Result<(), PeerError> {
        let len = usize::try_from(block.len).unwrap_or(usize::MAX);
        let mut data = vec![0u8; len];
        self.storage
            .read(block.piece, block.begin, &mut data)
            .map_err(|e| PeerError::Unexpected(format!("seeder cannot read its data: {e}")))?;
        if self.shared.behavior == SeederBehavior::CorruptPieces {
            if let Some(first) = data.first_mut() {
                *first = !*first;
            }
        }
        if self.shared.behavior == SeederBehavior::RandomBytes {
            self.fill_noise(&mut data);
        }
        // Counted before sending, so the remote can never hold a block the
        // count does not include yet (a failed send over-counts by one).
        self.served += 1;
        bump(&self.shared.stats.blocks_served);
        self.conn.send(&Message::Piece {
            piece: block.piece.get(),
            begin: block.begin,
            data: &data,
        })
    }
}

/// A block received in a PIECE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBlock {
    /// Piece index.
    pub piece: u32,
    /// Offset of the block in the piece.
    pub begin: u32,
    /// The block.
    pub data: Vec<u8>,
}

/// A leecher that drives one connection to pollen a step at a time, for
/// testing pollen as a seeder and for hostile probes.
///
/// Every read waits at most [`ProbeLeecher::timeout`] (5 s unless set).
pub struct ProbeLeecher {
    conn: Conn,
    remote: Option<Handshake>,
    /// The pieces the remote announced (BITFIELD, HAVE_ALL, HAVE).
    bitfield: Bitfield,
    /// Whether the remote is choking us.
    choked: bool,
    timeout: Duration,
    /// [`PROBE_PEER_ID`] stamped with our local port.
    peer_id: [u8; 20],
}

impl ProbeLeecher {
    /// How long each read waits unless [`ProbeLeecher::set_timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Connects to `127.0.0.1:port` and sends our handshake for `info_hash`;
    /// reads nothing yet. `piece_count` sets the frame limits (BITFIELD length).
    pub fn connect(
        port: u16,
        info_hash: [u8; 20],
        piece_count: u32,
    ) -> Result<ProbeLeecher, PeerError> {
        Self::connect_as(port, info_hash, piece_count, None)
    }

    /// [`ProbeLeecher::connect`] with a chosen peer id (the same client
    /// coming back from a new port keeps its id).
    pub fn connect_as(
        port: u16,
        info_hash: [u8; 20],
        piece_count: u32,
        peer_id: Option<[u8; 20]>,
    ) -> Result<ProbeLeecher, PeerError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(PeerError::Io)?;
        let local_port = stream.local_addr().map_err(PeerError::Io)?.port();
        let conn = Conn::new(stream, piece_count, PROBE_READ_POLL).map_err(PeerError::Io)?;
        let mut probe = ProbeLeecher {
            conn,
            remote: None,
            bitfield: Bitfield::new(piece_count),
            choked: true,
            timeout: ProbeLeecher::DEFAULT_TIMEOUT,
            peer_id: peer_id.unwrap_or_else(|| stamp_port(PROBE_PEER_ID, local_port)),
        };
        let handshake = Handshake::new(info_hash, probe.peer_id);
        probe.conn.send_raw(&handshake.encode())?;
        Ok(probe)
    }

    /// The whole opening for `meta`: connect, handshake (the remote must
    /// answer with the same info-hash), read the BITFIELD, send INTERESTED
    /// and wait for UNCHOKE.
    pub fn open(port: u16, meta: &Metainfo) -> Result<ProbeLeecher, PeerError> {
        let ours = meta.info_hash.0;
        let mut probe = ProbeLeecher::connect(port, ours, meta.layout.piece_count())?;
        let theirs = probe.read_handshake()?;
        if theirs.info_hash != ours {
            return Err(PeerError::WrongInfoHash {
                got: theirs.info_hash,
            });
        }
        probe.read_bitfield()?;
        probe.interested_until_unchoked()?;
        Ok(probe)
    }

    /// The peer id we sent (distinct per probe).
    pub fn peer_id(&self) -> [u8; 20] {
        self.peer_id
    }

    /// How long each read waits.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long each read waits.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The remote's handshake, once read.
    pub fn remote(&self) -> Option<&Handshake> {
        self.remote.as_ref()
    }

    /// The pieces the remote has announced so far.
    pub fn bitfield(&self) -> &Bitfield {
        &self.bitfield
    }

    /// Whether the remote is choking us.
    pub fn is_choked(&self) -> bool {
        self.choked
    }

    /// Reads the remote's handshake (not checked: see [`ProbeLeecher::remote`]).
    pub fn read_handshake(&mut self) -> Result<Handshake, PeerError> {
        let wait = self.wait();
        let handshake = self.conn.recv_handshake(&wait)?;
        self.remote = Some(handshake);
        Ok(handshake)
    }

    /// Reads the first message, which must say what the remote has
    /// (BITFIELD, HAVE_ALL or HAVE_NONE), and returns it checked.
    pub fn read_bitfield(&mut self) -> Result<&Bitfield, PeerError> {
        let piece_count = self.bitfield.len();
        self.bitfield = match self.next_message()? {
            OwnedMessage::Bitfield(bytes) => Bitfield::from_bytes(&bytes, piece_count)
                .map_err(|e| PeerError::Unexpected(format!("bad BITFIELD: {e:?}")))?,
            OwnedMessage::HaveAll => Bitfield::full(piece_count),
            OwnedMessage::HaveNone => Bitfield::new(piece_count),
            other => {
                return Err(PeerError::Unexpected(format!(
                    "expected BITFIELD first, got {}",
                    other.name()
                )))
            }
        };
        Ok(&self.bitfield)
    }

    /// Sends INTERESTED and reads until UNCHOKE (HAVEs and keep-alives are
    /// taken in passing), within one timeout.
    pub fn interested_until_unchoked(&mut self) -> Result<(), PeerError> {
        self.send(&Message::Interested)?;
        let deadline = Instant::now() + self.timeout;
        while self.choked {
            match self.recv_before(deadline)? {
                OwnedMessage::Piece { .. } => {
                    return Err(PeerError::Unexpected("PIECE while choked".to_string()))
                }
                _ => continue,
            }
        }
        Ok(())
    }

    /// Sends one message.
    pub fn send(&mut self, message: &Message<'_>) -> Result<(), PeerError> {
        self.conn.send(message)
    }

    /// Sends raw bytes as they are: for hostile probes (a huge length
    /// prefix, a truncated frame, garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        self.conn.send_raw(bytes)
    }

    /// Sends a REQUEST (nothing is checked: out-of-range requests are a probe too).
    pub fn request(&mut self, piece: u32, begin: u32, len: u32) -> Result<(), PeerError> {
        self.send(&Message::Request(BlockRequest { piece, begin, len }))
    }

    /// The next message, whatever it is, within one timeout.
    pub fn next_message(&mut self) -> Result<OwnedMessage, PeerError> {
        let deadline = Instant::now() + self.timeout;
        self.recv_before(deadline)
    }

    /// Reads until a PIECE arrives, within one timeout. `Choked` if the
    /// remote chokes us first, `Rejected` if it rejects a request; other
    /// messages are taken in passing.
    pub fn read_piece(&mut self) -> Result<ReceivedBlock, PeerError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.recv_before(deadline)? {
                OwnedMessage::Piece { piece, begin, data } => {
                    return Ok(ReceivedBlock { piece, begin, data })
                }
                OwnedMessage::Choke => return Err(PeerError::Choked),
                OwnedMessage::Reject(request) => return Err(PeerError::Rejected(request)),
                _ => continue,
            }
        }
    }

    /// Requests every block of `piece` at once and assembles the answers
    /// (each must be a block we asked for); each block within one timeout.
    pub fn download_piece(&mut self, layout: &Layout, piece: u32) -> Result<Vec<u8>, PeerError> {
        let index = layout
            .piece(piece)
            .ok_or_else(|| PeerError::Unexpected(format!("no piece {piece} in the torrent")))?;
        let size = usize::try_from(layout.piece_size(index)).unwrap_or(usize::MAX);
        let mut out = vec![0u8; size];
        let mut wanted: Vec<Block> = layout.blocks(index).collect();
        for block in &wanted {
            self.request(piece, block.begin, block.len)?;
        }
        while !wanted.is_empty() {
            let got = self.read_piece()?;
            let asked = wanted.iter().position(|b| {
                got.piece == piece
                    && b.begin == got.begin
                    && usize::try_from(b.len).is_ok_and(|len| len == got.data.len())
            });
            let Some(asked) = asked else {
                return Err(PeerError::Unexpected(format!(
                    "unrequested block {}/{} ({} bytes)",
                    got.piece,
                    got.begin,
                    got.data.len()
                )));
            };
            wanted.swap_remove(asked);
            let begin = usize::try_from(got.begin).unwrap_or(usize::MAX);
            if let Some(slot) = out.get_mut(begin..begin.saturating_add(got.data.len())) {
                slot.copy_from_slice(&got.data);
            }
        }
        Ok(out)
    }

    /// Whether the remote closes the connection within `limit`. Reads (and
    /// discards) whatever arrives meanwhile; a reset or other socket error
    /// counts as closed.
    pub fn is_closed_within(&mut self, limit: Duration) -> bool {
        let wait = Wait {
            deadline: Some(Instant::now() + limit),
            stop: None,
        };
        !matches!(self.conn.discard_until_closed(&wait), PeerError::Timeout)
    }

    fn wait(&self) -> Wait<'static> {
        Wait {
            deadline: Some(Instant::now() + self.timeout),
            stop: None,
        }
    }

    /// The next message before `deadline`, keeping track of choke state and HAVEs.
    fn recv_before(&mut self, deadline: Instant) -> Result<OwnedMessage, PeerError> {
        let wait = Wait {
            deadline: Some(deadline),
            stop: None,
        };
        let message = self.conn.recv(&wait)?;
        match message {
            OwnedMessage::Choke => self.choked = true,
            OwnedMessage::Unchoke => self.choked = false,
            OwnedMessage::Have(piece) => {
                self.bitfield.set(piece);
            }
            _ => {}
        }
        Ok(message)
    }
}
