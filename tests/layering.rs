//! Layer 0 stays pure: no file of a layer-0 module names the event loop,
//! a socket, a file or the clock outside `#[cfg(test)]`.
//!
//! The list of layer-0 modules is the design tour's own: the `L0` lines of
//! the layer diagram in `src/lib.rs` are parsed, each module path is mapped
//! to its files (`a::b` is `src/a/b.rs`, or every file under `src/a/b/`;
//! `a::{self}` is `a`'s own file without its children),
//! and each file is read with its comments, strings and `#[cfg(test)]` items
//! blanked out. What is left must not name:
//!
//! - `mio` or `slab`: the event loop and its connection table belong to
//!   the session (layer 2);
//! - `TcpStream`, `TcpListener`, `UdpSocket` (from `std::net` or mio), or
//!   `ToSocketAddrs`/`to_socket_addrs` (a name lookup is network I/O);
//! - `std::fs`, `fs`, `File::` or `OpenOptions`: files are layer 1;
//! - `Instant::now`, `SystemTime::now` or `.elapsed()` (which reads the
//!   clock too): time is passed in as `now`.
//!
//! `std::net::SocketAddr`, `IpAddr`, `Ipv4Addr` and `Ipv6Addr` are plain
//! values (an address a peer or tracker gave us, parsed from bytes), not
//! sockets, and are fine in layer 0. So are `Instant` and `Duration` as
//! values: only reading the clock is forbidden.
//!
//! The other direction is checked too: a module whose own doc says
//! "Layer 0" must be in the tour's list, so the diagram cannot forget one;
//! and the README's diagram must list the same layer-0 modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::source::{code_only, ident, relative, root, rust_files};

/// What layer-0 code must not name, each with the reason a reader is shown.
/// A name is matched as a whole word (`fs` does not match `offset`).
const FORBIDDEN: &[(&str, &str)] = &[
    ("mio", "the event loop belongs to the session (layer 2)"),
    (
        "slab",
        "the connection table belongs to the session (layer 2)",
    ),
    ("TcpStream", "a socket"),
    ("TcpListener", "a socket"),
    ("UdpSocket", "a socket"),
    ("ToSocketAddrs", "a name lookup is network I/O"),
    ("to_socket_addrs", "a name lookup is network I/O"),
    ("std::fs", "files are layer 1"),
    ("fs", "std::fs: files are layer 1"),
    ("File::", "a file handle: files are layer 1"),
    ("OpenOptions", "a file handle: files are layer 1"),
    (
        "Instant::now",
        "the clock: layer 0 takes `now` as an argument",
    ),
    (
        "SystemTime::now",
        "the clock: layer 0 takes `now` as an argument",
    ),
    (
        ".elapsed()",
        "reads the clock: layer 0 takes `now` as an argument",
    ),
];

/// Files whose doc says "Layer 0" but that the tour's L0 line leaves out,
/// each with its reason.
const NOT_IN_THE_L0_LINE: &[(&str, &str)] = &[(
    "src/error.rs",
    "the top-level Error is a pure value, but it gathers the errors of \
     layers 1 and 2 (storage, lock, create), so it does not sit below them",
)];

/// The module paths on the `L0` lines of the design tour's layer diagram
/// in `src/lib.rs`.
fn l0_modules_of_the_tour() -> Vec<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let doc = lib.lines().map_while(|l| l.strip_prefix("//!"));
    let lines = doc.map(|l| l.strip_prefix(' ').unwrap_or(l));
    l0_modules(lines).expect("src/lib.rs: the design tour has no `L0` line")
}

