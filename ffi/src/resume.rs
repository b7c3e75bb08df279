//! `sluice_resume_server` and its peers: the server side of resumable
//! sessions. Each client (a `sluice_session` with resume) is a peer, named
//! by an id the handle gives it at its first connection and keeps until
//! `on_peer_gone`; its stream survives reconnections.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use sluice_core::net::Endpoint;
use sluice_core::roles::{Peer, ResumeEvent, ResumeServer, ResumeServerOptions};
use sluice_core::wire::Message;

use crate::guard::{
    arg, arg_mut, bytes_arg, contain, copy_out, guard, guard_or, put, str_arg, Fail, Res, SLUICE_E_NO_SESSION, SLUICE_E_STATE,
};
use crate::options::sluice_options;
use crate::payload::sluice_payload;
use crate::release::{Release, Ud};
use crate::roles::{ms, opt_bytes, put_opt, sent, sized_callbacks};
use crate::session::{args_arg, resume_options};
use crate::worker::dispatch_error;

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
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let text = unsafe { str_arg(endpoint, "endpoint") }?;
        let ep = Endpoint::parse(text)
            .ok_or_else(|| Fail::invalid(format!("endpoint {text:?} is not host:port, [v6]:port, /path or unix:path")))?;
        let opts = ResumeServerOptions::new(ep, sluice_options::with_default_role(std::ptr::null(), None));
        unsafe { put(out, Box::into_raw(Box::new(sluice_resume_server_options { opts })), "out") }
    })
}

