//! Cocaine services (`sluice_core::services`) as Python classes: the client
//! side (`Locator`, `Service`, `Call`, `Reply`, `Resolved`, `Logger`) and
//! the serving side (`ServiceDef`, `Responder`, `attach` → `Attached`,
//! `host` → `Hosted` → `Publication`, `LocatorServer` and its `Registry`).
//!
//! Threads: blocking calls (resolve, connect, the replies of a call, attach,
//! publish) run the core's futures on the calling thread with the GIL
//! released, in slices so that Ctrl-C is honoured, and accept a `timeout`.
//! Handlers of a `ServiceDef` never run on the core's I/O threads: the I/O
//! thread hands each call to a pool of handler threads ([`Pool`]), which
//! take the GIL and run the Python function. A handler may therefore make
//! blocking sluice calls itself — even to its own service — without
//! deadlocking: when no handler thread is free, another one starts (up to
//! [`MAX_HANDLER_THREADS`]). Registry changes and demo log records reach
//! their Python callables in order on one notification thread.

//!
//! Files: [`client`] (Locator, Service, Call, Logger), [`handler_threads`]
//! (where handlers and notifications run), [`providing`] (ServiceDef,
//! Responder, attach, host), [`locator_server`] (LocatorServer, Registry).

use std::future::Future;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::Endpoint;
use sluice_core::services::{self as svc, Error as SvcError, Level};
use sluice_core::wire::Value;

use crate::convert::{py_to_value, value_to_py};
use crate::{errors, wait};

mod client;
mod handler_threads;
mod locator_server;
mod providing;

use client::{Call, Locator, Logger, Reply, Resolved, Service};
use handler_threads::{MAX_HANDLER_THREADS, MAX_QUEUED_CALLS};
use locator_server::{Entry, LocatorServer, Registry};
use providing::{attach, host, Attached, Hosted, Publication, Responder, ServiceDef};

// Blocking with the GIL released.

/// The longest wait between signal checks.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` to completion on this thread with the GIL released: in
/// slices (Ctrl-C is honoured between them), for `timeout` seconds at most
/// (None: no limit; `Timeout` after it).
pub(crate) fn block<T, F>(py: Python<'_>, timeout: Option<f64>, fut: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, SvcError>> + Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(errors::service(py, SvcError::InRuntime));
    }
    let handle = sluice_core::net::runtime::handle()?;
    let deadline = wait::deadline(timeout)?;
    let mut fut = Box::pin(fut);
    loop {
        let slice = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()).min(SLICE));
        let r = py.detach(|| handle.block_on(async { tokio::time::timeout(slice, &mut fut).await }));
        if let Ok(v) = r {
            return v.map_err(|e| errors::service(py, e));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(errors::service(py, SvcError::Timeout));
        }
    }
}

// Values and endpoints.

pub(crate) fn values_to_list<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for v in values {
        list.append(value_to_py(py, v)?)?;
    }
    Ok(list)
}

pub(crate) fn args_to_values(args: &Bound<'_, PyTuple>) -> PyResult<Vec<Value>> {
    args.iter().map(|a| py_to_value(&a, 0)).collect()
}

/// The `value` arguments as one Python object: none → None, one → it,
/// several → a tuple.
pub(crate) fn values_to_result<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyAny>> {
    match values {
        [] => Ok(py.None().into_bound(py)),
        [v] => value_to_py(py, v),
        vs => Ok(PyTuple::new(py, values_to_list(py, vs)?.iter())?.into_any()),
    }
}

/// The inverse of [`values_to_result`] for a handler's return value: None
/// → no arguments, a tuple → its items, anything else → one argument.
pub(crate) fn result_to_values(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return args_to_values(t);
    }
    Ok(vec![py_to_value(obj, 0)?])
}

