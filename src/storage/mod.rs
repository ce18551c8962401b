//! Storage: the torrent's files on disk, addressed by piece and block.
//!
//! Layer 1: blocking disk I/O, no sockets, no clock. The session calls it
//! from the loop; each call is one or a few positioned reads or writes
//! (`pread`/`pwrite`), so it never moves a shared file cursor and never
//! reads more than one piece.
//!
//! - Blocks are mapped to (file, offset) runs by [`Layout::spans`]; a block
//!   that straddles two files becomes two writes.
//! - Files and their directories are created lazily, on the first write,
//!   and only under the destination directory: every path comes from the
//!   metainfo sanitizer, and [`Storage::new`] refuses any path that is not
//!   made of plain relative components.
//! - Zero-length files hold no piece, so [`Storage::create_empty_files`]
//!   makes them explicitly.
//! - BEP 47 padding files are never written; reading them gives zeros.
//!   BEP 47 symlinks hold no bytes and are never created either.
//! - Open file handles are cached, at most [`MAX_OPEN_FILES`] at once.
//! - A file that is not complete carries a `.part` suffix; the session
//!   calls [`Storage::finish_file`] once every piece touching it is verified.
//! - A file already at a final name that pollen did not make is judged
//!   before anything is written to it (`existing.rs`: never lose a user's
//!   file), and the room still needed is checked before the download starts.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::hash::{Sha1Hash, Sha1Hasher};
use crate::metainfo::{FileSpan, Layout, Metainfo, PieceIndex};

mod existing;

pub use existing::{
    free_bytes, judge, space_needed, survey, unallocated, Existing, Refusal, Verdict,
};

/// Most file handles kept open at once. Small boxes often allow 1024
/// descriptors in all, shared with peer sockets; a torrent may have
/// thousands of files.
pub const MAX_OPEN_FILES: usize = 32;

/// Bytes read at a time while hashing a piece, so verifying a 16 MiB piece
/// does not need a 16 MiB buffer.
const VERIFY_CHUNK_BYTES: usize = 64 * 1024;

/// A disk failure, naming the file. Fatal for the session: it saves what it
/// can and stops with this message.
#[derive(Debug)]
pub struct StorageError {
    /// The file or directory involved.
    pub path: PathBuf,
    /// What was being done: "create", "open", "read", "write".
    pub action: &'static str,
    /// The operating system's error.
    pub source: io::Error,
}

impl StorageError {
    /// Whether the disk (or a quota, or the process's file size limit) is
    /// full: `ENOSPC`, `EDQUOT`, `EFBIG`. Room made, the same command resumes.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
        )
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )?;
        if self.is_disk_full() {
            f.write_str(" (disk full: make room, then run the same command again to resume)")?;
        }
        Ok(())
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// One file's place on disk.
#[derive(Debug)]
struct DiskFile {
    /// Where the file is now: the final name, or the `.part` name while
    /// some piece touching it is not verified.
    path: PathBuf,
    /// Its final name.
    final_path: PathBuf,
    /// Its name while incomplete ([`partial_paths`]).
    partial_path: PathBuf,
    len: u64,
    /// Never on disk: a BEP 47 padding file (reads as zeros) or symlink
    /// (holds no bytes).
    absent: bool,
}

/// A piece being hashed from disk a slice at a time ([`Storage::hash_step`]).
#[derive(Clone)]
pub struct PieceHashing {
    piece: PieceIndex,
    hasher: Sha1Hasher,
    /// Bytes of the piece hashed so far.
    done: u32,
}

impl PieceHashing {
    /// Nothing of `piece` hashed yet.
    pub fn new(piece: PieceIndex) -> PieceHashing {
        PieceHashing {
            piece,
            hasher: Sha1Hasher::new(),
            done: 0,
        }
    }

    /// The piece being hashed.
    pub fn piece(&self) -> PieceIndex {
        self.piece
    }
}

/// A cached open handle.
#[derive(Debug)]
struct OpenFile {
    file_index: usize,
    handle: File,
    writable: bool,
}

/// The torrent's files under one destination directory.
#[derive(Debug)]
pub struct Storage {
    layout: Layout,
    files: Vec<DiskFile>,
    /// Most recently used last.
    open: Vec<OpenFile>,
    /// Files written since the last [`Storage::sync_all`], whether or not
    /// their handle is still cached (an evicted handle's data must reach
    /// the disk before the resume state vouches for it).
    unsynced_files: BTreeSet<usize>,
    /// Directories in which a file was created or renamed since the last
    /// [`Storage::sync_all`]: the name itself must be made durable too.
    unsynced_dirs: BTreeSet<PathBuf>,
    /// Files this storage wrote, created or renamed since the last
    /// [`Storage::take_touched`]: their size and times changed because of
    /// us, not behind our back.
    touched: BTreeSet<usize>,
}

