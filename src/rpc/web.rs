//! The web side of the RPC server: pollen's own status page (one HTML file
//! with its script and style inline, served at `/`), and the mapping of
//! `/transmission/web/...` paths to files under a web UI folder (Debian's
//! `/usr/share/transmission/web`, or `--web-ui DIR`).
//!
//! Layer 0: pure. [`web_ui_file`] only builds a path; it refuses `..`,
//! absolute parts, backslashes, NUL and percent-escapes of them, so nothing
//! outside the folder can be named.
//!
//! How a path is read (RFC 3986 section 2 and 3.3): the query (`?...`) and
//! fragment are dropped; the rest is split on `/` *first*, then each segment
//! is percent-decoded once. So `%2F` is part of a name, not a separator (and
//! is refused, since no file name holds a `/`), and `%2e%2e` is `..` (also
//! refused). A double-encoded `%252e` decodes once to the literal three
//! characters `%2e`: one ordinary segment by that name, never decoded again,
//! so it can only name a file or folder called `%2e` inside the root.

use std::path::{Component, Path, PathBuf};

/// The status page: one HTML file, its script and style inline, no outside
/// resources. Every 2 s it asks [`super::RPC_PATH`] for `torrent-get` and
/// `session-stats` and shows each torrent's name, size, state, progress,
/// rates, peers and ETA, with Pause/Resume, Remove and Remove + delete data;
/// a form adds a magnet link (`filename`) or uploaded `.torrent` files
/// (`metainfo`). It links to [`super::WEB_UI_PATH`] when that answers.
///
/// Hooks for browser tests: each torrent is a `<tr data-id="ID"
/// data-hash="HASH">` in `#torrents`, with cells `.name`, `.state` (e.g.
/// `Downloading`, `Fetching metadata`, `Checking 50.0%`), `.progress` (text
/// `42.0%`, rounded down) and buttons `.toggle`, `.remove`, `.delete` (these
/// two ask `confirm()`). The form has `#magnet`, `#add` and `#file`; RPC
/// results (`added: NAME`, `duplicate torrent: NAME`, errors) go to
/// `#message`; the session line is `#session`, the web UI link `#webui`.
pub const INDEX_HTML: &str = include_str!("web/index.html");

/// The file a folder path (empty, or ending in `/`) stands for.
const INDEX_FILE: &str = "index.html";

/// Longest web UI path accepted, in bytes before decoding: Transmission's
/// web UI names its files in a few dozen bytes; anything far longer is not a
/// request for one of them, and is refused before it reaches the file system.
pub const WEB_PATH_MAX_BYTES: usize = 1024;

/// The file under `root` that `url_path` (the part after
/// [`super::WEB_UI_PATH`], undecoded) names, or `None` when it would leave
/// `root` or is not a plain relative path. An empty path is `index.html`.
///
/// Refused: an empty segment (`a//b`, a leading `/`) other than a trailing
/// one, `.` and `..`, a segment holding `/`, `\`, `:` or NUL once decoded, an
/// invalid escape (`%4`, `%zz`), and a decoded name that is not UTF-8.
pub fn web_ui_file(root: &Path, url_path: &str) -> Option<PathBuf> {
    if url_path.len() > WEB_PATH_MAX_BYTES {
        return None;
    }
    let path = url_path.split(['?', '#']).next().unwrap_or_default();
    let mut file = root.to_path_buf();
    let mut segments = path.split('/').peekable();
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        if raw.is_empty() && last {
            file.push(INDEX_FILE);
            break;
        }
        file.push(plain_segment(raw)?);
    }
    Some(file)
}

/// One path segment, percent-decoded, if it names an ordinary file or
/// folder: not empty, `.` or `..`, and free of separators, `:` (a Windows
/// drive) and NUL.
fn plain_segment(raw: &str) -> Option<String> {
    let name = String::from_utf8(percent_decode(raw)?).ok()?;
    if name.is_empty() || name.contains(['/', '\\', ':', '\0']) {
        return None;
    }
    let mut parts = Path::new(&name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Some(name),
        _ => None,
    }
}

/// `text` with each `%XX` replaced by its byte; `None` for a `%` not
/// followed by two hex digits. `+` stays a `+` (it means a space only in
/// form bodies, not in paths).
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_digit(bytes.next()?)?;
            let low = hex_digit(bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(byte);
        }
    }
    Some(out)
}