/// Releases resume server options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_free(opts: *mut sluice_resume_server_options) {
    guard_or((), || {
        if !opts.is_null() {
            // SAFETY: a pointer from sluice_resume_server_options_new, freed once.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

fn set_r(opts: *mut sluice_resume_server_options, f: impl FnOnce(&mut ResumeServerOptions) -> Res) -> c_int {
    // SAFETY: NULL or a live pointer, per the C contract.
    guard(|| f(&mut unsafe { arg_mut(opts, "opts") }?.opts))
}

/// Sets the accepted channels' settings from `channel` (copied; NULL: the
/// defaults; role none unless set). Its delivery mode says how the server's
/// callbacks run (inline, or in `sluice_resume_server_dispatch`).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_channel(
    opts: *mut sluice_resume_server_options,
    channel: *const sluice_options,
) -> c_int {
    set_r(opts, |o| {
        o.channel = sluice_options::with_default_role(channel, None);
        Ok(())
    })
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
    set_r(opts, |o| {
        o.resume = resume_options(max_unacked, ack_every, ack_bytes);
        Ok(())
    })
}

/// Forget a peer (`on_peer_gone`) whose connection has been gone this many
/// milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_peer_timeout_ms(opts: *mut sluice_resume_server_options, v: u64) -> c_int {
    set_r(opts, |o| {
        o.peer_timeout = ms(v, "peer timeout")?;
        Ok(())
    })
}

/// Cut (`ETIMEDOUT`) a connection whose first frame is not a hello within
/// this many milliseconds (> 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_options_set_hello_timeout_ms(opts: *mut sluice_resume_server_options, v: u64) -> c_int {
    set_r(opts, |o| {
        o.hello_timeout = ms(v, "hello timeout")?;
        Ok(())
    })
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

struct RHandler {
    shared: Weak<sluice_resume_server>,
    cbs: sluice_resume_server_callbacks,
    ud: Ud,
    _release: Release,
}

impl RHandler {
    fn deliver(&self, server: &ResumeServer, event: ResumeEvent) {
        let Some(shared) = self.shared.upgrade() else { return };
        shared.server.get_or_init(|| server.clone());
        let srv = Arc::as_ptr(&shared).cast_mut();
        let (ud, c) = (self.ud.0, &self.cbs);
        let peer = match &event {
            ResumeEvent::PeerConnected { peer, .. }
            | ResumeEvent::PeerDisconnected { peer, .. }
            | ResumeEvent::PeerGone { peer }
            | ResumeEvent::Message { peer, .. }
            | ResumeEvent::Frame { peer, .. }
            | ResumeEvent::Drain { peer } => peer.clone(),
        };
        let id = {
            let mut p = shared.peers.lock().unwrap_or_else(|e| e.into_inner());
            let id = match p.ids.get(peer.token()) {
                Some(&id) => id,
                None => {
                    p.next += 1;
                    let id = p.next;
                    p.ids.insert(peer.token().clone(), id);
                    p.by_id.insert(id, peer.clone());
                    id
                }
            };
            if matches!(event, ResumeEvent::PeerGone { .. }) {
                p.ids.remove(peer.token());
                p.by_id.remove(&id);
            }
            id
        };
        // SAFETY (every call): the user's callbacks and data; each pointer
        // lives in `event` or `shared` for the call.
        unsafe {
            match event {
                ResumeEvent::PeerConnected { resumed, .. } => {
                    if let Some(f) = c.on_peer_connected {
                        f(ud, srv, id, c_int::from(resumed))
                    }
                }
                ResumeEvent::PeerDisconnected { errno, .. } => {
                    if let Some(f) = c.on_peer_disconnected {
                        f(ud, srv, id, errno)
                    }
                }
                ResumeEvent::PeerGone { .. } => {
                    if let Some(f) = c.on_peer_gone {
                        f(ud, srv, id)
                    }
                }
                ResumeEvent::Frame { frame, .. } => {
                    if let Some(f) = c.on_frame {
                        let a = frame.args.raw();
                        f(ud, srv, id, frame.session, frame.ty, a.as_ptr(), a.len())
                    }
                }
                ResumeEvent::Drain { .. } => {
                    if let Some(f) = c.on_drain {
                        f(ud, srv, id)
                    }
                }
                ResumeEvent::Message { session, message, .. } => match message {
                    Message::Chunk { data } => {
                        if let Some(f) = c.on_chunk {
                            let p = sluice_payload::borrowed(data);
                            f(ud, srv, id, session, p.slice().as_ptr(), p.slice().len(), &p)
                        }
                    }
                    Message::Choke => {
                        if let Some(f) = c.on_choke {
                            f(ud, srv, id, session)
                        }
                    }
                    Message::Error { category, code, message } => {
                        if let Some(f) = c.on_error {
                            let (m, n) = opt_bytes(&message);
                            f(ud, srv, id, session, c_int::from(category.is_some()), category.unwrap_or(0), code, m, n)
                        }
                    }
                    Message::Invoke { event } => {
                        if let Some(f) = c.on_invoke {
                            f(ud, srv, id, session, event.as_ptr(), event.len())
                        }
                    }
                    Message::Handshake { uuid } => {
                        if let Some(f) = c.on_handshake {
                            f(ud, srv, id, uuid.as_ptr(), uuid.len())
                        }
                    }
                    Message::Heartbeat => {
                        if let Some(f) = c.on_heartbeat {
                            f(ud, srv, id)
                        }
                    }
                    Message::Terminate { code, reason } => {
                        if let Some(f) = c.on_terminate {
                            f(ud, srv, id, code, reason.as_ptr(), reason.len())
                        }
                    }
                },
            }
        }
        drop(shared);
    }
}

fn on_server(srv: *const sluice_resume_server, f: impl FnOnce(&ResumeServer) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let h = unsafe { arg(srv, "srv") }?;
        f(h.server.get().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the server is still starting"))?)
    })
}

