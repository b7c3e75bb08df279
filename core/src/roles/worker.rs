//! The worker: the app side of the engine protocol (docs/PROTOCOL.md §6).
//! One file: the role, its timers' state machine and its stream handles.
//!
//! A [`Worker`] connects to the engine's Unix socket, sends the handshake
//! with its uuid and the first heartbeat, heartbeats on an interval, and
//! disowns itself (`ETIMEDOUT`, then [`WorkerEvent::Disown`]) when the engine
//! has sent nothing on the control channel for the disown timeout. Each
//! `invoke` from the engine becomes a [`WorkerStream`] to answer on.
//!
//! ```no_run
//! use sluice_core::roles::{Worker, WorkerEvent, WorkerOptions};
//!
//! let opts = WorkerOptions::from_args(std::env::args().skip(1)).expect("worker arguments");
//! let worker = Worker::connect(opts, |w: &Worker, ev| match ev {
//!     WorkerEvent::Invoke { stream, event, .. } => println!("invoke {event:?} on {}", stream.session()),
//!     WorkerEvent::Chunk { session, data } => {
//!         let _ = w.stream(session).write(&data); // echo
//!     }
//!     WorkerEvent::Close { session } => {
//!         let _ = w.stream(session).close();
//!     }
//!     WorkerEvent::Terminate { code, reason } => w.terminate(code, &String::from_utf8_lossy(&reason)),
//!     WorkerEvent::Disconnected { errno, .. } => std::process::exit(if errno == 0 { 0 } else { 1 }),
//!     _ => {}
//! })?;
//! # let _ = worker;
//! # Ok::<(), std::io::Error>(())
//! ```

use super::streams::Streams;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::errno;
use crate::net::{runtime, Channel, ChannelConfig, DispatchError, Endpoint, Event, Handler, SendError};
use crate::wire::message::FRAMEWORK_CATEGORY;
use crate::wire::{Dialect, Header, Message, Role};

/// Defaults of docs/PROTOCOL.md §6.3.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// The disown timeout by default (§6.3: after the last engine frame).
pub const DEFAULT_DISOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a worker starts: the runtime's arguments (§6.1) and the timers.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `--app`: the app's name.
    pub app: String,
    /// `--uuid`: sent in the handshake.
    pub uuid: String,
    /// `--endpoint`: the engine's socket.
    pub endpoint: Endpoint,
    /// `--locator`: where the Locator listens (`host:port` entries).
    pub locator: Vec<String>,
    /// `--protocol`: absent is v0, `1` is v1.
    pub dialect: Dialect,
    /// How often to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// Disown after this long without a control frame from the engine.
    pub disown_timeout: Duration,
    /// The channel's settings (delivery mode, limits); its dialect and role
    /// are set from the fields above.
    pub channel: ChannelConfig,
}

/// A worker argument list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad worker arguments: {0}")]
pub struct WorkerArgsError(pub String);

impl WorkerOptions {
    /// Options for a worker with this uuid and engine endpoint, with the
    /// default timers.
    pub fn new(uuid: &str, endpoint: Endpoint, dialect: Dialect) -> WorkerOptions {
        WorkerOptions {
            app: String::new(),
            uuid: uuid.to_string(),
            endpoint,
            locator: Vec::new(),
            dialect,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            disown_timeout: DEFAULT_DISOWN_TIMEOUT,
            channel: ChannelConfig::new(dialect, Some(Role::Worker)),
        }
    }

