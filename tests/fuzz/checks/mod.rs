//! What each fuzz target checks, shared by the fuzz targets
//! (tests/fuzz/fuzz_targets/) and the ordinary test suite
//! (tests/fuzz_regressions.rs replays every saved input through the same
//! function): one function per target, taking libFuzzer's bytes.
//!
//! Every function must never panic on any input: a panic is a crash that
//! libFuzzer saves. Beyond "no panic", each checks what must hold of what
//! the decoder accepts: a decoded value encodes back to something that
//! decodes to the same value; a byte stream decodes to the same messages
//! however it is split; what a parser accepts respects its caps. Those
//! checks panic (assert) when violated, so a broken property is a crash too.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

mod torrent_core;

pub use torrent_core::{drive_core, torrent_core};

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Component, Path};
use std::time::{Duration, Instant};

use pollen::bencode::{self, Limits, Strictness};
use pollen::metainfo::Metainfo;
use pollen::wire::{decode_frame, FrameLimits, Handshake, Message, HANDSHAKE_LEN};

/// Splits `data` into chunks of 1 to 64 bytes chosen by a small generator
/// seeded from `seed`: the same input always splits the same way.
pub fn chunks(data: &[u8], seed: u32) -> Vec<&[u8]> {
    let mut state = seed | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = usize::try_from(state % 64).unwrap_or(0) + 1;
        let (head, tail) = rest.split_at(len.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The first byte as a selector and the rest, or `None` for empty input.
fn select(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(&b, rest)| (b, rest))
}

/// A fixed instant for the pure modules that take `now`.
fn epoch() -> Instant {
    // One process-wide instant, so runs compare like with like.
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

// ----- bencode and .torrent files ---------------------------------------

/// Bencode (BEP 3): every decoder entry point under both limit sets; what
/// decodes re-encodes to a document that decodes and re-encodes to itself,
/// and a canonical document re-encodes byte for byte.
pub fn bencode(data: &[u8]) {
    for limits in [Limits::TORRENT, Limits::MESSAGE] {
        let _ = bencode::decode_prefix(data, limits);
        let _ = bencode::doc::parse(data, limits);
        let _ = bencode::doc::parse_prefix(data, limits);
        if let Ok(value) = bencode::decode(data, limits) {
            // Values compare with their spans, and a lenient decode keeps
            // keys in input order, so compare canonical encodings: encoding
            // is idempotent through a decode.
            let encoded = bencode::encode(&value);
            let again = bencode::decode(&encoded, limits).expect("an encoded value decodes");
            assert_eq!(
                bencode::encode(&again),
                encoded,
                "encode(decode(encode(v))) != encode(v)"
            );
        }
    }
    let canonical = Limits {
        strictness: Strictness::Canonical,
        ..Limits::MESSAGE
    };
    if let Ok(value) = bencode::decode(data, canonical) {
        assert_eq!(
            bencode::encode(&value),
            data,
            "a canonical document re-encodes byte for byte"
        );
    }
}

/// A `.torrent` file: parsed or refused; what is accepted has a consistent
/// layout and only relative, clean file paths (nothing written outside the
/// destination).
pub fn metainfo(data: &[u8]) {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    let layout = &meta.layout;
    let total: u64 = meta.files.iter().map(|f| f.len).sum();
    assert_eq!(layout.total_len(), total, "layout length = sum of files");
    assert_eq!(
        usize::try_from(layout.piece_count()).unwrap(),
        meta.piece_hashes.len(),
        "one hash per piece"
    );
    for file in &meta.files {
        assert_clean_relative(&file.path);
    }
    assert!(!meta.name.is_empty() || meta.files.is_empty() || meta.multi_file);
    let again = Metainfo::from_bytes(data).expect("parsing is deterministic");
    assert_eq!(again.info_hash, meta.info_hash);
}

/// A path that stays under the directory it is joined to.
fn assert_clean_relative(path: &Path) {
    assert!(path.is_relative(), "absolute path {path:?}");
    for component in path.components() {
        assert!(
            matches!(component, Component::Normal(_)),
            "path component {component:?} in {path:?}"
        );
    }
}

/// A magnet link (BEP 9): parsed or refused, never a panic; a parsed
/// link's trackers are tracker URLs.
pub fn magnet(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = pollen::magnet::is_magnet(&text);
    if let Ok(link) = pollen::magnet::parse(&text) {
        for tracker in &link.trackers {
            assert!(!tracker.is_empty());
        }
    }
}

// ----- the peer wire ------------------------------------------------------

/// The frame decoder (BEP 3, 6, 10) fed a byte stream split at arbitrary
/// points, as TCP delivers it: the messages and the error are the same as
/// when the whole stream is decoded at once; no frame longer than the
/// limits is ever waited for; each decoded message re-encodes to the bytes
/// it came from.
pub fn wire_stream(data: &[u8]) {
    let Some((selector, stream)) = select(data) else {
        return;
    };
    let limits = match selector % 3 {
        0 => FrameLimits::for_pieces(u32::from(selector)),
        1 => FrameLimits::for_pieces(70_000),
        _ => FrameLimits::before_metadata(),
    };
    let whole = decode_all(stream, &limits);
    let mut buffered: Vec<u8> = Vec::new();
    let mut split: Vec<Vec<u8>> = Vec::new();
    let mut split_error = None;
    'feed: for chunk in chunks(stream, u32::from(selector) * 7919 + 1) {
        buffered.extend_from_slice(chunk);
        loop {
            match decode_frame(&buffered, &limits) {
                Ok(Some((message, used))) => {
                    let mut bytes = Vec::new();
                    message.encode(&mut bytes);
                    split.push(bytes);
                    buffered.drain(..used);
                }
                Ok(None) => {
                    assert!(
                        buffered.len() <= 4 + limits.max_frame_len(),
                        "waiting for more than one largest frame"
                    );
                    break;
                }
                Err(e) => {
                    split_error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(whole.0, split, "split stream decodes differently");
    assert_eq!(whole.1, split_error, "split stream fails differently");
}

/// Decodes every whole frame of `stream`: each message re-encoded (and
/// checked to be the frame's own bytes), and the error that stopped it.
fn decode_all(
    stream: &[u8],
    limits: &FrameLimits,
) -> (Vec<Vec<u8>>, Option<pollen::wire::WireError>) {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        match decode_frame(rest, limits) {
            Ok(Some((message, used))) => {
                let mut bytes = Vec::new();
                message.encode(&mut bytes);
                let frame = rest.get(..used).expect("used is within the buffer");
                if !matches!(message, Message::Unknown { .. }) {
                    assert_eq!(bytes, frame, "re-encoded {} differs", message.name());
                }
                out.push(bytes);
                rest = rest.get(used..).expect("used is within the buffer");
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The 68-byte handshake (BEP 3), fed whole and cut short: a decoded
/// handshake re-encodes to the same bytes.
pub fn handshake(data: &[u8]) {
    for end in [data.len(), data.len().min(HANDSHAKE_LEN), data.len() / 2] {
        let Some(prefix) = data.get(..end) else {
            continue;
        };
        if let Ok(Some(handshake)) = Handshake::decode(prefix) {
            let again = handshake.encode();
            assert_eq!(Some(&again[..]), prefix.get(..HANDSHAKE_LEN));
            let _ = (handshake.supports_fast(), handshake.supports_extensions());
        }
    }
}

/// Extension payloads: the BEP 10 handshake, BEP 9 ut_metadata messages
/// and BEP 11 ut_pex messages, the first byte choosing which; or (3) a
/// BEP 9 metadata fetch driven by honest and lying peers.
pub fn extensions(data: &[u8]) {
    let Some((selector, payload)) = select(data) else {
        return;
    };
    match selector % 4 {
        0 => {
            let _ = pollen::wire::extension::ExtHandshake::parse(payload);
        }
        3 => metadata_fetch(payload),
        1 => {
            if let Ok(message) = pollen::metadata::MetadataMessage::decode(payload) {
                let _ = format!("{message:?}");
            }
        }
        _ => {
            if let Ok(message) = pollen::pex::PexMessage::decode(payload) {
                let _ = format!("{message:?}");
            }
        }
    }
}

/// A magnet's metadata fetch (BEP 9) from four peers, driven by the input:
/// peers announce sizes, requests are answered with the true bytes or with
/// bytes changed by the input, rejected, timed out or dropped. What is
/// verified must be the true info dictionary, and a peer that never sent a
/// wrong byte must never be named a liar or proven wrong.
fn metadata_fetch(data: &[u8]) {
    use pollen::hash::Sha1Hash;
    use pollen::metadata::{MetadataFetch, Outcome, METADATA_PIECE_LEN};
    use std::sync::OnceLock;
    static INFO: OnceLock<Vec<u8>> = OnceLock::new();
    // About 2.5 pieces of metadata: a torrent of 2,000 pieces.
    let info = INFO.get_or_init(|| {
        let mut info =
            b"d6:lengthi32768000e4:name4:fuzz12:piece lengthi16384e6:pieces40000:".to_vec();
        info.extend((0..40_000u32).map(|i| (i % 251) as u8));
        info.push(b'e');
        info
    });
    let total = u64::try_from(info.len()).unwrap();
    let mut fetch: MetadataFetch<u8> = MetadataFetch::new(Sha1Hash::of(info));
    let mut liars = [false; 4];
    let mut asked: Vec<(u8, u32)> = Vec::new();
    let mut now = epoch();
    let mut input = data.iter().copied();
    while let Some(op) = input.next() {
        let peer = (op >> 4) % 4;
        match op % 8 {
            0 | 1 => {
                let size = if op & 0x80 != 0 {
                    u64::from(input.next().unwrap_or(0)) * 300
                } else {
                    total
                };
                let _ = fetch.handle_size(peer, size);
            }
            2 => {
                while let Some(request) = fetch.poll_request(now) {
                    asked.push(request);
                }
            }
            3 | 4 => {
                let Some(index) = asked.iter().position(|(p, _)| *p == peer) else {
                    continue;
                };
                let (_, piece) = asked.remove(index);
                let start = usize::try_from(piece)
                    .unwrap()
                    .saturating_mul(METADATA_PIECE_LEN);
                let end = start.saturating_add(METADATA_PIECE_LEN).min(info.len());
                let mut bytes = info.get(start..end).unwrap_or_default().to_vec();
                if op % 8 == 4 {
                    // A lie: one byte changed (if it changes anything).
                    let at = usize::from(input.next().unwrap_or(0));
                    let len = bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at % len) {
                        *b ^= input.next().unwrap_or(1) | 1;
                        liars[usize::from(peer)] = true;
                    }
                }
                let size = u32::try_from(info.len()).unwrap();
                match fetch.handle_data(peer, piece, size, &bytes) {
                    Ok(Some(Outcome::Verified {
                        info: got,
                        liars: named,
                    })) => {
                        assert_eq!(&got, info, "verified metadata differs from the true one");
                        for p in named {
                            assert!(liars[usize::from(p)], "honest peer {p} named a liar");
                        }
                        return;
                    }
                    Ok(Some(Outcome::Mismatch { suppliers, proven })) => {
                        if proven {
                            for p in suppliers {
                                assert!(liars[usize::from(p)], "honest peer {p} proven wrong");
                            }
                        }
                    }
                    Ok(None) | Err(_) => {}
                }
            }
            5 => {
                if let Some(index) = asked.iter().position(|(p, _)| *p == peer) {
                    let (_, piece) = asked.remove(index);
                    let _ = fetch.handle_reject(peer, piece, now);
                }
            }
            6 => {
                now += Duration::from_secs(u64::from(input.next().unwrap_or(0) % 90));
                for (p, _) in fetch.handle_timeout(now) {
                    asked.retain(|(q, _)| *q != p);
                }
            }
            _ => {
                fetch.remove_peer(peer);
                asked.retain(|(q, _)| *q != peer);
            }
        }
    }
}

// ----- trackers -------------------------------------------------------------

/// Replies from trackers: HTTP announce and scrape bodies (BEP 3, 23, 7,
/// 48) and UDP connect, announce and scrape datagrams (BEP 15).
pub fn tracker_replies(data: &[u8]) {
    use pollen::tracker::udp::codec;
    let Some((selector, body)) = select(data) else {
        return;
    };
    let id = u32::from(selector);
    match selector % 5 {
        0 => {
            if let Ok(reply) = pollen::tracker::announce::parse_response(body) {
                let _ = format!("{reply:?}");
            }
        }
        1 => {
            let _ = pollen::tracker::scrape::parse_scrape_response(body, &[7; 20]);
        }
        2 => {
            let _ = codec::reply_header(body);
            let _ = codec::decode_connect_reply(body, id);
        }
        3 => {
            let _ = codec::decode_announce_reply(body, id, selector & 0x80 != 0);
        }
        _ => {
            let _ = codec::decode_scrape_reply(body, id, usize::from(selector % 7));
        }
    }
}

/// The built-in tracker's request parsers and its replies to them: an HTTP
/// request head or a UDP datagram, answered from one tracker state. The
/// tracker is the cargo feature `tracker-server` (cargo fuzz builds pollen
/// with its default features and sets `cfg(fuzzing)`).
#[cfg(any(fuzzing, feature = "tracker-server"))]
pub fn tracker_server(data: &[u8]) {
    use pollen::rng::Rng;
    use pollen::tracker::server::{
        http_request, respond_http, respond_udp, ConnectionIds, Limits as TrackerLimits,
        TrackerConfig, TrackerState,
    };
    let Some((selector, request)) = select(data) else {
        return;
    };
    let mut state = TrackerState::new(TrackerConfig {
        allow: None,
        rank_by_upload: selector & 1 != 0,
        limits: TrackerLimits::default(),
    });
    let mut rng = Rng::new(u64::from(selector));
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, selector));
    let now = epoch();
    if selector & 2 == 0 {
        let _ = http_request::request_head_complete(request);
        let _ = http_request::parse_request(request);
        let reply = respond_http(&mut state, source, request, now, &mut rng);
        assert!(reply.starts_with(b"HTTP/1."));
    } else {
        let ids = ConnectionIds::new(u64::from(selector) << 8, now);
        let _ = pollen::tracker::server::parse_udp_request(request);
        // A datagram twice: the second sees the state the first left.
        for _ in 0..2 {
            let _ = respond_udp(&mut state, &ids, source, request, now, &mut rng);
        }
    }
}

// ----- the DHT --------------------------------------------------------------

/// KRPC (BEP 5): a decoded message re-encodes to one that decodes the same;
/// the datagram is also fed to a DHT node, which must answer within its
/// caps and never panic.
pub fn krpc(data: &[u8]) {
    use pollen::dht::{krpc, Dht, NodeId};
    if let Ok(message) = krpc::decode(data) {
        let encoded = krpc::encode(&message);
        let again = krpc::decode(&encoded).expect("an encoded message decodes");
        assert_eq!(message, again, "decode(encode(m)) != m");
    }
    let _ = krpc::decode_nodes(data, 16);
    let now = epoch();
    let mut node = Dht::new(NodeId([3; 20]), 1, now);
    let from = "127.0.0.2:6881".parse().expect("an address");
    node.handle_datagram(from, data, now);
    node.handle_timeout(now + Duration::from_secs(1));
    while let Some(transmit) = node.poll_transmit() {
        assert!(transmit.bytes.len() <= 1500, "a datagram over the cap");
    }
    while node.poll_event().is_some() {}
}

// ----- files pollen reads back ----------------------------------------------

/// Files pollen wrote and reads back, which anyone with the disk may have
/// changed: resume states (against a real torrent's shape), the daemon's
/// torrent records and settings.json, the DHT's saved state.
pub fn state_files(data: &[u8]) {
    let Some((selector, bytes)) = select(data) else {
        return;
    };
    match selector % 4 {
        0 => {
            let meta = fixture_meta();
            if let Ok(state) = pollen::resume::decode(
                bytes,
                &meta.info_hash,
                meta.layout.piece_count(),
                meta.files.len(),
            ) {
                let again = pollen::resume::encode(&state);
                let round = pollen::resume::decode(
                    &again,
                    &meta.info_hash,
                    meta.layout.piece_count(),
                    meta.files.len(),
                )
                .expect("an encoded resume state decodes");
                assert_eq!(state, round);
            }
        }
        1 => {
            if let Ok(record) = pollen::daemon::state::decode_record(bytes) {
                let again = pollen::daemon::state::encode_record(&record);
                let round = pollen::daemon::state::decode_record(&again)
                    .expect("an encoded record decodes");
                assert_eq!(record, round);
            }
        }
        2 => {
            let _ = pollen::daemon::Settings::from_json(bytes);
        }
        _ => {
            let _ = pollen::dht::state_file::decode(bytes);
        }
    }
}

/// The metainfo resume states are checked against: fixtures/multi.torrent.
fn fixture_meta() -> &'static Metainfo {
    use std::sync::OnceLock;
    static META: OnceLock<Metainfo> = OnceLock::new();
    META.get_or_init(|| {
        let bytes = include_bytes!("../../../fixtures/multi.torrent");
        Metainfo::from_bytes(bytes).expect("the fixture parses")
    })
}

// ----- the daemon's RPC and web seeds ---------------------------------------

/// What reaches `pollen daemon`'s RPC port: HTTP requests (fed whole and
/// split, as for the peer wire), their JSON bodies as Transmission RPC
/// calls, Basic credentials' base64 and web UI paths.
pub fn rpc_request(data: &[u8]) {
    use pollen::rpc::{base64, call, http, web};
    let Some((selector, bytes)) = select(data) else {
        return;
    };
    match selector % 4 {
        0 | 1 => {
            // The same request split: the parse result is the same once all is in.
            let whole = http::parse_request(bytes);
            let mut buffered = Vec::new();
            let mut last = None;
            for chunk in chunks(bytes, u32::from(selector) + 3) {
                buffered.extend_from_slice(chunk);
                last = Some(http::parse_request(&buffered));
                if matches!(last, Some(Ok(http::Parse::Done(..))) | Some(Err(_))) {
                    break;
                }
            }
            if let (Ok(http::Parse::Done(request, _)), Some(Ok(http::Parse::Done(again, _)))) =
                (&whole, &last)
            {
                assert_eq!(request.body, again.body);
                assert_eq!(request.path, again.path);
                let _ = call::parse_call(&request.body);
            }
        }
        2 => {
            let _ = call::parse_call(bytes);
        }
        _ => {
            if let Ok(decoded) = base64::decode(bytes) {
                assert_eq!(
                    base64::decode(base64::encode(&decoded).as_bytes()),
                    Ok(decoded)
                );
            }
            let path = String::from_utf8_lossy(bytes);
            let root = Path::new("/srv/web-ui");
            if let Some(file) = web::web_ui_file(root, &path) {
                assert!(file.starts_with(root), "{file:?} outside the web root");
            }
        }
    }
}

/// A web seed's HTTP response (BEP 19), fed in pieces: never more body
/// bytes than the range asked for.
pub fn web_seed_reply(data: &[u8]) {
    use pollen::web_seed::{RangeAsk, ResponseParser};
    let Some((selector, bytes)) = select(data) else {
        return;
    };
    let first = u64::from(selector) * 100;
    let ask = RangeAsk {
        first,
        last: first + 999,
        file_len: 100_000,
    };
    let mut parser = ResponseParser::new(ask);
    let mut body = Vec::new();
    for chunk in chunks(bytes, u32::from(selector) + 11) {
        match parser.feed(chunk, &mut body) {
            Ok(_) => {}
            Err(_) => break,
        }
        assert!(
            u64::try_from(body.len()).unwrap() <= ask.byte_len(),
            "more body than asked for"
        );
    }
}
