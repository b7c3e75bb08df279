//! Delivery of channel events to JavaScript, in batches.
//!
//! * Every channel has a [`Port`]. The core runs the channel's handler
//!   ([`Feed`]) inline on an I/O thread; it turns each event into a few
//!   numbers appended to the port's record list (`recs`), copies small
//!   payloads and strings into the port's `arena`, and keeps large chunk
//!   payloads as they are (`bigs`, handed to JavaScript without a copy).
//! * A port with new records is put on the [`Hub`]'s ready list; the hub
//!   calls its one threadsafe function only when no call is pending. On the
//!   JavaScript thread that call takes the whole ready list and, per port,
//!   makes one `Float64Array` of records, one Buffer holding the arena (a
//!   copy; the vectors go back to the port for its next batch) and one
//!   external Buffer per large chunk, and calls the JavaScript dispatcher once
//!   (`lib/dispatch.js`), which runs the owner's callbacks for the batch,
//!   slicing small payloads out of the arena with `subarray`.
//! * Flow control: while more than `max_pending` bytes of a port wait for
//!   JavaScript, the channel's I/O task stops reading (its thread is handed
//!   to tokio as a blocking one meanwhile): memory stays bounded however fast
//!   the peer writes.
//! * Liveness: the threadsafe function is referenced while at least one
//!   channel or server is open (so Node stays alive) and unreferenced
//!   otherwise (so Node can exit).

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use napi::sys;
use sluice_core::net::{Channel, Event, Handler, Incoming};
use sluice_core::wire::{Dialect, Message};

use crate::js;
use crate::outbox::Outbox;

// Record kinds (the first number of each record; lib/dispatch.js mirrors them).
pub(crate) const R_CONNECT: f64 = 1.0; // [1]
pub(crate) const R_HEARTBEAT: f64 = 2.0; // [2, sid]
pub(crate) const R_INVOKE: f64 = 3.0; // [3, sid, off, len]
pub(crate) const R_CHUNK: f64 = 4.0; // [4, sid, off, len]
pub(crate) const R_CHUNK_EXT: f64 = 5.0; // [5, sid, big]
pub(crate) const R_CHOKE: f64 = 6.0; // [6, sid]
pub(crate) const R_ERROR: f64 = 7.0; // [7, sid, category|NaN, code, off, len|-1]
pub(crate) const R_TERMINATE: f64 = 8.0; // [8, sid, code, off, len]
pub(crate) const R_HANDSHAKE: f64 = 9.0; // [9, sid, off, len]
pub(crate) const R_FRAME: f64 = 10.0; // [10, sid, type, off, len]
pub(crate) const R_FRAME_EXT: f64 = 11.0; // [11, sid, type, big]
pub(crate) const R_DRAIN: f64 = 12.0; // [12]
pub(crate) const R_SOCKET_ERROR: f64 = 13.0; // [13, errno]
pub(crate) const R_ACCEPT: f64 = 14.0; // [14, big] (servers: the new Connection)
pub(crate) const R_BIGSID: f64 = 15.0; // [15, hi, lo]: the next record's id (NaN there) is above 2^53

/// Flags passed with a batch.
pub(crate) const F_RELEASED: u32 = 1;
pub(crate) const F_WAITERS: u32 = 2;

const MAX_SAFE: u64 = (1 << 53) - 1;
/// What a record costs towards `max_pending` beyond its payload.
const RECORD_COST: usize = 48;

/// What kind of owner a port delivers to (the dispatcher's first argument).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Owner {
    /// The framework-compatible `Channel`, v0 parameter lists.
    CompatV0 = 0,
    /// The framework-compatible `Channel`, v1 (master) parameter lists.
    CompatV1 = 1,
    /// A `Connection` of the modern API.
    Connection = 2,
    /// A `Server`.
    Server = 3,
}

impl Owner {
    pub(crate) fn compat(d: Dialect) -> Owner {
        match d {
            Dialect::V0 => Owner::CompatV0,
            Dialect::V1 => Owner::CompatV1,
        }
    }
}

#[derive(Default)]
struct Batch {
    recs: Vec<f64>,
    arena: Vec<u8>,
    bigs: Vec<Bytes>,
    incoming: Vec<Incoming>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    fn id(&mut self, kind: f64, sid: u64) {
        if sid > MAX_SAFE {
            self.recs.extend_from_slice(&[R_BIGSID, (sid >> 32) as f64, (sid & 0xffff_ffff) as f64, kind, f64::NAN]);
        } else {
            self.recs.extend_from_slice(&[kind, sid as f64]);
        }
    }

