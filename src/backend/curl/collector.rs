//! [`Collector`]: libcurl's callbacks for one transfer at a time on a reused handle. It reads
//! the response head line by line (validated as hyper's parser does), buffers body bytes until
//! the reader takes them (pausing the transfer when it is behind), and hands libcurl the request
//! body through the read callback.

use std::io::{Read, SeekFrom};

use bytes::{Bytes, BytesMut};
use curl::easy::{Handler, ReadError, SeekResult, WriteError};
use http::{StatusCode, Version};

use crate::headers::{Headers, RawSummary, field};
use crate::request::Progress;

/// Room for response heads in a handle's reused header buffer.
const RAW_CAPACITY: usize = 4096;

/// Body bytes buffered before the transfer pauses, unless the body is read whole (and, before
/// the reader asks, a declared body up to 1 MiB: see `Collector::pause_at`).
const PAUSE_AT: usize = 256 * 1024;

/// The most libcurl hands the write callback at once (`CURL_MAX_WRITE_SIZE`), whatever its
/// receive buffer ([`RECEIVE_BUFFER`]).
const MAX_WRITE: usize = 16 * 1024;

/// libcurl's receive buffer (`CURLOPT_BUFFERSIZE`): how much it reads from the socket at once.
/// 64 KiB, not libcurl's 16 KiB: a streamed download reads at 1.06–1.35 of libcurl's own read
/// with its default buffer, where 16 KiB read at 0.95–1.08 (a quarter of the `recv` calls;
/// `bench --only throughput`). 128 KiB reads faster still, but what libcurl keeps of a read
/// when the transfer pauses is then larger: about 90 KB more copied inside libcurl per 1 MiB
/// body (callgrind).
pub(super) const RECEIVE_BUFFER: usize = 64 * 1024;

/// The request body libcurl reads.
pub(super) enum Upload {
    None,
    Bytes(Bytes, usize),
    Parts(crate::request::PartsReader),
    Reader(Box<dyn Read + Send>),
}

/// What one transfer collects, and how its request body is read.
pub(super) struct Collector {
    pub(super) status: u16,
    pub(super) version: Version,
    pub(super) headers: Headers,
    /// The final head has been read (what follows is body, then trailers).
    pub(super) headers_done: bool,
    /// The `Content-Length` of the current head.
    pub(super) content_length: Option<u64>,
    /// The current head's lines (`name: value`, each ended by `\n`).
    raw: BytesMut,
    seen: RawSummary,
    pub(super) bad_header: bool,
    header_bytes: usize,
    pub(super) headers_too_large: bool,
    /// Body bytes not yet taken by the reader.
    pub(super) body: BytesMut,
    /// The reader reads the body whole: never pause for it.
    pub(super) whole: bool,
    /// The reader has asked for the body (so `whole` is known).
    pub(super) asked: bool,
    /// The transfer is paused, its body buffer full.
    pub(super) paused: bool,
    /// `max_response_bytes`: a declared length over it ends the transfer at its head.
    max: u64,
    pub(super) too_large: bool,
    /// A proxy's reply to `CONNECT` comes before the origin's head.
    tunnel: bool,
    /// The transfer goes through a proxy (its failures to connect are the proxy's).
    pub(super) proxied: bool,
    head_only: bool,
    /// Bytes received since the reader last looked (head or body): the transfer moves.
    pub(super) received: bool,
    upload: Upload,
    sent: u64,
    upload_len: Option<u64>,
    upload_progress: Option<Progress>,
    /// libcurl may rewind the body to send the request again (see [`Collector::seek`]).
    replayable: bool,
    /// libcurl wanted to send the request again and was refused.
    pub(super) not_resent: bool,
    /// The reader failed: the error that stopped the upload.
    pub(super) upload_error: Option<std::io::Error>,
}

impl Collector {
    pub(super) fn new(max: u64) -> Self {
        Collector {
            status: 0,
            version: Version::HTTP_11,
            headers: Headers::default(),
            headers_done: false,
            content_length: None,
            raw: BytesMut::with_capacity(RAW_CAPACITY),
            seen: RawSummary::default(),
            bad_header: false,
            header_bytes: 0,
            headers_too_large: false,
            body: BytesMut::new(),
            whole: false,
            asked: false,
            paused: false,
            max,
            too_large: false,
            tunnel: false,
            proxied: false,
            head_only: false,
            received: false,
            upload: Upload::None,
            sent: 0,
            upload_len: None,
            upload_progress: None,
            replayable: true,
            not_resent: false,
            upload_error: None,
        }
    }

