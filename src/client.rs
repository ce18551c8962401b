//! The library API: download (and seed) a torrent from Rust code.
//!
//! Layer 3 for programs: the same [`Session`] the command line runs,
//! configured with a builder instead of flags.
//!
//! ```no_run
//! // The simple case: everything into ./downloads, trackers as the torrent says.
//! let outcome = pollen::download("ubuntu.torrent", "downloads")?;
//! println!("{outcome:?}");
//! # Ok::<(), pollen::Error>(())
//! ```
//!
//! ```no_run
//! use pollen::Download;
//!
//! let download = Download::new("ubuntu.torrent")
//!     .dest("downloads")
//!     .port(6881)
//!     .max_up(512 * 1024)
//!     .on_progress(|p| eprintln!("{} of {} bytes", p.done_bytes, p.total_bytes));
//! let stop = download.stop_handle(); // e.g. hand it to a signal handler or a UI thread
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(3600));
//!     stop.stop();
//! });
//! download.run()?;
//! # Ok::<(), pollen::Error>(())
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::choker::ChokerKind;
use crate::error::Error;
use crate::picker::Strategy;
use crate::session::status::StatusSnapshot;
use crate::session::{Config, Outcome, ProgressCallback, Session};

/// Progress numbers, reported once a second to [`Download::on_progress`].
pub type Progress = StatusSnapshot;

