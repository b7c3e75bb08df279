//! Cocaine services, the client side: `sluice_locator` (resolve, service
//! clients), `sluice_resolved`, `sluice_service`, `sluice_call` (a stream of
//! replies), `sluice_logger`, and the service errors. The serving side
//! (service definitions, attach, hosting, the Locator server and its
//! registry) is in `hosting`.
//!
//! **Values.** Arguments and reply arguments are msgpack-encoded arrays,
//! given as (pointer, length): `[]` is `0x90`; NULL with length 0 also
//! means no arguments. `sluice_msgpack_text` renders msgpack readably.
//!
//! **Blocking calls** take `timeout_ms`: 0 waits without a limit (the
//! library's own connect and request timeouts still apply: 5 s to connect,
//! 30 s for a Locator's answer). They must not be made on a library thread
//! (inside a service handler or a registry callback): there they return
//! `SLUICE_E_WRONG_THREAD` instead of waiting.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::net::Endpoint;
use sluice_core::services::{Call, CallSender, Error, Level, Locator, Logger, Reply, Resolved, Service, ServiceError, ServiceState};
use sluice_core::wire::{Profile, Value};

use crate::guard::{
    arg, bytes_arg, c_string, copy_out, endpoint_of, free_box, guard, guard_or, last_seq, make, make_box, put, put_opt, str_arg, Fail, Res,
    SLUICE_E_BAD_REPLY, SLUICE_E_CLOSED, SLUICE_E_DISCONNECTED, SLUICE_E_INVALID, SLUICE_E_IO, SLUICE_E_NOT_FOUND, SLUICE_E_SERVICE,
    SLUICE_E_STATE, SLUICE_E_TIMEOUT, SLUICE_E_UNKNOWN_METHOD, SLUICE_E_WOULD_BLOCK, SLUICE_E_WRONG_THREAD,
};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Errors.

struct LastService {
    seq: u64,
    category: Option<i64>,
    code: i64,
    message: CString,
}

thread_local! {
    static LAST_SERVICE: RefCell<Option<LastService>> = const { RefCell::new(None) };
}

/// A core service error as a result code, with its message (and the
/// service error's parts, or the errno) recorded for the calling thread.
pub(crate) fn fail(e: Error) -> Fail {
    let text = e.to_string();
    match e {
        Error::Service(se) => service_fail(&se),
        Error::NotFound(_) => Fail::new(SLUICE_E_NOT_FOUND, text),
        Error::UnknownMethod { .. } => Fail::new(SLUICE_E_UNKNOWN_METHOD, text),
        Error::Connect { tried, .. } => Fail::with_errno(SLUICE_E_IO, text, tried.last().map_or(0, |t| t.1)),
        Error::Disconnected(errno) => Fail::with_errno(SLUICE_E_DISCONNECTED, text, errno),
        Error::NotAllowed(_) => Fail::new(SLUICE_E_STATE, text),
        Error::WouldBlock => Fail::new(SLUICE_E_WOULD_BLOCK, text),
        Error::Closed => Fail::new(SLUICE_E_CLOSED, text),
        Error::BadReply(_) | Error::Overflow(_) => Fail::new(SLUICE_E_BAD_REPLY, text),
        Error::Timeout => Fail::new(SLUICE_E_TIMEOUT, text),
        Error::InRuntime => wrong_thread(),
        Error::Io(_) => Fail::new(SLUICE_E_IO, text),
    }
}

fn service_fail(se: &ServiceError) -> Fail {
    let f = Fail::new(SLUICE_E_SERVICE, format!("the service answered with an error: {se}"));
    let rec = LastService { seq: last_seq(), category: se.category, code: se.code, message: c_string(se.message.clone()) };
    let _ = LAST_SERVICE.try_with(|l| *l.borrow_mut() = Some(rec));
    f
}

fn wrong_thread() -> Fail {
    Fail::fixed(
        SLUICE_E_WRONG_THREAD,
        c"blocking call on a library thread (inside a service handler or registry callback): answer later from another thread",
    )
}

