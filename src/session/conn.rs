//! One peer connection: the nonblocking socket, its read and write
//! buffers, and where it is in its life. The peer's protocol state lives
//! in the torrent core ([`crate::torrent::Torrent`]), under the same key.
//!
//! Layer 2. Reads drain the socket into a capped buffer that the wire
//! decoder consumes frame by frame; writes append framed messages to the
//! write buffer, which is flushed until the socket would block.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::close_reason::CloseReason;
use crate::wire::Message;

/// Bytes read from a socket per `read` call.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Outgoing messages noted per connection between two trace collections
/// (the tracer's own buffer bounds the rest).
const MAX_SENT_LOG: usize = 4096;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Outgoing connect in progress (waiting for writable).
    Connecting,
    /// Connected; waiting for the peer's handshake.
    Handshaking,
    /// Handshakes exchanged; messages flow.
    Active,
}

/// A connection and everything the session keeps about it.
#[derive(Debug)]
pub struct Conn {
    /// The nonblocking socket.
    pub socket: TcpStream,
    /// The peer's address and port (the peer's identity).
    pub addr: SocketAddr,
    /// We dialled it (rather than it dialling us).
    pub outgoing: bool,
    /// The torrent it belongs to: known when we dial; for an incoming
    /// connection, once its handshake names an info-hash we serve.
    pub torrent: Option<super::TorrentId>,
    /// Life stage.
    pub stage: Stage,
    /// Bytes received and not yet decoded.
    pub read_buf: Vec<u8>,
    /// Most bytes `read_buf` may hold: one largest frame plus its prefix.
    pub read_cap: usize,
    /// Framed bytes waiting to be sent.
    pub write_buf: Vec<u8>,
    /// Whether WRITABLE interest is registered.
    pub write_interest: bool,
    /// Our handshake is in `write_buf` (or sent).
    pub sent_handshake: bool,
    /// Set by any phase that wants this connection closed; the cleanup
    /// phase closes it, so a slab key is never reused within one pass.
    pub closing: Option<CloseReason>,
    /// The peer used up its read budget: bytes may be waiting unread, and
    /// no new readiness event will say so (edge-triggered).
    pub read_pending: bool,
    /// When a flush last moved bytes (for peers that stop reading).
    pub last_write_progress: Instant,
    /// Under `--trace`: descriptions of the messages queued since the
    /// session last collected them (it stamps them with the phase).
    pub sent_log: Option<Vec<String>>,
    /// When the connection was made (or the connect started).
    pub opened_at: Instant,
    /// When bytes last arrived.
    pub last_read: Instant,
    /// When a message was last queued.
    pub last_write: Instant,
}

/// What a read pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The socket has no more bytes for now.
    WouldBlock,
    /// The buffer is full; decode before reading more.
    BufferFull,
    /// The peer closed the connection.
    Closed,
}

impl Conn {
    /// A new connection: dialled by us for `torrent`, or accepted (`None`).
    pub fn new(
        socket: TcpStream,
        addr: SocketAddr,
        torrent: Option<super::TorrentId>,
        read_cap: usize,
        now: Instant,
    ) -> Conn {
        let outgoing = torrent.is_some();
        Conn {
            socket,
            addr,
            outgoing,
            torrent,
            stage: if outgoing {
                Stage::Connecting
            } else {
                Stage::Handshaking
            },
            read_buf: Vec::new(),
            read_cap,
            write_buf: Vec::new(),
            write_interest: outgoing,
            sent_handshake: false,
            closing: None,
            read_pending: false,
            last_write_progress: now,
            sent_log: None,
            opened_at: now,
            last_read: now,
            last_write: now,
        }
    }

    /// Marks the connection for closing (the first reason wins).
    pub fn close(&mut self, reason: CloseReason) {
        if self.closing.is_none() {
            self.closing = Some(reason);
        }
    }

    /// Reads from the socket until it would block, the buffer is full, or
    /// the peer closes. Never grows the buffer past `read_cap`.
    pub fn fill_read_buf(&mut self) -> io::Result<ReadOutcome> {
        loop {
            let room = self.read_cap.saturating_sub(self.read_buf.len());
            if room == 0 {
                return Ok(ReadOutcome::BufferFull);
            }
            let start = self.read_buf.len();
            self.read_buf.resize(start + room.min(READ_CHUNK_BYTES), 0);
            let result = self
                .socket
                .read(self.read_buf.get_mut(start..).unwrap_or_default());
            match result {
                Ok(0) => {
                    self.read_buf.truncate(start);
                    return Ok(ReadOutcome::Closed);
                }
                Ok(n) => self.read_buf.truncate(start + n),
                Err(e) => {
                    self.read_buf.truncate(start);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok(ReadOutcome::WouldBlock),
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    /// Writes queued bytes until done or the socket would block.
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        let mut sent = 0;
        let result = loop {
            let Some(rest) = self.write_buf.get(sent..).filter(|r| !r.is_empty()) else {
                break Ok(());
            };
            match self.socket.write(rest) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.write_buf.drain(..sent);
        if sent > 0 {
            self.last_write_progress = now;
        }
        result
    }

    /// Queues a message.
    pub fn send(&mut self, message: &Message<'_>, now: Instant) {
        message.encode(&mut self.write_buf);
        self.last_write = now;
        self.log_sent(|| crate::trace::describe(message));
    }

    /// Notes an outgoing message for `--trace` (nothing when tracing is off).
    pub fn log_sent(&mut self, describe: impl FnOnce() -> String) {
        if let Some(log) = self.sent_log.as_mut() {
            if log.len() < MAX_SENT_LOG {
                log.push(describe());
            }
        }
    }

    /// Whether the peer has stopped reading: bytes wait in our buffer and
    /// none have moved for `limit`.
    pub fn is_stalled(&self, now: Instant, limit: std::time::Duration) -> bool {
        !self.write_buf.is_empty()
            && now.saturating_duration_since(self.last_write_progress) > limit
    }

    /// Whether messages may flow (handshakes done, not closing).
    pub fn is_active(&self) -> bool {
        self.stage == Stage::Active && self.closing.is_none()
    }
}
