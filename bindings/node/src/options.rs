//! Options of channels and servers, and how they become a core
//! [`ChannelConfig`].

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::net::{ChannelConfig, Endpoint};
use sluice_core::wire::{Dialect, Profile, Role};

use crate::js;

/// Settings of a channel (and of the channels a server accepts). Every field
/// is optional.
#[napi(object)]
#[derive(Default, Clone)]
pub struct ChannelOptions {
    /// Protocol dialect: `'v0'` (Cocaine 0.10/0.11, `[type, session, args]`)
    /// or `'v1'` (Cocaine 0.12, `[channel, type, args, headers]`). Also
    /// accepted: `protocol: 0 | 1`. Default for `connect`/`listen`: `'v1'`;
    /// for the framework `Channel`: the `--protocol` argument of the process
    /// (absent → v0, `1` → v1), as the runtime starts workers.
    #[napi(ts_type = "'v0' | 'v1'")]
    pub dialect: Option<String>,
    /// The dialect as the runtime's `--protocol` number: `0` or `1`.
    pub protocol: Option<u32>,
    /// Which side of the worker protocol this channel is: `'worker'` (gets
    /// invoke/chunk/choke/error/heartbeat/terminate), `'engine'` (gets the
    /// handshake and the worker's answers) or `'none'` (every frame arrives
    /// as a generic `'frame'` event: service clients). Default `'worker'`.
    #[napi(ts_type = "'worker' | 'engine' | 'none'")]
    pub role: Option<String>,
    /// Encoding of sends: `'compat'` (the str family only: what every
    /// runtime reads; always used for v0) or `'modern'` (bin payloads).
    /// Default `'compat'`.
    #[napi(ts_type = "'compat' | 'modern'")]
    pub profile: Option<String>,
    /// Sends beyond this many queued bytes wait in an overflow list and
    /// return `false`; `'drain'` follows. Default 8 MiB.
    pub high_water_mark: Option<f64>,
    /// `'drain'` comes once the queue is down to this many bytes. Default 2 MiB.
    pub low_water_mark: Option<f64>,
    /// The largest frame accepted; a larger one fails the channel with
    /// `EMSGSIZE`. Default 512 MiB.
    pub max_frame_size: Option<f64>,
    /// Give up connecting after this many milliseconds (`ETIMEDOUT`); `0`:
    /// the operating system's timeout. Default 30000.
    pub connect_timeout: Option<f64>,
    /// Reading from the socket pauses while this many received bytes wait
    /// for the JavaScript thread. Default 16 MiB.
    pub max_pending: Option<f64>,
    /// Chunks of at least this many bytes reach JavaScript as Buffers over
    /// the receive buffer itself (no copy); smaller ones are copied into one
    /// shared Buffer per batch and sliced. Default 32 KiB.
    pub zero_copy_threshold: Option<f64>,
    /// Skip well-formed values that are not frames instead of failing the
    /// channel with `EBADMSG`. Default `false`.
    pub lenient: Option<bool>,
    /// Bytes asked of each read from the socket, at most: reads start at
    /// 16 KiB and grow to this while they fill the buffer. Default 1 MiB
    /// (fewer reads and buffer moves per byte than the core's 256 KiB,
    /// measured faster for both small and 64 KiB chunks).
    pub read_size: Option<f64>,
}

/// A channel's settings, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub config: ChannelConfig,
    pub zero_copy: usize,
}

fn size(env: sys::napi_env, v: Option<f64>, name: &str, min: f64) -> Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= min && n.fract() == 0.0 => Ok(Some(n as usize)),
        Some(n) => Err(js::throw(env, js::Kind::RangeError, "ERR_OUT_OF_RANGE", &format!("options.{name} must be an integer >= {min}, got {n}"))),
    }
}

/// The dialect the runtime asked for on the command line (`--protocol 1`
/// or `--protocol=1` → v1; absent → v0).
pub(crate) fn dialect_from_argv() -> Dialect {
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = args.next() {
        let v = if a == "--protocol" {
            args.next()
        } else {
            a.strip_prefix("--protocol=").map(str::to_owned)
        };
        if let Some(v) = v {
            return if v.trim() == "0" { Dialect::V0 } else { Dialect::V1 };
        }
    }
    Dialect::V0
}

