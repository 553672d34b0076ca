//! Per-member counters, read with [`Client::stats`](crate::Client::stats).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::breaker::BreakerState;
use super::latency::Window;

/// Latencies kept per member for its percentiles.
const LATENCIES_KEPT: usize = 1024;

/// What one fleet member has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStats {
    /// The member's name.
    pub name: String,
    /// Attempts sent to it (first tries, retries and hedges).
    pub requests: u64,
    /// Attempts that failed (by the fleet's classifier).
    pub failures: u64,
    /// Attempts that were retries after another attempt failed.
    pub retries: u64,
    /// Attempts that were hedges.
    pub hedges: u64,
    /// Attempts canceled before they ended (lost hedges, dropped requests).
    pub canceled: u64,
    /// 429 and 418 answers.
    pub rate_limited: u64,
    /// The breaker's state now.
    pub breaker: BreakerState,
    /// Percentiles of its recent attempts' latencies; `None` before one has ended.
    pub latency: Option<Latency>,
}

/// Percentiles (nearest rank) of a member's latest attempt latencies: the last 1,024 attempts
/// that ended, whatever their outcome, from the request's start to its response head or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// Attempts the percentiles are of.
    pub samples: usize,
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

#[derive(Debug)]
pub(crate) struct Counters {
    requests: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    hedges: AtomicU64,
    canceled: AtomicU64,
    rate_limited: AtomicU64,
    latencies: Window,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            hedges: AtomicU64::new(0),
            canceled: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            latencies: Window::new(LATENCIES_KEPT),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn request(&self) {
        bump(&self.requests);
    }
    pub(crate) fn failure(&self) {
        bump(&self.failures);
    }
    pub(crate) fn retry(&self) {
        bump(&self.retries);
    }
    pub(crate) fn hedge(&self) {
        bump(&self.hedges);
    }
    pub(crate) fn canceled(&self) {
        bump(&self.canceled);
    }
    pub(crate) fn rate_limited(&self) {
        bump(&self.rate_limited);
    }
    /// An attempt ended after `latency`.
    pub(crate) fn ended(&self, latency: Duration) {
        self.latencies.record(latency);
    }

    pub(crate) fn snapshot(&self, name: &str, breaker: BreakerState) -> MemberStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MemberStats {
            name: name.to_owned(),
            requests: get(&self.requests),
            failures: get(&self.failures),
            retries: get(&self.retries),
            hedges: get(&self.hedges),
            canceled: get(&self.canceled),
            rate_limited: get(&self.rate_limited),
            breaker,
            latency: self.latencies.quantiles([0.5, 0.9, 0.99, 1.0]).map(
                |(samples, [p50, p90, p99, max])| Latency {
                    samples,
                    p50,
                    p90,
                    p99,
                    max,
                },
            ),
        }
    }
}
