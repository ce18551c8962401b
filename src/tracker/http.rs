//! One announce to an HTTP tracker: a blocking GET under hard timeouts
//! (BEP 3 "Trackers"; HTTPS when built with the `https` feature).
//!
//! Layer 1: blocking network I/O through `ureq`, no mio. The caller is the
//! session's single-threaded event loop, so while this runs no peer is served:
//! every announce is bounded by [`HttpTimeouts`] (connect and total, name
//! resolution included, itself at most [`RESOLVE_TIMEOUT`]) and by
//! [`MAX_REPLY_BYTES`] of body. A dead or hostile
//! tracker costs a few seconds, then a [`TrackerError`] the session logs
//! before backing off.
//!
//! The URL is built by [`announce_url`] and handed to `ureq` whole: `ureq`'s
//! own query helpers would encode the `%` of the already-encoded info-hash a
//! second time. `ureq` sends the path and query as given (a test below checks
//! the request line on the wire).

use std::time::Duration;

use super::announce::{
    announce_url, append_query, parse_response, AnnounceRequest, AnnounceResponse,
};
use super::scrape::{parse_scrape_response, scrape_query, scrape_url, ScrapeStats};
use super::TrackerError;

/// Largest reply body we read: 1 MiB. A compact reply of
/// [`MAX_PEERS_PER_REPLY`](super::MAX_PEERS_PER_REPLY) peers is a few KiB;
/// anything near this size is broken or hostile, and we will not buffer it.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// Redirects followed per announce. Trackers move (http to https, a new
/// host); a longer chain is a loop or a trap, and costs time from the same
/// [`HttpTimeouts::total`] budget anyway.
const MAX_REDIRECTS: u32 = 3;

/// Longest ureq may spend looking up the tracker's host name, within
/// [`HttpTimeouts::total`]. ureq 3 runs `getaddrinfo` on a helper thread of
/// its own whenever a timeout is set, and stops waiting for it after this
/// (or what is left of the total, if less). The session resolves the name
/// off the loop first ([`super::resolve`]), so this lookup normally finds
/// the answer fresh in the system's cache; the cap is for when it does not.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What we call ourselves in the `User-Agent` header.
const USER_AGENT: &str = concat!("pollen/", env!("CARGO_PKG_VERSION"));

/// Hard limits on one announce. A dead tracker must not freeze our peers for
/// long: the announce runs on the event loop's only thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Longest wait to open the connection (including the TLS handshake for
    /// HTTPS), after the host name is resolved.
    pub connect: Duration,
    /// Longest time for the whole announce: resolving the name, connecting,
    /// redirects, sending, and reading the full reply.
    pub total: Duration,
}

impl Default for HttpTimeouts {
    /// 3 s to connect and 5 s in all: a healthy tracker answers in well under
    /// a second, and peers stall for at most the total.
    fn default() -> Self {
        HttpTimeouts {
            connect: Duration::from_secs(3),
            total: Duration::from_secs(5),
        }
    }
}

/// Announces `req` to the tracker at `base_url` and parses its reply.
///
/// Blocks for at most `timeouts.total`. Only `http://` URLs are accepted, and
/// `https://` ones when the `https` feature is on. Any HTTP status other than
/// 200 is [`TrackerError::Status`]; a body over [`MAX_REPLY_BYTES`] is
/// [`TrackerError::TooLarge`].
pub fn announce(
    base_url: &str,
    req: &AnnounceRequest,
    timeouts: &HttpTimeouts,
) -> Result<AnnounceResponse, TrackerError> {
    announce_with(base_url, req, timeouts, None)
}

/// [`announce`], trusting HTTPS certificates signed by `ca` when given.
pub fn announce_with(
    base_url: &str,
    req: &AnnounceRequest,
    timeouts: &HttpTimeouts,
    ca: Option<&TrackerCa>,
) -> Result<AnnounceResponse, TrackerError> {
    check_scheme(base_url)?;
    let body = get(&announce_url(base_url, req), timeouts, ca)?;
    parse_response(&body)
}

/// Trust for HTTPS trackers with their own certificate authority
/// (`--tracker-ca FILE`): with it, HTTPS trackers are verified against these
/// certificates instead of the bundled web roots.
#[derive(Debug, Clone, Default)]
pub struct TrackerCa {
    #[cfg(feature = "https")]
    certs: Vec<ureq::tls::Certificate<'static>>,
}

