//! The input of the `--tui` screen: everything one frame shows, as values.
//!
//! Layer 0: pure data. The session copies its state into a [`Snapshot`]
//! once a second; nothing here refers back to connections or the clock, so
//! tests can build snapshots by hand.

use std::net::SocketAddr;
use std::time::Duration;

/// One frame's worth of torrent state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The torrent's name (from the metainfo: untrusted, escaped when drawn).
    pub name: String,
    /// What pollen is doing, as the status line words it (`downloading`,
    /// `seeding`, `stalled: no peers`…).
    pub activity: String,
    /// Time since the session started.
    pub elapsed: Duration,
    /// Verified bytes.
    pub done_bytes: u64,
    /// Torrent size.
    pub total_bytes: u64,
    /// Download rate, bytes per second.
    pub down_rate: u64,
    /// Upload rate, bytes per second.
    pub up_rate: u64,
    /// Time left at the current rate; `None` when unknown (no download rate).
    pub eta: Option<Duration>,
    /// One line about the tracker, e.g. `http://t/announce: ok, next in 28 min`
    /// (may contain tracker text: escaped when drawn).
    pub tracker_status: String,
    /// Swarm size as the tracker last reported it: (seeders, leechers).
    pub swarm: Option<(u32, u32)>,
    /// Peer addresses we know of.
    pub peers_known: usize,
    /// Connected peers (handshake done).
    pub peers_connected: usize,
    /// The state of every piece, in piece order (may be empty).
    pub pieces: Vec<PieceState>,
    /// How many connected peers have each piece: the same length as
    /// `pieces`, or empty when unknown (then the map shows no shading).
    pub availability: Vec<u32>,
    /// The connected peers, in any order (the table sorts them).
    pub peers: Vec<PeerRow>,
}

/// What we have of one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PieceState {
    /// Downloaded and verified.
    Done,
    /// Some of its blocks are requested or received, not yet verified.
    InFlight,
    /// Nothing of it yet.
    #[default]
    Missing,
}

/// One connected peer, as a row of the peer table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// The peer's address.
    pub addr: SocketAddr,
    /// Its peer id from the handshake (`None` before the handshake); the
    /// table shows [`client_name`](super::client_name()) of it.
    pub peer_id: Option<[u8; 20]>,
    /// We choke the peer (BEP 3: we do not serve its requests).
    pub am_choking: bool,
    /// We are interested in the peer's pieces.
    pub am_interested: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// The peer is interested in our pieces.
    pub peer_interested: bool,
    /// The peer has sent us nothing for a while although it unchoked us.
    pub snubbed: bool,
    /// The peer holds our optimistic unchoke slot.
    pub optimistic: bool,
    /// Payload bytes received from the peer.
    pub downloaded_bytes: u64,
    /// Payload bytes sent to the peer.
    pub uploaded_bytes: u64,
    /// Download rate from the peer, bytes per second.
    pub down_rate: u64,
    /// Upload rate to the peer, bytes per second.
    pub up_rate: u64,
    /// Pieces we are downloading from the peer right now.
    pub pieces_in_flight: u32,
    /// Our requests the peer has not answered yet.
    pub requests_to_peer: u32,
    /// The peer's requests we have not served yet.
    pub requests_from_peer: u32,
}

impl PeerRow {
    /// A fresh connection to `addr` in BEP 3's initial state: both sides
    /// choking, neither interested, nothing transferred.
    pub fn new(addr: SocketAddr) -> PeerRow {
        PeerRow {
            addr,
            peer_id: None,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            snubbed: false,
            optimistic: false,
            downloaded_bytes: 0,
            uploaded_bytes: 0,
            down_rate: 0,
            up_rate: 0,
            pieces_in_flight: 0,
            requests_to_peer: 0,
            requests_from_peer: 0,
        }
    }
}
