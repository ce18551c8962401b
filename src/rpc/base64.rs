//! Base64 (RFC 4648, standard alphabet, `=` padding): `torrent-add`'s
//! `metainfo` in, `torrent-get`'s `pieces` out.
//!
//! Layer 0: pure. The decoder skips ASCII whitespace (clients wrap lines)
//! and refuses any other byte outside the alphabet. Padding is optional:
//! an unpadded text whose length (without whitespace) is 2 or 3 modulo 4
//! decodes as if padded (some encoders leave the `=` off); a length of 1
//! modulo 4 can hold no whole byte and is [`Base64Error::BadLength`]. When
//! `=` is present it must end the text and bring the length to a multiple
//! of 4; nothing but whitespace may follow it. Bits left over below the
//! last whole byte are ignored, not checked to be zero.

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

/// The standard alphabet (RFC 4648 section 4).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of an alphabet byte.
fn sextet(byte: u8) -> Option<u32> {
    let value = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Decodes `text`.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut held = 0usize; // sextets in `acc`
    let mut digits = 0usize; // alphabet bytes seen
    let mut pads = 0usize; // `=` seen
    for (at, &byte) in text.iter().enumerate() {
        if byte.is_ascii_whitespace() {
            continue;
        }
        if byte == b'=' {
            pads += 1;
            continue;
        }
        if pads > 0 {
            return Err(Base64Error::BadByte(at));
        }
        let value = sextet(byte).ok_or(Base64Error::BadByte(at))?;
        digits += 1;
        acc = (acc << 6) | value;
        held += 1;
        if held == 4 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            acc = 0;
            held = 0;
        }
    }
    let padded_ok = pads == 0 || ((digits + pads).is_multiple_of(4) && pads <= 2);
    if !padded_ok {
        return Err(Base64Error::BadLength);
    }
    match held {
        0 => {}
        2 => out.push((acc >> 4).to_be_bytes()[3]),
        3 => out.extend_from_slice(&(acc >> 2).to_be_bytes()[2..]),
        _ => return Err(Base64Error::BadLength),
    }
    Ok(out)
}

/// Encodes `bytes`, with `=` padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 section 10.
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn encode_matches_rfc_4648_vectors() {
        for (plain, coded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *coded, "{plain:?}");
        }
    }

    #[test]
    fn decode_matches_rfc_4648_vectors_padded_and_unpadded() {
        for (plain, coded) in VECTORS {
            assert_eq!(
                decode(coded.as_bytes()).unwrap(),
                plain.as_bytes(),
                "{coded:?}"
            );
            let bare = coded.trim_end_matches('=');
            assert_eq!(
                decode(bare.as_bytes()).unwrap(),
                plain.as_bytes(),
                "{bare:?}"
            );
        }
    }

    #[test]
    fn round_trip_keeps_every_byte_value_at_every_alignment() {
        let all: Vec<u8> = (0..=255u8).collect();
        for start in 0..3 {
            let bytes = &all[start..];
            assert_eq!(decode(encode(bytes).as_bytes()).unwrap(), bytes);
        }
        let coded = encode(&all);
        assert!(coded.contains('+') && coded.contains('/'));
    }

    #[test]
    fn decode_skips_whitespace_anywhere() {
        assert_eq!(decode(b" Zm9v\r\nYmFy\t").unwrap(), b"foobar");
        assert_eq!(decode(b"Zm9vYg=\n=\n").unwrap(), b"foob");
    }

    #[test]
    fn decode_refuses_bad_bytes_at_their_offset() {
        let cases: &[(&[u8], usize)] = &[
            (b"Zm9-", 3),
            (b"Zm_v", 2),
            (b"Zm9v\0", 4),
            (b"Zg==Zg==", 4),
            (b"Zg=a", 3),
            (b"\xffZg==", 0),
        ];
        for (text, at) in cases {
            assert_eq!(decode(text), Err(Base64Error::BadByte(*at)), "{text:?}");
        }
    }

    #[test]
    fn decode_refuses_bad_lengths() {
        let cases: &[&[u8]] = &[b"Z", b"Zm9vY", b"Z===", b"Zg=", b"Zm9v=", b"===="];
        for text in cases {
            assert_eq!(decode(text), Err(Base64Error::BadLength), "{text:?}");
        }
    }
}