/// An endpoint for Python: `(host, port)` for TCP, `"unix:PATH"` otherwise.
pub(crate) fn endpoint_to_py<'py>(py: Python<'py>, e: &Endpoint) -> PyResult<Bound<'py, PyAny>> {
    match e {
        Endpoint::Tcp(h, p) => Ok((h.as_str(), *p).into_pyobject(py)?.into_any()),
        e => Ok(e.to_string().into_pyobject(py)?.into_any()),
    }
}

pub(crate) fn endpoints_to_py<'py>(py: Python<'py>, eps: &[Endpoint]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for e in eps {
        list.append(endpoint_to_py(py, e)?)?;
    }
    Ok(list)
}

/// `"host:port"`, `"[v6]:port"`, `"unix:PATH"`, a path, or `(host, port)`.
pub(crate) fn endpoint_arg(obj: &Bound<'_, PyAny>) -> PyResult<Endpoint> {
    if let Ok((host, port)) = obj.extract::<(String, u16)>() {
        return Ok(Endpoint::Tcp(host, port));
    }
    let s: String =
        obj.extract().map_err(|_| PyTypeError::new_err("an endpoint is \"host:port\", \"unix:PATH\" or a (host, port) tuple"))?;
    Endpoint::parse(&s).ok_or_else(|| PyValueError::new_err(format!("bad endpoint {s:?}: expected \"host:port\" or \"unix:PATH\"")))
}

pub(crate) fn endpoints_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Endpoint>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(vec![Endpoint::Tcp("localhost".into(), svc::LOCATOR_PORT)]);
    };
    if obj.extract::<String>().is_ok() || obj.extract::<(String, u16)>().is_ok() {
        return Ok(vec![endpoint_arg(obj)?]);
    }
    let eps = obj.try_iter()?.map(|e| endpoint_arg(&e?)).collect::<PyResult<Vec<_>>>()?;
    if eps.is_empty() {
        return Err(PyValueError::new_err("a Locator needs at least one endpoint"));
    }
    Ok(eps)
}

pub(crate) fn duration_arg(what: &str, secs: Option<f64>) -> PyResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(_) => Err(PyValueError::new_err(format!("{what} must be a non-negative number of seconds or None"))),
    }
}

pub(crate) fn level_arg(obj: &Bound<'_, PyAny>) -> PyResult<Level> {
    if let Ok(n) = obj.extract::<i64>() {
        return Ok(Level::from_i64(n));
    }
    let s: String = obj.extract().map_err(|_| PyTypeError::new_err("a level is 'debug', 'info', 'warning', 'error' or 0..3"))?;
    Level::from_name(&s).ok_or_else(|| PyValueError::new_err(format!("unknown level {s:?} (debug, info, warning, error)")))
}

pub(crate) fn graph_to_py<'py>(py: Python<'py>, graph: &svc::graph::Graph) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for m in graph.methods() {
        let entry = (m.name.as_str(), value_to_py(py, &m.tx.to_value())?, value_to_py(py, &m.rx.to_value())?);
        d.set_item(m.id, entry)?;
    }
    Ok(d)
}

pub(crate) fn register(m: &Bound<'_, pyo3::types::PyModule>) -> PyResult<()> {
    m.add_class::<Locator>()?;
    m.add_class::<Resolved>()?;
    m.add_class::<Service>()?;
    m.add_class::<Call>()?;
    m.add_class::<Reply>()?;
    m.add_class::<Logger>()?;
    m.add_class::<ServiceDef>()?;
    m.add_class::<Responder>()?;
    m.add_class::<Attached>()?;
    m.add_class::<Hosted>()?;
    m.add_class::<Publication>()?;
    m.add_class::<Entry>()?;
    m.add_class::<Registry>()?;
    m.add_class::<LocatorServer>()?;
    m.add_function(wrap_pyfunction!(attach, m)?)?;
    m.add_function(wrap_pyfunction!(host, m)?)?;
    m.add("MAX_HANDLER_THREADS", MAX_HANDLER_THREADS)?;
    m.add("MAX_QUEUED_CALLS", MAX_QUEUED_CALLS)?;
    Ok(())
}
