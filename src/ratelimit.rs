//! A token bucket: the rate limit for `--max-down` and `--max-up`.
//!
//! Layer 0: pure; the caller passes `now`. Tokens are bytes. They refill at
//! `rate` bytes per second up to `burst`; sending (or requesting) a block
//! takes its size. When the bucket is empty the loop asks
//! [`TokenBucket::ready_at`] when enough will be there and sleeps until then,
//! so a limited session never spins.

use std::time::{Duration, Instant};

/// Burst allowance in seconds of rate: small enough to keep the rate steady
/// over a few seconds, large enough for a handful of 16 KiB blocks at once.
const BURST_SECONDS: f64 = 0.5;

/// Smallest burst, so one block always fits whatever the rate.
const MIN_BURST_BYTES: f64 = 64.0 * 1024.0;

/// A byte-rate limiter.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A bucket refilling at `bytes_per_second`, starting full.
    pub fn new(bytes_per_second: u64) -> TokenBucket {
        let rate = bytes_per_second.max(1) as f64;
        let burst = (rate * BURST_SECONDS).max(MIN_BURST_BYTES);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes `bytes` tokens if that many are there; false (taking nothing) otherwise.
    pub fn try_take(&mut self, bytes: u64, now: Instant) -> bool {
        self.refill(now);
        let bytes = bytes as f64;
        if self.tokens >= bytes.min(self.burst) {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// When `bytes` tokens will be there (now if they already are).
    pub fn ready_at(&mut self, bytes: u64, now: Instant) -> Instant {
        self.refill(now);
        let missing = (bytes as f64).min(self.burst) - self.tokens;
        if missing <= 0.0 {
            return now;
        }
        now + Duration::from_secs_f64(missing / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_until_empty_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100 * 1024); // burst 64 KiB (the minimum)
        let block = 16 * 1024;
        let taken = (0..10).filter(|_| bucket.try_take(block, t0)).count();
        assert_eq!(taken, 4);
        assert!(!bucket.try_take(block, t0));
        let ready = bucket.ready_at(block, t0);
        let wait = ready.duration_since(t0).as_secs_f64();
        assert!((0.15..0.17).contains(&wait), "{wait}");
        assert!(bucket.try_take(block, ready));
    }

    #[test]
    fn long_run_rate_matches_the_limit() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(500 * 1024);
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(10) {
            if bucket.try_take(16 * 1024, now) {
                sent += 16 * 1024;
            } else {
                now = bucket.ready_at(16 * 1024, now);
            }
        }
        // The bucket starts full: half a second of rate on top of ten seconds.
        let rate = (sent as f64 - 250.0 * 1024.0) / 10.0 / 1024.0;
        assert!((495.0..=505.0).contains(&rate), "{rate} KiB/s");
    }

    #[test]
    fn a_block_larger_than_the_burst_still_passes() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1);
        assert!(bucket.try_take(1 << 20, t0));
    }
}
