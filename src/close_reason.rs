//! Why a peer connection was closed: one value per cause, with its facts.
//!
//! Layer 0: pure (no I/O, no clock). The session marks a connection for
//! closing with a [`CloseReason`] (`Conn::close`); the cleanup phase logs it,
//! tells the peer list ([`crate::peer_list::PeerList::disconnected`]) and the
//! tracer. The reason decides two things:
//!
//! - [`CloseReason::is_failure`]: the connection counts as failed for
//!   reconnect back-off (it never got through the handshake, or the peer
//!   broke the protocol). The log says `dropped:` for these, `closed:` for
//!   the rest.
//! - [`CloseReason::is_misbehaviour`]: the peer itself broke BEP 3 or sent
//!   data we cannot use. Only proven bad data (a failed hash check, see
//!   [`mod@crate::smart_ban`]) earns a strike today; the rest of these close
//!   the peer but do not count toward a ban.
//!
//! A close reason is about one peer only: it never converts into the
//! top-level [`crate::Error`], so a peer cannot end the session.

use std::fmt;
use std::io;

use crate::bitfield::BitfieldError;
use crate::wire::WireError;

/// Why a connection was closed (or refused before it was made).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Our nonblocking connect did not finish in time.
    ConnectTimeout,
    /// Our connect failed (refused, unreachable...).
    ConnectFailed(io::ErrorKind),
    /// The socket could not be registered with the event loop.
    RegisterFailed(io::ErrorKind),
    /// The peer did not send its handshake in time.
    HandshakeTimeout,
    /// The peer's handshake is malformed.
    BadHandshake(WireError),
    /// The peer's handshake names another torrent's info hash.
    WrongInfoHash,
    /// The peer's handshake carries our own peer id: we dialled ourselves.
    ConnectedToSelf,
    /// The peer's id belongs to a banned peer (seen again from another port).
    BannedPeerId,
    /// Another connection already has this peer id.
    DuplicatePeerId,
    /// The peer closed the connection before the handshakes were exchanged.
    ClosedBeforeHandshake,
    /// The peer closed an established connection.
    PeerClosed,
    /// Reading from the socket failed.
    ReadFailed(io::ErrorKind),
    /// Writing to the socket failed.
    WriteFailed(io::ErrorKind),
    /// Changing the socket's readiness interest failed.
    ReregisterFailed(io::ErrorKind),
    /// A frame that breaks the wire protocol (bad length, oversized...).
    BadMessage(WireError),
    /// A HAVE for a piece the torrent does not have.
    HaveOutOfRange {
        /// The piece index the peer sent.
        piece: u32,
        /// Pieces in the torrent.
        piece_count: u32,
    },
    /// A BITFIELD of the right length but with spare bits set.
    BadBitfield(BitfieldError),
    /// HAVE_ALL or HAVE_NONE (BEP 6) after other messages; they may only
    /// come first.
    LateHaveAllOrNone,
    /// A BEP 6 message (HAVE_ALL, HAVE_NONE, REJECT_REQUEST, ALLOWED_FAST,
    /// SUGGEST_PIECE) although the fast extension is not in force: one of
    /// the handshakes lacked its bit.
    FastMessageWithoutFast {
        /// The message's name.
        message: &'static str,
    },
    /// A REQUEST for a block outside the torrent or of a bad size.
    RequestOutOfRange {
        /// Piece index.
        piece: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Length asked for.
        len: u32,
    },
    /// A REQUEST for a piece we have not got.
    RequestForMissingPiece {
        /// Piece index.
        piece: u32,
    },
    /// Too many REQUESTs while we choke the peer (a few race our CHOKE).
    RequestsWhileChoked,
    /// A PIECE for a block outside the torrent or of a bad size.
    PieceOutOfRange {
        /// Piece index.
        piece: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Bytes of block data.
        len: u32,
    },
    /// Too many PIECEs that answer no request of ours.
    UnrequestedBlocks {
        /// Unrequested blocks received so far.
        count: u32,
    },
    /// The peer was banned: its data failed hash checks too often.
    Banned,
    /// The peer sent metadata (BEP 9) that does not hash to the
    /// info-hash, alone or as proven by a later verified copy: banned.
    BadMetadata,
    /// The peer broke the metadata exchange (BEP 9): an impossible
    /// `metadata_size`, a piece of the wrong length, a changing size.
    MetadataViolation(crate::metadata::PeerError),
    /// The peer sent nothing for the idle timeout (three minutes).
    Idle,
    /// The peer does not read what we send: our buffer for it grew too big.
    NotReading {
        /// Bytes waiting in our write buffer.
        queued_bytes: usize,
    },
    /// Both sides have every piece: seeds have nothing to give each other.
    BothComplete,
    /// Dropped for being much slower than the other peers, to make room
    /// for a waiting candidate.
    SlowPeer {
        /// Its download rate to us, bytes per second.
        rate: u64,
        /// The median rate of the peers that unchoke us, bytes per second.
        median: u64,
    },
    /// Its torrent was paused.
    TorrentPaused,
    /// Its torrent was removed from the session.
    TorrentRemoved,
    /// Replaced at the connection cap by a newcomer: it had exchanged
    /// nothing useful (see the session's `evict.rs`).
    Replaced,
    /// Our dial connected when the peer cap was already full (dials in
    /// progress do not count toward the cap; several finished at once).
    PeerLimit,
}

