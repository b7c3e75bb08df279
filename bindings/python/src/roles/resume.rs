//! `sluice.ResumeServer` and `sluice.Peer`: the server side of resumable
//! sessions (the core's `roles::ResumeServer`, on the handle base).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use sluice_core::roles::{Peer as CorePeer, ResumeEvent, ResumeServer as CoreServer, ResumeServerOptions};
use sluice_core::wire::{Dialect, Profile};

use super::seconds;
use crate::handle::{self, handle_class, Handle, Queue, State};
use crate::{options, sends};

/// The server of resumable ``sluice.Session`` clients: each client is a
/// ``Peer`` whose stream outlives its connections. When a client's
/// connection drops, its peer waits ``peer_timeout`` seconds for it to come
/// back; frames either side missed are sent again, none is lost or
/// delivered twice.
///
/// ``ResumeServer(endpoint, dialect=1, role=None, ...)``: ``endpoint`` is a
/// Unix socket path or ``(host, port)`` (port 0 picks one). Callbacks run
/// only on the thread that calls ``dispatch()`` / ``run()`` (or in the
/// event loop with ``sluice.aio.run(server)``). The message callbacks are
/// the Channel's with the peer first: ``on_chunk(peer, session, data)``,
/// ``on_frame(peer, session, type_id, args)``...
#[pyclass(extends = Handle, frozen, module = "sluice", name = "ResumeServer")]
pub struct ResumeServer {
    h: Arc<State>,
    core: CoreServer,
}

impl ResumeServer {
    fn local(&self) -> sluice_core::net::Endpoint {
        self.core.local().clone()
    }
}

handle_class! {
    ResumeServer,
    spec { renames: &[("connect", "on_peer_connect"), ("disconnect", "on_peer_disconnect"), ("gone", "on_peer_gone")], terminate_session: true }
    listening: local;
    callbacks {
        /// ``on_peer_connect(peer: Peer, resumed: bool)``: a client connected;
        /// ``resumed`` when it was known (its stream goes on), otherwise a
        /// new peer.
        on_peer_connect / set_on_peer_connect;
        /// ``on_peer_disconnect(peer, errno)``: a peer's connection ended;
        /// its stream waits ``peer_timeout`` seconds for it to come back.
        on_peer_disconnect / set_on_peer_disconnect;
        /// ``on_peer_gone(peer)``: the peer did not come back in time:
        /// forgotten (its last event).
        on_peer_gone / set_on_peer_gone;
        /// ``on_handshake(peer, uuid)`` (with a role).
        on_handshake / set_on_handshake;
        /// ``on_heartbeat(peer)`` (with a role).
        on_heartbeat / set_on_heartbeat;
        /// ``on_terminate(peer, session, code, reason)`` (with a role).
        on_terminate / set_on_terminate;
        /// ``on_invoke(peer, session, event)`` (with a role).
        on_invoke / set_on_invoke;
        /// ``on_chunk(peer, session, data)`` (with a role).
        on_chunk / set_on_chunk;
        /// ``on_choke(peer, session)`` (with a role).
        on_choke / set_on_choke;
        /// ``on_error(peer, session, category, code, message)`` (with a role).
        on_error / set_on_error;
        /// ``on_frame(peer, session, type_id, args: list)``: every frame when
        /// ``role`` is None; with a role, frames the protocol drops.
        on_frame / set_on_frame;
        /// ``on_drain(peer)``: the peer's replay buffer has room again after
        /// a send raised ``WouldBlock``.
        on_drain / set_on_drain;
    }
    methods {
        #[new]
        #[pyo3(signature = (
            endpoint, dialect=None, *, peer_timeout=60.0, hello_timeout=10.0, max_unacked=None, ack_every=None,
            ack_bytes=None, **options
        ))]
        #[pyo3(text_signature = "(endpoint, dialect=1, *, role=None, profile='compat', peer_timeout=60.0, hello_timeout=10.0, max_unacked=None, ack_every=None, ack_bytes=None, **options)")]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            endpoint: &Bound<'_, PyAny>,
            dialect: Option<Bound<'_, PyAny>>,
            peer_timeout: f64,
            hello_timeout: f64,
            max_unacked: Option<usize>,
            ack_every: Option<u64>,
            ack_bytes: Option<usize>,
            options: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<PyClassInitializer<ResumeServer>> {
            let (mut pairs, callbacks) = options::split(options)?;
            super::refuse_fixed("ResumeServer", &pairs, &["copy_threshold", "batch"])?;
            if let Some(d) = dialect {
                pairs.insert(0, ("dialect".to_string(), d));
            }
            let config = options::parse("ResumeServer", &pairs)?.config(None);
            let cbs = handle::callbacks(&SPEC, callbacks.as_ref())?;
            let endpoint = super::endpoint_arg(endpoint)?;
            let (d, pr) = (config.dialect, config.profile);
            let mut opts = ResumeServerOptions::new(endpoint, config);
            opts.peer_timeout = seconds(peer_timeout, "peer_timeout")?;
            opts.hello_timeout = seconds(hello_timeout, "hello_timeout")?;
            opts.resume = super::session::resume_options(max_unacked, ack_every, ack_bytes)?;
            let queue = Queue::default();
            let q = queue.clone();
            let core = CoreServer::bind(opts, move |_: &CoreServer, ev: ResumeEvent| q.push(ev))?;
            let mut state = State::new(core.clone(), queue, &SPEC, cbs);
            state.wire = (d, pr);
            let h = Arc::new(state);
            Ok(PyClassInitializer::from(Handle(h.clone())).add_subclass(ResumeServer { h, core }))
        }

        /// The peers it remembers (connected or waiting to come back).
        #[getter]
        fn peers(&self) -> Vec<Peer> {
            self.core.peers().into_iter().map(|p| Peer::new(p, self.h.wire)).collect()
        }

        fn __repr__(&self) -> String {
            format!("<sluice.ResumeServer {}{}>", self.core.local(), if self.h.is_done() { " closed" } else { "" })
        }
    }
}

