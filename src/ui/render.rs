//! One frame of the `--tui` screen: a [`Snapshot`] in, ANSI text out.
//!
//! Layer 0: pure; no terminal I/O, no clock. The frame homes the cursor
//! (`ESC [H`), writes each line followed by `ESC [K` (erase the rest of the
//! line) and ends with `ESC [J` (erase below). Nothing is cleared before it
//! is redrawn, so a frame replaces the previous one without flicker, even
//! over a slow serial line. Lines are separated by `\r\n` (right in raw and
//! cooked tty modes), the last line has no line break (so a full screen
//! never scrolls), and the last column stays blank (so terminals that wrap
//! at once, without deferred wrap, do not scroll either).
//!
//! Lines are given out by priority when `height` is small: the three
//! header lines, then one row of the piece map, its legend, the peer table
//! (title row, at least one row), the flags legend, and then the rest of
//! the space is shared: up to a quarter of it to the piece map (all but the
//! table's lines when there are no peers), the rest to peers. The only styling is bold (the header's first line) and
//! reverse video (the table's title row).

use std::time::Duration;

use super::peer_table::{self, LEGENDS};
use super::piece_map;
use super::snapshot::Snapshot;
use super::text::{clean, columns, fit, pad_right};
use crate::units::format_bytes;

/// Header lines: name and progress; sizes, rates and times; peers and tracker.
const HEADER_LINES: usize = 3;

/// The text of one line and how it is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    style: Style,
}

/// The (few) ways a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Bold,
    Reverse,
}

impl Line {
    /// An unstyled line.
    fn plain(text: String) -> Line {
        Line {
            text,
            style: Style::Plain,
        }
    }
}

/// How many lines each part of the screen gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    header: usize,
    map_legend: bool,
    map_rows: usize,
    table: bool,
    /// Lines below the table's title row (peers and `... and N more`).
    peer_lines: usize,
    footer: bool,
}

/// Draws `s` on a `width` x `height` terminal: the ANSI text to print.
/// Never panics and never draws outside the given size (see the module doc).
pub fn render(s: &Snapshot, width: u16, height: u16) -> String {
    let cols = usize::from(width).saturating_sub(1);
    let plan = plan(s, cols, usize::from(height));
    let mut lines = header(s, cols);
    lines.truncate(plan.header);
    lines.extend(piece_map_lines(s, cols, plan));
    lines.extend(peer_lines(s, cols, plan));
    if plan.footer {
        let fitting = LEGENDS.iter().find(|legend| columns(legend) <= cols);
        let legend = fitting.or(LEGENDS.last()).copied().unwrap_or_default();
        lines.push(Line::plain(legend.to_string()));
    }
    emit(&lines, cols)
}

/// Shares `height` lines out between the parts of the screen.
fn plan(s: &Snapshot, cols: usize, height: usize) -> Plan {
    let header = height.min(HEADER_LINES);
    let mut left = height - header;
    let map_legend = left >= 2;
    left -= usize::from(map_legend);
    let share = if s.peers.is_empty() {
        left.saturating_sub(3)
    } else {
        (left + usize::from(map_legend)) / 4
    };
    let map_rows = wanted_map_rows(s, cols, left).min(share.max(1)).min(left);
    left -= map_rows;
    let table = left >= 2;
    left -= usize::from(table);
    let footer = table && left >= 3;
    left -= usize::from(footer);
    Plan {
        header,
        map_legend,
        map_rows,
        table,
        peer_lines: if table { left } else { 0 },
        footer,
    }
}

/// Rows the piece map would fill with one cell per piece, up to `limit`
/// (none for a torrent without pieces: the legend line says so).
fn wanted_map_rows(s: &Snapshot, cols: usize, limit: usize) -> usize {
    piece_map::shape(s.pieces.len(), cols, limit).1
}

