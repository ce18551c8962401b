//! The `--tui` screen: a full-screen view of one torrent, drawn with plain
//! ANSI sequences (no UI crate, so it also works over a serial console).
//!
//! Layer 0: pure. The session fills a [`Snapshot`] once a second and prints
//! [`render()`]`(&snapshot, width, height)`; this module never touches the
//! terminal, a socket or the clock. Rendering is a function of its inputs,
//! so it is tested from fixed snapshots.
//!
//! The screen, top to bottom:
//!
//! ```text
//! 44.9%  downloading  ubuntu-24.04-desktop-amd64.iso          (bold)
//! 2.6 GiB / 5.8 GiB  down 4.2 MiB/s  up 512.0 KiB/s  ETA 13m 15s  elapsed 1h 02m
//! peers 40 of 87  swarm 120 seeders, 34 leechers  tracker http://t/announce: ok
//! pieces 2400, ~4 per cell: # done  = part done  + in flight  0-9 missing (peers that have it)
//! #################################################+++5=1==6=0=1==1=0+3==1=4==4=0=1==1=0=1==
//! address              client                flags downloaded uploaded    down/s  (reverse)
//! 80.0.0.0:6881        qBittorrent 4.6.5     DU       1.7 GiB 34.3 MiB   2.9 MiB
//! 83.37.11.53:6978     Transmission 3.00     D      858.4 MiB      0 B   1.4 MiB
//! ... and 23 more
//! flags: D/d download, U/u upload (unchoked/choked)  K/? uninterested  S snubbed  O optimistic
//! ```
//!
//! Invariants of [`render()`]'s output, whatever the snapshot holds: at most
//! `height` lines, none wider than `width - 1` columns (the last column stays
//! blank so no terminal auto-wraps or scrolls), and no escape sequence but
//! the renderer's own: names from torrents and peer ids are escaped
//! ([`text::sanitize`]) before they are drawn.
//!
//! Files: [`snapshot`] (the input), [`render`](mod@render) (layout and
//! header), [`piece_map`], [`peer_table`], [`client_name`](mod@client_name)
//! (peer id to client), [`text`] (escaping and column widths).

pub mod client_name;
pub mod peer_table;
pub mod piece_map;
pub mod render;
pub mod snapshot;
pub mod text;

pub use client_name::client_name;
pub use render::render;
pub use snapshot::{PeerRow, PieceState, Snapshot};

/// What to print once before the first frame: switch to the alternate
/// screen (the user's scrollback is kept) and hide the cursor.
pub const ENTER: &str = "\x1b[?1049h\x1b[?25l";

/// What to print once on exit (also after an error): show the cursor and
/// return to the normal screen.
pub const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
