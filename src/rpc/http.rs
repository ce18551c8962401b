//! HTTP/1.1 (RFC 9110, 9112), as much as an RPC server needs: requests
//! parsed from a byte buffer under hard caps, responses written as bytes.
//!
//! Layer 0: pure. The session appends what a connection sent to its buffer
//! and calls [`parse_request`] until it says [`Parse::Incomplete`]. The head
//! is at most [`MAX_HEAD_BYTES`] with at most [`MAX_HEADERS`] headers; the
//! body is `Content-Length` bytes, at most [`MAX_BODY_BYTES`] (chunked
//! request bodies are refused with 411). Every violation is an
//! [`HttpError`] whose [`HttpError::status`] goes back before the
//! connection closes.

/// Longest request head (request line and headers): browsers send about
/// 1 KiB; 16 KiB leaves room for long cookies, and no more.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most header lines in one request: real clients send under 20.
pub const MAX_HEADERS: usize = 64;

/// Largest request body: `torrent-add` carries a whole `.torrent` file in
/// base64 (4/3 of its size), and pollen takes torrent files up to
/// [`crate::metainfo::MAX_TORRENT_BYTES`] (10 MiB): 14 MiB of base64 plus
/// the JSON around it. The session also caps what all connections buffer
/// together (`session/rpc.rs`), so a small box never holds many of these.
pub const MAX_BODY_BYTES: usize = 15 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// The request target's path, without the query (`/transmission/rpc`).
    pub path: String,
    /// The query string after `?`, if any, undecoded.
    pub query: Option<String>,
    /// Header names (lowercase) and values (trimmed), in order.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
    /// The connection may carry another request after this one (HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `keep-alive`).
    pub keep_alive: bool,
}

impl Request {
    /// The first header called `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What [`parse_request`] found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not a whole request yet. `send_continue`: the head is complete and
    /// asks `Expect: 100-continue`, so the client waits for a `100
    /// Continue` before it sends the body.
    Incomplete {
        /// Answer `100 Continue` now. It stays `true` on every call until the
        /// body is in, so the session remembers that it sent [`CONTINUE`]
        /// and sends it once per request.
        send_continue: bool,
    },
    /// A whole request, and how many bytes of the buffer it used.
    Done(Request, usize),
}

/// Why a request is refused before it is read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The head passed [`MAX_HEAD_BYTES`] (431).
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] headers (431).
    TooManyHeaders,
    /// `Content-Length` over [`MAX_BODY_BYTES`] (413).
    BodyTooLarge,
    /// A `Transfer-Encoding` header (chunked, say): only bodies framed by
    /// `Content-Length` are read (411).
    LengthRequired,
    /// Not HTTP/1.x, or a line that does not parse (400), named.
    Malformed(&'static str),
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::LengthRequired => 411,
            HttpError::Malformed(_) => 400,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::HeadTooLarge => write!(f, "request head over {MAX_HEAD_BYTES} bytes"),
            HttpError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} headers"),
            HttpError::BodyTooLarge => write!(f, "request body over {MAX_BODY_BYTES} bytes"),
            HttpError::LengthRequired => f.write_str("a body needs Content-Length"),
            HttpError::Malformed(what) => write!(f, "malformed request: {what}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Parses the first request in `buf`.
///
/// Call it again, with more bytes appended, while it answers
/// [`Parse::Incomplete`]; on [`Parse::Done`] drop the bytes it used from
/// the front of the buffer (a pipelined request may follow). Blank lines
/// before the request line are skipped (RFC 9112 §2.2), and count in the
/// bytes used. Lines may end in CRLF or a bare LF; a CR anywhere else is
/// refused.
///
/// Refused ([`HttpError`]): a request line other than `METHOD SP TARGET
/// SP HTTP/1.0|HTTP/1.1`, a target not starting with `/` (after an
/// absolute-form `http://host` is cut off), a folded or colon-less header
/// line, a header name that is not a token, a header value with a control
/// byte or not UTF-8, two `Host` headers, a `Content-Length` that is not
/// digits or two that differ, any `Transfer-Encoding`.
///
/// The head is scanned only up to [`MAX_HEAD_BYTES`]: a buffer that long
/// without the blank line ending the head is [`HttpError::HeadTooLarge`]
/// at once, so a slow client cannot make the buffer grow. Nothing is
/// allocated for the body until all of it is in `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parse, HttpError> {
    let Some(head) = find_head(buf)? else {
        return Ok(Parse::Incomplete {
            send_continue: false,
        });
    };
    let mut lines = head.lines.into_iter();
    let Some(request_line) = lines.next() else {
        return Err(HttpError::Malformed("no request line"));
    };
    let (method, target, version) = parse_request_line(request_line)?;
    let (path, query) = split_target(target)?;
    let headers = lines.map(parse_header).collect::<Result<Vec<_>, _>>()?;
    let framing = Framing::of(&headers, version)?;

    let end = head.len.saturating_add(framing.body_len);
    let Some(body) = buf.get(head.len..end) else {
        return Ok(Parse::Incomplete {
            send_continue: framing.expects_continue,
        });
    };
    let request = Request {
        method: method.to_owned(),
        path,
        query,
        headers,
        body: body.to_vec(),
        keep_alive: framing.keep_alive,
    };
    Ok(Parse::Done(request, end))
}

