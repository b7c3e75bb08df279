//! The one tokio runtime of the process, shared by every channel and server.
//!
//! It is created on first use with a small fixed number of worker threads
//! ([`set_threads`], or the `SLUICE_THREADS` environment variable; default
//! 2). A child process after `fork()` does not inherit the parent's threads,
//! so a runtime created in another process is abandoned (never dropped: its
//! threads do not exist here) and a fresh one is made.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Handle, Runtime};

static THREADS: AtomicUsize = AtomicUsize::new(0);
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// Sets the number of I/O threads of the runtime. Takes effect if called
/// before the first channel or server is created (or in a child after
/// `fork()`); returns whether it did.
pub fn set_threads(n: usize) -> bool {
    THREADS.store(n.max(1), Ordering::Relaxed);
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|(pid, _)| *pid != std::process::id())
}

/// The number of I/O threads the runtime has (or will have).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::env::var("SLUICE_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(2),
        n => n,
    }
}

/// A handle to the process's runtime, creating it if needed.
pub fn handle() -> std::io::Result<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.handle().clone());
        }
    }
    if let Some((_, inherited)) = slot.take() {
        // Made in the parent before fork(): its threads are not ours to join.
        std::mem::forget(inherited);
    }
    let rt = Builder::new_multi_thread().worker_threads(threads()).thread_name("sluice-io").enable_all().build()?;
    let h = rt.handle().clone();
    *slot = Some((pid, Arc::new(rt)));
    Ok(h)
}
