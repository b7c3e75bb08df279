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

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use pyo3::{PyTraverseError, PyVisit};

use sluice_core::host::{Event, IntoEvent, Pollable, Source, Streams};
use sluice_core::net::{AcceptHandler, Channel as CoreChannel, Handler, Incoming, Server as CoreServer};
use sluice_core::wire::{Dialect, Message, Profile};

use crate::convert::{self, text};
use crate::options::{self, Opts};
use crate::roles::{engine::WorkerRef, resume::Peer, worker::WorkerStream};
use crate::{call, errors, wait};

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
    fn index(&self, event: &str) -> Option<usize> {
        let renamed = self.renames.iter().find(|(e, _)| *e == event).map(|(_, c)| *c);
        self.callbacks.iter().position(|n| match renamed {
            Some(c) => *n == c,
            None => n.strip_prefix("on_") == Some(event),
        })
    }
}

/// A server's: the settings of the channels it accepts, and those accepted
/// while no `on_accept` is set (they wait for `accept()`).
pub(crate) struct Accepting {
    pub opts: Opts,
    pub ready: Mutex<VecDeque<Py<PyAny>>>,
}

/// What every handle holds; shared (`Arc`) by the base object and its class.
pub(crate) struct State {
    core: Box<dyn Pollable>,
    spec: &'static Spec,
    queue: Queue,
    /// The batch vector of the last dispatch, emptied, for the next one.
    spare: Mutex<Vec<Item>>,
    pending: Mutex<VecDeque<Item>>,
    cbs: Mutex<Vec<Option<Py<PyAny>>>>,
    /// Bumped when a callback is set: a dispatch in progress re-reads them.
    gen: AtomicU64,
    dispatching: AtomicBool,
    closed: AtomicBool,
    /// The last event ran.
    ended: AtomicBool,
    /// Chunks of at least this many bytes arrive as a zero-copy `Payload`.
    pub copy_threshold: AtomicUsize,
    /// The most events one dispatch runs.
    pub batch: usize,
    /// The encoding of frames sent to peers (resume servers).
    pub wire: (Dialect, Profile),
    /// A worker itself, for the streams its invoke events open.
    pub streams: Option<Arc<dyn Streams>>,
    pub accepting: Option<Accepting>,
}