impl CloseReason {
    /// Whether the close counts as a failed connection for reconnect
    /// back-off: the connection never got through the handshake, or the
    /// peer broke the protocol or stopped reading. Our own choices (both
    /// complete, a slow peer replaced), an idle peer, socket errors after
    /// the handshake and a duplicate connection do not count.
    pub fn is_failure(&self) -> bool {
        match self {
            CloseReason::ConnectTimeout
            | CloseReason::ConnectFailed(_)
            | CloseReason::RegisterFailed(_)
            | CloseReason::HandshakeTimeout
            | CloseReason::ClosedBeforeHandshake
            | CloseReason::ConnectedToSelf
            | CloseReason::BannedPeerId
            | CloseReason::NotReading { .. } => true,
            CloseReason::DuplicatePeerId
            | CloseReason::PeerClosed
            | CloseReason::ReadFailed(_)
            | CloseReason::WriteFailed(_)
            | CloseReason::ReregisterFailed(_)
            | CloseReason::Idle
            | CloseReason::BothComplete
            | CloseReason::SlowPeer { .. }
            | CloseReason::TorrentPaused
            | CloseReason::TorrentRemoved
            | CloseReason::Replaced
            | CloseReason::PeerLimit => false,
            CloseReason::BadHandshake(_)
            | CloseReason::WrongInfoHash
            | CloseReason::BadMessage(_)
            | CloseReason::HaveOutOfRange { .. }
            | CloseReason::BadBitfield(_)
            | CloseReason::LateHaveAllOrNone
            | CloseReason::FastMessageWithoutFast { .. }
            | CloseReason::RequestOutOfRange { .. }
            | CloseReason::RequestForMissingPiece { .. }
            | CloseReason::RequestsWhileChoked
            | CloseReason::PieceOutOfRange { .. }
            | CloseReason::UnrequestedBlocks { .. }
            | CloseReason::Banned
            | CloseReason::BadMetadata
            | CloseReason::MetadataViolation(_) => self.is_misbehaviour(),
        }
    }

