//! What a download prints on stderr, run as real processes on loopback:
//! one `done:` summary line with the path at completion (also under a
//! `--tui` whose stdout is not a terminal, which falls back to the status
//! line); a `--peer` that turns out to be ourselves (through a forwarded
//! port) is dropped and not counted; with stderr in a file, 30 s of seeding
//! print only a few status lines; and in an 80-column tmux pane the status
//! line of a long name never wraps (without tmux it is reported as ignored,
//! with the reason: `common::harness`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::harness::{self, program, trial};
use common::process::{wait_for, Pollen};
use common::tmux::Tmux;
use common::{seeded_torrent, TempDir};

/// Every test of this file (`harness = false`: a `#[test]` here would not run).
fn main() {
    harness::run(vec![
        trial!(a_download_prints_one_done_line_with_its_path, []),
        trial!(tui_without_a_terminal_on_stdout_shows_the_status_line, []),
        trial!(a_peer_that_is_ourselves_is_dropped_and_not_counted, []),
        trial!(seeding_30_s_with_stderr_in_a_file_prints_a_few_lines, []),
        trial!(
            status_line_of_a_long_name_fits_an_80_column_tmux_pane,
            [program("tmux", "tmux")]
        ),
    ]);
}

/// The `done:` lines of a stderr.
fn done_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("done: ")).collect()
}

fn a_download_prints_one_done_line_with_its_path() {
    let tmp = TempDir::new("status-done");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("summary.bin", 1_500_000, 71)], None);
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let dest = tmp.path().join("dest");
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        seeder.peer_arg().as_ref(),
    ]);
    assert!(leecher.wait(Duration::from_secs(60)).success());
    let stderr = leecher.stderr();
    let done = done_lines(&stderr);
    assert_eq!(done.len(), 1, "stderr:\n{stderr}");
    let path = dest.join("summary.bin");
    assert!(
        done[0].starts_with("done: 1.4 MiB in ") && done[0].contains(", avg "),
        "{}",
        done[0]
    );
    assert!(
        done[0].ends_with(&format!("-> {}", path.display())),
        "{}",
        done[0]
    );
    assert!(
        stderr.contains("summary.bin  complete  100.0%"),
        "the last status line says complete:\n{stderr}"
    );
    seeder.kill();
}

fn tui_without_a_terminal_on_stdout_shows_the_status_line() {
    let tmp = TempDir::new("status-tui");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("plain.bin", 500_000, 72)], None);
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let dest = tmp.path().join("dest");
    // Stdout is a pipe here (Pollen captures it).
    let mut leecher = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        seeder.peer_arg().as_ref(),
        "--tui".as_ref(),
    ]);
    assert!(leecher.wait(Duration::from_secs(60)).success());
    let stderr = leecher.stderr();
    assert!(
        stderr
            .contains("--tui: standard output is not a terminal; showing the status line instead"),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("plain.bin  ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no screen drawing anywhere:\n{stderr}"
    );
    assert_eq!(done_lines(&stderr).len(), 1, "{stderr}");
    seeder.kill();
}

/// A TCP port forwarder on 127.0.0.1 to `target` (set once known): what a
/// NAT or a forwarded port does, so the address dialled is not ours.
fn forwarder(target: Arc<AtomicU16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok((inbound, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            inbound.set_nonblocking(false).unwrap();
            let target = Arc::clone(&target);
            std::thread::spawn(move || {
                wait_for(Duration::from_secs(30), || {
                    target.load(Ordering::Relaxed) != 0
                });
                let Ok(outbound) =
                    TcpStream::connect(("127.0.0.1", target.load(Ordering::Relaxed)))
                else {
                    return;
                };
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            });
        }
    });
    port
}

/// Copies `from` into `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

fn a_peer_that_is_ourselves_is_dropped_and_not_counted() {
    let tmp = TempDir::new("status-self");
    let (_seed, torrent) = seeded_torrent(tmp.path(), &[("alone.bin", 100_000, 73)], None);
    let target = Arc::new(AtomicU16::new(0));
    let forwarded = forwarder(Arc::clone(&target));
    let dest = tmp.path().join("dest");
    let mut pollen = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        format!("127.0.0.1:{forwarded}").as_ref(),
        "-v".as_ref(),
    ]);
    target.store(pollen.port(), Ordering::Relaxed);
    let mut stderr = String::new();
    let stalled = wait_for(Duration::from_secs(30), || {
        stderr = pollen.stderr();
        stderr.contains("stalled: no peers")
    });
    assert!(stalled, "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{forwarded}: this address is ourselves")),
        "the handshake told:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("stalled: no peers"))
        .unwrap();
    assert!(line.contains("  peers 0 of 0  "), "{line}");
    pollen.kill();
}

