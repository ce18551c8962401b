//! Helpers shared by the integration tests: scratch directories, the
//! fixtures' payload formula, and running the `pollen` binary with a deadline.
//! `clients` drives real BitTorrent programs (interop tests, swarm bench);
//! `scripted_peer` is a BitTorrent peer whose behaviour a test scripts;
//! `harness` runs the test files whose tools may be missing (ignored, not passed);
//! `browser` drives a headless Chromium through chromedriver (the daemon's pages).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod clients;
pub mod daemon;
pub mod harness;
pub mod krpc_node;
pub mod load;
pub mod scripted_peer;
pub mod source;
pub mod tmux;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pollen-it-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The repository's `fixtures/` directory.
/// The environment setting that keeps a pollen from the public DHT routers
/// (an empty `POLLEN_DHT_ROUTERS`): tests never send traffic outside
/// 127.0.0.0/8 and ::1, and a release build (make interop) would otherwise
/// use them when given no `--dht-bootstrap`.
#[allow(dead_code)]
pub const NO_PUBLIC_DHT: (&str, &str) = ("POLLEN_DHT_ROUTERS", "");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Byte `i` of payload stream `seed` (fixtures/README.md, "Payload bytes").
pub fn payload_byte(seed: u64, i: u64) -> u8 {
    let mut z = ((seed << 32) | i).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z & 0xff) as u8
}

/// The first `len` bytes of payload stream `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| payload_byte(seed, i)).collect()
}

/// Writes `files` (relative path, length, seed) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, usize, u64)]) {
    for (rel, len, seed) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, payload(*seed, *len)).unwrap();
    }
}

/// Runs a command to completion, killing it if it outlives `limit`.
pub fn run_with_deadline(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} ran past {limit:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `pollen` with `args` (at most 60 s).
pub fn pollen<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_pollen"));
    command.args(args).env(NO_PUBLIC_DHT.0, NO_PUBLIC_DHT.1);
    run_with_deadline(command, Duration::from_secs(60))
}

/// Whether `program` can be run (found on PATH).
pub fn have_program(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether Debian's python has the libtorrent module.
pub fn have_libtorrent() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The value after `label` in `pollen info` output.
pub fn info_field<'a>(stdout: &'a str, label: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
}
pub mod http_tracker;
pub mod process;

/// Writes `files` under `root/seed` and a torrent of their top entry (the
/// first path element of the first file) with `piece_len` to `root/t.torrent`.
/// Returns (seed directory, torrent path).
pub fn seeded_torrent(
    root: &Path,
    files: &[(&str, usize, u64)],
    piece_len: Option<u32>,
) -> (PathBuf, PathBuf) {
    let seed = root.join("seed");
    write_tree(&seed, files);
    let top = files
        .first()
        .and_then(|f| f.0.split('/').next())
        .expect("at least one file");
    let options = pollen::create::CreateOptions {
        piece_len,
        ..Default::default()
    };
    let torrent = root.join("t.torrent");
    fs::write(
        &torrent,
        pollen::create::create_torrent(&seed.join(top), &options).unwrap(),
    )
    .unwrap();
    (seed, torrent)
}
