//! One attempt of a fleet request: sent to a member through the exchange (the hook around it),
//! judged by the classifier, and recorded in the member's breaker, counters and latency
//! estimate, with a `tracing` span. Dropped before it ends (a lost hedge, a dropped request),
//! it counts as canceled and gives its half-open trial slot back.

use std::time::Duration;

use tokio::time::Instant;

use super::Fleet;
use super::breaker::{Permit, Trial};
use super::classify::Verdict;
use crate::error::Result;
use crate::exchange::Policy;
use crate::hook::{After, Before, Hook};
use crate::request::Request;
use crate::response::Response;

/// The end of one attempt, judged.
pub(super) struct Finished {
    pub(super) slot: usize,
    pub(super) verdict: Verdict,
    pub(super) outcome: Result<Response>,
    /// The server's `Retry-After`, for an answer that is not a success.
    pub(super) retry_after: Option<Duration>,
}

/// An attempt under way, to record when it ends (see the module docs).
struct Record<'a> {
    fleet: &'a Fleet,
    slot: usize,
    n: u32,
    trial: Option<Trial>,
    start: Instant,
    recorded: bool,
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let s = &self.fleet.slots[self.slot];
        if self.fleet.adaptive() {
            s.ewma.cancel();
        }
        s.counters.canceled();
        if let Some(trial) = self.trial {
            s.breaker.release(trial);
        }
    }
}

impl Fleet {
    /// Attempt `n` of `req` on member `slot`, admitted by its breaker's `permit`.
    pub(super) async fn attempt(
        &self,
        policy: &Policy,
        hook: Option<&dyn Hook>,
        req: &Request,
        slot: usize,
        permit: Permit<'_>,
        n: u32,
    ) -> Finished {
        let s = &self.slots[slot];
        s.counters.request();
        if self.adaptive() {
            s.ewma.start();
        }
        let mut record = Record {
            fleet: self,
            slot,
            n,
            trial: permit.hand_over(),
            start: Instant::now(),
            recorded: false,
        };
        let outcome = match hook {
            None => match s.url_for(&req.uri) {
                Ok(uri) => policy.exchange(&s.backend, req, &uri).await,
                Err(e) => Err(e),
            },
            Some(hook) => self.hooked(policy, hook, req, slot, n).await,
        };
        record.recorded = true;
        self.judge(&record, outcome)
    }

    /// An attempt with the hook around it: the request copied for it (the hook may change it),
    /// the member's URL in it.
    async fn hooked(
        &self,
        policy: &Policy,
        hook: &dyn Hook,
        req: &Request,
        slot: usize,
        n: u32,
    ) -> Result<Response> {
        let s = &self.slots[slot];
        let mut own = req.for_attempt();
        own.uri = s.url_for(&req.uri)?;
        let mut before = Before {
            member: Some(&s.name),
            number: n,
            request: &mut own,
        };
        hook.before(&mut before).await?;
        let start = Instant::now();
        let outcome = policy.exchange(&s.backend, &own, &own.uri).await;
        hook.after(&After {
            request: &own,
            member: Some(&s.name),
            number: n,
            latency: start.elapsed(),
            outcome: outcome.as_ref(),
        });
        outcome
    }

    /// Judges an attempt's outcome and records it in the member's breaker, counters and latency.
    fn judge(&self, record: &Record<'_>, outcome: Result<Response>) -> Finished {
        let (slot, trial) = (record.slot, record.trial);
        let s = &self.slots[slot];
        let verdict = self.classifier.judge(&outcome);
        let latency = record.start.elapsed();
        s.counters.ended(latency);
        if self.adaptive() {
            s.ewma.finish(
                u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
                self.clock.now(),
            );
        }
        let failed = match verdict {
            Verdict::Success => {
                if self.percentile_hedging() {
                    self.latencies.record(latency);
                }
                Some(false)
            }
            Verdict::Failure { .. } => {
                s.counters.failure();
                Some(true)
            }
            Verdict::RateLimited => {
                s.counters.rate_limited();
                Some(false)
            }
            // Bad input says nothing about the member's health.
            Verdict::Fatal => None,
        };
        match (failed, trial) {
            (Some(failed), _) => s.breaker.record(trial, failed, latency, &self.rng),
            (None, Some(trial)) => s.breaker.release(trial),
            (None, None) => {}
        }
        tracing::debug_span!(
            "httpfleet.attempt",
            member = &*s.name,
            attempt = record.n,
            outcome = ?verdict,
            latency_us = latency.as_micros() as u64,
        )
        .in_scope(|| tracing::debug!("attempt ended"));
        let retry_after = match &outcome {
            Ok(resp) if verdict != Verdict::Success => resp.retry_after(),
            _ => None,
        };
        Finished {
            slot,
            verdict,
            outcome,
            retry_after,
        }
    }
}
