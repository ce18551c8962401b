//! Specs of the UDP exchange: connect then request, resends and giving
//! up on BEP 15's schedule, stray datagrams ignored, connection ids reused
//! while fresh.
//!
//! Layer 0, test-only: the clock is an `Instant` moved by hand.

use super::*;
use crate::tracker::udp::codec::*;
use crate::tracker::udp::tracker_side::*;

// -- the state machine -----------------------------------------------------

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn announce_at(now: Instant, cached: Option<UdpConnection>, timeouts: UdpTimeouts) -> UdpAnnounce {
    let query = AnnounceQuery {
        request: request(),
        ipv6: false,
    };
    UdpExchange::new(query, now, cached, timeouts, &mut Rng::new(7))
}

/// Takes the one datagram due now and returns its header; fails if
/// there is none or more than one.
fn sent<Q: UdpQuery>(exchange: &mut UdpExchange<Q>, now: Instant) -> (u64, u32, u32, Vec<u8>) {
    let packet = exchange.poll_transmit(now).expect("a datagram to send");
    assert_eq!(exchange.poll_transmit(now), None, "a second datagram");
    let (id, action, tid) = request_header(&packet);
    (id, action, tid, packet)
}

#[test]
fn happy_path_connects_then_announces() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    assert_eq!(
        exchange.next_deadline(),
        Some(t0),
        "the connect is due at once"
    );

    let (protocol, action, connect_tid, _) = sent(&mut exchange, t0);
    assert_eq!((protocol, action), (PROTOCOL_ID, ACTION_CONNECT));
    assert_eq!(exchange.next_deadline(), Some(t0 + secs(15)));

    let t1 = t0 + Duration::from_millis(40);
    exchange.handle_datagram(&connect_reply(connect_tid, 0xC0FFEE), t1);
    let (id, action, announce_tid, packet) = sent(&mut exchange, t1);
    assert_eq!((id, action), (0xC0FFEE, ACTION_ANNOUNCE));
    assert_ne!(
        announce_tid, connect_tid,
        "a new transaction id per request"
    );
    assert_eq!(packet, encode_announce(0xC0FFEE, announce_tid, &request()));
    assert_eq!(
        exchange.connection(),
        Some(UdpConnection {
            id: 0xC0FFEE,
            obtained_at: t1
        })
    );

    let t2 = t1 + Duration::from_millis(40);
    let peers = hex("7f000001 1ae1");
    exchange.handle_datagram(&announce_reply(announce_tid, 900, 1, 2, &peers), t2);
    assert!(exchange.is_done());
    assert_eq!(exchange.next_deadline(), None);
    assert_eq!(exchange.poll_transmit(t2), None);
    let reply = exchange.poll_result().unwrap().unwrap();
    assert_eq!(reply.peers, vec![addr("127.0.0.1:6881")]);
    assert_eq!(reply.interval, secs(900));
    assert_eq!((reply.complete, reply.incomplete), (Some(2), Some(1)));
    assert_eq!(exchange.poll_result(), None, "the result is given once");
}

#[test]
fn a_lost_connect_is_sent_again_at_15_s_then_45_s() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let (_, _, tid, first) = sent(&mut exchange, t0);

    exchange.handle_timeout(t0 + secs(14));
    assert_eq!(exchange.poll_transmit(t0 + secs(14)), None, "too early");

    exchange.handle_timeout(t0 + secs(15));
    let (_, action, tid_again, second) = sent(&mut exchange, t0 + secs(15));
    assert_eq!(action, ACTION_CONNECT);
    assert_eq!(
        tid_again, tid,
        "the same connect, so a late reply still counts"
    );
    assert_eq!(second, first);
    assert_eq!(exchange.next_deadline(), Some(t0 + secs(45)));

    exchange.handle_timeout(t0 + secs(45));
    assert!(exchange.poll_transmit(t0 + secs(45)).is_some());
    assert_eq!(exchange.next_deadline(), Some(t0 + secs(105)));

    // The reply to the first send arrives late: still accepted.
    exchange.handle_datagram(&connect_reply(tid, 5), t0 + secs(50));
    let (id, action, _, _) = sent(&mut exchange, t0 + secs(50));
    assert_eq!((id, action), (5, ACTION_ANNOUNCE));
    // The back-off is the exchange's: the announce waits 15 s × 2^2.
    assert_eq!(exchange.next_deadline(), Some(t0 + secs(110)));
}

