//! The stateful fuzz target: a [`Torrent`] core driven through an arbitrary
//! sequence of events (peers joining and leaving, any message from any peer,
//! time passing, the loop's phases, hash checks passing or failing), with
//! the session's part played here: actions carried out, blocks "written",
//! closes turned into disconnects. After every event the core must not
//! have panicked and [`Torrent::check_invariants`] must hold: every request
//! in flight belongs to a connected peer, and the verified pieces, the
//! picker and the pieces in progress agree.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pollen::bitfield::Bitfield;
use pollen::close_reason::CloseReason;
use pollen::hash::Sha1Hash;
use pollen::metainfo::Metainfo;
use pollen::picker::Strategy;
use pollen::rng::Rng;
use pollen::torrent::{Action, Handled, OutMessage, PeerKey, Torrent, TorrentConfig};
use pollen::wire::{BlockRequest, Handshake, Message};

/// Pieces of the fuzzed torrent: few, so random piece numbers hit real ones.
const PIECES: u32 = 8;
/// Its piece length: two 16 KiB blocks.
const PIECE_LEN: u32 = 32 * 1024;
/// The last piece is short: one partial block.
const LAST_PIECE_LEN: u32 = 5_000;
/// Most peers connected at once (the core's own cap is larger).
const MAX_PEERS: usize = 6;
/// Most events taken from one input: bounds a run's time.
const MAX_EVENTS: usize = 2_000;

/// Reads the input a byte at a time; zeros once it is used up.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A piece index: mostly a real one, sometimes any number.
    fn piece(&mut self) -> u32 {
        let b = self.byte();
        if b < 240 {
            u32::from(b) % PIECES
        } else {
            self.u32()
        }
    }

    /// A block offset: mostly a real one, sometimes any number.
    fn begin(&mut self) -> u32 {
        match self.byte() % 8 {
            0..=3 => 0,
            4..=6 => 16 * 1024,
            _ => self.u32(),
        }
    }

    /// A block length: mostly a real one, sometimes any number.
    fn len(&mut self) -> u32 {
        match self.byte() % 8 {
            0..=4 => 16 * 1024,
            5 | 6 => LAST_PIECE_LEN,
            _ => self.u32() % (64 * 1024),
        }
    }

    fn request(&mut self) -> BlockRequest {
        BlockRequest {
            piece: self.piece(),
            begin: self.begin(),
            len: self.len(),
        }
    }
}

/// The fuzzed torrent's metainfo, built once.
fn meta() -> Arc<Metainfo> {
    static META: OnceLock<Arc<Metainfo>> = OnceLock::new();
    META.get_or_init(|| {
        let length = u64::from(PIECE_LEN) * u64::from(PIECES - 1) + u64::from(LAST_PIECE_LEN);
        let mut info = format!(
            "d6:lengthi{length}e4:name4:fuzz12:piece lengthi{PIECE_LEN}e6:pieces{}:",
            PIECES * 20
        )
        .into_bytes();
        for piece in 0..PIECES {
            info.extend_from_slice(&[u8::try_from(piece).unwrap(); 20]);
        }
        info.extend_from_slice(b"e");
        let mut torrent = b"d4:info".to_vec();
        torrent.extend_from_slice(&info);
        torrent.extend_from_slice(b"e");
        Arc::new(Metainfo::from_bytes(&torrent).expect("the fuzz torrent parses"))
    })
    .clone()
}

/// What a run did, so a test can see the sequence reached deep states.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Events handled.
    pub events: usize,
    /// Blocks the core had written.
    pub blocks_written: usize,
    /// Hash checks passed and failed.
    pub checks_passed: usize,
    pub checks_failed: usize,
    /// Peers closed by the core or the input.
    pub disconnects: usize,
}

/// The session's view of the core: which keys are connected, and where.
struct Driver {
    summary: Summary,
    torrent: Torrent,
    now: Instant,
    /// Connected peers (handshake done, not yet disconnected).
    peers: BTreeMap<PeerKey, SocketAddr>,
    /// Peers the core asked to close, disconnected at the next cleanup.
    closing: Vec<(PeerKey, CloseReason)>,
    next_key: PeerKey,
    /// Whether the next hash checks pass (flipped by the input).
    checks_pass: bool,
    /// The REQUESTs the core sent to each peer, oldest first, so an event
    /// can answer one as an honest peer would.
    asked: BTreeMap<PeerKey, Vec<BlockRequest>>,
}

