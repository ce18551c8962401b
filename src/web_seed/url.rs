//! Web seed URLs: parsing a BEP 19 `url-list` entry and building the URL
//! of each file of the torrent on it.
//!
//! Layer 0: pure, strings in, strings out. BEP 19's rules:
//!
//! - single-file torrent: the URL names the file itself; if it ends in `/`
//!   the torrent's name is appended;
//! - multi-file torrent: the URL names a directory; the client appends
//!   (after a `/` if missing) the torrent's name, `/`, then the file's path
//!   elements joined by `/`.
//!
//! Each appended element is percent-encoded: RFC 3986's unreserved
//! characters (`A-Z a-z 0-9 - . _ ~`) are kept, every other byte of its
//! UTF-8 becomes `%XX`. The names are the ones pollen writes to disk
//! (the torrent's, after [`crate::metainfo`]'s sanitizer, which drops `.`
//! and `..`: a hostile torrent cannot walk up the server's tree); for any
//! ordinary torrent they are the torrent's own.

use std::fmt;

/// Longest web seed URL accepted: a URL is one request line, and servers
/// refuse lines over 8 KiB anyway.
pub const MAX_URL_LEN: usize = 4096;

/// The scheme of a web seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (port 80 by default).
    Http,
    /// HTTP over TLS (port 443 by default); pollen skips these for now.
    Https,
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// The host as written, without brackets for an IPv6 literal.
    pub host: String,
    /// The port (the scheme's default when none was written).
    pub port: u16,
    /// The path and query, starting with `/` (never empty).
    pub target: String,
}

/// Why a URL cannot be used as a web seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    TooLong(usize),
    /// Not `http://` or `https://`.
    Scheme,
    /// No host, a bad port, or spaces and control characters.
    Malformed,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::TooLong(len) => {
                write!(f, "URL of {len} bytes is longer than {MAX_URL_LEN}")
            }
            UrlError::Scheme => write!(f, "only http:// and https:// web seeds are used"),
            UrlError::Malformed => write!(f, "malformed URL"),
        }
    }
}

impl std::error::Error for UrlError {}

impl HttpUrl {
    /// Parses an absolute `http://` or `https://` URL. A fragment is
    /// dropped; userinfo (`user@`) is refused as malformed.
    pub fn parse(url: &str) -> Result<HttpUrl, UrlError> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong(url.len()));
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::Malformed);
        }
        let (scheme, rest) = split_scheme(url)?;
        let url = rest.split('#').next().unwrap_or_default();
        let (authority, target) = match url.find(['/', '?']) {
            Some(at) => (
                url.get(..at).unwrap_or_default(),
                url.get(at..).unwrap_or("/"),
            ),
            None => (url, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        let (host, port) = split_authority(authority, scheme)?;
        Ok(HttpUrl {
            scheme,
            host,
            port,
            target,
        })
    }

    /// The value of the `Host` header: the host (bracketed if IPv6), and
    /// the port unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port(self.scheme) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Where a redirect's `Location` points, read relative to this URL:
    /// an absolute URL as is, `//host/...` with this scheme, `/path` on
    /// this host, anything else relative to this path's directory.
    pub fn join(&self, location: &str) -> Result<HttpUrl, UrlError> {
        if has_scheme(location) {
            return HttpUrl::parse(location);
        }
        let scheme = match self.scheme {
            Scheme::Http => "http:",
            Scheme::Https => "https:",
        };
        if location.starts_with("//") {
            return HttpUrl::parse(&format!("{scheme}{location}"));
        }
        let base = format!("{scheme}//{}", self.host_header());
        if location.starts_with('/') {
            return HttpUrl::parse(&format!("{base}{location}"));
        }
        let path = self.target.split('?').next().unwrap_or("/");
        let dir = path
            .rfind('/')
            .and_then(|at| path.get(..=at))
            .unwrap_or("/");
        HttpUrl::parse(&format!("{base}{dir}{location}"))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host_header(), self.target)
    }
}

/// Whether `reference` starts with a scheme (`letter *(letter / digit /
/// "+" / "-" / ".") ":"`, RFC 3986 §3.1): then it is absolute.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The port a scheme uses when the URL names none.
fn default_port(scheme: Scheme) -> u16 {
    match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    }
}

/// The scheme (case-insensitive) and what follows `://`.
fn split_scheme(url: &str) -> Result<(Scheme, &str), UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(UrlError::Scheme),
    };
    Ok((scheme, rest))
}

