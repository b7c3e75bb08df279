//! Cocaine services, the serving side: `sluice_service_def` (a service whose
//! methods are C handlers), `sluice_responder`, `sluice_attached` (a service
//! provided over the client's own Locator connection), `sluice_hosted` and
//! `sluice_publication` (a service on its own listening endpoint, announced
//! to a Locator), `sluice_locator_server` and `sluice_registry` (a Locator
//! in this process, with the demo services).
//!
//! Here: service definitions, handlers and responders; then `attached`,
//! `hosted`, `registry` and `server`. cbindgen reads a module's own
//! items first, then its submodules by name: the names keep the header's
//! order.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, Mutex};

use sluice_core::net::Endpoint;
use sluice_core::services::graph::Node;
use sluice_core::services::{
    demo, Attached, Entry, Hosted, LocatorServer, Publication, Registry, Request, Responder, ServiceDef, ServiceError,
};

use crate::guard::{
    arg, bytes_arg, c_string, contain, copy_out, endpoint_of, free_box, guard, guard_or, make, make_box, put, str_arg, Fail, Res,
    SLUICE_E_NOT_FOUND, SLUICE_E_STATE,
};
use crate::release::{OnDrop, Ud};
use crate::roles::sized_callbacks;
use crate::services::{args_of, encode, fail, joined, level_of, lock, sluice_call, sluice_locator, wait};
use sluice_core::wire::Value;

// ---------------------------------------------------------------------------
// Service definitions and handlers.

/// `sluice_service_def_add`: a primitive method, answered with one
/// `sluice_responder_value` or `sluice_responder_error`.
pub const SLUICE_METHOD_PRIMITIVE: c_int = 0;
/// `sluice_service_def_add`: a streaming method, answered with any number
/// of `sluice_responder_write`, then `sluice_responder_close` (or
/// `sluice_responder_error`).
pub const SLUICE_METHOD_STREAMING: c_int = 1;

/// The answer to one call of a hosted or attached method. Opaque; handed to
/// the method's `on_call`, which owns it: answer it (now, or later from any
/// thread) and release it with `sluice_responder_free`, exactly once. Freed
/// before a complete answer, it answers `error([7, 7], "'METHOD' ended
/// without a reply")` itself, so the caller never waits for nothing.
/// Functions on one responder must not run on two threads at once.
#[allow(non_camel_case_types)]
pub struct sluice_responder {
    r: Mutex<Responder>,
}

/// A method's handler. Set `size` to `sizeof(sluice_handler)` (see "sized
/// callbacks" in the notes on `sluice_engine_callbacks`); the members may
/// be NULL. Copied by `sluice_service_def_add`.
///
/// **Thread.** `on_call` runs on a library I/O thread, one call at a time
/// per connection: it must not block, and blocking sluice calls made there
/// (`sluice_service_call`, `sluice_call_next`, ...) return
/// `SLUICE_E_WRONG_THREAD`. A handler that needs time keeps the responder
/// and answers from another thread. Calls on different connections may run
/// `on_call` concurrently.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_handler {
    /// `sizeof(sluice_handler)`, set by the caller: the library reads only
    /// this many bytes of the struct (members past them count as NULL).
    pub size: usize,
    /// A call of the method: `method` (NUL-terminated) and its arguments
    /// (`args`, a msgpack array), valid until it returns; `r` is the
    /// handler's to answer and free. NULL: each call is answered
    /// `error([7, 7], ...)`.
    pub on_call:
        Option<unsafe extern "C" fn(userdata: *mut c_void, r: *mut sluice_responder, method: *const c_char, args: *const u8, len: usize)>,
    /// No `on_call` of this handler will run again (the last service
    /// definition, hosted and attached service that held it are gone):
    /// `userdata` may be freed. May run on any thread.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

struct CHandler {
    cbs: sluice_handler,
    ud: Ud,
    _release: OnDrop,
}

impl CHandler {
    fn call(&self, req: Request, out: Responder) {
        let Some(f) = self.cbs.on_call else { return };
        let method = c_string(req.method);
        let args = encode(&Value::Array(req.args));
        let r = Box::into_raw(Box::new(sluice_responder { r: Mutex::new(out) }));
        // SAFETY: the user's callback and data; the strings live for the call.
        contain(|| unsafe { f(self.ud.0, r, method.as_ptr(), args.as_ptr(), args.len()) });
    }
}

/// A service to provide: name, protocol version and methods with C
/// handlers. Opaque; made by `sluice_service_def_new`, released by
/// `sluice_service_def_free`. `sluice_locator_attach` and
/// `sluice_hosted_bind` copy it (the copies share the handlers), so it may
/// be freed or extended afterwards without affecting them. Not
/// thread-safe: build it on one thread.
#[allow(non_camel_case_types)]
pub struct sluice_service_def {
    def: Option<ServiceDef>,
}

/// A new, empty service `name` with protocol `version`, into `*out` (NULL
/// on failure).
#[no_mangle]
pub unsafe extern "C" fn sluice_service_def_new(name: *const c_char, version: u64, out: *mut *mut sluice_service_def) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let name = unsafe { str_arg(name, "name") }?;
        if name.is_empty() {
            return Err(Fail::invalid("the service name is empty"));
        }
        let def = ServiceDef::new(name, version);
        Ok(sluice_service_def { def: Some(def) })
    })
}

