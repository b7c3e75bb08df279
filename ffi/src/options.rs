//! `sluice_options`: the settings of a channel, or of the channels a server
//! accepts.

use sluice_core::host::{settings, Input, Lang, Options};
use sluice_core::net::{ChannelConfig, Delivery};
use sluice_core::wire::Role;
use std::ffi::c_int;

use crate::guard::{arg, arg_mut, guard, guard_or, Fail, Res};

/// Dialect v0: Cocaine 0.10/0.11, frames `[type, session, args]`.
pub const SLUICE_DIALECT_V0: c_int = 0;
/// Dialect v1: Cocaine 0.12, frames `[channel, type, args, headers?]`.
pub const SLUICE_DIALECT_V1: c_int = 1;

/// No worker-protocol role: every frame reaches `on_frame` as it is (a
/// service client, a proxy).
pub const SLUICE_ROLE_NONE: c_int = 0;
/// The app side of the worker protocol: receives invokes, sends the
/// handshake. The default for `sluice_channel_connect`.
pub const SLUICE_ROLE_WORKER: c_int = 1;
/// The runtime side: receives the handshake, sends invokes. The default for
/// the channels a server accepts.
pub const SLUICE_ROLE_ENGINE: c_int = 2;

/// Encoding profile "compat": only the old raw string family on the wire
/// (what every Cocaine runtime reads). The default; v0 always uses it.
pub const SLUICE_PROFILE_COMPAT: c_int = 0;
/// Encoding profile "modern" (v1 only): bin payloads, str8.
pub const SLUICE_PROFILE_MODERN: c_int = 1;

/// Callbacks run on an I/O thread of the library as events arrive. They
/// must not block.
pub const SLUICE_DELIVERY_INLINE: c_int = 0;
/// Events queue up and a file descriptor (`sluice_channel_fd`,
/// `sluice_server_fd`) is readable while any wait (level-triggered); the
/// host calls `dispatch` on its own thread, which runs the callbacks.
pub const SLUICE_DELIVERY_POLL: c_int = 1;

/// Settings for `sluice_channel_connect`, `sluice_server_bind` and
/// `sluice_incoming_set_options`. Made by `sluice_options_new`, released by
/// `sluice_options_free`. The functions that take options copy them: the
/// object may be freed or changed right after the call.
///
/// Not thread-safe: do not change one `sluice_options` from two threads at
/// once.
#[allow(non_camel_case_types)]
pub struct sluice_options {
    /// The settings, checked by the core's option table (the same rules
    /// as Python's keyword options and Node's option objects).
    opts: Options,
}

impl sluice_options {
    fn defaults() -> sluice_options {
        sluice_options { opts: Options::new(Lang::C) }
    }

    /// The settings for a channel this side connects.
    pub(crate) fn for_connect(opts: *const sluice_options) -> ChannelConfig {
        Self::with_default_role(opts, Some(Role::Worker))
    }

    /// The settings for channels a server accepts.
    pub(crate) fn for_accept(opts: *const sluice_options) -> ChannelConfig {
        Self::with_default_role(opts, Some(Role::Engine))
    }

    /// The settings with `default_role` unless a role was set (sessions and
    /// resume servers default to no role).
    pub(crate) fn with_default_role(opts: *const sluice_options, default_role: Option<Role>) -> ChannelConfig {
        // SAFETY: callers pass NULL or a pointer from sluice_options_new.
        match unsafe { opts.as_ref() } {
            Some(o) => o.opts.config(default_role),
            None => Options::new(Lang::C).config(default_role),
        }
    }

