//! Specs of the built-in tracker's HTTP side: announce and scrape heads
//! parsed (or refused with a reason and an HTTP status), routing by path,
//! the end of the head found, and the response bytes built.
//!
//! Layer 0, test-only: bytes in, values out.

use super::*;
use crate::tracker::announce::{announce_url, AnnounceRequest};

const HASH: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
const HASH_BYTES: [u8; 20] =
    *b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a";

fn invalid(name: &'static str, problem: &'static str) -> RequestError {
    RequestError::Invalid { name, problem }
}

fn head(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\n\r\n").into_bytes()
}

fn announce(query: &str) -> Result<TrackerRequest, RequestError> {
    parse_request(&head(&format!("/announce?{query}")))
}

fn good_query() -> String {
    format!(
        "info_hash={HASH}&peer_id=-PL0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3"
    )
}

fn good_params() -> AnnounceParams {
    AnnounceParams {
        info_hash: HASH_BYTES,
        peer_id: *b"-PL0001-abcdefghijkl",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Empty,
        numwant: DEFAULT_NUMWANT,
        compact: true,
        no_peer_id: false,
        key: None,
    }
}

#[test]
fn parses_a_good_announce_with_defaults() {
    assert_eq!(
        announce(&good_query()),
        Ok(TrackerRequest::Announce(good_params()))
    );
}

#[test]
fn parses_the_optional_announce_parameters() {
    let cases: [(&str, AnnounceParams); 10] = [
        (
            "&numwant=100000",
            AnnounceParams {
                numwant: MAX_NUMWANT,
                ..good_params()
            },
        ),
        (
            "&event=started",
            AnnounceParams {
                event: Event::Started,
                ..good_params()
            },
        ),
        (
            "&event=completed",
            AnnounceParams {
                event: Event::Completed,
                ..good_params()
            },
        ),
        (
            "&event=stopped",
            AnnounceParams {
                event: Event::Stopped,
                ..good_params()
            },
        ),
        ("&event=", good_params()),
        (
            "&numwant=7",
            AnnounceParams {
                numwant: 7,
                ..good_params()
            },
        ),
        (
            "&numwant=0",
            AnnounceParams {
                numwant: 0,
                ..good_params()
            },
        ),
        (
            "&compact=0&no_peer_id=1",
            AnnounceParams {
                compact: false,
                no_peer_id: true,
                ..good_params()
            },
        ),
        (
            "&key=8C0FFEE0&ip=6.6.6.6&supportcrypto=1",
            AnnounceParams {
                key: Some(b"8C0FFEE0".to_vec()),
                ..good_params()
            },
        ),
        ("&&trackerid=x+y", good_params()),
    ];
    for (extra, expected) in cases {
        let got = announce(&format!("{}{extra}", good_query()));
        assert_eq!(got, Ok(TrackerRequest::Announce(expected)), "{extra}");
    }
}

#[test]
fn percent_decoding_is_byte_exact() {
    let cases: [(&[u8], &[u8]); 6] = [
        (b"abc", b"abc"),
        (b"%41%4a%4A", b"AJJ"),
        (b"%00%ff%FF", b"\x00\xff\xff"),
        (b"a+b", b"a+b"),
        (b"%2B%20", b"+ "),
        (b"", b""),
    ];
    for (input, expected) in cases {
        assert_eq!(percent_decode(input).as_deref(), Ok(expected), "{input:?}");
    }
    for bad in [&b"%G1"[..], b"%1", b"%", b"a%zz", b"%1g"] {
        assert_eq!(percent_decode(bad), Err(RequestError::BadEscape), "{bad:?}");
    }
}

