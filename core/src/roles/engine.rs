//! The engine: the runtime side of the worker protocol, enough to drive
//! workers from a test, a demo or a small hub without the Cocaine runtime.
//!
//! An [`Engine`] listens, accepts workers, checks each handshake's uuid,
//! answers every heartbeat, cuts a worker that stays silent (no handshake
//! within the handshake timeout, no frame within the heartbeat timeout:
//! `ETIMEDOUT`), invokes events on a chosen worker and streams the reply,
//! and terminates workers.
//!
//! ```no_run
//! use bytes::Bytes;
//! use sluice_core::net::Endpoint;
//! use sluice_core::roles::{Engine, EngineEvent, EngineOptions};
//! use sluice_core::wire::Dialect;
//!
//! let opts = EngineOptions::new(Endpoint::Unix("/tmp/echo.sock".into()), Dialect::V1);
//! let engine = Engine::bind(opts, |_: &Engine, ev| match ev {
//!     EngineEvent::Handshake { worker } => {
//!         let s = worker.invoke("echo").unwrap();
//!         s.write(&Bytes::from_static(b"hello")).unwrap();
//!         s.close().unwrap();
//!     }
//!     EngineEvent::Chunk { data, .. } => println!("reply {data:?}"),
//!     _ => {}
//! })?;
//! # let _ = engine;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::sink::Sink;
use super::streams::Streams;
use super::worker::StreamError;
use crate::errno;
use crate::net::{runtime, Channel, ChannelConfig, Delivery, DispatchError, Endpoint, Event, Handler, Incoming, Server};
use crate::wire::message::FRAMEWORK_CATEGORY;
use crate::wire::{Dialect, Header, Message, Role};

/// How an engine listens and how patient it is.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where to listen (a Unix path, as the runtime does, or TCP).
    pub endpoint: Endpoint,
    /// The workers' dialect.
    pub dialect: Dialect,
    /// Cut a worker whose handshake has not come this long after it
    /// connected (v1 runtime default: 5 s).
    pub handshake_timeout: Duration,
    /// Cut a worker that has sent nothing for this long (runtime default:
    /// 30 s).
    pub heartbeat_timeout: Duration,
    /// After [`WorkerRef::terminate`], cut a worker that has not closed its
    /// connection within this long (runtime default: 10 s).
    pub terminate_timeout: Duration,
    /// Accepted uuids; `None` accepts any. Others are disconnected
    /// ([`EngineEvent::Rejected`]).
    pub uuids: Option<HashSet<String>>,
    /// The workers' channel settings; `delivery` says how the engine's
    /// events reach the handler (inline on an I/O thread, or by
    /// [`Engine::dispatch`]).
    pub channel: ChannelConfig,
}

impl EngineOptions {
    /// Defaults of the runtime for an endpoint and dialect.
    pub fn new(endpoint: Endpoint, dialect: Dialect) -> EngineOptions {
        EngineOptions {
            endpoint,
            dialect,
            handshake_timeout: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(30),
            terminate_timeout: Duration::from_secs(10),
            uuids: None,
            channel: ChannelConfig::new(dialect, Some(Role::Engine)),
        }
    }
}

/// What an engine tells its handler. Events of one worker arrive in wire
/// order; events of different workers may interleave.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A worker handshook with an accepted uuid: it can be invoked.
    Handshake {
        /// The worker.
        worker: WorkerRef,
    },
    /// A worker's handshake named a uuid that is not accepted; it is
    /// disconnected.
    Rejected {
        /// The uuid it sent.
        uuid: String,
    },
    /// A worker heartbeat (already answered).
    Heartbeat {
        /// The worker.
        worker: WorkerRef,
    },
    /// Reply data on a session.
    Chunk {
        /// The worker.
        worker: WorkerRef,
        /// The session.
        session: u64,
        /// The bytes.
        data: Bytes,
    },
    /// The worker failed a session.
    Error {
        /// The worker.
        worker: WorkerRef,
        /// The session.
        session: u64,
        /// v1 category (`None` in v0).
        category: Option<i64>,
        /// The code.
        code: i64,
        /// The message, if any.
        message: Option<Bytes>,
    },
    /// The worker's direction of a session ended.
    Close {
        /// The worker.
        worker: WorkerRef,
        /// The session.
        session: u64,
    },
    /// The worker sent `terminate` (its answer to ours, or its own
    /// decision to stop).
    Terminate {
        /// The worker.
        worker: WorkerRef,
        /// Its code.
        code: i64,
        /// Its reason.
        reason: Bytes,
    },
    /// A refused send to this worker may be retried.
    Drain {
        /// The worker.
        worker: WorkerRef,
    },
    /// The worker's connection ended (its last event): `ESHUTDOWN` when it
    /// closed, `ETIMEDOUT` when it was cut for silence, and so on.
    Gone {
        /// The worker.
        worker: WorkerRef,
        /// Why.
        errno: i32,
    },
}

