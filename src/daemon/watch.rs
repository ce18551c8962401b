//! The watch directory: `.torrent` files dropped there are added by the
//! daemon, then renamed `<name>.added` (or `<name>.invalid`, the reason
//! logged) so they are picked up once.
//!
//! Layer 1: blocking directory reads and renames, no clock (the caller
//! passes the time in Unix seconds). No BEP. Polled, not `inotify`: a scan
//! every few seconds is cheap, portable, and works on network mounts.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::metainfo::MAX_TORRENT_BYTES;

/// Most files one [`scan`] returns: adding a torrent reads and hashes its
/// metainfo, so a directory of thousands is taken a batch at a time and
/// the loop keeps serving peers in between.
pub const MAX_WATCH_BATCH: usize = 64;

/// Most directory entries one [`scan`] looks at: bounds its time and memory
/// in a directory someone filled with other files.
pub const MAX_WATCH_ENTRIES: usize = 100_000;

/// A file modified within this many seconds is left for a later scan: it
/// may still be being written (a copy, a browser's download).
pub const MIN_AGE_SECS: i64 = 2;

/// Most numbered names tried by [`mark`] when `<name>.added` exists.
pub const MAX_MARK_SUFFIX: u32 = 100;

/// What became of a watched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Added: renamed `<name>.added`.
    Added,
    /// Refused: renamed `<name>.invalid`.
    Invalid,
}

impl Outcome {
    /// The suffix appended to the file name.
    pub fn suffix(self) -> &'static str {
        match self {
            Outcome::Added => ".added",
            Outcome::Invalid => ".invalid",
        }
    }
}

/// The `.torrent` files (case-insensitive) in `dir` that are ready: regular
/// files (symlinks are skipped) last modified at least [`MIN_AGE_SECS`]
/// before `now_unix`; sorted by name, at most [`MAX_WATCH_BATCH`]. Blocks
/// (reads the directory, one `lstat` per candidate).
pub fn scan(dir: &Path, now_unix: i64) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<(OsString, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)?.take(MAX_WATCH_ENTRIES) {
        let entry = entry?;
        let name = entry.file_name();
        if !is_torrent_name(name.as_bytes()) {
            continue;
        }
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                log::debug!("{}: {e}", path.display());
                continue;
            }
        };
        if !meta.file_type().is_file() {
            log::debug!("{}: not a regular file, skipped", path.display());
            continue;
        }
        if meta.mtime() > now_unix.saturating_sub(MIN_AGE_SECS) {
            continue;
        }
        found.push((name, path));
    }
    found.sort();
    found.truncate(MAX_WATCH_BATCH);
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// Whether a file name ends in `.torrent`, in any case, with a name before it.
fn is_torrent_name(name: &[u8]) -> bool {
    const EXTENSION: &[u8] = b".torrent";
    name.len() > EXTENSION.len()
        && name
            .get(name.len() - EXTENSION.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(EXTENSION))
}

/// Renames `path` to `<name>.added` or `<name>.invalid`; when that exists,
/// to `<name>.added.1`, `.2`... up to [`MAX_MARK_SUFFIX`], then gives up
/// with `AlreadyExists`. Returns the new path. Blocks (a few `lstat`s and
/// a rename; the check and the rename are not one step, which only
/// matters if someone else renames into the watch directory meanwhile).
pub fn mark(path: &Path, outcome: Outcome) -> io::Result<PathBuf> {
    let mut base = path.as_os_str().to_os_string();
    base.push(outcome.suffix());
    for n in 0..=MAX_MARK_SUFFIX {
        let mut target = base.clone();
        if n > 0 {
            target.push(format!(".{n}"));
        }
        let target = PathBuf::from(target);
        match fs::symlink_metadata(&target) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::rename(path, &target)?;
        return Ok(target);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: {} and its {MAX_MARK_SUFFIX} numbered names are all taken",
            path.display(),
            PathBuf::from(base).display()
        ),
    ))
}

