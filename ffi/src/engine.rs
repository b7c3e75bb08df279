//! `sluice_engine`: the runtime side of the worker protocol — listens,
//! accepts workers, checks uuids, answers heartbeats, cuts silent workers,
//! invokes events and terminates workers.
//!
//! Workers are named by the id the engine gives each connection (a
//! `uint64_t` unique within the process); the handle keeps the id → worker
//! map, filled at the handshake and emptied at `on_gone`.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use sluice_core::host::{Event, IntoEvent, Source};
use sluice_core::roles::{Engine, EngineEvent, EngineOptions, WorkerRef};
use sluice_core::wire::Message;

use crate::guard::{
    arg, assign, bytes_arg, contain, copy_out, edit, endpoint_arg, free_box, guard, make, make_box, put, put_opt, refused, str_arg, Fail,
    Res, SLUICE_E_NO_SESSION,
};
use crate::handle::{self, call, object, Host, Tag};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::roles::{dialect_of, ms, sized_callbacks, text};
use crate::send;

/// How an engine listens and how patient it is. Made by
/// `sluice_engine_options_new`, released by `sluice_engine_options_free`;
/// `sluice_engine_bind` copies it. Not thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_engine_options {
    opts: EngineOptions,
}

/// Options for an engine listening on `endpoint` (a Unix socket path as
/// the runtime uses, or TCP; as for `sluice_server_bind`) for workers of
/// `dialect`, with the runtime's timeouts: handshake 5 s, heartbeat 30 s,
/// terminate 10 s; any uuid accepted. Into `*out` (NULL on failure).
/// Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (endpoint, dialect).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_new(endpoint: *const c_char, dialect: c_int, out: *mut *mut sluice_engine_options) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let ep = unsafe { endpoint_arg(endpoint, "endpoint") }?;
        Ok(sluice_engine_options { opts: EngineOptions::new(ep, dialect_of(dialect)?) })
    })
}

/// Releases engine options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_free(opts: *mut sluice_engine_options) {
    free_box(opts)
}

/// Cut (`ETIMEDOUT`) a worker whose handshake has not come this many
/// milliseconds after it connected (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_set_handshake_timeout_ms(opts: *mut sluice_engine_options, v: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.handshake_timeout, ms(v, "handshake timeout")))
}

/// Cut (`ETIMEDOUT`) a worker that has sent nothing for this many
/// milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_set_heartbeat_timeout_ms(opts: *mut sluice_engine_options, v: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.heartbeat_timeout, ms(v, "heartbeat timeout")))
}

/// After `sluice_engine_worker_terminate`, cut (`ETIMEDOUT`) a worker that
/// has not closed its connection within this many milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_set_terminate_timeout_ms(opts: *mut sluice_engine_options, v: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.terminate_timeout, ms(v, "terminate timeout")))
}

/// Accepts workers whose handshake names `uuid` (NUL-terminated UTF-8).
/// Once any uuid is added, only the added ones are accepted; the others get
/// `on_rejected` and are disconnected.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_add_uuid(opts: *mut sluice_engine_options, uuid: *const c_char) -> c_int {
    edit(opts, "opts", |o| {
        // SAFETY: NULL or a valid string, per the C contract.
        let u = unsafe { str_arg(uuid, "uuid") }?;
        o.opts.uuids.get_or_insert_with(HashSet::new).insert(u.to_string());
        Ok(())
    })
}

/// Sets the workers' channel settings from `channel` (copied; NULL: the
/// defaults); its dialect and role are ignored. Its delivery mode says how
/// the engine's callbacks run: inline on an I/O thread, or in
/// `sluice_engine_dispatch` (`SLUICE_DELIVERY_POLL`).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_options_set_channel(opts: *mut sluice_engine_options, channel: *const sluice_options) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.channel, Ok(sluice_options::for_accept(channel))))
}

// ---------------------------------------------------------------------------

/// A listening engine. Opaque. Functions on an engine may be called from
/// any thread and from inside any callback; only `sluice_engine_free` must
/// not race other calls on the same handle.
#[allow(non_camel_case_types)]
pub struct sluice_engine {
    tag: Tag,
    engine: OnceLock<Engine>,
    /// Handshaken workers by id, until their `on_gone`.
    workers: Mutex<HashMap<u64, WorkerRef>>,
}

