//! Small helpers over the raw N-API for what napi-rs's typed layer does not
//! cover the way this binding needs: errors with a `code` (and `errno`),
//! reading loosely typed arguments, and defining own data properties.
//!
//! Every function here runs on the JavaScript thread.

use std::ffi::CString;
use std::ptr;

use napi::bindgen_prelude::{Env, FromNapiValue, JsValue, Unknown};
use napi::{sys, Error, Result, Status};
use sluice_core::roles::StreamError;
use sluice_core::wire::Dialect;

/// The error the generated glue skips: a JS exception is already pending.
pub(crate) fn pending() -> Error {
    Error::from_status(Status::PendingException)
}

/// Which constructor an error is made with.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Error,
    TypeError,
    RangeError,
}

/// A JavaScript string.
pub(crate) fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) };
    v
}

/// A JavaScript number.
pub(crate) fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_create_double(env, n, &mut v) };
    v
}

/// A JavaScript array of `items`.
pub(crate) fn array(env: sys::napi_env, items: impl IntoIterator<Item = sys::napi_value>) -> sys::napi_value {
    let mut a = ptr::null_mut();
    unsafe { sys::napi_create_array(env, &mut a) };
    for (i, v) in items.into_iter().enumerate() {
        unsafe { sys::napi_set_element(env, a, i as u32, v) };
    }
    a
}

/// A new promise and its resolver.
pub(crate) fn new_promise(env: &Env) -> (sys::napi_deferred, Unknown<'_>) {
    let mut d = ptr::null_mut();
    let mut p = ptr::null_mut();
    unsafe { sys::napi_create_promise(env.raw(), &mut d, &mut p) };
    (d, unsafe { Unknown::from_raw_unchecked(env.raw(), p) })
}

/// A session id for JavaScript: a number up to 2^53 − 1, a BigInt above.
pub(crate) fn id_value(env: &Env, id: u64) -> Unknown<'_> {
    let mut v = ptr::null_mut();
    unsafe {
        if id < (1 << 53) {
            sys::napi_create_double(env.raw(), id as f64, &mut v);
        } else {
            sys::napi_create_bigint_uint64(env.raw(), id, &mut v);
        }
        Unknown::from_raw_unchecked(env.raw(), v)
    }
}

/// A new `Error` (or subclass) whose `code` property is `code`.
pub(crate) unsafe fn make_error(env: sys::napi_env, kind: Kind, code: &str, message: &str) -> sys::napi_value {
    let (c, m) = (string(env, code), string(env, message));
    let mut e = ptr::null_mut();
    unsafe {
        match kind {
            Kind::Error => sys::napi_create_error(env, c, m, &mut e),
            Kind::TypeError => sys::napi_create_type_error(env, c, m, &mut e),
            Kind::RangeError => sys::napi_create_range_error(env, c, m, &mut e),
        }
    };
    e
}

/// An `Error` for a socket failure: `code` is the symbolic name, `errno`
/// the Linux number (PROTOCOL.md §8.3).
pub(crate) unsafe fn errno_error(env: sys::napi_env, errno: i32) -> sys::napi_value {
    let name = sluice_core::errno::name(errno);
    let e = unsafe { make_error(env, Kind::Error, name, &format!("{name}: {}", sluice_core::errno::text(errno))) };
    let mut n = ptr::null_mut();
    unsafe {
        sys::napi_create_int32(env, errno, &mut n);
        sys::napi_set_named_property(env, e, c"errno".as_ptr(), n);
    }
    e
}

/// Throws an error with a `code`; returns the error napi-rs then skips.
pub(crate) fn throw(env: sys::napi_env, kind: Kind, code: &str, message: &str) -> Error {
    unsafe {
        let e = make_error(env, kind, code, message);
        sys::napi_throw(env, e);
    }
    pending()
}

/// Throws a `TypeError` with code `ERR_INVALID_ARG_TYPE`.
pub(crate) fn type_error(env: sys::napi_env, message: &str) -> Error {
    throw(env, Kind::TypeError, "ERR_INVALID_ARG_TYPE", message)
}

/// Throws the error of an errno.
pub(crate) fn throw_errno(env: sys::napi_env, errno: i32) -> Error {
    unsafe {
        let e = errno_error(env, errno);
        sys::napi_throw(env, e);
    }
    pending()
}

/// Throws a refused send: the one place every class's refusals are thrown,
/// with the core's code and text (`EAGAIN`, `ERR_CHANNEL_CLOSED`, …).
pub(crate) fn refused(env: sys::napi_env, e: StreamError) -> Error {
    throw(env, Kind::Error, e.code(), e.explain())
}

