//! `sluice_worker`: the app side of the engine protocol — handshake,
//! heartbeats, disown, terminate, and each invoke as a session to answer.
//!
//! Ownership and life cycle: see `handle`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use sluice_core::roles::{Worker, WorkerEvent, WorkerOptions};
use sluice_core::wire::Message;

use crate::guard::{arg, assign, bytes_arg, contain, copy_out, edit, endpoint_arg, free_box, guard, make, make_box, put, str_arg, Fail};
use crate::handle::{self, call, object, Host, Tag};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::roles::{dialect_const, dialect_of, ms, sized_callbacks, text};
use crate::send;

/// How a worker starts: its uuid, the engine's endpoint, the dialect, the
/// timers and the channel settings. Made by `sluice_worker_options_new` or
/// `sluice_worker_options_from_args`, released by
/// `sluice_worker_options_free`; `sluice_worker_connect` copies it. Not
/// thread-safe: do not change one from two threads at once.
#[allow(non_camel_case_types)]
pub struct sluice_worker_options {
    opts: WorkerOptions,
}

/// Options for a worker with this `uuid` (sent in the handshake), the
/// engine at `endpoint` (as for `sluice_channel_connect`) and `dialect`
/// (`SLUICE_DIALECT_V0`/`_V1`), with the runtime's timers: a heartbeat
/// every 5 s, disown after 30 s without a control frame from the engine.
/// The new options go to `*out` (NULL on failure). Errors:
/// `SLUICE_E_NULL`, `SLUICE_E_INVALID` (endpoint, dialect, text that is
/// not UTF-8).
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_new(
    uuid: *const c_char,
    endpoint: *const c_char,
    dialect: c_int,
    out: *mut *mut sluice_worker_options,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let uuid = unsafe { str_arg(uuid, "uuid") }?;
        let ep = unsafe { endpoint_arg(endpoint, "endpoint") }?;
        Ok(sluice_worker_options { opts: WorkerOptions::new(uuid, ep, dialect_of(dialect)?) })
    })
}

/// Options from the arguments the runtime starts a worker with, exactly as
/// `main` receives them (`argv[0]`, the program, is skipped): `--app NAME`,
/// `--uuid UUID`, `--endpoint PATH`, `--locator HOST:PORT[,...]`,
/// `--protocol 1` (absent: v0). `--uuid` and `--endpoint` are required;
/// unknown flags are skipped with their value. The new options go to
/// `*out` (NULL on failure). Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID`
/// (a missing or bad argument: the last error says which).
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_from_args(
    argc: c_int,
    argv: *const *mut c_char,
    out: *mut *mut sluice_worker_options,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let mut args = Vec::new();
        if argc > 1 {
            if argv.is_null() {
                return Err(Fail::null("argv"));
            }
            for i in 1..argc as usize {
                let a = unsafe { argv.add(i).read() };
                args.push(unsafe { str_arg(a, &format!("argv[{i}]")) }?);
            }
        }
        let opts = WorkerOptions::from_args(args).map_err(|e| Fail::invalid(e.to_string()))?;
        Ok(sluice_worker_options { opts })
    })
}

/// Releases worker options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_free(opts: *mut sluice_worker_options) {
    free_box(opts)
}

/// Sets how often the worker heartbeats, in milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_set_heartbeat_interval_ms(opts: *mut sluice_worker_options, ms_: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.heartbeat_interval, ms(ms_, "heartbeat interval")))
}

/// Sets the disown timeout in milliseconds (> 0): when the engine has sent
/// no control frame (heartbeat, terminate) for this long, the worker
/// closes its connection: `on_disown`, then `on_disconnected` with
/// `ETIMEDOUT`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_set_disown_timeout_ms(opts: *mut sluice_worker_options, ms_: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.disown_timeout, ms(ms_, "disown timeout")))
}