/// An engine's callbacks. Set `size` to `sizeof(sluice_engine_callbacks)`;
/// any other member may be NULL. Copied by `sluice_engine_bind`.
///
/// **Sized callbacks.** The roles' callbacks structs (worker, engine,
/// session, resume server) begin with `size_t size`, set by the caller to
/// `sizeof` the struct; the library reads only that many bytes, so members
/// added at the end in later versions break nothing. A size larger than
/// this library's struct (a program built against a later header) is
/// accepted: the members it does not know are never called. A size smaller
/// than `sizeof(size_t)` is refused with `SLUICE_E_INVALID`.
/// (`sluice_callbacks` and `sluice_server_callbacks` predate this and keep
/// their layout: adding a field to them would break every program built
/// against them.)
///
/// **Thread.** With inline delivery (the default) callbacks run on a
/// library I/O thread; with poll delivery they run on the thread that calls
/// `sluice_engine_dispatch`. They never run concurrently with each other;
/// the events of one worker arrive in wire order, those of different
/// workers may interleave. Do not block in them.
///
/// **Arguments.** `worker` is the worker's id (pass it to the
/// `sluice_engine_worker_*` and `sluice_engine_stream_*` functions). Byte
/// strings are valid only until the callback returns
/// (`sluice_payload_retain` keeps a chunk).
///
/// **Calling back.** A callback may call any sluice function, including
/// `sluice_engine_close`/`_free` of its engine;
/// `sluice_engine_dispatch` from inside returns `SLUICE_E_REENTRANT`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_engine_callbacks {
    /// `sizeof(sluice_engine_callbacks)`, set by the caller.
    pub size: usize,
    /// A worker handshook with an accepted `uuid`: it can be invoked.
    pub on_handshake: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64, uuid: *const u8, len: usize)>,
    /// A worker's handshake named a uuid that is not accepted; it is
    /// disconnected (no `on_gone` follows for it).
    pub on_rejected: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, uuid: *const u8, len: usize)>,
    /// A worker's heartbeat (already answered).
    pub on_heartbeat: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64)>,
    /// Reply data on `session`; `payload` as in `sluice_worker_callbacks`.
    pub on_chunk: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            e: *mut sluice_engine,
            worker: u64,
            session: u64,
            data: *const u8,
            len: usize,
            payload: *const sluice_payload,
        ),
    >,
    /// The worker failed `session` (v1: `has_category` 1; `msg` NULL when
    /// absent).
    pub on_error: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            e: *mut sluice_engine,
            worker: u64,
            session: u64,
            has_category: c_int,
            category: i64,
            code: i64,
            msg: *const u8,
            len: usize,
        ),
    >,
    /// The worker's direction of `session` ended.
    pub on_close: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64, session: u64)>,
    /// The worker sent `terminate` (its answer to ours, or its own decision
    /// to stop).
    pub on_terminate:
        Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64, code: i64, reason: *const u8, len: usize)>,
    /// A refused send to this worker may be retried.
    pub on_drain: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64)>,
    /// The worker's connection ended (its last event; its id is forgotten):
    /// `ESHUTDOWN` when it closed, `ETIMEDOUT` when it was cut for silence
    /// or did not go after terminate, and so on. Also for a worker that
    /// never handshook.
    pub on_gone: Option<unsafe extern "C" fn(userdata: *mut c_void, e: *mut sluice_engine, worker: u64, err: c_int)>,
    /// The library will never call this callbacks set again: `userdata`
    /// may be freed. Exactly once for every successful `sluice_engine_bind`,
    /// after the last other callback returned: in `sluice_engine_close` or
    /// `_free`, or on an I/O thread shortly after.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

object!(sluice_engine, engine: Engine, "e", c"the engine is still starting");

