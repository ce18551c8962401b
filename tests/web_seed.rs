//! BEP 19 web seeds against a real HTTP server on 127.0.0.1: a small
//! range-capable Python server (`tests/range_server.py`; Python 3.11's
//! `http.server` ignores `Range`) serves a directory, and pollen downloads
//! a multi-file torrent whose `url-list` points at it, made with
//! `pollen create --web-seed`:
//!
//! - from the web seed alone (`--no-tracker`, no `--peer`);
//! - from the web seed and a pollen seeder together;
//! - from a web seed serving a corrupted copy of one file and an honest
//!   pollen seeder: the download is still byte-identical (the bad pieces
//!   fail their hash and come from the peer) and the web seed is backed off.
//!
//! And: a single-file torrent uses its URL as is; BEP 47 padding is never
//! asked for; a redirect is followed; a 404 and a redirect loop back their
//! web seeds off; an `https://`-only web seed is no source.
//!
//! The server needs `python3`; without it those tests are ignored with the
//! reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::harness::{self, program, trial};
use common::process::{assert_same_tree, Pollen};
use common::{pollen, write_tree, TempDir};

/// How long one download may take (a few MiB on loopback take about a second).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);

/// Every test of this file (`harness = false`: a `#[test]` here would not run).
fn main() {
    harness::run(vec![
        trial!(
            a_multi_file_torrent_downloads_from_a_web_seed_alone,
            [program("python3", "python3")]
        ),
        trial!(
            a_web_seed_and_a_peer_download_together,
            [program("python3", "python3")]
        ),
        trial!(
            a_web_seed_with_a_corrupted_file_is_backed_off_and_the_peer_fills_in,
            [program("python3", "python3")]
        ),
        trial!(
            a_single_file_torrent_uses_the_web_seed_url_as_is,
            [program("python3", "python3")]
        ),
        trial!(
            padding_files_are_never_fetched_from_a_web_seed,
            [program("python3", "python3")]
        ),
        trial!(an_https_only_web_seed_is_no_source_under_no_tracker, []),
        trial!(
            a_redirecting_web_seed_is_followed,
            [program("python3", "python3")]
        ),
        trial!(
            web_seeds_that_answer_404_or_redirect_for_ever_are_backed_off,
            [program("python3", "python3")]
        ),
    ]);
}

