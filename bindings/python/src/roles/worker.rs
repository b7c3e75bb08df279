//! `sluice.Worker` and `sluice.WorkerStream`: the app side of the engine
//! protocol (the core's `roles::Worker`, on the handle base).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use sluice_core::host::{Options, Streams};
use sluice_core::roles::{Worker as CoreWorker, WorkerEvent, WorkerOptions};
use sluice_core::wire::{Dialect, Role as WireRole};

use super::{seconds, text_string};
use crate::handle::{self, handle_class, Handle, Queue, State};
use crate::sends::Stream;
use crate::{errors, options};

/// A worker's channel options: the table's, except ``role`` (always
/// worker), ``copy_threshold`` and ``batch`` (a role's events are not
/// Channel events), and with ``from_args`` the dialect (``--protocol``).
fn channel_options(what: &str, pairs: &[(String, Bound<'_, PyAny>)], from_args: bool) -> PyResult<Options> {
    let mut fixed: Vec<&str> = vec!["role", "copy_threshold", "batch"];
    if from_args {
        fixed.extend(["dialect", "protocol"]);
    }
    super::refuse_fixed(what, pairs, &fixed)?;
    options::parse(what, pairs)
}

/// A worker: connects to the engine's socket, sends its handshake and
/// heartbeats, disowns itself when the engine falls silent, and hands each
/// session the engine opens to ``on_invoke`` (docs/PROTOCOL.md §6).
///
/// ``Worker(endpoint, uuid, dialect=1, ...)``, or
/// ``Worker.from_args(sys.argv[1:], ...)`` with the arguments the runtime
/// starts a worker with (``--app --uuid --endpoint --locator --protocol``).
/// The connection is made in the background; the first event is
/// ``on_connect()`` (handshake sent) or ``on_disconnect(errno, [])``.
///
/// Callbacks run only on the thread that calls ``dispatch()`` / ``run()``
/// (or in the event loop with ``sluice.aio.run(worker)``), like a channel's;
/// the protocol itself (handshake, heartbeats' bookkeeping) advances as
/// events are dispatched. ``on_disconnect`` is the last event; after
/// ``terminate()`` or ``close()`` none is delivered.
#[pyclass(extends = Handle, frozen, module = "sluice", name = "Worker")]
pub struct Worker {
    h: Arc<State>,
    core: CoreWorker,
}

impl Worker {
    fn start(
        py: Python<'_>,
        mut opts: WorkerOptions,
        (heartbeat_interval, disown_timeout): (Option<f64>, Option<f64>),
        channel: Options,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Worker>> {
        let cbs = handle::callbacks(&SPEC, callbacks)?;
        if let Some(t) = heartbeat_interval {
            opts.heartbeat_interval = seconds(t, "heartbeat_interval")?;
        }
        if let Some(t) = disown_timeout {
            opts.disown_timeout = seconds(t, "disown_timeout")?;
        }
        opts.channel = channel.config(Some(WireRole::Worker));
        let queue = Queue::default();
        let q = queue.clone();
        let core = CoreWorker::connect(opts, move |_: &CoreWorker, ev: WorkerEvent| q.push(ev))
            .map_err(|e| errors::error(py, &format!("cannot start the worker: {e}")))?;
        let mut state = State::new(core.clone(), queue, &SPEC, cbs);
        state.streams = Some(Arc::new(core.clone()));
        let h = Arc::new(state);
        Ok(PyClassInitializer::from(Handle(h.clone())).add_subclass(Worker { h, core }))
    }
}

handle_class! {
    Worker,
    spec { disconnect_sessions: true, last_disconnect: true }
    callbacks {
        /// ``on_connect()``: connected; the handshake and the first
        /// heartbeat are sent.
        on_connect / set_on_connect;
        /// ``on_invoke(stream: WorkerStream, event: str)``: the engine opens a
        /// session; answer on ``stream`` (``write``, then ``close`` or ``error``).
        on_invoke / set_on_invoke;
        /// ``on_chunk(session, data)``: request data (``bytes``, or a
        /// ``Payload`` from 16 KiB).
        on_chunk / set_on_chunk;
        /// ``on_error(session, category, code, message)``: the engine failed
        /// the session (``category`` None in v0, ``message`` None if absent).
        on_error / set_on_error;
        /// ``on_choke(session)``: the engine's direction of the session ended
        /// (v0 ``choke``, v1 ``close``).
        on_choke / set_on_choke;
        /// ``on_heartbeat()``: the engine answered a heartbeat.
        on_heartbeat / set_on_heartbeat;
        /// ``on_terminate(code, reason: str)``: the engine asks the worker to
        /// stop: finish or abort the sessions, then call ``terminate()``.
        on_terminate / set_on_terminate;
        /// ``on_disown()``: the engine sent nothing for ``disown_timeout``;
        /// the connection is closed and ``on_disconnect(ETIMEDOUT, ...)``
        /// follows.
        on_disown / set_on_disown;
        /// ``on_drain()``: after a send raised ``WouldBlock``, sends are
        /// accepted again.
        on_drain / set_on_drain;
        /// ``on_disconnect(errno, sessions: list)``: the connection ended
        /// (the last event): ESHUTDOWN 108 when the engine closed it,
        /// ETIMEDOUT 110 after a disown, ECONNREFUSED 111, ENOENT 2...;
        /// ``sessions``: those still open (their streams refuse sends).
        on_disconnect / set_on_disconnect;
    }
    methods {
        #[new]
        #[pyo3(signature = (
            endpoint, uuid, *, app=String::new(), locator=None, heartbeat_interval=None, disown_timeout=None,
            **options
        ))]
        #[pyo3(text_signature = "(endpoint, uuid, *, dialect=1, app='', locator=None, heartbeat_interval=5.0, disown_timeout=30.0, **options)")]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            py: Python<'_>,
            endpoint: &Bound<'_, PyAny>,
            uuid: &Bound<'_, PyAny>,
            app: String,
            locator: Option<Vec<String>>,
            heartbeat_interval: Option<f64>,
            disown_timeout: Option<f64>,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<PyClassInitializer<Worker>> {
            let (pairs, callbacks) = options::split(options)?;
            let channel = channel_options("Worker", &pairs, false)?;
            let endpoint = super::endpoint_arg(endpoint)?;
            let uuid = text_string(uuid, "uuid")?;
            let mut opts = WorkerOptions::new(&uuid, endpoint, channel.dialect());
            opts.app = app;
            opts.locator = locator.unwrap_or_default();
            Worker::start(py, opts, (heartbeat_interval, disown_timeout), channel, callbacks.as_ref())
        }

        /// A worker started with the runtime's arguments (without the
        /// program name: ``sys.argv[1:]``): ``--app NAME --uuid UUID
        /// --endpoint PATH [--locator host:port,...] [--protocol 1]``
        /// (``--protocol`` absent: v0). Unknown flags are skipped with their
        /// value. Raises ``sluice.BadArguments`` when ``--uuid`` or
        /// ``--endpoint`` is missing, a flag has no value, or the protocol is
        /// unknown. The keywords are the constructor's (the dialect comes
        /// from ``--protocol``).
        #[staticmethod]
        #[pyo3(signature = (args, *, heartbeat_interval=None, disown_timeout=None, **options))]
        #[pyo3(text_signature = "(args, *, heartbeat_interval=5.0, disown_timeout=30.0, **options)")]
        fn from_args(
            py: Python<'_>,
            args: &Bound<'_, PyAny>,
            heartbeat_interval: Option<f64>,
            disown_timeout: Option<f64>,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Py<Worker>> {
            if args.is_instance_of::<pyo3::types::PyString>() {
                return Err(pyo3::exceptions::PyTypeError::new_err("args must be a list of strings (sys.argv[1:]), not a str"));
            }
            let (pairs, callbacks) = options::split(options)?;
            let channel = channel_options("Worker.from_args", &pairs, true)?;
            let list: Vec<String> = args.extract()?;
            let opts = WorkerOptions::from_args(&list).map_err(|e| errors::bad_arguments(py, &e.0))?;
            Py::new(py, Worker::start(py, opts, (heartbeat_interval, disown_timeout), channel, callbacks.as_ref())?)
        }

        /// The stream of ``session`` (to answer a session from ``on_chunk``
        /// or ``on_choke``). Streams of unknown or ended sessions refuse
        /// every send with ``sluice.Closed``.
        fn stream(&self, session: u64) -> WorkerStream {
            WorkerStream::new(Arc::new(self.core.clone()), session)
        }

        /// Sends ``terminate(code, reason)`` to the engine and closes the
        /// connection gracefully (what is queued is written first); no
        /// callback runs afterwards and ``done`` becomes true. v0 codes: 1
        /// normal, 2 abnormal (the engine marks the app broken); v1 engines
        /// ignore the code.
        #[pyo3(signature = (code=1, reason=None))]
        fn terminate(&self, code: i64, reason: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            let reason = match reason {
                Some(r) if !r.is_none() => text_string(r, "reason")?,
                _ => String::new(),
            };
            self.h.finish();
            self.core.terminate(code, &reason);
            Ok(())
        }

        /// ``--app``: the app's name ("" when not given).
        #[getter]
        fn app(&self) -> String {
            self.core.options().app.clone()
        }

        /// ``--uuid``: sent in the handshake.
        #[getter]
        fn uuid(&self) -> String {
            self.core.options().uuid.clone()
        }

        /// ``--endpoint``: the engine's socket (``unix:PATH`` or ``host:port``).
        #[getter]
        fn endpoint(&self) -> String {
            self.core.options().endpoint.to_string()
        }

        /// ``--locator``: the Locator's ``host:port`` entries.
        #[getter]
        fn locator(&self) -> Vec<String> {
            self.core.options().locator.clone()
        }

        /// The dialect: 0 (no ``--protocol``) or 1.
        #[getter]
        fn dialect(&self) -> u8 {
            match self.core.dialect() {
                Dialect::V0 => 0,
                Dialect::V1 => 1,
            }
        }

        /// The heartbeat interval in seconds.
        #[getter]
        fn heartbeat_interval(&self) -> f64 {
            self.core.options().heartbeat_interval.as_secs_f64()
        }

        /// The disown timeout in seconds.
        #[getter]
        fn disown_timeout(&self) -> f64 {
            self.core.options().disown_timeout.as_secs_f64()
        }

        /// Sessions open in at least one direction.
        #[getter]
        fn open_sessions(&self) -> usize {
            self.core.open_sessions()
        }

        fn __repr__(&self) -> String {
            format!(
                "<sluice.Worker v{} uuid={:?} {}{}>",
                self.dialect(),
                self.core.options().uuid,
                self.core.options().endpoint,
                if self.h.is_done() { " done" } else { "" }
            )
        }
    }
}

/// A session the engine opened, seen from the worker: ``write`` chunks,
/// then end it with exactly one of ``close()`` or ``error()``; nothing may
/// follow. Sends raise ``sluice.WouldBlock`` when the send queue is full
/// (``on_drain`` follows) and ``sluice.Closed`` once the stream has ended
/// or the connection is gone.
#[pyclass(frozen, module = "sluice", name = "WorkerStream")]
pub struct WorkerStream(Stream);

impl WorkerStream {
    pub(crate) fn new(to: Arc<dyn Streams>, session: u64) -> WorkerStream {
        WorkerStream(Stream { to, session })
    }
}

#[pymethods]
impl WorkerStream {
    /// The session id.
    #[getter]
    fn session(&self) -> u64 {
        self.0.session
    }

    /// Sends a chunk (v0 ``chunk``, v1 ``write``); ``data`` is bytes-like.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.0.write(py, data)
    }

    /// Ends this side of the session (v0 ``choke``, v1 ``close``).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.0.close(py)
    }

    /// Fails the session: v1 ``error`` with ``category`` (42, the
    /// frameworks' own, when None); in v0 the error is followed by the
    /// ``choke`` the engine needs.
    #[pyo3(signature = (code, message=None, category=None))]
    fn error(&self, py: Python<'_>, code: i64, message: Option<&Bound<'_, PyAny>>, category: Option<i64>) -> PyResult<()> {
        self.0.error(py, code, message, category)
    }

    fn __repr__(&self) -> String {
        format!("<sluice.WorkerStream session={}>", self.0.session)
    }
}
