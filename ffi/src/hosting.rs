//! Cocaine services, the serving side: `sluice_service_def` (a service whose
//! methods are C handlers), `sluice_responder`, `sluice_attached` (a service
//! provided over the client's own Locator connection), `sluice_hosted` and
//! `sluice_publication` (a service on its own listening endpoint, announced
//! to a Locator), `sluice_locator_server` and `sluice_registry` (a Locator
//! in this process, with the demo services).

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

// ---------------------------------------------------------------------------
// Attached services.

/// A service this program provides over its own connection to a sluice
/// Locator, without listening anywhere (remote invocation: the Locator
/// gives other clients an endpoint and relays their calls over this
/// connection). Opaque; made by `sluice_locator_attach`. Online until
/// `sluice_attached_detach` or `sluice_attached_free` (or the end of the
/// connection). Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_attached {
    a: Mutex<Option<Attached>>,
    endpoints: CString,
}

/// Attaches `def` (copied) to the Locator (blocking, at most `timeout_ms`;
/// 0: no limit): from then on the Locator announces it, and its handlers
/// answer every call made to it. The handle goes to `*out` (NULL on
/// failure). Errors: `SLUICE_E_IO` (no Locator endpoint answered),
/// `SLUICE_E_SERVICE` (refused, e.g. `[10, 4]`: a service of that name is
/// already online), `SLUICE_E_TIMEOUT`, `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_attach(
    loc: *const sluice_locator,
    def: *const sluice_service_def,
    timeout_ms: u64,
    out: *mut *mut sluice_attached,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let d = unsafe { def_of(def) }?.clone();
        let a = wait(timeout_ms, Attached::attach(&l.loc, d))?;
        let endpoints = c_string(joined(a.endpoints()));
        Ok(sluice_attached { a: Mutex::new(Some(a)), endpoints })
    })
}

/// Where the Locator lets other clients reach the attached service,
/// comma-separated `host:port`. NULL for NULL; owned by `a`.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_endpoints(a: *const sluice_attached) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { a.as_ref() }.map_or(std::ptr::null(), |a| a.endpoints.as_ptr()))
}

/// 1 while the connection to the Locator is up (the service online), else
/// 0 (also for NULL).
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_is_live(a: *const sluice_attached) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { a.as_ref() }.map_or(0, |a| c_int::from(lock(&a.a).as_ref().is_some_and(Attached::is_live))))
}

/// Detaches the service: sends `discard` (it goes offline at the Locator)
/// and closes the connection; calls in progress end. The handle stays
/// valid (`sluice_attached_is_live` gives 0) until `sluice_attached_free`.
/// Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_detach(a: *const sluice_attached) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let a = unsafe { arg(a, "a") }?;
        let taken = lock(&a.a).take();
        drop(taken);
        Ok(())
    })
}

/// Detaches the service (it goes offline at the Locator), closes the
/// connection and releases the handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_free(a: *mut sluice_attached) {
    free_box(a)
}

// ---------------------------------------------------------------------------
// Hosted services.

/// A service listening on its own endpoint. Opaque; made by
/// `sluice_hosted_bind`, stopped and released by `sluice_hosted_free`.
/// Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_hosted {
    h: Hosted,
    endpoint: CString,
}

/// Serves `def` (copied) on `endpoint` (`host:port`; port 0 picks a free
/// one), into `*out` (NULL on failure). Errors: `SLUICE_E_INVALID`
/// (endpoint), `SLUICE_E_IO` (e.g. the address is in use).
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_bind(
    def: *const sluice_service_def,
    endpoint: *const c_char,
    out: *mut *mut sluice_hosted,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let d = unsafe { def_of(def) }?.clone();
        let ep = endpoint_of(unsafe { str_arg(endpoint, "endpoint") }?.trim())?;
        let h = Hosted::bind(d, &ep).map_err(fail)?;
        let endpoint = c_string(joined(&h.endpoints()));
        Ok(sluice_hosted { h, endpoint })
    })
}

/// Where the service can be reached (`host:port` with the actual port; a
/// wildcard address is given as loopback). NULL for NULL; owned by `h`.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_endpoint(h: *const sluice_hosted) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { h.as_ref() }.map_or(std::ptr::null(), |h| h.endpoint.as_ptr()))
}

/// Stops listening, closes the callers' connections and releases the
/// handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_free(h: *mut sluice_hosted) {
    free_box(h)
}

/// A hosted service announced to a Locator with `publish`. Opaque; online
/// there while it lives: `sluice_publication_free` takes it offline.
#[allow(non_camel_case_types)]
pub struct sluice_publication {
    _p: Publication,
}

