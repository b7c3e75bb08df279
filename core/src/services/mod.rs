//! Cocaine services over sluice channels: the method graph, clients that
//! resolve services through the Locator and call them, a Logger client, and
//! the serving side — hosting services, a Locator whose table is a registry
//! of online services, and remote invocation of services that connected
//! clients attach (a sluice extension, `docs/attach.md`).
//!
//! * [`graph`] — method graphs (docs/PROTOCOL.md §3.3, §7.2): decode, encode, print.
//! * [`Locator`], [`Service`], [`Call`] — the client (docs/PROTOCOL.md §7).
//! * [`Logger`] — the logging service client (docs/PROTOCOL.md §7.4).
//! * [`ServiceDef`], [`Hosted`], [`Responder`] — hosting a service.
//! * [`LocatorServer`], [`Registry`] — a Locator and its service registry.
//! * [`Attached`] — a service a client provides over its Locator connection.
//! * [`demo`] — the built-in demo services of `sluice serve`.
//!
//! Every network operation exists as an `async fn` (for tokio programs) and
//! as a `*_blocking` function for threads outside the runtime (C, Python,
//! plain Rust). A blocking call made on a runtime thread returns
//! [`Error::InRuntime`] instead of deadlocking.
//!
//! ```no_run
//! use sluice_core::services::Locator;
//! use sluice_core::wire::Value;
//!
//! let locator = Locator::default(); // localhost:10053
//! let math = locator.service("math");
//! let sum = math.call_blocking("add", vec![Value::from(2u64), Value::from(3u64)])?.value_blocking()?;
//! println!("{sum:?}");
//! # Ok::<(), sluice_core::services::Error>(())
//! ```

pub mod demo;
pub mod graph;

mod attach;
mod client;
mod host;
mod locator;
mod logger;
mod peer;

use std::fmt;
use std::time::Duration;

pub use attach::Attached;
pub use client::{Locator, Resolved, Service, ServiceState};
pub use host::{Hosted, MethodFn, Publication, Request, Responder, ServiceDef};
pub use locator::{Entry, LocatorServer, Registry, MAX_NAMES_PER_CONNECTION, MAX_SERVICES};
pub use logger::{Level, Logger};
pub use peer::{Call, CallSender, Follow, Inbound, Reply};

use crate::wire::{Dialect, Value};

/// The Locator's usual port.
pub const LOCATOR_PORT: u16 = 10053;

/// Error category of the Locator (docs/PROTOCOL.md §3.5).
pub const LOCATOR_CATEGORY: i64 = 10;
/// Most msgpack values one message's arguments may decode into (the
/// arguments and every element of their arrays and maps), on either side
/// of a service connection. A decoded value takes about 40 bytes whatever
/// its size on the wire, so without a bound a 20 MiB frame of nils would
/// cost 800 MiB; past it a call is refused with `[7, 2]` ("unreadable
/// arguments: more than 262144 msgpack values") and a reply fails the call
/// with [`Error::BadReply`], before the values are built.
pub const MAX_ARG_VALUES: usize = 1 << 18;

/// The largest frame a hosted service, the Locator or an attached service
/// accepts from a caller: 64 MiB (a channel's default, 512 MiB, is for
/// worker chunks). A larger frame ends that caller's connection with
/// `EMSGSIZE` as soon as its size is declared; calls carry more data as a
/// stream of smaller writes.
pub const SERVICE_MAX_FRAME_SIZE: usize = 64 << 20;

/// Descriptors kept free for everything but accepted service connections
/// (listening sockets, files, outgoing connections) when the connection
/// cap is taken from the descriptor limit: see
/// [`max_service_connections`].
pub const CONNECTION_RESERVE: usize = 64;

static SERVICE_CONNECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MAX_SERVICE_CONNECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many connections the services of this process (hosted services, the
/// Locator, attached services) keep open at once, all servers together.
/// By default the descriptor limit (`RLIMIT_NOFILE`'s soft limit, read at
/// the first call) less [`CONNECTION_RESERVE`], at least 16. A connection
/// accepted past it is closed at once — the caller sees the connection end
/// before any reply — so that idle connections cannot use up the process's
/// descriptors (after which `accept` fails with `EMFILE` for everyone, and
/// listening and outgoing sockets cannot be made); calls are served again
/// as soon as connections end.
pub fn max_service_connections() -> usize {
    use std::sync::atomic::Ordering;
    let n = MAX_SERVICE_CONNECTIONS.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur as usize } else { 1024 };
    let n = soft.saturating_sub(CONNECTION_RESERVE).max(16);
    let _ = MAX_SERVICE_CONNECTIONS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed);
    MAX_SERVICE_CONNECTIONS.load(Ordering::Relaxed)
}

