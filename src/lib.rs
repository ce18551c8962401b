//! pollen: a small BitTorrent client built as one single-threaded event loop.

pub mod bencode;
pub mod create;
pub mod hash;
pub mod metainfo;
pub mod storage;
