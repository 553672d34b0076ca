//! [`RequestBuilder`]: builds a [`Request`] and sends it through the client it came from,
//! the same for the async and the blocking client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::{Body, Progress, Request, header_value};
use crate::error::{Error, Result};

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

    /// Sets every header of `headers`, each name's values replacing any already set for that
    /// name (reqwest's meaning); names not in `headers` are kept.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|req| {
            for name in headers.keys() {
                req.headers.remove(name);
            }
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

    /// Appends `pairs` to the URL's query, form-encoded: any `serde::Serialize` that is a
    /// sequence of pairs, a map or a struct of plain fields (`&[("symbol", "BTCUSDT")]`).
    /// Anything else is an [`ErrorKind::Builder`](crate::ErrorKind::Builder) error.
    pub fn query<T: serde::Serialize + ?Sized>(self, pairs: &T) -> Self {
        self.map(|req| {
            req.uri = crate::url::append_query(std::mem::take(&mut req.uri), pairs)?;
            Ok(())
        })
    }

    /// Sets the body: bytes, a string, a [`Body::file`], a [`Body::reader`] (blocking client)
    /// or a [`Body::stream`] / [`Body::async_reader`] (async client).
    pub fn body(self, body: impl Into<Body>) -> Self {
        self.map(|req| {
            req.body = body.into();
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

    /// Sets a form body (`application/x-www-form-urlencoded`) from any `serde::Serialize` that
    /// is a sequence of pairs, a map or a struct of plain fields; anything else is an
    /// [`ErrorKind::Builder`](crate::ErrorKind::Builder) error.
    pub fn form<T: serde::Serialize + ?Sized>(self, pairs: &T) -> Self {
        self.map(|req| {
            let body = serde_urlencoded::to_string(pairs)
                .map_err(|e| Error::builder("cannot encode the form").with_source(e))?;
            req.body = body.into();
            req.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            Ok(())
        })
    }

    /// Sets a `multipart/form-data` body and its `Content-Type` (with the form's boundary).
    #[cfg(feature = "multipart")]
    pub fn multipart(self, form: crate::multipart::Form) -> Self {
        self.map(|req| {
            let content_type = HeaderValue::from_str(&form.content_type())
                .map_err(|e| Error::builder("invalid multipart boundary").with_source(e))?;
            req.body = form.into_body()?;
            req.headers.insert(CONTENT_TYPE, content_type);
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
    /// progress bars on large downloads. `f` runs where the body is read, once per piece, so it
    /// should be quick. Defaults to no callback.
    pub fn on_progress(self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.map(|req| {
            req.progress = Some(Progress(Arc::new(f)));
            Ok(())
        })
    }

    /// Calls `f` as the request body is sent, with the bytes sent so far and the body's length
    /// if it is known. Defaults to no callback.
    pub fn on_upload_progress(self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.map(|req| {
            req.upload_progress = Some(Progress(Arc::new(f)));
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

    /// Follows at most `max` redirects for this request, overriding
    /// [`Config::max_redirects`](crate::Config::max_redirects); 0 returns a 3xx as the response.
    /// Defaults to the client's.
    pub fn max_redirects(self, max: u32) -> Self {
        self.map(|req| {
            req.max_redirects = Some(max);
            Ok(())
        })
    }

    /// Whether this request follows redirects: `false` returns a 3xx as the response (as
    /// `max_redirects(0)`), `true` follows the client's `max_redirects`. Defaults to `true`.
    pub fn follow_redirects(self, follow: bool) -> Self {
        self.map(|req| {
            req.max_redirects = (!follow).then_some(0);
            Ok(())
        })
    }

    /// Carries `value` with the request for a [`Hook`](crate::Hook) (see
    /// [`Request::extensions`]); never sent. Defaults to none.
    pub fn extension<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.map(|req| {
            req.extensions.insert(value);
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
