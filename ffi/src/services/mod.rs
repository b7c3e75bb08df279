//! Cocaine services, the client side: `sluice_locator` (resolve, service
//! clients), `sluice_resolved`, `sluice_service`, `sluice_call` (a stream of
//! replies), `sluice_logger`, and the service errors. The serving side
//! (service definitions, attach, hosting, the Locator server and its
//! registry) is in `hosting`.
//!
//! Here: the service errors, values and waiting; then `locator` and
//! `service` (clients, calls, the logger). cbindgen reads a module's own
//! items first, then its submodules by name: the names keep the header's
//! order.
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
        _ => Fail::new(SLUICE_E_STATE, text),
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

mod locator;
mod service;
pub use locator::*;
pub use service::*;

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
