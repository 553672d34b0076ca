//! A bounded pipe of byte pieces between a thread and async code, either way: a transfer
//! thread (curl, ureq) hands a response body to an async reader, and an async stream or a
//! blocking reader hands a request body to the side that sends it.
//!
//! The writer waits while the pipe holds [`CAP`] bytes or more, so memory stays bounded whatever
//! the body's size; the reader is woken when the pipe goes from empty to not, or ends, and takes
//! every piece it holds at once (one lock and one wake-up for many pieces, no copy): at most
//! twice [`CAP`] and a piece are held between them. A writer that has more to give at once may
//! leave the reader waiting until the pipe holds a batch ([`Writer::send_batched`]). A reader
//! that reads the body whole lets the writer go past the cap and is woken only at the end (the
//! body crosses over once, not piece by piece), or once the pipe holds more than the body's
//! limit (`max_response_bytes`), which the reader then reports. Either side dropped ends the
//! other's wait.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::error::{Error, ErrorKind, Result};
use crate::request::{Outgoing, PieceStream, SendBody};
use crate::response::RawBody;

/// How much a pipe holds before its writer waits.
pub(crate) const CAP: usize = 512 * 1024;

/// How much a batch holds ([`Writer::send_batched`]).
const BATCH: usize = CAP / 2;

struct Shared {
    state: Mutex<State>,
    /// Signaled when room frees up or the reader goes.
    room: Condvar,
}

#[derive(Default)]
struct State {
    pieces: VecDeque<Bytes>,
    len: usize,
    /// How the pipe ended: `Ok` at the body's end, or the error that ended it.
    end: Option<Result<()>>,
    reader: Option<Waker>,
    /// The async writer waiting for room.
    writer: Option<Waker>,
    reader_gone: bool,
    writer_gone: bool,
    /// The reader reads the body whole: no cap, and no wake-up before the end.
    whole: bool,
    /// The reader has asked for a piece (so `whole` is known).
    asked: bool,
    /// Past this many bytes a whole reader is woken all the same.
    whole_max: u64,
    /// The reader waits for pieces the pipe holds, unwoken ([`Writer::send_batched`]).
    owed: bool,
}

/// A new pipe; a reader that reads whole is woken once it holds more than `whole_max` bytes.
pub(crate) fn pipe(whole_max: u64) -> (Writer, Reader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            whole_max,
            ..State::default()
        }),
        room: Condvar::new(),
    });
    (
        Writer(shared.clone()),
        Reader {
            shared,
            taken: VecDeque::new(),
        },
    )
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writing end.
pub(crate) struct Writer(Arc<Shared>);

/// The reading end.
pub(crate) struct Reader {
    shared: Arc<Shared>,
    /// Pieces taken from the pipe, not yet handed out.
    taken: VecDeque<Bytes>,
}

impl Writer {
    /// Adds a piece, waiting (from a thread) while the pipe is full, until `deadline`. `false`
    /// when the reader is gone; a `Timeout` error when the deadline passed first.
    pub(crate) fn send(&self, piece: Bytes, deadline: Instant) -> Result<bool> {
        Ok(self.send_batched(piece, deadline, false)?.0)
    }

    /// [`Writer::send`] from a writer that has more to give at once (`more`): the reader is
    /// then woken only once the pipe holds a batch ([`BATCH`]), and an [`Owed`] is handed back
    /// while it waits unwoken, for the writer to pay before it waits itself. A wake-up costs
    /// the reader's thread a sleep and a wake: woken for every 128 KiB piece, a streamed ureq
    /// download read from async code ran at 0.55-0.90 of ureq's own read over a day's runs, and
    /// at 0.77-1.09 (most above 0.95) woken for a batch (`httpfleet bench --only throughput`).
    pub(crate) fn send_batched(
        &self,
        piece: Bytes,
        deadline: Instant,
        more: bool,
    ) -> Result<(bool, Option<Owed>)> {
        let mut s = self.wait(deadline, |s| s.len < CAP || s.whole, "to be read")?;
        let sent = !s.reader_gone && push(&mut s, piece, more);
        Ok((sent, s.owed.then(|| Owed(self.0.clone()))))
    }

