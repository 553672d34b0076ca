//! Hedging: a request's primary attempt, and after a delay (then again after each hedge) one
//! more on another member while the shared budget allows. The first answer that is not a
//! failure wins; the others are dropped, which cancels them. The winner's body is already
//! complete (bodies are buffered inside an attempt), so it is never cut.
//!
//! [`Hedges`] is a plain state machine polled beside the primary, which its owner keeps and
//! polls: the fleet's state machine on its stack for a later attempt, the client's own future
//! for a request's first attempt ([`First::exchange_hedged`]). There the primary is the same
//! inline exchange as any first attempt's, borrowing the caller's request, raced against the
//! hedge timer alone; the hedges start, boxed, only when the timer fires or the primary fails,
//! each a copy of the request made then ([`AfterPrimary`]).

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::Permit;
use super::classify::Verdict;
use super::{Finished, First, Fleet, OwnUri, Recorded, Resume, Then, Walk};
use crate::backend::Backend;
use crate::client::Policy;
use crate::deadline::{Expiry, Timer};
use crate::error::Result;
use crate::request::Request;
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

/// Starts one hedge: [`Fleet::attempt`], as a function whose future a type parameter names (an
/// `async fn` future has no name to write); the function is a value of its own type, which
/// takes no room.
pub(crate) trait StartHedge<'a, A>:
    Fn(&'a Fleet, &'a Policy, usize, Request, Permit<'a>, u32) -> A + Copy
{
}

impl<'a, A, S> StartHedge<'a, A> for S where
    S: Fn(&'a Fleet, &'a Policy, usize, Request, Permit<'a>, u32) -> A + Copy
{
}

/// The hedges of one request beside its primary attempt, which their owner polls: a hedge on
/// another member when the timer fires, again `delay` after each, while the budget allows, at
/// most `max_extra`; each boxed when it starts (one request in fifty or so), so a request that
/// needs none carries none. No timer for the deadline: every attempt ends by it on its own.
pub(crate) struct Hedges<'a, A, S> {
    fleet: &'a Fleet,
    policy: &'a Policy,
    /// The caller's request, its own URL: each hedge is a copy on its member's URL.
    req: Request,
    /// The walk over the members: the plan (members tried), attempts sent, the deadline.
    walk: Walk,
    /// The primary attempt's member.
    primary: usize,
    delay: Duration,
    max_extra: u32,
    /// Hedges started (or given up: no budget, no member left).
    started: u32,
    hedges: [Option<Pin<Box<A>>>; 3],
    /// The last failure (boxed: a failure is rare).
    last_failure: Option<Box<Finished>>,
    start: S,
}

impl<'a, A: Future<Output = Finished>, S: StartHedge<'a, A>> Hedges<'a, A, S> {
    /// Hedges for `req` on its `walk` beside a primary attempt on member `primary`.
    pub(super) fn new(
        fleet: &'a Fleet,
        policy: &'a Policy,
        req: Request,
        walk: Walk,
        primary: usize,
        (delay, max_extra): (Duration, u32),
        start: S,
    ) -> Self {
        Hedges {
            fleet,
            policy,
            req,
            walk,
            primary,
            delay,
            max_extra,
            started: 0,
            hedges: [None, None, None],
            last_failure: None,
            start,
        }
    }

    /// The request and its walk, once the hedging has ended.
    pub(super) fn into_parts(self) -> (Request, Walk) {
        (self.req, self.walk)
    }

    /// Polls `primary` (emptied when it ends) and, beside it, the hedges (see [`Hedges::poll`]).
    pub(super) fn poll_beside<P>(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Timer,
        mut primary: Pin<&mut Option<P>>,
    ) -> Poll<Hedged>
    where
        P: Future<Output = Result<Response>>,
    {
        let mut ended = None;
        if let Some(fut) = primary.as_mut().as_pin_mut() {
            if let Poll::Ready(outcome) = fut.poll(cx) {
                primary.set(None);
                ended = Some(outcome);
            }
        }
        self.poll(cx, timer, primary.is_some(), ended)
    }

    /// Polls the hedges beside the primary attempt, which their owner polls: `running` while it
    /// runs, `ended` its outcome when it has just ended; `timer` fires when the next hedge is
    /// due. Returns the first outcome that is not a failure, or the last failure when every
    /// attempt failed.
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Timer,
        running: bool,
        ended: Option<Result<Response>>,
    ) -> Poll<Hedged> {
        let fleet = self.fleet;
        if let Some(outcome) = ended {
            let verdict = fleet.classifier.judge(&outcome);
            if !matches!(verdict, Verdict::Failure { .. }) {
                // The winner's response is complete (bodies are buffered inside an attempt):
                // dropping the others cancels only them.
                return Poll::Ready(Hedged::Primary(outcome, verdict));
            }
            self.last_failure = Some(Box::new(Finished::new(self.primary, verdict, outcome)));
        }
        loop {
            let mut any_running = running;
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
            if can_hedge && (timer.poll_expired(cx).is_ready() || !any_running) {
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
                        timer.reset(self.delay);
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

impl<'a> First<'a> {
    /// A hedged request's first attempt: the future a single backend runs, sending the caller's
    /// request, raced against the hedge `timer` alone, the attempt recorded where its answer
    /// lies ([`Recorded`]). The request stays in this future and the exchange borrows it:
    /// should hedges start (the timer fired, or the primary failed), they are copies of it,
    /// made then ([`AfterPrimary`], boxed). The primary is polled in one place only, this
    /// future's, before and while hedges run.
    pub(crate) fn exchange_hedged(
        self,
        backend: &'a Backend,
        req: Request,
        mut timer: Timer,
    ) -> impl Future<Output = Result<Response>> + Send + use<'a> {
        let First { then, attempt } = self;
        async move {
            let (fleet, slot) = (attempt.fleet, attempt.slot);
            let primary = pin!(Some(then.policy.exchange(backend, &req, Recorded(attempt))));
            // (What the poll borrows is taken in a block of its own: a binding lives to the end
            // of its scope, across the await, and would take room in this future twice.)
            poll_fn({
                let (then, req, timer) = (&then, &req, &mut timer);
                let mut primary = primary;
                let mut after = AfterPrimary::new(Fleet::attempt, Resume::run);
                move |cx| {
                    // As `Hedges::poll_beside` polls a primary, but a healthy answer returns
                    // from where the exchange left it: through an `Option` first, it cost ~37
                    // instructions more per request (callgrind, `instr --mode ab`).
                    let mut ended = None;
                    if let Some(fut) = primary.as_mut().as_pin_mut() {
                        if let Poll::Ready(answer) = fut.poll(cx) {
                            // A success was marked as served where it ended ([`Recorded`]): no
                            // need to judge it again.
                            if after.alone() && matches!(&answer, Ok(r) if r.member.is_some()) {
                                return Poll::Ready(answer);
                            }
                            primary.set(None);
                            ended = Some(answer);
                        }
                    }
                    if after.alone() && ended.is_none() && timer.poll_expired(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let first = FirstAttempt {
                        then,
                        fleet,
                        slot,
                        req,
                    };
                    after.poll(cx, &first, primary.as_mut(), timer, ended)
                }
            })
            .await
        }
    }
}

/// A hedged first attempt, as what follows its primary sees it.
struct FirstAttempt<'r, 'a> {
    then: &'r Then<'a>,
    fleet: &'a Fleet,
    /// The primary's member.
    slot: usize,
    /// The caller's request (its member's URL put in).
    req: &'r Request,
}

/// What follows a hedged first attempt's primary once its hedge delay passed or it ended other
/// than in a success: hedges beside it, or after its failure, then the rest of the walk if
/// they fail too. A rate limit or bad input ends the request as it is.
struct AfterPrimary<'a, A, R, S, T> {
    /// `None` while the primary runs alone (boxed, so that it takes one word until then).
    state: Option<Box<After<'a, A, R, S>>>,
    /// What starts a hedge ([`Fleet::attempt`]) and what resumes the walk ([`Resume::run`]):
    /// functions as values of their own types, which take no room.
    start: S,
    resume: T,
}

// Boxed as a whole (`AfterPrimary::state`), so the variants' sizes cost nothing.
#[allow(clippy::large_enum_variant)]
enum After<'a, A, R, S> {
    Hedging(Hedges<'a, A, S>),
    /// The rest of the walk.
    Resuming(Pin<Box<R>>),
}

impl<'a, A, R, S, T> AfterPrimary<'a, A, R, S, T>
where
    A: Future<Output = Finished>,
    R: Future<Output = Result<Response>>,
    S: StartHedge<'a, A>,
    T: Fn(Resume<'a>) -> R,
{
    fn new(start: S, resume: T) -> Self {
        AfterPrimary {
            state: None,
            start,
            resume,
        }
    }

    /// Whether the primary still runs alone.
    #[inline(always)]
    fn alone(&self) -> bool {
        self.state.is_none()
    }

    /// Polls what follows `first`'s primary (emptied once it ended, `ended` its outcome when it
    /// just did; canceled when the hedges end), `timer` firing when a hedge is due.
    #[cold]
    #[inline(never)]
    fn poll<P>(
        &mut self,
        cx: &mut Context<'_>,
        first: &FirstAttempt<'_, 'a>,
        mut primary: Pin<&mut Option<P>>,
        timer: &mut Timer,
        mut ended: Option<Result<Response>>,
    ) -> Poll<Result<Response>> {
        let FirstAttempt {
            then,
            fleet,
            slot,
            req,
        } = *first;
        loop {
            let end = match self.state.as_deref_mut() {
                None => {
                    // Hedges are copies of the caller's request, its own URL.
                    let req = req.clone_with_uri(then.own_uri.of(&req.uri));
                    let walk = fleet.walk_on(then.plan, &req, 1);
                    let verdict = ended.as_ref().map(|answer| fleet.classifier.judge(answer));
                    match (verdict, ended.take()) {
                        (Some(verdict), Some(answer))
                            if !matches!(verdict, Verdict::Failure { .. }) =>
                        {
                            let done = Finished::new(slot, verdict, answer);
                            Resume::after(fleet, then.policy, walk, OwnUri::Same, req, done)
                        }
                        // The hedge delay passed, or the primary failed: hedges start.
                        (_, answer) => {
                            ended = answer;
                            let delays = fleet.hedge_delay().unwrap_or((Duration::MAX, 0));
                            let hedges = Hedges::new(
                                fleet,
                                then.policy,
                                req,
                                walk,
                                slot,
                                delays,
                                self.start,
                            );
                            self.state = Some(Box::new(After::Hedging(hedges)));
                            continue;
                        }
                    }
                }
                Some(After::Hedging(hedges)) => {
                    let running = primary.is_some();
                    let hedged = std::task::ready!(hedges.poll(cx, timer, running, ended.take()));
                    // Whatever still runs is canceled: the primary here, the hedges with their
                    // boxes.
                    primary.set(None);
                    let Some(After::Hedging(hedges)) = self.state.take().map(|b| *b) else {
                        unreachable!()
                    };
                    let (req, walk) = hedges.into_parts();
                    match hedged.finished(slot) {
                        Some(done) => {
                            Resume::after(fleet, then.policy, walk, OwnUri::Same, req, done)
                        }
                        None => Ok(Err(fleet.out_of_time(&req, walk.history, slot))),
                    }
                }
                Some(After::Resuming(rest)) => return rest.as_mut().poll(cx),
            };
            match end {
                Ok(result) => return Poll::Ready(result),
                Err(rest) => {
                    let rest = Box::pin((self.resume)(*rest));
                    self.state = Some(Box::new(After::Resuming(rest)));
                }
            }
        }
    }
}
