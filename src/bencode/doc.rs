//! The bencode parser: one pass over the input that checks every rule and
//! records each value as a 12-byte token in one flat array.
//!
//! Layer 0: pure. This is the only place bencode syntax is checked; the
//! [`Value`](super::Value) tree of [`decode`](super::decode) is built from a
//! [`Doc`] afterwards. Large inputs (a 10 MiB torrent holds up to 3 million
//! values) are read through [`Node`]s over the flat array instead, because a
//! tree costs about 70 bytes per value and the array 12.
//!
//! A token holds the value's byte range and the index of the token after its
//! subtree, so a list or dictionary is walked child by child by jumping from
//! one sibling to the next, and the raw bytes of any value (the `info`
//! dictionary for the info-hash) are one slice of the input.
//!
//! Invariants: every token describes a syntactically valid value; a
//! dictionary's tokens alternate key (a byte string) and value; token
//! indices and byte offsets fit in `u32` (longer inputs are refused).

use std::ops::Range;

use super::decode::{DecodeError, DecodeErrorKind, Limits, Strictness};

/// Most tokens one document may hold, whatever the limits say: the index
/// shares a `u32` with the value's kind (two bits).
const MAX_INDEX: usize = (1 << 30) - 1;

/// Kind bits stored in the top two bits of [`Token::next_and_kind`].
const KIND_SHIFT: u32 = 30;

/// The four kinds of bencode value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `i<digits>e`.
    Int,
    /// `<len>:<bytes>`.
    Bytes,
    /// `l<values>e`.
    List,
    /// `d<key><value>...e`.
    Dict,
}

impl Kind {
    fn bits(self) -> u32 {
        match self {
            Kind::Int => 0,
            Kind::Bytes => 1,
            Kind::List => 2,
            Kind::Dict => 3,
        }
    }

    fn from_bits(bits: u32) -> Kind {
        match bits & 3 {
            0 => Kind::Int,
            1 => Kind::Bytes,
            2 => Kind::List,
            _ => Kind::Dict,
        }
    }
}

/// One value: where it is and where its subtree ends.
#[derive(Debug, Clone, Copy)]
struct Token {
    /// First byte: the `i`, `l` or `d`, or for a byte string its first data
    /// byte (after the colon).
    start: u32,
    /// One past the last byte (after the closing `e`, or the string's end).
    end: u32,
    /// Index of the first token after this value's subtree, with the kind
    /// in the top two bits.
    next_and_kind: u32,
}

impl Token {
    fn next(self) -> usize {
        (self.next_and_kind & ((1 << KIND_SHIFT) - 1)) as usize
    }

    fn kind(self) -> Kind {
        Kind::from_bits(self.next_and_kind >> KIND_SHIFT)
    }
}

/// A parsed bencode document: the input and one token per value, in
/// document order (the root first).
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    input: &'a [u8],
    tokens: Vec<Token>,
}

/// Parses exactly one value that must fill `input` completely.
pub fn parse(input: &[u8], limits: Limits) -> Result<Doc<'_>, DecodeError> {
    let (doc, used) = parse_prefix(input, limits)?;
    if used != input.len() {
        return Err(DecodeError {
            kind: DecodeErrorKind::TrailingData,
            offset: used,
        });
    }
    Ok(doc)
}

/// Parses one value from the start of `input`; returns it with the number of
/// bytes it used (what follows is the caller's business).
pub fn parse_prefix(input: &[u8], limits: Limits) -> Result<(Doc<'_>, usize), DecodeError> {
    if u32::try_from(input.len()).is_err() {
        return Err(DecodeError {
            kind: DecodeErrorKind::InputTooLarge(input.len()),
            offset: 0,
        });
    }
    let mut parser = Parser {
        input,
        pos: 0,
        counted: 0,
        limits,
        tokens: Vec::new(),
    };
    parser.value(0)?;
    let used = parser.pos;
    let mut tokens = parser.tokens;
    tokens.shrink_to_fit();
    Ok((Doc { input, tokens }, used))
}

