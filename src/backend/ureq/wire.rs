//! ureq's connections, watched for two things ureq does not report:
//!
//! - **Connection setup.** An I/O error while a connection is being made (TCP, proxy, TLS) is
//!   marked [`ConnectFailed`], so that an unreachable host met *after* the request was written
//!   is never taken for one that was never sent.
//! - **Trailers.** ureq skips a chunked response's trailer lines unread; hyper, reqwest and curl
//!   fail a response whose trailer section holds a line that is not a header field. The
//!   transport here follows each response's framing as its bytes are read and notes such a line
//!   ([`take_invalid_trailer`]), so that ureq fails it too.
//!
//! - **Reads that wait.** A body's pipe may leave its reader waiting while the transfer thread
//!   reads on ([`owe`]): a read that does not end at once wakes that reader first.
//!
//! Framing is followed from the bytes ureq reads, never changed: when it cannot be followed (a
//! line over 64 KiB, a chunk size that does not parse), watching stops and ureq's own parser
//! decides.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use ureq::unversioned::transport::time::Duration;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

use crate::backend::pipe::Owed;

/// The longest line followed; a longer one stops the watch.
const MAX_LINE: usize = 64 * 1024;

thread_local! {
    /// Set on the thread that read a response whose trailer section holds an invalid line:
    /// ureq runs an exchange, body included, on the thread that sends it.
    static INVALID_TRAILER: Cell<bool> = const { Cell::new(false) };
    /// The last read on this thread filled the room it had: the peer likely has more at once.
    static FILLED: Cell<bool> = const { Cell::new(false) };
    /// A reader left waiting by this thread's pipe, woken before a read that waits.
    static OWED: RefCell<Option<Owed>> = const { RefCell::new(None) };
}

/// How long a read may take, a reader waiting unwoken, before that reader is woken. A socket's
/// read timeout counts in ticks of the kernel's clock, so this is one tick (1-10 ms, 4 ms on
/// this machine's kernel): how late the last pieces before a stall may reach their reader.
const PATIENCE: std::time::Duration = std::time::Duration::from_micros(500);

/// Whether the last read on this thread filled the room it had (the peer likely has more at
/// once).
pub(super) fn read_filled() -> bool {
    FILLED.get()
}

/// Holds `owed` (replacing any held before) until this thread's next read that does not end
/// within [`PATIENCE`]: then its reader is woken.
pub(super) fn owe(owed: Option<Owed>) {
    OWED.replace(owed);
}

/// Whether the last response read on this thread had an invalid trailer line (and forgets it).
pub(super) fn take_invalid_trailer() -> bool {
    INVALID_TRAILER.with(Cell::take)
}

/// An I/O error met while a connection was being made.
#[derive(Debug)]
pub(super) struct ConnectFailed(pub(super) std::io::Error);

impl fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connecting failed: {}", self.0)
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Wraps ureq's connector: its errors marked, its transports watched.
#[derive(Debug)]
pub(super) struct Watching<C>(pub(super) C);

impl<C: Connector<()>> Connector<()> for Watching<C> {
    type Out = Watched<C::Out>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        match self.0.connect(details, chained) {
            Ok(out) => Ok(out.map(|inner| Watched {
                inner,
                framing: Framing::default(),
            })),
            Err(ureq::Error::Io(e)) => Err(ureq::Error::Io(std::io::Error::new(
                e.kind(),
                ConnectFailed(e),
            ))),
            Err(e) => Err(e),
        }
    }
}

/// A transport whose response framing is followed as ureq reads it.
#[derive(Debug)]
pub(super) struct Watched<T> {
    inner: T,
    framing: Framing,
}

impl<T: Transport> Transport for Watched<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let output = &self.inner.buffers().output()[..amount];
        self.framing.sent(output);
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let before = self.inner.buffers().input().len();
        let room = self.inner.buffers().input_append_buf().len();
        let progress = match OWED.take() {
            Some(owed) => self.await_owing(timeout, owed)?,
            None => self.inner.await_input(timeout)?,
        };
        let input = self.inner.buffers().input();
        FILLED.set(room > 0 && input.len() >= before + room);
        self.framing.read(&input[before.min(input.len())..]);
        Ok(progress)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

impl<T: Transport> Watched<T> {
    /// A read while `owed`'s reader waits unwoken: given [`PATIENCE`], then the reader is woken
    /// and the read goes on for what is left of `timeout`.
    fn await_owing(&mut self, timeout: NextTimeout, owed: Owed) -> Result<bool, ureq::Error> {
        let read = timeout.for_read();
        if read.after <= Duration::from(PATIENCE) {
            owed.pay();
            return self.inner.await_input(timeout);
        }
        let started = Instant::now();
        let brief = NextTimeout {
            per_read: Some(PATIENCE.into()),
            ..timeout
        };
        match self.inner.await_input(brief) {
            Err(ureq::Error::Timeout(_)) => {
                owed.pay();
                let spent = started.elapsed();
                let less = |d: Duration| match d {
                    Duration::Exact(d) => Duration::Exact(d.saturating_sub(spent)),
                    Duration::NotHappening => d,
                };
                self.inner.await_input(NextTimeout {
                    after: less(timeout.after),
                    per_read: timeout.per_read.map(less),
                    ..timeout
                })
            }
            other => {
                OWED.replace(Some(owed));
                other
            }
        }
    }
}

