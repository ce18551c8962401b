//! Load helpers shared by `tests/load.rs` and `tests/bench/load_bench.rs`:
//! a crowd of junk peers (idle, flooding, never reading), loopback
//! addresses that never answer a SYN, raw tracker announces, and the
//! `/proc` counts the load tests assert on (open fds, dials in progress).
//! Everything stays on 127.0.0.1.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A BEP 3 handshake with no extension bits (so pollen treats requests
/// while choked by the plain rules: ignored, and counted).
pub fn handshake(info_hash: [u8; 20], peer_id: [u8; 20]) -> [u8; 68] {
    let mut out = [0u8; 68];
    out[0] = 19;
    out[1..20].copy_from_slice(b"BitTorrent protocol");
    out[28..48].copy_from_slice(&info_hash);
    out[48..68].copy_from_slice(&peer_id);
    out
}

/// A peer id unique to `kind` and `n`.
pub fn peer_id(kind: &[u8; 4], n: usize) -> [u8; 20] {
    let mut id = *b"-LD0001-000000000000";
    id[8..12].copy_from_slice(kind);
    let digits = format!("{:08}", n % 100_000_000);
    id[12..20].copy_from_slice(digits.as_bytes());
    id
}

/// INTERESTED.
pub const INTERESTED: [u8; 5] = [0, 0, 0, 1, 2];
/// A keepalive.
pub const KEEPALIVE: [u8; 4] = [0, 0, 0, 0];

/// A REQUEST frame.
pub fn request(piece: u32, begin: u32, len: u32) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[..4].copy_from_slice(&13u32.to_be_bytes());
    out[4] = 6;
    out[5..9].copy_from_slice(&piece.to_be_bytes());
    out[9..13].copy_from_slice(&begin.to_be_bytes());
    out[13..17].copy_from_slice(&len.to_be_bytes());
    out
}

/// The torrent's blocks as (piece, begin, len), for requesting.
pub fn blocks(total_len: u64, piece_len: u64) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    while offset < total_len {
        let piece = offset / piece_len;
        let begin = offset % piece_len;
        let len = (16 * 1024u64)
            .min(piece_len - begin)
            .min(total_len - offset);
        out.push((piece as u32, begin as u32, len as u32));
        offset += len;
    }
    out
}

/// What one junk peer does after its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Junk {
    /// Nothing but a keepalive now and then.
    Idle,
    /// INTERESTED; once unchoked, REQUESTs for every block, round and
    /// round, as fast as the socket takes them; reads (and counts) every
    /// PIECE it is sent.
    Flooder,
    /// INTERESTED, then a few REQUESTs every second; never reads a byte.
    NonReader,
}

/// The junk peer of index `i` in a crowd: one in ten floods, one in ten
/// never reads, the rest idle (interleaved, so whichever connections
/// pollen accepts first are a mix).
pub fn junk_kind(i: usize) -> Junk {
    match i % 10 {
        0 => Junk::Flooder,
        1 => Junk::NonReader,
        _ => Junk::Idle,
    }
}

/// How often the crowd's keeper sends keepalives and the non-readers'
/// requests.
const KEEPER_PERIOD: Duration = Duration::from_secs(1);
/// REQUESTs a non-reader sends per keeper period (pollen drops a peer after
/// 100 requests while choked: after 25 s at this pace).
const NON_READER_REQUESTS: usize = 4;
/// REQUESTs a flooder sends per write (a CHOKE may overtake a batch: pollen
/// drops a peer after 100 requests while choked).
const FLOOD_BATCH: usize = 16;

/// A crowd of junk peers connected to one pollen; stopped on drop.
pub struct Crowd {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// PIECE payload bytes the flooders have read.
    pub flooded_bytes: Arc<AtomicU64>,
    /// Connections made (the handshake sent).
    pub connected: usize,
}

