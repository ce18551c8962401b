//! The announce phase: telling trackers about us and learning peers
//! (BEP 3 HTTP announce, BEP 15 UDP announce, BEP 12 tiers).
//!
//! Layer 2 driving layers 0 and 1. Trackers never hold each other up:
//!
//! - **Every tier at once.** [`Tiers`] (pure) schedules each tier on its own:
//!   its current URL in BEP 12 order, next announce time, interval, back-off
//!   and events (`started` first, `completed` when owed, `stopped` on exit).
//!   This module only does the network part for whichever tiers are due, and
//!   every tier may have one announce in flight at the same time. Peers from
//!   any tier join the peer list.
//! - **UDP** never blocks. Each tier's exchange has its own socket, connected
//!   to the tracker (a dead port on this machine fails at once with
//!   "connection refused"), and its own mio token, tier `i` using
//!   `UDP_TOKEN_TOP - i` (just below the listener's and the other fixed
//!   tokens at the top of the range, far above any connection's slab key).
//!   The pure [`UdpExchange`](crate::tracker::udp::UdpExchange) decides what
//!   to send and when, with
//!   [`ANNOUNCE_TIMEOUTS`](crate::tracker::udp::ANNOUNCE_TIMEOUTS): a
//!   tracker that never answers is given up after 28 s, and its tier moves
//!   on. This transport is in [`udp_transport`].
//! - **HTTP(S)** is one blocking ureq call under hard timeouts (connect 3 s,
//!   total 5 s, the name lookup inside it at most 2 s of that), made from
//!   the loop as the design allows. At most one per pass, so peers are
//!   served between two of them; and while peers are connected, the next
//!   one waits [`HTTP_SPACING_FACTOR`] times as long as the last one
//!   blocked, so five hung trackers cost a quarter of the loop's time, not
//!   25 s of frozen peers. A dead tracker's tier backs off (15 s doubling to
//!   30 min) and is not asked again every pass.
//! - **Name lookups** never run on the loop: [`Resolver`] looks names up on
//!   helper threads and wakes the loop through a mio `Waker` when one ends;
//!   the tier waits meanwhile, at most
//!   [`RESOLVE_TIMEOUT`](crate::tracker::resolve::RESOLVE_TIMEOUT). IP literals need
//!   no lookup. So no loop pass blocks on tracker work for longer than one
//!   HTTP announce's total timeout, 5 s.
//! - **On exit** `completed` (where owed), then `stopped`, go to every tier
//!   that saw `started`, the most recently answering first: HTTP with short
//!   timeouts and all of them within [`EXIT_BUDGET`], UDP as one
//!   fire-and-forget datagram when a fresh connection id is at hand.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Token, Waker};

use super::{Config, Session, TorrentId};
use crate::metainfo::Metainfo;
use crate::rng::Rng;
use crate::trace::phase;
use crate::tracker::http::{self, HttpTimeouts};
use crate::tracker::resolve::{Lookup, Resolver};
use crate::tracker::tiers::{Failover, Tiers, MAX_TIERS};
use crate::tracker::udp::{self, UdpConnection};
use crate::tracker::{AnnounceRequest, AnnounceResponse, Event, TrackerError};

mod udp_transport;

pub(super) use udp_transport::udp_tier;
use udp_transport::UdpInFlight;

/// The token of the waker that lookup threads use to wake the loop.
pub(super) const WAKE: Token = Token(usize::MAX - 1);

/// Re-announce delay when a tracker returned no peers and we have none:
/// the swarm may just be forming (seeders often start seconds after us).
/// The `left` we announce before a magnet's metadata arrives: any value
/// but 0 (which says "seed", and a tracker may send a seed no seeds): the
/// size of one metadata piece.
const LEFT_BEFORE_METADATA: u64 = 16 * 1024;

const EMPTY_SWARM_RETRY: Duration = Duration::from_secs(30);

/// Peers asked for per announce (BEP 3 default 50; more helps a small box
/// fill its slots without asking again).
const NUMWANT: u32 = 80;

/// While peers are connected, the next blocking HTTP announce waits this
/// many times as long as the last one blocked the loop: at most a quarter
/// of the loop's time goes to HTTP announces, however many trackers hang.
/// Without peers there is nobody to starve, and it does not wait.
const HTTP_SPACING_FACTOR: u32 = 3;