fn deliver(host: &Host<sluice_engine, sluice_engine_callbacks>, engine: &Engine, event: EngineEvent) {
    let Some(shared) = host.enter(engine) else { return };
    let (e, ud, c) = (Arc::as_ptr(&shared).cast_mut(), host.ud.0, &host.cbs);
    let (source, event) = event.into_event();
    let Source::Worker(worker) = source else {
        if let Event::Rejected { uuid } = event {
            // SAFETY: the user's callback and data; `uuid` lives for the call.
            unsafe { call!(c.on_rejected, ud, e; bytes uuid.as_bytes()) }
        }
        return;
    };
    let id = worker.id();
    {
        let mut map = shared.workers.lock().unwrap_or_else(|p| p.into_inner());
        match &event {
            Event::Disconnected { .. } => map.remove(&id),
            Event::Connected { .. } => map.insert(id, worker.clone()),
            _ => None,
        };
    }
    // SAFETY (every call): the user's callbacks and data; each pointer
    // lives in `event`, `worker` or `shared` for the call.
    unsafe {
        match event {
            Event::Connected { .. } => {
                let uuid = worker.uuid().unwrap_or_default();
                call!(c.on_handshake, ud, e, id; bytes uuid.as_bytes())
            }
            Event::Drain => call!(c.on_drain, ud, e, id),
            Event::Disconnected { errno, .. } => call!(c.on_gone, ud, e, id, errno),
            Event::Message { session, message, .. } => match message {
                Message::Heartbeat => call!(c.on_heartbeat, ud, e, id),
                Message::Chunk { data } => call!(c.on_chunk, ud, e, id, session; chunk data),
                Message::Error { category, code, message } => call!(c.on_error, ud, e, id, session; error category, code, message),
                Message::Choke => call!(c.on_close, ud, e, id, session),
                Message::Terminate { code, reason } => call!(c.on_terminate, ud, e, id, code; bytes reason),
                _ => {}
            },
            _ => {}
        }
    }
}

fn on_worker(e: *const sluice_engine, worker: u64, f: impl FnOnce(&WorkerRef) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let h = unsafe { handle::live(e) }?;
        let w = h.workers.lock().unwrap_or_else(|p| p.into_inner()).get(&worker).cloned();
        f(&w.ok_or_else(|| Fail::new(SLUICE_E_NO_SESSION, format!("no worker {worker} (not handshaken, or gone)")))?)
    })
}

/// Listens and returns the engine in `*out` (NULL on failure). `opts` is
/// required and copied; `cbs` (copied; NULL for none) and `userdata`: see
/// `sluice_engine_callbacks`. Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID`
/// (`cbs->size`), `SLUICE_E_IO` (e.g. `EADDRINUSE`: see
/// `sluice_last_errno`); then no callback is called, not even `on_release`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_bind(
    opts: *const sluice_engine_options,
    cbs: *const sluice_engine_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_engine,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let o = unsafe { arg(opts, "opts") }?.opts.clone();
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let ep = o.endpoint.clone();
        let handle = sluice_engine { tag: Tag::new(), engine: OnceLock::new(), workers: Mutex::new(HashMap::new()) };
        let e = handle::open(handle, cbs, cbs.on_release, userdata, |h| {
            Engine::bind(o, move |en: &Engine, ev: EngineEvent| contain(|| deliver(&h, en, ev)))
        })
        .map_err(|err| Fail::io(&format!("bind {ep}"), &err))?;
        Ok(e)
    })
}

/// Writes where the engine listens (`"unix:/path"`, `"127.0.0.1:40231"`
/// with the actual port), NUL-terminated, into `buf` (`cap` bytes); full
/// length to `*len` (may be NULL); `SLUICE_E_BUFFER` if truncated.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_endpoint(e: *const sluice_engine, buf: *mut c_char, cap: usize, len: *mut usize) -> c_int {
    // SAFETY: NULL or valid pointers, per the C contract.
    handle::with(e, |en| unsafe { copy_out(&en.local().to_string(), buf, cap, len) })
}

/// Stops listening and closes every worker connection; no callback starts
/// after this returns (one running on another thread finishes).
/// Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_close(e: *mut sluice_engine) -> c_int {
    handle::close(e)
}

