//! [`Limits`]: what every real backend needs from the configuration at request time, resolved
//! once when it is built.

use crate::config::Config;

/// The configuration's limits, as a backend reads them per request.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// `max_response_bytes` (curl stops buffering a body whole past it).
    pub max_body: u64,
    /// `read_timeout`.
    pub read_timeout: Option<std::time::Duration>,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Self {
        Limits {
            max_body: config.max_response_bytes,
            read_timeout: config.read_timeout,
        }
    }
}