impl TrackerCa {
    /// Reads the certificates in PEM text; at least one is required.
    pub fn from_pem(pem: &[u8]) -> Result<TrackerCa, TrackerError> {
        #[cfg(feature = "https")]
        {
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
                    Ok(_) => {}
                    Err(e) => return Err(TrackerError::BadUrl(format!("bad PEM: {e}"))),
                }
            }
            if certs.is_empty() {
                return Err(TrackerError::BadUrl(
                    "no certificate in the PEM file".into(),
                ));
            }
            Ok(TrackerCa { certs })
        }
        #[cfg(not(feature = "https"))]
        {
            let _ = pem;
            Err(TrackerError::BadUrl(
                "https trackers need the https feature".into(),
            ))
        }
    }
}

/// Scrapes the tracker whose announce URL is `tracker_url` for the torrent
/// `info_hash` (BEP 48): one GET of its scrape URL under the same limits as
/// [`announce`].
///
/// An announce URL without a scrape counterpart ([`scrape_url`]) is
/// [`TrackerError::BadUrl`], before any traffic.
pub fn scrape(
    tracker_url: &str,
    info_hash: &[u8; 20],
    timeouts: &HttpTimeouts,
) -> Result<ScrapeStats, TrackerError> {
    check_scheme(tracker_url)?;
    let base = scrape_url(tracker_url).ok_or_else(|| {
        TrackerError::BadUrl(
            "no scrape URL: the last path segment does not start with \"announce\"".into(),
        )
    })?;
    let body = get(
        &append_query(&base, &scrape_query(&[*info_hash])),
        timeouts,
        None,
    )?;
    parse_scrape_response(&body, info_hash)
}

/// The host (as written; an IPv6 literal without its brackets) and port of an
/// `http://` or `https://` URL (80 and 443 when none is written), so the
/// caller can look the name up before announcing; `None` for anything else.
pub fn host_and_port(url: &str) -> Option<(String, u16)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let default_port = match uri.scheme_str()?.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host().filter(|host| !host.is_empty())?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    Some((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}

/// Refuses URLs this module cannot fetch. The error never repeats the URL:
/// a private tracker's URL holds the user's passkey, and errors get logged.
fn check_scheme(url: &str) -> Result<(), TrackerError> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") => Ok(()),
        Some("https") if cfg!(feature = "https") => Ok(()),
        Some("https") => Err(TrackerError::BadUrl(
            "https trackers need the https feature".into(),
        )),
        Some(other) => Err(TrackerError::BadUrl(format!(
            "scheme \"{}\" is not http or https",
            other.escape_debug()
        ))),
        None => Err(TrackerError::BadUrl("no scheme (http://...)".into())),
    }
}

/// One GET of `url`, returning the body of a 200 reply.
fn get(
    url: &str,
    timeouts: &HttpTimeouts,
    ca: Option<&TrackerCa>,
) -> Result<Vec<u8>, TrackerError> {
    let mut response = agent(timeouts, ca).get(url).call().map_err(from_ureq)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(TrackerError::Status(status));
    }
    // ureq refuses to read once `limit` bytes have been read, even at the end
    // of the body, so one byte more lets a body of exactly MAX_REPLY_BYTES through.
    let limit = u64::try_from(MAX_REPLY_BYTES).map_or(u64::MAX, |max| max.saturating_add(1));
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(from_ureq)
}

/// A fresh agent for one announce: no shared state between trackers.
fn agent(timeouts: &HttpTimeouts, ca: Option<&TrackerCa>) -> ureq::Agent {
    #[allow(unused_mut)]
    let mut builder = ureq::Agent::config_builder();
    #[cfg(feature = "https")]
    if let Some(ca) = ca {
        let roots = ureq::tls::RootCerts::new_with_certs(&ca.certs);
        builder = builder.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    #[cfg(not(feature = "https"))]
    let _ = ca;
    let config = builder
        .timeout_resolve(Some(RESOLVE_TIMEOUT))
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.total))
        // A 404 is a reply to report, not a transport failure.
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        // Announces go straight to the tracker: no proxy from HTTP_PROXY and
        // friends, whose settings were meant for other programs.
        .proxy(None)
        .user_agent(USER_AGENT)
        .build();
    ureq::Agent::new_with_config(config)
}

