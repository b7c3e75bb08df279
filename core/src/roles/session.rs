//! Sessions: client connections that stay up.
//!
//! A [`Session`] connects to the first of its endpoints and, whenever the
//! connection fails or ends, reconnects by itself: after a delay that grows
//! exponentially with jitter ([`Backoff`]), trying the endpoints in order
//! (failover). With [`Liveness`] it heartbeats and treats a peer that has
//! been silent for the timeout as gone (`ETIMEDOUT`). With
//! [`ResumeOptions`] (against a [`ResumeServer`](super::ResumeServer)) the
//! stream survives reconnections: frames the peer missed are sent again,
//! nothing is lost or duplicated in either direction.
//!
//! Events: [`SessionEvent::Connected`] each time a connection is up (the
//! owner restarts its subscriptions there), [`SessionEvent::Disconnected`]
//! when one is lost, [`SessionEvent::ReconnectAttempt`] before each new
//! attempt, and the frames in between.
//!
//! ```no_run
//! use sluice_core::net::{ChannelConfig, Endpoint};
//! use sluice_core::roles::{Session, SessionEvent, SessionOptions};
//! use sluice_core::wire::Dialect;
//!
//! let endpoints = vec![Endpoint::parse("10.0.0.1:10053").unwrap(), Endpoint::parse("10.0.0.2:10053").unwrap()];
//! let session = Session::connect(SessionOptions::new(endpoints, ChannelConfig::new(Dialect::V1, None)), |_: &Session, ev| {
//!     match ev {
//!         SessionEvent::Connected { endpoint, .. } => println!("up: {endpoint}"),
//!         SessionEvent::Disconnected { errno } => println!("down: errno {errno}"),
//!         _ => {}
//!     }
//! })?;
//! # let _ = session;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use super::resume::ResumeOptions;
use super::resume::{Control, Outgoing, Replay, CONTROL_ID};
use super::sink::Sink;
use crate::errno;
use crate::net::{runtime, Channel, ChannelConfig, DispatchError, Endpoint, Event, Handler, SendError};
use crate::wire::{Args, Encoder, Frame, Header, Message, Profile, Session as Streams};

/// Reconnection delays: `initial × multiplier^attempt`, at most `max`, each
/// spread uniformly by ± `jitter` (a fraction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
    /// Growth per failed attempt.
    pub multiplier: f64,
    /// Spread, 0 to 1.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 100 ms doubling up to 10 s, ± 20 %.
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(10), multiplier: 2.0, jitter: 0.2 }
    }
}

impl Backoff {
    /// The delay before jitter for attempt `attempt` (0 for the first
    /// after a loss).
    pub fn base(&self, attempt: u32) -> Duration {
        let f = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * f).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The shortest and longest delay attempt `attempt` can get.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let b = self.base(attempt).as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        (Duration::from_secs_f64(b * (1.0 - j)), Duration::from_secs_f64(b * (1.0 + j)))
    }

    /// The delay for `attempt` given `unit`, a number in `[0, 1)` (random
    /// in use; fixed in tests).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let (lo, hi) = self.bounds(attempt);
        lo + (hi - lo).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Heartbeats and the silence after which the peer counts as gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Send a heartbeat this often (`[1, 0, []]`, or the resume `ping`).
    pub interval: Duration,
    /// Nothing received for this long: the connection is cut
    /// (`ETIMEDOUT`) and a new one made.
    pub timeout: Duration,
}

/// How a session connects and stays up.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Tried in order; after a loss, from the first again.
    pub endpoints: Vec<Endpoint>,
    /// The connections' settings; `delivery` says how the session's events
    /// reach the handler.
    pub channel: ChannelConfig,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Heartbeat and liveness timeout; `None`: rely on the socket.
    pub liveness: Option<Liveness>,
    /// Resume (the peer must be a [`ResumeServer`](super::ResumeServer));
    /// `None`: frames in flight when a connection drops are lost.
    pub resume: Option<ResumeOptions>,
}

impl SessionOptions {
    /// A session over these endpoints, default backoff, no liveness, no
    /// resume.
    pub fn new(endpoints: Vec<Endpoint>, channel: ChannelConfig) -> SessionOptions {
        SessionOptions { endpoints, channel, backoff: Backoff::default(), liveness: None, resume: None }
    }
}

