//! The status line (and the library's progress reports): one line on
//! stderr, rewritten in place once a second on a terminal; off a terminal
//! (systemd, nohup, a redirect) a plain line only when the [`Activity`]
//! changes or a minute has passed.
//!
//! Layer 2 (it writes to stderr and asks the terminal its width); what the
//! line says ([`Activity::of`]) and how it is fitted ([`format_status`])
//! are pure functions.
//!
//! The line, fields two spaces apart:
//!
//! ```text
//! ubuntu.iso  downloading  37.5%  down 4.0 MiB/s  eta 8:03  up 512.0 KiB/s  peers 5 of 12  1.2 GiB/3.1 GiB  swarm 40s/9l  elapsed 0:42
//! ```
//!
//! `peers 5 of 12`: 5 connected of 12 known addresses (never counting
//! ourselves). On a terminal the line fits its width and never wraps: a
//! long name is first cut to a third of the width (at least
//! [`NAME_MIN_COLS`] columns), then fields are dropped from the right, and
//! only then is the name cut further. Widths are counted in columns, never
//! bytes, and names from torrents are escaped ([`crate::ui::text`]).

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Session;
use crate::ui::text::{columns, fit, sanitize};
use crate::units::format_bytes;

/// Off a terminal, the longest a steady state goes without a line: a log
/// read later still shows progress, without a line every second.
pub const QUIET_STATUS_PERIOD: Duration = Duration::from_secs(60);

/// The fewest columns a long name is cut to before any field is dropped.
pub const NAME_MIN_COLS: usize = 16;

/// Columns assumed on a terminal whose width cannot be asked.
const FALLBACK_COLUMNS: usize = 80;

/// What pollen is doing with the torrents: the first field after the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Hashing the data already on disk at start-up: pieces checked so
    /// far, of all pieces.
    Checking {
        /// Pieces checked (or trusted from the resume state) so far.
        checked: u32,
        /// All pieces.
        of: u32,
    },
    /// A magnet link's metadata is being fetched from connected peers:
    /// pieces of it received so far, of how many (once a peer said).
    FetchingMetadata {
        /// Metadata pieces received.
        got: u32,
        /// Metadata pieces in all, once known.
        of: Option<u32>,
    },
    /// Peers are connected and pieces are missing.
    Downloading,
    /// Pieces are missing; peers are known but none is connected (yet).
    Connecting,
    /// No peer is known yet and an announce is outstanding.
    WaitingForTracker,
    /// No peer is known, and the trackers answered or failed (or none is
    /// in use): nothing to download from until one turns up.
    Stalled,
    /// Every piece is verified and we keep uploading (`--seed`).
    Seeding,
    /// Every piece is verified; the session ends.
    Complete,
    /// Paused by the caller.
    Paused,
}

/// The facts about one torrent that decide its [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivityFacts {
    /// Paused by the caller.
    pub paused: bool,
    /// The start-up check is running: (next piece to check, piece count).
    pub checking: Option<(u32, u32)>,
    /// Every piece is verified.
    pub complete: bool,
    /// A magnet link's metadata is being fetched: (pieces received, of
    /// how many once known).
    pub metadata: Option<(u32, Option<u32>)>,
    /// Keep uploading once complete.
    pub seed: bool,
    /// Known peer addresses (ourselves never among them).
    pub peers_known: usize,
    /// Peers connected (handshake done).
    pub peers_connected: usize,
    /// A tracker announce is outstanding (in flight, or not yet made).
    pub tracker_waiting: bool,
}

impl Activity {
    /// What one torrent is doing.
    pub fn of(facts: &ActivityFacts) -> Activity {
        if facts.paused {
            Activity::Paused
        } else if let Some((checked, of)) = facts.checking {
            Activity::Checking { checked, of }
        } else if let Some((got, of)) = facts.metadata.filter(|_| facts.peers_connected > 0) {
            Activity::FetchingMetadata { got, of }
        } else if facts.complete && facts.seed {
            Activity::Seeding
        } else if facts.complete {
            Activity::Complete
        } else if facts.peers_connected > 0 {
            Activity::Downloading
        } else if facts.peers_known > 0 {
            Activity::Connecting
        } else if facts.tracker_waiting {
            Activity::WaitingForTracker
        } else {
            Activity::Stalled
        }
    }

