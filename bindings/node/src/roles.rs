//! The protocol roles of `sluice_core::roles` for JavaScript:
//! `startWorker()` → [`Worker`], `listenEngine()` → [`Engine`] (its workers
//! are [`EngineWorker`]s), `openSession()` → [`Session`], `listenResume()` →
//! [`ResumeServer`] (its clients are [`ResumePeer`]s).
//!
//! Delivery follows the channels' (see `hub.rs`): the core runs each role's
//! handler inline on an I/O thread, which appends records to the role's
//! [`RolePort`]; the hub's one threadsafe function hands the batch to
//! `lib/dispatch.js`, which emits the events. Workers of an engine and peers
//! of a resume server travel as ids: the first record about one brings its
//! JavaScript object along (made on the JavaScript thread), later records
//! name it by id.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::net::{Endpoint, SendError};
use sluice_core::roles::{
    Backoff, Engine as CoreEngine, EngineEvent, EngineOptions, Liveness, Peer, ResumeEvent, ResumeOptions,
    ResumeServer as CoreResumeServer, ResumeServerOptions, Session as CoreSession, SessionEvent, SessionOptions, StreamError,
    Worker as CoreWorker, WorkerEvent, WorkerOptions, WorkerRef,
};
use sluice_core::wire::{Args, Dialect, Frame, Message, Role};

use crate::hub::{self, lock, Deliver, Hub, F_RELEASED};
use crate::js;
use crate::options::{self, endpoint_string};

// Owner kinds (the dispatcher's first argument; lib/dispatch.js mirrors them).
const K_WORKER: u32 = 4;
const K_ENGINE: u32 = 5;
const K_SESSION: u32 = 6;
const K_RESUME: u32 = 7;

// Record kinds beyond the channels' (hub.rs); lib/dispatch.js mirrors them.
const R_OBJ: f64 = 16.0; // [16, id]: the next record is about object `id`
const R_DISOWN: f64 = 17.0; // [17]
const R_DISCONNECTED: f64 = 18.0; // [18, errno, n, (hi, lo) × n]
const R_RECONNECT: f64 = 19.0; // [19, attempt, delay ms, off, len]
const R_CONNECTED: f64 = 20.0; // [20, resumed, off, len]
const R_REJECTED: f64 = 21.0; // [21, off, len]
const R_PEER_GONE: f64 = 22.0; // [22]

const MAX_SAFE: u64 = (1 << 53) - 1;
const RECORD_COST: usize = 48;
const ECONNRESET: i32 = 104;

/// An engine's worker or a resume server's peer, on its way to JavaScript.
enum Obj {
    Worker(WorkerRef),
    Peer(Peer),
}

#[derive(Default)]
struct Batch {
    recs: Vec<f64>,
    arena: Vec<u8>,
    bigs: Vec<Bytes>,
    /// Objects JavaScript has not seen yet.
    news: Vec<(u64, Obj)>,
    /// Objects JavaScript may forget after this batch.
    forget: Vec<u64>,
}

impl Batch {
    fn id(&mut self, kind: f64, sid: u64) {
        if sid > MAX_SAFE {
            self.recs.extend_from_slice(&[hub::R_BIGSID, (sid >> 32) as f64, (sid & 0xffff_ffff) as f64, kind, f64::NAN]);
        } else {
            self.recs.extend_from_slice(&[kind, sid as f64]);
        }
    }

    fn text(&mut self, b: &[u8]) {
        let off = self.arena.len();
        self.arena.extend_from_slice(b);
        self.recs.extend_from_slice(&[off as f64, b.len() as f64]);
    }

    /// A typed message; returns its payload size.
    fn message(&mut self, session: u64, message: Message, zero_copy: usize) -> usize {
        match message {
            Message::Chunk { data } => {
                let n = data.len();
                if n >= zero_copy {
                    self.id(hub::R_CHUNK_EXT, session);
                    self.recs.push(self.bigs.len() as f64);
                    self.bigs.push(data);
                } else {
                    self.id(hub::R_CHUNK, session);
                    self.text(&data);
                }
                n
            }
            Message::Heartbeat => {
                self.id(hub::R_HEARTBEAT, session);
                0
            }
            Message::Choke => {
                self.id(hub::R_CHOKE, session);
                0
            }
            Message::Invoke { event } => {
                self.id(hub::R_INVOKE, session);
                self.text(&event);
                event.len()
            }
            Message::Error { category, code, message } => self.error(session, category, code, message.as_deref()),
            Message::Terminate { code, reason } => {
                self.terminate(session, code, &reason);
                reason.len()
            }
            Message::Handshake { uuid } => {
                self.id(hub::R_HANDSHAKE, session);
                self.text(&uuid);
                uuid.len()
            }
        }
    }

    fn error(&mut self, session: u64, category: Option<i64>, code: i64, message: Option<&[u8]>) -> usize {
        self.id(hub::R_ERROR, session);
        self.recs.extend_from_slice(&[category.map_or(f64::NAN, |c| c as f64), code as f64]);
        match message {
            Some(m) => {
                self.text(m);
                m.len()
            }
            None => {
                self.recs.extend_from_slice(&[0.0, -1.0]);
                0
            }
        }
    }

    fn terminate(&mut self, session: u64, code: i64, reason: &[u8]) {
        self.id(hub::R_TERMINATE, session);
        self.recs.push(code as f64);
        self.text(reason);
    }

    fn frame(&mut self, f: Frame, zero_copy: usize) -> usize {
        let raw = f.args.into_raw();
        let n = raw.len();
        if n >= zero_copy {
            self.id(hub::R_FRAME_EXT, f.session);
            self.recs.extend_from_slice(&[f.ty as f64, self.bigs.len() as f64]);
            self.bigs.push(raw);
        } else {
            self.id(hub::R_FRAME, f.session);
            self.recs.push(f.ty as f64);
            self.text(&raw);
        }
        n
    }

    fn disconnected(&mut self, errno: i32, sessions: &[u64]) {
        self.recs.extend_from_slice(&[R_DISCONNECTED, errno as f64, sessions.len() as f64]);
        for s in sessions {
            self.recs.extend_from_slice(&[(s >> 32) as f64, (s & 0xffff_ffff) as f64]);
        }
    }
}

struct State {
    batch: Batch,
    pending: usize,
    queued: bool,
    released: bool,
    /// Ids of the objects JavaScript has (or is about to get).
    known: HashSet<u64>,
    /// Resume peers' ids, by token.
    peer_ids: HashMap<Bytes, u64>,
    next_peer: u64,
}

impl State {
    /// Prefixes the next record with the object's id, bringing the object
    /// along the first time.
    fn about(&mut self, id: u64, obj: impl FnOnce() -> Obj) {
        if self.known.insert(id) {
            self.batch.news.push((id, obj()));
        }
        self.batch.recs.extend_from_slice(&[R_OBJ, id as f64]);
    }

    fn peer_id(&mut self, peer: &Peer) -> u64 {
        if let Some(id) = self.peer_ids.get(peer.token()) {
            return *id;
        }
        self.next_peer += 1;
        self.peer_ids.insert(peer.token().clone(), self.next_peer);
        self.next_peer
    }

    fn forget(&mut self, id: u64) {
        self.known.remove(&id);
        self.batch.forget.push(id);
    }
}

/// JavaScript-thread state of a role port.
struct JsSide {
    obj: sys::napi_ref,
    open: bool,
    close_waiters: Vec<sys::napi_deferred>,
    /// References to the engine's workers / the server's peers, by id.
    objs: HashMap<u64, sys::napi_ref>,
}

struct JsCell(RefCell<JsSide>);
// SAFETY: borrowed only on the JavaScript thread (methods documented so);
// I/O threads never touch it.
unsafe impl Sync for JsCell {}
unsafe impl Send for JsCell {}

