//! Cocaine services (`sluice_core::services`) for JavaScript: clients that
//! resolve services through a Locator and call them, a Logger, and the
//! serving side — services defined by JavaScript handlers, attached to a
//! Locator or hosted on their own endpoint, and a Locator server with its
//! registry.
//!
//! * Network operations run as tasks on the core's runtime, never on the
//!   JavaScript thread; their promises are settled on the JavaScript thread
//!   through a threadsafe function ([`Post`]).
//! * A call's replies reach JavaScript one by one through the call's own
//!   threadsafe function; `lib/services.js` turns them into the `Call`'s
//!   events, async iteration, `value()` and `collect()`.
//! * Handlers run on the JavaScript thread: the core's handler (on an I/O
//!   thread) posts the request and its `Responder` to the threadsafe function
//!   of the attachment (or hosted service); `lib/services.js` calls the
//!   JavaScript handler and answers through the `Responder`, at once or
//!   later.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use sluice_core::net::Endpoint;
use sluice_core::services::graph::Node;
use sluice_core::services::{
    self as core, demo, Call as CoreCall, CallSender, ClientConfig, Error as CoreError, Level, Reply, Responder as CoreResponder,
    ServiceError as CoreServiceError, DISPATCH_CATEGORY, UNCAUGHT_ERROR,
};
use sluice_core::wire::Value;

use crate::js;
use crate::options::{endpoint_string, read_endpoint};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Replies of one call on their way to JavaScript at most.
const CALL_WINDOW: usize = 256;

/// Nesting limit of values converted either way (a cyclic object fails).
const MAX_DEPTH: usize = 64;

// ---------------------------------------------------------------------------
// The JavaScript side: functions `lib/services.js` registers.

struct JsFns {
    on_call: sys::napi_ref,
    on_request: sys::napi_ref,
    make_error: sys::napi_ref,
}

thread_local! {
    static FNS: RefCell<Option<JsFns>> = const { RefCell::new(None) };
}

/// Internal: `lib/services.js` hands over its dispatchers once.
#[napi(
    js_name = "_initServices",
    ts_args_type = "onCall: (...args: any[]) => unknown, onRequest: (...args: any[]) => unknown, makeError: (...args: any[]) => unknown"
)]
pub fn init_services(env: Env, on_call: Unknown<'_>, on_request: Unknown<'_>, make_error: Unknown<'_>) -> Result<()> {
    let e = env.raw();
    for f in [&on_call, &on_request, &make_error] {
        if js::type_of(e, f.raw()) != sys::ValueType::napi_function {
            return Err(js::type_error(e, "_initServices takes three functions"));
        }
    }
    let r = |v: &Unknown<'_>| {
        let mut r = ptr::null_mut();
        unsafe { sys::napi_create_reference(e, v.raw(), 1, &mut r) };
        r
    };
    let fns = JsFns { on_call: r(&on_call), on_request: r(&on_request), make_error: r(&make_error) };
    FNS.with(|f| *f.borrow_mut() = Some(fns));
    Ok(())
}

fn registered(env: sys::napi_env, pick: fn(&JsFns) -> sys::napi_ref) -> sys::napi_value {
    FNS.with(|f| match f.borrow().as_ref() {
        Some(fns) => {
            let mut v = ptr::null_mut();
            unsafe { sys::napi_get_reference_value(env, pick(fns), &mut v) };
            v
        }
        None => ptr::null_mut(),
    })
}

fn call_fn(env: sys::napi_env, f: sys::napi_value, this: sys::napi_value, args: &[sys::napi_value]) -> sys::napi_value {
    let mut out = ptr::null_mut();
    if !f.is_null() {
        unsafe { sys::napi_call_function(env, this, f, args.len(), args.as_ptr(), &mut out) };
    }
    out
}

// ---------------------------------------------------------------------------
// Running closures on the JavaScript thread.

type Job = Box<dyn FnOnce(sys::napi_env, sys::napi_value) + Send>;

struct PostCtx {
    /// A JavaScript object the jobs get (held until the function is released).
    obj: sys::napi_ref,
    /// Set when the function is finalized (at its release, or when Node
    /// shuts down): it must not be called or released after that.
    dead: Arc<Mutex<bool>>,
}

/// A threadsafe function that runs closures on the JavaScript thread; each
/// gets the object it holds (or `undefined`). Referenced (Node stays alive)
/// until [`unref`](Post::unref) or its release (when the last clone drops).
pub(crate) struct Post {
    tsfn: sys::napi_threadsafe_function,
    dead: Arc<Mutex<bool>>,
}

// SAFETY: threadsafe functions are made to be called from any thread.
unsafe impl Send for Post {}
unsafe impl Sync for Post {}

unsafe extern "C" fn post_call(env: sys::napi_env, _cb: sys::napi_value, context: *mut c_void, data: *mut c_void) {
    // SAFETY: `data` is the Box<Job> leaked by `Post::post`.
    let job = unsafe { Box::from_raw(data.cast::<Job>()) };
    if env.is_null() {
        return; // shutting down: dropped
    }
    let ctx = context.cast::<PostCtx>();
    let mut obj = js::undefined(env);
    // SAFETY: the context lives until the finalizer, which runs after every call.
    let r = unsafe { (*ctx).obj };
    if !r.is_null() {
        unsafe { sys::napi_get_reference_value(env, r, &mut obj) };
    }
    job(env, obj);
}

unsafe extern "C" fn post_finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the context boxed in `Post::new`.
    let ctx = unsafe { Box::from_raw(data.cast::<PostCtx>()) };
    *lock(&ctx.dead) = true;
    // Deleting the reference may finalize the object, and with it the last
    // `Post` of this function (which then must not release it).
    if !ctx.obj.is_null() && !env.is_null() {
        unsafe { sys::napi_delete_reference(env, ctx.obj) };
    }
}