/// `tests/range_server.py` serving `dir`; killed on drop.
struct RangeServer {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl RangeServer {
    fn start(dir: &Path) -> RangeServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/range_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        let (tx, rx) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = RangeServer {
            child,
            port: 0,
            log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("range server printed no port: {}", server.log()));
        server.port = line
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Its request log so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The payload: a directory `share` whose pieces (32 KiB) straddle files,
/// with an empty file and names that need percent-encoding.
const FILES: &[(&str, usize, u64)] = &[
    ("share/a.bin", 300_000, 1),
    ("share/empty", 0, 2),
    ("share/sub dir/b+c é.bin", 700_001, 3),
    ("share/z", 40_000, 4),
];

/// Writes the payload under `root/seed` and makes `root/t.torrent` with
/// `pollen create --web-seed URL` (the URL names the server's root, which
/// holds `share/`). Returns (seed directory, torrent).
fn make_torrent(root: &Path, web_seed: &str) -> (PathBuf, PathBuf) {
    make_torrent_with(root, &[web_seed])
}

/// [`make_torrent`] with several web seeds.
fn make_torrent_with(root: &Path, web_seeds: &[&str]) -> (PathBuf, PathBuf) {
    let seed = root.join("seed");
    write_tree(&seed, FILES);
    let torrent = root.join("t.torrent");
    let share = seed.join("share");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "create".as_ref(),
        share.as_os_str(),
        "-o".as_ref(),
        torrent.as_os_str(),
        "--piece-size".as_ref(),
        "32768".as_ref(),
        "-q".as_ref(),
    ];
    for url in web_seeds {
        args.extend(["--web-seed".as_ref(), std::ffi::OsStr::new(*url)]);
    }
    let out = pollen(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (seed, torrent)
}

/// A leecher of `torrent` into `dest` with no tracker, `-v` (its log
/// shows the web seed's back-off), and `extra` arguments.
fn leecher(torrent: &Path, dest: &Path, extra: &[&str]) -> Pollen {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        torrent.as_os_str(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    Pollen::start(args)
}

fn a_multi_file_torrent_downloads_from_a_web_seed_alone() {
    let dir = TempDir::new("webseed-alone");
    // The server starts first: its port goes into the torrent.
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = RangeServer::start(&served);
    let (seed, torrent) = make_torrent(dir.path(), &server.url());
    std::fs::rename(seed.join("share"), served.join("share")).unwrap();
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &[]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    assert!(
        status.success(),
        "{status}; pollen:\n{}\nserver:\n{}",
        leech.stderr(),
        server.log()
    );
    assert_same_tree(&served, &dest);
    assert!(server
        .log()
        .contains("\"GET /share/sub%20dir/b%2Bc%20%C3%A9.bin HTTP/1.1\" 206"));
}

fn a_web_seed_and_a_peer_download_together() {
    let dir = TempDir::new("webseed-peer");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = RangeServer::start(&served);
    let (seed, torrent) = make_torrent(dir.path(), &server.url());
    copy_tree(&seed, &served);
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &["--peer", &peer]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    assert!(status.success(), "{status}; pollen:\n{}", leech.stderr());
    assert_same_tree(&seed, &dest);
    // The web seed took part (it joins before the peer's handshake is done).
    assert!(server.log().contains("206"), "{}", server.log());
}

fn a_web_seed_with_a_corrupted_file_is_backed_off_and_the_peer_fills_in() {
    let dir = TempDir::new("webseed-bad");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = RangeServer::start(&served);
    let (seed, torrent) = make_torrent(dir.path(), &server.url());
    copy_tree(&seed, &served);
    // A few flipped bytes all through the largest file: most of its
    // pieces fail from the web seed.
    let bad = served.join("share/sub dir/b+c é.bin");
    let mut bytes = std::fs::read(&bad).unwrap();
    for at in (1_000..bytes.len()).step_by(20_000) {
        bytes[at] ^= 0x5a;
    }
    std::fs::write(&bad, bytes).unwrap();
    // A slow peer: the web seed sends most pieces alone, so the bad ones
    // fail with one sender (blamed at once, not after a smart-ban refetch).
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "300K"]);
    let peer = seeder.peer_arg();
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &["--peer", &peer]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    let log = leech.stderr();
    assert!(status.success(), "{status}; pollen:\n{log}");
    assert_same_tree(&seed, &dest);
    assert!(
        log.lines()
            .any(|l| l.contains("web seed http://127.0.0.1") && l.contains("backing off")),
        "no back-off in the log:\n{log}"
    );
}

fn a_redirecting_web_seed_is_followed() {
    let dir = TempDir::new("webseed-redirect");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = RangeServer::start(&served);
    let (seed, torrent) = make_torrent(dir.path(), &format!("{}redirect/", server.url()));
    copy_tree(&seed, &served);
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &[]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    assert!(status.success(), "{status}; pollen:\n{}", leech.stderr());
    assert_same_tree(&seed, &dest);
    let log = server.log();
    assert!(
        log.contains("\"GET /redirect/share/z HTTP/1.1\" 302"),
        "{log}"
    );
    assert!(log.contains("\"GET /share/z HTTP/1.1\" 206"), "{log}");
}

fn web_seeds_that_answer_404_or_redirect_for_ever_are_backed_off() {
    let dir = TempDir::new("webseed-404");
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = RangeServer::start(&served);
    let missing = format!("{}missing/", server.url());
    let looping = format!("{}loop/", server.url());
    let (seed, torrent) = make_torrent_with(dir.path(), &[&missing, &looping]);
    // Slow, so both web seeds (which take turns: one server) are tried.
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "300K"]);
    let peer = seeder.peer_arg();
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &["--peer", &peer]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    let log = leech.stderr();
    assert!(status.success(), "{status}; pollen:\n{log}");
    assert_same_tree(&seed, &dest);
    let backed_off = |url: &str, why: &str| {
        log.lines()
            .any(|l| l.contains(&format!("web seed {url}: {why}")) && l.contains("backing off"))
    };
    assert!(backed_off(&missing, "HTTP status 404"), "{log}");
    assert!(backed_off(&looping, "more than 5 redirects"), "{log}");
}

