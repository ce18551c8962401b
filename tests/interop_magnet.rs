//! pollen downloads from a libtorrent seeder given only a magnet link
//! (BEP 9): once with a tracker (`tr=`, opentracker, which the seeder
//! announces to) and once with only the seeder's address (`x.pe`,
//! `--no-tracker`). pollen fetches the info dictionary from libtorrent over
//! `ut_metadata`, checks it against the info-hash, downloads a multi-file
//! torrent byte for byte, and saves the torrent file as
//! `DEST/.pollen/<info-hash>.torrent`, which `pollen info` reads back with
//! the same info-hash.
//!
//! Run by `make interop` (`POLLEN_INTEROP=1`), which installs the Debian
//! packages first; plain `cargo test` reports these tests as ignored, with
//! the reason (`common::harness`; `harness = false` in Cargo.toml). Every
//! process is killed when its test ends, and every wait has a deadline
//! (`common::clients`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::clients::{assert_same_files, libtorrent, pollen_command, tracked_torrent, Proc, Role};
use common::harness::{self, interop, program, trial, Need};
use common::{info_field, pollen, seeded_torrent, write_tree, TempDir};
use pollen::metainfo::Metainfo;

fn main() {
    harness::run(vec![
        trial!(
            pollen_downloads_a_magnet_from_a_libtorrent_seeder_found_through_opentracker,
            [
                interop(),
                program("opentracker", "opentracker"),
                Need::Libtorrent
            ]
        ),
        trial!(
            pollen_downloads_a_magnet_from_a_libtorrent_seeder_given_as_x_pe,
            [interop(), Need::Libtorrent]
        ),
    ]);
}

/// A multi-file tree in nested folders; no size is a multiple of the
/// 256 KiB piece, so pieces straddle the files. 24,012,346 bytes.
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 9_000_001, 401),
    ("share/docs/readme.txt", 12_345, 402),
    ("share/media/deep/b.bin", 15_000_000, 403),
];

const PIECE_SIZE: &str = "256K";

/// Longest libtorrent may take to check its data and reach the tracker.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Longest the whole magnet download (metadata, then 24 MB) may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// libtorrent's own time limit: longer than any test, so it only matters
/// if the test runner itself were killed.
const STOP_AFTER: Duration = Duration::from_secs(600);

fn names() -> Vec<&'static str> {
    SHARE.iter().map(|(path, _, _)| *path).collect()
}

/// `magnet:?xt=urn:btih:HEX&dn=NAME` and `params` (values percent-encoded).
fn magnet(meta: &Metainfo, params: &[(&str, &str)]) -> String {
    let mut link = format!(
        "magnet:?xt=urn:btih:{}&dn={}",
        meta.info_hash.to_hex(),
        meta.name
    );
    for (key, value) in params {
        let value: String = value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        link.push_str(&format!("&{key}={value}"));
    }
    link
}

/// Starts a libtorrent seeder of `torrent` from `seed` and waits until it
/// has checked its data; returns it and its port.
fn libtorrent_seeder(torrent: &Path, seed: &Path, logs: &Path) -> (Proc, u16) {
    let command = libtorrent(Role::Seed, torrent, seed, STOP_AFTER);
    let mut seeder = Proc::spawn("libtorrent-seeder", command, logs);
    let port = seeder
        .wait_for_line("listening", STARTUP_LIMIT)
        .parse()
        .unwrap();
    seeder.wait_for_line("seeding", STARTUP_LIMIT);
    (seeder, port)
}

/// Runs pollen on `link` into `dest` (plus `extra`) until it exits 0.
fn pollen_magnet_leecher(link: &str, dest: &Path, extra: &[&str], logs: &Path) -> Proc {
    let mut command = pollen_command(["-v", "-p", "0", "-d"]);
    command.arg(dest).args(extra).arg(link);
    let mut leecher = Proc::spawn("pollen-magnet-leecher", command, logs);
    leecher.wait_success(TRANSFER_LIMIT);
    leecher
}

/// The download is the seed's copy byte for byte, and the saved torrent
/// file has the torrent's info-hash (by `pollen info`) and its info
/// dictionary, byte for byte. Returns `pollen info`'s output.
fn assert_magnet_result(meta: &Metainfo, seed: &Path, dest: &Path, leecher: &Proc) -> String {
    assert!(
        leecher.stderr().contains("info-hash verified"),
        "{}",
        leecher.report()
    );
    assert_same_files(seed, dest, &names());
    let hex = meta.info_hash.to_hex();
    let saved: PathBuf = dest.join(".pollen").join(format!("{hex}.torrent"));
    let out = pollen(["info".as_ref(), saved.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pollen info {}: {}",
        saved.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        info_field(&stdout, "info-hash:"),
        Some(hex.as_str()),
        "{stdout}"
    );
    let again = Metainfo::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(again.info_hash, meta.info_hash);
    assert_eq!(again.info_bytes, meta.info_bytes);
    stdout
}

/// The libtorrent seeder announces to opentracker (the torrent's tracker);
/// pollen knows only `magnet:?xt=...&dn=...&tr=URL` and finds it there.
fn pollen_downloads_a_magnet_from_a_libtorrent_seeder_found_through_opentracker() {
    let tmp = TempDir::new("interop-magnet-tr");
    let seed = tmp.path().join("seed");
    write_tree(&seed, SHARE);
    let torrent = tmp.path().join("share.torrent");
    let (mut tracker, hex) = tracked_torrent(tmp.path(), &seed.join("share"), &torrent, PIECE_SIZE);
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert_eq!(meta.info_hash.to_hex(), hex);
    let (mut seeder, _) = libtorrent_seeder(&torrent, &seed, tmp.path());
    tracker.wait_for_seeders(&hex, 1, STARTUP_LIMIT, &mut [&mut seeder]);

    let url = tracker.announce_url();
    let link = magnet(&meta, &[("tr", &url)]);
    let dest = tmp.path().join("leech");
    let leecher = pollen_magnet_leecher(&link, &dest, &[], tmp.path());
    let info = assert_magnet_result(&meta, &seed, &dest, &leecher);
    assert!(info.contains(&url), "the saved torrent keeps tr=:\n{info}");
    seeder.assert_running();
}

/// No tracker at all: pollen knows only `magnet:?xt=...&x.pe=127.0.0.1:PORT`
/// (`--no-tracker`) and dials the libtorrent seeder.
fn pollen_downloads_a_magnet_from_a_libtorrent_seeder_given_as_x_pe() {
    let tmp = TempDir::new("interop-magnet-xpe");
    let (seed, torrent) = seeded_torrent(tmp.path(), SHARE, Some(256 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(meta.trackers.is_empty());
    let (mut seeder, port) = libtorrent_seeder(&torrent, &seed, tmp.path());

    let link = magnet(&meta, &[("x.pe", &format!("127.0.0.1:{port}"))]);
    let dest = tmp.path().join("leech");
    let leecher = pollen_magnet_leecher(&link, &dest, &["--no-tracker"], tmp.path());
    assert_magnet_result(&meta, &seed, &dest, &leecher);
    seeder.assert_running();
}
