//! Keyword options into the core's settings. Every value goes through the
//! core's option table (`sluice_core::host`): this module only turns Python
//! values into `host::Input`s, so a value gets the same verdict and error
//! text as in C and Node. The process-wide settings
//! (`sluice.configure`, `sluice.setting`, `sluice.SETTINGS`) go through the
//! core's settings table the same way.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use sluice_core::host::{self, settings, Input, Kind, Lang, OptionError, Options, Spec};
use sluice_core::net::{ChannelConfig, Endpoint};
use sluice_core::wire::Role;

/// What a channel needs besides the core's config.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub config: ChannelConfig,
    /// Chunks of at least this many bytes arrive as a zero-copy `Payload`.
    pub copy_threshold: usize,
    /// Events run per `dispatch` call.
    pub batch: usize,
}

/// The table's default `copy_threshold` for Python (16 KiB: see the table
/// and the package README for why).
pub(crate) fn default_copy_threshold() -> usize {
    DEFAULTS.copy_threshold
}

static DEFAULTS: std::sync::LazyLock<Options> = std::sync::LazyLock::new(|| Options::new(Lang::Python));

/// The table's default `batch`.
pub(crate) fn default_batch() -> usize {
    DEFAULTS.batch
}

/// A Python value, owned, for the table.
enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl Value {
    fn input(&self) -> Input<'_> {
        match self {
            Value::Null => Input::Null,
            Value::Bool(b) => Input::Bool(*b),
            Value::Int(n) => Input::Int(*n),
            Value::Float(x) => Input::Float(*x),
            Value::Str(s) => Input::Str(s),
        }
    }
}

/// None, bool (before int: a bool is an int), int, float or str; anything
/// else is a TypeError.
fn value(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i128>() {
            Ok(n) => Ok(Value::Int(n)),
            // Beyond i128: the core refuses it, with its own text.
            Err(_) => Ok(obj.extract::<f64>().map(Value::Float).unwrap_or_else(|_| Value::Str(obj.to_string()))),
        }
    } else if obj.is_instance_of::<PyFloat>() {
        Ok(Value::Float(obj.extract()?))
    } else if obj.is_instance_of::<PyString>() {
        Ok(Value::Str(obj.extract()?))
    } else {
        let tname = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        Err(PyTypeError::new_err(format!("{name}: takes None, a bool, an int, a float or a str, not {tname}")))
    }
}

fn refused(e: OptionError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Whether `name` is an option of the table.
pub(crate) fn is_option(name: &str) -> bool {
    host::options::spec(Lang::Python, name).is_some()
}

/// Keyword options of the table, by name, in the order given.
pub(crate) type Named<'py> = Vec<(String, Bound<'py, PyAny>)>;

/// Keyword arguments split into the table's options (in the order given)
/// and the rest (callbacks: `on_*`).
pub(crate) fn split<'py>(kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<(Named<'py>, Option<Bound<'py, PyDict>>)> {
    let mut options = Vec::new();
    let Some(kw) = kwargs else { return Ok((options, None)) };
    let rest = PyDict::new(kw.py());
    for (k, v) in kw.iter() {
        let name: String = k.extract()?;
        if is_option(&name) {
            options.push((name, v));
        } else {
            rest.set_item(k, v)?;
        }
    }
    Ok((options, Some(rest)))
}