#[test]
fn resends_follow_bep_15_then_it_gives_up() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let expected_sends = [0, 15, 45, 105, 225, 465, 945, 1905, 3825];
    let mut sends = Vec::new();
    let mut now = t0;
    while !exchange.is_done() {
        if let Some(packet) = exchange.poll_transmit(now) {
            assert_eq!(request_header(&packet).1, ACTION_CONNECT);
            sends.push(now.duration_since(t0).as_secs());
        }
        let Some(deadline) = exchange.next_deadline() else {
            break;
        };
        now = deadline;
        exchange.handle_timeout(now);
    }
    assert_eq!(sends, expected_sends);
    assert_eq!(now, t0 + secs(7665), "gives up 64 min after the 9th send");
    assert_eq!(
        exchange.poll_result(),
        Some(Err(TrackerError::Transport(
            "no reply from the UDP tracker after 9 attempts".into()
        )))
    );
}

#[test]
fn short_timeouts_give_up_sooner() {
    let timeouts = UdpTimeouts {
        base: Duration::from_millis(100),
        max_retries: 2,
    };
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, timeouts);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    for (send_at, lost_at) in [(0, 100), (100, 300), (300, 700)] {
        assert!(
            exchange.poll_transmit(ms(send_at)).is_some(),
            "send at {send_at} ms"
        );
        assert_eq!(exchange.next_deadline(), Some(ms(lost_at)));
        exchange.handle_timeout(ms(lost_at));
    }
    assert!(exchange.is_done());
    assert!(matches!(
        exchange.poll_result(),
        Some(Err(TrackerError::Transport(_)))
    ));
}

#[test]
fn datagrams_not_for_us_are_ignored() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let (_, _, tid, _) = sent(&mut exchange, t0);
    let other = tid.wrapping_add(1);
    let strays = [
        vec![],
        vec![0; 7],
        connect_reply(other, 1),
        error_reply(other, b"not you"),
        announce_reply(other, 60, 0, 0, &[]),
        b"\x00\x00\x00\x00garbage!".to_vec(),
    ];
    for stray in &strays {
        exchange.handle_datagram(stray, t0 + secs(1));
        assert_eq!(exchange.poll_transmit(t0 + secs(1)), None);
        assert_eq!(exchange.poll_result(), None);
        assert_eq!(exchange.next_deadline(), Some(t0 + secs(15)));
    }
    exchange.handle_datagram(&connect_reply(tid, 3), t0 + secs(2));
    assert_eq!(sent(&mut exchange, t0 + secs(2)).1, ACTION_ANNOUNCE);
}

#[test]
fn an_error_reply_ends_the_exchange_with_failure() {
    let t0 = Instant::now();
    // At the connect.
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let (_, _, tid, _) = sent(&mut exchange, t0);
    exchange.handle_datagram(&error_reply(tid, b"go away"), t0);
    assert_eq!(
        exchange.poll_result(),
        Some(Err(TrackerError::Failure("go away".into())))
    );
    assert_eq!(exchange.next_deadline(), None);

    // At the announce.
    let cached = UdpConnection {
        id: 8,
        obtained_at: t0,
    };
    let mut exchange = announce_at(t0, Some(cached), UdpTimeouts::default());
    let (_, action, tid, _) = sent(&mut exchange, t0);
    assert_eq!(action, ACTION_ANNOUNCE);
    exchange.handle_datagram(&error_reply(tid, b"unregistered torrent\0"), t0);
    assert_eq!(
        exchange.poll_result(),
        Some(Err(TrackerError::Failure("unregistered torrent".into())))
    );
}

#[test]
fn a_broken_reply_with_our_transaction_id_ends_the_exchange_as_malformed() {
    let t0 = Instant::now();
    let cases: [fn(u32) -> Vec<u8>; 3] = [
        |tid| connect_reply(tid, 1)[..12].to_vec(),
        |tid| announce_reply(tid, 60, 0, 0, &[]),
        |tid| reply(9, tid, &[0; 8]),
    ];
    for make in cases {
        let mut exchange = announce_at(t0, None, UdpTimeouts::default());
        let (_, _, tid, _) = sent(&mut exchange, t0);
        exchange.handle_datagram(&make(tid), t0);
        assert!(matches!(
            exchange.poll_result(),
            Some(Err(TrackerError::Malformed(_)))
        ));
        assert!(exchange.is_done());
    }
}

