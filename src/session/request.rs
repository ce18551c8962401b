//! The request phase and block arrival: the download path from REQUEST to
//! a verified piece and its HAVE.
//!
//! Layer 2. `request_blocks` keeps each unchoking peer's pipeline full
//! (sized from its rate); `on_block` checks an arriving PIECE against our
//! requests, writes it to disk, and when a piece is whole verifies it from
//! disk and queues the HAVE, or throws it away and strikes its senders.

use std::time::Instant;

use super::Session;
use crate::close_reason::CloseReason;
use crate::error::Error;
use crate::hash::Sha1Hash;
use crate::metainfo::{Block, PieceIndex, BLOCK_LEN};
use crate::partial_pieces::{next_block, BlockChoice, Received};
use crate::peer::{OutRequest, MAX_UNREQUESTED_BLOCKS};
use crate::smart_ban::BlockRecord;
use crate::storage::{PieceHashing, StorageError};
use crate::trace::phase;
use crate::wire::{BlockRequest, Message};

/// What [`Session::request_one`] did.
enum Requested {
    /// Sent one REQUEST; the peer may take more.
    One,
    /// The peer's pipeline is full or nothing more is wanted from it.
    Enough,
    /// The download limit is used up for now.
    Throttled,
}

impl Session {
    /// Request phase: for every peer that unchokes us and has what we want,
    /// queue REQUESTs until its pipeline target is reached. Peers take
    /// turns, one block each per round, starting after the peer that went
    /// first last time: under `--max-down` the tokens are shared fairly
    /// instead of going to whichever peer sits first in the slab.
    pub(super) fn request_blocks(&mut self, now: Instant) {
        if self.checking.is_some() || self.have.is_complete() {
            return;
        }
        let endgame = self.config.endgame_percent.is_some_and(|pct| {
            let done = u64::from(self.have.count_ones()) * 100;
            done >= u64::from(pct) * u64::from(self.meta.layout.piece_count())
        });
        let mut turns: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_active() && !c.peer.peer_choking && c.peer.am_interested)
            .map(|(k, _)| k)
            .collect();
        let first = turns
            .iter()
            .position(|&k| k > self.request_turn)
            .unwrap_or(0);
        turns.rotate_left(first);
        if let Some(&key) = turns.first() {
            self.request_turn = key;
        }
        while !turns.is_empty() {
            let mut throttled = false;
            turns.retain(|&key| {
                if throttled {
                    return false;
                }
                match self.request_one(key, endgame, now) {
                    Requested::One => true,
                    Requested::Enough => false,
                    Requested::Throttled => {
                        throttled = true;
                        false
                    }
                }
            });
            if throttled {
                return;
            }
        }
    }

    /// One REQUEST to the peer at `key` if its pipeline has room, a block
    /// is wanted from it and the download limit allows.
    fn request_one(&mut self, key: usize, endgame: bool, now: Instant) -> Requested {
        let Some(conn) = self.conns.get_mut(key) else {
            return Requested::Enough;
        };
        if conn.peer.requested.len() >= conn.peer.pipeline_target(now) {
            return Requested::Enough;
        }
        // Tokens are looked at before the pick but only taken for a block
        // actually requested: a peer with nothing for us costs none.
        if let Some(limit) = self.down_limit.as_mut() {
            let ready = limit.ready_at(u64::from(BLOCK_LEN), now);
            if ready > now {
                self.throttled_until = Some(self.throttled_until.map_or(ready, |t| t.min(ready)));
                return Requested::Throttled;
            }
        }
        let choice = BlockChoice {
            layout: &self.meta.layout,
            picker: &self.picker,
            have: &self.have,
            peer: conn.addr,
            peer_has: &conn.peer.has,
            endgame,
        };
        let asked = &conn.peer.requested;
        let already = |b: &Block| asked.iter().any(|r| r.block == *b);
        let open_pieces = self.partial_pieces.len();
        let Some(block) = next_block(&mut self.partial_pieces, &choice, already, &mut self.rng)
        else {
            return Requested::Enough;
        };
        if self.partial_pieces.len() > open_pieces {
            if let Some((tracer, _)) = self.tracer.as_mut() {
                let piece = block.piece.get();
                let strategy = match self.config.strategy {
                    crate::picker::Strategy::RarestFirst => "rarest first",
                    crate::picker::Strategy::Sequential => "sequential",
                    crate::picker::Strategy::Random => "random",
                };
                let why = format!(
                    "availability {}, {strategy}",
                    self.picker.availability(piece)
                );
                tracer.pick(now, phase::REQUEST_BLOCKS, conn.addr, piece, &why);
            }
        }
        if let Some(limit) = self.down_limit.as_mut() {
            limit.try_take(u64::from(BLOCK_LEN), now);
        }
        conn.peer.requested.push(OutRequest {
            block,
            sent_at: now,
        });
        let request = BlockRequest {
            piece: block.piece.get(),
            begin: block.begin,
            len: block.len,
        };
        conn.send(&Message::Request(request), now);
        Requested::One
    }

    /// A PIECE arrived: keep it if we asked for it, write it, and verify
    /// the piece when it is whole.
    pub(super) fn on_block(
        &mut self,
        key: usize,
        piece: u32,
        begin: u32,
        data: &[u8],
        now: Instant,
    ) {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(block) = self.meta.layout.check_block(piece, begin, len, BLOCK_LEN) else {
            return conn.close(CloseReason::PieceOutOfRange { piece, begin, len });
        };
        let asked = conn.peer.take_request(&block);
        conn.peer.down.add(u64::from(len), now);
        conn.peer.last_block_at = Some(now);
        conn.peer.snubbed = false;
        let from = conn.addr;
        self.down_rate.add(u64::from(len), now);
        if !asked {
            // Never written: only data we asked this peer for reaches the disk.
            self.stats.wasted += u64::from(len);
            return self.on_unrequested_block(key, &block, now);
        }
        match self.partial_pieces.receive(&block, from) {
            Received::Duplicate | Received::Unrequested => self.stats.wasted += u64::from(len),
            Received::New { piece_complete } => {
                self.stats.downloaded += u64::from(len);
                if let Err(e) = self.storage.write(block.piece, block.begin, data) {
                    return self.fail(Error::Storage(e));
                }
                self.cancel_duplicates(key, &block, now);
                if piece_complete {
                    self.verify_piece(block.piece, now);
                }
            }
        }
    }

    /// A PIECE that answers no request in flight to this peer. A late
    /// answer to one we gave up on (cancelled in endgame, timed out, dropped
    /// by a CHOKE) is no offence; anything else counts against the peer,
    /// and more than [`MAX_UNREQUESTED_BLOCKS`] within one
    /// [`crate::peer::UNREQUESTED_WINDOW`] closes it.
    fn on_unrequested_block(&mut self, key: usize, block: &Block, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.peer.take_released(block) {
            return;
        }
        let count = conn.peer.note_unrequested(now);
        log::debug!(
            "{}: unrequested PIECE {} +{} dropped ({count} so far)",
            conn.addr,
            block.piece,
            block.begin
        );
        if count > MAX_UNREQUESTED_BLOCKS {
            conn.close(CloseReason::UnrequestedBlocks { count });
        }
    }

    /// Endgame: other peers asked for the same block get a CANCEL.
    fn cancel_duplicates(&mut self, except: usize, block: &Block, now: Instant) {
        for (key, conn) in self.conns.iter_mut() {
            if key != except && conn.peer.cancel_request(block) {
                let request = BlockRequest {
                    piece: block.piece.get(),
                    begin: block.begin,
                    len: block.len,
                };
                conn.send(&Message::Cancel(request), now);
            }
        }
    }

    /// Gives each of `files` whose pieces are all verified its real name
    /// (dropping the `.part` suffix).
    pub(super) fn finish_files(&mut self, files: &[usize]) {
        for &file in files {
            let complete = self
                .meta
                .layout
                .pieces_of_file(file)
                .all(|p| self.have.has(p));
            if complete {
                if let Err(e) = self.storage.finish_file(file) {
                    return self.fail(Error::Storage(e));
                }
            }
        }
    }

    /// Every block of `piece` is on disk: hash it from disk. Pass: it is
    /// ours and announced (and if it had failed before, the smart ban
    /// finds who sent the bad blocks then). Fail: fetch it again and blame
    /// whoever can be proven to have sent bad data.
    ///
    /// A piece larger than one pass's hashing budget
    /// (`Config::check_bytes_per_pass`; pieces go up to 512 MiB) is queued
    /// instead and hashed a slice per pass by `verify_pieces`, so peers keep
    /// being served meanwhile.
    fn verify_piece(&mut self, piece: PieceIndex, now: Instant) {
        if self.meta.layout.piece_size(piece) > self.config.check_bytes_per_pass {
            self.verifying.push_back(PieceHashing::new(piece));
            return;
        }
        let Some(expected) = self.meta.piece_hash(piece).copied() else {
            return;
        };
        let result = self.storage.verify_piece(piece, &expected);
        self.on_piece_hashed(piece, result, phase::RECEIVE, now);
    }

    /// Verify phase: hashes the queued large pieces, at most one pass's
    /// budget of bytes (`Config::check_bytes_per_pass`), oldest first.
    /// Blocks on disk reads.
    pub(super) fn verify_pieces(&mut self, now: Instant) {
        let mut budget = self.config.check_bytes_per_pass.max(1);
        while budget > 0 {
            let Some(mut job) = self.verifying.pop_front() else {
                return;
            };
            let piece = job.piece();
            let Some(expected) = self.meta.piece_hash(piece).copied() else {
                continue;
            };
            let step = budget.min(self.meta.layout.piece_size(piece));
            budget = budget.saturating_sub(step);
            match self.storage.verify_step(&mut job, step, &expected) {
                Ok(None) => self.verifying.push_front(job),
                Ok(Some(ok)) => self.on_piece_hashed(piece, Ok(ok), phase::VERIFY_PIECES, now),
                Err(e) => return self.fail(Error::Storage(e)),
            }
        }
    }

    /// The hash check of a downloaded piece ended with `result`.
    fn on_piece_hashed(
        &mut self,
        piece: PieceIndex,
        result: Result<bool, StorageError>,
        phase: &'static str,
        now: Instant,
    ) {
        if let (Some((tracer, _)), Ok(ok)) = (self.tracer.as_mut(), &result) {
            tracer.hash(now, phase, piece.get(), *ok);
        }
        match result {
            Ok(true) => self.on_piece_passed(piece),
            Ok(false) => self.on_piece_failed(piece),
            Err(e) => self.fail(Error::Storage(e)),
        }
    }

    /// A downloaded piece passed its hash check.
    fn on_piece_passed(&mut self, piece: PieceIndex) {
        if self.smart_ban.is_suspect(piece.get()) {
            self.judge_suspect_piece(piece);
        }
        self.partial_pieces.finish(piece);
        self.have.set(piece.get());
        self.picker.remove_piece(piece.get());
        self.pending_haves.push(piece.get());
        self.resume_dirty = true;
        log::debug!("piece {piece} verified");
        let files: Vec<usize> = self
            .meta
            .layout
            .piece_spans(piece)
            .iter()
            .map(|s| s.file)
            .collect();
        self.finish_files(&files);
    }

    /// A downloaded piece failed its hash check. One sender: it is to
    /// blame. Several: nobody yet; their blocks are recorded for the smart
    /// ban and the piece is fetched again from a single peer.
    fn on_piece_failed(&mut self, piece: PieceIndex) {
        self.stats.hash_failures += 1;
        let size = u64::from(self.meta.layout.piece_size(piece));
        self.stats.wasted += size;
        self.stats.downloaded = self.stats.downloaded.saturating_sub(size);
        let several = self.partial_pieces.contributor_count(piece) > 1;
        let failed = self
            .partial_pieces
            .fail(piece, several || self.smart_ban.is_suspect(piece.get()));
        match failed.contributors.as_slice() {
            [] => log::warn!("piece {piece} failed its hash check"),
            [sender] => {
                let sender = *sender;
                log::warn!("piece {piece} failed its hash check; every block came from {sender}");
                self.strike(
                    sender,
                    &format!("sent piece {piece}, which failed its hash check"),
                );
            }
            senders => {
                log::warn!(
                    "piece {piece} failed its hash check with blocks from {} peers; \
                     blaming nobody yet, fetching it again from one peer",
                    senders.len()
                );
                match self.block_digests(piece, failed.senders.iter().map(|(n, _)| *n)) {
                    Ok(digests) => {
                        let records = failed
                            .senders
                            .iter()
                            .zip(digests)
                            .map(|(&(block, sender), (_, digest))| BlockRecord {
                                block,
                                sender,
                                digest,
                            })
                            .collect();
                        self.smart_ban.handle_failed(piece.get(), records);
                    }
                    Err(e) => self.fail(Error::Storage(e)),
                }
            }
        }
    }

    /// A piece that failed before with several senders has passed: compare
    /// the recorded blocks with the good ones and strike exactly the peers
    /// whose blocks differ.
    fn judge_suspect_piece(&mut self, piece: PieceIndex) {
        let wanted = self.smart_ban.recorded_blocks(piece.get());
        let count = usize::try_from(self.meta.layout.block_count(piece)).unwrap_or(0);
        let mut good = vec![Sha1Hash([0; 20]); count];
        match self.block_digests(piece, wanted.into_iter()) {
            Ok(digests) => {
                for (block, digest) in digests {
                    if let Some(slot) = usize::try_from(block).ok().and_then(|n| good.get_mut(n)) {
                        *slot = digest;
                    }
                }
            }
            Err(e) => return self.fail(Error::Storage(e)),
        }
        let verdict = self.smart_ban.handle_passed(piece.get(), &good);
        for addr in &verdict.cleared {
            log::info!("{addr}: its blocks of piece {piece} were good (smart ban)");
        }
        for addr in verdict.culprits {
            self.strike(
                addr,
                &format!("sent bad blocks of piece {piece} (smart ban)"),
            );
        }
    }

    /// SHA-1 of each of `blocks` of `piece` as it is on disk.
    fn block_digests(
        &mut self,
        piece: PieceIndex,
        blocks: impl Iterator<Item = u32>,
    ) -> Result<Vec<(u32, Sha1Hash)>, StorageError> {
        let mut buf = vec![0u8; crate::metainfo::BLOCK_LEN as usize];
        let mut digests = Vec::new();
        for index in blocks {
            let Some(block) = self.meta.layout.block(piece, index) else {
                continue;
            };
            let Some(bytes) = usize::try_from(block.len)
                .ok()
                .and_then(|n| buf.get_mut(..n))
            else {
                continue;
            };
            self.storage.read(piece, block.begin, bytes)?;
            digests.push((index, Sha1Hash::of(bytes)));
        }
        Ok(digests)
    }

    /// One strike for `addr`, which is proven to have sent bad data; at
    /// [`crate::peer_list::MAX_STRIKES`] it is banned and disconnected.
    fn strike(&mut self, addr: std::net::SocketAddr, why: &str) {
        let banned = self.peers.strike(addr);
        let strikes = self.peers.strikes(addr);
        log::warn!(
            "{addr}: strike {strikes} of {}: {why}",
            crate::peer_list::MAX_STRIKES
        );
        if !banned {
            return;
        }
        log::warn!("{addr}: banned after repeated bad data");
        let banned_id = self
            .conns
            .iter()
            .find(|(_, c)| c.addr == addr)
            .and_then(|(_, c)| c.peer_id);
        for (_, conn) in self.conns.iter_mut() {
            let same_peer = conn.addr == addr || (banned_id.is_some() && conn.peer_id == banned_id);
            if same_peer {
                self.peers.ban_identity(addr, conn.peer_id);
                conn.close(CloseReason::Banned);
            }
        }
    }
}
