//! Event objects for pull-style delivery (`Channel.events()`, and the
//! asyncio API's async iteration): one small immutable class per event,
//! with positional pattern matching (`case Chunk(session, data):`).
//! Callbacks get the same values as arguments instead.

use pyo3::prelude::*;
use pyo3::types::{PyModule, PyTuple};
use pyo3::IntoPyObjectExt;

macro_rules! event_class {
    ($name:ident, $pyname:literal, $doc:literal, { $($fdoc:literal $field:ident : $ty:ty),* $(,)? }) => {
        #[doc = $doc]
        #[pyclass(frozen, module = "sluice.events", name = $pyname)]
        pub struct $name {
            $(
                #[doc = $fdoc]
                #[pyo3(get)]
                pub $field: $ty,
            )*
        }

        #[pymethods]
        impl $name {
            #[new]
            fn new($($field: $ty),*) -> Self {
                $name { $($field),* }
            }

            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<PyTuple>> {
                let names: &[&str] = &[$(stringify!($field)),*];
                Ok(PyTuple::new(py, names)?.unbind())
            }

            #[allow(unused_variables)]
            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let parts: Vec<String> = vec![$(
                    format!("{}={}", stringify!($field), (&self.$field).into_bound_py_any(py)?.repr()?),
                )*];
                Ok(format!("{}({})", $pyname, parts.join(", ")))
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                let Ok(other) = other.cast::<$name>() else { return Ok(false) };
                let _o = other.get();
                let py = other.py();
                let _ = py;
                Ok(true $(&& (&self.$field).into_bound_py_any(py)?.eq((&_o.$field).into_bound_py_any(py)?)?)*)
            }
        }
    };
}

event_class!(Connected, "Connected", "The connection is established (the first event of a channel, also of an accepted one).", {});
event_class!(SocketError, "SocketError", "The connection ended with ``errno`` (docs/PROTOCOL.md §8.3): the last event of a channel.", { "The errno (Linux numbering, docs/PROTOCOL.md §8.3)." errno: i32 });
event_class!(Drain, "Drain", "After a send raised ``WouldBlock``: the send queue is down to the low watermark.", {});
event_class!(Handshake, "Handshake", "Engine role: the worker's handshake with its ``uuid`` (str).", { "The worker's uuid (str)." uuid: Py<PyAny> });
event_class!(Heartbeat, "Heartbeat", "A heartbeat (worker role: also the engine's heartbeat reply).", {});
event_class!(Terminate, "Terminate", "``terminate(code, reason)`` on the control ``session`` (0 in v0, 1 in v1).", {
    "The control session (0 in v0, 1 in v1)." session: u64,
    "The terminate code (v0: 1 normal, 2 abnormal; v1: the engine's own codes)." code: i64,
    "Why (str)." reason: Py<PyAny>,
});
event_class!(Invoke, "Invoke", "Worker role: the engine opens ``session`` for ``event`` (str).", { "The new session." session: u64, "The event name (str)." event: Py<PyAny> });
event_class!(Chunk, "Chunk", "A chunk of ``session``'s data: ``bytes``, or a zero-copy ``Payload`` from the channel's ``copy_threshold``.", {
    "The session." session: u64,
    "The bytes: ``bytes``, or a zero-copy ``Payload``." data: Py<PyAny>,
});
event_class!(Choke, "Choke", "The peer's direction of ``session`` ends (v0 ``choke``, v1 ``close``).", { "The session." session: u64 });
event_class!(ErrorEvent, "Error", "``session`` failed: ``category`` (v1; None in v0), ``code``, ``message`` (str, or None when a v1 error has none).", {
    "The session." session: u64,
    "The v1 error category (None in v0)." category: Option<i64>,
    "The error code." code: i64,
    "The message (str), or None when a v1 error has none." message: Py<PyAny>,
});
event_class!(Frame, "Frame", "A frame that is not a worker-protocol message (every frame when ``role`` is None; with a role, frames the protocol drops): ``type_id`` and ``args`` (a list of decoded msgpack values).", {
    "The v0 session / v1 channel id." session: u64,
    "The type id." type_id: u64,
    "The arguments, decoded (a list)." args: Py<PyAny>,
});

/// Adds the submodule `events` to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let ev = PyModule::new(m.py(), "events")?;
    ev.add_class::<Connected>()?;
    ev.add_class::<SocketError>()?;
    ev.add_class::<Drain>()?;
    ev.add_class::<Handshake>()?;
    ev.add_class::<Heartbeat>()?;
    ev.add_class::<Terminate>()?;
    ev.add_class::<Invoke>()?;
    ev.add_class::<Chunk>()?;
    ev.add_class::<Choke>()?;
    ev.add_class::<ErrorEvent>()?;
    ev.add_class::<Frame>()?;
    m.add_submodule(&ev)
}