#[test]
fn refuses_hostile_announces_with_a_reason() {
    let q = good_query();
    let without = |name: &str| {
        q.split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&")
    };
    let cases: Vec<(String, RequestError)> = vec![
        (without("info_hash"), RequestError::Missing("info_hash")),
        (without("peer_id"), RequestError::Missing("peer_id")),
        (without("port"), RequestError::Missing("port")),
        (without("left"), RequestError::Missing("left")),
        (
            q.replace(HASH, "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx"),
            invalid("info_hash", "not 20 bytes after percent-decoding"),
        ),
        (
            q.replace(HASH, &format!("{HASH}00")),
            invalid("info_hash", "not 20 bytes after percent-decoding"),
        ),
        (q.replace("%9A%BC", "%G1%BC"), RequestError::BadEscape),
        (
            q.replace("port=6881", "port=65536"),
            invalid("port", "not in 1..=65535"),
        ),
        (
            q.replace("port=6881", "port=0"),
            invalid("port", "not in 1..=65535"),
        ),
        (
            q.replace("port=6881", "port=99999999999999999999999"),
            invalid("port", "too large"),
        ),
        (
            q.replace("left=3", "left=-3"),
            invalid("left", "not a non-negative decimal number"),
        ),
        (
            q.replace("left=3", "left=+3"),
            invalid("left", "not a non-negative decimal number"),
        ),
        (
            q.replace("uploaded=1", "uploaded=-1"),
            invalid("uploaded", "not a non-negative decimal number"),
        ),
        (
            q.replace("uploaded=1", "uploaded=%201"),
            invalid("uploaded", "not a non-negative decimal number"),
        ),
        (
            q.replace("left=3", "left="),
            invalid("left", "not a non-negative decimal number"),
        ),
        (
            format!("{q}&numwant=-1"),
            invalid("numwant", "not a non-negative decimal number"),
        ),
        (
            format!("{q}&event=bogus"),
            invalid("event", "not started, completed, stopped or empty"),
        ),
        (format!("{q}&compact=2"), invalid("compact", "not 0 or 1")),
        (
            format!("{q}&info_hash={HASH}"),
            RequestError::Duplicate("info_hash"),
        ),
        (format!("{q}&port=1"), RequestError::Duplicate("port")),
        (
            format!("{q}&key={}", "k".repeat(65)),
            invalid("key", "longer than 64 bytes"),
        ),
    ];
    for (query, expected) in cases {
        let got = announce(&query);
        assert_eq!(got, Err(expected.clone()), "{query}");
        assert_eq!(expected.http_status(), 200);
    }
}

