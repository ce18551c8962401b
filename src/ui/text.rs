//! Terminal-safe text: escaping untrusted strings, measuring them in
//! columns and fitting them into a cell.
//!
//! Layer 0: pure. Torrent names, tracker messages and peer ids come from
//! strangers, so before anything is drawn every control character (C0, DEL,
//! C1: they start escape sequences), bidi override or isolate, zero-width or
//! otherwise invisible formatting character is replaced by its `\u{..}`
//! escape. A hostile name therefore cannot move the cursor, change colours,
//! reorder the line or hide text, and what is left has a predictable width.
//!
//! Widths are counted conservatively: a character of the East Asian wide
//! ranges or an emoji counts two columns, every other character one (so a
//! combining accent is over-counted, never under-counted). A string never
//! takes more columns on screen, nor has more `char`s, than [`columns`] says.

/// The mark that ends a truncated cell (ASCII, for serial consoles).
pub const TRUNCATED: char = '~';

/// Escapes every character that could move the cursor, start an escape
/// sequence, reorder or hide text: `"a\x1b[2Jb"` becomes `a\u{1b}[2Jb`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// [`sanitize`] then [`fit`] to `cols` columns, without escaping more of a
/// long `text` than can be shown.
pub fn clean(text: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used > cols {
            break;
        }
        let start = out.len();
        push_escaped(&mut out, c);
        used += columns(out.get(start..).unwrap_or_default());
    }
    fit(&out, cols)
}

/// `text` cut to at most `cols` columns; a cut string ends in [`TRUNCATED`].
/// Expects text that is already escaped (or made by the renderer).
pub fn fit(text: &str, cols: usize) -> String {
    if columns(text) <= cols {
        return text.to_string();
    }
    let room = cols.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let width = char_columns(c);
        if used + width > room {
            break;
        }
        out.push(c);
        used += width;
    }
    if cols > 0 {
        out.push(TRUNCATED);
    }
    out
}

/// `text` fitted to `cols` columns and padded with spaces on the right.
pub fn pad_right(text: &str, cols: usize) -> String {
    let mut out = fit(text, cols);
    let used = columns(&out);
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(used)));
    out
}

/// `text` fitted to `cols` columns and padded with spaces on the left.
pub fn pad_left(text: &str, cols: usize) -> String {
    let fitted = fit(text, cols);
    let mut out: String = std::iter::repeat_n(' ', cols.saturating_sub(columns(&fitted))).collect();
    out.push_str(&fitted);
    out
}

/// Columns `text` takes on screen, counted conservatively (see the module doc).
pub fn columns(text: &str) -> usize {
    text.chars().map(char_columns).sum()
}

/// Columns one character takes: two for wide characters, else one.
pub fn char_columns(c: char) -> usize {
    if is_wide(c) {
        2
    } else {
        1
    }
}

