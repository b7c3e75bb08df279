//! `sluice.Channel`: one connection, its callbacks, its sends and the
//! delivery of its events on the Python thread.
//!
//! The core channel runs in poll mode with a handler ([`Sink`]) that only
//! appends each event to a vector during `core.dispatch`: no Python object
//! is made or called on an I/O thread. `dispatch()` takes a batch from the
//! core, converts it and runs the callbacks, holding the GIL only for that.
//! A run of chunks of one session goes to `on_chunks` in one call when that
//! callback is set.
//!
//! Events taken from the core but not yet delivered because a callback
//! raised wait in `pending` and are delivered first by the next dispatch;
//! the core's descriptor does not signal them, so `poll`/`run`/`dispatch`
//! look at `pending` before waiting.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use sluice_core::net::{Channel as CoreChannel, Event, Handler, Incoming};
use sluice_core::wire::{Args, Dialect, Frame, Message, Profile, Value};

use crate::call;
use crate::convert::{self, text, text_arg};
use crate::errors;
use crate::events as ev;
use crate::options::{self, Opts};
use crate::wait;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The core handler: collects events while `core.dispatch` runs on the
/// Python thread.
pub(crate) struct Sink(pub Arc<Mutex<Vec<Event>>>);

impl Handler for Sink {
    #[inline]
    fn on_event(&mut self, _: &CoreChannel, event: Event) {
        lock(&self.0).push(event);
    }
}

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

