//! The one handle implementation behind every pollable C object
//! (`sluice_channel`, `sluice_server`, `sluice_worker`, `sluice_engine`,
//! `sluice_session`, `sluice_resume_server`), over [`Pollable`].
//!
//! Ownership: the user's handle is `Arc::into_raw` of the C struct, which
//! holds the core object in a `OnceLock` (set by the first callback or when
//! the creating call returns, whichever comes first: both see the same core
//! object). The core owns the handler, a [`Host`], which holds only a `Weak`
//! to the handle, so there is no cycle: `_free` drops the user's reference,
//! and the handler (with the user's callbacks and userdata) goes when the
//! core is done with it, calling `on_release` exactly once (`release`).

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use sluice_core::host::Pollable;

use crate::guard::{dispatch_fail, guard, guard_or, put_opt, Fail, Res, SLUICE_E_FORKED, SLUICE_E_HANDLE, SLUICE_E_STATE};

/// What a live handle's tag holds; a freed one's holds [`DEAD`].
const LIVE: u64 = 0x736c_7569_6365_4844; // "sluiceHD"
const DEAD: u64 = 0x736c_7569_6365_2d2d; // "sluice--"

/// How many times this process is a forked child of one that used sluice:
/// raised in the child by a `pthread_atfork` handler, so that handles made
/// before the fork are told from the child's own.
static FORKS: AtomicU64 = AtomicU64::new(0);
static ATFORK: std::sync::Once = std::sync::Once::new();

extern "C" fn in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Carried by every handle: a constant that tells a live sluice handle from
/// freed or foreign memory (checked on entry: one load, no lock), and the
/// fork generation it was made in. Detection of freed handles is a best
/// effort — freed memory may be reused — that turns most double frees and
/// uses after free into `SLUICE_E_HANDLE` instead of a crash; never rely on
/// it.
pub(crate) struct Tag {
    magic: AtomicU64,
    fork: u64,
}

impl Tag {
    pub(crate) fn new() -> Tag {
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only bumps an atomic, which
            // is async-signal-safe as a fork child handler must be.
            unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        });
        Tag { magic: AtomicU64::new(LIVE), fork: FORKS.load(Ordering::Relaxed) }
    }
}

/// The handle behind `h` if it is a live handle of this process: NULL,
/// freed or foreign pointers and handles inherited across `fork()` are
/// refused with `SLUICE_E_NULL`, `SLUICE_E_HANDLE` and `SLUICE_E_FORKED`.
///
/// # Safety
/// `h` is NULL or points to readable memory at least as large as `H`.
pub(crate) unsafe fn live<'a, H: Object>(h: *const H) -> Res<&'a H> {
    // SAFETY: per the contract.
    let h = unsafe { crate::guard::arg(h, H::ARG) }?;
    if h.tag().magic.load(Ordering::Acquire) != LIVE {
        return Err(Fail::fixed(SLUICE_E_HANDLE, c"not a live handle of this kind (freed, or not a sluice handle)"));
    }
    if h.tag().fork != FORKS.load(Ordering::Relaxed) {
        return Err(Fail::fixed(
            SLUICE_E_FORKED,
            c"the handle was made before fork(): a forked child cannot use its parent's connections; make new ones",
        ));
    }
    Ok(h)
}
use crate::release::{Release, ReleaseFn, Ud};

/// A C handle type and the core object it holds.
pub(crate) trait Object: Send + Sync + Sized + 'static {
    /// The core object.
    type Core: Pollable + Clone;
    /// The handle argument's name in messages (`"ch is NULL"`).
    const ARG: &'static str;
    /// The message while the core object is not set yet.
    const STARTING: &'static CStr;
    /// Where the core object is kept.
    fn cell(&self) -> &OnceLock<Self::Core>;
    /// The handle's tag.
    fn tag(&self) -> &Tag;
}

/// Implements [`Object`] for a C handle struct whose field `$field` holds
/// the core object.
macro_rules! object {
    ($t:ty, $field:ident: $core:ty, $arg:literal, $starting:literal) => {
        impl $crate::handle::Object for $t {
            type Core = $core;
            const ARG: &'static str = $arg;
            const STARTING: &'static std::ffi::CStr = $starting;
            fn cell(&self) -> &std::sync::OnceLock<$core> {
                &self.$field
            }
            fn tag(&self) -> &$crate::handle::Tag {
                &self.tag
            }
        }
    };
}
pub(crate) use object;

/// The core object behind a handle.
///
/// # Safety
/// `h` is NULL or a live handle.
pub(crate) unsafe fn core<'a, H: Object>(h: *const H) -> Res<&'a H::Core> {
    // SAFETY: per the contract.
    let h = unsafe { live(h) }?;
    h.cell().get().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, H::STARTING))
}

/// Runs an exported function's body on the core object behind a handle.
/// (The core may write to the socket from this thread; its writes never
/// raise SIGPIPE.)
pub(crate) fn with<H: Object>(h: *const H, f: impl FnOnce(&H::Core) -> Res) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard(|| f(unsafe { core(h) }?))
}

/// `_close`: [`Pollable::close`], idempotent.
pub(crate) fn close<H: Object>(h: *const H) -> c_int {
    with(h, |c| {
        c.close();
        Ok(())
    })
}

