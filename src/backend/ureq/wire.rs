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
//! Framing is followed from the bytes ureq reads, never changed: when it cannot be followed (a
//! line over 64 KiB, a chunk size that does not parse), watching stops and ureq's own parser
//! decides.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// The longest line followed; a longer one stops the watch.
const MAX_LINE: usize = 64 * 1024;

thread_local! {
    /// Set on the thread that read a response whose trailer section holds an invalid line:
    /// ureq runs an exchange, body included, on the thread that sends it.
    static INVALID_TRAILER: Cell<bool> = const { Cell::new(false) };
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
        let progress = self.inner.await_input(timeout)?;
        let input = self.inner.buffers().input();
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
}
