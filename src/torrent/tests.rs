//! Specs of the torrent core: whole swarms of cores on the virtual clock
//! of [`super::sim`], and a few scripted exchanges with a single core.
//!
//! Each swarm spec runs in milliseconds of real time and is the same on
//! every run (fixed seeds, virtual time); each asserts outcomes: payloads
//! byte-identical to the seed's, who sent what to whom, who was banned.
//! Each prints the swarm's final report (`cargo test -- --nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::sim::{test_torrent, Event, LinkConfig, LinkState, NodeId, Role, Swarm};
use super::{Action, Handled, Note, OutMessage, Torrent, TorrentConfig, REQUEST_TIMEOUT};
use crate::bitfield::Bitfield;
use crate::choker::UPLOAD_SLOTS;
use crate::close_reason::CloseReason;
use crate::metainfo::{Block, BLOCK_LEN};
use crate::rng::Rng;
use crate::wire::{BlockRequest, Handshake, Message};

const KIB: u64 = 1024;

/// How often the optimistic unchoke rotates (BEP 3; the core's own
/// constant is private to its upload module).
const OPTIMISTIC_PERIOD: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The block a REQUEST or CANCEL names, as (piece, begin, len).
fn named(request: &BlockRequest) -> (u32, u32, u32) {
    (request.piece, request.begin, request.len)
}

fn block_key(block: &Block) -> (u32, u32, u32) {
    (block.piece.get(), block.begin, block.len)
}

// ----- swarms ---------------------------------------------------------------

/// One seeder behind slow uplinks and three leechers on a fast LAN, all
/// connected to each other.
fn seeder_and_three_leechers(seed: u64) -> (Swarm, NodeId, Vec<NodeId>) {
    let mut swarm = Swarm::new(1 << 20, 32 * 1024, seed);
    let seeder = swarm.add_node(Role::Seeder);
    let leechers: Vec<NodeId> = (0..3).map(|_| swarm.add_node(Role::Leecher)).collect();
    let uplink = LinkConfig::latency(ms(30)).bandwidth(128 * KIB);
    for &l in &leechers {
        swarm.connect_with(l, seeder, uplink);
    }
    for (i, &a) in leechers.iter().enumerate() {
        for &b in &leechers[i + 1..] {
            swarm.connect(a, b);
        }
    }
    (swarm, seeder, leechers)
}

#[test]
fn one_seeder_and_three_leechers_all_complete_and_the_leechers_trade() {
    let (mut swarm, seeder, leechers) = seeder_and_three_leechers(1);
    let took = swarm.run_until(|s| s.all_complete(), secs(120)).unwrap();
    println!(
        "complete after {took:?} of virtual time\n{}",
        swarm.report()
    );

    for &l in &leechers {
        assert_eq!(swarm.node(l).disk, swarm.payload(), "node #{l}'s data");
        assert_eq!(swarm.node(l).core.stats().hash_failures, 0);
    }
    let mut traded = 0;
    for &a in &leechers {
        for &b in &leechers {
            traded += swarm.blocks_written(a, b);
        }
    }
    println!("{traded} blocks went from leecher to leecher");
    assert!(traded > 0, "no leecher got a block from another leecher");
    let total = swarm.payload().len() as u64;
    let uploaded = swarm.node(seeder).core.stats().uploaded;
    assert!(
        uploaded < 3 * total,
        "the seeder uploaded {uploaded} B, three whole copies: the leechers did not share"
    );
}

#[test]
fn the_same_seed_gives_the_same_run_event_for_event() {
    let run = |seed| {
        let (mut swarm, _, _) = seeder_and_three_leechers(seed);
        swarm.run_until(|s| s.all_complete(), secs(120)).unwrap();
        swarm.events().to_vec()
    };
    let first = run(1);
    assert_eq!(first, run(1));
    assert_ne!(
        first,
        run(2),
        "another seed, another payload and other choices"
    );
}

