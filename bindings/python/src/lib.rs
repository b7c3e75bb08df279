//! `sluice._sluice`: the native module behind the Python package `sluice`.
//!
//! A thin layer over `sluice-core`: it re-implements no protocol logic.
//! Channels and servers use the core's poll delivery: the core queues
//! events and makes a descriptor readable; the Python thread takes them in
//! batches (`dispatch`, `events`, asyncio's `add_reader`), so no I/O thread
//! ever waits for the GIL and one crossing into Python carries many
//! messages.
//!
//! Modules: [`call`] (calling callbacks), [`channel`] and [`server`] (the classes), [`events`] (event
//! objects for pull-style delivery), [`payload`] (the zero-copy chunk
//! buffer), [`options`] (keyword arguments into a `ChannelConfig`),
//! [`convert`] (strings, byte strings and msgpack values), [`errors`] (the
//! exception classes of `sluice.errors`), [`wait`] (poll(2) without the GIL),
//! [`services`] (Cocaine services: Locator clients, hosting, the registry).

use pyo3::prelude::*;

mod call;
mod channel;
mod convert;
mod errors;
mod events;
mod options;
mod payload;
mod roles;
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

#[pymodule]
fn _sluice(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_COPY_THRESHOLD", options::DEFAULT_COPY_THRESHOLD)?;
    m.add("DEFAULT_BATCH", options::DEFAULT_BATCH)?;
    m.add_class::<channel::Channel>()?;
    m.add_class::<server::Server>()?;
    events::register(m)?;
    roles::register(m)?;
    services::register(m)?;
    m.add("Payload", payload::init_type(py)?)?;
    m.add_function(wrap_pyfunction!(wait::poll, m)?)?;
    m.add_function(wrap_pyfunction!(set_io_threads, m)?)?;
    Ok(())
}
