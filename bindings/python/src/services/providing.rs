//! Providing services from Python: `ServiceDef` (methods as Python
//! functions), `Responder` (a streaming answer), `attach` → `Attached`,
//! `host` → `Hosted` → `Publication`.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::Endpoint;
use sluice_core::services::graph::Node;
use sluice_core::services::{self as svc, ServiceError};
use sluice_core::wire::Value;

use super::client::Locator;
use super::handler_threads::{exception_to_error, with_python};
use super::{args_to_values, block, endpoint_arg, endpoints_to_py, graph_to_py, result_to_values, values_to_list};
use crate::errors;
use crate::handle::lock;

/// Answers one call of a streaming method: ``write(*args)`` any number of
/// times, then ``close()``; or ``error(category, code, message)``. It may
/// be kept and answered later, from any thread. Dropped unanswered, it
/// sends ``error([7, 7], ...)`` so the caller never waits forever.
#[pyclass(frozen, module = "sluice", name = "Responder")]
pub struct Responder {
    inner: Mutex<Option<svc::Responder>>,
    method: String,
}

impl Responder {
    fn send_impl(&self, py: Python<'_>, name: &str, args: Vec<Value>) -> PyResult<()> {
        let mut g = lock(&self.inner);
        let r = g.as_mut().ok_or_else(|| errors::closed(py, "the answer is complete"))?;
        let res = r.send(name, &args);
        if r.is_done() {
            *g = None;
        }
        res.map_err(|e| errors::service(py, e))
    }

    fn fail_with(&self, e: &ServiceError) {
        if let Some(mut r) = lock(&self.inner).take() {
            let _ = r.error(e);
        }
    }
}

#[pymethods]
impl Responder {
    /// The method called.
    #[getter]
    fn method(&self) -> &str {
        &self.method
    }

    /// Whether the answer is complete (closed or failed).
    #[getter]
    fn done(&self) -> bool {
        lock(&self.inner).as_ref().is_none_or(|r| r.is_done())
    }

    /// ``write(*args)``: one piece of the stream.
    #[pyo3(signature = (*args))]
    fn write(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let v = args_to_values(args)?;
        self.send_impl(py, "write", v)
    }

    /// ``close()``: the end of the stream.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.send_impl(py, "close", Vec::new())
    }

    /// ``value(*args)``: the result, for a primitive protocol.
    #[pyo3(signature = (*args))]
    fn value(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let v = args_to_values(args)?;
        self.send_impl(py, "value", v)
    }

    /// ``error([category, code], message)``: ends the answer with an error.
    #[pyo3(signature = (category, code, message=""))]
    fn error(&self, py: Python<'_>, category: Option<i64>, code: i64, message: &str) -> PyResult<()> {
        let e = ServiceError { category, code, message: message.to_string() };
        self.send_impl(py, "error", e.to_args())
    }

    /// Sends the message ``name`` of the method's rx protocol.
    #[pyo3(signature = (name, *args))]
    fn send(&self, py: Python<'_>, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let v = args_to_values(args)?;
        self.send_impl(py, name, v)
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Responder {}{}>", self.method, if self.done() { " done" } else { "" })
    }
}

/// Registers a handler under a name: what ``ServiceDef.primitive(name)``
/// and ``ServiceDef.streaming(name)`` return for use as a decorator.
#[pyclass(frozen, module = "sluice", name = "_MethodDecorator")]
pub struct MethodDecorator {
    def: Py<ServiceDef>,
    name: String,
    streaming: bool,
}

#[pymethods]
impl MethodDecorator {
    fn __call__<'py>(&self, handler: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.def.get().add(&self.name, handler.clone(), self.streaming)?;
        Ok(handler)
    }
}

/// A service to provide: ``ServiceDef(name, version=1)`` and its methods,
/// defined by Python functions::
///
///     svc = sluice.ServiceDef("greeter")
///
///     @svc.primitive("hello")
///     def hello(name):                 # -> value(...)
///         return f"hello, {name}"
///
///     @svc.streaming("count")
///     def count(out, n):               # out: a Responder
///         for i in range(n):
///             out.write(i)
///         out.close()
///
/// A primitive handler's return value becomes the ``value`` reply (None:
/// no arguments, a tuple: its items as the arguments, anything else: one
/// argument). A handler raising :class:`ServiceError` answers that error;
/// any other exception answers ``error([7, 7], "Type: text")``.
///
/// Handlers run with the GIL on sluice's handler threads (never on an I/O
/// thread), several at once when calls overlap; they may make blocking
/// sluice calls, also to their own service. Serve the definition with
/// :func:`attach` or :func:`host`; methods added later are not seen by
/// services already started.
#[pyclass(frozen, module = "sluice", name = "ServiceDef")]
pub struct ServiceDef {
    def: Mutex<svc::ServiceDef>,
}