/// The service error behind the calling thread's last error, when that was
/// `SLUICE_E_SERVICE`: its category (`*has_category` 0 for a v0 service
/// without one), code and message (`*message`: NUL-terminated, valid until
/// the next call into sluice on this thread; never free it). Any of the
/// out-pointers may be NULL. `SLUICE_E_STATE` if the last error was not a
/// service error.
#[no_mangle]
pub unsafe extern "C" fn sluice_last_service_error(
    has_category: *mut c_int,
    category: *mut i64,
    code: *mut i64,
    message: *mut *const c_char,
) -> c_int {
    guard(|| {
        let seq = last_seq();
        let got = LAST_SERVICE
            .try_with(|l| l.borrow().as_ref().filter(|r| r.seq == seq).map(|r| (r.category, r.code, r.message.as_ptr())))
            .ok()
            .flatten();
        let Some((cat, c, m)) = got else {
            return Err(Fail::fixed(SLUICE_E_STATE, c"the last error on this thread is not a service error"));
        };
        // SAFETY: each pointer is NULL or valid for a write, per the C contract.
        unsafe {
            put_opt(has_category, c_int::from(cat.is_some()));
            put_opt(category, cat.unwrap_or(0));
            put_opt(code, c);
            put_opt(message, m);
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Values and waiting.

/// Reads msgpack-encoded arguments: an array (NULL/0: none).
pub(crate) fn args_of(b: &[u8], what: &str) -> Res<Vec<Value>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    match Value::decode_all(&Bytes::copy_from_slice(b)) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(other) => Err(Fail::invalid(format!("{what} must be a msgpack array, not {other}"))),
        Err(e) => Err(Fail::invalid(format!("{what} are not msgpack: {e}"))),
    }
}

/// The msgpack encoding of `v`.
pub(crate) fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out, Profile::Compat);
    out
}

/// `timeout_ms` as a limit: 0 is none.
pub(crate) fn limit(timeout_ms: u64) -> Option<Duration> {
    (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms))
}

/// Runs `f` on the library's runtime from a thread outside it, for at most
/// `timeout_ms` (0: no limit).
pub(crate) fn wait<T>(timeout_ms: u64, f: impl Future<Output = Result<T, Error>>) -> Res<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(wrong_thread());
    }
    let rt = sluice_core::net::runtime::handle().map_err(|e| Fail::io("starting the runtime", &e))?;
    let r = match limit(timeout_ms) {
        Some(d) => rt.block_on(async { tokio::time::timeout(d, f).await.unwrap_or(Err(Error::Timeout)) }),
        None => rt.block_on(f),
    };
    r.map_err(fail)
}

/// Endpoints joined by commas.
pub(crate) fn joined(eps: &[Endpoint]) -> String {
    eps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Writes the readable rendering of msgpack bytes (one value, e.g. an
/// arguments array: `[1, "two", [3]]`; strings quoted, `bin:` before binary
/// data, long strings cut) into `buf` (`cap` bytes, NUL-terminated); the
/// full length goes to `*len` (may be NULL). `SLUICE_E_INVALID` if the
/// bytes are not one msgpack value, `SLUICE_E_BUFFER` if `buf` was too
/// small (the text is truncated).
#[no_mangle]
pub unsafe extern "C" fn sluice_msgpack_text(data: *const u8, data_len: usize, buf: *mut c_char, cap: usize, len: *mut usize) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        let b = unsafe { bytes_arg(data, data_len, "data") }?;
        let v = Value::decode_all(&Bytes::copy_from_slice(b)).map_err(|e| Fail::invalid(format!("not msgpack: {e}")))?;
        unsafe { copy_out(&v.to_string(), buf, cap, len) }
    })
}

// ---------------------------------------------------------------------------
// The Locator client.

