//! The one send family of the classes that send on sessions (`Session`,
//! `ResumePeer`, `Worker`, `EngineWorker`), over the core's
//! `host::Streams`: arguments read once, refusals thrown in one place
//! ([`js::refused`], the core's `StreamError` code and text). Channels
//! (`Connection`, the framework `Channel`) send the same messages over the
//! same trait through the core's `host::backlog`, which keeps the Node-stream
//! contract (a send is queued, not refused, at the high watermark).

use bytes::Bytes;
use napi::bindgen_prelude::*;
use sluice_core::host::Streams;
use sluice_core::wire::message::FRAMEWORK_CATEGORY;
use sluice_core::wire::{Args, Message};

use crate::js;

/// Sends what `make` reads from the remaining arguments on session `sid`.
pub(crate) fn send(env: sys::napi_env, to: &impl Streams, sid: Unknown<'_>, make: impl FnOnce() -> Result<Message>) -> Result<()> {
    let sid = js::id_arg(env, sid)?;
    let r = match make()? {
        Message::Chunk { data } => to.send_chunk(sid, &data),
        m => to.send_message(sid, &m, &[]),
    };
    r.map_err(|e| js::refused(env, e))
}

/// Sends a generic frame (`args`: the msgpack encoding of an array).
pub(crate) fn send_frame(env: sys::napi_env, to: &impl Streams, sid: Unknown<'_>, ty: i64, args: Unknown<'_>) -> Result<()> {
    let sid = js::id_arg(env, sid)?;
    let a = frame_args(env, args)?;
    to.send_frame(sid, ty.max(0) as u64, &a, &[]).map_err(|e| js::refused(env, e))
}

/// `error` with an optional message and v1 category (default 42, the
/// frameworks' own).
pub(crate) fn error_message(env: sys::napi_env, code: i64, message: Option<Unknown<'_>>, category: Option<Unknown<'_>>) -> Result<Message> {
    let message = js::opt_string(env, message, "message")?.map(Bytes::from);
    let category = js::opt_int(env, category, "category")?.unwrap_or(FRAMEWORK_CATEGORY);
    Ok(Message::Error { category: Some(category), code, message })
}

fn frame_args(env: sys::napi_env, v: Unknown<'_>) -> Result<Args> {
    let b = js::get_bytes(env, v.raw()).ok_or_else(|| js::type_error(env, "args must be a Buffer (a msgpack array)"))?;
    Args::from_raw(Bytes::copy_from_slice(b))
        .map_err(|_| js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", "args must be the msgpack encoding of one array"))
}

/// The send methods of a class whose `$field` implements `Streams`, under
/// the class's names: a chunk, the end of this side, an error; and, for
/// classes that send any message, an invoke and a generic frame.
macro_rules! send_methods {
    ($class:ident . $field:ident, $chunk:ident, $choke:ident, $error:ident, $error_args:literal $(, $invoke:ident, $frame:ident)?) => {
        #[napi]
        impl $class {
            /// Sends a chunk on session `sid` (v0 `chunk`, v1 `write`); a
            /// string goes as its UTF-8 bytes. Like every send of the roles it
            /// throws an Error with a `code` when refused: `'EAGAIN'` (the
            /// send queue is full; nothing was sent; `'drain'` follows),
            /// `'ERR_CHANNEL_CLOSED'`, `'ERR_STREAM_ENDED'` (this side already
            /// ended the session), `'ERR_NO_SESSION'`.
            #[napi(ts_args_type = "sid: number | bigint, data: Uint8Array | string")]
            pub fn $chunk(&self, env: Env, sid: Unknown<'_>, data: Unknown<'_>) -> Result<()> {
                let e = env.raw();
                $crate::sends::send(e, &self.$field, sid, || Ok(Message::Chunk { data: js::data_arg(e, data)? }))
            }

            /// Ends this side of session `sid` (v0 `choke`, v1 `close`).
            #[napi(ts_args_type = "sid: number | bigint")]
            pub fn $choke(&self, env: Env, sid: Unknown<'_>) -> Result<()> {
                $crate::sends::send(env.raw(), &self.$field, sid, || Ok(Message::Choke))
            }

            /// Fails session `sid`: `error([category, code], message)`
            /// (the v1 category 42, the frameworks' own, unless given). A
            /// worker's (`fail`) is followed in v0 by the `choke` the v0
            /// engine needs; nothing may follow on it.
            #[napi(ts_args_type = $error_args)]
            pub fn $error(&self, env: Env, sid: Unknown<'_>, code: i64, message: Option<Unknown<'_>>, category: Option<Unknown<'_>>) -> Result<()> {
                let e = env.raw();
                $crate::sends::send(e, &self.$field, sid, || $crate::sends::error_message(e, code, message, category))
            }
            $(
            /// Opens session `sid` with `invoke(event)`.
            #[napi(ts_args_type = "sid: number | bigint, event: string")]
            pub fn $invoke(&self, env: Env, sid: Unknown<'_>, event: String) -> Result<()> {
                $crate::sends::send(env.raw(), &self.$field, sid, || Ok(Message::Invoke { event: event.into() }))
            }

            /// Sends a generic frame: `args` is the msgpack encoding of the
            /// arguments array (as `'frame'` events give it).
            #[napi(ts_args_type = "sid: number | bigint, type: number, args: Uint8Array")]
            pub fn $frame(&self, env: Env, sid: Unknown<'_>, ty: i64, args: Unknown<'_>) -> Result<()> {
                $crate::sends::send_frame(env.raw(), &self.$field, sid, ty, args)
            }
            )?
        }
    };
}
pub(crate) use send_methods;