    /// What several torrents are doing together: the more pressing of the
    /// two (checking, then downloading ... then paused); two checks add up.
    pub fn combine(self, other: Activity) -> Activity {
        if let (
            Activity::Checking { checked, of },
            Activity::Checking {
                checked: more,
                of: more_of,
            },
        ) = (self, other)
        {
            return Activity::Checking {
                checked: checked.saturating_add(more),
                of: of.saturating_add(more_of),
            };
        }
        if self.rank() <= other.rank() {
            self
        } else {
            other
        }
    }

    /// Whether `other` is the same state (a check's progress aside): off a
    /// terminal, a line is printed when this changes.
    pub fn same_state(self, other: Activity) -> bool {
        self.rank() == other.rank()
    }

    /// Order for [`Activity::combine`]: lower is more pressing.
    fn rank(self) -> u8 {
        match self {
            Activity::Checking { .. } => 0,
            Activity::FetchingMetadata { .. } => 1,
            Activity::Downloading => 2,
            Activity::Connecting => 3,
            Activity::WaitingForTracker => 4,
            Activity::Stalled => 5,
            Activity::Seeding => 6,
            Activity::Complete => 7,
            Activity::Paused => 8,
        }
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::Checking { checked, of } => {
                let percent = if *of == 0 {
                    100
                } else {
                    u64::from(*checked) * 100 / u64::from(*of)
                };
                write!(f, "checking {percent}%")
            }
            Activity::FetchingMetadata { got, of: Some(of) } => {
                write!(f, "fetching metadata {got}/{of}")
            }
            Activity::FetchingMetadata { of: None, .. } => f.write_str("fetching metadata"),
            Activity::Downloading => f.write_str("downloading"),
            Activity::Connecting => f.write_str("connecting"),
            Activity::WaitingForTracker => f.write_str("waiting for tracker"),
            Activity::Stalled => f.write_str("stalled: no peers"),
            Activity::Seeding => f.write_str("seeding"),
            Activity::Complete => f.write_str("complete"),
            Activity::Paused => f.write_str("paused"),
        }
    }
}

/// What the status line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Torrent name.
    pub name: String,
    /// What pollen is doing.
    pub activity: Activity,
    /// Time since start.
    pub elapsed: Duration,
    /// Known peer addresses (ourselves never among them).
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

/// Formats the status line (see the module doc), fitted to `width`
/// columns when given (`None`: no limit), e.g.
/// `big.iso  downloading  25.0%  down 4.0 MiB/s  eta 12:48  up 512.0 KiB/s  peers 5 of 12  1.0 GiB/4.0 GiB  elapsed 0:42`.
pub fn format_status(s: &StatusSnapshot, width: Option<usize>) -> String {
    let name = sanitize(&s.name);
    let fields = status_fields(s);
    let Some(width) = width else {
        return join(&name, &fields);
    };
    let line = join(&name, &fields);
    if columns(&line) <= width {
        return line;
    }
    let name = fit(&name, (width / 3).max(NAME_MIN_COLS));
    let mut fields = fields;
    while fields.len() > 1 && columns(&join(&name, &fields)) > width {
        fields.pop();
    }
    let line = join(&name, &fields);
    if columns(&line) <= width {
        return line;
    }
    // Only the activity is left: the name gives way to it, down to a few
    // columns; narrower still, the name alone.
    let activity = fields.first().map_or(0, |a| columns(a));
    let room = width.saturating_sub(activity + 2);
    if room >= 4 {
        join(&fit(&name, room), &fields)
    } else {
        fit(&name, width)
    }
}

/// The fields after the name, most important first (the last are dropped
/// first when the line is too wide).
fn status_fields(s: &StatusSnapshot) -> Vec<String> {
    // Only a magnet link before its metadata has no size: no percent, no
    // eta, no byte counts until it is known.
    let sized = s.total_bytes > 0;
    let mut fields = vec![s.activity.to_string()];
    if sized {
        let percent = s.done_bytes as f64 * 100.0 / s.total_bytes as f64;
        fields.push(format!("{percent:.1}%"));
    }
    fields.push(format!("down {}/s", format_bytes(s.down_rate)));
    let left = s.total_bytes.saturating_sub(s.done_bytes);
    if left > 0 {
        fields.push(match left.checked_div(s.down_rate) {
            Some(secs) => format!("eta {}", clock(Duration::from_secs(secs))),
            None => "eta -".to_string(),
        });
    }
    fields.push(format!("up {}/s", format_bytes(s.up_rate)));
    fields.push(format!("peers {} of {}", s.peers_connected, s.peers_known));
    if sized {
        fields.push(format!(
            "{}/{}",
            format_bytes(s.done_bytes),
            format_bytes(s.total_bytes)
        ));
    }
    if let Some((seeders, leechers)) = s.swarm {
        fields.push(format!("swarm {seeders}s/{leechers}l"));
    }
    fields.push(format!("elapsed {}", clock(s.elapsed)));
    fields
}

