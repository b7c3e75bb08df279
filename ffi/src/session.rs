//! `sluice_session`: a client connection that stays up — reconnection with
//! backoff and failover, liveness, and resume against a
//! `sluice_resume_server`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sluice_core::roles::{Backoff, Liveness, ResumeOptions, Session, SessionEvent, SessionOptions};
use sluice_core::wire::Message;

use crate::guard::{arg, assign, c_string, edit, endpoint_arg, free_box, guard_or, make, put, Fail};
use crate::handle::{self, call, object, Host, Tag};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::roles::sized_callbacks;
use crate::send;

/// How a session connects and stays up. Made by
/// `sluice_session_options_new`, released by `sluice_session_options_free`;
/// `sluice_session_connect` copies it. Not thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_session_options {
    opts: SessionOptions,
}

/// New session options: no endpoint yet (add at least one with
/// `sluice_session_options_add_endpoint`), channel defaults with no role
/// (every frame reaches `on_frame`), backoff 100 ms doubling up to 10 s
/// with ± 20 % jitter, no liveness, no resume. NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn sluice_session_options_new() -> *mut sluice_session_options {
    guard_or(std::ptr::null_mut(), || {
        let opts = SessionOptions::new(Vec::new(), sluice_options::with_default_role(std::ptr::null(), None));
        Box::into_raw(Box::new(sluice_session_options { opts }))
    })
}

/// Releases session options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_free(opts: *mut sluice_session_options) {
    free_box(opts)
}

/// Adds an endpoint (as for `sluice_channel_connect`). Endpoints are tried
/// in the order added: the first at start and after each loss of a working
/// connection, the next one after each failed attempt (failover).
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_add_endpoint(opts: *mut sluice_session_options, endpoint: *const c_char) -> c_int {
    edit(opts, "opts", |o| {
        // SAFETY: NULL or a valid string, per the C contract.
        o.opts.endpoints.push(unsafe { endpoint_arg(endpoint, "endpoint") }?);
        Ok(())
    })
}

/// Sets the connections' settings from `channel` (copied; NULL: the
/// defaults). The role defaults to none (`SLUICE_ROLE_NONE`) unless the
/// options set one. The delivery mode says how the session's callbacks run
/// (inline, or in `sluice_session_dispatch`).
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_set_channel(opts: *mut sluice_session_options, channel: *const sluice_options) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.channel, Ok(sluice_options::with_default_role(channel, None))))
}

/// Sets the reconnection delays: `initial_ms × multiplier^attempt`, at
/// most `max_ms`, spread by ± `jitter` (0 to 1). Needs `0 < initial_ms <=
/// max_ms`, `multiplier >= 1`, `0 <= jitter <= 1`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_set_backoff(
    opts: *mut sluice_session_options,
    initial_ms: u64,
    max_ms: u64,
    multiplier: f64,
    jitter: f64,
) -> c_int {
    edit(opts, "opts", |o| {
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if initial_ms == 0 || initial_ms > max_ms || !(multiplier >= 1.0) || !(0.0..=1.0).contains(&jitter) {
            return Err(Fail::invalid(format!(
                "backoff initial {initial_ms} ms, max {max_ms} ms, multiplier {multiplier}, jitter {jitter}: need 0 < initial <= max, multiplier >= 1, jitter in [0, 1]"
            )));
        }
        o.opts.backoff = Backoff { initial: Duration::from_millis(initial_ms), max: Duration::from_millis(max_ms), multiplier, jitter };
        Ok(())
    })
}

/// Liveness: a heartbeat every `interval_ms`, and a connection that has
/// received nothing for `timeout_ms` is cut (`ETIMEDOUT`) and a new one
/// made. Both 0: off (the default; rely on the socket). Otherwise both > 0.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_set_liveness(
    opts: *mut sluice_session_options,
    interval_ms: u64,
    timeout_ms: u64,
) -> c_int {
    edit(opts, "opts", |o| {
        o.opts.liveness = match (interval_ms, timeout_ms) {
            (0, 0) => None,
            (0, _) | (_, 0) => return Err(Fail::invalid("liveness needs both an interval and a timeout (or neither)")),
            (i, t) => Some(Liveness { interval: Duration::from_millis(i), timeout: Duration::from_millis(t) }),
        };
        Ok(())
    })
}

