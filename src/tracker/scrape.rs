//! The HTTP scrape: asking a tracker how big a swarm is without joining it
//! (BEP 48, "Tracker Protocol Extension: Scrape").
//!
//! Layer 0: pure (no I/O, no clock). [`scrape_url`] derives the scrape URL
//! from an announce URL, [`scrape_query`] builds its `info_hash=` parameters
//! and [`parse_scrape_response`] reads the bencoded reply into
//! [`ScrapeStats`]. [`super::http::scrape`] does the GET in between. UDP
//! trackers scrape with BEP 15's action 2 instead ([`super::udp`]), which
//! decodes into the same [`ScrapeStats`].
//!
//! The scrape URL exists only when the announce URL's last path segment
//! starts with `announce`: that word becomes `scrape` and everything else
//! (the rest of the segment, the query with a private tracker's passkey) is
//! kept. Any other URL has no scrape counterpart; BEP 48 leaves guessing one
//! out of scope, and so do we.
//!
//! The reply is untrusted: it goes through the bencode decoder's message
//! limits, the counts must fit a `u32`, and a `failure reason` is cut to
//! [`MAX_TRACKER_TEXT_CHARS`](super::MAX_TRACKER_TEXT_CHARS) characters.

use super::announce::percent_encode;
use super::TrackerError;
use crate::bencode::Dict;

/// The word an announce URL's last path segment must start with (BEP 48).
const ANNOUNCE_WORD: &str = "announce";

/// The word it is replaced with.
const SCRAPE_WORD: &str = "scrape";

/// What a tracker knows about one swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Peers with the whole torrent (`complete`).
    pub seeders: u32,
    /// Peers still downloading (`incomplete`).
    pub leechers: u32,
    /// Downloads the tracker has seen finish (`downloaded`; BEP 15's
    /// "completed").
    pub completed: u32,
}

/// The scrape URL for the HTTP(S) announce URL `announce`, or `None` when it
/// has none (BEP 48).
///
/// The last `/`-segment of the path must start with `announce`; that word is
/// replaced with `scrape` and the rest of the URL is kept byte for byte:
/// `http://t/x/announce.php?passkey=k` gives `http://t/x/scrape.php?passkey=k`.
/// URLs of other schemes (`udp://`) give `None`.
pub fn scrape_url(announce: &str) -> Option<String> {
    let (scheme, rest) = announce.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    // The authority runs to the first `/`, `?` or `#`; the path to the next `?` or `#`.
    let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_more) = rest.split_at_checked(path_start)?;
    let path_end = path_and_more
        .find(['?', '#'])
        .unwrap_or(path_and_more.len());
    let (path, query_and_fragment) = path_and_more.split_at_checked(path_end)?;
    let (parent, last_segment) = path.rsplit_once('/')?;
    let after_word = last_segment.strip_prefix(ANNOUNCE_WORD)?;
    Some(format!(
        "{scheme}://{authority}{parent}/{SCRAPE_WORD}{after_word}{query_and_fragment}"
    ))
}

