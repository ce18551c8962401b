//! The known-peer list: every address heard of (tracker, `--peer`, incoming
//! connections), whether it is connected, when to retry it, and bans.
//!
//! Layer 0: pure; times are passed in. A peer is an (address, port) pair:
//! on loopback, and behind a household NAT, many peers share one IP.
//!
//! Our own addresses are never listed (a tracker hands us back ourselves,
//! a `--peer` names us): the listening address, where bound to `0.0.0.0`
//! or `::` any loopback address with our port too, and every address a
//! handshake showed to be us ([`PeerList::mark_own`]).
//!
//! Addresses are kept in [`canonical`] form: an IPv4-mapped IPv6 address
//! (`::ffff:1.2.3.4`, what a dual-stack listener reports for an IPv4 peer,
//! or what a tracker or a PEX message may send) is stored as the IPv4
//! address it is, so one peer never appears under two addresses.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;

/// Most addresses remembered: bounds memory whatever trackers send.
pub const MAX_KNOWN_PEERS: usize = 2_000;

/// Pieces that failed their hash check with a peer's data before it is
/// banned (Transmission uses 5; a peer whose data fails three pieces is
/// broken or hostile).
pub const MAX_STRIKES: u32 = 3;

/// First retry delay after a failed or dropped connection; doubles per
/// failure up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Longest retry delay: a peer that was down may come back.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);

/// Failures after which an address is forgotten.
const MAX_FAILURES: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Idle,
    Connected,
    Banned,
}

#[derive(Debug, Clone)]
struct Entry {
    status: Status,
    failures: u32,
    retry_at: Option<Instant>,
    strikes: u32,
    /// Its peer id from its last handshake: strikes follow the peer, not
    /// only the port it happened to connect from.
    peer_id: Option<[u8; 20]>,
    /// It is known to listen (a tracker, PEX, the DHT, `--peer` or its own
    /// extension handshake named it). An address seen only as the source
    /// of an incoming connection is its ephemeral port: never dialled, and
    /// forgotten when that connection ends.
    dialable: bool,
}

/// Most banned IPs and peer ids remembered.
const MAX_BANS: usize = 1_000;

/// Most addresses remembered as our own (found by handshakes): a machine
/// has a few interfaces and NAT mappings, not thousands.
const MAX_OWN_ADDRS: usize = 64;

/// Known peers.
#[derive(Debug, Clone, Default)]
pub struct PeerList {
    entries: HashMap<SocketAddr, Entry>,
    /// IPs of banned peers (never loopback: there every peer shares one IP).
    banned_ips: HashSet<IpAddr>,
    /// Peer ids of banned peers, so a banned peer dialling in again from a
    /// new port is still refused.
    banned_ids: HashSet<[u8; 20]>,
    /// Strikes by peer id (at most [`MAX_BANS`] ids), so a peer that comes
    /// back from another port keeps the strikes it earned.
    id_strikes: HashMap<[u8; 20], u32>,
    /// Where we listen: that address (and, bound to all interfaces, any
    /// loopback address with its port) is us.
    listen_addr: Option<SocketAddr>,
    /// Addresses that handshakes showed to be us (at most [`MAX_OWN_ADDRS`]).
    own: HashSet<SocketAddr>,
}

