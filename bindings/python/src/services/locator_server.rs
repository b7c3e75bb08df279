//! A Locator in-process: `LocatorServer`, its `Registry` and the
//! registry's `Entry` objects.

use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::Endpoint;
use sluice_core::services::{self as svc, demo, Level};

use super::client::{Call, Locator};
use super::handler_threads::notify;
use super::providing::Hosted;
use super::{args_to_values, endpoint_arg, endpoints_to_py, graph_to_py, level_arg};
use crate::convert::value_to_py;
use crate::errors;
use crate::handle::lock;

/// A service the registry knows: ``name``, ``endpoints``, ``version``,
/// ``graph``, ``online``, ``origin`` (``"local"``, ``"published by
/// ADDR"``, ``"attached by ADDR"``).
#[pyclass(frozen, module = "sluice", name = "Entry")]
pub struct Entry {
    inner: svc::Entry,
}

#[pymethods]
impl Entry {
    /// The service name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where callers reach it.
    #[getter]
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        endpoints_to_py(py, &self.inner.endpoints)
    }

    /// Its protocol version.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }

    /// Its method graph, as :attr:`Resolved.graph`.
    #[getter]
    fn graph<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        graph_to_py(py, &self.inner.graph)
    }

    /// Whether it can be resolved now.
    #[getter]
    fn online(&self) -> bool {
        self.inner.online
    }

    /// Who registered it.
    #[getter]
    fn origin(&self) -> &str {
        &self.inner.origin
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Entry {} {} ({})>", self.inner.name, if self.inner.online { "online" } else { "offline" }, self.inner.origin)
    }
}

/// The services a :class:`LocatorServer` announces. A service registered
/// over a connection (published or attached) is online while that
/// registration lives and goes offline when it is discarded or its
/// connection drops.
#[pyclass(frozen, module = "sluice", name = "Registry")]
pub struct Registry {
    inner: svc::Registry,
    callbacks: Arc<Mutex<Vec<Py<PyAny>>>>,
    hooked: OnceLock<()>,
}

#[pymethods]
impl Registry {
    /// Every service known, online or not, by name.
    fn list(&self) -> Vec<Entry> {
        self.inner.list().into_iter().map(|e| Entry { inner: e }).collect()
    }

    /// The service ``name`` (online or not), or None.
    fn get(&self, name: &str) -> Option<Entry> {
        self.inner.get(name).map(|e| Entry { inner: e })
    }

    /// Calls ``callback(entry)`` whenever a service comes online or goes
    /// offline, in order, on sluice's notification thread (with the GIL).
    /// An exception it raises is reported through
    /// ``sys.unraisablehook``. Returns ``callback`` (usable as a decorator).
    fn on_change<'py>(&self, callback: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err("on_change takes a callable"));
        }
        lock(&self.callbacks).push(callback.clone().unbind());
        self.hooked.get_or_init(|| {
            let cbs = self.callbacks.clone();
            self.inner.on_change(move |e| {
                let entry = e.clone();
                let cbs = cbs.clone();
                notify(move |py| {
                    let list: Vec<Py<PyAny>> = lock(&cbs).iter().map(|c| c.clone_ref(py)).collect();
                    for cb in list {
                        let arg = match Py::new(py, Entry { inner: entry.clone() }) {
                            Ok(a) => a,
                            Err(_) => return,
                        };
                        if let Err(err) = cb.call1(py, (arg,)) {
                            err.write_unraisable(py, Some(cb.bind(py)));
                        }
                    }
                });
            });
        });
        Ok(callback)
    }

    /// Invokes ``method`` of a service that a connected client attached:
    /// the call goes over that client's own connection (remote invocation)
    /// and returns the :class:`Call`. Raises :class:`NotFound` if no client
    /// has it attached, :class:`UnknownMethod` for a method it lacks.
    #[pyo3(signature = (name, method, *args))]
    fn invoke(&self, py: Python<'_>, name: &str, method: &str, args: &Bound<'_, PyTuple>) -> PyResult<Call> {
        let values = args_to_values(args)?;
        self.inner.invoke(name, method, values).map(Call::new).map_err(|e| errors::service(py, e))
    }

    /// Registers a :class:`Hosted` service of this process: online for good.
    fn add(&self, hosted: &Hosted) {
        let h = &hosted.inner;
        self.inner.add(h.name(), h.endpoints(), h.def().version(), h.def().graph().clone());
    }

    fn __len__(&self) -> usize {
        self.inner.list().len()
    }
}

/// A Locator listening for clients (``LocatorServer("127.0.0.1:0")``: a
/// free port), answering from its :attr:`registry`: ``resolve``,
/// ``publish``, and the sluice extensions ``attach`` and ``services``.
/// :meth:`add_demo` registers the built-in demo services, so a complete
/// Locator runs in-process. Stops with :meth:`close` (or ``with``'s end).
#[pyclass(frozen, module = "sluice", name = "LocatorServer")]
pub struct LocatorServer {
    inner: svc::LocatorServer,
    registry: Py<Registry>,
    demos: Mutex<Vec<svc::Hosted>>,
}

