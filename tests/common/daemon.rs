//! `pollen daemon` as a child process, and a small client of its RPC over
//! raw HTTP/1.1 on a loopback socket (the session-id handshake included),
//! for the daemon's tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::process::Pollen;

/// How long one HTTP exchange with the daemon may take in a test.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `pollen daemon`: killed on drop (through [`Pollen`]).
pub struct Daemon {
    pub process: Pollen,
    /// The RPC's address.
    pub rpc: SocketAddr,
    /// The peer port.
    pub peer_port: u16,
}

impl Daemon {
    /// Starts `pollen daemon --state STATE --dest DEST --rpc-bind
    /// 127.0.0.1:0 --port 0 --no-dht` plus `extra`, and reads the RPC
    /// address and the peer port from its first two lines.
    pub fn start(state: &Path, dest: &Path, extra: &[&str]) -> Daemon {
        let mut args: Vec<std::ffi::OsString> = vec![
            "daemon".into(),
            "--state".into(),
            state.into(),
            "--dest".into(),
            dest.into(),
        ];
        if !extra.contains(&"--rpc-bind") {
            args.extend(["--rpc-bind".into(), "127.0.0.1:0".into()]);
        }
        if !extra.contains(&"--port") {
            args.extend(["--port".into(), "0".into()]);
        }
        if !extra.contains(&"--dht-bootstrap") {
            args.push("--no-dht".into());
        }
        args.extend(extra.iter().map(std::ffi::OsString::from));
        let mut process = Pollen::start(args);
        let rpc_line = process.next_line();
        let rpc = rpc_line
            .strip_prefix("rpc: http://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {rpc_line:?}"));
        let peer_line = process.next_line();
        let peer_port = peer_line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected second line {peer_line:?}"));
        Daemon {
            process,
            rpc,
            peer_port,
        }
    }

    /// A client of its RPC.
    pub fn client(&self) -> Rpc {
        Rpc::new(self.rpc)
    }

    /// `127.0.0.1:PEER_PORT`, for another pollen's `--peer`.
    pub fn peer_arg(&self) -> String {
        format!("127.0.0.1:{}", self.peer_port)
    }
}

/// An HTTP answer: status, headers (names lowercase), body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `request` (raw bytes) on a new connection to `addr` and reads
/// one answer (up to `Content-Length`, or to the close).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).expect("connect to the RPC");
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    read_answer(&mut stream)
}

/// Reads one HTTP answer from `stream`.
pub fn read_answer(stream: &mut TcpStream) -> Answer {
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        assert!(Instant::now() < deadline, "no answer head in time");
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(
            n > 0,
            "connection closed before the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = buf[head_end..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                assert!(Instant::now() < deadline, "body not complete in time");
                let n = stream.read(&mut chunk).expect("read the body");
                assert!(n > 0, "connection closed mid-body");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            let _ = stream.read_to_end(&mut body);
        }
    }
    if status == 100 {
        // An interim answer: the real one follows.
        return read_answer(stream);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// A `POST /transmission/rpc` request with `body` and extra header lines.
pub fn rpc_request(addr: SocketAddr, body: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!(
        "POST /transmission/rpc HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request.into_bytes()
}

/// A client of the daemon's RPC: learns the session id from the first 409.
pub struct Rpc {
    pub addr: SocketAddr,
    session_id: String,
    /// `Authorization` header value, if credentials are needed.
    pub auth: Option<String>,
}

impl Rpc {
    pub fn new(addr: SocketAddr) -> Rpc {
        Rpc {
            addr,
            session_id: String::new(),
            auth: None,
        }
    }

    /// Calls `method` with `arguments`; returns the whole answer object
    /// (`result`, `arguments`, `tag`). Retries once after a 409.
    pub fn call(&mut self, method: &str, arguments: Value) -> Value {
        let body = json!({ "method": method, "arguments": arguments }).to_string();
        for _ in 0..2 {
            let mut headers = vec![("X-Transmission-Session-Id", self.session_id.as_str())];
            if let Some(auth) = &self.auth {
                headers.push(("Authorization", auth.as_str()));
            }
            let answer = exchange(self.addr, &rpc_request(self.addr, &body, &headers));
            if answer.status == 409 {
                self.session_id = answer
                    .header("x-transmission-session-id")
                    .expect("a 409 carries the session id")
                    .to_string();
                continue;
            }
            assert_eq!(
                answer.status,
                200,
                "{method}: {:?}",
                String::from_utf8_lossy(&answer.body)
            );
            return answer.json();
        }
        panic!("{method}: 409 twice");
    }

    /// `call`, asserting `result` is `success`; returns `arguments`.
    pub fn ok(&mut self, method: &str, arguments: Value) -> Value {
        let answer = self.call(method, arguments);
        assert_eq!(answer["result"], "success", "{method}: {answer}");
        answer["arguments"].clone()
    }

    /// `torrent-get` of `fields` for every torrent.
    pub fn torrents(&mut self, fields: &[&str]) -> Vec<Value> {
        let answer = self.ok("torrent-get", json!({ "fields": fields }));
        answer["torrents"].as_array().cloned().unwrap_or_default()
    }

    /// Adds a `.torrent` file by its bytes (base64 `metainfo`).
    pub fn add_file(&mut self, torrent: &Path, extra: Value) -> Value {
        let bytes = std::fs::read(torrent).unwrap();
        let mut args = json!({ "metainfo": base64(&bytes) });
        if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
            args.extend(extra.clone());
        }
        self.ok("torrent-add", args)
    }
}

/// `magnet:?xt=urn:btih:HEX&tr=TRACKER` (no name: it comes with the
/// metadata), the tracker URL percent-encoded.
pub fn tracked_magnet(meta: &pollen::metainfo::Metainfo, tracker: &str) -> String {
    let mut tr = String::new();
    for byte in tracker.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            tr.push(char::from(byte));
        } else {
            tr.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("magnet:?xt=urn:btih:{}&tr={tr}", meta.info_hash.to_hex())
}

/// Standard base64 with padding (the test's own, independent of pollen's).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