/// Where a connection's response stands.
#[derive(Debug, Default)]
enum State {
    /// Reading a response head: its status and framing so far.
    #[default]
    Head,
    /// `n` bytes of a body with a `Content-Length` left.
    Length(u64),
    /// A chunk-size line.
    ChunkSize,
    /// `n` bytes of chunk data left, then its line end.
    ChunkData(u64),
    /// The line end after a chunk's data.
    ChunkEnd,
    /// The trailer section, up to its blank line.
    Trailers,
    /// A body read until the connection closes, or framing that could not be followed.
    Unwatched,
}

/// The framing of the responses on one connection.
#[derive(Debug, Default)]
struct Framing {
    state: State,
    /// The current line, without its line end.
    line: Vec<u8>,
    /// Whether each request sent and not yet answered is a `HEAD` (its response has no body).
    heads: VecDeque<bool>,
    /// A request is being sent (its later output is its body).
    sending: bool,
    /// The head being read: status, chunked, declared length.
    status: u16,
    chunked: bool,
    length: Option<u64>,
}

impl Framing {
    /// Notes output: the first bytes of a request tell its method.
    fn sent(&mut self, bytes: &[u8]) {
        if !self.sending && !bytes.is_empty() {
            self.heads.push_back(bytes.starts_with(b"HEAD "));
            self.sending = true;
        }
    }

