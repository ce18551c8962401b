//! Specs of the built-in tracker's state: a peer's life from announce to
//! expiry, which peers a reply hands out, the allow list and the caps, the
//! compact and dictionary replies, and scrape counts.
//!
//! Layer 0, test-only: `now` and the generator are passed in.

use super::*;
use crate::bencode::{decode, Limits as DecodeLimits};
use crate::tracker::{parse_response, TrackerError};

const HASH: [u8; 20] = [0xAB; 20];

fn params(id: u8, port: u16, left: u64, event: Event) -> AnnounceParams {
    AnnounceParams {
        info_hash: HASH,
        peer_id: [id; 20],
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: 50,
        compact: true,
        no_peer_id: false,
        key: None,
    }
}

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

fn addr(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(ip(n), port)
}

fn tracker() -> TrackerState {
    TrackerState::new(TrackerConfig::default())
}

fn addrs(reply: &AnnounceReply) -> Vec<SocketAddr> {
    reply.peers.iter().map(|p| p.addr).collect()
}

#[test]
fn lifecycle_announce_complete_stop_expire() {
    let t0 = Instant::now();
    let mut rng = Rng::new(1);
    let mut state = tracker();
    let a = params(1, 6881, 100, Event::Started);
    let b = params(2, 6882, 0, Event::Started);

    let first = state.announce(ip(1), &a, t0, &mut rng).unwrap();
    assert_eq!(
        (first.seeders, first.leechers, first.peers.len()),
        (0, 1, 0)
    );
    assert_eq!(first.interval, ANNOUNCE_INTERVAL);
    let second = state.announce(ip(2), &b, t0, &mut rng).unwrap();
    assert_eq!((second.seeders, second.leechers), (1, 1));
    assert_eq!(
        second.peers,
        vec![ReplyPeer {
            addr: addr(1, 6881),
            peer_id: [1; 20]
        }]
    );

    // A finishes: counted once, however often it says so.
    let done = params(1, 6881, 0, Event::Completed);
    for minute in 1..=3 {
        let t = t0 + Duration::from_secs(60 * minute);
        let reply = state.announce(ip(1), &done, t, &mut rng).unwrap();
        assert_eq!((reply.seeders, reply.leechers), (2, 0));
    }
    assert_eq!(state.scrape(&[HASH])[0].completed, 1);

    // B stops: gone at once, and a stopped peer gets no peers.
    let t3 = t0 + Duration::from_secs(180);
    let stopped = state
        .announce(ip(2), &params(2, 6882, 0, Event::Stopped), t3, &mut rng)
        .unwrap();
    assert_eq!(
        (stopped.seeders, stopped.leechers, stopped.peers.len()),
        (1, 0, 0)
    );
    assert_eq!(state.peer_count(), 1);

    // A falls silent: kept for PEER_TIMEOUT, then forgotten with its swarm.
    assert_eq!(state.expire(t3 + PEER_TIMEOUT), 0);
    assert_eq!(state.peer_count(), 1);
    assert_eq!(state.expire(t3 + PEER_TIMEOUT + Duration::from_secs(1)), 1);
    assert_eq!((state.peer_count(), state.swarm_count()), (0, 0));
    assert_eq!(state.scrape(&[HASH])[0].completed, 0);
}

#[test]
fn stopping_an_unknown_peer_stores_nothing() {
    let mut state = tracker();
    let reply = state
        .announce(
            ip(1),
            &params(1, 1, 5, Event::Stopped),
            Instant::now(),
            &mut Rng::new(1),
        )
        .unwrap();
    assert_eq!(
        (reply.seeders, reply.leechers, reply.peers.len()),
        (0, 0, 0)
    );
    assert_eq!((state.swarm_count(), state.peer_count()), (0, 0));
}

