//! Downloads from magnet links (BEP 9), pollen to pollen on 127.0.0.1: a
//! leecher that knows only `magnet:?xt=urn:btih:HEX` and the seeder's
//! address (`x.pe`), or only a tracker (`tr=`, pollen's built-in tracker),
//! fetches the info dictionary, then the data of a multi-file torrent, byte
//! for byte, and saves the torrent file as `DEST/.pollen/<hex>.torrent`.
//! A rerun of a finished magnet download needs no peer at all; one stopped
//! (SIGTERM) in its data phase resumes and completes. A peer that sends
//! wrong metadata is banned (by its address), one that announces an
//! impossible `metadata_size` is dropped, one that rejects every request is
//! outlasted, and the honest seeder beside them supplies the metadata; a
//! metadata of two pieces, fetched beside such peers, bans nobody.
//!
//! Every process is killed when its test ends and every wait has a deadline
//! (`common::process`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use common::clients::{pollen_command, Proc};
use common::process::{assert_same_tree, wait_for, Pollen};
use common::scripted_peer::{MetadataBehavior, ScriptedSeeder, SeederBehavior};
use common::{info_field, pollen, seeded_torrent, TempDir};
use pollen::metadata::METADATA_PIECE_LEN;
use pollen::metainfo::Metainfo;

/// A multi-file tree in nested folders whose pieces straddle the files (no
/// size is a multiple of the piece size); 8,012,349 bytes.
const SHARE: &[(&str, usize, u64)] = &[
    ("share/a.bin", 3_000_001, 301),
    ("share/docs/readme.txt", 12_345, 302),
    ("share/d/e/c.bin", 5_000_003, 303),
];
/// 64 KiB pieces: 123 pieces, an info dictionary of about 2.6 KB, so the
/// metadata is one `ut_metadata` piece.
const PIECE_LEN: u32 = 64 * 1024;

/// Longest a whole download (metadata and data) may take here.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);
/// Longest pollen may take to leave after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// One test's torrent: the seed's files, the `.torrent` and its metainfo.
struct Share {
    tmp: TempDir,
    seed: PathBuf,
    torrent: PathBuf,
    meta: Metainfo,
}

impl Share {
    fn new(tag: &str) -> Share {
        let tmp = TempDir::new(tag);
        let (seed, torrent) = seeded_torrent(tmp.path(), SHARE, Some(PIECE_LEN));
        let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
        assert!(meta.files.len() > 1, "a multi-file torrent");
        Share {
            tmp,
            seed,
            torrent,
            meta,
        }
    }

    fn hex(&self) -> String {
        self.meta.info_hash.to_hex()
    }

    /// `magnet:?xt=urn:btih:HEX&dn=share` and `params` (values percent-encoded).
    fn magnet(&self, params: &[(&str, &str)]) -> String {
        let mut link = format!("magnet:?xt=urn:btih:{}&dn={}", self.hex(), self.meta.name);
        for (key, value) in params {
            link.push_str(&format!("&{key}={}", percent_encode(value)));
        }
        link
    }

    fn dest(&self) -> PathBuf {
        self.tmp.path().join("leech")
    }

    /// The torrent file a magnet download saves under `dest`.
    fn saved_torrent(&self) -> PathBuf {
        self.dest()
            .join(".pollen")
            .join(format!("{}.torrent", self.hex()))
    }

    /// The seeder's copy and the leecher's are the same, byte for byte.
    fn assert_downloaded(&self) {
        assert_same_tree(&self.seed.join("share"), &self.dest().join("share"));
    }

