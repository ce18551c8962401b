//! Specs of the resume state: the format round-trips and is written as
//! documented, every broken or foreign file is a typed error, and which saved
//! pieces are trusted after a file's size, mtime or ctime changed. Its helpers
//! are shared with other modules' specs.
//!
//! Layer 0, test-only: bytes and file stamps in, values out.

use super::*;
use crate::bencode::DecodeErrorKind;
use crate::bitfield::BitfieldError;

/// Builds a multi-file torrent with 100-byte pieces from
/// `(name, len, padding)` triples. Piece hashes are zero: nothing here
/// hashes.
pub(crate) fn torrent(files: &[(&str, i64, bool)]) -> Metainfo {
    let total: i64 = files.iter().map(|f| f.1).sum();
    let pieces = vec![0u8; 20 * usize::try_from((total + 99) / 100).unwrap()];
    let entries = files
        .iter()
        .map(|(name, len, padding)| {
            let mut entry = vec![
                (&b"length"[..], Value::Int(*len)),
                (
                    &b"path"[..],
                    Value::List(List::new(vec![Value::Bytes(name.as_bytes())])),
                ),
            ];
            if *padding {
                entry.push((&b"attr"[..], Value::Bytes(b"p")));
            }
            Value::Dict(Dict::new(entry))
        })
        .collect();
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(entries))),
        (b"name", Value::Bytes(b"t")),
        (b"piece length", Value::Int(100)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let root = Value::Dict(Dict::new(vec![(b"info", info)]));
    Metainfo::from_bytes(&bencode::encode(&root)).unwrap()
}

/// 730 bytes in 100-byte pieces (8 pieces):
///
/// ```text
/// file   bytes      pieces
/// 0 a    0..250     0 1 2     piece 2 straddles a and b
/// 1 b    250..350   2 3       piece 3 straddles b and the padding
/// 2 pad  350..400   3
/// 3 c    400..700   4 5 6
/// 4 e    700..700   -         empty
/// 5 d    700..730   7
/// ```
pub(crate) fn straddling() -> Metainfo {
    torrent(&[
        ("a", 250, false),
        ("b", 100, false),
        ("pad", 50, true),
        ("c", 300, false),
        ("e", 0, false),
        ("d", 30, false),
    ])
}

/// Stamps of the right sizes for [`straddling`], file `i` with mtime `i`.
fn stamps(meta: &Metainfo) -> Vec<FileStamp> {
    meta.files
        .iter()
        .enumerate()
        .map(|(i, f)| match f.padding {
            true => FileStamp::default(),
            false => FileStamp {
                len_on_disk: Some(f.len),
                mtime_ns: Some(1_700_000_000_000_000_000 + i as i64),
                ctime_ns: Some(1_700_000_100_000_000_000 + i as i64),
            },
        })
        .collect()
}

fn state(meta: &Metainfo) -> ResumeState {
    ResumeState {
        info_hash: meta.info_hash,
        have: Bitfield::full(meta.layout.piece_count()),
        files: stamps(meta),
    }
}

fn decode_for(bytes: &[u8], meta: &Metainfo) -> Result<ResumeState, ResumeError> {
    decode(
        bytes,
        &meta.info_hash,
        meta.layout.piece_count(),
        meta.files.len(),
    )
}

/// A valid resume file with `key` replaced by `value` (or removed).
fn with(meta: &Metainfo, key: &'static [u8], value: Option<Value<'_>>) -> Vec<u8> {
    let good = encode(&state(meta));
    let Value::Dict(mut root) = bencode::decode(&good, Limits::MESSAGE).unwrap() else {
        unreachable!()
    };
    root.entries.retain(|(k, _)| *k != key);
    if let Some(value) = value {
        root.entries.push((key, value));
    }
    bencode::encode(&Value::Dict(Dict::new(root.entries)))
}

fn ones(field: &Bitfield) -> Vec<u32> {
    field.iter_ones().collect()
}

#[test]
fn round_trip_keeps_every_field() {
    let meta = straddling();
    let mut saved = state(&meta);
    saved.have = Bitfield::from_bytes(&[0b1010_0110], 8).unwrap();
    saved.files[3] = FileStamp::default();
    saved.files[1].ctime_ns = None;
    saved.files[0].mtime_ns = Some(-5); // before 1970
    let bytes = encode(&saved);
    assert_eq!(decode_for(&bytes, &meta).unwrap(), saved);
    assert!(bytes.len() as u64 <= max_resume_bytes(8, 6));
}

