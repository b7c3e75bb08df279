//! Plain channels: `connect()` → [`Connection`], `listen()` → [`Server`]
//! (EventEmitters with promises and Node-stream backpressure).

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::net::{Channel as CoreChannel, Endpoint, Incoming, Server as CoreServer};
use sluice_core::roles::StreamError;
use sluice_core::wire::{Dialect, Message, Role};

use crate::js::{self, id_arg};
use crate::options::{self, endpoint_string};
use crate::port::{self, Port};
use crate::records::{K_CONNECTION, K_SERVER};
use crate::sends::error_message;
use sluice_core::host::backlog::Pending;

/// A channel of the modern API, made by `connect()` or accepted by a
/// `Server`. It is an `EventEmitter`; every event runs on the JavaScript
/// thread, in wire order, delivered in batches:
///
/// * `'connect'` — the connection is up.
/// * worker role: `'invoke' (sid, event)`, `'chunk' (sid, data: Buffer)`,
///   `'choke' (sid)`, `'sessionError' (sid, { category, code, message })`
///   (`category` is `undefined` in v0), `'heartbeat' ()`,
///   `'terminate' (code, reason)`.
/// * engine role: `'handshake' (uuid)`, `'heartbeat' ()`, `'terminate'
///   (code, reason)`, and the worker's answers `'chunk'`, `'choke'`,
///   `'sessionError'`.
/// * `'frame' (sid, type, args: Buffer)` — a frame that is not a protocol
///   message (every frame with role `'none'`; frames the protocol drops
///   otherwise): `args` is the msgpack encoding of the arguments array.
/// * `'drain'` — a send returned `false` earlier and the queue has drained.
/// * `'end'` — the peer closed the connection (after every complete frame
///   it sent was delivered).
/// * `'error' (err)` — the connection failed: `err.code` is the errno name
///   (`'ECONNREFUSED'`, `'ECONNRESET'`, `'EBADMSG'`, `'EMSGSIZE'`, …) and
///   `err.errno` its Linux number. Emitted when there is an `'error'`
///   listener or no one is waiting on `ready` (which is rejected instead).
/// * `'close' (err?)` — the channel is finished (after `'end'` or
///   `'error'`, or when `close()` has flushed); nothing follows.
///
/// Session ids are numbers (BigInt above 2^53 − 1).
#[napi]
pub struct Connection {
    ch: CoreChannel,
    port: Arc<Port>,
    dialect: Dialect,
    role: Option<Role>,
    remote: String,
}

fn control(d: Dialect) -> u64 {
    match d {
        Dialect::V0 => 0,
        Dialect::V1 => 1,
    }
}

#[napi]
impl Connection {
    fn put(&self, env: sys::napi_env, p: Pending) -> Result<bool> {
        let closed = || js::refused(env, StreamError::Closed);
        if self.port.is_closed() {
            return Err(closed());
        }
        self.port.sends.send(&self.ch, p).map_err(|_| closed())
    }

