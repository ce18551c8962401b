//! Peer exchange (BEP 11, `ut_pex`): the message codec and the per-peer
//! state that makes each message carry only what changed.
//!
//! Layer 0: pure, no I/O, no clock. A `ut_pex` message is a bencoded
//! dictionary sent over the BEP 10 extended message id the receiver chose:
//!
//! - `added`: compact IPv4 peers, 6 bytes each (4 address bytes, then the
//!   port, big-endian), with `added.f` holding one flag byte per entry;
//! - `added6`/`added6.f`: the same for IPv6, 18 bytes per entry;
//! - `dropped`/`dropped6`: peers that left since the last message.
//!
//! A message comes from a peer we do not trust, so decoding never fails on
//! odd content: a list whose length is not a multiple of the entry size is
//! cut at the last whole entry, a key of the wrong type is treated as
//! absent, missing flags are 0, and at most [`MAX_PEX_PEERS`] added and
//! [`MAX_PEX_PEERS`] dropped peers are taken from one message
//! (Transmission's `MaxPexPeerCount`). Only a payload that is not a
//! bencoded dictionary is an error.
//!
//! [`PexDiff`] remembers what we last told one peer, so each message lists
//! the peers added and dropped since then (BEP 11: a message carries the
//! changes, not the whole set), at most [`MAX_PEX_PEERS`] of each; what
//! does not fit goes in the next message.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Dict, Limits, Value};

/// The name of the extension in the BEP 10 `m` dictionary.
pub const UT_PEX: &[u8] = b"ut_pex";

/// Most added (and, separately, most dropped) peers taken from or put into
/// one message: Transmission's `MaxPexPeerCount` and PROTOCOL.md's rule. A
/// peer cannot make one message fill our peer list, and ours stay small.
pub const MAX_PEX_PEERS: usize = 50;

/// Most peers a [`PexDiff`] remembers having told one peer about. It only
/// ever holds peers we listed, which come from our connected peers, so this
/// is never reached in practice; it bounds memory whatever the caller does.
pub const MAX_TOLD_PEERS: usize = 1_000;

/// Length of a compact IPv4 peer entry (BEP 23): address and port.
const V4_ENTRY_LEN: usize = 6;

/// Length of a compact IPv6 peer entry (BEP 7): address and port.
const V6_ENTRY_LEN: usize = 18;

/// The flag bits of `added.f` (BEP 11).
pub mod flags {
    /// The peer prefers encrypted connections (pollen never sets it: it
    /// speaks no encryption).
    pub const PREFERS_ENCRYPTION: u8 = 0x01;
    /// The peer is a seed or upload-only.
    pub const SEED: u8 = 0x02;
    /// The peer supports uTP.
    pub const UTP: u8 = 0x04;
    /// The peer supports `ut_holepunch`.
    pub const HOLEPUNCH: u8 = 0x08;
    /// The peer is reachable: the sender connected to it (an outgoing
    /// connection), so it accepts incoming connections.
    pub const REACHABLE: u8 = 0x10;
}

/// A peer listed in a message's `added`, with its flags ([`flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PexPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its `added.f` byte (0 when the sender gave none).
    pub flags: u8,
}

/// One `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers that joined since the last message (IPv4 and IPv6).
    pub added: Vec<PexPeer>,
    /// Peers that left since the last message.
    pub dropped: Vec<SocketAddr>,
}

/// Why a `ut_pex` payload could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PexError {
    /// The payload is not valid bencode (or breaks the message limits).
    Bencode(bencode::DecodeError),
    /// The payload is bencode but not a dictionary.
    NotADictionary,
}

impl fmt::Display for PexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PexError::Bencode(e) => write!(f, "ut_pex message is not bencode: {e}"),
            PexError::NotADictionary => write!(f, "ut_pex message is not a dictionary"),
        }
    }
}

impl std::error::Error for PexError {}