    /// Follows bytes read from the connection.
    fn read(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Unwatched => return,
                State::Length(n) | State::ChunkData(n) => {
                    let take = n.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    self.state = match (&self.state, n - take) {
                        (State::Length(_), 0) => self.response_ended(),
                        (State::Length(_), left) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        (_, left) => State::ChunkData(left),
                    };
                }
                _ => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        self.extend_line(bytes);
                        return;
                    };
                    self.extend_line(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    let line = std::mem::take(&mut self.line);
                    self.state = self.on_line(&line);
                    self.line = line;
                    self.line.clear();
                }
            }
        }
    }

    fn extend_line(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > MAX_LINE {
            self.state = State::Unwatched;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// The state after one whole line in a line-oriented state.
    fn on_line(&mut self, line: &[u8]) -> State {
        match self.state {
            State::Head if self.status == 0 => {
                // The status line: `HTTP/1.1 200 OK`.
                self.status = line
                    .get(9..12)
                    .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok())
                    .unwrap_or(0);
                if self.status == 0 {
                    return State::Unwatched;
                }
                State::Head
            }
            State::Head if line.is_empty() => self.head_ended(),
            State::Head => {
                if let Some((name, value, _)) = crate::headers::field(line) {
                    if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        self.chunked = value
                            .rsplit(|&b| b == b',')
                            .next()
                            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                    } else if name.eq_ignore_ascii_case(b"content-length") {
                        self.length = crate::headers::decimal(value);
                    }
                }
                State::Head
            }
            State::ChunkSize => {
                let size = line.split(|&b| b == b';').next().unwrap_or_default();
                match std::str::from_utf8(size.trim_ascii())
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                {
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    None => State::Unwatched,
                }
            }
            State::ChunkEnd => State::ChunkSize,
            State::Trailers if line.is_empty() => self.response_ended(),
            State::Trailers => {
                if crate::headers::field(line).is_none() {
                    INVALID_TRAILER.with(|t| t.set(true));
                }
                State::Trailers
            }
            _ => State::Unwatched,
        }
    }

    /// The state after a head's blank line.
    fn head_ended(&mut self) -> State {
        let status = std::mem::take(&mut self.status);
        if (100..200).contains(&status) {
            // An informational head: the real one follows.
            self.chunked = false;
            self.length = None;
            return State::Head;
        }
        let head_request = self.heads.front().copied().unwrap_or(false);
        let (chunked, length) = (std::mem::take(&mut self.chunked), self.length.take());
        if head_request || status == 204 || status == 304 {
            return self.response_ended();
        }
        match (chunked, length) {
            (true, _) => State::ChunkSize,
            (false, Some(0)) => self.response_ended(),
            (false, Some(n)) => State::Length(n),
            (false, None) => State::Unwatched,
        }
    }

    /// The state after a whole response: the next request's.
    fn response_ended(&mut self) -> State {
        self.heads.pop_front();
        self.sending = false;
        State::Head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(request: &[u8]) -> Framing {
        let mut f = Framing::default();
        f.sent(request);
        f
    }

    /// Fed in every split, a chunked response's invalid trailer line is noted, a valid one is
    /// not, and bodies that merely look like trailers are skipped.
    #[test]
    fn invalid_trailer_lines_are_noted_wherever_the_reads_split() {
        let head =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = "11\r\nHTTP/1.1 503 Oops\r\n0\r\n";
        for (trailer, invalid) in [
            ("X-Sum: 1\r\n", false),
            ("", false),
            ("HTTP/1.1 503 Service Unavailable\r\n", true),
            ("not a field\r\n", true),
        ] {
            let wire = format!("{head}{body}{trailer}\r\n");
            for split in 1..wire.len() {
                let mut f = framing(b"GET / HTTP/1.1\r\n\r\n");
                take_invalid_trailer();
                f.read(&wire.as_bytes()[..split]);
                f.read(&wire.as_bytes()[split..]);
                assert_eq!(
                    take_invalid_trailer(),
                    invalid,
                    "{trailer:?} split at {split}"
                );
                assert!(matches!(f.state, State::Head), "{:?}", f.state);
            }
        }
    }

    #[test]
    fn a_head_request_and_a_length_delimited_body_end_their_response() {
        let mut f = framing(b"HEAD / HTTP/1.1\r\n\r\n");
        f.read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(matches!(f.state, State::Head));
        f.sent(b"GET / HTTP/1.1\r\n\r\n");
        f.read(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nnot a field\n");
        assert!(matches!(f.state, State::Head));
        assert!(!take_invalid_trailer());
    }

    /// A transport whose reads end at once while it has input, and wait out their timeout
    /// once it has none (a peer that stalls).
    #[derive(Debug)]
    struct Stalling {
        buffers: ureq::unversioned::transport::LazyBuffers,
        left: usize,
        /// Each wait: its timeout, and the reader's wake-ups when it began.
        waits: Vec<(std::time::Duration, usize)>,
        count: std::sync::Arc<Count>,
    }

    impl Transport for Stalling {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }

        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            if self.left > 0 {
                let room = self.buffers.input_append_buf();
                let n = room.len().min(self.left);
                self.left -= n;
                self.buffers.input_appended(n);
                return Ok(true);
            }
            let read = timeout.for_read();
            let wakes = self.count.0.load(std::sync::atomic::Ordering::SeqCst);
            self.waits.push((*read.after, wakes));
            std::thread::sleep(*read.after.min(Duration::from_secs(2)));
            Err(ureq::Error::Timeout(read.reason))
        }

        fn is_open(&mut self) -> bool {
            true
        }
    }

    /// Counts its wake-ups.
    #[derive(Debug)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A reader left waiting while reads end at once stays so; the first read that waits wakes
    /// it within a moment, and still waits as long as its own timeout.
    #[test]
    fn a_read_that_waits_first_wakes_the_reader_left_waiting() {
        use crate::backend::pipe;
        use std::task::{Context, Waker};
        let count = std::sync::Arc::new(Count(Default::default()));
        let wakes = || count.0.load(std::sync::atomic::Ordering::SeqCst);
        let waker = Waker::from(count.clone());
        let (writer, mut reader) = pipe::pipe(u64::MAX);
        assert!(
            reader
                .poll_piece(&mut Context::from_waker(&waker), false)
                .is_pending()
        );
        let far = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (_, owed) = writer
            .send_batched(bytes::Bytes::from_static(b"piece"), far, true)
            .unwrap();
        owe(owed);
        let mut watched = Watched {
            inner: Stalling {
                buffers: ureq::unversioned::transport::LazyBuffers::new(1024, 1024),
                left: 1024,
                waits: Vec::new(),
                count: count.clone(),
            },
            framing: Framing::default(),
        };
        let timeout = NextTimeout {
            after: Duration::from_millis(300),
            ..NextTimeout::default()
        };
        assert!(watched.await_input(timeout).unwrap());
        assert!(read_filled());
        assert_eq!(wakes(), 0, "a read that ended at once woke the reader");
        watched.buffers().input_consume(1024);
        let started = std::time::Instant::now();
        assert!(matches!(
            watched.await_input(timeout),
            Err(ureq::Error::Timeout(_))
        ));
        assert_eq!(wakes(), 1);
        // A brief wait with the reader unwoken, then the rest of the timeout with it woken.
        let waits = &watched.inner.waits;
        assert_eq!(waits.len(), 2, "{waits:?}");
        assert_eq!(waits[0], (PATIENCE, 0));
        assert_eq!(waits[1].1, 1);
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(300),
            "{waited:?}"
        );
        assert!(waited < std::time::Duration::from_millis(600), "{waited:?}");
    }
}
