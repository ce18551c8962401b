//! Client names from peer ids: `-TR3000-...` is "Transmission 3.00".
//!
//! Layer 0: pure. The peer id (BEP 3: 20 bytes the client picks) starts, by
//! convention (BEP 20), with a client code and version in one of a few
//! styles:
//!
//! | style | example | decoded |
//! | --- | --- | --- |
//! | Azureus | `-qB4650-` | qBittorrent 4.6.5 |
//! | Azureus, Transmission's versions | `-TR3000-`, `-TR4060-` | Transmission 3.00, 4.0.6 |
//! | Azureus, µTorrent's versions | `-UT355S-` | uTorrent 3.5.5 |
//! | aria2 | `A2-1-36-0-` | aria2 1.36.0 |
//! | Mainline | `M7-4-2--` | Mainline 7.4.2 |
//! | Shadow | `T03I-----` | BitTornado 0.3.18 |
//! | BitComet | `exbc` + 2 version bytes | BitComet 0.56 |
//!
//! Azureus version characters are `0`-`9`, then `A`-`Z` for 10-35, then
//! `a`-`z`, `.`, `-` (the alphabet rqbit and Shadow use). Anything else is
//! `unknown (...)` with its first eight bytes, non-printable ones escaped as
//! `\xNN`. The output is always ASCII, for serial consoles.

/// The client name and version a peer id announces, e.g.
/// `client_name(b"-TR3000-abcdefghijkl")` is `"Transmission 3.00"`.
pub fn client_name(peer_id: &[u8; 20]) -> String {
    azureus(peer_id)
        .or_else(|| aria2(peer_id))
        .or_else(|| mainline(peer_id))
        .or_else(|| shadow(peer_id))
        .or_else(|| bitcomet(peer_id))
        .unwrap_or_else(|| unknown(peer_id))
}

/// How a client writes the four version characters of an Azureus id.
#[derive(Debug, Clone, Copy)]
enum Version {
    /// `a.b.c.d`, the last part left out when zero (most clients).
    Dotted,
    /// Transmission: `M.mm` up to 3.x, `M.m.p` from 4.0, then a release mark.
    Transmission,
    /// µTorrent: `a.b.c` then a build letter.
    ThreeAndBuild,
}

/// Azureus-style client codes (`-XX` at the start of the id).
const AZUREUS: &[(&[u8; 2], &str, Version)] = &[
    (b"7T", "aTorrent", Version::Dotted),
    (b"AG", "Ares", Version::Dotted),
    (b"AZ", "Vuze", Version::Dotted),
    (b"BC", "BitComet", Version::Dotted),
    (b"BI", "BiglyBT", Version::Dotted),
    (b"BT", "BitTorrent", Version::ThreeAndBuild),
    (b"DE", "Deluge", Version::Dotted),
    (b"FD", "Free Download Manager", Version::Dotted),
    (b"FW", "FrostWire", Version::Dotted),
    (b"HL", "Halite", Version::Dotted),
    (b"KT", "KTorrent", Version::Dotted),
    (b"LT", "libtorrent", Version::Dotted),
    (b"LW", "LimeWire", Version::Dotted),
    (b"MG", "MediaGet", Version::Dotted),
    (b"ML", "MLDonkey", Version::Dotted),
    (b"PI", "PicoTorrent", Version::Dotted),
    (b"PO", "pollen", Version::Dotted),
    // pollen's own pseudo-peer id for a BEP 19 web seed (session/web_seed.rs).
    (b"PW", "web seed (pollen)", Version::Dotted),
    (b"SD", "Thunder", Version::Dotted),
    (b"SZ", "Shareaza", Version::Dotted),
    (b"TL", "Tribler", Version::Dotted),
    (b"TR", "Transmission", Version::Transmission),
    (b"TT", "TuoTu", Version::Dotted),
    (b"UE", "uTorrent Embedded", Version::ThreeAndBuild),
    (b"UM", "uTorrent Mac", Version::ThreeAndBuild),
    (b"UT", "uTorrent", Version::ThreeAndBuild),
    (b"UW", "uTorrent Web", Version::ThreeAndBuild),
    (b"WD", "WebTorrent Desktop", Version::Dotted),
    (b"WW", "WebTorrent", Version::Dotted),
    (b"XL", "Xunlei", Version::Dotted),
    (b"lt", "libTorrent (rakshasa)", Version::Dotted),
    (b"qB", "qBittorrent", Version::Dotted),
    (b"rQ", "rqbit", Version::Dotted),
];

