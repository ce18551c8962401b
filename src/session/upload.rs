//! The upload path: choking decisions and serving queued REQUESTs.
//!
//! Layer 2. `rechoke` runs every ten seconds and applies the pure choker's
//! decision; `serve_requests` reads requested blocks from disk into each
//! unchoked peer's write buffer, a little at a time, so a slow reader never
//! makes us buffer much.

use std::time::{Duration, Instant};

use super::{Session, OPTIMISTIC_PERIOD};
use crate::choker::{self, Candidate, ChokerKind, ShareBudget, UPLOAD_SLOTS};
use crate::error::Error;
use crate::ratelimit::TokenBucket;
use crate::trace::phase;
use crate::wire::{encode_piece_header, Message};

/// A peer whose queued bytes have not moved for this long has stopped
/// reading; it loses its upload slot to peers that read.
const STALLED_AFTER: Duration = Duration::from_secs(10);

/// Smallest upload budget proportional share divides when no limit is set
/// and little has been uploaded yet (it grows with the measured rate).
const PROPSHARE_MIN_BUDGET: u64 = 256 * 1024;

/// Bytes queued in a peer's write buffer above which no more blocks are
/// read from disk for it (about 16 blocks: enough to keep a fast link busy
/// between two loop passes).
const WRITE_HIGH_WATER_BYTES: usize = 256 * 1024;

