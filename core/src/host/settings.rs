//! Process-wide settings: the bounds every server of the process shares
//! and the I/O threads, in one table like the channel options
//! ([`options`](super::options)). C (`sluice_set`), Python
//! (`sluice.configure(**settings)`) and Node (`configure({...})`) each hand
//! their values to [`set`]: the same value gets the same verdict and text.

use std::time::Duration;

use super::options::{Input, Kind, Lang, OptionError, Spec};
use crate::services;

/// Every process-wide setting, in the order the documentation lists them.
pub static SETTINGS: &[Spec] = &[
    Spec {
        name: "max_service_connections",
        js: "maxServiceConnections",
        kind: Kind::Count { min: 1, max: u32::MAX as u64 },
        default: "the descriptor limit (RLIMIT_NOFILE) less 64",
        doc: "Most connections the services of this process (hosted services, the Locator, attached services) keep open at once, all servers together; one accepted past it is closed at once, so that connections cannot use up the process's descriptors.",
    },
    Spec {
        name: "service_idle_timeout",
        js: "serviceIdleTimeout",
        kind: Kind::Timeout,
        default: "300 s",
        doc: "How long a connection to a hosted or attached service may stay idle (no channel open, nothing received) before it is ended with ETIMEDOUT; 0 or null: never. Connections to the Locator are not timed out.",
    },
    Spec {
        name: "io_threads",
        js: "ioThreads",
        kind: Kind::Count { min: 1, max: 1024 },
        default: "2 ($SLUICE_THREADS)",
        doc: "I/O threads of the runtime that serves every connection; takes effect only before the first connection or server of the process is made.",
    },
];

/// The setting called `key` in `lang`.
pub fn spec(lang: Lang, key: &str) -> Option<&'static Spec> {
    SETTINGS.iter().find(|s| s.name_in(lang) == key)
}

/// Sets the process-wide setting called `key` (in `lang`) to `value`.
/// Null leaves a count as it is and means "never" for a timeout.
pub fn set(lang: Lang, key: &str, value: Input<'_>) -> Result<(), OptionError> {
    let spec = spec(lang, key).ok_or_else(|| OptionError { key: key.to_string(), reason: "unknown setting".into() })?;
    let refuse = |reason: String| OptionError { key: spec.name_in(lang).to_string(), reason };
    match spec.kind {
        Kind::Count { min, max } => {
            if value == Input::Null {
                return Ok(());
            }
            let n = super::options::whole(value)
                .filter(|n| (min as i128..=max as i128).contains(n))
                .ok_or_else(|| refuse(format!("must be a whole number from {min} to {max}, got {value}")))? as usize;
            match spec.name {
                "max_service_connections" => services::set_max_service_connections(n),
                "io_threads" => {
                    if !crate::net::runtime::set_threads(n) {
                        return Err(refuse("the runtime is already running: set it before the first connection or server".into()));
                    }
                }
                other => unreachable!("count {other}"),
            }
        }
        Kind::Timeout => {
            let t = super::options::timeout(lang, value).ok_or_else(|| {
                refuse(format!("must be a number of {} from 0 to 1000000000 (0 or null: never), got {value}", lang.time_unit()))
            })?;
            match spec.name {
                "service_idle_timeout" => services::set_service_idle_timeout(t),
                other => unreachable!("timeout {other}"),
            }
        }
        _ => unreachable!("setting kind {:?}", spec.kind),
    }
    Ok(())
}

/// The current value of the setting called `key` (in `lang`), as text in
/// the language's unit (`"null"` for a timeout that is off).
pub fn get(lang: Lang, key: &str) -> Result<String, OptionError> {
    let spec = spec(lang, key).ok_or_else(|| OptionError { key: key.to_string(), reason: "unknown setting".into() })?;
    let time = |t: Option<Duration>| match (t, lang) {
        (None, _) => "null".to_string(),
        (Some(t), Lang::Python) => format!("{}", t.as_secs_f64()),
        (Some(t), _) => format!("{}", t.as_millis()),
    };
    Ok(match spec.name {
        "max_service_connections" => services::max_service_connections().to_string(),
        "service_idle_timeout" => time(services::service_idle_timeout()),
        "io_threads" => crate::net::runtime::threads().to_string(),
        other => unreachable!("setting {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_the_same_values_and_refuse_with_the_same_texts_as_options() {
        // Tests in this binary share the process: only read-back-safe values.
        assert_eq!(set(Lang::C, "nope", Input::Int(1)).unwrap_err().to_string(), "nope: unknown setting");
        let e = set(Lang::Node, "maxServiceConnections", Input::Int(0)).unwrap_err();
        assert_eq!(e.to_string(), "maxServiceConnections: must be a whole number from 1 to 4294967295, got 0");
        let e = set(Lang::Python, "service_idle_timeout", Input::Float(-1.0)).unwrap_err();
        assert_eq!(e.to_string(), "service_idle_timeout: must be a number of seconds from 0 to 1000000000 (0 or null: never), got -1");
        set(Lang::Python, "service_idle_timeout", Input::Float(2.5)).unwrap();
        assert_eq!(get(Lang::Python, "service_idle_timeout").unwrap(), "2.5");
        assert_eq!(get(Lang::C, "service_idle_timeout").unwrap(), "2500");
        set(Lang::C, "service_idle_timeout", Input::from_text("0")).unwrap();
        assert_eq!(get(Lang::Node, "serviceIdleTimeout").unwrap(), "null");
        set(Lang::C, "service_idle_timeout", Input::from_text("300000")).unwrap();
        assert_eq!(services::service_idle_timeout(), Some(Duration::from_secs(300)));
        let n = services::max_service_connections();
        set(Lang::C, "max_service_connections", Input::from_text(&n.to_string())).unwrap();
        assert_eq!(get(Lang::C, "max_service_connections").unwrap(), n.to_string());
    }
}
