//! The first hour: mistakes a new user makes get one line that says what to
//! do, and the documented exit status (2 bad input, 1 failure while running).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixtures, pollen, TempDir};

fn stderr_of(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = pollen(args);
    assert!(out.stdout.is_empty() || out.status.success(), "{args:?}");
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_busy_port_says_how_to_choose_another() {
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let tmp = TempDir::new("busy");
    let torrent = fixtures().join("single.torrent");
    let (code, stderr) = stderr_of(&[
        torrent.as_os_str(),
        "-d".as_ref(),
        tmp.path().as_os_str(),
        "-p".as_ref(),
        port.as_ref(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        "127.0.0.1:1".as_ref(), // without a peer, --no-tracker is refused first
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    // By default pollen listens on both families: `[::]`, or `0.0.0.0`
    // on a host without IPv6.
    assert!(
        stderr.starts_with(&format!("error: cannot listen on [::]:{port}: "))
            || stderr.starts_with(&format!("error: cannot listen on 0.0.0.0:{port}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("--port"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_unwritable_destination_is_refused_before_anything_starts() {
    let tmp = TempDir::new("unwritable");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let dest = file.join("sub"); // a directory under a regular file cannot exist
    let torrent = fixtures().join("single.torrent");
    let (code, stderr) = stderr_of(&[torrent.as_os_str(), "-d".as_ref(), dest.as_os_str()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: --dest {}: ", dest.display())),
        "{stderr}"
    );
}

#[test]
fn bad_option_values_name_the_option() {
    let torrent = fixtures().join("single.torrent");
    for (args, expected) in [
        (
            vec!["--max-up", "fast"],
            "error: --max-up \"fast\" is not a rate like 500K or 2M",
        ),
        (
            vec!["--port", "70000"],
            "error: --port \"70000\": port must be 0-65535",
        ),
        (
            vec!["--strategy", "fastest"],
            "error: --strategy: unknown strategy \"fastest\" (rarest, random or sequential)",
        ),
        (
            vec!["--endgame", "150"],
            "error: --endgame \"150\" is not a percentage from 0 to 100",
        ),
        (vec!["--peer", "nowhere"], "error: --peer \"nowhere\": "),
        (
            vec!["--tracker", "ftp://x"],
            "error: --tracker \"ftp://x\" is not an http, https or udp URL",
        ),
    ] {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.push(torrent.as_os_str());
        let (code, stderr) = stderr_of(&all);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn every_help_text_lists_its_options() {
    let out = pollen(["--help"]);
    let overview = String::from_utf8(out.stdout).unwrap();
    for command in ["info", "create", "scrape", "tracker"] {
        assert!(
            overview.contains(&format!("pollen {command}")),
            "{command} missing from --help"
        );
        let help = String::from_utf8(pollen(["help", command]).stdout).unwrap();
        assert!(help.starts_with("Usage: pollen"), "{command}: {help}");
    }
    let download = String::from_utf8(pollen(["help", "download"]).stdout).unwrap();
    for option in [
        "--dest",
        "--port",
        "--peer",
        "--seed",
        "--tracker",
        "--tracker-ca",
        "--strategy",
        "--choker",
        "--endgame",
        "--max-down",
        "--max-up",
        "--check",
        "--clean",
        "--max-peers",
        "--quiet",
        "--verbose",
    ] {
        assert!(
            download.contains(option),
            "{option} missing from `pollen help download`"
        );
    }
}

#[test]
fn every_subcommand_takes_help_and_exits_0() {
    for command in ["info", "create", "scrape", "tracker"] {
        for flag in ["-h", "--help"] {
            let out = pollen([command, flag]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "pollen {command} {flag}");
            assert!(
                stdout.contains("Usage:") && stdout.contains(command),
                "pollen {command} {flag} printed: {stdout}"
            );
        }
    }
}

#[test]
fn a_port_out_of_range_says_the_range_before_reading_the_torrent() {
    let out = pollen(["-p", "99999", "no-such.torrent"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: --port \"99999\": port must be 0-65535"
    );
}
