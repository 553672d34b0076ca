//! [`Client`]: what users hold. It owns one backend and the policy that must mean the same on
//! every backend: default headers, validation before any I/O, the total deadline, redirects and
//! decompression.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::ACCEPT_ENCODING;
use http::{HeaderMap, Method};

use crate::backend::{AsyncTransport, Backend, BackendKind};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::redirect::{Next, Redirects};
use crate::request::{Request, RequestBuilder, check_headers};
use crate::response::Response;

/// The request policy of a client, resolved once from [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    timeout: Duration,
    max_redirects: u32,
    allow_insecure_redirects: bool,
    decompress: bool,
    max_response_bytes: u64,
    default_headers: HeaderMap,
    proxied: bool,
}

impl Policy {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        config.validate()?;
        Ok(Policy {
            timeout: config.timeout,
            max_redirects: config.max_redirects,
            allow_insecure_redirects: config.allow_insecure_redirects,
            decompress: config.decompress,
            max_response_bytes: config.max_response_bytes,
            default_headers: config.header_map()?,
            proxied: config.proxy_url()?.is_some(),
        })
    }

    /// Validates the request, adds default headers and sets its deadline. Nothing has been sent
    /// when this fails.
    pub(crate) fn prepare(&self, req: &mut Request) -> Result<Redirects> {
        check_headers(&req.headers).map_err(|e| e.with_url(&req.uri))?;
        for (name, value) in &self.default_headers {
            if !req.headers.contains_key(name) {
                req.headers.insert(name.clone(), value.clone());
            }
        }
        if self.decompress && !req.headers.contains_key(ACCEPT_ENCODING) {
            req.headers.insert(ACCEPT_ENCODING, crate::decode::ACCEPT);
        }
        req.deadline = Some(tokio::time::Instant::now() + req.timeout.unwrap_or(self.timeout));
        Ok(Redirects::new(
            req,
            self.max_redirects,
            self.allow_insecure_redirects,
        ))
    }

    /// Post-processing of the final response.
    pub(crate) fn finish(&self, mut resp: Response) -> Result<Response> {
        if self.proxied && resp.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            // Every backend reports a refused CONNECT as an error; a plain-http request gets the
            // proxy's 407 as a response. Both mean the same: the proxy refused the credentials.
            return Err(Error::new(ErrorKind::Proxy)
                .with_detail("proxy authentication required (407)")
                .with_backend(resp.backend)
                .with_url(&resp.url));
        }
        if self.decompress {
            crate::decode::decode(&mut resp, self.max_response_bytes)?;
        }
        Ok(resp)
    }
}

/// An HTTP client over one [`Backend`]. Cheap to clone: clones share the backend and its
/// connection pool.
///
/// ```no_run
/// # async fn run() -> httpfleet::Result<()> {
/// use std::time::Duration;
/// use httpfleet::{BackendKind, Client, Config};
///
/// let config = Config::default().backend(BackendKind::Hyper).timeout(Duration::from_secs(5));
/// let client = Client::from_config(&config)?;
/// let resp = client.get("http://127.0.0.1:8080/json").query(&[("symbol", "BTCUSDT")]).send().await?;
/// println!("{} {}", resp.status(), resp.text()?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    policy: Policy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("backend", &self.inner.backend.kind())
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Client {
    /// A client over `backend` with the default [`Config`] policy (timeouts, redirects,
    /// decompression). The backend keeps the settings it was built with.
    pub fn new(backend: Backend) -> Self {
        Client::with_backend(backend, &Config::default()).expect("the default config is valid")
    }

    /// A client built from `config`: the backend it names, and its policy.
    pub fn from_config(config: &Config) -> Result<Self> {
        Client::with_backend(Backend::from_config(config)?, config)
    }

    /// A client over an already built `backend` with the policy of `config`.
    pub fn with_backend(backend: Backend, config: &Config) -> Result<Self> {
        Ok(Client {
            inner: Arc::new(Inner {
                backend,
                policy: Policy::new(config)?,
            }),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Which client library serves requests.
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// Starts a `GET` request.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::GET), url.as_ref())
    }

    /// Starts a `POST` request.
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::POST), url.as_ref())
    }

    /// Starts a `PUT` request.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::PUT), url.as_ref())
    }

    /// Starts a `PATCH` request.
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::PATCH), url.as_ref())
    }

    /// Starts a `DELETE` request.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::DELETE), url.as_ref())
    }

    /// Starts a `HEAD` request.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder<'_, Client> {
        RequestBuilder::new(self, Ok(Method::HEAD), url.as_ref())
    }

    /// Starts a request with any method (`Method` or text such as `"OPTIONS"`). An invalid
    /// method is a [`ErrorKind::Builder`](crate::ErrorKind::Builder) error from `send`.
    pub fn request<M>(&self, method: M, url: impl AsRef<str>) -> RequestBuilder<'_, Client>
    where
        M: TryInto<Method>,
        M::Error: Into<http::Error>,
    {
        RequestBuilder::new(self, crate::request::method(method), url.as_ref())
    }

    /// Sends a built request: default headers, the deadline, redirects and decoding applied.
    pub async fn execute(&self, mut req: Request) -> Result<Response> {
        let policy = &self.inner.policy;
        let mut redirects = policy.prepare(&mut req)?;
        loop {
            let resp = self.inner.backend.send(req).await?;
            match redirects.step(resp)? {
                Next::Done(resp) => return policy.finish(resp),
                Next::Follow(next) => req = next,
            }
        }
    }

    /// The blocking twin of [`Client::execute`], used by [`blocking::Client`](crate::blocking::Client).
    pub(crate) fn execute_blocking(&self, mut req: Request) -> Result<Response> {
        use crate::backend::BlockingTransport;
        let policy = &self.inner.policy;
        let mut redirects = policy.prepare(&mut req)?;
        loop {
            let resp = self.inner.backend.send_blocking(req)?;
            match redirects.step(resp)? {
                Next::Done(resp) => return policy.finish(resp),
                Next::Follow(next) => req = next,
            }
        }
    }
}

impl RequestBuilder<'_, Client> {
    /// Sends the request and buffers the response.
    pub async fn send(self) -> Result<Response> {
        self.client.execute(self.request?).await
    }
}
