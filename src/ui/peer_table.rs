//! The peer table: one row per connected peer, fastest first, with the
//! columns that fit the terminal.
//!
//! Layer 0: pure. Rows are sorted by download rate, then upload rate, then
//! address (so equal rows do not jump between frames); only the rows that
//! fit are formatted. On a narrow terminal the least useful columns are
//! dropped first (in-flight, queue, totals...), the client column shrinks
//! before that, and the address is kept.
//!
//! Flags, after libtorrent's and Transmission's peer lists ([`LEGENDS`]):
//!
//! | flag | meaning |
//! | --- | --- |
//! | `D` | we are interested and the peer unchokes us: we download |
//! | `d` | we are interested but the peer chokes us |
//! | `?` | the peer unchokes us but we are not interested |
//! | `U` | the peer is interested and we unchoke it: we upload |
//! | `u` | the peer is interested but we choke it |
//! | `K` | we unchoke the peer but it is not interested |
//! | `S` | snubbed: the peer unchoked us but sends nothing |
//! | `O` | the peer holds our optimistic unchoke |

use std::cmp::Reverse;

use super::client_name::client_name;
use super::snapshot::PeerRow;
use super::text::{clean, columns, pad_left, pad_right};
use crate::units::format_bytes;

/// The footer line that explains the flags and the queue column, longest
/// first: the renderer shows the first that fits.
pub const LEGENDS: [&str; 4] = [
    "flags: D/d we download (unchoked/choked)  U/u we upload (unchoked/choked)  \
     K unchoked, not interested  ? unchoked us, not interested  S snubbed  O optimistic  \
     queue: our requests/theirs",
    "flags: D/d download, U/u upload (unchoked/choked)  K/? uninterested  S snubbed  O optimistic",
    "flags: D/d download U/u upload K ? S snubbed O optimistic",
    "D/d down U/u up K ? S snub O optimistic",
];

/// The narrowest the client column gets before columns are dropped.
const CLIENT_MIN_COLS: usize = 8;

/// The lines of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The column titles.
    pub header: String,
    /// One line per shown peer (or one line saying there are none).
    pub rows: Vec<String>,
    /// `... and N more` when not every peer fits.
    pub more: Option<String>,
}

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// One column: its title, alignment, widest cell, and how long it is kept
/// when space runs out (0 = always).
struct Column {
    title: &'static str,
    align: Align,
    max_cols: usize,
    drop_rank: u8,
    cell: fn(&PeerRow) -> String,
}

/// The columns in display order.
const COLUMNS: [Column; 9] = [
    Column {
        title: "address",
        align: Align::Left,
        max_cols: 47,
        drop_rank: 0,
        cell: |p| p.addr.to_string(),
    },
    Column {
        title: "client",
        align: Align::Left,
        max_cols: 28,
        drop_rank: 2,
        cell: |p| {
            p.peer_id
                .map_or_else(|| "-".to_string(), |id| client_name(&id))
        },
    },
    Column {
        title: "flags",
        align: Align::Left,
        max_cols: 5,
        drop_rank: 3,
        cell: flags,
    },
    Column {
        title: "downloaded",
        align: Align::Right,
        max_cols: 12,
        drop_rank: 5,
        cell: |p| format_bytes(p.downloaded_bytes),
    },
    Column {
        title: "uploaded",
        align: Align::Right,
        max_cols: 12,
        drop_rank: 6,
        cell: |p| format_bytes(p.uploaded_bytes),
    },
    Column {
        title: "down/s",
        align: Align::Right,
        max_cols: 12,
        drop_rank: 1,
        cell: |p| format_bytes(p.down_rate),
    },
    Column {
        title: "up/s",
        align: Align::Right,
        max_cols: 12,
        drop_rank: 4,
        cell: |p| format_bytes(p.up_rate),
    },
    Column {
        title: "infl",
        align: Align::Right,
        max_cols: 10,
        drop_rank: 8,
        cell: |p| p.pieces_in_flight.to_string(),
    },
    Column {
        title: "queue",
        align: Align::Right,
        max_cols: 21,
        drop_rank: 7,
        cell: |p| format!("{}/{}", p.requests_to_peer, p.requests_from_peer),
    },
];

