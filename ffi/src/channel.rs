//! `sluice_channel`: one connection carrying Cocaine frames, its callbacks
//! and its sends.
//!
//! Ownership: the handle the user gets is `Arc::into_raw` of a
//! [`sluice_channel`], which holds the core [`Channel`]. The core owns the
//! handler ([`CHandler`]), which holds only a `Weak` to the handle, so there
//! is no cycle: `sluice_channel_free` drops the user's reference, and the
//! handler (with the user's callbacks and userdata) goes when the core is
//! done with it, calling `on_release` exactly once.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use sluice_core::net::{Channel, Chunk, DispatchError, Endpoint, Event, Handler, SendError};
use sluice_core::wire::{Args, Message};

use crate::guard::{
    arg, bytes_arg, contain, guard, guard_or, put, str_arg, Fail, Res, SLUICE_E_CLOSED, SLUICE_E_NOT_POLLED, SLUICE_E_REENTRANT,
    SLUICE_E_STATE, SLUICE_E_WOULD_BLOCK,
};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::release::{Release, Ud};

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

/// Receives the core's events for one channel and calls the C callbacks.
pub(crate) struct CHandler {
    shared: Weak<sluice_channel>,
    /// The handle, held through a run of chunks (see `on_chunk`) and let go
    /// at its end.
    held: Option<Arc<sluice_channel>>,
    cbs: sluice_callbacks,
    ud: Ud,
    /// Calls `on_release` when the core drops the handler.
    _release: Release,
}

impl Handler for CHandler {
    fn on_event(&mut self, channel: &Channel, event: Event) {
        contain(|| self.deliver(channel, event));
    }

    fn on_chunk(&mut self, channel: &Channel, chunk: Chunk<'_>) {
        let Some(f) = self.cbs.on_chunk else { return };
        // The handle is taken once per run of chunks rather than per
        // chunk: a callback that frees it closes the channel, which ends
        // the run, and the handle goes in `on_batch_end`.
        if self.held.is_none() {
            // Freed by its owner: nothing more is delivered.
            let Some(shared) = self.shared.upgrade() else { return };
            shared.channel.get_or_init(|| channel.clone());
            self.held = Some(shared);
        }
        let Some(shared) = &self.held else { return };
        let ch = Arc::as_ptr(shared).cast_mut();
        let ud = self.ud.0;
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
        let Some(shared) = self.shared.upgrade() else { return };
        shared.channel.get_or_init(|| channel.clone());
        let ch = Arc::as_ptr(&shared).cast_mut();
        let ud = self.ud.0;
        let c = &self.cbs;
        // SAFETY (every call below): the user's own callbacks with the
        // user's own data; each pointer passed is valid for the call (the
        // bytes live in `event`, the handle in `shared`).
        unsafe {
            match event {
                Event::Connected => {
                    if let Some(f) = c.on_connect {
                        f(ud, ch)
                    }
                }
                Event::SocketError(errno) => {
                    if let Some(f) = c.on_socket_error {
                        f(ud, ch, errno)
                    }
                }
                Event::Drain => {
                    if let Some(f) = c.on_drain {
                        f(ud, ch)
                    }
                }
                Event::Frame(frame) => {
                    if let Some(f) = c.on_frame {
                        let a = frame.args.raw();
                        f(ud, ch, frame.session, frame.ty, a.as_ptr(), a.len())
                    }
                }
                Event::Message { session, message, .. } => match message {
                    Message::Handshake { uuid } => {
                        if let Some(f) = c.on_handshake {
                            f(ud, ch, uuid.as_ptr(), uuid.len())
                        }
                    }
                    Message::Heartbeat => {
                        if let Some(f) = c.on_heartbeat {
                            f(ud, ch)
                        }
                    }
                    Message::Terminate { code, reason } => {
                        if let Some(f) = c.on_terminate {
                            f(ud, ch, session, code, reason.as_ptr(), reason.len())
                        }
                    }
                    Message::Invoke { event } => {
                        if let Some(f) = c.on_invoke {
                            f(ud, ch, session, event.as_ptr(), event.len())
                        }
                    }
                    Message::Chunk { data } => {
                        if let Some(f) = c.on_chunk {
                            let chunk = Chunk::new(session, &data, &[]);
                            // SAFETY: `p` lives on this stack, as `chunk` does.
                            let p = sluice_payload::lent(&chunk);
                            let d = p.slice();
                            f(ud, ch, session, d.as_ptr(), d.len(), &p)
                        }
                    }
                    Message::Choke => {
                        if let Some(f) = c.on_choke {
                            f(ud, ch, session)
                        }
                    }
                    Message::Error { category, code, message } => {
                        if let Some(f) = c.on_error {
                            let (m, n) = message.as_ref().map_or((std::ptr::null(), 0), |m| (m.as_ptr(), m.len()));
                            f(ud, ch, session, c_int::from(category.is_some()), category.unwrap_or(0), code, m, n)
                        }
                    }
                },
            }
        }
        // If the callback freed the channel, the handle goes here, after it
        // returned.
        drop(shared);
    }
}

