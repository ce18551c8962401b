//! Crash safety and resume: a leecher killed with SIGKILL at random points
//! ten times still ends byte-identical, without re-downloading much; a
//! deleted or corrupted resume file costs a re-check, not the data; a full
//! disk stops pollen with one clear line and exit status 1, and a restart
//! with room completes; bit rot that no stamp sees is trusted by a restart
//! and found by `--check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{assert_same_tree, wait_for, Pollen};
use common::{seeded_torrent, TempDir};
use pollen::rng::Rng;

/// A 64 MiB multi-file tree (pieces straddle files).
const BIG: &[(&str, usize, u64)] = &[
    ("share/a.bin", 20_000_001, 201),
    ("share/d/b.bin", 30_000_003, 202),
    ("share/d/e/c.bin", 17_108_860, 203),
];

fn setup(tag: &str, files: &[(&str, usize, u64)]) -> (TempDir, PathBuf, PathBuf, u64) {
    let tmp = TempDir::new(tag);
    let (seed, torrent) = seeded_torrent(tmp.path(), files, Some(256 * 1024));
    let total = files.iter().map(|f| f.1 as u64).sum();
    (tmp, seed, torrent, total)
}

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
    seeder
}

fn leecher(torrent: &Path, dest: &Path, peer: &str, extra: &[&str]) -> Pollen {
    let mut args: Vec<std::ffi::OsString> = vec![
        torrent.into(),
        "-d".into(),
        dest.into(),
        "--no-tracker".into(),
        "--peer".into(),
        peer.into(),
        "-v".into(),
    ];
    args.extend(extra.iter().map(|s| s.into()));
    Pollen::start(args)
}

/// Bytes the seeder says it uploaded (its exit line); stops it.
fn seeder_uploaded(mut seeder: Pollen) -> u64 {
    seeder.terminate();
    assert!(seeder.wait(Duration::from_secs(20)).success());
    let log = seeder.stderr();
    log.lines()
        .find_map(|l| l.split("uploaded ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no totals line:\n{log}"))
}

/// Bytes on disk under `dest` (allocated blocks: the files are sparse).
fn on_disk(dest: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, sum: &mut u64) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                walk(&entry.path(), sum);
            } else {
                *sum += meta.blocks() * 512;
            }
        }
    }
    let mut sum = 0;
    walk(dest, &mut sum);
    sum
}

#[test]
fn ten_kills_at_random_points_lose_nothing() {
    let (tmp, seed, torrent, total) = setup("kill9", BIG);
    let seeder = {
        let mut s = seeder(&torrent, &seed);
        let peer = s.peer_arg();
        (s, peer)
    };
    let (seeder, peer) = seeder;
    let dest = tmp.path().join("leech");
    let mut rng = Rng::new(2026);
    // Slowed to ~4 MiB/s (plus a 2 MiB burst per start) so ten kills spread over the download.
    let limit = ["--max-down", "4M"];
    let mut kills = 0;
    while kills < 10 {
        let mut run = leecher(&torrent, &dest, &peer, &limit);
        let wait = Duration::from_millis(150 + rng.below(350) as u64);
        let finished = wait_for(wait, || run.has_exited());
        if finished {
            break;
        }
        run.kill();
        kills += 1;
        eprintln!(
            "kill {kills} after {wait:?}: {} MiB on disk",
            on_disk(&dest) >> 20
        );
    }
    let mut last = leecher(&torrent, &dest, &peer, &[]);
    assert!(
        last.wait(Duration::from_secs(120)).success(),
        "{}",
        last.stderr()
    );
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    let uploaded = seeder_uploaded(seeder);
    let overhead = uploaded.saturating_sub(total);
    eprintln!(
        "{kills} kills: {uploaded} bytes sent for a {total}-byte torrent: overhead {:.1} MiB ({:.1} %), {:.2} MiB per kill",
        overhead as f64 / 1048576.0,
        overhead as f64 * 100.0 / total as f64,
        overhead as f64 / 1048576.0 / kills.max(1) as f64
    );
    assert!(
        kills >= 10,
        "the download finished after only {kills} kills"
    );
    // Each kill may lose what was in flight: at most 500 requests of 16 KiB.
    assert!(
        overhead <= kills as u64 * 500 * 16384,
        "overhead {overhead} bytes"
    );
}

/// Downloads part of the torrent, then kills the leecher.
fn partial_download(torrent: &Path, dest: &Path, peer: &str, total: u64) {
    let mut run = leecher(torrent, dest, peer, &["--max-down", "16M"]);
    assert!(
        wait_for(Duration::from_secs(30), || on_disk(dest) > total / 3),
        "{}",
        run.stderr()
    );
    run.kill();
}

fn resume_file(dest: &Path) -> PathBuf {
    let dir = dest.join(".pollen");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "resume"));
    entry
        .map(|e| e.path())
        .unwrap_or_else(|| panic!("no resume file in {}", dir.display()))
}

