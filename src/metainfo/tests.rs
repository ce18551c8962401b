//! Tests of torrent parsing, built from bencode written in the test.

use super::*;
use crate::bencode::{encode, Dict, List, Value};

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
            "piece length 1099511627776 is larger than the 536870912 allowed",
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

#[test]
fn trailing_whitespace_is_accepted_and_the_hash_unchanged() {
    let bytes = single(16384, 100_000, &hashes(7));
    let plain = Metainfo::from_bytes(&bytes).unwrap();
    for tail in [&b"\n"[..], b"\r\n", b" \t \n\n"] {
        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(tail);
        let meta = Metainfo::from_bytes(&with_tail).unwrap();
        assert_eq!(meta.info_hash, plain.info_hash);
        assert_eq!(meta.info_bytes, plain.info_bytes);
    }
    let mut junk = bytes.clone();
    junk.extend_from_slice(b"\n\nx");
    assert_eq!(
        refuse(&junk),
        format!(
            "not a torrent file: bencode error at byte {}: trailing data after the value",
            bytes.len() + 2
        )
    );
    let mut nul = bytes.clone();
    nul.push(0);
    assert!(refuse(&nul).contains("trailing data"));
}

/// A `files` entry with extra keys.
fn entry<'a>(pairs: Vec<(&'a [u8], Value<'a>)>) -> Value<'a> {
    Value::Dict(Dict::new(pairs))
}

fn path_value<'a>(elements: &[&'a [u8]]) -> Value<'a> {
    Value::List(List::new(
        elements.iter().map(|p| Value::Bytes(p)).collect(),
    ))
}

#[test]
fn symlinks_hold_no_data_whatever_their_length_says() {
    let files = vec![
        file_entry(20_000, &[b"data.bin"]),
        entry(vec![
            (b"attr", Value::Bytes(b"l")),
            (b"path", path_value(&[b"up"])),
            (
                b"symlink path",
                path_value(&[b"..", b"..", b"etc", b"passwd"]),
            ),
        ]),
        entry(vec![
            (b"attr", Value::Bytes(b"l")),
            (b"length", Value::Int(12_345)),
            (b"path", path_value(&[b"data.bin"])),
            (b"symlink path", path_value(&[b"data.bin"])),
        ]),
        file_entry(5_000, &[b"tail.bin"]),
    ];
    // 25,000 bytes: two pieces; counting the symlink's 12,345 would need three.
    let meta = Metainfo::from_bytes(&multi(files, &hashes(2))).unwrap();
    assert_eq!(meta.total_len(), 25_000);
    let symlinks: Vec<bool> = meta.files.iter().map(|f| f.symlink).collect();
    assert_eq!(symlinks, vec![false, true, true, false]);
    assert_eq!(meta.files[1].len, 0);
    assert_eq!(meta.files[2].len, 0);
    assert_eq!(meta.files[3].offset, 20_000);
    assert!(!meta.files[1].on_disk() && meta.files[0].on_disk());
    // Not claimed: a symlink named like a file does not rename it.
    assert_eq!(meta.files[0].path, PathBuf::from("dir/data.bin"));
    assert_eq!(meta.files[2].path, PathBuf::from("dir/data.bin"));
    assert_eq!(meta.files[1].path, PathBuf::from("dir/up"));
    assert_eq!(
        meta.warnings,
        vec![
            "symlink \"up\" is not created".to_string(),
            "symlink \"data.bin\" is not created".to_string()
        ]
    );
}

#[test]
fn padding_files_need_no_path_and_bitcomet_names_count() {
    let files = vec![
        file_entry(10_000, &[b"a.bin"]),
        entry(vec![(b"attr", Value::Bytes(b"p")), (b"length", Value::Int(6_384))]),
        file_entry(20_000, &[b"b.bin"]),
        file_entry(
            12_768,
            &[b"_____padding_file_1_if you see this file, please update to BitComet 0.85 or above____"],
        ),
        file_entry(100, &[b"c.bin"]),
    ];
    let meta = Metainfo::from_bytes(&multi(files, &hashes(4))).unwrap();
    let padding: Vec<bool> = meta.files.iter().map(|f| f.padding).collect();
    assert_eq!(padding, vec![false, true, false, true, false]);
    assert_eq!(meta.files[1].path, PathBuf::from("dir/.pad/1"));
    assert_eq!(meta.files[4].offset, 49_152);
    assert!(meta.warnings.is_empty(), "{:?}", meta.warnings);
    // A file that is not padding still needs its path.
    let no_path = entry(vec![(b"length", Value::Int(5))]);
    assert_eq!(refuse(&multi(vec![no_path], &hashes(1))), "missing 'path'");
}