    /// Waits (from a thread) until `ready` holds or the reader is gone, until `deadline` (a
    /// `Timeout` error, saying what the body waited for).
    fn wait(
        &self,
        deadline: Instant,
        ready: impl Fn(&State) -> bool,
        what: &str,
    ) -> Result<MutexGuard<'_, State>> {
        let mut s = lock(&self.0);
        while !ready(&s) && !s.reader_gone {
            pay(&mut s);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(ErrorKind::Timeout(crate::TimeoutPhase::Body))
                    .with_detail(format!("deadline reached while the body waited {what}")));
            }
            s = self
                .0
                .room
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(s)
    }

    /// Adds a piece from async code: `Pending` while the pipe is full, `false` when the reader
    /// is gone.
    pub(crate) fn poll_send(&self, cx: &mut Context<'_>, piece: &mut Option<Bytes>) -> Poll<bool> {
        let mut s = lock(&self.0);
        if s.reader_gone {
            return Poll::Ready(false);
        }
        if s.len >= CAP && !s.whole {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(piece) = piece.take() {
            push(&mut s, piece, false);
        }
        Poll::Ready(true)
    }

    /// Whether the reader is gone.
    pub(crate) fn reader_gone(&self) -> bool {
        lock(&self.0).reader_gone
    }

    /// Whether the reader reads the body whole.
    pub(crate) fn whole(&self) -> bool {
        lock(&self.0).whole
    }

    /// Waits (from a thread) until the reader first asks for a piece (or is gone), so that how
    /// it reads is known before the body is: a body read whole is then gathered in one buffer,
    /// not joined from pieces. A `Timeout` error when `deadline` passed first.
    pub(crate) fn first_ask(&self, deadline: Instant) -> Result<()> {
        self.wait(deadline, |s| s.asked, "for its reader").map(drop)
    }

    /// Ends the pipe: `Ok` at the body's end, or the error that ended it.
    pub(crate) fn end(self, end: Result<()>) {
        let mut s = lock(&self.0);
        s.end = Some(end);
        if let Some(w) = s.reader.take() {
            drop(s);
            w.wake();
        }
    }
}

/// Adds `piece`, waking the reader if it waits for the first one (a whole-body reader waits
/// for the end, or the limit; with `more`, for a batch). `true`.
fn push(s: &mut State, piece: Bytes, more: bool) -> bool {
    if piece.is_empty() {
        return true;
    }
    let was_empty = s.len == 0;
    s.len += piece.len();
    s.pieces.push_back(piece);
    let wake = if s.whole {
        s.len as u64 > s.whole_max
    } else if more {
        s.len >= BATCH
    } else {
        was_empty || s.owed
    };
    if wake {
        s.owed = false;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    } else if more && s.reader.is_some() {
        s.owed = true;
    }
    true
}

/// Wakes a reader left waiting by [`Writer::send_batched`].
fn pay(s: &mut State) {
    if std::mem::take(&mut s.owed) {
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }
}

/// A reader left waiting for pieces the pipe holds ([`Writer::send_batched`]): its writer pays
/// it before it waits (for the peer, or for room), at most a moment later.
pub(crate) struct Owed(Arc<Shared>);

impl Owed {
    /// Wakes the reader if it still waits unwoken.
    pub(crate) fn pay(self) {
        pay(&mut lock(&self.0));
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.writer_gone = true;
        if s.end.is_none() {
            s.end = Some(Err(Error::new(ErrorKind::Canceled)
                .with_detail("the transfer ended without finishing the body")));
        }
        if let Some(w) = s.reader.take() {
            drop(s);
            w.wake();
        }
    }
}