impl PexMessage {
    /// Reads a `ut_pex` payload; see the module doc for what is tolerated.
    pub fn decode(payload: &[u8]) -> Result<PexMessage, PexError> {
        let value = bencode::decode(payload, Limits::MESSAGE).map_err(PexError::Bencode)?;
        let dict = value.as_dict().ok_or(PexError::NotADictionary)?;
        let mut added = Vec::new();
        for (key, flag_key, entry_len) in [
            (&b"added"[..], &b"added.f"[..], V4_ENTRY_LEN),
            (b"added6", b"added6.f", V6_ENTRY_LEN),
        ] {
            let entries = dict.get_bytes(key).unwrap_or_default();
            let peer_flags = dict.get_bytes(flag_key).unwrap_or_default();
            let room = MAX_PEX_PEERS.saturating_sub(added.len());
            for (i, entry) in entries.chunks_exact(entry_len).take(room).enumerate() {
                if let Some(addr) = compact_addr(entry) {
                    let flags = peer_flags.get(i).copied().unwrap_or(0);
                    added.push(PexPeer { addr, flags });
                }
            }
        }
        let mut dropped = Vec::new();
        for (key, entry_len) in [(&b"dropped"[..], V4_ENTRY_LEN), (b"dropped6", V6_ENTRY_LEN)] {
            let entries = dict.get_bytes(key).unwrap_or_default();
            let room = MAX_PEX_PEERS.saturating_sub(dropped.len());
            dropped.extend(
                entries
                    .chunks_exact(entry_len)
                    .take(room)
                    .filter_map(compact_addr),
            );
        }
        Ok(PexMessage { added, dropped })
    }

    /// The bencoded message. IPv4 peers (and IPv4-mapped IPv6 ones) go in
    /// `added`/`dropped`, the others in `added6`/`dropped6`; every key is
    /// present, empty when there is nothing, as other clients send it.
    pub fn encode(&self) -> Vec<u8> {
        let (mut added4, mut flags4, mut added6, mut flags6) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for peer in &self.added {
            match push_compact(peer.addr, &mut added4, &mut added6) {
                Family::V4 => flags4.push(peer.flags),
                Family::V6 => flags6.push(peer.flags),
            }
        }
        let (mut dropped4, mut dropped6) = (Vec::new(), Vec::new());
        for &addr in &self.dropped {
            push_compact(addr, &mut dropped4, &mut dropped6);
        }
        let entries = vec![
            (&b"added"[..], Value::Bytes(&added4)),
            (b"added.f", Value::Bytes(&flags4)),
            (b"added6", Value::Bytes(&added6)),
            (b"added6.f", Value::Bytes(&flags6)),
            (b"dropped", Value::Bytes(&dropped4)),
            (b"dropped6", Value::Bytes(&dropped6)),
        ];
        bencode::encode(&Value::Dict(Dict::new(entries)))
    }

    /// Whether the message lists nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }
}

/// Which list an address went to.
enum Family {
    V4,
    V6,
}

/// Appends `addr` in compact form to `v4` or `v6`.
fn push_compact(addr: SocketAddr, v4: &mut Vec<u8>, v6: &mut Vec<u8>) -> Family {
    let port = addr.port().to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => {
            v4.extend_from_slice(&ip.octets());
            v4.extend_from_slice(&port);
            Family::V4
        }
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(ip) => {
                v4.extend_from_slice(&ip.octets());
                v4.extend_from_slice(&port);
                Family::V4
            }
            None => {
                v6.extend_from_slice(&ip.octets());
                v6.extend_from_slice(&port);
                Family::V6
            }
        },
    }
}

/// A compact entry (6 or 18 bytes) as an address; `None` for any other
/// length.
fn compact_addr(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = match entry.len() {
        V4_ENTRY_LEN => {
            let octets: [u8; 4] = entry.get(..4)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(octets)), entry.get(4..)?)
        }
        V6_ENTRY_LEN => {
            let octets: [u8; 16] = entry.get(..16)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(octets)), entry.get(16..)?)
        }
        _ => return None,
    };
    let port: [u8; 2] = port.try_into().ok()?;
    Some(SocketAddr::new(ip, u16::from_be_bytes(port)))
}

/// What we last told one peer: the peers listed to it and not dropped
/// since. [`PexDiff::next_message`] turns our current list into the
/// changes to send.
#[derive(Debug, Clone, Default)]
pub struct PexDiff {
    told: BTreeSet<SocketAddr>,
}

impl PexDiff {
    /// A peer told nothing yet.
    pub fn new() -> PexDiff {
        PexDiff::default()
    }