fn on_peer(srv: *const sluice_resume_server, peer: u64, f: impl FnOnce(&Peer) -> Res) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let h = unsafe { arg(srv, "srv") }?;
        let p = h.peers.lock().unwrap_or_else(|e| e.into_inner()).by_id.get(&peer).cloned();
        let p = p.ok_or_else(|| Fail::new(SLUICE_E_NO_SESSION, format!("no peer {peer} (never connected, or gone)")))?;
        f(&p)
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
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let o = unsafe { arg(opts, "opts") }?.opts.clone();
        let cbs = unsafe { sized_callbacks(cbs, "cbs") }?;
        let shared = Arc::new(sluice_resume_server { server: OnceLock::new(), peers: Mutex::new(Peers::default()) });
        let (release, arming) = Release::new(cbs.on_release, Ud(userdata));
        let h = RHandler { shared: Arc::downgrade(&shared), cbs, ud: Ud(userdata), _release: release };
        let user = Arc::into_raw(Arc::clone(&shared)).cast_mut();
        let ep = o.endpoint.clone();
        match ResumeServer::bind(o, move |s: &ResumeServer, ev: ResumeEvent| contain(|| h.deliver(s, ev))) {
            Ok(s) => {
                shared.server.get_or_init(|| s);
                drop(shared);
                arming.arm();
                unsafe { put(out, user, "out") }
            }
            Err(e) => {
                arming.fail();
                // SAFETY: the reference made above, never handed out.
                drop(unsafe { Arc::from_raw(user) });
                Err(Fail::io(&format!("bind {ep}"), &e))
            }
        }
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
    on_server(srv, |s| unsafe { copy_out(&s.local().to_string(), buf, cap, len) })
}

/// Stops listening, closes every connection and forgets every peer; no
/// callback starts after this returns. Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_close(srv: *mut sluice_resume_server) -> c_int {
    on_server(srv, |s| {
        s.close();
        Ok(())
    })
}

/// Closes the server (as `sluice_resume_server_close`) and releases the
/// handle. NULL is a no-op. May be called from inside its own callbacks.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_free(srv: *mut sluice_resume_server) {
    guard_or((), || {
        if srv.is_null() {
            return;
        }
        // SAFETY: a handle from sluice_resume_server_bind, released once.
        let shared = unsafe { Arc::from_raw(srv.cast_const()) };
        if let Some(s) = shared.server.get() {
            s.close();
        }
        drop(shared);
    })
}

/// Poll delivery: the descriptor that is readable while events wait
/// (level-triggered). -1 for inline delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_fd(srv: *const sluice_resume_server) -> c_int {
    guard_or(-1, || {
        // SAFETY: NULL or a live handle, per the C contract.
        unsafe { srv.as_ref() }.and_then(|h| h.server.get()).and_then(ResumeServer::fd).unwrap_or(-1)
    })
}

/// Poll delivery: runs the callbacks for up to `max` waiting events on this
/// thread (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own callback.
#[no_mangle]
pub unsafe extern "C" fn sluice_resume_server_dispatch(srv: *mut sluice_resume_server, max: usize, ran: *mut usize) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put_opt(ran, 0) };
        unsafe { arg(srv.cast_const(), "srv") }?;
        let keep = unsafe {
            Arc::increment_strong_count(srv.cast_const());
            Arc::from_raw(srv.cast_const())
        };
        let s = keep.server.get().cloned().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the server is still starting"))?;
        let n = s.dispatch(max).map_err(dispatch_error)?;
        unsafe { put_opt(ran, n) };
        Ok(())
    })
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
    on_peer(srv, peer, |p| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        let b = Bytes::copy_from_slice(unsafe { bytes_arg(data, len, "data") }?);
        sent(p.send_chunk(session, &b))
    })
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
    on_peer(srv, peer, |p| {
        // SAFETY: NULL or a live payload, per the C contract.
        let pl = unsafe { arg(payload, "payload") }?;
        sent(p.send_chunk(session, &pl.to_bytes()))
    })
}

/// Sends the end of this side's direction of `session` (v0 `choke`, v1
/// `close`). Result codes as `sluice_peer_send_chunk`.
#[no_mangle]
pub unsafe extern "C" fn sluice_peer_send_choke(srv: *mut sluice_resume_server, peer: u64, session: u64) -> c_int {
    on_peer(srv, peer, |p| sent(p.send_message(session, &Message::Choke, &[])))
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
    on_peer(srv, peer, |p| {
        // SAFETY: NULL or `len` readable bytes, per the C contract.
        let args = unsafe { args_arg(args_msgpack, len) }?;
        sent(p.send_frame(session, type_id, &args, &[]))
    })
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
