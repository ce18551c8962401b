//! A small HTTP/1.1 client for web seeds, sans-IO: a range request
//! encoded to bytes, and its response parsed from bytes as they arrive.
//!
//! Layer 0: no socket, no clock. The session writes [`encode_request`]'s
//! bytes to its socket and feeds whatever it reads to
//! [`ResponseParser::feed`], which hands back the body bytes and, at the
//! end, whether the connection may be reused (keep-alive) or where a
//! redirect points. BEP 19 web seeds are plain HTTP servers asked for
//! `Range: bytes=a-b` of one file.
//!
//! What a response must be (anything else is an [`HttpError`], and the
//! caller backs the web seed off):
//!
//! - `206 Partial Content` with a `Content-Range` naming exactly the bytes
//!   asked for (and the file's length, when the server says it);
//! - `200 OK` only when the whole file was asked for (a server that
//!   ignores `Range` would otherwise send the whole file for every block);
//! - a body length from `Content-Length` (equal to the bytes asked for) or
//!   `Transfer-Encoding: chunked`, decoded here, never more than asked for;
//! - `301`, `302`, `303`, `307`, `308` with a `Location`: a redirect, at
//!   most [`MAX_REDIRECTS`] in a row, to `http://` only ([`follow`]).
//!
//! Hostile-input rules: the status line and headers together are capped
//! ([`MAX_HEAD_BYTES`]), as are a chunk-size line ([`MAX_CHUNK_LINE_BYTES`])
//! and the trailer ([`MAX_TRAILER_BYTES`]); lengths are parsed into `u64`
//! with checks and never size an allocation (body bytes are appended as
//! they come, at most what was asked for).

use std::fmt;

use super::url::{HttpUrl, Scheme, UrlError};

/// Longest status line plus headers: real servers send well under 1 KiB
/// for a range reply; 16 KiB stops a server that never ends its head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Longest chunk-size line (hex size plus chunk extensions): a size is at
/// most 16 hex digits, so anything near this is junk.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// Most bytes of trailer fields after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Most redirects followed in a row for one request (browsers allow 20;
/// a web seed that needs more than a few is broken or looping).
pub const MAX_REDIRECTS: u32 = 5;

/// Our `User-Agent`.
pub const USER_AGENT: &str = concat!("pollen/", env!("CARGO_PKG_VERSION"));

/// What one request asks for: bytes `first..=last` of a file of
/// `file_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeAsk {
    /// Offset of the first byte.
    pub first: u64,
    /// Offset of the last byte (inclusive, as in `Range`).
    pub last: u64,
    /// The file's length according to the torrent.
    pub file_len: u64,
}

impl RangeAsk {
    /// Bytes asked for.
    pub fn byte_len(&self) -> u64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }

    /// Whether the whole file is asked for.
    pub fn is_whole_file(&self) -> bool {
        self.first == 0 && self.last.checked_add(1) == Some(self.file_len)
    }
}

/// The bytes of `GET` for `ask` of the file at `url`, keep-alive.
pub fn encode_request(url: &HttpUrl, ask: &RangeAsk) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nRange: bytes={}-{}\r\n\
         User-Agent: {USER_AGENT}\r\nAccept-Encoding: identity\r\n\
         Connection: keep-alive\r\n\r\n",
        url.target,
        url.host_header(),
        ask.first,
        ask.last
    )
    .into_bytes()
}

/// The next hop of a redirect from `from` to `location`, counting `hops`
/// (redirects followed so far for this request): refused past
/// [`MAX_REDIRECTS`], or to anything but `http://`.
pub fn follow(hops: &mut u32, from: &HttpUrl, location: &str) -> Result<HttpUrl, HttpError> {
    *hops = hops.saturating_add(1);
    if *hops > MAX_REDIRECTS {
        return Err(HttpError::TooManyRedirects);
    }
    let next = from.join(location).map_err(HttpError::BadLocation)?;
    if next.scheme != Scheme::Http {
        return Err(HttpError::BadLocation(UrlError::Scheme));
    }
    Ok(next)
}