/// Declares the callbacks once: the struct that holds them, and their
/// properties in the one `#[pymethods]` block (followed by the other methods).
macro_rules! channel_class {
    (
        callbacks { $( $(#[doc = $doc:literal])* $name:ident / $setter:ident; )* }
        methods { $($rest:tt)* }
    ) => {
        /// The callbacks of a channel (each may be None).
        #[derive(Default)]
        pub(crate) struct Callbacks {
            $( pub $name: Option<Py<PyAny>>, )*
        }

        impl Callbacks {
            fn clone_ref(&self, py: Python<'_>) -> Callbacks {
                Callbacks { $( $name: self.$name.as_ref().map(|c| c.clone_ref(py)), )* }
            }

            fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
                $( if let Some(c) = &self.$name { visit.call(c)?; } )*
                Ok(())
            }

            /// Sets callbacks from constructor keywords.
            fn from_kwargs(kw: [Option<Bound<'_, PyAny>>; 12]) -> PyResult<Callbacks> {
                let [$($name),*] = kw;
                Ok(Callbacks { $( $name: callable($name, stringify!($name))?, )* })
            }
        }

        #[pymethods]
        impl Channel {
            $(
                $(#[doc = $doc])*
                #[getter($name)]
                fn $name(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                    lock(&self.cbs).$name.as_ref().map(|c| c.clone_ref(py))
                }

                #[setter($name)]
                fn $setter(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
                    let new = callable(value, stringify!($name))?;
                    let old = std::mem::replace(&mut lock(&self.cbs).$name, new);
                    self.gen.fetch_add(1, Ordering::AcqRel);
                    // Dropped unlocked: a finaliser may touch this channel.
                    drop(old);
                    Ok(())
                }
            )*

            $($rest)*
        }
    };
}

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
#[pyclass(frozen, weakref, module = "sluice", name = "Channel")]
pub struct Channel {
    core: CoreChannel,
    sink: Arc<Mutex<Vec<Event>>>,
    /// The batch vector of the last dispatch, emptied, for the next one:
    /// no regrowing (and no fresh pages) per batch.
    spare: Mutex<Vec<Event>>,
    cbs: Mutex<Callbacks>,
    /// Bumped when a callback is set: a dispatch in progress re-reads them.
    gen: AtomicU64,
    pending: Mutex<VecDeque<Event>>,
    dispatching: AtomicBool,
    closed: AtomicBool,
    copy_threshold: AtomicUsize,
    batch: usize,
    peer: String,
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Like a socket object: a channel nobody holds is closed.
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.core.close();
        }
    }
}

/// Resets the dispatching flag when a dispatch ends, however it ends.
struct Dispatching<'a>(&'a AtomicBool);

impl Drop for Dispatching<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Channel {
    fn new_with(core: CoreChannel, sink: Arc<Mutex<Vec<Event>>>, opts: &Opts, cbs: Callbacks, peer: String) -> Channel {
        Channel {
            core,
            sink,
            spare: Mutex::new(Vec::new()),
            cbs: Mutex::new(cbs),
            gen: AtomicU64::new(0),
            pending: Mutex::new(VecDeque::new()),
            dispatching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            copy_threshold: AtomicUsize::new(opts.copy_threshold),
            batch: opts.batch,
            peer,
        }
    }

    /// Starts a channel on a connection a server accepted.
    pub(crate) fn accepted(incoming: Incoming, opts: &Opts) -> std::io::Result<Channel> {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let peer = incoming.peer().to_string();
        let core = incoming.start(Sink(sink.clone()))?;
        Ok(Channel::new_with(core, sink, opts, Callbacks::default(), peer))
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.core.fd().expect("sluice channels use poll delivery")
    }

    /// Events the binding holds (a callback raised before they ran).
    pub(crate) fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Nothing more will ever be delivered.
    pub(crate) fn is_done(&self) -> bool {
        self.is_closed() || (self.core.is_finished() && !self.has_pending() && !wait::readable_now(self.raw_fd()))
    }

    fn control(&self) -> u64 {
        self.core.config().dialect.control_session()
    }

    /// Takes up to `max` events: first those left by a raising callback,
    /// then the core's.
    fn take(&self, py: Python<'_>, max: usize) -> PyResult<Vec<Event>> {
        {
            let mut p = lock(&self.pending);
            if !p.is_empty() {
                let k = max.min(p.len());
                return Ok(p.drain(..k).collect());
            }
        }
        if self.is_closed() {
            return Ok(Vec::new());
        }
        let mut batch = std::mem::take(&mut *lock(&self.spare));
        self.core.dispatch(max).map_err(|e| errors::error(py, &e.to_string()))?;
        std::mem::swap(&mut *lock(&self.sink), &mut batch);
        Ok(batch)
    }

    /// Keeps an emptied batch vector's allocation for the next take.
    fn give_back(&self, mut batch: Vec<Event>) {
        batch.clear();
        let mut spare = lock(&self.spare);
        if batch.capacity() > spare.capacity() {
            *spare = batch;
        }
    }

    /// Puts events that were taken but not delivered back in front.
    fn requeue(&self, rest: impl DoubleEndedIterator<Item = Event>) {
        if self.is_closed() {
            return;
        }
        let mut p = lock(&self.pending);
        for e in rest.rev() {
            p.push_front(e);
        }
    }

    fn enter(&self, py: Python<'_>) -> PyResult<Dispatching<'_>> {
        if self.dispatching.swap(true, Ordering::AcqRel) {
            return Err(errors::error(py, "dispatch called from inside this channel's own callback (or concurrently from two threads)"));
        }
        Ok(Dispatching(&self.dispatching))
    }

    /// One batch through the callbacks; returns the number of events.
    pub(crate) fn dispatch_once(&self, py: Python<'_>) -> PyResult<usize> {
        let _guard = self.enter(py)?;
        let mut events = self.take(py, self.batch)?;
        if events.is_empty() {
            return Ok(0);
        }
        let r = self.deliver(py, &mut events);
        self.give_back(events);
        r
    }

    fn deliver(&self, py: Python<'_>, events: &mut Vec<Event>) -> PyResult<usize> {
        let mut gen = self.gen.load(Ordering::Acquire);
        let mut cbs = lock(&self.cbs).clone_ref(py);
        let threshold = self.copy_threshold.load(Ordering::Relaxed);
        let mut n = 0usize;
        let mut run: Vec<Bound<'_, PyAny>> = Vec::new();
        let mut run_session = 0u64;
        let mut run_bytes = 0usize;
        let mut it = events.drain(..);
        while let Some(event) = it.next() {
            if self.is_closed() {
                return Ok(n);
            }
            let chunk_session = match &event {
                Event::Message { session, message: Message::Chunk { .. }, .. } => Some(*session),
                _ => None,
            };
            // A run of chunks ends at another session or another event, and
            // at RUN_BYTES: payloads held by a run keep receive buffers alive.
            if !run.is_empty() && (chunk_session != Some(run_session) || cbs.on_chunks.is_none() || run_bytes >= RUN_BYTES) {
                run_bytes = 0;
                if let Err(e) = flush(py, &cbs, run_session, &mut run) {
                    self.requeue(std::iter::once(event).chain(it));
                    return Err(e);
                }
                self.refresh(py, &mut gen, &mut cbs);
                if self.is_closed() {
                    return Ok(n);
                }
            }
            n += 1;
            if let (Some(session), Some(_)) = (chunk_session, &cbs.on_chunks) {
                let Event::Message { message: Message::Chunk { data }, .. } = event else { unreachable!() };
                run_bytes += data.len();
                match convert::chunk(py, data, threshold) {
                    Ok(obj) => run.push(obj),
                    Err(e) => {
                        self.requeue(it);
                        return Err(e);
                    }
                }
                run_session = session;
                continue;
            }
            if let Err(e) = self.call(py, &cbs, event, threshold) {
                self.requeue(it);
                return Err(e);
            }
            self.refresh(py, &mut gen, &mut cbs);
        }
        if !run.is_empty() && !self.is_closed() {
            flush(py, &cbs, run_session, &mut run)?;
        }
        Ok(n)
    }

    /// Re-reads the callbacks if one was set since `gen`.
    #[inline]
    fn refresh(&self, py: Python<'_>, gen: &mut u64, cbs: &mut Callbacks) {
        let now = self.gen.load(Ordering::Acquire);
        if now != *gen {
            *gen = now;
            *cbs = lock(&self.cbs).clone_ref(py);
        }
    }

    /// Runs the callback for one event.
    fn call(&self, py: Python<'_>, cbs: &Callbacks, event: Event, threshold: usize) -> PyResult<()> {
        fn bind<'a, 'py>(py: Python<'py>, cb: &'a Option<Py<PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
            cb.as_ref().map(|c| c.bind(py))
        }
        match event {
            Event::Connected => {
                if let Some(f) = bind(py, &cbs.on_connect) {
                    f.call0()?;
                }
            }
            Event::SocketError(errno) => {
                if let Some(f) = bind(py, &cbs.on_socket_error) {
                    f.call1((errno,))?;
                }
            }
            Event::Drain => {
                if let Some(f) = bind(py, &cbs.on_drain) {
                    f.call0()?;
                }
            }
            Event::Frame(frame) => {
                if let Some(f) = bind(py, &cbs.on_frame) {
                    let args = frame_args(py, &frame)?;
                    f.call1((frame.session, frame.ty, args))?;
                }
            }
            Event::Message { session, message, .. } => match message {
                Message::Handshake { uuid } => {
                    if let Some(f) = bind(py, &cbs.on_handshake) {
                        f.call1((text(py, &uuid)?,))?;
                    }
                }
                Message::Heartbeat => {
                    if let Some(f) = bind(py, &cbs.on_heartbeat) {
                        f.call0()?;
                    }
                }
                Message::Terminate { code, reason } => {
                    if let Some(f) = bind(py, &cbs.on_terminate) {
                        f.call1((session, code, text(py, &reason)?))?;
                    }
                }
                Message::Invoke { event } => {
                    if let Some(f) = bind(py, &cbs.on_invoke) {
                        f.call1((session, text(py, &event)?))?;
                    }
                }
                Message::Chunk { data } => {
                    if let Some(f) = bind(py, &cbs.on_chunk) {
                        let s = session.into_pyobject(py)?.into_any();
                        call::call(py, f, &[s, convert::chunk(py, data, threshold)?])?;
                    }
                }
                Message::Choke => {
                    if let Some(f) = bind(py, &cbs.on_choke) {
                        call::call(py, f, &[session.into_pyobject(py)?.into_any()])?;
                    }
                }
                Message::Error { category, code, message } => {
                    if let Some(f) = bind(py, &cbs.on_error) {
                        let m = match &message {
                            Some(m) => text(py, m)?,
                            None => py.None().into_bound(py),
                        };
                        f.call1((session, category, code, m))?;
                    }
                }
            },
        }
        Ok(())
    }

    /// One event as an event object (pull-style delivery).
    fn event_object<'py>(&self, py: Python<'py>, event: Event, threshold: usize) -> PyResult<Bound<'py, PyAny>> {
        Ok(match event {
            Event::Connected => Bound::new(py, ev::Connected {})?.into_any(),
            Event::SocketError(errno) => Bound::new(py, ev::SocketError { errno })?.into_any(),
            Event::Drain => Bound::new(py, ev::Drain {})?.into_any(),
            Event::Frame(frame) => {
                let args = frame_args(py, &frame)?.unbind();
                Bound::new(py, ev::Frame { session: frame.session, type_id: frame.ty, args })?.into_any()
            }
            Event::Message { session, message, .. } => match message {
                Message::Handshake { uuid } => Bound::new(py, ev::Handshake { uuid: text(py, &uuid)?.unbind() })?.into_any(),
                Message::Heartbeat => Bound::new(py, ev::Heartbeat {})?.into_any(),
                Message::Terminate { code, reason } => {
                    Bound::new(py, ev::Terminate { session, code, reason: text(py, &reason)?.unbind() })?.into_any()
                }
                Message::Invoke { event } => Bound::new(py, ev::Invoke { session, event: text(py, &event)?.unbind() })?.into_any(),
                Message::Chunk { data } => {
                    Bound::new(py, ev::Chunk { session, data: convert::chunk(py, data, threshold)?.unbind() })?.into_any()
                }
                Message::Choke => Bound::new(py, ev::Choke { session })?.into_any(),
                Message::Error { category, code, message } => {
                    let message = match &message {
                        Some(m) => text(py, m)?.unbind(),
                        None => py.None(),
                    };
                    Bound::new(py, ev::ErrorEvent { session, category, code, message })?.into_any()
                }
            },
        })
    }

    fn encode_args(&self, args: &Bound<'_, PyAny>) -> PyResult<Args> {
        encode_args(args, self.core.config().dialect, self.core.config().profile)
    }

    fn send_message(&self, py: Python<'_>, session: u64, message: &Message) -> PyResult<()> {
        errors::sent(py, self.core.send(session, message))
    }
}

