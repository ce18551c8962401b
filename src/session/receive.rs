//! The accept and receive phases: new connections in, bytes in, messages
//! handled.
//!
//! Layer 2. `receive` drains a readable socket (edge-triggered: until it
//! would block), decodes whole frames with the pure wire codec, and hands
//! each message to `handle_message`, which updates the peer's state and the
//! session's and may queue replies. A protocol violation marks the peer for
//! closing; it can never end the session.

use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::conn::{Conn, ReadOutcome, Stage};
use super::Session;
use crate::bitfield::Bitfield;
use crate::close_reason::CloseReason;
use crate::metainfo::BLOCK_LEN;
use crate::trace::{describe_handshake, phase};
use crate::wire::{decode_frame, BlockRequest, FrameLimits, Handshake, Message, HANDSHAKE_LEN};

/// Bytes read from one peer per loop pass before the loop moves on: 1 MiB
/// keeps a fast loopback transfer efficient (about 64 blocks per pass)
/// while no single peer can starve the others.
const READ_BUDGET_BYTES: usize = 1024 * 1024;

/// Our client name in the BEP 10 handshake.
const CLIENT_NAME: &str = concat!("pollen ", env!("CARGO_PKG_VERSION"));

/// Our BEP 3 handshake: the extension-protocol bit (BEP 10) set.
pub(super) fn our_handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
    Handshake::new(info_hash, peer_id).with_extensions()
}

/// Requests a peer may send while choked before it is disconnected (a few
/// race with our CHOKE; a stream of them is a broken or hostile peer).
const MAX_REQUESTS_WHILE_CHOKED: u32 = 100;

/// Outgoing connections being set up at once (half-open connections are
/// limited by some operating systems and routers).
pub(super) const MAX_HALF_OPEN: usize = 8;