#[test]
fn a_cached_connection_id_is_used_while_under_a_minute_old() {
    let t0 = Instant::now();
    let cases = [
        (Duration::ZERO, true),
        (secs(30), true),
        (Duration::from_millis(59_999), true),
        (secs(60), false),
        (secs(600), false),
    ];
    for (age, reused) in cases {
        let cached = UdpConnection {
            id: 77,
            obtained_at: t0,
        };
        let mut exchange = announce_at(t0 + age, Some(cached), UdpTimeouts::default());
        let (id, action, _, _) = sent(&mut exchange, t0 + age);
        if reused {
            assert_eq!((id, action), (77, ACTION_ANNOUNCE), "age {age:?}");
        } else {
            assert_eq!((id, action), (PROTOCOL_ID, ACTION_CONNECT), "age {age:?}");
        }
    }
}

#[test]
fn an_expired_connection_id_is_renewed_before_a_resend() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let (_, _, tid, _) = sent(&mut exchange, t0);
    exchange.handle_datagram(&connect_reply(tid, 1), t0);
    let (_, _, announce_tid, first) = sent(&mut exchange, t0);

    // Lost at 15 s and 45 s: the same announce goes again, id still fresh.
    for at in [15, 45] {
        exchange.handle_timeout(t0 + secs(at));
        let (id, action, tid, packet) = sent(&mut exchange, t0 + secs(at));
        assert_eq!((id, action, tid), (1, ACTION_ANNOUNCE, announce_tid));
        assert_eq!(packet, first);
    }
    // Lost again at 105 s: the id is 105 s old, so connect again.
    exchange.handle_timeout(t0 + secs(105));
    let (protocol, action, reconnect_tid, _) = sent(&mut exchange, t0 + secs(105));
    assert_eq!((protocol, action), (PROTOCOL_ID, ACTION_CONNECT));
    assert_ne!(reconnect_tid, announce_tid);

    exchange.handle_datagram(&announce_reply(announce_tid, 60, 0, 0, &[]), t0 + secs(106));
    assert_eq!(
        exchange.poll_result(),
        None,
        "the old announce's tid is stale now"
    );

    exchange.handle_datagram(&connect_reply(reconnect_tid, 2), t0 + secs(107));
    let (id, action, new_tid, _) = sent(&mut exchange, t0 + secs(107));
    assert_eq!((id, action), (2, ACTION_ANNOUNCE));
    assert_eq!(
        exchange.connection(),
        Some(UdpConnection {
            id: 2,
            obtained_at: t0 + secs(107)
        })
    );
    exchange.handle_datagram(&announce_reply(new_tid, 60, 0, 0, &[]), t0 + secs(108));
    assert!(matches!(exchange.poll_result(), Some(Ok(_))));
}

#[test]
fn an_ipv6_announce_reads_18_byte_peers() {
    let t0 = Instant::now();
    let cached = UdpConnection {
        id: 1,
        obtained_at: t0,
    };
    let query = AnnounceQuery {
        request: request(),
        ipv6: true,
    };
    let mut exchange = UdpExchange::new(
        query,
        t0,
        Some(cached),
        UdpTimeouts::default(),
        &mut Rng::new(1),
    );
    let (_, _, tid, _) = sent(&mut exchange, t0);
    let peer = hex("20010db8000000000000000000000001 1ae1");
    exchange.handle_datagram(&announce_reply(tid, 60, 0, 0, &peer), t0);
    let reply = exchange.poll_result().unwrap().unwrap();
    assert_eq!(reply.peers, vec![addr("[2001:db8::1]:6881")]);
}

#[test]
fn a_scrape_connects_then_asks_for_every_hash() {
    let t0 = Instant::now();
    let hashes = [[1u8; 20], [2u8; 20]];
    let query = ScrapeQuery::new(&hashes).unwrap();
    let mut exchange: UdpScrape =
        UdpExchange::new(query, t0, None, UdpTimeouts::default(), &mut Rng::new(3));
    let (_, action, tid, _) = sent(&mut exchange, t0);
    assert_eq!(action, ACTION_CONNECT);
    exchange.handle_datagram(&connect_reply(tid, 99), t0);
    let (id, action, tid, packet) = sent(&mut exchange, t0);
    assert_eq!((id, action), (99, ACTION_SCRAPE));
    assert_eq!(packet, encode_scrape(99, tid, &hashes));
    exchange.handle_datagram(&scrape_reply(tid, &[(1, 2, 3), (4, 5, 6)]), t0);
    let stats = exchange.poll_result().unwrap().unwrap();
    assert_eq!(
        stats,
        vec![
            ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3
            },
            ScrapeStats {
                seeders: 4,
                completed: 5,
                leechers: 6
            },
        ]
    );
}

