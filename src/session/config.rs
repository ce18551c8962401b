//! What a download session is told to do: the options of `pollen TORRENT`.
//!
//! Layer 2 data; built by the command line (layer 3) or a library caller.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::picker::Strategy;

pub use crate::torrent::DEFAULT_MAX_PEERS;

/// Default bytes hashed per loop pass by the start-up check, so peers keep
/// being served during a long check: about 8 ms at 1 GB/s of SHA-1, 80 ms
/// on a small ARM box. A piece larger than this (up to 512 MiB) is hashed
/// across several passes; pieces the resume state vouches for cost nothing.
pub const DEFAULT_CHECK_BYTES_PER_PASS: u32 = 8 * 1024 * 1024;

/// Settings for one session.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory the torrent's files are written under.
    pub dest: PathBuf,
    /// Address to listen on for incoming peers (`--bind`). `::` (the
    /// default) is every address of both families: one IPv6 socket that
    /// takes IPv4 peers too, or `0.0.0.0` on a host without IPv6. Any other
    /// address serves its own family only (`0.0.0.0`: every IPv4 address).
    pub listen_ip: IpAddr,
    /// Port to listen on; 0 picks any free port.
    pub port: u16,
    /// Peers to connect to directly, besides any a tracker returns.
    pub peers: Vec<SocketAddr>,
    /// Announce to the torrent's trackers.
    pub use_trackers: bool,
    /// Extra trust for HTTPS trackers (`--tracker-ca FILE`).
    pub tracker_ca: Option<crate::tracker::http::TrackerCa>,
    /// Tracker URLs given by hand (`--tracker`), tried before the torrent's.
    pub trackers: Vec<String>,
    /// Keep uploading after the download completes (until stopped, or
    /// until a seeding limit below is met).
    pub seed: bool,
    /// Stop seeding a torrent once it has uploaded this many times its
    /// size (`--seed-ratio`; counting this session's upload only, see
    /// [`crate::torrent::SeedLimits`]). Setting it implies `seed`.
    pub seed_ratio: Option<f64>,
    /// Stop seeding a torrent after it has seeded this long in this session
    /// (`--seed-time`). Setting it implies `seed`. With both limits, the
    /// first one met ends the torrent's seeding; once every torrent has
    /// met one, [`super::Session::run`] returns `Outcome::Complete`.
    pub seed_time: Option<Duration>,
    /// Most connected peers at once.
    pub max_peers: usize,
    /// Bytes the start-up check hashes per loop pass (at least one byte is
    /// always hashed): smaller keeps a slow box more responsive during a
    /// check, larger finishes the check in fewer passes.
    pub check_bytes_per_pass: u32,
    /// Run a DHT node (BEP 5) to find peers for torrents that are not
    /// private, and announce ours (`--no-dht` turns it off).
    pub dht: bool,
    /// DHT nodes to join through, as `HOST:PORT` (`--dht-bootstrap`); the
    /// nodes saved by the last run are used too. Empty: only the saved
    /// ones (the CLI adds the public routers in release builds).
    pub dht_bootstrap: Vec<String>,
    /// Piece selection strategy.
    pub strategy: Strategy,
    /// Start endgame once this percentage of pieces is verified
    /// (`--endgame PCT`); by default it starts when every missing block
    /// has been requested.
    pub endgame_percent: Option<u8>,
    /// Choking algorithm while downloading (`--choker tft|propshare`).
    pub choker: crate::choker::ChokerKind,
    /// Download rate limit in bytes per second (`--max-down`).
    pub max_down: Option<u64>,
    /// Upload rate limit in bytes per second (`--max-up`).
    pub max_up: Option<u64>,
    /// Re-check every piece on disk, ignoring the saved resume state (`--check`).
    pub force_check: bool,
    /// Delete this torrent's files and resume state before starting (`--clean`).
    pub clean: bool,
    /// Replace a file already at a torrent file's path that none of the
    /// torrent's pieces match (`--overwrite`): it is deleted and downloaded
    /// afresh, and one longer than the torrent's is cut to length. Without
    /// it the session stops with [`crate::Error::Refused`] before writing
    /// to it ([`crate::storage::survey`] says which files are judged).
    /// Directories in the way are never deleted.
    pub overwrite: bool,
    /// `--trace [FILE]`: where trace lines go (`None`: no tracing;
    /// `Some(None)`: standard error) and which events to keep.
    pub trace: Option<(Option<PathBuf>, crate::trace::Filter)>,
    /// Print the status line on stderr.
    pub show_status: bool,
    /// Run as a daemon does (`pollen daemon`): the loop never ends because
    /// every torrent is done (only a stop ends it), and a torrent's own
    /// failure (a disk error, a file in the way, bad metadata) stops that
    /// torrent with its error shown, not the session.
    pub keep_running: bool,
}

impl Config {
    /// The seeding limits (`seed_ratio`, `seed_time`) as one value.
    pub fn seed_limits(&self) -> crate::torrent::SeedLimits {
        crate::torrent::SeedLimits {
            ratio: self.seed_ratio,
            time: self.seed_time,
        }
    }

    /// Whether complete torrents are seeded: `seed`, or a seeding limit set.
    pub fn seeds(&self) -> bool {
        self.seed || self.seed_limits().is_set()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dest: PathBuf::from("."),
            listen_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 0,
            peers: Vec::new(),
            use_trackers: true,
            trackers: Vec::new(),
            tracker_ca: None,
            seed: false,
            seed_ratio: None,
            seed_time: None,
            max_peers: DEFAULT_MAX_PEERS,
            check_bytes_per_pass: DEFAULT_CHECK_BYTES_PER_PASS,
            dht: true,
            dht_bootstrap: Vec::new(),
            strategy: Strategy::RarestFirst,
            endgame_percent: None,
            choker: crate::choker::ChokerKind::TitForTat,
            max_down: None,
            max_up: None,
            force_check: false,
            clean: false,
            overwrite: false,
            trace: None,
            show_status: false,
            keep_running: false,
        }
    }
}
