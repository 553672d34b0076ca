//! [`Client`]: what users hold. It owns one backend and the policy that must mean the same on
//! every backend: default headers, validation before any I/O, the total deadline, redirects and
//! decompression.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderMap;

use crate::backend::{Backend, BackendKind};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::fleet::{Fleet, FleetBuilder, Member, MemberStats, Resume, Start, Strategy};
use crate::redirect::{Next, Redirects};
use crate::request::{Defaults, Request, RequestBuilder, check_headers};
use crate::response::Response;

/// The request policy of a client, resolved once from [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    timeout: Duration,
    max_redirects: u32,
    allow_insecure_redirects: bool,
    decompress: bool,
    max_response_bytes: u64,
    /// Default headers, and the same without credentials for hops after a redirect to another
    /// origin.
    default_headers: Arc<Defaults>,
    cross_origin_headers: Arc<Defaults>,
    proxied: bool,
}

impl Policy {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let config = &config.checked()?;
        let headers = config.header_map()?;
        let mut cross = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            if !crate::config::is_secret_header(name.as_str()) {
                cross.append(name.clone(), value.clone());
            }
        }
        Ok(Policy {
            timeout: config.timeout,
            max_redirects: config.max_redirects,
            allow_insecure_redirects: config.allow_insecure_redirects,
            decompress: config.decompress,
            max_response_bytes: config.max_response_bytes,
            default_headers: Defaults::new(headers),
            cross_origin_headers: Defaults::new(cross),
            proxied: config.proxy_url()?.is_some(),
        })
    }

    /// Validates the request, sets its deadline and its first hop's default headers. Nothing
    /// has been sent when this fails.
    pub(crate) fn prepare(&self, req: &mut Request) -> Result<()> {
        check_headers(&req.headers).map_err(|e| e.with_url(&req.uri))?;
        req.deadline = Some(tokio::time::Instant::now() + self.timeout_of(req));
        self.wire_headers(req, false);
        Ok(())
    }

    /// A request's total timeout: its own, or the client's.
    pub(crate) fn timeout_of(&self, req: &Request) -> Duration {
        req.timeout.unwrap_or(self.timeout)
    }

    /// Attaches the default headers to a request as it goes on the wire (each transport sends
    /// those the request does not set itself). They are attached per hop, by reference, rather
    /// than merged into the request: its headers stay the caller's own, and a hop costs no copy
    /// of them. After a redirect to another origin, default credentials (`Authorization`,
    /// `Cookie`, `Proxy-Authorization`) are left out.
    fn wire_headers(&self, req: &mut Request, crossed_origin: bool) {
        let defaults = if crossed_origin {
            &self.cross_origin_headers
        } else {
            &self.default_headers
        };
        req.defaults = (!defaults.map.is_empty()).then(|| defaults.clone());
    }

    fn redirects(&self, req: &Request) -> Result<Redirects> {
        if req.uri.scheme().is_none() {
            return Err(crate::url::needs_base_url());
        }
        Ok(Redirects::new(
            self.max_redirects,
            self.allow_insecure_redirects,
        ))
    }

    /// One exchange through `backend` for a prepared request (owned, or borrowed): redirects
    /// followed, the final response checked and decoded, and the outcome handed with the request
    /// to `end`. The request stays as the caller built it: a redirect copies it once and
    /// rewrites the copy. So a fleet's first attempt is this same future, its bookkeeping in
    /// `end` ([`Settle`]), and a failed attempt gives the caller's request back for the next.
    ///
    /// Not an `async fn`: an `async fn` moves its arguments into its body's own variables, and
    /// its future then holds the request twice (rust-lang/rust#62958). The `async move` block
    /// uses the request where it was captured.
    #[allow(clippy::manual_async_fn)] // an `async fn` would hold the request twice: see above
    pub(crate) fn exchange<'s, Q, S>(
        &'s self,
        backend: &'s Backend,
        req: Q,
        end: S,
    ) -> impl Future<Output = S::Output> + Send + 's
    where
        Q: std::borrow::Borrow<Request> + Send + 's,
        S: Settle<Q> + Send + 's,
        S::Then: Send + 's,
    {
        async move {
            let outcome = 'exchange: {
                let first: &Request = req.borrow();
                let mut hops = match self.redirects(first) {
                    Ok(hops) => hops,
                    Err(e) => break 'exchange Err(e),
                };
                let mut copy: Option<Box<Request>> = None;
                loop {
                    let outcome = match copy.as_deref_mut() {
                        None => crate::backend::send_dispatched!(backend, first),
                        Some(cur) => {
                            self.wire_headers(cur, hops.crossed_origin());
                            crate::backend::send_dispatched!(backend, &*cur)
                        }
                    };
                    if copy.is_none() && matches!(&outcome, Ok(r) if r.status.is_redirection()) {
                        copy = Some(Box::new(first.clone()));
                    }
                    let next = match copy.as_deref_mut() {
                        None => hops.after_final(first, outcome),
                        Some(cur) => hops.after(cur, outcome),
                    };
                    match next {
                        Ok(Next::Done(resp)) => {
                            // Only the decoding future (boxed) is kept across its await.
                            let decoding = match self.finish(resp) {
                                Ok(Finished::Done(resp)) => break 'exchange Ok(resp),
                                Ok(Finished::Decode(resp, coding)) => {
                                    self.decode(resp, coding, first.deadline)
                                }
                                Err(e) => break 'exchange Err(e),
                            };
                            break 'exchange decoding.await;
                        }
                        Ok(Next::Again) => {}
                        Err(e) => break 'exchange Err(e),
                    }
                }
            };
            let then = match end.settle(outcome, req) {
                Settled::Done(output) => return output,
                Settled::Then(then) => then,
            };
            then.await
        }
    }

    /// The blocking twin of [`Policy::exchange`].
    pub(crate) fn exchange_blocking(
        &self,
        backend: &Backend,
        mut req: Request,
    ) -> Result<Response> {
        use crate::backend::BlockingTransport;
        let mut hops = self.redirects(&req)?;
        loop {
            let outcome = backend.send_blocking(&req);
            match hops.after(&mut req, outcome)? {
                Next::Done(resp) => {
                    return match self.finish(resp)? {
                        Finished::Done(resp) => Ok(resp),
                        Finished::Decode(resp, coding) => crate::decode::decode(
                            resp,
                            coding,
                            self.max_response_bytes,
                            req.deadline,
                        ),
                    };
                }
                Next::Again => self.wire_headers(&mut req, hops.crossed_origin()),
            }
        }
    }

    /// Decodes `resp`'s body from async code, by `deadline`. Boxed: only a compressed body
    /// pays for the decoder's state, not every request's future.
    fn decode(
        &self,
        resp: Response,
        coding: crate::decode::Coding,
        deadline: Option<tokio::time::Instant>,
    ) -> Pin<Box<dyn Future<Output = Result<Response>> + Send>> {
        Box::pin(crate::decode::decode_async(
            resp,
            coding,
            self.max_response_bytes,
            deadline,
        ))
    }

    /// Checks the final response: what is left to do with it.
    fn finish(&self, resp: Response) -> Result<Finished> {
        if self.proxied && resp.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            // Every backend reports a refused CONNECT as an error; a plain-http request gets the
            // proxy's 407 as a response. Both mean the same: the proxy refused the credentials.
            return Err(Error::new(ErrorKind::Proxy)
                .with_detail("proxy authentication required (407)")
                .with_backend(resp.backend)
                .with_url(&resp.url));
        }
        match crate::decode::coding(&resp) {
            Some(coding) if self.decompress => Ok(Finished::Decode(resp, coding)),
            _ => Ok(Finished::Done(resp)),
        }
    }
}

