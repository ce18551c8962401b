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
//!
//! Cost: sanitizing borrows every element that needs no change, and
//! [`make_unique`] spends time linear in the bytes of the paths (each
//! prefix is hashed by extending its parent's hash, never rebuilt). When
//! nothing collides, which [`already_unique`] checks first, it needs a word
//! per file; otherwise [`PathDeduper`] needs a few words per file and per
//! distinct directory.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher};

/// Longest file-name element in bytes (most file systems allow 255; the
/// margin leaves room for a `.N` duplicate suffix and a `.part` suffix).
pub const MAX_ELEMENT_BYTES: usize = 240;

/// Most `.N` suffixes tried for one duplicate path before the torrent is
/// refused (libtorrent's cap on duplicate names).
pub const MAX_DUPLICATES: usize = 500;

/// Longest extension kept when an element is cut to length.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// Sanitizes one path element. Returns `None` for `.` and `..`, which are
/// dropped from the path. An element that needs no change is borrowed.
pub fn sanitize_element(raw: &[u8]) -> Option<Cow<'_, str>> {
    if let Ok(text) = std::str::from_utf8(raw) {
        if text.len() <= MAX_ELEMENT_BYTES && !text.chars().any(needs_change) {
            return match text {
                "." | ".." => None,
                "" => Some(Cow::Borrowed("_")),
                _ => Some(Cow::Borrowed(text)),
            };
        }
    }
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
        "" => Some(Cow::Borrowed("_")),
        _ => Some(Cow::Owned(cut_to_length(out, MAX_ELEMENT_BYTES))),
    }
}

/// Whether `c` is removed or replaced by [`sanitize_element`].
fn needs_change(c: char) -> bool {
    c == '/' || c == '\\' || is_invisible(c) || c.is_control() || c == char::REPLACEMENT_CHARACTER
}

/// Sanitizes a torrent's `name` (the file name of a single-file torrent, the
/// top directory of a multi-file one). A name that sanitizes to nothing
/// visible becomes `fallback` (the caller passes the info-hash in hex).
pub fn sanitize_name(raw: &[u8], fallback: &str) -> String {
    match sanitize_element(raw) {
        Some(name) if name != "_" || raw == b"_" => name.into_owned(),
        _ => fallback.to_string(),
    }
}

/// Sanitizes a list of path elements into a relative path (the elements that
/// survive). An empty result means nothing survived.
pub fn sanitize_elements<'a, I>(raw: I) -> Vec<Cow<'a, str>>
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

/// Makes `paths` (sanitized, `/`-joined, relative, none empty) unique in
/// place: a path already taken by an earlier file, or by a directory an
/// earlier file needs, gets a `.N` suffix before its extension, and so
/// does a directory element that an earlier file already is (libtorrent's
/// rule). Returns the indices of the renamed paths, or the index of the
/// first path whose [`MAX_DUPLICATES`] suffixes were all taken.
///
/// Most torrents have nothing to rename: [`already_unique`] proves it with
/// one lookup per path element in a table of one entry per file. Only when
/// something collides does [`PathDeduper`] rename, file by file.
pub fn make_unique(paths: &mut [String]) -> Result<Vec<usize>, usize> {
    if already_unique(paths) {
        return Ok(Vec::new());
    }
    let mut deduper = PathDeduper::new();
    let mut renamed = Vec::new();
    for (index, path) in paths.iter_mut().enumerate() {
        match deduper.claim(path) {
            None => return Err(index),
            Some(Claim::Kept) => {}
            Some(Claim::Renamed(new)) => {
                *path = new;
                renamed.push(index);
            }
        }
    }
    Ok(renamed)
}

/// Whether no path equals another or is a directory of another. Paths are
/// compared by hash, so two different paths with one hash (about one
/// chance in 2^64 per pair) answer `false` needlessly; equal paths always
/// hash alike, so a `true` is never wrong.
pub fn already_unique(paths: &[String]) -> bool {
    let mut whole = HashSet::with_capacity(paths.len());
    // A directory can only be a file's path if it is as long: most
    // prefixes are ruled out by their length alone.
    let mut lengths = Vec::new();
    for path in paths {
        let mut state = DefaultHasher::new();
        state.write(path.as_bytes());
        if !whole.insert(state.finish()) {
            return false;
        }
        if lengths.len() <= path.len() {
            lengths.resize(path.len() + 1, false);
        }
        if let Some(seen) = lengths.get_mut(path.len()) {
            *seen = true;
        }
    }
    !paths.iter().any(|path| {
        let Some((dirs, _)) = path.rsplit_once('/') else {
            return false;
        };
        let mut state = DefaultHasher::new();
        let mut len = 0;
        dirs.split('/').any(|element| {
            if len > 0 {
                state.write(b"/");
                len += 1;
            }
            state.write(element.as_bytes());
            len += element.len();
            lengths.get(len).copied().unwrap_or(false) && whole.contains(&state.finish())
        })
    })
}

