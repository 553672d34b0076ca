//! Hedging: a request's primary attempt, and after a delay (then again after each hedge) one
//! more on another member while the shared budget allows, at most `max_extra`.
//!
//! The first answer whose head is not a failure wins: its response is returned with its body
//! still to read, and the other attempts are dropped, which cancels them (their connections
//! closed, their attempts counted as canceled). Once the winner's head is returned nothing is
//! sent again: what its body does later is the caller's to see.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::attempt::Finished;
use super::breaker::Permit;
use super::classify::Verdict;
use super::plan::Plan;
use super::{Fleet, Walk};
use crate::deadline::{Expiry, Timer};
use crate::exchange::Policy;
use crate::hook::Hook;
use crate::request::Request;

/// An attempt running in a race.
type Running<'a> = Pin<Box<dyn Future<Output = Finished> + Send + 'a>>;

impl Fleet {
    /// Races the primary attempt on member `slot` against hedges sent `delay` apart, at most
    /// `max_extra`: the first attempt that is not a failure, or the last failure when every
    /// one failed; `None` when they failed and the deadline has passed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn hedged<'a>(
        &'a self,
        policy: &'a Policy,
        hook: Option<&'a dyn Hook>,
        req: &'a Request,
        plan: &mut Plan,
        walk: &mut Walk,
        (slot, permit): (usize, Permit<'a>),
        (delay, max_extra): (Duration, u32),
    ) -> Option<Finished> {
        let mut running: Vec<Running<'a>> = vec![Box::pin(
            self.attempt(policy, hook, req, slot, permit, walk.sent),
        )];
        let mut timer = Timer::after(delay, self.tokio_time);
        let mut hedges = 0;
        let mut last_failure: Option<Finished> = None;
        std::future::poll_fn(|cx| {
            loop {
                let mut i = 0;
                while i < running.len() {
                    match running[i].as_mut().poll(cx) {
                        Poll::Pending => i += 1,
                        Poll::Ready(done) => {
                            drop(running.swap_remove(i));
                            if !matches!(done.verdict, Verdict::Failure { .. }) {
                                // The others are dropped with `running`: canceled.
                                return Poll::Ready(Some(done));
                            }
                            last_failure = Some(done);
                        }
                    }
                }
                if hedges < max_extra && (running.is_empty() || timer.poll_expired(cx).is_ready()) {
                    hedges += 1;
                    // A hedge, if the budget and another healthy member allow.
                    let next = if self.budget.withdraw() {
                        plan.hedge(self)
                    } else {
                        None
                    };
                    match next {
                        Some((slot, permit)) => {
                            walk.sent += 1;
                            self.slots[slot].counters.hedge();
                            let n = walk.sent;
                            running
                                .push(Box::pin(self.attempt(policy, hook, req, slot, permit, n)));
                            timer.reset(delay);
                            continue;
                        }
                        // No member or no budget: no new hedge, those in flight finish.
                        None => hedges = max_extra,
                    }
                }
                if running.is_empty() {
                    // Every attempt failed; at the deadline, that is the deadline's doing.
                    if Instant::now() >= walk.deadline {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(last_failure.take());
                }
                return Poll::Pending;
            }
        })
        .await
    }
}
