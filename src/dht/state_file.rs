//! The DHT state saved across restarts: our node id and the nodes of our
//! routing table, so a restarted pollen rejoins the DHT without a
//! bootstrap node and keeps its place in the id space.
//!
//! Layer 0: pure (the session writes the bytes atomically, like the resume
//! file). The file is a canonical bencoded dictionary: `id` (20 bytes),
//! `nodes` (compact node infos, 26 bytes each, at most
//! [`MAX_SAVED_NODES`]) and `version` ([`STATE_VERSION`]). It is read back
//! as untrusted input: a damaged file (not canonical bencode, over
//! [`MAX_STATE_FILE_LEN`], a key missing, an id not 20 bytes, `nodes` not a
//! whole number of entries, another version) is an error, and the session
//! then starts with a fresh id. Nodes past [`MAX_SAVED_NODES`] and nodes
//! with port 0 are skipped.

use std::fmt;

use super::id::NodeId;
use super::krpc::{self, CompactNode, COMPACT_NODE_LEN};
use crate::bencode::{self, Dict, Limits, Strictness, Value};

/// The `version` we write and accept: a file of another version (a later
/// pollen's) is treated as damaged rather than misread.
pub const STATE_VERSION: i64 = 1;

/// Largest state file read: [`MAX_SAVED_NODES`] nodes are 5,200 bytes, the
/// rest is a few dozen; anything much larger is not ours.
pub const MAX_STATE_FILE_LEN: usize = 8 * 1024;

/// Bencode limits for the state file: one flat dictionary of three keys
/// (a little room for keys a later version might add).
const STATE_LIMITS: Limits = Limits {
    max_depth: 4,
    max_tokens: 64,
    strictness: Strictness::Canonical,
};

/// Most nodes saved (and read back): a full table's good nodes are far
/// fewer than this on any real network; the file stays under 6 KiB.
pub const MAX_SAVED_NODES: usize = 200;

/// What is saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// Our node id.
    pub id: NodeId,
    /// Nodes to ping at the next start.
    pub nodes: Vec<CompactNode>,
}

/// Why a saved state file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateFileError {
    /// Not the dictionary the module doc describes; says what is wrong.
    Malformed(&'static str),
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Malformed(what) => write!(f, "damaged DHT state: {what}"),
        }
    }
}

impl std::error::Error for StateFileError {}

/// The bytes of `state`: at most [`MAX_SAVED_NODES`] of its nodes (the
/// first ones).
pub fn encode(state: &SavedState) -> Vec<u8> {
    let kept = state.nodes.get(..MAX_SAVED_NODES).unwrap_or(&state.nodes);
    let nodes = krpc::encode_nodes(kept);
    let entries: Vec<(&[u8], Value<'_>)> = vec![
        (b"id", Value::Bytes(&state.id.0)),
        (b"nodes", Value::Bytes(&nodes)),
        (b"version", Value::Int(STATE_VERSION)),
    ];
    bencode::encode(&Value::Dict(Dict::new(entries)))
}

