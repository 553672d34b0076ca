//! The circuit breaker of one fleet member: a state machine (`Closed` → `Open` → `HalfOpen` →
//! `Closed` or back to `Open`) driven by `match`, with an RAII trial [`Permit`] so that a
//! canceled half-open trial gives its slot back instead of leaving the breaker stuck
//! (resilience4j issues 903 and 935). Each half-open period is a generation of its own: a trial
//! admitted in an earlier one that ends in a later one ([`Trial`]) neither closes the breaker nor
//! frees a slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::rng::Rng;

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Defaults to `5`.
    pub consecutive_failures: u32,
    /// Failure rate over the sliding window that opens the breaker (`0.0..=1.0`). Defaults to
    /// `0.5`.
    pub failure_rate: f64,
    /// Size of the sliding window of recent calls. Defaults to `20`.
    pub window: usize,
    /// Calls in the window before the failure rate counts. Defaults to `10`.
    pub min_calls: usize,
    /// A call slower than this counts as slow. Defaults to `None` (slowness ignored).
    pub slow_call: Option<Duration>,
    /// Share of slow calls over the window that opens the breaker. Defaults to `1.0`.
    pub slow_call_rate: f64,
    /// How long the breaker stays open before trials, ±20% jitter. Defaults to 5 s.
    pub cooldown: Duration,
    /// Trial requests let through while half-open; as many successes close it. Defaults to `1`.
    pub half_open_trials: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: 20,
            min_calls: 10,
            slow_call: None,
            slow_call_rate: 1.0,
            cooldown: Duration::from_secs(5),
            half_open_trials: 1,
        }
    }
}

impl BreakerConfig {
    /// Sets [`BreakerConfig::consecutive_failures`].
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// Sets [`BreakerConfig::failure_rate`] over a window of `window` calls, counted once
    /// `min_calls` are in it.
    pub fn failure_rate(mut self, rate: f64, window: usize, min_calls: usize) -> Self {
        self.failure_rate = rate;
        self.window = window;
        self.min_calls = min_calls;
        self
    }

    /// Sets [`BreakerConfig::slow_call`] and [`BreakerConfig::slow_call_rate`].
    pub fn slow_calls(mut self, slower_than: Duration, rate: f64) -> Self {
        self.slow_call = Some(slower_than);
        self.slow_call_rate = rate;
        self
    }

    /// Sets [`BreakerConfig::cooldown`].
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets [`BreakerConfig::half_open_trials`].
    pub fn half_open_trials(mut self, n: u32) -> Self {
        self.half_open_trials = n.max(1);
        self
    }

    /// The configuration with its durations clamped to [`MAX_DURATION`](crate::MAX_DURATION).
    pub(crate) fn clamped(mut self) -> Self {
        self.cooldown = crate::config::clamp(self.cooldown);
        self.slow_call = self.slow_call.map(crate::config::clamp);
        self
    }

    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerConfig {
            consecutive_failures: u32::MAX,
            failure_rate: 2.0,
            slow_call_rate: 2.0,
            ..BreakerConfig::default()
        }
    }
}

/// What a breaker shows in stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the cooldown ends.
    Open,
    /// A limited number of trial requests flow.
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed {
        consecutive: u32,
        /// Recent calls: (failed, slow).
        window: VecDeque<(bool, bool)>,
        /// Failed and slow calls in `window`, kept as calls come and go.
        failed: usize,
        slow: usize,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        in_flight: u32,
        successes: u32,
        /// Which half-open period this is.
        period: Trial,
    },
}

/// A half-open trial: the half-open period that admitted it (counted from 1, so that an
/// attempt's `Option<Trial>` is a word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trial(std::num::NonZeroU64);

/// The breaker of one member.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
    /// Closed, with a full window of successes and no failure in a row: a new call is admitted
    /// and a success changes nothing, so both skip the lock (a member in good health costs two
    /// atomic loads per request, not two lock round trips).
    clear: AtomicBool,
    /// The configuration lets a closed breaker with nothing but successes stay closed (not so
    /// when a limit is zero): only then may `clear` be set.
    can_clear: bool,
    /// Half-open periods begun so far (each admits trials of its own).
    periods: std::sync::atomic::AtomicU64,
}

