//! What the built-in tracker knows: the swarms, the peers in each, and the
//! bencoded replies built from them.
//!
//! Layer 0: pure (no I/O, no clock: `now` and the [`Rng`] are passed in).
//! Implements the tracker's side of BEP 3 ("Trackers"): peers announce, get
//! other peers back, and are forgotten when they stop or fall silent; the
//! compact peer lists of BEP 23 and `peers6` of BEP 7; the scrape counts of
//! BEP 48. The UDP codec of BEP 15 uses the same state.
//!
//! Invariants:
//!
//! - A peer is identified by the address its announce came from and the port
//!   it announced, never by an address it claims (see
//!   [`http_request`](super::http_request)). IPv4-mapped IPv6 sources
//!   (`::ffff:a.b.c.d`, from a dual-stack socket) are stored as IPv4.
//! - Every collection is bounded by [`Limits`]: when one is full, a *new*
//!   swarm or peer is refused with a [`TrackerFailure`] while known peers keep
//!   announcing. Memory never grows with what strangers send.
//! - An announcer never gets itself back (neither its address nor its peer id).
//! - With an allow-list, an unknown info-hash is refused before anything is
//!   stored, so strangers cannot use a LAN tracker for their own torrents.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::http_request::AnnounceParams;
use crate::bencode::{self, Dict, List, Value};
use crate::rng::Rng;
use crate::tracker::announce::Event;

/// How often peers should announce: one minute, because this tracker serves
/// a LAN or loopback where announces are nearly free and a new peer should
/// find the swarm quickly (public trackers use 30 minutes to spare their
/// bandwidth). pollen's client never announces more often than this anyway.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(60);

/// The `min interval` we send: clients should not announce more often than
/// this even when the user asks for it, so a stuck "update tracker" button
/// cannot flood us.
pub const MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(30);

/// A peer not heard from for this long is forgotten: two intervals, so one
/// lost or late announce does not drop a live peer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// How often the server should call [`TrackerState::expire`]: a dead peer is
/// handed out for at most [`PEER_TIMEOUT`] plus this.
pub const EXPIRE_PERIOD: Duration = Duration::from_secs(10);

/// Most swarms tracked at once. A LAN shares a few hundred torrents at most;
/// the cap stops a stranger from filling memory with made-up info-hashes.
pub const MAX_SWARMS: usize = 10_000;

/// Most peers in one swarm. Far above any LAN swarm; it bounds the work of
/// one announce (peers are picked from the whole swarm).
pub const MAX_PEERS_PER_SWARM: usize = 5_000;

/// Most peers across all swarms: about 100 bytes each, so the peer table
/// stays within a few megabytes even on a small NAS or router.
pub const MAX_PEERS_TOTAL: usize = 50_000;

/// The caps on what the tracker stores (tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most swarms at once ([`MAX_SWARMS`]).
    pub max_swarms: usize,
    /// Most peers in one swarm ([`MAX_PEERS_PER_SWARM`]).
    pub max_peers_per_swarm: usize,
    /// Most peers across all swarms ([`MAX_PEERS_TOTAL`]).
    pub max_peers_total: usize,
}

impl Limits {
    /// The caps of a real tracker: [`MAX_SWARMS`], [`MAX_PEERS_PER_SWARM`],
    /// [`MAX_PEERS_TOTAL`].
    pub const DEFAULT: Limits = Limits {
        max_swarms: MAX_SWARMS,
        max_peers_per_swarm: MAX_PEERS_PER_SWARM,
        max_peers_total: MAX_PEERS_TOTAL,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// How the tracker behaves, fixed at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    /// The only info-hashes served (`--allow FILE.torrent`), or `None` to
    /// serve any.
    pub allow: Option<BTreeSet<[u8; 20]>>,
    /// Hand out the peers that report the most `uploaded` first, instead of a
    /// random choice: rewards peers that share.
    pub rank_by_upload: bool,
    /// The caps on what is stored.
    pub limits: Limits,
}

/// Why an announce was refused; the text is the `failure reason` sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerFailure {
    /// The info-hash is not on the allow-list.
    NotAllowed,
    /// The announce would start a new swarm, and the tracker already tracks
    /// as many as it may.
    TooManySwarms {
        /// The cap.
        limit: usize,
    },
    /// The swarm already holds as many peers as it may.
    SwarmFull {
        /// The cap.
        limit: usize,
    },
    /// The tracker already holds as many peers in all as it may.
    TrackerFull {
        /// The cap.
        limit: usize,
    },
}