/// A role's way to JavaScript.
pub(crate) struct RolePort {
    kind: u32,
    hub: Arc<Hub>,
    state: Mutex<State>,
    space: Condvar,
    closed: AtomicBool,
    zero_copy: usize,
    max_pending: usize,
    js: JsCell,
}

impl RolePort {
    /// A port (JavaScript thread): counted as open, so Node stays alive,
    /// until its release.
    fn new(env: sys::napi_env, hub: &Arc<Hub>, kind: u32, zero_copy: usize, max_pending: usize) -> Arc<RolePort> {
        hub.open(env);
        Arc::new(RolePort {
            kind,
            hub: hub.clone(),
            state: Mutex::new(State {
                batch: Batch::default(),
                pending: 0,
                queued: false,
                released: false,
                known: HashSet::new(),
                peer_ids: HashMap::new(),
                next_peer: 0,
            }),
            space: Condvar::new(),
            closed: AtomicBool::new(false),
            zero_copy,
            max_pending: max_pending.max(1),
            js: JsCell(RefCell::new(JsSide { obj: ptr::null_mut(), open: true, close_waiters: Vec::new(), objs: HashMap::new() })),
        })
    }

    /// Gives the port its owner object (JavaScript thread, right after
    /// `new`).
    fn attach(&self, env: sys::napi_env, obj: sys::napi_value) {
        let mut js = self.js.0.borrow_mut();
        if js.obj.is_null() && js.open {
            unsafe { sys::napi_create_reference(env, obj, 1, &mut js.obj) };
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs on an I/O thread: `f` appends records and returns the payload
    /// bytes; the I/O thread pauses while too much waits for JavaScript.
    fn push(self: &Arc<Self>, f: impl FnOnce(&mut State, usize) -> usize) {
        if self.is_closed() {
            return;
        }
        let mut st = lock(&self.state);
        let bytes = f(&mut st, self.zero_copy) + RECORD_COST;
        st.pending += bytes;
        let over = st.pending > self.max_pending;
        self.schedule(st);
        if over {
            self.wait_for_room();
        }
    }

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

    fn schedule(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        if !st.queued {
            st.queued = true;
            drop(st);
            self.hub.schedule(self.clone());
        }
    }

    /// The role ended: `'close'` follows what waits.
    fn release(self: &Arc<Self>) {
        let mut st = lock(&self.state);
        st.released = true;
        self.schedule(st);
    }

    /// The owner closed the role: nothing more is delivered but `'close'`.
    fn close(self: &Arc<Self>) {
        self.closed.store(true, Ordering::Release);
        {
            let mut st = lock(&self.state);
            st.batch = Batch::default();
            st.pending = 0;
        }
        self.space.notify_all();
        self.release();
    }

    /// A promise for the release (JavaScript thread).
    fn closed_promise(&self, env: sys::napi_env) -> sys::napi_value {
        let mut js = self.js.0.borrow_mut();
        let (deferred, promise) = hub::new_promise(env);
        if js.open {
            js.close_waiters.push(deferred);
        } else {
            unsafe { sys::napi_resolve_deferred(env, deferred, js::undefined(env)) };
        }
        promise
    }

    /// The JavaScript object of a worker / peer id, if JavaScript has it.
    fn object(&self, env: sys::napi_env, id: u64) -> Option<sys::napi_value> {
        let js = self.js.0.borrow();
        let r = *js.objs.get(&id)?;
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_reference_value(env, r, &mut v) };
        (!v.is_null()).then_some(v)
    }

    fn take(&self) -> (Batch, bool) {
        let mut st = lock(&self.state);
        st.queued = false;
        let batch = std::mem::take(&mut st.batch);
        let was_over = st.pending > self.max_pending / 2;
        st.pending = 0;
        let released = std::mem::take(&mut st.released);
        drop(st);
        if was_over {
            self.space.notify_all();
        }
        (batch, released)
    }
}

impl Deliver for RolePort {
    unsafe fn deliver(self: Arc<Self>, env: sys::napi_env, dispatcher: sys::napi_value, errors: &mut Vec<sys::napi_value>) {
        let (mut batch, released) = self.take();
        let obj = {
            let js = self.js.0.borrow();
            let mut obj = ptr::null_mut();
            if !js.obj.is_null() {
                unsafe { sys::napi_get_reference_value(env, js.obj, &mut obj) };
            }
            obj
        };
        if obj.is_null() {
            unsafe { self.settle(env, released) };
            return;
        }
        if self.is_closed() {
            batch = Batch::default();
        }
        let und = js::undefined(env);
        if !batch.recs.is_empty() || released {
            let recs = if batch.recs.is_empty() { und } else { unsafe { hub::float64_array(env, &batch.recs) } };
            let arena = if batch.arena.is_empty() { und } else { unsafe { hub::buffer_copy(env, &batch.arena) } };
            let bigs = if batch.bigs.is_empty() {
                und
            } else {
                let mut arr = ptr::null_mut();
                unsafe { sys::napi_create_array_with_length(env, batch.bigs.len(), &mut arr) };
                for (i, b) in batch.bigs.drain(..).enumerate() {
                    unsafe { sys::napi_set_element(env, arr, i as u32, hub::external_bytes(env, b)) };
                }
                arr
            };
            let news = if batch.news.is_empty() { und } else { unsafe { self.make_objects(env, std::mem::take(&mut batch.news)) } };
            let mut kind = ptr::null_mut();
            let mut fl = ptr::null_mut();
            unsafe {
                sys::napi_create_uint32(env, self.kind, &mut kind);
                sys::napi_create_uint32(env, if released { F_RELEASED } else { 0 }, &mut fl);
            }
            let argv = [kind, obj, recs, arena, bigs, fl, news];
            let mut result = ptr::null_mut();
            let s = unsafe { sys::napi_call_function(env, und, dispatcher, argv.len(), argv.as_ptr(), &mut result) };
            if s == sys::Status::napi_pending_exception {
                let mut e = ptr::null_mut();
                unsafe { sys::napi_get_and_clear_last_exception(env, &mut e) };
                errors.push(e);
            }
        }
        {
            let mut js = self.js.0.borrow_mut();
            for id in batch.forget {
                if let Some(r) = js.objs.remove(&id) {
                    unsafe { sys::napi_delete_reference(env, r) };
                }
            }
        }
        unsafe { self.settle(env, released) };
    }
}

impl RolePort {
    /// Makes the JavaScript objects of new workers / peers: `[id, obj, …]`.
    unsafe fn make_objects(&self, env: sys::napi_env, news: Vec<(u64, Obj)>) -> sys::napi_value {
        let mut arr = ptr::null_mut();
        unsafe { sys::napi_create_array_with_length(env, news.len() * 2, &mut arr) };
        let e = Env::from_raw(env);
        let mut js = self.js.0.borrow_mut();
        for (i, (id, o)) in news.into_iter().enumerate() {
            let made = match o {
                Obj::Worker(w) => EngineWorker { w }.into_instance(&e).map(|i| i.value),
                Obj::Peer(p) => ResumePeer { p }.into_instance(&e).map(|i| i.value),
            };
            let Ok(v) = made else { continue };
            let mut r = ptr::null_mut();
            unsafe { sys::napi_create_reference(env, v, 1, &mut r) };
            if let Some(old) = js.objs.insert(id, r) {
                unsafe { sys::napi_delete_reference(env, old) };
            }
            let mut n = ptr::null_mut();
            unsafe {
                sys::napi_create_double(env, id as f64, &mut n);
                sys::napi_set_element(env, arr, (2 * i) as u32, n);
                sys::napi_set_element(env, arr, (2 * i + 1) as u32, v);
            }
        }
        arr
    }

