//! The proxy a configuration names: parsed, its credentials kept apart from its URL.

use crate::error::{Error, Result};

use super::Config;

impl Config {
    /// The proxy in force: `proxy`, else (with `proxy_from_env`) the environment's.
    pub(crate) fn proxy_url(&self) -> Result<Option<ProxyUrl>> {
        let raw = match &self.proxy {
            Some(p) => Some(p.clone()),
            None if self.proxy_from_env => [
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
                "ALL_PROXY",
                "all_proxy",
            ]
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())),
            None => None,
        };
        raw.map(|r| ProxyUrl::parse(&r)).transpose()
    }
}

/// A parsed proxy URL: where to connect and the credentials to present.
#[derive(Clone)]
pub(crate) struct ProxyUrl {
    /// `http://host:port` without credentials.
    pub uri: http::Uri,
    /// `user`, `password`.
    pub credentials: Option<(String, String)>,
}

impl ProxyUrl {
    fn parse(raw: &str) -> Result<Self> {
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let parsed = crate::url::parse(&with_scheme).map_err(|_| {
            Error::builder(format!(
                "proxy URL {:?} is invalid",
                crate::url::redact_str(raw)
            ))
        })?;
        if parsed.uri.scheme_str() != Some("http") {
            return Err(Error::builder("only http:// proxies are supported"));
        }
        Ok(ProxyUrl {
            uri: parsed.uri,
            credentials: parsed.credentials,
        })
    }

    /// `host:port` of the proxy.
    pub(crate) fn host_port(&self) -> String {
        format!(
            "{}:{}",
            self.uri.host().unwrap_or(""),
            crate::url::port_or_default(&self.uri)
        )
    }
}