/// The bytes `100 Continue` takes on the wire: what the session writes
/// when [`parse_request`] answers `Incomplete { send_continue: true }`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The HTTP version of a request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// `HTTP/1.0`: the connection closes unless asked to stay open.
    Http10,
    /// `HTTP/1.1`: the connection stays open unless asked to close.
    Http11,
}

/// A complete head: its lines (terminators cut off, leading blank lines
/// skipped) and its length in the buffer, blank line included.
struct Head<'a> {
    lines: Vec<&'a [u8]>,
    len: usize,
}

/// Finds the head at the front of `buf`, or `None` if it has not all
/// arrived yet.
fn find_head(buf: &[u8]) -> Result<Option<Head<'_>>, HttpError> {
    let window = buf.get(..MAX_HEAD_BYTES).unwrap_or(buf);
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    while let Some(rest) = window.get(start..) {
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let raw = rest.get(..newline).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.contains(&b'\r') {
            return Err(HttpError::Malformed("bare CR in the head"));
        }
        start = start.saturating_add(newline).saturating_add(1);
        if line.is_empty() {
            if lines.is_empty() {
                continue; // a blank line before the request line
            }
            return Ok(Some(Head { lines, len: start }));
        }
        if lines.len() > MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        lines.push(line);
    }
    if buf.len() >= MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    Ok(None)
}

/// Splits `METHOD SP TARGET SP HTTP/1.x`.
fn parse_request_line(line: &[u8]) -> Result<(&str, &str, Version), HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.iter().copied().all(is_token_byte) {
        return Err(HttpError::Malformed("method is not a token"));
    }
    if target.is_empty() || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::Malformed("request target is not visible ASCII"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return Err(HttpError::Malformed("not HTTP/1.0 or HTTP/1.1")),
    };
    // Both were checked to be ASCII just above.
    let method = std::str::from_utf8(method).map_err(|_| HttpError::Malformed("method"))?;
    let target = std::str::from_utf8(target).map_err(|_| HttpError::Malformed("target"))?;
    Ok((method, target, version))
}

/// Splits a request target into its path and query; an absolute-form
/// target (`http://host:port/path?q`, as proxies send) is reduced to its
/// path first. The path must start with `/` (so `*`, `OPTIONS *`'s
/// target, is refused).
fn split_target(target: &str) -> Result<(String, Option<String>), HttpError> {
    let origin_form = match strip_scheme(target) {
        Some(after_scheme) => {
            let authority_end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
            let rest = after_scheme.get(authority_end..).unwrap_or_default();
            if rest.starts_with('?') || rest.is_empty() {
                format!("/{rest}")
            } else {
                rest.to_owned()
            }
        }
        None => target.to_owned(),
    };
    if !origin_form.starts_with('/') {
        return Err(HttpError::Malformed("request target does not start with /"));
    }
    Ok(match origin_form.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (origin_form, None),
    })
}

