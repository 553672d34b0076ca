//! The fleet: one client in front of several members (a backend plus an optional base URL),
//! deciding per request which member serves it, what to do when one fails, and when to ask a
//! second one before the first answers.
//!
//! Every decision is a small state machine driven by `match`: the [`Strategy`] picks members
//! (`plan`), the [`Classifier`] judges each attempt on its head, the circuit breaker of each
//! member admits or refuses it (`breaker`), the [`RetryPolicy`] and the shared retry budget
//! decide whether another attempt starts (`retry`). `Fleet::run` walks them: an attempt
//! (`attempt`), hedged when the strategy says so (`hedge`), then the next member or the end.
//! A request whose body is a reader or a stream is sent once: never retried or hedged.

mod attempt;
mod breaker;
mod builder;
mod classify;
mod clock;
mod hedge;
mod latency;
mod member;
mod plan;
mod retry;
mod rng;
mod stats;
mod strategy;

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::headers::parse_retry_after;
pub use breaker::{BreakerConfig, BreakerState};
pub use builder::FleetBuilder;
pub use classify::Classifier;
pub use member::Member;
pub use retry::{BudgetConfig, MAX_ATTEMPTS, RetryPolicy};
pub use stats::{Latency, MemberStats};
pub use strategy::{HedgeDelay, Strategy};

use self::classify::{Judge, Verdict};
use self::clock::Clock;
use self::latency::Histogram;
use self::member::Slot;
use self::plan::Plan;
use self::retry::RetryBudget;
use self::rng::Rng;
use crate::backend::Backend;
use crate::error::{Attempt, Error, ErrorKind, Result, TimeoutPhase};
use crate::exchange::Policy;
use crate::hook::Hook;
use crate::request::Request;
use crate::response::Response;

/// The fleet behind a [`Client`](crate::Client): its members and policies.
pub struct Fleet {
    slots: Vec<Slot>,
    strategy: Strategy,
    retry: RetryPolicy,
    classifier: Judge,
    budget: RetryBudget,
    rng: Rng,
    /// Round robin's next member.
    next: std::sync::atomic::AtomicUsize,
    /// Recent latencies, for a percentile hedge delay.
    latencies: Histogram,
    clock: Clock,
    /// A member's time is tokio's (the mock's): hedge delays follow tokio's clock.
    tokio_time: bool,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field(
                "members",
                &self.slots.iter().map(|s| &*s.name).collect::<Vec<_>>(),
            )
            .field("strategy", &self.strategy)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Where a fleet request stands between attempts.
struct Walk {
    deadline: Instant,
    /// Its method and body allow sending it again after it may have reached a server.
    may_retry: bool,
    history: Vec<Attempt>,
    /// Attempts that count against the retry policy.
    counted: u32,
    /// Free retries left for attempts that provably never left the client.
    free_unsent: u32,
    /// Attempts sent (hedges included).
    sent: u32,
}

impl Fleet {
    /// The first member's backend.
    pub(crate) fn first_backend(&self) -> &Backend {
        &self.slots[0].backend
    }

    /// Per-member counters and breaker states.
    pub(crate) fn stats(&self) -> Vec<MemberStats> {
        let now = Instant::now();
        self.slots
            .iter()
            .map(|s| s.counters.snapshot(&s.name, s.breaker.state(now)))
            .collect()
    }

    /// The tokens left in the shared retry budget.
    pub(crate) fn budget_balance(&self) -> f64 {
        self.budget.balance()
    }

    fn adaptive(&self) -> bool {
        matches!(self.strategy, Strategy::Adaptive { .. })
    }

    fn percentile_hedging(&self) -> bool {
        matches!(
            self.strategy,
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { .. },
                ..
            }
        )
    }

    /// When to send a hedge and how many at most, for a hedged strategy.
    fn hedge_delay(&self) -> Option<(Duration, u32)> {
        match self.strategy {
            Strategy::Hedged { delay, max_extra } => {
                let d = match delay {
                    HedgeDelay::Fixed(d) => d,
                    HedgeDelay::Percentile { floor, .. } => {
                        self.latencies.quantile().map_or(floor, |q| q.max(floor))
                    }
                };
                Some((d, max_extra.min(3)))
            }
            _ => None,
        }
    }

