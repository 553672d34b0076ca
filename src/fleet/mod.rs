//! The fleet: one client in front of several members (a backend plus an optional base URL),
//! deciding per request which member serves it, what to do when one fails, and when to ask a
//! second one before the first answers.
//!
//! Every decision is a small state machine driven by `match`: the [`Strategy`] picks members
//! (`Plan`), the [`Classifier`] judges each attempt, the circuit breaker of each member
//! admits or refuses it, the [`RetryPolicy`] and the shared retry budget decide whether
//! another attempt starts. No dynamic dispatch on the request path. While members are healthy a
//! fleet request allocates nothing: its first attempt is the same exchange future a single
//! backend runs, inline in the client's own future and polled as a single backend's is, its
//! end judging the answer and settling the attempt's bookkeeping where the answer lies
//! (`Fleet::start`, `First`, `Inline`); only a failed first attempt goes on with the rest of
//! the state machine, boxed, inside that same future (`Resume`). A hedged request keeps its
//! primary exchange inline too, borrowing the caller's request and recording the attempt
//! where it ends (`First::exchange_hedged`, `Recorded`), raced against the hedge timer alone;
//! the hedging machinery starts, boxed, only when the timer fires or the primary fails, and
//! each hedge is boxed on its own when it starts, so a request that needs no hedge carries one
//! attempt, not four.

mod breaker;
mod classify;
mod clock;
mod hedge;
mod latency;
mod plan;
mod retry;
mod rng;
mod stats;

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::uri::PathAndQuery;
use tokio::time::Instant;

pub use breaker::{BreakerConfig, BreakerState};
pub use classify::Classifier;
pub(crate) use retry::is_idempotent;
pub use retry::{BudgetConfig, MAX_ATTEMPTS, RetryPolicy, parse_retry_after};
pub use stats::MemberStats;

use self::breaker::{Breaker, Permit, Trial};
use self::classify::{Judge, Verdict};
use self::clock::Clock;
use self::hedge::Hedges;
use self::latency::{Histogram, PeakEwma};
use self::plan::Plan;
use self::retry::RetryBudget;
use self::rng::Rng;
use self::stats::Counters;
use crate::backend::{Backend, BackendKind};
use crate::client::{Client, Never, Plain, Policy, Settle, Settled};
use crate::config::Config;
use crate::deadline::{Nudge, Timer};
use crate::error::{Attempt, Error, ErrorKind, Result, TimeoutPhase};
use crate::request::Request;
use crate::response::Response;

/// How a fleet spreads requests over its members.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Strategy {
    /// The first member only (retries go to it again).
    Single,
    /// Members in order: the first healthy one serves; on failure the next one is tried.
    Failover,
    /// Each request starts at the next member (an atomic counter); failures move on in order.
    RoundRobin,
    /// Each request starts at a random member (xorshift; `seed` makes it repeatable).
    Random {
        /// The PRNG seed. `None` seeds from the clock.
        seed: Option<u64>,
    },
    /// Sends to the first healthy member, and after `delay` without an answer sends the same
    /// idempotent request to another member, up to `max_extra` more (at most 3); the first
    /// success wins and the others are canceled. Hedges spend the shared retry budget.
    Hedged {
        /// When to send a hedge.
        delay: HedgeDelay,
        /// Hedges per request, at most 3.
        max_extra: u32,
    },
    /// Power of two choices over a peak-EWMA latency estimate (tower's and Finagle's balancer):
    /// two random healthy members, the one with the lower `latency × (in-flight + 1)` serves.
    Adaptive {
        /// How fast the latency estimate forgets. Defaults to 10 s in [`Strategy::adaptive`].
        decay: Duration,
    },
}

impl Strategy {
    /// The strategy with its durations clamped to [`MAX_DURATION`](crate::MAX_DURATION).
    fn clamped(self) -> Self {
        use crate::config::clamp;
        match self {
            Strategy::Hedged { delay, max_extra } => Strategy::Hedged {
                delay: match delay {
                    HedgeDelay::Fixed(d) => HedgeDelay::Fixed(clamp(d)),
                    HedgeDelay::Percentile { quantile, floor } => HedgeDelay::Percentile {
                        quantile,
                        floor: clamp(floor),
                    },
                },
                max_extra,
            },
            Strategy::Adaptive { decay } => Strategy::Adaptive {
                decay: clamp(decay),
            },
            other => other,
        }
    }

    /// [`Strategy::Adaptive`] with a 10 s decay.
    pub fn adaptive() -> Self {
        Strategy::Adaptive {
            decay: Duration::from_secs(10),
        }
    }

    /// [`Strategy::Hedged`] with a fixed delay and one hedge.
    pub fn hedged(delay: Duration) -> Self {
        Strategy::Hedged {
            delay: HedgeDelay::Fixed(delay),
            max_extra: 1,
        }
    }
}

/// When a hedge is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HedgeDelay {
    /// After this long without an answer.
    Fixed(Duration),
    /// At this quantile (`0.0..=1.0`) of the fleet's recent latencies (the last 1,000, the
    /// quantile recomputed after every 16 new ones), never before `floor`; `floor` alone until
    /// 20 latencies are known.
    Percentile {
        /// The quantile, such as `0.95`.
        quantile: f64,
        /// The shortest delay.
        floor: Duration,
    },
}

/// One member of a fleet: a backend (built from the fleet's config, or given) and an optional
/// base URL that replaces the scheme, host and port of every request it serves.
#[derive(Debug, Clone)]
pub struct Member {
    backend: MemberBackend,
    base_url: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Clone)]
enum MemberBackend {
    Kind(BackendKind),
    Built(Backend),
}

impl Member {
    /// A member served by a backend of `kind`, built from the fleet's config.
    pub fn new(kind: BackendKind) -> Self {
        Member {
            backend: MemberBackend::Kind(kind),
            base_url: None,
            name: None,
        }
    }

