//! `sluice_server` and `sluice_incoming`: listening sockets and the
//! connections they accept.
//!
//! Ownership mirrors the channel's: the user's handle is `Arc::into_raw`
//! of a [`sluice_server`], the core owns the accept handler, which holds a
//! `Weak` to the handle and calls `on_release` when the core drops it.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock, Weak};

use sluice_core::net::{AcceptHandler, DispatchError, Endpoint, Incoming, Server};

use crate::channel::{open, sluice_callbacks, sluice_channel};
use crate::guard::{
    arg, arg_mut, contain, copy_out, guard, guard_or, put, str_arg, Fail, Res, SLUICE_E_NOT_POLLED, SLUICE_E_REENTRANT, SLUICE_E_STATE,
};
use crate::options::sluice_options;
use crate::release::{Release, Ud};

/// A listening socket (TCP or Unix) that hands each accepted connection to
/// `on_accept`. Opaque. Functions on a server may be called from any thread
/// and from inside any callback; only `sluice_server_free` must not race
/// other calls on the same handle.
#[allow(non_camel_case_types)]
pub struct sluice_server {
    server: OnceLock<Server>,
}

/// An accepted connection, not yet read from, as `on_accept` receives it.
/// Opaque; valid only during that `on_accept` call. Start a channel on it
/// with `sluice_incoming_start`; if it is not started by the time
/// `on_accept` returns, the connection is closed.
#[allow(non_camel_case_types)]
pub struct sluice_incoming {
    incoming: Option<Incoming>,
    /// Kept apart: still readable after the start.
    peer: String,
}

/// A server's callbacks. Any member may be NULL (a server without
/// `on_accept` closes every connection it accepts). Copied by
/// `sluice_server_bind`.
///
/// `on_accept` runs on a library I/O thread (inline delivery) or on the
/// thread that calls `sluice_server_dispatch` (poll delivery); accepts are
/// delivered one at a time. It may call any sluice function, including
/// `sluice_server_close`/`_free` of its own server; `sluice_server_dispatch`
/// of its own server returns `SLUICE_E_REENTRANT`. It must not block or
/// unwind into the library.
#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct sluice_server_callbacks {
    /// A connection was accepted. `server` is the handle `sluice_server_bind`
    /// returns; `incoming` is valid until this callback returns.
    pub on_accept: Option<unsafe extern "C" fn(userdata: *mut c_void, server: *mut sluice_server, incoming: *mut sluice_incoming)>,
    /// The library will never call this callbacks set again: `userdata`
    /// may be freed. Called exactly once for every successful
    /// `sluice_server_bind` (never when it fails), once the server is
    /// closed and no `on_accept` runs: on the thread that closes or frees
    /// it, or on an I/O thread shortly after.
    pub on_release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

struct SHandler {
    shared: Weak<sluice_server>,
    on_accept: Option<unsafe extern "C" fn(*mut c_void, *mut sluice_server, *mut sluice_incoming)>,
    ud: Ud,
    _release: Release,
}

impl AcceptHandler for SHandler {
    fn on_accept(&mut self, server: &Server, incoming: Incoming) {
        contain(|| {
            // Dropped at the end unless started: that closes the connection.
            let peer = incoming.peer().to_string();
            let mut slot = sluice_incoming { incoming: Some(incoming), peer };
            let Some(shared) = self.shared.upgrade() else { return };
            shared.server.get_or_init(|| server.clone());
            if let Some(f) = self.on_accept {
                // SAFETY: the user's callback and data; `slot` and `shared`
                // outlive the call.
                unsafe { f(self.ud.0, Arc::as_ptr(&shared).cast_mut(), &mut slot) };
            }
            drop(slot);
            drop(shared);
        });
    }
}

/// The core server behind a handle.
///
/// # Safety
/// `s` is NULL or a live handle.
unsafe fn server<'a>(s: *const sluice_server) -> Res<&'a Server> {
    // SAFETY: per the contract.
    let s = unsafe { arg(s, "server") }?;
    s.server.get().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the server is still starting"))
}