    /// On release: settles `close()` promises, lets go of the objects and
    /// stops counting the role as open.
    unsafe fn settle(&self, env: sys::napi_env, released: bool) {
        let mut js = self.js.0.borrow_mut();
        if !released || !js.open {
            return;
        }
        js.open = false;
        for d in js.close_waiters.drain(..) {
            unsafe { sys::napi_resolve_deferred(env, d, js::undefined(env)) };
        }
        for (_, r) in js.objs.drain() {
            unsafe { sys::napi_delete_reference(env, r) };
        }
        if !js.obj.is_null() {
            unsafe { sys::napi_delete_reference(env, js.obj) };
            js.obj = ptr::null_mut();
        }
        drop(js);
        self.hub.close(env);
    }
}

// ----------------------------------------------------------------------
// Shared helpers

fn promise<'a>(env: &'a Env, p: sys::napi_value) -> Unknown<'a> {
    unsafe { Unknown::from_raw_unchecked(env.raw(), p) }
}

fn id_arg(env: sys::napi_env, v: Unknown<'_>) -> Result<u64> {
    js::get_id(env, v.raw()).ok_or_else(|| js::type_error(env, "a session id must be a non-negative integer (number or bigint)"))
}

fn id_value(env: &Env, id: u64) -> Unknown<'_> {
    let mut v = ptr::null_mut();
    unsafe {
        if id <= MAX_SAFE {
            sys::napi_create_double(env.raw(), id as f64, &mut v);
        } else {
            sys::napi_create_bigint_uint64(env.raw(), id, &mut v);
        }
        Unknown::from_raw_unchecked(env.raw(), v)
    }
}

fn data_arg(env: sys::napi_env, v: Unknown<'_>) -> Result<Bytes> {
    js::get_bytes_or_string(env, v.raw()).ok_or_else(|| js::type_error(env, "data must be a Buffer or a string"))
}

fn opt_string(env: sys::napi_env, v: Option<Unknown<'_>>, name: &str) -> Result<Option<String>> {
    match v.map(|v| v.raw()).filter(|v| !js::is_nullish(env, *v)) {
        Some(v) => Ok(Some(js::get_string(env, v).ok_or_else(|| js::type_error(env, &format!("{name} must be a string")))?)),
        None => Ok(None),
    }
}

fn opt_int(env: sys::napi_env, v: Option<Unknown<'_>>, name: &str) -> Result<Option<i64>> {
    match v.map(|v| v.raw()).filter(|v| !js::is_nullish(env, *v)) {
        Some(v) => Ok(Some(js::get_int(env, v).ok_or_else(|| js::type_error(env, &format!("{name} must be an integer")))?)),
        None => Ok(None),
    }
}

/// Throws a stream's refusal as an Error with a `code`.
fn stream_error(env: sys::napi_env, e: StreamError) -> Error {
    let (code, text) = match e {
        StreamError::WouldBlock => ("EAGAIN", "the send queue is full: nothing was sent; retry after 'drain'"),
        StreamError::Closed => ("ERR_CHANNEL_CLOSED", "the connection is closed"),
        StreamError::Ended => ("ERR_STREAM_ENDED", "this side already ended the session (close or error sent)"),
        StreamError::NoSession => ("ERR_NO_SESSION", "no such open session"),
    };
    js::throw(env, js::Kind::Error, code, text)
}

fn send_error(env: sys::napi_env, e: SendError) -> Error {
    stream_error(env, e.into())
}

fn millis(env: sys::napi_env, v: Option<f64>, name: &str) -> Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(Some(Duration::from_secs_f64(ms / 1000.0))),
        Some(ms) => Err(js::throw(
            env,
            js::Kind::RangeError,
            "ERR_OUT_OF_RANGE",
            &format!("options.{name} must be a number of milliseconds >= 0, got {ms}"),
        )),
    }
}

fn count(env: sys::napi_env, v: Option<f64>, name: &str) -> Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
        Some(n) => {
            Err(js::throw(env, js::Kind::RangeError, "ERR_OUT_OF_RANGE", &format!("options.{name} must be an integer >= 1, got {n}")))
        }
    }
}

fn errno_arg(env: sys::napi_env, v: Option<Unknown<'_>>) -> Result<i32> {
    Ok(opt_int(env, v, "errno")?.map_or(ECONNRESET, |n| n as i32))
}

/// Reads a role's own options object (undefined → defaults).
fn read_object<T: FromNapiValue + Default>(env: sys::napi_env, v: sys::napi_value) -> Result<T> {
    if js::is_nullish(env, v) {
        return Ok(T::default());
    }
    if js::type_of(env, v) != sys::ValueType::napi_object {
        return Err(js::type_error(env, "options must be an object"));
    }
    unsafe { T::from_napi_value(env, v) }.map_err(|e| js::type_error(env, &format!("bad options: {}", e.reason)))
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::V0 => "v0",
        Dialect::V1 => "v1",
    }
}

// ----------------------------------------------------------------------
// Worker

/// The keys of `WorkerStartOptions`: read by `startWorker()` itself, not by
/// the channel option table.
const WORKER_KEYS: &[&str] = &["argv", "uuid", "endpoint", "app", "heartbeatInterval", "disownTimeout"];

/// Options of `startWorker()` (together with the `ChannelOptions` limits:
/// `maxPending`, `zeroCopyThreshold`, `highWaterMark`, …). Times are in
/// milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct WorkerStartOptions {
    /// The runtime's arguments: `--app NAME --uuid UUID --endpoint PATH
    /// [--protocol 1] [--locator host:port,…]` (absent `--protocol` is v0).
    /// Default: `process.argv.slice(2)` unless `uuid` and `endpoint` are
    /// given.
    pub argv: Option<Vec<String>>,
    /// The uuid to hand-shake with (instead of `argv`).
    pub uuid: Option<String>,
    /// The engine's socket (instead of `argv`): a path or `host:port`.
    pub endpoint: Option<String>,
    /// The app's name (instead of `argv`).
    pub app: Option<String>,
    /// How often to send a heartbeat. Default 5000.
    pub heartbeat_interval: Option<f64>,
    /// Disown (close with `ETIMEDOUT`) after this long without a control
    /// frame from the engine. Default 30000.
    pub disown_timeout: Option<f64>,
}

/// The app side of the engine protocol, made by `startWorker()`. It
/// connects to the engine, sends the handshake and heartbeats, disowns
/// itself when the engine falls silent, and answers the engine's sessions.
/// It is an `EventEmitter`; events, on the JavaScript thread in wire order:
///
/// * `'connect' ()` — connected; the handshake and first heartbeat are sent.
/// * `'invoke' (sid, event: string)` — the engine opened a session.
/// * `'chunk' (sid, data: Buffer)` — request data.
/// * `'choke' (sid)` — the engine's direction of the session ended (v0
///   `choke`, v1 `close`).
/// * `'sessionError' (sid, { category, code, message })` — the engine
///   failed the session (`category` is `undefined` in v0).
/// * `'heartbeat' ()` — the engine answered a heartbeat.
/// * `'terminate' (code, reason)` — the engine asks the worker to stop:
///   finish or fail the open sessions, then call `terminate()`.
/// * `'disown' ()` — the engine said nothing for `disownTimeout`: the
///   connection is closed; `'disconnected'` (`ETIMEDOUT`) follows.
/// * `'drain' ()` — a send refused with `EAGAIN` may be retried.
/// * `'disconnected' (err, sessions)` — the connection ended: `err.code` is
///   the errno name (`'ESHUTDOWN'` when the engine closed it, `'ETIMEDOUT'`
///   after a disown, `'ECONNREFUSED'`, …), `sessions` the ids still open
///   (failed).
/// * `'close' ()` — the worker is finished (after `'disconnected'`, or
///   once `terminate()`/`close()` was called); nothing follows.
///
/// A worker never emits `'error'`. While it is open it keeps Node running.
#[napi]
pub struct Worker {
    core: CoreWorker,
    port: Arc<RolePort>,
}

