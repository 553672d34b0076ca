//! [`Client`]: what users hold. It sends each request over one backend, or over a fleet of
//! them, under the policy of its [`Config`] ([`Policy`]), with the [`Hook`] around each
//! attempt if it has one.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use crate::backend::{Backend, BackendKind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exchange::Policy;
use crate::fleet::{Fleet, FleetBuilder, Member, MemberStats, Strategy};
use crate::hook::{After, Before, Hook};
use crate::request::{Request, RequestBuilder};
use crate::response::Response;

/// An HTTP client over one [`Backend`], or over a fleet of them. Cheap to clone: clones share
/// the backends and their connection pools.
///
/// ```no_run
/// # async fn run() -> httpfleet::Result<()> {
/// use std::time::Duration;
/// use httpfleet::{BackendKind, Client, Config};
///
/// let config = Config::default().backend(BackendKind::Hyper).timeout(Duration::from_secs(5));
/// let client = Client::from_config(&config)?;
/// let resp = client.get("http://127.0.0.1:8080/json").query(&[("symbol", "BTCUSDT")]).send().await?;
/// println!("{} {}", resp.status(), resp.text().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    route: Route,
    policy: Arc<Policy>,
    hook: Option<Arc<dyn Hook>>,
}

/// Where requests go: one backend, or a fleet.
#[derive(Clone)]
enum Route {
    One(Backend),
    Fleet(Arc<Fleet>),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Client");
        match &self.inner.route {
            Route::One(b) => d.field("backend", &b.kind()),
            Route::Fleet(fleet) => d.field("fleet", fleet),
        };
        d.field("policy", &self.inner.policy)
            .field("hook", &self.inner.hook.is_some())
            .finish()
    }
}

impl Client {
    /// A client over `backend` with the default [`Config`] policy (timeouts, redirects,
    /// decompression). The backend keeps the settings it was built with.
    pub fn new(backend: Backend) -> Self {
        Client::with(Route::One(backend), Policy::default(), None)
    }

    /// A client built from `config`: the backend it names, and its policy.
    pub fn from_config(config: &Config) -> Result<Self> {
        Client::with_backend(Backend::from_config(config)?, config)
    }

    /// A client over an already built `backend` with the policy of `config`.
    pub fn with_backend(backend: Backend, config: &Config) -> Result<Self> {
        Ok(Client::with(
            Route::One(backend),
            Policy::new(config)?,
            None,
        ))
    }

    /// A client over several members with `strategy` and the default retry policy, breakers and
    /// failure classifier (see [`FleetBuilder`] to change them). Members built from a
    /// [`BackendKind`] use `config`; `config` also sets the request policy.
    ///
    /// ```no_run
    /// # fn run() -> httpfleet::Result<()> {
    /// use httpfleet::{BackendKind, Client, Config, Member, Strategy};
    /// let config = Config::default();
    /// let client = Client::fleet(&config, [BackendKind::Hyper, BackendKind::Curl], Strategy::Failover)?;
    /// let hosts = Client::fleet(
    ///     &config,
    ///     [
    ///         Member::new(BackendKind::Hyper).base_url("https://api1.example.com"),
    ///         Member::new(BackendKind::Hyper).base_url("https://api2.example.com"),
    ///     ],
    ///     Strategy::RoundRobin,
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn fleet<I>(config: &Config, members: I, strategy: Strategy) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: Into<Member>,
    {
        FleetBuilder::new(config)
            .members(members)
            .strategy(strategy)
            .build()
    }

    fn with(route: Route, policy: Policy, hook: Option<Arc<dyn Hook>>) -> Self {
        Client {
            inner: Arc::new(Inner {
                route,
                policy: Arc::new(policy),
                hook,
            }),
        }
    }

    /// The same client with `hook` called before and after every attempt (see [`Hook`]).
    pub fn with_hook(&self, hook: impl Hook) -> Client {
        let mut inner = (*self.inner).clone();
        inner.hook = Some(Arc::new(hook));
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The same client keeping its cookies in `jar`, which other clients and fleets may share
    /// (see [`CookieJar`](crate::CookieJar)). Every member of a fleet uses the fleet's jar.
    #[cfg(feature = "cookies")]
    pub fn with_cookie_jar(&self, jar: crate::CookieJar) -> Client {
        let mut inner = (*self.inner).clone();
        let mut policy = (*inner.policy).clone();
        policy.cookies = Some(jar);
        inner.policy = Arc::new(policy);
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The jar this client keeps cookies in: `Config::cookies`' own or one given with
    /// [`Client::with_cookie_jar`]; `None` when it keeps none.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(&self) -> Option<&crate::CookieJar> {
        self.inner.policy.cookies.as_ref()
    }

    /// The backend (a fleet's first member's).
    pub fn backend(&self) -> &Backend {
        match &self.inner.route {
            Route::One(b) => b,
            Route::Fleet(f) => f.first_backend(),
        }
    }

    /// Which client library serves requests (a fleet's first member's).
    pub fn backend_kind(&self) -> BackendKind {
        self.backend().kind()
    }

    /// Per-member counters and breaker states of a fleet; empty for a single-backend client.
    pub fn stats(&self) -> Vec<MemberStats> {
        match &self.inner.route {
            Route::One(_) => Vec::new(),
            Route::Fleet(f) => f.stats(),
        }
    }

    /// Tokens left in a fleet's shared retry budget (`None` for a single-backend client).
    pub fn retry_budget(&self) -> Option<f64> {
        match &self.inner.route {
            Route::One(_) => None,
            Route::Fleet(f) => Some(f.budget_balance()),
        }
    }

    crate::request::request_verbs!(Client);

    /// Sends a built request: default headers, the deadline, redirects, and the body set up to
    /// be decoded as it is read. Resolves once the response head has arrived.
    pub fn execute(&self, req: Request) -> impl Future<Output = Result<Response>> + Send + '_ {
        self.run(Ok(req))
    }