/// Listens on `endpoint` and returns the server in `*out` (NULL on
/// failure).
///
/// `endpoint`: as for `sluice_channel_connect`; TCP port 0 picks a free
/// port (see `sluice_server_endpoint`); a stale Unix socket file at the
/// path is replaced and the file is removed on close. `opts` (copied; NULL
/// for the defaults) are the settings of every accepted channel, with role
/// engine unless set otherwise; their delivery mode also says how accepts
/// are delivered. `cbs` (copied) and `userdata`: see
/// `sluice_server_callbacks`. `on_accept` may run before this call returns.
///
/// Errors: `SLUICE_E_NULL`, `SLUICE_E_INVALID` (endpoint), `SLUICE_E_IO`
/// (e.g. `EADDRINUSE`, `EACCES`: see `sluice_last_errno`); then no callback
/// is called, not even `on_release`.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_bind(
    endpoint: *const c_char,
    opts: *const sluice_options,
    cbs: *const sluice_server_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_server,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let text = unsafe { str_arg(endpoint, "endpoint") }?;
        let ep = Endpoint::parse(text)
            .ok_or_else(|| Fail::invalid(format!("endpoint {text:?} is not host:port, [v6]:port, /path or unix:path")))?;
        let config = sluice_options::for_accept(opts);
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();

        let shared = Arc::new(sluice_server { server: OnceLock::new() });
        let (release, arming) = Release::new(cbs.on_release, Ud(userdata));
        let handler = SHandler { shared: Arc::downgrade(&shared), on_accept: cbs.on_accept, ud: Ud(userdata), _release: release };
        let user = Arc::into_raw(Arc::clone(&shared)).cast_mut();
        match Server::bind(&ep, config, handler) {
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
/// bytes): `"127.0.0.1:40231"`, `"[::1]:40231"` (the actual port when bound
/// to port 0) or `"unix:/path"`; a string `sluice_channel_connect` accepts.
/// The full length (without the NUL) goes to `*len` (may be NULL).
/// `SLUICE_E_BUFFER` if `buf` was too small (the text is truncated).
#[no_mangle]
pub unsafe extern "C" fn sluice_server_endpoint(server: *const sluice_server, buf: *mut c_char, cap: usize, len: *mut usize) -> c_int {
    // SAFETY: NULL or valid pointers, per the C contract.
    guard(|| unsafe { copy_out(&self::server(server)?.local().to_string(), buf, cap, len) })
}

/// The TCP port the server listens on, into `*port` (`SLUICE_E_INVALID`
/// for a Unix socket server).
#[no_mangle]
pub unsafe extern "C" fn sluice_server_port(server: *const sluice_server, port: *mut u16) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        match unsafe { self::server(server) }?.local() {
            Endpoint::Tcp(_, p) => unsafe { put(port, *p, "port") },
            Endpoint::Unix(_) => Err(Fail::invalid("a Unix socket server has no port")),
        }
    })
}

/// Stops listening and removes the Unix socket file it created; channels
/// already accepted stay open. No `on_accept` starts after this call
/// returns (one running on another thread finishes). Idempotent.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_close(server: *mut sluice_server) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        unsafe { self::server(server) }?.close();
        Ok(())
    })
}

/// Closes the server (as `sluice_server_close`) and releases the handle.
/// NULL is a no-op. May be called from inside its own `on_accept`: the
/// handle stays valid until that callback returns.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_free(server: *mut sluice_server) {
    guard_or((), || {
        if server.is_null() {
            return;
        }
        // SAFETY: a handle from sluice_server_bind, released once.
        let shared = unsafe { Arc::from_raw(server.cast_const()) };
        if let Some(s) = shared.server.get() {
            s.close();
        }
        drop(shared);
    })
}