/// The module paths on the `L0` lines of a layer diagram: the line
/// starting `L0` and the indented lines after it, up to the column of words
/// that describes them (`pure: ...`) or the next layer. `a::{b, c}` is
/// expanded to `a::b`, `a::c`.
fn l0_modules<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut text = String::new();
    let mut inside = false;
    for body in lines {
        if let Some(rest) = body.strip_prefix("L0") {
            inside = true;
            text.push_str(rest);
            continue;
        }
        if !inside {
            continue;
        }
        // Continuation lines are indented; a wide indent is the description.
        let indent = body.len() - body.trim_start().len();
        if !body.starts_with(' ') || body.trim().is_empty() || indent > 8 {
            break;
        }
        text.push(' ');
        text.push_str(body);
    }
    if !inside {
        return None;
    }
    let mut modules = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for c in text.chars().chain(std::iter::once(',')) {
        match c {
            '{' => {
                depth += 1;
                item.push(c);
            }
            '}' => {
                depth -= 1;
                item.push(c);
            }
            ',' if depth == 0 => {
                let item_text: String = item.split_whitespace().collect();
                if let Some((prefix, list)) = item_text.split_once("::{") {
                    for leaf in list.trim_end_matches('}').split(',') {
                        modules.push(format!("{prefix}::{leaf}"));
                    }
                } else if !item_text.is_empty() {
                    modules.push(item_text);
                }
                item.clear();
            }
            _ => item.push(c),
        }
    }
    Some(modules)
}

