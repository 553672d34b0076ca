//! [`Request`] and [`RequestBuilder`]: what a client sends, built the same way for the async and
//! the blocking client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// A request body: bytes sent as they are. Cheap to clone (reference-counted).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Body(pub(crate) Bytes);

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body(Bytes::new())
    }

    /// The bytes of the body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length of the body in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body(b)
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body(b.into())
    }
}
impl From<String> for Body {
    fn from(s: String) -> Self {
        Body(s.into())
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body(Bytes::from_static(s.as_bytes()))
    }
}
impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body(Bytes::from_static(s))
    }
}

/// One HTTP request: method, URL, headers, body and an optional own deadline.
///
/// `Debug` never prints the values of `Authorization`, `Proxy-Authorization` or `Cookie`.
#[derive(Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Option<Duration>,
    /// Set by the client when the request is dispatched; transports must end by it.
    pub(crate) deadline: Option<Instant>,
    /// The client's default headers for this hop, set as the request goes on the wire (see
    /// [`Request::wire_headers`]). Shared, so a hop costs no copy of them.
    pub(crate) defaults: Option<Arc<Defaults>>,
    /// Called as the response body arrives (see [`RequestBuilder::on_progress`]).
    pub(crate) progress: Option<Progress>,
    /// When, before the deadline, the transport's deadline watch also wakes the task, ending
    /// nothing: a hedged fleet request's hedge delay (see
    /// [`Watch::nudging`](crate::deadline::Watch::nudging)). Transports that keep no such watch
    /// ignore it; the fleet sets it only for those that do.
    pub(crate) nudge: Option<crate::deadline::Nudge>,
}

/// A response-body progress callback: bytes received so far, and the declared size.
#[derive(Clone)]
pub(crate) struct Progress(Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl Progress {
    /// Reports `received` bytes of a body that declared `total` bytes, if it did.
    pub(crate) fn report(&self, received: u64, total: Option<u64>) {
        (self.0)(received, total)
    }
}

/// A client's default headers, shared by every request it sends.
#[derive(Debug)]
pub(crate) struct Defaults {
    /// Unique to this set of headers for the life of the process: a transport that keeps what it
    /// last sent (curl's handles) compares this instead of every header.
    pub id: u64,
    pub map: HeaderMap,
}

impl Defaults {
    pub(crate) fn new(map: HeaderMap) -> Arc<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Arc::new(Defaults {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            map,
        })
    }
}

impl Request {
    /// A request with no headers and no body. The URL is validated as [`RequestBuilder`] does.
    pub fn new(method: Method, url: &str) -> Result<Self> {
        let parsed = crate::url::parse(url)?;
        let mut req = Request::from_uri(method, parsed.uri);
        if let Some((u, p)) = parsed.credentials {
            req.headers
                .insert(AUTHORIZATION, crate::url::basic_auth_value(&u, &p));
        }
        Ok(req)
    }

