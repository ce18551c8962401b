//! The announce phase: telling trackers about us and learning peers
//! (BEP 3 HTTP announce, BEP 15 UDP announce, BEP 12 tiers).
//!
//! Layer 2 driving layers 0 and 1.
//! - **HTTP(S)**: one blocking ureq call under hard timeouts (connect 3 s,
//!   total 5 s), made from the loop as the design says. While it runs no
//!   socket is served, so at most one is made per pass, and a dead tracker
//!   costs a few seconds before the next URL is tried on a later pass.
//! - **UDP**: never blocks (except the DNS lookup of a tracker name; IP
//!   literals need none). The pure [`UdpExchange`] state machine decides
//!   what to send and when to retransmit (15 s × 2^n); the session owns its
//!   socket, one per exchange, connected to the tracker so that a dead port
//!   on this machine fails at once with "connection refused".
//! - **Tiers**: [`Tiers`] walks the URLs in BEP 12 order, promotes the one
//!   that answers, and says when a whole round failed so we back off.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::{Config, Session};
use crate::metainfo::Metainfo;
use crate::rng::Rng;
use crate::tracker::http::{self, HttpTimeouts};
use crate::tracker::tiers::{Failover, Tiers};
use crate::tracker::udp::{
    self, AnnounceQuery, UdpAnnounce, UdpConnection, UdpExchange, UdpTimeouts,
};
use crate::tracker::{AnnounceRequest, AnnounceResponse, Event, TrackerError};

/// The UDP tracker socket's token.
pub(super) const UDP_TRACKER: Token = Token(usize::MAX - 1);

/// First delay after a whole round of trackers failed; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(15);

/// Longest delay between rounds when trackers keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// Re-announce delay when a tracker returned no peers and we have none:
/// the swarm may just be forming (seeders often start seconds after us).
const EMPTY_SWARM_RETRY: Duration = Duration::from_secs(30);

/// Peers asked for per announce (BEP 3 default 50; more helps a small box
/// fill its slots without asking again).
const NUMWANT: u32 = 80;

/// Timeouts for the final announces on exit: short, since the user is
/// waiting and the tracker forgets us after a while anyway.
const EXIT_TIMEOUTS: HttpTimeouts = HttpTimeouts {
    connect: Duration::from_secs(2),
    total: Duration::from_secs(3),
};

/// Largest UDP datagram read: one more than the largest valid reply, so an
/// over-long one is seen whole and refused.
const UDP_RECV_BYTES: usize = udp::MAX_DATAGRAM_LEN + 1;

/// A UDP announce in flight.
#[derive(Debug)]
struct UdpInFlight {
    url: String,
    target: SocketAddr,
    socket: UdpSocket,
    exchange: UdpAnnounce,
    event: Event,
    started: Instant,
}

/// Where the session is with its trackers.
#[derive(Debug)]
pub(super) struct TrackerState {
    tiers: Tiers,
    /// When to announce next; `None` when there are no trackers.
    next_at: Option<Instant>,
    /// Rounds in a row in which every tracker failed.
    failed_rounds: u32,
    /// A `started` announce succeeded.
    started: bool,
    /// A `completed` announce is owed.
    completed_due: bool,
    tracker_id: Option<String>,
    udp: Option<UdpInFlight>,
    /// UDP connection ids by tracker address (BEP 15: reusable for a minute).
    connections: HashMap<SocketAddr, UdpConnection>,
    /// The last swarm size a tracker reported: (seeders, leechers).
    pub(super) swarm: Option<(u32, u32)>,
    /// One line about the last announce, for the TUI.
    pub(super) last_status: String,
}

impl TrackerState {
    /// The torrent's tiers plus the URLs given by hand, unless trackers are off.
    pub(super) fn new(
        meta: &Metainfo,
        config: &Config,
        now: Instant,
        rng: &mut Rng,
    ) -> TrackerState {
        let (tiers, by_hand) = if config.use_trackers {
            (meta.trackers.clone(), config.trackers.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        let tiers = Tiers::new(tiers, by_hand, rng);
        TrackerState {
            next_at: (!tiers.is_empty()).then_some(now),
            tiers,
            failed_rounds: 0,
            started: false,
            completed_due: false,
            tracker_id: None,
            udp: None,
            connections: HashMap::new(),
            swarm: None,
            last_status: String::from("no tracker contacted yet"),
        }
    }

    /// When the tracker phase next needs the loop: the next announce, or the
    /// in-flight UDP exchange's retransmit deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match &self.udp {
            Some(flight) => flight.exchange.next_deadline(),
            None => self.next_at,
        }
    }
}