/// The name and the fields, two spaces apart.
fn join(name: &str, fields: &[String]) -> String {
    let mut line = name.to_string();
    for field in fields {
        line.push_str("  ");
        line.push_str(field);
    }
    line
}

/// `h:mm:ss` or `m:ss`.
pub fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// The terminal's width in columns: `COLUMNS` when set, else what
/// `stty size` says of the controlling terminal (`/dev/tty`; no `unsafe`
/// ioctl), else `None`. Spawns `stty`: a few milliseconds, so it is only
/// asked at start and when the window changes size.
pub fn terminal_columns() -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(cols);
    }
    let tty = std::fs::File::open("/dev/tty").ok()?;
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(tty)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let cols = text.split_whitespace().nth(1)?.parse::<usize>().ok()?;
    (out.status.success() && cols > 0).then_some(cols)
}

/// Prints status lines.
#[derive(Debug)]
pub(super) struct StatusLine {
    enabled: bool,
    terminal: bool,
    drawn: bool,
    /// On a terminal: its width in columns.
    width: Option<usize>,
    /// Set by SIGWINCH: ask the width again.
    resized: Arc<AtomicBool>,
    /// Off a terminal: the activity last printed, and when.
    printed: Option<(Activity, Instant)>,
}

impl StatusLine {
    pub(super) fn new(enabled: bool) -> StatusLine {
        let terminal = std::io::stderr().is_terminal();
        let resized = Arc::new(AtomicBool::new(false));
        let width = if enabled && terminal {
            // A failed registration only means a resize is seen at the next start.
            let _ =
                signal_hook::flag::register(signal_hook::consts::SIGWINCH, Arc::clone(&resized));
            Some(terminal_columns().unwrap_or(FALLBACK_COLUMNS))
        } else {
            None
        };
        StatusLine {
            enabled,
            terminal,
            drawn: false,
            width,
            resized,
            printed: None,
        }
    }

    /// Draws the line: in place on a terminal; off one, only when the
    /// activity changed or [`QUIET_STATUS_PERIOD`] has passed.
    pub(super) fn show(&mut self, snapshot: &StatusSnapshot, now: Instant) {
        if !self.enabled {
            return;
        }
        if !self.terminal {
            let quiet = self.printed.is_some_and(|(activity, at)| {
                activity.same_state(snapshot.activity)
                    && now.saturating_duration_since(at) < QUIET_STATUS_PERIOD
            });
            if quiet {
                return;
            }
        }
        self.print(snapshot, now);
    }

