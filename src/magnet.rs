//! Magnet links (`magnet:?xt=urn:btih:...`): what a link names before any
//! metadata is known.
//!
//! Layer 0: pure, text in, values out; no I/O, no clock. BEP 9 ("magnet
//! URI format"): `xt=urn:btih:` carries the v1 info-hash as 40 hexadecimal
//! or 32 base32 characters; `dn` is a display name; each `tr` is a tracker;
//! `x.pe` is a peer address. Parameters are percent-encoded as in an
//! `application/x-www-form-urlencoded` query, so `+` is a space everywhere
//! (real links write `dn=Big+Buck+Bunny`; a literal `+` arrives as `%2B`).
//!
//! What is refused, with a [`MagnetError`]: a text that is not a magnet
//! link, a link over [`MAX_LINK_LEN`], no `xt=urn:btih:`, two different
//! btih info-hashes, a v2-only link (`urn:btmh:` without `urn:btih:`), a
//! btih value of the wrong length or with a character outside its alphabet,
//! and a bad percent escape. Everything else is forgiven with a note in
//! [`Magnet::notes`]: a tracker that is not http, https or udp (skipped, as
//! `metainfo` does for a torrent's announce list), a peer that is not
//! `HOST:PORT`, parameters pollen does not use (`ws` web seeds, `so` file
//! selection, `xl`, `kt`, ...), and trackers or peers beyond their caps.
//!
//! Peers: `x.pe` values that are IP literals (`1.2.3.4:6881`,
//! `[2001:db8::1]:6881`) become [`MagnetPeer::Ip`]; host names are kept as
//! text ([`MagnetPeer::Name`]) because resolving them is network I/O, which
//! belongs to the layers above (as for `--peer HOST:PORT`).
//!
//! Invariants of a [`Magnet`]: trackers are http/https/udp URLs, each once,
//! in link order, at most [`MAX_TRACKERS`]; peers each once, at most
//! [`MAX_PEERS`], with a non-zero port.

use std::fmt;
use std::net::SocketAddr;

use crate::hash::Sha1Hash;
use crate::metainfo::{is_tracker_url, InfoHash};

/// Longest magnet link accepted, in bytes. Real links with dozens of
/// trackers stay under 8 KiB; 64 KiB leaves room for any honest one while
/// bounding what a pasted or hostile text can make pollen parse and store.
pub const MAX_LINK_LEN: usize = 64 * 1024;

/// Most `tr` trackers kept from one link. Public links carry 10 to 40
/// (mostly dead) trackers; more is noise, and each one costs announces.
pub const MAX_TRACKERS: usize = 100;

/// Most `x.pe` peers kept from one link. A link names a few peers to get
/// started; the swarm (tracker, PEX) supplies the rest.
pub const MAX_PEERS: usize = 200;

/// Most notes kept about one link; the rest are counted in one last note,
/// so a link of thousands of unknown parameters cannot grow the list.
pub const MAX_NOTES: usize = 32;

/// Longest parameter value quoted in a note, in characters; longer ones are
/// cut with `...`.
const NOTE_QUOTE_CHARS: usize = 80;

/// Longest DNS name (RFC 1035), for `x.pe` host names.
const MAX_HOST_NAME_LEN: usize = 253;

/// What a magnet link holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info-hash from `xt=urn:btih:`.
    pub info_hash: InfoHash,
    /// The display name from `dn`, if given and not empty (not trusted:
    /// the metadata's own name decides where files go).
    pub name: Option<String>,
    /// The `tr` trackers that pollen can announce to, in link order.
    pub trackers: Vec<String>,
    /// The `x.pe` peers, in link order.
    pub peers: Vec<MagnetPeer>,
    /// What was skipped or ignored, one human-readable line each.
    pub notes: Vec<String>,
}

/// A peer address from `x.pe`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MagnetPeer {
    /// An IPv4 or IPv6 literal with its port.
    Ip(SocketAddr),
    /// A host name and port, to be resolved by the caller (off the loop).
    Name {
        /// The host name, as written (letters, digits, `-`, `.`).
        host: String,
        /// The port, never 0.
        port: u16,
    },
}