/// A Locator to ask: one or more endpoints, tried in order until one
/// answers (failover). Opaque; made by `sluice_locator_new`, released by
/// `sluice_locator_free`. Thread-safe; the services, loggers and resolves
/// it makes keep what they need, so it may be freed before them.
#[allow(non_camel_case_types)]
pub struct sluice_locator {
    pub(crate) loc: Locator,
}

/// A Locator at `endpoints`: comma-separated `host:port` (also
/// `[v6]:port`), tried in this order; NULL or `""` for `localhost:10053`.
/// The new handle goes to `*out` (NULL on failure). Nothing connects yet.
/// Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (an endpoint that does not
/// parse).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_new(endpoints: *const c_char, out: *mut *mut sluice_locator) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let loc = if endpoints.is_null() {
            Locator::default()
        } else {
            let text = unsafe { str_arg(endpoints, "endpoints") }?;
            if text.trim().is_empty() {
                Locator::default()
            } else {
                Locator::new(text.split(',').map(|t| endpoint_of(t.trim())).collect::<Res<Vec<_>>>()?)
            }
        };
        Ok(sluice_locator { loc })
    })
}

/// Releases a Locator handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_free(loc: *mut sluice_locator) {
    free_box(loc)
}

/// One method of a resolved service's graph; the strings belong to the
/// `sluice_resolved` (valid until `sluice_resolved_free`).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct sluice_method_info {
    /// The method id (the message type that opens a call).
    pub id: u64,
    /// The method name.
    pub name: *const c_char,
    /// The caller's protocol, printed: `none` (nothing more after the
    /// call), `same`, or the messages, e.g. `{0 write*, 1 error, 2 close}`
    /// (`*`: may repeat).
    pub tx: *const c_char,
    /// The replies' protocol, printed the same way, e.g. `{0 value, 1 error}`.
    pub rx: *const c_char,
}

/// What the Locator says about a service: name, endpoints, protocol
/// version and method graph. Opaque; made by `sluice_locator_resolve`,
/// released by `sluice_resolved_free`. Immutable: readable from any thread.
#[allow(non_camel_case_types)]
pub struct sluice_resolved {
    version: u64,
    name: CString,
    endpoints: CString,
    text: CString,
    methods: Vec<(u64, CString, CString, CString)>,
}

impl sluice_resolved {
    fn new(r: &Resolved) -> sluice_resolved {
        sluice_resolved {
            version: r.version,
            name: c_string(r.name.clone()),
            endpoints: c_string(joined(&r.endpoints)),
            text: c_string(r.to_string()),
            methods: r
                .graph
                .methods()
                .iter()
                .map(|m| (m.id, c_string(m.name.clone()), c_string(m.tx.to_string()), c_string(m.rx.to_string())))
                .collect(),
        }
    }
}

/// Resolves the service `name` through the Locator (blocking, at most
/// `timeout_ms`; 0: no limit) into `*out` (NULL on failure). Errors:
/// `SLUICE_E_NOT_FOUND` (the Locator does not have it online), `SLUICE_E_IO`
/// (no Locator endpoint answered: the last error lists each with its errno),
/// `SLUICE_E_TIMEOUT`, `SLUICE_E_BAD_REPLY`, `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_resolve(
    loc: *const sluice_locator,
    name: *const c_char,
    timeout_ms: u64,
    out: *mut *mut sluice_resolved,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let r = wait(timeout_ms, l.loc.resolve(name))?;
        Ok(sluice_resolved::new(&r))
    })
}

/// The service's name. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_name(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.name.as_ptr()))
}

/// The service's endpoints, comma-separated `host:port` in the Locator's
/// order. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_endpoints(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.endpoints.as_ptr()))
}

/// The service's protocol version (0 for a NULL handle).
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_version(r: *const sluice_resolved) -> u64 {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { r.as_ref() }.map_or(0, |r| r.version))
}

/// The whole answer printed, several lines: `service NAME (protocol version
/// V)`, `endpoints: ...`, `methods:`, then one line per method with its id,
/// name, tx and rx. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_text(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.text.as_ptr()))
}

