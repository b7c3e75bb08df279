//! The client side of Cocaine services: `Locator`, `Resolved`, `Service`,
//! `Reply`, `Call` and `Logger`. Blocking calls release the GIL.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::services::{self as svc, ClientConfig, Error as SvcError, Level, ServiceState};
use sluice_core::wire::Value;

use super::{
    args_to_values, block, duration_arg, endpoints_arg, endpoints_to_py, graph_to_py, level_arg, values_to_list, values_to_result,
};
use crate::convert::py_to_value;
use crate::errors;
use crate::handle::lock;

/// A Locator to ask: ``Locator()`` is ``localhost:10053``; ``Locator(
/// ["host:port", ("host", port), ...])`` tries its endpoints in order until
/// one connects (failover). ``connect_timeout`` bounds each connection
/// attempt; ``request_timeout`` the wait for the Locator's answers (None:
/// no limit).
#[pyclass(frozen, module = "sluice", name = "Locator")]
pub struct Locator {
    pub(crate) inner: svc::Locator,
}

#[pymethods]
impl Locator {
    #[new]
    #[pyo3(signature = (endpoints=None, *, connect_timeout=5.0, request_timeout=30.0))]
    pub(crate) fn new(endpoints: Option<&Bound<'_, PyAny>>, connect_timeout: f64, request_timeout: Option<f64>) -> PyResult<Locator> {
        let eps = endpoints_arg(endpoints)?;
        let config = ClientConfig {
            connect_timeout: duration_arg("connect_timeout", Some(connect_timeout))?.unwrap_or_default(),
            request_timeout: duration_arg("request_timeout", request_timeout)?,
            ..ClientConfig::default()
        };
        Ok(Locator { inner: svc::Locator::new(eps).with_config(config) })
    }

    /// The endpoints, in the order they are tried (``"host:port"``).
    #[getter]
    fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints().iter().map(ToString::to_string).collect()
    }

    /// Resolves the service ``name``: its endpoints, version and method
    /// graph. Raises :class:`NotFound` when the Locator does not have it
    /// online, :class:`ConnectionError` when no endpoint answers. The GIL
    /// is released while waiting.
    #[pyo3(signature = (name, *, timeout=None))]
    fn resolve(&self, py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Resolved> {
        let inner = &self.inner;
        block(py, timeout, inner.resolve(name)).map(|r| Resolved { inner: r })
    }

    /// A client for the service ``name`` (resolved and connected on its
    /// first call, and again after a disconnection). Does not block.
    fn service(&self, name: &str) -> Service {
        Service { inner: self.inner.service(name) }
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Locator {}>", self.endpoints().join(", "))
    }
}

/// What the Locator says about a service: ``name``, ``endpoints``,
/// ``version``, ``graph``; ``str()`` prints it with its methods.
#[pyclass(frozen, module = "sluice", name = "Resolved")]
pub struct Resolved {
    inner: svc::Resolved,
}

#[pymethods]
impl Resolved {
    /// The service name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where it listens: ``(host, port)`` tuples, in the Locator's order.
    #[getter]
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        endpoints_to_py(py, &self.inner.endpoints)
    }

    /// Its protocol version.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }

    /// The method graph: ``{id: (name, tx, rx)}`` where ``tx`` and ``rx``
    /// are the protocols in their wire form (``{}`` terminal, ``None``
    /// recursive, ``{id: [message, next]}``).
    #[getter]
    fn graph<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        graph_to_py(py, &self.inner.graph)
    }

    /// The method names, by id.
    #[getter]
    fn methods(&self) -> Vec<String> {
        self.inner.graph.methods().iter().map(|m| m.name.clone()).collect()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Resolved {} v{} methods={:?}>", self.inner.name, self.inner.version, self.methods())
    }
}

/// A client for one service (from :meth:`Locator.service`). It resolves
/// and connects on the first call, picks among the service's endpoints,
/// and reconnects on the call after a disconnection.
#[pyclass(frozen, module = "sluice", name = "Service")]
pub struct Service {
    inner: svc::Service,
}

