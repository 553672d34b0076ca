//! [`RetryPolicy`]: how many attempts, how long between them (full-jitter exponential backoff,
//! `Retry-After` honoured but clamped), which methods; and [`RetryBudget`], a token bucket shared
//! by retries and hedges so a sick backend cannot multiply the load.

use std::sync::Mutex;
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use super::rng::Rng;

/// The retry policy of a fleet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; capped at 5. `1` disables retries. Defaults to `3`.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter). Defaults to 50 ms.
    pub base: Duration,
    /// Longest backoff, and the cap on a server's `Retry-After`. Defaults to 2 s.
    pub cap: Duration,
    /// Retry methods that are not idempotent (`POST`, `PATCH`). Defaults to `false`: only `GET`,
    /// `HEAD`, `OPTIONS`, `TRACE`, `PUT` and `DELETE` are retried (a request that provably never
    /// left the client is retried whatever its method).
    pub retry_non_idempotent: bool,
    /// The shared budget of retries and hedges. Defaults to [`BudgetConfig::default`].
    pub budget: BudgetConfig,
}

/// The most attempts a policy may ask for.
pub const MAX_ATTEMPTS: u32 = 5;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
            retry_non_idempotent: false,
            budget: BudgetConfig::default(),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Sets [`RetryPolicy::max_attempts`] (capped at 5, at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.clamp(1, MAX_ATTEMPTS);
        self
    }

    /// Sets [`RetryPolicy::base`] and [`RetryPolicy::cap`].
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.base = base;
        self.cap = cap.max(base);
        self
    }

    /// Sets [`RetryPolicy::retry_non_idempotent`].
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry_non_idempotent = yes;
        self
    }

    /// Sets [`RetryPolicy::budget`].
    pub fn budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = budget;
        self
    }

    /// The policy with its backoff clamped to [`MAX_DURATION`](crate::MAX_DURATION).
    pub(crate) fn clamped(mut self) -> Self {
        self.base = crate::config::clamp(self.base);
        self.cap = crate::config::clamp(self.cap);
        self
    }

    /// The attempts actually allowed.
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.clamp(1, MAX_ATTEMPTS)
    }

    /// True when `method` may be sent again after it may have reached the server.
    pub(crate) fn may_retry(&self, method: &Method) -> bool {
        self.retry_non_idempotent || crate::request::is_idempotent(method)
    }

    /// The wait before retry number `retry` (1 for the first retry): full jitter, a uniform draw
    /// in `[0, min(cap, base * 2^(retry-1))]`. A server's `Retry-After`, when given, replaces it,
    /// clamped to the cap.
    pub(crate) fn backoff_for(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &Rng,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.cap);
        }
        let exp = self
            .base
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.cap);
        exp.mul_f64(rng.unit())
    }
}

/// The retry budget: a token bucket shared by the retries and hedges of a fleet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// Tokens deposited per request: the share of requests that may be retried or hedged.
    /// Defaults to `0.2`.
    pub ratio: f64,
    /// Tokens added per second whatever the traffic, so a quiet client can still retry.
    /// Defaults to `10.0`.
    pub min_per_sec: f64,
    /// Most tokens the bucket holds. Defaults to `100.0`.
    pub max_tokens: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_per_sec: 10.0,
            max_tokens: 100.0,
        }
    }
}

impl BudgetConfig {
    /// A budget of `ratio` tokens per request plus `min_per_sec` per second, holding at most
    /// `max_tokens`.
    pub fn new(ratio: f64, min_per_sec: f64, max_tokens: f64) -> Self {
        BudgetConfig {
            ratio,
            min_per_sec,
            max_tokens,
        }
    }

    /// A budget that is always empty: no retries, no hedges.
    pub fn empty() -> Self {
        BudgetConfig::new(0.0, 0.0, 0.0)
    }

    /// A budget that never runs out (for tests and for callers who bound load elsewhere).
    pub fn unlimited() -> Self {
        BudgetConfig {
            ratio: 1.0,
            min_per_sec: f64::INFINITY,
            max_tokens: f64::INFINITY,
        }
    }
}

/// The token bucket behind [`BudgetConfig`].
#[derive(Debug)]
pub(crate) struct RetryBudget {
    config: BudgetConfig,
    state: Mutex<(f64, Instant)>,
    /// The bucket holds `max_tokens`: a deposit would change nothing, so it skips the lock
    /// (the common case while members are healthy and nothing is retried).
    full: std::sync::atomic::AtomicBool,
}

impl RetryBudget {
    pub(crate) fn new(config: BudgetConfig) -> Self {
        let start = config.min_per_sec.min(config.max_tokens);
        RetryBudget {
            state: Mutex::new((
                if start.is_finite() { start } else { f64::MAX },
                Instant::now(),
            )),
            full: std::sync::atomic::AtomicBool::new(false),
            config,
        }
    }

    fn refill(&self, state: &mut (f64, Instant), now: Instant) {
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.config.min_per_sec).min(self.config.max_tokens);
        state.1 = now;
    }

    /// The bucket holds `max_tokens`: a deposit would change nothing.
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A new request deposits its share.
    pub(crate) fn deposit(&self) {
        use std::sync::atomic::Ordering;
        if self.is_full() {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = (s.0 + self.config.ratio).min(self.config.max_tokens);
        self.full
            .store(s.0 >= self.config.max_tokens, Ordering::Release);
    }

    /// Takes one token for a retry or a hedge; `false` when the budget is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s, Instant::now());
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            self.full.store(false, std::sync::atomic::Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Tokens left (for stats).
    pub(crate) fn balance(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s, Instant::now());
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_the_cap() {
        let p =
            RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_millis(350));
        let rng = Rng::new(7);
        for retry in 1..=6 {
            let ceiling =
                Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_millis(350));
            for _ in 0..200 {
                assert!(p.backoff_for(retry, None, &rng) <= ceiling);
            }
        }
        assert_eq!(
            p.backoff_for(1, Some(Duration::from_secs(10)), &rng),
            Duration::from_millis(350)
        );
        assert_eq!(
            p.backoff_for(1, Some(Duration::from_millis(20)), &rng),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn attempts_are_capped_at_five() {
        assert_eq!(RetryPolicy::default().max_attempts(50).attempts(), 5);
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
    }
}
