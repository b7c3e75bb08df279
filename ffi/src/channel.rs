//! `sluice_channel`: one connection carrying Cocaine frames, its callbacks
//! and its sends.
//!
//! Ownership and life cycle: see `handle`; the channel's handler is a
//! [`CHandler`] around its `Host`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use sluice_core::net::{Channel, Chunk, Event, Handler};
use sluice_core::wire::Message;

use crate::guard::{contain, endpoint_arg, make, put, Fail};
use crate::handle::{self, call, object, Host, Tag};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::send::{self, copied};

/// A connection carrying Cocaine frames: a channel you connected
/// (`sluice_channel_connect`) or one a server accepted
/// (`sluice_incoming_start`). Opaque.
///
/// Every function on a channel may be called from any thread, including
/// from inside any callback; only `sluice_channel_free` must not race
/// other calls on the same handle. The handle stays valid until
/// `sluice_channel_free`, whatever happens to the connection.
#[allow(non_camel_case_types)]
pub struct sluice_channel {
    tag: Tag,
    /// Set by the first callback or when the creating call returns,
    /// whichever comes first: both see the same core channel.
    channel: OnceLock<Channel>,
}

/// A channel's callbacks. Any member may be NULL: that event is then
/// ignored. The struct is copied by the call that takes it.
///
/// **Thread.** With inline delivery (the default) callbacks run on a
/// library I/O thread, possibly before the call that created the channel
/// has returned; with poll delivery they run on the thread that calls
/// `sluice_channel_dispatch`. Either way the callbacks of one channel never
/// run concurrently with each other and arrive in wire order. An I/O
/// thread serves many channels: do not block in a callback.
///
/// **Arguments.** `userdata` is the pointer given with the callbacks. `ch`
/// is the same handle the creating call returns. Byte strings (`uuid`,
/// `event`, `reason`, `msg`, `data`, `args_msgpack`) are (pointer, length)
/// pairs, not NUL-terminated, borrowed from the library and valid only
/// until the callback returns (use `sluice_payload_retain` to keep a
/// chunk). Ids are v0 session / v1 channel ids.
///
/// **Calling back.** A callback may call any sluice function: send on any
/// channel, close or free any channel including `ch` (the handle stays
/// valid until the callback returns; no callback of `ch` follows a close).
/// `sluice_channel_dispatch(ch, ...)` from inside a callback of `ch`
/// returns `SLUICE_E_REENTRANT`. A callback may also create channels and
/// servers (`sluice_channel_connect` from an I/O thread works as from any
/// other). Sends from `on_socket_error` return `SLUICE_E_CLOSED`.
/// `on_release` must not use the channel's handle. Callbacks must not
/// unwind (C++ exceptions, longjmp) out into the library.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_callbacks {
    /// The connection is established (also the first event of an accepted
    /// channel). Sends made before it are queued and written now.
    pub on_connect: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel)>,
    /// The connection ended with this errno (Linux numbering, see
    /// `SLUICE_ECONNREFUSED`... and docs/PROTOCOL.md §8.3): after every
    /// complete frame was delivered, exactly once, as the last event,
    /// unless the channel was closed first. Sends fail with
    /// `SLUICE_E_CLOSED` from now.
    pub on_socket_error: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel, err: c_int)>,
    /// Engine role: the worker's handshake with its uuid.
    pub on_handshake: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel, uuid: *const u8, len: usize)>,
    /// A heartbeat (worker role: also the engine's heartbeat reply).
    pub on_heartbeat: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel)>,
    /// `terminate(code, reason)` on `session` (the control session: 0 in
    /// v0, 1 in v1). v0 codes: 1 normal, 2 abnormal.
    pub on_terminate: Option<
        unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel, session: u64, code: i64, reason: *const u8, len: usize),
    >,
    /// Worker role: the engine opens `session` for `event`.
    pub on_invoke: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel, session: u64, event: *const u8, len: usize)>,
    /// A chunk of `session`'s data (v0 `chunk`, v1 `write`). `data`/`len`
    /// are the bytes; `payload` is the same bytes as a borrowed
    /// `sluice_payload`: `sluice_payload_retain(payload)` keeps them past
    /// the callback without a copy, `sluice_channel_send_chunk_payload`
    /// forwards them without a copy.
    pub on_chunk: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            ch: *mut sluice_channel,
            session: u64,
            data: *const u8,
            len: usize,
            payload: *const sluice_payload,
        ),
    >,
    /// The peer's direction of `session` ends (v0 `choke`, v1 `close`).
    pub on_choke: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel, session: u64)>,
    /// `session` failed. v1 errors carry a category (`has_category` 1);
    /// v0 ones do not (`has_category` 0, `category` 0). `msg` is NULL with
    /// `len` 0 when the error has no message (allowed in v1).
    pub on_error: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            ch: *mut sluice_channel,
            session: u64,
            has_category: c_int,
            category: i64,
            code: i64,
            msg: *const u8,
            len: usize,
        ),
    >,
    /// A frame that is not a worker-protocol message: every frame on a
    /// channel with role `SLUICE_ROLE_NONE`; with a role, frames the
    /// protocol drops (unknown type id, unknown or finished session, bad
    /// arguments). `args_msgpack` is the msgpack encoding of the frame's
    /// argument array.
    pub on_frame: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            ch: *mut sluice_channel,
            session: u64,
            type_id: u64,
            args_msgpack: *const u8,
            len: usize,
        ),
    >,
    /// After a send returned `SLUICE_E_WOULD_BLOCK`: the send queue is down
    /// to the low watermark, sends are accepted again.
    pub on_drain: Option<unsafe extern "C" fn(userdata: *mut c_void, ch: *mut sluice_channel)>,
    /// The library will never call this callbacks set again: `userdata`
    /// may be freed. Called exactly once for every successful
    /// `sluice_channel_connect` / `sluice_incoming_start` (never when they
    /// fail), after the last other callback returned: when the connection
    /// has ended or been closed and no callback is running. It runs on
    /// whichever thread notices that: an I/O thread, or inside
    /// `sluice_channel_close` / `_abort` / `_free` / `_dispatch` of this
    /// channel (the handle may already be freed then; do not use it).
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

