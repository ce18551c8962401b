//! The decoded bencode value tree, borrowing from the input bytes.
//!
//! Layer 0: pure.

use std::ops::Range;

/// One bencode value. Byte strings, lists and dictionaries borrow from the
/// buffer they were decoded from (lifetime `'a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer, `i<digits>e`; always fits in an `i64` (the decoder refuses larger).
    Int(i64),
    /// A byte string, `<len>:<bytes>`. Not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list, `l<values>e`.
    List(List<'a>),
    /// A dictionary, `d<key><value>...e`.
    Dict(Dict<'a>),
}

/// A bencode list and where it sat in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<'a> {
    /// The elements in order.
    pub items: Vec<Value<'a>>,
    /// Byte range of the whole list (from `l` to `e` inclusive) in the decoded
    /// input; empty for a list built in memory.
    pub span: Range<usize>,
}

/// A bencode dictionary and where it sat in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dict<'a> {
    /// Key/value pairs in the order they appeared (sorted by key when the
    /// input was canonical). Keys are unique: the decoder refuses duplicates.
    pub entries: Vec<(&'a [u8], Value<'a>)>,
    /// Byte range of the whole dictionary (from `d` to `e` inclusive) in the
    /// decoded input; empty for a dictionary built in memory.
    pub span: Range<usize>,
    /// The exact bytes of the dictionary as they appeared in the input (the
    /// slice `span` selects); empty for a dictionary built in memory. The
    /// info-hash is the SHA-1 of these bytes.
    pub raw: &'a [u8],
}

impl<'a> List<'a> {
    /// A list built in memory (for encoding).
    pub fn new(items: Vec<Value<'a>>) -> Self {
        List { items, span: 0..0 }
    }
}

impl<'a> Dict<'a> {
    /// A dictionary built in memory (for encoding). Entries may be in any
    /// order: the encoder sorts them.
    pub fn new(entries: Vec<(&'a [u8], Value<'a>)>) -> Self {
        Dict {
            entries,
            span: 0..0,
            raw: &[],
        }
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, value)| value)
    }

    /// The integer under `key`, if present and an integer.
    pub fn get_int(&self, key: &[u8]) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    /// The byte string under `key`, if present and a byte string.
    pub fn get_bytes(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.get(key).and_then(Value::as_bytes)
    }

    /// The UTF-8 string under `key`, if present, a byte string, and valid UTF-8.
    pub fn get_str(&self, key: &[u8]) -> Option<&'a str> {
        self.get_bytes(key)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The list under `key`, if present and a list.
    pub fn get_list(&self, key: &[u8]) -> Option<&List<'a>> {
        match self.get(key) {
            Some(Value::List(list)) => Some(list),
            _ => None,
        }
    }

    /// The dictionary under `key`, if present and a dictionary.
    pub fn get_dict(&self, key: &[u8]) -> Option<&Dict<'a>> {
        match self.get(key) {
            Some(Value::Dict(dict)) => Some(dict),
            _ => None,
        }
    }
}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&List<'a>> {
        match self {
            Value::List(list) => Some(list),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(dict) => Some(dict),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }
}
