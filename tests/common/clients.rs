//! Real BitTorrent programs as child processes, for the interop tests and the
//! swarm bench: opentracker, aria2c, libtorrent (through `lt_peer.py`),
//! transmission-cli and pollen itself.
//!
//! Everything stays on 127.0.0.1: each client listens on the loopback only
//! and has DHT, local peer discovery, UPnP, NAT-PMP and peer exchange off.
//! Nothing here can outlive a test: every child is held by a [`Proc`] that
//! kills it on drop (after printing the tail of its output when the test is
//! panicking), and every wait has a deadline.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often waits look again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Output bytes of each stream shown when a test fails.
const LOG_TAIL_BYTES: usize = 3000;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `cond` until it holds (true) or `limit` passes (false).
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Whether this process runs as root (opentracker then needs `-u` and `-d`).
pub fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// A child process that is killed when dropped. Its stdout and stderr go to
/// `NAME.stdout` and `NAME.stderr` in a log directory (files, not pipes, so
/// a chatty child can never block on a full pipe).
pub struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with stdin closed and its output logged under `log_dir`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Proc {
        let stdout = log_dir.join(format!("{name}.stdout"));
        let stderr = log_dir.join(format!("{name}.stderr"));
        let child = command
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("create stdout log"))
            .stderr(fs::File::create(&stderr).expect("create stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited (never blocks).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Everything it printed on stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until its stderr contains `text`; panics, with the logs, if
    /// the process exits or `limit` passes first.
    pub fn wait_for_stderr(&mut self, text: &str, limit: Duration) {
        let mut seen = false;
        wait_for(limit, || {
            seen = self.stderr().contains(text);
            seen || !self.running()
        });
        if !seen {
            panic!(
                "{} printed no {text:?} on stderr within {limit:?} (exit: {:?})\n{}",
                self.name,
                self.status,
                self.report()
            );
        }
    }

    /// The tails of its stdout and stderr, for failure messages.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (stream, path) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = fs::read(path).unwrap_or_default();
            let tail = bytes.get(bytes.len().saturating_sub(LOG_TAIL_BYTES)..);
            let text = String::from_utf8_lossy(tail.unwrap_or_default());
            let _ = writeln!(out, "----- {} {stream} (tail) -----", self.name);
            let _ = writeln!(out, "{}", text.replace('\r', "\n").trim_end());
        }
        out
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of
    /// it (trimmed). Panics, with the logs, if the process exits or `limit` passes first.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> String {
        let mut found = None;
        let ok = wait_for(limit, || {
            found = self
                .stdout()
                .lines()
                .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_string()));
            found.is_some() || !self.running()
        });
        match found {
            Some(rest) => rest,
            None if ok => panic!(
                "{} exited ({:?}) before printing {prefix:?}\n{}",
                self.name,
                self.status,
                self.report()
            ),
            None => panic!(
                "{} printed no {prefix:?} within {limit:?}\n{}",
                self.name,
                self.report()
            ),
        }
    }

    /// Waits for it to exit; panics (killing it, showing the logs) if it
    /// runs past `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if wait_for(limit, || !self.running()) {
            return self.status.expect("exited");
        }
        self.kill();
        panic!("{} ran past {limit:?}\n{}", self.name, self.report());
    }

    /// Waits for it to exit successfully within `limit`; panics with the logs otherwise.
    pub fn wait_success(&mut self, limit: Duration) {
        let status = self.wait(limit);
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            self.name,
            self.report()
        );
    }

    /// Sends SIGTERM and waits up to `limit` for it to exit. Returns the
    /// exit status, or `None` if it had to be killed.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if !self.running() {
            return self.status;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        if wait_for(limit, || !self.running()) {
            return self.status;
        }
        self.kill();
        None
    }

    /// SIGKILL and reap (no-op once it has exited).
    pub fn kill(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Panics with the logs unless it is still running.
    pub fn assert_running(&mut self) {
        if !self.running() {
            panic!(
                "{} exited early: {:?}\n{}",
                self.name,
                self.status,
                self.report()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// Seeders, leechers and completed downloads a tracker knows for a torrent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrape {
    /// Peers that announced `left=0`.
    pub complete: u64,
    /// Peers still downloading.
    pub incomplete: u64,
}

/// An opentracker process serving HTTP (and UDP) on 127.0.0.1:`port`.
///
/// Debian's opentracker is built whitelist-only: it tracks only the
/// info-hashes in the file given with `-w`.
pub struct Opentracker {
    proc: Proc,
    port: u16,
}

impl Opentracker {
    /// Starts opentracker on `port` tracking only `info_hashes` (hex), with
    /// its whitelist and logs in `dir`. Fails if it does not come up within
    /// five seconds (the port was taken, say).
    pub fn start(dir: &Path, port: u16, info_hashes: &[&str]) -> Result<Opentracker, String> {
        let whitelist = dir.join(format!("opentracker-{port}.whitelist"));
        fs::write(&whitelist, info_hashes.join("\n") + "\n").expect("write whitelist");
        let mut command = Command::new("opentracker");
        let port_text = port.to_string();
        command.args(["-i", "127.0.0.1", "-p", &port_text, "-P", &port_text]);
        // Root must name a user to drop to and a directory to chroot into.
        if running_as_root() {
            command.args(["-u", "nobody", "-d", "/"]);
        }
        command.arg("-w").arg(&whitelist);
        let mut proc = Proc::spawn(&format!("opentracker-{port}"), command, dir);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let up = wait_for(Duration::from_secs(5), || {
            !proc.running() || TcpStream::connect(addr).is_ok()
        });
        // A port someone else holds also accepts: make sure ours is alive.
        std::thread::sleep(Duration::from_millis(100));
        if !up || !proc.running() {
            return Err(format!("opentracker did not start\n{}", proc.report()));
        }
        Ok(Opentracker { proc, port })
    }

    /// The HTTP announce URL.
    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// Asks `/scrape` about `info_hash` (hex). `None` if the tracker does not
    /// answer or does not know the torrent yet.
    pub fn scrape(&self, info_hash: &str) -> Option<Scrape> {
        let mut query = String::new();
        for i in (0..info_hash.len()).step_by(2) {
            query.push('%');
            query.push_str(info_hash.get(i..i + 2)?);
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .ok()?;
        let request = format!("GET /scrape?info_hash={query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).ok()?;
        Some(Scrape {
            complete: bencoded_int_after(&reply, b"8:completei")?,
            incomplete: bencoded_int_after(&reply, b"10:incompletei")?,
        })
    }

    /// Waits until the tracker lists at least `seeders` seeders of
    /// `info_hash`, panicking (with every log) if `limit` passes first or
    /// one of `watched` exits meanwhile.
    pub fn wait_for_seeders(
        &mut self,
        info_hash: &str,
        seeders: u64,
        limit: Duration,
        watched: &mut [&mut Proc],
    ) {
        let mut last = None;
        let listed = |scrape: Option<Scrape>| scrape.is_some_and(|s| s.complete >= seeders);
        wait_for(limit, || {
            last = self.scrape(info_hash);
            let dead = watched.iter_mut().any(|p| !p.running()) || !self.proc.running();
            dead || listed(last)
        });
        if !listed(last) {
            let logs: String = watched.iter().map(|p| p.report()).collect();
            panic!(
                "tracker never listed {seeders} seeder(s) within {limit:?} (last scrape {last:?})\n{logs}{}",
                self.proc.report()
            );
        }
    }
}

/// The integer in `...<key><digits>e...`.
fn bencoded_int_after(haystack: &[u8], key: &[u8]) -> Option<u64> {
    let at = haystack.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = haystack
        .get(at..)?
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Which side of a transfer a client plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Has the data (checks it first), uploads until stopped.
    Seed,
    /// Downloads, then exits.
    Leech,
}

/// The pollen binary under test.
pub fn pollen_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pollen")
}

/// `pollen` with `args`.
pub fn pollen_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(pollen_bin());
    command.args(args);
    command
}

/// Makes a torrent of `content` with `pollen create` and returns its info-hash (hex).
pub fn pollen_create(content: &Path, torrent: &Path, tracker: &str, piece_size: &str) -> String {
    let mut create = pollen_command(["create".as_ref(), content.as_os_str()]);
    create
        .arg("-o")
        .arg(torrent)
        .args(["--tracker", tracker, "--piece-size", piece_size]);
    let out = super::run_with_deadline(create, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "pollen create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = pollen_command(["info".as_ref(), torrent.as_os_str()]);
    let out = super::run_with_deadline(info, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    super::info_field(&stdout, "info-hash:")
        .unwrap_or_else(|| panic!("no info-hash in pollen info:\n{stdout}"))
        .to_string()
}

/// An opentracker with one torrent of `content` announced to it: the
/// torrent is made by `pollen create` (into `torrent`) once the tracker's
/// port is known. A few ports are tried, in case another process takes the
/// one picked. Returns the tracker and the info-hash.
pub fn tracked_torrent(
    dir: &Path,
    content: &Path,
    torrent: &Path,
    piece_size: &str,
) -> (Opentracker, String) {
    let mut errors = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}/announce");
        let info_hash = pollen_create(content, torrent, &url, piece_size);
        match Opentracker::start(dir, port, &[&info_hash]) {
            Ok(tracker) => return (tracker, info_hash),
            Err(e) => errors.push(e),
        }
    }
    panic!("opentracker would not start:\n{}", errors.join("\n"));
}

/// aria2c on 127.0.0.1:`port`, saving under (or seeding from) `dir`. As a
/// seeder it checks the data first and seeds until killed; as a leecher it
/// exits once the download is complete.
pub fn aria2c(role: Role, torrent: &Path, dir: &Path, port: u16) -> Command {
    let mut command = Command::new("aria2c");
    command.arg(format!("--dir={}", dir.display())).args([
        "--no-conf=true",
        "--interface=127.0.0.1",
        &format!("--listen-port={port}"),
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--disable-ipv6=true",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--show-console-readout=false",
        "--enable-color=false",
    ]);
    match role {
        // A ratio of 0 means no ratio limit; without --seed-time it seeds forever.
        Role::Seed => command.args(["--check-integrity=true", "--seed-ratio=0.0"]),
        Role::Leech => command.arg("--seed-time=0"),
    };
    command.arg(torrent);
    command
}

/// The libtorrent peer script next to this file.
pub fn lt_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/lt_peer.py")
}

/// libtorrent (Debian's python module) as a seeder or leecher of `torrent`
/// with its data under `save`, giving up after `limit`. It prints
/// `listening PORT`, then `seeding` or `complete` (see `lt_peer.py`).
pub fn libtorrent(role: Role, torrent: &Path, save: &Path, limit: Duration) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command
        .arg(lt_peer_script())
        .arg(match role {
            Role::Seed => "seed",
            Role::Leech => "leech",
        })
        .arg(torrent)
        .arg(save)
        .arg(limit.as_secs().to_string());
    command
}

/// transmission-cli as a leecher listening on 127.0.0.1:`port`, saving
/// under `download_dir`, with its configuration in `config_dir`. It never
/// exits by itself: it creates the returned flag file when the download is
/// complete, then the caller stops it.
///
/// transmission 3.00 never dials peers in 127.0.0.0/8 that a tracker gives
/// it, so the seeder has to dial it.
pub fn transmission_leecher(
    torrent: &Path,
    download_dir: &Path,
    config_dir: &Path,
    port: u16,
) -> (Command, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(config_dir).expect("create transmission config dir");
    let settings = r#"{
    "dht-enabled": false,
    "lpd-enabled": false,
    "utp-enabled": false,
    "pex-enabled": false,
    "port-forwarding-enabled": false,
    "bind-address-ipv4": "127.0.0.1",
    "bind-address-ipv6": "::1",
    "rpc-enabled": false,
    "rename-partial-files": false,
    "peer-port-random-on-start": false
}
"#;
    fs::write(config_dir.join("settings.json"), settings).expect("write settings.json");
    let done = config_dir.join("download-complete");
    let script = config_dir.join("on-complete.sh");
    fs::write(&script, format!("#!/bin/sh\n: > '{}'\n", done.display())).expect("write script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod script");
    let mut command = Command::new("transmission-cli");
    command
        .arg("-g")
        .arg(config_dir)
        .arg("-w")
        .arg(download_dir)
        .args(["-p", &port.to_string(), "-M", "-D", "-U", "-et"])
        .arg("-f")
        .arg(&script)
        .arg(torrent);
    (command, done)
}

/// Asserts that every file in `relative` is byte-identical under `expected`
/// and `actual`, naming the first differing offset otherwise.
pub fn assert_same_files(expected: &Path, actual: &Path, relative: &[&str]) {
    for rel in relative {
        let want = fs::read(expected.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        let got = fs::read(actual.join(rel))
            .unwrap_or_else(|e| panic!("{rel} missing under {}: {e}", actual.display()));
        if want != got {
            let at = want.iter().zip(&got).position(|(a, b)| a != b);
            panic!(
                "{rel} differs: {} bytes expected, {} got, first difference at {:?}",
                want.len(),
                got.len(),
                at.unwrap_or(want.len().min(got.len()))
            );
        }
    }
}

/// utime + stime of process `pid`, in clock ticks (`/proc/PID/stat`
/// fields 14 and 15, counted after the command name in parentheses).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    fields.iter().sum()
}

/// The number after `field` in `/proc/PID/status` (kB for memory lines).
pub fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