/// Resume (`enable` non-zero; the peer must be a `sluice_resume_server`):
/// frames in flight when a connection drops are sent again on the next
/// one, nothing lost or duplicated in either direction, and sends are
/// accepted while no connection is up. `max_unacked`: sends are refused
/// (`SLUICE_E_WOULD_BLOCK`) while this many bytes wait for the peer's
/// acknowledgement; `ack_every` / `ack_bytes`: acknowledge after this many
/// frames or bytes delivered. 0 for any of them: the default (8 MiB, 256,
/// 1 MiB).
#[no_mangle]
pub unsafe extern "C" fn sluice_session_options_set_resume(
    opts: *mut sluice_session_options,
    enable: c_int,
    max_unacked: usize,
    ack_every: u64,
    ack_bytes: usize,
) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.resume, Ok((enable != 0).then(|| resume_options(max_unacked, ack_every, ack_bytes)))))
}

pub(crate) fn resume_options(max_unacked: usize, ack_every: u64, ack_bytes: usize) -> ResumeOptions {
    let d = ResumeOptions::default();
    ResumeOptions {
        max_unacked: if max_unacked == 0 { d.max_unacked } else { max_unacked },
        ack_every: if ack_every == 0 { d.ack_every } else { ack_every },
        ack_bytes: if ack_bytes == 0 { d.ack_bytes } else { ack_bytes },
    }
}

// ---------------------------------------------------------------------------

/// A connection that stays up across failures. Opaque. Functions on a
/// session may be called from any thread and from inside any callback;
/// only `sluice_session_free` must not race other calls on the same handle.
#[allow(non_camel_case_types)]
pub struct sluice_session {
    tag: Tag,
    session: OnceLock<Session>,
}

/// A session's callbacks. Set `size` to `sizeof(sluice_session_callbacks)`
/// (see "sized callbacks" at `sluice_engine_callbacks`); any other member
/// may be NULL. Copied by `sluice_session_connect`.
///
/// **Thread.** Inline delivery (the default): on a library I/O thread, one
/// at a time; poll delivery: on the thread that calls
/// `sluice_session_dispatch`, with the same descriptor across reconnections.
/// In order: `on_connected`, the frames of that connection,
/// `on_disconnected`, `on_reconnect_attempt`..., `on_connected` again.
///
/// **Arguments.** `endpoint` strings are NUL-terminated and, like byte
/// strings, valid only until the callback returns. Typed message callbacks
/// (`on_invoke`...`on_terminate`) come only when the session's options set a
/// role; without one every frame reaches `on_frame`.
///
/// **Calling back.** Any sluice function, including
/// `sluice_session_stop`/`_free` of this session;
/// `sluice_session_dispatch` from inside returns `SLUICE_E_REENTRANT`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_session_callbacks {
    /// `sizeof(sluice_session_callbacks)`, set by the caller.
    pub size: usize,
    /// A connection to `endpoint` is up (with resume: the peer answered;
    /// `resumed` is 1 when the stream continues where it was, 0 on the first
    /// connection or when the peer had forgotten this session). Restart
    /// subscriptions here.
    pub on_connected: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, endpoint: *const c_char, resumed: c_int)>,
    /// The connection was lost with `err` (`ETIMEDOUT` for a silent peer);
    /// a reconnection follows.
    pub on_disconnected: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, err: c_int)>,
    /// Attempt `attempt` (1 for the first after a loss) goes to `endpoint`
    /// after `delay_ms`.
    pub on_reconnect_attempt:
        Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, attempt: u32, endpoint: *const c_char, delay_ms: u64)>,
    /// A frame: every frame without a role, frames the role drops with one.
    /// `args_msgpack` is the msgpack encoding of its argument array.
    pub on_frame: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            s: *mut sluice_session,
            session: u64,
            type_id: u64,
            args_msgpack: *const u8,
            len: usize,
        ),
    >,
    /// With a role: a chunk (`payload` as in `sluice_callbacks.on_chunk`).
    pub on_chunk: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            s: *mut sluice_session,
            session: u64,
            data: *const u8,
            len: usize,
            payload: *const sluice_payload,
        ),
    >,
    /// With a role: the peer's direction of `session` ended.
    pub on_choke: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, session: u64)>,
    /// With a role: an error on `session` (as `sluice_callbacks.on_error`).
    pub on_error: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            s: *mut sluice_session,
            session: u64,
            has_category: c_int,
            category: i64,
            code: i64,
            msg: *const u8,
            len: usize,
        ),
    >,
    /// With role worker: an invoke.
    pub on_invoke: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, session: u64, event: *const u8, len: usize)>,
    /// With role engine: a handshake.
    pub on_handshake: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, uuid: *const u8, len: usize)>,
    /// With a role: a heartbeat.
    pub on_heartbeat: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session)>,
    /// With a role: a terminate.
    pub on_terminate: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session, code: i64, reason: *const u8, len: usize)>,
    /// A refused send may be retried.
    pub on_drain: Option<unsafe extern "C" fn(userdata: *mut c_void, s: *mut sluice_session)>,
    /// The library will never call this callbacks set again: `userdata` may
    /// be freed. Exactly once for every successful `sluice_session_connect`,
    /// after the last other callback returned: in `sluice_session_stop` or
    /// `_free`, or on an I/O thread shortly after.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

