//! The `ureq` backend: ureq 3 (blocking, HTTP/1.1 only). Blocking code sends and reads on its
//! own thread. From async code the exchange runs on a transfer thread (`backend/worker.rs`),
//! which hands the head over, then the body through a pipe (`backend/pipe.rs`) as the caller reads
//! it; ureq's own global timeout bounds the transfer, so a
//! dropped future cannot leave it running past its deadline.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

mod reading;
mod resolver;
mod wire;

use super::classify::{Stage, classify};
use super::worker::Workers;
use super::{Answer, AnswerBody, AsyncTransport, BackendKind, BlockingTransport};
use crate::config::{Config, HttpVersion, Proxies, ProxyKind, ProxyUrl};
use crate::error::{Error, ErrorKind, Result, TimeoutPhase};
use crate::request::{Outgoing, Progress, SendBody};
use reading::Reading;
use resolver::Resolver;

/// A `ureq::Agent`. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct UreqBackend {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    proxies: Proxies,
    /// ureq's form of `proxies.http` and `proxies.https`, set on each request that uses one.
    via: [Option<ureq::Proxy>; 2],
    /// The threads that run exchanges for async callers.
    workers: Workers<Job>,
    /// `max_response_bytes`: what an async body read whole may gather.
    max_body: u64,
}

impl fmt::Debug for UreqBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqBackend").finish_non_exhaustive()
    }
}

impl UreqBackend {
    /// Builds the agent with every knob of `config` set explicitly. `http_version = Http2` and
    /// a `local_address` are refused with [`ErrorKind::Unsupported`]: ureq speaks HTTP/1.1 only
    /// and cannot bind a local address.
    pub fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        if config.http_version == HttpVersion::Http2 {
            return Err(Error::unsupported(
                BackendKind::Ureq,
                "ureq speaks HTTP/1.1 only; http_version = Http2 cannot be honoured",
            ));
        }
        if config.local_address.is_some() {
            return Err(Error::unsupported(
                BackendKind::Ureq,
                "ureq cannot bind a local address; local_address cannot be honoured",
            ));
        }
        if config.tcp_keepalive.is_some() {
            return Err(Error::unsupported(
                BackendKind::Ureq,
                "ureq cannot set TCP keepalive; tcp_keepalive cannot be honoured",
            ));
        }
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(crate::tls::provider_for(&config.tls))
            .disable_verification(!config.tls.verify);
        let roots = crate::trust::trusted(&config.tls)?
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect::<Vec<_>>();
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
        if let Some(id) = crate::trust::Identity::of(&config.tls)? {
            let chain = id
                .chain
                .iter()
                .map(|c| Certificate::from_der(c).to_owned())
                .collect::<Vec<_>>();
            // ureq takes a key from DER only with its kind, which it does not export: as PEM.
            let (_, pem) = id.to_pem();
            let key = PrivateKey::from_pem(&pem)
                .map_err(|e| Error::builder("invalid client key").with_source(e))?
                .to_owned();
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let proxies = config.proxies()?;
        let via = [
            proxies.http.as_ref().map(ureq_proxy).transpose()?,
            proxies.https.as_ref().map(ureq_proxy).transpose()?,
        ];
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .save_redirect_history(false)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .no_delay(true)
            .max_response_header_size(super::MAX_HEADER_BYTES)
            .proxy(None)
            .tls_config(tls.build())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(config.read_timeout)
            .max_idle_connections_per_host(config.pool.max_idle_per_host)
            .max_idle_connections(config.pool.max_idle_per_host.saturating_mul(16).max(1))
            .max_idle_age(config.pool.idle_timeout)
            .allow_non_standard_methods(true)
            .build();
        let agent = ureq::Agent::with_parts(
            agent_config,
            wire::Watching(ureq::unversioned::transport::DefaultConnector::default()),
            Resolver::new(config.resolve_map(), config.resolver.clone()),
        );
        Ok(UreqBackend {
            inner: Arc::new(Inner {
                agent,
                proxies,
                via,
                workers: Workers::new(config.pool.max_idle_per_host, run_job),
                max_body: config.max_response_bytes,
            }),
        })
    }
}

