//! [`Headers`]: a response's header fields, kept either as an [`HeaderMap`] (what hyper, reqwest
//! and ureq hand over) or as the raw header lines libcurl delivered, already validated, and
//! turned into a map only when someone reads them. A polling loop that looks at the status and
//! the body never pays for hashing and storing every header.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Response headers: a map, or validated raw lines parsed on first use. The size of an
/// [`HeaderMap`] (the raw form is boxed), so a response moves as cheaply as before.
#[derive(Clone, Debug)]
pub(crate) enum Headers {
    /// A map, as hyper, reqwest and ureq hand it over.
    Map(HeaderMap),
    /// Raw lines, as libcurl delivers them.
    Raw(Box<Raw>),
}

/// Raw header lines and the map built from them on first use.
#[derive(Clone, Debug)]
pub(crate) struct Raw {
    map: OnceLock<HeaderMap>,
    /// `name: value` lines separated by `\n`, each validated when it arrived (see [`is_name`]
    /// and [`is_value`]).
    lines: Bytes,
    /// What was counted as the lines arrived.
    seen: RawSummary,
}

/// What a backend that delivers raw lines counts as they arrive, so that the client's checks
/// need not scan them again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawSummary {
    /// Fields.
    pub fields: usize,
    /// Their size counted as `name: value\r\n`.
    pub bytes: usize,
    /// Where the first `Content-Encoding` value sits in the lines.
    pub content_encoding: Option<(usize, usize)>,
    /// Where the first `Content-Length` value sits in the lines.
    pub content_length: Option<(usize, usize)>,
}

impl RawSummary {
    /// Counts one line about to be appended at `offset` of the lines; `value_at` is where its
    /// value starts in the line.
    pub(crate) fn add(&mut self, offset: usize, name: &[u8], value_at: usize, value: &[u8]) {
        self.fields += 1;
        self.bytes += name.len() + value.len() + 4;
        let at = Some((offset + value_at, offset + value_at + value.len()));
        if self.content_encoding.is_none() && name.eq_ignore_ascii_case(b"content-encoding") {
            self.content_encoding = at;
        } else if self.content_length.is_none() && name.eq_ignore_ascii_case(b"content-length") {
            self.content_length = at;
        }
    }
}

impl Default for Headers {
    fn default() -> Self {
        Headers::Map(HeaderMap::new())
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Self {
        Headers::Map(map)
    }
}

impl Headers {
    /// Headers from validated raw lines (see [`Raw`]) and what was counted of them.
    pub(crate) fn from_raw(lines: Bytes, seen: RawSummary) -> Self {
        Headers::Raw(Box::new(Raw {
            map: OnceLock::new(),
            lines,
            seen,
        }))
    }

    /// The headers as a map, built on first use.
    pub(crate) fn map(&self) -> &HeaderMap {
        match self {
            Headers::Map(map) => map,
            Headers::Raw(raw) => raw.map.get_or_init(|| parse(&raw.lines)),
        }
    }

    /// The headers as a map, for changes.
    pub(crate) fn map_mut(&mut self) -> &mut HeaderMap {
        if let Headers::Raw(raw) = self {
            let map = raw.map.take().unwrap_or_else(|| parse(&raw.lines));
            *self = Headers::Map(map);
        }
        match self {
            Headers::Map(map) => map,
            Headers::Raw(_) => unreachable!("raw headers were just turned into a map"),
        }
    }

    /// The first `Content-Encoding` value, without building the map.
    pub(crate) fn content_encoding(&self) -> Option<&[u8]> {
        fn from_map(map: &HeaderMap) -> Option<&[u8]> {
            map.get(http::header::CONTENT_ENCODING)
                .map(HeaderValue::as_bytes)
        }
        match self {
            Headers::Map(map) => from_map(map),
            Headers::Raw(raw) => match raw.map.get() {
                Some(map) => from_map(map),
                None => raw.seen.content_encoding.map(|(a, b)| &raw.lines[a..b]),
            },
        }
    }

    /// The first `Content-Length` value as a number of bytes (see [`content_length`]), without
    /// building the map.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            Headers::Map(map) => content_length(map),
            Headers::Raw(raw) => match raw.map.get() {
                Some(map) => content_length(map),
                None => raw
                    .seen
                    .content_length
                    .and_then(|(a, b)| decimal(raw.lines[a..b].trim_ascii())),
            },
        }
    }

    /// How many fields, and their size counted as `name: value\r\n`.
    pub(crate) fn size(&self) -> (usize, usize) {
        let of_map = |map: &HeaderMap| {
            (
                map.len(),
                map.iter()
                    .map(|(k, v)| k.as_str().len() + v.len() + 4)
                    .sum(),
            )
        };
        match self {
            Headers::Map(map) => of_map(map),
            Headers::Raw(raw) => match raw.map.get() {
                Some(map) => of_map(map),
                None => (raw.seen.fields, raw.seen.bytes),
            },
        }
    }
}

/// The `(name, value)` pairs of validated raw lines.
fn lines(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
}

/// Builds the map from validated raw lines; values are slices of `raw`, not copies.
fn parse(raw: &Bytes) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(lines(raw).count());
    for (name, value) in lines(raw) {
        // Both were validated as they arrived, so neither conversion fails.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_maybe_shared(raw.slice_ref(value)),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The bytes of an RFC 9110 token (`tchar`), as a table: one load per byte.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// True when `name` is a valid header name (an RFC 9110 token), as [`HeaderName::from_bytes`]
/// accepts it.
pub(crate) fn is_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TCHAR[usize::from(b)])
}

