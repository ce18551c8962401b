//! Which bytes of which files a run of blocks covers: what a web seed is
//! asked for (BEP 19 serves files, not pieces).
//!
//! Layer 0: pure arithmetic over the torrent's file list. A torrent is one
//! byte stream cut into pieces; a run of blocks (a whole piece, or several
//! pieces back to back) is a range of that stream, which may cross file
//! boundaries. Each file it touches becomes one HTTP range request. BEP 47
//! padding files are zeros that no server holds: their part of the range
//! is marked [`FileRange::padding`] and filled in locally, never fetched.
//! Empty files and symlinks hold no bytes and never appear.

use crate::metainfo::Metainfo;

/// Where one file lies in the torrent's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileExtent {
    /// Offset of its first byte in the torrent.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// A BEP 47 padding file: zeros, never fetched.
    pub padding: bool,
}

/// The extents of `meta`'s files, in torrent order (one per file, so the
/// index is the file index).
pub fn extents(meta: &Metainfo) -> Vec<FileExtent> {
    meta.files
        .iter()
        .map(|f| FileExtent {
            offset: f.offset,
            len: if f.symlink { 0 } else { f.len },
            padding: f.padding,
        })
        .collect()
}

/// One file's share of a range of the torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// Index of the file in the torrent's file list.
    pub file: usize,
    /// Offset of the first byte inside the file.
    pub first: u64,
    /// Bytes (at least 1).
    pub len: u64,
    /// A padding file: zeros, filled in locally.
    pub padding: bool,
}

impl FileRange {
    /// Offset of the last byte inside the file (for `Range: bytes=a-b`).
    pub fn last(&self) -> u64 {
        self.first.saturating_add(self.len.saturating_sub(1))
    }
}

/// The file ranges covering `len` bytes of the torrent from `start`, in
/// order. Bytes past the last file are left out (the caller asks only for
/// blocks it checked against the layout).
pub fn file_ranges(files: &[FileExtent], start: u64, len: u64) -> Vec<FileRange> {
    let end = start.saturating_add(len);
    // The first file that ends after `start`.
    let first = files.partition_point(|f| f.offset.saturating_add(f.len) <= start);
    let mut ranges = Vec::new();
    let mut pos = start;
    for (index, file) in files.iter().enumerate().skip(first) {
        if pos >= end {
            break;
        }
        let file_end = file.offset.saturating_add(file.len);
        if file.len == 0 || file_end <= pos || file.offset > pos {
            continue;
        }
        let run_end = file_end.min(end);
        ranges.push(FileRange {
            file: index,
            first: pos - file.offset,
            len: run_end - pos,
            padding: file.padding,
        });
        pos = run_end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lens: &[(u64, bool)]) -> Vec<FileExtent> {
        let mut offset = 0;
        lens.iter()
            .map(|&(len, padding)| {
                let e = FileExtent {
                    offset,
                    len,
                    padding,
                };
                offset += len;
                e
            })
            .collect()
    }

    fn range(file: usize, first: u64, len: u64, padding: bool) -> FileRange {
        FileRange {
            file,
            first,
            len,
            padding,
        }
    }

    #[test]
    fn a_range_inside_one_file_is_one_request() {
        let files = layout(&[(100, false), (50, false)]);
        assert_eq!(file_ranges(&files, 10, 20), vec![range(0, 10, 20, false)]);
        assert_eq!(file_ranges(&files, 100, 50), vec![range(1, 0, 50, false)]);
        assert_eq!(range(1, 0, 50, false).last(), 49);
    }

    #[test]
    fn a_range_across_file_boundaries_is_split_per_file() {
        let files = layout(&[(100, false), (0, false), (30, false), (70, false)]);
        assert_eq!(
            file_ranges(&files, 90, 60),
            vec![
                range(0, 90, 10, false),
                range(2, 0, 30, false),
                range(3, 0, 20, false)
            ]
        );
    }

    #[test]
    fn padding_files_are_marked_and_empty_files_skipped() {
        let files = layout(&[(10, false), (6, true), (0, false), (16, false)]);
        assert_eq!(
            file_ranges(&files, 0, 32),
            vec![
                range(0, 0, 10, false),
                range(1, 0, 6, true),
                range(3, 0, 16, false)
            ]
        );
    }

    #[test]
    fn bytes_past_the_end_are_left_out() {
        let files = layout(&[(10, false)]);
        assert_eq!(file_ranges(&files, 5, 100), vec![range(0, 5, 5, false)]);
        assert!(file_ranges(&files, 10, 5).is_empty());
        assert!(file_ranges(&files, u64::MAX, u64::MAX).is_empty());
        assert!(file_ranges(&[], 0, 5).is_empty());
    }
}
