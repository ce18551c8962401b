//! The built-in tracker's event loop: `pollen tracker` serving HTTP
//! announce/scrape and UDP (BEP 15) from one thread.
//!
//! Layer 2: a small mio session of its own, shaped like the client's: wait,
//! dispatch (accept, read a request head, answer, close), expire stale
//! peers on a timer. All tracker logic is the pure [`super::respond_http`]
//! and [`super::respond_udp`]; this file only moves bytes. It never makes a
//! blocking call, so a pollen that hosts it could never wait on itself.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::http_request::{request_head_complete, MAX_REQUEST_HEAD_BYTES};
use super::state::{TrackerConfig, TrackerState, EXPIRE_PERIOD};
use super::udp_request::ConnectionIds;
use super::{http_response, respond_http, respond_udp};
use crate::error::Error;
use crate::rng::Rng;

const HTTP_LISTENER: Token = Token(usize::MAX);
const UDP_SOCKET: Token = Token(usize::MAX - 1);

/// Most HTTP connections open at once; more are refused (each is short-lived).
const MAX_HTTP_CONNECTIONS: usize = 512;

/// How long a client may take to send its request and read the answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the loop wakes without events (to notice the stop flag).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// One HTTP client connection.
#[derive(Debug)]
struct HttpConn {
    socket: TcpStream,
    addr: SocketAddr,
    request: Vec<u8>,
    response: Vec<u8>,
    sent: usize,
    opened_at: Instant,
    done: bool,
}

/// Where to listen and how to behave.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP listening address (port 0: any free port).
    pub http: SocketAddr,
    /// UDP listening address, if UDP is served.
    pub udp: Option<SocketAddr>,
    /// Allow-list, ranking, caps.
    pub tracker: TrackerConfig,
}

/// A running built-in tracker.
pub struct TrackerServer {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    udp: Option<UdpSocket>,
    conns: Slab<HttpConn>,
    state: TrackerState,
    ids: ConnectionIds,
    rng: Rng,
    stop: Arc<AtomicBool>,
    next_expire: Instant,
}

impl TrackerServer {
    /// Binds the sockets.
    pub fn bind(config: ServerConfig) -> Result<TrackerServer, Error> {
        let poll = Poll::new().map_err(|e| Error::Io("create the event poll", e))?;
        let mut listener =
            TcpListener::bind(config.http).map_err(|e| Error::Bind(config.http, e))?;
        poll.registry()
            .register(&mut listener, HTTP_LISTENER, Interest::READABLE)
            .map_err(|e| Error::Io("register the listener", e))?;
        let udp = match config.udp {
            Some(addr) => {
                let mut socket = UdpSocket::bind(addr).map_err(|e| Error::Bind(addr, e))?;
                poll.registry()
                    .register(&mut socket, UDP_SOCKET, Interest::READABLE)
                    .map_err(|e| Error::Io("register the UDP socket", e))?;
                Some(socket)
            }
            None => None,
        };
        let mut rng = Rng::from_entropy();
        let now = Instant::now();
        Ok(TrackerServer {
            ids: ConnectionIds::new(rng.next_u64(), now),
            poll,
            events: Events::with_capacity(256),
            listener,
            udp,
            conns: Slab::new(),
            state: TrackerState::new(config.tracker),
            rng,
            stop: Arc::new(AtomicBool::new(false)),
            next_expire: now + EXPIRE_PERIOD,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound UDP address, if UDP is served.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Set it to stop the loop (signal handler or another thread).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Serves until the stop flag is set.
    pub fn run(&mut self) -> Result<(), Error> {
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let timeout = self
                .next_expire
                .saturating_duration_since(now)
                .min(IDLE_WAKE);
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io("wait for events", e)),
            }
            let now = Instant::now();
            let ready: Vec<(Token, bool)> = self
                .events
                .iter()
                .map(|e| (e.token(), e.is_writable()))
                .collect();
            for (token, writable) in ready {
                match token {
                    HTTP_LISTENER => self.accept(now),
                    UDP_SOCKET => self.receive_datagrams(now),
                    Token(key) => self.serve_http(key, writable, now),
                }
            }
            if now >= self.next_expire {
                self.next_expire = now + EXPIRE_PERIOD;
                let gone = self.state.expire(now);
                if gone > 0 {
                    log::debug!("tracker: {gone} peers expired");
                }
                self.close_stale(now);
            }
            self.close_done();
        }
        Ok(())
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut socket, addr) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return log::warn!("tracker: accept failed: {e}"),
            };
            if self.conns.len() >= MAX_HTTP_CONNECTIONS {
                continue; // dropped: the client retries later
            }
            let entry = self.conns.vacant_entry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut socket, Token(entry.key()), interest)
                .is_err()
            {
                continue;
            }
            entry.insert(HttpConn {
                socket,
                addr,
                request: Vec::new(),
                response: Vec::new(),
                sent: 0,
                opened_at: now,
                done: false,
            });
        }
    }

    /// Reads the request head, answers it once, writes the answer out.
    fn serve_http(&mut self, key: usize, _writable: bool, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.response.is_empty() {
            let mut buf = [0u8; 2048];
            loop {
                match conn.socket.read(&mut buf) {
                    Ok(0) => {
                        conn.done = true;
                        return;
                    }
                    Ok(n) => conn
                        .request
                        .extend_from_slice(buf.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        conn.done = true;
                        return;
                    }
                }
                if conn.request.len() > MAX_REQUEST_HEAD_BYTES {
                    break;
                }
            }
            match request_head_complete(&conn.request) {
                Some(end) => {
                    let head = conn.request.get(..end).unwrap_or_default();
                    if log::log_enabled!(log::Level::Debug) {
                        let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                        let line = String::from_utf8_lossy(
                            line.get(..200.min(line.len())).unwrap_or_default(),
                        );
                        log::debug!("tracker: {} {}", conn.addr, line.escape_debug());
                    }
                    conn.response =
                        respond_http(&mut self.state, conn.addr.ip(), head, now, &mut self.rng);
                }
                None if conn.request.len() >= MAX_REQUEST_HEAD_BYTES => {
                    conn.response = http_response(431, b"request head too large\n");
                }
                None => return,
            }
        }
        while let Some(rest) = conn.response.get(conn.sent..).filter(|r| !r.is_empty()) {
            match conn.socket.write(rest) {
                Ok(n) => conn.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        conn.done = true;
    }

    fn receive_datagrams(&mut self, now: Instant) {
        let Some(socket) = self.udp.as_ref() else {
            return;
        };
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return log::debug!("tracker: UDP receive failed: {e}"),
            };
            let datagram = buf.get(..n).unwrap_or_default();
            log::debug!("tracker: {from} UDP datagram of {n} bytes");
            if let Some(reply) = respond_udp(
                &mut self.state,
                &self.ids,
                from.ip(),
                datagram,
                now,
                &mut self.rng,
            ) {
                // UDP is best effort: a reply that cannot be sent is lost, like any datagram.
                let _ = socket.send_to(&reply, from);
            }
        }
    }

    fn close_stale(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            if now.saturating_duration_since(conn.opened_at) > HTTP_TIMEOUT {
                conn.done = true;
            }
        }
    }

    fn close_done(&mut self) {
        let done: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.done)
            .map(|(k, _)| k)
            .collect();
        for key in done {
            if let Some(mut conn) = self.conns.try_remove(key) {
                let _ = self.poll.registry().deregister(&mut conn.socket);
            }
        }
    }
}