#[test]
fn refuses_broken_requests_with_an_http_status() {
    let huge = {
        let mut h = b"GET /announce HTTP/1.1\r\nX: ".to_vec();
        h.extend(std::iter::repeat_n(b'a', 100 * 1024));
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    let cases: [(&[u8], RequestError, u16); 9] = [
        (
            &huge,
            RequestError::HeadTooLarge {
                limit_bytes: MAX_REQUEST_HEAD_BYTES,
            },
            431,
        ),
        (
            b"POST /announce HTTP/1.1\r\n\r\n",
            RequestError::MethodNotAllowed("POST".into()),
            405,
        ),
        (
            b"HEAD /announce HTTP/1.1\r\n\r\n",
            RequestError::MethodNotAllowed("HEAD".into()),
            405,
        ),
        (b"GET /announce\r\n\r\n", RequestError::BadRequestLine, 400),
        (
            b"GET /announce HTTP/2\r\n\r\n",
            RequestError::BadRequestLine,
            400,
        ),
        (
            b"GET  /announce HTTP/1.1\r\n\r\n",
            RequestError::BadRequestLine,
            400,
        ),
        (
            b"get /announce HTTP/1.1\r\n\r\n",
            RequestError::BadRequestLine,
            400,
        ),
        (b"\r\n\r\n", RequestError::BadRequestLine, 400),
        (
            b"GET /announce HTTP/1.1 extra\r\n\r\n",
            RequestError::BadRequestLine,
            400,
        ),
    ];
    for (input, expected, status) in cases {
        let got = parse_request(input);
        assert_eq!(
            got,
            Err(expected.clone()),
            "{:?}",
            String::from_utf8_lossy(&input[..input.len().min(40)])
        );
        assert_eq!(expected.http_status(), status);
    }
}

#[test]
fn routes_by_path() {
    let cases: [(&str, TrackerRequest); 5] = [
        ("/", TrackerRequest::Other("/".into())),
        ("/favicon.ico", TrackerRequest::Other("/favicon.ico".into())),
        (
            "/announce/x?info_hash=1",
            TrackerRequest::Other("/announce/x".into()),
        ),
        ("/scrape", TrackerRequest::Scrape(vec![])),
        ("/ANNOUNCE", TrackerRequest::Other("/ANNOUNCE".into())),
    ];
    for (target, expected) in cases {
        assert_eq!(parse_request(&head(target)), Ok(expected), "{target}");
    }
    let absolute = parse_request(&head(&format!(
        "http://t.lan:6969/announce?{}",
        good_query()
    )));
    assert_eq!(absolute, Ok(TrackerRequest::Announce(good_params())));
}

#[test]
fn parses_scrapes_of_several_hashes() {
    let other = "%01".repeat(20);
    let got = parse_request(&head(&format!(
        "/scrape?info_hash={HASH}&info_hash={other}&info_hash={HASH}"
    )));
    assert_eq!(got, Ok(TrackerRequest::Scrape(vec![HASH_BYTES, [1; 20]])));
    let short = parse_request(&head("/scrape?info_hash=abc"));
    assert!(matches!(
        short,
        Err(RequestError::Invalid {
            name: "info_hash",
            ..
        })
    ));
    let many: Vec<String> = (0..=MAX_SCRAPE_HASHES)
        .map(|i| format!("info_hash=%{:02X}{}", i, "a".repeat(19)))
        .collect();
    let many = format!("GET /scrape?{} HTTP/1.1\r\n\r\n", many.join("&"));
    assert!(many.len() < MAX_REQUEST_HEAD_BYTES);
    assert_eq!(
        parse_request(many.as_bytes()),
        Err(RequestError::TooManyHashes)
    );
}

#[test]
fn round_trips_pollens_own_announce_url() {
    let request = AnnounceRequest {
        info_hash: *b"\x00\x01 %&+/:=?#~-._Az09\xff",
        peer_id: *b"-PL0001-\x00\x7f\x80 +%&=abcd",
        port: 51413,
        uploaded: u64::MAX,
        downloaded: 0,
        left: 1 << 40,
        event: Event::Completed,
        numwant: Some(30),
        key: Some(0xBEEF),
        tracker_id: Some("t+1".into()),
        ipv6: Some("2001:db8::1".parse().unwrap()),
    };
    let url = announce_url("http://127.0.0.1:6969/announce", &request);
    let target = url.strip_prefix("http://127.0.0.1:6969").unwrap();
    let Ok(TrackerRequest::Announce(params)) = parse_request(&head(target)) else {
        panic!("{url}");
    };
    assert_eq!(
        params,
        AnnounceParams {
            info_hash: request.info_hash,
            peer_id: request.peer_id,
            port: 51413,
            uploaded: u64::MAX,
            downloaded: 0,
            left: 1 << 40,
            event: Event::Completed,
            numwant: 30,
            compact: true,
            no_peer_id: true,
            key: Some(b"0000BEEF".to_vec()),
        }
    );
}

#[test]
fn finds_the_end_of_the_head() {
    let cases: [(&[u8], Option<usize>); 8] = [
        (b"", None),
        (b"GET / HTTP/1.1\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
        (b"GET / HTTP/1.1\r\n\r\n", Some(18)),
        (b"GET / HTTP/1.1\r\n\r\nbody", Some(18)),
        (b"GET / HTTP/1.1\n\n", Some(16)),
        (b"GET / HTTP/1.1\r\nA: b\n\r\n", Some(23)),
        (b"\r\n\r\n", Some(4)),
    ];
    for (input, expected) in cases {
        assert_eq!(request_head_complete(input), expected, "{input:?}");
    }
    let full = head("/announce?x=1");
    for cut in 0..full.len() {
        assert_eq!(request_head_complete(&full[..cut]), None, "cut at {cut}");
    }
    assert_eq!(request_head_complete(&full), Some(full.len()));
    let endless = vec![b'a'; 100 * 1024];
    assert_eq!(request_head_complete(&endless), None);
    let mut late = vec![b'a'; MAX_REQUEST_HEAD_BYTES];
    late.extend_from_slice(b"\r\n\r\n");
    assert_eq!(request_head_complete(&late), None);
}

#[test]
fn builds_responses() {
    let response = http_response(200, b"d8:intervali60ee");
    assert_eq!(
        response,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\
          Connection: close\r\n\r\nd8:intervali60ee"
    );
    let not_found = http_response(404, b"");
    assert!(not_found.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    assert!(not_found.ends_with(b"Content-Length: 0\r\nConnection: close\r\n\r\n"));
    assert!(http_response(405, b"")
        .windows(12)
        .any(|w| w == b"Allow: GET\r\n"));
    assert_eq!(
        failure_body("no such torrent"),
        b"d14:failure reason15:no such torrente"
    );
    let reason = RequestError::Missing("info_hash").to_string();
    let parsed = crate::tracker::parse_response(&failure_body(&reason));
    assert_eq!(parsed, Err(crate::tracker::TrackerError::Failure(reason)));
}
