//! `pollen daemon`'s RPC under hostile clients: the access checks in
//! Transmission's order and with its status codes (session id 409,
//! credentials 401, foreign `Host` 421, address allow-list 403), the
//! request caps (413, 431), wrong methods and paths (405, 404), and three
//! floods (1,000 idle connections, a client trickling its request a byte
//! at a time) that must be refused or timed out while the loop keeps
//! serving peers.
//!
//! "The loop keeps serving peers" is checked two ways: on the daemon's
//! peer port (a BitTorrent handshake for an info-hash it does not serve is
//! answered by a close, which only a loop that is still turning can send),
//! and by a real download (a torrent added through the RPC, its seeder
//! found through `pollen tracker`) that completes byte-identical while the
//! RPC is flooded and trickled at.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::daemon::{base64, exchange, read_answer, Answer, Daemon, HTTP_TIMEOUT};
use common::process::{assert_same_tree, wait_for, Pollen, Tracker};
use common::scripted_peer::ProbeLeecher;
use common::{pollen, write_tree, TempDir};
use pollen::create::{create_torrent, CreateOptions};

/// The RPC's path.
const RPC: &str = "/transmission/rpc";

/// A small RPC body. Its result does not matter here: only the access
/// layer's answer (status and headers) is checked.
const BODY: &str = r#"{"method":"session-get"}"#;

/// The session id header, as sent.
const SID: &str = "X-Transmission-Session-Id";

/// The session id header, as [`Answer::header`] finds it (lowercase).
const SID_LOWER: &str = "x-transmission-session-id";

/// How long the daemon may take to close a peer whose handshake names a
/// torrent it does not serve (a turning loop does it in one pass).
const PEER_ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The server's `RPC_REQUEST_TIMEOUT` (src/session/rpc.rs).
const RPC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's `MAX_RPC_CONNECTIONS` (src/session/rpc.rs).
const MAX_RPC_CONNECTIONS: usize = 64;

/// A daemon in a fresh temp dir (state and dest made), plus `extra` options.
fn start(tag: &str, extra: &[&str]) -> (TempDir, Daemon) {
    let tmp = TempDir::new(tag);
    let state = tmp.path().join("state");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    let daemon = Daemon::start(&state, &dest, extra);
    (tmp, daemon)
}

/// A raw HTTP/1.1 request with `Connection: close`, a `Host` of our
/// choosing and extra headers; a `Content-Length` when there is a body.
fn request(method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if !body.is_empty() {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// `POST /transmission/rpc` with [`BODY`], `Host: ADDR` and `headers`.
fn post(daemon: &Daemon, headers: &[(&str, &str)]) -> Answer {
    let host = daemon.rpc.to_string();
    exchange(daemon.rpc, &request("POST", RPC, &host, headers, BODY))
}

/// The session id, from the 409 a request without one gets.
fn session_id(daemon: &Daemon, headers: &[(&str, &str)]) -> String {
    let answer = post(daemon, headers);
    assert_eq!(answer.status, 409, "{}", describe(daemon, &answer));
    let id = answer
        .header(SID_LOWER)
        .unwrap_or_else(|| panic!("a 409 without the id: {}", describe(daemon, &answer)))
        .to_string();
    assert!(!id.is_empty(), "an empty session id");
    id
}

/// An answer and the daemon's log, for assertion messages.
fn describe(daemon: &Daemon, answer: &Answer) -> String {
    format!(
        "{} {:?} {:?}; daemon stderr:\n{}",
        answer.status,
        answer.headers,
        String::from_utf8_lossy(&answer.body),
        daemon.process.stderr()
    )
}

/// Asserts the answer is a 200 from the RPC (JSON), whatever its result.
fn assert_rpc_ok(daemon: &Daemon, answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", describe(daemon, answer));
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}",
        describe(daemon, answer)
    );
    assert!(
        answer.json()["result"].is_string(),
        "{}",
        describe(daemon, answer)
    );
}