/// What a session tells its handler, one event at a time, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A connection is up (with resume: the peer answered the hello).
    Connected {
        /// The endpoint it reached.
        endpoint: Endpoint,
        /// Resume: the stream continues where it was (`false` on the first
        /// connection, or when the peer had forgotten this session).
        resumed: bool,
    },
    /// The connection was lost; a reconnection follows.
    Disconnected {
        /// Why (docs/PROTOCOL.md §8.3; `ETIMEDOUT` for a silent peer).
        errno: i32,
    },
    /// The next attempt is made after `delay`.
    ReconnectAttempt {
        /// 1 for the first attempt after a loss, then 2, 3...
        attempt: u32,
        /// The endpoint it will try.
        endpoint: Endpoint,
        /// How long it waits first.
        delay: Duration,
    },
    /// A typed message (channels with a role).
    Message {
        /// Session id.
        session: u64,
        /// The message.
        message: Message,
        /// v1 headers.
        headers: Vec<Header>,
    },
    /// A frame (channels without a role, or frames the role drops).
    Frame(Frame),
    /// A refused send may be retried.
    Drain,
}

/// Receives a session's events. Implemented for closures.
pub trait SessionHandler: Send + 'static {
    /// Handles one event; it may call any method of `session`.
    fn on_event(&mut self, session: &Session, event: SessionEvent);
}

impl<F: FnMut(&Session, SessionEvent) + Send + 'static> SessionHandler for F {
    fn on_event(&mut self, session: &Session, event: SessionEvent) {
        self(session, event)
    }
}

struct State {
    stopped: bool,
    channel: Option<Channel>,
    /// The current connection is usable (resume: its hello is answered).
    ready: bool,
    /// The current connection reached `Connected`.
    connected: bool,
    generation: u64,
    /// Failed attempts since the last good connection.
    attempt: u32,
    /// No dial has failed or succeeded yet.
    initial: bool,
    endpoint: usize,
    replay: Option<Replay>,
    /// Resume with a role: the state of the sessions, kept across
    /// connections (a new connection alone would not know the sessions
    /// opened before it), fed with exactly the frames delivered once.
    typed: Option<Streams>,
    enc: Encoder,
    token: Bytes,
    last_rx: Instant,
    want_drain: bool,
    max_id: u64,
    rng: u64,
}

struct Inner {
    opts: SessionOptions,
    state: Mutex<State>,
    sink: Sink<Session, SessionEvent>,
}

/// A connection that stays up. Cheap to clone: clones are handles to the
/// same session, which lives until [`stop`](Session::stop).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("endpoints", &self.inner.opts.endpoints).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `[1, 0, []]`: the heartbeat of both dialects.
const HEARTBEAT: &[u8] = b"\x93\x01\x00\x90";