/// Adds the method `name` of `kind` (`SLUICE_METHOD_PRIMITIVE` or
/// `_STREAMING`) at the next method id, handled by `handler` (copied) with
/// `userdata`. On success `handler->on_release` is called once the handler
/// is no longer used; on failure never. Errors: `SLUICE_E_NULL`,
/// `SLUICE_E_INVALID` (kind, an empty or repeated name, `handler->size`).
#[no_mangle]
pub unsafe extern "C" fn sluice_service_def_add(
    def: *mut sluice_service_def,
    name: *const c_char,
    kind: c_int,
    handler: *const sluice_handler,
    userdata: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let d = unsafe { def.as_mut() }.ok_or_else(|| Fail::null("def"))?;
        let name = unsafe { str_arg(name, "name") }?;
        if handler.is_null() {
            return Err(Fail::null("handler"));
        }
        let cbs = unsafe { sized_callbacks(handler, "handler") }?;
        let rx = match kind {
            SLUICE_METHOD_PRIMITIVE => Node::primitive(),
            SLUICE_METHOD_STREAMING => Node::streaming(),
            _ => return Err(Fail::invalid(format!("unknown method kind {kind}"))),
        };
        let current = d.def.take().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the service definition is unusable"))?;
        if name.is_empty() || current.graph().method(name).is_some() {
            d.def = Some(current);
            return Err(Fail::invalid(format!("method name {name:?} is empty or already defined")));
        }
        let h = Arc::new(CHandler { cbs, ud: Ud(userdata), _release: OnDrop(cbs.on_release, Ud(userdata)) });
        d.def = Some(current.method(name, Node::Terminal, rx, move |req, out| {
            h.call(req, out);
            None
        }));
        Ok(())
    })
}

/// Releases a service definition. NULL is a no-op. Services attached or
/// hosted from it keep their copies.
#[no_mangle]
pub unsafe extern "C" fn sluice_service_def_free(def: *mut sluice_service_def) {
    free_box(def)
}

unsafe fn def_of<'a>(def: *const sluice_service_def) -> Res<&'a ServiceDef> {
    // SAFETY: per the contract.
    unsafe { arg(def, "def") }?.def.as_ref().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the service definition is unusable"))
}

fn respond(r: *mut sluice_responder, f: impl FnOnce(&mut Responder) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live responder, per the C contract.
        let r = unsafe { arg(r.cast_const(), "r") }?;
        f(&mut lock(&r.r))
    })
}

/// Answers a primitive call: `value(args...)` (`args` a msgpack array;
/// NULL/0: none). Errors: `SLUICE_E_STATE` (not allowed now: the method
/// streams, or the answer is complete), `SLUICE_E_CLOSED` (the caller's
/// connection is gone), `SLUICE_E_WOULD_BLOCK`, `SLUICE_E_INVALID`.
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_value(r: *mut sluice_responder, args: *const u8, len: usize) -> c_int {
    respond(r, |out| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        let a = args_of(unsafe { bytes_arg(args, len, "args") }?, "args")?;
        out.value(a).map_err(fail)
    })
}

/// Sends one piece of a streaming answer: `write(args...)`. Errors as
/// `sluice_responder_value`.
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_write(r: *mut sluice_responder, args: *const u8, len: usize) -> c_int {
    respond(r, |out| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        let a = args_of(unsafe { bytes_arg(args, len, "args") }?, "args")?;
        out.write(a).map_err(fail)
    })
}

/// Ends a streaming answer: `close()`. Errors as `sluice_responder_value`.
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_close(r: *mut sluice_responder) -> c_int {
    respond(r, |out| out.close().map_err(fail))
}

/// Answers with an error: `error([category, code], message)` (`message`
/// UTF-8, NUL-terminated; NULL: empty). Applications use category 42. The
/// caller gets `SLUICE_E_SERVICE` with these. Errors as
/// `sluice_responder_value`.
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_error(r: *mut sluice_responder, category: i64, code: i64, message: *const c_char) -> c_int {
    respond(r, |out| {
        // SAFETY: NULL or a valid string, per the C contract.
        let m = if message.is_null() { "" } else { unsafe { str_arg(message, "message") }? };
        out.error(&ServiceError::new(category, code, m)).map_err(fail)
    })
}

/// 1 if the answer is complete (a value, a close or an error was sent),
/// else 0 (also for NULL).
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_is_done(r: *const sluice_responder) -> c_int {
    // SAFETY: NULL or a live responder, per the C contract.
    guard_or(0, || unsafe { r.as_ref() }.map_or(0, |r| c_int::from(lock(&r.r).is_done())))
}

/// Releases a responder; if its answer is not complete, the caller gets
/// `error([7, 7], ...)` (uncaught error). NULL is a no-op. Any thread.
#[no_mangle]
pub unsafe extern "C" fn sluice_responder_free(r: *mut sluice_responder) {
    free_box(r)
}

mod attached;
mod hosted;
mod registry;
mod server;
pub use attached::*;
pub use hosted::*;
pub use registry::*;
pub use server::*;
