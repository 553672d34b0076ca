//! Per-member counters, read with [`Client::stats`](crate::Client::stats).

use std::sync::atomic::{AtomicU64, Ordering};

use super::breaker::BreakerState;

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
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    hedges: AtomicU64,
    canceled: AtomicU64,
    rate_limited: AtomicU64,
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
        }
    }
}