    /// Ready for a new transfer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reset(
        &mut self,
        proxied: bool,
        tunnel: bool,
        head_only: bool,
        upload: Upload,
        upload_len: Option<u64>,
        upload_progress: Option<Progress>,
        replayable: bool,
    ) {
        self.status = 0;
        self.version = Version::HTTP_11;
        self.headers = Headers::default();
        self.headers_done = false;
        self.content_length = None;
        self.raw.clear();
        self.seen = RawSummary::default();
        self.bad_header = false;
        self.header_bytes = 0;
        self.headers_too_large = false;
        self.body = BytesMut::new();
        self.whole = false;
        self.asked = false;
        self.paused = false;
        self.too_large = false;
        self.proxied = proxied;
        self.tunnel = tunnel;
        self.head_only = head_only;
        self.received = false;
        self.upload = upload;
        self.sent = 0;
        self.upload_len = upload_len;
        self.upload_progress = upload_progress;
        self.replayable = replayable;
        self.not_resent = false;
        self.upload_error = None;
    }

    /// Drops what the last transfer left (its body, its upload) before the handle is pooled.
    pub(super) fn clear(&mut self) {
        self.body = BytesMut::new();
        self.upload = Upload::None;
        self.upload_progress = None;
    }

    /// The body bytes buffered so far.
    pub(super) fn take_body(&mut self) -> Bytes {
        self.body.split().freeze()
    }

    /// The status, when the head has one libcurl would accept.
    pub(super) fn status_code(&self) -> Option<StatusCode> {
        StatusCode::from_u16(self.status).ok()
    }
}

