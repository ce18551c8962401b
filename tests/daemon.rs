//! `pollen daemon`'s own behaviour through its RPC (issue 16): the watch
//! folder, the download queue, the state directory across a restart,
//! SIGHUP reloading the settings, download folders kept under the roots,
//! removal with the data, the seeding ratio limit, errors answered (never
//! a crash) and one daemon per state directory.
//!
//! Every daemon, seeder and tracker is a real `pollen` process on
//! 127.0.0.1, killed on drop; every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use common::daemon::{exchange, rpc_request, tracked_magnet, Daemon};
use common::process::{wait_for, Pollen, Tracker};
use common::{write_tree, TempDir};

/// How long a daemon may take to check, start, stop or reload something.
const SETTLE: Duration = Duration::from_secs(30);

/// How long a loopback download of a few MiB may take (rate-limited).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);

/// Writes `files` under `root/seed` and a torrent of their top entry to
/// `root/NAME.torrent` (announcing to `trackers`). Returns (seed dir, torrent).
fn make_torrent(
    root: &Path,
    name: &str,
    files: &[(&str, usize, u64)],
    trackers: &[&str],
) -> (PathBuf, PathBuf) {
    let seed = root.join("seed");
    write_tree(&seed, files);
    let top = files[0].0.split('/').next().unwrap();
    let options = pollen::create::CreateOptions {
        trackers: trackers.iter().map(|t| t.to_string()).collect(),
        piece_len: Some(64 * 1024),
        ..Default::default()
    };
    let torrent = root.join(format!("{name}.torrent"));
    fs::write(
        &torrent,
        pollen::create::create_torrent(&seed.join(top), &options).unwrap(),
    )
    .unwrap();
    (seed, torrent)
}

/// Polls `torrent-get` of `fields` until `cond` holds; panics with the
/// last answer and the daemon's log when `limit` passes first.
fn wait_torrents(
    daemon: &Daemon,
    fields: &[&str],
    limit: Duration,
    what: &str,
    mut cond: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let mut rpc = daemon.client();
    let mut last = Vec::new();
    let ok = wait_for(limit, || {
        last = rpc.torrents(fields);
        cond(&last)
    });
    assert!(
        ok,
        "{what}: not in {limit:?}; last torrent-get {last:?}\ndaemon log:\n{}",
        daemon.process.stderr()
    );
    last
}

/// The torrent with `hashString` `hash` in a `torrent-get` answer.
fn by_hash<'a>(torrents: &'a [Value], hash: &str) -> Option<&'a Value> {
    torrents.iter().find(|t| t["hashString"] == hash)
}

/// Sends `signal` (e.g. "-HUP") to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn watch_folder_adds_good_torrents_and_marks_bad_ones() {
    let root = TempDir::new("dwatch");
    let (state, dest, watch) = (root.0.join("state"), root.0.join("dest"), root.0.join("w"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&watch).unwrap();
    let (_, torrent) = make_torrent(&root.0, "good", &[("good.bin", 100_000, 1)], &[]);
    let daemon = Daemon::start(&state, &dest, &["--watch", watch.to_str().unwrap()]);
    // Written under another name, aged past the "still being written" window, renamed in.
    let staged = root.0.join("staged");
    fs::copy(&torrent, &staged).unwrap();
    let aged = SystemTime::now() - Duration::from_secs(10);
    fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(aged)
        .unwrap();
    fs::rename(&staged, watch.join("good.torrent")).unwrap();
    let bad = watch.join("bad.torrent");
    fs::write(&bad, b"this is not bencode at all").unwrap();
    fs::File::options()
        .write(true)
        .open(&bad)
        .unwrap()
        .set_modified(aged)
        .unwrap();

    let torrents = wait_torrents(
        &daemon,
        &["name", "downloadDir"],
        SETTLE,
        "watched add",
        |t| t.len() == 1,
    );
    assert_eq!(torrents[0]["name"], "good.bin");
    assert!(
        wait_for(SETTLE, || watch.join("good.torrent.added").is_file()
            && watch.join("bad.torrent.invalid").is_file()),
        "watch folder now: {:?}\n{}",
        fs::read_dir(&watch)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>(),
        daemon.process.stderr()
    );
    assert!(!watch.join("good.torrent").exists() && !bad.exists());
    let log = daemon.process.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("bad.torrent") && !l.contains("rename"))
        .unwrap_or_else(|| panic!("no line names bad.torrent:\n{log}"));
    assert!(
        line.len() > line.find("bad.torrent").unwrap() + "bad.torrent".len() + 2,
        "the line gives no reason: {line:?}"
    );
    // Only one torrent still: the bad one was never added.
    assert_eq!(daemon.client().torrents(&["id"]).len(), 1);
}

