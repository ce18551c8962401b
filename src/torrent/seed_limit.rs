//! Seeding limits: when a complete torrent has been shared enough
//! (`--seed-ratio R`, `--seed-time DURATION`; the first one met ends it).
//!
//! Layer 0: values in, a decision out; the time seeded so far is passed in.
//!
//! The ratio is bytes uploaded divided by the torrent's size. pollen keeps
//! no upload count across runs (the resume state holds pieces, not
//! traffic), so the bytes are those uploaded by this session: a restarted
//! seeder starts its ratio from zero again. (Transmission counts across
//! runs; counting only what is known is the sound choice here, and it can
//! only make a seeder share more, never less, than asked.) The time counts
//! from the moment the torrent was complete in this session: after its
//! download, or after the start-up check for data already on disk.

use std::fmt;
use std::time::Duration;

/// When to stop seeding one torrent: when either limit is met. With
/// neither set, never.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeedLimits {
    /// Stop once uploaded bytes reach this multiple of the torrent's size
    /// (1.0: one full copy). A value that is not a finite number of at
    /// least zero is never met.
    pub ratio: Option<f64>,
    /// Stop after seeding this long.
    pub time: Option<Duration>,
}

/// Which limit ended the seeding, with the numbers, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeedLimitMet {
    /// Uploaded `uploaded` bytes of a `total_len`-byte torrent, reaching `ratio`.
    Ratio {
        /// The ratio asked for.
        ratio: f64,
        /// Bytes uploaded this session.
        uploaded: u64,
        /// The torrent's size in bytes.
        total_len: u64,
    },
    /// Seeded for `time`.
    Time {
        /// The time asked for.
        time: Duration,
    },
}

impl SeedLimits {
    /// Whether any limit is set (setting one means seeding until it is met).
    pub fn is_set(&self) -> bool {
        self.ratio.is_some() || self.time.is_some()
    }

    /// The limit met by a torrent of `total_len` bytes that has uploaded
    /// `uploaded` bytes and seeded for `seeded_for`; `None` while neither is.
    pub fn met(&self, uploaded: u64, total_len: u64, seeded_for: Duration) -> Option<SeedLimitMet> {
        if let Some(ratio) = self.ratio.filter(|r| r.is_finite() && *r >= 0.0) {
            // f64 is exact to 2^53 bytes (8 PiB): far beyond any torrent.
            if uploaded as f64 >= ratio * total_len as f64 {
                return Some(SeedLimitMet::Ratio {
                    ratio,
                    uploaded,
                    total_len,
                });
            }
        }
        match self.time {
            Some(time) if seeded_for >= time => Some(SeedLimitMet::Time { time }),
            _ => None,
        }
    }
}

impl fmt::Display for SeedLimitMet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedLimitMet::Ratio {
                ratio,
                uploaded,
                total_len,
            } => write!(
                f,
                "seed ratio {ratio} reached ({uploaded} B uploaded of a {total_len} B torrent)"
            ),
            SeedLimitMet::Time { time } => {
                write!(f, "seed time {} s reached", time.as_secs_f64())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn no_limit_is_never_met() {
        let limits = SeedLimits::default();
        assert!(!limits.is_set());
        assert_eq!(limits.met(u64::MAX, 1, Duration::MAX), None);
    }

    #[test]
    fn ratio_is_met_at_that_many_copies_uploaded() {
        let limits = SeedLimits {
            ratio: Some(1.5),
            time: None,
        };
        assert!(limits.is_set());
        assert_eq!(limits.met(3 * MIB - 1, 2 * MIB, Duration::MAX), None);
        assert_eq!(
            limits.met(3 * MIB, 2 * MIB, Duration::ZERO),
            Some(SeedLimitMet::Ratio {
                ratio: 1.5,
                uploaded: 3 * MIB,
                total_len: 2 * MIB
            })
        );
    }

    #[test]
    fn ratio_zero_is_met_at_once_and_bad_ratios_never() {
        let zero = SeedLimits {
            ratio: Some(0.0),
            time: None,
        };
        assert!(zero.met(0, MIB, Duration::ZERO).is_some());
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let limits = SeedLimits {
                ratio: Some(bad),
                time: None,
            };
            assert_eq!(limits.met(u64::MAX, MIB, Duration::MAX), None, "{bad}");
        }
    }

    #[test]
    fn time_is_met_after_that_long_seeding_on_a_virtual_clock() {
        let limits = SeedLimits {
            ratio: None,
            time: Some(Duration::from_secs(1800)),
        };
        let start = std::time::Instant::now();
        let at = |secs| (start + Duration::from_secs(secs)).saturating_duration_since(start);
        assert_eq!(limits.met(0, MIB, at(1799)), None);
        assert_eq!(
            limits.met(0, MIB, at(1800)),
            Some(SeedLimitMet::Time {
                time: Duration::from_secs(1800)
            })
        );
    }

    #[test]
    fn whichever_limit_comes_first_ends_seeding() {
        let limits = SeedLimits {
            ratio: Some(2.0),
            time: Some(Duration::from_secs(60)),
        };
        assert_eq!(limits.met(MIB, MIB, Duration::from_secs(59)), None);
        assert!(matches!(
            limits.met(MIB, MIB, Duration::from_secs(60)),
            Some(SeedLimitMet::Time { .. })
        ));
        assert!(matches!(
            limits.met(2 * MIB, MIB, Duration::from_secs(1)),
            Some(SeedLimitMet::Ratio { .. })
        ));
    }
}