/// Shadow-style client letters (first byte of the id).
const SHADOW: &[(u8, &str)] = &[
    (b'A', "ABC"),
    (b'O', "Osprey Permaseed"),
    (b'Q', "BTQueue"),
    (b'R', "Tribler"),
    (b'S', "Shadow"),
    (b'T', "BitTornado"),
    (b'U', "UPnP NAT BitTorrent"),
];

/// `-XXabcd-`: a known two-letter code and four version characters.
fn azureus(id: &[u8; 20]) -> Option<String> {
    let [b'-', c1, c2, v1, v2, v3, v4, b'-', ..] = *id else {
        return None;
    };
    let (_, name, style) = AZUREUS.iter().find(|(code, _, _)| **code == [c1, c2])?;
    let digits = [v1, v2, v3, v4].map(digit);
    let [Some(a), Some(b), Some(c), Some(d)] = digits else {
        return None;
    };
    let version = match style {
        Version::Dotted if d == 0 => format!("{a}.{b}.{c}"),
        Version::Dotted => format!("{a}.{b}.{c}.{d}"),
        Version::ThreeAndBuild if v4 == b'B' => format!("{a}.{b}.{c} beta"),
        Version::ThreeAndBuild => format!("{a}.{b}.{c}"),
        Version::Transmission => transmission([a, b, c], v4),
    };
    Some(format!("{name} {version}"))
}

/// Transmission's version: `0.72` (0.x: `00` then the minor), `3.00` (1.x
/// to 3.x: major, two-digit minor) or `4.0.6` (from 4.0), with `+` for a
/// development build, ` beta` for a beta.
fn transmission([major, b, c]: [u32; 3], mark: u8) -> String {
    if major == 0 && b == 0 {
        return format!("0.{c}{}", char::from(mark));
    }
    let number = if major <= 3 {
        format!("{major}.{b}{c}")
    } else {
        format!("{major}.{b}.{c}")
    };
    let suffix = match mark {
        b'Z' | b'X' => "+",
        b'B' => " beta",
        _ => "",
    };
    format!("{number}{suffix}")
}

/// `A2-1-36-0-`: aria2's dash-separated decimal version.
fn aria2(id: &[u8; 20]) -> Option<String> {
    let rest = id.strip_prefix(b"A2-")?;
    let (parts, _) = dashed_numbers(rest, 3)?;
    Some(format!("aria2 {}", parts.join(".")))
}

/// `M7-4-2--` or `M4-20-8-`: BitTorrent mainline's style (also `Q` for Queen Bee).
fn mainline(id: &[u8; 20]) -> Option<String> {
    let name = match id.first()? {
        b'M' => "Mainline",
        b'Q' => "Queen Bee",
        _ => return None,
    };
    let (parts, used) = dashed_numbers(id.get(1..)?, 3)?;
    (used < 8).then(|| format!("{name} {}", parts.join(".")))
}

/// Reads `count` decimal numbers (1 to 3 digits), each followed by `-`;
/// returns them and the bytes consumed.
fn dashed_numbers(bytes: &[u8], count: usize) -> Option<(Vec<String>, usize)> {
    let mut parts = Vec::new();
    let mut at = 0;
    for _ in 0..count {
        let digits = bytes
            .get(at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=3).contains(&digits) || bytes.get(at + digits) != Some(&b'-') {
            return None;
        }
        let number = bytes.get(at..at + digits)?;
        parts.push(String::from_utf8_lossy(number).into_owned());
        at += digits + 1;
    }
    Some((parts, at))
}

/// `T03I-----`: a client letter, up to five version characters padded with
/// `-`, then `---`.
fn shadow(id: &[u8; 20]) -> Option<String> {
    let (_, name) = SHADOW
        .iter()
        .find(|(letter, _)| id.first() == Some(letter))?;
    if id.get(6..9) != Some(b"---") {
        return None;
    }
    let field = id.get(1..6)?;
    let length = field.iter().take_while(|&&b| b != b'-').count();
    let (version, padding) = field.split_at(length);
    if version.is_empty() || padding.iter().any(|&b| b != b'-') {
        return None;
    }
    let parts: Option<Vec<String>> = version
        .iter()
        .map(|&b| digit(b).map(|d| d.to_string()))
        .collect();
    Some(format!("{name} {}", parts?.join(".")))
}

