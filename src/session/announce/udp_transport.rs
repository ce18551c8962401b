//! The UDP transport of the announce phase (BEP 15): one socket per tier,
//! connected to its tracker and registered under its own mio token, and the
//! pure [`UdpExchange`] that decides what to send and when; plus the
//! fire-and-forget farewell datagram on exit.
//!
//! Layer 2 driving layer 0 ([`crate::tracker::udp`]). The tiers, the other
//! transport and what to do with a reply are in the [parent](super).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::{Flight, MAX_TIERS};
use crate::session::{Session, TorrentId, MAX_TORRENTS};
use crate::tracker::udp::{self, AnnounceQuery, UdpAnnounce, UdpExchange, ANNOUNCE_TIMEOUTS};
use crate::tracker::{AnnounceRequest, AnnounceResponse, Event, TrackerError};

/// The highest token of the UDP tracker sockets: tier `i` of torrent `t`
/// uses `UDP_TOKEN_TOP - (t * MAX_TIERS + i)`, for `i` below [`MAX_TIERS`]
/// and `t` below [`MAX_TORRENTS`]. Above it are the fixed tokens (listener,
/// resolver waker, keyboard); connections use their slab keys, which count
/// up from 0 and stay below the connection limit.
const UDP_TOKEN_TOP: usize = usize::MAX - 3;

/// Largest UDP datagram read: one more than the largest valid reply, so an
/// over-long one is seen whole and refused.
const UDP_RECV_BYTES: usize = udp::MAX_DATAGRAM_LEN + 1;

/// The torrent and tier whose UDP socket has `token`, if it is one of theirs.
pub(in crate::session) fn udp_tier(token: Token) -> Option<(TorrentId, usize)> {
    let n = UDP_TOKEN_TOP
        .checked_sub(token.0)
        .filter(|n| *n < MAX_TORRENTS * MAX_TIERS)?;
    Some((n / MAX_TIERS, n % MAX_TIERS))
}

/// The token of torrent `tid`'s tier `tier`'s UDP socket (`tier` is below
/// [`MAX_TIERS`], `tid` below [`MAX_TORRENTS`]).
fn udp_token(tid: TorrentId, tier: usize) -> Token {
    let n = tid.saturating_mul(MAX_TIERS).saturating_add(tier);
    Token(UDP_TOKEN_TOP.saturating_sub(n))
}

/// A UDP announce in flight.
#[derive(Debug)]
pub(super) struct UdpInFlight {
    pub(super) url: String,
    pub(super) target: SocketAddr,
    pub(super) socket: UdpSocket,
    pub(super) exchange: UdpAnnounce,
    pub(super) event: Event,
    pub(super) started: Instant,
}

impl Session {
    /// Opens a socket connected to the UDP tracker at `target` and starts
    /// tier `tier`'s exchange on it.
    pub(super) fn start_udp(
        &mut self,
        tid: TorrentId,
        tier: usize,
        url: &str,
        target: SocketAddr,
        event: Event,
        now: Instant,
    ) -> Result<(), TrackerError> {
        let bind = crate::session::listen::tracker_source(self.listen_addr.ip(), target);
        let transport = |e: io::Error| TrackerError::Transport(e.to_string());
        let mut socket = UdpSocket::bind(bind).map_err(transport)?;
        socket.connect(target).map_err(transport)?;
        self.poll
            .registry()
            .register(&mut socket, udp_token(tid, tier), Interest::READABLE)
            .map_err(transport)?;
        let cached = self.torrents[tid]
            .tracker
            .connections
            .get(&target)
            .copied()
            .filter(|c| c.is_fresh(now));
        let query = AnnounceQuery {
            request: self.announce_request(tid, tier, event),
            ipv6: target.is_ipv6(),
        };
        let exchange = UdpExchange::new(query, now, cached, ANNOUNCE_TIMEOUTS, &mut self.rng);
        log::debug!("tracker {url}: UDP announce to {target}");
        if let Some(slot) = self.torrents[tid].tracker.slots.get_mut(tier) {
            slot.udp_target = Some(target);
        }
        self.set_flight(
            tid,
            tier,
            Flight::Udp(Box::new(UdpInFlight {
                url: url.to_string(),
                target,
                socket,
                exchange,
                event,
                started: now,
            })),
        );
        self.drive_udp(tid, tier, now);
        Ok(())
    }

