//! Latency estimates: a rolling histogram for percentile hedge delays, and a peak-EWMA cost for
//! the adaptive strategy (as tower's and Finagle's balancers do).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Recomputes the quantile after this many new samples: a request reads it without the lock,
/// and the selection over the window costs once per this many requests.
const REFRESH_EVERY: usize = 16;

/// The last `capacity` latencies, and one quantile of them kept current for hedge delays.
#[derive(Debug)]
pub(crate) struct Histogram {
    samples: Mutex<Samples>,
    capacity: usize,
    /// The quantile the fleet asks for (`0.0..=1.0`).
    p: f64,
    /// Samples needed before the quantile is given.
    min: usize,
    /// The quantile in µs, `u64::MAX` until `min` samples are in.
    quantile_us: AtomicU64,
}

#[derive(Debug, Default)]
struct Samples {
    ring: Vec<u32>,
    next: usize,
    since_refresh: usize,
    scratch: Vec<u32>,
}

impl Histogram {
    /// A window of `capacity` latencies whose `p` quantile is given once `min` are recorded.
    pub(crate) fn new(capacity: usize, p: f64, min: usize) -> Self {
        Histogram {
            samples: Mutex::new(Samples {
                ring: Vec::with_capacity(capacity),
                ..Samples::default()
            }),
            capacity: capacity.max(1),
            p: p.clamp(0.0, 1.0),
            min: min.max(1),
            quantile_us: AtomicU64::new(u64::MAX),
        }
    }

    /// Records one latency (microsecond resolution).
    pub(crate) fn record(&self, latency: Duration) {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *s;
        if s.ring.len() < self.capacity {
            s.ring.push(us);
        } else {
            s.ring[s.next] = us;
        }
        s.next = (s.next + 1) % self.capacity;
        s.since_refresh += 1;
        let n = s.ring.len();
        if n >= self.min && (s.since_refresh >= REFRESH_EVERY || n == self.min) {
            s.since_refresh = 0;
            s.scratch.clear();
            s.scratch.extend_from_slice(&s.ring);
            let rank = ((n - 1) as f64 * self.p).round() as usize;
            let (_, q, _) = s.scratch.select_nth_unstable(rank);
            self.quantile_us.store(u64::from(*q), Ordering::Relaxed);
        }
    }

    /// The quantile of the recorded latencies (as of at most `REFRESH_EVERY` samples ago), once
    /// `min` are in.
    pub(crate) fn quantile(&self) -> Option<Duration> {
        match self.quantile_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

/// Peak-EWMA latency cost of one member, and its requests in flight. Lock-free: each request
/// that ends takes the time of the last one that ended (a swap) and folds its latency into the
/// estimate (a compare-and-swap), so two ending at once each decay it by the time since the
/// other rather than one of them being lost.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    /// The estimate (µs), as `f64` bits.
    cost: AtomicU64,
    /// When a request last ended, in nanoseconds on the fleet's clock.
    last: AtomicU64,
    pending: AtomicUsize,
    /// One over the decay time, in 1/ns.
    per_decay: f64,
}

impl PeakEwma {
    /// An estimate of `initial`, forgetting over `decay`, as of 0 on the fleet's clock.
    pub(crate) fn new(initial: Duration, decay: Duration) -> Self {
        let cost = initial.as_secs_f64() * 1e6;
        PeakEwma {
            cost: AtomicU64::new(cost.to_bits()),
            last: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            per_decay: 1.0 / (decay.as_secs_f64() * 1e9).max(1.0),
        }
    }

    /// The load: the latency estimate (µs) times the requests in flight, plus one.
    pub(crate) fn load(&self) -> f64 {
        let cost = f64::from_bits(self.cost.load(Ordering::Relaxed));
        cost * (self.pending.load(Ordering::Relaxed) + 1) as f64
    }

    pub(crate) fn start(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends one request of `latency` (ns) at `now` (ns, the fleet's clock): a latency above the
    /// estimate replaces it at once (the peak); below, the estimate decays towards it.
    pub(crate) fn finish(&self, latency: u64, now: u64) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        let rtt = latency as f64 * 1e-3;
        let x = now.saturating_sub(self.last.swap(now, Ordering::Relaxed)) as f64 * self.per_decay;
        // Requests a few microseconds apart against a decay of seconds: e^-x by its series
        // (error below x³/6 < 2e-10), without a call to `exp`.
        let w = if x < 1e-3 {
            1.0 - x + 0.5 * x * x
        } else {
            (-x).exp()
        };
        let _ = self
            .cost
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let cost = f64::from_bits(bits);
                Some(
                    if rtt > cost {
                        rtt
                    } else {
                        cost * w + rtt * (1.0 - w)
                    }
                    .to_bits(),
                )
            });
    }

    /// Ends a request that was canceled: only the in-flight count changes.
    pub(crate) fn cancel(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_quantile_appears_with_enough_samples_and_follows_new_ones() {
        let h = Histogram::new(100, 0.9, 20);
        for i in 1..20 {
            h.record(ms(i));
        }
        assert_eq!(h.quantile(), None, "19 samples are not enough");
        h.record(ms(20));
        assert_eq!(h.quantile(), Some(ms(18)), "the 0.9 quantile of 1..=20 ms");
        // The window holds the last 100: after 100 samples of 50 ms, the quantile is theirs,
        // however stale it was within the last REFRESH_EVERY samples.
        for _ in 0..100 {
            h.record(ms(50));
        }
        assert_eq!(h.quantile(), Some(ms(50)));
    }

    #[test]
    fn the_latency_estimate_jumps_to_a_peak_and_decays_by_the_exponential_weight() {
        let e = PeakEwma::new(ms(1), Duration::from_secs(10));
        let cost = |e: &PeakEwma| f64::from_bits(e.cost.load(Ordering::Relaxed));
        let expected = |before: f64, rtt: f64, elapsed: f64| {
            let w = (-elapsed / 10.0f64).exp();
            before * w + rtt * (1.0 - w)
        };
        // 10 µs in (the series branch), a 100 µs answer pulls 1,000 µs down a little.
        let t1 = 10_000;
        e.finish(100_000, t1);
        let want = expected(1000.0, 100.0, 10e-6);
        assert!(
            (cost(&e) - want).abs() < 1e-12 * want,
            "{} vs {want}",
            cost(&e)
        );
        // 5 s later (the `exp` branch).
        let before = cost(&e);
        e.finish(100_000, t1 + 5_000_000_000);
        let want = expected(before, 100.0, 5.0);
        assert!(
            (cost(&e) - want).abs() < 1e-12 * want,
            "{} vs {want}",
            cost(&e)
        );
        // A slower answer is the new estimate at once.
        e.finish(3_000_000, t1 + 6_000_000_000);
        assert_eq!(cost(&e), 3000.0);
    }
}
