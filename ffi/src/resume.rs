//! `sluice_resume_server` and its peers: the server side of resumable
//! sessions. Each client (a `sluice_session` with resume) is a peer, named
//! by an id the handle gives it at its first connection and keeps until
//! `on_peer_gone`; its stream survives reconnections.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use sluice_core::host::{Event, IntoEvent, Source};
use sluice_core::roles::{Peer, ResumeEvent, ResumeServer, ResumeServerOptions};
use sluice_core::wire::Message;

use crate::guard::{
    arg, assign, contain, copy_out, edit, endpoint_arg, free_box, guard, make, make_box, put, Fail, Res, SLUICE_E_NO_SESSION,
};
use crate::handle::{self, call, object, Host, Tag};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::roles::{ms, sized_callbacks};
use crate::send;
use crate::session::resume_options;

/// How a resume server listens and keeps its peers. Made by
/// `sluice_resume_server_options_new`, released by
/// `sluice_resume_server_options_free`; copied by `sluice_resume_server_bind`.
#[allow(non_camel_case_types)]
pub struct sluice_resume_server_options {
    opts: ResumeServerOptions,
}

/// Options for a resume server on `endpoint` (as for `sluice_server_bind`):
/// channel defaults with no role, replay buffer 8 MiB, acknowledgements
/// every 256 frames or 1 MiB, peers forgotten 60 s after their connection
/// is gone, connections without a hello cut after 10 s. Into `*out` (NULL
/// on failure). Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (endpoint).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_new(endpoint: *const c_char, out: *mut *mut sluice_resume_server_options) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let ep = unsafe { endpoint_arg(endpoint, "endpoint") }?;
        let opts = ResumeServerOptions::new(ep, sluice_options::with_default_role(std::ptr::null(), None));
        Ok(sluice_resume_server_options { opts })
    })
}

/// Releases resume server options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_free(opts: *mut sluice_resume_server_options) {
    free_box(opts)
}

/// Sets the accepted channels' settings from `channel` (copied; NULL: the
/// defaults; role none unless set). Its delivery mode says how the server's
/// callbacks run (inline, or in `sluice_resume_server_dispatch`).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_channel(
    opts: *mut sluice_resume_server_options,
    channel: *const sluice_options,
) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.channel, Ok(sluice_options::with_default_role(channel, None))))
}

/// Sets the replay buffer bound and the acknowledgement rate, as
/// `sluice_session_options_set_resume` (0: the default).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_resume(
    opts: *mut sluice_resume_server_options,
    max_unacked: usize,
    ack_every: u64,
    ack_bytes: usize,
) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.resume, Ok(resume_options(max_unacked, ack_every, ack_bytes))))
}

/// Forget a peer (`on_peer_gone`) whose connection has been gone this many
/// milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_peer_timeout_ms(opts: *mut sluice_resume_server_options, v: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.peer_timeout, ms(v, "peer timeout")))
}

/// Cut (`ETIMEDOUT`) a connection whose first frame is not a hello within
/// this many milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_hello_timeout_ms(opts: *mut sluice_resume_server_options, v: u64) -> c_int {
    edit(opts, "opts", |o| assign(&mut o.opts.hello_timeout, ms(v, "hello timeout")))
}

// ---------------------------------------------------------------------------

/// Peers by id, and ids by token.
#[derive(Default)]
struct Peers {
    by_id: HashMap<u64, Peer>,
    ids: HashMap<Bytes, u64>,
    next: u64,
}

/// A server whose clients are resumable sessions. Opaque. Functions on it
/// and on its peers may be called from any thread and from inside any
/// callback; only `sluice_resume_server_free` must not race other calls on
/// the same handle.
#[allow(non_camel_case_types)]
pub struct sluice_resume_server {
    tag: Tag,
    server: OnceLock<ResumeServer>,
    peers: Mutex<Peers>,
}