/// Closes the engine (as `sluice_engine_close`) and releases the handle.
/// NULL is a no-op. May be called from inside its own callbacks.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_free(e: *mut sluice_engine) {
    handle::free(e)
}

/// Poll delivery: the descriptor that is readable while events wait
/// (level-triggered). -1 for inline delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_fd(e: *const sluice_engine) -> c_int {
    handle::fd(e)
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on
/// this thread (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own callback.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_dispatch(e: *mut sluice_engine, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(e, max, ran)
}

/// Opens a session on `worker` for `event`: sends `invoke` and writes the
/// new session's id to `*session`. Errors: `SLUICE_E_NO_SESSION` (no such
/// worker), `SLUICE_E_CLOSED` (it is gone), `SLUICE_E_WOULD_BLOCK`,
/// `SLUICE_E_INVALID` (`event` not UTF-8).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_worker_invoke(
    e: *mut sluice_engine,
    worker: u64,
    event: *const u8,
    len: usize,
    session: *mut u64,
) -> c_int {
    on_worker(e, worker, |w| {
        // SAFETY: NULL or valid pointers, per the C contract.
        unsafe { put_opt(session, 0) };
        let s = w.invoke(text(unsafe { bytes_arg(event, len, "event") }?, "event")?).map_err(refused)?;
        unsafe { put(session, s.session(), "session") }
    })
}

/// Sends `terminate(code, reason)` to `worker`; it should answer with its
/// own terminate (`on_terminate`) and close (`on_gone`, `ESHUTDOWN`);
/// after the terminate timeout it is cut (`ETIMEDOUT`).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_worker_terminate(
    e: *mut sluice_engine,
    worker: u64,
    code: i64,
    reason: *const u8,
    len: usize,
) -> c_int {
    on_worker(e, worker, |w| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        w.terminate(code, text(unsafe { bytes_arg(reason, len, "reason") }?, "reason")?).map_err(refused)
    })
}

/// Disconnects `worker` at once; `on_gone` follows with `err`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_worker_kill(e: *mut sluice_engine, worker: u64, err: c_int) -> c_int {
    on_worker(e, worker, |w| {
        w.kill(err);
        Ok(())
    })
}

/// The number of sessions open on `worker` in at least one direction, into
/// `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_worker_open_sessions(e: *const sluice_engine, worker: u64, out: *mut usize) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    on_worker(e, worker, |w| unsafe { put(out, w.open_sessions(), "out") })
}

/// Sends a request chunk on `session` of `worker`; copied. Result codes:
/// `SLUICE_E_WOULD_BLOCK`, `SLUICE_E_CLOSED`, `SLUICE_E_ENDED` (this side
/// already closed or failed it), `SLUICE_E_NO_SESSION` (no such session or
/// worker).
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_stream_write(
    e: *mut sluice_engine,
    worker: u64,
    session: u64,
    data: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    on_worker(e, worker, |w| unsafe { send::chunk(w, session, data, len) })
}

/// Sends a request chunk whose bytes are a payload, without a copy.
/// Result codes as `sluice_engine_stream_write`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_stream_write_payload(
    e: *mut sluice_engine,
    worker: u64,
    session: u64,
    payload: *const sluice_payload,
) -> c_int {
    // SAFETY: NULL or a live payload, per the C contract.
    on_worker(e, worker, |w| unsafe { send::payload(w, session, payload) })
}

/// Ends the request side of `session` (v0 `choke`, v1 `close`). Result
/// codes as `sluice_engine_stream_write`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_stream_close(e: *mut sluice_engine, worker: u64, session: u64) -> c_int {
    on_worker(e, worker, |w| send::message(w, session, Message::Choke))
}

/// Fails `session` (v1 category 42; v0 error then choke); `msg` UTF-8.
/// Result codes as `sluice_engine_stream_write`.
#[no_mangle]
pub unsafe extern "C" fn sluice_engine_stream_error(
    e: *mut sluice_engine,
    worker: u64,
    session: u64,
    code: i64,
    msg: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    on_worker(e, worker, |w| unsafe { send::error(w, session, None, code, msg, len, true) })
}