#[test]
fn piece_lengths_up_to_512_mib_are_accepted() {
    for piece_len in [256 << 20, 512 << 20] {
        let meta = Metainfo::from_bytes(&single(piece_len, 1_000, &hashes(1))).unwrap();
        assert_eq!(i64::from(meta.layout.piece_len()), piece_len);
        assert_eq!(meta.layout.piece_count(), 1);
    }
    assert_eq!(
        refuse(&single((512 << 20) + 1, 1_000, &hashes(1))),
        "piece length 536870913 is larger than the 536870912 allowed"
    );
}

/// A v2 leaf: `{"": {length, pieces root}}`.
fn v2_file(len: i64) -> Value<'static> {
    let mut fields = vec![(&b"length"[..], Value::Int(len))];
    if len > 0 {
        fields.push((b"pieces root", Value::Bytes(&[9u8; 32])));
    }
    Value::Dict(Dict::new(vec![(b"", Value::Dict(Dict::new(fields)))]))
}

fn pad(len: i64) -> Value<'static> {
    entry(vec![
        (b"attr", Value::Bytes(b"p")),
        (b"length", Value::Int(len)),
        (b"path", path_value(&[b".pad", b"x"])),
    ])
}

/// A multi-file hybrid: v1 `files` and a v2 `file tree`, 16 KiB pieces.
fn hybrid(files: Vec<Value<'_>>, tree: Value<'_>, pieces: usize) -> Vec<u8> {
    let hashes = hashes(pieces);
    let info = Value::Dict(Dict::new(vec![
        (b"file tree", tree),
        (b"files", Value::List(List::new(files))),
        (b"meta version", Value::Int(2)),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&hashes)),
    ]));
    encode(&Value::Dict(Dict::new(vec![(b"info", info)])))
}

/// The tree of `a.bin` (20,000 bytes) and `sub/b.bin` (5,000 bytes).
fn good_tree() -> Value<'static> {
    Value::Dict(Dict::new(vec![
        (b"a.bin", v2_file(20_000)),
        (
            b"sub",
            Value::Dict(Dict::new(vec![(b"b.bin", v2_file(5_000))])),
        ),
    ]))
}

fn good_v1() -> Vec<Value<'static>> {
    vec![
        file_entry(20_000, &[b"a.bin"]),
        pad(12_768),
        file_entry(5_000, &[b"sub", b"b.bin"]),
    ]
}

#[test]
fn a_hybrid_whose_halves_agree_is_accepted() {
    let meta = Metainfo::from_bytes(&hybrid(good_v1(), good_tree(), 3)).unwrap();
    assert_eq!(meta.files.len(), 3);
    // With libtorrent's tail padding too, and an empty file on one side only.
    let mut v1 = good_v1();
    v1.push(file_entry(0, &[b"sub", b"empty"]));
    v1.push(pad(11_384));
    assert!(Metainfo::from_bytes(&hybrid(v1, good_tree(), 3)).is_ok());
    // Single-file: the tree's one file is named like the torrent.
    let hashes = hashes(1);
    let info = Value::Dict(Dict::new(vec![
        (
            b"file tree",
            Value::Dict(Dict::new(vec![(b"file.bin", v2_file(5))])),
        ),
        (b"length", Value::Int(5)),
        (b"meta version", Value::Int(2)),
        (b"name", Value::Bytes(b"file.bin")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&hashes)),
    ]));
    let bytes = encode(&Value::Dict(Dict::new(vec![(b"info", info)])));
    assert!(Metainfo::from_bytes(&bytes).is_ok());
}

