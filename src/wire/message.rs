//! Peer messages: the length-prefixed frames that follow the handshake.
//!
//! Layer 0: pure (no I/O, no clock). Implements the messages of BEP 3, PORT
//! from BEP 5, the fast extension messages of BEP 6 and the EXTENDED message
//! of BEP 10.
//!
//! Every frame is a 4-byte big-endian length, then that many bytes: a one-byte
//! message id and its payload. A length of zero is a keep-alive. In this module
//! the *frame length* is the value of that prefix (id byte included, prefix
//! excluded), as in BEP 3.
//!
//! [`decode_frame`] checks lengths before anything is buffered: a prefix above
//! [`FrameLimits::max_frame_len`] is refused as soon as its 4 bytes are there,
//! and a length that does not fit the message id as soon as the id byte is.
//! Decoded messages borrow their payloads from the read buffer.
//!
//! The codec checks shapes, not meaning: a HAVE for piece 10,000 of a
//! 30-piece torrent decodes fine. Checking indices and ranges against the
//! torrent (and whether the fast extension was negotiated) is the session's
//! job. The one exception is the BITFIELD length, which needs only the piece
//! count and would otherwise be unbounded.

use super::WireError;

/// Bytes in the length prefix of every frame.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Message ids.
mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    /// BEP 5.
    pub const PORT: u8 = 9;
    /// BEP 6.
    pub const SUGGEST_PIECE: u8 = 0x0D;
    /// BEP 6.
    pub const HAVE_ALL: u8 = 0x0E;
    /// BEP 6.
    pub const HAVE_NONE: u8 = 0x0F;
    /// BEP 6.
    pub const REJECT_REQUEST: u8 = 0x10;
    /// BEP 6.
    pub const ALLOWED_FAST: u8 = 0x11;
    /// BEP 10.
    pub const EXTENDED: u8 = 0x14;
}

/// Frame length of the messages without payload (CHOKE, HAVE_ALL...): the id alone.
const BARE_LEN: u32 = 1;
/// Frame length of the messages carrying one piece index (HAVE, SUGGEST_PIECE, ALLOWED_FAST).
const PIECE_INDEX_LEN: u32 = 1 + 4;
/// Frame length of REQUEST, CANCEL and REJECT_REQUEST: piece, begin, length.
const BLOCK_REQUEST_LEN: u32 = 1 + 12;
/// Frame length of PORT: a 16-bit port.
const PORT_LEN: u32 = 1 + 2;
/// Frame length of a PIECE with no data: id, piece, begin.
const PIECE_HEADER_LEN: u32 = 1 + 8;
/// Frame length of an EXTENDED with no payload: id, extended message id.
const EXTENDED_HEADER_LEN: u32 = 1 + 1;

/// A block of a piece: what REQUEST, CANCEL and REJECT_REQUEST name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    /// Piece index.
    pub piece: u32,
    /// Byte offset of the block within the piece.
    pub begin: u32,
    /// Length of the block in bytes.
    pub len: u32,
}

/// One peer message. Payloads borrow from the buffer they were decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A zero-length frame, sent to keep an idle connection open.
    KeepAlive,
    /// The sender will not answer our requests.
    Choke,
    /// The sender will answer our requests.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing we have.
    NotInterested,
    /// The sender now has a piece.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// The pieces the sender has, as raw bytes. Its length is checked against
    /// the piece count; [`crate::bitfield::Bitfield::from_bytes`] checks the spare bits.
    Bitfield(&'a [u8]),
    /// The sender asks for a block.
    Request(BlockRequest),
    /// A block of data.
    Piece {
        /// Piece index.
        piece: u32,
        /// Byte offset of the block within the piece.
        begin: u32,
        /// The block.
        data: &'a [u8],
    },
    /// The sender withdraws a request.
    Cancel(BlockRequest),
    /// The UDP port of the sender's DHT node (BEP 5).
    Port(u16),
    /// The sender suggests we download this piece (BEP 6).
    Suggest {
        /// Piece index.
        piece: u32,
    },
    /// The sender has every piece; replaces BITFIELD (BEP 6).
    HaveAll,
    /// The sender has no piece; replaces BITFIELD (BEP 6).
    HaveNone,
    /// The sender will not answer this request (BEP 6).
    Reject(BlockRequest),
    /// We may request this piece even while choked (BEP 6).
    AllowedFast {
        /// Piece index.
        piece: u32,
    },
    /// An extension message (BEP 10); `id` 0 is the extension handshake.
    Extended {
        /// The extended message id.
        id: u8,
        /// The payload, usually a bencoded dictionary.
        payload: &'a [u8],
    },
    /// A message with an id we do not know, tolerated and left to be skipped.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload.
        payload: &'a [u8],
    },
}

