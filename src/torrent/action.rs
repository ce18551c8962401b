//! What a [`super::Torrent`] asks its driver to do: the outputs of the
//! sans-IO torrent core, drained with [`super::Torrent::poll_action`].
//!
//! Layer 0: plain values. The driver (the session, or the in-memory swarm
//! of the tests) carries each one out: a message onto a socket, a close,
//! a hash check or a digest read from disk, a line in the trace.

use std::net::SocketAddr;

use crate::close_reason::CloseReason;
use crate::hash::Sha1Hash;
use crate::metainfo::{Block, PieceIndex};
use crate::wire::{BlockRequest, Message};

/// A peer as the driver knows it: an opaque key the driver chose (the
/// session uses the connection's slab key). The core never interprets it.
pub type PeerKey = usize;

/// A message the core sends. Owned, so it can wait in the action queue;
/// [`OutMessage::as_message`] borrows it as a [`Message`] to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutMessage {
    /// Nothing sent for two minutes (BEP 3).
    KeepAlive,
    /// We stop serving the peer.
    Choke,
    /// We serve the peer's requests.
    Unchoke,
    /// We want something the peer has.
    Interested,
    /// We want nothing the peer has.
    NotInterested,
    /// We verified a piece.
    Have(u32),
    /// Every piece we have, right after the handshake.
    Bitfield(Vec<u8>),
    /// We have every piece (BEP 6, in place of a BITFIELD).
    HaveAll,
    /// We have no piece yet (BEP 6, in place of a BITFIELD).
    HaveNone,
    /// We will not serve this request of the peer's (BEP 6).
    Reject(BlockRequest),
    /// The peer may request this piece even while we choke it (BEP 6).
    AllowedFast(u32),
    /// We ask for a block.
    Request(BlockRequest),
    /// We withdraw a request (endgame: another peer sent the block).
    Cancel(BlockRequest),
    /// Our BEP 10 extension handshake payload.
    ExtHandshake(Vec<u8>),
    /// A BEP 10 extension message, under the id the peer chose for it
    /// (e.g. a BEP 9 `ut_metadata` data or reject).
    Extended {
        /// The peer's extended message id for this extension.
        id: u8,
        /// The message payload (after the id).
        payload: Vec<u8>,
    },
}

impl OutMessage {
    /// The owned form of a message without payload (what a [`PeerState`]
    /// transition returns); `None` for one that carries borrowed bytes.
    ///
    /// [`PeerState`]: crate::peer::PeerState
    pub fn from_control(message: Message<'static>) -> Option<OutMessage> {
        Some(match message {
            Message::KeepAlive => OutMessage::KeepAlive,
            Message::Choke => OutMessage::Choke,
            Message::Unchoke => OutMessage::Unchoke,
            Message::Interested => OutMessage::Interested,
            Message::NotInterested => OutMessage::NotInterested,
            Message::Have { piece } => OutMessage::Have(piece),
            Message::Request(request) => OutMessage::Request(request),
            Message::Cancel(request) => OutMessage::Cancel(request),
            _ => return None,
        })
    }

    /// The wire message to encode.
    pub fn as_message(&self) -> Message<'_> {
        match self {
            OutMessage::KeepAlive => Message::KeepAlive,
            OutMessage::Choke => Message::Choke,
            OutMessage::Unchoke => Message::Unchoke,
            OutMessage::Interested => Message::Interested,
            OutMessage::NotInterested => Message::NotInterested,
            OutMessage::Have(piece) => Message::Have { piece: *piece },
            OutMessage::Bitfield(bytes) => Message::Bitfield(bytes),
            OutMessage::HaveAll => Message::HaveAll,
            OutMessage::HaveNone => Message::HaveNone,
            OutMessage::Reject(request) => Message::Reject(*request),
            OutMessage::AllowedFast(piece) => Message::AllowedFast { piece: *piece },
            OutMessage::Request(request) => Message::Request(*request),
            OutMessage::Cancel(request) => Message::Cancel(*request),
            OutMessage::ExtHandshake(payload) => Message::Extended {
                id: crate::wire::extension::HANDSHAKE_ID,
                payload,
            },
            OutMessage::Extended { id, payload } => Message::Extended { id: *id, payload },
        }
    }
}

/// Why the core wants block digests read from disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestPurpose {
    /// The piece failed with blocks from several senders: record each
    /// sender's blocks before they are fetched again (smart ban).
    RecordFailed,
    /// A piece that failed before has passed: these are the good blocks
    /// to compare the records with.
    JudgePassed,
}

/// Something worth a line in the `--trace` (the driver stamps it with the
/// phase it was running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A peer was choked or unchoked, and why.
    Choke {
        /// The peer.
        addr: SocketAddr,
        /// Unchoked (else choked).
        unchoke: bool,
        /// The reason, in words.
        why: String,
    },
    /// A new piece was picked for a peer.
    Pick {
        /// The peer it will be asked from.
        addr: SocketAddr,
        /// The piece.
        piece: u32,
        /// Availability and strategy.
        why: String,
    },
    /// A piece's hash check ended.
    Hash {
        /// The piece.
        piece: u32,
        /// It passed.
        ok: bool,
    },
    /// A HAVE went to every connected peer.
    HaveBroadcast {
        /// The piece.
        piece: u32,
        /// How many peers were told.
        peers: usize,
    },
    /// A request went unanswered too long.
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// What timed out.
        what: String,
    },
}

/// One thing the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue `message` on the peer's connection.
    Send {
        /// The peer.
        peer: PeerKey,
        /// The message.
        message: OutMessage,
    },
    /// Close the peer's connection (the driver then calls
    /// [`super::Torrent::handle_disconnected`]).
    Close {
        /// The peer.
        peer: PeerKey,
        /// Why.
        reason: CloseReason,
    },
    /// Every block of `piece` is written: hash it from disk and report
    /// with [`super::Torrent::handle_piece_checked`].
    CheckPiece {
        /// The piece.
        piece: PieceIndex,
    },
    /// Read these blocks of `piece` from disk and report their SHA-1s with
    /// [`super::Torrent::handle_block_digests`], before anything else is
    /// written to the piece.
    DigestBlocks {
        /// The piece.
        piece: PieceIndex,
        /// Block indexes within the piece.
        blocks: Vec<u32>,
        /// What the digests are for.
        purpose: DigestPurpose,
    },
    /// `piece` passed its check and is ours: the driver renames finished
    /// files and saves the resume state soon.
    PieceVerified {
        /// The piece.
        piece: PieceIndex,
    },
    /// A magnet's metadata arrived and hashes to the info-hash: the
    /// driver builds the torrent from `info` (the raw info dictionary),
    /// saves it, opens its files and calls
    /// [`super::Torrent::handle_metadata`].
    MetadataReceived {
        /// The bencoded info dictionary, verified.
        info: Vec<u8>,
    },
    /// A line for the trace.
    Note(Note),
}

/// What [`super::Torrent::handle_message`] wants done with the message's
/// payload, which only the caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Nothing more: the message is dealt with.
    Done,
    /// A new block we asked for: write the PIECE's data to disk, then call
    /// [`super::Torrent::handle_block_written`] with this value.
    Write(BlockWrite),
}

/// A block to write, handed back once it is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockWrite {
    /// The block.
    pub block: Block,
    /// The peer that sent it.
    pub(super) from: PeerKey,
    /// It was its piece's last missing block.
    pub(super) piece_complete: bool,
}

/// The SHA-1 of one block of a piece, read from disk.
pub type BlockDigest = (u32, Sha1Hash);
