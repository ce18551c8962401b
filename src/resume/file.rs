//! Resume files on disk: where they live, the stamps of the torrent's files,
//! and the crash-safe save.
//!
//! Layer 1: blocking disk I/O (a few small reads, writes and `fsync`s), no
//! sockets, no clock. The session calls [`load`] once at start-up and
//! [`save`] when it stops (and may call it now and then while running).
//!
//! # Where
//!
//! `<dest>/.pollen/<info-hash hex>.resume` ([`resume_path`]). Keeping it in
//! the destination directory means the resume data travels with the data it
//! describes (move or copy the download and its state follows), needs no
//! home or config directory (routers and NAS boxes often have none), and one
//! destination can hold several torrents, one file each, named by
//! info-hash. The leading dot keeps it out of ordinary listings and out of
//! the way of the torrent's own files; the directory is created on the
//! first save.
//!
//! # Crash safety
//!
//! [`save`] never leaves a half-written resume file under the real name: it
//! writes `<name>.tmp`, `fsync`s it, renames it over the old file (atomic on
//! POSIX file systems) and `fsync`s the directory so the rename itself is
//! durable. A crash at any step leaves either the old file or the new one; a
//! stale `.tmp` from a crash is never read and is overwritten by the next
//! save.
//!
//! The caller must make the piece data durable first
//! ([`crate::storage::Storage::sync_all`]), then take the stamps
//! ([`stamp_files`]), then save: a bitfield must never reach the disk before
//! the pieces it vouches for, and stamps taken before the last write would
//! only (harmlessly) make those files' pieces be re-checked.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{decode, encode, max_resume_bytes, FileStamp, ResumeError, ResumeState};
use crate::metainfo::Metainfo;

/// The hidden directory inside the destination that holds resume files.
pub const RESUME_DIR: &str = ".pollen";

/// The resume file's extension (after the info-hash in hex).
const RESUME_EXTENSION: &str = "resume";

/// Appended to the resume file's name while a save is being written.
const TMP_SUFFIX: &str = ".tmp";

/// Where the resume file of `meta` downloaded into `dest` lives:
/// `dest/.pollen/<info-hash hex>.resume`. Touches nothing on disk.
pub fn resume_path(dest: &Path, meta: &Metainfo) -> PathBuf {
    dest.join(RESUME_DIR)
        .join(format!("{}.{RESUME_EXTENSION}", meta.info_hash.to_hex()))
}

/// Where the `.torrent` file of a torrent added by magnet link is saved
/// once its metadata arrives, so a restart needs no peer for it:
/// `DEST/.pollen/<info-hash in hex>.torrent`.
pub fn torrent_path(dest: &Path, info_hash: &crate::metainfo::InfoHash) -> PathBuf {
    dest.join(RESUME_DIR)
        .join(format!("{}.{TORRENT_EXTENSION}", info_hash.to_hex()))
}

/// The suffix of a saved magnet's torrent file.
const TORRENT_EXTENSION: &str = "torrent";

/// The size, modification time and status-change time of each of the
/// torrent's files under `dest`, in torrent order. A missing file (or
/// anything that is not a regular file) and every padding file or symlink
/// get an empty stamp. Blocks (one
/// `stat` per file).
pub fn stamp_files(dest: &Path, meta: &Metainfo) -> Vec<FileStamp> {
    let partials = crate::storage::partial_paths(dest, meta);
    meta.files
        .iter()
        .zip(partials)
        .map(|(file, partial)| match file.on_disk() {
            false => FileStamp::default(),
            true => stamp(&dest.join(&file.path), &partial),
        })
        .collect()
}

/// The stamp of one file (under its final name, or its `partial` name
/// while incomplete); empty when it cannot be `stat`ed.
fn stamp(path: &Path, partial: &Path) -> FileStamp {
    let meta = fs::metadata(path).or_else(|_| fs::metadata(partial));
    match meta {
        Ok(meta) if meta.is_file() => FileStamp {
            len_on_disk: Some(meta.len()),
            mtime_ns: meta.modified().ok().and_then(unix_nanos),
            ctime_ns: ctime_nanos(&meta),
        },
        _ => FileStamp::default(),
    }
}

/// Nanoseconds since the Unix epoch, negative before it; `None` outside
/// what an `i64` holds (before 1677 or after 2262).
fn unix_nanos(time: SystemTime) -> Option<i64> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).ok(),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .ok()
            .and_then(i64::checked_neg),
    }
}