pub(crate) fn type_of(env: sys::napi_env, v: sys::napi_value) -> sys::napi_valuetype {
    let mut t = 0;
    unsafe { sys::napi_typeof(env, v, &mut t) };
    t
}

pub(crate) fn is_nullish(env: sys::napi_env, v: sys::napi_value) -> bool {
    v.is_null() || matches!(type_of(env, v), sys::ValueType::napi_undefined | sys::ValueType::napi_null)
}

/// The value as a UTF-8 string if it is a string.
pub(crate) fn get_string(env: sys::napi_env, v: sys::napi_value) -> Option<String> {
    if type_of(env, v) != sys::ValueType::napi_string {
        return None;
    }
    let mut len = 0usize;
    unsafe { sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) };
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    unsafe { sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), len + 1, &mut written) };
    buf.truncate(written);
    String::from_utf8(buf).ok()
}

/// The value as a number if it is a number.
pub(crate) fn get_number(env: sys::napi_env, v: sys::napi_value) -> Option<f64> {
    if type_of(env, v) != sys::ValueType::napi_number {
        return None;
    }
    let mut n = 0.0;
    unsafe { sys::napi_get_value_double(env, v, &mut n) };
    Some(n)
}

/// An id argument: a non-negative integer number (exact up to 2^53) or a
/// BigInt (any u64).
pub(crate) fn get_id(env: sys::napi_env, v: sys::napi_value) -> Option<u64> {
    match type_of(env, v) {
        sys::ValueType::napi_number => {
            let n = get_number(env, v)?;
            (n >= 0.0 && n.fract() == 0.0 && n <= 18_446_744_073_709_549_568.0).then_some(n as u64)
        }
        sys::ValueType::napi_bigint => {
            let mut x = 0u64;
            let mut lossless = false;
            unsafe { sys::napi_get_value_bigint_uint64(env, v, &mut x, &mut lossless) };
            lossless.then_some(x)
        }
        _ => None,
    }
}

/// An integer argument (error and terminate codes, categories).
pub(crate) fn get_int(env: sys::napi_env, v: sys::napi_value) -> Option<i64> {
    match type_of(env, v) {
        sys::ValueType::napi_number => {
            let n = get_number(env, v)?;
            (n.fract() == 0.0 && n.abs() <= 9.2e18).then_some(n as i64)
        }
        sys::ValueType::napi_bigint => {
            let mut x = 0i64;
            let mut lossless = false;
            unsafe { sys::napi_get_value_bigint_int64(env, v, &mut x, &mut lossless) };
            lossless.then_some(x)
        }
        _ => None,
    }
}

/// The bytes of a Buffer / Uint8Array argument, borrowed for the call.
pub(crate) fn get_bytes<'a>(env: sys::napi_env, v: sys::napi_value) -> Option<&'a [u8]> {
    let mut is = false;
    unsafe { sys::napi_is_typedarray(env, v, &mut is) };
    if !is {
        return None;
    }
    let mut ty = 0;
    let mut len = 0usize;
    let mut data = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let mut off = 0usize;
    unsafe { sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, &mut ab, &mut off) };
    if ty != sys::TypedarrayType::uint8_array {
        return None;
    }
    Some(if len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(data as *const u8, len) } })
}

/// Bytes from a Buffer / Uint8Array, or a string's UTF-8.
pub(crate) fn get_bytes_or_string(env: sys::napi_env, v: sys::napi_value) -> Option<bytes::Bytes> {
    if let Some(b) = get_bytes(env, v) {
        return Some(bytes::Bytes::copy_from_slice(b));
    }
    get_string(env, v).map(bytes::Bytes::from)
}

/// Whether the value is an array.
pub(crate) fn is_array(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut is = false;
    unsafe { sys::napi_is_array(env, v, &mut is) };
    is
}

/// The elements of an array.
pub(crate) fn elements(env: sys::napi_env, v: sys::napi_value) -> Vec<sys::napi_value> {
    let mut n = 0u32;
    unsafe { sys::napi_get_array_length(env, v, &mut n) };
    let element = |i| {
        let mut x = ptr::null_mut();
        unsafe { sys::napi_get_element(env, v, i, &mut x) };
        x
    };
    (0..n).map(element).collect()
}

/// A named property of an object (undefined when absent).
pub(crate) fn get_prop(env: sys::napi_env, obj: sys::napi_value, name: &str) -> sys::napi_value {
    let key = CString::new(name).unwrap_or_default();
    let mut v = ptr::null_mut();
    unsafe { sys::napi_get_named_property(env, obj, key.as_ptr(), &mut v) };
    v
}