impl Session {
    /// Starts connecting to the first endpoint. Fails only if `endpoints`
    /// is empty or the runtime cannot start.
    pub fn connect(opts: SessionOptions, handler: impl SessionHandler) -> std::io::Result<Session> {
        if opts.endpoints.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a session needs at least one endpoint"));
        }
        let mut handler = handler;
        let sink = Sink::new(opts.channel.delivery, opts.channel.max_pending, Box::new(move |s: &Session, ev| handler.on_event(s, ev)))?;
        let mut token = [0u8; 16];
        token[..8].copy_from_slice(&super::random_u64().to_le_bytes());
        token[8..].copy_from_slice(&super::random_u64().to_le_bytes());
        let state = State {
            stopped: false,
            channel: None,
            ready: false,
            connected: false,
            generation: 0,
            attempt: 0,
            initial: true,
            endpoint: 0,
            replay: opts.resume.clone().map(Replay::new),
            typed: opts.resume.as_ref().and_then(|_| opts.channel.session_state()),
            enc: Encoder::new(opts.channel.dialect, Profile::Compat),
            token: Bytes::copy_from_slice(&token),
            last_rx: Instant::now(),
            want_drain: false,
            max_id: 0,
            rng: super::random_u64() | 1,
        };
        let s = Session { inner: Arc::new(Inner { opts, state: Mutex::new(state), sink }) };
        s.dial()?;
        Ok(s)
    }

    /// The options it was made with.
    pub fn options(&self) -> &SessionOptions {
        &self.inner.opts
    }

    /// Whether a connection is up and usable now.
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.state).ready
    }

    /// The current connection, if one is up.
    pub fn channel(&self) -> Option<Channel> {
        let st = lock(&self.inner.state);
        st.channel.clone().filter(|_| st.ready)
    }

    /// The id for a new channel opened by this side: one above every id
    /// sent or received, across connections (at least 2 in v1, where 1 is
    /// the control channel).
    pub fn next_session(&self) -> u64 {
        let first = match self.inner.opts.channel.dialect {
            crate::wire::Dialect::V0 => 1,
            crate::wire::Dialect::V1 => 2,
        };
        (lock(&self.inner.state).max_id + 1).max(first)
    }

    /// Resume: frames delivered to the handler so far.
    pub fn received(&self) -> u64 {
        lock(&self.inner.state).replay.as_ref().map_or(0, Replay::received)
    }

    /// Stops for good: no more reconnections, the connection is closed
    /// gracefully, no event is delivered afterwards.
    pub fn stop(&self) {
        let ch = {
            let mut st = lock(&self.inner.state);
            st.stopped = true;
            st.ready = false;
            st.generation += 1;
            st.channel.take()
        };
        self.inner.sink.silence();
        if let Some(ch) = ch {
            ch.close();
        }
    }

    /// Cuts the current connection as if it had failed with `errno`; the
    /// session reconnects (and resumes) as after any loss.
    pub fn disconnect(&self, errno: i32) {
        let ch = lock(&self.inner.state).channel.clone();
        if let Some(ch) = ch {
            ch.fail(errno);
        }
    }

    /// Poll delivery: the descriptor that is readable while events wait
    /// (the same across reconnections).
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.sink.fd()
    }

    /// Poll delivery: runs the handler on this thread for up to `max`
    /// waiting events.
    pub fn dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        self.inner.sink.dispatch(self, max)
    }

    /// Sends a typed message. Without resume it is refused (`Closed`)
    /// while no connection is up; with resume it is kept and sent once
    /// one is.
    pub fn send(&self, session: u64, message: &Message) -> Result<(), SendError> {
        self.send_out(Outgoing::Message(session, message, &[]))
    }

    /// [`send`](Self::send) with v1 headers.
    pub fn send_with_headers(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), SendError> {
        self.send_out(Outgoing::Message(session, message, headers))
    }

    /// Sends a chunk.
    pub fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), SendError> {
        self.send_out(Outgoing::Chunk(session, data))
    }

    /// Sends a generic frame.
    pub fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.send_out(Outgoing::Frame(session, ty, args, headers))
    }

    fn send_out(&self, out: Outgoing<'_>) -> Result<(), SendError> {
        let mut st = lock(&self.inner.state);
        if st.stopped {
            return Err(SendError::Closed);
        }
        let st = &mut *st;
        st.max_id = st.max_id.max(out.session());
        match st.replay.as_mut() {
            Some(replay) => {
                let frame = out.encode(&mut st.enc);
                if let Err(e) = replay.push(frame) {
                    st.want_drain = true;
                    return Err(e);
                }
                // Recorded before the bytes leave: the answer is classified
                // under this same lock.
                if let (Some(t), Outgoing::Message(s, m, _)) = (st.typed.as_mut(), &out) {
                    t.sent(*s, m.kind());
                }
                if let (true, Some(ch), Some(f)) = (st.ready, &st.channel, replay.last()) {
                    // The replay buffer bounds what is queued.
                    let _ = ch.send_raw_segments(f.segments());
                }
                Ok(())
            }
            None => {
                let ch = st.channel.as_ref().filter(|_| st.ready).ok_or(SendError::Closed)?;
                match out {
                    Outgoing::Message(s, m, h) => ch.send_with_headers(s, m, h),
                    Outgoing::Chunk(s, d) => ch.send_chunk(s, d),
                    Outgoing::Frame(s, t, a, h) => ch.send_frame(s, t, a, h),
                }
            }
        }
    }

    fn dial(&self) -> std::io::Result<()> {
        let (endpoint, generation) = {
            let mut st = lock(&self.inner.state);
            if st.stopped {
                return Ok(());
            }
            st.generation += 1;
            st.ready = false;
            st.connected = false;
            (self.inner.opts.endpoints[st.endpoint % self.inner.opts.endpoints.len()].clone(), st.generation)
        };
        let mut config = self.inner.opts.channel.clone();
        config.delivery = crate::net::Delivery::Inline;
        if self.inner.opts.resume.is_some() {
            // The replay buffer is the bound.
            config.high_watermark = usize::MAX;
            // Frames are typed by the session's own state, which outlives
            // the connection (see `State::typed`).
            config.role = None;
        }
        let glue = Glue { session: self.clone(), generation, endpoint: endpoint.clone() };
        let ch = Channel::connect(endpoint, config, glue)?;
        self.inner.sink.feed_from(&ch);
        let mut st = lock(&self.inner.state);
        if st.generation == generation && !st.stopped {
            st.channel = Some(ch);
        } else {
            drop(st);
            ch.abort();
        }
        Ok(())
    }

    /// Schedules the next attempt after a failure (`connected`: a working
    /// connection was lost, so start over from the first endpoint).
    fn reconnect(&self, was_connected: bool) {
        let (attempt, delay, endpoint, generation) = {
            let mut st = lock(&self.inner.state);
            if st.stopped {
                return;
            }
            let n = self.inner.opts.endpoints.len();
            if was_connected {
                st.attempt = 0;
                st.endpoint = 0;
            } else if std::mem::replace(&mut st.initial, false) {
                // The first dial failed: its retry is the first attempt.
                st.attempt = 0;
                st.endpoint = (st.endpoint + 1) % n;
            } else {
                st.attempt += 1;
                st.endpoint = (st.endpoint + 1) % n;
            }
            // xorshift64 for the jitter.
            st.rng ^= st.rng << 13;
            st.rng ^= st.rng >> 7;
            st.rng ^= st.rng << 17;
            let unit = (st.rng >> 11) as f64 / (1u64 << 53) as f64;
            let delay = self.inner.opts.backoff.delay(st.attempt, unit);
            (st.attempt + 1, delay, self.inner.opts.endpoints[st.endpoint].clone(), st.generation)
        };
        self.inner.sink.emit(self, SessionEvent::ReconnectAttempt { attempt, endpoint, delay });
        let Ok(rt) = runtime::handle() else { return };
        let s = self.clone();
        rt.spawn(async move {
            tokio::time::sleep(delay).await;
            let current = lock(&s.inner.state).generation == generation;
            if current && s.dial().is_err() {
                s.reconnect(false);
            }
        });
    }

    fn start_liveness(&self, ch: &Channel, generation: u64) {
        let Some(l) = self.inner.opts.liveness else { return };
        let Ok(rt) = runtime::handle() else { return };
        let s = self.clone();
        let ch = ch.clone();
        let resume = self.inner.opts.resume.is_some();
        let dialect = self.inner.opts.channel.dialect;
        rt.spawn(async move {
            let mut enc = Encoder::new(dialect, Profile::Compat);
            loop {
                tokio::time::sleep(l.interval.min(l.timeout)).await;
                let silent = {
                    let st = lock(&s.inner.state);
                    if st.generation != generation || st.stopped {
                        return;
                    }
                    st.last_rx.elapsed() >= l.timeout
                };
                if silent {
                    ch.fail(errno::ETIMEDOUT);
                    return;
                }
                let _ = ch.send_raw(if resume { Control::Ping.encode(&mut enc) } else { Bytes::from_static(HEARTBEAT) });
            }
        });
    }
}

