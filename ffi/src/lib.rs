//! The C ABI of sluice. The header `include/sluice.h` is generated from this
//! crate by cbindgen.
#![warn(missing_docs)]

use std::ffi::c_char;

/// The library version as a NUL-terminated string, e.g. `"0.1.0"`. The
/// pointer is static: never free it.
#[no_mangle]
pub extern "C" fn sluice_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_matches_the_crate() {
        let v = unsafe { std::ffi::CStr::from_ptr(super::sluice_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
