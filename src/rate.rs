//! A transfer-rate meter: bytes per second over the last few seconds.
//!
//! Layer 0: pure; the caller passes `now`. Used for pipelining (how many
//! requests to keep in flight to a peer), choking (who gives us most) and the
//! status line.

use std::time::{Duration, Instant};

/// Seconds of history the rate is averaged over: long enough to smooth
/// bursts, short enough that a peer that stops shows it within seconds.
const WINDOW_SECS: usize = 5;

/// Bytes per second over the last five whole seconds (and the
/// current partial one).
#[derive(Debug, Clone)]
pub struct RateMeter {
    start: Option<Instant>,
    /// Bytes in each one-second bucket, indexed by second number modulo the window.
    buckets: [u64; WINDOW_SECS],
    /// The second number the newest bucket belongs to.
    newest: u64,
    total: u64,
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateMeter {
    /// A meter that has seen nothing.
    pub fn new() -> RateMeter {
        RateMeter {
            start: None,
            buckets: [0; WINDOW_SECS],
            newest: 0,
            total: 0,
        }
    }

    /// Records `bytes` moved at `now`.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        let second = self.advance(now);
        if let Some(bucket) = self.buckets.get_mut(slot(second)) {
            *bucket += bytes;
        }
        self.total += bytes;
    }

    /// Bytes per second at `now`.
    pub fn rate(&mut self, now: Instant) -> u64 {
        let Some(start) = self.start else { return 0 };
        self.advance(now);
        // The buckets cover the whole seconds before this one plus the part
        // of this second that has passed.
        let elapsed = now.saturating_duration_since(start);
        let this_second = Duration::from_nanos(u64::from(elapsed.subsec_nanos()));
        let window = Duration::from_secs(WINDOW_SECS as u64 - 1) + this_second;
        let span = elapsed
            .min(window)
            .max(Duration::from_millis(500))
            .as_secs_f64();
        (self.buckets.iter().sum::<u64>() as f64 / span) as u64
    }

    /// Bytes recorded since the meter was made.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Moves the window to the second `now` falls in, clearing skipped buckets.
    fn advance(&mut self, now: Instant) -> u64 {
        let start = *self.start.get_or_insert(now);
        let second = now.saturating_duration_since(start).as_secs();
        let stale = second.saturating_sub(self.newest).min(WINDOW_SECS as u64);
        for s in 0..stale {
            if let Some(bucket) = self.buckets.get_mut(slot(second - s)) {
                *bucket = 0;
            }
        }
        self.newest = self.newest.max(second);
        second
    }
}

fn slot(second: u64) -> usize {
    usize::try_from(second % WINDOW_SECS as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_is_measured() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        for ms in (0..10_000).step_by(100) {
            meter.add(10_000, t0 + Duration::from_millis(ms));
        }
        let rate = meter.rate(t0 + Duration::from_millis(10_000));
        assert!((80_000..=120_000).contains(&rate), "{rate}");
        assert_eq!(meter.total(), 1_000_000);
    }

    #[test]
    fn rate_decays_to_zero_when_traffic_stops() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        meter.add(1_000_000, t0);
        assert!(meter.rate(t0 + Duration::from_millis(900)) > 0);
        assert_eq!(meter.rate(t0 + Duration::from_secs(7)), 0);
    }

    #[test]
    fn new_meter_reads_zero() {
        assert_eq!(RateMeter::new().rate(Instant::now()), 0);
    }
}
