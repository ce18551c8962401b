//! `pollen create` output loads in real clients: transmission-show and
//! libtorrent report the info-hash pollen reports, and libtorrent checks the
//! original files against pollen's piece hashes and finds them complete.
//! A check whose tool is absent is reported as ignored, with the reason (a
//! failure with `POLLEN_INTEROP=1`; `common::harness`); `make test` installs
//! them on Debian.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::harness::{self, program, trial, Need};
use common::{info_field, pollen, run_with_deadline, write_tree, TempDir};

fn main() {
    harness::run(vec![
        trial!(
            transmission_show_reports_the_same_info_hash,
            [program("transmission-show", "transmission-cli")]
        ),
        trial!(
            libtorrent_reports_the_same_hash_and_verifies_every_piece,
            [Need::Libtorrent]
        ),
        trial!(created_torrent_round_trips_through_pollen_info, []),
    ]);
}

/// A tree whose pieces straddle files, with an empty file and nesting.
fn make_share(root: &Path) {
    write_tree(
        root,
        &[
            ("share/a.bin", 10_000, 11),
            ("share/deep/er/b.bin", 45_000, 12),
            ("share/deep/empty", 0, 0),
            ("share/c.txt", 7, 13),
            ("share/z/last.bin", 100_001, 14),
        ],
    );
}

/// Creates a torrent of `share` and returns (torrent path, pollen's info-hash).
fn create(tmp: &TempDir, extra: &[&str]) -> (std::path::PathBuf, String) {
    make_share(tmp.path());
    let torrent = tmp.path().join("share.torrent");
    let mut args = vec![
        "create".to_string(),
        tmp.path().join("share").display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--piece-size".into(),
        "16K".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = pollen(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = pollen(["info".as_ref(), torrent.as_os_str()]);
    let stdout = String::from_utf8(info.stdout).unwrap();
    let hash = info_field(&stdout, "info-hash:").unwrap().to_string();
    (torrent, hash)
}

fn transmission_show_reports_the_same_info_hash() {
    let tmp = TempDir::new("create-tr");
    let (torrent, hash) = create(
        &tmp,
        &[
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--tracker",
            "udp://127.0.0.1:6969",
            "--private",
            "--comment",
            "made by pollen",
        ],
    );
    let mut command = Command::new("transmission-show");
    command.arg(&torrent);
    let out = run_with_deadline(command, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("Hash: {hash}")),
        "pollen says {hash}; transmission-show says\n{stdout}"
    );
    assert!(stdout.contains("Privacy: Private torrent"), "{stdout}");
    assert!(stdout.contains("made by pollen"), "{stdout}");
    // transmission-show leaves out empty files; the other four are listed.
    for name in [
        "share/a.bin",
        "share/deep/er/b.bin",
        "share/c.txt",
        "share/z/last.bin",
    ] {
        assert!(stdout.contains(name), "{name} missing:\n{stdout}");
    }
}

/// Asks libtorrent for the info-hash and to check the files under `save`.
const LIBTORRENT_CHECK: &str = r#"
import sys, time
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
print("hash", str(ti.info_hashes().v1))
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                  "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False})
h = ses.add_torrent({"ti": ti, "save_path": sys.argv[2]})
deadline = time.time() + 60
while time.time() < deadline:
    s = h.status()
    if s.state in (lt.torrent_status.seeding, lt.torrent_status.finished):
        break
    time.sleep(0.05)
s = h.status()
print("pieces", s.num_pieces, ti.num_pieces())
print("progress", s.progress)
"#;

fn libtorrent_reports_the_same_hash_and_verifies_every_piece() {
    let tmp = TempDir::new("create-lt");
    let (torrent, hash) = create(&tmp, &[]);
    let mut command = Command::new("/usr/bin/python3");
    command
        .args(["-c", LIBTORRENT_CHECK])
        .arg(&torrent)
        .arg(tmp.path());
    let out = run_with_deadline(command, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("hash {hash}")),
        "pollen says {hash}; libtorrent:\n{stdout}"
    );
    let pieces = stdout.lines().find(|l| l.starts_with("pieces ")).unwrap();
    let counts: Vec<&str> = pieces.split_whitespace().skip(1).collect();
    assert_eq!(
        counts[0], counts[1],
        "libtorrent found only {} of {} pieces",
        counts[0], counts[1]
    );
}

fn created_torrent_round_trips_through_pollen_info() {
    let tmp = TempDir::new("create-self");
    let (torrent, _) = create(&tmp, &["--no-date"]);
    let info = pollen(["info".as_ref(), torrent.as_os_str()]);
    let stdout = String::from_utf8(info.stdout).unwrap();
    assert_eq!(info_field(&stdout, "name:"), Some("share"));
    assert_eq!(info_field(&stdout, "pieces:"), Some("10"));
    assert!(info_field(&stdout, "total size:")
        .unwrap()
        .starts_with("155008 bytes"));
    assert_eq!(info_field(&stdout, "files ("), Some("5):"));
    // --no-date makes creation reproducible byte for byte.
    let again = tmp.path().join("again.torrent");
    let out = pollen([
        "create".as_ref(),
        tmp.path().join("share").as_os_str(),
        "-o".as_ref(),
        again.as_os_str(),
        "--piece-size".as_ref(),
        "16K".as_ref(),
        "--no-date".as_ref(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(&torrent).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // An existing output is not replaced without --force.
    let out = pollen([
        "create".as_ref(),
        tmp.path().join("share").as_os_str(),
        "-o".as_ref(),
        again.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