impl fmt::Display for MagnetPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetPeer::Ip(addr) => write!(f, "{addr}"),
            MagnetPeer::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a text is not a usable magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    NotMagnet,
    /// The link is longer than [`MAX_LINK_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// No `xt=urn:btih:` (and no `urn:btmh:` either).
    NoInfoHash,
    /// Only a BitTorrent v2 `xt=urn:btmh:` hash: pollen speaks v1.
    V2Only,
    /// Two `xt=urn:btih:` parameters name different torrents.
    ConflictingInfoHashes {
        /// The first one in the link.
        first: InfoHash,
        /// The one that differs.
        second: InfoHash,
    },
    /// A btih value that is neither 40 hex nor 32 base32 characters long.
    InfoHashLength {
        /// Its length in characters.
        len: usize,
    },
    /// A btih value with a character outside its alphabet.
    InfoHashCharacter {
        /// The offending character.
        character: char,
        /// `"hex"` or `"base32"`: the alphabet its length implied.
        alphabet: &'static str,
    },
    /// A `%` not followed by two hexadecimal digits.
    BadEscape {
        /// The byte offset of the `%` in the link.
        offset: usize,
    },
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::NotMagnet => f.write_str("not a magnet link (it must start with magnet:?)"),
            MagnetError::TooLong { len } => write!(
                f,
                "magnet link is {len} bytes long; pollen accepts at most {MAX_LINK_LEN}"
            ),
            MagnetError::NoInfoHash => {
                f.write_str("magnet link has no info-hash (no xt=urn:btih: parameter)")
            }
            MagnetError::V2Only => {
                f.write_str("v2-only magnet links are not supported: pollen speaks BitTorrent v1")
            }
            MagnetError::ConflictingInfoHashes { first, second } => write!(
                f,
                "magnet link names two different torrents: btih {first} and {second}"
            ),
            MagnetError::InfoHashLength { len } => write!(
                f,
                "magnet info-hash is {len} characters long; expected 40 (hex) or 32 (base32)"
            ),
            MagnetError::InfoHashCharacter {
                character,
                alphabet,
            } => write!(
                f,
                "magnet info-hash has {character:?}, which is not a {alphabet} digit"
            ),
            MagnetError::BadEscape { offset } => write!(
                f,
                "magnet link has a bad percent escape at byte {offset} (expected % and two hex digits)"
            ),
        }
    }
}

impl std::error::Error for MagnetError {}

/// Whether `text` looks like a magnet link (starts with `magnet:`, any
/// case), for callers that must choose between a link and a file path.
pub fn is_magnet(text: &str) -> bool {
    text.trim_start()
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

/// Parses a magnet link. Leading and trailing white space is ignored, and
/// so is a `#fragment`.
pub fn parse(link: &str) -> Result<Magnet, MagnetError> {
    if link.len() > MAX_LINK_LEN {
        return Err(MagnetError::TooLong { len: link.len() });
    }
    let trimmed = link.trim();
    let lead = link.len() - link.trim_start().len();
    let query = trimmed
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("magnet:?"))
        .and_then(|_| trimmed.get(8..))
        .ok_or(MagnetError::NotMagnet)?;
    let query = query.split('#').next().unwrap_or_default();
    let mut builder = Builder::default();
    let mut offset = lead + 8;
    for param in query.split('&') {
        if !param.is_empty() {
            builder.add(param, offset)?;
        }
        offset += param.len() + 1;
    }
    builder.finish()
}

/// The link's parameters, gathered one at a time.
#[derive(Default)]
struct Builder {
    info_hash: Option<InfoHash>,
    saw_btmh: bool,
    name: Option<String>,
    trackers: Vec<String>,
    peers: Vec<MagnetPeer>,
    notes: Vec<String>,
    dropped_notes: usize,
    dropped_trackers: usize,
    dropped_peers: usize,
}