impl Post {
    fn new(env: sys::napi_env, obj: Option<sys::napi_value>) -> Result<Arc<Post>> {
        let mut r = ptr::null_mut();
        if let Some(o) = obj {
            unsafe { sys::napi_create_reference(env, o, 1, &mut r) };
        }
        let dead = Arc::new(Mutex::new(false));
        let ctx = Box::into_raw(Box::new(PostCtx { obj: r, dead: dead.clone() })).cast::<c_void>();
        let mut name = ptr::null_mut();
        let label = "sluice-services";
        unsafe { sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name) };
        let mut tsfn = ptr::null_mut();
        let s = unsafe {
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                ctx,
                Some(post_finalize),
                ctx,
                Some(post_call),
                &mut tsfn,
            )
        };
        if s != sys::Status::napi_ok {
            unsafe { post_finalize(env, ctx, ptr::null_mut()) };
            return Err(Error::new(Status::GenericFailure, "cannot create a threadsafe function"));
        }
        Ok(Arc::new(Post { tsfn, dead }))
    }

    /// Runs `f` on the JavaScript thread (dropped if Node is shutting down).
    fn post(&self, f: impl FnOnce(sys::napi_env, sys::napi_value) + Send + 'static) {
        let job: Box<Job> = Box::new(Box::new(f));
        let dead = lock(&self.dead);
        if *dead {
            return;
        }
        let raw = Box::into_raw(job);
        let s = unsafe { sys::napi_call_threadsafe_function(self.tsfn, raw.cast(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        drop(dead);
        if s != sys::Status::napi_ok {
            // SAFETY: not queued: still ours.
            drop(unsafe { Box::from_raw(raw) });
        }
    }

    /// Lets Node exit while this is alive (JavaScript thread).
    fn unref(&self, env: sys::napi_env) {
        if *lock(&self.dead) {
            return;
        }
        unsafe { sys::napi_unref_threadsafe_function(env, self.tsfn) };
    }
}

impl Drop for Post {
    fn drop(&mut self) {
        let dead = lock(&self.dead);
        if *dead {
            return;
        }
        unsafe { sys::napi_release_threadsafe_function(self.tsfn, sys::ThreadsafeFunctionReleaseMode::release) };
    }
}

fn runtime(env: sys::napi_env) -> Result<tokio::runtime::Handle> {
    sluice_core::net::runtime::handle()
        .map_err(|e| js::throw(env, js::Kind::Error, "ERR_RUNTIME", &format!("cannot start the I/O runtime: {e}")))
}

struct SendPtr<T>(T);
// SAFETY: only used on the JavaScript thread; carried across threads untouched.
unsafe impl<T> Send for SendPtr<T> {}

/// Runs `fut` on the core runtime; the returned promise settles with
/// `conv(result)` or the error, on the JavaScript thread.
fn promise<'a, T: Send + 'static>(
    env: &'a Env,
    fut: impl std::future::Future<Output = std::result::Result<T, CoreError>> + Send + 'static,
    conv: impl FnOnce(sys::napi_env, T) -> sys::napi_value + Send + 'static,
) -> Result<Unknown<'a>> {
    let e = env.raw();
    let rt = runtime(e)?;
    let post = Post::new(e, None)?;
    let mut d = ptr::null_mut();
    let mut p = ptr::null_mut();
    unsafe { sys::napi_create_promise(e, &mut d, &mut p) };
    let d = SendPtr(d);
    rt.spawn(async move {
        let r = fut.await;
        post.post(move |env, _| {
            let d = d;
            match r {
                Ok(v) => {
                    let v = conv(env, v);
                    let v = if v.is_null() { js::undefined(env) } else { v };
                    unsafe { sys::napi_resolve_deferred(env, d.0, v) };
                }
                Err(err) => unsafe {
                    sys::napi_reject_deferred(env, d.0, error_value(env, &err));
                },
            }
        });
    });
    Ok(unsafe { Unknown::from_raw_unchecked(e, p) })
}

// ---------------------------------------------------------------------------
// Values.

unsafe fn str_value(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) };
    v
}

fn num_value(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_create_double(env, n, &mut v) };
    v
}

fn set(env: sys::napi_env, obj: sys::napi_value, name: &str, v: sys::napi_value) {
    let key = unsafe { str_value(env, name) };
    unsafe { sys::napi_set_property(env, obj, key, v) };
}

fn object(env: sys::napi_env) -> sys::napi_value {
    let mut o = ptr::null_mut();
    unsafe { sys::napi_create_object(env, &mut o) };
    o
}

fn array(env: sys::napi_env, items: impl IntoIterator<Item = sys::napi_value>) -> sys::napi_value {
    let mut a = ptr::null_mut();
    unsafe { sys::napi_create_array(env, &mut a) };
    for (i, v) in items.into_iter().enumerate() {
        unsafe { sys::napi_set_element(env, a, i as u32, v) };
    }
    a
}

const SAFE: f64 = 9_007_199_254_740_991.0;

/// A msgpack value as JavaScript: nil → null, integers → number (BigInt
/// beyond 2^53), str → string (a Buffer if not UTF-8), bin → Buffer,
/// arrays → arrays, maps → objects (a `Map` if a key is not a string),
/// ext → `{ type, data }`.
pub(crate) fn to_js(env: sys::napi_env, v: &Value) -> sys::napi_value {
    let mut out = ptr::null_mut();
    unsafe {
        match v {
            Value::Nil => {
                sys::napi_get_null(env, &mut out);
            }
            Value::Bool(b) => {
                sys::napi_get_boolean(env, *b, &mut out);
            }
            Value::Uint(u) if (*u as f64) <= SAFE => out = num_value(env, *u as f64),
            Value::Uint(u) => {
                sys::napi_create_bigint_uint64(env, *u, &mut out);
            }
            Value::Int(i) if (*i as f64) >= -SAFE => out = num_value(env, *i as f64),
            Value::Int(i) => {
                sys::napi_create_bigint_int64(env, *i, &mut out);
            }
            Value::F32(f) => out = num_value(env, *f as f64),
            Value::F64(f) => out = num_value(env, *f),
            Value::Str(b) => match std::str::from_utf8(b) {
                Ok(s) => out = str_value(env, s),
                Err(_) => out = crate::delivery::buffer_copy(env, b),
            },
            Value::Bin(b) => out = crate::delivery::buffer_copy(env, b),
            Value::Array(items) => out = array(env, items.iter().map(|x| to_js(env, x))),
            Value::Map(pairs) => {
                if pairs.iter().all(|(k, _)| matches!(k, Value::Str(b) if std::str::from_utf8(b).is_ok())) {
                    out = object(env);
                    for (k, x) in pairs {
                        let k = to_js(env, k);
                        sys::napi_set_property(env, out, k, to_js(env, x));
                    }
                } else {
                    let mut global = ptr::null_mut();
                    sys::napi_get_global(env, &mut global);
                    let ctor = js::get_prop(env, global, "Map");
                    sys::napi_new_instance(env, ctor, 0, ptr::null(), &mut out);
                    let setter = js::get_prop(env, out, "set");
                    for (k, x) in pairs {
                        call_fn(env, setter, out, &[to_js(env, k), to_js(env, x)]);
                    }
                }
            }
            Value::Ext(t, b) => {
                out = object(env);
                set(env, out, "type", num_value(env, *t as f64));
                set(env, out, "data", crate::delivery::buffer_copy(env, b));
            }
        }
    }
    out
}

fn is_array(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut is = false;
    unsafe { sys::napi_is_array(env, v, &mut is) };
    is
}

fn elements(env: sys::napi_env, v: sys::napi_value) -> Vec<sys::napi_value> {
    let mut n = 0u32;
    unsafe { sys::napi_get_array_length(env, v, &mut n) };
    (0..n)
        .map(|i| {
            let mut x = ptr::null_mut();
            unsafe { sys::napi_get_element(env, v, i, &mut x) };
            x
        })
        .collect()
}

