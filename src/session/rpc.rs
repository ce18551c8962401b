//! The RPC server's sockets: a nonblocking listener and its HTTP
//! connections, in the session's own loop beside the peers.
//!
//! Layer 2. `rpc_event` on the listener accepts new connections (at most
//! [`MAX_RPC_CONNECTIONS`]: at the cap one is closed to make room, one that
//! has sent nothing before one with a request in progress, then the one
//! quiet longest, so a flood of idle sockets cannot lock the owner out)
//! and reads what each sent with its connect;
//! on a connection it reads what was sent into its buffer (capped at one
//! largest request, and all connections together at [`RPC_READ_BUDGET`]),
//! cuts it into requests with [`crate::rpc::http`] (`serve_rpc_requests`)
//! and answers each through `Session::answer_http` (`rpc_exec.rs`);
//! `check_rpc_timeouts` (once a second) closes connections whose request
//! is not complete within [`RPC_REQUEST_TIMEOUT`] (a client sending a byte
//! a second), that sat idle for [`RPC_IDLE_TIMEOUT`], or that stopped
//! reading their answer. Nothing here blocks: a slow or hostile client
//! costs a buffer, never the loop's time.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::Session;
use crate::rpc::http::{self, Parse, Response, MAX_BODY_BYTES, MAX_HEAD_BYTES};

/// The RPC listener's token: a quarter of the token space, far from the
/// peers' slab keys (from 0), the web seeds' range (from the middle) and
/// the fixed and UDP tokens (at the top).
const RPC_LISTENER: Token = Token(usize::MAX / 4);

/// Most RPC connections at once: front-ends keep one or two open; the
/// cap bounds the buffers a flood of sockets can claim.
pub const MAX_RPC_CONNECTIONS: usize = 64;