impl ServiceDef {
    fn add(&self, name: &str, handler: Bound<'_, PyAny>, streaming: bool) -> PyResult<()> {
        if !handler.is_callable() {
            return Err(PyTypeError::new_err(format!("the handler of '{name}' must be callable")));
        }
        let f = Arc::new(handler.unbind());
        let mut g = lock(&self.def);
        if g.graph().method(name).is_some() {
            return Err(PyValueError::new_err(format!("'{}' already has a method '{name}'", g.name())));
        }
        let old = std::mem::replace(&mut *g, svc::ServiceDef::new("", 0));
        *g = if streaming {
            old.method(name, Node::Terminal, Node::streaming(), move |req, out| {
                let f = f.clone();
                with_python(out, move |py, out| run_streaming(py, &f, req, out));
                None
            })
        } else {
            old.method(name, Node::Terminal, Node::primitive(), move |req, out| {
                let f = f.clone();
                with_python(out, move |py, out| run_primitive(py, &f, req, out));
                None
            })
        };
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> svc::ServiceDef {
        lock(&self.def).clone()
    }
}

fn run_primitive(py: Python<'_>, f: &Py<PyAny>, req: svc::Request, mut out: svc::Responder) {
    let r = values_to_list(py, &req.args)
        .and_then(|l| PyTuple::new(py, l.iter()))
        .and_then(|args| f.call1(py, args))
        .and_then(|v| result_to_values(v.bind(py)));
    let _ = match r {
        Ok(values) => out.value(values),
        Err(e) => out.error(&exception_to_error(py, &e)),
    };
}

fn run_streaming(py: Python<'_>, f: &Py<PyAny>, req: svc::Request, out: svc::Responder) {
    let responder = match Py::new(py, Responder { inner: Mutex::new(Some(out)), method: req.method.clone() }) {
        Ok(r) => r,
        Err(_) => return,
    };
    let r = values_to_list(py, &req.args).and_then(|l| {
        let mut items: Vec<Bound<'_, PyAny>> = vec![responder.bind(py).clone().into_any()];
        items.extend(l.iter());
        let args = PyTuple::new(py, items)?;
        f.call1(py, args)
    });
    if let Err(e) = r {
        responder.get().fail_with(&exception_to_error(py, &e));
    }
}

#[pymethods]
impl ServiceDef {
    #[new]
    #[pyo3(signature = (name, version=1))]
    fn new(name: &str, version: u64) -> ServiceDef {
        ServiceDef { def: Mutex::new(svc::ServiceDef::new(name, version)) }
    }

    /// The service name.
    #[getter]
    fn name(&self) -> String {
        lock(&self.def).name().to_string()
    }

    /// The protocol version.
    #[getter]
    fn version(&self) -> u64 {
        lock(&self.def).version()
    }

    /// The method names, by id.
    #[getter]
    fn methods(&self) -> Vec<String> {
        lock(&self.def).graph().methods().iter().map(|m| m.name.clone()).collect()
    }

    /// The method graph, as :attr:`Resolved.graph`.
    #[getter]
    fn graph<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = lock(&self.def).graph().clone();
        graph_to_py(py, &g)
    }

    /// Adds a primitive method (``value`` or ``error``): ``handler(*args)``
    /// returns the result. Without ``handler``, returns a decorator.
    #[pyo3(signature = (name, handler=None))]
    fn primitive<'py>(slf: &Bound<'py, Self>, name: &str, handler: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        Self::define(slf, name, handler, false)
    }

    /// Adds a streaming method (``write*`` then ``close``, or ``error``):
    /// ``handler(responder, *args)`` answers through the
    /// :class:`Responder` (now or later). Without ``handler``, returns a
    /// decorator.
    #[pyo3(signature = (name, handler=None))]
    fn streaming<'py>(slf: &Bound<'py, Self>, name: &str, handler: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        Self::define(slf, name, handler, true)
    }

    fn __repr__(&self) -> String {
        let d = lock(&self.def);
        format!(
            "<sluice.ServiceDef {} v{} methods={:?}>",
            d.name(),
            d.version(),
            d.graph().methods().iter().map(|m| m.name.as_str()).collect::<Vec<_>>()
        )
    }
}

impl ServiceDef {
    fn define<'py>(slf: &Bound<'py, Self>, name: &str, handler: Option<Bound<'py, PyAny>>, streaming: bool) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match handler {
            Some(h) => {
                slf.get().add(name, h.clone(), streaming)?;
                Ok(h)
            }
            None => Ok(Bound::new(py, MethodDecorator { def: slf.clone().unbind(), name: name.to_string(), streaming })?.into_any()),
        }
    }
}

