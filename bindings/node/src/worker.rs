//! `startWorker()` → [`Worker`]: the app side of the engine protocol.

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::host::IntoEvent;
use sluice_core::net::Endpoint;
use sluice_core::roles::{Worker as CoreWorker, WorkerEvent, WorkerOptions};
use sluice_core::wire::{Dialect, Message, Role};

use crate::js;
use crate::options::{self, endpoint_string};
use crate::port::{self, Port};
use crate::records::K_WORKER;
use crate::sends::send_methods;

/// The keys of `WorkerStartOptions`: read by `startWorker()` itself, not by
/// the channel option table.
const WORKER_KEYS: &[&str] = &["argv", "uuid", "endpoint", "app", "heartbeatInterval", "disownTimeout"];

/// Options of `startWorker()` (together with the `ChannelOptions` limits:
/// `maxPending`, `zeroCopyThreshold`, `highWaterMark`, …). Times are in
/// milliseconds.
#[napi(object)]
#[derive(Default)]
pub struct WorkerStartOptions {
    /// The runtime's arguments: `--app NAME --uuid UUID --endpoint PATH
    /// [--protocol 1] [--locator host:port,…]` (absent `--protocol` is v0).
    /// Default: `process.argv.slice(2)` unless `uuid` and `endpoint` are
    /// given.
    pub argv: Option<Vec<String>>,
    /// The uuid to hand-shake with (instead of `argv`).
    pub uuid: Option<String>,
    /// The engine's socket (instead of `argv`): a path or `host:port`.
    pub endpoint: Option<String>,
    /// The app's name (instead of `argv`).
    pub app: Option<String>,
    /// How often to send a heartbeat. Default 5000.
    pub heartbeat_interval: Option<f64>,
    /// Disown (close with `ETIMEDOUT`) after this long without a control
    /// frame from the engine. Default 30000.
    pub disown_timeout: Option<f64>,
}

/// The app side of the engine protocol, made by `startWorker()`. It
/// connects to the engine, sends the handshake and heartbeats, disowns
/// itself when the engine falls silent, and answers the engine's sessions.
/// It is an `EventEmitter`; events, on the JavaScript thread in wire order:
///
/// * `'connect' ()` — connected; the handshake and first heartbeat are sent.
/// * `'invoke' (sid, event: string)` — the engine opened a session.
/// * `'chunk' (sid, data: Buffer)` — request data.
/// * `'choke' (sid)` — the engine's direction of the session ended (v0
///   `choke`, v1 `close`).
/// * `'sessionError' (sid, { category, code, message })` — the engine
///   failed the session (`category` is `undefined` in v0).
/// * `'heartbeat' ()` — the engine answered a heartbeat.
/// * `'terminate' (code, reason)` — the engine asks the worker to stop:
///   finish or fail the open sessions, then call `terminate()`.
/// * `'disown' ()` — the engine said nothing for `disownTimeout`: the
///   connection is closed; `'disconnected'` (`ETIMEDOUT`) follows.
/// * `'drain' ()` — a send refused with `EAGAIN` may be retried.
/// * `'disconnected' (err, sessions)` — the connection ended: `err.code` is
///   the errno name (`'ESHUTDOWN'` when the engine closed it, `'ETIMEDOUT'`
///   after a disown, `'ECONNREFUSED'`, …), `sessions` the ids still open
///   (failed).
/// * `'close' ()` — the worker is finished (after `'disconnected'`, or
///   once `terminate()`/`close()` was called); nothing follows.
///
/// A worker never emits `'error'`. While it is open it keeps Node running.
#[napi]
pub struct Worker {
    core: CoreWorker,
    port: Arc<Port>,
}

#[napi]
impl Worker {
    /// The uuid sent in the handshake.
    #[napi(getter)]
    pub fn uuid(&self) -> String {
        self.core.options().uuid.clone()
    }

    /// The app's name (`--app`; empty if none was given).
    #[napi(getter)]
    pub fn app(&self) -> String {
        self.core.options().app.clone()
    }