#[pymethods]
impl Service {
    /// The service name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// ``"closed"`` (not connected), ``"connecting"``, ``"connected"`` or
    /// ``"error"`` (the last attempt failed; the next call tries again).
    #[getter]
    fn state(&self) -> &'static str {
        match self.inner.state() {
            ServiceState::Closed => "closed",
            ServiceState::Connecting => "connecting",
            ServiceState::Connected => "connected",
            ServiceState::Error => "error",
        }
    }

    /// What the last resolve said, or None before the first connection.
    #[getter]
    fn info(&self) -> Option<Resolved> {
        self.inner.info().map(|r| Resolved { inner: r })
    }

    /// Resolves and connects unless connected (GIL released).
    #[pyo3(signature = (*, timeout=None))]
    fn connect(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let inner = &self.inner;
        block(py, timeout, inner.connect())
    }

    /// Calls ``method`` with ``args`` (msgpack values: None, bool, int,
    /// float, str, bytes, list/tuple, dict) and returns the :class:`Call`
    /// its replies come through. Connects first if needed (GIL released,
    /// ``timeout`` bounds that part). Raises :class:`UnknownMethod` when the
    /// service's graph has no such method.
    #[pyo3(signature = (method, *args, timeout=None))]
    fn call(&self, py: Python<'_>, method: &str, args: &Bound<'_, PyTuple>, timeout: Option<f64>) -> PyResult<Call> {
        let values = args_to_values(args)?;
        let inner = &self.inner;
        block(py, timeout, inner.call(method, values)).map(Call::new)
    }

    /// Closes the connection: calls in progress fail with
    /// :class:`Disconnected`; the next call connects again.
    fn close(&self) {
        self.inner.close();
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Service {} {}>", self.inner.name(), self.state())
    }
}

/// One reply of a call: ``name`` (``"value"``, ``"write"``, ``"close"``,
/// ...), ``args`` (a list), ``last`` (whether it ended the call). Unpacks
/// as ``name, args = reply``.
#[pyclass(frozen, module = "sluice", name = "Reply")]
pub struct Reply {
    name: String,
    args: Py<PyList>,
    last: bool,
}

impl Reply {
    fn from_core(py: Python<'_>, r: svc::Reply) -> PyResult<Reply> {
        Ok(Reply { name: r.name, args: values_to_list(py, &r.args)?.unbind(), last: r.last })
    }
}

#[pymethods]
impl Reply {
    /// The message's name in the method's protocol.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Its arguments.
    #[getter]
    fn args(&self, py: Python<'_>) -> Py<PyList> {
        self.args.clone_ref(py)
    }

    /// Whether it ended the call.
    #[getter]
    fn last(&self) -> bool {
        self.last
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.name.as_str(), self.args.clone_ref(py)).into_pyobject(py)?.into_any().try_iter().map(Bound::into_any)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Reply({:?}, {})", self.name, self.args.bind(py).repr()?))
    }
}

/// A call in progress. Iterate over it for its replies (``for reply in
/// call``; a service's ``error`` is raised as :class:`ServiceError`, the
/// connection's end as :class:`Disconnected`), or take ``value()`` (a
/// primitive method's result) or ``collect()`` (every reply of a stream).
/// ``send(name, *args)`` sends the caller's further messages for methods
/// whose tx protocol is streaming. Waiting releases the GIL.
#[pyclass(frozen, module = "sluice", name = "Call")]
pub struct Call {
    call: Mutex<Option<svc::Call>>,
    /// Replies a timed-out `collect()` had taken, delivered first.
    buffered: Mutex<VecDeque<svc::Reply>>,
    sender: svc::CallSender,
    channel: u64,
}

impl Call {
    pub(crate) fn new(call: svc::Call) -> Call {
        Call { sender: call.sender(), channel: call.channel_id(), call: Mutex::new(Some(call)), buffered: Mutex::new(VecDeque::new()) }
    }