    fn text(&mut self, b: &[u8]) {
        let off = self.arena.len();
        self.arena.extend_from_slice(b);
        self.recs.extend_from_slice(&[off as f64, b.len() as f64]);
    }
}

struct PortState {
    batch: Batch,
    /// Bytes (payloads plus a cost per record) waiting for JavaScript.
    pending: usize,
    /// On the hub's ready list.
    queued: bool,
    /// Flags the next dispatch carries.
    connected: bool,
    failed: Option<i32>,
    released: bool,
}

/// The JavaScript side of a port: touched on the JavaScript thread only.
pub(crate) struct JsSide {
    /// A strong reference to the owner object while the channel lives.
    obj: sys::napi_ref,
    /// Counted as open by the hub (until the release).
    open: bool,
    ready_waiters: Vec<sys::napi_deferred>,
    close_waiters: Vec<sys::napi_deferred>,
    connected: bool,
    /// The errno the channel ended with.
    failed: Option<i32>,
    released: bool,
}

/// A cell only the JavaScript thread touches (the owner object, promise
/// resolvers). Ports are shared with I/O threads, which never look inside.
struct JsCell(RefCell<JsSide>);
// SAFETY: only functions documented to run on the JavaScript thread borrow
// the cell; the raw N-API handles inside are never used elsewhere.
unsafe impl Sync for JsCell {}
unsafe impl Send for JsCell {}

