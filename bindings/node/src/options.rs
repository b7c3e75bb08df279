//! Options of channels and servers: read generically from the JavaScript
//! object and checked by the core's option table (`sluice_core::host`), the
//! same rules and error texts as C's and Python's. The process-wide
//! settings (`configure`, `setting`, `settings`) go through the core's
//! settings table the same way.

use std::ptr;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sluice_core::host::{self, Input, Kind, Lang, Options};
use sluice_core::net::{ChannelConfig, Endpoint};
use sluice_core::wire::{Dialect, Role};

use crate::js;

/// Settings of a channel (and of the channels a server accepts). Every field
/// is optional; `undefined` and `null` leave the default (`null` on a
/// timeout: no limit; on `role`: `'none'`). The rules are the core's option
/// table (see `options()`): an unknown key or an unusable value throws a
/// `RangeError` (code `ERR_INVALID_ARG_VALUE`) whose message names the
/// option, e.g. `maxFrameSize: must be a whole number from 16 to
/// 4294967295, got 0`; a value of the wrong JavaScript type (an object, a
/// function…) a `TypeError` (code `ERR_INVALID_ARG_TYPE`).
// The struct is the TypeScript declaration only: options are read
// generically, key by key, by `read_options`.
#[napi(object)]
#[derive(Default, Clone)]
#[allow(dead_code)]
pub struct ChannelOptions {
    /// Protocol dialect: `'v0'` (Cocaine 0.10/0.11, `[type, session, args]`)
    /// or `'v1'` (Cocaine 0.12, `[channel, type, args, headers]`); `0` and
    /// `1` too. Default for `connect`/`listen`: `'v1'`; for the framework
    /// `Channel`: the `--protocol` argument of the process (absent → v0,
    /// `1` → v1), as the runtime starts workers.
    #[napi(ts_type = "'v0' | 'v1' | 0 | 1")]
    pub dialect: Option<String>,
    /// The dialect as the runtime's `--protocol` number (`0` or `1`):
    /// another name for `dialect`.
    #[napi(ts_type = "0 | 1 | '0' | '1'")]
    pub protocol: Option<u32>,
    /// Which side of the worker protocol this channel is: `'worker'` (gets
    /// invoke/chunk/choke/error/heartbeat/terminate), `'engine'` (gets the
    /// handshake and the worker's answers) or `'none'` (every frame arrives
    /// as a generic `'frame'` event: service clients). Default `'worker'`
    /// (`'engine'` for the channels `listen()` accepts).
    #[napi(ts_type = "'worker' | 'engine' | 'none' | null")]
    pub role: Option<String>,
    /// Encoding of sends: `'compat'` (the str family only: what every
    /// runtime reads; always used for v0) or `'modern'` (bin payloads).
    /// Default `'compat'`.
    #[napi(ts_type = "'compat' | 'modern'")]
    pub profile: Option<String>,
    /// Sends beyond this many queued bytes wait in an overflow list and
    /// return `false`; `'drain'` follows. Default 8 MiB.
    pub high_water_mark: Option<f64>,
    /// `'drain'` comes once the queue is down to this many bytes. Must not
    /// exceed `highWaterMark`. Default 2 MiB, or a quarter of
    /// `highWaterMark` when that is less.
    pub low_water_mark: Option<f64>,
    /// Hard bound on the send queue for sends never refused at the high
    /// watermark (a served call's replies): past it the connection ends
    /// with `ENOBUFS`. Must not be below `highWaterMark`. Default 64 MiB,
    /// or twice `highWaterMark` when that is more.
    pub max_queued: Option<f64>,
    /// The largest frame accepted; a larger one fails the channel with
    /// `EMSGSIZE`. From 16 to 4294967295. Default 512 MiB.
    pub max_frame_size: Option<f64>,
    /// Capacity of the v1 dynamic header table, in bytes. Default 4096.
    pub header_table_size: Option<f64>,
    /// Give up connecting after this many milliseconds (`ETIMEDOUT`); `0`
    /// or `null`: the operating system's timeout. Default 30000.
    #[napi(ts_type = "number | null")]
    pub connect_timeout: Option<f64>,
    /// After a close, how many milliseconds the queue may take to flush and
    /// the peer to close its side before the connection is cut. Default
    /// 10000.
    pub close_linger: Option<f64>,
    /// Longest a frame may take to arrive once its first byte has, in
    /// milliseconds: a peer that stalls or dribbles ends the connection
    /// with `ETIMEDOUT`. `0` or `null`: no limit. Default 60000.
    #[napi(ts_type = "number | null")]
    pub frame_timeout: Option<f64>,
    /// End the connection with `ETIMEDOUT` when nothing at all arrives for
    /// this many milliseconds. `0` or `null` (the default): no limit.
    #[napi(ts_type = "number | null")]
    pub read_idle_timeout: Option<f64>,
    /// Most sessions the peer may have open at once (v1 channels with a
    /// role); a frame opening one more is delivered as a dropped frame.
    /// Default 65536.
    pub max_sessions: Option<f64>,
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
    /// 16 KiB and grow to this while they fill the buffer. From 4096 to
    /// 1 GiB. Default 256 KiB (the core's; 1 MiB reads fewer times per byte
    /// on fast local links).
    pub read_size: Option<f64>,
    /// Most events handed to the host's thread per dispatch (from 1 to
    /// 1048576; default 1024). Checked like everywhere else; the Node
    /// binding hands JavaScript whatever is ready in one batch, bounded by
    /// `maxPending`, so it does not change delivery here.
    pub batch: Option<f64>,
}

