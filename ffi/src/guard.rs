//! The boundary machinery: result codes, the panic guard, the thread's last
//! error, and the helpers that turn C arguments into Rust values.
//!
//! Every exported function runs its body inside [`guard`] (or
//! [`guard_or`]), so a panic becomes [`SLUICE_E_PANIC`] instead of
//! unwinding into C. Failures are built with [`Fail`], which records the
//! message (and errno) for `sluice_last_error` as it is made.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use sluice_core::net::{DispatchError, Endpoint};
use sluice_core::roles::StreamError;

// ---------------------------------------------------------------------------
// Result codes. Numbered once and never reused: a code that is retired keeps
// its number forever, new codes take the next free number.

/// Success.
pub const SLUICE_OK: c_int = 0;
/// A required pointer argument was NULL.
pub const SLUICE_E_NULL: c_int = 1;
/// An argument is out of range or malformed (an unknown constant, an
/// endpoint that does not parse, bytes that are not msgpack, text that is
/// not UTF-8).
pub const SLUICE_E_INVALID: c_int = 2;
/// The channel's send queue is at its high watermark: nothing was queued.
/// `on_drain` follows once the queue is down to the low watermark.
pub const SLUICE_E_WOULD_BLOCK: c_int = 3;
/// The channel is closed (by `sluice_channel_close`/`_abort`) or its
/// connection has ended.
pub const SLUICE_E_CLOSED: c_int = 4;
/// An operating-system error; `sluice_last_errno()` tells which.
pub const SLUICE_E_IO: c_int = 5;
/// A bug inside sluice was caught at the boundary (a Rust panic). The
/// process is not affected; the object may be left in a half-done state.
pub const SLUICE_E_PANIC: c_int = 6;
/// `dispatch` was called from inside a callback of the same object (or
/// while another thread dispatches it).
pub const SLUICE_E_REENTRANT: c_int = 7;
/// `dispatch` on an object that does not use poll delivery.
pub const SLUICE_E_NOT_POLLED: c_int = 8;
/// The call is not valid in the object's current state (e.g. a
/// `sluice_incoming` already started, threads set after start-up).
pub const SLUICE_E_STATE: c_int = 9;
/// The caller's buffer is too small; the output was truncated (still
/// NUL-terminated) and the full length was reported.
pub const SLUICE_E_BUFFER: c_int = 10;
/// A worker or engine stream send after this side ended the session (its
/// close or error was sent): nothing may follow on it. Nothing was sent.
pub const SLUICE_E_ENDED: c_int = 11;
/// A worker or engine stream send on a session this side does not know (never
/// opened, finished in both directions, or lost with its connection), or an
/// engine worker / resume peer id that is not (or no longer) known.
pub const SLUICE_E_NO_SESSION: c_int = 12;
/// A service answered with an error (`error([category, code], message)`):
/// `sluice_last_service_error` gives its category, code and message.
pub const SLUICE_E_SERVICE: c_int = 13;
/// The Locator does not have the service (unknown, or offline), or a
/// registry has no entry of that name.
pub const SLUICE_E_NOT_FOUND: c_int = 14;
/// The service's method graph has no method of that name.
pub const SLUICE_E_UNKNOWN_METHOD: c_int = 15;
/// Nothing came within the time allowed (a blocking call's `timeout_ms`,
/// or the library's own request timeout). A call stays usable.
pub const SLUICE_E_TIMEOUT: c_int = 16;
/// The connection ended while a service call was open;
/// `sluice_last_errno()` tells how (e.g. `SLUICE_ECONNRESET`).
pub const SLUICE_E_DISCONNECTED: c_int = 17;
/// A peer answered with something that does not have the expected shape
/// (e.g. a stream where a value was expected), or replies arrived faster
/// than they were read, past the call's limit.
pub const SLUICE_E_BAD_REPLY: c_int = 18;
/// A blocking call was made on a library thread (e.g. inside a service
/// handler or a registry callback), where waiting would stall the very
/// thread that must deliver the answer. Answer later from another thread.
pub const SLUICE_E_WRONG_THREAD: c_int = 19;
/// Not a live handle of the kind the function takes: a freed handle, or a
/// pointer that is not a sluice handle (detected on a best-effort basis:
/// never rely on it).
pub const SLUICE_E_HANDLE: c_int = 20;
/// The handle was made before `fork()`: a forked child cannot use its
/// parent's channels, servers and roles (their connections and threads
/// are the parent's); it makes its own. Freeing such a handle in the child
/// does nothing.
pub const SLUICE_E_FORKED: c_int = 21;

/// The symbolic name of a result code, e.g. `"SLUICE_E_CLOSED"`; NULL for a
/// number that is not a sluice result code. The string is static.
#[no_mangle]
pub extern "C" fn sluice_result_name(code: c_int) -> *const c_char {
    guard_or(std::ptr::null(), || match name_of(code) {
        Some(n) => n.as_ptr(),
        None => std::ptr::null(),
    })
}

