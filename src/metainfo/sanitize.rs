//! Path sanitizing: turning the path elements a torrent names into a relative
//! path that can only land inside the destination directory.
//!
//! Layer 0: pure. Follows libtorrent's sanitizer as summarised in
//! `shared/PROTOCOL.md`:
//! - `.` and `..` elements are dropped, so no path climbs out;
//! - `/` and `\` inside an element are removed, so an element is one name and
//!   an absolute path becomes relative;
//! - control characters and invalid UTF-8 become `_`;
//! - bidirectional and zero-width characters are stripped (they disguise
//!   `.exe` as `.avi`);
//! - an element that ends up empty becomes `_`;
//! - an element longer than [`MAX_ELEMENT_BYTES`] is cut, keeping its extension;
//! - a path that collides with an earlier file (or with a directory another
//!   file needs) gets `.1`, `.2`, ... before its extension.
//!
//! The invariant: every path this module returns is relative and made only of
//! normal components, so `dest.join(path)` stays under `dest`.

use std::collections::HashSet;
use std::path::PathBuf;

/// Longest file-name element in bytes (most file systems allow 255; the
/// margin leaves room for a `.N` duplicate suffix and a `.part` suffix).
pub const MAX_ELEMENT_BYTES: usize = 240;

/// Most `.N` suffixes tried for one duplicate path before the torrent is
/// refused (libtorrent's cap on duplicate names).
pub const MAX_DUPLICATES: usize = 500;

/// Longest extension kept when an element is cut to length.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// Sanitizes one path element. Returns `None` for `.` and `..`, which are
/// dropped from the path.
pub fn sanitize_element(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '/' | '\\' => {}
            c if is_invisible(c) => {}
            c if c.is_control() || c == char::REPLACEMENT_CHARACTER => out.push('_'),
            c => out.push(c),
        }
    }
    match out.as_str() {
        "." | ".." => None,
        "" => Some("_".to_string()),
        _ => Some(cut_to_length(out, MAX_ELEMENT_BYTES)),
    }
}

/// Sanitizes a torrent's `name` (the file name of a single-file torrent, the
/// top directory of a multi-file one). A name that sanitizes to nothing
/// visible becomes `fallback` (the caller passes the info-hash in hex).
pub fn sanitize_name(raw: &[u8], fallback: &str) -> String {
    match sanitize_element(raw) {
        Some(name) if name != "_" || raw == b"_" => name,
        _ => fallback.to_string(),
    }
}

/// Sanitizes a list of path elements into a relative path (the elements that
/// survive). An empty result means nothing survived.
pub fn sanitize_elements<'a, I>(raw: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    raw.into_iter().filter_map(sanitize_element).collect()
}

/// Bidirectional controls and zero-width characters: invisible, and able to
/// make `evil\u{202E}iva.exe` display as `evilexe.avi`.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                   // arabic letter mark
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{FEFF}' // zero-width no-break space
    )
}

/// Cuts `name` to at most `max` bytes at a character boundary, keeping a
/// short extension (`very-long-name.mkv` -> `very-lo.mkv`).
fn cut_to_length(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let extension = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_KEPT_EXTENSION_BYTES => &name[dot..],
        _ => "",
    };
    let mut stem_len = max - extension.len();
    while !name.is_char_boundary(stem_len) {
        stem_len -= 1;
    }
    format!("{}{}", &name[..stem_len], extension)
}

/// Hands out unique file paths: a path already taken by a file, or by a
/// directory another file needs, or whose parent is already a file, gets a
/// `.N` suffix before its extension.
#[derive(Debug, Default)]
pub struct PathDeduper {
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

impl PathDeduper {
    /// An empty set of taken paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims a unique path for `elements` (already sanitized, non-empty).
    /// Returns `None` when [`MAX_DUPLICATES`] suffixes are all taken.
    pub fn claim(&mut self, mut elements: Vec<String>) -> Option<PathBuf> {
        // A directory on the way that is already a file: rename that element.
        for depth in 1..elements.len() {
            let prefix: PathBuf = elements.iter().take(depth).collect();
            if self.files.contains(&prefix) {
                let parent: PathBuf = elements.iter().take(depth - 1).collect();
                let original = elements.get(depth - 1)?.clone();
                let renamed = (1..=MAX_DUPLICATES).find_map(|n| {
                    let candidate = with_suffix(&original, n);
                    let path = parent.join(&candidate);
                    (!self.files.contains(&path)).then_some(candidate)
                })?;
                *elements.get_mut(depth - 1)? = renamed;
            }
        }
        let parent: PathBuf = elements
            .iter()
            .take(elements.len().saturating_sub(1))
            .collect();
        let name = elements.last()?.clone();
        let path = (0..=MAX_DUPLICATES).find_map(|n| {
            let candidate = if n == 0 {
                parent.join(&name)
            } else {
                parent.join(with_suffix(&name, n))
            };
            self.is_free(&candidate).then_some(candidate)
        })?;
        for ancestor in path.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                self.dirs.insert(ancestor.to_path_buf());
            }
        }
        self.files.insert(path.clone());
        Some(path)
    }

    fn is_free(&self, path: &PathBuf) -> bool {
        !self.files.contains(path) && !self.dirs.contains(path)
    }
}