    /// The engine's endpoint.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(&self.core.options().endpoint)
    }

    /// The Locator endpoints (`--locator`).
    #[napi(getter)]
    pub fn locator(&self) -> Vec<String> {
        self.core.options().locator.clone()
    }

    /// The dialect: `'v0'` or `'v1'`.
    #[napi(getter, ts_return_type = "'v0' | 'v1'")]
    pub fn dialect(&self) -> &'static str {
        js::dialect_name(self.core.dialect())
    }

    /// Sessions open in at least one direction.
    #[napi(getter)]
    pub fn open_sessions(&self) -> u32 {
        self.core.open_sessions() as u32
    }

    /// Sends `terminate(code, reason)` to the engine (v0 codes: 1 normal,
    /// the default; 2 abnormal) and closes the connection once what is
    /// queued is written. Only `'close'` follows; the promise resolves then.
    #[napi(ts_args_type = "code?: number, reason?: string", ts_return_type = "Promise<void>")]
    pub fn terminate<'a>(&self, env: &'a Env, code: Option<Unknown<'_>>, reason: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let e = env.raw();
        let c = js::opt_int(e, code, "code")?.unwrap_or(1);
        let r = js::opt_string(e, reason, "reason")?.unwrap_or_default();
        Ok(self.port.end_with(env, || self.core.terminate(c, &r)))
    }

    /// Closes the connection gracefully without a terminate; only `'close'`
    /// follows; the promise resolves then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.end_with(env, || self.core.close())
    }
}

/// Starts a worker (see `Worker`): reads the runtime's arguments from
/// `options.argv` (default `process.argv.slice(2)`) unless `uuid` and
/// `endpoint` are given, and connects at once; listen for `'connect'`.
/// Throws a TypeError (code `ERR_INVALID_ARG_VALUE`) for unusable
/// arguments.
#[napi(ts_args_type = "options?: WorkerStartOptions & ChannelOptions")]
pub fn start_worker<'a>(env: &'a Env, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Worker>> {
    let e = env.raw();
    let raw = options.map_or(ptr::null_mut(), |v| v.raw());
    let wo: WorkerStartOptions = js::read_object(e, raw)?;
    let co = options::read_options(e, raw, WORKER_KEYS)?;
    let bad = |m: String| js::throw(e, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &m);
    let mut o = match (&wo.uuid, &wo.endpoint) {
        (Some(u), Some(ep)) => {
            let ep = Endpoint::parse(ep).ok_or_else(|| bad(format!("not an endpoint: {ep:?}")))?;
            let mut o = WorkerOptions::new(u, ep, co.dialect().unwrap_or(Dialect::V1));
            o.app = wo.app.clone().unwrap_or_default();
            o
        }
        _ => {
            let argv = wo.argv.clone().unwrap_or_default();
            let mut o = WorkerOptions::from_args(&argv).map_err(|err| bad(err.to_string()))?;
            if let Some(d) = co.dialect() {
                o.dialect = d;
            }
            o
        }
    };
    js::set_millis(e, &mut o.heartbeat_interval, wo.heartbeat_interval, "heartbeatInterval")?;
    js::set_millis(e, &mut o.disown_timeout, wo.disown_timeout, "disownTimeout")?;
    let r = co.resolve(o.dialect, Some(Role::Worker));
    o.channel = r.config;
    let limits = (r.zero_copy, o.channel.max_pending);
    let start = |port: &Arc<Port>| {
        let p = port.clone();
        // The disconnection is a worker's last event.
        CoreWorker::connect(o, move |_: &CoreWorker, ev: WorkerEvent| {
            let last = matches!(ev, WorkerEvent::Disconnected { .. });
            let (source, event) = ev.into_event();
            p.push(source, event);
            if last {
                p.release();
            }
        })
    };
    port::start(env, K_WORKER, limits, start, |core, port| Worker { core, port })
}

send_methods!(Worker.core, write, end, fail, "sid: number | bigint, code: number, message?: string, category?: number");