/// A JavaScript value as msgpack: null/undefined → nil, integers → int,
/// other numbers → float, BigInt → int, strings → str, Buffer/Uint8Array →
/// bin, arrays → arrays, `Map` and plain objects → maps.
pub(crate) fn from_js(env: sys::napi_env, v: sys::napi_value, depth: usize) -> std::result::Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("a value nested too deeply (or cyclic)".into());
    }
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Value::Nil),
        sys::ValueType::napi_boolean => {
            let mut b = false;
            unsafe { sys::napi_get_value_bool(env, v, &mut b) };
            Ok(Value::Bool(b))
        }
        sys::ValueType::napi_number => {
            let n = js::get_number(env, v).unwrap_or(0.0);
            Ok(if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) {
                Value::Uint(n as u64)
            } else if n.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&n) {
                Value::Int(n as i64)
            } else {
                Value::F64(n)
            })
        }
        sys::ValueType::napi_bigint => {
            let mut u = 0u64;
            let mut lossless = false;
            unsafe { sys::napi_get_value_bigint_uint64(env, v, &mut u, &mut lossless) };
            if lossless {
                return Ok(Value::Uint(u));
            }
            let mut i = 0i64;
            unsafe { sys::napi_get_value_bigint_int64(env, v, &mut i, &mut lossless) };
            if lossless {
                return Ok(Value::Int(i));
            }
            Err("a BigInt outside the 64-bit range".into())
        }
        sys::ValueType::napi_string => Ok(Value::Str(js::get_string(env, v).unwrap_or_default().into_bytes().into())),
        sys::ValueType::napi_object => {
            if let Some(b) = js::get_bytes(env, v) {
                return Ok(Value::Bin(bytes::Bytes::copy_from_slice(b)));
            }
            if is_array(env, v) {
                return elements(env, v)
                    .into_iter()
                    .map(|x| from_js(env, x, depth + 1))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(Value::Array);
            }
            let mut global = ptr::null_mut();
            unsafe { sys::napi_get_global(env, &mut global) };
            let map_ctor = js::get_prop(env, global, "Map");
            let mut is_map = false;
            unsafe { sys::napi_instanceof(env, v, map_ctor, &mut is_map) };
            if is_map {
                let from = js::get_prop(env, js::get_prop(env, global, "Array"), "from");
                let pairs = call_fn(env, from, js::undefined(env), &[v]);
                let mut out = Vec::new();
                for pair in elements(env, pairs) {
                    let kv = elements(env, pair);
                    out.push((from_js(env, kv[0], depth + 1)?, from_js(env, kv[1], depth + 1)?));
                }
                return Ok(Value::Map(out));
            }
            let mut keys = ptr::null_mut();
            unsafe { sys::napi_get_property_names(env, v, &mut keys) };
            let mut out = Vec::new();
            for k in elements(env, keys) {
                let mut x = ptr::null_mut();
                unsafe { sys::napi_get_property(env, v, k, &mut x) };
                if js::type_of(env, x) == sys::ValueType::napi_function {
                    continue;
                }
                let key = js::get_string(env, k).unwrap_or_default();
                out.push((Value::Str(key.into_bytes().into()), from_js(env, x, depth + 1)?));
            }
            Ok(Value::Map(out))
        }
        _ => Err("functions and symbols have no msgpack form".into()),
    }
}

/// The elements of an array argument (or nothing for undefined).
fn args_of(env: sys::napi_env, v: Option<&Unknown<'_>>) -> Result<Vec<Value>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if js::is_nullish(env, v.raw()) {
        return Ok(Vec::new());
    }
    if !is_array(env, v.raw()) {
        return Err(js::type_error(env, "the arguments must be an array"));
    }
    elements(env, v.raw())
        .into_iter()
        .map(|x| from_js(env, x, 1))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| js::type_error(env, &m))
}

fn args_js(env: sys::napi_env, args: &[Value]) -> sys::napi_value {
    array(env, args.iter().map(|x| to_js(env, x)))
}

fn reply_js(env: sys::napi_env, r: &Reply) -> sys::napi_value {
    let o = object(env);
    set(env, o, "name", unsafe { str_value(env, &r.name) });
    set(env, o, "args", args_js(env, &r.args));
    o
}

// ---------------------------------------------------------------------------
// Errors.

/// The JavaScript error for a core error, made by `lib/services.js`:
/// `ServiceError`, `NotFoundError`, `UnknownMethodError`,
/// `DisconnectedError`, `TimeoutError`, `ConnectError`, or an `Error` with
/// a `code`.
fn error_value(env: sys::napi_env, e: &CoreError) -> sys::napi_value {
    let props = object(env);
    let s = |x: &str| unsafe { str_value(env, x) };
    let kind = match e {
        CoreError::Service(se) => {
            let mut cat = ptr::null_mut();
            match se.category {
                Some(c) => cat = num_value(env, c as f64),
                None => unsafe {
                    sys::napi_get_null(env, &mut cat);
                },
            }
            set(env, props, "category", cat);
            set(env, props, "code", num_value(env, se.code as f64));
            set(env, props, "message", s(&se.message));
            "service"
        }
        CoreError::NotFound(name) => {
            set(env, props, "service", s(name));
            "notFound"
        }
        CoreError::UnknownMethod { service, method } => {
            set(env, props, "service", s(service));
            set(env, props, "method", s(method));
            "unknownMethod"
        }
        CoreError::Disconnected(errno) => {
            set(env, props, "errno", num_value(env, *errno as f64));
            set(env, props, "code", s(js::errno_name(*errno)));
            "disconnected"
        }
        CoreError::Timeout => "timeout",
        CoreError::Connect { tried, .. } => {
            let list = tried.iter().map(|(ep, errno)| {
                let o = object(env);
                set(env, o, "endpoint", s(ep));
                set(env, o, "errno", num_value(env, *errno as f64));
                set(env, o, "code", s(js::errno_name(*errno)));
                o
            });
            let list: Vec<_> = list.collect();
            set(env, props, "tried", array(env, list));
            let errno = tried.last().map_or(111, |t| t.1);
            set(env, props, "errno", num_value(env, errno as f64));
            set(env, props, "code", s(js::errno_name(errno)));
            "connect"
        }
        other => {
            let code = match other {
                CoreError::NotAllowed(_) => "ERR_NOT_ALLOWED",
                CoreError::WouldBlock => "EAGAIN",
                CoreError::Closed => "ERR_CALL_CLOSED",
                CoreError::BadReply(_) => "ERR_BAD_REPLY",
                CoreError::Overflow(_) => "ERR_OVERFLOW",
                _ => "ERR_SERVICES",
            };
            set(env, props, "code", s(code));
            "other"
        }
    };
    let f = registered(env, |f| f.make_error);
    let out = call_fn(env, f, js::undefined(env), &[s(kind), s(&e.to_string()), props]);
    if out.is_null() {
        unsafe { js::make_error(env, js::Kind::Error, "ERR_SERVICES", &e.to_string()) }
    } else {
        out
    }
}

fn throw_core(env: sys::napi_env, e: &CoreError) -> Error {
    let v = error_value(env, e);
    unsafe { sys::napi_throw(env, v) };
    js::pending()
}

// ---------------------------------------------------------------------------
// Client side.

/// Settings of a `Locator` (and the services and loggers made from it).
#[napi(object)]
#[derive(Default)]
pub struct LocatorOptions {
    /// Milliseconds a connect may take before the next endpoint is tried (default 5000).
    pub connect_timeout: Option<f64>,
    /// Milliseconds to wait for the Locator's answer (default 30000; 0: no limit).
    pub request_timeout: Option<f64>,
}