    /// The message that brings this peer from what it was told to
    /// `current` (the peers we would list now): the new ones in `added`,
    /// the gone ones in `dropped`, at most [`MAX_PEX_PEERS`] of each, in
    /// address order; the rest waits for the next message. Assumes the
    /// message is sent: what it lists counts as told.
    pub fn next_message(&mut self, current: &[PexPeer]) -> PexMessage {
        let now: BTreeSet<SocketAddr> = current.iter().map(|p| p.addr).collect();
        let dropped: Vec<SocketAddr> = self
            .told
            .difference(&now)
            .copied()
            .take(MAX_PEX_PEERS)
            .collect();
        for addr in &dropped {
            self.told.remove(addr);
        }
        let mut fresh: Vec<PexPeer> = current
            .iter()
            .filter(|p| !self.told.contains(&p.addr))
            .copied()
            .collect();
        fresh.sort();
        fresh.dedup_by_key(|p| p.addr);
        let room = MAX_PEX_PEERS.min(MAX_TOLD_PEERS.saturating_sub(self.told.len()));
        fresh.truncate(room);
        self.told.extend(fresh.iter().map(|p| p.addr));
        PexMessage {
            added: fresh,
            dropped,
        }
    }

    /// How many peers this peer was told about and not dropped since.
    pub fn told_len(&self) -> usize {
        self.told.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    fn peer(addr: SocketAddr, flags: u8) -> PexPeer {
        PexPeer { addr, flags }
    }

    #[test]
    fn a_message_round_trips_with_both_families_and_flags() {
        let six: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
        let message = PexMessage {
            added: vec![
                peer(v4(1, 6881), flags::REACHABLE | flags::SEED),
                peer(six, flags::REACHABLE),
                peer(v4(2, 7000), 0),
            ],
            dropped: vec![v4(3, 6881), "[2001:db8::9]:1".parse().unwrap()],
        };
        let decoded = PexMessage::decode(&message.encode()).unwrap();
        assert_eq!(
            decoded.added,
            vec![message.added[0], message.added[2], message.added[1]],
            "IPv4 first, then IPv6"
        );
        assert_eq!(decoded.dropped, message.dropped);
    }

    #[test]
    fn the_encoding_is_the_bep_11_dictionary() {
        let message = PexMessage {
            added: vec![peer(SocketAddr::from(([1, 2, 3, 4], 0x1ae1)), 0x12)],
            dropped: vec![SocketAddr::from(([5, 6, 7, 8], 0x0102))],
        };
        assert_eq!(
            message.encode(),
            b"d5:added6:\x01\x02\x03\x04\x1a\xe17:added.f1:\x126:added60:8:added6.f0:\
              7:dropped6:\x05\x06\x07\x08\x01\x028:dropped60:e"
                .to_vec()
        );
    }

    #[test]
    fn an_ipv4_mapped_address_goes_in_the_ipv4_list() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:6881".parse().unwrap();
        let message = PexMessage {
            added: vec![peer(mapped, 0)],
            dropped: vec![],
        };
        let decoded = PexMessage::decode(&message.encode()).unwrap();
        assert_eq!(decoded.added, vec![peer(v4(1, 6881), 0)]);
    }