object!(sluice_channel, channel: Channel, "ch", c"the channel is still starting");

/// Receives the core's events for one channel and calls the C callbacks.
pub(crate) struct CHandler {
    host: Host<sluice_channel, sluice_callbacks>,
    /// The handle, held through a run of chunks (see `on_chunk`) and let go
    /// at its end.
    held: Option<Arc<sluice_channel>>,
}

impl Handler for CHandler {
    fn on_event(&mut self, channel: &Channel, event: Event) {
        contain(|| self.deliver(channel, event));
    }

    fn on_chunk(&mut self, channel: &Channel, chunk: Chunk<'_>) {
        let Some(f) = self.host.cbs.on_chunk else { return };
        // The handle is taken once per run of chunks rather than per
        // chunk: a callback that frees it closes the channel, which ends
        // the run, and the handle goes in `on_batch_end`. Freed by its
        // owner: nothing more is delivered.
        if self.held.is_none() {
            self.held = self.host.enter(channel);
        }
        let Some(shared) = &self.held else { return };
        let ch = Arc::as_ptr(shared).cast_mut();
        let ud = self.host.ud.0;
        contain(|| {
            // SAFETY: `p` does not outlive `chunk`, which this call owns.
            let p = unsafe { sluice_payload::lent(&chunk) };
            let d = p.slice();
            // SAFETY: the user's own callback with the user's own data; the
            // bytes and `p` live until it returns, the handle in `held`.
            unsafe { f(ud, ch, chunk.session(), d.as_ptr(), d.len(), &p) }
        });
    }

    fn on_batch_end(&mut self, _: &Channel) {
        // If a callback freed the channel, the handle goes here.
        self.held = None;
    }
}