impl Inner {
    /// Sends `out` and reads the response head: ureq's own response, its body still to read.
    fn start(&self, out: Owned) -> Result<http::Response<ureq::Body>> {
        let remaining = out
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(Stage::Headers.deadline_reached(BackendKind::Ureq));
        }
        let started = std::time::Instant::now();
        wire::take_invalid_trailer();
        let Owned {
            method,
            uri,
            headers,
            body,
            body_len,
            sends_body,
            upload_progress,
            ..
        } = out;
        let proxy = self.proxies.for_uri(&uri).map(|p| p.kind);
        let via = proxy.and_then(|_| self.via[usize::from(crate::url::is_https(&uri))].clone());
        let mut hreq = http::Request::new(());
        *hreq.method_mut() = method;
        *hreq.uri_mut() = uri;
        *hreq.headers_mut() = headers;
        let (parts, ()) = hreq.into_parts();
        let timeout = Some(remaining.max(Duration::from_millis(1)));
        let result = match body {
            // `()` sends no body and no `Content-Length`, like the other backends.
            SendBody::Bytes(b) if b.is_empty() && !sends_body => {
                self.run(http::Request::from_parts(parts, ()), timeout, via)
            }
            SendBody::Bytes(b) if upload_progress.is_none() => {
                self.run(http::Request::from_parts(parts, &b[..]), timeout, via)
            }
            other => {
                let reader = Counted {
                    inner: reader_of(other)?,
                    sent: 0,
                    len: body_len,
                    progress: upload_progress,
                };
                let mut parts = parts;
                if let Some(len) = body_len {
                    // A reader's length goes in `Content-Length` (ureq chunks it otherwise).
                    parts
                        .headers
                        .insert(http::header::CONTENT_LENGTH, len.into());
                }
                let body = ureq::SendBody::from_owned_reader(reader);
                self.run(http::Request::from_parts(parts, body), timeout, via)
            }
        };
        result.map_err(|e| {
            let err = self.map_error(e, Stage::Headers, proxy.is_some());
            // ureq names the phase it was in when its global budget ran out; a connection still
            // being set up when the total deadline hits is `Headers` on every backend, and
            // `Connect` only when connect_timeout fired.
            let total_hit = started.elapsed() + Duration::from_millis(10) >= remaining;
            if total_hit && err.kind() == ErrorKind::Timeout(TimeoutPhase::Connect) {
                Error::new(ErrorKind::Timeout(TimeoutPhase::Headers))
                    .with_backend(BackendKind::Ureq)
                    .with_source(err)
            } else {
                err
            }
        })
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        hreq: http::Request<B>,
        timeout: Option<Duration>,
        proxy: Option<ureq::Proxy>,
    ) -> std::result::Result<http::Response<ureq::Body>, ureq::Error> {
        let mut hreq = self.agent.configure_request(hreq).timeout_global(timeout);
        if proxy.is_some() {
            hreq = hreq.proxy(proxy);
        }
        let hreq = hreq.build();
        self.agent.run(hreq)
    }

    /// ureq reports its own errors through `io::Error` when reading the body.
    fn map_io_body(&self, e: std::io::Error) -> Error {
        match e.into_inner() {
            Some(inner) => match inner.downcast::<ureq::Error>() {
                Ok(ue) => self.map_error(*ue, Stage::Body, false),
                Err(other) => {
                    let kind = classify(&*other, Stage::Body);
                    Error::new(kind)
                        .with_backend(BackendKind::Ureq)
                        .with_source(other)
                }
            },
            None => Error::new(ErrorKind::Body).with_backend(BackendKind::Ureq),
        }
    }

    /// Maps a ureq error met at `stage` to an httpfleet error (`proxied`: the request went
    /// through a proxy).
    fn map_error(&self, e: ureq::Error, stage: Stage, proxied: bool) -> Error {
        let connecting = crate::error::chain(&e).any(|e| e.is::<wire::ConnectFailed>());
        let stage = if connecting { Stage::Connect } else { stage };
        use ureq::Timeout as T;
        let kind = match &e {
            ureq::Error::Timeout(t) => match t {
                T::Resolve | T::Connect => ErrorKind::Timeout(TimeoutPhase::Connect),
                T::RecvBody => ErrorKind::Timeout(TimeoutPhase::Body),
                _ => stage.timeout(),
            },
            ureq::Error::HostNotFound => {
                if proxied {
                    ErrorKind::Proxy
                } else {
                    ErrorKind::Dns
                }
            }
            ureq::Error::ConnectionFailed => ErrorKind::Connect,
            ureq::Error::BadUri(_) => ErrorKind::InvalidUrl,
            ureq::Error::Http(_) => ErrorKind::Builder,
            ureq::Error::BodyExceedsLimit(_) => ErrorKind::BodyTooLarge,
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => ErrorKind::Protocol,
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => ErrorKind::Redirect,
            ureq::Error::InvalidProxyUrl => ErrorKind::Builder,
            ureq::Error::ConnectProxyFailed(_) => ErrorKind::Proxy,
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => ErrorKind::Tls,
            ureq::Error::Io(io) => {
                let k = classify(io, stage);
                // A SOCKS handshake the proxy refused fails while connecting, as an I/O error.
                let setup = io.get_ref().is_some_and(|e| e.is::<wire::ConnectFailed>());
                if proxied && (k == ErrorKind::Connect || setup && k == ErrorKind::Protocol) {
                    ErrorKind::Proxy
                } else {
                    k
                }
            }
            other => classify(other, stage),
        };
        Error::new(kind)
            .with_backend(BackendKind::Ureq)
            .with_source(e)
    }
}

