//! What the protocol roles (`sluice_worker`, `sluice_engine`,
//! `sluice_session`, `sluice_resume_server`) share at the boundary: sized
//! callbacks structs, dialects, durations and strings.
//!
//! **Why the roles' callbacks structs start with `size`.** `sluice_callbacks`
//! and `sluice_server_callbacks` were published without a size field; adding
//! one would move every member and break every program built against them, so
//! they stay as they are. The roles' structs are new: each begins with
//! `size_t size`, which the caller sets to `sizeof` the struct. The library
//! reads only that many bytes (members past them count as NULL), so a later
//! version may add members at the end without breaking programs built
//! against this header, and a program built against a later header still
//! works with this library (the members it does not know are never called).

use std::ffi::c_int;
use std::time::Duration;

use sluice_core::wire::Dialect;

use crate::guard::{Fail, Res, SLUICE_E_INVALID};
use crate::options::{SLUICE_DIALECT_V0, SLUICE_DIALECT_V1};

/// Copies a callbacks struct whose first member is `size_t size`: only
/// `size` bytes are read; members past them stay NULL. NULL gives the
/// defaults (no callbacks).
///
/// # Safety
/// `p` is NULL or valid for reads of `*p`'s `size` bytes; `T` is a
/// `#[repr(C)]` struct of a `usize` then nullable function pointers (all
/// zero bytes is a valid `T`).
pub(crate) unsafe fn sized_callbacks<T: Default + Copy>(p: *const T, what: &str) -> Res<T> {
    if p.is_null() {
        return Ok(T::default());
    }
    // SAFETY: per the contract, at least the size member is readable.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size < std::mem::size_of::<usize>() {
        return Err(Fail::new(SLUICE_E_INVALID, format!("{what}->size is {size}: set it to sizeof the struct")));
    }
    let n = size.min(std::mem::size_of::<T>());
    let mut out = T::default();
    // SAFETY: the caller declared `size` readable bytes; `out` holds
    // `size_of::<T>()` >= `n` bytes; zero or copied bytes form a valid `T`.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), n) };
    Ok(out)
}

/// Milliseconds as a duration; 0 is refused.
pub(crate) fn ms(v: u64, what: &str) -> Res<Duration> {
    if v == 0 {
        return Err(Fail::invalid(format!("{what} 0 ms")));
    }
    Ok(Duration::from_millis(v))
}

/// Bytes as a Rust string for the core's text arguments.
pub(crate) fn text<'a>(b: &'a [u8], what: &str) -> Res<&'a str> {
    std::str::from_utf8(b).map_err(|_| Fail::invalid(format!("{what} is not UTF-8")))
}

/// A dialect as its `SLUICE_DIALECT_*` constant.
pub(crate) fn dialect_const(d: Dialect) -> c_int {
    match d {
        Dialect::V0 => SLUICE_DIALECT_V0,
        Dialect::V1 => SLUICE_DIALECT_V1,
    }
}

/// A `SLUICE_DIALECT_*` constant as a dialect.
pub(crate) fn dialect_of(d: c_int) -> Res<Dialect> {
    match d {
        SLUICE_DIALECT_V0 => Ok(Dialect::V0),
        SLUICE_DIALECT_V1 => Ok(Dialect::V1),
        _ => Err(Fail::invalid(format!("unknown dialect {d}"))),
    }
}