impl CHandler {
    fn deliver(&self, channel: &Channel, event: Event) {
        // Freed by its owner: nothing more is delivered (a close came first).
        let Some(shared) = self.host.enter(channel) else { return };
        let (ch, ud, c) = (Arc::as_ptr(&shared).cast_mut(), self.host.ud.0, &self.host.cbs);
        // SAFETY (every call below): the user's own callbacks with the
        // user's own data; each pointer passed is valid for the call (the
        // bytes live in `event`, the handle in `shared`, which is dropped
        // after the callback returned: a callback may free the channel).
        unsafe {
            match event {
                Event::Connected => call!(c.on_connect, ud, ch),
                Event::SocketError(errno) => call!(c.on_socket_error, ud, ch, errno),
                Event::Drain => call!(c.on_drain, ud, ch),
                Event::Frame(frame) => call!(c.on_frame, ud, ch, frame.session, frame.ty; bytes frame.args.raw()),
                Event::Message { session, message, .. } => match message {
                    Message::Handshake { uuid } => call!(c.on_handshake, ud, ch; bytes uuid),
                    Message::Heartbeat => call!(c.on_heartbeat, ud, ch),
                    Message::Terminate { code, reason } => call!(c.on_terminate, ud, ch, session, code; bytes reason),
                    Message::Invoke { event } => call!(c.on_invoke, ud, ch, session; bytes event),
                    Message::Chunk { data } => call!(c.on_chunk, ud, ch, session; chunk data),
                    Message::Choke => call!(c.on_choke, ud, ch, session),
                    Message::Error { category, code, message } => call!(c.on_error, ud, ch, session; error category, code, message),
                },
                _ => {}
            }
        }
    }
}

/// Creates the handle and its handler, starts the core channel with
/// `start`, and returns the user's pointer. Shared by connect and accept.
pub(crate) fn open(
    cbs: sluice_callbacks,
    userdata: *mut c_void,
    start: impl FnOnce(CHandler) -> std::io::Result<Channel>,
) -> std::io::Result<*mut sluice_channel> {
    let handle = sluice_channel { tag: Tag::new(), channel: OnceLock::new() };
    handle::open(handle, cbs, cbs.on_release, userdata, |host| start(CHandler { host, held: None }))
}

fn control_session(ch: &Channel) -> u64 {
    ch.config().dialect.control_session()
}

// ---------------------------------------------------------------------------
// Life cycle

/// Connects to `endpoint` in the background and returns the new channel in
/// `*out` (NULL on failure).
///
/// `endpoint`: `"host:port"` (a name, an IPv4 literal), `"[v6]:port"`, a
/// Unix socket path (starting with `/` or `.`) or `"unix:PATH"`. `opts`:
/// NULL for the defaults (v1, worker role); copied. `cbs`: NULL for none;
/// copied. `userdata` is passed to every callback.
///
/// Returns `SLUICE_OK` once the connect has started: its outcome arrives as
/// `on_connect` or `on_socket_error` (e.g. `ECONNREFUSED`, `ENOENT`,
/// `ETIMEDOUT`), possibly on an I/O thread before this call returns.
/// Sends made before `on_connect` are queued. Failures here:
/// `SLUICE_E_NULL`, `SLUICE_E_INVALID` (endpoint), `SLUICE_E_IO` (the
/// runtime could not start); then no callback is ever called, not even
/// `on_release`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_connect(
    endpoint: *const c_char,
    opts: *const sluice_options,
    cbs: *const sluice_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_channel,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let ep = unsafe { endpoint_arg(endpoint, "endpoint") }?;
        let config = sluice_options::for_connect(opts);
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
        let ch = open(cbs, userdata, |h| Channel::connect(ep, config, h)).map_err(|e| Fail::io("connect", &e))?;
        Ok(ch)
    })
}