/// The three header lines.
fn header(s: &Snapshot, cols: usize) -> Vec<Line> {
    let title = vec![
        Field::whole(percent(s.done_bytes, s.total_bytes)),
        Field::whole(clean(&s.activity, cols)),
        Field::cut(clean(&s.name, cols)),
    ];
    let eta = s.eta.map_or_else(|| "--".to_string(), duration);
    let transfer = vec![
        Field::whole(format!(
            "{} / {}",
            format_bytes(s.done_bytes),
            format_bytes(s.total_bytes)
        )),
        Field::whole(format!("down {}/s", format_bytes(s.down_rate))),
        Field::whole(format!("up {}/s", format_bytes(s.up_rate))),
        Field::whole(format!("ETA {eta}")),
        Field::whole(format!("elapsed {}", duration(s.elapsed))),
    ];
    let mut peers = vec![Field::whole(format!(
        "peers {} of {}",
        s.peers_connected, s.peers_known
    ))];
    if let Some((seeders, leechers)) = s.swarm {
        peers.push(Field::whole(format!(
            "swarm {seeders} seeders, {leechers} leechers"
        )));
    }
    peers.push(Field::cut(format!(
        "tracker {}",
        clean(&s.tracker_status, cols)
    )));
    vec![
        Line {
            text: fields(&title, cols),
            style: Style::Bold,
        },
        Line::plain(fields(&transfer, cols)),
        Line::plain(fields(&peers, cols)),
    ]
}

/// One part of a header line.
struct Field {
    text: String,
    /// Whether the field may be shown cut short rather than left out.
    may_cut: bool,
}

impl Field {
    /// A field shown whole or not at all (numbers).
    fn whole(text: String) -> Field {
        Field {
            text,
            may_cut: false,
        }
    }

    /// A field that may be cut to fit (names, tracker messages).
    fn cut(text: String) -> Field {
        Field {
            text,
            may_cut: true,
        }
    }
}

/// The fields that fit in `cols`, two spaces apart, in order: a field too
/// wide is left out (so numbers are never cut in half) unless it may be cut
/// and at least [`MIN_CUT_COLS`] columns are left.
fn fields(parts: &[Field], cols: usize) -> String {
    /// The fewest columns worth showing of a cut field.
    const MIN_CUT_COLS: usize = 16;
    let mut out = String::new();
    for part in parts {
        let gap = if out.is_empty() { 0 } else { 2 };
        let room = cols.saturating_sub(columns(&out) + gap);
        let text = if columns(&part.text) <= room {
            part.text.clone()
        } else if part.may_cut && room >= MIN_CUT_COLS {
            fit(&part.text, room)
        } else {
            continue;
        };
        if gap > 0 {
            out.push_str("  ");
        }
        out.push_str(&text);
    }
    out
}

/// The legend and the rows of the piece map, as planned.
fn piece_map_lines(s: &Snapshot, cols: usize, plan: Plan) -> Vec<Line> {
    let mut lines = Vec::new();
    if plan.map_rows == 0 && !plan.map_legend {
        return lines;
    }
    let (count, _) = piece_map::shape(s.pieces.len(), cols, plan.map_rows);
    let known = !s.availability.is_empty() && s.availability.len() == s.pieces.len();
    if plan.map_legend {
        let legend = if s.pieces.is_empty() {
            "pieces: none".to_string()
        } else {
            piece_map::legend(s.pieces.len(), count, known, cols)
        };
        lines.push(Line::plain(legend));
    }
    let cells = piece_map::cells(&s.pieces, &s.availability, count);
    lines.extend(piece_map::rows(&cells, cols).into_iter().map(Line::plain));
    lines.truncate(usize::from(plan.map_legend) + plan.map_rows);
    lines
}

