//! `sluice.Channel`: one connection, its callbacks (run by the handle
//! base, `handle.rs`), its sends (`sends.rs`) and its pull-style events.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use sluice_core::net::{Channel as CoreChannel, Incoming};
use sluice_core::wire::{Dialect, Message, Role};

use crate::convert::{self, text_arg};
use crate::errors;
use crate::events as ev;
use crate::handle::{self, handle_class, Handle, Queue, State};
use crate::options::{self, Opts};
use crate::sends;

/// A connection carrying Cocaine frames.
///
/// ``Channel(path)`` connects to a Unix socket, ``Channel(host, port)`` to
/// TCP, in the background: the outcome arrives as ``on_connect()`` or
/// ``on_socket_error(errno)``. Sends made before are queued.
///
/// Callbacks run only on the thread that calls ``dispatch()``, ``run()``,
/// ``sluice.poll()`` (or the asyncio API's reader): never on an I/O thread.
/// They are attributes (``ch.on_chunk = f``) or constructor keywords; a
/// callback that is None drops its events. Use either callbacks
/// (``dispatch``/``run``) or pull-style ``events()`` on one channel.
///
/// The other keywords (``**options``) are the channel options of
/// ``sluice.OPTIONS`` (``dialect``, ``role`` — default ``"worker"`` —,
/// ``profile``, ``max_frame_size``, ``high_watermark``, ``connect_timeout``
/// in seconds, ...), checked by the core's option table: a value it refuses
/// raises ValueError with the table's text, an unknown keyword TypeError.
#[pyclass(extends = Handle, frozen, module = "sluice", name = "Channel")]
pub struct Channel {
    h: Arc<State>,
    core: CoreChannel,
    peer: String,
}

impl Channel {
    fn create(core: CoreChannel, queue: Queue, opts: &Opts, cbs: Vec<Option<Py<PyAny>>>, peer: String) -> PyClassInitializer<Channel> {
        let h = Arc::new(State::new(core.clone(), queue, &SPEC, cbs).with_opts(opts));
        PyClassInitializer::from(Handle(h.clone())).add_subclass(Channel { h, core, peer })
    }

    fn control(&self) -> u64 {
        self.core.config().dialect.control_session()
    }

    fn wire(&self) -> (Dialect, sluice_core::wire::Profile) {
        (self.core.config().dialect, self.core.config().profile)
    }
}

/// Starts a channel on a connection a server accepted.
pub(crate) fn accepted(py: Python<'_>, incoming: Incoming, opts: &Opts) -> PyResult<Py<PyAny>> {
    let queue = Queue::default();
    let peer = incoming.peer().to_string();
    let core = incoming.start(queue.clone())?;
    Ok(Py::new(py, Channel::create(core, queue, opts, handle::callbacks(&SPEC, None)?, peer))?.into_any())
}

