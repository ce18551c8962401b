//! Peer exchange in the torrent core (BEP 11, `ut_pex`): which peers we
//! tell each connected peer about, when, and what we do with the peers
//! they tell us about. The codec and the per-peer diff are [`crate::pex`].
//!
//! Layer 0: part of the sans-IO [`Torrent`]; time is passed in.
//!
//! Rules:
//! - Our extension handshake offers `ut_pex` under
//!   [`UT_PEX_ID`](crate::wire::extension::UT_PEX_ID) and carries our
//!   listen port `p`. A private torrent (BEP 27) offers no
//!   `ut_pex`, sends no PEX message and ignores the ones it receives: its
//!   peers come from its tracker only. Neither does a magnet link's
//!   torrent before its metadata says whether it is private; the
//!   extension handshake we send again once it arrives offers `ut_pex`.
//! - What we list is where connected peers *listen*: for a peer we
//!   dialled, the address we dialled (flagged reachable); for a peer that
//!   dialled us, its IP with the `p` of its extension handshake; a peer
//!   that dialled us without `p` is not listed (its source port is no
//!   address anyone can connect to). A peer is never told about itself,
//!   and our own addresses are never listed.
//! - [`Torrent::send_pex`] sends a peer its first message as soon as its
//!   extension handshake announced `ut_pex` and there is a peer to list,
//!   then at most one message per [`PEX_PERIOD`], each with only the
//!   changes since the last one (at most [`MAX_PEX_PEERS`] added and as
//!   many dropped). Nothing is sent when nothing changed.
//! - Received peers go into the [`crate::peer_list::PeerList`] (which
//!   refuses our own address, banned and known ones), but only while it
//!   holds fewer than [`MAX_PEX_LISTED`] addresses, so peers cannot crowd
//!   out what the trackers tell us. `dropped` entries are not acted on:
//!   that a peer left the sender says nothing about us reaching it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{OutMessage, PeerKey, Torrent};
use crate::pex::{flags, PexDiff, PexMessage, PexPeer, MAX_PEX_PEERS};
use crate::wire::extension::{ExtHandshake, MoreOffers};

/// Shortest time between two PEX messages to one peer (BEP 11 and
/// PROTOCOL.md: at most one a minute; libtorrent and Transmission send one
/// about every minute too).
pub const PEX_PERIOD: Duration = Duration::from_secs(60);

/// PEX adds addresses to the peer list only while it holds fewer than
/// this: half of [`crate::peer_list::MAX_KNOWN_PEERS`], so peers that
/// gossip (or lie) cannot fill the room the trackers' answers need.
pub const MAX_PEX_LISTED: usize = crate::peer_list::MAX_KNOWN_PEERS / 2;

/// One connected peer's side of the peer exchange.
#[derive(Debug, Clone, Default)]
pub(super) struct PexPeerState {
    /// The id it receives `ut_pex` messages under (its handshake's
    /// `m.ut_pex`), if it announced one and has not turned it off.
    ut_pex: Option<u8>,
    /// Where it listens, if we know (see the module doc).
    listen_addr: Option<SocketAddr>,
    /// We dialled it: it accepts connections.
    dialled: bool,
    /// What we told it so far.
    diff: PexDiff,
    /// When the next message may go; `None` as soon as there is something
    /// to say.
    next_send: Option<Instant>,
}

impl PexPeerState {
    /// Where the peer listens, if we know.
    pub(super) fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }
}