    /// A promise settled when the connection is up (resolved) or has failed
    /// (rejected with the error, code as in `'error'`; `ECONNABORTED` if it
    /// was closed before connecting).
    #[napi(getter, ts_return_type = "Promise<void>")]
    pub fn ready<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.ready_promise(env)
    }

    /// The dialect: `'v0'` or `'v1'`.
    #[napi(getter, ts_return_type = "'v0' | 'v1'")]
    pub fn dialect(&self) -> &'static str {
        js::dialect_name(self.dialect)
    }

    /// The role: `'worker'`, `'engine'` or `'none'`.
    #[napi(getter, ts_return_type = "'worker' | 'engine' | 'none'")]
    pub fn role(&self) -> &'static str {
        match self.role {
            Some(Role::Worker) => "worker",
            Some(Role::Engine) => "engine",
            None => "none",
        }
    }

    /// The other end: the endpoint connected to, or the peer's address for
    /// an accepted connection (often empty for Unix sockets).
    #[napi(getter)]
    pub fn remote(&self) -> String {
        self.remote.clone()
    }

    /// Bytes sent and not yet written to the socket.
    #[napi(getter)]
    pub fn queued(&self) -> f64 {
        (self.ch.queued() + self.port.sends.bytes()) as f64
    }

    /// The id for a new session this side opens (an engine's invoke, a
    /// client's call): one above the highest id seen in either direction.
    #[napi(ts_return_type = "number | bigint")]
    pub fn next_session<'a>(&self, env: &'a Env) -> Unknown<'a> {
        js::id_value(env, self.ch.next_session())
    }

    /// Sends pre-encoded bytes (whole frames) as they are. Like every
    /// `send*`: returns `false` when the send queue is over its high
    /// watermark (the message still goes, after the ones before it;
    /// `'drain'` follows), and throws (code `ERR_CHANNEL_CLOSED`) once the
    /// channel is closed or has failed.
    #[napi(ts_args_type = "data: Uint8Array")]
    pub fn send(&self, env: Env, data: Unknown<'_>) -> Result<bool> {
        let e = env.raw();
        let b = js::get_bytes(e, data.raw()).ok_or_else(|| js::type_error(e, "send() takes a Buffer"))?;
        self.put(e, Pending::Raw(Bytes::copy_from_slice(b)))
    }

    /// Sends a chunk of session data (v0 `chunk`, v1 `write`); a string is
    /// sent as its UTF-8 bytes.
    #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
    pub fn send_chunk(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<bool> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, Pending::Chunk(s, js::data_arg(e, data)?))
    }

    /// Ends this side of a session (v0 `choke`, v1 `close`).
    #[napi(ts_args_type = "sid: number | bigint")]
    pub fn send_choke(&self, env: Env, sid: Unknown<'_>) -> Result<bool> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        self.put(e, Pending::Message(s, Message::Choke))
    }

    /// Fails a session: v1 `error([category, code], message)` (category 42,
    /// the frameworks' own, unless given); v0 `error(code, message)` followed
    /// by the `choke` the v0 engine needs to forget the session.
    #[napi(ts_args_type = "sid: number | bigint, code: number, message?: string, category?: number")]
    pub fn send_error(
        &self,
        env: Env,
        sid: Unknown<'_>,
        code: Unknown<'_>,
        message: Option<Unknown<'_>>,
        category: Option<Unknown<'_>>,
    ) -> Result<bool> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let c = js::get_int(e, code.raw()).ok_or_else(|| js::type_error(e, "code must be an integer"))?;
        let Message::Error { category, code, message } = error_message(e, c, message, category)? else { unreachable!() };
        match self.dialect {
            Dialect::V1 => self.put(e, Pending::Message(s, Message::Error { category, code, message })),
            Dialect::V0 => {
                let message = Some(message.unwrap_or_default());
                self.put(e, Pending::Message(s, Message::Error { category: None, code, message }))?;
                self.put(e, Pending::Message(s, Message::Choke))
            }
        }
    }

    /// Opens a session with `invoke(event)` (engine role); take `sid` from
    /// `nextSession()`.
    #[napi(ts_args_type = "sid: number | bigint, event: string")]
    pub fn send_invoke(&self, env: Env, sid: Unknown<'_>, event: Unknown<'_>) -> Result<bool> {
        let e = env.raw();
        let s = id_arg(e, sid)?;
        let ev = js::get_bytes_or_string(e, event.raw()).ok_or_else(|| js::type_error(e, "event must be a string"))?;
        self.put(e, Pending::Message(s, Message::Invoke { event: ev }))
    }

    /// Sends the worker's `handshake(uuid)` on the control session.
    #[napi]
    pub fn send_handshake(&self, env: Env, uuid: String) -> Result<bool> {
        self.put(env.raw(), Pending::Message(control(self.dialect), Message::Handshake { uuid: Bytes::from(uuid) }))
    }

    /// Sends a `heartbeat` on the control session.
    #[napi]
    pub fn send_heartbeat(&self, env: Env) -> Result<bool> {
        self.put(env.raw(), Pending::Message(control(self.dialect), Message::Heartbeat))
    }

    /// Sends `terminate(code, reason)` on the control session (v0 codes:
    /// 1 normal, 2 abnormal).
    #[napi]
    pub fn send_terminate(&self, env: Env, code: i64, reason: String) -> Result<bool> {
        self.put(env.raw(), Pending::Message(control(self.dialect), Message::Terminate { code, reason: Bytes::from(reason) }))
    }

    /// Closes gracefully: no event but `'close'` follows this call; what
    /// was sent is written first. The promise resolves once the connection
    /// has ended. Calling it again returns a promise for the same end.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'a>(&self, env: &'a Env) -> Unknown<'a> {
        self.port.close();
        self.port.sends.close(&self.ch);
        self.port.closed_promise(env)
    }

    /// Closes at once, dropping whatever is not yet written.
    #[napi]
    pub fn destroy(&self) {
        self.port.close();
        self.port.sends.clear();
        self.ch.abort();
    }
}