/// Receives an engine's events. Implemented for closures.
pub trait EngineHandler: Send + 'static {
    /// Handles one event; it may call any method of the engine or worker.
    fn on_event(&mut self, engine: &Engine, event: EngineEvent);
}

impl<F: FnMut(&Engine, EngineEvent) + Send + 'static> EngineHandler for F {
    fn on_event(&mut self, engine: &Engine, event: EngineEvent) {
        self(engine, event)
    }
}

/// What expired (see [`WorkerTimers::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No handshake in time.
    Handshake,
    /// Nothing heard for the heartbeat timeout.
    Heartbeat,
    /// Not gone after terminate.
    Terminate,
}

/// One worker's deadlines as a state machine over explicit instants.
#[derive(Debug, Clone)]
pub struct WorkerTimers {
    heartbeat_timeout: Duration,
    handshake: Option<Instant>,
    silence: Instant,
    terminate: Option<Instant>,
}

impl WorkerTimers {
    /// A worker connected at `now`.
    pub fn new(opts: &EngineOptions, now: Instant) -> WorkerTimers {
        WorkerTimers {
            heartbeat_timeout: opts.heartbeat_timeout,
            handshake: Some(now + opts.handshake_timeout),
            silence: now + opts.heartbeat_timeout,
            terminate: None,
        }
    }

    /// A frame came at `now` (`handshake`: it was the handshake).
    pub fn frame(&mut self, now: Instant, handshake: bool) {
        if handshake {
            self.handshake = None;
        }
        self.silence = self.silence.max(now + self.heartbeat_timeout);
    }

    /// Terminate was sent at `now`; the worker has `timeout` to go.
    pub fn terminating(&mut self, now: Instant, timeout: Duration) {
        let t = now + timeout;
        self.terminate = Some(self.terminate.map_or(t, |x| x.min(t)));
    }

    /// When the next deadline falls.
    pub fn next_wakeup(&self) -> Instant {
        let mut t = self.silence;
        for d in [self.handshake, self.terminate].into_iter().flatten() {
            t = t.min(d);
        }
        t
    }

    /// What has expired at `now`, if anything.
    pub fn poll(&self, now: Instant) -> Option<Expired> {
        if self.handshake.is_some_and(|d| now >= d) {
            return Some(Expired::Handshake);
        }
        if self.terminate.is_some_and(|d| now >= d) {
            return Some(Expired::Terminate);
        }
        (now >= self.silence).then_some(Expired::Heartbeat)
    }
}

struct WorkerState {
    uuid: Option<String>,
    timers: WorkerTimers,
    /// Sessions this engine opened and their open directions.
    sessions: Streams,
    gone: bool,
}

struct WorkerInner {
    id: u64,
    channel: OnceLock<Channel>,
    state: Mutex<WorkerState>,
    stop_timers: Notify,
    terminate_timeout: Duration,
}

/// A worker connected to an engine. Cheap to clone; compare with `==`.
#[derive(Clone)]
pub struct WorkerRef {
    inner: Arc<WorkerInner>,
}

impl PartialEq for WorkerRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for WorkerRef {}