/// Lines of `log` that are status lines of the torrent `name`.
fn status_lines<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.starts_with(&format!("{name}  ")))
        .collect()
}

/// The one slow test here: it has to let 30 s pass to show that a steady
/// seeder off a terminal stays quiet (a line per state change or minute,
/// not per second). It waits on the process (which must stay up) with a
/// deadline, not a bare sleep.
fn seeding_30_s_with_stderr_in_a_file_prints_a_few_lines() {
    let tmp = TempDir::new("status-quiet");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("quiet.bin", 400_000, 74)], None);
    let log_path = tmp.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pollen"))
        .arg(&torrent)
        .args(["-d".as_ref(), seed.as_os_str()])
        .args(["--seed", "--no-tracker"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // A seeder says it is done as soon as its check finds everything on
    // disk, while it goes on seeding (not only when it exits).
    let said_done = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&log_path).is_ok_and(|log| {
            log.lines()
                .any(|l| l.starts_with("done: ") && l.contains("already on disk"))
        })
    });
    let running_after_done = child.try_wait().unwrap().is_none();
    let exited = wait_for(Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let ended = wait_for(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(said_done, "no done line while seeding:\n{log}");
    assert!(running_after_done, "the seeder stopped by itself:\n{log}");
    assert_eq!(done_lines(&log).len(), 1, "one done line:\n{log}");
    assert!(!exited, "the seeder stopped by itself:\n{log}");
    assert!(ended, "SIGTERM did not stop it:\n{log}");
    let lines = status_lines(&log, "quiet.bin");
    assert!(
        lines.iter().any(|l| l.contains("  seeding  ")),
        "it says it seeds:\n{log}"
    );
    assert!(
        (1..=4).contains(&lines.len()),
        "{} status lines in 30 s:\n{log}",
        lines.len()
    );
}

/// Every line of `pane` but the `done:` summary (a long path may wrap)
/// fits 80 columns, and the status line shows on one row starting with
/// the name.
fn assert_fits_80(pane: &str, name: &str, activity: &str) {
    for line in pane.lines().filter(|l| !l.starts_with("done: ")) {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}\npane:\n{pane}",
            line.chars().count()
        );
    }
    let head: String = name.chars().take(20).collect();
    let rows: Vec<&str> = pane.lines().filter(|l| l.contains(activity)).collect();
    assert!(!rows.is_empty(), "no {activity:?} line:\n{pane}");
    for row in rows {
        assert!(row.starts_with(&head), "{row:?}\npane:\n{pane}");
    }
}

fn status_line_of_a_long_name_fits_an_80_column_tmux_pane() {
    let tmp = TempDir::new("status-tmux");
    let name = format!(
        "{}-été-über-naïve.bin",
        "a-rather-long-torrent-name".repeat(5)
    );
    let (seed, torrent) = seeded_torrent(tmp.path(), &[(&name, 3_000_000, 75)], Some(32 * 1024));
    // A slow seeder, so the pane can be read while downloading.
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "400K"]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("dest");
    let session = format!("pollen-status-{}", std::process::id());
    // `env -u COLUMNS`: the width comes from the terminal itself (stty).
    let command = format!(
        "env -u COLUMNS {} {} -d {} --no-tracker --peer {peer} --seed",
        env!("CARGO_BIN_EXE_pollen"),
        torrent.display(),
        dest.display()
    );
    // The pane stays after pollen exits, to read its last lines.
    let tmux = Tmux::start(&session, 80, 24, &command, true);
    let mut pane = String::new();
    let downloading = wait_for(Duration::from_secs(30), || {
        pane = tmux.capture(true);
        pane.contains("  downloading  ")
    });
    assert!(downloading, "pane:\n{pane}");
    assert_fits_80(&pane, &name, "  downloading  ");
    let seeding = wait_for(Duration::from_secs(60), || {
        pane = tmux.capture(true);
        pane.contains("  seeding  ")
    });
    assert!(seeding, "pane:\n{pane}");
    assert_fits_80(&pane, &name, "  seeding  ");
    eprintln!("{pane}");
    // The done line came at completion, while it goes on seeding.
    assert!(
        pane.contains("done: "),
        "no done line while seeding:\n{pane}"
    );
    tmux.send_keys("C-c");
    let exited = wait_for(Duration::from_secs(20), || tmux.pane_dead());
    pane = tmux.capture(true);
    assert!(exited, "Ctrl-C did not stop it:\n{pane}");
    assert!(
        pane.contains(&format!("{}", dest.join(&name).display())),
        "{pane}"
    );
    seeder.kill();
}
