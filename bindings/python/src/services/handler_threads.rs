//! Where Python code of services runs: handlers on a pool of handler
//! threads (never on an I/O thread; another thread starts when none is
//! free, so a handler may make blocking sluice calls, even to its own
//! service), registry changes and demo log records in order on one
//! notification thread.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;

use sluice_core::services::{self as svc, ServiceError, DISPATCH_CATEGORY, UNCAUGHT_ERROR};

use crate::errors;
use crate::handle::lock;

/// Handler threads at most; calls beyond wait for one to be free.
pub(crate) const MAX_HANDLER_THREADS: usize = 64;
/// Calls waiting for a handler thread at most; past this a call is
/// answered at once with `error([7, 7], "too many calls waiting...")`,
/// so callers cannot grow the queue without bound.
pub(crate) const MAX_QUEUED_CALLS: usize = 10_000;
/// A handler thread with nothing to do for this long ends.
const IDLE_EXIT: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;
/// A handler call, run with the GIL.
type PyJob = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

struct PoolState {
    queue: VecDeque<PyJob>,
    idle: usize,
    threads: usize,
    /// The process the threads belong to (a forked child has none of them).
    pid: u32,
}

/// Runs handlers off the I/O threads: a job waits only if
/// [`MAX_HANDLER_THREADS`] are busy; otherwise an idle thread takes it or a
/// new one starts.
struct Pool {
    st: Mutex<PoolState>,
    cv: Condvar,
}

fn pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        Arc::new(Pool {
            st: Mutex::new(PoolState { queue: VecDeque::new(), idle: 0, threads: 0, pid: std::process::id() }),
            cv: Condvar::new(),
        })
    })
}

impl Pool {
    /// Whether a call may still be queued.
    fn has_room(&self) -> bool {
        lock(&self.st).queue.len() < MAX_QUEUED_CALLS
    }

    fn submit(self: &Arc<Pool>, job: PyJob) {
        let mut st = lock(&self.st);
        if st.pid != std::process::id() {
            // Forked: the parent's threads do not exist here.
            let old = std::mem::take(&mut st.queue);
            std::mem::forget(old);
            *st = PoolState { queue: VecDeque::new(), idle: 0, threads: 0, pid: std::process::id() };
        }
        st.queue.push_back(job);
        if st.idle >= st.queue.len() || st.threads >= MAX_HANDLER_THREADS {
            self.cv.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("sluice-handler".into()).spawn(move || me.work());
        if spawned.is_err() {
            lock(&self.st).threads -= 1;
        }
    }

    /// A handler thread: keeps its Python thread state for its whole life
    /// (attached while it runs a handler, detached while it waits).
    fn work(&self) {
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            lock(&self.st).threads -= 1;
            return;
        }
        Python::attach(|py| {
            while let Some(job) = py.detach(|| self.next_job()) {
                job(py);
            }
        });
    }

    /// The next job; None when the thread has been idle for [`IDLE_EXIT`].
    fn next_job(&self) -> Option<PyJob> {
        let mut st = lock(&self.st);
        loop {
            if let Some(job) = st.queue.pop_front() {
                return Some(job);
            }
            st.idle += 1;
            let (next, r) = self.cv.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
            st = next;
            st.idle -= 1;
            if r.timed_out() && st.queue.is_empty() {
                st.threads -= 1;
                return None;
            }
        }
    }
}

/// Runs `f` with the GIL on a handler thread (not if the interpreter is
/// gone); answers `out` with an error instead when the queue is full.
pub(crate) fn with_python(out: svc::Responder, f: impl FnOnce(Python<'_>, svc::Responder) + Send + 'static) {
    if !pool().has_room() {
        let mut out = out;
        let _ = out.error(&ServiceError::new(
            DISPATCH_CATEGORY,
            UNCAUGHT_ERROR,
            format!("too many calls waiting for a handler (more than {MAX_QUEUED_CALLS})"),
        ));
        return;
    }
    pool().submit(Box::new(move |py| f(py, out)));
}

/// Notifications (registry changes, log records) in order, on one thread.
pub(crate) fn notify(f: impl FnOnce(Python<'_>) + Send + 'static) {
    static TX: Mutex<Option<(u32, mpsc::Sender<Job>)>> = Mutex::new(None);
    let mut slot = lock(&TX);
    let pid = std::process::id();
    if slot.as_ref().is_none_or(|(owner, _)| *owner != pid) {
        // The first notification, or the first in a forked child.
        let (tx, rx) = mpsc::channel::<Job>();
        let _ = std::thread::Builder::new().name("sluice-notify".into()).spawn(move || {
            for job in rx {
                job();
            }
        });
        if let Some(old) = slot.replace((pid, tx)) {
            std::mem::forget(old);
        }
    }
    let Some((_, tx)) = slot.as_ref() else { return };
    let _ = tx.send(Box::new(move || {
        // SAFETY: a plain query of the interpreter's state.
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            return;
        }
        Python::attach(f);
    }));
}

/// The service error a handler's exception becomes: a `ServiceError`'s own
/// category, code and message; anything else `[7, 7] "Type: text"`.
pub(crate) fn exception_to_error(py: Python<'_>, e: &PyErr) -> ServiceError {
    let v = e.value(py);
    if let Ok(cls) = errors::service_error_class(py) {
        if v.is_instance(&cls).unwrap_or(false) {
            let category = v.getattr("category").and_then(|c| c.extract::<Option<i64>>()).unwrap_or(Some(DISPATCH_CATEGORY));
            let code = v.getattr("code").and_then(|c| c.extract::<i64>()).unwrap_or(UNCAUGHT_ERROR);
            let message = v.getattr("message").and_then(|m| m.extract::<String>()).unwrap_or_default();
            return ServiceError { category, code, message };
        }
    }
    let ty = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let text = v.str().map(|s| s.to_string()).unwrap_or_default();
    let message = if text.is_empty() { ty } else { format!("{ty}: {text}") };
    ServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, message)
}