    /// A member served by an already built backend.
    pub fn with_backend(backend: Backend) -> Self {
        Member {
            backend: MemberBackend::Built(backend),
            base_url: None,
            name: None,
        }
    }

    /// Sends this member's requests to `url` (`https://api1.example.com`, optionally with a path
    /// prefix): the request's path and query are kept, its scheme, host and port replaced.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The name shown in stats, responses, errors and traces. Defaults to `backend` or
    /// `backend@host`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<BackendKind> for Member {
    fn from(kind: BackendKind) -> Self {
        Member::new(kind)
    }
}

impl From<Backend> for Member {
    fn from(backend: Backend) -> Self {
        Member::with_backend(backend)
    }
}

/// Builds a fleet client. [`Client::fleet`] is the short form with default policies.
#[derive(Debug, Clone)]
#[must_use]
pub struct FleetBuilder {
    config: Config,
    members: Vec<Member>,
    strategy: Strategy,
    retry: RetryPolicy,
    breaker: BreakerConfig,
    classifier: Classifier,
}

impl FleetBuilder {
    /// A builder with `config` (used for every member built from a kind, and for the request
    /// policy), no members, [`Strategy::Failover`] and default retry, breaker and classifier.
    pub fn new(config: &Config) -> Self {
        FleetBuilder {
            config: config.clone(),
            members: Vec::new(),
            strategy: Strategy::Failover,
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            classifier: Classifier::default(),
        }
    }

    /// Adds a member.
    pub fn member(mut self, member: impl Into<Member>) -> Self {
        self.members.push(member.into());
        self
    }

    /// Adds members.
    pub fn members<I>(mut self, members: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Member>,
    {
        self.members.extend(members.into_iter().map(Into::into));
        self
    }

    /// Sets the strategy. Defaults to [`Strategy::Failover`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the retry policy. Defaults to [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the breaker of every member. Defaults to [`BreakerConfig::default`].
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets what counts as a failure. Defaults to [`Classifier::default`].
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Builds the fleet for blocking code: the same fleet, driven on the blocking bridge (hedges
    /// and timers need an event loop), with its own backends and pools.
    pub fn build_blocking(self) -> Result<crate::blocking::Client> {
        self.build().map(crate::blocking::Client::wrap)
    }

    /// Builds every member's backend and the client. Fails with `Builder` when there is no
    /// member or a base URL is invalid, and with whatever a backend refuses.
    pub fn build(mut self) -> Result<Client> {
        self.strategy = self.strategy.clamped();
        self.retry = self.retry.clamped();
        self.breaker = self.breaker.clamped();
        if self.members.is_empty() {
            return Err(Error::builder("a fleet needs at least one member"));
        }
        if let Strategy::Hedged {
            delay: HedgeDelay::Percentile { quantile, .. },
            ..
        } = self.strategy
        {
            if !(0.0..=1.0).contains(&quantile) {
                return Err(Error::builder("hedge quantile must be within 0.0..=1.0"));
            }
        }
        let policy = Policy::new(&self.config)?;
        let mut slots = Vec::with_capacity(self.members.len());
        for m in self.members {
            let backend = match m.backend {
                MemberBackend::Kind(kind) => {
                    Backend::from_config(&self.config.clone().backend(kind))?
                }
                MemberBackend::Built(b) => b,
            };
            let base = match &m.base_url {
                Some(raw) => Some(Base::parse(raw)?),
                None => None,
            };
            let name = m.name.unwrap_or_else(|| match &base {
                Some(b) => format!("{}@{}", backend.kind(), b.authority),
                None => backend.kind().to_string(),
            });
            slots.push(Slot {
                backend,
                base,
                name: name.into(),
                breaker: Breaker::new(self.breaker.clone()),
                ewma: PeakEwma::new(Duration::from_millis(1), adaptive_decay(&self.strategy)),
                counters: Counters::default(),
            });
        }
        let rng = match self.strategy {
            Strategy::Random { seed: Some(seed) } => Rng::new(seed),
            _ => Rng::from_entropy(),
        };
        let hedge_quantile = match self.strategy {
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { quantile, .. },
                ..
            } => quantile,
            _ => 1.0,
        };
        let percentile_hedging = matches!(
            self.strategy,
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { .. },
                ..
            }
        );
        // Attempts are timed only where a latency is used.
        let timed = percentile_hedging
            || matches!(self.strategy, Strategy::Adaptive { .. })
            || slots.iter().any(|s| s.breaker.times_calls());
        let virtual_time = slots.iter().any(|s| s.backend.kind() == BackendKind::Mock);
        let first_hedge = match self.strategy {
            Strategy::Hedged { max_extra: 0, .. } => FirstHedge::Never,
            Strategy::Hedged {
                delay: HedgeDelay::Fixed(delay),
                ..
            } => FirstHedge::After {
                delay,
                // Its nudge for a request with the config's timeout, worked out once.
                lead: self
                    .config
                    .timeout
                    .checked_sub(delay)
                    .and_then(Nudge::before_deadline),
            },
            Strategy::Hedged { .. } => FirstHedge::Percentile,
            _ => FirstHedge::Never,
        };
        let fleet = Fleet {
            first_hedge,
            percentile_hedging,
            timed,
            virtual_time,
            clock: Clock::new(virtual_time),
            adaptive: matches!(self.strategy, Strategy::Adaptive { .. }),
            budget: RetryBudget::new(self.retry.budget.clone()),
            slots,
            strategy: self.strategy,
            retry: self.retry,
            classifier: self.classifier.compile(),
            rng,
            next: std::sync::atomic::AtomicUsize::new(0),
            latencies: Histogram::new(1000, hedge_quantile, 20),
        };
        Ok(Client::from_fleet(fleet, policy))
    }
}

/// An instant on a fleet's clock ([`Fleet::nanos`]), in a word that leaves `Option` a word too
/// (an attempt's start: every fleet request's future holds one).
#[derive(Debug, Clone, Copy)]
struct Stamp(std::num::NonZeroU64);