/// Asserts the loop still serves peers: a BitTorrent handshake for an
/// info-hash the daemon does not serve is answered by a close.
fn assert_loop_serves_peers(daemon: &Daemon, during: &str) {
    let mut probe = ProbeLeecher::connect(daemon.peer_port, [0x5a; 20], 1).unwrap_or_else(|e| {
        panic!(
            "{during}: connecting to the peer port failed: {e:?}; stderr:\n{}",
            daemon.process.stderr()
        )
    });
    assert!(
        probe.is_closed_within(PEER_ANSWER_LIMIT),
        "{during}: the daemon did not answer a peer's handshake within {PEER_ANSWER_LIMIT:?}; stderr:\n{}",
        daemon.process.stderr()
    );
}

/// Whether the server has closed `stream` (a read gives 0 or a reset);
/// `stream` must be nonblocking.
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false, // an answer to a request never sent: not closed yet
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

// 1. Session id (CSRF).

#[test]
fn rpc_calls_need_the_current_session_id() {
    let (_tmp, daemon) = start("rpcsec-sid", &[]);
    let id = session_id(&daemon, &[]);
    let answer = post(&daemon, &[(SID, &id)]);
    assert_rpc_ok(&daemon, &answer);

    let mut stale = id.clone();
    let last = if stale.pop() == Some('0') { '1' } else { '0' };
    stale.push(last);
    for wrong in [stale.as_str(), "", "0", "nonsense id"] {
        let answer = post(&daemon, &[(SID, wrong)]);
        assert_eq!(
            answer.status,
            409,
            "id {wrong:?}: {}",
            describe(&daemon, &answer)
        );
        assert_eq!(
            answer.header(SID_LOWER),
            Some(id.as_str()),
            "a 409 hands out the current id"
        );
    }
    // The id stays the same while the daemon runs.
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
}

// 2. Credentials.

#[test]
fn with_rpc_auth_only_the_right_credentials_get_the_session_id() {
    let tmp = TempDir::new("rpcsec-auth-pass");
    let passfile = tmp.path().join("pass");
    std::fs::write(&passfile, "correct horse\n").unwrap();
    let auth = format!("alice:{}", passfile.display());
    let (_tmp, daemon) = start("rpcsec-auth", &["--rpc-auth", &auth]);

    let right = format!("Basic {}", base64(b"alice:correct horse"));
    let wrong_password = format!("Basic {}", base64(b"alice:correct horse!"));
    let wrong_user = format!("Basic {}", base64(b"mallory:correct horse"));
    let no_password = format!("Basic {}", base64(b"alice:"));

    let answer = post(&daemon, &[]);
    assert_eq!(answer.status, 401, "{}", describe(&daemon, &answer));
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic ")),
        "a 401 names the scheme: {}",
        describe(&daemon, &answer)
    );
    assert_eq!(
        answer.header(SID_LOWER),
        None,
        "a 401 must not hand out the session id"
    );
    for (what, value) in [
        ("wrong password", wrong_password.as_str()),
        ("wrong user", wrong_user.as_str()),
        ("no password", no_password.as_str()),
        ("not base64", "Basic ***"),
        ("another scheme", "Bearer abc"),
    ] {
        let answer = post(&daemon, &[("Authorization", value)]);
        assert_eq!(answer.status, 401, "{what}: {}", describe(&daemon, &answer));
        assert_eq!(answer.header(SID_LOWER), None, "{what}: no id in a 401");
    }

    let id = session_id(&daemon, &[("Authorization", &right)]);
    assert_rpc_ok(
        &daemon,
        &post(&daemon, &[("Authorization", &right), (SID, &id)]),
    );
    // The id alone does not let a client in.
    let answer = post(&daemon, &[(SID, &id)]);
    assert_eq!(answer.status, 401, "{}", describe(&daemon, &answer));
    let answer = post(&daemon, &[("Authorization", &wrong_password), (SID, &id)]);
    assert_eq!(answer.status, 401, "{}", describe(&daemon, &answer));
}

