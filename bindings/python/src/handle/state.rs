//! What every handle holds ([`State`]) and its dispatch: events taken
//! from the core in batches, run through the callbacks, the rest kept when
//! a callback raises.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::IntoPyObjectExt;

use sluice_core::host::{Event, Pollable, Source, Streams};
use sluice_core::wire::{Dialect, Message, Profile};

use super::{callable, lock, Item, Queue, Spec};
use crate::options::{self, Opts};
use crate::{call, convert, errors, wait};

/// A server's: the settings of the channels it accepts, and those accepted
/// while no `on_accept` is set (they wait for `accept()`).
pub(crate) struct Accepting {
    pub opts: Opts,
    pub ready: Mutex<VecDeque<Py<PyAny>>>,
}

/// What every handle holds; shared (`Arc`) by the base object and its class.
pub(crate) struct State {
    pub(super) core: Box<dyn Pollable>,
    pub(super) spec: &'static Spec,
    /// The index of the class's `on_chunk` callback (the per-message path).
    pub(super) chunk_callback: Option<usize>,
    pub(super) queue: Queue,
    /// The batch vector of the last dispatch, emptied, for the next one.
    pub(super) spare: Mutex<Vec<Item>>,
    pub(super) pending: Mutex<VecDeque<Item>>,
    pub(super) cbs: Mutex<Vec<Option<Py<PyAny>>>>,
    /// Bumped when a callback is set: a dispatch in progress re-reads them.
    pub(super) gen: AtomicU64,
    pub(super) dispatching: AtomicBool,
    pub(super) closed: AtomicBool,
    /// The last event ran.
    pub(super) ended: AtomicBool,
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

/// The most events one `dispatch()` of a role runs.
const BATCH: usize = 1024;

impl State {
    /// A handle on `core`, whose handler appends to `queue`.
    pub(crate) fn new(core: impl Pollable + 'static, queue: Queue, spec: &'static Spec, cbs: Vec<Option<Py<PyAny>>>) -> State {
        State {
            core: Box::new(core),
            spec,
            chunk_callback: spec.index("chunk"),
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

    pub(super) fn clear(&self) {
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
            self.note_last(&e.0, &e.1);
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