impl Stamp {
    /// The stamp of `nanos` on the fleet's clock.
    fn at(nanos: u64) -> Stamp {
        Stamp(std::num::NonZeroU64::MIN.saturating_add(nanos))
    }

    /// Its nanoseconds on the fleet's clock.
    fn nanos(self) -> u64 {
        self.0.get() - 1
    }
}

fn adaptive_decay(strategy: &Strategy) -> Duration {
    match strategy {
        Strategy::Adaptive { decay } => *decay,
        _ => Duration::from_secs(10),
    }
}

/// A member's base URL, split for rebasing.
#[derive(Debug)]
struct Base {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Path prefix without a trailing `/` (empty for none).
    prefix: String,
    /// The URL last built on this base (see [`Base::put`]).
    last: std::sync::Mutex<Option<Rebased>>,
}

impl Base {
    fn parse(raw: &str) -> Result<Self> {
        let parsed = crate::url::parse(raw)?;
        if parsed.uri.scheme().is_none() {
            return Err(Error::invalid_url(format!(
                "a member's base URL must be absolute (http:// or https://): {:?}",
                crate::url::redact_str(raw)
            )));
        }
        if parsed.credentials.is_some() {
            return Err(Error::builder(
                "a member's base URL cannot carry credentials: use Config::basic_auth",
            ));
        }
        let parts = parsed.uri.into_parts();
        let prefix = parts
            .path_and_query
            .as_ref()
            .map(|pq| pq.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        match (parts.scheme, parts.authority) {
            (Some(scheme), Some(authority)) => Ok(Base {
                scheme,
                authority,
                prefix,
                last: std::sync::Mutex::new(None),
            }),
            _ => Err(Error::invalid_url(format!(
                "invalid base URL {:?}",
                crate::url::redact_str(raw)
            ))),
        }
    }

    /// `uri`'s path and query on this base.
    fn rebase(&self, uri: &Uri) -> Result<Uri> {
        if self.prefix.is_empty() {
            // Without a path prefix the request's path and query are shared, not re-parsed.
            return self.with(uri.path_and_query());
        }
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let pq = PathAndQuery::try_from(format!("{}{pq}", self.prefix))
            .map_err(|e| Error::invalid_url("cannot rebase the URL").with_source(e))?;
        self.with(Some(&pq))
    }

    /// This base's scheme and authority with `pq` (`/` for none) as path and query.
    fn with(&self, pq: Option<&PathAndQuery>) -> Result<Uri> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(
            pq.cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts)
            .map_err(|e| Error::invalid_url("cannot rebase the URL").with_source(e))
    }

    /// Puts `uri`, a path (and query) alone, on this base. The same path again is most often the
    /// very same bytes (a URL parsed once, see `crate::url`): compared by address with the URL
    /// last built on this base, which is then cloned; another path is built anew and kept, so
    /// that the next request finds its address. The slot is only ever tried, never waited for:
    /// a request that finds it taken (another thread's, at that instant) builds its URL.
    #[inline(always)]
    fn put(&self, uri: &mut Uri) -> Result<()> {
        if let Some(Rebased { uri: last, .. }) = self.last_for(uri).as_deref() {
            uri.clone_from(last);
        } else {
            *uri = self.build(uri)?;
        }
        Ok(())
    }

    /// The URL last built on this base, if it was built from `uri`'s path and query (the very
    /// same bytes) and no other request holds it at this instant.
    #[inline(always)]
    fn last_for(&self, uri: &Uri) -> Option<LastGuard<'_>> {
        let pq = uri.path_and_query()?;
        let last = self.last.try_lock().ok()?;
        last.as_ref()
            .is_some_and(|last| last.is(pq))
            .then_some(LastGuard(last))
    }

    /// [`Base::put`] when the URL last built on this base differs: built, and kept for the next
    /// request.
    #[cold]
    #[inline(never)]
    fn build(&self, uri: &Uri) -> Result<Uri> {
        let built = self.with(uri.path_and_query())?;
        if let (Some(pq), Ok(mut last)) = (uri.path_and_query(), self.last.try_lock()) {
            *last = Some(Rebased {
                pq: Rebased::site(pq),
                uri: built.clone(),
            });
        }
        Ok(built)
    }
}

/// The URL last built on a member's base, held ([`Base::last_for`]).
struct LastGuard<'a>(std::sync::MutexGuard<'a, Option<Rebased>>);

impl std::ops::Deref for LastGuard<'_> {
    type Target = Rebased;

    fn deref(&self) -> &Rebased {
        self.0.as_ref().expect("a held URL is there")
    }
}

/// The URL last built on a member's base (see [`Base::put`]).
#[derive(Debug)]
struct Rebased {
    /// Where the path and query it was built from lies (address and length): the URL itself
    /// shares those bytes, so while it is kept they cannot be freed and another path cannot
    /// take their address.
    pq: (usize, usize),
    uri: Uri,
}

impl Rebased {
    /// Where `pq`'s bytes lie: address and length.
    fn site(pq: &PathAndQuery) -> (usize, usize) {
        (pq.as_str().as_ptr() as usize, pq.as_str().len())
    }

    /// Whether it was built from `pq`, the very same bytes.
    fn is(&self, pq: &PathAndQuery) -> bool {
        self.pq == Rebased::site(pq)
    }
}

/// When a fleet request's first hedge is due (see [`Fleet::hedging`]).
#[derive(Debug, Clone, Copy)]
enum FirstHedge {
    /// Not hedged.
    Never,
    /// A fixed delay after the request starts, and its nudge before the deadline of a request
    /// with the client's own timeout (see [`Fleet::first_hedge_timer`]).
    After {
        delay: Duration,
        lead: Option<Nudge>,
    },
    /// A percentile of recent latencies, read per request.
    Percentile,
}

/// One member and its health.
struct Slot {
    backend: Backend,
    base: Option<Base>,
    name: Arc<str>,
    breaker: Breaker,
    ewma: PeakEwma,
    counters: Counters,
}

