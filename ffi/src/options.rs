//! `sluice_options`: the settings of a channel, or of the channels a server
//! accepts.

use std::ffi::c_int;
use std::time::Duration;

use sluice_core::net::{ChannelConfig, Delivery};
use sluice_core::wire::{Dialect, Profile, Role};

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
    config: ChannelConfig,
    /// Whether the role was set; if not, it depends on where the options
    /// are used (worker for connect, engine for accepted channels).
    role_set: bool,
}

impl sluice_options {
    fn defaults() -> sluice_options {
        sluice_options { config: ChannelConfig::default(), role_set: false }
    }

    /// The settings for a channel this side connects.
    pub(crate) fn for_connect(opts: *const sluice_options) -> ChannelConfig {
        Self::resolve(opts, Role::Worker)
    }

    /// The settings for channels a server accepts.
    pub(crate) fn for_accept(opts: *const sluice_options) -> ChannelConfig {
        Self::resolve(opts, Role::Engine)
    }

    fn resolve(opts: *const sluice_options, default_role: Role) -> ChannelConfig {
        Self::with_default_role(opts, Some(default_role))
    }

    /// The settings with `default_role` unless a role was set (sessions and
    /// resume servers default to no role).
    pub(crate) fn with_default_role(opts: *const sluice_options, default_role: Option<Role>) -> ChannelConfig {
        // SAFETY: callers pass NULL or a pointer from sluice_options_new.
        match unsafe { opts.as_ref() } {
            Some(o) if o.role_set => o.config.clone(),
            Some(o) => ChannelConfig { role: default_role, ..o.config.clone() },
            None => ChannelConfig { role: default_role, ..ChannelConfig::default() },
        }
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
    guard_or((), || {
        if !opts.is_null() {
            // SAFETY: a pointer from sluice_options_new, freed once.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

fn set(opts: *mut sluice_options, f: impl FnOnce(&mut sluice_options) -> Res) -> c_int {
    // SAFETY: NULL or a pointer from sluice_options_new.
    guard(|| f(unsafe { arg_mut(opts, "opts") }?))
}

/// Sets the dialect: `SLUICE_DIALECT_V0` or `SLUICE_DIALECT_V1`
/// (`SLUICE_E_INVALID` otherwise).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_dialect(opts: *mut sluice_options, dialect: c_int) -> c_int {
    set(opts, |o| {
        o.config.dialect = match dialect {
            SLUICE_DIALECT_V0 => Dialect::V0,
            SLUICE_DIALECT_V1 => Dialect::V1,
            _ => return Err(Fail::invalid(format!("unknown dialect {dialect}"))),
        };
        Ok(())
    })
}

/// Sets the worker-protocol role: `SLUICE_ROLE_NONE`, `SLUICE_ROLE_WORKER`
/// or `SLUICE_ROLE_ENGINE`. With a role, frames arrive as typed callbacks
/// (`on_invoke`, `on_chunk`, ...) and frames the protocol drops reach
/// `on_frame`; without one, every frame reaches `on_frame`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_role(opts: *mut sluice_options, role: c_int) -> c_int {
    set(opts, |o| {
        o.config.role = match role {
            SLUICE_ROLE_NONE => None,
            SLUICE_ROLE_WORKER => Some(Role::Worker),
            SLUICE_ROLE_ENGINE => Some(Role::Engine),
            _ => return Err(Fail::invalid(format!("unknown role {role}"))),
        };
        o.role_set = true;
        Ok(())
    })
}

/// Sets the encoding profile for sends: `SLUICE_PROFILE_COMPAT` or
/// `SLUICE_PROFILE_MODERN` (v0 channels always use compat).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_profile(opts: *mut sluice_options, profile: c_int) -> c_int {
    set(opts, |o| {
        o.config.profile = match profile {
            SLUICE_PROFILE_COMPAT => Profile::Compat,
            SLUICE_PROFILE_MODERN => Profile::Modern,
            _ => return Err(Fail::invalid(format!("unknown profile {profile}"))),
        };
        Ok(())
    })
}

/// Sets the send-queue watermarks in bytes: a send is refused with
/// `SLUICE_E_WOULD_BLOCK` while `high` bytes or more are queued, and
/// `on_drain` follows once no more than `low` are. Needs
/// `0 < high` and `low <= high`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_watermarks(opts: *mut sluice_options, high: usize, low: usize) -> c_int {
    set(opts, |o| {
        if high == 0 || low > high {
            return Err(Fail::invalid(format!("watermarks high {high}, low {low}: need 0 < high and low <= high")));
        }
        o.config.high_watermark = high;
        o.config.low_watermark = low;
        Ok(())
    })
}

/// Sets the largest frame accepted from the peer, in bytes (> 0); a larger
/// one ends the connection with `EMSGSIZE` as soon as its size is declared.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_frame_size(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| {
        if bytes == 0 {
            return Err(Fail::invalid("max frame size 0"));
        }
        o.config.max_frame_size = bytes;
        Ok(())
    })
}