    /// Reads the standard worker arguments (flag/value pairs, without the
    /// program name): `--app`, `--uuid`, `--endpoint`, `--locator`,
    /// `--protocol`. `--uuid` and `--endpoint` are required; unknown flags
    /// are skipped with their value.
    pub fn from_args<I, S>(args: I) -> Result<WorkerOptions, WorkerArgsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut app = String::new();
        let mut uuid = None;
        let mut endpoint = None;
        let mut locator = Vec::new();
        let mut dialect = Dialect::V0;
        for (flag, value) in flag_pairs(args)? {
            let value = value.as_str();
            match flag.as_str() {
                "--app" => app = value.to_string(),
                "--uuid" => uuid = Some(value.to_string()),
                "--endpoint" => {
                    endpoint =
                        Some(Endpoint::parse(value).ok_or_else(|| WorkerArgsError(format!("--endpoint {value:?} is not an endpoint")))?)
                }
                "--locator" => locator = value.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                "--protocol" => dialect = protocol(value)?,
                _ => {}
            }
        }
        let uuid = uuid.ok_or_else(|| WorkerArgsError("--uuid is missing".into()))?;
        let endpoint = endpoint.ok_or_else(|| WorkerArgsError("--endpoint is missing".into()))?;
        let mut o = WorkerOptions::new(&uuid, endpoint, dialect);
        o.app = app;
        o.locator = locator;
        Ok(o)
    }
}

/// The runtime's flags as (flag, value) pairs: `--flag value` and
/// `--flag=value` alike.
fn flag_pairs<I, S>(args: I) -> Result<Vec<(String, String)>, WorkerArgsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let flag = flag.as_ref();
        if !flag.starts_with("--") {
            return Err(WorkerArgsError(format!("unexpected argument {flag:?}")));
        }
        match flag.split_once('=') {
            Some((f, v)) => out.push((f.to_string(), v.to_string())),
            None => {
                let value = it.next().ok_or_else(|| WorkerArgsError(format!("{flag} needs a value")))?;
                out.push((flag.to_string(), value.as_ref().to_string()));
            }
        }
    }
    Ok(out)
}

/// `--protocol`'s value: `0` is v0, `1` is v1 (also `v0`, `v1`).
fn protocol(value: &str) -> Result<Dialect, WorkerArgsError> {
    value.parse().map_err(|_| WorkerArgsError(format!("--protocol {value:?}: must be 0 or 1")))
}

/// The dialect the runtime asks for in a worker's arguments (without the
/// program name): `--protocol 1` or `--protocol=1` is v1, `0` v0; absent,
/// v0 (the runtimes that predate the flag speak v0). The one rule for
/// every binding that reads the flag; other flags are skipped.
pub fn protocol_from_args<I, S>(args: I) -> Result<Dialect, WorkerArgsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    let mut it = args.iter();
    let mut dialect = Dialect::V0;
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--protocol=") {
            dialect = protocol(v)?;
        } else if a == "--protocol" {
            let v = it.next().ok_or_else(|| WorkerArgsError("--protocol needs a value".into()))?;
            dialect = protocol(v)?;
        }
    }
    Ok(dialect)
}

/// What a worker tells its handler. Events of one worker arrive one at a
/// time, in wire order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// Connected: the handshake and the first heartbeat are sent.
    Connected,
    /// The engine opened a session for `event`.
    Invoke {
        /// The session, to answer on.
        stream: WorkerStream,
        /// The event name.
        event: Bytes,
        /// The invoke's v1 headers.
        headers: Vec<Header>,
    },
    /// Request data on a session.
    Chunk {
        /// The session.
        session: u64,
        /// The bytes.
        data: Bytes,
    },
    /// The engine failed a session (its direction ends).
    Error {
        /// The session.
        session: u64,
        /// v1 category (`None` in v0).
        category: Option<i64>,
        /// The code.
        code: i64,
        /// The message, if any.
        message: Option<Bytes>,
    },
    /// The engine's direction of a session ended (v0 `choke`, v1 `close`).
    Close {
        /// The session.
        session: u64,
    },
    /// The engine answered a heartbeat.
    Heartbeat,
    /// The engine asks the worker to stop: finish or abort the open
    /// sessions, then answer with [`Worker::terminate`].
    Terminate {
        /// The engine's code (v0: 1 normal, 2 abnormal; v1: opaque).
        code: i64,
        /// Why.
        reason: Bytes,
    },
    /// The engine said nothing for the disown timeout: the worker has
    /// closed its connection. [`WorkerEvent::Disconnected`] with `ETIMEDOUT`
    /// follows.
    Disown,
    /// The send queue fell to its low watermark after a refused send.
    Drain,
    /// The connection ended (the last event): `errno` as in docs/PROTOCOL.md
    /// §8.3, and the sessions that were still open (they are failed: every
    /// stream of this worker refuses sends from now on).
    Disconnected {
        /// Why the connection ended.
        errno: i32,
        /// Sessions that had not ended in both directions.
        sessions: Vec<u64>,
    },
}

