//! The C ABI of sluice. The header `include/sluice.h` is generated from this
//! crate by cbindgen (`make header`); the `///` comments here are its
//! reference manual.
//!
//! One module per C object — [`channel`], [`server`], [`options`],
//! [`payload`], and the protocol roles [`worker`], [`engine`], [`session`],
//! [`resume`] (their shared boundary helpers in `roles`), the Cocaine
//! services [`services`] (clients) and [`hosting`] (serving) — plus the boundary machinery: [`guard`] (result codes, the
//! panic guard, the last error, the one mapping of refusals to codes,
//! argument helpers), `handle` (the one handle implementation: life cycle,
//! descriptor, dispatch, close, free), `send` (the one send implementation)
//! and `release` (the `on_release` promise).
//!
//! Every exported function is `unsafe extern "C"`: its safety contract is
//! the C documentation (pointers are NULL or valid as it says). NULL where a
//! pointer is required returns `SLUICE_E_NULL`; no panic crosses the
//! boundary.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int};

pub mod channel;
pub mod engine;
pub mod guard;
mod handle;
pub mod hosting;
pub mod options;
pub mod payload;
mod release;
pub mod resume;
mod roles;
mod send;
pub mod server;
pub mod services;
pub mod session;
pub mod worker;

/// The major version of this header (`SLUICE_VERSION_MAJOR.MINOR.PATCH`
/// matches the crate version; `sluice_version()` tells the library's at run
/// time). The shared library's soname is `libsluice.so.<major>`.
pub const SLUICE_VERSION_MAJOR: c_int = 0;
/// The minor version of this header.
pub const SLUICE_VERSION_MINOR: c_int = 1;
/// The patch version of this header.
pub const SLUICE_VERSION_PATCH: c_int = 0;

/// The library version as a NUL-terminated string, e.g. `"0.1.0"`. The
/// pointer is static: never free it. Compare with the `SLUICE_VERSION_*`
/// macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn sluice_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sets the number of I/O threads of the library's runtime (default 2, or
/// the `SLUICE_THREADS` environment variable). Takes effect only before the
/// first channel or server is created (or in a child after `fork()`):
/// `SLUICE_OK` if it did, `SLUICE_E_STATE` if the runtime already runs,
/// `SLUICE_E_INVALID` for 0.
#[no_mangle]
pub extern "C" fn sluice_set_threads(n: usize) -> c_int {
    guard::guard(|| {
        if n == 0 {
            return Err(guard::Fail::invalid("0 threads"));
        }
        if sluice_core::net::runtime::set_threads(n) {
            Ok(())
        } else {
            Err(guard::Fail::fixed(
                guard::SLUICE_E_STATE,
                c"the runtime is already running: set threads before the first channel or server",
            ))
        }
    })
}

// The errno values on_socket_error reports (docs/PROTOCOL.md §8.3): Linux numbers
// on every system. Literals, so cbindgen can emit them; a test checks them
// against sluice_core::errno.

/// errno: a Unix socket path that does not exist.
pub const SLUICE_ENOENT: c_int = 2;
/// errno: a host name that does not resolve to an address (Linux's `ENXIO`
/// number, named `ENOTFOUND` as in Node.js).
pub const SLUICE_ENOTFOUND: c_int = 6;
/// errno: errors without a better number.
pub const SLUICE_EBADF: c_int = 9;
/// errno: permission denied (a Unix socket path).
pub const SLUICE_EACCES: c_int = 13;
/// errno: writing to a closed peer.
pub const SLUICE_EPIPE: c_int = 32;
/// errno: the peer sent bytes that are not valid frames.
pub const SLUICE_EBADMSG: c_int = 74;
/// errno: the peer declared a frame larger than the maximum frame size.
pub const SLUICE_EMSGSIZE: c_int = 90;
/// errno: the peer reset the connection.
pub const SLUICE_ECONNRESET: c_int = 104;
/// errno: a served call's replies went past the send queue's hard bound
/// (`max_queued`) because the peer does not read them.
pub const SLUICE_ENOBUFS: c_int = 105;
/// errno: the peer closed the connection (end of stream).
pub const SLUICE_ESHUTDOWN: c_int = 108;
/// errno: the connect timed out.
pub const SLUICE_ETIMEDOUT: c_int = 110;
/// errno: the connection was refused.
pub const SLUICE_ECONNREFUSED: c_int = 111;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_crate() {
        let v = unsafe { std::ffi::CStr::from_ptr(sluice_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn version_macros_match_cargo_toml() {
        let n = |s: &str| s.parse::<c_int>().unwrap();
        assert_eq!(SLUICE_VERSION_MAJOR, n(env!("CARGO_PKG_VERSION_MAJOR")), "update SLUICE_VERSION_MAJOR and run make header");
        assert_eq!(SLUICE_VERSION_MINOR, n(env!("CARGO_PKG_VERSION_MINOR")), "update SLUICE_VERSION_MINOR and run make header");
        assert_eq!(SLUICE_VERSION_PATCH, n(env!("CARGO_PKG_VERSION_PATCH")), "update SLUICE_VERSION_PATCH and run make header");
    }

    #[test]
    fn the_committed_header_has_the_same_version_macros() {
        let h = include_str!("../../include/sluice.h");
        for (name, v) in [("MAJOR", SLUICE_VERSION_MAJOR), ("MINOR", SLUICE_VERSION_MINOR), ("PATCH", SLUICE_VERSION_PATCH)] {
            let line = format!("#define SLUICE_VERSION_{name} {v}\n");
            assert!(h.contains(&line), "include/sluice.h lacks {line:?}: run make header");
        }
    }

    #[test]
    fn errno_constants_are_the_cores() {
        use sluice_core::errno as e;
        let pairs = [
            (SLUICE_ENOENT, e::ENOENT),
            (SLUICE_ENOTFOUND, e::ENOTFOUND),
            (SLUICE_EBADF, e::EBADF),
            (SLUICE_EACCES, e::EACCES),
            (SLUICE_EPIPE, e::EPIPE),
            (SLUICE_EBADMSG, e::EBADMSG),
            (SLUICE_EMSGSIZE, e::EMSGSIZE),
            (SLUICE_ECONNRESET, e::ECONNRESET),
            (SLUICE_ENOBUFS, e::ENOBUFS),
            (SLUICE_ESHUTDOWN, e::ESHUTDOWN),
            (SLUICE_ETIMEDOUT, e::ETIMEDOUT),
            (SLUICE_ECONNREFUSED, e::ECONNREFUSED),
        ];
        for (ours, core) in pairs {
            assert_eq!(ours, core);
        }
    }

    #[test]
    fn zero_threads_is_invalid() {
        assert_eq!(sluice_set_threads(0), guard::SLUICE_E_INVALID);
    }
}
