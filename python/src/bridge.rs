//! Rust futures as asyncio awaitables, with one cross-thread wake-up per batch of results.
//!
//! A request runs as a task on httpfleet's tokio runtime. When it ends, its result goes into
//! the `Completions` queue of the event loop that awaits it, and the first result of a batch
//! writes one byte to a socket the loop watches (`loop.add_reader`); the loop's thread then
//! drains the queue and resolves each asyncio future. No tokio thread ever waits for the GIL
//! and no thread is made per request (`pyo3-async-runtimes` spawns two tasks and a blocking
//! call per future: about 120 µs more per request on a 2-core machine, `bench/`).
//! Cancelling the asyncio future aborts the task: the request is dropped.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;

/// Turns a finished request's output into the Python value its future gets.
type Done = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// The runtime every async request runs on, made at first use.
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("httpfleet-py")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start tokio: {e}")))
}

/// One event loop's finished requests, and the socket pair that wakes it.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct Completions {
    shared: Arc<Shared>,
    /// The end the loop watches.
    reader: UnixStream,
}

struct Shared {
    queue: Mutex<Vec<(Py<PyAny>, Done)>>,
    /// Set from the first result of a batch until the loop drains it.
    signalled: AtomicBool,
    writer: UnixStream,
}

/// A running request: `abort()` drops it.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct Running(tokio::task::AbortHandle);

#[pymethods]
impl Running {
    /// Drops the request (its connection closes).
    fn abort(&self) {
        self.0.abort();
    }
}

#[pymethods]
impl Completions {
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Completions {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                writer,
            }),
            reader,
        })
    }

    /// The descriptor for `loop.add_reader`.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Resolves the futures of every finished request (the loop calls it when woken).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        // In this order: a result pushed after the bytes are read but before `signalled` is
        // cleared is taken below; one pushed after it is cleared writes a new byte.
        let mut sink = [0u8; 64];
        while matches!((&self.reader).read(&mut sink), Ok(n) if n > 0) {}
        self.shared.signalled.store(false, Ordering::SeqCst);
        let done =
            std::mem::take(&mut *self.shared.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for (future, finish) in done {
            let future = future.bind(py);
            if future.call_method0("cancelled")?.is_truthy()? {
                continue;
            }
            match finish(py) {
                Ok(value) => future.call_method1("set_result", (value,))?,
                Err(e) => future.call_method1("set_exception", (e.into_value(py),))?,
            };
        }
        Ok(())
    }
}

impl Shared {
    fn push(&self, future: Py<PyAny>, done: Done) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((future, done));
        if !self.signalled.swap(true, Ordering::SeqCst) {
            // A full socket buffer already holds a wake-up: nothing is lost.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

/// Runs `fut` on the runtime; its output, turned into a Python value by `finish`, resolves
/// `future` on the loop of `completions`.
pub(crate) fn spawn<F, T>(
    completions: &Completions,
    future: Py<PyAny>,
    fut: F,
    finish: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Running>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let shared = completions.shared.clone();
    let task = runtime()?.spawn(async move {
        let out = fut.await;
        shared.push(future, Box::new(move |py| finish(py, out?)));
    });
    Ok(Running(task.abort_handle()))
}
