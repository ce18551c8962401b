//! `pollen --tui` in a real terminal: tmux runs it against a local seeder,
//! the captured pane shows the header, the piece map and a peer row, and
//! `q` quits and gives the terminal back. Without tmux the test is reported
//! as ignored, with the reason (`common::harness`; `make test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::harness::{self, program, trial};
use common::process::{wait_for, Pollen};
use common::tmux::Tmux;
use common::{seeded_torrent, TempDir};

/// Every test of this file (`harness = false`: a `#[test]` here would not run).
fn main() {
    harness::run(vec![trial!(
        tui_shows_header_piece_map_and_peers_and_q_quits,
        [program("tmux", "tmux")]
    )]);
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
    let tmux = Tmux::start(&name, 120, 40, &command, false);
    let mut pane = String::new();
    let shown = wait_for(Duration::from_secs(30), || {
        pane = tmux.capture(false);
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
    tmux.send_keys("q");
    assert!(
        wait_for(Duration::from_secs(20), || !tmux.alive()),
        "q did not quit:\n{}",
        tmux.capture(false)
    );
    seeder.kill();
}
