//! The piece map: every piece of the torrent drawn in a few rows of
//! characters, one cell per piece or, for big torrents, one cell per run of
//! neighbouring pieces.
//!
//! Layer 0: pure. Aggregation is one pass over the pieces, O(pieces) per
//! frame (a 1M-piece torrent draws in a few milliseconds). Cell `i` of
//! `count` covers pieces `i * n / count .. (i + 1) * n / count`, so every
//! piece belongs to exactly one cell and cells differ in size by at most one.
//!
//! | char | cell |
//! | --- | --- |
//! | `#` | every piece done |
//! | `+` | some piece in flight |
//! | `=` | partly done, nothing in flight |
//! | `.` | nothing done, availability unknown |
//! | `0`-`9` | nothing done: how many peers have its rarest piece (9 = nine or more) |

use super::snapshot::PieceState;

/// What one cell of the map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Every piece of the cell is done.
    Done,
    /// Some pieces are done, none in flight.
    Partial,
    /// Some piece is being downloaded.
    InFlight,
    /// No piece done or in flight; `sources` is the least number of peers
    /// that have one of its pieces (`None` when availability is unknown).
    Missing {
        /// Copies of the cell's rarest piece among connected peers.
        sources: Option<u32>,
    },
}

impl Cell {
    /// The character drawn for this cell (see the table in the module doc).
    pub fn symbol(self) -> char {
        match self {
            Cell::Done => '#',
            Cell::Partial => '=',
            Cell::InFlight => '+',
            Cell::Missing { sources: None } => '.',
            Cell::Missing {
                sources: Some(count),
            } => char::from_digit(count.min(9), 10).unwrap_or('9'),
        }
    }
}

/// How many cells and rows to draw `pieces` pieces in, `width` cells a row
/// and at most `max_rows` rows: one cell per piece if they fit, otherwise
/// every cell of `max_rows` full rows. `(0, 0)` when there is nothing to draw.
pub fn shape(pieces: usize, width: usize, max_rows: usize) -> (usize, usize) {
    if pieces == 0 || width == 0 || max_rows == 0 {
        return (0, 0);
    }
    let cells = pieces.min(width.saturating_mul(max_rows));
    (cells, cells.div_ceil(width))
}

/// The first piece of cell `i` out of `count` cells over `pieces` pieces.
fn bound(i: usize, count: usize, pieces: usize) -> usize {
    let scaled = i as u128 * pieces as u128 / count.max(1) as u128;
    usize::try_from(scaled).unwrap_or(pieces)
}

/// Aggregates `pieces` into `count` cells (fewer if there are fewer
/// pieces). `availability` is used only if it has one entry per piece.
pub fn cells(pieces: &[PieceState], availability: &[u32], count: usize) -> Vec<Cell> {
    let count = count.min(pieces.len());
    let known = availability.len() == pieces.len();
    (0..count)
        .map(|i| {
            let range = bound(i, count, pieces.len())..bound(i + 1, count, pieces.len());
            let sources = if known {
                availability.get(range.clone())
            } else {
                None
            };
            classify(pieces.get(range).unwrap_or_default(), sources)
        })
        .collect()
}

/// The cell for one run of pieces and, if known, their availability.
fn classify(run: &[PieceState], sources: Option<&[u32]>) -> Cell {
    let mut done = 0;
    for state in run {
        match state {
            PieceState::Done => done += 1,
            PieceState::InFlight => return Cell::InFlight,
            PieceState::Missing => {}
        }
    }
    if done == run.len() {
        return Cell::Done;
    }
    if done > 0 {
        return Cell::Partial;
    }
    Cell::Missing {
        sources: sources.map(|counts| counts.iter().copied().min().unwrap_or(0)),
    }
}

/// The map's rows: `cells` cut into rows of `width` characters.
pub fn rows(cells: &[Cell], width: usize) -> Vec<String> {
    cells
        .chunks(width.max(1))
        .map(|row| row.iter().map(|cell| cell.symbol()).collect())
        .collect()
}

