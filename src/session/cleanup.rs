//! The cleanup, timeout, keepalive and send-haves phases.
//!
//! Layer 2. `cleanup` is the one place a connection is closed: it
//! deregisters the socket, gives back the peer's requests and availability,
//! and tells the peer list how it ended.

use std::time::{Duration, Instant};

use super::conn::Stage;
use super::Session;
use crate::close_reason::CloseReason;
use crate::trace::phase;
use crate::wire::Message;

/// How long a nonblocking connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a peer may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Silence after which a peer is dropped (BEP 3 keepalives come every two
/// minutes, so three minutes of nothing means it is gone).
const IDLE_TIMEOUT: Duration = Duration::from_secs(180);

/// Send a keepalive after this long without sending anything (BEP 3).
const KEEPALIVE_PERIOD: Duration = Duration::from_secs(120);

/// A request unanswered this long is given to another peer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A peer gets this long before its rate is judged.
const SLOW_PEER_GRACE: Duration = Duration::from_secs(30);

/// A peer slower than the median divided by this is replaced when others wait.
const SLOW_PEER_FACTOR: u64 = 10;

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
            for request in conn.peer.requested.drain(..) {
                self.partial_pieces.release(&request.block);
            }
            self.partial_pieces.disown(conn.addr);
            self.picker.remove_peer(&conn.peer.has);
            self.peers.disconnected(conn.addr, &reason, now);
            if self.optimistic == Some(key) {
                self.optimistic = None;
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
            let was_snubbed = conn.peer.snubbed;
            conn.peer.check_snubbed(now);
            if conn.peer.snubbed && !was_snubbed {
                log::info!(
                    "{}: snubbed us (nothing for a minute while unchoked)",
                    conn.addr
                );
            }
            if let (Some((tracer, _)), Some(reason), false) =
                (self.tracer.as_mut(), conn.closing.as_ref(), was_closing)
            {
                tracer.timeout(now, phase::CHECK_TIMEOUTS, conn.addr, reason);
            }
            let expired = conn.peer.take_expired(now, REQUEST_TIMEOUT);
            if !expired.is_empty() {
                self.partial_pieces.disown(conn.addr);
            }
            for block in expired {
                if let Some((tracer, _)) = self.tracer.as_mut() {
                    let what = format!(
                        "request #{} +{} unanswered for 15 s",
                        block.piece, block.begin
                    );
                    tracer.timeout(now, phase::CHECK_TIMEOUTS, conn.addr, &what);
                }
                log::debug!(
                    "{}: request for piece {} +{} timed out",
                    conn.addr,
                    block.piece,
                    block.begin
                );
                self.partial_pieces.release(&block);
            }
        }
    }

    /// Makes room for waiting candidates when every peer slot is taken: the
    /// slowest peer that unchokes us, if it gives us less than a tenth of
    /// the median, is dropped (at most one per call, every 30 s).
    pub(super) fn replace_slow_peers(&mut self, now: Instant) {
        if self.have.is_complete()
            || self.conns.len() < self.config.max_peers
            || !self.peers.has_candidates(now)
        {
            return;
        }
        let mut rates: Vec<(u64, usize)> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.is_active() && !c.peer.peer_choking)
            .filter(|(_, c)| now.saturating_duration_since(c.opened_at) > SLOW_PEER_GRACE)
            .map(|(k, c)| (c.peer.down.rate(now), k))
            .collect();
        if rates.len() < 3 {
            return;
        }
        rates.sort_unstable();
        let median = rates.get(rates.len() / 2).map_or(0, |r| r.0);
        if let Some(&(slowest, key)) = rates.first() {
            if slowest.saturating_mul(SLOW_PEER_FACTOR) < median {
                if let Some(conn) = self.conns.get_mut(key) {
                    log::info!("{}: dropped as slow ({slowest} B/s, median {median} B/s) to try another peer", conn.addr);
                    conn.close(CloseReason::SlowPeer {
                        rate: slowest,
                        median,
                    });
                }
            }
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

    /// Send-haves phase: a HAVE for each newly verified piece to every
    /// peer, then drop interest in peers that no longer have anything new.
    pub(super) fn send_haves(&mut self, now: Instant) {
        if self.pending_haves.is_empty() {
            return;
        }
        let haves = std::mem::take(&mut self.pending_haves);
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_active())
            .map(|(k, _)| k)
            .collect();
        if let Some((tracer, _)) = self.tracer.as_mut() {
            for &piece in &haves {
                tracer.have_broadcast(now, phase::SEND_HAVES, piece, keys.len());
            }
        }
        for &key in &keys {
            if let Some(conn) = self.conns.get_mut(key) {
                for &piece in &haves {
                    conn.send(&Message::Have { piece }, now);
                }
            }
            self.update_interest(key, now);
        }
    }
}
