//! One classifier for the error chains of the Rust backends (hyper, reqwest, ureq): the same
//! underlying fault (an `io::Error` kind, a rustls error, a hyper parse error) gives the same
//! [`ErrorKind`] whichever client wrapped it.

use std::error::Error as StdError;
use std::io;

use crate::error::{ErrorKind, TimeoutPhase, chain_mentions, find_io_kind};

/// Where in the exchange an error surfaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Establishing the connection (DNS, TCP, TLS, proxy).
    Connect,
    /// Sending the request or waiting for the response head.
    Headers,
    /// Receiving the response body.
    Body,
}

impl Stage {
    /// The timeout phase of this stage.
    pub(crate) fn timeout(self) -> ErrorKind {
        ErrorKind::Timeout(match self {
            Stage::Connect => TimeoutPhase::Connect,
            Stage::Headers => TimeoutPhase::Headers,
            Stage::Body => TimeoutPhase::Body,
        })
    }

    /// The error of a request whose deadline passed at this stage on `backend`.
    pub(crate) fn deadline_reached(self, backend: super::BackendKind) -> crate::error::Error {
        crate::error::Error::new(self.timeout())
            .with_backend(backend)
            .with_detail("deadline reached")
    }
}

/// The normalized kind of an error chain met at `stage`.
pub(crate) fn classify(err: &(dyn StdError + 'static), stage: Stage) -> ErrorKind {
    #[cfg(feature = "rustls")]
    if crate::error::chain(err).any(|e| e.is::<rustls::Error>()) {
        return ErrorKind::Tls;
    }
    #[cfg(feature = "hyper")]
    if let Some(h) = crate::error::chain(err).find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if h.is_parse() || h.is_parse_status() {
            return ErrorKind::Protocol;
        }
        if h.is_timeout() {
            return stage.timeout();
        }
    }
    if chain_mentions(err, "dns error") || chain_mentions(err, "failed to lookup address") {
        return ErrorKind::Dns;
    }
    match find_io_kind(err) {
        Some(io::ErrorKind::TimedOut) => return stage.timeout(),
        // Only a connection being made is refused.
        Some(io::ErrorKind::ConnectionRefused) => return ErrorKind::Connect,
        // An unreachable host or network after the connection was made may come after bytes
        // were written: not a `Connect` error, which says nothing was sent.
        Some(
            io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable,
        ) if stage == Stage::Connect => return ErrorKind::Connect,
        Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) if stage == Stage::Body => {
            // Broken framing (malformed chunked encoding) while reading the body.
            return ErrorKind::Protocol;
        }
        _ => {}
    }
    match stage {
        Stage::Connect => ErrorKind::Connect,
        Stage::Headers => ErrorKind::Protocol,
        Stage::Body => ErrorKind::Body,
    }
}

/// True when the chain says the connection closed before any byte of the response: hyper's
/// "connection closed before message completed" with no message, or a reset or broken pipe while
/// sending. On a pooled connection this is the stale-connection case.
pub(crate) fn closed_before_response(err: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "hyper")]
    if let Some(h) = crate::error::chain(err).find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if h.is_incomplete_message() || h.is_canceled() {
            return true;
        }
    }
    matches!(
        find_io_kind(err),
        Some(
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host or network that becomes unreachable after the connection was made may come after
    /// bytes were written: only while connecting is it a `Connect` error (never sent).
    #[test]
    fn unreachable_is_a_connect_error_only_while_connecting() {
        for kind in [
            io::ErrorKind::HostUnreachable,
            io::ErrorKind::NetworkUnreachable,
        ] {
            let err = io::Error::from(kind);
            assert_eq!(classify(&err, Stage::Connect), ErrorKind::Connect);
            assert_eq!(classify(&err, Stage::Headers), ErrorKind::Protocol);
            assert_eq!(classify(&err, Stage::Body), ErrorKind::Body);
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused, Stage::Headers), ErrorKind::Connect);
    }
}
