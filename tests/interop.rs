//! Interop against real third-party servers on loopback, started by `scripts/interop.sh`
//! (`scripts/test.sh` starts them, runs the tests and stops them):
//!
//! - httpbin (PyPI) under gunicorn,
//! - nginx terminating TLS (HTTP/2 on) in front of httpbin, with a CA made at setup, plus an
//!   mTLS server block,
//! - tinyproxy as a forward proxy, with and without basic auth,
//! - microsocks as a SOCKS5 proxy, with and without a username and password,
//! - dnsmasq as a DNS server for hickory's resolver.
//!
//! Every case runs on every backend, async and blocking; where a backend cannot do what a case
//! asks, the case asserts the `Unsupported` error instead. When `CI` is set and a server is
//! missing, the suite fails: it never skips in CI.

mod support;

use std::time::Duration;

use http::{StatusCode, Version};
use httpfleet::{BackendKind, Config, ErrorKind, HttpVersion, TimeoutPhase};
use serde_json::Value;
use support::harness::{Got, Harness, Surface, unsupported};

/// The value of an interop server variable, or `None` (the test is skipped) outside CI.
fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: the interop servers are not running (run scripts/test.sh)")
        }
        _ => {
            eprintln!(
                "skipped: {var} is not set (run scripts/test.sh to start the interop servers)"
            );
            None
        }
    }
}

fn json(resp: &Got) -> Value {
    resp.json::<Value>().expect("JSON body")
}

/// A harness plus the interop servers' addresses.
struct Fx {
    h: Harness,
}

impl std::ops::Deref for Fx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl Fx {
    fn new(kind: BackendKind, surface: Surface) -> Self {
        Fx {
            h: Harness::new(kind, surface),
        }
    }

    fn tls_config(&self) -> Option<Config> {
        Some(self.config().tls_ca_file(server("HTTPFLEET_TLS_CA")?))
    }

    /// HTTP/2 with nginx is expected from every backend but ureq.
    fn has_http2(&self) -> bool {
        self.kind != BackendKind::Ureq
    }
}

mod case {
    use super::*;

    // --- httpbin -----------------------------------------------------------------------------

