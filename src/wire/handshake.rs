//! The handshake: the fixed 68 bytes each side sends first on a peer connection.
//!
//! Layer 0: pure (no I/O, no clock). Implements the handshake of BEP 3 and the
//! reserved bits of BEP 5 (DHT), BEP 6 (fast extension) and BEP 10 (extension
//! protocol).
//!
//! ```text
//! offset  0    1                20          28          48          68
//!         | 19 | "BitTorrent protocol" | reserved | info_hash | peer_id |
//! ```
//!
//! [`Handshake::decode`] rejects garbage as soon as the first bytes show it (a
//! wrong length byte on the first byte, a wrong protocol string on the first
//! wrong character) instead of waiting for 68 bytes. Whether the info-hash is
//! the torrent's is the session's check.

use super::WireError;

/// Length of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// The protocol string (`pstr`) of BEP 3, preceded on the wire by its length, 19.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The first byte of a handshake: the length of [`PROTOCOL`].
const PSTRLEN: u8 = 19;
/// Offset of the reserved bytes (after the length byte and the protocol string).
const RESERVED_AT: usize = 1 + PROTOCOL.len();
/// Offset of the info-hash.
const INFO_HASH_AT: usize = RESERVED_AT + 8;
/// Offset of the peer id.
const PEER_ID_AT: usize = INFO_HASH_AT + 20;

/// BEP 10 extension protocol: byte 5, bit 0x10 (the 20th bit from the right).
const EXTENSIONS_BIT: (usize, u8) = (5, 0x10);
/// BEP 6 fast extension: byte 7, bit 0x04.
const FAST_BIT: (usize, u8) = (7, 0x04);
/// BEP 5 DHT: byte 7, bit 0x01.
const DHT_BIT: (usize, u8) = (7, 0x01);

/// A decoded (or to-be-sent) handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Eight bytes of feature bits; see the `supports_*` methods.
    pub reserved: [u8; 8],
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// The sender's 20-byte peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// A handshake with no reserved bit set; add features with the `with_*` methods:
    /// `Handshake::new(info_hash, peer_id).with_fast()`.
    pub const fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// This handshake announcing the BEP 10 extension protocol.
    pub const fn with_extensions(self) -> Handshake {
        self.with_bit(EXTENSIONS_BIT)
    }

    /// This handshake announcing the BEP 6 fast extension.
    pub const fn with_fast(self) -> Handshake {
        self.with_bit(FAST_BIT)
    }

    /// This handshake announcing BEP 5 DHT (and so the PORT message).
    pub const fn with_dht(self) -> Handshake {
        self.with_bit(DHT_BIT)
    }

    /// Whether the sender speaks the BEP 10 extension protocol.
    pub const fn supports_extensions(&self) -> bool {
        self.has_bit(EXTENSIONS_BIT)
    }

    /// Whether the sender speaks the BEP 6 fast extension.
    pub const fn supports_fast(&self) -> bool {
        self.has_bit(FAST_BIT)
    }

    /// Whether the sender runs a BEP 5 DHT node.
    pub const fn supports_dht(&self) -> bool {
        self.has_bit(DHT_BIT)
    }

    /// The 68 bytes to send.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        // Constant offsets into a fixed-size array: these slices cannot fail.
        let mut out = [0; HANDSHAKE_LEN];
        out[0] = PSTRLEN;
        out[1..RESERVED_AT].copy_from_slice(PROTOCOL);
        out[RESERVED_AT..INFO_HASH_AT].copy_from_slice(&self.reserved);
        out[INFO_HASH_AT..PEER_ID_AT].copy_from_slice(&self.info_hash);
        out[PEER_ID_AT..].copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes a handshake from the start of `buf`.
    ///
    /// Returns `Ok(None)` while fewer than [`HANDSHAKE_LEN`] bytes are present
    /// and what is present looks right; `Ok(Some(_))` once all 68 are there
    /// (the caller then drains exactly [`HANDSHAKE_LEN`] bytes); an error as
    /// soon as a byte shows this is not a BitTorrent handshake.
    pub fn decode(buf: &[u8]) -> Result<Option<Handshake>, WireError> {
        if let Some(&pstrlen) = buf.first() {
            if pstrlen != PSTRLEN {
                return Err(WireError::BadProtocolLength(pstrlen));
            }
        }
        // Compare as much of the protocol string as has arrived.
        let pstr_seen = buf.get(1..buf.len().min(RESERVED_AT)).unwrap_or_default();
        if !PROTOCOL.starts_with(pstr_seen) {
            return Err(WireError::BadProtocolString);
        }
        let (Some(reserved), Some(info_hash), Some(peer_id)) = (
            array_at::<8>(buf, RESERVED_AT),
            array_at::<20>(buf, INFO_HASH_AT),
            array_at::<20>(buf, PEER_ID_AT),
        ) else {
            return Ok(None);
        };
        Ok(Some(Handshake {
            reserved,
            info_hash,
            peer_id,
        }))
    }

    const fn with_bit(mut self, (byte, mask): (usize, u8)) -> Handshake {
        self.reserved[byte] |= mask;
        self
    }

    const fn has_bit(&self, (byte, mask): (usize, u8)) -> bool {
        self.reserved[byte] & mask != 0
    }
}