/// The number of methods in the service's graph (0 for a NULL handle).
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_method_count(r: *const sluice_resolved) -> usize {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { r.as_ref() }.map_or(0, |r| r.methods.len()))
}

/// Method `index` (0 .. count-1, in id order) into `*out`.
/// `SLUICE_E_INVALID` for an index past the end.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_method(r: *const sluice_resolved, index: usize, out: *mut sluice_method_info) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        let r = unsafe { arg(r, "r") }?;
        let (id, name, tx, rx) = r.methods.get(index).ok_or_else(|| Fail::invalid(format!("method {index} of {}", r.methods.len())))?;
        unsafe { put(out, sluice_method_info { id: *id, name: name.as_ptr(), tx: tx.as_ptr(), rx: rx.as_ptr() }, "out") }
    })
}

/// Releases a resolve's answer. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_free(r: *mut sluice_resolved) {
    free_box(r)
}

// ---------------------------------------------------------------------------
// Services and calls.

/// A client for one service. Opaque; made by `sluice_locator_service`,
/// released by `sluice_service_free`. Thread-safe: calls from several
/// threads share one connection.
///
/// It resolves through the Locator and connects on the first call, then
/// keeps the connection (picking among the service's endpoints, trying the
/// others if one fails). When the connection ends, open calls fail with
/// `SLUICE_E_DISCONNECTED` and the next call resolves and connects again.
#[allow(non_camel_case_types)]
pub struct sluice_service {
    svc: Service,
}

/// `sluice_service_state`: not connected (never, or the connection ended).
pub const SLUICE_SERVICE_CLOSED: c_int = 0;
/// `sluice_service_state`: resolving and connecting.
pub const SLUICE_SERVICE_CONNECTING: c_int = 1;
/// `sluice_service_state`: connected.
pub const SLUICE_SERVICE_CONNECTED: c_int = 2;
/// `sluice_service_state`: the last attempt to connect failed (the next
/// call tries again).
pub const SLUICE_SERVICE_ERROR: c_int = 3;

/// A client for the service `name` of this Locator into `*out` (NULL on
/// failure). Nothing connects until the first call.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_service(loc: *const sluice_locator, name: *const c_char, out: *mut *mut sluice_service) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let svc = l.loc.service(name);
        Ok(sluice_service { svc })
    })
}

/// Calls `method` with `args` (a msgpack array; NULL/0: none) and returns
/// the call in `*out` (NULL on failure), whose replies `sluice_call_next`,
/// `_value` and `_collect` read. Blocks while resolving and connecting
/// (at most `timeout_ms`; 0: no limit), not for the replies. Errors:
/// `SLUICE_E_INVALID` (args), `SLUICE_E_NOT_FOUND` (the Locator does not
/// have the service), `SLUICE_E_UNKNOWN_METHOD` (not in its graph),
/// `SLUICE_E_IO` (nothing could be reached), `SLUICE_E_TIMEOUT`,
/// `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_service_call(
    svc: *const sluice_service,
    method: *const c_char,
    args: *const u8,
    args_len: usize,
    timeout_ms: u64,
    out: *mut *mut sluice_call,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let s = unsafe { arg(svc, "svc") }?;
        let method = unsafe { str_arg(method, "method") }?;
        let args = args_of(unsafe { bytes_arg(args, args_len, "args") }?, "args")?;
        Ok(sluice_call::into_raw(wait(timeout_ms, s.svc.call(method, args))?))
    })
}

/// The service's state (`SLUICE_SERVICE_CLOSED`, `_CONNECTING`,
/// `_CONNECTED`, `_ERROR`); -1 for NULL.
#[no_mangle]
pub unsafe extern "C" fn sluice_service_state(svc: *const sluice_service) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(-1, || match unsafe { svc.as_ref() } {
        None => -1,
        Some(s) => match s.svc.state() {
            ServiceState::Closed => SLUICE_SERVICE_CLOSED,
            ServiceState::Connecting => SLUICE_SERVICE_CONNECTING,
            ServiceState::Connected => SLUICE_SERVICE_CONNECTED,
            ServiceState::Error => SLUICE_SERVICE_ERROR,
        },
    })
}

