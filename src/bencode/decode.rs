//! The bencode decoder: strict about syntax, bounded in depth and size.
//!
//! Layer 0: pure. The syntax is checked by the recursive-descent parser in
//! [`super::doc`]; this file builds the [`Value`] tree from its tokens and
//! holds the limits and errors both share. Recursion is bounded by
//! [`Limits::max_depth`], so a file of 100,000 nested lists is an error at
//! depth 101, not a stack overflow.

use std::fmt;

use super::doc::{self, Kind, Node};
use super::value::{Dict, List, Value};

/// How strictly dictionary key order is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Keys must be in strictly increasing byte order, as BEP 3 requires.
    Canonical,
    /// Keys may appear in any order (real torrents made by old tools do this),
    /// but duplicates are still refused: two `info` keys would make the
    /// info-hash ambiguous.
    Lenient,
}

/// Bounds on what one decode may consume. Every field exists because hostile
/// input would otherwise cost unbounded stack or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries allowed (libtorrent: 100).
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dictionaries) in one document
    /// (libtorrent: 3 million), which bounds the memory of the value tree.
    pub max_tokens: usize,
    /// Whether dictionary keys must be sorted.
    pub strictness: Strictness,
}

impl Limits {
    /// Limits for `.torrent` files: libtorrent's depth and token caps, keys in any order.
    pub const TORRENT: Limits = Limits {
        max_depth: 100,
        max_tokens: 3_000_000,
        strictness: Strictness::Lenient,
    };

    /// Limits for small protocol messages (tracker replies, extension
    /// handshakes): shallow and small, keys in any order.
    pub const MESSAGE: Limits = Limits {
        max_depth: 32,
        max_tokens: 200_000,
        strictness: Strictness::Lenient,
    };

    /// The torrent limits with canonical key order enforced.
    pub const CANONICAL: Limits = Limits {
        strictness: Strictness::Canonical,
        ..Limits::TORRENT
    };
}

/// What went wrong in a bencode document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer or string length written with a leading zero (`i03e`, `03:abc`).
    LeadingZero,
    /// The integer `i-0e`, which BEP 3 forbids.
    NegativeZero,
    /// An integer with no digits (`ie`, `i-e`).
    EmptyInteger,
    /// An integer outside the 64-bit signed range.
    IntegerOverflow,
    /// A string length larger than the bytes left in the input.
    StringTooLong {
        /// The declared length.
        declared: usize,
        /// The bytes actually left after the colon.
        available: usize,
    },
    /// A dictionary key that is not a byte string.
    NonStringKey,
    /// Dictionary keys out of order (only in canonical mode).
    UnsortedKeys,
    /// The same key twice in one dictionary.
    DuplicateKey,
    /// Nesting deeper than [`Limits::max_depth`].
    TooDeep(usize),
    /// More values than [`Limits::max_tokens`].
    TooManyTokens(usize),
    /// Bytes left over after a complete value.
    TrailingData,
    /// An input too long to index with 32-bit offsets (4 GiB or more).
    InputTooLarge(usize),
}

/// A decode failure: what and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Offset in the input where it was noticed.
    pub offset: usize,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEnd => write!(f, "input ends in the middle of a value"),
            DecodeErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            DecodeErrorKind::LeadingZero => write!(f, "number with a leading zero"),
            DecodeErrorKind::NegativeZero => write!(f, "negative zero integer"),
            DecodeErrorKind::EmptyInteger => write!(f, "integer without digits"),
            DecodeErrorKind::IntegerOverflow => write!(f, "integer does not fit in 64 bits"),
            DecodeErrorKind::StringTooLong {
                declared,
                available,
            } => write!(
                f,
                "string length {declared} exceeds the {available} bytes left"
            ),
            DecodeErrorKind::NonStringKey => write!(f, "dictionary key is not a string"),
            DecodeErrorKind::UnsortedKeys => write!(f, "dictionary keys are not sorted"),
            DecodeErrorKind::DuplicateKey => write!(f, "duplicate dictionary key"),
            DecodeErrorKind::TooDeep(max) => write!(f, "nesting deeper than {max} levels"),
            DecodeErrorKind::TooManyTokens(max) => write!(f, "more than {max} values"),
            DecodeErrorKind::TrailingData => write!(f, "trailing data after the value"),
            DecodeErrorKind::InputTooLarge(len) => write!(f, "input of {len} bytes is too large"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode error at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value that must fill `input` completely.
pub fn decode(input: &[u8], limits: Limits) -> Result<Value<'_>, DecodeError> {
    let doc = doc::parse(input, limits)?;
    Ok(build(doc.root()))
}