/// What [`PathDeduper::claim`] made of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The path was free as it is.
    Kept,
    /// An element had to be renamed; this is the unique path.
    Renamed(String),
}

/// Hands out unique file paths, one file at a time, in torrent order (the
/// renaming half of [`make_unique`]).
///
/// Paths are known by a 64-bit hash of their `/`-joined bytes (SipHash with
/// fixed keys, so every run names files the same). Equal paths always hash
/// alike, so two files can never be given one path; two different paths
/// with one hash would only cost an unneeded rename. Each prefix's hash
/// extends its parent's, so a path of `n` bytes costs O(n) however deep it
/// is, and the next suffix to try is kept per name, so a name with many
/// duplicates costs O(1) each. Memory: a few words per file and per
/// distinct directory.
#[derive(Debug, Default)]
pub struct PathDeduper {
    /// Every path handed out.
    files: HashSet<u64>,
    /// Every directory the handed-out paths need.
    dirs: HashSet<u64>,
    /// Per file path that was taken: the next suffix to try for it.
    next_file_suffix: HashMap<u64, usize>,
    /// Per directory path that was a file: the suffix it was renamed to.
    dir_suffix: HashMap<u64, usize>,
    /// The directories of the last path handed out, outermost first:
    /// files come grouped by directory, and a directory already handed out
    /// needs no second look.
    last_dirs: Vec<u64>,
}

impl PathDeduper {
    /// An empty set of taken paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims a unique path for `path` (sanitized, `/`-joined, no empty
    /// element). Returns `None` when [`MAX_DUPLICATES`] suffixes are all
    /// taken.
    pub fn claim(&mut self, path: &str) -> Option<Claim> {
        let (dirs, last) = match path.rsplit_once('/') {
            Some((dirs, last)) => (Some(dirs), last),
            None => (None, path),
        };
        // Room for a few `.N` suffixes without growing.
        let mut out = String::with_capacity(path.len() + 16);
        let mut state = DefaultHasher::new();
        let mut dir_hashes = Vec::new();
        let mut renamed = false;
        for element in dirs.into_iter().flat_map(|d| d.split('/')) {
            let first = out.is_empty();
            let depth = dir_hashes.len();
            let kept = extend(&state, first, element);
            if !renamed && self.last_dirs.get(depth) == Some(&kept.finish()) {
                // The same directory as the last path's: known to be free.
                push_element(&mut out, element);
                state = kept;
                dir_hashes.push(state.finish());
                continue;
            }
            state = match self.dir_name(&state, first, element) {
                DirName::Kept => {
                    push_element(&mut out, element);
                    extend(&state, first, element)
                }
                DirName::Renamed(name, next) => {
                    renamed = true;
                    push_element(&mut out, &name);
                    next
                }
                DirName::Exhausted => return None,
            };
            dir_hashes.push(state.finish());
        }
        let (name, hash) = self.free_file_name(&state, out.is_empty(), last)?;
        renamed |= matches!(name, Cow::Owned(_));
        self.files.insert(hash);
        let shared = dir_hashes
            .iter()
            .zip(&self.last_dirs)
            .take_while(|(a, b)| a == b)
            .count();
        self.dirs.extend(dir_hashes.iter().skip(shared));
        self.last_dirs = dir_hashes;
        if !renamed {
            return Some(Claim::Kept);
        }
        push_element(&mut out, &name);
        Some(Claim::Renamed(out))
    }

    /// What a directory element becomes: itself, unless a file already has
    /// its path; then the first `element.N` that is not a file.
    fn dir_name(&mut self, parent: &DefaultHasher, first: bool, element: &str) -> DirName {
        let base = extend(parent, first, element).finish();
        if !self.files.contains(&base) {
            return DirName::Kept;
        }
        let start = self.dir_suffix.get(&base).copied().unwrap_or(1);
        for n in start..=MAX_DUPLICATES {
            let candidate = with_suffix(element, n);
            let state = extend(parent, first, &candidate);
            if !self.files.contains(&state.finish()) {
                self.dir_suffix.insert(base, n);
                return DirName::Renamed(candidate, state);
            }
        }
        DirName::Exhausted
    }