    /// Tier `tier`'s UDP socket is readable: hand every datagram to its
    /// exchange.
    pub(in crate::session) fn receive_udp_tracker(
        &mut self,
        tid: TorrentId,
        tier: usize,
        now: Instant,
    ) {
        if !self.torrents.contains(tid) {
            return; // a late event for a removed torrent's socket
        }
        let mut buf = vec![0u8; UDP_RECV_BYTES];
        loop {
            let Some(Flight::Udp(flight)) = self.flight_mut(tid, tier) else {
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
                    let error = TrackerError::Transport(e.to_string());
                    return self.finish_udp(tid, tier, Err(error), now);
                }
            }
        }
        self.drive_udp(tid, tier, now);
    }

    /// Moves tier `tier`'s exchange along: timeouts, datagrams to send, a
    /// result.
    pub(super) fn drive_udp(&mut self, tid: TorrentId, tier: usize, now: Instant) {
        let Some(Flight::Udp(flight)) = self.flight_mut(tid, tier) else {
            return;
        };
        if flight.exchange.next_deadline().is_some_and(|at| at <= now) {
            flight.exchange.handle_timeout(now);
        }
        while let Some(datagram) = flight.exchange.poll_transmit(now) {
            if let Err(e) = flight.socket.send(&datagram) {
                if e.kind() != io::ErrorKind::WouldBlock {
                    let error = TrackerError::Transport(e.to_string());
                    return self.finish_udp(tid, tier, Err(error), now);
                }
            }
        }
        let connection = flight.exchange.connection().map(|c| (flight.target, c));
        let result = flight.exchange.poll_result();
        if let Some((target, connection)) = connection {
            self.torrents[tid]
                .tracker
                .connections
                .insert(target, connection);
        }
        if let Some(result) = result {
            self.finish_udp(tid, tier, result, now);
        }
    }

    /// Ends tier `tier`'s UDP exchange with `result`.
    fn finish_udp(
        &mut self,
        tid: TorrentId,
        tier: usize,
        result: Result<AnnounceResponse, TrackerError>,
        now: Instant,
    ) {
        let Some(Flight::Udp(mut flight)) = self.take_flight(tid, tier) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut flight.socket);
        let took = now.saturating_duration_since(flight.started);
        self.announce_done((tid, tier), &flight.url, flight.event, result, took, now);
    }

    /// Sends one UDP announce to tier `tier`'s tracker without waiting for
    /// the reply, if its address and a fresh connection id are at hand.
    pub(super) fn udp_farewell(&mut self, tid: TorrentId, tier: usize, request: &AnnounceRequest) {
        let Some(target) = self.torrents[tid]
            .tracker
            .slots
            .get(tier)
            .and_then(|s| s.udp_target)
        else {
            return;
        };
        let now = Instant::now();
        let Some(connection) = self.torrents[tid]
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
        let bind: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        if let Ok(socket) = std::net::UdpSocket::bind(bind) {
            let _ = socket.send_to(&datagram, target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::announce::WAKE;

    #[test]
    fn udp_tokens_of_every_torrent_stay_in_their_reserved_range() {
        let fixed = [usize::MAX, WAKE.0, usize::MAX - 2];
        for tid in [0, 1, 99, MAX_TORRENTS - 1] {
            for tier in 0..MAX_TIERS {
                let token = udp_token(tid, tier);
                assert_eq!(udp_tier(token), Some((tid, tier)));
                assert!(!fixed.contains(&token.0), "tier {tier} hits a fixed token");
            }
        }
        for other in [0, 1, 1 << 20, usize::MAX, usize::MAX - 1, usize::MAX - 2] {
            assert_eq!(udp_tier(Token(other)), None, "token {other}");
        }
        let below = UDP_TOKEN_TOP - MAX_TORRENTS * MAX_TIERS;
        assert_eq!(udp_tier(Token(below)), None);
    }
}
