//! Never lose a user's file (issue 13): real pollen processes on 127.0.0.1
//! against files already in the destination, a destination too small for
//! the torrent, and a disk that fills up mid-download (`RLIMIT_FSIZE`).
//!
//! - A file at a torrent file's path that matches none of its pieces is
//!   refused with one line naming it, exit 1, and left byte for byte as it
//!   was, also on a second try; `--overwrite` replaces it and the download
//!   completes byte-identical. A partly right file is resumed; an empty or
//!   sparse one is used; a directory in the way is refused even with
//!   `--overwrite`; a longer file is refused, and cut to length with it.
//!   The library says the same with `Error::Refused` and
//!   `Download::overwrite`.
//! - A torrent larger than the free space stops before anything starts.
//! - Past the file size limit, pollen (which ignores SIGXFSZ itself) stops
//!   with one error line and exit 1, keeps what it verified and its resume
//!   state, and the same command without the limit completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::harness::{self, program, trial};
use common::process::Pollen;
use common::{payload, seeded_torrent, TempDir};

/// Every test of this file (`harness = false`: a `#[test]` here would not run).
fn main() {
    harness::run(vec![
        trial!(
            a_foreign_file_is_refused_untouched_and_overwrite_replaces_it,
            []
        ),
        trial!(a_partly_right_file_is_resumed_in_place, []),
        trial!(
            an_empty_or_sparse_file_holds_nothing_to_lose_and_is_used,
            []
        ),
        trial!(a_longer_file_is_refused_and_overwrite_cuts_it_to_length, []),
        trial!(
            a_directory_where_a_file_goes_is_refused_even_with_overwrite,
            []
        ),
        trial!(a_small_file_whose_pieces_span_missing_files_is_refused, []),
        trial!(
            a_torrent_larger_than_the_free_space_stops_before_it_starts,
            []
        ),
        trial!(
            a_full_disk_stops_with_one_line_keeps_what_it_verified_and_resumes,
            [program("prlimit", "util-linux")]
        ),
        trial!(
            the_library_refuses_a_foreign_file_with_a_typed_error_and_overwrite_replaces_it,
            []
        ),
    ]);
}

/// Longest any one pollen run here may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A 300,000-byte single-file torrent `x.iso` (16 KiB pieces) seeded by a
/// pollen: (scratch dir, seed dir, torrent, seeder, `--peer` argument).
fn swarm(tag: &str) -> (TempDir, PathBuf, PathBuf, Pollen, String) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("x.iso", 300_000, 7)], Some(16 * 1024));
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    (tmp, seed, torrent, seeder, peer)
}

/// Runs a leecher of `torrent` into `dest` from `peer` with `extra`
/// options to its end (quiet unless `extra` has `-v`): (exit code, stderr).
fn leech(torrent: &Path, dest: &Path, peer: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        torrent.as_os_str(),
        "-d".as_ref(),
        dest.as_os_str(),
        "--no-tracker".as_ref(),
        "--peer".as_ref(),
        peer.as_ref(),
    ];
    if !extra.contains(&"-v") {
        args.push("-q".as_ref()); // -q would hide the -v lines
    }
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let mut pollen = Pollen::start(args);
    let status = pollen.wait(RUN_LIMIT);
    (status.code(), pollen.stderr())
}

/// The lines of `stderr` (there must be exactly one) and that line.
fn only_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr:\n{stderr}");
    lines[0]
}

fn assert_same_file(want: &Path, got: &Path) {
    let (want_bytes, got_bytes) = (std::fs::read(want).unwrap(), std::fs::read(got).unwrap());
    assert!(
        want_bytes == got_bytes,
        "{} differs from {}",
        got.display(),
        want.display()
    );
}

