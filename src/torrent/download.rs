//! The download path of the torrent core: requests out, blocks in, pieces
//! checked, HAVEs announced, and the smart ban's judgement of bad data.
//!
//! Layer 0. `request_blocks` keeps each unchoking peer's pipeline full
//! (sized from its rate); `on_block` checks an arriving PIECE against our
//! requests and asks the driver to write it; when a piece is whole the
//! driver hashes it and reports with `handle_piece_checked`: a pass makes
//! it ours and announced, a failure strikes whoever is proven to have
//! sent bad data ([`mod@crate::smart_ban`]).

use std::net::SocketAddr;
use std::time::Instant;

use super::Torrent;
use super::{Action, BlockDigest, BlockWrite, DigestPurpose, Handled, Note, OutMessage, PeerKey};
use crate::bitfield::Bitfield;
use crate::close_reason::CloseReason;
use crate::hash::Sha1Hash;
use crate::metainfo::{Block, PieceIndex, BLOCK_LEN};
use crate::partial_pieces::{next_block, BlockChoice, PartialPieces, Received};
use crate::peer::MAX_UNREQUESTED_BLOCKS;
use crate::ratelimit::TokenBucket;
use crate::smart_ban::BlockRecord;
use crate::wire::BlockRequest;

/// What [`Torrent::request_one`] did.
enum Requested {
    /// Sent one REQUEST; the peer may take more.
    One,
    /// The peer's pipeline is full or nothing more is wanted from it.
    Enough,
    /// The download limit is used up until this time.
    Throttled(Instant),
}

