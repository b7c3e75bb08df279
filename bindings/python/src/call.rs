//! Calling Python callbacks with positional arguments, the fast way where
//! the interpreter offers it.
//!
//! Under the stable ABI for 3.9 pyo3 calls through `PyObject_Call` with a
//! new argument tuple. `PyObject_Vectorcall` skips the tuple, but it is not
//! in that ABI and only CPython 3.11 and newer export it (before, a static
//! inline), so it is looked up at run time and used when present. This is
//! the per-message path of `on_chunk`.

use std::ffi::c_void;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

type Vectorcall = unsafe extern "C" fn(*mut ffi::PyObject, *const *mut ffi::PyObject, usize, *mut ffi::PyObject) -> *mut ffi::PyObject;

fn vectorcall() -> Option<Vectorcall> {
    static VC: OnceLock<Option<Vectorcall>> = OnceLock::new();
    *VC.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name; a non-NULL result is the
        // interpreter's PyObject_Vectorcall, whose signature is stable ABI.
        let p: *mut c_void = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyObject_Vectorcall".as_ptr()) };
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, Vectorcall>(p) })
    })
}

/// Calls `f(*args)` and drops the result.
#[inline]
pub(crate) fn call(py: Python<'_>, f: &Bound<'_, PyAny>, args: &[Bound<'_, PyAny>]) -> PyResult<()> {
    match vectorcall() {
        Some(vc) => {
            let ptrs: [*mut ffi::PyObject; 6] = std::array::from_fn(|i| args.get(i).map_or(std::ptr::null_mut(), |a| a.as_ptr()));
            debug_assert!(args.len() <= ptrs.len());
            // SAFETY: `f` and the arguments are live objects for the call;
            // a NULL result carries the exception. GIL held.
            let r = unsafe { vc(f.as_ptr(), ptrs.as_ptr(), args.len(), std::ptr::null_mut()) };
            // SAFETY: the new reference (or NULL with an exception set).
            unsafe { Bound::from_owned_ptr_or_err(py, r) }.map(drop)
        }
        None => f.call1(pyo3::types::PyTuple::new(py, args)?).map(drop),
    }
}
