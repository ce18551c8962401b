//! Tests of torrent parsing, built from bencode written in the test.

use super::*;
use crate::bencode::{encode, List};

/// Piece hashes for `count` pieces (the content does not matter here).
fn hashes(count: usize) -> Vec<u8> {
    (0..count * 20).map(|i| (i % 251) as u8).collect()
}

fn single(piece_len: i64, len: i64, pieces: &[u8]) -> Vec<u8> {
    let info = Value::Dict(Dict::new(vec![
        (b"length", Value::Int(len)),
        (b"name", Value::Bytes(b"file.bin")),
        (b"piece length", Value::Int(piece_len)),
        (b"pieces", Value::Bytes(pieces)),
    ]));
    encode(&Value::Dict(Dict::new(vec![
        (b"announce", Value::Bytes(b"http://127.0.0.1:6969/announce")),
        (b"info", info),
    ])))
}

fn file_entry<'a>(len: i64, path: &[&'a [u8]]) -> Value<'a> {
    Value::Dict(Dict::new(vec![
        (b"length", Value::Int(len)),
        (
            b"path",
            Value::List(List::new(path.iter().map(|p| Value::Bytes(p)).collect())),
        ),
    ]))
}

fn multi(files: Vec<Value<'_>>, pieces: &[u8]) -> Vec<u8> {
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(pieces)),
    ]));
    encode(&Value::Dict(Dict::new(vec![(b"info", info)])))
}

fn refuse(bytes: &[u8]) -> String {
    Metainfo::from_bytes(bytes).unwrap_err().to_string()
}

#[test]
fn single_file_torrent_parses() {
    let pieces = hashes(7);
    let meta = Metainfo::from_bytes(&single(16384, 100_000, &pieces)).unwrap();
    assert_eq!(meta.name, "file.bin");
    assert!(!meta.multi_file);
    assert_eq!(meta.total_len(), 100_000);
    assert_eq!(meta.layout.piece_count(), 7);
    assert_eq!(meta.files.len(), 1);
    assert_eq!(meta.files[0].path, PathBuf::from("file.bin"));
    assert_eq!(
        meta.trackers,
        vec![vec!["http://127.0.0.1:6969/announce".to_string()]]
    );
    assert_eq!(meta.piece_hashes.len(), 7);
    let piece6 = meta.layout.piece(6).unwrap();
    assert_eq!(meta.piece_hash(piece6).unwrap().0[..], pieces[120..140]);
}

#[test]
fn info_hash_is_sha1_of_the_raw_info_bytes_even_when_unsorted() {
    let pieces = hashes(1);
    let mut raw_info = b"d4:name1:a6:lengthi5e12:piece lengthi16384e6:pieces20:".to_vec();
    raw_info.extend_from_slice(&pieces);
    raw_info.push(b'e');
    let mut torrent = b"d4:info".to_vec();
    torrent.extend_from_slice(&raw_info);
    torrent.extend_from_slice(b"8:announce3:udpe");
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.info_hash, Sha1Hash::of(&raw_info));
    assert_eq!(meta.info_bytes, raw_info);
    // A re-encoding would sort the keys and hash differently.
    let sorted = encode(&crate::bencode::decode(&raw_info, Limits::TORRENT).unwrap());
    assert_ne!(Sha1Hash::of(&sorted), meta.info_hash);
}

#[test]
fn multi_file_layout_with_empty_file_and_nested_dirs() {
    let files = vec![
        file_entry(10_000, &[b"a", b"one.txt"]),
        file_entry(0, &[b"a", b"b", b"empty"]),
        file_entry(40_000, &[b"c", b"two.bin"]),
    ];
    let meta = Metainfo::from_bytes(&multi(files, &hashes(4))).unwrap();
    assert!(meta.multi_file);
    let paths: Vec<_> = meta.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            PathBuf::from("dir/a/one.txt"),
            PathBuf::from("dir/a/b/empty"),
            PathBuf::from("dir/c/two.bin"),
        ]
    );
    let offsets: Vec<_> = meta.files.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, vec![0, 10_000, 10_000]);
    assert!(meta.warnings.is_empty(), "{:?}", meta.warnings);
}

#[test]
fn hostile_paths_are_sanitized_never_refused() {
    let files = vec![
        file_entry(1, &[b"..", b"..", b"etc", b"passwd"]),
        file_entry(1, &[b"/etc/passwd"]),
        file_entry(1, &[b"ok"]),
        file_entry(1, &[b"ok"]),
        file_entry(1, &[b".."]),
    ];
    let meta = Metainfo::from_bytes(&multi(files, &hashes(1))).unwrap();
    let paths: Vec<_> = meta.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            PathBuf::from("dir/etc/passwd"),
            PathBuf::from("dir/etcpasswd"),
            PathBuf::from("dir/ok"),
            PathBuf::from("dir/ok.1"),
            PathBuf::from("dir/_"),
        ]
    );
    assert_eq!(meta.warnings.len(), 4, "{:?}", meta.warnings);
}