impl std::fmt::Debug for WorkerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRef").field("id", &self.inner.id).field("uuid", &self.uuid()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WorkerRef {
    /// A number unique to this connection within the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The uuid of its handshake (`None` before it).
    pub fn uuid(&self) -> Option<String> {
        lock(&self.inner.state).uuid.clone()
    }

    /// The connection.
    pub fn channel(&self) -> Option<&Channel> {
        self.inner.channel.get()
    }

    fn control(&self) -> u64 {
        self.inner.channel.get().map_or(Dialect::V1, |c| c.config().dialect).control_session()
    }

    /// Opens a session for `event`: sends `invoke` and returns the stream
    /// to send request chunks on. Refused before the handshake.
    pub fn invoke(&self, event: &str) -> Result<EngineStream, StreamError> {
        self.invoke_with_headers(event, &[])
    }

    /// [`invoke`](Self::invoke) with v1 headers (tracing ids and the like).
    pub fn invoke_with_headers(&self, event: &str, headers: &[Header]) -> Result<EngineStream, StreamError> {
        let ch = self.inner.channel.get().ok_or(StreamError::Closed)?;
        let mut st = lock(&self.inner.state);
        if st.gone || st.uuid.is_none() {
            return Err(StreamError::Closed);
        }
        let session = ch.next_session();
        ch.send_with_headers(session, &Message::Invoke { event: Bytes::copy_from_slice(event.as_bytes()) }, headers)?;
        st.sessions.open(session);
        Ok(EngineStream { worker: self.clone(), session })
    }

    /// The stream of a session this engine opened.
    pub fn stream(&self, session: u64) -> EngineStream {
        EngineStream { worker: self.clone(), session }
    }

    /// Sessions open in at least one direction.
    pub fn open_sessions(&self) -> usize {
        lock(&self.inner.state).sessions.len()
    }

    /// Sends `terminate(code, reason)`; the worker should answer with its
    /// own terminate ([`EngineEvent::Terminate`]) and close
    /// ([`EngineEvent::Gone`]); after the terminate timeout it is cut
    /// (`ETIMEDOUT`).
    pub fn terminate(&self, code: i64, reason: &str) -> Result<(), StreamError> {
        let ch = self.inner.channel.get().ok_or(StreamError::Closed)?;
        ch.send(self.control(), &Message::Terminate { code, reason: Bytes::copy_from_slice(reason.as_bytes()) })?;
        lock(&self.inner.state).timers.terminating(Instant::now(), self.inner.terminate_timeout);
        // The timer task sleeps until the old deadline: wake it.
        self.inner.stop_timers.notify_one();
        Ok(())
    }

    /// Disconnects the worker at once ([`EngineEvent::Gone`] follows with
    /// `errno`).
    pub fn kill(&self, errno: i32) {
        if let Some(ch) = self.inner.channel.get() {
            ch.fail(errno);
        }
    }

    fn send_stream(&self, session: u64, msg: &Message) -> Result<(), StreamError> {
        let ch = self.inner.channel.get().ok_or(StreamError::Closed)?;
        lock(&self.inner.state).sessions.send(ch, session, msg)
    }
}

/// A session an engine opened on a worker: send request chunks, then end
/// this side with [`close`](Self::close) or [`error`](Self::error).
#[derive(Clone, Debug)]
pub struct EngineStream {
    worker: WorkerRef,
    session: u64,
}

impl EngineStream {
    /// The session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The worker it runs on.
    pub fn worker(&self) -> &WorkerRef {
        &self.worker
    }

    /// Sends a request chunk.
    pub fn write(&self, data: &Bytes) -> Result<(), StreamError> {
        self.worker.send_stream(self.session, &Message::Chunk { data: data.clone() })
    }

    /// Ends the request (v0 `choke`, v1 `close`).
    pub fn close(&self) -> Result<(), StreamError> {
        self.worker.send_stream(self.session, &Message::Choke)
    }

    /// Fails the session (v1 category 42; v0 error then choke).
    pub fn error(&self, code: i64, message: &str) -> Result<(), StreamError> {
        let message = Some(Bytes::copy_from_slice(message.as_bytes()));
        self.worker.send_stream(self.session, &Message::Error { category: Some(FRAMEWORK_CATEGORY), code, message })
    }
}

struct EngineInner {
    opts: EngineOptions,
    server: OnceLock<Server>,
    sink: Sink<Engine, EngineEvent>,
    workers: Mutex<HashMap<u64, WorkerRef>>,
    next_id: AtomicU64,
}

/// A listening engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("endpoint", &self.inner.opts.endpoint).finish_non_exhaustive()
    }
}

