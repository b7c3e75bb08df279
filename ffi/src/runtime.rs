//! The library's runtime as seen from C: its I/O threads are started with
//! SIGPIPE blocked.
//!
//! The core writes to sockets with `write`/`writev`, which raise SIGPIPE
//! when the peer has gone. Rust, Python and Node programs ignore SIGPIPE,
//! but a C program's default action is to die. SIGPIPE from a write is
//! sent to the thread that wrote, and threads inherit the signal mask of
//! the thread that starts them: so the runtime is created (its worker
//! threads started) while the calling thread blocks SIGPIPE, and the
//! caller's mask is restored at once. The host's own handling of SIGPIPE
//! is not touched; the write just fails with `EPIPE`.

use std::sync::atomic::{AtomicU32, Ordering};

/// The process for which the runtime was made this way (a child after
/// `fork()` gets a fresh runtime from the core, made here again).
static MADE_FOR: AtomicU32 = AtomicU32::new(0);

/// Makes sure the runtime exists with SIGPIPE blocked on its threads.
pub(crate) fn ensure() -> std::io::Result<()> {
    let pid = std::process::id();
    if MADE_FOR.load(Ordering::Acquire) == pid {
        return Ok(());
    }
    // SAFETY: plain signal-mask calls on this thread, with valid sets.
    let old = unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
        old
    };
    let made = sluice_core::net::runtime::handle();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    made?;
    MADE_FOR.store(pid, Ordering::Release);
    Ok(())
}
