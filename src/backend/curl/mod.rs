//! The `curl` backend: libcurl through the `curl` crate. Each reused easy handle is paired with
//! the multi handle that drives it and keeps its connections (`transfer`); pairs are pooled.
//!
//! Blocking code drives its transfer itself, on its own thread, as it reads: up to the head in
//! `send`, then piece by piece as the body is read. From async code a transfer thread
//! (`backend/worker.rs`) drives it, hands the head over (with the whole body when it came with
//! the head), then the body through a pipe (`backend/pipe.rs`) as the caller reads it. A dropped
//! request wakes its transfer thread at once and the transfer stops.

mod collector;
mod names;
mod roots;
mod transfer;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use curl::easy::{Easy2, HttpVersion as CurlVersion, List};
use curl::multi::Multi;
use http::{HeaderMap, Method};

use self::collector::{Collector, Upload};
use self::transfer::{Pair, Transfer};
use super::worker::Workers;
use super::{Answer, AnswerBody, AsyncTransport, BackendKind, BlockingTransport, Limits};
use crate::config::{Config, HttpVersion, Proxies, ProxyKind, TlsConfig};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::{Outgoing, SendBody};
use crate::response::RawBody;

/// A pool of reused libcurl handles. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct CurlBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Mutex<Vec<Pair>>,
    /// The threads that run transfers for async callers.
    workers: Workers<Job>,
    settings: Settings,
    limits: Limits,
}

struct Settings {
    connect_timeout: Duration,
    http_version: HttpVersion,
    tls: TlsConfig,
    /// The certificates trusted (`TlsConfig::roots`, `ca_file`).
    roots: roots::Roots,
    /// The client certificate chain and key, as PEM.
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    proxies: Proxies,
    max_idle: usize,
    idle_timeout: Duration,
    /// `Config::resolve` and `Config::resolver`.
    names: names::Names,
    local_address: Option<std::net::IpAddr>,
    tcp_keepalive: Option<Duration>,
}

impl fmt::Debug for CurlBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurlBackend").finish_non_exhaustive()
    }
}

/// The options a reused handle still carries from its last transfer: each is set again only
/// when it changed, so a loop polling one endpoint sets none of them.
#[derive(Default)]
struct Sent {
    url: Option<http::Uri>,
    method: Option<Method>,
    /// The header list: the request's own headers, the defaults, and the body's framing.
    headers: Option<(HeaderMap, HeaderMap, Framing)>,
    posted: bool,
    fresh: bool,
    /// The `CURLOPT_RESOLVE` entries last set.
    resolved: Vec<String>,
    body_len: Option<u64>,
}

/// How a request body is framed, which the header list says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    NoBody,
    Length,
    Chunked,
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
            return Err(Error::unsupported(
                BackendKind::Curl,
                "this libcurl has no HTTP/2, which http_version Auto and Http2 need: \
                 link one built with nghttp2 (libcurl4-openssl-dev) or set Http1",
            ));
        }
        let settings = Settings {
            connect_timeout: config.connect_timeout,
            http_version: config.http_version,
            tls: config.tls.clone(),
            roots: roots::Roots::new(crate::trust::certs_pem(&crate::trust::trusted(
                &config.tls,
            )?)),
            identity_pem: crate::trust::Identity::of(&config.tls)?.map(|id| id.to_pem()),
            proxies: config.proxies()?,
            max_idle: config.pool.max_idle_per_host,
            idle_timeout: config.pool.idle_timeout,
            names: names::Names::new(config.resolve_map(), config.resolver.clone()),
            local_address: config.local_address,
            tcp_keepalive: config.tcp_keepalive,
        };
        let inner = Arc::new(Inner {
            pool: Mutex::new(Vec::new()),
            workers: Workers::new(config.pool.max_idle_per_host, run_job),
            settings,
            limits: Limits::new(config),
        });
        // Build one pair now, so a configuration libcurl refuses fails here, not at first use.
        let pair = inner.new_pair()?;
        inner.put_back(pair);
        Ok(CurlBackend { inner })
    }
}

fn setup<T>(r: std::result::Result<T, curl::Error>) -> Result<T> {
    r.map_err(|e| Error::unsupported(BackendKind::Curl, "libcurl refused an option").with_source(e))
}