/// One channel's (or server's) way to JavaScript.
pub(crate) struct Port {
    pub(crate) owner: Owner,
    hub: Arc<Hub>,
    state: Mutex<PortState>,
    space: Condvar,
    /// The owner closed the channel: nothing more is delivered to it.
    closed: AtomicBool,
    zero_copy: usize,
    max_pending: usize,
    /// Whether `Event::Frame`s go to JavaScript (modern connections).
    frames: bool,
    pub(crate) outbox: Outbox,
    js: JsCell,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Port {
    /// A port for an owner object (or one [`attach`](Self::attach)ed right
    /// after); runs on the JavaScript thread, which makes `obj` a strong
    /// reference and counts the port as open until its release.
    pub(crate) fn new(
        env: sys::napi_env,
        hub: &Arc<Hub>,
        owner: Owner,
        obj: Option<sys::napi_value>,
        zero_copy: usize,
        max_pending: usize,
    ) -> Arc<Port> {
        let mut r = ptr::null_mut();
        if let Some(obj) = obj {
            unsafe { sys::napi_create_reference(env, obj, 1, &mut r) };
        }
        hub.open(env);
        Arc::new(Port {
            owner,
            hub: hub.clone(),
            state: Mutex::new(PortState {
                batch: Batch::default(),
                pending: 0,
                queued: false,
                connected: false,
                failed: None,
                released: false,
            }),
            space: Condvar::new(),
            closed: AtomicBool::new(false),
            zero_copy,
            max_pending: max_pending.max(1),
            frames: owner == Owner::Connection,
            outbox: Outbox::default(),
            js: JsCell(RefCell::new(JsSide {
                obj: r,
                open: true,
                ready_waiters: Vec::new(),
                close_waiters: Vec::new(),
                connected: false,
                failed: None,
                released: false,
            })),
        })
    }

    /// Gives the port its owner object (JavaScript thread, right after
    /// `new`, before any dispatch can run).
    pub(crate) fn attach(&self, env: sys::napi_env, obj: sys::napi_value) {
        let mut js = self.js.0.borrow_mut();
        if js.obj.is_null() && js.open {
            unsafe { sys::napi_create_reference(env, obj, 1, &mut js.obj) };
        }
    }

    /// The handler to give the core for this port's channel.
    pub(crate) fn feed(self: &Arc<Self>) -> Feed {
        Feed { port: self.clone() }
    }

    /// The owner closed the channel: drop what waits, deliver nothing more
    /// (but the release, which settles `close()` promises).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut st = lock(&self.state);
        st.batch.recs.clear();
        st.batch.arena.clear();
        st.batch.bigs.clear();
        st.pending = 0;
        drop(st);
        self.space.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Servers: an accepted connection for JavaScript to take.
    pub(crate) fn push_incoming(self: &Arc<Self>, inc: Incoming) {
        if self.is_closed() {
            return;
        }
        let mut st = lock(&self.state);
        let idx = st.batch.incoming.len();
        st.batch.incoming.push(inc);
        st.batch.recs.extend_from_slice(&[R_ACCEPT, idx as f64]);
        self.schedule(st);
    }

    /// Servers: the listener stopped (JavaScript thread).
    pub(crate) fn release_now(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        st.released = true;
        self.schedule(st);
    }

    fn schedule(self: &Arc<Self>, mut st: MutexGuard<'_, PortState>) {
        if !st.queued {
            st.queued = true;
            drop(st);
            self.hub.schedule(self.clone());
        }
    }

    /// Runs on an I/O thread for each event of the channel.
    fn on_event(self: &Arc<Self>, ch: &Channel, ev: Event) {
        if let Event::Drain = ev {
            if !self.outbox.flush(ch) {
                return;
            }
        }
        if self.is_closed() {
            return;
        }
        let mut st = lock(&self.state);
        let b = &mut st.batch;
        let mut bytes = RECORD_COST;
        match ev {
            Event::Connected => {
                b.recs.push(R_CONNECT);
                st.connected = true;
            }
            Event::Message { session, message, .. } => match message {
                Message::Chunk { data } => {
                    bytes += data.len();
                    if data.len() >= self.zero_copy {
                        b.id(R_CHUNK_EXT, session);
                        b.recs.push(b.bigs.len() as f64);
                        b.bigs.push(data);
                    } else {
                        b.id(R_CHUNK, session);
                        b.text(&data);
                    }
                }
                Message::Heartbeat => b.id(R_HEARTBEAT, session),
                Message::Choke => b.id(R_CHOKE, session),
                Message::Invoke { event } => {
                    bytes += event.len();
                    b.id(R_INVOKE, session);
                    b.text(&event);
                }
                Message::Error { category, code, message } => {
                    b.id(R_ERROR, session);
                    b.recs.extend_from_slice(&[category.map_or(f64::NAN, |c| c as f64), code as f64]);
                    match message {
                        Some(m) => {
                            bytes += m.len();
                            b.text(&m);
                        }
                        None => b.recs.extend_from_slice(&[0.0, -1.0]),
                    }
                }
                Message::Terminate { code, reason } => {
                    bytes += reason.len();
                    b.id(R_TERMINATE, session);
                    b.recs.push(code as f64);
                    b.text(&reason);
                }
                Message::Handshake { uuid } => {
                    bytes += uuid.len();
                    b.id(R_HANDSHAKE, session);
                    b.text(&uuid);
                }
            },
            Event::Frame(f) => {
                if !self.frames {
                    return;
                }
                let raw = f.args.into_raw();
                bytes += raw.len();
                if raw.len() >= self.zero_copy {
                    b.id(R_FRAME_EXT, f.session);
                    b.recs.extend_from_slice(&[f.ty as f64, b.bigs.len() as f64]);
                    b.bigs.push(raw);
                } else {
                    b.id(R_FRAME, f.session);
                    b.recs.push(f.ty as f64);
                    b.text(&raw);
                }
            }
            Event::Drain => b.recs.push(R_DRAIN),
            Event::SocketError(errno) => {
                b.recs.extend_from_slice(&[R_SOCKET_ERROR, errno as f64]);
                st.failed = Some(errno);
            }
        }
        st.pending += bytes;
        let over = st.pending > self.max_pending;
        self.schedule(st);
        if over {
            self.wait_for_room();
        }
    }

    /// Pauses the I/O task until JavaScript has taken this port's batch (or
    /// the channel is closed). The thread becomes one of tokio's blocking
    /// threads meanwhile, so other channels keep running.
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

    /// The channel's handler was dropped: its last event has been given.
    fn release(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        st.released = true;
        self.schedule(st);
    }

    /// Takes the batch (JavaScript thread).
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

    // ------------------------------------------------------------------
    // JavaScript thread

    /// The errno the connection failed with, once JavaScript has been told.
    pub(crate) fn failed_errno(&self) -> Option<i32> {
        self.js.0.borrow().failed
    }

    /// Settings for the channels a server port accepts.
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.zero_copy, self.max_pending)
    }

    /// A promise for the connection (resolved at once if it is up, rejected
    /// if it failed or was closed before connecting).
    pub(crate) fn ready_promise(&self, env: sys::napi_env) -> sys::napi_value {
        let mut js = self.js.0.borrow_mut();
        let (deferred, promise) = new_promise(env);
        if js.connected {
            unsafe { sys::napi_resolve_deferred(env, deferred, js::undefined(env)) };
        } else if js.failed.is_some() || js.released {
            unsafe { sys::napi_reject_deferred(env, deferred, end_error(env, &js)) };
        } else {
            js.ready_waiters.push(deferred);
        }
        promise
    }

    /// A promise for the end of the channel (its release).
    pub(crate) fn closed_promise(&self, env: sys::napi_env) -> sys::napi_value {
        let mut js = self.js.0.borrow_mut();
        let (deferred, promise) = new_promise(env);
        if js.released {
            unsafe { sys::napi_resolve_deferred(env, deferred, js::undefined(env)) };
        } else {
            js.close_waiters.push(deferred);
        }
        promise
    }

    /// Runs the dispatcher for what the port has (JavaScript thread).
    unsafe fn dispatch(self: &Arc<Self>, env: sys::napi_env, dispatcher: sys::napi_value, errors: &mut Vec<sys::napi_value>) {
        let (mut batch, connected, failed, released) = self.take();
        let obj = {
            let mut js = self.js.0.borrow_mut();
            // A connection the owner closed before hearing of it never was.
            js.connected |= connected && !self.is_closed();
            if js.failed.is_none() {
                js.failed = failed;
            }
            let mut obj = ptr::null_mut();
            if !js.obj.is_null() {
                unsafe { sys::napi_get_reference_value(env, js.obj, &mut obj) };
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
        let flags = if released { F_RELEASED } else { 0 } | if waiters { F_WAITERS } else { 0 };
        let und = js::undefined(env);
        if !batch.is_empty() || released {
            let recs = if batch.is_empty() { und } else { unsafe { float64_array(env, &batch.recs) } };
            // The arena is copied into a Buffer Node allocates (a memcpy of a
            // few bytes per message): its Vec goes back to the port for the
            // next batch, so the I/O thread does not allocate a new one each
            // time, and no memory allocated there is freed here.
            let arena = if batch.arena.is_empty() { und } else { unsafe { buffer_copy(env, &batch.arena) } };
            let bigs = if !batch.incoming.is_empty() {
                unsafe { crate::modern::accept_all(env, self, std::mem::take(&mut batch.incoming)) }
            } else if batch.bigs.is_empty() {
                und
            } else {
                let mut arr = ptr::null_mut();
                unsafe { sys::napi_create_array_with_length(env, batch.bigs.len(), &mut arr) };
                for (i, b) in batch.bigs.drain(..).enumerate() {
                    let v = unsafe { external_bytes(env, b) };
                    unsafe { sys::napi_set_element(env, arr, i as u32, v) };
                }
                arr
            };
            let mut kind = ptr::null_mut();
            let mut fl = ptr::null_mut();
            unsafe {
                sys::napi_create_uint32(env, self.owner as u32, &mut kind);
                sys::napi_create_uint32(env, flags, &mut fl);
            }
            let argv = [kind, obj, recs, arena, bigs, fl];
            let mut result = ptr::null_mut();
            let s = unsafe { sys::napi_call_function(env, und, dispatcher, argv.len(), argv.as_ptr(), &mut result) };
            if s == sys::Status::napi_pending_exception {
                let mut e = ptr::null_mut();
                unsafe { sys::napi_get_and_clear_last_exception(env, &mut e) };
                errors.push(e);
            }
        }
        self.recycle(batch);
        unsafe { self.settle(env, released) };
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

    /// Settles promises and, on release, lets go of the owner object.
    unsafe fn settle(&self, env: sys::napi_env, released: bool) {
        let mut js = self.js.0.borrow_mut();
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
        if released && js.open {
            js.open = false;
            for d in js.close_waiters.drain(..) {
                unsafe { sys::napi_resolve_deferred(env, d, js::undefined(env)) };
            }
            if !js.obj.is_null() {
                unsafe { sys::napi_delete_reference(env, js.obj) };
                js.obj = ptr::null_mut();
            }
            drop(js);
            self.hub.close(env);
        }
    }
}

/// The error a `ready` promise is rejected with.
fn end_error(env: sys::napi_env, js: &JsSide) -> sys::napi_value {
    // ECONNABORTED: closed by its owner before it connected.
    unsafe { js::errno_error(env, js.failed.unwrap_or(103)) }
}

pub(crate) fn new_promise(env: sys::napi_env) -> (sys::napi_deferred, sys::napi_value) {
    let mut d = ptr::null_mut();
    let mut p = ptr::null_mut();
    unsafe { sys::napi_create_promise(env, &mut d, &mut p) };
    (d, p)
}

/// Something with events for the JavaScript thread: a channel's [`Port`],
/// or a role's port (`roles.rs`).
pub(crate) trait Deliver: Send + Sync {
    /// Runs the dispatcher for what it has (JavaScript thread).
    ///
    /// # Safety
    /// `env` and `dispatcher` are the live values of the hub's call.
    unsafe fn deliver(self: Arc<Self>, env: sys::napi_env, dispatcher: sys::napi_value, errors: &mut Vec<sys::napi_value>);
}

impl Deliver for Port {
    unsafe fn deliver(self: Arc<Self>, env: sys::napi_env, dispatcher: sys::napi_value, errors: &mut Vec<sys::napi_value>) {
        unsafe { self.dispatch(env, dispatcher, errors) }
    }
}

/// The core handler of a port's channel.
pub(crate) struct Feed {
    port: Arc<Port>,
}

impl Handler for Feed {
    fn on_event(&mut self, channel: &Channel, event: Event) {
        self.port.on_event(channel, event)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.port.release();
    }
}

// ----------------------------------------------------------------------
// Values for JavaScript

pub(crate) unsafe fn float64_array(env: sys::napi_env, v: &[f64]) -> sys::napi_value {
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
pub(crate) unsafe fn external_bytes(env: sys::napi_env, b: Bytes) -> sys::napi_value {
    let len = b.len();
    if len == 0 {
        let mut d = ptr::null_mut();
        let mut out = ptr::null_mut();
        unsafe { sys::napi_create_buffer(env, 0, &mut d, &mut out) };
        return out;
    }
    let b = Box::new(b);
    let data = b.as_ptr() as *mut c_void;
    let hint = Box::into_raw(b);
    let mut out = ptr::null_mut();
    let s = unsafe { sys::napi_create_external_buffer(env, len, data, Some(free_bytes), hint.cast(), &mut out) };
    if s != sys::Status::napi_ok {
        let b = unsafe { Box::from_raw(hint) };
        let mut d = ptr::null_mut();
        unsafe { sys::napi_create_buffer_copy(env, len, b.as_ptr().cast(), &mut d, &mut out) };
    }
    out
}

// ----------------------------------------------------------------------
// The hub

struct Ready {
    list: Vec<Arc<dyn Deliver>>,
    /// A call of the threadsafe function is queued.
    scheduled: bool,
    /// Null once the environment has finalized the function.
    tsfn: sys::napi_threadsafe_function,
}

// SAFETY: the threadsafe function handle may be used from any thread.
unsafe impl Send for Ready {}

/// The open-handle count and the ref state of the threadsafe function:
/// JavaScript thread only.
struct Live {
    open: usize,
    referenced: bool,
}

struct LiveCell(RefCell<Live>);
// SAFETY: borrowed only on the JavaScript thread (Hub::open / Hub::close).
unsafe impl Sync for LiveCell {}
unsafe impl Send for LiveCell {}

/// One per JavaScript environment: the threadsafe function and the list of
/// ports that have something to deliver.
pub(crate) struct Hub {
    ready: Mutex<Ready>,
    dead: AtomicBool,
    live: LiveCell,
}

impl Hub {
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub(crate) fn schedule(&self, port: Arc<dyn Deliver>) {
        let mut r = lock(&self.ready);
        r.list.push(port);
        if !r.scheduled && !r.tsfn.is_null() {
            r.scheduled = true;
            unsafe { sys::napi_call_threadsafe_function(r.tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        }
    }

    fn tsfn(&self) -> sys::napi_threadsafe_function {
        lock(&self.ready).tsfn
    }

    /// A channel or server opened (JavaScript thread).
    pub(crate) fn open(&self, env: sys::napi_env) {
        let mut l = self.live.0.borrow_mut();
        l.open += 1;
        if !l.referenced {
            let f = self.tsfn();
            if !f.is_null() {
                unsafe { sys::napi_ref_threadsafe_function(env, f) };
            }
            l.referenced = true;
        }
    }

    /// A channel or server ended (JavaScript thread).
    pub(crate) fn close(&self, env: sys::napi_env) {
        let mut l = self.live.0.borrow_mut();
        l.open = l.open.saturating_sub(1);
        if l.open == 0 && l.referenced {
            let f = self.tsfn();
            if !f.is_null() {
                unsafe { sys::napi_unref_threadsafe_function(env, f) };
            }
            l.referenced = false;
        }
    }
}

/// The hub of an environment and its dispatcher, kept as instance data.
struct Instance {
    hub: Arc<Hub>,
}

unsafe extern "C" fn call_js(env: sys::napi_env, js_cb: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    if env.is_null() || context.is_null() {
        return;
    }
    // SAFETY: `context` is the `Arc<Hub>` leaked in `init`, alive until
    // `finalize` (which runs after the last call).
    let hub = unsafe { &*(context as *const Hub) };
    // While this runs, `scheduled` stays set: ports that get events meanwhile
    // only join the list (no wake-up call from the I/O thread) and are taken
    // in the next round here. The rounds end when the list is empty, or
    // after a while, to let the rest of the event loop run: then one more
    // call is queued.
    let start = std::time::Instant::now();
    let mut errors = Vec::new();
    let mut spare = Vec::new();
    loop {
        let mut list = {
            let mut r = lock(&hub.ready);
            if r.list.is_empty() {
                r.scheduled = false;
                break;
            }
            if start.elapsed() > Duration::from_millis(2) {
                if !r.tsfn.is_null() {
                    unsafe { sys::napi_call_threadsafe_function(r.tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
                }
                break;
            }
            std::mem::replace(&mut r.list, std::mem::take(&mut spare))
        };
        for port in list.drain(..) {
            let mut scope = ptr::null_mut();
            unsafe { sys::napi_open_handle_scope(env, &mut scope) };
            unsafe { port.deliver(env, js_cb, &mut errors) };
            unsafe { sys::napi_close_handle_scope(env, scope) };
        }
        spare = list;
    }
    // Only the dispatcher's own failure lands here (it reports the owner's
    // exceptions itself): rethrow the first, as an uncaught exception.
    if let Some(e) = errors.into_iter().next() {
        unsafe { sys::napi_throw(env, e) };
    }
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Arc<Hub>` leaked in `init`.
    let hub = unsafe { Arc::from_raw(data as *const Hub) };
    hub.dead.store(true, Ordering::Release);
    let mut r = lock(&hub.ready);
    r.tsfn = ptr::null_mut();
    r.list.clear();
}

unsafe extern "C" fn drop_instance(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        drop(unsafe { Box::from_raw(data.cast::<Instance>()) });
    }
}

/// Sets up delivery for this environment with the JavaScript dispatcher
/// (`lib/dispatch.js`). Called once by `index.js`.
pub(crate) fn init(env: sys::napi_env, dispatcher: sys::napi_value) -> napi::Result<()> {
    let mut existing = ptr::null_mut();
    unsafe { sys::napi_get_instance_data(env, &mut existing) };
    if !existing.is_null() {
        return Ok(());
    }
    let hub = Arc::new(Hub {
        ready: Mutex::new(Ready { list: Vec::new(), scheduled: false, tsfn: ptr::null_mut() }),
        dead: AtomicBool::new(false),
        live: LiveCell(RefCell::new(Live { open: 0, referenced: false })),
    });
    let raw = Arc::into_raw(hub.clone()) as *mut c_void;
    let mut name = ptr::null_mut();
    unsafe { sys::napi_create_string_utf8(env, c"sluice".as_ptr(), 6, &mut name) };
    let mut tsfn = ptr::null_mut();
    let s = unsafe {
        sys::napi_create_threadsafe_function(
            env,
            dispatcher,
            ptr::null_mut(),
            name,
            0,
            1,
            raw,
            Some(finalize),
            raw,
            Some(call_js),
            &mut tsfn,
        )
    };
    if s != sys::Status::napi_ok {
        drop(unsafe { Arc::from_raw(raw as *const Hub) });
        return Err(napi::Error::from_reason("creating the threadsafe function failed"));
    }
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    lock(&hub.ready).tsfn = tsfn;
    let inst = Box::into_raw(Box::new(Instance { hub }));
    unsafe { sys::napi_set_instance_data(env, inst.cast(), Some(drop_instance), ptr::null_mut()) };
    Ok(())
}

/// This environment's hub (after `init`).
pub(crate) fn hub(env: sys::napi_env) -> napi::Result<Arc<Hub>> {
    let mut data = ptr::null_mut();
    unsafe { sys::napi_get_instance_data(env, &mut data) };
    if data.is_null() {
        return Err(js::throw(env, js::Kind::Error, "ERR_SLUICE_NOT_INITIALIZED", "load sluice through its package (require('sluice'))"));
    }
    // SAFETY: set in `init` to a leaked `Instance`, freed with the env.
    Ok(unsafe { &*(data as *const Instance) }.hub.clone())
}
