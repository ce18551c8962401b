//! The daemon's web pages in a real browser: a headless Chromium (Debian
//! `chromium`, driven through `chromedriver`, `common::browser`) opens
//! - pollen's own page at `/`: it shows a torrent added through the RPC
//!   with its progress, and a magnet link typed into it and added from it
//!   downloads;
//! - Debian's Transmission web UI (package `transmission-common`, 3.00) at
//!   `/transmission/web/`, which the daemon serves from
//!   `/usr/share/transmission/web`: it lists the torrent as seeding.
//!
//! Peers come from a `pollen tracker` on 127.0.0.1; each torrent has its own
//! pollen seeder. Each test writes a screenshot to
//! `target/screenshots/` (git-ignored) for a person to look at.
//!
//! Without Chromium, chromedriver or the web UI's files these tests are
//! reported ignored (`common::harness`); under `POLLEN_INTEROP=1` (`make
//! interop`) that is a failure. Every process is killed when its test ends
//! and every wait has a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::browser::{Browser, BrowserError, CHROMEDRIVER, CHROMIUM};
use common::daemon::{Daemon, Rpc};
use common::harness::{self, trial, Need};
use common::process::{Pollen, Tracker};
use common::{write_tree, TempDir};
use pollen::metainfo::Metainfo;
use serde_json::json;

fn main() {
    harness::run(vec![
        trial!(
            builtin_page_shows_progress_and_adds_a_magnet,
            [chromium(), chromedriver()]
        ),
        trial!(
            transmission_web_ui_shows_the_torrent,
            [chromium(), chromedriver(), transmission_web_ui()]
        ),
    ]);
}

/// Where Debian's `transmission-common` puts the Transmission web UI (the
/// daemon's default `--web-ui` when its `index.html` is there).
const TRANSMISSION_WEB: &str = "/usr/share/transmission/web";

/// How long the page may take to show a torrent complete (tracker
/// announce, connect, download of a small payload, the page's 2 s refresh).
const TRANSFER_LIMIT: Duration = Duration::from_secs(90);
/// How long the page may take to show something it already has.
const PAGE_LIMIT: Duration = Duration::from_secs(20);
/// Piece length of both torrents: several pieces each.
const PIECE_LEN: u32 = 32 * 1024;

fn chromium() -> Need {
    Need::File {
        path: PathBuf::from(CHROMIUM),
        how: "Debian package chromium",
    }
}

fn chromedriver() -> Need {
    Need::File {
        path: PathBuf::from(CHROMEDRIVER),
        how: "Debian package chromium-driver",
    }
}

fn transmission_web_ui() -> Need {
    Need::File {
        path: Path::new(TRANSMISSION_WEB).join("index.html"),
        how: "Debian package transmission-common",
    }
}

/// One torrent of the test: its payload under `seed`, its `.torrent`, its
/// metainfo, and the pollen seeding it (announcing to the tracker).
struct Shared {
    seed: PathBuf,
    torrent: PathBuf,
    meta: Metainfo,
    name: String,
    _seeder: Pollen,
}

impl Shared {
    /// Writes `name` (one file of `len` bytes from payload stream
    /// `stream`) under `root/seed-NAME`, makes its torrent announcing to
    /// `tracker`, and starts a seeder of it.
    fn start(root: &Path, tracker: &Tracker, name: &str, len: usize, stream: u64) -> Shared {
        let seed = root.join(format!("seed-{name}"));
        write_tree(&seed, &[(name, len, stream)]);
        let options = pollen::create::CreateOptions {
            trackers: vec![tracker.http.clone()],
            piece_len: Some(PIECE_LEN),
            ..Default::default()
        };
        let bytes = pollen::create::create_torrent(&seed.join(name), &options).unwrap();
        let torrent = root.join(format!("{name}.torrent"));
        std::fs::write(&torrent, &bytes).unwrap();
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        let seeder = Pollen::tracked_seeder(&[&torrent], &seed, &[]);
        Shared {
            seed,
            torrent,
            meta,
            name: name.to_string(),
            _seeder: seeder,
        }
    }

    fn hash(&self) -> String {
        self.meta.info_hash.to_hex()
    }

    /// `magnet:?xt=urn:btih:HEX&dn=NAME&tr=TRACKER`.
    fn magnet(&self, tracker: &Tracker) -> String {
        format!(
            "magnet:?xt=urn:btih:{}&dn={}&tr={}",
            self.hash(),
            percent_encode(&self.name),
            percent_encode(&tracker.http)
        )
    }