#[test]
fn listening_beyond_loopback_without_rpc_auth_is_refused_at_start() {
    let tmp = TempDir::new("rpcsec-open");
    let state = tmp.path().join("state");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let output = pollen([
        "daemon",
        "--state",
        state.to_str().unwrap(),
        "--dest",
        dest.to_str().unwrap(),
        "--rpc-bind",
        "0.0.0.0:0",
        "--port",
        "0",
        "--no-dht",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(
        lines[0].contains("--rpc-auth"),
        "names --rpc-auth: {stderr:?}"
    );
}

// 3. Host header (DNS rebinding).

#[test]
fn a_foreign_host_header_is_refused_before_the_session_id() {
    let (_tmp, daemon) = start("rpcsec-host", &[]);
    let port = daemon.rpc.port();
    let id = session_id(&daemon, &[]);
    let ask = |host: &str, with_id: bool| {
        let headers: &[(&str, &str)] = if with_id { &[(SID, &id)] } else { &[] };
        exchange(daemon.rpc, &request("POST", RPC, host, headers, BODY))
    };
    for host in [
        "evil.example.com:9091".to_string(),
        format!("evil.example.com:{port}"),
        "evil.example.com".to_string(),
        "localhost.evil.example.com".to_string(),
        String::new(),
    ] {
        for with_id in [false, true] {
            let answer = ask(&host, with_id);
            assert_eq!(
                answer.status,
                421,
                "Host {host:?} (id sent: {with_id}): {}",
                describe(&daemon, &answer)
            );
            assert_eq!(
                answer.header(SID_LOWER),
                None,
                "a 421 must not hand out the session id"
            );
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
    ] {
        let answer = ask(&host, false);
        assert_eq!(
            answer.status,
            409,
            "Host {host:?}: {}",
            describe(&daemon, &answer)
        );
        assert_rpc_ok(&daemon, &ask(&host, true));
    }
}

#[test]
fn rpc_host_lets_a_named_host_in() {
    let (_tmp, daemon) = start("rpcsec-host-named", &["--rpc-host", "nas.lan"]);
    let id = session_id(&daemon, &[]);
    let ask = |host: &str| {
        exchange(
            daemon.rpc,
            &request("POST", RPC, host, &[(SID, id.as_str())], BODY),
        )
    };
    for host in ["nas.lan", "NAS.lan:9091", "nas.lan."] {
        assert_rpc_ok(&daemon, &ask(host));
    }
    for host in ["evil.lan", "sub.nas.lan", "nas.lan.evil.example.com"] {
        let answer = ask(host);
        assert_eq!(
            answer.status,
            421,
            "Host {host:?}: {}",
            describe(&daemon, &answer)
        );
    }
}

// 4. Address allow-list.

#[test]
fn a_client_address_off_the_allow_list_gets_403() {
    let (_tmp, daemon) = start(
        "rpcsec-allow",
        &["--rpc-bind", "127.0.0.1:0", "--rpc-allow", "127.0.0.2"],
    );
    // Our socket's source is 127.0.0.1, not on the list.
    for headers in [vec![], vec![(SID, "anything")]] {
        let answer = post(&daemon, &headers);
        assert_eq!(answer.status, 403, "{}", describe(&daemon, &answer));
        assert_eq!(
            answer.header(SID_LOWER),
            None,
            "a 403 must not hand out the session id"
        );
    }
    let host = daemon.rpc.to_string();
    let answer = exchange(daemon.rpc, &request("GET", "/", &host, &[], ""));
    assert_eq!(
        answer.status,
        403,
        "the page too: {}",
        describe(&daemon, &answer)
    );
}

#[test]
fn the_default_allow_list_lets_loopback_in() {
    let (_tmp, daemon) = start("rpcsec-allow-default", &[]);
    let id = session_id(&daemon, &[]);
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
}

// 5. Caps.

#[test]
fn oversize_requests_are_refused_and_the_daemon_serves_on() {
    let (_tmp, daemon) = start("rpcsec-caps", &[]);
    let id = session_id(&daemon, &[]);
    let host = daemon.rpc.to_string();

    // A body over 15 MiB: refused from the head, before any body is sent.
    let head = format!(
        "POST {RPC} HTTP/1.1\r\nHost: {host}\r\n{SID}: {id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        16 * 1024 * 1024
    );
    let answer = exchange(daemon.rpc, head.as_bytes());
    assert_eq!(answer.status, 413, "{}", describe(&daemon, &answer));

    // A 20 KiB head (one long header): over the 16 KiB cap.
    let pad = "a".repeat(20 * 1024);
    let answer = exchange(
        daemon.rpc,
        &request("POST", RPC, &host, &[(SID, &id), ("X-Pad", &pad)], BODY),
    );
    assert_eq!(answer.status, 431, "{}", describe(&daemon, &answer));

    // 70 short headers: over the 64-header cap.
    let names: Vec<String> = (0..70).map(|i| format!("X-Header-{i}")).collect();
    let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    headers.push((SID, &id));
    let answer = exchange(daemon.rpc, &request("POST", RPC, &host, &headers, BODY));
    assert_eq!(answer.status, 431, "{}", describe(&daemon, &answer));

    // The daemon serves on, with the same session id.
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
    assert_loop_serves_peers(&daemon, "after the oversize requests");
}

// 6. A flood of idle connections.

/// The soft limit on open files of this process, from /proc/self/limits.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Opens up to `wanted` connections to the RPC that never send a byte
/// (fewer if this process has too few file descriptors; it says so),
/// nonblocking, for [`count_closed`].
fn open_idle(daemon: &Daemon, wanted: usize) -> Vec<TcpStream> {
    /// File descriptors kept for the rest of the test (the daemon's pipes,
    /// the other tests of this binary running at the same time).
    const SPARE_FDS: usize = 100;
    let available = open_files_limit().unwrap_or(1024);
    let count = wanted.min(available.saturating_sub(SPARE_FDS));
    println!("open files limit {available}: opening {count} idle connections (wanted {wanted})");
    assert!(
        count > 2 * MAX_RPC_CONNECTIONS,
        "too few fds ({available}) to flood past the cap"
    );
    (0..count)
        .map(|i| {
            let stream =
                TcpStream::connect_timeout(&daemon.rpc, HTTP_TIMEOUT).unwrap_or_else(|e| {
                    panic!(
                        "idle connection {i}: {e}; stderr:\n{}",
                        daemon.process.stderr()
                    )
                });
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect()
}

/// Waits (up to [`HTTP_TIMEOUT`]) until the server has closed at least
/// `least` of `idle`; returns how many it closed.
fn count_closed(idle: &mut [TcpStream], least: usize) -> usize {
    let mut closed = vec![false; idle.len()];
    wait_for(HTTP_TIMEOUT, || {
        for (stream, done) in idle.iter_mut().zip(closed.iter_mut()) {
            if !*done {
                *done = is_closed(stream);
            }
        }
        closed.iter().filter(|c| **c).count() >= least
    });
    closed.iter().filter(|c| **c).count()
}

#[test]
fn a_thousand_idle_connections_cannot_lock_the_owner_out() {
    let (_tmp, daemon) = start("rpcsec-flood", &[]);
    let id = session_id(&daemon, &[]);
    let mut idle = open_idle(&daemon, 1000);

    // The owner gets through on a new connection, and so do peers.
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
    assert_loop_serves_peers(&daemon, "with the idle connections open");

    // All but the cap's worth were closed to make room.
    let least = idle.len() - MAX_RPC_CONNECTIONS;
    let closed = count_closed(&mut idle, least);
    println!(
        "the server closed {closed} of {} idle connections",
        idle.len()
    );
    assert!(
        closed >= least,
        "only {closed} of {} idle connections closed, at least {least} expected; stderr:\n{}",
        idle.len(),
        daemon.process.stderr()
    );
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
}

/// The owner's request, sent as soon as it connects in the middle of a
/// burst of idle connections, must be answered: the idle ones are the
/// idlest. Each trial opens [`BURST`] connections with the owner's at the
/// middle; a trial fails when the owner's connection is closed unanswered.
#[test]
fn an_owner_connecting_in_the_middle_of_a_flood_is_answered() {
    /// Trials; the failure shows in a third of them or so.
    const TRIALS: usize = 10;
    /// Idle connections per trial.
    const BURST: usize = 300;
    let (_tmp, daemon) = start("rpcsec-flood-mid", &[]);
    let id = session_id(&daemon, &[]);
    let host = daemon.rpc.to_string();
    let owner_request = request("POST", RPC, &host, &[(SID, &id)], BODY);
    let mut dropped = 0;
    for _ in 0..TRIALS {
        let mut flood = Vec::with_capacity(BURST);
        let mut owner = None;
        for i in 0..BURST {
            flood.push(TcpStream::connect_timeout(&daemon.rpc, HTTP_TIMEOUT).unwrap());
            if i == BURST / 2 {
                let mut stream = TcpStream::connect_timeout(&daemon.rpc, HTTP_TIMEOUT).unwrap();
                stream.write_all(&owner_request).unwrap();
                owner = Some(stream);
            }
        }
        let mut owner = owner.unwrap();
        owner.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
        let mut status_line = [0u8; 12];
        let answered = owner.read_exact(&mut status_line).is_ok();
        if !answered {
            dropped += 1;
        }
    }
    println!("{dropped} of {TRIALS} owners connecting mid-flood were dropped unanswered");
    assert_eq!(
        dropped,
        0,
        "{dropped} of {TRIALS} owners connecting in the middle of a flood were closed unanswered; stderr:\n{}",
        daemon.process.stderr()
    );
}

// 7. Slowloris.

/// How the slow client's connection ended: the bytes it was answered with
/// (none, if the server just closed it) or the read error, and when.
type SlowEnd = (Result<Vec<u8>, ErrorKind>, Duration);

/// A client sending a whole, valid RPC request one byte every
/// [`Slowloris::BYTE_GAP`] (a thread), and a thread reading its
/// connection to see it closed. Dropping it stops both.
struct Slowloris {
    /// The request's length.
    whole_len: usize,
    /// Bytes sent so far.
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// The connection's end, once it came.
    ended: mpsc::Receiver<SlowEnd>,
    /// A handle on the socket, to shut it down on drop.
    socket: TcpStream,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Slowloris {
    /// Between two bytes.
    const BYTE_GAP: Duration = Duration::from_millis(500);

    /// Connects and starts trickling a request that carries `id`.
    fn start(daemon: &Daemon, id: &str) -> Slowloris {
        let host = daemon.rpc.to_string();
        let whole = request(
            "POST",
            RPC,
            &host,
            &[(SID, id), ("User-Agent", "slow-client/1.0")],
            BODY,
        );
        let whole_len = whole.len();
        // Sending all of it must take far longer than the server allows.
        assert!(
            Self::BYTE_GAP * u32::try_from(whole_len).unwrap() > RPC_REQUEST_TIMEOUT * 4,
            "request too short for the test"
        );
        let socket = TcpStream::connect_timeout(&daemon.rpc, HTTP_TIMEOUT).unwrap();
        socket.set_nodelay(true).unwrap();
        let mut writer = socket.try_clone().unwrap();
        let mut reader = socket.try_clone().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let trickle = {
            let sent = Arc::clone(&sent);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for byte in whole {
                    if stop.load(Ordering::Relaxed) || writer.write_all(&[byte]).is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Self::BYTE_GAP);
                }
            })
        };
        // Its close (or reset) is the event waited for; an answer would
        // mean the request got through.
        let started = Instant::now();
        let (tx, ended) = mpsc::channel();
        let watcher = std::thread::spawn(move || {
            reader
                .set_read_timeout(Some(RPC_REQUEST_TIMEOUT * 3))
                .unwrap();
            let mut got = Vec::new();
            let outcome = match reader.read_to_end(&mut got) {
                Ok(_) => Ok(got),
                Err(e) => Err(e.kind()),
            };
            let _ = tx.send((outcome, started.elapsed()));
        });
        Slowloris {
            whole_len,
            sent,
            stop,
            ended,
            socket,
            threads: vec![trickle, watcher],
        }
    }

    /// The connection's end, if it comes within `limit`.
    fn ended_within(&self, limit: Duration) -> Option<SlowEnd> {
        self.ended.recv_timeout(limit).ok()
    }

    /// Bytes sent so far.
    fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Asserts the connection ended by the server closing it (no answer)
    /// before the whole request was sent; says when.
    fn assert_cut_off(&self, daemon: &Daemon, end: SlowEnd) {
        let (outcome, after) = end;
        let sent = self.sent();
        println!(
            "slow client closed by the server after {after:?}, {sent} of {} bytes sent",
            self.whole_len
        );
        match outcome {
            Ok(got) => assert!(
                got.is_empty(),
                "the slow client got an answer: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Err(kind) => assert!(
                matches!(
                    kind,
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ),
                "reading the slow connection: {kind:?}; stderr:\n{}",
                daemon.process.stderr()
            ),
        }
        assert!(
            sent < self.whole_len,
            "closed only after the whole request was sent"
        );
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The longest the server may take to cut off the slow client: its
/// request timeout plus the once-a-second check and scheduling slack.
const SLOW_CUT_OFF_LIMIT: Duration = Duration::from_secs(15);

#[test]
fn a_client_trickling_its_request_is_cut_off_while_others_are_served() {
    let (_tmp, daemon) = start("rpcsec-slow", &[]);
    let id = session_id(&daemon, &[]);
    let slow = Slowloris::start(&daemon, &id);
    let started = Instant::now();

    // Meanwhile the daemon answers others and serves peers.
    let mut served = 0;
    let end = loop {
        assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
        assert_loop_serves_peers(&daemon, "while a client trickles its request");
        served += 1;
        if let Some(end) = slow.ended_within(Duration::from_millis(250)) {
            break end;
        }
        assert!(
            started.elapsed() < SLOW_CUT_OFF_LIMIT,
            "the slow client was not cut off within {SLOW_CUT_OFF_LIMIT:?} ({} of {} bytes sent); stderr:\n{}",
            slow.sent(),
            slow.whole_len,
            daemon.process.stderr()
        );
    };
    slow.assert_cut_off(&daemon, end);
    println!("{served} other requests answered and peers served meanwhile");
    assert!(served > 0, "no other request was answered meanwhile");
    assert_rpc_ok(&daemon, &post(&daemon, &[(SID, &id)]));
}

// 6 and 7 together, against a real download.

/// Whether every file of `files` under `dest` has the bytes of the one
/// under `seed`.
fn same_files(seed: &Path, dest: &Path, files: &[(&str, usize, u64)]) -> bool {
    files.iter().all(|(rel, _, _)| {
        let want = std::fs::read(seed.join(rel));
        let got = std::fs::read(dest.join(rel));
        matches!((want, got), (Ok(w), Ok(g)) if w == g)
    })
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn a_download_completes_byte_identical_while_the_rpc_is_flooded() {
    /// Slow enough that the download lasts through the attack's first seconds.
    const SEEDER_RATE: &str = "256K";
    /// The whole download, announce included.
    const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);
    let files: &[(&str, usize, u64)] = &[("t/one.bin", 1_500_000, 31), ("t/two.bin", 200_001, 32)];

    let tracker = Tracker::start(&[]);
    let tmp = TempDir::new("rpcsec-download");
    let seed = tmp.path().join("seed");
    write_tree(&seed, files);
    let options = CreateOptions {
        trackers: vec![tracker.http.clone()],
        piece_len: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let torrent = tmp.path().join("t.torrent");
    std::fs::write(&torrent, create_torrent(&seed.join("t"), &options).unwrap()).unwrap();
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--seed".as_ref(),
        "--max-up".as_ref(),
        SEEDER_RATE.as_ref(),
        "-q".as_ref(),
    ]);
    seeder.port();

    let (daemon_tmp, daemon) = start("rpcsec-download-daemon", &[]);
    let dest = daemon_tmp.path().join("dest");
    let id = session_id(&daemon, &[]);

    // The attack: the connection cap flooded ...
    let mut idle = open_idle(&daemon, 1000);
    // ... the owner gets through and adds the torrent ...
    let mut rpc = daemon.client();
    rpc.add_file(&torrent, serde_json::json!({}));
    // ... and a client trickles a request. It connects after the owner:
    // a connection accepted in the same pass as another may be the one
    // evicted to make room for it, and here it must meet the timeout.
    let slow = Slowloris::start(&daemon, &id);
    // The daemon finds the seeder through the tracker and downloads while
    // the attack goes on.
    let mut polls = 0;
    let done = wait_for(DOWNLOAD_LIMIT, || {
        polls += 1;
        same_files(&seed, &dest, files)
    });
    assert!(
        done,
        "the download did not complete within {DOWNLOAD_LIMIT:?}; daemon stderr:\n{}\nseeder stderr:\n{}",
        daemon.process.stderr(),
        seeder.stderr()
    );
    assert_same_tree(&seed, &dest);
    let slow_end = slow.ended_within(Duration::ZERO);
    println!(
        "download complete after {polls} polls; the slow client {} at that time",
        if slow_end.is_some() {
            "was already cut off"
        } else {
            "was still trickling"
        }
    );
    let end = slow_end
        .or_else(|| slow.ended_within(SLOW_CUT_OFF_LIMIT))
        .unwrap_or_else(|| {
            panic!(
                "the slow client was not cut off; stderr:\n{}",
                daemon.process.stderr()
            )
        });
    slow.assert_cut_off(&daemon, end);
    let least = idle.len() - MAX_RPC_CONNECTIONS;
    let closed = count_closed(&mut idle, least);
    println!(
        "the server closed {closed} of {} idle connections",
        idle.len()
    );
    assert!(closed >= least, "only {closed} idle connections closed");
    assert_loop_serves_peers(&daemon, "after the download");
}

// 8. Methods and paths.

#[test]
fn wrong_methods_and_paths_get_405_and_404_and_the_page_is_html() {
    let (_tmp, daemon) = start("rpcsec-paths", &[]);
    let id = session_id(&daemon, &[]);
    let host = daemon.rpc.to_string();
    let ask = |method: &str, path: &str, headers: &[(&str, &str)]| {
        exchange(daemon.rpc, &request(method, path, &host, headers, ""))
    };

    let answer = ask("GET", RPC, &[]);
    assert_eq!(
        answer.status,
        409,
        "no id first: {}",
        describe(&daemon, &answer)
    );
    for method in ["GET", "PUT", "DELETE"] {
        let answer = ask(method, RPC, &[(SID, &id)]);
        assert_eq!(
            answer.status,
            405,
            "{method}: {}",
            describe(&daemon, &answer)
        );
    }
    for path in [
        "/nope",
        "/transmission/rpc/extra",
        "/transmission/web/../../etc/passwd",
    ] {
        let answer = ask("GET", path, &[]);
        assert_eq!(answer.status, 404, "{path}: {}", describe(&daemon, &answer));
    }
    let page = ask("GET", "/", &[]);
    assert_eq!(page.status, 200, "{}", describe(&daemon, &page));
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{}",
        describe(&daemon, &page)
    );
    assert!(
        String::from_utf8_lossy(&page.body)
            .to_ascii_lowercase()
            .contains("html"),
        "the page is HTML: {}",
        describe(&daemon, &page)
    );
}

/// Keep-alive still works under these rules: two requests on one
/// connection get one answer each.
#[test]
fn a_kept_alive_connection_gets_one_answer_per_request() {
    let (_tmp, daemon) = start("rpcsec-keepalive", &[]);
    let id = session_id(&daemon, &[]);
    let host = daemon.rpc.to_string();
    let mut stream = TcpStream::connect_timeout(&daemon.rpc, HTTP_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let one = format!(
        "POST {RPC} HTTP/1.1\r\nHost: {host}\r\n{SID}: {id}\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    for _ in 0..2 {
        stream.write_all(one.as_bytes()).unwrap();
        assert_rpc_ok(&daemon, &read_answer(&mut stream));
    }
}