fn read_endpoints(env: sys::napi_env, v: Option<&Unknown<'_>>, default: &str) -> Result<Vec<Endpoint>> {
    match v {
        Some(v) if !js::is_nullish(env, v.raw()) => {
            if is_array(env, v.raw()) {
                let eps = elements(env, v.raw()).into_iter().map(|x| read_endpoint(env, x)).collect::<Result<Vec<_>>>()?;
                if eps.is_empty() {
                    return Err(js::type_error(env, "at least one endpoint is needed"));
                }
                Ok(eps)
            } else {
                Ok(vec![read_endpoint(env, v.raw())?])
            }
        }
        _ => Ok(vec![Endpoint::parse(default).expect("a valid default endpoint")]),
    }
}

/// A Locator to ask (docs/PROTOCOL.md §7): one or more endpoints, tried in
/// order until one connects (failover).
///
/// ```js
/// const locator = new Locator(['127.0.0.1:10053', 'backup:10053'])
/// const info = await locator.resolve('echo')
/// const [sum] = await locator.service('math').call('add', 2, 3).value()
/// ```
#[napi]
pub struct Locator {
    core: core::Locator,
}

#[napi]
impl Locator {
    /// A Locator at `endpoints` (`'host:port'`, a socket path, `{ host,
    /// port }`, or a list of them; default `'localhost:10053'`).
    #[napi(
        constructor,
        ts_args_type = "endpoints?: string | { host?: string, port: number } | Array<string | { host?: string, port: number }>, options?: LocatorOptions"
    )]
    pub fn new(env: Env, endpoints: Option<Unknown<'_>>, options: Option<LocatorOptions>) -> Result<Self> {
        let e = env.raw();
        let eps = read_endpoints(e, endpoints.as_ref(), "localhost:10053")?;
        let o = options.unwrap_or_default();
        let mut c = ClientConfig::default();
        let ms = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_secs_f64(v / 1000.0))
            } else {
                Err(js::throw(
                    e,
                    js::Kind::RangeError,
                    "ERR_OUT_OF_RANGE",
                    &format!("{what} must be a non-negative number of milliseconds"),
                ))
            }
        };
        if let Some(v) = o.connect_timeout {
            c.connect_timeout = ms(v, "connectTimeout")?;
        }
        if let Some(v) = o.request_timeout {
            c.request_timeout = if v == 0.0 { None } else { Some(ms(v, "requestTimeout")?) };
        }
        Ok(Locator { core: core::Locator::new(eps).with_config(c) })
    }

    /// Its endpoints, in the order they are tried.
    #[napi(getter)]
    pub fn endpoints(&self) -> Vec<String> {
        self.core.endpoints().iter().map(endpoint_string).collect()
    }

    /// Resolves a service: its endpoints, version and methods. Rejects with
    /// a `NotFoundError` if the Locator does not have it online, a
    /// `ConnectError` if no endpoint answers.
    #[napi(ts_return_type = "Promise<Resolved>")]
    pub fn resolve<'a>(&self, env: &'a Env, name: String) -> Result<Unknown<'a>> {
        let l = self.core.clone();
        promise(env, async move { l.resolve(&name).await }, |env, r| resolved_js(env, &r))
    }

    /// A client for the service `name` (resolved and connected on its first call).
    #[napi]
    pub fn service(&self, name: String) -> Service {
        Service { core: self.core.service(&name) }
    }
}

/// A method of a service graph.
#[napi(object)]
pub struct MethodInfo {
    /// Its id (the message type that opens a call).
    pub id: f64,
    /// Its name.
    pub name: String,
    /// The caller's protocol after the call opens (`none`, or
    /// `{0 write*, 1 error, 2 close}`…).
    pub tx: String,
    /// The replies' protocol, in the same form.
    pub rx: String,
}

/// What the Locator says about a service.
#[napi(object)]
pub struct Resolved {
    /// The service name.
    pub name: String,
    /// Where it listens (`host:port`).
    pub endpoints: Vec<String>,
    /// Its protocol version.
    pub version: f64,
    /// Its methods.
    pub graph: Vec<MethodInfo>,
    /// The printable form: the service, its endpoints and one line per method.
    pub text: String,
}

fn methods(g: &core::graph::Graph) -> Vec<MethodInfo> {
    g.methods().iter().map(|m| MethodInfo { id: m.id as f64, name: m.name.clone(), tx: m.tx.to_string(), rx: m.rx.to_string() }).collect()
}

fn resolved_js(env: sys::napi_env, r: &core::Resolved) -> sys::napi_value {
    let v = Resolved {
        name: r.name.clone(),
        endpoints: r.endpoints.iter().map(endpoint_string).collect(),
        version: r.version as f64,
        graph: methods(&r.graph),
        text: r.to_string(),
    };
    unsafe { Resolved::to_napi_value(env, v) }.unwrap_or_else(|_| js::undefined(env))
}

/// A client for one service: resolved through its Locator and connected on
/// the first call (again after the connection ends).
#[napi]
pub struct Service {
    core: core::Service,
}

#[napi]
impl Service {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.core.name().to_string()
    }

    /// `'closed'`, `'connecting'`, `'connected'` or `'error'` (the last connect failed).
    #[napi(getter, ts_return_type = "'closed' | 'connecting' | 'connected' | 'error'")]
    pub fn state(&self) -> &'static str {
        match self.core.state() {
            core::ServiceState::Closed => "closed",
            core::ServiceState::Connecting => "connecting",
            core::ServiceState::Connected => "connected",
            core::ServiceState::Error => "error",
        }
    }

    /// What the last resolve said (`null` before the first connection).
    #[napi(getter)]
    pub fn info(&self) -> Option<Resolved> {
        self.core.info().map(|r| Resolved {
            name: r.name.clone(),
            endpoints: r.endpoints.iter().map(endpoint_string).collect(),
            version: r.version as f64,
            graph: methods(&r.graph),
            text: r.to_string(),
        })
    }

    /// The endpoint of the current connection (`null` when not connected).
    #[napi(getter)]
    pub fn connected_to(&self) -> Option<String> {
        self.core.connected_to().as_ref().map(endpoint_string)
    }

    /// Resolves and connects unless connected.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'a>(&self, env: &'a Env) -> Result<Unknown<'a>> {
        let s = self.core.clone();
        promise(env, async move { s.connect().await }, |env, ()| js::undefined(env))
    }

    /// Calls `method` with `args`; the replies come through the returned
    /// `Call`. Errors (not found, unknown method, no connection) come
    /// through the call too.
    #[napi(ts_args_type = "method: string, ...args: any[]")]
    pub fn call<'a>(&self, env: &'a Env, method: String, args: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Call>> {
        let values = args_of(env.raw(), args.as_ref())?;
        let s = self.core.clone();
        let m = method.clone();
        start_call(env, self.core.name().to_string(), method, async move { s.call(&m, values).await })
    }

    /// Closes the connection (calls in progress fail); the next call connects again.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }
}

