//! The session's side of the DHT (BEP 5): the node's UDP socket, its saved
//! state, the bootstrap names, and the torrents it finds peers for.
//!
//! Layer 2 driving the sans-IO [`crate::dht::Dht`] node: the socket is
//! read in `receive_dht` (dispatch), and `drive_dht` (every pass, cheap
//! when nothing is due) runs the node's timers, sends its datagrams, hands
//! the peers it found to their torrents' peer lists, and tells it which
//! torrents to look up and announce: every torrent that is not private
//! (BEP 27) and not paused. A magnet's torrent is looked up before its
//! metadata says whether it is private, and dropped if it is.
//!
//! The node listens on the same port number as the peer listener (as
//! libtorrent and Transmission do), on IPv4 only (BEP 32 is not
//! implemented). Its id and good nodes are saved in
//! `DEST/.pollen/dht.state` (atomically, like the resume files) every
//! [`SAVE_PERIOD`] and at exit, and read back at the next start, so a
//! restarted pollen needs no bootstrap node. A second pollen with the same
//! destination (the state's lock, `dht.lock`, is held) runs its node with a
//! fresh id and saves nothing. Peers that set the DHT bit in
//! their handshake are sent our port (a PORT message), and a PORT from a
//! peer names a node to ping.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::{Session, TorrentId};
use crate::dht::krpc::{InfoHash, MAX_DATAGRAM_LEN};
use crate::dht::{state_file, Dht, DhtEvent, NodeId};
use crate::peer_list::canonical;
use crate::resume::{self, RESUME_DIR};
use crate::trace::phase;
use crate::tracker::resolve::{Lookup, Resolver};

/// The DHT socket's token: one of the fixed tokens at the top of the token
/// space (listener, waker, DHT), above the UDP trackers' range.
pub(super) const DHT: Token = Token(usize::MAX - 2);

/// The saved state's file name, in `DEST/.pollen/`.
pub const DHT_STATE_FILE: &str = "dht.state";

/// The lock of the saved state, in `DEST/.pollen/`: two pollens with one
/// destination would otherwise run two nodes with the same id (other nodes
/// refuse an id seen at a second address).
const DHT_LOCK_FILE: &str = "dht.lock";

/// How often the node's state is saved while running (and once at exit):
/// after a crash, the next start still has a recent list of nodes.
const SAVE_PERIOD: Duration = Duration::from_secs(10 * 60);

/// How often the set of torrents the node looks up is brought up to date
/// (added, removed, paused, or found private once a magnet's metadata came).
const SYNC_PERIOD: Duration = Duration::from_secs(1);

/// Most datagrams read per pass: a flood on the DHT port cannot keep the
/// loop from its peers (the rest wait in the kernel's buffer, or are lost
/// as UDP may be).
const MAX_DATAGRAMS_PER_PASS: usize = 256;

/// Bytes read per datagram: one more than the largest the codec accepts,
/// so an over-long one is seen as such and dropped.
const RECV_BYTES: usize = MAX_DATAGRAM_LEN + 1;

/// Largest saved state file read (the codec caps it far lower): a damaged
/// or hostile file cannot make us allocate much.
const MAX_STATE_FILE_BYTES: u64 = 64 * 1024;

/// Most bootstrap host names waiting for their address: `--dht-bootstrap`
/// is repeatable, but a handful of routers is all a node needs.
const MAX_BOOTSTRAP_NAMES: usize = 16;

/// How long after a failed lookup a bootstrap name is looked up again.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(60);

/// The DHT routers a release build starts from when given none and having
/// no saved nodes (libtorrent's and Transmission's defaults). Debug builds,
/// which the tests run, never use them.
pub const PUBLIC_DHT_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// A bootstrap host name waiting for its address.
#[derive(Debug)]
struct BootstrapName {
    host: String,
    port: u16,
    /// After a failed lookup, when to try again; `None` while it is being
    /// looked up (the resolver's thread wakes the loop when it ends).
    retry_at: Option<Instant>,
}