/// The fleet behind a [`Client`].
pub(crate) struct Fleet {
    slots: Vec<Slot>,
    strategy: Strategy,
    retry: RetryPolicy,
    classifier: Judge,
    budget: RetryBudget,
    rng: Rng,
    next: std::sync::atomic::AtomicUsize,
    latencies: Histogram,
    /// Latencies are recorded only for a percentile hedge delay.
    percentile_hedging: bool,
    /// Attempts are timed: the adaptive strategy, a percentile hedge delay or a breaker that
    /// counts slow calls needs their latency. Otherwise an attempt reads the clock only when a
    /// `tracing` subscriber wants its span.
    timed: bool,
    /// A member is the mock transport, whose latencies follow tokio's clock: hedge delays use
    /// tokio's timer rather than the deadline watchdog, so that a paused test clock drives them.
    virtual_time: bool,
    /// When a request's first hedge is due, worked out once where the delay is fixed.
    first_hedge: FirstHedge,
    /// Times attempts: nanoseconds since the fleet was built.
    clock: Clock,
    /// The strategy is adaptive: attempts count in their member's in-flight load.
    adaptive: bool,
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

/// The end of one attempt.
pub(crate) struct Finished {
    slot: usize,
    verdict: Verdict,
    outcome: Result<Response>,
    retry_after: Option<Duration>,
}

impl Finished {
    /// The end of an attempt on member `slot`, judged `verdict`.
    fn new(slot: usize, verdict: Verdict, outcome: Result<Response>) -> Self {
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

/// An attempt under way: what is needed to judge and record it when its exchange ends. Dropped
/// unrecorded (the attempt canceled midway), it keeps the member's counters, in-flight count and
/// breaker right: a canceled half-open trial gives its slot back.
struct AttemptEnd<'a> {
    fleet: &'a Fleet,
    /// When the attempt started, if it is timed (see `Fleet::timed`).
    start: Option<Stamp>,
    slot: usize,
    n: u32,
    /// The breaker admitted it as a half-open trial.
    trial: Option<Trial>,
    /// Counted in the member's in-flight load (the adaptive strategy).
    in_flight: bool,
    /// A `tracing` subscriber wants the attempt's span.
    traced: bool,
}

impl Drop for AttemptEnd<'_> {
    /// The attempt was canceled (a recorded one is forgotten, not dropped).
    fn drop(&mut self) {
        let s = &self.fleet.slots[self.slot];
        if self.in_flight {
            s.ewma.cancel();
        }
        s.counters.canceled();
        if let Some(trial) = self.trial {
            s.breaker.release(trial);
        }
    }
}

impl<'a> AttemptEnd<'a> {
    /// Judges the outcome and records it in the member's breaker, counters and latency.
    fn judge(self, outcome: Result<Response>) -> Finished {
        let slot = self.slot;
        let verdict = self.fleet.classifier.judge(&outcome);
        self.record(verdict);
        Finished::new(slot, verdict, outcome)
    }

    /// A request's first attempt succeeded with `outcome`: recorded, and marked as served
    /// where it lies.
    #[inline(always)]
    pub(crate) fn succeeded(self, outcome: &mut Result<Response>) {
        let (fleet, slot) = (self.fleet, self.slot);
        if self.quiet() {
            // Only a latency to learn, if timed (see `quiet`).
            if let Some(start) = self.start {
                let latency = fleet.learn(slot, start.nanos(), self.in_flight);
                if fleet.percentile_hedging {
                    fleet.latencies.record(Duration::from_nanos(latency));
                }
            }
            std::mem::forget(self);
        } else {
            self.record(Verdict::Success);
        }
        fleet.mark_served(slot, outcome, 1);
    }

    /// Whether a success of this attempt would change nothing in its member's breaker,
    /// counters or traces, only its latency (if timed) to learn: it is not a half-open trial,
    /// not traced, and its member's breaker holds only successes and does not time calls. The
    /// common case while members are healthy, decided without a call.
    fn quiet(&self) -> bool {
        let breaker = &self.fleet.slots[self.slot].breaker;
        self.trial.is_none() && !self.traced && breaker.is_clear() && !breaker.times_calls()
    }

