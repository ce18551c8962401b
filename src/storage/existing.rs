//! Files already on disk where a torrent's files go: which of them pollen
//! may write into, and how much room the rest of the download needs.
//!
//! Layer 1: `stat`, `lseek(SEEK_DATA)` and `statvfs` calls, no sockets, no
//! clock. The rules themselves ([`judge`], [`space_needed`]) are pure
//! functions, tested from tables.
//!
//! # Never lose a user's file
//!
//! pollen writes a torrent's file in place when something is already at
//! its final name (that is how a finished download is seeded, and how data
//! put there by hand or by another client is resumed). So before the first
//! write, each file found there ([`survey`]) is one of:
//!
//! - **pollen's own:** its size and times are those the torrent's resume
//!   state recorded, that state vouches for at least one of its pieces,
//!   and it is not longer than the torrent's file (pollen never makes one
//!   longer). A `.part` file is always pollen's and is not looked at here.
//!   A file refused once stays refused: none of its pieces was verified
//!   (or it is too long), so no saved state can make it pollen's. The
//!   price: a small finished file of pollen's whose pieces all lost their
//!   verification (its neighbours' `.part` files deleted by hand) before a
//!   save is judged like any other file, and may be refused.
//! - **nothing to lose:** empty, or all holes (a sparse or preallocated
//!   file with no data extent, as other clients and tests make). Used.
//! - **this torrent's data, whole or in part:** the start-up check verifies
//!   at least one of its pieces. Resumed in place, as before: the pieces
//!   that fail are fetched and written over.
//! - **something else:** none of its pieces verifies ([`Refusal::Foreign`]).
//!   pollen stops before writing anything to it, unless `--overwrite`
//!   ([`crate::session::Config::overwrite`]), which deletes it and downloads
//!   the file afresh.
//!
//! A file longer than the torrent's file is refused too unless every one of
//! its pieces verifies (then nothing is ever written to it and its tail is
//! left alone): writing the missing pieces and cutting it to length would
//! lose its tail ([`Refusal::Longer`]; `--overwrite` cuts it). A file whose
//! pieces all also span other files that are missing cannot be proven
//! either way (its pieces cannot be hashed): it is refused, the
//! conservative choice; `--overwrite` fetches it again.
//!
//! A directory, or anything but a regular file, where the torrent has a
//! file, and a file where the torrent needs a directory, are always
//! refused ([`Refusal::NotAFile`], [`Refusal::NotADirectory`]):
//! `--overwrite` never deletes a directory.
//!
//! The verdict comes from the start-up hash check, which reads but never
//! writes; no block is requested before it is over (and no file is
//! written), and each file is judged as soon as all its pieces are checked.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::metainfo::Metainfo;
use crate::resume::{FileStamp, ResumeState};

/// Bytes in one unit of `st_blocks` (POSIX fixes it at 512, whatever the
/// file system's block size).
const STAT_BLOCK_BYTES: u64 = 512;

/// A file already on disk at a torrent file's final name that pollen did
/// not make: the start-up check decides whether it is the torrent's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// The torrent file's index.
    pub file: usize,
    /// Its length on disk when pollen started.
    pub len_on_disk: u64,
}

/// What the start-up check's result makes of an [`Existing`] file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This torrent's data (some piece verifies), or nothing will ever be
    /// written to it: use it in place.
    Keep,
    /// None of its pieces verifies: not this torrent's.
    Foreign,
    /// Longer than the torrent's file and not every piece verifies.
    Longer,
}