impl Session {
    /// Announce phase: when due, announce to the current tracker; HTTP
    /// blocks for at most a few seconds, UDP starts an exchange that the loop
    /// carries on. Peers it returns join the known-peer list.
    pub(super) fn announce(&mut self, now: Instant) {
        if self.tracker.udp.is_some() {
            return self.drive_udp(now);
        }
        if self.checking.is_some() || self.tracker.next_at.is_none_or(|at| at > now) {
            return;
        }
        let Some(url) = self.tracker.tiers.current().map(str::to_string) else {
            return;
        };
        let event = self.due_event();
        let request = self.announce_request(event);
        if url.to_ascii_lowercase().starts_with("udp://") {
            if let Err(e) = self.start_udp(&url, request, event, now) {
                self.announce_done(&url, event, Err(e), Duration::ZERO, now);
            }
            return;
        }
        let started = Instant::now();
        let result = http::announce_with(
            &url,
            &request,
            &HttpTimeouts::default(),
            self.config.tracker_ca.as_ref(),
        );
        self.announce_done(&url, event, result, started.elapsed(), Instant::now());
    }

    /// The event this announce carries.
    fn due_event(&self) -> Event {
        if !self.tracker.started {
            Event::Started
        } else if self.tracker.completed_due {
            Event::Completed
        } else {
            Event::Empty
        }
    }

    /// Opens a socket connected to the UDP tracker and starts the exchange.
    fn start_udp(
        &mut self,
        url: &str,
        request: AnnounceRequest,
        event: Event,
        now: Instant,
    ) -> Result<(), TrackerError> {
        let (host, port) = udp::parse_udp_url(url)
            .ok_or_else(|| TrackerError::BadUrl("not a udp://host:port URL".into()))?;
        // The one blocking step: a name lookup (none for an IP literal).
        let target = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| TrackerError::Transport(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| TrackerError::Transport(format!("{host} has no address")))?;
        let bind: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let transport = |e: io::Error| TrackerError::Transport(e.to_string());
        let mut socket = UdpSocket::bind(bind).map_err(transport)?;
        socket.connect(target).map_err(transport)?;
        self.poll
            .registry()
            .register(&mut socket, UDP_TRACKER, Interest::READABLE)
            .map_err(transport)?;
        let cached = self
            .tracker
            .connections
            .get(&target)
            .copied()
            .filter(|c| c.is_fresh(now));
        let query = AnnounceQuery {
            request,
            ipv6: target.is_ipv6(),
        };
        let exchange = UdpExchange::new(query, now, cached, UdpTimeouts::default(), &mut self.rng);
        log::debug!("tracker {url}: UDP announce to {target}");
        self.tracker.udp = Some(UdpInFlight {
            url: url.to_string(),
            target,
            socket,
            exchange,
            event,
            started: now,
        });
        self.drive_udp(now);
        Ok(())
    }

    /// The UDP socket is readable: hand every datagram to the exchange.
    pub(super) fn receive_udp_tracker(&mut self, now: Instant) {
        let mut buf = vec![0u8; UDP_RECV_BYTES];
        loop {
            let Some(flight) = self.tracker.udp.as_mut() else {
                return;
            };
            match flight.socket.recv(&mut buf) {
                Ok(n) => flight
                    .exchange
                    .handle_datagram(buf.get(..n).unwrap_or_default(), now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // e.g. connection refused: nothing listens on that port.
                    return self.finish_udp(Err(TrackerError::Transport(e.to_string())), now);
                }
            }
        }
        self.drive_udp(now);
    }

    /// Moves the exchange along: timeouts, datagrams to send, a result.
    fn drive_udp(&mut self, now: Instant) {
        let Some(flight) = self.tracker.udp.as_mut() else {
            return;
        };
        if flight.exchange.next_deadline().is_some_and(|at| at <= now) {
            flight.exchange.handle_timeout(now);
        }
        while let Some(datagram) = flight.exchange.poll_transmit(now) {
            if let Err(e) = flight.socket.send(&datagram) {
                if e.kind() != io::ErrorKind::WouldBlock {
                    return self.finish_udp(Err(TrackerError::Transport(e.to_string())), now);
                }
            }
        }
        if let Some(connection) = flight.exchange.connection() {
            self.tracker.connections.insert(flight.target, connection);
        }
        if let Some(result) = flight.exchange.poll_result() {
            self.finish_udp(result, now);
        }
    }

