//! `pollen info x.torrent | head -1`: when the reader of stdout goes away,
//! pollen stops writing and exits 0 with nothing on stderr (it used to
//! panic on the broken pipe and die with status 134).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{fixtures, TempDir};
use pollen::bencode::{encode, Dict, List, Value};

/// How long pollen may take to notice the closed pipe and exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// A torrent whose `pollen info` listing is megabytes long: far more than a
/// pipe holds (64 KiB on Linux), so pollen is still writing, blocked, when
/// the reader goes away, and its next write fails with EPIPE.
fn long_listing_torrent(dir: &TempDir) -> std::path::PathBuf {
    let names: Vec<String> = (0..20_000)
        .map(|i| format!("{i:05}-{}", "x".repeat(200)))
        .collect();
    let files = names
        .iter()
        .map(|name| {
            Value::Dict(Dict::new(vec![
                (&b"length"[..], Value::Int(1)),
                (
                    b"path",
                    Value::List(List::new(vec![Value::Bytes(name.as_bytes())])),
                ),
            ]))
        })
        .collect();
    let pieces = vec![7u8; 2 * 20]; // 20,000 bytes in 16 KiB pieces
    let info = Value::Dict(Dict::new(vec![
        (b"files", Value::List(List::new(files))),
        (b"name", Value::Bytes(b"long")),
        (b"piece length", Value::Int(16384)),
        (b"pieces", Value::Bytes(&pieces)),
    ]));
    let path = dir.path().join("long.torrent");
    std::fs::write(
        &path,
        encode(&Value::Dict(Dict::new(vec![(b"info", info)]))),
    )
    .unwrap();
    path
}

fn spawn_info(torrent: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pollen"))
        .arg("info")
        .arg(torrent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit (killing it past the deadline) and returns its
/// status and stderr.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let deadline = Instant::now() + EXIT_DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pollen kept running after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_into_a_pipe_closed_after_one_line_ends_quietly() {
    let dir = TempDir::new("closed-stdout");
    let torrent = long_listing_torrent(&dir);
    let mut child = spawn_info(&torrent);
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first, "name:         long\n");
    drop(reader); // what `head -1` does after its line
    let (status, stderr) = finish(child);
    assert_eq!(stderr, "", "nothing on stderr");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn short_outputs_into_a_closed_pipe_end_quietly() {
    // Closed before pollen writes, or just after: either way, exit 0.
    let single = fixtures().join("single.torrent");
    let runs: [&[&std::ffi::OsStr]; 3] = [
        &["info".as_ref(), single.as_os_str()],
        &["--help".as_ref()],
        &["--version".as_ref()],
    ];
    for args in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pollen"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let (status, stderr) = finish(child);
        assert_eq!(stderr, "", "{args:?}");
        assert_eq!(status.code(), Some(0), "{args:?}");
    }
}
