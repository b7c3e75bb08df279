//! The protocol roles of `sluice-core` (`Worker`, `Engine`, `Session`,
//! `ResumeServer`) as Python classes.
//!
//! Every role uses the core's poll delivery, like `Channel`: the core queues
//! the role's events behind a descriptor; `dispatch()`, `run()` or the
//! asyncio reader take them on the Python thread (the core handler only
//! appends to a vector) and run the role's `on_*` callbacks. A [`Hub`] holds
//! what is common: the callbacks, the events taken, and those left by a
//! callback that raised.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use sluice_core::net::{DispatchError, Endpoint};
use sluice_core::roles::StreamError;
use sluice_core::wire::{Frame, Message};

use crate::channel::{callable, frame_args, lock};
use crate::convert::{self, text};
use crate::errors;
use crate::wait;

pub(crate) mod engine;
pub(crate) mod resume;
pub(crate) mod session;
pub(crate) mod worker;

/// One event ready for Python: the callback's name and its arguments.
pub(crate) type Call<'py> = (&'static str, Vec<Bound<'py, PyAny>>);

/// What the roles share: callbacks by name, the core's events collected by
/// the handler during the core's dispatch, and the events a raising callback
/// left undelivered.
pub(crate) struct Hub<E> {
    pub(crate) queue: Arc<Mutex<Vec<E>>>,
    pending: Mutex<VecDeque<E>>,
    names: &'static [&'static str],
    cbs: Mutex<Vec<Option<Py<PyAny>>>>,
    dispatching: AtomicBool,
    /// Nothing more will be delivered (closed, stopped, or the last event
    /// ran).
    done: AtomicBool,
}

impl<E> Hub<E> {
    /// A hub with the callbacks given as constructor keywords.
    pub(crate) fn new(names: &'static [&'static str], kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Hub<E>> {
        let mut cbs: Vec<Option<Py<PyAny>>> = names.iter().map(|_| None).collect();
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                let k: String = k.extract()?;
                let Some(i) = names.iter().position(|n| *n == k) else {
                    return Err(PyTypeError::new_err(format!("unexpected keyword argument {k:?} (callbacks: {})", names.join(", "))));
                };
                cbs[i] = callable(Some(v), names[i])?;
            }
        }
        Ok(Hub {
            queue: Arc::new(Mutex::new(Vec::new())),
            pending: Mutex::new(VecDeque::new()),
            names,
            cbs: Mutex::new(cbs),
            dispatching: AtomicBool::new(false),
            done: AtomicBool::new(false),
        })
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| *n == name).expect("a callback of this role")
    }

    pub(crate) fn get(&self, py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
        lock(&self.cbs)[self.index(name)].as_ref().map(|c| c.clone_ref(py))
    }

    pub(crate) fn set(&self, name: &'static str, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let new = callable(value, name)?;
        let i = self.index(name);
        let old = std::mem::replace(&mut lock(&self.cbs)[i], new);
        drop(old);
        Ok(())
    }

    pub(crate) fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Marks the end: nothing more is delivered, the callbacks are dropped.
    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Release);
        lock(&self.pending).clear();
        lock(&self.queue).clear();
        let old: Vec<Option<Py<PyAny>>> = lock(&self.cbs).iter_mut().map(Option::take).collect();
        drop(old);
    }

    /// Marks the end once the last event has run (the callbacks stay).
    pub(crate) fn ended(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// Runs up to `max` events through the callbacks: first those a raising
    /// callback left, then the core's (`core(max)` runs the core's dispatch,
    /// whose handler appends to `queue`). `convert` turns an event into a
    /// call; events it maps to `None` are dropped.
    pub(crate) fn dispatch<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        core: impl FnOnce(usize) -> Result<usize, DispatchError>,
        mut convert: impl FnMut(Python<'py>, E) -> PyResult<Option<Call<'py>>>,
    ) -> PyResult<usize> {
        if self.dispatching.swap(true, Ordering::AcqRel) {
            return Err(errors::error(py, "dispatch called from inside this object's own callback (or from two threads at once)"));
        }
        struct Reset<'a>(&'a AtomicBool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _reset = Reset(&self.dispatching);
        let mut events: Vec<E> = {
            let mut p = lock(&self.pending);
            let k = max.min(p.len());
            p.drain(..k).collect()
        };
        if events.is_empty() && !self.is_done() {
            core(max).map_err(|e| errors::error(py, &e.to_string()))?;
            events = std::mem::take(&mut *lock(&self.queue));
        }
        let mut n = 0;
        let mut it = events.into_iter();
        while let Some(ev) = it.next() {
            if self.is_done() && !self.has_callbacks() {
                break;
            }
            n += 1;
            let r = convert(py, ev).and_then(|call| match call {
                None => Ok(()),
                Some((name, args)) => {
                    let cb = self.get(py, name);
                    match cb {
                        Some(f) => f.bind(py).call1(PyTuple::new(py, args)?).map(drop),
                        None => Ok(()),
                    }
                }
            });
            if let Err(e) = r {
                let mut p = lock(&self.pending);
                for rest in it.rev() {
                    p.push_front(rest);
                }
                return Err(e);
            }
        }
        Ok(n)
    }

    fn has_callbacks(&self) -> bool {
        lock(&self.cbs).iter().any(Option::is_some)
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(cbs) = self.cbs.try_lock() {
            for c in cbs.iter().flatten() {
                visit.call(c)?;
            }
        }
        Ok(())
    }

    pub(crate) fn clear(&self) {
        let old: Vec<Option<Py<PyAny>>> = lock(&self.cbs).iter_mut().map(Option::take).collect();
        drop(old);
    }
}

