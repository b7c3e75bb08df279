//! `sluice_server` and `sluice_incoming`: listening sockets and the
//! connections they accept.
//!
//! Ownership and life cycle: see `handle` (the accept handler is a `Host`).

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use sluice_core::net::{AcceptHandler, Endpoint, Incoming, Server};

use crate::channel::{open, sluice_callbacks, sluice_channel};
use crate::guard::{arg, arg_mut, contain, copy_out, endpoint_arg, guard, make, put, Fail, SLUICE_E_STATE};
use crate::handle::{self, core, object, Host, Tag};
use crate::options::sluice_options;

/// A listening socket (TCP or Unix) that hands each accepted connection to
/// `on_accept`. Opaque. Functions on a server may be called from any thread
/// and from inside any callback; only `sluice_server_free` must not race
/// other calls on the same handle.
#[allow(non_camel_case_types)]
pub struct sluice_server {
    tag: Tag,
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

object!(sluice_server, server: Server, "server", c"the server is still starting");

struct SHandler(Host<sluice_server, sluice_server_callbacks>);

impl AcceptHandler for SHandler {
    fn on_accept(&mut self, server: &Server, incoming: Incoming) {
        contain(|| {
            // Dropped at the end unless started: that closes the connection.
            let peer = incoming.peer().to_string();
            let mut slot = sluice_incoming { incoming: Some(incoming), peer };
            let Some(shared) = self.0.enter(server) else { return };
            if let Some(f) = self.0.cbs.on_accept {
                // SAFETY: the user's callback and data; `slot` and `shared`
                // outlive the call.
                unsafe { f(self.0.ud.0, Arc::as_ptr(&shared).cast_mut(), &mut slot) };
            }
            drop(slot);
            drop(shared);
        });
    }
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
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let ep = unsafe { endpoint_arg(endpoint, "endpoint") }?;
        let config = sluice_options::for_accept(opts);
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
        let handle = sluice_server { tag: Tag::new(), server: OnceLock::new() };
        let s = handle::open(handle, cbs, cbs.on_release, userdata, |h| Server::bind(&ep, config, SHandler(h)))
            .map_err(|e| Fail::io(&format!("bind {ep}"), &e))?;
        Ok(s)
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
    handle::with(server, |s| unsafe { copy_out(&s.local().to_string(), buf, cap, len) })
}

/// The TCP port the server listens on, into `*port` (`SLUICE_E_INVALID`
/// for a Unix socket server).
#[no_mangle]
pub unsafe extern "C" fn sluice_server_port(server: *const sluice_server, port: *mut u16) -> c_int {
    guard(|| {
        // SAFETY: NULL or valid pointers, per the C contract.
        match unsafe { core(server) }?.local() {
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
    handle::close(server)
}

/// Closes the server (as `sluice_server_close`) and releases the handle.
/// NULL is a no-op. May be called from inside its own `on_accept`: the
/// handle stays valid until that callback returns.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_free(server: *mut sluice_server) {
    handle::free(server)
}

/// Poll delivery: the file descriptor that is readable while accepted
/// connections wait for `sluice_server_dispatch` (level-triggered). -1 for
/// inline delivery or NULL. Do not close it.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_fd(server: *const sluice_server) -> c_int {
    handle::fd(server)
}

/// Poll delivery: runs `on_accept` on this thread for up to `max` waiting
/// connections (`SIZE_MAX`: all); how many into `*ran` (may be NULL).
/// `SLUICE_E_NOT_POLLED` for inline delivery, `SLUICE_E_REENTRANT` from
/// inside its own `on_accept`.
#[no_mangle]
pub unsafe extern "C" fn sluice_server_dispatch(server: *mut sluice_server, max: usize, ran: *mut usize) -> c_int {
    handle::dispatch(server, max, ran)
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
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make(out, || {
        let inc = unsafe { arg_mut(incoming, "incoming") }?;
        let inc = inc.incoming.take().ok_or_else(|| Fail::fixed(SLUICE_E_STATE, c"the incoming connection was already started"))?;
        let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
        let ch = open(cbs, userdata, |h| inc.start(h)).map_err(|e| Fail::io("start", &e))?;
        Ok(ch)
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