pub(crate) fn name_of(code: c_int) -> Option<&'static CStr> {
    macro_rules! names {
        ($($n:ident),*) => {
            match code {
                $($n => concat!(stringify!($n), "\0"),)*
                _ => return None,
            }
        };
    }
    let name = names! {
        SLUICE_OK, SLUICE_E_NULL, SLUICE_E_INVALID, SLUICE_E_WOULD_BLOCK, SLUICE_E_CLOSED, SLUICE_E_IO, SLUICE_E_PANIC,
        SLUICE_E_REENTRANT, SLUICE_E_NOT_POLLED, SLUICE_E_STATE, SLUICE_E_BUFFER, SLUICE_E_ENDED, SLUICE_E_NO_SESSION, SLUICE_E_SERVICE,
        SLUICE_E_NOT_FOUND, SLUICE_E_UNKNOWN_METHOD, SLUICE_E_TIMEOUT, SLUICE_E_DISCONNECTED, SLUICE_E_BAD_REPLY, SLUICE_E_WRONG_THREAD,
        SLUICE_E_HANDLE, SLUICE_E_FORKED
    };
    CStr::from_bytes_with_nul(name.as_bytes()).ok()
}

// ---------------------------------------------------------------------------
// The last error of the calling thread.

struct LastError {
    message: Cow<'static, CStr>,
    errno: c_int,
}

thread_local! {
    static LAST: RefCell<LastError> = const { RefCell::new(LastError { message: Cow::Borrowed(c""), errno: 0 }) };
    static SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many errors the calling thread has recorded: details kept beside the
/// last error (a service error's code) belong to it while this is unchanged.
pub(crate) fn last_seq() -> u64 {
    SEQ.try_with(|s| s.get()).unwrap_or(0)
}

fn set_last(message: Cow<'static, CStr>, errno: c_int) {
    let _ = SEQ.try_with(|s| s.set(s.get().wrapping_add(1)));
    // During thread teardown the slot may be gone: then there is nobody to
    // read the message either.
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = LastError { message, errno };
        }
    });
}

/// The message of the last error on the calling thread: a NUL-terminated
/// string describing the most recent call into sluice on this thread that
/// returned an error code (`""` if none did). Successful calls leave it as
/// it is. The pointer stays valid until the next call into sluice on this
/// thread; copy the text to keep it. Never NULL; never free it.
#[no_mangle]
pub extern "C" fn sluice_last_error() -> *const c_char {
    guard_or(c"".as_ptr(), || {
        LAST.try_with(|l| match l.try_borrow() {
            Ok(l) => l.message.as_ptr(),
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
    })
}

/// The errno of the last error on the calling thread when it was
/// `SLUICE_E_IO` (e.g. `EADDRINUSE` from `sluice_server_bind`; for a
/// service client that could not connect, the last endpoint's) or
/// `SLUICE_E_DISCONNECTED`, else 0.
/// Linux numbering.
#[no_mangle]
pub extern "C" fn sluice_last_errno() -> c_int {
    guard_or(0, || LAST.try_with(|l| l.try_borrow().map(|l| l.errno).unwrap_or(0)).unwrap_or(0))
}

/// A failure on its way to C: the code, with the last error already set.
#[derive(Debug)]
pub(crate) struct Fail(pub(crate) c_int);

/// What exported functions compute before [`guard`] turns it into a code.
pub(crate) type Res<T = ()> = Result<T, Fail>;

impl Fail {
    /// A failure with a fixed message (no allocation: used on hot paths
    /// such as "would block").
    pub(crate) fn fixed(code: c_int, message: &'static CStr) -> Fail {
        set_last(Cow::Borrowed(message), 0);
        Fail(code)
    }

    /// A failure with a formatted message.
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Fail {
        set_last(Cow::Owned(c_string(message.into())), 0);
        Fail(code)
    }

    /// A NULL where a pointer was required.
    pub(crate) fn null(what: &str) -> Fail {
        Fail::new(SLUICE_E_NULL, format!("{what} is NULL"))
    }

    /// An invalid argument.
    pub(crate) fn invalid(message: impl Into<String>) -> Fail {
        Fail::new(SLUICE_E_INVALID, message)
    }

    /// A failure with a formatted message and an errno for
    /// `sluice_last_errno`.
    pub(crate) fn with_errno(code: c_int, message: impl Into<String>, errno: c_int) -> Fail {
        set_last(Cow::Owned(c_string(message.into())), errno);
        Fail(code)
    }

    /// An operating-system error, with its errno.
    pub(crate) fn io(context: &str, e: &std::io::Error) -> Fail {
        let errno = sluice_core::net::errno_of(e);
        set_last(Cow::Owned(c_string(format!("{context}: {e} (errno {errno})"))), errno);
        Fail(SLUICE_E_IO)
    }
}

/// A NUL-terminated copy of a string (NULs dropped).
pub(crate) fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut v = e.into_vec();
        v.retain(|&b| b != 0);
        CString::new(v).unwrap_or_default()
    })
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs the body of an exported function that returns a result code: a
/// panic becomes [`SLUICE_E_PANIC`] (with its message as the last error).
pub(crate) fn guard(f: impl FnOnce() -> Res) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SLUICE_OK,
        Ok(Err(Fail(code))) => code,
        Err(p) => {
            let msg = panic_message(&*p);
            // Dropping the payload could itself panic; forget it instead.
            std::mem::forget(p);
            Fail::new(SLUICE_E_PANIC, format!("internal error (panic): {msg}")).0
        }
    }
}

