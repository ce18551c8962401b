//! `--trace` narrates the wire: for one peer, the handshake, HAVE_ALL and
//! ALLOWED_FAST (both pollens set the fast extension's bit, BEP 6),
//! INTERESTED, UNCHOKE, REQUEST, PIECE and HAVE appear in a valid order, and
//! the filters keep only what they name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{wait_for, Pollen};
use common::{seeded_torrent, write_tree, TempDir};

fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("tr/a.bin", 600_000, 71)], Some(64 * 1024));
    (tmp, seed, torrent)
}

/// A seeder that has finished checking its data, so it greets a peer with
/// HAVE_ALL (a peer that connects during the check gets HAVE_NONE, then
/// HAVEs afterwards).
fn seeder(torrent: &Path, seed: &Path) -> Pollen {
    let mut seeder = Pollen::start([
        torrent.as_os_str(),
        "-d".as_ref(),
        seed.as_os_str(),
        "--seed".as_ref(),
        "--no-tracker".as_ref(),
        "-v".as_ref(),
    ]);
    seeder.port();
    let checked = wait_for(Duration::from_secs(30), || {
        seeder.stderr().contains("pieces verified on disk")
    });
    assert!(checked, "{}", seeder.stderr());
    seeder
}

/// Runs a traced leecher to completion and returns the trace lines.
fn traced_download(torrent: &Path, dest: &Path, peers: &[String], extra: &[&str]) -> Vec<String> {
    let trace = dest.with_extension("trace");
    let mut args: Vec<std::ffi::OsString> = vec![
        torrent.into(),
        "-d".into(),
        dest.into(),
        "--no-tracker".into(),
        "-q".into(),
    ];
    args.push(format!("--trace={}", trace.display()).into());
    for peer in peers {
        args.extend(["--peer".into(), peer.into()]);
    }
    args.extend(extra.iter().map(|s| s.into()));
    let mut leecher = Pollen::start(args);
    assert!(
        leecher.wait(Duration::from_secs(60)).success(),
        "{}",
        leecher.stderr()
    );
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Index of the first line containing all of `parts`.
fn first(lines: &[String], parts: &[&str]) -> usize {
    lines
        .iter()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line with {parts:?} in\n{}", lines.join("\n")))
}

#[test]
fn trace_shows_the_life_of_a_block_in_order() {
    let (tmp, seed, torrent) = setup("trace");
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let lines = traced_download(
        &torrent,
        &tmp.path().join("leech"),
        std::slice::from_ref(&peer),
        &[],
    );
    let at = |dir: &str, what: &str| first(&lines, &[&format!("{dir} {peer} {what}")]);
    let handshake_out = at("->", "HANDSHAKE");
    let handshake_in = at("<-", "HANDSHAKE");
    let have_all = at("<-", "HAVE_ALL");
    let allowed_fast = at("<-", "ALLOWED_FAST #");
    let have_none = at("->", "HAVE_NONE");
    let interested = at("->", "INTERESTED");
    let unchoke = at("<-", "UNCHOKE");
    let request = at("->", "REQUEST");
    let piece = at("<-", "PIECE");
    let have = at("->", "HAVE #");
    let hash = first(&lines, &["hash #", "ok"]);
    assert!(
        handshake_out < handshake_in && handshake_in < have_all && have_all < allowed_fast,
        "{lines:#?}"
    );
    assert!(handshake_in < have_none, "{lines:#?}");
    assert!(
        have_all < interested && interested < unchoke && allowed_fast < request,
        "{lines:#?}"
    );
    // Before the UNCHOKE only allowed-fast pieces may be asked for.
    let allowed: Vec<String> = lines
        .iter()
        .filter_map(|l| l.split(&format!("<- {peer} ALLOWED_FAST ")).nth(1))
        .map(|n| format!("REQUEST {} ", n.trim()))
        .collect();
    for line in &lines[..unchoke] {
        if line.contains(&format!("-> {peer} REQUEST")) {
            assert!(
                allowed.iter().any(|a| line.contains(a.as_str())),
                "a REQUEST before the UNCHOKE for a piece not allowed fast: {line}\n{lines:#?}"
            );
        }
    }
    assert!(request < piece && piece < hash && hash < have, "{lines:#?}");
    // Every line: time, phase, event; times never go backwards.
    let times: Vec<f64> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times out of order");
    assert!(lines
        .iter()
        .any(|l| l.contains(" wait ") && l.contains("wake: ")));
    assert!(lines
        .iter()
        .any(|l| l.contains(" request_blocks ") && l.contains("pick #")));
    s.kill();
}

#[test]
fn trace_filters_keep_only_what_they_name() {
    let (tmp, seed, torrent) = setup("trace-filter");
    // One pollen per download directory: the second seeder gets its own copy.
    let seed_two = tmp.path().join("seed2");
    write_tree(&seed_two, &[("tr/a.bin", 600_000, 71)]);
    let mut one = seeder(&torrent, &seed);
    let mut two = seeder(&torrent, &seed_two);
    let (peer_one, peer_two) = (one.peer_arg(), two.peer_arg());
    let peers = [peer_one.clone(), peer_two.clone()];
    // Only pick events: picks, hash results and HAVE broadcasts.
    let picks = traced_download(
        &torrent,
        &tmp.path().join("a"),
        &peers,
        &["--trace-kinds", "pick"],
    );
    assert!(!picks.is_empty());
    for line in &picks {
        assert!(
            line.contains("pick #") || line.contains("hash #") || line.contains(" sent to "),
            "{line}"
        );
    }
    // Only events about one peer (events about no peer stay, for context).
    let about_one = traced_download(
        &torrent,
        &tmp.path().join("b"),
        &peers,
        &["--trace-peer", &peer_one],
    );
    assert!(about_one.iter().any(|l| l.contains(&peer_one)));
    assert!(
        !about_one.iter().any(|l| l.contains(&peer_two)),
        "{about_one:#?}"
    );
    one.kill();
    two.kill();
}
