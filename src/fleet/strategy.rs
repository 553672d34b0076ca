//! [`Strategy`]: how a fleet spreads requests over its members, and [`HedgeDelay`], when a
//! hedged request sends its next hedge.

use std::time::Duration;

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
    pub(super) fn clamped(self) -> Self {
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
