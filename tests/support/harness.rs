//! Drives one backend through the async or the blocking surface with the same test code.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, Version};
use httpfleet::{BackendKind, Client, Config, Request, RequestBuilder};

/// Which client surface a test drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Async,
    Blocking,
}

/// The backend and surface under test, and a runtime for the async surface.
pub struct Harness {
    pub kind: BackendKind,
    pub surface: Surface,
    rt: tokio::runtime::Runtime,
}

/// A client of both surfaces over one backend.
pub struct Session<'h> {
    h: &'h Harness,
    client: Client,
    blocking: httpfleet::blocking::Client,
}

/// A response read whole (its body to the end), the same from either surface.
#[derive(Debug, Clone)]
pub struct Got {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    url: Uri,
    backend: BackendKind,
    attempts: u32,
    member: Option<String>,
    body: Bytes,
}

impl Got {
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn version(&self) -> Version {
        self.version
    }
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    pub fn url(&self) -> &Uri {
        &self.url
    }
    pub fn backend(&self) -> BackendKind {
        self.backend
    }
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }
    pub fn text(&self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.body.to_vec())
    }
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Reads an async response whole.
pub async fn got(resp: httpfleet::Response) -> httpfleet::Result<Got> {
    let head = (
        resp.status(),
        resp.version(),
        resp.headers().clone(),
        resp.url().clone(),
        resp.backend(),
        resp.attempts(),
        resp.member().map(str::to_owned),
    );
    let body = resp.bytes().await?;
    Ok(assemble(head, body))
}

/// Reads a blocking response whole.
pub fn got_blocking(resp: httpfleet::blocking::Response) -> httpfleet::Result<Got> {
    let head = (
        resp.status(),
        resp.version(),
        resp.headers().clone(),
        resp.url().clone(),
        resp.backend(),
        resp.attempts(),
        resp.member().map(str::to_owned),
    );
    let body = resp.bytes()?;
    Ok(assemble(head, body))
}

type HeadParts = (
    StatusCode,
    Version,
    HeaderMap,
    Uri,
    BackendKind,
    u32,
    Option<String>,
);

fn assemble(
    (status, version, headers, url, backend, attempts, member): HeadParts,
    body: Bytes,
) -> Got {
    Got {
        status,
        version,
        headers,
        url,
        backend,
        attempts,
        member,
        body,
    }
}

impl Harness {
    pub fn new(kind: BackendKind, surface: Surface) -> Self {
        Harness {
            kind,
            surface,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// The default configuration of the tests: this backend, a 10 s deadline.
    pub fn config(&self) -> Config {
        Config::default()
            .backend(self.kind)
            .timeout(Duration::from_secs(10))
    }

    /// A session over a backend built from `config`.
    pub fn session(&self, config: &Config) -> httpfleet::Result<Session<'_>> {
        let client = Client::from_config(config)?;
        let blocking = httpfleet::blocking::Client::with_backend(client.backend().clone(), config)?;
        Ok(Session {
            h: self,
            client,
            blocking,
        })
    }

    /// A session over a backend built from `config`, each surface's client with `hook`.
    pub fn session_hooked(
        &self,
        config: &Config,
        hook: impl httpfleet::Hook + Clone,
    ) -> httpfleet::Result<Session<'_>> {
        let s = self.session(config)?;
        Ok(Session {
            h: self,
            client: s.client.with_hook(hook.clone()),
            blocking: s.blocking.with_hook(hook),
        })
    }

    /// Builds a client from `config` and sends one request built by `build`, reading its
    /// response whole.
    pub fn run<F>(&self, config: &Config, build: F) -> httpfleet::Result<Got>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        self.session(config)?.run(build)
    }

    /// Runs one request under `config` that must end in `Timeout(phase)`, and return before
    /// `within` (the deadline plus a margin). Returns the error.
    pub fn times_out<F>(
        &self,
        config: &Config,
        phase: httpfleet::TimeoutPhase,
        within: Duration,
        build: F,
    ) -> httpfleet::Error
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        let start = std::time::Instant::now();
        let err = match self.run(config, build) {
            Ok(resp) => panic!("expected Timeout({phase:?}), got status {}", resp.status()),
            Err(e) => e,
        };
        let took = start.elapsed();
        assert_eq!(err.kind(), httpfleet::ErrorKind::Timeout(phase), "{err:?}");
        assert!(err.is_timeout());
        assert!(took < within, "took {took:?}, more than {within:?}");
        err
    }

    /// [`Harness::run`] with the default configuration.
    pub fn go<F>(&self, build: F) -> httpfleet::Result<Got>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        self.run(&self.config(), build)
    }

    /// Runs `f` on this harness's runtime (async surface tests of their own).
    pub fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }
}

/// A response of either surface, its body still to read.
pub enum Streamed {
    Async(httpfleet::Response),
    Blocking(httpfleet::blocking::Response),
}

impl Streamed {
    /// The response's timings so far.
    pub fn timings(&self) -> httpfleet::Timings {
        match self {
            Streamed::Async(r) => r.timings(),
            Streamed::Blocking(r) => r.timings(),
        }
    }
}

impl Session<'_> {
    /// Both surfaces' clients keeping their cookies in `jar`.
    #[cfg(feature = "cookies")]
    pub fn with_cookie_jar(self, jar: httpfleet::CookieJar) -> Self {
        Session {
            h: self.h,
            client: self.client.with_cookie_jar(jar.clone()),
            blocking: self.blocking.with_cookie_jar(jar),
        }
    }

    pub fn run<F>(&self, build: F) -> httpfleet::Result<Got>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        let req = build(&self.client).build()?;
        self.send(req)
    }

    /// Sends a built request and reads its response whole.
    pub fn send(&self, req: Request) -> httpfleet::Result<Got> {
        match self.h.surface {
            Surface::Async => self
                .h
                .rt
                .block_on(async { got(self.client.execute(req).await?).await }),
            Surface::Blocking => got_blocking(self.blocking.execute(req)?),
        }
    }

    /// Sends a request and returns its response with the body unread.
    pub fn stream<F>(&self, build: F) -> httpfleet::Result<Streamed>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        let req = build(&self.client).build()?;
        match self.h.surface {
            Surface::Async => self
                .h
                .rt
                .block_on(self.client.execute(req))
                .map(Streamed::Async),
            Surface::Blocking => self.blocking.execute(req).map(Streamed::Blocking),
        }
    }

    /// The next piece of `resp`'s body, `None` at its end.
    pub fn chunk(&self, resp: &mut Streamed) -> httpfleet::Result<Option<Bytes>> {
        match resp {
            Streamed::Async(r) => self.h.rt.block_on(r.chunk()),
            Streamed::Blocking(r) => r.chunk(),
        }
    }

    /// The rest of `resp`'s body parsed as JSON, through the surface's own `json`.
    pub fn json(&self, resp: Streamed) -> httpfleet::Result<serde_json::Value> {
        match resp {
            Streamed::Async(r) => self.h.rt.block_on(r.json()),
            Streamed::Blocking(r) => r.json(),
        }
    }

    /// The rest of `resp`'s body as text, through the surface's own `text`.
    pub fn text(&self, resp: Streamed) -> httpfleet::Result<String> {
        match resp {
            Streamed::Async(r) => self.h.rt.block_on(r.text()),
            Streamed::Blocking(r) => r.text(),
        }
    }

    /// The async client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Records that `case` is unsupported on `kind` (the test asserted the `Unsupported` error), for
/// the parity table (`scripts/parity.py`).
pub fn unsupported(case: &str, kind: BackendKind) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let line = format!("{case} {kind}\n");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("parity-unsupported.txt"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
}
