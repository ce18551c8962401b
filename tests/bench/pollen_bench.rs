//! `make bench`: speed figures for the pure core, printed, never asserted.
//!
//! Each figure is the median of several runs. Absolute numbers are noisy on
//! a shared machine; the useful comparisons are within one run (SHA-1 in
//! memory vs. verifying from disk, decoding vs. hashing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use pollen::bencode::{self, Dict, List, Value};
use pollen::hash::Sha1Hash;
use pollen::metainfo::Metainfo;
use pollen::storage::Storage;
use pollen::wire::{decode_frame, FrameLimits, Message};

const RUNS: usize = 7;

/// Median wall time of `RUNS` calls of `f`.
fn median(f: impl FnMut()) -> Duration {
    median_of(RUNS, f)
}

/// Median wall time of `runs` calls of `f`.
fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn rate_mib(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64()
}

fn main() {
    println!("pollen bench (median of {RUNS} runs)");
    bench_sha1();
    bench_torrent_decode();
    bench_wire_decode();
    bench_verify_from_disk();
    bench_startup_recheck();
    bench_trace_overhead();
}

/// `--trace` on a 256 MiB loopback download, pollen to pollen: wall time
/// with and without tracing (to a file), medians and the ratio.
fn bench_trace_overhead() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("pollen-bench-trace-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("seed")).unwrap();
    let len: usize = 256 << 20;
    let data: Vec<u8> = (0..len).map(|i| (i * 31 + (i >> 11)) as u8).collect();
    std::fs::write(dir.join("seed/payload"), &data).unwrap();
    drop(data);
    let options = pollen::create::CreateOptions {
        piece_len: Some(256 << 10),
        ..Default::default()
    };
    let torrent = dir.join("t.torrent");
    std::fs::write(
        &torrent,
        pollen::create::create_torrent(&dir.join("seed/payload"), &options).unwrap(),
    )
    .unwrap();
    let mut seeder = Command::new(env!("CARGO_BIN_EXE_pollen"))
        .arg(&torrent)
        .args([
            "-d",
            dir.join("seed").to_str().unwrap(),
            "--seed",
            "--no-tracker",
            "-q",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(seeder.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first.trim().rsplit(':').next().unwrap().to_string();
    let timed = |trace: bool| {
        median(|| {
            let dest = dir.join("leech");
            let _ = std::fs::remove_dir_all(&dest);
            let mut command = Command::new(env!("CARGO_BIN_EXE_pollen"));
            command
                .arg(&torrent)
                .args(["-d", dest.to_str().unwrap(), "--no-tracker", "-q", "--peer"])
                .arg(format!("127.0.0.1:{port}"))
                .stdout(Stdio::null());
            if trace {
                command.arg(format!("--trace={}", dir.join("trace.txt").display()));
            }
            assert!(command.status().unwrap().success());
        })
    };
    let plain = timed(false);
    let traced = timed(true);
    let trace_lines =
        std::fs::read_to_string(dir.join("trace.txt")).map_or(0, |t| t.lines().count());
    println!(
        "256 MiB pollen to pollen: {:.2} s without --trace, {:.2} s with ({trace_lines} lines): {:+.1} %",
        plain.as_secs_f64(),
        traced.as_secs_f64(),
        (traced.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
    );
    let _ = seeder.kill();
    let _ = seeder.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SHA-1 speed of this machine as OpenSSL measures it (16 KiB blocks), in MiB/s.
fn openssl_sha1_mib() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha1", "-bytes", "16384", "-seconds", "2"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: "sha1   <bytes/s in thousands>k"
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("sha1"))?;
    let kbytes: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kbytes * 1000.0 / 1048576.0)
}

/// Start-up re-check of a complete 1 GiB torrent: `pollen` started on the
/// finished files (no resume state) verifies every piece and exits. Then
/// the restart that matters on a small box: with the resume state the
/// first run saved (nothing is hashed) vs. `--check` (everything is),
/// medians of 3, side by side.
fn bench_startup_recheck() {
    let dir = std::env::temp_dir().join(format!("pollen-bench-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let len: usize = 1 << 30;
    let chunk: Vec<u8> = (0..(1usize << 24))
        .map(|i| (i * 13 + (i >> 9)) as u8)
        .collect();
    {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.join("data/big.bin")).unwrap();
        for n in 0..(len / chunk.len()) {
            let mut block = chunk.clone();
            block[0] = n as u8; // no two chunks alike
            file.write_all(&block).unwrap();
        }
    }
    let options = pollen::create::CreateOptions {
        piece_len: Some(1 << 20),
        ..Default::default()
    };
    let torrent = dir.join("big.torrent");
    std::fs::write(
        &torrent,
        pollen::create::create_torrent(&dir.join("data/big.bin"), &options).unwrap(),
    )
    .unwrap();
    let start = |extra: &[&str]| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_pollen"))
            .arg(&torrent)
            .args([
                "-d",
                dir.join("data").to_str().unwrap(),
                "--no-tracker",
                "-q",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    };
    let time = median(|| {
        let _ = std::fs::remove_dir_all(dir.join("data/.pollen"));
        start(&[]);
    });
    // The last run saved a resume state; --check runs save it again.
    let restart = median_of(3, || start(&[]));
    let check = median_of(3, || start(&["--check"]));
    let rate = rate_mib(len, time);
    match openssl_sha1_mib() {
        Some(sha1) => println!(
            "start-up re-check of a complete 1 GiB torrent (page cache warm): {rate:8.0} MiB/s; openssl sha1: {sha1:.0} MiB/s ({:.0} % of it)",
            rate * 100.0 / sha1
        ),
        None => println!("start-up re-check of a complete 1 GiB torrent (page cache warm): {rate:8.0} MiB/s (openssl not found)"),
    }
    println!(
        "restart of a complete 1 GiB torrent (medians of 3): {:.3} s with its resume file, {:.3} s with --check ({:.0}x)",
        restart.as_secs_f64(),
        check.as_secs_f64(),
        check.as_secs_f64() / restart.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench_sha1() {
    let data = vec![0x5au8; 64 << 20];
    let time = median(|| {
        black_box(Sha1Hash::of(black_box(&data)));
    });
    println!(
        "sha1 in memory:            {:8.0} MiB/s",
        rate_mib(data.len(), time)
    );
}

/// A torrent with 50,000 files and 100,000 pieces, as bencode bytes.
fn big_torrent() -> Vec<u8> {
    let names: Vec<String> = (0..50_000).map(|i| format!("file-{i:05}.dat")).collect();
    let pieces = vec![7u8; 100_000 * 20];
    let files = names
        .iter()
        .map(|name| {
            Value::Dict(Dict::new(vec![
                (&b"length"[..], Value::Int(32_768)),
                (
                    b"path",
                    Value::List(List::new(vec![
                        Value::Bytes(b"dir"),
                        Value::Bytes(name.as_bytes()),
                    ])),
                ),
            ]))
        })
        .collect();
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"big")),
        (b"piece length", Value::Int(16_384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    bencode::encode(&Value::Dict(Dict::new(vec![(b"info", info)])))
}

fn bench_torrent_decode() {
    let bytes = big_torrent();
    let time = median(|| {
        black_box(Metainfo::from_bytes(black_box(&bytes)).unwrap());
    });
    println!(
        "metainfo parse (50k files, 100k pieces, {:.1} MiB): {:.1} ms ({:.0} MiB/s)",
        bytes.len() as f64 / 1048576.0,
        time.as_secs_f64() * 1000.0,
        rate_mib(bytes.len(), time)
    );
}

fn bench_wire_decode() {
    let block = vec![1u8; 16 * 1024];
    let mut stream = Vec::new();
    for i in 0..4096u32 {
        Message::Piece {
            piece: i,
            begin: 0,
            data: &block,
        }
        .encode(&mut stream);
        Message::Have { piece: i }.encode(&mut stream);
    }
    let limits = FrameLimits::for_pieces(10_000);
    let time = median(|| {
        let mut pos = 0;
        while let Some((message, used)) = decode_frame(&stream[pos..], &limits).unwrap() {
            black_box(message);
            pos += used;
        }
    });
    // Decoding borrows the payload, so this is the framing cost alone.
    println!(
        "wire decode (16 KiB PIECE + HAVE frames): {:.1} M frames/s",
        8192.0 / time.as_secs_f64() / 1e6
    );
}

fn bench_verify_from_disk() {
    let dir = std::env::temp_dir().join(format!("pollen-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let len: usize = 256 << 20;
    let piece_len: usize = 256 << 10;
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + (i >> 12)) as u8).collect();
    let pieces: Vec<u8> = data
        .chunks(piece_len)
        .flat_map(|p| Sha1Hash::of(p).0)
        .collect();
    std::fs::write(dir.join("payload"), &data).unwrap();
    let info = Value::Dict(Dict::new(vec![
        (b"length", Value::Int(len as i64)),
        (b"name", Value::Bytes(b"payload")),
        (b"piece length", Value::Int(piece_len as i64)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let torrent = bencode::encode(&Value::Dict(Dict::new(vec![(b"info", info)])));
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let mut storage = Storage::new(&dir, &meta).unwrap();
    let time = median(|| {
        for piece in meta.layout.pieces() {
            assert!(storage
                .verify_piece(piece, meta.piece_hash(piece).unwrap())
                .unwrap());
        }
    });
    println!(
        "verify 256 MiB from disk (page cache warm): {:8.0} MiB/s",
        rate_mib(len, time)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