/// Closes the service's connection (open calls fail with
/// `SLUICE_E_DISCONNECTED`); the next call connects again.
#[no_mangle]
pub unsafe extern "C" fn sluice_service_close(svc: *const sluice_service) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        unsafe { arg(svc, "svc") }?.svc.close();
        Ok(())
    })
}

/// Releases a service client. NULL is a no-op. Its connection closes once
/// the calls still open are freed (or have ended).
#[no_mangle]
pub unsafe extern "C" fn sluice_service_free(svc: *mut sluice_service) {
    free_box(svc)
}

/// One reply of a call, filled by `sluice_call_next`. The pointers belong to
/// the call and stay valid until the next `sluice_call_next`, `_value` or
/// `_collect` on it, or `sluice_call_free`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct sluice_reply {
    /// The message's name, NUL-terminated: `value`, `write`, `close`, ...
    pub name: *const c_char,
    /// Its arguments, a msgpack array.
    pub args: *const u8,
    /// The length of `args`.
    pub args_len: usize,
    /// 1 if it ends the call (`value`, `close`): no reply follows.
    pub last: c_int,
}

struct CallState {
    call: Option<Call>,
    name: CString,
    args: Vec<u8>,
}

/// A call in progress: its replies in order, and the caller's further
/// messages for methods whose caller side streams. Opaque; made by
/// `sluice_service_call` or `sluice_registry_invoke`, released by
/// `sluice_call_free`. Replies are read by one thread at a time (the
/// reading functions serialize); `sluice_call_send` may be called from
/// another thread meanwhile. `sluice_call_free` must not race other calls
/// on the same call.
#[allow(non_camel_case_types)]
pub struct sluice_call {
    st: Mutex<CallState>,
    sender: CallSender,
}

impl sluice_call {
    pub(crate) fn into_raw(call: Call) -> *mut sluice_call {
        let sender = call.sender();
        Box::into_raw(Box::new(sluice_call {
            st: Mutex::new(CallState { call: Some(call), name: CString::default(), args: Vec::new() }),
            sender,
        }))
    }
}

fn ended() -> Fail {
    Fail::fixed(SLUICE_E_CLOSED, c"the call has ended: no reply follows")
}

/// The next reply within `remaining`, or the error that ends the call.
fn next_reply(st: &mut CallState, remaining: Option<Duration>) -> Res<Reply> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(wrong_thread());
    }
    let call = st.call.as_mut().ok_or_else(ended)?;
    match call.recv_timeout_blocking(remaining) {
        Some(Ok(r)) => {
            if r.last {
                st.call = None;
            }
            Ok(r)
        }
        Some(Err(Error::Timeout)) => Err(fail(Error::Timeout)),
        Some(Err(e)) => {
            st.call = None;
            Err(fail(e))
        }
        None => {
            st.call = None;
            Err(ended())
        }
    }
}

fn deadline(timeout_ms: u64) -> Option<Instant> {
    limit(timeout_ms).map(|d| Instant::now() + d)
}

fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Waits for the next reply (at most `timeout_ms`; 0: no limit) and fills
/// `*out`. Errors: `SLUICE_E_SERVICE` (the service answered with an error:
/// see `sluice_last_service_error`; the call has ended),
/// `SLUICE_E_DISCONNECTED` (the connection ended), `SLUICE_E_TIMEOUT`
/// (nothing yet: the call stays usable), `SLUICE_E_CLOSED` (the call had
/// already ended: after its last reply or an error), `SLUICE_E_BAD_REPLY`,
/// `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_call_next(call: *const sluice_call, timeout_ms: u64, out: *mut sluice_reply) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let c = unsafe { arg(call, "call") }?;
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let mut st = lock(&c.st);
        let r = next_reply(&mut st, limit(timeout_ms))?;
        st.name = c_string(r.name);
        st.args = encode(&Value::Array(r.args));
        let reply = sluice_reply { name: st.name.as_ptr(), args: st.args.as_ptr(), args_len: st.args.len(), last: c_int::from(r.last) };
        unsafe { put(out, reply, "out") }
    })
}

