//! The first hour, second pass: help texts without empty sections, help
//! into a closed pipe, `pollen scrape` against dead trackers, `--no-tracker`
//! with nowhere to find peers, the URLs `pollen tracker` prints, progress
//! from `pollen create`, and seeding limits. Each runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Pollen;
use common::{pollen, run_with_deadline, seeded_torrent, TempDir};

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
        // A build without the tracker has no options to list for it.
        if command != "tracker" || cfg!(feature = "tracker-server") {
            assert!(String::from_utf8(a).unwrap().contains("-h, --help"));
        }
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

#[test]
fn no_tracker_without_peer_is_refused_for_a_download_that_cannot_find_peers() {
    let tmp = TempDir::new("no-peers");
    let (_, torrent) = seeded_torrent(tmp.path(), &[("np/data.bin", 200_000, 4)], None);
    let dest = tmp.path().join("dest");
    let out = pollen([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: --no-tracker without --peer: pollen has no way to find peers \
         (give --peer HOST:PORT, or drop --no-tracker; a seeder can use --seed)"
    );
    assert!(out.stdout.is_empty(), "refused before listening");
    assert!(!dest.join("np").exists(), "nothing written");
}

#[test]
fn no_tracker_without_peer_still_checks_complete_data_and_seeds_with_a_note() {
    let tmp = TempDir::new("no-peers-ok");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("ok/data.bin", 200_000, 5)], None);
    // The files are all there: it checks them and exits 0.
    let out = pollen([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--no-tracker".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A seeder waits for peers, and says they must come to it.
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--no-tracker".as_ref(),
        "--seed".as_ref(),
    ]);
    let port = seeder.port();
    let noted = common::process::wait_for(Duration::from_secs(30), || {
        seeder.stderr().contains(&format!(
            "note: --no-tracker without --peer: pollen finds no peers, they must connect to it (port {port})"
        ))
    });
    assert!(noted, "{}", seeder.stderr());
    assert!(!seeder.has_exited());
}

#[test]
fn bad_seeding_limits_are_usage_errors_naming_the_option() {
    let torrent = common::fixtures().join("single.torrent");
    for (option, value) in [
        ("--seed-ratio", "-1"),
        ("--seed-ratio", "lots"),
        ("--seed-time", "5x"),
        ("--seed-time", "1.5h"),
    ] {
        let out = pollen([option.as_ref(), value.as_ref(), torrent.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {option} \"{value}\" is not a ")),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn bad_dht_bootstrap_nodes_are_usage_errors_naming_the_option() {
    let torrent = common::fixtures().join("single.torrent");
    for value in [
        "router",
        "router:",
        "router:0",
        "router:70000",
        ":6881",
        "::1:6881",
    ] {
        let out = pollen([
            "--dht-bootstrap".as_ref(),
            value.as_ref(),
            torrent.as_os_str(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: --dht-bootstrap {value:?}: expected HOST:PORT"
            )),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pollen"))
        .arg(&torrent)
        .env("POLLEN_DHT_ROUTERS", "127.0.0.1:6881,router")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: POLLEN_DHT_ROUTERS \"router\": expected HOST:PORT"),
        "{stderr}"
    );
}

#[test]
fn a_seeder_with_seed_time_stops_by_itself_and_exits_0() {
    let tmp = TempDir::new("seed-time");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("st/data.bin", 300_000, 6)], None);
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--no-tracker".as_ref(),
        "--seed-time".as_ref(),
        "2s".as_ref(),
        "-v".as_ref(),
    ]);
    seeder.port();
    let status = seeder.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", seeder.stderr());
    assert!(
        seeder
            .stderr()
            .contains("seed time 2 s reached; stopped seeding"),
        "{}",
        seeder.stderr()
    );
}

