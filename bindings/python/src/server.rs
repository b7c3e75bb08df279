//! `sluice.Server`: listens on TCP or a Unix socket and accepts channels,
//! delivered on the Python thread like channel events (poll mode).

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::exceptions::{PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use sluice_core::net::{AcceptHandler, Endpoint, Incoming, Server as CoreServer};
use sluice_core::wire::Role;

use crate::channel::{lock, Channel};
use crate::errors;
use crate::options::{self, Opts};
use crate::wait;

/// The core accept handler: collects connections while `core.dispatch`
/// runs on the Python thread.
struct AcceptSink(Arc<Mutex<Vec<Incoming>>>);

impl AcceptHandler for AcceptSink {
    fn on_accept(&mut self, _: &CoreServer, incoming: Incoming) {
        lock(&self.0).push(incoming);
    }
}

/// A listening socket that accepts sluice channels (an engine, or a
/// service).
///
/// ``Server(path)`` listens on a Unix socket (a stale socket file is
/// replaced; the file is removed by ``close()``), ``Server(host, port)`` on
/// TCP (port 0 picks a free port: see ``port``). Accepted channels have the
/// dialect, role and options given here (role ``"engine"`` by default):
/// the keywords besides ``on_accept`` (``**options``) are the channel
/// options of ``sluice.OPTIONS``, checked by the core's option table (a
/// refused value raises ValueError with the table's text).
///
/// Two ways to take connections, both on the Python thread: set
/// ``on_accept(channel)`` and ``dispatch()`` / ``sluice.poll()`` the server,
/// or call ``accept()`` / iterate (``for ch in server``) without
/// ``on_accept``. An accepted channel's first event is ``on_connect``;
/// events wait until you dispatch the channel, so set its callbacks first.
/// Keep a reference to each channel: a channel object that is
/// garbage-collected is closed.
#[pyclass(frozen, weakref, module = "sluice", name = "Server")]
pub struct Server {
    core: CoreServer,
    sink: Arc<Mutex<Vec<Incoming>>>,
    on_accept: Mutex<Option<Py<PyAny>>>,
    ready: Mutex<VecDeque<Py<Channel>>>,
    opts: Opts,
    closed: AtomicBool,
    dispatching: AtomicBool,
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.core.close();
        }
    }
}