    pub(crate) fn from_uri(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
            deadline: None,
            defaults: None,
            progress: None,
            nudge: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL (without credentials: those became an `Authorization` header).
    pub fn url(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, mutable.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// This request's own total deadline, overriding [`Config::timeout`](crate::Config::timeout).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The time left before the deadline, and the deadline itself (now + `fallback` when the
    /// request has not been dispatched by a client).
    pub(crate) fn deadline_or(&self, fallback: Duration) -> Instant {
        self.deadline.unwrap_or_else(|| Instant::now() + fallback)
    }

    /// A copy of this request to another URL (the URL itself is not copied), without a nudge.
    pub(crate) fn clone_with_uri(&self, uri: Uri) -> Request {
        Request {
            method: self.method.clone(),
            uri,
            headers: self.headers.clone(),
            body: self.body.clone(),
            timeout: self.timeout,
            deadline: self.deadline,
            defaults: self.defaults.clone(),
            progress: self.progress.clone(),
            nudge: None,
        }
    }

    /// The headers that go on the wire, in order: the request's own, then each default header
    /// it does not set itself.
    pub(crate) fn wire_headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let own = &self.headers;
        let defaults = self.defaults.as_deref().map(|d| &d.map);
        let check = !own.is_empty();
        own.iter().chain(
            defaults
                .into_iter()
                .flat_map(HeaderMap::iter)
                .filter(move |(name, _)| !check || !own.contains_key(*name)),
        )
    }

    /// True when `name` goes on the wire (see [`Request::wire_headers`]).
    pub(crate) fn has_wire_header(&self, name: &HeaderName) -> bool {
        self.headers.contains_key(name)
            || self
                .defaults
                .as_deref()
                .is_some_and(|d| d.map.contains_key(name))
    }

    /// The wire headers as one map (for clients that take an [`HeaderMap`]): the defaults' map
    /// cloned as a whole when the request sets none itself and `room` is 0.
    ///
    /// With `room` > 0 the map is built with room for that many more headers: hyper-util adds
    /// `Host` to every HTTP/1 request, and a full map (a clone is one) would then grow, copying
    /// itself, on every request (measured: ~400 instructions more than building it with room).
    pub(crate) fn wire_header_map(&self, room: usize) -> HeaderMap {
        let defaults = self.defaults.as_deref().map(|d| &d.map);
        if room == 0 {
            match defaults {
                None => return self.headers.clone(),
                Some(d) if self.headers.is_empty() => return d.clone(),
                Some(_) => {}
            }
        }
        let len = self.headers.len() + defaults.map_or(0, HeaderMap::len);
        let mut map = HeaderMap::with_capacity(len + room);
        for (name, value) in &self.headers {
            map.append(name.clone(), value.clone());
        }
        let check = !self.headers.is_empty();
        for (name, value) in defaults.into_iter().flatten() {
            if !check || !self.headers.contains_key(name) {
                map.append(name.clone(), value.clone());
            }
        }
        map
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &format_args!("{}", self.uri))
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `Debug` of a header map with secret values replaced by `***`.
pub(crate) struct RedactedHeaders<'a>(pub &'a HeaderMap);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.0 {
            if crate::config::is_secret_header(k.as_str()) || v.is_sensitive() {
                m.entry(&k.as_str(), &"***");
            } else {
                m.entry(&k.as_str(), &v);
            }
        }
        m.finish()
    }
}

/// Validates a header name given as text.
pub(crate) fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::try_from(name)
        .map_err(|e| Error::builder(format!("invalid header name {name:?}")).with_source(e))
}

/// Validates a header value given as text: CR, LF, NUL and other control characters but tab are
/// refused.
pub(crate) fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::try_from(value).map_err(|e| {
        Error::builder("invalid header value (control characters such as CR, LF or NUL)")
            .with_source(e)
    })
}

/// Checks every header of a request before it leaves: no CR, LF or NUL anywhere, whatever way
/// the value was built. Backends such as curl take raw header lines, so httpfleet checks itself.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<()> {
    for (name, value) in headers {
        if value
            .as_bytes()
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(Error::builder(format!(
                "header {name} has CR, LF or NUL in its value"
            )));
        }
    }
    Ok(())
}

/// Builds a [`Request`] and sends it through the client it came from.
///
/// `C` is the client ([`Client`](crate::Client) or [`blocking::Client`](crate::blocking::Client));
/// the builder is the same for both. The first invalid input is kept and returned by `send`, so
/// nothing is sent for a request that was built wrong.
#[must_use = "a request builder does nothing until it is sent"]
pub struct RequestBuilder<'a, C> {
    pub(crate) client: &'a C,
    pub(crate) request: Result<Request>,
}

impl<'a, C> RequestBuilder<'a, C> {
    pub(crate) fn new(client: &'a C, method: Result<Method>, url: &str) -> Self {
        let request = method.and_then(|m| Request::new(m, url));
        RequestBuilder { client, request }
    }

    fn map(mut self, f: impl FnOnce(&mut Request) -> Result<()>) -> Self {
        if let Ok(req) = &mut self.request {
            if let Err(e) = f(req) {
                self.request = Err(e);
            }
        }
        self
    }