/// The peer table's title row, peer rows and `... and N more`, as planned.
fn peer_lines(s: &Snapshot, cols: usize, plan: Plan) -> Vec<Line> {
    if !plan.table {
        return Vec::new();
    }
    let table = peer_table::table(&s.peers, cols, plan.peer_lines);
    let mut lines = vec![Line {
        text: table.header,
        style: Style::Reverse,
    }];
    lines.extend(table.rows.into_iter().map(Line::plain));
    lines.extend(table.more.map(Line::plain));
    lines
}

/// The frame: home, each line fitted to `cols` then erase-to-end-of-line,
/// erase below.
fn emit(lines: &[Line], cols: usize) -> String {
    let mut out = String::from("\x1b[H");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        // Defence in depth: every untrusted string was escaped already; a
        // control character here would be a bug, and is drawn as `?`.
        let text: String = fit(&line.text, cols)
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        match line.style {
            Style::Plain => out.push_str(&text),
            Style::Bold => out.push_str(&format!("\x1b[1m{text}\x1b[0m")),
            Style::Reverse => {
                let padded = pad_right(&text, cols);
                out.push_str(&format!("\x1b[7m{padded}\x1b[0m"));
            }
        }
        out.push_str("\x1b[K");
    }
    out.push_str("\x1b[J");
    out
}