/// Permission to send one request through a breaker, handed over to the attempt it admits
/// ([`Permit::hand_over`]); dropped before that, it releases a half-open trial slot without
/// counting anything.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    trial: Option<Trial>,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let can_clear = config.consecutive_failures > 0
            && config.failure_rate > 0.0
            && config.slow_call_rate > 0.0;
        Breaker {
            config,
            clear: AtomicBool::new(false),
            can_clear,
            periods: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State::Closed {
                consecutive: 0,
                window: VecDeque::new(),
                failed: 0,
                slow: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state now (an open breaker whose cooldown ended reports `HalfOpen`).
    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now >= *until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// A permit to send, or `None` while open (or half-open with every trial slot taken). A
    /// closed breaker whose window holds only successes answers without its lock or the clock.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        if self.is_clear() {
            return Some(Permit {
                breaker: self,
                trial: None,
            });
        }
        let mut state = self.lock();
        let trial = match &mut *state {
            State::Closed { .. } => None,
            State::Open { until } if Instant::now() >= *until => {
                let begun = self.periods.fetch_add(1, Ordering::Relaxed);
                let period = Trial(std::num::NonZeroU64::MIN.saturating_add(begun));
                *state = State::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                    period,
                };
                Some(period)
            }
            State::Open { .. } => return None,
            State::HalfOpen {
                in_flight,
                successes,
                period,
            } => {
                if *in_flight + *successes >= self.config.half_open_trials {
                    return None;
                }
                *in_flight += 1;
                Some(*period)
            }
        };
        Some(Permit {
            breaker: self,
            trial,
        })
    }

    fn open(&self, state: &mut State, rng: &Rng) {
        self.clear.store(false, Ordering::Release);
        let jitter = 0.8 + 0.4 * rng.unit();
        *state = State::Open {
            until: Instant::now() + self.config.cooldown.mul_f64(jitter),
        };
    }

    /// Closed with a window of nothing but successes: a success admitted without a trial
    /// changes nothing (see [`Breaker::record`]).
    pub(crate) fn is_clear(&self) -> bool {
        self.clear.load(Ordering::Acquire)
    }

    /// Reports the outcome of a request a permit let through (`trial`: a half-open trial).
    pub(crate) fn record(&self, trial: Option<Trial>, failed: bool, latency: Duration, rng: &Rng) {
        let slow = self.config.slow_call.is_some_and(|t| latency >= t);
        if trial.is_none() && !failed && !slow && self.is_clear() {
            // A success in a window of successes: the window would stay as it is.
            return;
        }
        let mut state = self.lock();
        match &mut *state {
            State::Closed {
                consecutive,
                window,
                failed: failed_in_window,
                slow: slow_in_window,
            } => {
                *consecutive = if failed { *consecutive + 1 } else { 0 };
                window.push_back((failed, slow));
                *failed_in_window += usize::from(failed);
                *slow_in_window += usize::from(slow);
                while window.len() > self.config.window.max(1) {
                    if let Some((f, s)) = window.pop_front() {
                        *failed_in_window -= usize::from(f);
                        *slow_in_window -= usize::from(s);
                    }
                }
                let n = window.len();
                let rate = |count: usize| count as f64 / n as f64;
                let trip = *consecutive >= self.config.consecutive_failures
                    || (n >= self.config.min_calls
                        && (rate(*failed_in_window) >= self.config.failure_rate
                            || rate(*slow_in_window) >= self.config.slow_call_rate));
                let clear = self.can_clear
                    && *consecutive == 0
                    && *failed_in_window == 0
                    && *slow_in_window == 0
                    && n >= self.config.window.max(1);
                if trip {
                    self.open(&mut state, rng);
                } else {
                    self.clear.store(clear, Ordering::Release);
                }
            }
            State::HalfOpen {
                in_flight,
                successes,
                period,
            } if trial == Some(*period) => {
                *in_flight = in_flight.saturating_sub(1);
                if failed || slow {
                    self.open(&mut state, rng);
                } else {
                    *successes += 1;
                    if *successes >= self.config.half_open_trials {
                        *state = State::Closed {
                            consecutive: 0,
                            window: VecDeque::new(),
                            failed: 0,
                            slow: 0,
                        };
                    }
                }
            }
            // A call admitted before the breaker opened, or a trial of an earlier half-open
            // period, finishing late: nothing to learn.
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }

    /// Releases the slot of a half-open trial that ended without an outcome, if its period is
    /// still the current one.
    pub(crate) fn release(&self, trial: Trial) {
        if let State::HalfOpen {
            in_flight, period, ..
        } = &mut *self.lock()
        {
            if trial == *period {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }
}

impl Permit<'_> {
    /// Hands the permit over to the attempt it admits, which reports its outcome
    /// ([`Breaker::record`]) or, if canceled, releases its trial slot ([`Breaker::release`]):
    /// the half-open trial it is, if it is one.
    pub(crate) fn hand_over(self) -> Option<Trial> {
        let trial = self.trial;
        // The attempt now owns the trial slot: nothing for this permit's drop to release.
        std::mem::forget(self);
        trial
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(trial) = self.trial {
            self.breaker.release(trial);
        }
    }
}