/// Closes gracefully: sends are refused from now on (`SLUICE_E_CLOSED`),
/// what is already queued is written, then the connection is shut down.
/// No callback of this channel starts after this call returns (one already
/// running on another thread finishes); `on_release` follows once none
/// runs. Idempotent; the handle stays valid until `sluice_channel_free`.
/// If the peer never reads, the connection stays until the peer goes:
/// `sluice_channel_abort` drops the queue at once.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_close(ch: *mut sluice_channel) -> c_int {
    handle::close(ch)
}

/// Closes at once, dropping whatever is queued. Otherwise as
/// `sluice_channel_close`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_abort(ch: *mut sluice_channel) -> c_int {
    handle::with(ch, |c| {
        c.abort();
        Ok(())
    })
}

/// Closes the channel gracefully (as `sluice_channel_close`) and releases
/// the handle. NULL is a no-op. May be called from inside the channel's own
/// callbacks: the handle stays valid until that callback returns. Also
/// from inside a callback of another channel, and from another thread while
/// a callback of this channel runs: that callback finishes with a valid
/// handle, no other starts, and `on_release` follows once (test_misuse.c).
/// Do not use the handle after this call; freeing it twice is undefined.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_free(ch: *mut sluice_channel) {
    handle::free(ch)
}

// ---------------------------------------------------------------------------
// Sends. Each returns SLUICE_OK when the message is queued, with
// SLUICE_E_WOULD_BLOCK when the queue is at its high watermark (nothing is
// queued; on_drain follows), SLUICE_E_CLOSED after a close or the end of the
// connection. Bytes given by pointer are copied before the call returns.

/// Queues pre-encoded bytes (whole frames) as they are. They do not update
/// the channel's session bookkeeping: an engine should open sessions with
/// `sluice_channel_send_invoke`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send(ch: *mut sluice_channel, data: *const u8, len: usize) -> c_int {
    // SAFETY: `data` is NULL or `len` readable bytes, per the C contract.
    handle::with(ch, |c| crate::guard::sent(c.send_raw(unsafe { copied(data, len, "data") }?)))
}

/// Queues a chunk on `session` (v0 `chunk`, v1 `write`).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_chunk(ch: *mut sluice_channel, session: u64, data: *const u8, len: usize) -> c_int {
    // SAFETY: `data` is NULL or `len` readable bytes, per the C contract.
    handle::with(ch, |c| unsafe { send::chunk(c, session, data, len) })
}

/// Queues a chunk on `session` whose bytes are a payload (borrowed in
/// `on_chunk`, or owned): large payloads are written from the shared bytes
/// without a copy. The caller keeps its own reference: an owned payload is
/// still freed by the caller.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_chunk_payload(ch: *mut sluice_channel, session: u64, payload: *const sluice_payload) -> c_int {
    // SAFETY: NULL or a live payload, per the C contract.
    handle::with(ch, |c| unsafe { send::payload(c, session, payload) })
}

/// Queues the end of this side's direction of `session` (v0 `choke`, v1
/// `close`).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_choke(ch: *mut sluice_channel, session: u64) -> c_int {
    handle::with(ch, |c| send::message(c, session, Message::Choke))
}

/// Queues `error` on `session`. v1: `[[category, code], msg]` (the
/// frameworks use category 42); `msg` NULL (with `len` 0) omits the
/// message. v0: `[code, msg]`, `category` is ignored and a NULL `msg` is
/// sent as "". In v0 the engine forgets a session only on `choke`: follow
/// the error with `sluice_channel_send_choke`; in v1 the error ends the
/// session.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_error(
    ch: *mut sluice_channel,
    session: u64,
    category: i64,
    code: i64,
    msg: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: `msg` is NULL or `len` readable bytes, per the C contract.
    handle::with(ch, |c| unsafe { send::error(c, session, Some(category), code, msg, len, false) })
}