/// The peer's flags (see the table in the module doc), e.g. `DU` or `dKS`.
pub fn flags(p: &PeerRow) -> String {
    let mut out = String::new();
    match (p.am_interested, p.peer_choking) {
        (true, false) => out.push('D'),
        (true, true) => out.push('d'),
        (false, false) => out.push('?'),
        (false, true) => {}
    }
    match (p.peer_interested, p.am_choking) {
        (true, false) => out.push('U'),
        (true, true) => out.push('u'),
        (false, false) => out.push('K'),
        (false, true) => {}
    }
    if p.snubbed {
        out.push('S');
    }
    if p.optimistic {
        out.push('O');
    }
    out
}

/// The peers, fastest download first, then fastest upload, then by address.
pub fn sorted(peers: &[PeerRow]) -> Vec<&PeerRow> {
    let mut order: Vec<&PeerRow> = peers.iter().collect();
    order.sort_by_key(|p| (Reverse(p.down_rate), Reverse(p.up_rate), p.addr));
    order
}

/// The table for `peers` in `width` columns and `rows` lines below the
/// header (the last of them says `... and N more` if not all fit).
pub fn table(peers: &[PeerRow], width: usize, rows: usize) -> Table {
    let (shown, more) = if peers.len() <= rows {
        (peers.len(), None)
    } else {
        let shown = rows.saturating_sub(1);
        (shown, Some(format!("... and {} more", peers.len() - shown)))
    };
    let cells: Vec<Vec<String>> = sorted(peers)
        .into_iter()
        .take(shown)
        .map(|p| {
            COLUMNS
                .iter()
                .map(|column| clean(&(column.cell)(p), column.max_cols))
                .collect()
        })
        .collect();
    let widths = fit_columns(&cells, width);
    let header_cells: Vec<String> = COLUMNS.iter().map(|c| c.title.to_string()).collect();
    let mut lines: Vec<String> = cells.iter().map(|row| join(row, &widths)).collect();
    if peers.is_empty() && rows > 0 {
        lines.push("(no connected peers)".to_string());
    }
    Table {
        header: join(&header_cells, &widths),
        rows: lines,
        more,
    }
}

/// Each column's width (`None` if dropped) so a row fits in `width`.
fn fit_columns(cells: &[Vec<String>], width: usize) -> Vec<Option<usize>> {
    let mut widths: Vec<Option<usize>> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let widest = cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| columns(cell))
                .max()
                .unwrap_or(0);
            Some(widest.max(column.title.len()))
        })
        .collect();
    loop {
        let shown: Vec<usize> = widths.iter().flatten().copied().collect();
        let total = shown.iter().sum::<usize>() + shown.len().saturating_sub(1);
        if total <= width || shown.len() <= 1 {
            return widths;
        }
        if let Some(Some(client)) = widths.get_mut(1) {
            if *client > CLIENT_MIN_COLS {
                *client = client.saturating_sub(total - width).max(CLIENT_MIN_COLS);
                continue;
            }
        }
        drop_least_useful(&mut widths);
    }
}

/// Drops the shown column with the highest drop rank.
fn drop_least_useful(widths: &mut [Option<usize>]) {
    let victim = COLUMNS
        .iter()
        .enumerate()
        .filter(|(i, _)| widths.get(*i).is_some_and(Option::is_some))
        .max_by_key(|(_, column)| column.drop_rank)
        .map(|(i, _)| i);
    if let Some(slot) = victim.and_then(|i| widths.get_mut(i)) {
        *slot = None;
    }
}