    pub fn httpbin_get_with_args(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx
            .go(|c| c.get(format!("{base}/get?a=1")).query(&[("b", "x y")]))
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["args"]["a"], "1");
        assert_eq!(v["args"]["b"], "x y");
    }

    pub fn httpbin_headers_echo(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx
            .go(|c| c.get(format!("{base}/headers")).header("x-fleet", "1"))
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["headers"]["X-Fleet"], "1");
        assert_eq!(v["headers"]["User-Agent"], httpfleet::DEFAULT_USER_AGENT);
    }

    pub fn httpbin_bodies_on_every_method(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let payload = serde_json::json!({"symbol": "BTCUSDT", "qty": "0.001"});
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let path = format!("{base}/{}", method.to_ascii_lowercase());
            let resp = fx.go(|c| c.request(method, &path).json(&payload)).unwrap();
            assert_eq!(resp.status(), 200, "{method}");
            assert_eq!(json(&resp)["json"], payload, "{method}");
        }
        let resp = fx
            .go(|c| c.post(format!("{base}/post")).form(&[("k", "v w")]))
            .unwrap();
        assert_eq!(json(&resp)["form"]["k"], "v w");
        let resp = fx
            .go(|c| c.post(format!("{base}/post")).body(&b"raw\x01bytes"[..]))
            .unwrap();
        assert_eq!(json(&resp)["data"], "raw\u{1}bytes");
    }

    pub fn httpbin_status_of_every_class(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let config = fx.config().max_redirects(0);
        let s = fx.session(&config).unwrap();
        for code in [
            200, 201, 204, 301, 302, 304, 400, 401, 404, 418, 429, 500, 502, 503,
        ] {
            let resp = s.run(|c| c.get(format!("{base}/status/{code}"))).unwrap();
            assert_eq!(resp.status(), code);
        }
    }

    pub fn httpbin_redirect_chains(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        for route in ["redirect", "relative-redirect", "absolute-redirect"] {
            let resp = fx.go(|c| c.get(format!("{base}/{route}/3"))).unwrap();
            assert_eq!(resp.status(), 200, "{route}");
            assert!(
                resp.url().path().ends_with("/get"),
                "{route}: {}",
                resp.url()
            );
        }
        let err = fx
            .run(&fx.config().max_redirects(2), |c| {
                c.get(format!("{base}/redirect/4"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
    }

    pub fn httpbin_redirect_to_every_status(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let target = format!("{base}/anything");
        for (status, method) in [
            ("301", "GET"),
            ("302", "GET"),
            ("303", "GET"),
            ("307", "POST"),
            ("308", "POST"),
        ] {
            let resp = fx
                .go(|c| {
                    c.post(format!("{base}/redirect-to"))
                        .query(&[("url", target.as_str()), ("status_code", status)])
                        .body("keep")
                })
                .unwrap();
            let v = json(&resp);
            assert_eq!(v["method"], method, "{status}");
            let data = if method == "POST" { "keep" } else { "" };
            assert_eq!(v["data"], data, "{status}");
        }
    }

    pub fn httpbin_gzip_and_deflate(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx.go(|c| c.get(format!("{base}/gzip"))).unwrap();
        assert_eq!(json(&resp)["gzipped"], true);
        let resp = fx.go(|c| c.get(format!("{base}/deflate"))).unwrap();
        assert_eq!(json(&resp)["deflated"], true);
    }

    /// httpbin's cookie endpoints: set on a 302 and sent on the hop it leads to, sent on the
    /// next request, deleted by an expired one.
    pub fn httpbin_cookies_set_sent_and_deleted(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let config = fx.config().cookies(true);
        if !cfg!(feature = "cookies") {
            assert!(httpfleet::Client::from_config(&config).is_err());
            return;
        }
        let s = fx.session(&config).unwrap();
        let got = s
            .run(|c| c.get(format!("{base}/cookies/set?k1=v1&k2=v2")))
            .unwrap();
        assert_eq!(
            json(&got)["cookies"],
            serde_json::json!({"k1": "v1", "k2": "v2"})
        );
        let got = s
            .run(|c| c.get(format!("{base}/cookies/delete?k1")))
            .unwrap();
        assert_eq!(json(&got)["cookies"], serde_json::json!({"k2": "v2"}));
        let got = s.run(|c| c.get(format!("{base}/cookies"))).unwrap();
        assert_eq!(json(&got)["cookies"], serde_json::json!({"k2": "v2"}));
    }

    /// A multipart form with a text field and a file streamed from disk, as httpbin's `/post`
    /// (werkzeug's parser) reads it.
    pub fn httpbin_multipart_form_with_a_file(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        #[cfg(feature = "multipart")]
        {
            let path = std::env::temp_dir().join(format!(
                "httpfleet-interop-{}-{:?}-{:?}.csv",
                std::process::id(),
                fx.kind,
                fx.surface
            ));
            std::fs::write(&path, "open_time,close\n1,2\n").unwrap();
            let form = httpfleet::multipart::Form::new()
                .text("symbol", "BTCUSDT")
                .file("rows", &path)
                .unwrap();
            let got = fx
                .go(|c| c.post(format!("{base}/post")).multipart(form))
                .unwrap();
            let v = json(&got);
            assert_eq!(v["form"]["symbol"], "BTCUSDT", "{v}");
            assert_eq!(v["files"]["rows"], "open_time,close\n1,2\n", "{v}");
            let _ = std::fs::remove_file(&path);
        }
        #[cfg(not(feature = "multipart"))]
        let _ = (fx, base);
    }

    /// httpbin's `/brotli` (encoded by brotlicffi), decoded with the `brotli` feature.
    pub fn httpbin_brotli(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx.go(|c| c.get(format!("{base}/brotli"))).unwrap();
        if cfg!(feature = "brotli") {
            assert_eq!(json(&resp)["brotli"], true);
            assert!(resp.headers().get("content-encoding").is_none());
        } else {
            assert_eq!(resp.headers()["content-encoding"], "br");
        }
    }

    pub fn httpbin_basic_auth(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx
            .go(|c| c.get(format!("{base}/basic-auth/u/p")).basic_auth("u", "p"))
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(json(&resp)["authenticated"], true);
        let resp = fx
            .go(|c| c.get(format!("{base}/basic-auth/u/p")).basic_auth("u", "x"))
            .unwrap();
        assert_eq!(resp.status(), 401);
        let resp = fx
            .go(|c| {
                c.get(format!("{base}/hidden-basic-auth/u/p"))
                    .basic_auth("u", "p")
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = fx
            .go(|c| c.get(format!("{base}/hidden-basic-auth/u/p")))
            .unwrap();
        assert_eq!(resp.status(), 404);
    }

    pub fn httpbin_delay_beyond_timeout(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let config = fx.config().timeout(Duration::from_millis(700));
        fx.times_out(
            &config,
            TimeoutPhase::Headers,
            Duration::from_millis(2200),
            |c| c.get(format!("{base}/delay/3")),
        );
    }

    pub fn httpbin_drip_slower_than_deadline(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let config = fx.config().timeout(Duration::from_millis(1000));
        fx.times_out(
            &config,
            TimeoutPhase::Body,
            Duration::from_millis(2500),
            |c| {
                c.get(format!(
                    "{base}/drip?duration=4&numbytes=8&code=200&delay=0"
                ))
            },
        );
    }

    pub fn httpbin_bytes_and_stream_bytes(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx
            .go(|c| c.get(format!("{base}/bytes/4096?seed=7")))
            .unwrap();
        assert_eq!(resp.bytes().len(), 4096);
        let resp = fx
            .go(|c| c.get(format!("{base}/stream-bytes/50000?seed=7&chunk_size=1000")))
            .unwrap();
        assert_eq!(resp.bytes().len(), 50000);
    }

    pub fn httpbin_response_headers_user_agent_and_head(fx: &Fx) {
        let Some(base) = server("HTTPFLEET_HTTPBIN_URL") else {
            return;
        };
        let resp = fx
            .go(|c| c.get(format!("{base}/response-headers?x-fleet-a=1&x-fleet-b=2")))
            .unwrap();
        assert_eq!(resp.headers()["x-fleet-a"], "1");
        assert_eq!(resp.headers()["x-fleet-b"], "2");
        let resp = fx
            .run(&fx.config().user_agent("ua-test/1"), |c| {
                c.get(format!("{base}/user-agent"))
            })
            .unwrap();
        assert_eq!(json(&resp)["user-agent"], "ua-test/1");
        let resp = fx.go(|c| c.head(format!("{base}/get"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().is_empty());
    }

    // --- nginx (TLS, HTTP/2, mTLS) -------------------------------------------------------------

    pub fn nginx_tls_with_ca_file(fx: &Fx) {
        let (Some(url), Some(config)) = (server("HTTPFLEET_NGINX_URL"), fx.tls_config()) else {
            return;
        };
        let resp = fx.run(&config, |c| c.get(format!("{url}/get"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            json(&resp)["headers"]["User-Agent"],
            httpfleet::DEFAULT_USER_AGENT
        );
        // A new connection's phases, TLS included, where the backend tells them.
        let s = fx.session(&config).unwrap();
        let t = s.stream(|c| c.get(format!("{url}/get"))).unwrap().timings();
        let tells = matches!(fx.kind, BackendKind::Curl | BackendKind::Hyper);
        let told = [t.dns, t.connect, t.tls].map(|p| p.is_some());
        assert_eq!(told, [tells; 3], "{t:?}");
        let opening: Duration = [t.dns, t.connect, t.tls].into_iter().flatten().sum();
        assert!(opening <= t.first_byte, "{t:?}");
    }

    pub fn nginx_http2_negotiated(fx: &Fx) {
        let (Some(url), Some(config)) = (server("HTTPFLEET_NGINX_URL"), fx.tls_config()) else {
            return;
        };
        let auto = fx.run(&config, |c| c.get(format!("{url}/get"))).unwrap();
        let h2 = fx.run(&config.clone().http_version(HttpVersion::Http2), |c| {
            c.get(format!("{url}/get"))
        });
        if fx.has_http2() {
            assert_eq!(auto.version(), Version::HTTP_2);
            assert_eq!(h2.unwrap().version(), Version::HTTP_2);
        } else {
            assert_eq!(auto.version(), Version::HTTP_11);
            assert_eq!(h2.unwrap_err().kind(), ErrorKind::Unsupported);
            unsupported("nginx_http2_negotiated", fx.kind);
        }
        let h1 = fx
            .run(&config.http_version(HttpVersion::Http1), |c| {
                c.get(format!("{url}/get"))
            })
            .unwrap();
        assert_eq!(h1.version(), Version::HTTP_11);
    }

    pub fn nginx_default_roots_refuse_private_ca(fx: &Fx) {
        let Some(url) = server("HTTPFLEET_NGINX_URL") else {
            return;
        };
        let err = fx.go(|c| c.get(format!("{url}/get"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
        assert!(!err.is_retryable());
    }

    /// The private CA trusted beside Mozilla's roots, and through the system's store (here
    /// `SSL_CERT_FILE`, which every backend reads alike, libcurl included).
    pub fn nginx_trusts_a_ca_file_beside_the_roots_and_the_system_store(fx: &Fx) {
        let (Some(url), Some(ca)) = (server("HTTPFLEET_NGINX_URL"), server("HTTPFLEET_TLS_CA"))
        else {
            return;
        };
        // Only the `System` roots read it, and only this case asks for them.
        unsafe { std::env::set_var("SSL_CERT_FILE", &ca) };
        let added = fx.config().tls_ca_file_added(&ca);
        let resp = fx.run(&added, |c| c.get(format!("{url}/get"))).unwrap();
        assert_eq!(resp.status(), 200);
        let system = fx.config().tls_roots(httpfleet::Roots::System);
        let resp = fx.run(&system, |c| c.get(format!("{url}/get"))).unwrap();
        assert_eq!(resp.status(), 200);
        let mozilla = fx.config().tls_roots(httpfleet::Roots::Mozilla);
        let err = fx
            .run(&mozilla, |c| c.get(format!("{url}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    }

    pub fn nginx_hostname_mismatch_is_tls_error(fx: &Fx) {
        let (Some(url), Some(config)) = (server("HTTPFLEET_NGINX_IP_URL"), fx.tls_config()) else {
            return;
        };
        let err = fx
            .run(&config, |c| c.get(format!("{url}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    }

    pub fn nginx_verify_off_accepts_anything(fx: &Fx) {
        let Some(url) = server("HTTPFLEET_NGINX_IP_URL") else {
            return;
        };
        let resp = fx
            .run(&fx.config().tls_verify(false), |c| {
                c.get(format!("{url}/get"))
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// `tls.min_version`: TLS 1.3 refuses a server that speaks TLS 1.2 only (`Tls`), and still
    /// reaches one that speaks 1.3; the default (1.2) reaches both.
    pub fn nginx_tls_min_version_is_honoured(fx: &Fx) {
        let (Some(old), Some(new), Some(config)) = (
            server("HTTPFLEET_NGINX_TLS12_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        for url in [&old, &new] {
            let resp = fx.run(&config, |c| c.get(format!("{url}/get"))).unwrap();
            assert_eq!(resp.status(), 200, "{url}");
        }
        let strict = config.tls_min_version(httpfleet::TlsVersion::Tls13);
        let err = fx
            .run(&strict, |c| c.get(format!("{old}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
        let resp = fx.run(&strict, |c| c.get(format!("{new}/get"))).unwrap();
        assert_eq!(resp.status(), 200);
    }

    pub fn nginx_mtls_accepts_client_certificate(fx: &Fx) {
        let (Some(url), Some(config), Some(cert), Some(key)) = (
            server("HTTPFLEET_NGINX_MTLS_URL"),
            fx.tls_config(),
            server("HTTPFLEET_TLS_CLIENT_CERT"),
            server("HTTPFLEET_TLS_CLIENT_KEY"),
        ) else {
            return;
        };
        let resp = fx
            .run(&config.clone().tls_client_identity(&cert, &key), |c| {
                c.get(format!("{url}/get"))
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The same identity from one PEM file holding the chain and the key.
        let both = std::env::temp_dir().join(format!(
            "httpfleet-identity-{}-{:?}-{:?}.pem",
            std::process::id(),
            fx.kind,
            fx.surface
        ));
        let pem = [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat();
        std::fs::write(&both, pem).unwrap();
        let resp = fx
            .run(&config.clone().tls_client_identity_pem(&both), |c| {
                c.get(format!("{url}/get"))
            })
            .unwrap();
        assert_eq!(resp.status(), 200, "one PEM file");
        let _ = std::fs::remove_file(&both);
        #[cfg(feature = "pkcs12")]
        {
            // The same identity from PKCS#12 (openssl's default AES encryption); a wrong
            // password is refused when the client is built and never printed.
            let p12 = both.with_extension("p12");
            let made = std::process::Command::new("openssl")
                .args(["pkcs12", "-export", "-in", &cert, "-inkey", &key, "-out"])
                .arg(&p12)
                .args(["-passout", "pass:p12-s3cret"])
                .status()
                .unwrap();
            assert!(made.success());
            let resp = fx
                .run(&config.clone().tls_client_pkcs12(&p12, "p12-s3cret"), |c| {
                    c.get(format!("{url}/get"))
                })
                .unwrap();
            assert_eq!(resp.status(), 200, "PKCS#12");
            let wrong = config.clone().tls_client_pkcs12(&p12, "wr0ng-pa55");
            let err = httpfleet::Backend::from_config(&wrong).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
            assert!(!format!("{err} {err:?} {wrong:?}").contains("wr0ng-pa55"));
            let _ = std::fs::remove_file(&p12);
        }
    }

    pub fn nginx_mtls_rejects_missing_certificate(fx: &Fx) {
        let (Some(url), Some(config)) = (server("HTTPFLEET_NGINX_MTLS_URL"), fx.tls_config())
        else {
            return;
        };
        let resp = fx.run(&config, |c| c.get(format!("{url}/get"))).unwrap();
        // nginx completes the handshake and answers 400 "No required SSL certificate was sent".
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }

    pub fn nginx_https_to_http_redirect_is_refused_and_credentials_never_cross(fx: &Fx) {
        let (Some(url), Some(base), Some(config)) = (
            server("HTTPFLEET_NGINX_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        // https://localhost:P2 (nginx) -> http://localhost:P1 (httpbin): scheme and port change.
        // (nginx rewrites a Location naming its upstream, 127.0.0.1:P1, back to itself.)
        let target = format!("{}/headers", base.replace("127.0.0.1", "localhost"));
        let send = |config: &Config| {
            fx.run(config, |c| {
                c.get(format!("{url}/redirect-to"))
                    .query(&[("url", target.as_str())])
                    .basic_auth("user", "secret")
                    .header("cookie", "session=1")
            })
        };
        let err = send(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect, "{err:?}");
        let resp = send(&config.clone().allow_insecure_redirects(true)).unwrap();
        assert_eq!(resp.url().scheme_str(), Some("http"));
        let v = json(&resp);
        assert!(v["headers"]["Authorization"].is_null(), "{v}");
        assert!(v["headers"]["Cookie"].is_null(), "{v}");
    }

    // --- tinyproxy -------------------------------------------------------------------------------

    pub fn proxy_plain_http(fx: &Fx) {
        let (Some(proxy), Some(base)) = (
            server("HTTPFLEET_PROXY_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
        ) else {
            return;
        };
        let resp = fx
            .run(&fx.config().proxy(proxy), |c| {
                c.get(format!("{base}/headers"))
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
        let forwarded = json(&resp)["headers"]["X-Tinyproxy"].is_string();
        if fx.kind == BackendKind::Ureq {
            // ureq tunnels plain http through CONNECT too, so the proxy adds nothing.
            assert!(!forwarded, "{}", json(&resp));
        } else {
            // tinyproxy marks what it forwarded in absolute form.
            assert!(forwarded, "{}", json(&resp));
        }
    }

    pub fn proxy_https_through_connect(fx: &Fx) {
        let (Some(proxy), Some(url), Some(config)) = (
            server("HTTPFLEET_PROXY_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let resp = fx
            .run(&config.proxy(proxy), |c| c.get(format!("{url}/headers")))
            .unwrap();
        assert_eq!(resp.status(), 200);
        // Tunnelled: the proxy cannot add headers inside TLS.
        assert!(json(&resp)["headers"]["X-Tinyproxy"].is_null());
    }

    pub fn proxy_with_credentials(fx: &Fx) {
        let (Some(proxy), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_PROXY_AUTH_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let config = config.proxy(proxy);
        let resp = fx
            .run(&config, |c| c.get(format!("{base}/headers")))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v = json(&resp);
        assert!(
            v["headers"]["Proxy-Authorization"].is_null(),
            "credentials reached the origin: {v}"
        );
        let resp = fx
            .run(&config, |c| c.get(format!("{url}/headers")))
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(json(&resp)["headers"]["Proxy-Authorization"].is_null());
    }

    pub fn proxy_without_credentials_is_proxy_error(fx: &Fx) {
        let (Some(proxy), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_PROXY_AUTH_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let bare = proxy.replace("fleet:s3cret-proxy@", "");
        let config = config.proxy(bare);
        // Plain http: tinyproxy answers 407; https: it refuses the CONNECT with 407.
        let err = fx
            .run(&config, |c| c.get(format!("{base}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "http: {err:?}");
        let err = fx
            .run(&config, |c| c.get(format!("{url}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "https: {err:?}");
    }

    pub fn proxy_wrong_password_is_refused(fx: &Fx) {
        let (Some(proxy), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_PROXY_AUTH_WRONG_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let config = config.proxy(proxy);
        // tinyproxy 1.11 answers a wrong password on a plain request with 401 (not 407), which
        // a client cannot tell from an origin's 401. ureq tunnels plain http through CONNECT,
        // so it sees a refused tunnel: a Proxy error. Either way nothing reaches the origin.
        let plain = fx.run(&config, |c| c.get(format!("{base}/get")));
        if fx.kind == BackendKind::Ureq {
            assert_eq!(plain.unwrap_err().kind(), ErrorKind::Proxy);
        } else {
            let resp = plain.unwrap();
            assert_eq!(resp.status(), 401);
            assert!(
                resp.headers()["server"]
                    .to_str()
                    .unwrap()
                    .starts_with("tinyproxy")
            );
        }
        // A refused CONNECT is an error everywhere.
        let err = fx
            .run(&config, |c| c.get(format!("{url}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "https: {err:?}");
        for text in [format!("{err}"), format!("{err:?}")] {
            assert!(!text.contains("wrong"), "proxy password leaked: {text}");
        }
    }

    /// proxy.py with a password holding `@ : / % #`: the same credentials reach it exactly as
    /// given on every backend, for plain http (absolute form, or ureq's CONNECT) and for https
    /// through CONNECT; a wrong one is refused.
    pub fn proxy_credentials_with_url_syntax_reach_the_proxy_as_given(fx: &Fx) {
        let (Some(proxy), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_PROXY_SPECIAL_URL"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let good = config.clone().proxy(&proxy);
        for target in [format!("{base}/get"), format!("{url}/get")] {
            let resp = fx.run(&good, |c| c.get(&target)).unwrap();
            assert_eq!(resp.status(), 200, "{target}");
        }
        let wrong = config.proxy(proxy.replace("%23x@", "%23y@"));
        let plain = fx.run(&wrong, |c| c.get(format!("{base}/get")));
        match plain {
            Ok(resp) => assert_eq!(resp.status(), 407),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Proxy, "{e:?}"),
        }
        let err = fx.run(&wrong, |c| c.get(format!("{url}/get"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{err:?}");
    }

    pub fn proxy_dead_is_proxy_error(fx: &Fx) {
        let (Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = config.proxy(format!("http://127.0.0.1:{port}"));
        let err = fx
            .run(&config, |c| c.get(format!("{base}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "http: {err:?}");
        let err = fx
            .run(&config, |c| c.get(format!("{url}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "https: {err:?}");
    }

    // --- microsocks ------------------------------------------------------------------------------

    /// The open microsocks connects out from 127.0.0.2, so httpbin's `origin` shows it was used;
    /// https goes through it too, verified end to end.
    pub fn socks5_and_socks5h_carry_http_and_https(fx: &Fx) {
        let (Some(socks), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_SOCKS_ADDR"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        for scheme in ["socks5", "socks5h"] {
            let config = config.clone().proxy(format!("{scheme}://{socks}"));
            let resp = fx.run(&config, |c| c.get(format!("{base}/get"))).unwrap();
            assert_eq!(json(&resp)["origin"], "127.0.0.2", "{scheme}");
            let resp = fx.run(&config, |c| c.get(format!("{url}/get"))).unwrap();
            assert_eq!(resp.status(), 200, "{scheme}");
        }
    }

    /// `socks5://` resolves names here (`resolve` included) and sends the proxy an address;
    /// `socks5h://` sends the name, which only this client can resolve: the proxy fails.
    pub fn socks5_resolves_here_and_socks5h_at_the_proxy(fx: &Fx) {
        let (Some(socks), Some(base)) = (
            server("HTTPFLEET_SOCKS_ADDR"),
            server("HTTPFLEET_HTTPBIN_URL"),
        ) else {
            return;
        };
        let port = base.rsplit(':').next().unwrap();
        let url = format!("http://socks-only.test:{port}/get");
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = fx.config().resolve("socks-only.test", [loopback]);
        let local = config.clone().proxy(format!("socks5://{socks}"));
        let resp = fx.run(&local, |c| c.get(&url)).unwrap();
        assert_eq!(json(&resp)["origin"], "127.0.0.2");
        let remote = config.proxy(format!("socks5h://{socks}"));
        let err = fx.run(&remote, |c| c.get(&url)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{err:?}");
    }

    /// hickory asking dnsmasq: its name reaches httpbin, directly and through `socks5://`
    /// (resolved here); its NXDOMAIN is a `Dns` error.
    pub fn hickory_asks_a_real_dns_server(fx: &Fx) {
        #[cfg(not(feature = "hickory"))]
        let _ = (fx, eprintln!("skipped: needs the hickory feature"));
        #[cfg(feature = "hickory")]
        {
            let (Some(dns), Some(socks), Some(base)) = (
                server("HTTPFLEET_DNS_ADDR"),
                server("HTTPFLEET_SOCKS_ADDR"),
                server("HTTPFLEET_HTTPBIN_URL"),
            ) else {
                return;
            };
            let dns = dns.parse().unwrap();
            let resolver = httpfleet::dns::Resolver::hickory_with_nameservers(&[dns]).unwrap();
            let port = base.rsplit(':').next().unwrap();
            let url = format!("http://fleet-dns.test:{port}/get");
            let config = fx.config().resolver(Some(resolver));
            let v = json(&fx.run(&config, |c| c.get(&url)).unwrap());
            assert_eq!(v["headers"]["Host"], format!("fleet-dns.test:{port}"));
            assert_eq!(v["origin"], "127.0.0.1");
            let socks5 = config.clone().proxy(format!("socks5://{socks}"));
            let v = json(&fx.run(&socks5, |c| c.get(&url)).unwrap());
            assert_eq!(v["origin"], "127.0.0.2");
            let err = fx
                .run(&config, |c| {
                    c.get(format!("http://missing.test:{port}/get"))
                })
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dns, "{err:?}");
        }
    }

    /// microsocks with a password holding `: @ / %`: the credentials reach it as given, for
    /// http and https; none, or a wrong password, is a `Proxy` error that never prints it.
    pub fn socks_credentials_reach_the_proxy_as_given(fx: &Fx) {
        let (Some(socks), Some(credentials), Some(base), Some(url), Some(config)) = (
            server("HTTPFLEET_SOCKS_AUTH_ADDR"),
            server("HTTPFLEET_SOCKS_CREDENTIALS"),
            server("HTTPFLEET_HTTPBIN_URL"),
            server("HTTPFLEET_NGINX_URL"),
            fx.tls_config(),
        ) else {
            return;
        };
        for scheme in ["socks5", "socks5h"] {
            let good = config
                .clone()
                .proxy(format!("{scheme}://{credentials}@{socks}"));
            for target in [format!("{base}/get"), format!("{url}/get")] {
                let resp = fx.run(&good, |c| c.get(&target)).unwrap();
                assert_eq!(resp.status(), 200, "{scheme} {target}");
            }
            let wrong = credentials.replace("%25", "-wrong");
            for proxy in [
                format!("{scheme}://{socks}"),
                format!("{scheme}://{wrong}@{socks}"),
            ] {
                let bad = config.clone().proxy(&proxy);
                for target in [format!("{base}/get"), format!("{url}/get")] {
                    let err = fx.run(&bad, |c| c.get(&target)).unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Proxy, "{scheme} {target}: {err:?}");
                    for text in [format!("{err}"), format!("{err:?}")] {
                        assert!(!text.contains("-wrong"), "proxy password leaked: {text}");
                    }
                }
            }
        }
    }
}

/// One interop case for one backend and surface.
macro_rules! interop_case {
    ($name:ident, $kind:expr, $surface:expr) => {
        case::$name(&Fx::new($kind, $surface))
    };
}

support::per_backend_tests!(interop_case;
    httpbin_get_with_args, httpbin_headers_echo, httpbin_bodies_on_every_method,
    httpbin_status_of_every_class, httpbin_redirect_chains,
    httpbin_redirect_to_every_status, httpbin_gzip_and_deflate, httpbin_brotli,
    httpbin_cookies_set_sent_and_deleted, httpbin_multipart_form_with_a_file,
    httpbin_basic_auth,
    httpbin_delay_beyond_timeout, httpbin_drip_slower_than_deadline,
    httpbin_bytes_and_stream_bytes, httpbin_response_headers_user_agent_and_head,
    nginx_tls_with_ca_file, nginx_http2_negotiated,
    nginx_default_roots_refuse_private_ca, nginx_hostname_mismatch_is_tls_error,
    nginx_trusts_a_ca_file_beside_the_roots_and_the_system_store,
    nginx_verify_off_accepts_anything, nginx_tls_min_version_is_honoured,
    nginx_mtls_accepts_client_certificate,
    nginx_mtls_rejects_missing_certificate,
    nginx_https_to_http_redirect_is_refused_and_credentials_never_cross,
    proxy_plain_http, proxy_https_through_connect, proxy_with_credentials,
    proxy_without_credentials_is_proxy_error, proxy_wrong_password_is_refused,
    proxy_dead_is_proxy_error, proxy_credentials_with_url_syntax_reach_the_proxy_as_given,
    socks5_and_socks5h_carry_http_and_https, socks5_resolves_here_and_socks5h_at_the_proxy,
    socks_credentials_reach_the_proxy_as_given, hickory_asks_a_real_dns_server,
);

/// Blocking calls made from inside a tokio runtime work on every backend (reqwest's own
/// blocking client panics there: reqwest issue 1017).
mod blocking_inside_runtime {
    use super::*;

    fn check(kind: BackendKind) {
        let server = support::TestServer::start();
        let client =
            httpfleet::blocking::Client::from_config(&Config::default().backend(kind)).unwrap();
        let url = server.url("/small");
        for flavor in ["current_thread", "multi_thread"] {
            let rt = match flavor {
                "current_thread" => tokio::runtime::Builder::new_current_thread(),
                _ => tokio::runtime::Builder::new_multi_thread(),
            }
            .enable_all()
            .build()
            .unwrap();
            let resp = rt.block_on(async { client.get(&url).send() }).unwrap();
            assert_eq!(resp.text().unwrap(), "Hello, World!", "{kind} in {flavor}");
        }
    }

    #[cfg(feature = "hyper")]
    #[test]
    fn hyper() {
        check(BackendKind::Hyper);
    }

    #[cfg(feature = "reqwest")]
    #[test]
    fn reqwest() {
        check(BackendKind::Reqwest);
    }

    #[cfg(feature = "curl")]
    #[test]
    fn curl() {
        check(BackendKind::Curl);
    }

    #[cfg(feature = "ureq")]
    #[test]
    fn ureq() {
        check(BackendKind::Ureq);
    }

    #[test]
    fn mock() {
        check_mock();
    }

    fn check_mock() {
        let mock = httpfleet::backend::MockBackend::new();
        let client = httpfleet::blocking::Client::new(httpfleet::Backend::from(mock.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let resp = rt
            .block_on(async { client.get("http://mock.test/").send() })
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(mock.request_count(), 1);
    }
}