impl Server {
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.core.fd().expect("sluice servers use poll delivery")
    }

    /// Accepted channels that `dispatch` will hand to `on_accept`.
    pub(crate) fn has_pending(&self) -> bool {
        lock(&self.on_accept).is_some() && !lock(&self.ready).is_empty()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Starts channels on the connections waiting; returns how many.
    fn take(&self, py: Python<'_>) -> PyResult<usize> {
        if self.is_closed() {
            return Ok(0);
        }
        self.core.dispatch(usize::MAX).map_err(|e| errors::error(py, &e.to_string()))?;
        let incoming = std::mem::take(&mut *lock(&self.sink));
        let n = incoming.len();
        for inc in incoming {
            let ch = Py::new(py, Channel::accepted(inc, &self.opts)?)?;
            lock(&self.ready).push_back(ch);
        }
        Ok(n)
    }

    /// Accepts what waits and hands it to `on_accept` if set; returns the
    /// number of channels accepted now.
    pub(crate) fn dispatch_once(&self, py: Python<'_>) -> PyResult<usize> {
        if self.dispatching.swap(true, Ordering::AcqRel) {
            return Err(errors::error(py, "Server.dispatch called from inside its own on_accept"));
        }
        struct Reset<'a>(&'a AtomicBool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _reset = Reset(&self.dispatching);
        let n = self.take(py)?;
        loop {
            let Some(cb) = lock(&self.on_accept).as_ref().map(|c| c.clone_ref(py)) else { break };
            let Some(ch) = lock(&self.ready).pop_front() else { break };
            if self.is_closed() {
                break;
            }
            cb.bind(py).call1((ch,))?;
        }
        Ok(n)
    }
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (host, port=None, *, on_accept=None, **options))]
    #[pyo3(text_signature = "(host, port=None, *, on_accept=None, **options)")]
    fn py_new(
        host: &Bound<'_, PyAny>,
        port: Option<u16>,
        on_accept: Option<Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Server> {
        let endpoint = options::endpoint(host, port)?;
        let opts = options::build("Server", Some(Role::Engine), options)?;
        let on_accept = check_callable(on_accept)?;
        let sink = Arc::new(Mutex::new(Vec::new()));
        let core = CoreServer::bind(&endpoint, opts.config.clone(), AcceptSink(sink.clone()))?;
        Ok(Server {
            core,
            sink,
            on_accept: Mutex::new(on_accept),
            ready: Mutex::new(VecDeque::new()),
            opts,
            closed: AtomicBool::new(false),
            dispatching: AtomicBool::new(false),
        })
    }

    /// ``on_accept(channel)``: a connection was accepted (run by
    /// ``dispatch()`` / ``sluice.poll()``). None: channels wait for
    /// ``accept()``.
    #[getter]
    fn on_accept(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        lock(&self.on_accept).as_ref().map(|c| c.clone_ref(py))
    }

    #[setter]
    fn set_on_accept(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let new = check_callable(value)?;
        let old = std::mem::replace(&mut *lock(&self.on_accept), new);
        drop(old);
        Ok(())
    }

    /// The descriptor that is readable while connections wait to be
    /// accepted (level-triggered).
    fn fileno(&self) -> RawFd {
        self.raw_fd()
    }

    /// Accepts the connections waiting (``timeout`` seconds to wait for one
    /// first; 0 does not wait, None waits) and passes each new channel to
    /// ``on_accept`` if set (else it waits for ``accept()``). Returns the
    /// number accepted. An exception from ``on_accept`` propagates; the
    /// channels after it are handed over by the next dispatch.
    #[pyo3(signature = (timeout=Some(0.0)), text_signature = "($self, timeout=0.0)")]
    fn dispatch(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        if timeout != Some(0.0) && !self.has_pending() && !self.is_closed() {
            let deadline = wait::deadline(timeout)?;
            wait::wait_until(py, &[self.raw_fd()], deadline, || self.is_closed())?;
        }
        self.dispatch_once(py)
    }

    /// Returns the next accepted channel, waiting up to ``timeout`` seconds
    /// (None: until one comes) with the GIL released. Raises
    /// ``TimeoutError`` when none came in time and ``sluice.Closed`` once
    /// the server is closed. For servers without ``on_accept``.
    #[pyo3(signature = (timeout=None))]
    fn accept(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<Channel>> {
        if lock(&self.on_accept).is_some() {
            return Err(errors::error(py, "accept() on a server with on_accept: its channels go to on_accept"));
        }
        let deadline = wait::deadline(timeout)?;
        loop {
            py.check_signals()?;
            if let Some(ch) = lock(&self.ready).pop_front() {
                return Ok(ch);
            }
            if self.is_closed() {
                return Err(errors::send_error(py, sluice_core::net::SendError::Closed));
            }
            if self.take(py)? > 0 {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err("no connection accepted within the timeout"));
            }
            wait::wait_until(py, &[self.raw_fd()], deadline, || self.is_closed())?;
        }
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next accepted channel (``accept()``); iteration ends when the
    /// server is closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<Channel>>> {
        if self.is_closed() {
            return Ok(None);
        }
        match self.accept(py, None) {
            Ok(ch) => Ok(Some(ch)),
            Err(_) if self.is_closed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stops listening (channels already handed out stay open), removes the
    /// Unix socket file it created, and closes accepted channels nobody took.
    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.core.close();
        }
        lock(&self.sink).clear();
        let ready = std::mem::take(&mut *lock(&self.ready));
        let cb = lock(&self.on_accept).take();
        drop(cb);
        drop(ready);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    /// Where the server listens, like ``socket.getsockname()``: a
    /// ``(host, port)`` tuple for TCP (the actual port when bound to 0), the
    /// path (str) for a Unix socket.
    #[getter]
    fn address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::address(py, self.core.local())
    }

    /// The TCP port listened on, or None for a Unix socket.
    #[getter]
    fn port(&self) -> Option<u16> {
        match self.core.local() {
            Endpoint::Tcp(_, p) => Some(*p),
            Endpoint::Unix(_) => None,
        }
    }

    /// The listening endpoint as text: ``host:port``, ``[v6]:port`` or ``unix:PATH``.
    #[getter]
    fn endpoint(&self) -> String {
        self.core.local().to_string()
    }

    /// Whether ``close()`` was called.
    #[getter]
    pub(crate) fn closed(&self) -> bool {
        self.is_closed()
    }

    fn __repr__(&self) -> String {
        format!("<sluice.Server {}{}>", self.core.local(), if self.is_closed() { " closed" } else { "" })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(cb) = self.on_accept.try_lock() {
            if let Some(c) = cb.as_ref() {
                visit.call(c)?;
            }
        }
        if let Ok(ready) = self.ready.try_lock() {
            for ch in ready.iter() {
                visit.call(ch)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let cb = lock(&self.on_accept).take();
        let ready = std::mem::take(&mut *lock(&self.ready));
        drop(cb);
        drop(ready);
    }
}

fn check_callable(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) if v.is_callable() => Ok(Some(v.unbind())),
        Some(_) => Err(PyTypeError::new_err("on_accept must be callable or None")),
    }
}