#[test]
fn encode_writes_the_documented_format() {
    let meta = torrent(&[("x", 250, false)]);
    let saved = ResumeState {
        info_hash: meta.info_hash,
        have: Bitfield::from_bytes(&[0b1010_0000], 3).unwrap(),
        files: vec![FileStamp {
            len_on_disk: Some(40_000),
            mtime_ns: Some(1_700_000_000_123_456_789),
            ctime_ns: Some(1_700_000_001_987_654_321),
        }],
    };
    let mut expected = b"d5:filesld5:ctimei1700000001987654321e\
        5:mtimei1700000000123456789e4:sizei40000eee4:have1:\xa0\
        9:info hash20:"
        .to_vec();
    expected.extend_from_slice(&meta.info_hash.0);
    expected.extend_from_slice(b"6:piecesi3e7:versioni1ee");
    assert_eq!(encode(&saved), expected);
}

#[test]
fn every_truncation_is_an_error() {
    let meta = straddling();
    let bytes = encode(&state(&meta));
    for cut in 0..bytes.len() {
        assert!(decode_for(&bytes[..cut], &meta).is_err(), "cut at {cut}");
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let meta = straddling();
    let cases: &[&[u8]] = &[
        b"",
        b"garbage",
        b"i1e",
        b"le",
        b"d",
        b"de",
        b"d7:versioni1ee",
    ];
    for case in cases {
        assert!(decode_for(case, &meta).is_err(), "{case:?}");
    }
    assert!(matches!(
        decode_for(b"i1e", &meta),
        Err(ResumeError::NotADictionary)
    ));
    assert!(matches!(
        decode_for(b"de", &meta),
        Err(ResumeError::Missing("version"))
    ));
    // Every byte of a valid file flipped to every value decodes or fails,
    // never panics; a cheap stand-in for fuzzing.
    let good = encode(&state(&meta));
    for at in 0..good.len() {
        for byte in [0u8, b'e', b'i', b'l', b'd', b'-', b'9', b':', 0xff] {
            let mut bad = good.clone();
            bad[at] = byte;
            let _ = decode_for(&bad, &meta);
        }
    }
}

#[test]
fn decode_rejects_other_versions() {
    let meta = straddling();
    let bytes = with(&meta, b"version", Some(Value::Int(2)));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::UnsupportedVersion(2))
    ));
    let bytes = with(&meta, b"version", Some(Value::Bytes(b"1")));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::WrongType { key: "version", .. })
    ));
}

#[test]
fn decode_rejects_another_torrents_file() {
    let meta = straddling();
    let other = torrent(&[("a", 730, false)]);
    let bytes = encode(&state(&meta));
    let err = decode(&bytes, &other.info_hash, 8, 6).unwrap_err();
    assert!(
        matches!(err, ResumeError::OtherTorrent { found } if found == meta.info_hash),
        "{err}"
    );
    assert!(err.to_string().contains(&meta.info_hash.to_hex()), "{err}");
    let bytes = with(&meta, b"info hash", Some(Value::Bytes(&[1; 19])));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::WrongType {
            key: "info hash",
            ..
        })
    ));
}

#[test]
fn decode_rejects_a_wrong_piece_count() {
    let meta = straddling();
    let bytes = encode(&state(&meta));
    assert!(matches!(
        decode(&bytes, &meta.info_hash, 9, 6),
        Err(ResumeError::PieceCount {
            saved: 8,
            expected: 9
        })
    ));
    for count in [-1, 7, i64::from(u32::MAX) + 8, i64::MIN] {
        let bytes = with(&meta, b"pieces", Some(Value::Int(count)));
        assert!(matches!(
            decode_for(&bytes, &meta),
            Err(ResumeError::PieceCount { .. })
        ));
    }
}

#[test]
fn decode_rejects_bad_bitfields() {
    let meta = torrent(&[("a", 250, false)]); // 3 pieces: 5 spare bits
    let bytes = with(&meta, b"have", Some(Value::Bytes(&[0b1110_0100])));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::Bitfield(BitfieldError::SpareBitsSet {
            piece_count: 3
        }))
    ));
    let bytes = with(&meta, b"have", Some(Value::Bytes(&[0, 0])));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::Bitfield(BitfieldError::WrongLength { .. }))
    ));
    let bytes = with(&meta, b"have", Some(Value::Int(7)));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::WrongType { key: "have", .. })
    ));
}

