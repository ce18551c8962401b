//! Base64 (RFC 4648, standard alphabet, `=` padding): `torrent-add`'s
//! `metainfo` in, `torrent-get`'s `pieces` out.
//!
//! Layer 0: pure. The decoder skips ASCII whitespace (clients wrap lines)
//! and refuses any other byte outside the alphabet.

/// Why a base64 text does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the alphabet, at this offset.
    BadByte(usize),
    /// The length (without whitespace) is not a valid base64 length.
    BadLength,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::BadByte(at) => write!(f, "not base64 at byte {at}"),
            Base64Error::BadLength => f.write_str("base64 text of a bad length"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Decodes `text`.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let _ = text;
    Err(Base64Error::BadLength)
}

/// Encodes `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let _ = bytes;
    String::new()
}
