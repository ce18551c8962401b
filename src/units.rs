//! Human-readable sizes: parsing `256K` / `2M` from the command line and
//! printing byte counts as `1.5 MiB`.
//!
//! Layer 0: pure. Suffixes are binary (K = 1024), as in every BitTorrent
//! client's piece-size and rate options.

/// Parses a byte count with an optional `K`, `M` or `G` suffix (binary,
/// case-insensitive, optional trailing `B` or `iB`). `None` if malformed or
/// overflowing.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let stripped = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match stripped.chars().last()? {
        'k' => (&stripped[..stripped.len() - 1], 10),
        'm' => (&stripped[..stripped.len() - 1], 20),
        'g' => (&stripped[..stripped.len() - 1], 30),
        _ => (stripped, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// Formats a byte count with a binary unit: `512 B`, `1.5 KiB`, `117.2 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("16384", Some(16384)),
            ("256K", Some(256 * 1024)),
            ("256k", Some(256 * 1024)),
            ("2M", Some(2 << 20)),
            ("2MiB", Some(2 << 20)),
            ("2mb", Some(2 << 20)),
            ("1G", Some(1 << 30)),
            ("", None),
            ("K", None),
            ("-1", None),
            ("1.5M", None),
            ("12Q", None),
            ("99999999999999999999", None),
            ("17179869184G", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn format_table() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(120_005), "117.2 KiB");
        assert_eq!(format_bytes(5 << 30), "5.0 GiB");
    }
}
