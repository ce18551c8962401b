//! The status line (and the library's progress reports): one line on stderr, once a second, rewritten in place
//! on a terminal and printed as plain lines otherwise.
//!
//! Layer 2 (it writes to stderr); the formatting itself is a pure function.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::Session;
use crate::units::format_bytes;

/// What the status line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Torrent name.
    pub name: String,
    /// Time since start.
    pub elapsed: Duration,
    /// Known peer addresses.
    pub peers_known: usize,
    /// Connected peers (handshake done).
    pub peers_connected: usize,
    /// Verified bytes.
    pub done_bytes: u64,
    /// Torrent size.
    pub total_bytes: u64,
    /// Download rate, bytes/s.
    pub down_rate: u64,
    /// Upload rate, bytes/s.
    pub up_rate: u64,
    /// Swarm size as a tracker last reported it: (seeders, leechers).
    pub swarm: Option<(u32, u32)>,
}

/// Formats the status line, e.g.
/// `ubuntu.iso  0:42  peers 12 (5)  37.5% 1.2 GiB/3.1 GiB  down 4.0 MiB/s  up 512.0 KiB/s  eta 8:03`.
pub fn format_status(s: &StatusSnapshot) -> String {
    let percent = if s.total_bytes == 0 {
        100.0
    } else {
        s.done_bytes as f64 * 100.0 / s.total_bytes as f64
    };
    let left = s.total_bytes.saturating_sub(s.done_bytes);
    let eta = match left.checked_div(s.down_rate) {
        _ if left == 0 => "done".to_string(),
        Some(secs) => clock(Duration::from_secs(secs)),
        None => "-".to_string(),
    };
    let swarm = s
        .swarm
        .map(|(seeders, leechers)| format!("  swarm {seeders}s/{leechers}l"))
        .unwrap_or_default();
    format!(
        "{}  {}  peers {} ({}){}  {:.1}% {}/{}  down {}/s  up {}/s  eta {}",
        s.name,
        clock(s.elapsed),
        s.peers_known,
        s.peers_connected,
        swarm,
        percent,
        format_bytes(s.done_bytes),
        format_bytes(s.total_bytes),
        format_bytes(s.down_rate),
        format_bytes(s.up_rate),
        eta
    )
}

/// `h:mm:ss` or `m:ss`.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// Prints status lines.
#[derive(Debug)]
pub(super) struct StatusLine {
    enabled: bool,
    terminal: bool,
    drawn: bool,
}

