//! [`CookieJar`]: cookies kept across requests and redirects, on `cookie_store`'s rules.

use std::sync::{Arc, Mutex, MutexGuard};

use http::{HeaderMap, HeaderValue, Uri};

/// Cookies a server set, sent back to it on later requests: shared by every clone, and by
/// every client and fleet given the same jar ([`Client::with_cookie_jar`](crate::Client::with_cookie_jar)).
///
/// httpfleet stores each response's `Set-Cookie` lines and adds a `Cookie` header to each
/// request, redirects included, following `cookie_store` (RFC 6265): a cookie goes only to its
/// domain (a host-only cookie to its host alone) and path, a `Secure` one only over https, an
/// expired one never. A request that sets its own `Cookie` header sends that instead (until a
/// redirect leaves its origin). Without a public suffix list, a site may set a cookie for its
/// parent domain, as curl without libpsl allows. `SameSite` does not apply: each request of a
/// client is its own top-level request, so every cookie that matches is sent, as curl and
/// reqwest do. `Debug` never shows cookie values.
#[derive(Clone, Default)]
pub struct CookieJar(Arc<Mutex<cookie_store::CookieStore>>);

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.store().iter_unexpired().count();
        f.debug_struct("CookieJar")
            .field("cookies", &count)
            .finish()
    }
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `name=value` pairs a request to `url` would send, in the order they would go:
    /// longer paths first (RFC 6265), then by name. An invalid URL has none.
    pub fn cookies_for(&self, url: &str) -> Vec<(String, String)> {
        ::url::Url::parse(url).map_or_else(|_| Vec::new(), |url| self.pairs(&url))
    }

    fn pairs(&self, url: &::url::Url) -> Vec<(String, String)> {
        let store = self.store();
        let mut matching = store.matches(url);
        matching.sort_by(|a, b| {
            let path = |c: &cookie_store::Cookie<'_>| c.path().map_or(0, str::len);
            path(b).cmp(&path(a)).then_with(|| a.name().cmp(b.name()))
        });
        matching
            .into_iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect()
    }

    /// Stores a `Set-Cookie` line as if a response from `url` had carried it; `false` when it
    /// is invalid or not for that URL (another domain, a `Secure` one over http).
    pub fn set(&self, url: &str, set_cookie: &str) -> bool {
        ::url::Url::parse(url).is_ok_and(|url| self.store().parse(set_cookie, &url).is_ok())
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.store().clear();
    }

    /// The `Cookie` header of a request to `uri`, if any cookie matches.
    pub(crate) fn header_for(&self, uri: &Uri) -> Option<HeaderValue> {
        let url = ::url::Url::parse(&crate::url::to_text(uri)).ok()?;
        let mut line = String::new();
        for (name, value) in self.pairs(&url) {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(&name);
            line.push('=');
            line.push_str(&value);
        }
        HeaderValue::from_str(&line)
            .ok()
            .filter(|_| !line.is_empty())
    }

    /// Keeps the cookies a response from `uri` set; invalid ones are ignored, as browsers do.
    pub(crate) fn store_from(&self, uri: &Uri, headers: &HeaderMap) {
        let mut lines = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .peekable();
        if lines.peek().is_none() {
            return;
        }
        let Ok(url) = ::url::Url::parse(&crate::url::to_text(uri)) else {
            return;
        };
        let mut store = self.store();
        for line in lines {
            let _ = store.parse(line, &url);
        }
    }

    fn store(&self) -> MutexGuard<'_, cookie_store::CookieStore> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