/// The files of module `path`: `src/a/b.rs`, or every `.rs` file under
/// `src/a/b/`; `a::b::self` is only the module's own file (`src/a/b.rs` or
/// `src/a/b/mod.rs`), not its children.
fn files_of(module: &str) -> Vec<PathBuf> {
    if let Some(parent) = module.strip_suffix("::self") {
        let base = root().join("src").join(parent.replace("::", "/"));
        return [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .filter(|f| f.is_file())
            .collect();
    }
    let base = root().join("src").join(module.replace("::", "/"));
    let mut files = Vec::new();
    let single = base.with_extension("rs");
    if single.is_file() {
        files.push(single);
    }
    if base.is_dir() {
        rust_files(&base, &mut files);
    }
    files
}

/// Which characters of `code` belong to a `#[cfg(test)]` item (the
/// attribute, any attributes after it, and the item up to its `;` or its
/// closing brace), and the names of `#[cfg(test)] mod name;` files.
fn test_items(code: &[char]) -> (Vec<bool>, Vec<String>) {
    let text: String = code.iter().collect();
    let mut in_test = vec![false; code.len()];
    let mut test_mods = Vec::new();
    let mut search = 0;
    while let Some(found) = find(code, "#[cfg(test)]", search) {
        let mut j = found + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let mut bracket = 0usize;
        let start = j;
        while j < code.len() {
            match code[j] {
                '[' => bracket += 1,
                ']' => bracket = bracket.saturating_sub(1),
                '{' => depth += 1,
                // The enclosing block's brace: the item was a field or a
                // statement without one of its own.
                '}' if depth == 0 => break,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ';' | ',' if depth == 0 && bracket == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let item: String = code[start..j.min(code.len())].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(pos) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(pos + 1) {
                if !item.contains('{') {
                    test_mods.push(name.trim_end_matches(';').to_string());
                }
            }
        }
        for flag in in_test.iter_mut().take(j + 1).skip(found) {
            *flag = true;
        }
        search = j + 1;
    }
    if text.trim_start().starts_with("#![cfg(test)]") {
        in_test.iter_mut().for_each(|f| *f = true);
    }
    (in_test, test_mods)
}

fn find(code: &[char], needle: &str, from: usize) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    (from..code.len()).find(|&i| code[i..].starts_with(&needle))
}

/// Every forbidden name in `file` outside `#[cfg(test)]`, as
/// `file:line: name (reason)`.
fn violations(file: &Path, code: &[char], in_test: &[bool]) -> Vec<String> {
    let mut found = Vec::new();
    let mut line_start = 0;
    for (number, line) in code.split(|&c| c == '\n').enumerate() {
        for (name, why) in FORBIDDEN {
            let needle: Vec<char> = name.chars().collect();
            for i in 0..line.len() {
                if !line[i..].starts_with(&needle) || in_test[line_start + i] {
                    continue;
                }
                let before = i.checked_sub(1).map(|k| line[k]);
                let after = line.get(i + needle.len()).copied();
                let word_start = !needle[0].is_alphanumeric() || !before.is_some_and(ident);
                let word_end =
                    !needle.last().is_some_and(|c| ident(*c)) || !after.is_some_and(ident);
                // `std::fs` is reported once, not again as `fs`.
                let part_of_std_fs =
                    *name == "fs" && i >= 5 && line[i - 5..i] == ['s', 't', 'd', ':', ':'];
                if word_start && word_end && !part_of_std_fs {
                    found.push(format!(
                        "{}:{}: names `{name}` ({why})",
                        relative(file),
                        number + 1
                    ));
                }
            }
        }
        line_start += line.len() + 1;
    }
    found
}

#[test]
fn layer_zero_names_no_socket_file_or_clock() {
    let modules = l0_modules_of_the_tour();
    println!("layer-0 modules in the design tour: {}", modules.join(", "));
    assert!(modules.len() >= 20, "only {} modules parsed", modules.len());
    let mut files = BTreeSet::new();
    for module in &modules {
        let of = files_of(module);
        assert!(
            !of.is_empty(),
            "src/lib.rs: the tour lists `{module}` in layer 0, but there is no src/{}.rs or src/{}/",
            module.replace("::", "/"),
            module.replace("::", "/")
        );
        files.extend(of);
    }
    // Files declared `#[cfg(test)] mod x;` hold only tests.
    let mut test_only = BTreeSet::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let (_, test_mods) = test_items(&code_only(&source));
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for name in test_mods {
            test_only.insert(dir.join(format!("{name}.rs")));
            test_only.insert(dir.join(name).join("mod.rs"));
        }
    }
    let mut problems = Vec::new();
    for file in &files {
        if test_only.contains(file) {
            println!("skipped (tests only): {}", relative(file));
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        let code = code_only(&source);
        let (in_test, _) = test_items(&code);
        let found = violations(file, &code, &in_test);
        println!("checked {}: {} finding(s)", relative(file), found.len());
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "layer-0 code names what only layers 1 and 2 may:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_module_that_says_layer_zero_is_in_the_tour() {
    let mut listed = BTreeSet::new();
    for module in l0_modules_of_the_tour() {
        listed.extend(files_of(&module));
    }
    let mut all = Vec::new();
    rust_files(&root().join("src"), &mut all);
    let mut missing = Vec::new();
    for file in all {
        let source = std::fs::read_to_string(&file).unwrap();
        let says_l0 = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .any(|l| {
                l.trim_start_matches("//!")
                    .trim_start()
                    .starts_with("Layer 0")
            });
        let name = relative(&file);
        if !says_l0 || listed.contains(&file) || name == "src/lib.rs" {
            continue;
        }
        if let Some((_, why)) = NOT_IN_THE_L0_LINE.iter().find(|(f, _)| *f == name) {
            println!("not in the L0 line, on purpose: {name}: {why}");
            continue;
        }
        missing.push(format!(
            "{name}:1: its doc says Layer 0, the tour's L0 line does not list it"
        ));
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_readme_lists_the_same_layer_zero_as_the_tour() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .lines()
        .skip_while(|l| *l != "## The layers")
        .skip(1)
        .take_while(|l| !l.starts_with("## "));
    let listed: BTreeSet<String> = l0_modules(section)
        .expect("README.md: \"## The layers\" has no `L0` line")
        .into_iter()
        .collect();
    let tour: BTreeSet<String> = l0_modules_of_the_tour().into_iter().collect();
    println!("README.md's L0 line: {listed:?}");
    let missing: Vec<&String> = tour.difference(&listed).collect();
    let extra: Vec<&String> = listed.difference(&tour).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md, \"## The layers\": L0 leaves out {missing:?} and adds {extra:?} (src/lib.rs is the reference)"
    );
}

#[test]
fn the_checker_sees_through_comments_strings_and_tests() {
    let source = "use std::net::SocketAddr; // not mio\n\
                  use mio::Poll; use slab::Slab; use std::{fs, io};\n\
                  const URL: &str = \"std::fs\";\n\
                  fn f() -> char { '{' }\n\
                  fn g() { let t = std::time::Instant::now(); }\n\
                  #[cfg(test)]\n\
                  mod tests {\n    fn h() { let _ = std::fs::read(\"x\"); }\n}\n\
                  #[cfg(test)]\nmod more;\n";
    let code = code_only(source);
    let (in_test, mods) = test_items(&code);
    let found = violations(Path::new("x.rs"), &code, &in_test);
    let names: Vec<&str> = found.iter().map(|f| f.split('`').nth(1).unwrap()).collect();
    assert_eq!(names, ["mio", "slab", "fs", "Instant::now"], "{found:?}");
    assert!(found[3].starts_with("x.rs:5: "), "{found:?}");
    assert_eq!(mods, ["more"]);
}
