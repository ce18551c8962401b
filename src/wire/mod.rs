//! The peer wire protocol: turning the bytes of a peer connection into
//! handshakes and messages, and back.
//!
//! Layer 0: pure (no I/O, no clock). Implements the peer protocol of BEP 3,
//! with PORT (BEP 5), the fast extension (BEP 6) and the extension protocol
//! message (BEP 10).
//!
//! The BEP 10 extension handshake's dictionary (our `reqq`, the peer's) is
//! read and written by [`extension`].
//!
//! A connection starts with one 68-byte [`Handshake`] each way, then carries
//! length-prefixed [`Message`]s until it closes. The session appends what it
//! reads to a buffer and calls [`Handshake::decode`] once, then
//! [`decode_frame`] in a loop, draining the bytes each call reports as
//! consumed, until it returns `Ok(None)` (wait for more bytes).
//!
//! Both decoders are written for hostile peers: they never panic, never
//! index unchecked, and refuse a bad length or protocol string from the first
//! bytes that show it, so a peer cannot make the session buffer a frame it
//! will refuse anyway. [`FrameLimits`] holds the caps; its
//! [`max_frame_len`](FrameLimits::max_frame_len) bounds the read buffer.
//!
//! Any [`WireError`] means the peer broke the protocol: the session closes
//! that peer, and only that peer. The codec checks shapes only; piece indices,
//! block ranges and which messages are allowed when are checked by the session.

pub mod extension;
mod handshake;
mod message;

use std::fmt;

pub use handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL};
pub use message::{
    decode_frame, encode_piece_header, BlockRequest, FrameLimits, Message, LENGTH_PREFIX_LEN,
};

/// A peer broke the wire protocol; the session closes that peer.
///
/// Lengths are frame lengths: the value of the length prefix (id byte plus payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The handshake's first byte (the protocol string length) is not 19.
    BadProtocolLength(u8),
    /// The handshake's protocol string is not `BitTorrent protocol`.
    BadProtocolString,
    /// A length prefix above the largest frame of any message.
    FrameTooLong {
        /// The length prefix.
        len: u32,
        /// The largest frame length allowed.
        max: u32,
    },
    /// A fixed-size message whose length prefix is not its size.
    WrongLength {
        /// The message id.
        id: u8,
        /// The length prefix.
        len: u32,
        /// The size of that message.
        expected: u32,
    },
    /// A BITFIELD whose length does not match the torrent's piece count.
    BitfieldLength {
        /// The length prefix.
        len: u32,
        /// One byte of id plus one bit per piece, rounded up to whole bytes.
        expected: u32,
        /// Pieces in the torrent.
        piece_count: u32,
    },
    /// A variable-size message (PIECE, EXTENDED, unknown) over its cap.
    TooLong {
        /// The message id.
        id: u8,
        /// The length prefix.
        len: u32,
        /// The cap for that message.
        max: u32,
    },
    /// A message too short to hold its fields (a PIECE without piece and begin).
    TooShort {
        /// The message id.
        id: u8,
        /// The length prefix.
        len: u32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::BadProtocolLength(len) => {
                write!(f, "handshake protocol length is {len}, expected 19")
            }
            WireError::BadProtocolString => {
                write!(
                    f,
                    "handshake protocol string is not \"BitTorrent protocol\""
                )
            }
            WireError::FrameTooLong { len, max } => write!(
                f,
                "frame of {len} bytes exceeds the {max}-byte limit for any message"
            ),
            WireError::WrongLength { id, len, expected } => write!(
                f,
                "{} frame has length {len}, expected {expected}",
                IdName(id)
            ),
            WireError::BitfieldLength {
                len,
                expected,
                piece_count,
            } => write!(
                f,
                "BITFIELD frame has length {len}, expected {expected} for {piece_count} pieces"
            ),
            WireError::TooLong { id, len, max } => write!(
                f,
                "frame of {len} bytes exceeds the {max}-byte limit for {}",
                IdName(id)
            ),
            WireError::TooShort { id, len } => write!(
                f,
                "{} frame has length {len}, too short for its fields",
                IdName(id)
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Shows a message id by its BEP name ("PIECE"), or by number when unknown.
struct IdName(u8);

impl fmt::Display for IdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match message::name_of(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown message id {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::message::tests::every_message;
    use super::*;

    /// A handshake followed by one of every message, and those parts re-encoded one by one.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let handshake = Handshake::new([7; 20], [9; 20]).with_fast().encode();
        let mut parts = vec![handshake.to_vec()];
        for message in every_message() {
            let mut frame = Vec::new();
            message.encode(&mut frame);
            parts.push(frame);
        }
        (parts.concat(), parts)
    }

    /// The read side of a session: a growing buffer, drained as whole frames decode.
    #[derive(Default)]
    struct Receiver {
        buf: Vec<u8>,
        handshake_done: bool,
        /// What was decoded, re-encoded (decoded messages borrow `buf`, which is drained).
        received: Vec<Vec<u8>>,
    }

    impl Receiver {
        fn feed(&mut self, bytes: &[u8]) {
            self.buf.extend_from_slice(bytes);
            let limits = FrameLimits::for_pieces(30);
            if !self.handshake_done {
                match Handshake::decode(&self.buf).unwrap() {
                    None => return,
                    Some(handshake) => {
                        self.received.push(handshake.encode().to_vec());
                        self.buf.drain(..HANDSHAKE_LEN);
                        self.handshake_done = true;
                    }
                }
            }
            while let Some((message, used)) = decode_frame(&self.buf, &limits).unwrap() {
                let mut frame = Vec::new();
                message.encode(&mut frame);
                self.received.push(frame);
                self.buf.drain(..used);
            }
        }
    }

    #[test]
    fn stream_split_at_every_byte_decodes_the_same() {
        let (bytes, parts) = stream();
        for cut in 0..=bytes.len() {
            let mut receiver = Receiver::default();
            receiver.feed(&bytes[..cut]);
            receiver.feed(&bytes[cut..]);
            assert_eq!(receiver.received, parts, "cut at {cut}");
            assert!(receiver.buf.is_empty());
        }
    }

    #[test]
    fn stream_fed_one_byte_at_a_time_decodes_the_same() {
        let (bytes, parts) = stream();
        let mut receiver = Receiver::default();
        for byte in bytes.chunks(1) {
            receiver.feed(byte);
        }
        assert_eq!(receiver.received, parts);
        assert!(receiver.buf.is_empty());
    }
}
