//! The native core of the `httpfleet` Python package: httpfleet's clients and fleets, built
//! from its JSON configuration, with asyncio awaitables and blocking calls. The protocol the
//! package's users write against (`HttpClient`, `MultiClient`, ...) is Python, in
//! `httpfleet/`; this module is what it stands on.

#![forbid(unsafe_code)]

mod ahead;
mod bridge;
mod client;
mod errors;
mod response;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::NativeClient>()?;
    m.add_class::<response::NativeResponse>()?;
    m.add_class::<bridge::Completions>()?;
    m.add_class::<bridge::Running>()?;
    m.add_function(wrap_pyfunction!(errors::register_errors, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