#[test]
fn never_returns_the_announcer() {
    let now = Instant::now();
    let mut rng = Rng::new(9);
    let mut state = tracker();
    for n in 1..=20 {
        state
            .announce(ip(n), &params(n, 7000, 1, Event::Started), now, &mut rng)
            .unwrap();
    }
    // The same client through a dual-stack socket is still itself.
    let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 3).to_ipv6_mapped());
    for _ in 0..50 {
        let reply = state
            .announce(mapped, &params(3, 7000, 1, Event::Empty), now, &mut rng)
            .unwrap();
        assert_eq!(reply.peers.len(), 19);
        assert!(!addrs(&reply).contains(&addr(3, 7000)));
    }
    assert_eq!(state.peer_count(), 20);
    // A second address with the announcer's peer id is left out too.
    let reply = state
        .announce(ip(99), &params(3, 7000, 1, Event::Empty), now, &mut rng)
        .unwrap();
    assert!(reply.peers.iter().all(|p| p.peer_id != [3; 20]));
    assert_eq!(reply.peers.len(), 19);
}

#[test]
fn numwant_is_respected_and_the_choice_is_random() {
    let now = Instant::now();
    let mut rng = Rng::new(5);
    let mut state = tracker();
    for n in 1..=30 {
        state
            .announce(ip(n), &params(n, 7000, 1, Event::Started), now, &mut rng)
            .unwrap();
    }
    for (numwant, expected) in [(0, 0), (1, 1), (5, 5), (29, 29), (200, 29)] {
        let p = AnnounceParams {
            numwant,
            ..params(1, 7000, 1, Event::Empty)
        };
        let reply = state.announce(ip(1), &p, now, &mut rng).unwrap();
        let mut got = addrs(&reply);
        assert_eq!(got.len(), expected, "numwant {numwant}");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), expected, "duplicates for numwant {numwant}");
    }
    let mut seen = BTreeSet::new();
    for _ in 0..100 {
        let p = AnnounceParams {
            numwant: 3,
            ..params(1, 7000, 1, Event::Empty)
        };
        seen.extend(addrs(&state.announce(ip(1), &p, now, &mut rng).unwrap()));
    }
    assert_eq!(seen.len(), 29, "every other peer is handed out sometimes");
}

#[test]
fn rank_by_upload_hands_out_the_biggest_uploaders_first() {
    let now = Instant::now();
    let mut rng = Rng::new(5);
    let mut state = TrackerState::new(TrackerConfig {
        rank_by_upload: true,
        ..TrackerConfig::default()
    });
    for (n, uploaded) in [(1, 10), (2, 500), (3, 0), (4, 70), (5, 500)] {
        let p = AnnounceParams {
            uploaded,
            ..params(n, 7000, 1, Event::Started)
        };
        state.announce(ip(n), &p, now, &mut rng).unwrap();
    }
    let p = AnnounceParams {
        numwant: 3,
        ..params(9, 7000, 1, Event::Started)
    };
    let reply = state.announce(ip(9), &p, now, &mut rng).unwrap();
    assert_eq!(
        addrs(&reply),
        vec![addr(2, 7000), addr(5, 7000), addr(4, 7000)]
    );
}

#[test]
fn allow_list_refuses_unknown_hashes() {
    let now = Instant::now();
    let mut rng = Rng::new(5);
    let allowed = [7; 20];
    let mut state = TrackerState::new(TrackerConfig {
        allow: Some(BTreeSet::from([allowed])),
        ..TrackerConfig::default()
    });
    let refused = state.announce(ip(1), &params(1, 1, 1, Event::Started), now, &mut rng);
    assert_eq!(refused, Err(TrackerFailure::NotAllowed));
    assert_eq!((state.swarm_count(), state.peer_count()), (0, 0));
    let p = AnnounceParams {
        info_hash: allowed,
        ..params(1, 1, 1, Event::Started)
    };
    assert!(state.announce(ip(1), &p, now, &mut rng).is_ok());
    let scraped = state.scrape(&[HASH, allowed]);
    assert_eq!(scraped.len(), 1);
    assert_eq!(scraped[0].info_hash, allowed);
    // An allow-listed swarm keeps its counter when its last peer leaves.
    state
        .announce(
            ip(1),
            &AnnounceParams {
                left: 0,
                event: Event::Completed,
                ..p.clone()
            },
            now,
            &mut rng,
        )
        .unwrap();
    state.expire(now + PEER_TIMEOUT * 2);
    assert_eq!(state.swarm_count(), 1);
    assert_eq!(state.scrape(&[allowed])[0].completed, 1);
    let reason = TrackerFailure::NotAllowed.to_string();
    assert_eq!(
        parse_response(&super::super::http_request::failure_body(&reason)),
        Err(TrackerError::Failure(reason))
    );
}