#[napi]
impl Worker {
    /// The uuid sent in the handshake.
    #[napi(getter)]
    pub fn uuid(&self) -> String {
        self.core.options().uuid.clone()
    }

    /// The app's name (`--app`; empty if none was given).
    #[napi(getter)]
    pub fn app(&self) -> String {
        self.core.options().app.clone()
    }

    /// The engine's endpoint.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.options().endpoint)
    }

    /// The Locator endpoints (`--locator`).
    #[napi(getter)]
    pub fn locator(&self) -> Vec<String> {
        self.core.options().locator.clone()
    }

    /// The dialect: `'v0'` or `'v1'`.
    #[napi(getter, ts_return_type = "'v0' | 'v1'")]
    pub fn dialect(&self) -> &'static str {
        dialect_name(self.core.dialect())
    }

    /// Sessions open in at least one direction.
    #[napi(getter)]
    pub fn open_sessions(&self) -> u32 {
        self.core.open_sessions() as u32
    }

    /// Sends a reply chunk on session `sid` (v0 `chunk`, v1 `write`); a
    /// string goes as its UTF-8 bytes. Like every send of the roles it
    /// throws an Error with a `code` when refused: `'EAGAIN'` (the send
    /// queue is full; nothing was sent; `'drain'` follows),
    /// `'ERR_CHANNEL_CLOSED'`, `'ERR_STREAM_ENDED'` (this side already ended
    /// the session), `'ERR_NO_SESSION'`.
    #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
    pub fn write(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let d = data_arg(e, data)?;
        self.core.stream(s).write(&d).map_err(|err| stream_error(e, err))
    }

    /// Ends this side of session `sid` (v0 `choke`, v1 `close`).
    #[napi(ts_args_type = "sid: number | bigint")]
    pub fn end(&self, env: Env, sid: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.core.stream(s).close().map_err(|err| stream_error(e, err))
    }

    /// Fails session `sid`: v1 `error([category, code], message)` (category
    /// 42, the frameworks' own, unless given); v0 `error(code, message)`
    /// then the `choke` the v0 engine needs. Nothing may follow on it.
    #[napi(ts_args_type = "sid: number | bigint, code: number, message?: string, category?: number")]
    pub fn fail(&self, env: Env, sid: Unknown<'_>, code: i64, message: Option<Unknown<'_>>, category: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let m = opt_string(e, message, "message")?.unwrap_or_default();
        let st = self.core.stream(s);
        let r = match opt_int(e, category, "category")? {
            Some(c) => st.error_with_category(c, code, &m),
            None => st.error(code, &m),
        };
        r.map_err(|err| stream_error(e, err))
    }

    /// Sends `terminate(code, reason)` to the engine (v0 codes: 1 normal,
    /// the default; 2 abnormal) and closes the connection once what is
    /// queued is written. Only `'close'` follows; the promise resolves then.
    #[napi(ts_args_type = "code?: number, reason?: string", ts_return_type = "Promise<void>")]
    pub fn terminate<'a>(&self, env: &'a Env, code: Option<Unknown<'_>>, reason: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let e = env.raw();
        let c = opt_int(e, code, "code")?.unwrap_or(1);
        let r = opt_string(e, reason, "reason")?.unwrap_or_default();
        if !self.port.is_closed() {
            self.core.terminate(c, &r);
            self.port.close();
        }
        Ok(promise(env, self.port.closed_promise(e)))
    }

    /// Closes the connection gracefully without a terminate; only `'close'`
    /// follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        if !self.port.is_closed() {
            self.core.close();
            self.port.close();
        }
        promise(env, self.port.closed_promise(env.raw()))
    }
}

fn worker_event(st: &mut State, zero_copy: usize, ev: WorkerEvent) -> (usize, bool) {
    let b = &mut st.batch;
    let mut n = 0;
    match ev {
        WorkerEvent::Connected => b.recs.push(hub::R_CONNECT),
        WorkerEvent::Invoke { stream, event, .. } => n = b.message(stream.session(), Message::Invoke { event }, zero_copy),
        WorkerEvent::Chunk { session, data } => n = b.message(session, Message::Chunk { data }, zero_copy),
        WorkerEvent::Error { session, category, code, message } => n = b.error(session, category, code, message.as_deref()),
        WorkerEvent::Close { session } => b.id(hub::R_CHOKE, session),
        WorkerEvent::Heartbeat => b.id(hub::R_HEARTBEAT, 0),
        WorkerEvent::Terminate { code, reason } => {
            b.terminate(0, code, &reason);
            n = reason.len();
        }
        WorkerEvent::Disown => b.recs.push(R_DISOWN),
        WorkerEvent::Drain => b.recs.push(hub::R_DRAIN),
        WorkerEvent::Disconnected { errno, sessions } => {
            b.disconnected(errno, &sessions);
            return (8 * sessions.len(), true);
        }
    }
    (n, false)
}

/// Starts a worker (see `Worker`): reads the runtime's arguments from
/// `options.argv` (default `process.argv.slice(2)`) unless `uuid` and
/// `endpoint` are given, and connects at once; listen for `'connect'`.
/// Throws a TypeError (code `ERR_INVALID_ARG_VALUE`) for unusable
/// arguments.
#[napi(ts_args_type = "options?: WorkerStartOptions & ChannelOptions")]
pub fn start_worker<'a>(env: &'a Env, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Worker>> {
    let e = env.raw();
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let wo: WorkerStartOptions = read_object(e, raw)?;
    let co = options::read_options(e, raw, WORKER_KEYS)?;
    let bad = |m: String| js::throw(e, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &m);
    let mut o = match (&wo.uuid, &wo.endpoint) {
        (Some(u), Some(ep)) => {
            let ep = Endpoint::parse(ep).ok_or_else(|| bad(format!("not an endpoint: {ep:?}")))?;
            let mut o = WorkerOptions::new(u, ep, co.dialect().unwrap_or(Dialect::V1));
            o.app = wo.app.clone().unwrap_or_default();
            o
        }
        _ => {
            let argv = wo.argv.clone().unwrap_or_default();
            let mut o = WorkerOptions::from_args(&argv).map_err(|err| bad(err.to_string()))?;
            if let Some(d) = co.dialect() {
                o.dialect = d;
            }
            o
        }
    };
    if let Some(d) = millis(e, wo.heartbeat_interval, "heartbeatInterval")? {
        o.heartbeat_interval = d;
    }
    if let Some(d) = millis(e, wo.disown_timeout, "disownTimeout")? {
        o.disown_timeout = d;
    }
    let r = co.resolve(o.dialect, Some(Role::Worker));
    o.channel = r.config;
    let hub = hub::hub(e)?;
    let port = RolePort::new(e, &hub, K_WORKER, r.zero_copy, o.channel.max_pending);
    let p = port.clone();
    let core = match CoreWorker::connect(o, move |_: &CoreWorker, ev: WorkerEvent| {
        let mut last = false;
        p.push(|st, zc| {
            let (n, l) = worker_event(st, zc, ev);
            last = l;
            n
        });
        if last {
            p.release();
        }
    }) {
        Ok(w) => w,
        Err(err) => {
            port.close();
            return Err(js::throw_errno(e, sluice_core::net::errno_of(&err)));
        }
    };
    let inst = Worker { core, port: port.clone() }.into_instance(env)?;
    port.attach(e, inst.value);
    Ok(inst)
}

// ----------------------------------------------------------------------
// Engine