/// A resume server's callbacks. Set `size` to
/// `sizeof(sluice_resume_server_callbacks)` (see "sized callbacks" at
/// `sluice_engine_callbacks`); any other member may be NULL. Copied by
/// `sluice_resume_server_bind`.
///
/// **Thread.** Inline delivery (the default): on a library I/O thread;
/// poll delivery: on the thread that calls `sluice_resume_server_dispatch`.
/// Never concurrently; the events of one peer arrive in stream order across
/// its connections, each frame exactly once.
///
/// **Arguments.** `peer` is the peer's id (for the `sluice_peer_*`
/// functions), valid from its `on_peer_connected` to its `on_peer_gone`.
/// Byte strings are valid only until the callback returns. Typed message
/// callbacks come only when the options set a role; without one every
/// frame reaches `on_frame`.
///
/// **Calling back.** Any sluice function, including
/// `sluice_resume_server_close`/`_free`; `sluice_resume_server_dispatch`
/// from inside returns `SLUICE_E_REENTRANT`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_resume_server_callbacks {
    /// `sizeof(sluice_resume_server_callbacks)`, set by the caller.
    pub size: usize,
    /// A peer connected: `resumed` 1 when it was known (its stream goes on,
    /// frames it missed are being sent again), 0 for a new peer.
    pub on_peer_connected: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, resumed: c_int)>,
    /// A peer's connection ended with `err`; its stream waits for it to
    /// come back until the peer timeout. Sends to it are still accepted.
    pub on_peer_disconnected: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, err: c_int)>,
    /// The peer did not come back in time: forgotten (its id too).
    pub on_peer_gone: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64)>,
    /// A frame from `peer` (every frame without a role).
    pub on_frame: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            srv: *mut sluice_resume_server,
            peer: u64,
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
            srv: *mut sluice_resume_server,
            peer: u64,
            session: u64,
            data: *const u8,
            len: usize,
            payload: *const sluice_payload,
        ),
    >,
    /// With a role: the peer's direction of `session` ended.
    pub on_choke: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, session: u64)>,
    /// With a role: an error on `session`.
    pub on_error: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            srv: *mut sluice_resume_server,
            peer: u64,
            session: u64,
            has_category: c_int,
            category: i64,
            code: i64,
            msg: *const u8,
            len: usize,
        ),
    >,
    /// With role worker: an invoke.
    pub on_invoke: Option<
        unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, session: u64, event: *const u8, len: usize),
    >,
    /// With role engine: a handshake.
    pub on_handshake:
        Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, uuid: *const u8, len: usize)>,
    /// With a role: a heartbeat.
    pub on_heartbeat: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64)>,
    /// With a role: a terminate.
    pub on_terminate: Option<
        unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64, code: i64, reason: *const u8, len: usize),
    >,
    /// The peer's replay buffer has room again after a refused send.
    pub on_drain: Option<unsafe extern "C" fn(userdata: *mut c_void, srv: *mut sluice_resume_server, peer: u64)>,
    /// The library will never call this callbacks set again: `userdata` may
    /// be freed. Exactly once for every successful
    /// `sluice_resume_server_bind`, after the last other callback returned:
    /// in `sluice_resume_server_close`/`_free`, or on an I/O thread shortly
    /// after.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

object!(sluice_resume_server, server: ResumeServer, "srv", c"the server is still starting");

impl Peers {
    /// The id of `peer`, given at its first event; forgotten when it is gone.
    fn id(&mut self, peer: &Peer, gone: bool) -> u64 {
        let id = match self.ids.get(peer.token()) {
            Some(&id) => id,
            None => {
                self.next += 1;
                self.ids.insert(peer.token().clone(), self.next);
                self.by_id.insert(self.next, peer.clone());
                self.next
            }
        };
        if gone {
            self.ids.remove(peer.token());
            self.by_id.remove(&id);
        }
        id
    }
}

