//! Specs of the HTTP announce: percent-encoding, the announce URL and its
//! parameters, and replies parsed strictly (compact and dictionary peers,
//! peers6, caps, failure and warning text, intervals clamped, every
//! truncation an error).
//!
//! Layer 0, test-only: bytes in, values out.

use super::*;

fn request() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: *b"\x00\x01 %&+/:=?#~-._Az09\xff",
        peer_id: *b"-PL0001-abcdefghijkl",
        port: 6881,
        uploaded: 1,
        downloaded: 22,
        left: 333,
        event: Event::Empty,
        numwant: None,
        key: None,
        tracker_id: None,
        ipv6: None,
    }
}

/// The inverse of `percent_encode`, for the round-trip test.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn percent_encoding_keeps_only_unreserved_bytes_literal() {
    for byte in 0..=u8::MAX {
        let encoded = percent_encode(&[byte]);
        let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
        if unreserved {
            assert_eq!(encoded, char::from(byte).to_string(), "byte {byte:#04x}");
        } else {
            assert_eq!(encoded, format!("%{byte:02X}"), "byte {byte:#04x}");
        }
    }
}

#[test]
fn percent_encoding_round_trips_all_256_bytes() {
    let all: Vec<u8> = (0..=u8::MAX).collect();
    let encoded = percent_encode(&all);
    assert_eq!(percent_decode(&encoded), all);
    let literal = encoded.len() - 3 * encoded.matches('%').count();
    assert_eq!(literal, 26 + 26 + 10 + 4);
}

#[test]
fn announce_url_lays_out_every_parameter() {
    let url = announce_url("http://t.example/announce", &request());
    assert_eq!(
        url,
        "http://t.example/announce?info_hash=%00%01%20%25%26%2B%2F%3A%3D%3F%23~-._Az09%FF\
         &peer_id=-PL0001-abcdefghijkl&port=6881&uploaded=1&downloaded=22&left=333\
         &compact=1&no_peer_id=1"
    );
}

#[test]
fn announce_url_adds_the_optional_parameters() {
    let req = AnnounceRequest {
        event: Event::Started,
        numwant: Some(80),
        key: Some(0xBEEF),
        tracker_id: Some("id 7/x".into()),
        ..request()
    };
    let url = announce_url("http://t/a", &req);
    assert!(
        url.ends_with("&no_peer_id=1&event=started&numwant=80&key=0000BEEF&trackerid=id%207%2Fx"),
        "{url}"
    );
}

#[test]
fn announce_url_sends_our_ipv6_address_percent_encoded_bep_7() {
    let ipv6 = Some("2001:db8::5".parse().unwrap());
    let url = announce_url("http://t/a", &AnnounceRequest { ipv6, ..request() });
    assert!(
        url.ends_with("&no_peer_id=1&ipv6=2001%3Adb8%3A%3A5"),
        "{url}"
    );
    let without = announce_url("http://t/a", &request());
    assert!(!without.contains("ipv6"), "{without}");
}

#[test]
fn announce_url_sends_event_only_when_not_empty() {
    let cases = [
        (Event::Empty, None),
        (Event::Started, Some("&event=started")),
        (Event::Completed, Some("&event=completed")),
        (Event::Stopped, Some("&event=stopped")),
    ];
    for (event, expected) in cases {
        let url = announce_url("http://t/a", &AnnounceRequest { event, ..request() });
        match expected {
            Some(param) => assert!(url.contains(param), "{url}"),
            None => assert!(!url.contains("event="), "{url}"),
        }
    }
}

#[test]
fn announce_url_keeps_the_query_and_drops_the_fragment() {
    let cases = [
        ("http://t/announce", "http://t/announce?info_hash="),
        ("http://t/announce?", "http://t/announce?info_hash="),
        (
            "http://t/announce?passkey=abc",
            "http://t/announce?passkey=abc&info_hash=",
        ),
        (
            "http://t/announce?passkey=a%2Fb&",
            "http://t/announce?passkey=a%2Fb&info_hash=",
        ),
        ("http://t/announce#top", "http://t/announce?info_hash="),
        (
            "http://t/announce?passkey=abc#x?y",
            "http://t/announce?passkey=abc&info_hash=",
        ),
        ("http://t/x#frag?a=b", "http://t/x?info_hash="),
    ];
    for (base, prefix) in cases {
        let url = announce_url(base, &request());
        assert!(url.starts_with(prefix), "{base} gave {url}");
        assert_eq!(url.matches('?').count(), 1, "{url}");
        assert!(!url.contains('#'), "{url}");
    }
}