/// A final response, checked ([`Policy::finish`]): as it is, or with its body to decode.
enum Finished {
    Done(Response),
    Decode(Response, crate::decode::Coding),
}

/// What an exchange ([`Policy::exchange`]) does with its outcome and the request it sent.
pub(crate) trait Settle<Q> {
    /// What the exchange's future yields.
    type Output;

    /// What goes on from the exchange's end when settling does not end it ([`Never`] where it
    /// always does).
    type Then: Future<Output = Self::Output>;

    /// Ends the exchange: `outcome` is the final response or the error, `req` the request as
    /// the caller built it.
    fn settle(self, outcome: Result<Response>, req: Q) -> Settled<Self::Output, Self::Then>;
}

/// How an exchange's end settles ([`Settle::settle`]): its output, or what goes on from it.
pub(crate) enum Settled<O, T> {
    Done(O),
    Then(T),
}

/// The [`Settle::Then`] of an exchange whose end always settles it: no value, so that
/// [`Settled`] is its output alone and the exchange's future has nothing more to hold.
pub(crate) struct Never<O>(
    std::convert::Infallible,
    std::marker::PhantomData<fn() -> O>,
);

impl<O> Future for Never<O> {
    type Output = O;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<O> {
        match self.0 {}
    }
}

/// The outcome as it is (a single backend's request, or a fleet attempt judged by its caller).
pub(crate) struct Plain;