impl Torrent {
    /// We dialled peer `key` at the address its handshake came under: that
    /// is where it listens, and other peers may be told so (flagged
    /// reachable). Without this call the core takes a peer for one that
    /// dialled us.
    pub fn handle_dialled(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.pex.dialled = true;
            peer.pex.listen_addr = Some(peer.addr);
        }
    }

    /// Whether PEX is used: never for a private torrent (BEP 27), and not
    /// before a magnet's metadata says whether it is private; the
    /// extension handshake sent once it arrives offers `ut_pex`.
    fn pex_allowed(&self) -> bool {
        !self.meta.private && self.fetch.is_none()
    }

    /// What our extension handshake offers for PEX: `ut_pex` unless the
    /// torrent is private, and our listen port when the session told the
    /// peer list where we listen.
    pub(super) fn pex_offers(&self) -> MoreOffers {
        MoreOffers {
            ut_pex: self.pex_allowed(),
            listen_port: self.peer_list.listen_addr().map(|a| a.port()),
        }
    }

    /// The PEX part of a peer's extension handshake: its `ut_pex` id
    /// (BEP 10: `m` is additive, 0 turns it off) and, for a peer that
    /// dialled us, where it listens.
    pub(super) fn on_pex_handshake(&mut self, key: PeerKey, ext: &ExtHandshake) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(id) = ext.ut_pex {
            peer.pex.ut_pex = (id != 0).then_some(id);
        }
        if let (false, None, Some(port)) = (peer.pex.dialled, peer.pex.listen_addr, ext.listen_port)
        {
            let listen = SocketAddr::new(peer.addr.ip(), port);
            peer.pex.listen_addr = Some(listen);
            // That address is this peer: not to be dialled while it is
            // connected (another peer's PEX will name it), which would only
            // make a second connection for the duplicate check to close.
            self.peer_list.mark_connected(listen);
        }
    }

    /// A `ut_pex` message under our id: its added peers join the peer list
    /// (see the module doc); a private torrent ignores it.
    pub(super) fn on_ut_pex(&mut self, key: PeerKey, payload: &[u8]) {
        let Some(addr) = self.peers.get(&key).map(|p| p.addr) else {
            return;
        };
        if !self.pex_allowed() {
            log::debug!("{addr}: ut_pex message ignored (private torrent, or no metadata yet)");
            return;
        }
        let message = match PexMessage::decode(payload) {
            Ok(message) => message,
            Err(e) => {
                log::debug!("{addr}: bad ut_pex message ignored: {e}");
                return;
            }
        };
        let mut added = 0;
        for peer in &message.added {
            if self.peer_list.len() >= MAX_PEX_LISTED {
                break;
            }
            if self.peer_list.add(peer.addr) {
                added += 1;
            }
        }
        log::debug!(
            "{addr}: ut_pex: {} added ({added} new to us), {} dropped",
            message.added.len(),
            message.dropped.len()
        );
    }

    /// PEX phase: every peer that speaks `ut_pex` and whose turn has come
    /// (see the module doc) gets the changes since its last message. Does
    /// nothing for a private torrent.
    pub fn send_pex(&mut self, now: Instant) {
        if !self.pex_allowed() {
            return;
        }
        let listed = self.pex_listed();
        let due: Vec<(PeerKey, u8)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing && p.pex.next_send.is_none_or(|at| now >= at))
            .filter_map(|(&key, p)| p.pex.ut_pex.map(|id| (key, id)))
            .collect();
        for (key, id) in due {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let own = peer.pex.listen_addr;
            let current: Vec<PexPeer> = listed
                .iter()
                .filter(|(other, p)| *other != key && Some(p.addr) != own)
                .map(|(_, p)| *p)
                .collect();
            let message = peer.pex.diff.next_message(&current);
            if message.is_empty() {
                continue;
            }
            peer.pex.next_send = Some(now + PEX_PERIOD);
            log::debug!(
                "{}: ut_pex sent: {} added, {} dropped",
                peer.addr,
                message.added.len(),
                message.dropped.len()
            );
            let payload = message.encode();
            self.send(key, OutMessage::Extended { id, payload });
        }
    }

    /// The connected peers we may list, with their flags: those whose
    /// listen address we know and that are not us.
    fn pex_listed(&self) -> Vec<(PeerKey, PexPeer)> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .filter_map(|(&key, p)| {
                let addr = p.pex.listen_addr?;
                let mut bits = 0;
                if p.pex.dialled {
                    bits |= flags::REACHABLE;
                }
                if p.state.is_seed() {
                    bits |= flags::SEED;
                }
                Some((key, PexPeer { addr, flags: bits }))
            })
            .filter(|(_, p)| !self.peer_list.is_own(p.addr))
            .take(MAX_LISTED_CANDIDATES)
            .collect()
    }
}