#[test]
fn optimistic_unchoke_rotates_and_at_most_the_slots_plus_one_are_unchoked() {
    // Eight leechers want more than the seeder's slots can give in three
    // minutes: 4 MiB each at 20 KiB/s per link. They are BEP 3 clients:
    // with the fast extension each choked one would fetch its allowed-fast
    // pieces (5 of these 16) at full link speed, every rate would be equal
    // and the choke order a coin toss.
    let mut swarm = Swarm::new(4 << 20, 256 * 1024, 2);
    let seeder = swarm.add_node(Role::Seeder);
    let link = LinkConfig::latency(ms(20)).bandwidth(20 * KIB);
    let leechers: Vec<NodeId> = (0..8).map(|_| swarm.add_node(Role::Leecher)).collect();
    for &l in &leechers {
        swarm.node_mut(l).legacy = true;
    }
    for &l in &leechers {
        swarm.connect_with(l, seeder, link);
    }
    let mut most_at_once = 0;
    let mut fewest_after_first_rechoke = usize::MAX;
    swarm
        .run_until(
            |s| {
                let unchoked = s.unchoked_by(seeder).len();
                most_at_once = most_at_once.max(unchoked);
                if s.elapsed() >= super::RECHOKE_PERIOD {
                    fewest_after_first_rechoke = fewest_after_first_rechoke.min(unchoked);
                }
                s.elapsed() >= secs(180)
            },
            secs(190),
        )
        .unwrap();
    println!("{}", swarm.report());

    assert!(
        leechers.iter().all(|&l| !swarm.node(l).core.is_complete()),
        "a leecher completed: the scenario no longer has more wanting peers than slots"
    );
    assert_eq!(
        most_at_once,
        UPLOAD_SLOTS + 1,
        "at most {UPLOAD_SLOTS} regular slots plus the optimistic one, and all used"
    );
    assert_eq!(
        fewest_after_first_rechoke,
        UPLOAD_SLOTS + 1,
        "a slot sat idle while peers waited (the optimistic peer counted as a regular)"
    );
    let unchoked: BTreeSet<NodeId> = leechers
        .iter()
        .copied()
        .filter(|&l| {
            swarm
                .sent(seeder, l)
                .iter()
                .any(|(_, m)| *m == OutMessage::Unchoke)
        })
        .collect();
    println!("unchoked at some time: {unchoked:?}");
    assert!(
        unchoked.len() >= UPLOAD_SLOTS + 3,
        "only {unchoked:?} were ever unchoked"
    );
    let optimistic: Vec<(Duration, std::net::SocketAddr)> = swarm
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Noted {
                at,
                node,
                note:
                    Note::Choke {
                        addr,
                        unchoke: true,
                        why,
                    },
            } if *node == seeder && why == "optimistic unchoke" => Some((*at, *addr)),
            _ => None,
        })
        .collect();
    println!("optimistic unchokes: {optimistic:?}");
    let distinct: BTreeSet<_> = optimistic.iter().map(|(_, addr)| addr).collect();
    assert!(distinct.len() >= 3, "optimistic unchokes: {optimistic:?}");
    for pair in optimistic.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= OPTIMISTIC_PERIOD,
            "the optimistic unchoke rotated faster than every {OPTIMISTIC_PERIOD:?}: {pair:?}"
        );
    }
}

#[test]
fn a_fast_swarm_with_more_leechers_than_slots_rejects_and_loses_no_block() {
    // Ten leechers (one a BEP 3 client) share a seeder with fewer slots:
    // its choke epochs reject queued requests (BEP 6) and the choked ones
    // fetch their allowed-fast pieces.
    let mut swarm = Swarm::new(2 << 20, 64 * 1024, 9);
    let seeder = swarm.add_node(Role::Seeder);
    let link = LinkConfig::latency(ms(20)).bandwidth(64 * KIB);
    let leechers: Vec<NodeId> = (0..10).map(|_| swarm.add_node(Role::Leecher)).collect();
    let legacy = leechers[9];
    swarm.node_mut(legacy).legacy = true;
    for &l in &leechers {
        swarm.connect_with(l, seeder, link);
    }
    let took = swarm.run_until(|s| s.all_complete(), secs(300)).unwrap();
    println!("complete after {took:?}\n{}", swarm.report());

    let total = swarm.payload().len() as u64;
    for &l in &leechers {
        assert_eq!(swarm.node(l).disk, swarm.payload(), "node #{l}'s data");
        let stats = swarm.node(l).core.stats();
        assert_eq!(stats.hash_failures, 0);
        assert_eq!(
            stats.downloaded, total,
            "node #{l}: every byte counted once"
        );
    }
    let sent_by_seeder = |to: NodeId| swarm.sent(seeder, to);
    let rejects: usize = leechers[..9]
        .iter()
        .map(|&l| {
            sent_by_seeder(l)
                .iter()
                .filter(|(_, m)| matches!(m, OutMessage::Reject(_)))
                .count()
        })
        .sum();
    let chokes: usize = leechers
        .iter()
        .map(|&l| {
            sent_by_seeder(l)
                .iter()
                .filter(|(_, m)| *m == OutMessage::Choke)
                .count()
        })
        .sum();
    println!("the seeder sent {chokes} CHOKEs and {rejects} REJECT_REQUESTs");
    assert!(rejects > 0, "no choke with queued requests happened");
    for &l in &leechers[..9] {
        let sent = sent_by_seeder(l);
        assert_eq!(sent.first().map(|(_, m)| m), Some(&OutMessage::HaveAll));
        assert!(sent
            .iter()
            .any(|(_, m)| matches!(m, OutMessage::AllowedFast(_))));
    }
    // The BEP 3 leecher gets a BITFIELD and no BEP 6 message.
    let to_legacy = sent_by_seeder(legacy);
    assert!(matches!(
        to_legacy.first().map(|(_, m)| m),
        Some(OutMessage::Bitfield(_))
    ));
    assert!(!to_legacy.iter().any(|(_, m)| matches!(
        m,
        OutMessage::HaveAll
            | OutMessage::HaveNone
            | OutMessage::Reject(_)
            | OutMessage::AllowedFast(_)
    )));
}

