//! The Logger client (docs/PROTOCOL.md §7.4): `emit(priority, source, message,
//! attributes)` to the `logging` service, skipping messages below the
//! verbosity the service reports once per connection.

use std::sync::Mutex;

use super::{block_on, within, Error, Locator, Service};
use crate::wire::Value;

/// A log priority (v1 numbering: 0 debug … 3 error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 0.
    Debug = 0,
    /// 1.
    Info = 1,
    /// 2.
    Warning = 2,
    /// 3.
    Error = 3,
}

impl Level {
    /// The level of a priority number (above 3 counts as error, below 0 as debug).
    pub fn from_i64(p: i64) -> Level {
        match p {
            i64::MIN..=0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warning,
            _ => Level::Error,
        }
    }

    /// The level called `name` (`debug`, `info`, `warning`/`warn`, `error`).
    pub fn from_name(name: &str) -> Option<Level> {
        Some(match name.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A client of the `logging` service. Messages carry the source
/// `app/<app>`; those below the service's verbosity are not sent. The
/// verbosity is asked once after each (re)connection.
pub struct Logger {
    service: Service,
    source: String,
    /// (connection generation, verbosity) of the last answer.
    verbosity: Mutex<Option<(u64, i64)>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Logger {
    /// A logger for the app `app` (source `app/<app>`), through the
    /// `logging` service of `locator`.
    pub fn new(locator: &Locator, app: &str) -> Logger {
        Logger::with_service(locator.service("logging"), &format!("app/{app}"))
    }

    /// A logger writing to `service` with this exact source.
    pub fn with_service(service: Service, source: &str) -> Logger {
        Logger { service, source: source.to_string(), verbosity: Mutex::new(None) }
    }

    /// The source every message carries.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The service it writes to.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The service's verbosity: connects if needed, asks once per connection.
    pub async fn verbosity(&self) -> Result<i64, Error> {
        self.service.connect().await?;
        let generation = self.service.generation();
        if let Some((g, v)) = *self.verbosity.lock().unwrap_or_else(|e| e.into_inner()) {
            if g == generation {
                return Ok(v);
            }
        }
        let v = within(self.service.request_timeout(), async { self.service.call("verbosity", vec![]).await?.value().await }).await?;
        let v = v.first().and_then(Value::as_i64).ok_or_else(|| Error::BadReply("verbosity is not an integer".into()))?;
        *self.verbosity.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, v));
        Ok(v)
    }

    /// Sends a message with attributes (`[name, value]` pairs) unless its
    /// level is below the verbosity; returns whether it was sent.
    pub async fn emit(&self, level: Level, message: &str, attributes: &[(&str, Value)]) -> Result<bool, Error> {
        if (level as i64) < self.verbosity().await? {
            return Ok(false);
        }
        let attrs = Value::Array(attributes.iter().map(|(k, v)| Value::Array(vec![Value::from(*k), v.clone()])).collect());
        let args = vec![Value::from(level as i64), Value::from(self.source.as_str()), Value::from(message), attrs];
        self.service.call("emit", args).await?;
        Ok(true)
    }

    /// [`emit`](Self::emit) for threads outside the runtime.
    pub fn emit_blocking(&self, level: Level, message: &str, attributes: &[(&str, Value)]) -> Result<bool, Error> {
        block_on(self.emit(level, message, attributes))?
    }

    /// `emit_blocking(Level::Debug, message, [])`.
    pub fn debug(&self, message: &str) -> Result<bool, Error> {
        self.emit_blocking(Level::Debug, message, &[])
    }

    /// `emit_blocking(Level::Info, message, [])`.
    pub fn info(&self, message: &str) -> Result<bool, Error> {
        self.emit_blocking(Level::Info, message, &[])
    }

    /// `emit_blocking(Level::Warning, message, [])`.
    pub fn warning(&self, message: &str) -> Result<bool, Error> {
        self.emit_blocking(Level::Warning, message, &[])
    }

    /// `emit_blocking(Level::Error, message, [])`.
    pub fn error(&self, message: &str) -> Result<bool, Error> {
        self.emit_blocking(Level::Error, message, &[])
    }
}