impl Session {
    /// A peer became interested: unchoke it at once if a regular slot is
    /// free, rather than making it wait for the next rechoke.
    pub(super) fn unchoke_if_slot_free(&mut self, key: usize, now: Instant) {
        let unchoked = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_active() && !c.peer.am_choking)
            .count();
        // The regular slots plus the optimistic one.
        if unchoked > UPLOAD_SLOTS {
            return;
        }
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.peer.am_choking {
                conn.peer.am_choking = false;
                conn.peer.requests_while_choked = 0;
                conn.send(&Message::Unchoke, now);
                if let Some((tracer, _)) = self.tracer.as_mut() {
                    tracer.choke(
                        now,
                        phase::RECEIVE,
                        conn.addr,
                        true,
                        "newly interested, and a slot is free",
                    );
                }
            }
        }
    }

    /// Choke epoch: every ten seconds, unchoke the best interested peers
    /// (by what they give us, or when seeding by what we give them) plus one
    /// optimistic peer rotated every thirty seconds; choke the rest.
    pub(super) fn rechoke(&mut self, now: Instant) {
        let seeding = self.have.is_complete();
        let mut candidates: Vec<Candidate> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.is_active())
            .map(|(id, c)| Candidate {
                id,
                interested: c.peer.peer_interested,
                rate: if seeding {
                    c.peer.up.rate(now)
                } else {
                    c.peer.down.rate(now)
                },
                // Peers that stopped reading, and (leeching) peers that snub
                // us, are last in line for a slot.
                stalled: c.is_stalled(now, STALLED_AFTER) || (!seeding && c.peer.snubbed),
            })
            .collect();
        // Equal peers take turns: ties keep this (random) order.
        self.rng.shuffle(&mut candidates);
        let regular = choker::rechoke(&candidates, UPLOAD_SLOTS, None);
        if now >= self.next_optimistic || self.optimistic.is_none_or(|id| !self.conns.contains(id))
        {
            self.next_optimistic = now + OPTIMISTIC_PERIOD;
            self.optimistic = choker::pick_optimistic(&candidates, &regular, &mut self.rng);
        }
        let unchoke = if self.config.choker == ChokerKind::PropShare && !seeding {
            self.propshare(&candidates, now)
        } else {
            choker::rechoke(&candidates, UPLOAD_SLOTS, self.optimistic)
        };
        for candidate in &candidates {
            let Some(conn) = self.conns.get_mut(candidate.id) else {
                continue;
            };
            let should_unchoke = unchoke.contains(&candidate.id);
            conn.peer.optimistic = self.optimistic == Some(candidate.id);
            let changed = should_unchoke == conn.peer.am_choking;
            if changed {
                if let Some((tracer, _)) = self.tracer.as_mut() {
                    let why = if conn.peer.optimistic {
                        "optimistic unchoke".to_string()
                    } else if candidate.stalled {
                        "stopped reading or snubs us".to_string()
                    } else {
                        let whose = if seeding { "we upload" } else { "it gives us" };
                        format!(
                            "{whose} {}/s, {} regular slots",
                            crate::units::format_bytes(candidate.rate),
                            UPLOAD_SLOTS
                        )
                    };
                    tracer.choke(now, phase::RECHOKE, conn.addr, should_unchoke, &why);
                }
            }
            if should_unchoke && conn.peer.am_choking {
                conn.peer.am_choking = false;
                conn.peer.requests_while_choked = 0;
                conn.send(&Message::Unchoke, now);
            } else if !should_unchoke && !conn.peer.am_choking {
                conn.peer.am_choking = true;
                conn.peer.queued.clear();
                conn.send(&Message::Choke, now);
            }
        }
    }

    /// Proportional share: divide the upload budget among the peers in
    /// proportion to what they gave us (plus the optimistic peer's fixed
    /// part); each unchoked peer's share becomes its own token bucket.
    fn propshare(&mut self, candidates: &[Candidate], now: Instant) -> Vec<usize> {
        let budget = self
            .config
            .max_up
            .unwrap_or_else(|| self.up_rate.rate(now).max(PROPSHARE_MIN_BUDGET));
        let shares =
            choker::propshare_allocation(candidates, &ShareBudget::new(budget), self.optimistic);
        let unchoke = choker::propshare_unchoke(&shares, UPLOAD_SLOTS + 1);
        for (key, conn) in self.conns.iter_mut() {
            conn.upload_share = shares
                .iter()
                .find(|s| s.id == key && unchoke.contains(&key))
                .map(|s| TokenBucket::new(s.bytes_per_sec));
        }
        unchoke
    }

    /// Whether some unchoked peer has queued requests and room in its write
    /// buffer, so serving could go on at once.
    pub(super) fn has_servable_requests(&self) -> bool {
        self.conns.iter().any(|(_, c)| {
            c.is_active()
                && !c.peer.am_choking
                && !c.peer.queued.is_empty()
                && c.write_buf.len() < WRITE_HIGH_WATER_BYTES
        })
    }

    /// Serves queued REQUESTs of unchoked peers from disk, one block per
    /// peer in turn (so a rate limit's tokens are shared fairly), until each
    /// peer's write buffer reaches the high-water mark, its queue is empty,
    /// or the upload limit runs dry. Returns the blocks served. Blocks on
    /// disk reads (page cache, usually).
    pub(super) fn serve_requests(&mut self, now: Instant) -> usize {
        let mut served = 0;
        let mut block_buf = Vec::new();
        let mut keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_active() && !c.peer.am_choking && !c.peer.queued.is_empty())
            .map(|(k, _)| k)
            .collect();
        // Start with a different peer each time.
        if !keys.is_empty() {
            let start = self.rng.below(keys.len());
            keys.rotate_left(start);
        }
        while !keys.is_empty() {
            keys.retain(|&key| {
                self.conns.get(key).is_some_and(|c| {
                    !c.peer.queued.is_empty() && c.write_buf.len() < WRITE_HIGH_WATER_BYTES
                })
            });
            let mut waiting = Vec::new();
            for &key in &keys {
                match self.serve_one(key, now, &mut block_buf) {
                    Serve::Served => served += 1,
                    Serve::PeerWaits => waiting.push(key),
                    Serve::Stop => return served,
                }
            }
            // A peer whose share is spent sits out the rest of this pass
            // (it used to stay in the round and spin the loop forever).
            keys.retain(|key| !waiting.contains(key));
        }
        served
    }

    /// Serves the next queued request of one peer.
    fn serve_one(&mut self, key: usize, now: Instant, block_buf: &mut Vec<u8>) -> Serve {
        let Some(conn) = self.conns.get_mut(key) else {
            return Serve::PeerWaits;
        };
        let Some(block) = conn.peer.queued.pop_front() else {
            return Serve::PeerWaits;
        };
        if let Some(share) = conn.upload_share.as_mut() {
            if !share.try_take(u64::from(block.len), now) {
                conn.peer.queued.push_front(block);
                let ready = share.ready_at(u64::from(block.len), now);
                self.throttled_until = Some(self.throttled_until.map_or(ready, |t| t.min(ready)));
                return Serve::PeerWaits;
            }
        }
        if let Some(limit) = self.up_limit.as_mut() {
            if !limit.try_take(u64::from(block.len), now) {
                conn.peer.queued.push_front(block);
                let ready = limit.ready_at(u64::from(block.len), now);
                self.throttled_until = Some(self.throttled_until.map_or(ready, |t| t.min(ready)));
                return Serve::Stop;
            }
        }
        let len = usize::try_from(block.len).unwrap_or(0);
        block_buf.resize(len, 0);
        if let Err(e) = self.storage.read(block.piece, block.begin, block_buf) {
            self.fatal.get_or_insert(Error::Storage(e));
            self.stopping = true;
            return Serve::Stop;
        }
        encode_piece_header(block.piece.get(), block.begin, len, &mut conn.write_buf);
        conn.log_sent(|| format!("PIECE #{} +{} ({len} B)", block.piece, block.begin));
        conn.write_buf.extend_from_slice(block_buf);
        conn.last_write = now;
        conn.peer.up.add(u64::from(block.len), now);
        self.up_rate.add(u64::from(block.len), now);
        self.stats.uploaded += u64::from(block.len);
        Serve::Served
    }
}

/// What [`Session::serve_one`] did.
enum Serve {
    /// One block went into the peer's write buffer.
    Served,
    /// Nothing for this peer now (queue empty, or its share of the upload
    /// spent under `--choker propshare`); others may still be served.
    PeerWaits,
    /// Stop serving this pass: the upload limit is spent, or the disk failed.
    Stop,
}