/// `addr` with an IPv4-mapped IPv6 address (`[::ffff:1.2.3.4]:P`) turned
/// into the IPv4 one (`1.2.3.4:P`); any other address as it is. Every peer
/// address that comes from outside (an accepted connection, a tracker, a
/// PEX message, `--peer`, a magnet link's `x.pe`) goes through this, here
/// in [`PeerList::add`] or in the session's accept phase.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl PeerList {
    /// An empty list.
    pub fn new() -> PeerList {
        PeerList::default()
    }

    /// Remembers `addr` (in [`canonical`] form); false if it was known
    /// already, is our own, or the list is full.
    pub fn add(&mut self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.dialable = true; // named by a source of listening addresses
            return false;
        }
        if self.entries.len() >= MAX_KNOWN_PEERS {
            return false;
        }
        if addr.port() == 0 || addr.ip().is_unspecified() || self.is_own(addr) {
            return false;
        }
        self.entries.insert(
            addr,
            Entry {
                status: Status::Idle,
                failures: 0,
                retry_at: None,
                strikes: 0,
                peer_id: None,
                dialable: true,
            },
        );
        true
    }

    /// Number of known addresses (any status).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An idle address whose retry time has come, marked connected: of
    /// those, one that failed least often (never tried first). Otherwise
    /// the dead addresses early in the map's order would be dialled again
    /// each time their back-off ends, and a live address later in it wait
    /// behind them for minutes.
    pub fn next_to_connect(&mut self, now: Instant) -> Option<SocketAddr> {
        let (addr, entry) = self
            .entries
            .iter_mut()
            .filter(|(_, e)| {
                e.dialable && e.status == Status::Idle && e.retry_at.is_none_or(|at| at <= now)
            })
            .min_by_key(|(_, e)| e.failures)?;
        entry.status = Status::Connected;
        Some(*addr)
    }

    /// Marks `addr`, the source of an incoming connection, connected; false
    /// if banned. Unless something else named it as a listening address,
    /// it is not dialled later and is forgotten when the connection ends
    /// (it is the peer's ephemeral port, which nothing listens on).
    pub fn mark_incoming(&mut self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        let known = self.entries.contains_key(&addr);
        let accepted = self.mark_connected(addr);
        if !known {
            if let Some(entry) = self.entries.get_mut(&addr) {
                entry.dialable = false;
            }
        }
        accepted
    }

    /// Marks `addr` connected (a peer's listening address, connected now
    /// through another); false if banned.
    pub fn mark_connected(&mut self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        if self.banned_ips.contains(&addr.ip()) {
            return false;
        }
        self.add(addr);
        match self.entries.get_mut(&addr) {
            Some(e) if e.status == Status::Banned => false,
            Some(e) => {
                e.status = Status::Connected;
                true
            }
            None => true, // list full: serve it without remembering it
        }
    }

    /// The connection to `addr` ended for `reason`. A failure
    /// ([`CloseReason::is_failure`]: it never got through the handshake, or
    /// was dropped for misbehaving) backs off longer each time, and the
    /// address is forgotten after repeated failures.
    pub fn disconnected(&mut self, addr: SocketAddr, reason: &CloseReason, now: Instant) {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return;
        };
        if entry.status == Status::Banned {
            return;
        }
        if !entry.dialable {
            self.entries.remove(&addr);
            return;
        }
        entry.status = Status::Idle;
        if reason.is_failure() {
            entry.failures += 1;
            if entry.failures >= MAX_FAILURES {
                self.entries.remove(&addr);
                return;
            }
        } else {
            entry.failures = 0;
        }
        let shift = entry.failures.min(10);
        let delay = FIRST_RETRY_DELAY
            .saturating_mul(1 << shift)
            .min(MAX_RETRY_DELAY);
        entry.retry_at = Some(now + delay);
    }

    /// Tells the list where we listen: that address is never listed, nor,
    /// when `addr` is `0.0.0.0` or `::` (all interfaces), any loopback
    /// address with its port. Ones listed already are dropped.
    pub fn set_listen_addr(&mut self, addr: SocketAddr) {
        self.listen_addr = Some(addr);
        self.entries.retain(|a, _| !is_listen_addr(addr, *a));
    }

    /// Where we listen, if the session said ([`PeerList::set_listen_addr`]).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// A handshake showed that `addr` is us (our own peer id came back):
    /// it is dropped and never listed again (unless banned, which stays).
    pub fn mark_own(&mut self, addr: SocketAddr) {
        if !self.is_banned(addr) {
            self.entries.remove(&addr);
        }
        if self.own.len() < MAX_OWN_ADDRS {
            self.own.insert(addr);
        }
    }

    /// Whether `addr` is one of our own addresses.
    pub fn is_own(&self, addr: SocketAddr) -> bool {
        self.own.contains(&addr) || self.listen_addr.is_some_and(|l| is_listen_addr(l, addr))
    }

    /// Strikes `addr` has (0 when unknown).
    pub fn strikes(&self, addr: SocketAddr) -> u32 {
        self.entries.get(&addr).map_or(0, |e| e.strikes)
    }

    /// A piece with `addr`'s data failed its hash: one strike. Returns true
    /// when this strike bans it.
    /// Its strikes count under its address and its peer id (whichever is
    /// higher), and a ban covers both (and the IP, unless loopback),
    /// whether or not it is connected now.
    pub fn strike(&mut self, addr: SocketAddr) -> bool {
        let Some(entry) = self.entries.get_mut(&addr) else {
            return false;
        };
        if entry.status == Status::Banned {
            return false; // banned already: later proof adds nothing
        }
        entry.strikes += 1;
        let mut strikes = entry.strikes;
        let peer_id = entry.peer_id;
        if let Some(id) = peer_id {
            if self.id_strikes.len() < MAX_BANS || self.id_strikes.contains_key(&id) {
                let by_id = self.id_strikes.entry(id).or_insert(0);
                *by_id += 1;
                strikes = strikes.max(*by_id);
            }
        }
        let Some(entry) = self.entries.get_mut(&addr) else {
            return false;
        };
        entry.strikes = strikes;
        if strikes >= MAX_STRIKES && entry.status != Status::Banned {
            entry.status = Status::Banned;
            self.ban_identity(addr, peer_id);
            return true;
        }
        false
    }

    /// `addr` handshook with `peer_id` (so its strikes follow that id).
    pub fn set_peer_id(&mut self, addr: SocketAddr, peer_id: [u8; 20]) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.peer_id = Some(peer_id);
        }
    }

    /// Bans `addr` at once, with its identity (see
    /// [`PeerList::ban_identity`]): for proof that needs no strikes, like
    /// metadata that does not hash to the info-hash.
    pub fn ban(&mut self, addr: SocketAddr, peer_id: Option<[u8; 20]>) {
        self.add(addr);
        if let Some(entry) = self.entries.get_mut(&addr) {
            entry.status = Status::Banned;
        }
        self.ban_identity(addr, peer_id);
    }

    /// Bans a peer beyond its address: its IP (unless loopback, where every
    /// local peer shares one IP) and its peer id.
    pub fn ban_identity(&mut self, addr: SocketAddr, peer_id: Option<[u8; 20]>) {
        if !addr.ip().is_loopback() && self.banned_ips.len() < MAX_BANS {
            self.banned_ips.insert(addr.ip());
        }
        if let Some(id) = peer_id.filter(|_| self.banned_ids.len() < MAX_BANS) {
            self.banned_ids.insert(id);
        }
    }

    /// Whether a peer with this id was banned.
    pub fn is_banned_id(&self, peer_id: &[u8; 20]) -> bool {
        self.banned_ids.contains(peer_id)
    }

    /// Whether `addr` is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.entries
            .get(&addr)
            .is_some_and(|e| e.status == Status::Banned)
    }

    /// The earliest retry time among idle addresses (for the loop's timer).
    pub fn next_retry(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.status == Status::Idle)
            .filter_map(|e| e.retry_at)
            .min()
    }

    /// Whether an idle address may be connected to at `now`.
    pub fn has_candidates(&self, now: Instant) -> bool {
        self.entries
            .values()
            .any(|e| e.status == Status::Idle && e.retry_at.is_none_or(|at| at <= now))
    }
}