/// The DHT node and what the session keeps for it.
pub(super) struct DhtSide {
    pub(super) node: Dht,
    socket: UdpSocket,
    /// Where the node's state is saved; `None` when another pollen holds
    /// it (this node then has a fresh id and saves nothing).
    pub(super) state_path: Option<PathBuf>,
    /// The saved state's lock, held while the session runs.
    _state_lock: Option<crate::lock::InstanceLock>,
    /// The TCP port we announce (the peer listener's).
    announce_port: u16,
    /// The UDP port the node answers on (sent in PORT messages).
    pub(super) port: u16,
    resolver: Resolver,
    names: Vec<BootstrapName>,
    /// The info-hashes the node was told to look up.
    tracked: HashSet<InfoHash>,
    next_sync: Instant,
    next_save: Instant,
}

impl Session {
    /// Opens the DHT node's socket (same port as the listener when free),
    /// loads its saved state and queues the bootstrap nodes. `None` when
    /// the DHT is off (`--no-dht`) or cannot run here (an IPv6-only
    /// listener, a socket error: logged, the session goes on without it).
    pub(super) fn open_dht(&mut self, now: Instant) -> Option<DhtSide> {
        if !self.config.dht {
            return None;
        }
        let ip = match self.listen_addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv4Addr::UNSPECIFIED,
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => v4,
                None => {
                    log::info!("DHT off: it runs over IPv4 only, and we listen on {ip}");
                    return None;
                }
            },
        };
        let port = self.listen_addr.port();
        let mut socket =
            match UdpSocket::bind((ip, port).into()).or_else(|_| UdpSocket::bind((ip, 0).into())) {
                Ok(socket) => socket,
                Err(e) => {
                    log::warn!("DHT off: cannot open a UDP socket on {ip}: {e}");
                    return None;
                }
            };
        let local = match socket.local_addr() {
            Ok(local) => local,
            Err(e) => {
                log::warn!("DHT off: {e}");
                return None;
            }
        };
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, DHT, Interest::READABLE)
        {
            log::warn!("DHT off: cannot register its socket: {e}");
            return None;
        }
        let dir = self.config.dest.join(RESUME_DIR);
        let state_lock = match crate::lock::InstanceLock::acquire_path(dir.join(DHT_LOCK_FILE)) {
            Ok(lock) => Some(lock),
            Err(e) => {
                log::info!(
                    "DHT state in {}: {e}; this node takes a fresh id",
                    dir.display()
                );
                None
            }
        };
        let state_path = state_lock.as_ref().map(|_| dir.join(DHT_STATE_FILE));
        let saved = state_path.as_deref().and_then(load_state);
        let id = saved
            .as_ref()
            .map_or_else(|| NodeId::random(&mut self.rng), |s| s.id);
        let mut node = Dht::new(id, self.rng.next_u64(), now);
        let saved_nodes = saved.map(|s| s.nodes).unwrap_or_default();
        for saved in &saved_nodes {
            node.add_node(SocketAddr::V4(saved.addr), now);
        }
        let waker = Arc::clone(&self.waker);
        let resolver = Resolver::new(Arc::new(move || {
            let _ = waker.wake(); // a failed wake only delays the answer
        }));
        let names = bootstrap_names(&self.config.dht_bootstrap);
        log::info!(
            "DHT node {id} on UDP {local}: {} saved nodes, {} bootstrap nodes",
            saved_nodes.len(),
            names.len()
        );
        Some(DhtSide {
            node,
            socket,
            state_path,
            _state_lock: state_lock,
            announce_port: port,
            port: local.port(),
            resolver,
            names,
            tracked: HashSet::new(),
            next_sync: now,
            next_save: now + SAVE_PERIOD,
        })
    }

    /// The DHT socket is readable: every datagram (up to
    /// [`MAX_DATAGRAMS_PER_PASS`]) goes to the node, and its answers out.
    pub(super) fn receive_dht(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let mut buf = [0u8; RECV_BYTES];
        for _ in 0..MAX_DATAGRAMS_PER_PASS {
            match dht.socket.recv_from(&mut buf) {
                Ok((len, from)) => {
                    let bytes = buf.get(..len).unwrap_or_default();
                    let from = canonical(from);
                    if let Some((tracer, _)) = self.tracer.as_mut() {
                        tracer.dht(now, phase::RECEIVE, from, true, bytes);
                    }
                    dht.node.handle_datagram(from, bytes, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // An ICMP error for an earlier send, on Linux: not fatal.
                    log::debug!("DHT socket: {e}");
                }
            }
        }
        self.send_dht_datagrams(now);
    }

    /// The DHT phase (every pass): looks up bootstrap names, keeps the set
    /// of torrents up to date (once a second), runs the node's due timers,
    /// sends what it queued, and hands the peers it found to their
    /// torrents. Saves the node's state every [`SAVE_PERIOD`] (blocking
    /// disk I/O, once in ten minutes).
    pub(super) fn drive_dht(&mut self, now: Instant) {
        if self.dht.is_none() {
            return;
        }
        self.phase = phase::DRIVE_DHT;
        self.resolve_bootstrap(now);
        if self.dht.as_ref().is_some_and(|d| now >= d.next_sync) {
            self.sync_dht_torrents(now);
        }
        if let Some(dht) = self.dht.as_mut() {
            if dht.node.next_deadline().is_some_and(|at| now >= at) {
                dht.node.handle_timeout(now);
            }
        }
        self.send_dht_datagrams(now);
        self.take_dht_events(now);
        if self.dht.as_ref().is_some_and(|d| now >= d.next_save) {
            self.save_dht(now);
        }
    }

    /// When the DHT next needs the loop: its node's timer, a bootstrap
    /// name's retry, a lookup timing out, the next sync or save.
    pub(super) fn dht_deadline(&self) -> Option<Instant> {
        let dht = self.dht.as_ref()?;
        let mut at = dht.next_sync.min(dht.next_save);
        if let Some(node) = dht.node.next_deadline() {
            at = at.min(node);
        }
        if let Some(lookup) = dht.resolver.next_deadline() {
            at = at.min(lookup);
        }
        if let Some(retry) = dht.names.iter().filter_map(|n| n.retry_at).min() {
            at = at.min(retry);
        }
        Some(at)
    }

    /// One line about the DHT for the TUI: `DHT: 42 nodes (38 good)`.
    pub(super) fn dht_summary(&self) -> Option<String> {
        let stats = self.dht.as_ref()?.node.stats();
        Some(format!(
            "DHT: {} nodes ({} good)",
            stats.nodes, stats.good_nodes
        ))
    }

    /// A peer's PORT message: its DHT node listens on `port` at its IP.
    pub(super) fn dht_node_from_peer(&mut self, peer: SocketAddr, port: u16, now: Instant) {
        if let Some(dht) = self.dht.as_mut().filter(|_| port != 0) {
            dht.node.add_node(SocketAddr::new(peer.ip(), port), now);
        }
    }

    /// Whether torrent `tid` uses the DHT: the handshake's DHT bit, PORT
    /// messages, lookups and announces. Never for a private torrent.
    pub(super) fn uses_dht(&self, tid: TorrentId) -> bool {
        self.dht.is_some() && self.torrents.get(tid).is_some_and(|s| !s.meta.private)
    }

    /// Saves the node's id and good nodes. A run that found no node at all
    /// does not overwrite a saved file (it may have been offline).
    pub(super) fn save_dht(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        dht.next_save = now + SAVE_PERIOD;
        let Some(path) = dht.state_path.as_ref() else {
            return;
        };
        let state = dht.node.saved_state();
        if state.nodes.is_empty() && path.exists() {
            return;
        }
        match resume::save_bytes(path, &state_file::encode(&state)) {
            Ok(()) => log::debug!(
                "DHT state saved: {} nodes in {}",
                state.nodes.len(),
                path.display()
            ),
            Err(e) => log::warn!("DHT state not saved: {e}"),
        }
    }

    /// Sends every datagram the node queued. A full socket buffer drops
    /// the rest (UDP: the node's timeouts treat them as lost).
    fn send_dht_datagrams(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        while let Some(transmit) = dht.node.poll_transmit() {
            if let Some((tracer, _)) = self.tracer.as_mut() {
                tracer.dht(now, self.phase, transmit.to, false, &transmit.bytes);
            }
            match dht.socket.send_to(&transmit.bytes, transmit.to) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    log::debug!("DHT socket full: datagram to {} dropped", transmit.to);
                }
                Err(e) => log::debug!("DHT: send to {} failed: {e}", transmit.to),
            }
        }
    }

    /// Peers the node found join their torrent's peer list (which makes
    /// them canonical; dialled by the next `add_peers`, now if any is new).
    fn take_dht_events(&mut self, now: Instant) {
        let mut added = 0;
        while let Some(event) = self.dht.as_mut().and_then(|d| d.node.poll_event()) {
            let DhtEvent::Peers { info_hash, peers } = event;
            let Some((_, slot)) = self
                .torrents
                .iter_mut()
                .find(|(_, s)| s.meta.info_hash.0 == info_hash)
            else {
                continue;
            };
            if slot.meta.private {
                continue;
            }
            let list = slot.torrent.peer_list_mut();
            let new = peers.iter().filter(|a| list.add(**a)).count();
            log::debug!(
                "DHT: {} peers for {} ({new} new)",
                peers.len(),
                slot.meta.info_hash.to_hex()
            );
            added += new;
        }
        if added > 0 {
            self.add_peers(now);
        }
    }

    /// Tells the node about torrents added, removed, paused, resumed, or
    /// found private.
    fn sync_dht_torrents(&mut self, now: Instant) {
        let wanted: HashSet<InfoHash> = self
            .torrents
            .iter()
            .filter(|(_, s)| !s.meta.private && !s.paused)
            .map(|(_, s)| s.meta.info_hash.0)
            .collect();
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        dht.next_sync = now + SYNC_PERIOD;
        for gone in dht.tracked.difference(&wanted) {
            dht.node.remove_torrent(gone);
        }
        for new in wanted.difference(&dht.tracked) {
            dht.node.add_torrent(*new, Some(dht.announce_port), now);
        }
        dht.tracked = wanted;
    }

    /// Looks up the bootstrap names whose turn it is; each one found is
    /// handed to the node.
    fn resolve_bootstrap(&mut self, now: Instant) {
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        let mut index = 0;
        while let Some(name) = dht.names.get_mut(index) {
            if name.retry_at.is_some_and(|at| now < at) {
                index += 1;
                continue;
            }
            name.retry_at = None;
            match dht.resolver.lookup(&name.host, name.port, now) {
                Lookup::Pending => index += 1,
                Lookup::Failed(why) => {
                    log::info!("DHT bootstrap {}:{}: {why}", name.host, name.port);
                    name.retry_at = Some(now + BOOTSTRAP_RETRY);
                    index += 1;
                }
                Lookup::Ready(addr) => {
                    log::debug!("DHT bootstrap {}:{} is {addr}", name.host, name.port);
                    dht.node.add_node(canonical(addr), now);
                    dht.names.swap_remove(index);
                }
            }
        }
    }
}