impl Torrent {
    /// Request phase: for every peer that unchokes us and has what we want,
    /// queue REQUESTs until its pipeline target is reached. Peers take
    /// turns, one block each per round, starting after the peer that went
    /// first last time: under a download limit (`limit`, shared by every
    /// torrent) the tokens are shared fairly instead of going to whichever
    /// peer comes first. Returns when the limit will have tokens again, if
    /// it stopped the phase.
    pub fn request_blocks(
        &mut self,
        now: Instant,
        mut limit: Option<&mut TokenBucket>,
    ) -> Option<Instant> {
        if self.fetch.is_some() {
            self.request_metadata(now);
            return None;
        }
        if self.checking || self.have.is_complete() {
            return None;
        }
        let endgame = self.config.endgame_percent.is_some_and(|pct| {
            let done = u64::from(self.have.count_ones()) * 100;
            done >= u64::from(pct) * u64::from(self.meta.layout.piece_count())
        });
        let sequential = self.config.strategy == crate::picker::Strategy::Sequential;
        let mut turns: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing && p.state.am_interested())
            // A peer that chokes us may still serve its allowed-fast pieces
            // (BEP 6); a sequential download keeps its order and waits.
            .filter(|(_, p)| {
                !p.state.peer_choking() || (!p.state.allowed_fast().is_empty() && !sequential)
            })
            .map(|(&k, _)| k)
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
            let mut throttled = None;
            turns.retain(|&key| {
                if throttled.is_some() {
                    return false;
                }
                match self.request_one(key, endgame, limit.as_deref_mut(), now) {
                    Requested::One => true,
                    Requested::Enough => false,
                    Requested::Throttled(until) => {
                        throttled = Some(until);
                        false
                    }
                }
            });
            if throttled.is_some() {
                return throttled;
            }
        }
        None
    }

    /// One REQUEST to the peer at `key` if its pipeline has room, a block
    /// is wanted from it and the download limit allows.
    fn request_one(
        &mut self,
        key: PeerKey,
        endgame: bool,
        mut limit: Option<&mut TokenBucket>,
        now: Instant,
    ) -> Requested {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Requested::Enough;
        };
        if peer.state.requested().len() >= peer.state.pipeline_target(now) {
            return Requested::Enough;
        }
        // Tokens are looked at before the pick but only taken for a block
        // actually requested: a peer with nothing for us costs none.
        if let Some(limit) = limit.as_deref_mut() {
            let ready = limit.ready_at(u64::from(BLOCK_LEN), now);
            if ready > now {
                return Requested::Throttled(ready);
            }
        }
        // While it chokes us only its allowed-fast pieces may be asked for;
        // else the pieces it suggested come first (BEP 6).
        let allowed = peer
            .state
            .peer_choking()
            .then(|| only_pieces(peer.state.has(), peer.state.allowed_fast().iter().copied()));
        // A sequential download keeps its order: hints do not change it.
        let sequential = self.config.strategy == crate::picker::Strategy::Sequential;
        let suggested = if allowed.is_some() || sequential {
            None
        } else {
            let fresh = peer
                .state
                .suggested()
                .filter(|&p| !self.have.has(p) && !self.partial_pieces.contains(p));
            Some(only_pieces(peer.state.has(), fresh)).filter(|f| f.count_ones() > 0)
        };
        let choice = BlockChoice {
            layout: &self.meta.layout,
            picker: &self.picker,
            have: &self.have,
            peer: peer.addr,
            peer_has: peer.state.has(),
            endgame,
            idle: peer.state.requested().is_empty(),
        };
        let asked = peer.state.requested();
        let already = |b: &Block| asked.iter().any(|r| r.block == *b);
        let open_pieces = self.partial_pieces.len();
        let picked = if let Some(allowed) = &allowed {
            next_block_among(&mut self.partial_pieces, &choice, allowed, &mut self.rng)
        } else {
            // Pieces in progress are finished first; then a suggested one.
            let hinted = suggested.as_ref().and_then(|suggested| {
                self.partial_pieces
                    .request_any_wanted(choice.layout, choice.peer_has, choice.peer)
                    .or_else(|| {
                        next_block_among(
                            &mut self.partial_pieces,
                            &choice,
                            suggested,
                            &mut self.rng,
                        )
                    })
            });
            hinted.or_else(|| next_block(&mut self.partial_pieces, &choice, already, &mut self.rng))
        };
        let Some(block) = picked else {
            return Requested::Enough;
        };
        let addr = peer.addr;
        if let Some(limit) = limit {
            limit.try_take(u64::from(BLOCK_LEN), now);
        }
        peer.state.add_request(block, now);
        if self.partial_pieces.len() > open_pieces {
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
            self.note(Note::Pick { addr, piece, why });
        }
        self.send(key, OutMessage::Request(request_of(&block)));
        Requested::One
    }

    /// A PIECE arrived: keep it if we asked for it (the driver writes it),
    /// count and drop it otherwise.
    pub(super) fn on_block(
        &mut self,
        key: PeerKey,
        piece: u32,
        begin: u32,
        len: u32,
        now: Instant,
    ) -> Handled {
        let Some(block) = self.meta.layout.check_block(piece, begin, len, BLOCK_LEN) else {
            self.close(key, CloseReason::PieceOutOfRange { piece, begin, len });
            return Handled::Done;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return Handled::Done;
        };
        let asked = peer.state.block_arrived(&block, now);
        let from = peer.addr;
        self.down_rate.add(u64::from(len), now);
        if !asked {
            // Never written: only data we asked this peer for reaches the disk.
            self.stats.wasted += u64::from(len);
            self.on_unrequested_block(key, &block, now);
            return Handled::Done;
        }
        match self.partial_pieces.receive(&block, from) {
            Received::Duplicate | Received::Unrequested => {
                self.stats.wasted += u64::from(len);
                Handled::Done
            }
            Received::New { piece_complete } => {
                self.stats.downloaded += u64::from(len);
                Handled::Write(BlockWrite {
                    block,
                    from: key,
                    piece_complete,
                })
            }
        }
    }

    /// A block from [`Handled::Write`] is on disk: other peers asked for
    /// it (endgame) get a CANCEL, and a whole piece is sent to be hashed.
    pub fn handle_block_written(&mut self, write: BlockWrite) {
        self.cancel_duplicates(write.from, &write.block);
        if write.piece_complete {
            self.actions.push_back(Action::CheckPiece {
                piece: write.block.piece,
            });
        }
    }

    /// A PIECE that answers no request in flight to this peer. A late
    /// answer to one we gave up on (cancelled in endgame, timed out, dropped
    /// by a CHOKE) is no offence; anything else counts against the peer,
    /// and more than [`MAX_UNREQUESTED_BLOCKS`] within one
    /// [`crate::peer::UNREQUESTED_WINDOW`] closes it.
    fn on_unrequested_block(&mut self, key: PeerKey, block: &Block, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.state.take_released(block) {
            return;
        }
        let count = peer.state.note_unrequested(now);
        log::debug!(
            "{}: unrequested PIECE {} +{} dropped ({count} so far)",
            peer.addr,
            block.piece,
            block.begin
        );
        if count > MAX_UNREQUESTED_BLOCKS {
            self.close(key, CloseReason::UnrequestedBlocks { count });
        }
    }

    /// Endgame: other peers asked for the same block get a CANCEL.
    fn cancel_duplicates(&mut self, except: PeerKey, block: &Block) {
        let mut cancelled = Vec::new();
        for (&key, peer) in self.peers.iter_mut() {
            if key != except && !peer.closing && peer.state.cancel_request(block) {
                cancelled.push(key);
            }
        }
        for key in cancelled {
            self.send(key, OutMessage::Cancel(request_of(block)));
        }
    }

    /// The hash check of a downloaded piece ended: `ok` when it matched.
    pub fn handle_piece_checked(&mut self, piece: PieceIndex, ok: bool) {
        self.note(Note::Hash {
            piece: piece.get(),
            ok,
        });
        if ok {
            self.on_piece_passed(piece);
        } else {
            self.on_piece_failed(piece);
        }
    }

    /// A downloaded piece passed its hash check.
    fn on_piece_passed(&mut self, piece: PieceIndex) {
        if self.smart_ban.is_suspect(piece.get()) {
            let blocks = self.smart_ban.recorded_blocks(piece.get());
            self.actions.push_back(Action::DigestBlocks {
                piece,
                blocks,
                purpose: DigestPurpose::JudgePassed,
            });
        }
        self.partial_pieces.finish(piece);
        self.have.set(piece.get());
        self.picker.remove_piece(piece.get());
        self.pending_haves.push(piece.get());
        log::debug!("piece {piece} verified");
        self.actions.push_back(Action::PieceVerified { piece });
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
                let blocks = failed.senders.iter().map(|(n, _)| *n).collect();
                self.failed_senders.insert(piece.get(), failed.senders);
                self.actions.push_back(Action::DigestBlocks {
                    piece,
                    blocks,
                    purpose: DigestPurpose::RecordFailed,
                });
            }
        }
    }

    /// The digests asked for with [`Action::DigestBlocks`] were read.
    pub fn handle_block_digests(
        &mut self,
        piece: PieceIndex,
        purpose: DigestPurpose,
        digests: Vec<BlockDigest>,
    ) {
        match purpose {
            DigestPurpose::RecordFailed => {
                let senders = self.failed_senders.remove(&piece.get()).unwrap_or_default();
                let records = digests
                    .into_iter()
                    .filter_map(|(block, digest)| {
                        let sender = senders.iter().find(|(b, _)| *b == block)?.1;
                        Some(BlockRecord {
                            block,
                            sender,
                            digest,
                        })
                    })
                    .collect();
                self.smart_ban.handle_failed(piece.get(), records);
            }
            DigestPurpose::JudgePassed => self.judge_suspect_piece(piece, digests),
        }
    }

    /// A piece that failed before with several senders has passed: compare
    /// the recorded blocks with the good ones and strike exactly the peers
    /// whose blocks differ.
    fn judge_suspect_piece(&mut self, piece: PieceIndex, digests: Vec<BlockDigest>) {
        let count = usize::try_from(self.meta.layout.block_count(piece)).unwrap_or(0);
        let mut good = vec![Sha1Hash([0; 20]); count];
        for (block, digest) in digests {
            if let Some(slot) = usize::try_from(block).ok().and_then(|n| good.get_mut(n)) {
                *slot = digest;
            }
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

    /// One strike for `addr`, which is proven to have sent bad data; at
    /// [`crate::peer_list::MAX_STRIKES`] it is banned and disconnected,
    /// with every other connection of the same peer id.
    fn strike(&mut self, addr: SocketAddr, why: &str) {
        if self.struck.len() < super::MAX_STRUCK_KEPT {
            self.struck.push(addr);
        }
        if self.peer_list.is_banned(addr) {
            return; // banned already: later proof adds nothing
        }
        let banned = self.peer_list.strike(addr);
        let strikes = self.peer_list.strikes(addr);
        if strikes == 0 {
            // Not a listed peer (a web seed): the driver judges it from `struck`.
            log::warn!("{addr}: {why}");
            return;
        }
        log::warn!(
            "{addr}: strike {strikes} of {}: {why}",
            crate::peer_list::MAX_STRIKES
        );
        if !banned {
            return;
        }
        log::warn!("{addr}: banned after repeated bad data");
        // What it sent of pieces still in progress is not trusted either.
        let discarded = self.partial_pieces.discard_from(&self.meta.layout, addr);
        self.stats.wasted += discarded;
        self.stats.downloaded = self.stats.downloaded.saturating_sub(discarded);
        let banned_id = self
            .peers
            .values()
            .find(|p| p.addr == addr)
            .map(|p| p.peer_id);
        let same: Vec<(PeerKey, SocketAddr, [u8; 20])> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr == addr || Some(p.peer_id) == banned_id)
            .map(|(&k, p)| (k, p.addr, p.peer_id))
            .collect();
        for (key, peer_addr, peer_id) in same {
            self.peer_list.ban_identity(peer_addr, Some(peer_id));
            self.close(key, CloseReason::Banned);
        }
    }

    /// Send-haves phase: a HAVE for each newly verified piece to every
    /// peer, then drop interest in peers that no longer have anything new.
    pub fn send_haves(&mut self) {
        if self.pending_haves.is_empty() {
            return;
        }
        let haves = std::mem::take(&mut self.pending_haves);
        let keys = self.active_keys();
        for &piece in &haves {
            self.note(Note::HaveBroadcast {
                piece,
                peers: keys.len(),
            });
        }
        for &key in &keys {
            for &piece in &haves {
                self.send(key, OutMessage::Have(piece));
            }
            self.update_interest(key);
        }
        // Seeds have nothing to give each other.
        if self.is_complete() {
            let seeds: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.state.is_seed())
                .map(|(&k, _)| k)
                .collect();
            for key in seeds {
                self.close(key, CloseReason::BothComplete);
            }
        }
    }
}