#[test]
fn a_scrape_query_holds_one_to_74_hashes() {
    assert_eq!(ScrapeQuery::new(&[]), None);
    assert!(ScrapeQuery::new(&[[0; 20]; MAX_SCRAPE_HASHES]).is_some());
    assert_eq!(ScrapeQuery::new(&[[0; 20]; MAX_SCRAPE_HASHES + 1]), None);
}

#[test]
fn nothing_happens_after_the_end() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, UdpTimeouts::default());
    let (_, _, tid, _) = sent(&mut exchange, t0);
    exchange.handle_datagram(&error_reply(tid, b"no"), t0);
    exchange.handle_datagram(&connect_reply(tid, 1), t0);
    exchange.handle_timeout(t0 + secs(10_000));
    assert_eq!(exchange.poll_transmit(t0 + secs(10_000)), None);
    assert_eq!(exchange.next_deadline(), None);
    assert_eq!(
        exchange.poll_result(),
        Some(Err(TrackerError::Failure("no".into())))
    );
    assert_eq!(exchange.poll_result(), None);
}

#[test]
fn exchanges_draw_different_transaction_ids() {
    let t0 = Instant::now();
    let mut rng = Rng::new(11);
    let query = || AnnounceQuery {
        request: request(),
        ipv6: false,
    };
    let mut a = UdpExchange::new(query(), t0, None, UdpTimeouts::default(), &mut rng);
    let mut b = UdpExchange::new(query(), t0, None, UdpTimeouts::default(), &mut rng);
    assert_ne!(sent(&mut a, t0).2, sent(&mut b, t0).2);
}

#[test]
fn a_silent_tracker_is_given_up_after_three_sends_in_28_s() {
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, ANNOUNCE_TIMEOUTS);
    let mut sends = Vec::new();
    let mut now = t0;
    while !exchange.is_done() {
        if exchange.poll_transmit(now).is_some() {
            sends.push(now.duration_since(t0).as_secs());
        }
        let Some(deadline) = exchange.next_deadline() else {
            break;
        };
        now = deadline;
        exchange.handle_timeout(now);
    }
    assert_eq!(sends, [0, 4, 12]);
    assert_eq!(now, t0 + secs(28));
    assert_eq!(ANNOUNCE_TIMEOUTS.give_up_after(), secs(28));
    assert!(
        (secs(15)..=secs(30)).contains(&ANNOUNCE_TIMEOUTS.give_up_after()),
        "a silent tracker is dropped within 15-30 s"
    );
    assert_eq!(
        exchange.poll_result(),
        Some(Err(TrackerError::Transport(
            "no reply from the UDP tracker after 3 attempts".into()
        )))
    );
}

#[test]
fn give_up_after_sums_every_wait() {
    assert_eq!(UdpTimeouts::default().give_up_after(), secs(7665));
    let one = UdpTimeouts {
        base: secs(3),
        max_retries: 0,
    };
    assert_eq!(one.give_up_after(), secs(3));
    let huge = UdpTimeouts {
        base: Duration::MAX,
        max_retries: 8,
    };
    assert_eq!(huge.give_up_after(), Duration::MAX);
}

#[test]
fn timeouts_double_and_saturate() {
    let timeouts = UdpTimeouts::default();
    let waits: Vec<u64> = (0..=8).map(|n| timeouts.wait(n).as_secs()).collect();
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
    assert_eq!(
        timeouts.wait(200),
        timeouts.wait(32),
        "the factor stops at u32::MAX"
    );
    let huge = UdpTimeouts {
        base: Duration::MAX,
        max_retries: 8,
    };
    assert_eq!(huge.wait(1), Duration::MAX);
    let t0 = Instant::now();
    let mut exchange = announce_at(t0, None, huge);
    assert!(exchange.poll_transmit(t0).is_some(), "no overflow panic");
    assert_eq!(exchange.next_deadline(), None);
}
