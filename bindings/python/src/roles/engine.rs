//! `sluice.Engine`, `sluice.WorkerRef` and `sluice.EngineStream`: the
//! runtime side of the worker protocol (the core's `roles::Engine`, poll
//! delivery of its events).

use std::collections::HashSet;
use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use sluice_core::net::{DispatchError, Endpoint};
use sluice_core::roles::{Engine as CoreEngine, EngineEvent, EngineOptions, EngineStream as CoreStream, WorkerRef as CoreRef};
use sluice_core::wire::Role as WireRole;

use super::{role_class, seconds, streamed, text_string, Call, Hub, Role};
use crate::convert::text;
use crate::options;

/// An engine: listens (a Unix path, as the runtime does, or TCP), accepts
/// workers, checks each handshake's uuid, answers heartbeats, cuts workers
/// that stay silent (``ETIMEDOUT``), invokes events on workers and streams
/// their replies, and terminates them.
///
/// ``Engine(endpoint, dialect=1, uuids=None, ...)``: ``endpoint`` is a Unix
/// socket path or ``(host, port)`` (port 0 picks one: see ``port``).
/// Workers appear as ``WorkerRef`` objects in the callbacks (compare them
/// with ``==``; they hash by ``id``). Callbacks run only on the thread that
/// calls ``dispatch()`` / ``run()`` (or in the event loop with
/// ``sluice.aio.run(engine)``); the protocol (handshakes, heartbeat
/// answers, timeouts) runs on the I/O threads and does not wait for them.
#[pyclass(frozen, weakref, module = "sluice", name = "Engine")]
pub struct Engine {
    core: CoreEngine,
    hub: Hub<EngineEvent>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.hub.is_done() {
            self.core.close();
        }
    }
}

fn worker<'py>(py: Python<'py>, w: CoreRef) -> PyResult<Bound<'py, PyAny>> {
    Ok(Bound::new(py, WorkerRef { core: w })?.into_any())
}

impl Role for Engine {
    type Event = EngineEvent;

    fn hub(&self) -> &Hub<EngineEvent> {
        &self.hub
    }

    fn raw_fd(&self) -> RawFd {
        self.core.fd().expect("sluice engines use poll delivery")
    }

    fn core_dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        self.core.dispatch(max)
    }

    fn convert<'py>(&self, py: Python<'py>, event: EngineEvent) -> PyResult<Option<Call<'py>>> {
        let int = |n: u64| n.into_pyobject(py).map(|v| v.into_any());
        Ok(Some(match event {
            EngineEvent::Handshake { worker: w } => ("on_handshake", vec![worker(py, w)?]),
            EngineEvent::Rejected { uuid } => ("on_rejected", vec![text(py, uuid.as_bytes())?]),
            EngineEvent::Heartbeat { worker: w } => ("on_heartbeat", vec![worker(py, w)?]),
            EngineEvent::Chunk { worker: w, session, data } => (
                "on_chunk",
                vec![worker(py, w)?, int(session)?, crate::convert::chunk(py, data, crate::options::default_copy_threshold())?],
            ),
            EngineEvent::Error { worker: w, session, category, code, message } => (
                "on_error",
                vec![
                    worker(py, w)?,
                    int(session)?,
                    category.into_pyobject(py)?.into_any(),
                    code.into_pyobject(py)?.into_any(),
                    super::opt_text(py, message.as_deref())?,
                ],
            ),
            EngineEvent::Close { worker: w, session } => ("on_choke", vec![worker(py, w)?, int(session)?]),
            EngineEvent::Terminate { worker: w, code, reason } => {
                ("on_terminate", vec![worker(py, w)?, code.into_pyobject(py)?.into_any(), text(py, &reason)?])
            }
            EngineEvent::Drain { worker: w } => ("on_drain", vec![worker(py, w)?]),
            EngineEvent::Gone { worker: w, errno } => ("on_gone", vec![worker(py, w)?, errno.into_pyobject(py)?.into_any()]),
        }))
    }
}