/// A run given to `on_chunks` is cut once it holds this many payload bytes.
const RUN_BYTES: usize = 1 << 20;

/// Calls `on_chunks(session, [chunks])` with the run and empties it.
fn flush(py: Python<'_>, cbs: &Callbacks, session: u64, run: &mut Vec<Bound<'_, PyAny>>) -> PyResult<()> {
    let list = PyList::new(py, run.drain(..))?;
    match &cbs.on_chunks {
        Some(f) => call::call(py, f.bind(py), &[session.into_pyobject(py)?.into_any(), list.into_any()]),
        None => Ok(()),
    }
}

/// A frame's `args` argument (a list or tuple of values) as msgpack in
/// the dialect's profile.
pub(crate) fn encode_args(args: &Bound<'_, PyAny>, dialect: Dialect, profile: Profile) -> PyResult<Args> {
    let items: Vec<Value> = args
        .try_iter()
        .map_err(|_| PyTypeError::new_err("args must be a list or tuple of msgpack-encodable values"))?
        .map(|i| convert::py_to_value(&i?, 1))
        .collect::<PyResult<_>>()?;
    let profile = match dialect {
        Dialect::V0 => Profile::Compat,
        Dialect::V1 => profile,
    };
    Args::from_raw(Value::Array(items).to_bytes(profile)).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

pub(crate) fn frame_args<'py>(py: Python<'py>, frame: &Frame) -> PyResult<Bound<'py, PyAny>> {
    let values = frame.args.to_values().map_err(|e| errors::error(py, &format!("frame arguments: {e}")))?;
    let list = PyList::empty(py);
    for v in &values {
        list.append(convert::value_to_py(py, v)?)?;
    }
    Ok(list.into_any())
}

