//! `sluice.Server`: listens on TCP or a Unix socket and accepts channels,
//! delivered on the Python thread like channel events (the handle base).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use sluice_core::net::Server as CoreServer;
use sluice_core::roles::StreamError;
use sluice_core::wire::Role;

use crate::handle::{self, handle_class, lock, Accepting, Handle, Queue, State};
use crate::{errors, options, wait};

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
#[pyclass(extends = Handle, frozen, module = "sluice", name = "Server")]
pub struct Server {
    h: Arc<State>,
    core: CoreServer,
}

impl Server {
    fn ready(&self) -> &Mutex<VecDeque<Py<PyAny>>> {
        &self.h.accepting.as_ref().expect("a server accepts").ready
    }
}

impl Server {
    fn local(&self) -> sluice_core::net::Endpoint {
        self.core.local().clone()
    }
}

handle_class! {
    Server,
    spec {  }
    listening: local;
    callbacks {
        /// ``on_accept(channel)``: a connection was accepted (run by
        /// ``dispatch()`` / ``sluice.poll()``). None: channels wait for
        /// ``accept()``.
        on_accept / set_on_accept;
    }
    methods {
        #[new]
        #[pyo3(signature = (host, port=None, **options))]
        #[pyo3(text_signature = "(host, port=None, *, on_accept=None, **options)")]
        fn py_new(host: &Bound<'_, PyAny>, port: Option<u16>, options: Option<&Bound<'_, PyDict>>) -> PyResult<PyClassInitializer<Server>> {
            let endpoint = options::endpoint(host, port)?;
            let (pairs, cbs) = options::split(options)?;
            let opts = options::build("Server", Some(Role::Engine), &pairs)?;
            let cbs = handle::callbacks(&SPEC, cbs.as_ref())?;
            let queue = Queue::default();
            let core = CoreServer::bind(&endpoint, opts.config.clone(), queue.clone())?;
            let mut state = State::new(core.clone(), queue, &SPEC, cbs).with_opts(&opts);
            state.accepting = Some(Accepting { opts, ready: Mutex::new(VecDeque::new()) });
            let h = Arc::new(state);
            Ok(PyClassInitializer::from(Handle(h.clone())).add_subclass(Server { h, core }))
        }

        /// Returns the next accepted channel, waiting up to ``timeout`` seconds
        /// (None: until one comes) with the GIL released. Raises
        /// ``TimeoutError`` when none came in time and ``sluice.Closed`` once
        /// the server is closed. For servers without ``on_accept``.
        #[pyo3(signature = (timeout=None))]
        fn accept(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
            if self.h.callback(py, "on_accept").is_some() {
                return Err(errors::error(py, "accept() on a server with on_accept: its channels go to on_accept"));
            }
            let deadline = wait::deadline(timeout)?;
            loop {
                py.check_signals()?;
                if let Some(ch) = lock(self.ready()).pop_front() {
                    return Ok(ch);
                }
                if self.h.is_closed() {
                    return Err(errors::refused(py, StreamError::Closed));
                }
                if self.h.dispatch(py)? > 0 {
                    continue;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(PyTimeoutError::new_err("no connection accepted within the timeout"));
                }
                self.h.wait(py, deadline)?;
            }
        }

        fn __iter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        /// The next accepted channel (``accept()``); iteration ends when the
        /// server is closed.
        fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
            if self.h.is_closed() {
                return Ok(None);
            }
            match self.accept(py, None) {
                Ok(ch) => Ok(Some(ch)),
                Err(_) if self.h.is_closed() => Ok(None),
                Err(e) => Err(e),
            }
        }

        /// Whether ``close()`` was called.
        #[getter]
        fn closed(&self) -> bool {
            self.h.is_closed()
        }

        fn __repr__(&self) -> String {
            format!("<sluice.Server {}{}>", self.core.local(), if self.h.is_closed() { " closed" } else { "" })
        }
    }
}