object!(sluice_session, session: Session, "s", c"the session is still starting");

fn deliver(host: &Host<sluice_session, sluice_session_callbacks>, session: &Session, event: SessionEvent) {
    let Some(shared) = host.enter(session) else { return };
    let (s, ud, c) = (Arc::as_ptr(&shared).cast_mut(), host.ud.0, &host.cbs);
    // SAFETY (every call): the user's callbacks and data; each pointer
    // lives in `event`, a local or `shared` for the call.
    unsafe {
        match event {
            SessionEvent::Connected { endpoint, resumed } => {
                let ep = c_string(endpoint.to_string());
                call!(c.on_connected, ud, s, ep.as_ptr(), c_int::from(resumed))
            }
            SessionEvent::Disconnected { errno } => call!(c.on_disconnected, ud, s, errno),
            SessionEvent::ReconnectAttempt { attempt, endpoint, delay } => {
                let (ep, ms) = (c_string(endpoint.to_string()), delay.as_millis().min(u64::MAX as u128) as u64);
                call!(c.on_reconnect_attempt, ud, s, attempt, ep.as_ptr(), ms)
            }
            SessionEvent::Frame(frame) => call!(c.on_frame, ud, s, frame.session, frame.ty; bytes frame.args.raw()),
            SessionEvent::Drain => call!(c.on_drain, ud, s),
            SessionEvent::Message { session, message, .. } => match message {
                Message::Chunk { data } => call!(c.on_chunk, ud, s, session; chunk data),
                Message::Choke => call!(c.on_choke, ud, s, session),
                Message::Error { category, code, message } => call!(c.on_error, ud, s, session; error category, code, message),
                Message::Invoke { event } => call!(c.on_invoke, ud, s, session; bytes event),
                Message::Handshake { uuid } => call!(c.on_handshake, ud, s; bytes uuid),
                Message::Heartbeat => call!(c.on_heartbeat, ud, s),
                Message::Terminate { code, reason } => call!(c.on_terminate, ud, s, code; bytes reason),
            },
            _ => {}
        }
    }
}

/// Starts connecting to the first endpoint and returns the session in
/// `*out` (NULL on failure). `opts` is required and copied; `cbs` (copied;
/// NULL for none) and `userdata`: see `sluice_session_callbacks`. Every
/// outcome arrives as a callback (`on_connected`, or
/// `on_reconnect_attempt` after a failed dial): the session never gives up
/// until `sluice_session_stop`. Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID`
/// (no endpoint, `cbs->size`), `SLUICE_E_IO`; then no callback is called.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_connect(
    opts: *const sluice_session_options,
    cbs: *const sluice_session_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_session,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let o = unsafe { arg(opts, "opts") }?.opts.clone();
        if o.endpoints.is_empty() {
            return Err(Fail::invalid("a session needs at least one endpoint (sluice_session_options_add_endpoint)"));
        }
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let handle = sluice_session { tag: Tag::new(), session: OnceLock::new() };
        let se = handle::open(handle, cbs, cbs.on_release, userdata, |h| {
            Session::connect(o, move |se: &Session, ev: SessionEvent| crate::guard::contain(|| deliver(&h, se, ev)))
        })
        .map_err(|e| Fail::io("connect", &e))?;
        Ok(se)
    })
}