/// ureq's form of one of httpfleet's proxies, built from its parts: credentials reach the proxy
/// exactly as given, whatever characters they hold.
fn ureq_proxy(p: &ProxyUrl) -> Result<ureq::Proxy> {
    let protocol = match p.kind {
        ProxyKind::Http => ureq::ProxyProtocol::Http,
        ProxyKind::Socks5 => ureq::ProxyProtocol::Socks5,
        ProxyKind::Socks5h => ureq::ProxyProtocol::Socks5h,
    };
    let mut b = ureq::Proxy::builder(protocol)
        .host(p.uri.host().unwrap_or_default())
        .port(p.uri.port_u16().unwrap_or(80))
        .resolve_target(p.kind == ProxyKind::Socks5);
    if let Some((u, pw)) = &p.credentials {
        b = b.username(u).password(pw);
    }
    b.build()
        .map_err(|e| Error::builder("invalid proxy").with_source(e))
}

/// A request's hop, owned: what crosses to a transfer thread.
struct Owned {
    method: Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: SendBody,
    body_len: Option<u64>,
    sends_body: bool,
    upload_progress: Option<Progress>,
    deadline: tokio::time::Instant,
}

impl Owned {
    fn of(out: Outgoing<'_>) -> Self {
        Owned {
            method: out.method.clone(),
            uri: out.uri.clone(),
            headers: out.header_map(0),
            sends_body: out.sends_body(),
            body_len: out.body_len,
            upload_progress: out.upload_progress.cloned(),
            deadline: out.deadline,
            body: out.body,
        }
    }
}

/// A body to send, as the reader ureq takes.
fn reader_of(body: SendBody) -> Result<Box<dyn Read + Send>> {
    Ok(match body {
        SendBody::Bytes(b) => Box::new(std::io::Cursor::new(b)),
        SendBody::Parts(parts) => Box::new(parts.reader()),
        SendBody::Reader(r) => r,
        SendBody::Stream(_) => {
            return Err(Error::builder(
                "a stream body needs the async client; use Body::reader on the blocking one",
            ));
        }
    })
}

/// A request body's reader, counting what is sent for the upload progress callback.
struct Counted {
    inner: Box<dyn Read + Send>,
    sent: u64,
    len: Option<u64>,
    progress: Option<Progress>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        if let (Some(progress), true) = (&self.progress, n > 0) {
            progress.report(self.sent, self.len);
        }
        Ok(n)
    }
}

