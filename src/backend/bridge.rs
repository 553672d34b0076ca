//! Runs an async backend's exchange from blocking code, on a private current-thread runtime.
//!
//! Outside any tokio runtime the calling thread itself drives the exchange, the I/O driver and
//! the backend's connection tasks (`block_on`): no thread hop, no channel. Several threads may
//! call at once; tokio hands the driver from one to the next. Inside a runtime, where `block_on`
//! would panic, the future runs on a scoped helper thread instead: the call works, it only costs
//! a thread.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

fn runtime() -> Result<&'static Runtime> {
    static RT: OnceLock<std::io::Result<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    })
    .as_ref()
    .map_err(|e| Error::builder(format!("cannot start the blocking bridge runtime: {e}")))
}

/// Drives `fut` to completion from blocking code.
pub(crate) fn block_on<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if Handle::try_current().is_err() {
        return Ok(rt.block_on(fut));
    }
    std::thread::scope(|s| {
        s.spawn(|| rt.block_on(fut)).join().map_err(|_| {
            Error::new(crate::ErrorKind::Canceled).with_detail("blocking bridge thread panicked")
        })
    })
}
