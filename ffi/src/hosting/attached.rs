//! Services attached over the client's own Locator connection: `sluice_attached`.

use super::*;

/// A service this program provides over its own connection to a sluice
/// Locator, without listening anywhere (remote invocation: the Locator
/// gives other clients an endpoint and relays their calls over this
/// connection). Opaque; made by `sluice_locator_attach`. Online until
/// `sluice_attached_detach` or `sluice_attached_free` (or the end of the
/// connection). Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_attached {
    a: Mutex<Option<Attached>>,
    endpoints: CString,
}

/// Attaches `def` (copied) to the Locator (blocking, at most `timeout_ms`;
/// 0: no limit): from then on the Locator announces it, and its handlers
/// answer every call made to it. The handle goes to `*out` (NULL on
/// failure). Errors: `SLUICE_E_IO` (no Locator endpoint answered),
/// `SLUICE_E_SERVICE` (refused, e.g. `[10, 4]`: a service of that name is
/// already online), `SLUICE_E_TIMEOUT`, `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_attach(
    loc: *const sluice_locator,
    def: *const sluice_service_def,
    timeout_ms: u64,
    out: *mut *mut sluice_attached,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let d = unsafe { def_of(def) }?.clone();
        let a = wait(timeout_ms, Attached::attach(&l.loc, d))?;
        let endpoints = c_string(joined(a.endpoints()));
        Ok(sluice_attached { a: Mutex::new(Some(a)), endpoints })
    })
}

/// Where the Locator lets other clients reach the attached service,
/// comma-separated `host:port`. NULL for NULL; owned by `a`.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_endpoints(a: *const sluice_attached) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { a.as_ref() }.map_or(std::ptr::null(), |a| a.endpoints.as_ptr()))
}

/// 1 while the connection to the Locator is up (the service online), else
/// 0 (also for NULL).
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_is_live(a: *const sluice_attached) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { a.as_ref() }.map_or(0, |a| c_int::from(lock(&a.a).as_ref().is_some_and(Attached::is_live))))
}

/// Detaches the service: sends `discard` (it goes offline at the Locator)
/// and closes the connection; calls in progress end. The handle stays
/// valid (`sluice_attached_is_live` gives 0) until `sluice_attached_free`.
/// Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_detach(a: *const sluice_attached) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let a = unsafe { arg(a, "a") }?;
        let taken = lock(&a.a).take();
        drop(taken);
        Ok(())
    })
}

/// Detaches the service (it goes offline at the Locator), closes the
/// connection and releases the handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_attached_free(a: *mut sluice_attached) {
    free_box(a)
}