handle_class! {
    Channel,
    spec { renames: &[("disconnect", "on_socket_error")], terminate_session: true, last_disconnect: true }
    callbacks {
        /// ``on_connect()``: the connection is established (also the first
        /// event of an accepted channel).
        on_connect / set_on_connect;
        /// ``on_socket_error(errno)``: the connection ended (Linux errno:
        /// ECONNREFUSED 111, ENOENT 2, ESHUTDOWN 108 on end of stream,
        /// ECONNRESET 104, EPIPE 32, EBADMSG 74 bad framing, EMSGSIZE 90
        /// frame past ``max_frame_size``, ETIMEDOUT 110); after every
        /// complete frame was delivered, exactly once, the last event.
        on_socket_error / set_on_socket_error;
        /// ``on_handshake(uuid: str)``: engine role, the worker's handshake.
        on_handshake / set_on_handshake;
        /// ``on_heartbeat()``: a heartbeat (worker role: also the engine's reply).
        on_heartbeat / set_on_heartbeat;
        /// ``on_terminate(session, code, reason: str)``: terminate on the
        /// control session (0 in v0, 1 in v1).
        on_terminate / set_on_terminate;
        /// ``on_invoke(session, event: str)``: worker role, the engine opens a session.
        on_invoke / set_on_invoke;
        /// ``on_chunk(session, data)``: a chunk (v0 ``chunk``, v1 ``write``);
        /// ``data`` is ``bytes`` below ``copy_threshold`` bytes, else a
        /// zero-copy ``sluice.Payload``. Not called while ``on_chunks`` is set.
        on_chunk / set_on_chunk;
        /// ``on_chunks(session, chunks: list)``: the batch form of
        /// ``on_chunk``: a run of consecutive chunks of one session in one
        /// call (the fast path for many small messages). Takes precedence
        /// over ``on_chunk``.
        on_chunks / set_on_chunks;
        /// ``on_choke(session)``: the peer's direction of the session ends
        /// (v0 ``choke``, v1 ``close``).
        on_choke / set_on_choke;
        /// ``on_error(session, category, code, message)``: the session
        /// failed; ``category`` is None in v0, ``message`` (str) is None
        /// when a v1 error has none.
        on_error / set_on_error;
        /// ``on_frame(session, type_id, args: list)``: a frame that is not a
        /// worker-protocol message: every frame when ``role`` is None; with
        /// a role, frames the protocol drops (unknown type, unknown or
        /// finished session, bad arguments). ``args`` are decoded msgpack
        /// values (str family as str, bin as bytes).
        on_frame / set_on_frame;
        /// ``on_drain()``: after a send raised ``WouldBlock``, the send
        /// queue is down to ``low_watermark``: sends are accepted again.
        on_drain / set_on_drain;
    }
    methods {
        #[new]
        #[pyo3(signature = (host, port=None, **options))]
        #[pyo3(text_signature = "(host, port=None, *, on_connect=None, on_socket_error=None, on_handshake=None, on_heartbeat=None, on_terminate=None, on_invoke=None, on_chunk=None, on_chunks=None, on_choke=None, on_error=None, on_frame=None, on_drain=None, **options)")]
        fn py_new(host: &Bound<'_, PyAny>, port: Option<u16>, options: Option<&Bound<'_, PyDict>>) -> PyResult<PyClassInitializer<Channel>> {
            let endpoint = options::endpoint(host, port)?;
            let (pairs, cbs) = options::split(options)?;
            let opts = options::build("Channel", Some(Role::Worker), &pairs)?;
            let cbs = handle::callbacks(&SPEC, cbs.as_ref())?;
            let queue = Queue::default();
            let peer = endpoint.to_string();
            let core = CoreChannel::connect(endpoint, opts.config.clone(), queue.clone())?;
            Ok(Channel::create(core, queue, &opts, cbs, peer))
        }

        /// Pull-style delivery: takes the waiting events (at most ``max``,
        /// default ``batch``) as event objects (``sluice.events``) instead
        /// of running callbacks. ``timeout`` as for ``dispatch``. Returns
        /// an empty list when none came.
        #[pyo3(signature = (timeout=Some(0.0), max=None), text_signature = "($self, timeout=0.0, max=None)")]
        fn events<'py>(&self, py: Python<'py>, timeout: Option<f64>, max: Option<usize>) -> PyResult<Bound<'py, PyList>> {
            if timeout != Some(0.0) && !self.h.is_done() {
                self.h.wait(py, crate::wait::deadline(timeout)?)?;
            }
            // The event classes take the arguments of the callbacks.
            self.h.take_objects(py, max.unwrap_or(self.h.batch).max(1), |(source, event), threshold| {
                let class = match event.name() {
                    "connect" => py.get_type::<ev::Connected>(),
                    "disconnect" => py.get_type::<ev::SocketError>(),
                    "drain" => py.get_type::<ev::Drain>(),
                    "handshake" => py.get_type::<ev::Handshake>(),
                    "heartbeat" => py.get_type::<ev::Heartbeat>(),
                    "terminate" => py.get_type::<ev::Terminate>(),
                    "invoke" => py.get_type::<ev::Invoke>(),
                    "chunk" => py.get_type::<ev::Chunk>(),
                    "choke" => py.get_type::<ev::Choke>(),
                    "error" => py.get_type::<ev::ErrorEvent>(),
                    _ => py.get_type::<ev::Frame>(),
                };
                class.call1(PyTuple::new(py, self.h.args(py, source, event, threshold)?)?)
            })
        }

        // Sends queue the message and return at once; past ``high_watermark``
        // bytes a send raises ``WouldBlock`` (nothing is queued) and
        // ``on_drain`` follows. After ``close()`` or the end of the
        // connection sends raise ``Closed``.

        /// Queues pre-encoded bytes (whole frames) as they are. They do not
        /// update the session bookkeeping: open sessions with ``send_invoke``.
        fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
            errors::sent(py, self.core.send_raw(convert::data_arg(data)?))
        }

        /// Queues a chunk (v0 ``chunk``, v1 ``write``). ``data``: bytes-like;
        /// large ``bytes`` and ``Payload`` objects are sent without a copy.
        fn send_chunk(&self, py: Python<'_>, session: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
            sends::chunk(py, &self.core, session, data)
        }

        /// Queues several chunks of one session (an iterable of bytes-like
        /// objects) in one call. Stops at the first refused one and raises;
        /// the chunks before it are queued.
        fn send_chunks(&self, py: Python<'_>, session: u64, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
            let mut n = 0;
            for c in chunks.try_iter()? {
                sends::chunk(py, &self.core, session, &c?)?;
                n += 1;
            }
            Ok(n)
        }

        /// Ends this side's direction of ``session`` (v0 ``choke``, v1 ``close``).
        fn send_choke(&self, py: Python<'_>, session: u64) -> PyResult<()> {
            sends::choke(py, &self.core, session)
        }

        /// Fails ``session``. v1: ``[[category, code], message]`` with
        /// category 42 (the frameworks' own) when None; terminal, send
        /// nothing after it. v0: ``[code, message]``; follow it with
        /// ``send_choke`` as the 0.11 engine expects.
        #[pyo3(signature = (session, code, message=None, category=None))]
        fn send_error(&self, py: Python<'_>, session: u64, code: i64, message: Option<&Bound<'_, PyAny>>, category: Option<i64>) -> PyResult<()> {
            sends::error(py, &self.core, session, code, message, category)
        }

        /// Sends ``terminate(code, reason)`` on the control session (v0 codes:
        /// 1 normal, 2 abnormal).
        fn send_terminate(&self, py: Python<'_>, code: i64, reason: &Bound<'_, PyAny>) -> PyResult<()> {
            let reason = text_arg(reason, "reason")?;
            sends::message(py, &self.core, self.control(), &Message::Terminate { code, reason })
        }

        /// Sends a heartbeat on the control session.
        fn send_heartbeat(&self, py: Python<'_>) -> PyResult<()> {
            sends::message(py, &self.core, self.control(), &Message::Heartbeat)
        }

        /// Worker: introduces itself with its ``--uuid`` (the first frame).
        fn send_handshake(&self, py: Python<'_>, uuid: &Bound<'_, PyAny>) -> PyResult<()> {
            let uuid = text_arg(uuid, "uuid")?;
            sends::message(py, &self.core, self.control(), &Message::Handshake { uuid })
        }

        /// Engine: opens a session for ``event`` and returns its id
        /// (``next_session()`` when ``session`` is None).
        #[pyo3(signature = (event, session=None))]
        fn send_invoke(&self, py: Python<'_>, event: &Bound<'_, PyAny>, session: Option<u64>) -> PyResult<u64> {
            sends::invoke(py, &self.core, session.unwrap_or_else(|| self.core.next_session()), event)
        }

        /// Queues a generic frame: ``args`` is a list or tuple of values
        /// (None, bool, int, float, str, bytes-like, list, tuple, dict),
        /// encoded as msgpack.
        #[pyo3(signature = (session, type_id, args=None))]
        fn send_frame(&self, py: Python<'_>, session: u64, type_id: u64, args: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            sends::frame(py, &self.core, self.wire(), session, type_id, args)
        }

        /// Whether sends are accepted now (the queue is under
        /// ``high_watermark``). When they are not, an ``on_drain`` (or
        /// ``Drain`` event) is armed and follows once the queue is down to
        /// ``low_watermark``. Used by the asyncio ``drain()``.
        fn _arm_drain(&self, py: Python<'_>) -> PyResult<bool> {
            // An empty raw send queues nothing; refused, it arms the drain notice.
            match self.core.send_raw(bytes::Bytes::new()) {
                Ok(()) => Ok(true),
                Err(sluice_core::net::SendError::WouldBlock) => Ok(false),
                Err(e) => Err(errors::refused(py, e)),
            }
        }

        /// The id for a new session opened by this side: one above the
        /// highest id seen in either direction.
        fn next_session(&self) -> u64 {
            self.core.next_session()
        }

        /// Closes at once, dropping whatever is queued to send. Otherwise as
        /// ``close()``.
        fn abort(&self) {
            self.h.finish();
            self.core.abort();
        }

        /// The dialect: 0 (Cocaine 0.10/0.11) or 1 (0.12).
        #[getter]
        fn dialect(&self) -> u8 {
            match self.core.config().dialect {
                Dialect::V0 => 0,
                Dialect::V1 => 1,
            }
        }

        /// The role: ``"worker"``, ``"engine"`` or None (generic frames).
        #[getter]
        fn role(&self) -> Option<String> {
            options::role_name(self.core.config().role)
        }

        /// Where this channel connected to (``host:port``, ``[v6]:port``,
        /// ``unix:PATH``), or for an accepted channel the peer's address
        /// (often empty for Unix peers).
        #[getter]
        fn peer(&self) -> String {
            self.peer.clone()
        }

        /// Whether the channel is done: ``close()`` was called or the
        /// connection ended (events may still wait to be dispatched).
        #[getter]
        fn closed(&self) -> bool {
            // Done: closed, or the last event (the socket error) ran.
            self.h.is_done() || self.core.is_finished()
        }

        /// Bytes queued to send and not yet written.
        #[getter]
        fn queued(&self) -> usize {
            self.core.queued()
        }

        /// Chunks of at least this many bytes are delivered as a zero-copy
        /// ``Payload``, smaller ones as ``bytes`` (settable).
        #[getter]
        fn copy_threshold(&self) -> usize {
            self.h.copy_threshold.load(Ordering::Relaxed)
        }

        #[setter]
        fn set_copy_threshold(&self, n: usize) {
            self.h.copy_threshold.store(n, Ordering::Relaxed);
        }

        /// The most events one ``dispatch`` call runs.
        #[getter]
        fn batch(&self) -> usize {
            self.h.batch
        }

        fn __repr__(&self) -> String {
            let state = match (self.h.is_closed(), self.h.is_done() || self.core.is_finished()) {
                (true, _) => "closed",
                (_, true) => "ended",
                _ => "open",
            };
            format!("<sluice.Channel v{} {} {} {state}>", self.dialect(), self.role().as_deref().unwrap_or("frames"), self.peer)
        }
    }
}