/// The handler of one connection of a session.
struct Glue {
    session: Session,
    generation: u64,
    endpoint: Endpoint,
}

impl Glue {
    /// Runs `f` on the state if this connection is still the current one.
    fn current<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        let mut st = lock(&self.session.inner.state);
        (st.generation == self.generation && !st.stopped).then(|| f(&mut st))
    }

    fn emit(&self, ev: SessionEvent) {
        self.session.inner.sink.emit(&self.session, ev);
    }
}

impl Handler for Glue {
    fn on_event(&mut self, ch: &Channel, event: Event) {
        let resume = self.session.inner.opts.resume.is_some();
        match event {
            Event::Connected => {
                let hello = self.current(|st| {
                    // (dial stores it too, maybe after this event)
                    st.channel = Some(ch.clone());
                    st.connected = true;
                    st.initial = false;
                    st.last_rx = Instant::now();
                    match st.replay.as_mut() {
                        Some(r) => {
                            let n = r.acknowledged();
                            Some(Control::Hello { token: st.token.clone(), received: n, known: false }.encode(&mut st.enc))
                        }
                        None => {
                            st.ready = true;
                            st.attempt = 0;
                            None
                        }
                    }
                });
                match hello {
                    None => return,
                    Some(Some(bytes)) => {
                        let _ = ch.send_raw(bytes);
                    }
                    Some(None) => self.emit(SessionEvent::Connected { endpoint: self.endpoint.clone(), resumed: false }),
                }
                self.session.start_liveness(ch, self.generation);
            }
            Event::Frame(ref f) if resume && f.session == CONTROL_ID && Control::parse(f).is_some() => {
                let control = Control::parse(f).expect("checked");
                enum Next {
                    Nothing,
                    Connected(bool),
                    Drain,
                    Fail,
                }
                let next = self.current(|st| {
                    st.last_rx = Instant::now();
                    let replay = st.replay.as_mut().expect("resume");
                    match control {
                        Ok(Control::Hello { token, received, known }) if !st.ready && token == st.token => {
                            if !known {
                                replay.restart();
                            }
                            match replay.resume(received) {
                                Ok(frames) => {
                                    for f in frames {
                                        let _ = ch.send_raw_segments(f.segments());
                                    }
                                }
                                Err(_) => return Next::Fail,
                            }
                            st.ready = true;
                            st.attempt = 0;
                            Next::Connected(known)
                        }
                        Ok(Control::Ack(n)) => {
                            if replay.ack(n).is_err() {
                                return Next::Fail;
                            }
                            if st.want_drain && replay.has_room() {
                                st.want_drain = false;
                                return Next::Drain;
                            }
                            Next::Nothing
                        }
                        Ok(Control::Ping) => {
                            let n = replay.acknowledged();
                            let _ = ch.send_raw(Control::Ack(n).encode(&mut st.enc));
                            Next::Nothing
                        }
                        _ => Next::Fail,
                    }
                });
                match next {
                    Some(Next::Connected(resumed)) => self.emit(SessionEvent::Connected { endpoint: self.endpoint.clone(), resumed }),
                    Some(Next::Drain) => self.emit(SessionEvent::Drain),
                    Some(Next::Fail) => ch.fail(errno::EBADMSG),
                    _ => {}
                }
            }
            Event::Frame(_) | Event::Message { .. } => {
                let size = event.bytes();
                let len = match &event {
                    Event::Frame(f) => f.args.raw().len(),
                    Event::Message { message: Message::Chunk { data }, .. } => data.len(),
                    _ => 0,
                };
                let id = match &event {
                    Event::Frame(f) => f.session,
                    Event::Message { session, .. } => *session,
                    _ => 0,
                };
                let ev = self.current(|st| {
                    st.last_rx = Instant::now();
                    st.max_id = st.max_id.max(id);
                    if !st.ready {
                        // Resume: nothing counts before the hello.
                        return None;
                    }
                    if let Some(r) = st.replay.as_mut() {
                        if let Some(n) = r.delivered(len) {
                            let _ = ch.send_raw(Control::Ack(n).encode(&mut st.enc));
                        }
                    }
                    Some(match (event, st.typed.as_mut()) {
                        (Event::Frame(f), Some(t)) => match t.receive_owned(f) {
                            Ok((session, message, headers)) => SessionEvent::Message { session, message, headers },
                            Err((f, _)) => SessionEvent::Frame(f),
                        },
                        (Event::Frame(f), None) => SessionEvent::Frame(f),
                        (Event::Message { session, message, headers }, _) => SessionEvent::Message { session, message, headers },
                        _ => return None,
                    })
                });
                let Some(Some(ev)) = ev else { return };
                self.session.inner.sink.emit_sized(&self.session, ev, size);
            }
            Event::Drain => {
                if !resume && self.current(|_| ()).is_some() {
                    self.emit(SessionEvent::Drain);
                }
            }
            Event::SocketError(e) => {
                let was = self.current(|st| {
                    st.channel = None;
                    st.ready = false;
                    std::mem::replace(&mut st.connected, false)
                });
                let Some(was_connected) = was else { return };
                if was_connected {
                    self.emit(SessionEvent::Disconnected { errno: e });
                }
                self.session.reconnect(was_connected);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2), multiplier: 2.0, jitter: 0.25 };
        assert_eq!(b.base(0), Duration::from_millis(100));
        assert_eq!(b.base(3), Duration::from_millis(800));
        assert_eq!(b.base(10), Duration::from_secs(2));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(2));
        let (lo, hi) = b.bounds(1);
        assert_eq!((lo, hi), (Duration::from_millis(150), Duration::from_millis(250)));
        assert_eq!(b.delay(1, 0.0), lo);
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert!(b.delay(1, 0.999) < hi);
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(2, 0.7), Duration::from_millis(400));
    }
}