/// The legend line above the map, e.g.
/// `pieces 2400, ~4 per cell: # done  = part done  + in flight  . missing`,
/// or a shorter form when that is wider than `cols` (the shortest,
/// `#done =part +flight .missing`, drops the counts).
pub fn legend(pieces: usize, cells: usize, availability_known: bool, cols: usize) -> String {
    let per_cell = match pieces.checked_div(cells) {
        Some(per_cell) if pieces > cells => Some(per_cell),
        _ => None,
    };
    let missing = if availability_known {
        "0-9 missing (peers that have it)"
    } else {
        ". missing"
    };
    let scale = per_cell.map_or_else(String::new, |n| format!(", ~{n} per cell"));
    let long = format!("pieces {pieces}{scale}: # done  = part done  + in flight  {missing}");
    if long.len() <= cols {
        return long;
    }
    let missing = if availability_known {
        "0-9 peers"
    } else {
        ".missing"
    };
    let short = format!("#done =part +flight {missing}");
    let scale = per_cell.map_or_else(String::new, |n| format!(" ~{n}/cell"));
    let medium = format!("pieces {pieces}{scale}: {short}");
    if medium.len() <= cols {
        medium
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PieceState::{Done, InFlight, Missing};

    fn map(pieces: &[PieceState], availability: &[u32], count: usize) -> String {
        cells(pieces, availability, count)
            .iter()
            .map(|c| c.symbol())
            .collect()
    }

    #[test]
    fn one_cell_per_piece_when_they_fit() {
        let pieces = [Done, InFlight, Missing, Done];
        assert_eq!(map(&pieces, &[], 10), "#+.#");
        assert_eq!(map(&pieces, &[3, 2, 0, 1], 4), "#+0#");
        assert_eq!(map(&pieces, &[3, 2, 12, 1], 4), "#+9#");
    }

    #[test]
    fn aggregated_cells_show_the_most_telling_state() {
        let cases: &[(&[PieceState], &[u32], &str)] = &[
            (&[Done, Done, Done, Done], &[], "##"),
            (&[Done, Missing, Missing, Missing], &[], "=."),
            (&[Done, InFlight, Missing, Missing], &[], "+."),
            (&[Missing, Missing, Missing, Missing], &[4, 2, 7, 5], "25"),
            (&[Missing, Missing, Missing, Missing], &[4, 2], ".."),
        ];
        for (pieces, availability, expected) in cases {
            assert_eq!(map(pieces, availability, 2), *expected, "{pieces:?}");
        }
    }

    #[test]
    fn cells_cover_every_piece_once() {
        for n in [1usize, 2, 7, 100, 1001] {
            for count in [1usize, 3, 7, 64, 1000] {
                let count = count.min(n);
                let mut covered = 0;
                for i in 0..count {
                    let (a, b) = (bound(i, count, n), bound(i + 1, count, n));
                    assert_eq!(a, covered);
                    assert!(b > a, "empty cell {i} of {count} over {n}");
                    covered = b;
                }
                assert_eq!(covered, n);
            }
        }
    }

    #[test]
    fn shape_fills_rows_only_as_needed() {
        let cases = [
            ((0, 80, 5), (0, 0)),
            ((10, 0, 5), (0, 0)),
            ((10, 80, 0), (0, 0)),
            ((10, 80, 5), (10, 1)),
            ((100, 80, 5), (100, 2)),
            ((1_000_000, 80, 5), (400, 5)),
            ((usize::MAX, usize::MAX, 3), (usize::MAX, 1)),
        ];
        for ((pieces, width, rows), expected) in cases {
            assert_eq!(shape(pieces, width, rows), expected);
        }
    }

    #[test]
    fn half_done_draws_the_first_half_as_done() {
        let mut pieces = vec![Done; 500_000];
        pieces.extend(vec![Missing; 500_000]);
        let drawn = map(&pieces, &[], 200);
        assert_eq!(drawn, format!("{}{}", "#".repeat(100), ".".repeat(100)));
    }

    #[test]
    fn rows_and_legend() {
        let cells = vec![Cell::Done; 5];
        assert_eq!(rows(&cells, 2), vec!["##", "##", "#"]);
        let cases = [
            (
                (10, 10, false, 80),
                "pieces 10: # done  = part done  + in flight  . missing",
            ),
            (
                (1000, 100, true, 100),
                "pieces 1000, ~10 per cell: # done  = part done  + in flight  0-9 missing (peers that have it)",
            ),
            (
                (1000, 100, true, 60),
                "pieces 1000 ~10/cell: #done =part +flight 0-9 peers",
            ),
            ((1000, 100, true, 39), "#done =part +flight 0-9 peers"),
            ((10, 10, false, 39), "pieces 10: #done =part +flight .missing"),
        ];
        for ((pieces, cells, known, cols), expected) in cases {
            assert_eq!(legend(pieces, cells, known, cols), expected);
        }
    }
}
