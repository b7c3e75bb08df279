//! `listenResume()` → [`ResumeServer`]: the server side of resumable
//! sessions; its clients are [`ResumePeer`]s.

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::roles::{Peer, ResumeEvent, ResumeServer as CoreResumeServer, ResumeServerOptions};
use sluice_core::wire::{Dialect, Message, Role};

use crate::js;
use crate::options::{self, endpoint_string};
use crate::port::{self, Port};
use crate::records::K_RESUME;
use crate::sends::send_methods;
use crate::session::ResumeTuning;

/// The keys of `ResumeListenOptions` (read by `listenResume()` itself).
const RESUME_KEYS: &[&str] = &["resume", "peerTimeout", "helloTimeout"];

/// Options of `listenResume()` (together with the `ChannelOptions` of the
/// accepted connections). Times are in milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct ResumeListenOptions {
    /// Replay buffer bounds and acknowledgement rate.
    pub resume: Option<ResumeTuning>,
    /// Forget a peer whose connection has been gone this long
    /// (`'peerGone'`). Default 60000.
    pub peer_timeout: Option<f64>,
    /// Cut connections whose first frame is not a hello within this long.
    /// Default 10000.
    pub hello_timeout: Option<f64>,
}

/// The server side of resumable sessions, made by `listenResume()`. Each
/// client is a `ResumePeer` (the same object across its connections and in
/// every event about it). It is an `EventEmitter`:
///
/// * `'peerConnected' (peer, resumed)` — a peer connected (`resumed`: a
///   known one, its stream goes on).
/// * `'peerDisconnected' (peer, err)` — its connection ended; its stream
///   waits for it until `peerTimeout`.
/// * `'peerGone' (peer)` — it did not come back in time: forgotten.
/// * the peer's messages, the peer first: `'invoke' (peer, sid, event)`,
///   `'chunk' (peer, sid, data)`, `'choke' (peer, sid)`, `'sessionError'
///   (peer, sid, {…})`, `'heartbeat' (peer)`, `'terminate' (peer, code,
///   reason)`, `'handshake' (peer, uuid)`, `'frame' (peer, sid, type,
///   args)`.
/// * `'drain' (peer)` — its replay buffer has room again.
/// * `'close' ()` — after `close()`; nothing follows.
///
/// It never emits `'error'`. While open it keeps Node running.
#[napi]
pub struct ResumeServer {
    core: CoreResumeServer,
    port: Arc<Port>,
}

#[napi]
impl ResumeServer {
    /// Where it listens.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.local())
    }

    /// The peers it remembers (those already announced by an event).
    #[napi(ts_return_type = "ResumePeer[]")]
    pub fn peers(&self, env: Env) -> Result<Vec<Unknown<'_>>> {
        let ids: Vec<u64> = self.core.peers().iter().filter_map(|p| self.port.peer_id(p.token())).collect();
        Ok(ids.into_iter().filter_map(|id| self.port.object(env.raw(), id)).collect())
    }

    /// Stops listening, closes every connection and forgets every peer;
    /// only `'close'` follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.end_with(env, || self.core.close())
    }
}

/// A client of a `ResumeServer`, across its connections. Sends are kept
/// until the peer acknowledges them and sent again after a reconnection;
/// they throw `EAGAIN` while the replay buffer is full (`'drain'` follows)
/// and `ERR_CHANNEL_CLOSED` once the peer is gone.
#[napi]
pub struct ResumePeer {
    pub(crate) p: Peer,
}

#[napi]
impl ResumePeer {
    /// The token the client chose.
    #[napi(getter)]
    pub fn token(&self) -> Buffer {
        Buffer::from(self.p.token().to_vec())
    }

    /// Frames received from the peer so far (across connections).
    #[napi(getter)]
    pub fn received(&self) -> f64 {
        self.p.received() as f64
    }

    /// Whether a connection is attached now.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.p.is_connected()
    }

    /// Cuts the current connection (the peer reconnects and resumes);
    /// `'peerDisconnected'` follows with `errno` (default 104
    /// `ECONNRESET`).
    #[napi(ts_args_type = "errno?: number")]
    pub fn disconnect(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.p.disconnect(js::errno_arg(env.raw(), errno)?);
        Ok(())
    }
}

/// Listens on `endpoint` for resumable `Session`s and returns the
/// `ResumeServer`. Options default to dialect `'v1'` and role `'worker'`
/// (typed messages), like the session's. Throws an Error with the errno's
/// `code` if it cannot listen.
#[napi(
    ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: ResumeListenOptions & ChannelOptions"
)]
pub fn listen_resume<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, ResumeServer>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let ro: ResumeListenOptions = js::read_object(e, raw)?;
    let co = options::read_options(e, raw, RESUME_KEYS)?;
    let r = co.resolve(Dialect::V1, Some(Role::Worker));
    let max_pending = r.config.max_pending;
    let mut o = ResumeServerOptions::new(ep, r.config);
    if let Some(t) = &ro.resume {
        o.resume = crate::session::resume_tuning(e, t)?;
    }
    js::set_millis(e, &mut o.peer_timeout, ro.peer_timeout, "peerTimeout")?;
    js::set_millis(e, &mut o.hello_timeout, ro.hello_timeout, "helloTimeout")?;
    let start = |p: &Arc<Port>| CoreResumeServer::bind(o, p.handler::<CoreResumeServer, ResumeEvent>());
    port::start(env, K_RESUME, (r.zero_copy, max_pending), start, |core, port| ResumeServer { core, port })
}

send_methods! { ResumePeer.p, send_chunk, send_choke, send_error,
"sid: number | bigint, code: number, message?: string, category?: number", send_invoke, send_frame }
