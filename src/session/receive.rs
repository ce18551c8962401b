//! The accept and receive phases: new connections in, bytes in, messages
//! handled.
//!
//! Layer 2. `receive` drains a readable socket (edge-triggered: until it
//! would block), decodes whole frames with the pure wire codec, and hands
//! each message to the torrent core ([`crate::torrent::Torrent`]), whose
//! actions (replies, closes, a block to write) the session then carries
//! out. A protocol violation marks the peer for closing; it can never end
//! the session.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::conn::{Conn, ReadOutcome, Stage};
use super::evict::{Occupant, OccupantStage};
use super::{Session, TorrentId};
use crate::close_reason::CloseReason;
use crate::error::Error;
use crate::torrent::Handled;
use crate::trace::{describe_handshake, phase};
use crate::wire::{decode_frame, FrameLimits, Handshake, Message, HANDSHAKE_LEN};

/// Bytes read from one peer per loop pass before the loop moves on: 1 MiB
/// keeps a fast loopback transfer efficient (about 64 blocks per pass)
/// while no single peer can starve the others.
const READ_BUDGET_BYTES: usize = 1024 * 1024;

/// Our BEP 3 handshake: the extension-protocol (BEP 10) and fast extension
/// (BEP 6) bits set, as the torrent core's rules assume, and the DHT bit
/// (BEP 5) when the torrent uses our DHT node.
pub(super) fn our_handshake(info_hash: [u8; 20], peer_id: [u8; 20], dht: bool) -> Handshake {
    let ours = crate::torrent::our_handshake(info_hash, peer_id);
    if dht {
        ours.with_dht()
    } else {
        ours
    }
}

/// Largest read buffer a peer of a torrent of `piece_count` pieces gets:
/// one largest frame plus its prefix.
pub(super) fn read_cap_for(piece_count: u32) -> usize {
    (4 + FrameLimits::for_pieces(piece_count).max_frame_len()).max(HANDSHAKE_LEN)
}

/// Outgoing connections being set up at once. They do not count toward
/// the peer cap (a dial in progress holds no buffer, only a socket), so a
/// tracker list full of dead addresses (peers behind NATs and firewalls
/// that drop SYNs: a good part of any real list) is worked through at up to
/// 100 dials per connect timeout, 20 a second, near libtorrent's 30
/// connection attempts a second: a live address behind 200 dead ones waits
/// about 10 s at worst, not minutes. The old reason for a small number
/// (Windows XP's ten half-open connections) is long gone; libtorrent dropped
/// its half-open limit in 1.1. Sockets stay bounded: the peer cap plus this.
pub(super) const MAX_HALF_OPEN: usize = 100;