/// The result of a primitive method: waits (at most `timeout_ms`; 0: no
/// limit) for its `value` and gives its arguments, a msgpack array, in
/// `*args`/`*args_len` (owned by the call: valid until the next reading
/// call on it or `sluice_call_free`). Errors as `sluice_call_next`, and
/// `SLUICE_E_BAD_REPLY` if the method answered something else than a value
/// (e.g. a stream).
#[no_mangle]
pub unsafe extern "C" fn sluice_call_value(call: *const sluice_call, timeout_ms: u64, args: *mut *const u8, args_len: *mut usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let c = unsafe { arg(call, "call") }?;
        if args.is_null() || args_len.is_null() {
            return Err(Fail::null("args"));
        }
        let mut st = lock(&c.st);
        let r = next_reply(&mut st, limit(timeout_ms))?;
        if r.name != "value" {
            st.call = None;
            return Err(Fail::new(SLUICE_E_BAD_REPLY, format!("expected a value, got '{}'", r.name)));
        }
        st.name = c_string(r.name);
        st.args = encode(&Value::Array(r.args));
        unsafe {
            args.write(st.args.as_ptr());
            args_len.write(st.args.len());
        }
        Ok(())
    })
}

/// Every reply up to the end of the call (for streaming methods): waits (at
/// most `timeout_ms` in all; 0: no limit) and gives a msgpack array of
/// `[name, args]` pairs, one per reply in order, e.g. `[["write", [0]],
/// ["write", [1]], ["close", []]]`, in `*replies`/`*replies_len` (owned by
/// the call, as for `sluice_call_value`). Errors as `sluice_call_next`: an
/// error reply ends the collection with `SLUICE_E_SERVICE` (the replies
/// before it are dropped); on `SLUICE_E_TIMEOUT` the replies read so far
/// are dropped too.
#[no_mangle]
pub unsafe extern "C" fn sluice_call_collect(
    call: *const sluice_call,
    timeout_ms: u64,
    replies: *mut *const u8,
    replies_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let c = unsafe { arg(call, "call") }?;
        if replies.is_null() || replies_len.is_null() {
            return Err(Fail::null("replies"));
        }
        let mut st = lock(&c.st);
        let end = deadline(timeout_ms);
        let mut all = Vec::new();
        while st.call.is_some() {
            let r = next_reply(&mut st, left(end).map(|d| d.max(Duration::from_millis(1))))?;
            all.push(Value::Array(vec![Value::from(r.name.as_str()), Value::Array(r.args)]));
        }
        st.args = encode(&Value::Array(all));
        unsafe {
            replies.write(st.args.as_ptr());
            replies_len.write(st.args.len());
        }
        Ok(())
    })
}

/// Sends the caller's message `name` with `args` (a msgpack array; NULL/0:
/// none) on the call, for methods whose caller side streams (e.g. `write`
/// then `close` to the demo `echo.relay`). Errors: `SLUICE_E_STATE`
/// (`name` is not allowed now by the method's protocol),
/// `SLUICE_E_CLOSED`, `SLUICE_E_WOULD_BLOCK`, `SLUICE_E_INVALID`.
#[no_mangle]
pub unsafe extern "C" fn sluice_call_send(call: *const sluice_call, name: *const c_char, args: *const u8, args_len: usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let c = unsafe { arg(call, "call") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let args = args_of(unsafe { bytes_arg(args, args_len, "args") }?, "args")?;
        c.sender.send(name, &args).map_err(fail)
    })
}

