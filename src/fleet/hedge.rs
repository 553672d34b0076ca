//! Hedging: a request's first attempt, and after a delay (then again after each hedge) one
//! more on another member while the shared budget allows. The first answer that is not a
//! failure wins; the others are dropped, which cancels them. The winner's body is already
//! complete (bodies are buffered inside an attempt), so it is never cut.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::Permit;
use super::classify::Verdict;
use super::plan::Plan;
use super::{AttemptEnd, Finished, Fleet, OwnUri};
use crate::client::Policy;
use crate::deadline::{Expiry, Timer};
use crate::error::Result;
use crate::request::Request;
use crate::response::Response;

/// How a hedged request's attempts ended (see [`Fleet::hedge`]).
pub(super) enum Hedged {
    /// The primary attempt's outcome, which is not a failure, judged and recorded.
    Primary(Result<Response>, Verdict),
    /// A hedge's outcome that is not a failure, or the last failure when every attempt failed.
    Done(Finished),
    /// Every attempt failed and the deadline has passed.
    OutOfTime,
}

impl Hedged {
    /// The attempt that ends the hedging, the primary's on member `slot`; `None` out of time.
    pub(super) fn finished(self, slot: usize) -> Option<Finished> {
        match self {
            Hedged::Primary(outcome, verdict) => Some(Finished::new(slot, verdict, outcome)),
            Hedged::Done(done) => Some(done),
            Hedged::OutOfTime => None,
        }
    }
}

/// The primary attempt of a hedged request, as [`Fleet::hedge`] polls it.
pub(super) struct Primary<'f, 'e, P> {
    /// Its exchange, pinned by the caller, emptied when it ends.
    pub(super) fut: Pin<&'f mut Option<P>>,
    /// Its member.
    pub(super) slot: usize,
    /// Its bookkeeping, recorded when it ends, unless the caller keeps it (`None`) and records
    /// `verdict` itself.
    pub(super) end: Option<AttemptEnd<'e>>,
    /// How it ended, once it has.
    pub(super) verdict: Option<Verdict>,
}

/// Empty hedge slots, typed after the attempt future `start` makes (an `async fn` future has
/// no name to write).
#[allow(clippy::type_complexity)]
fn empty_slots<'p, F>(
    _: &impl Fn(usize, Request, Permit<'p>, u32) -> F,
) -> [Option<Pin<Box<F>>>; 3] {
    [None, None, None]
}

impl Fleet {
    /// Polls `primary`, the request's first attempt, starting a hedge on another member when
    /// `timer` fires and again
    /// `delay` after each, while the budget allows; returns the first outcome that is not a
    /// failure, or the last failure when every attempt failed. `failed` is the primary's
    /// failure when it already ended (the hedge then starts at once). `req` is the caller's
    /// request, its own URL given back by `own`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hedge<'f, 'p: 'f, 'e: 'f, P: Future<Output = Result<Response>>>(
        &'f self,
        policy: &'f Policy,
        req: &'f Request,
        own: &'f OwnUri,
        plan: &'f mut Plan,
        primary: &'f mut Primary<'p, 'e, P>,
        mut timer: Timer,
        failed: Option<Box<Finished>>,
        delay: Duration,
        max_extra: u32,
        sent: &'f mut u32,
        deadline: Instant,
    ) -> impl Future<Output = Hedged> + 'f {
        // The primary attempt is pinned by the caller; a hedge (one request in fifty or so) gets
        // its own allocation when it starts, so a hedged request that needs none carries one
        // attempt, not four. No timer for the deadline: every attempt ends by it on its own.
        let start = |slot, r, permit, n| self.attempt(policy, slot, r, permit, n);
        let mut hedges = empty_slots(&start);
        let mut started = 0u32;
        // Boxed: a failure is rare, and this future lives inside every fleet request's.
        let mut last_failure = failed;
        // A plain `poll_fn` rather than an `async fn`: its state is stored once, in the closure.
        std::future::poll_fn(move |cx| {
            loop {
                let mut any_running = false;
                if let Some(fut) = primary.fut.as_mut().as_pin_mut() {
                    match fut.poll(cx) {
                        Poll::Pending => any_running = true,
                        Poll::Ready(outcome) => {
                            primary.fut.set(None);
                            let verdict = self.classifier.judge(&outcome);
                            let slot = primary.slot;
                            primary.verdict = Some(verdict);
                            if let Some(end) = primary.end.take() {
                                end.record(verdict);
                            }
                            if !matches!(verdict, Verdict::Failure { .. }) {
                                // The winner's response is complete (bodies are buffered inside
                                // an attempt): dropping the others cancels only them.
                                return Poll::Ready(Hedged::Primary(outcome, verdict));
                            }
                            last_failure = Some(Box::new(Finished::new(slot, verdict, outcome)));
                        }
                    }
                }
                for slot in hedges.iter_mut().take(started as usize) {
                    let Some(fut) = slot else { continue };
                    match fut.as_mut().poll(cx) {
                        Poll::Pending => any_running = true,
                        Poll::Ready(done) => {
                            *slot = None;
                            match done.verdict {
                                Verdict::Failure { .. } => last_failure = Some(Box::new(done)),
                                _ => return Poll::Ready(Hedged::Done(done)),
                            }
                        }
                    }
                }
                let can_hedge = started < max_extra;
                if can_hedge && (timer.poll_expired(cx).is_ready() || !any_running) {
                    // A hedge, if the budget and another healthy member allow.
                    let next = if self.budget.withdraw() {
                        plan.hedge(self)
                    } else {
                        None
                    };
                    started = max_extra.min(started + 1);
                    if let Some((slot, permit)) = next {
                        if let Ok(r) = self.request_for_own(slot, req, own) {
                            *sent += 1;
                            self.slots[slot].counters.hedge();
                            let fut = start(slot, r, permit, *sent);
                            hedges[(started as usize - 1).min(2)] = Some(Box::pin(fut));
                            timer.reset(delay);
                            continue;
                        }
                    } else {
                        // No member or no budget: no new hedge, those in flight finish.
                        started = max_extra;
                    }
                }
                if !any_running {
                    // Every attempt failed; at the deadline, that is the deadline's doing.
                    if Instant::now() >= deadline {
                        return Poll::Ready(Hedged::OutOfTime);
                    }
                    return Poll::Ready(match last_failure.take() {
                        Some(done) => Hedged::Done(*done),
                        None => Hedged::OutOfTime,
                    });
                }
                return Poll::Pending;
            }
        })
    }
}
