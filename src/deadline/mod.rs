//! Deadline enforcement for async exchanges, raced against each phase (headers, then every body
//! frame) so the whole exchange, body included, ends by the deadline.
//!
//! The network transports keep their deadlines on one [`watchdog`] thread rather than on tokio's
//! timer: a request then registers nothing with the runtime's time driver, which is what makes
//! a per-request tokio timer cost about 1,000 instructions (3% of a loopback GET). The mock
//! transport races tokio's [`Sleep`] instead, so that it follows tokio's paused clock in tests.

mod watchdog;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Sleep;

pub(crate) use watchdog::{Nudge, Watch, nudges};

/// The deadline fired before the future finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Something that fires once a deadline has passed: a tokio [`Sleep`] or a [`Watch`].
pub(crate) trait Expiry {
    /// `Ready` once the deadline has passed; otherwise `cx` is woken when it does.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl Expiry for Pin<&mut Sleep> {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.as_mut().poll(cx)
    }
}

impl Expiry for &mut Watch {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Watch::poll_expired(self, cx)
    }
}

/// Either of two expiries, whichever fires first.
impl<A: Expiry, B: Expiry> Expiry for (A, B) {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.poll_expired(cx).is_ready() {
            return Poll::Ready(());
        }
        self.1.poll_expired(cx)
    }
}

/// A timer that can fire again, for delays rather than deadlines (a hedge's): a nudge given to
/// the exchange's own deadline watch, or a timer of its own ([`Armed`]). The nudge, the common
/// case, holds nothing to release: dropping it runs no destructor.
pub(crate) enum Timer {
    /// Fires at `nudge` before `deadline`. It registers nothing: the exchange it is raced
    /// against was given the same nudge ([`Watch::nudging`]), so the exchange's own deadline
    /// watch wakes the task then. Until the generation of [`nudges`] moves from `seen`, it has
    /// not fired, which one atomic load tells; the clock is read only once it has moved. Reset,
    /// it becomes a watchdog entry.
    Nudge {
        deadline: std::time::Instant,
        nudge: Nudge,
        seen: u64,
    },
    Armed(Armed),
}

/// A timer of its own: a watchdog entry, or tokio's timer where time is tokio's (a mock
/// transport's latencies follow tokio's clock, paused in tests).
pub(crate) enum Armed {
    Watch(Watch),
    Tokio(Pin<Box<Sleep>>),
}

impl Timer {
    /// Fires `delay` from now, on tokio's clock if `tokio_clock`.
    pub(crate) fn after(delay: std::time::Duration, tokio_clock: bool) -> Timer {
        let at = tokio::time::Instant::now() + delay;
        Timer::Armed(if tokio_clock {
            Armed::Tokio(Box::pin(tokio::time::sleep_until(at)))
        } else {
            Armed::Watch(Watch::new(at.into_std()))
        })
    }

    /// Fires again `delay` from now.
    pub(crate) fn reset(&mut self, delay: std::time::Duration) {
        let at = tokio::time::Instant::now() + delay;
        match self {
            Timer::Armed(Armed::Tokio(s)) => s.as_mut().reset(at),
            _ => *self = Timer::Armed(Armed::Watch(Watch::new(at.into_std()))),
        }
    }
}

impl Expiry for &mut Timer {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Timer::poll_expired(self, cx)
    }
}

impl Expiry for Timer {
    #[inline]
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Timer::Armed(Armed::Watch(w)) => w.poll_expired(cx),
            Timer::Armed(Armed::Tokio(s)) => s.as_mut().poll(cx),
            Timer::Nudge {
                deadline,
                nudge,
                seen,
            } => {
                let now = nudges();
                if now == *seen {
                    return Poll::Pending;
                }
                if std::time::Instant::now() + nudge.lead() >= *deadline {
                    return Poll::Ready(());
                }
                // Another request's nudge: this one is still to come.
                *seen = now;
                Poll::Pending
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A future raced against a deadline: see [`race`]. A plain struct rather than an `async fn`,
    /// so the wrapped future is stored once (an `async fn` would keep both its argument and its
    /// pinned copy, doubling the size of everything it wraps).
    pub(crate) struct Race<F, E> {
        #[pin]
        fut: F,
        expiry: E,
    }
}

impl<F: Future, E: Expiry> Future for Race<F, E> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.expiry.poll_expired(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Polls `fut` to completion unless `expiry` fires first. The future is polled first, so a
/// result that is ready is never lost to a deadline that fired at the same time.
pub(crate) fn race<F: Future, E: Expiry>(fut: F, expiry: E) -> Race<F, E> {
    Race { fut, expiry }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_nudge_timer_fires_at_its_own_nudge_and_not_at_another_one() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let nudge =
            |after_ms: u64| Nudge::before_deadline(Duration::from_millis(10_000 - after_ms));
        // Another request's nudge passes first, on the same task.
        let mut other = Watch::new(deadline).nudging(nudge(10));
        let mut own = Watch::new(deadline).nudging(nudge(60));
        let mut timer = Timer::Nudge {
            deadline,
            nudge: nudge(60).unwrap(),
            seen: nudges(),
        };
        let mut woken = 0;
        std::future::poll_fn(|cx| {
            woken += 1;
            assert!(other.poll_expired(cx).is_pending());
            assert!(own.poll_expired(cx).is_pending());
            timer.poll_expired(cx)
        })
        .await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(60), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(
            woken >= 3,
            "polled {woken} times: the other nudge never woke the task"
        );
    }
}
