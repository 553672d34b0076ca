//! Each client used directly, the way its own documentation shows, for the overhead benchmarks:
//! the baseline httpfleet is measured against. For curl and ureq from async code, the idiomatic
//! direct use is a reused handle on tokio's blocking pool.
//!
//! Each client sends what it sends by default and nothing more; httpfleet is measured sending
//! the same wire ([`same_wire`]: no headers of its own, the client's own defaults as default
//! headers), so the difference measured is the abstraction alone.

use std::time::Duration;

use bytes::Bytes;

use crate::BackendKind;

/// The request of a benchmark round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /small`: a 13-byte body.
    Small,
    /// `GET /json1k`: a 1 KiB JSON body.
    Json1k,
    /// `GET /bytes1m`: a 1 MiB body.
    Bytes1m,
    /// `POST /echo-len` with a 1 KiB body.
    Post1k,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 4] = [Route::Small, Route::Json1k, Route::Bytes1m, Route::Post1k];

    /// The path on the bench server.
    pub fn path(self) -> &'static str {
        match self {
            Route::Small => "/small",
            Route::Json1k => "/json1k",
            Route::Bytes1m => "/bytes1m",
            Route::Post1k => "/echo-len",
        }
    }

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Route::Small => "get-13B",
            Route::Json1k => "get-1KiB-json",
            Route::Bytes1m => "get-1MiB",
            Route::Post1k => "post-1KiB",
        }
    }

    /// The request body (empty for GET).
    pub fn body(self) -> Bytes {
        match self {
            Route::Post1k => Bytes::from_static(&[b'p'; 1024]),
            _ => Bytes::new(),
        }
    }

    /// Parses a route name.
    pub fn parse(s: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == s)
    }

    /// This route's request through an httpfleet client; returns the body length.
    pub async fn send(self, client: &crate::Client, url: &str) -> usize {
        let b = if self == Route::Post1k {
            client.post(url).body(self.body())
        } else {
            client.get(url)
        };
        let resp = b.send().await.expect("httpfleet request");
        resp.bytes().await.expect("httpfleet body").len()
    }

    /// This route's request through a blocking httpfleet client; returns the body length.
    pub fn send_blocking(self, client: &crate::blocking::Client, url: &str) -> usize {
        let b = if self == Route::Post1k {
            client.post(url).body(self.body())
        } else {
            client.get(url)
        };
        let resp = b.send().expect("httpfleet request");
        resp.bytes().expect("httpfleet body").len()
    }
}

/// The headers each client adds to a bare request by its own defaults: hyper none, reqwest
/// and curl `Accept: */*`, ureq its `User-Agent` and `Accept: */*` (ureq's version as locked
/// in Cargo.lock; a different one changes a few bytes, not the work).
pub fn own_headers(kind: BackendKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        BackendKind::Reqwest | BackendKind::Curl => &[("accept", "*/*")],
        BackendKind::Ureq => &[("user-agent", "ureq/3.5.2"), ("accept", "*/*")],
        _ => &[],
    }
}

/// `config` sending the wire the bare client of `kind` sends: httpfleet's own headers off,
/// the client's defaults ([`own_headers`]) as default headers.
pub fn same_wire(kind: BackendKind, config: crate::Config) -> crate::Config {
    own_headers(kind)
        .iter()
        .fold(config.auto_headers(false), |c, (name, value)| {
            c.default_header(*name, *value)
        })
}

/// One client used directly.
pub struct Direct {
    imp: Imp,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

#[allow(clippy::large_enum_variant)] // one value per benchmark, never moved on the hot path
enum Imp {
    #[cfg(feature = "hyper")]
    Hyper {
        client: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<Bytes>,
        >,
        timeout: Option<Duration>,
    },
    #[cfg(feature = "reqwest")]
    Reqwest(reqwest::Client),
    #[cfg(feature = "curl")]
    Curl(
        std::sync::Arc<std::sync::Mutex<Vec<curl::easy::Easy2<Collect>>>>,
        Option<Duration>,
    ),
    #[cfg(feature = "ureq")]
    Ureq(ureq::Agent),
}

/// A curl write handler that collects the body.
#[cfg(feature = "curl")]
#[derive(Debug, Default)]
pub(super) struct Collect(Vec<u8>);

#[cfg(feature = "curl")]
impl curl::easy::Handler for Collect {
    fn write(&mut self, data: &[u8]) -> Result<usize, curl::easy::WriteError> {
        self.0.extend_from_slice(data);
        Ok(data.len())
    }
}

impl Direct {
    /// The client of `kind` as its docs show it, with the total `timeout` set its own way when
    /// given (`timeout`, `timeout_global`, `CURLOPT_TIMEOUT`, `tokio::time::timeout`).
    pub fn new(kind: BackendKind, timeout: Option<Duration>) -> Option<Direct> {
        let imp = match kind {
            #[cfg(feature = "hyper")]
            BackendKind::Hyper => {
                let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                http.set_nodelay(true);
                Imp::Hyper {
                    client: hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(http),
                    timeout,
                }
            }
            #[cfg(feature = "reqwest")]
            BackendKind::Reqwest => {
                let mut b = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .no_proxy()
                    .tls_backend_preconfigured(
                        crate::tls::client_config(&crate::TlsConfig::default(), &[]).ok()?,
                    );
                if let Some(t) = timeout {
                    b = b.timeout(t);
                }
                Imp::Reqwest(b.build().ok()?)
            }
            #[cfg(feature = "curl")]
            BackendKind::Curl => Imp::Curl(Default::default(), timeout),
            #[cfg(feature = "ureq")]
            BackendKind::Ureq => Imp::Ureq(
                ureq::Agent::config_builder()
                    .proxy(None)
                    .timeout_global(timeout)
                    .build()
                    .new_agent(),
            ),
            _ => return None,
        };
        Some(Direct { imp })
    }