/// Runs the body of an exported function that returns a value: a panic
/// returns `fallback`.
pub(crate) fn guard_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let msg = panic_message(&*p);
            std::mem::forget(p);
            Fail::new(SLUICE_E_PANIC, format!("internal error (panic): {msg}"));
            fallback
        }
    }
}

/// Runs Rust code that surrounds a call into C (a callback): a panic is
/// contained and the caller goes on.
pub(crate) fn contain(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        std::mem::forget(p);
    }
}

// ---------------------------------------------------------------------------
// Refusals: the one mapping of the core's send and dispatch errors to codes.

/// A refused send (any object's: channels and sessions refuse with
/// `SendError`, streams with `StreamError`) as its result code.
pub(crate) fn refused(e: impl Into<StreamError>) -> Fail {
    match e.into() {
        StreamError::WouldBlock => {
            Fail::fixed(SLUICE_E_WOULD_BLOCK, c"the send queue is full (would block): nothing was sent; wait for on_drain")
        }
        StreamError::Closed => Fail::fixed(SLUICE_E_CLOSED, c"the channel is closed"),
        StreamError::Ended => Fail::fixed(SLUICE_E_ENDED, c"this side already ended the session (close or error sent)"),
        StreamError::NoSession => Fail::fixed(SLUICE_E_NO_SESSION, c"no such open session"),
        _ => Fail::fixed(SLUICE_E_CLOSED, c"the send was refused"),
    }
}

/// A send's outcome as a result.
pub(crate) fn sent<E: Into<StreamError>>(r: Result<(), E>) -> Res {
    r.map_err(refused)
}

/// A refused dispatch as its result code.
pub(crate) fn dispatch_fail(e: DispatchError) -> Fail {
    match e {
        DispatchError::NotPolled => Fail::fixed(SLUICE_E_NOT_POLLED, c"delivery is inline, not by dispatch"),
        DispatchError::Reentrant => Fail::fixed(
            SLUICE_E_REENTRANT,
            c"dispatch called from inside the object's own callback (or while another thread dispatches it)",
        ),
        _ => Fail::fixed(SLUICE_E_STATE, c"dispatch refused"),
    }
}

// ---------------------------------------------------------------------------
// Arguments.

/// A required borrowed reference.
///
/// # Safety
/// `p` is NULL or valid for reads as a `T` for `'a`.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Res<&'a T> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(what))
}

/// A required mutable reference.
///
/// # Safety
/// `p` is NULL or valid for reads and writes as a `T` for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, what: &str) -> Res<&'a mut T> {
    // SAFETY: per the contract.
    unsafe { p.as_mut() }.ok_or_else(|| Fail::null(what))
}

/// A byte range given as (pointer, length); NULL is allowed when the length
/// is 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: per the contract; `len` > 0 and `p` is not NULL.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Res<&'a str> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Fail::invalid(format!("{what} is not UTF-8")))
}

/// Writes `value` through a required out-pointer.
///
/// # Safety
/// `p` is NULL or valid for writes of a `T`.
pub(crate) unsafe fn put<T>(p: *mut T, value: T, what: &str) -> Res {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: per the contract.
    unsafe { p.write(value) };
    Ok(())
}

/// Copies `s` into a caller's buffer of `cap` bytes, NUL-terminated,
/// truncating if needed; the full length (without the NUL) goes to
/// `out_len` when it is not NULL.
///
/// # Safety
/// `buf` is NULL (only with `cap` 0) or valid for writes of `cap` bytes;
/// `out_len` is NULL or valid for a write.
pub(crate) unsafe fn copy_out(s: &str, buf: *mut c_char, cap: usize, out_len: *mut usize) -> Res {
    if !out_len.is_null() {
        // SAFETY: per the contract.
        unsafe { out_len.write(s.len()) };
    }
    if cap == 0 {
        return Err(Fail::new(SLUICE_E_BUFFER, format!("a buffer of {} bytes is needed", s.len() + 1)));
    }
    if buf.is_null() {
        return Err(Fail::null("buf"));
    }
    let n = s.len().min(cap - 1);
    // SAFETY: `buf` holds `cap` > `n` bytes, and `s` cannot overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    if n < s.len() {
        return Err(Fail::new(SLUICE_E_BUFFER, format!("a buffer of {} bytes is needed", s.len() + 1)));
    }
    Ok(())
}

