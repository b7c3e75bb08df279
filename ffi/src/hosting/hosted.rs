//! Services on their own listening endpoint: `sluice_hosted`, `sluice_publication`.

use super::*;

/// A service listening on its own endpoint. Opaque; made by
/// `sluice_hosted_bind`, stopped and released by `sluice_hosted_free`.
/// Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_hosted {
    pub(super) h: Hosted,
    endpoint: CString,
}

/// Serves `def` (copied) on `endpoint` (`host:port`; port 0 picks a free
/// one), into `*out` (NULL on failure). Errors: `SLUICE_E_INVALID`
/// (endpoint), `SLUICE_E_IO` (e.g. the address is in use).
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_bind(
    def: *const sluice_service_def,
    endpoint: *const c_char,
    out: *mut *mut sluice_hosted,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let d = unsafe { def_of(def) }?.clone();
        let ep = endpoint_of(unsafe { str_arg(endpoint, "endpoint") }?.trim())?;
        let h = Hosted::bind(d, &ep).map_err(fail)?;
        let endpoint = c_string(joined(&h.endpoints()));
        Ok(sluice_hosted { h, endpoint })
    })
}

/// Where the service can be reached (`host:port` with the actual port; a
/// wildcard address is given as loopback). NULL for NULL; owned by `h`.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_endpoint(h: *const sluice_hosted) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { h.as_ref() }.map_or(std::ptr::null(), |h| h.endpoint.as_ptr()))
}

/// Stops listening, closes the callers' connections and releases the
/// handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_free(h: *mut sluice_hosted) {
    free_box(h)
}

/// A hosted service announced to a Locator with `publish`. Opaque; online
/// there while it lives: `sluice_publication_free` takes it offline.
#[allow(non_camel_case_types)]
pub struct sluice_publication {
    _p: Publication,
}

/// Publishes the hosted service to the Locator (blocking, at most
/// `timeout_ms`; 0: no limit) into `*out` (NULL on failure). Errors as
/// `sluice_locator_attach`.
#[no_mangle]
pub unsafe extern "C" fn sluice_hosted_publish(
    h: *const sluice_hosted,
    loc: *const sluice_locator,
    timeout_ms: u64,
    out: *mut *mut sluice_publication,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let h = unsafe { arg(h, "h") }?;
        let l = unsafe { arg(loc, "loc") }?;
        let p = wait(timeout_ms, h.h.publish(&l.loc))?;
        Ok(sluice_publication { _p: p })
    })
}

/// Takes the published service offline (`discard`) and releases the
/// handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_publication_free(p: *mut sluice_publication) {
    free_box(p)
}