#[pymethods]
impl LocatorServer {
    #[new]
    #[pyo3(signature = (endpoint=None))]
    fn new(py: Python<'_>, endpoint: Option<&Bound<'_, PyAny>>) -> PyResult<LocatorServer> {
        let ep = match endpoint {
            Some(e) if !e.is_none() => endpoint_arg(e)?,
            _ => Endpoint::Tcp("127.0.0.1".into(), 0),
        };
        let reg = svc::Registry::new();
        let inner = svc::LocatorServer::bind(&ep, reg.clone()).map_err(|e| errors::service(py, e))?;
        let registry = Py::new(py, Registry { inner: reg, callbacks: Arc::new(Mutex::new(Vec::new())), hooked: OnceLock::new() })?;
        Ok(LocatorServer { inner, registry, demos: Mutex::new(Vec::new()) })
    }

    /// Where it listens: ``"host:port"`` (the actual port), usable as a
    /// :class:`Locator` endpoint.
    #[getter]
    fn endpoint(&self) -> String {
        self.inner.local().to_string()
    }

    /// Where it listens: ``(host, port)``.
    #[getter]
    fn address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::address(py, self.inner.local())
    }

    /// The TCP port it listens on (None for a Unix socket).
    #[getter]
    fn port(&self) -> Option<u16> {
        match self.inner.local() {
            Endpoint::Tcp(_, p) => Some(*p),
            _ => None,
        }
    }

    /// The uuid it answers ``uuid`` with.
    #[getter]
    fn uuid(&self) -> &str {
        self.inner.uuid()
    }

    /// How many clients are connected.
    #[getter]
    fn connections(&self) -> usize {
        self.inner.connections()
    }

    /// Its :class:`Registry`.
    #[getter]
    fn registry(&self, py: Python<'_>) -> Py<Registry> {
        self.registry.clone_ref(py)
    }

    /// A :class:`Locator` client for this server.
    #[pyo3(signature = (*, connect_timeout=5.0, request_timeout=30.0))]
    fn locator(&self, py: Python<'_>, connect_timeout: f64, request_timeout: Option<f64>) -> PyResult<Locator> {
        let ep = self.endpoint().into_pyobject(py)?.into_any();
        Locator::new(Some(&ep), connect_timeout, request_timeout)
    }

    /// Hosts the built-in demo services in-process and registers them:
    /// ``echo`` (``echo``, ``ping``, ``fail``, ``relay``), ``math`` (``add``,
    /// ``sub``, ``mul``, ``div``), ``kv`` (``get``, ``set``, ``del``,
    /// ``keys``) and ``logging`` (messages at or above ``verbosity`` go to
    /// ``on_log(level, source, message, attributes)``, called in order on
    /// sluice's notification thread). Returns the names registered.
    #[pyo3(signature = (names=None, *, verbosity=None, on_log=None))]
    fn add_demo(
        &self,
        py: Python<'_>,
        names: Option<Vec<String>>,
        verbosity: Option<&Bound<'_, PyAny>>,
        on_log: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        let names = names.unwrap_or_else(|| ["echo", "math", "kv", "logging"].map(String::from).to_vec());
        let level = match verbosity {
            Some(v) if !v.is_none() => level_arg(v)?,
            _ => Level::Info,
        };
        if let Some(cb) = &on_log {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("on_log must be callable"));
            }
        }
        let sink = on_log.map(|c| Arc::new(c.unbind()));
        let host = match self.inner.local() {
            Endpoint::Tcp(h, _) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let reg = &self.registry.get().inner;
        let mut out = Vec::new();
        for name in names {
            let def = match name.as_str() {
                "echo" => demo::echo(),
                "math" => demo::math(),
                "kv" => demo::kv(),
                "logging" => {
                    let sink = sink.clone();
                    demo::logging(level, move |r| {
                        let Some(cb) = sink.clone() else { return };
                        notify(move |py| {
                            let attrs = PyDict::new(py);
                            for (k, v) in &r.attributes {
                                if let Ok(v) = value_to_py(py, v) {
                                    let _ = attrs.set_item(k, v);
                                }
                            }
                            if let Err(e) = cb.call1(py, (r.level.name(), r.source.as_str(), r.message.as_str(), attrs)) {
                                e.write_unraisable(py, Some(cb.bind(py)));
                            }
                        });
                    })
                }
                other => return Err(PyValueError::new_err(format!("no demo service {other:?} (echo, math, kv, logging)"))),
            };
            let h = svc::Hosted::bind(def, &Endpoint::Tcp(host.clone(), 0)).map_err(|e| errors::service(py, e))?;
            reg.add(h.name(), h.endpoints(), h.def().version(), h.def().graph().clone());
            out.push(h.name().to_string());
            lock(&self.demos).push(h);
        }
        Ok(out)
    }

    /// Stops listening and closes every client connection (what they
    /// registered goes offline) and the demo services.
    fn close(&self) {
        self.inner.close();
        for h in lock(&self.demos).drain(..) {
            h.close();
        }
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
        format!("<sluice.LocatorServer {}>", self.inner.local())
    }
}
