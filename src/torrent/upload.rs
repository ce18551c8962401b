//! The upload side of the torrent core: the choke epoch and which queued
//! REQUEST to serve next.
//!
//! Layer 0. `rechoke` applies the pure choker's decision
//! ([`crate::choker`]) every ten seconds; `serve_next` hands the driver the
//! next block to read from disk for a peer, within the peer's share
//! (proportional share) and the global upload limit.

use std::time::{Duration, Instant};

use super::{Note, PeerKey, Torrent, RECHOKE_PERIOD};
use crate::choker::{self, Candidate, ChokerKind, ShareBudget, UPLOAD_SLOTS};
use crate::metainfo::Block;
use crate::ratelimit::TokenBucket;

/// How often the optimistic unchoke rotates (BEP 3: thirty seconds).
const OPTIMISTIC_PERIOD: Duration = Duration::from_secs(30);

/// Smallest upload budget proportional share divides when no limit is set
/// and little has been uploaded yet (it grows with the measured rate).
const PROPSHARE_MIN_BUDGET: u64 = 256 * 1024;

/// What [`Torrent::serve_next`] found for a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Read this block from disk and send it as a PIECE.
    Block(Block),
    /// Nothing for this peer now (queue empty, or its share of the upload
    /// is spent until the given time); others may still be served.
    PeerWaits(Option<Instant>),
    /// The global upload limit is spent until this time: stop serving.
    LimitSpent(Instant),
}

impl Torrent {
    /// A peer became interested: unchoke it at once if a regular slot is
    /// free, rather than making it wait for the next rechoke.
    pub(super) fn unchoke_if_slot_free(&mut self, key: PeerKey) {
        let unchoked = self
            .peers
            .values()
            .filter(|p| !p.closing && !p.state.am_choking())
            .count();
        // The regular slots plus the optimistic one.
        if unchoked > UPLOAD_SLOTS {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(unchoke) = peer.state.unchoke() else {
            return;
        };
        let addr = peer.addr;
        self.send_control(key, Some(unchoke));
        self.note(Note::Choke {
            addr,
            unchoke: true,
            why: "newly interested, and a slot is free".into(),
        });
    }

    /// Choke epoch: unchoke the best interested peers (by what they give
    /// us, or when seeding by what we give them) plus one optimistic peer
    /// rotated every thirty seconds; choke the rest. `stalled` says which
    /// peers stopped reading what we send (the driver sees the sockets).
    pub fn rechoke(&mut self, now: Instant, stalled: &dyn Fn(PeerKey) -> bool) {
        self.next_rechoke = now + RECHOKE_PERIOD;
        let seeding = self.is_complete();
        let mut candidates: Vec<Candidate> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| !p.closing)
            .map(|(&id, p)| Candidate {
                id,
                interested: p.state.peer_interested(),
                rate: if seeding {
                    p.state.up_rate(now)
                } else {
                    p.state.down_rate(now)
                },
                // Peers that stopped reading, and (leeching) peers that snub
                // us, are last in line for a slot.
                stalled: stalled(id) || (!seeding && p.state.snubbed()),
            })
            .collect();
        // Equal peers take turns: ties keep this (random) order.
        self.rng.shuffle(&mut candidates);
        // Seeding, the regular slots go round robin: who held one goes last.
        let held: Option<Vec<PeerKey>> = seeding.then(|| {
            self.peers
                .iter()
                .filter(|(&id, p)| {
                    !p.closing && !p.state.am_choking() && self.optimistic != Some(id)
                })
                .map(|(&id, _)| id)
                .collect()
        });
        let regular = self.regular(&candidates, held.as_deref());
        let optimistic_gone = self
            .optimistic
            .is_none_or(|id| self.peers.get(&id).is_none_or(|p| p.closing));
        if now >= self.next_optimistic || optimistic_gone {
            self.next_optimistic = now + OPTIMISTIC_PERIOD;
            self.optimistic = self.pick_optimistic(&candidates, &regular, seeding);
        }
        let unchoke = if self.config.choker == ChokerKind::PropShare && !seeding {
            self.propshare(&candidates, now)
        } else {
            self.regular_plus_optimistic(&candidates, held.as_deref())
        };
        for candidate in &candidates {
            let optimistic = self.optimistic == Some(candidate.id);
            let Some(peer) = self.peers.get_mut(&candidate.id) else {
                continue;
            };
            let should_unchoke = unchoke.contains(&candidate.id);
            peer.state.set_optimistic(optimistic);
            let (change, rejected) = if should_unchoke {
                (peer.state.unchoke(), Vec::new())
            } else {
                peer.state
                    .choke()
                    .map_or((None, Vec::new()), |(choke, rejected)| {
                        (Some(choke), rejected)
                    })
            };
            let Some(change) = change else {
                continue; // no change
            };
            let addr = peer.addr;
            self.send_control(candidate.id, Some(change));
            // BEP 6: each request dropped by the CHOKE gets its REJECT.
            for block in &rejected {
                self.reject(candidate.id, block);
            }
            let why = if optimistic {
                "optimistic unchoke".to_string()
            } else if candidate.stalled {
                "stopped reading or snubs us".to_string()
            } else {
                let whose = if seeding {
                    "seeding, slots take turns; we upload"
                } else {
                    "it gives us"
                };
                format!(
                    "{whose} {}/s, {} regular slots",
                    crate::units::format_bytes(candidate.rate),
                    UPLOAD_SLOTS
                )
            };
            self.note(Note::Choke {
                addr,
                unchoke: should_unchoke,
                why,
            });
        }
    }

