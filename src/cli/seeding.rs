//! `--seed-ratio R` and `--seed-time DURATION`: the seeding limits of
//! `pollen TORRENT` (see [`pollen::torrent::SeedLimits`]).
//!
//! Layer 3: option text in, checked values or a usage error naming the
//! option out.

use std::time::Duration;

use super::CliError;

/// Longest `--seed-time` taken: a hundred years, so the sum of the parts
/// and the session's deadline arithmetic cannot overflow.
const MAX_SEED_TIME: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `--seed-ratio R`: a finite number of at least 0 (0 stops seeding at
/// once, 1 after one full copy uploaded). `None` when absent.
pub fn parse_ratio(text: Option<String>) -> Result<Option<f64>, CliError> {
    let Some(text) = text else {
        return Ok(None);
    };
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .map(Some)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--seed-ratio {text:?} is not a ratio like 1 or 2.5 (0 or more)"
            ))
        })
}

/// `--seed-time DURATION`: plain seconds (`90`), or whole numbers with
/// units `s`, `m`, `h`, `d`, combined (`30m`, `2h`, `1d`, `1h30m`).
/// `None` when absent.
pub fn parse_time(text: Option<String>) -> Result<Option<Duration>, CliError> {
    let Some(text) = text else {
        return Ok(None);
    };
    parse_duration(&text).map(Some).ok_or_else(|| {
        CliError::Usage(format!(
            "--seed-time {text:?} is not a duration like 90, 30m, 2h or 1d"
        ))
    })
}

/// See [`parse_time`]; `None` for anything else.
fn parse_duration(text: &str) -> Option<Duration> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(text.parse().ok()?)).filter(|d| *d <= MAX_SEED_TIME);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let mut chars = tail.chars();
        let unit: u64 = match chars.next()? {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return None,
        };
        let number: u64 = number.parse().ok()?;
        total = total.checked_add(Duration::from_secs(number.checked_mul(unit)?))?;
        rest = chars.as_str();
    }
    Some(total).filter(|d| !text.is_empty() && *d <= MAX_SEED_TIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_minutes_hours_days_and_combined() {
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(parse_duration("90"), secs(90));
        assert_eq!(parse_duration("0"), secs(0));
        assert_eq!(parse_duration("45s"), secs(45));
        assert_eq!(parse_duration("30m"), secs(1_800));
        assert_eq!(parse_duration("2h"), secs(7_200));
        assert_eq!(parse_duration("1d"), secs(86_400));
        assert_eq!(parse_duration("1h30m"), secs(5_400));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in [
            "",
            "5x",
            "m",
            "1.5h",
            "-1",
            "h1",
            "1h 30m",
            "99999999999d",
            "3m2",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        let message = parse_time(Some("5x".into())).unwrap_err().to_string();
        assert_eq!(
            message,
            "--seed-time \"5x\" is not a duration like 90, 30m, 2h or 1d"
        );
    }

    #[test]
    fn ratios_are_finite_and_not_negative() {
        assert_eq!(parse_ratio(None).unwrap(), None);
        assert_eq!(parse_ratio(Some("1".into())).unwrap(), Some(1.0));
        assert_eq!(parse_ratio(Some("0".into())).unwrap(), Some(0.0));
        assert_eq!(parse_ratio(Some("2.5".into())).unwrap(), Some(2.5));
        for bad in ["-1", "NaN", "inf", "x", ""] {
            let message = parse_ratio(Some(bad.into())).unwrap_err().to_string();
            assert!(message.starts_with("--seed-ratio "), "{bad}: {message}");
        }
    }
}
