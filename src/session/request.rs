//! The request phase and block arrival: the download path from REQUEST to
//! a verified piece and its HAVE.
//!
//! Layer 2. `request_blocks` keeps each unchoking peer's pipeline full
//! (sized from its rate); `on_block` checks an arriving PIECE against our
//! requests, writes it to disk, and when a piece is whole verifies it from
//! disk and queues the HAVE, or throws it away and strikes its senders.

use std::time::Instant;

use super::Session;
use crate::download::{next_block, BlockChoice, Received};
use crate::error::Error;
use crate::metainfo::{PieceIndex, BLOCK_LEN};
use crate::peer::OutRequest;
use crate::trace::phase;
use crate::wire::{BlockRequest, Message};

impl Session {
    /// Request phase: for every peer that unchokes us and has what we want,
    /// queue REQUESTs until its pipeline target is reached.
    pub(super) fn request_blocks(&mut self, now: Instant) {
        if self.checking.is_some() || self.have.is_complete() {
            return;
        }
        let endgame = self.config.endgame_percent.is_some_and(|pct| {
            let done = u64::from(self.have.count_ones()) * 100;
            done >= u64::from(pct) * u64::from(self.meta.layout.piece_count())
        });
        for (_, conn) in self.conns.iter_mut() {
            if !conn.is_active() || conn.peer.peer_choking || !conn.peer.am_interested {
                continue;
            }
            let target = conn.peer.pipeline_target(now);
            while conn.peer.requested.len() < target {
                if let Some(limit) = self.down_limit.as_mut() {
                    if !limit.try_take(u64::from(BLOCK_LEN), now) {
                        let ready = limit.ready_at(u64::from(BLOCK_LEN), now);
                        self.throttled_until =
                            Some(self.throttled_until.map_or(ready, |t| t.min(ready)));
                        return;
                    }
                }
                let choice = BlockChoice {
                    layout: &self.meta.layout,
                    picker: &self.picker,
                    have: &self.have,
                    peer_has: &conn.peer.has,
                    endgame,
                };
                let asked = &conn.peer.requested;
                let already = |b: &crate::metainfo::Block| asked.iter().any(|r| r.block == *b);
                let open_pieces = self.downloads.len();
                let Some(block) = next_block(&mut self.downloads, &choice, already, &mut self.rng)
                else {
                    break;
                };
                if self.downloads.len() > open_pieces {
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
            }
        }
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
            return conn.close(
                format!("PIECE out of range: piece {piece} +{begin} ({len} B)"),
                true,
            );
        };
        let asked = conn.peer.take_request(&block);
        conn.peer.down.add(u64::from(len), now);
        conn.peer.last_block_at = Some(now);
        conn.peer.snubbed = false;
        let from = conn.addr;
        self.down_rate.add(u64::from(len), now);
        if !asked {
            // Late answer to a cancelled request, or never asked for: drop the data.
            self.stats.wasted += u64::from(len);
            return;
        }
        match self.downloads.receive(&block, from) {
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

    /// Endgame: other peers asked for the same block get a CANCEL.
    fn cancel_duplicates(&mut self, except: usize, block: &crate::metainfo::Block, now: Instant) {
        for (key, conn) in self.conns.iter_mut() {
            if key != except && conn.peer.take_request(block) {
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
    /// ours and announced. Fail: download it again, strike its senders.
    fn verify_piece(&mut self, piece: PieceIndex, now: Instant) {
        let Some(expected) = self.meta.piece_hash(piece).copied() else {
            return;
        };
        let result = self.storage.verify_piece(piece, &expected);
        if let (Some((tracer, _)), Ok(ok)) = (self.tracer.as_mut(), &result) {
            tracer.hash(now, phase::RECEIVE, piece.get(), *ok);
        }
        match result {
            Ok(true) => {
                self.downloads.finish(piece);
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
            Ok(false) => {
                self.stats.hash_failures += 1;
                let size = u64::from(self.meta.layout.piece_size(piece));
                self.stats.wasted += size;
                self.stats.downloaded = self.stats.downloaded.saturating_sub(size);
                let senders = self.downloads.reset(piece);
                log::warn!(
                    "piece {piece} failed its hash check (sent by {} peer(s))",
                    senders.len()
                );
                for addr in senders {
                    if self.peers.strike(addr) {
                        log::warn!("{addr}: banned after repeated hash failures");
                        for (_, conn) in self.conns.iter_mut().filter(|(_, c)| c.addr == addr) {
                            self.peers.ban_identity(addr, conn.peer_id);
                            conn.close("banned: sent data that failed hash checks", true);
                        }
                    }
                }
                let _ = now;
            }
            Err(e) => self.fail(Error::Storage(e)),
        }
    }
}