impl fmt::Display for TrackerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerFailure::NotAllowed => f.write_str("torrent not tracked here"),
            TrackerFailure::TooManySwarms { limit } => {
                write!(f, "tracker is full: already tracking {limit} torrents")
            }
            TrackerFailure::SwarmFull { limit } => {
                write!(f, "swarm is full: already {limit} peers")
            }
            TrackerFailure::TrackerFull { limit } => {
                write!(f, "tracker is full: already {limit} peers")
            }
        }
    }
}

impl std::error::Error for TrackerFailure {}

/// One peer handed out in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyPeer {
    /// Where to connect to it.
    pub addr: SocketAddr,
    /// The peer id it announced with.
    pub peer_id: [u8; 20],
}

/// The answer to a successful announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    /// When to announce again ([`ANNOUNCE_INTERVAL`]).
    pub interval: Duration,
    /// The shortest time between announces ([`MIN_ANNOUNCE_INTERVAL`]).
    pub min_interval: Duration,
    /// Peers in the swarm with nothing left to download, the announcer
    /// included.
    pub seeders: usize,
    /// Peers in the swarm still downloading, the announcer included.
    pub leechers: usize,
    /// Other peers of the swarm, at most `numwant`; empty after `stopped`.
    pub peers: Vec<ReplyPeer>,
}

/// The counts of one swarm in a scrape (BEP 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeEntry {
    /// The torrent's info-hash.
    pub info_hash: [u8; 20],
    /// Peers with the whole torrent (`complete`).
    pub seeders: usize,
    /// Peers still downloading (`incomplete`).
    pub leechers: usize,
    /// `completed` events counted since the swarm was created (`downloaded`).
    pub completed: u64,
}

/// Which peers an announce may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// IPv4 and IPv6 (HTTP: `peers` and `peers6` can carry both).
    Any,
    /// Only the family of the request (a UDP reply carries one, BEP 15).
    SameAs(IpAddr),
}

/// What the tracker remembers about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerEntry {
    peer_id: [u8; 20],
    left: u64,
    uploaded: u64,
    last_seen: Instant,
}

/// The peers of one torrent and its counters. `seeders` always equals the
/// number of entries with `left == 0`; only `put` and `take` change entries.
#[derive(Debug, Clone, Default)]
struct Swarm {
    peers: BTreeMap<SocketAddr, PeerEntry>,
    seeders: usize,
    completed: u64,
}

impl Swarm {
    /// Inserts or replaces the entry at `addr`, returning the old one.
    fn put(&mut self, addr: SocketAddr, entry: PeerEntry) -> Option<PeerEntry> {
        let old = self.peers.insert(addr, entry);
        self.seeders += usize::from(entry.left == 0);
        self.seeders -= usize::from(old.is_some_and(|old| old.left == 0));
        old
    }

    /// Removes the entry at `addr`, if any.
    fn take(&mut self, addr: &SocketAddr) -> Option<PeerEntry> {
        let old = self.peers.remove(addr)?;
        self.seeders -= usize::from(old.left == 0);
        Some(old)
    }

    fn leechers(&self) -> usize {
        self.peers.len() - self.seeders
    }
}

/// All swarms of the built-in tracker.
#[derive(Debug, Clone)]
pub struct TrackerState {
    config: TrackerConfig,
    swarms: BTreeMap<[u8; 20], Swarm>,
    peers_total: usize,
}

impl TrackerState {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> TrackerState {
        TrackerState {
            config,
            swarms: BTreeMap::new(),
            peers_total: 0,
        }
    }

