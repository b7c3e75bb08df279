//! How events reach JavaScript: one path for channels, servers and every
//! role.
//!
//! * Every owner object (a framework `Channel`, a `Connection`, a `Server`,
//!   a `Worker`, an `Engine`, a `Session`, a `ResumeServer`) has a
//!   [`Port`]. The core runs the owner's handler inline on an I/O thread;
//!   it turns each event into the one model (`host::IntoEvent`) and the
//!   port appends its records to a [`Batch`] (`records.rs`).
//! * A port with new records is put on the [`Hub`]'s ready list; the hub
//!   calls its one threadsafe function only when no call is pending. On the
//!   JavaScript thread that call takes the whole ready list and, per port,
//!   makes one `Float64Array` of records, one Buffer holding the arena (a
//!   copy; the vectors go back to the port for its next batch), one external
//!   Buffer per large payload and the objects JavaScript has not seen yet,
//!   and calls the dispatcher of `lib/dispatch.js` once.
//! * Flow control, once for all: while more than `max_pending` bytes of a
//!   port wait for JavaScript, the I/O task that delivers stops (its thread
//!   is handed to tokio as a blocking one meanwhile): memory stays bounded
//!   however fast the peer writes.
//! * Liveness: a port counts as open on the hub (`hub.rs`) from its making
//!   to its release.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use sluice_core::host::{Event, IntoEvent, Source};
use sluice_core::net::{Channel, Handler};

use crate::engine::EngineWorker;
use crate::hub::{hub, Due, Hub};
use crate::js;
use crate::records::{Batch, F_RELEASED, F_WAITERS, K_CONNECTION};
use crate::resume::ResumePeer;
use sluice_core::host::backlog::Backlog;

/// What a record costs towards `max_pending` beyond its payload.
const RECORD_COST: usize = 48;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the I/O threads and the JavaScript thread share of a port.
#[derive(Default)]
struct Shared {
    batch: Batch,
    /// Bytes (payloads plus a cost per record) waiting for JavaScript.
    pending: usize,
    /// On the hub's ready list.
    queued: bool,
    connected: bool,
    failed: Option<i32>,
    released: bool,
    /// Ids of the objects JavaScript has (or is about to get).
    known: std::collections::HashSet<u64>,
    /// Resume peers' ids, by token.
    peer_ids: HashMap<Bytes, u64>,
    next_peer: u64,
}

/// The JavaScript side of a port: touched on the JavaScript thread only.
#[derive(Default)]
struct JsSide {
    /// A strong reference to the owner object until the release.
    obj: Option<sys::napi_ref>,
    ready_waiters: Vec<sys::napi_deferred>,
    close_waiters: Vec<sys::napi_deferred>,
    connected: bool,
    /// The errno the connection ended with.
    failed: Option<i32>,
    /// Released: the port no longer counts as open on the hub.
    released: bool,
    /// References to the engine's workers / the server's peers, by id.
    objs: HashMap<u64, sys::napi_ref>,
}

/// A cell only the JavaScript thread touches. Ports are shared with I/O
/// threads, which never look inside.
struct JsCell(RefCell<JsSide>);
// SAFETY: only functions documented to run on the JavaScript thread borrow
// the cell; the raw N-API handles inside are never used elsewhere.
unsafe impl Sync for JsCell {}
unsafe impl Send for JsCell {}

/// One owner object's way to JavaScript.
pub(crate) struct Port {
    /// The owner kind (`records::K_*`): the dispatcher's first argument.
    pub(crate) owner: u32,
    hub: Arc<Hub>,
    state: Mutex<Shared>,
    space: Condvar,
    /// The owner closed it: nothing more is delivered but the release.
    closed: AtomicBool,
    pub(crate) zero_copy: usize,
    pub(crate) max_pending: usize,
    /// Channels: sends waiting for room (Node-stream contract).
    pub(crate) sends: Backlog,
    js: JsCell,
}

impl Port {
    /// A port (JavaScript thread), counted as open until its release; its
    /// owner object follows with [`attach`](Self::attach).
    pub(crate) fn new(env: sys::napi_env, owner: u32, zero_copy: usize, max_pending: usize) -> Result<Arc<Port>> {
        let hub = hub(env)?;
        hub.open(env);
        Ok(Arc::new(Port {
            owner,
            hub,
            state: Mutex::default(),
            space: Condvar::new(),
            closed: AtomicBool::new(false),
            zero_copy,
            max_pending: max_pending.max(1),
            sends: Backlog::default(),
            js: JsCell(RefCell::default()),
        }))
    }