role_class! {
    Engine,
    callbacks {
        /// ``on_handshake(worker: WorkerRef)``: a worker handshook with an
        /// accepted uuid; it can be invoked.
        on_handshake / set_on_handshake;
        /// ``on_rejected(uuid: str)``: a handshake named a uuid not in
        /// ``uuids``; that worker is disconnected.
        on_rejected / set_on_rejected;
        /// ``on_heartbeat(worker)``: a worker heartbeat (already answered).
        on_heartbeat / set_on_heartbeat;
        /// ``on_chunk(worker, session, data)``: reply data (``bytes``, or a
        /// ``Payload`` from 16 KiB).
        on_chunk / set_on_chunk;
        /// ``on_error(worker, session, category, code, message)``: the worker
        /// failed the session (``category`` None in v0).
        on_error / set_on_error;
        /// ``on_choke(worker, session)``: the worker's direction of the
        /// session ended (v0 ``choke``, v1 ``close``).
        on_choke / set_on_choke;
        /// ``on_terminate(worker, code, reason: str)``: the worker sent
        /// terminate (its answer to ours, or its own decision).
        on_terminate / set_on_terminate;
        /// ``on_drain(worker)``: a refused send to this worker may be retried.
        on_drain / set_on_drain;
        /// ``on_gone(worker, errno)``: the worker's connection ended (its last
        /// event): ESHUTDOWN 108 when it closed, ETIMEDOUT 110 when it was
        /// cut for silence (no handshake, no heartbeat, or still there after
        /// the terminate timeout).
        on_gone / set_on_gone;
    }
    methods {
        #[new]
        #[pyo3(signature = (
            endpoint, dialect=None, *, uuids=None, handshake_timeout=5.0, heartbeat_timeout=30.0,
            terminate_timeout=10.0, **options
        ))]
        #[pyo3(text_signature = "(endpoint, dialect=1, *, uuids=None, handshake_timeout=5.0, heartbeat_timeout=30.0, terminate_timeout=10.0, **options)")]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            py: Python<'_>,
            endpoint: &Bound<'_, PyAny>,
            dialect: Option<Bound<'_, PyAny>>,
            uuids: Option<&Bound<'_, PyAny>>,
            handshake_timeout: f64,
            heartbeat_timeout: f64,
            terminate_timeout: f64,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Engine> {
            let (mut pairs, callbacks) = options::split(options)?;
            super::refuse_fixed("Engine", &pairs, &["role", "copy_threshold", "batch"])?;
            if let Some(d) = dialect {
                pairs.insert(0, ("dialect".to_string(), d));
            }
            let channel = options::parse("Engine", &pairs)?;
            let callbacks = callbacks.as_ref();
            let hub = Hub::new(Self::CALLBACKS, callbacks)?;
            let endpoint = super::endpoint_arg(endpoint)?;
            let mut opts = EngineOptions::new(endpoint, channel.dialect());
            opts.handshake_timeout = seconds(handshake_timeout, "handshake_timeout")?;
            opts.heartbeat_timeout = seconds(heartbeat_timeout, "heartbeat_timeout")?;
            opts.terminate_timeout = seconds(terminate_timeout, "terminate_timeout")?;
            if let Some(u) = uuids.filter(|u| !u.is_none()) {
                if u.is_instance_of::<pyo3::types::PyString>() {
                    return Err(pyo3::exceptions::PyTypeError::new_err("uuids must be an iterable of str, not a str"));
                }
                let mut set = HashSet::new();
                for x in u.try_iter()? {
                    set.insert(text_string(&x?, "uuid")?);
                }
                opts.uuids = Some(set);
            }
            opts.channel = channel.config(Some(WireRole::Engine));
            let queue = hub.queue.clone();
            let core = CoreEngine::bind(opts, move |_: &CoreEngine, ev: EngineEvent| {
                crate::channel::lock(&queue).push(ev);
            })?;
            let _ = py;
            Ok(Engine { core, hub })
        }

        /// The workers that have handshaken and not gone, oldest first.
        #[getter]
        fn workers(&self) -> Vec<WorkerRef> {
            self.core.workers().into_iter().map(|core| WorkerRef { core }).collect()
        }

        /// The connected worker with this uuid, or None.
        fn worker(&self, uuid: &Bound<'_, PyAny>) -> PyResult<Option<WorkerRef>> {
            let uuid = text_string(uuid, "uuid")?;
            Ok(self.core.worker(&uuid).map(|core| WorkerRef { core }))
        }

        /// Stops listening and closes every worker connection; no callback
        /// runs afterwards and ``done`` becomes true. Removes the Unix socket
        /// file. Idempotent; called by ``with`` and when the object is
        /// garbage-collected.
        fn close(&self) {
            self.core.close();
            self.hub.finish();
        }

        fn __enter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        #[pyo3(signature = (*_exc))]
        fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
            self.close();
            false
        }

        /// Whether ``close()`` was called.
        #[getter]
        fn done(&self) -> bool {
            self.hub.is_done()
        }

        /// Where it listens: ``(host, port)`` for TCP (the actual port when
        /// bound to 0), the path (str) for a Unix socket.
        #[getter]
        fn address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            crate::convert::address(py, &self.core.local())
        }

        /// The TCP port, or None for a Unix socket.
        #[getter]
        fn port(&self) -> Option<u16> {
            match self.core.local() {
                Endpoint::Tcp(_, p) => Some(p),
                Endpoint::Unix(_) => None,
            }
        }

        /// The listening endpoint as text: ``host:port`` or ``unix:PATH``.
        #[getter]
        fn endpoint(&self) -> String {
            self.core.local().to_string()
        }

        fn __repr__(&self) -> String {
            format!("<sluice.Engine {}{}>", self.core.local(), if self.hub.is_done() { " closed" } else { "" })
        }
    }
}

