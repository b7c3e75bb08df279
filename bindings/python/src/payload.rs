//! `sluice.Payload`: a chunk's bytes shared with the receive buffer, exposed
//! through the buffer protocol without a copy.
//!
//! pyo3 offers `__getbuffer__` under the stable ABI only from Python 3.11,
//! and the module is abi3 for 3.9+. CPython accepts the buffer slots in
//! `PyType_FromSpec` since 3.9 (bpo-40724), and `Py_buffer`'s layout has not
//! changed since 3.3, so this one small type is built by hand with
//! `PyType_FromSpec`: an object header followed by a `bytes::Bytes`.

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;

/// The instance layout.
#[repr(C)]
struct PayloadObject {
    ob_base: ffi::PyObject,
    bytes: ManuallyDrop<Bytes>,
}

/// CPython's `Py_buffer` (stable since 3.3; not in pyo3's abi3 < 3.11 FFI).
#[repr(C)]
struct RawBuffer {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

const PYBUF_WRITABLE: c_int = 0x0001;
const PYBUF_FORMAT: c_int = 0x0004;
const PYBUF_ND: c_int = 0x0008;
const PYBUF_STRIDES: c_int = 0x0010 | PYBUF_ND;

/// The type object, created once at module init (the module is
/// single-phase: one interpreter per process).
static TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(ptr::null_mut());

const DOC: &std::ffi::CStr = c"Payload()\n--\n\n\
A received chunk's bytes, shared with sluice's receive buffer: no copy.\n\n\
Large chunks (at least the channel's ``copy_threshold`` bytes) arrive as a\n\
``Payload`` instead of ``bytes``. It is read-only and supports the buffer\n\
protocol (``memoryview(p)``, ``bytes(p)``, ``file.write(p)``, ``socket.send(p)``,\n\
``hashlib.sha256(p)``), ``len(p)``, ``p.tobytes()`` and ``==`` with ``bytes``\n\
or another ``Payload``. It can be passed to ``Channel.send_chunk`` and\n\
``Channel.send`` without a copy. Keeping it keeps the receive buffer\n\
region alive. Payloads are made by sluice, not by calling the class.";

/// A new strong reference to `p`.
unsafe fn new_ref(p: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `p` is a live object; GIL held.
    unsafe { ffi::Py_IncRef(p) };
    p
}

unsafe fn bytes_of<'a>(obj: *mut ffi::PyObject) -> &'a Bytes {
    // SAFETY: the caller passes an instance of TYPE.
    unsafe { &(*(obj as *mut PayloadObject)).bytes }
}

fn is_payload_ptr(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: `obj` is a live object.
    let tp = unsafe { ffi::Py_TYPE(obj) };
    !tp.is_null() && tp == TYPE.load(Ordering::Acquire)
}

unsafe extern "C" fn getbuffer(obj: *mut ffi::PyObject, view: *mut RawBuffer, flags: c_int) -> c_int {
    // SAFETY (whole body): CPython calls this with an instance of TYPE and
    // a view to fill, holding the GIL; this is PyBuffer_FillInfo.
    unsafe {
        if view.is_null() {
            ffi::PyErr_SetString(ffi::PyExc_BufferError, c"sluice.Payload: NULL view".as_ptr());
            return -1;
        }
        if flags & PYBUF_WRITABLE == PYBUF_WRITABLE {
            ffi::PyErr_SetString(ffi::PyExc_BufferError, c"sluice.Payload is read-only".as_ptr());
            return -1;
        }
        let b = bytes_of(obj);
        let v = &mut *view;
        v.buf = b.as_ptr() as *mut c_void;
        ffi::Py_IncRef(obj);
        v.obj = obj;
        v.len = b.len() as ffi::Py_ssize_t;
        v.itemsize = 1;
        v.readonly = 1;
        v.ndim = 1;
        v.format = if flags & PYBUF_FORMAT == PYBUF_FORMAT { c"B".as_ptr() as *mut c_char } else { ptr::null_mut() };
        v.shape = if flags & PYBUF_ND == PYBUF_ND { &mut v.len } else { ptr::null_mut() };
        v.strides = if flags & PYBUF_STRIDES == PYBUF_STRIDES { &mut v.itemsize } else { ptr::null_mut() };
        v.suboffsets = ptr::null_mut();
        v.internal = ptr::null_mut();
        0
    }
}

unsafe extern "C" fn dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: the last reference to an instance of TYPE goes; heap type
    // instances own a reference to their type.
    unsafe {
        ManuallyDrop::drop(&mut (*(obj as *mut PayloadObject)).bytes);
        let tp = ffi::Py_TYPE(obj);
        let free: ffi::freefunc = std::mem::transmute(ffi::PyType_GetSlot(tp, ffi::Py_tp_free));
        free(obj as *mut c_void);
        ffi::Py_DecRef(tp as *mut ffi::PyObject);
    }
}

unsafe extern "C" fn new(_tp: *mut ffi::PyTypeObject, _args: *mut ffi::PyObject, _kw: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: setting an exception with the GIL held.
    unsafe {
        ffi::PyErr_SetString(
            ffi::PyExc_TypeError,
            c"sluice.Payload objects are made by sluice for received chunks; use bytes for your own data".as_ptr(),
        )
    };
    ptr::null_mut()
}

