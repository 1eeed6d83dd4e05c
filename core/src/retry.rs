//! The retry policy, without IO or clock: given what failed and how often, how long to wait.
//!
//! Transient failures back off exponentially with full jitter (AWS's "full jitter": a uniform
//! wait between zero and the exponential cap); throttling waits longer, and at least what
//! Meta asks for (`Retry-After`, `estimated_time_to_regain_access`), plus up to a tenth more
//! at random. Attempts and total time
//! are capped. The caller supplies the randomness, so every decision is reproducible.

use crate::response::ErrorKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How many times and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The first backoff cap for transient failures, in milliseconds.
    pub base_delay_ms: u64,
    /// The largest backoff for transient failures, in milliseconds.
    pub max_delay_ms: u64,
    /// The first cool-down after throttling, in milliseconds (doubles each time).
    pub throttle_delay_ms: u64,
    /// The largest cool-down after throttling, in milliseconds.
    pub max_throttle_delay_ms: u64,
    /// Total time one request may spend in retries, in milliseconds.
    pub max_elapsed_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 200,
            max_delay_ms: 10_000,
            throttle_delay_ms: 30_000,
            max_throttle_delay_ms: 300_000,
            max_elapsed_ms: 600_000,
        }
    }
}

impl RetryPolicy {
    /// Checks the settings: at least one attempt, delays in order and under a day.
    pub fn check(&self) -> Result<(), String> {
        const DAY_MS: u64 = 86_400_000;
        if self.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        if self.base_delay_ms > self.max_delay_ms
            || self.throttle_delay_ms > self.max_throttle_delay_ms
        {
            return Err("retry: a first delay must not exceed its maximum".into());
        }
        if [
            self.max_delay_ms,
            self.max_throttle_delay_ms,
            self.max_elapsed_ms,
        ]
        .iter()
        .any(|&d| d > DAY_MS)
        {
            return Err("retry: delays are limited to one day (86400000 ms)".into());
        }
        Ok(())
    }

    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before the next attempt, or `None` to give up. `attempts` is how many were
    /// made, `elapsed` how long they took, `asked` Meta's own wait, `random` any u64.
    pub fn next_delay(
        &self,
        kind: ErrorKind,
        attempts: u32,
        elapsed: Duration,
        asked: Option<Duration>,
        random: u64,
    ) -> Option<Duration> {
        if !kind.is_retryable() || attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(30);
        // What Meta asks for is honoured within the retry budget; a longer (or hostile)
        // `Retry-After` ends the retries instead of parking the sender (or overflowing).
        let asked = asked.map(|a| {
            a.min(
                Duration::from_millis(self.max_elapsed_ms).saturating_add(Duration::from_millis(1)),
            )
        });
        let delay = if kind == ErrorKind::Throttled {
            let cool = self
                .throttle_delay_ms
                .saturating_mul(1 << exp)
                .min(self.max_throttle_delay_ms);
            let cool = Duration::from_millis(cool);
            let wait = asked.map_or(cool, |a| a.max(cool));
            // Up to a tenth more, at random: senders throttled together (one app's many
            // destinations, threads) do not all come back at the same instant. Never so much
            // that a wait within the budget would no longer fit in it.
            let spread = u64::try_from(wait.as_millis() / 10).unwrap_or(u64::MAX);
            let room = Duration::from_millis(self.max_elapsed_ms)
                .saturating_sub(elapsed)
                .saturating_sub(wait);
            let extra = Duration::from_millis(random % spread.saturating_add(1)).min(room);
            wait.saturating_add(extra)
        } else {
            let cap = self
                .base_delay_ms
                .saturating_mul(1 << exp)
                .min(self.max_delay_ms);
            let jittered = Duration::from_millis(random % cap.saturating_add(1).max(1));
            asked.map_or(jittered, |a| a.max(jittered))
        };
        let total = elapsed.checked_add(delay)?;
        (total <= Duration::from_millis(self.max_elapsed_ms)).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_jittered_and_bounded() {
        let p = RetryPolicy::default();
        let z = Duration::ZERO;
        assert_eq!(p.next_delay(ErrorKind::Payload, 1, z, None, 7), None);
        assert_eq!(p.next_delay(ErrorKind::InvalidToken, 1, z, None, 7), None);
        assert_eq!(
            p.next_delay(ErrorKind::Transient, 5, z, None, 7),
            None,
            "attempt cap"
        );
        for attempts in 1..5 {
            for r in [0, 1, 12345, u64::MAX] {
                let d = p
                    .next_delay(ErrorKind::Transient, attempts, z, None, r)
                    .unwrap();
                let cap = (200u64 << (attempts - 1)).min(10_000);
                assert!(d <= Duration::from_millis(cap), "{d:?} > {cap}");
            }
        }
        // Throttling waits at least the cool-down, and at least what Meta asked, plus up to a
        // tenth more at random.
        let d = p.next_delay(ErrorKind::Throttled, 1, z, None, 0).unwrap();
        assert_eq!(d, Duration::from_secs(30));
        let d = p.next_delay(ErrorKind::Throttled, 1, z, Some(Duration::from_secs(90)), 0);
        assert_eq!(d, Some(Duration::from_secs(90)));
        let waits: std::collections::BTreeSet<Duration> = [1, 2, 999, 3000, 12345, u64::MAX]
            .into_iter()
            .map(|r| p.next_delay(ErrorKind::Throttled, 1, z, None, r).unwrap())
            .collect();
        assert!(waits.len() > 4, "{waits:?}");
        for w in &waits {
            assert!(
                *w > Duration::from_secs(30) && *w <= Duration::from_secs(33),
                "{w:?}"
            );
        }
        let d = p.next_delay(
            ErrorKind::Throttled,
            1,
            z,
            Some(Duration::from_secs(90)),
            9_000,
        );
        assert_eq!(d, Some(Duration::from_secs(99)));
        // A wait Meta asks for that fits the budget is always honoured: the random extra
        // shrinks to the room left.
        let asked = Some(Duration::from_secs(580));
        for r in [0, 19_999, 20_000, 57_999, u64::MAX] {
            let d = p.next_delay(ErrorKind::Throttled, 1, z, asked, r).unwrap();
            assert!(
                d >= Duration::from_secs(580) && d <= Duration::from_secs(600),
                "{d:?}"
            );
        }
        let ten = Duration::from_secs(10);
        let d = p
            .next_delay(ErrorKind::Throttled, 1, ten, asked, 57_999)
            .unwrap();
        assert_eq!(d, Duration::from_secs(590));
        // Total time cap.
        let late = Duration::from_millis(p.max_elapsed_ms);
        assert_eq!(p.next_delay(ErrorKind::Throttled, 1, late, None, 0), None);
        assert_eq!(
            RetryPolicy::none().next_delay(ErrorKind::Transient, 1, z, None, 0),
            None
        );
    }
}