/// What a role class provides to the shared methods of [`role_class!`].
pub(crate) trait Role {
    /// The core event type.
    type Event;
    fn hub(&self) -> &Hub<Self::Event>;
    /// The core's delivery descriptor.
    fn raw_fd(&self) -> RawFd;
    /// Runs the core's dispatch (its handler appends to the hub's queue).
    fn core_dispatch(&self, max: usize) -> Result<usize, DispatchError>;
    /// One event as a callback call.
    fn convert<'py>(&self, py: Python<'py>, event: Self::Event) -> PyResult<Option<Call<'py>>>;
}

/// The most events one `dispatch()` runs.
pub(crate) const BATCH: usize = 1024;

pub(crate) fn dispatch_role<R: Role>(r: &R, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
    let hub = r.hub();
    if timeout != Some(0.0) && !hub.has_pending() && !hub.is_done() {
        let deadline = wait::deadline(timeout)?;
        wait::wait_until(py, &[r.raw_fd()], deadline, || hub.is_done())?;
    }
    hub.dispatch(py, BATCH, |m| r.core_dispatch(m), |py, e| r.convert(py, e))
}

pub(crate) fn run_role<R: Role>(r: &R, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
    let hub = r.hub();
    let deadline = wait::deadline(timeout)?;
    loop {
        if hub.is_done() {
            return Ok(());
        }
        if !hub.has_pending() {
            let ready = wait::wait_until(py, &[r.raw_fd()], deadline, || hub.is_done())?;
            if !ready[0] && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(());
            }
        }
        hub.dispatch(py, BATCH, |m| r.core_dispatch(m), |py, e| r.convert(py, e))?;
    }
}

/// Declares a role class's callbacks (getters and setters) and the methods
/// every role has (`fileno`, `dispatch`, `run`, `done`), followed by its own.
macro_rules! role_class {
    (
        $cls:ident,
        callbacks { $( $(#[doc = $doc:literal])* $name:ident / $setter:ident; )* }
        methods { $($rest:tt)* }
    ) => {
        impl $cls {
            /// The names of the callbacks, as constructor keywords.
            pub(crate) const CALLBACKS: &'static [&'static str] = &[$(stringify!($name)),*];
        }

        #[pymethods]
        impl $cls {
            $(
                $(#[doc = $doc])*
                #[getter($name)]
                fn $name(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                    $crate::roles::Role::hub(self).get(py, stringify!($name))
                }

                #[setter($name)]
                fn $setter(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
                    $crate::roles::Role::hub(self).set(stringify!($name), value)
                }
            )*

            /// The descriptor that is readable while events wait
            /// (level-triggered): for ``selectors``, ``select`` or
            /// ``loop.add_reader`` (see ``sluice.aio.run``); call
            /// ``dispatch()`` when it is readable.
            fn fileno(&self) -> std::os::fd::RawFd {
                $crate::roles::Role::raw_fd(self)
            }

            /// Runs the callbacks of the events waiting (at most 1024) and
            /// returns how many ran. ``timeout``: seconds to wait for events
            /// first, with the GIL released (0 does not wait, None waits
            /// until events come or the object is done). A callback's
            /// exception propagates; the events after it stay queued and
            /// the next ``dispatch()`` runs them first.
            #[pyo3(signature = (timeout=Some(0.0)), text_signature = "($self, timeout=0.0)")]
            fn dispatch(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
                $crate::roles::dispatch_role(self, py, timeout)
            }

            /// Dispatches until the object is done (see ``done``) or
            /// ``timeout`` seconds have passed (None: no limit). The GIL is
            /// released while waiting; Ctrl-C interrupts. A callback's
            /// exception propagates.
            #[pyo3(signature = (timeout=None))]
            fn run(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
                $crate::roles::run_role(self, py, timeout)
            }

            /// Events left undelivered by a callback that raised (the next
            /// ``dispatch()`` runs them first; the descriptor does not
            /// signal them).
            #[getter]
            fn pending(&self) -> bool {
                $crate::roles::Role::hub(self).has_pending()
            }

            fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
                $crate::roles::Role::hub(self).traverse(&visit)
            }

            fn __clear__(&self) {
                $crate::roles::Role::hub(self).clear()
            }

            $($rest)*
        }
    };
}
pub(crate) use role_class;

/// A refused stream send as `sluice.WouldBlock` or `sluice.Closed`.
pub(crate) fn stream_error(py: Python<'_>, e: StreamError) -> PyErr {
    match e {
        StreamError::WouldBlock => errors::send_error(py, sluice_core::net::SendError::WouldBlock),
        StreamError::Closed => errors::closed(py, "the connection is closed"),
        StreamError::Ended => errors::closed(py, "this side of the stream has ended (close or error was sent)"),
        StreamError::NoSession => errors::closed(py, "no such session (not open, or ended in both directions)"),
    }
}

pub(crate) fn streamed(py: Python<'_>, r: Result<(), StreamError>) -> PyResult<()> {
    r.map_err(|e| stream_error(py, e))
}

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

/// Seconds (a positive finite float) as a duration.
/// A TypeError for a channel option a role decides itself (``role`` of a
/// worker, ...) given as a keyword.
pub(crate) fn refuse_fixed(what: &str, pairs: &[(String, Bound<'_, PyAny>)], fixed: &[&str]) -> PyResult<()> {
    match pairs.iter().find(|(k, _)| fixed.contains(&k.as_str())) {
        Some((k, _)) => Err(PyTypeError::new_err(format!("{what}() does not take the option '{k}' (it sets it itself)"))),
        None => Ok(()),
    }
}

pub(crate) fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value.min(1e9)))
    } else {
        Err(PyValueError::new_err(format!("{what} must be a positive number of seconds, not {value}")))
    }
}

