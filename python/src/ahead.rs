//! A streamed body handed to Python: the caller takes every piece that has arrived at once, and
//! waits through the loop (`bridge.rs`), a wake-up of the loop, only when none has.
//!
//! How pieces are gathered depends on where the client library reads:
//!
//! - **curl and ureq** read on their transfer threads, ahead of the reader up to their pipe's
//!   cap. The body is polled on the loop's own thread as the caller asks ([`Polled`]): a piece
//!   crosses threads once, as it would for a Rust caller.
//! - **hyper and reqwest** read on a tokio connection task, one piece ahead of whoever polls
//!   the body. A task beside it reads the body into a queue of at most [`WINDOW`] bytes
//!   ([`Beside`]), stopping when it is full, so that the connection keeps reading while the
//!   caller works.
//!
//! Either way memory stays bounded whatever the body's size. On a sequential 1 MB streamed
//! body (`bench/benchmark_clients.py`), polling on the loop's thread took curl from 1.19–1.21
//! of aiohttp to 1.07 and ureq from 1.50–1.58 to 1.10; hyper and reqwest read at 0.74–0.87 of
//! aiohttp with the task beside them, 0.98–1.18 polled: hence the two ways.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use httpfleet::BackendKind;
use tokio::sync::Notify;

/// How far [`Beside`] reads the body ahead of the caller. With 32 bodies in flight a 1 MiB
/// window held up to 32 MiB read ahead and unread: hyper's and reqwest's 32-in-flight 1 MB rows
/// of `bench/benchmark_clients.py` took 10-15% longer than with this window (three alternated
/// runs of each), and their sequential rows the same.
const WINDOW: usize = 256 * 1024;

/// What a read gets.
pub(crate) enum Taken {
    /// Every piece that had arrived, in order.
    Pieces(Vec<Bytes>),
    /// The body has ended.
    End,
    /// Nothing yet.
    Nothing,
}

type Next = Pin<Box<dyn Future<Output = httpfleet::Result<Taken>> + Send>>;

/// A body being read: the response closes its connection when this is dropped unread.
pub(crate) enum Ahead {
    Polled(Arc<Mutex<Polled>>),
    Beside(Beside),
}

impl Ahead {
    /// Starts reading `resp`'s body (see the module's documentation for how).
    pub(crate) fn start(resp: httpfleet::Response, runtime: &tokio::runtime::Runtime) -> Self {
        match resp.backend() {
            BackendKind::Curl | BackendKind::Ureq => Ahead::Polled(Arc::new(Mutex::new(Polled {
                resp: Some(resp),
                failed: None,
            }))),
            _ => Ahead::Beside(Beside::start(resp, runtime)),
        }
    }

    /// What has arrived, without waiting. An error comes after the pieces before it, once.
    pub(crate) fn take(&self) -> httpfleet::Result<Taken> {
        match self {
            Ahead::Polled(p) => lock(p).take(&mut Context::from_waker(Waker::noop())),
            Ahead::Beside(b) => b.shared.take(),
        }
    }

    /// What has arrived, waiting until something has.
    pub(crate) fn next(&self) -> Next {
        match self {
            Ahead::Polled(p) => {
                let p = p.clone();
                Box::pin(std::future::poll_fn(move |cx| match lock(&p).take(cx) {
                    Ok(Taken::Nothing) => Poll::Pending,
                    taken => Poll::Ready(taken),
                }))
            }
            Ahead::Beside(b) => {
                let shared = b.shared.clone();
                Box::pin(async move {
                    loop {
                        match shared.take()? {
                            Taken::Nothing => shared.arrived.notified().await,
                            taken => return Ok(taken),
                        }
                    }
                })
            }
        }
    }
}

impl Drop for Ahead {
    /// Drops the response (closing its connection) even while a `next` still waits.
    fn drop(&mut self) {
        match self {
            Ahead::Polled(p) => lock(p).resp = None,
            Ahead::Beside(b) => b.task.abort(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A body polled on the caller's thread.
pub(crate) struct Polled {
    /// `None` once the body ended or failed.
    resp: Option<httpfleet::Response>,
    /// An error met after pieces that were handed out first: the next read's.
    failed: Option<httpfleet::Error>,
}

impl Polled {
    /// Takes every piece that has arrived (`Nothing`: none, and `cx` is woken when one does).
    fn take(&mut self, cx: &mut Context<'_>) -> httpfleet::Result<Taken> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut pieces = Vec::new();
        while let Some(resp) = self.resp.as_mut() {
            // `chunk` loses nothing when its future is dropped after one poll.
            let polled = pin!(resp.chunk()).poll(cx);
            match polled {
                Poll::Pending => break,
                Poll::Ready(Ok(Some(piece))) => pieces.push(piece),
                Poll::Ready(Ok(None)) => self.resp = None,
                Poll::Ready(Err(e)) => {
                    self.resp = None;
                    if pieces.is_empty() {
                        return Err(e);
                    }
                    self.failed = Some(e);
                }
            }
        }
        Ok(match (pieces.is_empty(), self.resp.is_some()) {
            (false, _) => Taken::Pieces(pieces),
            (true, true) => Taken::Nothing,
            (true, false) => Taken::End,
        })
    }
}

/// A body read by a task beside the connection, into a bounded queue.
pub(crate) struct Beside {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

struct Shared {
    state: Mutex<State>,
    /// A piece, the end or an error arrived.
    arrived: Notify,
    /// The caller took pieces: there is room again.
    taken: Notify,
}

#[derive(Default)]
struct State {
    pieces: VecDeque<Bytes>,
    queued: usize,
    /// `Some(Ok)` at the body's end, `Some(Err)` when it failed (after the pieces before it).
    end: Option<httpfleet::Result<()>>,
}

impl Beside {
    fn start(resp: httpfleet::Response, runtime: &tokio::runtime::Runtime) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            taken: Notify::new(),
        });
        let task = runtime.spawn(read(resp, shared.clone())).abort_handle();
        Beside { shared, task }
    }
}

impl Shared {
    fn take(&self) -> httpfleet::Result<Taken> {
        let mut st = lock(&self.state);
        if !st.pieces.is_empty() {
            st.queued = 0;
            let pieces = st.pieces.drain(..).collect();
            drop(st);
            self.taken.notify_one();
            return Ok(Taken::Pieces(pieces));
        }
        match st.end.take() {
            None => Ok(Taken::Nothing),
            Some(end) => {
                st.end = Some(Ok(()));
                end.map(|()| Taken::End)
            }
        }
    }
}

/// Reads `resp`'s body into the queue, waiting while the window is full.
async fn read(mut resp: httpfleet::Response, shared: Arc<Shared>) {
    loop {
        while lock(&shared.state).queued >= WINDOW {
            shared.taken.notified().await;
        }
        let read = resp.chunk().await;
        let mut st = lock(&shared.state);
        let ended = match read {
            Ok(Some(piece)) => {
                st.queued += piece.len();
                st.pieces.push_back(piece);
                false
            }
            Ok(None) => {
                st.end = Some(Ok(()));
                true
            }
            Err(e) => {
                st.end = Some(Err(e));
                true
            }
        };
        drop(st);
        shared.arrived.notify_one();
        if ended {
            return;
        }
    }
}