enum Sending {
    /// Before the call is open: sends wait here.
    Queued(Vec<(String, Vec<Value>)>),
    Open(CallSender),
    Failed,
}

/// A call in progress: a stream of replies, each `{ name, args }` (`value`,
/// `write`, `close`…). An `error` reply, or the failure of the call, is a
/// `ServiceError` (or another error) that ends it.
///
/// Use it as an async iterator (`for await (const r of call)`, throws the
/// error), through `value()` (primitive methods: the arguments of `value`)
/// or `collect()` (every reply), or as an EventEmitter: `'reply' (reply)`,
/// `'error' (err)` (emitted only if listened to), `'end' ()`. Replies are
/// kept for the iterator, `value()` and `collect()` unless a `'reply'`
/// listener takes them first. A call in progress keeps Node running.
#[napi]
pub struct Call {
    service: String,
    method: String,
    sending: Arc<Mutex<Sending>>,
}

fn start_call<'a>(
    env: &'a Env,
    service: String,
    method: String,
    open: impl std::future::Future<Output = std::result::Result<CoreCall, CoreError>> + Send + 'static,
) -> Result<ClassInstance<'a, Call>> {
    let e = env.raw();
    let rt = runtime(e)?;
    let sending = Arc::new(Mutex::new(Sending::Queued(Vec::new())));
    let inst = Call { service, method, sending: sending.clone() }.into_instance(env)?;
    let post = Post::new(e, Some(inst.value))?;
    // Replies posted to JavaScript and not yet run: past this the task
    // stops reading, and the call's unread replies wait in the core (which
    // fails the call past its own limit, ClientConfig::max_pending).
    let window = Arc::new(tokio::sync::Semaphore::new(CALL_WINDOW));
    let deliver =
        move |post: &Post, item: Option<std::result::Result<Reply, CoreError>>, permit: Option<tokio::sync::OwnedSemaphorePermit>| {
            post.post(move |env, obj| {
                let _permit = permit;
                let f = registered(env, |f| f.on_call);
                let s = |x: &str| unsafe { str_value(env, x) };
                let args = match &item {
                    Some(Ok(r)) => [s("reply"), reply_js(env, r)],
                    Some(Err(e)) => [s("error"), error_value(env, e)],
                    None => [s("end"), js::undefined(env)],
                };
                call_fn(env, f, js::undefined(env), &[obj, args[0], args[1]]);
            })
        };
    rt.spawn(async move {
        let mut call = match open.await {
            Ok(c) => c,
            Err(e) => {
                *lock(&sending) = Sending::Failed;
                return deliver(&post, Some(Err(e)), None);
            }
        };
        let queued = std::mem::replace(&mut *lock(&sending), Sending::Open(call.sender()));
        if let Sending::Queued(q) = queued {
            for (name, args) in q {
                if let Err(e) = call.send(&name, &args) {
                    *lock(&sending) = Sending::Failed;
                    return deliver(&post, Some(Err(e)), None);
                }
            }
        }
        loop {
            let Ok(permit) = window.clone().acquire_owned().await else { return };
            let Some(item) = call.recv().await else { break };
            let failed = item.is_err();
            deliver(&post, Some(item), Some(permit));
            if failed {
                *lock(&sending) = Sending::Failed;
                return;
            }
        }
        deliver(&post, None, None);
    });
    Ok(inst)
}

#[napi]
impl Call {
    /// The service called.
    #[napi(getter)]
    pub fn service(&self) -> String {
        self.service.clone()
    }

    /// The method called.
    #[napi(getter)]
    pub fn method(&self) -> String {
        self.method.clone()
    }

    /// Sends message `name` of the method's tx protocol (e.g. `write`
    /// then `close` for a method whose tx is streaming, like
    /// `echo.relay`). Before the call is open, messages wait and go out in
    /// order. Throws if the protocol does not allow it now.
    #[napi(ts_args_type = "name: string, ...args: any[]")]
    pub fn send(&self, env: Env, name: String, args: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let values = args_of(e, args.as_ref())?;
        let mut st = lock(&self.sending);
        match &mut *st {
            Sending::Queued(q) => {
                q.push((name, values));
                Ok(())
            }
            Sending::Open(s) => s.send(&name, &values).map_err(|err| throw_core(e, &err)),
            Sending::Failed => Err(throw_core(e, &CoreError::Closed)),
        }
    }
}

fn level_of(env: sys::napi_env, v: &Unknown<'_>) -> Result<Level> {
    if let Some(n) = js::get_int(env, v.raw()) {
        return Ok(Level::from_i64(n));
    }
    js::get_string(env, v.raw())
        .and_then(|s| Level::from_name(&s))
        .ok_or_else(|| js::type_error(env, "a level is 'debug', 'info', 'warning', 'error' or 0..3"))
}

fn attributes_of(env: sys::napi_env, v: Option<&Unknown<'_>>) -> Result<Vec<(String, Value)>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if js::is_nullish(env, v.raw()) {
        return Ok(Vec::new());
    }
    match from_js(env, v.raw(), 0).map_err(|m| js::type_error(env, &m))? {
        Value::Map(pairs) => Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_else(|| k.to_string()), v))
            .collect()),
        _ => Err(js::type_error(env, "attributes must be an object")),
    }
}

/// A client of the `logging` service (docs/PROTOCOL.md §7.4). Messages below
/// the service's verbosity (asked once per connection) are not sent.
#[napi]
pub struct Logger {
    core: Arc<core::Logger>,
}

#[napi]
impl Logger {
    /// A logger whose messages carry `source` (e.g. `'app/name'`), through
    /// the `logging` service of `locator`.
    #[napi(constructor)]
    pub fn new(locator: &Locator, source: String) -> Self {
        Logger { core: Arc::new(core::Logger::with_service(locator.core.service("logging"), &source)) }
    }

    /// The source every message carries.
    #[napi(getter)]
    pub fn source(&self) -> String {
        self.core.source().to_string()
    }

    /// Sends a message with attributes (`{ name: value }`) unless its level
    /// (`'debug'`, `'info'`, `'warning'`, `'error'` or 0..3) is below the
    /// service's verbosity; resolves whether it was sent.
    #[napi(
        ts_args_type = "level: 'debug' | 'info' | 'warning' | 'error' | number, message: string, attributes?: Record<string, any>",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn emit<'a>(&self, env: &'a Env, level: Unknown<'_>, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let level = level_of(env.raw(), &level)?;
        self.send(env, level, message, attributes)
    }

    fn send<'a>(&self, env: &'a Env, level: Level, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let attrs = attributes_of(env.raw(), attributes.as_ref())?;
        let l = self.core.clone();
        promise(
            env,
            async move {
                let a: Vec<(&str, Value)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                l.emit(level, &message, &a).await
            },
            |env, sent| {
                let mut v = ptr::null_mut();
                unsafe { sys::napi_get_boolean(env, sent, &mut v) };
                v
            },
        )
    }

    /// `emit('debug', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn debug<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Debug, message, attributes)
    }

    /// `emit('info', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn info<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Info, message, attributes)
    }

    /// `emit('warning', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn warning<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Warning, message, attributes)
    }

    /// `emit('error', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn error<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Error, message, attributes)
    }
}

