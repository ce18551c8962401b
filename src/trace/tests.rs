//! Specs of the protocol trace: line format per kind and phase, escaping of
//! outside text, the bounded buffer and its drop count, filters, and the
//! descriptions of wire messages and handshakes.
//!
//! Layer 0, test-only: values in, lines out; `now` is made up per test.

use super::*;
use crate::wire::BlockRequest;

const PEER: &str = "127.0.0.1:51413";
const OTHER: &str = "10.0.0.2:6881";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

/// A tracer recording everything, started at `start`.
fn tracer(start: Instant, capacity: usize) -> Tracer {
    Tracer::new(start, Filter::default(), capacity)
}

/// Records one event with `event` on a fresh tracer and returns its lines.
fn lines_of(filter: Filter, event: impl FnOnce(&mut Tracer, Instant)) -> Vec<String> {
    let start = Instant::now();
    let mut tracer = Tracer::new(start, filter, 16);
    event(&mut tracer, start);
    tracer.drain().collect()
}

#[test]
fn every_event_kind_formats_one_aligned_line() {
    type Event = Box<dyn Fn(&mut Tracer, Instant)>;
    let table: Vec<(Event, &str)> = vec![
        (
            Box::new(|t, s| t.poll_wake(s + us(12_345), 3, us(1_200))),
            "   0.012345 wait            wake: 3 events after 1.2 ms",
        ),
        (
            Box::new(|t, s| t.poll_wake(s + ms(1_000), 1, ms(987))),
            "   1.000000 wait            wake: 1 event after 987.0 ms",
        ),
        (
            Box::new(|t, s| t.poll_wake(s + ms(2_500), 0, ms(1_500))),
            "   2.500000 wait            wake: 0 events after 1.500 s",
        ),
        (
            Box::new(|t, s| {
                let piece = Message::Piece {
                    piece: 12,
                    begin: 32768,
                    data: &[0; 16384],
                };
                t.wire_in(s + us(13_001), phase::RECEIVE, addr(PEER), &describe(&piece));
            }),
            "   0.013001 receive         <- 127.0.0.1:51413 PIECE #12 +32768 (16384 B)",
        ),
        (
            Box::new(|t, s| t.wire_out(s, phase::SEND_HAVES, addr(PEER), "HAVE #7")),
            "   0.000000 send_haves      -> 127.0.0.1:51413 HAVE #7",
        ),
        (
            Box::new(|t, s| {
                t.message_out(s, phase::SEND_KEEPALIVES, addr(PEER), &Message::KeepAlive);
            }),
            "   0.000000 send_keepalives -> 127.0.0.1:51413 KEEP_ALIVE",
        ),
        (
            Box::new(|t, s| t.message_in(s, phase::RECEIVE, addr(PEER), &Message::Unchoke)),
            "   0.000000 receive         <- 127.0.0.1:51413 UNCHOKE",
        ),
        (
            Box::new(|t, s| {
                let reason = "rate 1.2 MiB/s, slot 2 of 4";
                t.choke(s + ms(10_000), phase::RECHOKE, addr(OTHER), true, reason);
            }),
            "  10.000000 rechoke         unchoke 10.0.0.2:6881: rate 1.2 MiB/s, slot 2 of 4",
        ),
        (
            Box::new(|t, s| {
                t.choke(s, phase::RECHOKE, addr(OTHER), false, "not interested");
            }),
            "   0.000000 rechoke         choke 10.0.0.2:6881: not interested",
        ),
        (
            Box::new(|t, s| {
                let reason = "availability 1, rarest-first";
                t.pick(s + us(7), phase::REQUEST_BLOCKS, addr(OTHER), 17, reason);
            }),
            "   0.000007 request_blocks  pick #17 for 10.0.0.2:6881: availability 1, rarest-first",
        ),
        (
            Box::new(|t, s| t.hash(s, phase::RECEIVE, 17, true)),
            "   0.000000 receive         hash #17 ok",
        ),
        (
            Box::new(|t, s| t.hash(s, phase::RECEIVE, 18, false)),
            "   0.000000 receive         hash #18 FAILED",
        ),
        (
            Box::new(|t, s| t.have_broadcast(s, phase::SEND_HAVES, 17, 3)),
            "   0.000000 send_haves      HAVE #17 sent to 3 peers",
        ),
        (
            Box::new(|t, s| t.have_broadcast(s, phase::SEND_HAVES, 17, 1)),
            "   0.000000 send_haves      HAVE #17 sent to 1 peer",
        ),
        (
            Box::new(|t, s| {
                let url = "http://t.example/announce";
                t.tracker(s, phase::ANNOUNCE, url, "started", us(45_300), Ok(12));
            }),
            "   0.000000 announce        http://t.example/announce event=started: 12 peers in 45.3 ms",
        ),
        (
            Box::new(|t, s| {
                let url = "udp://t.example:6969";
                t.tracker(s, phase::RECEIVE, url, "", ms(5_000), Err("timed out"));
            }),
            "   0.000000 receive         udp://t.example:6969: failed after 5.000 s: timed out",
        ),
        (
            Box::new(|t, s| {
                t.timeout(s + ms(120_000), phase::CHECK_TIMEOUTS, addr(PEER), "no message for 120 s");
            }),
            " 120.000000 check_timeouts  timeout 127.0.0.1:51413: no message for 120 s",
        ),
        (
            Box::new(|t, s| {
                let text = format_args!("connect to {} failed", addr(OTHER));
                t.record(s, Kind::Wire, phase::ON_WRITABLE, Some(addr(OTHER)), text);
            }),
            "   0.000000 on_writable     connect to 10.0.0.2:6881 failed",
        ),
    ];
    for (event, expected) in table {
        assert_eq!(lines_of(Filter::default(), event), [expected]);
    }
}

