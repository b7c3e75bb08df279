//! `sluice.Worker` and `sluice.WorkerStream`: the app side of the engine
//! protocol (the core's `roles::Worker`, poll delivery).

use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::DispatchError;
use sluice_core::roles::{Worker as CoreWorker, WorkerEvent, WorkerOptions, WorkerStream as CoreStream};
use sluice_core::wire::{Dialect, Role as WireRole};

use super::{role_class, seconds, streamed, text_string, Call, Hub, Role};
use crate::convert::text;
use crate::errors;
use crate::options;
use sluice_core::host::Options;

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
#[pyclass(frozen, weakref, module = "sluice", name = "Worker")]
pub struct Worker {
    core: CoreWorker,
    hub: Hub<WorkerEvent>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Like a channel: a worker nobody holds is closed.
        if !self.hub.is_done() {
            self.core.close();
        }
    }
}

impl Role for Worker {
    type Event = WorkerEvent;

    fn hub(&self) -> &Hub<WorkerEvent> {
        &self.hub
    }

    fn raw_fd(&self) -> RawFd {
        self.core.fd().expect("sluice workers use poll delivery")
    }

    fn core_dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        self.core.dispatch(max)
    }

    fn convert<'py>(&self, py: Python<'py>, event: WorkerEvent) -> PyResult<Option<Call<'py>>> {
        let int = |n: u64| n.into_pyobject(py).map(|v| v.into_any());
        Ok(Some(match event {
            WorkerEvent::Connected => ("on_connect", vec![]),
            WorkerEvent::Invoke { stream, event, .. } => {
                let s = Bound::new(py, WorkerStream { core: stream })?.into_any();
                ("on_invoke", vec![s, text(py, &event)?])
            }
            WorkerEvent::Chunk { session, data } => {
                ("on_chunk", vec![int(session)?, crate::convert::chunk(py, data, crate::options::default_copy_threshold())?])
            }
            WorkerEvent::Error { session, category, code, message } => (
                "on_error",
                vec![
                    int(session)?,
                    category.into_pyobject(py)?.into_any(),
                    code.into_pyobject(py)?.into_any(),
                    super::opt_text(py, message.as_deref())?,
                ],
            ),
            WorkerEvent::Close { session } => ("on_choke", vec![int(session)?]),
            WorkerEvent::Heartbeat => ("on_heartbeat", vec![]),
            WorkerEvent::Terminate { code, reason } => ("on_terminate", vec![code.into_pyobject(py)?.into_any(), text(py, &reason)?]),
            WorkerEvent::Disown => ("on_disown", vec![]),
            WorkerEvent::Drain => ("on_drain", vec![]),
            WorkerEvent::Disconnected { errno, sessions } => {
                self.hub.ended();
                ("on_disconnect", vec![errno.into_pyobject(py)?.into_any(), PyList::new(py, sessions)?.into_any()])
            }
        }))
    }
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        mut opts: WorkerOptions,
        heartbeat_interval: Option<f64>,
        disown_timeout: Option<f64>,
        channel: Options,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Worker> {
        let hub = Hub::new(Self::CALLBACKS, callbacks)?;
        if let Some(t) = heartbeat_interval {
            opts.heartbeat_interval = seconds(t, "heartbeat_interval")?;
        }
        if let Some(t) = disown_timeout {
            opts.disown_timeout = seconds(t, "disown_timeout")?;
        }
        opts.channel = channel.config(Some(WireRole::Worker));
        let queue = hub.queue.clone();
        let core = CoreWorker::connect(opts, move |_: &CoreWorker, ev: WorkerEvent| {
            crate::channel::lock(&queue).push(ev);
        })
        .map_err(|e| errors::error(py, &format!("cannot start the worker: {e}")))?;
        Ok(Worker { core, hub })
    }
}

role_class! {
    Worker,
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
        ) -> PyResult<Worker> {
            let (pairs, callbacks) = options::split(options)?;
            let channel = channel_options("Worker", &pairs, false)?;
            let endpoint = super::endpoint_arg(endpoint)?;
            let uuid = text_string(uuid, "uuid")?;
            let mut opts = WorkerOptions::new(&uuid, endpoint, channel.dialect());
            opts.app = app;
            opts.locator = locator.unwrap_or_default();
            Worker::start(py, opts, heartbeat_interval, disown_timeout, channel, callbacks.as_ref())
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
        ) -> PyResult<Worker> {
            if args.is_instance_of::<pyo3::types::PyString>() {
                return Err(pyo3::exceptions::PyTypeError::new_err("args must be a list of strings (sys.argv[1:]), not a str"));
            }
            let (pairs, callbacks) = options::split(options)?;
            let channel = channel_options("Worker.from_args", &pairs, true)?;
            let list: Vec<String> = args.extract()?;
            let opts = WorkerOptions::from_args(&list).map_err(|e| errors::bad_arguments(py, &e.0))?;
            Worker::start(py, opts, heartbeat_interval, disown_timeout, channel, callbacks.as_ref())
        }

        /// The stream of ``session`` (to answer a session from ``on_chunk``
        /// or ``on_choke``). Streams of unknown or ended sessions refuse
        /// every send with ``sluice.Closed``.
        fn stream(&self, session: u64) -> WorkerStream {
            WorkerStream { core: self.core.stream(session) }
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
            self.core.terminate(code, &reason);
            self.hub.finish();
            Ok(())
        }

        /// Closes the connection gracefully without a terminate; no callback
        /// runs afterwards. Idempotent; called by ``with`` and when the
        /// object is garbage-collected.
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

        /// Whether nothing more will be delivered: ``on_disconnect`` ran, or
        /// ``terminate()`` / ``close()`` was called.
        #[getter]
        fn done(&self) -> bool {
            self.hub.is_done()
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
                if self.hub.is_done() { " done" } else { "" }
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
pub struct WorkerStream {
    core: CoreStream,
}

#[pymethods]
impl WorkerStream {
    /// The session id.
    #[getter]
    fn session(&self) -> u64 {
        self.core.session()
    }

    /// Sends a chunk (v0 ``chunk``, v1 ``write``); ``data`` is bytes-like.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = super::data(data)?;
        streamed(py, self.core.write(&b))
    }

    /// Ends this side of the session (v0 ``choke``, v1 ``close``).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        streamed(py, self.core.close())
    }

    /// Fails the session: v1 ``error`` with ``category`` (42, the
    /// frameworks' own, when None); in v0 the error is followed by the
    /// ``choke`` the engine needs.
    #[pyo3(signature = (code, message=None, category=None))]
    fn error(&self, py: Python<'_>, code: i64, message: Option<&Bound<'_, PyAny>>, category: Option<i64>) -> PyResult<()> {
        let message = match message {
            Some(m) if !m.is_none() => text_string(m, "message")?,
            _ => String::new(),
        };
        let r = match category {
            Some(c) => self.core.error_with_category(c, code, &message),
            None => self.core.error(code, &message),
        };
        streamed(py, r)
    }

    fn __repr__(&self) -> String {
        format!("<sluice.WorkerStream session={}>", self.core.session())
    }
}
