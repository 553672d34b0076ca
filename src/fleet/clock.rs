//! [`Clock`]: a fleet's clock, nanoseconds since the fleet was built as one integer, so that an
//! attempt's latency and the time between two updates of a latency estimate are each one
//! subtraction. It reads tokio's clock, which follows tokio's paused clock in tests.

use tokio::time::Instant;

/// A fleet's clock (see the module docs).
#[derive(Debug)]
pub(super) struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock that starts at zero now.
    pub(super) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the clock was made (saturating past 584 years).
    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
