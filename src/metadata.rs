//! Metadata exchange (BEP 9, `ut_metadata`): the message codec and the state
//! machine that fetches a torrent's info dictionary from peers when all we
//! have is its info-hash (a magnet link).
//!
//! Layer 0: pure, no I/O, no clock: time is passed in as `now`. The
//! torrent core ([`crate::torrent`], `metadata_fetch.rs`) drives a
//! [`MetadataFetch`] for a magnet link and carries the messages over the
//! BEP 10 extended message id the peer chose for `ut_metadata`.
//!
//! The info dictionary travels in pieces of [`METADATA_PIECE_LEN`] bytes
//! (the last may be shorter). A message is a bencoded dictionary with
//! `msg_type` (0 request, 1 data, 2 reject) and `piece`; a data message also
//! has `total_size`, and the piece's bytes follow the dictionary directly.
//!
//! [`MetadataFetch`] asks one piece at a time of each peer that announced
//! the same `metadata_size`, times out silent peers, backs off after a
//! reject and gives up on a peer after [`MAX_REJECTS`] rejects or
//! [`MAX_TIMEOUTS`] timeouts. Nothing is trusted until the assembled bytes
//! hash to the info-hash (PROTOCOL.md: "the assembled dictionary's SHA-1
//! must equal the info-hash before it is trusted"). When they do not:
//!
//! - with a single supplier, that peer is proven wrong
//!   ([`Outcome::Mismatch`] with `proven: true`): the caller bans it;
//! - with several, nobody is proven: each supplier's pieces are remembered
//!   as digests, the metadata is fetched again from one peer at a time, and
//!   once it verifies, a peer whose earlier piece differs from the good one
//!   is named in [`Outcome::Verified`]'s `liars` (the idea of the smart ban,
//!   [`crate::smart_ban`], applied to metadata).
//!
//! Memory is bounded: at most [`MAX_METADATA_SIZE`] bytes of pieces, at
//! most [`MAX_PEERS`] peers, one digest per piece of a failed attempt.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::bencode::{self, Dict, Limits, Value};
use crate::hash::Sha1Hash;
use crate::metainfo::InfoHash;

/// Size of one metadata piece (BEP 9: 16 KiB; only the last is shorter).
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// [`METADATA_PIECE_LEN`] as a `u32`, for piece arithmetic.
const PIECE_LEN_U32: u32 = 16 * 1024;

/// Largest `metadata_size` accepted, in bytes. An info dictionary is mostly
/// its piece hashes (20 bytes per piece): 10 MiB is half a million pieces,
/// far past any real torrent, while a hostile peer cannot make us hold more.
/// libtorrent's default limit is in the same range.
pub const MAX_METADATA_SIZE: usize = 10 * 1024 * 1024;

/// Longest bencoded header of a metadata message we decode, in bytes. The
/// dictionary has three small integers; anything longer is not honest.
pub const MAX_HEADER_LEN: usize = 1024;

/// How long a peer has to answer one request before it is asked again of
/// another peer: metadata pieces are small, so a peer silent this long is
/// gone or throttled.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a peer that rejected a request is left alone before it is asked
/// again (BEP 9: a peer may reject, for instance while it is busy).
pub const REJECT_BACKOFF: Duration = Duration::from_secs(5);

/// Rejects after which a peer is no longer asked: a peer that keeps
/// rejecting will not give us the metadata.
pub const MAX_REJECTS: u32 = 5;

/// Timeouts after which a peer is no longer asked.
pub const MAX_TIMEOUTS: u32 = 3;

/// Most peers a fetch keeps track of; more add nothing but memory.
pub const MAX_PEERS: usize = 64;

/// `msg_type` of a request (BEP 9).
const MSG_REQUEST: i64 = 0;
/// `msg_type` of a data message (BEP 9).
const MSG_DATA: i64 = 1;
/// `msg_type` of a reject (BEP 9).
const MSG_REJECT: i64 = 2;

/// One `ut_metadata` message. `data` borrows the bytes after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage<'a> {
    /// "Send me piece `piece`."
    Request {
        /// The metadata piece index.
        piece: u32,
    },
    /// Piece `piece` of a metadata of `total_size` bytes.
    Data {
        /// The metadata piece index.
        piece: u32,
        /// The size of the whole info dictionary, at most [`MAX_METADATA_SIZE`].
        total_size: u32,
        /// The piece's bytes, at most [`METADATA_PIECE_LEN`].
        data: &'a [u8],
    },
    /// "I will not send piece `piece`."
    Reject {
        /// The metadata piece index.
        piece: u32,
    },
    /// A `msg_type` this version does not know; BEP 9 says to ignore it.
    Unknown {
        /// The type number sent.
        msg_type: i64,
    },
}

/// Why a `ut_metadata` message could not be read. Each closes (at worst)
/// that peer's metadata exchange, never the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The header is not valid bencode.
    Bencode(bencode::DecodeError),
    /// The header is longer than [`MAX_HEADER_LEN`] bytes.
    HeaderTooLong,
    /// The header is not a dictionary.
    NotADict,
    /// A field is missing or not an integer in range.
    BadField(&'static str),
    /// `total_size` is larger than [`MAX_METADATA_SIZE`] (or zero).
    BadTotalSize(i64),
    /// A data message carries more than [`METADATA_PIECE_LEN`] bytes.
    DataTooLong(usize),
    /// Bytes after the header of a request or a reject.
    TrailingBytes(usize),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Bencode(e) => write!(f, "ut_metadata header: {e}"),
            MessageError::HeaderTooLong => {
                write!(f, "ut_metadata header longer than {MAX_HEADER_LEN} bytes")
            }
            MessageError::NotADict => f.write_str("ut_metadata header is not a dictionary"),
            MessageError::BadField(name) => {
                write!(f, "ut_metadata field {name:?} missing or out of range")
            }
            MessageError::BadTotalSize(n) => write!(
                f,
                "ut_metadata total_size {n} is not between 1 and {MAX_METADATA_SIZE}"
            ),
            MessageError::DataTooLong(n) => write!(
                f,
                "ut_metadata piece of {n} bytes (at most {METADATA_PIECE_LEN})"
            ),
            MessageError::TrailingBytes(n) => {
                write!(f, "{n} bytes after a ut_metadata request or reject")
            }
        }
    }
}

