//! The Locator client: `sluice_locator` and what it resolves (`sluice_resolved`).

use super::*;

/// A Locator to ask: one or more endpoints, tried in order until one
/// answers (failover). Opaque; made by `sluice_locator_new`, released by
/// `sluice_locator_free`. Thread-safe; the services, loggers and resolves
/// it makes keep what they need, so it may be freed before them.
#[allow(non_camel_case_types)]
pub struct sluice_locator {
    pub(crate) loc: Locator,
}

/// A Locator at `endpoints`: comma-separated `host:port` (also
/// `[v6]:port`), tried in this order; NULL or `""` for `localhost:10053`.
/// The new handle goes to `*out` (NULL on failure). Nothing connects yet.
/// Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (an endpoint that does not
/// parse).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_new(endpoints: *const c_char, out: *mut *mut sluice_locator) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let loc = if endpoints.is_null() {
            Locator::default()
        } else {
            let text = unsafe { str_arg(endpoints, "endpoints") }?;
            if text.trim().is_empty() {
                Locator::default()
            } else {
                Locator::new(text.split(',').map(|t| endpoint_of(t.trim())).collect::<Res<Vec<_>>>()?)
            }
        };
        Ok(sluice_locator { loc })
    })
}

/// Releases a Locator handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_free(loc: *mut sluice_locator) {
    free_box(loc)
}

/// One method of a resolved service's graph; the strings belong to the
/// `sluice_resolved` (valid until `sluice_resolved_free`).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct sluice_method_info {
    /// The method id (the message type that opens a call).
    pub id: u64,
    /// The method name.
    pub name: *const c_char,
    /// The caller's protocol, printed: `none` (nothing more after the
    /// call), `same`, or the messages, e.g. `{0 write*, 1 error, 2 close}`
    /// (`*`: may repeat).
    pub tx: *const c_char,
    /// The replies' protocol, printed the same way, e.g. `{0 value, 1 error}`.
    pub rx: *const c_char,
}

/// What the Locator says about a service: name, endpoints, protocol
/// version and method graph. Opaque; made by `sluice_locator_resolve`,
/// released by `sluice_resolved_free`. Immutable: readable from any thread.
#[allow(non_camel_case_types)]
pub struct sluice_resolved {
    version: u64,
    name: CString,
    endpoints: CString,
    text: CString,
    methods: Vec<(u64, CString, CString, CString)>,
}

impl sluice_resolved {
    fn new(r: &Resolved) -> sluice_resolved {
        sluice_resolved {
            version: r.version,
            name: c_string(r.name.clone()),
            endpoints: c_string(joined(&r.endpoints)),
            text: c_string(r.to_string()),
            methods: r
                .graph
                .methods()
                .iter()
                .map(|m| (m.id, c_string(m.name.clone()), c_string(m.tx.to_string()), c_string(m.rx.to_string())))
                .collect(),
        }
    }
}

/// Resolves the service `name` through the Locator (blocking, at most
/// `timeout_ms`; 0: no limit) into `*out` (NULL on failure). Errors:
/// `SLUICE_E_NOT_FOUND` (the Locator does not have it online), `SLUICE_E_IO`
/// (no Locator endpoint answered: the last error lists each with its errno),
/// `SLUICE_E_TIMEOUT`, `SLUICE_E_BAD_REPLY`, `SLUICE_E_WRONG_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_resolve(
    loc: *const sluice_locator,
    name: *const c_char,
    timeout_ms: u64,
    out: *mut *mut sluice_resolved,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let l = unsafe { arg(loc, "loc") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let r = wait(timeout_ms, l.loc.resolve(name))?;
        Ok(sluice_resolved::new(&r))
    })
}

/// The service's name. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_name(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.name.as_ptr()))
}

/// The service's endpoints, comma-separated `host:port` in the Locator's
/// order. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_endpoints(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.endpoints.as_ptr()))
}

/// The service's protocol version (0 for a NULL handle).
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_version(r: *const sluice_resolved) -> u64 {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { r.as_ref() }.map_or(0, |r| r.version))
}

/// The whole answer printed, several lines: `service NAME (protocol version
/// V)`, `endpoints: ...`, `methods:`, then one line per method with its id,
/// name, tx and rx. NULL for a NULL handle; owned by `r`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_text(r: *const sluice_resolved) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.text.as_ptr()))
}

/// The number of methods in the service's graph (0 for a NULL handle).
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_method_count(r: *const sluice_resolved) -> usize {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { r.as_ref() }.map_or(0, |r| r.methods.len()))
}

/// Method `index` (0 .. count-1, in id order) into `*out`.
/// `SLUICE_E_INVALID` for an index past the end.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_method(r: *const sluice_resolved, index: usize, out: *mut sluice_method_info) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        let r = unsafe { arg(r, "r") }?;
        let (id, name, tx, rx) = r.methods.get(index).ok_or_else(|| Fail::invalid(format!("method {index} of {}", r.methods.len())))?;
        unsafe { put(out, sluice_method_info { id: *id, name: name.as_ptr(), tx: tx.as_ptr(), rx: rx.as_ptr() }, "out") }
    })
}

/// Releases a resolve's answer. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_resolved_free(r: *mut sluice_resolved) {
    free_box(r)
}
