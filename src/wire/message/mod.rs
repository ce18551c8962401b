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
    /// Whether `piece_count` is the torrent's own: before a magnet's
    /// metadata arrives it is only a ceiling, and a BITFIELD of any
    /// length up to it is accepted (checked once the metadata is here).
    pub piece_count_known: bool,
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
            piece_count_known: true,
            max_block_len: FrameLimits::MAX_BLOCK_LEN,
            max_extended_len: FrameLimits::MAX_EXTENDED_LEN,
            max_unknown_len: FrameLimits::MAX_UNKNOWN_LEN,
        }
    }

    /// The limits for a torrent whose metadata has not arrived (a magnet
    /// link): a BITFIELD may be as long as the largest metadata
    /// ([`crate::metadata::MAX_METADATA_SIZE`], 20 bytes per piece) allows.
    pub const fn before_metadata() -> FrameLimits {
        let most_pieces = (crate::metadata::MAX_METADATA_SIZE / 20) as u32;
        FrameLimits {
            piece_count_known: false,
            ..FrameLimits::for_pieces(most_pieces)
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
            id::BITFIELD if self.piece_count_known => LenRule::Exact(self.bitfield_len()),
            id::BITFIELD => LenRule::AtMost(self.bitfield_len()),
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

    /// Whether this is one of the five messages of the BEP 6 fast extension
    /// (HAVE_ALL, HAVE_NONE, REJECT_REQUEST, ALLOWED_FAST, SUGGEST_PIECE),
    /// which a peer may send only when both handshakes set its bit.
    pub fn is_fast_extension(&self) -> bool {
        matches!(
            self,
            Message::HaveAll
                | Message::HaveNone
                | Message::Reject(_)
                | Message::AllowedFast { .. }
                | Message::Suggest { .. }
        )
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
pub(super) mod tests;