#[test]
fn a_seeder_with_seed_ratio_1_exits_0_after_one_leecher_has_the_whole_torrent() {
    let tmp = TempDir::new("seed-ratio");
    let files = &[("sr/data.bin", 3 * 1024 * 1024, 7)];
    let (seed, torrent) = seeded_torrent(tmp.path(), files, Some(64 * 1024));
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--no-tracker".as_ref(),
        "--seed-ratio".as_ref(),
        "1".as_ref(),
        "-v".as_ref(),
    ]);
    let peer = seeder.peer_arg();
    // Still seeding before anyone has downloaded.
    assert!(
        common::process::wait_for(Duration::from_secs(30), || seeder
            .stderr()
            .contains("pieces verified on disk")),
        "{}",
        seeder.stderr()
    );
    assert!(!seeder.has_exited(), "{}", seeder.stderr());
    let dest = tmp.path().join("leech");
    let mut leecher = Pollen::leecher(&torrent, &dest, &peer);
    let status = leecher.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", leecher.stderr());
    common::process::assert_same_tree(&seed, &dest);
    let status = seeder.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", seeder.stderr());
    assert!(
        seeder.stderr().contains("seed ratio 1 reached"),
        "{}",
        seeder.stderr()
    );
    // At the default log level too, the user is told why it stopped.
    let seeded = format!("-> {}", seed.join("sr").display());
    assert!(
        seeder.stderr().lines().any(
            |l| l.starts_with("seeded: 3.0 MiB uploaded (ratio 1.00) ") && l.ends_with(&seeded)
        ),
        "{}",
        seeder.stderr()
    );
}

/// The lines `pollen tracker ARGS` prints until its loopback UDP URL
/// (the last one: HTTP before UDP, loopback last).
fn tracker_urls(args: &[&str]) -> Vec<String> {
    let mut all = vec!["tracker", "-p", "0", "-u", "0"];
    all.extend_from_slice(args);
    let mut tracker = Pollen::start(all);
    let mut lines = Vec::new();
    loop {
        let line = tracker.next_line();
        let done = line.starts_with("tracker listening on udp://127.0.0.1:");
        lines.push(line);
        if done || lines.len() > 100 {
            break;
        }
    }
    // The printed loopback URL reaches it.
    let http = lines
        .iter()
        .find_map(|l| l.strip_prefix("tracker listening on http://127.0.0.1:"))
        .and_then(|rest| rest.strip_suffix("/announce"))
        .unwrap_or_else(|| panic!("no loopback HTTP URL in {lines:?}"));
    std::net::TcpStream::connect(("127.0.0.1", http.parse::<u16>().unwrap())).unwrap();
    lines
}

#[test]
#[cfg_attr(
    not(feature = "tracker-server"),
    ignore = "pollen built without the cargo feature tracker-server"
)]
fn tracker_prints_urls_other_machines_can_use() {
    let bound = tracker_urls(&["-b", "127.0.0.1"]);
    assert_eq!(bound.len(), 2, "{bound:?}");
    assert!(bound[0].starts_with("tracker listening on http://127.0.0.1:"));
    let all = tracker_urls(&[]); // the default: every address
    assert!(
        all.iter().all(|l| !l.contains("0.0.0.0")),
        "an unspecified address in {all:?}"
    );
    for scheme in ["http", "udp"] {
        let loopback = format!("tracker listening on {scheme}://127.0.0.1:");
        assert!(all.iter().any(|l| l.starts_with(&loopback)), "{all:?}");
    }
    println!("pollen tracker printed: {all:#?}");
}

#[test]
fn create_on_a_large_input_shows_progress_and_makes_the_same_torrent() {
    let tmp = TempDir::new("create-progress");
    let input = tmp.path().join("big.bin");
    {
        use std::io::Write;
        let block = common::payload(11, 1024 * 1024);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0u64..64 {
            file.write_all(&i.to_le_bytes()).unwrap();
            file.write_all(&block[8..]).unwrap();
        }
    }
    let create = |out: &str, extra: &[&str]| {
        let output = tmp.path().join(out);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "create".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            output.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let out = pollen(args); // stderr is a pipe, not a terminal
        assert!(out.status.success(), "{out:?}");
        let meta = pollen::load_torrent(&output).unwrap();
        (meta.info_hash, String::from_utf8(out.stderr).unwrap())
    };
    let (hash, stderr) = create("a.torrent", &[]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        (2..=5).contains(&lines.len()),
        "a few plain lines: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(
        lines[0].starts_with("hashing: 25 % (16.0 MiB of 64.0 MiB)"),
        "{stderr}"
    );
    assert!(
        lines.last().unwrap().starts_with("hashed 64.0 MiB in "),
        "{stderr}"
    );
    let (quiet_hash, quiet) = create("q.torrent", &["-q"]);
    assert_eq!(quiet, "", "-q prints nothing on stderr");
    assert_eq!(hash, quiet_hash);
    let library = pollen::create::create_torrent(&input, &Default::default()).unwrap();
    let library = pollen::metainfo::Metainfo::from_bytes(&library).unwrap();
    assert_eq!(
        hash, library.info_hash,
        "progress does not change the torrent"
    );
}