impl Driver {
    /// Carries out every action the core queued, as the session does.
    fn apply_actions(&mut self) {
        while let Some(action) = self.torrent.poll_action() {
            match action {
                Action::Send {
                    peer,
                    message: OutMessage::Request(request),
                } => {
                    let asked = self.asked.entry(peer).or_default();
                    if asked.len() < 1_000 {
                        asked.push(request);
                    }
                }
                Action::Send {
                    peer,
                    message: OutMessage::Cancel(request),
                } => {
                    if let Some(asked) = self.asked.get_mut(&peer) {
                        asked.retain(|r| *r != request);
                    }
                }
                Action::Send { .. } | Action::PieceVerified { .. } | Action::Note(_) => {}
                Action::MetadataReceived { .. } => {}
                Action::Close { peer, reason } => self.closing.push((peer, reason)),
                Action::CheckPiece { piece } => {
                    if self.checks_pass {
                        self.summary.checks_passed += 1;
                    } else {
                        self.summary.checks_failed += 1;
                    }
                    self.torrent.handle_piece_checked(piece, self.checks_pass);
                }
                Action::DigestBlocks {
                    piece,
                    blocks,
                    purpose,
                } => {
                    let digests = blocks
                        .iter()
                        .map(|&b| (b, Sha1Hash([u8::try_from(b % 3).unwrap_or(0); 20])))
                        .collect();
                    self.torrent.handle_block_digests(piece, purpose, digests);
                }
            }
        }
    }

    /// The cleanup phase: closed peers are disconnected.
    fn cleanup(&mut self) {
        while !self.closing.is_empty() {
            for (key, reason) in std::mem::take(&mut self.closing) {
                self.asked.remove(&key);
                if let Some(addr) = self.peers.remove(&key) {
                    self.summary.disconnects += 1;
                    self.torrent
                        .handle_disconnected(key, addr, &reason, self.now);
                }
            }
            self.apply_actions();
        }
    }

    fn pick_peer(&self, b: u8) -> Option<PeerKey> {
        let n = self.peers.len();
        if n == 0 {
            return None;
        }
        self.peers.keys().nth(usize::from(b) % n).copied()
    }

    /// Hands a message from `key` to the core; a block it wants written
    /// is "written" at once.
    fn deliver(&mut self, key: PeerKey, message: Message<'_>) {
        if let Handled::Write(write) = self.torrent.handle_message(key, message, self.now) {
            self.summary.blocks_written += 1;
            self.torrent.handle_block_written(write);
        }
    }