/// One line: the shown cells padded to their widths, one space apart.
fn join(cells: &[String], widths: &[Option<usize>]) -> String {
    let mut parts = Vec::new();
    for ((cell, width), column) in cells.iter().zip(widths).zip(&COLUMNS) {
        let Some(width) = *width else { continue };
        parts.push(match column.align {
            Align::Left => pad_right(cell, width),
            Align::Right => pad_left(cell, width),
        });
    }
    parts.join(" ").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn peer(last_octet: u8, down_rate: u64, up_rate: u64) -> PeerRow {
        let mut p = PeerRow::new(SocketAddr::from((
            Ipv4Addr::new(10, 0, 0, last_octet),
            6881,
        )));
        p.down_rate = down_rate;
        p.up_rate = up_rate;
        p
    }

    #[test]
    fn flags_table() {
        // (am_choking, am_interested, peer_choking, peer_interested, snubbed, optimistic)
        let cases = [
            ((true, false, true, false, false, false), ""),
            ((true, true, false, false, false, false), "D"),
            ((true, true, true, false, false, false), "d"),
            ((true, false, false, false, false, false), "?"),
            ((false, false, true, true, false, false), "U"),
            ((true, false, true, true, false, false), "u"),
            ((false, false, true, false, false, false), "K"),
            ((false, true, false, true, false, false), "DU"),
            ((false, true, false, true, true, true), "DUSO"),
            ((true, true, true, true, true, false), "duS"),
        ];
        for (
            (am_choking, am_interested, peer_choking, peer_interested, snubbed, optimistic),
            want,
        ) in cases
        {
            let mut p = peer(1, 0, 0);
            p.am_choking = am_choking;
            p.am_interested = am_interested;
            p.peer_choking = peer_choking;
            p.peer_interested = peer_interested;
            p.snubbed = snubbed;
            p.optimistic = optimistic;
            assert_eq!(flags(&p), want);
        }
    }

    #[test]
    fn sorted_by_download_then_upload_then_address() {
        let peers = [peer(1, 5, 0), peer(2, 9, 1), peer(3, 5, 7), peer(4, 9, 1)];
        let order: Vec<u8> = sorted(&peers)
            .iter()
            .map(|p| match p.addr.ip() {
                std::net::IpAddr::V4(ip) => ip.octets()[3],
                std::net::IpAddr::V6(_) => 0,
            })
            .collect();
        assert_eq!(order, vec![2, 4, 3, 1]);
    }

    #[test]
    fn table_truncates_with_a_count_of_the_rest() {
        let peers: Vec<PeerRow> = (0..10).map(|i| peer(i, u64::from(i), 0)).collect();
        let t = table(&peers, 200, 4);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.more.as_deref(), Some("... and 7 more"));
        assert!(t.rows[0].starts_with("10.0.0.9:6881"));
        let all = table(&peers, 200, 10);
        assert_eq!((all.rows.len(), all.more), (10, None));
    }

    #[test]
    fn narrow_tables_drop_columns_but_keep_address_and_rate() {
        let peers = vec![peer(1, 1 << 20, 0)];
        for width in [0usize, 10, 25, 30, 40, 60, 80, 120] {
            let t = table(&peers, width, 5);
            for line in std::iter::once(&t.header).chain(&t.rows) {
                assert!(
                    columns(line) <= width.max(columns("10.0.0.1:6881")),
                    "{width}: {line:?}"
                );
            }
            assert!(t.rows[0].starts_with("10.0.0.1:6881"));
            if width >= 30 {
                assert!(t.rows[0].contains("1.0 MiB"), "{width}: {:?}", t.rows[0]);
            }
        }
        let wide = table(&peers, 120, 5);
        for title in [
            "client",
            "flags",
            "downloaded",
            "uploaded",
            "up/s",
            "infl",
            "queue",
        ] {
            assert!(wide.header.contains(title), "{title}");
        }
    }

    #[test]
    fn no_peers_says_so() {
        let t = table(&[], 80, 3);
        assert_eq!(t.rows, vec!["(no connected peers)".to_string()]);
        assert_eq!(t.more, None);
    }
}