/// Why a response was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The status line and headers passed [`MAX_HEAD_BYTES`].
    HeadTooLong,
    /// The status line is not `HTTP/1.x NNN ...`.
    BadStatusLine,
    /// A header line without a colon, or not text.
    BadHeader,
    /// A status that is neither 200, 206 nor a redirect.
    Status(u16),
    /// `200` (the whole file) for a part of it: the server ignores `Range`.
    RangeIgnored,
    /// A `Content-Range` that is missing or not the range asked for.
    BadContentRange(String),
    /// A `Content-Length` that is not the length asked for.
    WrongLength {
        /// Bytes asked for.
        expected: u64,
        /// What the server said.
        got: String,
    },
    /// Neither `Content-Length` nor chunked.
    NoLength,
    /// A transfer coding other than `chunked`.
    UnsupportedEncoding(String),
    /// A chunk-size line that is not hex, or a chunk not followed by CRLF.
    BadChunk,
    /// A chunk-size line over [`MAX_CHUNK_LINE_BYTES`].
    ChunkLineTooLong,
    /// Trailer fields over [`MAX_TRAILER_BYTES`].
    TrailerTooLong,
    /// Chunks add up to more than asked for.
    BodyTooLong,
    /// The chunks ended before the bytes asked for.
    BodyTooShort {
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// A redirect without `Location`.
    RedirectWithoutLocation,
    /// A redirect to a URL pollen cannot follow.
    BadLocation(UrlError),
    /// More than [`MAX_REDIRECTS`] redirects in a row.
    TooManyRedirects,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLong => write!(f, "response head over {MAX_HEAD_BYTES} bytes"),
            HttpError::BadStatusLine => write!(f, "malformed status line"),
            HttpError::BadHeader => write!(f, "malformed header line"),
            HttpError::Status(code) => write!(f, "HTTP status {code}"),
            HttpError::RangeIgnored => write!(f, "server ignores Range (200 for a part)"),
            HttpError::BadContentRange(got) => write!(f, "wrong Content-Range {got:?}"),
            HttpError::WrongLength { expected, got } => {
                write!(f, "Content-Length {got:?}, asked for {expected} bytes")
            }
            HttpError::NoLength => write!(f, "no Content-Length and not chunked"),
            HttpError::UnsupportedEncoding(te) => write!(f, "unsupported Transfer-Encoding {te:?}"),
            HttpError::BadChunk => write!(f, "malformed chunk"),
            HttpError::ChunkLineTooLong => {
                write!(f, "chunk-size line over {MAX_CHUNK_LINE_BYTES} bytes")
            }
            HttpError::TrailerTooLong => write!(f, "trailer over {MAX_TRAILER_BYTES} bytes"),
            HttpError::BodyTooLong => write!(f, "more body than asked for"),
            HttpError::BodyTooShort { expected, got } => {
                write!(f, "body of {got} bytes, asked for {expected}")
            }
            HttpError::RedirectWithoutLocation => write!(f, "redirect without Location"),
            HttpError::BadLocation(e) => write!(f, "redirect not followed: {e}"),
            HttpError::TooManyRedirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Where a response stands after some bytes were fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    More,
    /// The whole body arrived; the connection may take the next request
    /// when `keep_alive`.
    Done {
        /// The server keeps the connection open.
        keep_alive: bool,
    },
    /// A redirect to this `Location` (the connection is not reused).
    Redirect(String),
}

/// Where the parser is in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading the status line and headers.
    Head,
    /// A body of known length: bytes still to come.
    Body { left: u64 },
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk: bytes still to come.
    ChunkData { left: u64 },
    /// After a chunk's data: how many of its CRLF were seen.
    ChunkEnd { seen: u8 },
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// Finished (or failed): nothing more is taken.
    Finished,
}