/// Publishes the hosted service to the Locator (blocking, at most
/// `timeout_ms`; 0: no limit) into `*out` (NULL on failure). Errors as
/// `sluice_locator_attach`.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_publish(
    h: *const sluice_hosted,
    loc: *const sluice_locator,
    timeout_ms: u64,
    out: *mut *mut sluice_publication,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let h = unsafe { arg(h, "h") }?;
        let l = unsafe { arg(loc, "loc") }?;
        let p = wait(timeout_ms, h.h.publish(&l.loc))?;
        Ok(sluice_publication { _p: p })
    })
}

/// Takes the published service offline (`discard`) and releases the
/// handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_publication_free(p: *mut sluice_publication) {
    free_box(p)
}

// ---------------------------------------------------------------------------
// The registry.

/// The services a Locator announces. Opaque; made by `sluice_registry_new`
/// or `sluice_locator_server_registry`, released by `sluice_registry_free`
/// (handles share one table). Thread-safe.
///
/// A service attached or published by a client is online while that
/// registration lives, and goes offline at once when it is discarded or
/// its connection drops; registering the name again brings it back.
#[allow(non_camel_case_types)]
pub struct sluice_registry {
    reg: Registry,
}

/// A service the registry knows. The strings are NUL-terminated and belong
/// to the array `sluice_registry_list`/`_get` made (or, in `on_change`, to
/// the library until the callback returns).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct sluice_entry {
    /// The service name.
    pub name: *const c_char,
    /// Where callers reach it, comma-separated `host:port`.
    pub endpoints: *const c_char,
    /// Its protocol version.
    pub version: u64,
    /// 1 if it can be resolved now, 0 if it went offline.
    pub online: c_int,
    /// Who registered it: `local`, `published by ADDR`, `attached by ADDR`.
    pub origin: *const c_char,
}

fn entry_raw(e: &Entry) -> sluice_entry {
    sluice_entry {
        name: c_string(e.name.clone()).into_raw(),
        endpoints: c_string(joined(&e.endpoints)).into_raw(),
        version: e.version,
        online: c_int::from(e.online),
        origin: c_string(e.origin.clone()).into_raw(),
    }
}

fn entries_out(list: Vec<Entry>) -> (*mut sluice_entry, usize) {
    let v: Vec<sluice_entry> = list.iter().map(entry_raw).collect();
    let n = v.len();
    if n == 0 {
        return (std::ptr::null_mut(), 0);
    }
    (Box::into_raw(v.into_boxed_slice()).cast::<sluice_entry>(), n)
}

/// A new, empty registry into `*out`, for `sluice_locator_server_bind`.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_new(out: *mut *mut sluice_registry) -> c_int {
    make_box(out, || Ok(sluice_registry { reg: Registry::new() }))
}

/// Releases a registry handle (the table lives on in its Locator server
/// and other handles). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_free(reg: *mut sluice_registry) {
    free_box(reg)
}

/// Every service known, online or not, by name: an array of `*n` entries
/// into `*entries` (NULL when `*n` is 0), released by
/// `sluice_entries_free(*entries, *n)`.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_list(reg: *const sluice_registry, entries: *mut *mut sluice_entry, n: *mut usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(entries, std::ptr::null_mut(), "entries") }?;
        unsafe { put(n, 0, "n") }?;
        let r = unsafe { arg(reg, "reg") }?;
        let (p, len) = entries_out(r.reg.list());
        unsafe {
            entries.write(p);
            n.write(len);
        }
        Ok(())
    })
}

/// The service `name`, online or not, as an array of one entry into
/// `*entry` (release it with `sluice_entries_free(*entry, 1)`).
/// `SLUICE_E_NOT_FOUND` if the registry never had it.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_get(reg: *const sluice_registry, name: *const c_char, entry: *mut *mut sluice_entry) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(entry, std::ptr::null_mut(), "entry") }?;
        let r = unsafe { arg(reg, "reg") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let e = r.reg.get(name).ok_or_else(|| Fail::new(SLUICE_E_NOT_FOUND, format!("the registry has no service '{name}'")))?;
        let (p, _) = entries_out(vec![e]);
        unsafe { entry.write(p) };
        Ok(())
    })
}

/// Releases an array of `n` entries from `sluice_registry_list` or `_get`.
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_entries_free(entries: *mut sluice_entry, n: usize) {
    guard_or((), || {
        if entries.is_null() || n == 0 {
            return;
        }
        // SAFETY: an array of `n` entries made by entries_out, freed once.
        let all = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(entries, n)) };
        for e in all.iter() {
            for s in [e.name, e.endpoints, e.origin] {
                // SAFETY: made by CString::into_raw in entry_raw.
                drop(unsafe { CString::from_raw(s.cast_mut()) });
            }
        }
    })
}

