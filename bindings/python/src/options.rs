//! Constructor arguments into the core's settings.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use sluice_core::net::{ChannelConfig, Delivery, Endpoint};
use sluice_core::wire::{Dialect, Profile, Role};

/// Chunks of at least this many bytes arrive as a zero-copy `Payload`,
/// smaller ones as `bytes`. Measured with `bench.py --threshold-sweep` (the
/// package README has the table): a `Payload` costs the Python thread less
/// than a copy at every size, but from about 8 KiB the rates do not follow
/// (a live `Payload` keeps its whole receive buffer, up to 256 KiB, so the
/// I/O thread allocates fresh ones), and most code wants `bytes`. 16 KiB:
/// a copy costs under 3 µs, and a kept chunk pins at most 16 times its size.
pub(crate) const DEFAULT_COPY_THRESHOLD: usize = 16 << 10;

/// Events run per `dispatch` call: enough to amortise the crossing into
/// Python, few enough to keep one call short. At about 100 bytes an event,
/// 1024 keeps the vectors a dispatch moves events through (the core's and
/// ours) under glibc's mmap threshold, so they are not mapped and faulted in
/// afresh for every batch (measured with bench.py: 4096 and more lose).
pub(crate) const DEFAULT_BATCH: usize = 1024;

/// What a channel needs besides the core's config.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub config: ChannelConfig,
    pub copy_threshold: usize,
    pub batch: usize,
}

/// A `dialect=` argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DialectArg(pub Dialect);

impl<'a, 'py> FromPyObject<'a, 'py> for DialectArg {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        dialect(&obj).map(DialectArg)
    }
}

/// A `role=` argument (`None` is a value: generic frames).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoleArg(pub Option<Role>);

impl<'a, 'py> FromPyObject<'a, 'py> for RoleArg {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        role(Some(&obj)).map(RoleArg)
    }
}

/// `0`, `1`, `"v0"`, `"v1"` (or `"0"`, `"1"`).
pub(crate) fn dialect(obj: &Bound<'_, PyAny>) -> PyResult<Dialect> {
    if let Ok(n) = obj.extract::<i64>() {
        return match n {
            0 => Ok(Dialect::V0),
            1 => Ok(Dialect::V1),
            _ => Err(PyValueError::new_err(format!("dialect must be 0 or 1 (or \"v0\"/\"v1\"), not {n}"))),
        };
    }
    if let Ok(s) = obj.extract::<String>() {
        return match s.to_ascii_lowercase().as_str() {
            "v0" | "0" => Ok(Dialect::V0),
            "v1" | "1" => Ok(Dialect::V1),
            _ => Err(PyValueError::new_err(format!("dialect must be \"v0\" or \"v1\" (or 0/1), not {s:?}"))),
        };
    }
    Err(PyTypeError::new_err("dialect must be 0, 1, \"v0\" or \"v1\""))
}

/// `"worker"`, `"engine"` or `None` (generic frames).
pub(crate) fn role(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Role>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    match obj.extract::<String>()?.to_ascii_lowercase().as_str() {
        "worker" => Ok(Some(Role::Worker)),
        "engine" => Ok(Some(Role::Engine)),
        other => Err(PyValueError::new_err(format!("role must be \"worker\", \"engine\" or None, not {other:?}"))),
    }
}

pub(crate) fn role_name(role: Option<Role>) -> Option<&'static str> {
    role.map(|r| match r {
        Role::Worker => "worker",
        Role::Engine => "engine",
    })
}

fn profile(s: &str) -> PyResult<Profile> {
    match s.to_ascii_lowercase().as_str() {
        "compat" => Ok(Profile::Compat),
        "modern" => Ok(Profile::Modern),
        _ => Err(PyValueError::new_err(format!("profile must be \"compat\" or \"modern\", not {s:?}"))),
    }
}

/// `Channel(path)` / `Channel(host, port)`: a Unix socket path (str, bytes
/// or os.PathLike) when there is no port, else a TCP host and port.
pub(crate) fn endpoint(host: &Bound<'_, PyAny>, port: Option<u16>) -> PyResult<Endpoint> {
    match port {
        Some(port) => {
            let host: String = host
                .extract()
                .map_err(|_| PyTypeError::new_err("host must be a str (a name, an IPv4 or IPv6 literal)"))?;
            Ok(Endpoint::Tcp(host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
        }
        None => {
            if host.is_instance_of::<PyString>() || host.hasattr("__fspath__")? || host.is_instance_of::<pyo3::types::PyBytes>() {
                let path: std::path::PathBuf = host.extract()?;
                Ok(Endpoint::Unix(path))
            } else {
                Err(PyTypeError::new_err("Channel(path) takes a Unix socket path; Channel(host, port) a TCP address"))
            }
        }
    }
}

/// Settings shared by `Channel` and `Server` (accepted channels).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    dialect_arg: DialectArg,
    role_arg: RoleArg,
    profile_arg: &str,
    max_frame_size: Option<usize>,
    high_watermark: Option<usize>,
    low_watermark: Option<usize>,
    connect_timeout: Option<f64>,
    max_pending: Option<usize>,
    copy_threshold: Option<usize>,
    batch: Option<usize>,
    read_size: Option<usize>,
) -> PyResult<Opts> {
    let mut config = ChannelConfig::new(dialect_arg.0, role_arg.0);
    config.profile = profile(profile_arg)?;
    config.delivery = Delivery::Poll;
    if let Some(n) = max_frame_size {
        config.max_frame_size = n;
    }
    if let Some(n) = high_watermark {
        config.high_watermark = n;
    }
    if let Some(n) = low_watermark {
        config.low_watermark = n;
    }
    if config.low_watermark > config.high_watermark {
        return Err(PyValueError::new_err("low_watermark must not exceed high_watermark"));
    }
    config.connect_timeout = match connect_timeout {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => return Err(PyValueError::new_err(format!("connect_timeout must be a positive number of seconds or None, not {t}"))),
    };
    if let Some(n) = max_pending {
        config.max_pending = n;
    }
    if let Some(n) = read_size {
        config.read_size = n;
    }
    let batch = batch.unwrap_or(DEFAULT_BATCH);
    if batch == 0 {
        return Err(PyValueError::new_err("batch must be at least 1"));
    }
    Ok(Opts { config, copy_threshold: copy_threshold.unwrap_or(DEFAULT_COPY_THRESHOLD), batch })
}
