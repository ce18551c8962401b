//! The web side of the RPC server: pollen's own status page (one HTML file
//! with its script and style inline, served at `/`), and the mapping of
//! `/transmission/web/...` paths to files under a web UI folder (Debian's
//! `/usr/share/transmission/web`, or `--web-ui DIR`).
//!
//! Layer 0: pure. [`web_ui_file`] only builds a path; it refuses `..`,
//! absolute parts, backslashes, NUL and percent-escapes of them, so nothing
//! outside the folder can be named.

use std::path::{Path, PathBuf};

/// The status page (HTML, inline script and style; talks to the RPC).
pub const INDEX_HTML: &str = include_str!("web/index.html");

/// The file under `root` that `url_path` (the part after
/// [`super::WEB_UI_PATH`], undecoded) names, or `None` when it would leave
/// `root` or is not a plain relative path. An empty path is `index.html`.
pub fn web_ui_file(root: &Path, url_path: &str) -> Option<PathBuf> {
    let _ = (root, url_path);
    None
}

/// The `Content-Type` for a file, from its extension.
pub fn content_type(path: &Path) -> &'static str {
    let _ = path;
    "application/octet-stream"
}