/// A channel's settings, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub config: ChannelConfig,
    pub zero_copy: usize,
}

/// An options object, read and checked by the core's table.
#[derive(Clone, Debug)]
pub(crate) struct Read {
    opts: Options,
    /// The dialect given (`dialect` or `protocol`), if any.
    dialect: Option<Dialect>,
}

impl Default for Read {
    fn default() -> Read {
        // (Inline delivery: ports batch events on the I/O threads
        // itself, src/port.rs.)
        Read { opts: Options::new(Lang::Node), dialect: None }
    }
}

impl Read {
    /// The dialect the options name (`dialect`, or `protocol`), if any.
    pub(crate) fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// The core settings: `default_dialect` unless the options name one,
    /// `default_role` unless they set a role.
    pub(crate) fn resolve(&self, default_dialect: Dialect, default_role: Option<Role>) -> Resolved {
        let mut config = self.opts.config(default_role);
        config.dialect = self.dialect.unwrap_or(default_dialect);
        Resolved { config, zero_copy: self.opts.copy_threshold }
    }

    /// Like [`Read::resolve`], the role forced to `role` whatever was set.
    pub(crate) fn resolve_as(&self, default_dialect: Dialect, role: Role) -> Resolved {
        let mut r = self.resolve(default_dialect, Some(role));
        r.config.role = Some(role);
        r
    }
}

/// Throws an option error: a `RangeError` with code
/// `ERR_INVALID_ARG_VALUE` and the table's text as the message.
fn option_error(env: sys::napi_env, e: &host::OptionError) -> Error {
    js::throw(env, js::Kind::RangeError, "ERR_INVALID_ARG_VALUE", &e.to_string())
}

/// The dialect the runtime asked for on the command line (`--protocol 1`
/// or `--protocol=1` → v1; absent → v0), by the core's one rule
/// ([`host::protocol_from_args`]). An unusable value throws a `RangeError`
/// (code `ERR_INVALID_ARG_VALUE`).
pub(crate) fn dialect_from_argv(env: sys::napi_env) -> Result<Dialect> {
    host::protocol_from_args(std::env::args().skip(1))
        .map_err(|e| js::throw(env, js::Kind::RangeError, "ERR_INVALID_ARG_VALUE", &format!("the process arguments: {e}")))
}