    /// Sets option `name` through the table; the options are checked
    /// against each other at once, and left as they were if refused.
    fn apply(&mut self, pairs: &[(&str, Input<'_>)]) -> Res {
        let mut next = self.opts.clone();
        for (name, value) in pairs {
            next.set(name, *value).map_err(|e| Fail::invalid(e.to_string()))?;
        }
        next.validate().map_err(|e| Fail::invalid(e.to_string()))?;
        self.opts = next;
        Ok(())
    }
}

/// A new set of options with the defaults: dialect v1, compat profile,
/// role worker for connected channels and engine for accepted ones,
/// maximum frame 512 MiB, header table 4096 bytes, watermarks 8 MiB / 2 MiB,
/// connect timeout 30 s, inline delivery, poll-mode reading paused past
/// 16 MiB of undispatched payload, not lenient. NULL only if memory ran out.
#[no_mangle]
pub extern "C" fn sluice_options_new() -> *mut sluice_options {
    guard_or(std::ptr::null_mut(), || Box::into_raw(Box::new(sluice_options::defaults())))
}

/// Releases options made by `sluice_options_new`. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_free(opts: *mut sluice_options) {
    crate::guard::free_box(opts)
}

fn set(opts: *mut sluice_options, f: impl FnOnce(&mut sluice_options) -> Res) -> c_int {
    // SAFETY: NULL or a pointer from sluice_options_new.
    guard(|| f(unsafe { arg_mut(opts, "opts") }?))
}

/// Sets the dialect: `SLUICE_DIALECT_V0` or `SLUICE_DIALECT_V1`
/// (`SLUICE_E_INVALID` otherwise).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_dialect(opts: *mut sluice_options, dialect: c_int) -> c_int {
    let name = match dialect {
        SLUICE_DIALECT_V0 => "v0",
        SLUICE_DIALECT_V1 => "v1",
        _ => return guard(|| Err(Fail::invalid(format!("dialect: unknown dialect {dialect}")))),
    };
    set(opts, |o| o.apply(&[("dialect", Input::Str(name))]))
}

/// Sets the worker-protocol role: `SLUICE_ROLE_NONE`, `SLUICE_ROLE_WORKER`
/// or `SLUICE_ROLE_ENGINE`. With a role, frames arrive as typed callbacks
/// (`on_invoke`, `on_chunk`, ...) and frames the protocol drops reach
/// `on_frame`; without one, every frame reaches `on_frame`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_role(opts: *mut sluice_options, role: c_int) -> c_int {
    let name = match role {
        SLUICE_ROLE_NONE => "none",
        SLUICE_ROLE_WORKER => "worker",
        SLUICE_ROLE_ENGINE => "engine",
        _ => return guard(|| Err(Fail::invalid(format!("role: unknown role {role}")))),
    };
    set(opts, |o| o.apply(&[("role", Input::Str(name))]))
}

/// Sets the encoding profile for sends: `SLUICE_PROFILE_COMPAT` or
/// `SLUICE_PROFILE_MODERN` (v0 channels always use compat).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_profile(opts: *mut sluice_options, profile: c_int) -> c_int {
    let name = match profile {
        SLUICE_PROFILE_COMPAT => "compat",
        SLUICE_PROFILE_MODERN => "modern",
        _ => return guard(|| Err(Fail::invalid(format!("profile: unknown profile {profile}")))),
    };
    set(opts, |o| o.apply(&[("profile", Input::Str(name))]))
}

/// Sets the send-queue watermarks in bytes: a send is refused with
/// `SLUICE_E_WOULD_BLOCK` while `high` bytes or more are queued, and
/// `on_drain` follows once no more than `low` are. Needs
/// `0 < high`, `low <= high` and `high <= max_queued` (when max_queued was
/// set; left at its default it follows: 64 MiB or twice `high`).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_watermarks(opts: *mut sluice_options, high: usize, low: usize) -> c_int {
    set(opts, |o| o.apply(&[("high_watermark", Input::Int(high as i128)), ("low_watermark", Input::Int(low as i128))]))
}

/// Sets the largest frame accepted from the peer, in bytes (16 to
/// 4294967295); a larger
/// one ends the connection with `EMSGSIZE` as soon as its size is declared.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_frame_size(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| o.apply(&[("max_frame_size", Input::Int(bytes as i128))]))
}

/// Sets the v1 header table capacity in bytes (default 4096).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_header_table_size(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| o.apply(&[("header_table_size", Input::Int(bytes as i128))]))
}

/// Sets how long a connect may take before it fails with `ETIMEDOUT`, in
/// milliseconds; 0 leaves it to the operating system.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_connect_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| o.apply(&[("connect_timeout", Input::Int(ms as i128))]))
}

