//! [`MarketError`]: every way a market-data call fails, typed. An exchange gap (minutes with no
//! candle at the exchange) is not an error: it is data, reported in
//! [`KlineSet::gaps`](super::KlineSet).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::Window;
use super::time::Timestamp;

/// A market-data failure. Matching is on the variants; each says what failed (the REST window,
/// the Vision file) so a failure is never mistaken for, or turned into, an empty result.
#[derive(Debug)]
#[non_exhaustive]
pub enum MarketError {
    /// The call was built wrong (unknown interval, `1s` on futures, an empty range, a symbol
    /// with characters an exchange never uses). Nothing was sent.
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// A REST window or Vision file failed at the transport level after every retry and every
    /// host (connection refused, timeout, broken body, every breaker open).
    Http {
        /// The REST window, when a klines window failed.
        window: Option<Window>,
        /// The Vision file or the endpoint.
        what: String,
        /// The fleet's error, with its attempt history.
        source: crate::Error,
    },
    /// The exchange answered an error status with no exchange error body, after retries for
    /// 5xx (other statuses are not retried).
    Status {
        /// The REST window, when a klines window failed.
        window: Option<Window>,
        /// The Vision file or the endpoint.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
    /// The exchange refused the request with its error JSON (`{"code": -1121, "msg":
    /// "Invalid symbol."}`). Not retried.
    Exchange {
        /// The REST window, when a klines window failed.
        window: Option<Window>,
        /// The HTTP status (4xx).
        status: u16,
        /// The exchange's error code.
        code: i64,
        /// The exchange's message.
        msg: String,
    },
    /// The exchange kept answering 429 after the client had waited out each `Retry-After`.
    RateLimited {
        /// The REST window, when a klines window failed.
        window: Option<Window>,
        /// The last `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The IP is banned (418). Nothing is sent to any host until `until`.
    Banned {
        /// When the ban ends (wall clock).
        until: Timestamp,
        /// How long from when the error was made.
        retry_after: Duration,
    },
    /// A Vision file's sha256 differs from its `.CHECKSUM`.
    ChecksumMismatch {
        /// The file's path on the server.
        file: String,
        /// The hex digest the CHECKSUM file gives.
        expected: String,
        /// The hex digest of the bytes received.
        actual: String,
    },
    /// A Vision file has no `.CHECKSUM` (404) and the policy requires one.
    ChecksumMissing {
        /// The file's path on the server.
        file: String,
    },
    /// A `.CHECKSUM` file is not `sha256sum` output for the file it sits beside.
    BadChecksumFile {
        /// The CHECKSUM file's path.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// A Vision file is not there yet (404 within the publication lag after its period ended).
    /// [`VisionDataClient::file`](super::VisionDataClient::file) reports this as
    /// [`FileOutcome::NotYetPublished`](super::FileOutcome), the range helpers as this error.
    NotYetPublished {
        /// The file's path on the server.
        file: String,
    },
    /// A Vision file does not exist (404 long after its period ended).
    NotFound {
        /// The file's path on the server.
        file: String,
    },
    /// A download broke the rules of ranged transfers (a `Content-Range` that does not match the
    /// request, a file whose size changed between chunks).
    Download {
        /// The file's path on the server.
        file: String,
        /// What went wrong.
        detail: String,
    },
    /// A zip that cannot be read: not a zip, not exactly one entry, a CRC or inflate error.
    Zip {
        /// The file's path on the server.
        file: String,
        /// What went wrong.
        detail: String,
    },
    /// Rows that cannot be trusted: a value that does not parse, a row outside the window that
    /// asked for it, open times out of order or conflicting duplicates.
    Data {
        /// The REST window or the Vision file.
        what: String,
        /// What is wrong, with the line or row.
        detail: String,
    },
    /// A local file (cache, temporary file, output) could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl MarketError {
    pub(crate) fn invalid_input(detail: impl Into<String>) -> Self {
        MarketError::InvalidInput {
            detail: detail.into(),
        }
    }

    pub(crate) fn data(what: impl fmt::Display, detail: impl Into<String>) -> Self {
        MarketError::Data {
            what: what.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MarketError::Io {
            path: path.into(),
            source,
        }
    }

    /// The REST window that failed, when the error is about one.
    pub fn window(&self) -> Option<Window> {
        match self {
            MarketError::Http { window, .. }
            | MarketError::Status { window, .. }
            | MarketError::Exchange { window, .. }
            | MarketError::RateLimited { window, .. } => *window,
            _ => None,
        }
    }

    /// The exchange error code, for [`MarketError::Exchange`].
    pub fn exchange_code(&self) -> Option<i64> {
        match self {
            MarketError::Exchange { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn window_prefix(f: &mut fmt::Formatter<'_>, window: &Option<Window>) -> fmt::Result {
    match window {
        Some(w) => write!(f, "window {w}: "),
        None => Ok(()),
    }
}

impl fmt::Display for MarketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketError::InvalidInput { detail } => {
                write!(f, "invalid market-data request: {detail}")
            }
            MarketError::Http {
                window,
                what,
                source,
            } => {
                window_prefix(f, window)?;
                write!(f, "{what} failed: {source}")
            }
            MarketError::Status {
                window,
                what,
                status,
                body,
            } => {
                window_prefix(f, window)?;
                write!(f, "{what} answered HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            MarketError::Exchange {
                window,
                status,
                code,
                msg,
            } => {
                window_prefix(f, window)?;
                write!(f, "exchange error {code} (HTTP {status}): {msg}")
            }
            MarketError::RateLimited {
                window,
                retry_after,
            } => {
                window_prefix(f, window)?;
                write!(f, "still rate limited (429) after waiting")?;
                if let Some(d) = retry_after {
                    write!(f, "; last Retry-After {} s", d.as_secs())?;
                }
                Ok(())
            }
            MarketError::Banned { until, retry_after } => write!(
                f,
                "IP banned by the exchange (418) until {until} ({} s); nothing is sent before then",
                retry_after.as_secs()
            ),
            MarketError::ChecksumMismatch {
                file,
                expected,
                actual,
            } => write!(
                f,
                "{file}: sha256 {actual} does not match its CHECKSUM {expected}"
            ),
            MarketError::ChecksumMissing { file } => {
                write!(f, "{file}: no .CHECKSUM file, and the policy requires one")
            }
            MarketError::BadChecksumFile { file, detail } => write!(f, "{file}: {detail}"),
            MarketError::NotYetPublished { file } => write!(f, "{file}: not published yet"),
            MarketError::NotFound { file } => write!(f, "{file}: not found (404)"),
            MarketError::Download { file, detail } => write!(f, "{file}: download: {detail}"),
            MarketError::Zip { file, detail } => write!(f, "{file}: bad zip: {detail}"),
            MarketError::Data { what, detail } => write!(f, "{what}: bad data: {detail}"),
            MarketError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for MarketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MarketError::Http { source, .. } => Some(source),
            MarketError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
