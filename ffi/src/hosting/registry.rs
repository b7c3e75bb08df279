//! The table a Locator announces: `sluice_registry`, `sluice_entry`, change callbacks.

use super::*;

/// The services a Locator announces. Opaque; made by `sluice_registry_new`
/// or `sluice_locator_server_registry`, released by `sluice_registry_free`
/// (handles share one table). Thread-safe.
///
/// A service attached or published by a client is online while that
/// registration lives, and goes offline at once when it is discarded or
/// its connection drops; registering the name again brings it back.
#[allow(non_camel_case_types)]
pub struct sluice_registry {
    pub(super) reg: Registry,
}

/// A service the registry knows. The strings are NUL-terminated and belong
/// to the array `sluice_registry_list`/`_get` made (or, in `on_change`, to
/// the library until the callback returns).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct sluice_entry {
    /// The service name.
    pub name: *const c_char,
    /// Where callers reach it, comma-separated `host:port`.
    pub endpoints: *const c_char,
    /// Its protocol version.
    pub version: u64,
    /// 1 if it can be resolved now, 0 if it went offline.
    pub online: c_int,
    /// Who registered it: `local`, `published by ADDR`, `attached by ADDR`.
    pub origin: *const c_char,
}

fn entry_raw(e: &Entry) -> sluice_entry {
    sluice_entry {
        name: c_string(e.name.clone()).into_raw(),
        endpoints: c_string(joined(&e.endpoints)).into_raw(),
        version: e.version,
        online: c_int::from(e.online),
        origin: c_string(e.origin.clone()).into_raw(),
    }
}

/// Frees the strings of an entry made by [`entry_raw`].
fn free_strings(e: &sluice_entry) {
    for s in [e.name, e.endpoints, e.origin] {
        // SAFETY: made by CString::into_raw in entry_raw, freed once.
        drop(unsafe { CString::from_raw(s.cast_mut()) });
    }
}

fn entries_out(list: Vec<Entry>) -> (*mut sluice_entry, usize) {
    let v: Vec<sluice_entry> = list.iter().map(entry_raw).collect();
    let n = v.len();
    if n == 0 {
        return (std::ptr::null_mut(), 0);
    }
    (Box::into_raw(v.into_boxed_slice()).cast::<sluice_entry>(), n)
}

/// A new, empty registry into `*out`, for `sluice_locator_server_bind`.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_new(out: *mut *mut sluice_registry) -> c_int {
    make_box(out, || Ok(sluice_registry { reg: Registry::new() }))
}

/// Releases a registry handle (the table lives on in its Locator server
/// and other handles). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_free(reg: *mut sluice_registry) {
    free_box(reg)
}

/// Every service known, online or not, by name: an array of `*n` entries
/// into `*entries` (NULL when `*n` is 0), released by
/// `sluice_entries_free(*entries, *n)`.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_list(reg: *const sluice_registry, entries: *mut *mut sluice_entry, n: *mut usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(entries, std::ptr::null_mut(), "entries") }?;
        unsafe { put(n, 0, "n") }?;
        let r = unsafe { arg(reg, "reg") }?;
        let (p, len) = entries_out(r.reg.list());
        unsafe {
            entries.write(p);
            n.write(len);
        }
        Ok(())
    })
}

/// The service `name`, online or not, as an array of one entry into
/// `*entry` (release it with `sluice_entries_free(*entry, 1)`).
/// `SLUICE_E_NOT_FOUND` if the registry never had it.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_get(reg: *const sluice_registry, name: *const c_char, entry: *mut *mut sluice_entry) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(entry, std::ptr::null_mut(), "entry") }?;
        let r = unsafe { arg(reg, "reg") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let e = r.reg.get(name).ok_or_else(|| Fail::new(SLUICE_E_NOT_FOUND, format!("the registry has no service '{name}'")))?;
        let (p, _) = entries_out(vec![e]);
        unsafe { entry.write(p) };
        Ok(())
    })
}