#[test]
fn decode_rejects_a_file_count_mismatch() {
    let meta = straddling();
    let bytes = encode(&state(&meta));
    assert!(matches!(
        decode(&bytes, &meta.info_hash, 8, 5),
        Err(ResumeError::FileCount {
            saved: 6,
            expected: 5
        })
    ));
    let bytes = with(&meta, b"files", None);
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::Missing("files"))
    ));
}

#[test]
fn decode_checks_each_file_entry() {
    let meta = torrent(&[("a", 250, false)]);
    let entry = |pairs: Vec<(&'static [u8], Value<'static>)>| {
        Value::List(List::new(vec![Value::Dict(Dict::new(pairs))]))
    };
    let cases = [
        (entry(vec![(b"size", Value::Int(-2))]), "`size` is negative"),
        (
            entry(vec![(b"size", Value::Bytes(b"1"))]),
            "`size` is not an integer",
        ),
        (
            entry(vec![(b"mtime", Value::Bytes(b"1"))]),
            "`mtime` is not an integer",
        ),
        (
            entry(vec![(b"ctime", Value::Bytes(b"1"))]),
            "`ctime` is not an integer",
        ),
        (
            Value::List(List::new(vec![Value::Int(3)])),
            "not a dictionary",
        ),
    ];
    for (files, why) in cases {
        let bytes = with(&meta, b"files", Some(files));
        match decode_for(&bytes, &meta) {
            Err(ResumeError::BadFile { index: 0, reason }) => assert_eq!(reason, why),
            other => panic!("{why}: {other:?}"),
        }
    }
    // `size: -1` and absent keys both mean "not there".
    let bytes = with(
        &meta,
        b"files",
        Some(entry(vec![(b"size", Value::Int(-1))])),
    );
    let decoded = decode_for(&bytes, &meta).unwrap();
    assert_eq!(decoded.files, vec![FileStamp::default()]);
}

#[test]
fn decode_refuses_oversized_input_before_parsing() {
    let meta = straddling();
    let max = max_resume_bytes(8, 6);
    assert_eq!(max, 2 + 6 * 128 + 4096);
    let mut bytes = encode(&state(&meta));
    bytes.resize(usize::try_from(max).unwrap() + 1, b'x');
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::TooLarge { len, max_bytes }) if len == max + 1 && max_bytes == max
    ));
}

#[test]
fn decode_bounds_nesting_and_value_count() {
    let meta = torrent(&[("a", 250, false)]);
    let deep = Value::List(List::new(vec![Value::Dict(Dict::new(vec![(
        &b"size"[..],
        Value::List(List::new(vec![])),
    )]))]));
    let bytes = with(&meta, b"files", Some(deep));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::Bencode(e)) if e.kind == DecodeErrorKind::TooDeep(MAX_DEPTH)
    ));
    let many = Value::List(List::new(vec![Value::Int(0); 100]));
    let bytes = with(&meta, b"junk", Some(many));
    assert!(matches!(
        decode_for(&bytes, &meta),
        Err(ResumeError::Bencode(e)) if matches!(e.kind, DecodeErrorKind::TooManyTokens(_))
    ));
}

#[test]
fn unknown_keys_are_ignored() {
    let meta = straddling();
    let bytes = with(&meta, b"saved", Some(Value::Int(1_700_000_000)));
    assert_eq!(decode_for(&bytes, &meta).unwrap(), state(&meta));
}

#[test]
fn unchanged_files_trust_every_saved_piece() {
    let meta = straddling();
    let mut saved = state(&meta);
    saved.have.clear(5);
    let now = stamps(&meta);
    assert_eq!(
        ones(&trusted_pieces(&saved, &now, &meta)),
        [0, 1, 2, 3, 4, 6, 7]
    );
}