fn deliver(host: &Host<sluice_resume_server, sluice_resume_server_callbacks>, server: &ResumeServer, event: ResumeEvent) {
    let Some(shared) = host.enter(server) else { return };
    let (srv, ud, c) = (Arc::as_ptr(&shared).cast_mut(), host.ud.0, &host.cbs);
    let (Source::Peer(peer), event) = event.into_event() else { return };
    let id = shared.peers.lock().unwrap_or_else(|e| e.into_inner()).id(&peer, matches!(event, Event::Gone));
    // SAFETY (every call): the user's callbacks and data; each pointer
    // lives in `event` or `shared` for the call.
    unsafe {
        match event {
            Event::Connected { resumed, .. } => call!(c.on_peer_connected, ud, srv, id, c_int::from(resumed)),
            Event::Disconnected { errno, .. } => call!(c.on_peer_disconnected, ud, srv, id, errno),
            Event::Gone => call!(c.on_peer_gone, ud, srv, id),
            Event::Frame(frame) => call!(c.on_frame, ud, srv, id, frame.session, frame.ty; bytes frame.args.raw()),
            Event::Drain => call!(c.on_drain, ud, srv, id),
            Event::Message { session, message, .. } => match message {
                Message::Chunk { data } => call!(c.on_chunk, ud, srv, id, session; chunk data),
                Message::Choke => call!(c.on_choke, ud, srv, id, session),
                Message::Error { category, code, message } => call!(c.on_error, ud, srv, id, session; error category, code, message),
                Message::Invoke { event } => call!(c.on_invoke, ud, srv, id, session; bytes event),
                Message::Handshake { uuid } => call!(c.on_handshake, ud, srv, id; bytes uuid),
                Message::Heartbeat => call!(c.on_heartbeat, ud, srv, id),
                Message::Terminate { code, reason } => call!(c.on_terminate, ud, srv, id, code; bytes reason),
            },
            _ => {}
        }
    }
}

fn on_peer(srv: *const sluice_resume_server, peer: u64, f: impl FnOnce(&Peer) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let h = unsafe { handle::live(srv) }?;
        let p = h.peers.lock().unwrap_or_else(|e| e.into_inner()).by_id.get(&peer).cloned();
        f(&p.ok_or_else(|| Fail::new(SLUICE_E_NO_SESSION, format!("no peer {peer} (never connected, or gone)")))?)
    })
}

/// Listens and returns the server in `*out` (NULL on failure). `opts` is
/// required and copied; `cbs` (copied; NULL for none) and `userdata`: see
/// `sluice_resume_server_callbacks`. Errors: `SLUICE_E_NULL`,
/// `SLUICE_E_INVALID` (`cbs->size`), `SLUICE_E_IO`; then no callback is
/// called, not even `on_release`.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_bind(
    opts: *const sluice_resume_server_options,
    cbs: *const sluice_resume_server_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_resume_server,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let o = unsafe { arg(opts, "opts") }?.opts.clone();
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let ep = o.endpoint.clone();
        let handle = sluice_resume_server { tag: Tag::new(), server: OnceLock::new(), peers: Mutex::new(Peers::default()) };
        let s = handle::open(handle, cbs, cbs.on_release, userdata, |h| {
            ResumeServer::bind(o, move |s: &ResumeServer, ev: ResumeEvent| contain(|| deliver(&h, s, ev)))
        })
        .map_err(|e| Fail::io(&format!("bind {ep}"), &e))?;
        Ok(s)
    })
}

/// Writes where the server listens, NUL-terminated, into `buf` (`cap`
/// bytes); full length to `*len` (may be NULL); `SLUICE_E_BUFFER` if
/// truncated.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_endpoint(
    srv: *const sluice_resume_server,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: NULL or valid pointers, per the C contract.
    handle::with(srv, |s| unsafe { copy_out(&s.local().to_string(), buf, cap, len) })
}