    /// Asserts the daemon's copy under `dest` is the seeder's, byte for byte.
    fn assert_downloaded(&self, dest: &Path) {
        let want = std::fs::read(self.seed.join(&self.name)).unwrap();
        let got = std::fs::read(dest.join(&self.name))
            .unwrap_or_else(|e| panic!("{}: {e}", dest.join(&self.name).display()));
        assert!(got == want, "{}: the download differs", self.name);
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A headless Chromium, or a panic saying why not (the harness has checked
/// the tools, so even `Skipped` is a failure here).
fn browser() -> Browser {
    match Browser::start() {
        Ok(browser) => browser,
        Err(BrowserError::Skipped(why)) => panic!("no browser although checked: {why}"),
        Err(e) => panic!("{e}"),
    }
}

/// Records uncaught script errors in `window.__errors` from now on (for
/// the failure messages).
fn catch_errors(browser: &Browser) {
    browser
        .execute(
            "window.__errors = window.__errors || [];
             window.addEventListener('error', (e) => window.__errors.push(String(e.message)));
             window.addEventListener('unhandledrejection',
               (e) => window.__errors.push('rejected: ' + String(e.reason)));",
            json!([]),
        )
        .unwrap();
}

/// The script errors the page has had since [`catch_errors`].
fn errors(browser: &Browser) -> String {
    browser
        .execute("return window.__errors || [];", json!([]))
        .map(|v| v.to_string())
        .unwrap_or_else(|e| e.to_string())
}

/// `target/screenshots/NAME`, its directory made.
fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Waits until the text of `css` satisfies `want`; on time-out panics with
/// what it was, the page's script errors and the daemon's stderr.
fn wait_text(
    browser: &Browser,
    daemon: &Daemon,
    css: &str,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> String {
    browser.wait_text(css, limit, want).unwrap_or_else(|e| {
        panic!(
            "{e}\nscript errors: {}\ndaemon stderr:\n{}",
            errors(browser),
            daemon.process.stderr()
        )
    })
}

fn builtin_page_shows_progress_and_adds_a_magnet() {
    let started = Instant::now();
    let dir = TempDir::new("web-builtin");
    let tracker = Tracker::start(&[]);
    let a = Shared::start(dir.path(), &tracker, "alpha.bin", 300_001, 1601);
    let b = Shared::start(dir.path(), &tracker, "beta.bin", 200_003, 1602);
    let dest = dir.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let daemon = Daemon::start(&dir.path().join("state"), &dest, &[]);
    let mut rpc: Rpc = daemon.client();
    rpc.add_file(&a.torrent, json!({}));

    let browser = browser();
    browser.goto(&format!("http://{}/", daemon.rpc)).unwrap();
    catch_errors(&browser);
    assert_eq!(browser.title().unwrap(), "pollen");

    let row_a = format!("tr[data-hash='{}']", a.hash());
    wait_text(
        &browser,
        &daemon,
        &format!("{row_a} .progress"),
        TRANSFER_LIMIT,
        |t| t.contains("100.0%"),
    );
    wait_text(
        &browser,
        &daemon,
        &format!("{row_a} .state"),
        PAGE_LIMIT,
        |t| t == "Seeding",
    );
    wait_text(
        &browser,
        &daemon,
        &format!("{row_a} .name"),
        PAGE_LIMIT,
        |t| t == a.name,
    );
    a.assert_downloaded(&dest);

    let magnet = browser.find("#magnet").unwrap();
    browser.send_keys(&magnet, &b.magnet(&tracker)).unwrap();
    browser.click(&browser.find("#add").unwrap()).unwrap();
    wait_text(&browser, &daemon, "#message", PAGE_LIMIT, |t| {
        t.starts_with("added")
    });
    // The form empties the input once the daemon has taken the link.
    let value = browser.property(&magnet, "value").unwrap();
    assert_eq!(value, json!(""), "the magnet input after adding");

    let row_b = format!("tr[data-hash='{}']", b.hash());
    browser.wait_for(&row_b, PAGE_LIMIT).unwrap();
    wait_text(
        &browser,
        &daemon,
        &format!("{row_b} .progress"),
        TRANSFER_LIMIT,
        |t| t.contains("100.0%"),
    );
    wait_text(
        &browser,
        &daemon,
        &format!("{row_b} .state"),
        PAGE_LIMIT,
        |t| t == "Seeding",
    );
    // Its name comes with the metadata, from the seeder.
    wait_text(
        &browser,
        &daemon,
        &format!("{row_b} .name"),
        PAGE_LIMIT,
        |t| t == b.name,
    );
    assert_eq!(browser.find_all("#torrents tr").unwrap().len(), 2);
    b.assert_downloaded(&dest);

    let errors = errors(&browser);
    assert_eq!(errors, "[]", "script errors on the page");
    let shot = screenshot_path("builtin-page.png");
    browser.screenshot(&shot).unwrap();
    eprintln!(
        "builtin page: both torrents seeding after {:.1?}; screenshot {}",
        started.elapsed(),
        shot.display()
    );
}

fn transmission_web_ui_shows_the_torrent() {
    let started = Instant::now();
    let dir = TempDir::new("web-transmission");
    let tracker = Tracker::start(&[]);
    let a = Shared::start(dir.path(), &tracker, "alpha.bin", 300_001, 1611);
    let dest = dir.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    // No --web-ui: the daemon's default is Debian's folder when it is there.
    let daemon = Daemon::start(&dir.path().join("state"), &dest, &[]);
    let mut rpc = daemon.client();
    rpc.add_file(&a.torrent, json!({}));
    // Complete before the page opens, so what it shows is the seeding row.
    let done = common::process::wait_for(TRANSFER_LIMIT, || {
        rpc.torrents(&["percentDone"])
            .first()
            .is_some_and(|t| t["percentDone"].as_f64() == Some(1.0))
    });
    assert!(done, "not complete: {}", daemon.process.stderr());
    a.assert_downloaded(&dest);

    let browser = browser();
    browser
        .goto(&format!("http://{}/transmission/web/", daemon.rpc))
        .unwrap();
    catch_errors(&browser);
    assert_eq!(browser.title().unwrap(), "Transmission Web Interface");

    let name = wait_text(
        &browser,
        &daemon,
        "#torrent_list .torrent .torrent_name",
        PAGE_LIMIT,
        |t| !t.is_empty(),
    );
    assert_eq!(name, a.name);
    // "Seeding to 0 of 1 peers - ▲0 kB/s"
    let peers = wait_text(
        &browser,
        &daemon,
        "#torrent_list .torrent .torrent_peer_details",
        PAGE_LIMIT,
        |t| t.starts_with("Seeding"),
    );
    // A complete torrent: "293.0 KiB, uploaded 0 bytes (Ratio 0.00)", no
    // "x of y (z%)" as while downloading.
    let progress = wait_text(
        &browser,
        &daemon,
        "#torrent_list .torrent .torrent_progress_details",
        PAGE_LIMIT,
        |t| t.contains("uploaded") && !t.contains(" of "),
    );
    assert_eq!(browser.find_all("#torrent_list .torrent").unwrap().len(), 1);
    let errors = errors(&browser);
    assert_eq!(errors, "[]", "script errors in the web UI");
    let shot = screenshot_path("transmission-web-ui.png");
    browser.screenshot(&shot).unwrap();

    // The inspector asks for the fields the list does not (torrent-get of
    // the "extra" fields, files, trackers): select the row and open it.
    browser
        .click(
            &browser
                .find("#torrent_list .torrent .torrent_name")
                .unwrap(),
        )
        .unwrap();
    browser
        .click(&browser.find("#toolbar-inspector").unwrap())
        .unwrap();
    let hash = a.hash();
    wait_text(&browser, &daemon, "#inspector-info-hash", PAGE_LIMIT, |t| {
        t == hash
    });
    let state = wait_text(
        &browser,
        &daemon,
        "#inspector-info-state",
        PAGE_LIMIT,
        |t| t == "Seeding",
    );
    let have = wait_text(&browser, &daemon, "#inspector-info-have", PAGE_LIMIT, |t| {
        t.contains("100%")
    });
    browser
        .click(&browser.find("#inspector-tab-files").unwrap())
        .unwrap();
    wait_text(
        &browser,
        &daemon,
        "#inspector_file_list .inspector_torrent_file_list_entry_name",
        PAGE_LIMIT,
        |t| t == a.name,
    );
    browser
        .click(&browser.find("#inspector-tab-trackers").unwrap())
        .unwrap();
    // "127.0.0.1:PORT", "Last Announce: ...", "Next announce in 45 seconds"
    // (nextAnnounceTime, from the daemon's schedule).
    let trackers = wait_text(
        &browser,
        &daemon,
        "#inspector_trackers_list",
        PAGE_LIMIT,
        |t| {
            t.contains("127.0.0.1") && t.contains("Last Announce") && t.contains("Next announce in")
        },
    );
    let errors = self::errors(&browser);
    assert_eq!(errors, "[]", "script errors in the web UI's inspector");
    let inspector = screenshot_path("transmission-web-ui-inspector.png");
    browser.screenshot(&inspector).unwrap();
    eprintln!(
        "transmission web UI: {name:?} {peers:?} {progress:?}; inspector: {state:?} {have:?} \
         {trackers:?}; after {:.1?}; screenshots {} {}",
        started.elapsed(),
        shot.display(),
        inspector.display()
    );
}