/// Why pollen will not write a torrent's file: something is in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A file there matches none of the torrent's pieces.
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A file there is longer than the torrent's and not all of its
    /// pieces match.
    Longer {
        /// The file.
        path: PathBuf,
        /// Its length on disk.
        len_on_disk: u64,
        /// The torrent file's length.
        torrent_len: u64,
    },
    /// A directory (or a device, a socket...) is where the torrent has a file.
    NotAFile {
        /// Where the torrent's file goes.
        path: PathBuf,
        /// What is there instead: "a directory", "not a regular file".
        what: &'static str,
    },
    /// A file is where the torrent needs a directory.
    NotADirectory {
        /// The file in the way.
        path: PathBuf,
        /// The torrent's file that needs it to be a directory.
        needed_for: PathBuf,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Foreign { path } => write!(
                f,
                "refusing to overwrite {}: it exists and none of its pieces match this torrent \
                 (use --overwrite to replace it)",
                path.display()
            ),
            Refusal::Longer {
                path,
                len_on_disk,
                torrent_len,
            } => write!(
                f,
                "refusing to overwrite {}: it is {len_on_disk} bytes, longer than this torrent's \
                 file ({torrent_len} bytes), and not all of its pieces match \
                 (use --overwrite to cut it to length)",
                path.display()
            ),
            Refusal::NotAFile { path, what } => write!(
                f,
                "cannot write {}: it is {what}, where the torrent has a file (move it away)",
                path.display()
            ),
            Refusal::NotADirectory { path, needed_for } => write!(
                f,
                "cannot write {}: {} is a file, where the torrent needs a directory (move it away)",
                needed_for.display(),
                path.display()
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Looks at what is on disk at each of `meta`'s final paths under `dest`
/// before anything is written: the files the start-up check must judge
/// (non-empty regular files with data that are not pollen's own), or the
/// first thing in the way that no check can make usable.
///
/// `saved` is the torrent's resume state (if it has one) and `now` the
/// files' stamps now ([`crate::resume::stamp_files`]): a file whose stamp
/// is unchanged since pollen saved a state vouching for some of its pieces
/// is pollen's own. Blocks (a `stat` per file and parent directory, an
/// `lseek` per candidate).
pub fn survey(
    dest: &Path,
    meta: &Metainfo,
    saved: Option<&ResumeState>,
    now: &[FileStamp],
) -> Result<Vec<Existing>, Refusal> {
    let mut existing = Vec::new();
    for (index, file) in meta.files.iter().enumerate() {
        if !file.on_disk() {
            continue;
        }
        let path = dest.join(&file.path);
        check_parents(dest, &file.path, &path)?;
        let Ok(found) = fs::metadata(&path) else {
            continue; // nothing there (or nothing we can see): it will be created
        };
        if found.is_dir() {
            let what = "a directory";
            return Err(Refusal::NotAFile { path, what });
        }
        if !found.is_file() {
            let what = "not a regular file";
            return Err(Refusal::NotAFile { path, what });
        }
        let ours =
            found.len() <= file.len && saved.is_some_and(|state| is_ours(state, now, meta, index));
        if ours || found.len() == 0 || !has_data(&path) {
            continue;
        }
        existing.push(Existing {
            file: index,
            len_on_disk: found.len(),
        });
    }
    Ok(existing)
}

/// Whether the resume `state` shows file `index` as pollen left it: the
/// same stamp as `now`, and at least one of its pieces verified.
fn is_ours(state: &ResumeState, now: &[FileStamp], meta: &Metainfo, index: usize) -> bool {
    let same = state
        .files
        .get(index)
        .is_some_and(|s| s.len_on_disk.is_some() && Some(s) == now.get(index));
    same && meta.layout.pieces_of_file(index).any(|p| state.have.has(p))
}

/// Every directory between `dest` and the file at `path` (`rel` under
/// `dest`) must be a directory, or not exist yet.
fn check_parents(dest: &Path, rel: &Path, path: &Path) -> Result<(), Refusal> {
    let mut dir = dest.to_path_buf();
    let parents = rel.parent().into_iter().flat_map(Path::components);
    for part in parents {
        dir.push(part);
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(Refusal::NotADirectory {
                    path: dir,
                    needed_for: path.to_path_buf(),
                })
            }
            Err(_) => return Ok(()), // created on the first write
        }
    }
    Ok(())
}

/// Whether the file at `path` holds any data extent (`lseek(SEEK_DATA)`):
/// a file of holes (sparse, or preallocated and never written) reads as
/// zeros and holds nothing to lose. When the file system cannot say, the
/// answer is yes (the careful one).
fn has_data(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return true;
    };
    let found = rustix::fs::seek(&file, rustix::fs::SeekFrom::Data(0));
    !matches!(found, Err(e) if e == rustix::io::Errno::NXIO)
}