/// Receives a worker's events: on an I/O thread (inline delivery), or in
/// [`Worker::dispatch`] on the host's thread (poll delivery). Implemented
/// for closures.
pub trait WorkerHandler: Send + 'static {
    /// Handles one event. It may call any method of `worker`.
    fn on_event(&mut self, worker: &Worker, event: WorkerEvent);
}

impl<F: FnMut(&Worker, WorkerEvent) + Send + 'static> WorkerHandler for F {
    fn on_event(&mut self, worker: &Worker, event: WorkerEvent) {
        self(worker, event)
    }
}

/// Why a stream refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The send queue is at its high watermark: wait for the drain event.
    #[error("the send queue is full (would block)")]
    WouldBlock,
    /// The connection is closed or ended.
    #[error("the connection is closed")]
    Closed,
    /// This side already ended the stream (error or close sent): nothing
    /// may follow on it (docs/PROTOCOL.md §3.2).
    #[error("the stream has ended")]
    Ended,
    /// Not a session this side knows.
    #[error("no such session")]
    NoSession,
}

impl From<SendError> for StreamError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::WouldBlock => StreamError::WouldBlock,
            SendError::Closed => StreamError::Closed,
        }
    }
}

/// What the timers want done (see [`Timers::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Send a heartbeat.
    Heartbeat,
    /// The engine is silent: disown.
    Disown,
}

/// A worker's timers as a state machine over explicit instants: the
/// heartbeat schedule and the disown deadline. The worker runs it on the
/// runtime; tests drive it with a fake clock.
#[derive(Debug, Clone)]
pub struct Timers {
    interval: Duration,
    disown: Duration,
    next_heartbeat: Instant,
    deadline: Instant,
}

impl Timers {
    /// Timers started at `now`, when the handshake and the first heartbeat
    /// were sent.
    pub fn new(interval: Duration, disown: Duration, now: Instant) -> Timers {
        Timers { interval, disown, next_heartbeat: now + interval, deadline: now + disown }
    }

    /// A control frame came from the engine at `now`.
    pub fn engine_frame(&mut self, now: Instant) {
        self.deadline = self.deadline.max(now + self.disown);
    }

    /// When [`poll`](Self::poll) has something to do next.
    pub fn next_wakeup(&self) -> Instant {
        self.next_heartbeat.min(self.deadline)
    }