#[test]
fn download_queue_holds_the_second_torrent() {
    let root = TempDir::new("dqueue");
    let tracker = Tracker::start(&[]);
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    let size = 1024 * 1024;
    let (seed, one) = make_torrent(&root.0, "one", &[("one.bin", size, 21)], &[&tracker.http]);
    let (_, two) = make_torrent(&root.0, "two", &[("two.bin", size, 22)], &[&tracker.http]);
    let _seeder = Pollen::tracked_seeder(&[&one, &two], &seed, &["--max-up", "400K"]);
    let daemon = Daemon::start(&state, &dest, &["--download-queue", "1"]);
    let mut rpc = daemon.client();
    rpc.add_file(&one, json!({}));
    rpc.add_file(&two, json!({}));
    let fields = ["name", "status", "percentDone"];
    // One downloads (4) while the other waits for the slot (3).
    wait_torrents(
        &daemon,
        &fields,
        DOWNLOAD_LIMIT,
        "one downloading, one queued",
        |t| {
            let mut codes: Vec<u64> = t.iter().filter_map(|t| t["status"].as_u64()).collect();
            codes.sort_unstable();
            codes == [3, 4]
        },
    );
    wait_torrents(&daemon, &fields, DOWNLOAD_LIMIT, "both complete", |t| {
        t.len() == 2 && t.iter().all(|t| t["percentDone"].as_f64() == Some(1.0))
    });
    for name in ["one.bin", "two.bin"] {
        assert!(
            fs::read(seed.join(name)).unwrap() == fs::read(dest.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn restart_brings_back_torrents_as_they_were() {
    let root = TempDir::new("drestart");
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    let (seed, complete) = make_torrent(&root.0, "complete", &[("done.bin", 300_000, 31)], &[]);
    let (_, paused) = make_torrent(&root.0, "paused", &[("later.bin", 300_000, 32)], &[]);
    fs::create_dir_all(&dest).unwrap();
    fs::copy(seed.join("done.bin"), dest.join("done.bin")).unwrap();
    let fields = [
        "id",
        "name",
        "hashString",
        "downloadDir",
        "addedDate",
        "status",
        "percentDone",
    ];
    let before = {
        let mut daemon = Daemon::start(&state, &dest, &[]);
        let mut rpc = daemon.client();
        let done = rpc.add_file(&complete, json!({}))["torrent-added"]["hashString"].clone();
        rpc.add_file(&paused, json!({ "paused": true }));
        let before = wait_torrents(&daemon, &fields, SETTLE, "checked and seeding", |t| {
            by_hash(t, done.as_str().unwrap()).is_some_and(|t| t["status"] == 6)
        });
        daemon.process.terminate();
        let status = daemon.process.wait(SETTLE);
        assert!(
            status.success(),
            "SIGTERM: {status}\n{}",
            daemon.process.stderr()
        );
        before
    };
    let daemon = Daemon::start(&state, &dest, &[]);
    let after = wait_torrents(&daemon, &fields, SETTLE, "back as they were", |t| {
        t.len() == 2
            && t.iter().all(|t| match t["name"].as_str() {
                Some("done.bin") => t["status"] == 6 && t["percentDone"].as_f64() == Some(1.0),
                _ => t["status"] == 0,
            })
    });
    for old in &before {
        let new = by_hash(&after, old["hashString"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{old} did not come back: {after:?}"));
        for field in ["name", "downloadDir", "addedDate"] {
            assert_eq!(old[field], new[field], "{field} of {}", old["name"]);
        }
    }
}

#[test]
fn sighup_reloads_settings() {
    let root = TempDir::new("dhup");
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    let daemon = Daemon::start(&state, &dest, &[]);
    let mut rpc = daemon.client();
    let file = state.join("settings.json");
    let mut settings: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    settings["speed-limit-down"] = json!(123);
    settings["speed-limit-down-enabled"] = json!(true);
    fs::write(&file, serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
    signal(daemon.process.id(), "-HUP");
    let mut last = Value::Null;
    assert!(
        wait_for(SETTLE, || {
            last = rpc.ok("session-get", json!({}));
            last["speed-limit-down"] == 123 && last["speed-limit-down-enabled"] == true
        }),
        "after SIGHUP: {last}\n{}",
        daemon.process.stderr()
    );

    // A broken file is logged and changes nothing.
    let good = fs::read(&file).unwrap();
    fs::write(&file, b"{ not json").unwrap();
    signal(daemon.process.id(), "-HUP");
    assert!(
        wait_for(SETTLE, || daemon
            .process
            .stderr()
            .contains("settings not reloaded")),
        "{}",
        daemon.process.stderr()
    );
    let after = rpc.ok("session-get", json!({}));
    assert_eq!(after["speed-limit-down"], 123, "{after}");
    fs::write(&file, good).unwrap();

    rpc.ok(
        "session-set",
        json!({ "download-queue-size": 7, "download-queue-enabled": true }),
    );
    let saved: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["download-queue-size"], 7, "{saved}");
    assert_eq!(saved["download-queue-enabled"], true, "{saved}");
    // The reloaded limit is kept too.
    assert_eq!(saved["speed-limit-down"], 123, "{saved}");
    assert!(!daemon.process.stderr().contains("panicked"));
}

#[test]
fn download_dir_outside_the_roots_is_refused() {
    let root = TempDir::new("droots");
    let (state, dest, extra, outside) = (
        root.0.join("state"),
        root.0.join("dest"),
        root.0.join("extra"),
        root.0.join("outside"),
    );
    for dir in [&dest, &extra, &outside] {
        fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::symlink(&outside, dest.join("link")).unwrap();
    let (_, torrent) = make_torrent(&root.0, "t", &[("file.bin", 50_000, 41)], &[]);
    let daemon = Daemon::start(&state, &dest, &["--download-root", extra.to_str().unwrap()]);
    let mut rpc = daemon.client();
    let metainfo = common::daemon::base64(&fs::read(&torrent).unwrap());
    let elsewhere =
        std::env::temp_dir().join(format!("pollen-it-elsewhere-{}", std::process::id()));
    let refused = [
        elsewhere.clone(),
        outside.join("x"),
        dest.join("../outside/escaped"),
        dest.join("sub/../../outside/escaped2"),
        dest.join("link/through"),
        dest.join("link"),
    ];
    for dir in &refused {
        let answer = rpc.call(
            "torrent-add",
            json!({ "metainfo": metainfo, "download-dir": dir }),
        );
        assert_ne!(answer["result"], "success", "{}: {answer}", dir.display());
    }
    assert!(!elsewhere.exists());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "something was made outside the roots"
    );
    assert!(rpc.torrents(&["id"]).is_empty());

    let inside = extra.join("music");
    let added = rpc.call(
        "torrent-add",
        json!({ "metainfo": metainfo, "download-dir": inside }),
    );
    assert_eq!(added["result"], "success", "{added}");
    let torrents = rpc.torrents(&["downloadDir"]);
    assert_eq!(torrents.len(), 1);
    assert_eq!(
        Path::new(torrents[0]["downloadDir"].as_str().unwrap())
            .canonicalize()
            .ok(),
        inside.canonicalize().ok(),
        "{torrents:?}"
    );
}

#[test]
fn remove_with_delete_local_data_deletes_only_that_torrents_files() {
    let root = TempDir::new("dremove");
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    let files = [
        ("album/a.bin", 200_000, 51),
        ("album/sub/b.bin", 150_000, 52),
        ("album/sub/deeper/c.bin", 70_000, 53),
    ];
    let (_, torrent) = make_torrent(&root.0, "album", &files, &[]);
    write_tree(&dest, &files);
    let unrelated = dest.join("album/notes.txt");
    fs::write(&unrelated, b"the user's own file").unwrap();
    let daemon = Daemon::start(&state, &dest, &[]);
    let mut rpc = daemon.client();
    let added = rpc.add_file(&torrent, json!({}));
    let id = added["torrent-added"]["id"].clone();
    let hash = added["torrent-added"]["hashString"]
        .as_str()
        .unwrap()
        .to_string();
    wait_torrents(
        &daemon,
        &["status", "percentDone"],
        SETTLE,
        "checked",
        |t| {
            t.first()
                .is_some_and(|t| t["status"] == 6 && t["percentDone"].as_f64() == Some(1.0))
        },
    );
    let named = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.to_string_lossy().contains(&hash))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        !named(&state.join("torrents")).is_empty(),
        "nothing saved under STATE/torrents"
    );
    rpc.ok(
        "torrent-remove",
        json!({ "ids": [id], "delete-local-data": true }),
    );
    wait_torrents(&daemon, &["id"], SETTLE, "removed", |t| t.is_empty());
    for (rel, _, _) in &files {
        assert!(!dest.join(rel).exists(), "{rel} is still there");
    }
    assert!(!dest.join("album/sub").exists(), "its emptied folder stays");
    assert!(unrelated.is_file(), "the user's own file was deleted");
    assert!(dest.is_dir());
    let left: Vec<PathBuf> = [dest.join(".pollen"), state.join("torrents")]
        .iter()
        .flat_map(|d| named(d))
        // The instance lock file is kept by design (src/lock.rs: "The file is never removed").
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Alone in its folder, the torrent's top folder goes too; --dest stays.
    fs::remove_file(&unrelated).unwrap();
    write_tree(&dest, &files);
    let added = rpc.add_file(&torrent, json!({}));
    wait_torrents(&daemon, &["status"], SETTLE, "checked again", |t| {
        t.first().is_some_and(|t| t["status"] == 6)
    });
    rpc.ok(
        "torrent-remove",
        json!({ "ids": [added["torrent-added"]["id"]], "delete-local-data": true }),
    );
    wait_torrents(&daemon, &["id"], SETTLE, "removed again", |t| t.is_empty());
    assert!(!dest.join("album").exists(), "its emptied top folder stays");
    assert!(dest.is_dir(), "--dest itself was removed");
}

#[test]
fn ratio_limit_stops_seeding() {
    let root = TempDir::new("dratio");
    let (state, dest, leech) = (
        root.0.join("state"),
        root.0.join("dest"),
        root.0.join("leech"),
    );
    let size = 512 * 1024;
    let (seed, torrent) = make_torrent(&root.0, "r", &[("ratio.bin", size, 61)], &[]);
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&leech).unwrap();
    fs::copy(seed.join("ratio.bin"), dest.join("ratio.bin")).unwrap();
    let daemon = Daemon::start(&state, &dest, &[]);
    let mut rpc = daemon.client();
    let id = rpc.add_file(&torrent, json!({}))["torrent-added"]["id"].clone();
    rpc.ok(
        "torrent-set",
        json!({ "ids": [id], "seedRatioMode": 1, "seedRatioLimit": 0.5 }),
    );
    wait_torrents(&daemon, &["status"], SETTLE, "seeding", |t| {
        t.first().is_some_and(|t| t["status"] == 6)
    });
    let _leecher = Pollen::leecher(&torrent, &leech, &daemon.peer_arg());
    let fields = ["status", "isFinished", "uploadedEver", "seedRatioMode"];
    let done = wait_torrents(
        &daemon,
        &fields,
        DOWNLOAD_LIMIT,
        "stopped at the ratio",
        |t| {
            t.first()
                .is_some_and(|t| t["status"] == 0 && t["isFinished"] == true)
        },
    );
    let uploaded = done[0]["uploadedEver"].as_u64().unwrap();
    assert!(
        uploaded >= size as u64 / 2,
        "stopped after only {uploaded} bytes"
    );
    assert_eq!(done[0]["seedRatioMode"], 1);
}

#[test]
fn rpc_methods_answer_errors_not_crashes() {
    let root = TempDir::new("derrors");
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    let (seed, torrent) = make_torrent(&root.0, "v", &[("verify.bin", 400_000, 71)], &[]);
    fs::create_dir_all(&dest).unwrap();
    fs::copy(seed.join("verify.bin"), dest.join("verify.bin")).unwrap();
    let daemon = Daemon::start(&state, &dest, &[]);
    let mut rpc = daemon.client();

    let answer = rpc.call("no-such-method", json!({}));
    assert_eq!(answer["result"], "method name not recognized", "{answer}");
    let answer = rpc.call("torrent-get", json!({}));
    assert_ne!(answer["result"], "success", "{answer}");
    assert!(answer["result"].is_string(), "{answer}");

    // Garbage JSON, with a valid session id (learnt from a 409).
    let first = exchange(daemon.rpc, &rpc_request(daemon.rpc, "{}", &[]));
    assert_eq!(first.status, 409);
    let sid = first
        .header("x-transmission-session-id")
        .unwrap()
        .to_string();
    for garbage in [
        "{not json",
        "[1,2",
        "\u{0}\u{1}\u{2}",
        "",
        "{\"method\":42}",
    ] {
        let answer = exchange(
            daemon.rpc,
            &rpc_request(daemon.rpc, garbage, &[("X-Transmission-Session-Id", &sid)]),
        );
        assert_eq!(answer.status, 200, "{garbage:?}");
        let body = answer.json();
        assert!(
            body["result"].is_string() && body["result"] != "success",
            "{garbage:?}: {body}"
        );
    }

    let free = rpc.ok("free-space", json!({ "path": dest }));
    assert!(free["size-bytes"].as_u64().is_some_and(|n| n > 0), "{free}");
    let port = rpc.ok("port-test", json!({}));
    assert_eq!(port["port-is-open"], false, "{port}");
    let stats = rpc.ok("session-stats", json!({}));
    assert!(stats["cumulative-stats"].is_object(), "{stats}");

    let id = rpc.add_file(&torrent, json!({}))["torrent-added"]["id"].clone();
    let fields = ["status", "percentDone"];
    wait_torrents(&daemon, &fields, SETTLE, "seeding", |t| {
        t.first()
            .is_some_and(|t| t["status"] == 6 && t["percentDone"].as_f64() == Some(1.0))
    });
    rpc.ok("torrent-verify", json!({ "ids": [id] }));
    let now = rpc.torrents(&["status", "percentDone", "id"]);
    assert!(
        now.len() == 1 && [1, 2, 6].contains(&now[0]["status"].as_u64().unwrap()),
        "right after torrent-verify: {now:?}"
    );
    assert_eq!(now[0]["id"], id, "the RPC id changed: {now:?}");
    wait_torrents(&daemon, &fields, SETTLE, "verified again", |t| {
        t.first()
            .is_some_and(|t| t["status"] == 6 && t["percentDone"].as_f64() == Some(1.0))
    });
    // A re-check really reads the data: one byte changed, one piece lost.
    let data = dest.join("verify.bin");
    let mut bytes = fs::read(&data).unwrap();
    bytes[100_000] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    rpc.ok("torrent-verify", json!({ "ids": [id] }));
    wait_torrents(&daemon, &fields, SETTLE, "a piece lost", |t| {
        t.first().is_some_and(|t| {
            t["percentDone"]
                .as_f64()
                .is_some_and(|p| p > 0.5 && p < 1.0)
                && [3, 4].contains(&t["status"].as_u64().unwrap_or(0))
        })
    });
    // Still answering, still alive.
    rpc.ok("session-get", json!({}));
    let mut process = daemon.process;
    assert!(!process.has_exited(), "{}", process.stderr());
    assert!(
        !process.stderr().contains("panicked"),
        "{}",
        process.stderr()
    );
}

#[test]
fn a_second_daemon_on_the_same_state_exits() {
    let root = TempDir::new("dlock");
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    let first = Daemon::start(&state, &dest, &[]);
    let mut second = Pollen::start([
        "daemon".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--dest".as_ref(),
        dest.as_os_str(),
        "--rpc-bind".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--port".as_ref(),
        "0".as_ref(),
        "--no-dht".as_ref(),
    ]);
    let status = second.wait(SETTLE);
    let log = second.stderr();
    assert!(!status.success(), "a second daemon ran: {log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("another pollen") && lines[0].contains(state.to_str().unwrap()),
        "{log}"
    );
    // The first is untouched.
    first.client().ok("session-get", json!({}));
}

/// A magnet link outlives restarts until its metadata is in the state
/// directory: added with no peer anywhere, the daemon restarted; then a
/// seeder comes, the metadata arrives and the download completes; after
/// another restart the torrent is still there, complete, from the saved
/// metainfo (the link alone would not be enough: the seeder is gone).
#[test]
fn a_magnet_survives_restarts_before_and_after_its_metadata() {
    let root = TempDir::new("dmagnet");
    let tracker = Tracker::start(&[]);
    let (state, dest) = (root.0.join("state"), root.0.join("dest"));
    fs::create_dir_all(&dest).unwrap();
    let (seed, torrent) = make_torrent(&root.0, "m", &[("m.bin", 400_000, 41)], &[&tracker.http]);
    let meta = pollen::load_torrent(&torrent).unwrap();
    let hash = meta.info_hash.to_hex();
    let link = tracked_magnet(&meta, &tracker.http);
    let fields = [
        "hashString",
        "name",
        "percentDone",
        "status",
        "metadataPercentComplete",
    ];
    {
        let mut daemon = Daemon::start(&state, &dest, &[]);
        daemon
            .client()
            .ok("torrent-add", json!({ "filename": link }));
        daemon.process.terminate();
        assert!(
            daemon.process.wait(SETTLE).success(),
            "{}",
            daemon.process.stderr()
        );
    }
    {
        let mut daemon = Daemon::start(&state, &dest, &[]);
        wait_torrents(&daemon, &fields, SETTLE, "the link is back", |t| {
            by_hash(t, &hash).is_some()
        });
        let mut seeder = Pollen::tracked_seeder(&[&torrent], &seed, &[]);
        wait_torrents(&daemon, &fields, DOWNLOAD_LIMIT, "metadata and data", |t| {
            by_hash(t, &hash).is_some_and(|t| t["percentDone"].as_f64() == Some(1.0))
        });
        assert_eq!(
            fs::read(dest.join("m.bin")).unwrap(),
            fs::read(seed.join("m.bin")).unwrap()
        );
        // Saved within a pass of the drive_daemon phase (once a second).
        let saved = root
            .0
            .join("state/torrents")
            .join(format!("{hash}.torrent"));
        assert!(
            wait_for(SETTLE, || saved.is_file()),
            "{}",
            daemon.process.stderr()
        );
        seeder.kill();
        daemon.process.terminate();
        assert!(
            daemon.process.wait(SETTLE).success(),
            "{}",
            daemon.process.stderr()
        );
    }
    let daemon = Daemon::start(&state, &dest, &[]);
    wait_torrents(
        &daemon,
        &fields,
        SETTLE,
        "complete after the restart",
        |t| {
            by_hash(t, &hash).is_some_and(|t| {
                t["name"] == "m.bin" && t["percentDone"].as_f64() == Some(1.0) && t["status"] == 6
            })
        },
    );
}
