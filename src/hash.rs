//! SHA-1 digests (the piece hash and info-hash of BEP 3) and their hex form.
//!
//! Layer 0: pure. The `sha1` crate picks the CPU's SHA extensions at run time
//! when present and a portable path otherwise.

use std::fmt;

use sha1::{Digest, Sha1};

/// A 20-byte SHA-1 digest: a piece hash or an info-hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha1Hash(pub [u8; 20]);

impl Sha1Hash {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha1Hash {
        Sha1Hash(Sha1::digest(bytes).into())
    }

    /// Lower-case hexadecimal, 40 characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(40);
        for byte in self.0 {
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
        out
    }

    /// Parses 40 hexadecimal characters (either case).
    pub fn from_hex(text: &str) -> Option<Sha1Hash> {
        let bytes = text.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = char::from(*pair.first()?).to_digit(16)?;
            let low = char::from(*pair.get(1)?).to_digit(16)?;
            *slot = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Sha1Hash(out))
    }
}

/// An incremental SHA-1, for hashing a piece that arrives in blocks or spans files.
#[derive(Clone, Default)]
pub struct Sha1Hasher(Sha1);

impl Sha1Hasher {
    /// A hasher with nothing fed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Sha1Hash {
        Sha1Hash(self.0.finalize().into())
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

impl fmt::Display for Sha1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Hash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_fips_test_vector() {
        assert_eq!(
            Sha1Hash::of(b"abc").to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut hasher = Sha1Hasher::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.finish(), Sha1Hash::of(b"abc"));
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let hash = Sha1Hash::of(b"pollen");
        assert_eq!(Sha1Hash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(
            Sha1Hash::from_hex(&hash.to_hex().to_uppercase()),
            Some(hash)
        );
        assert_eq!(Sha1Hash::from_hex("abc"), None);
        assert_eq!(Sha1Hash::from_hex(&"g".repeat(40)), None);
        assert_eq!(Sha1Hash::from_hex(&"é".repeat(20)), None);
    }
}