/// The own enumerable string keys of an object.
fn own_keys(env: sys::napi_env, obj: sys::napi_value) -> Result<Vec<String>> {
    let mut names = ptr::null_mut();
    let s = unsafe {
        sys::napi_get_all_property_names(
            env,
            obj,
            sys::KeyCollectionMode::own_only,
            sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
            sys::KeyConversion::numbers_to_strings,
            &mut names,
        )
    };
    if s != sys::Status::napi_ok {
        let mut pending = false;
        unsafe { sys::napi_is_exception_pending(env, &mut pending) };
        return Err(if pending { js::pending() } else { js::type_error(env, "options: cannot list its keys") });
    }
    let mut len = 0u32;
    unsafe { sys::napi_get_array_length(env, names, &mut len) };
    let mut keys = Vec::with_capacity(len as usize);
    for i in 0..len {
        let mut k = ptr::null_mut();
        unsafe { sys::napi_get_element(env, names, i, &mut k) };
        if let Some(k) = js::get_string(env, k) {
            keys.push(k);
        }
    }
    Ok(keys)
}

/// Reads an options argument (undefined/null → defaults): every own
/// enumerable key goes to the core's option table under its Node name,
/// except `own` (the keys the caller reads itself: a role's own options).
pub(crate) fn read_options(env: sys::napi_env, v: sys::napi_value, own: &[&str]) -> Result<Read> {
    let mut read = Read::default();
    if js::is_nullish(env, v) {
        return Ok(read);
    }
    if js::type_of(env, v) != sys::ValueType::napi_object {
        return Err(js::type_error(env, "options must be an object"));
    }
    for key in own_keys(env, v)? {
        if own.contains(&key.as_str()) {
            continue;
        }
        let mut text = String::new();
        let known = host::options::spec(Lang::Node, &key).is_some();
        let Some(input) = input(env, &key, js::get_prop(env, v, &key), &mut text, (!known).then_some("unknown option"))? else {
            continue;
        };
        read.opts.set(&key, input).map_err(|e| option_error(env, &e))?;
        if let Some(spec) = host::options::spec(Lang::Node, &key) {
            if matches!(spec.kind, Kind::Dialect) && input != Input::Null {
                read.dialect = Some(read.opts.dialect());
            }
        }
    }
    read.opts.validate().map_err(|e| option_error(env, &e))?;
    Ok(read)
}

/// A JavaScript value of `key` as the core's tables take it (the text of
/// a string kept in `text`); `None` for `undefined`, which is skipped.
/// null, booleans, numbers and strings go to the table, which decides; a
/// value of another type throws: the table's `unknown` error (a
/// `RangeError`, see [`option_error`]) when the key is not in the table
/// (`unknown` is then its reason), else a `TypeError`.
fn input<'t>(
    env: sys::napi_env,
    key: &str,
    value: sys::napi_value,
    text: &'t mut String,
    unknown: Option<&str>,
) -> Result<Option<Input<'t>>> {
    Ok(Some(match js::type_of(env, value) {
        sys::ValueType::napi_undefined => return Ok(None),
        sys::ValueType::napi_null => Input::Null,
        sys::ValueType::napi_boolean => {
            let mut b = false;
            unsafe { sys::napi_get_value_bool(env, value, &mut b) };
            Input::Bool(b)
        }
        sys::ValueType::napi_number => Input::Float(js::get_number(env, value).unwrap_or(f64::NAN)),
        sys::ValueType::napi_string => {
            *text = js::get_string(env, value).unwrap_or_default();
            Input::Str(text)
        }
        other => {
            if let Some(reason) = unknown {
                return Err(option_error(env, &host::OptionError { key: key.to_string(), reason: reason.into() }));
            }
            return Err(js::type_error(env, &format!("{key}: must not be {}", type_name(other))));
        }
    }))
}

