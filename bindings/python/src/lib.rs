//! `sluice._sluice`: the native module behind the Python package `sluice`.
//!
//! A thin layer over `sluice-core` and its binding layer `host`: it
//! re-implements no protocol logic. Every pollable object uses the core's
//! poll delivery: the core queues events and makes a descriptor readable;
//! the Python thread takes them in batches (`dispatch`, `events`, asyncio's
//! `add_reader`), so no I/O thread ever waits for the GIL and one crossing
//! into Python carries many messages.
//!
//! Modules: [`handle`] (the one base class of every pollable object, the
//! one event converter, `poll`), [`sends`] (the one send family),
//! [`channel`] and [`server`], [`roles`] (Worker, Engine, Session,
//! ResumeServer), [`services`] (Cocaine services), [`events`] (event objects
//! for pull-style delivery), [`payload`] (the zero-copy chunk buffer),
//! [`options`] (keyword arguments through the core's option table),
//! [`convert`] (strings, byte strings and msgpack values), [`call`]
//! (calling callbacks), [`errors`] (the exceptions of `sluice.errors`),
//! [`wait`] (poll(2) without the GIL).

use pyo3::prelude::*;

mod call;
mod channel;
mod convert;
mod errors;
mod events;
mod handle;
mod options;
mod payload;
mod roles;
mod sends;
mod server;
mod services;
mod wait;

/// Sets the number of I/O threads of the process-wide runtime (default 2,
/// or the `SLUICE_THREADS` environment variable). Takes effect only before
/// the first channel or server is created; returns whether it did.
#[pyfunction]
fn set_io_threads(n: usize) -> bool {
    sluice_core::net::runtime::set_threads(n)
}

/// Sets process-wide settings, shared by every server and connection of
/// the process (``sluice.SETTINGS`` lists them): ``max_service_connections``
/// (connections the services of this process keep open at once, all
/// servers together), ``service_idle_timeout`` (seconds an idle connection
/// to a hosted or attached service may stay open; 0 or None: never;
/// default 300), ``io_threads`` (before the first channel or server only).
/// The core's settings table checks every value, as for C's ``sluice_set``
/// and Node's ``configure``: a refused value raises ValueError with its
/// text (``"max_service_connections: must be a whole number from 1 to
/// 4294967295, got 0"``), as does an unknown name (``"no_such: unknown
/// setting"``); settings are applied in the order given, and those before a
/// refused one stay set.
#[pyfunction]
#[pyo3(signature = (**settings))]
fn configure(settings: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyResult<()> {
    match settings {
        Some(s) => options::configure(s),
        None => Ok(()),
    }
}

/// The current value of the process-wide setting ``name`` (see
/// ``sluice.SETTINGS``): an int for a count, float seconds for a duration,
/// None for a timeout that is off. An unknown name raises ValueError
/// (``"no_such: unknown setting"``).
#[pyfunction]
fn setting(py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
    options::setting(py, name)
}

/// The symbolic name of an errno (``"ECONNRESET"``; ``"EUNKNOWN"`` for one
/// sluice does not know). Values are Linux's on every system.
#[pyfunction]
fn errno_name(errno: i32) -> &'static str {
    sluice_core::host::errno_name(errno)
}

/// What an errno means for a sluice connection, in words: sluice's own
/// meaning where it gives the value one (EBADMSG, EMSGSIZE, ESHUTDOWN,
/// ENOBUFS), else the system's description.
#[pyfunction]
fn errno_text(errno: i32) -> String {
    sluice_core::host::errno_text(errno)
}

#[pymodule]
fn _sluice(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_COPY_THRESHOLD", options::default_copy_threshold())?;
    m.add("DEFAULT_BATCH", options::default_batch())?;
    m.add("OPTIONS", options::table(py, sluice_core::host::OPTIONS)?)?;
    m.add("SETTINGS", options::table(py, sluice_core::host::settings::SETTINGS)?)?;
    m.add_class::<channel::Channel>()?;
    m.add_class::<server::Server>()?;
    events::register(m)?;
    roles::register(m)?;
    services::register(m)?;
    m.add("Payload", payload::init_type(py)?)?;
    m.add_function(wrap_pyfunction!(handle::poll, m)?)?;
    m.add_function(wrap_pyfunction!(set_io_threads, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(setting, m)?)?;
    m.add_function(wrap_pyfunction!(errno_name, m)?)?;
    m.add_function(wrap_pyfunction!(errno_text, m)?)?;
    Ok(())
}
