//! Service clients: `sluice_service` and its calls (`sluice_call`,
//! `sluice_reply`), and the `logging` service's client, `sluice_logger`.

use super::*;

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

/// A reading call that gives msgpack bytes: `f` reads replies into the
/// call's state, whose `args` then go to `*p`/`*n`.
fn reading(call: *const sluice_call, p: *mut *const u8, n: *mut usize, what: &str, f: impl FnOnce(&mut CallState) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live call, per the C contract.
        let c = unsafe { arg(call, "call") }?;
        if p.is_null() || n.is_null() {
            return Err(Fail::null(what));
        }
        let mut st = lock(&c.st);
        f(&mut st)?;
        // SAFETY: checked above; valid for writes, per the C contract.
        unsafe {
            p.write(st.args.as_ptr());
            n.write(st.args.len());
        }
        Ok(())
    })
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
    reading(call, args, args_len, "args", |st| {
        let r = next_reply(st, limit(timeout_ms))?;
        if r.name != "value" {
            st.call = None;
            return Err(Fail::new(SLUICE_E_BAD_REPLY, format!("expected a value, got '{}'", r.name)));
        }
        st.name = c_string(r.name);
        st.args = encode(&Value::Array(r.args));
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
    reading(call, replies, replies_len, "replies", |st| {
        let end = deadline(timeout_ms);
        let mut all = Vec::new();
        while st.call.is_some() {
            let r = next_reply(st, left(end).map(|d| d.max(Duration::from_millis(1))))?;
            all.push(Value::Array(vec![Value::from(r.name.as_str()), Value::Array(r.args)]));
        }
        st.args = encode(&Value::Array(all));
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