impl Reader {
    /// The next piece, `None` at the end, from async code. `whole`: the reader wants the body
    /// whole, so everything waits for the end and comes as one piece.
    pub(crate) fn poll_piece(
        &mut self,
        cx: &mut Context<'_>,
        whole: bool,
    ) -> Poll<Result<Option<Bytes>>> {
        let Reader { shared, taken } = self;
        if let Some(piece) = taken.pop_front() {
            return Poll::Ready(Ok(Some(piece)));
        }
        let mut s = lock(shared);
        if !s.asked || (whole && !s.whole) {
            s.asked = true;
            s.whole |= whole;
            shared.room.notify_all();
            if let Some(w) = s.writer.take() {
                w.wake();
            }
        }
        let gathering = s.whole && s.len as u64 <= s.whole_max;
        if s.end.is_none() && (s.pieces.is_empty() || gathering) {
            s.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let was_full = s.len >= CAP;
        let next = take(taken, &mut s);
        if was_full {
            shared.room.notify_all();
            if let Some(w) = s.writer.take() {
                w.wake();
            }
        }
        Poll::Ready(next)
    }
}

/// Takes every piece the pipe holds, the first to hand out and the others into `taken` (a body
/// read whole: all of it joined into one), or its end.
fn take(taken: &mut VecDeque<Bytes>, s: &mut State) -> Result<Option<Bytes>> {
    let piece = if s.whole && s.pieces.len() > 1 {
        let mut joined = BytesMut::with_capacity(s.len);
        for p in s.pieces.drain(..) {
            joined.extend_from_slice(&p);
        }
        Some(joined.freeze())
    } else {
        std::mem::swap(taken, &mut s.pieces);
        taken.pop_front()
    };
    if piece.is_some() {
        s.len = 0;
        s.owed = false;
        return Ok(piece);
    }
    match s.end.take() {
        Some(Ok(())) | None => {
            s.end = Some(Ok(()));
            Ok(None)
        }
        Some(Err(e)) => {
            s.end = Some(Ok(()));
            Err(e)
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.reader_gone = true;
        s.pieces.clear();
        self.shared.room.notify_all();
        if let Some(w) = s.writer.take() {
            drop(s);
            w.wake();
        }
    }
}

/// Wakes a blocking reader waiting on the pipe's condition variable. It is woken with the
/// pipe's lock held or just after a change made under it, so it takes no lock itself.
struct Notify(Arc<Shared>);

impl std::task::Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.0.room.notify_all();
    }
}