// ---------------------------------------------------------------------------
// Serving side.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primitive,
    Streaming,
}

/// A service to provide: a name, a protocol version and methods whose
/// handlers are JavaScript functions, run on the JavaScript thread.
///
/// * `primitive(name, handler)`: `handler(...args)` returns the arguments
///   of the `value` reply as an array (a non-array `v` answers `value(v)`,
///   `undefined` answers `value()`), or a Promise of them; throwing (or
///   rejecting) answers `error`: a `ServiceError`'s category and code, else
///   `[7, 7]` with the message.
/// * `streaming(name, handler)`: `handler(responder, ...args)` answers
///   through the `Responder` (`write`*, then `close`; or `error`), at once
///   or later; throwing before the answer is complete answers `error`.
///
/// ```js
/// const def = new ServiceDef('greeter', 1)
///   .primitive('hello', (name) => [`hello, ${name}`])
///   .streaming('count', (out, n) => { for (let i = 0; i < n; i++) out.write(i); out.close() })
/// const attached = await attach(locator, def)
/// ```
#[napi]
pub struct ServiceDef {
    name: String,
    version: u32,
    methods: Vec<(String, Kind)>,
}

#[napi]
impl ServiceDef {
    /// An empty service `name` of protocol version `version` (default 1).
    #[napi(constructor)]
    pub fn new(name: String, version: Option<u32>) -> Self {
        ServiceDef { name, version: version.unwrap_or(1), methods: Vec::new() }
    }

    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The protocol version.
    #[napi(getter)]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The method names, in id order.
    #[napi(getter)]
    pub fn methods(&self) -> Vec<String> {
        self.methods.iter().map(|m| m.0.clone()).collect()
    }

    /// Adds a primitive method (see the class); returns the definition.
    #[napi(ts_args_type = "name: string, handler: (...args: any[]) => unknown", ts_return_type = "this")]
    pub fn primitive(&mut self, env: Env, name: String, handler: Unknown<'_>) -> Result<()> {
        self.add(env, name, handler, Kind::Primitive)
    }

    /// Adds a streaming method (see the class); returns the definition.
    #[napi(ts_args_type = "name: string, handler: (responder: Responder, ...args: any[]) => unknown", ts_return_type = "this")]
    pub fn streaming(&mut self, env: Env, name: String, handler: Unknown<'_>) -> Result<()> {
        self.add(env, name, handler, Kind::Streaming)
    }

    fn add(&mut self, env: Env, name: String, handler: Unknown<'_>, kind: Kind) -> Result<()> {
        // The handler itself is kept by lib/services.js, by method index.
        if js::type_of(env.raw(), handler.raw()) != sys::ValueType::napi_function {
            return Err(js::type_error(env.raw(), "a handler must be a function"));
        }
        if self.methods.iter().any(|m| m.0 == name) {
            return Err(js::throw(env.raw(), js::Kind::Error, "ERR_DUPLICATE_METHOD", &format!("method '{name}' is defined already")));
        }
        self.methods.push((name, kind));
        Ok(())
    }
}

/// The core definition whose handlers post each request to JavaScript.
fn build_def(def: &ServiceDef, post: &Arc<Post>) -> core::ServiceDef {
    let mut out = core::ServiceDef::new(&def.name, def.version as u64);
    for (index, (name, kind)) in def.methods.iter().enumerate() {
        let rx = match kind {
            Kind::Primitive => Node::primitive(),
            Kind::Streaming => Node::streaming(),
        };
        let post = post.clone();
        out = out.method(name, Node::Terminal, rx, move |req, responder| {
            let args = req.args;
            post.post(move |env, def_obj| {
                let args = args_js(env, &args);
                let r = match (Responder { out: Mutex::new(Some(responder)) }).into_instance(&Env::from_raw(env)) {
                    Ok(r) => r.value,
                    Err(_) => return,
                };
                let f = registered(env, |f| f.on_request);
                call_fn(env, f, js::undefined(env), &[def_obj, num_value(env, index as f64), args, r]);
            });
            None
        });
    }
    out
}

/// Answers one call. Dropped (garbage-collected) before the answer is
/// complete, it answers `error([7, 7])`, so the caller never waits forever.
///
/// Its sends throw `Error`s with a `code`: `'EAGAIN'` while 8 MiB wait to
/// be written on the connection (nothing was sent: retry a little later),
/// `'ERR_NOT_ALLOWED'` for a message the protocol does not allow now,
/// `'ERR_CALL_CLOSED'` once the answer is complete.
#[napi]
pub struct Responder {
    out: Mutex<Option<CoreResponder>>,
}

#[napi]
impl Responder {
    fn with(&self, env: Env, f: impl FnOnce(&mut CoreResponder) -> std::result::Result<(), CoreError>) -> Result<()> {
        let mut g = lock(&self.out);
        let Some(r) = g.as_mut() else { return Err(throw_core(env.raw(), &CoreError::Closed)) };
        let res = f(r);
        if r.is_done() {
            *g = None;
        }
        res.map_err(|e| throw_core(env.raw(), &e))
    }

    /// Sends message `name` of the reply protocol in force.
    #[napi(ts_args_type = "name: string, ...args: any[]")]
    pub fn send(&self, env: Env, name: String, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.send(&name, &values))
    }

    /// `value(args...)`: the answer of a primitive method.
    #[napi(ts_args_type = "...args: any[]")]
    pub fn value(&self, env: Env, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.value(values))
    }

    /// `write(args...)`: one piece of a stream.
    #[napi(ts_args_type = "...args: any[]")]
    pub fn write(&self, env: Env, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.write(values))
    }

    /// `close()`: the end of a stream.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.with(env, |r| r.close())
    }

    /// `error([category, code], message)` from a `ServiceError` (or any
    /// object with a numeric `code`, and `category`); any other error
    /// answers `[7, 7]` (uncaught error) with its message.
    #[napi(ts_args_type = "error: ServiceError | { category?: number | null, code: number, message?: string } | Error")]
    pub fn error(&self, env: Env, error: Unknown<'_>) -> Result<()> {
        let se = service_error_of(env.raw(), error.raw());
        self.with(env, |r| r.error(&se))
    }

    /// Whether the answer is complete.
    #[napi(getter)]
    pub fn done(&self) -> bool {
        lock(&self.out).is_none()
    }
}