/// Decodes one value from the start of `input` and returns it with the number
/// of bytes it used; what follows is left to the caller (BEP 9 metadata
/// messages put raw bytes after a dictionary).
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<(Value<'_>, usize), DecodeError> {
    let (doc, used) = doc::parse_prefix(input, limits)?;
    Ok((build(doc.root()), used))
}

/// The value tree of a checked document. Recursion is bounded by the
/// document's depth, which the parser capped at [`Limits::max_depth`].
fn build<'a>(node: Node<'_, 'a>) -> Value<'a> {
    match node.kind() {
        Kind::Int => Value::Int(node.as_int().unwrap_or_default()),
        Kind::Bytes => Value::Bytes(node.raw()),
        Kind::List => Value::List(List {
            items: node.items().into_iter().flatten().map(build).collect(),
            span: node.span(),
        }),
        Kind::Dict => Value::Dict(Dict {
            entries: node
                .entries()
                .into_iter()
                .flatten()
                .map(|(key, value)| (key, build(value)))
                .collect(),
            span: node.span(),
            raw: node.raw(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(input: &[u8]) -> DecodeErrorKind {
        decode(input, Limits::CANONICAL).unwrap_err().kind
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(decode(b"i42e", Limits::CANONICAL).unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-7e", Limits::CANONICAL).unwrap(), Value::Int(-7));
        assert_eq!(decode(b"i0e", Limits::CANONICAL).unwrap(), Value::Int(0));
        assert_eq!(
            decode(b"4:spam", Limits::CANONICAL).unwrap(),
            Value::Bytes(b"spam")
        );
        assert_eq!(decode(b"0:", Limits::CANONICAL).unwrap(), Value::Bytes(b""));
        let list = decode(b"l4:spami1ee", Limits::CANONICAL).unwrap();
        assert_eq!(
            list.as_list().unwrap().items,
            vec![Value::Bytes(b"spam"), Value::Int(1)]
        );
        let dict = decode(b"d3:cow3:moo4:spam4:eggse", Limits::CANONICAL).unwrap();
        let dict = dict.as_dict().unwrap();
        assert_eq!(dict.get_bytes(b"cow"), Some(&b"moo"[..]));
        assert_eq!(dict.get_bytes(b"spam"), Some(&b"eggs"[..]));
    }

    #[test]
    fn integer_extremes_decode_exactly() {
        let max = format!("i{}e", i64::MAX);
        let min = format!("i{}e", i64::MIN);
        assert_eq!(
            decode(max.as_bytes(), Limits::CANONICAL).unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            decode(min.as_bytes(), Limits::CANONICAL).unwrap(),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn decode_rejects_integer_overflow_instead_of_wrapping() {
        assert_eq!(
            kind(b"i99999999999999999999e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind(b"i9223372036854775808e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            kind(b"i-9223372036854775809e"),
            DecodeErrorKind::IntegerOverflow
        );
    }

    #[test]
    fn decode_rejects_malformed_integers() {
        assert_eq!(kind(b"i-0e"), DecodeErrorKind::NegativeZero);
        assert_eq!(kind(b"i03e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind(b"i-03e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind(b"i00e"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind(b"ie"), DecodeErrorKind::EmptyInteger);
        assert_eq!(kind(b"i-e"), DecodeErrorKind::EmptyInteger);
        assert_eq!(kind(b"i+1e"), DecodeErrorKind::UnexpectedByte(b'+'));
        assert_eq!(kind(b"i1.5e"), DecodeErrorKind::UnexpectedByte(b'.'));
        assert_eq!(kind(b"i12"), DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn decode_rejects_malformed_strings() {
        assert_eq!(kind(b"03:abc"), DecodeErrorKind::LeadingZero);
        assert_eq!(kind(b"3abc"), DecodeErrorKind::UnexpectedByte(b'a'));
        assert_eq!(
            kind(b"3:ab"),
            DecodeErrorKind::StringTooLong {
                declared: 3,
                available: 2
            }
        );
        assert_eq!(kind(b"5"), DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn decode_rejects_huge_lengths_without_allocating() {
        assert_eq!(
            kind(b"999999999999:x"),
            DecodeErrorKind::StringTooLong {
                declared: 999_999_999_999,
                available: 1
            }
        );
        // A length that overflows usize saturates and is still just "too long".
        let err = kind(b"99999999999999999999999999999:x");
        assert!(
            matches!(err, DecodeErrorKind::StringTooLong { .. }),
            "{err:?}"
        );
        assert!(matches!(
            kind(b"l4294967296:e"),
            DecodeErrorKind::StringTooLong { .. }
        ));
    }

    #[test]
    fn decode_rejects_trailing_data_and_truncation() {
        assert_eq!(kind(b"i1ei2e"), DecodeErrorKind::TrailingData);
        assert_eq!(kind(b"le "), DecodeErrorKind::TrailingData);
        assert_eq!(kind(b""), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"l"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"d3:foo"), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(kind(b"x"), DecodeErrorKind::UnexpectedByte(b'x'));
        assert_eq!(kind(b"e"), DecodeErrorKind::UnexpectedByte(b'e'));
    }

    #[test]
    fn decode_rejects_non_string_keys() {
        assert_eq!(kind(b"di1ei2ee"), DecodeErrorKind::NonStringKey);
        assert_eq!(kind(b"dlei2ee"), DecodeErrorKind::NonStringKey);
    }

    #[test]
    fn canonical_mode_rejects_unsorted_keys_lenient_accepts_them() {
        let input = b"d1:bi1e1:ai2ee";
        assert_eq!(kind(input), DecodeErrorKind::UnsortedKeys);
        let value = decode(input, Limits::TORRENT).unwrap();
        assert_eq!(value.as_dict().unwrap().get_int(b"a"), Some(2));
    }

    #[test]
    fn both_modes_reject_duplicate_keys() {
        assert_eq!(kind(b"d1:ai1e1:ai2ee"), DecodeErrorKind::DuplicateKey);
        let lenient = |input: &[u8]| decode(input, Limits::TORRENT).unwrap_err().kind;
        assert_eq!(lenient(b"d1:ai1e1:ai2ee"), DecodeErrorKind::DuplicateKey);
        assert_eq!(
            lenient(b"d1:ai1e1:bi1e1:ai2ee"),
            DecodeErrorKind::DuplicateKey
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut input = vec![b'l'; 100_000];
        input.extend(std::iter::repeat_n(b'e', 100_000));
        assert_eq!(kind(&input), DecodeErrorKind::TooDeep(100));
        let mut dicts = Vec::new();
        for _ in 0..100_000 {
            dicts.extend_from_slice(b"d1:a");
        }
        assert_eq!(kind(&dicts), DecodeErrorKind::TooDeep(100));
        // Exactly at the limit is fine.
        let mut ok = vec![b'l'; 100];
        ok.extend(std::iter::repeat_n(b'e', 100));
        assert!(decode(&ok, Limits::CANONICAL).is_ok());
    }

    #[test]
    fn token_count_is_capped() {
        let limits = Limits {
            max_tokens: 10,
            ..Limits::CANONICAL
        };
        let mut input = b"l".to_vec();
        for _ in 0..20 {
            input.extend_from_slice(b"i1e");
        }
        input.push(b'e');
        assert_eq!(
            decode(&input, limits).unwrap_err().kind,
            DecodeErrorKind::TooManyTokens(10)
        );
    }

    #[test]
    fn spans_select_the_raw_bytes_of_dicts_and_lists() {
        let input = b"d4:infod1:xi1ee4:listli1ei2eee";
        let value = decode(input, Limits::CANONICAL).unwrap();
        let top = value.as_dict().unwrap();
        assert_eq!(top.span, 0..input.len());
        let info = top.get_dict(b"info").unwrap();
        assert_eq!(info.raw, b"d1:xi1ee");
        assert_eq!(&input[info.span.clone()], b"d1:xi1ee");
        let list = top.get_list(b"list").unwrap();
        assert_eq!(&input[list.span.clone()], b"li1ei2ee");
    }

    #[test]
    fn decode_prefix_reports_bytes_used() {
        let (value, used) = decode_prefix(b"d1:ai1eeRAW", Limits::MESSAGE).unwrap();
        assert_eq!(used, 8);
        assert_eq!(value.as_dict().unwrap().get_int(b"a"), Some(1));
    }

    #[test]
    fn errors_name_the_offset() {
        let err = decode(b"li1ei-0ee", Limits::CANONICAL).unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(
            err.to_string(),
            "bencode error at byte 6: negative zero integer"
        );
    }

    #[test]
    fn no_prefix_of_a_valid_document_decodes() {
        let input = b"d8:announce3:url4:infod6:lengthi5e4:name1:a12:piece lengthi16384eee";
        assert!(decode(input, Limits::CANONICAL).is_ok());
        for cut in 0..input.len() {
            assert!(
                decode(&input[..cut], Limits::CANONICAL).is_err(),
                "cut {cut}"
            );
        }
    }
}
