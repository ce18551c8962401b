//! The add-peers phase and the end of a nonblocking connect.
//!
//! Layer 2. `add_peers` dials known addresses up to the peer cap, at most
//! `MAX_HALF_OPEN` connects in progress at a time (they do not count
//! toward the cap; one that connects when the cap is full is closed); `on_writable` finishes a connect by mio's
//! steps (writable, `take_error`, `peer_addr`) and sends our handshake, or
//! flushes queued output on an established connection.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::conn::{Conn, Stage};
use super::receive::{our_handshake, read_cap_for, MAX_HALF_OPEN};
use super::{Session, TorrentId};
use crate::close_reason::CloseReason;
use crate::trace::describe_handshake;

impl Session {
    /// Add-peers phase: start nonblocking connects to known, idle
    /// addresses while under the peer cap and the half-open cap, the
    /// torrents taking turns (one address each per round) so one torrent's
    /// long peer list cannot take every slot. Never blocks.
    pub(super) fn add_peers(&mut self, now: Instant) {
        let mut wanting: Vec<TorrentId> = self.torrent_ids();
        while !wanting.is_empty() {
            wanting.retain(|&tid| self.dial_one(tid, now) == Dial::Started);
        }
    }

    /// One nonblocking connect for torrent `tid`, if the caps allow and
    /// it has a candidate address.
    fn dial_one(&mut self, tid: TorrentId, now: Instant) -> Dial {
        let half_open = self
            .conns
            .iter()
            .filter(|(_, c)| c.stage == Stage::Connecting)
            .count();
        // Dials in progress do not count toward the peer cap (see MAX_HALF_OPEN).
        let connected = self.conns.len().saturating_sub(half_open);
        if connected >= self.config.max_peers || half_open >= MAX_HALF_OPEN {
            return Dial::Stop;
        }
        let seed = self.config.seeds();
        let Some(slot) = self.torrents.get_mut(tid) else {
            return Dial::Stop;
        };
        if slot.paused || (slot.torrent.is_complete() && !seed) {
            return Dial::Stop;
        }
        loop {
            let peer_list = slot.torrent.peer_list_mut();
            let Some(addr) = peer_list.next_to_connect(now) else {
                return Dial::Stop;
            };
            let mut socket = match TcpStream::connect(addr) {
                Ok(socket) => socket,
                Err(e) => {
                    log::debug!("{addr}: connect failed: {e}");
                    peer_list.disconnected(addr, &CloseReason::ConnectFailed(e.kind()), now);
                    continue;
                }
            };
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut socket, token, interest) {
                log::warn!("{addr}: register failed: {e}");
                peer_list.disconnected(addr, &CloseReason::RegisterFailed(e.kind()), now);
                continue;
            }
            log::debug!("{addr}: connecting");
            let piece_count = slot.meta.layout.piece_count();
            let cap = read_cap_for(piece_count);
            let mut conn = Conn::new(socket, addr, Some(tid), cap, now);
            conn.sent_log = self.tracer.is_some().then(Vec::new);
            entry.insert(conn);
            return Dial::Started;
        }
    }

    /// A socket became writable: a connect finished (or failed), or there
    /// is room to send more.
    pub(super) fn on_writable(&mut self, key: usize, now: Instant) {
        let peer_id = self.peer_id;
        // Only a connect that just finished asks about the cap (not every flush).
        let connecting = self
            .conns
            .get(key)
            .is_some_and(|c| c.stage == Stage::Connecting);
        let cap_full = connecting && self.connected_count() >= self.config.max_peers;
        let dht = self
            .conns
            .get(key)
            .and_then(|c| c.torrent)
            .is_some_and(|tid| self.uses_dht(tid));
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let torrent = conn.torrent.and_then(|tid| self.torrents.get(tid));
        let Some(info_hash) = torrent.map(|s| s.meta.info_hash.0) else {
            return self.flush(key, now);
        };
        if conn.stage == Stage::Connecting {
            match connect_result(&conn.socket) {
                Ok(false) => return, // spurious wake-up; still connecting
                Ok(true) if cap_full => return conn.close(CloseReason::PeerLimit),
                Ok(true) => {
                    log::debug!("{}: connected", conn.addr);
                    conn.stage = Stage::Handshaking;
                    conn.opened_at = now;
                    let handshake = our_handshake(info_hash, peer_id, dht);
                    conn.write_buf.extend_from_slice(&handshake.encode());
                    conn.sent_handshake = true;
                    conn.log_sent(|| {
                        describe_handshake(&super::client_tag(&peer_id), &handshake.reserved)
                    });
                }
                Err(e) => return conn.close(CloseReason::ConnectFailed(e.kind())),
            }
            self.trace_sent(crate::trace::phase::ON_WRITABLE, now);
        }
        self.flush(key, now);
    }
}

impl Session {
    /// Connections past their connect and not closing: what the peer cap
    /// counts.
    pub(super) fn connected_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.stage != Stage::Connecting && c.closing.is_none())
            .count()
    }
}

/// What [`Session::dial_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    /// A connect started; the torrent may have more candidates.
    Started,
    /// No more for now: a cap is reached, or the torrent has no candidate.
    Stop,
}

/// mio's steps for a finished nonblocking connect: a pending socket error
/// means it failed; `peer_addr` answering means it is connected;
/// `NotConnected` means not yet.
pub(super) fn connect_result(socket: &TcpStream) -> io::Result<bool> {
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
