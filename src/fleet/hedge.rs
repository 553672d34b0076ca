//! Hedging: a request's primary attempt, and after a delay (then again after each hedge) one
//! more on another member while the shared budget allows. The first answer that is not a
//! failure wins; the others are dropped, which cancels them. The winner's body is already
//! complete (bodies are buffered inside an attempt), so it is never cut.
//!
//! [`Hedges`] is a plain state machine polled with the primary, which its owner keeps: the
//! fleet's state machine on its stack for a later attempt, the client's own future for a
//! request's first attempt ([`HedgeFirst`]). There the primary is the same inline exchange as
//! any first attempt's, beside the hedge timer and what rebuilds the caller's request
//! ([`Recipe`]); the hedges start, boxed, only when the timer fires or the primary fails.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use tokio::time::Instant;

use super::breaker::Permit;
use super::classify::{Judge, Verdict};
use super::{AttemptEnd, Finished, First, FirstEnd, Fleet, JudgedEnd, OwnUri, Unsettled, Walk};
use crate::client::Policy;
use crate::deadline::{Expiry, Timer};
use crate::error::Result;
use crate::request::{Progress, Request};
use crate::response::Response;

/// How a hedged request's attempts ended (see [`Hedges::poll`]).
pub(super) enum Hedged {
    /// The primary attempt's outcome, which is not a failure, judged.
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

/// What a primary attempt's exchange yields: an answer as it came (a later attempt's), or as a
/// first attempt's end judged it ([`JudgedEnd`]).
pub(super) trait PrimaryEnd {
    /// The verdict on it, and the outcome.
    fn judged(self, judge: &Judge) -> (Verdict, Result<Response>);
}

impl PrimaryEnd for Result<Response> {
    fn judged(self, judge: &Judge) -> (Verdict, Result<Response>) {
        (judge.judge(&self), self)
    }
}

impl PrimaryEnd for JudgedEnd {
    fn judged(self, _: &Judge) -> (Verdict, Result<Response>) {
        match self {
            Ok(outcome) => (Verdict::Success, outcome),
            Err(unsettled) => (unsettled.verdict, unsettled.outcome),
        }
    }
}

/// The primary attempt of a hedged request, as [`Hedges::poll`] polls it.
pub(super) struct Primary<'f, 'e, P> {
    /// Its exchange, pinned by its owner, emptied when it ends.
    pub(super) fut: Pin<&'f mut Option<P>>,
    /// Its member.
    pub(super) slot: usize,
    /// Its bookkeeping, recorded when it ends, unless the owner keeps it (`None`) and records
    /// `verdict` itself.
    pub(super) end: Option<AttemptEnd<'e>>,
    /// How it ended, once it has.
    pub(super) verdict: Option<Verdict>,
}

/// Starts one hedge: [`Fleet::attempt`], as a function whose future a type parameter names (an
/// `async fn` future has no name to write).
pub(crate) type StartHedge<'a, A> = fn(&'a Fleet, &'a Policy, usize, Request, Permit<'a>, u32) -> A;

/// The hedges of one request beside its primary attempt: a hedge on another member when the
/// timer fires, again `delay` after each, while the budget allows, at most `max_extra`; each
/// boxed when it starts (one request in fifty or so), so a request that needs none carries
/// none. No timer for the deadline: every attempt ends by it on its own.
pub(crate) struct Hedges<'a, A> {
    fleet: &'a Fleet,
    policy: &'a Policy,
    /// The caller's request, its own URL: each hedge is a copy on its member's URL.
    req: Request,
    /// The walk over the members: the plan (members tried), attempts sent, the deadline.
    walk: Walk,
    timer: Timer,
    delay: Duration,
    max_extra: u32,
    /// Hedges started (or given up: no budget, no member left).
    started: u32,
    hedges: [Option<Pin<Box<A>>>; 3],
    /// The last failure (boxed: a failure is rare).
    last_failure: Option<Box<Finished>>,
    start: StartHedge<'a, A>,
}