/// Longest time from a request's first byte to its last: a client that
/// trickles bytes (one a second) is cut off here.
pub const RPC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a kept-alive connection may sit with nothing to do (the
/// Transmission web UI asks every 2 to 5 s).
pub const RPC_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest an answer may wait for a client that does not read it.
pub const RPC_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most requests answered per connection per pass (pipelined requests
/// beyond this wait for the next pass, so one client cannot hog the loop).
const MAX_REQUESTS_PER_PASS: usize = 16;

/// Bytes read per `read` call.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Most bytes a connection's read buffer holds: one largest request.
const MAX_READ_BUFFER: usize = MAX_HEAD_BYTES + MAX_BODY_BYTES;

/// Most request bytes all RPC connections together may hold: two largest
/// requests. A connection that would go past it is closed, so a flood of
/// big uploads costs a small box at most this much memory.
pub const RPC_READ_BUDGET: usize = 2 * MAX_READ_BUFFER;

/// One RPC client connection.
#[derive(Debug)]
pub(super) struct RpcConn {
    socket: TcpStream,
    /// The client's address (canonical: IPv4 clients of a dual-stack
    /// listener as IPv4).
    pub(super) peer: SocketAddr,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    write_interest: bool,
    /// When bytes last moved either way.
    last_active: Instant,
    /// When the request being read started (its first byte).
    request_started: Option<Instant>,
    /// `100 Continue` was sent for the request being read.
    continue_sent: bool,
    /// Close once the write buffer is flushed (no keep-alive, or an error).
    close_after_write: bool,
    /// Close now (at the end of the pass, `finish_rpc_pass`).
    closing: bool,
    /// Its place in the order of accepts (older is smaller).
    seq: u64,
}

/// The listener and its connections.
#[derive(Debug)]
pub(super) struct RpcServer {
    listener: TcpListener,
    /// The address it listens on (with the real port).
    pub(super) addr: SocketAddr,
    conns: Slab<RpcConn>,
    /// The next connection's `seq`.
    next_seq: u64,
}

/// What one readiness event of the RPC server is for.
pub(super) enum RpcToken {
    /// The listener: accept.
    Listener,
    /// A connection, by slab key.
    Conn(usize),
}

/// The RPC side a token belongs to, if any.
pub(super) fn rpc_token(token: Token) -> Option<RpcToken> {
    if token == RPC_LISTENER {
        return Some(RpcToken::Listener);
    }
    let key = token.0.checked_sub(RPC_LISTENER.0 + 1)?;
    (key < MAX_RPC_CONNECTIONS).then_some(RpcToken::Conn(key))
}

/// The token of RPC connection `key`.
fn conn_token(key: usize) -> Token {
    Token(RPC_LISTENER.0 + 1 + key)
}

impl RpcServer {
    /// Binds the RPC listener on `addr` and registers it.
    pub(super) fn bind(addr: SocketAddr, registry: &Registry) -> io::Result<RpcServer> {
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, RPC_LISTENER, Interest::READABLE)?;
        let addr = listener.local_addr()?;
        Ok(RpcServer {
            listener,
            addr,
            conns: Slab::with_capacity(MAX_RPC_CONNECTIONS),
            next_seq: 0,
        })
    }

    /// Accepts every pending connection (until WouldBlock). At the cap the
    /// connection idle longest is closed to make room; `allowed` refuses
    /// an address at once (the allow-list's 403 comes with the first request).
    /// Returns the new connections that sent bytes already (read at once:
    /// their readiness was consumed here, so they are served by the caller).
    fn accept(&mut self, registry: &Registry, now: Instant) -> Vec<usize> {
        let mut sent = Vec::new();
        loop {
            let (mut socket, peer) = match self.listener.accept() {
                Ok((socket, peer)) => (socket, crate::peer_list::canonical(peer)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("rpc: accept failed: {e}");
                    break;
                }
            };
            if self.conns.len() >= MAX_RPC_CONNECTIONS {
                self.evict_idlest(registry);
            }
            if self.conns.len() >= MAX_RPC_CONNECTIONS {
                log::debug!("rpc: {peer}: refused (connection cap)");
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = registry.register(&mut socket, conn_token(key), Interest::READABLE) {
                log::warn!("rpc: {peer}: register failed: {e}");
                continue;
            }
            log::debug!("rpc: {peer}: connected");
            entry.insert(RpcConn {
                socket,
                peer,
                read_buf: Vec::new(),
                write_buf: Vec::new(),
                write_interest: false,
                last_active: now,
                request_started: None,
                continue_sent: false,
                close_after_write: false,
                closing: false,
                seq: self.next_seq,
            });
            self.next_seq += 1;
            // What it sent with its connect is read now, before a later
            // accept of this batch could evict it as idle.
            self.read(key, now);
            sent.push(key);
        }
        // Only those still open with bytes to answer (a later accept may
        // have evicted one, and its key be reused by a newcomer).
        sent.retain(|k| {
            self.conns
                .get(*k)
                .is_some_and(|c| !c.read_buf.is_empty() || c.closing)
        });
        sent.sort_unstable();
        sent.dedup();
        sent
    }

    /// Closes one connection to make room: one that has sent nothing yet
    /// and has nothing to answer before one that is busy, then the one
    /// quiet longest, then the one accepted first.
    fn evict_idlest(&mut self, registry: &Registry) {
        let idlest = self
            .conns
            .iter()
            .min_by_key(|(_, c)| {
                let busy = c.request_started.is_some()
                    || !c.read_buf.is_empty()
                    || !c.write_buf.is_empty();
                (busy, c.last_active, c.seq)
            })
            .map(|(key, _)| key);
        if let Some(key) = idlest {
            self.close(key, registry, "evicted: connection cap");
        }
    }

    /// Deregisters and drops connection `key`.
    fn close(&mut self, key: usize, registry: &Registry, why: &str) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = registry.deregister(&mut conn.socket);
            log::debug!("rpc: {}: closed ({why})", conn.peer);
        }
    }

    /// Reads what connection `key` sent, until WouldBlock, into its
    /// buffer; a peer that closed or overfilled the buffer is marked.
    fn read(&mut self, key: usize, now: Instant) {
        let others: usize = self
            .conns
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(_, c)| c.read_buf.len())
            .sum();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            let room = MAX_READ_BUFFER
                .saturating_sub(conn.read_buf.len())
                .min(RPC_READ_BUDGET.saturating_sub(others + conn.read_buf.len()));
            if room == 0 {
                // The parser refuses what is over its caps before one
                // connection fills; this is the budget of all of them.
                log::debug!("rpc: {}: closed (request buffers full)", conn.peer);
                conn.closing = true;
                return;
            }
            let want = room.min(READ_CHUNK_BYTES);
            match conn.socket.read(chunk.get_mut(..want).unwrap_or_default()) {
                Ok(0) => {
                    // The client is done sending; answer what it asked, then close.
                    conn.close_after_write = true;
                    if conn.write_buf.is_empty() && conn.read_buf.is_empty() {
                        conn.closing = true;
                    }
                    return;
                }
                Ok(n) => {
                    if conn.read_buf.is_empty() && conn.request_started.is_none() {
                        conn.request_started = Some(now);
                    }
                    conn.read_buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    conn.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.closing = true;
                    return;
                }
            }
        }
    }

    /// Writes connection `key`'s buffer until WouldBlock; registers
    /// WRITABLE exactly while bytes remain.
    fn flush(&mut self, key: usize, registry: &Registry, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        while !conn.write_buf.is_empty() {
            match conn.socket.write(&conn.write_buf) {
                Ok(0) => {
                    conn.closing = true;
                    return;
                }
                Ok(n) => {
                    conn.write_buf.drain(..n);
                    conn.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.closing = true;
                    return;
                }
            }
        }
        if conn.write_buf.is_empty() && conn.close_after_write {
            conn.closing = true;
            return;
        }
        let want_write = !conn.write_buf.is_empty();
        if want_write != conn.write_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut conn.socket, conn_token(key), interest)
                .is_err()
            {
                conn.closing = true;
                return;
            }
            conn.write_interest = want_write;
        }
    }

    /// Closes every connection marked closing.
    fn cleanup(&mut self, registry: &Registry) {
        let closing: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closing)
            .map(|(k, _)| k)
            .collect();
        for key in closing {
            self.close(key, registry, "done");
        }
    }

    /// Marks connections that broke a deadline.
    fn check_timeouts(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            let quiet = now.saturating_duration_since(conn.last_active);
            let slow_request = conn
                .request_started
                .is_some_and(|at| now.saturating_duration_since(at) > RPC_REQUEST_TIMEOUT);
            let stuck_write = !conn.write_buf.is_empty() && quiet > RPC_WRITE_TIMEOUT;
            let idle =
                conn.read_buf.is_empty() && conn.write_buf.is_empty() && quiet > RPC_IDLE_TIMEOUT;
            if slow_request || stuck_write || idle {
                log::debug!(
                    "rpc: {}: timed out ({})",
                    conn.peer,
                    if slow_request {
                        "request not complete in time"
                    } else if stuck_write {
                        "answer not read"
                    } else {
                        "idle"
                    }
                );
                conn.closing = true;
            }
        }
    }
}