/// The bytes of the watched file at `path`, or why not: a file over
/// [`MAX_TORRENT_BYTES`] is refused without being read, and at most one
/// byte past the cap is ever read (a file still growing). The message
/// suits the log line of an `.invalid` file. Blocks.
pub fn read_torrent(path: &Path) -> Result<Vec<u8>, String> {
    let too_large =
        |len: u64| format!("{len} bytes, over the {MAX_TORRENT_BYTES}-byte torrent cap");
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_TORRENT_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_TORRENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > MAX_TORRENT_BYTES {
        return Err(too_large(read));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::time::{Duration, UNIX_EPOCH};

    /// An old enough modification time for every test file.
    const MTIME: i64 = 1_000_000;

    fn write_at(path: &Path, bytes: &[u8], mtime: i64) {
        fs::write(path, bytes).unwrap();
        let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(mtime).unwrap());
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn scan_finds_regular_torrent_files_of_any_case_sorted() {
        let dir = TempDir::new("watch-scan");
        for name in [
            "b.torrent",
            "a.TORRENT",
            "c.Torrent",
            "d.torrent.added",
            "e.txt",
            ".torrent",
        ] {
            write_at(&dir.0.join(name), b"x", MTIME);
        }
        fs::create_dir(dir.0.join("f.torrent")).unwrap();
        std::os::unix::fs::symlink(dir.0.join("b.torrent"), dir.0.join("g.torrent")).unwrap();
        let found = scan(&dir.0, MTIME + 100).unwrap();
        assert_eq!(names(&found), ["a.TORRENT", "b.torrent", "c.Torrent"]);
        assert!(found.iter().all(|p| p.starts_with(&dir.0)));
    }

    #[test]
    fn scan_skips_files_modified_in_the_last_two_seconds() {
        let dir = TempDir::new("watch-mtime");
        write_at(&dir.0.join("old.torrent"), b"x", MTIME);
        write_at(&dir.0.join("new.torrent"), b"x", MTIME + 1);
        assert_eq!(
            names(&scan(&dir.0, MTIME + 1).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(names(&scan(&dir.0, MTIME + 2).unwrap()), ["old.torrent"]);
        assert_eq!(
            names(&scan(&dir.0, MTIME + 3).unwrap()),
            ["new.torrent", "old.torrent"]
        );
    }

    #[test]
    fn scan_returns_at_most_one_batch_and_a_missing_directory_is_an_error() {
        let dir = TempDir::new("watch-batch");
        for n in 0..MAX_WATCH_BATCH + 10 {
            write_at(&dir.0.join(format!("{n:03}.torrent")), b"x", MTIME);
        }
        let found = scan(&dir.0, MTIME + 10).unwrap();
        assert_eq!(found.len(), MAX_WATCH_BATCH);
        assert_eq!(names(&found)[0], "000.torrent");
        assert!(scan(&dir.0.join("missing"), MTIME).is_err());
    }

    #[test]
    fn mark_renames_and_numbers_around_existing_targets() {
        let dir = TempDir::new("watch-mark");
        let path = dir.0.join("x.torrent");
        write_at(&path, b"1", MTIME);
        let first = mark(&path, Outcome::Added).unwrap();
        assert_eq!(first, dir.0.join("x.torrent.added"));
        assert!(!path.exists());

        write_at(&path, b"2", MTIME);
        fs::write(dir.0.join("x.torrent.added.1"), b"taken").unwrap();
        let second = mark(&path, Outcome::Added).unwrap();
        assert_eq!(second, dir.0.join("x.torrent.added.2"));
        assert_eq!(fs::read(&first).unwrap(), b"1");
        assert_eq!(fs::read(&second).unwrap(), b"2");

        write_at(&path, b"3", MTIME);
        let invalid = mark(&path, Outcome::Invalid).unwrap();
        assert_eq!(invalid, dir.0.join("x.torrent.invalid"));
    }

    #[test]
    fn mark_gives_up_when_every_name_is_taken() {
        let dir = TempDir::new("watch-mark-full");
        let path = dir.0.join("y.torrent");
        write_at(&path, b"y", MTIME);
        fs::write(dir.0.join("y.torrent.invalid"), b"").unwrap();
        for n in 1..=MAX_MARK_SUFFIX {
            fs::write(dir.0.join(format!("y.torrent.invalid.{n}")), b"").unwrap();
        }
        let err = mark(&path, Outcome::Invalid).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(path.exists());
    }

    #[test]
    fn read_torrent_refuses_an_oversize_file_unread() {
        let dir = TempDir::new("watch-read");
        let path = dir.0.join("z.torrent");
        write_at(&path, b"d4:infode", MTIME);
        assert_eq!(read_torrent(&path).unwrap(), b"d4:infode");
        File::create(&path)
            .unwrap()
            .set_len(MAX_TORRENT_BYTES + 1)
            .unwrap();
        let err = read_torrent(&path).unwrap_err();
        assert!(err.contains("torrent cap"), "{err}");
        assert!(read_torrent(&dir.0.join("missing.torrent")).is_err());
        assert_eq!(read_torrent(&dir.0).unwrap_err(), "not a regular file");
    }
}