/// Downloads `torrent` into `dest` with default settings and returns when
/// every piece is verified on disk.
///
/// ```
/// // A missing torrent file is a clear error, not a panic.
/// let err = pollen::download("no-such.torrent", std::env::temp_dir()).unwrap_err();
/// assert!(err.to_string().starts_with("no-such.torrent: "));
/// assert!(err.is_bad_input());
/// ```
pub fn download(torrent: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<Outcome, Error> {
    Download::new(torrent).dest(dest).run()
}

/// A download to configure and run (builder).
pub struct Download {
    torrent: PathBuf,
    config: Config,
    progress: Option<ProgressCallback>,
    stop: StopHandle,
}

pub use crate::session::StopHandle;

impl Download {
    /// A download of the torrent file at `torrent`, or of a magnet link
    /// (`magnet:?xt=urn:btih:...`, its metadata fetched from peers), into
    /// the current directory unless [`Download::dest`] says otherwise.
    ///
    /// ```
    /// let download = pollen::Download::new("x.torrent").dest("/tmp").seed(true);
    /// # let _ = download;
    /// ```
    pub fn new(torrent: impl AsRef<Path>) -> Download {
        Download {
            torrent: torrent.as_ref().to_path_buf(),
            config: Config::default(),
            progress: None,
            stop: StopHandle::new(),
        }
    }

    /// Directory the files are written under.
    pub fn dest(mut self, dir: impl AsRef<Path>) -> Download {
        self.config.dest = dir.as_ref().to_path_buf();
        self
    }

    /// Port to listen on (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Download {
        self.config.port = port;
        self
    }

    /// A peer to connect to directly; call again for more.
    pub fn peer(mut self, addr: SocketAddr) -> Download {
        self.config.peers.push(addr);
        self
    }

    /// Whether to contact the torrent's trackers (default true).
    pub fn trackers(mut self, use_trackers: bool) -> Download {
        self.config.use_trackers = use_trackers;
        self
    }

    /// Whether to run a DHT node (BEP 5) to find peers (default true;
    /// never used for private torrents).
    pub fn dht(mut self, dht: bool) -> Download {
        self.config.dht = dht;
        self
    }

    /// A DHT node to join through, as `HOST:PORT` (repeatable; the nodes
    /// saved in `DEST/.pollen/dht.state` by an earlier run are used too).
    /// The library adds no public router by itself: give one (for example
    /// from [`crate::session::PUBLIC_DHT_ROUTERS`]) to join the Internet's DHT.
    pub fn dht_bootstrap(mut self, node: impl Into<String>) -> Download {
        self.config.dht_bootstrap.push(node.into());
        self
    }

    /// Keep seeding after completion, until stopped (default false).
    pub fn seed(mut self, seed: bool) -> Download {
        self.config.seed = seed;
        self
    }

    /// Seed until each torrent has uploaded `ratio` times its size in this
    /// run (implies seeding; see [`Config::seed_ratio`]).
    pub fn seed_ratio(mut self, ratio: f64) -> Download {
        self.config.seed_ratio = Some(ratio);
        self
    }

    /// Seed for `time` after completion (implies seeding; see
    /// [`Config::seed_time`]). With a ratio too, the first limit met ends it.
    pub fn seed_time(mut self, time: std::time::Duration) -> Download {
        self.config.seed_time = Some(time);
        self
    }

    /// Piece selection strategy (default rarest-first).
    pub fn strategy(mut self, strategy: Strategy) -> Download {
        self.config.strategy = strategy;
        self
    }

    /// Choking algorithm while downloading (default tit-for-tat).
    pub fn choker(mut self, choker: ChokerKind) -> Download {
        self.config.choker = choker;
        self
    }

    /// Download limit in bytes per second.
    pub fn max_down(mut self, bytes_per_second: u64) -> Download {
        self.config.max_down = Some(bytes_per_second).filter(|&n| n > 0);
        self
    }

    /// Upload limit in bytes per second.
    pub fn max_up(mut self, bytes_per_second: u64) -> Download {
        self.config.max_up = Some(bytes_per_second).filter(|&n| n > 0);
        self
    }

    /// Replace files already at the torrent's paths that match none of its
    /// pieces (default false: the download fails with [`Error::Refused`]
    /// before writing to them). See [`crate::session::Config::overwrite`].
    pub fn overwrite(mut self, overwrite: bool) -> Download {
        self.config.overwrite = overwrite;
        self
    }

    /// Most connected peers.
    pub fn max_peers(mut self, count: usize) -> Download {
        self.config.max_peers = count.max(1);
        self
    }

    /// Calls `callback` once a second from the download's loop.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + Send + 'static) -> Download {
        self.progress = Some(Box::new(callback));
        self
    }

    /// A handle that stops the download from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Runs the download on this thread until it completes (or, with
    /// `seed(true)`, until stopped). A restart finds what an earlier run
    /// verified through its resume state without hashing it again.
    ///
    /// Fails with [`Error::AlreadyRunning`] when another pollen (a process,
    /// or another `Download` in this one) is downloading the same torrent
    /// into the same directory; with [`Error::Refused`] when a file already
    /// in the destination is not this torrent's (see [`Download::overwrite`]);
    /// with [`Error::NoSpace`] when the destination has too little room.
    /// A full disk ends the run with [`Error::Storage`], the verified pieces
    /// and their resume state kept. Under a file size limit (`ulimit -f`),
    /// ignore SIGXFSZ as the `pollen` command does: its default action kills
    /// the process before the write can fail.
    pub fn run(self) -> Result<Outcome, Error> {
        // Read (or parse) before binding: a bad torrent is named first.
        let link = self
            .torrent
            .to_str()
            .filter(|t| crate::magnet::is_magnet(t));
        let source = match link {
            Some(link) => Source::Magnet(crate::magnet::parse(link).map_err(Error::Magnet)?),
            None => Source::File(crate::load_torrent(&self.torrent)?),
        };
        let mut session = Session::bind(self.config)?;
        match source {
            Source::File(meta) => session.add_torrent(meta)?,
            Source::Magnet(magnet) => session.add_parsed_magnet(&magnet)?,
        };
        session.set_stop_handle(&self.stop);
        if let Some(callback) = self.progress {
            session.on_progress(callback);
        }
        session.run()
    }
}

/// What a [`Download`] was given, read before the session binds.
enum Source {
    /// A torrent file, read and checked.
    File(crate::metainfo::Metainfo),
    /// A magnet link, parsed.
    Magnet(crate::magnet::Magnet),
}