    /// Gives the port its owner object (JavaScript thread, right after
    /// `new`, before any dispatch can run).
    pub(crate) fn attach(&self, env: sys::napi_env, obj: sys::napi_value) {
        let mut js = self.js.0.borrow_mut();
        if js.obj.is_none() && !js.released {
            let mut r = ptr::null_mut();
            unsafe { sys::napi_create_reference(env, obj, 1, &mut r) };
            js.obj = Some(r);
        }
    }

    /// The core handler of a channel delivering to this port.
    pub(crate) fn feed(self: &Arc<Self>) -> Feed {
        Feed(self.clone())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The owner closed it: drop what waits, deliver nothing more but the
    /// release (which settles `close()` promises).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut st = lock(&self.state);
        st.batch = Batch::default();
        st.pending = 0;
        drop(st);
        self.space.notify_all();
    }

    /// The owner is finished: `'close'` follows what waits.
    pub(crate) fn release(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        st.released = true;
        self.schedule(st);
    }

    /// [`close`](Self::close) and [`release`](Self::release): a role closed
    /// by its owner.
    pub(crate) fn end(self: &Arc<Self>) {
        self.close();
        self.release();
    }

    /// A role's `close()`: `stop` the core object and [`end`](Self::end)
    /// the first time; a promise for the release each time.
    pub(crate) fn end_with<'a>(self: &Arc<Self>, env: &'a Env, stop: impl FnOnce()) -> Unknown<'a> {
        if !self.is_closed() {
            stop();
            self.end();
        }
        self.closed_promise(env)
    }

    /// The handler of a role: each of its events, converted to the one model.
    pub(crate) fn handler<O, E: IntoEvent>(self: &Arc<Self>) -> impl Fn(&O, E) + Send + Sync + 'static {
        let port = self.clone();
        move |_: &O, ev: E| {
            let (source, event) = ev.into_event();
            port.push(source, event)
        }
    }

    /// Runs on an I/O thread for each event: appends its records and pauses
    /// the thread while too much waits for JavaScript.
    pub(crate) fn push(self: &Arc<Self>, source: Source, event: Event) {
        if self.is_closed() || (matches!(event, Event::Frame(_)) && self.owner < K_CONNECTION) {
            return;
        }
        // The framework-compatible channel reports errnos as the framework did.
        let event = match event {
            Event::Disconnected { errno, sessions } if self.owner < K_CONNECTION => {
                Event::Disconnected { errno: sluice_core::host::framework_errno(errno), sessions }
            }
            e => e,
        };
        let mut st = lock(&self.state);
        match (&source, &event) {
            (Source::Own, Event::Connected { .. }) => st.connected = true,
            (Source::Own, Event::Disconnected { errno, .. }) => st.failed = Some(*errno),
            _ => {}
        }
        let (id, forget) = match &source {
            Source::Worker(w) => (Some(w.id()), matches!(event, Event::Disconnected { .. })),
            Source::Peer(p) => {
                let id = match st.peer_ids.get(p.token()) {
                    Some(id) => *id,
                    None => {
                        st.next_peer += 1;
                        let id = st.next_peer;
                        st.peer_ids.insert(p.token().clone(), id);
                        id
                    }
                };
                let gone = matches!(event, Event::Gone);
                if gone {
                    st.peer_ids.remove(p.token());
                }
                (Some(id), gone)
            }
            _ => (None, false),
        };
        if let Some(id) = id {
            if st.known.insert(id) {
                st.batch.news.push((id, source));
            }
            st.batch.about(id);
            if forget {
                st.known.remove(&id);
                st.batch.forget.push(id);
            }
        }
        st.pending += event.bytes() + RECORD_COST;
        st.batch.push(event, self.zero_copy);
        let over = st.pending > self.max_pending;
        self.schedule(st);
        if over {
            self.wait_for_room();
        }
    }

    /// Pauses the I/O task until JavaScript has taken this port's batch (or
    /// the port is closed). The thread becomes one of tokio's blocking
    /// threads meanwhile, so other tasks keep running.
    fn wait_for_room(&self) {
        let wait = || {
            let mut st = lock(&self.state);
            while st.pending > self.max_pending / 2 && !self.is_closed() && !self.hub.is_dead() {
                st = self.space.wait_timeout(st, Duration::from_millis(200)).unwrap_or_else(|e| e.into_inner()).0;
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    fn schedule(self: &Arc<Self>, mut st: MutexGuard<'_, Shared>) {
        if !st.queued {
            st.queued = true;
            drop(st);
            self.hub.schedule(Due::Port(self.clone()));
        }
    }

    /// The peer id a resume peer is known by, if any.
    pub(crate) fn peer_id(&self, token: &Bytes) -> Option<u64> {
        lock(&self.state).peer_ids.get(token).copied()
    }

    // ------------------------------------------------------------------
    // JavaScript thread

    /// The errno the connection failed with, once JavaScript has been told.
    pub(crate) fn failed_errno(&self) -> Option<i32> {
        self.js.0.borrow().failed
    }

    /// The JavaScript object of a worker / peer id, if JavaScript has it.
    pub(crate) fn object(&self, env: sys::napi_env, id: u64) -> Option<Unknown<'_>> {
        let r = *self.js.0.borrow().objs.get(&id)?;
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_reference_value(env, r, &mut v) };
        (!v.is_null()).then(|| unsafe { Unknown::from_raw_unchecked(env, v) })
    }

    /// A promise for the connection (resolved at once if it is up, rejected
    /// if it failed or was closed before connecting).
    pub(crate) fn ready_promise<'a>(&self, env: &'a Env) -> Unknown<'a> {
        let mut js = self.js.0.borrow_mut();
        let (deferred, promise) = js::new_promise(env);
        if js.connected {
            unsafe { sys::napi_resolve_deferred(env.raw(), deferred, js::undefined(env.raw())) };
        } else if js.failed.is_some() || js.released {
            unsafe { sys::napi_reject_deferred(env.raw(), deferred, end_error(env.raw(), &js)) };
        } else {
            js.ready_waiters.push(deferred);
        }
        promise
    }

    /// A promise for the end (the release).
    pub(crate) fn closed_promise<'a>(&self, env: &'a Env) -> Unknown<'a> {
        let mut js = self.js.0.borrow_mut();
        let (deferred, promise) = js::new_promise(env);
        if js.released {
            unsafe { sys::napi_resolve_deferred(env.raw(), deferred, js::undefined(env.raw())) };
        } else {
            js.close_waiters.push(deferred);
        }
        promise
    }

    /// Takes the batch.
    fn take(&self) -> (Batch, bool, Option<i32>, bool) {
        let mut st = lock(&self.state);
        st.queued = false;
        // The next batch starts empty; `recycle` gives it this one's
        // buffers back once they are dispatched.
        let batch = std::mem::take(&mut st.batch);
        let was_over = st.pending > self.max_pending / 2;
        st.pending = 0;
        let out = (batch, std::mem::take(&mut st.connected), st.failed.take(), std::mem::take(&mut st.released));
        drop(st);
        if was_over {
            self.space.notify_all();
        }
        out
    }

    /// Runs the dispatcher for what the port has.
    pub(crate) unsafe fn deliver(self: &Arc<Self>, env: sys::napi_env, dispatcher: sys::napi_value) {
        let (mut batch, connected, failed, released) = self.take();
        let obj = {
            let mut js = self.js.0.borrow_mut();
            // A connection the owner closed before hearing of it never was.
            js.connected |= connected && !self.is_closed();
            if js.failed.is_none() {
                js.failed = failed;
            }
            let mut obj = ptr::null_mut();
            if let Some(r) = js.obj {
                unsafe { sys::napi_get_reference_value(env, r, &mut obj) };
            }
            obj
        };
        if obj.is_null() {
            // Never attached (its creation failed) or already released.
            unsafe { self.settle(env, released) };
            return;
        }
        if self.is_closed() {
            // Accepted connections of a closed server are dropped (closed).
            batch = Batch::default();
        }
        let waiters = !self.js.0.borrow().ready_waiters.is_empty();
        let mut thrown = ptr::null_mut();
        let flags = if released { F_RELEASED } else { 0 } | if waiters { F_WAITERS } else { 0 };
        let und = js::undefined(env);
        if !batch.is_empty() || released {
            let recs = if batch.is_empty() { und } else { unsafe { float64_array(env, &batch.recs) } };
            // The arena is copied into a Buffer Node allocates (a memcpy of a
            // few bytes per message): its Vec goes back to the port for the
            // next batch, and no memory allocated there is freed here.
            let arena = if batch.arena.is_empty() { und } else { unsafe { buffer_copy(env, &batch.arena) } };
            let bigs = if !batch.incoming.is_empty() {
                unsafe { crate::connection::accept_all(env, self, std::mem::take(&mut batch.incoming)) }
            } else if batch.bigs.is_empty() {
                und
            } else {
                js::array(env, batch.bigs.drain(..).map(|b| unsafe { external_bytes(env, b) }))
            };
            let news = unsafe { self.make_objects(env, std::mem::take(&mut batch.news)) };
            let argv = [js::number(env, self.owner as f64), obj, recs, arena, bigs, js::number(env, flags as f64), news];
            // Only the dispatcher's own failure can throw here (it reports
            // the owner's exceptions itself): it is put aside while the
            // batch is finished, then left pending for the hub to rethrow.
            let mut result = ptr::null_mut();
            if unsafe { sys::napi_call_function(env, und, dispatcher, argv.len(), argv.as_ptr(), &mut result) }
                == sys::Status::napi_pending_exception
            {
                unsafe { sys::napi_get_and_clear_last_exception(env, &mut thrown) };
            }
        }
        {
            let mut js = self.js.0.borrow_mut();
            for id in batch.forget.drain(..) {
                if let Some(r) = js.objs.remove(&id) {
                    unsafe { sys::napi_delete_reference(env, r) };
                }
            }
        }
        self.recycle(batch);
        unsafe { self.settle(env, released) };
        if !thrown.is_null() {
            unsafe { sys::napi_throw(env, thrown) };
        }
    }

    /// Makes the JavaScript objects of new workers / peers: `[id, obj, …]`.
    unsafe fn make_objects(&self, env: sys::napi_env, news: Vec<(u64, Source)>) -> sys::napi_value {
        if news.is_empty() {
            return js::undefined(env);
        }
        let e = Env::from_raw(env);
        let mut js = self.js.0.borrow_mut();
        let mut out = Vec::with_capacity(news.len() * 2);
        for (id, source) in news {
            let made = match source {
                Source::Worker(w) => EngineWorker { w }.into_instance(&e).map(|i| i.value),
                Source::Peer(p) => ResumePeer { p }.into_instance(&e).map(|i| i.value),
                _ => continue,
            };
            let Ok(v) = made else { continue };
            let mut r = ptr::null_mut();
            unsafe { sys::napi_create_reference(env, v, 1, &mut r) };
            if let Some(old) = js.objs.insert(id, r) {
                unsafe { sys::napi_delete_reference(env, old) };
            }
            out.extend([js::number(env, id as f64), v]);
        }
        js::array(env, out)
    }

    /// Hands a dispatched batch's buffers back for the next one.
    fn recycle(&self, mut batch: Batch) {
        batch.recs.clear();
        batch.arena.clear();
        let mut st = lock(&self.state);
        let b = &mut st.batch;
        if b.recs.is_empty() && b.recs.capacity() < batch.recs.capacity() && batch.recs.capacity() <= 1 << 18 {
            std::mem::swap(&mut b.recs, &mut batch.recs);
        }
        if b.arena.is_empty() && b.arena.capacity() < batch.arena.capacity() && batch.arena.capacity() <= 4 << 20 {
            std::mem::swap(&mut b.arena, &mut batch.arena);
        }
    }

    /// Settles promises and, on release, lets go of the owner object and
    /// the objects it knew, and stops counting the port as open.
    unsafe fn settle(&self, env: sys::napi_env, released: bool) {
        let mut js = self.js.0.borrow_mut();
        let first = released && !js.released;
        js.released |= released;
        if js.connected {
            for d in js.ready_waiters.drain(..) {
                unsafe { sys::napi_resolve_deferred(env, d, js::undefined(env)) };
            }
        } else if (js.failed.is_some() || js.released) && !js.ready_waiters.is_empty() {
            let e = end_error(env, &js);
            for d in js.ready_waiters.drain(..) {
                unsafe { sys::napi_reject_deferred(env, d, e) };
            }
        }
        if !first {
            return;
        }
        for d in js.close_waiters.drain(..) {
            unsafe { sys::napi_resolve_deferred(env, d, js::undefined(env)) };
        }
        let obj = js.obj.take();
        for r in js.objs.drain().map(|(_, r)| r).chain(obj) {
            unsafe { sys::napi_delete_reference(env, r) };
        }
        drop(js);
        self.hub.close(env);
    }
}

