//! Every malformed torrent in fixtures/bad/ is refused with exit status 2,
//! one specific line on stderr and nothing on stdout; so are bad command
//! lines and files that are not torrents at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixtures, pollen, TempDir};

/// (file in fixtures/bad, what pollen must say after `error: <path>: `).
const EXPECTED: &[(&str, &str)] = &[
    (
        "deep-nesting.torrent",
        "not a torrent file: bencode error at byte 262: nesting deeper than 100 levels",
    ),
    (
        "duplicate-key.torrent",
        "not a torrent file: bencode error at byte 155: duplicate dictionary key",
    ),
    ("empty-files.torrent", "'files' is an empty list"),
    ("empty-path.torrent", "a file has an empty path"),
    (
        "huge-integer.torrent",
        "not a torrent file: bencode error at byte 59: integer does not fit in 64 bits",
    ),
    (
        "hybrid-mismatch.torrent",
        "hybrid torrent's v1 and v2 file lists disagree: v2 has \"other.bin\" where v1 has \"bad.bin\"",
    ),
    ("info-not-dict.torrent", "'info' is not a dictionary"),
    (
        "leading-zero.torrent",
        "not a torrent file: bencode error at byte 60: number with a leading zero",
    ),
    (
        "length-and-files.torrent",
        "info has both 'length' and 'files'",
    ),
    ("negative-file-length.torrent", "file length -5 is negative"),
    ("negative-length.torrent", "file length -20000 is negative"),
    (
        "negative-piece-length.torrent",
        "piece length -16384 is not positive",
    ),
    (
        "negative-zero.torrent",
        "not a torrent file: bencode error at byte 62: negative zero integer",
    ),
    ("no-info.torrent", "missing 'info'"),
    ("no-name.torrent", "missing 'name'"),
    ("no-piece-length.torrent", "missing 'piece length'"),
    (
        "non-string-key.torrent",
        "not a torrent file: bencode error at byte 44: dictionary key is not a string",
    ),
    (
        "not-bencode.torrent",
        "not a torrent file: bencode error at byte 0: unexpected byte 0x74",
    ),
    (
        "pieces-count-mismatch.torrent",
        "pieces holds 3 hashes but the files need 2",
    ),
    (
        "pieces-not-multiple-of-20.torrent",
        "pieces length 24 is not a multiple of 20",
    ),
    (
        "top-level-list.torrent",
        "not a torrent file: top level is not a dictionary",
    ),
    (
        "trailing-data.torrent",
        "not a torrent file: bencode error at byte 156: trailing data after the value",
    ),
    (
        "truncated.torrent",
        "not a torrent file: bencode error at byte 72: string length 7 exceeds the 4 bytes left",
    ),
    (
        "v2-only.torrent",
        "BitTorrent v2-only torrent (no 'pieces'); pollen supports v1 and hybrid torrents",
    ),
    (
        "zero-piece-length.torrent",
        "piece length 0 is not positive",
    ),
    ("zero-total-length.torrent", "total length is zero"),
];

fn assert_refused(args: &[&std::ffi::OsStr], expected_stderr: &str) {
    let out = pollen(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, format!("{expected_stderr}\n"), "{args:?}");
}

#[test]
fn every_bad_fixture_is_refused_with_its_own_message() {
    let dir = fixtures().join("bad");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".torrent"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        on_disk, listed,
        "every file in fixtures/bad has an expected message"
    );
    for (file, message) in EXPECTED {
        let path = dir.join(file);
        assert_refused(
            &["info".as_ref(), path.as_os_str()],
            &format!("error: {}: {message}", path.display()),
        );
    }
}

#[test]
fn missing_file_and_directory_are_refused() {
    let tmp = TempDir::new("bad-input");
    let missing = tmp.path().join("nope.torrent");
    assert_refused(
        &["info".as_ref(), missing.as_os_str()],
        &format!(
            "error: {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
    assert_refused(
        &["info".as_ref(), tmp.path().as_os_str()],
        &format!(
            "error: {}: is a directory, not a .torrent file",
            tmp.path().display()
        ),
    );
    let big = tmp.path().join("big.torrent");
    std::fs::write(&big, vec![b'x'; 10 * 1024 * 1024 + 1]).unwrap();
    assert_refused(
        &["info".as_ref(), big.as_os_str()],
        &format!(
            "error: {}: torrent file is 10485761 bytes, more than the 10485760 allowed",
            big.display()
        ),
    );
}

#[test]
fn bad_command_lines_are_refused() {
    let out = pollen(["info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let out = pollen(["info", "--bogus", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: info: Unrecognized option: 'bogus' (see `pollen help info`)\n"
    );
    let out = pollen(["create", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: create: -o OUT.torrent is required\n"
    );
}

#[test]
fn help_goes_to_stdout_and_succeeds() {
    for args in [&["--help"][..], &["help", "info"], &["help", "create"]] {
        let out = pollen(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8(out.stdout).unwrap().contains("Usage"),
            "{args:?}"
        );
    }
}