impl std::error::Error for MessageError {}

impl<'a> MetadataMessage<'a> {
    /// Reads one message payload (after the extended message id).
    pub fn decode(payload: &'a [u8]) -> Result<MetadataMessage<'a>, MessageError> {
        let head = payload.get(..MAX_HEADER_LEN).unwrap_or(payload);
        let (value, used) = match bencode::decode_prefix(head, Limits::MESSAGE) {
            Ok(found) => found,
            Err(_) if head.len() < payload.len() => return Err(MessageError::HeaderTooLong),
            Err(e) => return Err(MessageError::Bencode(e)),
        };
        let dict = value.as_dict().ok_or(MessageError::NotADict)?;
        let rest = payload.get(used..).unwrap_or_default();
        let msg_type = dict
            .get_int(b"msg_type")
            .ok_or(MessageError::BadField("msg_type"))?;
        let piece = || {
            dict.get_int(b"piece")
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(MessageError::BadField("piece"))
        };
        let no_rest = || match rest.len() {
            0 => Ok(()),
            n => Err(MessageError::TrailingBytes(n)),
        };
        match msg_type {
            MSG_REQUEST => no_rest().and(Ok(MetadataMessage::Request { piece: piece()? })),
            MSG_REJECT => no_rest().and(Ok(MetadataMessage::Reject { piece: piece()? })),
            MSG_DATA => {
                let total = dict
                    .get_int(b"total_size")
                    .ok_or(MessageError::BadField("total_size"))?;
                let total_size = checked_total(total)?;
                if rest.len() > METADATA_PIECE_LEN {
                    return Err(MessageError::DataTooLong(rest.len()));
                }
                Ok(MetadataMessage::Data {
                    piece: piece()?,
                    total_size,
                    data: rest,
                })
            }
            other => Ok(MetadataMessage::Unknown { msg_type: other }),
        }
    }

    /// The message payload (without the extended message id).
    pub fn encode(&self) -> Vec<u8> {
        let int = |n: u32| Value::Int(i64::from(n));
        let (entries, data): (Vec<(&[u8], Value<'_>)>, &[u8]) = match self {
            MetadataMessage::Request { piece } => (
                vec![
                    (b"msg_type", Value::Int(MSG_REQUEST)),
                    (b"piece", int(*piece)),
                ],
                &[],
            ),
            MetadataMessage::Reject { piece } => (
                vec![
                    (b"msg_type", Value::Int(MSG_REJECT)),
                    (b"piece", int(*piece)),
                ],
                &[],
            ),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => (
                vec![
                    (b"msg_type", Value::Int(MSG_DATA)),
                    (b"piece", int(*piece)),
                    (b"total_size", int(*total_size)),
                ],
                data,
            ),
            MetadataMessage::Unknown { msg_type } => {
                (vec![(b"msg_type", Value::Int(*msg_type))], &[])
            }
        };
        let mut out = bencode::encode(&Value::Dict(Dict::new(entries)));
        out.extend_from_slice(data);
        out
    }
}

/// `total_size` or `metadata_size` checked against [`MAX_METADATA_SIZE`].
fn checked_total(total: i64) -> Result<u32, MessageError> {
    usize::try_from(total)
        .ok()
        .filter(|&n| n > 0 && n <= MAX_METADATA_SIZE)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(MessageError::BadTotalSize(total))
}

/// The number of pieces of a metadata of `total_len` bytes.
pub fn piece_count(total_len: u32) -> u32 {
    total_len.div_ceil(PIECE_LEN_U32)
}

/// Why a peer's part in a fetch went wrong. None ends the session; the
/// caller decides whether to close or ban the peer (see each variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// The peer announced a `metadata_size` of 0 or over
    /// [`MAX_METADATA_SIZE`]: it is not asked (close: it cannot help).
    BadSize(u64),
    /// The fetch already follows [`MAX_PEERS`] peers: this one is not asked.
    TooManyPeers,
    /// Data for a piece we did not ask this peer for (or asked and gave up
    /// on after a timeout): ignored, not a ban reason.
    Unrequested(u32),
    /// Data of the wrong length for its piece: a protocol violation.
    WrongLength {
        /// The metadata piece index.
        piece: u32,
        /// The bytes it carried.
        got: usize,
        /// The bytes that piece has.
        expected: usize,
    },
    /// A data message whose `total_size` differs from the size the peer
    /// announced: a protocol violation.
    SizeChanged {
        /// The size it announced.
        announced: u32,
        /// The size in the data message.
        sent: u32,
    },
    /// The peer rejected [`MAX_REJECTS`] requests or let [`MAX_TIMEOUTS`]
    /// requests time out: it is dropped from the fetch (not a ban reason).
    /// A later [`MetadataFetch::handle_size`] would add it afresh, so the
    /// caller stops passing on that peer's `ut_metadata` (or closes it).
    GaveUp,
    /// A message about a peer the fetch does not know (never announced a
    /// size, or was dropped).
    UnknownPeer,
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::BadSize(n) => write!(
                f,
                "metadata_size {n} is not between 1 and {MAX_METADATA_SIZE}"
            ),
            PeerError::TooManyPeers => write!(f, "already fetching from {MAX_PEERS} peers"),
            PeerError::Unrequested(piece) => {
                write!(f, "metadata piece {piece} was not requested from this peer")
            }
            PeerError::WrongLength {
                piece,
                got,
                expected,
            } => write!(
                f,
                "metadata piece {piece} has {got} bytes, expected {expected}"
            ),
            PeerError::SizeChanged { announced, sent } => write!(
                f,
                "metadata total_size {sent} differs from the announced {announced}"
            ),
            PeerError::GaveUp => f.write_str("peer keeps rejecting or ignoring metadata requests"),
            PeerError::UnknownPeer => f.write_str("peer is not part of the metadata fetch"),
        }
    }
}