/// `_free`: closes and drops the user's reference. NULL is a no-op.
pub(crate) fn free<H: Object>(h: *mut H) {
    guard_or((), || {
        // SAFETY: NULL or a handle, per the C contract. A handle made
        // before fork() is left alone in the child (its connections are the
        // parent's); a freed or foreign one is not freed again.
        let Ok(live) = (unsafe { live(h.cast_const()) }) else { return };
        live.tag().magic.store(DEAD, Ordering::Release);
        // SAFETY: a handle from Arc::into_raw, released once by its owner.
        let shared = unsafe { Arc::from_raw(h.cast_const()) };
        if let Some(c) = shared.cell().get() {
            c.close();
        }
        drop(shared);
    })
}

/// `_fd`: the poll descriptor, -1 for inline delivery or NULL.
pub(crate) fn fd<H: Object>(h: *const H) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(-1, || unsafe { live(h) }.ok().and_then(|h| h.cell().get()).and_then(Pollable::fd).unwrap_or(-1))
}

/// `_dispatch`: runs up to `max` waiting events on this thread, the count
/// into `*ran` (may be NULL). A callback may free the handle: it is held
/// until this returns.
pub(crate) fn dispatch<H: Object>(h: *mut H, max: usize, ran: *mut usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put_opt(ran, 0) };
        unsafe { live(h.cast_const()) }?;
        // SAFETY: a live handle made by Arc::into_raw.
        let keep = unsafe {
            Arc::increment_strong_count(h.cast_const());
            Arc::from_raw(h.cast_const())
        };
        let c = keep.cell().get().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, H::STARTING))?;
        let n = c.dispatch(max).map_err(dispatch_fail)?;
        unsafe { put_opt(ran, n) };
        Ok(())
    })
}

/// What every handler holds: the handle (weakly), the user's callbacks and
/// userdata, and the release that calls `on_release` when the core drops it.
pub(crate) struct Host<H, C> {
    shared: Weak<H>,
    pub(crate) cbs: C,
    pub(crate) ud: Ud,
    _release: Release,
}

impl<H: Object, C> Host<H, C> {
    /// The handle for a delivery (the core object recorded), or `None`
    /// once its owner freed it: then nothing more is delivered. Dropping
    /// the `Arc` after the callback lets a callback free the handle.
    pub(crate) fn enter(&self, core: &H::Core) -> Option<Arc<H>> {
        let shared = self.shared.upgrade()?;
        shared.cell().get_or_init(|| core.clone());
        Some(shared)
    }
}

/// Creates a handle: `start` gets the handler's [`Host`] and starts the
/// core object. On success the user's pointer; on failure nothing is kept
/// and `on_release` is never called.
pub(crate) fn open<H: Object, C, E>(
    handle: H,
    cbs: C,
    on_release: ReleaseFn,
    userdata: *mut c_void,
    start: impl FnOnce(Host<H, C>) -> Result<H::Core, E>,
) -> Result<*mut H, E> {
    let shared = Arc::new(handle);
    let (release, arming) = Release::new(on_release, Ud(userdata));
    let host = Host { shared: Arc::downgrade(&shared), cbs, ud: Ud(userdata), _release: release };
    // The user's reference exists before any callback can run: a callback
    // that frees the handle before this call returns releases this one.
    let user = Arc::into_raw(Arc::clone(&shared)).cast_mut();
    match start(host) {
        Ok(core) => {
            shared.cell().get_or_init(|| core);
            drop(shared);
            arming.arm();
            Ok(user)
        }
        Err(e) => {
            arming.fail();
            // SAFETY: the reference made above, never handed out.
            drop(unsafe { Arc::from_raw(user) });
            Err(e)
        }
    }
}

/// Calls a C callback if it is set, with the arguments given; a trailing
/// `; chunk DATA` adds `data, len, payload` for a chunk's bytes, `; error
/// CATEGORY, CODE, MESSAGE` the error arguments, `; bytes B` a (pointer,
/// length) pair. Used inside `unsafe`.
macro_rules! call {
    ($f:expr, $($a:expr),* ; chunk $data:expr) => {
        if let Some(f) = $f {
            let p = $crate::payload::sluice_payload::borrowed($data);
            let d = p.slice();
            f($($a,)* d.as_ptr(), d.len(), &p)
        }
    };
    ($f:expr, $($a:expr),* ; error $cat:expr, $code:expr, $msg:expr) => {
        if let Some(f) = $f {
            let (m, n) = $msg.as_ref().map_or((std::ptr::null(), 0), |m: &bytes::Bytes| (m.as_ptr(), m.len()));
            f($($a,)* std::ffi::c_int::from($cat.is_some()), $cat.unwrap_or(0), $code, m, n)
        }
    };
    ($f:expr, $($a:expr),* ; bytes $b:expr) => {
        if let Some(f) = $f {
            let b: &[u8] = &$b;
            f($($a,)* b.as_ptr(), b.len())
        }
    };
    ($f:expr $(, $a:expr)* $(,)?) => {
        if let Some(f) = $f {
            f($($a),*)
        }
    };
}
pub(crate) use call;
