//! Specs of the UDP tracker packets: requests byte-exact, replies decoded
//! strictly, `udp://` URLs parsed.
//!
//! Layer 0, test-only: byte tables in, values out.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::tracker::udp::tracker_side::*;
use crate::tracker::{MAX_INTERVAL, MAX_PEERS_PER_REPLY, MAX_TRACKER_TEXT_CHARS, MIN_INTERVAL};

// -- requests --------------------------------------------------------------

#[test]
fn connect_request_is_byte_exact() {
    assert_eq!(
        encode_connect(0x1234_5678),
        hex("00000417 27101980  00000000  12345678")
    );
    assert_eq!(encode_connect(0).len(), CONNECT_REQUEST_LEN);
}

#[test]
fn announce_request_is_byte_exact() {
    let packet = encode_announce(0x0123_4567_89AB_CDEF, 0xDEAD_BEEF, &request());
    let expected = hex("0123456789abcdef 00000001 deadbeef
         000102030405060708090a0b0c0d0e0f10111213
         2d504c303030312d6162636465666768696a6b6c
         00000000000003e8 0000010000000000 0000000000000007
         00000002 00000000 cafebabe ffffffff 1ae1");
    assert_eq!(packet, expected);
    assert_eq!(packet.len(), ANNOUNCE_REQUEST_LEN);
}

#[test]
fn announce_request_event_numbers_and_defaults() {
    let cases = [
        (Event::Empty, None, None, "00000000", "00000000", "ffffffff"),
        (
            Event::Completed,
            Some(50),
            Some(1),
            "00000001",
            "00000001",
            "00000032",
        ),
        (
            Event::Started,
            Some(0),
            None,
            "00000002",
            "00000000",
            "00000000",
        ),
        (
            Event::Stopped,
            Some(u32::MAX),
            Some(u32::MAX),
            "00000003",
            "ffffffff",
            "7fffffff",
        ),
    ];
    for (event, numwant, key, event_hex, key_hex, num_want_hex) in cases {
        let req = AnnounceRequest {
            event,
            numwant,
            key,
            ..request()
        };
        let packet = encode_announce(1, 2, &req);
        assert_eq!(packet[80..84], hex(event_hex), "{event:?}");
        assert_eq!(packet[88..92], hex(key_hex), "{key:?}");
        assert_eq!(packet[92..96], hex(num_want_hex), "{numwant:?}");
    }
}

#[test]
fn announce_request_round_trips_through_a_tracker_side_parse() {
    let cases = [
        request(),
        AnnounceRequest {
            info_hash: [0xff; 20],
            peer_id: [0; 20],
            port: u16::MAX,
            uploaded: u64::MAX,
            downloaded: u64::MAX - 1,
            left: 0,
            event: Event::Stopped,
            numwant: Some(200),
            key: Some(1),
            tracker_id: None,
            ipv6: None,
        },
        AnnounceRequest {
            port: 1,
            event: Event::Empty,
            numwant: Some(0),
            key: None,
            ..request()
        },
    ];
    for (i, req) in cases.into_iter().enumerate() {
        let tid = u32::try_from(i).unwrap() * 0x1111_1111;
        let packet = encode_announce(u64::MAX - 5, tid, &req);
        let expected = AnnounceRequest {
            tracker_id: None,
            ipv6: None,
            ..req
        };
        assert_eq!(
            parse_announce_request(&packet),
            (u64::MAX - 5, tid, expected),
            "case {i}"
        );
    }
}

#[test]
fn scrape_request_is_byte_exact_and_capped() {
    let packet = encode_scrape(0x0102_0304_0506_0708, 9, &[[0xAA; 20], [0x01; 20]]);
    let expected = hex(&format!(
        "0102030405060708 00000002 00000009 {} {}",
        "aa".repeat(20),
        "01".repeat(20)
    ));
    assert_eq!(packet, expected);

    let many = vec![[3u8; 20]; MAX_SCRAPE_HASHES + 10];
    let packet = encode_scrape(1, 2, &many);
    assert_eq!(packet.len(), 16 + 20 * MAX_SCRAPE_HASHES);
}

// -- replies ---------------------------------------------------------------

#[test]
fn connect_reply_gives_the_connection_id() {
    let datagram = hex("00000000 12345678 0123456789abcdef");
    assert_eq!(
        decode_connect_reply(&datagram, 0x1234_5678),
        Ok(0x0123_4567_89AB_CDEF)
    );
}

#[test]
fn announce_reply_gives_ipv4_peers() {
    let datagram = hex("00000001 0000abcd 00000708 00000003 00000005
         7f000001 1ae1  0a000002 0050");
    assert_eq!(
        decode_announce_reply(&datagram, 0xABCD, false),
        Ok(AnnounceResponse {
            interval: Duration::from_secs(1800),
            min_interval: None,
            peers: vec![addr("127.0.0.1:6881"), addr("10.0.0.2:80")],
            complete: Some(5),
            incomplete: Some(3),
            warning: None,
            tracker_id: None,
        })
    );
}

#[test]
fn announce_reply_gives_ipv6_peers_when_reached_over_ipv6() {
    let datagram = hex("00000001 00000001 00000708 00000000 00000001
         00000000000000000000000000000001 1ae1
         20010db8000000000000000000000002 c8d5");
    let reply = decode_announce_reply(&datagram, 1, true).unwrap();
    assert_eq!(
        reply.peers,
        vec![addr("[::1]:6881"), addr("[2001:db8::2]:51413")]
    );
    // The same 36 bytes are six IPv4 entries to a client that used IPv4:
    // the format follows the address family, not the bytes.
    let as_v4 = decode_announce_reply(&datagram, 1, false).unwrap();
    assert!(as_v4.peers.iter().all(SocketAddr::is_ipv4));
}

#[test]
fn announce_reply_clamps_the_interval_and_filters_what_it_cannot_use() {
    let max_secs = i32::try_from(MAX_INTERVAL.as_secs()).unwrap();
    let cases = [
        (1800, Duration::from_secs(1800)),
        (0, MIN_INTERVAL),
        (-5, MIN_INTERVAL),
        (max_secs + 1, MAX_INTERVAL),
        (i32::MAX, MAX_INTERVAL),
    ];
    for (interval, expected) in cases {
        let datagram = announce_reply(1, interval, 0, 0, &[]);
        let reply = decode_announce_reply(&datagram, 1, false).unwrap();
        assert_eq!(reply.interval, expected, "interval {interval}");
    }

    let datagram = announce_reply(1, 60, -1, i32::MIN, &hex("01020304 0000 01020304 0001"));
    let reply = decode_announce_reply(&datagram, 1, false).unwrap();
    assert_eq!((reply.complete, reply.incomplete), (None, None));
    assert_eq!(reply.peers, vec![addr("1.2.3.4:1")], "port 0 is dropped");

    let many: Vec<u8> = (0..MAX_PEERS_PER_REPLY + 20)
        .flat_map(|_| hex("7f000001 1ae1"))
        .collect();
    let datagram = announce_reply(1, 60, 0, 0, &many);
    let reply = decode_announce_reply(&datagram, 1, false).unwrap();
    assert_eq!(reply.peers.len(), MAX_PEERS_PER_REPLY);
}

#[test]
fn scrape_reply_gives_counts_in_the_order_asked() {
    let datagram = hex("00000002 00000007
         00000001 00000002 00000003
         7fffffff 00000000 00000010");
    assert_eq!(
        decode_scrape_reply(&datagram, 7, 2),
        Ok(vec![
            ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3
            },
            ScrapeStats {
                seeders: 0x7fff_ffff,
                completed: 0,
                leechers: 16
            },
        ])
    );
}

#[test]
fn replies_round_trip_from_a_tracker_side_encode() {
    for (tid, id) in [(0, 0), (1, u64::MAX), (u32::MAX, 0x0417_2710_1980)] {
        assert_eq!(decode_connect_reply(&connect_reply(tid, id), tid), Ok(id));
    }
    let entries = [(0, 0, 0), (i32::MAX, 1, 2), (5, 50, 500)];
    for count in 0..=entries.len() {
        let datagram = scrape_reply(42, &entries[..count]);
        let decoded = decode_scrape_reply(&datagram, 42, count).unwrap();
        let expected: Vec<ScrapeStats> = entries[..count]
            .iter()
            .map(|&(s, c, l)| ScrapeStats {
                seeders: u32::try_from(s).unwrap(),
                completed: u32::try_from(c).unwrap(),
                leechers: u32::try_from(l).unwrap(),
            })
            .collect();
        assert_eq!(decoded, expected, "{count} entries");
    }
}

#[test]
fn an_error_reply_is_a_failure_whatever_was_asked() {
    let cases: [(&[u8], &str); 4] = [
        (b"torrent not registered", "torrent not registered"),
        (b"Connection ID missmatch.\0", "Connection ID missmatch."),
        (b"", ""),
        (b"\xffbad\0\0", "\u{fffd}bad"),
    ];
    for (message, expected) in cases {
        let datagram = error_reply(5, message);
        let failure = Err(TrackerError::Failure(expected.into()));
        assert_eq!(decode_connect_reply(&datagram, 5), failure);
        assert_eq!(
            decode_announce_reply(&datagram, 5, false).map(|_| ()),
            failure.clone().map(|_: u64| ())
        );
        assert_eq!(
            decode_scrape_reply(&datagram, 5, 1).map(|_| ()),
            failure.map(|_: u64| ())
        );
    }
    let long = vec![b'x'; 10_000];
    let Err(TrackerError::Failure(text)) = decode_connect_reply(&error_reply(5, &long), 5) else {
        panic!("not a failure");
    };
    assert_eq!(text.len(), MAX_TRACKER_TEXT_CHARS);
}

/// A decoder run on a datagram, reduced to "which error, if any".
type Decoder = fn(&[u8]) -> Result<(), TrackerError>;

fn as_connect(datagram: &[u8]) -> Result<(), TrackerError> {
    decode_connect_reply(datagram, 1).map(|_| ())
}

fn as_announce(datagram: &[u8]) -> Result<(), TrackerError> {
    decode_announce_reply(datagram, 1, false).map(|_| ())
}

fn as_announce6(datagram: &[u8]) -> Result<(), TrackerError> {
    decode_announce_reply(datagram, 1, true).map(|_| ())
}

fn as_scrape_of_two(datagram: &[u8]) -> Result<(), TrackerError> {
    decode_scrape_reply(datagram, 1, 2).map(|_| ())
}

#[test]
fn replies_are_checked_strictly() {
    let mut long_connect = connect_reply(1, 9);
    long_connect.push(0);
    let mut oversized = announce_reply(1, 60, 0, 0, &[]);
    oversized.resize(MAX_DATAGRAM_LEN + 2, 0);
    let cases: Vec<(&str, Decoder, Vec<u8>)> = vec![
        ("empty", as_connect, vec![]),
        ("header cut", as_connect, connect_reply(1, 9)[..7].to_vec()),
        (
            "connect cut",
            as_connect,
            connect_reply(1, 9)[..15].to_vec(),
        ),
        ("connect too long", as_connect, long_connect),
        ("connect wrong tid", as_connect, connect_reply(2, 9)),
        (
            "connect answered as announce",
            as_connect,
            announce_reply(1, 60, 0, 0, &[]),
        ),
        ("unknown action", as_connect, reply(7, 1, &[0; 8])),
        (
            "announce without counts",
            as_announce,
            reply(ACTION_ANNOUNCE, 1, &[0; 11]),
        ),
        (
            "announce wrong tid",
            as_announce,
            announce_reply(2, 60, 0, 0, &[]),
        ),
        (
            "announce answered as connect",
            as_announce,
            connect_reply(1, 9),
        ),
        (
            "partial ipv4 peer",
            as_announce,
            announce_reply(1, 60, 0, 0, &[1; 7]),
        ),
        (
            "partial ipv6 peer",
            as_announce6,
            announce_reply(1, 60, 0, 0, &[1; 24]),
        ),
        ("over the datagram limit", as_announce, oversized),
        (
            "scrape one short",
            as_scrape_of_two,
            scrape_reply(1, &[(1, 1, 1)]),
        ),
        (
            "scrape one extra",
            as_scrape_of_two,
            scrape_reply(1, &[(1, 1, 1); 3]),
        ),
        (
            "scrape entry cut",
            as_scrape_of_two,
            scrape_reply(1, &[(1, 1, 1); 2])[..31].to_vec(),
        ),
        (
            "scrape negative",
            as_scrape_of_two,
            scrape_reply(1, &[(1, 1, 1), (1, -1, 1)]),
        ),
        (
            "scrape wrong tid",
            as_scrape_of_two,
            scrape_reply(2, &[(1, 1, 1); 2]),
        ),
    ];
    for (name, decode, datagram) in cases {
        let result = decode(&datagram);
        assert!(
            matches!(result, Err(TrackerError::Malformed(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn every_truncation_of_a_reply_is_malformed() {
    // (decoder, a valid reply, its peer entry length if it has peers)
    let cases: [(Decoder, Vec<u8>, Option<usize>); 4] = [
        (as_connect, connect_reply(1, 9), None),
        (as_scrape_of_two, scrape_reply(1, &[(1, 2, 3); 2]), None),
        (as_announce, announce_reply(1, 60, 1, 1, &[9; 12]), Some(6)),
        (
            as_announce6,
            announce_reply(1, 60, 1, 1, &[9; 36]),
            Some(18),
        ),
    ];
    for (decode, datagram, peer_len) in cases {
        assert_eq!(decode(&datagram), Ok(()));
        for cut in 0..datagram.len() {
            // An announce reply cut at a peer boundary is a shorter valid reply.
            let at_peer_boundary = peer_len.is_some_and(|peer_len| {
                cut >= ANNOUNCE_REPLY_HEADER_LEN
                    && (cut - ANNOUNCE_REPLY_HEADER_LEN).is_multiple_of(peer_len)
            });
            let result = decode(&datagram[..cut]);
            if at_peer_boundary {
                assert_eq!(result, Ok(()), "cut at {cut}");
            } else {
                assert!(
                    matches!(result, Err(TrackerError::Malformed(_))),
                    "cut at {cut} of {}: {result:?}",
                    datagram.len()
                );
            }
        }
    }
}

#[test]
fn reply_header_needs_eight_bytes() {
    assert_eq!(reply_header(&[0; 7]), None);
    assert_eq!(reply_header(&hex("00000003 0000002a")), Some((3, 42)));
}

// -- URLs ------------------------------------------------------------------

#[test]
fn parse_udp_url_takes_host_and_port() {
    let cases = [
        (
            "udp://tracker.example.org:6969",
            "tracker.example.org",
            6969,
        ),
        (
            "udp://tracker.example.org:6969/announce",
            "tracker.example.org",
            6969,
        ),
        ("UDP://127.0.0.1:80/announce?passkey=x", "127.0.0.1", 80),
        ("udp://[::1]:6969/announce", "::1", 6969),
        ("udp://[2001:db8::1]:1", "2001:db8::1", 1),
        ("udp://t-1_x:65535#frag", "t-1_x", 65535),
    ];
    for (url, host, port) in cases {
        assert_eq!(parse_udp_url(url), Some((host.to_owned(), port)), "{url}");
    }
}

#[test]
fn parse_udp_url_refuses_everything_else() {
    let cases = [
        "http://tracker.example.org:6969/announce",
        "udp://tracker.example.org/announce",
        "udp://tracker.example.org:/announce",
        "udp://tracker.example.org:0",
        "udp://tracker.example.org:65536",
        "udp://tracker.example.org:+80",
        "udp://tracker.example.org:0080x",
        "udp://:6969",
        "udp://user@host:6969",
        "udp://::1:6969",
        "udp://[::1]6969",
        "udp://[::1]",
        "udp://[not-v6]:6969",
        "udp://[fe80::1%eth0]:6969",
        "udp://ho st:6969",
        "udp:/host:6969",
        "",
    ];
    for url in cases {
        assert_eq!(parse_udp_url(url), None, "{url}");
    }
}