#[test]
fn caps_refuse_new_entries_but_not_known_peers() {
    let now = Instant::now();
    let mut rng = Rng::new(5);
    let limits = Limits {
        max_swarms: 2,
        max_peers_per_swarm: 3,
        max_peers_total: 4,
    };
    let mut state = TrackerState::new(TrackerConfig {
        limits,
        ..TrackerConfig::default()
    });
    let in_swarm = |hash: u8, n: u8| AnnounceParams {
        info_hash: [hash; 20],
        ..params(n, 7000, 1, Event::Started)
    };
    for n in 1..=3 {
        state
            .announce(ip(n), &in_swarm(1, n), now, &mut rng)
            .unwrap();
    }
    assert_eq!(
        state.announce(ip(4), &in_swarm(1, 4), now, &mut rng),
        Err(TrackerFailure::SwarmFull { limit: 3 })
    );
    state
        .announce(ip(4), &in_swarm(2, 4), now, &mut rng)
        .unwrap();
    assert_eq!(
        state.announce(ip(5), &in_swarm(3, 5), now, &mut rng),
        Err(TrackerFailure::TooManySwarms { limit: 2 })
    );
    assert_eq!(
        state.announce(ip(5), &in_swarm(2, 5), now, &mut rng),
        Err(TrackerFailure::TrackerFull { limit: 4 })
    );
    assert_eq!((state.swarm_count(), state.peer_count()), (2, 4));
    // Known peers keep announcing when everything is full.
    assert!(state
        .announce(ip(1), &in_swarm(1, 1), now, &mut rng)
        .is_ok());
    // A stop makes room.
    let stop = AnnounceParams {
        event: Event::Stopped,
        ..in_swarm(1, 1)
    };
    state.announce(ip(1), &stop, now, &mut rng).unwrap();
    assert!(state
        .announce(ip(5), &in_swarm(2, 5), now, &mut rng)
        .is_ok());
    assert_eq!(state.peer_count(), 4);
    assert_eq!(
        TrackerFailure::SwarmFull { limit: 3 }.to_string(),
        "swarm is full: already 3 peers"
    );
}

fn sample_reply() -> AnnounceReply {
    AnnounceReply {
        interval: ANNOUNCE_INTERVAL,
        min_interval: MIN_ANNOUNCE_INTERVAL,
        seeders: 2,
        leechers: 7,
        peers: vec![
            ReplyPeer {
                addr: "10.0.0.1:6881".parse().unwrap(),
                peer_id: *b"-PL0001-aaaaaaaaaaaa",
            },
            ReplyPeer {
                addr: "[fe80::1]:51413".parse().unwrap(),
                peer_id: [0; 20],
            },
            ReplyPeer {
                addr: "192.168.1.20:80".parse().unwrap(),
                peer_id: [0xff; 20],
            },
        ],
    }
}

