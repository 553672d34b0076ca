//! Reading a streamed body ahead of the Python caller, within a bounded window.
//!
//! Handing each piece to the event loop costs a wake-up of the loop (`bridge.rs`); a body that
//! comes in many pieces would pay one per piece. A task reads the body into a queue of at most
//! [`WINDOW`] bytes; the caller takes everything queued at once, without waiting or waking
//! anything when the queue is not empty, and waits through the loop only when it is. The
//! window holds the sender back as the caller's own reading would (the task stops reading when
//! it is full), so memory stays bounded whatever the body's size.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

/// How far the body is read ahead of the caller.
const WINDOW: usize = 1024 * 1024;

/// What a read gets.
pub(crate) enum Taken {
    /// Every piece queued, in order.
    Pieces(Vec<Bytes>),
    /// The body has ended.
    End,
    /// Nothing yet.
    Nothing,
}

/// A body being read ahead; the reading task ends when it is dropped.
pub(crate) struct Ahead {
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

impl Ahead {
    /// Starts reading `resp`'s body on `runtime`.
    pub(crate) fn start(resp: httpfleet::Response, runtime: &tokio::runtime::Runtime) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            taken: Notify::new(),
        });
        let task = runtime.spawn(read(resp, shared.clone())).abort_handle();
        Ahead { shared, task }
    }

    /// What has arrived, without waiting. An error comes after the pieces before it, once.
    pub(crate) fn take(&self) -> httpfleet::Result<Taken> {
        take(&self.shared)
    }

    /// What has arrived, waiting until something has.
    pub(crate) fn next(&self) -> impl Future<Output = httpfleet::Result<Taken>> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                match take(&shared)? {
                    Taken::Nothing => shared.arrived.notified().await,
                    taken => return Ok(taken),
                }
            }
        }
    }
}

fn take(shared: &Shared) -> httpfleet::Result<Taken> {
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if !st.pieces.is_empty() {
        st.queued = 0;
        let pieces = st.pieces.drain(..).collect();
        drop(st);
        shared.taken.notify_one();
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

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads `resp`'s body into the queue, waiting while the window is full.
async fn read(mut resp: httpfleet::Response, shared: Arc<Shared>) {
    loop {
        while shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .queued
            >= WINDOW
        {
            shared.taken.notified().await;
        }
        let read = resp.chunk().await;
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
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
