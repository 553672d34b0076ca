//! Latency estimates: a rolling histogram for percentile hedge delays, and a peak-EWMA cost for
//! the adaptive strategy (as tower's and Finagle's balancers do).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Recomputes the hedge quantile after this many new samples: a request reads it without the
/// lock, and the sort of the window costs once per this many requests.
const REFRESH_EVERY: usize = 16;

/// The last `capacity` latencies (microsecond resolution), their quantiles computed when asked.
#[derive(Debug)]
pub(crate) struct Window {
    samples: Mutex<Ring>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Ring {
    ring: Vec<u32>,
    next: usize,
}

impl Window {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Window {
            samples: Mutex::new(Ring {
                ring: Vec::with_capacity(capacity),
                next: 0,
            }),
            capacity,
        }
    }

    /// Records one latency; returns how many are held.
    pub(crate) fn record(&self, latency: Duration) -> usize {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.ring.len() < self.capacity {
            s.ring.push(us);
        } else {
            let next = s.next;
            s.ring[next] = us;
        }
        s.next = (s.next + 1) % self.capacity;
        s.ring.len()
    }

    /// How many latencies are held, and the `ps` quantiles (each `0.0..=1.0`, nearest rank) of
    /// them; `None` when there are none.
    pub(crate) fn quantiles<const N: usize>(&self, ps: [f64; N]) -> Option<(usize, [Duration; N])> {
        let mut sorted = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ring
            .clone();
        if sorted.is_empty() {
            return None;
        }
        let n = sorted.len();
        let rank = |p: f64| ((n - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
        if let [p] = ps[..] {
            // One quantile (the hedge delay, every few requests): a selection, not a sort.
            sorted.select_nth_unstable(rank(p));
        } else {
            sorted.sort_unstable();
        }
        Some((
            n,
            ps.map(|p| Duration::from_micros(u64::from(sorted[rank(p)]))),
        ))
    }
}

/// A [`Window`] whose one quantile is kept current for hedge delays.
#[derive(Debug)]
pub(crate) struct Histogram {
    window: Window,
    /// The quantile the fleet asks for (`0.0..=1.0`).
    p: f64,
    /// Samples needed before the quantile is given.
    min: usize,
    since_refresh: AtomicUsize,
    /// The quantile in µs, `u64::MAX` until `min` samples are in.
    quantile_us: AtomicU64,
}

impl Histogram {
    /// A window of `capacity` latencies whose `p` quantile is given once `min` are recorded.
    pub(crate) fn new(capacity: usize, p: f64, min: usize) -> Self {
        Histogram {
            window: Window::new(capacity),
            p: p.clamp(0.0, 1.0),
            min: min.max(1),
            since_refresh: AtomicUsize::new(0),
            quantile_us: AtomicU64::new(u64::MAX),
        }
    }

    /// Records one latency (microsecond resolution).
    pub(crate) fn record(&self, latency: Duration) {
        let n = self.window.record(latency);
        let since = self.since_refresh.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.min && (since >= REFRESH_EVERY || n == self.min) {
            self.since_refresh.store(0, Ordering::Relaxed);
            if let Some((_, [q])) = self.window.quantiles([self.p]) {
                let us = u64::try_from(q.as_micros()).unwrap_or(u64::MAX - 1);
                self.quantile_us.store(us, Ordering::Relaxed);
            }
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
    fn a_window_gives_nearest_rank_quantiles_of_its_last_samples() {
        let w = Window::new(100);
        assert_eq!(w.quantiles([0.5]), None);
        for i in (1..=200).rev() {
            w.record(ms(i));
        }
        // The last 100 recorded: 100 ms down to 1 ms.
        let (n, [p50, p90, p99, max]) = w.quantiles([0.5, 0.9, 0.99, 1.0]).unwrap();
        assert_eq!(n, 100);
        assert_eq!((p50, p90, p99, max), (ms(51), ms(90), ms(99), ms(100)));
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