/// The value of one hex digit, either case.
fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The `Content-Type` for a file, from its extension (any case); text types
/// say UTF-8; unknown extensions are `application/octet-stream`.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from("/usr/share/transmission/web")
    }

    fn file(url_path: &str) -> Option<PathBuf> {
        web_ui_file(&root(), url_path)
    }

    #[test]
    fn empty_path_is_the_index() {
        assert_eq!(file(""), Some(root().join("index.html")));
    }

    #[test]
    fn folder_path_is_its_index() {
        assert_eq!(file("images/"), Some(root().join("images/index.html")));
    }

    #[test]
    fn plain_files_are_joined_under_the_root() {
        assert_eq!(
            file("transmission-app.js"),
            Some(root().join("transmission-app.js"))
        );
        assert_eq!(
            file("images/logo.png"),
            Some(root().join("images").join("logo.png"))
        );
    }

    #[test]
    fn escapes_are_decoded_once() {
        assert_eq!(file("my%20file.css"), Some(root().join("my file.css")));
        assert_eq!(file("a+b.js"), Some(root().join("a+b.js")));
        assert_eq!(file("%C3%A9.txt"), Some(root().join("é.txt")));
    }

    #[test]
    fn query_and_fragment_are_dropped() {
        assert_eq!(file("app.js?v=4.0"), Some(root().join("app.js")));
        assert_eq!(file("?x=../.."), Some(root().join("index.html")));
        assert_eq!(file("index.html#top"), Some(root().join("index.html")));
    }

    #[test]
    fn dot_dot_is_refused_plain_or_escaped() {
        for path in [
            "..",
            "../",
            "../etc/passwd",
            "images/../../etc/passwd",
            "%2e%2e/etc/passwd",
            "%2E%2E/etc/passwd",
            ".%2e/x",
            "%2e./x",
            "images/%2e%2e",
        ] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn dot_segments_are_refused() {
        for path in [".", "./index.html", "images/./logo.png", "%2e/index.html"] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn encoded_slash_is_refused_not_a_separator() {
        for path in [
            "%2e%2e%2fetc%2fpasswd",
            "..%2Fetc",
            "a%2Fb",
            "%2Fetc/passwd",
        ] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn absolute_and_empty_segments_are_refused() {
        for path in ["/etc/passwd", "//etc/passwd", "a//b", "images//"] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn backslash_colon_and_nul_are_refused() {
        for path in [
            "..\\etc\\passwd",
            "a\\b",
            "%5c..%5cetc",
            "C:/Windows",
            "c%3a%5cwindows",
            "index.html%00.png",
            "a\0b",
        ] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn invalid_escapes_and_non_utf8_are_refused() {
        for path in ["%", "%2", "%zz", "a%g0", "%ff.txt", "%c3"] {
            assert_eq!(file(path), None, "{path}");
        }
    }

    #[test]
    fn double_encoding_stays_a_literal_name() {
        // `%252e%252e` decodes once to the name `%2e%2e`: an ordinary
        // segment inside the root, not `..`.
        assert_eq!(
            file("%252e%252e/passwd"),
            Some(root().join("%2e%2e").join("passwd"))
        );
    }

    #[test]
    fn overlong_paths_are_refused() {
        let long = "a".repeat(WEB_PATH_MAX_BYTES + 1);
        assert_eq!(file(&long), None);
        let fits = "a".repeat(WEB_PATH_MAX_BYTES);
        assert_eq!(file(&fits), Some(root().join(&fits)));
    }

    #[test]
    fn every_accepted_path_stays_under_the_root() {
        let pieces = ["", ".", "..", "%2e", "%2f", "%5c", "/", "a", "%00", "%25"];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let path = format!("{a}{b}/{c}");
                    if let Some(found) = file(&path) {
                        let rest = found.strip_prefix(root()).expect("under the root");
                        assert!(
                            rest.components()
                                .all(|part| matches!(part, Component::Normal(_))),
                            "{path} -> {}",
                            found.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn content_type_follows_the_extension() {
        for (name, want) in [
            ("index.html", "text/html; charset=utf-8"),
            ("INDEX.HTM", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("logo.png", "image/png"),
            ("spin.gif", "image/gif"),
            ("photo.jpg", "image/jpeg"),
            ("photo.JPEG", "image/jpeg"),
            ("icon.svg", "image/svg+xml"),
            ("favicon.ico", "image/x-icon"),
            ("manifest.json", "application/json"),
            ("font.woff", "font/woff"),
            ("font.woff2", "font/woff2"),
            ("LICENSE.txt", "text/plain; charset=utf-8"),
        ] {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn content_type_defaults_to_octet_stream() {
        for name in ["archive.tar.gz", "README", "noext.", ".hidden", "a.exe"] {
            assert_eq!(
                content_type(Path::new(name)),
                "application/octet-stream",
                "{name}"
            );
        }
    }

    #[test]
    fn status_page_is_small_and_self_contained() {
        assert!(INDEX_HTML.len() < 10_000, "{} bytes", INDEX_HTML.len());
        assert!(INDEX_HTML.starts_with("<!doctype html>"));
        for outside in ["http://", "https://", "//cdn", "@import"] {
            assert!(!INDEX_HTML.contains(outside), "{outside}");
        }
    }
}
