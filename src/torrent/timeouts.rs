//! The torrent core's clock-driven rules: requests that went unanswered,
//! peers that snub us, and slow peers replaced when others wait.
//!
//! Layer 0: `now` is passed in. The connection-level timeouts (connect,
//! handshake, silence, a peer that stops reading) belong to the session,
//! which owns the sockets.

use std::time::{Duration, Instant};

use super::{Note, PeerKey, Torrent, CHECK_PERIOD};
use crate::close_reason::CloseReason;

/// A request unanswered this long is given to another peer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A peer gets this long before its rate is judged.
const SLOW_PEER_GRACE: Duration = Duration::from_secs(30);

/// A peer slower than the median divided by this is replaced when others wait.
const SLOW_PEER_FACTOR: u64 = 10;

impl Torrent {
    /// Timeouts: stale requests go back to the pool (another peer may take
    /// them), and peers that unchoked us but send nothing are snubbed.
    pub fn check_timeouts(&mut self, now: Instant) {
        self.next_check = now + CHECK_PERIOD;
        self.check_metadata_timeouts(now);
        let mut notes = Vec::new();
        for peer in self.peers.values_mut().filter(|p| !p.closing) {
            if peer.state.check_snubbed(now) {
                log::info!(
                    "{}: snubbed us (nothing for a minute while unchoked)",
                    peer.addr
                );
            }
            let expired = peer.state.take_expired(now, REQUEST_TIMEOUT);
            if !expired.is_empty() {
                self.partial_pieces.disown(peer.addr);
            }
            for block in expired {
                notes.push(Note::Timeout {
                    addr: peer.addr,
                    what: format!(
                        "request #{} +{} unanswered for {} s",
                        block.piece,
                        block.begin,
                        REQUEST_TIMEOUT.as_secs()
                    ),
                });
                log::debug!(
                    "{}: request for piece {} +{} timed out",
                    peer.addr,
                    block.piece,
                    block.begin
                );
                self.partial_pieces.release(&block);
            }
        }
        for note in notes {
            self.note(note);
        }
    }

    /// Makes room for waiting candidates when every peer slot is taken: the
    /// slowest peer that unchokes us, if it gives us less than a tenth of
    /// the median, is dropped (at most one per call, every 30 s).
    pub fn replace_slow_peers(&mut self, now: Instant) {
        if self.is_complete()
            || self.peer_count() < self.config.max_peers
            || !self.peer_list.has_candidates(now)
        {
            return;
        }
        let mut rates: Vec<(u64, PeerKey)> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| !p.closing && !p.state.peer_choking())
            .filter(|(_, p)| now.saturating_duration_since(p.joined_at) > SLOW_PEER_GRACE)
            .map(|(&k, p)| (p.state.down_rate(now), k))
            .collect();
        if rates.len() < 3 {
            return;
        }
        rates.sort_unstable();
        let median = rates.get(rates.len() / 2).map_or(0, |r| r.0);
        if let Some(&(slowest, key)) = rates.first() {
            if slowest.saturating_mul(SLOW_PEER_FACTOR) < median {
                if let Some(peer) = self.peers.get(&key) {
                    log::info!(
                        "{}: dropped as slow ({slowest} B/s, median {median} B/s) to try another peer",
                        peer.addr
                    );
                }
                self.close(
                    key,
                    CloseReason::SlowPeer {
                        rate: slowest,
                        median,
                    },
                );
            }
        }
    }
}