impl Builder {
    /// One `key=value` parameter that starts at byte `offset` of the link.
    fn add(&mut self, param: &str, offset: usize) -> Result<(), MagnetError> {
        let (raw_key, raw_value) = param.split_once('=').unwrap_or((param, ""));
        let key = decode_text(raw_key, offset)?.to_ascii_lowercase();
        let value_offset = offset + raw_key.len() + 1;
        let value = decode(raw_value, value_offset)?;
        match base_key(&key) {
            "xt" => self.add_exact_topic(&String::from_utf8_lossy(&value)),
            "dn" => {
                let name = String::from_utf8_lossy(&value).trim().to_string();
                if !name.is_empty() && self.name.is_none() {
                    self.name = Some(name);
                }
                Ok(())
            }
            "tr" => {
                self.add_tracker(&value);
                Ok(())
            }
            "x.pe" => {
                self.add_peer(&String::from_utf8_lossy(&value));
                Ok(())
            }
            "ws" => {
                let url = String::from_utf8_lossy(&value);
                self.note(format!("ignored web seed ws={}", quote(&url)));
                Ok(())
            }
            _ => {
                let shown = String::from_utf8_lossy(&value);
                self.note(format!(
                    "ignored parameter {}={}",
                    quote(&key),
                    quote(&shown)
                ));
                Ok(())
            }
        }
    }

    /// `xt`: the btih info-hash; a `btmh` is remembered for the v2-only
    /// error; any other URN is noted.
    fn add_exact_topic(&mut self, value: &str) -> Result<(), MagnetError> {
        let value = value.trim();
        if let Some(hash) = strip_prefix_ignore_case(value, "urn:btih:") {
            let hash = parse_btih(hash)?;
            match self.info_hash {
                Some(first) if first != hash => {
                    return Err(MagnetError::ConflictingInfoHashes {
                        first,
                        second: hash,
                    })
                }
                _ => self.info_hash = Some(hash),
            }
        } else if strip_prefix_ignore_case(value, "urn:btmh:").is_some() {
            self.saw_btmh = true;
        } else {
            self.note(format!("ignored exact topic xt={}", quote(value)));
        }
        Ok(())
    }

    fn add_tracker(&mut self, value: &[u8]) {
        let Ok(url) = std::str::from_utf8(value) else {
            let shown = String::from_utf8_lossy(value);
            return self.note(format!("skipped tracker {}: not UTF-8", quote(&shown)));
        };
        let url = url.trim();
        if !is_tracker_url(url) {
            return self.note(format!(
                "skipped tracker {}: not http, https or udp",
                quote(url)
            ));
        }
        if self.trackers.iter().any(|t| t == url) {
            return;
        }
        if self.trackers.len() >= MAX_TRACKERS {
            self.dropped_trackers += 1;
            return;
        }
        self.trackers.push(url.to_string());
    }

    fn add_peer(&mut self, value: &str) {
        let Some(peer) = parse_peer(value.trim()) else {
            return self.note(format!(
                "skipped peer x.pe={}: not HOST:PORT with a port from 1 to 65535",
                quote(value)
            ));
        };
        if self.peers.contains(&peer) {
            return;
        }
        if self.peers.len() >= MAX_PEERS {
            self.dropped_peers += 1;
            return;
        }
        self.peers.push(peer);
    }

    fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.dropped_notes += 1;
        }
    }

    fn finish(mut self) -> Result<Magnet, MagnetError> {
        let Some(info_hash) = self.info_hash else {
            return Err(if self.saw_btmh {
                MagnetError::V2Only
            } else {
                MagnetError::NoInfoHash
            });
        };
        if self.saw_btmh {
            self.note("ignored the v2 info-hash (xt=urn:btmh:): pollen speaks v1".into());
        }
        if self.dropped_trackers > 0 {
            let n = self.dropped_trackers;
            self.note(format!(
                "skipped {n} trackers beyond the first {MAX_TRACKERS}"
            ));
        }
        if self.dropped_peers > 0 {
            let n = self.dropped_peers;
            self.note(format!("skipped {n} peers beyond the first {MAX_PEERS}"));
        }
        if self.dropped_notes > 0 {
            let n = self.dropped_notes;
            self.notes.push(format!("... and {n} more notes"));
        }
        Ok(Magnet {
            info_hash,
            name: self.name,
            trackers: self.trackers,
            peers: self.peers,
            notes: self.notes,
        })
    }
}

