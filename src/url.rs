//! URL handling shared by every backend: parsing and validation before any I/O, credentials
//! taken out of the URL, query appending, and `Location` resolution for redirects (RFC 3986 §5).

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};

use crate::error::{Error, Result};

/// The error for a relative URL (a path) sent where no fleet member's base URL completes it.
pub(crate) fn needs_base_url() -> Error {
    Error::invalid_url("a relative URL needs a fleet member with a base URL")
}

/// A URL split into what httpfleet sends and the credentials it carried, if any.
pub(crate) struct ParsedUrl {
    /// The URL without user information.
    pub uri: Uri,
    /// `user:password` from the URL's user information, percent-decoded.
    pub credentials: Option<(String, String)>,
}

/// Parses and validates a request URL: only `http` and `https`, a host is required, and CR, LF,
/// NUL and other control characters are refused as a `Builder` error (nothing is sent).
pub(crate) fn parse(input: &str) -> Result<ParsedUrl> {
    // A fold rather than `any`: no early exit, so the compiler checks many bytes at a time.
    if input
        .bytes()
        .fold(false, |bad, b| bad | (b < 0x20) | (b == 0x7f))
    {
        return Err(Error::builder(
            "URL contains a control character (CR, LF, NUL or similar)",
        ));
    }
    let uri: Uri = input.parse().map_err(|e| {
        Error::invalid_url(format!("cannot parse {:?}", redact_str(input))).with_source(e)
    })?;
    if input.as_bytes().first() == Some(&b'/') && input.as_bytes().get(1) != Some(&b'/') {
        // A path (origin form): a fleet member's base URL supplies scheme, host and port.
        return Ok(ParsedUrl {
            uri,
            credentials: None,
        });
    }
    check(uri)
}

/// Validates an already parsed URI (scheme, host) and takes credentials out of it.
pub(crate) fn check(uri: Uri) -> Result<ParsedUrl> {
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(Error::invalid_url(format!(
                "unsupported scheme {other:?}: only http and https"
            )));
        }
        None => return Err(Error::invalid_url("URL has no scheme")),
    }
    let Some(authority) = uri.authority() else {
        return Err(Error::invalid_url("URL has no host"));
    };
    // The host is what follows any `user@` and precedes any `:port` (`Authority::host` does the
    // same with two string searches).
    let bytes = authority.as_str().as_bytes();
    let at = bytes.iter().rposition(|&b| b == b'@');
    let hostport = &bytes[at.map_or(0, |i| i + 1)..];
    if hostport.first().is_none_or(|&b| b == b':') {
        return Err(Error::invalid_url("URL has no host"));
    }
    check_port(hostport)?;
    if at.is_none() {
        return Ok(ParsedUrl {
            uri,
            credentials: None,
        });
    }
    let (userinfo, hostport) = authority
        .as_str()
        .rsplit_once('@')
        .expect("authority contains '@'");
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credentials = Some((percent_decode(user), percent_decode(pass)));
    let hostport = Authority::try_from(hostport)
        .map_err(|e| Error::invalid_url("invalid host").with_source(e))?;
    let mut parts = uri.into_parts();
    parts.authority = Some(hostport);
    let uri =
        Uri::from_parts(parts).map_err(|e| Error::invalid_url("invalid URL").with_source(e))?;
    Ok(ParsedUrl { uri, credentials })
}

/// Fails with `InvalidUrl` when `host[:port]` has a port past 65535 (`http::Uri` takes any
/// digits, and clients would then connect to the scheme's default port or to the remainder).
fn check_port(hostport: &[u8]) -> Result<()> {
    let host_end = match hostport.first() {
        Some(b'[') => hostport.iter().position(|&b| b == b']').unwrap_or(0),
        _ => 0,
    };
    let Some(colon) = hostport[host_end..].iter().rposition(|&b| b == b':') else {
        return Ok(());
    };
    let digits = &hostport[host_end + colon + 1..];
    let in_range = std::str::from_utf8(digits)
        .ok()
        .is_some_and(|d| d.is_empty() || d.parse::<u16>().is_ok());
    if in_range {
        Ok(())
    } else {
        Err(Error::invalid_url(
            "the port is not a number from 0 to 65535",
        ))
    }
}

/// `s` with every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) percent-encoded: for
/// clients that decode what they are given (libcurl's proxy credentials).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The URI as text, built in one allocation of the right size (`to_string` goes through the
/// formatting machinery and grows its buffer piece by piece).
pub(crate) fn to_text(uri: &Uri) -> String {
    let (scheme, authority) = (uri.scheme_str(), uri.authority().map(Authority::as_str));
    let pq = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let mut text = String::with_capacity(
        scheme.map_or(0, |s| s.len() + 3) + authority.map_or(0, str::len) + pq.len(),
    );
    if let Some(scheme) = scheme {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(authority) = authority {
        text.push_str(authority);
    }
    text.push_str(pq);
    text
}

/// The URI without user information, for display in errors and logs.
pub(crate) fn redact_uri(uri: &Uri) -> Uri {
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            let hostport = a.as_str().rsplit_once('@').map(|(_, h)| h).unwrap_or("");
            let mut parts = uri.clone().into_parts();
            parts.authority = Authority::try_from(hostport).ok();
            Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
        }
        _ => uri.clone(),
    }
}