    /// Adds a header (a value already set for the same name is kept; use
    /// [`RequestBuilder::header_replace`] to replace it). Names and values with CR, LF or NUL are
    /// refused with [`ErrorKind::Builder`](crate::ErrorKind::Builder).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.map(|req| {
            let (name, value) = typed_header(name, value)?;
            req.headers.append(name, value);
            Ok(())
        })
    }

    /// Sets a header, replacing any value of the same name.
    pub fn header_replace<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.map(|req| {
            let (name, value) = typed_header(name, value)?;
            req.headers.insert(name, value);
            Ok(())
        })
    }

    /// Adds every header of `headers`.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|req| {
            let mut last = None;
            for (name, value) in headers {
                if let Some(n) = name {
                    last = Some(n);
                }
                if let Some(n) = &last {
                    req.headers.append(n.clone(), value);
                }
            }
            Ok(())
        })
    }

    /// Appends `key=value` pairs (form-encoded) to the URL's query.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.map(|req| {
            req.uri = crate::url::append_query(std::mem::take(&mut req.uri), pairs)?;
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<Body>) -> Self {
        self.map(|req| {
            req.body = body.into().0;
            Ok(())
        })
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.map(|req| {
            let body = serde_json::to_vec(value)
                .map_err(|e| Error::builder("cannot serialize JSON body").with_source(e))?;
            req.body = body.into();
            req.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// Sets a form body (`application/x-www-form-urlencoded`).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.map(|req| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                ser.append_pair(k.as_ref(), v.as_ref());
            }
            req.body = ser.finish().into();
            req.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            Ok(())
        })
    }

    /// Sets `Authorization: Basic ...`.
    pub fn basic_auth(self, username: &str, password: &str) -> Self {
        self.map(|req| {
            req.headers.insert(
                AUTHORIZATION,
                crate::url::basic_auth_value(username, password),
            );
            Ok(())
        })
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.map(|req| {
            let mut v = header_value(&format!("Bearer {token}"))?;
            v.set_sensitive(true);
            req.headers.insert(AUTHORIZATION, v);
            Ok(())
        })
    }

    /// Calls `f` as the response body arrives, with the bytes received so far (as sent, before
    /// any decompression) and the size the response declared (`Content-Length`), if it did: for
    /// progress bars on large downloads. `f` runs on the thread that reads the body, once per
    /// chunk the client reads, so it should be quick. Defaults to no callback.
    pub fn on_progress(self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.map(|req| {
            req.progress = Some(Progress(Arc::new(f)));
            Ok(())
        })
    }

    /// Sets this request's total deadline (connect, headers, body, redirects), overriding
    /// [`Config::timeout`](crate::Config::timeout). Must be above zero; at most
    /// [`MAX_DURATION`](crate::MAX_DURATION).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|req| {
            if timeout.is_zero() {
                return Err(Error::builder("timeout must be above zero"));
            }
            req.timeout = Some(crate::config::clamp(timeout));
            Ok(())
        })
    }

    /// The request built so far, or the first error met.
    pub fn build(self) -> Result<Request> {
        self.request
    }
}

impl<C> fmt::Debug for RequestBuilder<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("request", &self.request)
            .finish()
    }
}

/// A header name and value converted and checked, or a `Builder` error.
fn typed_header<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue)>
where
    K: TryInto<HeaderName>,
    K::Error: Into<http::Error>,
    V: TryInto<HeaderValue>,
    V::Error: Into<http::Error>,
{
    let name = name
        .try_into()
        .map_err(|e| Error::builder("invalid header name").with_source(e.into()))?;
    let value = value.try_into().map_err(|e| {
        Error::builder(format!("invalid value for header {name}")).with_source(e.into())
    })?;
    Ok((name, value))
}

/// The request-starting methods shared by [`Client`](crate::Client) and
/// [`blocking::Client`](crate::blocking::Client): one definition for both surfaces.
macro_rules! request_verbs {
    ($client:ty) => {
        /// Starts a `GET` request.
        pub fn get(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::GET), url.as_ref())
        }

        /// Starts a `POST` request.
        pub fn post(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::POST), url.as_ref())
        }

        /// Starts a `PUT` request.
        pub fn put(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::PUT), url.as_ref())
        }

        /// Starts a `PATCH` request.
        pub fn patch(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::PATCH), url.as_ref())
        }

        /// Starts a `DELETE` request.
        pub fn delete(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::DELETE), url.as_ref())
        }

        /// Starts a `HEAD` request.
        pub fn head(&self, url: impl AsRef<str>) -> $crate::RequestBuilder<'_, $client> {
            $crate::RequestBuilder::new(self, Ok(http::Method::HEAD), url.as_ref())
        }

        /// Starts a request with any method (`Method` or text such as `"OPTIONS"`). An invalid
        /// method is a [`ErrorKind::Builder`]($crate::ErrorKind::Builder) error from `send`.
        pub fn request<M>(
            &self,
            method: M,
            url: impl AsRef<str>,
        ) -> $crate::RequestBuilder<'_, $client>
        where
            M: TryInto<http::Method>,
            M::Error: Into<http::Error>,
        {
            $crate::RequestBuilder::new(self, $crate::request::method(method), url.as_ref())
        }
    };
}
pub(crate) use request_verbs;

/// Parses a method given as text or as a [`Method`].
pub(crate) fn method<M>(m: M) -> Result<Method>
where
    M: TryInto<Method>,
    M::Error: Into<http::Error>,
{
    m.try_into()
        .map_err(|e| Error::builder("invalid HTTP method").with_source(e.into()))
}
