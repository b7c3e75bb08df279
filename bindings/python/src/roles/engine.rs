//! `sluice.Engine`, `sluice.WorkerRef` and `sluice.EngineStream`: the
//! runtime side of the worker protocol (the core's `roles::Engine`, on the
//! handle base).

use std::collections::HashSet;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use sluice_core::roles::{Engine as CoreEngine, EngineEvent, EngineOptions, WorkerRef as CoreRef};
use sluice_core::wire::Role as WireRole;

use super::{seconds, text_string};
use crate::handle::{self, handle_class, Handle, Queue, State};
use crate::sends::Stream;
use crate::{errors, options};

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
#[pyclass(extends = Handle, frozen, module = "sluice", name = "Engine")]
pub struct Engine {
    h: Arc<State>,
    core: CoreEngine,
}

impl Engine {
    fn local(&self) -> sluice_core::net::Endpoint {
        self.core.local().clone()
    }
}

handle_class! {
    Engine,
    spec { renames: &[("connect", "on_handshake"), ("disconnect", "on_gone")] }
    listening: local;
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
            endpoint: &Bound<'_, PyAny>,
            dialect: Option<Bound<'_, PyAny>>,
            uuids: Option<&Bound<'_, PyAny>>,
            handshake_timeout: f64,
            heartbeat_timeout: f64,
            terminate_timeout: f64,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<PyClassInitializer<Engine>> {
            let (mut pairs, callbacks) = options::split(options)?;
            super::refuse_fixed("Engine", &pairs, &["role", "copy_threshold", "batch"])?;
            if let Some(d) = dialect {
                pairs.insert(0, ("dialect".to_string(), d));
            }
            let channel = options::parse("Engine", &pairs)?;
            let cbs = handle::callbacks(&SPEC, callbacks.as_ref())?;
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
            let queue = Queue::default();
            let q = queue.clone();
            let core = CoreEngine::bind(opts, move |_: &CoreEngine, ev: EngineEvent| q.push(ev))?;
            let h = Arc::new(State::new(core.clone(), queue, &SPEC, cbs));
            Ok(PyClassInitializer::from(Handle(h.clone())).add_subclass(Engine { h, core }))
        }

        /// The workers that have handshaken and not gone, oldest first.
        #[getter]
        fn workers(&self) -> Vec<WorkerRef> {
            self.core.workers().into_iter().map(WorkerRef::from).collect()
        }

        /// The connected worker with this uuid, or None.
        fn worker(&self, uuid: &Bound<'_, PyAny>) -> PyResult<Option<WorkerRef>> {
            let uuid = text_string(uuid, "uuid")?;
            Ok(self.core.worker(&uuid).map(WorkerRef::from))
        }

        fn __repr__(&self) -> String {
            format!("<sluice.Engine {}{}>", self.core.local(), if self.h.is_done() { " closed" } else { "" })
        }
    }
}

/// A worker connected to an ``Engine``: invoke events on it, terminate or
/// kill it. Objects for the same connection compare equal and hash alike.
#[pyclass(frozen, module = "sluice", name = "WorkerRef")]
pub struct WorkerRef {
    core: CoreRef,
}

impl From<CoreRef> for WorkerRef {
    fn from(core: CoreRef) -> WorkerRef {
        WorkerRef { core }
    }
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
        let stream = self.core.invoke(&event).map_err(|e| errors::refused(py, e))?;
        Ok(self.stream(stream.session()))
    }

    /// The stream of a session this engine opened.
    fn stream(&self, session: u64) -> EngineStream {
        EngineStream(Stream { to: Arc::new(self.core.clone()), session }, self.core.clone())
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
        errors::sent(py, self.core.terminate(code, &reason))
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
pub struct EngineStream(Stream, CoreRef);

#[pymethods]
impl EngineStream {
    /// The session id.
    #[getter]
    fn session(&self) -> u64 {
        self.0.session
    }

    /// The worker it runs on.
    #[getter]
    fn worker(&self) -> WorkerRef {
        WorkerRef::from(self.1.clone())
    }

    /// Sends a request chunk; ``data`` is bytes-like.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.0.write(py, data)
    }

    /// Ends the request (v0 ``choke``, v1 ``close``).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.0.close(py)
    }

    /// Fails the session (v1 category 42; v0 error then choke).
    #[pyo3(signature = (code, message=None))]
    fn error(&self, py: Python<'_>, code: i64, message: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.0.error(py, code, message, None)
    }

    fn __repr__(&self) -> String {
        format!("<sluice.EngineStream session={} worker={}>", self.0.session, self.1.id())
    }
}