#[test]
fn a_changed_mtime_untrusts_exactly_the_pieces_touching_that_file() {
    let meta = straddling();
    let saved = state(&meta);
    let mut now = stamps(&meta);
    now[1].mtime_ns = now[1].mtime_ns.map(|t| t + 1); // b: pieces 2 and 3
    assert_eq!(
        ones(&trusted_pieces(&saved, &now, &meta)),
        [0, 1, 4, 5, 6, 7]
    );
    let mut now = stamps(&meta);
    now[5].mtime_ns = None; // d: unknown time is not "the same"
    assert_eq!(
        ones(&trusted_pieces(&saved, &now, &meta)),
        [0, 1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn a_changed_size_untrusts_exactly_the_pieces_touching_that_file() {
    let meta = straddling();
    let saved = state(&meta);
    let mut now = stamps(&meta);
    now[0].len_on_disk = Some(251); // a: pieces 0, 1 and 2
    assert_eq!(ones(&trusted_pieces(&saved, &now, &meta)), [3, 4, 5, 6, 7]);
    let mut now = stamps(&meta);
    now[3].len_on_disk = None; // c deleted: pieces 4, 5 and 6
    assert_eq!(ones(&trusted_pieces(&saved, &now, &meta)), [0, 1, 2, 3, 7]);
}

#[test]
fn a_changed_ctime_untrusts_the_file_even_with_size_and_mtime_restored() {
    let meta = straddling();
    let saved = state(&meta);
    let mut now = stamps(&meta);
    now[3].ctime_ns = now[3].ctime_ns.map(|t| t + 1); // c: pieces 4, 5 and 6
    assert_eq!(ones(&trusted_pieces(&saved, &now, &meta)), [0, 1, 2, 3, 7]);
}

#[test]
fn a_resume_file_without_ctimes_is_rechecked_once_where_ctimes_exist() {
    let meta = straddling();
    // Written before ctimes were recorded: the key is absent.
    let mut old = state(&meta);
    for stamp in &mut old.files {
        stamp.ctime_ns = None;
    }
    let bytes = encode(&old);
    assert!(!bytes.windows(5).any(|w| w == b"ctime"));
    let loaded = decode_for(&bytes, &meta).unwrap();
    assert_eq!(loaded, old);
    // Files that have a ctime now are re-checked ...
    assert_eq!(
        trusted_pieces(&loaded, &stamps(&meta), &meta).count_ones(),
        0
    );
    // ... where none is known on either side, size and mtime decide.
    let mut now = stamps(&meta);
    for stamp in &mut now {
        stamp.ctime_ns = None;
    }
    assert!(trusted_pieces(&loaded, &now, &meta).is_complete());
    // A ctime known only in the file counts as a change too.
    assert_eq!(trusted_pieces(&state(&meta), &now, &meta).count_ones(), 0);
}

#[test]
fn a_file_too_short_for_a_piece_does_not_vouch_for_it() {
    let meta = straddling();
    let mut saved = state(&meta);
    saved.files[3].len_on_disk = Some(250); // c ends at stream byte 650
    let mut now = stamps(&meta);
    now[3].len_on_disk = Some(250);
    assert_eq!(
        ones(&trusted_pieces(&saved, &now, &meta)),
        [0, 1, 2, 3, 4, 5, 7]
    );
}

#[test]
fn padding_and_empty_files_do_not_matter() {
    let meta = straddling();
    let saved = state(&meta);
    let mut now = stamps(&meta);
    now[2] = FileStamp {
        len_on_disk: Some(9),
        mtime_ns: Some(9),
        ctime_ns: Some(9),
    };
    now[4].mtime_ns = Some(0);
    assert!(trusted_pieces(&saved, &now, &meta).is_complete());
}

#[test]
fn a_state_that_does_not_fit_trusts_nothing_it_cannot_check() {
    let meta = straddling();
    let now = stamps(&meta);
    let mut other = state(&meta);
    other.info_hash = torrent(&[("a", 730, false)]).info_hash;
    assert_eq!(trusted_pieces(&other, &now, &meta).count_ones(), 0);
    let mut short = state(&meta);
    short.have = Bitfield::full(7);
    assert_eq!(trusted_pieces(&short, &now, &meta).count_ones(), 0);
    // Missing stamps count as changed files.
    let saved = state(&meta);
    assert_eq!(
        ones(&trusted_pieces(&saved, &now[..4], &meta)),
        [0, 1, 2, 3, 4, 5, 6]
    );
    let mut truncated = state(&meta);
    truncated.files.truncate(1);
    assert_eq!(ones(&trusted_pieces(&truncated, &now, &meta)), [0, 1]);
}