impl std::error::Error for PeerError {}

/// What a completed attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<P> {
    /// The info dictionary, its SHA-1 checked against the info-hash.
    Verified {
        /// The bencoded info dictionary.
        info: Vec<u8>,
        /// Peers proven to have sent a wrong piece in an earlier attempt
        /// (their piece differs from the verified one): ban them.
        liars: Vec<P>,
    },
    /// The assembled bytes do not hash to the info-hash. The fetch has
    /// started over by itself.
    Mismatch {
        /// The peers that supplied the pieces of the failed attempt.
        suppliers: Vec<P>,
        /// True when a single peer supplied everything: it is proven wrong
        /// (ban it; the fetch has dropped it). False: nobody is proven yet;
        /// the fetch now asks one peer at a time, and the wrong ones are
        /// named in the later [`Outcome::Verified`].
        proven: bool,
    },
}

/// What the fetch knows of one peer.
#[derive(Debug, Clone)]
struct PeerSlot {
    total_len: u32,
    in_flight: Option<(u32, Instant)>,
    not_before: Option<Instant>,
    rejects: u32,
    timeouts: u32,
}

/// One received piece and who sent it.
#[derive(Debug, Clone)]
struct Received<P> {
    bytes: Vec<u8>,
    from: P,
}

/// The state of fetching one torrent's metadata from its peers. `P` is the
/// caller's peer id (a slab key, an address): small, copyable, ordered.
#[derive(Debug, Clone)]
pub struct MetadataFetch<P> {
    info_hash: InfoHash,
    peers: BTreeMap<P, PeerSlot>,
    /// The size being fetched (from the first peer that announced one).
    total_len: Option<u32>,
    pieces: Vec<Option<Received<P>>>,
    /// After a mismatch with several suppliers: the one peer asked now.
    single_source: bool,
    source: Option<P>,
    /// Digests of the pieces of failed attempts, with their supplier.
    suspects: Vec<(u32, Sha1Hash, P)>,
    /// The metadata was verified: nothing more to ask.
    done: bool,
}

impl<P: Copy + Ord + fmt::Debug> MetadataFetch<P> {
    /// A fetch of the info dictionary whose SHA-1 is `info_hash`.
    pub fn new(info_hash: InfoHash) -> Self {
        MetadataFetch {
            info_hash,
            peers: BTreeMap::new(),
            total_len: None,
            pieces: Vec::new(),
            single_source: false,
            source: None,
            suspects: Vec::new(),
            done: false,
        }
    }