/// Writes `v` through `out` when it is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write.
pub(crate) unsafe fn put_opt<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: per the contract.
        unsafe { out.write(v) };
    }
}

/// A required endpoint string, parsed.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn endpoint_arg(p: *const c_char, what: &str) -> Res<Endpoint> {
    // SAFETY: per the contract.
    endpoint_of(unsafe { str_arg(p, what) }?)
}

/// Parses an endpoint as `sluice_channel_connect` does.
pub(crate) fn endpoint_of(text: &str) -> Res<Endpoint> {
    Endpoint::parse(text).ok_or_else(|| Fail::invalid(format!("endpoint {text:?} is not host:port, [v6]:port, /path or unix:path")))
}

/// Runs a constructor's body: `*out` is NULL until it succeeds, then the
/// new pointer.
pub(crate) fn make<T>(out: *mut *mut T, f: impl FnOnce() -> Res<*mut T>) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid for a write, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let p = f()?;
        // SAFETY: as above.
        unsafe { out.write(p) };
        Ok(())
    })
}

/// [`make`] for a boxed value.
pub(crate) fn make_box<T>(out: *mut *mut T, f: impl FnOnce() -> Res<T>) -> c_int {
    make(out, || f().map(|v| Box::into_raw(Box::new(v))))
}

/// `_free` of a boxed handle: NULL is a no-op.
pub(crate) fn free_box<T>(p: *mut T) {
    guard_or((), || {
        if !p.is_null() {
            // SAFETY: a pointer from Box::into_raw, freed once by its owner (the C contract).
            drop(unsafe { Box::from_raw(p) });
        }
    })
}

/// Changes a boxed value in place (an options setter).
pub(crate) fn edit<T>(p: *mut T, what: &str, f: impl FnOnce(&mut T) -> Res) -> c_int {
    // SAFETY: NULL or a live pointer, per the C contract.
    guard(|| f(unsafe { arg_mut(p, what) }?))
}

/// Sets `slot` to a checked value.
pub(crate) fn assign<T>(slot: &mut T, value: Res<T>) -> Res {
    *slot = value?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: sluice_last_error never returns NULL.
        unsafe { CStr::from_ptr(sluice_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = guard(|| panic!("boom {}", 7));
        let v = guard_or(42usize, || panic!("again"));
        std::panic::set_hook(prev);
        assert_eq!(code, SLUICE_E_PANIC);
        assert_eq!(v, 42);
        assert_eq!(last(), "internal error (panic): again");
    }

    #[test]
    fn failures_set_the_last_error_and_successes_keep_it() {
        assert_eq!(guard(|| Err(Fail::null("ch"))), SLUICE_E_NULL);
        assert_eq!(last(), "ch is NULL");
        assert_eq!(guard(|| Ok(())), SLUICE_OK);
        assert_eq!(last(), "ch is NULL");
        let e = std::io::Error::from_raw_os_error(98);
        assert_eq!(guard(|| Err(Fail::io("bind", &e))), SLUICE_E_IO);
        assert_eq!(sluice_last_errno(), 98);
        assert!(last().starts_with("bind: "), "{}", last());
        assert_eq!(guard(|| Err(Fail::invalid("x\0y"))), SLUICE_E_INVALID);
        assert_eq!(last(), "xy");
        assert_eq!(sluice_last_errno(), 0);
    }

    #[test]
    fn every_code_has_a_unique_name_and_unknown_ones_none() {
        let mut seen = std::collections::HashSet::new();
        for code in 0..=SLUICE_E_FORKED {
            let n = name_of(code).expect("every code up to the last is named");
            assert!(seen.insert(n));
        }
        assert!(sluice_result_name(-1).is_null());
        assert!(sluice_result_name(SLUICE_E_FORKED + 1).is_null());
    }

    #[test]
    fn copy_out_truncates_and_reports_the_length() {
        let mut buf = [0x55 as c_char; 4];
        let mut n = 0usize;
        let r = unsafe { copy_out("hello", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r.unwrap_err().0, SLUICE_E_BUFFER);
        assert_eq!(n, 5);
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes(), b"hel");
        let mut big = [0 as c_char; 8];
        unsafe { copy_out("hello", big.as_mut_ptr(), big.len(), std::ptr::null_mut()) }.unwrap();
        assert_eq!(unsafe { CStr::from_ptr(big.as_ptr()) }.to_bytes(), b"hello");
    }
}
