//! The conformance suite: every behaviour, written once, run on every enabled backend through
//! both the async and the blocking surface, against an in-process loopback server.
//!
//! Test names say where they ran: `hyper::async_surface::redirect_limit_exceeded`,
//! `curl::blocking_surface::gzip_is_decoded`.

mod support;

use std::time::{Duration, Instant};

use httpfleet::{BackendKind, Client, Config, ErrorKind, TimeoutPhase};
use serde_json::Value;
use support::TestServer;
use support::fault::{Fault, FaultServer};
use support::harness::{Got, Harness, Streamed, Surface, unsupported};

/// One test's fixture: its own server, and the backend and surface under test.
pub struct Fx {
    pub server: TestServer,
    h: Harness,
}

impl std::ops::Deref for Fx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl Fx {
    pub fn new(kind: BackendKind, surface: Surface) -> Self {
        Fx {
            server: TestServer::start(),
            h: Harness::new(kind, surface),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

/// The `Accept-Encoding` of a default request: exactly the codings enabled.
const ACCEPT_ENCODING: &str = match (cfg!(feature = "brotli"), cfg!(feature = "zstd")) {
    (true, true) => "gzip, deflate, br, zstd",
    (true, false) => "gzip, deflate, br",
    (false, true) => "gzip, deflate, zstd",
    (false, false) => "gzip, deflate",
};

fn json(resp: &Got) -> Value {
    resp.json::<Value>().expect("JSON body")
}

#[path = "conformance/streaming.rs"]
mod streaming;

/// Each behaviour, written once.
mod behaviour {
    use super::*;
    use http::StatusCode;

    // --- methods, query, headers -------------------------------------------------------------

    pub fn get_echoes_query_and_headers(fx: &Fx) {
        let resp = fx
            .go(|c| c.get(fx.url("/get?a=1&b=two")).header("x-test", "yes"))
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v = json(&resp);
        assert_eq!(v["args"]["a"], "1");
        assert_eq!(v["args"]["b"], "two");
        assert_eq!(v["headers"]["x-test"], "yes");
        assert_eq!(v["method"], "GET");
    }

    pub fn query_pairs_are_encoded_and_appended(fx: &Fx) {
        let resp = fx
            .go(|c| {
                c.get(fx.url("/get?a=1"))
                    .query(&[("sym", "BTC USDT"), ("x", "a&b=c")])
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["args"]["a"], "1");
        assert_eq!(v["args"]["sym"], "BTC USDT");
        assert_eq!(v["args"]["x"], "a&b=c");
    }

    pub fn query_and_form_from_any_serialize(fx: &Fx) {
        #[derive(serde::Serialize)]
        struct Ask {
            symbol: &'static str,
            limit: u32,
            note: Option<&'static str>,
        }
        let ask = Ask {
            symbol: "BTC USDT",
            limit: 500,
            note: None,
        };
        let v = json(&fx.go(|c| c.get(fx.url("/get?a=1")).query(&ask)).unwrap());
        assert_eq!(v["args"]["a"], "1");
        assert_eq!(v["args"]["symbol"], "BTC USDT");
        assert_eq!(v["args"]["limit"], "500");
        assert!(v["args"].get("note").is_none());
        let v = json(&fx.go(|c| c.post(fx.url("/post")).form(&ask)).unwrap());
        assert_eq!(v["form"]["symbol"], "BTC USDT");
        assert_eq!(v["form"]["limit"], "500");
        // A nested value has no form encoding: refused before anything is sent.
        let nested = serde_json::json!({"a": {"b": 1}});
        let err = fx.go(|c| c.get(fx.url("/get")).query(&nested)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder);
        let err = fx
            .go(|c| c.post(fx.url("/post")).form(&nested))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder);
        assert_eq!(fx.server.requests_seen(), 2);
    }

    pub fn headers_replace_the_values_of_their_names(fx: &Fx) {
        let mut map = http::HeaderMap::new();
        map.append("x-a", "3".parse().unwrap());
        map.append("x-a", "4".parse().unwrap());
        fx.go(|c| {
            c.get(fx.url("/get"))
                .header("x-a", "1")
                .header("x-a", "2")
                .header("x-b", "kept")
                .headers(map.clone())
        })
        .unwrap();
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.header_all("x-a").join(","), "3,4");
        assert_eq!(seen.header_all("x-b").join(","), "kept");
    }

    pub fn post_sends_json_body(fx: &Fx) {
        let resp = fx
            .go(|c| {
                c.post(fx.url("/post"))
                    .json(&serde_json::json!({"k": [1, 2, 3]}))
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["json"]["k"][2], 3);
        assert_eq!(v["headers"]["content-type"], "application/json");
    }

    pub fn post_sends_form_body(fx: &Fx) {
        let resp = fx
            .go(|c| c.post(fx.url("/post")).form(&[("a", "1"), ("b", "x y")]))
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["form"]["a"], "1");
        assert_eq!(v["form"]["b"], "x y");
    }

    pub fn post_sends_raw_bytes_exactly(fx: &Fx) {
        let body: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let resp = fx
            .go(|c| c.post(fx.url("/post")).body(body.clone()))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.body, body);
        assert_eq!(seen.header("content-length"), Some("5000"));
        assert_eq!(seen.header("expect"), None, "no Expect: 100-continue");
    }

    pub fn post_without_content_type_sends_none(fx: &Fx) {
        fx.go(|c| c.post(fx.url("/post")).body("raw")).unwrap();
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.header("content-type"), None);
        assert_eq!(seen.body, b"raw");
    }

    pub fn put_sends_body(fx: &Fx) {
        let resp = fx.go(|c| c.put(fx.url("/put")).body("put-body")).unwrap();
        assert_eq!(json(&resp)["data"], "put-body");
    }

    pub fn patch_sends_body(fx: &Fx) {
        let resp = fx
            .go(|c| {
                c.patch(fx.url("/patch"))
                    .json(&serde_json::json!({"p": true}))
            })
            .unwrap();
        assert_eq!(json(&resp)["json"]["p"], true);
    }

    pub fn delete_is_sent_as_delete(fx: &Fx) {
        let resp = fx.go(|c| c.delete(fx.url("/delete"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(json(&resp)["method"], "DELETE");
    }

    pub fn any_method_by_name(fx: &Fx) {
        let resp = fx
            .go(|c| c.request("OPTIONS", fx.url("/anything")))
            .unwrap();
        assert_eq!(json(&resp)["method"], "OPTIONS");
        let resp = fx
            .go(|c| c.request("PURGE", fx.url("/anything/x")).body("b"))
            .unwrap();
        assert_eq!(json(&resp)["method"], "PURGE");
        assert_eq!(json(&resp)["data"], "b");
    }

    pub fn head_has_headers_and_no_body(fx: &Fx) {
        let resp = fx.go(|c| c.head(fx.url("/bytes/100"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().is_empty());
        assert_eq!(resp.headers()["content-length"], "100");
    }

    pub fn get_after_post_on_same_client_is_a_get(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        s.run(|c| c.post(fx.url("/post")).body("x")).unwrap();
        s.run(|c| c.head(fx.url("/get"))).unwrap();
        let resp = s.run(|c| c.get(fx.url("/get"))).unwrap();
        assert_eq!(json(&resp)["method"], "GET");
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.method, "GET");
        assert!(seen.body.is_empty());
    }

    pub fn default_user_agent_is_httpfleet(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/user-agent"))).unwrap();
        assert_eq!(json(&resp)["user-agent"], httpfleet::DEFAULT_USER_AGENT);
        assert!(httpfleet::DEFAULT_USER_AGENT.starts_with("httpfleet/"));
    }

    pub fn user_agent_from_config(fx: &Fx) {
        let config = fx.config().user_agent("market-loop/7");
        let resp = fx.run(&config, |c| c.get(fx.url("/user-agent"))).unwrap();
        assert_eq!(json(&resp)["user-agent"], "market-loop/7");
    }

    pub fn default_headers_sent_and_request_headers_win(fx: &Fx) {
        let config = fx
            .config()
            .default_header("x-env", "prod")
            .default_header("x-over", "config");
        let resp = fx
            .run(&config, |c| {
                c.get(fx.url("/headers")).header("x-over", "request")
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["headers"]["x-env"], "prod");
        assert_eq!(v["headers"]["x-over"], "request");
    }

    pub fn same_headers_on_the_wire_everywhere(fx: &Fx) {
        fx.go(|c| c.get(fx.url("/get"))).unwrap();
        let seen = fx.server.last_request().unwrap();
        let mut names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["accept", "accept-encoding", "host", "user-agent"],
            "{seen:?}"
        );
        assert_eq!(seen.header("accept"), Some("*/*"));
        assert_eq!(seen.header("accept-encoding"), Some(ACCEPT_ENCODING));
    }

    /// With `auto_headers(false)` a request carries exactly the headers the caller set, as a
    /// bare request of each client does (reqwest, which always sends `Accept: */*`, refuses it
    /// unless the caller sets `Accept` itself).
    pub fn without_auto_headers_the_wire_carries_only_the_callers(fx: &Fx) {
        let config = fx.config().auto_headers(false);
        if fx.kind == BackendKind::Reqwest {
            let err = fx.session(&config).err().expect("reqwest refuses it");
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err:?}");
            unsupported(
                "without_auto_headers_the_wire_carries_only_the_callers",
                fx.kind,
            );
        }
        let config = match fx.kind {
            BackendKind::Reqwest => config.default_header("accept", "*/*"),
            _ => config,
        };
        fx.run(&config, |c| c.get(fx.url("/get")).header("x-own", "1"))
            .unwrap();
        let seen = fx.server.last_request().unwrap();
        let mut names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        let expected: &[&str] = match fx.kind {
            BackendKind::Reqwest => &["accept", "host", "x-own"],
            _ => &["host", "x-own"],
        };
        assert_eq!(names, expected, "{seen:?}");
    }

    pub fn repeated_request_headers_are_all_sent(fx: &Fx) {
        fx.go(|c| {
            c.get(fx.url("/get"))
                .header("x-multi", "a")
                .header("x-multi", "b")
        })
        .unwrap();
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.header_all("x-multi").join(","), "a,b");
    }

    pub fn response_headers_are_exposed(fx: &Fx) {
        let resp = fx
            .go(|c| c.get(fx.url("/response-headers?x-one=1&x-two=deux")))
            .unwrap();
        assert_eq!(resp.headers()["x-one"], "1");
        assert_eq!(resp.headers()["x-two"], "deux");
    }

    pub fn version_is_http11_on_plain_http(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/get"))).unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_11);
        assert_eq!(resp.backend(), fx.kind);
    }

    // --- bodies ------------------------------------------------------------------------------

    pub fn text_body(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/small"))).unwrap();
        assert_eq!(resp.text().unwrap(), "Hello, World!");
    }

    pub fn text_honours_the_declared_charset(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        for (label, words, quoted) in [
            ("utf-8", "café € 日本", "0"),
            ("UTF-8", "café € 日本", "1"),
            ("iso-8859-1", "café €", "0"),
            ("shift_jis", "日本語のテキスト", "0"),
            ("euc-jp", "日本語のテキスト", "1"),
        ] {
            let url = format!("/charset/{label}");
            let mut query = vec![("text", words)];
            if quoted == "1" {
                query.push(("quoted", quoted));
            }
            let resp = s.stream(|c| c.get(fx.url(&url)).query(&query)).unwrap();
            assert_eq!(s.text(resp).unwrap(), words, "{label}");
        }
        let resp = s.stream(|c| c.get(fx.url("/charset/x-nothing"))).unwrap();
        let err = s.text(resp).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body);
        assert!(err.is_decode(), "{err:?}");
        // Bytes not valid in the charset declared.
        let resp = s.stream(|c| c.get(fx.url("/bytes/256"))).unwrap();
        let err = s.text(resp).unwrap_err();
        assert!(err.is_decode(), "{err:?}");
    }

    pub fn json_body(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/json"))).unwrap();
        let v: Value = resp.json().unwrap();
        assert!(v["slideshow"].is_object());
    }

    pub fn invalid_json_is_a_body_error(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let resp = s.stream(|c| c.get(fx.url("/html"))).unwrap();
        let err = s.json(resp).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body);
        assert!(err.is_decode() && !err.is_connect() && err.status().is_none());
        assert_eq!(err.backend(), Some(fx.kind));
    }

