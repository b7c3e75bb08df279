//! Cocaine services (`sluice_core::services`) for JavaScript: clients that
//! resolve services through a Locator and call them, a Logger, and the
//! serving side — services defined by JavaScript handlers, attached to a
//! Locator or hosted on their own endpoint, and a Locator server with its
//! registry.
//!
//! * Network operations run as tasks on the core's runtime, never on the
//!   JavaScript thread; their promises are settled on the JavaScript thread
//!   through the hub ([`Post`]).
//! * A call's replies reach JavaScript one by one through the call's own
//!   `Post`; `lib/services.js` turns them into the `Call`'s events, async
//!   iteration, `value()` and `collect()` ([`client`]).
//! * Handlers run on the JavaScript thread: the core's handler (on an I/O
//!   thread) posts the request and its `Responder` through the `Post` of
//!   the attachment (or hosted service); `lib/services.js` calls the
//!   JavaScript handler and answers through the `Responder`, at once or
//!   later ([`serving`]).
//! * [`locator_server`] — a Locator server, its registry and the demo
//!   services; [`values`] — msgpack values to JavaScript and back.

mod client;
mod locator_server;
mod serving;
mod values;

use client::*;
use serving::*;

use std::cell::RefCell;
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

use crate::hub::Post;
use crate::js;
use crate::options::{endpoint_string, read_endpoint, read_endpoints};
use values::{args_js, args_of, from_js, object, reply_js, set};

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
// Errors.

/// The JavaScript error for a core error, made by `lib/services.js`:
/// `ServiceError`, `NotFoundError`, `UnknownMethodError`,
/// `DisconnectedError`, `TimeoutError`, `ConnectError`, or an `Error` with
/// a `code`.
fn error_value(env: sys::napi_env, e: &CoreError) -> sys::napi_value {
    let s = |x: &str| js::string(env, x);
    let n = |x: f64| js::number(env, x);
    let errno = |errno: i32| [("errno", n(errno as f64)), ("code", s(sluice_core::errno::name(errno)))];
    let props = |pairs: &[(&str, sys::napi_value)]| {
        let o = object(env);
        pairs.iter().for_each(|(k, v)| set(env, o, k, *v));
        o
    };
    let (kind, props) = match e {
        CoreError::Service(se) => {
            let category = se.category.map_or_else(|| js::null(env), |c| n(c as f64));
            ("service", props(&[("category", category), ("code", n(se.code as f64)), ("message", s(&se.message))]))
        }
        CoreError::NotFound(name) => ("notFound", props(&[("service", s(name))])),
        CoreError::UnknownMethod { service, method } => ("unknownMethod", props(&[("service", s(service)), ("method", s(method))])),
        CoreError::Disconnected(no) => ("disconnected", props(&errno(*no))),
        CoreError::Timeout => ("timeout", props(&[])),
        CoreError::Connect { tried, .. } => {
            let list = tried.iter().map(|(ep, no)| {
                let [a, b] = errno(*no);
                props(&[("endpoint", s(ep)), a, b])
            });
            let [a, b] = errno(tried.last().map_or(111, |t| t.1));
            ("connect", props(&[("tried", js::array(env, list)), a, b]))
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
            ("other", props(&[("code", s(code))]))
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

fn emit(env: sys::napi_env, obj: sys::napi_value, name: &str, args: &[sys::napi_value]) {
    let f = js::get_prop(env, obj, "emit");
    if js::type_of(env, f) != sys::ValueType::napi_function {
        return;
    }
    let mut all = vec![js::string(env, name)];
    all.extend_from_slice(args);
    call_fn(env, f, obj, &all);
}