/// Stops for good: no more reconnections, the connection is closed
/// gracefully, no callback starts after this returns. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_stop(s: *mut sluice_session) -> c_int {
    handle::close(s)
}

/// Stops the session (as `sluice_session_stop`) and releases the handle.
/// NULL is a no-op. May be called from inside its own callbacks.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_free(s: *mut sluice_session) {
    handle::free(s)
}

/// Cuts the current connection as if it had failed with `err`; the session
/// reconnects (and resumes) as after any loss. No-op while disconnected.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_disconnect(s: *mut sluice_session, err: c_int) -> c_int {
    handle::with(s, |se| {
        se.disconnect(err);
        Ok(())
    })
}

/// 1 into `*out` if a connection is up and usable now, else 0.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_is_connected(s: *const sluice_session, out: *mut c_int) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    handle::with(s, |se| unsafe { put(out, c_int::from(se.is_connected()), "out") })
}

/// The id for a new channel opened by this side (one above every id sent
/// or received, across connections), into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_next_session(s: *const sluice_session, out: *mut u64) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    handle::with(s, |se| unsafe { put(out, se.next_session(), "out") })
}

/// Resume: the number of frames delivered to the callbacks so far (across
/// connections), into `*out`; 0 without resume.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_received(s: *const sluice_session, out: *mut u64) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    handle::with(s, |se| unsafe { put(out, se.received(), "out") })
}

// Sends. Without resume they go on the current connection and fail with
// SLUICE_E_CLOSED while none is up; with resume they are kept until the peer
// acknowledges them (SLUICE_E_WOULD_BLOCK while max_unacked bytes wait).
// SLUICE_E_CLOSED after sluice_session_stop. Bytes are copied.

/// Sends a chunk on `session` (v0 `chunk`, v1 `write`). Without resume:
/// `SLUICE_E_CLOSED` while disconnected, `SLUICE_E_WOULD_BLOCK` at the high
/// watermark. With resume: kept and (re)sent until acknowledged,
/// `SLUICE_E_WOULD_BLOCK` while `max_unacked` bytes wait (then
/// `on_drain`). `SLUICE_E_CLOSED` after `sluice_session_stop`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_send_chunk(s: *mut sluice_session, session: u64, data: *const u8, len: usize) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    handle::with(s, |se| unsafe { send::chunk(se, session, data, len) })
}

/// Sends a chunk whose bytes are a payload, without a copy. Result codes as
/// `sluice_session_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_send_chunk_payload(s: *mut sluice_session, session: u64, payload: *const sluice_payload) -> c_int {
    // SAFETY: NULL or a live payload, per the C contract.
    handle::with(s, |se| unsafe { send::payload(se, session, payload) })
}

/// Sends the end of this side's direction of `session` (v0 `choke`, v1
/// `close`). Result codes as `sluice_session_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_send_choke(s: *mut sluice_session, session: u64) -> c_int {
    handle::with(s, |se| send::message(se, session, Message::Choke))
}

/// Sends `error` on `session` (as `sluice_channel_send_error`). Result
/// codes as `sluice_session_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_send_error(
    s: *mut sluice_session,
    session: u64,
    category: i64,
    code: i64,
    msg: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    handle::with(s, |se| unsafe { send::error(se, session, Some(category), code, msg, len, false) })
}

/// Sends a generic frame (as `sluice_channel_send_frame`: `args_msgpack`
/// is one msgpack array, NULL with `len` 0 for `[]`; `SLUICE_E_INVALID`
/// otherwise). Result codes as `sluice_session_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_send_frame(
    s: *mut sluice_session,
    session: u64,
    type_id: u64,
    args_msgpack: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    handle::with(s, |se| unsafe { send::frame(se, session, type_id, args_msgpack, len) })
}

/// Poll delivery: the descriptor that is readable while events wait
/// (level-triggered; the same across reconnections). -1 for inline
/// delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_fd(s: *const sluice_session) -> c_int {
    handle::fd(s)
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on
/// this thread (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own callback.
#[no_mangle]
pub unsafe extern "C" fn sluice_session_dispatch(s: *mut sluice_session, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(s, max, ran)
}