/// Sorts a `ureq` error into ours.
fn from_ureq(error: ureq::Error) -> TrackerError {
    match error {
        ureq::Error::BodyExceedsLimit(_) => TrackerError::TooLarge {
            limit_bytes: MAX_REPLY_BYTES,
        },
        ureq::Error::StatusCode(code) => TrackerError::Status(code),
        ureq::Error::BadUri(what) => TrackerError::BadUrl(what),
        ureq::Error::Http(error) => TrackerError::BadUrl(error.to_string()),
        ureq::Error::Timeout(which) => TrackerError::Transport(format!("timed out ({which})")),
        other => TrackerError::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::thread::{self, JoinHandle};
    use std::time::Instant;

    use super::*;
    use crate::tracker::Event;

    /// How long a test server waits for the client before giving up, so a
    /// failing test ends instead of hanging.
    const SERVER_PATIENCE: Duration = Duration::from_secs(10);

    /// Timeouts short enough to keep the tests fast.
    const SHORT: HttpTimeouts = HttpTimeouts {
        connect: Duration::from_millis(300),
        total: Duration::from_millis(300),
    };

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash:
                *b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a",
            peer_id: *b"-PL0001-%20%25~.-_ab",
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 1000,
            event: Event::Started,
            numwant: Some(50),
            key: None,
            tracker_id: None,
            ipv6: None,
        }
    }

    /// How a test server treats the one connection it accepts.
    enum Behaviour {
        /// Read the request head, then write these bytes and close.
        Reply(Vec<u8>),
        /// Read the request head, then wait (bounded) for the client to hang up.
        Silent,
        /// Close as soon as the connection is accepted.
        Hangup,
    }

    /// A one-connection HTTP server on 127.0.0.1. The thread returns the
    /// request line it received (empty for `Hangup`).
    fn serve_once(behaviour: Behaviour) -> (SocketAddr, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let Some(mut stream) = accept_within(&listener, SERVER_PATIENCE) else {
                return String::new();
            };
            stream.set_read_timeout(Some(SERVER_PATIENCE)).unwrap();
            stream.set_write_timeout(Some(SERVER_PATIENCE)).unwrap();
            if let Behaviour::Hangup = behaviour {
                return String::new();
            }
            let line = read_request_line(&mut stream);
            match behaviour {
                // The client may hang up mid-reply (oversized body): not our error.
                Behaviour::Reply(bytes) => drop(stream.write_all(&bytes)),
                // Returns when the client closes (EOF) or at the read timeout.
                Behaviour::Silent => drop(stream.read(&mut [0u8; 1])),
                Behaviour::Hangup => {}
            }
            line
        });
        (addr, handle)
    }

    /// Accepts one connection, giving up after `patience`.
    fn accept_within(listener: &TcpListener, patience: Duration) -> Option<TcpStream> {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return Some(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Reads up to the blank line that ends the request head; returns the
    /// first line.
    fn read_request_line(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head);
        head.lines().next().unwrap_or_default().to_owned()
    }

    fn http_reply(status: &str, body: &[u8]) -> Vec<u8> {
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(body);
        reply
    }

    const COMPACT_REPLY: &[u8] =
        b"d8:intervali900e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\x1a\xe2e";

    #[test]
    fn sends_the_url_byte_exact_and_parses_a_compact_reply() {
        let (addr, server) = serve_once(Behaviour::Reply(http_reply("200 OK", COMPACT_REPLY)));
        let base = format!("http://{addr}/announce?passkey=a%2Fb");
        let reply = announce(&base, &request(), &HttpTimeouts::default()).unwrap();
        let line = server.join().unwrap();

        let hash = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
        let peer_id = "-PL0001-%2520%2525~.-_ab";
        assert_eq!(
            line,
            format!(
                "GET /announce?passkey=a%2Fb&info_hash={hash}&peer_id={peer_id}&port=6881\
                 &uploaded=0&downloaded=0&left=1000&compact=1&no_peer_id=1&event=started\
                 &numwant=50 HTTP/1.1"
            )
        );
        assert_eq!(reply.interval, Duration::from_secs(900));
        assert_eq!(
            reply.peers,
            vec![
                "127.0.0.1:6881".parse::<SocketAddr>().unwrap(),
                "127.0.0.2:6882".parse().unwrap()
            ]
        );
    }

    #[test]
    fn host_and_port_reads_the_authority() {
        let cases = [
            (
                "http://tracker.example/announce",
                Some(("tracker.example", 80)),
            ),
            (
                "HTTPS://Tracker.Example/a?x=1",
                Some(("Tracker.Example", 443)),
            ),
            ("http://127.0.0.1:6969/announce", Some(("127.0.0.1", 6969))),
            ("http://[::1]:6969/announce", Some(("::1", 6969))),
            ("http://user:pw@host:81/announce", Some(("host", 81))),
            ("udp://host:6969", None),
            ("http:///announce", None),
            ("not a url", None),
        ];
        for (url, expected) in cases {
            let expected = expected.map(|(host, port)| (host.to_owned(), port));
            assert_eq!(host_and_port(url), expected, "{url}");
        }
    }

    #[test]
    fn a_failure_reason_reaches_the_caller() {
        let body = b"d14:failure reason7:go awaye";
        let (addr, server) = serve_once(Behaviour::Reply(http_reply("200 OK", body)));
        let result = announce(&format!("http://{addr}/announce"), &request(), &SHORT);
        server.join().unwrap();
        assert_eq!(result, Err(TrackerError::Failure("go away".into())));
    }

    #[test]
    fn a_404_is_a_status_error() {
        let reply = http_reply("404 Not Found", b"no such tracker");
        let (addr, server) = serve_once(Behaviour::Reply(reply));
        let result = announce(&format!("http://{addr}/announce"), &request(), &SHORT);
        server.join().unwrap();
        assert_eq!(result, Err(TrackerError::Status(404)));
    }

    #[test]
    fn a_body_over_the_limit_is_too_large() {
        let body = vec![b'x'; 2 * MAX_REPLY_BYTES];
        let (addr, server) = serve_once(Behaviour::Reply(http_reply("200 OK", &body)));
        let result = announce(
            &format!("http://{addr}/announce"),
            &request(),
            &HttpTimeouts::default(),
        );
        server.join().unwrap();
        assert_eq!(
            result,
            Err(TrackerError::TooLarge {
                limit_bytes: MAX_REPLY_BYTES
            })
        );
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read() {
        // A valid reply padded with an unknown key to exactly MAX_REPLY_BYTES.
        let head = "d8:intervali900e5:peers0:7:padding";
        let overhead = head.len() + ":".len() + "e".len();
        let mut pad_len = MAX_REPLY_BYTES - overhead;
        pad_len -= pad_len.to_string().len();
        let mut body = format!("{head}{pad_len}:").into_bytes();
        body.resize(body.len() + pad_len, b'x');
        body.push(b'e');
        assert_eq!(body.len(), MAX_REPLY_BYTES);

        let (addr, server) = serve_once(Behaviour::Reply(http_reply("200 OK", &body)));
        let result = announce(
            &format!("http://{addr}/announce"),
            &request(),
            &HttpTimeouts::default(),
        );
        server.join().unwrap();
        assert_eq!(result.unwrap().peers, vec![]);
    }

    #[test]
    fn a_silent_tracker_times_out_as_a_transport_error() {
        let (addr, server) = serve_once(Behaviour::Silent);
        let result = announce(&format!("http://{addr}/announce"), &request(), &SHORT);
        // The client has hung up, so the server's read ends and the join returns.
        server.join().unwrap();
        assert!(
            matches!(result, Err(TrackerError::Transport(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_tracker_that_hangs_up_is_a_transport_error() {
        let (addr, server) = serve_once(Behaviour::Hangup);
        let result = announce(&format!("http://{addr}/announce"), &request(), &SHORT);
        server.join().unwrap();
        assert!(
            matches!(result, Err(TrackerError::Transport(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_refused_connection_is_a_transport_error() {
        // Bind then drop a listener: nothing listens on that port any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let result = announce(&format!("http://{addr}/announce"), &request(), &SHORT);
        assert!(
            matches!(result, Err(TrackerError::Transport(_))),
            "{result:?}"
        );
    }

    #[test]
    fn scrape_gets_the_scrape_url_and_parses_the_reply() {
        let hash = request().info_hash;
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&hash);
        body.extend_from_slice(b"d8:completei3e10:downloadedi9e10:incompletei4eeee");
        let (addr, server) = serve_once(Behaviour::Reply(http_reply("200 OK", &body)));
        let url = format!("http://{addr}/t/announce.php?passkey=k#frag");
        let stats = scrape(&url, &hash, &HttpTimeouts::default()).unwrap();
        let line = server.join().unwrap();
        assert_eq!(
            line,
            "GET /t/scrape.php?passkey=k&info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A \
             HTTP/1.1"
        );
        assert_eq!(
            stats,
            ScrapeStats {
                seeders: 3,
                leechers: 4,
                completed: 9
            }
        );
    }

    #[test]
    fn scrape_refuses_a_url_without_a_scrape_counterpart() {
        let result = scrape("http://127.0.0.1:1/tracker", &[0; 20], &SHORT);
        assert!(matches!(result, Err(TrackerError::BadUrl(_))), "{result:?}");
    }

    #[test]
    fn urls_we_cannot_fetch_are_refused_before_any_traffic() {
        let cases = [
            "udp://127.0.0.1:1/announce",
            "127.0.0.1:1/announce",
            "ftp://127.0.0.1:1/announce",
        ];
        for url in cases {
            let result = announce(url, &request(), &SHORT);
            assert!(
                matches!(result, Err(TrackerError::BadUrl(_))),
                "{url}: {result:?}"
            );
        }
    }

    #[test]
    fn https_needs_the_feature() {
        let result = check_scheme("https://127.0.0.1:1/announce");
        if cfg!(feature = "https") {
            assert_eq!(result, Ok(()));
        } else {
            assert_eq!(
                result,
                Err(TrackerError::BadUrl(
                    "https trackers need the https feature".into()
                ))
            );
        }
        assert_eq!(check_scheme("HTTP://127.0.0.1:1/a"), Ok(()));
    }
}