/// The keys of `EngineListenOptions` (read by `listenEngine()` itself).
const ENGINE_KEYS: &[&str] = &["handshakeTimeout", "heartbeatTimeout", "terminateTimeout", "uuids"];

/// Options of `listenEngine()` (together with the `ChannelOptions` of the
/// workers' channels; the dialect defaults to `'v1'`). Times are in
/// milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct EngineListenOptions {
    /// Cut a worker whose handshake has not come this long after it
    /// connected. Default 5000.
    pub handshake_timeout: Option<f64>,
    /// Cut a worker that has sent nothing for this long (`ETIMEDOUT`).
    /// Default 30000.
    pub heartbeat_timeout: Option<f64>,
    /// After `worker.terminate()`, cut a worker that has not closed within
    /// this long. Default 10000.
    pub terminate_timeout: Option<f64>,
    /// Accepted uuids; others are disconnected (`'rejected'`). Default: any.
    pub uuids: Option<Vec<String>>,
}

/// The runtime side of the engine protocol, made by `listenEngine()`: it
/// accepts workers, checks their uuids, answers heartbeats and cuts silent
/// workers. It is an `EventEmitter`; each worker is an `EngineWorker`
/// (the same object in every event about it):
///
/// * `'handshake' (worker)` — a worker with an accepted uuid: invoke it.
/// * `'rejected' (uuid)` — a handshake with an unknown uuid (disconnected).
/// * `'heartbeat' (worker)` — a heartbeat (already answered).
/// * `'chunk' (worker, sid, data: Buffer)` — reply data.
/// * `'choke' (worker, sid)` — the worker's direction of a session ended.
/// * `'sessionError' (worker, sid, { category, code, message })`.
/// * `'terminate' (worker, code, reason)` — the worker sent terminate.
/// * `'drain' (worker)` — a send refused with `EAGAIN` may be retried.
/// * `'gone' (worker, err)` — its connection ended (the last event about
///   it): `err.code` `'ESHUTDOWN'` when it closed, `'ETIMEDOUT'` when cut
///   for silence, … (also for workers that never hand-shook: `uuid` null).
/// * `'close' ()` — after `close()`; nothing follows.
///
/// An engine never emits `'error'`. While open it keeps Node running.
#[napi]
pub struct Engine {
    core: CoreEngine,
    port: Arc<RolePort>,
}

#[napi]
impl Engine {
    /// Where it listens: `'host:port'` (with the actual port) or the path.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.local())
    }

    /// The workers that have hand-shaken and not gone, oldest first (those
    /// already announced by an event).
    #[napi(ts_return_type = "EngineWorker[]")]
    pub fn workers(&self, env: Env) -> Result<Vec<Unknown<'_>>> {
        let e = env.raw();
        Ok(self
            .core
            .workers()
            .iter()
            .filter_map(|w| self.port.object(e, w.id()))
            .map(|v| unsafe { Unknown::from_raw_unchecked(e, v) })
            .collect())
    }

    /// Stops listening and closes every worker connection; only `'close'`
    /// follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        if !self.port.is_closed() {
            self.core.close();
            self.port.close();
        }
        promise(env, self.port.closed_promise(env.raw()))
    }
}

/// A worker connected to an `Engine` (from its events). Sessions are
/// numbers (BigInt above 2^53 − 1); sends throw as `Worker.write` does.
#[napi]
pub struct EngineWorker {
    w: WorkerRef,
}

#[napi]
impl EngineWorker {
    /// A number unique to this connection within the process.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.w.id() as f64
    }

    /// The uuid of its handshake (`null` before it).
    #[napi(getter)]
    pub fn uuid(&self) -> Option<String> {
        self.w.uuid()
    }

    /// Sessions open in at least one direction.
    #[napi(getter)]
    pub fn open_sessions(&self) -> u32 {
        self.w.open_sessions() as u32
    }

    /// Opens a session for `event` and returns its id; send request chunks
    /// with `write`, end them with `end`. Throws `ERR_CHANNEL_CLOSED` before
    /// the handshake or after the worker is gone.
    #[napi(ts_return_type = "number | bigint")]
    pub fn invoke<'a>(&self, env: &'a Env, event: String) -> Result<Unknown<'a>> {
        let s = self.w.invoke(&event).map_err(|err| stream_error(env.raw(), err))?;
        Ok(id_value(env, s.session()))
    }

    /// Sends a request chunk on session `sid`.
    #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
    pub fn write(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let d = data_arg(e, data)?;
        self.w.stream(s).write(&d).map_err(|err| stream_error(e, err))
    }

    /// Ends the request of session `sid` (v0 `choke`, v1 `close`).
    #[napi(ts_args_type = "sid: number | bigint")]
    pub fn end(&self, env: Env, sid: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.w.stream(s).close().map_err(|err| stream_error(e, err))
    }

    /// Fails session `sid` (v1 category 42; v0 error then choke).
    #[napi(ts_args_type = "sid: number | bigint, code: number, message?: string")]
    pub fn fail(&self, env: Env, sid: Unknown<'_>, code: i64, message: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let m = opt_string(e, message, "message")?.unwrap_or_default();
        self.w.stream(s).error(code, &m).map_err(|err| stream_error(e, err))
    }

    /// Sends `terminate(code, reason)` (default 1, `''`); the worker should
    /// answer with its own (`'terminate'`) and close (`'gone'`); after the
    /// terminate timeout it is cut (`ETIMEDOUT`).
    #[napi(ts_args_type = "code?: number, reason?: string")]
    pub fn terminate(&self, env: Env, code: Option<Unknown<'_>>, reason: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let c = opt_int(e, code, "code")?.unwrap_or(1);
        let r = opt_string(e, reason, "reason")?.unwrap_or_default();
        self.w.terminate(c, &r).map_err(|err| stream_error(e, err))
    }

    /// Disconnects the worker at once; `'gone'` follows with this errno
    /// (a Linux number, default 104 `ECONNRESET`).
    #[napi(ts_args_type = "errno?: number")]
    pub fn kill(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.w.kill(errno_arg(env.raw(), errno)?);
        Ok(())
    }
}

fn engine_event(st: &mut State, zc: usize, ev: EngineEvent) -> usize {
    let about = |st: &mut State, w: &WorkerRef| {
        let w2 = w.clone();
        st.about(w.id(), move || Obj::Worker(w2));
    };
    match ev {
        EngineEvent::Handshake { worker } => {
            about(st, &worker);
            let u = worker.uuid().unwrap_or_default();
            st.batch.message(0, Message::Handshake { uuid: Bytes::from(u) }, zc)
        }
        EngineEvent::Rejected { uuid } => {
            st.batch.recs.push(R_REJECTED);
            st.batch.text(uuid.as_bytes());
            uuid.len()
        }
        EngineEvent::Heartbeat { worker } => {
            about(st, &worker);
            st.batch.id(hub::R_HEARTBEAT, 0);
            0
        }
        EngineEvent::Chunk { worker, session, data } => {
            about(st, &worker);
            st.batch.message(session, Message::Chunk { data }, zc)
        }
        EngineEvent::Error { worker, session, category, code, message } => {
            about(st, &worker);
            st.batch.error(session, category, code, message.as_deref())
        }
        EngineEvent::Close { worker, session } => {
            about(st, &worker);
            st.batch.id(hub::R_CHOKE, session);
            0
        }
        EngineEvent::Terminate { worker, code, reason } => {
            about(st, &worker);
            st.batch.terminate(0, code, &reason);
            reason.len()
        }
        EngineEvent::Drain { worker } => {
            about(st, &worker);
            st.batch.recs.push(hub::R_DRAIN);
            0
        }
        EngineEvent::Gone { worker, errno } => {
            about(st, &worker);
            st.batch.disconnected(errno, &[]);
            st.forget(worker.id());
            0
        }
    }
}

