//! Loading a `.torrent` file from disk, with the size cap checked before
//! reading.
//!
//! Layer 1: one blocking file read, then the pure [`Metainfo`] parser.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::error::Error;
use crate::metainfo::{Metainfo, MetainfoError, MAX_TORRENT_BYTES};

/// Reads and checks the torrent at `path`. Never reads more than
/// [`MAX_TORRENT_BYTES`] + 1 bytes, whatever the file's size.
pub fn load_torrent(path: &Path) -> Result<Metainfo, Error> {
    let unreadable = |source| Error::TorrentUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(unreadable(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory, not a .torrent file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_TORRENT_BYTES {
        return Err(Error::Torrent {
            path: path.to_path_buf(),
            source: MetainfoError::TooLarge { len: meta.len() },
        });
    }
    Metainfo::from_bytes(&bytes).map_err(|source| Error::Torrent {
        path: path.to_path_buf(),
        source,
    })
}
