//! The `on_release` promise: called exactly once for every callbacks set the
//! library accepted, never for one it refused.
//!
//! The core may run (and drop) a handler before the call that created it
//! has returned, e.g. a connect that fails at once. Who calls `on_release`
//! is decided by a small state machine between the handler's drop
//! ([`Release`]) and the creating call ([`Arming`]).

use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::guard::contain;

/// The user's `void *userdata`: the library only passes it back.
#[derive(Clone, Copy)]
pub(crate) struct Ud(pub(crate) *mut c_void);

// SAFETY: the C API documents on which threads callbacks get `userdata`;
// sluice itself never dereferences it.
unsafe impl Send for Ud {}
// SAFETY: as above.
unsafe impl Sync for Ud {}

/// Where a release stands (stored as a `u8`).
#[derive(Clone, Copy)]
#[repr(u8)]
enum State {
    /// The creating call has not finished.
    Pending,
    /// The creating call succeeded: the handler's drop releases.
    Armed,
    /// The handler was dropped before the creating call finished: the call
    /// releases if it succeeds.
    DroppedEarly,
    /// The creating call failed: nobody releases.
    Failed,
}

const fn n(s: State) -> u8 {
    s as u8
}

pub(crate) type ReleaseFn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

fn call(f: ReleaseFn, ud: Ud) {
    if let Some(f) = f {
        // SAFETY: the user's own release callback with its own data.
        contain(|| unsafe { f(ud.0) });
    }
}

/// Calls `on_release` when dropped: for callbacks sets made only once the
/// call that takes them can no longer fail (service handlers, registry
/// listeners).
pub(crate) struct OnDrop(pub(crate) ReleaseFn, pub(crate) Ud);

impl Drop for OnDrop {
    fn drop(&mut self) {
        call(self.0, self.1);
    }
}

/// Owned by the handler: its drop is the end of the callbacks set.
pub(crate) struct Release {
    state: Arc<AtomicU8>,
    f: ReleaseFn,
    ud: Ud,
}

/// Kept by the creating call until it knows whether it succeeded.
pub(crate) struct Arming {
    state: Arc<AtomicU8>,
    f: ReleaseFn,
    ud: Ud,
}

impl Release {
    pub(crate) fn new(f: ReleaseFn, ud: Ud) -> (Release, Arming) {
        let state = Arc::new(AtomicU8::new(n(State::Pending)));
        (Release { state: state.clone(), f, ud }, Arming { state, f, ud })
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let early = self.state.compare_exchange(n(State::Pending), n(State::DroppedEarly), Ordering::AcqRel, Ordering::Acquire);
        if early == Err(n(State::Armed)) {
            call(self.f, self.ud);
        }
    }
}

impl Arming {
    /// The creating call succeeded.
    pub(crate) fn arm(self) {
        let armed = self.state.compare_exchange(n(State::Pending), n(State::Armed), Ordering::AcqRel, Ordering::Acquire);
        if armed == Err(n(State::DroppedEarly)) {
            call(self.f, self.ud);
        }
    }

    /// The creating call failed: `on_release` is never called.
    pub(crate) fn fail(self) {
        self.state.store(n(State::Failed), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(ud: *mut c_void) {
        CALLS.fetch_add(ud as usize, Ordering::SeqCst);
    }

    #[test]
    fn released_exactly_once_whatever_the_order() {
        let ud = |n: usize| Ud(n as *mut c_void);
        // Dropped after the call succeeded.
        let (r, a) = Release::new(Some(count), ud(1));
        a.arm();
        assert_eq!(CALLS.load(Ordering::SeqCst), 0);
        drop(r);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        // Dropped before the call returned, which then succeeds.
        let (r, a) = Release::new(Some(count), ud(10));
        drop(r);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        a.arm();
        assert_eq!(CALLS.load(Ordering::SeqCst), 11);
        // The call failed: never.
        let (r, a) = Release::new(Some(count), ud(100));
        drop(r);
        a.fail();
        let (r, a) = Release::new(Some(count), ud(100));
        a.fail();
        drop(r);
        assert_eq!(CALLS.load(Ordering::SeqCst), 11);
    }
}