    /// Runs a prepared request (its deadline set): attempts, hedges, failover and backoff,
    /// until a response or the end.
    pub(crate) async fn run(
        &self,
        policy: &Policy,
        hook: Option<&dyn Hook>,
        req: Request,
    ) -> Result<Response> {
        self.budget.deposit();
        let mut walk = Walk {
            deadline: req.deadline_or(policy.timeout_of(&req)),
            may_retry: self.retry.may_retry(&req.method) && req.body.is_replayable(),
            history: Vec::new(),
            counted: 0,
            free_unsent: self.slots.len() as u32,
            sent: 0,
        };
        let mut plan = Plan::new(self);
        let mut first = true;
        loop {
            let pick = if first {
                let choice = plan.choice(self);
                plan.first(self, choice)
            } else {
                plan.next(self)
            };
            first = false;
            let Some((slot, permit)) = pick else {
                return Err(Self::gave_up(
                    &req,
                    walk.history,
                    ErrorKind::Connect,
                    "every member's circuit breaker is open",
                ));
            };
            if walk.sent > 0 {
                self.slots[slot].counters.retry();
            }
            walk.sent += 1;
            let done = match self.hedge_delay() {
                Some(delays) if walk.may_retry && delays.1 > 0 => {
                    let picked = (slot, permit);
                    self.hedged(policy, hook, &req, &mut plan, &mut walk, picked, delays)
                        .await
                }
                _ => Some(
                    self.attempt(policy, hook, &req, slot, permit, walk.sent)
                        .await,
                ),
            };
            let Some(done) = done else {
                walk.history
                    .push(Attempt::new(&self.slots[slot].name, "deadline reached"));
                return Err(Self::gave_up(
                    &req,
                    walk.history,
                    ErrorKind::Timeout(TimeoutPhase::Total),
                    "deadline reached across the fleet's attempts",
                ));
            };
            let unsent = match done.verdict {
                Verdict::Success | Verdict::RateLimited => {
                    return done
                        .outcome
                        .map(|resp| self.served(resp, done.slot, walk.sent));
                }
                Verdict::Fatal => {
                    let err = done
                        .outcome
                        .err()
                        .unwrap_or_else(|| Error::new(ErrorKind::Body));
                    return Err(err.with_history(walk.history, walk.sent));
                }
                Verdict::Failure { unsent } => unsent,
            };
            walk.history.push(Attempt::from_outcome(
                &self.slots[done.slot].name,
                &done.outcome,
            ));
            let sent = walk.sent;
            let give_up = |history: Vec<Attempt>| match done.outcome {
                Ok(resp) => Ok(self.served(resp, done.slot, sent)),
                Err(e) => Err(e.with_history(history, sent)),
            };
            if unsent && walk.free_unsent > 0 && req.body.is_replayable() {
                // It never left the client: try the next member at once, for free.
                walk.free_unsent -= 1;
                continue;
            }
            if !req.body.is_replayable() {
                walk.history.push(Attempt::new(
                    "-",
                    "not sent again: the body is a reader or a stream, sent once",
                ));
                return give_up(walk.history);
            }
            walk.counted += 1;
            if walk.counted >= self.retry.attempts() || !(walk.may_retry || unsent) {
                return give_up(walk.history);
            }
            if !self.budget.withdraw() {
                walk.history.push(Attempt::new("-", "retry budget spent"));
                return give_up(walk.history);
            }
            let wait = self
                .retry
                .backoff_for(walk.counted, done.retry_after, &self.rng);
            if Instant::now() + wait >= walk.deadline {
                return give_up(walk.history);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `resp` as member `slot` served it, after `sent` attempts.
    fn served(&self, mut resp: Response, slot: usize, sent: u32) -> Response {
        resp.head.attempts = sent;
        resp.head.member = Some(self.slots[slot].name.clone());
        resp
    }

    /// The error that ends a request the fleet itself gave up on, with every attempt.
    fn gave_up(req: &Request, history: Vec<Attempt>, kind: ErrorKind, why: &'static str) -> Error {
        let n = history.len() as u32;
        Error::new(kind)
            .with_detail(why)
            .with_url(&req.uri)
            .with_history(history, n)
    }
}