/// Sets the channel settings (delivery mode, watermarks, limits, profile,
/// connect timeout) from `channel` (copied; NULL: the defaults). Its
/// dialect and role are ignored: the worker's dialect is its own and its
/// role is worker. With `SLUICE_DELIVERY_POLL` the worker's callbacks run
/// in `sluice_worker_dispatch`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_set_channel(opts: *mut sluice_worker_options, channel: *const sluice_options) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.channel, Ok(sluice_options::for_connect(channel))))
}

/// Reads the dialect (`SLUICE_DIALECT_V0`/`_V1`, from `--protocol`) into
/// `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_get_dialect(opts: *const sluice_worker_options, out: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        unsafe { put(out, dialect_const(arg(opts, "opts")?.opts.dialect), "out") }
    })
}

/// Which text `sluice_worker_options_get` reads: the app name (`--app`,
/// `""` if absent).
pub const SLUICE_WORKER_APP: c_int = 0;
/// The uuid (`--uuid`).
pub const SLUICE_WORKER_UUID: c_int = 1;
/// The engine's endpoint (`--endpoint`), in the form
/// `sluice_channel_connect` accepts (`unix:/path` for a socket path).
pub const SLUICE_WORKER_ENDPOINT: c_int = 2;
/// The Locator endpoints (`--locator`), comma-separated (`""` if absent).
pub const SLUICE_WORKER_LOCATOR: c_int = 3;

/// Writes one of the options' texts (`what`: `SLUICE_WORKER_APP`,
/// `_UUID`, `_ENDPOINT`, `_LOCATOR`), NUL-terminated, into `buf` (`cap`
/// bytes); the full length goes to `*len` (may be NULL).
/// `SLUICE_E_BUFFER` if `buf` was too small (the text is truncated),
/// `SLUICE_E_INVALID` for an unknown `what`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_options_get(
    opts: *const sluice_worker_options,
    what: c_int,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        let o = &unsafe { arg(opts, "opts") }?.opts;
        let s = match what {
            SLUICE_WORKER_APP => o.app.clone(),
            SLUICE_WORKER_UUID => o.uuid.clone(),
            SLUICE_WORKER_ENDPOINT => o.endpoint.to_string(),
            SLUICE_WORKER_LOCATOR => o.locator.join(","),
            _ => return Err(Fail::invalid(format!("unknown worker option text {what}"))),
        };
        unsafe { copy_out(&s, buf, cap, len) }
    })
}

// ---------------------------------------------------------------------------

/// A worker connected to an engine. Opaque. Functions on a worker may be
/// called from any thread and from inside any callback; only
/// `sluice_worker_free` must not race other calls on the same handle. The
/// handle stays valid until `sluice_worker_free`, whatever happens to the
/// connection.
#[allow(non_camel_case_types)]
pub struct sluice_worker {
    tag: Tag,
    worker: OnceLock<Worker>,
}