    /// What is due at `now`: disown has priority; one heartbeat however
    /// many intervals were missed.
    pub fn poll(&mut self, now: Instant) -> Option<TimerAction> {
        if now >= self.deadline {
            return Some(TimerAction::Disown);
        }
        if now >= self.next_heartbeat {
            while self.next_heartbeat <= now {
                self.next_heartbeat += self.interval;
            }
            return Some(TimerAction::Heartbeat);
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Active,
    /// The engine sent terminate.
    EngineTerminated,
    /// This side sent terminate or closed.
    Stopped,
}

struct State {
    phase: Phase,
    timers: Option<Timers>,
    streams: Streams,
    disowned: bool,
}

struct Inner {
    opts: WorkerOptions,
    channel: OnceLock<Channel>,
    state: Mutex<State>,
    stop_timers: Notify,
}

/// A worker connection to the engine. Cheap to clone: clones are handles
/// to the same worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("uuid", &self.inner.opts.uuid).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    /// Connects to the engine in the background. The handler gets
    /// [`WorkerEvent::Connected`] (handshake sent) or
    /// [`WorkerEvent::Disconnected`] first.
    pub fn connect(opts: WorkerOptions, handler: impl WorkerHandler) -> std::io::Result<Worker> {
        let mut config = opts.channel.clone();
        config.dialect = opts.dialect;
        config.role = Some(Role::Worker);
        let endpoint = opts.endpoint.clone();
        let worker = Worker {
            inner: Arc::new(Inner {
                opts,
                channel: OnceLock::new(),
                state: Mutex::new(State { phase: Phase::Connecting, timers: None, streams: Streams::default(), disowned: false }),
                stop_timers: Notify::new(),
            }),
        };
        let ch = Channel::connect(endpoint, config, Glue { worker: worker.clone(), user: Box::new(handler) })?;
        let _ = worker.inner.channel.set(ch);
        Ok(worker)
    }

    /// The options it was started with.
    pub fn options(&self) -> &WorkerOptions {
        &self.inner.opts
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.inner.opts.dialect
    }

    /// The underlying channel (for raw sends and queue figures).
    pub fn channel(&self) -> Option<&Channel> {
        self.inner.channel.get()
    }

    fn control(&self) -> u64 {
        self.inner.opts.dialect.control_session()
    }

    /// The stream of `session`, to write to (streams of unknown or ended
    /// sessions refuse every send).
    pub fn stream(&self, session: u64) -> WorkerStream {
        WorkerStream { worker: self.clone(), session }
    }

    /// Sessions open in at least one direction.
    pub fn open_sessions(&self) -> usize {
        lock(&self.inner.state).streams.len()
    }

    /// Sends `terminate(code, reason)` to the engine and closes the
    /// connection gracefully (what is queued is written first). No event is
    /// delivered afterwards. v0 codes: 1 normal, 2 abnormal (the engine
    /// marks the app broken); v1 engines ignore the code.
    pub fn terminate(&self, code: i64, reason: &str) {
        if let Some(ch) = self.inner.channel.get() {
            let _ = ch.send(self.control(), &Message::Terminate { code, reason: Bytes::copy_from_slice(reason.as_bytes()) });
        }
        self.close();
    }

    /// Closes the connection gracefully without a terminate; no event is
    /// delivered afterwards.
    pub fn close(&self) {
        {
            let mut st = lock(&self.inner.state);
            st.phase = Phase::Stopped;
            st.streams.take_all();
        }
        self.inner.stop_timers.notify_one();
        if let Some(ch) = self.inner.channel.get() {
            ch.close();
        }
    }

    /// Poll delivery: the descriptor that is readable while events wait.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.channel.get().and_then(Channel::fd)
    }

    /// Poll delivery: runs the handler on this thread for up to `max`
    /// waiting events.
    pub fn dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        match self.inner.channel.get() {
            Some(ch) => ch.dispatch(max),
            None => Ok(0),
        }
    }

    fn send_stream(&self, session: u64, msg: &Message) -> Result<(), StreamError> {
        let ch = self.inner.channel.get().ok_or(StreamError::Closed)?;
        lock(&self.inner.state).streams.send(ch, session, msg)
    }

    fn start_timers(&self, ch: &Channel) {
        let now = Instant::now();
        let o = &self.inner.opts;
        lock(&self.inner.state).timers = Some(Timers::new(o.heartbeat_interval, o.disown_timeout, now));
        let Ok(rt) = runtime::handle() else { return };
        let w = self.clone();
        let ch = ch.clone();
        rt.spawn(async move {
            loop {
                let next = match &lock(&w.inner.state).timers {
                    Some(t) => t.next_wakeup(),
                    None => return,
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
                    _ = w.inner.stop_timers.notified() => return,
                }
                let action = {
                    let mut st = lock(&w.inner.state);
                    if st.phase == Phase::Stopped {
                        return;
                    }
                    let action = st.timers.as_mut().and_then(|t| t.poll(Instant::now()));
                    if action == Some(TimerAction::Disown) {
                        st.disowned = true;
                    }
                    action
                };
                match action {
                    Some(TimerAction::Heartbeat) => {
                        let _ = ch.send(w.control(), &Message::Heartbeat);
                    }
                    Some(TimerAction::Disown) => {
                        ch.fail(errno::ETIMEDOUT);
                        return;
                    }
                    None => {}
                }
            }
        });
    }
}