    /// Lends the call out while waiting (another thread reading it meanwhile
    /// gets `Closed`); [`put`](Self::put) gives it back.
    fn take(&self, py: Python<'_>) -> PyResult<svc::Call> {
        lock(&self.call).take().ok_or_else(|| errors::closed(py, "the call is being read by another thread"))
    }

    fn put(&self, call: svc::Call) {
        *lock(&self.call) = Some(call);
    }

    /// The next reply (a buffered one first).
    fn recv_core(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<svc::Reply>> {
        if let Some(r) = lock(&self.buffered).pop_front() {
            return Ok(Some(r));
        }
        let mut call = self.take(py)?;
        let r = block(py, timeout, async { Ok(call.recv().await) });
        self.put(call);
        match r? {
            None => Ok(None),
            Some(Ok(reply)) => Ok(Some(reply)),
            Some(Err(e)) => Err(errors::service(py, e)),
        }
    }
}

#[pymethods]
impl Call {
    /// The channel id of the call.
    #[getter]
    fn channel_id(&self) -> u64 {
        self.channel
    }

    /// The next reply, or None once the call has ended. Raises the
    /// service's :class:`ServiceError` (once; the call has then ended) and
    /// :class:`Timeout` after ``timeout`` seconds (the call stays usable).
    #[pyo3(signature = (*, timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Reply>> {
        self.recv_core(py, timeout)?.map(|r| Reply::from_core(py, r)).transpose()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Reply>> {
        self.next(py, None)
    }

    /// The result of a primitive method: the arguments of its ``value``
    /// reply — None for none, the argument itself for one, a tuple for
    /// several. Raises :class:`ServiceError` for an ``error`` reply,
    /// :class:`sluice.Error` if the next reply is not a ``value``, and
    /// :class:`Timeout` after ``timeout`` seconds (the call stays usable).
    #[pyo3(signature = (*, timeout=None))]
    fn value<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        match self.recv_core(py, timeout)? {
            Some(r) if r.name == "value" => values_to_result(py, &r.args),
            Some(r) => Err(errors::service(py, SvcError::BadReply(format!("expected a value, got '{}'", r.name)))),
            None => Err(errors::service(py, SvcError::BadReply("the call ended without a value".into()))),
        }
    }

    /// Every reply up to the end of the call (a stream's ``write`` replies
    /// and its ``close``). Raises :class:`ServiceError` if the call ends with
    /// an error; after :class:`Timeout` the replies taken so far are
    /// delivered again by the next ``next()``/``collect()``.
    #[pyo3(signature = (*, timeout=None))]
    fn collect(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Vec<Reply>> {
        let mut call = self.take(py)?;
        let mut all: Vec<svc::Reply> = lock(&self.buffered).drain(..).collect();
        let mut fresh: Vec<svc::Reply> = Vec::new();
        let r = block(py, timeout, async {
            while let Some(item) = call.recv().await {
                fresh.push(item?);
            }
            Ok(())
        });
        self.put(call);
        all.extend(fresh);
        match r {
            Ok(()) => all.into_iter().map(|r| Reply::from_core(py, r)).collect(),
            Err(e) => {
                if e.is_instance_of::<pyo3::exceptions::PyTimeoutError>(py) {
                    lock(&self.buffered).extend(all);
                }
                Err(e)
            }
        }
    }

    /// Sends message ``name`` of the method's tx protocol (e.g. ``write``
    /// then ``close`` for ``echo.relay``). Does not block; raises
    /// :class:`sluice.Error` for a message the protocol does not allow now.
    #[pyo3(signature = (name, *args))]
    fn send(&self, py: Python<'_>, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let values = args_to_values(args)?;
        self.sender.send(name, &values).map_err(|e| errors::service(py, e))
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Call channel {}>", self.channel)
    }
}

/// A client of the ``logging`` service: ``Logger(locator, source)``. Every
/// message carries ``source`` (the Cocaine frameworks use ``"app/NAME"``);
/// messages below the service's verbosity are not sent (the verbosity is
/// asked once per connection). Methods return whether the message was sent.
#[pyclass(frozen, module = "sluice", name = "Logger")]
pub struct Logger {
    inner: Arc<svc::Logger>,
}

impl Logger {
    fn emit_impl(
        &self,
        py: Python<'_>,
        level: Level,
        message: &str,
        attributes: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let mut attrs: Vec<(String, Value)> = Vec::new();
        if let Some(a) = attributes.filter(|a| !a.is_none()) {
            let items = match a.cast::<PyDict>() {
                Ok(d) => d.items().into_any(),
                Err(_) => a.clone(),
            };
            for item in items.try_iter()? {
                let (k, v): (String, Bound<'_, PyAny>) =
                    item?.extract().map_err(|_| PyTypeError::new_err("attributes are a dict or (name, value) pairs"))?;
                attrs.push((k, py_to_value(&v, 0)?));
            }
        }
        let logger = self.inner.clone();
        block(py, timeout, async move {
            let refs: Vec<(&str, Value)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            logger.emit(level, message, &refs).await
        })
    }
}

#[pymethods]
impl Logger {
    #[new]
    #[pyo3(signature = (locator, source, *, service="logging"))]
    fn new(locator: &Locator, source: &str, service: &str) -> Logger {
        Logger { inner: Arc::new(svc::Logger::with_service(locator.inner.service(service), source)) }
    }

