//! `Channel`: the drop-in replacement for the channel object of the Cocaine
//! Node.js framework (docs/PROTOCOL.md §8).

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::net::{Channel as CoreChannel, Endpoint};
use sluice_core::roles::StreamError;
use sluice_core::wire::{Dialect, Message};

use crate::js;
use crate::options::{self, Resolved};
use crate::port::Port;
use crate::records::{K_COMPAT_V0, K_COMPAT_V1};
use sluice_core::host::backlog::Pending;

/// The channel of the Cocaine Node.js framework, reimplemented over the
/// sluice core: a drop-in for `require('../channel/channel').Channel` of
/// cocaine-framework-nodejs (v0.4 and master) and for the native
/// `communicator` of v0.2/v0.3.
///
/// `new Channel(path)` connects to a Unix socket, `new Channel(host, port)`
/// to TCP, at once and in the background; the outcome arrives as
/// `on_connect()` or `on_socket_error(errno)`. The owner assigns the
/// callbacks as plain properties (and may delete them); each runs with
/// `this` set to the channel, on the JavaScript thread, in wire order.
/// Frames are decoded natively and reach JavaScript in batches.
///
/// The dialect is the `--protocol` argument of the process (absent → v0,
/// `1` → v1), as the runtime starts workers, unless an options object is
/// given last: `new Channel(path, { dialect: 'v1' })`.
///
/// Parameter lists (docs/PROTOCOL.md §8.2): v0 —
/// `on_error(sid, code, message)`, `on_terminate(sid, code, reason)` (the
/// native addon's lists); v1 — `on_error(sid, category, code, message)`,
/// `on_terminate(code, reason)` (master's). Event names, reasons and
/// messages are strings, chunks are Buffers, session ids are numbers (BigInt
/// above 2^53 − 1).
///
/// After `on_socket_error` (exactly one per connection) or `close()`, no
/// callback runs. Errnos are Linux numbers: ECONNREFUSED 111, ENOENT 2,
/// EACCES 13, EBADF 9 (unresolvable host), ESHUTDOWN 108 (the peer closed),
/// EPIPE 32, ECONNRESET 104, EBADMSG 74 (bad framing), EMSGSIZE 90,
/// ETIMEDOUT 110.
#[napi(js_name = "Channel")]
pub struct CompatChannel {
    endpoint: Endpoint,
    resolved: Resolved,
    /// The connection and its port (replaced by `connect()` after an end).
    cur: Option<(CoreChannel, Arc<Port>)>,
}

