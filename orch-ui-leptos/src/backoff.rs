//! When to try the server again after the connection dropped: exponential backoff from 1 s to 30 s,
//! with jitter so many open pages do not all come back at the same instant.

/// The first wait, in milliseconds.
pub const BASE_MS: u64 = 1_000;
/// The longest wait, in milliseconds.
pub const MAX_MS: u64 = 30_000;

/// Reconnect delays: 1 s, 2 s, 4 s, … up to 30 s, each ±20 %; [`Backoff::reset`] once connected.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// A backoff at its first attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// The wait before the next attempt; `random` is uniform in `[0, 1)` (e.g. `Math.random()`).
    pub fn next_delay(&mut self, random: f64) -> u64 {
        let exp = BASE_MS.saturating_mul(1u64 << self.attempt.min(16)).min(MAX_MS);
        self.attempt = self.attempt.saturating_add(1);
        let r = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.5 };
        let jittered = exp as f64 * (0.8 + 0.4 * r);
        (jittered as u64).clamp(BASE_MS * 4 / 5, MAX_MS)
    }

    /// Attempts made since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_one_second_to_thirty_and_stays_there() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..10).map(|_| b.next_delay(0.5)).collect();
        assert_eq!(&delays[..5], &[1_000, 2_000, 4_000, 8_000, 16_000]);
        assert!(delays[5..].iter().all(|d| *d == 30_000), "{delays:?}");
        assert_eq!(b.attempt(), 10);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_never_exceeds_the_cap() {
        let mut low = Backoff::new();
        let mut high = Backoff::new();
        assert_eq!(low.next_delay(0.0), 800);
        assert_eq!(high.next_delay(0.999_999), 1_199);
        for _ in 0..20 {
            assert!(high.next_delay(0.999_999) <= MAX_MS);
        }
        let mut odd = Backoff::new();
        assert_eq!(odd.next_delay(f64::NAN), 1_000);
    }

    #[test]
    fn reset_starts_again_at_one_second() {
        let mut b = Backoff::new();
        for _ in 0..6 {
            b.next_delay(0.5);
        }
        b.reset();
        assert_eq!(b.next_delay(0.5), 1_000);
    }
}