impl Crowd {
    /// Opens `count` connections to `port` at once, each sending its
    /// handshake for `info_hash` (kinds by [`junk_kind`]), and starts
    /// their behaviour: one keeper thread for the idle and non-reading
    /// ones, a reader and a writer thread per flooder.
    pub fn start(
        port: u16,
        info_hash: [u8; 20],
        blocks: Vec<(u32, u32, u32)>,
        count: usize,
    ) -> Crowd {
        let stop = Arc::new(AtomicBool::new(false));
        let flooded_bytes = Arc::new(AtomicU64::new(0));
        let blocks = Arc::new(blocks);
        let mut kept: Vec<(Junk, TcpStream)> = Vec::new();
        let mut threads = Vec::new();
        let mut connected = 0;
        for i in 0..count {
            let kind = junk_kind(i);
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let mut hello = handshake(info_hash, peer_id(b"junk", i)).to_vec();
            if kind != Junk::Idle {
                hello.extend_from_slice(&INTERESTED);
            }
            if stream.write_all(&hello).is_err() {
                continue;
            }
            connected += 1;
            match kind {
                Junk::Flooder => threads.extend(flood(
                    stream,
                    Arc::clone(&blocks),
                    Arc::clone(&stop),
                    Arc::clone(&flooded_bytes),
                )),
                _ => {
                    stream.set_nonblocking(true).unwrap();
                    kept.push((kind, stream));
                }
            }
        }
        let (flag, requests) = (Arc::clone(&stop), Arc::clone(&blocks));
        threads.push(thread::spawn(move || keep(kept, &requests, &flag)));
        Crowd {
            stop,
            threads,
            flooded_bytes,
            connected,
        }
    }