/// The largest frames [`decode_frame`] accepts, per kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Pieces in the torrent; fixes the BITFIELD length.
    pub piece_count: u32,
    /// Largest PIECE data accepted, in bytes.
    pub max_block_len: u32,
    /// Largest EXTENDED payload accepted (after the extended id), in bytes.
    pub max_extended_len: u32,
    /// Largest payload accepted for an unknown message id, in bytes.
    pub max_unknown_len: u32,
}

impl FrameLimits {
    /// Every client requests 16 KiB blocks; we never request larger.
    pub const MAX_BLOCK_LEN: u32 = 16 * 1024;
    /// A BEP 9 metadata piece is 16 KiB plus a small dictionary; PEX and the
    /// BEP 10 handshake are smaller still.
    pub const MAX_EXTENDED_LEN: u32 = 64 * 1024;
    /// Unknown messages are skipped, so there is no reason to buffer big ones.
    pub const MAX_UNKNOWN_LEN: u32 = 16 * 1024;

    /// The default limits for a torrent of `piece_count` pieces.
    pub const fn for_pieces(piece_count: u32) -> FrameLimits {
        FrameLimits {
            piece_count,
            max_block_len: FrameLimits::MAX_BLOCK_LEN,
            max_extended_len: FrameLimits::MAX_EXTENDED_LEN,
            max_unknown_len: FrameLimits::MAX_UNKNOWN_LEN,
        }
    }

    /// The largest frame length accepted for any message.
    ///
    /// A whole frame on the wire is [`LENGTH_PREFIX_LEN`] bytes more, so a
    /// read buffer never needs more than `LENGTH_PREFIX_LEN + max_frame_len()`.
    pub fn max_frame_len(&self) -> usize {
        // Cannot saturate: usize is at least 32 bits on every target mio supports.
        usize::try_from(self.max_len()).unwrap_or(usize::MAX)
    }

    /// [`FrameLimits::max_frame_len`] as the `u32` the length prefix is compared with.
    fn max_len(&self) -> u32 {
        [
            BLOCK_REQUEST_LEN,
            self.bitfield_len(),
            PIECE_HEADER_LEN.saturating_add(self.max_block_len),
            EXTENDED_HEADER_LEN.saturating_add(self.max_extended_len),
            BARE_LEN.saturating_add(self.max_unknown_len),
        ]
        .into_iter()
        .fold(0, u32::max)
    }

    /// Frame length of a BITFIELD for this torrent.
    fn bitfield_len(&self) -> u32 {
        BARE_LEN + self.piece_count.div_ceil(8)
    }

    /// The frame lengths allowed for message `id`.
    fn len_rule(&self, id: u8) -> LenRule {
        match id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => LenRule::Exact(BARE_LEN),
            id::HAVE | id::SUGGEST_PIECE | id::ALLOWED_FAST => LenRule::Exact(PIECE_INDEX_LEN),
            id::REQUEST | id::CANCEL | id::REJECT_REQUEST => LenRule::Exact(BLOCK_REQUEST_LEN),
            id::PORT => LenRule::Exact(PORT_LEN),
            id::BITFIELD => LenRule::Exact(self.bitfield_len()),
            id::PIECE => LenRule::AtMost(PIECE_HEADER_LEN.saturating_add(self.max_block_len)),
            id::EXTENDED => {
                LenRule::AtMost(EXTENDED_HEADER_LEN.saturating_add(self.max_extended_len))
            }
            _ => LenRule::AtMost(BARE_LEN.saturating_add(self.max_unknown_len)),
        }
    }
}

/// The frame lengths a message id allows.
///
/// Only upper bounds need checking before the frame is buffered; a PIECE or
/// EXTENDED too short for its header is caught when its fields are read.
enum LenRule {
    /// Exactly this length.
    Exact(u32),
    /// This length or less.
    AtMost(u32),
}

