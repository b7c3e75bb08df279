//! The one threadsafe function of an environment, through which
//! everything reaches the JavaScript thread: ports' batches
//! (`port.rs`) and jobs ([`Post`]: the services' promises, calls and
//! handlers). Its lifecycle is written once here: made by `_init`,
//! referenced while a port or job target is open (so Node stays alive),
//! unreferenced otherwise (so Node can exit), finalized with the
//! environment.
//!
//! It is napi's raw threadsafe function, not napi-rs's typed
//! `ThreadsafeFunction`: a call carries no value (it is a wake-up coalesced
//! across every port and job; the data waits in the ready list), its
//! callback drains the list in rounds under a time budget, and its
//! reference is switched on the JavaScript thread as ports open and end —
//! none of which the typed wrapper (one converted value per call)
//! expresses.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;

use crate::js;
use crate::port::{lock, Port};

/// What waits for the JavaScript thread: a port's batch, or a job.
pub(crate) enum Due {
    Port(Arc<Port>),
    Job(Box<dyn FnOnce(sys::napi_env) + Send>),
}

struct Ready {
    list: Vec<Due>,
    /// A call of the threadsafe function is queued.
    scheduled: bool,
    /// Null once the environment has finalized the function.
    tsfn: sys::napi_threadsafe_function,
    /// Ports and job targets open: the function is referenced while any is.
    open: usize,
}

// SAFETY: the threadsafe function handle may be used from any thread.
unsafe impl Send for Ready {}

/// One per JavaScript environment: the threadsafe function and the list of
/// ports that have something to deliver.
pub(crate) struct Hub {
    ready: Mutex<Ready>,
    dead: AtomicBool,
}

