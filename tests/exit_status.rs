//! How a stopped download ends: the exit status a shell expects for the
//! signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), one line saying how far it
//! got and how to go on, and the resume state saved (a clean stop).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Pollen;
use common::{seeded_torrent, TempDir};

/// Starts a download that can find no peer, stops it with `signal` once it
/// listens, and returns its exit code and stderr, and whether its resume
/// state was written.
fn stop_with(signal: &str, tag: &str) -> (Option<i32>, String, bool) {
    let tmp = TempDir::new(tag);
    let (_, torrent) = seeded_torrent(tmp.path(), &[("s/data.bin", 300_000, 9)], None);
    let dest = tmp.path().join("dest");
    let mut pollen = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        "127.0.0.1:1".as_ref(), // nobody there: it runs until stopped
    ]);
    pollen.port(); // it runs its loop
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pollen.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
    let status = pollen.wait(Duration::from_secs(30));
    let saved = std::fs::read_dir(dest.join(".pollen"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "resume"))
        })
        .unwrap_or(false);
    (status.code(), pollen.stderr(), saved)
}

const STOPPED: &str = "stopped at 0.0 % (0 of 19 pieces); run the same command again to resume";

#[test]
fn ctrl_c_before_completion_exits_130_and_says_how_far_it_got() {
    let (code, stderr, saved) = stop_with("INT", "sigint");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains(STOPPED), "{stderr}");
    assert!(
        !stderr.contains("error:"),
        "a stop is not an error: {stderr}"
    );
    assert!(saved, "no resume state after a clean stop");
}

#[test]
fn sigterm_before_completion_exits_143() {
    let (code, stderr, saved) = stop_with("TERM", "sigterm");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains(STOPPED), "{stderr}");
    assert!(saved, "no resume state after a clean stop");
}

#[test]
fn sighup_is_a_clean_stop_that_exits_129() {
    let (code, stderr, saved) = stop_with("HUP", "sighup");
    assert_eq!(code, Some(129), "{stderr}");
    assert!(stderr.contains(STOPPED), "{stderr}");
    assert!(saved, "no resume state after SIGHUP");
}