impl<'a, A: Future<Output = Finished>> Hedges<'a, A> {
    /// Hedges for `req` on its `walk`, the first when `timer` fires; `failed` is the primary's
    /// failure when it already ended (the first hedge then starts at once).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        fleet: &'a Fleet,
        policy: &'a Policy,
        req: Request,
        walk: Walk,
        timer: Timer,
        failed: Option<Box<Finished>>,
        (delay, max_extra): (Duration, u32),
        start: StartHedge<'a, A>,
    ) -> Self {
        Hedges {
            fleet,
            policy,
            req,
            walk,
            timer,
            delay,
            max_extra,
            started: 0,
            hedges: [None, None, None],
            last_failure: failed,
            start,
        }
    }

    /// The request and its walk, once the hedging has ended.
    pub(super) fn into_parts(self) -> (Request, Walk) {
        (self.req, self.walk)
    }

    /// Polls `primary` and the hedges; returns the first outcome that is not a failure, or the
    /// last failure when every attempt failed.
    pub(super) fn poll<P>(
        &mut self,
        cx: &mut Context<'_>,
        primary: &mut Primary<'_, 'a, P>,
    ) -> Poll<Hedged>
    where
        P: Future,
        P::Output: PrimaryEnd,
    {
        let fleet = self.fleet;
        loop {
            let mut any_running = false;
            if let Some(fut) = primary.fut.as_mut().as_pin_mut() {
                match fut.poll(cx) {
                    Poll::Pending => any_running = true,
                    Poll::Ready(end) => {
                        primary.fut.set(None);
                        let (verdict, outcome) = end.judged(&fleet.classifier);
                        primary.verdict = Some(verdict);
                        if let Some(end) = primary.end.take() {
                            end.record(verdict);
                        }
                        if !matches!(verdict, Verdict::Failure { .. }) {
                            // The winner's response is complete (bodies are buffered inside an
                            // attempt): dropping the others cancels only them.
                            return Poll::Ready(Hedged::Primary(outcome, verdict));
                        }
                        self.last_failure =
                            Some(Box::new(Finished::new(primary.slot, verdict, outcome)));
                    }
                }
            }
            for slot in self.hedges.iter_mut().take(self.started as usize) {
                let Some(fut) = slot else { continue };
                match fut.as_mut().poll(cx) {
                    Poll::Pending => any_running = true,
                    Poll::Ready(done) => {
                        *slot = None;
                        match done.verdict {
                            Verdict::Failure { .. } => self.last_failure = Some(Box::new(done)),
                            _ => return Poll::Ready(Hedged::Done(done)),
                        }
                    }
                }
            }
            let can_hedge = self.started < self.max_extra;
            if can_hedge && (self.timer.poll_expired(cx).is_ready() || !any_running) {
                // A hedge, if the budget and another healthy member allow.
                let next = if fleet.budget.withdraw() {
                    self.walk.plan.hedge(fleet)
                } else {
                    None
                };
                self.started = self.max_extra.min(self.started + 1);
                if let Some((slot, permit)) = next {
                    if let Ok(r) = fleet.request_for(slot, &self.req) {
                        self.walk.sent += 1;
                        fleet.slots[slot].counters.hedge();
                        let n = self.walk.sent;
                        let fut = (self.start)(fleet, self.policy, slot, r, permit, n);
                        self.hedges[(self.started as usize - 1).min(2)] = Some(Box::pin(fut));
                        self.timer.reset(self.delay);
                        continue;
                    }
                } else {
                    // No member or no budget: no new hedge, those in flight finish.
                    self.started = self.max_extra;
                }
            }
            if !any_running {
                // Every attempt failed; at the deadline, that is the deadline's doing.
                if Instant::now() >= self.walk.deadline {
                    return Poll::Ready(Hedged::OutOfTime);
                }
                return Poll::Ready(match self.last_failure.take() {
                    Some(done) => Hedged::Done(*done),
                    None => Hedged::OutOfTime,
                });
            }
            return Poll::Pending;
        }
    }
}

/// What rebuilds a hedged request as its caller built it, should hedges start: its own URL (a
/// path moved out of the member's URL rather than dropped) and deadline; method, headers, body,
/// progress callback and own timeout copied only when it is not a plain `GET` (kept small: it
/// lives in every hedged request's future).
pub(crate) struct Recipe {
    own: Uri,
    deadline: Option<Instant>,
    extras: Option<Box<Extras>>,
}

struct Extras {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    progress: Option<Progress>,
    timeout: Option<Duration>,
}

impl Recipe {
    /// The recipe of `req`, whose own URL is `own`.
    pub(super) fn new(req: &Request, own: Uri) -> Recipe {
        let plain = req.method == Method::GET
            && req.headers.is_empty()
            && req.body.is_empty()
            && req.progress.is_none()
            && req.timeout.is_none();
        Recipe {
            own,
            deadline: req.deadline,
            extras: (!plain).then(|| {
                Box::new(Extras {
                    method: req.method.clone(),
                    headers: req.headers.clone(),
                    body: req.body.clone(),
                    progress: req.progress.clone(),
                    timeout: req.timeout,
                })
            }),
        }
    }

    /// The caller's request again, prepared as the client prepared it (deadline, the first
    /// hop's default headers), without a nudge.
    fn rebuild(self, policy: &Policy) -> Request {
        let mut req = Request::from_uri(Method::GET, self.own);
        if let Some(extras) = self.extras {
            req.method = extras.method;
            req.headers = extras.headers;
            req.body = extras.body;
            req.progress = extras.progress;
            req.timeout = extras.timeout;
        }
        req.deadline = self.deadline;
        policy.first_hop_defaults(&mut req);
        req
    }
}

/// A hedged request's first attempt beside its primary exchange, which the client's future
/// pins with the attempt's bookkeeping as it does for any first attempt: the hedge timer and
/// the request's [`Recipe`]; once the timer fires or the primary fails, the [`Hedges`], boxed.
pub(crate) struct HedgeFirst<'a, A> {
    state: HedgeState<'a, A>,
}

enum HedgeState<'a, A> {
    /// The primary runs alone until `timer` fires.
    Waiting {
        timer: Timer,
        recipe: Recipe,
        start: StartHedge<'a, A>,
    },
    /// Hedges run beside the primary, if it still runs; `verdict` is the primary's once it
    /// ended.
    Hedging {
        hedges: Box<Hedges<'a, A>>,
        verdict: Option<Verdict>,
    },
    /// Ended.
    Done,
}