    /// Writes the line now.
    fn print(&mut self, snapshot: &StatusSnapshot, now: Instant) {
        self.printed = Some((snapshot.activity, now));
        if self.terminal && self.resized.swap(false, Ordering::Relaxed) {
            self.width = Some(terminal_columns().unwrap_or(FALLBACK_COLUMNS));
        }
        // The last column stays blank: a terminal that wraps at once
        // (without deferred wrap) would otherwise move to a new line.
        let line = format_status(snapshot, self.width.map(|w| w.saturating_sub(1).max(1)));
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Draws the final line (always, on a terminal or not) and moves to a
    /// fresh line.
    pub(super) fn finish_line(&mut self, snapshot: &StatusSnapshot, now: Instant) {
        if self.enabled {
            self.print(snapshot, now);
        }
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
            self.status.show(&snapshot, now);
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
            activity: self.activity(),
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

    /// What the session is doing: each torrent's [`Activity`] from its
    /// check, completion, peers and trackers, combined.
    fn activity(&self) -> Activity {
        let mut all: Option<Activity> = None;
        for (tid, slot) in &self.torrents {
            let facts = ActivityFacts {
                paused: slot.paused,
                checking: slot
                    .checking
                    .map(|next| (next, slot.meta.layout.piece_count())),
                complete: slot.torrent.is_complete(),
                metadata: slot
                    .torrent
                    .metadata_progress()
                    .map(|(got, of)| (u32::try_from(got).unwrap_or(u32::MAX), of)),
                seed: self.config.seeds(),
                peers_known: slot.torrent.peer_list().len(),
                // Joined web seeds count here (a web-seeded download is
                // downloading), though not in the line's `peers C of K`.
                peers_connected: self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.torrent == Some(tid) && c.is_active())
                    .count()
                    + slot.web_seeds.joined_count(),
                tracker_waiting: slot.tracker.awaiting_answer(),
            };
            let one = Activity::of(&facts);
            all = Some(all.map_or(one, |a| a.combine(one)));
        }
        all.unwrap_or(Activity::Stalled)
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
        let dht = self.dht_summary();
        let Some(slot) = self.torrents.get_mut(shown) else {
            return Snapshot {
                name: line.name.clone(),
                activity: line.activity.to_string(),
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
            activity: line.activity.to_string(),
            elapsed: line.elapsed,
            done_bytes: line.done_bytes,
            total_bytes: line.total_bytes,
            down_rate: line.down_rate,
            up_rate: line.up_rate,
            eta: left
                .checked_div(line.down_rate)
                .map(std::time::Duration::from_secs),
            tracker_status: match dht {
                Some(dht) if !slot.meta.private => format!("{}; {dht}", slot.tracker.last_status),
                _ => slot.tracker.last_status.clone(),
            },
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

    fn snapshot(name: &str) -> StatusSnapshot {
        StatusSnapshot {
            name: name.into(),
            activity: Activity::Downloading,
            elapsed: Duration::from_secs(42),
            peers_known: 12,
            peers_connected: 5,
            done_bytes: 1 << 30,
            total_bytes: 4 << 30,
            down_rate: 4 << 20,
            up_rate: 512 << 10,
            swarm: None,
        }
    }

    #[test]
    fn status_line_shows_activity_progress_rates_eta_and_peers() {
        let s = snapshot("big.iso");
        assert_eq!(
            format_status(&s, None),
            "big.iso  downloading  25.0%  down 4.0 MiB/s  eta 12:48  up 512.0 KiB/s  peers 5 of 12  1.0 GiB/4.0 GiB  elapsed 0:42"
        );
        let stalled = StatusSnapshot {
            down_rate: 0,
            ..s.clone()
        };
        assert!(format_status(&stalled, None).contains("  eta -  "));
        let seeding = StatusSnapshot {
            activity: Activity::Seeding,
            done_bytes: s.total_bytes,
            swarm: Some((3, 9)),
            ..s
        };
        assert_eq!(
            format_status(&seeding, None),
            "big.iso  seeding  100.0%  down 4.0 MiB/s  up 512.0 KiB/s  peers 5 of 12  4.0 GiB/4.0 GiB  swarm 3s/9l  elapsed 0:42"
        );
    }

    #[test]
    fn before_a_magnets_metadata_the_line_shows_no_size() {
        let snapshot = StatusSnapshot {
            name: "0123abcd".into(),
            activity: Activity::FetchingMetadata {
                got: 1,
                of: Some(2),
            },
            elapsed: Duration::from_secs(3),
            peers_known: 3,
            peers_connected: 2,
            done_bytes: 0,
            total_bytes: 0,
            down_rate: 0,
            up_rate: 0,
            swarm: None,
        };
        assert_eq!(
            format_status(&snapshot, Some(200)),
            "0123abcd  fetching metadata 1/2  down 0 B/s  up 0 B/s  peers 2 of 3  elapsed 0:03"
        );
    }

    #[test]
    fn activity_follows_check_completion_peers_and_trackers() {
        let base = ActivityFacts::default();
        let table = [
            (
                ActivityFacts {
                    metadata: Some((1, Some(3))),
                    peers_known: 2,
                    peers_connected: 1,
                    ..base
                },
                "fetching metadata 1/3",
            ),
            (
                ActivityFacts {
                    metadata: Some((0, None)),
                    peers_known: 2,
                    peers_connected: 1,
                    ..base
                },
                "fetching metadata",
            ),
            (
                ActivityFacts {
                    metadata: Some((0, None)),
                    peers_known: 2,
                    ..base
                },
                "connecting",
            ),
            (
                ActivityFacts {
                    checking: Some((3, 12)),
                    ..base
                },
                "checking 25%",
            ),
            (
                ActivityFacts {
                    complete: true,
                    seed: true,
                    ..base
                },
                "seeding",
            ),
            (
                ActivityFacts {
                    complete: true,
                    ..base
                },
                "complete",
            ),
            (
                ActivityFacts {
                    peers_known: 3,
                    peers_connected: 1,
                    ..base
                },
                "downloading",
            ),
            (
                ActivityFacts {
                    peers_known: 3,
                    tracker_waiting: true,
                    ..base
                },
                "connecting",
            ),
            (
                ActivityFacts {
                    tracker_waiting: true,
                    ..base
                },
                "waiting for tracker",
            ),
            (base, "stalled: no peers"),
            (
                ActivityFacts {
                    paused: true,
                    checking: Some((0, 1)),
                    ..base
                },
                "paused",
            ),
        ];
        for (facts, expected) in table {
            assert_eq!(Activity::of(&facts).to_string(), expected, "{facts:?}");
        }
    }

    #[test]
    fn several_torrents_show_the_most_pressing_activity_and_checks_add_up() {
        use Activity::*;
        assert_eq!(Seeding.combine(Downloading), Downloading);
        assert_eq!(Stalled.combine(WaitingForTracker), WaitingForTracker);
        assert_eq!(Complete.combine(Seeding), Seeding);
        let a = Checking { checked: 1, of: 4 };
        let b = Checking { checked: 3, of: 4 };
        assert_eq!(a.combine(Downloading), a);
        assert_eq!(a.combine(b).to_string(), "checking 50%");
        assert!(a.same_state(b), "check progress is no change of state");
        assert!(!Seeding.same_state(Stalled));
    }

    #[test]
    fn the_line_fits_every_width_and_keeps_the_name_and_activity_longest() {
        let names = [
            "big.iso".to_string(),
            "a".repeat(150),
            "Ubuntu 24.04 Desktop amd64 — Überarbeitete Ausgabe mit sehr langem Namen.iso".into(),
            "日本語の映画のとても長いタイトル日本語の映画のとても長いタイトル.mkv".into(),
        ];
        for name in &names {
            let s = snapshot(name);
            let whole = format_status(&s, None);
            for width in [20, 40, 80, 200] {
                let line = format_status(&s, Some(width));
                assert!(
                    columns(&line) <= width,
                    "{width}: {line:?} is {} columns",
                    columns(&line)
                );
                assert!(!line.contains('\n'));
                let head: String = name.chars().take(3).collect();
                assert!(line.starts_with(&head), "{width}: {line:?}");
                if width >= 40 {
                    assert!(line.contains("  downloading"), "{width}: {line:?}");
                }
                if columns(&whole) <= width {
                    assert_eq!(line, whole, "nothing is cut when it fits");
                }
            }
        }
    }

    #[test]
    fn fields_go_from_the_right_and_the_name_is_cut_last() {
        let s = snapshot(&"n".repeat(150));
        let at_80 = format_status(&s, Some(80));
        assert!(at_80.starts_with(&format!("{}~  downloading  25.0%", "n".repeat(25))));
        assert!(!at_80.contains("elapsed"), "{at_80}");
        let at_40 = format_status(&s, Some(40));
        assert_eq!(at_40, format!("{}~  downloading  25.0%", "n".repeat(15)));
        let at_20 = format_status(&s, Some(20));
        assert_eq!(at_20, format!("{}~  downloading", "n".repeat(6)));
        let at_8 = format_status(&s, Some(8));
        assert_eq!(
            at_8,
            format!("{}~", "n".repeat(7)),
            "narrower: the name alone"
        );
        let short = snapshot("big.iso");
        assert_eq!(
            format_status(&short, Some(40)),
            "big.iso  downloading  25.0%"
        );
    }

    #[test]
    fn wide_characters_count_two_columns_and_are_never_split() {
        let s = snapshot(&"映".repeat(60));
        let line = format_status(&s, Some(40));
        assert!(columns(&line) <= 40, "{line}");
        assert!(line.starts_with("映映"));
        assert!(line.contains("~  downloading"), "{line}");
    }

    #[test]
    fn hostile_names_are_escaped() {
        let s = snapshot("evil\u{1b}[2Jname\r\n");
        let line = format_status(&s, Some(80));
        assert!(!line.contains('\u{1b}') && !line.contains('\r') && !line.contains('\n'));
        assert!(line.starts_with("evil\\u{1b}[2Jname"), "{line}");
    }
}