/// Listens for workers on `endpoint` (a Unix socket path, as the runtime
/// does, or `'host:port'`) and returns the `Engine`. Throws an Error with
/// the errno's `code` (`'EADDRINUSE'`, …) if it cannot.
#[napi(
    ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: EngineListenOptions & ChannelOptions"
)]
pub fn listen_engine<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Engine>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let eo: EngineListenOptions = read_object(e, raw)?;
    let co = options::read_options(e, raw, ENGINE_KEYS)?;
    let r = co.resolve_as(Dialect::V1, Role::Engine);
    let mut o = EngineOptions::new(ep, r.config.dialect);
    if let Some(d) = millis(e, eo.handshake_timeout, "handshakeTimeout")? {
        o.handshake_timeout = d;
    }
    if let Some(d) = millis(e, eo.heartbeat_timeout, "heartbeatTimeout")? {
        o.heartbeat_timeout = d;
    }
    if let Some(d) = millis(e, eo.terminate_timeout, "terminateTimeout")? {
        o.terminate_timeout = d;
    }
    o.uuids = eo.uuids.map(|v| v.into_iter().collect());
    o.channel = r.config;
    let hub = hub::hub(e)?;
    let port = RolePort::new(e, &hub, K_ENGINE, r.zero_copy, o.channel.max_pending);
    let p = port.clone();
    let core = match CoreEngine::bind(o, move |_: &CoreEngine, ev: EngineEvent| p.push(|st, zc| engine_event(st, zc, ev))) {
        Ok(x) => x,
        Err(err) => {
            port.close();
            return Err(js::throw_errno(e, sluice_core::net::errno_of(&err)));
        }
    };
    let inst = Engine { core, port: port.clone() }.into_instance(env)?;
    port.attach(e, inst.value);
    Ok(inst)
}

// ----------------------------------------------------------------------
// Session

/// Reconnection delays (milliseconds): `initial × multiplier^attempt`, at
/// most `max`, each spread by ± `jitter` (a fraction, 0 to 1).
#[napi(object)]
#[derive(Default, Clone)]
pub struct BackoffOptions {
    /// The first delay. Default 100.
    pub initial: Option<f64>,
    /// The longest delay before jitter. Default 10000.
    pub max: Option<f64>,
    /// Growth per failed attempt. Default 2.
    pub multiplier: Option<f64>,
    /// Spread. Default 0.2.
    pub jitter: Option<f64>,
}

/// Heartbeats and the silence after which the peer counts as gone
/// (milliseconds).
#[napi(object)]
#[derive(Clone)]
pub struct LivenessOptions {
    /// Send a heartbeat (or, with resume, a ping) this often.
    pub interval: f64,
    /// Cut the connection (`ETIMEDOUT`) and reconnect after this long
    /// without anything received.
    pub timeout: f64,
}

/// Bounds of the replay buffer and how often acknowledgements go out.
#[napi(object)]
#[derive(Default, Clone)]
pub struct ResumeTuning {
    /// Sends are refused (`EAGAIN`) while this many bytes wait for the
    /// peer's acknowledgement. Default 8 MiB.
    pub max_unacked: Option<f64>,
    /// Acknowledge after this many frames delivered... Default 256.
    pub ack_every: Option<f64>,
    /// ...or this many bytes. Default 1 MiB.
    pub ack_bytes: Option<f64>,
}

/// The keys of `SessionOpenOptions` (read by `openSession()` itself).
const SESSION_KEYS: &[&str] = &["backoff", "liveness", "resume"];

/// Options of `openSession()` (together with the `ChannelOptions` of its
/// connections: dialect, role, limits).
#[napi(object)]
#[derive(Default)]
pub struct SessionOpenOptions {
    /// Delays between attempts.
    pub backoff: Option<BackoffOptions>,
    /// Heartbeats and a liveness timeout; default: rely on the socket.
    pub liveness: Option<LivenessOptions>,
    /// Resume after a cut without loss or duplication (the peer must be a
    /// `ResumeServer`): `true` for the defaults, or the tuning. Default
    /// off: frames in flight when a connection drops are lost.
    #[napi(ts_type = "boolean | ResumeTuning")]
    pub resume: Option<Either<bool, ResumeTuning>>,
}

fn resume_tuning(env: sys::napi_env, t: &ResumeTuning) -> Result<ResumeOptions> {
    let mut r = ResumeOptions::default();
    if let Some(n) = count(env, t.max_unacked, "resume.maxUnacked")? {
        r.max_unacked = n;
    }
    if let Some(n) = count(env, t.ack_every, "resume.ackEvery")? {
        r.ack_every = n as u64;
    }
    if let Some(n) = count(env, t.ack_bytes, "resume.ackBytes")? {
        r.ack_bytes = n;
    }
    Ok(r)
}

/// A client connection that stays up, made by `openSession()`: it
/// reconnects with backoff, fails over between endpoints, optionally
/// checks liveness and resumes without loss. It is an `EventEmitter`:
///
/// * `'connect' (endpoint, resumed)` — a connection is up (`resumed`: the
///   stream goes on where it was).
/// * `'disconnected' (err)` — the connection was lost (`err.code` the
///   errno name, `'ETIMEDOUT'` for a silent peer); a reconnection follows.
/// * `'reconnectAttempt' (attempt, endpoint, delayMs)` — the next attempt
///   (1, 2, …) is made after `delayMs`.
/// * the peer's messages as on a `Connection`: `'invoke' (sid, event)`,
///   `'chunk' (sid, data)`, `'choke' (sid)`, `'sessionError' (sid, {…})`,
///   `'heartbeat' ()`, `'terminate' (code, reason)`, `'handshake' (uuid)`,
///   `'frame' (sid, type, args: Buffer)`.
/// * `'drain' ()` — a send refused with `EAGAIN` may be retried.
/// * `'close' ()` — after `stop()`; nothing follows.
///
/// A session never emits `'error'`. Until `stop()` it keeps Node running.
#[napi]
pub struct Session {
    core: CoreSession,
    port: Arc<RolePort>,
}

