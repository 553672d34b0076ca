//! Loading a [`Config`]: from TOML, JSON or `HTTPFLEET_*` environment variables.

use super::*;

impl Config {
    /// Parses a configuration from TOML. Unknown keys are errors.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let config: Config = toml::from_str(s)
            .map_err(|e| Error::builder("invalid TOML configuration").with_source(e))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a configuration from JSON. Unknown keys are errors.
    pub fn from_json_str(s: &str) -> Result<Self> {
        let config: Config = serde_json::from_str(s)
            .map_err(|e| Error::builder("invalid JSON configuration").with_source(e))?;
        config.validate()?;
        Ok(config)
    }

    /// The default configuration with `HTTPFLEET_*` environment variables applied:
    /// `HTTPFLEET_BACKEND`, `HTTPFLEET_TIMEOUT_MS`, `HTTPFLEET_CONNECT_TIMEOUT_MS`,
    /// `HTTPFLEET_READ_TIMEOUT_MS`, `HTTPFLEET_MAX_REDIRECTS`, `HTTPFLEET_HTTP_VERSION`,
    /// `HTTPFLEET_TLS_VERIFY`, `HTTPFLEET_TLS_MIN_VERSION` (`1.2`, `1.3`), `HTTPFLEET_TLS_CA_FILE`, `HTTPFLEET_TLS_CLIENT_CERT`,
    /// `HTTPFLEET_TLS_CLIENT_KEY`, `HTTPFLEET_TLS_ROOTS` (`mozilla`, `system`),
    /// `HTTPFLEET_TLS_CA_FILE_ADDS_TO_ROOTS`, `HTTPFLEET_TLS_CLIENT_PKCS12`,
    /// `HTTPFLEET_TLS_CLIENT_PKCS12_PASSWORD`, `HTTPFLEET_PROXY`, `HTTPFLEET_PROXY_FROM_ENV`,
    /// `HTTPFLEET_NO_PROXY` (comma-separated), `HTTPFLEET_TCP_KEEPALIVE_MS`, `HTTPFLEET_COOKIES`,
    /// `HTTPFLEET_BASIC_AUTH` (`user:password`), `HTTPFLEET_USER_AGENT`,
    /// `HTTPFLEET_POOL_MAX_IDLE_PER_HOST`, `HTTPFLEET_POOL_MAX_CONNECTIONS_PER_HOST`,
    /// `HTTPFLEET_POOL_IDLE_TIMEOUT_MS`,
    /// `HTTPFLEET_MAX_RESPONSE_BYTES`, `HTTPFLEET_DECOMPRESS`, `HTTPFLEET_AUTO_HEADERS`,
    /// `HTTPFLEET_ALLOW_INSECURE_REDIRECTS`, `HTTPFLEET_RESOLVE` (`host=ip[,ip...];...`),
    /// `HTTPFLEET_LOCAL_ADDRESS`, `HTTPFLEET_RESOLVER`. A value
    /// that does not parse is a `Builder` error naming the variable.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `get` (for tests and embedding).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
            v.trim()
                .parse()
                .map_err(|_| Error::builder(format!("{name}={v:?} does not parse")))
        }
        fn ms(name: &str, v: &str) -> Result<Duration> {
            Ok(clamp(Duration::from_millis(parse::<u64>(name, v)?)))
        }
        fn flag(name: &str, v: &str) -> Result<bool> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::builder(format!("{name}={v:?} is not a boolean"))),
            }
        }
        let mut c = Config::default();
        let var = |n: &str| get(n).filter(|v| !v.is_empty());
        if let Some(v) = var("HTTPFLEET_BACKEND") {
            c.backend = parse("HTTPFLEET_BACKEND", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_TIMEOUT_MS") {
            c.timeout = ms("HTTPFLEET_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_CONNECT_TIMEOUT_MS") {
            c.connect_timeout = ms("HTTPFLEET_CONNECT_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_READ_TIMEOUT_MS") {
            c.read_timeout = Some(ms("HTTPFLEET_READ_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = var("HTTPFLEET_MAX_REDIRECTS") {
            c.max_redirects = parse("HTTPFLEET_MAX_REDIRECTS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_HTTP_VERSION") {
            c.http_version =
                serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                    Error::builder(format!(
                        "HTTPFLEET_HTTP_VERSION={v:?} is not auto, http1 or http2"
                    ))
                })?;
        }
        if let Some(v) = var("HTTPFLEET_TLS_VERIFY") {
            c.tls.verify = flag("HTTPFLEET_TLS_VERIFY", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_TLS_MIN_VERSION") {
            c.tls.min_version = serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| {
                    Error::builder(format!("HTTPFLEET_TLS_MIN_VERSION={v:?} is not 1.2 or 1.3"))
                })?;
        }
        if let Some(v) = var("HTTPFLEET_TLS_CA_FILE") {
            c.tls.ca_file = Some(v.into());
        }
        if let Some(v) = var("HTTPFLEET_TLS_CLIENT_CERT") {
            c.tls.client_cert = Some(v.into());
        }
        if let Some(v) = var("HTTPFLEET_TLS_CLIENT_KEY") {
            c.tls.client_key = Some(v.into());
        }
        if let Some(v) = var("HTTPFLEET_TLS_ROOTS") {
            c.tls.roots = match v.trim() {
                "mozilla" => super::Roots::Mozilla,
                "system" => super::Roots::System,
                _ => {
                    let e = format!("HTTPFLEET_TLS_ROOTS={v:?} is not mozilla or system");
                    return Err(Error::builder(e));
                }
            };
        }
        if let Some(v) = var("HTTPFLEET_TLS_CA_FILE_ADDS_TO_ROOTS") {
            c.tls.ca_file_adds_to_roots = flag("HTTPFLEET_TLS_CA_FILE_ADDS_TO_ROOTS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_TLS_CLIENT_PKCS12") {
            c.tls.client_pkcs12 = Some(v.into());
        }
        if let Some(v) = var("HTTPFLEET_TLS_CLIENT_PKCS12_PASSWORD") {
            c.tls.client_pkcs12_password = Some(v);
        }
        if let Some(v) = var("HTTPFLEET_PROXY") {
            c.proxy = Some(v);
        }
        if let Some(v) = var("HTTPFLEET_PROXY_FROM_ENV") {
            c.proxy_from_env = flag("HTTPFLEET_PROXY_FROM_ENV", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_NO_PROXY") {
            c.no_proxy = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = var("HTTPFLEET_TCP_KEEPALIVE_MS") {
            c.tcp_keepalive = Some(ms("HTTPFLEET_TCP_KEEPALIVE_MS", &v)?);
        }
        if let Some(v) = var("HTTPFLEET_COOKIES") {
            c.cookies = flag("HTTPFLEET_COOKIES", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_BASIC_AUTH") {
            let (u, p) = v.split_once(':').unwrap_or((v.as_str(), ""));
            c = c.basic_auth(u, p);
        }
        if let Some(v) = var("HTTPFLEET_USER_AGENT") {
            c.user_agent = v;
        }
        if let Some(v) = var("HTTPFLEET_POOL_MAX_IDLE_PER_HOST") {
            c.pool.max_idle_per_host = parse("HTTPFLEET_POOL_MAX_IDLE_PER_HOST", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_POOL_MAX_CONNECTIONS_PER_HOST") {
            c.pool.max_connections_per_host =
                Some(parse("HTTPFLEET_POOL_MAX_CONNECTIONS_PER_HOST", &v)?);
        }
        if let Some(v) = var("HTTPFLEET_POOL_IDLE_TIMEOUT_MS") {
            c.pool.idle_timeout = ms("HTTPFLEET_POOL_IDLE_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_MAX_RESPONSE_BYTES") {
            c.max_response_bytes = parse("HTTPFLEET_MAX_RESPONSE_BYTES", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_DECOMPRESS") {
            c.decompress = flag("HTTPFLEET_DECOMPRESS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_AUTO_HEADERS") {
            c.auto_headers = flag("HTTPFLEET_AUTO_HEADERS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_ALLOW_INSECURE_REDIRECTS") {
            c.allow_insecure_redirects = flag("HTTPFLEET_ALLOW_INSECURE_REDIRECTS", &v)?;
        }
        if let Some(v) = var("HTTPFLEET_RESOLVE") {
            for entry in v.split(';').filter(|e| !e.trim().is_empty()) {
                let bad = || {
                    Error::builder(format!(
                        "HTTPFLEET_RESOLVE entry {entry:?} is not host=address[,address...]"
                    ))
                };
                let (host, addrs) = entry.split_once('=').ok_or_else(bad)?;
                let addrs = addrs
                    .split(',')
                    .map(|a| a.trim().parse::<std::net::IpAddr>().map_err(|_| bad()))
                    .collect::<Result<Vec<_>>>()?;
                c = c.resolve(host.trim(), addrs);
            }
        }
        if let Some(v) = var("HTTPFLEET_LOCAL_ADDRESS") {
            c.local_address = Some(parse("HTTPFLEET_LOCAL_ADDRESS", &v)?);
        }
        if let Some(v) = var("HTTPFLEET_RESOLVER") {
            c.resolver = Some(crate::dns::Resolver::named(v.trim())?);
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_per_host_from_toml_and_the_environment_and_zero_refused() {
        let built = Config::default().pool_max_connections_per_host(Some(4));
        let toml = Config::from_toml_str("[pool]\nmax_connections_per_host = 4\n").unwrap();
        let env = Config::from_vars(|n| {
            (n == "HTTPFLEET_POOL_MAX_CONNECTIONS_PER_HOST").then(|| "4".into())
        })
        .unwrap();
        assert_eq!(built, toml);
        assert_eq!(built, env);
        let zero = Config::default().pool_max_connections_per_host(Some(0));
        assert_eq!(
            zero.validate().unwrap_err().kind(),
            crate::ErrorKind::Builder
        );
    }

    #[test]
    fn tls_min_version_from_toml_the_environment_and_the_builder_means_the_same() {
        let built = Config::default().tls_min_version(TlsVersion::Tls13);
        let toml = Config::from_toml_str("[tls]\nmin_version = \"1.3\"\n").unwrap();
        let env = Config::from_vars(|n| (n == "HTTPFLEET_TLS_MIN_VERSION").then(|| "1.3".into()))
            .unwrap();
        assert_eq!(built, toml);
        assert_eq!(built, env);
        assert_eq!(Config::default().tls.min_version, TlsVersion::Tls12);
        let bad = Config::from_vars(|n| (n == "HTTPFLEET_TLS_MIN_VERSION").then(|| "1.1".into()));
        assert_eq!(bad.unwrap_err().kind(), crate::ErrorKind::Builder);
    }
}