/// Decodes the frame at the start of `buf`.
///
/// Returns the message and the bytes it took (prefix included), which the
/// caller drains; `Ok(None)` while the frame is incomplete; an error as soon
/// as the bytes present show the frame is malformed or too long, so a hostile
/// length is refused before it is buffered.
pub fn decode_frame<'a>(
    buf: &'a [u8],
    limits: &FrameLimits,
) -> Result<Option<(Message<'a>, usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    let max = limits.max_len();
    if len > max {
        return Err(WireError::FrameTooLong { len, max });
    }
    if len == 0 {
        return Ok(Some((Message::KeepAlive, LENGTH_PREFIX_LEN)));
    }
    let Some(&id) = buf.get(LENGTH_PREFIX_LEN) else {
        return Ok(None);
    };
    check_len(id, len, limits)?;
    let frame_end = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(LENGTH_PREFIX_LEN))
        .ok_or(WireError::FrameTooLong { len, max })?;
    let Some(payload) = buf.get(LENGTH_PREFIX_LEN + 1..frame_end) else {
        return Ok(None);
    };
    let message = parse_payload(id, payload).ok_or(WireError::TooShort { id, len })?;
    Ok(Some((message, frame_end)))
}

/// Appends the 13-byte header of a PIECE frame carrying `data_len` bytes of
/// data; the caller appends the data itself, saving a copy.
///
/// # Panics
///
/// If `data_len` does not fit the 32-bit length prefix (4 GiB; a block is 16 KiB).
pub fn encode_piece_header(piece: u32, begin: u32, data_len: usize, out: &mut Vec<u8>) {
    start_frame(out, id::PIECE, data_len.saturating_add(8));
    out.extend_from_slice(&piece.to_be_bytes());
    out.extend_from_slice(&begin.to_be_bytes());
}

impl Message<'_> {
    /// The message id, or `None` for a keep-alive (which has none).
    pub fn id(&self) -> Option<u8> {
        let id = match *self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have { .. } => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest { .. } => id::SUGGEST_PIECE,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject(_) => id::REJECT_REQUEST,
            Message::AllowedFast { .. } => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::Unknown { id, .. } => id,
        };
        Some(id)
    }

    /// The message's name for logs, in the capitals of the BEPs ("PIECE", "HAVE_ALL").
    pub fn name(&self) -> &'static str {
        match self.id() {
            None => "KEEP_ALIVE",
            Some(id) => name_of(id).unwrap_or("UNKNOWN"),
        }
    }

    /// Appends the framed message (length prefix, id, payload) to `out`.
    ///
    /// An [`Message::Unknown`] is written verbatim with its id.
    ///
    /// # Panics
    ///
    /// If a payload does not fit the 32-bit length prefix (4 GiB).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let Some(id) = self.id() else {
            // A keep-alive is a zero length prefix and nothing else.
            out.extend_from_slice(&0u32.to_be_bytes());
            return;
        };
        match *self {
            Message::Have { piece }
            | Message::Suggest { piece }
            | Message::AllowedFast { piece } => {
                start_frame(out, id, 4);
                out.extend_from_slice(&piece.to_be_bytes());
            }
            Message::Request(block) | Message::Cancel(block) | Message::Reject(block) => {
                start_frame(out, id, 12);
                for field in [block.piece, block.begin, block.len] {
                    out.extend_from_slice(&field.to_be_bytes());
                }
            }
            Message::Piece { piece, begin, data } => {
                encode_piece_header(piece, begin, data.len(), out);
                out.extend_from_slice(data);
            }
            Message::Port(port) => {
                start_frame(out, id, 2);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Extended {
                id: extended_id,
                payload,
            } => {
                start_frame(out, id, payload.len().saturating_add(1));
                out.push(extended_id);
                out.extend_from_slice(payload);
            }
            Message::Bitfield(payload) | Message::Unknown { payload, .. } => {
                start_frame(out, id, payload.len());
                out.extend_from_slice(payload);
            }
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => start_frame(out, id, 0),
            Message::KeepAlive => {} // written above: a zero length and no id
        }
    }
}

/// The BEP name of message `id`, or `None` for an id we do not know.
pub(super) fn name_of(id: u8) -> Option<&'static str> {
    let name = match id {
        id::CHOKE => "CHOKE",
        id::UNCHOKE => "UNCHOKE",
        id::INTERESTED => "INTERESTED",
        id::NOT_INTERESTED => "NOT_INTERESTED",
        id::HAVE => "HAVE",
        id::BITFIELD => "BITFIELD",
        id::REQUEST => "REQUEST",
        id::PIECE => "PIECE",
        id::CANCEL => "CANCEL",
        id::PORT => "PORT",
        id::SUGGEST_PIECE => "SUGGEST_PIECE",
        id::HAVE_ALL => "HAVE_ALL",
        id::HAVE_NONE => "HAVE_NONE",
        id::REJECT_REQUEST => "REJECT_REQUEST",
        id::ALLOWED_FAST => "ALLOWED_FAST",
        id::EXTENDED => "EXTENDED",
        _ => return None,
    };
    Some(name)
}