impl<Q> Settle<Q> for Plain {
    type Output = Result<Response>;
    type Then = Never<Result<Response>>;

    #[inline(always)]
    fn settle(self, outcome: Result<Response>, _: Q) -> Settled<Result<Response>, Self::Then> {
        Settled::Done(outcome)
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
    route: Route,
    policy: Policy,
}

/// Where requests go: one backend (the lean path), or a fleet.
enum Route {
    One(Backend),
    Fleet(Box<Fleet>),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Client");
        match &self.inner.route {
            Route::One(b) => d.field("backend", &b.kind()),
            Route::Fleet(fleet) => d.field("fleet", fleet),
        };
        d.field("policy", &self.inner.policy).finish()
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
                route: Route::One(backend),
                policy: Policy::new(config)?,
            }),
        })
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

    pub(crate) fn from_fleet(fleet: Fleet, policy: Policy) -> Self {
        Client {
            inner: Arc::new(Inner {
                route: Route::Fleet(Box::new(fleet)),
                policy,
            }),
        }
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

    /// Sends a built request: default headers, the deadline, redirects and decoding applied.
    pub async fn execute(&self, req: Request) -> Result<Response> {
        self.run(Ok(req)).await
    }

    /// [`Client::execute`] for a request that may have failed to build: the builder's `send`
    /// returns this future itself. Not an `async fn`: validation runs at once and the exchange's
    /// own future is returned as it is, so no wrapper stores the request a second time or copies
    /// the whole future once more on each request.
    fn run(
        &self,
        req: Result<Request>,
    ) -> Run<
        impl Future<Output = Result<Response>> + Send + '_,
        impl Future<Output = Result<Response>> + Send + '_,
        impl Future<Output = Result<Response>> + Send + '_,
    > {
        let policy = &self.inner.policy;
        let mut req = match req {
            Ok(req) => req,
            Err(e) => {
                return Run::Done {
                    result: Some(Err(e)),
                };
            }
        };
        if let Err(e) = policy.prepare(&mut req) {
            return Run::Done {
                result: Some(Err(e)),
            };
        }
        match &self.inner.route {
            Route::One(backend) => Run::One {
                fut: policy.exchange(backend, req, Plain),
            },
            // The first attempt of a fleet request runs here, sending the caller's request
            // itself, with no allocation: the single-backend exchange with the attempt's
            // bookkeeping inside it, polled as a single backend's is. A hedged one polls its
            // hedge timer beside it, and its hedges start, boxed, only when the timer fires or
            // it fails.
            // The rest of the fleet's state machine (later attempts, backoff) is several times
            // that size and starts, boxed, only after a failure: every request's future stays
            // small.
            Route::Fleet(fleet) => match fleet.start(policy, &mut req) {
                Start::Inline { first, backend } => Run::FleetFirst {
                    fut: first.exchange_inline(backend, req, Resume::run),
                },
                Start::Hedged {
                    first,
                    backend,
                    timer,
                } => Run::FleetHedged {
                    fut: first.exchange_hedged(backend, req, timer),
                },
                Start::Failed(e) => Run::Done {
                    result: Some(Err(e)),
                },
            },
        }
    }

    /// The blocking twin of [`Client::execute`], used by [`blocking::Client`](crate::blocking::Client).
    /// A fleet runs its async state machine on the blocking bridge (hedges need concurrency).
    pub(crate) fn execute_blocking(&self, mut req: Request) -> Result<Response> {
        let policy = &self.inner.policy;
        policy.prepare(&mut req)?;
        match &self.inner.route {
            Route::One(backend) => policy.exchange_blocking(backend, req),
            Route::Fleet(fleet) => crate::backend::block_on(fleet.execute(policy, req))?,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Client::run`]: a request that failed before any I/O, one exchange, a
    /// fleet request's first attempt (which goes on with the rest of the fleet's state
    /// machine, boxed, inside its own future if it fails), or a hedged one (the same, raced
    /// against its hedge timer). Each is polled as it is: no wrapper state.
    #[project = RunProj]
    pub(crate) enum Run<O, F, H> {
        Done { result: Option<Result<Response>> },
        One { #[pin] fut: O },
        FleetFirst { #[pin] fut: F },
        FleetHedged { #[pin] fut: H },
    }
}

impl<O, F, H> Future for Run<O, F, H>
where
    O: Future<Output = Result<Response>>,
    F: Future<Output = Result<Response>>,
    H: Future<Output = Result<Response>>,
{
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RunProj::Done { result } => {
                Poll::Ready(result.take().expect("Run polled after completion"))
            }
            RunProj::One { fut } => fut.poll(cx),
            // Its bookkeeping settles inside it, and a failure goes on inside it too.
            RunProj::FleetFirst { fut } => fut.poll(cx),
            RunProj::FleetHedged { fut } => poll_apart(fut, cx),
        }
    }
}

/// Polls `fut` in a function of its own: a hedged request's future, whose poll would make
/// [`Run`]'s own, which every request runs, larger.
#[inline(never)]
fn poll_apart<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    fut.poll(cx)
}

impl<'a> RequestBuilder<'a, Client> {
    /// Sends the request and buffers the response.
    pub fn send(self) -> impl std::future::Future<Output = Result<Response>> + Send + 'a {
        self.client.run(self.request)
    }
}

#[cfg(test)]
mod tests {
    /// A runtime to build clients in (backends spawn their pools' tasks on it).
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Every await moves the request future; a future that grew (say, the fleet's hedge slots
    /// inlined into every request) costs kilobytes of copying per request on the hot path.
    #[test]
    fn single_backend_request_future_stays_small() {
        let rt = runtime();
        let _guard = rt.enter();
        for kind in crate::BackendKind::enabled() {
            let c = super::Client::from_config(&crate::Config::default().backend(kind)).unwrap();
            let fut = c.get("http://127.0.0.1:1/").send();
            let size = std::mem::size_of_val(&fut);
            assert!(size <= 2048, "{kind}: the request future is {size} bytes");
        }
    }

    /// A fleet request's future is the single-backend exchange with the fleet's first attempt
    /// inline (a hedged one with its hedge timer beside it): it may not grow every request's
    /// future by more than that.
    #[cfg(feature = "hyper")]
    #[test]
    fn fleet_and_single_request_futures_stay_within_256_bytes_of_the_exchange() {
        use crate::fleet::{First, Start};
        let rt = runtime();
        let _guard = rt.enter();
        let config = crate::Config::default().backend(crate::BackendKind::Hyper);
        let single = super::Client::from_config(&config).unwrap();
        let url = "http://127.0.0.1:1/";
        let single_size = std::mem::size_of_val(&single.get(url).send());
        let req = || crate::Request::new(http::Method::GET, url).unwrap();
        let exchange = |c: &super::Client| {
            let super::Route::One(b) = &c.inner.route else {
                unreachable!()
            };
            std::mem::size_of_val(&c.inner.policy.exchange(b, req(), super::Plain))
        };
        let bare = exchange(&single);
        for strategy in [
            crate::Strategy::Failover,
            crate::Strategy::hedged(std::time::Duration::from_millis(5)),
        ] {
            let kinds = [crate::BackendKind::Hyper, crate::BackendKind::Hyper];
            let fleet = super::Client::fleet(&config, kinds, strategy.clone()).unwrap();
            let super::Route::Fleet(f) = &fleet.inner.route else {
                unreachable!()
            };
            let mut r = req();
            fleet.inner.policy.prepare(&mut r).unwrap();
            let size =
                match f.start(&fleet.inner.policy, &mut r) {
                    // The exchange, the first attempt's bookkeeping inside it.
                    Start::Inline { first, backend } => std::mem::size_of_val(
                        &first.exchange_inline(backend, r, crate::fleet::Resume::run),
                    ),
                    // The same, borrowing the request, raced against its hedge timer.
                    Start::Hedged {
                        first,
                        backend,
                        timer,
                    } => std::mem::size_of_val(&first.exchange_hedged(backend, r, timer)),
                    Start::Failed(e) => panic!("{e}"),
                };
            // The first attempt's bookkeeping (`First`), and for a hedged request its hedge
            // timer, kept inline rather than allocated per request (measured: ~650 fewer
            // instructions per hedged request; every request's future grew ~100 bytes, which
            // moved no count beyond the noise of ±150).
            let first = std::mem::size_of::<First>();
            assert!(
                size <= bare + 256,
                "{strategy:?}: {size} bytes, the exchange {bare} and a first attempt {first}"
            );
        }
        // Every request's future holds the largest of these: the fleet's may not make a single
        // backend's request future much larger than its exchange.
        assert!(
            single_size <= bare + 256,
            "a single backend's request future is {single_size} bytes, its exchange {bare}"
        );
    }
}