/// Sets how events reach the callbacks: `SLUICE_DELIVERY_INLINE` (on an
/// I/O thread) or `SLUICE_DELIVERY_POLL` (on the thread that calls
/// `dispatch`). For a server it applies to accepts and to accepted
/// channels.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_delivery(opts: *mut sluice_options, delivery: c_int) -> c_int {
    set(opts, |o| {
        let d = match delivery {
            SLUICE_DELIVERY_INLINE => Delivery::Inline,
            SLUICE_DELIVERY_POLL => Delivery::Poll,
            _ => return Err(Fail::invalid(format!("delivery: unknown delivery mode {delivery}"))),
        };
        o.opts.set_delivery(d);
        Ok(())
    })
}

/// Poll delivery: reading from the socket pauses while more than this many
/// payload bytes wait to be dispatched (default 16 MiB; > 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_pending(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| o.apply(&[("max_pending", Input::Int(bytes as i128))]))
}

/// Lenient decoding (non-zero: on): well-formed msgpack values that are not
/// frames are skipped instead of ending the connection with `EBADMSG`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_lenient(opts: *mut sluice_options, lenient: c_int) -> c_int {
    set(opts, |o| o.apply(&[("lenient", Input::Bool(lenient != 0))]))
}

/// Sets how long a frame may take to arrive once its first byte has, in
/// milliseconds (counted from that byte or from the last complete frame,
/// whichever is later; time paused at max_pending does not count): a peer
/// that starts a frame and stalls or dribbles it ends the connection with
/// `SLUICE_ETIMEDOUT`. Default 60000; 0: no limit.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_frame_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| o.apply(&[("frame_timeout", Input::Int(ms as i128))]))
}

/// Ends the connection with `SLUICE_ETIMEDOUT` when nothing at all arrives
/// for this many milliseconds. Default 0: no limit (heartbeats are the
/// worker protocol's liveness check).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_read_idle_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| o.apply(&[("read_idle_timeout", Input::Int(ms as i128))]))
}

/// Most sessions the peer may have open at once (v1 channels with a role;
/// default 65536; > 0). A frame that would open one more is not typed:
/// it reaches `on_frame` like other dropped frames, and the session stays
/// closed.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_sessions(opts: *mut sluice_options, sessions: usize) -> c_int {
    set(opts, |o| o.apply(&[("max_sessions", Input::Int(sessions as i128))]))
}

/// Sets the hard bound, in bytes, on the send queue for sends that are not
/// refused at the high watermark (a served call's replies): past it the
/// connection ends with `SLUICE_ENOBUFS`. Default 64 MiB (or twice the high
/// watermark when that is more); not below the high watermark.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_queued(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| o.apply(&[("max_queued", Input::Int(bytes as i128))]))
}

/// Sets the largest read from the socket, in bytes (4096 to 1 GiB; default
/// 256 KiB): reads start at 16 KiB and grow to this while they fill the
/// buffer.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_read_size(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| o.apply(&[("read_size", Input::Int(bytes as i128))]))
}

/// Sets how long, in milliseconds, a closed channel's queue may take to
/// flush and its peer to close its side before the connection is cut
/// (default 10000).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_close_linger_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| o.apply(&[("close_linger", Input::Int(ms as i128))]))
}

/// Sets any option of the table by name, its value written as text: the
/// names and rules are the same as Python's keyword options (durations in
/// milliseconds, booleans `true`/`false`, `null` for none, dialect `v0`/`v1`/`0`/`1`, role
/// `worker`/`engine`/`none`, profile `compat`/`modern`). Every option the
/// typed setters cover, and those without one (`copy_threshold`, `batch`
/// are taken and have no effect in C). An unknown name or a refused value
/// gives `SLUICE_E_INVALID`, with the reason in `sluice_last_error()`
/// (e.g. `max_frame_size: must be a whole number from 16 to 4294967295,
/// got 0`).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set(
    opts: *mut sluice_options,
    name: *const std::ffi::c_char,
    value: *const std::ffi::c_char,
) -> c_int {
    set(opts, |o| {
        // SAFETY: NULL or NUL-terminated strings, per the C contract.
        let name = unsafe { crate::guard::str_arg(name, "name") }?;
        // SAFETY: as above.
        let value = unsafe { crate::guard::str_arg(value, "value") }?;
        o.apply(&[(name, Input::from_text(value))])
    })
}