/// A protocol message as a call of the Channel-style callback of the same
/// name (`on_chunk(session, data)`, ...), with `prefix` before the
/// arguments (the peer, for a resume server).
pub(crate) fn message_call<'py>(py: Python<'py>, prefix: Option<Bound<'py, PyAny>>, session: u64, message: Message) -> PyResult<Call<'py>> {
    let mut args: Vec<Bound<'py, PyAny>> = prefix.into_iter().collect();
    let s = || session.into_pyobject(py).map(|v| v.into_any());
    let name = match message {
        Message::Handshake { uuid } => {
            args.push(text(py, &uuid)?);
            "on_handshake"
        }
        Message::Heartbeat => "on_heartbeat",
        Message::Terminate { code, reason } => {
            args.extend([s()?, code.into_pyobject(py)?.into_any(), text(py, &reason)?]);
            "on_terminate"
        }
        Message::Invoke { event } => {
            args.extend([s()?, text(py, &event)?]);
            "on_invoke"
        }
        Message::Chunk { data } => {
            args.extend([s()?, convert::chunk(py, data, crate::options::default_copy_threshold())?]);
            "on_chunk"
        }
        Message::Choke => {
            args.push(s()?);
            "on_choke"
        }
        Message::Error { category, code, message } => {
            args.extend([
                s()?,
                category.into_pyobject(py)?.into_any(),
                code.into_pyobject(py)?.into_any(),
                opt_text(py, message.as_deref())?,
            ]);
            "on_error"
        }
    };
    Ok((name, args))
}

/// A frame as `on_frame(session, type_id, args)`, with `prefix` first.
pub(crate) fn frame_call<'py>(py: Python<'py>, prefix: Option<Bound<'py, PyAny>>, frame: &Frame) -> PyResult<Call<'py>> {
    let mut args: Vec<Bound<'py, PyAny>> = prefix.into_iter().collect();
    args.extend([frame.session.into_pyobject(py)?.into_any(), frame.ty.into_pyobject(py)?.into_any(), frame_args(py, frame)?]);
    Ok(("on_frame", args))
}

/// Protocol text or None.
pub(crate) fn opt_text<'py>(py: Python<'py>, b: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
    match b {
        Some(b) => text(py, b),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Chunk data to send.
pub(crate) fn data(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    convert::data_arg(obj)
}

/// A `str` message argument (protocol text; str or bytes) as a Rust string
/// for the core's `&str` parameters: invalid UTF-8 is replaced.
pub(crate) fn text_string(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let b = convert::text_arg(obj, what)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Registers the role classes.
pub(crate) fn register(m: &Bound<'_, pyo3::types::PyModule>) -> PyResult<()> {
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