impl Inner {
    fn new_pair(&self) -> Result<Pair> {
        let s = &self.settings;
        let mut easy = Easy2::new(Collector::new(self.limits.max_body));
        setup(easy.signal(false))?;
        setup(easy.follow_location(false))?;
        setup(easy.max_redirections(0))?;
        setup(easy.connect_timeout(s.connect_timeout))?;
        setup(easy.tcp_nodelay(true))?;
        setup(easy.buffer_size(collector::RECEIVE_BUFFER))?;
        setup(easy.tcp_keepalive(s.tcp_keepalive.is_some()))?;
        if let Some(idle) = s.tcp_keepalive {
            setup(easy.tcp_keepidle(idle))?;
            setup(easy.tcp_keepintvl(idle))?;
        }
        if let Some(ip) = s.local_address {
            setup(easy.interface(&format!("host!{ip}")))?;
        }
        setup(easy.http_09_allowed(false))?;
        setup(easy.maxage_conn(s.idle_timeout))?;
        setup(easy.forbid_reuse(s.max_idle == 0))?;
        setup(easy.http_version(match s.http_version {
            HttpVersion::Auto => CurlVersion::V2TLS,
            HttpVersion::Http1 => CurlVersion::V11,
            HttpVersion::Http2 => CurlVersion::V2PriorKnowledge,
        }))?;
        setup(easy.ssl_min_max_version(
            match s.tls.min_version {
                crate::config::TlsVersion::Tls12 => curl::easy::SslVersion::Tlsv12,
                crate::config::TlsVersion::Tls13 => curl::easy::SslVersion::Tlsv13,
            },
            curl::easy::SslVersion::Default,
        ))?;
        setup(easy.ssl_verify_peer(s.tls.verify))?;
        setup(easy.ssl_verify_host(s.tls.verify))?;
        // httpfleet's certificates only: not libcurl's bundle, nor its CA directory.
        setup(s.roots.set(&mut easy))?;
        if let Some((cert, key)) = &s.identity_pem {
            setup(easy.ssl_cert_blob(cert))?;
            setup(easy.ssl_cert_type("PEM"))?;
            setup(easy.ssl_key_blob(key))?;
            setup(easy.ssl_key_type("PEM"))?;
        }
        // Proxies are set per URL (see `prepare`); an empty string means none, environment
        // variables included, and an empty `noproxy` keeps `NO_PROXY` out too.
        setup(easy.proxy(""))?;
        setup(easy.noproxy(""))?;
        let mut multi = Multi::new();
        multi.set_max_connects(s.max_idle.max(1)).map_err(|e| {
            Error::unsupported(BackendKind::Curl, "libcurl refused an option").with_source(e)
        })?;
        Ok(Pair {
            multi,
            easy,
            sent: Box::default(),
        })
    }