#[test]
fn parses_a_compact_reply() {
    let body = b"d8:completei5e10:incompletei3e8:intervali1800e12:min intervali900e\
                 5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e";
    let reply = parse_response(body).unwrap();
    assert_eq!(
        reply,
        AnnounceResponse {
            interval: Duration::from_secs(1800),
            min_interval: Some(Duration::from_secs(900)),
            peers: vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ],
            complete: Some(5),
            incomplete: Some(3),
            warning: None,
            tracker_id: None,
        }
    );
}

#[test]
fn parses_a_dictionary_peer_list_skipping_what_is_not_an_ip_and_port() {
    let body = b"d8:intervali60e5:peersl\
        d2:ip9:127.0.0.14:porti6881e7:peer id20:-XX0001-abcdefghijkle\
        d2:ip3:::14:porti6882ee\
        d2:ip5:[::2]4:porti6883ee\
        d2:ip11:example.com4:porti6884ee\
        d2:ip7:1.2.3.44:porti0ee\
        d2:ip7:1.2.3.44:porti70000ee\
        d2:ip7:1.2.3.44:porti-1ee\
        d2:ip7:1.2.3.44:port4:6885e\
        d4:porti6886ee\
        i7e\
        ee";
    let reply = parse_response(body).unwrap();
    let expected: Vec<SocketAddr> = ["127.0.0.1:6881", "[::1]:6882", "[::2]:6883"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(reply.peers, expected);
}

#[test]
fn merges_compact_peers6_after_peers() {
    let mut v6 = vec![0u8; 15];
    v6.push(1); // ::1
    v6.extend_from_slice(&[0x1a, 0xe9]); // port 6889
    let mut body = b"d5:peers6:\x01\x02\x03\x04\x00\x016:peers618:".to_vec();
    body.extend_from_slice(&v6);
    body.push(b'e');
    let reply = parse_response(&body).unwrap();
    assert_eq!(
        reply.peers,
        vec![
            "1.2.3.4:1".parse::<SocketAddr>().unwrap(),
            "[::1]:6889".parse().unwrap()
        ]
    );
    assert_eq!(reply.interval, DEFAULT_INTERVAL);
}

#[test]
fn accepts_peers6_alone_and_empty_peer_lists() {
    for body in [&b"d6:peers60:e"[..], b"d5:peers0:e", b"d5:peerslee"] {
        assert_eq!(parse_response(body).unwrap().peers, vec![], "{body:?}");
    }
}

#[test]
fn drops_port_zero_peers() {
    let body = b"d5:peers12:\x01\x01\x01\x01\x00\x00\x02\x02\x02\x02\x00\x07e";
    let reply = parse_response(body).unwrap();
    assert_eq!(reply.peers, vec!["2.2.2.2:7".parse().unwrap()]);
}

#[test]
fn keeps_at_most_max_peers_per_reply() {
    let count = MAX_PEERS_PER_REPLY + 100;
    let mut compact = Vec::new();
    for i in 0..count {
        let i = u16::try_from(i).unwrap();
        compact.extend_from_slice(&[10, 0, 0, 1]);
        compact.extend_from_slice(&(i + 1).to_be_bytes());
    }
    let mut body = format!("d5:peers{}:", compact.len()).into_bytes();
    body.extend_from_slice(&compact);
    body.extend_from_slice(b"6:peers618:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x00\x01e");
    let peers = parse_response(&body).unwrap().peers;
    assert_eq!(peers.len(), MAX_PEERS_PER_REPLY);
    assert_eq!(peers.last(), Some(&"10.0.0.1:500".parse().unwrap()));
}

#[test]
fn failure_reason_is_an_error_with_the_trackers_words() {
    let cases: [(&[u8], &str); 3] = [
        (
            b"d14:failure reason20:unregistered torrente",
            "unregistered torrent",
        ),
        // A failure wins even when peers are present.
        (b"d14:failure reason3:no!5:peers0:e", "no!"),
        (b"d14:failure reasoni3ee", "(a non-text integer)"),
    ];
    for (body, reason) in cases {
        assert_eq!(
            parse_response(body),
            Err(TrackerError::Failure(reason.into()))
        );
    }
}

#[test]
fn long_tracker_text_is_truncated() {
    let long = "x".repeat(10_000);
    let body = format!("d14:failure reason{}:{long}e", long.len());
    let Err(TrackerError::Failure(reason)) = parse_response(body.as_bytes()) else {
        panic!("expected a failure");
    };
    assert_eq!(reason.chars().count(), MAX_TRACKER_TEXT_CHARS);
}

#[test]
fn keeps_the_warning_message_and_tracker_id() {
    let body = b"d5:peers0:15:warning message9:slow down10:tracker id3:T42e";
    let reply = parse_response(body).unwrap();
    assert_eq!(reply.warning.as_deref(), Some("slow down"));
    assert_eq!(reply.tracker_id.as_deref(), Some("T42"));
}

#[test]
fn ignores_an_oversized_tracker_id() {
    let id = "i".repeat(MAX_TRACKER_ID_LEN + 1);
    let body = format!("d5:peers0:10:tracker id{}:{id}e", id.len());
    assert_eq!(parse_response(body.as_bytes()).unwrap().tracker_id, None);
}

#[test]
fn rejects_malformed_replies() {
    let cases: [&[u8]; 12] = [
        b"",
        b"<html>not bencode</html>",
        b"d8:intervali1800e5:peers6:\x01\x02", // truncated
        b"d8:intervali1800e5:peers7:\x01\x02\x03\x04\x05\x06\x07e",
        b"d6:peers617:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0e",
        b"d8:intervali1800ee",                          // no peers
        b"d5:peersi7ee",                                // wrong type
        b"d5:peersdee",                                 // wrong type
        b"d6:peers6lee",                                // peers6 must be compact
        b"l5:peerse",                                   // not a dictionary
        b"d5:peers0:ee",                                // trailing data
        b"d8:intervali99999999999999999999e5:peers0:e", // integer overflow
    ];
    for body in cases {
        assert!(
            matches!(parse_response(body), Err(TrackerError::Malformed(_))),
            "{:?} gave {:?}",
            String::from_utf8_lossy(body),
            parse_response(body)
        );
    }
}

#[test]
fn intervals_are_clamped_to_a_sane_range() {
    let cases = [
        (Some(1800), Duration::from_secs(1800)),
        (None, DEFAULT_INTERVAL),
        (Some(5), MIN_INTERVAL),
        (Some(0), MIN_INTERVAL),
        (Some(-30), MIN_INTERVAL),
        (Some(i64::MIN), MIN_INTERVAL),
        (Some(86_400 * 365), MAX_INTERVAL),
        (Some(i64::MAX), MAX_INTERVAL),
    ];
    for (seconds, expected) in cases {
        let body = match seconds {
            Some(s) => format!("d8:intervali{s}e12:min intervali{s}e5:peers0:e"),
            None => "d5:peers0:e".to_owned(),
        };
        let reply = parse_response(body.as_bytes()).unwrap();
        assert_eq!(reply.interval, expected, "{body}");
        let expected_min = seconds.map(|_| expected);
        assert_eq!(reply.min_interval, expected_min, "{body}");
    }
}

#[test]
fn swarm_counts_outside_u32_are_dropped() {
    let cases = [
        ("i7e", Some(7)),
        ("i-1e", None),
        ("i4294967296e", None),
        ("1:7", None),
    ];
    for (value, expected) in cases {
        let body = format!("d8:complete{value}10:incomplete{value}5:peers0:e");
        let reply = parse_response(body.as_bytes()).unwrap();
        assert_eq!((reply.complete, reply.incomplete), (expected, expected));
    }
}

#[test]
fn every_truncation_of_a_reply_is_an_error_not_a_panic() {
    let body = b"d8:intervali1800e5:peersld2:ip3:::14:porti1eee6:peers618:\
                 \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x00\x01e";
    assert_eq!(parse_response(body).unwrap().peers.len(), 2);
    for cut in 0..body.len() {
        assert!(parse_response(&body[..cut]).is_err(), "cut at {cut}");
    }
}
