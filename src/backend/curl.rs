//! The `curl` backend: libcurl through the `curl` crate, with reused easy handles (each keeps
//! its connection cache) in a pool, since `Easy2` is not `Sync`.
//!
//! Blocking calls run the transfer on the caller's thread; async calls run it on a transfer
//! thread (`backend/worker.rs`), with a cancel flag checked in libcurl's header and write
//! callbacks so that dropping the future aborts the transfer.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use curl::easy::{Easy2, Handler, HttpVersion as CurlVersion, List, WriteError};
use http::{HeaderMap, Method, StatusCode, Version};

use super::worker::Workers;
use super::{AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion, ProxyUrl, TlsConfig};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::headers::{Headers, RawSummary, field};
use crate::request::Request;
use crate::response::Response;

/// Room for response heads in a handle's reused header buffer.
const RAW_CAPACITY: usize = 4096;

/// A pool of reused libcurl easy handles. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct CurlBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Mutex<Vec<Easy2<Collector>>>,
    /// The threads that run transfers for async callers.
    workers: Workers<Job>,
    settings: Settings,
    limits: Limits,
}

/// A handle to run a transfer on, and where the handle and the transfer's end go.
type Job = (
    Easy2<Collector>,
    tokio::sync::oneshot::Sender<(Easy2<Collector>, std::result::Result<(), curl::Error>)>,
);

/// Runs a [`Job`] on a worker thread.
fn run_job((easy, done): Job) {
    let result = easy.perform();
    let _ = done.send((easy, result));
}

struct Settings {
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    http_version: HttpVersion,
    tls: TlsConfig,
    proxy: Option<ProxyUrl>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl fmt::Debug for CurlBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurlBackend").finish_non_exhaustive()
    }
}

/// Collects one response: status line, headers, body (capped), and watches the cancel flag.
struct Collector {
    status: u16,
    version: Version,
    headers: Headers,
    headers_done: bool,
    /// The request's progress callback, if it has one.
    progress: Option<crate::request::Progress>,
    /// The `Content-Length` of the current response, read as its line arrives.
    content_length: Option<u64>,
    /// The current response's header lines (`name: value`, each ended by `\n`).
    raw: BytesMut,
    /// What was counted of those lines.
    seen: RawSummary,
    bad_header: bool,
    header_bytes: usize,
    headers_too_large: bool,
    body: BytesMut,
    max: u64,
    too_large: bool,
    /// A proxy's reply to `CONNECT` comes before the origin's head (an https request through
    /// a proxy; libcurl passes that reply to the header callback too).
    tunnel: bool,
    /// The request is a `HEAD`: its response has no body, whatever it declares.
    head_only: bool,
    /// The request body, handed to libcurl by the read callback, and how much was read.
    upload: bytes::Bytes,
    uploaded: usize,
    /// libcurl may rewind the body to send the request again (an idempotent method): it does
    /// so, on a fresh connection, when a reused one dies before any response byte.
    replayable: bool,
    /// libcurl refused to send the request again because the body may not be replayed.
    not_resent: bool,
    /// Set when the async request that owns this handle is dropped. Each handle has its own
    /// flag for its whole life (a dropped request's handle is never pooled again), so a request
    /// costs no allocation for it.
    cancel: Arc<AtomicBool>,
    /// What the handle was last set up with (kept between transfers).
    sent: Sent,
}

/// True when both URIs are the same text (a cheap byte comparison: `Uri`'s own equality folds
/// case in scheme and host).
fn same_uri(a: &http::Uri, b: &http::Uri) -> bool {
    a.scheme_str() == b.scheme_str()
        && a.authority().map(|x| x.as_str()) == b.authority().map(|x| x.as_str())
        && a.path_and_query().map(|x| x.as_str()) == b.path_and_query().map(|x| x.as_str())
}

/// True when both maps hold the same headers in the same order (a cheap check; maps built the
/// same way compare equal, others are simply set again).
fn same_in_order(a: &HeaderMap, b: &HeaderMap) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
}