#[test]
fn endgame_asks_two_peers_for_the_last_blocks_and_cancels_the_slower_copy() {
    let mut swarm = Swarm::new(1 << 20, 64 * 1024, 3);
    let leecher = swarm.add_node(Role::Leecher);
    let fast = swarm.add_node(Role::Seeder);
    let slow = swarm.add_node(Role::Seeder);
    swarm.connect_with(
        leecher,
        fast,
        LinkConfig::latency(ms(5)).bandwidth(1024 * KIB),
    );
    swarm.connect_with(
        leecher,
        slow,
        LinkConfig::latency(ms(100)).bandwidth(64 * KIB),
    );
    let took = swarm
        .run_until(|s| s.is_complete(leecher), secs(60))
        .unwrap();
    println!("complete after {took:?}\n{}", swarm.report());
    assert_eq!(swarm.node(leecher).disk, swarm.payload());

    // The leecher's requests in order: every block once, then duplicates.
    let mut asked: BTreeMap<(u32, u32, u32), BTreeSet<NodeId>> = BTreeMap::new();
    let mut last_first_request = 0;
    let mut first_duplicate = None;
    let mut cancels = Vec::new();
    for (i, event) in swarm.events().iter().enumerate() {
        match event {
            Event::Sent {
                from,
                to,
                message: OutMessage::Request(request),
                ..
            } if *from == leecher => {
                let askers = asked.entry(named(request)).or_default();
                if askers.is_empty() {
                    last_first_request = i;
                } else {
                    first_duplicate.get_or_insert(i);
                }
                askers.insert(*to);
            }
            Event::Sent {
                from,
                to,
                message: OutMessage::Cancel(request),
                ..
            } if *from == leecher => cancels.push((i, *to, named(request))),
            _ => {}
        }
    }
    let twice = asked.values().filter(|peers| peers.len() > 1).count();
    println!(
        "{} blocks asked for, {twice} from both seeders, {} CANCELs",
        asked.len(),
        cancels.len()
    );
    assert_eq!(asked.len(), 64, "every block asked for");
    let first_duplicate = first_duplicate.expect("no block was asked for twice");
    assert!(
        first_duplicate > last_first_request,
        "a block was asked for twice before every block had been asked for once"
    );
    assert!(twice > 0 && twice < 64, "{twice} blocks asked for twice");

    // Each CANCEL follows the arrival of the same block from the other seeder.
    assert!(!cancels.is_empty(), "no CANCEL sent");
    for (i, to, block) in &cancels {
        assert!(
            asked[block].contains(to),
            "CANCEL for a block not asked of #{to}"
        );
        let arrived_elsewhere = swarm.events()[..*i].iter().any(|e| {
            matches!(e, Event::Written { node, from, block: b, .. }
                if *node == leecher && from != to && block_key(b) == *block)
        });
        assert!(
            arrived_elsewhere,
            "CANCEL of {block:?} to #{to} before a copy arrived"
        );
    }
    // Some CANCELs reached the slow seeder while the block was still in its
    // queue: it never served them.
    let asked_of_slow = asked.values().filter(|p| p.contains(&slow)).count();
    let served_by_slow = swarm
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Served { from, .. } if *from == slow))
        .count();
    println!("the slow seeder was asked for {asked_of_slow} blocks and served {served_by_slow}");
    assert!(served_by_slow < asked_of_slow);
    // Late copies are forgiven: the seeders are closed only because we are done.
    for event in swarm.events() {
        if let Event::Closed { node, reason, .. } = event {
            if *node == leecher {
                assert_eq!(*reason, CloseReason::BothComplete);
            }
        }
    }
}