#[test]
fn a_hybrid_whose_halves_disagree_is_refused() {
    let says = "hybrid torrent's v1 and v2 file lists disagree: ";
    let renamed = Value::Dict(Dict::new(vec![
        (b"a.bin", v2_file(20_000)),
        (
            b"sub",
            Value::Dict(Dict::new(vec![(b"c.bin", v2_file(5_000))])),
        ),
    ]));
    assert_eq!(
        refuse(&hybrid(good_v1(), renamed, 3)),
        format!("{says}v2 has \"sub/c.bin\" where v1 has \"sub/b.bin\"")
    );
    let longer = Value::Dict(Dict::new(vec![
        (b"a.bin", v2_file(20_001)),
        (
            b"sub",
            Value::Dict(Dict::new(vec![(b"b.bin", v2_file(5_000))])),
        ),
    ]));
    assert_eq!(
        refuse(&hybrid(good_v1(), longer, 3)),
        format!("{says}\"a.bin\" is 20001 bytes in v2 and 20000 in v1")
    );
    let unpadded = vec![
        file_entry(20_000, &[b"a.bin"]),
        file_entry(5_000, &[b"sub", b"b.bin"]),
    ];
    assert_eq!(
        refuse(&hybrid(unpadded, good_tree(), 2)),
        format!("{says}\"sub/b.bin\" starts at byte 32768 in v2 and 20000 in v1")
    );
    let mut extra = good_v1();
    extra.push(pad(11_384));
    extra.push(file_entry(1, &[b"z"]));
    assert_eq!(
        refuse(&hybrid(extra, good_tree(), 4)),
        format!("{says}v1 file \"z\" is not in the v2 tree")
    );
    let only_a = Value::Dict(Dict::new(vec![(b"a.bin", v2_file(20_000))]));
    let just_a = vec![file_entry(20_000, &[b"a.bin"])];
    assert!(Metainfo::from_bytes(&hybrid(just_a.clone(), only_a, 2)).is_ok());
    assert_eq!(
        refuse(&hybrid(just_a, good_tree(), 2)),
        format!("{says}v2 file \"sub/b.bin\" is not in the v1 file list")
    );
}

#[test]
fn a_malformed_v2_tree_is_refused() {
    let bad = "bad v2 'file tree': ";
    let tree = |entries: Vec<(&'static [u8], Value<'static>)>| Value::Dict(Dict::new(entries));
    let leaf = |fields: Vec<(&'static [u8], Value<'static>)>| {
        tree(vec![(b"", Value::Dict(Dict::new(fields)))])
    };
    let v1 = || vec![file_entry(20_000, &[b"a.bin"])];
    let cases: Vec<(Value<'static>, String)> = vec![
        (
            tree(vec![(
                b"a.bin",
                leaf(vec![(b"length", Value::Int(20_000))]),
            )]),
            format!("{bad}\"a.bin\" has no valid 'pieces root'"),
        ),
        (
            tree(vec![(
                b"a.bin",
                leaf(vec![
                    (b"length", Value::Int(20_000)),
                    (b"pieces root", Value::Bytes(&[0u8; 32])),
                ]),
            )]),
            format!("{bad}\"a.bin\" has no valid 'pieces root'"),
        ),
        (
            tree(vec![(
                b"a.bin",
                leaf(vec![(b"pieces root", Value::Bytes(&[1u8; 32]))]),
            )]),
            format!("{bad}\"a.bin\" has no valid 'length'"),
        ),
        (
            tree(vec![(b"a.bin", Value::Int(1))]),
            format!("{bad}\"a.bin\" is not a dictionary"),
        ),
        (
            tree(vec![(
                b"a.bin",
                tree(vec![(b"", v2_file(20_000)), (b"x", v2_file(1))]),
            )]),
            format!("{bad}\"a.bin\" is both a file and a directory"),
        ),
        (
            tree(vec![(
                b"a.bin",
                leaf(vec![
                    (b"attr", Value::Bytes(b"p")),
                    (b"length", Value::Int(20_000)),
                ]),
            )]),
            format!("{bad}\"a.bin\" is a padding file"),
        ),
        (
            tree(vec![(b"", v2_file(20_000))]),
            format!("{bad}an entry in \"\" has an empty name"),
        ),
        (Value::Int(3), format!("{bad}it is not a dictionary")),
    ];
    for (tree, expected) in cases {
        assert_eq!(refuse(&hybrid(v1(), tree, 2)), expected);
    }
    let mut deep = v2_file(20_000);
    for _ in 0..MAX_PATH_DEPTH {
        deep = Value::Dict(Dict::new(vec![(b"d", deep)]));
    }
    let err = Metainfo::from_bytes(&hybrid(v1(), deep, 2)).unwrap_err();
    assert!(
        matches!(
            err,
            MetainfoError::PathTooDeep(_) | MetainfoError::Bencode(_)
        ),
        "{err}"
    );
}