    /// A peer announced `metadata_size` `total_len` in its extension
    /// handshake (BEP 9): it can be asked for pieces.
    pub fn handle_size(&mut self, peer: P, total_len: u64) -> Result<(), PeerError> {
        let total = i64::try_from(total_len)
            .ok()
            .and_then(|n| checked_total(n).ok())
            .ok_or(PeerError::BadSize(total_len))?;
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            return Err(PeerError::TooManyPeers);
        }
        // A repeated handshake (BEP 10 allows one) may change the size but
        // keeps the peer's rejects and timeouts: they cannot be reset.
        self.release(peer);
        let slot = self.peers.entry(peer).or_insert(PeerSlot {
            total_len: total,
            in_flight: None,
            not_before: None,
            rejects: 0,
            timeouts: 0,
        });
        slot.total_len = total;
        self.adopt_size();
        Ok(())
    }

    /// The peer is gone (disconnected, banned): its request is asked of
    /// another peer.
    pub fn remove_peer(&mut self, peer: P) {
        self.release(peer);
        self.peers.remove(&peer);
        if self.source == Some(peer) {
            self.switch_source();
        }
        self.adopt_size();
    }

    /// The next request to send, if a missing piece and an idle peer that
    /// may be asked now are both there. Call until it returns `None`.
    pub fn poll_request(&mut self, now: Instant) -> Option<(P, u32)> {
        if self.done {
            return None;
        }
        self.adopt_size();
        let total = self.total_len?;
        let piece = self.next_missing_piece()?;
        let peer = if self.single_source {
            self.pick_source(total, now)?
        } else {
            self.idle_peers(total, now).next()?
        };
        let slot = self.peers.get_mut(&peer)?;
        slot.in_flight = Some((piece, now + REQUEST_TIMEOUT));
        slot.not_before = None;
        Some((peer, piece))
    }

    /// A data message from `peer`: piece `piece`, `data` its bytes, from a
    /// metadata of `total_size` bytes. `Ok(Some(_))` when this completed an
    /// attempt.
    pub fn handle_data(
        &mut self,
        peer: P,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<Option<Outcome<P>>, PeerError> {
        let slot = self.peers.get_mut(&peer).ok_or(PeerError::UnknownPeer)?;
        if slot.total_len != total_size {
            return Err(PeerError::SizeChanged {
                announced: slot.total_len,
                sent: total_size,
            });
        }
        if slot.in_flight.map(|(p, _)| p) != Some(piece) {
            return Err(PeerError::Unrequested(piece));
        }
        slot.in_flight = None;
        if self.total_len != Some(total_size) {
            // Asked before the fetch moved to another size (another peer's
            // claim): this piece belongs to no attempt now. Not the peer's
            // fault, and mixing it in would blame it for the other's lie.
            return Ok(None);
        }
        let expected = piece_len(total_size, piece);
        if data.len() != expected {
            return Err(PeerError::WrongLength {
                piece,
                got: data.len(),
                expected,
            });
        }
        let index = usize::try_from(piece).map_err(|_| PeerError::Unrequested(piece))?;
        let slot = self
            .pieces
            .get_mut(index)
            .ok_or(PeerError::Unrequested(piece))?;
        *slot = Some(Received {
            bytes: data.to_vec(),
            from: peer,
        });
        Ok(self.try_finish())
    }

    /// `peer` rejected its request for `piece`: the piece goes back to be
    /// asked again, the peer is left alone for [`REJECT_BACKOFF`].
    /// `Err(GaveUp)` when that was one reject too many: the peer is dropped.
    pub fn handle_reject(&mut self, peer: P, piece: u32, now: Instant) -> Result<(), PeerError> {
        let slot = self.peers.get_mut(&peer).ok_or(PeerError::UnknownPeer)?;
        if slot.in_flight.map(|(p, _)| p) != Some(piece) {
            return Err(PeerError::Unrequested(piece));
        }
        slot.in_flight = None;
        slot.rejects += 1;
        slot.not_before = Some(now + REJECT_BACKOFF);
        if slot.rejects >= MAX_REJECTS {
            self.remove_peer(peer);
            return Err(PeerError::GaveUp);
        }
        if self.source == Some(peer) {
            self.switch_source();
        }
        Ok(())
    }

    /// Takes back every request that has been waiting past its deadline
    /// and forgets back-offs that have run out (so [`Self::next_deadline`]
    /// is then later than `now`: no busy loop); returns the peers that timed out, each with whether it is now dropped
    /// (after [`MAX_TIMEOUTS`]).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(P, bool)> {
        // A back-off that has run out is no deadline any more.
        for slot in self.peers.values_mut() {
            slot.not_before = slot.not_before.filter(|t| *t > now);
        }
        let late: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, s)| s.in_flight.is_some_and(|(_, due)| due <= now))
            .map(|(p, _)| *p)
            .collect();
        let mut out = Vec::with_capacity(late.len());
        for peer in late {
            let Some(slot) = self.peers.get_mut(&peer) else {
                continue;
            };
            slot.in_flight = None;
            slot.timeouts += 1;
            slot.not_before = Some(now + REQUEST_TIMEOUT);
            let dropped = slot.timeouts >= MAX_TIMEOUTS;
            if dropped {
                self.remove_peer(peer);
            } else if self.source == Some(peer) {
                self.switch_source();
            }
            out.push((peer, dropped));
        }
        out
    }

    /// When the fetch next needs [`MetadataFetch::handle_timeout`] or a
    /// backed-off peer may be asked again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .flat_map(|s| [s.in_flight.map(|(_, due)| due), s.not_before])
            .flatten()
            .min()
    }

    /// The size being fetched, once a peer announced one.
    pub fn total_len(&self) -> Option<u32> {
        self.total_len
    }

    /// How many pieces have arrived in the current attempt.
    pub fn received_pieces(&self) -> usize {
        self.pieces.iter().filter(|p| p.is_some()).count()
    }

    /// Returns `peer`'s request, if any, to the pool.
    fn release(&mut self, peer: P) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.in_flight = None;
        }
    }

    /// Chooses the size to fetch: kept while some peer announced it or
    /// pieces of it are held; else the first peer's.
    fn adopt_size(&mut self) {
        if self.done {
            return;
        }
        let kept = self.total_len.filter(|&t| {
            self.received_pieces() > 0 || self.peers.values().any(|s| s.total_len == t)
        });
        let total = kept.or_else(|| self.peers.values().next().map(|s| s.total_len));
        if total != self.total_len {
            self.total_len = total;
            self.pieces = vec![None; total.map_or(0, |t| to_usize(piece_count(t)))];
            self.suspects.clear();
        }
    }

    fn next_missing_piece(&self) -> Option<u32> {
        let asked: Vec<u32> = self
            .peers
            .values()
            .filter_map(|s| s.in_flight.map(|(p, _)| p))
            .collect();
        (0..piece_count(self.total_len?)).find(|&i| {
            self.pieces.get(to_usize(i)).is_some_and(Option::is_none) && !asked.contains(&i)
        })
    }

    /// Peers with the fetched size, no request in flight, not backed off.
    fn idle_peers(&self, total: u32, now: Instant) -> impl Iterator<Item = P> + '_ {
        self.peers
            .iter()
            .filter(move |(_, s)| {
                s.total_len == total
                    && s.in_flight.is_none()
                    && s.not_before.is_none_or(|t| t <= now)
            })
            .map(|(p, _)| *p)
    }

    /// In single-source mode: the source if it is idle, or a new one (then
    /// pieces from anyone else are dropped, so one peer supplies all).
    fn pick_source(&mut self, total: u32, now: Instant) -> Option<P> {
        if let Some(source) = self.source {
            let slot = self.peers.get(&source)?;
            if slot.total_len == total {
                let idle = slot.in_flight.is_none() && slot.not_before.is_none_or(|t| t <= now);
                return idle.then_some(source);
            }
            // The source now claims another size than the one fetched: it
            // cannot supply this attempt; choose another.
            self.switch_source();
        }
        let peer = self.idle_peers(total, now).next()?;
        self.source = Some(peer);
        for slot in &mut self.pieces {
            if slot.as_ref().is_some_and(|r| r.from != peer) {
                *slot = None;
            }
        }
        Some(peer)
    }

    fn switch_source(&mut self) {
        self.source = None;
    }

    /// Once every piece is in: hash, and report.
    fn try_finish(&mut self) -> Option<Outcome<P>> {
        if self.pieces.is_empty() || self.pieces.iter().any(Option::is_none) {
            return None;
        }
        let received: Vec<Received<P>> = std::mem::take(&mut self.pieces)
            .into_iter()
            .flatten()
            .collect();
        let mut info = Vec::with_capacity(received.iter().map(|r| r.bytes.len()).sum());
        for r in &received {
            info.extend_from_slice(&r.bytes);
        }
        let mut suppliers: Vec<P> = received.iter().map(|r| r.from).collect();
        suppliers.sort();
        suppliers.dedup();
        if Sha1Hash::of(&info) == self.info_hash {
            self.done = true;
            return Some(Outcome::Verified {
                liars: self.liars(&received),
                info,
            });
        }
        Some(self.start_over(received, suppliers))
    }

    /// Peers whose remembered piece digest differs from the good piece.
    fn liars(&self, good: &[Received<P>]) -> Vec<P> {
        let mut liars: Vec<P> = self
            .suspects
            .iter()
            .filter(|(piece, digest, _)| {
                good.get(to_usize(*piece))
                    .is_some_and(|r| Sha1Hash::of(&r.bytes) != *digest)
            })
            .map(|(_, _, peer)| *peer)
            .collect();
        liars.sort();
        liars.dedup();
        liars
    }

    /// After a mismatch: remember digests, drop a proven peer, go on with
    /// one peer at a time.
    fn start_over(&mut self, received: Vec<Received<P>>, suppliers: Vec<P>) -> Outcome<P> {
        let total = self.total_len.map_or(0, piece_count);
        self.pieces = vec![None; to_usize(total)];
        let proven = suppliers.len() == 1;
        if proven {
            for peer in &suppliers {
                self.remove_peer(*peer);
            }
        } else {
            // One digest per piece and attempt; bounded by the piece count
            // times the number of multi-supplier attempts (at most one:
            // later attempts have a single supplier).
            self.suspects.extend(
                received
                    .iter()
                    .zip(0u32..)
                    .map(|(r, i)| (i, Sha1Hash::of(&r.bytes), r.from)),
            );
        }
        self.single_source = true;
        self.source = None;
        self.adopt_size();
        Outcome::Mismatch { suppliers, proven }
    }
}

