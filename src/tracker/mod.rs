//! HTTP tracker announces: telling a tracker about ourselves and getting peers
//! back (BEP 3 "Trackers", compact peer lists of BEP 23, IPv6 `peers6` of BEP 7).
//!
//! Two layers, split so the protocol can be tested without a network:
//!
//! - [`announce`] is Layer 0, pure (no I/O, no clock): it builds the announce
//!   URL byte for byte ([`announce_url`]) and parses the bencoded reply
//!   ([`parse_response`]) into an [`AnnounceResponse`].
//! - [`http`] is Layer 1: one blocking GET through `ureq` under hard timeouts
//!   ([`http::announce`]). The session calls it from its single thread, so a
//!   dead tracker costs at most [`HttpTimeouts::total`] of stalled peers.
//!
//! Everything a tracker sends is untrusted: the reply size, the peer count,
//! the intervals and every integer are bounded or checked before use, and a
//! peer address is only ever an IP literal, never a host name to resolve.
//!
//! `server` is the other side, the built-in tracker behind `pollen
//! tracker`; it is the cargo feature `tracker-server` (on by default).
//!
//! Any [`TrackerError`] is local to one tracker: the session logs it, backs
//! off, tries the next tracker and keeps serving its peers.

pub mod announce;
pub mod http;
pub mod resolve;
pub mod scrape;
#[cfg(feature = "tracker-server")]
pub mod server;
pub mod tiers;
pub mod udp;

use std::fmt;

pub use announce::{
    announce_url, parse_response, AnnounceRequest, AnnounceResponse, Event, DEFAULT_INTERVAL,
    MAX_INTERVAL, MAX_PEERS_PER_REPLY, MAX_TRACKER_TEXT_CHARS, MIN_INTERVAL,
};
pub use http::{HttpTimeouts, MAX_REPLY_BYTES};

/// An announce to one tracker failed. The session logs it, backs off and keeps
/// running; it never ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerError {
    /// The tracker refused the announce with a `failure reason` (already
    /// truncated to [`MAX_TRACKER_TEXT_CHARS`]; escaped when displayed).
    Failure(String),
    /// The tracker answered with an HTTP status other than 200 OK.
    Status(u16),
    /// The tracker could not be reached or the exchange broke off: connection
    /// refused, timeout, unknown host, connection closed early.
    Transport(String),
    /// The reply body is larger than we are willing to read.
    TooLarge {
        /// The most bytes we read.
        limit_bytes: usize,
    },
    /// The reply is not a valid announce reply: not bencode, not a dictionary,
    /// no peers, a field of the wrong type or shape.
    Malformed(String),
    /// The announce URL cannot be used (unsupported scheme, unparsable).
    BadUrl(String),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Failure(reason) => {
                // The text is the tracker's: escape it so it cannot drive the terminal.
                write!(
                    f,
                    "tracker refused the announce: \"{}\"",
                    reason.escape_debug()
                )
            }
            TrackerError::Status(code) => write!(f, "tracker answered HTTP status {code}"),
            TrackerError::Transport(what) => write!(f, "could not reach the tracker: {what}"),
            TrackerError::TooLarge { limit_bytes } => {
                write!(f, "tracker reply is larger than {limit_bytes} bytes")
            }
            TrackerError::Malformed(what) => write!(f, "tracker reply is malformed: {what}"),
            TrackerError::BadUrl(what) => write!(f, "bad tracker URL: {what}"),
        }
    }
}

impl std::error::Error for TrackerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_states_the_facts() {
        let cases = [
            (
                TrackerError::Failure("unregistered torrent".into()),
                "tracker refused the announce: \"unregistered torrent\"",
            ),
            (
                TrackerError::Status(404),
                "tracker answered HTTP status 404",
            ),
            (
                TrackerError::TooLarge { limit_bytes: 1024 },
                "tracker reply is larger than 1024 bytes",
            ),
            (
                TrackerError::BadUrl("unsupported scheme".into()),
                "bad tracker URL: unsupported scheme",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn display_escapes_the_trackers_words() {
        let error = TrackerError::Failure("bad\x1b[31m\n".into());
        assert_eq!(
            error.to_string(),
            "tracker refused the announce: \"bad\\u{1b}[31m\\n\""
        );
    }
}
