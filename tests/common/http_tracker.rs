//! A minimal HTTP tracker for tests: it records every announce and answers
//! with the compact addresses of every peer that announced (127.0.0.1 and
//! the `port` it gave). Runs on its own thread; stops on drop.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the tracker answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A proper compact reply.
    Peers,
    /// Bytes that are not bencode.
    Garbage,
}

/// A running test tracker.
pub struct TestTracker {
    port: u16,
    /// Query strings of every announce, in order.
    pub announces: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestTracker {
    pub fn start(reply: Reply) -> TestTracker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let announces = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (Arc::clone(&announces), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut peers: BTreeSet<u16> = BTreeSet::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, reply, &mut peers, &log),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestTracker {
            port,
            announces,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The `event=` values seen so far, in order ("" for none).
    pub fn events(&self) -> Vec<String> {
        self.announces
            .lock()
            .unwrap()
            .iter()
            .map(|q| param(q, "event").unwrap_or_default())
            .collect()
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The value of `name` in a query string.
pub fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

fn serve(mut stream: TcpStream, reply: Reply, peers: &mut BTreeSet<u16>, log: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let target = text.split_whitespace().nth(1).unwrap_or_default();
    let query = target
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    let port: Option<u16> = param(&query, "port").and_then(|p| p.parse().ok());
    let stopped = param(&query, "event").as_deref() == Some("stopped");
    log.lock().unwrap().push(query);
    if let Some(port) = port {
        if stopped {
            peers.remove(&port);
        } else {
            peers.insert(port);
        }
    }
    let body = match reply {
        Reply::Garbage => b"<html>not a tracker</html>".to_vec(),
        Reply::Peers => {
            let mut compact = Vec::new();
            for p in peers.iter().filter(|p| Some(**p) != port) {
                compact.extend_from_slice(&[127, 0, 0, 1]);
                compact.extend_from_slice(&p.to_be_bytes());
            }
            let mut body = format!("d8:intervali60e5:peers{}:", compact.len()).into_bytes();
            body.extend_from_slice(&compact);
            body.push(b'e');
            body
        }
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}