fn service_error_of(env: sys::napi_env, v: sys::napi_value) -> CoreServiceError {
    let t = js::type_of(env, v);
    let message = |v: sys::napi_value| {
        if let Some(s) = js::get_string(env, v) {
            return s;
        }
        let mut s = ptr::null_mut();
        unsafe { sys::napi_coerce_to_string(env, v, &mut s) };
        let mut pending = false;
        unsafe { sys::napi_is_exception_pending(env, &mut pending) };
        if pending {
            let mut ex = ptr::null_mut();
            unsafe { sys::napi_get_and_clear_last_exception(env, &mut ex) };
            return "an error without a message".into();
        }
        js::get_string(env, s).unwrap_or_default()
    };
    if t == sys::ValueType::napi_object || t == sys::ValueType::napi_function {
        let code = js::get_int(env, js::get_prop(env, v, "code"));
        let cat = js::get_prop(env, v, "category");
        let msg = js::get_prop(env, v, "message");
        let msg = if js::is_nullish(env, msg) { String::new() } else { message(msg) };
        if let Some(code) = code {
            let category = if js::is_nullish(env, cat) { None } else { js::get_int(env, cat) };
            if js::is_nullish(env, cat) || category.is_some() {
                return CoreServiceError { category, code, message: msg };
            }
        }
        return CoreServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, msg);
    }
    CoreServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, message(v))
}

/// A service provided over this program's connection to a sluice Locator
/// (remote invocation, `docs/attach.md`): online while attached; its
/// handlers answer the Locator's invocations. Keeps Node running until
/// `detach()`.
#[napi]
pub struct Attached {
    core: Mutex<Option<core::Attached>>,
    post: Arc<Post>,
    name: String,
    endpoints: Vec<String>,
}

/// Attaches `def` to the Locator: from then on the Locator announces it and
/// sends every call to its handlers over this connection. Resolves once the
/// Locator has it online.
#[napi(ts_return_type = "Promise<Attached>")]
pub fn attach<'a>(env: &'a Env, locator: &Locator, def: ClassInstance<'_, ServiceDef>) -> Result<Unknown<'a>> {
    let post = Post::new(env.raw(), Some(def.value))?;
    let core_def = build_def(&def, &post);
    let l = locator.core.clone();
    promise(env, async move { core::Attached::attach(&l, core_def).await }, move |env, a| {
        let name = a.name().to_string();
        let endpoints = a.endpoints().iter().map(endpoint_string).collect();
        let obj = Attached { core: Mutex::new(Some(a)), post, name, endpoints };
        obj.into_instance(&Env::from_raw(env)).map(|i| i.value).unwrap_or_else(|_| js::undefined(env))
    })
}

#[napi]
impl Attached {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Where the Locator lets other clients reach the service.
    #[napi(getter)]
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.clone()
    }

    /// Whether the connection to the Locator is up (the service online).
    #[napi(getter)]
    pub fn live(&self) -> bool {
        lock(&self.core).as_ref().is_some_and(|a| a.is_live())
    }

    /// Takes the service offline (`discard`) and closes the connection.
    #[napi]
    pub fn detach(&self, env: Env) {
        if let Some(a) = lock(&self.core).take() {
            a.detach();
            self.post.unref(env.raw());
        }
    }
}

/// A service listening on its own endpoint. Keeps Node running until `close()`.
#[napi]
pub struct Hosted {
    core: Arc<Mutex<Option<core::Hosted>>>,
    publication: Arc<Mutex<Option<core::Publication>>>,
    post: Arc<Post>,
    name: String,
    version: u32,
    graph: core::graph::Graph,
    endpoint: String,
    endpoints: Vec<Endpoint>,
}

/// Serves `def` on `endpoint` (`'host:port'`, port 0 picks a free one, or a
/// socket path).
#[napi(ts_args_type = "def: ServiceDef, endpoint?: string | { host?: string, port: number } | { path: string }")]
pub fn host<'a>(env: &'a Env, def: ClassInstance<'_, ServiceDef>, endpoint: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Hosted>> {
    let e = env.raw();
    let ep = match endpoint {
        Some(v) if !js::is_nullish(e, v.raw()) => read_endpoint(e, v.raw())?,
        _ => Endpoint::Tcp("127.0.0.1".into(), 0),
    };
    let post = Post::new(e, Some(def.value))?;
    let core_def = build_def(&def, &post);
    let graph = core_def.graph().clone();
    let h = core::Hosted::bind(core_def, &ep).map_err(|err| throw_core(e, &err))?;
    let endpoint = endpoint_string(h.local());
    let endpoints = h.endpoints();
    Hosted {
        core: Arc::new(Mutex::new(Some(h))),
        publication: Arc::default(),
        post,
        name: def.name.clone(),
        version: def.version,
        graph,
        endpoint,
        endpoints,
    }
    .into_instance(env)
}

#[napi]
impl Hosted {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Where it listens (with the actual port).
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Publishes the service to a Locator (`publish`, docs/PROTOCOL.md §7.2):
    /// it is online there until `unpublish()` or `close()`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn publish<'a>(&self, env: &'a Env, locator: &Locator) -> Result<Unknown<'a>> {
        let (l, name, eps, version, graph, slot) = (
            locator.core.clone(),
            self.name.clone(),
            self.endpoints.clone(),
            self.version as u64,
            self.graph.clone(),
            self.publication.clone(),
        );
        promise(
            env,
            async move {
                let p = core::Publication::publish(&l, &name, &eps, version, &graph).await?;
                *lock(&slot) = Some(p);
                Ok(())
            },
            |env, ()| js::undefined(env),
        )
    }

    /// Takes the publication offline (the service keeps listening).
    #[napi]
    pub fn unpublish(&self) {
        lock(&self.publication).take();
    }

    /// Stops listening, closes the callers' connections and the publication.
    #[napi]
    pub fn close(&self, env: Env) {
        lock(&self.publication).take();
        if let Some(h) = lock(&self.core).take() {
            h.close();
            self.post.unref(env.raw());
        }
    }
}

/// A service a registry knows.
#[napi(object)]
pub struct Entry {
    /// The service name.
    pub name: String,
    /// Where callers reach it.
    pub endpoints: Vec<String>,
    /// Its protocol version.
    pub version: f64,
    /// Whether it can be resolved now.
    pub online: bool,
    /// Who registered it: `local`, `published by ADDR`, `attached by ADDR`.
    pub origin: String,
    /// Its methods.
    pub graph: Vec<MethodInfo>,
}

fn entry_of(e: &core::Entry) -> Entry {
    Entry {
        name: e.name.clone(),
        endpoints: e.endpoints.iter().map(endpoint_string).collect(),
        version: e.version as f64,
        online: e.online,
        origin: e.origin.clone(),
        graph: methods(&e.graph),
    }
}

/// The services a `LocatorServer` announces. An EventEmitter: `'change'
/// (entry)` whenever a service comes online or goes offline.
#[napi]
pub struct Registry {
    core: core::Registry,
}

#[napi]
impl Registry {
    /// Every service known, online or not, by name.
    #[napi]
    pub fn list(&self) -> Vec<Entry> {
        self.core.list().iter().map(entry_of).collect()
    }

    /// The service `name`, online or not (`null` if unknown).
    #[napi]
    pub fn get(&self, name: String) -> Option<Entry> {
        self.core.get(&name).as_ref().map(entry_of)
    }

    /// Registers a hosted service as online for good (origin `local`).
    #[napi]
    pub fn add(&self, hosted: &Hosted) {
        self.core.add(&hosted.name, hosted.endpoints.clone(), hosted.version as u64, hosted.graph.clone());
    }

