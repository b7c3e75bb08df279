//! `openSession()` → [`Session`]: a client connection that stays up
//! (reconnection, failover, liveness, resume).

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::roles::{Backoff, Liveness, ResumeOptions, Session as CoreSession, SessionEvent, SessionOptions};
use sluice_core::wire::{Dialect, Message, Role};

use crate::js;
use crate::options;
use crate::port::{self, Port};
use crate::records::K_SESSION;
use crate::sends::send_methods;

/// Reconnection delays (milliseconds): `initial × multiplier^attempt`, at
/// most `max`, each spread by ± `jitter` (a fraction, 0 to 1).
#[napi(object)]
#[derive(Default, Clone)]
pub struct BackoffOptions {
    /// The first delay. Default 100.
    pub initial: Option<f64>,
    /// The longest delay before jitter. Default 10000.
    pub max: Option<f64>,
    /// Growth per failed attempt. Default 2.
    pub multiplier: Option<f64>,
    /// Spread. Default 0.2.
    pub jitter: Option<f64>,
}

/// Heartbeats and the silence after which the peer counts as gone
/// (milliseconds).
#[napi(object)]
#[derive(Clone)]
pub struct LivenessOptions {
    /// Send a heartbeat (or, with resume, a ping) this often.
    pub interval: f64,
    /// Cut the connection (`ETIMEDOUT`) and reconnect after this long
    /// without anything received.
    pub timeout: f64,
}

/// Bounds of the replay buffer and how often acknowledgements go out.
#[napi(object)]
#[derive(Default, Clone)]
pub struct ResumeTuning {
    /// Sends are refused (`EAGAIN`) while this many bytes wait for the
    /// peer's acknowledgement. Default 8 MiB.
    pub max_unacked: Option<f64>,
    /// Acknowledge after this many frames delivered... Default 256.
    pub ack_every: Option<f64>,
    /// ...or this many bytes. Default 1 MiB.
    pub ack_bytes: Option<f64>,
}

/// The keys of `SessionOpenOptions` (read by `openSession()` itself).
const SESSION_KEYS: &[&str] = &["backoff", "liveness", "resume"];

/// Options of `openSession()` (together with the `ChannelOptions` of its
/// connections: dialect, role, limits).
#[napi(object)]
#[derive(Default)]
pub struct SessionOpenOptions {
    /// Delays between attempts.
    pub backoff: Option<BackoffOptions>,
    /// Heartbeats and a liveness timeout; default: rely on the socket.
    pub liveness: Option<LivenessOptions>,
    /// Resume after a cut without loss or duplication (the peer must be a
    /// `ResumeServer`): `true` for the defaults, or the tuning. Default
    /// off: frames in flight when a connection drops are lost.
    #[napi(ts_type = "boolean | ResumeTuning")]
    pub resume: Option<Either<bool, ResumeTuning>>,
}

pub(crate) fn resume_tuning(env: sys::napi_env, t: &ResumeTuning) -> Result<ResumeOptions> {
    let mut r = ResumeOptions::default();
    if let Some(n) = js::count(env, t.max_unacked, "resume.maxUnacked")? {
        r.max_unacked = n;
    }
    if let Some(n) = js::count(env, t.ack_every, "resume.ackEvery")? {
        r.ack_every = n as u64;
    }
    if let Some(n) = js::count(env, t.ack_bytes, "resume.ackBytes")? {
        r.ack_bytes = n;
    }
    Ok(r)
}