#[napi]
impl Session {
    /// Whether a connection is up and usable now.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.core.is_connected()
    }

    /// Resume: frames delivered so far (0 without resume).
    #[napi(getter)]
    pub fn received(&self) -> f64 {
        self.core.received() as f64
    }

    /// The id for a new session this side opens: one above every id sent
    /// or received, across connections.
    #[napi(ts_return_type = "number | bigint")]
    pub fn next_session<'a>(&self, env: &'a Env) -> Unknown<'a> {
        id_value(env, self.core.next_session())
    }

    fn put(&self, env: sys::napi_env, sid: u64, m: Message) -> Result<()> {
        self.core.send(sid, &m).map_err(|err| send_error(env, err))
    }

    /// Sends a chunk. Without resume it throws `ERR_CHANNEL_CLOSED` while
    /// no connection is up; with resume it is kept and sent (again) until
    /// the peer has it. `EAGAIN`: nothing was sent, retry after `'drain'`.
    #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
    pub fn send_chunk(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let d = data_arg(e, data)?;
        self.core.send_chunk(s, &d).map_err(|err| send_error(e, err))
    }

    /// Ends this side of session `sid` (v0 `choke`, v1 `close`).
    #[napi(ts_args_type = "sid: number | bigint")]
    pub fn send_choke(&self, env: Env, sid: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, s, Message::Choke)
    }

    /// Opens session `sid` with `invoke(event)`; take `sid` from
    /// `nextSession()`.
    #[napi(ts_args_type = "sid: number | bigint, event: string")]
    pub fn send_invoke(&self, env: Env, sid: Unknown<'_>, event: String) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, s, Message::Invoke { event: Bytes::from(event) })
    }

    /// Fails session `sid` (`category` for v1, default 42).
    #[napi(ts_args_type = "sid: number | bigint, code: number, message?: string, category?: number")]
    pub fn send_error(
        &self,
        env: Env,
        sid: Unknown<'_>,
        code: i64,
        message: Option<Unknown<'_>>,
        category: Option<Unknown<'_>>,
    ) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let m = opt_string(e, message, "message")?.map(Bytes::from);
        let c = opt_int(e, category, "category")?.unwrap_or(sluice_core::wire::message::FRAMEWORK_CATEGORY);
        self.put(e, s, Message::Error { category: Some(c), code, message: m })
    }

    /// Sends a generic frame: `args` is the msgpack encoding of the
    /// arguments array (as `'frame'` events give it).
    #[napi(ts_args_type = "sid: number | bigint, type: number, args: Uint8Array")]
    pub fn send_frame(&self, env: Env, sid: Unknown<'_>, ty: i64, args: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let a = frame_args(e, args)?;
        self.core.send_frame(s, ty.max(0) as u64, &a, &[]).map_err(|err| send_error(e, err))
    }

    /// Cuts the current connection as if it had failed with `errno` (a
    /// Linux number, default 104 `ECONNRESET`); the session reconnects (and
    /// resumes) as after any loss.
    #[napi(ts_args_type = "errno?: number")]
    pub fn disconnect(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.core.disconnect(errno_arg(env.raw(), errno)?);
        Ok(())
    }

    /// Stops for good: no more reconnections, the connection is closed
    /// gracefully; only `'close'` follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'a>(&self, env: &'a Env) -> Unknown<'a> {
        if !self.port.is_closed() {
            self.core.stop();
            self.port.close();
        }
        promise(env, self.port.closed_promise(env.raw()))
    }
}

fn frame_args(env: sys::napi_env, v: Unknown<'_>) -> Result<Args> {
    let b = js::get_bytes(env, v.raw()).ok_or_else(|| js::type_error(env, "args must be a Buffer (a msgpack array)"))?;
    Args::from_raw(Bytes::copy_from_slice(b))
        .map_err(|_| js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", "args must be the msgpack encoding of one array"))
}

fn session_event(st: &mut State, zc: usize, ev: SessionEvent) -> usize {
    let b = &mut st.batch;
    match ev {
        SessionEvent::Connected { endpoint, resumed } => {
            let s = endpoint_string(&endpoint);
            b.recs.extend_from_slice(&[R_CONNECTED, resumed as u8 as f64]);
            b.text(s.as_bytes());
            s.len()
        }
        SessionEvent::Disconnected { errno } => {
            b.disconnected(errno, &[]);
            0
        }
        SessionEvent::ReconnectAttempt { attempt, endpoint, delay } => {
            let s = endpoint_string(&endpoint);
            b.recs.extend_from_slice(&[R_RECONNECT, attempt as f64, delay.as_secs_f64() * 1000.0]);
            b.text(s.as_bytes());
            s.len()
        }
        SessionEvent::Message { session, message, .. } => b.message(session, message, zc),
        SessionEvent::Frame(f) => b.frame(f, zc),
        SessionEvent::Drain => {
            b.recs.push(hub::R_DRAIN);
            0
        }
    }
}

fn read_endpoints(env: sys::napi_env, v: sys::napi_value) -> Result<Vec<Endpoint>> {
    let mut is_array = false;
    unsafe { sys::napi_is_array(env, v, &mut is_array) };
    if !is_array {
        return Ok(vec![options::read_endpoint(env, v)?]);
    }
    let mut n = 0;
    unsafe { sys::napi_get_array_length(env, v, &mut n) };
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut el = ptr::null_mut();
        unsafe { sys::napi_get_element(env, v, i, &mut el) };
        out.push(options::read_endpoint(env, el)?);
    }
    if out.is_empty() {
        return Err(js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", "a session needs at least one endpoint"));
    }
    Ok(out)
}

/// Opens a `Session` to `endpoints` (one endpoint or an array, tried in
/// order) and returns it at once; listen for `'connect'`. Options default
/// to dialect `'v1'` and role `'worker'` (typed messages), like
/// `connect()`.
#[napi(
    ts_args_type = "endpoints: string | { host?: string, port: number } | { path: string } | Array<string | { host?: string, port: number } | { path: string }>, options?: SessionOpenOptions & ChannelOptions"
)]
pub fn open_session<'a>(env: &'a Env, endpoints: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Session>> {
    let e = env.raw();
    let eps = read_endpoints(e, endpoints.raw())?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let so: SessionOpenOptions = read_object(e, raw)?;
    let co = options::read_options(e, raw, SESSION_KEYS)?;
    let r = co.resolve(Dialect::V1, Some(Role::Worker));
    let max_pending = r.config.max_pending;
    let mut o = SessionOptions::new(eps, r.config);
    if let Some(b) = &so.backoff {
        let mut k = Backoff::default();
        if let Some(d) = millis(e, b.initial, "backoff.initial")? {
            k.initial = d;
        }
        if let Some(d) = millis(e, b.max, "backoff.max")? {
            k.max = d;
        }
        if let Some(m) = b.multiplier {
            k.multiplier = m;
        }
        if let Some(j) = b.jitter {
            k.jitter = j;
        }
        o.backoff = k;
    }
    if let Some(l) = &so.liveness {
        let interval = millis(e, Some(l.interval), "liveness.interval")?.unwrap_or_default();
        let timeout = millis(e, Some(l.timeout), "liveness.timeout")?.unwrap_or_default();
        o.liveness = Some(Liveness { interval, timeout });
    }
    match &so.resume {
        Some(Either::A(b)) => o.resume = b.then(ResumeOptions::default),
        Some(Either::B(t)) => o.resume = Some(resume_tuning(e, t)?),
        None => {}
    }
    let hub = hub::hub(e)?;
    let port = RolePort::new(e, &hub, K_SESSION, r.zero_copy, max_pending);
    let p = port.clone();
    let core = match CoreSession::connect(o, move |_: &CoreSession, ev: SessionEvent| p.push(|st, zc| session_event(st, zc, ev))) {
        Ok(x) => x,
        Err(err) => {
            port.close();
            return Err(js::throw_errno(e, sluice_core::net::errno_of(&err)));
        }
    };
    let inst = Session { core, port: port.clone() }.into_instance(env)?;
    port.attach(e, inst.value);
    Ok(inst)
}

// ----------------------------------------------------------------------
// ResumeServer

/// The keys of `ResumeListenOptions` (read by `listenResume()` itself).
const RESUME_KEYS: &[&str] = &["resume", "peerTimeout", "helloTimeout"];

/// Options of `listenResume()` (together with the `ChannelOptions` of the
/// accepted connections). Times are in milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct ResumeListenOptions {
    /// Replay buffer bounds and acknowledgement rate.
    pub resume: Option<ResumeTuning>,
    /// Forget a peer whose connection has been gone this long
    /// (`'peerGone'`). Default 60000.
    pub peer_timeout: Option<f64>,
    /// Cut connections whose first frame is not a hello within this long.
    /// Default 10000.
    pub hello_timeout: Option<f64>,
}

