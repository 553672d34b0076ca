//! [`Clock`]: the fleet's clock, nanoseconds since the fleet was built as one integer, so that
//! an attempt's latency and the time between two updates of a latency estimate are each one
//! subtraction.
//!
//! It reads the monotonic clock (`CLOCK_MONOTONIC`, the clock of [`std::time::Instant`]) as
//! seconds and nanoseconds and adds them: `Instant` would take a normalizing subtraction of two
//! timespecs and a conversion from `Duration` per reading, several times the cost of the reading
//! itself on the adaptive strategy's path. Where time is tokio's (a mock transport, whose
//! latencies follow tokio's clock, paused in tests) it reads tokio's clock instead.

use std::time::Duration;

use tokio::time::Instant;

/// The fleet's clock (see the module docs).
#[derive(Debug)]
pub(super) struct Clock {
    /// The monotonic clock's reading, in nanoseconds, when the clock was made.
    epoch: u64,
    /// The same instant on tokio's clock.
    tokio_epoch: Instant,
    /// Read tokio's clock rather than the monotonic clock.
    tokio: bool,
}

impl Clock {
    /// A clock that starts at zero now; it follows tokio's clock if `tokio`.
    pub(super) fn new(tokio: bool) -> Self {
        Clock {
            epoch: monotonic(),
            tokio_epoch: Instant::now(),
            tokio,
        }
    }

    /// Nanoseconds since the clock was made.
    #[inline]
    pub(super) fn now(&self) -> u64 {
        if self.tokio {
            nanos(Instant::now().saturating_duration_since(self.tokio_epoch))
        } else {
            monotonic().saturating_sub(self.epoch)
        }
    }
}

/// `d` in nanoseconds (saturating past 584 years), without `as_nanos`'s 128-bit arithmetic.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// The monotonic clock in nanoseconds.
#[cfg(unix)]
#[inline]
fn monotonic() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // The monotonic clock counts from boot: never negative, and 584 years of uptime away from
    // overflowing.
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// The monotonic clock in nanoseconds (since its first reading in this process).
#[cfg(not(unix))]
#[inline]
fn monotonic() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    nanos(ORIGIN.get_or_init(std::time::Instant::now).elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_reading_keeps_pace_with_std_instant() {
        let clock = Clock::new(false);
        let started = std::time::Instant::now();
        let a = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let b = clock.now();
        let elapsed = nanos(started.elapsed());
        assert!(b > a, "{a} then {b}");
        assert!(
            b - a >= 20_000_000,
            "slept 20 ms, the clock moved {} ns",
            b - a
        );
        assert!(
            b - a <= elapsed,
            "{} ns on the clock, {elapsed} ns on Instant",
            b - a
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_on_tokio_time_follows_the_paused_clock() {
        let clock = Clock::new(true);
        let a = clock.now();
        tokio::time::advance(Duration::from_millis(7)).await;
        assert_eq!(clock.now() - a, 7_000_000);
    }
}