/// Restarts after `damage` was done to the resume state: the data on disk
/// is found by re-checking and not downloaded again.
fn restart_after(tag: &str, damage: impl FnOnce(&Path), warning: Option<&str>) {
    let (tmp, seed, torrent, total) = setup(tag, &BIG[..2]);
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    partial_download(&torrent, &dest, &peer, total);
    damage(&resume_file(&dest));
    let mut again = leecher(&torrent, &dest, &peer, &[]);
    assert!(
        again.wait(Duration::from_secs(60)).success(),
        "{}",
        again.stderr()
    );
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    let log = again.stderr();
    if let Some(warning) = warning {
        assert!(log.contains(warning), "no warning {warning:?}:\n{log}");
    }
    let checked = log
        .lines()
        .find_map(|l| l.split("checked existing data: ").nth(1))
        .unwrap_or_else(|| panic!("{log}"));
    let found: u32 = checked.split(' ').next().unwrap().parse().unwrap();
    assert!(found > 0, "the re-check found nothing: {checked}");
    let uploaded = seeder_uploaded(s);
    // The first run fetched about a third; the second only the rest.
    assert!(
        uploaded < total + total / 4,
        "{uploaded} bytes sent for {total}"
    );
    eprintln!(
        "{tag}: re-check found {checked}; seeder sent {:.2} copies",
        uploaded as f64 / total as f64
    );
}

#[test]
fn deleted_resume_file_means_a_recheck_not_a_redownload() {
    restart_after(
        "resume-deleted",
        |path| std::fs::remove_file(path).unwrap(),
        None,
    );
}

#[test]
fn truncated_resume_file_is_a_warning_and_a_recheck() {
    restart_after(
        "resume-truncated",
        |path| {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        },
        Some("re-checking the data on disk"),
    );
}

#[test]
fn garbage_resume_file_is_a_warning_and_a_recheck() {
    restart_after(
        "resume-garbage",
        |path| std::fs::write(path, b"<html>garbage</html>").unwrap(),
        Some("re-checking the data on disk"),
    );
}

#[test]
fn a_full_disk_stops_with_one_clear_line_and_a_restart_completes() {
    let (tmp, seed, torrent, _) = setup("diskfull", &BIG[..2]);
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    // RLIMIT_FSIZE of 8 MiB: a write past it fails with EFBIG (SIGXFSZ ignored).
    let script = format!(
        "trap '' XFSZ; ulimit -f 8192; exec {} {} -d {} --no-tracker --peer {peer} -q",
        env!("CARGO_BIN_EXE_pollen"),
        torrent.display(),
        dest.display()
    );
    let mut full = Pollen::start_command("bash", ["-c", script.as_str()]);
    let status = full.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{}", full.stderr());
    let stderr = full.stderr();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("error: cannot write ")
            && errors[0].contains("share/")
            && errors[0].contains("File too large"),
        "{}",
        errors[0]
    );
    // With room again, the download completes, keeping what was verified.
    let mut again = leecher(&torrent, &dest, &peer, &[]);
    assert!(
        again.wait(Duration::from_secs(60)).success(),
        "{}",
        again.stderr()
    );
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    s.kill();
}

#[test]
fn check_rehashes_what_the_resume_state_would_trust_and_clean_starts_over() {
    let (tmp, seed, torrent, total) = setup("check-clean", &BIG[2..]);
    let mut s = seeder(&torrent, &seed);
    let peer = s.peer_arg();
    let dest = tmp.path().join("leech");
    let mut first = leecher(&torrent, &dest, &peer, &[]);
    assert!(
        first.wait(Duration::from_secs(60)).success(),
        "{}",
        first.stderr()
    );
    // Bit rot: one byte changes on disk and no stamp moves. Simulated by
    // corrupting it, then saving the resume state again with the file's new
    // stamps (an edit alone moves the ctime, which the resume check sees).
    let file = dest.join("share/d/e/c.bin");
    {
        use std::os::unix::fs::FileExt;
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        handle.write_all_at(&[0x5a ^ 0xff], 1_000_000).unwrap();
    }
    let meta = pollen::load_torrent(&torrent).unwrap();
    let path = pollen::resume::resume_path(&dest, &meta);
    let mut state = pollen::resume::load(&path, &meta).unwrap().unwrap();
    state.files = pollen::resume::stamp_files(&dest, &meta);
    pollen::resume::save(&path, &state).unwrap();
    // Trusted pieces are not hashed: this restart cannot see the bad byte.
    let mut trusting = leecher(&torrent, &dest, &peer, &[]);
    assert!(trusting.wait(Duration::from_secs(60)).success());
    let pieces = total.div_ceil(256 * 1024);
    assert!(
        trusting.stderr().contains(&format!(
            "checked existing data: {pieces} of {pieces} pieces verified (0 hashed, {pieces} trusted"
        )),
        "{}",
        trusting.stderr()
    );
    // --check re-hashes everything, finds the bad piece and fetches it again.
    let mut checking = leecher(&torrent, &dest, &peer, &["--check"]);
    assert!(
        checking.wait(Duration::from_secs(60)).success(),
        "{}",
        checking.stderr()
    );
    let log = checking.stderr();
    assert!(
        log.contains(&format!(
            "checked existing data: {} of {pieces} pieces verified ({pieces} hashed, 0 trusted",
            pieces - 1
        )),
        "{log}"
    );
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    // --clean deletes the files and the resume state, then downloads it all again.
    let mut clean = leecher(&torrent, &dest, &peer, &["--clean"]);
    assert!(
        clean.wait(Duration::from_secs(60)).success(),
        "{}",
        clean.stderr()
    );
    assert!(clean.stderr().contains("removed "), "{}", clean.stderr());
    assert!(
        clean
            .stderr()
            .contains(&format!("checked existing data: 0 of {pieces}")),
        "{}",
        clean.stderr()
    );
    assert_same_tree(&seed.join("share"), &dest.join("share"));
    s.kill();
}
