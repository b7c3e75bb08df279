//! The one send implementation behind every `sluice_*_send_*` and stream
//! function (channels, sessions, resume peers, workers, engine workers),
//! over [`Streams`]: C arguments become a message, the refusal a code.

use bytes::Bytes;
use sluice_core::host::Streams;
use sluice_core::wire::{Args, Message};

use crate::guard::{arg, bytes_arg, sent, Fail, Res};
use crate::payload::sluice_payload;
use crate::roles::text;

/// Copies (pointer, length) bytes into an owned buffer.
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn copied(p: *const u8, len: usize, what: &str) -> Res<Bytes> {
    // SAFETY: per the contract.
    Ok(Bytes::copy_from_slice(unsafe { bytes_arg(p, len, what) }?))
}

/// Sends `message` on `session`.
pub(crate) fn message(s: &dyn Streams, session: u64, message: Message) -> Res {
    sent(s.send_message(session, &message, &[]))
}

/// Sends a chunk of copied bytes.
///
/// # Safety
/// `data` is NULL or valid for reads of `len` bytes.
pub(crate) unsafe fn chunk(s: &dyn Streams, session: u64, data: *const u8, len: usize) -> Res {
    // SAFETY: per the contract.
    sent(s.send_chunk(session, &unsafe { copied(data, len, "data") }?))
}

/// Sends a chunk whose bytes are a payload, without a copy.
///
/// # Safety
/// `payload` is NULL or a live payload.
pub(crate) unsafe fn payload(s: &dyn Streams, session: u64, payload: *const sluice_payload) -> Res {
    // SAFETY: per the contract.
    sent(s.send_chunk(session, &unsafe { arg(payload, "payload") }?.to_bytes()))
}

/// Sends `error` on `session`. `msg` NULL with `len` 0 omits the message;
/// with `utf8` the message must be text (the streams' error is a string).
///
/// # Safety
/// `msg` is NULL or valid for reads of `len` bytes.
pub(crate) unsafe fn error(s: &dyn Streams, session: u64, category: Option<i64>, code: i64, msg: *const u8, len: usize, utf8: bool) -> Res {
    // SAFETY: per the contract.
    let message = if msg.is_null() && len == 0 { None } else { Some(unsafe { copied(msg, len, "msg") }?) };
    if utf8 {
        text(message.as_deref().unwrap_or_default(), "msg")?;
    }
    self::message(s, session, Message::Error { category, code, message })
}

/// Sends a generic frame; `args_msgpack` is one msgpack array.
///
/// # Safety
/// `args_msgpack` is NULL or valid for reads of `len` bytes.
pub(crate) unsafe fn frame(s: &dyn Streams, session: u64, type_id: u64, args_msgpack: *const u8, len: usize) -> Res {
    // SAFETY: per the contract.
    let args = unsafe { args_arg(args_msgpack, len) }?;
    sent(s.send_frame(session, type_id, &args, &[]))
}

/// One msgpack array from C as frame arguments (NULL/0: `[]`).
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes.
pub(crate) unsafe fn args_arg(p: *const u8, len: usize) -> Res<Args> {
    if len == 0 {
        return Ok(Args::empty());
    }
    // SAFETY: per the contract.
    let raw = unsafe { copied(p, len, "args_msgpack") }?;
    Args::from_raw(raw).map_err(|e| Fail::invalid(format!("args_msgpack is not one msgpack array: {e}")))
}
