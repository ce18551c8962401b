//! The announce phase: telling HTTP trackers about us and learning peers.
//!
//! Layer 2 driving layer 1. The announce is one blocking ureq call under
//! hard timeouts (connect 3 s, total 5 s), made from the loop as the design
//! says: while it runs no socket is served, so it is made at most once per
//! pass, and a dead tracker costs at most a few seconds before the next
//! URL is tried on a later pass. Failures back off exponentially.

use std::time::{Duration, Instant};

use super::{Config, Session};
use crate::metainfo::Metainfo;
use crate::tracker::http::{self, HttpTimeouts};
use crate::tracker::{AnnounceRequest, Event};

/// First delay after every tracker failed; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(15);

/// Longest delay between attempts when trackers keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// Peers asked for per announce (BEP 3 default 50; more helps a small box
/// fill its slots without asking again).
const NUMWANT: u32 = 80;

/// Timeouts for the final `stopped` announce on exit: short, since the
/// user is waiting and the tracker forgets us after a while anyway.
const STOPPED_TIMEOUTS: HttpTimeouts = HttpTimeouts {
    connect: Duration::from_secs(2),
    total: Duration::from_secs(3),
};

/// Where the session is with its trackers.
#[derive(Debug)]
pub(super) struct TrackerState {
    /// HTTP(S) announce URLs, tiers flattened in order.
    urls: Vec<String>,
    /// Index of the URL to try next.
    current: usize,
    /// When to announce next; `None` when there are no trackers.
    next_at: Option<Instant>,
    /// Consecutive failed attempts.
    failures: u32,
    /// A `started` announce succeeded.
    started: bool,
    /// A `completed` announce is owed.
    completed_due: bool,
    tracker_id: Option<String>,
}

impl TrackerState {
    /// Trackers from the torrent, unless the config turns them off.
    pub(super) fn new(meta: &Metainfo, config: &Config, now: Instant) -> TrackerState {
        let mut urls = Vec::new();
        if config.use_trackers {
            for url in meta.trackers.iter().flatten() {
                if url.to_ascii_lowercase().starts_with("udp://") {
                    log::info!(
                        "skipping UDP tracker {url}: only HTTP trackers are supported so far"
                    );
                } else {
                    urls.push(url.clone());
                }
            }
        }
        TrackerState {
            next_at: (!urls.is_empty()).then_some(now),
            urls,
            current: 0,
            failures: 0,
            started: false,
            completed_due: false,
            tracker_id: None,
        }
    }

    /// When the next announce is due.
    pub(super) fn next_announce(&self) -> Option<Instant> {
        self.next_at
    }
}

impl Session {
    /// Announce phase: when due, one blocking announce to the current
    /// tracker URL. Peers it returns join the known-peer list.
    pub(super) fn announce(&mut self, now: Instant) {
        if self.checking.is_some() || self.tracker.next_at.is_none_or(|at| at > now) {
            return;
        }
        let event = if !self.tracker.started {
            Event::Started
        } else if self.tracker.completed_due {
            Event::Completed
        } else {
            Event::Empty
        };
        let Some(url) = self.tracker.urls.get(self.tracker.current).cloned() else {
            return;
        };
        let request = self.announce_request(event);
        let started = Instant::now();
        let result = http::announce(&url, &request, &HttpTimeouts::default());
        let took = started.elapsed();
        let now = Instant::now();
        match result {
            Ok(reply) => {
                let added = reply.peers.iter().filter(|a| self.peers.add(**a)).count();
                log::info!(
                    "tracker {url}: {} peers ({added} new), next in {} s ({} ms)",
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
                self.tracker.failures = 0;
                let interval = reply
                    .min_interval
                    .map_or(reply.interval, |min| reply.interval.max(min));
                self.tracker.next_at = Some(now + interval);
                self.add_peers(now);
            }
            Err(e) => {
                log::warn!("tracker {url}: {e} ({} ms)", took.as_millis());
                self.tracker.failures += 1;
                self.tracker.current = (self.tracker.current + 1) % self.tracker.urls.len().max(1);
                let all_failed = self.tracker.failures as usize >= self.tracker.urls.len();
                self.tracker.next_at = Some(if all_failed {
                    let rounds = self.tracker.failures / self.tracker.urls.len().max(1) as u32;
                    now + FIRST_BACKOFF
                        .saturating_mul(1 << rounds.min(10))
                        .min(MAX_BACKOFF)
                } else {
                    now // next URL on the next pass
                });
            }
        }
    }

    /// The download completed: owe the tracker a `completed` event (only if
    /// it saw us start incomplete) and send it soon.
    pub(super) fn on_complete(&mut self, now: Instant) {
        if self.tracker.started {
            self.tracker.completed_due = true;
            if self.tracker.next_at.is_some() {
                self.tracker.next_at = Some(now);
            }
        }
    }

    /// On exit: the `completed` event if it is still owed (a download that
    /// finished and exits at once), then `stopped` so the tracker forgets us.
    /// Both use short timeouts.
    pub(super) fn announce_on_exit(&mut self) {
        if !self.tracker.started {
            return;
        }
        let Some(url) = self.tracker.urls.get(self.tracker.current).cloned() else {
            return;
        };
        let mut events = vec![Event::Stopped];
        if self.tracker.completed_due {
            events.insert(0, Event::Completed);
        }
        for event in events {
            let request = self.announce_request(event);
            if let Err(e) = http::announce(&url, &request, &STOPPED_TIMEOUTS) {
                log::debug!("tracker {url}: {event:?} announce failed: {e}");
                return;
            }
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