    pub fn binary_body_is_exact(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/bytes/70000"))).unwrap();
        assert_eq!(resp.bytes().as_ref(), support::pattern_bytes(70000));
    }

    pub fn chunked_body_is_exact(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/stream-bytes/100000"))).unwrap();
        assert_eq!(resp.bytes().as_ref(), support::pattern_bytes(100000));
    }

    pub fn one_mebibyte_body(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/bytes/1048576"))).unwrap();
        assert_eq!(resp.bytes().len(), 1048576);
        assert_eq!(resp.bytes().as_ref(), support::pattern_bytes(1048576));
    }

    /// What a progress callback reported: (received, total) per call.
    type ProgressLog = std::sync::Arc<std::sync::Mutex<Vec<(u64, Option<u64>)>>>;

    /// Collects what a progress callback reports.
    fn progress_log() -> (
        ProgressLog,
        impl Fn(u64, Option<u64>) + Send + Sync + 'static,
    ) {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        (log, move |received, total| {
            sink.lock().unwrap().push((received, total))
        })
    }

    pub fn progress_counts_up_to_the_declared_length(fx: &Fx) {
        let (log, report) = progress_log();
        let resp = fx
            .go(|c| c.get(fx.url("/bytes/1048576")).on_progress(report))
            .unwrap();
        assert_eq!(resp.bytes().len(), 1048576);
        let log = log.lock().unwrap();
        assert!(
            log.windows(2).all(|w| w[0].0 <= w[1].0),
            "went back: {log:?}"
        );
        assert!(log.iter().all(|&(_, t)| t == Some(1048576)), "{log:?}");
        assert_eq!(log.last(), Some(&(1048576, Some(1048576))));
    }