    /// Number of swarms tracked (empty ones included until
    /// [`expire`](Self::expire) drops them).
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers across all swarms.
    pub fn peer_count(&self) -> usize {
        self.peers_total
    }

    /// Whether `info_hash` may be tracked.
    pub fn is_allowed(&self, info_hash: &[u8; 20]) -> bool {
        self.config
            .allow
            .as_ref()
            .is_none_or(|allow| allow.contains(info_hash))
    }

    /// Handles one announce from `source_ip`: records the peer (or forgets it
    /// on `stopped`), counts a `completed`, and picks up to `numwant` other
    /// peers (at random, or by `uploaded` with
    /// [`rank_by_upload`](TrackerConfig::rank_by_upload)).
    pub fn announce(
        &mut self,
        source_ip: IpAddr,
        params: &AnnounceParams,
        now: Instant,
        rng: &mut Rng,
    ) -> Result<AnnounceReply, TrackerFailure> {
        self.announce_for(source_ip, params, now, rng, Family::Any)
    }

    /// [`announce`](Self::announce), handing out only peers of `family`.
    pub(super) fn announce_for(
        &mut self,
        source_ip: IpAddr,
        params: &AnnounceParams,
        now: Instant,
        rng: &mut Rng,
        family: Family,
    ) -> Result<AnnounceReply, TrackerFailure> {
        if !self.is_allowed(&params.info_hash) {
            return Err(TrackerFailure::NotAllowed);
        }
        let addr = SocketAddr::new(source_ip.to_canonical(), params.port);
        if params.event == Event::Stopped {
            self.stop(&params.info_hash, &addr);
            let (seeders, leechers) = self
                .swarms
                .get(&params.info_hash)
                .map_or((0, 0), |swarm| (swarm.seeders, swarm.leechers()));
            return Ok(reply(seeders, leechers, Vec::new()));
        }
        self.record(addr, params, now)?;
        let Some(swarm) = self.swarms.get(&params.info_hash) else {
            // `record` succeeded, so the swarm exists; answer sanely anyway.
            return Ok(reply(0, 0, Vec::new()));
        };
        let peers = self.pick_peers(swarm, addr, params, family, rng);
        Ok(reply(swarm.seeders, swarm.leechers(), peers))
    }

    /// Forgets the peer at `addr` in the swarm of `info_hash`, if known.
    fn stop(&mut self, info_hash: &[u8; 20], addr: &SocketAddr) {
        let removed = self
            .swarms
            .get_mut(info_hash)
            .and_then(|swarm| swarm.take(addr));
        if removed.is_some() {
            self.peers_total -= 1;
        }
    }

    /// Inserts or refreshes the announcer, checking the caps before anything
    /// new is stored.
    fn record(
        &mut self,
        addr: SocketAddr,
        params: &AnnounceParams,
        now: Instant,
    ) -> Result<(), TrackerFailure> {
        let limits = self.config.limits;
        let known = self
            .swarms
            .get(&params.info_hash)
            .map(|swarm| swarm.peers.contains_key(&addr));
        match known {
            Some(true) => {}
            Some(false) => {
                let swarm_len = self
                    .swarms
                    .get(&params.info_hash)
                    .map_or(0, |swarm| swarm.peers.len());
                if swarm_len >= limits.max_peers_per_swarm {
                    return Err(TrackerFailure::SwarmFull {
                        limit: limits.max_peers_per_swarm,
                    });
                }
                self.check_total()?;
            }
            None => {
                if self.swarms.len() >= limits.max_swarms {
                    return Err(TrackerFailure::TooManySwarms {
                        limit: limits.max_swarms,
                    });
                }
                if limits.max_peers_per_swarm == 0 {
                    return Err(TrackerFailure::SwarmFull { limit: 0 });
                }
                self.check_total()?;
            }
        }
        let swarm = self.swarms.entry(params.info_hash).or_default();
        let entry = PeerEntry {
            peer_id: params.peer_id,
            left: params.left,
            uploaded: params.uploaded,
            last_seen: now,
        };
        let old = swarm.put(addr, entry);
        // Count a download once per peer: a seeder repeating `completed`
        // does not inflate the counter.
        if params.event == Event::Completed && old.is_none_or(|old| old.left > 0) {
            swarm.completed = swarm.completed.saturating_add(1);
        }
        if old.is_none() {
            self.peers_total += 1;
        }
        Ok(())
    }

