//! httpfleet's errors as Python exceptions: the classes are defined in Python
//! (`httpfleet/_errors.py`, one per `ErrorKind`, the timeouts also `TimeoutError`) and handed
//! over once by `register_errors`; each error becomes an instance of its kind's class carrying
//! `kind`, `phase`, `status`, `backend`, `url` and the fleet's `attempts`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// Registers the exception classes by kind name (`"Connect"`, `"Timeout"`, `"Timeout.Body"`,
/// ..., and `"Error"` for a kind the mapping does not name).
#[pyfunction]
pub(crate) fn register_errors(py: Python<'_>, classes: Bound<'_, PyDict>) -> PyResult<()> {
    CLASSES
        .set(py, classes.unbind())
        .map_err(|_| PyRuntimeError::new_err("errors are registered once"))
}

/// The kind's name and its detail: `Timeout(Headers)` is `("Timeout", Some("Headers"))`.
fn split_kind(kind: httpfleet::ErrorKind) -> (String, Option<String>) {
    let text = format!("{kind:?}");
    match text.split_once('(') {
        Some((name, rest)) => (name.to_owned(), Some(rest.trim_end_matches(')').to_owned())),
        None => (text, None),
    }
}

/// `e` as an instance of its kind's registered class.
pub(crate) fn to_py(e: httpfleet::Error) -> PyErr {
    Python::attach(|py| build(py, &e).unwrap_or_else(|err| err))
}

fn build(py: Python<'_>, e: &httpfleet::Error) -> PyResult<PyErr> {
    let classes = CLASSES
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err(e.to_string()))?
        .bind(py);
    let (kind, detail) = split_kind(e.kind());
    // The most precise class registered: `Timeout.Headers`, then `Timeout`, then `Error`.
    let precise = detail.as_ref().map(|d| format!("{kind}.{d}"));
    let mut class = None;
    for key in precise
        .iter()
        .map(String::as_str)
        .chain([kind.as_str(), "Error"])
    {
        if let Some(c) = classes.get_item(key)? {
            class = Some(c);
            break;
        }
    }
    let class = class.ok_or_else(|| PyRuntimeError::new_err(e.to_string()))?;
    let exc = class.call1((e.to_string(),))?;
    let phase = if kind == "Timeout" { detail } else { None };
    exc.setattr("kind", kind)?;
    exc.setattr("phase", phase)?;
    exc.setattr("status", e.status().map(|s| s.as_u16()))?;
    exc.setattr("backend", e.backend().map(|b| b.to_string()))?;
    exc.setattr("url", e.url().map(|u| u.to_string()))?;
    let attempts = PyList::empty(py);
    for a in e.history() {
        let d = PyDict::new(py);
        d.set_item("member", &a.member)?;
        d.set_item("outcome", &a.outcome)?;
        attempts.append(d)?;
    }
    exc.setattr("attempts", attempts)?;
    Ok(PyErr::from_value(exc))
}