/// The options a reused handle still carries from its last transfer.
#[derive(Default)]
struct Sent {
    url: Option<http::Uri>,
    method: Option<Method>,
    /// The request's own headers, the id of the client defaults sent with them, and whether
    /// the list was built for a request with a body.
    headers: Option<(HeaderMap, Option<u64>, bool)>,
    posted: bool,
    /// A fresh connection was asked for.
    fresh: bool,
    /// The progress callback is on (async transfers, which may be canceled).
    watched: bool,
}

impl Collector {
    fn reset(&mut self, max: u64, tunnel: bool, req: &Request) {
        self.tunnel = tunnel;
        self.head_only = req.method == Method::HEAD;
        self.upload = req.body.clone();
        self.uploaded = 0;
        self.replayable = crate::fleet::is_idempotent(&req.method);
        self.not_resent = false;
        self.status = 0;
        self.version = Version::HTTP_11;
        self.headers = Headers::default();
        self.headers_done = false;
        self.content_length = None;
        // The header lines go into one reused buffer (see `header`).
        self.raw.clear();
        self.seen = RawSummary::default();
        self.bad_header = false;
        self.header_bytes = 0;
        self.headers_too_large = false;
        self.body = BytesMut::new();
        self.max = max;
        self.too_large = false;
    }