    /// One event taken from the input.
    fn step(&mut self, input: &mut Bytes<'_>) {
        match input.byte() % 14 {
            0 => {
                if self.peers.len() >= MAX_PEERS {
                    return;
                }
                let key = self.next_key;
                self.next_key += 1;
                let who = input.byte();
                let addr = SocketAddr::from(([127, 0, 0, who % 4 + 1], 6881));
                let mut handshake = Handshake::new(meta().info_hash.0, [who % 5; 20]);
                let features = input.byte();
                if features & 1 != 0 {
                    handshake = handshake.with_fast();
                }
                if features & 2 != 0 {
                    handshake = handshake.with_extensions();
                }
                self.peers.insert(key, addr);
                self.torrent
                    .handle_handshake(key, addr, &handshake, self.now);
            }
            1 => {
                if let Some(key) = self.pick_peer(input.byte()) {
                    self.closing.push((key, CloseReason::PeerClosed));
                }
            }
            2..=5 => {
                let Some(key) = self.pick_peer(input.byte()) else {
                    return;
                };
                let kind = input.byte();
                let bitfield = [input.byte()];
                let data = vec![0u8; usize::try_from(input.len() % (17 * 1024)).unwrap_or(0)];
                let payload = [input.byte(), input.byte(), input.byte()];
                let message = match kind % 18 {
                    0 => Message::KeepAlive,
                    1 => Message::Choke,
                    2 => Message::Unchoke,
                    3 => Message::Interested,
                    4 => Message::NotInterested,
                    5 => Message::Have {
                        piece: input.piece(),
                    },
                    6 => Message::Bitfield(&bitfield),
                    7 => Message::Request(input.request()),
                    8 | 9 => Message::Piece {
                        piece: input.piece(),
                        begin: input.begin(),
                        data: &data,
                    },
                    10 => Message::Cancel(input.request()),
                    11 => Message::Port(6881),
                    12 => Message::Suggest {
                        piece: input.piece(),
                    },
                    13 => Message::HaveAll,
                    14 => Message::HaveNone,
                    15 => Message::Reject(input.request()),
                    16 => Message::AllowedFast {
                        piece: input.piece(),
                    },
                    _ => Message::Extended {
                        id: payload[0] % 4,
                        payload: &payload,
                    },
                };
                self.deliver(key, message);
            }
            6 | 7 => {
                self.torrent.request_blocks(self.now, None);
            }
            8 => {
                let seconds = u64::from(input.byte() % 64);
                self.now += Duration::from_millis(seconds * 500);
                self.torrent.handle_timeout(self.now);
                self.torrent.check_timeouts(self.now);
            }
            9 => {
                let stalled = input.byte();
                self.torrent
                    .rechoke(self.now, &|key| (key as u8) & stalled != 0);
                self.torrent.send_haves();
            }
            10 => {
                if let Some(key) = self.pick_peer(input.byte()) {
                    for _ in 0..input.byte() % 4 {
                        let _ = self.torrent.serve_next(key, None, self.now);
                    }
                }
                self.torrent.send_pex(self.now);
            }
            11 | 12 => {
                // A peer answers one of our requests, as an honest one does
                // (or, with the top bit, rejects it).
                let Some(key) = self.pick_peer(input.byte()) else {
                    return;
                };
                let which = input.byte();
                let Some(asked) = self.asked.get_mut(&key).filter(|a| !a.is_empty()) else {
                    return;
                };
                let request = asked.remove(usize::from(which & 0x7f) % asked.len());
                if which & 0x80 != 0 {
                    self.deliver(key, Message::Reject(request));
                } else {
                    let data = vec![0u8; usize::try_from(request.len).unwrap_or(0)];
                    self.deliver(
                        key,
                        Message::Piece {
                            piece: request.piece,
                            begin: request.begin,
                            data: &data,
                        },
                    );
                }
            }
            _ => {
                self.checks_pass = !input.byte().is_multiple_of(4);
            }
        }
        self.apply_actions();
        self.cleanup();
    }
}

/// The stateful target: see the module doc.
pub fn torrent_core(data: &[u8]) {
    drive_core(data);
}

/// Runs the events of `data` through a core, checking the invariants
/// after each; returns what happened.
pub fn drive_core(data: &[u8]) -> Summary {
    let mut input = Bytes { data };
    let setup = input.byte();
    let strategy = match setup % 3 {
        0 => Strategy::RarestFirst,
        1 => Strategy::Sequential,
        _ => Strategy::Random,
    };
    let config = TorrentConfig {
        strategy,
        endgame_percent: (setup & 4 != 0).then_some(50),
        ..TorrentConfig::default()
    };
    let now = Instant::now();
    let meta = meta();
    let mut torrent = Torrent::new(
        meta,
        config,
        Bitfield::new(PIECES),
        Rng::new(u64::from(setup)),
        now,
    );
    // The start-up check: the input says which pieces are already on disk.
    let on_disk = input.byte();
    for piece in 0..PIECES {
        torrent.handle_existing_piece(piece, on_disk & (1 << piece) != 0);
    }
    torrent.handle_check_done();
    let mut driver = Driver {
        summary: Summary::default(),
        torrent,
        now,
        peers: BTreeMap::new(),
        closing: Vec::new(),
        next_key: 0,
        checks_pass: true,
        asked: BTreeMap::new(),
    };
    driver.apply_actions();
    for _ in 0..MAX_EVENTS {
        if input.is_empty() {
            break;
        }
        driver.step(&mut input);
        driver.summary.events += 1;
        if let Err(broken) = driver.torrent.check_invariants() {
            panic!("torrent core invariant broken: {broken}");
        }
    }
    driver.summary
}