/// Timeouts for each final announce on exit: short, since the user is
/// waiting and the tracker forgets us after a while anyway.
const EXIT_TIMEOUTS: HttpTimeouts = HttpTimeouts {
    connect: Duration::from_secs(2),
    total: Duration::from_secs(3),
};

/// Longest all exit announces together may take: with several dead tiers
/// the later ones get what is left, or nothing, instead of each costing
/// [`EXIT_TIMEOUTS`] in turn.
const EXIT_BUDGET: Duration = Duration::from_secs(4);

/// How a tracker is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// BEP 15 over UDP, inside the loop.
    Udp,
    /// BEP 3 over HTTP(S), one blocking call.
    Http,
}

/// What one tier's announce in flight is waiting for.
#[derive(Debug)]
enum Flight {
    /// The tracker's host name is being looked up off the loop.
    Resolving {
        url: String,
        event: Event,
        transport: Transport,
        host: String,
        port: u16,
        since: Instant,
    },
    /// An HTTP announce ready to go, waiting for its turn to block the loop.
    HttpQueued {
        url: String,
        event: Event,
        queued_at: Instant,
    },
    /// A UDP exchange on its own socket (boxed: it is much the largest).
    Udp(Box<UdpInFlight>),
}

#[derive(Debug, Clone)]
struct Report {
    url: String,
    at: Instant,
    /// Peers received, or the error.
    result: Result<usize, String>,
    /// Seeders and leechers, when the tracker said.
    swarm: Option<(u32, u32)>,
}

/// The session's side of one tier: what is in flight and what it last said.
#[derive(Debug, Default)]
struct TierSlot {
    flight: Option<Flight>,
    last: Option<Report>,
    /// When this tier last answered (exit announces go to such tiers first).
    answered_at: Option<Instant>,
    /// The UDP tracker's address last used, for the farewell datagram.
    udp_target: Option<SocketAddr>,
}

/// Where the session is with its trackers.
#[derive(Debug)]
pub(super) struct TrackerState {
    tiers: Tiers,
    /// One per tier, same order.
    slots: Vec<TierSlot>,
    resolver: Resolver,
    /// UDP connection ids by tracker address (BEP 15: reusable for a minute).
    connections: HashMap<SocketAddr, UdpConnection>,
    /// The swarm size as the best-informed tracker reports it: (seeders, leechers).
    pub(super) swarm: Option<(u32, u32)>,
    /// One line about the trackers, for the TUI.
    pub(super) last_status: String,
}

impl TrackerState {
    /// The torrent's tiers plus the URLs given by hand, unless trackers are
    /// off, all due at `now`. Lookup threads wake the loop through a waker
    /// registered in `registry`.
    pub(super) fn new(
        meta: &Metainfo,
        config: &Config,
        now: Instant,
        rng: &mut Rng,
        waker: Arc<Waker>,
    ) -> io::Result<TrackerState> {
        let (tiers, by_hand) = if config.use_trackers {
            (meta.trackers.clone(), config.trackers.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        let tiers = Tiers::new(tiers, by_hand, rng, now);
        let resolver = Resolver::new(Arc::new(move || {
            // A failed wake only delays the answer to the next timer.
            let _ = waker.wake();
        }));
        Ok(TrackerState {
            slots: (0..tiers.len()).map(|_| TierSlot::default()).collect(),
            tiers,
            resolver,
            connections: HashMap::new(),
            swarm: None,
            last_status: String::from("no tracker contacted yet"),
        })
    }

    /// The tiers whose announce in flight is `wanted`.
    fn in_flight(&self, wanted: fn(&Flight) -> bool) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.flight.as_ref().is_some_and(wanted))
            .map(|(tier, _)| tier)
            .collect()
    }