#[test]
fn a_silent_peer_s_requests_time_out_and_the_others_finish_the_download() {
    let mut swarm = Swarm::new(2 << 20, 256 * 1024, 4);
    let leecher = swarm.add_node(Role::Leecher);
    let a = swarm.add_node(Role::Seeder);
    let b = swarm.add_node(Role::Seeder);
    let silent = swarm.add_node(Role::Seeder);
    let link = LinkConfig::latency(ms(20)).bandwidth(32 * KIB);
    swarm.connect_with(leecher, a, link);
    swarm.connect_with(leecher, b, link);
    let to_silent = swarm.connect_with(leecher, silent, link);
    // Once it has started serving, everything on its link is lost.
    swarm
        .run_until(|s| s.blocks_written(leecher, silent) > 0, secs(10))
        .unwrap();
    let silenced_at = swarm.elapsed();
    let events_before = swarm.events().len();
    swarm.silence(to_silent);
    let took = swarm
        .run_until(|s| s.is_complete(leecher), secs(120))
        .unwrap();
    println!(
        "silenced at {silenced_at:?}, complete {took:?} later\n{}",
        swarm.report()
    );
    assert_eq!(swarm.node(leecher).disk, swarm.payload());

    let silent_addr = swarm.node(silent).addr;
    let timeouts: Vec<(Duration, std::net::SocketAddr)> = swarm
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Noted {
                at,
                node,
                note: Note::Timeout { addr, .. },
            } if *node == leecher => Some((*at, *addr)),
            _ => None,
        })
        .collect();
    assert!(!timeouts.is_empty(), "no request timed out");
    for (at, addr) in &timeouts {
        assert_eq!(
            *addr, silent_addr,
            "only the silent peer's requests time out"
        );
        assert!(
            *at >= silenced_at + REQUEST_TIMEOUT,
            "timed out early, at {at:?}"
        );
    }
    // Every block it had been asked for and never delivered came from the others.
    let after = &swarm.events()[events_before..];
    assert!(!after
        .iter()
        .any(|e| matches!(e, Event::Written { from, .. } if *from == silent)));
    let lost: BTreeSet<(u32, u32, u32)> = swarm
        .sent(leecher, silent)
        .iter()
        .filter_map(|(_, m)| match m {
            OutMessage::Request(r) => Some(named(r)),
            _ => None,
        })
        .filter(|block| {
            !swarm.events().iter().any(|e| {
                matches!(e, Event::Written { from, block: b, .. }
                    if *from == silent && block_key(b) == *block)
            })
        })
        .collect();
    println!("{} blocks asked of the silent peer never came", lost.len());
    assert!(!lost.is_empty());
    for block in &lost {
        let delivered = after.iter().any(|e| {
            matches!(e, Event::Written { from, block: got, .. }
                if (*from == a || *from == b) && block_key(got) == *block)
        });
        assert!(delivered, "{block:?} never came from the other peers");
    }
}

