//! pollen: a small BitTorrent client built as one single-threaded event loop.
//!
//! # The design tour
//!
//! pollen is written to be read. The layers import downwards only:
//!
//! ```text
//! L3  main.rs, cli/     command line (getopts) -> Config -> Session; errors -> exit codes
//! L2  session/          the only owner of mio, slab, sockets and the clock
//! L1  storage, create,  blocking disk I/O: positioned reads and writes,
//!     torrent_file      hashing files, reading .torrent files
//!     tracker::http     blocking HTTP: one announce under hard timeouts
//! L0  bencode, metainfo, bitfield, wire, hash, units, tracker::announce
//!                       pure: bytes/values in, values/bytes out; no I/O, no clock
//! ```
//!
//! Layer 0 is tested from tables, without sockets or files. Each module's
//! first lines say what it is, its layer and the BEP it implements.
//!
//! # Where each BEP lives
//!
//! | BEP | what | module |
//! | --- | --- | --- |
//! | 3 | bencoding | [`bencode`] |
//! | 3 | metainfo files, info-hash, pieces | [`metainfo`], [`metainfo::layout`] |
//! | 3 | handshake and peer messages | [`wire`] |
//! | 3 | bitfield of pieces | [`bitfield`] |
//! | 3 | HTTP tracker announce | [`tracker::announce`], [`tracker::http`] |
//! | 6 | fast extension message ids | [`wire`] |
//! | 7 | IPv6 tracker peers (`peers6`) | [`tracker::announce`] |
//! | 10 | extension protocol message id, reserved bit | [`wire`] |
//! | 12 | `announce-list` tiers | [`metainfo`], [`create`] |
//! | 19 | `url-list` web seeds (parsed) | [`metainfo`] |
//! | 23 | compact tracker peer lists | [`tracker::announce`] |
//! | 27 | `private` flag | [`metainfo`], [`create`] |
//! | 47 | padding files | [`metainfo`], [`storage`] |
//!
//! # The life of a block
//!
//! A peer's BITFIELD or HAVE ([`wire::Message`], checked with
//! [`bitfield::Bitfield::from_bytes`]) tells us what it holds; we send
//! INTERESTED, wait for UNCHOKE, send REQUESTs for 16 KiB blocks
//! ([`metainfo::Layout::block`]); each PIECE ([`wire::decode_frame`]) is
//! checked against the torrent ([`metainfo::Layout::check_block`]) and
//! written ([`storage::Storage::write`]); a complete piece is verified
//! ([`storage::Storage::verify_piece`]) and announced to every peer with HAVE.

#![forbid(unsafe_code)]

pub mod bencode;
pub mod bitfield;
pub mod create;
pub mod error;
pub mod hash;
pub mod metainfo;
pub mod storage;
pub mod torrent_file;
pub mod tracker;
pub mod units;
pub mod wire;

pub use error::Error;
pub use torrent_file::load_torrent;
pub mod choker;
pub mod download;
pub mod peer;
pub mod peer_list;
pub mod picker;
pub mod rate;
pub mod rng;
pub mod session;