/// Like [`next_block`] but only from the pieces in `among` (a subset of
/// what the peer has) and never a duplicate: a wanted block of one of them
/// in progress, else the first block of one newly picked. Endgame
/// duplicates are for the whole torrent's last blocks, not for a subset.
fn next_block_among(
    partial_pieces: &mut PartialPieces,
    choice: &BlockChoice<'_>,
    among: &Bitfield,
    rng: &mut crate::rng::Rng,
) -> Option<Block> {
    if let Some(block) = partial_pieces.request_any_wanted(choice.layout, among, choice.peer) {
        return Some(block);
    }
    let wanted = |p: u32| !choice.have.has(p) && !partial_pieces.contains(p);
    let piece = choice
        .picker
        .pick(among, wanted, rng)
        .and_then(|p| choice.layout.piece(p))?;
    partial_pieces.start(choice.layout, piece);
    partial_pieces.request_wanted(choice.layout, piece, choice.peer)
}

/// The pieces of `has` that are among `pieces`.
fn only_pieces(has: &Bitfield, pieces: impl Iterator<Item = u32>) -> Bitfield {
    let mut only = Bitfield::new(has.len());
    for piece in pieces.filter(|&p| has.has(p)) {
        only.set(piece);
    }
    only
}

/// The REQUEST (or CANCEL) for `block`.
pub(super) fn request_of(block: &Block) -> BlockRequest {
    BlockRequest {
        piece: block.piece.get(),
        begin: block.begin,
        len: block.len,
    }
}