/// Checks a frame length against the rule for its id, from the header alone.
fn check_len(id: u8, len: u32, limits: &FrameLimits) -> Result<(), WireError> {
    match limits.len_rule(id) {
        LenRule::Exact(expected) if len != expected && id == id::BITFIELD => {
            Err(WireError::BitfieldLength {
                len,
                expected,
                piece_count: limits.piece_count,
            })
        }
        LenRule::Exact(expected) if len != expected => {
            Err(WireError::WrongLength { id, len, expected })
        }
        LenRule::AtMost(max) if len > max => Err(WireError::TooLong { id, len, max }),
        _ => Ok(()),
    }
}

/// Reads the fields of a message from its payload; `None` if the payload is
/// too short for them. Lengths are already checked, so nothing is left over.
fn parse_payload(id: u8, payload: &[u8]) -> Option<Message<'_>> {
    let message = match id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::HAVE => Message::Have {
            piece: split_u32(payload)?.0,
        },
        id::SUGGEST_PIECE => Message::Suggest {
            piece: split_u32(payload)?.0,
        },
        id::ALLOWED_FAST => Message::AllowedFast {
            piece: split_u32(payload)?.0,
        },
        id::REQUEST => Message::Request(parse_block_request(payload)?),
        id::CANCEL => Message::Cancel(parse_block_request(payload)?),
        id::REJECT_REQUEST => Message::Reject(parse_block_request(payload)?),
        id::BITFIELD => Message::Bitfield(payload),
        id::PIECE => {
            let (piece, rest) = split_u32(payload)?;
            let (begin, data) = split_u32(rest)?;
            Message::Piece { piece, begin, data }
        }
        id::PORT => Message::Port(u16::from_be_bytes(*payload.first_chunk::<2>()?)),
        id::EXTENDED => {
            let (&extended_id, payload) = payload.split_first()?;
            Message::Extended {
                id: extended_id,
                payload,
            }
        }
        _ => Message::Unknown { id, payload },
    };
    Some(message)
}

/// Reads the piece, begin and length of a REQUEST, CANCEL or REJECT_REQUEST.
fn parse_block_request(payload: &[u8]) -> Option<BlockRequest> {
    let (piece, rest) = split_u32(payload)?;
    let (begin, rest) = split_u32(rest)?;
    let (len, _) = split_u32(rest)?;
    Some(BlockRequest { piece, begin, len })
}

/// Splits a big-endian `u32` off the front of `bytes`.
fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