/// One response being parsed. See the module doc.
#[derive(Debug)]
pub struct ResponseParser {
    ask: RangeAsk,
    state: State,
    /// The head so far, or the current chunk-size or trailer line.
    line: Vec<u8>,
    /// Trailer bytes so far.
    trailer_len: usize,
    /// Body bytes delivered so far.
    delivered: u64,
    keep_alive: bool,
}

impl ResponseParser {
    /// A parser for the response to a request for `ask`.
    pub fn new(ask: RangeAsk) -> ResponseParser {
        ResponseParser {
            ask,
            state: State::Head,
            line: Vec::new(),
            trailer_len: 0,
            delivered: 0,
            keep_alive: false,
        }
    }

    /// Body bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Takes bytes from `input`, appending body bytes to `body`. Returns
    /// how many bytes of `input` were used (less than all only once the
    /// response is complete: the rest is not part of it) and where the
    /// response stands. After an error or the end, nothing more is taken.
    pub fn feed(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<(usize, Progress), HttpError> {
        let mut used = 0;
        while used < input.len() || self.state == State::Finished {
            let rest = input.get(used..).unwrap_or_default();
            let (n, progress) = match self.step(rest, body) {
                Ok(step) => step,
                Err(e) => {
                    self.state = State::Finished;
                    return Err(e);
                }
            };
            used += n;
            if progress != Progress::More {
                self.state = State::Finished;
                return Ok((used, progress));
            }
            if self.state == State::Finished {
                return Ok((used, Progress::More));
            }
        }
        Ok((used, Progress::More))
    }

    /// One step in the current state over `input` (at least one byte,
    /// unless a body was complete already).
    fn step(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<(usize, Progress), HttpError> {
        match self.state {
            State::Head => self.step_head(input),
            State::Body { left } => {
                let n = take_len(left, input.len());
                body.extend_from_slice(input.get(..n).unwrap_or_default());
                self.delivered += n as u64;
                let left = left - n as u64;
                self.state = State::Body { left };
                Ok((n, self.done_if(left == 0)))
            }
            State::ChunkSize => self.step_chunk_size(input),
            State::ChunkData { left } => {
                let n = take_len(left, input.len());
                body.extend_from_slice(input.get(..n).unwrap_or_default());
                self.delivered += n as u64;
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::ChunkEnd { seen: 0 }
                } else {
                    State::ChunkData { left }
                };
                Ok((n, Progress::More))
            }
            State::ChunkEnd { seen } => {
                let want = if seen == 0 { b'\r' } else { b'\n' };
                if input.first() != Some(&want) {
                    return Err(HttpError::BadChunk);
                }
                self.state = if seen == 0 {
                    State::ChunkEnd { seen: 1 }
                } else {
                    State::ChunkSize
                };
                Ok((1, Progress::More))
            }
            State::Trailer => self.step_trailer(input),
            State::Finished => Ok((0, Progress::More)),
        }
    }

    /// `Done` when `complete`, else `More`.
    fn done_if(&self, complete: bool) -> Progress {
        if complete {
            Progress::Done {
                keep_alive: self.keep_alive,
            }
        } else {
            Progress::More
        }
    }

    /// Collects the head byte by byte until its blank line, then judges it.
    fn step_head(&mut self, input: &[u8]) -> Result<(usize, Progress), HttpError> {
        for (i, &byte) in input.iter().enumerate() {
            if self.line.len() >= MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLong);
            }
            self.line.push(byte);
            if self.line.ends_with(b"\r\n\r\n") {
                let head = std::mem::take(&mut self.line);
                let progress = self.judge_head(&head)?;
                return Ok((i + 1, progress));
            }
        }
        Ok((input.len(), Progress::More))
    }

    /// Reads the status and headers and sets up the body.
    fn judge_head(&mut self, head: &[u8]) -> Result<Progress, HttpError> {
        let text = std::str::from_utf8(head).map_err(|_| HttpError::BadHeader)?;
        let mut lines = text.split("\r\n");
        let (version, status) = parse_status_line(lines.next().unwrap_or_default())?;
        let mut headers = Headers::default();
        for line in lines.filter(|l| !l.is_empty()) {
            headers.add(line)?;
        }
        self.keep_alive = match headers.connection.as_deref() {
            Some(c) if c.eq_ignore_ascii_case("close") => false,
            Some(c) if c.eq_ignore_ascii_case("keep-alive") => true,
            _ => version == 1,
        };
        let expected = match status {
            206 => {
                let range = headers
                    .content_range
                    .as_deref()
                    .ok_or_else(|| HttpError::BadContentRange(String::new()))?;
                check_content_range(range, &self.ask)?;
                self.ask.byte_len()
            }
            200 if self.ask.is_whole_file() => self.ask.byte_len(),
            200 => return Err(HttpError::RangeIgnored),
            301 | 302 | 303 | 307 | 308 => {
                let location = headers.location.ok_or(HttpError::RedirectWithoutLocation)?;
                return Ok(Progress::Redirect(location));
            }
            other => return Err(HttpError::Status(other)),
        };
        if let Some(te) = headers.transfer_encoding {
            if !te.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::UnsupportedEncoding(te));
            }
            self.state = State::ChunkSize;
            return Ok(Progress::More);
        }
        let length = headers.content_length.ok_or(HttpError::NoLength)?;
        if length.parse::<u64>().ok() != Some(expected) {
            return Err(HttpError::WrongLength {
                expected,
                got: length,
            });
        }
        self.state = State::Body { left: expected };
        Ok(self.done_if(expected == 0))
    }

    /// Collects a chunk-size line; a size of 0 starts the trailer.
    fn step_chunk_size(&mut self, input: &[u8]) -> Result<(usize, Progress), HttpError> {
        for (i, &byte) in input.iter().enumerate() {
            if self.line.len() >= MAX_CHUNK_LINE_BYTES {
                return Err(HttpError::ChunkLineTooLong);
            }
            self.line.push(byte);
            if self.line.ends_with(b"\r\n") {
                let line = std::mem::take(&mut self.line);
                let size = parse_chunk_size(&line)?;
                let total = self.delivered.checked_add(size);
                if total.is_none_or(|t| t > self.ask.byte_len()) {
                    return Err(HttpError::BodyTooLong);
                }
                self.state = if size == 0 {
                    State::Trailer
                } else {
                    State::ChunkData { left: size }
                };
                return Ok((i + 1, Progress::More));
            }
        }
        Ok((input.len(), Progress::More))
    }

    /// Skips trailer lines; the blank line ends the response.
    fn step_trailer(&mut self, input: &[u8]) -> Result<(usize, Progress), HttpError> {
        for (i, &byte) in input.iter().enumerate() {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(HttpError::TrailerTooLong);
            }
            self.line.push(byte);
            if self.line.ends_with(b"\r\n") {
                let blank = self.line.len() == 2;
                self.line.clear();
                if blank {
                    if self.delivered != self.ask.byte_len() {
                        return Err(HttpError::BodyTooShort {
                            expected: self.ask.byte_len(),
                            got: self.delivered,
                        });
                    }
                    return Ok((i + 1, self.done_if(true)));
                }
            }
        }
        Ok((input.len(), Progress::More))
    }
}

