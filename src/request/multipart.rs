//! `multipart/form-data` (RFC 7578): [`Form`] of text fields and file parts, sent with a known
//! length and file contents streamed from disk, replayable like a file body.

use std::path::PathBuf;

use bytes::Bytes;

use super::Body;
use super::parts::Segment;

/// A `multipart/form-data` body: text fields and files, in the order added. Send it with
/// [`RequestBuilder::multipart`](crate::RequestBuilder::multipart), which sets its
/// `Content-Type`.
///
/// Files are read from disk as the request is sent (their lengths, taken when added, make the
/// body's `Content-Length`), and read again if the request is sent again (a redirect, a retry).
///
/// ```no_run
/// # async fn run(client: httpfleet::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use httpfleet::multipart::{Form, Part};
/// let form = Form::new()
///     .text("symbol", "BTCUSDT")
///     .file("report", "report.csv")?
///     .part("raw", Part::bytes(vec![1, 2, 3]).file_name("raw.bin"));
/// client.post("https://example.com/upload").multipart(form).send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Form {
    boundary: String,
    parts: Vec<(String, Part)>,
}

/// One part of a [`Form`]: text, bytes or a file, with an optional file name and content type.
#[derive(Debug)]
pub struct Part {
    content: Content,
    file_name: Option<String>,
    mime: Option<String>,
}

#[derive(Debug)]
enum Content {
    Bytes(Bytes),
    File(PathBuf, u64),
}

impl Part {
    /// A text value (no file name, no content type: a plain form field).
    pub fn text(value: impl Into<String>) -> Part {
        Part::bytes(value.into().into_bytes())
    }

    /// Bytes from memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Part {
        Part {
            content: Content::Bytes(bytes.into()),
            file_name: None,
            mime: None,
        }
    }

    /// The file at `path`, streamed from disk when sent; its file name is the path's last
    /// component and its content type is guessed from its extension
    /// (`application/octet-stream` when unknown). Fails if the file cannot be read now.
    pub fn file(path: impl Into<PathBuf>) -> std::io::Result<Part> {
        let path = path.into();
        let len = std::fs::metadata(&path)?.len();
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mime = mime_guess::from_path(&path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        Ok(Part {
            content: Content::File(path, len),
            file_name,
            mime: Some(mime),
        })
    }

    /// Sets the file name sent in `Content-Disposition`. Defaults to the file's own name for a
    /// file part, none otherwise.
    pub fn file_name(mut self, name: impl Into<String>) -> Part {
        self.file_name = Some(name.into());
        self
    }

    /// Sets the part's `Content-Type` (such as `text/csv`). A value with a control character
    /// is a `Builder` error when the form is sent. Defaults to the guess for a file part, none
    /// otherwise.
    pub fn mime(mut self, mime: impl Into<String>) -> Part {
        self.mime = Some(mime.into());
        self
    }
}

impl Default for Form {
    fn default() -> Self {
        Form::new()
    }
}

impl Form {
    /// An empty form with a boundary of its own.
    pub fn new() -> Form {
        Form {
            boundary: boundary(),
            parts: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Form {
        self.part(name, Part::text(value))
    }

    /// Adds the file at `path` (see [`Part::file`]).
    pub fn file(self, name: impl Into<String>, path: impl Into<PathBuf>) -> std::io::Result<Form> {
        Ok(self.part(name, Part::file(path)?))
    }

    /// Adds a part.
    pub fn part(mut self, name: impl Into<String>, part: Part) -> Form {
        self.parts.push((name.into(), part));
        self
    }

    /// The boundary between parts, as the `Content-Type` names it.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The `Content-Type` of the form.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body: each part's head, content and line break, then the closing boundary.
    pub(crate) fn into_body(self) -> crate::Result<Body> {
        let mut segments = Vec::with_capacity(self.parts.len() * 2 + 1);
        let mut len = 0u64;
        // Bytes not yet in a segment: heads, text and in-memory contents.
        let mut pending: Vec<u8> = Vec::new();
        for (name, part) in self.parts {
            let mut head = format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
                self.boundary,
                escape(&name)
            );
            if let Some(file_name) = &part.file_name {
                head.push_str(&format!("; filename=\"{}\"", escape(file_name)));
            }
            head.push_str("\r\n");
            if let Some(mime) = &part.mime {
                if mime.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return Err(crate::Error::builder(
                        "a multipart part's content type has a control character",
                    ));
                }
                head.push_str(&format!("Content-Type: {mime}\r\n"));
            }
            head.push_str("\r\n");
            pending.extend_from_slice(head.as_bytes());
            match part.content {
                Content::Bytes(b) => pending.extend_from_slice(&b),
                Content::File(path, file_len) => {
                    len += pending.len() as u64 + file_len;
                    segments.push(Segment::Bytes(std::mem::take(&mut pending).into()));
                    segments.push(Segment::File(path));
                }
            }
            pending.extend_from_slice(b"\r\n");
        }
        pending.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        len += pending.len() as u64;
        segments.push(Segment::Bytes(pending.into()));
        Ok(Body::from_parts(segments, len))
    }
}

/// A name or file name in a quoted `Content-Disposition` value: `"`, CR and LF
/// percent-encoded, as browsers do (WHATWG HTML, multipart/form-data encoding).
fn escape(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// 32 hex digits from the standard library's randomly keyed hasher, the process id and the
/// time: a boundary no file is likely to hold.
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from("httpfleet-");
    for round in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(round);
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