/// `exbc` then two version bytes: old BitComet.
fn bitcomet(id: &[u8; 20]) -> Option<String> {
    let [b'e', b'x', b'b', b'c', major, minor, ..] = *id else {
        return None;
    };
    Some(format!("BitComet {major}.{minor:02}"))
}

/// `unknown (...)` with the first eight bytes, non-printable ones as `\xNN`.
fn unknown(id: &[u8; 20]) -> String {
    let prefix: String = id
        .iter()
        .take(8)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    format!("unknown ({prefix})")
}

/// A version character's value: `0`-`9`, `A`-`Z` (10-35), `a`-`z`
/// (36-61), `.` (62), `-` (63).
fn digit(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 36),
        b'.' => Some(62),
        b'-' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte id: `prefix` then filler.
    fn id(prefix: &[u8]) -> [u8; 20] {
        let mut out = *b"xxxxxxxxxxxxxxxxxxxx";
        out[..prefix.len()].copy_from_slice(prefix);
        out
    }

    #[test]
    fn client_name_table() {
        let cases: &[(&[u8], &str)] = &[
            (b"-qB4650-", "qBittorrent 4.6.5"),
            (b"-qB4651-", "qBittorrent 4.6.5.1"),
            (b"-TR3000-", "Transmission 3.00"),
            (b"-TR2940-", "Transmission 2.94"),
            (b"-TR0072-", "Transmission 0.72"),
            (b"-TR4060-", "Transmission 4.0.6"),
            (b"-TR410Z-", "Transmission 4.1.0+"),
            (b"-TR400B-", "Transmission 4.0.0 beta"),
            (b"-lt0D80-", "libTorrent (rakshasa) 0.13.8"),
            (b"-LT2080-", "libtorrent 2.0.8"),
            (b"-LT1C20-", "libtorrent 1.12.2"),
            (b"-PO0100-", "pollen 0.1.0"),
            (b"-PW0100-", "web seed (pollen) 0.1.0"),
            (b"-UT355S-", "uTorrent 3.5.5"),
            (b"-UT220B-", "uTorrent 2.2.0 beta"),
            (b"-DE13F0-", "Deluge 1.3.15"),
            (b"-DE2110-", "Deluge 2.1.1"),
            (b"-AZ5770-", "Vuze 5.7.7"),
            (b"-BI2120-", "BiglyBT 2.1.2"),
            (b"-rQ8000-", "rqbit 8.0.0"),
            (b"-WW0105-", "WebTorrent 0.1.0.5"),
            (b"A2-1-36-0-", "aria2 1.36.0"),
            (b"A2-1-9-10-", "aria2 1.9.10"),
            (b"M7-4-2--", "Mainline 7.4.2"),
            (b"M4-20-8-", "Mainline 4.20.8"),
            (b"Q1-10-0-", "Queen Bee 1.10.0"),
            (b"T03I-----", "BitTornado 0.3.18"),
            (b"S58B-----", "Shadow 5.8.11"),
            (b"A310-----", "ABC 3.1.0"),
            (b"exbc\x00\x38", "BitComet 0.56"),
            (b"-XX1234-", "unknown (-XX1234-)"),
            (b"-qB46!0-", "unknown (-qB46!0-)"),
            (b"A2-1-36", "unknown (A2-1-36x)"),
            (b"M7-4-2", "unknown (M7-4-2xx)"),
            (b"T03I-x--", "unknown (T03I-x--)"),
            (b"\x1b[2J\x00\xff ab", "unknown (\\x1b[2J\\x00\\xff a)"),
            (
                &[0; 8],
                "unknown (\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00)",
            ),
        ];
        for (prefix, expected) in cases {
            assert_eq!(
                client_name(&id(prefix)),
                *expected,
                "{}",
                String::from_utf8_lossy(prefix)
            );
        }
    }

    #[test]
    fn every_name_is_printable_ascii() {
        let mut seed = 0x2545_f491_u32;
        for _ in 0..10_000 {
            let mut peer_id = [0u8; 20];
            for byte in &mut peer_id {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *byte = seed.to_le_bytes()[0];
            }
            let name = client_name(&peer_id);
            assert!(
                name.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "{name:?}"
            );
        }
    }
}
