//! The upload path's I/O: the choke epoch's phase, and serving queued
//! REQUESTs from disk.
//!
//! Layer 2. The torrent core decides who is unchoked and which block each
//! peer gets next ([`crate::torrent::Torrent::rechoke`],
//! [`crate::torrent::Torrent::serve_next`]); `serve_requests` reads those
//! blocks from disk into each unchoked peer's write buffer, a little at a
//! time, so a slow reader never makes us buffer much.

use std::time::{Duration, Instant};

use super::Session;
use crate::error::Error;
use crate::torrent::Serve;
use crate::wire::encode_piece_header;

/// A peer whose queued bytes have not moved for this long has stopped
/// reading; it loses its upload slot to peers that read.
pub(super) const STALLED_AFTER: Duration = Duration::from_secs(10);

/// Bytes queued in a peer's write buffer above which no more blocks are
/// read from disk for it (about 16 blocks: enough to keep a fast link busy
/// between two loop passes).
const WRITE_HIGH_WATER_BYTES: usize = 256 * 1024;

impl Session {
    /// Choke epoch: every ten seconds the core chooses whom we upload to
    /// (peers that stopped reading, as only the sockets show, go last),
    /// then may drop a very slow peer for a waiting one.
    ///
    /// Runs when any torrent's epoch is due, and then rechokes every
    /// torrent, so that all of them share one ten-second clock: torrents
    /// added a few milliseconds apart (a thousand take a second or two to
    /// open) would otherwise each wake the loop for an epoch of its own,
    /// every ten seconds, forever. A torrent's first epoch may thus come
    /// early, once.
    pub(super) fn rechoke(&mut self, now: Instant) {
        let conns = &self.conns;
        let stalled = |key: usize| {
            conns
                .get(key)
                .is_some_and(|c| c.is_stalled(now, STALLED_AFTER))
        };
        for (_, slot) in &mut self.torrents {
            slot.torrent.rechoke(now, &stalled);
            slot.torrent.replace_slow_peers(now);
        }
    }

    /// Whether the connection at `key` has queued requests its torrent's
    /// core would serve now.
    fn wants_serving(&self, key: usize) -> bool {
        self.conns
            .get(key)
            .and_then(|c| c.torrent.filter(|_| c.is_active()))
            .and_then(|tid| self.torrents.get(tid))
            .is_some_and(|s| s.torrent.has_requests_to_serve(key))
    }

    /// Whether some unchoked peer has queued requests and room in its write
    /// buffer, so serving could go on at once.
    pub(super) fn has_servable_requests(&self) -> bool {
        self.conns
            .iter()
            .any(|(key, c)| c.write_buf.len() < WRITE_HIGH_WATER_BYTES && self.wants_serving(key))
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
            .filter(|&(k, _)| self.wants_serving(k))
            .map(|(k, _)| k)
            .collect();
        // Start with a different peer each time.
        if !keys.is_empty() {
            let start = self.rng.below(keys.len());
            keys.rotate_left(start);
        }
        while !keys.is_empty() {
            keys.retain(|&key| {
                self.conns
                    .get(key)
                    .is_some_and(|c| c.write_buf.len() < WRITE_HIGH_WATER_BYTES)
                    && self.wants_serving(key)
            });
            let mut waiting = Vec::new();
            for &key in &keys {
                match self.serve_one(key, now, &mut block_buf) {
                    Served::One => served += 1,
                    Served::PeerWaits => waiting.push(key),
                    Served::Stop => return served,
                }
            }
            // A peer whose share is spent sits out the rest of this pass
            // (it used to stay in the round and spin the loop forever).
            keys.retain(|key| !waiting.contains(key));
        }
        served
    }

    /// Serves the next queued request of one peer.
    fn serve_one(&mut self, key: usize, now: Instant, block_buf: &mut Vec<u8>) -> Served {
        let tid = self.conns.get(key).and_then(|c| c.torrent);
        let Some(slot) = tid.and_then(|tid| self.torrents.get_mut(tid)) else {
            return Served::PeerWaits;
        };
        let block = match slot.torrent.serve_next(key, self.up_limit.as_mut(), now) {
            Serve::Block(block) => block,
            Serve::PeerWaits(ready) => {
                if let Some(ready) = ready {
                    self.throttle_until(ready);
                }
                return Served::PeerWaits;
            }
            Serve::LimitSpent(ready) => {
                self.throttle_until(ready);
                return Served::Stop;
            }
        };
        let len = usize::try_from(block.len).unwrap_or(0);
        block_buf.resize(len, 0);
        if let Err(e) = slot.storage.read(block.piece, block.begin, block_buf) {
            self.fatal.get_or_insert(Error::Storage(e));
            self.stopping = true;
            return Served::Stop;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return Served::PeerWaits;
        };
        encode_piece_header(block.piece.get(), block.begin, len, &mut conn.write_buf);
        conn.log_sent(|| format!("PIECE #{} +{} ({len} B)", block.piece, block.begin));
        conn.write_buf.extend_from_slice(block_buf);
        conn.last_write = now;
        Served::One
    }

    /// A rate limit has no tokens until `ready`: the loop wakes then.
    pub(super) fn throttle_until(&mut self, ready: Instant) {
        self.throttled_until = Some(self.throttled_until.map_or(ready, |t| t.min(ready)));
    }
}

/// What [`Session::serve_one`] did.
enum Served {
    /// One block went into the peer's write buffer.
    One,
    /// Nothing for this peer now (queue empty, or its share of the upload
    /// spent under `--choker propshare`); others may still be served.
    PeerWaits,
    /// Stop serving this pass: the upload limit is spent, or the disk failed.
    Stop,
}
