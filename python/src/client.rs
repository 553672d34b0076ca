//! `NativeClient`: an httpfleet client (one backend or a fleet) for the Python layer, on one
//! surface: async requests run on tokio and resolve asyncio futures (`bridge.rs`), blocking
//! ones release the GIL while they wait.

use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::bridge::{self, Completions, Running};
use crate::errors::to_py;
use crate::response::NativeResponse;

/// One backend or a fleet, async or blocking.
#[pyclass(frozen, module = "httpfleet._native")]
pub(crate) struct NativeClient {
    surface: Surface,
}

enum Surface {
    Async(httpfleet::Client),
    Blocking(httpfleet::blocking::Client),
}

/// What a request carries besides its method and URL: a dict with these keys.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Parts {
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
    body: Option<PyBackedBytes>,
    timeout: Option<f64>,
    follow_redirects: Option<bool>,
    max_redirects: Option<u32>,
}

fn config(json: &str) -> PyResult<httpfleet::Config> {
    httpfleet::Config::from_json_str(json).map_err(to_py)
}

#[pymethods]
impl NativeClient {
    /// A client of one backend, from httpfleet's configuration as JSON.
    #[new]
    fn new(config_json: &str, blocking: bool) -> PyResult<Self> {
        let config = config(config_json)?;
        let surface = if blocking {
            Surface::Blocking(httpfleet::blocking::Client::from_config(&config).map_err(to_py)?)
        } else {
            Surface::Async(httpfleet::Client::from_config(&config).map_err(to_py)?)
        };
        Ok(NativeClient { surface })
    }

    /// A fleet under the policy of `config_json`, of members each built from its own
    /// configuration (its backend inside), spreading requests by `strategy`: `single`,
    /// `failover`, `round_robin`, `random`, `hedged` (after `hedge_delay` seconds) or
    /// `adaptive`.
    #[staticmethod]
    #[pyo3(signature = (config_json, members, strategy, blocking, hedge_delay=None))]
    fn fleet(
        config_json: &str,
        members: Vec<String>,
        strategy: &str,
        blocking: bool,
        hedge_delay: Option<f64>,
    ) -> PyResult<Self> {
        use httpfleet::Strategy;
        let config = config(config_json)?;
        let strategy = match strategy {
            "single" => Strategy::Single,
            "failover" => Strategy::Failover,
            "round_robin" => Strategy::RoundRobin,
            "random" => Strategy::Random { seed: None },
            "hedged" => Strategy::hedged(seconds(hedge_delay.unwrap_or(0.05))?),
            "adaptive" => Strategy::adaptive(),
            other => return Err(PyValueError::new_err(format!("no strategy {other:?}"))),
        };
        let mut fleet = httpfleet::FleetBuilder::new(&config).strategy(strategy);
        for json in members {
            let backend = httpfleet::Backend::from_config(&self::config(&json)?).map_err(to_py)?;
            fleet = fleet.member(backend);
        }
        let surface = if blocking {
            Surface::Blocking(fleet.build_blocking().map_err(to_py)?)
        } else {
            Surface::Async(fleet.build().map_err(to_py)?)
        };
        Ok(NativeClient { surface })
    }

    /// Sends a request from async code: its response (the body read whole unless `stream`)
    /// resolves `future` through the loop's `completions`.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        parts: Parts,
        stream: bool,
        completions: &Completions,
        future: Py<PyAny>,
    ) -> PyResult<Running> {
        let Surface::Async(client) = &self.surface else {
            return Err(PyValueError::new_err(
                "a blocking client: use send_blocking",
            ));
        };
        let req = parts.apply(client.request(method, url))?;
        let client = client.clone();
        let fut = async move {
            let resp = client.execute(req).await.map_err(to_py)?;
            NativeResponse::from_async(resp, stream).await
        };
        bridge::spawn(py, completions, future, fut, |py, resp| {
            Ok(Py::new(py, resp)?.into_any())
        })
    }

    /// Sends a request from blocking code, without the GIL while it waits.
    fn send_blocking(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        parts: Parts,
        stream: bool,
    ) -> PyResult<NativeResponse> {
        let Surface::Blocking(client) = &self.surface else {
            return Err(PyValueError::new_err("an async client: use send"));
        };
        let req = parts.apply(client.request(method, url))?;
        py.detach(|| {
            let resp = client.execute(req).map_err(to_py)?;
            NativeResponse::from_blocking(resp, stream)
        })
    }
}

impl Parts {
    /// The request `builder` starts, with these parts.
    fn apply<C>(
        self,
        mut builder: httpfleet::RequestBuilder<'_, C>,
    ) -> PyResult<httpfleet::Request> {
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !self.params.is_empty() {
            builder = builder.query(&self.params);
        }
        if let Some(body) = self.body {
            builder = builder.body(Bytes::from_owner(body));
        }
        if let Some(t) = self.timeout {
            builder = builder.timeout(seconds(t)?);
        }
        if let Some(follow) = self.follow_redirects {
            builder = builder.follow_redirects(follow);
        }
        if let Some(max) = self.max_redirects {
            builder = builder.max_redirects(max);
        }
        builder.build().map_err(to_py)
    }
}

fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{s} is not a number of seconds")))
}