/// Creates the handle and its handler, starts the core channel with
/// `start`, and returns the user's pointer. Shared by connect and accept.
pub(crate) fn open(
    cbs: sluice_callbacks,
    userdata: *mut c_void,
    start: impl FnOnce(CHandler) -> std::io::Result<Channel>,
) -> std::io::Result<*mut sluice_channel> {
    let shared = Arc::new(sluice_channel { channel: OnceLock::new() });
    let (release, arming) = Release::new(cbs.on_release, Ud(userdata));
    let handler = CHandler { shared: Arc::downgrade(&shared), held: None, cbs, ud: Ud(userdata), _release: release };
    // The user's reference exists before any callback can run: a callback
    // that frees the channel before this call returns releases this one.
    let user = Arc::into_raw(Arc::clone(&shared)).cast_mut();
    match start(handler) {
        Ok(channel) => {
            shared.channel.get_or_init(|| channel);
            drop(shared);
            arming.arm();
            Ok(user)
        }
        Err(e) => {
            arming.fail();
            // SAFETY: the reference made above, never handed out.
            drop(unsafe { Arc::from_raw(user) });
            Err(e)
        }
    }
}

/// The core channel behind a handle.
///
/// # Safety
/// `ch` is NULL or a live handle.
unsafe fn channel<'a>(ch: *const sluice_channel) -> Res<&'a Channel> {
    // SAFETY: per the contract.
    let s = unsafe { arg(ch, "ch") }?;
    s.channel.get().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the channel is still starting"))
}

fn sent(r: Result<(), SendError>) -> Res {
    match r {
        Ok(()) => Ok(()),
        Err(SendError::WouldBlock) => {
            Err(Fail::fixed(SLUICE_E_WOULD_BLOCK, c"the send queue is at its high watermark (would block): wait for on_drain"))
        }
        Err(SendError::Closed) => Err(Fail::fixed(SLUICE_E_CLOSED, c"the channel is closed")),
    }
}

fn control_session(ch: &Channel) -> u64 {
    ch.config().dialect.control_session()
}

/// Runs a send (or another call) on a channel handle. (The core may write
/// to the socket from this thread; its writes never raise SIGPIPE.)
fn send_on(ch: *const sluice_channel, f: impl FnOnce(&Channel) -> Res) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard(|| f(unsafe { channel(ch) }?))
}