#[test]
fn compact_reply_round_trips_through_the_client_parser() {
    let body = encode_announce_reply(&sample_reply(), true, false);
    let parsed = parse_response(&body).unwrap();
    let expected: Vec<SocketAddr> = ["10.0.0.1:6881", "192.168.1.20:80", "[fe80::1]:51413"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(parsed.peers, expected);
    assert_eq!((parsed.complete, parsed.incomplete), (Some(2), Some(7)));
    assert_eq!(parsed.interval, ANNOUNCE_INTERVAL);
    let value = decode(&body, DecodeLimits::CANONICAL).unwrap();
    let dict = value.as_dict().unwrap();
    assert_eq!(dict.get_bytes(b"peers").unwrap().len(), 12);
    assert_eq!(dict.get_bytes(b"peers6").unwrap().len(), 18);
    assert_eq!(dict.get_int(b"min interval"), Some(30));
    let no_v6 = AnnounceReply {
        peers: vec![],
        ..sample_reply()
    };
    let body = encode_announce_reply(&no_v6, true, false);
    assert_eq!(
        body,
        b"d8:completei2e10:incompletei7e8:intervali60e12:min intervali30e5:peers0:e"
    );
    assert_eq!(parse_response(&body).unwrap().peers, vec![]);
}

#[test]
fn dictionary_reply_round_trips_with_and_without_peer_ids() {
    for no_peer_id in [false, true] {
        let body = encode_announce_reply(&sample_reply(), false, no_peer_id);
        let parsed = parse_response(&body).unwrap();
        let expected: Vec<SocketAddr> = ["10.0.0.1:6881", "[fe80::1]:51413", "192.168.1.20:80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(parsed.peers, expected);
        let value = decode(&body, DecodeLimits::CANONICAL).unwrap();
        let list = value.as_dict().unwrap().get_list(b"peers").unwrap();
        let first = list.items[0].as_dict().unwrap();
        assert_eq!(first.get_str(b"ip"), Some("10.0.0.1"));
        assert_eq!(first.get_int(b"port"), Some(6881));
        let id = first.get_bytes(b"peer id");
        assert_eq!(
            id,
            if no_peer_id {
                None
            } else {
                Some(&b"-PL0001-aaaaaaaaaaaa"[..])
            }
        );
        assert!(value.as_dict().unwrap().get(b"peers6").is_none());
    }
}

#[test]
fn scrape_reply_lists_each_hash_with_its_counts() {
    let entries = [
        ScrapeEntry {
            info_hash: [1; 20],
            seeders: 3,
            leechers: 4,
            completed: 5,
        },
        ScrapeEntry {
            info_hash: [0; 20],
            seeders: 0,
            leechers: 0,
            completed: 0,
        },
    ];
    let body = encode_scrape_reply(&entries);
    let value = decode(&body, DecodeLimits::CANONICAL).unwrap();
    let files = value.as_dict().unwrap().get_dict(b"files").unwrap();
    assert_eq!(files.entries.len(), 2);
    let one = files.get_dict(&[1; 20]).unwrap();
    assert_eq!(
        (
            one.get_int(b"complete"),
            one.get_int(b"incomplete"),
            one.get_int(b"downloaded")
        ),
        (Some(3), Some(4), Some(5))
    );
    assert_eq!(encode_scrape_reply(&[]), b"d5:filesdee");
}

#[test]
fn scrape_counts_swarms_and_refuses_a_full_scrape() {
    let now = Instant::now();
    let mut rng = Rng::new(5);
    let mut state = tracker();
    state
        .announce(ip(1), &params(1, 1, 0, Event::Started), now, &mut rng)
        .unwrap();
    state
        .announce(ip(2), &params(2, 1, 9, Event::Started), now, &mut rng)
        .unwrap();
    state
        .announce(ip(3), &params(3, 1, 9, Event::Started), now, &mut rng)
        .unwrap();
    let got = state.scrape(&[HASH, [5; 20], HASH]);
    assert_eq!(
        got,
        vec![
            ScrapeEntry {
                info_hash: HASH,
                seeders: 1,
                leechers: 2,
                completed: 0
            },
            ScrapeEntry {
                info_hash: [5; 20],
                seeders: 0,
                leechers: 0,
                completed: 0
            },
        ]
    );
    assert_eq!(state.scrape(&[]), vec![]);
}
