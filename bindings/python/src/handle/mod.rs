//! The one handle of every pollable object (`Channel`, `Server`, `Worker`,
//! `Engine`, `Session`, `ResumeServer`): the base class `sluice._Handle`
//! with `fileno`, `dispatch`, `run`, `pending`, `done`, `close` and the GC
//! hooks, and `sluice.poll()` over any of them.
//!
//! Every object uses the core's poll delivery (`host::Pollable`): the core
//! queues events behind a descriptor, and its handler, run during the
//! core's dispatch on the Python thread, only appends each event as the one
//! model's `(Source, Event)` to a [`Queue`]. [`State::dispatch`] then runs
//! the callbacks: one converter ([`State::args`]) turns every kind of event
//! into a call of `on_<event name>` (or the class's own name for it, see
//! [`Spec`]). Events taken but not delivered because a callback raised wait
//! in `pending` and run first next time; the descriptor does not signal
//! them, so `poll`/`run`/`dispatch` look at `pending` before waiting.
//!
//! Files: this one (the base class, [`handle_class!`], `poll`), [`state`]
//! (what a handle holds and the dispatch loop), [`to_python`] (the one
//! converter).

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use sluice_core::host::{Event, IntoEvent, Source};
use sluice_core::net::{AcceptHandler, Channel as CoreChannel, Handler, Incoming, Server as CoreServer};

use crate::wait;

mod state;
mod to_python;

pub(crate) use state::{Accepting, State};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One event of the one model.
pub(crate) type Item = (Source, Event);

/// Where the core's handler puts events (as `(Source, Event)`) while the
/// core's dispatch runs on the Python thread.
#[derive(Clone, Default)]
pub(crate) struct Queue(Arc<Mutex<Vec<Item>>>);

impl Queue {
    /// Appends a role's event.
    #[inline]
    pub(crate) fn push(&self, event: impl IntoEvent) {
        lock(&self.0).push(event.into_event());
    }
}

impl Handler for Queue {
    #[inline]
    fn on_event(&mut self, _: &CoreChannel, event: sluice_core::net::Event) {
        self.push(event);
    }
}

impl AcceptHandler for Queue {
    fn on_accept(&mut self, _: &CoreServer, incoming: Incoming) {
        self.push(incoming);
    }
}

/// What differs between the classes in how events become calls.
pub(crate) struct Spec {
    /// The callbacks, as attributes and constructor keywords.
    pub callbacks: &'static [&'static str],
    /// Event names whose callback is not `on_<name>`: (event, callback).
    pub renames: &'static [(&'static str, &'static str)],
    /// `on_terminate` has the control session as its first argument.
    pub terminate_session: bool,
    /// `on_disconnect` also gets the sessions still open (a worker's).
    pub disconnect_sessions: bool,
    /// The object's own disconnect is its last event (channels, workers).
    pub last_disconnect: bool,
}

impl Spec {
    /// No renames, no extra arguments, no last event.
    pub const PLAIN: Spec =
        Spec { callbacks: &[], renames: &[], terminate_session: false, disconnect_sessions: false, last_disconnect: false };

    /// The index of the callback of the event named `event`.
    pub(crate) fn index(&self, event: &str) -> Option<usize> {
        let renamed = self.renames.iter().find(|(e, _)| *e == event).map(|(_, c)| *c);
        self.callbacks.iter().position(|n| match renamed {
            Some(c) => *n == c,
            None => n.strip_prefix("on_") == Some(event),
        })
    }
}

/// `value` if it is callable, None for None.
pub(crate) fn callable(value: Option<Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Py<PyAny>>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) if v.is_callable() => Ok(Some(v.unbind())),
        Some(v) => Err(PyTypeError::new_err(format!(
            "{name} must be callable or None, not {}",
            v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))),
    }
}

