//! Piece and block arithmetic: where each piece and block of a torrent lies in
//! its files.
//!
//! Layer 0: pure. BEP 3 treats a torrent's files as one byte stream cut into
//! pieces of `piece length` bytes (the last piece may be short); a piece may
//! span several files, and a file several pieces. Requests move in blocks of
//! 16 KiB within a piece (the last block of the last piece may be short).
//!
//! Indices from the wire are checked once here, into [`PieceIndex`] and
//! [`Block`], so later code can trust them. All arithmetic is checked or
//! bounded by values validated at construction.

use std::fmt;

/// The request unit: 16 KiB, what every client asks for and serves
/// (BEP 3 suggests it; larger requests are refused by most clients).
pub const BLOCK_LEN: u32 = 16 * 1024;

/// A piece index known to be inside the torrent. Only [`Layout::piece`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// The index as a number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing per-piece tables.
    pub fn as_usize(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit targets pollen supports.
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A byte range inside one piece, known to be inside the torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// The piece it belongs to.
    pub piece: PieceIndex,
    /// Offset of the first byte within the piece.
    pub begin: u32,
    /// Length in bytes (1 to [`BLOCK_LEN`] for wire blocks).
    pub len: u32,
}

/// One contiguous run of bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    /// Index of the file in the torrent's file list.
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Offset of this run inside the caller's buffer (from the start of the
    /// requested range).
    pub buf_offset: usize,
    /// Length of the run.
    pub len: usize,
}

/// Why a set of sizes cannot form a torrent layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// The piece length is zero.
    ZeroPieceLength,
    /// The files hold no bytes at all.
    ZeroTotalLength,
    /// The file sizes add up past `u64::MAX`.
    TotalOverflow,
    /// More pieces than a `u32` can count.
    TooManyPieces(u64),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::ZeroPieceLength => write!(f, "piece length is zero"),
            LayoutError::ZeroTotalLength => write!(f, "total length is zero"),
            LayoutError::TotalOverflow => write!(f, "file lengths add up past 2^64 bytes"),
            LayoutError::TooManyPieces(n) => write!(f, "{n} pieces is too many"),
        }
    }
}

/// The shape of a torrent: piece length, total length and the file boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    piece_len: u32,
    total_len: u64,
    piece_count: u32,
    /// Offset of each file's first byte in the torrent's byte stream.
    file_offsets: Vec<u64>,
    /// Length of each file.
    file_lens: Vec<u64>,
}

impl Layout {
    /// Builds the layout of files with the given lengths, in torrent order.
    pub fn new(piece_len: u32, file_lens: &[u64]) -> Result<Layout, LayoutError> {
        if piece_len == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        let mut file_offsets = Vec::with_capacity(file_lens.len());
        let mut total_len: u64 = 0;
        for &len in file_lens {
            file_offsets.push(total_len);
            total_len = total_len
                .checked_add(len)
                .ok_or(LayoutError::TotalOverflow)?;
        }
        if total_len == 0 {
            return Err(LayoutError::ZeroTotalLength);
        }
        let pieces = total_len.div_ceil(u64::from(piece_len));
        let piece_count = u32::try_from(pieces).map_err(|_| LayoutError::TooManyPieces(pieces))?;
        Ok(Layout {
            piece_len,
            total_len,
            piece_count,
            file_offsets,
            file_lens: file_lens.to_vec(),
        })
    }

    /// The layout of a torrent whose metadata is not known yet (a magnet
    /// link): no files, no pieces. Never the layout of a real torrent,
    /// which [`Layout::new`] refuses to make empty.
    pub fn empty() -> Layout {
        Layout {
            piece_len: super::BLOCK_LEN,
            total_len: 0,
            piece_count: 0,
            file_offsets: Vec::new(),
            file_lens: Vec::new(),
        }
    }

    /// The nominal piece length (every piece but possibly the last).
    pub fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Bytes in the whole torrent.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Number of files (including empty ones).
    pub fn file_count(&self) -> usize {
        self.file_lens.len()
    }

    /// Length of file `file`, or 0 when out of range.
    pub fn file_len(&self, file: usize) -> u64 {
        self.file_lens.get(file).copied().unwrap_or(0)
    }

    /// Offset of file `file`'s first byte in the torrent, or 0 when out of range.
    pub fn file_offset(&self, file: usize) -> u64 {
        self.file_offsets.get(file).copied().unwrap_or(0)
    }

    /// Checks a piece index from outside (wire, resume file).
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// Every piece index, in order.
    pub fn pieces(&self) -> impl DoubleEndedIterator<Item = PieceIndex> + ExactSizeIterator {
        (0..self.piece_count).map(PieceIndex)
    }

