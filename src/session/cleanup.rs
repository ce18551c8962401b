//! The cleanup, timeout and keepalive phases.
//!
//! Layer 2. `cleanup` is the one place a connection is closed: it
//! deregisters the socket and tells the torrent core, which gives back the
//! peer's requests and availability and tells the peer list how it ended.
//! The connection-level timeouts (connect, handshake, silence, a peer that
//! stops reading) are the session's; request timeouts and snubbing are the
//! core's ([`crate::torrent::Torrent::check_timeouts`]).

use std::time::{Duration, Instant};

use super::conn::Stage;
use super::Session;
use crate::close_reason::CloseReason;
use crate::trace::phase;
use crate::wire::Message;

/// How long a nonblocking connect may take. Five seconds covers a SYN
/// and its first two retransmissions (Linux retries after one and then
/// three seconds) on any path a peer worth having is on; an address that
/// answers none of them is dead or firewalled, and each second spent on it
/// holds a half-open slot ([`super::receive::MAX_HALF_OPEN`]) that a live
/// address is waiting for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a peer may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Silence after which a peer is dropped (BEP 3 keepalives come every two
/// minutes, so three minutes of nothing means it is gone).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);

/// Send a keepalive after this long without sending anything (BEP 3).
const KEEPALIVE_PERIOD: Duration = Duration::from_secs(120);

/// Most bytes waiting in one peer's write buffer: more means the peer is
/// not reading what we send.
const MAX_WRITE_BUF_BYTES: usize = 8 * 1024 * 1024;

impl Session {
    /// Cleanup phase: closes every connection marked for closing.
    pub(super) fn cleanup(&mut self, now: Instant) {
        let closing: Vec<(usize, CloseReason)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| Some((k, c.closing.clone()?)))
            .collect();
        for (key, reason) in closing {
            let Some(mut conn) = self.conns.try_remove(key) else {
                continue;
            };
            if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
                log::debug!("{}: deregister failed: {e}", conn.addr);
            }
            if let Some(slot) = conn.torrent.and_then(|tid| self.torrents.get_mut(tid)) {
                slot.torrent
                    .handle_disconnected(key, conn.addr, &reason, now);
            }
            let direction = if conn.outgoing {
                "outgoing"
            } else {
                "incoming"
            };
            if reason.is_failure() {
                log::info!("{} ({direction}): dropped: {reason}", conn.addr);
            } else {
                log::debug!("{} ({direction}): closed: {reason}", conn.addr);
            }
        }
    }

    /// Timeouts: slow connects and handshakes, silent peers, stale requests,
    /// peers that stopped reading.
    pub(super) fn check_timeouts(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            let was_closing = conn.closing.is_some();
            let age = now.saturating_duration_since(conn.opened_at);
            let silent = now.saturating_duration_since(conn.last_read);
            match conn.stage {
                Stage::Connecting if age > CONNECT_TIMEOUT => {
                    conn.close(CloseReason::ConnectTimeout)
                }
                Stage::Handshaking if age > HANDSHAKE_TIMEOUT => {
                    conn.close(CloseReason::HandshakeTimeout)
                }
                Stage::Active if silent > IDLE_TIMEOUT => conn.close(CloseReason::Idle),
                _ => {}
            }
            if conn.write_buf.len() > MAX_WRITE_BUF_BYTES {
                conn.close(CloseReason::NotReading {
                    queued_bytes: conn.write_buf.len(),
                });
            }
            if let (Some((tracer, _)), Some(reason), false) =
                (self.tracer.as_mut(), conn.closing.as_ref(), was_closing)
            {
                tracer.timeout(now, phase::CHECK_TIMEOUTS, conn.addr, reason);
            }
        }
        for (_, slot) in &mut self.torrents {
            slot.torrent.check_timeouts(now);
        }
    }

    /// Keepalive phase: a keepalive to every peer we have sent nothing to
    /// for two minutes.
    pub(super) fn send_keepalives(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            if conn.is_active() && now.saturating_duration_since(conn.last_write) > KEEPALIVE_PERIOD
            {
                conn.send(&Message::KeepAlive, now);
            }
        }
    }
}