    /// Tit for tat: the optimistic peer plus the [`UPLOAD_SLOTS`] best of
    /// the others. The optimistic slot is one more than the regular ones
    /// even once its peer rates among the best (as it soon does when we
    /// upload to it fast): counted as a regular, it would leave a slot idle
    /// until the next rotation, twenty seconds of every thirty.
    fn regular_plus_optimistic(
        &self,
        candidates: &[Candidate],
        held: Option<&[PeerKey]>,
    ) -> Vec<PeerKey> {
        let Some(optimistic) = self.optimistic else {
            return self.regular(candidates, held);
        };
        let others: Vec<Candidate> = candidates
            .iter()
            .filter(|c| c.id != optimistic)
            .copied()
            .collect();
        let mut unchoke = self.regular(&others, held);
        if candidates
            .iter()
            .any(|c| c.id == optimistic && c.interested)
        {
            unchoke.push(optimistic);
        }
        unchoke
    }

    /// A new optimistic peer. Seeding, peers we choke come first: the
    /// regular slots rotate ([`choker::seed_rechoke`]), and a peer that
    /// just gave its slot up, still unchoked, would otherwise often take
    /// the optimistic one, and no waiting peer would get it.
    fn pick_optimistic(
        &mut self,
        candidates: &[Candidate],
        regular: &[PeerKey],
        seeding: bool,
    ) -> Option<PeerKey> {
        if seeding {
            let choked: Vec<Candidate> = candidates
                .iter()
                .filter(|c| self.peers.get(&c.id).is_some_and(|p| p.state.am_choking()))
                .copied()
                .collect();
            if let Some(id) = choker::pick_optimistic(&choked, regular, &mut self.rng) {
                return Some(id);
            }
        }
        choker::pick_optimistic(candidates, regular, &mut self.rng)
    }

    /// The regular slots: by rate while leeching (tit for tat); round robin
    /// while seeding, given the peers that `held` a regular slot this epoch.
    fn regular(&self, candidates: &[Candidate], held: Option<&[PeerKey]>) -> Vec<PeerKey> {
        match held {
            Some(held) => choker::seed_rechoke(candidates, held, UPLOAD_SLOTS),
            None => choker::rechoke(candidates, UPLOAD_SLOTS, None),
        }
    }

    /// Proportional share: divide the upload budget among the peers in
    /// proportion to what they gave us (plus the optimistic peer's fixed
    /// part); each unchoked peer's share becomes its own token bucket.
    fn propshare(&mut self, candidates: &[Candidate], now: Instant) -> Vec<PeerKey> {
        let budget = self
            .config
            .max_up
            .unwrap_or_else(|| self.up_rate.rate(now).max(PROPSHARE_MIN_BUDGET));
        let shares =
            choker::propshare_allocation(candidates, &ShareBudget::new(budget), self.optimistic);
        let unchoke = choker::propshare_unchoke(&shares, UPLOAD_SLOTS + 1);
        for (&key, peer) in self.peers.iter_mut() {
            peer.upload_share = shares
                .iter()
                .find(|s| s.id == key && unchoke.contains(&key))
                .map(|s| TokenBucket::new(s.bytes_per_sec));
        }
        unchoke
    }

    /// The next queued REQUEST of the peer to serve, if its share and the
    /// global upload `limit` allow; the block is counted as uploaded. While
    /// we choke the peer only requests for its allowed-fast pieces (BEP 6)
    /// are served; they are the only ones left queued then.
    pub fn serve_next(
        &mut self,
        key: PeerKey,
        limit: Option<&mut TokenBucket>,
        now: Instant,
    ) -> Serve {
        if !self.has_requests_to_serve(key) {
            return Serve::PeerWaits(None);
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return Serve::PeerWaits(None);
        };
        let Some(block) = peer.state.pop_queued() else {
            return Serve::PeerWaits(None);
        };
        let len = u64::from(block.len);
        if let Some(share) = peer.upload_share.as_mut() {
            if !share.try_take(len, now) {
                peer.state.unpop_queued(block);
                return Serve::PeerWaits(Some(share.ready_at(len, now)));
            }
        }
        if let Some(limit) = limit {
            if !limit.try_take(len, now) {
                peer.state.unpop_queued(block);
                return Serve::LimitSpent(limit.ready_at(len, now));
            }
        }
        peer.state.block_sent(len, now);
        self.up_rate.add(len, now);
        self.stats.uploaded += len;
        Serve::Block(block)
    }
}