/// `min(left, available)` as a `usize` (it fits: it is at most `available`).
fn take_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// The minor version (0 or 1) and status code of `HTTP/1.x NNN reason`.
fn parse_status_line(line: &str) -> Result<(u8, u16), HttpError> {
    let mut parts = line.splitn(3, ' ');
    let version = match parts.next() {
        Some("HTTP/1.1") => 1,
        Some("HTTP/1.0") => 0,
        _ => return Err(HttpError::BadStatusLine),
    };
    let code = parts.next().unwrap_or_default();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadStatusLine);
    }
    let code = code.parse().map_err(|_| HttpError::BadStatusLine)?;
    Ok((version, code))
}

/// The headers a web seed response is judged by.
#[derive(Debug, Default)]
struct Headers {
    content_length: Option<String>,
    content_range: Option<String>,
    transfer_encoding: Option<String>,
    location: Option<String>,
    connection: Option<String>,
}

impl Headers {
    /// Takes one `Name: value` line. A repeated `Content-Length` must
    /// repeat the same value (RFC 9112 §6.3).
    fn add(&mut self, line: &str) -> Result<(), HttpError> {
        let (name, value) = line.split_once(':').ok_or(HttpError::BadHeader)?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ') {
            return Err(HttpError::BadHeader);
        }
        let value = value.trim_matches([' ', '\t']).to_string();
        let slot = match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                if let Some(old) = &self.content_length {
                    if *old != value {
                        return Err(HttpError::WrongLength {
                            expected: 0,
                            got: format!("{old}, {value}"),
                        });
                    }
                }
                &mut self.content_length
            }
            "content-range" => &mut self.content_range,
            "transfer-encoding" => &mut self.transfer_encoding,
            "location" => &mut self.location,
            "connection" => &mut self.connection,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }
}