/// A worker's callbacks. Set `size` to `sizeof(sluice_worker_callbacks)`
/// (see "sized callbacks" in the notes on `sluice_engine_callbacks`); any
/// other member may be NULL: that event is then ignored. Copied by
/// `sluice_worker_connect`.
///
/// **Thread.** With inline delivery (the default) callbacks run on a
/// library I/O thread, possibly before `sluice_worker_connect` returns;
/// with poll delivery (`sluice_worker_options_set_channel` with
/// `SLUICE_DELIVERY_POLL`) they run on the thread that calls
/// `sluice_worker_dispatch`. The callbacks of one worker never run
/// concurrently and arrive in wire order. Do not block in them.
///
/// **Arguments.** `userdata` is the pointer given to
/// `sluice_worker_connect`; `w` is the handle it returns. Byte strings are
/// (pointer, length) pairs, not NUL-terminated, valid only until the
/// callback returns (`sluice_payload_retain` keeps a chunk without a copy).
///
/// **Calling back.** A callback may call any sluice function, including
/// the stream sends, `sluice_worker_terminate`, `_close` and `_free` of
/// `w` (the handle stays valid until the callback returns; no callback
/// follows a close). `sluice_worker_dispatch(w, ...)` from inside a
/// callback of `w` returns `SLUICE_E_REENTRANT`. Callbacks must not unwind
/// into the library.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_worker_callbacks {
    /// `sizeof(sluice_worker_callbacks)`, set by the caller: the library
    /// reads only this many bytes of the struct (members past them count
    /// as NULL), so members added at its end in later versions do not
    /// break programs built against this header.
    pub size: usize,
    /// Connected: the handshake and the first heartbeat are sent; the
    /// timers run.
    pub on_connect: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker)>,
    /// The engine opened `session` for `event`: answer it with
    /// `sluice_worker_stream_write`, then `_close` or `_error`.
    pub on_invoke: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker, session: u64, event: *const u8, len: usize)>,
    /// Request data on `session`. `payload` is the same bytes as a borrowed
    /// `sluice_payload` (`sluice_payload_retain` keeps them past the
    /// callback; `sluice_worker_stream_write_payload` echoes them without a
    /// copy).
    pub on_chunk: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            w: *mut sluice_worker,
            session: u64,
            data: *const u8,
            len: usize,
            payload: *const sluice_payload,
        ),
    >,
    /// The engine failed `session` (its direction ends). v1 errors have a
    /// category (`has_category` 1); v0 ones do not. `msg` is NULL with
    /// `len` 0 when there is no message.
    pub on_error: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            w: *mut sluice_worker,
            session: u64,
            has_category: c_int,
            category: i64,
            code: i64,
            msg: *const u8,
            len: usize,
        ),
    >,
    /// The engine's direction of `session` ended (v0 `choke`, v1 `close`).
    pub on_close: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker, session: u64)>,
    /// The engine answered a heartbeat.
    pub on_heartbeat: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker)>,
    /// The engine asks the worker to stop: finish or abandon the open
    /// sessions, then answer with `sluice_worker_terminate`. No new
    /// sessions are started after it. v0 codes: 1 normal, 2 abnormal.
    pub on_terminate: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker, code: i64, reason: *const u8, len: usize)>,
    /// The engine sent nothing for the disown timeout: the worker has
    /// closed its connection; `on_disconnected` with `ETIMEDOUT` follows.
    pub on_disown: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker)>,
    /// After a send returned `SLUICE_E_WOULD_BLOCK`: sends are accepted
    /// again.
    pub on_drain: Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker)>,
    /// The connection ended (the last event, unless the worker was closed
    /// or terminated first): `err` as for `on_socket_error` (`ETIMEDOUT`
    /// after a disown, `ESHUTDOWN` when the engine hung up...), and the
    /// `n` sessions that were still open (`sessions` may be NULL when `n`
    /// is 0). The sessions are forgotten: stream sends return
    /// `SLUICE_E_NO_SESSION` from now on.
    pub on_disconnected:
        Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut sluice_worker, err: c_int, sessions: *const u64, n: usize)>,
    /// The library will never call this callbacks set again: `userdata`
    /// may be freed. Called exactly once for every successful
    /// `sluice_worker_connect` (never when it fails), after the last other
    /// callback returned, on whichever thread notices: an I/O thread, or
    /// inside `sluice_worker_close`/`_terminate`/`_free`/`_dispatch` (the
    /// handle may already be freed then; do not use it).
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

object!(sluice_worker, worker: Worker, "w", c"the worker is still starting");