/// Stops listening, closes every connection and forgets every peer; no
/// callback starts after this returns. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_close(srv: *mut sluice_resume_server) -> c_int {
    handle::close(srv)
}

/// Closes the server (as `sluice_resume_server_close`) and releases the
/// handle. NULL is a no-op. May be called from inside its own callbacks.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_free(srv: *mut sluice_resume_server) {
    handle::free(srv)
}

/// Poll delivery: the descriptor that is readable while events wait
/// (level-triggered). -1 for inline delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_fd(srv: *const sluice_resume_server) -> c_int {
    handle::fd(srv)
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on this
/// thread (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own callback.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_dispatch(srv: *mut sluice_resume_server, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(srv, max, ran)
}

// Peer sends: kept in the peer's replay buffer until it acknowledges them and
// sent again after a reconnection if needed; accepted while the peer is
// disconnected. SLUICE_E_WOULD_BLOCK while max_unacked bytes wait (then
// on_drain), SLUICE_E_CLOSED once the peer is gone or the server closed,
// SLUICE_E_NO_SESSION for an unknown peer id.

/// Sends a chunk to `peer` on `session`; copied. Result codes:
/// `SLUICE_E_WOULD_BLOCK` (replay buffer full: wait for `on_drain`),
/// `SLUICE_E_CLOSED` (the peer is gone), `SLUICE_E_NO_SESSION` (unknown
/// peer id). Accepted while the peer is disconnected: sent when it is back.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send_chunk(
    srv: *mut sluice_resume_server,
    peer: u64,
    session: u64,
    data: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    on_peer(srv, peer, |p| unsafe { send::chunk(p, session, data, len) })
}

/// Sends a chunk whose bytes are a payload, without a copy. Result codes
/// as `sluice_peer_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send_chunk_payload(
    srv: *mut sluice_resume_server,
    peer: u64,
    session: u64,
    payload: *const sluice_payload,
) -> c_int {
    // SAFETY: NULL or a live payload, per the C contract.
    on_peer(srv, peer, |p| unsafe { send::payload(p, session, payload) })
}

/// Sends the end of this side's direction of `session` (v0 `choke`, v1
/// `close`). Result codes as `sluice_peer_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send_choke(srv: *mut sluice_resume_server, peer: u64, session: u64) -> c_int {
    on_peer(srv, peer, |p| send::message(p, session, Message::Choke))
}

/// Sends a generic frame (as `sluice_channel_send_frame`). Result codes
/// as `sluice_peer_send_chunk`, and `SLUICE_E_INVALID` for bad
/// `args_msgpack`.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send_frame(
    srv: *mut sluice_resume_server,
    peer: u64,
    session: u64,
    type_id: u64,
    args_msgpack: *const u8,
    len: usize,
) -> c_int {
    // SAFETY: NULL or `len` readable bytes, per the C contract.
    on_peer(srv, peer, |p| unsafe { send::frame(p, session, type_id, args_msgpack, len) })
}

/// Cuts `peer`'s current connection (it reconnects and resumes);
/// `on_peer_disconnected` follows with `err`. No-op while it is
/// disconnected.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_disconnect(srv: *mut sluice_resume_server, peer: u64, err: c_int) -> c_int {
    on_peer(srv, peer, |p| {
        p.disconnect(err);
        Ok(())
    })
}

/// 1 into `*out` if `peer` has a connection now, else 0.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_is_connected(srv: *const sluice_resume_server, peer: u64, out: *mut c_int) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    on_peer(srv, peer, |p| unsafe { put(out, c_int::from(p.is_connected()), "out") })
}

/// The number of frames received from `peer` so far (across its
/// connections), into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_received(srv: *const sluice_resume_server, peer: u64, out: *mut u64) -> c_int {
    // SAFETY: NULL or valid for a write, per the C contract.
    on_peer(srv, peer, |p| unsafe { put(out, p.received(), "out") })
}
