//! HTTP/1.1, as much as an RPC server needs: requests parsed from a byte
//! buffer under hard caps, responses written as bytes.
//!
//! Layer 0: pure. The session appends what a connection sent to its buffer
//! and calls [`parse_request`] until it says [`Parse::Incomplete`]. The head
//! is at most [`MAX_HEAD_BYTES`] with at most [`MAX_HEADERS`] headers; the
//! body is `Content-Length` bytes, at most [`MAX_BODY_BYTES`] (chunked
//! request bodies are refused with 411/501). Every violation is an
//! [`HttpError`] whose [`HttpError::status`] goes back before the
//! connection closes.

/// Longest request head (request line and headers): browsers send about
/// 1 KiB; 16 KiB leaves room for long cookies, and no more.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most header lines in one request: real clients send under 20.
pub const MAX_HEADERS: usize = 64;

/// Largest request body: `torrent-add` carries a whole `.torrent` file in
/// base64 (4/3 of its size); torrents over 7 MiB are rare, and a small box
/// must not buffer more than this per connection.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

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
        /// Answer `100 Continue` now (once per request).
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
    /// A body without `Content-Length` (chunked, say) (411).
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
pub fn parse_request(buf: &[u8]) -> Result<Parse, HttpError> {
    let _ = buf;
    Ok(Parse::Incomplete {
        send_continue: false,
    })
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (`Content-Length`, `Connection` and `Date`-free
    /// basics are added by [`Response::to_bytes`]).
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
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let _ = keep_alive;
        Vec::new()
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    let _ = status;
    ""
}