/// Releases an array of `n` entries from `sluice_registry_list` or `_get`.
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_entries_free(entries: *mut sluice_entry, n: usize) {
    guard_or((), || {
        if entries.is_null() || n == 0 {
            return;
        }
        // SAFETY: an array of `n` entries made by entries_out, freed once.
        let all = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(entries, n)) };
        all.iter().for_each(free_strings);
    })
}

/// A registry's change callbacks. Set `size` to
/// `sizeof(sluice_registry_callbacks)`; members may be NULL.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_registry_callbacks {
    /// `sizeof(sluice_registry_callbacks)`, set by the caller.
    pub size: usize,
    /// A service came online (`entry->online` 1; also when registered in
    /// this process) or went offline (0). Runs on the thread that made the
    /// change: a library I/O thread for clients' attach, publish and
    /// disconnections (do not block there; blocking sluice calls return
    /// `SLUICE_E_WRONG_THREAD`), or the caller's thread for
    /// `sluice_registry_add_hosted` and `sluice_locator_server_add_demo`.
    /// `entry` is valid until it returns.
    pub on_change: Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const sluice_entry)>,
    /// The registry (every handle, and the Locator server using it) is
    /// gone: no callback follows; `userdata` may be freed.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

struct CListener {
    cbs: sluice_registry_callbacks,
    ud: Ud,
    _release: OnDrop,
}

impl CListener {
    fn changed(&self, e: &Entry) {
        let Some(f) = self.cbs.on_change else { return };
        let entry = entry_raw(e);
        // SAFETY: the user's callback and data; the entry lives for the call.
        contain(|| unsafe { f(self.ud.0, &entry) });
        free_strings(&entry);
    }
}

/// Adds change callbacks (copied) with `userdata`: `on_change` for every
/// service coming online or going offline from now on. They stay until the
/// registry is gone, then `on_release` runs. Errors: `SLUICE_E_NULL`,
/// `SLUICE_E_INVALID` (`cbs->size`); then `on_release` is never called.
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_on_change(
    reg: *const sluice_registry,
    cbs: *const sluice_registry_callbacks,
    userdata: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let r = unsafe { arg(reg, "reg") }?;
        if cbs.is_null() {
            return Err(Fail::null("cbs"));
        }
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let l = CListener { cbs, ud: Ud(userdata), _release: OnDrop(cbs.on_release, Ud(userdata)) };
        r.reg.on_change(move |e| l.changed(e));
        Ok(())
    })
}

/// Calls `method` of the service `name` that a connected client attached:
/// the call goes over that client's own connection and the client answers
/// on it (remote invocation). Does not block: the call goes to `*out`
/// (NULL on failure), read it as any call. Errors: `SLUICE_E_NOT_FOUND`
/// (not online, or not attached by a client), `SLUICE_E_UNKNOWN_METHOD`,
/// `SLUICE_E_DISCONNECTED`, `SLUICE_E_INVALID` (args).
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_invoke(
    reg: *const sluice_registry,
    name: *const c_char,
    method: *const c_char,
    args: *const u8,
    args_len: usize,
    out: *mut *mut sluice_call,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let r = unsafe { arg(reg, "reg") }?;
        let name = unsafe { str_arg(name, "name") }?;
        let method = unsafe { str_arg(method, "method") }?;
        let args = args_of(unsafe { bytes_arg(args, args_len, "args") }?, "args")?;
        Ok(sluice_call::into_raw(r.reg.invoke(name, method, args).map_err(fail)?))
    })
}

/// Registers a hosted service of this process, online for good (it stays
/// listed after the hosted service is freed; resolving it then gives an
/// endpoint nobody listens on).
#[no_mangle]
pub unsafe extern "C" fn sluice_registry_add_hosted(reg: *const sluice_registry, h: *const sluice_hosted) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let r = unsafe { arg(reg, "reg") }?;
        let h = unsafe { arg(h, "h") }?;
        r.reg.add(h.h.name(), h.h.endpoints(), h.h.def().version(), h.h.def().graph().clone());
        Ok(())
    })
}
