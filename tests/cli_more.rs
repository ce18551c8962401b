//! The first hour, second pass: help texts without empty sections, help
//! into a closed pipe, `pollen scrape` against dead trackers, `--no-tracker`
//! with nowhere to find peers, the URLs `pollen tracker` prints, progress
//! from `pollen create`, and seeding limits. Each runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{pollen, run_with_deadline, TempDir};

/// Every command with its own help text.
const COMMANDS: &[&str] = &["info", "create", "scrape", "tracker", "download"];

/// Each help text a user can ask for, with the command line that shows it.
fn every_help_text() -> Vec<(String, String)> {
    let mut runs: Vec<Vec<&str>> = vec![vec!["--help"], vec!["-h"], vec!["help"]];
    for command in COMMANDS {
        runs.push(vec!["help", command]);
        if *command != "download" {
            runs.push(vec![command, "--help"]);
            runs.push(vec![command, "-h"]);
        }
    }
    runs.into_iter()
        .map(|args| {
            let out = pollen(&args);
            let line = format!("pollen {}", args.join(" "));
            assert_eq!(out.status.code(), Some(0), "{line}");
            (line, String::from_utf8(out.stdout).unwrap())
        })
        .collect()
}

/// A section header: an unindented line ending in `:` (`Options:`).
fn is_header(line: &str) -> bool {
    !line.starts_with(' ') && line.ends_with(':')
}

#[test]
fn no_help_text_has_an_empty_section_or_trailing_blanks() {
    for (line, text) in every_help_text() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let next = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                !(is_header(l) && (next.trim().is_empty() || is_header(next))),
                "`{line}`: {l:?} is followed by nothing:\n{text}"
            );
            assert_eq!(l.trim_end(), *l, "`{line}`: trailing spaces:\n{text}");
        }
        assert!(text.ends_with('\n'), "`{line}`");
        assert!(!text.ends_with("\n\n"), "`{line}` ends in a blank line");
    }
}

#[test]
fn help_for_a_command_is_the_same_both_ways() {
    for command in ["info", "create", "scrape", "tracker"] {
        let a = pollen(["help", command]).stdout;
        let b = pollen([command, "--help"]).stdout;
        assert_eq!(a, b, "{command}");
        assert!(String::from_utf8(a).unwrap().contains("-h, --help"));
    }
}

#[test]
fn help_into_a_closed_pipe_ends_quietly() {
    let runs: [&[&str]; 5] = [
        &["help"],
        &["help", "download"],
        &["--help"],
        &["help", "create"],
        &["download", "--help"],
    ];
    for args in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pollen"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -0`: the reader is gone before pollen writes
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pollen {args:?} kept running after its stdout was closed");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

/// A torrent of a small file announcing to `trackers` (written under `dir`).
fn torrent_with_trackers(dir: &TempDir, trackers: &[String]) -> std::path::PathBuf {
    let data = dir.path().join("data.bin");
    std::fs::write(&data, common::payload(3, 50_000)).unwrap();
    let options = pollen::create::CreateOptions {
        trackers: trackers.to_vec(),
        ..Default::default()
    };
    let torrent = dir.path().join("t.torrent");
    std::fs::write(
        &torrent,
        pollen::create::create_torrent(&data, &options).unwrap(),
    )
    .unwrap();
    torrent
}

/// A port on 127.0.0.1 with nothing listening (TCP and UDP): bound, read,
/// and released again.
fn closed_port() -> u16 {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    drop(tcp);
    port
}

/// Runs `pollen scrape TORRENT`; returns its exit code and stderr.
fn scrape(torrent: &std::path::Path, limit: Duration) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pollen"));
    command.arg("scrape").arg(torrent);
    let out = run_with_deadline(command, limit);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn scrape_of_a_dead_http_or_udp_tracker_fails_with_one_line_and_status_1() {
    let tmp = TempDir::new("scrape-dead");
    let port = closed_port();
    for url in [
        format!("http://127.0.0.1:{port}/announce"),
        format!("udp://127.0.0.1:{port}"),
    ] {
        let torrent = torrent_with_trackers(&tmp, std::slice::from_ref(&url));
        let (code, stdout, stderr) = scrape(&torrent, Duration::from_secs(30));
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert_eq!(stdout, "", "{url}");
        assert_eq!(stderr.lines().count(), 1, "{url}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&url),
            "{url}: {stderr}"
        );
    }
}

#[test]
fn scrape_of_a_silent_udp_tracker_gives_up_after_a_few_seconds() {
    let tmp = TempDir::new("scrape-silent");
    // Bound, so no ICMP error comes back; never read, so nothing answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}", silent.local_addr().unwrap());
    let dead = format!("http://127.0.0.1:{}/announce", closed_port());
    let torrent = torrent_with_trackers(&tmp, &[url.clone(), dead]);
    // Bounded by the command's own timeouts (2 s + 4 s), well within this.
    let (code, stdout, stderr) = scrape(&torrent, Duration::from_secs(40));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "one line per tracker: {stdout}");
    assert!(stdout.starts_with(&format!("{url}: error: ")), "{stdout}");
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {}: none of its 2 trackers answered the scrape",
            torrent.display()
        )
    );
}