    pub fn progress_of_a_chunked_body_has_no_total(fx: &Fx) {
        let (log, report) = progress_log();
        fx.go(|c| c.get(fx.url("/stream-bytes/100000")).on_progress(report))
            .unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.last(), Some(&(100000, None)), "{log:?}");
    }

    // --- status codes ------------------------------------------------------------------------

    pub fn no_content_204(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/status/204"))).unwrap();
        assert_eq!(resp.status(), 204);
        assert!(resp.bytes().is_empty());
    }

    pub fn client_errors_are_responses(fx: &Fx) {
        for code in [400, 404, 418, 429] {
            let resp = fx
                .go(|c| c.get(fx.url(&format!("/status/{code}"))))
                .unwrap();
            assert_eq!(resp.status(), code);
        }
    }

    pub fn server_errors_are_responses(fx: &Fx) {
        for code in [500, 502, 503, 504] {
            let resp = fx
                .go(|c| c.get(fx.url(&format!("/status/{code}"))))
                .unwrap();
            assert_eq!(resp.status(), code);
        }
    }

    pub fn error_for_status_turns_4xx_5xx_into_errors(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let err = match s.stream(|c| c.get(fx.url("/status/503"))).unwrap() {
            Streamed::Async(r) => r.error_for_status().unwrap_err(),
            Streamed::Blocking(r) => r.error_for_status().unwrap_err(),
        };
        assert_eq!(
            err.kind(),
            ErrorKind::Status(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!err.is_decode() && !err.is_connect());
        assert_eq!(err.backend(), Some(fx.kind));
        assert!(err.url().unwrap().to_string().ends_with("/status/503"));
        match s.stream(|c| c.get(fx.url("/status/200"))).unwrap() {
            Streamed::Async(r) => assert!(r.error_for_status().is_ok()),
            Streamed::Blocking(r) => assert!(r.error_for_status().is_ok()),
        }
    }

    pub fn not_modified_without_location_is_returned(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/status/304"))).unwrap();
        assert_eq!(resp.status(), 304);
    }

    // --- redirects ---------------------------------------------------------------------------

    pub fn relative_redirects_are_followed(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/redirect/3"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.url().to_string(), fx.url("/get"));
        assert_eq!(fx.server.requests_seen(), 4);
    }

    pub fn absolute_redirects_are_followed(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/absolute-redirect/2"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.url().to_string(), fx.url("/get"));
    }

    pub fn redirect_limit_exceeded(fx: &Fx) {
        let config = fx.config().max_redirects(2);
        let err = fx
            .run(&config, |c| c.get(fx.url("/redirect/5")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
        assert_eq!(fx.server.requests_seen(), 3);
    }

    pub fn redirect_within_limit(fx: &Fx) {
        let config = fx.config().max_redirects(3);
        let resp = fx.run(&config, |c| c.get(fx.url("/redirect/3"))).unwrap();
        assert_eq!(resp.status(), 200);
    }

    pub fn zero_max_redirects_returns_the_3xx(fx: &Fx) {
        let config = fx.config().max_redirects(0);
        let resp = fx.run(&config, |c| c.get(fx.url("/redirect/2"))).unwrap();
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "/redirect/1");
        assert_eq!(fx.server.requests_seen(), 1);
    }

    pub fn per_request_redirect_options_override_the_client(fx: &Fx) {
        let config = fx.config().max_redirects(1);
        let resp = fx
            .run(&config, |c| c.get(fx.url("/redirect/3")).max_redirects(3))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let err = fx
            .run(&config, |c| {
                c.get(fx.url("/redirect/3")).follow_redirects(true)
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
        let resp = fx
            .go(|c| c.get(fx.url("/redirect/2")).follow_redirects(false))
            .unwrap();
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "/redirect/1");
    }

    pub fn see_other_303_turns_post_into_get(fx: &Fx) {
        let target = fx.url("/anything/after");
        let resp = fx
            .go(|c| {
                c.post(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str()), ("status_code", "303")])
                    .body("payload")
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["method"], "GET");
        assert_eq!(v["data"], "");
        assert_eq!(
            fx.server.last_request().unwrap().header("content-length"),
            None
        );
    }

    pub fn found_302_turns_post_into_get(fx: &Fx) {
        let target = fx.url("/anything/after");
        let resp = fx
            .go(|c| {
                c.post(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str()), ("status_code", "302")])
                    .body("payload")
            })
            .unwrap();
        assert_eq!(json(&resp)["method"], "GET");
    }

    pub fn temporary_307_keeps_method_and_body(fx: &Fx) {
        let target = fx.url("/anything/after");
        let resp = fx
            .go(|c| {
                c.post(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str()), ("status_code", "307")])
                    .body("payload")
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["data"], "payload");
    }

    pub fn permanent_308_keeps_method_and_body(fx: &Fx) {
        let target = fx.url("/anything/after");
        let resp = fx
            .go(|c| {
                c.put(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str()), ("status_code", "308")])
                    .body("payload")
            })
            .unwrap();
        let v = json(&resp);
        assert_eq!(v["method"], "PUT");
        assert_eq!(v["data"], "payload");
    }

    pub fn moved_301_keeps_get(fx: &Fx) {
        let target = fx.url("/get?after=1");
        let resp = fx
            .go(|c| {
                c.get(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str()), ("status_code", "301")])
            })
            .unwrap();
        assert_eq!(json(&resp)["args"]["after"], "1");
        assert_eq!(resp.url().to_string(), target);
    }

    pub fn redirect_to_other_host_drops_credentials(fx: &Fx) {
        // Same server, other host name: another origin.
        let target = format!("http://localhost:{}/headers", fx.server.addr().port());
        let resp = fx
            .go(|c| {
                c.get(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str())])
                    .basic_auth("user", "secret")
                    .header("cookie", "session=1")
                    .header("x-keep", "1")
            })
            .unwrap();
        let v = json(&resp);
        assert!(v["headers"]["authorization"].is_null(), "{v}");
        assert!(v["headers"]["cookie"].is_null(), "{v}");
        assert_eq!(v["headers"]["x-keep"], "1");
    }

    pub fn default_credentials_stay_behind_on_a_cross_origin_redirect(fx: &Fx) {
        let target = format!("http://localhost:{}/headers", fx.server.addr().port());
        let config = fx
            .config()
            .basic_auth("user", "secret")
            .default_header("cookie", "session=1")
            .default_header("x-keep", "1");
        let resp = fx
            .run(&config, |c| {
                c.get(fx.url("/redirect-to"))
                    .query(&[("url", target.as_str())])
            })
            .unwrap();
        let v = json(&resp);
        assert!(v["headers"]["authorization"].is_null(), "{v}");
        assert!(v["headers"]["cookie"].is_null(), "{v}");
        assert_eq!(v["headers"]["x-keep"], "1");
        let first = &fx.server.requests()[0];
        assert!(
            first.header("authorization").is_some(),
            "sent to the first origin"
        );
    }

    pub fn redirect_to_same_origin_keeps_credentials(fx: &Fx) {
        let resp = fx
            .go(|c| c.get(fx.url("/redirect/1")).basic_auth("user", "secret"))
            .unwrap();
        let seen = fx.server.last_request().unwrap();
        assert_eq!(resp.status(), 200);
        assert!(seen.header("authorization").unwrap().starts_with("Basic "));
    }

    pub fn redirect_to_unsupported_scheme_is_a_redirect_error(fx: &Fx) {
        let err = fx
            .go(|c| {
                c.get(fx.url("/redirect-to"))
                    .query(&[("url", "ftp://example.invalid/x")])
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
        assert_eq!(fx.server.requests_seen(), 1);
    }

    // --- decompression -----------------------------------------------------------------------

    pub fn gzip_is_decoded(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/gzip"))).unwrap();
        assert_eq!(json(&resp)["gzipped"], true);
        assert!(resp.headers().get("content-encoding").is_none());
    }

    pub fn deflate_is_decoded(fx: &Fx) {
        let resp = fx.go(|c| c.get(fx.url("/deflate"))).unwrap();
        assert_eq!(json(&resp)["deflated"], true);
    }

    /// `br` and `zstd`, each with its feature: decoded, and advertised exactly when enabled.
    pub fn brotli_and_zstd_are_decoded_when_enabled(fx: &Fx) {
        for (path, flag, enabled) in [
            ("/brotli", "brotli", cfg!(feature = "brotli")),
            ("/zstd", "zstd", cfg!(feature = "zstd")),
        ] {
            let resp = fx.go(|c| c.get(fx.url(path))).unwrap();
            if enabled {
                assert_eq!(json(&resp)[flag], true, "{path}");
                assert!(resp.headers().get("content-encoding").is_none());
            } else {
                // A coding httpfleet does not decode comes as it was sent.
                assert!(resp.headers().get("content-encoding").is_some(), "{path}");
            }
            let seen = fx.server.last_request().unwrap();
            assert_eq!(seen.header("accept-encoding"), Some(ACCEPT_ENCODING));
        }
    }

    pub fn decompress_off_returns_raw_bytes(fx: &Fx) {
        let config = fx.config().decompress(false);
        let resp = fx.run(&config, |c| c.get(fx.url("/gzip"))).unwrap();
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        assert_eq!(&resp.bytes()[..2], &[0x1f, 0x8b]);
        let seen = fx.server.last_request().unwrap();
        assert_eq!(seen.header("accept-encoding"), None);
    }

    // --- limits ------------------------------------------------------------------------------

    pub fn body_over_limit_is_body_too_large(fx: &Fx) {
        let config = fx.config().max_response_bytes(1000);
        let err = fx
            .run(&config, |c| c.get(fx.url("/bytes/5000")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
        let err = fx
            .run(&config, |c| c.get(fx.url("/stream-bytes/5000")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
    }

    pub fn body_at_limit_is_fine(fx: &Fx) {
        let config = fx.config().max_response_bytes(1000);
        let resp = fx.run(&config, |c| c.get(fx.url("/bytes/1000"))).unwrap();
        assert_eq!(resp.bytes().len(), 1000);
    }

    pub fn limit_applies_to_the_decoded_size(fx: &Fx) {
        let raw = fx
            .run(&fx.config().decompress(false), |c| c.get(fx.url("/gzip")))
            .unwrap();
        let decoded = fx.go(|c| c.get(fx.url("/gzip"))).unwrap();
        let (raw, decoded) = (raw.bytes().len() as u64, decoded.bytes().len() as u64);
        assert!(raw < decoded, "{raw} < {decoded}");
        let config = fx.config().max_response_bytes(raw.max(decoded - 1));
        let err = fx.run(&config, |c| c.get(fx.url("/gzip"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
    }

    // --- auth --------------------------------------------------------------------------------

    pub fn basic_auth_from_request(fx: &Fx) {
        let resp = fx
            .go(|c| {
                c.get(fx.url("/basic-auth/alice/wonder"))
                    .basic_auth("alice", "wonder")
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(json(&resp)["user"], "alice");
    }

    pub fn basic_auth_wrong_password_is_401(fx: &Fx) {
        let resp = fx
            .go(|c| {
                c.get(fx.url("/basic-auth/alice/wonder"))
                    .basic_auth("alice", "nope")
            })
            .unwrap();
        assert_eq!(resp.status(), 401);
    }

    pub fn basic_auth_from_config(fx: &Fx) {
        let config = fx.config().basic_auth("bob", "builder");
        let resp = fx
            .run(&config, |c| c.get(fx.url("/basic-auth/bob/builder")))
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    pub fn basic_auth_from_url_credentials(fx: &Fx) {
        let url = format!(
            "http://carol:p%40ss@127.0.0.1:{}/basic-auth/carol/p@ss",
            fx.server.addr().port()
        );
        let resp = fx.go(|c| c.get(&url)).unwrap();
        assert_eq!(resp.status(), 200);
        let authority = resp.url().authority().unwrap().as_str();
        assert_eq!(authority, format!("127.0.0.1:{}", fx.server.addr().port()));
    }

    // --- timeouts ----------------------------------------------------------------------------

    pub fn slow_headers_time_out_in_headers_phase(fx: &Fx) {
        let config = fx.config().timeout(Duration::from_millis(400));
        fx.times_out(
            &config,
            TimeoutPhase::Headers,
            Duration::from_millis(1900),
            |c| c.get(fx.url("/delay/3000")),
        );
    }

    pub fn slow_body_times_out_in_body_phase(fx: &Fx) {
        let config = fx.config().timeout(Duration::from_millis(600));
        fx.times_out(
            &config,
            TimeoutPhase::Body,
            Duration::from_millis(2100),
            |c| c.get(fx.url("/drip?bytes=20&duration_ms=4000")),
        );
    }

    pub fn request_timeout_overrides_config(fx: &Fx) {
        let start = Instant::now();
        let err = fx
            .go(|c| {
                c.get(fx.url("/delay/3000"))
                    .timeout(Duration::from_millis(300))
            })
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(start.elapsed() < Duration::from_millis(1800));
        let resp = fx
            .go(|c| c.get(fx.url("/delay/50")).timeout(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    // --- connection --------------------------------------------------------------------------

    pub fn resolve_sends_a_name_to_the_given_address(fx: &Fx) {
        let port = fx.server.addr().port();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = fx.config().resolve("Fleet-Resolve.test", [loopback]);
        let url = format!("http://fleet-resolve.test:{port}/get");
        let resp = fx.run(&config, |c| c.get(&url)).unwrap();
        assert_eq!(resp.status(), 200);
        let seen = fx.server.last_request().unwrap();
        assert_eq!(
            seen.header_all("host").join(","),
            format!("fleet-resolve.test:{port}")
        );
        // Another name is still looked up, and `.test` names do not exist.
        let err = fx
            .run(&config, |c| {
                c.get(format!("http://other-name.test:{port}/get"))
            })
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
    }

    /// `Config::resolver` is asked for every name a connection goes to, but for names of
    /// `resolve` and addresses; a name it cannot resolve is a `Dns` error.
    pub fn a_configured_resolver_is_asked_for_names(fx: &Fx) {
        use httpfleet::dns::{Resolve, Resolver, Resolving};
        struct Book(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl Resolve for Book {
            fn resolve(&self, host: &str) -> Resolving {
                self.0.lock().unwrap().push(host.to_owned());
                let found = match host {
                    "book.test" => Ok(vec!["127.0.0.1".parse().unwrap()]),
                    _ => Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such name",
                    )),
                };
                Box::pin(std::future::ready(found))
            }
        }
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let port = fx.server.addr().port();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = fx
            .config()
            .resolver(Some(Resolver::new(Book(asked.clone()))))
            .resolve("pinned.test", [loopback]);
        for host in ["book.test", "pinned.test", "127.0.0.1"] {
            let url = format!("http://{host}:{port}/get");
            let resp = fx.run(&config, |c| c.get(&url)).unwrap();
            assert_eq!(resp.status(), 200, "{host}");
            let seen = fx.server.last_request().unwrap();
            assert_eq!(seen.header_all("host").join(","), format!("{host}:{port}"));
        }
        assert_eq!(asked.lock().unwrap().as_slice(), ["book.test"]);
        let err = fx
            .run(&config, |c| {
                c.get(format!("http://nowhere.test:{port}/get"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dns, "{err:?}");
        assert!(asked.lock().unwrap().contains(&"nowhere.test".to_owned()));
    }

    pub fn local_address_is_where_connections_come_from(fx: &Fx) {
        let from: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let config = fx.config().local_address(Some(from));
        if fx.kind == BackendKind::Ureq {
            let err = httpfleet::Backend::from_config(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported);
            assert_eq!(err.backend(), Some(BackendKind::Ureq));
            nothing_sent(fx, err, ErrorKind::Unsupported);
            unsupported("local_address_is_where_connections_come_from", fx.kind);
            return;
        }
        let v = json(&fx.run(&config, |c| c.get(fx.url("/get"))).unwrap());
        assert_eq!(v["origin"], "127.0.0.2");
        let v = json(&fx.go(|c| c.get(fx.url("/get"))).unwrap());
        assert_eq!(v["origin"], "127.0.0.1");
    }

    /// Through a proxy that is not there: what goes through it fails with `Proxy`, what
    /// `no_proxy` names goes direct, for an HTTP and a SOCKS5 proxy alike.
    pub fn no_proxy_hosts_go_direct_and_the_rest_through_the_proxy(fx: &Fx) {
        let port = fx.server.addr().port();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for dead in ["http://127.0.0.1:9", "socks5h://127.0.0.1:9"] {
            let base = fx
                .config()
                .proxy(dead)
                .resolve("api.fleet-direct.test", [loopback])
                .resolve("no-proxy-env.test", [loopback]);
            let direct = format!("http://127.0.0.1:{port}/get");
            let err = fx.run(&base, |c| c.get(&direct)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Proxy, "{dead}: {err:?}");
            for rule in ["127.0.0.1", "127.0.0.0/8", "*", "localhost, 127.0.0.1"] {
                let rules: Vec<&str> = rule.split(", ").collect();
                let config = base.clone().no_proxy(rules);
                let resp = fx.run(&config, |c| c.get(&direct)).unwrap();
                assert_eq!(resp.status(), 200, "{dead} with no_proxy {rule}");
            }
            let suffix = base.clone().no_proxy(["fleet-direct.test"]);
            let resp = fx
                .run(&suffix, |c| {
                    c.get(format!("http://api.fleet-direct.test:{port}/get"))
                })
                .unwrap();
            assert_eq!(resp.status(), 200, "{dead}: a name under a no_proxy domain");
            let err = fx.run(&suffix, |c| c.get(&direct)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Proxy, "{dead}: {err:?}");
            // `NO_PROXY` of the environment counts only with proxy_from_env.
            let err = fx
                .run(&base, |c| {
                    c.get(format!("http://no-proxy-env.test:{port}/get"))
                })
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Proxy, "{dead}: {err:?}");
        }
    }

    /// With `proxy_from_env`, the environment's (dead) proxies are used, and `NO_PROXY` too.
    pub fn proxy_from_env_honours_no_proxy(fx: &Fx) {
        let port = fx.server.addr().port();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = fx
            .config()
            .proxy_from_env(true)
            .resolve("no-proxy-env.test", [loopback]);
        let resp = fx
            .run(&config, |c| {
                c.get(format!("http://no-proxy-env.test:{port}/get"))
            })
            .unwrap();
        assert_eq!(resp.status(), 200);
        let err = fx
            .run(&config, |c| c.get(format!("http://127.0.0.1:{port}/get")))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{err:?}");
    }

    /// `tcp_keepalive` arms the kernel's keepalive timer on the client's socket (seen in
    /// `/proc/net/tcp`, idle time included); without it no backend arms one (reqwest's own 15 s
    /// default never applies). ureq cannot set it and refuses it when built.
    pub fn tcp_keepalive_arms_the_socket_timer_or_is_refused(fx: &Fx) {
        let idle = Duration::from_secs(45);
        let config = fx.config().tcp_keepalive(Some(idle));
        if fx.kind == BackendKind::Ureq {
            let err = httpfleet::Backend::from_config(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported);
            unsupported("tcp_keepalive_arms_the_socket_timer_or_is_refused", fx.kind);
        } else {
            let s = fx.session(&config).unwrap();
            let port = json(&s.run(|c| c.get(fx.url("/peer"))).unwrap())["port"].clone();
            let (timer, seconds) = socket_timer(port.as_u64().unwrap() as u16).unwrap();
            assert_eq!(timer, 2, "the keepalive timer");
            assert!(
                (40..=45).contains(&seconds),
                "{seconds} s to the first probe"
            );
        }
        let s = fx.session(&fx.config()).unwrap();
        let port = json(&s.run(|c| c.get(fx.url("/peer"))).unwrap())["port"].clone();
        let (timer, _) = socket_timer(port.as_u64().unwrap() as u16).unwrap();
        assert_eq!(timer, 0, "no timer on an idle socket without keepalive");
    }

    /// `cookies`: what a server sets is sent back, on later requests and on redirects, within
    /// its path, domain, `Secure` and expiry; a jar given to two clients is shared; the caller's
    /// own `Cookie` header wins; off by default.
    pub fn cookies_are_kept_across_requests_and_redirects(fx: &Fx) {
        let cookies = |got: &Got| json(got)["cookies"].clone();
        // Off by default: the redirect's cookie is not sent on.
        let got = fx.go(|c| c.get(fx.url("/cookies/set?off=1"))).unwrap();
        assert_eq!(cookies(&got), serde_json::json!({}));
        let config = fx.config().cookies(true);
        #[cfg(not(feature = "cookies"))]
        {
            let err = httpfleet::Client::from_config(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Builder);
        }
        #[cfg(feature = "cookies")]
        cookie_rules(fx, &config, cookies);
    }

    #[cfg(feature = "cookies")]
    fn cookie_rules(fx: &Fx, config: &Config, cookies: impl Fn(&Got) -> Value) {
        // A name, not loopback: cookie_store counts http://127.0.0.1 as a secure origin.
        let port = fx.server.addr().port();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = config.clone().resolve("cookies.test", [loopback]);
        let url = |path: &str| format!("http://cookies.test:{port}{path}");
        let s = fx.session(&config).unwrap();
        // Set on a 302, sent on the hop it leads to, and on the next request.
        let got = s.run(|c| c.get(url("/cookies/set?a=1&b=2"))).unwrap();
        assert_eq!(cookies(&got), serde_json::json!({"a": "1", "b": "2"}));
        let got = s.run(|c| c.get(url("/cookies"))).unwrap();
        assert_eq!(cookies(&got), serde_json::json!({"a": "1", "b": "2"}));
        let set = |line: &str| {
            let to = url(&format!("/set-cookie?line={}", query_encode(line)));
            assert_eq!(s.run(|c| c.get(&to)).unwrap().status(), 200, "{line}");
        };
        set("p=1; Path=/only");
        set("s=1; Secure");
        set("d=1; Domain=other.test");
        set("a=gone; Max-Age=0");
        let got = s.run(|c| c.get(url("/cookies"))).unwrap();
        assert_eq!(
            cookies(&got),
            serde_json::json!({"b": "2"}),
            "path, secure, domain, expiry"
        );
        s.run(|c| c.get(url("/only/x"))).unwrap();
        let seen = fx.server.last_request().unwrap();
        assert_eq!(
            seen.header("cookie"),
            Some("p=1; b=2"),
            "longer paths first"
        );
        // The caller's own header wins.
        let got = s
            .run(|c| c.get(url("/cookies")).header("cookie", "mine=1"))
            .unwrap();
        assert_eq!(cookies(&got), serde_json::json!({"mine": "1"}));
        // Another host gets none, even through a redirect.
        let elsewhere = format!("http://127.0.0.1:{port}/cookies");
        let got = s
            .run(|c| c.get(url(&format!("/redirect-to?url={elsewhere}"))))
            .unwrap();
        assert_eq!(cookies(&got), serde_json::json!({}));
        // One jar, two clients.
        let jar = httpfleet::CookieJar::new();
        let plain = fx.config().resolve("cookies.test", [loopback]);
        let one = fx.session(&plain).unwrap().with_cookie_jar(jar.clone());
        let two = fx.session(&plain).unwrap().with_cookie_jar(jar.clone());
        one.run(|c| c.get(url("/cookies/set?shared=yes"))).unwrap();
        let got = two.run(|c| c.get(url("/cookies"))).unwrap();
        assert_eq!(cookies(&got), serde_json::json!({"shared": "yes"}));
        assert_eq!(
            jar.cookies_for(&url("/")),
            [("shared".to_owned(), "yes".to_owned())]
        );
    }

    /// A multipart form of a text field, a file streamed from disk and bytes goes on the wire
    /// byte for byte as RFC 7578 lays it out, with `Content-Length`, and again after a 307.
    #[cfg(feature = "multipart")]
    pub fn multipart_form_sends_text_and_files_exactly(fx: &Fx) {
        use httpfleet::multipart::{Form, Part};
        let path = std::env::temp_dir().join(format!(
            "httpfleet-multipart-{}-{:?}-{:?}.csv",
            std::process::id(),
            fx.kind,
            fx.surface
        ));
        let content: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let form = || {
            Form::new()
                .text("sym\"bol", "BTCUSDT")
                .file("rows", &path)
                .unwrap()
                .part(
                    "raw",
                    Part::bytes(vec![0u8, 255])
                        .file_name("r.bin")
                        .mime("application/x-raw"),
                )
        };
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = |b: &str| {
            let mut e = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"sym%22bol\"\r\n\r\nBTCUSDT\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"rows\"; filename=\"{file_name}\"\r\n\
                 Content-Type: text/csv\r\n\r\n"
            )
            .into_bytes();
            e.extend(&content);
            e.extend(
                format!(
                    "\r\n--{b}\r\nContent-Disposition: form-data; name=\"raw\"; filename=\"r.bin\"\r\n\
                     Content-Type: application/x-raw\r\n\r\n"
                )
                .bytes(),
            );
            e.extend([0u8, 255]);
            e.extend(format!("\r\n--{b}--\r\n").bytes());
            e
        };
        for target in ["/post", "/redirect-to?url=/post&status_code=307"] {
            let f = form();
            let boundary = f.boundary().to_owned();
            let got = fx.go(|c| c.post(fx.url(target)).multipart(f)).unwrap();
            assert_eq!(got.status(), 200, "{target}");
            let seen = fx.server.last_request().unwrap();
            assert_eq!(
                seen.header("content-type"),
                Some(format!("multipart/form-data; boundary={boundary}").as_str())
            );
            assert!(
                seen.body == expected(&boundary),
                "{target}: the wire differs"
            );
            assert_eq!(
                seen.header("content-length"),
                Some(seen.body.len().to_string().as_str())
            );
        }
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(not(feature = "multipart"))]
    pub fn multipart_form_sends_text_and_files_exactly(_: &Fx) {}

    /// `Response::timings`: the time to the head (a 300 ms delay, a redirect included), then,
    /// once the body has been read to its end, the time to it (a body dripped over 300 ms).
    pub fn timings_measure_the_head_and_the_body_end(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        let ms = Duration::from_millis;
        let started = Instant::now();
        let mut resp = s
            .stream(|c| c.get(fx.url("/redirect-to?url=/delay/300")))
            .unwrap();
        let t = resp.timings();
        assert!(
            t.first_byte >= ms(300) && t.first_byte <= started.elapsed(),
            "{t:?}"
        );
        assert_eq!(t.total, None, "the body is not read yet");
        while s.chunk(&mut resp).unwrap().is_some() {}
        let t = resp.timings();
        assert!(t.total.unwrap() >= t.first_byte, "{t:?}");
        let mut resp = s
            .stream(|c| c.get(fx.url("/drip?bytes=10&duration_ms=300")))
            .unwrap();
        let head = resp.timings().first_byte;
        while s.chunk(&mut resp).unwrap().is_some() {}
        let t = resp.timings();
        assert!(t.total.unwrap() >= head + ms(250), "{t:?}");
        assert!(t.total.unwrap() <= started.elapsed(), "{t:?}");
    }

    /// The phases of opening a connection, where the backend can tell them (curl, hyper): a
    /// new connection to an address has its connect time and no lookup or TLS, to a name its
    /// lookup too; a reused one has none. reqwest and ureq tell none.
    pub fn timings_tell_how_a_new_connection_opened(fx: &Fx) {
        let phases = |t: httpfleet::Timings| (t.dns, t.connect, t.tls);
        let tells = matches!(fx.kind, BackendKind::Curl | BackendKind::Hyper);
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let config = fx.config().resolve("phases.test", [loopback]);
        let s = fx.session(&config).unwrap();
        let named = format!("http://phases.test:{}/get", fx.server.addr().port());
        for (url, lookup) in [(fx.url("/get"), false), (named, true)] {
            let mut first = s.stream(|c| c.get(&url)).unwrap();
            let t = first.timings();
            while s.chunk(&mut first).unwrap().is_some() {}
            let mut again = s.stream(|c| c.get(&url)).unwrap();
            let reused = again.timings();
            while s.chunk(&mut again).unwrap().is_some() {}
            assert_eq!(
                phases(reused),
                (None, None, None),
                "{url} reused: {reused:?}"
            );
            assert_eq!(t.tls, None, "{url}: {t:?}");
            assert_eq!(t.dns.is_some(), tells && lookup, "{url}: {t:?}");
            assert_eq!(t.connect.is_some(), tells, "{url}: {t:?}");
            let opening = t.dns.unwrap_or_default() + t.connect.unwrap_or_default();
            assert!(opening <= t.first_byte, "{url}: {t:?}");
        }
    }

    /// `pool.max_connections_per_host(1)`: while a response's body is still coming, a second
    /// request to its host waits (past its deadline: `Timeout(Headers)`), another host does not;
    /// the body read to its end, or the response dropped, frees the host again.
    pub fn max_connections_per_host_makes_requests_wait_their_turn(fx: &Fx) {
        let config = fx.config().pool_max_connections_per_host(Some(1));
        let s = fx.session(&config).unwrap();
        let port = fx.server.addr().port();
        let slow = fx.url("/drip?bytes=10&duration_ms=400");
        let mut held = s.stream(|c| c.get(&slow)).unwrap();
        let started = Instant::now();
        let err = s
            .run(|c| c.get(fx.url("/get")).timeout(Duration::from_millis(300)))
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Timeout(TimeoutPhase::Headers),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(280));
        let other = format!("http://localhost:{port}/get");
        assert_eq!(s.run(|c| c.get(&other)).unwrap().status(), 200);
        while s.chunk(&mut held).unwrap().is_some() {}
        assert_eq!(s.run(|c| c.get(fx.url("/get"))).unwrap().status(), 200);
        let held = s.stream(|c| c.get(&slow)).unwrap();
        drop(held);
        let started = Instant::now();
        assert_eq!(s.run(|c| c.get(fx.url("/get"))).unwrap().status(), 200);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "the dropped one freed it"
        );
    }

    pub fn refused_connection_is_connect_error(fx: &Fx) {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/get");
        let err = fx.go(|c| c.get(&url)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
        assert!(err.is_retryable());
        assert!(err.is_connect() && !err.is_decode() && err.status().is_none());
        assert_eq!(err.backend(), Some(fx.kind));
        assert_eq!(err.url().unwrap().to_string(), url);
        assert!(
            std::error::Error::source(&err).is_some(),
            "backend error kept as source"
        );
    }

    pub fn sequential_requests_reuse_one_connection(fx: &Fx) {
        let s = fx.session(&fx.config()).unwrap();
        for _ in 0..5 {
            s.run(|c| c.get(fx.url("/small"))).unwrap();
        }
        assert_eq!(fx.server.requests_seen(), 5);
        assert_eq!(fx.server.connections_accepted(), 1);
    }

    pub fn error_display_says_what_and_where(fx: &Fx) {
        let config = fx.config().timeout(Duration::from_millis(200));
        let err = fx
            .run(&config, |c| c.get(fx.url("/delay/2000")))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("timed out"), "{text}");
        assert!(text.contains(fx.kind.as_str()), "{text}");
        assert!(text.contains("/delay/2000"), "{text}");
    }

    // --- bad input: a typed error before any I/O, and the server sees nothing ---------------

    fn nothing_sent(fx: &Fx, err: httpfleet::Error, expected: ErrorKind) {
        assert_eq!(err.kind(), expected, "{err:?}");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(fx.server.requests_seen(), 0);
        assert_eq!(fx.server.connections_accepted(), 0);
    }

    pub fn unsupported_scheme_is_invalid_url(fx: &Fx) {
        let url = format!("ftp://127.0.0.1:{}/get", fx.server.addr().port());
        let err = fx.go(|c| c.get(&url)).unwrap_err();
        nothing_sent(fx, err, ErrorKind::InvalidUrl);
    }

    pub fn url_without_host_is_invalid_url(fx: &Fx) {
        let err = fx.go(|c| c.get("http:///get")).unwrap_err();
        nothing_sent(fx, err, ErrorKind::InvalidUrl);
        let err = fx.go(|c| c.get("/relative/only")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
    }

    pub fn crlf_in_url_is_builder_error(fx: &Fx) {
        let url = fx.url("/get\r\nX-Injected: 1");
        let err = fx.go(|c| c.get(&url)).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn nul_in_url_is_builder_error(fx: &Fx) {
        let url = fx.url("/get\0x");
        let err = fx.go(|c| c.get(&url)).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn crlf_in_header_value_is_builder_error(fx: &Fx) {
        let err = fx
            .go(|c| c.get(fx.url("/get")).header("x-a", "1\r\nX-Injected: 1"))
            .unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn lf_in_header_value_is_builder_error(fx: &Fx) {
        let err = fx
            .go(|c| c.get(fx.url("/get")).header("x-a", "1\nX-Injected: 1"))
            .unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn nul_in_header_value_is_builder_error(fx: &Fx) {
        let err = fx
            .go(|c| c.get(fx.url("/get")).header("x-a", "a\0b"))
            .unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn crlf_in_header_name_is_builder_error(fx: &Fx) {
        let err = fx
            .go(|c| c.get(fx.url("/get")).header("x-a\r\nx-b", "1"))
            .unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn crlf_in_default_header_is_builder_error(fx: &Fx) {
        let config = fx.config().default_header("x-a", "1\r\nX-Injected: 1");
        let err = fx.run(&config, |c| c.get(fx.url("/get"))).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn invalid_method_is_builder_error(fx: &Fx) {
        let err = fx.go(|c| c.request("GE T", fx.url("/get"))).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
        let err = fx.go(|c| c.request("", fx.url("/get"))).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn zero_timeout_config_is_builder_error(fx: &Fx) {
        let err =
            httpfleet::Backend::from_config(&fx.config().timeout(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder);
        let err = Client::from_config(&fx.config().connect_timeout(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder);
        let err =
            Config::from_toml_str(&format!("backend = \"{}\"\ntimeout = -1", fx.kind)).unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn zero_request_timeout_is_builder_error(fx: &Fx) {
        let err = fx
            .go(|c| c.get(fx.url("/get")).timeout(Duration::ZERO))
            .unwrap_err();
        nothing_sent(fx, err, ErrorKind::Builder);
    }

    pub fn http2_requirement_is_honoured_or_refused(fx: &Fx) {
        let config = fx.config().http_version(httpfleet::HttpVersion::Http2);
        match fx.kind {
            BackendKind::Ureq => {
                let err = httpfleet::Backend::from_config(&config).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Unsupported);
                assert_eq!(err.backend(), Some(BackendKind::Ureq));
                nothing_sent(fx, err, ErrorKind::Unsupported);
                unsupported("http2_requirement_is_honoured_or_refused", fx.kind);
            }
            _ => {
                // Prior knowledge over plain TCP: the test server speaks h2c.
                let resp = fx.run(&config, |c| c.get(fx.url("/get"))).unwrap();
                assert_eq!(resp.version(), http::Version::HTTP_2);
                assert_eq!(fx.server.last_request().unwrap().version, "HTTP/2.0");
            }
        }
    }

    pub fn http1_only_speaks_http11(fx: &Fx) {
        let config = fx.config().http_version(httpfleet::HttpVersion::Http1);
        let resp = fx.run(&config, |c| c.get(fx.url("/get"))).unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_11);
    }

    pub fn invalid_ca_file_is_builder_error(fx: &Fx) {
        let config = fx.config().tls_ca_file("/nonexistent/ca.pem");
        let err = httpfleet::Backend::from_config(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder);
    }

    // --- hardening: secure defaults, numbers that cannot panic, secrets that stay secret --

    /// `TlsConfig::default()` keeps certificate checking on, as its documentation says: a
    /// config given it refuses a certificate for another host.
    pub fn default_tls_config_verifies_certificates(fx: &Fx) {
        assert!(httpfleet::TlsConfig::default().verify);
        let server = FaultServer::start(Fault::TlsWrongHost);
        let config = fx.config().tls(httpfleet::TlsConfig::default());
        let err = fx.run(&config, |c| c.get(server.url("/"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
        assert_eq!(
            server.requests(),
            0,
            "a request went over an unverified TLS"
        );
    }

    /// A port past 65535 is an `InvalidUrl` before any I/O: neither the scheme's default port
    /// nor the port's remainder (this server's) is connected to.
    pub fn port_out_of_range_is_invalid_url(fx: &Fx) {
        let port = u32::from(fx.server.addr().port()) + 65536;
        let url = format!("http://127.0.0.1:{port}/get");
        let err = fx.go(|c| c.get(&url)).unwrap_err();
        nothing_sent(fx, err, ErrorKind::InvalidUrl);
    }

    /// Durations up to `Duration::MAX`, from the builders and from text, are clamped to
    /// `MAX_DURATION`: a request under them is served, and nothing panics.
    pub fn durations_past_any_deadline_are_clamped(fx: &Fx) {
        let max = Duration::MAX;
        let config = fx
            .config()
            .timeout(max)
            .connect_timeout(max)
            .read_timeout(Some(max))
            .pool_idle_timeout(max);
        let resp = fx
            .run(&config, |c| c.get(fx.url("/get")).timeout(max))
            .unwrap();
        assert_eq!(resp.status(), 200);
        let toml = format!(
            "backend = \"{}\"\ntimeout = 1e300\nconnect_timeout = 1.8e19\nread_timeout = \"99999999999999999999h\"\n[pool]\nidle_timeout = 9223372036854775807\n",
            fx.kind
        );
        let parsed = [
            Config::from_toml_str(&toml),
            Config::from_json_str(&format!(
                "{{\"backend\": \"{}\", \"timeout\": 1e300, \"connect_timeout\": \"99999999999999999999999h\"}}",
                fx.kind
            )),
            Config::from_vars(|name| match name {
                "HTTPFLEET_BACKEND" => Some(fx.kind.to_string()),
                "HTTPFLEET_TIMEOUT_MS" | "HTTPFLEET_READ_TIMEOUT_MS" => Some(u64::MAX.to_string()),
                _ => None,
            }),
        ];
        for config in parsed {
            let config = config.unwrap();
            assert_eq!(config.timeout, httpfleet::MAX_DURATION);
            let resp = fx.run(&config, |c| c.get(fx.url("/get"))).unwrap();
            assert_eq!(resp.status(), 200);
        }
        for bad in ["timeout = nan", "timeout = -1e300", "timeout = \"inf\""] {
            let err = Config::from_toml_str(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Builder, "{bad}");
        }
    }

    /// Passwords and tokens never show in an error's `Display` or `Debug`, in its sources, or
    /// in the `Debug` of a config or a request: URLs with user information (valid or not),
    /// proxies with or without a scheme, basic and bearer auth, `Authorization` and
    /// `Proxy-Authorization` headers.
    pub fn secrets_stay_out_of_every_text(fx: &Fx) {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let port = u32::from(fx.server.addr().port());
        let mut texts = Vec::new();
        fn keep(texts: &mut Vec<String>, err: &httpfleet::Error) {
            texts.push(err.to_string());
            texts.push(format!("{err:?}"));
            let mut source = std::error::Error::source(err);
            while let Some(e) = source {
                texts.push(e.to_string());
                texts.push(format!("{e:?}"));
                source = e.source();
            }
        }
        for url in [
            format!("http://carol:hunter2@127.0.0.1:{}/", port + 65536),
            "http://carol:hunter2@127.0.0.1:80:80/".to_owned(),
            "http://carol:hunter2@[::1/".to_owned(),
            format!("http://carol:hunter2@127.0.0.1:{closed}/"),
            format!("carol:hunter2@127.0.0.1:{port}/"),
        ] {
            keep(&mut texts, &fx.go(|c| c.get(&url)).unwrap_err());
        }
        for proxy in [
            format!("dave:hunter2@127.0.0.1:{closed}"),
            format!("http://dave:hunter2@127.0.0.1:{closed}"),
            "http://dave:hunter2@127.0.0.1:99999".to_owned(),
            "dave:hunter2@[::1".to_owned(),
        ] {
            let config = fx.config().proxy(proxy);
            texts.push(format!("{config:?}"));
            match fx.run(&config, |c| c.get(fx.url("/get"))) {
                Ok(resp) => panic!("served through a dead proxy: {resp:?}"),
                Err(err) => keep(&mut texts, &err),
            }
        }
        let config = fx.config().basic_auth("erin", "hunter2");
        texts.push(format!("{config:?}"));
        let s = fx.session(&config).unwrap();
        let err = s
            .run(|c| {
                c.get(format!("http://127.0.0.1:{closed}/"))
                    .bearer_auth("hunter2")
                    .header("proxy-authorization", "Basic aHVudGVyMg==")
            })
            .unwrap_err();
        keep(&mut texts, &err);
        let req = Client::from_config(&config)
            .unwrap()
            .get(fx.url("/get"))
            .basic_auth("frank", "hunter2")
            .header("proxy-authorization", "Basic aHVudGVyMg==")
            .build()
            .unwrap();
        texts.push(format!("{req:?}"));
        for t in &texts {
            for secret in ["hunter2", "aHVudGVyMg"] {
                assert!(!t.contains(secret), "{secret} leaked: {t}");
            }
        }
    }

    /// Proxy credentials with `@ : / % #` in them, percent-encoded in the proxy URL, reach the
    /// proxy exactly as given, on every backend, and never send the connection elsewhere. The
    /// loopback server stands in for the proxy: it records what it is sent (an absolute-form
    /// request, or ureq's CONNECT).
    pub fn proxy_credentials_reach_the_proxy_exactly_as_given(fx: &Fx) {
        let proxy = format!("http://fleet:p%40ss%3Aw%2Frd%2541%23x@{}", fx.server.addr());
        let config = fx.config().proxy(proxy);
        let _ = fx.run(&config, |c| c.get(fx.url("/headers")));
        let seen = fx.server.requests();
        assert!(!seen.is_empty(), "nothing reached the proxy");
        for r in &seen {
            let auth = r
                .header("proxy-authorization")
                .unwrap_or_else(|| panic!("no credentials: {r:?}"));
            let decoded = support::base64_decode(auth.strip_prefix("Basic ").unwrap()).unwrap();
            assert_eq!(
                String::from_utf8(decoded).unwrap(),
                "fleet:p@ss:w/rd%41#x",
                "{r:?}"
            );
        }
    }

    pub fn environment_proxy_is_ignored_by_default(fx: &Fx) {
        // A dead proxy in the environment must not be used unless proxy_from_env is on.
        // (Set once for the whole process: no test enables proxy_from_env.)
        // SAFETY of the test: no other test reads these variables concurrently in a way that
        // matters, since all of them expect the variables to be ignored.
        let resp = fx.go(|c| c.get(fx.url("/get"))).unwrap();
        assert_eq!(resp.status(), 200);
        assert!(std::env::var("http_proxy").is_ok());
    }
}

/// One conformance test: the behaviour, on a fresh server, for one backend and surface.
/// Blocking hyper and reqwest requests share one bridge runtime per process
/// (`src/backend/bridge.rs`), whose tasks run on whichever caller drives it: the test that counts
/// connections runs with no other test using it, since a concurrent user driving the runtime
/// decides when this test's connection goes back to its pool. Every other test on the bridge
/// shares it.
static BRIDGE: std::sync::RwLock<()> = std::sync::RwLock::new(());

type BridgeGuards = (
    Option<std::sync::RwLockWriteGuard<'static, ()>>,
    Option<std::sync::RwLockReadGuard<'static, ()>>,
);

fn on_bridge(name: &str, kind: BackendKind, surface: Surface) -> BridgeGuards {
    let bridged =
        surface == Surface::Blocking && matches!(kind, BackendKind::Hyper | BackendKind::Reqwest);
    let alone = bridged
        && matches!(
            name,
            "sequential_requests_reuse_one_connection"
                | "a_body_read_to_its_end_returns_the_connection_to_the_pool"
                | "a_dropped_response_does_not_return_its_connection"
        );
    let exclusive = alone.then(|| BRIDGE.write().unwrap_or_else(|p| p.into_inner()));
    let shared = (bridged && !alone).then(|| BRIDGE.read().unwrap_or_else(|p| p.into_inner()));
    (exclusive, shared)
}

macro_rules! conformance_case {
    ($name:ident, $kind:expr, $surface:expr) => {{
        crate::set_dead_proxy_env();
        let _bridge = crate::on_bridge(stringify!($name), $kind, $surface);
        behaviour::$name(&Fx::new($kind, $surface));
    }};
}

support::per_backend_tests!(conformance_case;
    progress_counts_up_to_the_declared_length, progress_of_a_chunked_body_has_no_total,
    get_echoes_query_and_headers, query_pairs_are_encoded_and_appended,
    post_sends_json_body, post_sends_form_body, post_sends_raw_bytes_exactly,
    post_without_content_type_sends_none, put_sends_body, patch_sends_body,
    delete_is_sent_as_delete, any_method_by_name, head_has_headers_and_no_body,
    get_after_post_on_same_client_is_a_get, default_user_agent_is_httpfleet,
    user_agent_from_config, default_headers_sent_and_request_headers_win,
    same_headers_on_the_wire_everywhere, repeated_request_headers_are_all_sent,
    without_auto_headers_the_wire_carries_only_the_callers,
    response_headers_are_exposed, version_is_http11_on_plain_http,
    text_body, text_honours_the_declared_charset, json_body, invalid_json_is_a_body_error,
    binary_body_is_exact,
    chunked_body_is_exact, one_mebibyte_body,
    no_content_204, client_errors_are_responses, server_errors_are_responses,
    error_for_status_turns_4xx_5xx_into_errors, not_modified_without_location_is_returned,
    relative_redirects_are_followed, absolute_redirects_are_followed,
    redirect_limit_exceeded, redirect_within_limit, zero_max_redirects_returns_the_3xx,
    per_request_redirect_options_override_the_client, query_and_form_from_any_serialize,
    headers_replace_the_values_of_their_names,
    see_other_303_turns_post_into_get, found_302_turns_post_into_get,
    temporary_307_keeps_method_and_body, permanent_308_keeps_method_and_body,
    moved_301_keeps_get, redirect_to_other_host_drops_credentials,
    default_credentials_stay_behind_on_a_cross_origin_redirect,
    redirect_to_same_origin_keeps_credentials,
    redirect_to_unsupported_scheme_is_a_redirect_error,
    gzip_is_decoded, deflate_is_decoded, brotli_and_zstd_are_decoded_when_enabled,
    decompress_off_returns_raw_bytes,
    body_over_limit_is_body_too_large, body_at_limit_is_fine,
    limit_applies_to_the_decoded_size,
    basic_auth_from_request, basic_auth_wrong_password_is_401, basic_auth_from_config,
    basic_auth_from_url_credentials,
    slow_headers_time_out_in_headers_phase, slow_body_times_out_in_body_phase,
    request_timeout_overrides_config,
    refused_connection_is_connect_error, sequential_requests_reuse_one_connection,
    resolve_sends_a_name_to_the_given_address, a_configured_resolver_is_asked_for_names,
    local_address_is_where_connections_come_from,
    no_proxy_hosts_go_direct_and_the_rest_through_the_proxy, proxy_from_env_honours_no_proxy,
    tcp_keepalive_arms_the_socket_timer_or_is_refused, cookies_are_kept_across_requests_and_redirects,
    multipart_form_sends_text_and_files_exactly, timings_measure_the_head_and_the_body_end,
    timings_tell_how_a_new_connection_opened,
    max_connections_per_host_makes_requests_wait_their_turn,
    error_display_says_what_and_where,
    unsupported_scheme_is_invalid_url, url_without_host_is_invalid_url,
    crlf_in_url_is_builder_error, nul_in_url_is_builder_error,
    crlf_in_header_value_is_builder_error, lf_in_header_value_is_builder_error,
    nul_in_header_value_is_builder_error, crlf_in_header_name_is_builder_error,
    crlf_in_default_header_is_builder_error, invalid_method_is_builder_error,
    zero_timeout_config_is_builder_error, zero_request_timeout_is_builder_error,
    http2_requirement_is_honoured_or_refused, http1_only_speaks_http11,
    invalid_ca_file_is_builder_error, environment_proxy_is_ignored_by_default,
    default_tls_config_verifies_certificates, port_out_of_range_is_invalid_url,
    durations_past_any_deadline_are_clamped, secrets_stay_out_of_every_text,
    proxy_credentials_reach_the_proxy_exactly_as_given,
);

/// `s` percent-encoded for a query value.
#[cfg(feature = "cookies")]
fn query_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The timer the kernel has armed on this process's established loopback socket from local
/// `port` (`/proc/net/tcp`: 0 none, 2 keepalive), and the seconds until it fires.
fn socket_timer(port: u16) -> Option<(u8, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) || f.get(3) != Some(&"01") {
            return None;
        }
        let (timer, when) = f.get(5)?.split_once(':')?;
        // In clock ticks of 1/100 s (USER_HZ).
        Some((
            timer.parse().ok()?,
            u64::from_str_radix(when, 16).ok()? / 100,
        ))
    })
}

/// Points every proxy variable at a closed port, once per process, so a backend that honoured
/// them silently would fail.
fn set_dead_proxy_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dead = "http://127.0.0.1:9";
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            // SAFETY: called once, before any test of this binary reads the environment
            // concurrently (the Once blocks other tests until it has run).
            unsafe { std::env::set_var(var, dead) };
        }
        // SAFETY: as above.
        unsafe { std::env::set_var("NO_PROXY", "no-proxy-env.test") };
    });
}

/// The mock backend: the same client policy (redirects, decoding, limits, validation, deadlines)
/// over scripted replies, and the record of what it received.
mod mock {
    use super::*;
    use httpfleet::Backend;
    use httpfleet::backend::{MockBackend, MockReply};

    fn client(mock: &MockBackend, config: &Config) -> Client {
        Client::with_backend(Backend::from(mock.clone()), config).unwrap()
    }

    #[tokio::test]
    async fn scripted_replies_come_in_order_and_requests_are_recorded() {
        let mock = MockBackend::new();
        mock.push(MockReply::ok("first"))
            .push(MockReply::status(503));
        let c = client(&mock, &Config::default());
        let a = c
            .get("http://exchange.test/a")
            .header("x-k", "v")
            .send()
            .await
            .unwrap();
        let b = c
            .post("http://exchange.test/b")
            .body("p")
            .send()
            .await
            .unwrap();
        let d = c.get("http://exchange.test/c").send().await.unwrap();
        assert_eq!(a.backend(), BackendKind::Mock);
        assert_eq!(a.text().await.unwrap(), "first");
        assert_eq!(b.status(), 503);
        assert_eq!(d.status(), 200, "fallback reply");
        let seen = mock.requests();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].headers()["x-k"], "v");
        assert_eq!(
            seen[0].headers()["user-agent"],
            httpfleet::DEFAULT_USER_AGENT
        );
        assert_eq!(seen[1].method(), http::Method::POST);
        assert_eq!(seen[1].body(), b"p");
    }

    #[tokio::test]
    async fn scripted_errors_keep_their_kind() {
        let mock = MockBackend::new();
        mock.push(MockReply::error(ErrorKind::Connect));
        let err = client(&mock, &Config::default())
            .get("http://exchange.test/")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert_eq!(err.backend(), Some(BackendKind::Mock));
        assert_eq!(err.url().unwrap(), "http://exchange.test/");
    }

    #[tokio::test(start_paused = true)]
    async fn delay_past_the_deadline_times_out_at_the_deadline() {
        let mock = MockBackend::new();
        mock.push(MockReply::ok("late").delay(Duration::from_secs(60)));
        let c = client(&mock, &Config::default().timeout(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        let err = c.get("http://exchange.test/").send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Headers));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn delay_within_the_deadline_answers() {
        let mock = MockBackend::new();
        mock.push(MockReply::ok("ok").delay(Duration::from_millis(1500)));
        let c = client(&mock, &Config::default().timeout(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        let resp = c.get("http://exchange.test/").send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn one_deadline_spans_every_redirect() {
        let mock = MockBackend::new();
        mock.push(
            MockReply::status(302)
                .header("location", "/b")
                .delay(Duration::from_millis(600)),
        )
        .push(MockReply::ok("late").delay(Duration::from_millis(600)));
        let c = client(&mock, &Config::default().timeout(Duration::from_secs(1)));
        let start = tokio::time::Instant::now();
        let err = c.get("http://exchange.test/a").send().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(mock.request_count(), 2);
    }

    #[tokio::test]
    async fn redirects_are_followed_over_the_mock() {
        let mock = MockBackend::new();
        mock.push(MockReply::status(302).header("location", "/next"))
            .push(MockReply::status(307).header("location", "https://other.test/final"))
            .push(MockReply::ok("done"));
        let c = client(&mock, &Config::default());
        let resp = c
            .post("http://exchange.test/start")
            .basic_auth("u", "p")
            .body("b")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.url(), "https://other.test/final");
        assert_eq!(resp.text().await.unwrap(), "done");
        let seen = mock.requests();
        assert_eq!(seen[1].method(), http::Method::GET, "302 POST -> GET");
        assert_eq!(seen[1].url(), "http://exchange.test/next");
        assert!(
            seen[1].headers().contains_key("authorization"),
            "same origin keeps auth"
        );
        assert_eq!(seen[2].method(), http::Method::GET);
        assert!(
            !seen[2].headers().contains_key("authorization"),
            "other origin drops auth"
        );
    }

    #[tokio::test]
    async fn https_to_http_redirect_is_refused_unless_allowed() {
        let mock = MockBackend::new();
        mock.fallback(MockReply::status(301).header("location", "http://plain.test/"));
        let err = client(&mock, &Config::default())
            .get("https://secure.test/")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect);
        assert_eq!(mock.request_count(), 1);
        let mock = MockBackend::new();
        mock.push(MockReply::status(301).header("location", "http://plain.test/"));
        let resp = client(&mock, &Config::default().allow_insecure_redirects(true))
            .get("https://secure.test/")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.url(), "http://plain.test/");
    }

    #[tokio::test]
    async fn gzip_bomb_ends_in_body_too_large() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 10 * 1024 * 1024]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        let mock = MockBackend::new();
        mock.push(MockReply::ok(bomb).header("content-encoding", "gzip"));
        let err = client(&mock, &Config::default().max_response_bytes(1024 * 1024))
            .get("http://exchange.test/")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
    }

    #[tokio::test]
    async fn corrupt_gzip_is_a_body_error() {
        let mock = MockBackend::new();
        mock.push(
            MockReply::ok(&b"\x1f\x8bnot really gzip"[..]).header("content-encoding", "gzip"),
        );
        let err = client(&mock, &Config::default())
            .get("http://exchange.test/")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body);
    }

    #[test]
    fn blocking_surface_works_over_the_mock() {
        let mock = MockBackend::new();
        mock.push(MockReply::ok("sync"));
        let c = httpfleet::blocking::Client::with_backend(
            Backend::from(mock.clone()),
            &Config::default(),
        )
        .unwrap();
        let resp = c.get("http://exchange.test/").send().unwrap();
        assert_eq!(resp.text().unwrap(), "sync");
        assert_eq!(mock.request_count(), 1);
    }

    #[tokio::test]
    async fn bad_input_never_reaches_the_mock() {
        let mock = MockBackend::new();
        let c = client(&mock, &Config::default());
        let cases = [
            c.get("ftp://exchange.test/")
                .send()
                .await
                .unwrap_err()
                .kind(),
            c.get("http://").send().await.unwrap_err().kind(),
            c.get("http://exchange.test/\r\n")
                .send()
                .await
                .unwrap_err()
                .kind(),
            c.get("http://exchange.test/")
                .header("x", "a\nb")
                .send()
                .await
                .unwrap_err()
                .kind(),
            c.request("BAD METHOD", "http://exchange.test/")
                .send()
                .await
                .unwrap_err()
                .kind(),
        ];
        assert_eq!(
            cases,
            [
                ErrorKind::InvalidUrl,
                ErrorKind::InvalidUrl,
                ErrorKind::Builder,
                ErrorKind::Builder,
                ErrorKind::Builder
            ]
        );
        assert_eq!(mock.request_count(), 0);
    }

    #[test]
    fn backend_kind_parses_and_prints() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>().unwrap(), kind);
        }
        assert_eq!("HYPER".parse::<BackendKind>().unwrap(), BackendKind::Hyper);
        assert_eq!(
            "nope".parse::<BackendKind>().unwrap_err().kind(),
            ErrorKind::Builder
        );
        let c = Config::from_toml_str("backend = \"ureq\"").unwrap();
        assert_eq!(c.backend, BackendKind::Ureq);
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let config = Config::default()
            .backend(BackendKind::Mock)
            .basic_auth("alice", "hunter2")
            .proxy("http://bob:s3cret@127.0.0.1:3128");
        let mock = MockBackend::new();
        mock.push(MockReply::error(ErrorKind::Connect));
        let c = client(&mock, &config);
        let req = c
            .get("http://carol:pa55word@exchange.test/")
            .bearer_auth("t0ken")
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(c.execute(req.try_clone().unwrap()))
            .unwrap_err();
        let texts = [
            format!("{config:?}"),
            format!("{req:?}"),
            format!("{err:?}"),
            err.to_string(),
            err.url().unwrap().to_string(),
            format!("{:?}", mock.requests()),
        ];
        for t in texts {
            for secret in [
                "hunter2",
                "s3cret",
                "pa55word",
                "t0ken",
                "YWxpY2U6aHVudGVyMg",
            ] {
                assert!(!t.contains(secret), "{secret} leaked in {t}");
            }
        }
    }
}

/// `httpfleet get`, run as a process against the loopback server.
#[cfg(feature = "cli")]
mod cli_get {
    use super::*;

    fn get(args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"))
            .arg("get")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out
    }

    fn temp_file(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("httpfleet-get-{tag}-{}", std::process::id()))
    }

    #[test]
    fn output_file_gets_the_body_and_a_progress_bar() {
        let server = TestServer::start();
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            let path = temp_file(kind.as_str());
            let out = get(&[
                &server.url("/bytes/1048576"),
                "--backend",
                kind.as_str(),
                "-o",
                path.to_str().unwrap(),
                "--progress",
            ]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                support::pattern_bytes(1048576)
            );
            std::fs::remove_file(&path).unwrap();
            assert!(
                stderr.contains("100% [##############################] 1.00 MiB / 1.00 MiB"),
                "{kind}: {stderr}"
            );
        }
    }

    /// Passwords and tokens never show in what `httpfleet get -v` prints, whether the
    /// request succeeds or fails, from the URL, a header or a proxy.
    #[test]
    fn credentials_never_show_in_the_output() {
        let server = TestServer::start();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let port = server.addr().port();
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            let runs: [(String, Vec<String>, Option<String>); 5] = [
                (
                    format!("http://u:hunter2@127.0.0.1:{port}/get"),
                    vec![],
                    None,
                ),
                (
                    format!("http://u:hunter2@127.0.0.1:{closed}/"),
                    vec![],
                    None,
                ),
                (
                    format!("http://u:hunter2@127.0.0.1:{}/", u32::from(port) + 65536),
                    vec![],
                    None,
                ),
                (
                    server.url("/headers"),
                    vec!["-H".into(), "Authorization: Bearer hunter2".into()],
                    None,
                ),
                (
                    server.url("/get"),
                    vec![],
                    Some(format!("dave:hunter2@127.0.0.1:{closed}")),
                ),
            ];
            for (url, extra, proxy) in runs {
                let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"));
                cmd.args(["get", &url, "--backend", kind.as_str(), "-v"])
                    .args(&extra);
                if let Some(p) = &proxy {
                    cmd.env("HTTPFLEET_PROXY", p);
                }
                let out = cmd.output().unwrap();
                let printed = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                // `/headers` echoes the request's headers in its body: that is the server's
                // answer, not httpfleet's text.
                let printed = if url.ends_with("/headers") {
                    String::from_utf8_lossy(&out.stderr).into_owned()
                } else {
                    printed
                };
                assert!(!printed.contains("hunter2"), "{kind} {url}: {printed}");
            }
        }
    }

    /// Runs `httpfleet get ARGS`, whatever its exit status.
    fn run(args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_httpfleet"))
            .arg("get")
            .args(args)
            .output()
            .unwrap()
    }

    /// `httpfleet get` takes the knobs of `Config` as flags, in curl's spelling, over a TOML
    /// `--config` file; `-F` sends a multipart form and `-c` writes the cookie jar.
    #[test]
    fn config_knobs_are_flags_in_curls_spelling() {
        let server = TestServer::start();
        let port = server.addr().port().to_string();
        let stdout = |out: std::process::Output| -> Value {
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        };
        // A TOML file, and a flag over it.
        let toml = temp_file("config.toml");
        std::fs::write(&toml, "user_agent = \"from-toml\"\nmax_redirects = 0\n").unwrap();
        let v = stdout(get(&[
            &server.url("/headers"),
            "--config",
            toml.to_str().unwrap(),
        ]));
        assert_eq!(v["headers"]["user-agent"], "from-toml");
        let v = stdout(get(&[
            &server.url("/headers"),
            "--config",
            toml.to_str().unwrap(),
            "-A",
            "from-flag",
            "-u",
            "ann:pw",
            "--raw",
        ]));
        assert_eq!(v["headers"]["user-agent"], "from-flag");
        assert_eq!(v["headers"]["authorization"], "Basic YW5uOnB3");
        assert!(
            v["headers"]["accept-encoding"].is_null(),
            "--raw asks for no coding"
        );
        // max_redirects = 0 from the file: the 302 comes back.
        let out = get(&[
            &server.url("/redirect/1"),
            "--config",
            toml.to_str().unwrap(),
            "-v",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("302"),
            "{out:?}"
        );
        std::fs::remove_file(&toml).unwrap();
        // --resolve in curl's form, and --http1.1.
        let url = format!("http://cli.fleet.test:{port}/get");
        let spec = format!("cli.fleet.test:{port}:127.0.0.1");
        stdout(get(&[&url, "--resolve", &spec, "--http1.1"]));
        // --resolver system finds localhost; a resolver of no such name is refused.
        stdout(get(&[
            &format!("http://localhost:{port}/get"),
            "--resolver",
            "system",
        ]));
        let out = run(&[&url, "--resolver", "dns"]);
        assert!(!out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("resolver"),
            "{out:?}"
        );
        // A dead proxy, and --noproxy around it; a dead SOCKS proxy.
        let direct = server.url("/get");
        assert!(!run(&[&direct, "-x", "http://127.0.0.1:9"]).status.success());
        stdout(get(&[
            &direct,
            "-x",
            "http://127.0.0.1:9",
            "--noproxy",
            "localhost,127.0.0.1",
        ]));
        let out = run(&[&direct, "--socks5-hostname", "127.0.0.1:9"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("proxy"),
            "{out:?}"
        );
        // -m in seconds.
        let started = Instant::now();
        let out = run(&[&server.url("/delay/3000"), "-m", "0.3"]);
        assert!(!out.status.success());
        assert!(started.elapsed() < Duration::from_millis(2500));
        // -F: a text field and a file with its type.
        let csv = temp_file("rows.csv");
        std::fs::write(&csv, "a,b\n").unwrap();
        let file = format!("rows=@{};type=text/x-rows", csv.display());
        stdout(get(&[
            &server.url("/post"),
            "-F",
            "symbol=BTCUSDT",
            "-F",
            &file,
        ]));
        let seen = server.last_request().unwrap();
        assert_eq!(seen.method, "POST");
        assert!(
            seen.header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );
        let body = String::from_utf8_lossy(&seen.body);
        assert!(
            body.contains("name=\"symbol\"\r\n\r\nBTCUSDT\r\n"),
            "{body}"
        );
        assert!(
            body.contains("Content-Type: text/x-rows\r\n\r\na,b\n\r\n"),
            "{body}"
        );
        std::fs::remove_file(&csv).unwrap();
        // -c: cookies kept across the redirect and written out.
        let jar = temp_file("jar");
        let v = stdout(get(&[
            &server.url("/cookies/set?k=v"),
            "-c",
            jar.to_str().unwrap(),
        ]));
        assert_eq!(v["cookies"]["k"], "v");
        let written = std::fs::read_to_string(&jar).unwrap();
        assert!(written.ends_with("\tk=v\n"), "{written}");
        std::fs::remove_file(&jar).unwrap();
    }

    #[test]
    fn no_progress_bar_when_asked_or_for_a_small_body() {
        let server = TestServer::start();
        let path = temp_file("quiet");
        for (url, extra) in [
            (server.url("/bytes/1048576"), Some("--no-progress")),
            (server.url("/bytes/1000"), None),
        ] {
            let mut args = vec![url.as_str(), "-o", path.to_str().unwrap()];
            args.extend(extra);
            let out = get(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains('%'), "{stderr}");
            assert!(stderr.contains("wrote"), "{stderr}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