    /// [`Client::execute`], of a request that may have failed to build: one future, the request
    /// moved into it once (a request future is moved as it starts, so its size is a cost).
    async fn run(&self, req: Result<Request>) -> Result<Response> {
        let mut req = req?;
        let Inner {
            route,
            policy,
            hook,
        } = &*self.inner;
        policy.prepare(&mut req)?;
        match route {
            Route::One(backend) if hook.is_none() && !crate::trace::wanted() => {
                policy.exchange(backend, &req, &req.uri).await
            }
            // Boxed: a request without a hook or a trace does not carry their state.
            Route::One(backend) => {
                Box::pin(one_observed(policy, backend, hook.as_deref(), req)).await
            }
            // Boxed: a single backend's request future does not carry the fleet's state.
            Route::Fleet(fleet) => Box::pin(fleet.run(policy, hook.as_deref(), req)).await,
        }
    }

    /// [`Client::execute`] from blocking code, used by [`blocking::Client`](crate::blocking).
    /// A fleet runs on the blocking bridge (hedges need concurrency).
    pub(crate) fn execute_blocking(&self, mut req: Request) -> Result<Response> {
        if req.body.is_async_stream() {
            return Err(Error::builder(
                "a stream body needs the async client; use Body::reader on the blocking one",
            )
            .with_url(&req.uri));
        }
        let Inner {
            route,
            policy,
            hook,
        } = &*self.inner;
        policy.prepare(&mut req)?;
        match route {
            Route::One(backend) if hook.is_none() && !crate::trace::wanted() => {
                policy.exchange_blocking(backend, &req, &req.uri)
            }
            Route::One(backend) => {
                if let Some(hook) = hook {
                    admit_blocking(hook.as_ref(), &mut req)?;
                }
                let start = tokio::time::Instant::now();
                let span = crate::trace::span(&req, backend.kind());
                let outcome = span.in_scope(|| policy.exchange_blocking(backend, &req, &req.uri));
                if let Some(hook) = hook {
                    after(hook.as_ref(), &req, start, &outcome);
                }
                crate::trace::ended(&span, start, &outcome);
                outcome
            }
            Route::Fleet(fleet) => {
                crate::backend::block_on(fleet.run(policy, hook.as_deref(), req))?
            }
        }
    }
}

/// A single backend's attempt with its hook around it, in its trace span.
async fn one_observed(
    policy: &Policy,
    backend: &Backend,
    hook: Option<&dyn Hook>,
    mut req: Request,
) -> Result<Response> {
    if let Some(hook) = hook {
        let mut before = Before {
            member: None,
            number: 1,
            request: &mut req,
        };
        hook.before(&mut before).await?;
    }
    let start = tokio::time::Instant::now();
    let span = crate::trace::span(&req, backend.kind());
    let outcome = policy
        .exchange(backend, &req, &req.uri)
        .instrument(span.clone())
        .await;
    if let Some(hook) = hook {
        after(hook, &req, start, &outcome);
    }
    crate::trace::ended(&span, start, &outcome);
    outcome
}

/// Runs `hook.before` for a blocking request, on the blocking bridge; when it admitted it.
fn admit_blocking(hook: &dyn Hook, req: &mut Request) -> Result<()> {
    let admitted = crate::backend::block_on(async {
        let mut before = Before {
            member: None,
            number: 1,
            request: req,
        };
        hook.before(&mut before).await
    });
    match admitted {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) | Err(e) => Err(e),
    }
}

fn after(hook: &dyn Hook, req: &Request, start: tokio::time::Instant, outcome: &Result<Response>) {
    hook.after(&After {
        request: req,
        member: None,
        number: 1,
        latency: start.elapsed(),
        outcome: outcome.as_ref(),
    });
}

impl FleetBuilder {
    /// Builds every member's backend and the client. Fails with `Builder` when there is no
    /// member or a base URL is invalid, and with whatever a backend refuses.
    pub fn build(self) -> Result<Client> {
        let fleet = self.build_fleet()?;
        let policy = Policy::new(&self.config)?;
        Ok(Client::with(
            Route::Fleet(Arc::new(fleet)),
            policy,
            self.hook,
        ))
    }

    /// Builds the fleet for blocking code: the same fleet, driven on the blocking bridge (hedges
    /// and timers need an event loop), with its own backends and pools.
    pub fn build_blocking(self) -> Result<crate::blocking::Client> {
        self.build().map(crate::blocking::Client::wrap)
    }
}

impl<'a> RequestBuilder<'a, Client> {
    /// Sends the request; resolves once the response head has arrived (see [`Response`]).
    pub fn send(self) -> impl Future<Output = Result<Response>> + Send + 'a {
        self.client.run(self.request)
    }
}

/// A request's future is `Send`: it can be spawned on a multi-threaded runtime.
#[allow(dead_code)]
fn assert_send(b: RequestBuilder<'_, Client>) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&b.send());
}