    /// Whether an announce is outstanding: some tier has one in flight or
    /// has not been asked yet (false with no tracker in use).
    pub(super) fn awaiting_answer(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| slot.flight.is_some() || slot.last.is_none())
    }

    /// Makes every idle tier due at `now` (RPC `torrent-reannounce`).
    pub(super) fn reannounce(&mut self, now: Instant) {
        for index in 0..self.tiers.len() {
            if let Some(tier) = self.tiers.get_mut(index) {
                tier.announce_now(now);
            }
        }
    }

    /// Each tier as the RPC shows it (`trackers`, `trackerStats`).
    pub(super) fn views(&self, now: Instant) -> Vec<crate::rpc::view::TrackerView> {
        let unix = super::daemon::unix_now();
        let mut id = 0u32;
        let mut out = Vec::new();
        for (tier, (t, slot)) in self.tiers.iter().zip(&self.slots).enumerate() {
            let (seeders, leechers) = slot
                .last
                .as_ref()
                .and_then(|r| r.swarm)
                .map_or((-1, -1), |(s, l)| (i64::from(s), i64::from(l)));
            let last_time = slot.last.as_ref().map_or(0, |r| {
                let ago = now.saturating_duration_since(r.at).as_secs();
                unix.saturating_sub(i64::try_from(ago).unwrap_or(i64::MAX))
            });
            // When the tier announces next, as Unix time (0 while one is
            // in flight: the transport owns the timing then).
            let next_time = t.next_deadline().map_or(0, |at| {
                let wait = at.saturating_duration_since(now).as_secs();
                unix.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))
            });
            let result = match slot.last.as_ref().map(|r| &r.result) {
                Some(Ok(_)) => "Success".to_string(),
                Some(Err(e)) => e.clone(),
                None => String::new(),
            };
            for url in t.urls() {
                out.push(crate::rpc::view::TrackerView {
                    announce: url.clone(),
                    tier: u32::try_from(tier).unwrap_or(u32::MAX),
                    id,
                    host: tracker_host(url),
                    seeder_count: if url == t.current() { seeders } else { -1 },
                    leecher_count: if url == t.current() { leechers } else { -1 },
                    last_announce_result: if url == t.current() {
                        result.clone()
                    } else {
                        String::new()
                    },
                    next_announce_time: if url == t.current() { next_time } else { 0 },
                    last_announce_time: if url == t.current() { last_time } else { 0 },
                });
                id = id.saturating_add(1);
            }
        }
        out
    }

    /// The HTTP announces waiting for their turn.
    fn http_queued(&self) -> impl Iterator<Item = (usize, Instant)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(tier, slot)| match slot.flight {
                Some(Flight::HttpQueued { queued_at, .. }) => Some((tier, queued_at)),
                _ => None,
            })
    }

    /// Recomputes the status line's tracker text and swarm size from every
    /// tier's last report: the most recent success (or, with none, the most
    /// recent failure), and the largest swarm any tracker reports.
    fn refresh_status(&mut self) {
        let reports: Vec<&Report> = self.slots.iter().filter_map(|s| s.last.as_ref()).collect();
        let ok = reports.iter().filter(|r| r.result.is_ok()).count();
        let latest_ok = reports
            .iter()
            .filter(|r| r.result.is_ok())
            .max_by_key(|r| r.at);
        let shown = latest_ok.or_else(|| reports.iter().max_by_key(|r| r.at));
        if let Some(report) = shown {
            let what = match &report.result {
                Ok(peers) => format!("ok, {peers} peers"),
                Err(e) => e.clone(),
            };
            self.last_status = format!("{}: {what}", report.url);
            if self.slots.len() > 1 {
                let tiers = self.slots.len();
                self.last_status += &format!(" ({ok} of {tiers} tiers ok)");
            }
        }
        self.swarm = reports
            .iter()
            .filter_map(|r| r.swarm)
            .max_by_key(|(seeders, leechers)| u64::from(*seeders) + u64::from(*leechers));
    }
}

/// The host part of a tracker URL (`tracker.example.org:6969`), for the RPC.
fn tracker_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