/// A callback property: the setter makes an own data property, so the
/// owner's assignments and `delete`s behave as on a plain object and the
/// dispatcher reads a plain property; the getter on the prototype only
/// answers while no callback is assigned.
macro_rules! callback_property {
    ($get:ident, $set:ident, $name:literal, $cname:literal, [$($doc:literal),+ $(,)?], $ty:literal, $targ:literal) => {
        #[napi]
        impl CompatChannel {
            $(#[doc = $doc])+
            #[napi(getter, js_name = $name, ts_return_type = $ty)]
            pub fn $get(&self) {}

            $(#[doc = $doc])+
            #[napi(setter, js_name = $name, ts_args_type = $targ)]
            pub fn $set(&self, env: Env, this: This, value: Unknown<'_>) -> Result<()> {
                js::define_own(env.raw(), this.raw(), $cname, value.raw())
            }
        }
    };
}

#[napi]
impl CompatChannel {
    /// Connects to a Unix socket path (`new Channel(path)`) or a TCP host
    /// and port (`new Channel(host, port)`; the host may be a name). An
    /// options object may come last (`dialect`, watermarks, limits; see
    /// `ChannelOptions`). Throws a `TypeError` (code `ERR_INVALID_ARG_TYPE`)
    /// for arguments of the wrong types; connection failures arrive as
    /// `on_socket_error(errno)`.
    #[napi(constructor, ts_args_type = "pathOrHost: string, portOrOptions?: number | ChannelOptions, options?: ChannelOptions")]
    pub fn new(env: Env, this: This, a: Unknown<'_>, b: Option<Unknown<'_>>, c: Option<Unknown<'_>>) -> Result<Self> {
        let e = env.raw();
        let first =
            js::get_string(e, a.raw()).ok_or_else(|| js::type_error(e, "the first argument must be a socket path or a host name"))?;
        let (endpoint, opts) = match b.map(|v| v.raw()).filter(|v| !js::is_nullish(e, *v)) {
            Some(v) if js::type_of(e, v) == sys::ValueType::napi_number => {
                let port = js::get_number(e, v).unwrap_or(-1.0);
                if !(0.0..=65535.0).contains(&port) || port.fract() != 0.0 {
                    return Err(js::throw(
                        e,
                        js::Kind::RangeError,
                        "ERR_SOCKET_BAD_PORT",
                        &format!("port must be an integer 0..65535, got {port}"),
                    ));
                }
                (Endpoint::Tcp(first, port as u16), c.map(|v| v.raw()))
            }
            Some(v) if js::type_of(e, v) == sys::ValueType::napi_object => (Endpoint::Unix(first.into()), Some(v)),
            Some(_) => return Err(js::type_error(e, "the second argument must be a port number or an options object")),
            None => (Endpoint::Unix(first.into()), c.map(|v| v.raw())),
        };
        let opts = match opts {
            Some(v) => options::read_options(e, v, &[])?,
            None => options::Read::default(),
        };
        let dialect = match opts.dialect() {
            Some(d) => d,
            None => options::dialect_from_argv(e)?,
        };
        // The framework's channel is always the worker side.
        let resolved = opts.resolve_as(dialect, sluice_core::wire::Role::Worker);
        let mut ch = CompatChannel { endpoint, resolved, cur: None };
        ch.open(e, this.raw())?;
        Ok(ch)
    }

    fn open(&mut self, env: sys::napi_env, obj: sys::napi_value) -> Result<()> {
        let owner = if self.resolved.config.dialect == Dialect::V1 { K_COMPAT_V1 } else { K_COMPAT_V0 };
        let port = Port::new(env, owner, self.resolved.zero_copy, self.resolved.config.max_pending)?;
        port.attach(env, obj);
        match CoreChannel::connect(self.endpoint.clone(), self.resolved.config.clone(), port.feed()) {
            Ok(ch) => {
                self.cur = Some((ch, port));
                Ok(())
            }
            Err(err) => {
                // No runtime: the port never gets a handler to release it.
                port.end();
                Err(js::throw_errno(env, sluice_core::net::errno_of(&err)))
            }
        }
    }

    fn live(&self, env: sys::napi_env) -> Result<&(CoreChannel, Arc<Port>)> {
        match &self.cur {
            Some(c) if !c.1.is_closed() => Ok(c),
            _ => Err(js::refused(env, StreamError::Closed)),
        }
    }

    /// Connects again after the connection ended (`on_socket_error`) or was
    /// closed; the constructor already connects. Throws (code `EISCONN`)
    /// while a connection is open or being made.
    #[napi(ts_args_type = "")]
    pub fn connect(&mut self, env: Env, this: This) -> Result<()> {
        let e = env.raw();
        if let Some((ch, port)) = &self.cur {
            if !port.is_closed() && port.failed_errno().is_none() && !ch.is_finished() {
                return Err(js::throw(e, js::Kind::Error, "EISCONN", "the channel is already connected or connecting"));
            }
        }
        self.open(e, this.raw())
    }

    /// Sends bytes as they are: one or more whole frames the owner packed
    /// (`msgpack.pack([1, 0, []])`). Never refuses data while the channel is
    /// open, like a socket's `write`: returns `false` when the send queue is
    /// over its high watermark (the bytes wait, in order). Throws a
    /// `TypeError` unless `buffer` is a Buffer/Uint8Array, and an error with
    /// code `ERR_CHANNEL_CLOSED` after `close()` or the end of the connection.
    #[napi(ts_args_type = "buffer: Uint8Array")]
    pub fn send(&self, env: Env, buffer: Unknown<'_>) -> Result<bool> {
        let e = env.raw();
        let data = js::get_bytes(e, buffer.raw()).ok_or_else(|| js::type_error(e, "send() takes a Buffer"))?;
        let (ch, port) = self.live(e)?;
        port.sends.send(ch, Pending::Raw(Bytes::copy_from_slice(data))).map_err(|_| js::refused(e, StreamError::Closed))
    }

    /// Sends `terminate(code, reason)` on session `sid` (v0 `[2, sid, [code,
    /// reason]]`, v1 `[sid, 1, [code, reason]]`) and returns `sid`, as the
    /// native v0 channel did (the JS channels' versions never worked).
    #[napi(ts_args_type = "sid: number | bigint, code: number, reason: string", ts_return_type = "number | bigint")]
    pub fn send_terminate<'a>(&self, env: &'a Env, sid: Unknown<'a>, code: Unknown<'_>, reason: Unknown<'_>) -> Result<Unknown<'a>> {
        let e = env.raw();
        let s = js::get_id(e, sid.raw()).ok_or_else(|| js::type_error(e, "sid must be a non-negative integer"))?;
        let c = js::get_int(e, code.raw()).ok_or_else(|| js::type_error(e, "code must be an integer"))?;
        let r = js::get_string(e, reason.raw()).ok_or_else(|| js::type_error(e, "reason must be a string"))?;
        let (ch, port) = self.live(e)?;
        port.sends
            .send(ch, Pending::Message(s, Message::Terminate { code: c, reason: Bytes::from(r) }))
            .map_err(|_| js::refused(e, StreamError::Closed))?;
        Ok(sid)
    }

    /// Closes the channel: no callback runs after this call; what was sent is
    /// still written, then the connection is shut down. Safe to call at any
    /// time, also from a callback and more than once.
    #[napi]
    pub fn close(&self) {
        if let Some((ch, port)) = &self.cur {
            port.close();
            port.sends.close(ch);
        }
    }

    /// Accepted for the framework (master calls it with its message table);
    /// sluice knows both dialects' tables itself, so it does nothing.
    #[napi(js_name = "_setProtocol", ts_args_type = "rpc?: unknown")]
    pub fn set_protocol(&self) {}

    /// The dialect of this channel: `'v0'` or `'v1'`.
    #[napi(getter, ts_return_type = "'v0' | 'v1'")]
    pub fn dialect(&self) -> &'static str {
        js::dialect_name(self.resolved.config.dialect)
    }
}

callback_property! { get_on_connect, set_on_connect, "on_connect", c"on_connect", [
    "Called once the connection is up: `on_connect()`.",
], "((this: Channel) => void) | undefined", "value: ((this: Channel) => void) | undefined" }
callback_property! { get_on_socket_error, set_on_socket_error, "on_socket_error", c"on_socket_error", [
    "Called once when the connection fails or ends, with the Linux errno (docs/PROTOCOL.md §8.3):",
    "`on_socket_error(errno)`. Nothing follows it.",
], "((this: Channel, errno: number) => void) | undefined", "value: ((this: Channel, errno: number) => void) | undefined" }
callback_property! { get_on_heartbeat, set_on_heartbeat, "on_heartbeat", c"on_heartbeat", [
    "A heartbeat from the engine: `on_heartbeat()`.",
], "((this: Channel) => void) | undefined", "value: ((this: Channel) => void) | undefined" }
callback_property! { get_on_invoke, set_on_invoke, "on_invoke", c"on_invoke", [
    "A new session: `on_invoke(sid, event)` with the event name as a string. In v1 the owner's `__sid` (master's",
    "highest channel id) is raised to `sid` first.",
], "((this: Channel, sid: number | bigint, event: string) => void) | undefined",
    "value: ((this: Channel, sid: number | bigint, event: string) => void) | undefined" }
callback_property! { get_on_chunk, set_on_chunk, "on_chunk", c"on_chunk", [
    "Data of a session (v0 chunk, v1 write): `on_chunk(sid, buffer)`.",
], "((this: Channel, sid: number | bigint, data: Buffer) => void) | undefined",
    "value: ((this: Channel, sid: number | bigint, data: Buffer) => void) | undefined" }
callback_property! { get_on_choke, set_on_choke, "on_choke", c"on_choke", [
    "The engine's side of a session ended (v0 choke, v1 close): `on_choke(sid)`.",
], "((this: Channel, sid: number | bigint) => void) | undefined",
    "value: ((this: Channel, sid: number | bigint) => void) | undefined" }
callback_property! { get_on_error, set_on_error, "on_error", c"on_error", [
    "A session failed: v0 `on_error(sid, code, message)`, v1 `on_error(sid, category, code, message)` (message",
    "`undefined` when the frame has none).",
], "((this: Channel, sid: number | bigint, ...args: any[]) => void) | undefined",
    "value: ((this: Channel, sid: number | bigint, ...args: any[]) => void) | undefined" }
callback_property! { get_on_terminate, set_on_terminate, "on_terminate", c"on_terminate", [
    "The engine asks the worker to stop: v0 `on_terminate(sid, code, reason)`, v1 `on_terminate(code, reason)`.",
], "((this: Channel, ...args: any[]) => void) | undefined", "value: ((this: Channel, ...args: any[]) => void) | undefined" }
callback_property! { get_owner, set_owner, "owner", c"owner", [
    "The object that owns the channel (the framework's worker). In v1, `owner.__sid` (the highest session id seen)",
    "is kept up to date as the master framework expects.",
], "any", "value: any" }