    fn take_pair(&self) -> Result<Pair> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(pair) => Ok(pair),
            None => self.new_pair(),
        }
    }

    /// Returns a pair to the pool, which keeps at most `pool.max_idle_per_host` idle pairs (at
    /// least one): a burst of concurrent transfers does not leave a pair, with its connections
    /// and descriptors, behind for each.
    fn put_back(&self, pair: Pair) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.settings.max_idle.max(1) {
            pool.push(pair);
        }
    }

    /// Takes a pair and sets its handle up for `out`: everything before the transfer itself.
    /// `entries`: the answers of `Config::resolver` for it ([`names::Names::entries`]).
    fn start(self: &Arc<Self>, out: Outgoing<'_>, entries: Vec<String>) -> Result<Transfer> {
        let remaining = out
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(
                Error::new(ErrorKind::Timeout(TimeoutPhase::Total)).with_backend(BackendKind::Curl)
            );
        }
        let mut pair = self.take_pair()?;
        if let Err(e) = self.prepare(&mut pair, out, remaining, entries) {
            self.put_back(pair);
            return Err(e.with_backend(BackendKind::Curl));
        }
        let deadline = std::time::Instant::now() + remaining;
        Transfer::start(self.clone(), pair, deadline).map_err(|e| e.with_backend(BackendKind::Curl))
    }

    /// Sets this request's options on a reused handle (see [`Sent`]).
    /// `entries` are the `CURLOPT_RESOLVE` entries of `Config::resolver` (see `names.rs`).
    fn prepare(
        &self,
        pair: &mut Pair,
        out: Outgoing<'_>,
        remaining: Duration,
        mut entries: Vec<String>,
    ) -> Result<()> {
        let refused = |e: curl::Error| Error::builder("libcurl refused the request").with_source(e);
        let Pair { easy, sent, .. } = pair;
        let head_only = *out.method == Method::HEAD;
        let posts = !head_only && out.sends_body();
        let framing = match (posts, out.body_len) {
            (false, _) => Framing::NoBody,
            (true, Some(_)) => Framing::Length,
            (true, None) => Framing::Chunked,
        };
        if !sent
            .url
            .as_ref()
            .is_some_and(|last| same_uri(last, out.uri))
        {
            easy.url(&crate::url::to_text(out.uri)).map_err(refused)?;
            entries.extend(self.settings.names.override_entry(out.uri));
            if !self.settings.proxies.is_empty() {
                // libcurl percent-decodes the credentials of a proxy URL: encoded, they arrive
                // as given.
                let proxy = self.settings.proxies.for_uri(out.uri);
                easy.proxy(&proxy.map_or(String::new(), |p| p.url_with_credentials()))
                    .map_err(refused)?;
            }
            sent.url = Some(out.uri.clone());
        }
        if !entries.is_empty() && sent.resolved != entries {
            let mut list = curl::easy::List::new();
            for entry in &entries {
                list.append(entry).map_err(refused)?;
            }
            easy.resolve(list).map_err(refused)?;
            sent.resolved = entries;
        }
        easy.timeout(remaining.max(Duration::from_millis(1)))
            .map_err(refused)?;
        let method_changed = sent.method.as_ref() != Some(out.method);
        if head_only {
            easy.nobody(true).map_err(refused)?;
        } else if posts {
            // The body goes through the read callback, so that libcurl can only send it again
            // where the request allows (see `Collector::seek`).
            easy.nobody(false).map_err(refused)?;
            easy.post(true).map_err(refused)?;
            if let Some(len) = out.body_len {
                if sent.body_len != Some(len) || !sent.posted {
                    easy.post_field_size(len).map_err(refused)?;
                }
            }
        } else if method_changed || sent.posted {
            easy.nobody(false).map_err(refused)?;
            easy.get(true).map_err(refused)?;
        }
        if method_changed {
            easy.custom_request(out.method.as_str()).map_err(refused)?;
            sent.method = Some(out.method.clone());
        }
        // A request with no body to refuse rewinding would be sent again by libcurl on a fresh
        // connection if a reused one died after it was written: a non-idempotent one goes on a
        // fresh connection from the start.
        let fresh = out.body_len == Some(0) && !crate::request::is_idempotent(out.method);
        if fresh != sent.fresh {
            easy.fresh_connect(fresh).map_err(refused)?;
        }
        let headers_same = sent.headers.as_ref().is_some_and(|(own, defaults, f)| {
            *f == framing
                && same_in_order(own, out.headers)
                && same_in_order(defaults, out.defaults)
        });
        if !headers_same {
            easy.http_headers(header_list(&out, framing)?)
                .map_err(refused)?;
            sent.headers = Some((out.headers.clone(), out.defaults.clone(), framing));
        }
        sent.posted = posts;
        sent.fresh = fresh;
        sent.body_len = out.body_len;
        let upload = match out.body {
            SendBody::Bytes(b) if b.is_empty() => Upload::None,
            SendBody::Bytes(b) => Upload::Bytes(b, 0),
            SendBody::Parts(parts) => Upload::Parts(parts.reader()),
            SendBody::Reader(r) => Upload::Reader(r),
            SendBody::Stream(_) => {
                return Err(Error::builder(
                    "a stream body needs the async client; use Body::reader on the blocking one",
                ));
            }
        };
        let proxy = self.settings.proxies.for_uri(out.uri).map(|p| p.kind);
        let tunnel = proxy == Some(ProxyKind::Http) && crate::url::is_https(out.uri);
        easy.get_mut().reset(
            proxy.is_some(),
            tunnel,
            head_only,
            upload,
            out.body_len,
            out.upload_progress.cloned(),
            out.may_resend,
        );
        Ok(())
    }
}

