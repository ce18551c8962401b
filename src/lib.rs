//! pollen: a small BitTorrent client built as one single-threaded event loop.

pub mod bencode;
pub mod create;
pub mod hash;
pub mod metainfo;
pub mod storage;
pub mod error;
pub mod torrent_file;
pub mod units;

pub use error::Error;
pub use torrent_file::load_torrent;
