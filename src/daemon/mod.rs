//! The files of `pollen daemon` (issue 16): the state directory that brings
//! every torrent back after a restart, the settings file, and the watch
//! directory.
//!
//! Layer 1: blocking disk I/O, no sockets, no mio, no clock (times come in
//! as Unix seconds). No BEP. The session owns the loop and calls these
//! between passes.
//!
//! # The state directory
//!
//! `--state DIR`, by default `$XDG_STATE_HOME/pollen` or
//! `~/.local/state/pollen` ([`state::default_root`]), created with mode 0700:
//!
//! | path | what | written by |
//! | --- | --- | --- |
//! | `daemon.lock` | the `flock` of the running daemon, its pid inside | [`StateDir::open`] |
//! | `settings.json` | the settings, Transmission's key names | [`Settings::save`] |
//! | `stats` | the totals across sessions (bencode) | [`StateDir::save_stats`] |
//! | `torrents/<hex>.torrent` | a torrent's metainfo, byte for byte | [`StateDir::save_metainfo`] |
//! | `torrents/<hex>.state` | its record: destination, paused, dates, limits, totals (bencode) | [`StateDir::save_record`] |
//!
//! Every file is replaced atomically (a `.tmp`, `fsync`, rename, directory
//! `fsync`), so a kill -9 or a power cut loses no torrent. The verified
//! pieces are not here: they stay in each destination's
//! `DEST/.pollen/<hash>.resume` ([`crate::resume`]), guarded by
//! `DEST/.pollen/<hash>.lock` ([`crate::lock`]).
//!
//! # The watch directory
//!
//! `--watch DIR`: [`watch::scan`] lists the `.torrent` files ready there,
//! [`watch::read_torrent`] reads one under the size cap, and
//! [`watch::mark`] renames it `.added` or `.invalid` once handled.

pub mod settings;
pub mod state;
pub mod watch;

pub use settings::{Settings, SettingsError, SETTINGS_FILE};
pub use state::{
    default_root, default_root_from, Loaded, SavedTorrent, StateDir, StateError, TorrentRecord,
    Totals,
};
pub use watch::Outcome;
