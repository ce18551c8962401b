//! The design tour in `src/lib.rs` names the functions of the loop and of
//! the life of a block; every name it gives in backticks must exist as a
//! function in `src/`, so the tour cannot drift from the code.
//!
//! The loop is described three times (the tour's table, the module doc of
//! `src/session/mod.rs`, the README's "The loop"): each list of what
//! `dispatch_events`, `tick` and `before_sleep` run must name functions
//! that exist, `tick`'s and `before_sleep`'s in the order the code calls
//! them, read from the source (`self.name(now)` and
//! `self.run_phase(phase::X, now, Self::name)`), and `tick`'s must name
//! every phase that runs through `run_phase`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::source::{calls_in, code_only, fn_body, root, rust_files};

fn all_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_function_the_tour_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let tour: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!") || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut sources = String::new();
    all_sources(&root.join("src"), &mut sources);
    let mut checked = 0;
    for (i, part) in tour.split('`').enumerate() {
        // Odd parts are inside backticks; function names are lower_snake_case words.
        let is_name = i % 2 == 1
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && part.contains('_');
        if is_name {
            assert!(
                sources.contains(&format!("fn {part}(")),
                "the tour names `{part}`, which is not a function in src/"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} names checked");
}

/// The steps of `Session::run` whose phases the loop descriptions list.
const STEPS: [&str; 3] = ["dispatch_events", "tick", "before_sleep"];

/// One loop description's list of the functions one step runs.
struct Listed {
    /// Where: `file:line` of the list.
    at: String,
    /// One of [`STEPS`].
    step: &'static str,
    /// The function names, in the order written.
    names: Vec<String>,
}

/// The names of a written list: text after the first `:` (if any),
/// parenthesised notes dropped, split at commas. Fails on an item that is
/// not one function name, so prose cannot hide in the list.
fn list_names(at: &str, text: &str) -> Vec<String> {
    let list = text.split_once(':').map_or(text, |(_, l)| l);
    let mut plain = String::new();
    let mut depth = 0;
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            assert!(
                item.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{at}: `{item}` in the loop description is not a function name"
            );
            item.to_string()
        })
        .collect()
}

fn step_of(text: &str) -> Option<&'static str> {
    STEPS.into_iter().find(|s| text.contains(&format!("{s}(")))
}

/// The `| step | functions | ... |` rows of the design tour's loop table.
fn listed_in_the_tour() -> Vec<Listed> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut out = Vec::new();
    for (number, line) in lib.lines().enumerate() {
        let cells: Vec<&str> = line.trim_start_matches("//!").split('|').collect();
        let step = match cells.get(1).map(|c| c.trim()) {
            Some("dispatch") => "dispatch_events",
            Some("tick") => "tick",
            Some("before sleep") => "before_sleep",
            _ => continue,
        };
        let names = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        let at = format!("src/lib.rs:{}", number + 1);
        out.push(Listed { at, step, names });
    }
    out
}