/// Process-wide settings for `configure()`, shared by every server and
/// connection of the process (see `settings()`). Every field is optional;
/// `undefined` skips it. The rules are the core's settings table, the same
/// as C's `sluice_set` and Python's `sluice.configure`.
// The struct is the TypeScript declaration only: settings are read
// generically, key by key, by `configure`.
#[napi(object)]
#[derive(Default, Clone)]
#[allow(dead_code)]
pub struct ProcessSettings {
    /// Most connections the services of this process (hosted services, the
    /// Locator, attached services) keep open at once, all servers together;
    /// one accepted past it is closed at once. From 1 to 4294967295.
    /// Default: the descriptor limit (`RLIMIT_NOFILE`) less 64.
    pub max_service_connections: Option<f64>,
    /// Milliseconds a connection to a hosted or attached service may stay
    /// idle (no channel open, nothing received) before it is ended with
    /// `ETIMEDOUT`; `0` or `null`: never. Default 300000. Connections to the
    /// Locator are not timed out.
    #[napi(ts_type = "number | null")]
    pub service_idle_timeout: Option<f64>,
    /// I/O threads of the runtime that serves every connection (from 1 to
    /// 1024; default 2, or `SLUICE_THREADS`). Taken only before the first
    /// connection or server of the process is made; afterwards it throws.
    pub io_threads: Option<f64>,
}

/// Sets process-wide settings (`settings()` lists them):
/// `maxServiceConnections`, `serviceIdleTimeout` (milliseconds; `0` or
/// `null`: never) and `ioThreads`. Every key is checked before anything is
/// set, then the values are set in the order given: an unknown key or a
/// value the core's settings table refuses throws a `RangeError` (code
/// `ERR_INVALID_ARG_VALUE`) with the table's text, e.g.
/// `maxServiceConnections: must be a whole number from 1 to 4294967295,
/// got 0` or `noSuch: unknown setting`, and the settings before a refused
/// one stay set; a value of the wrong JavaScript type (an object, a
/// function…) throws a `TypeError`.
#[napi(ts_args_type = "settings: ProcessSettings")]
pub fn configure(env: Env, settings: Unknown<'_>) -> Result<()> {
    let (env, v) = (env.raw(), settings.raw());
    if js::type_of(env, v) != sys::ValueType::napi_object {
        return Err(js::type_error(env, "settings must be an object"));
    }
    let keys = own_keys(env, v)?;
    if let Some(key) = keys.iter().find(|k| host::settings::spec(Lang::Node, k).is_none()) {
        return Err(option_error(env, &host::OptionError { key: key.clone(), reason: "unknown setting".into() }));
    }
    for key in keys {
        let mut text = String::new();
        if let Some(value) = input(env, &key, js::get_prop(env, v, &key), &mut text, None)? {
            host::settings::set(Lang::Node, &key, value).map_err(|e| option_error(env, &e))?;
        }
    }
    Ok(())
}

/// The current value of the process-wide setting `name` (`settings()`
/// lists them): a number (`serviceIdleTimeout` in milliseconds), or `null`
/// for a timeout that is off. An unknown name throws a `RangeError` (code
/// `ERR_INVALID_ARG_VALUE`), e.g. `noSuch: unknown setting`.
#[napi]
pub fn setting(env: Env, name: String) -> Result<Option<f64>> {
    let text = host::settings::get(Lang::Node, &name).map_err(|e| option_error(env.raw(), &e))?;
    if text == "null" {
        return Ok(None);
    }
    text.parse::<f64>().map(Some).map_err(|_| js::type_error(env.raw(), &format!("{name}: unreadable value {text:?}")))
}

fn type_name(t: sys::napi_valuetype) -> &'static str {
    match t {
        sys::ValueType::napi_object => "an object",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_bigint => "a bigint (use a number)",
        sys::ValueType::napi_external => "an external",
        _ => "of this type",
    }
}