/// A session opened by the engine, seen from the worker: write chunks, then
/// end it with [`close`](Self::close) or [`error`](Self::error) (exactly one
/// of them; nothing may follow).
#[derive(Clone)]
pub struct WorkerStream {
    worker: Worker,
    session: u64,
}

impl std::fmt::Debug for WorkerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerStream").field("session", &self.session).finish()
    }
}

impl WorkerStream {
    /// The session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Sends a chunk (v0 `chunk`, v1 `write`).
    pub fn write(&self, data: &Bytes) -> Result<(), StreamError> {
        self.worker.send_stream(self.session, &Message::Chunk { data: data.clone() })
    }

    /// Ends this side of the session (v0 `choke`, v1 `close`).
    pub fn close(&self) -> Result<(), StreamError> {
        self.worker.send_stream(self.session, &Message::Choke)
    }

    /// Fails the session with the framework category (42) in v1; in v0 the
    /// error is followed by the `choke` the engine needs.
    pub fn error(&self, code: i64, message: &str) -> Result<(), StreamError> {
        self.error_with_category(FRAMEWORK_CATEGORY, code, message)
    }

    /// Fails the session with an explicit v1 category (ignored in v0).
    pub fn error_with_category(&self, category: i64, code: i64, message: &str) -> Result<(), StreamError> {
        let message = Some(Bytes::copy_from_slice(message.as_bytes()));
        self.worker.send_stream(self.session, &Message::Error { category: Some(category), code, message })
    }
}

/// The channel handler that runs the worker protocol and forwards events.
struct Glue {
    worker: Worker,
    user: Box<dyn WorkerHandler>,
}

