//! pollen: a small BitTorrent client built as one single-threaded event loop.

pub mod bencode;
pub mod bitfield;
pub mod wire;