impl Hub {
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub(crate) fn schedule(&self, due: Due) {
        let mut r = lock(&self.ready);
        if r.tsfn.is_null() {
            return; // the environment is gone
        }
        r.list.push(due);
        if !r.scheduled {
            r.scheduled = true;
            unsafe { sys::napi_call_threadsafe_function(r.tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        }
    }

    /// Switches the function's reference (JavaScript thread): referenced
    /// while a port is open.
    fn count(&self, env: sys::napi_env, delta: isize) {
        let mut r = lock(&self.ready);
        let was = r.open > 0;
        r.open = r.open.saturating_add_signed(delta);
        if (r.open > 0) != was && !r.tsfn.is_null() {
            unsafe {
                if was {
                    sys::napi_unref_threadsafe_function(env, r.tsfn)
                } else {
                    sys::napi_ref_threadsafe_function(env, r.tsfn)
                }
            };
        }
    }

    /// A port or job target opened: Node stays alive (JavaScript thread).
    pub(crate) fn open(&self, env: sys::napi_env) {
        self.count(env, 1)
    }

    /// It ended (JavaScript thread).
    pub(crate) fn close(&self, env: sys::napi_env) {
        self.count(env, -1)
    }
}

unsafe extern "C" fn call_js(env: sys::napi_env, js_cb: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    if env.is_null() || context.is_null() {
        return;
    }
    // SAFETY: `context` is the `Arc<Hub>` leaked in `init`, alive until
    // `finalize` (which runs after the last call).
    let hub = unsafe { &*(context as *const Hub) };
    // While this runs, `scheduled` stays set: ports that get events meanwhile
    // only join the list (no wake-up call from the I/O thread) and are taken
    // in the next round here. The rounds end when the list is empty, or
    // after a while, to let the rest of the event loop run: then one more
    // call is queued.
    let start = std::time::Instant::now();
    let mut thrown = ptr::null_mut();
    let mut spare = Vec::new();
    loop {
        let mut list = {
            let mut r = lock(&hub.ready);
            if r.list.is_empty() {
                r.scheduled = false;
                break;
            }
            if start.elapsed() > Duration::from_millis(2) {
                if !r.tsfn.is_null() {
                    unsafe { sys::napi_call_threadsafe_function(r.tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
                }
                break;
            }
            std::mem::replace(&mut r.list, std::mem::take(&mut spare))
        };
        let mut items = list.drain(..);
        for due in items.by_ref() {
            let mut scope = ptr::null_mut();
            unsafe { sys::napi_open_handle_scope(env, &mut scope) };
            match due {
                Due::Port(port) => unsafe { port.deliver(env, js_cb) },
                Due::Job(job) => job(env),
            }
            let mut pending = false;
            unsafe { sys::napi_is_exception_pending(env, &mut pending) };
            if pending {
                unsafe { sys::napi_get_and_clear_last_exception(env, &mut thrown) };
            }
            unsafe { sys::napi_close_handle_scope(env, scope) };
            if !thrown.is_null() {
                break;
            }
        }
        if !thrown.is_null() {
            // An exception (the dispatcher's own, or a job's callback): what
            // is left goes in the next call; this one ends by rethrowing it,
            // as an uncaught exception.
            let rest: Vec<Due> = items.collect();
            let mut r = lock(&hub.ready);
            r.list.splice(0..0, rest);
            if !r.tsfn.is_null() {
                unsafe { sys::napi_call_threadsafe_function(r.tsfn, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
            }
            drop(r);
            unsafe { sys::napi_throw(env, thrown) };
            return;
        }
        drop(items);
        spare = list;
    }
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Arc<Hub>` leaked in `init`.
    let hub = unsafe { Arc::from_raw(data as *const Hub) };
    hub.dead.store(true, Ordering::Release);
    let mut r = lock(&hub.ready);
    r.tsfn = ptr::null_mut();
    r.list.clear();
}

unsafe extern "C" fn drop_instance(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        drop(unsafe { Box::from_raw(data.cast::<Arc<Hub>>()) });
    }
}

/// Sets up delivery for this environment with the JavaScript dispatcher
/// (`lib/dispatch.js`). Called once by `index.js`.
pub(crate) fn init(env: sys::napi_env, dispatcher: sys::napi_value) -> Result<()> {
    let mut existing = ptr::null_mut();
    unsafe { sys::napi_get_instance_data(env, &mut existing) };
    if !existing.is_null() {
        return Ok(());
    }
    let hub = Arc::new(Hub {
        ready: Mutex::new(Ready { list: Vec::new(), scheduled: false, tsfn: ptr::null_mut(), open: 0 }),
        dead: AtomicBool::new(false),
    });
    let raw = Arc::into_raw(hub.clone()) as *mut c_void;
    let name = js::string(env, "sluice");
    let mut tsfn = ptr::null_mut();
    let s = unsafe {
        sys::napi_create_threadsafe_function(
            env,
            dispatcher,
            ptr::null_mut(),
            name,
            0,
            1,
            raw,
            Some(finalize),
            raw,
            Some(call_js),
            &mut tsfn,
        )
    };
    if s != sys::Status::napi_ok {
        drop(unsafe { Arc::from_raw(raw as *const Hub) });
        return Err(Error::from_reason("creating the threadsafe function failed"));
    }
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    lock(&hub.ready).tsfn = tsfn;
    let inst = Box::into_raw(Box::new(hub));
    unsafe { sys::napi_set_instance_data(env, inst.cast(), Some(drop_instance), ptr::null_mut()) };
    Ok(())
}

/// This environment's hub (after `init`).
pub(crate) fn hub(env: sys::napi_env) -> Result<Arc<Hub>> {
    let mut data = ptr::null_mut();
    unsafe { sys::napi_get_instance_data(env, &mut data) };
    if data.is_null() {
        return Err(js::throw(env, js::Kind::Error, "ERR_SLUICE_NOT_INITIALIZED", "load sluice through its package (require('sluice'))"));
    }
    // SAFETY: set in `init` to a leaked `Arc<Hub>`, freed with the env.
    Ok(unsafe { &*(data as *const Arc<Hub>) }.clone())
}

/// Runs closures on the JavaScript thread through the hub; each gets the
/// object the `Post` holds (or `undefined`). Keeps Node alive until
/// [`unref`](Post::unref) or its drop (from any thread), which lets go of
/// the object after the jobs already posted.
pub(crate) struct Post {
    hub: Arc<Hub>,
    target: Arc<Target>,
}

/// The object of a [`Post`] and whether it counts as open.
struct Target {
    obj: sys::napi_ref,
    counted: AtomicBool,
}
// SAFETY: `obj` is only used on the JavaScript thread (by jobs and `unref`).
unsafe impl Send for Target {}
unsafe impl Sync for Target {}

impl Post {
    /// A post holding `obj` (JavaScript thread).
    pub(crate) fn new(env: sys::napi_env, obj: Option<sys::napi_value>) -> Result<Arc<Post>> {
        let hub = hub(env)?;
        let mut r = ptr::null_mut();
        if let Some(o) = obj {
            unsafe { sys::napi_create_reference(env, o, 1, &mut r) };
        }
        hub.open(env);
        Ok(Arc::new(Post { hub, target: Arc::new(Target { obj: r, counted: AtomicBool::new(true) }) }))
    }

    /// Runs `f` on the JavaScript thread (dropped if the environment is gone).
    pub(crate) fn post(&self, f: impl FnOnce(sys::napi_env, sys::napi_value) + Send + 'static) {
        let target = self.target.clone();
        self.hub.schedule(Due::Job(Box::new(move |env| {
            let mut obj = js::undefined(env);
            if !target.obj.is_null() {
                unsafe { sys::napi_get_reference_value(env, target.obj, &mut obj) };
            }
            f(env, obj)
        })));
    }

    /// Lets Node exit while this is alive (JavaScript thread).
    pub(crate) fn unref(&self, env: sys::napi_env) {
        if self.target.counted.swap(false, Ordering::AcqRel) {
            self.hub.close(env);
        }
    }
}

impl Drop for Post {
    fn drop(&mut self) {
        let (hub, target) = (self.hub.clone(), self.target.clone());
        self.hub.schedule(Due::Job(Box::new(move |env| {
            if target.counted.swap(false, Ordering::AcqRel) {
                hub.close(env);
            }
            if !target.obj.is_null() {
                unsafe { sys::napi_delete_reference(env, target.obj) };
            }
        })));
    }
}
