//! The design tour in `src/lib.rs` names the functions of the loop and of
//! the life of a block; every name it gives in backticks must exist as a
//! function in `src/`, so the tour cannot drift from the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

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