#[test]
fn timestamps_count_from_start_and_never_go_negative() {
    let start = Instant::now() + ms(5_000);
    let mut tracer = tracer(start, 8);
    tracer.hash(start - ms(1), phase::RECEIVE, 0, true);
    tracer.hash(
        start + Duration::from_secs(12_345) + us(6),
        phase::RECEIVE,
        1,
        true,
    );
    let lines: Vec<String> = tracer.drain().collect();
    assert_eq!(
        lines,
        [
            "   0.000000 receive         hash #0 ok",
            "12345.000006 receive         hash #1 ok",
        ]
    );
}

#[test]
fn long_phase_names_still_get_a_separating_space() {
    let lines = lines_of(Filter::default(), |t, s| {
        t.hash(s, "check_existing_data", 3, true);
    });
    assert_eq!(lines, ["   0.000000 check_existing_data hash #3 ok"]);
}

#[test]
fn kind_filter_keeps_only_the_listed_kinds() {
    let filter = Filter::new(Some(vec![Kind::Choke, Kind::Tracker]), None);
    for kind in Kind::ALL {
        let wanted = matches!(kind, Kind::Choke | Kind::Tracker);
        assert_eq!(filter.allows(kind, None), wanted, "{kind}");
        assert_eq!(filter.allows(kind, Some(addr(PEER))), wanted, "{kind}");
    }
    let lines = lines_of(filter, |t, s| {
        t.poll_wake(s, 1, ms(1));
        t.wire_in(s, phase::RECEIVE, addr(PEER), "CHOKE");
        t.choke(s, phase::RECHOKE, addr(PEER), true, "slot 1 of 4");
        t.pick(s, phase::REQUEST_BLOCKS, addr(PEER), 1, "rarest");
        t.hash(s, phase::RECEIVE, 1, true);
        t.tracker(s, phase::ANNOUNCE, "http://t/a", "", ms(1), Ok(0));
    });
    assert_eq!(
        lines,
        [
            "   0.000000 rechoke         unchoke 127.0.0.1:51413: slot 1 of 4",
            "   0.000000 announce        http://t/a: 0 peers in 1.0 ms",
        ]
    );
}