    fn canceled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Handler for Collector {
    fn read(&mut self, data: &mut [u8]) -> Result<usize, curl::easy::ReadError> {
        if self.canceled() {
            return Err(curl::easy::ReadError::Abort);
        }
        let rest = &self.upload[self.uploaded..];
        let n = rest.len().min(data.len());
        data[..n].copy_from_slice(&rest[..n]);
        self.uploaded += n;
        Ok(n)
    }

    /// libcurl rewinds the body to send the request again on a fresh connection. Only an
    /// idempotent request may be sent twice: for any other the rewind is refused, and libcurl
    /// fails the transfer instead.
    fn seek(&mut self, whence: std::io::SeekFrom) -> curl::easy::SeekResult {
        match whence {
            std::io::SeekFrom::Start(0) if self.replayable => {
                self.uploaded = 0;
                curl::easy::SeekResult::Ok
            }
            _ => {
                self.not_resent = true;
                curl::easy::SeekResult::CantSeek
            }
        }
    }

    /// Called on every pass of libcurl's loop for an async request (at least about once a
    /// second while it waits): a dropped request ends its transfer here.
    fn progress(&mut self, _: f64, _: f64, _: f64, _: f64) -> bool {
        !self.canceled()
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if self.canceled() {
            return Ok(0);
        }
        if (self.body.len() + data.len()) as u64 > self.max {
            self.too_large = true;
            return Ok(0);
        }
        if self.body.is_empty() && self.body.capacity() == 0 {
            let hint = super::limits::reserve_for(self.content_length);
            self.body.reserve(hint.max(data.len()));
        }
        self.body.extend_from_slice(data);
        if let Some(progress) = &self.progress {
            progress.report(self.body.len() as u64, self.content_length);
        }
        Ok(data.len())
    }

    fn header(&mut self, line: &[u8]) -> bool {
        if self.canceled() {
            return false;
        }
        self.header_bytes += line.len();
        if self.header_bytes > super::MAX_HEADER_BYTES {
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
                    .is_ok_and(|s| super::limits::has_body(&Method::GET, s));
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
            self.content_length = super::limits::decimal(value);
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

impl CurlBackend {
    /// Builds the backend with every knob of `config` set explicitly: libcurl's own defaults
    /// (30 redirects, 300 s connect timeout, `*_proxy` variables) never apply.
    pub fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        // `Auto` negotiates HTTP/2 over TLS as on every other backend. A libcurl without HTTP/2
        // (curl-sys's own build when no system libcurl was found) refuses that option as an
        // "unsupported protocol": say what is missing instead.
        if config.http_version != HttpVersion::Http1 && !curl::Version::get().feature_http2() {
            return Err(Error::new(ErrorKind::Unsupported)
                .with_backend(BackendKind::Curl)
                .with_detail(
                    "this libcurl has no HTTP/2, which http_version Auto and Http2 need: \
                     link one built with nghttp2 (libcurl4-openssl-dev) or set Http1",
                ));
        }
        let settings = Settings {
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
            http_version: config.http_version,
            tls: config.tls.clone(),
            proxy: config.proxy_url()?,
            max_idle: config.pool.max_idle_per_host,
            idle_timeout: config.pool.idle_timeout,
        };
        for path in [
            &settings.tls.ca_file,
            &settings.tls.client_cert,
            &settings.tls.client_key,
        ]
        .into_iter()
        .flatten()
        {
            std::fs::metadata(path).map_err(|e| {
                Error::builder(format!("cannot read {}", path.display())).with_source(e)
            })?;
        }
        let backend = CurlBackend {
            inner: Arc::new(Inner {
                pool: Mutex::new(Vec::new()),
                workers: Workers::new(config.pool.max_idle_per_host, run_job),
                settings,
                limits: Limits::new(config),
            }),
        };
        // Build one handle now, so a configuration libcurl refuses fails here, not at first use.
        let easy = backend.inner.new_handle()?;
        backend.inner.put_back(easy);
        Ok(backend)
    }
}

fn setup<T>(r: std::result::Result<T, curl::Error>) -> Result<T> {
    r.map_err(|e| {
        Error::new(ErrorKind::Unsupported)
            .with_backend(BackendKind::Curl)
            .with_detail("libcurl refused an option")
            .with_source(e)
    })
}

impl Inner {
    fn new_handle(&self) -> Result<Easy2<Collector>> {
        let s = &self.settings;
        let mut easy = Easy2::new(Collector {
            status: 0,
            version: Version::HTTP_11,
            headers: Headers::default(),
            headers_done: false,
            progress: None,
            content_length: None,
            raw: BytesMut::with_capacity(RAW_CAPACITY),
            seen: RawSummary::default(),
            bad_header: false,
            header_bytes: 0,
            headers_too_large: false,
            body: BytesMut::new(),
            max: self.limits.max_body,
            too_large: false,
            tunnel: false,
            head_only: false,
            upload: bytes::Bytes::new(),
            uploaded: 0,
            replayable: true,
            not_resent: false,
            cancel: Arc::new(AtomicBool::new(false)),
            sent: Sent::default(),
        });
        setup(easy.signal(false))?;
        // The progress callback, which costs a call into httpfleet on every pass of libcurl's
        // loop, is on for async transfers only: a dropped request ends its transfer there.
        setup(easy.progress(false))?;
        setup(easy.follow_location(false))?;
        setup(easy.max_redirections(0))?;
        setup(easy.connect_timeout(s.connect_timeout))?;
        setup(easy.tcp_nodelay(true))?;
        setup(easy.http_09_allowed(false))?;
        setup(easy.max_connects(s.max_idle.max(1) as u32))?;
        setup(easy.maxage_conn(s.idle_timeout))?;
        setup(easy.forbid_reuse(s.max_idle == 0))?;
        if let Some(idle) = s.read_timeout {
            setup(easy.low_speed_limit(1))?;
            setup(easy.low_speed_time(idle.max(Duration::from_secs(1))))?;
        }
        setup(easy.http_version(match s.http_version {
            HttpVersion::Auto => CurlVersion::V2TLS,
            HttpVersion::Http1 => CurlVersion::V11,
            HttpVersion::Http2 => CurlVersion::V2PriorKnowledge,
        }))?;
        setup(easy.ssl_verify_peer(s.tls.verify))?;
        setup(easy.ssl_verify_host(s.tls.verify))?;
        if let Some(ca) = &s.tls.ca_file {
            setup(easy.cainfo(ca))?;
        }
        if let (Some(cert), Some(key)) = (&s.tls.client_cert, &s.tls.client_key) {
            setup(easy.ssl_cert(cert))?;
            setup(easy.ssl_cert_type("PEM"))?;
            setup(easy.ssl_key(key))?;
            setup(easy.ssl_key_type("PEM"))?;
        }
        match &s.proxy {
            // An empty proxy string disables proxies, environment variables included.
            None => setup(easy.proxy(""))?,
            Some(p) => {
                setup(easy.proxy(&format!("http://{}", p.host_port())))?;
                if let Some((user, pass)) = &p.credentials {
                    // libcurl percent-decodes these: encoded, they arrive as given.
                    setup(easy.proxy_username(&crate::url::percent_encode(user)))?;
                    setup(easy.proxy_password(&crate::url::percent_encode(pass)))?;
                }
            }
        }
        Ok(easy)
    }

    fn take_handle(&self) -> Result<Easy2<Collector>> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(easy) => Ok(easy),
            None => self.new_handle(),
        }
    }

    /// Returns a handle to the pool, which keeps at most `pool.max_idle_per_host` idle handles
    /// (at least one): a burst of concurrent transfers does not leave a handle, with its
    /// connection cache and descriptors, behind for each.
    fn put_back(&self, mut easy: Easy2<Collector>) {
        easy.get_mut().body = BytesMut::new();
        easy.get_mut().progress = None;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.settings.max_idle.max(1) {
            pool.push(easy);
        }
    }

    /// Sets this request's options on a reused handle. The URL, method and header list stay set
    /// on the handle between transfers, so each is set again only when it changed: a loop
    /// polling one endpoint pays for none of them.
    fn prepare(
        &self,
        easy: &mut Easy2<Collector>,
        req: &Request,
        url: &http::Uri,
        remaining: Duration,
        cancelable: bool,
    ) -> Result<()> {
        let refused = |e: curl::Error| Error::builder("libcurl refused the request").with_source(e);
        let sent = &mut easy.get_mut().sent;
        let url_changed = !sent.url.as_ref().is_some_and(|last| same_uri(last, url));
        let method_changed = sent.method.as_ref() != Some(&req.method);
        let defaults_id = req.defaults.as_ref().map(|d| d.id);
        let has_body = !req.body.is_empty();
        let posts = has_body || matches!(req.method, Method::POST | Method::PUT | Method::PATCH);
        let headers_changed = !sent.headers.as_ref().is_some_and(|(own, id, posted)| {
            *id == defaults_id && *posted == posts && same_in_order(own, &req.headers)
        });
        if url_changed {
            easy.url(&crate::url::to_text(url)).map_err(refused)?;
        }
        easy.timeout(remaining.max(Duration::from_millis(1)))
            .map_err(refused)?;
        if req.method == Method::HEAD {
            easy.nobody(true).map_err(refused)?;
        } else if posts {
            // The body goes through the read callback, so that libcurl can only send it again
            // where the method allows (see `Collector::seek`).
            easy.nobody(false).map_err(refused)?;
            easy.post(true).map_err(refused)?;
            easy.post_field_size(req.body.len() as u64)
                .map_err(refused)?;
        } else if method_changed || easy.get_ref().sent.posted {
            easy.nobody(false).map_err(refused)?;
            easy.get(true).map_err(refused)?;
        }
        if method_changed {
            easy.custom_request(req.method.as_str()).map_err(refused)?;
        }
        // A request with no body to refuse rewinding would be sent again by libcurl on a fresh
        // connection if a reused one died after it was written: a non-idempotent one goes on a
        // fresh connection from the start.
        let fresh = req.body.is_empty() && !crate::fleet::is_idempotent(&req.method);
        if fresh != easy.get_ref().sent.fresh {
            easy.fresh_connect(fresh).map_err(refused)?;
        }
        if cancelable != easy.get_ref().sent.watched {
            easy.progress(cancelable).map_err(refused)?;
        }
        if headers_changed {
            let mut list = List::new();
            let mut line = String::new();
            for (name, value) in req.wire_headers() {
                let value = value.to_str().map_err(|_| {
                    Error::unsupported(
                        BackendKind::Curl,
                        format!("libcurl takes header lines as text; the value of {name} is not"),
                    )
                })?;
                line.clear();
                line.push_str(name.as_str());
                if value.is_empty() {
                    line.push(';');
                } else {
                    line.push_str(": ");
                    line.push_str(value);
                }
                list.append(&line).map_err(refused)?;
            }
            // libcurl adds these on its own to a request with a body; httpfleet sends only what
            // the request says.
            if posts {
                if !req.has_wire_header(&http::header::CONTENT_TYPE) {
                    list.append("Content-Type:").map_err(refused)?;
                }
                list.append("Expect:").map_err(refused)?;
            }
            if !req.has_wire_header(&http::header::ACCEPT) {
                list.append("Accept:").map_err(refused)?;
            }
            easy.http_headers(list).map_err(refused)?;
        }
        let sent = &mut easy.get_mut().sent;
        if url_changed {
            sent.url = Some(url.clone());
        }
        if method_changed {
            sent.method = Some(req.method.clone());
        }
        if headers_changed {
            sent.headers = Some((req.headers.clone(), defaults_id, posts));
        }
        sent.posted = posts;
        sent.fresh = fresh;
        sent.watched = cancelable;
        Ok(())
    }

    /// Takes a handle and sets it up for `req`: everything before the transfer itself.
    fn start(&self, req: &Request, cancelable: bool) -> Result<(Easy2<Collector>, Duration)> {
        let deadline = req.deadline_or(self.limits.timeout);
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(ErrorKind::Timeout(TimeoutPhase::Total))
                .with_backend(BackendKind::Curl)
                .with_url(&req.uri));
        }
        let mut easy = self.take_handle()?;
        let tunnel = self.settings.proxy.is_some() && crate::url::is_https(&req.uri);
        easy.get_mut().reset(self.limits.max_body, tunnel, req);
        easy.get_mut().progress.clone_from(&req.progress);
        if let Err(e) = self.prepare(&mut easy, req, &req.uri, remaining, cancelable) {
            self.put_back(easy);
            return Err(e.with_backend(BackendKind::Curl).with_url(&req.uri));
        }
        Ok((easy, remaining))
    }

    /// Turns a finished transfer into the response (or error) and pools the handle again.
    fn complete(
        &self,
        mut easy: Easy2<Collector>,
        result: std::result::Result<(), curl::Error>,
        transfer: Transfer,
        url: http::Uri,
    ) -> Result<Response> {
        let total_deadline_hit =
            transfer.started.elapsed() + Duration::from_millis(10) >= transfer.remaining;
        let collected = easy.get_mut();
        let outcome = match result {
            Ok(()) => match StatusCode::from_u16(collected.status) {
                Ok(status) => Ok((
                    status,
                    collected.version,
                    std::mem::take(&mut collected.headers),
                    std::mem::take(&mut collected.body).freeze(),
                )),
                Err(_) => Err(Error::new(ErrorKind::Protocol)
                    .with_backend(BackendKind::Curl)
                    .with_detail("invalid status code")),
            },
            Err(e) => Err(map_error(
                e,
                collected,
                self.settings.proxy.is_some(),
                total_deadline_hit,
            )),
        };
        self.put_back(easy);
        match outcome {
            Ok((status, version, headers, body)) => Ok(Response::from_parts(
                BackendKind::Curl,
                url,
                status,
                version,
                headers,
                body,
            )),
            Err(e) => Err(e.with_url(&url)),
        }
    }
}