#[test]
fn smart_ban_bans_the_poisoner_and_never_strikes_the_honest_seeder() {
    // Four-block pieces: the leecher's requests alternate between the two
    // seeders, so most pieces mix their blocks.
    let mut swarm = Swarm::new(1 << 20, 64 * 1024, 5);
    let leecher = swarm.add_node(Role::Leecher);
    let honest = swarm.add_node(Role::Seeder);
    let poisoner = swarm.add_node(Role::Seeder);
    swarm.node_mut(poisoner).corrupt_uploads = true;
    let link = LinkConfig::latency(ms(20)).bandwidth(256 * KIB);
    swarm.connect_with(leecher, honest, link);
    swarm.connect_with(leecher, poisoner, link);
    let took = swarm
        .run_until(|s| s.is_complete(leecher), secs(120))
        .unwrap();
    println!("complete after {took:?}\n{}", swarm.report());

    assert_eq!(swarm.node(leecher).disk, swarm.payload());
    let mut senders: BTreeMap<u32, BTreeSet<NodeId>> = BTreeMap::new();
    for e in swarm.events() {
        if let Event::Written {
            node, from, block, ..
        } = e
        {
            if *node == leecher {
                senders.entry(block.piece.get()).or_default().insert(*from);
            }
        }
    }
    let mixed = senders.values().filter(|s| s.len() > 1).count();
    println!(
        "{mixed} of {} pieces had blocks from both seeders",
        senders.len()
    );
    assert!(mixed > 0, "no piece mixed the two seeders' blocks");
    let stats = swarm.node(leecher).core.stats();
    assert!(stats.hash_failures > 0);
    // Once banned, the poisoner's blocks of pieces in progress are thrown
    // away with it: no piece fails again on its data.
    let banned_at = swarm.events().iter().position(|e| {
        matches!(e, Event::Closed { node, reason: CloseReason::Banned, .. } if *node == leecher)
    });
    let banned_at = banned_at.expect("the poisoner was never closed as banned");
    let failed_later = swarm.events()[banned_at..].iter().any(|e| {
        matches!(e, Event::Noted { node, note: Note::Hash { ok: false, .. }, .. } if *node == leecher)
    });
    assert!(!failed_later, "a piece failed on the banned peer's blocks");
    let poisoner_strikes = swarm
        .node(leecher)
        .core
        .peer_list()
        .strikes(swarm.node(poisoner).addr);
    assert_eq!(
        poisoner_strikes,
        crate::peer_list::MAX_STRIKES,
        "strikes kept counting after the ban"
    );

    let peers = swarm.node(leecher).core.peer_list();
    let (honest_addr, poisoner_addr) = (swarm.node(honest).addr, swarm.node(poisoner).addr);
    assert!(peers.is_banned(poisoner_addr), "the poisoner is not banned");
    assert!(peers.is_banned_id(&swarm.node(poisoner).peer_id));
    assert!(!peers.is_banned(honest_addr), "the honest seeder is banned");
    assert_eq!(
        peers.strikes(honest_addr),
        0,
        "the honest seeder was struck"
    );
    let closes: Vec<(NodeId, CloseReason)> = swarm
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Closed {
                node, peer, reason, ..
            } if *node == leecher => Some((*peer, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (poisoner, CloseReason::Banned),
            (honest, CloseReason::BothComplete)
        ]
    );
    // Banned for good: it is refused whichever side dials.
    let dialled = swarm.connect(leecher, poisoner);
    let incoming = swarm.connect(poisoner, leecher);
    assert_eq!(swarm.link_state(dialled), LinkState::Closed);
    assert_eq!(swarm.link_state(incoming), LinkState::Closed);
}

#[test]
fn a_peer_that_hangs_up_mid_download_gives_back_its_requests() {
    let mut swarm = Swarm::new(1 << 20, 64 * 1024, 7);
    let leecher = swarm.add_node(Role::Leecher);
    let leaving = swarm.add_node(Role::Seeder);
    let staying = swarm.add_node(Role::Seeder);
    let link = LinkConfig::latency(ms(20)).bandwidth(128 * KIB);
    let gone = swarm.connect_with(leecher, leaving, link);
    swarm.connect_with(leecher, staying, link);
    swarm
        .run_until(|s| s.blocks_written(leecher, leaving) >= 8, secs(10))
        .unwrap();
    swarm.close_link(gone);
    let took = swarm
        .run_until(|s| s.is_complete(leecher), secs(60))
        .unwrap();
    println!("complete {took:?} after the hang-up\n{}", swarm.report());

    assert_eq!(swarm.node(leecher).disk, swarm.payload());
    assert_eq!(swarm.link_state(gone), LinkState::Closed);
    assert!(swarm.events().iter().any(|e| matches!(e,
        Event::Closed { node, peer, reason: CloseReason::PeerClosed, .. }
            if *node == leecher && *peer == leaving)));
    let asked_of_leaving = swarm
        .sent(leecher, leaving)
        .iter()
        .filter(|(_, m)| matches!(m, OutMessage::Request(_)))
        .count();
    let from_leaving = swarm.blocks_written(leecher, leaving);
    println!("asked the leaving seeder for {asked_of_leaving} blocks, got {from_leaving}");
    assert!(
        from_leaving < asked_of_leaving,
        "it left with requests in flight"
    );
    assert_eq!(from_leaving + swarm.blocks_written(leecher, staying), 64);
}