/// Poll delivery: the file descriptor that is readable while accepted
/// connections wait for `sluice_server_dispatch` (level-triggered). -1 for
/// inline delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_fd(server: *const sluice_server) -> c_int {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(-1, || unsafe { self::server(server) }.ok().and_then(Server::fd).unwrap_or(-1))
}

/// Poll delivery: runs `on_accept` on this thread for up to `max` waiting
/// connections (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own `on_accept`.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_dispatch(server: *mut sluice_server, max: usize, ran: *mut usize) -> c_int {
    guard(|| {
        if !ran.is_null() {
            // SAFETY: valid for a write, per the C contract.
            unsafe { ran.write(0) };
        }
        // SAFETY: NULL or a live handle, per the C contract.
        unsafe { arg(server.cast_const(), "server") }?;
        // Hold a reference while on_accept runs: it may free the server.
        // SAFETY: a live handle made by Arc::into_raw.
        let keep = unsafe {
            Arc::increment_strong_count(server.cast_const());
            Arc::from_raw(server.cast_const())
        };
        let s = keep.server.get().cloned().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the server is still starting"))?;
        let n = s.dispatch(max).map_err(|e| match e {
            DispatchError::NotPolled => Fail::fixed(SLUICE_E_NOT_POLLED, c"the server delivers inline, not by dispatch"),
            DispatchError::Reentrant => Fail::fixed(SLUICE_E_REENTRANT, c"dispatch called from inside the server's own on_accept"),
        })?;
        if !ran.is_null() {
            // SAFETY: as above.
            unsafe { ran.write(n) };
        }
        Ok(())
    })
}

/// Replaces the settings the channel of `incoming` will have (by default
/// the server's); call before `sluice_incoming_start`. `opts` NULL: the
/// defaults (role engine). Copied.
#[no_mangle]
pub unsafe extern "C" fn sluice_incoming_set_options(incoming: *mut sluice_incoming, opts: *const sluice_options) -> c_int {
    guard(|| {
        // SAFETY: NULL or the pointer on_accept received, per the C contract.
        let inc = unsafe { arg_mut(incoming, "incoming") }?;
        let inc = inc.incoming.as_mut().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the incoming connection was already started"))?;
        *inc.config_mut() = sluice_options::for_accept(opts);
        Ok(())
    })
}

/// Starts a channel on the accepted connection: reading begins and
/// `cbs->on_connect` comes first (possibly on another I/O thread before
/// this returns). The new channel goes to `*out`; free it with
/// `sluice_channel_free` like a connected one. `cbs` is copied; see
/// `sluice_callbacks` for `userdata` and `on_release`. Only from inside
/// `on_accept`, once: `SLUICE_E_STATE` the second time. On failure the
/// connection is closed and no callback is called.
#[no_mangle]
pub unsafe extern "C" fn sluice_incoming_start(
    incoming: *mut sluice_incoming,
    cbs: *const sluice_callbacks,
    userdata: *mut c_void,
    out: *mut *mut sluice_channel,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        unsafe { put(out, std::ptr::null_mut(), "out") }?;
        let inc = unsafe { arg_mut(incoming, "incoming") }?;
        let inc = inc.incoming.take().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the incoming connection was already started"))?;
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
        let ch = open(cbs, userdata, |h| inc.start(h)).map_err(|e| Fail::io("start", &e))?;
        unsafe { put(out, ch, "out") }
    })
}

/// Writes the peer's address, NUL-terminated, into `buf` (`cap` bytes):
/// `"ip:port"` for TCP, the peer's socket path for Unix (usually empty).
/// Full length to `*len` (may be NULL); `SLUICE_E_BUFFER` if truncated.
/// Valid before and after `sluice_incoming_start`, during `on_accept`.
#[no_mangle]
pub unsafe extern "C" fn sluice_incoming_peer(incoming: *const sluice_incoming, buf: *mut c_char, cap: usize, len: *mut usize) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        let inc = unsafe { arg(incoming, "incoming") }?;
        // SAFETY: as above.
        unsafe { copy_out(&inc.peer, buf, cap, len) }
    })
}