/// When a transfer started, and how long it had.
#[derive(Clone, Copy)]
struct Transfer {
    started: std::time::Instant,
    remaining: Duration,
}

/// Maps a libcurl error to an httpfleet error, using what the collector saw to tell the phase.
fn map_error(e: curl::Error, seen: &Collector, proxied: bool, total_deadline_hit: bool) -> Error {
    let desc = e.extra_description().unwrap_or("").to_ascii_lowercase();
    if seen.not_resent || e.is_send_fail_rewind() {
        return Error::new(ErrorKind::Protocol)
            .with_backend(BackendKind::Curl)
            .with_detail(
                "the connection closed after the request was sent; \
                 a non-idempotent request is not sent again",
            )
            .with_source(e);
    }
    let kind = if seen.too_large {
        ErrorKind::BodyTooLarge
    } else if seen.canceled() || e.is_aborted_by_callback() {
        ErrorKind::Canceled
    } else if seen.headers_too_large || seen.bad_header {
        ErrorKind::Protocol
    } else if e.is_operation_timedout() {
        ErrorKind::Timeout(if seen.headers_done {
            TimeoutPhase::Body
        } else if total_deadline_hit || seen.status != 0 || desc.contains("too slow") {
            TimeoutPhase::Headers
        } else {
            // Neither the total deadline nor a stalled response: `CONNECTTIMEOUT` fired
            // (TCP, proxy or TLS handshake).
            TimeoutPhase::Connect
        })
    } else if e.is_couldnt_resolve_proxy() {
        ErrorKind::Proxy
    } else if e.is_couldnt_resolve_host() {
        ErrorKind::Dns
    } else if e.is_couldnt_connect() {
        if proxied {
            ErrorKind::Proxy
        } else {
            ErrorKind::Connect
        }
    } else if e.is_ssl_connect_error()
        || e.is_peer_failed_verification()
        || e.is_ssl_certproblem()
        || e.is_ssl_cipher()
        || e.is_ssl_cacert()
        || e.is_ssl_cacert_badfile()
        || e.is_ssl_issuer_error()
        || e.is_use_ssl_failed()
    {
        ErrorKind::Tls
    } else if proxied && (desc.contains("connect tunnel failed") || desc.contains("proxy")) {
        // The proxy refused the CONNECT (407, 401, 403, 5xx) or broke the tunnel.
        ErrorKind::Proxy
    } else if e.code() == 97 {
        // CURLE_PROXY (libcurl 7.73+): the proxy handshake failed.
        ErrorKind::Proxy
    } else if e.is_url_malformed() || e.is_unsupported_protocol() || desc.contains("chunk") {
        // httpfleet validated the URL before: here libcurl refuses what the server sent (a
        // malformed status line, broken chunked encoding).
        ErrorKind::Protocol
    } else if e.is_partial_file() || e.is_bad_content_encoding() {
        ErrorKind::Body
    } else if e.is_got_nothing() || e.code() == 8 || e.is_http2_error() {
        ErrorKind::Protocol
    } else if seen.headers_done {
        ErrorKind::Body
    } else {
        ErrorKind::Protocol
    };
    Error::new(kind)
        .with_backend(BackendKind::Curl)
        .with_source(e)
}

