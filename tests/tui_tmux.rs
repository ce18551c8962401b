//! `pollen --tui` in a real terminal: tmux runs it against a local seeder,
//! the captured pane shows the header, the piece map and a peer row, and
//! `q` quits and gives the terminal back. Without tmux the test is reported
//! as ignored, with the reason (`common::harness`; `make test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::harness::{self, program, trial};
use common::process::{wait_for, Pollen};
use common::{seeded_torrent, TempDir};

/// Every test of this file (`harness = false`: a `#[test]` here would not run).
fn main() {
    harness::run(vec![trial!(
        tui_shows_header_piece_map_and_peers_and_q_quits,
        [program("tmux", "tmux")]
    )]);
}

struct TmuxSession(String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn capture(session: &str) -> String {
    let out = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn session_alive(session: &str) -> bool {
    Command::new("tmux")
        .args(["has-session", "-t", session])
        .status()
        .is_ok_and(|s| s.success())
}

fn tui_shows_header_piece_map_and_peers_and_q_quits() {
    let tmp = TempDir::new("tui");
    let (seed, torrent) = seeded_torrent(
        tmp.path(),
        &[("show/movie.bin", 3_000_000, 61)],
        Some(32 * 1024),
    );
    // A slow seeder, so the download is still going when the pane is read.
    let mut seeder = Pollen::seeder(&torrent, &seed, &["--max-up", "400K"]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("dest");
    let name = format!("pollen-tui-{}", std::process::id());
    // --seed keeps it running after the download so the view can be read.
    let command = format!(
        "{} {} -d {} --no-tracker --peer {peer} --seed --tui 2>/dev/null",
        env!("CARGO_BIN_EXE_pollen"),
        torrent.display(),
        dest.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "40",
            &command,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let _guard = TmuxSession(name.clone());
    let mut pane = String::new();
    let shown = wait_for(Duration::from_secs(30), || {
        pane = capture(&name);
        pane.contains("127.0.0.1:") && pane.contains("pollen 0.1.0") && pane.contains('#')
    });
    assert!(shown, "pane:\n{pane}");
    assert!(pane.contains("show"), "header has the name:\n{pane}");
    assert!(pane.contains("pieces 92"), "piece map legend:\n{pane}");
    let map_row = |l: &str| l.len() >= 40 && l.chars().all(|c| "#+=.0123456789".contains(c));
    assert!(pane.lines().any(map_row), "piece map row:\n{pane}");
    assert!(
        pane.contains("address") && pane.contains("pollen 0.1.0"),
        "peer table:\n{pane}"
    );
    eprintln!("{pane}");
    Command::new("tmux")
        .args(["send-keys", "-t", &name, "q"])
        .status()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || !session_alive(&name)),
        "q did not quit:\n{}",
        capture(&name)
    );
    seeder.kill();
}