/// `target` after `http://` or `https://` (any case), if it starts so.
fn strip_scheme(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        if head.eq_ignore_ascii_case(scheme) {
            target.get(scheme.len()..)
        } else {
            None
        }
    })
}

/// One `name: value` line: the name lowercased, the value trimmed.
fn parse_header(line: &[u8]) -> Result<(String, String), HttpError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(HttpError::Malformed("folded header line (obs-fold)"));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(HttpError::Malformed("header line without a colon"));
    };
    let name = line.get(..colon).unwrap_or_default();
    let value = line.get(colon.saturating_add(1)..).unwrap_or_default();
    if name.is_empty() || !name.iter().copied().all(is_token_byte) {
        return Err(HttpError::Malformed("header name is not a token"));
    }
    let value = value.trim_ascii();
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HttpError::Malformed("control byte in a header value"));
    }
    let value =
        std::str::from_utf8(value).map_err(|_| HttpError::Malformed("header value not UTF-8"))?;
    let name = std::str::from_utf8(name).map_err(|_| HttpError::Malformed("header name"))?;
    Ok((name.to_ascii_lowercase(), value.to_owned()))
}

/// A `tchar` of RFC 9110 §5.6.2: what method names and header names are
/// made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the headers say about the body and the connection.
struct Framing {
    /// `Content-Length`, checked against [`MAX_BODY_BYTES`]; 0 without one.
    body_len: usize,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    expects_continue: bool,
    /// See [`Request::keep_alive`].
    keep_alive: bool,
}

impl Framing {
    /// Reads `Transfer-Encoding`, `Content-Length`, `Host` (at most one),
    /// `Connection` and `Expect`.
    fn of(headers: &[(String, String)], version: Version) -> Result<Framing, HttpError> {
        let named = |name: &'static str| {
            headers
                .iter()
                .filter(move |(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if named("transfer-encoding").next().is_some() {
            return Err(HttpError::LengthRequired);
        }
        if named("host").count() > 1 {
            return Err(HttpError::Malformed("more than one Host header"));
        }
        let mut body_len: Option<u64> = None;
        for value in named("content-length") {
            let len = parse_content_length(value)?;
            if body_len.is_some_and(|seen| seen != len) {
                return Err(HttpError::Malformed("Content-Length headers that differ"));
            }
            body_len = Some(len);
        }
        let body_len = match body_len {
            None => 0,
            Some(len) => usize::try_from(len)
                .ok()
                .filter(|&len| len <= MAX_BODY_BYTES)
                .ok_or(HttpError::BodyTooLarge)?,
        };
        let has_token = |token: &str| {
            named("connection")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        let keep_alive =
            !has_token("close") && (version == Version::Http11 || has_token("keep-alive"));
        // RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored.
        let expects_continue = version == Version::Http11
            && body_len > 0
            && named("expect").any(|v| v.eq_ignore_ascii_case("100-continue"));
        Ok(Framing {
            body_len,
            expects_continue,
            keep_alive,
        })
    }
}

/// A `Content-Length` value: ASCII digits only. A number too big for a
/// `u64` saturates (it is over [`MAX_BODY_BYTES`] either way).
fn parse_content_length(value: &str) -> Result<u64, HttpError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Malformed("Content-Length is not a number"));
    }
    Ok(value.bytes().fold(0u64, |len, digit| {
        len.saturating_mul(10)
            .saturating_add(u64::from(digit.saturating_sub(b'0')))
    }))
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers. [`Response::to_bytes`] writes `Content-Length` and
    /// `Connection` itself, and no `Date` (layer 0 has no clock).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, a `Content-Type` and a body.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The response as bytes: status line, headers, `Content-Length`,
    /// `Connection: keep-alive` or `close`, then the body.
    ///
    /// A header whose name is not a token or whose value holds a CR or LF
    /// is left out (it could split the response), and so are
    /// `Content-Length` and `Connection` in [`Response::headers`]: this
    /// writes its own. A 1xx status is only its status line; a 204 has no
    /// `Content-Length` and no body (RFC 9110 §8.6).
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len().saturating_add(256));
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        if (100..200).contains(&self.status) {
            out.extend_from_slice(b"\r\n");
            return out;
        }
        for (name, value) in self.headers.iter().filter(|(n, v)| writable_header(n, v)) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        let body: &[u8] = if self.status == 204 {
            &[]
        } else {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
            &self.body
        };
        let connection = if keep_alive { "keep-alive" } else { "close" };
        out.extend_from_slice(format!("Connection: {connection}\r\n\r\n").as_bytes());
        out.extend_from_slice(body);
        out
    }
}