fn a_single_file_torrent_uses_the_web_seed_url_as_is() {
    let dir = TempDir::new("webseed-single");
    let served = dir.path().join("served");
    // On the server the file has another name than in the torrent.
    write_tree(&served, &[("mirror/renamed.iso", 200_001, 7)]);
    let server = RangeServer::start(&served);
    let local = dir.path().join("image.iso");
    std::fs::copy(served.join("mirror/renamed.iso"), &local).unwrap();
    let torrent = dir.path().join("t.torrent");
    let url = format!("{}mirror/renamed.iso", server.url());
    let out = pollen([
        "create".as_ref(),
        local.as_os_str(),
        "-o".as_ref(),
        torrent.as_os_str(),
        "--web-seed".as_ref(),
        url.as_ref(),
        "-q".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = dir.path().join("dl");
    let mut leech = leecher(&torrent, &dest, &[]);
    let status = leech.wait(DOWNLOAD_LIMIT);
    assert!(status.success(), "{status}; pollen:\n{}", leech.stderr());
    let got = std::fs::read(dest.join("image.iso")).unwrap();
    assert!(got == std::fs::read(&local).unwrap(), "image.iso differs");
    assert!(server
        .log()
        .contains("\"GET /mirror/renamed.iso HTTP/1.1\" 206"));
}

/// pollen skips `https://` web seeds (no TLS in the loop yet), so a
/// torrent whose only web seed is one has no source without a tracker or
/// a peer: refused before anything starts, as without web seeds.
fn an_https_only_web_seed_is_no_source_under_no_tracker() {
    let dir = TempDir::new("webseed-https");
    let (_, torrent) = make_torrent(dir.path(), "https://127.0.0.1:1/");
    let dest = dir.path().join("dl");
    let out = pollen([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-tracker without --peer"), "{stderr}");
    assert!(!dest.join("share").exists(), "nothing written");
}

/// A payload tree: (relative path, length, seed) per file.
type Tree = &'static [(&'static str, usize, u64)];

/// The BEP 47 fixtures (fixtures/README.md) with a pad file after their
/// first data file, and their data files: (relative path, length, seed).
const PADDED: &[(&str, Tree)] = &[
    (
        "pad-no-path.torrent",
        &[("padded/a.bin", 10_000, 43), ("padded/b.bin", 20_000, 44)],
    ),
    (
        "bitcomet-padding.torrent",
        &[
            ("bitcomet/a.bin", 10_000, 45),
            ("bitcomet/b.bin", 3_000, 46),
        ],
    ),
];

fn padding_files_are_never_fetched_from_a_web_seed() {
    for (fixture, files) in PADDED {
        let dir = TempDir::new("webseed-pad");
        let served = dir.path().join("served");
        write_tree(&served, files);
        let server = RangeServer::start(&served);
        // `url-list` lives outside `info`: adding it keeps the info-hash.
        let mut bytes = std::fs::read(common::fixtures().join(fixture)).unwrap();
        assert_eq!(bytes.pop(), Some(b'e'));
        let url = server.url();
        bytes.extend_from_slice(format!("8:url-list{}:{url}e", url.len()).as_bytes());
        let torrent = dir.path().join("t.torrent");
        std::fs::write(&torrent, bytes).unwrap();
        let dest = dir.path().join("dl");
        let mut leech = leecher(&torrent, &dest, &[]);
        let status = leech.wait(DOWNLOAD_LIMIT);
        assert!(
            status.success(),
            "{fixture}: {status}; pollen:\n{}",
            leech.stderr()
        );
        assert_same_tree(&served, &dest);
        let log = server.log();
        for (path, _, _) in *files {
            assert!(
                log.contains(&format!("\"GET /{path} HTTP/1.1\" 206")),
                "{log}"
            );
        }
        for line in log.lines().filter(|l| l.contains("\"GET ")) {
            let asked_data = files
                .iter()
                .any(|(path, _, _)| line.contains(&format!("\"GET /{path} HTTP/1.1\" 206")));
            assert!(asked_data, "{fixture}: asked for something else: {line}");
        }
    }
}

/// Copies the tree under `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
