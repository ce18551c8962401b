//! The fuzz targets' checks (tests/fuzz/checks/) in the ordinary suite:
//! every input saved under `fixtures/fuzz/` (the seed corpus each target
//! starts from, and under `regressions/` every input that once crashed a
//! target, named after what it found) is replayed through its target's
//! check. A crash found by `make fuzz` is fixed, its input saved here, and
//! this test keeps it fixed; the fuzzing itself is not run by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fuzz/checks/mod.rs"]
mod checks;

use std::fs;
use std::path::{Path, PathBuf};

/// A target's check: panics on a crash.
type Check = fn(&[u8]);

/// Every target, by the name of its directory under `fixtures/fuzz/`.
const TARGETS: &[(&str, Check)] = &[
    ("bencode", checks::bencode),
    ("metainfo", checks::metainfo),
    ("magnet", checks::magnet),
    ("wire_stream", checks::wire_stream),
    ("handshake", checks::handshake),
    ("extensions", checks::extensions),
    ("tracker_replies", checks::tracker_replies),
    #[cfg(feature = "tracker-server")]
    ("tracker_server", checks::tracker_server),
    ("krpc", checks::krpc),
    ("state_files", checks::state_files),
    ("rpc_request", checks::rpc_request),
    ("web_seed_reply", checks::web_seed_reply),
    ("torrent_core", checks::torrent_core),
];

fn fuzz_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz")
}

/// The files under `dir` (none if it does not exist), sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// Replays every file of `dir` through `check`, naming the file that panics.
fn replay(target: &str, dir: &Path, check: Check) -> usize {
    let files = files_in(dir);
    for file in &files {
        let bytes = fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{target}: {} panics", file.display());
    }
    files.len()
}

#[test]
fn every_saved_crash_stays_fixed() {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        replayed += replay(
            target,
            &fuzz_fixtures().join("regressions").join(target),
            *check,
        );
    }
    println!("{replayed} saved crash inputs replayed");
}

#[test]
fn every_seed_input_passes_its_check() {
    for (target, check) in TARGETS {
        let seeds = replay(target, &fuzz_fixtures().join("seeds").join(target), *check);
        assert!(
            seeds > 0,
            "{target} has no seed inputs under fixtures/fuzz/seeds"
        );
    }
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_check() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/Cargo.toml"))
            .unwrap();
    for (target, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] of tests/fuzz/Cargo.toml"
        );
    }
    let bins = manifest.matches("[[bin]]").count();
    let left_out = usize::from(cfg!(not(feature = "tracker-server")));
    assert_eq!(
        bins,
        TARGETS.len() + left_out,
        "a fuzz target is missing from this test's list"
    );
}

#[test]
fn the_stateful_target_drives_a_core_through_a_long_sequence() {
    // Honest peers (the fast extension, every piece, unchoking us) answer
    // the core's requests, with noise mixed in: random events, failed hash
    // checks, peers leaving and coming back, time passing. The event
    // encoding is checks/torrent_core.rs's `Driver::step`.
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_le_bytes()[0]
    };
    let join = |who: u8| -> Vec<u8> {
        // A peer joins with the fast extension, sends HAVE_ALL, unchokes us.
        vec![
            0, who, 1, 2, 0xff, 13, 0, 0, 0, 0, 0, 2, 0xff, 2, 0, 0, 0, 0, 0,
        ]
    };
    let mut bytes = vec![0u8, 0];
    for who in 0..3 {
        bytes.extend(join(who));
    }
    for round in 0..1_500u32 {
        bytes.push(6); // request phase
        bytes.extend([11, next(), next() & 0x7f]); // a peer answers a request
        match round % 50 {
            10 => bytes.extend([13, 0]),                // the next checks fail
            20 => bytes.extend([13, 1]),                // and pass again
            30 => bytes.extend([1, next()]),            // a peer leaves
            31 => bytes.extend(join(next() % 4)),       // one joins
            40 => bytes.extend([8, 30, 9, 0]),          // 15 s pass; rechoke
            45 => bytes.extend((0..8).map(|_| next())), // noise
            _ => {}
        }
    }
    let summary = checks::drive_core(&bytes);
    println!("{summary:?}");
    assert!(summary.events > 1_000, "{summary:?}");
    assert!(summary.blocks_written > 0, "{summary:?}");
    assert!(
        summary.checks_passed > 0 && summary.checks_failed > 0,
        "{summary:?}"
    );
    assert!(summary.disconnects > 0, "{summary:?}");
}

#[test]
fn encoder_outputs_are_seed_inputs() {
    // Files pollen writes itself, through the state_files check (selector
    // 0: resume state, 1: daemon record, 3: DHT state). With
    // POLLEN_WRITE_FUZZ_SEEDS=1 they are saved as that target's seeds.
    use pollen::bitfield::Bitfield;
    use pollen::daemon::state::{encode_record, TorrentRecord};
    use pollen::dht::krpc::CompactNode;
    use pollen::dht::state_file::{encode as encode_dht, SavedState};
    use pollen::dht::NodeId;
    use pollen::metainfo::Metainfo;
    use pollen::resume::{encode, FileStamp, ResumeState};

    let meta = Metainfo::from_bytes(
        &fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/multi.torrent")).unwrap(),
    )
    .unwrap();
    let mut have = Bitfield::new(meta.layout.piece_count());
    have.set(0);
    let resume = ResumeState {
        info_hash: meta.info_hash,
        have,
        files: vec![
            FileStamp {
                len_on_disk: Some(5),
                mtime_ns: Some(1_700_000_000_000_000_000),
                ctime_ns: None,
            };
            meta.files.len()
        ],
    };
    let mut record = TorrentRecord::new(
        meta.info_hash,
        "multi".into(),
        "/srv/dl".into(),
        1_700_000_000,
    );
    record.seed_ratio = Some(1.5);
    record.magnet = Some("magnet:?xt=urn:btih:0102030405060708090a0b0c0d0e0f1011121314".into());
    let dht = SavedState {
        id: NodeId([9; 20]),
        nodes: vec![CompactNode {
            id: NodeId([8; 20]),
            addr: "127.0.0.3:6881".parse().unwrap(),
        }],
    };
    let seeds = [
        ("resume", [&[0u8][..], &encode(&resume)].concat()),
        ("record", [&[1u8][..], &encode_record(&record)].concat()),
        ("dht-state", [&[3u8][..], &encode_dht(&dht)].concat()),
    ];
    let dir = fuzz_fixtures().join("seeds/state_files");
    for (name, bytes) in &seeds {
        checks::state_files(bytes);
        if std::env::var_os("POLLEN_WRITE_FUZZ_SEEDS").is_some() {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