/// Sets the cancel flag when the async request future is dropped before the transfer ends.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl AsyncTransport for CurlBackend {
    async fn send(&self, req: &Request) -> Result<Response> {
        let (easy, remaining) = self.inner.start(req, true)?;
        let guard = CancelOnDrop(easy.get_ref().cancel.clone());
        let transfer = Transfer {
            started: std::time::Instant::now(),
            remaining,
        };
        // Only the handle (one pointer) crosses to the worker thread and back.
        let deadline = tokio::time::Instant::now() + remaining;
        let joined = self.inner.workers.run(deadline, |done| (easy, done)).await;
        std::mem::forget(guard);
        match joined {
            Ok(Some((easy, result))) => {
                self.inner.complete(easy, result, transfer, req.uri.clone())
            }
            Ok(None) => Err(Error::new(ErrorKind::Canceled)
                .with_backend(BackendKind::Curl)
                .with_url(&req.uri)
                .with_detail("the transfer thread ended")),
            Err(e) => Err(e.with_backend(BackendKind::Curl).with_url(&req.uri)),
        }
    }
}

impl BlockingTransport for CurlBackend {
    fn send_blocking(&self, req: &Request) -> Result<Response> {
        let (easy, remaining) = self.inner.start(req, false)?;
        let transfer = Transfer {
            started: std::time::Instant::now(),
            remaining,
        };
        let result = easy.perform();
        self.inner.complete(easy, result, transfer, req.uri.clone())
    }
}