channel_class! {
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
        #[pyo3(signature = (
            host, port=None, *,
            on_connect=None, on_socket_error=None, on_handshake=None, on_heartbeat=None, on_terminate=None,
            on_invoke=None, on_chunk=None, on_chunks=None, on_choke=None, on_error=None, on_frame=None, on_drain=None,
            **options,
        ))]
        #[pyo3(text_signature = "(host, port=None, *, on_connect=None, on_socket_error=None, on_handshake=None, on_heartbeat=None, on_terminate=None, on_invoke=None, on_chunk=None, on_chunks=None, on_choke=None, on_error=None, on_frame=None, on_drain=None, **options)")]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            host: &Bound<'_, PyAny>,
            port: Option<u16>,
            on_connect: Option<Bound<'_, PyAny>>,
            on_socket_error: Option<Bound<'_, PyAny>>,
            on_handshake: Option<Bound<'_, PyAny>>,
            on_heartbeat: Option<Bound<'_, PyAny>>,
            on_terminate: Option<Bound<'_, PyAny>>,
            on_invoke: Option<Bound<'_, PyAny>>,
            on_chunk: Option<Bound<'_, PyAny>>,
            on_chunks: Option<Bound<'_, PyAny>>,
            on_choke: Option<Bound<'_, PyAny>>,
            on_error: Option<Bound<'_, PyAny>>,
            on_frame: Option<Bound<'_, PyAny>>,
            on_drain: Option<Bound<'_, PyAny>>,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Channel> {
            let endpoint = options::endpoint(host, port)?;
            let opts = options::build("Channel", Some(sluice_core::wire::Role::Worker), options)?;
            let cbs = Callbacks::from_kwargs([
                on_connect, on_socket_error, on_handshake, on_heartbeat, on_terminate, on_invoke, on_chunk, on_chunks,
                on_choke, on_error, on_frame, on_drain,
            ])?;
            let sink = Arc::new(Mutex::new(Vec::new()));
            let peer = endpoint.to_string();
            let core = CoreChannel::connect(endpoint, opts.config.clone(), Sink(sink.clone()))?;
            Ok(Channel::new_with(core, sink, &opts, cbs, peer))
        }

        /// The descriptor that is readable while events wait (level-triggered):
        /// give it to ``selectors``/``select``/``loop.add_reader`` and call
        /// ``dispatch()`` when it is readable.
        fn fileno(&self) -> RawFd {
            self.raw_fd()
        }

        /// Runs the callbacks of the events waiting (one batch of at most
        /// ``batch`` events) and returns how many ran. ``timeout``: seconds
        /// to wait for events first (the GIL is released while waiting);
        /// 0 does not wait, None waits until there are events or the
        /// channel is done.
        ///
        /// If a callback raises, the exception propagates from here; the
        /// event whose callback raised counts as delivered (for
        /// ``on_chunks``: the whole run), the events after it stay queued
        /// in order and the next ``dispatch()`` delivers them first (the
        /// descriptor does not signal them: see ``pending``).
        #[pyo3(signature = (timeout=Some(0.0)), text_signature = "($self, timeout=0.0)")]
        fn dispatch(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
            if timeout != Some(0.0) && !self.has_pending() && !self.is_done() {
                let deadline = wait::deadline(timeout)?;
                wait::wait_until(py, &[self.raw_fd()], deadline, || self.is_done())?;
            }
            self.dispatch_once(py)
        }

        /// Dispatches until the channel is done (its ``on_socket_error`` was
        /// delivered, or ``close()`` was called, e.g. from a callback) or
        /// ``timeout`` seconds have passed. The GIL is released while
        /// waiting; Ctrl-C interrupts. A callback's exception propagates
        /// (the rest stays queued, as for ``dispatch``).
        #[pyo3(signature = (timeout=None))]
        fn run(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
            let deadline = wait::deadline(timeout)?;
            loop {
                // Every turn, not only after a wait: a descriptor that is
                // readable with nothing to dispatch must not keep Ctrl-C out.
                py.check_signals()?;
                if self.is_done() {
                    return Ok(());
                }
                if !self.has_pending() {
                    let ready = wait::wait_until(py, &[self.raw_fd()], deadline, || self.is_done())?;
                    if !ready[0] && !self.has_pending() {
                        // Timed out, or done while waiting.
                        if deadline.is_some_and(|d| std::time::Instant::now() >= d) || self.is_done() {
                            return Ok(());
                        }
                        continue;
                    }
                }
                self.dispatch_once(py)?;
            }
        }

        /// Pull-style delivery: takes the waiting events (at most ``max``,
        /// default ``batch``) as event objects (``sluice.events``) instead
        /// of running callbacks. ``timeout`` as for ``dispatch``. Returns
        /// an empty list when none came.
        #[pyo3(signature = (timeout=Some(0.0), max=None), text_signature = "($self, timeout=0.0, max=None)")]
        fn events<'py>(&self, py: Python<'py>, timeout: Option<f64>, max: Option<usize>) -> PyResult<Bound<'py, PyList>> {
            if timeout != Some(0.0) && !self.has_pending() && !self.is_done() {
                let deadline = wait::deadline(timeout)?;
                wait::wait_until(py, &[self.raw_fd()], deadline, || self.is_done())?;
            }
            let _guard = self.enter(py)?;
            let mut events = self.take(py, max.unwrap_or(self.batch).max(1))?;
            let threshold = self.copy_threshold.load(Ordering::Relaxed);
            let list = PyList::empty(py);
            let mut it = events.drain(..);
            while let Some(e) = it.next() {
                match self.event_object(py, e, threshold).and_then(|o| list.append(o)) {
                    Ok(()) => {}
                    Err(err) => {
                        self.requeue(it);
                        return Err(err);
                    }
                }
            }
            drop(it);
            self.give_back(events);
            Ok(list)
        }

        // --------------------------------------------------------------
        // Sends. Each queues the message and returns at once; the send
        // queue is bounded: past ``high_watermark`` bytes a send raises
        // ``WouldBlock`` (nothing is queued) and ``on_drain`` follows. After
        // ``close()`` or the end of the connection sends raise ``Closed``.

        /// Queues pre-encoded bytes (whole frames) as they are. They do not
        /// update the session bookkeeping: open sessions with ``send_invoke``.
        fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
            let b = convert::data_arg(data)?;
            errors::sent(py, self.core.send_raw(b))
        }

        /// Queues a chunk (v0 ``chunk``, v1 ``write``). ``data``: bytes-like;
        /// large ``bytes`` and ``Payload`` objects are sent without a copy.
        fn send_chunk(&self, py: Python<'_>, session: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
            let b = convert::data_arg(data)?;
            errors::sent(py, self.core.send_chunk(session, &b))
        }

        /// Queues several chunks of one session (an iterable of bytes-like
        /// objects) in one call. Stops at the first refused one and raises;
        /// the chunks before it are queued.
        fn send_chunks(&self, py: Python<'_>, session: u64, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
            let mut n = 0;
            for c in chunks.try_iter()? {
                let b = convert::data_arg(&c?)?;
                errors::sent(py, self.core.send_chunk(session, &b))?;
                n += 1;
            }
            Ok(n)
        }

        /// Ends this side's direction of ``session`` (v0 ``choke``, v1 ``close``).
        fn send_choke(&self, py: Python<'_>, session: u64) -> PyResult<()> {
            self.send_message(py, session, &Message::Choke)
        }

        /// Fails ``session``. v1: ``[[category, code], message]`` with
        /// category 42 (the frameworks' own) when None; terminal, send
        /// nothing after it. v0: ``[code, message]``; follow it with
        /// ``send_choke`` as the 0.11 engine expects.
        #[pyo3(signature = (session, code, message=None, category=None))]
        fn send_error(
            &self,
            py: Python<'_>,
            session: u64,
            code: i64,
            message: Option<&Bound<'_, PyAny>>,
            category: Option<i64>,
        ) -> PyResult<()> {
            let message = message.filter(|m| !m.is_none()).map(|m| text_arg(m, "message")).transpose()?;
            self.send_message(py, session, &Message::Error { category, code, message })
        }

        /// Sends ``terminate(code, reason)`` on the control session (v0 codes:
        /// 1 normal, 2 abnormal).
        fn send_terminate(&self, py: Python<'_>, code: i64, reason: &Bound<'_, PyAny>) -> PyResult<()> {
            let reason = text_arg(reason, "reason")?;
            self.send_message(py, self.control(), &Message::Terminate { code, reason })
        }

        /// Sends a heartbeat on the control session.
        fn send_heartbeat(&self, py: Python<'_>) -> PyResult<()> {
            self.send_message(py, self.control(), &Message::Heartbeat)
        }

        /// Worker: introduces itself with its ``--uuid`` (the first frame).
        fn send_handshake(&self, py: Python<'_>, uuid: &Bound<'_, PyAny>) -> PyResult<()> {
            let uuid = text_arg(uuid, "uuid")?;
            self.send_message(py, self.control(), &Message::Handshake { uuid })
        }

        /// Engine: opens a session for ``event`` and returns its id
        /// (``next_session()`` when ``session`` is None).
        #[pyo3(signature = (event, session=None))]
        fn send_invoke(&self, py: Python<'_>, event: &Bound<'_, PyAny>, session: Option<u64>) -> PyResult<u64> {
            let event = text_arg(event, "event")?;
            let session = session.unwrap_or_else(|| self.core.next_session());
            self.send_message(py, session, &Message::Invoke { event })?;
            Ok(session)
        }

        /// Queues a generic frame: ``args`` is a list or tuple of values
        /// (None, bool, int, float, str, bytes-like, list, tuple, dict),
        /// encoded as msgpack.
        #[pyo3(signature = (session, type_id, args=None))]
        fn send_frame(&self, py: Python<'_>, session: u64, type_id: u64, args: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            let args = match args {
                Some(a) => self.encode_args(a)?,
                None => Args::empty(),
            };
            errors::sent(py, self.core.send_frame(session, type_id, &args, &[]))
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
                Err(e) => Err(errors::send_error(py, e)),
            }
        }

        /// The id for a new session opened by this side: one above the
        /// highest id seen in either direction.
        fn next_session(&self) -> u64 {
            self.core.next_session()
        }

        /// Closes gracefully: no callback runs after this returns (not even
        /// for events already queued), sends raise ``Closed``, what was
        /// queued is written, then the connection is shut down. Drops the
        /// callbacks. Idempotent. Called by ``with`` and when the object is
        /// garbage-collected.
        fn close(&self) {
            if !self.closed.swap(true, Ordering::AcqRel) {
                self.core.close();
            }
            self.release();
        }

        /// Closes at once, dropping whatever is queued to send. Otherwise as
        /// ``close()``.
        fn abort(&self) {
            self.closed.store(true, Ordering::Release);
            self.core.abort();
            self.release();
        }

        fn __enter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        #[pyo3(signature = (*_exc))]
        fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
            self.close();
            false
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
            self.is_closed() || self.core.is_finished()
        }

        /// Bytes queued to send and not yet written.
        #[getter]
        fn queued(&self) -> usize {
            self.core.queued()
        }

        /// Events taken from the queue but not yet delivered because a
        /// callback raised: ``dispatch()`` delivers them first. The
        /// descriptor does not signal them; check this in your own loop.
        #[getter]
        fn pending(&self) -> usize {
            lock(&self.pending).len()
        }

        /// Chunks of at least this many bytes are delivered as a zero-copy
        /// ``Payload``, smaller ones as ``bytes`` (settable).
        #[getter]
        fn copy_threshold(&self) -> usize {
            self.copy_threshold.load(Ordering::Relaxed)
        }

        #[setter]
        fn set_copy_threshold(&self, n: usize) {
            self.copy_threshold.store(n, Ordering::Relaxed);
        }

        /// The most events one ``dispatch`` call runs.
        #[getter]
        fn batch(&self) -> usize {
            self.batch
        }

        fn __repr__(&self) -> String {
            let state = if self.is_closed() {
                "closed"
            } else if self.core.is_finished() {
                "ended"
            } else {
                "open"
            };
            format!(
                "<sluice.Channel v{} {} {} {}>",
                self.dialect(),
                self.role().as_deref().unwrap_or("frames"),
                self.peer,
                state
            )
        }

        fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
            // Never block the collector: a held lock is only ever held briefly
            // by this thread, never across a call into Python.
            match self.cbs.try_lock() {
                Ok(c) => c.traverse(&visit),
                Err(_) => Ok(()),
            }
        }

        fn __clear__(&self) {
            let old = std::mem::take(&mut *lock(&self.cbs));
            self.gen.fetch_add(1, Ordering::AcqRel);
            drop(old);
        }

    }
}

impl Channel {
    /// Drops the callbacks and anything queued for delivery.
    fn release(&self) {
        lock(&self.pending).clear();
        lock(&self.sink).clear();
        let old = std::mem::take(&mut *lock(&self.cbs));
        self.gen.fetch_add(1, Ordering::AcqRel);
        drop(old);
    }
}
