//! Drives one backend through the async or the blocking surface with the same test code.

use std::time::Duration;

use httpfleet::{BackendKind, Client, Config, RequestBuilder, Response};

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

    /// Builds a client from `config` and sends one request built by `build`.
    pub fn run<F>(&self, config: &Config, build: F) -> httpfleet::Result<Response>
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
    pub fn go<F>(&self, build: F) -> httpfleet::Result<Response>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        self.run(&self.config(), build)
    }
}

impl Session<'_> {
    pub fn run<F>(&self, build: F) -> httpfleet::Result<Response>
    where
        F: for<'a> FnOnce(&'a Client) -> RequestBuilder<'a, Client>,
    {
        let req = build(&self.client).build()?;
        match self.h.surface {
            Surface::Async => self.h.rt.block_on(self.client.execute(req)),
            Surface::Blocking => self.blocking.execute(req),
        }
    }
}

/// Records that `case` is unsupported on `kind` (the test asserted the `Unsupported` error), for
/// the README parity table (`scripts/parity.py`).
pub fn unsupported(case: &str, kind: BackendKind) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let line = format!("{case} {kind}\n");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("parity-unsupported.txt"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
}