fn a_foreign_file_is_refused_untouched_and_overwrite_replaces_it() {
    let (tmp, seed, torrent, _seeder, peer) = swarm("foreign");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let target = dest.join("x.iso");
    let mine = payload(99, 300_000); // the same length, none of the bytes
    std::fs::write(&target, &mine).unwrap();
    let before = std::fs::metadata(&target).unwrap().modified().unwrap();
    let want = format!(
        "error: refusing to overwrite {}: it exists and none of its pieces match this torrent \
         (use --overwrite to replace it)",
        target.display()
    );
    // Twice: the first refusal must not make the file look like pollen's own.
    for attempt in 1..=2 {
        let (code, stderr) = leech(&torrent, &dest, &peer, &[]);
        assert_eq!(code, Some(1), "attempt {attempt}: {stderr}");
        assert_eq!(only_line(&stderr), want, "attempt {attempt}");
        assert!(
            std::fs::read(&target).unwrap() == mine,
            "attempt {attempt}: file changed"
        );
        let after = std::fs::metadata(&target).unwrap().modified().unwrap();
        assert_eq!(after, before, "attempt {attempt}: file written to");
        assert!(!dest.join("x.iso.part").exists(), "attempt {attempt}");
    }
    let (code, stderr) = leech(&torrent, &dest, &peer, &["--overwrite"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_same_file(&seed.join("x.iso"), &target);
}

fn a_partly_right_file_is_resumed_in_place() {
    let (tmp, seed, torrent, _seeder, peer) = swarm("partial");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let mut bytes = std::fs::read(seed.join("x.iso")).unwrap();
    for b in &mut bytes[100_000..] {
        *b = !*b; // the first six pieces right, the rest wrong
    }
    std::fs::write(dest.join("x.iso"), &bytes).unwrap();
    let (code, stderr) = leech(&torrent, &dest, &peer, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_same_file(&seed.join("x.iso"), &dest.join("x.iso"));
}

fn an_empty_or_sparse_file_holds_nothing_to_lose_and_is_used() {
    let (tmp, seed, torrent, _seeder, peer) = swarm("empty");
    for (name, len) in [("empty", 0), ("sparse", 300_000)] {
        let dest = tmp.path().join(name);
        std::fs::create_dir_all(&dest).unwrap();
        let file = std::fs::File::create(dest.join("x.iso")).unwrap();
        file.set_len(len).unwrap();
        drop(file);
        let (code, stderr) = leech(&torrent, &dest, &peer, &[]);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert_same_file(&seed.join("x.iso"), &dest.join("x.iso"));
    }
}

fn a_longer_file_is_refused_and_overwrite_cuts_it_to_length() {
    let (tmp, seed, torrent, _seeder, peer) = swarm("longer");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let target = dest.join("x.iso");
    let mut bytes = std::fs::read(seed.join("x.iso")).unwrap();
    bytes[200_000] ^= 0xff; // one piece wrong
    bytes.extend_from_slice(b"the user's own tail, which a cut would lose");
    std::fs::write(&target, &bytes).unwrap();
    let (code, stderr) = leech(&torrent, &dest, &peer, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let line = only_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "error: refusing to overwrite {}: it is ",
            target.display()
        )) && line.contains("longer than this torrent's file (300000 bytes)"),
        "{line}"
    );
    assert!(std::fs::read(&target).unwrap() == bytes, "file changed");
    let (code, stderr) = leech(&torrent, &dest, &peer, &["--overwrite"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_same_file(&seed.join("x.iso"), &target);
}

fn a_directory_where_a_file_goes_is_refused_even_with_overwrite() {
    let (tmp, _seed, torrent, _seeder, peer) = swarm("directory");
    let dest = tmp.path().join("dest");
    let inside = dest.join("x.iso").join("keep.txt");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(&inside, b"mine").unwrap();
    for extra in [&[][..], &["--overwrite"][..]] {
        let (code, stderr) = leech(&torrent, &dest, &peer, extra);
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert_eq!(
            only_line(&stderr),
            format!(
                "error: cannot write {}: it is a directory, where the torrent has a file \
                 (move it away)",
                dest.join("x.iso").display()
            )
        );
        assert_eq!(std::fs::read(&inside).unwrap(), b"mine");
    }
}

/// A small file whose only piece also spans two files that are missing
/// cannot be proven either way: pollen refuses it (the careful choice),
/// and `--overwrite` fetches it again.
fn a_small_file_whose_pieces_span_missing_files_is_refused() {
    let tmp = TempDir::new("unprovable");
    let files = [
        ("d/a.bin", 20_000, 1),
        ("d/b.txt", 100, 2),
        ("d/c.bin", 20_000, 3),
    ];
    let (seed, torrent) = seeded_torrent(tmp.path(), &files, Some(32 * 1024));
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(dest.join("d")).unwrap();
    // The right bytes, even: with a.bin and c.bin missing no piece can say so.
    std::fs::copy(seed.join("d/b.txt"), dest.join("d/b.txt")).unwrap();
    let (code, stderr) = leech(&torrent, &dest, &peer, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        only_line(&stderr).starts_with(&format!(
            "error: refusing to overwrite {}",
            dest.join("d/b.txt").display()
        )),
        "{stderr}"
    );
    let (code, stderr) = leech(&torrent, &dest, &peer, &["--overwrite"]);
    assert_eq!(code, Some(0), "{stderr}");
    common::process::assert_same_tree(&seed, &dest);
}

/// A bencoded single-file torrent of `len` bytes in 512 MiB pieces whose
/// hashes are all zeros (nothing is ever verified against them here).
fn huge_torrent(len: u64) -> Vec<u8> {
    let piece_len: u64 = 512 * 1024 * 1024;
    let pieces = len.div_ceil(piece_len) as usize;
    let mut out = format!(
        "d4:infod6:lengthi{len}e4:name8:huge.bin12:piece lengthi{piece_len}e6:pieces{}:",
        pieces * 20
    )
    .into_bytes();
    out.extend(std::iter::repeat_n(0u8, pieces * 20));
    out.extend_from_slice(b"ee");
    out
}

fn a_torrent_larger_than_the_free_space_stops_before_it_starts() {
    let tmp = TempDir::new("nospace");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let free = pollen::storage::free_bytes(&dest).unwrap();
    // Twice the room left, and at least 1 TiB: a real torrent this disk cannot hold.
    let len = free.saturating_mul(2).max(1 << 40);
    let torrent = tmp.path().join("huge.torrent");
    std::fs::write(&torrent, huge_torrent(len)).unwrap();
    let (code, stderr) = leech(&torrent, &dest, "127.0.0.1:9", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let line = only_line(&stderr);
    let prefix = format!("error: not enough space on {}: need ", dest.display());
    assert!(
        line.starts_with(&prefix) && line.contains(" more, ") && line.ends_with(" free"),
        "{line}"
    );
    assert!(!dest.join("huge.bin").exists() && !dest.join("huge.bin.part").exists());
}

fn a_full_disk_stops_with_one_line_keeps_what_it_verified_and_resumes() {
    let tmp = TempDir::new("fsize");
    let (seed, torrent) = seeded_torrent(tmp.path(), &[("big.bin", 4 << 20, 5)], Some(64 * 1024));
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let peer = seeder.peer_arg();
    let dest = tmp.path().join("dest");
    // A 1 MiB file size limit: the default action of SIGXFSZ would kill
    // pollen; pollen ignores it, so the write fails with EFBIG instead.
    let pollen = env!("CARGO_BIN_EXE_pollen");
    let args = [
        "--fsize=1048576",
        pollen,
        torrent.to_str().unwrap(),
        "-d",
        dest.to_str().unwrap(),
        "--no-tracker",
        "--peer",
        &peer,
        "--strategy",
        "sequential", // pieces in order: the first ones fit under the limit
        "-q",
    ];
    let mut full = Pollen::start_command("prlimit", args);
    let status = full.wait(RUN_LIMIT);
    let stderr = full.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = only_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "error: cannot write {}",
            dest.join("big.bin.part").display()
        )) && line.contains("File too large")
            && line.contains("disk full"),
        "{line}"
    );
    // The verified pieces and the resume state that vouches for them are kept.
    let part = std::fs::metadata(dest.join("big.bin.part")).unwrap();
    assert!(
        part.len() <= 1 << 20,
        "written past the limit: {}",
        part.len()
    );
    let resume = std::fs::read_dir(dest.join(".pollen"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "resume"));
    assert!(resume, "no resume state after a disk-full stop");
    // Room again: the same command trusts what was verified and completes.
    let (code, stderr) = leech(&torrent, &dest, &peer, &["-v"]);
    assert_eq!(code, Some(0), "{stderr}");
    let trusted = stderr
        .lines()
        .find_map(|l| l.split("resume: ").nth(1))
        .unwrap_or_else(|| panic!("no resume line:\n{stderr}"));
    assert!(!trusted.starts_with("0 of"), "nothing kept: {trusted}");
    assert_same_file(&seed.join("big.bin"), &dest.join("big.bin"));
}

fn the_library_refuses_a_foreign_file_with_a_typed_error_and_overwrite_replaces_it() {
    let (tmp, seed, torrent, _seeder, peer) = swarm("library");
    let dest = tmp.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let mine = payload(42, 1000);
    std::fs::write(dest.join("x.iso"), &mine).unwrap();
    let addr: std::net::SocketAddr = peer.parse().unwrap();
    let download = |overwrite: bool| {
        pollen::Download::new(&torrent)
            .dest(&dest)
            .peer(addr)
            .trackers(false)
            .overwrite(overwrite)
            .run()
    };
    match download(false) {
        Err(pollen::Error::Refused(pollen::storage::Refusal::Foreign { path })) => {
            assert_eq!(path, dest.join("x.iso"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(std::fs::read(dest.join("x.iso")).unwrap() == mine);
    assert_eq!(download(true).unwrap(), pollen::Outcome::Complete);
    assert_same_file(&seed.join("x.iso"), &dest.join("x.iso"));
}