/// Checks `bytes a-b/total` against what was asked (`total` may be `*`).
fn check_content_range(value: &str, ask: &RangeAsk) -> Result<(), HttpError> {
    let bad = || HttpError::BadContentRange(value.chars().take(80).collect());
    let rest = value.strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = rest.split_once('/').ok_or_else(bad)?;
    let (first, last) = range.split_once('-').ok_or_else(bad)?;
    let number = |s: &str| -> Result<u64, HttpError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if number(first)? != ask.first || number(last)? != ask.last {
        return Err(bad());
    }
    if total != "*" && number(total)? != ask.file_len {
        return Err(bad());
    }
    Ok(())
}

/// The size of a chunk-size line (`hex[;ext]\r\n`).
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
    let hex = std::str::from_utf8(hex).map_err(|_| HttpError::BadChunk)?;
    let hex = hex.trim_matches([' ', '\t']);
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HttpError::BadChunk);
    }
    u64::from_str_radix(hex, 16).map_err(|_| HttpError::BadChunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASK: RangeAsk = RangeAsk {
        first: 10,
        last: 19,
        file_len: 100,
    };

    /// Feeds `response` in pieces cut at `cuts`, returning the body and
    /// the end, or the first error.
    fn feed_in_parts(
        ask: RangeAsk,
        response: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Progress, usize), HttpError> {
        let mut parser = ResponseParser::new(ask);
        let mut body = Vec::new();
        let mut start = 0;
        let mut used_total = 0;
        for &end in cuts.iter().chain(std::iter::once(&response.len())) {
            let part = &response[start..end];
            start = end;
            let (used, progress) = parser.feed(part, &mut body)?;
            used_total += used;
            if progress != Progress::More {
                return Ok((body, progress, used_total));
            }
        }
        Ok((body, Progress::More, used_total))
    }

    fn whole(ask: RangeAsk, response: &[u8]) -> Result<(Vec<u8>, Progress, usize), HttpError> {
        feed_in_parts(ask, response, &[])
    }

    const PARTIAL: &[u8] = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\n\
        Content-Length: 10\r\n\r\n0123456789";

    const CHUNKED: &[u8] = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/*\r\n\
        Transfer-Encoding: chunked\r\n\r\n4;ext=1\r\n0123\r\n6\r\n456789\r\n0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn request_names_the_range_host_and_keep_alive() {
        let url = HttpUrl::parse("http://h:8080/d/f%20g").unwrap();
        let text = String::from_utf8(encode_request(&url, &ASK)).unwrap();
        assert!(text.starts_with("GET /d/f%20g HTTP/1.1\r\nHost: h:8080\r\n"));
        assert!(text.contains("\r\nRange: bytes=10-19\r\n"));
        assert!(text.contains("\r\nConnection: keep-alive\r\n"));
        assert!(text.contains("\r\nUser-Agent: pollen/"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn partial_content_is_parsed_whole_and_split_at_every_byte() {
        for response in [PARTIAL, CHUNKED] {
            let expected = (b"0123456789".to_vec(), Progress::Done { keep_alive: true });
            let (body, progress, used) = whole(ASK, response).unwrap();
            assert_eq!((body, progress), expected.clone());
            assert_eq!(used, response.len());
            for cut in 0..=response.len() {
                let (body, progress, used) = feed_in_parts(ASK, response, &[cut]).unwrap();
                assert_eq!((body, progress), expected.clone(), "cut at {cut}");
                assert_eq!(used, response.len());
            }
            let every: Vec<usize> = (1..response.len()).collect();
            let (body, progress, _) = feed_in_parts(ASK, response, &every).unwrap();
            assert_eq!((body, progress), expected);
        }
    }

    #[test]
    fn bytes_after_the_response_are_not_taken() {
        let mut response = PARTIAL.to_vec();
        response.extend_from_slice(b"HTTP/1.1 206");
        let (_, progress, used) = whole(ASK, &response).unwrap();
        assert_eq!(progress, Progress::Done { keep_alive: true });
        assert_eq!(used, PARTIAL.len());
    }

    #[test]
    fn connection_close_and_http_1_0_are_not_reused() {
        let close = b"HTTP/1.1 206 OK\r\nConnection: close\r\nContent-Range: bytes 10-19/100\r\n\
            Content-Length: 10\r\n\r\n0123456789";
        assert_eq!(
            whole(ASK, close).unwrap().1,
            Progress::Done { keep_alive: false }
        );
        let old = b"HTTP/1.0 206 OK\r\nContent-Range: bytes 10-19/100\r\n\
            Content-Length: 10\r\n\r\n0123456789";
        assert_eq!(
            whole(ASK, old).unwrap().1,
            Progress::Done { keep_alive: false }
        );
    }

    #[test]
    fn whole_file_200_only_when_the_whole_file_was_asked() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd";
        let all = RangeAsk {
            first: 0,
            last: 3,
            file_len: 4,
        };
        assert_eq!(whole(all, ok).unwrap().0, b"abcd");
        assert_eq!(whole(ASK, ok).unwrap_err(), HttpError::RangeIgnored);
    }

    #[test]
    fn wrong_content_range_is_refused() {
        for range in [
            "bytes 0-9/100",
            "bytes 10-20/100",
            "bytes 10-19/99",
            "bytes 10-19",
            "",
            "items 10-19/100",
            "bytes -19/100",
        ] {
            let response = format!(
                "HTTP/1.1 206 P\r\nContent-Range: {range}\r\nContent-Length: 10\r\n\r\n0123456789"
            );
            assert!(
                matches!(
                    whole(ASK, response.as_bytes()),
                    Err(HttpError::BadContentRange(_))
                ),
                "{range}"
            );
        }
        let missing = b"HTTP/1.1 206 P\r\nContent-Length: 10\r\n\r\n0123456789";
        assert!(matches!(
            whole(ASK, missing),
            Err(HttpError::BadContentRange(_))
        ));
    }

    #[test]
    fn lengths_must_match_what_was_asked() {
        let short =
            b"HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/100\r\nContent-Length: 9\r\n\r\n";
        assert!(matches!(
            whole(ASK, short),
            Err(HttpError::WrongLength { .. })
        ));
        let none = b"HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/100\r\n\r\n";
        assert_eq!(whole(ASK, none).unwrap_err(), HttpError::NoLength);
        let twice = b"HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/100\r\nContent-Length: 10\r\n\
            Content-Length: 11\r\n\r\n";
        assert!(matches!(
            whole(ASK, twice),
            Err(HttpError::WrongLength { .. })
        ));
        let gzip =
            b"HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/100\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert!(matches!(
            whole(ASK, gzip),
            Err(HttpError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn chunked_bodies_are_bounded_and_checked() {
        let head = "HTTP/1.1 206 P\r\nContent-Range: bytes 10-19/100\r\nTransfer-Encoding: chunked\r\n\r\n";
        let cases: &[(&str, HttpError)] = &[
            ("B\r\n", HttpError::BodyTooLong),
            ("ffffffffffffffff\r\n", HttpError::BodyTooLong),
            ("10000000000000000\r\n", HttpError::BadChunk),
            ("zz\r\n", HttpError::BadChunk),
            ("\r\n", HttpError::BadChunk),
            ("2\r\nabXX", HttpError::BadChunk),
            (
                "2\r\nab\r\n0\r\n\r\n",
                HttpError::BodyTooShort {
                    expected: 10,
                    got: 2,
                },
            ),
        ];
        for (chunks, error) in cases {
            let response = format!("{head}{chunks}");
            assert_eq!(
                whole(ASK, response.as_bytes()).unwrap_err(),
                *error,
                "{chunks:?}"
            );
        }
        let long_line = format!("{head}{}", "0".repeat(MAX_CHUNK_LINE_BYTES + 1));
        assert_eq!(
            whole(ASK, long_line.as_bytes()).unwrap_err(),
            HttpError::ChunkLineTooLong
        );
        let long_trailer = format!(
            "{head}A\r\n0123456789\r\n0\r\n{}",
            "x".repeat(MAX_TRAILER_BYTES + 1)
        );
        assert_eq!(
            whole(ASK, long_trailer.as_bytes()).unwrap_err(),
            HttpError::TrailerTooLong
        );
    }

    #[test]
    fn oversize_and_malformed_heads_are_refused() {
        let mut huge = b"HTTP/1.1 206 P\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        assert_eq!(whole(ASK, &huge).unwrap_err(), HttpError::HeadTooLong);
        assert_eq!(
            whole(ASK, b"HTTP/2 206 P\r\n\r\n").unwrap_err(),
            HttpError::BadStatusLine
        );
        assert_eq!(
            whole(ASK, b"HTTP/1.1 2x6 P\r\n\r\n").unwrap_err(),
            HttpError::BadStatusLine
        );
        assert_eq!(
            whole(ASK, b"HTTP/1.1 206 P\r\nNoColon\r\n\r\n").unwrap_err(),
            HttpError::BadHeader
        );
        assert_eq!(
            whole(ASK, b"HTTP/1.1 206 P\r\n\xff: x\r\n\r\n").unwrap_err(),
            HttpError::BadHeader
        );
    }

    #[test]
    fn error_statuses_are_errors() {
        for code in [404, 403, 416, 500, 503, 100, 204] {
            let response = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(
                whole(ASK, response.as_bytes()).unwrap_err(),
                HttpError::Status(code)
            );
        }
    }

    #[test]
    fn nothing_is_taken_after_an_error() {
        let mut parser = ResponseParser::new(ASK);
        let mut body = Vec::new();
        assert!(parser.feed(b"HTTP/1.1 404 N\r\n\r\n", &mut body).is_err());
        assert_eq!(
            parser.feed(PARTIAL, &mut body).unwrap(),
            (0, Progress::More)
        );
        assert!(body.is_empty());
    }

    #[test]
    fn redirects_are_followed_up_to_the_cap_and_to_http_only() {
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            whole(ASK, redirect).unwrap().1,
            Progress::Redirect("/elsewhere".into())
        );
        let bare = b"HTTP/1.1 301 Moved\r\n\r\n";
        assert_eq!(
            whole(ASK, bare).unwrap_err(),
            HttpError::RedirectWithoutLocation
        );

        let mut url = HttpUrl::parse("http://h/a").unwrap();
        let mut hops = 0;
        for _ in 0..MAX_REDIRECTS {
            url = follow(&mut hops, &url, "/a").unwrap();
        }
        assert_eq!(
            follow(&mut hops, &url, "/a").unwrap_err(),
            HttpError::TooManyRedirects
        );
        let mut hops = 0;
        assert!(matches!(
            follow(&mut hops, &url, "https://h/a"),
            Err(HttpError::BadLocation(UrlError::Scheme))
        ));
    }
}