/// A worker connected to an ``Engine``: invoke events on it, terminate or
/// kill it. Objects for the same connection compare equal and hash alike.
#[pyclass(frozen, module = "sluice", name = "WorkerRef")]
pub struct WorkerRef {
    core: CoreRef,
}

#[pymethods]
impl WorkerRef {
    /// A number unique to this connection within the process.
    #[getter]
    fn id(&self) -> u64 {
        self.core.id()
    }

    /// The uuid of its handshake (None before it).
    #[getter]
    fn uuid(&self) -> Option<String> {
        self.core.uuid()
    }

    /// Sessions open in at least one direction.
    #[getter]
    fn open_sessions(&self) -> usize {
        self.core.open_sessions()
    }

    /// Opens a session for ``event``: sends ``invoke`` and returns the
    /// ``EngineStream`` to send request chunks on. Raises ``sluice.Closed``
    /// before the handshake or once the worker is gone.
    fn invoke(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<EngineStream> {
        let event = text_string(event, "event")?;
        self.core.invoke(&event).map(|core| EngineStream { core }).map_err(|e| super::stream_error(py, e))
    }

    /// The stream of a session this engine opened.
    fn stream(&self, session: u64) -> EngineStream {
        EngineStream { core: self.core.stream(session) }
    }

    /// Sends ``terminate(code, reason)``: the worker should answer with its
    /// own terminate (``on_terminate``) and close (``on_gone``); after the
    /// engine's ``terminate_timeout`` it is cut (ETIMEDOUT).
    #[pyo3(signature = (code=1, reason=None))]
    fn terminate(&self, py: Python<'_>, code: i64, reason: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let reason = match reason {
            Some(r) if !r.is_none() => text_string(r, "reason")?,
            _ => String::new(),
        };
        streamed(py, self.core.terminate(code, &reason))
    }

    /// Disconnects the worker at once; ``on_gone(worker, errno)`` follows
    /// (ECONNRESET 104 by default).
    #[pyo3(signature = (errno=104))]
    fn kill(&self, errno: i32) {
        self.core.kill(errno);
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<WorkerRef>().is_ok_and(|o| o.get().core == self.core)
    }

    fn __hash__(&self) -> u64 {
        self.core.id()
    }

    fn __repr__(&self) -> String {
        format!("<sluice.WorkerRef id={} uuid={:?}>", self.core.id(), self.core.uuid())
    }
}

/// A session an ``Engine`` opened on a worker: ``write`` request chunks,
/// then end this side with ``close()`` or ``error()``. Sends raise
/// ``sluice.WouldBlock`` when the queue is full and ``sluice.Closed`` once
/// this side has ended or the worker is gone.
#[pyclass(frozen, module = "sluice", name = "EngineStream")]
pub struct EngineStream {
    core: CoreStream,
}

#[pymethods]
impl EngineStream {
    /// The session id.
    #[getter]
    fn session(&self) -> u64 {
        self.core.session()
    }

    /// The worker it runs on.
    #[getter]
    fn worker(&self) -> WorkerRef {
        WorkerRef { core: self.core.worker().clone() }
    }

    /// Sends a request chunk; ``data`` is bytes-like.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = super::data(data)?;
        streamed(py, self.core.write(&b))
    }

    /// Ends the request (v0 ``choke``, v1 ``close``).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        streamed(py, self.core.close())
    }

    /// Fails the session (v1 category 42; v0 error then choke).
    #[pyo3(signature = (code, message=None))]
    fn error(&self, py: Python<'_>, code: i64, message: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let message = match message {
            Some(m) if !m.is_none() => text_string(m, "message")?,
            _ => String::new(),
        };
        streamed(py, self.core.error(code, &message))
    }

    fn __repr__(&self) -> String {
        format!("<sluice.EngineStream session={} worker={}>", self.core.session(), self.core.worker().id())
    }
}
