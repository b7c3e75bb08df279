//! `sluice.Session`: a client connection that stays up (the core's
//! `roles::Session`, on the handle base, with a descriptor that stays the
//! same across reconnections).

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use sluice_core::roles::{Backoff, Liveness, ResumeOptions, Session as CoreSession, SessionEvent, SessionOptions};
use sluice_core::wire::Dialect;

use super::seconds;
use crate::handle::{self, handle_class, Handle, Queue, State};
use crate::{errors, options, sends};

/// A connection that stays up: it connects to the first of its endpoints
/// and, whenever the connection fails or ends, reconnects by itself after a
/// delay that grows exponentially with jitter, trying the endpoints in
/// order (failover).
///
/// ``Session(endpoints, dialect=1, role=None, resume=False, ...)``:
/// ``endpoints`` is a list of endpoints (Unix paths, ``"unix:PATH"``,
/// ``"host:port"``, ``(host, port)``) or one endpoint. With
/// ``heartbeat_interval`` and ``liveness_timeout`` it heartbeats and treats
/// a peer silent for the timeout as gone (ETIMEDOUT). With ``resume=True``
/// (against a ``sluice.ResumeServer``) the stream survives reconnections:
/// what the peer missed is sent again, nothing is lost or duplicated either
/// way, and sends made while disconnected are kept and sent once connected.
///
/// Callbacks run only on the thread that calls ``dispatch()`` / ``run()``
/// (or in the event loop with ``sluice.aio.run(session)``); the descriptor
/// (``fileno()``) is the same across reconnections. ``role=None`` (the
/// default) delivers every frame to ``on_frame``; with a role, protocol
/// messages go to the Channel-style callbacks (``on_chunk``...).
#[pyclass(extends = Handle, frozen, module = "sluice", name = "Session")]
pub struct Session {
    h: Arc<State>,
    core: CoreSession,
}

/// The endpoints argument: a list of endpoints, or one.
fn endpoints(obj: &Bound<'_, PyAny>) -> PyResult<Vec<sluice_core::net::Endpoint>> {
    match obj.cast::<PyList>() {
        Ok(list) => list.iter().map(|e| super::endpoint_arg(&e)).collect(),
        Err(_) => Ok(vec![super::endpoint_arg(obj)?]),
    }
}

/// Resume options from keywords (None: the defaults).
pub(crate) fn resume_options(max_unacked: Option<usize>, ack_every: Option<u64>, ack_bytes: Option<usize>) -> PyResult<ResumeOptions> {
    let mut r = ResumeOptions::default();
    if let Some(n) = max_unacked {
        r.max_unacked = n;
    }
    if let Some(n) = ack_every {
        if n == 0 {
            return Err(PyValueError::new_err("ack_every must be at least 1"));
        }
        r.ack_every = n;
    }
    if let Some(n) = ack_bytes {
        r.ack_bytes = n;
    }
    Ok(r)
}