    /// Whether the peer itself broke the protocol or sent data we cannot
    /// use, as opposed to a network fault, a timeout or our own choice.
    /// Every misbehaviour is also a failure.
    pub fn is_misbehaviour(&self) -> bool {
        match self {
            CloseReason::BadHandshake(_)
            | CloseReason::WrongInfoHash
            | CloseReason::BadMessage(_)
            | CloseReason::HaveOutOfRange { .. }
            | CloseReason::BadBitfield(_)
            | CloseReason::LateHaveAllOrNone
            | CloseReason::FastMessageWithoutFast { .. }
            | CloseReason::RequestOutOfRange { .. }
            | CloseReason::RequestForMissingPiece { .. }
            | CloseReason::RequestsWhileChoked
            | CloseReason::PieceOutOfRange { .. }
            | CloseReason::UnrequestedBlocks { .. }
            | CloseReason::Banned
            | CloseReason::BadMetadata
            | CloseReason::MetadataViolation(_) => true,
            CloseReason::ConnectTimeout
            | CloseReason::ConnectFailed(_)
            | CloseReason::RegisterFailed(_)
            | CloseReason::HandshakeTimeout
            | CloseReason::ClosedBeforeHandshake
            | CloseReason::ConnectedToSelf
            | CloseReason::BannedPeerId
            | CloseReason::NotReading { .. }
            | CloseReason::DuplicatePeerId
            | CloseReason::PeerClosed
            | CloseReason::ReadFailed(_)
            | CloseReason::WriteFailed(_)
            | CloseReason::ReregisterFailed(_)
            | CloseReason::Idle
            | CloseReason::BothComplete
            | CloseReason::SlowPeer { .. }
            | CloseReason::TorrentPaused
            | CloseReason::TorrentRemoved
            | CloseReason::Replaced
            | CloseReason::PeerLimit => false,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            CloseReason::RegisterFailed(kind) => write!(f, "register failed: {kind}"),
            CloseReason::HandshakeTimeout => f.write_str("no handshake"),
            CloseReason::BadHandshake(e) => write!(f, "bad handshake: {e}"),
            CloseReason::WrongInfoHash => f.write_str("handshake for another torrent"),
            CloseReason::ConnectedToSelf => f.write_str("connected to ourselves"),
            CloseReason::BannedPeerId => f.write_str("banned peer id"),
            CloseReason::DuplicatePeerId => f.write_str("already connected to this peer id"),
            CloseReason::ClosedBeforeHandshake => {
                f.write_str("peer closed the connection before the handshake")
            }
            CloseReason::PeerClosed => f.write_str("peer closed the connection"),
            CloseReason::ReadFailed(kind) => write!(f, "read failed: {kind}"),
            CloseReason::WriteFailed(kind) => write!(f, "write failed: {kind}"),
            CloseReason::ReregisterFailed(kind) => write!(f, "reregister failed: {kind}"),
            CloseReason::BadMessage(e) => write!(f, "bad message: {e}"),
            CloseReason::HaveOutOfRange { piece, piece_count } => {
                write!(f, "HAVE for piece {piece} of {piece_count}")
            }
            CloseReason::BadBitfield(e) => write!(f, "bad BITFIELD: {e}"),
            CloseReason::LateHaveAllOrNone => {
                f.write_str("HAVE_ALL/HAVE_NONE after other messages")
            }
            CloseReason::FastMessageWithoutFast { message } => write!(
                f,
                "{message} although the fast extension (BEP 6) is not in force"
            ),
            CloseReason::RequestOutOfRange { piece, begin, len } => {
                write!(f, "REQUEST out of range: piece {piece} +{begin} ({len} B)")
            }
            CloseReason::RequestForMissingPiece { piece } => {
                write!(f, "REQUEST for piece {piece} we do not have")
            }
            CloseReason::RequestsWhileChoked => f.write_str("keeps requesting while choked"),
            CloseReason::PieceOutOfRange { piece, begin, len } => {
                write!(f, "PIECE out of range: piece {piece} +{begin} ({len} B)")
            }
            CloseReason::UnrequestedBlocks { count } => {
                write!(f, "sent {count} blocks we never asked for")
            }
            CloseReason::Banned => f.write_str("banned: sent data that failed hash checks"),
            CloseReason::BadMetadata => {
                f.write_str("banned: sent metadata that does not match the info-hash")
            }
            CloseReason::MetadataViolation(e) => write!(f, "bad metadata exchange: {e}"),
            CloseReason::Idle => f.write_str("silent for three minutes"),
            CloseReason::NotReading { queued_bytes } => {
                write!(f, "not reading what we send ({queued_bytes} bytes queued)")
            }
            CloseReason::BothComplete => f.write_str("both complete"),
            CloseReason::SlowPeer { rate, median } => write!(
                f,
                "much slower than the other peers ({rate} B/s, median {median} B/s)"
            ),
            CloseReason::TorrentPaused => write!(f, "torrent paused"),
            CloseReason::TorrentRemoved => write!(f, "torrent removed"),
            CloseReason::Replaced => f.write_str("replaced by a newcomer at the connection cap"),
            CloseReason::PeerLimit => f.write_str("connected with the peer cap already full"),
        }
    }
}