    /// Invokes `method` of a service a client attached, over that client's
    /// connection (remote invocation); the replies come through the `Call`.
    #[napi(ts_args_type = "name: string, method: string, args?: any[]")]
    pub fn invoke<'a>(&self, env: &'a Env, name: String, method: String, args: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Call>> {
        let values = args_of(env.raw(), args.as_ref())?;
        let r = self.core.invoke(&name, &method, values);
        start_call(env, name, method, async move { r })
    }
}

/// Options of the demo services.
#[napi(object)]
#[derive(Default)]
pub struct DemoOptions {
    /// The `logging` service's verbosity (`'debug'`… `'error'`, default `'debug'`).
    pub verbosity: Option<String>,
}

/// A message the demo `logging` service received (the `'log'` event).
#[napi(object)]
pub struct LogRecord {
    /// Its level: `debug`, `info`, `warning` or `error`.
    pub level: String,
    /// Its source.
    pub source: String,
    /// The message.
    pub message: String,
}

/// A Locator listening for clients, answering from its `registry`
/// (`resolve`, `publish`, and the sluice extensions `attach` and
/// `services`). An EventEmitter: `'log' (record)` for each message the
/// demo `logging` service accepts. Keeps Node running until `close()`.
#[napi]
pub struct LocatorServer {
    core: Mutex<Option<core::LocatorServer>>,
    registry_obj: SendPtr<sys::napi_ref>,
    /// Until `close()`: they hold the registry and this object.
    changes: Arc<Mutex<Option<Arc<Post>>>>,
    logs: Arc<Mutex<Option<Arc<Post>>>>,
    demos: Mutex<Vec<core::Hosted>>,
    endpoint: String,
    host: String,
}

#[napi]
impl LocatorServer {
    /// Listens on `endpoint` (default `'127.0.0.1:0'`: a free port).
    #[napi(constructor, ts_args_type = "endpoint?: string | { host?: string, port: number }")]
    pub fn new(env: Env, this: This, endpoint: Option<Unknown<'_>>) -> Result<Self> {
        let e = env.raw();
        let ep = match endpoint {
            Some(v) if !js::is_nullish(e, v.raw()) => read_endpoint(e, v.raw())?,
            _ => Endpoint::Tcp("127.0.0.1".into(), 0),
        };
        let host = match &ep {
            Endpoint::Tcp(h, _) if h != "0.0.0.0" && h != "::" => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let registry = core::Registry::new();
        let server = core::LocatorServer::bind(&ep, registry.clone()).map_err(|err| throw_core(e, &err))?;
        let endpoint = endpoint_string(server.local());
        let reg = Registry { core: registry.clone() }.into_instance(&env)?;
        let mut r = ptr::null_mut();
        unsafe { sys::napi_create_reference(e, reg.value, 1, &mut r) };
        let changes = Arc::new(Mutex::new(Some(Post::new(e, Some(reg.value))?)));
        let c = changes.clone();
        registry.on_change(move |entry| {
            let entry = entry_of(entry);
            let Some(post) = lock(&c).clone() else { return };
            post.post(move |env, obj| {
                let v = unsafe { Entry::to_napi_value(env, entry) }.unwrap_or_else(|_| js::undefined(env));
                emit(env, obj, "change", &[v]);
            });
        });
        let logs = Post::new(e, Some(this.raw()))?;
        logs.unref(e);
        let logs = Arc::new(Mutex::new(Some(logs)));
        Ok(LocatorServer {
            core: Mutex::new(Some(server)),
            registry_obj: SendPtr(r),
            changes,
            logs,
            demos: Mutex::default(),
            endpoint,
            host,
        })
    }

    /// Where it listens (`host:port`, with the actual port).
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Its registry (the same object each time).
    #[napi(getter, ts_return_type = "Registry")]
    pub fn registry<'a>(&self, env: &'a Env) -> Unknown<'a> {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_reference_value(env.raw(), self.registry_obj.0, &mut v) };
        unsafe { Unknown::from_raw_unchecked(env.raw(), v) }
    }

    /// A `Locator` client of this server.
    #[napi]
    pub fn locator(&self) -> Locator {
        let ep = Endpoint::parse(&self.endpoint).expect("a listening endpoint parses");
        Locator { core: core::Locator::new(vec![ep]) }
    }

    /// Hosts the built-in demo services on free ports and registers them:
    /// `echo` (echo, ping, fail, relay), `math` (add, sub, mul, div), `kv`
    /// (get, set, del, keys) and `logging` (with `verbosity`; the messages
    /// it accepts are `'log'` events). Returns their names.
    #[napi]
    pub fn add_demo_services(&self, env: Env, options: Option<DemoOptions>) -> Result<Vec<String>> {
        let e = env.raw();
        let o = options.unwrap_or_default();
        let verbosity = match o.verbosity.as_deref() {
            None => Level::Debug,
            Some(s) => Level::from_name(s).ok_or_else(|| js::type_error(e, "verbosity is 'debug', 'info', 'warning' or 'error'"))?,
        };
        let logs = self.logs.clone();
        let sink = move |rec: demo::LogRecord| {
            let r = LogRecord { level: rec.level.name().into(), source: rec.source, message: rec.message };
            let Some(post) = lock(&logs).clone() else { return };
            post.post(move |env, obj| {
                let v = unsafe { LogRecord::to_napi_value(env, r) }.unwrap_or_else(|_| js::undefined(env));
                emit(env, obj, "log", &[v]);
            });
        };
        let reg = lock(&self.core).as_ref().map(|s| s.registry().clone()).ok_or_else(|| throw_core(e, &CoreError::Closed))?;
        let mut names = Vec::new();
        let mut demos = lock(&self.demos);
        for def in [demo::echo(), demo::math(), demo::kv(), demo::logging(verbosity, sink)] {
            let h = core::Hosted::bind(def, &Endpoint::Tcp(self.host.clone(), 0)).map_err(|err| throw_core(e, &err))?;
            let d = h.def();
            reg.add(d.name(), h.endpoints(), d.version(), d.graph().clone());
            names.push(d.name().to_string());
            demos.push(h);
        }
        Ok(names)
    }

    /// How many clients are connected.
    #[napi(getter)]
    pub fn connections(&self) -> u32 {
        lock(&self.core).as_ref().map_or(0, |s| s.connections() as u32)
    }

    /// Stops listening and closes every client connection (what they
    /// registered goes offline) and the demo services.
    #[napi]
    pub fn close(&self) {
        if let Some(s) = lock(&self.core).take() {
            s.close();
            for h in lock(&self.demos).drain(..) {
                h.close();
            }
            // Released: Node may exit, and the objects they held may go.
            let changes = lock(&self.changes).take();
            let logs = lock(&self.logs).take();
            drop((changes, logs));
        }
    }
}

fn emit(env: sys::napi_env, obj: sys::napi_value, name: &str, args: &[sys::napi_value]) {
    let f = js::get_prop(env, obj, "emit");
    if js::type_of(env, f) != sys::ValueType::napi_function {
        return;
    }
    let mut all = vec![unsafe { str_value(env, name) }];
    all.extend_from_slice(args);
    call_fn(env, f, obj, &all);
}
