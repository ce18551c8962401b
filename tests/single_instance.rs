//! One pollen per download (issue 11): a second pollen on the same torrent
//! and destination is refused with one line and exit status 1 before it
//! touches anything (even with `--clean`), and the first completes
//! byte-identical; the same torrent into another directory is not refused;
//! `pollen info` and `create` take no lock; the lock of a SIGKILLed pollen
//! does not block; and two sessions in one process exclude each other too
//! (the library API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{assert_same_tree, Pollen};
use common::{pollen, seeded_torrent, TempDir};
use pollen::session::{Config, Session};

/// 16 MiB in two files: at `--max-down 2M` the first leecher runs for
/// several seconds, long enough for the others to try.
const FILES: &[(&str, usize, u64)] = &[
    ("pair/a.bin", 10_000_001, 71),
    ("pair/b.bin", 6_777_215, 72),
];

fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), FILES, Some(256 * 1024));
    (tmp, seed, torrent)
}

fn seeder(torrent: &Path, seed: &Path) -> Pollen {
    Pollen::seeder(torrent, seed, &[])
}

fn leecher_args(
    torrent: &Path,
    dest: &Path,
    peer: &str,
    extra: &[&str],
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        torrent.into(),
        "-d".into(),
        dest.into(),
        "--no-tracker".into(),
        "--peer".into(),
        peer.into(),
    ];
    args.extend(extra.iter().map(|s| s.into()));
    args
}

/// A leecher slowed to 2 MiB/s, already holding its lock (it printed its
/// listening line, which comes after the lock is taken).
fn slow_leecher(torrent: &Path, dest: &Path, peer: &str) -> Pollen {
    let mut run = Pollen::start(leecher_args(
        torrent,
        dest,
        peer,
        &["--max-down", "2M", "-v"],
    ));
    run.port();
    run
}

#[test]
fn a_second_pollen_on_the_same_download_is_refused_and_the_first_completes() {
    let (tmp, seed, torrent) = setup("one-per-dest");
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    let mut first = slow_leecher(&torrent, &dest, &peer);

    // --clean would delete the first one's files if it got that far.
    let second = pollen(leecher_args(&torrent, &dest, &peer, &["--clean"]));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: pair is already being downloaded into {} by another pollen (pid {})\n",
            dest.display(),
            first.id()
        )
    );
    assert!(second.stdout.is_empty(), "{:?}", second.stdout);
    assert!(
        !first.has_exited(),
        "the first finished before the second tried: the test proves nothing\n{}",
        first.stderr()
    );
    // So is a second --check.
    let again = pollen(leecher_args(&torrent, &dest, &peer, &["--check"]));
    assert_eq!(again.status.code(), Some(1));
    // `pollen info` and `pollen create` take no lock.
    let info = pollen(["info".as_ref(), torrent.as_os_str()]);
    assert!(info.status.success(), "{info:?}");
    let made = tmp.path().join("again.torrent");
    let create = pollen([
        "create".as_ref(),
        seed.join("pair").as_os_str(),
        "-o".as_ref(),
        made.as_os_str(),
    ]);
    assert!(create.status.success(), "{create:?}");

    // The same torrent into another directory is another download.
    let other = tmp.path().join("elsewhere");
    let third = pollen(leecher_args(&torrent, &other, &peer, &[]));
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert_same_tree(&seed, &other);

    assert!(
        first.wait(Duration::from_secs(60)).success(),
        "{}",
        first.stderr()
    );
    assert_same_tree(&seed, &dest);
    s.kill();
}

#[test]
fn the_lock_of_a_killed_pollen_does_not_block() {
    let (tmp, seed, torrent) = setup("stale-lock");
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    let mut first = slow_leecher(&torrent, &dest, &peer);
    let pid = first.id();
    first.kill();
    // Its lock file stays behind, naming the dead process.
    let meta = pollen::load_torrent(&torrent).unwrap();
    let lock = pollen::lock::lock_path(&dest, &meta.info_hash);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), format!("{pid}\n"));

    let next = pollen(leecher_args(&torrent, &dest, &peer, &[]));
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_same_tree(&seed, &dest);
    s.kill();
}

#[test]
fn two_sessions_in_one_process_exclude_each_other() {
    let (tmp, seed, torrent) = setup("lock-library");
    let meta = pollen::load_torrent(&torrent).unwrap();
    let config = Config {
        dest: seed.clone(),
        listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        use_trackers: false,
        ..Config::default()
    };
    let first = Session::new(meta.clone(), config.clone()).unwrap();
    // flock locks belong to an open file description: a second open in the
    // same process conflicts like another process would.
    let refused = match Session::new(meta.clone(), config.clone()) {
        Ok(_) => panic!("a second session on the same download was allowed"),
        Err(e) => e,
    };
    assert!(
        matches!(&refused, pollen::Error::AlreadyRunning { pid: Some(pid), .. } if *pid == std::process::id()),
        "{refused:?}"
    );
    assert!(
        !refused.is_bad_input(),
        "another pollen running is a failure while running (exit 1), not bad input"
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "pair is already being downloaded into {} by another pollen (pid {})",
            seed.display(),
            std::process::id()
        )
    );
    // The builder runs a Session too.
    let err = pollen::Download::new(&torrent)
        .dest(&seed)
        .trackers(false)
        .run()
        .unwrap_err();
    assert!(
        matches!(err, pollen::Error::AlreadyRunning { .. }),
        "{err:?}"
    );

    // Another directory is another download, in the same process too.
    let other = tmp.path().join("other");
    let elsewhere = Session::new(
        meta.clone(),
        Config {
            dest: other,
            ..config.clone()
        },
    );
    assert!(elsewhere.is_ok());

    // Dropping the session releases the lock.
    drop(first);
    let mut again = Session::new(meta, config).unwrap();
    // The data is complete, so the run ends by itself after its check; if
    // it has not within 30 s, it is stopped and the test fails.
    let stop = again.stop_handle();
    let (done, ended) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let outcome = again.run();
        let _ = done.send(());
        outcome
    });
    let finished = ended.recv_timeout(Duration::from_secs(30)).is_ok();
    stop.stop();
    let outcome = runner.join().unwrap().unwrap();
    assert!(finished, "the run did not end by itself");
    assert_eq!(outcome, pollen::Outcome::Complete);
}