    /// Stops every junk thread and closes every connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The keeper: every period a keepalive to each idle peer and a few
/// REQUESTs from each non-reader (nonblocking; a refused or closed
/// connection is dropped). Nobody reads.
fn keep(mut kept: Vec<(Junk, TcpStream)>, blocks: &[(u32, u32, u32)], stop: &AtomicBool) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        kept.retain_mut(|(kind, stream)| {
            let mut out = Vec::new();
            match kind {
                Junk::NonReader => {
                    for n in 0..NON_READER_REQUESTS {
                        let (p, b, l) = blocks[(round * NON_READER_REQUESTS + n) % blocks.len()];
                        out.extend_from_slice(&request(p, b, l));
                    }
                }
                _ => out.extend_from_slice(&KEEPALIVE),
            }
            // A partial write would cut a frame: such a connection (pollen
            // stopped reading it) is given up.
            match stream.write(&out) {
                Ok(n) => n == out.len(),
                Err(e) => e.kind() == ErrorKind::WouldBlock,
            }
        });
        round += 1;
        let until = Instant::now() + KEEPER_PERIOD;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A flooder's two threads: the reader follows CHOKE/UNCHOKE and counts
/// PIECE payload; the writer floods REQUESTs while unchoked.
fn flood(
    stream: TcpStream,
    blocks: Arc<Vec<(u32, u32, u32)>>,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
) -> [JoinHandle<()>; 2] {
    let unchoked = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let mut reader = stream.try_clone().unwrap();
    let mut writer = stream;
    reader
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (r_stop, r_unchoked, r_gone) =
        (Arc::clone(&stop), Arc::clone(&unchoked), Arc::clone(&gone));
    let read = thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut skipped_handshake = false;
        while !r_stop.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => break,
            }
            if !skipped_handshake {
                if pending.len() < 68 {
                    continue;
                }
                pending.drain(..68);
                skipped_handshake = true;
            }
            let mut used = 0;
            while pending.len() >= used + 4 {
                let len = u32::from_be_bytes(pending[used..used + 4].try_into().unwrap()) as usize;
                if pending.len() < used + 4 + len {
                    break;
                }
                match pending.get(used + 4) {
                    Some(0) => r_unchoked.store(false, Ordering::Relaxed),
                    Some(1) => r_unchoked.store(true, Ordering::Relaxed),
                    Some(7) => {
                        bytes.fetch_add(len.saturating_sub(9) as u64, Ordering::Relaxed);
                    }
                    _ => {}
                }
                used += 4 + len;
            }
            pending.drain(..used);
        }
        r_gone.store(true, Ordering::Relaxed);
    });
    let write = thread::spawn(move || {
        let mut next = 0usize;
        // A batch once started is written whole (a timed-out write must
        // not cut a frame in two).
        let mut out: Vec<u8> = Vec::new();
        while !stop.load(Ordering::Relaxed) && !gone.load(Ordering::Relaxed) {
            if out.is_empty() {
                if !unchoked.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
                for _ in 0..FLOOD_BATCH {
                    let (p, b, l) = blocks[next % blocks.len()];
                    out.extend_from_slice(&request(p, b, l));
                    next += 1;
                }
            }
            match writer.write(&out) {
                Ok(0) => break,
                Ok(n) => drop(out.drain(..n)),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    });
    [read, write]
}

/// Loopback addresses that never answer a SYN: listeners with a backlog of
/// 0 whose one-connection accept queue is filled and never accepted, so
/// Linux drops every further SYN and a connect hangs in SYN_SENT.
pub struct DeadAddrs {
    listeners: Vec<TcpListener>,
    fillers: Vec<TcpStream>,
}

impl DeadAddrs {
    /// `count` dead addresses on 127.0.0.1.
    pub fn new(count: usize) -> DeadAddrs {
        let mut dead = DeadAddrs {
            listeners: Vec::new(),
            fillers: Vec::new(),
        };
        for _ in 0..count {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            rustix::net::listen(&listener, 0).unwrap();
            let filler = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            dead.listeners.push(listener);
            dead.fillers.push(filler);
        }
        dead
    }

    /// Their ports.
    pub fn ports(&self) -> Vec<u16> {
        self.listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect()
    }

    /// Whether a connect to the first of them is still unanswered after
    /// `wait` (the kernel drops the SYNs, as this needs).
    pub fn first_hangs(&self, wait: Duration) -> bool {
        let Some(listener) = self.listeners.first() else {
            return false;
        };
        let addr: SocketAddr = listener.local_addr().unwrap();
        matches!(
            TcpStream::connect_timeout(&addr, wait),
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock
        )
    }
}

/// Announces `port` on 127.0.0.1 to the test tracker at `tracker_port`
/// (tests/common/http_tracker.rs lists every port announced to it).
pub fn announce_port(tracker_port: u16, port: u16) {
    let mut stream = TcpStream::connect(("127.0.0.1", tracker_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /announce?port={port}&left=0 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
}

/// The port of a tracker URL `http://127.0.0.1:PORT/announce`.
pub fn url_port(url: &str) -> u16 {
    url.trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

/// Open file descriptors of process `pid` (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Socket inodes process `pid` holds.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy().into_owned();
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Connects of process `pid` still in SYN_SENT to one of `ports` on
/// 127.0.0.1 (`/proc/net/tcp` state 02, matched by socket inode).
pub fn pending_dials(pid: u32, ports: &HashSet<u16>) -> usize {
    let inodes = socket_inodes(pid);
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                return false;
            };
            let port = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            *state == "02"
                && port.is_some_and(|p| ports.contains(&p))
                && inode.parse().is_ok_and(|i: u64| inodes.contains(&i))
        })
        .count()
}

/// Samples `f` every 20 ms on a thread until stopped; keeps the largest value.
pub struct MaxSampler {
    stop: Arc<AtomicBool>,
    max: Arc<Mutex<usize>>,
    thread: Option<JoinHandle<()>>,
}

impl MaxSampler {
    /// Starts sampling.
    pub fn start(f: impl Fn() -> usize + Send + 'static) -> MaxSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(Mutex::new(0));
        let (flag, best) = (Arc::clone(&stop), Arc::clone(&max));
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let value = f();
                let mut best = best.lock().unwrap();
                *best = (*best).max(value);
                drop(best);
                thread::sleep(Duration::from_millis(20));
            }
        });
        MaxSampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the largest value seen.
    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        *self.max.lock().unwrap()
    }
}

impl Drop for MaxSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connect/disconnect cycle against 127.0.0.1:`port`, by `i`: one in
/// ten closes as soon as it is connected, one in ten after half a
/// handshake, one in ten after a whole handshake without reading; the rest
/// send a handshake, read pollen's (68 bytes), then close. Returns whether
/// the cycle went as planned (pollen answered where it should).
pub fn cycle(port: u16, info_hash: [u8; 20], i: usize) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let hello = handshake(info_hash, peer_id(b"cycl", i));
    match i % 10 {
        0 => true,
        1 => stream.write_all(&hello[..30]).is_ok(),
        2 => stream.write_all(&hello).is_ok(),
        _ => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reply = [0u8; 68];
            stream.write_all(&hello).is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && reply[28..48] == info_hash
        }
    }
}