/// A URL string with any user information (`user:password@`) replaced by `***@`, with or
/// without a scheme, for errors and `Debug` output.
pub(crate) fn redact_str(url: &str) -> String {
    let start = url.find("://").map_or(0, |s| s + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// Appends `pairs` (any `Serialize` that `serde_urlencoded` takes: pairs, a map, a struct),
/// form-encoded, to the URI's query.
pub(crate) fn append_query<T: serde::Serialize + ?Sized>(uri: Uri, pairs: &T) -> Result<Uri> {
    let added = serde_urlencoded::to_string(pairs)
        .map_err(|e| Error::builder("cannot encode the query").with_source(e))?;
    if added.is_empty() {
        return Ok(uri);
    }
    let mut parts = uri.into_parts();
    let (path, query) = match &parts.path_and_query {
        Some(pq) => (pq.path(), pq.query().filter(|q| !q.is_empty())),
        None => ("/", None),
    };
    let pq = match query {
        Some(q) => format!("{path}?{q}&{added}"),
        None => format!("{path}?{added}"),
    };
    parts.path_and_query = Some(
        PathAndQuery::try_from(pq)
            .map_err(|e| Error::invalid_url("invalid query").with_source(e))?,
    );
    Uri::from_parts(parts).map_err(|e| Error::invalid_url("invalid URL").with_source(e))
}

/// The port of a URI, with the scheme's default when it has none.
/// The address a URL's host names, when it names one (`127.0.0.1`, `[::1]`) rather than a host.
pub(crate) fn host_ip(host: &str) -> Option<std::net::IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

pub(crate) fn port_or_default(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    })
}

/// True when both URIs have the same scheme, host and port.
pub(crate) fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme_str() == b.scheme_str()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port_or_default(a) == port_or_default(b)
}

/// Resolves a `Location` value against the URL it came from (RFC 3986 §5.2).
pub(crate) fn resolve(base: &Uri, location: &str) -> Result<Uri> {
    let location = location.trim();
    if location.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(
            Error::new(crate::ErrorKind::Redirect).with_detail("Location has control characters")
        );
    }
    let bad = |e: http::uri::InvalidUri| {
        Error::new(crate::ErrorKind::Redirect)
            .with_detail(format!("invalid Location {:?}", redact_str(location)))
            .with_source(e)
    };
    // Drop a fragment: it is never sent.
    let location = location.split('#').next().unwrap_or("");
    let has_scheme = location
        .split_once(':')
        .map(|(s, _)| {
            !s.is_empty()
                && s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        })
        .unwrap_or(false);
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let target = if has_scheme {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        let (path, query) = split_query(location);
        format!(
            "{scheme}://{authority}{}{}",
            remove_dot_segments(path),
            query
        )
    } else if location.is_empty() {
        format!(
            "{scheme}://{authority}{}",
            base.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        )
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let base_path = base.path();
        let dir = &base_path[..base_path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        let (path, query) = split_query(location);
        let merged = format!("{}{}", if dir.is_empty() { "/" } else { dir }, path);
        format!(
            "{scheme}://{authority}{}{}",
            remove_dot_segments(&merged),
            query
        )
    };
    let uri: Uri = target.parse().map_err(bad)?;
    Ok(uri)
}

fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// `Basic` credentials as an `Authorization` header value.
pub(crate) fn basic_auth_value(user: &str, pass: &str) -> http::HeaderValue {
    let raw = format!("{user}:{pass}");
    let mut v = http::HeaderValue::try_from(format!("Basic {}", base64(raw.as_bytes())))
        .expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The scheme of a URI is `https`.
pub(crate) fn is_https(uri: &Uri) -> bool {
    uri.scheme() == Some(&Scheme::HTTPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_locations() {
        let base: Uri = "http://h:1/a/b/c?x=1".parse().unwrap();
        assert_eq!(resolve(&base, "/p?q").unwrap(), "http://h:1/p?q");
        assert_eq!(resolve(&base, "d").unwrap(), "http://h:1/a/b/d");
        assert_eq!(resolve(&base, "../d").unwrap(), "http://h:1/a/d");
        assert_eq!(resolve(&base, "//o:2/z").unwrap(), "http://o:2/z");
        assert_eq!(resolve(&base, "https://o/z").unwrap(), "https://o/z");
        assert_eq!(resolve(&base, "?y=2").unwrap(), "http://h:1/a/b/c?y=2");
    }

    #[test]
    fn text_is_what_display_writes() {
        for u in [
            "http://h:1/a/b/c?x=1",
            "https://[::1]:8443/",
            "http://127.0.0.1",
            "/path?q=1",
        ] {
            let uri: Uri = u.parse().unwrap();
            assert_eq!(to_text(&uri), uri.to_string(), "{u}");
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn credentials_leave_the_url() {
        let p = parse("http://u%40x:p%3Aw@h:8/p").unwrap();
        assert_eq!(p.uri, "http://h:8/p");
        assert_eq!(p.credentials, Some(("u@x".into(), "p:w".into())));
        assert_eq!(
            percent_decode(&percent_encode("p@ss:w/rd%41# é")),
            "p@ss:w/rd%41# é"
        );
        assert_eq!(percent_encode("a-b.c_d~e f"), "a-b.c_d~e%20f");
        assert_eq!(redact_str("http://a:b@proxy:3128"), "http://***@proxy:3128");
        assert_eq!(redact_str("a:b@proxy:3128"), "***@proxy:3128");
        assert_eq!(redact_str("http://proxy/x@y"), "http://proxy/x@y");
        assert_eq!(redact_str("a:b@c@[::1/"), "***@[::1/");
    }
}