impl Handler for Collector {
    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        // Read whole, the body is gathered here: no more than the limit (an undecoded body is
        // read whole only, so these are the caller's bytes).
        if self.whole && (self.body.len() + data.len()) as u64 > self.max {
            self.too_large = true;
            return Ok(0);
        }
        if !self.whole && self.body.len() >= self.pause_at() {
            self.paused = true;
            return Err(WriteError::Pause);
        }
        if self.body.is_empty() {
            // A piece starts: room for it whole (as much of a declared body as it can hold
            // before the transfer pauses, and a write), so that it does not grow by copying
            // what it already holds.
            let declared = crate::headers::reserve_for(self.content_length);
            let piece = if self.whole {
                declared
            } else {
                declared.min(self.pause_at() + MAX_WRITE)
            };
            self.body.reserve(piece.max(data.len()));
        }
        self.body.extend_from_slice(data);
        self.received = true;
        Ok(data.len())
    }

    fn read(&mut self, data: &mut [u8]) -> Result<usize, ReadError> {
        let n = match &mut self.upload {
            Upload::None => 0,
            Upload::Bytes(bytes, at) => {
                let rest = &bytes[*at..];
                let n = rest.len().min(data.len());
                data[..n].copy_from_slice(&rest[..n]);
                *at += n;
                n
            }
            Upload::Parts(p) => read_once(p, data).map_err(|e| self.fail_upload(e))?,
            Upload::Reader(r) => read_once(r, data).map_err(|e| self.fail_upload(e))?,
        };
        self.sent += n as u64;
        if let (Some(progress), true) = (&self.upload_progress, n > 0) {
            progress.report(self.sent, self.upload_len);
        }
        Ok(n)
    }

    /// libcurl rewinds the body to send the request again on a fresh connection, when a reused
    /// one died before any response byte. Only a request that may be sent twice (an idempotent
    /// method, a replayable body) is: for any other the rewind is refused, and the transfer
    /// fails instead.
    fn seek(&mut self, whence: SeekFrom) -> SeekResult {
        let rewound = match (&mut self.upload, whence) {
            (_, SeekFrom::Start(0)) if !self.replayable => false,
            (Upload::None, SeekFrom::Start(0)) => true,
            (Upload::Bytes(_, at), SeekFrom::Start(0)) => {
                *at = 0;
                true
            }
            (Upload::Parts(p), SeekFrom::Start(0)) => {
                p.rewind();
                true
            }
            _ => false,
        };
        if rewound {
            self.sent = 0;
            SeekResult::Ok
        } else {
            self.not_resent = true;
            SeekResult::CantSeek
        }
    }

    fn header(&mut self, line: &[u8]) -> bool {
        self.received = true;
        self.header_bytes += line.len();
        if self.header_bytes > super::super::MAX_HEADER_BYTES {
            self.headers_too_large = true;
            return false;
        }
        let trimmed = match line {
            [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] => rest,
            _ => line,
        };
        if self.headers_done {
            // After the final head only a chunked body's trailer section comes, ended by a
            // blank line: its fields are not kept, and a line that is not one fails the
            // response, as hyper's parser does (never a new status line).
            let valid = trimmed.is_empty() || field(trimmed).is_some();
            self.bad_header |= !valid;
            return valid;
        }
        if trimmed.starts_with(b"HTTP/") {
            // A new response head (after 1xx, or after a proxy's CONNECT reply): start over.
            let (version, status) = status_line(trimmed);
            self.version = version;
            self.status = status;
            self.raw.clear();
            self.seen = RawSummary::default();
            self.content_length = None;
            return true;
        }
        if trimmed.is_empty() {
            // Informational heads, and a proxy's reply to CONNECT, are followed by the real one.
            if (100..200).contains(&self.status) || std::mem::take(&mut self.tunnel) {
                return true;
            }
            self.headers_done = true;
            self.headers = Headers::from_raw(self.raw.split().freeze(), self.seen);
            // A declared length over the limit fails before any of the body is read.
            let has_body = !self.head_only
                && StatusCode::from_u16(self.status)
                    .is_ok_and(|s| crate::headers::has_body(&http::Method::GET, s));
            if has_body && self.content_length.is_some_and(|len| len > self.max) {
                self.too_large = true;
                return false;
            }
            return true;
        }
        // Validated now, as the other backends' parsers do (a bad line fails the transfer with
        // a protocol error); turned into a map only when the headers are read.
        let Some((name, value, value_at)) = field(trimmed) else {
            self.bad_header = true;
            return false;
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            self.content_length = crate::headers::decimal(value);
            // Not a number of bytes (past `u64` included): the framing cannot be trusted.
            if self.content_length.is_none() {
                self.bad_header = true;
                return false;
            }
        }
        // The lines of one head share one block, split off a buffer the handle keeps: once
        // earlier responses' headers are dropped its space is reused, so a head usually costs
        // no allocation.
        self.seen.add(self.raw.len(), name, value_at, value);
        self.raw.reserve(trimmed.len() + 1);
        self.raw.extend_from_slice(trimmed);
        bytes::BufMut::put_u8(&mut self.raw, b'\n');
        true
    }
}

impl Collector {
    /// Body bytes held before the transfer pauses: [`PAUSE_AT`], or before the reader asks,
    /// as much of a declared body as is reserved for it (up to 1 MiB). What comes before the
    /// ask may be the start of a body read whole: held in a buffer with room for the rest, it
    /// does not grow by copying itself when the rest joins it, and a pause does not make
    /// libcurl keep, then copy, the rest of its read. A 1 MiB body read whole cost 1.02–1.25
    /// of the direct client's instructions (with the heap layout) when at most 272 KiB came
    /// before the ask, 0.99 now (`ROUTE=get-1MiB bash scripts/instructions.sh curl`).
    fn pause_at(&self) -> usize {
        if self.asked {
            PAUSE_AT
        } else {
            PAUSE_AT.max(crate::headers::reserve_for(self.content_length))
        }
    }

    fn fail_upload(&mut self, e: std::io::Error) -> ReadError {
        self.upload_error = Some(e);
        ReadError::Abort
    }
}

/// One read, retried when interrupted.
fn read_once(r: &mut impl Read, data: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(data) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The version and status code of a status line (`HTTP/1.1 200 OK`); status 0 when it has none
/// (which fails the transfer as a protocol error).
fn status_line(line: &[u8]) -> (Version, u16) {
    let space = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let version = match &line[..space] {
        b"HTTP/2" | b"HTTP/2.0" => Version::HTTP_2,
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/3" => Version::HTTP_3,
        _ => Version::HTTP_11,
    };
    let status = match line.get(space + 1..) {
        Some([a, b, c, rest @ ..])
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && rest.first().is_none_or(|&x| x == b' ') =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    };
    (version, status)
}