/// What to do with an [`Existing`] file of `len_on_disk` bytes at a torrent
/// file of `torrent_len` bytes with `pieces` pieces, `matched` of them
/// verified by the start-up check.
pub fn judge(torrent_len: u64, len_on_disk: u64, matched: u32, pieces: u32) -> Verdict {
    if pieces > 0 && matched >= pieces {
        return Verdict::Keep; // nothing will be written to it
    }
    if len_on_disk > torrent_len {
        return if matched == 0 && pieces > 0 {
            Verdict::Foreign
        } else {
            Verdict::Longer
        };
    }
    if matched == 0 {
        Verdict::Foreign
    } else {
        Verdict::Keep
    }
}

/// Bytes of a file of `len` bytes not yet allocated on disk, given the
/// `allocated` bytes its blocks hold (`st_blocks` × 512; more than `len`
/// when the file system allocates ahead).
pub fn unallocated(len: u64, allocated: u64) -> u64 {
    len.saturating_sub(allocated)
}

/// Bytes allocated on disk for the file at `path` (0 when it is missing).
pub fn allocated_bytes(path: &Path) -> u64 {
    fs::metadata(path)
        .map(|m| m.blocks().saturating_mul(STAT_BLOCK_BYTES))
        .unwrap_or(0)
}

/// The room a download still needs: what is not yet verified
/// (`missing_bytes`), except what is already allocated on disk
/// (`unallocated_bytes` are the files' holes and missing tails; a piece
/// written but not verified, or a foreign file overwritten in place, needs
/// no new room). The smaller of the two: a verified piece is always
/// allocated, and a file system that compresses may allocate less than
/// the data.
pub fn space_needed(missing_bytes: u64, unallocated_bytes: u64) -> u64 {
    missing_bytes.min(unallocated_bytes)
}