impl StatusLine {
    pub(super) fn new(enabled: bool) -> StatusLine {
        StatusLine {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Draws the line (in place on a terminal).
    pub(super) fn show(&mut self, snapshot: &StatusSnapshot) {
        if !self.enabled {
            return;
        }
        let line = format_status(snapshot);
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Draws the final line and moves to a fresh line.
    pub(super) fn finish_line(&mut self, snapshot: &StatusSnapshot) {
        self.show(snapshot);
        self.clear();
    }

    /// Ends an in-place line so later output starts on a new line.
    pub(super) fn clear(&mut self) {
        if self.enabled && self.terminal && self.drawn {
            eprintln!();
        }
        self.drawn = false;
    }
}

impl Session {
    /// Status phase: once a second.
    pub(super) fn show_status(&mut self, now: Instant) {
        let snapshot = self.status_snapshot(now);
        if self.view.is_some() {
            self.draw_view(now, &snapshot);
        } else {
            self.status.show(&snapshot);
        }
        if let Some(callback) = self.progress.as_mut() {
            callback(&snapshot);
        }
    }

    /// The numbers the status line shows: the torrent's, or with several
    /// torrents their sums under the name "N torrents (M done)".
    pub(super) fn status_snapshot(&mut self, now: Instant) -> StatusSnapshot {
        let mut snapshot = StatusSnapshot {
            name: match self.torrents.iter().next() {
                Some((_, one)) if self.torrents.len() == 1 => one.meta.name.clone(),
                _ => {
                    let done = self
                        .torrents
                        .iter()
                        .filter(|(_, s)| s.torrent.is_complete())
                        .count();
                    format!("{} torrents ({done} done)", self.torrents.len())
                }
            },
            elapsed: now.saturating_duration_since(self.started),
            peers_known: 0,
            peers_connected: self.conns.iter().filter(|(_, c)| c.is_active()).count(),
            done_bytes: 0,
            total_bytes: 0,
            down_rate: 0,
            up_rate: 0,
            swarm: None,
        };
        for (_, slot) in &mut self.torrents {
            let total = slot.meta.total_len();
            snapshot.total_bytes += total;
            snapshot.done_bytes += total.saturating_sub(slot.torrent.bytes_left());
            snapshot.peers_known += slot.torrent.peer_list().len();
            snapshot.down_rate += slot.torrent.down_rate(now);
            snapshot.up_rate += slot.torrent.up_rate(now);
        }
        if let (1, Some((_, one))) = (self.torrents.len(), self.torrents.iter().next()) {
            snapshot.swarm = one.tracker.swarm;
        }
        snapshot
    }
}

impl Session {
    /// Calls the view with one frame's numbers.
    fn draw_view(&mut self, now: Instant, line: &StatusSnapshot) {
        let snapshot = self.ui_snapshot(now, line);
        if let Some(view) = self.view.as_mut() {
            view(&snapshot);
        }
    }

    /// What the TUI shows: the status numbers, every piece's state and
    /// availability, and a row per connected peer (of the first torrent
    /// not yet complete, or the first).
    fn ui_snapshot(&mut self, now: Instant, line: &StatusSnapshot) -> crate::ui::Snapshot {
        use crate::ui::{PeerRow, PieceState, Snapshot};
        let shown = self
            .torrents
            .iter()
            .find(|(_, s)| !s.torrent.is_complete())
            .or_else(|| self.torrents.iter().next())
            .map_or(0, |(tid, _)| tid);
        let Some(slot) = self.torrents.get_mut(shown) else {
            return Snapshot {
                name: line.name.clone(),
                elapsed: line.elapsed,
                done_bytes: 0,
                total_bytes: 0,
                down_rate: 0,
                up_rate: 0,
                eta: None,
                tracker_status: String::new(),
                swarm: None,
                peers_known: 0,
                peers_connected: 0,
                pieces: Vec::new(),
                availability: Vec::new(),
                peers: Vec::new(),
            };
        };
        let count = slot.meta.layout.piece_count();
        let pieces = (0..count)
            .map(|p| {
                if slot.torrent.have().has(p) {
                    PieceState::Done
                } else if slot.torrent.is_in_progress(p) {
                    PieceState::InFlight
                } else {
                    PieceState::Missing
                }
            })
            .collect();
        let availability = (0..count).map(|p| slot.torrent.availability(p)).collect();
        let peers = slot
            .torrent
            .peers(now)
            .into_iter()
            .map(|view| {
                let peer = view.state;
                let mut in_flight: Vec<u32> = peer
                    .requested()
                    .iter()
                    .map(|r| r.block.piece.get())
                    .collect();
                in_flight.sort_unstable();
                in_flight.dedup();
                PeerRow {
                    peer_id: Some(view.peer_id),
                    am_choking: peer.am_choking(),
                    am_interested: peer.am_interested(),
                    peer_choking: peer.peer_choking(),
                    peer_interested: peer.peer_interested(),
                    snubbed: peer.snubbed(),
                    optimistic: peer.optimistic(),
                    downloaded_bytes: peer.downloaded(),
                    uploaded_bytes: peer.uploaded(),
                    down_rate: view.down_rate,
                    up_rate: view.up_rate,
                    pieces_in_flight: u32::try_from(in_flight.len()).unwrap_or(u32::MAX),
                    requests_to_peer: u32::try_from(peer.requested().len()).unwrap_or(u32::MAX),
                    requests_from_peer: u32::try_from(peer.queued_len()).unwrap_or(u32::MAX),
                    ..PeerRow::new(view.addr)
                }
            })
            .collect();
        let left = line.total_bytes.saturating_sub(line.done_bytes);
        Snapshot {
            name: line.name.clone(),
            elapsed: line.elapsed,
            done_bytes: line.done_bytes,
            total_bytes: line.total_bytes,
            down_rate: line.down_rate,
            up_rate: line.up_rate,
            eta: left
                .checked_div(line.down_rate)
                .map(std::time::Duration::from_secs),
            tracker_status: slot.tracker.last_status.clone(),
            swarm: line.swarm,
            peers_known: line.peers_known,
            peers_connected: line.peers_connected,
            pieces,
            availability,
            peers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_progress_rates_and_eta() {
        let s = StatusSnapshot {
            name: "big.iso".into(),
            elapsed: Duration::from_secs(42),
            peers_known: 12,
            peers_connected: 5,
            done_bytes: 1 << 30,
            total_bytes: 4 << 30,
            down_rate: 4 << 20,
            up_rate: 512 << 10,
            swarm: None,
        };
        assert_eq!(
            format_status(&s),
            "big.iso  0:42  peers 12 (5)  25.0% 1.0 GiB/4.0 GiB  down 4.0 MiB/s  up 512.0 KiB/s  eta 12:48"
        );
        let stalled = StatusSnapshot {
            down_rate: 0,
            ..s.clone()
        };
        assert!(format_status(&stalled).ends_with("eta -"));
        let done = StatusSnapshot {
            done_bytes: s.total_bytes,
            ..s
        };
        assert!(format_status(&done).ends_with("eta done"));
    }
}
