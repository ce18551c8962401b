//! The extension protocol handshake (BEP 10): how two peers tell each other
//! which extensions they speak and how many requests they will queue.
//!
//! Layer 0: pure. pollen speaks no BEP 10 extension messages yet (its `m`
//! dictionary is empty); it uses the handshake for `reqq`, the number of
//! outstanding REQUESTs a peer accepts. Without it a peer cannot know our
//! queue limit, and requests past it would vanish.

use crate::bencode::{self, Dict, Limits, Value};

/// The extended message id of the handshake itself (BEP 10).
pub const HANDSHAKE_ID: u8 = 0;

/// What a peer said in its extension handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtHandshake {
    /// How many outstanding requests it queues (`reqq`).
    pub reqq: Option<u32>,
    /// Its client name and version (`v`), as it sent it.
    pub client: Option<String>,
}

/// Longest client name kept from a peer (for logs and the TUI).
const MAX_CLIENT_NAME_CHARS: usize = 64;

impl ExtHandshake {
    /// Reads a peer's extension handshake payload (a bencoded dictionary).
    /// Unknown keys are ignored; malformed ones are treated as absent.
    pub fn parse(payload: &[u8]) -> Result<ExtHandshake, bencode::DecodeError> {
        let value = bencode::decode(payload, Limits::MESSAGE)?;
        let Some(dict) = value.as_dict() else {
            return Ok(ExtHandshake::default());
        };
        Ok(ExtHandshake {
            reqq: dict
                .get_int(b"reqq")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0),
            client: dict.get_bytes(b"v").map(|v| {
                String::from_utf8_lossy(v)
                    .chars()
                    .take(MAX_CLIENT_NAME_CHARS)
                    .collect()
            }),
        })
    }
}

/// Our extension handshake payload: no extensions, our queue size, our name.
pub fn our_handshake(reqq: usize, client: &str) -> Vec<u8> {
    let reqq = i64::try_from(reqq).unwrap_or(i64::MAX);
    bencode::encode(&Value::Dict(Dict::new(vec![
        (b"m", Value::Dict(Dict::new(Vec::new()))),
        (b"reqq", Value::Int(reqq)),
        (b"v", Value::Bytes(client.as_bytes())),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_handshake_round_trips() {
        let payload = our_handshake(2000, "pollen 0.1.0");
        assert_eq!(payload, b"d1:mde4:reqqi2000e1:v12:pollen 0.1.0e");
        let parsed = ExtHandshake::parse(&payload).unwrap();
        assert_eq!(parsed.reqq, Some(2000));
        assert_eq!(parsed.client.as_deref(), Some("pollen 0.1.0"));
    }

    #[test]
    fn odd_values_are_ignored_not_fatal() {
        let parsed = ExtHandshake::parse(b"d4:reqqi-5e1:vi3ee").unwrap();
        assert_eq!(parsed, ExtHandshake::default());
        assert_eq!(ExtHandshake::parse(b"le").unwrap(), ExtHandshake::default());
        assert!(ExtHandshake::parse(b"d4:reqq").is_err());
        let huge = ExtHandshake::parse(b"d4:reqqi99999999999e1:md6:ut_pexi1eee").unwrap();
        assert_eq!(huge.reqq, None);
    }
}