/// The scrape parameters: one `info_hash=` per torrent, each hash
/// percent-encoded byte by byte like the announce's, joined by `&`.
pub fn scrape_query(info_hashes: &[[u8; 20]]) -> String {
    info_hashes
        .iter()
        .map(|hash| format!("info_hash={}", percent_encode(hash)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads a scrape reply body: the stats of the torrent `info_hash`.
///
/// A `failure reason` is [`TrackerError::Failure`]. A body that is not a
/// bencoded dictionary with a `files` dictionary holding an entry for
/// `info_hash` (keyed by the raw 20 bytes) is [`TrackerError::Malformed`]; so
/// is a count that is not an integer in `u32` range. A count left out is 0:
/// some trackers leave out `downloaded`.
pub fn parse_scrape_response(
    body: &[u8],
    info_hash: &[u8; 20],
) -> Result<ScrapeStats, TrackerError> {
    let dict = crate::tracker::announce::decode_reply(body, "scrape reply")?;
    let files = dict.get_dict(b"files").ok_or_else(|| {
        TrackerError::Malformed("no `files` dictionary in the scrape reply".into())
    })?;
    let stats = files.get_dict(info_hash).ok_or_else(|| {
        TrackerError::Malformed("the scrape reply has no entry for this torrent".into())
    })?;
    Ok(ScrapeStats {
        seeders: count(stats, "complete")?,
        leechers: count(stats, "incomplete")?,
        completed: count(stats, "downloaded")?,
    })
}

/// The count under `key`: 0 when absent, an error when present but not an
/// integer in `u32` range.
fn count(stats: &Dict<'_>, key: &str) -> Result<u32, TrackerError> {
    let Some(value) = stats.get(key.as_bytes()) else {
        return Ok(0);
    };
    value
        .as_int()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            TrackerError::Malformed(format!(
                "scrape count `{key}` is not a number from 0 to {}",
                u32::MAX
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; 20] =
        *b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a";

    #[test]
    fn scrape_url_follows_the_bep_48_examples() {
        let cases = [
            (
                "http://example.com/announce",
                Some("http://example.com/scrape"),
            ),
            (
                "http://example.com/x/announce",
                Some("http://example.com/x/scrape"),
            ),
            (
                "http://example.com/announce.php",
                Some("http://example.com/scrape.php"),
            ),
            ("http://example.com/a", None),
            (
                "http://example.com/announce?x2%0644",
                Some("http://example.com/scrape?x2%0644"),
            ),
            (
                "http://example.com/announce?x=2/4",
                Some("http://example.com/scrape?x=2/4"),
            ),
            ("http://example.com/x%064announce", None),
        ];
        for (announce, expected) in cases {
            assert_eq!(scrape_url(announce).as_deref(), expected, "{announce}");
        }
    }

    #[test]
    fn scrape_url_keeps_the_passkey_port_and_scheme() {
        let cases = [
            (
                "https://t.example:8443/tracker/announce?passkey=a%2Fb&x=1",
                Some("https://t.example:8443/tracker/scrape?passkey=a%2Fb&x=1"),
            ),
            (
                "http://t.example/abc123/announce",
                Some("http://t.example/abc123/scrape"),
            ),
            ("HTTP://t/announce#top", Some("HTTP://t/scrape#top")),
            ("http://t/announcer", Some("http://t/scraper")),
        ];
        for (announce, expected) in cases {
            assert_eq!(scrape_url(announce).as_deref(), expected, "{announce}");
        }
    }

    #[test]
    fn scrape_url_is_none_without_an_announce_segment() {
        let cases = [
            "http://t/",
            "http://t",
            "http://t?announce",
            "http://t/a?/announce",
            "http://t/announce/",
            "http://t/announce/x",
            "http://t/Announce",
            "http://t/x#/announce",
            "udp://t:80/announce",
            "t/announce",
            "",
        ];
        for announce in cases {
            assert_eq!(scrape_url(announce), None, "{announce}");
        }
    }

    #[test]
    fn scrape_query_repeats_info_hash_per_torrent() {
        assert_eq!(scrape_query(&[]), "");
        assert_eq!(
            scrape_query(&[HASH]),
            "info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A"
        );
        assert_eq!(
            scrape_query(&[[b'a'; 20], [0; 20]]),
            format!(
                "info_hash={}&info_hash={}",
                "a".repeat(20),
                "%00".repeat(20)
            )
        );
    }

    /// A scrape reply with one `files` entry for `hash` holding `stats`.
    fn reply(hash: &[u8; 20], stats: &str) -> Vec<u8> {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(hash);
        body.extend_from_slice(stats.as_bytes());
        body.extend_from_slice(b"ee");
        body
    }

    #[test]
    fn parses_the_entry_for_our_hash() {
        let body = reply(&HASH, "d8:completei5e10:downloadedi50e10:incompletei10ee");
        assert_eq!(
            parse_scrape_response(&body, &HASH),
            Ok(ScrapeStats {
                seeders: 5,
                leechers: 10,
                completed: 50
            })
        );
    }

    #[test]
    fn picks_our_hash_among_several_and_reads_missing_counts_as_zero() {
        let other = [7u8; 20];
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&other);
        body.extend_from_slice(b"d8:completei99ee20:");
        body.extend_from_slice(&HASH);
        body.extend_from_slice(b"d8:completei1e10:incompletei2ee");
        body.extend_from_slice(b"e5:flagsd20:min_request_intervali900eee");
        assert_eq!(
            parse_scrape_response(&body, &HASH),
            Ok(ScrapeStats {
                seeders: 1,
                leechers: 2,
                completed: 0
            })
        );
    }

    #[test]
    fn a_failure_reason_is_a_failure() {
        assert_eq!(
            parse_scrape_response(b"d14:failure reason11:not allowede", &HASH),
            Err(TrackerError::Failure("not allowed".into()))
        );
    }

    #[test]
    fn garbage_and_wrong_shapes_are_malformed() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", b"".to_vec()),
            ("not bencode", b"<html>scrape</html>".to_vec()),
            ("truncated", b"d5:filesd20:".to_vec()),
            ("a list", b"le".to_vec()),
            ("no files", b"d8:intervali60ee".to_vec()),
            ("files not a dict", b"d5:filesle".to_vec()),
            ("no entry for us", b"d5:filesdee".to_vec()),
            ("entry not a dict", reply(&HASH, "i5e")),
            ("negative count", reply(&HASH, "d8:completei-1ee")),
            (
                "count over u32",
                reply(&HASH, "d10:incompletei4294967296ee"),
            ),
            ("count as text", reply(&HASH, "d10:downloaded2:12e")),
        ];
        for (name, body) in cases {
            let result = parse_scrape_response(&body, &HASH);
            assert!(
                matches!(result, Err(TrackerError::Malformed(_))),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn counts_at_the_u32_limit_are_kept() {
        let body = reply(&HASH, "d8:completei4294967295ee");
        assert_eq!(
            parse_scrape_response(&body, &HASH).map(|stats| stats.seeders),
            Ok(u32::MAX)
        );
    }
}
