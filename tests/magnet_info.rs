//! Magnet links on the command line: `pollen info 'magnet:?...'` prints what
//! the link holds and exits 0; a malformed link is one line and exit 2; a
//! download from a magnet link with no tracker and no peer to ask is
//! refused up front (exit 2) instead of waiting for ever, and never looks
//! for a file of that name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixtures, info_field, pollen, TempDir};

/// RFC 4648 base32 of `bytes`, bit by bit (independent of pollen's decoder).
fn base32(bytes: &[u8]) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    bits.chunks(5)
        .map(|c| {
            let v = c.iter().fold(0usize, |acc, b| acc * 2 + usize::from(*b));
            char::from(alphabet[v << (5 - c.len())])
        })
        .collect()
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// (exit code, stdout, stderr) of `pollen ARGS`.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = pollen(args);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The first fixture's (file, info-hash) from fixtures/expected.tsv.
fn first_fixture() -> (String, String) {
    let table = std::fs::read_to_string(fixtures().join("expected.tsv")).unwrap();
    let row = table.lines().nth(1).unwrap();
    let cols: Vec<&str> = row.split('\t').collect();
    (cols[0].to_string(), cols[1].to_string())
}

#[test]
fn info_shows_name_hash_trackers_peers_and_ignored_parameters() {
    let link = "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056\
                &dn=Big+Buck+Bunny&tr=udp%3A%2F%2Ftracker.example.org%3A1337%2Fannounce\
                &tr=https%3A%2F%2Ft.example.com%2Fannounce&tr=wss%3A%2F%2Fw.example\
                &x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D:51413\
                &ws=http%3A%2F%2Fmirror.example%2Ff&so=0,2";
    let (code, stdout, stderr) = run(&["info", link]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(info_field(&stdout, "name:"), Some("Big Buck Bunny"));
    assert_eq!(
        info_field(&stdout, "info-hash:"),
        Some("c9e15763f722f23e98a29decdfae341b98d53056")
    );
    assert_eq!(
        info_field(&stdout, "trackers:"),
        Some("udp://tracker.example.org:1337/announce")
    );
    assert!(
        stdout.contains("https://t.example.com/announce"),
        "{stdout}"
    );
    assert_eq!(info_field(&stdout, "peers:"), Some("127.0.0.1:6881"));
    assert!(stdout.contains("[::1]:51413"), "{stdout}");
    assert!(
        stdout.contains("note: skipped tracker \"wss://w.example\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: ignored web seed ws=\"http://mirror.example/f\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: ignored parameter \"so\""),
        "{stdout}"
    );
}

#[test]
fn hex_and_base32_links_give_the_torrent_files_own_info_hash() {
    let (file, hash) = first_fixture();
    let (code, stdout, stderr) = run(&["info", fixtures().join(&file).to_str().unwrap()]);
    assert_eq!(code, Some(0), "{file}: {stderr}");
    assert_eq!(info_field(&stdout, "info-hash:"), Some(hash.as_str()));
    let b32 = base32(&from_hex(&hash));
    for link in [
        format!("magnet:?xt=urn:btih:{hash}"),
        format!("magnet:?xt=urn:btih:{}", hash.to_uppercase()),
        format!("magnet:?xt=urn:btih:{b32}"),
        format!("magnet:?xt=urn:btih:{}", b32.to_lowercase()),
    ] {
        let (code, stdout, stderr) = run(&["info", &link]);
        assert_eq!(code, Some(0), "{link}: {stderr}");
        assert_eq!(
            info_field(&stdout, "info-hash:"),
            Some(hash.as_str()),
            "{link}"
        );
        assert_eq!(info_field(&stdout, "name:"), Some("(no name)"), "{link}");
        assert_eq!(info_field(&stdout, "trackers:"), Some("none"), "{link}");
        assert_eq!(info_field(&stdout, "peers:"), Some("none"), "{link}");
    }
}

#[test]
fn malformed_links_are_one_line_and_exit_2() {
    let hex = "c9e15763f722f23e98a29decdfae341b98d53056";
    let cases = [
        (
            "magnet:?xt=urn:btmh:1220abcd&dn=v2".to_string(),
            "v2-only magnet links are not supported: pollen speaks BitTorrent v1",
        ),
        ("magnet:?dn=nothing".to_string(), "no info-hash"),
        (
            format!("magnet:?xt=urn:btih:{}", &hex[2..]),
            "expected 40 (hex) or 32 (base32)",
        ),
        (
            format!("magnet:?xt=urn:btih:x{}", &hex[1..]),
            "not a hex digit",
        ),
        (
            format!("magnet:?xt=urn:btih:{hex}&dn=50%"),
            "bad percent escape",
        ),
        (
            format!("magnet:?xt=urn:btih:{hex}&xt=urn:btih:{}", "0".repeat(40)),
            "two different torrents",
        ),
        (
            format!("magnet:xt=urn:btih:{hex}"),
            "must start with magnet:?",
        ),
    ];
    for (link, expected) in cases {
        let (code, stdout, stderr) = run(&["info", &link]);
        assert_eq!(code, Some(2), "{link}: {stderr}");
        assert!(stdout.is_empty(), "{link}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{link}: {stderr}");
        assert!(stderr.starts_with("error: "), "{link}: {stderr}");
        assert!(stderr.contains(expected), "{link}: {stderr}");
    }
}

#[test]
fn a_magnet_link_with_no_tracker_and_no_peer_is_refused_up_front() {
    let tmp = TempDir::new("magnet-download");
    let dest = tmp.path().join("dest");
    let link = "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&dn=x";
    let (code, stdout, stderr) = run(&["-d", dest.to_str().unwrap(), link]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no tracker (tr=), no peer (x.pe) and no DHT node"),
        "{stderr}"
    );
    assert!(stderr.contains("--peer HOST:PORT"), "{stderr}");
    assert!(stderr.contains("--dht-bootstrap HOST:PORT"), "{stderr}");
    assert!(!stderr.contains("No such file"), "{stderr}");
    assert!(!dest.exists(), "nothing is created for a refused magnet");
}

#[test]
fn downloading_a_malformed_magnet_link_names_what_is_wrong() {
    let (code, _, stderr) = run(&["magnet:?xt=urn:btmh:1220abcd"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("v2-only magnet links"), "{stderr}");
}

#[test]
fn info_help_mentions_magnet_links() {
    let (code, stdout, _) = run(&["help", "info"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("pollen info 'magnet:?xt=urn:btih:...'"),
        "{stdout}"
    );
}
