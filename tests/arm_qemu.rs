//! The ARM binaries that `make release-arm` builds, run on this machine by
//! qemu-user: `pollen info` on every fixture prints what the native binary
//! prints (stdout, stderr, exit status), and a download from a native pollen
//! seeder on 127.0.0.1 (`--peer`, `--no-tracker`) is byte-identical. The
//! 32-bit armv7 build checks the `u64` offsets and `try_from` narrowing on a
//! 32-bit `usize`.
//!
//! Run by `make test-arm`, which builds the binaries, installs Debian's
//! qemu-user and sets `POLLEN_ARM_BIN` (aarch64) and `POLLEN_ARMV7_BIN`.
//! Without them the tests are reported as ignored (`common::harness`); with
//! one set, a missing binary or qemu is a failure. The binary sizes and the
//! download time under emulation are printed, never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::harness::{self, program, trial, Need};
use common::process::{assert_same_tree, Pollen};
use common::{fixtures, run_with_deadline, seeded_torrent, TempDir};

/// The aarch64 binary's variable and where `make release-arm` puts it.
const AARCH64: Arch = Arch {
    var: "POLLEN_ARM_BIN",
    target: "aarch64-unknown-linux-musl",
    qemu: "qemu-aarch64",
};

/// The 32-bit ARM binary's variable and where `make release-arm` puts it.
const ARMV7: Arch = Arch {
    var: "POLLEN_ARMV7_BIN",
    target: "armv7-unknown-linux-gnueabihf",
    qemu: "qemu-arm",
};

/// Longest one `pollen info` may take under emulation.
const INFO_LIMIT: Duration = Duration::from_secs(60);
/// Longest the emulated download may take (a few seconds here).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(180);

/// The download: a folder whose pieces straddle its files, a short last
/// piece; 16 MiB less a little.
const SHARE: &[(&str, usize, u64)] = &[
    ("arm/a.bin", 5_000_003, 71),
    ("arm/deep/b.bin", 11_000_001, 72),
    ("arm/c.txt", 777, 73),
];

/// One ARM build: the variable naming its binary, its target triple, and
/// the qemu-user program that runs it.
struct Arch {
    var: &'static str,
    target: &'static str,
    qemu: &'static str,
}

impl Arch {
    /// `$VAR`, or the path `make release-arm` writes.
    fn binary(&self) -> PathBuf {
        match std::env::var_os(self.var) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(self.target)
                .join("release/pollen"),
        }
    }

    fn needs(&self) -> Vec<Need> {
        vec![
            Need::Requested {
                var: self.var,
                how: "make test-arm",
            },
            program(self.qemu, "qemu-user"),
            Need::File {
                path: self.binary(),
                how: "make release-arm builds it",
            },
        ]
    }

    /// The binary run by qemu with `args`.
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(self.qemu);
        command.arg(self.binary()).args(args);
        command
    }
}

fn main() {
    let mut tests = Vec::new();
    for (arch, tests_of_arch) in [
        (
            &AARCH64,
            vec![
                trial!(aarch64_info_matches_the_native_binary_on_every_fixture, []),
                trial!(aarch64_downloads_from_a_native_seeder_byte_for_byte, []),
            ],
        ),
        (
            &ARMV7,
            vec![
                trial!(armv7_info_matches_the_native_binary_on_every_fixture, []),
                trial!(armv7_downloads_from_a_native_seeder_byte_for_byte, []),
            ],
        ),
    ] {
        for mut test in tests_of_arch {
            test.needs = arch.needs();
            tests.push(test);
        }
    }
    harness::run(tests);
}

fn aarch64_info_matches_the_native_binary_on_every_fixture() {
    info_matches_native(&AARCH64);
}

fn aarch64_downloads_from_a_native_seeder_byte_for_byte() {
    download_from_native_seeder(&AARCH64);
}

fn armv7_info_matches_the_native_binary_on_every_fixture() {
    info_matches_native(&ARMV7);
}

fn armv7_downloads_from_a_native_seeder_byte_for_byte() {
    download_from_native_seeder(&ARMV7);
}

/// Every `.torrent` under `fixtures/` and `fixtures/bad/`.
fn fixture_torrents() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [fixtures(), fixtures().join("bad")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "torrent") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn info_matches_native(arch: &Arch) {
    print_size(arch);
    let torrents = fixture_torrents();
    assert!(torrents.len() > 10, "fixtures missing: {torrents:?}");
    for torrent in &torrents {
        let mut native = Command::new(env!("CARGO_BIN_EXE_pollen"));
        native.arg("info").arg(torrent);
        let native = run_with_deadline(native, INFO_LIMIT);
        let emulated = run_with_deadline(
            arch.command(["info".as_ref(), torrent.as_os_str()]),
            INFO_LIMIT,
        );
        let show = |out: &[u8]| String::from_utf8_lossy(out).into_owned();
        assert_eq!(
            (
                emulated.status.code(),
                show(&emulated.stdout),
                show(&emulated.stderr)
            ),
            (
                native.status.code(),
                show(&native.stdout),
                show(&native.stderr)
            ),
            "{} under {}: (exit, stdout, stderr) differ from the native binary's",
            torrent.display(),
            arch.qemu
        );
    }
    eprintln!(
        "{}: `pollen info` agrees with the native binary on {} fixtures",
        arch.target,
        torrents.len()
    );
}

fn download_from_native_seeder(arch: &Arch) {
    let tmp = TempDir::new(&format!("qemu-{}", arch.qemu));
    let (seed, torrent) = seeded_torrent(tmp.path(), SHARE, Some(256 * 1024));
    let mut seeder = Pollen::seeder(&torrent, &seed, &[]);
    let dest = tmp.path().join("dest");
    let start = Instant::now();
    let mut leecher = Pollen::start_command(
        arch.qemu,
        [
            arch.binary().as_os_str(),
            torrent.as_os_str(),
            "--dest".as_ref(),
            dest.as_os_str(),
            "--no-tracker".as_ref(),
            "--peer".as_ref(),
            seeder.peer_arg().as_ref(),
            "-q".as_ref(),
        ],
    );
    let status = leecher.wait(DOWNLOAD_LIMIT);
    let took = start.elapsed();
    assert!(
        status.success(),
        "{} leecher: {status}\n{}\nseeder:\n{}",
        arch.target,
        leecher.stderr(),
        seeder.stderr()
    );
    assert_same_tree(&seed, &dest);
    let bytes: usize = SHARE.iter().map(|(_, len, _)| len).sum();
    let mib = bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{} under {}: {mib:.1} MiB from a native seeder in {:.2} s ({:.1} MiB/s), byte-identical",
        arch.target,
        arch.qemu,
        took.as_secs_f64(),
        mib / took.as_secs_f64()
    );
    seeder.kill();
}

/// Prints the binary's size (the figure the README quotes).
fn print_size(arch: &Arch) {
    let len = std::fs::metadata(arch.binary()).unwrap().len();
    eprintln!(
        "{}: {} is {len} bytes ({:.2} MiB)",
        arch.target,
        arch.binary().display(),
        len as f64 / (1024.0 * 1024.0)
    );
}