/// A service provided over this program's connection to a sluice Locator
/// (from :func:`attach`): online while this lives and the connection is
/// up; :meth:`detach` (or ``with``'s end) takes it offline.
#[pyclass(frozen, module = "sluice", name = "Attached")]
pub struct Attached {
    inner: Mutex<Option<svc::Attached>>,
    name: String,
}

#[pymethods]
impl Attached {
    /// The service name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Where the Locator lets other clients reach the service.
    #[getter]
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let eps = lock(&self.inner).as_ref().map(|a| a.endpoints().to_vec()).unwrap_or_default();
        endpoints_to_py(py, &eps)
    }

    /// Whether the connection to the Locator is up (and the service online).
    #[getter]
    fn live(&self) -> bool {
        lock(&self.inner).as_ref().is_some_and(svc::Attached::is_live)
    }

    /// Takes the service offline (``discard``) and closes the connection.
    /// Calls of it in progress end. Idempotent.
    fn detach(&self) {
        let a = lock(&self.inner).take();
        drop(a);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.detach();
        false
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Attached {}{}>", self.name, if self.live() { "" } else { " (offline)" })
    }
}

/// Attaches ``service`` to the Locator: the Locator announces it and relays
/// every call of it over this program's own connection (no listening
/// socket here). Returns the :class:`Attached`; blocks until the Locator
/// has accepted it (GIL released). Raises :class:`ServiceError` if the
/// Locator refuses (e.g. the name is online already).
#[pyfunction]
#[pyo3(signature = (locator, service, *, timeout=None))]
pub(crate) fn attach(py: Python<'_>, locator: &Locator, service: &ServiceDef, timeout: Option<f64>) -> PyResult<Attached> {
    let def = service.snapshot();
    let name = def.name().to_string();
    let loc = &locator.inner;
    let a = block(py, timeout, svc::Attached::attach(loc, def))?;
    Ok(Attached { inner: Mutex::new(Some(a)), name })
}

/// A service listening on its own endpoint (from :func:`host`); stops with
/// :meth:`close` (or ``with``'s end).
#[pyclass(frozen, module = "sluice", name = "Hosted")]
pub struct Hosted {
    pub(crate) inner: svc::Hosted,
}

#[pymethods]
impl Hosted {
    /// The service name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Where it listens (the actual port): ``(host, port)``.
    #[getter]
    fn address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::address(py, self.inner.local())
    }

    /// The endpoints announced for it (a wildcard address as loopback).
    #[getter]
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        endpoints_to_py(py, &self.inner.endpoints())
    }

    /// How many callers are connected.
    #[getter]
    fn connections(&self) -> usize {
        self.inner.connections()
    }

    /// Announces the service to a Locator (``publish``): it stays online
    /// there while the returned :class:`Publication` lives (GIL released
    /// while waiting for the Locator's answer).
    #[pyo3(signature = (locator, *, timeout=None))]
    fn publish(&self, py: Python<'_>, locator: &Locator, timeout: Option<f64>) -> PyResult<Publication> {
        let inner = &self.inner;
        let loc = &locator.inner;
        let p = block(py, timeout, inner.publish(loc))?;
        Ok(Publication { name: p.name().to_string(), inner: Mutex::new(Some(p)) })
    }

    /// Stops listening and closes the callers' connections.
    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Hosted {} at {}>", self.inner.name(), self.inner.local())
    }
}

/// Serves ``service`` on ``endpoint`` (``"host:port"``, port 0 picks a free
/// one; ``"unix:PATH"``) and returns the :class:`Hosted`.
#[pyfunction]
#[pyo3(signature = (service, endpoint=None))]
pub(crate) fn host(py: Python<'_>, service: &ServiceDef, endpoint: Option<&Bound<'_, PyAny>>) -> PyResult<Hosted> {
    let ep = match endpoint {
        Some(e) if !e.is_none() => endpoint_arg(e)?,
        _ => Endpoint::Tcp("127.0.0.1".into(), 0),
    };
    let def = service.snapshot();
    svc::Hosted::bind(def, &ep).map(|h| Hosted { inner: h }).map_err(|e| errors::service(py, e))
}

/// A hosted service announced to a Locator (from :meth:`Hosted.publish`):
/// online while this lives; :meth:`discard` takes it offline.
#[pyclass(frozen, module = "sluice", name = "Publication")]
pub struct Publication {
    inner: Mutex<Option<svc::Publication>>,
    name: String,
}

#[pymethods]
impl Publication {
    /// The name published.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether the Locator connection is up (the service online).
    #[getter]
    fn live(&self) -> bool {
        lock(&self.inner).as_ref().is_some_and(svc::Publication::is_live)
    }

    /// Takes the service offline (``discard``). Idempotent.
    fn discard(&self) {
        let p = lock(&self.inner).take();
        drop(p);
    }
}