/// A client connection that stays up, made by `openSession()`: it
/// reconnects with backoff, fails over between endpoints, optionally
/// checks liveness and resumes without loss. It is an `EventEmitter`:
///
/// * `'connect' (endpoint, resumed)` — a connection is up (`resumed`: the
///   stream goes on where it was).
/// * `'disconnected' (err)` — the connection was lost (`err.code` the
///   errno name, `'ETIMEDOUT'` for a silent peer); a reconnection follows.
/// * `'reconnectAttempt' (attempt, endpoint, delayMs)` — the next attempt
///   (1, 2, …) is made after `delayMs`.
/// * the peer's messages as on a `Connection`: `'invoke' (sid, event)`,
///   `'chunk' (sid, data)`, `'choke' (sid)`, `'sessionError' (sid, {…})`,
///   `'heartbeat' ()`, `'terminate' (code, reason)`, `'handshake' (uuid)`,
///   `'frame' (sid, type, args: Buffer)`.
/// * `'drain' ()` — a send refused with `EAGAIN` may be retried.
/// * `'close' ()` — after `stop()`; nothing follows.
///
/// Sends without resume throw `ERR_CHANNEL_CLOSED` while no connection is
/// up; with resume they are kept and sent (again) until the peer has them.
/// A session never emits `'error'`. Until `stop()` it keeps Node running.
#[napi]
pub struct Session {
    core: CoreSession,
    port: Arc<Port>,
}

#[napi]
impl Session {
    /// Whether a connection is up and usable now.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.core.is_connected()
    }

    /// Resume: frames delivered so far (0 without resume).
    #[napi(getter)]
    pub fn received(&self) -> f64 {
        self.core.received() as f64
    }

    /// The id for a new session this side opens: one above every id sent
    /// or received, across connections.
    #[napi(ts_return_type = "number | bigint")]
    pub fn next_session<'a>(&self, env: &'a Env) -> Unknown<'a> {
        js::id_value(env, self.core.next_session())
    }

    /// Cuts the current connection as if it had failed with `errno` (a
    /// Linux number, default 104 `ECONNRESET`); the session reconnects (and
    /// resumes) as after any loss.
    #[napi(ts_args_type = "errno?: number")]
    pub fn disconnect(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.core.disconnect(js::errno_arg(env.raw(), errno)?);
        Ok(())
    }

    /// Stops for good: no more reconnections, the connection is closed
    /// gracefully; only `'close'` follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.end_with(env, || self.core.stop())
    }
}

/// Opens a `Session` to `endpoints` (one endpoint or an array, tried in
/// order) and returns it at once; listen for `'connect'`. Options default
/// to dialect `'v1'` and role `'worker'` (typed messages), like
/// `connect()`.
#[napi(
    ts_args_type = "endpoints: string | { host?: string, port: number } | { path: string } | Array<string | { host?: string, port: number } | { path: string }>, options?: SessionOpenOptions & ChannelOptions"
)]
pub fn open_session<'a>(env: &'a Env, endpoints: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Session>> {
    let e = env.raw();
    let empty = || js::throw(e, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", "a session needs at least one endpoint");
    let eps = options::read_endpoints(e, endpoints.raw(), empty)?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let so: SessionOpenOptions = js::read_object(e, raw)?;
    let co = options::read_options(e, raw, SESSION_KEYS)?;
    let r = co.resolve(Dialect::V1, Some(Role::Worker));
    let max_pending = r.config.max_pending;
    let mut o = SessionOptions::new(eps, r.config);
    if let Some(b) = &so.backoff {
        let mut k = Backoff::default();
        js::set_millis(e, &mut k.initial, b.initial, "backoff.initial")?;
        js::set_millis(e, &mut k.max, b.max, "backoff.max")?;
        if let Some(m) = b.multiplier {
            k.multiplier = m;
        }
        if let Some(j) = b.jitter {
            k.jitter = j;
        }
        o.backoff = k;
    }
    if let Some(l) = &so.liveness {
        let interval = js::millis(e, Some(l.interval), "liveness.interval")?.unwrap_or_default();
        let timeout = js::millis(e, Some(l.timeout), "liveness.timeout")?.unwrap_or_default();
        o.liveness = Some(Liveness { interval, timeout });
    }
    match &so.resume {
        Some(Either::A(b)) => o.resume = b.then(ResumeOptions::default),
        Some(Either::B(t)) => o.resume = Some(resume_tuning(e, t)?),
        None => {}
    }
    let start = |p: &Arc<Port>| CoreSession::connect(o, p.handler::<CoreSession, SessionEvent>());
    port::start(env, K_SESSION, (r.zero_copy, max_pending), start, |core, port| Session { core, port })
}

send_methods! { Session.core, send_chunk, send_choke, send_error,
"sid: number | bigint, code: number, message?: string, category?: number", send_invoke, send_frame }
