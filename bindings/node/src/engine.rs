//! `listenEngine()` → [`Engine`]: the runtime side of the engine protocol;
//! its workers are [`EngineWorker`]s.

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::roles::{Engine as CoreEngine, EngineEvent, EngineOptions, WorkerRef};
use sluice_core::wire::{Dialect, Message, Role};

use crate::js;
use crate::options::{self, endpoint_string};
use crate::port::{self, Port};
use crate::records::K_ENGINE;
use crate::sends::send_methods;

/// The keys of `EngineListenOptions` (read by `listenEngine()` itself).
const ENGINE_KEYS: &[&str] = &["handshakeTimeout", "heartbeatTimeout", "terminateTimeout", "uuids"];

/// Options of `listenEngine()` (together with the `ChannelOptions` of the
/// workers' channels; the dialect defaults to `'v1'`). Times are in
/// milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct EngineListenOptions {
    /// Cut a worker whose handshake has not come this long after it
    /// connected. Default 5000.
    pub handshake_timeout: Option<f64>,
    /// Cut a worker that has sent nothing for this long (`ETIMEDOUT`).
    /// Default 30000.
    pub heartbeat_timeout: Option<f64>,
    /// After `worker.terminate()`, cut a worker that has not closed within
    /// this long. Default 10000.
    pub terminate_timeout: Option<f64>,
    /// Accepted uuids; others are disconnected (`'rejected'`). Default: any.
    pub uuids: Option<Vec<String>>,
}

/// The runtime side of the engine protocol, made by `listenEngine()`: it
/// accepts workers, checks their uuids, answers heartbeats and cuts silent
/// workers. It is an `EventEmitter`; each worker is an `EngineWorker`
/// (the same object in every event about it):
///
/// * `'handshake' (worker)` — a worker with an accepted uuid: invoke it.
/// * `'rejected' (uuid)` — a handshake with an unknown uuid (disconnected).
/// * `'heartbeat' (worker)` — a heartbeat (already answered).
/// * `'chunk' (worker, sid, data: Buffer)` — reply data.
/// * `'choke' (worker, sid)` — the worker's direction of a session ended.
/// * `'sessionError' (worker, sid, { category, code, message })`.
/// * `'terminate' (worker, code, reason)` — the worker sent terminate.
/// * `'drain' (worker)` — a send refused with `EAGAIN` may be retried.
/// * `'gone' (worker, err)` — its connection ended (the last event about
///   it): `err.code` `'ESHUTDOWN'` when it closed, `'ETIMEDOUT'` when cut
///   for silence, … (also for workers that never hand-shook: `uuid` null).
/// * `'close' ()` — after `close()`; nothing follows.
///
/// An engine never emits `'error'`. While open it keeps Node running.
#[napi]
pub struct Engine {
    core: CoreEngine,
    port: Arc<Port>,
}

#[napi]
impl Engine {
    /// Where it listens: `'host:port'` (with the actual port) or the path.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.local())
    }

    /// The workers that have hand-shaken and not gone, oldest first (those
    /// already announced by an event).
    #[napi(ts_return_type = "EngineWorker[]")]
    pub fn workers(&self, env: Env) -> Result<Vec<Unknown<'_>>> {
        Ok(self.core.workers().iter().filter_map(|w| self.port.object(env.raw(), w.id())).collect())
    }

    /// Stops listening and closes every worker connection; only `'close'`
    /// follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.end_with(env, || self.core.close())
    }
}

/// A worker connected to an `Engine` (from its events). Sessions are
/// numbers (BigInt above 2^53 − 1); sends throw as `Worker.write` does.
#[napi]
pub struct EngineWorker {
    pub(crate) w: WorkerRef,
}

#[napi]
impl EngineWorker {
    /// A number unique to this connection within the process.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.w.id() as f64
    }

    /// The uuid of its handshake (`null` before it).
    #[napi(getter)]
    pub fn uuid(&self) -> Option<String> {
        self.w.uuid()
    }

    /// Sessions open in at least one direction.
    #[napi(getter)]
    pub fn open_sessions(&self) -> u32 {
        self.w.open_sessions() as u32
    }

    /// Opens a session for `event` and returns its id; send request chunks
    /// with `write`, end them with `end`. Throws `ERR_CHANNEL_CLOSED` before
    /// the handshake or after the worker is gone.
    #[napi(ts_return_type = "number | bigint")]
    pub fn invoke<'a>(&self, env: &'a Env, event: String) -> Result<Unknown<'a>> {
        let s = self.w.invoke(&event).map_err(|err| js::refused(env.raw(), err))?;
        Ok(js::id_value(env, s.session()))
    }

    /// Sends `terminate(code, reason)` (default 1, `''`); the worker should
    /// answer with its own (`'terminate'`) and close (`'gone'`); after the
    /// terminate timeout it is cut (`ETIMEDOUT`).
    #[napi(ts_args_type = "code?: number, reason?: string")]
    pub fn terminate(&self, env: Env, code: Option<Unknown<'_>>, reason: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let c = js::opt_int(e, code, "code")?.unwrap_or(1);
        let r = js::opt_string(e, reason, "reason")?.unwrap_or_default();
        self.w.terminate(c, &r).map_err(|err| js::refused(e, err))
    }

    /// Disconnects the worker at once; `'gone'` follows with this errno
    /// (a Linux number, default 104 `ECONNRESET`).
    #[napi(ts_args_type = "errno?: number")]
    pub fn kill(&self, env: Env, errno: Option<Unknown<'_>>) -> Result<()> {
        self.w.kill(js::errno_arg(env.raw(), errno)?);
        Ok(())
    }
}

/// Listens for workers on `endpoint` (a Unix socket path, as the runtime
/// does, or `'host:port'`) and returns the `Engine`. Throws an Error with
/// the errno's `code` (`'EADDRINUSE'`, …) if it cannot.
#[napi(
    ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: EngineListenOptions & ChannelOptions"
)]
pub fn listen_engine<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Engine>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let eo: EngineListenOptions = js::read_object(e, raw)?;
    let co = options::read_options(e, raw, ENGINE_KEYS)?;
    let r = co.resolve_as(Dialect::V1, Role::Engine);
    let mut o = EngineOptions::new(ep, r.config.dialect);
    js::set_millis(e, &mut o.handshake_timeout, eo.handshake_timeout, "handshakeTimeout")?;
    js::set_millis(e, &mut o.heartbeat_timeout, eo.heartbeat_timeout, "heartbeatTimeout")?;
    js::set_millis(e, &mut o.terminate_timeout, eo.terminate_timeout, "terminateTimeout")?;
    o.uuids = eo.uuids.map(|v| v.into_iter().collect());
    o.channel = r.config;
    let limits = (r.zero_copy, o.channel.max_pending);
    port::start(env, K_ENGINE, limits, |p| CoreEngine::bind(o, p.handler::<CoreEngine, EngineEvent>()), |core, port| Engine { core, port })
}

send_methods!(EngineWorker.w, write, end, fail, "sid: number | bigint, code: number, message?: string");