    /// Records an attempt judged `verdict` in the member's breaker, counters and latency.
    fn record(self, verdict: Verdict) {
        let AttemptEnd {
            fleet,
            start,
            slot,
            n,
            trial,
            in_flight,
            traced,
            ..
        } = self;
        // Recorded: nothing for the drop to undo.
        std::mem::forget(self);
        let s = &fleet.slots[slot];
        let latency = match start {
            Some(start) => Duration::from_nanos(fleet.learn(slot, start.nanos(), in_flight)),
            None => Duration::ZERO,
        };
        let failed = match verdict {
            Verdict::Success => {
                if fleet.percentile_hedging {
                    fleet.latencies.record(latency);
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
        match failed {
            Some(failed) => s.breaker.record(trial, failed, latency, &fleet.rng),
            None => {
                if let Some(trial) = trial {
                    s.breaker.release(trial);
                }
            }
        }
        // One span per attempt, carrying member, attempt and outcome, when a subscriber listens.
        if traced {
            tracing::debug_span!(
                "httpfleet.attempt",
                member = &*s.name,
                attempt = n,
                outcome = ?verdict,
                latency_us = latency.as_micros() as u64,
            )
            .in_scope(|| tracing::debug!("attempt ended"));
        }
    }
}

/// Where a fleet request stands between attempts.
struct Walk {
    deadline: Instant,
    may_retry: bool,
    plan: Plan,
    history: Vec<Attempt>,
    /// Attempts that count against the retry policy.
    counted: u32,
    /// Free retries left for attempts that provably never left the client.
    free_unsent: u32,
    /// Attempts sent (hedges included).
    sent: u32,
}

/// A fleet request's first attempt, sent inline in the client's own future: while the members
/// are healthy a fleet request allocates nothing and moves no larger future than a
/// single-backend one. Only what the attempt's end needs is kept, inside its exchange
/// ([`Inline`]) or, for a hedged one, beside it; the rest of the walk over the members is built
/// when the attempt fails (see [`Resume`]).
pub(crate) struct First<'a> {
    then: Then<'a>,
    attempt: AttemptEnd<'a>,
}

/// What a fleet request's walk over the members resumes from when its inline first attempt
/// does not settle it (see [`Then::resume`]).
pub(crate) struct Then<'a> {
    policy: &'a Policy,
    plan: Plan,
    /// The request's own URL while the member's URL stands in for it: the inline attempt sends
    /// the caller's request itself, not a copy, and a failure gives it back for later attempts
    /// with its own URL restored.
    own_uri: OwnUri,
}

impl<'a> Then<'a> {
    /// The request's end when `done`, its first attempt, settles it, or the state to resume
    /// from. Out of line: a healthy member's answer never comes here.
    #[cold]
    #[inline(never)]
    fn resume(self, fleet: &'a Fleet, req: Request, done: Finished) -> FirstEnd<'a> {
        let walk = fleet.walk_on(self.plan, &req, 1);
        Resume::after(fleet, self.policy, walk, self.own_uri, req, done)
    }
}

/// What gives a fleet request its own URL back after its inline attempt (see [`First`]).
enum OwnUri {
    /// The member has no base URL: the request went with its own.
    Same,
    /// The request's own URL was a path (and query) alone, now in the member's URL.
    PathOnly,
    /// The request's own URL (boxed: the case is rare, and this lives in every fleet request's
    /// future).
    Whole(Box<Uri>),
}

impl OwnUri {
    /// The request's own URL, given `current`, the URL it holds now.
    fn of(&self, current: &Uri) -> Uri {
        match self {
            OwnUri::Same => current.clone(),
            OwnUri::PathOnly => {
                let mut parts = http::uri::Parts::default();
                parts.path_and_query = current.path_and_query().cloned();
                Uri::from_parts(parts).unwrap_or_default()
            }
            OwnUri::Whole(uri) => (**uri).clone(),
        }
    }

    /// Gives `req` its own URL back.
    fn restore(&mut self, req: &mut Request) {
        match std::mem::replace(self, OwnUri::Same) {
            OwnUri::Same => {}
            OwnUri::Whole(uri) => req.uri = *uri,
            path_only => req.uri = path_only.of(&req.uri),
        }
    }
}

/// How a fleet request starts (see [`Fleet::start`]).
pub(crate) enum Start<'a> {
    /// Send the request (the caller's, now with the member's URL) through `backend` inline:
    /// [`First::exchange_inline`].
    Inline {
        first: First<'a>,
        backend: &'a Backend,
    },
    /// The same, raced against its hedge timer: [`First::exchange_hedged`].
    Hedged {
        first: First<'a>,
        backend: &'a Backend,
        timer: Timer,
    },
    /// Ended before any attempt.
    Failed(Error),
}

impl<'a> First<'a> {
    /// The attempt succeeded with `outcome`: recorded, and marked as served where it lies.
    #[inline(always)]
    pub(crate) fn succeeded(self, outcome: &mut Result<Response>) {
        self.attempt.succeeded(outcome);
    }

    /// The attempt ended with `outcome`, judged `verdict`, other than in a success: recorded,
    /// and the request's end or the state to resume from.
    fn ended(self, verdict: Verdict, outcome: Result<Response>, req: Request) -> FirstEnd<'a> {
        let First { then, attempt } = self;
        let (fleet, slot) = (attempt.fleet, attempt.slot);
        attempt.record(verdict);
        then.resume(fleet, req, Finished::new(slot, verdict, outcome))
    }

    /// The inline attempt's exchange when no hedge runs beside it: the future a single backend
    /// runs, with this bookkeeping inside it, settled where the exchange ends ([`Inline`]). A
    /// success is the exchange's own output, so a fleet request's future is polled, and its
    /// answer moves, as a single backend's; a failure goes on, in the same future, with the
    /// rest of the walk (`resume`, boxed).
    pub(crate) fn exchange_inline<R>(
        self,
        backend: &'a Backend,
        req: Request,
        resume: fn(Resume<'a>) -> R,
    ) -> impl Future<Output = Result<Response>> + Send + use<'a, R>
    where
        R: Future<Output = Result<Response>> + Send + 'a,
    {
        let policy = self.then.policy;
        policy.exchange(
            backend,
            req,
            Inline {
                first: self,
                resume,
            },
        )
    }

    /// [`Inline`]'s end of an attempt that did not succeed.
    #[cold]
    #[inline(never)]
    fn went_on<R>(
        self,
        verdict: Verdict,
        outcome: Result<Response>,
        req: Request,
        resume: fn(Resume<'a>) -> R,
    ) -> Settled<Result<Response>, Pin<Box<R>>> {
        match self.ended(verdict, outcome, req) {
            Ok(end) => Settled::Done(end),
            Err(rest) => Settled::Then(Box::pin(resume(*rest))),
        }
    }
}

/// The end of a fleet request's inline first attempt when no hedge runs beside it
/// ([`First::exchange_inline`]): the answer judged and the attempt settled where the exchange
/// ends; a success marked as served where it lies, a failure gone on with the rest of the walk.
/// Dropped with its exchange unsettled, the attempt counts as canceled ([`AttemptEnd`]).
pub(crate) struct Inline<'a, R> {
    first: First<'a>,
    resume: fn(Resume<'a>) -> R,
}

impl<'a, R> Settle<Request> for Inline<'a, R>
where
    R: Future<Output = Result<Response>>,
{
    type Output = Result<Response>;
    type Then = Pin<Box<R>>;

    #[inline(always)]
    fn settle(
        self,
        mut outcome: Result<Response>,
        req: Request,
    ) -> Settled<Result<Response>, Pin<Box<R>>> {
        let Inline { first, resume } = self;
        match first.attempt.fleet.classifier.judge(&outcome) {
            Verdict::Success => {
                first.succeeded(&mut outcome);
                Settled::Done(outcome)
            }
            verdict => first.went_on(verdict, outcome, req, resume),
        }
    }
}

/// The end of a hedged attempt's primary exchange ([`First::exchange_hedged`], and a later
/// attempt's in `Fleet::drive`): the attempt recorded where the exchange ends, a success marked
/// as served where it lies; the answer goes on as it is, for its owner to tell a success by
/// that mark and the hedges to continue after a failure. Dropped with its exchange unsettled (a
/// hedge won), the attempt counts as canceled.
pub(crate) struct Recorded<'a>(AttemptEnd<'a>);

impl<Q> Settle<Q> for Recorded<'_> {
    type Output = Result<Response>;
    type Then = Never<Result<Response>>;