/// The bootstrap nodes as host names and ports (`HOST:PORT`, `[V6]:PORT`;
/// the CLI checked them), at most [`MAX_BOOTSTRAP_NAMES`].
fn bootstrap_names(texts: &[String]) -> Vec<BootstrapName> {
    texts
        .iter()
        .filter_map(|text| {
            let (host, port) = text.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some(BootstrapName {
                host: host.to_string(),
                port: port.parse().ok().filter(|p| *p != 0)?,
                retry_at: None,
            })
        })
        .take(MAX_BOOTSTRAP_NAMES)
        .collect()
}

/// The saved state at `path`, if there is a usable one (a damaged file is
/// logged and ignored: the node starts afresh).
fn load_state(path: &std::path::Path) -> Option<state_file::SavedState> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_STATE_FILE_BYTES).read_to_end(&mut bytes) {
        log::warn!("{}: {e}; the DHT starts afresh", path.display());
        return None;
    }
    match state_file::decode(&bytes) {
        Ok(state) => Some(state),
        Err(e) => {
            log::warn!("{}: {e}; the DHT starts afresh", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_names_take_host_and_port_and_skip_bad_ones() {
        let texts = [
            "router.example:6881".to_string(),
            "127.0.0.1:1".to_string(),
            "[::1]:7".to_string(),
            "no-port".to_string(),
            "zero:0".to_string(),
        ];
        let names: Vec<(String, u16)> = bootstrap_names(&texts)
            .into_iter()
            .map(|n| (n.host, n.port))
            .collect();
        assert_eq!(
            names,
            [
                ("router.example".to_string(), 6881),
                ("127.0.0.1".to_string(), 1),
                ("::1".to_string(), 7)
            ]
        );
    }

    #[test]
    fn the_dht_token_is_no_other_fixed_token() {
        assert_ne!(DHT, super::super::LISTENER);
        assert_ne!(DHT, super::super::announce::WAKE);
        assert_eq!(super::super::announce::udp_tier(DHT), None);
        assert_eq!(super::super::web_seed::web_seed_of(DHT.0), None);
    }
}
