//! Latency estimates: a rolling histogram for percentile hedge delays, and a peak-EWMA cost for
//! the adaptive strategy (as tower's and Finagle's balancers do).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The last `capacity` latencies, for percentiles.
#[derive(Debug)]
pub(crate) struct Histogram {
    samples: Mutex<(Vec<u32>, usize)>,
    capacity: usize,
}

impl Histogram {
    pub(crate) fn new(capacity: usize) -> Self {
        Histogram {
            samples: Mutex::new((Vec::with_capacity(capacity), 0)),
            capacity: capacity.max(1),
        }
    }

    /// Records one latency (microsecond resolution).
    pub(crate) fn record(&self, latency: Duration) {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (buf, next) = &mut *s;
        if buf.len() < self.capacity {
            buf.push(us);
        } else {
            buf[*next] = us;
        }
        *next = (*next + 1) % self.capacity;
    }

    /// The `p` quantile (`0.0..=1.0`) of the recorded latencies, once at least `min` are there.
    pub(crate) fn quantile(&self, p: f64, min: usize) -> Option<Duration> {
        let mut v = {
            let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            if s.0.len() < min.max(1) {
                return None;
            }
            s.0.clone()
        };
        let rank = ((v.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
        let (_, q, _) = v.select_nth_unstable(rank);
        Some(Duration::from_micros(u64::from(*q)))
    }
}

/// Peak-EWMA latency cost of one member, and its requests in flight.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    state: Mutex<(f64, Instant)>,
    pending: AtomicUsize,
    decay: Duration,
}

impl PeakEwma {
    pub(crate) fn new(initial: Duration, decay: Duration) -> Self {
        PeakEwma {
            state: Mutex::new((initial.as_secs_f64() * 1e6, Instant::now())),
            pending: AtomicUsize::new(0),
            decay,
        }
    }

    /// The load: the latency estimate (µs) times the requests in flight, plus one.
    pub(crate) fn load(&self) -> f64 {
        let (cost, _) = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        cost * (self.pending.load(Ordering::Relaxed) + 1) as f64
    }

    pub(crate) fn start(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends one request: a latency above the estimate replaces it at once (the peak); below, the
    /// estimate decays towards it.
    pub(crate) fn finish(&self, latency: Duration, now: Instant) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        let rtt = latency.as_secs_f64() * 1e6;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if rtt > s.0 {
            s.0 = rtt;
        } else {
            let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
            let w = (-elapsed / self.decay.as_secs_f64().max(1e-9)).exp();
            s.0 = s.0 * w + rtt * (1.0 - w);
        }
        s.1 = now;
    }

    /// Ends a request that was canceled: only the in-flight count changes.
    pub(crate) fn cancel(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}