/// Defines (or redefines) an own, writable, enumerable, configurable data
/// property: what a plain assignment makes, so later reads and writes are
/// ordinary JavaScript property accesses and `delete` removes it.
pub(crate) fn define_own(env: sys::napi_env, obj: sys::napi_value, name: &'static std::ffi::CStr, value: sys::napi_value) -> Result<()> {
    let desc = sys::napi_property_descriptor {
        utf8name: name.as_ptr(),
        name: ptr::null_mut(),
        method: None,
        getter: None,
        setter: None,
        value,
        attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::enumerable | sys::PropertyAttributes::configurable,
        data: ptr::null_mut(),
    };
    let s = unsafe { sys::napi_define_properties(env, obj, 1, &desc) };
    if s != sys::Status::napi_ok {
        return Err(Error::new(Status::GenericFailure, "defining a property failed"));
    }
    Ok(())
}

/// `null`.
pub(crate) fn null(env: sys::napi_env) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_get_null(env, &mut v) };
    v
}

/// `undefined`.
pub(crate) fn undefined(env: sys::napi_env) -> sys::napi_value {
    let mut v = ptr::null_mut();
    unsafe { sys::napi_get_undefined(env, &mut v) };
    v
}

// ----------------------------------------------------------------------
// Arguments of the classes' methods

/// A session id argument.
pub(crate) fn id_arg(env: sys::napi_env, v: Unknown<'_>) -> Result<u64> {
    get_id(env, v.raw()).ok_or_else(|| type_error(env, "a session id must be a non-negative integer (number or bigint)"))
}

/// Data to send: a Buffer / Uint8Array, or a string's UTF-8.
pub(crate) fn data_arg(env: sys::napi_env, v: Unknown<'_>) -> Result<bytes::Bytes> {
    get_bytes_or_string(env, v.raw()).ok_or_else(|| type_error(env, "data must be a Buffer or a string"))
}

/// An optional string argument (undefined and null: none).
pub(crate) fn opt_string(env: sys::napi_env, v: Option<Unknown<'_>>, name: &str) -> Result<Option<String>> {
    match v.map(|v| v.raw()).filter(|v| !is_nullish(env, *v)) {
        Some(v) => Ok(Some(get_string(env, v).ok_or_else(|| type_error(env, &format!("{name} must be a string")))?)),
        None => Ok(None),
    }
}

/// An optional integer argument (undefined and null: none).
pub(crate) fn opt_int(env: sys::napi_env, v: Option<Unknown<'_>>, name: &str) -> Result<Option<i64>> {
    match v.map(|v| v.raw()).filter(|v| !is_nullish(env, *v)) {
        Some(v) => Ok(Some(get_int(env, v).ok_or_else(|| type_error(env, &format!("{name} must be an integer")))?)),
        None => Ok(None),
    }
}

/// An errno argument (a Linux number, default 104 `ECONNRESET`).
pub(crate) fn errno_arg(env: sys::napi_env, v: Option<Unknown<'_>>) -> Result<i32> {
    Ok(opt_int(env, v, "errno")?.map_or(104, |n| n as i32))
}

/// An option in milliseconds.
pub(crate) fn millis(env: sys::napi_env, v: Option<f64>, name: &str) -> Result<Option<std::time::Duration>> {
    match v {
        None => Ok(None),
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(Some(std::time::Duration::from_secs_f64(ms / 1000.0))),
        Some(ms) => Err(throw(
            env,
            Kind::RangeError,
            "ERR_OUT_OF_RANGE",
            &format!("options.{name} must be a number of milliseconds >= 0, got {ms}"),
        )),
    }
}

/// Sets `target` to an option in milliseconds, if given.
pub(crate) fn set_millis(env: sys::napi_env, target: &mut std::time::Duration, v: Option<f64>, name: &str) -> Result<()> {
    if let Some(d) = millis(env, v, name)? {
        *target = d;
    }
    Ok(())
}

/// An option that counts (an integer >= 1).
pub(crate) fn count(env: sys::napi_env, v: Option<f64>, name: &str) -> Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
        Some(n) => Err(throw(env, Kind::RangeError, "ERR_OUT_OF_RANGE", &format!("options.{name} must be an integer >= 1, got {n}"))),
    }
}

/// A role's own options object (undefined → defaults).
pub(crate) fn read_object<T: FromNapiValue + Default>(env: sys::napi_env, v: sys::napi_value) -> Result<T> {
    if is_nullish(env, v) {
        return Ok(T::default());
    }
    if type_of(env, v) != sys::ValueType::napi_object {
        return Err(type_error(env, "options must be an object"));
    }
    unsafe { T::from_napi_value(env, v) }.map_err(|e| type_error(env, &format!("bad options: {}", e.reason)))
}

/// A dialect's name: `'v0'` or `'v1'`.
pub(crate) fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::V0 => "v0",
        Dialect::V1 => "v1",
    }
}