/// True when `value` is a valid header value (no control character but tab), as
/// [`HeaderValue::from_bytes`] accepts it. A fold without early exit, so it runs over many
/// bytes at a time.
pub(crate) fn is_value(value: &[u8]) -> bool {
    !value.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20 && b != b'\t') | (b == 0x7f))
    })
}

/// A header field line (`name: value`, without its line end), validated as hyper's parser does:
/// its name, its value (trimmed) and where the value starts in the line.
pub(crate) fn field(line: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let from_value = line[colon + 1..].trim_ascii_start();
    let value_at = line.len() - from_value.len();
    let (name, value) = (&line[..colon], from_value.trim_ascii_end());
    (is_name(name) && is_value(value)).then_some((name, value, value_at))
}

/// The most a body buffer reserves ahead from the length a response declares: past it the
/// buffer grows as bytes arrive, so a server's number never sizes an allocation.
pub(crate) const RESERVE_CAP: usize = 1 << 20;

/// Whether a response to `method` with `status` has a body (RFC 9110 §6.4.1): not to `HEAD`,
/// and not a 1xx, 204 or 304.
pub(crate) fn has_body(method: &http::Method, status: http::StatusCode) -> bool {
    *method != http::Method::HEAD
        && !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
}

/// What to reserve ahead for a body that declared `declared` bytes: at most [`RESERVE_CAP`].
pub(crate) fn reserve_for(declared: Option<u64>) -> usize {
    declared.unwrap_or(0).min(RESERVE_CAP as u64) as usize
}

/// The `Content-Length` header as a number.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    decimal(
        headers
            .get(http::header::CONTENT_LENGTH)?
            .as_bytes()
            .trim_ascii(),
    )
}

/// A `Content-Length` value: digits only, `None` when empty, with anything else, or on
/// overflow.
pub(crate) fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (relative to `now_wall`), at most
/// [`MAX_DURATION`](crate::MAX_DURATION).
pub fn parse_retry_after(
    headers: &HeaderMap,
    now_wall: std::time::SystemTime,
) -> Option<std::time::Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(crate::config::clamp(std::time::Duration::from_secs(secs)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(crate::config::clamp(
        at.duration_since(now_wall)
            .unwrap_or(std::time::Duration::ZERO),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw headers from `lines`, counted as a backend counts them.
    fn raw(lines: &[&[u8]]) -> Headers {
        let (mut raw, mut seen) = (Vec::new(), RawSummary::default());
        for line in lines {
            let colon = line.iter().position(|&b| b == b':').unwrap();
            let value = line[colon + 1..].trim_ascii();
            let value_at = line.len() - line[colon + 1..].trim_ascii_start().len();
            seen.add(raw.len(), &line[..colon], value_at, value);
            raw.extend_from_slice(line);
            raw.push(b'\n');
        }
        Headers::from_raw(raw.into(), seen)
    }

    #[test]
    fn raw_lines_read_like_the_map_they_become() {
        let h = raw(&[
            b"Content-Length: 13",
            b"Date:Fri, 27 Nov 2026 18:07:16 GMT",
            b"Content-Encoding:  gzip ",
            b"x-a: 1",
            b"X-A:  2 ",
        ]);
        assert_eq!(h.content_encoding(), Some(&b"gzip"[..]));
        assert_eq!(h.content_length(), Some(13));
        let before = h.size();
        let map = h.map();
        assert_eq!(content_length(map), h.content_length());
        assert_eq!(map.len(), 5);
        assert_eq!(map["content-encoding"], "gzip");
        assert_eq!(map["date"], "Fri, 27 Nov 2026 18:07:16 GMT");
        let all: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(h.size(), before);
    }

    /// The declared length is the first `Content-Length` field's, as the map answers, before
    /// and after the map is built.
    #[test]
    fn the_declared_length_is_the_first_fields_raw_or_mapped() {
        for lines in [
            &[&b"content-length: x"[..], b"Content-Length: 5"][..],
            &[b"Content-Length: 7", b"content-length: 5"],
            &[b"x: 1"],
        ] {
            let h = raw(lines);
            let before = h.content_length();
            assert_eq!(before, content_length(h.map()), "{lines:?}");
            assert_eq!(h.content_length(), before);
        }
    }

    #[test]
    fn validation_agrees_with_the_http_crate() {
        for b in 0..=255u8 {
            let byte = [b];
            assert_eq!(
                is_name(&byte),
                HeaderName::from_bytes(&byte).is_ok(),
                "name byte {b:#x}"
            );
            let value = [b'a', b, b'a'];
            assert_eq!(
                is_value(&value),
                HeaderValue::from_bytes(&value).is_ok(),
                "value byte {b:#x}"
            );
        }
    }

    #[test]
    fn retry_after_in_both_forms() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(&h, now),
            Some(std::time::Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(now + std::time::Duration::from_secs(30));
        h.insert("retry-after", later.parse().unwrap());
        assert_eq!(
            parse_retry_after(&h, now),
            Some(std::time::Duration::from_secs(30))
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
    }
}