    #[inline(always)]
    fn settle(self, mut outcome: Result<Response>, _: Q) -> Settled<Result<Response>, Self::Then> {
        let Recorded(attempt) = self;
        match attempt.fleet.classifier.judge(&outcome) {
            Verdict::Success => attempt.succeeded(&mut outcome),
            verdict => attempt.record(verdict),
        }
        Settled::Done(outcome)
    }
}

/// How a fleet request's inline first attempt ends: the request's result, or the state to
/// resume from.
pub(crate) type FirstEnd<'a> = std::result::Result<Result<Response>, Box<Resume<'a>>>;

/// A fleet request to continue after its inline first attempt failed.
pub(crate) struct Resume<'a> {
    fleet: &'a Fleet,
    policy: &'a Policy,
    walk: Walk,
    /// The request as the caller built it.
    req: Request,
    done: Finished,
}

impl<'a> Resume<'a> {
    /// The request's end when attempt `done` settles it, or the state to resume from, with the
    /// request's own URL given back.
    fn after(
        fleet: &'a Fleet,
        policy: &'a Policy,
        mut walk: Walk,
        mut own_uri: OwnUri,
        mut req: Request,
        done: Finished,
    ) -> FirstEnd<'a> {
        match fleet.settle(done, &mut walk) {
            Ok(end) => Ok(end),
            Err((done, _)) => {
                own_uri.restore(&mut req);
                Err(Box::new(Resume {
                    fleet,
                    policy,
                    walk,
                    req,
                    done,
                }))
            }
        }
    }

    /// The rest of the state machine, from the failed attempt on.
    pub(crate) fn run(self) -> impl Future<Output = Result<Response>> + Send + 'a {
        let Resume {
            fleet,
            policy,
            walk,
            req,
            done,
        } = self;
        fleet.drive(policy, req, walk, Some(done))
    }
}

impl Fleet {
    /// The first member's backend.
    pub(crate) fn first_backend(&self) -> &Backend {
        &self.slots[0].backend
    }

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

    /// The latency (ns) of an attempt on member `slot` that started at `start`, learnt by the
    /// member's latency estimate if it is counted `in_flight` (the adaptive strategy).
    fn learn(&self, slot: usize, start: u64, in_flight: bool) -> u64 {
        let now = self.clock.now();
        let latency = now.saturating_sub(start);
        if in_flight {
            self.slots[slot].ewma.finish(latency, now);
        }
        latency
    }

    /// Starts the bookkeeping of one attempt on member `slot` (counted, in flight, timed).
    fn begin<'a>(&'a self, slot: usize, permit: Permit<'a>, n: u32) -> AttemptEnd<'a> {
        let traced = tracing::enabled!(tracing::Level::DEBUG);
        let start = (self.timed || traced).then(|| Stamp::at(self.clock.now()));
        self.attempt_end(slot, n, permit.hand_over(), traced, start)
    }