// Every `tid` the functions below are given is a key of `self.torrents`:
// it comes from the loop's list of torrents, or from a UDP token checked in
// `receive_udp_tracker`, and nothing removes a torrent while the tracker
// code runs. So `self.torrents[tid]` cannot panic.
impl Session {
    /// When the tracker phase next needs the loop: an idle tier's next
    /// announce, a UDP retransmit or give-up, a name lookup's timeout, or
    /// the turn of a queued HTTP announce.
    pub(super) fn tracker_deadline(&self, tid: TorrentId) -> Option<Instant> {
        let tracker = &self.torrents.get(tid)?.tracker;
        let udp = tracker.slots.iter().filter_map(|slot| match &slot.flight {
            Some(Flight::Udp(flight)) => flight.exchange.next_deadline(),
            _ => None,
        });
        let http = tracker
            .http_queued()
            .map(|(_, queued_at)| self.http_turn_at().unwrap_or(queued_at));
        [
            tracker.tiers.next_deadline(),
            tracker.resolver.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .chain(udp)
        .chain(http)
        .min()
    }

    /// Announce phase: runs every pass, for each torrent whose start-up
    /// check is done. Takes in finished name lookups, drives UDP timers,
    /// starts an announce for every due tier (UDP ones go out at once), and
    /// makes at most one blocking HTTP announce for all torrents together,
    /// when its turn has come. Changes the tiers' schedules and adds the
    /// peers it learns to the known-peer lists. May block for one HTTP
    /// announce: 5 s at most.
    pub(super) fn announce(&mut self, now: Instant) {
        for tid in self.torrent_ids() {
            self.announce_torrent(tid, now);
        }
        self.http_turn(now);
    }

    /// The announce phase for torrent `tid`, but for the blocking HTTP turn.
    fn announce_torrent(&mut self, tid: TorrentId, now: Instant) {
        let Some(slot) = self.torrents.get(tid) else {
            return;
        };
        if slot.checking.is_some() || slot.paused || slot.tracker.tiers.is_empty() {
            return;
        }
        self.torrents[tid].tracker.resolver.poll(now);
        for tier in self.torrents[tid]
            .tracker
            .in_flight(|f| matches!(f, Flight::Udp(_)))
        {
            self.drive_udp(tid, tier, now);
        }
        for tier in self.torrents[tid].tracker.tiers.due(now) {
            self.begin_announce(tid, tier, now);
        }
        let resolving = self.torrents[tid]
            .tracker
            .in_flight(|f| matches!(f, Flight::Resolving { .. }));
        for tier in resolving {
            self.continue_lookup(tid, tier, now);
        }
    }

    /// Starts tier `tier`'s announce: its URL and event from the tier, then
    /// a name lookup (instant for an IP literal).
    fn begin_announce(&mut self, tid: TorrentId, tier: usize, now: Instant) {
        let Some((url, event)) = self.torrents[tid]
            .tracker
            .tiers
            .get_mut(tier)
            .and_then(|t| t.begin(now))
        else {
            return;
        };
        let parsed = if url.to_ascii_lowercase().starts_with("udp://") {
            udp::parse_udp_url(&url).map(|(host, port)| (Transport::Udp, host, port))
        } else {
            http::host_and_port(&url).map(|(host, port)| (Transport::Http, host, port))
        };
        let Some((transport, host, port)) = parsed else {
            let error = TrackerError::BadUrl("no host and port in the URL".into());
            return self.announce_done((tid, tier), &url, event, Err(error), Duration::ZERO, now);
        };
        self.set_flight(
            tid,
            tier,
            Flight::Resolving {
                url,
                event,
                transport,
                host,
                port,
                since: now,
            },
        );
        self.continue_lookup(tid, tier, now);
    }

    /// Tier `tier` is resolving its tracker's name: once the address is
    /// known, a UDP exchange starts or the HTTP announce joins the queue.
    fn continue_lookup(&mut self, tid: TorrentId, tier: usize, now: Instant) {
        let Some(tracker) = self.torrents.get_mut(tid).map(|s| &mut s.tracker) else {
            return;
        };
        let Some(Flight::Resolving {
            url,
            event,
            transport,
            host,
            port,
            ..
        }) = tracker.slots.get(tier).and_then(|s| s.flight.as_ref())
        else {
            return;
        };
        let (url, event, transport) = (url.clone(), *event, *transport);
        let lookup = tracker.resolver.lookup(host, *port, now);
        match lookup {
            Lookup::Pending => {}
            Lookup::Failed(why) => {
                self.take_flight(tid, tier);
                self.announce_done(
                    (tid, tier),
                    &url,
                    event,
                    Err(TrackerError::Transport(why)),
                    Duration::ZERO,
                    now,
                );
            }
            Lookup::Ready(target) => match transport {
                Transport::Udp => {
                    self.take_flight(tid, tier);
                    if let Err(e) = self.start_udp(tid, tier, &url, target, event, now) {
                        self.announce_done((tid, tier), &url, event, Err(e), Duration::ZERO, now);
                    }
                }
                Transport::Http => self.set_flight(
                    tid,
                    tier,
                    Flight::HttpQueued {
                        url,
                        event,
                        queued_at: now,
                    },
                ),
            },
        }
    }

    /// When the next blocking HTTP announce may start, if it must wait:
    /// only while peers are connected (nobody else to starve).
    fn http_turn_at(&self) -> Option<Instant> {
        if self.conns.is_empty() {
            None
        } else {
            self.http_not_before
        }
    }

    /// Makes at most one blocking HTTP announce, of any torrent: the one
    /// queued longest, once its turn has come. Blocks for at most the HTTP
    /// total timeout.
    fn http_turn(&mut self, now: Instant) {
        if self.http_turn_at().is_some_and(|at| at > now) {
            return;
        }
        let oldest = self
            .torrents
            .iter()
            .flat_map(|(tid, s)| {
                s.tracker
                    .http_queued()
                    .map(move |(tier, at)| (at, tid, tier))
            })
            .min();
        let Some((_, tid, tier)) = oldest else {
            return;
        };
        let Some(Flight::HttpQueued { url, event, .. }) = self.take_flight(tid, tier) else {
            return;
        };
        let request = self.announce_request(tid, tier, event);
        // The one blocking call of the loop's tracker work, bounded by
        // HttpTimeouts::default().total (5 s), name lookup included.
        let started = Instant::now();
        let result = http::announce_with(
            &url,
            &request,
            &HttpTimeouts::default(),
            self.config.tracker_ca.as_ref(),
        );
        let took = started.elapsed();
        let end = Instant::now();
        self.http_not_before = Some(end + took.saturating_mul(HTTP_SPACING_FACTOR));
        self.announce_done((tid, tier), &url, event, result, took, end);
    }

    /// The outcome of one announce of tier `tier`, from either transport.
    /// `took` is how long it ran: for HTTP, how long it blocked the loop.
    fn announce_done(
        &mut self,
        (tid, tier): (TorrentId, usize),
        url: &str,
        event: Event,
        result: Result<AnnounceResponse, TrackerError>,
        took: Duration,
        now: Instant,
    ) {
        self.trace_announce(url, event, &result, took, now);
        let report = Report {
            url: url.to_string(),
            at: now,
            result: result
                .as_ref()
                .map(|reply| reply.peers.len())
                .map_err(ToString::to_string),
            swarm: result
                .as_ref()
                .ok()
                .and_then(|r| r.complete.zip(r.incomplete)),
        };
        match result {
            Ok(reply) => self.announce_succeeded((tid, tier), url, event, reply, took, now),
            Err(e) => self.announce_failed(tid, tier, url, &e, took, now),
        }
        if let Some(slot) = self.torrents[tid].tracker.slots.get_mut(tier) {
            slot.last = Some(report);
        }
        self.torrents[tid].tracker.refresh_status();
    }

    /// A tracker answered: its peers join the list and its tier schedules
    /// the next announce.
    fn announce_succeeded(
        &mut self,
        (tid, tier): (TorrentId, usize),
        url: &str,
        event: Event,
        reply: AnnounceResponse,
        took: Duration,
        now: Instant,
    ) {
        let peer_list = self.torrents[tid].torrent.peer_list_mut();
        let added = reply.peers.iter().filter(|a| peer_list.add(**a)).count();
        log::info!(
            "tracker {url}: {event:?}: {} peers ({added} new), next in {} s ({} ms)",
            reply.peers.len(),
            reply.interval.as_secs(),
            took.as_millis()
        );
        if let Some(warning) = &reply.warning {
            log::warn!("tracker {url} warns: {}", warning.escape_debug());
        }
        let mut interval = reply
            .min_interval
            .map_or(reply.interval, |min| reply.interval.max(min));
        let lonely = reply.peers.is_empty()
            && self.conns.is_empty()
            && !self.torrents[tid].torrent.is_complete();
        if lonely {
            // Nobody to download from: ask again soon, not in half an hour.
            let soon = reply
                .min_interval
                .unwrap_or(EMPTY_SWARM_RETRY)
                .max(EMPTY_SWARM_RETRY);
            interval = interval.min(soon);
        }
        if let Some(t) = self.torrents[tid].tracker.tiers.get_mut(tier) {
            t.succeeded(now, interval, reply.tracker_id);
        }
        if let Some(slot) = self.torrents[tid].tracker.slots.get_mut(tier) {
            slot.answered_at = Some(now);
        }
        self.add_peers(now);
    }

    /// A tracker failed: its tier moves to its next URL or backs off.
    fn announce_failed(
        &mut self,
        tid: TorrentId,
        tier: usize,
        url: &str,
        error: &TrackerError,
        took: Duration,
        now: Instant,
    ) {
        let Some(t) = self.torrents[tid].tracker.tiers.get_mut(tier) else {
            return;
        };
        let then = match t.failed(now) {
            Failover::NextTracker => format!("trying {} next", t.current()),
            Failover::RoundFailed => format!("tier {} waits {} s", tier + 1, t.backoff().as_secs()),
        };
        log::warn!("tracker {url}: {error} ({} ms); {then}", took.as_millis());
    }

    /// Under `--trace`, one `tracker` line for an announce that ended.
    fn trace_announce(
        &mut self,
        url: &str,
        event: Event,
        result: &Result<AnnounceResponse, TrackerError>,
        took: Duration,
        now: Instant,
    ) {
        let Some((tracer, _)) = self.tracer.as_mut() else {
            return;
        };
        let error = result.as_ref().err().map(ToString::to_string);
        let outcome = match (result, &error) {
            (Ok(reply), _) => Ok(reply.peers.len()),
            (Err(_), Some(text)) => Err(text.as_str()),
            (Err(_), None) => Err(""),
        };
        let event_name = event.as_param().unwrap_or("");
        tracer.tracker(now, phase::ANNOUNCE, url, event_name, took, outcome);
    }

    /// The download completed: every tier that saw us start incomplete is
    /// owed `completed`, sent soon.
    pub(super) fn tell_trackers_complete(&mut self, tid: TorrentId, now: Instant) {
        self.torrents[tid].tracker.tiers.download_completed(now);
    }

    /// On exit: abandons announces still in flight (traced as such), then
    /// sends `completed` to every tier still owed one, then `stopped` to
    /// every tier that saw `started` (skipping an HTTP tier whose
    /// `completed` just failed), most recently answering tier first, all
    /// within [`EXIT_BUDGET`].
    pub(super) fn announce_on_exit(&mut self, tid: TorrentId) {
        self.abandon_flights(tid, Instant::now());
        let deadline = Instant::now() + EXIT_BUDGET;
        let mut order: Vec<usize> = (0..self.torrents[tid].tracker.tiers.len()).collect();
        order.sort_by_key(|tier| {
            std::cmp::Reverse(
                self.torrents[tid]
                    .tracker
                    .slots
                    .get(*tier)
                    .and_then(|s| s.answered_at),
            )
        });
        // Every `completed` before any `stopped`: two tiers may be one
        // tracker (its HTTP and UDP addresses), which would count a
        // `completed` arriving after our `stopped` as a second download.
        let mut gave_up = vec![false; order.len()];
        for round in [Event::Completed, Event::Stopped] {
            for &tier in &order {
                let Some(t) = self.torrents[tid].tracker.tiers.get(tier) else {
                    continue;
                };
                if !t.exit_events().contains(&round) || gave_up.get(tier) == Some(&true) {
                    continue;
                }
                let url = t.current().to_string();
                let request = self.announce_request(tid, tier, round);
                if url.to_ascii_lowercase().starts_with("udp://") {
                    self.udp_farewell(tid, tier, &request);
                } else if !self.http_farewell(&url, round, &request, deadline) {
                    if let Some(flag) = gave_up.get_mut(tier) {
                        *flag = true;
                    }
                }
            }
        }
    }

    /// Sends one exit announce over HTTP with what is left of the exit
    /// budget; whether it got through.
    fn http_farewell(
        &mut self,
        url: &str,
        event: Event,
        request: &AnnounceRequest,
        deadline: Instant,
    ) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("tracker {url}: no time left for the {event:?} announce");
            return false;
        }
        let timeouts = HttpTimeouts {
            connect: EXIT_TIMEOUTS.connect.min(left),
            total: EXIT_TIMEOUTS.total.min(left),
        };
        let started = Instant::now();
        let result = http::announce_with(url, request, &timeouts, self.config.tracker_ca.as_ref());
        let now = Instant::now();
        self.trace_announce(url, event, &result, now - started, now);
        if let Err(e) = &result {
            log::debug!("tracker {url}: {event:?} announce failed: {e}");
        }
        result.is_ok()
    }

    /// Drops every announce still in flight (the session is ending); under
    /// `--trace`, each is recorded as abandoned with how long it waited
    /// (for a name, for its HTTP turn, or for a UDP answer).
    pub(super) fn abandon_flights(&mut self, tid: TorrentId, now: Instant) {
        for tier in 0..self.torrents[tid].tracker.slots.len() {
            let (url, event, since) = match self.take_flight(tid, tier) {
                Some(Flight::Udp(mut flight)) => {
                    let _ = self.poll.registry().deregister(&mut flight.socket);
                    (flight.url, flight.event, flight.started)
                }
                Some(Flight::Resolving {
                    url, event, since, ..
                }) => (url, event, since),
                Some(Flight::HttpQueued {
                    url,
                    event,
                    queued_at,
                }) => (url, event, queued_at),
                None => continue,
            };
            let took = now.saturating_duration_since(since);
            if let Some((tracer, _)) = self.tracer.as_mut() {
                let event_name = event.as_param().unwrap_or("");
                let why = "abandoned at exit, no answer yet";
                tracer.tracker(now, phase::ANNOUNCE, &url, event_name, took, Err(why));
            }
        }
    }

    /// The `left` of an announce: the bytes not yet verified, or, before
    /// a magnet's metadata arrives (the size is unknown),
    /// [`LEFT_BEFORE_METADATA`], so trackers treat us as the leecher we are.
    fn left_to_announce(&self, tid: TorrentId) -> u64 {
        let core = &self.torrents[tid].torrent;
        if core.is_awaiting_metadata() {
            LEFT_BEFORE_METADATA
        } else {
            core.bytes_left()
        }
    }

    /// What we tell tier `tier`'s tracker in an announce with `event`.
    fn announce_request(&self, tid: TorrentId, tier: usize, event: Event) -> AnnounceRequest {
        let tracker_id = self.torrents[tid]
            .tracker
            .tiers
            .get(tier)
            .and_then(|t| t.tracker_id())
            .map(str::to_string);
        AnnounceRequest {
            info_hash: self.torrents[tid].meta.info_hash.0,
            peer_id: self.peer_id,
            port: self.listen_addr.port(),
            uploaded: self.torrents[tid].torrent.stats().uploaded,
            downloaded: self.torrents[tid].torrent.stats().downloaded,
            left: self.left_to_announce(tid),
            event,
            numwant: Some(NUMWANT),
            key: None,
            tracker_id,
            ipv6: crate::session::listen::announce_ipv6(self.listen_addr.ip()),
        }
    }

    /// Tier `tier`'s announce in flight, to drive it.
    fn flight_mut(&mut self, tid: TorrentId, tier: usize) -> Option<&mut Flight> {
        self.torrents[tid]
            .tracker
            .slots
            .get_mut(tier)
            .and_then(|s| s.flight.as_mut())
    }

    /// Takes tier `tier`'s announce in flight out of its slot.
    fn take_flight(&mut self, tid: TorrentId, tier: usize) -> Option<Flight> {
        self.torrents[tid]
            .tracker
            .slots
            .get_mut(tier)
            .and_then(|s| s.flight.take())
    }

    /// Puts `flight` in tier `tier`'s slot.
    fn set_flight(&mut self, tid: TorrentId, tier: usize, flight: Flight) {
        if let Some(slot) = self.torrents[tid].tracker.slots.get_mut(tier) {
            slot.flight = Some(flight);
        }
    }
}