/// A registry's change callbacks. Set `size` to
/// `sizeof(sluice_registry_callbacks)`; members may be NULL.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_registry_callbacks {
    /// `sizeof(sluice_registry_callbacks)`, set by the caller.
    pub size: usize,
    /// A service came online (`entry->online` 1; also when registered in
    /// this process) or went offline (0). Runs on the thread that made the
    /// change: a library I/O thread for clients' attach, publish and
    /// disconnections (do not block there; blocking sluice calls return
    /// `SLUICE_E_WRONG_THREAD`), or the caller's thread for
    /// `sluice_registry_add_hosted` and `sluice_locator_server_add_demo`.
    /// `entry` is valid until it returns.
    pub on_change: Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const sluice_entry)>,
    /// The registry (every handle, and the Locator server using it) is
    /// gone: no callback follows; `userdata` may be freed.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

struct CListener {
    cbs: sluice_registry_callbacks,
    ud: Ud,
    _release: OnDrop,
}

impl CListener {
    fn changed(&self, e: &Entry) {
        let Some(f) = self.cbs.on_change else { return };
        let (name, endpoints, origin) = (c_string(e.name.clone()), c_string(joined(&e.endpoints)), c_string(e.origin.clone()));
        let entry = sluice_entry {
            name: name.as_ptr(),
            endpoints: endpoints.as_ptr(),
            version: e.version,
            online: c_int::from(e.online),
            origin: origin.as_ptr(),
        };
        // SAFETY: the user's callback and data; the entry lives for the call.
        contain(|| unsafe { f(self.ud.0, &entry) });
    }
}

/// Adds change callbacks (copied) with `userdata`: `on_change` for every
/// service coming online or going offline from now on. They stay until the
/// registry is gone, then `on_release` runs. Errors: `SLUICE_E_NULL`,
/// `SLUICE_E_INVALID` (`cbs->size`); then `on_release` is never called.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_on_change(
    reg: *const sluice_registry,
    cbs: *const sluice_registry_callbacks,
    userdata: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let r = unsafe { arg(reg, "reg") }?;
        if cbs.is_null() {
            return Err(Fail::null("cbs"));
        }
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let l = CListener { cbs, ud: Ud(userdata), _release: OnDrop(cbs.on_release, Ud(userdata)) };
        r.reg.on_change(move |e| l.changed(e));
        Ok(())
    })
}

/// Calls `method` of the service `name` that a connected client attached:
/// the call goes over that client's own connection and the client answers
/// on it (remote invocation). Does not block: the call goes to `*out`
/// (NULL on failure), read it as any call. Errors: `SLUICE_E_NOT_FOUND`
/// (not online, or not attached by a client), `SLUICE_E_UNKNOWN_METHOD`,
/// `SLUICE_E_DISCONNECTED`, `SLUICE_E_INVALID` (args).
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_invoke(
    reg: *const sluice_registry,
    name: *const c_char,
    method: *const c_char,
    args: *const u8,
    args_len: usize,
    out: *mut *mut sluice_call,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let r = unsafe { arg(reg, "reg") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let method = unsafe { str_arg(method, "method") }?;
        let args = args_of(unsafe { bytes_arg(args, args_len, "args") }?, "args")?;
        Ok(sluice_call::into_raw(r.reg.invoke(name, method, args).map_err(fail)?))
    })
}

/// Registers a hosted service of this process, online for good (it stays
/// listed after the hosted service is freed; resolving it then gives an
/// endpoint nobody listens on).
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_add_hosted(reg: *const sluice_registry, h: *const sluice_hosted) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let r = unsafe { arg(reg, "reg") }?;
        let h = unsafe { arg(h, "h") }?;
        r.reg.add(h.h.name(), h.h.endpoints(), h.h.def().version(), h.h.def().graph().clone());
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// The Locator server.

/// Log lines of the demo `logging` service kept at most.
const DEMO_LOG_LINES: usize = 1000;

/// A Locator listening in this process, answering from its registry
/// (`resolve`, `publish`, `attach`, `services`, ...). Opaque; made by
/// `sluice_locator_server_bind`, stopped and released by
/// `sluice_locator_server_free`. Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_locator_server {
    srv: LocatorServer,
    endpoint: CString,
    demos: Mutex<Vec<Hosted>>,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// Starts a Locator on `endpoint` (`host:port`; port 0 picks a free one)
