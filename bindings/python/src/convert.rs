//! Values across the boundary: protocol strings, byte strings, chunk
//! payloads and generic msgpack values.
//!
//! Strings: Cocaine peers put arbitrary bytes in the msgpack str family, so
//! names, reasons and messages are decoded as UTF-8 with `surrogateescape`
//! (`s.encode("utf-8", "surrogateescape")` gives the wire bytes back), and
//! strings given to senders are encoded the same way.

use std::ffi::c_char;

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use sluice_core::wire::Value;

use crate::payload;

/// A `str` from protocol bytes (UTF-8, invalid bytes as surrogates).
pub(crate) fn text<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: a valid (pointer, length) pair and a static error-handler
    // name; GIL held. A NULL result carries the Python exception.
    unsafe {
        let p = ffi::PyUnicode_DecodeUTF8(b.as_ptr() as *const c_char, b.len() as ffi::Py_ssize_t, c"surrogateescape".as_ptr());
        Bound::from_owned_ptr_or_err(py, p)
    }
}

/// Protocol text from a `str` (UTF-8, surrogates back to bytes) or a
/// bytes-like object.
pub(crate) fn text_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    if obj.is_instance_of::<PyString>() {
        // SAFETY: `obj` is a str; GIL held.
        let b = unsafe {
            Bound::from_owned_ptr_or_err(
                obj.py(),
                ffi::PyUnicode_AsEncodedString(obj.as_ptr(), c"utf-8".as_ptr(), c"surrogateescape".as_ptr()),
            )?
        };
        let b = b.cast_into::<PyBytes>()?;
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    data_arg(obj).map_err(|_| PyTypeError::new_err(format!("{what} must be str or bytes, not {}", type_name(obj))))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Bytes at least this long given as `bytes` are sent without a copy (the
/// encoder chains them; smaller ones it copies into its scratch buffer
/// anyway).
const SHARE_MIN: usize = 16 << 10;

/// A `bytes` object kept alive by the `Bytes` that points into it.
struct PyBytesOwner {
    _obj: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `bytes` object is immutable and its buffer never moves while a
// reference is held; the reference is released through pyo3 (which defers
// the decref to a thread attached to Python when dropped elsewhere).
unsafe impl Send for PyBytesOwner {}
unsafe impl Sync for PyBytesOwner {}

impl AsRef<[u8]> for PyBytesOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see above: the buffer lives as long as `_obj`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Data to send: `bytes` (shared when large), `Payload` (shared),
/// `bytearray`, `memoryview` or any other buffer (copied). `str` is refused:
/// encode it first.
pub(crate) fn data_arg(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let s = b.as_bytes();
        if s.len() < SHARE_MIN {
            return Ok(Bytes::copy_from_slice(s));
        }
        let owner = PyBytesOwner { ptr: s.as_ptr(), len: s.len(), _obj: b.clone().unbind() };
        return Ok(Bytes::from_owner(owner));
    }
    if let Some(b) = payload::payload_bytes(obj) {
        return Ok(b);
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("expected bytes or a buffer, not {}", type_name(obj))));
    }
    // Any other buffer (memoryview, array, mmap...): bytes(obj) copies it.
    // SAFETY: GIL held; NULL carries the exception.
    let b = unsafe { Bound::from_owned_ptr_or_err(obj.py(), ffi::PyObject_Bytes(obj.as_ptr())) }
        .map_err(|_| PyTypeError::new_err(format!("expected bytes or a buffer, not {}", type_name(obj))))?;
    Ok(Bytes::copy_from_slice(b.cast_into::<PyBytes>()?.as_bytes()))
}

/// A received chunk: `bytes` below `threshold`, a zero-copy `Payload` from it.
#[inline]
pub(crate) fn chunk<'py>(py: Python<'py>, data: Bytes, threshold: usize) -> PyResult<Bound<'py, PyAny>> {
    if data.len() < threshold {
        Ok(PyBytes::new(py, &data).into_any())
    } else {
        payload::new_payload(py, data)
    }
}

/// A decoded msgpack value as Python: nil → None, bool, int, float,
/// str-family → str (surrogateescape), bin → bytes, array → list, map →
/// dict (pairs in wire order; a later duplicate key wins), ext → (type, bytes).
pub(crate) fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Nil => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Uint(n) => n.into_pyobject(py)?.into_any(),
        Value::Int(n) => n.into_pyobject(py)?.into_any(),
        Value::F32(f) => PyFloat::new(py, f64::from(*f)).into_any(),
        Value::F64(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(b) => text(py, b)?,
        Value::Bin(b) => PyBytes::new(py, b).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for i in items {
                list.append(value_to_py(py, i)?)?;
            }
            list.into_any()
        }
        Value::Map(pairs) => {
            let d = PyDict::new(py);
            for (k, v) in pairs {
                let k = value_to_py(py, k)?;
                // Unhashable keys (lists) become tuples.
                let k = match k.cast::<PyList>() {
                    Ok(l) => PyTuple::new(py, l.iter())?.into_any(),
                    Err(_) => k,
                };
                d.set_item(k, value_to_py(py, v)?)?;
            }
            d.into_any()
        }
        Value::Ext(t, b) => (i64::from(*t), PyBytes::new(py, b)).into_pyobject(py)?.into_any(),
    })
}

/// A Python value as msgpack: None, bool, int, float, str (str family),
/// bytes-like (bin family; str family in the compat profile), list/tuple,
/// dict.
pub(crate) fn py_to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > sluice_core::wire::value::MAX_DEPTH {
        return Err(PyValueError::new_err("value nested too deeply"));
    }
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Value::Uint(n));
        }
        return obj.extract::<i64>().map(Value::from).map_err(|_| PyValueError::new_err("integer out of msgpack's range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::F64(f.value()));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::Str(text_arg(obj, "value")?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|i| py_to_value(&i, depth + 1)).collect::<PyResult<_>>().map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().map(|i| py_to_value(&i, depth + 1)).collect::<PyResult<_>>().map(Value::Array);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return d
            .iter()
            .map(|(k, v)| Ok((py_to_value(&k, depth + 1)?, py_to_value(&v, depth + 1)?)))
            .collect::<PyResult<_>>()
            .map(Value::Map);
    }
    data_arg(obj).map(Value::Bin).map_err(|_| PyTypeError::new_err(format!("cannot encode {} as msgpack", type_name(obj))))
}

/// Where something listens, like `socket.getsockname()`: `(host, port)`
/// for TCP, the path (str) for a Unix socket.
pub(crate) fn address<'py>(py: Python<'py>, e: &sluice_core::net::Endpoint) -> PyResult<Bound<'py, PyAny>> {
    use sluice_core::net::Endpoint;
    Ok(match e {
        Endpoint::Tcp(h, p) => (h.clone(), *p).into_pyobject(py)?.into_any(),
        Endpoint::Unix(path) => path.to_string_lossy().into_owned().into_pyobject(py)?.into_any(),
    })
}