/// Copies (pointer, length) bytes into an owned buffer.
///
/// # Safety
/// As [`bytes_arg`].
unsafe fn copied(p: *const u8, len: usize, what: &str) -> Res<Bytes> {
    // SAFETY: per the contract.
    Ok(Bytes::copy_from_slice(unsafe { bytes_arg(p, len, what) }?))
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
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let text = unsafe { str_arg(endpoint, "endpoint") }?;
        let ep = Endpoint::parse(text)
            .ok_or_else(|| Fail::invalid(format!("endpoint {text:?} is not host:port, [v6]:port, /path or unix:path")))?;
        let config = sluice_options::for_connect(opts);
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
        let ch = open(cbs, userdata, |h| Channel::connect(ep, config, h)).map_err(|e| Fail::io("connect", &e))?;
        unsafe { put(out, ch, "out") }
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
    send_on(ch, |c| {
        c.close();
        Ok(())
    })
}

/// Closes at once, dropping whatever is queued. Otherwise as
/// `sluice_channel_close`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_abort(ch: *mut sluice_channel) -> c_int {
    send_on(ch, |c| {
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
    guard_or((), || {
        if ch.is_null() {
            return;
        }
        // SAFETY: a handle from connect/start, released once by its owner.
        let shared = unsafe { Arc::from_raw(ch.cast_const()) };
        if let Some(c) = shared.channel.get() {
            c.close();
        }
        drop(shared);
    })
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
    send_on(ch, |c| sent(c.send_raw(unsafe { copied(data, len, "data") }?)))
}

/// Queues a chunk on `session` (v0 `chunk`, v1 `write`).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_chunk(ch: *mut sluice_channel, session: u64, data: *const u8, len: usize) -> c_int {
    // SAFETY: `data` is NULL or `len` readable bytes, per the C contract.
    send_on(ch, |c| sent(c.send_chunk(session, &unsafe { copied(data, len, "data") }?)))
}

/// Queues a chunk on `session` whose bytes are a payload (borrowed in
/// `on_chunk`, or owned): large payloads are written from the shared bytes
/// without a copy. The caller keeps its own reference: an owned payload is
/// still freed by the caller.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_chunk_payload(ch: *mut sluice_channel, session: u64, payload: *const sluice_payload) -> c_int {
    send_on(ch, |c| {
        // SAFETY: NULL or a live payload, per the C contract.
        let p = unsafe { arg(payload, "payload") }?;
        sent(c.send_chunk(session, &p.to_bytes()))
    })
}

/// Queues the end of this side's direction of `session` (v0 `choke`, v1
/// `close`).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_choke(ch: *mut sluice_channel, session: u64) -> c_int {
    send_on(ch, |c| sent(c.send(session, &Message::Choke)))
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
    send_on(ch, |c| {
        // SAFETY: `msg` is NULL or `len` readable bytes, per the C contract.
        let message = if msg.is_null() && len == 0 { None } else { Some(unsafe { copied(msg, len, "msg") }?) };
        sent(c.send(session, &Message::Error { category: Some(category), code, message }))
    })
}

/// Queues `terminate(code, reason)` on the control session, chosen by the
/// dialect (v0 session 0, v1 channel 1): the only session terminate
/// belongs to. (The old native channel's `sendTerminate(sid, ...)` took a
/// session; send raw bytes with `sluice_channel_send` for anything else.)
/// v0 codes: 1 normal, 2 abnormal.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_terminate(ch: *mut sluice_channel, code: i64, reason: *const u8, len: usize) -> c_int {
    send_on(ch, |c| {
        // SAFETY: `reason` is NULL or `len` readable bytes, per the C contract.
        let reason = unsafe { copied(reason, len, "reason") }?;
        sent(c.send(control_session(c), &Message::Terminate { code, reason }))
    })
}

/// Queues a heartbeat on the control session (v0 session 0, v1 channel 1).
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_heartbeat(ch: *mut sluice_channel) -> c_int {
    send_on(ch, |c| sent(c.send(control_session(c), &Message::Heartbeat)))
}

/// Queues the worker's handshake with its uuid on the control session (v0
/// session 0, v1 channel 1). A worker sends it first, e.g. from
/// `on_connect`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_handshake(ch: *mut sluice_channel, uuid: *const u8, len: usize) -> c_int {
    send_on(ch, |c| {
        // SAFETY: `uuid` is NULL or `len` readable bytes, per the C contract.
        let uuid = unsafe { copied(uuid, len, "uuid") }?;
        sent(c.send(control_session(c), &Message::Handshake { uuid }))
    })
}

