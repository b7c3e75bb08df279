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

use std::collections::VecDeque;
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::Endpoint;
use sluice_core::services::graph::Node;
use sluice_core::services::{
    self as svc, demo, ClientConfig, Error as SvcError, Level, ServiceError, ServiceState, DISPATCH_CATEGORY, UNCAUGHT_ERROR,
};
use sluice_core::wire::Value;

use crate::convert::{py_to_value, value_to_py};
use crate::errors;
use crate::wait;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Blocking with the GIL released.

/// The longest wait between signal checks.
const SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` to completion on this thread with the GIL released: in
/// slices (Ctrl-C is honoured between them), for `timeout` seconds at most
/// (None: no limit; `Timeout` after it).
fn block<T, F>(py: Python<'_>, timeout: Option<f64>, fut: F) -> PyResult<T>
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

// ---------------------------------------------------------------------------
// Values and endpoints.

fn values_to_list<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for v in values {
        list.append(value_to_py(py, v)?)?;
    }
    Ok(list)
}

fn args_to_values(args: &Bound<'_, PyTuple>) -> PyResult<Vec<Value>> {
    args.iter().map(|a| py_to_value(&a, 0)).collect()
}

/// The `value` arguments as one Python object: none → None, one → it,
/// several → a tuple.
fn values_to_result<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyAny>> {
    match values {
        [] => Ok(py.None().into_bound(py)),
        [v] => value_to_py(py, v),
        vs => Ok(PyTuple::new(py, values_to_list(py, vs)?.iter())?.into_any()),
    }
}

/// The inverse of [`values_to_result`] for a handler's return value: None
/// → no arguments, a tuple → its items, anything else → one argument.
fn result_to_values(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return args_to_values(t);
    }
    Ok(vec![py_to_value(obj, 0)?])
}

/// An endpoint for Python: `(host, port)` for TCP, `"unix:PATH"` otherwise.
fn endpoint_to_py<'py>(py: Python<'py>, e: &Endpoint) -> PyResult<Bound<'py, PyAny>> {
    match e {
        Endpoint::Tcp(h, p) => Ok((h.as_str(), *p).into_pyobject(py)?.into_any()),
        e => Ok(e.to_string().into_pyobject(py)?.into_any()),
    }
}

fn endpoints_to_py<'py>(py: Python<'py>, eps: &[Endpoint]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for e in eps {
        list.append(endpoint_to_py(py, e)?)?;
    }
    Ok(list)
}

/// `"host:port"`, `"[v6]:port"`, `"unix:PATH"`, a path, or `(host, port)`.
fn endpoint_arg(obj: &Bound<'_, PyAny>) -> PyResult<Endpoint> {
    if let Ok((host, port)) = obj.extract::<(String, u16)>() {
        return Ok(Endpoint::Tcp(host, port));
    }
    let s: String =
        obj.extract().map_err(|_| PyTypeError::new_err("an endpoint is \"host:port\", \"unix:PATH\" or a (host, port) tuple"))?;
    Endpoint::parse(&s).ok_or_else(|| PyValueError::new_err(format!("bad endpoint {s:?}: expected \"host:port\" or \"unix:PATH\"")))
}

fn endpoints_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Endpoint>> {
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

fn duration_arg(what: &str, secs: Option<f64>) -> PyResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(_) => Err(PyValueError::new_err(format!("{what} must be a non-negative number of seconds or None"))),
    }
}

fn level_arg(obj: &Bound<'_, PyAny>) -> PyResult<Level> {
    if let Ok(n) = obj.extract::<i64>() {
        return Ok(Level::from_i64(n));
    }
    let s: String = obj.extract().map_err(|_| PyTypeError::new_err("a level is 'debug', 'info', 'warning', 'error' or 0..3"))?;
    Level::from_name(&s).ok_or_else(|| PyValueError::new_err(format!("unknown level {s:?} (debug, info, warning, error)")))
}

// ---------------------------------------------------------------------------
// The client side.

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
    fn new(endpoints: Option<&Bound<'_, PyAny>>, connect_timeout: f64, request_timeout: Option<f64>) -> PyResult<Locator> {
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

fn graph_to_py<'py>(py: Python<'py>, graph: &svc::graph::Graph) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for m in graph.methods() {
        let entry = (m.name.as_str(), value_to_py(py, &m.tx.to_value())?, value_to_py(py, &m.rx.to_value())?);
        d.set_item(m.id, entry)?;
    }
    Ok(d)
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

// ---------------------------------------------------------------------------
// Handler threads.

/// Handler threads at most; calls beyond wait for one to be free.
pub(crate) const MAX_HANDLER_THREADS: usize = 64;
/// Calls waiting for a handler thread at most; past this a call is
/// answered at once with `error([7, 7], "too many calls waiting...")`,
/// so callers cannot grow the queue without bound.
pub(crate) const MAX_QUEUED_CALLS: usize = 10_000;
/// A handler thread with nothing to do for this long ends.
const IDLE_EXIT: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;
/// A handler call, run with the GIL.
type PyJob = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

struct PoolState {
    queue: VecDeque<PyJob>,
    idle: usize,
    threads: usize,
    /// The process the threads belong to (a forked child has none of them).
    pid: u32,
}

/// Runs handlers off the I/O threads: a job waits only if
/// [`MAX_HANDLER_THREADS`] are busy; otherwise an idle thread takes it or a
/// new one starts.
struct Pool {
    st: Mutex<PoolState>,
    cv: Condvar,
}

fn pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        Arc::new(Pool {
            st: Mutex::new(PoolState { queue: VecDeque::new(), idle: 0, threads: 0, pid: std::process::id() }),
            cv: Condvar::new(),
        })
    })
}

impl Pool {
    /// Whether a call may still be queued.
    fn has_room(&self) -> bool {
        lock(&self.st).queue.len() < MAX_QUEUED_CALLS
    }

    fn submit(self: &Arc<Pool>, job: PyJob) {
        let mut st = lock(&self.st);
        if st.pid != std::process::id() {
            // Forked: the parent's threads do not exist here.
            let old = std::mem::take(&mut st.queue);
            std::mem::forget(old);
            *st = PoolState { queue: VecDeque::new(), idle: 0, threads: 0, pid: std::process::id() };
        }
        st.queue.push_back(job);
        if st.idle >= st.queue.len() || st.threads >= MAX_HANDLER_THREADS {
            self.cv.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("sluice-handler".into()).spawn(move || me.work());
        if spawned.is_err() {
            lock(&self.st).threads -= 1;
        }
    }

    /// A handler thread: keeps its Python thread state for its whole life
    /// (attached while it runs a handler, detached while it waits).
    fn work(&self) {
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            lock(&self.st).threads -= 1;
            return;
        }
        Python::attach(|py| {
            while let Some(job) = py.detach(|| self.next_job()) {
                job(py);
            }
        });
    }

    /// The next job; None when the thread has been idle for [`IDLE_EXIT`].
    fn next_job(&self) -> Option<PyJob> {
        let mut st = lock(&self.st);
        loop {
            if let Some(job) = st.queue.pop_front() {
                return Some(job);
            }
            st.idle += 1;
            let (next, r) = self.cv.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
            st = next;
            st.idle -= 1;
            if r.timed_out() && st.queue.is_empty() {
                st.threads -= 1;
                return None;
            }
        }
    }
}

/// Runs `f` with the GIL on a handler thread (not if the interpreter is
/// gone); answers `out` with an error instead when the queue is full.
fn with_python(out: svc::Responder, f: impl FnOnce(Python<'_>, svc::Responder) + Send + 'static) {
    if !pool().has_room() {
        let mut out = out;
        let _ = out.error(&ServiceError::new(
            DISPATCH_CATEGORY,
            UNCAUGHT_ERROR,
            format!("too many calls waiting for a handler (more than {MAX_QUEUED_CALLS})"),
        ));
        return;
    }
    pool().submit(Box::new(move |py| f(py, out)));
}

/// Notifications (registry changes, log records) in order, on one thread.
fn notify(f: impl FnOnce(Python<'_>) + Send + 'static) {
    static TX: Mutex<Option<(u32, mpsc::Sender<Job>)>> = Mutex::new(None);
    let mut slot = lock(&TX);
    let pid = std::process::id();
    if slot.as_ref().is_none_or(|(owner, _)| *owner != pid) {
        // The first notification, or the first in a forked child.
        let (tx, rx) = mpsc::channel::<Job>();
        let _ = std::thread::Builder::new().name("sluice-notify".into()).spawn(move || {
            for job in rx {
                job();
            }
        });
        if let Some(old) = slot.replace((pid, tx)) {
            std::mem::forget(old);
        }
    }
    let Some((_, tx)) = slot.as_ref() else { return };
    let _ = tx.send(Box::new(move || {
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            return;
        }
        Python::attach(f);
    }));
}

/// The service error a handler's exception becomes: a `ServiceError`'s own
/// category, code and message; anything else `[7, 7] "Type: text"`.
fn exception_to_error(py: Python<'_>, e: &PyErr) -> ServiceError {
    let v = e.value(py);
    if let Ok(cls) = errors::service_error_class(py) {
        if v.is_instance(&cls).unwrap_or(false) {
            let category = v.getattr("category").and_then(|c| c.extract::<Option<i64>>()).unwrap_or(Some(DISPATCH_CATEGORY));
            let code = v.getattr("code").and_then(|c| c.extract::<i64>()).unwrap_or(UNCAUGHT_ERROR);
            let message = v.getattr("message").and_then(|m| m.extract::<String>()).unwrap_or_default();
            return ServiceError { category, code, message };
        }
    }
    let ty = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let text = v.str().map(|s| s.to_string()).unwrap_or_default();
    let message = if text.is_empty() { ty } else { format!("{ty}: {text}") };
    ServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, message)
}

// ---------------------------------------------------------------------------
// The serving side.

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
    inner: svc::Hosted,
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
