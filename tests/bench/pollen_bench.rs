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
    // `cargo bench --bench pollen_bench -- NAME` runs the figures whose
    // name contains NAME (cargo itself passes `--bench`).
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let benches: [(&str, fn()); 7] = [
        ("sha1", bench_sha1),
        ("torrent_decode", bench_torrent_decode),
        ("worst_case_parse", bench_worst_case_parse),
        ("wire_decode", bench_wire_decode),
        ("verify_from_disk", bench_verify_from_disk),
        ("startup_recheck", bench_startup_recheck),
        ("trace_overhead", bench_trace_overhead),
    ];
    println!("pollen bench (median of {RUNS} runs)");
    for (name, bench) in benches {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            bench();
        }
    }
}

/// The two torrent shapes that once cost seconds and hundreds of MB to
/// parse (issue 11), generated here: ~10 MiB of 393k files with 786 names
/// each used 501 times (so 500 of them need a `.N` suffix), and 27k files
/// whose paths are 100 elements deep. Prints the median time of
/// `Metainfo::from_bytes` and the peak memory of a whole `pollen info`
/// (via /usr/bin/time, which `make bench` installs).
fn bench_worst_case_parse() {
    let dir = std::env::temp_dir().join(format!("pollen-bench-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (label, bytes) in [
        ("393k duplicate names", duplicate_names_torrent()),
        ("27k files, 100-deep paths", deep_paths_torrent()),
    ] {
        let time = median(|| {
            black_box(Metainfo::from_bytes(black_box(&bytes)).unwrap());
        });
        let file = dir.join("worst.torrent");
        std::fs::write(&file, &bytes).unwrap();
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "%e %M"])
            .arg(env!("CARGO_BIN_EXE_pollen"))
            .arg("info")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .output();
        let peak = match out {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stderr);
                let mut last = text.lines().last().unwrap_or("").split_whitespace();
                let secs = last.next().unwrap_or("?").to_string();
                let kb: f64 = last.next().and_then(|k| k.parse().ok()).unwrap_or(0.0);
                format!("`pollen info` {secs} s, peak {:.0} MB", kb / 1000.0)
            }
            _ => "peak memory needs /usr/bin/time (package time)".to_string(),
        };
        println!(
            "metainfo parse, {label} ({:.1} MiB): {:.0} ms; {peak}",
            bytes.len() as f64 / 1048576.0,
            time.as_secs_f64() * 1000.0,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bencoded string.
fn bstr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// A torrent of one-byte files at `paths`, one 1 MiB piece per MiB.
fn torrent_of(name: &[u8], paths: impl Iterator<Item = Vec<Vec<u8>>>) -> Vec<u8> {
    let mut files = Vec::new();
    let mut count = 0u64;
    for path in paths {
        files.extend_from_slice(b"d6:lengthi1e4:pathl");
        for element in path {
            bstr(&mut files, &element);
        }
        files.extend_from_slice(b"ee");
        count += 1;
    }
    let piece_len = 1u64 << 20;
    let pieces = count.div_ceil(piece_len) as usize;
    let mut out = b"d4:infod5:filesl".to_vec();
    out.extend_from_slice(&files);
    out.extend_from_slice(b"e4:name");
    bstr(&mut out, name);
    out.extend_from_slice(format!("12:piece lengthi{piece_len}e6:pieces").as_bytes());
    bstr(&mut out, &vec![7u8; pieces * 20]);
    out.extend_from_slice(b"ee");
    out
}

/// 786 two-letter names, each 501 times: 393,786 files in about 10 MiB.
fn duplicate_names_torrent() -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let names = (0..786).flat_map(move |i| {
        let name = vec![alphabet[i / 62], alphabet[i % 62]];
        std::iter::repeat_n(vec![name], 501)
    });
    torrent_of(b"dup", names)
}

/// 27,000 files whose paths are 100 elements deep, each in its own top
/// directory (so no directory is shared).
fn deep_paths_torrent() -> Vec<u8> {
    let paths = (0..27_000).map(|i| {
        let mut path = vec![format!("{i:05}").into_bytes()];
        path.extend(std::iter::repeat_n(b"a".to_vec(), 98));
        path.push(b"f".to_vec());
        path
    });
    torrent_of(b"deep", paths)
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