impl<'a> Doc<'a> {
    /// The top-level value.
    pub fn root(&self) -> Node<'_, 'a> {
        Node {
            doc: self,
            index: 0,
        }
    }

    /// Number of values in the document (dictionary keys included).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    fn token(&self, index: usize) -> Token {
        self.tokens.get(index).copied().unwrap_or(Token {
            start: 0,
            end: 0,
            next_and_kind: 0,
        })
    }
}

/// One value inside a [`Doc`]: a cheap handle (a reference and an index).
#[derive(Debug, Clone, Copy)]
pub struct Node<'d, 'a> {
    doc: &'d Doc<'a>,
    index: usize,
}

impl<'d, 'a> Node<'d, 'a> {
    fn token(self) -> Token {
        self.doc.token(self.index)
    }

    /// What kind of value this is.
    pub fn kind(self) -> Kind {
        self.token().kind()
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(self) -> &'static str {
        match self.kind() {
            Kind::Int => "integer",
            Kind::Bytes => "string",
            Kind::List => "list",
            Kind::Dict => "dictionary",
        }
    }

    /// Byte range of the whole value in the input (a string's range covers
    /// its data only, not the length prefix).
    pub fn span(self) -> Range<usize> {
        let token = self.token();
        token.start as usize..token.end as usize
    }

    /// The value's bytes as they appear in the input: for a dictionary, from
    /// `d` to `e` inclusive (the info-hash is the SHA-1 of these); for a
    /// string, its data.
    pub fn raw(self) -> &'a [u8] {
        self.doc.input.get(self.span()).unwrap_or_default()
    }

    /// The integer, if this is one.
    pub fn as_int(self) -> Option<i64> {
        if self.kind() != Kind::Int {
            return None;
        }
        // Checked when parsed: `i`, optional `-`, digits, `e`, fits in i64.
        let raw = self.raw();
        let body = raw.get(1..raw.len().checked_sub(1)?)?;
        let (negative, digits) = match body.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, body),
        };
        digits.iter().try_fold(0i64, |value, &b| {
            let digit = i64::from(b.checked_sub(b'0')?);
            let scaled = value.checked_mul(10)?;
            if negative {
                scaled.checked_sub(digit)
            } else {
                scaled.checked_add(digit)
            }
        })
    }

    /// The byte string, if this is one.
    pub fn as_bytes(self) -> Option<&'a [u8]> {
        (self.kind() == Kind::Bytes).then(|| self.raw())
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(self) -> Option<&'a str> {
        self.as_bytes()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The elements, if this is a list.
    pub fn items(self) -> Option<Children<'d, 'a>> {
        (self.kind() == Kind::List).then(|| self.children())
    }

    /// The (key, value) pairs in input order, if this is a dictionary.
    pub fn entries(self) -> Option<Entries<'d, 'a>> {
        (self.kind() == Kind::Dict).then(|| Entries {
            children: self.children(),
        })
    }

    /// Whether a list or dictionary has no children (false for other kinds).
    pub fn is_empty_container(self) -> bool {
        matches!(self.kind(), Kind::List | Kind::Dict) && self.token().next() == self.index + 1
    }

    /// The value under `key`, if this is a dictionary holding it.
    pub fn get(self, key: &[u8]) -> Option<Node<'d, 'a>> {
        self.entries()?
            .find(|(k, _)| *k == key)
            .map(|(_, value)| value)
    }

    /// The integer under `key`, if present and an integer.
    pub fn get_int(self, key: &[u8]) -> Option<i64> {
        self.get(key).and_then(Node::as_int)
    }

    /// The byte string under `key`, if present and a byte string.
    pub fn get_bytes(self, key: &[u8]) -> Option<&'a [u8]> {
        self.get(key).and_then(Node::as_bytes)
    }

    /// The UTF-8 string under `key`, if present, a byte string, and valid UTF-8.
    pub fn get_str(self, key: &[u8]) -> Option<&'a str> {
        self.get(key).and_then(Node::as_str)
    }

    /// The list under `key`, if present and a list.
    pub fn get_list(self, key: &[u8]) -> Option<Node<'d, 'a>> {
        self.get(key).filter(|n| n.kind() == Kind::List)
    }

    /// The dictionary under `key`, if present and a dictionary.
    pub fn get_dict(self, key: &[u8]) -> Option<Node<'d, 'a>> {
        self.get(key).filter(|n| n.kind() == Kind::Dict)
    }

    fn children(self) -> Children<'d, 'a> {
        Children {
            doc: self.doc,
            index: self.index + 1,
            end: self.token().next(),
        }
    }
}