fn deliver(host: &Host<sluice_worker, sluice_worker_callbacks>, worker: &Worker, event: WorkerEvent) {
    let Some(shared) = host.enter(worker) else { return };
    let (w, ud, c) = (Arc::as_ptr(&shared).cast_mut(), host.ud.0, &host.cbs);
    // SAFETY (every call): the user's callbacks and data; each pointer
    // lives in `event` or `shared` for the call.
    unsafe {
        match event {
            WorkerEvent::Connected => call!(c.on_connect, ud, w),
            WorkerEvent::Invoke { stream, event, .. } => call!(c.on_invoke, ud, w, stream.session(); bytes event),
            WorkerEvent::Chunk { session, data } => call!(c.on_chunk, ud, w, session; chunk data),
            WorkerEvent::Error { session, category, code, message } => call!(c.on_error, ud, w, session; error category, code, message),
            WorkerEvent::Close { session } => call!(c.on_close, ud, w, session),
            WorkerEvent::Heartbeat => call!(c.on_heartbeat, ud, w),
            WorkerEvent::Terminate { code, reason } => call!(c.on_terminate, ud, w, code; bytes reason),
            WorkerEvent::Disown => call!(c.on_disown, ud, w),
            WorkerEvent::Drain => call!(c.on_drain, ud, w),
            WorkerEvent::Disconnected { errno, sessions } => {
                let p = if sessions.is_empty() { std::ptr::null() } else { sessions.as_ptr() };
                call!(c.on_disconnected, ud, w, errno, p, sessions.len())
            }
            _ => {}
        }
    }
}

/// Connects to the engine in the background and returns the worker in
/// `*out` (NULL on failure). `opts` is required and copied; `cbs` (copied;
/// NULL for none) and `userdata`: see `sluice_worker_callbacks`.
///
/// Returns `SLUICE_OK` once the connect has started: then `on_connect`
/// (handshake and first heartbeat sent) or `on_disconnected` (e.g.
/// `ECONNREFUSED`, `ENOENT`) comes first, possibly before this call
/// returns. Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (`cbs->size`
/// too small), `SLUICE_E_IO`; then no callback is called, not even
/// `on_release`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_connect(
    opts: *const sluice_worker_options,
    cbs: *const sluice_worker_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_worker,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let o = unsafe { arg(opts, "opts") }?.opts.clone();
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let handle = sluice_worker { tag: Tag::new(), worker: OnceLock::new() };
        let w = handle::open(handle, cbs, cbs.on_release, userdata, |h| {
            Worker::connect(o, move |w: &Worker, ev: WorkerEvent| contain(|| deliver(&h, w, ev)))
        })
        .map_err(|e| Fail::io("connect", &e))?;
        Ok(w)
    })
}

/// Sends `terminate(code, reason)` to the engine and closes the connection
/// gracefully (what is queued is written first): the answer to
/// `on_terminate`, or the worker's own decision to stop. No callback
/// follows except `on_release`. `reason` is UTF-8 (`SLUICE_E_INVALID`
/// otherwise; NULL with `len` 0: empty). v0 codes: 1 normal, 2 abnormal
/// (the engine marks the app broken); v1 engines ignore the code.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_terminate(w: *mut sluice_worker, code: i64, reason: *const u8, len: usize) -> c_int {
    handle::with(w, |wk| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        wk.terminate(code, text(unsafe { bytes_arg(reason, len, "reason") }?, "reason")?);
        Ok(())
    })
}

/// Closes the connection gracefully without a terminate; no callback
/// follows. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_close(w: *mut sluice_worker) -> c_int {
    handle::close(w)
}

/// Closes the worker (as `sluice_worker_close`) and releases the handle.
/// NULL is a no-op. May be called from inside the worker's own callbacks.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_free(w: *mut sluice_worker) {
    handle::free(w)
}

/// Sends a chunk on `session` (v0 `chunk`, v1 `write`); copied. Result
/// codes: `SLUICE_E_WOULD_BLOCK` (queue full, nothing sent: wait for
/// `on_drain`), `SLUICE_E_CLOSED` (the connection is gone),
/// `SLUICE_E_ENDED` (this side already closed or failed the session),
/// `SLUICE_E_NO_SESSION` (not an open session).
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_stream_write(w: *mut sluice_worker, session: u64, data: *const u8, len: usize) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    handle::with(w, |wk| unsafe { send::chunk(wk, session, data, len) })
}