    /// Offset of the piece's first byte in the torrent.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_len)
    }

    /// Length of the piece: the nominal length, or less for the last piece.
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let left = self.total_len - self.piece_offset(piece);
        // left > 0 for every valid piece; min() keeps it within u32.
        u32::try_from(left.min(u64::from(self.piece_len))).unwrap_or(self.piece_len)
    }

    /// Number of blocks in the piece.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_LEN)
    }

    /// The `n`th block of a piece (the last one may be short).
    pub fn block(&self, piece: PieceIndex, n: u32) -> Option<Block> {
        let begin = n.checked_mul(BLOCK_LEN)?;
        let size = self.piece_size(piece);
        (begin < size).then(|| Block {
            piece,
            begin,
            len: (size - begin).min(BLOCK_LEN),
        })
    }

    /// Every block of a piece, in order.
    pub fn blocks(&self, piece: PieceIndex) -> impl Iterator<Item = Block> + '_ {
        (0..self.block_count(piece)).filter_map(move |n| self.block(piece, n))
    }

    /// Checks a block range from the wire (REQUEST, PIECE, CANCEL): the piece
    /// exists, the range is non-empty, at most `max_len` long and inside the piece.
    pub fn check_block(&self, piece: u32, begin: u32, len: u32, max_len: u32) -> Option<Block> {
        let piece = self.piece(piece)?;
        let end = begin.checked_add(len)?;
        (len > 0 && len <= max_len && end <= self.piece_size(piece)).then_some(Block {
            piece,
            begin,
            len,
        })
    }

    /// The file runs that hold `len` bytes starting `begin` bytes into
    /// `piece`, in order. Empty files are skipped (they hold no bytes). The
    /// range is clipped to the torrent's end.
    pub fn spans(&self, piece: PieceIndex, begin: u32, len: u32) -> Vec<FileSpan> {
        let start = self.piece_offset(piece) + u64::from(begin);
        let end = (start + u64::from(len)).min(self.total_len);
        // The last file whose first byte is at or before `start`.
        let first = self
            .file_offsets
            .partition_point(|&offset| offset <= start)
            .saturating_sub(1);
        let mut spans = Vec::new();
        let mut pos = start;
        for file in first..self.file_lens.len() {
            if pos >= end {
                break;
            }
            let file_start = self.file_offset(file);
            let file_end = file_start + self.file_len(file);
            if file_end <= pos {
                continue; // empty file, or one that ends before the range
            }
            let run_end = file_end.min(end);
            spans.push(FileSpan {
                file,
                file_offset: pos - file_start,
                buf_offset: usize::try_from(pos - start).unwrap_or(usize::MAX),
                len: usize::try_from(run_end - pos).unwrap_or(usize::MAX),
            });
            pos = run_end;
        }
        spans
    }

    /// The file runs of a whole piece.
    pub fn piece_spans(&self, piece: PieceIndex) -> Vec<FileSpan> {
        self.spans(piece, 0, self.piece_size(piece))
    }

    /// The pieces that hold any byte of file `file` (empty for an empty file).
    pub fn pieces_of_file(&self, file: usize) -> std::ops::Range<u32> {
        let len = self.file_len(file);
        if len == 0 {
            return 0..0;
        }
        let start = self.file_offset(file);
        let piece_len = u64::from(self.piece_len);
        let first = start / piece_len;
        let last = (start + len - 1) / piece_len;
        // Both are below piece_count, which fits in u32.
        let first = u32::try_from(first).unwrap_or(self.piece_count);
        let last = u32::try_from(last).unwrap_or(self.piece_count);
        first..last.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files of 10,000 / 0 / 40,000 / 5 / 0 / 70,000 bytes with 16 KiB
    /// pieces: 120,005 bytes, 8 pieces, the last one 5,317 bytes.
    fn straddling() -> Layout {
        Layout::new(16384, &[10_000, 0, 40_000, 5, 0, 70_000]).unwrap()
    }

    #[test]
    fn piece_count_and_short_last_piece() {
        let layout = straddling();
        assert_eq!(layout.total_len(), 120_005);
        assert_eq!(layout.piece_count(), 8);
        let last = layout.piece(7).unwrap();
        assert_eq!(layout.piece_size(last), 120_005 - 7 * 16384);
        assert_eq!(layout.piece_size(layout.piece(0).unwrap()), 16384);
        assert_eq!(layout.piece(8), None);
    }

    #[test]
    fn exact_multiple_has_no_short_piece() {
        let layout = Layout::new(16384, &[32768]).unwrap();
        assert_eq!(layout.piece_count(), 2);
        assert_eq!(layout.piece_size(layout.piece(1).unwrap()), 16384);
    }

    #[test]
    fn pieces_straddling_files_map_to_each_file_in_order() {
        let layout = straddling();
        // Piece 0: bytes 0..16384 = file 0 (10,000), then file 2 (6,384); file 1 is empty.
        let spans = layout.piece_spans(layout.piece(0).unwrap());
        assert_eq!(
            spans,
            vec![
                FileSpan {
                    file: 0,
                    file_offset: 0,
                    buf_offset: 0,
                    len: 10_000
                },
                FileSpan {
                    file: 2,
                    file_offset: 0,
                    buf_offset: 10_000,
                    len: 6_384
                },
            ]
        );
        // Piece 3: bytes 49152..65536 = rest of file 2 (848), file 3 (5), file 5 (15,531).
        let spans = layout.piece_spans(layout.piece(3).unwrap());
        let summary: Vec<_> = spans
            .iter()
            .map(|s| (s.file, s.file_offset, s.buf_offset, s.len))
            .collect();
        assert_eq!(
            summary,
            vec![(2, 39_152, 0, 848), (3, 0, 848, 5), (5, 0, 853, 15_531)]
        );
    }

    #[test]
    fn spans_of_every_piece_cover_every_byte_once() {
        let layout = straddling();
        let mut per_file = [0u64; 6];
        for piece in layout.pieces() {
            let spans = layout.piece_spans(piece);
            let covered: usize = spans.iter().map(|s| s.len).sum();
            assert_eq!(covered, layout.piece_size(piece) as usize);
            for span in spans {
                assert!(span.len > 0);
                per_file[span.file] += span.len as u64;
            }
        }
        assert_eq!(per_file, [10_000, 0, 40_000, 5, 0, 70_000]);
    }

    #[test]
    fn block_spans_inside_a_piece() {
        let layout = straddling();
        let piece = layout.piece(0).unwrap();
        let spans = layout.spans(piece, 9_000, 2_000);
        let summary: Vec<_> = spans
            .iter()
            .map(|s| (s.file, s.file_offset, s.buf_offset, s.len))
            .collect();
        assert_eq!(summary, vec![(0, 9_000, 0, 1_000), (2, 0, 1_000, 1_000)]);
    }

    #[test]
    fn blocks_are_16k_with_a_short_last_block() {
        let layout = Layout::new(65536, &[65536 + 20_000]).unwrap();
        let last = layout.piece(1).unwrap();
        assert_eq!(layout.block_count(last), 2);
        let blocks: Vec<_> = layout.blocks(last).map(|b| (b.begin, b.len)).collect();
        assert_eq!(blocks, vec![(0, 16384), (16384, 20_000 - 16384)]);
        assert_eq!(layout.block(last, 2), None);
        assert_eq!(layout.block_count(layout.piece(0).unwrap()), 4);
    }

    #[test]
    fn check_block_refuses_ranges_outside_the_piece() {
        let layout = straddling();
        assert!(layout.check_block(0, 0, 16384, BLOCK_LEN).is_some());
        assert!(layout.check_block(0, 16384, 1, BLOCK_LEN).is_none());
        assert!(layout.check_block(0, 0, 0, BLOCK_LEN).is_none());
        assert!(layout.check_block(0, 0, 16385, 1 << 20).is_none());
        assert!(layout.check_block(8, 0, 1, BLOCK_LEN).is_none());
        assert!(layout.check_block(7, 5_000, 317, BLOCK_LEN).is_some());
        assert!(layout.check_block(7, 5_000, 318, BLOCK_LEN).is_none());
        assert!(layout.check_block(0, u32::MAX, 2, BLOCK_LEN).is_none());
        assert!(layout.check_block(0, 0, 16384, 8192).is_none());
    }

    #[test]
    fn pieces_of_each_file() {
        let layout = straddling();
        assert_eq!(layout.pieces_of_file(0), 0..1);
        assert_eq!(layout.pieces_of_file(1), 0..0);
        assert_eq!(layout.pieces_of_file(2), 0..4);
        assert_eq!(layout.pieces_of_file(3), 3..4);
        assert_eq!(layout.pieces_of_file(5), 3..8);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(Layout::new(0, &[1]), Err(LayoutError::ZeroPieceLength));
        assert_eq!(Layout::new(1, &[0, 0]), Err(LayoutError::ZeroTotalLength));
        assert_eq!(Layout::new(1, &[]), Err(LayoutError::ZeroTotalLength));
        assert_eq!(
            Layout::new(1, &[u64::MAX, 1]),
            Err(LayoutError::TotalOverflow)
        );
        assert!(matches!(
            Layout::new(1, &[1 << 40]),
            Err(LayoutError::TooManyPieces(_))
        ));
    }
}