/// Sets the v1 header table capacity in bytes (default 4096).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_header_table_size(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| {
        o.config.header_table_size = bytes;
        Ok(())
    })
}

/// Sets how long a connect may take before it fails with `ETIMEDOUT`, in
/// milliseconds; 0 leaves it to the operating system.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_connect_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| {
        o.config.connect_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    })
}

/// Sets how events reach the callbacks: `SLUICE_DELIVERY_INLINE` (on an
/// I/O thread) or `SLUICE_DELIVERY_POLL` (on the thread that calls
/// `dispatch`). For a server it applies to accepts and to accepted
/// channels.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_delivery(opts: *mut sluice_options, delivery: c_int) -> c_int {
    set(opts, |o| {
        o.config.delivery = match delivery {
            SLUICE_DELIVERY_INLINE => Delivery::Inline,
            SLUICE_DELIVERY_POLL => Delivery::Poll,
            _ => return Err(Fail::invalid(format!("unknown delivery mode {delivery}"))),
        };
        Ok(())
    })
}

/// Poll delivery: reading from the socket pauses while more than this many
/// payload bytes wait to be dispatched (default 16 MiB; > 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_pending(opts: *mut sluice_options, bytes: usize) -> c_int {
    set(opts, |o| {
        if bytes == 0 {
            return Err(Fail::invalid("max pending 0"));
        }
        o.config.max_pending = bytes;
        Ok(())
    })
}

/// Lenient decoding (non-zero: on): well-formed msgpack values that are not
/// frames are skipped instead of ending the connection with `EBADMSG`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_lenient(opts: *mut sluice_options, lenient: c_int) -> c_int {
    set(opts, |o| {
        o.config.lenient = lenient != 0;
        Ok(())
    })
}

/// Sets how long a frame may take to arrive once its first byte has, in
/// milliseconds (counted from that byte or from the last complete frame,
/// whichever is later; time paused at max_pending does not count): a peer
/// that starts a frame and stalls or dribbles it ends the connection with
/// `SLUICE_ETIMEDOUT`. Default 60000; 0: no limit.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_frame_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| {
        o.config.frame_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    })
}

/// Ends the connection with `SLUICE_ETIMEDOUT` when nothing at all arrives
/// for this many milliseconds. Default 0: no limit (heartbeats are the
/// worker protocol's liveness check).
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_read_idle_timeout_ms(opts: *mut sluice_options, ms: u64) -> c_int {
    set(opts, |o| {
        o.config.read_idle_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    })
}

/// Most sessions the peer may have open at once (v1 channels with a role;
/// default 65536; > 0). A frame that would open one more is not typed:
/// it reaches `on_frame` like other dropped frames, and the session stays
/// closed.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_set_max_sessions(opts: *mut sluice_options, sessions: usize) -> c_int {
    set(opts, |o| {
        if sessions == 0 {
            return Err(Fail::invalid("max sessions 0"));
        }
        o.config.max_sessions = sessions;
        Ok(())
    })
}

/// Reads the dialect (`SLUICE_DIALECT_V0`/`_V1`) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn sluice_options_get_dialect(opts: *const sluice_options, out: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or a pointer from sluice_options_new.
        let o = unsafe { arg(opts, "opts") }?;
        let d = match o.config.dialect {
            Dialect::V0 => SLUICE_DIALECT_V0,
            Dialect::V1 => SLUICE_DIALECT_V1,
        };
        // SAFETY: NULL or valid for a write, per the C contract.
        unsafe { crate::guard::put(out, d, "out") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::*;

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