/// Sets [`max_service_connections`] (at least 1) for the servers of this
/// process, for example after raising the descriptor limit; connections
/// already open stay.
pub fn set_max_service_connections(n: usize) {
    MAX_SERVICE_CONNECTIONS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// How many service connections are open now (see
/// [`max_service_connections`]).
pub fn service_connections() -> usize {
    SERVICE_CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

static SERVICE_IDLE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_SERVICE_IDLE_TIMEOUT.as_millis() as u64);

/// The default of [`service_idle_timeout`]: 5 minutes.
pub const DEFAULT_SERVICE_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a connection to a hosted or attached service may stay idle —
/// no channel open either way and nothing received — before the service
/// ends it (`ETIMEDOUT`); sluice's clients connect again at their next call.
/// Connections to the Locator are not timed out (a publisher's
/// registrations live as long as its connection). `None`: never.
pub fn service_idle_timeout() -> Option<std::time::Duration> {
    match SERVICE_IDLE_MS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        ms => Some(std::time::Duration::from_millis(ms)),
    }
}

/// Sets [`service_idle_timeout`] for the services of this process (`None`:
/// never; at least 1 ms). Takes effect at the next check of each service
/// (within a quarter of the old timeout, at most 10 s).
pub fn set_service_idle_timeout(t: Option<std::time::Duration>) {
    let ms = t.map_or(0, |t| (t.as_millis() as u64).max(1));
    SERVICE_IDLE_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// Takes one connection from the cap, or says there is none left.
pub(crate) fn take_connection() -> bool {
    use std::sync::atomic::Ordering;
    let max = max_service_connections();
    SERVICE_CONNECTIONS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

/// Gives back a connection taken with [`take_connection`].
pub(crate) fn give_connection() {
    SERVICE_CONNECTIONS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
}

/// Error category of system errors, with an errno as the code
/// (docs/PROTOCOL.md §3.5): sluice refuses a call so when a connection is
/// past one of its bounds (`ENOBUFS`: too many channels open at once).
pub const SYSTEM_CATEGORY: i64 = 1;
/// Error category of dispatch errors (docs/PROTOCOL.md §3.5).
pub const DISPATCH_CATEGORY: i64 = 7;
/// Locator code: the service is not available.
pub const SERVICE_NOT_AVAILABLE: i64 = 1;
/// Locator code: the routing storage (here: the registry) failed.
pub const ROUTING_STORAGE_ERROR: i64 = 2;
/// Locator code: a service of that name is already online.
pub const DUPLICATE_SERVICE: i64 = 4;
/// Dispatch code: invalid argument.
pub const INVALID_ARGUMENT: i64 = 2;
/// Dispatch code: no such method.
pub const SLOT_NOT_FOUND: i64 = 5;
/// Dispatch code: the handler failed without a reply.
pub const UNCAUGHT_ERROR: i64 = 7;

/// An error a service answered with: `error([category, code], message)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The error category (docs/PROTOCOL.md §3.5); `None` for v0 services.
    pub category: Option<i64>,
    /// The code within the category.
    pub code: i64,
    /// The message, empty when the service sent none.
    pub message: String,
}

impl ServiceError {
    /// An error from its parts.
    pub fn new(category: i64, code: i64, message: impl Into<String>) -> ServiceError {
        ServiceError { category: Some(category), code, message: message.into() }
    }

    /// Reads the arguments of an `error` message: v1 `[[category, code],
    /// message?]`, v0 `[code, message]`.
    pub fn from_args(args: &[Value]) -> Option<ServiceError> {
        let message = args.get(1).and_then(|m| m.as_bytes()).map(|m| String::from_utf8_lossy(m).into_owned());
        match args.first()? {
            Value::Array(pair) if pair.len() == 2 => {
                Some(ServiceError { category: Some(pair[0].as_i64()?), code: pair[1].as_i64()?, message: message.unwrap_or_default() })
            }
            v => Some(ServiceError { category: None, code: v.as_i64()?, message: message.unwrap_or_default() }),
        }
    }

    /// The arguments of the `error` message that carries this error.
    pub fn to_args(&self) -> Vec<Value> {
        let id = match self.category {
            Some(c) => Value::Array(vec![Value::from(c), Value::from(self.code)]),
            None => Value::from(self.code),
        };
        vec![id, Value::from(self.message.as_str())]
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.category {
            Some(c) => write!(f, "[{c}, {}]", self.code)?,
            None => write!(f, "[{}]", self.code)?,
        }
        if !self.message.is_empty() {
            write!(f, " {}", self.message)?;
        }
        Ok(())
    }
}

/// Errors of service clients and hosts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error.
    #[error("{0}")]
    Service(ServiceError),
    /// The Locator does not know the service (or it is offline).
    #[error("service '{0}' is not available")]
    NotFound(String),
    /// The service's graph has no method of that name.
    #[error("service '{service}' has no method '{method}'")]
    UnknownMethod {
        /// The service.
        service: String,
        /// The method asked for.
        method: String,
    },
    /// No endpoint could be reached; each endpoint tried with its errno.
    #[error("cannot connect to {what}: {}", describe_attempts(.tried))]
    Connect {
        /// What was being reached (`the locator`, `service 'x'`).
        what: String,
        /// Each endpoint tried, with the errno it failed with.
        tried: Vec<(String, i32)>,
    },
    /// The connection ended while the call was open (errno, docs/PROTOCOL.md §8.3).
    #[error("connection lost ({})", errno_name(*.0))]
    Disconnected(i32),
    /// A message this side tried to send is not allowed by the graph now.
    #[error("'{0}' is not allowed in the current protocol")]
    NotAllowed(String),
    /// The send queue is full: retry after the peer has read.
    #[error("the send queue is full")]
    WouldBlock,
    /// The call has ended or its connection is closed.
    #[error("the call or connection is closed")]
    Closed,
    /// A reply that does not have the expected shape.
    #[error("bad reply: {0}")]
    BadReply(String),
    /// Replies arrived faster than they were read, past the call's limit.
    #[error("too many unread replies (more than {0} bytes)")]
    Overflow(usize),
    /// Nothing came within the time allowed.
    #[error("timed out")]
    Timeout,
    /// A blocking call was made on a thread of the async runtime.
    #[error("blocking call on an async runtime thread: use the async form")]
    InRuntime,
    /// A local failure (binding a socket, starting the runtime).
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}

