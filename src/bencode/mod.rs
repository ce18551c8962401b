//! Bencode, the serialization format of `.torrent` files, tracker replies and
//! extension messages (BEP 3, "bencoding").
//!
//! Layer 0: pure. Bytes in, values out (and back); no I/O, no clock.
//!
//! Four kinds of value exist: integers (`i42e`), byte strings (`4:spam`),
//! lists (`l...e`) and dictionaries (`d...e`, keys are byte strings in sorted
//! order). The [decoder](decode) borrows from its input, so decoding a 10 MB
//! torrent copies no strings, and it records the raw bytes of every list and
//! dictionary: the info-hash of a torrent is the SHA-1 of the raw `info`
//! dictionary exactly as it appeared in the file, never of a re-encoding.
//! Large documents (torrents) are read through a flat [`Doc`] of 12-byte
//! tokens rather than a [`Value`] tree, which costs several times more per
//! value.
//!
//! Everything decoded here comes from strangers, so the decoder is written for
//! hostile input: nesting depth and token count are capped, integers use
//! checked arithmetic, string lengths are checked against the bytes actually
//! present before anything is sliced, and every malformed input is a typed
//! [`DecodeError`] with the byte offset where it went wrong.

mod decode;
pub mod doc;
mod encode;
mod value;

pub use decode::{decode, decode_prefix, DecodeError, DecodeErrorKind, Limits, Strictness};
pub use doc::{Doc, Kind, Node};
pub use encode::{encode, encode_into};
pub use value::{Dict, List, Value};