/// The table's options given as keywords to `what` (`"Channel"`), set in
/// the order given and validated: a value the table refuses is a
/// ValueError with the table's text (`"max_frame_size: must be a whole
/// number from 16 to 4294967295, got 0"`); a keyword that is no option, a
/// TypeError.
pub(crate) fn parse(what: &str, pairs: &[(String, Bound<'_, PyAny>)]) -> PyResult<Options> {
    let mut o = Options::new(Lang::Python);
    for (name, v) in pairs {
        if !is_option(name) {
            return Err(PyTypeError::new_err(format!("{what}() got an unexpected keyword argument '{name}'")));
        }
        let v = value(name, v)?;
        o.set(name, v.input()).map_err(refused)?;
    }
    o.validate().map_err(refused)?;
    Ok(o)
}

/// Settings for `Channel` and `Server` (accepted channels): `default_role`
/// unless `role` was given.
pub(crate) fn build(what: &str, default_role: Option<Role>, pairs: &[(String, Bound<'_, PyAny>)]) -> PyResult<Opts> {
    let o = parse(what, pairs)?;
    Ok(Opts { config: o.config(default_role), copy_threshold: o.copy_threshold, batch: o.batch })
}

/// A role's name (`"worker"`, `"engine"`), None for no role.
pub(crate) fn role_name(role: Option<Role>) -> Option<String> {
    role.map(|r| r.to_string())
}

/// `sluice.OPTIONS` (`host::OPTIONS`) and `sluice.SETTINGS`
/// (`settings::SETTINGS`): a table of the core, one dict per entry
/// (``name``, ``kind``, ``default``, ``doc``; counts also ``min`` and
/// ``max``, durations ``unit``).
pub(crate) fn table<'py>(py: Python<'py>, specs: &[Spec]) -> PyResult<Bound<'py, PyTuple>> {
    let mut rows = Vec::new();
    for s in specs {
        let d = PyDict::new(py);
        d.set_item("name", s.name_in(Lang::Python))?;
        let kind = match s.kind {
            Kind::Dialect => "dialect",
            Kind::Role => "role",
            Kind::Profile => "profile",
            Kind::Count { min, max } => {
                d.set_item("min", min)?;
                d.set_item("max", max)?;
                "count"
            }
            Kind::Flag => "flag",
            Kind::Timeout => "timeout",
            Kind::Duration => "duration",
            _ => "other",
        };
        d.set_item("kind", kind)?;
        d.set_item("default", s.default)?;
        if matches!(s.kind, Kind::Timeout | Kind::Duration) {
            d.set_item("unit", Lang::Python.time_unit())?;
        }
        d.set_item("doc", s.doc)?;
        rows.push(d);
    }
    PyTuple::new(py, rows)
}

/// `sluice.configure(**settings)`: each keyword is a process-wide setting
/// of the core's settings table, set in the order given. A value the table
/// refuses (or an unknown name) is a ValueError with the table's text
/// (`"max_service_connections: must be a whole number from 1 to
/// 4294967295, got 0"`, `"no_such: unknown setting"`), a value of another
/// Python type a TypeError; the settings before it stay set. Every name is
/// checked before anything is set.
pub(crate) fn configure(pairs: &Bound<'_, PyDict>) -> PyResult<()> {
    let mut named = Vec::with_capacity(pairs.len());
    for (k, v) in pairs.iter() {
        let name: String = k.extract()?;
        if settings::spec(Lang::Python, &name).is_none() {
            return Err(refused(OptionError { key: name, reason: "unknown setting".into() }));
        }
        named.push((name, v));
    }
    for (name, v) in &named {
        let v = value(name, v)?;
        settings::set(Lang::Python, name, v.input()).map_err(refused)?;
    }
    Ok(())
}

/// `sluice.setting(name)`: the current value of a process-wide setting;
/// counts as int, durations as float seconds, None for a timeout that is
/// off. An unknown name is a ValueError with the table's text.
pub(crate) fn setting(py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
    let text = settings::get(Lang::Python, name).map_err(refused)?;
    let spec = settings::spec(Lang::Python, name).expect("get knows the name");
    let bad = || PyValueError::new_err(format!("{name}: the core gave {text:?}"));
    if text == "null" {
        return Ok(py.None());
    }
    Ok(match spec.kind {
        Kind::Count { .. } => text.parse::<u64>().map_err(|_| bad())?.into_pyobject(py)?.into_any().unbind(),
        _ => text.parse::<f64>().map_err(|_| bad())?.into_pyobject(py)?.into_any().unbind(),
    })
}

/// `Channel(path)` / `Channel(host, port)`: a Unix socket path (str, bytes
/// or os.PathLike) when there is no port, else a TCP host and port.
pub(crate) fn endpoint(host: &Bound<'_, PyAny>, port: Option<u16>) -> PyResult<Endpoint> {
    match port {
        Some(port) => {
            let host: String = host.extract().map_err(|_| PyTypeError::new_err("host must be a str (a name, an IPv4 or IPv6 literal)"))?;
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
