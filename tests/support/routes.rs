//! httpbin-like routing for the test server.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::body::RespBody;
use super::{SeenRequest, State};

type Resp = Response<RespBody>;

/// Parsed request handed to the routes.
struct Ctx {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
    peer: SocketAddr,
    server: SocketAddr,
}

impl Ctx {
    fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        match &self.query {
            Some(q) => form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
            None => Vec::new(),
        }
    }

    fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn header_str(&self, name: impl http::header::AsHeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    fn is_get(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

pub(super) async fn handle(state: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "bad request body"),
    };
    let ctx = Ctx {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        version: parts.version,
        peer,
        server: state.addr,
    };
    state.record(SeenRequest {
        method: ctx.method.as_str().to_string(),
        path_and_query: ctx.path_and_query(),
        headers: ctx
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: ctx.body.to_vec(),
        version: format!("{:?}", ctx.version),
    });

    let mut resp = route(&ctx).await;

    let status = resp.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        resp.headers_mut().remove(header::TRANSFER_ENCODING);
        *resp.body_mut() = RespBody::empty();
    } else if ctx.method == Method::HEAD {
        // Same status and headers as GET (including Content-Length when the
        // GET body length is known), but never any body bytes.
        if !resp.headers().contains_key(header::CONTENT_LENGTH) {
            if let Some(n) = resp.body().size_hint().exact() {
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
        *resp.body_mut() = RespBody::empty();
    }
    resp
}

async fn route(ctx: &Ctx) -> Resp {
    let segs: Vec<&str> = ctx.path.trim_start_matches('/').split('/').collect();
    let m = &ctx.method;
    match segs.as_slice() {
        ["get"] => {
            if !ctx.is_get() {
                return method_not_allowed();
            }
            json_resp(StatusCode::OK, Value::Object(echo(ctx)))
        }
        ["anything"] | ["anything", ..] => {
            json_resp(StatusCode::OK, Value::Object(echo_with_body(ctx)))
        }
        [name @ ("post" | "put" | "patch" | "delete")] => {
            let want = match *name {
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                _ => Method::DELETE,
            };
            if *m != want {
                return method_not_allowed();
            }
            json_resp(StatusCode::OK, Value::Object(echo_with_body(ctx)))
        }
        ["headers"] => json_resp(StatusCode::OK, json!({ "headers": headers_json(ctx) })),
        ["user-agent"] => json_resp(
            StatusCode::OK,
            json!({ "user-agent": ctx.header_str(header::USER_AGENT) }),
        ),
        ["peer"] => json_resp(
            StatusCode::OK,
            json!({ "ip": ctx.peer.ip().to_string(), "port": ctx.peer.port() }),
        ),
        ["ip"] => json_resp(
            StatusCode::OK,
            json!({ "origin": ctx.peer.ip().to_string() }),
        ),
        ["status", n] => match n
            .parse::<u16>()
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
        {
            Some(s) if !s.is_informational() => empty(s),
            _ => text(StatusCode::BAD_REQUEST, "invalid status code"),
        },
        [
            kind @ ("redirect" | "relative-redirect" | "absolute-redirect"),
            n,
        ] => {
            let Ok(n) = n.parse::<u64>() else {
                return text(StatusCode::BAD_REQUEST, "invalid redirect count");
            };
            if n == 0 {
                return text(StatusCode::BAD_REQUEST, "redirect count must be >= 1");
            }
            let rel = if n == 1 {
                "/get".to_string()
            } else {
                format!("/{kind}/{}", n - 1)
            };
            let loc = if *kind == "absolute-redirect" {
                format!("http://{}{}", ctx.server, rel)
            } else {
                rel
            };
            redirect(StatusCode::FOUND, &loc)
        }
        ["redirect-to"] => {
            let Some(url) = ctx.query_param("url") else {
                return text(StatusCode::BAD_REQUEST, "missing url");
            };
            let code = ctx
                .query_param("status_code")
                .or_else(|| ctx.query_param("status"))
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::FOUND);
            redirect(code, &url)
        }
        ["delay", ms] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return text(StatusCode::BAD_REQUEST, "invalid delay");
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_resp(StatusCode::OK, Value::Object(echo_with_body(ctx)))
        }
        ["drip"] => drip(ctx).await,
        ["gzip"] => encoded(ctx, "gzip", "gzipped"),
        ["deflate"] => encoded(ctx, "deflate", "deflated"),
        ["brotli"] => encoded(ctx, "br", "brotli"),
        ["zstd"] => encoded(ctx, "zstd", "zstd"),
        ["charset", label] => {
            // `?text=` in the charset named, declared in `Content-Type`; a label nobody knows
            // gets UTF-8 bytes.
            let words = ctx.query_param("text").unwrap_or_default();
            let words = words.as_str();
            let body = match encoding_rs::Encoding::for_label(label.as_bytes()) {
                Some(enc) => enc.encode(words).0.into_owned(),
                None => words.as_bytes().to_vec(),
            };
            // `?quoted=1`: the label in quotes, as RFC 9110 allows.
            let label = match ctx.query_param("quoted") {
                Some(_) => format!("\"{label}\""),
                None => (*label).to_owned(),
            };
            let Ok(ct) = HeaderValue::from_str(&format!("text/plain; charset={label}")) else {
                return text(StatusCode::BAD_REQUEST, "invalid charset");
            };
            let mut r = bytes_resp(StatusCode::OK, "text/plain", body);
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
            r
        }
        ["bytes", n] => {
            let Ok(n) = n.parse::<usize>() else {
                return text(StatusCode::BAD_REQUEST, "invalid byte count");
            };
            // `?fill=B`: every byte B instead of the pattern.
            let body = match ctx.query_param("fill").and_then(|b| b.parse::<u8>().ok()) {
                Some(b) => vec![b; n],
                None => pattern_bytes(n),
            };
            bytes_resp(StatusCode::OK, "application/octet-stream", body)
        }
        ["stream-bytes", n] => {
            let Ok(n) = n.parse::<usize>() else {
                return text(StatusCode::BAD_REQUEST, "invalid byte count");
            };
            let chunk = ctx
                .query_param("chunk_size")
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&c| c > 0)
                .unwrap_or(1024);
            let all = Bytes::from(pattern_bytes(n));
            let chunks: Vec<Bytes> = (0..n)
                .step_by(chunk)
                .map(|i| all.slice(i..(i + chunk).min(n)))
                .collect();
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(RespBody::chunks(chunks))
                .unwrap()
        }
        ["basic-auth", user, passwd] => {
            let user = percent_decode(user);
            let passwd = percent_decode(passwd);
            let ok = ctx
                .header_str(header::AUTHORIZATION)
                .and_then(|v| parse_basic(&v))
                .is_some_and(|(u, p)| u == user && p == passwd);
            if ok {
                json_resp(
                    StatusCode::OK,
                    json!({ "authenticated": true, "user": user }),
                )
            } else {
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(header::WWW_AUTHENTICATE, "Basic realm=\"Fake Realm\"")
                    .body(RespBody::empty())
                    .unwrap()
            }
        }
        ["response-headers"] => {
            let mut obj = Map::new();
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json");
            for (k, v) in ctx.query_pairs() {
                let (Ok(name), Ok(val)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) else {
                    return text(StatusCode::BAD_REQUEST, "invalid header in query");
                };
                b = b.header(name, val);
                obj.insert(k, Value::String(v));
            }
            let body = serde_json::to_vec_pretty(&Value::Object(obj)).unwrap();
            b.body(RespBody::full(body)).unwrap()
        }
        ["json"] => json_resp(StatusCode::OK, slideshow()),
        ["html"] => bytes_resp(
            StatusCode::OK,
            "text/html; charset=utf-8",
            HTML.as_bytes().to_vec(),
        ),
        ["small"] => bytes_resp(StatusCode::OK, "text/plain", b"Hello, World!".to_vec()),
        ["cookies", "set"] => {
            let mut b = Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, "/cookies");
            for (k, v) in ctx.query_pairs() {
                let Ok(val) = HeaderValue::from_str(&format!("{k}={v}; Path=/")) else {
                    return text(StatusCode::BAD_REQUEST, "invalid cookie");
                };
                b = b.header(header::SET_COOKIE, val);
            }
            b.body(RespBody::empty()).unwrap()
        }
        ["set-cookie"] => {
            // Each `?line=` as a `Set-Cookie` line, as given.
            let mut b = Response::builder().status(StatusCode::OK);
            for line in ctx.query_pairs().into_iter().filter(|(k, _)| k == "line") {
                let Ok(val) = HeaderValue::from_str(&line.1) else {
                    return text(StatusCode::BAD_REQUEST, "invalid cookie");
                };
                b = b.header(header::SET_COOKIE, val);
            }
            b.body(RespBody::empty()).unwrap()
        }
        ["cookies"] => {
            let mut obj = Map::new();
            for v in ctx.headers.get_all(header::COOKIE) {
                let s = String::from_utf8_lossy(v.as_bytes());
                for pair in s.split(';') {
                    let pair = pair.trim();
                    if pair.is_empty() {
                        continue;
                    }
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    obj.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
                }
            }
            json_resp(StatusCode::OK, json!({ "cookies": obj }))
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// `/drip?bytes=N&duration_ms=D&delay_ms=W&code=C`.
async fn drip(ctx: &Ctx) -> Resp {
    // `None` means a parameter was present but not a number.
    let num = |name: &str, default: u64| -> Option<u64> {
        match ctx.query_param(name) {
            None => Some(default),
            Some(s) => s.parse::<u64>().ok(),
        }
    };
    let params = (|| {
        Some((
            num("bytes", 10)?,
            num("duration_ms", 0)?,
            num("delay_ms", 0)?,
            num("code", 200)?,
        ))
    })();
    let Some((n, duration_ms, delay_ms, code)) = params else {
        return text(StatusCode::BAD_REQUEST, "invalid drip parameter");
    };
    let Some(status) = u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| !s.is_informational())
    else {
        return text(StatusCode::BAD_REQUEST, "invalid drip code");
    };
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let body = if ctx.method == Method::HEAD || n == 0 {
        RespBody::empty()
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        let pause = Duration::from_micros(duration_ms.saturating_mul(1000) / n);
        tokio::spawn(async move {
            for _ in 0..n {
                if tx.send(Bytes::from_static(b"*")).await.is_err() {
                    return; // client went away
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
        RespBody::Chan { rx, len: Some(n) }
    };
    // For HEAD the body is empty but Content-Length still advertises N
    // (`handle` leaves an existing Content-Length header alone).
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, n)
        .body(body)
        .unwrap()
}

// ---------------------------------------------------------------------------
// JSON echo helpers

fn headers_json(ctx: &Ctx) -> Value {
    let mut obj = Map::new();
    for (k, v) in ctx.headers.iter() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match obj.get_mut(k.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                obj.insert(k.as_str().to_string(), Value::String(v));
            }
        }
    }
    // HTTP/2 carries the authority in the URI, not a Host header.
    if !obj.contains_key("host") {
        obj.insert("host".into(), Value::String(ctx.server.to_string()));
    }
    Value::Object(obj)
}

fn echo(ctx: &Ctx) -> Map<String, Value> {
    let mut args = Map::new();
    for (k, v) in ctx.query_pairs() {
        args.insert(k, Value::String(v));
    }
    let host = ctx
        .header_str(header::HOST)
        .unwrap_or_else(|| ctx.server.to_string());
    let mut obj = Map::new();
    obj.insert("method".into(), Value::String(ctx.method.to_string()));
    obj.insert(
        "url".into(),
        Value::String(format!("http://{}{}", host, ctx.path_and_query())),
    );
    obj.insert("path".into(), Value::String(ctx.path.clone()));
    obj.insert("args".into(), Value::Object(args));
    obj.insert("headers".into(), headers_json(ctx));
    obj.insert("origin".into(), Value::String(ctx.peer.ip().to_string()));
    obj
}

fn echo_with_body(ctx: &Ctx) -> Map<String, Value> {
    let mut obj = echo(ctx);
    obj.insert(
        "data".into(),
        Value::String(String::from_utf8_lossy(&ctx.body).into_owned()),
    );
    let parsed: Value = serde_json::from_slice(&ctx.body).unwrap_or(Value::Null);
    obj.insert("json".into(), parsed);
    let is_form = ctx.header_str(header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    let mut form = Map::new();
    if is_form {
        for (k, v) in form_urlencoded::parse(&ctx.body).into_owned() {
            form.insert(k, Value::String(v));
        }
    }
    obj.insert("form".into(), Value::Object(form));
    obj
}

// ---------------------------------------------------------------------------
// Response builders

fn bytes_resp(status: StatusCode, ctype: &str, body: Vec<u8>) -> Resp {
    let len = body.len();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONTENT_LENGTH, len)
        .body(RespBody::full(body))
        .unwrap()
}

fn json_resp(status: StatusCode, v: Value) -> Resp {
    let mut body = serde_json::to_vec_pretty(&v).unwrap();
    body.push(b'\n');
    bytes_resp(status, "application/json", body)
}

fn text(status: StatusCode, msg: &str) -> Resp {
    bytes_resp(status, "text/plain; charset=utf-8", msg.as_bytes().to_vec())
}

fn empty(status: StatusCode) -> Resp {
    Response::builder()
        .status(status)
        .body(RespBody::empty())
        .unwrap()
}

fn method_not_allowed() -> Resp {
    text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    let Ok(loc) = HeaderValue::from_str(location) else {
        return text(StatusCode::BAD_REQUEST, "invalid location");
    };
    Response::builder()
        .status(status)
        .header(header::LOCATION, loc)
        .body(RespBody::empty())
        .unwrap()
}

// ---------------------------------------------------------------------------
// Misc helpers

/// Deterministic payload: byte i = (i % 251) as u8.
pub fn pattern_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `Basic <base64(user:pass)>`.
fn parse_basic(v: &str) -> Option<(String, String)> {
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(rest.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Standard-alphabet base64 decoder (padding optional).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s.as_bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn slideshow() -> Value {
    json!({
        "slideshow": {
            "author": "Yours Truly",
            "date": "date of publication",
            "slides": [
                { "title": "Wake up to WonderWidgets!", "type": "all" },
                {
                    "items": [
                        "Why <em>WonderWidgets</em> are great",
                        "Who <em>buys</em> WonderWidgets"
                    ],
                    "title": "Overview",
                    "type": "all"
                }
            ],
            "title": "Sample Slide Show"
        }
    })
}

const HTML: &str = "<!DOCTYPE html>\n<html>\n  <head>\n    <title>httpfleet test page</title>\n  </head>\n  <body>\n    <h1>Herman Melville - Moby-Dick</h1>\n    <p>Call me Ishmael.</p>\n  </body>\n</html>\n";

/// The echo with `flag: true`, encoded in `coding` (`gzip`, `deflate` as zlib, `br`, `zstd`).
fn encoded(ctx: &Ctx, coding: &'static str, flag: &str) -> Resp {
    let mut obj = echo(ctx);
    obj.insert(flag.into(), Value::Bool(true));
    let raw = serde_json::to_vec_pretty(&Value::Object(obj)).unwrap();
    let body = match coding {
        "gzip" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&raw).unwrap();
            enc.finish().unwrap()
        }
        "deflate" => {
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&raw).unwrap();
            enc.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            enc.write_all(&raw).unwrap();
            drop(enc);
            out
        }
        _ => zstd::encode_all(&raw[..], 3).unwrap(),
    };
    let mut r = bytes_resp(StatusCode::OK, "application/json", body);
    r.headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    r
}
