//! [`Member`]: one member of a fleet (a backend and an optional base URL), and how the fleet
//! holds it ([`Slot`]): its base URL split for rebasing, its name, its breaker, latency
//! estimate and counters.

use std::sync::Arc;

use http::Uri;
use http::uri::PathAndQuery;

use super::breaker::Breaker;
use super::latency::PeakEwma;
use super::stats::Counters;
use crate::backend::{Backend, BackendKind};
use crate::error::{Error, Result};

/// One member of a fleet: a backend (built from the fleet's config, or given) and an optional
/// base URL that replaces the scheme, host and port of every request it serves.
#[derive(Debug, Clone)]
pub struct Member {
    pub(super) backend: MemberBackend,
    pub(super) base_url: Option<String>,
    pub(super) name: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) enum MemberBackend {
    Kind(BackendKind),
    Built(Backend),
}

impl Member {
    /// A member served by a backend of `kind`, built from the fleet's config.
    pub fn new(kind: BackendKind) -> Self {
        Member {
            backend: MemberBackend::Kind(kind),
            base_url: None,
            name: None,
        }
    }

    /// A member served by an already built backend.
    pub fn with_backend(backend: Backend) -> Self {
        Member {
            backend: MemberBackend::Built(backend),
            base_url: None,
            name: None,
        }
    }

    /// Sends this member's requests to `url` (`https://api1.example.com`, optionally with a path
    /// prefix): the request's path and query are kept, its scheme, host and port replaced.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The name shown in stats, responses, errors and traces. Defaults to `backend` or
    /// `backend@host`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<BackendKind> for Member {
    fn from(kind: BackendKind) -> Self {
        Member::new(kind)
    }
}

impl From<Backend> for Member {
    fn from(backend: Backend) -> Self {
        Member::with_backend(backend)
    }
}

/// A member's base URL, split for rebasing.
#[derive(Debug)]
pub(super) struct Base {
    scheme: http::uri::Scheme,
    pub(super) authority: http::uri::Authority,
    /// Path prefix without a trailing `/` (empty for none).
    prefix: String,
}

impl Base {
    pub(super) fn parse(raw: &str) -> Result<Self> {
        let parsed = crate::url::parse(raw)?;
        if parsed.uri.scheme().is_none() {
            return Err(Error::invalid_url(format!(
                "a member's base URL must be absolute (http:// or https://): {:?}",
                crate::url::redact_str(raw)
            )));
        }
        if parsed.credentials.is_some() {
            return Err(Error::builder(
                "a member's base URL cannot carry credentials: use Config::basic_auth",
            ));
        }
        let parts = parsed.uri.into_parts();
        let prefix = parts
            .path_and_query
            .as_ref()
            .map(|pq| pq.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        match (parts.scheme, parts.authority) {
            (Some(scheme), Some(authority)) => Ok(Base {
                scheme,
                authority,
                prefix,
            }),
            _ => Err(Error::invalid_url(format!(
                "invalid base URL {:?}",
                crate::url::redact_str(raw)
            ))),
        }
    }

    /// `uri`'s path and query on this base (the base's path prefix before them).
    pub(super) fn rebase(&self, uri: &Uri) -> Result<Uri> {
        let pq = if self.prefix.is_empty() {
            uri.path_and_query().cloned()
        } else {
            let pq = uri.path_and_query().map_or("/", |p| p.as_str());
            Some(
                PathAndQuery::try_from(format!("{}{pq}", self.prefix))
                    .map_err(|e| Error::invalid_url("cannot rebase the URL").with_source(e))?,
            )
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(pq.unwrap_or_else(|| PathAndQuery::from_static("/")));
        Uri::from_parts(parts)
            .map_err(|e| Error::invalid_url("cannot rebase the URL").with_source(e))
    }
}

/// One member as a fleet holds it: its backend, base URL and name, and its health.
pub(super) struct Slot {
    pub(super) backend: Backend,
    pub(super) base: Option<Base>,
    pub(super) name: Arc<str>,
    pub(super) breaker: Breaker,
    pub(super) ewma: PeakEwma,
    pub(super) counters: Counters,
}

impl Slot {
    /// The URL a request for `own` goes to on this member: `own` on its base URL, or `own` as
    /// it is (a whole URL) when it has none.
    pub(super) fn url_for(&self, own: &Uri) -> Result<Uri> {
        match &self.base {
            Some(base) => base.rebase(own),
            None if own.scheme().is_none() => Err(crate::url::needs_base_url()),
            None => Ok(own.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_on_a_base_takes_its_scheme_host_port_and_prefix() {
        let a = Base::parse("http://a.test:81").unwrap();
        let b = Base::parse("https://b.test/api/").unwrap();
        let path = crate::url::parse("/x?q=1").unwrap().uri;
        assert_eq!(a.rebase(&path).unwrap(), "http://a.test:81/x?q=1");
        assert_eq!(b.rebase(&path).unwrap(), "https://b.test/api/x?q=1");
        let whole: Uri = "http://elsewhere.test/y".parse().unwrap();
        assert_eq!(a.rebase(&whole).unwrap(), "http://a.test:81/y");
    }
}
