//! Deadline enforcement for async exchanges: one timer per request, armed lazily on first poll,
//! raced against each phase (headers, then every body frame) so the whole exchange, body
//! included, ends by the deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::Sleep;

/// The deadline fired before the future finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

pin_project_lite::pin_project! {
    /// A future raced against a deadline: see [`race`]. A plain struct rather than an `async fn`,
    /// so the wrapped future is stored once (an `async fn` would keep both its argument and its
    /// pinned copy, doubling the size of everything it wraps).
    pub(crate) struct Race<'s, F> {
        #[pin]
        fut: F,
        sleep: Pin<&'s mut Sleep>,
    }
}

impl<F: Future> Future for Race<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Polls `fut` to completion unless `sleep` fires first. The future is polled first, so a result
/// that is ready is never lost to a deadline that fired at the same time.
pub(crate) fn race<F: Future>(fut: F, sleep: Pin<&mut Sleep>) -> Race<'_, F> {
    Race { fut, sleep }
}