    /// Ends the UDP exchange with `result`.
    fn finish_udp(&mut self, result: Result<AnnounceResponse, TrackerError>, now: Instant) {
        let Some(mut flight) = self.tracker.udp.take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut flight.socket);
        let took = now.saturating_duration_since(flight.started);
        self.announce_done(&flight.url, flight.event, result, took, now);
    }

    /// The outcome of one announce, from either transport.
    fn announce_done(
        &mut self,
        url: &str,
        event: Event,
        result: Result<AnnounceResponse, TrackerError>,
        took: Duration,
        now: Instant,
    ) {
        if let Some((tracer, _)) = self.tracer.as_mut() {
            let outcome = match &result {
                Ok(reply) => Ok(reply.peers.len()),
                Err(e) => Err(e.to_string()),
            };
            let event_name = event.as_param().unwrap_or("");
            tracer.tracker(
                now,
                crate::trace::phase::ANNOUNCE,
                url,
                event_name,
                took,
                outcome.as_ref().map(|n| *n).map_err(String::as_str),
            );
        }
        match result {
            Ok(reply) => {
                let added = reply.peers.iter().filter(|a| self.peers.add(**a)).count();
                self.tracker.last_status = format!("{url}: ok, {} peers", reply.peers.len());
                log::info!(
                    "tracker {url}: {event:?}: {} peers ({added} new), next in {} s ({} ms)",
                    reply.peers.len(),
                    reply.interval.as_secs(),
                    took.as_millis()
                );
                if let Some(warning) = &reply.warning {
                    log::warn!("tracker {url} warns: {}", warning.escape_debug());
                }
                match event {
                    Event::Started => self.tracker.started = true,
                    Event::Completed => self.tracker.completed_due = false,
                    _ => {}
                }
                if reply.tracker_id.is_some() {
                    self.tracker.tracker_id = reply.tracker_id;
                }
                if let (Some(seeders), Some(leechers)) = (reply.complete, reply.incomplete) {
                    self.tracker.swarm = Some((seeders, leechers));
                }
                self.tracker.tiers.on_success();
                self.tracker.failed_rounds = 0;
                let mut interval = reply
                    .min_interval
                    .map_or(reply.interval, |min| reply.interval.max(min));
                let lonely =
                    reply.peers.is_empty() && self.conns.is_empty() && !self.have.is_complete();
                if lonely {
                    // Nobody to download from: ask again soon, not in half an hour.
                    let soon = reply
                        .min_interval
                        .unwrap_or(EMPTY_SWARM_RETRY)
                        .max(EMPTY_SWARM_RETRY);
                    interval = interval.min(soon);
                }
                self.tracker.next_at = Some(now + interval);
                self.add_peers(now);
            }
            Err(e) => {
                self.tracker.last_status = format!("{url}: {e}");
                log::warn!("tracker {url}: {e} ({} ms)", took.as_millis());
                self.tracker.next_at = Some(match self.tracker.tiers.on_failure() {
                    Failover::NextTracker => now,
                    Failover::RoundFailed => {
                        self.tracker.failed_rounds += 1;
                        let shift = self.tracker.failed_rounds.min(10) - 1;
                        now + FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF)
                    }
                });
            }
        }
    }

    /// The download completed: owe the tracker a `completed` event (only if
    /// it saw us start incomplete) and send it soon.
    pub(super) fn on_complete(&mut self, now: Instant) {
        if self.tracker.started {
            self.tracker.completed_due = true;
            if self.tracker.udp.is_none() && self.tracker.next_at.is_some() {
                self.tracker.next_at = Some(now);
            }
        }
    }

    /// On exit: the `completed` event if it is still owed (a download that
    /// finished and exits at once), then `stopped` so the tracker forgets us.
    /// HTTP with short timeouts; UDP as one fire-and-forget datagram when a
    /// fresh connection id is at hand.
    pub(super) fn announce_on_exit(&mut self) {
        if !self.tracker.started {
            return;
        }
        let Some(url) = self.tracker.tiers.current().map(str::to_string) else {
            return;
        };
        let mut events = vec![Event::Stopped];
        if self.tracker.completed_due {
            events.insert(0, Event::Completed);
        }
        for event in events {
            let request = self.announce_request(event);
            if url.to_ascii_lowercase().starts_with("udp://") {
                self.udp_farewell(&url, &request);
            } else if let Err(e) = http::announce_with(
                &url,
                &request,
                &EXIT_TIMEOUTS,
                self.config.tracker_ca.as_ref(),
            ) {
                log::debug!("tracker {url}: {event:?} announce failed: {e}");
                return;
            }
        }
    }

    /// Sends one UDP announce without waiting for the reply.
    fn udp_farewell(&mut self, url: &str, request: &AnnounceRequest) {
        let Some((host, port)) = udp::parse_udp_url(url) else {
            return;
        };
        let Some(target) = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        else {
            return;
        };
        let now = Instant::now();
        let Some(connection) = self
            .tracker
            .connections
            .get(&target)
            .filter(|c| c.is_fresh(now))
        else {
            return;
        };
        let datagram = udp::encode_announce(
            connection.id,
            u32::try_from(self.rng.next_u64() >> 32).unwrap_or(0),
            request,
        );
        if let Ok(socket) = std::net::UdpSocket::bind(("0.0.0.0", 0)) {
            let _ = socket.send_to(&datagram, target);
        }
    }

    fn announce_request(&self, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: self.meta.info_hash.0,
            peer_id: self.peer_id,
            port: self.listen_addr.port(),
            uploaded: self.stats.uploaded,
            downloaded: self.stats.downloaded,
            left: self.bytes_left(),
            event,
            numwant: Some(NUMWANT),
            key: None,
            tracker_id: self.tracker.tracker_id.clone(),
        }
    }

    /// Bytes of the torrent not yet verified.
    pub(super) fn bytes_left(&self) -> u64 {
        let layout = &self.meta.layout;
        let have: u64 = self
            .have
            .iter_ones()
            .filter_map(|p| layout.piece(p))
            .map(|p| u64::from(layout.piece_size(p)))
            .sum();
        layout.total_len().saturating_sub(have)
    }
}