    /// The file name itself if free, else the first free `name.N`, with the
    /// full path's hash. `None` when every suffix is taken.
    fn free_file_name<'e>(
        &mut self,
        parent: &DefaultHasher,
        first: bool,
        name: &'e str,
    ) -> Option<(Cow<'e, str>, u64)> {
        let base = extend(parent, first, name).finish();
        if self.is_free(base) {
            return Some((Cow::Borrowed(name), base));
        }
        let start = self.next_file_suffix.get(&base).copied().unwrap_or(1);
        for n in start..=MAX_DUPLICATES {
            let candidate = with_suffix(name, n);
            let hash = extend(parent, first, &candidate).finish();
            if self.is_free(hash) {
                self.next_file_suffix.insert(base, n + 1);
                return Some((Cow::Owned(candidate), hash));
            }
        }
        self.next_file_suffix.insert(base, MAX_DUPLICATES + 1);
        None
    }

    fn is_free(&self, hash: u64) -> bool {
        !self.files.contains(&hash) && !self.dirs.contains(&hash)
    }
}

/// What [`PathDeduper::dir_name`] decided for one directory element.
enum DirName {
    /// The element is free to be (or already is) a directory.
    Kept,
    /// A file has that path: use this name, whose hash state is given.
    Renamed(String, DefaultHasher),
    /// Every suffix up to [`MAX_DUPLICATES`] is a file too.
    Exhausted,
}

/// The hash state of `parent` joined with `element` (`/` between them).
fn extend(parent: &DefaultHasher, first: bool, element: &str) -> DefaultHasher {
    let mut state = parent.clone();
    if !first {
        state.write(b"/");
    }
    state.write(element.as_bytes());
    state
}

fn push_element(path: &mut String, element: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(element);
}