/// Reads a saved state back; see the module doc for what is damage.
pub fn decode(bytes: &[u8]) -> Result<SavedState, StateFileError> {
    if bytes.len() > MAX_STATE_FILE_LEN {
        return Err(StateFileError::Malformed("file too large"));
    }
    let value = bencode::decode(bytes, STATE_LIMITS)
        .map_err(|_| StateFileError::Malformed("not canonical bencode"))?;
    let dict = value
        .as_dict()
        .ok_or(StateFileError::Malformed("not a dictionary"))?;
    if dict.get_int(b"version") != Some(STATE_VERSION) {
        return Err(StateFileError::Malformed("version"));
    }
    let id = dict
        .get_bytes(b"id")
        .and_then(NodeId::from_slice)
        .ok_or(StateFileError::Malformed("id"))?;
    let nodes = dict
        .get_bytes(b"nodes")
        .filter(|n| n.len() % COMPACT_NODE_LEN == 0)
        .ok_or(StateFileError::Malformed("nodes"))?;
    Ok(SavedState {
        id,
        nodes: krpc::decode_nodes(nodes, MAX_SAVED_NODES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn node(n: usize) -> CompactNode {
        let [_, _, hi, lo] = u32::try_from(n).unwrap().to_be_bytes();
        CompactNode {
            id: NodeId([lo; 20]),
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, hi, lo), 6881),
        }
    }

    fn state(nodes: usize) -> SavedState {
        SavedState {
            id: NodeId(*b"abcdefghij0123456789"),
            nodes: (1..=nodes).map(node).collect(),
        }
    }

    #[test]
    fn round_trips_with_no_some_and_the_most_nodes() {
        for count in [0, 1, 8, MAX_SAVED_NODES] {
            let saved = state(count);
            let bytes = encode(&saved);
            assert!(bytes.len() <= MAX_STATE_FILE_LEN);
            assert_eq!(decode(&bytes), Ok(saved));
        }
    }

    #[test]
    fn encodes_the_documented_layout() {
        let saved = state(1);
        let mut expected = b"d2:id20:abcdefghij01234567895:nodes26:".to_vec();
        expected.extend_from_slice(&node(1).to_compact());
        expected.extend_from_slice(b"7:versioni1ee");
        assert_eq!(encode(&saved), expected);
    }

    #[test]
    fn saves_at_most_max_saved_nodes() {
        let bytes = encode(&state(MAX_SAVED_NODES + 30));
        assert_eq!(decode(&bytes), Ok(state(MAX_SAVED_NODES)));
    }

    #[test]
    fn reads_at_most_max_saved_nodes_and_skips_port_zero() {
        let mut nodes: Vec<CompactNode> = (1..=MAX_SAVED_NODES + 5).map(node).collect();
        nodes[0].addr.set_port(0);
        let raw = krpc::encode_nodes(&nodes);
        let mut bytes = format!("d2:id20:abcdefghij01234567895:nodes{}:", raw.len()).into_bytes();
        bytes.extend_from_slice(&raw);
        bytes.extend_from_slice(b"7:versioni1ee");
        let read = decode(&bytes).unwrap();
        assert_eq!(read.nodes.len(), MAX_SAVED_NODES);
        assert_eq!(read.nodes[0], node(2));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&state(3));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
            let _ = decode(&bytes[cut + 1..]);
        }
    }

    #[test]
    fn flipping_any_byte_never_panics() {
        let bytes = encode(&state(2));
        for at in 0..bytes.len() {
            for flip in [0x01, 0x20, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                let _ = decode(&damaged);
            }
        }
    }

    #[test]
    fn damaged_files_are_errors() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "not canonical bencode"),
            (b"garbage", "not canonical bencode"),
            (b"le", "not a dictionary"),
            (
                b"d5:nodes0:2:id20:abcdefghij01234567897:versioni1ee",
                "not canonical bencode",
            ),
            (b"d5:nodes0:7:versioni1ee", "id"),
            (b"d2:id3:abc5:nodes0:7:versioni1ee", "id"),
            (b"d2:id20:abcdefghij01234567897:versioni1ee", "nodes"),
            (
                b"d2:id20:abcdefghij01234567895:nodes5:abcde7:versioni1ee",
                "nodes",
            ),
            (
                b"d2:id20:abcdefghij01234567895:nodes0:7:versioni2ee",
                "version",
            ),
        ];
        for (bytes, what) in cases {
            assert_eq!(
                decode(bytes),
                Err(StateFileError::Malformed(what)),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn an_oversized_file_or_huge_length_prefix_is_an_error() {
        let mut big = encode(&state(1));
        big.resize(MAX_STATE_FILE_LEN + 1, b'x');
        assert_eq!(
            decode(&big),
            Err(StateFileError::Malformed("file too large"))
        );
        let huge = b"d2:id99999999999999999999:abce";
        assert!(decode(huge).is_err());
    }
}