/// Sends a chunk whose bytes are a payload (borrowed in `on_chunk`, or
/// owned) without a copy; the caller keeps its reference. Result codes as
/// `sluice_worker_stream_write`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_stream_write_payload(w: *mut sluice_worker, session: u64, payload: *const sluice_payload) -> c_int {
    // SAFETY: NULL or a live payload, per the C contract.
    handle::with(w, |wk| unsafe { send::payload(wk, session, payload) })
}

/// Ends this side of `session` (v0 `choke`, v1 `close`). Nothing may
/// follow on it. Result codes as `sluice_worker_stream_write`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_stream_close(w: *mut sluice_worker, session: u64) -> c_int {
    handle::with(w, |wk| send::message(wk, session, Message::Choke))
}

/// Fails `session`: v1 `error([category, code], msg)` (the frameworks use
/// category 42); v0 `error(code, msg)` followed by the `choke` the engine
/// needs. `msg` is UTF-8 (NULL with `len` 0: empty). Nothing may follow on
/// the session. Result codes as `sluice_worker_stream_write`, and
/// `SLUICE_E_INVALID` for a `msg` that is not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_stream_error(
    w: *mut sluice_worker,
    session: u64,
    category: i64,
    code: i64,
    msg: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    handle::with(w, |wk| unsafe { send::error(wk, session, Some(category), code, msg, len, true) })
}

/// The number of sessions open in at least one direction, into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_open_sessions(w: *const sluice_worker, out: *mut usize) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    handle::with(w, |wk| unsafe { put(out, wk.open_sessions(), "out") })
}

/// Poll delivery: the file descriptor that is readable while events wait
/// (level-triggered; poll it, never read it). -1 for inline delivery or
/// NULL. Owned by the worker: do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_fd(w: *const sluice_worker) -> c_int {
    handle::fd(w)
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on
/// this thread (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside this worker's own callback. A callback may free the worker: the
/// handle stays valid until this call returns.
#[no_mangle]
pub unsafe extern "C" fn sluice_worker_dispatch(w: *mut sluice_worker, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(w, max, ran)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::*;
    use crate::options::SLUICE_DIALECT_V1;

    #[test]
    fn options_from_argv() {
        let args: Vec<std::ffi::CString> =
            ["prog", "--app", "echo", "--uuid", "u-1", "--endpoint", "/tmp/x.sock", "--protocol", "1", "--locator", "a:1,b:2"]
                .iter()
                .map(|s| std::ffi::CString::new(*s).unwrap())
                .collect();
        let argv: Vec<*mut c_char> = args.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let mut o = std::ptr::null_mut();
        unsafe {
            assert_eq!(sluice_worker_options_from_args(argv.len() as c_int, argv.as_ptr(), &mut o), SLUICE_OK);
            let mut d = -1;
            assert_eq!(sluice_worker_options_get_dialect(o, &mut d), SLUICE_OK);
            assert_eq!(d, SLUICE_DIALECT_V1);
            let mut buf = [0 as c_char; 64];
            for (what, want) in [
                (SLUICE_WORKER_APP, "echo"),
                (SLUICE_WORKER_UUID, "u-1"),
                (SLUICE_WORKER_ENDPOINT, "unix:/tmp/x.sock"),
                (SLUICE_WORKER_LOCATOR, "a:1,b:2"),
            ] {
                assert_eq!(sluice_worker_options_get(o, what, buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()), SLUICE_OK);
                assert_eq!(std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), want);
            }
            assert_eq!(sluice_worker_options_set_disown_timeout_ms(o, 0), SLUICE_E_INVALID);
            sluice_worker_options_free(o);
            assert_eq!(sluice_worker_options_from_args(3, argv.as_ptr(), &mut o), SLUICE_E_INVALID);
            assert!(o.is_null());
            sluice_worker_options_free(std::ptr::null_mut());
        }
    }
}