impl std::error::Error for CloseReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseReason::BadHandshake(e) | CloseReason::BadMessage(e) => Some(e),
            CloseReason::BadBitfield(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// One of every variant, for the classification tables.
    fn every_reason() -> Vec<CloseReason> {
        let kind = io::ErrorKind::ConnectionReset;
        vec![
            CloseReason::ConnectTimeout,
            CloseReason::ConnectFailed(io::ErrorKind::ConnectionRefused),
            CloseReason::RegisterFailed(io::ErrorKind::OutOfMemory),
            CloseReason::HandshakeTimeout,
            CloseReason::BadHandshake(WireError::BadProtocolString),
            CloseReason::WrongInfoHash,
            CloseReason::ConnectedToSelf,
            CloseReason::BannedPeerId,
            CloseReason::DuplicatePeerId,
            CloseReason::ClosedBeforeHandshake,
            CloseReason::PeerClosed,
            CloseReason::ReadFailed(kind),
            CloseReason::WriteFailed(kind),
            CloseReason::ReregisterFailed(kind),
            CloseReason::BadMessage(WireError::FrameTooLong { len: 9, max: 8 }),
            CloseReason::HaveOutOfRange {
                piece: 9,
                piece_count: 4,
            },
            CloseReason::BadBitfield(BitfieldError::SpareBitsSet { piece_count: 4 }),
            CloseReason::LateHaveAllOrNone,
            CloseReason::FastMessageWithoutFast {
                message: "HAVE_ALL",
            },
            CloseReason::RequestOutOfRange {
                piece: 1,
                begin: 2,
                len: 3,
            },
            CloseReason::RequestForMissingPiece { piece: 1 },
            CloseReason::RequestsWhileChoked,
            CloseReason::PieceOutOfRange {
                piece: 1,
                begin: 2,
                len: 3,
            },
            CloseReason::UnrequestedBlocks { count: 101 },
            CloseReason::Banned,
            CloseReason::BadMetadata,
            CloseReason::MetadataViolation(crate::metadata::PeerError::BadSize(0)),
            CloseReason::Idle,
            CloseReason::NotReading { queued_bytes: 1 },
            CloseReason::BothComplete,
            CloseReason::SlowPeer {
                rate: 1,
                median: 20,
            },
            CloseReason::TorrentPaused,
            CloseReason::TorrentRemoved,
            CloseReason::Replaced,
            CloseReason::PeerLimit,
        ]
    }

    #[test]
    fn display_states_the_facts() {
        let cases = [
            (
                CloseReason::PieceOutOfRange {
                    piece: 7,
                    begin: 16384,
                    len: 20000,
                },
                "PIECE out of range: piece 7 +16384 (20000 B)",
            ),
            (
                CloseReason::RequestOutOfRange {
                    piece: 3,
                    begin: 0,
                    len: 1,
                },
                "REQUEST out of range: piece 3 +0 (1 B)",
            ),
            (
                CloseReason::HaveOutOfRange {
                    piece: 12,
                    piece_count: 10,
                },
                "HAVE for piece 12 of 10",
            ),
            (
                CloseReason::UnrequestedBlocks { count: 101 },
                "sent 101 blocks we never asked for",
            ),
            (
                CloseReason::BadMessage(WireError::FrameTooLong { len: 99, max: 50 }),
                "bad message: frame of 99 bytes exceeds the 50-byte limit for any message",
            ),
            (
                CloseReason::BadBitfield(BitfieldError::SpareBitsSet { piece_count: 3 }),
                "bad BITFIELD: spare bits set in bitfield of 3 pieces",
            ),
            (
                CloseReason::ConnectFailed(io::ErrorKind::ConnectionRefused),
                "connect failed: connection refused",
            ),
            (
                CloseReason::SlowPeer {
                    rate: 10,
                    median: 5000,
                },
                "much slower than the other peers (10 B/s, median 5000 B/s)",
            ),
            (
                CloseReason::NotReading {
                    queued_bytes: 8388609,
                },
                "not reading what we send (8388609 bytes queued)",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }

    #[test]
    fn display_keeps_the_words_the_logs_are_searched_for() {
        let words = [
            (CloseReason::WrongInfoHash, "another torrent"),
            (CloseReason::Banned, "banned"),
            (CloseReason::BadMetadata, "banned"),
            (CloseReason::BothComplete, "both complete"),
            (
                CloseReason::BadMessage(WireError::BitfieldLength {
                    len: 3,
                    expected: 2,
                    piece_count: 8,
                }),
                "BITFIELD",
            ),
            (
                CloseReason::BadBitfield(BitfieldError::SpareBitsSet { piece_count: 3 }),
                "BITFIELD",
            ),
        ];
        for (reason, word) in words {
            assert!(reason.to_string().contains(word), "{reason}");
        }
        let flood = CloseReason::UnrequestedBlocks { count: 2 }.to_string();
        assert!(flood.starts_with("sent ") && flood.ends_with("blocks we never asked for"));
    }

    #[test]
    fn every_misbehaviour_is_a_failure() {
        for reason in every_reason() {
            if reason.is_misbehaviour() {
                assert!(reason.is_failure(), "{reason:?}");
            }
        }
    }

    #[test]
    fn failures_are_what_never_got_through_or_broke_the_protocol() {
        let failures: Vec<CloseReason> = every_reason()
            .into_iter()
            .filter(|r| r.is_failure() && !r.is_misbehaviour())
            .collect();
        assert_eq!(
            failures,
            [
                CloseReason::ConnectTimeout,
                CloseReason::ConnectFailed(io::ErrorKind::ConnectionRefused),
                CloseReason::RegisterFailed(io::ErrorKind::OutOfMemory),
                CloseReason::HandshakeTimeout,
                CloseReason::ConnectedToSelf,
                CloseReason::BannedPeerId,
                CloseReason::ClosedBeforeHandshake,
                CloseReason::NotReading { queued_bytes: 1 },
            ]
        );
    }

    #[test]
    fn our_choices_and_faults_after_the_handshake_are_not_failures() {
        let kind = io::ErrorKind::BrokenPipe;
        for reason in [
            CloseReason::DuplicatePeerId,
            CloseReason::PeerClosed,
            CloseReason::ReadFailed(kind),
            CloseReason::WriteFailed(kind),
            CloseReason::ReregisterFailed(kind),
            CloseReason::Idle,
            CloseReason::BothComplete,
            CloseReason::SlowPeer { rate: 0, median: 1 },
            CloseReason::TorrentPaused,
            CloseReason::TorrentRemoved,
            CloseReason::Replaced,
            CloseReason::PeerLimit,
        ] {
            assert!(!reason.is_failure(), "{reason:?}");
            assert!(!reason.is_misbehaviour(), "{reason:?}");
        }
    }

    #[test]
    fn source_is_the_wire_or_bitfield_error() {
        let wire = WireError::BadProtocolLength(0);
        let reason = CloseReason::BadHandshake(wire.clone());
        assert_eq!(
            reason.source().map(ToString::to_string),
            Some(wire.to_string())
        );
        let bitfield = CloseReason::BadBitfield(BitfieldError::SpareBitsSet { piece_count: 1 });
        assert!(bitfield.source().is_some());
        assert!(CloseReason::Banned.source().is_none());
    }
}