impl Session {
    /// Accept phase: takes every pending incoming connection (edge
    /// triggered: until WouldBlock). Banned, or at the peer cap with no
    /// useless connection to replace ([`Session::make_room`]): closed at once.
    pub(super) fn accept_peers(&mut self, now: Instant) {
        loop {
            let (mut socket, addr) = match self.listener.accept() {
                // On the dual-stack listener an IPv4 peer is `::ffff:a.b.c.d`.
                Ok((socket, addr)) => (socket, crate::peer_list::canonical(addr)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            // Which torrent it wants is known only from its handshake; an
            // address every torrent has banned is refused at once.
            let banned_everywhere = self
                .torrents
                .iter()
                .all(|(_, s)| s.torrent.peer_list().is_banned(addr));
            if banned_everywhere || !self.make_room(now) {
                log::debug!("{addr}: refused (peer limit or banned)");
                continue;
            }
            let cap = self.read_cap(None);
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
            let mut conn = Conn::new(socket, addr, None, cap, now);
            conn.sent_log = tracing.then(Vec::new);
            entry.insert(conn);
        }
    }

    /// Whether a newcomer may be accepted: under the peer cap (counting
    /// connections past their connect and not closing, as `add_peers`
    /// does), or at it with a useless
    /// connection to replace ([`super::evict`]), which is marked for
    /// closing (the slab may thus briefly hold more than the cap, at most
    /// one closing connection per newcomer, until cleanup).
    fn make_room(&mut self, now: Instant) -> bool {
        if self.connected_count() < self.config.max_peers {
            return true;
        }
        let occupants = self.occupants(now);
        let Some(key) = super::evict::pick_victim(&occupants) else {
            return false;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        log::debug!("{}: replaced by a newcomer at the peer cap", conn.addr);
        conn.close(CloseReason::Replaced);
        true
    }

    /// The open connections as [`super::evict`] sees them.
    fn occupants(&mut self, now: Instant) -> Vec<Occupant> {
        let mut interest: HashMap<(TorrentId, usize), (bool, bool)> = HashMap::new();
        for (tid, slot) in &mut self.torrents {
            for peer in slot.torrent.peers(now) {
                let flags = (peer.state.peer_interested(), peer.state.am_interested());
                interest.insert((tid, peer.key), flags);
            }
        }
        self.conns
            .iter()
            .filter(|(_, c)| c.closing.is_none())
            .map(|(key, c)| {
                let (peer_interested, am_interested) = c
                    .torrent
                    .and_then(|tid| interest.get(&(tid, key)).copied())
                    .unwrap_or((false, false));
                Occupant {
                    key,
                    age: now.saturating_duration_since(c.opened_at),
                    stage: match c.stage {
                        Stage::Connecting => OccupantStage::Connecting,
                        Stage::Handshaking => OccupantStage::Handshaking,
                        Stage::Active => OccupantStage::Active,
                    },
                    stalled: c.is_stalled(now, super::upload::STALLED_AFTER),
                    peer_interested,
                    am_interested,
                }
            })
            .collect()
    }

    /// Largest read buffer a peer of `torrent` gets: one largest frame
    /// plus its prefix (for a connection not yet routed, the largest of
    /// any torrent's).
    pub(super) fn read_cap(&self, torrent: Option<TorrentId>) -> usize {
        (4 + self.frame_limits(torrent).max_frame_len()).max(HANDSHAKE_LEN)
    }

    /// The frame limits for a peer of `torrent` (a BITFIELD is sized by its
    /// piece count); for one not yet routed, the most generous of all.
    fn frame_limits(&self, torrent: Option<TorrentId>) -> FrameLimits {
        let limits_of = |slot: &super::slot::Slot| {
            if slot.torrent.is_awaiting_metadata() {
                FrameLimits::before_metadata()
            } else {
                FrameLimits::for_pieces(slot.meta.layout.piece_count())
            }
        };
        let limits = match torrent {
            Some(tid) => self.torrents.get(tid).map(limits_of),
            None => self
                .torrents
                .iter()
                .map(|(_, s)| limits_of(s))
                .max_by_key(FrameLimits::max_frame_len),
        };
        limits.unwrap_or(FrameLimits::for_pieces(0))
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
        let torrent = self.conns.get(key).and_then(|c| c.torrent);
        let limits = self.frame_limits(torrent);
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

    /// The peer's handshake arrived: find its torrent (ours when we
    /// dialled; for an incoming peer, the torrent whose info-hash it names),
    /// check it (not ourselves, not banned, not a second connection of the
    /// same peer), answer with ours, and let the torrent core greet it
    /// (bitfield, BEP 10 handshake).
    fn on_handshake(&mut self, key: usize, handshake: &Handshake, now: Instant) {
        let our_id = self.peer_id;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let routed = match conn.torrent {
            Some(tid) => self
                .torrents
                .get(tid)
                .filter(|s| s.meta.info_hash.0 == handshake.info_hash)
                .map(|_| tid),
            None => self
                .torrents
                .iter()
                .find(|(_, s)| s.meta.info_hash.0 == handshake.info_hash && !s.paused)
                .map(|(tid, _)| tid),
        };
        let (Some(tid), Some(slot)) = (routed, routed.and_then(|t| self.torrents.get_mut(t)))
        else {
            return conn.close(CloseReason::WrongInfoHash);
        };
        let info_hash = slot.meta.info_hash.0;
        // Our DHT node's port, if this torrent uses it (never a private one).
        let dht_port = self
            .dht
            .as_ref()
            .map(|d| d.port)
            .filter(|_| !slot.meta.private);
        if handshake.peer_id == our_id {
            return self.on_self_connection(key, info_hash, now);
        }
        if conn.torrent.is_none() && !slot.torrent.peer_list_mut().mark_incoming(conn.addr) {
            return conn.close(CloseReason::Banned);
        }
        conn.torrent = Some(tid);
        if let Err(reason) = slot.torrent.check_handshake(&handshake.peer_id) {
            return conn.close(reason);
        }
        conn.stage = Stage::Active;
        let (addr, outgoing) = (conn.addr, conn.outgoing);
        if let Some((tracer, _)) = self.tracer.as_mut() {
            let client = super::client_tag(&handshake.peer_id);
            tracer.wire_in(
                now,
                phase::RECEIVE,
                addr,
                &describe_handshake(&client, &handshake.reserved),
            );
        }
        if !conn.sent_handshake {
            let ours = our_handshake(info_hash, our_id, dht_port.is_some());
            conn.write_buf.extend_from_slice(&ours.encode());
            conn.sent_handshake = true;
            conn.log_sent(|| describe_handshake(&super::client_tag(&our_id), &ours.reserved));
        }
        log::debug!(
            "{addr}: handshake ok, client {}",
            super::client_tag(&handshake.peer_id)
        );
        slot.torrent.handle_handshake(key, addr, handshake, now);
        if outgoing {
            slot.torrent.handle_dialled(key);
        }
        self.apply_actions(tid, now);
        if let Some(port) = dht_port.filter(|_| handshake.supports_dht()) {
            self.send_port(key, port);
        }
    }

    /// Tells a peer that speaks the DHT where our node listens (BEP 5: a
    /// PORT message after the handshake), after the core's first messages
    /// (a BITFIELD or HAVE ALL must come first).
    fn send_port(&mut self, key: usize, port: u16) {
        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.closing.is_none()) {
            Message::Port(port).encode(&mut conn.write_buf);
            conn.log_sent(|| format!("PORT {port}"));
        }
    }

    /// A handshake came with our own peer id: we dialled ourselves. The
    /// dialling side never lists the address it dialled again, in any
    /// torrent (a tracker would hand it back at every announce). The
    /// answering side cannot know which address that was (through a NAT or
    /// a forwarded port it is not ours), so it answers with our handshake
    /// first, which tells the dialling side, then closes.
    fn on_self_connection(&mut self, key: usize, info_hash: [u8; 20], now: Instant) {
        let our_id = self.peer_id;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let (addr, outgoing) = (conn.addr, conn.outgoing);
        if !conn.sent_handshake {
            conn.write_buf
                .extend_from_slice(&our_handshake(info_hash, our_id, false).encode());
            conn.sent_handshake = true;
            // Now, not in before_sleep: cleanup closes it before then.
            self.flush(key, now);
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.close(CloseReason::ConnectedToSelf);
        }
        if outgoing {
            log::info!("{addr}: this address is ourselves; not dialling it again");
            for (_, slot) in &mut self.torrents {
                slot.torrent.peer_list_mut().mark_own(addr);
            }
        }
    }

    /// Handles one message from an active peer: its torrent's core decides;
    /// a block it wants is written here, from the frame in the read buffer.
    fn handle_message(&mut self, key: usize, message: Message<'_>, now: Instant) {
        let Some((tid, addr)) = self.conns.get(key).and_then(|c| Some((c.torrent?, c.addr))) else {
            return;
        };
        if let Message::Port(port) = message {
            // BEP 5: the peer's DHT node; never learnt through a private torrent.
            if self.uses_dht(tid) {
                self.dht_node_from_peer(addr, port, now);
            }
        }
        self.handle_peer_message(tid, key, message, now);
    }

    /// Hands one message from peer `key` of torrent `tid` to its core and
    /// writes the block it wants kept (a connection's frames, and the
    /// blocks a web seed's HTTP replies carry, both come this way).
    pub(super) fn handle_peer_message(
        &mut self,
        tid: TorrentId,
        key: usize,
        message: Message<'_>,
        now: Instant,
    ) {
        let Some(slot) = self.torrents.get_mut(tid) else {
            return;
        };
        let data = match message {
            Message::Piece { data, .. } => data,
            _ => &[],
        };
        if let Handled::Write(write) = slot.torrent.handle_message(key, message, now) {
            if self.fatal.is_some() {
                return; // stopping on a disk error: no more writes, no more errors
            }
            if let Err(e) = slot
                .storage
                .write(write.block.piece, write.block.begin, data)
            {
                return self.fail_torrent(tid, Error::Storage(e));
            }
            slot.torrent.handle_block_written(write);
        }
        self.apply_actions(tid, now);
    }
}