#[test]
fn peer_filter_keeps_that_peer_and_events_about_no_peer() {
    let filter = Filter::new(None, Some(addr(PEER)));
    let table = [
        (Kind::Wire, Some(PEER), true),
        (Kind::Wire, Some(OTHER), false),
        (Kind::Wire, Some("127.0.0.1:51414"), false),
        (Kind::Choke, Some(OTHER), false),
        (Kind::Pick, Some(PEER), true),
        (Kind::Loop, None, true),
        (Kind::Tracker, None, true),
        (Kind::Pick, None, true),
    ];
    for (kind, peer, wanted) in table {
        let peer = peer.map(addr);
        assert_eq!(filter.allows(kind, peer), wanted, "{kind} {peer:?}");
        let tracer = Tracer::new(Instant::now(), filter.clone(), 1);
        assert_eq!(tracer.enabled(kind, peer), wanted, "{kind} {peer:?}");
    }
    let lines = lines_of(filter, |t, s| {
        t.poll_wake(s, 2, ms(3));
        t.wire_in(s, phase::RECEIVE, addr(OTHER), "HAVE #1");
        t.message_in(s, phase::RECEIVE, addr(PEER), &Message::Have { piece: 2 });
        t.timeout(s, phase::CHECK_TIMEOUTS, addr(OTHER), "silent");
    });
    assert_eq!(
        lines,
        [
            "   0.000000 wait            wake: 2 events after 3.0 ms",
            "   0.000000 receive         <- 127.0.0.1:51413 HAVE #2",
        ]
    );
}

#[test]
fn peer_filter_with_port_zero_matches_every_port_of_that_ip() {
    let filter = Filter::new(Some(vec![Kind::Wire]), Some(addr("127.0.0.1:0")));
    assert!(filter.allows(Kind::Wire, Some(addr(PEER))));
    assert!(filter.allows(Kind::Wire, Some(addr("127.0.0.1:1"))));
    assert!(!filter.allows(Kind::Wire, Some(addr(OTHER))));
    assert!(!filter.allows(Kind::Choke, Some(addr(PEER))));
    let v6 = Filter::new(None, Some(addr("[::1]:0")));
    assert!(v6.allows(Kind::Wire, Some(addr("[::1]:6881"))));
    assert!(!v6.allows(Kind::Wire, Some(addr(PEER))));
}

#[test]
fn default_filter_allows_everything() {
    let filter = Filter::default();
    for kind in Kind::ALL {
        assert!(filter.allows(kind, None));
        assert!(filter.allows(kind, Some(addr(OTHER))));
    }
}

#[test]
fn overflow_drops_the_oldest_lines_and_reports_how_many_first() {
    let start = Instant::now();
    let mut tracer = tracer(start, 3);
    for piece in 0..10u32 {
        tracer.hash(start + us(u64::from(piece)), phase::RECEIVE, piece, true);
        assert!(tracer.len() <= 3);
    }
    let lines: Vec<String> = tracer.drain().collect();
    assert_eq!(
        lines,
        [
            // Stamped with the newest dropped line (#6), so time still only goes forward.
            "   0.000006 trace           ... 7 lines dropped (trace buffer full)",
            "   0.000007 receive         hash #7 ok",
            "   0.000008 receive         hash #8 ok",
            "   0.000009 receive         hash #9 ok",
        ]
    );
    assert!(tracer.is_empty());
    assert_eq!(tracer.drain().count(), 0, "the count resets on drain");

    tracer.hash(start + ms(1), phase::RECEIVE, 10, false);
    let lines: Vec<String> = tracer.drain().collect();
    assert_eq!(lines, ["   0.001000 receive         hash #10 FAILED"]);
}

#[test]
fn overflow_by_one_line_says_line() {
    let start = Instant::now();
    let mut tracer = tracer(start, 1);
    tracer.hash(start, phase::RECEIVE, 0, true);
    tracer.hash(start + us(1), phase::RECEIVE, 1, true);
    let lines: Vec<String> = tracer.drain().collect();
    assert_eq!(
        lines,
        [
            "   0.000000 trace           ... 1 line dropped (trace buffer full)",
            "   0.000001 receive         hash #1 ok",
        ]
    );
}

#[test]
fn zero_capacity_keeps_nothing_but_the_count() {
    let start = Instant::now();
    let mut tracer = tracer(start, 0);
    for _ in 0..5 {
        tracer.poll_wake(start + ms(2), 1, ms(1));
        assert_eq!(tracer.len(), 0);
    }
    assert!(!tracer.is_empty());
    let lines: Vec<String> = tracer.drain().collect();
    assert_eq!(
        lines,
        ["   0.002000 trace           ... 5 lines dropped (trace buffer full)"]
    );
}

