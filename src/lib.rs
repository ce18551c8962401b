//! pollen: a small BitTorrent client built as one single-threaded event loop.
//!
//! # The design tour
//!
//! pollen is written to be read. The layers import downwards only:
//!
//! ```text
//! L3  main.rs, cli/     command line (getopts) -> Config -> Session; errors -> exit codes;
//!                       the terminal under --tui (cli/terminal.rs)
//! L2  session/          the only owner of mio, slab, sockets and the clock; drives
//!                       one sans-IO `torrent::Torrent` core per torrent
//! L2  tracker::server::serve   the built-in tracker's own small mio loop
//!                       (`tracker::server` is the cargo feature `tracker-server`)
//! L1  storage, create,  blocking disk I/O: positioned reads and writes,
//!     torrent_file,     hashing files, reading .torrent files,
//!     resume::file,     atomic resume state (tmp + fsync + rename)
//!     lock              one pollen per download (flock on DEST/.pollen/<hash>.lock)
//!     daemon::{state, watch, settings}
//!                       pollen daemon: its state dir, watch dir, settings.json
//!     tracker::http     blocking HTTP: one announce under hard timeouts
//!     tracker::resolve  tracker name lookups on helper threads, off the loop
//! L0  torrent, bencode, metainfo, bitfield, wire, hash, units, peer,
//!     picker, partial_pieces, smart_ban, choker, peer_list, rate, ratelimit, rng,
//!     trace, resume::{state, error}, tracker::{announce, udp, tiers, scrape},
//!     tracker::server::{self, state, http_request, udp_request}, ui, close_reason,
//!     magnet, metadata, pex, web_seed, dht,
//!     rpc::{self, http, access, call, fields, view, base64, web}
//!                       pure: bytes/values in, values/bytes out; no I/O, no clock
//! ```
//!
//! Layer 0 is tested from tables, without sockets or files. Each module's
//! first lines say what it is, its layer and the BEP it implements.
//!
//! # The loop
//!
//! [`session::Session::run`] is the classic select loop, one pass at a time:
//!
//! | step | function (in `src/session/`) | what it does |
//! | --- | --- | --- |
//! | wait | `next_deadline`, `wait_for_events` | sleep in epoll_wait(2) until a socket is ready or the nearest timer |
//! | dispatch | `accept_peers`, `receive`, `on_writable`, `receive_dht`, `rpc_event` | new connections; bytes in, frames decoded and handled; connects finished, bytes out; DHT datagrams to the node; `pollen daemon`'s RPC requests answered |
//! | tick | `verify_pieces` | while a downloaded piece too large for one pass is queued: hash a slice of it |
//! | tick | `add_peers`, `check_timeouts`, `send_keepalives`, `send_pex`, `drive_daemon`, `show_status` | once a second: dial known peers, drop silent ones, keepalives, peer exchange (each peer at most once a minute), the daemon's queue, limits, watch folder and saved state, status line |
//! | tick | `cleanup`, `send_haves`, `request_blocks`, `drive_web_seeds` | every pass: close marked peers, announce new pieces, refill pipelines, turn web seeds' requests into HTTP range requests |
//! | tick | `rechoke`, `announce`, `drive_dht` | every 10 s: choose who we upload to; every pass: start each due tier's announce (UDP in the loop), at most one blocking HTTP announce; the DHT node's due timers and datagrams, the peers it found |
//! | before sleep | `serve_requests`, `flush_all`, `cleanup`, `write_trace` | read requested blocks from disk, write every buffer, write the `--trace` lines |
//!
//! Each tick phase runs through `run_phase`, which under `--trace` stamps
//! the messages it queued with its name: `pollen --trace FILE` shows the
//! loop above at work, one line per event ([`trace`]).
//!
//! # The life of a block
//!
//! The protocol rules live in the sans-IO [`torrent::Torrent`] core; the
//! session feeds it each decoded message and carries out the
//! [`torrent::Action`]s it returns (`apply_actions`). A peer's BITFIELD or HAVE ([`wire::Message`], checked with
//! [`bitfield::Bitfield::from_bytes`]) updates its [`peer::PeerState`] and
//! the [`picker::Picker`]'s availability; `update_interest` sends
//! INTERESTED; after its UNCHOKE, `request_blocks` asks
//! [`partial_pieces::next_block`] for blocks (partial pieces first, then the
//! rarest new piece, then endgame duplicates) and sends REQUESTs, as many as
//! [`peer::PeerState::pipeline_target`] allows; each PIECE goes to
//! `on_block`, which checks it ([`metainfo::Layout::check_block`],
//! [`partial_pieces::PartialPieces::receive`]); the session writes it
//! ([`storage::Storage::write`]); the last block of a piece asks for
//! `verify_piece` ([`storage::Storage::verify_piece`]), and `send_haves`
//! tells every peer with HAVE. A PIECE that answers no request of ours never
//! reaches the disk. A piece that fails its hash check (`on_piece_failed`)
//! is blamed on its sender only when it had one; with several, each
//! sender's blocks are recorded ([`mod@smart_ban`]), the piece is fetched
//! again from a single peer, and once it passes `judge_suspect_piece`
//! compares the records with the good blocks: only a peer proven to have
//! sent bad blocks gets a strike ([`peer_list::MAX_STRIKES`] strikes ban it).
//!
//! # Where each BEP lives
//!
//! | BEP | what | module |
//! | --- | --- | --- |
//! | 3 | bencoding | [`bencode`] |
//! | 3 | metainfo files, info-hash, pieces | [`metainfo`], [`metainfo::layout`] |
//! | 3 | handshake and peer messages | [`wire`] |
//! | 3 | bitfield of pieces | [`bitfield`] |
//! | 3 | choking, interest, requests, the peer wire rules | [`torrent`], [`peer`], [`choker`], [`mod@partial_pieces`] |
//! | 3 | HTTP tracker announce | [`tracker::announce`], [`tracker::http`] |
//! | 5 | the DHT: node ids, KRPC, routing table, lookups, tokens, announced peers, a sans-IO node; its UDP socket, saved state and PORT messages in the session; never for private torrents | [`dht`], [`session`] |
//! | 6 | fast extension: HAVE ALL/NONE, REJECT, the canonical ALLOWED FAST set, SUGGEST as a hint | [`wire`], [`torrent`] |
//! | 7 | IPv6: tracker peers (`peers6`), our address as `ipv6=`, PEX `added6`; the listening socket takes both families and peer addresses are kept canonical (`::ffff:a.b.c.d` as IPv4) | [`tracker::announce`], [`mod@pex`], [`peer_list`], [`session`] |
//! | 9 | magnet links: `xt=urn:btih:` (hex, base32), `dn`, `tr`, `x.pe` | [`magnet`] |
//! | 9 | ut_metadata messages and fetching the info dictionary from peers: a torrent core before its metadata, liars banned, the `.torrent` saved | [`metadata`], [`torrent`], [`session`] |
//! | 9, 10 | serving our info dictionary: ut_metadata and metadata_size offered in our handshake, data and reject replies, capped per peer; none for private torrents | [`torrent`], [`wire::extension`] |
//! | 10 | extension protocol handshake (`reqq`) | [`wire`], [`wire::extension`] |
//! | 11 | peer exchange (ut_pex): the codec and per-peer diffs; one message a minute per peer listing connected peers' listen addresses; none for private torrents | [`mod@pex`], [`torrent`] |
//! | 12 | `announce-list` tiers; tier order and failover | [`metainfo`], [`create`], [`tracker::tiers`] |
//! | 15 | UDP tracker protocol: packets, connect/announce/scrape exchange | [`tracker::udp`] |
//! | 19 | `url-list` web seeds: file URLs, range mapping, a sans-IO HTTP/1.1 range client; driven by the session as pseudo-peers | [`metainfo`], [`mod@web_seed`], [`create`] |
//! | 23 | compact tracker peer lists | [`tracker::announce`] |
//! | 27 | `private` flag | [`metainfo`], [`create`] |
//! | 47 | padding files (with or without `path`, BitComet names); symlinks hold no data and are never created | [`metainfo`], [`storage`] |
//! | 48 | HTTP scrape | [`tracker::scrape`], [`tracker::http`] |
//! | 52 | hybrid torrents: the v2 `file tree` must agree with the v1 files (v2-only torrents are refused) | [`metainfo`] |

#![forbid(unsafe_code)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod client;
pub mod close_reason;
pub mod create;
pub mod daemon;
pub mod dht;
pub mod error;
pub mod hash;
pub mod lock;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod partial_pieces;
pub mod peer;
pub mod peer_list;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod ratelimit;
pub mod resume;
pub mod rng;
pub mod rpc;
pub mod session;
pub mod smart_ban;
pub mod storage;
#[cfg(test)]
mod test_util;
pub mod torrent;
pub mod torrent_file;
pub mod trace;
pub mod tracker;
pub mod ui;
pub mod units;
pub mod web_seed;
pub mod wire;

pub use client::{download, Download, Progress, StopHandle};
pub use error::Error;
pub use session::Outcome;
pub use torrent_file::load_torrent;