/// The header list of a request: its wire headers, and none of what libcurl would add on its
/// own (`Accept`, `Content-Type` and `Expect` on a request with a body).
fn header_list(out: &Outgoing<'_>, framing: Framing) -> Result<List> {
    let refused = |e: curl::Error| Error::builder("libcurl refused the request").with_source(e);
    let mut list = List::new();
    let mut line = String::new();
    // libcurl sends `Accept: */*` itself unless the list names `Accept`: a lone `*/*` is left to
    // it, the same field at a fraction of a list line's cost (libcurl formats each line and
    // checks it against its own headers: about 2,500 instructions of a 13-byte GET, callgrind).
    let mut accepts = out
        .wire_headers()
        .filter(|(name, _)| *name == http::header::ACCEPT);
    let curl_accept =
        matches!((accepts.next(), accepts.next()), (Some((_, v)), None) if v == "*/*");
    for (name, value) in out.wire_headers() {
        if curl_accept && name == http::header::ACCEPT {
            continue;
        }
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
    if framing != Framing::NoBody {
        if !out.has_header(&http::header::CONTENT_TYPE) {
            list.append("Content-Type:").map_err(refused)?;
        }
        list.append("Expect:").map_err(refused)?;
    }
    if framing == Framing::Chunked {
        list.append("Transfer-Encoding: chunked").map_err(refused)?;
    }
    if !out.has_header(&http::header::ACCEPT) {
        list.append("Accept:").map_err(refused)?;
    }
    Ok(list)
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

/// The head of a transfer as an [`Answer`]: the body whole when the transfer already ended
/// (its pair back in the pool), else `rest` to read the body from.
fn answer(transfer: &mut Transfer, rest: impl FnOnce() -> AnswerBody) -> Result<Answer> {
    let ended = transfer.ended();
    let phases = transfer.phases();
    let Some(c) = transfer.collector() else {
        return Err(Error::new(ErrorKind::Canceled).with_backend(BackendKind::Curl));
    };
    let status = c.status_code().ok_or_else(|| {
        Error::new(ErrorKind::Protocol)
            .with_backend(BackendKind::Curl)
            .with_detail("invalid status code")
    })?;
    let (version, headers) = (c.version, std::mem::take(&mut c.headers));
    let body = if ended {
        let body = c.take_body();
        transfer.next_piece(true)?;
        AnswerBody::Full(body)
    } else {
        rest()
    };
    Ok(Answer {
        status,
        version,
        headers,
        body,
        phases,
    })
}

impl BlockingTransport for CurlBackend {
    fn send_blocking(&self, out: Outgoing<'_>) -> Result<Answer> {
        let s = &self.inner.settings;
        let within = out
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let entries = s
            .names
            .entries_blocking(out.uri, &s.proxies, within)
            .map_err(|e| e.with_backend(BackendKind::Curl))?;
        let mut transfer = self.inner.start(out, entries)?;
        transfer
            .until_head()
            .map_err(|e| e.with_backend(BackendKind::Curl))?;
        let mut rest = None;
        let answer = answer(&mut transfer, || {
            rest = Some(());
            AnswerBody::Full(Bytes::new())
        })?;
        Ok(match rest {
            // Read on: the caller drives the transfer as it reads.
            Some(()) => Answer {
                body: AnswerBody::Stream(Box::new(Driven(transfer))),
                ..answer
            },
            None => answer,
        })
    }
}

/// A response body whose transfer its reader drives, on the reader's own thread.
struct Driven(Transfer);

impl RawBody for Driven {
    fn poll_piece(&mut self, _: &mut Context<'_>, _: bool) -> Poll<Result<Option<Bytes>>> {
        crate::backend::blocking_body_polled(BackendKind::Curl)
    }

    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>> {
        self.0
            .next_piece(whole)
            .map_err(|e| e.with_backend(BackendKind::Curl))
    }
}

/// A response body a transfer thread hands over through a pipe; dropped, it stops the transfer
/// at once (the thread's wait is woken).
struct Streamed {
    piped: super::pipe::Piped,
    canceler: Option<transfer::Canceler>,
}

impl RawBody for Streamed {
    fn poll_piece(&mut self, cx: &mut Context<'_>, whole: bool) -> Poll<Result<Option<Bytes>>> {
        self.piped.poll_piece(cx, whole)
    }

    fn piece_blocking(&mut self, whole: bool) -> Result<Option<Bytes>> {
        self.piped.piece_blocking(whole)
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(c) = &self.canceler {
            c.cancel();
        }
    }
}

/// A transfer to run on a transfer thread, and where its head goes.
type Job = (Transfer, tokio::sync::oneshot::Sender<Result<Answer>>);

/// Runs a [`Job`] on a transfer thread: up to the head, then the body into a pipe as the
/// reader takes it.
fn run_job((mut transfer, done): Job) {
    if let Err(e) = transfer.until_head() {
        let _ = done.send(Err(e.with_backend(BackendKind::Curl)));
        return;
    }
    let (writer, reader) = super::pipe::pipe(u64::MAX);
    let canceler = transfer.canceler();
    let head = answer(&mut transfer, || {
        AnswerBody::Stream(Box::new(Streamed {
            piped: super::pipe::Piped(reader),
            canceler,
        }))
    });
    let streaming = matches!(
        head,
        Ok(Answer {
            body: AnswerBody::Stream(_),
            ..
        })
    );
    if done.send(head).is_err() || !streaming {
        return;
    }
    let deadline = transfer.deadline();
    if let Err(e) = writer.first_ask(deadline) {
        return writer.end(Err(e.with_backend(BackendKind::Curl)));
    }
    loop {
        if writer.reader_gone() {
            return;
        }
        match transfer.next_piece(writer.whole()) {
            Ok(Some(piece)) => match writer.send(piece, deadline) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return writer.end(Err(e.with_backend(BackendKind::Curl))),
            },
            Ok(None) => return writer.end(Ok(())),
            Err(e) => return writer.end(Err(e.with_backend(BackendKind::Curl))),
        }
    }
}

impl AsyncTransport for CurlBackend {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer> {
        // Boxed: the transfer moves into this future, and every request future through
        // the `Backend` enum is as large as the largest backend's (2.7 KB, not 0.7 KB).
        Box::pin(self.on_transfer_thread(out)).await
    }
}

impl CurlBackend {
    /// [`AsyncTransport::send`]: the exchange on a transfer thread, the head handed back.
    async fn on_transfer_thread(&self, out: Outgoing<'_>) -> Result<Answer> {
        let deadline = out.deadline;
        let s = &self.inner.settings;
        let entries = s
            .names
            .entries(out.uri, &s.proxies)
            .await
            .map_err(|e| e.with_backend(BackendKind::Curl))?;
        let (out, mut pump) = super::pipe::pump_stream(out);
        let transfer = self.inner.start(out, entries)?;
        // Dropped before the head, the request cancels its transfer (its thread wakes at once).
        let cancel = CancelOnDrop(transfer.canceler());
        let head = self
            .inner
            .workers
            .run(deadline, move |done| (transfer, done));
        let joined = super::pipe::beside(&mut pump, head).await;
        std::mem::forget(cancel);
        match joined {
            Ok(Some(head)) => head,
            Ok(None) => Err(Error::new(ErrorKind::Canceled)
                .with_backend(BackendKind::Curl)
                .with_detail("the transfer thread ended")),
            Err(e) => Err(e.with_backend(BackendKind::Curl)),
        }
    }
}

/// Cancels a transfer when the request that started it is dropped before its head.
struct CancelOnDrop(Option<transfer::Canceler>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.cancel();
        }
    }
}

/// Maps a libcurl error to an httpfleet error, using what the collector saw to tell the phase.
fn map_error(e: curl::Error, seen: &Collector, proxied: bool, total_deadline_hit: bool) -> Error {
    let desc = e.extra_description().unwrap_or("").to_ascii_lowercase();
    if seen.not_resent || e.is_send_fail_rewind() {
        return Error::new(ErrorKind::Protocol)
            .with_backend(BackendKind::Curl)
            .with_detail(
                "the connection closed after the request was sent; \
                 a request that may not be sent twice is not sent again",
            )
            .with_source(e);
    }
    if let (Some(io), true) = (&seen.upload_error, e.is_aborted_by_callback()) {
        return Error::new(ErrorKind::Body)
            .with_backend(BackendKind::Curl)
            .with_detail(format!("the request body could not be read: {io}"))
            .with_source(e);
    }
    let kind = if seen.too_large {
        ErrorKind::BodyTooLarge
    } else if e.is_aborted_by_callback() {
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