/// `45.3%`, rounded down (so 100.0% means complete); `0.0%` for an empty torrent.
fn percent(done: u64, total: u64) -> String {
    let tenths = (u128::from(done.min(total)) * 1000)
        .checked_div(u128::from(total))
        .unwrap_or(0);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A short duration: `42s`, `13m 02s`, `1h 02m`, `3d 04h`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::snapshot::{PeerRow, PieceState};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    /// The escape sequences the renderer itself writes.
    const OWN_SEQUENCES: &[&str] = &[
        "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[1m", "\x1b[7m", "\x1b[0m",
    ];

    /// Every CSI sequence (`ESC [` params final) and any other ESC, in order.
    fn escapes(out: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut chars = out.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c != '\x1b' {
                continue;
            }
            let mut end = start + 1;
            if out[end..].starts_with('[') {
                end += 1;
                while let Some(&(i, c)) = chars.peek() {
                    if i < end {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    end = i + c.len_utf8();
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            found.push(out[start..end].to_string());
        }
        found
    }

    /// The screen as text: escape sequences removed, split into lines.
    fn screen(out: &str) -> Vec<String> {
        let mut text = out.to_string();
        for seq in OWN_SEQUENCES {
            text = text.replace(seq, "");
        }
        if text.is_empty() {
            return Vec::new();
        }
        text.split("\r\n").map(str::to_string).collect()
    }

    fn peer(i: u32) -> PeerRow {
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        let mut p = PeerRow::new(SocketAddr::from((ip, 6881)));
        p.peer_id = Some(*b"-TR3000-abcdefghijkl");
        p.am_interested = true;
        p.peer_choking = i.is_multiple_of(3);
        p.down_rate = u64::from(i) * 1000;
        p.up_rate = u64::from(i % 7) * 500;
        p.downloaded_bytes = u64::from(i) << 20;
        p.uploaded_bytes = u64::from(i) << 16;
        p.pieces_in_flight = i % 4;
        p.requests_to_peer = i % 50;
        p.requests_from_peer = i % 5;
        p
    }

    /// A torrent `done` of `pieces` done, in flight around the boundary,
    /// with `peers` peers.
    fn snapshot(pieces: usize, done: usize, peers: u32) -> Snapshot {
        let states = (0..pieces)
            .map(|i| match i {
                i if i < done => PieceState::Done,
                i if i < done + 4 => PieceState::InFlight,
                _ => PieceState::Missing,
            })
            .collect();
        Snapshot {
            name: "ubuntu-24.04-desktop-amd64.iso".to_string(),
            activity: "downloading".to_string(),
            elapsed: Duration::from_secs(3723),
            done_bytes: 2_900_000_000,
            total_bytes: 6_400_000_000,
            down_rate: 4_400_000,
            up_rate: 524_288,
            eta: Some(Duration::from_secs(795)),
            tracker_status: "http://t/announce: ok, next in 28 min".to_string(),
            swarm: Some((120, 34)),
            peers_known: 87,
            peers_connected: peers as usize,
            pieces: states,
            availability: (0..pieces).map(|i| (i % 11) as u32).collect(),
            peers: (1..=peers).map(peer).collect(),
        }
    }

    fn hostile() -> Snapshot {
        let mut s = snapshot(100, 30, 3);
        s.name = "a\x1b[2J\x1b]0;pwned\x07b\u{202e}gpj.exe\u{200b}\r\n\u{9b}31m日本語".repeat(5);
        s.tracker_status = "http://t/\x1b[31mred\x1b[0m\nfake line".to_string();
        s.peers[0].peer_id = Some(*b"\x1b[2J\x1b[H-evil-\x07\x00\xff\x9b2J!");
        s.peers[1].peer_id = None;
        s
    }

    fn all_snapshots() -> Vec<(&'static str, Snapshot)> {
        let mut huge = snapshot(64, 10, 2);
        huge.done_bytes = u64::MAX;
        huge.total_bytes = u64::MAX;
        huge.down_rate = u64::MAX;
        huge.up_rate = u64::MAX;
        huge.eta = Some(Duration::MAX);
        huge.elapsed = Duration::MAX;
        huge.swarm = Some((u32::MAX, u32::MAX));
        huge.peers_known = usize::MAX;
        huge.peers_connected = usize::MAX;
        huge.availability = vec![u32::MAX; 64];
        huge.peers[0].downloaded_bytes = u64::MAX;
        huge.peers[0].pieces_in_flight = u32::MAX;
        huge.peers[0].requests_to_peer = u32::MAX;
        huge.peers[0].requests_from_peer = u32::MAX;
        huge.peers[1].addr = SocketAddr::from((
            Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
            ),
            65535,
        ));
        vec![
            ("default", Snapshot::default()),
            ("no pieces, 500 peers", snapshot(0, 0, 500)),
            ("1M pieces, no peers", snapshot(1_000_000, 400_000, 0)),
            ("typical", snapshot(2400, 1100, 23)),
            ("hostile", hostile()),
            ("huge counts", huge),
        ]
    }

    const SIZES: &[(u16, u16)] = &[
        (0, 0),
        (0, 10),
        (10, 0),
        (1, 1),
        (2, 2),
        (10, 3),
        (12, 4),
        (20, 6),
        (40, 12),
        (80, 24),
        (100, 30),
        (160, 50),
        (300, 120),
        (u16::MAX, 3),
    ];

    #[test]
    fn every_line_fits_the_width_and_the_lines_fit_the_height() {
        for (label, s) in all_snapshots() {
            for &(width, height) in SIZES {
                let lines = screen(&render(&s, width, height));
                assert!(
                    lines.len() <= usize::from(height),
                    "{label} {width}x{height}: {} lines",
                    lines.len()
                );
                for line in &lines {
                    let chars = line.chars().count();
                    assert!(
                        chars < usize::from(width) || chars == 0,
                        "{label} {width}x{height}: {line:?}"
                    );
                    assert!(columns(line) <= usize::from(width));
                }
            }
        }
    }

    #[test]
    fn a_full_screen_uses_every_line() {
        for &(width, height) in &[(40u16, 12u16), (100, 30), (160, 50)] {
            let lines = screen(&render(&snapshot(2400, 1100, 500), width, height));
            assert_eq!(lines.len(), usize::from(height), "{width}x{height}");
        }
    }

    #[test]
    fn only_the_renderers_own_escape_sequences_reach_the_terminal() {
        for (label, s) in all_snapshots() {
            for &(width, height) in SIZES {
                let out = render(&s, width, height);
                for seq in escapes(&out) {
                    assert!(OWN_SEQUENCES.contains(&seq.as_str()), "{label}: {seq:?}");
                }
                assert!(!out.contains('\u{9b}'), "{label}: raw CSI");
                assert!(!out.contains('\u{202e}'), "{label}: raw bidi override");
                assert!(!out.contains('\u{200b}'), "{label}: raw zero-width space");
                assert!(!out.contains('\x07'), "{label}: raw BEL");
                let stray_newlines = out.matches('\n').count() - out.matches("\r\n").count();
                assert_eq!(stray_newlines, 0, "{label}");
            }
        }
    }

    #[test]
    fn hostile_names_are_shown_escaped() {
        let lines = screen(&render(&hostile(), 300, 40));
        let text = lines.join("\n");
        assert!(lines[0].contains("a\\u{1b}[2J\\u{1b}]0;pwned\\u{7}b\\u{202e}gpj.exe"));
        assert!(text.contains("tracker http://t/\\u{1b}[31mred"));
        assert!(text.contains("unknown (\\x1b[2J\\x1b[H-)"), "{text}");
    }

    #[test]
    fn frame_homes_erases_each_line_and_below() {
        let out = render(&snapshot(100, 50, 200), 80, 24);
        assert!(out.starts_with("\x1b[H"));
        assert!(out.ends_with("\x1b[K\x1b[J"));
        assert_eq!(out.matches("\x1b[K").count(), 24);
        assert_eq!(out.matches("\r\n").count(), 23);
        assert!(!out.contains("\x1b[2J"));
        assert_eq!(render(&Snapshot::default(), 80, 0), "\x1b[H\x1b[J");
    }

    #[test]
    fn header_shows_name_progress_rates_and_swarm() {
        let s = snapshot(2400, 1100, 23);
        for &(width, height) in &[(40u16, 12u16), (160, 50)] {
            let lines = screen(&render(&s, width, height));
            assert!(
                lines[0].starts_with("45.3%  downloading  ubuntu-24.04"),
                "{:?}",
                lines[0]
            );
        }
        let lines = screen(&render(&s, 160, 50));
        assert_eq!(
            lines[0],
            "45.3%  downloading  ubuntu-24.04-desktop-amd64.iso"
        );
        assert_eq!(
            lines[1],
            "2.7 GiB / 6.0 GiB  down 4.2 MiB/s  up 512.0 KiB/s  ETA 13m 15s  elapsed 1h 02m"
        );
        assert_eq!(
            lines[2],
            "peers 23 of 87  swarm 120 seeders, 34 leechers  \
             tracker http://t/announce: ok, next in 28 min"
        );
    }

    #[test]
    fn piece_map_shows_the_done_part_first() {
        let mut s = snapshot(100_000, 50_000, 10);
        s.availability.clear();
        let lines = screen(&render(&s, 101, 30));
        assert!(lines[3].starts_with("pieces 100000, ~"), "{:?}", lines[3]);
        let map: String = lines[4..]
            .iter()
            .take_while(|l| !l.starts_with("address"))
            .cloned()
            .collect();
        let cells = map.chars().count();
        assert_eq!(cells % 100, 0, "{map}");
        let (first, second) = map.split_at(cells / 2);
        assert!(first.chars().all(|c| c == '#'), "{first}");
        assert!(second.starts_with('+'), "{second}");
        assert!(second.chars().skip(1).all(|c| c == '.'), "{second}");
    }

    #[test]
    fn piece_map_shades_missing_cells_by_availability() {
        let s = snapshot(20, 5, 1);
        let lines = screen(&render(&s, 80, 24));
        assert!(lines[3].ends_with("0-9 missing (peers that have it)"));
        assert_eq!(lines[4], "#####++++99012345678");
    }

    #[test]
    fn peer_rows_are_sorted_and_cut_with_a_count() {
        let lines = screen(&render(&snapshot(2400, 1100, 500), 100, 30));
        let title = lines.iter().position(|l| l.starts_with("address")).unwrap();
        let more = lines
            .iter()
            .position(|l| l.starts_with("... and "))
            .unwrap();
        let shown = more - title - 1;
        assert!(shown >= 10, "{shown}");
        assert_eq!(lines[more], format!("... and {} more", 500 - shown));
        assert!(
            lines[title + 1].starts_with("10.0.1.244:6881 "),
            "{}",
            lines[title + 1]
        );
        assert!(lines[title + 1].contains("Transmission 3.00"));
        assert!(lines[more + 1].starts_with("flags: D/d download, U/u upload"));
        assert_eq!(more + 2, lines.len());
    }

    #[test]
    fn narrow_terminal_keeps_every_part() {
        let lines = screen(&render(&snapshot(2400, 1100, 500), 40, 12));
        assert!(lines[0].starts_with("45.3%"));
        assert_eq!(lines[3], "#done =part +flight 0-9 peers");
        assert!(lines.iter().any(|l| l.starts_with("address")));
        assert!(lines.iter().any(|l| l.starts_with("10.0.1.244:6881")));
        assert!(lines.iter().any(|l| l.starts_with("... and ")));
        assert_eq!(lines[11], "D/d down U/u up K ? S snub O optimistic");
    }

    #[test]
    fn no_peers_and_no_pieces_say_so() {
        let lines = screen(&render(&Snapshot::default(), 80, 24));
        assert!(lines.contains(&"pieces: none".to_string()));
        assert!(lines.contains(&"(no connected peers)".to_string()));
    }

    #[test]
    fn a_million_pieces_and_500_peers_fit_the_screen() {
        // The map is scaled down (one cell for many pieces) and the peer
        // table cut to the rows that fit: the output is bounded by the
        // screen, not by the torrent or the swarm. (Speed is for benches,
        // not tests.)
        let s = snapshot(1_000_000, 333_333, 500);
        let out = render(&s, 160, 50);
        let lines = screen(&out);
        assert!(lines[3].starts_with("pieces 1000000, ~"));
        assert!(lines.len() <= 50, "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.chars().count() <= 160));
    }

    #[test]
    fn plan_gives_lines_out_by_priority() {
        let s = snapshot(2400, 1100, 500);
        let cases = [
            (0, (0, false, 0, false, 0, false)),
            (3, (3, false, 0, false, 0, false)),
            (4, (3, false, 1, false, 0, false)),
            (5, (3, true, 1, false, 0, false)),
            (7, (3, true, 1, true, 1, false)),
            (9, (3, true, 1, true, 2, true)),
            (12, (3, true, 2, true, 4, true)),
            (30, (3, true, 6, true, 18, true)),
        ];
        for (height, (header, map_legend, map_rows, table, peer_lines, footer)) in cases {
            let expected = Plan {
                header,
                map_legend,
                map_rows,
                table,
                peer_lines,
                footer,
            };
            assert_eq!(plan(&s, 99, height), expected, "height {height}");
        }
    }

    #[test]
    fn percent_and_duration_tables() {
        let percents = [
            ((0, 0), "0.0%"),
            ((0, 10), "0.0%"),
            ((999, 1000), "99.9%"),
            ((9999, 10000), "99.9%"),
            ((10, 10), "100.0%"),
            ((20, 10), "100.0%"),
            ((u64::MAX, u64::MAX), "100.0%"),
        ];
        for ((done, total), expected) in percents {
            assert_eq!(percent(done, total), expected);
        }
        let durations = [
            (0, "0s"),
            (42, "42s"),
            (795, "13m 15s"),
            (3723, "1h 02m"),
            (3 * 86_400 + 4 * 3600, "3d 04h"),
        ];
        for (secs, expected) in durations {
            assert_eq!(duration(Duration::from_secs(secs)), expected);
        }
        assert!(duration(Duration::MAX).ends_with('h'));
    }
}
