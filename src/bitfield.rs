//! The bitfield: one bit per piece, saying which pieces a peer (or we) have.
//!
//! Layer 0: pure (no I/O, no clock). Implements the BITFIELD payload of BEP 3.
//!
//! Bit order is the one BEP 3 fixes: bit 0 is the high bit of byte 0, so piece
//! `i` lives in byte `i / 8` under the mask `0x80 >> (i % 8)`. A bitfield for
//! `len` pieces is exactly `ceil(len / 8)` bytes.
//!
//! Invariant: the spare bits after the last piece are always zero. A peer's
//! bitfield with spare bits set is refused by [`Bitfield::from_bytes`], so
//! [`Bitfield::count_ones`] and the comparisons can work a byte at a time.
//!
//! Out-of-range indices never panic: [`Bitfield::has`] answers `false` and
//! [`Bitfield::set`] / [`Bitfield::clear`] do nothing. Checking a peer's HAVE
//! index against the torrent is the session's job, before it gets here.

use std::fmt;

/// Which of `len` pieces are present, one bit per piece, MSB first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    /// `ceil(len / 8)` bytes; the spare bits of the last byte are zero.
    bytes: Vec<u8>,
    /// Number of pieces.
    len: u32,
}

/// Why a received bitfield was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitfieldError {
    /// The byte count is not `ceil(piece_count / 8)`.
    WrongLength {
        /// Bytes received.
        actual_bytes: usize,
        /// Bytes a bitfield for `piece_count` pieces has.
        expected_bytes: u32,
        /// Pieces in the torrent.
        piece_count: u32,
    },
    /// A bit after the last piece is set; BEP 3 requires the spare bits to be zero.
    SpareBitsSet {
        /// Pieces in the torrent.
        piece_count: u32,
    },
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitfieldError::WrongLength {
                actual_bytes,
                expected_bytes,
                piece_count,
            } => write!(
                f,
                "bitfield is {actual_bytes} bytes, expected {expected_bytes} for {piece_count} pieces"
            ),
            BitfieldError::SpareBitsSet { piece_count } => {
                write!(f, "spare bits set in bitfield of {piece_count} pieces")
            }
        }
    }
}

impl std::error::Error for BitfieldError {}

impl Bitfield {
    /// A bitfield for `len` pieces with no piece present.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; byte_len(len)],
            len,
        }
    }

    /// A bitfield for `len` pieces with every piece present (a seeder's).
    pub fn full(len: u32) -> Bitfield {
        let mut bytes = vec![0xFF; byte_len(len)];
        if let Some(last) = bytes.last_mut() {
            *last &= !spare_mask(len);
        }
        Bitfield { bytes, len }
    }

    /// Takes a BITFIELD payload for a torrent of `len` pieces.
    ///
    /// The payload must be exactly `ceil(len / 8)` bytes with the spare bits zero.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Bitfield, BitfieldError> {
        let expected_bytes = len.div_ceil(8);
        if u32::try_from(bytes.len()) != Ok(expected_bytes) {
            return Err(BitfieldError::WrongLength {
                actual_bytes: bytes.len(),
                expected_bytes,
                piece_count: len,
            });
        }
        if let Some(last) = bytes.last() {
            if last & spare_mask(len) != 0 {
                return Err(BitfieldError::SpareBitsSet { piece_count: len });
            }
        }
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
        })
    }

    /// The bytes as sent in a BITFIELD message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces (bits), present or not.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the bitfield covers no pieces at all (not whether no bit is set:
    /// that is `count_ones() == 0`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `index` is present; `false` for an index out of range.
    pub fn has(&self, index: u32) -> bool {
        self.locate(index)
            .and_then(|(byte, mask)| self.bytes.get(byte).map(|b| b & mask != 0))
            .unwrap_or(false)
    }

    /// Marks piece `index` present.
    ///
    /// Returns `true` if the bit changed, `false` if it was already set or
    /// `index` is out of range (which is ignored).
    pub fn set(&mut self, index: u32) -> bool {
        self.update(index, true)
    }

    /// Marks piece `index` missing.
    ///
    /// Returns `true` if the bit changed, `false` if it was already clear or
    /// `index` is out of range (which is ignored).
    pub fn clear(&mut self, index: u32) -> bool {
        self.update(index, false)
    }

    /// Number of pieces present.
    pub fn count_ones(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is present.
    pub fn is_complete(&self) -> bool {
        self.count_ones() == self.len
    }

    /// The indices of the present pieces, in increasing order.
    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&index| self.has(index))
    }

    /// Whether `self` (a peer's bitfield) has a piece that `ours` lacks: the
    /// test for being interested in that peer.
    ///
    /// Pieces beyond `ours.len()` count as lacking.
    pub fn has_any_missing_in(&self, ours: &Bitfield) -> bool {
        self.bytes
            .iter()
            .enumerate()
            .any(|(i, theirs)| theirs & !ours.bytes.get(i).copied().unwrap_or(0) != 0)
    }

    /// The indices of the pieces `self` (a peer's bitfield) has and `ours`
    /// lacks, in increasing order.
    pub fn iter_missing_in<'a>(&'a self, ours: &'a Bitfield) -> impl Iterator<Item = u32> + 'a {
        self.iter_ones().filter(|&index| !ours.has(index))
    }

    /// The byte and the mask of bit `index`, or `None` when out of range.
    fn locate(&self, index: u32) -> Option<(usize, u8)> {
        if index >= self.len {
            return None;
        }
        let byte = usize::try_from(index / 8).ok()?;
        Some((byte, 0x80 >> (index % 8)))
    }

    /// Sets bit `index` to `present`; returns whether it changed.
    fn update(&mut self, index: u32, present: bool) -> bool {
        let Some((byte, mask)) = self.locate(index) else {
            return false;
        };
        let Some(b) = self.bytes.get_mut(byte) else {
            return false;
        };
        let was_present = *b & mask != 0;
        if present {
            *b |= mask;
        } else {
            *b &= !mask;
        }
        was_present != present
    }
}