#[test]
fn filtered_out_events_neither_fill_nor_overflow_the_buffer() {
    let start = Instant::now();
    let mut tracer = Tracer::new(start, Filter::new(Some(vec![Kind::Loop]), None), 1);
    for piece in 0..100 {
        tracer.hash(start, phase::RECEIVE, piece, true);
    }
    assert!(tracer.is_empty());
}

#[test]
fn control_characters_from_outside_are_escaped() {
    let lines = lines_of(Filter::default(), |t, s| {
        let client = "evil\x1b[2J\x07";
        let handshake = describe_handshake(client, &[0; 8]);
        t.wire_in(s, phase::RECEIVE, addr(PEER), &handshake);
        let url = "http://t/a\r\n   9.999999 forged line";
        t.tracker(
            s,
            phase::ANNOUNCE,
            url,
            "",
            ms(1),
            Err("bad\x1b]0;title\x07"),
        );
        t.choke(s, phase::RECHOKE, addr(PEER), true, "tab\there\u{9b}31m");
        t.record(s, Kind::Loop, "ph\x1base", None, format_args!("x"));
    });
    assert_eq!(
        lines,
        [
            r#"   0.000000 receive         <- 127.0.0.1:51413 HANDSHAKE client "evil\u{1b}[2J\u{7}" reserved 0000000000000000"#,
            r"   0.000000 announce        http://t/a\r\n   9.999999 forged line: failed after 1.0 ms: bad\u{1b}]0;title\u{7}",
            r"   0.000000 rechoke         unchoke 127.0.0.1:51413: tab\there\u{9b}31m",
            r"   0.000000 ph\u{1b}ase     x",
        ]
    );
    for line in &lines {
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}

#[test]
fn describe_names_every_message_with_its_fields() {
    let block = BlockRequest {
        piece: 12,
        begin: 32768,
        len: 16384,
    };
    let mut bitfield = [0u8; 16];
    bitfield[..4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    bitfield[4] = 0b1110_0000;
    bitfield[5] = 0b0000_0011;
    let table = [
        (Message::KeepAlive, "KEEP_ALIVE"),
        (Message::Choke, "CHOKE"),
        (Message::Unchoke, "UNCHOKE"),
        (Message::Interested, "INTERESTED"),
        (Message::NotInterested, "NOT_INTERESTED"),
        (Message::Have { piece: 7 }, "HAVE #7"),
        (Message::Bitfield(&bitfield), "BITFIELD (37/128 pieces)"),
        (Message::Bitfield(&[]), "BITFIELD (0/0 pieces)"),
        (Message::Request(block), "REQUEST #12 +32768 (16384 B)"),
        (
            Message::Piece {
                piece: 12,
                begin: 32768,
                data: &[7; 16384],
            },
            "PIECE #12 +32768 (16384 B)",
        ),
        (Message::Cancel(block), "CANCEL #12 +32768 (16384 B)"),
        (Message::Port(6881), "PORT 6881"),
        (Message::Suggest { piece: 3 }, "SUGGEST_PIECE #3"),
        (Message::HaveAll, "HAVE_ALL"),
        (Message::HaveNone, "HAVE_NONE"),
        (
            Message::Reject(block),
            "REJECT_REQUEST #12 +32768 (16384 B)",
        ),
        (Message::AllowedFast { piece: 9 }, "ALLOWED_FAST #9"),
        (
            Message::Extended {
                id: 0,
                payload: &[b'd'; 48],
            },
            "EXTENDED id 0 (48 B)",
        ),
        (
            Message::Unknown {
                id: 42,
                payload: &[1, 2, 3],
            },
            "UNKNOWN id 42 (3 B)",
        ),
    ];
    for (message, expected) in table {
        assert_eq!(describe(&message), expected);
    }
}

#[test]
fn describe_handshake_shows_client_reserved_bits_and_extensions() {
    let extensions = Handshake::new([0; 20], [0; 20]).with_extensions();
    let all = extensions.with_fast().with_dht();
    let unknown_bit = [0x80, 0, 0, 0, 0, 0, 0, 0];
    let table = [
        (
            "-PO0100-",
            extensions.reserved,
            r#"HANDSHAKE client "-PO0100-" reserved 0000000000100000 (extensions)"#,
        ),
        (
            "libtorrent 2.0",
            all.reserved,
            r#"HANDSHAKE client "libtorrent 2.0" reserved 0000000000100005 (extensions, fast, dht)"#,
        ),
        (
            "say \"hi\"",
            unknown_bit,
            r#"HANDSHAKE client "say \"hi\"" reserved 8000000000000000"#,
        ),
    ];
    for (client, reserved, expected) in table {
        assert_eq!(describe_handshake(client, &reserved), expected);
    }
}

#[test]
fn parse_kinds_reads_a_comma_list() {
    let table: [(&str, Result<Vec<Kind>, String>); 7] = [
        (
            "wire,choke,pick,tracker,loop",
            Ok(vec![
                Kind::Wire,
                Kind::Choke,
                Kind::Pick,
                Kind::Tracker,
                Kind::Loop,
            ]),
        ),
        ("wire", Ok(vec![Kind::Wire])),
        (" Wire , PICK,wire ", Ok(vec![Kind::Wire, Kind::Pick])),
        (
            "wire,chock",
            Err(
                r#"unknown trace kind "chock" (expected loop, wire, choke, pick, tracker, dht)"#
                    .into(),
            ),
        ),
        ("", Err(r#"empty trace kind in """#.into())),
        ("wire,", Err(r#"empty trace kind in "wire,""#.into())),
        (
            "w\x1b",
            Err(
                r#"unknown trace kind "w\u{1b}" (expected loop, wire, choke, pick, tracker, dht)"#
                    .into(),
            ),
        ),
    ];
    for (text, expected) in table {
        assert_eq!(parse_kinds(text), expected, "{text:?}");
    }
}

#[test]
fn kind_names_round_trip() {
    for kind in Kind::ALL {
        assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
}

#[test]
fn describe_reads_extension_handshakes_pex_and_metadata_messages() {
    use crate::metadata::MetadataMessage;
    use crate::pex::{PexMessage, PexPeer};
    let extended = |id, payload: &[u8]| describe(&Message::Extended { id, payload });
    let handshake = b"d1:md11:ut_metadatai1e6:ut_pexi2ee1:pi6881e1:v6:pollene";
    assert_eq!(
        extended(0, handshake),
        "EXTENDED id 0 (55 B): handshake m {ut_metadata 1, ut_pex 2} p 6881"
    );
    assert_eq!(
        extended(0, b"d4:reqqi5ee"),
        "EXTENDED id 0 (11 B): handshake m {}"
    );
    let peer = |port| PexPeer {
        addr: SocketAddr::from(([10, 0, 0, 1], port)),
        flags: 0,
    };
    let pex = PexMessage {
        added: vec![peer(1), peer(2), peer(3)],
        dropped: vec![peer(4).addr],
    }
    .encode();
    assert_eq!(
        extended(9, &pex),
        format!("EXTENDED id 9 ({} B): ut_pex added 3 dropped 1", pex.len())
    );
    let v6 = PexMessage {
        added: vec![
            peer(1),
            PexPeer {
                addr: "[::1]:7".parse().unwrap(),
                flags: 0,
            },
        ],
        dropped: vec![],
    }
    .encode();
    assert_eq!(
        extended(9, &v6),
        format!(
            "EXTENDED id 9 ({} B): ut_pex added 2 (1 IPv6) dropped 0",
            v6.len()
        )
    );
    let request = MetadataMessage::Request { piece: 2 }.encode();
    assert_eq!(
        extended(3, &request),
        format!(
            "EXTENDED id 3 ({} B): ut_metadata request #2",
            request.len()
        )
    );
    assert_eq!(extended(4, b"d3:fooi1ee"), "EXTENDED id 4 (10 B)");
    // A hostile handshake: many names, long and with control characters.
    let mut hostile = b"d1:md".to_vec();
    for i in 0..40 {
        hostile.extend_from_slice(format!("3:x{i:02}i{i}e").as_bytes());
    }
    hostile.extend_from_slice(b"e1:pi-3ee");
    let text = extended(0, &hostile);
    assert!(text.ends_with("x15 15, ...}"), "{text}");
}