/// Whether a header from [`Response::headers`] goes out: a token name,
/// not one [`Response::to_bytes`] writes itself, and a value without CR
/// or LF.
fn writable_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(is_token_byte)
        && !name.eq_ignore_ascii_case("content-length")
        && !name.eq_ignore_ascii_case("connection")
        && !value.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// The reason phrase of a status code (RFC 9110 §15), for the codes the
/// RPC server answers with; `Unknown` for others.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: &[u8] = b"POST /transmission/rpc?x=1 HTTP/1.1\r\n\
        Host: 127.0.0.1:9091\r\n\
        Content-Type: application/json\r\n\
        X-Transmission-Session-Id:   abc  \r\n\
        Content-Length: 27\r\n\
        \r\n\
        {\"method\":\"session-stats\"}\n";

    fn done(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf) {
            Ok(Parse::Done(request, used)) => (request, used),
            other => panic!("expected a whole request, got {other:?}"),
        }
    }

    fn error(buf: &[u8]) -> HttpError {
        match parse_request(buf) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn incomplete(buf: &[u8]) -> bool {
        match parse_request(buf) {
            Ok(Parse::Incomplete { send_continue }) => send_continue,
            other => panic!("expected Incomplete, got {other:?}"),
        }
    }

    #[test]
    fn parse_reads_a_post_with_its_body() {
        let (request, used) = done(POST);
        assert_eq!(used, POST.len());
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/transmission/rpc");
        assert_eq!(request.query.as_deref(), Some("x=1"));
        assert_eq!(request.body, b"{\"method\":\"session-stats\"}\n");
        assert!(request.keep_alive);
        assert_eq!(
            request.headers.first(),
            Some(&("host".to_owned(), "127.0.0.1:9091".to_owned()))
        );
        assert_eq!(request.header("x-transmission-session-id"), Some("abc"));
        assert_eq!(request.header("X-TRANSMISSION-SESSION-ID"), Some("abc"));
        assert_eq!(request.header("absent"), None);
    }

    #[test]
    fn parse_split_at_every_byte_is_incomplete_until_whole_then_the_same() {
        let (whole, _) = done(POST);
        for cut in 0..POST.len() {
            let part = POST.get(..cut).unwrap_or_default();
            assert!(!incomplete(part), "cut at {cut}");
        }
        assert_eq!(done(POST), (whole, POST.len()));
    }

    #[test]
    fn parse_split_at_every_byte_with_bare_lf() {
        let text = b"POST /rpc HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc";
        for cut in 0..text.len() {
            assert!(
                !incomplete(text.get(..cut).unwrap_or_default()),
                "cut at {cut}"
            );
        }
        let (request, used) = done(text);
        assert_eq!(used, text.len());
        assert_eq!(request.body, b"abc");
        assert_eq!(request.header("host"), Some("h"));
    }

    #[test]
    fn parse_reads_pipelined_requests_one_at_a_time() {
        let mut buf = POST.to_vec();
        buf.extend_from_slice(b"GET /transmission/web/ HTTP/1.1\r\nHost: localhost\r\n\r\nGET");
        let (first, used) = done(&buf);
        assert_eq!(first.method, "POST");
        let rest = buf.get(used..).unwrap_or_default();
        let (second, used2) = done(rest);
        assert_eq!(second.method, "GET");
        assert_eq!(second.path, "/transmission/web/");
        assert_eq!(second.query, None);
        assert!(second.body.is_empty());
        assert_eq!(rest.get(used2..), Some(&b"GET"[..]));
        assert!(!incomplete(rest.get(used2..).unwrap_or_default()));
    }

    #[test]
    fn parse_skips_blank_lines_before_the_request_line() {
        let (request, used) = done(b"\r\n\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(request.path, "/");
        assert_eq!(used, 21);
        assert!(!incomplete(b"\r\n\r\n"));
    }

    #[test]
    fn parse_without_content_length_has_an_empty_body() {
        let (request, used) = done(b"POST /rpc HTTP/1.1\r\nHost: h\r\n\r\n{}");
        assert!(request.body.is_empty());
        assert_eq!(used, 31);
    }

    #[test]
    fn parse_http10_closes_unless_keep_alive_is_asked() {
        assert!(!done(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            done(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            done(b"GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !done(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn parse_http11_keeps_alive_unless_close_is_asked() {
        assert!(done(b"GET / HTTP/1.1\r\n\r\n").0.keep_alive);
        assert!(
            !done(b"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !done(b"GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        // `closed` is not the `close` token.
        assert!(
            done(b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn parse_expect_continue_asks_for_100_until_the_body_is_in() {
        let head = b"POST /rpc HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
        let cut = head.len().saturating_sub(1);
        assert!(!incomplete(head.get(..cut).unwrap_or_default()));
        assert!(incomplete(head));
        let mut buf = head.to_vec();
        buf.extend_from_slice(b"ab");
        assert!(incomplete(&buf));
        buf.extend_from_slice(b"cd");
        assert_eq!(done(&buf).0.body, b"abcd");
    }

    #[test]
    fn parse_expect_continue_is_ignored_on_http10_and_without_a_body() {
        assert!(!incomplete(
            b"POST /rpc HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        ));
        let (request, _) = done(b"POST /rpc HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(request.body.is_empty());
    }

    #[test]
    fn parse_reduces_an_absolute_target_to_its_path() {
        let path_of = |target: &str| {
            let (request, _) = done(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
            (request.path, request.query)
        };
        assert_eq!(
            path_of("http://h:9091/transmission/rpc"),
            ("/transmission/rpc".into(), None)
        );
        assert_eq!(
            path_of("HTTPS://h/a?b=c"),
            ("/a".into(), Some("b=c".into()))
        );
        assert_eq!(path_of("http://h"), ("/".into(), None));
        assert_eq!(path_of("http://h?q"), ("/".into(), Some("q".into())));
        assert_eq!(path_of("/a?"), ("/a".into(), Some(String::new())));
        assert_eq!(path_of("/a?b?c"), ("/a".into(), Some("b?c".into())));
    }

    #[test]
    fn parse_refuses_targets_that_are_not_paths() {
        for target in ["*", "index.html", "ftp://h/x", "http:/x"] {
            let text = format!("OPTIONS {target} HTTP/1.1\r\n\r\n");
            assert!(
                matches!(error(text.as_bytes()), HttpError::Malformed(_)),
                "{target}"
            );
        }
    }

    #[test]
    fn parse_refuses_bad_request_lines() {
        for line in [
            "GET /",
            "GET  / HTTP/1.1",
            "GET / HTTP/1.1 x",
            "GET / HTTP/2.0",
            "GET / http/1.1",
            "GET / HTTP/1.2",
            "G(T / HTTP/1.1",
            "GET /\u{e9} HTTP/1.1",
            "GET /a\tb HTTP/1.1",
        ] {
            let text = format!("{line}\r\n\r\n");
            let e = error(text.as_bytes());
            assert!(matches!(e, HttpError::Malformed(_)), "{line}: {e}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn parse_refuses_folded_and_broken_header_lines() {
        for header in [
            b" folded: x".to_vec(),
            b"\tfolded".to_vec(),
            b"no colon".to_vec(),
            b": empty name".to_vec(),
            b"space name : x".to_vec(),
            b"Name: a\x00b".to_vec(),
            b"Name: a\rb".to_vec(),
            b"Name: \xff\xfe".to_vec(),
        ] {
            let mut text = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
            text.extend_from_slice(&header);
            text.extend_from_slice(b"\r\n\r\n");
            assert!(
                matches!(error(&text), HttpError::Malformed(_)),
                "{}",
                String::from_utf8_lossy(&header)
            );
        }
    }

    #[test]
    fn parse_keeps_utf8_header_values_and_lowercases_names() {
        let (request, _) = done("GET / HTTP/1.1\r\nX-Name:\t caf\u{e9} \t\r\n\r\n".as_bytes());
        assert_eq!(request.headers, vec![("x-name".into(), "caf\u{e9}".into())]);
        let (request, _) = done(b"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n");
        assert_eq!(request.header("x-empty"), Some(""));
    }

    #[test]
    fn parse_refuses_a_second_host() {
        let e = error(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
        assert!(matches!(e, HttpError::Malformed(_)));
    }

    #[test]
    fn parse_refuses_a_head_of_16_kib_without_end() {
        let mut buf = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        buf.resize(MAX_HEAD_BYTES - 1, b'a');
        assert!(!incomplete(&buf));
        buf.push(b'a');
        assert_eq!(error(&buf), HttpError::HeadTooLarge);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(error(&buf), HttpError::HeadTooLarge);
    }

    #[test]
    fn parse_takes_a_head_of_exactly_the_cap() {
        let mut buf = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        buf.resize(MAX_HEAD_BYTES - 4, b'a');
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(buf.len(), MAX_HEAD_BYTES);
        assert_eq!(done(&buf).1, MAX_HEAD_BYTES);
    }

    #[test]
    fn parse_counts_headers_up_to_the_cap() {
        let with = |n: usize| {
            let mut text = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..n {
                text.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            text
        };
        let mut ok = with(MAX_HEADERS);
        ok.extend_from_slice(b"\r\n");
        assert_eq!(done(&ok).0.headers.len(), MAX_HEADERS);
        // Refused as soon as the extra line is in, before the head ends.
        let too_many = with(MAX_HEADERS + 1);
        assert_eq!(error(&too_many), HttpError::TooManyHeaders);
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn parse_refuses_a_body_over_the_cap_before_it_arrives() {
        let text = format!(
            "POST /rpc HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(error(text.as_bytes()), HttpError::BodyTooLarge);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        let text = format!("POST /rpc HTTP/1.1\r\nContent-Length: {MAX_BODY_BYTES}\r\n\r\n");
        assert!(!incomplete(text.as_bytes()));
    }

    #[test]
    fn parse_refuses_huge_content_length_digits_without_overflow() {
        let digits = "9".repeat(400);
        let text = format!("POST /rpc HTTP/1.1\r\nContent-Length: {digits}\r\n\r\n");
        assert_eq!(error(text.as_bytes()), HttpError::BodyTooLarge);
        let text = "POST /rpc HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n";
        assert_eq!(error(text.as_bytes()), HttpError::BodyTooLarge);
    }

    #[test]
    fn parse_refuses_content_length_that_is_not_digits() {
        for value in ["", "-1", "+5", "5 5", "0x10", "5,5", "\u{0663}"] {
            let text = format!("POST /rpc HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
            assert!(
                matches!(error(text.as_bytes()), HttpError::Malformed(_)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn parse_takes_equal_duplicate_content_lengths_and_refuses_differing_ones() {
        let (request, _) =
            done(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nab");
        assert_eq!(request.body, b"ab");
        let e = error(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
        assert!(matches!(e, HttpError::Malformed(_)));
    }

    #[test]
    fn parse_refuses_any_transfer_encoding() {
        for te in ["chunked", "gzip, chunked", "identity"] {
            let text = format!(
                "POST /rpc HTTP/1.1\r\nTransfer-Encoding: {te}\r\nContent-Length: 3\r\n\r\nabc"
            );
            assert_eq!(error(text.as_bytes()), HttpError::LengthRequired, "{te}");
        }
        assert_eq!(HttpError::LengthRequired.status(), 411);
    }

    #[test]
    fn parse_refuses_a_bare_cr() {
        assert!(matches!(
            error(b"GET / HTTP/1.1\rHost: h\r\n\r\n"),
            HttpError::Malformed(_)
        ));
        assert!(matches!(
            error(b"GET / HTTP/1.1\r\r\n\r\n"),
            HttpError::Malformed(_)
        ));
    }

    #[test]
    fn parse_never_panics_on_prefixes_of_odd_inputs() {
        let inputs: [&[u8]; 6] = [
            b"\xff\xfe\xfd\r\n\r\n",
            b"GET \xff HTTP/1.1\r\n\r\n",
            b"\n\n\n\n",
            b"::::\r\n::\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
            b"POST http:// HTTP/1.1\r\n\r\n",
        ];
        for input in inputs {
            for cut in 0..=input.len() {
                let _ = parse_request(input.get(..cut).unwrap_or_default());
            }
        }
        assert_eq!(done(b"POST http:// HTTP/1.1\r\n\r\n").0.path, "/");
    }

    #[test]
    fn response_writes_status_headers_length_connection_and_body() {
        let response = Response::new(200, "application/json", b"{}".to_vec())
            .with_header("X-Transmission-Session-Id", "abc");
        assert_eq!(
            response.to_bytes(true),
            b"HTTP/1.1 200 OK\r\n\
              Content-Type: application/json\r\n\
              X-Transmission-Session-Id: abc\r\n\
              Content-Length: 2\r\n\
              Connection: keep-alive\r\n\
              \r\n\
              {}"
        );
        let closing = Response::new(404, "text/plain", Vec::new()).to_bytes(false);
        assert_eq!(
            closing,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn response_drops_headers_that_could_split_it() {
        let response = Response::new(200, "text/plain", b"x".to_vec())
            .with_header("X-Evil", "a\r\nSet-Cookie: b")
            .with_header("X-Lf", "a\nb")
            .with_header("Bad Name", "v")
            .with_header("", "v")
            .with_header("content-length", "99")
            .with_header("Connection", "upgrade")
            .with_header("X-Fine", "ok");
        let text = String::from_utf8(response.to_bytes(true)).unwrap_or_default();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fine: ok\r\n\
             Content-Length: 1\r\nConnection: keep-alive\r\n\r\nx"
        );
    }

    #[test]
    fn response_204_and_100_carry_no_length_and_no_body() {
        let no_content = Response::new(204, "text/plain", b"dropped".to_vec()).to_bytes(true);
        assert_eq!(
            no_content,
            b"HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n\r\n"
        );
        let cont = Response {
            status: 100,
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert_eq!(cont.to_bytes(true), CONTINUE);
    }

    #[test]
    fn response_round_trips_through_a_response_reader() {
        // What a client sees: the status line, then Content-Length bytes.
        let body = vec![b'z'; 1000];
        let bytes = Response::new(200, "text/html", body.clone()).to_bytes(false);
        let text = String::from_utf8_lossy(&bytes);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("\r\nContent-Length: 1000\r\n"));
        assert!(head.ends_with("\r\nConnection: close"));
        assert_eq!(rest.as_bytes(), body.as_slice());
    }

    #[test]
    fn reason_names_the_codes_in_use() {
        for (code, phrase) in [
            (100, "Continue"),
            (200, "OK"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (409, "Conflict"),
            (411, "Length Required"),
            (413, "Content Too Large"),
            (421, "Misdirected Request"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
        ] {
            assert_eq!(reason(code), phrase);
        }
        assert_eq!(reason(418), "Unknown");
        assert_eq!(reason(0), "Unknown");
    }

    #[test]
    fn every_error_has_its_status_and_a_message() {
        for (e, status) in [
            (HttpError::HeadTooLarge, 431),
            (HttpError::TooManyHeaders, 431),
            (HttpError::BodyTooLarge, 413),
            (HttpError::LengthRequired, 411),
            (HttpError::Malformed("x"), 400),
        ] {
            assert_eq!(e.status(), status);
            assert!(!e.to_string().is_empty());
        }
    }
}
