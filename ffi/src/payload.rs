//! `sluice_payload`: a reference-counted, immutable byte string (a chunk's
//! data) that C can keep and forward without a copy.

use std::ffi::c_void;

use bytes::Bytes;
use sluice_core::net::Chunk;

use crate::guard::guard_or;
use crate::release::{OnDrop, Ud};

/// An immutable byte string shared by reference count.
///
/// `on_chunk` receives a *borrowed* payload, valid only while the callback
/// runs; `sluice_payload_retain` turns it (or any payload) into an *owned*
/// handle that the caller releases with `sluice_payload_free`. Keeping or
/// forwarding a payload copies nothing: the handle shares the bytes of the
/// receive buffer. Owned handles may be used and freed from any thread.
#[allow(non_camel_case_types)]
pub struct sluice_payload {
    src: Src,
    /// Only owned handles are freed by `sluice_payload_free`.
    owned: bool,
}

enum Src {
    Bytes(Bytes),
    /// A chunk the core lends for the duration of a callback: its bytes
    /// still lie in the receive buffer, and a `Bytes` is made only if the
    /// payload is kept or forwarded.
    Chunk(*const Chunk<'static>),
}

impl sluice_payload {
    /// A payload borrowed by a callback (lives on the caller's stack).
    pub(crate) fn borrowed(bytes: Bytes) -> sluice_payload {
        sluice_payload { src: Src::Bytes(bytes), owned: false }
    }

    /// A payload borrowed by a callback over a chunk the core lends.
    ///
    /// # Safety
    /// The payload must not outlive `chunk` (it lives on the stack of the
    /// callback that gets both).
    pub(crate) unsafe fn lent(chunk: &Chunk<'_>) -> sluice_payload {
        let p: *const Chunk<'_> = chunk;
        sluice_payload { src: Src::Chunk(p.cast()), owned: false }
    }

    fn owned(bytes: Bytes) -> *mut sluice_payload {
        Box::into_raw(Box::new(sluice_payload { src: Src::Bytes(bytes), owned: true }))
    }

    /// The bytes, borrowed.
    pub(crate) fn slice(&self) -> &[u8] {
        match &self.src {
            Src::Bytes(b) => b,
            // SAFETY: a lent payload does not outlive its chunk (`lent`).
            Src::Chunk(c) => unsafe { &**c }.data(),
        }
    }

    /// The bytes as a shared `Bytes` (no copy).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.src {
            Src::Bytes(b) => b.clone(),
            // SAFETY: as in `slice`.
            Src::Chunk(c) => unsafe { &**c }.to_bytes(),
        }
    }
}

/// An owned handle to the same bytes as `payload` (borrowed or owned): no
/// copy. Release it with `sluice_payload_free`. NULL if `payload` is NULL.
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_retain(payload: *const sluice_payload) -> *mut sluice_payload {
    guard_or(std::ptr::null_mut(), || {
        // SAFETY: NULL or a live payload, per the C contract.
        match unsafe { payload.as_ref() } {
            Some(p) => sluice_payload::owned(p.to_bytes()),
            None => std::ptr::null_mut(),
        }
    })
}

/// An owned payload holding a copy of `len` bytes at `data` (`data` may be
/// NULL when `len` is 0). NULL if `data` is NULL and `len` is not 0.
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_new(data: *const u8, len: usize) -> *mut sluice_payload {
    guard_or(std::ptr::null_mut(), || {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        match unsafe { crate::guard::bytes_arg(data, len, "data") } {
            Ok(b) => sluice_payload::owned(Bytes::copy_from_slice(b)),
            Err(_) => std::ptr::null_mut(),
        }
    })
}

/// Memory the caller lends to a payload: released through its callback.
struct Lent {
    data: *const u8,
    len: usize,
    /// Calls `release(ctx)` when the last reference goes.
    _release: OnDrop,
}