/// Queues `terminate(code, reason)` on the control session, chosen by the
/// dialect (v0 session 0, v1 channel 1): the only session terminate
/// belongs to. (The old native channel's `sendTerminate(sid, ...)` took a
/// session; send raw bytes with `sluice_channel_send` for anything else.)
/// v0 codes: 1 normal, 2 abnormal.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_terminate(ch: *mut sluice_channel, code: i64, reason: *const u8, len: usize) -> c_int {
    handle::with(ch, |c| {
        // SAFETY: `reason` is NULL or `len` readable bytes, per the C contract.
        let reason = unsafe { copied(reason, len, "reason") }?;
        send::message(c, control_session(c), Message::Terminate { code, reason })
    })
}

/// Queues a heartbeat on the control session (v0 session 0, v1 channel 1).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_heartbeat(ch: *mut sluice_channel) -> c_int {
    handle::with(ch, |c| send::message(c, control_session(c), Message::Heartbeat))
}

/// Queues the worker's handshake with its uuid on the control session (v0
/// session 0, v1 channel 1). A worker sends it first, e.g. from
/// `on_connect`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_handshake(ch: *mut sluice_channel, uuid: *const u8, len: usize) -> c_int {
    handle::with(ch, |c| {
        // SAFETY: `uuid` is NULL or `len` readable bytes, per the C contract.
        let uuid = unsafe { copied(uuid, len, "uuid") }?;
        send::message(c, control_session(c), Message::Handshake { uuid })
    })
}

/// Engine: queues `invoke(event)`, opening `session` (take it from
/// `sluice_channel_next_session`); the worker's answers on it are then
/// delivered as messages.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_invoke(ch: *mut sluice_channel, session: u64, event: *const u8, len: usize) -> c_int {
    handle::with(ch, |c| {
        // SAFETY: `event` is NULL or `len` readable bytes, per the C contract.
        let event = unsafe { copied(event, len, "event") }?;
        send::message(c, session, Message::Invoke { event })
    })
}

/// Queues a generic frame `[session, type, args]` (v1) / `[type, session,
/// args]` (v0), e.g. a service call. `args_msgpack` must be exactly one
/// msgpack array (`SLUICE_E_INVALID` otherwise); NULL with `len` 0 sends
/// `[]`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_frame(
    ch: *mut sluice_channel,
    session: u64,
    type_id: u64,
    args_msgpack: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: `args_msgpack` is NULL or `len` readable bytes, per the C contract.
    handle::with(ch, |c| unsafe { send::frame(c, session, type_id, args_msgpack, len) })
}

/// The id for a new session opened by this side (an engine's invoke, a
/// client's call): one above the highest id seen in either direction, at
/// least 2 (1 is the v1 control channel). Written to `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_next_session(ch: *const sluice_channel, out: *mut u64) -> c_int {
    // SAFETY: `out` is NULL or valid for a write, per the C contract.
    handle::with(ch, |c| unsafe { put(out, c.next_session(), "out") })
}

/// The number of bytes queued and not yet written, into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_queued(ch: *const sluice_channel, out: *mut usize) -> c_int {
    // SAFETY: `out` is NULL or valid for a write, per the C contract.
    handle::with(ch, |c| unsafe { put(out, c.queued(), "out") })
}

// ---------------------------------------------------------------------------
// Poll delivery

/// Poll delivery: the file descriptor that is readable while events wait
/// (level-triggered; poll it for reading, never read it). -1 if the channel
/// delivers inline or `ch` is NULL. Owned by the channel: do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_fd(ch: *const sluice_channel) -> c_int {
    handle::fd(ch)
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on
/// this thread (pass `SIZE_MAX` for all); the number run goes to `*ran`
/// (may be NULL). `SLUICE_E_NOT_POLLED` for an inline channel,
/// `SLUICE_E_REENTRANT` from inside this channel's own callback or while
/// another thread dispatches it. A callback may free the channel: the
/// handle stays valid until this call returns.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_dispatch(ch: *mut sluice_channel, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(ch, max, ran)
}