/// The `N` bytes of `buf` starting at `at`, or `None` if they are not all there yet.
fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake::new([0xAA; 20], *b"-PL0001-abcdefghijkl")
    }

    #[test]
    fn encode_lays_out_the_bep3_fields() {
        let bytes = sample().with_dht().encode();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&bytes[28..48], &[0xAA; 20]);
        assert_eq!(&bytes[48..68], b"-PL0001-abcdefghijkl");
    }

    #[test]
    fn round_trips() {
        let ours = sample().with_extensions().with_fast();
        assert_eq!(Handshake::decode(&ours.encode()), Ok(Some(ours)));
    }

    #[test]
    fn reserved_bits_are_where_the_beps_put_them() {
        let plain = sample();
        assert!(!plain.supports_extensions() && !plain.supports_fast() && !plain.supports_dht());

        let ext = sample().with_extensions();
        assert_eq!(ext.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0]);
        assert!(ext.supports_extensions() && !ext.supports_fast() && !ext.supports_dht());

        let fast = sample().with_fast();
        assert_eq!(fast.reserved, [0, 0, 0, 0, 0, 0, 0, 0x04]);
        assert!(fast.supports_fast() && !fast.supports_dht());

        let dht = sample().with_dht();
        assert_eq!(dht.reserved, [0, 0, 0, 0, 0, 0, 0, 0x01]);
        assert!(dht.supports_dht() && !dht.supports_fast());
    }

    #[test]
    fn every_truncation_is_incomplete_not_an_error() {
        let bytes = sample().with_fast().encode();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn decode_ignores_bytes_after_the_handshake() {
        let mut bytes = sample().encode().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 1, 2]);
        assert_eq!(Handshake::decode(&bytes), Ok(Some(sample())));
    }

    #[test]
    fn decode_rejects_bad_pstrlen_on_the_first_byte() {
        assert_eq!(
            Handshake::decode(&[0]),
            Err(WireError::BadProtocolLength(0))
        );
        // An HTTP request sent to the peer port.
        assert_eq!(
            Handshake::decode(b"G"),
            Err(WireError::BadProtocolLength(b'G'))
        );
        assert_eq!(
            Handshake::decode(&[20]).unwrap_err().to_string(),
            "handshake protocol length is 20, expected 19"
        );
    }

    #[test]
    fn decode_rejects_bad_pstr_at_the_first_wrong_byte() {
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent"),
            Ok(None),
            "a correct prefix waits for more"
        );
        let err = Handshake::decode(b"\x13BitTorrenX").unwrap_err();
        assert_eq!(err, WireError::BadProtocolString);
        assert_eq!(
            err.to_string(),
            "handshake protocol string is not \"BitTorrent protocol\""
        );
        let mut full = sample().encode();
        full[19] = b'X';
        assert_eq!(Handshake::decode(&full), Err(WireError::BadProtocolString));
    }
}