    /// One request from async code; returns the body length.
    pub async fn send(&self, url: &str, route: Route) -> usize {
        match &self.imp {
            #[cfg(feature = "hyper")]
            Imp::Hyper { client, timeout } => {
                use http_body_util::BodyExt;
                let method = if route == Route::Post1k {
                    "POST"
                } else {
                    "GET"
                };
                let req = http::Request::builder()
                    .method(method)
                    .uri(url)
                    .body(http_body_util::Full::new(route.body()))
                    .expect("valid request");
                let exchange = async {
                    let resp = client.request(req).await.expect("hyper request");
                    resp.into_body()
                        .collect()
                        .await
                        .expect("hyper body")
                        .to_bytes()
                        .len()
                };
                match timeout {
                    Some(t) => tokio::time::timeout(*t, exchange).await.expect("in time"),
                    None => exchange.await,
                }
            }
            #[cfg(feature = "reqwest")]
            Imp::Reqwest(client) => {
                let b = if route == Route::Post1k {
                    client.post(url).body(route.body())
                } else {
                    client.get(url)
                };
                let resp = b.send().await.expect("reqwest request");
                resp.bytes().await.expect("reqwest body").len()
            }
            #[cfg(feature = "curl")]
            Imp::Curl(pool, timeout) => {
                let (pool, timeout, url) = (pool.clone(), *timeout, url.to_owned());
                tokio::task::spawn_blocking(move || {
                    let mut easy = pool.lock().expect("pool").pop().unwrap_or_default_easy();
                    let n = curl_perform(&mut easy, &url, route, timeout);
                    pool.lock().expect("pool").push(easy);
                    n
                })
                .await
                .expect("blocking task")
            }
            #[cfg(feature = "ureq")]
            Imp::Ureq(agent) => {
                let (agent, url) = (agent.clone(), url.to_owned());
                tokio::task::spawn_blocking(move || ureq_perform(&agent, &url, route))
                    .await
                    .expect("blocking task")
            }
        }
    }

    /// One request from blocking code; returns the body length. hyper and reqwest have no
    /// blocking API: they run on `rt` (a current-thread runtime), as a user would.
    pub fn send_blocking(&self, url: &str, route: Route, rt: &tokio::runtime::Runtime) -> usize {
        match &self.imp {
            #[cfg(feature = "curl")]
            Imp::Curl(pool, timeout) => {
                let mut easy = pool.lock().expect("pool").pop().unwrap_or_default_easy();
                let n = curl_perform(&mut easy, url, route, *timeout);
                pool.lock().expect("pool").push(easy);
                n
            }
            #[cfg(feature = "ureq")]
            Imp::Ureq(agent) => ureq_perform(agent, url, route),
            #[allow(unreachable_patterns)]
            _ => rt.block_on(self.send(url, route)),
        }
    }
}

impl Direct {
    /// Reads `url`'s body to its end as it streams, from async code, as the client's docs show
    /// (hyper's frames, reqwest's chunks; curl's write callback and ureq's reader on tokio's
    /// blocking pool); its length.
    pub async fn stream(&self, url: &str) -> u64 {
        match &self.imp {
            #[cfg(feature = "hyper")]
            Imp::Hyper { client, .. } => {
                use http_body_util::BodyExt;
                let req = http::Request::get(url)
                    .body(http_body_util::Full::new(Bytes::new()))
                    .expect("valid request");
                let mut body = client
                    .request(req)
                    .await
                    .expect("hyper request")
                    .into_body();
                let mut n = 0;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.expect("hyper body").into_data() {
                        n += data.len() as u64;
                    }
                }
                n
            }
            #[cfg(feature = "reqwest")]
            Imp::Reqwest(client) => {
                let mut resp = client.get(url).send().await.expect("reqwest request");
                let mut n = 0;
                while let Some(chunk) = resp.chunk().await.expect("reqwest body") {
                    n += chunk.len() as u64;
                }
                n
            }
            #[allow(unreachable_patterns)]
            _ => {
                let (this, url) = (self.clone_blocking(), url.to_owned());
                tokio::task::spawn_blocking(move || this.stream_thread(&url))
                    .await
                    .expect("blocking task")
            }
        }
    }

