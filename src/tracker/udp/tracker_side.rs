//! The tracker's side of the UDP packets, for the specs of [`super::codec`]
//! and [`super::exchange`]: replies built and requests read back as a
//! tracker would, plus a sample announce request.
//!
//! Layer 0, test-only.

use std::net::SocketAddr;

use super::codec::{
    ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ACTION_SCRAPE, ANNOUNCE_REQUEST_LEN,
};
use crate::tracker::announce::{AnnounceRequest, Event};

/// Bytes from hex digits; whitespace is ignored.
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

pub(super) fn request() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: std::array::from_fn(|i| u8::try_from(i).unwrap()),
        peer_id: *b"-PL0001-abcdefghijkl",
        port: 6881,
        uploaded: 7,
        downloaded: 1000,
        left: 1 << 40,
        event: Event::Started,
        numwant: None,
        key: Some(0xCAFE_BABE),
        tracker_id: Some("ignored over UDP".into()),
        ipv6: Some(std::net::Ipv6Addr::LOCALHOST), // ignored over UDP too
    }
}

/// A reply as a tracker builds it: action, transaction id, body.
pub(super) fn reply(action: u32, transaction_id: u32, body: &[u8]) -> Vec<u8> {
    let mut datagram = action.to_be_bytes().to_vec();
    datagram.extend_from_slice(&transaction_id.to_be_bytes());
    datagram.extend_from_slice(body);
    datagram
}

pub(super) fn connect_reply(transaction_id: u32, connection_id: u64) -> Vec<u8> {
    reply(ACTION_CONNECT, transaction_id, &connection_id.to_be_bytes())
}

pub(super) fn announce_reply(
    transaction_id: u32,
    interval: i32,
    leechers: i32,
    seeders: i32,
    peers: &[u8],
) -> Vec<u8> {
    let mut body = interval.to_be_bytes().to_vec();
    body.extend_from_slice(&leechers.to_be_bytes());
    body.extend_from_slice(&seeders.to_be_bytes());
    body.extend_from_slice(peers);
    reply(ACTION_ANNOUNCE, transaction_id, &body)
}

/// A scrape reply from (seeders, completed, leechers) per torrent.
pub(super) fn scrape_reply(transaction_id: u32, entries: &[(i32, i32, i32)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (seeders, completed, leechers) in entries {
        body.extend_from_slice(&seeders.to_be_bytes());
        body.extend_from_slice(&completed.to_be_bytes());
        body.extend_from_slice(&leechers.to_be_bytes());
    }
    reply(ACTION_SCRAPE, transaction_id, &body)
}

pub(super) fn error_reply(transaction_id: u32, message: &[u8]) -> Vec<u8> {
    reply(ACTION_ERROR, transaction_id, message)
}

/// The connection id (or protocol id), action and transaction id that
/// open every request, read as a tracker would.
pub(super) fn request_header(packet: &[u8]) -> (u64, u32, u32) {
    (
        u64::from_be_bytes(packet[0..8].try_into().unwrap()),
        u32::from_be_bytes(packet[8..12].try_into().unwrap()),
        u32::from_be_bytes(packet[12..16].try_into().unwrap()),
    )
}

/// An announce request read back field by field at BEP 15's offsets.
pub(super) fn parse_announce_request(packet: &[u8]) -> (u64, u32, AnnounceRequest) {
    let u64_at = |at: usize| u64::from_be_bytes(packet[at..at + 8].try_into().unwrap());
    let u32_at = |at: usize| u32::from_be_bytes(packet[at..at + 4].try_into().unwrap());
    assert_eq!(packet.len(), ANNOUNCE_REQUEST_LEN);
    assert_eq!(u32_at(8), ACTION_ANNOUNCE);
    assert_eq!(u32_at(84), 0, "ip");
    let event = match u32_at(80) {
        0 => Event::Empty,
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        other => panic!("event {other}"),
    };
    let num_want = i32::from_be_bytes(packet[92..96].try_into().unwrap());
    let key = u32_at(88);
    let request = AnnounceRequest {
        info_hash: packet[16..36].try_into().unwrap(),
        peer_id: packet[36..56].try_into().unwrap(),
        downloaded: u64_at(56),
        left: u64_at(64),
        uploaded: u64_at(72),
        event,
        key: (key != 0).then_some(key),
        numwant: u32::try_from(num_want).ok(),
        port: u16::from_be_bytes(packet[96..98].try_into().unwrap()),
        tracker_id: None,
        ipv6: None,
    };
    (u64_at(0), u32_at(12), request)
}

pub(super) fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}
