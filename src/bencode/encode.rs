//! The bencode encoder: values back to canonical bytes.
//!
//! Layer 0: pure. Dictionaries are written with their keys sorted, so the
//! output is canonical whatever order the entries were built in, and a
//! canonical input round-trips byte for byte.

use super::value::Value;

/// Encodes `value` into a new byte vector.
pub fn encode(value: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into(value: &Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(bytes) => encode_bytes(bytes, out),
        Value::List(list) => {
            out.push(b'l');
            for item in &list.items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(dict) => {
            let mut entries: Vec<_> = dict.entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'd');
            for (key, value) in entries {
                encode_bytes(key, out);
                encode_into(value, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{decode, Dict, Limits, List};

    #[test]
    fn encodes_each_kind() {
        assert_eq!(encode(&Value::Int(-3)), b"i-3e");
        assert_eq!(encode(&Value::Int(0)), b"i0e");
        assert_eq!(encode(&Value::Bytes(b"spam")), b"4:spam");
        let list = Value::List(List::new(vec![Value::Int(1), Value::Bytes(b"")]));
        assert_eq!(encode(&list), b"li1e0:e");
    }

    #[test]
    fn encoder_sorts_dictionary_keys() {
        let dict = Value::Dict(Dict::new(vec![
            (b"zeta", Value::Int(1)),
            (b"alfa", Value::Int(2)),
        ]));
        assert_eq!(encode(&dict), b"d4:alfai2e4:zetai1ee");
    }

    #[test]
    fn canonical_documents_round_trip_byte_for_byte() {
        let docs: [&[u8]; 5] = [
            b"i9223372036854775807e",
            b"i-9223372036854775808e",
            b"d4:infod6:lengthi12e4:name3:abce4:listl0:i0eleee",
            b"le",
            b"de",
        ];
        for doc in docs {
            let value = decode(doc, Limits::CANONICAL).unwrap();
            assert_eq!(encode(&value), doc);
        }
    }

    #[test]
    fn unsorted_input_re_encodes_canonically() {
        let value = decode(b"d1:bi1e1:ai2ee", Limits::TORRENT).unwrap();
        assert_eq!(encode(&value), b"d1:ai2e1:bi1ee");
    }
}