/// Whether a connection to `addr` reaches a socket listening on `listen`.
fn is_listen_addr(listen: SocketAddr, addr: SocketAddr) -> bool {
    if addr.port() != listen.port() {
        return false;
    }
    addr == listen || (listen.ip().is_unspecified() && is_loopback(addr.ip()))
}

/// Loopback, also as an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn same_ip_different_ports_are_different_peers() {
        let mut list = PeerList::new();
        assert!(list.add(addr(1)));
        assert!(list.add(addr(2)));
        assert!(!list.add(addr(1)));
        assert!(!list.add(addr(0)));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn connect_then_back_off_after_failure() {
        let t0 = Instant::now();
        let mut list = PeerList::new();
        list.add(addr(1));
        assert_eq!(list.next_to_connect(t0), Some(addr(1)));
        assert_eq!(list.next_to_connect(t0), None);
        list.disconnected(addr(1), &CloseReason::ConnectTimeout, t0);
        assert_eq!(list.next_to_connect(t0 + Duration::from_secs(5)), None);
        assert_eq!(list.next_retry(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(
            list.next_to_connect(t0 + Duration::from_secs(10)),
            Some(addr(1))
        );
    }

    #[test]
    fn addresses_that_never_failed_are_dialled_before_ones_that_did() {
        let mut list = PeerList::new();
        let t0 = Instant::now();
        for port in 1..=50 {
            list.add(addr(port));
        }
        // Every address is dialled once and fails but the last ten.
        let mut tried = Vec::new();
        for _ in 0..40 {
            let a = list.next_to_connect(t0).unwrap();
            list.disconnected(a, &CloseReason::ConnectTimeout, t0);
            tried.push(a);
        }
        // Their back-off is over: the ten never tried still come first.
        let later = t0 + MAX_RETRY_DELAY;
        for _ in 0..10 {
            let a = list.next_to_connect(later).unwrap();
            assert!(!tried.contains(&a), "{a} failed before, yet came first");
        }
        assert!(list
            .next_to_connect(later)
            .is_some_and(|a| tried.contains(&a)));
    }

    #[test]
    fn a_close_that_is_no_failure_clears_the_back_off() {
        let t0 = Instant::now();
        let mut list = PeerList::new();
        list.add(addr(1));
        list.next_to_connect(t0);
        list.disconnected(addr(1), &CloseReason::HandshakeTimeout, t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(list.next_to_connect(t1), Some(addr(1)));
        list.disconnected(addr(1), &CloseReason::BothComplete, t1);
        assert_eq!(list.next_retry(), Some(t1 + FIRST_RETRY_DELAY));
    }

    #[test]
    fn an_incoming_peers_source_port_is_never_dialled_and_is_forgotten_when_it_leaves() {
        let t0 = Instant::now();
        let later = t0 + MAX_RETRY_DELAY * 2;
        let mut list = PeerList::new();
        assert!(list.mark_incoming(addr(40_001)));
        assert_eq!(list.len(), 1, "known while connected (the duplicate check)");
        list.disconnected(addr(40_001), &CloseReason::BothComplete, t0);
        assert!(list.is_empty(), "an ephemeral port is forgotten");
        assert_eq!(list.next_to_connect(later), None);
        // Named as a listening address (tracker, PEX, DHT) while connected in:
        // dialled later like any address.
        assert!(list.mark_incoming(addr(6881)));
        assert!(!list.add(addr(6881)));
        list.disconnected(addr(6881), &CloseReason::BothComplete, t0);
        assert_eq!(list.next_to_connect(later), Some(addr(6881)));
        // Known before it dialled in: stays dialable.
        let mut list = PeerList::new();
        list.add(addr(6882));
        assert!(list.mark_incoming(addr(6882)));
        list.disconnected(addr(6882), &CloseReason::BothComplete, t0);
        assert_eq!(list.next_to_connect(later), Some(addr(6882)));
    }

    #[test]
    fn repeated_failures_forget_the_address() {
        let t0 = Instant::now();
        let mut list = PeerList::new();
        list.add(addr(1));
        for _ in 0..MAX_FAILURES {
            list.disconnected(addr(1), &CloseReason::ConnectTimeout, t0);
        }
        assert!(list.is_empty());
    }

    #[test]
    fn strikes_ban_and_bans_refuse_connections() {
        let mut list = PeerList::new();
        list.add(addr(1));
        assert!(!list.strike(addr(1)));
        assert!(!list.strike(addr(1)));
        assert!(list.strike(addr(1)));
        assert!(list.is_banned(addr(1)));
        assert!(!list.mark_connected(addr(1)));
        assert_eq!(list.next_to_connect(Instant::now()), None);
    }

    #[test]
    fn bans_follow_the_ip_and_the_peer_id_but_not_loopback_ips() {
        let mut list = PeerList::new();
        let remote = SocketAddr::from(([10, 1, 2, 3], 6881));
        list.ban_identity(remote, Some(*b"-XX0001-aaaaaaaaaaaa"));
        assert!(!list.mark_connected(SocketAddr::from(([10, 1, 2, 3], 7000))));
        assert!(list.is_banned_id(b"-XX0001-aaaaaaaaaaaa"));
        list.ban_identity(addr(1), Some(*b"-XX0001-bbbbbbbbbbbb"));
        assert!(
            list.mark_connected(addr(2)),
            "other loopback peers stay welcome"
        );
        assert!(list.is_banned_id(b"-XX0001-bbbbbbbbbbbb"));
    }

    #[test]
    fn list_is_capped() {
        let mut list = PeerList::new();
        for i in 0..(MAX_KNOWN_PEERS + 10) {
            list.add(SocketAddr::from((
                [10, 0, (i / 256) as u8, (i % 256) as u8],
                6881,
            )));
        }
        assert_eq!(list.len(), MAX_KNOWN_PEERS);
    }

    #[test]
    fn strikes_follow_the_peer_id_across_ports() {
        let mut list = PeerList::new();
        let id = *b"-XX0001-cccccccccccc";
        for port in [1, 2, 3] {
            list.add(addr(port));
            list.set_peer_id(addr(port), id);
        }
        assert!(!list.strike(addr(1)));
        assert!(!list.strike(addr(2)));
        assert!(
            list.strike(addr(3)),
            "the third strike of one peer id bans it"
        );
        assert!(list.is_banned_id(&id));
        assert_eq!(list.strikes(addr(3)), MAX_STRIKES);
    }

    #[test]
    fn our_listening_address_is_never_listed() {
        let mut list = PeerList::new();
        list.add(addr(7000));
        list.add(SocketAddr::from(([127, 0, 0, 9], 7000)));
        list.add(addr(7001));
        list.set_listen_addr(SocketAddr::from(([0, 0, 0, 0], 7000)));
        assert_eq!(list.len(), 1, "the listed copies of us are dropped");
        assert!(!list.add(addr(7000)));
        assert!(!list.add(SocketAddr::from(([127, 1, 2, 3], 7000))));
        assert!(!list.add("[::1]:7000".parse().unwrap()));
        assert!(!list.add("[::ffff:127.0.0.1]:7000".parse().unwrap()));
        assert!(list.add(addr(7002)), "other ports are other peers");
        assert!(
            list.add(SocketAddr::from(([10, 0, 0, 1], 7000))),
            "another machine may use our port"
        );
    }

    #[test]
    fn bound_to_one_address_only_that_address_is_us() {
        let mut list = PeerList::new();
        list.set_listen_addr(addr(7000));
        assert!(!list.add(addr(7000)));
        assert!(list.add(SocketAddr::from(([127, 0, 0, 2], 7000))));
    }

    #[test]
    fn an_address_a_handshake_showed_to_be_us_is_dropped_for_good() {
        let mut list = PeerList::new();
        let nat = SocketAddr::from(([192, 0, 2, 7], 6881));
        list.add(nat);
        list.mark_own(nat);
        assert!(list.is_empty());
        assert!(list.is_own(nat));
        assert!(
            !list.add(nat),
            "a tracker handing us back ourselves adds nothing"
        );
    }

    #[test]
    fn canonical_turns_ipv4_mapped_into_ipv4_and_leaves_the_rest() {
        let mapped: SocketAddr = "[::ffff:10.0.0.7]:6881".parse().unwrap();
        assert_eq!(canonical(mapped), "10.0.0.7:6881".parse().unwrap());
        for same in ["10.0.0.7:6881", "[::1]:6881", "[2001:db8::7]:1", "[::]:5"] {
            let addr: SocketAddr = same.parse().unwrap();
            assert_eq!(canonical(addr), addr);
        }
        // IPv4-compatible (`::a.b.c.d`, deprecated) is not IPv4-mapped.
        let compatible: SocketAddr = "[::10.0.0.7]:1".parse().unwrap();
        assert_eq!(canonical(compatible), compatible);
    }

    #[test]
    fn an_ipv4_mapped_peer_is_the_same_peer_as_its_ipv4_address() {
        let mut list = PeerList::new();
        let mapped: SocketAddr = "[::ffff:10.0.0.7]:6881".parse().unwrap();
        let plain: SocketAddr = "10.0.0.7:6881".parse().unwrap();
        assert!(list.add(mapped));
        assert!(!list.add(plain), "one peer, one entry");
        assert_eq!(list.next_to_connect(Instant::now()), Some(plain));
        list.ban(plain, None);
        assert!(list.is_banned(plain));
        assert!(
            !list.mark_connected(mapped),
            "the ban holds for its mapped form"
        );
    }

    #[test]
    fn listening_on_every_address_of_both_families_makes_ipv6_loopback_us() {
        let mut list = PeerList::new();
        list.set_listen_addr("[::]:7000".parse().unwrap());
        assert!(!list.add("[::1]:7000".parse().unwrap()));
        assert!(!list.add(addr(7000)));
        assert!(!list.add("[::ffff:127.0.0.1]:7000".parse().unwrap()));
        assert!(list.add("[::1]:7001".parse().unwrap()));
    }
}