/// The step lines of the ```text loop in `src/session/mod.rs`'s module
/// doc: `step(now)   list`, continued on the lines right after it that are
/// indented past the code column.
fn listed_in_the_session_doc() -> Vec<Listed> {
    let doc = std::fs::read_to_string(root().join("src/session/mod.rs")).unwrap();
    let mut out: Vec<(String, &'static str, String)> = Vec::new();
    let mut continuing = false;
    for (number, line) in doc.lines().enumerate() {
        let Some(body) = line.strip_prefix("//!") else {
            break;
        };
        let indent = body.len() - body.trim_start().len();
        let (code, text) = body.trim().split_once("  ").unwrap_or((body.trim(), ""));
        if indent >= 10 && continuing {
            let last = out.last_mut().unwrap();
            last.2.push(' ');
            last.2.push_str(body.trim());
        } else if let Some(step) = step_of(code) {
            out.push((
                format!("src/session/mod.rs:{}", number + 1),
                step,
                text.into(),
            ));
            continuing = true;
        } else {
            continuing = false;
        }
    }
    out.into_iter()
        .map(|(at, step, text)| Listed {
            names: list_names(&at, &text),
            at,
            step,
        })
        .collect()
}

/// The `self.step(now); // list` lines of the README's "The loop" block,
/// with their `//` continuation lines.
fn listed_in_the_readme() -> Vec<Listed> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out: Vec<(String, &'static str, String)> = Vec::new();
    let mut inside = false;
    for (number, line) in readme.lines().enumerate() {
        if line.starts_with("## ") {
            inside = line == "## The loop";
            continue;
        }
        if !inside {
            continue;
        }
        let (code, comment) = line.split_once("//").unwrap_or((line, ""));
        if let Some(step) = step_of(code) {
            out.push((format!("README.md:{}", number + 1), step, comment.into()));
        } else if code.trim().is_empty() && !comment.is_empty() {
            if let Some(last) = out.last_mut() {
                last.2.push(' ');
                last.2.push_str(comment);
            }
        }
    }
    out.into_iter()
        .map(|(at, step, text)| Listed {
            names: list_names(&at, &text),
            at,
            step,
        })
        .collect()
}

/// The code of every file under `src/session/`, comments and literals blanked.
fn session_code() -> Vec<char> {
    let mut files = Vec::new();
    rust_files(&root().join("src/session"), &mut files);
    let mut code = Vec::new();
    for file in files {
        code.extend(code_only(&std::fs::read_to_string(file).unwrap()));
        code.push('\n');
    }
    code
}

/// The session methods `name` calls, in order (see [`calls_in`]).
fn calls_of(code: &[char], name: &str) -> Vec<(String, bool)> {
    let body = fn_body(code, name).unwrap_or_else(|| panic!("no `fn {name}(` in src/session/"));
    calls_in(&body)
}

/// Checks that `listed` is `order` with some calls left out: each name is
/// called, after the one before it.
fn check_order(listed: &Listed, order: &[String], problems: &mut Vec<String>) {
    let mut next = 0;
    let mut previous: Option<&str> = None;
    for name in &listed.names {
        if let Some(found) = order[next..].iter().position(|c| c == name) {
            next += found + 1;
        } else if order.contains(name) {
            problems.push(format!(
                "{}: lists `{name}` after `{}`, but Session::{} runs it before (the code's order: {})",
                listed.at,
                previous.unwrap_or("?"),
                listed.step,
                order.join(", ")
            ));
        } else {
            problems.push(format!(
                "{}: lists `{name}` under {}, which does not call it (it calls: {})",
                listed.at,
                listed.step,
                order.join(", ")
            ));
        }
        previous = Some(name);
    }
}

#[test]
fn the_loop_descriptions_match_what_the_loop_calls() {
    let root = root();
    let mut sources = String::new();
    all_sources(&root.join("src"), &mut sources);
    let code = session_code();
    let tick = calls_of(&code, "tick");
    let tick_order: Vec<String> = tick.iter().map(|(n, _)| n.clone()).collect();
    let phases: Vec<&String> = tick.iter().filter(|(_, p)| *p).map(|(n, _)| n).collect();
    let before_sleep: Vec<String> = calls_of(&code, "before_sleep")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    // What a ready event can reach: dispatch_events and the methods it calls.
    let mut dispatch = Vec::new();
    for (name, _) in calls_of(&code, "dispatch_events") {
        if fn_body(&code, &name).is_some() {
            dispatch.extend(calls_of(&code, &name).into_iter().map(|(n, _)| n));
        }
        dispatch.push(name);
    }
    println!("Session::tick calls, in order: {}", tick_order.join(", "));
    println!("Session::before_sleep calls: {}", before_sleep.join(", "));
    println!("Session::dispatch_events reaches: {}", dispatch.join(", "));

    let mut problems = Vec::new();
    let docs = [
        ("src/lib.rs", listed_in_the_tour()),
        ("src/session/mod.rs", listed_in_the_session_doc()),
        ("README.md", listed_in_the_readme()),
    ];
    for (doc, lists) in docs {
        for step in STEPS {
            // A step's list may span several lines or table rows.
            let parts: Vec<&Listed> = lists.iter().filter(|l| l.step == step).collect();
            let Some(first) = parts.first() else {
                problems.push(format!(
                    "{doc}: the loop description has no list for {step}"
                ));
                continue;
            };
            let listed = Listed {
                at: first.at.clone(),
                step,
                names: parts.iter().flat_map(|l| l.names.clone()).collect(),
            };
            println!("{}: {step}: {}", listed.at, listed.names.join(", "));
            for name in &listed.names {
                if !sources.contains(&format!("fn {name}(")) {
                    problems.push(format!(
                        "{}: names `{name}`, which is not a function in src/",
                        listed.at
                    ));
                }
            }
            match step {
                "tick" => {
                    check_order(&listed, &tick_order, &mut problems);
                    for phase in &phases {
                        if !listed.names.contains(phase) {
                            problems.push(format!(
                                "{}: tick's list leaves out `{phase}`, a traced phase of Session::tick",
                                listed.at
                            ));
                        }
                    }
                }
                "before_sleep" => check_order(&listed, &before_sleep, &mut problems),
                _ => {
                    for name in &listed.names {
                        if !dispatch.contains(name) {
                            problems.push(format!(
                                "{}: lists `{name}` under dispatch_events, which never calls it",
                                listed.at
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