impl Handler for Glue {
    fn on_event(&mut self, ch: &Channel, event: Event) {
        let w = &self.worker;
        let _ = w.inner.channel.set(ch.clone());
        let out = match event {
            Event::Connected => {
                let uuid = Bytes::copy_from_slice(w.inner.opts.uuid.as_bytes());
                let _ = ch.send(w.control(), &Message::Handshake { uuid });
                let _ = ch.send(w.control(), &Message::Heartbeat);
                {
                    let mut st = lock(&w.inner.state);
                    if st.phase == Phase::Connecting {
                        st.phase = Phase::Active;
                    }
                }
                w.start_timers(ch);
                Some(WorkerEvent::Connected)
            }
            Event::Message { session, message, headers } => {
                let mut st = lock(&w.inner.state);
                match message {
                    Message::Heartbeat | Message::Terminate { .. } => {
                        if let Some(t) = st.timers.as_mut() {
                            t.engine_frame(Instant::now());
                        }
                        match message {
                            Message::Terminate { code, reason } => {
                                if st.phase == Phase::Active {
                                    st.phase = Phase::EngineTerminated;
                                }
                                Some(WorkerEvent::Terminate { code, reason })
                            }
                            _ => Some(WorkerEvent::Heartbeat),
                        }
                    }
                    Message::Invoke { event } => {
                        // After a terminate no new work is started.
                        if st.phase != Phase::Active || !st.streams.open(session) {
                            None
                        } else {
                            Some(WorkerEvent::Invoke { stream: w.stream(session), event, headers })
                        }
                    }
                    Message::Chunk { data } => st.streams.receiving(session).then_some(WorkerEvent::Chunk { session, data }),
                    Message::Error { .. } | Message::Choke => {
                        if !st.streams.end_rx(session) {
                            None
                        } else {
                            Some(match message {
                                Message::Error { category, code, message } => WorkerEvent::Error { session, category, code, message },
                                _ => WorkerEvent::Close { session },
                            })
                        }
                    }
                    // An engine does not send a handshake.
                    Message::Handshake { .. } => None,
                }
            }
            // Frames the protocol drops (unknown types, finished sessions).
            Event::Frame(_) => None,
            Event::Drain => Some(WorkerEvent::Drain),
            Event::SocketError(errno) => {
                let (disowned, sessions) = {
                    let mut st = lock(&w.inner.state);
                    st.phase = Phase::Stopped;
                    st.timers = None;
                    (st.disowned, st.streams.take_all())
                };
                w.inner.stop_timers.notify_one();
                if disowned {
                    self.user.on_event(w, WorkerEvent::Disown);
                }
                Some(WorkerEvent::Disconnected { errno, sessions })
            }
        };
        if let Some(ev) = out {
            self.user.on_event(w, ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runtime_arguments() {
        let o = WorkerOptions::from_args([
            "--app",
            "echo",
            "--endpoint",
            "/run/cocaine/echo.1234",
            "--locator",
            "127.0.0.1:10053,[::1]:10053",
            "--protocol",
            "1",
            "--uuid",
            "6d0b4c1e",
        ])
        .unwrap();
        assert_eq!(o.app, "echo");
        assert_eq!(o.uuid, "6d0b4c1e");
        assert_eq!(o.endpoint, Endpoint::Unix("/run/cocaine/echo.1234".into()));
        assert_eq!(o.locator, vec!["127.0.0.1:10053", "[::1]:10053"]);
        assert_eq!(o.dialect, Dialect::V1);
        let v0 = WorkerOptions::from_args(["--uuid", "u", "--endpoint", "/e", "--extra", "x"]).unwrap();
        assert_eq!(v0.dialect, Dialect::V0);
        assert_eq!(v0.heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(v0.disown_timeout, DEFAULT_DISOWN_TIMEOUT);
        let eq = WorkerOptions::from_args(["--protocol=1", "--uuid=u", "--endpoint=/e"]).unwrap();
        assert_eq!((eq.dialect, eq.uuid.as_str()), (Dialect::V1, "u"));
        assert_eq!(protocol_from_args(["--app", "a", "--protocol=1"]), Ok(Dialect::V1));
        assert_eq!(protocol_from_args(["--protocol", "0"]), Ok(Dialect::V0));
        assert_eq!(protocol_from_args(["--uuid", "u"]), Ok(Dialect::V0));
        assert!(protocol_from_args(["--protocol", "7"]).is_err());
        for bad in [&["--uuid"][..], &["--endpoint", "/e"], &["--uuid", "u", "--endpoint", "/e", "--protocol", "7"], &["x"]] {
            assert!(WorkerOptions::from_args(bad.iter()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn heartbeats_on_the_interval_and_disowns_after_silence() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Timers::new(s(5), s(30), t0);
        assert_eq!(t.next_wakeup(), t0 + s(5));
        assert_eq!(t.poll(t0 + s(4)), None);
        assert_eq!(t.poll(t0 + s(5)), Some(TimerAction::Heartbeat));
        assert_eq!(t.poll(t0 + s(5)), None);
        assert_eq!(t.next_wakeup(), t0 + s(10));
        // The engine answers: the deadline moves.
        t.engine_frame(t0 + s(10));
        assert_eq!(t.poll(t0 + s(29)), Some(TimerAction::Heartbeat));
        assert_eq!(t.next_wakeup(), t0 + s(30));
        // Missed heartbeats are sent once, not in a burst.
        assert_eq!(t.poll(t0 + s(39)), Some(TimerAction::Heartbeat));
        assert_eq!(t.poll(t0 + s(39)), None);
        assert_eq!(t.next_wakeup(), t0 + s(40));
        assert_eq!(t.poll(t0 + s(40)), Some(TimerAction::Disown));
        // A late engine frame never moves the deadline back.
        t.engine_frame(t0);
        assert_eq!(t.poll(t0 + s(40)), Some(TimerAction::Disown));
    }
}
