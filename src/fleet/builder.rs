//! [`FleetBuilder`]: a fleet's members and policies. `build` (in `client`, which holds the
//! fleet) turns it into a [`Client`](crate::Client); [`FleetBuilder::build_fleet`] builds the
//! fleet itself.

use std::sync::Arc;
use std::time::Duration;

use super::breaker::{Breaker, BreakerConfig};
use super::classify::Classifier;
use super::clock::Clock;
use super::latency::{Histogram, PeakEwma};
use super::member::{Base, Member, MemberBackend, Slot};
use super::retry::{RetryBudget, RetryPolicy};
use super::rng::Rng;
use super::stats::Counters;
use super::{Fleet, HedgeDelay, Strategy};
use crate::backend::Backend;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hook::Hook;

/// Builds a fleet client. [`Client::fleet`](crate::Client::fleet) is the short form with
/// default policies.
#[derive(Clone)]
#[must_use]
pub struct FleetBuilder {
    pub(crate) config: Config,
    members: Vec<Member>,
    strategy: Strategy,
    retry: RetryPolicy,
    breaker: BreakerConfig,
    classifier: Classifier,
    pub(crate) hook: Option<Arc<dyn Hook>>,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("config", &self.config)
            .field("members", &self.members)
            .field("strategy", &self.strategy)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("classifier", &self.classifier)
            .field("hook", &self.hook.is_some())
            .finish()
    }
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
            hook: None,
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

    /// Sets the hook called before and after every attempt (first tries, retries, failovers
    /// and hedges). Defaults to none.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Builds every member's backend and the fleet. Fails with `Builder` when there is no
    /// member or a base URL is invalid, and with whatever a backend refuses.
    pub fn build_fleet(&self) -> Result<Fleet> {
        if self.members.is_empty() {
            return Err(Error::builder("a fleet needs at least one member"));
        }
        let strategy = self.strategy.clone().clamped();
        let retry = self.retry.clone().clamped();
        let breaker = self.breaker.clone().clamped();
        if let Strategy::Hedged {
            delay: HedgeDelay::Percentile { quantile, .. },
            ..
        } = strategy
        {
            if !(0.0..=1.0).contains(&quantile) {
                return Err(Error::builder("hedge quantile must be within 0.0..=1.0"));
            }
        }
        let decay = match strategy {
            Strategy::Adaptive { decay } => decay,
            _ => Duration::from_secs(10),
        };
        let mut slots = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let backend = match &m.backend {
                MemberBackend::Kind(kind) => {
                    Backend::from_config(&self.config.clone().backend(*kind))?
                }
                MemberBackend::Built(b) => b.clone(),
            };
            let base = m.base_url.as_deref().map(Base::parse).transpose()?;
            let name = m.name.clone().unwrap_or_else(|| match &base {
                Some(b) => format!("{}@{}", backend.kind(), b.authority),
                None => backend.kind().to_string(),
            });
            slots.push(Slot {
                backend,
                base,
                name: name.into(),
                breaker: Breaker::new(breaker.clone()),
                ewma: PeakEwma::new(Duration::from_millis(1), decay),
                counters: Counters::default(),
            });
        }
        let rng = match strategy {
            Strategy::Random { seed: Some(seed) } => Rng::new(seed),
            _ => Rng::from_entropy(),
        };
        let hedge_quantile = match strategy {
            Strategy::Hedged {
                delay: HedgeDelay::Percentile { quantile, .. },
                ..
            } => quantile,
            _ => 1.0,
        };
        Ok(Fleet {
            tokio_time: slots.iter().any(|s| s.backend.on_tokio_time()),
            slots,
            strategy,
            budget: RetryBudget::new(retry.budget.clone()),
            retry,
            classifier: self.classifier.compile(),
            rng,
            next: std::sync::atomic::AtomicUsize::new(0),
            latencies: Histogram::new(1000, hedge_quantile, 20),
            clock: Clock::new(),
        })
    }
}