impl Session {
    /// Accept phase: takes every pending incoming connection (edge
    /// triggered: until WouldBlock). Over the peer cap or banned: closed at once.
    pub(super) fn accept_peers(&mut self, now: Instant) {
        loop {
            let (mut socket, addr) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            if self.conns.len() >= self.config.max_peers || !self.peers.mark_connected(addr) {
                log::debug!("{addr}: refused (peer limit or banned)");
                continue;
            }
            let cap = self.read_cap();
            let piece_count = self.meta.layout.piece_count();
            let tracing = self.tracer.is_some();
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)
            {
                log::warn!("{addr}: register failed: {e}");
                continue;
            }
            log::debug!("{addr}: incoming connection");
            let mut conn = Conn::new(socket, addr, false, cap, piece_count, now);
            conn.sent_log = tracing.then(Vec::new);
            entry.insert(conn);
        }
    }

    /// Largest read buffer a peer gets: one largest frame plus its prefix.
    pub(super) fn read_cap(&self) -> usize {
        let limits = FrameLimits::for_pieces(self.meta.layout.piece_count());
        (4 + limits.max_frame_len()).max(HANDSHAKE_LEN)
    }

    /// Receive phase for one readable socket: read, decode, handle, repeat
    /// until the socket would block, or until this peer has had its share
    /// of the pass ([`READ_BUDGET_BYTES`]): then it is marked `read_pending`
    /// and read again on the next pass, so one fast or flooding peer cannot
    /// hold the loop (and every other peer, and the stop flag) hostage.
    pub(super) fn receive(&mut self, key: usize, now: Instant) {
        let mut budget = READ_BUDGET_BYTES;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            conn.read_pending = false;
            if conn.closing.is_some() || conn.stage == Stage::Connecting {
                return;
            }
            if budget == 0 {
                conn.read_pending = true;
                return;
            }
            let before = conn.read_buf.len();
            let outcome = match conn.fill_read_buf() {
                Ok(outcome) => outcome,
                Err(e) => return conn.close(CloseReason::ReadFailed(e.kind())),
            };
            budget = budget.saturating_sub(conn.read_buf.len().saturating_sub(before).max(1));
            conn.last_read = now;
            self.decode_buffered(key, now);
            match outcome {
                ReadOutcome::WouldBlock => return,
                ReadOutcome::Closed => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.close(if conn.stage == Stage::Active {
                            CloseReason::PeerClosed
                        } else {
                            CloseReason::ClosedBeforeHandshake
                        });
                    }
                    return;
                }
                ReadOutcome::BufferFull => {}
            }
        }
    }

    /// Reads again from peers that used up their budget last pass.
    pub(super) fn receive_pending(&mut self, now: Instant) {
        let pending: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.read_pending)
            .map(|(k, _)| k)
            .collect();
        for key in pending {
            self.receive(key, now);
        }
    }

    /// Decodes and handles every whole frame in the connection's buffer.
    fn decode_buffered(&mut self, key: usize, now: Instant) {
        let limits = FrameLimits::for_pieces(self.meta.layout.piece_count());
        // The buffer is moved out while its messages are handled, so the
        // handlers may borrow the rest of the session.
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let buf = std::mem::take(&mut conn.read_buf);
        let mut used = 0;
        if conn.stage == Stage::Handshaking {
            match Handshake::decode(&buf) {
                Ok(Some(handshake)) => {
                    used = HANDSHAKE_LEN;
                    self.on_handshake(key, &handshake, now);
                }
                Ok(None) => {}
                Err(e) => conn.close(CloseReason::BadHandshake(e)),
            }
        }
        while self.conns.get(key).is_some_and(|c| c.is_active()) {
            let rest = buf.get(used..).unwrap_or_default();
            match decode_frame(rest, &limits) {
                Ok(Some((message, len))) => {
                    used += len;
                    if let (Some((tracer, _)), Some(conn)) =
                        (self.tracer.as_mut(), self.conns.get(key))
                    {
                        tracer.message_in(now, phase::RECEIVE, conn.addr, &message);
                    }
                    self.handle_message(key, message, now);
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(conn) = self.conns.get_mut(key) {
                        conn.close(CloseReason::BadMessage(e));
                    }
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            let mut buf = buf;
            buf.drain(..used.min(buf.len()));
            conn.read_buf = buf;
        }
    }

    /// The peer's handshake arrived: check it, answer with ours and our
    /// bitfield.
    fn on_handshake(&mut self, key: usize, handshake: &Handshake, now: Instant) {
        let info_hash = self.meta.info_hash.0;
        let our_id = self.peer_id;
        let duplicate = self
            .conns
            .iter()
            .any(|(k, c)| k != key && c.peer_id == Some(handshake.peer_id));
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if handshake.info_hash != info_hash {
            return conn.close(CloseReason::WrongInfoHash);
        }
        if handshake.peer_id == our_id {
            self.peers.forget(conn.addr);
            return conn.close(CloseReason::ConnectedToSelf);
        }
        if self.peers.is_banned_id(&handshake.peer_id) {
            return conn.close(CloseReason::BannedPeerId);
        }
        if duplicate {
            return conn.close(CloseReason::DuplicatePeerId);
        }
        conn.peer_id = Some(handshake.peer_id);
        self.peers.set_peer_id(conn.addr, handshake.peer_id);
        conn.stage = Stage::Active;
        if let Some((tracer, _)) = self.tracer.as_mut() {
            let client = super::client_tag(&handshake.peer_id);
            tracer.wire_in(
                now,
                phase::RECEIVE,
                conn.addr,
                &describe_handshake(&client, &handshake.reserved),
            );
        }
        if !conn.sent_handshake {
            let ours = our_handshake(info_hash, our_id);
            conn.write_buf.extend_from_slice(&ours.encode());
            conn.sent_handshake = true;
            conn.log_sent(|| describe_handshake(&super::client_tag(&our_id), &ours.reserved));
        }
        if self.checking.is_none() && self.have.count_ones() > 0 {
            conn.send(&Message::Bitfield(self.have.as_bytes()), now);
        }
        if handshake.supports_extensions() {
            let payload = crate::wire::extension::our_handshake(
                crate::peer::MAX_QUEUED_REQUESTS,
                CLIENT_NAME,
            );
            let message = Message::Extended {
                id: crate::wire::extension::HANDSHAKE_ID,
                payload: &payload,
            };
            conn.send(&message, now);
        }
        log::debug!(
            "{}: handshake ok, client {}",
            conn.addr,
            super::client_tag(&handshake.peer_id)
        );
    }

    /// Handles one message from an active peer.
    fn handle_message(&mut self, key: usize, message: Message<'_>, now: Instant) {
        let piece_count = self.meta.layout.piece_count();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // BITFIELD should come first; extension handshakes (libtorrent and
        // Transmission send theirs before it) and keepalives do not count.
        let first = !conn.peer.got_message;
        if !matches!(message, Message::Extended { .. } | Message::KeepAlive) {
            conn.peer.got_message = true;
        }
        log::trace!("{} <- {}", conn.addr, message.name());
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Suggest { .. } => {}
            Message::AllowedFast { .. } | Message::Unknown { .. } => {}
            Message::Extended { id, payload } => {
                if id == crate::wire::extension::HANDSHAKE_ID {
                    match crate::wire::extension::ExtHandshake::parse(payload) {
                        Ok(ext) => {
                            conn.peer.max_requests = ext.reqq.and_then(|n| usize::try_from(n).ok());
                            log::debug!(
                                "{}: extension handshake: client {:?}, reqq {:?}",
                                conn.addr,
                                ext.client,
                                ext.reqq
                            );
                        }
                        Err(e) => {
                            log::debug!("{}: bad extension handshake ignored: {e}", conn.addr)
                        }
                    }
                }
            }
            Message::Choke => {
                conn.peer.peer_choking = true;
                for block in conn.peer.take_all_requests() {
                    self.partial_pieces.release(&block);
                }
                self.partial_pieces.disown(conn.addr);
            }
            Message::Unchoke => {
                conn.peer.peer_choking = false;
                conn.peer.unchoked_at = Some(now);
            }
            Message::Interested => {
                conn.peer.peer_interested = true;
                self.unchoke_if_slot_free(key, now);
            }
            Message::NotInterested => conn.peer.peer_interested = false,
            Message::Have { piece } => {
                if piece >= piece_count {
                    return conn.close(CloseReason::HaveOutOfRange { piece, piece_count });
                }
                if conn.peer.has.set(piece) {
                    self.picker.add_piece(piece);
                    self.update_interest(key, now);
                }
            }
            Message::Bitfield(bytes) => {
                // BEP 3 puts BITFIELD first, but aria2 sends a fresh one after
                // its first pieces arrive: a late one replaces what we knew.
                if !first {
                    log::debug!("{}: late BITFIELD replaces its piece set", conn.addr);
                }
                match Bitfield::from_bytes(bytes, piece_count) {
                    Ok(field) => self.set_peer_pieces(key, field, now),
                    Err(e) => conn.close(CloseReason::BadBitfield(e)),
                }
            }
            Message::HaveAll if first => {
                self.set_peer_pieces(key, Bitfield::full(piece_count), now)
            }
            Message::HaveNone if first => {}
            Message::HaveAll | Message::HaveNone => conn.close(CloseReason::LateHaveAllOrNone),
            Message::Request(request) => self.on_request(key, request),
            Message::Cancel(request) => {
                conn.peer.queued.retain(|b| {
                    !(b.piece.get() == request.piece
                        && b.begin == request.begin
                        && b.len == request.len)
                });
            }
            Message::Reject(request) => {
                if let Some(block) = self.meta.layout.check_block(
                    request.piece,
                    request.begin,
                    request.len,
                    BLOCK_LEN,
                ) {
                    if conn.peer.take_request(&block) {
                        self.partial_pieces.release(&block);
                    }
                }
            }
            Message::Piece { piece, begin, data } => self.on_block(key, piece, begin, data, now),
        }
    }

    /// The peer told us its pieces (BITFIELD or HAVE_ALL).
    fn set_peer_pieces(&mut self, key: usize, field: Bitfield, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.picker.remove_peer(&conn.peer.has);
        self.picker.add_peer(&field);
        conn.peer.has = field;
        if conn.peer.is_seed() && self.have.is_complete() {
            return conn.close(CloseReason::BothComplete);
        }
        self.update_interest(key, now);
    }

    /// A REQUEST: queue it if we are unchoking the peer, have the piece and
    /// the range is valid; drop it (or the peer) otherwise.
    fn on_request(&mut self, key: usize, request: BlockRequest) {
        let layout = &self.meta.layout;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(block) = layout.check_block(request.piece, request.begin, request.len, BLOCK_LEN)
        else {
            return conn.close(CloseReason::RequestOutOfRange {
                piece: request.piece,
                begin: request.begin,
                len: request.len,
            });
        };
        if conn.peer.am_choking {
            conn.peer.requests_while_choked += 1;
            if conn.peer.requests_while_choked > MAX_REQUESTS_WHILE_CHOKED {
                conn.close(CloseReason::RequestsWhileChoked);
            }
            return;
        }
        if !self.have.has(request.piece) {
            return conn.close(CloseReason::RequestForMissingPiece {
                piece: request.piece,
            });
        }
        if conn.peer.queued.len() < crate::peer::MAX_QUEUED_REQUESTS
            && !conn.peer.queued.contains(&block)
        {
            conn.peer.queued.push_back(block);
        }
    }

    /// Sends INTERESTED or NOT_INTERESTED when our interest in the peer changed.
    pub(super) fn update_interest(&mut self, key: usize, now: Instant) {
        let checking = self.checking.is_some();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_active() || checking {
            return;
        }
        let interested = conn.peer.has_something_for(&self.have);
        if interested != conn.peer.am_interested {
            conn.peer.am_interested = interested;
            let message = if interested {
                Message::Interested
            } else {
                Message::NotInterested
            };
            conn.send(&message, now);
        }
    }
}