#[test]
fn a_swarm_that_cannot_finish_stops_at_its_time_limit_with_a_report() {
    let mut swarm = Swarm::new(256 * 1024, 16 * 1024, 8);
    let a = swarm.add_node(Role::Leecher);
    let b = swarm.add_node(Role::Leecher);
    swarm.connect(a, b);
    let stalled = swarm
        .run_until(|s| s.is_complete(a), secs(30))
        .unwrap_err()
        .to_string();
    assert!(swarm.elapsed() >= secs(30) && swarm.elapsed() <= secs(31));
    assert!(stalled.contains("condition not met after 30"), "{stalled}");
    assert!(
        stalled.contains("node #0 127.0.0.1:6881: 0/16 pieces, peers [#1]"),
        "{stalled}"
    );
}

// ----- one core, scripted ---------------------------------------------------

/// A core for a torrent of four one-block pieces that has `have`, past its
/// start-up check, with one peer (key 7, a BEP 3 client without the fast
/// extension) through the handshake.
fn core_with_one_peer(have: &[u32], now: Instant) -> Torrent {
    let (meta, _) = test_torrent(4 * BLOCK_LEN as usize, BLOCK_LEN, 6);
    let count = meta.layout.piece_count();
    let peer = Handshake::new(meta.info_hash.0, [7; 20]);
    let mut core = Torrent::new(
        meta,
        TorrentConfig::default(),
        Bitfield::new(count),
        Rng::new(6),
        now,
    );
    for &piece in have {
        core.handle_existing_piece(piece, true);
    }
    core.handle_check_done();
    core.handle_handshake(7, ([127, 0, 0, 1], 7000).into(), &peer, now);
    drain(&mut core);
    core
}

/// The actions queued, without the trace notes.
fn drain(core: &mut Torrent) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action())
        .filter(|a| !matches!(a, Action::Note(_)))
        .collect()
}

fn request(piece: u32) -> BlockRequest {
    BlockRequest {
        piece,
        begin: 0,
        len: BLOCK_LEN,
    }
}

#[test]
fn a_request_for_a_piece_we_do_not_have_closes_the_peer() {
    let now = Instant::now();
    let mut core = core_with_one_peer(&[1], now);
    core.handle_message(7, Message::Interested, now);
    assert_eq!(
        drain(&mut core),
        vec![Action::Send {
            peer: 7,
            message: OutMessage::Unchoke
        }]
    );
    core.handle_message(7, Message::Request(request(1)), now);
    assert!(drain(&mut core).is_empty());
    assert!(core.has_requests_to_serve(7));
    core.handle_message(7, Message::Request(request(2)), now);
    assert_eq!(
        drain(&mut core),
        vec![Action::Close {
            peer: 7,
            reason: CloseReason::RequestForMissingPiece { piece: 2 }
        }]
    );
}

#[test]
fn a_flood_of_unrequested_pieces_closes_the_peer_and_none_is_written() {
    let now = Instant::now();
    let mut core = core_with_one_peer(&[], now);
    core.handle_message(7, Message::Bitfield(&[0xF0]), now);
    assert_eq!(
        drain(&mut core),
        vec![Action::Send {
            peer: 7,
            message: OutMessage::Interested
        }]
    );
    let data = vec![0xAB; BLOCK_LEN as usize];
    let limit = crate::peer::MAX_UNREQUESTED_BLOCKS;
    for n in 0..=limit {
        let piece = Message::Piece {
            piece: n % 4,
            begin: 0,
            data: &data,
        };
        assert_eq!(core.handle_message(7, piece, now), Handled::Done);
        let actions = drain(&mut core);
        if n < limit {
            assert!(actions.is_empty(), "closed after {} blocks", n + 1);
        } else {
            assert_eq!(
                actions,
                vec![Action::Close {
                    peer: 7,
                    reason: CloseReason::UnrequestedBlocks { count: limit + 1 }
                }]
            );
        }
    }
    assert_eq!(core.stats().downloaded, 0);
    assert_eq!(core.stats().wasted, u64::from((limit + 1) * BLOCK_LEN));
}