/// The server side of resumable sessions, made by `listenResume()`. Each
/// client is a `ResumePeer` (the same object across its connections and in
/// every event about it). It is an `EventEmitter`:
///
/// * `'peerConnected' (peer, resumed)` — a peer connected (`resumed`: a
///   known one, its stream goes on).
/// * `'peerDisconnected' (peer, err)` — its connection ended; its stream
///   waits for it until `peerTimeout`.
/// * `'peerGone' (peer)` — it did not come back in time: forgotten.
/// * the peer's messages, the peer first: `'invoke' (peer, sid, event)`,
///   `'chunk' (peer, sid, data)`, `'choke' (peer, sid)`, `'sessionError'
///   (peer, sid, {…})`, `'heartbeat' (peer)`, `'terminate' (peer, code,
///   reason)`, `'handshake' (peer, uuid)`, `'frame' (peer, sid, type,
///   args)`.
/// * `'drain' (peer)` — its replay buffer has room again.
/// * `'close' ()` — after `close()`; nothing follows.
///
/// It never emits `'error'`. While open it keeps Node running.
#[napi]
pub struct ResumeServer {
    core: CoreResumeServer,
    port: Arc<RolePort>,
}

#[napi]
impl ResumeServer {
    /// Where it listens.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.local())
    }

    /// The peers it remembers (those already announced by an event).
    #[napi(ts_return_type = "ResumePeer[]")]
    pub fn peers(&self, env: Env) -> Result<Vec<Unknown<'_>>> {
        let e = env.raw();
        let ids: Vec<u64> = {
            let st = lock(&self.port.state);
            self.core.peers().iter().filter_map(|p| st.peer_ids.get(p.token()).copied()).collect()
        };
        Ok(ids.into_iter().filter_map(|id| self.port.object(e, id)).map(|v| unsafe { Unknown::from_raw_unchecked(e, v) }).collect())
    }

    /// Stops listening, closes every connection and forgets every peer;
    /// only `'close'` follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        if !self.port.is_closed() {
            self.core.close();
            self.port.close();
        }
        promise(env, self.port.closed_promise(env.raw()))
    }
}

/// A client of a `ResumeServer`, across its connections. Sends are kept
/// until the peer acknowledges them and sent again after a reconnection;
/// they throw `EAGAIN` while the replay buffer is full (`'drain'` follows)
/// and `ERR_CHANNEL_CLOSED` once the peer is gone.
#[napi]
pub struct ResumePeer {
    p: Peer,
}

#[napi]
impl ResumePeer {
    /// The token the client chose.
    #[napi(getter)]
    pub fn token(&self) -> Buffer {
        Buffer::from(self.p.token().to_vec())
    }

    /// Frames received from the peer so far (across connections).
    #[napi(getter)]
    pub fn received(&self) -> f64 {
        self.p.received() as f64
    }

    /// Whether a connection is attached now.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.p.is_connected()
    }

    fn put(&self, env: sys::napi_env, sid: u64, m: Message) -> Result<()> {
        self.p.send_message(sid, &m, &[]).map_err(|err| send_error(env, err))
    }

    /// Queues a chunk on session `sid`.
    #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
    pub fn send_chunk(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let d = data_arg(e, data)?;
        self.p.send_chunk(s, &d).map_err(|err| send_error(e, err))
    }

    /// Ends this side of session `sid`.
    #[napi(ts_args_type = "sid: number | bigint")]
    pub fn send_choke(&self, env: Env, sid: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, s, Message::Choke)
    }

    /// Opens session `sid` with `invoke(event)`.
    #[napi(ts_args_type = "sid: number | bigint, event: string")]
    pub fn send_invoke(&self, env: Env, sid: Unknown<'_>, event: String) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, s, Message::Invoke { event: Bytes::from(event) })
    }

    /// Fails session `sid` (`category` for v1, default 42).
    #[napi(ts_args_type = "sid: number | bigint, code: number, message?: string, category?: number")]
    pub fn send_error(
        &self,
        env: Env,
        sid: Unknown<'_>,
        code: i64,
        message: Option<Unknown<'_>>,
        category: Option<Unknown<'_>>,
    ) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let m = opt_string(e, message, "message")?.map(Bytes::from);
        let c = opt_int(e, category, "category")?.unwrap_or(sluice_core::wire::message::FRAMEWORK_CATEGORY);
        self.put(e, s, Message::Error { category: Some(c), code, message: m })
    }

    /// Queues a generic frame (`args`: the msgpack encoding of an array).
    #[napi(ts_args_type = "sid: number | bigint, type: number, args: Uint8Array")]
    pub fn send_frame(&self, env: Env, sid: Unknown<'_>, ty: i64, args: Unknown<'_>) -> Result<()> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let a = frame_args(e, args)?;
        self.p.send_frame(s, ty.max(0) as u64, &a, &[]).map_err(|err| send_error(e, err))
    }

    /// Cuts the current connection (the peer reconnects and resumes);
    /// `'peerDisconnected'` follows with `errno` (default 104
    /// `ECONNRESET`).
    #[napi(ts_args_type = "errno?: number")]
    pub fn disconnect(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.p.disconnect(errno_arg(env.raw(), errno)?);
        Ok(())
    }
}

fn resume_event(st: &mut State, zc: usize, ev: ResumeEvent) -> usize {
    let about = |st: &mut State, p: &Peer| {
        let id = st.peer_id(p);
        let p2 = p.clone();
        st.about(id, move || Obj::Peer(p2));
        id
    };
    match ev {
        ResumeEvent::PeerConnected { peer, resumed } => {
            about(st, &peer);
            st.batch.recs.extend_from_slice(&[R_CONNECTED, resumed as u8 as f64, 0.0, 0.0]);
            0
        }
        ResumeEvent::PeerDisconnected { peer, errno } => {
            about(st, &peer);
            st.batch.disconnected(errno, &[]);
            0
        }
        ResumeEvent::PeerGone { peer } => {
            let id = about(st, &peer);
            st.batch.recs.push(R_PEER_GONE);
            st.peer_ids.remove(peer.token());
            st.forget(id);
            0
        }
        ResumeEvent::Message { peer, session, message, .. } => {
            about(st, &peer);
            st.batch.message(session, message, zc)
        }
        ResumeEvent::Frame { peer, frame } => {
            about(st, &peer);
            st.batch.frame(frame, zc)
        }
        ResumeEvent::Drain { peer } => {
            about(st, &peer);
            st.batch.recs.push(hub::R_DRAIN);
            0
        }
    }
}

/// Listens on `endpoint` for resumable `Session`s and returns the
/// `ResumeServer`. Options default to dialect `'v1'` and role `'worker'`
/// (typed messages), like the session's. Throws an Error with the errno's
/// `code` if it cannot listen.
#[napi(
    ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: ResumeListenOptions & ChannelOptions"
)]
pub fn listen_resume<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, ResumeServer>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let ro: ResumeListenOptions = read_object(e, raw)?;
    let co = options::read_options(e, raw, RESUME_KEYS)?;
    let r = co.resolve(Dialect::V1, Some(Role::Worker));
    let max_pending = r.config.max_pending;
    let mut o = ResumeServerOptions::new(ep, r.config);
    if let Some(t) = &ro.resume {
        o.resume = resume_tuning(e, t)?;
    }
    if let Some(d) = millis(e, ro.peer_timeout, "peerTimeout")? {
        o.peer_timeout = d;
    }
    if let Some(d) = millis(e, ro.hello_timeout, "helloTimeout")? {
        o.hello_timeout = d;
    }
    let hub = hub::hub(e)?;
    let port = RolePort::new(e, &hub, K_RESUME, r.zero_copy, max_pending);
    let p = port.clone();
    let core = match CoreResumeServer::bind(o, move |_: &CoreResumeServer, ev: ResumeEvent| p.push(|st, zc| resume_event(st, zc, ev))) {
        Ok(x) => x,
        Err(err) => {
            port.close();
            return Err(js::throw_errno(e, sluice_core::net::errno_of(&err)));
        }
    };
    let inst = ResumeServer { core, port: port.clone() }.into_instance(env)?;
    port.attach(e, inst.value);
    Ok(inst)
}