/// `name.ext` -> `name.N.ext`; `name` -> `name.N`.
fn with_suffix(name: &str, n: usize) -> String {
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    let digits = n.to_string();
    let mut out = String::with_capacity(name.len() + 1 + digits.len());
    out.push_str(stem);
    out.push('.');
    out.push_str(&digits);
    out.push_str(extension);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path, PathBuf};

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
            let path: PathBuf = sanitize_elements(raw.iter().copied())
                .iter()
                .map(|e| &**e)
                .collect();
            assert!(path.is_relative(), "{path:?}");
            assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            assert!(!Path::new("/dest").join(&path).starts_with("/etc"));
        }
        let path: Vec<Cow<'_, str>> = sanitize_elements([&b".."[..], b"..", b"etc", b"passwd"]);
        assert_eq!(path, vec!["etc", "passwd"]);
    }

    /// The path `dedup` gives `path`.
    fn claim(dedup: &mut PathDeduper, path: &str) -> String {
        match dedup.claim(path).unwrap() {
            Claim::Kept => path.to_string(),
            Claim::Renamed(new) => new,
        }
    }

    #[test]
    fn duplicates_get_numbered_before_the_extension() {
        let mut dedup = PathDeduper::new();
        assert_eq!(claim(&mut dedup, "a/f.txt"), "a/f.txt");
        assert_eq!(claim(&mut dedup, "a/f.txt"), "a/f.1.txt");
        assert_eq!(claim(&mut dedup, "a/f.txt"), "a/f.2.txt");
        // A file where a directory already is.
        assert_eq!(claim(&mut dedup, "a"), "a.1");
        // A directory where a file already is.
        assert_eq!(claim(&mut dedup, "top"), "top");
        assert_eq!(claim(&mut dedup, "top/inner"), "top.1/inner");
        assert_eq!(dedup.claim("x/y"), Some(Claim::Kept));
    }

    #[test]
    fn too_many_duplicates_is_refused() {
        let mut dedup = PathDeduper::new();
        for _ in 0..=MAX_DUPLICATES {
            assert!(dedup.claim("same").is_some());
        }
        assert_eq!(dedup.claim("same"), None);
        assert_eq!(dedup.claim("same"), None);
        // Another name is unaffected.
        assert_eq!(dedup.claim("other"), Some(Claim::Kept));
    }

    #[test]
    fn clean_elements_are_borrowed_not_copied() {
        assert!(matches!(
            sanitize_element(b"plain.txt"),
            Some(Cow::Borrowed("plain.txt"))
        ));
        assert!(matches!(sanitize_element(b"a/b"), Some(Cow::Owned(_))));
        assert!(matches!(sanitize_element(b""), Some(Cow::Borrowed("_"))));
        assert_eq!(
            sanitize_element("\u{FFFD}".as_bytes()).as_deref(),
            Some("_")
        );
    }

    #[test]
    fn suffixes_already_taken_by_real_names_are_skipped() {
        let mut dedup = PathDeduper::new();
        assert_eq!(claim(&mut dedup, "t/f.1.txt"), "t/f.1.txt");
        assert_eq!(claim(&mut dedup, "t/f.txt"), "t/f.txt");
        assert_eq!(claim(&mut dedup, "t/f.txt"), "t/f.2.txt");
        // A directory named like the next suffix is skipped too.
        assert_eq!(claim(&mut dedup, "t/f.3.txt/in"), "t/f.3.txt/in");
        assert_eq!(claim(&mut dedup, "t/f.txt"), "t/f.4.txt");
        // A directory element that is a file: renamed to the first suffix
        // that is not a file (here the existing directory), then reused.
        assert_eq!(claim(&mut dedup, "t/f.txt/a"), "t/f.3.txt/a");
        assert_eq!(claim(&mut dedup, "t/f.txt/b"), "t/f.3.txt/b");
    }

    #[test]
    fn prefix_hashes_extend_whole_path_hashes() {
        // already_unique hashes whole paths in one write and prefixes one
        // element at a time; the two must agree.
        let mut whole = DefaultHasher::new();
        whole.write(b"top/dir/file");
        let mut parts = DefaultHasher::new();
        for part in ["top", "/", "dir", "/", "file"] {
            parts.write(part.as_bytes());
        }
        assert_eq!(whole.finish(), parts.finish());
        let mut state = DefaultHasher::new();
        for element in ["top", "dir", "file"] {
            state = extend(&state, element == "top", element);
        }
        assert_eq!(state.finish(), whole.finish());
    }

    #[test]
    fn already_unique_finds_duplicates_and_file_directory_clashes() {
        let paths = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert!(already_unique(&paths(&["t/a", "t/b/c", "t/b/d", "t/bb"])));
        assert!(!already_unique(&paths(&["t/a", "t/b", "t/a"])));
        assert!(!already_unique(&paths(&["t/a/b", "t/a"])));
        assert!(!already_unique(&paths(&["t/a", "t/a/b"])));
        assert!(!already_unique(&paths(&["x", "x/y/z"])));
    }

    #[test]
    fn make_unique_renames_only_what_collides() {
        let mut list: Vec<String> = ["t/a", "t/b", "t/a", "t/a/x", "t/c"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(make_unique(&mut list), Ok(vec![2, 3]));
        assert_eq!(list, vec!["t/a", "t/b", "t/a.1", "t/a.2/x", "t/c"]);
        let mut clean = vec!["t/a".to_string(), "t/b/c".to_string()];
        assert_eq!(make_unique(&mut clean), Ok(vec![]));
        let mut too_many = vec!["t/same".to_string(); MAX_DUPLICATES + 2];
        assert_eq!(make_unique(&mut too_many), Err(MAX_DUPLICATES + 1));
    }

    /// The shapes that used to cost seconds (every prefix rebuilt, up to 500
    /// suffixes tried per name), small enough for a unit test: many names
    /// each duplicated up to the limit, and many deep paths. The results
    /// must be unique and follow the `.N` rule; `make bench` times the
    /// full-size versions.
    #[test]
    fn worst_case_shapes_give_unique_paths() {
        let mut paths = Vec::new();
        for name in ["a", "b.txt", "c"] {
            paths.extend(std::iter::repeat_n(
                format!("dup/{name}"),
                MAX_DUPLICATES + 1,
            ));
        }
        let renamed = make_unique(&mut paths).unwrap();
        assert_eq!(renamed.len(), 3 * MAX_DUPLICATES);
        for (i, name) in ["a", "b.txt", "c"].iter().enumerate() {
            for n in 0..=MAX_DUPLICATES {
                let expected = match n {
                    0 => format!("dup/{name}"),
                    n => format!("dup/{}", with_suffix(name, n)),
                };
                assert_eq!(paths[i * (MAX_DUPLICATES + 1) + n], expected);
            }
        }
        let deep = |i: usize| format!("deep/{i:03}/{}f", "a/".repeat(98));
        let mut paths: Vec<String> = (0..200).map(deep).collect();
        assert!(already_unique(&paths));
        assert_eq!(make_unique(&mut paths), Ok(vec![]));
        assert!(paths.iter().all(|p| p.split('/').count() == 101));
        // The same deep path again, and a file where one of its directories is.
        paths.push(deep(0));
        paths.push(format!("deep/000/{}", ["a"; 98].join("/")));
        let renamed = make_unique(&mut paths).unwrap();
        assert_eq!(renamed, vec![200, 201]);
        assert_eq!(paths[200], format!("deep/000/{}f.1", "a/".repeat(98)));
        assert!(paths[201].ends_with("/a/a.1"), "{}", paths[201]);
        let unique: HashSet<&String> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len());
    }
}
