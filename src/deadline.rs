//! Deadline enforcement for async exchanges: one timer per request, armed lazily on first poll,
//! raced against each phase (headers, then every body frame) so the whole exchange, body
//! included, ends by the deadline.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use tokio::time::Sleep;

/// The deadline fired before the future finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Polls `fut` to completion unless `sleep` fires first. The future is polled first, so a result
/// that is ready is never lost to a deadline that fired at the same time.
pub(crate) async fn race<F: Future>(
    fut: F,
    mut sleep: Pin<&mut Sleep>,
) -> Result<F::Output, Elapsed> {
    let mut fut = pin!(fut);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
