//! [`Classifier`]: one rule, shared by failover, retries and breakers, for what counts as a
//! failure.

use http::StatusCode;

use crate::error::{Error, ErrorKind};
use crate::response::Response;

/// What counts as a failure of a fleet member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classifier {
    /// Statuses that count as failures (and may be retried on another member). Defaults to 502,
    /// 503 and 504.
    pub failure_statuses: Vec<u16>,
    /// Error kinds that count as failures. Defaults to every transport kind: `Dns`, `Connect`,
    /// `Tls`, `Proxy`, `Timeout`, `Body`, `Protocol`, `Canceled`.
    pub failure_kinds: Vec<ErrorKind>,
}

impl Default for Classifier {
    fn default() -> Self {
        use crate::TimeoutPhase::*;
        Classifier {
            failure_statuses: vec![502, 503, 504],
            failure_kinds: vec![
                ErrorKind::Dns,
                ErrorKind::Connect,
                ErrorKind::Tls,
                ErrorKind::Proxy,
                ErrorKind::Timeout(Connect),
                ErrorKind::Timeout(Headers),
                ErrorKind::Timeout(Body),
                ErrorKind::Timeout(Total),
                ErrorKind::Body,
                ErrorKind::Protocol,
                ErrorKind::Canceled,
            ],
        }
    }
}

/// The verdict on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A response to return.
    Success,
    /// 429 or 418: returned to the caller, never retried elsewhere (rate limits follow the
    /// caller's IP, not the host), and not held against the member.
    RateLimited,
    /// A failure; `unsent` when the request provably never left the client.
    Failure { unsent: bool },
    /// An error that another attempt cannot fix (bad input, body too large): returned at once.
    Fatal,
}

impl Classifier {
    /// Sets [`Classifier::failure_statuses`].
    pub fn failure_statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.failure_statuses = statuses.into_iter().collect();
        self
    }

    /// Sets [`Classifier::failure_kinds`].
    pub fn failure_kinds(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.failure_kinds = kinds.into_iter().collect();
        self
    }

    /// The rule in the form a fleet applies to every attempt.
    pub(crate) fn compile(&self) -> Judge {
        let mut statuses = [0u64; 16];
        for &s in &self.failure_statuses {
            if let Some(word) = statuses.get_mut(usize::from(s) / 64) {
                *word |= 1 << (s % 64);
            }
        }
        Judge {
            statuses,
            kinds: self.failure_kinds.clone(),
        }
    }
}

/// A [`Classifier`] compiled: failure statuses as a bit set, so judging a response is a bit test.
#[derive(Debug)]
pub(crate) struct Judge {
    /// Bit `s` set: status `s` is a failure.
    statuses: [u64; 16],
    kinds: Vec<ErrorKind>,
}

impl Judge {
    pub(crate) fn judge(&self, outcome: &Result<Response, Error>) -> Verdict {
        match outcome {
            Ok(resp) => match resp.status() {
                StatusCode::TOO_MANY_REQUESTS | StatusCode::IM_A_TEAPOT => Verdict::RateLimited,
                s if self.statuses[usize::from(s.as_u16()) / 64 % 16] >> (s.as_u16() % 64) & 1
                    == 1 =>
                {
                    Verdict::Failure { unsent: false }
                }
                _ => Verdict::Success,
            },
            Err(e) if self.kinds.contains(&e.kind()) => Verdict::Failure {
                unsent: e.is_retryable(),
            },
            Err(_) => Verdict::Fatal,
        }
    }
}