/// Bytes needed for `len` pieces: `ceil(len / 8)`.
fn byte_len(len: u32) -> usize {
    // Cannot saturate: usize is at least 32 bits on every target mio supports.
    usize::try_from(len.div_ceil(8)).unwrap_or(usize::MAX)
}

/// The spare bits of the last byte for `len` pieces (`0` when `len` is a multiple of 8).
fn spare_mask(len: u32) -> u8 {
    match len % 8 {
        0 => 0,
        used => 0xFF >> used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_zero_is_the_high_bit_of_byte_zero() {
        assert!(Bitfield::from_bytes(&[0b1000_0000], 1).unwrap().has(0));
        let field = Bitfield::from_bytes(&[0b0100_0000, 0b0000_0001], 16).unwrap();
        assert_eq!(field.iter_ones().collect::<Vec<_>>(), vec![1, 15]);
    }

    #[test]
    fn new_is_all_zero_and_full_leaves_spare_bits_zero() {
        let empty = Bitfield::new(30);
        assert_eq!(empty.as_bytes(), &[0, 0, 0, 0]);
        assert_eq!(empty.count_ones(), 0);
        assert!(!empty.is_complete());

        let full = Bitfield::full(30);
        assert_eq!(full.as_bytes(), &[0xFF, 0xFF, 0xFF, 0b1111_1100]);
        assert_eq!(full.count_ones(), 30);
        assert!(full.is_complete());
        assert_eq!(Bitfield::full(16).as_bytes(), &[0xFF, 0xFF]);
    }

    #[test]
    fn zero_pieces_is_empty_and_complete() {
        let field = Bitfield::new(0);
        assert!(field.is_empty());
        assert!(field.is_complete());
        assert_eq!(field.as_bytes(), &[] as &[u8]);
        assert_eq!(Bitfield::from_bytes(&[], 0), Ok(field));
    }

    #[test]
    fn from_bytes_rejects_wrong_length() {
        let err = Bitfield::from_bytes(&[0, 0, 0], 30).unwrap_err();
        assert_eq!(
            err,
            BitfieldError::WrongLength {
                actual_bytes: 3,
                expected_bytes: 4,
                piece_count: 30
            }
        );
        assert_eq!(
            err.to_string(),
            "bitfield is 3 bytes, expected 4 for 30 pieces"
        );
        assert!(Bitfield::from_bytes(&[0; 5], 30).is_err());
    }

    #[test]
    fn from_bytes_rejects_spare_bits() {
        let err = Bitfield::from_bytes(&[0, 0, 0, 0b0000_0010], 30).unwrap_err();
        assert_eq!(err, BitfieldError::SpareBitsSet { piece_count: 30 });
        assert_eq!(err.to_string(), "spare bits set in bitfield of 30 pieces");
        assert!(Bitfield::from_bytes(&[0, 0, 0, 0b0000_0100], 30).is_ok());
        assert!(Bitfield::from_bytes(&[0b0100_0000], 1).is_err());
    }

    #[test]
    fn out_of_range_indices_do_not_panic() {
        let mut field = Bitfield::new(10);
        assert!(!field.has(10));
        assert!(!field.has(u32::MAX));
        assert!(!field.set(10));
        assert!(!field.set(u32::MAX));
        assert!(!field.clear(u32::MAX));
        assert_eq!(field.count_ones(), 0);
        // Setting a spare bit must not have leaked into the bytes.
        assert_eq!(field.as_bytes(), &[0, 0]);
    }

    #[test]
    fn set_and_clear_report_whether_the_bit_changed() {
        let mut field = Bitfield::new(10);
        assert!(field.set(9));
        assert!(!field.set(9));
        assert!(field.has(9));
        assert_eq!(field.as_bytes(), &[0, 0b0100_0000]);
        assert!(field.clear(9));
        assert!(!field.clear(9));
        assert!(!field.has(9));
    }

    #[test]
    fn missing_in_finds_pieces_the_peer_has_and_we_lack() {
        let mut ours = Bitfield::new(12);
        let mut theirs = Bitfield::new(12);
        assert!(!theirs.has_any_missing_in(&ours));

        theirs.set(3);
        theirs.set(11);
        ours.set(3);
        assert!(theirs.has_any_missing_in(&ours));
        assert_eq!(theirs.iter_missing_in(&ours).collect::<Vec<_>>(), vec![11]);

        ours.set(11);
        assert!(!theirs.has_any_missing_in(&ours));
        assert!(ours.has_any_missing_in(&Bitfield::new(12)));
        assert!(!Bitfield::new(12).has_any_missing_in(&ours));
    }
}