    /// The saved torrent file exists, `pollen info` reads it and shows this
    /// torrent's info-hash, and its info dictionary is the seeder's, byte
    /// for byte. Returns the `pollen info` output.
    fn assert_saved_torrent(&self) -> String {
        let path = self.saved_torrent();
        assert!(path.is_file(), "{} was not saved", path.display());
        let out = pollen(["info".as_ref(), path.as_os_str()]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "pollen info {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            info_field(&stdout, "info-hash:"),
            Some(self.hex().as_str()),
            "{stdout}"
        );
        let saved = Metainfo::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved.info_hash, self.meta.info_hash);
        assert_eq!(saved.info_bytes, self.meta.info_bytes);
        stdout
    }

    /// A pollen leecher of `link` into `dest` (`-v`: info log on stderr).
    fn leecher(&self, link: &str, extra: &[&str]) -> Pollen {
        let mut args: Vec<std::ffi::OsString> =
            vec![link.into(), "-d".into(), self.dest().into(), "-v".into()];
        args.extend(extra.iter().map(|a| a.into()));
        Pollen::start(args)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits for `leecher` to exit and checks it succeeded; returns its log.
fn finish(leecher: &mut Pollen) -> String {
    let status = leecher.wait(DOWNLOAD_LIMIT);
    let log = leecher.stderr();
    assert!(status.success(), "leecher exited with {status}:\n{log}");
    log
}

/// The byte count after `downloaded ` in the `session totals` line.
fn downloaded_bytes(log: &str) -> u64 {
    log.lines()
        .find_map(|l| l.split("session totals: ").nth(1))
        .and_then(|rest| rest.split("downloaded ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no session totals line:\n{log}"))
}

/// Bytes on disk under `dir` (allocated blocks: the files are sparse).
fn on_disk(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut sum = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            sum += on_disk(&entry.path());
        } else {
            sum += meta.blocks() * 512;
        }
    }
    sum
}

/// A magnet download from a pollen seeder given as `x.pe` only, with
/// `--no-tracker`; checks the result and the saved torrent.
fn download_from_seeder(share: &Share, seeder: &mut Pollen) -> String {
    let link = share.magnet(&[("x.pe", &seeder.peer_arg())]);
    let mut leecher = share.leecher(&link, &["--no-tracker"]);
    let log = finish(&mut leecher);
    assert!(log.contains("info-hash verified"), "{log}");
    share.assert_downloaded();
    share.assert_saved_torrent();
    log
}