/// A key without its index: the magnet format allows `tr.1`, `xt.2`, ...
/// for repeated parameters; `x.pe` keeps its dot.
fn base_key(key: &str) -> &str {
    match key.rsplit_once('.') {
        Some((base, index)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            base
        }
        _ => key,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// The info-hash from a btih value: 40 hex or 32 base32 characters.
fn parse_btih(text: &str) -> Result<InfoHash, MagnetError> {
    let len = text.chars().count();
    match len {
        40 => parse_hex(text),
        32 => parse_base32(text),
        _ => Err(MagnetError::InfoHashLength { len }),
    }
}

fn parse_hex(text: &str) -> Result<InfoHash, MagnetError> {
    let mut out = [0u8; 20];
    let mut digits = text.chars().map(|c| {
        c.to_digit(16).ok_or(MagnetError::InfoHashCharacter {
            character: c,
            alphabet: "hex",
        })
    });
    for slot in &mut out {
        let high = digits
            .next()
            .ok_or(MagnetError::InfoHashLength { len: 0 })??;
        let low = digits
            .next()
            .ok_or(MagnetError::InfoHashLength { len: 0 })??;
        *slot = u8::try_from(high * 16 + low).unwrap_or(0);
    }
    Ok(Sha1Hash(out))
}

/// RFC 4648 base32 (`A`-`Z`, `2`-`7`, either case, no padding): 32
/// characters of 5 bits each are exactly the 160 bits of a SHA-1.
fn parse_base32(text: &str) -> Result<InfoHash, MagnetError> {
    let mut out = [0u8; 20];
    let mut bits: u64 = 0;
    let mut held = 0u32;
    let mut at = 0usize;
    for c in text.chars() {
        let value = base32_value(c).ok_or(MagnetError::InfoHashCharacter {
            character: c,
            alphabet: "base32",
        })?;
        bits = (bits << 5) | u64::from(value);
        held += 5;
        if held >= 8 {
            held -= 8;
            if let Some(slot) = out.get_mut(at) {
                *slot = u8::try_from((bits >> held) & 0xff).unwrap_or(0);
            }
            at += 1;
            bits &= (1 << held) - 1;
        }
    }
    Ok(Sha1Hash(out))
}

fn base32_value(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let byte = u8::try_from(u32::from(c)).ok()?;
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'2'..=b'7' => Some(byte - b'2' + 26),
        _ => None,
    }
}

/// Percent-decodes a form-encoded component that starts at byte `offset`
/// of the link: `+` is a space, `%XY` the byte 0xXY.
fn decode(text: &str, offset: usize) -> Result<Vec<u8>, MagnetError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|pair| {
                        Some(hex_value(*pair.first()?)? * 16 + hex_value(*pair.get(1)?)?)
                    })
                    .ok_or(MagnetError::BadEscape { offset: offset + i })?;
                out.push(escaped);
                i += 2;
            }
            _ => out.push(byte),
        }
        i += 1;
    }
    Ok(out)
}