/// Starts an owner object: its port, the core object `start` makes with
/// it (a failure throws the errno's error and ends the port), and the
/// JavaScript object `wrap` makes, attached to the port.
pub(crate) fn start<'a, C, T: JavaScriptClassExt>(
    env: &'a Env,
    owner: u32,
    (zero_copy, max_pending): (usize, usize),
    start: impl FnOnce(&Arc<Port>) -> std::io::Result<C>,
    wrap: impl FnOnce(C, Arc<Port>) -> T,
) -> Result<ClassInstance<'a, T>> {
    let port = Port::new(env.raw(), owner, zero_copy, max_pending)?;
    let core = start(&port).map_err(|err| {
        port.end();
        js::throw_errno(env.raw(), sluice_core::net::errno_of(&err))
    })?;
    let inst = wrap(core, port.clone()).into_instance(env)?;
    port.attach(env.raw(), inst.value);
    Ok(inst)
}

/// The error a `ready` promise is rejected with.
fn end_error(env: sys::napi_env, js: &JsSide) -> sys::napi_value {
    // ECONNABORTED: closed by its owner before it connected.
    unsafe { js::errno_error(env, js.failed.unwrap_or(103)) }
}

/// The core handler of a channel: its events to the port, its release when
/// the core drops it (the last event has been given).
pub(crate) struct Feed(Arc<Port>);

