//! Rust futures as asyncio awaitables, polled on the event loop's own thread.
//!
//! A request's future is polled by the thread of the loop that awaits it, inside httpfleet's
//! tokio runtime (whose threads drive the sockets, timers and connection tasks). When something
//! the future waits for happens on another thread (a response arrives on a tokio thread, a curl
//! or ureq transfer thread hands over its head), its waker queues the future and the first
//! wake of a batch writes one byte to a socket the loop watches (`loop.add_reader`); the loop's
//! thread then polls every queued future, and resolves the asyncio future of each that ended.
//!
//! So a request crosses threads only where its client library does: a curl transfer is one
//! hand-over to its thread and one back, not also through a tokio task in between (a third of
//! a sequential request on curl and ureq, `bench/benchmark_clients.py`). No tokio thread ever waits
//! for the GIL and no thread is made per request. Cancelling the asyncio future drops the Rust
//! future (the request and its connection); so does the collection of a loop that ended with
//! requests still running (see [`Running`]).

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

/// Turns a finished request's output into the Python value its future gets.
type Done = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

type BoxFuture = Pin<Box<dyn Future<Output = Done> + Send>>;

/// The runtime every async request runs in, made at first use. One worker thread: requests
/// are polled on the loop's thread, and what runs on tokio (connection tasks, timers, the tasks
/// that read hyper and reqwest bodies ahead) is light next to the Python caller. A second
/// worker made tasks hop between workers, each hop a wake-up: with one, the sequential 1 MB
/// streamed row on hyper and reqwest went from 1.42–1.57 of aiohttp to 0.83–0.92, the small
/// sequential GET from 0.98–1.18 to 0.70–0.93 (`bench/benchmark_clients.py`, runs of both
/// builds alternated).
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("httpfleet-py")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start tokio: {e}")))
}

/// One event loop's running requests, and the socket pair that wakes it.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct Completions {
    shared: Arc<Shared>,
    /// The end the loop watches.
    reader: UnixStream,
}

struct Shared {
    /// Tasks woken since the loop last polled.
    ready: Mutex<Vec<Arc<Task>>>,
    /// Set from the first wake of a batch until the loop drains it.
    signalled: AtomicBool,
    writer: UnixStream,
}

/// A request's future and the asyncio future it resolves (until it ends).
struct Task {
    future: Mutex<Option<BoxFuture>>,
    resolves: Mutex<Option<Py<PyAny>>>,
    /// In `Shared::ready` already.
    queued: AtomicBool,
    shared: Weak<Shared>,
}

/// A running request, held by the coroutine that awaits it: `abort()` drops the request, and
/// so does dropping this handle. It shows Python's collector the asyncio future its task
/// holds, so that a loop that ends with requests still running (a cycle: loop, its tasks,
/// their futures, these handles) is collected, and its requests dropped with it.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct Running(Arc<Task>);

#[pymethods]
impl Running {
    /// Drops the request (its connection closes).
    fn abort(&self) {
        self.0.end();
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(resolves) = self.0.resolves.try_lock() {
            if let Some(future) = resolves.as_ref() {
                visit.call(future)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        self.0.end();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.end();
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
                ready: Mutex::new(Vec::new()),
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

    /// Polls every woken request, resolving the futures of those that ended (the loop calls it
    /// when woken).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        // In this order: a wake after the bytes are read but before `signalled` is cleared is
        // taken below; one after it is cleared writes a new byte.
        let mut sink = [0u8; 64];
        while matches!((&self.reader).read(&mut sink), Ok(n) if n > 0) {}
        self.shared.signalled.store(false, Ordering::SeqCst);
        let ready = std::mem::take(&mut *lock(&self.shared.ready));
        let _runtime = runtime()?.enter();
        // Every woken task is polled, even after one fails: its error is raised at the end.
        let mut failed = None;
        for task in ready {
            task.queued.store(false, Ordering::SeqCst);
            if let Err(e) = task.poll(py) {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Shared {
    fn wake_loop(&self) {
        if !self.signalled.swap(true, Ordering::SeqCst) {
            // A full socket buffer already holds a wake-up: nothing is lost.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

impl Task {
    /// Polls the future once; when it ends, resolves the asyncio future (unless cancelled).
    fn poll(self: &Arc<Self>, py: Python<'_>) -> PyResult<()> {
        let polled = {
            let mut slot = lock(&self.future);
            let Some(future) = slot.as_mut() else {
                return Ok(());
            };
            let waker = Waker::from(self.clone());
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                future.as_mut().poll(&mut Context::from_waker(&waker))
            }));
            if let Ok(Poll::Pending) = polled {
                return Ok(());
            }
            *slot = None;
            polled
        };
        let Some(future) = lock(&self.resolves).take() else {
            return Ok(());
        };
        // No lock is held from here: turning the output into Python objects may run Python.
        let outcome = match polled {
            Ok(Poll::Ready(done)) => done(py),
            _ => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "httpfleet: the request panicked",
            )),
        };
        let future = future.bind(py);
        if future.call_method0("cancelled")?.is_truthy()? {
            return Ok(());
        }
        match outcome {
            Ok(value) => future.call_method1("set_result", (value,))?,
            Err(e) => future.call_method1("set_exception", (e.into_value(py),))?,
        };
        Ok(())
    }

    /// Drops the future, if it has not ended, and the asyncio future it would resolve.
    fn end(&self) {
        let future = lock(&self.future).take();
        drop(future);
        let resolves = lock(&self.resolves).take();
        drop(resolves);
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if !self.queued.swap(true, Ordering::SeqCst) {
            lock(&shared.ready).push(self.clone());
            shared.wake_loop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `fut` on this (the loop's) thread; its output, turned into a Python value by
/// `finish`, resolves `future`.
pub(crate) fn spawn<F, T>(
    py: Python<'_>,
    completions: &Completions,
    future: Py<PyAny>,
    fut: F,
    finish: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Running>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let shared = &completions.shared;
    let boxed: BoxFuture = Box::pin(async move {
        let out = fut.await;
        Box::new(move |py: Python<'_>| finish(py, out?)) as Done
    });
    let task = Arc::new(Task {
        future: Mutex::new(Some(boxed)),
        resolves: Mutex::new(Some(future)),
        queued: AtomicBool::new(false),
        shared: Arc::downgrade(shared),
    });
    let _runtime = runtime()?.enter();
    task.poll(py)?;
    Ok(Running(task))
}