/// How a hedged first attempt ends once its hedges ran: what settles it
/// ([`First::hedge_ended`]).
pub(crate) struct HedgeEnd(Box<HedgedRest>);

struct HedgedRest {
    /// The caller's request and its walk over the members.
    req: Request,
    walk: Walk,
    /// The primary's verdict, if it ended: its attempt is recorded with it (else canceled).
    verdict: Option<Verdict>,
    /// The attempt that ended it; `None` out of time.
    done: Option<Finished>,
}

impl<'a, A: Future<Output = Finished>> HedgeFirst<'a, A> {
    /// Hedges for a first attempt whose request is `req` (its member's URL put in, its own in
    /// `recipe`), the first when `timer` fires.
    pub(super) fn new(timer: Timer, recipe: Recipe, start: StartHedge<'a, A>) -> Self {
        HedgeFirst {
            state: HedgeState::Waiting {
                timer,
                recipe,
                start,
            },
        }
    }

    /// Whether the hedges run (until they do, the primary is polled as any first attempt's).
    pub(crate) fn hedging(&self) -> bool {
        !matches!(self.state, HedgeState::Waiting { .. })
    }

    /// While the primary runs alone: whether its hedge delay has passed (`cx` is woken when it
    /// does).
    pub(crate) fn due(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.state {
            HedgeState::Waiting { timer, .. } => timer.poll_expired(cx).is_ready(),
            _ => false,
        }
    }

    /// Starts the hedges beside `first`'s primary: at its hedge delay (`failed` `None`, the
    /// primary still running) or at once after it failed (`failed` its end). The caller's
    /// request is rebuilt, its walk taken on from the first attempt's plan.
    #[cold]
    #[inline(never)]
    pub(crate) fn start(&mut self, first: &First<'a>, failed: Option<Box<Unsettled>>) {
        let HedgeState::Waiting {
            timer,
            recipe,
            start,
        } = std::mem::replace(&mut self.state, HedgeState::Done)
        else {
            unreachable!("hedges start once")
        };
        let (fleet, policy) = (first.attempt.fleet, first.then.policy);
        let slot = first.attempt.slot;
        let req = recipe.rebuild(policy);
        let walk = fleet.walk_on(first.then.plan, &req, 1);
        let failed = failed.map(|u| Box::new(Finished::new(slot, u.verdict, u.outcome)));
        let verdict = failed.as_ref().map(|f| f.verdict);
        let delays = fleet.hedge_delay().unwrap_or((Duration::MAX, 0));
        let hedges = Hedges::new(fleet, policy, req, walk, timer, failed, delays, start);
        self.state = HedgeState::Hedging {
            hedges: Box::new(hedges),
            verdict,
        };
    }

    /// Once the hedges run: polls them and `primary`, `first`'s exchange (emptied when it ends
    /// or, at the end, canceled).
    #[cold]
    #[inline(never)]
    pub(crate) fn poll<P>(
        &mut self,
        cx: &mut Context<'_>,
        mut primary: Pin<&mut Option<P>>,
        first: &First<'a>,
    ) -> Poll<HedgeEnd>
    where
        P: Future<Output = JudgedEnd>,
    {
        let HedgeState::Hedging { hedges, verdict } = &mut self.state else {
            unreachable!("polled while hedging")
        };
        let mut polled = Primary {
            fut: primary.as_mut(),
            slot: first.attempt.slot,
            end: None,
            verdict: *verdict,
        };
        let hedged = hedges.poll(cx, &mut polled);
        *verdict = polled.verdict;
        let Poll::Ready(hedged) = hedged else {
            return Poll::Pending;
        };
        // Whatever still runs is canceled: the primary here, the hedges with their box.
        primary.set(None);
        let HedgeState::Hedging { hedges, verdict } =
            std::mem::replace(&mut self.state, HedgeState::Done)
        else {
            unreachable!()
        };
        let (req, walk) = hedges.into_parts();
        Poll::Ready(HedgeEnd(Box::new(HedgedRest {
            req,
            walk,
            verdict,
            done: hedged.finished(first.attempt.slot),
        })))
    }
}

impl HedgeEnd {
    /// Settles a first attempt whose hedges ran, `first` its bookkeeping: the request's end, or
    /// the state to resume from.
    pub(super) fn settle(self, first: First<'_>) -> FirstEnd<'_> {
        let First { then, attempt } = first;
        let (fleet, slot) = (attempt.fleet, attempt.slot);
        let HedgedRest {
            req,
            walk,
            verdict,
            done,
        } = *self.0;
        match verdict {
            Some(verdict) => attempt.record(verdict),
            // Canceled: a hedge won, or the deadline passed.
            None => drop(attempt),
        }
        match done {
            Some(done) => super::Resume::after(fleet, then.policy, walk, OwnUri::Same, req, done),
            None => Ok(Err(fleet.out_of_time(&req, walk.history, slot))),
        }
    }
}