/// Bytes an unprivileged process may still write on the file system that
/// holds `dir` (`statvfs`: available blocks × fragment size).
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_keeps_partial_matches_and_refuses_files_with_none() {
        // (torrent len, on disk, matched, pieces) -> verdict
        let table = [
            (100, 100, 0, 4, Verdict::Foreign),
            (100, 100, 1, 4, Verdict::Keep),
            (100, 100, 4, 4, Verdict::Keep),
            (100, 40, 0, 4, Verdict::Foreign),
            (100, 40, 2, 4, Verdict::Keep),
            // Longer: only a complete match is left alone.
            (100, 150, 4, 4, Verdict::Keep),
            (100, 150, 3, 4, Verdict::Longer),
            (100, 150, 0, 4, Verdict::Foreign),
            // The torrent's file is empty: any content is extra.
            (0, 5, 0, 0, Verdict::Longer),
        ];
        for (torrent_len, on_disk, matched, pieces, want) in table {
            assert_eq!(
                judge(torrent_len, on_disk, matched, pieces),
                want,
                "{torrent_len} {on_disk} {matched}/{pieces}"
            );
        }
    }

    #[test]
    fn space_needed_is_what_is_missing_less_what_is_allocated() {
        assert_eq!(space_needed(1000, 400), 400);
        assert_eq!(space_needed(300, 1000), 300);
        assert_eq!(space_needed(0, 1000), 0);
        assert_eq!(unallocated(100, 30), 70);
        assert_eq!(unallocated(100, 4096), 0);
    }

    #[test]
    fn refusals_name_the_file_and_the_way_out() {
        let foreign = Refusal::Foreign {
            path: PathBuf::from("/dest/x.iso"),
        };
        assert_eq!(
            foreign.to_string(),
            "refusing to overwrite /dest/x.iso: it exists and none of its pieces match this \
             torrent (use --overwrite to replace it)"
        );
        let dir = Refusal::NotAFile {
            path: PathBuf::from("/dest/x.iso"),
            what: "a directory",
        };
        assert_eq!(
            dir.to_string(),
            "cannot write /dest/x.iso: it is a directory, where the torrent has a file (move it away)"
        );
        let blocked = Refusal::NotADirectory {
            path: PathBuf::from("/dest/d"),
            needed_for: PathBuf::from("/dest/d/a.bin"),
        };
        assert!(blocked.to_string().starts_with(
            "cannot write /dest/d/a.bin: /dest/d is a file, where the torrent needs a directory"
        ));
    }

    /// A torrent `d` of files `a` (40,000 bytes), `b` (100) and `c` (0)
    /// in 16 KiB pieces: `a` is pieces 0-2, `b` piece 2.
    fn three_files() -> Metainfo {
        let files = "l\
            d6:lengthi40000e4:pathl1:aee\
            d6:lengthi100e4:pathl1:bee\
            d6:lengthi0e4:pathl1:cee\
            e";
        let text = format!(
            "d4:infod5:files{files}4:name1:d12:piece lengthi16384e6:pieces60:{}ee",
            "x".repeat(60)
        );
        Metainfo::from_bytes(text.as_bytes()).unwrap()
    }

    #[test]
    fn survey_lists_files_with_data_and_skips_missing_and_empty_ones() {
        let dir = crate::test_util::TempDir::new("survey-list");
        let meta = three_files();
        fs::create_dir_all(dir.0.join("d")).unwrap();
        fs::write(dir.0.join("d/b"), b"some bytes").unwrap();
        fs::write(dir.0.join("d/c"), b"").unwrap();
        let now = crate::resume::stamp_files(&dir.0, &meta);
        let found = survey(&dir.0, &meta, None, &now).unwrap();
        assert_eq!(
            found,
            [Existing {
                file: 1,
                len_on_disk: 10
            }]
        );
        // A zero-length torrent file with bytes on disk is judged too.
        fs::write(dir.0.join("d/c"), b"!").unwrap();
        let now = crate::resume::stamp_files(&dir.0, &meta);
        let found = survey(&dir.0, &meta, None, &now).unwrap();
        assert_eq!(found.iter().map(|e| e.file).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_file_is_pollens_own_only_with_its_saved_stamp_and_a_verified_piece() {
        let dir = crate::test_util::TempDir::new("survey-ours");
        let meta = three_files();
        fs::create_dir_all(dir.0.join("d")).unwrap();
        fs::write(dir.0.join("d/b"), b"some bytes").unwrap();
        let now = crate::resume::stamp_files(&dir.0, &meta);
        let mut state = ResumeState {
            info_hash: meta.info_hash,
            have: crate::bitfield::Bitfield::new(3),
            files: now.clone(),
        };
        // The same stamp, but no piece of b verified (a refused file, saved).
        let found = survey(&dir.0, &meta, Some(&state), &now).unwrap();
        assert_eq!(found.len(), 1);
        state.have.set(2);
        assert!(survey(&dir.0, &meta, Some(&state), &now)
            .unwrap()
            .is_empty());
        // Changed since: judged again.
        state.files[1].len_on_disk = Some(11);
        assert_eq!(survey(&dir.0, &meta, Some(&state), &now).unwrap().len(), 1);
    }

    #[test]
    fn survey_refuses_a_directory_where_a_file_goes_and_a_file_where_a_directory_goes() {
        let dir = crate::test_util::TempDir::new("survey-way");
        let meta = three_files();
        fs::create_dir_all(dir.0.join("d/a")).unwrap();
        let now = crate::resume::stamp_files(&dir.0, &meta);
        assert_eq!(
            survey(&dir.0, &meta, None, &now),
            Err(Refusal::NotAFile {
                path: dir.0.join("d/a"),
                what: "a directory"
            })
        );
        fs::remove_dir_all(dir.0.join("d")).unwrap();
        fs::write(dir.0.join("d"), b"mine").unwrap();
        assert_eq!(
            survey(&dir.0, &meta, None, &now),
            Err(Refusal::NotADirectory {
                path: dir.0.join("d"),
                needed_for: dir.0.join("d/a")
            })
        );
    }

    #[test]
    fn free_bytes_of_an_existing_directory_is_known() {
        assert!(free_bytes(Path::new(".")).is_ok());
        assert!(free_bytes(Path::new("/no/such/dir/at/all")).is_err());
    }

    #[test]
    fn a_sparse_file_holds_no_data_and_a_written_one_does() {
        let dir = std::env::temp_dir().join(format!("pollen-has-data-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let sparse = dir.join("sparse");
        fs::File::create(&sparse).unwrap().set_len(1 << 20).unwrap();
        let written = dir.join("written");
        fs::write(&written, b"user data").unwrap();
        assert!(has_data(&written));
        // A file system without SEEK_DATA says "data": only check where it can tell.
        let sparse_known = allocated_bytes(&sparse) == 0;
        if sparse_known {
            assert!(!has_data(&sparse));
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