#[test]
fn meta_version_and_file_tree_must_come_together() {
    let hashes = hashes(2);
    let with = |version: Option<i64>, tree: bool, piece_len: i64| {
        let mut fields = vec![
            (&b"files"[..], Value::List(List::new(good_v1()))),
            (b"name", Value::Bytes(b"dir")),
            (b"piece length", Value::Int(piece_len)),
            (b"pieces", Value::Bytes(&hashes)),
        ];
        if let Some(v) = version {
            fields.push((b"meta version", Value::Int(v)));
        }
        if tree {
            fields.push((b"file tree", good_tree()));
        }
        let info = Value::Dict(Dict::new(fields));
        encode(&Value::Dict(Dict::new(vec![(b"info", info)])))
    };
    // 25,000 bytes of files plus 12,768 of padding at 32 KiB: 2 pieces.
    assert!(Metainfo::from_bytes(&with(None, false, 32768)).is_ok());
    assert!(Metainfo::from_bytes(&with(Some(1), false, 32768)).is_ok());
    assert_eq!(
        refuse(&with(Some(2), false, 32768)),
        "bad v2 'file tree': 'meta version' is 2 but there is no tree"
    );
    assert_eq!(
        refuse(&with(None, true, 32768)),
        "bad v2 'file tree': it needs 'meta version' 2"
    );
    assert_eq!(
        refuse(&with(Some(3), true, 32768)),
        "unknown 'meta version' 3"
    );
    assert_eq!(
        refuse(&with(Some(2), true, 24576)),
        "piece length 24576 is not a power of two of at least 16 KiB, as a hybrid (v1+v2) torrent needs"
    );
}

/// Smaller versions of the shapes `make bench` times at full size (one
/// name duplicated up to the limit many times over; many 100-deep paths):
/// the paths must come out unique and named by the `.N` rule.
#[test]
fn worst_case_shapes_parse_to_unique_paths() {
    let names: Vec<Vec<u8>> = (0..20).map(|i| format!("n{i:02}").into_bytes()).collect();
    let mut files = Vec::new();
    for name in &names {
        for _ in 0..=sanitize::MAX_DUPLICATES {
            files.push(file_entry(1, &[name.as_slice()]));
        }
    }
    let count = files.len();
    let meta = Metainfo::from_bytes(&multi(files, &hashes(count.div_ceil(16384)))).unwrap();
    assert_eq!(meta.files[0].path, PathBuf::from("dir/n00"));
    assert_eq!(meta.files[1].path, PathBuf::from("dir/n00.1"));
    assert_eq!(meta.files[500].path, PathBuf::from("dir/n00.500"));
    assert_eq!(meta.files[501].path, PathBuf::from("dir/n01"));
    let unique: std::collections::HashSet<_> = meta.files.iter().map(|f| &f.path).collect();
    assert_eq!(unique.len(), count);
    assert_eq!(meta.warnings.len(), MAX_WARNINGS + 1);
    assert_eq!(
        meta.warnings.last().unwrap(),
        &format!("... and {} more like these", 20 * 500 - MAX_WARNINGS)
    );

    let tops: Vec<Vec<u8>> = (0..300).map(|i| format!("{i:03}").into_bytes()).collect();
    let files: Vec<Value<'_>> = tops
        .iter()
        .map(|top| {
            let mut path: Vec<&[u8]> = vec![top.as_slice()];
            path.extend(std::iter::repeat_n(&b"a"[..], 98));
            path.push(b"f");
            file_entry(1, &path)
        })
        .collect();
    let meta = Metainfo::from_bytes(&multi(files, &hashes(1))).unwrap();
    assert!(meta.warnings.is_empty());
    for (file, top) in meta.files.iter().zip(&tops) {
        let expected = format!("dir/{}/{}f", String::from_utf8_lossy(top), "a/".repeat(98));
        assert_eq!(file.path, PathBuf::from(expected));
    }
}