/// [`decode`] for keys, which are compared as text (ASCII case ignored by
/// the caller: `XT=` is read as `xt=`).
fn decode_text(text: &str, offset: usize) -> Result<String, MagnetError> {
    decode(text, offset).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `HOST:PORT`, `IPV4:PORT` or `[IPV6]:PORT`, with a port from 1 to 65535.
fn parse_peer(text: &str) -> Option<MagnetPeer> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(MagnetPeer::Ip(addr));
    }
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST_NAME_LEN
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    valid.then(|| MagnetPeer::Name {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `text` quoted for a note, cut at [`NOTE_QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    let mut cut: String = text.chars().take(NOTE_QUOTE_CHARS).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";
    const UPPER_HEX: &str = "C9E15763F722F23E98A29DECDFAE341B98D53056";

    fn hash() -> InfoHash {
        InfoHash::from_hex(HEX).unwrap()
    }

    /// RFC 4648 base32 of `bytes`, written independently of the parser:
    /// bit by bit.
    fn base32(bytes: &[u8]) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let bits: Vec<u8> = bytes
            .iter()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect();
        bits.chunks(5)
            .map(|c| {
                let v = c.iter().fold(0usize, |acc, b| acc * 2 + usize::from(*b));
                char::from(alphabet[v << (5 - c.len())])
            })
            .collect()
    }

    #[test]
    fn parses_a_hex_link_with_name_trackers_and_peers() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck+Bunny%20(2008)\
             &tr=udp%3A%2F%2Ftracker.example.org%3A1337%2Fannounce\
             &tr=https%3A%2F%2Ft.example.com%2Fannounce\
             &x.pe=10.0.0.2:6881&x.pe=%5B2001:db8::1%5D:51413&x.pe=seed.example.net:6881"
        );
        let m = parse(&link).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.name.as_deref(), Some("Big Buck Bunny (2008)"));
        assert_eq!(
            m.trackers,
            [
                "udp://tracker.example.org:1337/announce",
                "https://t.example.com/announce"
            ]
        );
        assert_eq!(
            m.peers,
            [
                MagnetPeer::Ip("10.0.0.2:6881".parse().unwrap()),
                MagnetPeer::Ip("[2001:db8::1]:51413".parse().unwrap()),
                MagnetPeer::Name {
                    host: "seed.example.net".into(),
                    port: 6881
                },
            ]
        );
        assert!(m.notes.is_empty(), "{:?}", m.notes);
    }

    #[test]
    fn hex_info_hash_is_case_insensitive() {
        let m = parse(&format!("magnet:?xt=urn:btih:{UPPER_HEX}")).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.name, None);
        let m = parse(&format!("MAGNET:?XT=URN:BTIH:{UPPER_HEX}")).unwrap();
        assert_eq!(m.info_hash, hash());
    }

    #[test]
    fn base32_info_hash_decodes_to_the_same_hash_in_either_case() {
        let b32 = base32(&hash().0);
        assert_eq!(b32.len(), 32);
        let m = parse(&format!("magnet:?xt=urn:btih:{b32}&dn=x")).unwrap();
        assert_eq!(m.info_hash, hash());
        let lower = b32.to_ascii_lowercase();
        let m = parse(&format!("magnet:?xt=urn:btih:{lower}")).unwrap();
        assert_eq!(m.info_hash, hash());
    }

    #[test]
    fn base32_matches_a_known_vector() {
        // RFC 4648 test vector "foobar" -> MZXW6YTBOI, checked through the
        // helper; then an all-ones and an all-zero hash.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let ones = parse(&format!("magnet:?xt=urn:btih:{}", "7".repeat(32))).unwrap();
        assert_eq!(ones.info_hash.0, [0xff; 20]);
        let zeros = parse(&format!("magnet:?xt=urn:btih:{}", "A".repeat(32))).unwrap();
        assert_eq!(zeros.info_hash.0, [0; 20]);
    }

    #[test]
    fn a_hex_and_a_base32_form_of_the_same_hash_agree() {
        let b32 = base32(&hash().0);
        let m = parse(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{b32}")).unwrap();
        assert_eq!(m.info_hash, hash());
    }

    #[test]
    fn rejects_what_is_not_a_magnet_link() {
        for text in [
            "",
            "magnet:",
            "magnet:xt=urn:btih:",
            "http://x/a.torrent",
            "a.torrent",
        ] {
            assert_eq!(parse(text), Err(MagnetError::NotMagnet), "{text:?}");
        }
    }

    #[test]
    fn rejects_a_link_without_btih() {
        assert_eq!(parse("magnet:?dn=x"), Err(MagnetError::NoInfoHash));
        assert_eq!(parse("magnet:?"), Err(MagnetError::NoInfoHash));
        assert_eq!(
            parse("magnet:?xt=urn:sha1:ABCDEF"),
            Err(MagnetError::NoInfoHash)
        );
    }

    #[test]
    fn rejects_two_different_btih() {
        let other = "0".repeat(40);
        let err = parse(&format!("magnet:?xt=urn:btih:{HEX}&xt.2=urn:btih:{other}")).unwrap_err();
        assert!(matches!(err, MagnetError::ConflictingInfoHashes { .. }));
        assert!(err.to_string().contains(HEX), "{err}");
    }

    #[test]
    fn rejects_v2_only_links_and_accepts_hybrids() {
        let btmh = format!("urn:btmh:1220{}", "ab".repeat(32));
        let err = parse(&format!("magnet:?xt={btmh}&dn=v2")).unwrap_err();
        assert_eq!(err, MagnetError::V2Only);
        assert_eq!(
            err.to_string(),
            "v2-only magnet links are not supported: pollen speaks BitTorrent v1"
        );
        let m = parse(&format!("magnet:?xt={btmh}&xt=urn:btih:{HEX}")).unwrap();
        assert_eq!(m.info_hash, hash());
        assert!(m.notes.iter().any(|n| n.contains("btmh")), "{:?}", m.notes);
    }

    #[test]
    fn rejects_bad_info_hash_lengths_and_characters() {
        for bad in ["", "abc", &HEX[1..], &format!("{HEX}0")] {
            let err = parse(&format!("magnet:?xt=urn:btih:{bad}")).unwrap_err();
            assert!(
                matches!(err, MagnetError::InfoHashLength { .. }),
                "{bad:?}: {err}"
            );
        }
        let hex = format!("g{}", &HEX[1..]);
        assert_eq!(
            parse(&format!("magnet:?xt=urn:btih:{hex}")),
            Err(MagnetError::InfoHashCharacter {
                character: 'g',
                alphabet: "hex"
            })
        );
        // 0, 1, 8 and 9 are not in the base32 alphabet.
        let b32 = format!("{}1", "A".repeat(31));
        assert_eq!(
            parse(&format!("magnet:?xt=urn:btih:{b32}")),
            Err(MagnetError::InfoHashCharacter {
                character: '1',
                alphabet: "base32"
            })
        );
        // Non-ASCII characters are counted as characters, never sliced.
        let wide = "é".repeat(40);
        assert!(parse(&format!("magnet:?xt=urn:btih:{wide}")).is_err());
    }

    #[test]
    fn rejects_bad_percent_escapes_with_their_offset() {
        let link = format!("magnet:?xt=urn:btih:{HEX}&dn=a%2");
        let at = link.find('%').unwrap();
        assert_eq!(parse(&link), Err(MagnetError::BadEscape { offset: at }));
        for bad in ["%", "%zz", "%g1", "%1"] {
            let link = format!("magnet:?xt=urn:btih:{HEX}&dn={bad}");
            assert!(
                matches!(parse(&link), Err(MagnetError::BadEscape { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn plus_is_a_space_and_escaped_plus_is_a_plus() {
        let m = parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=C%2B%2B+book")).unwrap();
        assert_eq!(m.name.as_deref(), Some("C++ book"));
    }

    #[test]
    fn bad_trackers_are_skipped_with_a_note_and_duplicates_kept_once() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&tr=wss%3A%2F%2Fx.example%2Fa&tr=http://a.example/ann\
             &tr.1=http://a.example/ann&tr=%FF"
        );
        let m = parse(&link).unwrap();
        assert_eq!(m.trackers, ["http://a.example/ann"]);
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
        assert!(m.notes[0].contains("wss://x.example/a"), "{:?}", m.notes);
        assert!(m.notes[1].contains("not UTF-8"), "{:?}", m.notes);
    }

    #[test]
    fn bad_peers_are_skipped_with_a_note() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&x.pe=1.2.3.4&x.pe=1.2.3.4:0&x.pe=1.2.3.4:70000\
             &x.pe=[::1]:1&x.pe=bad_host!:80&x.pe=1.2.3.4:5&x.pe=1.2.3.4:5"
        );
        let m = parse(&link).unwrap();
        assert_eq!(
            m.peers,
            [
                MagnetPeer::Ip("[::1]:1".parse().unwrap()),
                MagnetPeer::Ip("1.2.3.4:5".parse().unwrap())
            ]
        );
        assert_eq!(m.notes.len(), 4, "{:?}", m.notes);
    }

    #[test]
    fn web_seeds_so_and_unknown_parameters_are_noted_as_ignored() {
        let link = format!(
            "magnet:?xt=urn:btih:{HEX}&ws=http%3A%2F%2Fmirror.example%2Ff&so=0,2,4-6&xl=1024&flag"
        );
        let m = parse(&link).unwrap();
        let notes = m.notes.join("\n");
        assert!(
            notes.contains("ignored web seed ws=\"http://mirror.example/f\""),
            "{notes}"
        );
        assert!(
            notes.contains("ignored parameter \"so\"=\"0,2,4-6\""),
            "{notes}"
        );
        assert!(notes.contains("\"xl\""), "{notes}");
        assert!(notes.contains("\"flag\""), "{notes}");
    }

    #[test]
    fn caps_trackers_peers_and_notes() {
        let mut link = format!("magnet:?xt=urn:btih:{HEX}");
        for i in 0..MAX_TRACKERS + 5 {
            link.push_str(&format!("&tr=http://t{i}.example/a"));
        }
        for i in 0..MAX_PEERS + 7 {
            link.push_str(&format!("&x.pe=10.0.{}.{}:1", i / 256, i % 256));
        }
        for i in 0..MAX_NOTES * 3 {
            link.push_str(&format!("&unknown{i}=1"));
        }
        let m = parse(&link).unwrap();
        assert_eq!(m.trackers.len(), MAX_TRACKERS);
        assert_eq!(m.peers.len(), MAX_PEERS);
        assert_eq!(m.notes.len(), MAX_NOTES + 1, "{:?}", m.notes);
        assert!(m.notes.last().unwrap().contains("more notes"));
    }

    #[test]
    fn rejects_links_over_the_length_cap() {
        let link = format!("magnet:?xt=urn:btih:{HEX}&dn={}", "a".repeat(MAX_LINK_LEN));
        assert_eq!(parse(&link), Err(MagnetError::TooLong { len: link.len() }));
    }

    #[test]
    fn long_values_are_cut_in_notes() {
        let long = "x".repeat(1000);
        let m = parse(&format!("magnet:?xt=urn:btih:{HEX}&ws={long}")).unwrap();
        assert!(m.notes[0].len() < 200, "{}", m.notes[0]);
        assert!(m.notes[0].contains("..."));
    }

    #[test]
    fn whitespace_and_fragments_around_the_link_are_ignored() {
        let m = parse(&format!("  magnet:?xt=urn:btih:{HEX}&dn=a#frag \n")).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.name.as_deref(), Some("a"));
    }

    #[test]
    fn is_magnet_tells_links_from_paths() {
        assert!(is_magnet("magnet:?xt=urn:btih:x"));
        assert!(is_magnet("Magnet:?"));
        assert!(!is_magnet("magnet.torrent"));
        assert!(!is_magnet("./magnet:"));
        assert!(!is_magnet("é"));
    }

    #[test]
    fn every_truncation_of_a_valid_link_parses_or_fails_without_panicking() {
        let b32 = base32(&hash().0);
        let links = [
            format!(
                "magnet:?xt=urn:btih:{HEX}&dn=Caf%C3%A9+%E2%98%95&tr=udp%3A%2F%2Ft.example%3A80\
                 &x.pe=[::1]:6881&x.pe=h.example:1&ws=http://w/&so=1"
            ),
            format!("magnet:?xt=urn:btih:{b32}&dn=é+ü&tr.1=http://a/&xt=urn:btmh:1220ab"),
        ];
        for link in &links {
            assert!(parse(link).is_ok(), "{link}");
            for cut in 0..=link.len() {
                if let Some(prefix) = link.get(..cut) {
                    let _ = parse(prefix);
                }
                // Byte-level cuts too, through lossy conversion.
                let bytes = link.as_bytes().get(..cut).unwrap();
                let _ = parse(&String::from_utf8_lossy(bytes));
            }
        }
    }

    #[test]
    fn errors_read_as_one_line() {
        let errors = [
            MagnetError::NotMagnet,
            MagnetError::TooLong { len: 1 << 20 },
            MagnetError::NoInfoHash,
            MagnetError::V2Only,
            MagnetError::ConflictingInfoHashes {
                first: hash(),
                second: Sha1Hash([0; 20]),
            },
            MagnetError::InfoHashLength { len: 3 },
            MagnetError::InfoHashCharacter {
                character: 'z',
                alphabet: "hex",
            },
            MagnetError::BadEscape { offset: 9 },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
    }
}
