//! The protocol roles of `sluice-core` (`Worker`, `Engine`, `Session`,
//! `ResumeServer`) as Python classes on the handle base (`handle.rs`), and
//! the objects their events name (`WorkerStream`, `WorkerRef`,
//! `EngineStream`, `Peer`).

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use sluice_core::net::Endpoint;

use crate::convert;

pub(crate) mod engine;
pub(crate) mod resume;
pub(crate) mod session;
pub(crate) mod worker;

/// An endpoint argument: a `(host, port)` tuple, `"unix:PATH"`,
/// `"host:port"`, `"[v6]:port"`, or a Unix socket path (str, bytes or
/// os.PathLike).
pub(crate) fn endpoint_arg(obj: &Bound<'_, PyAny>) -> PyResult<Endpoint> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        let (host, port): (String, u16) = t.extract().map_err(|_| PyTypeError::new_err("an endpoint tuple is (host: str, port: int)"))?;
        return Ok(Endpoint::Tcp(host.trim_start_matches('[').trim_end_matches(']').to_string(), port));
    }
    if let Ok(s) = obj.extract::<String>() {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(p.into()));
        }
        if !s.starts_with('/') && !s.starts_with('.') {
            if let Some((_, port)) = s.rsplit_once(':') {
                if port.parse::<u16>().is_ok() {
                    return Endpoint::parse(&s).ok_or_else(|| PyValueError::new_err(format!("{s:?} is not an endpoint")));
                }
            }
        }
        return Ok(Endpoint::Unix(s.into()));
    }
    if obj.hasattr("__fspath__")? || obj.is_instance_of::<pyo3::types::PyBytes>() {
        let path: std::path::PathBuf = obj.extract()?;
        return Ok(Endpoint::Unix(path));
    }
    Err(PyTypeError::new_err("an endpoint is a Unix socket path, \"unix:PATH\", \"host:port\" or a (host, port) tuple"))
}

/// A TypeError for a channel option a role decides itself (``role`` of a
/// worker, ...) given as a keyword.
pub(crate) fn refuse_fixed(what: &str, pairs: &[(String, Bound<'_, PyAny>)], fixed: &[&str]) -> PyResult<()> {
    match pairs.iter().find(|(k, _)| fixed.contains(&k.as_str())) {
        Some((k, _)) => Err(PyTypeError::new_err(format!("{what}() does not take the option '{k}' (it sets it itself)"))),
        None => Ok(()),
    }
}

/// Seconds (a positive finite float) as a duration.
pub(crate) fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value.min(1e9)))
    } else {
        Err(PyValueError::new_err(format!("{what} must be a positive number of seconds, not {value}")))
    }
}

/// A `str` message argument (protocol text; str or bytes) as a Rust string
/// for the core's `&str` parameters: invalid UTF-8 is replaced.
pub(crate) fn text_string(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let b = convert::text_arg(obj, what)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Registers the role classes.
pub(crate) fn register(m: &Bound<'_, pyo3::types::PyModule>) -> PyResult<()> {
    m.add_class::<crate::handle::Handle>()?;
    m.add_class::<worker::Worker>()?;
    m.add_class::<worker::WorkerStream>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::WorkerRef>()?;
    m.add_class::<engine::EngineStream>()?;
    m.add_class::<session::Session>()?;
    m.add_class::<resume::ResumeServer>()?;
    m.add_class::<resume::Peer>()?;
    Ok(())
}