#[test]
fn name_that_sanitizes_to_nothing_becomes_the_info_hash() {
    let pieces = hashes(1);
    let info = Value::Dict(Dict::new(vec![
        (b"length", Value::Int(5)),
        (b"name", Value::Bytes(b"..")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let bytes = encode(&Value::Dict(Dict::new(vec![(b"info", info)])));
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(meta.name, meta.info_hash.to_hex());
}

#[test]
fn padding_files_are_marked_and_not_claimed() {
    let pad = Value::Dict(Dict::new(vec![
        (b"attr", Value::Bytes(b"p")),
        (b"length", Value::Int(6_384)),
        (
            b"path",
            Value::List(List::new(vec![
                Value::Bytes(b".pad"),
                Value::Bytes(b"6384"),
            ])),
        ),
    ]));
    let files = vec![file_entry(10_000, &[b"a"]), pad, file_entry(100, &[b"b"])];
    let meta = Metainfo::from_bytes(&multi(files, &hashes(2))).unwrap();
    assert_eq!(
        meta.files.iter().map(|f| f.padding).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert_eq!(meta.files[2].offset, 16_384);
}

#[test]
fn announce_list_tiers_keep_only_usable_urls_once() {
    let pieces = hashes(1);
    let info = Value::Dict(Dict::new(vec![
        (b"length", Value::Int(5)),
        (b"name", Value::Bytes(b"x")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let tier = |urls: &[&'static [u8]]| {
        Value::List(List::new(urls.iter().map(|u| Value::Bytes(u)).collect()))
    };
    let bytes = encode(&Value::Dict(Dict::new(vec![
        (b"announce", Value::Bytes(b"http://a/announce")),
        (
            b"announce-list",
            Value::List(List::new(vec![
                tier(&[b"http://a/announce", b"udp://b:1"]),
                tier(&[b"file:///etc/passwd", b"javascript:x"]),
                tier(&[b"https://c/announce?passkey=42", b"udp://b:1"]),
            ])),
        ),
        (b"info", info),
        (b"url-list", Value::Bytes(b"http://seed/file")),
    ])));
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(
        meta.trackers,
        vec![
            vec!["http://a/announce".to_string(), "udp://b:1".to_string()],
            vec!["https://c/announce?passkey=42".to_string()],
        ]
    );
    assert_eq!(meta.url_list, vec!["http://seed/file".to_string()]);
    assert_eq!(meta.warnings.len(), 2);
}

#[test]
fn refusals_say_what_is_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            single(16384, 100_000, &hashes(7)[..24]),
            "pieces length 24 is not a multiple of 20",
        ),
        (
            single(16384, 100_000, &hashes(6)),
            "pieces holds 6 hashes but the files need 7",
        ),
        (
            single(0, 100_000, &hashes(7)),
            "piece length 0 is not positive",
        ),
        (
            single(-16384, 100_000, &hashes(7)),
            "piece length -16384 is not positive",
        ),
        (
            single(1 << 40, 100_000, &hashes(1)),
            "piece length 1099511627776 is larger than the 134217728 allowed",
        ),
        (single(16384, -5, &hashes(1)), "file length -5 is negative"),
        (single(16384, 0, &[]), "total length is zero"),
        (
            b"le".to_vec(),
            "not a torrent file: top level is not a dictionary",
        ),
        (b"de".to_vec(), "missing 'info'"),
        (b"d4:infoi1ee".to_vec(), "'info' is not a dictionary"),
        (
            b"d4:infod6:lengthi1e4:name1:a6:pieces0:ee".to_vec(),
            "missing 'piece length'",
        ),
        (
            b"d4:infod6:lengthi1e12:piece lengthi1e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec(),
            "missing 'name'",
        ),
        (
            b"d4:infod4:name1:a12:piece lengthi1eee".to_vec(),
            "missing 'pieces'",
        ),
        (
            b"d4:infod9:file treede12:meta versioni2e4:name1:a12:piece lengthi1eee".to_vec(),
            "BitTorrent v2-only torrent (no 'pieces'); pollen supports v1 and hybrid torrents",
        ),
        (multi(vec![], &[]), "'files' is an empty list"),
        (
            multi(vec![file_entry(1, &[])], &hashes(1)),
            "a file has an empty path",
        ),
        (
            multi(vec![file_entry(-1, &[b"a"])], &hashes(1)),
            "file length -1 is negative",
        ),
        (
            b"d4:infod5:filesle6:lengthi1e4:name1:a12:piece lengthi1e6:pieces0:ee".to_vec(),
            "info has both 'length' and 'files'",
        ),
        (
            b"d4:infod6:lengthi99999999999999999999eee".to_vec(),
            "not a torrent file: bencode error at byte 16: integer does not fit in 64 bits",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            refuse(&bytes),
            expected,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn deep_paths_and_huge_files_are_refused() {
    let deep: Vec<&[u8]> = vec![b"d"; MAX_PATH_DEPTH + 1];
    assert_eq!(
        refuse(&multi(vec![file_entry(1, &deep)], &hashes(1))),
        "a file path has 101 elements, more than the 100 allowed"
    );
    let big = vec![b' '; MAX_TORRENT_BYTES as usize + 1];
    assert!(refuse(&big).starts_with("torrent file is 10485761 bytes"));
}

#[test]
fn piece_count_limit_is_checked_before_building_tables() {
    // 2^21 + 1 pieces of 1 byte: refused by count, whatever the hashes say.
    let pieces = hashes(1);
    let bytes = single(1, i64::from(MAX_PIECES) + 1, &pieces);
    assert_eq!(
        refuse(&bytes),
        "2097153 pieces is more than the 2097152 allowed"
    );
}

#[test]
fn every_prefix_of_a_valid_torrent_is_refused_without_panic() {
    let bytes = single(16384, 100_000, &hashes(7));
    for cut in 0..bytes.len() {
        assert!(Metainfo::from_bytes(&bytes[..cut]).is_err());
    }
}