/// Engine: queues `invoke(event)`, opening `session` (take it from
/// `sluice_channel_next_session`); the worker's answers on it are then
/// delivered as messages.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_send_invoke(ch: *mut sluice_channel, session: u64, event: *const u8, len: usize) -> c_int {
    send_on(ch, |c| {
        // SAFETY: `event` is NULL or `len` readable bytes, per the C contract.
        let event = unsafe { copied(event, len, "event") }?;
        sent(c.send(session, &Message::Invoke { event }))
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
    send_on(ch, |c| {
        let args = if len == 0 {
            Args::empty()
        } else {
            // SAFETY: `args_msgpack` is NULL or `len` readable bytes.
            let raw = unsafe { copied(args_msgpack, len, "args_msgpack") }?;
            Args::from_raw(raw).map_err(|e| Fail::invalid(format!("args_msgpack is not one msgpack array: {e}")))?
        };
        sent(c.send_frame(session, type_id, &args, &[]))
    })
}

/// The id for a new session opened by this side (an engine's invoke, a
/// client's call): one above the highest id seen in either direction, at
/// least 2 (1 is the v1 control channel). Written to `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_next_session(ch: *const sluice_channel, out: *mut u64) -> c_int {
    // SAFETY: `out` is NULL or valid for a write, per the C contract.
    send_on(ch, |c| unsafe { put(out, c.next_session(), "out") })
}

/// The number of bytes queued and not yet written, into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_queued(ch: *const sluice_channel, out: *mut usize) -> c_int {
    // SAFETY: `out` is NULL or valid for a write, per the C contract.
    send_on(ch, |c| unsafe { put(out, c.queued(), "out") })
}

// ---------------------------------------------------------------------------
// Poll delivery

/// Poll delivery: the file descriptor that is readable while events wait
/// (level-triggered; poll it for reading, never read it). -1 if the channel
/// delivers inline or `ch` is NULL. Owned by the channel: do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_fd(ch: *const sluice_channel) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(-1, || unsafe { channel(ch) }.ok().and_then(|c| c.fd()).unwrap_or(-1))
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on
/// this thread (pass `SIZE_MAX` for all); the number run goes to `*ran`
/// (may be NULL). `SLUICE_E_NOT_POLLED` for an inline channel,
/// `SLUICE_E_REENTRANT` from inside this channel's own callback or while
/// another thread dispatches it. A callback may free the channel: the
/// handle stays valid until this call returns.
#[no_mangle]
pub unsafe extern "C" fn sluice_channel_dispatch(ch: *mut sluice_channel, max: usize, ran: *mut usize) -> c_int {
    guard(|| {
        if !ran.is_null() {
            // SAFETY: valid for a write, per the C contract.
            unsafe { ran.write(0) };
        }
        // SAFETY: NULL or a live handle, per the C contract.
        unsafe { arg(ch.cast_const(), "ch") }?;
        // Hold a reference while callbacks run: one of them may free `ch`.
        // SAFETY: a live handle made by Arc::into_raw.
        let keep = unsafe {
            Arc::increment_strong_count(ch.cast_const());
            Arc::from_raw(ch.cast_const())
        };
        let c = keep.channel.get().cloned().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the channel is still starting"))?;
        let n = c.dispatch(max).map_err(|e| match e {
            DispatchError::NotPolled => Fail::fixed(SLUICE_E_NOT_POLLED, c"the channel delivers inline, not by dispatch"),
            DispatchError::Reentrant => Fail::fixed(
                SLUICE_E_REENTRANT,
                c"dispatch called from inside the channel's own callback (or while another thread dispatches it)",
            ),
        })?;
        if !ran.is_null() {
            // SAFETY: as above.
            unsafe { ran.write(n) };
        }
        Ok(())
    })
}
