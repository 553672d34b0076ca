//! The `httpfleet.request` span of a single client's request: its method, URL (without query
//! or credentials) and backend, closed by one event with the status or the error's kind (not
//! its text, which names the whole URL) and the latency
//! (a fleet's attempts have their own `httpfleet.attempt` spans). Built only when a subscriber
//! wants httpfleet's DEBUG events: an untraced request pays one check.

use std::fmt;

use tracing::Span;

use crate::error::Result;
use crate::kind::BackendKind;
use crate::request::Request;
use crate::response::Response;

/// Whether a subscriber wants the span.
pub(crate) fn wanted() -> bool {
    tracing::enabled!(tracing::Level::DEBUG)
}

/// The span of `req` sent through `backend`, or a disabled one when none is wanted.
pub(crate) fn span(req: &Request, backend: BackendKind) -> Span {
    if !wanted() {
        return Span::none();
    }
    tracing::debug_span!(
        "httpfleet.request",
        method = %req.method,
        url = %Shown(&req.uri),
        backend = %backend,
    )
}

/// Closes `span` with the outcome and the latency since `start`.
pub(crate) fn ended(span: &Span, start: tokio::time::Instant, outcome: &Result<Response>) {
    if span.is_none() {
        return;
    }
    let latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| match outcome {
        Ok(resp) => tracing::debug!(status = resp.status().as_u16(), latency_us, "request ended"),
        Err(e) => tracing::debug!(error = %e.kind(), latency_us, "request failed"),
    });
}

/// A URL as a trace shows it: scheme, host, port and path (a query may hold a signature).
struct Shown<'a>(&'a http::Uri);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(scheme), Some(host)) = (self.0.scheme_str(), self.0.host()) {
            write!(f, "{scheme}://{host}")?;
            if let Some(port) = self.0.port_u16() {
                write!(f, ":{port}")?;
            }
        }
        f.write_str(self.0.path())
    }
}