/// Host and port of `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_authority(authority: &str, scheme: Scheme) -> Result<(String, u16), UrlError> {
    if authority.contains('@') {
        return Err(UrlError::Malformed);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::Malformed)?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(UrlError::Malformed)?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => default_port(scheme),
        Some(text) => text.parse::<u16>().map_err(|_| UrlError::Malformed)?,
    };
    if host.is_empty() || port == 0 {
        return Err(UrlError::Malformed);
    }
    Ok((host.to_string(), port))
}

/// The URL of one file on a web seed (BEP 19; see the module doc).
/// `name` is the torrent's name, `path` the file's path elements inside
/// the torrent's directory (ignored for a single-file torrent).
pub fn file_url(base: &HttpUrl, multi_file: bool, name: &str, path: &[&str]) -> HttpUrl {
    let mut url = base.clone();
    // A query on a directory URL would be cut off by what is appended:
    // it stays at the end, where servers look for it.
    let (path_part, query) = match base.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q)),
        None => (base.target.clone(), None),
    };
    let mut target = path_part;
    if multi_file {
        if !target.ends_with('/') {
            target.push('/');
        }
        target.push_str(&percent_encode(name));
        for element in path {
            target.push('/');
            target.push_str(&percent_encode(element));
        }
    } else if target.ends_with('/') {
        target.push_str(&percent_encode(name));
    }
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    url.target = target;
    url
}

/// Percent-encodes one path element: RFC 3986 unreserved characters are
/// kept, every other byte is `%XX` (upper-case hex).
pub fn percent_encode(element: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(element.len());
    for byte in element.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            for nibble in [byte >> 4, byte & 0x0f] {
                let digit = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                out.push(char::from(digit));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap()
    }

    #[test]
    fn parse_splits_scheme_host_port_and_target() {
        let u = url("http://Example.org:8080/a/b?x=1#frag");
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!((u.host.as_str(), u.port), ("Example.org", 8080));
        assert_eq!(u.target, "/a/b?x=1");
        assert_eq!(url("http://h").target, "/");
        assert_eq!(url("http://h").port, 80);
        assert_eq!(url("HTTPS://h/").port, 443);
        assert_eq!(url("http://h?q").target, "/?q");
        let v6 = url("http://[::1]:81/x");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 81));
        assert_eq!(v6.host_header(), "[::1]:81");
        assert_eq!(url("http://h:80/").host_header(), "h");
    }

    #[test]
    fn parse_refuses_other_schemes_and_malformed_urls() {
        assert_eq!(HttpUrl::parse("ftp://h/x"), Err(UrlError::Scheme));
        assert_eq!(HttpUrl::parse("h/x"), Err(UrlError::Scheme));
        for bad in [
            "http:///x",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u@h/",
            "http://h/a b",
            "http://[::1/",
            "http://[::1]x/",
        ] {
            assert_eq!(HttpUrl::parse(bad), Err(UrlError::Malformed), "{bad}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(HttpUrl::parse(&long), Err(UrlError::TooLong(_))));
    }

    #[test]
    fn single_file_url_is_used_as_is_unless_it_ends_in_a_slash() {
        let f = file_url(&url("http://h/dl/file.iso"), false, "x y.iso", &[]);
        assert_eq!(f.target, "/dl/file.iso");
        let f = file_url(&url("http://h/dl/"), false, "x y.iso", &[]);
        assert_eq!(f.target, "/dl/x%20y.iso");
    }

    #[test]
    fn multi_file_url_appends_name_and_encoded_path() {
        let f = file_url(&url("http://h/seed/"), true, "My Dir", &["sub", "a+b.txt"]);
        assert_eq!(f.target, "/seed/My%20Dir/sub/a%2Bb.txt");
        // A directory URL without its trailing slash gets one.
        let f = file_url(&url("http://h/seed"), true, "d", &["f"]);
        assert_eq!(f.target, "/seed/d/f");
        let f = file_url(&url("http://h"), true, "d", &["f"]);
        assert_eq!(f.target, "/d/f");
        let f = file_url(&url("http://h/s/?k=v"), true, "d", &["f"]);
        assert_eq!(f.target, "/s/d/f?k=v");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("a/b?c#d%e"), "a%2Fb%3Fc%23d%25e");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode(".."), "..");
    }

    #[test]
    fn join_reads_a_location_relative_to_the_url() {
        let base = url("http://h:81/a/b/c.bin");
        assert_eq!(base.join("http://o/x").unwrap().to_string(), "http://o/x");
        assert_eq!(base.join("//o:9/x").unwrap().to_string(), "http://o:9/x");
        assert_eq!(base.join("/x").unwrap().to_string(), "http://h:81/x");
        assert_eq!(base.join("y").unwrap().to_string(), "http://h:81/a/b/y");
        assert!(base.join("ftp://o/x").is_err());
    }
}