    /// [`Direct::stream`] from blocking code (hyper and reqwest on `rt`).
    pub fn stream_blocking(&self, url: &str, rt: &tokio::runtime::Runtime) -> u64 {
        match &self.imp {
            #[cfg(feature = "curl")]
            Imp::Curl(..) => self.stream_thread(url),
            #[cfg(feature = "ureq")]
            Imp::Ureq(_) => self.stream_thread(url),
            #[allow(unreachable_patterns)]
            _ => rt.block_on(self.stream(url)),
        }
    }

    /// A second handle on a blocking client (its agent), for tokio's blocking pool.
    fn clone_blocking(&self) -> Direct {
        let imp = match &self.imp {
            #[cfg(feature = "curl")]
            Imp::Curl(pool, timeout) => Imp::Curl(pool.clone(), *timeout),
            #[cfg(feature = "ureq")]
            Imp::Ureq(agent) => Imp::Ureq(agent.clone()),
            #[allow(unreachable_patterns)]
            _ => unreachable!("hyper and reqwest read from async code"),
        };
        Direct { imp }
    }

    /// A streaming read of curl or ureq on this thread.
    fn stream_thread(&self, url: &str) -> u64 {
        match &self.imp {
            #[cfg(feature = "curl")]
            Imp::Curl(..) => {
                let mut easy = curl::easy::Easy2::new(Count(0));
                easy.url(url).expect("curl url");
                easy.perform().expect("curl perform");
                easy.get_ref().0
            }
            #[cfg(feature = "ureq")]
            Imp::Ureq(agent) => {
                use std::io::Read;
                let mut resp = agent.get(url).call().expect("ureq request");
                let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0;
                loop {
                    match reader.read(&mut buf).expect("ureq body") {
                        0 => return n,
                        k => n += k as u64,
                    }
                }
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("hyper and reqwest read from async code"),
        }
    }
}

/// A curl write handler that counts the body and keeps none of it.
#[cfg(feature = "curl")]
struct Count(u64);

#[cfg(feature = "curl")]
impl curl::easy::Handler for Count {
    fn write(&mut self, data: &[u8]) -> Result<usize, curl::easy::WriteError> {
        self.0 += data.len() as u64;
        Ok(data.len())
    }
}

#[cfg(feature = "curl")]
trait OrDefaultEasy {
    fn unwrap_or_default_easy(self) -> curl::easy::Easy2<Collect>;
}

#[cfg(feature = "curl")]
impl OrDefaultEasy for Option<curl::easy::Easy2<Collect>> {
    fn unwrap_or_default_easy(self) -> curl::easy::Easy2<Collect> {
        self.unwrap_or_else(|| {
            let mut e = curl::easy::Easy2::new(Collect::default());
            e.tcp_nodelay(true).expect("curl option");
            e.proxy("").expect("curl option");
            e
        })
    }
}

#[cfg(feature = "curl")]
fn curl_perform(
    easy: &mut curl::easy::Easy2<Collect>,
    url: &str,
    route: Route,
    timeout: Option<Duration>,
) -> usize {
    easy.get_mut().0.clear();
    easy.url(url).expect("curl url");
    if let Some(t) = timeout {
        easy.timeout(t).expect("curl timeout");
    }
    let mut list = curl::easy::List::new();
    if route == Route::Post1k {
        // httpfleet sends no content type of its own, nor `Expect`: neither does this.
        list.append("content-type:").expect("header");
        list.append("expect:").expect("header");
        easy.post(true).expect("curl post");
        easy.post_fields_copy(&route.body()).expect("curl body");
    } else {
        easy.get(true).expect("curl get");
    }
    easy.http_headers(list).expect("curl headers");
    easy.perform().expect("curl perform");
    easy.get_ref().0.len()
}

#[cfg(feature = "ureq")]
fn ureq_perform(agent: &ureq::Agent, url: &str, route: Route) -> usize {
    use std::io::Read;
    let mut resp = if route == Route::Post1k {
        agent.post(url).send(&route.body()[..])
    } else {
        agent.get(url).call()
    }
    .expect("ureq request");
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .expect("ureq body");
    body.len()
}