/// The callbacks given as constructor keywords (`on_*`), checked.
pub(crate) fn callbacks(spec: &Spec, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<Option<Py<PyAny>>>> {
    let mut cbs: Vec<Option<Py<PyAny>>> = spec.callbacks.iter().map(|_| None).collect();
    for (k, v) in kwargs.into_iter().flat_map(|kw| kw.iter()) {
        let k: String = k.extract()?;
        let Some(i) = spec.callbacks.iter().position(|n| *n == k) else {
            return Err(PyTypeError::new_err(format!("unexpected keyword argument {k:?} (callbacks: {})", spec.callbacks.join(", "))));
        };
        cbs[i] = callable(Some(v), spec.callbacks[i])?;
    }
    Ok(cbs)
}

/// The base of every object with a descriptor to poll: ``Channel``,
/// ``Server``, ``Worker``, ``Engine``, ``Session`` and ``ResumeServer``.
#[pyclass(subclass, frozen, weakref, module = "sluice", name = "_Handle")]
pub struct Handle(pub(crate) Arc<State>);

#[pymethods]
impl Handle {
    /// The descriptor that is readable while events wait (level-triggered):
    /// for ``selectors``, ``select`` or ``loop.add_reader``; call
    /// ``dispatch()`` when it is readable.
    fn fileno(&self) -> RawFd {
        self.0.fd()
    }

    /// Runs the callbacks of the events waiting (one batch) and returns how
    /// many ran. ``timeout``: seconds to wait for events first, with the GIL
    /// released (0 does not wait, None waits until events come or the
    /// object is done). A callback's exception propagates; the events after
    /// it stay queued and the next ``dispatch()`` runs them first.
    #[pyo3(signature = (timeout=Some(0.0)), text_signature = "($self, timeout=0.0)")]
    fn dispatch(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        self.0.dispatch_within(py, timeout)
    }

    /// Dispatches until the object is done (see ``done``) or ``timeout``
    /// seconds have passed (None: no limit). The GIL is released while
    /// waiting; Ctrl-C interrupts. A callback's exception propagates.
    #[pyo3(signature = (timeout=None))]
    fn run(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = wait::deadline(timeout)?;
        loop {
            // Every turn: a descriptor readable with nothing to dispatch
            // must not keep Ctrl-C out.
            py.check_signals()?;
            if self.0.is_done() {
                return Ok(());
            }
            if !self.0.wait(py, deadline)? && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            self.0.dispatch(py)?;
        }
    }

    /// Events left undelivered by a callback that raised: the next
    /// ``dispatch()`` runs them first (the descriptor does not signal them).
    #[getter]
    fn pending(&self) -> usize {
        self.0.pending()
    }

    /// Whether nothing more will be delivered: ``close()`` was called, or
    /// the last event (a channel's ``on_socket_error``, a worker's
    /// ``on_disconnect``) ran.
    #[getter]
    fn done(&self) -> bool {
        self.0.is_done()
    }

    /// Closes gracefully: no callback runs after this returns, the
    /// callbacks are dropped. Idempotent; called by ``with`` and when the
    /// object is garbage-collected.
    fn close(&self) {
        self.0.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.0.close();
        false
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Never block the collector: these locks are only held briefly,
        // never across a call into Python.
        if let Ok(cbs) = self.0.cbs.try_lock() {
            for c in cbs.iter().flatten() {
                visit.call(c)?;
            }
        }
        if let Some(Ok(ready)) = self.0.accepting.as_ref().map(|a| a.ready.try_lock()) {
            for ch in ready.iter() {
                visit.call(ch)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        self.0.clear();
    }
}

/// Declares a handle class: its [`Spec`] (`SPEC`: the fields given, the
/// rest as [`Spec::PLAIN`]), its callbacks (getters and setters with their
/// documentation) in its one `#[pymethods]` block, with `listening: f` the
/// `address`, `port` and `endpoint` of what `self.f()` listens on, then
/// its own methods. The class holds its [`State`] as `h`.
macro_rules! handle_class {
    (
        $cls:ident,
        spec { $($field:ident: $val:expr),* $(,)? }
        $(listening: $local:ident;)?
        callbacks { $( $(#[doc = $doc:literal])* $name:ident / $setter:ident; )* }
        methods { $($rest:tt)* }
    ) => {
        static SPEC: $crate::handle::Spec = $crate::handle::Spec { callbacks: $cls::CALLBACKS, $($field: $val,)* ..$crate::handle::Spec::PLAIN };

        impl $cls {
            /// The names of the callbacks.
            pub(crate) const CALLBACKS: &'static [&'static str] = &[$(stringify!($name)),*];
        }

        #[pymethods]
        impl $cls {
            $(
                $(#[doc = $doc])*
                #[getter($name)]
                fn $name(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                    self.h.callback(py, stringify!($name))
                }

                #[setter($name)]
                fn $setter(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
                    self.h.set_callback(stringify!($name), value)
                }
            )*

            $(
                /// Where it listens, like ``socket.getsockname()``: a ``(host,
                /// port)`` tuple for TCP (the actual port when bound to 0), the
                /// path (str) for a Unix socket.
                #[getter]
                fn address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    $crate::convert::address(py, &self.$local())
                }

                /// The TCP port listened on, or None for a Unix socket.
                #[getter]
                fn port(&self) -> Option<u16> {
                    match self.$local() {
                        sluice_core::net::Endpoint::Tcp(_, p) => Some(p),
                        _ => None,
                    }
                }

                /// The listening endpoint as text: ``host:port``, ``[v6]:port``
                /// or ``unix:PATH``.
                #[getter]
                fn endpoint(&self) -> String {
                    self.$local().to_string()
                }
            )?

            $($rest)*
        }
    };
}
pub(crate) use handle_class;

/// Waits until at least one of ``objects`` (channels, servers, workers,
/// engines, sessions, resume servers: any mix) has events (``timeout``
/// seconds at most; None waits forever, 0 does not wait), then runs the
/// callbacks of every one that has (one batch each, as its
/// ``dispatch()``), and returns the number of events run. The GIL is
/// released while waiting. Returns 0 at once when every object is done.
///
/// An exception raised by a callback propagates at once; objects not yet
/// dispatched keep their events for the next call.
#[pyfunction]
#[pyo3(signature = (*objects, timeout=None))]
pub(crate) fn poll(py: Python<'_>, objects: &Bound<'_, PyTuple>, timeout: Option<f64>) -> PyResult<usize> {
    let objs: Vec<Arc<State>> = objects
        .iter()
        .map(|o| match o.cast::<Handle>() {
            Ok(h) => Ok(h.get().0.clone()),
            Err(_) => Err(PyTypeError::new_err(
                "poll() takes sluice objects with a descriptor (Channel, Server, Worker, Engine, Session, ResumeServer)",
            )),
        })
        .collect::<PyResult<_>>()?;
    let fds: Vec<RawFd> = objs.iter().map(|o| o.fd()).collect();
    let done = || objs.iter().all(|o| o.is_done());
    // Nothing will ever come: do not wait (forever).
    let now = objs.iter().any(|o| o.pending() > 0) || done();
    let deadline = if now { Some(Instant::now()) } else { wait::deadline(timeout)? };
    let readable = wait::wait_until(py, &fds, deadline, done)?;
    let mut n = 0;
    for (o, r) in objs.iter().zip(readable) {
        if r || o.pending() > 0 {
            n += o.dispatch(py)?;
        }
    }
    Ok(n)
}