impl Storage {
    /// Storage for `meta` under `dest`. Touches nothing on disk yet.
    pub fn new(dest: &Path, meta: &Metainfo) -> Result<Storage, StorageError> {
        let mut files = Vec::with_capacity(meta.files.len());
        let partials = partial_paths(dest, meta);
        for (file, partial) in meta.files.iter().zip(partials) {
            if !is_plain_relative(&file.path) {
                return Err(StorageError {
                    path: file.path.clone(),
                    action: "use",
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "path leaves the destination directory",
                    ),
                });
            }
            let final_path = dest.join(&file.path);
            // Data already under the final name (a finished download, or
            // files put there by hand) is used in place; otherwise the file
            // grows under its `.part` name until it is complete.
            let path = if final_path.exists() || file.len == 0 {
                final_path.clone()
            } else {
                partial.clone()
            };
            files.push(DiskFile {
                path,
                final_path,
                partial_path: partial,
                len: file.len,
                absent: !file.on_disk(),
            });
        }
        Ok(Storage {
            layout: meta.layout.clone(),
            files,
            open: Vec::new(),
            unsynced_files: BTreeSet::new(),
            unsynced_dirs: BTreeSet::new(),
            touched: BTreeSet::new(),
        })
    }

    /// The torrent's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where file `index` lives on disk now (its `.part` name until complete).
    pub fn file_path(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(|f| f.path.as_path())
    }

    /// Every piece touching file `index` is verified: give it its real name
    /// (closing its handle first). Does nothing if it already has it.
    /// A file that was never written (all of its bytes lie in padding) is
    /// left alone. Blocks (a rename).
    pub fn finish_file(&mut self, index: usize) -> Result<(), StorageError> {
        let Some(file) = self.files.get(index) else {
            return Ok(());
        };
        if file.path == file.final_path || file.absent || !file.path.exists() {
            return Ok(());
        }
        let (from, to) = (file.path.clone(), file.final_path.clone());
        self.open.retain(|o| o.file_index != index);
        fs::rename(&from, &to).map_err(|source| StorageError {
            path: from.clone(),
            action: "rename",
            source,
        })?;
        if let Some(parent) = to.parent() {
            self.unsynced_dirs.insert(parent.to_path_buf());
        }
        self.touched.insert(index);
        if let Some(file) = self.files.get_mut(index) {
            file.path = to;
        }
        Ok(())
    }

    /// `--overwrite` of a file that is not this torrent's: deletes what is
    /// at file `index`'s final name, so the file is downloaded afresh under
    /// its `.part` name. Blocks (an unlink).
    pub fn discard_file(&mut self, index: usize) -> Result<(), StorageError> {
        let Some(file) = self.files.get_mut(index) else {
            return Ok(());
        };
        let gone = file.final_path.clone();
        file.path = file.partial_path.clone();
        self.open.retain(|o| o.file_index != index);
        match fs::remove_file(&gone) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError {
                    path: gone,
                    action: "remove",
                    source: e,
                })
            }
            _ => {}
        }
        if let Some(parent) = gone.parent() {
            self.unsynced_dirs.insert(parent.to_path_buf());
        }
        self.touched.insert(index);
        Ok(())
    }

    /// `--overwrite` of a file longer than the torrent's: cuts it to the
    /// torrent file's length (its bytes before that are kept, and so are
    /// the pieces they verified). Blocks (a truncate).
    pub fn cut_to_length(&mut self, index: usize) -> Result<(), StorageError> {
        let Some(file) = self.files.get(index) else {
            return Ok(());
        };
        let len = file.len;
        let handle = self.handle(index, true)?;
        if let Err(source) = handle.set_len(len) {
            return Err(self.error(index, "truncate", source));
        }
        self.unsynced_files.insert(index);
        self.touched.insert(index);
        Ok(())
    }

    /// Bytes of the torrent's files not yet allocated on disk: their holes
    /// and missing tails, under their current names (padding files and
    /// symlinks take none). Blocks (a `stat` per file).
    pub fn unallocated_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.absent)
            .map(|f| unallocated(f.len, existing::allocated_bytes(&f.path)))
            .fold(0u64, u64::saturating_add)
    }

    /// Writes `data` at `begin` bytes into `piece`, creating files and
    /// directories as needed. Blocks (disk I/O).
    pub fn write(
        &mut self,
        piece: PieceIndex,
        begin: u32,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        for span in self.layout.spans(piece, begin, len) {
            let Some(bytes) = data.get(span.buf_offset..span.buf_offset + span.len) else {
                continue;
            };
            if self.is_absent(span.file) {
                continue;
            }
            let file = self.handle(span.file, true)?;
            if let Err(source) = file.write_all_at(bytes, span.file_offset) {
                return Err(self.error(span.file, "write", source));
            }
            self.unsynced_files.insert(span.file);
            self.touched.insert(span.file);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `begin` bytes into `piece`. Fails if a file
    /// is missing or too short. Blocks (disk I/O).
    pub fn read(
        &mut self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        for span in self.layout.spans(piece, begin, len) {
            let Some(out) = buf.get_mut(span.buf_offset..span.buf_offset + span.len) else {
                continue;
            };
            self.read_span(&span, out)?;
        }
        Ok(())
    }

    /// Whether the piece on disk hashes to `expected`. Missing or short files
    /// mean "no" (`Ok(false)`); other read failures are errors. Reads the
    /// piece in chunks of 64 KiB. Blocks (disk I/O).
    pub fn verify_piece(
        &mut self,
        piece: PieceIndex,
        expected: &Sha1Hash,
    ) -> Result<bool, StorageError> {
        match self.hash_piece(piece) {
            Ok(hash) => Ok(&hash == expected),
            Err(e) if is_absent(&e.source) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The SHA-1 of the piece as it is on disk.
    pub fn hash_piece(&mut self, piece: PieceIndex) -> Result<Sha1Hash, StorageError> {
        let mut job = PieceHashing::new(piece);
        let size = self.layout.piece_size(piece);
        loop {
            if let Some(hash) = self.hash_step(&mut job, size)? {
                return Ok(hash);
            }
        }
    }

    /// Hashes up to `budget` more bytes of `job`'s piece from disk (at
    /// least one byte, so every call makes progress): the piece's SHA-1
    /// once its last byte is in, `None` before. Lets the session hash a
    /// huge piece (up to 512 MiB) a slice per loop pass. Blocks (disk I/O).
    pub fn hash_step(
        &mut self,
        job: &mut PieceHashing,
        budget: u32,
    ) -> Result<Option<Sha1Hash>, StorageError> {
        let size = self.layout.piece_size(job.piece);
        let len = budget.max(1).min(size.saturating_sub(job.done));
        let mut chunk = vec![0u8; VERIFY_CHUNK_BYTES.min(usize::try_from(len).unwrap_or(0))];
        for span in self.layout.spans(job.piece, job.done, len) {
            let mut done = 0;
            while done < span.len {
                let n = (span.len - done).min(VERIFY_CHUNK_BYTES);
                let part = FileSpan {
                    file_offset: span.file_offset + done as u64,
                    len: n,
                    ..span
                };
                let Some(buf) = chunk.get_mut(..n) else { break };
                self.read_span(&part, buf)?;
                job.hasher.update(buf);
                done += n;
            }
        }
        job.done += len;
        Ok((job.done >= size).then(|| std::mem::take(&mut job.hasher).finish()))
    }

    /// [`Storage::hash_step`] against `expected`: `Some(true)` or
    /// `Some(false)` once the piece is hashed, `None` before. Missing or
    /// short files mean `Some(false)`; other read failures are errors.
    pub fn verify_step(
        &mut self,
        job: &mut PieceHashing,
        budget: u32,
        expected: &Sha1Hash,
    ) -> Result<Option<bool>, StorageError> {
        match self.hash_step(job, budget) {
            Ok(hash) => Ok(hash.map(|h| &h == expected)),
            Err(e) if is_absent(&e.source) => Ok(Some(false)),
            Err(e) => Err(e),
        }
    }

    /// Creates every zero-length file (they belong to no piece, so no write
    /// ever creates them), but no symlink. Blocks (disk I/O).
    pub fn create_empty_files(&mut self) -> Result<(), StorageError> {
        for index in 0..self.files.len() {
            let empty = self
                .files
                .get(index)
                .is_some_and(|f| f.len == 0 && !f.absent);
            if empty {
                self.handle(index, true)?;
            }
        }
        Ok(())
    }

    /// Flushes every file written since the last call to stable storage
    /// (`fsync`), reopening those whose handle was closed meanwhile (an
    /// fsync covers the file, not the descriptor), then the directories
    /// where names were created or renamed. Blocks.
    pub fn sync_all(&mut self) -> Result<(), StorageError> {
        while let Some(&file) = self.unsynced_files.first() {
            let handle = self.handle(file, false)?;
            if let Err(source) = handle.sync_all() {
                return Err(self.error(file, "sync", source));
            }
            self.unsynced_files.remove(&file);
        }
        while let Some(dir) = self.unsynced_dirs.first().cloned() {
            let synced = File::open(&dir).and_then(|d| d.sync_all());
            if let Err(source) = synced {
                return Err(StorageError {
                    path: dir,
                    action: "sync",
                    source,
                });
            }
            self.unsynced_dirs.remove(&dir);
        }
        Ok(())
    }

    /// The files this storage wrote, created or renamed since the last call
    /// (so a change in their stamps is ours); forgets them.
    pub fn take_touched(&mut self) -> BTreeSet<usize> {
        std::mem::take(&mut self.touched)
    }

    /// Closes every cached handle (they reopen on demand).
    pub fn close_all(&mut self) {
        self.open.clear();
    }

    fn is_absent(&self, file: usize) -> bool {
        self.files.get(file).is_some_and(|f| f.absent)
    }

    fn read_span(&mut self, span: &FileSpan, out: &mut [u8]) -> Result<(), StorageError> {
        if self.is_absent(span.file) {
            out.fill(0);
            return Ok(());
        }
        let file = self.handle(span.file, false)?;
        if let Err(source) = file.read_exact_at(out, span.file_offset) {
            return Err(self.error(span.file, "read", source));
        }
        Ok(())
    }

    fn error(&self, file: usize, action: &'static str, source: io::Error) -> StorageError {
        StorageError {
            path: self
                .files
                .get(file)
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            action,
            source,
        }
    }

    /// The open handle for `file`, opening (and for writes creating) it if
    /// needed; least recently used handles are closed past the cap.
    fn handle(&mut self, file: usize, write: bool) -> Result<&File, StorageError> {
        let cached = self
            .open
            .iter()
            .position(|o| o.file_index == file && (o.writable || !write));
        let entry = match cached {
            Some(pos) => self.open.remove(pos),
            None => self.open_file(file, write)?,
        };
        if self.open.len() >= MAX_OPEN_FILES {
            self.open.remove(0);
        }
        self.open.retain(|o| o.file_index != file);
        self.open.push(entry);
        match self.open.last() {
            Some(o) => Ok(&o.handle),
            None => Err(self.error(file, "open", io::ErrorKind::NotFound.into())),
        }
    }

    fn open_file(&mut self, file: usize, write: bool) -> Result<OpenFile, StorageError> {
        let path = match self.files.get(file) {
            Some(f) => f.path.clone(),
            None => return Err(self.error(file, "open", io::ErrorKind::NotFound.into())),
        };
        let mut created_in = None;
        if write {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|source| StorageError {
                    path: parent.to_path_buf(),
                    action: "create directory",
                    source,
                })?;
                if !path.exists() {
                    created_in = Some(parent.to_path_buf());
                }
            }
        }
        let handle = OpenOptions::new()
            .read(true)
            .write(write)
            .create(write)
            .truncate(false)
            .open(&path)
            .map_err(|source| self.error(file, "open", source))?;
        if let Some(dir) = created_in {
            self.unsynced_dirs.insert(dir);
            self.touched.insert(file);
        }
        Ok(OpenFile {
            file_index: file,
            handle,
            writable: write,
        })
    }
}

/// The name each of `meta`'s files has under `dest` until it is complete:
/// its final name plus `.part`, plus `.part` again while that names another
/// file of the torrent (final or partial). A torrent with both `x` and
/// `x.part` would otherwise have `x`'s partial data overwritten when
/// `x.part` is finished: here `x` grows as `x.part.part` and `x.part` as
/// `x.part.part.part`. Linear in the paths' length (one set).
pub fn partial_paths(dest: &Path, meta: &Metainfo) -> Vec<PathBuf> {
    let finals: Vec<PathBuf> = meta.files.iter().map(|f| dest.join(&f.path)).collect();
    let mut taken: std::collections::HashSet<PathBuf> = finals.iter().cloned().collect();
    finals
        .iter()
        .map(|path| {
            let mut partial = part_name(path);
            while taken.contains(&partial) {
                partial = part_name(&partial);
            }
            taken.insert(partial.clone());
            partial
        })
        .collect()
}

/// `name.ext` -> `name.ext.part`: the name a file has until it is complete,
/// so nobody mistakes a half-written file for a finished one (see
/// [`partial_paths`] for a torrent whose names would collide).
pub fn part_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".part");
    PathBuf::from(name)
}

/// Whether an error means "the data is not there yet" rather than a fault.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
    )
}

/// Whether `path` is relative and made only of normal components.
fn is_plain_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests;