unsafe extern "C" fn length(obj: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    // SAFETY: an instance of TYPE.
    unsafe { bytes_of(obj) }.len() as ffi::Py_ssize_t
}

unsafe extern "C" fn richcompare(a: *mut ffi::PyObject, b: *mut ffi::PyObject, op: c_int) -> *mut ffi::PyObject {
    // SAFETY (whole body): CPython passes live objects with the GIL held;
    // `a` is an instance of TYPE (the slot is called for it).
    unsafe {
        let other: &[u8] = if is_payload_ptr(b) {
            bytes_of(b)
        } else if ffi::PyBytes_Check(b) != 0 {
            let p = ffi::PyBytes_AsString(b) as *const u8;
            std::slice::from_raw_parts(p, ffi::PyBytes_Size(b) as usize)
        } else {
            return new_ref(ffi::Py_NotImplemented());
        };
        let mine: &[u8] = if is_payload_ptr(a) { bytes_of(a) } else { return new_ref(ffi::Py_NotImplemented()) };
        let eq = mine == other;
        let r = match op {
            ffi::Py_EQ => eq,
            ffi::Py_NE => !eq,
            _ => return new_ref(ffi::Py_NotImplemented()),
        };
        new_ref(if r { ffi::Py_True() } else { ffi::Py_False() })
    }
}

unsafe extern "C" fn repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: an instance of TYPE, GIL held.
    let s = format!("<sluice.Payload of {} bytes>", unsafe { bytes_of(obj) }.len());
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr() as *const c_char, s.len() as ffi::Py_ssize_t) }
}

unsafe extern "C" fn tobytes(obj: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: an instance of TYPE, GIL held.
    unsafe {
        let b = bytes_of(obj);
        ffi::PyBytes_FromStringAndSize(b.as_ptr() as *const c_char, b.len() as ffi::Py_ssize_t)
    }
}

/// Creates the type; called once from the module's init.
pub(crate) fn init_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let existing = TYPE.load(Ordering::Acquire);
    if !existing.is_null() {
        // SAFETY: the type created earlier is immortal for us (we keep a reference).
        return Ok(unsafe { Bound::from_borrowed_ptr(py, existing as *mut ffi::PyObject) });
    }
    // The spec, its slots and methods must outlive the type: leaked once.
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"tobytes".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: tobytes },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"tobytes($self, /)\n--\n\nA copy of the bytes as a ``bytes`` object.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"__bytes__".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: tobytes },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"__bytes__($self, /)\n--\n\nA copy of the bytes as a ``bytes`` object.".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    type GetBuf = unsafe extern "C" fn(*mut ffi::PyObject, *mut RawBuffer, c_int) -> c_int;
    let slots: &'static mut [ffi::PyType_Slot] = Box::leak(Box::new([
        ffi::PyType_Slot { slot: ffi::Py_bf_getbuffer, pfunc: getbuffer as GetBuf as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: dealloc as ffi::destructor as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_new, pfunc: new as ffi::newfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_sq_length, pfunc: length as ffi::lenfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_mp_length, pfunc: length as ffi::lenfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_richcompare, pfunc: richcompare as ffi::richcmpfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_hash, pfunc: ffi::PyObject_HashNotImplemented as ffi::hashfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_repr, pfunc: repr as ffi::reprfunc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: methods.as_mut_ptr() as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_doc, pfunc: DOC.as_ptr() as *mut c_void },
        ffi::PyType_Slot { slot: 0, pfunc: ptr::null_mut() },
    ]));
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"sluice.Payload".as_ptr(),
        basicsize: std::mem::size_of::<PayloadObject>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: a complete spec with 'static storage; GIL held.
    let tp = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec))? };
    // The module holds one reference; this static borrows another, never released.
    TYPE.store(tp.clone().into_ptr() as *mut ffi::PyTypeObject, Ordering::Release);
    Ok(tp)
}

/// A new `Payload` holding `bytes`.
pub(crate) fn new_payload(py: Python<'_>, bytes: Bytes) -> PyResult<Bound<'_, PyAny>> {
    let tp = TYPE.load(Ordering::Acquire);
    assert!(!tp.is_null(), "sluice._sluice initialises the Payload type first");
    // SAFETY: allocating an instance of our heap type with the GIL held,
    // then initialising its only field before anyone sees it.
    unsafe {
        let alloc: ffi::allocfunc = std::mem::transmute(ffi::PyType_GetSlot(tp, ffi::Py_tp_alloc));
        let obj = alloc(tp, 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        ptr::write(&mut (*(obj as *mut PayloadObject)).bytes, ManuallyDrop::new(bytes));
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// The bytes of a `Payload` (a new reference to the same buffer), or
/// `None` if `obj` is not one.
pub(crate) fn payload_bytes(obj: &Bound<'_, PyAny>) -> Option<Bytes> {
    let p = obj.as_ptr();
    // SAFETY: checked to be an instance of TYPE.
    is_payload_ptr(p).then(|| unsafe { bytes_of(p) }.clone())
}