impl std::io::Read for Reader {
    /// Reads a request body handed over by async code (curl's and ureq's uploads from a stream).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut s = lock(&self.shared);
        loop {
            if let Some(front) = s.pieces.front_mut() {
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                let _ = front.split_to(n);
                if front.is_empty() {
                    s.pieces.pop_front();
                }
                let was_full = s.len >= CAP;
                s.len -= n;
                if was_full && s.len < CAP {
                    self.shared.room.notify_all();
                    if let Some(w) = s.writer.take() {
                        w.wake();
                    }
                }
                return Ok(n);
            }
            match &s.end {
                Some(Ok(())) => return Ok(0),
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => {
                    s.reader = Some(Waker::from(Arc::new(Notify(self.shared.clone()))));
                    s = self
                        .shared
                        .room
                        .wait(s)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// A response body a transfer thread hands over through a pipe.
pub(crate) struct Piped(pub(crate) Reader);

impl RawBody for Piped {
    fn poll_piece(&mut self, cx: &mut Context<'_>, whole: bool) -> Poll<Result<Option<Bytes>>> {
        self.0.poll_piece(cx, whole)
    }

    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>> {
        super::block_on(std::future::poll_fn(|cx| self.0.poll_piece(cx, whole)))?
    }
}

/// `out` with a stream body swapped for the reading end of a pipe (a blocking reader a
/// transfer thread can read), and the pump that fills the pipe from the caller's task.
pub(crate) fn pump_stream(mut out: Outgoing<'_>) -> (Outgoing<'_>, Option<Pump>) {
    match std::mem::replace(&mut out.body, SendBody::Bytes(Bytes::new())) {
        SendBody::Stream(stream) => {
            let (writer, reader) = pipe(u64::MAX);
            out.body = SendBody::Reader(Box::new(reader));
            (out, Some(Pump::new(stream, writer)))
        }
        body => {
            out.body = body;
            (out, None)
        }
    }
}

/// Awaits `fut`, running `pump` beside it until the pump is done.
pub(crate) async fn beside<F: std::future::Future>(pump: &mut Option<Pump>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Some(p) = pump {
            if p.poll(cx).is_ready() {
                *pump = None;
            }
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Reads an async stream body into a pipe, as the transfer thread takes it.
pub(crate) struct Pump {
    stream: PieceStream,
    writer: Option<Writer>,
    held: Option<Bytes>,
}

impl Pump {
    pub(crate) fn new(stream: PieceStream, writer: Writer) -> Self {
        Pump {
            stream,
            writer: Some(writer),
            held: None,
        }
    }

    /// Moves pieces until the stream ends (or fails, or the reader is gone): `Ready` then.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(writer) = &self.writer else {
                return Poll::Ready(());
            };
            if self.held.is_some() {
                match writer.poll_send(cx, &mut self.held) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(true) => {}
                    Poll::Ready(false) => {
                        self.writer = None;
                        return Poll::Ready(());
                    }
                }
            }
            match self.stream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(piece))) => self.held = Some(piece),
                Poll::Ready(end) => {
                    let end = match end {
                        Some(Err(e)) => Err(Error::new(ErrorKind::Body)
                            .with_detail("the request body's stream failed")
                            .with_source(e)),
                        _ => Ok(()),
                    };
                    if let Some(w) = self.writer.take() {
                        w.end(end);
                    }
                    return Poll::Ready(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_thread_writes_past_the_cap_only_as_the_reader_takes() {
        let (w, r) = pipe(u64::MAX);
        let writer = std::thread::spawn(move || {
            let far = Instant::now() + Duration::from_secs(10);
            for _ in 0..64 {
                assert!(w.send(Bytes::from(vec![7u8; 64 * 1024]), far).unwrap());
            }
            w.end(Ok(()));
        });
        let mut total = 0;
        let mut r = r;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut r, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        writer.join().unwrap();
        assert_eq!(total, 64 * 64 * 1024);
    }

    /// Counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_batched_send_wakes_the_reader_at_a_batch_or_when_paid() {
        let count = Arc::new(Count(Default::default()));
        let wakes = || count.0.load(std::sync::atomic::Ordering::SeqCst);
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let far = Instant::now() + Duration::from_secs(10);
        let piece = || Bytes::from(vec![7u8; 128 * 1024]);
        let (w, mut r) = pipe(u64::MAX);
        assert!(r.poll_piece(&mut cx, false).is_pending());
        // More to come: the reader waits unwoken, and the writer holds what it owes.
        let (sent, owed) = w.send_batched(piece(), far, true).unwrap();
        assert!(sent && owed.is_some());
        assert_eq!(wakes(), 0);
        owed.unwrap().pay();
        assert_eq!(wakes(), 1);
        // Until a batch: then the reader is woken, and nothing is owed.
        assert!(matches!(
            r.poll_piece(&mut cx, false),
            Poll::Ready(Ok(Some(_)))
        ));
        assert!(r.poll_piece(&mut cx, false).is_pending());
        let mut owed = None;
        for _ in 0..BATCH / (128 * 1024) {
            owed = w.send_batched(piece(), far, true).unwrap().1;
        }
        assert!(owed.is_none());
        assert_eq!(wakes(), 2);
        // A piece with nothing behind it wakes a reader left waiting.
        while let Poll::Ready(Ok(Some(_))) = r.poll_piece(&mut cx, false) {}
        assert!(w.send_batched(piece(), far, true).unwrap().1.is_some());
        assert!(w.send_batched(piece(), far, false).unwrap().1.is_none());
        assert_eq!(wakes(), 3);
    }

    #[test]
    fn a_gone_reader_stops_the_writer_and_a_gone_writer_ends_the_reader() {
        let (w, r) = pipe(u64::MAX);
        drop(r);
        assert!(!w.send(Bytes::from_static(b"x"), Instant::now()).unwrap());
        let (w, mut r) = pipe(u64::MAX);
        drop(w);
        assert!(std::io::Read::read(&mut r, &mut [0u8; 8]).is_err());
    }
}