/// answering from `reg` (NULL: a new registry; a registry is shared, not
/// copied), where it registers itself as `locator`. The handle goes to
/// `*out` (NULL on failure). Errors: `SLUICE_E_INVALID` (endpoint),
/// `SLUICE_E_IO` (e.g. the address is in use).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_bind(
    endpoint: *const c_char,
    reg: *const sluice_registry,
    out: *mut *mut sluice_locator_server,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let ep = endpoint_of(unsafe { str_arg(endpoint, "endpoint") }?.trim())?;
        let registry = match unsafe { reg.as_ref() } {
            Some(r) => r.reg.clone(),
            None => Registry::new(),
        };
        let srv = LocatorServer::bind(&ep, registry).map_err(fail)?;
        let local = match srv.local() {
            Endpoint::Tcp(h, p) if h == "0.0.0.0" => Endpoint::Tcp("127.0.0.1".into(), *p),
            Endpoint::Tcp(h, p) if h == "::" => Endpoint::Tcp("::1".into(), *p),
            e => e.clone(),
        };
        let s = sluice_locator_server { srv, endpoint: c_string(local.to_string()), demos: Mutex::new(Vec::new()), log: Arc::default() };
        Ok(s)
    })
}

/// Where the Locator listens (`host:port` with the actual port; a wildcard
/// address is given as loopback): what `sluice_locator_new` takes. NULL
/// for NULL; owned by `srv`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_endpoint(srv: *const sluice_locator_server) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { srv.as_ref() }.map_or(std::ptr::null(), |s| s.endpoint.as_ptr()))
}

/// A handle to the server's registry into `*out` (release it with
/// `sluice_registry_free`).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_registry(srv: *const sluice_locator_server, out: *mut *mut sluice_registry) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let s = unsafe { arg(srv, "srv") }?;
        Ok(sluice_registry { reg: s.srv.registry().clone() })
    })
}

/// Hosts the built-in demo services next to the Locator (same host, free
/// ports) and registers them: `echo` (`echo(args...)` streams each
/// argument back, `ping(args...)` answers them as a value, `fail(code,
/// msg)` answers `error([42, code], msg)`, `relay()` echoes the caller's
/// writes), `math` (`add`, `sub`, `mul`, `div` of numbers), `kv` (`get`,
/// `set`, `del`, `keys`) and `logging` with `verbosity` (`SLUICE_LOG_*`:
/// messages below it are refused by loggers; those received are kept for
/// `sluice_locator_server_demo_log`). They stop with the server. Errors:
/// `SLUICE_E_INVALID` (verbosity), `SLUICE_E_STATE` (already added),
/// `SLUICE_E_IO`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_add_demo(srv: *const sluice_locator_server, verbosity: c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let s = unsafe { arg(srv, "srv") }?;
        let level = level_of(verbosity)?;
        let mut demos = lock(&s.demos);
        if !demos.is_empty() {
            return Err(Fail::fixed(SLUICE_E_STATE, c"the demo services were already added"));
        }
        let host = match s.srv.local() {
            Endpoint::Tcp(h, _) => h.clone(),
            Endpoint::Unix(_) => "127.0.0.1".into(),
        };
        let log = s.log.clone();
        let logging = demo::logging(level, move |r| {
            let mut l = lock(&log);
            if l.len() == DEMO_LOG_LINES {
                l.pop_front();
            }
            l.push_back(r.to_string());
        });
        let mut hosted = Vec::new();
        for def in [demo::echo(), demo::math(), demo::kv(), logging] {
            hosted.push(Hosted::bind(def, &Endpoint::Tcp(host.clone(), 0)).map_err(fail)?);
        }
        let entries: Vec<_> =
            hosted.iter().map(|h| (h.name().to_string(), h.endpoints(), h.def().version(), h.def().graph().clone())).collect();
        *demos = hosted;
        drop(demos);
        // Change callbacks run here: not under the lock.
        for (name, endpoints, version, graph) in entries {
            s.srv.registry().add(&name, endpoints, version, graph);
        }
        Ok(())
    })
}

/// The messages the demo `logging` service received (the last 1000), one
/// per line (`[error] app/NAME: message {name=value, ...}`), into `buf`
/// (`cap` bytes, NUL-terminated); the full length goes to `*len` (may be
/// NULL). `SLUICE_E_BUFFER` if `buf` was too small (truncated).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_demo_log(
    srv: *const sluice_locator_server,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let s = unsafe { arg(srv, "srv") }?;
        let text: String = lock(&s.log).iter().map(|l| format!("{l}\n")).collect();
        unsafe { copy_out(&text, buf, cap, len) }
    })
}

/// The number of clients connected to the Locator (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_connections(srv: *const sluice_locator_server) -> usize {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { srv.as_ref() }.map_or(0, |s| s.srv.connections()))
}

/// Stops the Locator: stops listening, closes every client connection
/// (what they attached or published goes offline) and the demo services,
/// and releases the handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_free(srv: *mut sluice_locator_server) {
    free_box(srv)
}
