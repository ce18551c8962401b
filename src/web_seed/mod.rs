//! BEP 19 web seeds ("WebSeed - HTTP/FTP Seeding, GetRight style"): the
//! pure parts of downloading a torrent's pieces from plain HTTP servers
//! that hold its files.
//!
//! Layer 0: no socket, no clock. [`url`] builds each file's URL from a
//! `url-list` entry; [`ranges`] maps a run of blocks to the byte ranges
//! of the files it covers (BEP 47 padding files are zeros, never fetched);
//! [`http`] encodes a range request and parses the response from bytes.
//! The session (`session/web_seed.rs`) drives them over nonblocking
//! sockets, and feeds the bytes back to the torrent core as PIECE messages
//! of a pseudo-peer, so they are written, hashed and judged exactly like a
//! peer's.

pub mod http;
pub mod ranges;
pub mod url;

pub use http::{HttpError, Progress, RangeAsk, ResponseParser, MAX_REDIRECTS};
pub use ranges::{file_ranges, FileExtent, FileRange};
pub use url::{file_url, HttpUrl, Scheme, UrlError};

/// Whether `url_list` (a torrent's `url-list`) has a web seed pollen
/// uses: a well-formed `http://` URL (`https://` ones are skipped).
pub fn has_usable_web_seed(url_list: &[String]) -> bool {
    url_list
        .iter()
        .any(|u| HttpUrl::parse(u).is_ok_and(|u| u.scheme == Scheme::Http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_web_seeds_count_as_usable() {
        let list = |urls: &[&str]| urls.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert!(has_usable_web_seed(&list(&["https://a/", "http://b/"])));
        assert!(!has_usable_web_seed(&list(&["https://a/", "http:///x"])));
        assert!(!has_usable_web_seed(&[]));
    }
}