/// Releases a call. NULL is a no-op. Replies still to come are dropped as
/// they arrive.
#[no_mangle]
pub unsafe extern "C" fn sluice_call_free(call: *mut sluice_call) {
    free_box(call)
}

// ---------------------------------------------------------------------------
// The Logger.

/// Log level: debug (priority 0).
pub const SLUICE_LOG_DEBUG: c_int = 0;
/// Log level: info (1).
pub const SLUICE_LOG_INFO: c_int = 1;
/// Log level: warning (2).
pub const SLUICE_LOG_WARNING: c_int = 2;
/// Log level: error (3).
pub const SLUICE_LOG_ERROR: c_int = 3;

pub(crate) fn level_of(l: c_int) -> Res<Level> {
    match l {
        SLUICE_LOG_DEBUG => Ok(Level::Debug),
        SLUICE_LOG_INFO => Ok(Level::Info),
        SLUICE_LOG_WARNING => Ok(Level::Warning),
        SLUICE_LOG_ERROR => Ok(Level::Error),
        _ => Err(Fail::new(SLUICE_E_INVALID, format!("unknown log level {l}"))),
    }
}

/// A client of the `logging` service. Opaque; made by `sluice_logger_new`,
/// released by `sluice_logger_free`. Thread-safe. Messages below the
/// service's verbosity (asked once per connection) are not sent.
#[allow(non_camel_case_types)]
pub struct sluice_logger {
    lg: Logger,
}

/// A logger for the app `app` (messages carry the source `app/<app>`),
/// writing to the `logging` service of `loc`, into `*out` (NULL on
/// failure). Nothing connects until the first message.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_new(loc: *const sluice_locator, app: *const c_char, out: *mut *mut sluice_logger) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let app = unsafe { str_arg(app, "app") }?;
        Ok(sluice_logger { lg: Logger::new(&l.loc, app) })
    })
}

/// Sends `message` (UTF-8, NUL-terminated) at `level` (`SLUICE_LOG_*`) with
/// `attributes`: a msgpack map of name to value (`{"user": "x", "n": 1}`),
/// or NULL/0 for none. Blocking (connecting, asking the verbosity) for at
/// most `timeout_ms` (0: no limit). `*sent` (may be NULL) is 1 if it was
/// sent, 0 if its level is below the service's verbosity. Errors as
/// `sluice_service_call`, and `SLUICE_E_INVALID` (level, attributes).
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_emit(
    lg: *const sluice_logger,
    level: c_int,
    message: *const c_char,
    attributes: *const u8,
    attributes_len: usize,
    timeout_ms: u64,
    sent: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put_opt(sent, 0) };
        let l = unsafe { arg(lg, "lg") }?;
        let level = level_of(level)?;
        let message = unsafe { str_arg(message, "message") }?;
        let raw = unsafe { bytes_arg(attributes, attributes_len, "attributes") }?;
        let attrs: Vec<(String, Value)> = if raw.is_empty() {
            Vec::new()
        } else {
            match Value::decode_all(&Bytes::copy_from_slice(raw)) {
                Ok(Value::Map(pairs)) => pairs
                    .into_iter()
                    .map(|(k, v)| match k.as_bytes() {
                        Some(b) => Ok((String::from_utf8_lossy(b).into_owned(), v)),
                        None => Err(Fail::invalid(format!("attribute name {k} is not a string"))),
                    })
                    .collect::<Res<_>>()?,
                Ok(other) => return Err(Fail::invalid(format!("attributes must be a msgpack map, not {other}"))),
                Err(e) => return Err(Fail::invalid(format!("attributes are not msgpack: {e}"))),
            }
        };
        let borrowed: Vec<(&str, Value)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let was_sent = wait(timeout_ms, l.lg.emit(level, message, &borrowed))?;
        unsafe { put_opt(sent, c_int::from(was_sent)) };
        Ok(())
    })
}