/// The length of piece `piece` of a metadata of `total` bytes (0 past the end).
fn piece_len(total: u32, piece: u32) -> usize {
    let start = u64::from(piece) * u64::from(PIECE_LEN_U32);
    let end = (start + u64::from(PIECE_LEN_U32)).min(u64::from(total));
    usize::try_from(end.saturating_sub(start)).unwrap_or(0)
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake info dictionary of `len` bytes and its info-hash.
    fn info_of(len: usize) -> (Vec<u8>, InfoHash) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let hash = Sha1Hash::of(&bytes);
        (bytes, hash)
    }

    fn piece_of(info: &[u8], piece: u32) -> &[u8] {
        let start = piece as usize * METADATA_PIECE_LEN;
        &info[start..(start + METADATA_PIECE_LEN).min(info.len())]
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Behaviour {
        Honest,
        Liar,
        Rejecter,
        Silent,
    }

    /// Everything a simulated swarm of peers did to a fetch.
    #[derive(Default, Debug)]
    struct Log {
        outcomes: Vec<Outcome<u8>>,
        errors: Vec<(u8, PeerError)>,
        requests: Vec<(u8, u32)>,
        timeouts: Vec<(u8, bool)>,
    }

    /// Drives `fetch` against `peers` on a virtual clock until it verifies
    /// or nothing is left to do (bounded).
    fn simulate(
        fetch: &mut MetadataFetch<u8>,
        peers: &[(u8, Behaviour)],
        info: &[u8],
        mut now: Instant,
    ) -> Log {
        let total = u32::try_from(info.len()).unwrap();
        let mut log = Log::default();
        for _ in 0..10_000 {
            let mut asked = Vec::new();
            while let Some(request) = fetch.poll_request(now) {
                asked.push(request);
                log.requests.push(request);
            }
            let asked_any = !asked.is_empty();
            for (peer, piece) in asked {
                let behaviour = peers.iter().find(|(p, _)| *p == peer).unwrap().1;
                let result = match behaviour {
                    Behaviour::Honest => fetch
                        .handle_data(peer, piece, total, piece_of(info, piece))
                        .map(|o| log.outcomes.extend(o)),
                    Behaviour::Liar => {
                        let mut bad = piece_of(info, piece).to_vec();
                        bad[0] ^= 0xff;
                        fetch
                            .handle_data(peer, piece, total, &bad)
                            .map(|o| log.outcomes.extend(o))
                    }
                    Behaviour::Rejecter => fetch.handle_reject(peer, piece, now),
                    Behaviour::Silent => Ok(()),
                };
                if let Err(e) = result {
                    log.errors.push((peer, e));
                }
            }
            if matches!(log.outcomes.last(), Some(Outcome::Verified { .. })) {
                break;
            }
            let answered = asked_any && peers.iter().any(|(_, b)| *b != Behaviour::Silent);
            if answered {
                continue; // answers may free peers to be asked at once
            }
            let Some(next) = fetch.next_deadline() else {
                break;
            };
            assert!(next > now, "busy loop: the next deadline is not after now");
            now = next;
            log.timeouts.extend(fetch.handle_timeout(now));
        }
        log
    }

    fn verified(log: &Log) -> Option<(&[u8], &[u8])> {
        log.outcomes.iter().find_map(|o| match o {
            Outcome::Verified { info, liars } => Some((info.as_slice(), liars.as_slice())),
            Outcome::Mismatch { .. } => None,
        })
    }

    // ---- the codec ----

    #[test]
    fn request_and_reject_encode_as_bep9_shows() {
        let request = MetadataMessage::Request { piece: 0 };
        assert_eq!(request.encode(), b"d8:msg_typei0e5:piecei0ee");
        let reject = MetadataMessage::Reject { piece: 3 };
        assert_eq!(reject.encode(), b"d8:msg_typei2e5:piecei3ee");
        for m in [request, reject] {
            assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m.clone()));
        }
    }

    #[test]
    fn data_carries_its_bytes_after_the_dictionary() {
        let data = vec![0xabu8; 100];
        let m = MetadataMessage::Data {
            piece: 1,
            total_size: 16_484,
            data: &data,
        };
        let bytes = m.encode();
        assert!(bytes.starts_with(b"d8:msg_typei1e5:piecei1e10:total_sizei16484ee"));
        assert!(bytes.ends_with(&data));
        assert_eq!(MetadataMessage::decode(&bytes), Ok(m));
    }

    #[test]
    fn decode_refuses_oversize_total_size_and_data() {
        let over = MAX_METADATA_SIZE + 1;
        let bytes = format!("d8:msg_typei1e5:piecei0e10:total_sizei{over}ee");
        assert_eq!(
            MetadataMessage::decode(bytes.as_bytes()),
            Err(MessageError::BadTotalSize(over as i64))
        );
        let zero = b"d8:msg_typei1e5:piecei0e10:total_sizei0ee";
        assert_eq!(
            MetadataMessage::decode(zero),
            Err(MessageError::BadTotalSize(0))
        );
        let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        long.extend(vec![0; METADATA_PIECE_LEN + 1]);
        assert_eq!(
            MetadataMessage::decode(&long),
            Err(MessageError::DataTooLong(METADATA_PIECE_LEN + 1))
        );
    }

    #[test]
    fn decode_refuses_malformed_headers() {
        let cases: [(&[u8], MessageError); 5] = [
            (b"i1e", MessageError::NotADict),
            (b"d5:piecei0ee", MessageError::BadField("msg_type")),
            (
                b"d8:msg_typei0e5:piecei-1ee",
                MessageError::BadField("piece"),
            ),
            (b"d8:msg_typei0ee", MessageError::BadField("piece")),
            (
                b"d8:msg_typei0e5:piecei0eexyz",
                MessageError::TrailingBytes(3),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(MetadataMessage::decode(bytes), Err(expected), "{bytes:?}");
        }
        assert!(matches!(
            MetadataMessage::decode(b"d8:msg_type"),
            Err(MessageError::Bencode(_))
        ));
        let mut endless = b"d8:msg_typei0e5:piece".to_vec();
        endless.extend(vec![b'l'; 4 * MAX_HEADER_LEN]);
        assert_eq!(
            MetadataMessage::decode(&endless),
            Err(MessageError::HeaderTooLong)
        );
    }

    #[test]
    fn unknown_message_types_are_reported_for_the_caller_to_ignore() {
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei7e5:piecei0ee"),
            Ok(MetadataMessage::Unknown { msg_type: 7 })
        );
    }

    #[test]
    fn every_truncation_of_a_data_message_decodes_or_fails_without_panicking() {
        let data = vec![7u8; 300];
        let bytes = MetadataMessage::Data {
            piece: 2,
            total_size: 33_068,
            data: &data,
        }
        .encode();
        for cut in 0..=bytes.len() {
            let _ = MetadataMessage::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn piece_lengths_follow_the_total_size() {
        assert_eq!(piece_count(1), 1);
        assert_eq!(piece_count(16_384), 1);
        assert_eq!(piece_count(16_385), 2);
        assert_eq!(piece_len(16_385, 0), 16_384);
        assert_eq!(piece_len(16_385, 1), 1);
        assert_eq!(piece_len(16_385, 2), 0);
        assert_eq!(piece_len(u32::MAX, u32::MAX), 0);
    }

    // ---- the fetch ----

    #[test]
    fn an_honest_peer_gives_verified_metadata() {
        let (info, hash) = info_of(40_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1, 40_000).unwrap();
        let log = simulate(&mut fetch, &[(1, Behaviour::Honest)], &info, Instant::now());
        let (got, liars) = verified(&log).unwrap();
        assert_eq!(got, info);
        assert!(liars.is_empty());
        assert_eq!(log.requests, [(1, 0), (1, 1), (1, 2)]);
        assert!(log.errors.is_empty(), "{:?}", log.errors);
        assert_eq!(
            fetch.poll_request(Instant::now()),
            None,
            "done: no more requests"
        );
    }

    #[test]
    fn several_peers_are_asked_in_parallel() {
        let (_, hash) = info_of(40_000);
        let mut fetch = MetadataFetch::new(hash);
        for peer in [1, 2, 3, 4] {
            fetch.handle_size(peer, 40_000).unwrap();
        }
        let now = Instant::now();
        let mut asked = Vec::new();
        while let Some(r) = fetch.poll_request(now) {
            asked.push(r);
        }
        assert_eq!(asked, [(1, 0), (2, 1), (3, 2)]);
        assert_eq!(fetch.next_deadline(), Some(now + REQUEST_TIMEOUT));
    }

    #[test]
    fn a_lone_peer_with_wrong_data_is_proven_and_dropped() {
        let (info, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(9, 20_000).unwrap();
        let log = simulate(&mut fetch, &[(9, Behaviour::Liar)], &info, Instant::now());
        assert_eq!(
            log.outcomes,
            [Outcome::Mismatch {
                suppliers: vec![9],
                proven: true
            }]
        );
        assert_eq!(
            fetch.poll_request(Instant::now()),
            None,
            "the liar is not asked again"
        );
        fetch.handle_size(2, 20_000).unwrap();
        let log = simulate(&mut fetch, &[(2, Behaviour::Honest)], &info, Instant::now());
        assert_eq!(verified(&log).unwrap().0, info);
    }

    #[test]
    fn a_liar_beside_an_honest_peer_is_named_and_the_honest_one_is_not() {
        let (info, hash) = info_of(70_000);
        for (liar, honest) in [(1u8, 2u8), (2, 1)] {
            let mut fetch = MetadataFetch::new(hash);
            fetch.handle_size(1, 70_000).unwrap();
            fetch.handle_size(2, 70_000).unwrap();
            let peers = [(liar, Behaviour::Liar), (honest, Behaviour::Honest)];
            let log = simulate(&mut fetch, &peers, &info, Instant::now());
            let (got, liars) = verified(&log).unwrap();
            assert_eq!(got, info);
            assert_eq!(liars, [liar], "{:?}", log.outcomes);
            // The first attempt mixed both: nobody proven, so the honest
            // peer is never named in a proven mismatch.
            assert!(matches!(
                log.outcomes[0],
                Outcome::Mismatch { proven: false, .. }
            ));
            for outcome in &log.outcomes {
                if let Outcome::Mismatch {
                    suppliers,
                    proven: true,
                } = outcome
                {
                    assert_eq!(suppliers, &[liar]);
                }
            }
        }
    }

    #[test]
    fn an_oversize_metadata_size_is_refused_and_never_asked() {
        let (info, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        let over = MAX_METADATA_SIZE as u64 + 1;
        assert_eq!(fetch.handle_size(1, over), Err(PeerError::BadSize(over)));
        assert_eq!(fetch.handle_size(1, 0), Err(PeerError::BadSize(0)));
        assert_eq!(
            fetch.handle_size(1, u64::MAX),
            Err(PeerError::BadSize(u64::MAX))
        );
        assert_eq!(fetch.poll_request(Instant::now()), None);
        fetch.handle_size(2, 20_000).unwrap();
        let log = simulate(&mut fetch, &[(2, Behaviour::Honest)], &info, Instant::now());
        assert!(log.requests.iter().all(|(p, _)| *p == 2));
        assert_eq!(verified(&log).unwrap().0, info);
    }

    #[test]
    fn a_peer_that_lies_about_the_size_is_proven_wrong_and_the_true_size_wins() {
        let (info, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1, 20_001).unwrap(); // adopted first
        fetch.handle_size(2, 20_000).unwrap();
        let mut padded = info.clone();
        padded.push(0);
        // Peer 1 serves its 20,001 bytes honestly, but they are not the
        // torrent's metadata.
        let now = Instant::now();
        let mut outcome = None;
        while outcome.is_none() {
            let (peer, piece) = fetch.poll_request(now).unwrap();
            assert_eq!(peer, 1, "peer 2 has another size: not asked yet");
            outcome = fetch
                .handle_data(1, piece, 20_001, piece_of(&padded, piece))
                .unwrap();
        }
        assert_eq!(
            outcome,
            Some(Outcome::Mismatch {
                suppliers: vec![1],
                proven: true
            })
        );
        assert_eq!(fetch.total_len(), Some(20_000));
        let log = simulate(&mut fetch, &[(2, Behaviour::Honest)], &info, now);
        assert_eq!(verified(&log).unwrap().0, info);
    }

    #[test]
    fn a_source_that_announces_another_size_is_not_asked_for_this_one() {
        // Found by the fuzz target `extensions`: after a mismatch the fetch
        // asks one source at a time; a source that then announced another
        // size was still asked for pieces of the size being fetched, and a
        // piece asked under one size and answered after the fetch moved to
        // another went into the new attempt, so the mismatch "proved" a
        // peer wrong for another peer's size claim.
        let (info, hash) = info_of(40_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1u8, 40_000).unwrap();
        fetch.handle_size(2, 40_000).unwrap();
        let now = Instant::now();
        // Peer 1 lies in its pieces, peer 2 is honest: the mixed attempt
        // proves nobody, and the fetch goes on one source at a time.
        let mut outcome = None;
        while outcome.is_none() {
            let asked: Vec<(u8, u32)> = std::iter::from_fn(|| fetch.poll_request(now)).collect();
            for (peer, piece) in asked {
                let mut bytes = piece_of(&info, piece).to_vec();
                if peer == 1 {
                    bytes[0] ^= 1;
                }
                outcome = outcome.or(fetch.handle_data(peer, piece, 40_000, &bytes).unwrap());
            }
        }
        assert!(matches!(
            outcome,
            Some(Outcome::Mismatch { proven: false, .. })
        ));
        let (source, piece) = fetch.poll_request(now).unwrap();
        let other = if source == 1 { 2 } else { 1 };
        // The source announces another size (a repeated BEP 10 handshake):
        // its request is taken back, and it is not asked again for pieces
        // of 40,000 bytes; the other peer becomes the source.
        fetch.handle_size(source, 50_000).unwrap();
        assert_eq!(fetch.poll_request(now), Some((other, piece)));
        // A piece the old source answers anyway is refused as unrequested.
        assert_eq!(
            fetch.handle_data(source, piece, 50_000, &vec![0; METADATA_PIECE_LEN]),
            Err(PeerError::Unrequested(piece))
        );
    }

    #[test]
    fn a_piece_asked_before_the_fetched_size_changed_is_dropped_not_blamed() {
        let (info, hash) = info_of(40_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1u8, 30_000).unwrap(); // adopted first
        let now = Instant::now();
        let (peer, piece) = fetch.poll_request(now).unwrap();
        assert_eq!((peer, piece), (1, 0));
        // Peer 1 corrects itself to the true size (its request is taken
        // back); peer 2 announces it too; the fetch moves to 40,000 bytes.
        fetch.handle_size(1, 40_000).unwrap();
        fetch.handle_size(2, 40_000).unwrap();
        assert_eq!(fetch.total_len(), Some(40_000));
        let log = simulate(
            &mut fetch,
            &[(1, Behaviour::Honest), (2, Behaviour::Honest)],
            &info,
            now,
        );
        let (got, liars) = verified(&log).unwrap();
        assert_eq!(got, info);
        assert!(liars.is_empty());
    }

    #[test]
    fn endless_rejects_end_with_the_peer_dropped_and_the_honest_peer_finishing() {
        let (info, hash) = info_of(50_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1, 50_000).unwrap();
        fetch.handle_size(2, 50_000).unwrap();
        let peers = [(1, Behaviour::Rejecter), (2, Behaviour::Honest)];
        let log = simulate(&mut fetch, &peers, &info, Instant::now());
        assert_eq!(verified(&log).unwrap().0, info);
        let by_1 = log.requests.iter().filter(|(p, _)| *p == 1).count();
        assert!(
            by_1 <= MAX_REJECTS as usize,
            "{by_1} requests to the rejecter"
        );
    }

    #[test]
    fn a_peer_that_only_rejects_is_given_up_after_max_rejects() {
        let (info, hash) = info_of(50_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1, 50_000).unwrap();
        let log = simulate(
            &mut fetch,
            &[(1, Behaviour::Rejecter)],
            &info,
            Instant::now(),
        );
        assert_eq!(log.requests.len(), MAX_REJECTS as usize);
        assert_eq!(log.errors, [(1, PeerError::GaveUp)]);
        assert!(log.outcomes.is_empty());
        assert_eq!(fetch.next_deadline(), None, "nothing left to wait for");
    }

    #[test]
    fn a_second_peer_finishes_after_the_first_times_out() {
        let (info, hash) = info_of(30_000);
        let mut fetch = MetadataFetch::new(hash);
        let t0 = Instant::now();
        fetch.handle_size(1, 30_000).unwrap();
        assert_eq!(fetch.poll_request(t0), Some((1, 0)));
        assert_eq!(fetch.poll_request(t0), None, "one request per peer");
        // Peer 2 arrives; piece 1 goes to it, piece 0 stays with peer 1.
        fetch.handle_size(2, 30_000).unwrap();
        assert_eq!(fetch.poll_request(t0), Some((2, 1)));
        let total = 30_000;
        assert_eq!(fetch.handle_data(2, 1, total, piece_of(&info, 1)), Ok(None));
        assert_eq!(fetch.poll_request(t0), None, "piece 0 is still in flight");
        // Not yet due.
        let almost = t0 + REQUEST_TIMEOUT - Duration::from_millis(1);
        assert!(fetch.handle_timeout(almost).is_empty());
        let due = t0 + REQUEST_TIMEOUT;
        assert_eq!(fetch.handle_timeout(due), [(1, false)]);
        assert_eq!(fetch.poll_request(due), Some((2, 0)));
        // Peer 1's late answer is not taken.
        assert_eq!(
            fetch.handle_data(1, 0, total, piece_of(&info, 0)),
            Err(PeerError::Unrequested(0))
        );
        let done = fetch.handle_data(2, 0, total, piece_of(&info, 0)).unwrap();
        assert_eq!(
            done,
            Some(Outcome::Verified {
                info: info.clone(),
                liars: vec![]
            })
        );
    }

    #[test]
    fn a_silent_peer_is_dropped_after_max_timeouts() {
        let (info, hash) = info_of(10_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_size(1, 10_000).unwrap();
        let log = simulate(&mut fetch, &[(1, Behaviour::Silent)], &info, Instant::now());
        assert_eq!(log.requests.len(), MAX_TIMEOUTS as usize);
        assert_eq!(log.timeouts.last(), Some(&(1, true)));
        assert_eq!(fetch.next_deadline(), None);
    }

    #[test]
    fn wrong_lengths_and_changed_sizes_are_refused_and_the_piece_asked_again() {
        let (info, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        let now = Instant::now();
        fetch.handle_size(1, 20_000).unwrap();
        assert_eq!(fetch.poll_request(now), Some((1, 0)));
        assert_eq!(
            fetch.handle_data(1, 0, 20_000, &info[..100]),
            Err(PeerError::WrongLength {
                piece: 0,
                got: 100,
                expected: METADATA_PIECE_LEN
            })
        );
        assert_eq!(fetch.poll_request(now), Some((1, 0)));
        assert_eq!(
            fetch.handle_data(1, 0, 30_000, piece_of(&info, 0)),
            Err(PeerError::SizeChanged {
                announced: 20_000,
                sent: 30_000
            })
        );
        assert_eq!(
            fetch.handle_data(7, 0, 20_000, piece_of(&info, 0)),
            Err(PeerError::UnknownPeer)
        );
    }

    #[test]
    fn a_removed_peer_gives_its_request_back() {
        let (_, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        let now = Instant::now();
        fetch.handle_size(1, 20_000).unwrap();
        fetch.handle_size(2, 20_000).unwrap();
        assert_eq!(fetch.poll_request(now), Some((1, 0)));
        assert_eq!(fetch.poll_request(now), Some((2, 1)));
        fetch.remove_peer(1);
        assert_eq!(fetch.poll_request(now), None, "peer 2 is busy");
        fetch.handle_size(3, 20_000).unwrap();
        assert_eq!(fetch.poll_request(now), Some((3, 0)));
    }

    #[test]
    fn a_repeated_handshake_does_not_reset_the_reject_count() {
        let (_, hash) = info_of(20_000);
        let mut fetch = MetadataFetch::new(hash);
        let mut now = Instant::now();
        fetch.handle_size(1, 20_000).unwrap();
        let mut gave_up = false;
        for _ in 0..MAX_REJECTS {
            fetch.handle_size(1, 20_000).unwrap();
            let (peer, piece) = fetch.poll_request(now).unwrap();
            gave_up = fetch.handle_reject(peer, piece, now) == Err(PeerError::GaveUp);
            now += REJECT_BACKOFF;
        }
        assert!(gave_up);
        assert_eq!(fetch.poll_request(now), None);
    }

    #[test]
    fn the_peer_count_is_capped() {
        let (_, hash) = info_of(100);
        let mut fetch = MetadataFetch::new(hash);
        for peer in 0..MAX_PEERS {
            fetch.handle_size(peer as u16, 100).unwrap();
        }
        assert_eq!(
            fetch.handle_size(u16::MAX, 100),
            Err(PeerError::TooManyPeers)
        );
        assert_eq!(fetch.handle_size(0, 100), Ok(()), "a known peer may update");
    }
}