/// Connects to `endpoint` and returns the `Connection` at once; listen for
/// `'connect'` or await `ready`. The endpoint is `'host:port'`,
/// `'[v6]:port'`, a Unix socket path (`'/…'`, `'./…'`, `'unix:…'`),
/// `{ host, port }` or `{ path }`. Options default to dialect `'v1'` and
/// role `'worker'`.
#[napi(ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: ChannelOptions")]
pub fn connect<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Connection>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let opts = options::read_options(e, options.map_or(std::ptr::null_mut(), |v| v.raw()), &[])?;
    let r = opts.resolve(Dialect::V1, Some(Role::Worker));
    let (dialect, role, remote, limits) = (r.config.dialect, r.config.role, endpoint_string(&ep), (r.zero_copy, r.config.max_pending));
    let start = |p: &Arc<Port>| CoreChannel::connect(ep, r.config, p.feed());
    port::start(env, K_CONNECTION, limits, start, |ch, port| Connection { ch, port, dialect, role, remote })
}

/// Starts accepted connections and makes their `Connection` objects
/// (JavaScript thread): the array the server's dispatch hands out.
pub(crate) unsafe fn accept_all(env: sys::napi_env, server: &Port, incoming: Vec<Incoming>) -> sys::napi_value {
    let mut arr = std::ptr::null_mut();
    unsafe { sys::napi_create_array_with_length(env, incoming.len(), &mut arr) };
    let e = Env::from_raw(env);
    for (i, mut inc) in incoming.into_iter().enumerate() {
        let remote = inc.peer().to_string();
        let (dialect, role) = {
            let c = inc.config_mut();
            (c.dialect, c.role)
        };
        let Ok(port) = Port::new(env, K_CONNECTION, server.zero_copy, server.max_pending) else { break };
        // A failed start drops the handler, which releases the port.
        let Ok(ch) = inc.start(port.feed()) else { continue };
        match (Connection { ch, port: port.clone(), dialect, role, remote }).into_instance(&e) {
            Ok(inst) => {
                port.attach(env, inst.value);
                unsafe { sys::napi_set_element(env, arr, i as u32, inst.value) };
            }
            Err(_) => {
                port.close();
            }
        }
    }
    arr
}

/// A listening socket of the modern API, made by `listen()`. It is an
/// `EventEmitter`: `'connection' (conn: Connection)` for each accepted
/// channel (attach its listeners there: its `'connect'` comes next), and
/// `'close' ()` after `close()`. Open servers keep Node running.
#[napi]
pub struct Server {
    server: CoreServer,
    port: Arc<Port>,
    dialect: Dialect,
}

#[napi]
impl Server {
    /// Where the server listens: `'host:port'` (with the port picked when 0
    /// was asked for) or the socket path.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        endpoint_string(self.server.local())
    }

    /// The TCP port listened on (`null` for Unix sockets).
    #[napi(getter)]
    pub fn port(&self) -> Option<u32> {
        match self.server.local() {
            Endpoint::Tcp(_, p) => Some(*p as u32),
            Endpoint::Unix(_) => None,
        }
    }

    /// The dialect of accepted channels: `'v0'` or `'v1'`.
    #[napi(getter, ts_return_type = "'v0' | 'v1'")]
    pub fn dialect(&self) -> &'static str {
        js::dialect_name(self.dialect)
    }

    /// Stops listening (accepted connections stay open) and removes the Unix
    /// socket file it created; `'close'` follows.
    #[napi]
    pub fn close(&self) {
        if !self.port.is_closed() {
            self.server.close();
            self.port.end();
        }
    }
}

/// Listens on `endpoint` (`'host:port'` — port 0 picks a free one, see
/// `server.port` — or a Unix socket path) and returns the `Server`. Throws
/// an Error with the errno's `code` (`'EADDRINUSE'`, `'EACCES'`, …) if it
/// cannot. Options apply to every accepted channel; they default to dialect
/// `'v1'` and role `'engine'`.
#[napi(ts_args_type = "endpoint: string | { host?: string, port: number } | { path: string }, options?: ChannelOptions")]
pub fn listen<'a>(env: &'a Env, endpoint: Unknown<'_>, options: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Server>> {
    let e = env.raw();
    let ep = options::read_endpoint(e, endpoint.raw())?;
    let opts = options::read_options(e, options.map_or(std::ptr::null_mut(), |v| v.raw()), &[])?;
    let r = opts.resolve(Dialect::V1, Some(Role::Engine));
    let (dialect, limits) = (r.config.dialect, (r.zero_copy, r.config.max_pending));
    let start = |p: &Arc<Port>| CoreServer::bind(&ep, r.config, p.handler::<CoreServer, Incoming>());
    port::start(env, K_SERVER, limits, start, |server, port| Server { server, port, dialect })
}