/// A client of a ``ResumeServer``, across its connections. Sends are kept
/// until the client acknowledges them and sent again after a reconnection
/// if needed; they raise ``sluice.WouldBlock`` while ``max_unacked`` bytes
/// wait (``on_drain(peer)`` follows) and ``sluice.Closed`` once the peer is
/// gone. Objects for the same peer compare equal and hash alike.
#[pyclass(frozen, module = "sluice", name = "Peer")]
pub struct Peer {
    core: CorePeer,
    wire: (Dialect, Profile),
}

impl Peer {
    pub(crate) fn new(core: CorePeer, wire: (Dialect, Profile)) -> Peer {
        Peer { core, wire }
    }
}

#[pymethods]
impl Peer {
    /// The 16-byte token the client chose (it names the peer).
    #[getter]
    fn token<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.core.token())
    }

    /// Frames received from the peer so far, across connections.
    #[getter]
    fn received(&self) -> u64 {
        self.core.received()
    }

    /// Whether a connection is attached now.
    #[getter]
    fn connected(&self) -> bool {
        self.core.is_connected()
    }

    /// Queues a chunk on ``session``.
    fn send_chunk(&self, py: Python<'_>, session: u64, data: &Bound<'_, PyAny>) -> PyResult<()> {
        sends::chunk(py, &self.core, session, data)
    }

    /// Ends this side of ``session``.
    fn send_choke(&self, py: Python<'_>, session: u64) -> PyResult<()> {
        sends::choke(py, &self.core, session)
    }

    /// Fails ``session`` (v1 category 42 when None).
    #[pyo3(signature = (session, code, message=None, category=None))]
    fn send_error(
        &self,
        py: Python<'_>,
        session: u64,
        code: i64,
        message: Option<&Bound<'_, PyAny>>,
        category: Option<i64>,
    ) -> PyResult<()> {
        sends::error(py, &self.core, session, code, message, category)
    }

    /// Queues a generic frame: ``args`` is a list or tuple of values,
    /// encoded as msgpack.
    #[pyo3(signature = (session, type_id, args=None))]
    fn send_frame(&self, py: Python<'_>, session: u64, type_id: u64, args: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        sends::frame(py, &self.core, self.wire, session, type_id, args)
    }

    /// Cuts the current connection (the client reconnects and resumes);
    /// ``on_peer_disconnect(peer, errno)`` follows (ECONNRESET 104 by
    /// default).
    #[pyo3(signature = (errno=104))]
    fn disconnect(&self, errno: i32) {
        self.core.disconnect(errno);
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Peer>().is_ok_and(|o| o.get().core == self.core)
    }

    fn __hash__(&self) -> u64 {
        let t = self.core.token();
        let mut b = [0u8; 8];
        let n = t.len().min(8);
        b[..n].copy_from_slice(&t[..n]);
        u64::from_le_bytes(b) >> 1
    }

    fn __repr__(&self) -> String {
        let hex: String = self.core.token().iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("<sluice.Peer {hex}{}>", if self.core.is_connected() { " connected" } else { "" })
    }
}