/// Most connected peers considered for one round of messages: more than
/// [`MAX_PEX_PEERS`] so that a diff can still fill a message after
/// dropping the recipient, and bounded whatever `max_peers` is set to.
const MAX_LISTED_CANDIDATES: usize = 4 * MAX_PEX_PEERS;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::sim::test_torrent;
    use super::super::{Action, TorrentConfig};
    use super::*;
    use crate::bitfield::Bitfield;
    use crate::close_reason::CloseReason;
    use crate::metainfo::Metainfo;
    use crate::rng::Rng;
    use crate::wire::extension::{self, HANDSHAKE_ID, UT_PEX_ID};
    use crate::wire::{Handshake, Message};

    /// The `ut_pex` id the test peers announce: not ours, so a message
    /// sent under ours would show.
    const THEIR_ID: u8 = 7;
    /// Where "we" listen.
    const OUR_PORT: u16 = 6000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn core(private: bool, now: Instant) -> Torrent {
        let (meta, _) = test_torrent(64 * 1024, 16 * 1024, 5);
        let mut meta: Metainfo = (*meta).clone();
        meta.private = private;
        let count = meta.layout.piece_count();
        let mut core = Torrent::new(
            Arc::new(meta),
            TorrentConfig::default(),
            Bitfield::new(count),
            Rng::new(1),
            now,
        );
        core.peer_list_mut().set_listen_addr(addr(OUR_PORT));
        core.handle_check_done();
        core
    }

    /// Peer `key` joins: we dialled it at port `key` (`dialled`), or it
    /// dialled us from port `key + 1000` and says it listens on port `key`.
    /// Its extension handshake offers `ut_pex` when `pex`.
    fn join(core: &mut Torrent, key: PeerKey, dialled: bool, pex: bool, now: Instant) {
        let port = u16::try_from(key).unwrap();
        let from = if dialled {
            addr(port)
        } else {
            addr(port + 1000)
        };
        let mut peer_id = [0; 20];
        peer_id[0] = port as u8;
        peer_id[1] = (port >> 8) as u8;
        let handshake = Handshake::new(core.meta().info_hash.0, peer_id).with_extensions();
        core.handle_handshake(key, from, &handshake, now);
        if dialled {
            core.handle_dialled(key);
        }
        let m = if pex {
            format!("d6:ut_pexi{THEIR_ID}ee")
        } else {
            "de".to_string()
        };
        let payload = format!("d1:m{m}1:pi{port}ee").into_bytes();
        core.handle_message(
            key,
            Message::Extended {
                id: HANDSHAKE_ID,
                payload: &payload,
            },
            now,
        );
    }

    #[test]
    fn a_peer_that_dialled_us_is_not_dialled_at_its_listen_port_while_connected() {
        let now = Instant::now();
        let mut c = core(false, now);
        join(&mut c, 7000, false, true, now);
        // Another peer's PEX (or a tracker) names the same listen address.
        c.peer_list_mut().add(addr(7000));
        assert_eq!(c.peer_list_mut().next_to_connect(now), None);
        c.handle_disconnected(7000, addr(8000), &CloseReason::PeerClosed, now);
        let later = now + Duration::from_secs(3600);
        assert_eq!(c.peer_list_mut().next_to_connect(later), Some(addr(7000)));
    }

    /// Every action queued: the `ut_pex` messages (peer, decoded) and our
    /// extension handshakes (peer, parsed); the rest is dropped.
    fn drain(core: &mut Torrent) -> (Vec<(PeerKey, PexMessage)>, Vec<ExtHandshake>) {
        let (mut pex, mut ours) = (Vec::new(), Vec::new());
        while let Some(action) = core.poll_action() {
            match action {
                Action::Send {
                    peer,
                    message: OutMessage::Extended { id, payload },
                } => {
                    assert_eq!(id, THEIR_ID, "sent under the peer's id");
                    pex.push((peer, PexMessage::decode(&payload).unwrap()));
                }
                Action::Send {
                    message: OutMessage::ExtHandshake(payload),
                    ..
                } => ours.push(ExtHandshake::parse(&payload).unwrap()),
                _ => {}
            }
        }
        (pex, ours)
    }

    fn added_to(sent: &[(PeerKey, PexMessage)], key: PeerKey) -> Vec<PexPeer> {
        sent.iter()
            .filter(|(k, _)| *k == key)
            .flat_map(|(_, m)| m.added.clone())
            .collect()
    }

    fn receive_pex(core: &mut Torrent, key: PeerKey, message: &PexMessage, now: Instant) {
        let payload = message.encode();
        core.handle_message(
            key,
            Message::Extended {
                id: UT_PEX_ID,
                payload: &payload,
            },
            now,
        );
    }

    #[test]
    fn our_handshake_offers_ut_pex_and_our_listen_port() {
        let now = Instant::now();
        let mut core = core(false, now);
        join(&mut core, 1, true, true, now);
        let (_, ours) = drain(&mut core);
        assert_eq!(ours[0].ut_pex, Some(UT_PEX_ID));
        assert_eq!(ours[0].listen_port, Some(OUR_PORT));
    }

    #[test]
    fn the_first_message_follows_the_handshake_then_one_per_period() {
        let t0 = Instant::now();
        let mut core = core(false, t0);
        join(&mut core, 1, true, true, t0);
        join(&mut core, 2, false, true, t0);
        drain(&mut core);
        core.send_pex(t0);
        let (sent, _) = drain(&mut core);
        assert_eq!(sent.len(), 2, "one message to each: {sent:?}");
        assert_eq!(
            added_to(&sent, 1),
            vec![PexPeer {
                addr: addr(2),
                flags: 0
            }],
            "peer 2 dialled us: listed at its `p`, not reachable"
        );
        assert_eq!(
            added_to(&sent, 2),
            vec![PexPeer {
                addr: addr(1),
                flags: flags::REACHABLE
            }]
        );
        // A new peer arrives: nothing until the period is over.
        join(&mut core, 3, true, true, t0 + Duration::from_secs(1));
        drain(&mut core);
        for secs in [1, 30, 59] {
            core.send_pex(t0 + Duration::from_secs(secs));
            let (sent, _) = drain(&mut core);
            let to_old: Vec<_> = sent.iter().filter(|(k, _)| *k != 3).collect();
            assert!(to_old.is_empty(), "at {secs} s: {to_old:?}");
        }
        core.send_pex(t0 + PEX_PERIOD);
        let (sent, _) = drain(&mut core);
        assert_eq!(
            added_to(&sent, 1),
            vec![PexPeer {
                addr: addr(3),
                flags: 0x10
            }]
        );
        assert_eq!(
            added_to(&sent, 2),
            vec![PexPeer {
                addr: addr(3),
                flags: 0x10
            }]
        );
    }

    #[test]
    fn a_peer_is_never_told_about_itself_nor_about_us() {
        let now = Instant::now();
        let mut core = core(false, now);
        join(&mut core, 1, true, true, now);
        // A peer that dialled us claiming our own port as its listen port.
        join(&mut core, usize::from(OUR_PORT), false, false, now);
        drain(&mut core);
        core.send_pex(now);
        let (sent, _) = drain(&mut core);
        assert!(sent.is_empty(), "{sent:?}");
    }

    #[test]
    fn a_dropped_peer_appears_in_dropped() {
        let t0 = Instant::now();
        let mut core = core(false, t0);
        for key in 1..=3 {
            join(&mut core, key, true, true, t0);
        }
        core.send_pex(t0);
        drain(&mut core);
        core.handle_disconnected(
            3,
            addr(3),
            &crate::close_reason::CloseReason::BothComplete,
            t0,
        );
        core.send_pex(t0 + PEX_PERIOD);
        let (sent, _) = drain(&mut core);
        let to_1: Vec<&PexMessage> = sent
            .iter()
            .filter(|(k, _)| *k == 1)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(to_1.len(), 1);
        assert!(to_1[0].added.is_empty());
        assert_eq!(to_1[0].dropped, vec![addr(3)]);
    }

    #[test]
    fn a_peer_without_ut_pex_gets_nothing_but_is_listed() {
        let now = Instant::now();
        let mut core = core(false, now);
        join(&mut core, 1, true, false, now);
        join(&mut core, 2, true, true, now);
        core.send_pex(now);
        let (sent, _) = drain(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 2);
        assert_eq!(sent[0].1.added[0].addr, addr(1));
    }

    #[test]
    fn received_peers_join_the_peer_list_but_not_our_own_address() {
        let now = Instant::now();
        let mut core = core(false, now);
        join(&mut core, 1, true, true, now);
        let message = PexMessage {
            added: vec![
                PexPeer {
                    addr: addr(50),
                    flags: 0x10,
                },
                PexPeer {
                    addr: addr(OUR_PORT),
                    flags: 0,
                },
                PexPeer {
                    addr: addr(51),
                    flags: 0,
                },
            ],
            dropped: vec![addr(1)],
        };
        let before = core.peer_list().len();
        receive_pex(&mut core, 1, &message, now);
        assert_eq!(core.peer_list().len(), before + 2);
        assert!(!core.peer_list().is_own(addr(50)));
        receive_pex(&mut core, 1, &PexMessage::default(), now);
        for junk in [&b"garbage"[..], b"le", b"d5:addedi1ee"] {
            core.handle_message(
                1,
                Message::Extended {
                    id: UT_PEX_ID,
                    payload: junk,
                },
                now,
            );
        }
        assert_eq!(core.peer_list().len(), before + 2);
    }

    #[test]
    fn pex_fills_at_most_part_of_the_peer_list() {
        let now = Instant::now();
        let mut core = core(false, now);
        join(&mut core, 1, true, true, now);
        for round in 0..100u8 {
            let message = PexMessage {
                added: (0..50u8)
                    .map(|i| PexPeer {
                        addr: SocketAddr::from(([10, round, i, 1], 6881)),
                        flags: 0,
                    })
                    .collect(),
                dropped: vec![],
            };
            receive_pex(&mut core, 1, &message, now);
        }
        assert_eq!(core.peer_list().len(), MAX_PEX_LISTED);
    }

    #[test]
    fn a_private_torrent_offers_sends_and_takes_no_pex() {
        let now = Instant::now();
        let mut core = core(true, now);
        join(&mut core, 1, true, true, now);
        join(&mut core, 2, true, true, now);
        let (_, ours) = drain(&mut core);
        assert!(ours.iter().all(|h| h.ut_pex.is_none()), "{ours:?}");
        core.send_pex(now);
        core.send_pex(now + PEX_PERIOD);
        assert!(drain(&mut core).0.is_empty());
        let before = core.peer_list().len();
        let message = PexMessage {
            added: vec![PexPeer {
                addr: addr(50),
                flags: 0,
            }],
            dropped: vec![],
        };
        receive_pex(&mut core, 1, &message, now);
        assert_eq!(core.peer_list().len(), before, "received PEX ignored");
        let payload = extension::our_handshake(1, "x", extension::MetadataOffer::None);
        assert!(!String::from_utf8_lossy(&payload).contains("ut_pex"));
    }
}