impl Engine {
    /// Listens on `opts.endpoint`; workers' events go to `handler`.
    pub fn bind(opts: EngineOptions, handler: impl EngineHandler) -> std::io::Result<Engine> {
        let mut handler = handler;
        let sink = Sink::new(opts.channel.delivery, opts.channel.max_pending, Box::new(move |e: &Engine, ev| handler.on_event(e, ev)))?;
        let engine = Engine {
            inner: Arc::new(EngineInner {
                opts,
                server: OnceLock::new(),
                sink,
                workers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        };
        let mut config = engine.inner.opts.channel.clone();
        config.dialect = engine.inner.opts.dialect;
        config.role = Some(Role::Engine);
        // The engine runs the protocol on the I/O threads; only its own
        // events follow the chosen delivery.
        config.delivery = Delivery::Inline;
        // The accept handler holds a weak reference: the server must not
        // keep the engine alive.
        let weak = Arc::downgrade(&engine.inner);
        let server = Server::bind(&engine.inner.opts.endpoint, config, move |_: &Server, inc: Incoming| {
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.accept(inc);
            }
        })?;
        let _ = engine.inner.server.set(server);
        Ok(engine)
    }

    /// Where it listens (with the actual port when bound to port 0).
    pub fn local(&self) -> Endpoint {
        self.inner.server.get().map(|s| s.local().clone()).unwrap_or_else(|| self.inner.opts.endpoint.clone())
    }

    /// The workers that have handshaken and not gone, oldest first.
    pub fn workers(&self) -> Vec<WorkerRef> {
        let mut v: Vec<WorkerRef> = lock(&self.inner.workers).values().filter(|w| w.uuid().is_some()).cloned().collect();
        v.sort_by_key(WorkerRef::id);
        v
    }

    /// The connected worker with this uuid.
    pub fn worker(&self, uuid: &str) -> Option<WorkerRef> {
        self.workers().into_iter().find(|w| w.uuid().as_deref() == Some(uuid))
    }

    /// Poll delivery: the descriptor that is readable while events wait.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.sink.fd()
    }

    /// Poll delivery: runs the handler on this thread for up to `max`
    /// waiting events.
    pub fn dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        self.inner.sink.dispatch(self, max)
    }

    /// Stops listening and closes every worker connection; no event is
    /// delivered afterwards.
    pub fn close(&self) {
        self.inner.sink.silence();
        if let Some(s) = self.inner.server.get() {
            s.close();
        }
        let workers: Vec<WorkerRef> = lock(&self.inner.workers).drain().map(|(_, w)| w).collect();
        for w in workers {
            w.inner.stop_timers.notify_one();
            if let Some(ch) = w.inner.channel.get() {
                ch.close();
            }
        }
    }

    fn accept(&self, inc: Incoming) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let worker = WorkerRef {
            inner: Arc::new(WorkerInner {
                id,
                channel: OnceLock::new(),
                state: Mutex::new(WorkerState {
                    uuid: None,
                    timers: WorkerTimers::new(&self.inner.opts, Instant::now()),
                    sessions: Streams::default(),
                    gone: false,
                }),
                stop_timers: Notify::new(),
                terminate_timeout: self.inner.opts.terminate_timeout,
            }),
        };
        lock(&self.inner.workers).insert(id, worker.clone());
        let glue = Glue { engine: Arc::downgrade(&self.inner), worker: worker.clone() };
        match inc.start(glue) {
            Ok(ch) => {
                self.inner.sink.feed_from(&ch);
                let _ = worker.inner.channel.set(ch.clone());
                self.run_timers(worker, ch);
            }
            Err(_) => {
                lock(&self.inner.workers).remove(&id);
            }
        }
    }

    fn run_timers(&self, worker: WorkerRef, ch: Channel) {
        let Ok(rt) = runtime::handle() else { return };
        rt.spawn(async move {
            loop {
                let next = {
                    let st = lock(&worker.inner.state);
                    if st.gone {
                        return;
                    }
                    st.timers.next_wakeup()
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
                    // Woken when a deadline moves earlier, or at the end.
                    _ = worker.inner.stop_timers.notified() => continue,
                }
                let expired = {
                    let st = lock(&worker.inner.state);
                    if st.gone {
                        return;
                    }
                    st.timers.poll(Instant::now())
                };
                if expired.is_some() {
                    ch.fail(errno::ETIMEDOUT);
                    return;
                }
            }
        });
    }
}