    /// The bookkeeping of attempt `n` on member `slot`, begun: counted, and in flight for the
    /// adaptive strategy.
    #[inline(always)]
    fn attempt_end(
        &self,
        slot: usize,
        n: u32,
        trial: Option<Trial>,
        traced: bool,
        start: Option<Stamp>,
    ) -> AttemptEnd<'_> {
        let s = &self.slots[slot];
        s.counters.request();
        if self.adaptive {
            s.ewma.start();
        }
        AttemptEnd {
            fleet: self,
            start,
            slot,
            n,
            trial,
            in_flight: self.adaptive,
            traced,
        }
    }

    /// One attempt on member `slot`: the full exchange (redirects, decoding) through the
    /// client's policy, judged, and recorded in the member's breaker, counters and latency.
    async fn attempt(
        &self,
        policy: &Policy,
        slot: usize,
        req: Request,
        permit: Permit<'_>,
        n: u32,
    ) -> Finished {
        let end = self.begin(slot, permit, n);
        let outcome = policy.exchange(&self.slots[slot].backend, req, Plain).await;
        end.judge(outcome)
    }

    /// The request for member `slot` (without the first attempt's nudge).
    fn request_for(&self, slot: usize, req: &Request) -> Result<Request> {
        let url = self.member_url(slot, &req.uri)?;
        Ok(req.clone_with_uri(url.unwrap_or_else(|| req.uri.clone())))
    }

    /// The URL `own` on member `slot`: `None` when the member has no base URL and `own` is
    /// absolute, so goes as it is.
    fn member_url(&self, slot: usize, own: &Uri) -> Result<Option<Uri>> {
        match &self.slots[slot].base {
            Some(base) => base.rebase(own).map(Some),
            None if own.scheme().is_none() => Err(crate::url::needs_base_url()),
            None => Ok(None),
        }
    }

    /// Starts a prepared request (deadline set): picks the first attempt's member and puts its
    /// URL in the request, which [`First::exchange`] then sends inline.
    pub(crate) fn start<'a>(&'a self, policy: &'a Policy, req: &mut Request) -> Start<'a> {
        let mut plan = Plan::new(self);
        let slot = plan.choice(self);
        // Members in good health, the common case: the strategy's choice is admitted by a
        // breaker that holds only successes, the budget is full (a deposit would change
        // nothing) and no subscriber traces the attempt. Its bookkeeping is written at once.
        let begun = if self.slots[slot].breaker.is_clear()
            && self.budget.is_full()
            && !tracing::enabled!(tracing::Level::DEBUG)
        {
            self.to_member(slot, req).map(|own_uri| {
                plan.take(slot);
                let start = self.timed.then(|| Stamp::at(self.clock.now()));
                (own_uri, self.attempt_end(slot, 1, None, false, start))
            })
        } else {
            self.start_walk(req, &mut plan, slot)
        };
        let (own_uri, attempt) = match begun {
            Ok(begun) => begun,
            Err(e) => return Start::Failed(e),
        };
        let backend = &self.slots[attempt.slot].backend;
        let first = First {
            then: Then {
                policy,
                plan,
                own_uri,
            },
            attempt,
        };
        let Some(hedge) = self.hedging(req) else {
            return Start::Inline { first, backend };
        };
        let timer = self.first_hedge_timer(policy, backend, req, hedge);
        Start::Hedged {
            first,
            backend,
            timer,
        }
    }

    /// The first hedge's delay when the request is hedged, and a fixed delay's nudge worked
    /// out when the fleet was built.
    #[inline(always)]
    fn hedging(&self, req: &Request) -> Option<(Duration, Option<Nudge>)> {
        let first = match self.first_hedge {
            FirstHedge::Never => return None,
            FirstHedge::After { delay, lead } => (delay, lead),
            FirstHedge::Percentile => (self.hedge_delay()?.0, None),
        };
        self.retry.may_retry(&req.method).then_some(first)
    }

    /// [`Fleet::start`] when the strategy's choice is not admitted at once (or the attempt is
    /// traced): a deposit in the budget, and a walk over the members for one whose breaker
    /// admits it; the attempt begun, with what gives the request its own URL back.
    #[cold]
    #[inline(never)]
    fn start_walk<'a>(
        &'a self,
        req: &mut Request,
        plan: &mut Plan,
        choice: usize,
    ) -> Result<(OwnUri, AttemptEnd<'a>)> {
        self.budget.deposit();
        let Some((slot, permit)) = plan.first(self, choice) else {
            return Err(Self::breakers_open(req, Vec::new()));
        };
        let own_uri = self.to_member(slot, req)?;
        let attempt = self.begin(slot, permit, 1);
        Ok((own_uri, attempt))
    }

    /// The timer of a request's first hedge, `delay` after it was dispatched: a nudge given to
    /// the deadline watch of the exchange itself where the member's transport keeps one (no
    /// timer of its own to register and withdraw), else a timer. `fixed_lead` is a fixed
    /// delay's nudge for a request with the client's own timeout.
    fn first_hedge_timer(
        &self,
        policy: &Policy,
        backend: &Backend,
        req: &mut Request,
        (delay, fixed_lead): (Duration, Option<Nudge>),
    ) -> Timer {
        let lead = match (req.timeout, fixed_lead) {
            (None, Some(lead)) => Some(lead),
            _ => policy
                .timeout_of(req)
                .checked_sub(delay)
                .and_then(Nudge::before_deadline),
        };
        let nudge = match (req.deadline, lead) {
            (Some(deadline), Some(lead)) if !self.virtual_time && backend.honours_nudges() => {
                Some((deadline, lead))
            }
            _ => None,
        };
        let Some((deadline, nudge)) = nudge else {
            return Timer::after(delay, self.virtual_time);
        };
        req.nudge = Some(nudge);
        Timer::Nudge {
            deadline: deadline.into_std(),
            nudge,
            seen: crate::deadline::nudges(),
        }
    }

    /// Puts member `slot`'s URL in `req`; returns what restores the request's own.
    #[inline(always)]
    fn to_member(&self, slot: usize, req: &mut Request) -> Result<OwnUri> {
        match &self.slots[slot].base {
            // A whole URL to a member without a base goes as it is.
            None if req.uri.scheme().is_some() => Ok(OwnUri::Same),
            // A path alone moves into the member's URL, and back out of it after a failure.
            Some(base) if base.prefix.is_empty() && req.uri.scheme().is_none() => {
                base.put(&mut req.uri)?;
                Ok(OwnUri::PathOnly)
            }
            _ => self.to_member_whole(slot, req),
        }
    }

    /// [`Fleet::to_member`] for a whole URL to a member with a base, or a path on a base with a
    /// path prefix (or to a member without a base, which is an error).
    #[cold]
    #[inline(never)]
    fn to_member_whole(&self, slot: usize, req: &mut Request) -> Result<OwnUri> {
        Ok(match self.member_url(slot, &req.uri)? {
            Some(member) => OwnUri::Whole(Box::new(std::mem::replace(&mut req.uri, member))),
            None => OwnUri::Same,
        })
    }

    /// A request's walk over the members from `plan`, after `sent` attempts.
    fn walk_on(&self, plan: Plan, req: &Request, sent: u32) -> Walk {
        Walk {
            deadline: req
                .deadline
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(30)),
            may_retry: self.retry.may_retry(&req.method),
            plan,
            history: Vec::new(),
            counted: 0,
            free_unsent: self.slots.len() as u32,
            sent,
        }
    }

    /// Runs a prepared request (deadline set) through the whole state machine.
    pub(crate) async fn execute(&self, policy: &Policy, req: Request) -> Result<Response> {
        self.budget.deposit();
        let walk = self.walk_on(Plan::new(self), &req, 0);
        self.drive(policy, req, walk, None).await
    }

    /// The state machine: attempts, hedges, failover, backoff, until a response or the end.
    /// `pending` is an attempt already finished (the inline first one).
    async fn drive(
        &self,
        policy: &Policy,
        mut req: Request,
        mut walk: Walk,
        mut pending: Option<Finished>,
    ) -> Result<Response> {
        let deadline = walk.deadline;
        loop {
            let done = match pending.take() {
                Some(done) => done,
                None => {
                    let Some((slot, permit)) = walk.plan.next(self) else {
                        return Err(Self::breakers_open(&req, walk.history));
                    };
                    if walk.sent > 0 {
                        self.slots[slot].counters.retry();
                    }
                    walk.sent += 1;
                    let first_req = self.request_for(slot, &req)?;
                    let done = match self.hedge_delay() {
                        Some((delay, max_extra)) if walk.may_retry && max_extra > 0 => {
                            let backend = &self.slots[slot].backend;
                            let end = Recorded(self.begin(slot, permit, walk.sent));
                            let mut fut = pin!(Some(policy.exchange(backend, first_req, end)));
                            let mut timer = Timer::after(delay, self.virtual_time);
                            // The request and its walk go to the hedges (each boxed on its
                            // own when it starts) and come back.
                            let mut hedges = Hedges::new(
                                self,
                                policy,
                                req,
                                walk,
                                slot,
                                (delay, max_extra),
                                Fleet::attempt,
                            );
                            let hedged = std::future::poll_fn(|cx| {
                                hedges.poll_beside(cx, &mut timer, fut.as_mut())
                            })
                            .await;
                            (req, walk) = hedges.into_parts();
                            hedged.finished(slot)
                        }
                        // Every backend ends an exchange by the request's deadline: no second
                        // timer.
                        _ => Some(
                            self.attempt(policy, slot, first_req, permit, walk.sent)
                                .await,
                        ),
                    };
                    let Some(done) = done else {
                        return Err(self.out_of_time(&req, walk.history, slot));
                    };
                    done
                }
            };
            let (done, unsent) = match self.settle(done, &mut walk) {
                Ok(end) => return end,
                Err(failed) => failed,
            };
            let sent = walk.sent;
            walk.history.push(Attempt::from_outcome(
                &self.slots[done.slot].name,
                &done.outcome,
            ));
            let give_up = |history: Vec<Attempt>| match done.outcome {
                Ok(resp) => Ok(self.served(resp, done.slot, sent)),
                Err(e) => Err(e.with_history(history, sent)),
            };
            if unsent && walk.free_unsent > 0 {
                // It never left the client: try the next member at once, for free.
                walk.free_unsent -= 1;
                continue;
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
            if Instant::now() + wait >= deadline {
                return give_up(walk.history);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The request's end when attempt `done` settles it (a success, a rate limit, or bad input),
    /// or, for a failure, `done` back with whether it provably never left the client.
    #[allow(clippy::result_large_err)]
    fn settle(
        &self,
        done: Finished,
        walk: &mut Walk,
    ) -> std::result::Result<Result<Response>, (Finished, bool)> {
        match done.verdict {
            Verdict::Success | Verdict::RateLimited => Ok(done
                .outcome
                .map(|resp| self.served(resp, done.slot, walk.sent))),
            Verdict::Fatal => Ok(Err(done
                .outcome
                .expect_err("fatal is an error")
                .with_history(std::mem::take(&mut walk.history), walk.sent))),
            Verdict::Failure { unsent } => Err((done, unsent)),
        }
    }

    /// `resp` as member `slot` served it, after `sent` attempts.
    fn served(&self, mut resp: Response, slot: usize, sent: u32) -> Response {
        self.serve(&mut resp, slot, sent);
        resp
    }

    /// Marks `resp` as served by member `slot` after `sent` attempts.
    fn serve(&self, resp: &mut Response, slot: usize, sent: u32) {
        resp.attempts = sent;
        resp.member = Some(self.slots[slot].name.clone());
    }

    /// Marks a healthy member's answer as served, where it lies rather than moved.
    fn mark_served(&self, slot: usize, outcome: &mut Result<Response>, sent: u32) {
        if let Ok(resp) = outcome {
            self.serve(resp, slot, sent);
        }
    }

    /// The error when every member's breaker refuses.
    fn breakers_open(req: &Request, history: Vec<Attempt>) -> Error {
        Self::gave_up(
            req,
            history,
            ErrorKind::Connect,
            "every member's circuit breaker is open",
        )
    }

    /// The error when the deadline passed with no attempt left running, the last on member
    /// `slot`.
    fn out_of_time(&self, req: &Request, mut history: Vec<Attempt>, slot: usize) -> Error {
        history.push(Attempt::new(&self.slots[slot].name, "deadline reached"));
        Self::gave_up(
            req,
            history,
            ErrorKind::Timeout(TimeoutPhase::Total),
            "deadline reached across the fleet's attempts",
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same path, parsed once, put on two bases one after the other, then another path on
    /// the first, then the first path again while another request holds the first base's slot:
    /// each URL is its own base's and its own path's.
    #[test]
    fn a_path_put_on_a_base_takes_that_base_and_that_path_whatever_was_built_before() {
        let a = Base::parse("http://a.test:81").unwrap();
        let b = Base::parse("https://b.test").unwrap();
        let path = crate::url::parse("/x?q=1").unwrap().uri;
        let put = |base: &Base, path: &Uri| {
            let mut uri = path.clone();
            base.put(&mut uri).unwrap();
            uri.to_string()
        };
        for _ in 0..2 {
            assert_eq!(put(&a, &path), "http://a.test:81/x?q=1");
            assert_eq!(put(&a, &path), "http://a.test:81/x?q=1");
            assert_eq!(put(&b, &path), "https://b.test/x?q=1");
        }
        let other = crate::url::parse("/y").unwrap().uri;
        assert_eq!(put(&a, &other), "http://a.test:81/y");
        assert_eq!(put(&a, &path), "http://a.test:81/x?q=1");
        let held = a.last.lock().unwrap();
        assert_eq!(put(&a, &other), "http://a.test:81/y");
        drop(held);
        assert_eq!(put(&a, &path), "http://a.test:81/x?q=1");
    }
}