    /// Refuses a new peer when the tracker-wide cap is reached.
    fn check_total(&self) -> Result<(), TrackerFailure> {
        let limit = self.config.limits.max_peers_total;
        if self.peers_total >= limit {
            return Err(TrackerFailure::TrackerFull { limit });
        }
        Ok(())
    }

    /// Up to `params.numwant` peers of `swarm` other than the announcer.
    fn pick_peers(
        &self,
        swarm: &Swarm,
        me: SocketAddr,
        params: &AnnounceParams,
        family: Family,
        rng: &mut Rng,
    ) -> Vec<ReplyPeer> {
        let mut candidates: Vec<(&SocketAddr, &PeerEntry)> = swarm
            .peers
            .iter()
            .filter(|(addr, entry)| **addr != me && entry.peer_id != params.peer_id)
            .filter(|(addr, _)| match family {
                Family::Any => true,
                Family::SameAs(ip) => addr.is_ipv4() == ip.to_canonical().is_ipv4(),
            })
            .collect();
        let wanted = params.numwant.min(candidates.len());
        if self.config.rank_by_upload {
            // Most uploaded first; the address breaks ties so replies are stable.
            candidates.sort_by(|a, b| b.1.uploaded.cmp(&a.1.uploaded).then(a.0.cmp(b.0)));
        } else {
            // A partial Fisher-Yates shuffle: a uniform choice of `wanted`.
            for i in 0..wanted {
                let j = i + rng.below(candidates.len() - i);
                candidates.swap(i, j);
            }
        }
        candidates.truncate(wanted);
        candidates
            .into_iter()
            .map(|(addr, entry)| ReplyPeer {
                addr: *addr,
                peer_id: entry.peer_id,
            })
            .collect()
    }

    /// Forgets every peer not seen for more than [`PEER_TIMEOUT`], then drops
    /// swarms left empty (unless allow-listed, which keeps their `completed`
    /// count; their number is bounded by the list). Returns how many peers
    /// were forgotten.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        for swarm in self.swarms.values_mut() {
            let stale: Vec<SocketAddr> = swarm
                .peers
                .iter()
                .filter(|(_, entry)| now.saturating_duration_since(entry.last_seen) > PEER_TIMEOUT)
                .map(|(addr, _)| *addr)
                .collect();
            for addr in &stale {
                if swarm.take(addr).is_some() {
                    removed += 1;
                }
            }
        }
        self.peers_total -= removed;
        let allow = &self.config.allow;
        self.swarms.retain(|hash, swarm| {
            !swarm.peers.is_empty() || allow.as_ref().is_some_and(|allow| allow.contains(hash))
        });
        removed
    }

    /// The counts of each requested swarm (BEP 48). A hash that may be
    /// tracked but has no swarm gets zeros; one refused by the allow-list is
    /// left out. An empty request (a "full scrape") gets nothing: listing
    /// every info-hash would tell anyone on the LAN what everyone shares.
    pub fn scrape(&self, info_hashes: &[[u8; 20]]) -> Vec<ScrapeEntry> {
        let mut entries: Vec<ScrapeEntry> = Vec::new();
        for hash in info_hashes {
            if !self.is_allowed(hash) || entries.iter().any(|e| e.info_hash == *hash) {
                continue;
            }
            let swarm = self.swarms.get(hash);
            entries.push(ScrapeEntry {
                info_hash: *hash,
                seeders: swarm.map_or(0, |s| s.seeders),
                leechers: swarm.map_or(0, Swarm::leechers),
                completed: swarm.map_or(0, |s| s.completed),
            });
        }
        entries
    }
}

