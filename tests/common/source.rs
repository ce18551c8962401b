//! Reading pollen's own sources in tests: the files under `src/`, their
//! code with comments and literals blanked out, and the calls a function
//! makes, for the tests that keep the docs and the layers true
//! (`design_tour`, `layering`).

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `path` relative to the repository root, for messages.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `source` with comments and the insides of string and character
/// literals replaced by spaces, so braces and names in them are not seen.
/// Line breaks are kept, so line numbers stay right.
pub fn code_only(source: &str) -> Vec<char> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in out.iter_mut().take(to).skip(from) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            let end = (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            let mut j = i;
            while j < chars.len() {
                if at(j) == '/' && at(j + 1) == '*' {
                    depth += 1;
                    j += 2;
                } else if at(j) == '*' && at(j + 1) == '/' {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == 'r' && (at(i + 1) == '"' || at(i + 1) == '#') && raw_start(&chars, i) {
            // A raw string r"..." or r#"..."#: it ends at a quote followed by
            // as many #s as it opened with.
            let hashes = (i + 1..chars.len())
                .take_while(|&j| chars[j] == '#')
                .count();
            let open = i + 1 + hashes;
            if at(open) != '"' {
                i += 1;
                continue;
            }
            let mut j = open + 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    break;
                }
                j += 1;
            }
            blank(&mut out, open + 1, j);
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                let end = (i + 2..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .unwrap_or(chars.len());
                blank(&mut out, i + 1, end);
                i = end + 1;
            } else if at(i + 2) == '\'' {
                blank(&mut out, i + 1, i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether the `r` at `i` opens a raw string (`r"`, `br"`), not ends a word.
fn raw_start(chars: &[char], i: usize) -> bool {
    let before = |k: usize| i.checked_sub(k).and_then(|j| chars.get(j).copied());
    match before(1) {
        Some('b') => !before(2).is_some_and(ident),
        Some(c) => !ident(c),
        None => true,
    }
}

/// A character of an identifier.
pub fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The body (between its braces) of the first `fn name(` in `code`.
pub fn fn_body(code: &[char], name: &str) -> Option<String> {
    let needle: Vec<char> = format!("fn {name}(").chars().collect();
    let start = (0..code.len()).find(|&i| {
        code[i..].starts_with(&needle) && !i.checked_sub(1).is_some_and(|k| ident(code[k]))
    })?;
    let open = (start..code.len()).find(|&i| code[i] == '{')?;
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(code[open + 1..i].iter().collect());
                }
            }
            _ => {}
        }
    }
    None
}

/// The session methods a body calls, in the order they are written:
/// `self.name(` and, inside `self.run_phase(phase::X, now, Self::name)`,
/// `name` (`run_phase` itself is left out, and so are calls on fields,
/// like `self.poll.poll(`). With each, whether it went through `run_phase`.
pub fn calls_in(body: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = body.chars().collect();
    let mut calls = Vec::new();
    for i in 0..chars.len() {
        if i > 0 && ident(chars[i - 1]) {
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 80)].iter().collect();
        let (tail, through_run_phase) = if let Some(tail) = rest.strip_prefix("Self::") {
            (tail, true)
        } else if let Some(tail) = rest.strip_prefix("self.") {
            (tail, false)
        } else {
            continue;
        };
        let name: String = tail.chars().take_while(|c| ident(*c)).collect();
        let called = tail[name.len()..].starts_with('(');
        if through_run_phase || (called && name != "run_phase") {
            calls.push((name, through_run_phase));
        }
    }
    calls
}