/// Appends the length prefix and id of a message with a `payload_len`-byte payload.
///
/// # Panics
///
/// If the frame length does not fit in 32 bits: a bug in the caller, since
/// nothing pollen sends comes near 4 GiB.
fn start_frame(out: &mut Vec<u8>, id: u8, payload_len: usize) {
    let Some(len) = payload_len
        .checked_add(1)
        .and_then(|len| u32::try_from(len).ok())
    else {
        panic!("a {payload_len}-byte payload does not fit a BitTorrent frame");
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.push(id);
}

#[cfg(test)]
pub(super) mod tests {
    // `pub(super)` so the stream test in `wire` can share `every_message`.
    use super::*;

    const PIECES: u32 = 30;

    fn limits() -> FrameLimits {
        FrameLimits::for_pieces(PIECES)
    }

    /// One of every message, valid under `limits()`.
    pub(in crate::wire) fn every_message() -> Vec<Message<'static>> {
        let block = BlockRequest {
            piece: 7,
            begin: 16384,
            len: 16384,
        };
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have { piece: 0x0102_0304 },
            Message::Bitfield(&[0xFF, 0x00, 0xA5, 0b1111_1100]),
            Message::Request(block),
            Message::Piece {
                piece: 3,
                begin: 32768,
                data: b"some block data",
            },
            Message::Piece {
                piece: 4,
                begin: 0,
                data: &[0x55; 16 * 1024],
            },
            Message::Cancel(block),
            Message::Port(6881),
            Message::Suggest { piece: 12 },
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(block),
            Message::AllowedFast { piece: 29 },
            Message::Extended {
                id: 0,
                payload: b"d1:md6:ut_pexi1eee",
            },
            Message::Extended {
                id: 3,
                payload: b"",
            },
            Message::Unknown {
                id: 21,
                payload: b"hash request",
            },
            Message::Unknown {
                id: 0xFF,
                payload: b"",
            },
        ]
    }

    fn encoded(message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        out
    }

    /// A frame header: length prefix and id, with no payload bytes yet.
    fn header(len: u32, id: u8) -> Vec<u8> {
        let mut out = len.to_be_bytes().to_vec();
        out.push(id);
        out
    }

    #[test]
    fn every_message_round_trips_and_consumes_its_frame() {
        for message in every_message() {
            let bytes = encoded(&message);
            assert_eq!(
                decode_frame(&bytes, &limits()),
                Ok(Some((message, bytes.len()))),
                "{}",
                message.name()
            );
        }
    }

    #[test]
    fn encode_writes_the_bep3_layout() {
        assert_eq!(encoded(&Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(encoded(&Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(
            encoded(&Message::Have { piece: 258 }),
            [0, 0, 0, 5, 4, 0, 0, 1, 2]
        );
        assert_eq!(
            encoded(&Message::Request(BlockRequest {
                piece: 1,
                begin: 2,
                len: 3
            })),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        assert_eq!(encoded(&Message::Port(0x1AE1)), [0, 0, 0, 3, 9, 0x1A, 0xE1]);
        assert_eq!(
            encoded(&Message::Extended {
                id: 2,
                payload: b"de"
            }),
            [0, 0, 0, 4, 20, 2, b'd', b'e']
        );
    }

    #[test]
    fn piece_header_then_data_equals_an_encoded_piece() {
        let data = b"0123456789";
        let mut out = Vec::new();
        encode_piece_header(5, 16384, data.len(), &mut out);
        assert_eq!(out, [0, 0, 0, 19, 7, 0, 0, 0, 5, 0, 0, 64, 0]);
        out.extend_from_slice(data);
        let piece = Message::Piece {
            piece: 5,
            begin: 16384,
            data,
        };
        assert_eq!(out, encoded(&piece));
    }

    #[test]
    fn every_truncation_is_incomplete_not_an_error() {
        for message in every_message() {
            let bytes = encoded(&message);
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode_frame(&bytes[..cut], &limits()),
                    Ok(None),
                    "{} cut at {cut}",
                    message.name()
                );
            }
        }
    }

    #[test]
    fn decode_rejects_oversized_length_from_the_prefix_alone() {
        let max = limits().max_len();
        for len in [max + 1, 1024 * 1024 + 9, u32::MAX] {
            let err = decode_frame(&len.to_be_bytes(), &limits()).unwrap_err();
            assert_eq!(err, WireError::FrameTooLong { len, max });
        }
        assert_eq!(
            decode_frame(&(1024 * 1024 + 9u32).to_be_bytes(), &limits())
                .unwrap_err()
                .to_string(),
            "frame of 1048585 bytes exceeds the 65538-byte limit for any message"
        );
        assert_eq!(decode_frame(&max.to_be_bytes(), &limits()), Ok(None));
    }

    #[test]
    fn decode_rejects_wrong_exact_lengths_from_the_header() {
        let cases = [
            (id::CHOKE, 1),
            (id::UNCHOKE, 1),
            (id::INTERESTED, 1),
            (id::NOT_INTERESTED, 1),
            (id::HAVE_ALL, 1),
            (id::HAVE_NONE, 1),
            (id::HAVE, 5),
            (id::SUGGEST_PIECE, 5),
            (id::ALLOWED_FAST, 5),
            (id::REQUEST, 13),
            (id::CANCEL, 13),
            (id::REJECT_REQUEST, 13),
            (id::PORT, 3),
        ];
        for (id, expected) in cases {
            for len in [expected - 1, expected + 1, expected + 1000] {
                if len == 0 {
                    continue; // a keep-alive
                }
                assert_eq!(
                    decode_frame(&header(len, id), &limits()),
                    Err(WireError::WrongLength { id, len, expected }),
                    "id {id} len {len}"
                );
            }
        }
        assert_eq!(
            decode_frame(&header(7, id::HAVE), &limits())
                .unwrap_err()
                .to_string(),
            "HAVE frame has length 7, expected 5"
        );
    }

    #[test]
    fn decode_rejects_bitfield_of_the_wrong_length() {
        for len in [1, 4, 6, 100] {
            assert_eq!(
                decode_frame(&header(len, id::BITFIELD), &limits()),
                Err(WireError::BitfieldLength {
                    len,
                    expected: 5,
                    piece_count: PIECES
                })
            );
        }
        assert_eq!(
            decode_frame(&header(3, id::BITFIELD), &limits())
                .unwrap_err()
                .to_string(),
            "BITFIELD frame has length 3, expected 5 for 30 pieces"
        );
    }

    #[test]
    fn decode_rejects_piece_bigger_than_a_block_from_the_header() {
        let len = 9 + 16 * 1024 + 1;
        let err = decode_frame(&header(len, id::PIECE), &limits()).unwrap_err();
        assert_eq!(
            err,
            WireError::TooLong {
                id: id::PIECE,
                len,
                max: 16393
            }
        );
        assert_eq!(
            err.to_string(),
            "frame of 16394 bytes exceeds the 16393-byte limit for PIECE"
        );
    }

    #[test]
    fn decode_rejects_extended_and_unknown_above_their_caps() {
        let over_extended = 2 + FrameLimits::MAX_EXTENDED_LEN + 1;
        assert!(matches!(
            decode_frame(&header(over_extended - 1, id::EXTENDED), &limits()),
            Ok(None)
        ));
        // Larger than any message at all, so the prefix check fires first.
        assert!(matches!(
            decode_frame(&header(over_extended, id::EXTENDED), &limits()),
            Err(WireError::FrameTooLong { .. })
        ));

        let over_unknown = 1 + FrameLimits::MAX_UNKNOWN_LEN + 1;
        let err = decode_frame(&header(over_unknown, 42), &limits()).unwrap_err();
        assert_eq!(
            err,
            WireError::TooLong {
                id: 42,
                len: over_unknown,
                max: over_unknown - 1
            }
        );
        assert_eq!(
            err.to_string(),
            "frame of 16386 bytes exceeds the 16385-byte limit for unknown message id 42"
        );
        assert_eq!(
            decode_frame(&header(over_unknown - 1, 42), &limits()),
            Ok(None)
        );
    }

    #[test]
    fn decode_rejects_piece_and_extended_too_short_for_their_header() {
        let short_piece = [0, 0, 0, 5, id::PIECE, 0, 0, 0, 1];
        let err = decode_frame(&short_piece, &limits()).unwrap_err();
        assert_eq!(
            err,
            WireError::TooShort {
                id: id::PIECE,
                len: 5
            }
        );
        assert_eq!(
            err.to_string(),
            "PIECE frame has length 5, too short for its fields"
        );

        let short_extended = [0, 0, 0, 1, id::EXTENDED];
        assert_eq!(
            decode_frame(&short_extended, &limits()),
            Err(WireError::TooShort {
                id: id::EXTENDED,
                len: 1
            })
        );
    }

    #[test]
    fn decode_takes_one_frame_and_leaves_the_rest() {
        let mut bytes = encoded(&Message::Have { piece: 1 });
        bytes.extend_from_slice(&encoded(&Message::Choke));
        assert_eq!(
            decode_frame(&bytes, &limits()),
            Ok(Some((Message::Have { piece: 1 }, 9)))
        );
    }

    #[test]
    fn max_frame_len_is_the_largest_message_allowed() {
        // EXTENDED is the largest for small torrents...
        assert_eq!(limits().max_frame_len(), 2 + 64 * 1024);
        // ...and BITFIELD for huge ones (libtorrent's cap of 2,097,152 pieces).
        assert_eq!(
            FrameLimits::for_pieces(2_097_152).max_frame_len(),
            1 + 262_144
        );
        let tight = FrameLimits {
            piece_count: 8,
            max_block_len: 0,
            max_extended_len: 0,
            max_unknown_len: 0,
        };
        assert_eq!(tight.max_frame_len(), 13);
    }

    #[test]
    fn names_and_ids_follow_the_beps() {
        assert_eq!(Message::KeepAlive.id(), None);
        assert_eq!(Message::KeepAlive.name(), "KEEP_ALIVE");
        assert_eq!(Message::NotInterested.name(), "NOT_INTERESTED");
        assert_eq!(Message::Port(1).id(), Some(9));
        assert_eq!(Message::AllowedFast { piece: 0 }.id(), Some(0x11));
        let extended = Message::Extended {
            id: 5,
            payload: b"",
        };
        assert_eq!((extended.id(), extended.name()), (Some(20), "EXTENDED"));
        let unknown = Message::Unknown {
            id: 99,
            payload: b"",
        };
        assert_eq!((unknown.id(), unknown.name()), (Some(99), "UNKNOWN"));
    }
}
