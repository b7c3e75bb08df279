//! No SIGPIPE for the host: writes to a socket whose peer has gone fail
//! with `EPIPE` instead of killing a C program.
//!
//! The core writes with `write`/`writev`, which raise SIGPIPE when the peer
//! has gone. Rust, Python and Node programs ignore SIGPIPE; a C program's
//! default action is to die. SIGPIPE from a write goes to the thread that
//! wrote, so the library keeps it blocked on the threads that write:
//!
//! * the runtime's I/O threads inherit the signal mask of the thread that
//!   starts them: [`ensure_runtime`] creates the runtime while the calling
//!   thread blocks SIGPIPE, then restores that thread's mask;
//! * a send may write directly from the caller's thread (a lone message on
//!   an idle connection): [`quietly`] blocks SIGPIPE around it, consumes a
//!   SIGPIPE the write raised, and restores the mask, as libpq does.
//!
//! The host's own SIGPIPE disposition is never touched.

use std::sync::atomic::{AtomicU32, Ordering};

/// The process for which the runtime was made this way (a child after
/// `fork()` gets a fresh runtime from the core, made here again).
static MADE_FOR: AtomicU32 = AtomicU32::new(0);

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: initialises a plain signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Blocks SIGPIPE on this thread; returns the previous mask.
fn block() -> libc::sigset_t {
    let set = sigpipe_set();
    // SAFETY: valid sets; only this thread's mask changes.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

fn restore(old: &libc::sigset_t) {
    // SAFETY: a mask saved by `block`.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Makes sure the runtime exists with SIGPIPE blocked on its threads.
pub(crate) fn ensure_runtime() -> std::io::Result<()> {
    let pid = std::process::id();
    if MADE_FOR.load(Ordering::Acquire) == pid {
        return Ok(());
    }
    let old = block();
    let made = sluice_core::net::runtime::handle();
    restore(&old);
    made?;
    MADE_FOR.store(pid, Ordering::Release);
    Ok(())
}

/// Runs `f` (which may write to a socket on this thread) with SIGPIPE
/// blocked; a SIGPIPE it raised is consumed.
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let old = block();
    // SAFETY: reads a signal set.
    if unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1 {
        // Blocked already (a library I/O thread, or the host's choice):
        // nothing changed, nothing to undo.
        return f();
    }
    let out = f();
    // SIGPIPE was deliverable before: anything pending now came from `f`.
    let set = sigpipe_set();
    // SAFETY: valid sets; a zero timeout never waits.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGPIPE) == 1 {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
        }
    }
    restore(&old);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_sigpipe_is_consumed_and_the_mask_restored() {
        let before = block();
        restore(&before);
        // SAFETY: raises SIGPIPE at this thread, blocked inside `quietly`.
        quietly(|| unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) });
        let after = block();
        restore(&after);
        // SAFETY: reads signal sets.
        unsafe {
            assert_eq!(libc::sigismember(&before, libc::SIGPIPE), libc::sigismember(&after, libc::SIGPIPE));
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            assert_eq!(libc::sigismember(&pending, libc::SIGPIPE), 0);
        }
    }
}