/// Appends `c`, or its `\u{..}` escape if it must not reach the terminal.
fn push_escaped(out: &mut String, c: char) {
    if is_unsafe(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// Control characters, bidi controls, and zero-width or invisible
/// characters (whose width terminals disagree on).
fn is_unsafe(c: char) -> bool {
    const HIDDEN: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),   // soft hyphen
        (0x034F, 0x034F),   // combining grapheme joiner
        (0x061C, 0x061C),   // Arabic letter mark (bidi)
        (0x115F, 0x1160),   // Hangul fillers
        (0x17B4, 0x17B5),   // Khmer inherent vowels
        (0x180B, 0x180F),   // Mongolian variation selectors, vowel separator
        (0x200B, 0x200F),   // zero width space/non-joiner/joiner, LRM, RLM
        (0x2028, 0x202E),   // line/paragraph separators, bidi embeddings and overrides
        (0x2060, 0x206F),   // word joiner, invisible operators, bidi isolates
        (0x3164, 0x3164),   // Hangul filler
        (0xFE00, 0xFE0F),   // variation selectors
        (0xFEFF, 0xFEFF),   // zero width no-break space (BOM)
        (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
        (0xFFF0, 0xFFFB),   // interlinear annotation controls
        (0x1BCA0, 0x1BCA3), // shorthand format controls
        (0x1D173, 0x1D17A), // musical symbol format controls
        (0xE0000, 0xE0FFF), // tags, variation selectors supplement
    ];
    c.is_control() || in_ranges(c, HIDDEN)
}

/// East Asian wide and fullwidth characters and emoji (a conservative
/// superset: over-counting only costs alignment, never overflow).
fn is_wide(c: char) -> bool {
    const WIDE: &[(u32, u32)] = &[
        (0x1100, 0x115F),
        (0x231A, 0x231B),
        (0x2329, 0x232A),
        (0x23E9, 0x23F3),
        (0x25FD, 0x25FE),
        (0x2614, 0x2615),
        (0x2648, 0x2653),
        (0x267F, 0x267F),
        (0x2693, 0x2693),
        (0x26A1, 0x26FD),
        (0x2705, 0x27BF),
        (0x2B1B, 0x2B55),
        (0x2E80, 0x303E),
        (0x3041, 0xA4CF),
        (0xA960, 0xA97F),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE10, 0xFE19),
        (0xFE30, 0xFE6F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x16FE0, 0x1B2FF),
        (0x1F000, 0x1F2FF),
        (0x1F300, 0x1F64F),
        (0x1F680, 0x1F6FF),
        (0x1F7E0, 0x1F7EB),
        (0x1F900, 0x1FAFF),
        (0x20000, 0x3FFFD),
    ];
    in_ranges(c, WIDE)
}

/// Whether `c` falls in one of the inclusive `ranges`.
fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let code = u32::from(c);
    ranges
        .iter()
        .any(|&(low, high)| (low..=high).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_controls_bidi_and_zero_width() {
        let cases: &[(&str, &str)] = &[
            ("plain name.iso", "plain name.iso"),
            ("a\x1b[2Jb", "a\\u{1b}[2Jb"),
            ("bell\x07", "bell\\u{7}"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("tab\there", "tab\\u{9}here"),
            ("new\nline\r", "new\\u{a}line\\u{d}"),
            ("evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe"),
            ("iso\u{2066}late", "iso\\u{2066}late"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("bom\u{feff}", "bom\\u{feff}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("Übung für Anfänger", "Übung für Anfänger"),
            ("日本語", "日本語"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn columns_count_wide_characters_twice() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("abc", 3),
            ("µTorrent", 8),
            ("日本語", 6),
            ("한국어", 6),
            ("🎉x", 3),
            ("e\u{301}", 2),
        ];
        for (input, expected) in cases {
            assert_eq!(columns(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn fit_cuts_at_character_boundaries_and_marks_the_cut() {
        let cases: &[(&str, usize, &str)] = &[
            ("hello", 10, "hello"),
            ("hello", 5, "hello"),
            ("hello", 4, "hel~"),
            ("hello", 1, "~"),
            ("hello", 0, ""),
            ("日本語", 5, "日本~"),
            ("日本語", 4, "日~"),
            ("日本語", 2, "~"),
            ("äöüäöü", 4, "äöü~"),
        ];
        for (input, cols, expected) in cases {
            let got = fit(input, *cols);
            assert_eq!(got, *expected, "{input:?} in {cols}");
            assert!(columns(&got) <= *cols);
        }
    }

    #[test]
    fn clean_escapes_then_fits_and_stops_early_on_long_text() {
        assert_eq!(clean("a\x1bb", 20), "a\\u{1b}b");
        assert_eq!(clean("a\x1bb", 4), "a\\u~");
        let long = "x".repeat(10_000_000);
        assert_eq!(clean(&long, 3), "xx~");
    }

    #[test]
    fn padding_fills_exactly_the_columns() {
        assert_eq!(pad_right("ab", 4), "ab  ");
        assert_eq!(pad_left("ab", 4), "  ab");
        assert_eq!(pad_left("abcdef", 4), "abc~");
        assert_eq!(pad_right("日本", 5), "日本 ");
        assert_eq!(pad_right("日本語", 5), "日本~");
    }
}
