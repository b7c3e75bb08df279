//! The exceptions the native module raises. The classes are defined in
//! Python (`sluice/errors.py`: some derive from both `sluice.Error` and an
//! `OSError` subclass, which pyo3's exception macros cannot express) and
//! looked up once.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use sluice_core::roles::StreamError;

fn class<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<Bound<'py, PyType>> {
    cell.import(py, "sluice.errors", name).cloned()
}

macro_rules! classes {
    ($($f:ident => $name:literal),* $(,)?) => {
        $(
            pub(crate) fn $f(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
                static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
                class(py, &CELL, $name)
            }
        )*
    };
}

classes! {
    error_class => "Error",
    would_block_class => "WouldBlock",
    closed_class => "Closed",
    bad_arguments_class => "BadArguments",
}

fn make<'py>(cls: PyResult<Bound<'py, PyType>>, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    match cls {
        Ok(c) => match c.call1(args) {
            Ok(v) => PyErr::from_value(v),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

/// `sluice.Error(message)`.
pub(crate) fn error(py: Python<'_>, message: &str) -> PyErr {
    make(error_class(py), (message.to_string(),))
}

/// A refused send as an exception, in one place for every object that
/// sends: `sluice.WouldBlock` (an `EAGAIN` BlockingIOError) when the queue
/// is full, else `sluice.Closed`; the message is the core's explanation.
pub(crate) fn refused(py: Python<'_>, e: impl Into<StreamError>) -> PyErr {
    let e = e.into();
    match e.code() {
        "EAGAIN" => make(would_block_class(py), (libc::EAGAIN, e.explain().to_string())),
        _ => closed(py, e.explain()),
    }
}

/// Maps a send's result.
pub(crate) fn sent(py: Python<'_>, r: Result<(), impl Into<StreamError>>) -> PyResult<()> {
    r.map_err(|e| refused(py, e))
}

/// `sluice.Closed(message)`.
pub(crate) fn closed(py: Python<'_>, message: &str) -> PyErr {
    make(closed_class(py), (message.to_string(),))
}

/// `sluice.BadArguments(message)`: worker arguments that cannot be used.
pub(crate) fn bad_arguments(py: Python<'_>, message: &str) -> PyErr {
    make(bad_arguments_class(py), (message.to_string(),))
}

classes! {
    service_error_class => "ServiceError",
    not_found_class => "NotFound",
    unknown_method_class => "UnknownMethod",
    disconnected_class => "Disconnected",
    timeout_class => "Timeout",
    connection_error_class => "ConnectionError",
}

/// The exception for an error of the service clients and hosts:
/// `ServiceError`, `NotFound`, `UnknownMethod`, `Disconnected`, `Timeout`,
/// `ConnectionError` (no endpoint reachable: the last errno), `WouldBlock`,
/// `Closed`, or `sluice.Error` with the core's message.
pub(crate) fn service(py: Python<'_>, e: sluice_core::services::Error) -> PyErr {
    use sluice_core::services::Error as E;
    let text = e.to_string();
    match e {
        E::Service(s) => make(service_error_class(py), (s.category, s.code, s.message)),
        E::NotFound(name) => make(not_found_class(py), (text, name)),
        E::UnknownMethod { service, method } => make(unknown_method_class(py), (text, service, method)),
        E::Disconnected(errno) => make(disconnected_class(py), (errno, text)),
        E::Timeout => make(timeout_class(py), (libc::ETIMEDOUT, text)),
        E::Connect { tried, .. } => {
            let errno = tried.last().map_or(libc::ECONNREFUSED, |t| t.1);
            make(connection_error_class(py), (errno, text))
        }
        E::WouldBlock => refused(py, StreamError::WouldBlock),
        E::Closed => closed(py, &text),
        _ => error(py, &text),
    }
}
