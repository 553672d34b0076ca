//! Deadlines for async exchanges: each phase (the head, then every piece of the body) is raced
//! against the request's deadline, so the whole exchange, body included, ends by it.
//!
//! hyper and reqwest exchanges keep their deadline on one [`watchdog`] thread rather than on
//! tokio's timer: a request then registers nothing with the runtime's time driver, which is
//! what makes a per-request tokio timer cost about 1,000 instructions (3% of a loopback GET;
//! callgrind, `scripts/instructions.sh`). The mock transport and a fleet over it race tokio's
//! [`Sleep`] instead, so that they follow tokio's paused clock in tests.

mod watchdog;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;

pub(crate) use watchdog::Watch;

/// The deadline fired before the future finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Something that fires once a deadline has passed.
pub(crate) trait Expiry {
    /// `Ready` once the deadline has passed; otherwise `cx` is woken when it does.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl Expiry for &mut Watch {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Watch::poll_expired(self, cx)
    }
}

/// A timer for delays rather than deadlines (a fleet's hedge delay): a watchdog entry, or
/// tokio's timer where time is tokio's.
pub(crate) enum Timer {
    Watch(Watch),
    Tokio(Pin<Box<Sleep>>),
}

impl Timer {
    /// Fires `delay` from now, on tokio's clock if `tokio_clock`.
    pub(crate) fn after(delay: Duration, tokio_clock: bool) -> Timer {
        let at = tokio::time::Instant::now() + delay;
        if tokio_clock {
            Timer::Tokio(Box::pin(tokio::time::sleep_until(at)))
        } else {
            Timer::Watch(Watch::new(at.into_std()))
        }
    }

    /// Fires again `delay` from now.
    pub(crate) fn reset(&mut self, delay: Duration) {
        let at = tokio::time::Instant::now() + delay;
        match self {
            Timer::Tokio(s) => s.as_mut().reset(at),
            Timer::Watch(w) => *w = Watch::new(at.into_std()),
        }
    }
}

impl Expiry for Timer {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Timer::Watch(w) => w.poll_expired(cx),
            Timer::Tokio(s) => s.as_mut().poll(cx),
        }
    }
}

impl Expiry for &mut Timer {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Timer::poll_expired(self, cx)
    }
}

pin_project_lite::pin_project! {
    /// A future raced against a deadline: see [`race`].
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