handle_class! {
    Session,
    spec { renames: &[("reconnect", "on_reconnect_attempt")], terminate_session: true }
    callbacks {
        /// ``on_connect(endpoint: str, resumed: bool)``: a connection is up
        /// (with resume: the peer answered the hello; ``resumed`` says the
        /// stream continues where it was). Restart subscriptions here.
        on_connect / set_on_connect;
        /// ``on_disconnect(errno)``: the connection was lost (ETIMEDOUT 110
        /// for a silent peer); a reconnection follows.
        on_disconnect / set_on_disconnect;
        /// ``on_reconnect_attempt(attempt, endpoint: str, delay: float)``:
        /// the next attempt (1, 2, ... since the last good connection) is
        /// made to ``endpoint`` after ``delay`` seconds.
        on_reconnect_attempt / set_on_reconnect_attempt;
        /// ``on_handshake(uuid)``: as ``Channel.on_handshake`` (with a role).
        on_handshake / set_on_handshake;
        /// ``on_heartbeat()``: as ``Channel.on_heartbeat`` (with a role).
        on_heartbeat / set_on_heartbeat;
        /// ``on_terminate(session, code, reason)``: as ``Channel.on_terminate``.
        on_terminate / set_on_terminate;
        /// ``on_invoke(session, event)``: as ``Channel.on_invoke``.
        on_invoke / set_on_invoke;
        /// ``on_chunk(session, data)``: as ``Channel.on_chunk``.
        on_chunk / set_on_chunk;
        /// ``on_choke(session)``: as ``Channel.on_choke``.
        on_choke / set_on_choke;
        /// ``on_error(session, category, code, message)``: as ``Channel.on_error``.
        on_error / set_on_error;
        /// ``on_frame(session, type_id, args: list)``: every frame when
        /// ``role`` is None; with a role, frames the protocol drops.
        on_frame / set_on_frame;
        /// ``on_drain()``: a send that raised ``WouldBlock`` may be retried.
        on_drain / set_on_drain;
    }
    methods {
        #[new]
        #[pyo3(signature = (
            endpoints, *, backoff_initial=0.1, backoff_max=10.0, backoff_multiplier=2.0, backoff_jitter=0.2,
            heartbeat_interval=None, liveness_timeout=None, resume=false, max_unacked=None, ack_every=None,
            ack_bytes=None, **options
        ))]
        #[pyo3(text_signature = "(endpoints, *, dialect=1, role=None, profile='compat', backoff_initial=0.1, backoff_max=10.0, backoff_multiplier=2.0, backoff_jitter=0.2, heartbeat_interval=None, liveness_timeout=None, resume=False, max_unacked=None, ack_every=None, ack_bytes=None, **options)")]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            py: Python<'_>,
            endpoints: &Bound<'_, PyAny>,
            backoff_initial: f64,
            backoff_max: f64,
            backoff_multiplier: f64,
            backoff_jitter: f64,
            heartbeat_interval: Option<f64>,
            liveness_timeout: Option<f64>,
            resume: bool,
            max_unacked: Option<usize>,
            ack_every: Option<u64>,
            ack_bytes: Option<usize>,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<PyClassInitializer<Session>> {
            let (pairs, callbacks) = options::split(options)?;
            super::refuse_fixed("Session", &pairs, &["copy_threshold", "batch"])?;
            let config = options::parse("Session", &pairs)?.config(None);
            let cbs = handle::callbacks(&SPEC, callbacks.as_ref())?;
            let eps = self::endpoints(endpoints)?;
            if eps.is_empty() {
                return Err(PyValueError::new_err("a session needs at least one endpoint"));
            }
            let mut opts = SessionOptions::new(eps, config);
            if !(backoff_multiplier.is_finite() && backoff_multiplier >= 1.0) {
                return Err(PyValueError::new_err("backoff_multiplier must be at least 1"));
            }
            if !(0.0..=1.0).contains(&backoff_jitter) {
                return Err(PyValueError::new_err("backoff_jitter must be between 0 and 1"));
            }
            opts.backoff = Backoff {
                initial: seconds(backoff_initial, "backoff_initial")?,
                max: seconds(backoff_max, "backoff_max")?,
                multiplier: backoff_multiplier,
                jitter: backoff_jitter,
            };
            opts.liveness = match (heartbeat_interval, liveness_timeout) {
                (None, None) => None,
                (Some(i), Some(t)) => Some(Liveness { interval: seconds(i, "heartbeat_interval")?, timeout: seconds(t, "liveness_timeout")? }),
                (Some(i), None) => {
                    let interval = seconds(i, "heartbeat_interval")?;
                    Some(Liveness { interval, timeout: interval * 3 })
                }
                (None, Some(t)) => {
                    let timeout = seconds(t, "liveness_timeout")?;
                    Some(Liveness { interval: (timeout / 3).max(Duration::from_millis(1)), timeout })
                }
            };
            if resume {
                opts.resume = Some(resume_options(max_unacked, ack_every, ack_bytes)?);
            }
            let queue = Queue::default();
            let q = queue.clone();
            let core = CoreSession::connect(opts, move |_: &CoreSession, ev: SessionEvent| q.push(ev))
                .map_err(|e| errors::error(py, &format!("cannot start the session: {e}")))?;
            let h = Arc::new(State::new(core.clone(), queue, &SPEC, cbs));
            Ok(PyClassInitializer::from(Handle(h.clone())).add_subclass(Session { h, core }))
        }

        /// Queues a chunk on ``session``. Without resume, raises
        /// ``sluice.Closed`` while no connection is up; with resume, the
        /// chunk is kept and sent once one is (``sluice.WouldBlock`` while
        /// ``max_unacked`` bytes wait for the peer's acknowledgement).
        fn send_chunk(&self, py: Python<'_>, session: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
            sends::chunk(py, &self.core, session, data)
        }

        /// Ends this side of ``session`` (v0 ``choke``, v1 ``close``).
        fn send_choke(&self, py: Python<'_>, session: u64) -> PyResult<()> {
            sends::choke(py, &self.core, session)
        }

        /// Fails ``session`` (v1 category 42 when None).
        #[pyo3(signature = (session, code, message=None, category=None))]
        fn send_error(&self, py: Python<'_>, session: u64, code: i64, message: Option<&Bound<'_, PyAny>>, category: Option<i64>) -> PyResult<()> {
            sends::error(py, &self.core, session, code, message, category)
        }

        /// Opens a session for ``event`` and returns its id
        /// (``next_session()`` when ``session`` is None).
        #[pyo3(signature = (event, session=None))]
        fn send_invoke(&self, py: Python<'_>, event: &Bound<'_, PyAny>, session: Option<u64>) -> PyResult<u64> {
            sends::invoke(py, &self.core, session.unwrap_or_else(|| self.core.next_session()), event)
        }

        /// Queues a generic frame: ``args`` is a list or tuple of values,
        /// encoded as msgpack.
        #[pyo3(signature = (session, type_id, args=None))]
        fn send_frame(&self, py: Python<'_>, session: u64, type_id: u64, args: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            let cfg = &self.core.options().channel;
            sends::frame(py, &self.core, (cfg.dialect, cfg.profile), session, type_id, args)
        }

        /// The id for a new session opened by this side: one above every id
        /// sent or received, across connections.
        fn next_session(&self) -> u64 {
            self.core.next_session()
        }

        /// Cuts the current connection as if it had failed with ``errno``
        /// (ECONNRESET 104 by default): the session reconnects (and
        /// resumes) as after any loss.
        #[pyo3(signature = (errno=104))]
        fn disconnect(&self, errno: i32) {
            self.core.disconnect(errno);
        }

        /// Stops for good: no more reconnections, the connection is closed
        /// gracefully, no callback runs afterwards and ``done`` becomes
        /// true (``close()`` does the same). Idempotent; called by ``with``
        /// and when the object is garbage-collected.
        fn stop(&self) {
            self.h.close();
        }

        /// Whether a connection is up and usable now.
        #[getter]
        fn connected(&self) -> bool {
            self.core.is_connected()
        }

        /// With resume: frames delivered so far (0 without resume).
        #[getter]
        fn received(&self) -> u64 {
            self.core.received()
        }

        /// The endpoints, in the order they are tried.
        #[getter]
        fn endpoints(&self) -> Vec<String> {
            self.core.options().endpoints.iter().map(ToString::to_string).collect()
        }

        /// The dialect: 0 or 1.
        #[getter]
        fn dialect(&self) -> u8 {
            match self.core.options().channel.dialect {
                Dialect::V0 => 0,
                Dialect::V1 => 1,
            }
        }

        /// Whether the stream resumes across reconnections.
        #[getter]
        fn resume(&self) -> bool {
            self.core.options().resume.is_some()
        }

        fn __repr__(&self) -> String {
            let state = if self.h.is_done() {
                "stopped"
            } else if self.core.is_connected() {
                "connected"
            } else {
                "connecting"
            };
            format!("<sluice.Session {} {}>", self.endpoints().join(","), state)
        }
    }
}