    #[test]
    fn truncated_entries_are_cut_at_the_last_whole_one() {
        // 6 + 5 bytes in added, 18 + 3 in added6, 6 + 1 in dropped.
        let mut payload = b"d5:added11:".to_vec();
        payload.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a]);
        payload.extend_from_slice(b"6:added621:");
        payload.extend_from_slice(&[0; 15]);
        payload.extend_from_slice(&[1, 0x1a, 0xe1, 9, 9, 9]);
        payload.extend_from_slice(b"7:dropped7:");
        payload.extend_from_slice(&[10, 0, 0, 3, 0x1a, 0xe1, 7]);
        payload.push(b'e');
        let decoded = PexMessage::decode(&payload).unwrap();
        let loopback6: SocketAddr = "[::1]:6881".parse().unwrap();
        assert_eq!(
            decoded.added,
            vec![peer(v4(1, 6881), 0), peer(loopback6, 0)]
        );
        assert_eq!(decoded.dropped, vec![v4(3, 6881)]);
    }

    #[test]
    fn short_or_missing_flags_are_zero_and_extra_flags_are_ignored() {
        let mut payload = b"d5:added12:".to_vec();
        payload.extend_from_slice(&[10, 0, 0, 1, 0, 1, 10, 0, 0, 2, 0, 2]);
        payload.extend_from_slice(b"7:added.f1:\x10e");
        let decoded = PexMessage::decode(&payload).unwrap();
        assert_eq!(decoded.added[0].flags, flags::REACHABLE);
        assert_eq!(decoded.added[1].flags, 0);
        let mut payload = b"d5:added6:".to_vec();
        payload.extend_from_slice(&[10, 0, 0, 1, 0, 1]);
        payload.extend_from_slice(b"7:added.f5:\x02\x02\x02\x02\x02e");
        let decoded = PexMessage::decode(&payload).unwrap();
        assert_eq!(decoded.added, vec![peer(v4(1, 1), flags::SEED)]);
    }

    #[test]
    fn huge_lists_are_capped_at_max_pex_peers() {
        let many: Vec<PexPeer> = (0..200u16)
            .map(|i| peer(SocketAddr::from(([10, 1, 0, 1], 1000 + i)), 0))
            .collect();
        let six: Vec<PexPeer> = (0..20u16)
            .map(|i| {
                peer(
                    SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], i + 1)),
                    0,
                )
            })
            .collect();
        let message = PexMessage {
            added: many.iter().chain(&six).copied().collect(),
            dropped: many.iter().map(|p| p.addr).collect(),
        };
        let decoded = PexMessage::decode(&message.encode()).unwrap();
        assert_eq!(decoded.added.len(), MAX_PEX_PEERS);
        assert_eq!(decoded.added[..], many[..MAX_PEX_PEERS]);
        assert_eq!(decoded.dropped.len(), MAX_PEX_PEERS);
    }

    #[test]
    fn wrong_types_are_treated_as_absent() {
        for payload in [
            &b"de"[..],
            b"d5:addedi5e7:droppedle6:added6d1:xi1eee",
            b"d5:added0:7:added.fi3ee",
            b"d5:added3:abc7:dropped5:abcdee",
            b"d3:fooi1ee",
        ] {
            assert_eq!(
                PexMessage::decode(payload).unwrap(),
                PexMessage::default(),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn a_payload_that_is_not_a_dictionary_is_an_error() {
        assert_eq!(
            PexMessage::decode(b"le"),
            Err(PexError::NotADictionary),
            "a list"
        );
        for payload in [&b""[..], b"d5:added", b"garbage", b"de trailing"] {
            assert!(
                matches!(PexMessage::decode(payload), Err(PexError::Bencode(_))),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn decoding_never_panics_on_any_prefix_of_a_message() {
        let message = PexMessage {
            added: vec![peer(v4(1, 6881), 0x10), peer("[::1]:1".parse().unwrap(), 2)],
            dropped: vec![v4(2, 1)],
        };
        let bytes = message.encode();
        for cut in 0..bytes.len() {
            let _ = PexMessage::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn the_diff_sends_new_peers_once_and_drops_gone_ones() {
        let mut diff = PexDiff::new();
        let (a, b, c) = (peer(v4(1, 1), 0), peer(v4(2, 2), 0x10), peer(v4(3, 3), 0));
        let first = diff.next_message(&[b, a]);
        assert_eq!(first.added, vec![a, b]);
        assert!(first.dropped.is_empty());
        assert!(diff.next_message(&[a, b]).is_empty(), "nothing changed");
        let second = diff.next_message(&[a, c]);
        assert_eq!(second.added, vec![c]);
        assert_eq!(second.dropped, vec![b.addr]);
        let third = diff.next_message(&[a, b, c]);
        assert_eq!(
            third.added,
            vec![b],
            "a peer that comes back is added again"
        );
        assert_eq!(diff.told_len(), 3);
    }

    #[test]
    fn the_diff_caps_each_message_and_sends_the_rest_later() {
        let mut diff = PexDiff::new();
        let current: Vec<PexPeer> = (0..120u16).map(|i| peer(v4(1, 1000 + i), 0)).collect();
        let sizes: Vec<usize> = (0..4)
            .map(|_| diff.next_message(&current).added.len())
            .collect();
        assert_eq!(sizes, vec![50, 50, 20, 0]);
        let dropped: Vec<usize> = (0..4)
            .map(|_| diff.next_message(&[]).dropped.len())
            .collect();
        assert_eq!(dropped, vec![50, 50, 20, 0]);
        assert_eq!(diff.told_len(), 0);
    }
}