    /// The source every message carries.
    #[getter]
    fn source(&self) -> &str {
        self.inner.source()
    }

    /// The service's verbosity (0 debug … 3 error); connects if needed.
    #[pyo3(signature = (*, timeout=None))]
    fn verbosity(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<i64> {
        let logger = self.inner.clone();
        block(py, timeout, async move { logger.verbosity().await })
    }

    /// Sends ``message`` at ``level`` (``"debug"``, ``"info"``,
    /// ``"warning"``, ``"error"`` or 0..3) with ``attributes`` (a dict or
    /// ``(name, value)`` pairs) unless the level is below the verbosity;
    /// returns whether it was sent.
    #[pyo3(signature = (level, message, attributes=None, *, timeout=None))]
    fn emit(
        &self,
        py: Python<'_>,
        level: &Bound<'_, PyAny>,
        message: &str,
        attributes: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let level = level_arg(level)?;
        self.emit_impl(py, level, message, attributes, timeout)
    }

    /// ``emit("debug", message, attributes)``.
    #[pyo3(signature = (message, attributes=None, *, timeout=None))]
    fn debug(&self, py: Python<'_>, message: &str, attributes: Option<&Bound<'_, PyAny>>, timeout: Option<f64>) -> PyResult<bool> {
        self.emit_impl(py, Level::Debug, message, attributes, timeout)
    }

    /// ``emit("info", message, attributes)``.
    #[pyo3(signature = (message, attributes=None, *, timeout=None))]
    fn info(&self, py: Python<'_>, message: &str, attributes: Option<&Bound<'_, PyAny>>, timeout: Option<f64>) -> PyResult<bool> {
        self.emit_impl(py, Level::Info, message, attributes, timeout)
    }

    /// ``emit("warning", message, attributes)``.
    #[pyo3(signature = (message, attributes=None, *, timeout=None))]
    fn warning(&self, py: Python<'_>, message: &str, attributes: Option<&Bound<'_, PyAny>>, timeout: Option<f64>) -> PyResult<bool> {
        self.emit_impl(py, Level::Warning, message, attributes, timeout)
    }

    /// ``emit("error", message, attributes)``.
    #[pyo3(signature = (message, attributes=None, *, timeout=None))]
    fn error(&self, py: Python<'_>, message: &str, attributes: Option<&Bound<'_, PyAny>>, timeout: Option<f64>) -> PyResult<bool> {
        self.emit_impl(py, Level::Error, message, attributes, timeout)
    }
}
