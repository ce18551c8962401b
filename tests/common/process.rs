//! A `pollen` child process for swarm tests: started with piped output, its
//! listening port read from its first stdout line, killed on drop.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running pollen; killed (and reaped) when dropped.
pub struct Pollen {
    child: Child,
    lines: Receiver<String>,
    /// Everything it wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
    /// The thread copying stderr into `stderr`; finished once the pipe closes.
    stderr_reader: std::thread::JoinHandle<()>,
    port: Option<u16>,
}

/// How long `wait` gives the stderr thread, once pollen has exited, to copy
/// the last lines (the pipe closes with the process).
const STDERR_DRAIN_LIMIT: Duration = Duration::from_secs(5);

impl Pollen {
    /// Starts `pollen` with `args` (stdout and stderr captured).
    pub fn start<I, S>(args: I) -> Pollen
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::start_command(env!("CARGO_BIN_EXE_pollen"), args)
    }

    /// Starts `program` (e.g. a shell that sets limits, then execs pollen).
    pub fn start_command<I, S>(program: &str, args: I) -> Pollen
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(program)
            .args(args)
            // No public DHT router, even from a release build (make interop).
            .env(super::NO_PUBLIC_DHT.0, super::NO_PUBLIC_DHT.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pollen");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().expect("stderr");
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pollen {
            child,
            lines,
            stderr,
            stderr_reader,
            port: None,
        }
    }

    /// A quiet seeder of `torrent` from `dir` (`--seed --no-tracker -q`,
    /// plus `extra`), started and listening (its port read).
    pub fn seeder(torrent: &Path, dir: &Path, extra: &[&str]) -> Pollen {
        Pollen::seeder_of(&[torrent], dir, extra)
    }

    /// One quiet process seeding every torrent in `torrents` from `dir`
    /// through its one port, like [`Pollen::seeder`].
    pub fn seeder_of(torrents: &[&Path], dir: &Path, extra: &[&str]) -> Pollen {
        let mut args: Vec<&std::ffi::OsStr> = torrents.iter().map(|t| t.as_os_str()).collect();
        args.extend([
            "-d".as_ref(),
            dir.as_os_str(),
            "--seed".as_ref(),
            "--no-tracker".as_ref(),
            "-q".as_ref(),
        ]);
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        let mut seeder = Pollen::start(args);
        seeder.port();
        seeder
    }

    /// A quiet seeder of `torrents` from `dir` that finds its peers through
    /// the torrents' own trackers (`--seed --no-dht -q`, plus `extra`),
    /// started and listening: what a daemon, which has no `--peer`, downloads from.
    pub fn tracked_seeder(torrents: &[&Path], dir: &Path, extra: &[&str]) -> Pollen {
        let mut args: Vec<&std::ffi::OsStr> = torrents.iter().map(|t| t.as_os_str()).collect();
        args.extend([
            "-d".as_ref(),
            dir.as_os_str(),
            "--seed".as_ref(),
            "--no-dht".as_ref(),
            "-q".as_ref(),
        ]);
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let mut seeder = Pollen::start(args);
        seeder.port();
        seeder
    }

    /// A quiet leecher of `torrent` into `dir` from `peer` only
    /// (`--no-tracker --peer PEER -q`).
    pub fn leecher(torrent: &Path, dir: &Path, peer: &str) -> Pollen {
        Pollen::start([
            torrent.as_os_str(),
            "--dest".as_ref(),
            dir.as_os_str(),
            "--no-tracker".as_ref(),
            "--peer".as_ref(),
            peer.as_ref(),
            "-q".as_ref(),
        ])
    }

    /// The port it listens on (from `listening on ADDR:PORT`), waiting up to 30 s.
    pub fn port(&mut self) -> u16 {
        if let Some(port) = self.port {
            return port;
        }
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no listening line; stderr:\n{}", self.stderr()));
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.port = Some(port);
        port
    }

    /// The next line it prints on stdout, waiting up to 30 s.
    pub fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no more output; stderr:\n{}", self.stderr()))
    }

    /// `127.0.0.1:PORT`, for `--peer`.
    pub fn peer_arg(&mut self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Waits up to `limit` for it to exit; panics (with its log) if it does
    /// not. Once it has exited, its last stderr lines are in [`Self::stderr`].
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                wait_for(STDERR_DRAIN_LIMIT, || self.stderr_reader.is_finished());
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "pollen still running after {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a clean stop).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// `pollen tracker` on 127.0.0.1 with HTTP and UDP on free ports (tests
/// that use it are ignored in builds without the feature `tracker-server`).
pub struct Tracker {
    pub process: Pollen,
    pub http: String,
    pub udp: String,
}

impl Tracker {
    pub fn start(extra: &[&str]) -> Tracker {
        let mut args = vec!["tracker", "-b", "127.0.0.1", "-p", "0", "-u", "0"];
        args.extend_from_slice(extra);
        let mut process = Pollen::start(args);
        let http = process.next_line().rsplit(' ').next().unwrap().to_string();
        let udp = process.next_line().rsplit(' ').next().unwrap().to_string();
        assert!(
            http.starts_with("http://127.0.0.1:") && udp.starts_with("udp://127.0.0.1:"),
            "{http} {udp}"
        );
        Tracker { process, http, udp }
    }
}

impl Drop for Pollen {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits up to `limit` for `cond`, polling every 20 ms.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Asserts that every file under `expected` exists with the same bytes under `actual`.
/// pollen's own state (`.pollen/`: resume and lock files) is not payload and is skipped.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    for entry in std::fs::read_dir(expected).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".pollen" {
            continue;
        }
        let path = entry.path();
        let other = actual.join(entry.file_name());
        if path.is_dir() {
            assert!(other.is_dir(), "{} is missing", other.display());
            assert_same_tree(&path, &other);
        } else {
            let want = std::fs::read(&path).unwrap();
            let got = std::fs::read(&other).unwrap_or_else(|e| panic!("{}: {e}", other.display()));
            assert!(
                want == got,
                "{} differs from {}",
                other.display(),
                path.display()
            );
        }
    }
}