/// The handler of one worker's channel.
struct Glue {
    engine: std::sync::Weak<EngineInner>,
    worker: WorkerRef,
}

impl Handler for Glue {
    fn on_event(&mut self, ch: &Channel, event: Event) {
        let Some(inner) = self.engine.upgrade() else {
            ch.abort();
            return;
        };
        let engine = Engine { inner };
        let w = &self.worker;
        let _ = w.inner.channel.set(ch.clone());
        let ctl = w.control();
        let size = event.bytes();
        let out = match event {
            Event::Connected => None,
            Event::Message { session, message, .. } => {
                let mut st = lock(&w.inner.state);
                st.timers.frame(Instant::now(), matches!(message, Message::Handshake { .. }));
                match message {
                    Message::Handshake { uuid } => {
                        if st.uuid.is_some() {
                            None
                        } else {
                            let uuid = String::from_utf8_lossy(&uuid).into_owned();
                            let ok = engine.inner.opts.uuids.as_ref().is_none_or(|set| set.contains(&uuid));
                            if ok {
                                st.uuid = Some(uuid);
                                Some(EngineEvent::Handshake { worker: w.clone() })
                            } else {
                                drop(st);
                                lock(&engine.inner.workers).remove(&w.id());
                                w.inner.stop_timers.notify_one();
                                lock(&w.inner.state).gone = true;
                                ch.abort();
                                Some(EngineEvent::Rejected { uuid })
                            }
                        }
                    }
                    Message::Heartbeat => {
                        let _ = ch.send(ctl, &Message::Heartbeat);
                        Some(EngineEvent::Heartbeat { worker: w.clone() })
                    }
                    Message::Terminate { code, reason } => Some(EngineEvent::Terminate { worker: w.clone(), code, reason }),
                    Message::Chunk { data } => {
                        st.sessions.receiving(session).then(|| EngineEvent::Chunk { worker: w.clone(), session, data })
                    }
                    Message::Error { .. } | Message::Choke => match st.sessions.end_rx(session) {
                        true => Some(match message {
                            Message::Error { category, code, message } => {
                                EngineEvent::Error { worker: w.clone(), session, category, code, message }
                            }
                            _ => EngineEvent::Close { worker: w.clone(), session },
                        }),
                        false => None,
                    },
                    Message::Invoke { .. } => None,
                }
            }
            Event::Frame(_) => {
                lock(&w.inner.state).timers.frame(Instant::now(), false);
                None
            }
            Event::Drain => Some(EngineEvent::Drain { worker: w.clone() }),
            Event::SocketError(errno) => {
                {
                    let mut st = lock(&w.inner.state);
                    st.gone = true;
                    st.sessions.take_all();
                }
                w.inner.stop_timers.notify_one();
                lock(&engine.inner.workers).remove(&w.id());
                Some(EngineEvent::Gone { worker: w.clone(), errno })
            }
        };
        if let Some(ev) = out {
            engine.inner.sink.emit_sized(&engine, ev, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_worker() {
        let mut o = EngineOptions::new(Endpoint::Unix("/x".into()), Dialect::V1);
        o.handshake_timeout = Duration::from_secs(5);
        o.heartbeat_timeout = Duration::from_secs(30);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = WorkerTimers::new(&o, t0);
        assert_eq!(t.next_wakeup(), t0 + s(5));
        assert_eq!(t.poll(t0 + s(4)), None);
        assert_eq!(t.poll(t0 + s(5)), Some(Expired::Handshake));
        t.frame(t0 + s(1), true);
        assert_eq!(t.poll(t0 + s(5)), None);
        assert_eq!(t.next_wakeup(), t0 + s(31));
        t.frame(t0 + s(20), false);
        assert_eq!(t.poll(t0 + s(49)), None);
        assert_eq!(t.poll(t0 + s(50)), Some(Expired::Heartbeat));
        t.frame(t0 + s(45), false);
        t.terminating(t0 + s(46), s(10));
        assert_eq!(t.next_wakeup(), t0 + s(56));
        assert_eq!(t.poll(t0 + s(56)), Some(Expired::Terminate));
    }
}
