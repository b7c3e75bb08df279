//! The one converter: a `(Source, Event)` of any role as the call of its
//! callback (`on_<event name>`, or the class's own name for it) and that
//! callback's arguments.

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyList};
use pyo3::IntoPyObjectExt;

use sluice_core::host::{Event, Source};
use sluice_core::net::Incoming;
use sluice_core::wire::Message;

use super::{lock, Item, State};
use crate::convert::{self, text};
use crate::roles::{engine::WorkerRef, resume::Peer, worker::WorkerStream};
use crate::{call, errors};

impl State {
    /// Marks the end when `event` is the object's last one (its own
    /// disconnect, for channels and workers).
    pub(super) fn note_last(&self, source: &Source, event: &Event) {
        if self.spec.last_disconnect && matches!((source, event), (Source::Own, Event::Disconnected { .. })) {
            self.ended.store(true, Ordering::Release);
        }
    }

    /// Runs the callback of one event.
    pub(super) fn call(&self, py: Python<'_>, cbs: &[Option<Py<PyAny>>], item: Item, threshold: usize) -> PyResult<()> {
        let (source, event) = match item {
            // The per-message path: a chunk of the object's own, with the
            // callback's index looked up once per object, the payload
            // moved, and no argument list built.
            (Source::Own, Event::Message { session, message: Message::Chunk { data }, .. }) => {
                let Some(f) = self.chunk_callback.and_then(|i| cbs[i].as_ref()) else { return Ok(()) };
                let s = session.into_bound_py_any(py)?;
                return call::call(py, f.bind(py), &[s, convert::chunk(py, data, threshold)?]);
            }
            other => other,
        };
        self.note_last(&source, &event);
        let f = self.spec.index(event.name()).and_then(|i| cbs[i].as_ref());
        if let Event::Accepted(incoming) = event {
            return self.accept(py, f, *incoming);
        }
        match f {
            Some(f) => call::call(py, f.bind(py), &self.args(py, source, event, threshold)?),
            None => Ok(()),
        }
    }

    /// A server's accepted connection: a channel for `on_accept`, or for
    /// `accept()` when none is set.
    fn accept(&self, py: Python<'_>, on_accept: Option<&Py<PyAny>>, incoming: Incoming) -> PyResult<()> {
        let Some(acc) = &self.accepting else { return Ok(()) };
        let ch = crate::channel::accepted(py, incoming, &acc.opts)?;
        match on_accept {
            Some(f) => f.bind(py).call1((ch,)).map(drop),
            None => {
                lock(&acc.ready).push_back(ch);
                Ok(())
            }
        }
    }

    /// The one converter: the arguments of an event's callback. Whom it
    /// concerns comes first (a `WorkerRef`, a `Peer`; a `WorkerStream`
    /// stands for the session of an invoke).
    pub(crate) fn args<'py>(&self, py: Python<'py>, source: Source, event: Event, threshold: usize) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut a: Vec<Bound<'py, PyAny>> = Vec::with_capacity(5);
        let (stream, peer) = (matches!(source, Source::Stream(_)), matches!(source, Source::Peer(_)));
        match source {
            Source::Worker(w) => a.push(Bound::new(py, WorkerRef::from(w))?.into_any()),
            Source::Peer(p) => a.push(Bound::new(py, Peer::new(p, self.wire))?.into_any()),
            Source::Stream(s) => {
                let to = self.streams.clone().expect("a worker's invoke");
                a.push(Bound::new(py, WorkerStream::new(to, s.session()))?.into_any());
            }
            _ => {}
        }
        fn obj<'py>(py: Python<'py>, v: impl IntoPyObjectExt<'py>) -> PyResult<Bound<'py, PyAny>> {
            v.into_bound_py_any(py)
        }
        match event {
            Event::Connected { endpoint, resumed } => {
                if let Some(e) = &endpoint {
                    a.push(obj(py, e.to_string())?);
                }
                if endpoint.is_some() || peer {
                    a.push(PyBool::new(py, resumed).to_owned().into_any());
                }
            }
            Event::Message { session, message, .. } => match message {
                Message::Handshake { uuid } => a.push(text(py, &uuid)?),
                Message::Heartbeat => {}
                Message::Terminate { code, reason } => {
                    if self.spec.terminate_session {
                        a.push(obj(py, session)?);
                    }
                    a.extend([obj(py, code)?, text(py, &reason)?]);
                }
                Message::Invoke { event } => {
                    if !stream {
                        a.push(obj(py, session)?);
                    }
                    a.push(text(py, &event)?);
                }
                Message::Chunk { data } => a.extend([obj(py, session)?, convert::chunk(py, data, threshold)?]),
                Message::Choke => a.push(obj(py, session)?),
                Message::Error { category, code, message } => {
                    a.extend([obj(py, session)?, obj(py, category)?, obj(py, code)?, opt_text(py, message.as_deref())?])
                }
            },
            Event::Frame(f) => a.extend([obj(py, f.session)?, obj(py, f.ty)?, frame_args(py, &f)?]),
            Event::Rejected { uuid } => a.push(text(py, uuid.as_bytes())?),
            Event::Reconnecting { attempt, endpoint, delay } => {
                a.extend([obj(py, attempt)?, obj(py, endpoint.to_string())?, obj(py, delay.as_secs_f64())?])
            }
            Event::Disconnected { errno, sessions } => {
                a.push(obj(py, errno)?);
                if self.spec.disconnect_sessions {
                    a.push(PyList::new(py, sessions)?.into_any());
                }
            }
            _ => {}
        }
        Ok(a)
    }
}

/// Protocol text or None.
fn opt_text<'py>(py: Python<'py>, b: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
    match b {
        Some(b) => text(py, b),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A frame's arguments, decoded, as a list.
fn frame_args<'py>(py: Python<'py>, frame: &sluice_core::wire::Frame) -> PyResult<Bound<'py, PyAny>> {
    let values = frame.args.to_values().map_err(|e| errors::error(py, &format!("frame arguments: {e}")))?;
    let list = PyList::empty(py);
    for v in &values {
        list.append(convert::value_to_py(py, v)?)?;
    }
    Ok(list.into_any())
}
