//! `NativeResponse`: a response's head for the Python layer, with its body either read whole
//! (`content`) or still to read piece by piece (`next_chunk`, `next_chunk_blocking`).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bridge::{self, Completions, Running};
use crate::errors::to_py;

/// A response's head, and its body whole or still to read.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct NativeResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    http_version: &'static str,
    #[pyo3(get)]
    backend: String,
    #[pyo3(get)]
    attempts: u32,
    #[pyo3(get)]
    member: Option<String>,
    /// Name and value of each header line, in order.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    content: Option<Bytes>,
    rest: Rest,
}

/// The most a piece of a streamed body gathers of what has already arrived.
const GATHER: usize = 256 * 1024;

/// The body still to read.
enum Rest {
    None,
    Async(Arc<tokio::sync::Mutex<Reading>>),
    Blocking(Box<std::sync::Mutex<Option<httpfleet::blocking::Response>>>),
}

/// An async body being read: the response until its end, and an error met while gathering,
/// for the next read.
struct Reading {
    resp: Option<httpfleet::Response>,
    failed: Option<httpfleet::Error>,
}

impl Reading {
    /// The next piece, with every piece that has already arrived after it (up to [`GATHER`]):
    /// one wake-up of the event loop for many pieces. `None` at the end.
    async fn next(&mut self) -> httpfleet::Result<Option<Vec<Bytes>>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(resp) = self.resp.as_mut() else {
            return Ok(None);
        };
        let Some(first) = resp.chunk().await? else {
            self.resp = None;
            return Ok(None);
        };
        let mut len = first.len();
        let mut pieces = vec![first];
        // `chunk` is cancel-safe: polled once and dropped, it loses nothing.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut ended = false;
        while len < GATHER && !ended {
            match std::pin::pin!(resp.chunk()).poll(&mut cx) {
                Poll::Ready(Ok(Some(piece))) => {
                    len += piece.len();
                    pieces.push(piece);
                }
                Poll::Ready(Ok(None)) => ended = true,
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e);
                    ended = true;
                }
                Poll::Pending => break,
            }
        }
        if ended {
            self.resp = None;
        }
        Ok(Some(pieces))
    }
}

/// The head of a response of either surface.
struct Head {
    status: u16,
    url: String,
    http_version: &'static str,
    backend: String,
    attempts: u32,
    member: Option<String>,
    headers: Vec<(String, String)>,
}

macro_rules! head_of {
    ($resp:expr) => {{
        let r = &$resp;
        Head {
            status: r.status().as_u16(),
            url: r.url().to_string(),
            http_version: version(r.version()),
            backend: r.backend().to_string(),
            attempts: r.attempts(),
            member: r.member().map(str::to_owned),
            headers: r
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.as_bytes().iter().map(|&b| b as char).collect(),
                    )
                })
                .collect(),
        }
    }};
}

fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

impl NativeResponse {
    fn with(head: Head, content: Option<Bytes>, rest: Rest) -> Self {
        let Head {
            status,
            url,
            http_version,
            backend,
            attempts,
            member,
            headers,
        } = head;
        NativeResponse {
            status,
            url,
            http_version,
            backend,
            attempts,
            member,
            headers,
            content,
            rest,
        }
    }

    /// `resp` from async code, its body read whole unless `stream`.
    pub(crate) async fn from_async(resp: httpfleet::Response, stream: bool) -> PyResult<Self> {
        let head = head_of!(resp);
        if stream {
            let reading = Reading {
                resp: Some(resp),
                failed: None,
            };
            let rest = Rest::Async(Arc::new(tokio::sync::Mutex::new(reading)));
            return Ok(Self::with(head, None, rest));
        }
        let body = resp.bytes().await.map_err(to_py)?;
        Ok(Self::with(head, Some(body), Rest::None))
    }

    /// `resp` from blocking code, its body read whole unless `stream`.
    pub(crate) fn from_blocking(
        resp: httpfleet::blocking::Response,
        stream: bool,
    ) -> PyResult<Self> {
        let head = head_of!(resp);
        if stream {
            let rest = Rest::Blocking(Box::new(std::sync::Mutex::new(Some(resp))));
            return Ok(Self::with(head, None, rest));
        }
        let body = resp.bytes().map_err(to_py)?;
        Ok(Self::with(head, Some(body), Rest::None))
    }
}

#[pymethods]
impl NativeResponse {
    /// The body read with the head (`None` for a streamed response).
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.content.as_deref().map(|b| PyBytes::new(py, b))
    }

    /// Reads the body's next pieces (`None` at its end) into `future`, through the loop's
    /// `completions`: what has arrived, up to 256 KiB, in one `bytes`.
    fn next_chunk(&self, completions: &Completions, future: Py<PyAny>) -> Running {
        let rest = match &self.rest {
            Rest::Async(rest) => Some(rest.clone()),
            _ => None,
        };
        let fut = async move {
            match rest {
                Some(rest) => rest.lock().await.next().await.map_err(to_py),
                None => Ok(None),
            }
        };
        bridge::spawn(
            completions,
            future,
            fut,
            |py, pieces: Option<Vec<Bytes>>| {
                let Some(pieces) = pieces else {
                    return Ok(py.None());
                };
                let len = pieces.iter().map(Bytes::len).sum();
                let joined = PyBytes::new_with(py, len, |out| {
                    let mut at = 0;
                    for p in &pieces {
                        out[at..at + p.len()].copy_from_slice(p);
                        at += p.len();
                    }
                    Ok(())
                })?;
                Ok(joined.into_any().unbind())
            },
        )
    }

    /// The body's next piece, `None` at its end, without the GIL while it waits.
    fn next_chunk_blocking<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let Rest::Blocking(rest) = &self.rest else {
            return Ok(None);
        };
        let piece = py.detach(|| {
            let mut guard = rest.lock().unwrap_or_else(|p| p.into_inner());
            let Some(resp) = guard.as_mut() else {
                return Ok(None);
            };
            let piece = resp.chunk().map_err(to_py)?;
            if piece.is_none() {
                *guard = None;
            }
            Ok::<_, PyErr>(piece)
        })?;
        Ok(piece.map(|p| PyBytes::new(py, &p)))
    }

    /// Drops the rest of the body: its connection is closed, not reused.
    fn close(&self) {
        match &self.rest {
            Rest::None => {}
            Rest::Async(rest) => {
                if let Ok(mut reading) = rest.try_lock() {
                    reading.resp = None;
                }
            }
            Rest::Blocking(rest) => {
                rest.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
        }
    }
}
