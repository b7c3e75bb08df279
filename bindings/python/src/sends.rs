//! The one send family of every object that has sessions (`host::Streams`:
//! a channel, a session, a resume peer, a worker's and an engine's
//! streams): chunk, choke, error, invoke, frame and control messages from
//! Python arguments. A refusal raises through [`errors::sent`].

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use sluice_core::host::Streams;
use sluice_core::wire::{Args, Dialect, Message, Profile, Value};

use crate::convert::{self, text_arg};
use crate::errors;

/// Sends `message` on `session`.
pub(crate) fn message(py: Python<'_>, to: &dyn Streams, session: u64, message: &Message) -> PyResult<()> {
    errors::sent(py, to.send_message(session, message, &[]))
}

/// A chunk (v0 ``chunk``, v1 ``write``); `data` is bytes-like (large
/// ``bytes`` and ``Payload`` objects are not copied).
pub(crate) fn chunk(py: Python<'_>, to: &dyn Streams, session: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let b = convert::data_arg(data)?;
    errors::sent(py, to.send_chunk(session, &b))
}

/// Ends this side of `session` (v0 ``choke``, v1 ``close``).
pub(crate) fn choke(py: Python<'_>, to: &dyn Streams, session: u64) -> PyResult<()> {
    message(py, to, session, &Message::Choke)
}

/// Fails `session` (`category` None: the frameworks' own, 42).
pub(crate) fn error(
    py: Python<'_>,
    to: &dyn Streams,
    session: u64,
    code: i64,
    text: Option<&Bound<'_, PyAny>>,
    category: Option<i64>,
) -> PyResult<()> {
    let text = text.filter(|m| !m.is_none()).map(|m| text_arg(m, "message")).transpose()?;
    message(py, to, session, &Message::Error { category, code, message: text })
}

/// Opens `session` for `event`; returns the session.
pub(crate) fn invoke(py: Python<'_>, to: &dyn Streams, session: u64, event: &Bound<'_, PyAny>) -> PyResult<u64> {
    let event = text_arg(event, "event")?;
    message(py, to, session, &Message::Invoke { event })?;
    Ok(session)
}

/// A generic frame: `args` a list or tuple of values, encoded as msgpack.
pub(crate) fn frame(
    py: Python<'_>,
    to: &dyn Streams,
    wire: (Dialect, Profile),
    session: u64,
    type_id: u64,
    args: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let args = match args {
        Some(a) => encode_args(a, wire.0, wire.1)?,
        None => Args::empty(),
    };
    errors::sent(py, to.send_frame(session, type_id, &args, &[]))
}

/// A frame's `args` argument (a list or tuple of values) as msgpack in
/// the dialect's profile.
pub(crate) fn encode_args(args: &Bound<'_, PyAny>, dialect: Dialect, profile: Profile) -> PyResult<Args> {
    let items: Vec<Value> = args
        .try_iter()
        .map_err(|_| PyTypeError::new_err("args must be a list or tuple of msgpack-encodable values"))?
        .map(|i| convert::py_to_value(&i?, 1))
        .collect::<PyResult<_>>()?;
    let profile = match dialect {
        Dialect::V0 => Profile::Compat,
        Dialect::V1 => profile,
    };
    Args::from_raw(Value::Array(items).to_bytes(profile)).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// One session of an object that sends (what a `WorkerStream` and an
/// `EngineStream` are): `write`, then `close` or `error`.
pub(crate) struct Stream {
    pub to: Arc<dyn Streams>,
    pub session: u64,
}

impl Stream {
    pub(crate) fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        chunk(py, &*self.to, self.session, data)
    }

    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        choke(py, &*self.to, self.session)
    }

    pub(crate) fn error(&self, py: Python<'_>, code: i64, text: Option<&Bound<'_, PyAny>>, category: Option<i64>) -> PyResult<()> {
        error(py, &*self.to, self.session, code, text, category)
    }
}