/// A reply with the tracker's intervals.
fn reply(seeders: usize, leechers: usize, peers: Vec<ReplyPeer>) -> AnnounceReply {
    AnnounceReply {
        interval: ANNOUNCE_INTERVAL,
        min_interval: MIN_ANNOUNCE_INTERVAL,
        seeders,
        leechers,
        peers,
    }
}

/// A count as a bencode integer (saturating; counts are far below `i64::MAX`).
fn int<T>(n: T) -> Value<'static>
where
    i64: TryFrom<T>,
{
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The peers as compact strings: 6-byte IPv4 entries for `peers` (BEP 23)
/// and 18-byte IPv6 entries for `peers6` (BEP 7), each address then the
/// port big-endian.
pub fn compact_peers(peers: &[ReplyPeer]) -> (Vec<u8>, Vec<u8>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for peer in peers {
        match peer.addr.ip() {
            IpAddr::V4(ip) => {
                v4.extend_from_slice(&ip.octets());
                v4.extend_from_slice(&peer.addr.port().to_be_bytes());
            }
            IpAddr::V6(ip) => {
                v6.extend_from_slice(&ip.octets());
                v6.extend_from_slice(&peer.addr.port().to_be_bytes());
            }
        }
    }
    (v4, v6)
}

/// The bencoded body of a successful announce (BEP 3).
///
/// Compact (BEP 23): `peers` holds the IPv4 peers, 6 bytes each, and
/// `peers6` the IPv6 ones, 18 bytes each, present only when there are any.
/// Otherwise `peers` is a list of dictionaries with `ip` (text), `port` and,
/// unless `no_peer_id`, `peer id`. `complete`/`incomplete` are the seeder and
/// leecher counts.
pub fn encode_announce_reply(reply: &AnnounceReply, compact: bool, no_peer_id: bool) -> Vec<u8> {
    let (v4, v6) = compact_peers(&reply.peers);
    let ips: Vec<String> = reply
        .peers
        .iter()
        .map(|p| p.addr.ip().to_string())
        .collect();
    let peers = if compact {
        Value::Bytes(&v4)
    } else {
        let dicts = reply
            .peers
            .iter()
            .zip(&ips)
            .map(|(peer, ip)| {
                let mut entries = vec![
                    (b"ip".as_slice(), Value::Bytes(ip.as_bytes())),
                    (b"port".as_slice(), int(peer.addr.port())),
                ];
                if !no_peer_id {
                    entries.push((b"peer id".as_slice(), Value::Bytes(&peer.peer_id)));
                }
                Value::Dict(Dict::new(entries))
            })
            .collect();
        Value::List(List::new(dicts))
    };
    let mut entries = vec![
        (b"interval".as_slice(), int(reply.interval.as_secs())),
        (
            b"min interval".as_slice(),
            int(reply.min_interval.as_secs()),
        ),
        (b"complete".as_slice(), int(reply.seeders)),
        (b"incomplete".as_slice(), int(reply.leechers)),
        (b"peers".as_slice(), peers),
    ];
    if compact && !v6.is_empty() {
        entries.push((b"peers6".as_slice(), Value::Bytes(&v6)));
    }
    bencode::encode(&Value::Dict(Dict::new(entries)))
}

/// The bencoded body of a scrape (BEP 48): `files` maps each raw info-hash to
/// `complete`, `incomplete` and `downloaded`.
pub fn encode_scrape_reply(entries: &[ScrapeEntry]) -> Vec<u8> {
    let files = entries
        .iter()
        .map(|entry| {
            let counts = Dict::new(vec![
                (b"complete".as_slice(), int(entry.seeders)),
                (b"incomplete".as_slice(), int(entry.leechers)),
                (b"downloaded".as_slice(), int(entry.completed)),
            ]);
            (entry.info_hash.as_slice(), Value::Dict(counts))
        })
        .collect();
    bencode::encode(&Value::Dict(Dict::new(vec![(
        b"files".as_slice(),
        Value::Dict(Dict::new(files)),
    )])))
}

#[cfg(test)]
mod tests;