// SAFETY: the caller of sluice_payload_wrap promises that the bytes stay
// valid and unchanged until `release` runs, on whatever thread.
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: promised by the caller of sluice_payload_wrap.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// An owned payload over the caller's memory, without a copy: `len` bytes
/// at `data` that the caller keeps valid and unchanged until
/// `release(ctx)` is called. `release` (may be NULL) is called exactly once,
/// when the last reference goes: after `sluice_payload_free` of every
/// handle and once the library has written the bytes of every send that
/// used it. It may run on any thread, including a library I/O thread, and
/// must not block or call into sluice. NULL if `data` is NULL and `len` is
/// not 0 (then `release` is not called).
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_wrap(
    data: *const u8,
    len: usize,
    release: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    ctx: *mut c_void,
) -> *mut sluice_payload {
    guard_or(std::ptr::null_mut(), || {
        if data.is_null() && len != 0 {
            return std::ptr::null_mut();
        }
        sluice_payload::owned(Bytes::from_owner(Lent { data, len, _release: OnDrop(release, Ud(ctx)) }))
    })
}

/// The first byte of the payload (not NUL-terminated). Valid as long as the
/// payload handle is. NULL if `payload` is NULL.
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_data(payload: *const sluice_payload) -> *const u8 {
    // SAFETY: NULL or a live payload, per the C contract.
    guard_or(std::ptr::null(), || unsafe { payload.as_ref() }.map_or(std::ptr::null(), |p| p.slice().as_ptr()))
}

/// The payload's length in bytes; 0 if `payload` is NULL.
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_len(payload: *const sluice_payload) -> usize {
    // SAFETY: NULL or a live payload, per the C contract.
    guard_or(0, || unsafe { payload.as_ref() }.map_or(0, |p| p.slice().len()))
}

/// Releases an owned payload (from `_retain`, `_new` or `_wrap`). NULL is a
/// no-op, and so is the borrowed payload an `on_chunk` callback receives
/// (the library owns that one).
#[no_mangle]
pub unsafe extern "C" fn sluice_payload_free(payload: *mut sluice_payload) {
    guard_or((), || {
        // SAFETY: NULL or a live payload, per the C contract.
        if let Some(p) = unsafe { payload.as_ref() } {
            if p.owned {
                // SAFETY: owned payloads are boxes made here, freed once.
                drop(unsafe { Box::from_raw(payload) });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RELEASED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(ctx: *mut c_void) {
        RELEASED.fetch_add(ctx as usize, Ordering::SeqCst);
    }

    #[test]
    fn retain_shares_and_wrap_releases_once() {
        let data = b"hello world".to_vec();
        unsafe {
            let w = sluice_payload_wrap(data.as_ptr(), data.len(), Some(count), 5 as *mut c_void);
            assert_eq!(sluice_payload_data(w), data.as_ptr(), "no copy");
            let r = sluice_payload_retain(w);
            assert_eq!(sluice_payload_data(r), data.as_ptr());
            sluice_payload_free(w);
            assert_eq!(RELEASED.load(Ordering::SeqCst), 0);
            sluice_payload_free(r);
            assert_eq!(RELEASED.load(Ordering::SeqCst), 5);

            let borrowed = sluice_payload::borrowed(Bytes::from_static(b"abc"));
            let kept = sluice_payload_retain(&borrowed);
            sluice_payload_free(&borrowed as *const _ as *mut _); // a no-op
            drop(borrowed);
            assert_eq!(std::slice::from_raw_parts(sluice_payload_data(kept), sluice_payload_len(kept)), b"abc");
            sluice_payload_free(kept);

            let c = sluice_payload_new(std::ptr::null(), 0);
            assert_eq!(sluice_payload_len(c), 0);
            sluice_payload_free(c);
            assert!(sluice_payload_new(std::ptr::null(), 1).is_null());
            assert!(sluice_payload_retain(std::ptr::null()).is_null());
            assert_eq!(sluice_payload_len(std::ptr::null()), 0);
        }
    }
}