impl Handler for Feed {
    fn on_event(&mut self, channel: &Channel, event: sluice_core::net::Event) {
        // A drain first lets the sends waiting for room through; the owner
        // hears of it only once all of them went.
        if matches!(event, sluice_core::net::Event::Drain) && !self.0.sends.flush(channel) {
            return;
        }
        let (source, event) = event.into_event();
        self.0.push(source, event)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.release();
    }
}

// ----------------------------------------------------------------------
// Values for JavaScript

unsafe fn float64_array(env: sys::napi_env, v: &[f64]) -> sys::napi_value {
    let mut data = ptr::null_mut();
    let mut ab = ptr::null_mut();
    unsafe { sys::napi_create_arraybuffer(env, std::mem::size_of_val(v), &mut data, &mut ab) };
    if !data.is_null() {
        unsafe { ptr::copy_nonoverlapping(v.as_ptr(), data.cast::<f64>(), v.len()) };
    }
    let mut ta = ptr::null_mut();
    unsafe { sys::napi_create_typedarray(env, sys::TypedarrayType::float64_array, v.len(), ab, 0, &mut ta) };
    ta
}

unsafe extern "C" fn free_bytes(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    drop(unsafe { Box::from_raw(hint.cast::<Bytes>()) });
}

/// A Buffer with a copy of `v`.
pub(crate) unsafe fn buffer_copy(env: sys::napi_env, v: &[u8]) -> sys::napi_value {
    let mut d = ptr::null_mut();
    let mut out = ptr::null_mut();
    unsafe { sys::napi_create_buffer_copy(env, v.len(), v.as_ptr().cast(), &mut d, &mut out) };
    out
}

/// A Buffer over a received payload (no copy), released when collected.
unsafe fn external_bytes(env: sys::napi_env, b: Bytes) -> sys::napi_value {
    if b.is_empty() {
        return unsafe { buffer_copy(env, &[]) };
    }
    let (len, data) = (b.len(), b.as_ptr() as *mut c_void);
    let hint = Box::into_raw(Box::new(b));
    let mut out = ptr::null_mut();
    let s = unsafe { sys::napi_create_external_buffer(env, len, data, Some(free_bytes), hint.cast(), &mut out) };
    if s != sys::Status::napi_ok {
        let b = unsafe { Box::from_raw(hint) };
        out = unsafe { buffer_copy(env, &b) };
    }
    out
}