impl Drop for State {
    fn drop(&mut self) {
        // Like a socket object: an object nobody holds is closed.
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

/// A run given to `on_chunks` is cut once it holds this many payload bytes.
const RUN_BYTES: usize = 1 << 20;

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

impl State {
    /// A handle on `core`, whose handler appends to `queue`.
    pub(crate) fn new(core: impl Pollable + 'static, queue: Queue, spec: &'static Spec, cbs: Vec<Option<Py<PyAny>>>) -> State {
        State {
            core: Box::new(core),
            spec,
            queue,
            spare: Mutex::new(Vec::new()),
            pending: Mutex::new(VecDeque::new()),
            cbs: Mutex::new(cbs),
            gen: AtomicU64::new(0),
            dispatching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            copy_threshold: AtomicUsize::new(options::default_copy_threshold()),
            batch: BATCH,
            wire: (Dialect::V1, Profile::Compat),
            streams: None,
            accepting: None,
        }
    }

    /// With a channel's `copy_threshold` and `batch`.
    pub(crate) fn with_opts(mut self, opts: &Opts) -> State {
        self.copy_threshold = AtomicUsize::new(opts.copy_threshold);
        self.batch = opts.batch;
        self
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.core.fd().expect("sluice objects use poll delivery")
    }

    /// Events taken but not delivered (a callback raised before they ran),
    /// and a server's accepted channels waiting for a new `on_accept`.
    pub(crate) fn pending(&self) -> usize {
        let waiting = match &self.accepting {
            Some(acc) if lock(&self.cbs).iter().any(Option::is_some) => lock(&acc.ready).len(),
            _ => 0,
        };
        lock(&self.pending).len() + waiting
    }

    /// `close()` was called (or the object stopped).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Nothing more will be delivered: closed, or the last event ran.
    pub(crate) fn is_done(&self) -> bool {
        self.is_closed() || self.ended.load(Ordering::Acquire)
    }

    /// The callback `name`.
    pub(crate) fn callback(&self, py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
        let i = self.spec.callbacks.iter().position(|n| *n == name)?;
        lock(&self.cbs)[i].as_ref().map(|c| c.clone_ref(py))
    }

    /// Sets the callback `name` (None drops it).
    pub(crate) fn set_callback(&self, name: &str, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let new = callable(value, name)?;
        let i = self.spec.callbacks.iter().position(|n| *n == name).expect("a callback of this class");
        let old = std::mem::replace(&mut lock(&self.cbs)[i], new);
        self.gen.fetch_add(1, Ordering::AcqRel);
        // Dropped unlocked: a finaliser may touch this object.
        drop(old);
        Ok(())
    }

    /// Marks the end: nothing more is delivered; the callbacks, the events
    /// held and the channels waiting for `accept()` are dropped.
    pub(crate) fn finish(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.pending).clear();
        lock(&self.queue.0).clear();
        self.clear();
    }

    /// Closes the core gracefully and finishes.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.core.close();
        }
        self.finish();
    }

    fn clear(&self) {
        let old: Vec<Option<Py<PyAny>>> = lock(&self.cbs).iter_mut().map(Option::take).collect();
        self.gen.fetch_add(1, Ordering::AcqRel);
        let ready = self.accepting.as_ref().map(|a| std::mem::take(&mut *lock(&a.ready)));
        drop((old, ready));
    }

    fn enter(&self, py: Python<'_>) -> PyResult<Dispatching<'_>> {
        if self.dispatching.swap(true, Ordering::AcqRel) {
            return Err(errors::error(py, "dispatch called from inside this object's own callback (or from two threads at once)"));
        }
        Ok(Dispatching(&self.dispatching))
    }

    /// Takes up to `max` events: first those a raising callback left, then
    /// the core's.
    fn take(&self, py: Python<'_>, max: usize) -> PyResult<Vec<Item>> {
        {
            let mut p = lock(&self.pending);
            if !p.is_empty() {
                let k = max.min(p.len());
                return Ok(p.drain(..k).collect());
            }
        }
        if self.is_done() {
            return Ok(Vec::new());
        }
        let mut batch = std::mem::take(&mut *lock(&self.spare));
        self.core.dispatch(max).map_err(|e| errors::error(py, &e.to_string()))?;
        std::mem::swap(&mut *lock(&self.queue.0), &mut batch);
        Ok(batch)
    }

    /// Keeps an emptied batch vector's allocation for the next take.
    fn give_back(&self, mut batch: Vec<Item>) {
        batch.clear();
        let mut spare = lock(&self.spare);
        if batch.capacity() > spare.capacity() {
            *spare = batch;
        }
    }

    /// Puts events that were taken but not delivered back in front.
    fn requeue(&self, rest: impl DoubleEndedIterator<Item = Item>) {
        if self.is_closed() {
            return;
        }
        let mut p = lock(&self.pending);
        for e in rest.rev() {
            p.push_front(e);
        }
    }

    /// Pull-style delivery: up to `max` events, each made into a Python
    /// object by `make` (an event `make` fails on and those after it stay
    /// queued).
    pub(crate) fn take_objects<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        mut make: impl FnMut(Item, usize) -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let _guard = self.enter(py)?;
        let mut events = self.take(py, max)?;
        let threshold = self.copy_threshold.load(Ordering::Relaxed);
        let list = PyList::empty(py);
        let mut it = events.drain(..);
        while let Some(e) = it.next() {
            if let Err(err) = make(e, threshold).and_then(|o| list.append(o)) {
                self.requeue(it);
                return Err(err);
            }
        }
        drop(it);
        self.give_back(events);
        Ok(list)
    }

    /// One batch through the callbacks; returns the number of events.
    pub(crate) fn dispatch(&self, py: Python<'_>) -> PyResult<usize> {
        let _guard = self.enter(py)?;
        // Channels accepted while no on_accept was set go to it once it is.
        if let (Some(acc), Some(f)) = (&self.accepting, self.callback(py, "on_accept")) {
            while let Some(ch) = lock(&acc.ready).pop_front().filter(|_| !self.is_closed()) {
                f.call1(py, (ch,))?;
            }
        }
        let mut events = self.take(py, self.batch)?;
        if events.is_empty() {
            return Ok(0);
        }
        let r = self.deliver(py, &mut events);
        self.give_back(events);
        r
    }

    fn snapshot(&self, py: Python<'_>) -> Vec<Option<Py<PyAny>>> {
        lock(&self.cbs).iter().map(|c| c.as_ref().map(|c| c.clone_ref(py))).collect()
    }

    /// Runs the callbacks of `events`. A run of chunks of one session goes
    /// to `on_chunks` in one call when the class has that callback and it
    /// is set; a run ends at another event and at RUN_BYTES (payloads held
    /// by a run keep receive buffers alive).
    fn deliver(&self, py: Python<'_>, events: &mut Vec<Item>) -> PyResult<usize> {
        let (mut gen, mut cbs) = (self.gen.load(Ordering::Acquire), self.snapshot(py));
        let chunks = self.spec.index("chunks");
        let threshold = self.copy_threshold.load(Ordering::Relaxed);
        let (mut n, mut run, mut run_bytes) = (0, Vec::new(), 0);
        let mut it = events.drain(..).peekable();
        while let Some(item) = it.next() {
            if self.is_closed() {
                return Ok(n);
            }
            n += 1;
            let r = match (item, chunks.and_then(|i| cbs[i].as_ref())) {
                ((Source::Own, Event::Message { session, message: Message::Chunk { data }, .. }), Some(f)) => {
                    run_bytes += data.len();
                    let more = matches!(it.peek(), Some((Source::Own, Event::Message { session: s, message: Message::Chunk { .. }, .. })) if *s == session);
                    convert::chunk(py, data, threshold).and_then(|c| {
                        run.push(c);
                        if more && run_bytes < RUN_BYTES {
                            return Ok(());
                        }
                        run_bytes = 0;
                        call::call(py, f.bind(py), &[session.into_bound_py_any(py)?, PyList::new(py, run.drain(..))?.into_any()])
                    })
                }
                (item, _) => self.call(py, &cbs, item, threshold),
            };
            if let Err(e) = r {
                self.requeue(it);
                return Err(e);
            }
            let now = self.gen.load(Ordering::Acquire);
            if now != gen {
                (gen, cbs) = (now, self.snapshot(py));
            }
        }
        Ok(n)
    }

    /// Runs the callback of one event.
    fn call(&self, py: Python<'_>, cbs: &[Option<Py<PyAny>>], (source, event): Item, threshold: usize) -> PyResult<()> {
        if self.spec.last_disconnect && matches!((&source, &event), (Source::Own, Event::Disconnected { .. })) {
            self.ended.store(true, Ordering::Release);
        }
        let f = self.spec.index(event.name()).and_then(|i| cbs[i].as_ref());
        if let Event::Accepted(incoming) = event {
            return self.accept(py, f, incoming);
        }
        match f {
            Some(f) => call::call(py, f.bind(py), &self.args(py, source, event, threshold)?),
            None => Ok(()),
        }
    }

    /// A server's accepted connection: a channel for `on_accept`, or for
    /// `accept()` when none is set.
    fn accept(&self, py: Python<'_>, on_accept: Option<&Py<PyAny>>, incoming: Incoming) -> PyResult<()> {
        let Some(acc) = &self.accepting else { return Ok(()) };
        let ch = crate::channel::accepted(py, incoming, &acc.opts)?;
        match on_accept {
            Some(f) => f.bind(py).call1((ch,)).map(drop),
            None => {
                lock(&acc.ready).push_back(ch);
                Ok(())
            }
        }
    }

    /// The one converter: the arguments of an event's callback. Whom it
    /// concerns comes first (a `WorkerRef`, a `Peer`; a `WorkerStream`
    /// stands for the session of an invoke).
    pub(crate) fn args<'py>(&self, py: Python<'py>, source: Source, event: Event, threshold: usize) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut a: Vec<Bound<'py, PyAny>> = Vec::with_capacity(5);
        let (stream, peer) = (matches!(source, Source::Stream(_)), matches!(source, Source::Peer(_)));
        match source {
            Source::Worker(w) => a.push(Bound::new(py, WorkerRef::from(w))?.into_any()),
            Source::Peer(p) => a.push(Bound::new(py, Peer::new(p, self.wire))?.into_any()),
            Source::Stream(s) => {
                let to = self.streams.clone().expect("a worker's invoke");
                a.push(Bound::new(py, WorkerStream::new(to, s.session()))?.into_any());
            }
            _ => {}
        }
        fn obj<'py>(py: Python<'py>, v: impl IntoPyObjectExt<'py>) -> PyResult<Bound<'py, PyAny>> {
            v.into_bound_py_any(py)
        }
        match event {
            Event::Connected { endpoint, resumed } => {
                if let Some(e) = &endpoint {
                    a.push(obj(py, e.to_string())?);
                }
                if endpoint.is_some() || peer {
                    a.push(PyBool::new(py, resumed).to_owned().into_any());
                }
            }
            Event::Message { session, message, .. } => match message {
                Message::Handshake { uuid } => a.push(text(py, &uuid)?),
                Message::Heartbeat => {}
                Message::Terminate { code, reason } => {
                    if self.spec.terminate_session {
                        a.push(obj(py, session)?);
                    }
                    a.extend([obj(py, code)?, text(py, &reason)?]);
                }
                Message::Invoke { event } => {
                    if !stream {
                        a.push(obj(py, session)?);
                    }
                    a.push(text(py, &event)?);
                }
                Message::Chunk { data } => a.extend([obj(py, session)?, convert::chunk(py, data, threshold)?]),
                Message::Choke => a.push(obj(py, session)?),
                Message::Error { category, code, message } => {
                    a.extend([obj(py, session)?, obj(py, category)?, obj(py, code)?, opt_text(py, message.as_deref())?])
                }
            },
            Event::Frame(f) => a.extend([obj(py, f.session)?, obj(py, f.ty)?, frame_args(py, &f)?]),
            Event::Rejected { uuid } => a.push(text(py, uuid.as_bytes())?),
            Event::Reconnecting { attempt, endpoint, delay } => {
                a.extend([obj(py, attempt)?, obj(py, endpoint.to_string())?, obj(py, delay.as_secs_f64())?])
            }
            Event::Disconnected { errno, sessions } => {
                a.push(obj(py, errno)?);
                if self.spec.disconnect_sessions {
                    a.push(PyList::new(py, sessions)?.into_any());
                }
            }
            _ => {}
        }
        Ok(a)
    }

    /// `dispatch(timeout)`: waits for events first unless `timeout` is 0.
    pub(crate) fn dispatch_within(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        if timeout != Some(0.0) && self.pending() == 0 && !self.is_done() {
            let deadline = wait::deadline(timeout)?;
            wait::wait_until(py, &[self.fd()], deadline, || self.is_done())?;
        }
        self.dispatch(py)
    }

    /// Waits for events (`timeout` seconds at most) unless some are pending.
    pub(crate) fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<bool> {
        Ok(self.pending() > 0 || wait::wait_until(py, &[self.fd()], deadline, || self.is_done())?[0])
    }
}

/// Protocol text or None.
fn opt_text<'py>(py: Python<'py>, b: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
    match b {
        Some(b) => text(py, b),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A frame's arguments, decoded, as a list.
fn frame_args<'py>(py: Python<'py>, frame: &sluice_core::wire::Frame) -> PyResult<Bound<'py, PyAny>> {
    let values = frame.args.to_values().map_err(|e| errors::error(py, &format!("frame arguments: {e}")))?;
    let list = PyList::empty(py);
    for v in &values {
        list.append(convert::value_to_py(py, v)?)?;
    }
    Ok(list.into_any())
}

/// The most events one `dispatch()` of a role runs.
const BATCH: usize = 1024;

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
