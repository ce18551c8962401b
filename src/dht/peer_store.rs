//! The peers other nodes announced to us (`announce_peer`, BEP 5), which we
//! hand out in `get_peers` responses.
//!
//! Layer 0: pure (time is passed in). Bounded in every direction, since
//! anyone with a valid token may announce: at most [`MAX_INFO_HASHES`]
//! torrents, [`MAX_PEERS_PER_INFO_HASH`] peers each, every entry expiring
//! [`PEER_TTL`] after its last announce. A full store makes room by dropping
//! expired entries first, then the oldest.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::krpc::InfoHash;

/// Most torrents we keep peers for: 500 x 100 peers x ~40 bytes is about
/// 2 MB at worst, fine on a router.
pub const MAX_INFO_HASHES: usize = 500;

/// Most peers kept per torrent: twice what one response carries, so
/// repeated lookups see some variety.
pub const MAX_PEERS_PER_INFO_HASH: usize = 100;

/// How long an announce is kept: BEP 5 clients re-announce every 15 to 30
/// minutes, so a live peer is always refreshed within this.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

/// Most peers in one `get_peers` response: 50 compact peers are 300 bytes
/// of `values`, well inside one datagram.
pub const MAX_PEERS_PER_REPLY: usize = 50;

/// Announced peers, per info-hash.
#[derive(Debug, Clone, Default)]
pub struct PeerStore {
    torrents: HashMap<InfoHash, Vec<Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    peer: SocketAddrV4,
    announced: Instant,
}

impl PeerStore {
    /// An empty store.
    pub fn new() -> PeerStore {
        PeerStore::default()
    }

    /// Records that `peer` has `info_hash` (or refreshes its entry).
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddrV4, now: Instant) {
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= MAX_INFO_HASHES {
            self.expire(now);
            if self.torrents.len() >= MAX_INFO_HASHES {
                self.drop_stalest_torrent();
            }
        }
        let entries = self.torrents.entry(info_hash).or_default();
        if let Some(entry) = entries.iter_mut().find(|e| e.peer == peer) {
            entry.announced = now;
            return;
        }
        if entries.len() >= MAX_PEERS_PER_INFO_HASH {
            // The oldest announce goes: it is the likeliest to be gone.
            if let Some(oldest) =
                (0..entries.len()).min_by_key(|&i| entries.get(i).map(|e| e.announced))
            {
                entries.swap_remove(oldest);
            }
        }
        entries.push(Entry {
            peer,
            announced: now,
        });
    }

    /// Up to [`MAX_PEERS_PER_REPLY`] live peers of `info_hash`, the most
    /// recently announced first.
    pub fn peers(&self, info_hash: &InfoHash, now: Instant) -> Vec<SocketAddrV4> {
        let Some(entries) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<&Entry> = entries.iter().filter(|e| !expired(e, now)).collect();
        live.sort_by_key(|e| std::cmp::Reverse(e.announced));
        live.iter()
            .take(MAX_PEERS_PER_REPLY)
            .map(|e| e.peer)
            .collect()
    }

    /// Drops expired entries (and torrents left with none).
    pub fn expire(&mut self, now: Instant) {
        self.torrents.retain(|_, entries| {
            entries.retain(|e| !expired(e, now));
            !entries.is_empty()
        });
    }

    /// Torrents with at least one stored peer (expired ones included until
    /// the next [`PeerStore::expire`]).
    pub fn info_hashes(&self) -> usize {
        self.torrents.len()
    }

    fn drop_stalest_torrent(&mut self) {
        let stalest = self
            .torrents
            .iter()
            .min_by_key(|(_, entries)| entries.iter().map(|e| e.announced).max())
            .map(|(hash, _)| *hash);
        if let Some(hash) = stalest {
            self.torrents.remove(&hash);
        }
    }
}

fn expired(entry: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(entry.announced) >= PEER_TTL
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn peer(n: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8), 6881)
    }

    fn hash(n: u16) -> InfoHash {
        let mut h = [0u8; 20];
        h[..2].copy_from_slice(&n.to_be_bytes());
        h
    }

    #[test]
    fn announced_peers_are_returned_until_they_expire() {
        let t0 = Instant::now();
        let mut store = PeerStore::new();
        store.announce(hash(1), peer(1), t0);
        store.announce(hash(1), peer(2), t0 + Duration::from_secs(60));
        assert_eq!(
            store.peers(&hash(1), t0 + Duration::from_secs(60)),
            vec![peer(2), peer(1)]
        );
        assert!(store.peers(&hash(2), t0).is_empty());
        assert_eq!(store.peers(&hash(1), t0 + PEER_TTL), vec![peer(2)]);
        store.expire(t0 + PEER_TTL + Duration::from_secs(60));
        assert_eq!(store.info_hashes(), 0);
    }

    #[test]
    fn a_reannounce_refreshes_instead_of_duplicating() {
        let t0 = Instant::now();
        let mut store = PeerStore::new();
        store.announce(hash(1), peer(1), t0);
        store.announce(hash(1), peer(1), t0 + PEER_TTL / 2);
        assert_eq!(store.peers(&hash(1), t0 + PEER_TTL), vec![peer(1)]);
    }

    #[test]
    fn peers_per_info_hash_and_per_reply_are_capped() {
        let t0 = Instant::now();
        let mut store = PeerStore::new();
        for n in 0..300u16 {
            store.announce(hash(1), peer(n), t0 + Duration::from_millis(u64::from(n)));
        }
        let now = t0 + Duration::from_secs(1);
        let peers = store.peers(&hash(1), now);
        assert_eq!(peers.len(), MAX_PEERS_PER_REPLY);
        assert_eq!(peers[0], peer(299), "newest first");
        assert_eq!(store.torrents[&hash(1)].len(), MAX_PEERS_PER_INFO_HASH);
        assert!(
            !store.torrents[&hash(1)].iter().any(|e| e.peer == peer(0)),
            "oldest dropped"
        );
    }

    #[test]
    fn info_hashes_are_capped_dropping_the_stalest() {
        let t0 = Instant::now();
        let mut store = PeerStore::new();
        for n in 0..(MAX_INFO_HASHES as u16 + 10) {
            store.announce(hash(n), peer(1), t0 + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(store.info_hashes(), MAX_INFO_HASHES);
        assert!(store
            .peers(&hash(0), t0 + Duration::from_secs(1))
            .is_empty());
        let newest = hash(MAX_INFO_HASHES as u16 + 9);
        assert_eq!(
            store.peers(&newest, t0 + Duration::from_secs(1)),
            vec![peer(1)]
        );
    }
}