/// `name.ext` -> `name.N.ext`; `name` -> `name.N`.
fn with_suffix(name: &str, n: usize) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}.{n}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}.{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    #[test]
    fn element_table() {
        let long = "x".repeat(300);
        let long_cut = format!("{}.mkv", "x".repeat(236));
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"file.txt", Some("file.txt")),
            (b".", None),
            (b"..", None),
            (b"...", Some("...")),
            (b"", Some("_")),
            (b"/", Some("_")),
            (b"a/b", Some("ab")),
            (b"a\\b", Some("ab")),
            (b"/etc", Some("etc")),
            (b"../..", Some("....")),
            (b"/..", None),
            (b"tab\there", Some("tab_here")),
            (b"nul\0byte", Some("nul_byte")),
            (b"del\x7f", Some("del_")),
            (b"bad\xffutf8", Some("bad_utf8")),
            ("evil\u{202E}iva.exe".as_bytes(), Some("eviliva.exe")),
            ("zero\u{200B}width".as_bytes(), Some("zerowidth")),
            ("bom\u{FEFF}".as_bytes(), Some("bom")),
            ("\u{200B}".as_bytes(), Some("_")),
            ("caf\u{e9}".as_bytes(), Some("caf\u{e9}")),
            ("C:".as_bytes(), Some("C:")),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                sanitize_element(raw).as_deref(),
                *expected,
                "element {:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            sanitize_element(long.as_bytes()).unwrap().len(),
            MAX_ELEMENT_BYTES
        );
        let with_ext = format!("{long}.mkv");
        assert_eq!(sanitize_element(with_ext.as_bytes()).unwrap(), long_cut);
    }

    #[test]
    fn names_that_sanitize_to_nothing_fall_back() {
        assert_eq!(sanitize_name(b"movie", "hash"), "movie");
        assert_eq!(sanitize_name(b"..", "hash"), "hash");
        assert_eq!(sanitize_name(b"", "hash"), "hash");
        assert_eq!(sanitize_name(b"/", "hash"), "hash");
        assert_eq!(sanitize_name("\u{202E}".as_bytes(), "hash"), "hash");
        assert_eq!(sanitize_name(b"_", "hash"), "_");
        assert_eq!(sanitize_name(b"../../etc", "hash"), "....etc");
    }

    #[test]
    fn cutting_respects_character_boundaries() {
        let name = "\u{e9}".repeat(200); // 400 bytes of two-byte characters
        let cut = sanitize_element(name.as_bytes()).unwrap();
        assert!(cut.len() <= MAX_ELEMENT_BYTES);
        assert!(cut.chars().all(|c| c == '\u{e9}'));
    }

    #[test]
    fn every_sanitized_path_stays_relative_and_normal() {
        let hostile: &[&[&[u8]]] = &[
            &[b"..", b"..", b"etc", b"passwd"],
            &[b"/", b"etc", b"passwd"],
            &[b"/etc/passwd"],
            &[b"a", b"..", b"..", b"b"],
            &[b"C:\\Windows", b"system32"],
            &[b"", b"x"],
        ];
        for raw in hostile {
            let path: PathBuf = sanitize_elements(raw.iter().copied()).into_iter().collect();
            assert!(path.is_relative(), "{path:?}");
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            assert!(!Path::new("/dest").join(&path).starts_with("/etc"));
        }
        let path: Vec<String> = sanitize_elements([&b".."[..], b"..", b"etc", b"passwd"]);
        assert_eq!(path, vec!["etc", "passwd"]);
    }

    #[test]
    fn duplicates_get_numbered_before_the_extension() {
        let mut dedup = PathDeduper::new();
        let claim = |d: &mut PathDeduper, p: &[&str]| {
            d.claim(p.iter().map(|s| s.to_string()).collect()).unwrap()
        };
        assert_eq!(claim(&mut dedup, &["a", "f.txt"]), PathBuf::from("a/f.txt"));
        assert_eq!(
            claim(&mut dedup, &["a", "f.txt"]),
            PathBuf::from("a/f.1.txt")
        );
        assert_eq!(
            claim(&mut dedup, &["a", "f.txt"]),
            PathBuf::from("a/f.2.txt")
        );
        // A file where a directory already is.
        assert_eq!(claim(&mut dedup, &["a"]), PathBuf::from("a.1"));
        // A directory where a file already is.
        assert_eq!(claim(&mut dedup, &["top"]), PathBuf::from("top"));
        assert_eq!(
            claim(&mut dedup, &["top", "inner"]),
            PathBuf::from("top.1/inner")
        );
    }

    #[test]
    fn too_many_duplicates_is_refused() {
        let mut dedup = PathDeduper::new();
        for _ in 0..=MAX_DUPLICATES {
            assert!(dedup.claim(vec!["same".into()]).is_some());
        }
        assert_eq!(dedup.claim(vec!["same".into()]), None);
    }
}