fn emit_at(lg: *const sluice_logger, level: c_int, message: *const c_char, sent: *mut c_int) -> c_int {
    // SAFETY: the caller's pointers, per the C contract.
    unsafe { sluice_logger_emit(lg, level, message, std::ptr::null(), 0, 0, sent) }
}

/// `sluice_logger_emit` at `SLUICE_LOG_DEBUG`, no attributes, no time limit
/// of its own.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_debug(lg: *const sluice_logger, message: *const c_char, sent: *mut c_int) -> c_int {
    emit_at(lg, SLUICE_LOG_DEBUG, message, sent)
}

/// `sluice_logger_emit` at `SLUICE_LOG_INFO`, no attributes, no time limit
/// of its own.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_info(lg: *const sluice_logger, message: *const c_char, sent: *mut c_int) -> c_int {
    emit_at(lg, SLUICE_LOG_INFO, message, sent)
}

/// `sluice_logger_emit` at `SLUICE_LOG_WARNING`, no attributes, no time
/// limit of its own.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_warning(lg: *const sluice_logger, message: *const c_char, sent: *mut c_int) -> c_int {
    emit_at(lg, SLUICE_LOG_WARNING, message, sent)
}

/// `sluice_logger_emit` at `SLUICE_LOG_ERROR`, no attributes, no time limit
/// of its own.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_error(lg: *const sluice_logger, message: *const c_char, sent: *mut c_int) -> c_int {
    emit_at(lg, SLUICE_LOG_ERROR, message, sent)
}

/// Releases a logger. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_logger_free(lg: *mut sluice_logger) {
    free_box(lg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{SLUICE_E_INVALID, SLUICE_OK};

    #[test]
    fn arguments_must_be_one_msgpack_array() {
        assert_eq!(args_of(&[], "args").unwrap(), Vec::<Value>::new());
        assert_eq!(args_of(&[0x92, 0x01, 0xa1, b'x'], "args").unwrap(), vec![Value::from(1u64), Value::from("x")]);
        assert_eq!(args_of(&[0x01], "args").unwrap_err().0, SLUICE_E_INVALID);
        assert_eq!(args_of(&[0x92, 0x01], "args").unwrap_err().0, SLUICE_E_INVALID);
        assert_eq!(encode(&Value::Array(vec![Value::from(1u64)])), vec![0x91, 0x01]);
    }

    #[test]
    fn core_errors_become_distinct_codes() {
        let se = ServiceError::new(42, 7, "failed on request");
        assert_eq!(fail(Error::Service(se)).0, SLUICE_E_SERVICE);
        let (mut has, mut cat, mut code, mut msg) = (0, 0, 0, std::ptr::null());
        assert_eq!(unsafe { sluice_last_service_error(&mut has, &mut cat, &mut code, &mut msg) }, SLUICE_OK);
        assert_eq!((has, cat, code), (1, 42, 7));
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(msg) }.to_str().unwrap(), "failed on request");
        assert_eq!(fail(Error::NotFound("x".into())).0, SLUICE_E_NOT_FOUND);
        assert_eq!(unsafe { sluice_last_service_error(&mut has, &mut cat, &mut code, &mut msg) }, SLUICE_E_STATE);
        assert_eq!(fail(Error::UnknownMethod { service: "s".into(), method: "m".into() }).0, SLUICE_E_UNKNOWN_METHOD);
        assert_eq!(fail(Error::Timeout).0, SLUICE_E_TIMEOUT);
        assert_eq!(fail(Error::Disconnected(104)).0, SLUICE_E_DISCONNECTED);
        assert_eq!(crate::guard::sluice_last_errno(), 104);
        assert_eq!(fail(Error::Connect { what: "the locator".into(), tried: vec![("a:1".into(), 111)] }).0, SLUICE_E_IO);
        assert_eq!(crate::guard::sluice_last_errno(), 111);
        assert_eq!(fail(Error::InRuntime).0, SLUICE_E_WRONG_THREAD);
    }
}