/// The head of a response, and its body: whole when it was small and arrived with the head,
/// else a reader to go on with.
fn answer(parts: http::response::Parts, body: AnswerBody) -> Answer {
    Answer {
        status: parts.status,
        version: parts.version,
        headers: parts.headers.into(),
        body,
        phases: Default::default(),
    }
}

impl BlockingTransport for UreqBackend {
    fn send_blocking(&self, out: Outgoing<'_>) -> Result<Answer> {
        let resp = self.inner.start(Owned::of(out))?;
        let (parts, body) = resp.into_parts();
        let reading = Reading::new(self.inner.clone(), body, 64 * 1024);
        Ok(answer(parts, AnswerBody::Stream(Box::new(reading))))
    }
}

/// What a transfer thread hands back: the head, and the body through a pipe.
type Head = Result<(http::response::Parts, AnswerBody)>;

/// An exchange to run on a transfer thread, and where its head goes.
type Job = (Arc<Inner>, Owned, tokio::sync::oneshot::Sender<Head>);

/// Runs a [`Job`] on a transfer thread: the head, then the body into a pipe as the reader takes
/// it.
fn run_job((inner, out, done): Job) {
    let deadline = out.deadline.into_std();
    let resp = match inner.start(out) {
        Ok(resp) => resp,
        Err(e) => {
            let _ = done.send(Err(e));
            return;
        }
    };
    let (parts, body) = resp.into_parts();
    let (writer, reader) = super::pipe::pipe(inner.max_body);
    let mut reading = Reading::new(inner, body, reading::PIPED_PIECE);
    if done
        .send(Ok((
            parts,
            AnswerBody::Stream(Box::new(super::pipe::Piped(reader))),
        )))
        .is_err()
    {
        return;
    }
    // Past a small body, learn how the reader reads before reading (`Writer::first_ask`). A
    // small one is read at once: waiting for the reader's first ask costs a thread wake-up, 2.6%
    // of a 13-byte async GET (46,098 against 47,299 instructions, `scripts/instructions.sh`),
    // and joining a small body's pieces costs less.
    if reading.declared.is_none_or(|n| n > 64 * 1024) {
        if let Err(e) = writer.first_ask(deadline) {
            return writer.end(Err(e.with_backend(BackendKind::Ureq)));
        }
    }
    // A piece read from a full socket read likely has more behind it: the reader is woken for
    // a batch of them, or when a read waits (`wire::owe`).
    let end = loop {
        let piece = match reading.next_piece(writer.whole()) {
            Ok(Some(piece)) => piece,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match writer.send_batched(piece, deadline, wire::read_filled()) {
            Ok((true, owed)) => wire::owe(owed),
            // The reader is gone: dropping ureq's body closes the connection.
            Ok((false, _)) => break Ok(()),
            Err(e) => break Err(e.with_backend(BackendKind::Ureq)),
        }
    };
    wire::owe(None);
    writer.end(end);
}

impl AsyncTransport for UreqBackend {
    async fn send(&self, out: Outgoing<'_>) -> Result<Answer> {
        // Boxed: the transfer moves into this future, and every request future through
        // the `Backend` enum is as large as the largest backend's (2.7 KB, not 0.7 KB).
        Box::pin(self.on_transfer_thread(out)).await
    }
}

impl UreqBackend {
    /// [`AsyncTransport::send`]: the exchange on a transfer thread, the head handed back.
    async fn on_transfer_thread(&self, out: Outgoing<'_>) -> Result<Answer> {
        let deadline = out.deadline;
        let (out, mut pump) = super::pipe::pump_stream(out);
        let job = (self.inner.clone(), Owned::of(out));
        let head = self
            .inner
            .workers
            .run(deadline, |done| (job.0, job.1, done));
        let joined = super::pipe::beside(&mut pump, head).await;
        match joined {
            Ok(Some(Ok((parts, body)))) => Ok(answer(parts, body)),
            Ok(Some(Err(e))) => Err(e),
            Ok(None) => Err(Error::new(ErrorKind::Canceled)
                .with_backend(BackendKind::Ureq)
                .with_detail("the transfer thread ended")),
            Err(e) => Err(e.with_backend(BackendKind::Ureq)),
        }
    }
}