impl Session {
    /// Dispatch for the RPC server's sockets: accept on the listener; on a
    /// connection, write what waits, read what came, answer every whole
    /// request (`serve_rpc_requests`), and flush.
    pub(super) fn rpc_event(
        &mut self,
        which: RpcToken,
        readable: bool,
        writable: bool,
        now: Instant,
    ) {
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        let registry = self.poll.registry();
        let server = &mut daemon.server;
        match which {
            RpcToken::Listener => {
                for key in server.accept(registry, now) {
                    self.serve_rpc_requests(key, now);
                }
            }
            RpcToken::Conn(key) => {
                if !server.conns.contains(key) {
                    return; // a spurious event for a closed connection
                }
                if writable {
                    server.flush(key, registry, now);
                }
                if readable {
                    server.read(key, now);
                }
                self.serve_rpc_requests(key, now);
            }
        }
        self.finish_rpc_pass();
    }

    /// Answers the whole requests in connection `key`'s buffer (at most
    /// [`MAX_REQUESTS_PER_PASS`]), then flushes.
    fn serve_rpc_requests(&mut self, key: usize, now: Instant) {
        for _ in 0..MAX_REQUESTS_PER_PASS {
            let Some(conn) = self
                .daemon
                .as_mut()
                .and_then(|d| d.server.conns.get_mut(key))
            else {
                return;
            };
            if conn.closing || conn.close_after_write && conn.read_buf.is_empty() {
                break;
            }
            let parsed = http::parse_request(&conn.read_buf);
            let peer = conn.peer;
            let (response, keep_alive) = match parsed {
                Ok(Parse::Incomplete { send_continue }) => {
                    if send_continue && !conn.continue_sent {
                        conn.continue_sent = true;
                        conn.write_buf.extend_from_slice(http::CONTINUE);
                    }
                    break;
                }
                Ok(Parse::Done(request, used)) => {
                    conn.read_buf.drain(..used.min(conn.read_buf.len()));
                    conn.request_started = (!conn.read_buf.is_empty()).then_some(now);
                    conn.continue_sent = false;
                    let keep_alive = request.keep_alive;
                    (self.answer_http(&request, peer, now), keep_alive)
                }
                Err(e) => {
                    log::debug!("rpc: {peer}: {e}");
                    conn.read_buf.clear();
                    let body = format!("{e}\n").into_bytes();
                    (
                        Response::new(e.status(), "text/plain; charset=utf-8", body),
                        false,
                    )
                }
            };
            let Some(conn) = self
                .daemon
                .as_mut()
                .and_then(|d| d.server.conns.get_mut(key))
            else {
                return;
            };
            conn.write_buf
                .extend_from_slice(&response.to_bytes(keep_alive));
            if !keep_alive {
                conn.close_after_write = true;
                conn.read_buf.clear();
                break;
            }
        }
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.server.flush(key, self.poll.registry(), now);
        }
    }

    /// Closes the RPC connections marked closing.
    fn finish_rpc_pass(&mut self) {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.server.cleanup(self.poll.registry());
        }
    }

    /// Housekeeping (once a second): closes RPC connections that broke a
    /// deadline (slow request, idle, answer not read).
    pub(super) fn check_rpc_timeouts(&mut self, now: Instant) {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.server.check_timeouts(now);
            daemon.server.cleanup(self.poll.registry());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_tokens_do_not_overlap_the_other_ranges() {
        assert!(matches!(rpc_token(RPC_LISTENER), Some(RpcToken::Listener)));
        assert!(matches!(rpc_token(conn_token(0)), Some(RpcToken::Conn(0))));
        let last = MAX_RPC_CONNECTIONS - 1;
        assert!(matches!(rpc_token(conn_token(last)), Some(RpcToken::Conn(k)) if k == last));
        assert!(rpc_token(conn_token(MAX_RPC_CONNECTIONS)).is_none());
        assert!(rpc_token(Token(0)).is_none());
        assert!(rpc_token(Token(usize::MAX)).is_none());
        assert!(rpc_token(Token(usize::MAX / 2)).is_none());
        assert!(conn_token(MAX_RPC_CONNECTIONS) < Token(usize::MAX / 2));
    }
}