/// One option of the core's table, as `options()` lists it.
#[napi(object)]
pub struct OptionSpec {
    /// The name in C and Python (`snake_case`).
    pub name: String,
    /// The name in Node option objects (`camelCase`).
    pub js: String,
    /// What it takes: `'dialect'`, `'role'`, `'profile'`, `'count'` (a
    /// whole number from `min` to `max`), `'flag'`, `'timeout'`
    /// (milliseconds; `0` or `null`: no limit) or `'duration'`
    /// (milliseconds).
    #[napi(ts_type = "'dialect' | 'role' | 'profile' | 'count' | 'flag' | 'timeout' | 'duration'")]
    pub kind: String,
    /// Smallest value taken (counts).
    pub min: Option<f64>,
    /// Largest value taken (counts).
    pub max: Option<f64>,
    /// The default, as the documentation shows it.
    pub default: String,
    /// What it does ("time": milliseconds in Node).
    pub doc: String,
}

/// The channel options: the core's option table (`sluice_core::host`), in
/// the order the documentation lists them. The same table checks the
/// options of `connect`, `listen`, `Channel` and the roles.
#[napi]
pub fn options() -> Vec<OptionSpec> {
    specs(host::OPTIONS)
}

/// The process-wide settings `configure()` takes and `setting()` reads:
/// the core's settings table (`maxServiceConnections`,
/// `serviceIdleTimeout`, `ioThreads`), in the form of `options()`.
#[napi]
pub fn settings() -> Vec<OptionSpec> {
    specs(host::settings::SETTINGS)
}

/// A table of the core as `options()` and `settings()` list it.
fn specs(table: &[host::Spec]) -> Vec<OptionSpec> {
    table
        .iter()
        .map(|s| {
            let (kind, min, max) = match s.kind {
                Kind::Dialect => ("dialect", None, None),
                Kind::Role => ("role", None, None),
                Kind::Profile => ("profile", None, None),
                Kind::Count { min, max } => ("count", Some(min as f64), Some(max as f64)),
                Kind::Flag => ("flag", None, None),
                Kind::Timeout => ("timeout", None, None),
                Kind::Duration => ("duration", None, None),
                _ => ("other", None, None),
            };
            OptionSpec { name: s.name.into(), js: s.js.into(), kind: kind.into(), min, max, default: s.default.into(), doc: s.doc.into() }
        })
        .collect()
}

/// Reads an endpoint: `'host:port'`, `'[v6]:port'`, a Unix socket path
/// (`'/…'`, `'./…'`, `'unix:…'`), or `{ host, port }` / `{ path }`.
pub(crate) fn read_endpoint(env: sys::napi_env, v: sys::napi_value) -> Result<Endpoint> {
    if let Some(s) = js::get_string(env, v) {
        return Endpoint::parse(&s).ok_or_else(|| {
            js::throw(
                env,
                js::Kind::TypeError,
                "ERR_INVALID_ARG_VALUE",
                &format!("not an endpoint: {s:?} (want 'host:port' or a socket path)"),
            )
        });
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

/// One endpoint or an array of them; `empty`: the error for an empty array.
pub(crate) fn read_endpoints(env: sys::napi_env, v: sys::napi_value, empty: impl FnOnce() -> Error) -> Result<Vec<Endpoint>> {
    if !js::is_array(env, v) {
        return Ok(vec![read_endpoint(env, v)?]);
    }
    let eps = js::elements(env, v).into_iter().map(|x| read_endpoint(env, x)).collect::<Result<Vec<_>>>()?;
    if eps.is_empty() {
        return Err(empty());
    }
    Ok(eps)
}

/// An endpoint as a string (`host:port`, `[v6]:port` or the socket path).
pub(crate) fn endpoint_string(e: &Endpoint) -> String {
    match e {
        Endpoint::Unix(p) => p.display().to_string(),
        other => other.to_string(),
    }
}
