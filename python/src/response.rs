//! `NativeResponse`: a response's head for the Python layer, with its body either read whole
//! (`content`) or still to read piece by piece (`next_chunk`, `next_chunk_blocking`).

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::ahead::{Ahead, Taken};
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

/// The body still to read.
enum Rest {
    None,
    Async(Mutex<Option<Ahead>>),
    Blocking(Box<Mutex<Option<httpfleet::blocking::Response>>>),
}

/// The response of `$resp`'s head, its body still in `$resp`.
macro_rules! head_of {
    ($resp:expr) => {{
        let r = &$resp;
        NativeResponse {
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
                    let latin1 = v.as_bytes().iter().map(|&b| b as char).collect();
                    (n.as_str().to_owned(), latin1)
                })
                .collect(),
            content: None,
            rest: Rest::None,
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
    /// `resp` from async code, its body read whole unless `stream`.
    pub(crate) async fn from_async(resp: httpfleet::Response, stream: bool) -> PyResult<Self> {
        let mut out = head_of!(resp);
        if stream {
            out.rest = Rest::Async(Mutex::new(Some(Ahead::start(resp, bridge::runtime()?))));
        } else {
            out.content = Some(resp.bytes().await.map_err(to_py)?);
        }
        Ok(out)
    }

    /// `resp` from blocking code, its body read whole unless `stream`.
    pub(crate) fn from_blocking(
        resp: httpfleet::blocking::Response,
        stream: bool,
    ) -> PyResult<Self> {
        let mut out = head_of!(resp);
        if stream {
            out.rest = Rest::Blocking(Box::new(Mutex::new(Some(resp))));
        } else {
            out.content = Some(resp.bytes().map_err(to_py)?);
        }
        Ok(out)
    }
}

#[pymethods]
impl NativeResponse {
    /// The body read with the head (`None` for a streamed response).
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.content.as_deref().map(|b| PyBytes::new(py, b))
    }

    /// The body's pieces that have arrived, joined (`b""`: none yet; `None`: the end), at once.
    fn take_ready<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let _runtime = bridge::runtime()?.enter();
        let taken = match &self.rest {
            Rest::Async(ahead) => match &*ahead.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(ahead) => ahead.take().map_err(to_py)?,
                None => Taken::End,
            },
            _ => Taken::End,
        };
        match taken {
            Taken::Nothing => Ok(Some(PyBytes::new(py, b""))),
            taken => joined(py, taken),
        }
    }

    /// Waits for the body's next pieces (`None` at its end), into `future` through the loop's
    /// `completions`.
    fn next_chunk(
        &self,
        py: Python<'_>,
        completions: &Completions,
        future: Py<PyAny>,
    ) -> PyResult<Running> {
        let next = match &self.rest {
            Rest::Async(ahead) => ahead
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(Ahead::next),
            _ => None,
        };
        let fut = async move {
            match next {
                Some(next) => next.await.map_err(to_py),
                None => Ok(Taken::End),
            }
        };
        bridge::spawn(py, completions, future, fut, |py, taken| {
            Ok(match joined(py, taken)? {
                Some(b) => b.into_any().unbind(),
                None => py.None(),
            })
        })
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
            Rest::Async(ahead) => {
                ahead.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
            Rest::Blocking(rest) => {
                rest.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
        }
    }
}

/// Pieces joined into one `bytes`; `None` at the end.
fn joined(py: Python<'_>, taken: Taken) -> PyResult<Option<Bound<'_, PyBytes>>> {
    let Taken::Pieces(pieces) = taken else {
        return Ok(None);
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
    Ok(Some(joined))
}