#[test]
fn a_magnet_link_with_only_the_seeders_address_downloads_a_multi_file_torrent() {
    let share = Share::new("magnet-xpe");
    let mut seeder = Pollen::seeder(&share.torrent, &share.seed, &[]);
    let log = download_from_seeder(&share, &mut seeder);
    assert_eq!(downloaded_bytes(&log), share.meta.total_len(), "{log}");
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn a_magnet_link_with_only_a_tracker_downloads_through_pollens_tracker() {
    let share = Share::new("magnet-tr");
    let tracker = common::process::Tracker::start(&[]);
    // The torrent names no tracker: the seeder is told of it on the command line.
    let mut seeder = Pollen::start([
        share.torrent.as_os_str(),
        "-d".as_ref(),
        share.seed.as_os_str(),
        "--seed".as_ref(),
        "--tracker".as_ref(),
        tracker.http.as_ref(),
        "-q".as_ref(),
    ]);
    seeder.port();
    let link = share.magnet(&[("tr", &tracker.http)]);
    let mut leecher = share.leecher(&link, &[]);
    let log = finish(&mut leecher);
    assert!(log.contains("info-hash verified"), "{log}");
    share.assert_downloaded();
    let info = share.assert_saved_torrent();
    assert!(
        info.contains(&tracker.http),
        "the saved torrent keeps the link's tracker:\n{info}"
    );
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
}

#[test]
fn a_finished_magnet_download_reruns_from_its_saved_torrent_without_any_peer() {
    let share = Share::new("magnet-rerun");
    let mut seeder = Pollen::seeder(&share.torrent, &share.seed, &[]);
    let peer = seeder.peer_arg();
    download_from_seeder(&share, &mut seeder);
    seeder.kill();

    // The same link: its x.pe peer is gone, and it is not needed.
    let link = share.magnet(&[("x.pe", &peer)]);
    let mut again = share.leecher(&link, &["--no-tracker"]);
    let log = finish(&mut again);
    assert!(log.contains("metadata from an earlier run"), "{log}");
    assert_eq!(downloaded_bytes(&log), 0, "{log}");

    // No tracker and no peer at all: the saved torrent is enough.
    let mut bare = share.leecher(
        &format!("magnet:?xt=urn:btih:{}", share.hex()),
        &["--no-tracker"],
    );
    let log = finish(&mut bare);
    assert!(log.contains("metadata from an earlier run"), "{log}");
    assert_eq!(downloaded_bytes(&log), 0, "{log}");
    share.assert_downloaded();
    share.assert_saved_torrent();
}

/// `(verified, total)` from pollen's `stopped at X % (N of M pieces)` line.
fn stopped_pieces(log: &str) -> (u32, u32) {
    let rest = log
        .lines()
        .find_map(|l| l.split("stopped at ").nth(1))
        .and_then(|rest| rest.split(" (").nth(1))
        .unwrap_or_else(|| panic!("no 'stopped at' line:\n{log}"));
    let words: Vec<&str> = rest.split(' ').collect();
    match words.as_slice() {
        [done, "of", total, ..] => (done.parse().unwrap(), total.parse().unwrap()),
        _ => panic!("unexpected stop line {rest:?}"),
    }
}

#[test]
fn a_magnet_download_stopped_in_its_data_phase_resumes_and_completes() {
    let share = Share::new("magnet-resume");
    let mut seeder = Pollen::seeder(&share.torrent, &share.seed, &[]);
    let link = share.magnet(&[("x.pe", &seeder.peer_arg())]);
    let total = share.meta.total_len();

    // Slowed to 1 MiB/s (after a short burst), so the stop lands mid-way.
    let mut first = share.leecher(&link, &["--no-tracker", "--max-down", "1M"]);
    let data = share.dest().join("share");
    let started = wait_for(DOWNLOAD_LIMIT, || {
        first.has_exited() || (share.saved_torrent().is_file() && on_disk(&data) >= 2 << 20)
    });
    assert!(started && !first.has_exited(), "{}", first.stderr());
    first.terminate();
    let status: ExitStatus = first.wait(STOP_LIMIT);
    let log = first.stderr();
    assert_eq!(status.code(), Some(143), "stopped by SIGTERM:\n{log}");
    let (done, pieces) = stopped_pieces(&log);
    assert!(done > 0 && done < pieces, "stopped with {done} of {pieces}");
    share.assert_saved_torrent();

    let mut second = share.leecher(&link, &["--no-tracker"]);
    let log = finish(&mut second);
    assert!(log.contains("metadata from an earlier run"), "{log}");
    let fetched = downloaded_bytes(&log);
    assert!(
        fetched < total,
        "the rerun downloaded {fetched} of {total} bytes"
    );
    share.assert_downloaded();
    eprintln!("stopped at {done} of {pieces} pieces; the rerun fetched {fetched} of {total} bytes");
}

/// The leecher knows three hostile metadata peers (`x.pe`): one sends
/// corrupt metadata, one announces a `metadata_size` over 10 MiB, one
/// rejects every request. The metadata is one piece, so whoever supplies
/// it supplies all of it: the liar is proven wrong at once and banned. The
/// honest pollen seeder dials the leecher only once the ban is logged and
/// the rejecter has rejected, so the order is fixed; then the leecher
/// gets the right metadata from it and completes. Meanwhile its status
/// line (on stderr, a plain line off a terminal whenever the activity
/// changes) says it is still fetching the metadata: `fetching metadata 0/1`.
#[test]
fn a_metadata_liar_is_banned_and_the_honest_seeder_beside_it_supplies_the_metadata() {
    let share = Share::new("magnet-hostile");
    assert!(share.meta.info_bytes.len() <= METADATA_PIECE_LEN);
    let hostile = |metadata| {
        ScriptedSeeder::start_with_metadata(
            &share.meta,
            &share.seed,
            SeederBehavior::Honest,
            metadata,
        )
    };
    let liar = hostile(MetadataBehavior::Corrupt);
    let oversized = hostile(MetadataBehavior::Oversized);
    let rejecter = hostile(MetadataBehavior::RejectAll);
    let link = share.magnet(&[
        ("x.pe", &liar.addr().to_string()),
        ("x.pe", &oversized.addr().to_string()),
        ("x.pe", &rejecter.addr().to_string()),
    ]);
    let mut command = pollen_command([link.as_str(), "--no-tracker", "-v", "-d"]);
    command.arg(share.dest());
    let mut leecher = Proc::spawn("magnet-leecher", command, share.tmp.path());
    let listening = leecher.wait_for_line("listening on", DOWNLOAD_LIMIT);
    let port = listening.rsplit(':').next().unwrap();
    let leecher_addr = format!("127.0.0.1:{port}");

    let ban = format!("{}: banned: sent metadata that does not match", liar.addr());
    leecher.wait_for_stderr(&ban, DOWNLOAD_LIMIT);
    assert!(
        wait_for(DOWNLOAD_LIMIT, || rejecter.metadata_rejects_sent() > 0),
        "the rejecter was never asked:\n{}",
        leecher.report()
    );
    // Only the rejecter is left, and it gives nothing: still fetching.
    assert!(
        wait_for(DOWNLOAD_LIMIT, || leecher
            .stderr()
            .contains("fetching metadata 0/1")),
        "{}",
        leecher.report()
    );
    assert!(!leecher.stderr().contains("info-hash verified"));

    let mut honest = Pollen::seeder(&share.torrent, &share.seed, &["--peer", &leecher_addr]);
    leecher.wait_success(DOWNLOAD_LIMIT);
    let log = leecher.stderr();
    assert!(log.contains("info-hash verified"), "{log}");
    share.assert_downloaded();
    share.assert_saved_torrent();

    // The ban names the liar and nobody else.
    let banned: Vec<&str> = log.lines().filter(|l| l.contains("banned")).collect();
    assert!(!banned.is_empty(), "{log}");
    for line in &banned {
        assert!(
            line.contains(&liar.addr().to_string()),
            "a ban of someone else than the liar {}: {line}\n{log}",
            liar.addr()
        );
    }
    assert_eq!(liar.metadata_pieces_sent(), 1, "{log}");
    assert_eq!(liar.connections(), 1, "the banned liar was dialled again");
    // The oversized size closed that peer before anything was asked of it.
    let dropped = format!(
        "{} (outgoing): dropped: bad metadata exchange: metadata_size",
        oversized.addr()
    );
    assert!(log.contains(&dropped), "{log}");
    assert_eq!(oversized.metadata_requests(), 0);
    assert_eq!(rejecter.metadata_pieces_sent(), 0);
    for peer in [&liar, &oversized, &rejecter] {
        assert!(peer.errors().is_empty(), "{:?}", peer.errors());
    }
    assert!(!honest.has_exited(), "{}", honest.stderr());
}

/// Files with long names, so the info dictionary spans two 16 KiB
/// metadata pieces while the payload stays small (about 300 KB).
fn album() -> Vec<(String, usize, u64)> {
    (0..300)
        .map(|i| {
            let name = format!("album/track-{i:04}-with-a-long-descriptive-name.dat");
            (name, 700 + i % 300, 500 + i as u64)
        })
        .collect()
}

/// A metadata of two pieces, with everyone listed from the start (`x.pe`):
/// an honest pollen seeder, a peer that announces a `metadata_size` over
/// 10 MiB and one that rejects every metadata request. Which peers get
/// asked depends on who joins the fetch first (the rejecter often is not
/// asked at all; the count is printed); whatever the order, the download
/// completes, the oversized peer is never asked, and nobody is banned:
/// rejecting is no lie.
#[test]
fn a_two_piece_metadata_beside_oversized_and_rejecting_peers_completes_and_bans_nobody() {
    let tmp = TempDir::new("magnet-hostile-start");
    let files = album();
    let files: Vec<(&str, usize, u64)> =
        files.iter().map(|(n, l, s)| (n.as_str(), *l, *s)).collect();
    let (seed, torrent) = seeded_torrent(tmp.path(), &files, Some(16 * 1024));
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let metadata_pieces = meta.info_bytes.len().div_ceil(METADATA_PIECE_LEN);
    assert!(metadata_pieces >= 2, "{} bytes", meta.info_bytes.len());
    let hex = meta.info_hash.to_hex();

    let mut honest = Pollen::seeder(&torrent, &seed, &[]);
    let hostile = |metadata| {
        ScriptedSeeder::start_with_metadata(&meta, &seed, SeederBehavior::Honest, metadata)
    };
    let oversized = hostile(MetadataBehavior::Oversized);
    let rejecter = hostile(MetadataBehavior::RejectAll);
    let link = format!(
        "magnet:?xt=urn:btih:{hex}&dn=album&x.pe={}&x.pe={}&x.pe={}",
        oversized.addr(),
        rejecter.addr(),
        honest.peer_arg()
    );
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::start([
        link.as_ref(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ]);
    let log = finish(&mut leecher);
    assert!(log.contains("info-hash verified"), "{log}");
    assert_same_tree(&seed.join("album"), &dest.join("album"));
    let saved = dest.join(".pollen").join(format!("{hex}.torrent"));
    let again = Metainfo::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(again.info_hash, meta.info_hash);

    // The download is small and may end before the oversized peer's
    // handshake is read; whether or not it was, nobody is banned.
    assert!(!log.contains("banned"), "{log}");
    assert_eq!(oversized.metadata_requests(), 0);
    assert_eq!(rejecter.metadata_pieces_sent(), 0);
    eprintln!(
        "the rejecter was asked {} time(s)",
        rejecter.metadata_requests()
    );
    for peer in [&oversized, &rejecter] {
        assert!(peer.errors().is_empty(), "{:?}", peer.errors());
    }
    assert!(!honest.has_exited(), "{}", honest.stderr());
}