/// The status-change time (`st_ctime`) in nanoseconds since the Unix
/// epoch; `None` outside what an `i64` holds or when the nanoseconds are
/// not a valid fraction.
fn ctime_nanos(meta: &fs::Metadata) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    let nanos = meta.ctime_nsec();
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    meta.ctime().checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Writes `state` to `path` atomically: a temporary file next to it,
/// `fsync`, rename over `path`, `fsync` of the directory. Creates the
/// directory if needed. Blocks (disk I/O, two `fsync`s).
pub fn save(path: &Path, state: &ResumeState) -> io::Result<()> {
    save_bytes(path, &encode(state))
}

/// Writes `bytes` to `path` atomically, as [`save`] does (the torrent
/// file of a magnet link is saved this way too).
pub fn save_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| context("create directory", dir, e))?;
    let tmp = tmp_path(path);
    if let Err(e) = write_synced(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(context("write", &tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(context("rename into place", path, e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| context("sync directory", dir, e))
}

/// `path` with [`TMP_SUFFIX`] appended to its file name.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Creates (or truncates a stale) `path`, writes `bytes` and `fsync`s it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// An I/O error that names what was being done to which path.
fn context(action: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}

/// Reads the resume file at `path` for `meta`.
///
/// `Ok(None)` when there is none (a first run). `Err` when it exists but
/// cannot be read or trusted: the session shows the message as a warning,
/// with the path, and re-checks every piece. A file larger than
/// [`max_resume_bytes`] is refused without being read. Blocks (disk I/O).
pub fn load(path: &Path, meta: &Metainfo) -> Result<Option<ResumeState>, ResumeError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ResumeError::Read(e)),
    };
    let piece_count = meta.layout.piece_count();
    let file_count = meta.files.len();
    let max_bytes = max_resume_bytes(piece_count, file_count);
    let len = file.metadata().map_err(ResumeError::Read)?.len();
    if len > max_bytes {
        return Err(ResumeError::TooLarge { len, max_bytes });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // One byte past the cap, so a file that grew since the stat is caught
    // by `decode`'s own size check.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ResumeError::Read)?;
    decode(&bytes, &meta.info_hash, piece_count, file_count).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitfield::Bitfield;
    use crate::resume::state::tests::straddling;
    use crate::resume::trusted_pieces;
    use crate::test_util::TempDir;
    use std::time::Duration;

    /// Writes every non-padding file of `meta` under `dest`, full length.
    fn write_files(dest: &Path, meta: &Metainfo) {
        for file in meta.files.iter().filter(|f| !f.padding) {
            let path = dest.join(&file.path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, vec![7u8; usize::try_from(file.len).unwrap()]).unwrap();
        }
    }

    fn full_state(dest: &Path, meta: &Metainfo) -> ResumeState {
        ResumeState {
            info_hash: meta.info_hash,
            have: Bitfield::full(meta.layout.piece_count()),
            files: stamp_files(dest, meta),
        }
    }

    fn set_mtime(path: &Path, time: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn resume_path_is_a_hidden_directory_in_dest_named_by_info_hash() {
        let meta = straddling();
        let path = resume_path(Path::new("/data"), &meta);
        let expected = format!("/data/.pollen/{}.resume", meta.info_hash.to_hex());
        assert_eq!(path, PathBuf::from(expected));
    }

    #[test]
    fn save_then_load_round_trips_and_creates_the_directory_lazily() {
        let dir = TempDir::new("resume-roundtrip");
        let meta = straddling();
        write_files(&dir.0, &meta);
        let path = resume_path(&dir.0, &meta);
        assert!(!dir.0.join(RESUME_DIR).exists());
        assert!(load(&path, &meta).unwrap().is_none());

        let mut state = full_state(&dir.0, &meta);
        state.have.clear(3);
        save(&path, &state).unwrap();
        assert_eq!(load(&path, &meta).unwrap(), Some(state.clone()));

        let now = stamp_files(&dir.0, &meta);
        assert_eq!(trusted_pieces(&state, &now, &meta), state.have);
    }

    #[test]
    fn stamp_files_reports_sizes_times_and_missing_files() {
        let dir = TempDir::new("resume-stamp");
        let meta = straddling();
        write_files(&dir.0, &meta);
        fs::remove_file(dir.0.join("t/c")).unwrap();
        set_mtime(&dir.0.join("t/a"), UNIX_EPOCH + Duration::new(1_000, 5));
        let stamps = stamp_files(&dir.0, &meta);
        assert_eq!(
            stamps[0],
            FileStamp {
                len_on_disk: Some(250),
                mtime_ns: Some(1_000_000_000_005),
                ctime_ns: stamps[0].ctime_ns,
            }
        );
        // Setting the mtime back is itself a status change, seen now.
        let ctime = stamps[0].ctime_ns.unwrap();
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(ctime > 1_000_000_000_005);
        assert!(u128::try_from(ctime).unwrap() <= since_epoch.as_nanos() + 1_000_000_000);
        assert_eq!(stamps[1].len_on_disk, Some(100));
        assert!(stamps[1].mtime_ns.is_some());
        assert_eq!(stamps[2], FileStamp::default(), "padding");
        assert_eq!(stamps[3], FileStamp::default(), "deleted");
        assert_eq!(stamps[4].len_on_disk, Some(0), "empty file");
    }

    #[test]
    fn a_touched_or_grown_file_on_disk_loses_its_pieces() {
        let dir = TempDir::new("resume-touched");
        let meta = straddling();
        write_files(&dir.0, &meta);
        let path = resume_path(&dir.0, &meta);
        save(&path, &full_state(&dir.0, &meta)).unwrap();

        // Someone edits b (pieces 2 and 3) and keeps its size.
        set_mtime(&dir.0.join("t/b"), UNIX_EPOCH + Duration::from_secs(42));
        // Someone appends to d (piece 7) and restores its old mtime.
        let d = dir.0.join("t/d");
        let d_mtime = fs::metadata(&d).unwrap().modified().unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&d)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        set_mtime(&d, d_mtime);

        let saved = load(&path, &meta).unwrap().unwrap();
        let trusted = trusted_pieces(&saved, &stamp_files(&dir.0, &meta), &meta);
        assert_eq!(trusted.iter_ones().collect::<Vec<_>>(), [0, 1, 4, 5, 6]);
    }

    #[test]
    fn save_leaves_no_temporary_file() {
        let dir = TempDir::new("resume-atomic");
        let meta = straddling();
        let path = resume_path(&dir.0, &meta);
        save(&path, &full_state(&dir.0, &meta)).unwrap();
        save(&path, &full_state(&dir.0, &meta)).unwrap();
        let names: Vec<_> = fs::read_dir(dir.0.join(RESUME_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [path.file_name().unwrap()]);
    }

    #[test]
    fn a_stale_temporary_file_from_a_crash_is_ignored_and_overwritten() {
        let dir = TempDir::new("resume-stale");
        let meta = straddling();
        let path = resume_path(&dir.0, &meta);
        let tmp = tmp_path(&path);
        fs::create_dir_all(tmp.parent().unwrap()).unwrap();
        // A crash mid-save: a half-written temporary and no resume file yet.
        let state = full_state(&dir.0, &meta);
        let whole = encode(&state);
        fs::write(&tmp, &whole[..whole.len() / 2]).unwrap();
        assert!(load(&path, &meta).unwrap().is_none());

        save(&path, &state).unwrap();
        assert!(!tmp.exists());
        assert_eq!(load(&path, &meta).unwrap(), Some(state.clone()));

        // A crash in a later save leaves the previous file in force.
        fs::write(&tmp, b"garbage").unwrap();
        assert_eq!(load(&path, &meta).unwrap(), Some(state));
    }

    #[test]
    fn load_reports_a_corrupt_file() {
        let dir = TempDir::new("resume-corrupt");
        let meta = straddling();
        let path = resume_path(&dir.0, &meta);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"d7:versioni1e").unwrap();
        let err = load(&path, &meta).unwrap_err();
        assert!(matches!(err, ResumeError::Bencode(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("resume file is corrupt"),
            "{err}"
        );
    }

    #[test]
    fn load_refuses_an_oversized_file_unread() {
        let dir = TempDir::new("resume-oversized");
        let meta = straddling();
        let path = resume_path(&dir.0, &meta);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A sparse file far past the cap: refused from its size alone.
        let huge = 1 << 30;
        File::create(&path).unwrap().set_len(huge).unwrap();
        let err = load(&path, &meta).unwrap_err();
        assert!(
            matches!(err, ResumeError::TooLarge { len, .. } if len == huge),
            "{err:?}"
        );
    }

    #[test]
    fn save_reports_where_it_failed() {
        let dir = TempDir::new("resume-save-fails");
        let meta = straddling();
        // A file where the `.pollen` directory should be.
        fs::write(dir.0.join(RESUME_DIR), b"in the way").unwrap();
        let path = resume_path(&dir.0, &meta);
        let err = save(&path, &full_state(&dir.0, &meta)).unwrap_err();
        assert!(err.to_string().contains(RESUME_DIR), "{err}");
        assert!(err.to_string().starts_with("cannot "), "{err}");
    }
}