/// The children of a list (or the keys and values of a dictionary, in turn).
#[derive(Debug, Clone)]
pub struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    index: usize,
    end: usize,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = Node<'d, 'a>;

    fn next(&mut self) -> Option<Node<'d, 'a>> {
        if self.index >= self.end {
            return None;
        }
        let node = Node {
            doc: self.doc,
            index: self.index,
        };
        // Always moves forward: a token's subtree ends after the token.
        self.index = node.token().next().max(self.index + 1);
        Some(node)
    }
}

/// The (key, value) pairs of a dictionary.
#[derive(Debug, Clone)]
pub struct Entries<'d, 'a> {
    children: Children<'d, 'a>,
}

impl<'d, 'a> Iterator for Entries<'d, 'a> {
    type Item = (&'a [u8], Node<'d, 'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.children.next()?;
        let value = self.children.next()?;
        Some((key.raw(), value))
    }
}

/// The parser's cursor and the tokens made so far.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Values seen, for [`Limits::max_tokens`] (keys count too).
    counted: usize,
    limits: Limits,
    tokens: Vec<Token>,
}

impl Parser<'_> {
    fn error<T>(&self, kind: DecodeErrorKind) -> Result<T, DecodeError> {
        Err(DecodeError {
            kind,
            offset: self.pos,
        })
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.error(DecodeErrorKind::UnexpectedEnd),
        }
    }

    /// Appends a token whose `next` is filled in by [`Parser::close`]. The
    /// array grows by a quarter at a time, so its spare capacity stays small
    /// for the largest documents.
    fn open(&mut self, kind: Kind, start: usize) -> Result<usize, DecodeError> {
        let index = self.tokens.len();
        if index >= MAX_INDEX {
            return self.error(DecodeErrorKind::TooManyTokens(MAX_INDEX));
        }
        if self.tokens.len() == self.tokens.capacity() {
            self.tokens.reserve_exact((self.tokens.len() / 4).max(64));
        }
        self.tokens.push(Token {
            start: offset_u32(start),
            end: 0,
            next_and_kind: kind.bits() << KIND_SHIFT,
        });
        Ok(index)
    }

    /// Records where token `index` ends and which token follows its subtree.
    fn close(&mut self, index: usize, end: usize) {
        let next = offset_u32(self.tokens.len());
        if let Some(token) = self.tokens.get_mut(index) {
            token.end = offset_u32(end);
            token.next_and_kind |= next;
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.counted += 1;
        if self.counted > self.limits.max_tokens {
            return self.error(DecodeErrorKind::TooManyTokens(self.limits.max_tokens));
        }
        match self.peek()? {
            b'i' => self.integer(),
            b'0'..=b'9' => self.bytes(),
            b'l' => self.list(depth + 1),
            b'd' => self.dict(depth + 1),
            other => self.error(DecodeErrorKind::UnexpectedByte(other)),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.limits.max_depth {
            return self.error(DecodeErrorKind::TooDeep(self.limits.max_depth));
        }
        Ok(())
    }

    /// `i<digits>e`: no leading zeros, no `-0`, checked against `i64`.
    fn integer(&mut self) -> Result<(), DecodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut value: i64 = 0;
        loop {
            let b = self.peek()?;
            if b == b'e' {
                break;
            }
            let Some(digit) = ascii_digit(b).map(i64::from) else {
                return self.error(DecodeErrorKind::UnexpectedByte(b));
            };
            if self.pos > digits_start && value == 0 {
                return Err(DecodeError {
                    kind: DecodeErrorKind::LeadingZero,
                    offset: digits_start,
                });
            }
            let scaled = value.checked_mul(10);
            value = match scaled.and_then(|v| {
                if negative {
                    v.checked_sub(digit)
                } else {
                    v.checked_add(digit)
                }
            }) {
                Some(v) => v,
                None => {
                    return Err(DecodeError {
                        kind: DecodeErrorKind::IntegerOverflow,
                        offset: start,
                    })
                }
            };
            self.pos += 1;
        }
        if self.pos == digits_start {
            return self.error(DecodeErrorKind::EmptyInteger);
        }
        if negative && value == 0 {
            return Err(DecodeError {
                kind: DecodeErrorKind::NegativeZero,
                offset: digits_start,
            });
        }
        self.pos += 1; // 'e'
        let index = self.open(Kind::Int, start)?;
        self.close(index, self.pos);
        Ok(())
    }

    /// `<len>:<bytes>`: the length is checked against what is left before
    /// anything is sliced.
    fn bytes(&mut self) -> Result<(), DecodeError> {
        let data = self.string()?;
        let index = self.open(Kind::Bytes, data.start)?;
        self.close(index, data.end);
        Ok(())
    }

    /// Reads `<len>:<bytes>` and returns the data's range.
    fn string(&mut self) -> Result<Range<usize>, DecodeError> {
        let len_start = self.pos;
        let mut len: usize = 0;
        loop {
            let b = self.peek()?;
            if b == b':' {
                break;
            }
            let Some(digit) = ascii_digit(b).map(usize::from) else {
                return self.error(DecodeErrorKind::UnexpectedByte(b));
            };
            if self.pos > len_start && len == 0 {
                return Err(DecodeError {
                    kind: DecodeErrorKind::LeadingZero,
                    offset: len_start,
                });
            }
            // A length that overflows usize cannot fit in the input either.
            len = len
                .checked_mul(10)
                .and_then(|v| v.checked_add(digit))
                .unwrap_or(usize::MAX);
            self.pos += 1;
        }
        self.pos += 1; // ':'
        let available = self.input.len() - self.pos;
        if len > available {
            return Err(DecodeError {
                kind: DecodeErrorKind::StringTooLong {
                    declared: len,
                    available,
                },
                offset: len_start,
            });
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    fn list(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.check_depth(depth)?;
        let index = self.open(Kind::List, self.pos)?;
        self.pos += 1; // 'l'
        while self.peek()? != b'e' {
            self.value(depth)?;
        }
        self.pos += 1; // 'e'
        self.close(index, self.pos);
        Ok(())
    }

    fn dict(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.check_depth(depth)?;
        let start = self.pos;
        let index = self.open(Kind::Dict, start)?;
        self.pos += 1; // 'd'
        let mut previous: Option<Range<usize>> = None;
        let mut sorted = true;
        while self.peek()? != b'e' {
            let key_offset = self.pos;
            if !self.peek()?.is_ascii_digit() {
                return self.error(DecodeErrorKind::NonStringKey);
            }
            self.counted += 1;
            let key = self.string()?;
            let key_index = self.open(Kind::Bytes, key.start)?;
            self.close(key_index, key.end);
            if let Some(previous) = previous.take() {
                let (prev, this) = (self.slice(&previous), self.slice(&key));
                if this == prev {
                    return Err(DecodeError {
                        kind: DecodeErrorKind::DuplicateKey,
                        offset: key_offset,
                    });
                }
                if this < prev {
                    if self.limits.strictness == Strictness::Canonical {
                        return Err(DecodeError {
                            kind: DecodeErrorKind::UnsortedKeys,
                            offset: key_offset,
                        });
                    }
                    sorted = false;
                }
            }
            previous = Some(key);
            self.value(depth)?;
        }
        if !sorted && self.has_duplicate_key(index) {
            return Err(DecodeError {
                kind: DecodeErrorKind::DuplicateKey,
                offset: start,
            });
        }
        self.pos += 1; // 'e'
        self.close(index, self.pos);
        Ok(())
    }

    fn slice(&self, range: &Range<usize>) -> &[u8] {
        self.input.get(range.clone()).unwrap_or_default()
    }

    /// Whether the (unsorted, still open) dictionary at `index` repeats a
    /// key. Sorted dictionaries are checked pair by pair while parsing.
    fn has_duplicate_key(&self, index: usize) -> bool {
        let mut keys = Vec::new();
        let mut at = index + 1;
        while let Some(key) = self.tokens.get(at) {
            keys.push(
                self.input
                    .get(key.start as usize..key.end as usize)
                    .unwrap_or_default(),
            );
            // Skip the key, then the value's whole subtree.
            let value = at + 1;
            at = self
                .tokens
                .get(value)
                .map_or(usize::MAX, |v| v.next().max(value + 1));
        }
        keys.sort_unstable();
        keys.windows(2).any(|pair| pair[0] == pair[1])
    }
}

/// A byte offset or token index as `u32`; [`parse_prefix`] refuses inputs
/// whose offsets would not fit, and [`MAX_INDEX`] bounds the indices.
fn offset_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The value of an ASCII digit.
fn ascii_digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_walk_lists_and_dicts_by_sibling() {
        let input = b"d4:infod1:xi-12ee4:listli1e3:abclee1:zi0ee";
        let doc = parse(input, Limits::CANONICAL).unwrap();
        let root = doc.root();
        assert_eq!(root.kind(), Kind::Dict);
        assert_eq!(root.raw(), &input[..]);
        let keys: Vec<&[u8]> = root.entries().unwrap().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![&b"info"[..], b"list", b"z"]);
        let info = root.get_dict(b"info").unwrap();
        assert_eq!(info.raw(), b"d1:xi-12ee");
        assert_eq!(info.get_int(b"x"), Some(-12));
        let items: Vec<Kind> = root
            .get_list(b"list")
            .unwrap()
            .items()
            .unwrap()
            .map(Node::kind)
            .collect();
        assert_eq!(items, vec![Kind::Int, Kind::Bytes, Kind::List]);
        let empty = root.get_list(b"list").unwrap().items().unwrap().nth(2);
        assert!(empty.unwrap().is_empty_container());
        assert_eq!(root.get_int(b"z"), Some(0));
        assert_eq!(root.get(b"missing").map(Node::kind), None);
        assert_eq!(doc.token_count(), 12);
    }

    #[test]
    fn integers_read_back_exactly() {
        for n in [0, 1, -1, 42, i64::MAX, i64::MIN] {
            let text = format!("i{n}e");
            let doc = parse(text.as_bytes(), Limits::CANONICAL).unwrap();
            assert_eq!(doc.root().as_int(), Some(n));
            assert_eq!(doc.root().as_bytes(), None);
        }
    }

    #[test]
    fn unsorted_duplicates_are_found_past_nested_values() {
        let lenient = |input: &[u8]| parse(input, Limits::TORRENT).map(|_| ());
        assert!(lenient(b"d1:bd1:xi1e1:yi2ee1:ali1ei2eee").is_ok());
        let err = lenient(b"d1:bd1:xi1ee1:ali1ee1:bi3ee").unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::DuplicateKey);
        assert_eq!(err.offset, 0);
    }

    #[test]
    fn prefix_parse_reports_bytes_used() {
        let (doc, used) = parse_prefix(b"d1:ai1ee\nrest", Limits::MESSAGE).unwrap();
        assert_eq!(used, 8);
        assert_eq!(doc.root().get_int(b"a"), Some(1));
    }
}