/// Reads the dialect (`SLUICE_DIALECT_V0`/`_V1`) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_get_dialect(opts: *const sluice_options, out: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or a pointer from sluice_options_new.
        let d = crate::roles::dialect_const(unsafe { arg(opts, "opts") }?.opts.dialect());
        // SAFETY: NULL or valid for a write, per the C contract.
        unsafe { crate::guard::put(out, d, "out") }
    })
}

/// Sets a process-wide setting by name, its value written as text (the
/// same table and rules as Python's `sluice.configure` and Node's
/// `configure`; durations in milliseconds, `null` for none):
/// `max_service_connections` (connections the services of this process
/// keep open at once, all servers together; default the descriptor limit
/// less 64), `service_idle_timeout` (idle connections to hosted and
/// attached services end after this long; default 300000, `0`/`null`:
/// never), `io_threads` (before the first connection or server only). An
/// unknown name or a refused value gives `SLUICE_E_INVALID`, with the
/// reason in `sluice_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn sluice_set(name: *const std::ffi::c_char, value: *const std::ffi::c_char) -> c_int {
    crate::guard::guard(|| {
        // SAFETY: NULL or NUL-terminated strings, per the C contract.
        let name = unsafe { crate::guard::str_arg(name, "name") }?;
        // SAFETY: as above.
        let value = unsafe { crate::guard::str_arg(value, "value") }?;
        settings::set(Lang::C, name, Input::from_text(value)).map_err(|e| Fail::invalid(e.to_string()))
    })
}

/// Reads a process-wide setting (see `sluice_set`) as text,
/// NUL-terminated, into `buf` (`cap` bytes); the full length goes to
/// `*len` (may be NULL). `SLUICE_E_BUFFER` if `buf` was too small (the
/// text is truncated), `SLUICE_E_INVALID` for an unknown name.
#[no_mangle]
pub unsafe extern "C" fn sluice_get(name: *const std::ffi::c_char, buf: *mut std::ffi::c_char, cap: usize, len: *mut usize) -> c_int {
    crate::guard::guard(|| {
        // SAFETY: a NUL-terminated string, per the C contract.
        let name = unsafe { crate::guard::str_arg(name, "name") }?;
        let text = settings::get(Lang::C, name).map_err(|e| Fail::invalid(e.to_string()))?;
        // SAFETY: `buf` has `cap` bytes and `len` is NULL or valid, per the contract.
        unsafe { crate::guard::copy_out(&text, buf, cap, len) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::*;
    use sluice_core::wire::Dialect;

    #[test]
    fn setters_check_their_values() {
        let o = sluice_options_new();
        unsafe {
            assert_eq!(sluice_options_set_dialect(o, SLUICE_DIALECT_V0), SLUICE_OK);
            assert_eq!(sluice_options_set_dialect(o, 2), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_role(o, 3), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_profile(o, -1), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_watermarks(o, 10, 11), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_watermarks(o, 0, 0), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_watermarks(o, 10, 10), SLUICE_OK);
            assert_eq!(sluice_options_set_delivery(o, 7), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_delivery(o, SLUICE_DELIVERY_POLL), SLUICE_OK);
            assert_eq!(sluice_options_set_connect_timeout_ms(o, 0), SLUICE_OK);
            assert_eq!(sluice_options_set_dialect(std::ptr::null_mut(), 0), SLUICE_E_NULL);
            assert_eq!(sluice_options_set_max_queued(o, 9), SLUICE_E_INVALID);
            assert_eq!(sluice_options_set_max_frame_size(o, 15), SLUICE_E_INVALID);
            let c = sluice_options::for_accept(o);
            assert_eq!((c.dialect, c.role, c.delivery, c.connect_timeout), (Dialect::V0, Some(Role::Engine), Delivery::Poll, None));
            assert_eq!(sluice_options::for_connect(o).role, Some(Role::Worker));
            assert_eq!(sluice_options_set_role(o, SLUICE_ROLE_NONE), SLUICE_OK);
            assert_eq!(sluice_options::for_accept(o).role, None);
            let mut d = -1;
            assert_eq!(sluice_options_get_dialect(o, &mut d), SLUICE_OK);
            assert_eq!(d, SLUICE_DIALECT_V0);
            sluice_options_free(o);
            sluice_options_free(std::ptr::null_mut());
        }
        assert_eq!(sluice_options::for_accept(std::ptr::null()).role, Some(Role::Engine));
    }
}
