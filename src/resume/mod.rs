//! Resume data: which pieces were verified, saved next to the download so a
//! restart neither re-downloads nor re-hashes them (issue "Resume and crash
//! safety", issue 11; `shared/PROTOCOL.md`, "Lost resume data").
//!
//! Two files, one concept each:
//!
//! - `state.rs`, layer 0 (pure, no I/O, no clock): [`ResumeState`], the
//!   file format ([`encode`], [`decode`]) and [`trusted_pieces`], the rule
//!   that decides which saved pieces can be believed.
//! - `file.rs`, layer 1 (blocking disk I/O): [`resume_path`],
//!   [`stamp_files`], the atomic [`save`] and [`load`].
//!
//! # The saved bitfield is a hint
//!
//! The `have` bitfield is only believed for a piece when every file that
//! piece touches has the same size, modification time and status-change
//! time (ctime) now as when the bitfield was saved. A file that was edited,
//! truncated, replaced, deleted, or edited with its mtime set back since
//! then has its pieces re-checked by hash; a resume file that is missing,
//! corrupt or from another torrent means every piece is re-checked.
//! Nothing here can make pollen trust data it did not verify at some point.
//!
//! Believed pieces are not hashed again at start-up (a restart of a
//! complete download hashes nothing); the session hashes only the others.
//! What no stamp can see (bit rot, a disk that returns other bytes, a
//! change made with the clock turned back) stays believed until
//! `pollen --check`, which ignores this state and hashes every piece; a
//! piece that fails there is fetched again.
//!
//! # The file format (version 1)
//!
//! One bencoded dictionary (BEP 3 bencoding, canonical key order):
//!
//! | key | value |
//! | --- | --- |
//! | `version` | integer, [`FORMAT_VERSION`] (1); another version is refused |
//! | `info hash` | 20-byte string: the torrent's info-hash (BEP 3) |
//! | `pieces` | integer: the torrent's piece count |
//! | `have` | string of `ceil(pieces / 8)` bytes: the verified pieces, in BEP 3 BITFIELD bit order, spare bits zero |
//! | `files` | list with one dictionary per torrent file, in torrent order (padding files included) |
//!
//! Each `files` entry describes the file as it was on disk when saved:
//!
//! | key | value |
//! | --- | --- |
//! | `size` | integer: its length in bytes; absent (or `-1`) when it did not exist |
//! | `mtime` | integer: its modification time in nanoseconds since the Unix epoch (1970-01-01 UTC, negative before it); absent when unknown |
//! | `ctime` | integer: its status-change time (`st_ctime`), same unit; absent when unknown, and in files written before it was recorded (then the file is re-checked once, see [`trusted_pieces`]) |
//!
//! For example, a one-file torrent of 3 pieces with pieces 0 and 2 verified
//! (line breaks added; `\xa0` is the one byte `1010_0000`):
//!
//! ```text
//! d5:filesld5:ctimei1700000001987654321e5:mtimei1700000000123456789e4:sizei40000eee
//!  4:have1:\xa0
//!  9:info hash20:<the 20 bytes>
//!  6:piecesi3e
//!  7:versioni1e
//! e
//! ```
//!
//! The torrent's expected file lengths are not stored: the info-hash already
//! fixes them. Unknown keys are ignored, so a later version-1 writer may add
//! some; a reader refuses any resume file larger than [`max_resume_bytes`]
//! before reading it, so a hostile or broken file cannot make it allocate.

mod error;
mod file;
mod state;

pub use error::ResumeError;
pub use file::{load, resume_path, save, save_bytes, stamp_files, torrent_path, RESUME_DIR};
pub use state::{
    decode, encode, max_resume_bytes, trusted_pieces, FileStamp, ResumeState, FORMAT_VERSION,
};