impl ChannelOptions {
    /// The core settings (`default_dialect` when none is given).
    pub(crate) fn resolve(&self, env: sys::napi_env, default_dialect: Dialect) -> Result<Resolved> {
        let dialect = match (self.dialect.as_deref(), self.protocol) {
            (Some("v0"), _) | (None, Some(0)) => Dialect::V0,
            (Some("v1"), _) | (None, Some(1)) => Dialect::V1,
            (None, None) => default_dialect,
            (Some(d), _) => return Err(js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &format!("options.dialect must be 'v0' or 'v1', got {d:?}"))),
            (None, Some(p)) => return Err(js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &format!("options.protocol must be 0 or 1, got {p}"))),
        };
        let role = match self.role.as_deref() {
            None | Some("worker") => Some(Role::Worker),
            Some("engine") => Some(Role::Engine),
            Some("none") => None,
            Some(r) => return Err(js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &format!("options.role must be 'worker', 'engine' or 'none', got {r:?}"))),
        };
        let mut c = ChannelConfig::new(dialect, role);
        c.read_size = 1 << 20;
        c.profile = match self.profile.as_deref() {
            None | Some("compat") => Profile::Compat,
            Some("modern") => Profile::Modern,
            Some(p) => return Err(js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &format!("options.profile must be 'compat' or 'modern', got {p:?}"))),
        };
        if let Some(n) = size(env, self.high_water_mark, "highWaterMark", 1.0)? {
            c.high_watermark = n;
        }
        if let Some(n) = size(env, self.low_water_mark, "lowWaterMark", 0.0)? {
            c.low_watermark = n;
        }
        c.low_watermark = c.low_watermark.min(c.high_watermark);
        if let Some(n) = size(env, self.max_frame_size, "maxFrameSize", 16.0)? {
            c.max_frame_size = n;
        }
        if let Some(ms) = size(env, self.connect_timeout, "connectTimeout", 0.0)? {
            c.connect_timeout = (ms > 0).then(|| Duration::from_millis(ms as u64));
        }
        if let Some(n) = size(env, self.max_pending, "maxPending", 1.0)? {
            c.max_pending = n;
        }
        if let Some(n) = size(env, self.read_size, "readSize", 4096.0)? {
            c.read_size = n;
        }
        if let Some(l) = self.lenient {
            c.lenient = l;
        }
        let zero_copy = size(env, self.zero_copy_threshold, "zeroCopyThreshold", 0.0)?.unwrap_or(32 << 10);
        Ok(Resolved { config: c, zero_copy })
    }
}

/// Reads an options argument (undefined/null → defaults).
pub(crate) fn read_options(env: sys::napi_env, v: sys::napi_value) -> Result<ChannelOptions> {
    if js::is_nullish(env, v) {
        return Ok(ChannelOptions::default());
    }
    if js::type_of(env, v) != sys::ValueType::napi_object {
        return Err(js::type_error(env, "options must be an object"));
    }
    // SAFETY: `v` is a live object value of this env.
    unsafe { ChannelOptions::from_napi_value(env, v) }.map_err(|e| js::type_error(env, &format!("bad options: {}", e.reason)))
}

/// Reads an endpoint: `'host:port'`, `'[v6]:port'`, a Unix socket path
/// (`'/…'`, `'./…'`, `'unix:…'`), or `{ host, port }` / `{ path }`.
pub(crate) fn read_endpoint(env: sys::napi_env, v: sys::napi_value) -> Result<Endpoint> {
    if let Some(s) = js::get_string(env, v) {
        return Endpoint::parse(&s).ok_or_else(|| js::throw(env, js::Kind::TypeError, "ERR_INVALID_ARG_VALUE", &format!("not an endpoint: {s:?} (want 'host:port' or a socket path)")));
    }
    if js::type_of(env, v) == sys::ValueType::napi_object {
        if let Some(path) = js::get_string(env, js::get_prop(env, v, "path")) {
            return Ok(Endpoint::Unix(path.into()));
        }
        let host = js::get_string(env, js::get_prop(env, v, "host")).unwrap_or_else(|| "127.0.0.1".into());
        if let Some(port) = js::get_number(env, js::get_prop(env, v, "port")) {
            if (0.0..=65535.0).contains(&port) && port.fract() == 0.0 {
                return Ok(Endpoint::Tcp(host, port as u16));
            }
        }
    }
    Err(js::type_error(env, "endpoint must be 'host:port', a socket path, { host, port } or { path }"))
}

/// An endpoint as a string (`host:port`, `[v6]:port` or the socket path).
pub(crate) fn endpoint_string(e: &Endpoint) -> String {
    match e {
        Endpoint::Unix(p) => p.display().to_string(),
        other => other.to_string(),
    }
}