/// A short name for an errno value sluice reports (`"errno N"` for one
/// without a name).
pub fn errno_name(e: i32) -> String {
    match crate::errno::name(e) {
        "EUNKNOWN" => format!("errno {e}"),
        n => n.to_string(),
    }
}

fn describe_attempts(tried: &[(String, i32)]) -> String {
    if tried.is_empty() {
        return "no endpoints".into();
    }
    tried.iter().map(|(e, n)| format!("{e} ({})", errno_name(*n))).collect::<Vec<_>>().join(", ")
}

/// Settings of service clients.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The protocol dialect (v1 for Cocaine 0.12).
    pub dialect: Dialect,
    /// How long a connect may take before the next endpoint is tried.
    pub connect_timeout: Duration,
    /// How long to wait for a Locator's answer (and for the first reply of
    /// internal calls such as the Logger's `verbosity`); `None`: forever.
    pub request_timeout: Option<Duration>,
    /// Unread reply bytes one call may hold before it fails with
    /// [`Error::Overflow`].
    pub max_pending: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            dialect: Dialect::V1,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(30)),
            max_pending: 64 << 20,
        }
    }
}

/// Runs `f` to completion on the calling thread (which must not be a thread
/// of the runtime).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InRuntime);
    }
    Ok(crate::net::runtime::handle()?.block_on(f))
}

/// Waits for `f`, or fails with [`Error::Timeout`] after `limit`.
pub(crate) async fn within<T>(limit: Option<Duration>, f: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match limit {
        Some(d) => tokio::time::timeout(d, f).await.unwrap_or(Err(Error::Timeout)),
        None => f.await,
    }
}
