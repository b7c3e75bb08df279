//! Resume: a sluice-to-sluice extension that lets a stream of frames
//! survive reconnections with nothing lost and nothing duplicated
//! (docs/RESUME.md describes the wire; Cocaine peers never see it).
//!
//! Each side numbers the frames it sends through a resumable
//! [`Session`](super::Session) or [`Peer`] and keeps them in a [`Replay`]
//! buffer until the other side acknowledges them; each side counts the
//! frames it has delivered. When a connection is made, both sides send
//! `hello(token, received)` and then replay every buffered frame the other
//! side has not received. Acknowledgements (`ack(received)`) flow as the
//! receiver delivers, which bounds the buffers.
//!
//! The extension frames use control id 0 (never a v1 channel, and a v0
//! session no Cocaine peer uses with these type ids) and type ids from
//! [`HELLO`] up.
//!
//! The extension's frames are in [`wire::resume`](crate::wire::resume), the
//! replay buffer in [`Replay`]; this module serves resumable sessions.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::sink::Sink;
use crate::errno;
use crate::net::{runtime, Channel, ChannelConfig, DispatchError, Endpoint, Event, Handler, Incoming, SendError, Server};
use crate::wire::{Args, Encoder, Frame, Header, Message, Profile, Session as Streams};

pub(crate) use super::replay::Outgoing;
pub use super::replay::{BadAck, Encoded, Replay, ResumeOptions};
pub(crate) use crate::wire::resume::Control;
pub use crate::wire::resume::{ACK, CONTROL_ID, HELLO, PING};

// ----------------------------------------------------------------------
// The server side

/// How a [`ResumeServer`] listens and keeps its peers.
#[derive(Debug, Clone)]
pub struct ResumeServerOptions {
    /// Where to listen.
    pub endpoint: Endpoint,
    /// The accepted channels' settings; `delivery` says how the server's
    /// events reach the handler. The send queue bound is the replay
    /// buffer's (`resume.max_unacked`).
    pub channel: ChannelConfig,
    /// Replay buffer bounds and acknowledgement rate.
    pub resume: ResumeOptions,
    /// A peer whose connection has been gone this long is forgotten
    /// ([`ResumeEvent::PeerGone`]).
    pub peer_timeout: Duration,
    /// Connections whose first frame is not a `hello` within this long are
    /// cut.
    pub hello_timeout: Duration,
    /// Most peers remembered at once (connected, or gone and waiting out
    /// `peer_timeout`). A `hello` with a token not yet known while this
    /// many are remembered is refused: its connection ends with
    /// `ECONNREFUSED` and nothing is kept for it. Known peers always resume.
    pub max_peers: usize,
}

impl ResumeServerOptions {
    /// Defaults (`peer_timeout` 60 s, `hello_timeout` 10 s, `max_peers`
    /// 4096).
    pub fn new(endpoint: Endpoint, channel: ChannelConfig) -> ResumeServerOptions {
        ResumeServerOptions {
            endpoint,
            channel,
            resume: ResumeOptions::default(),
            peer_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(10),
            max_peers: 4096,
        }
    }
}

/// What a resume server tells its handler. Events of one peer arrive in
/// stream order, across its connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResumeEvent {
    /// A peer connected: `resumed` when it was known (its stream goes on),
    /// otherwise a new peer.
    PeerConnected {
        /// The peer.
        peer: Peer,
        /// Whether this continues an earlier connection's stream.
        resumed: bool,
    },
    /// A peer's connection ended; its stream waits for it to come back
    /// until the peer timeout.
    PeerDisconnected {
        /// The peer.
        peer: Peer,
        /// Why the connection ended.
        errno: i32,
    },
    /// The peer did not come back in time (or was closed): forgotten.
    PeerGone {
        /// The peer.
        peer: Peer,
    },
    /// A typed message (channels with a role).
    Message {
        /// From this peer.
        peer: Peer,
        /// Session id.
        session: u64,
        /// The message.
        message: Message,
        /// v1 headers.
        headers: Vec<Header>,
    },
    /// A frame (channels without a role, or frames the role drops).
    Frame {
        /// From this peer.
        peer: Peer,
        /// The frame.
        frame: Frame,
    },
    /// The peer's replay buffer has room again after a refused send.
    Drain {
        /// The peer.
        peer: Peer,
    },
}

/// Receives a resume server's events. Implemented for closures.
pub trait ResumeHandler: Send + 'static {
    /// Handles one event; it may call any method of the server or peer.
    fn on_event(&mut self, server: &ResumeServer, event: ResumeEvent);
}

impl<F: FnMut(&ResumeServer, ResumeEvent) + Send + 'static> ResumeHandler for F {
    fn on_event(&mut self, server: &ResumeServer, event: ResumeEvent) {
        self(server, event)
    }
}

struct PeerState {
    replay: Replay,
    enc: Encoder,
    /// The attached connection, once its hello is answered.
    channel: Option<Channel>,
    /// With a role: the state of the sessions, kept across connections (a
    /// new connection alone would not know the sessions opened before it),
    /// fed with exactly the frames delivered once.
    typed: Option<Streams>,
    /// Bumped at every attach: events of older connections are dropped.
    generation: u64,
    want_drain: bool,
    gone: bool,
}

struct PeerInner {
    token: Bytes,
    state: Mutex<PeerState>,
    /// Held while a connection counts and delivers a frame, so that frames
    /// of an old connection and the next one never interleave.
    deliver: Mutex<()>,
}

/// A client of a [`ResumeServer`], across its connections. Cheap to clone;
/// compare with `==`.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

impl PartialEq for Peer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Peer {}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer(")?;
        for b in self.inner.token.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peer {
    /// The token the client chose.
    pub fn token(&self) -> &Bytes {
        &self.inner.token
    }

    /// Frames received from the peer so far (across connections).
    pub fn received(&self) -> u64 {
        lock(&self.inner.state).replay.received()
    }

    /// Whether a connection is attached now.
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.state).channel.is_some()
    }

    fn send(&self, out: Outgoing<'_>) -> Result<(), SendError> {
        let mut st = lock(&self.inner.state);
        if st.gone {
            return Err(SendError::Closed);
        }
        let st = &mut *st;
        let frame = out.encode(&mut st.enc);
        if let Err(e) = st.replay.push(frame) {
            st.want_drain = true;
            return Err(e);
        }
        // Recorded before the bytes leave: the answer is classified under
        // this same lock.
        if let (Some(t), Outgoing::Message(s, m, _)) = (st.typed.as_mut(), &out) {
            t.sent(*s, m.kind());
        }
        if let (Some(ch), Some(f)) = (&st.channel, st.replay.last()) {
            // The replay buffer is the bound: the channel's queue is not.
            let _ = ch.send_raw_segments(f.segments());
        }
        Ok(())
    }

    /// Queues a typed message; kept until the peer acknowledges it, and
    /// sent again after a reconnection if needed.
    pub fn send_message(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), SendError> {
        self.send(Outgoing::Message(session, message, headers))
    }

    /// Queues a chunk.
    pub fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), SendError> {
        self.send(Outgoing::Chunk(session, data))
    }

    /// Queues a generic frame.
    pub fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.send(Outgoing::Frame(session, ty, args, headers))
    }

    /// Cuts the current connection (the peer will reconnect and resume);
    /// [`ResumeEvent::PeerDisconnected`] follows with `errno`.
    pub fn disconnect(&self, errno: i32) {
        let ch = lock(&self.inner.state).channel.clone();
        if let Some(ch) = ch {
            ch.fail(errno);
        }
    }
}

struct ServerInner {
    opts: ResumeServerOptions,
    server: std::sync::OnceLock<Server>,
    sink: Sink<ResumeServer, ResumeEvent>,
    peers: Mutex<HashMap<Bytes, Peer>>,
}

/// A server whose clients are resumable [`Session`](super::Session)s. Cheap
/// to clone.
#[derive(Clone)]
pub struct ResumeServer {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for ResumeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeServer").field("endpoint", &self.inner.opts.endpoint).finish_non_exhaustive()
    }
}

impl ResumeServer {
    /// Listens on `opts.endpoint`.
    pub fn bind(opts: ResumeServerOptions, handler: impl ResumeHandler) -> std::io::Result<ResumeServer> {
        let mut handler = handler;
        let sink =
            Sink::new(opts.channel.delivery, opts.channel.max_pending, Box::new(move |s: &ResumeServer, ev| handler.on_event(s, ev)))?;
        let server = ResumeServer {
            inner: Arc::new(ServerInner { opts, server: std::sync::OnceLock::new(), sink, peers: Mutex::new(HashMap::new()) }),
        };
        let mut config = server.inner.opts.channel.clone();
        config.delivery = crate::net::Delivery::Inline;
        config.high_watermark = usize::MAX;
        // Frames are typed by each peer's own state, which outlives its
        // connections (see `PeerState::typed`).
        config.role = None;
        let weak = Arc::downgrade(&server.inner);
        let s = Server::bind(&server.inner.opts.endpoint, config, move |_: &Server, inc: Incoming| {
            if let Some(inner) = weak.upgrade() {
                ResumeServer { inner }.accept(inc);
            }
        })?;
        let _ = server.inner.server.set(s);
        Ok(server)
    }

    /// Where it listens.
    pub fn local(&self) -> Endpoint {
        self.inner.server.get().map(|s| s.local().clone()).unwrap_or_else(|| self.inner.opts.endpoint.clone())
    }

    /// The peers it remembers (connected or waiting to come back).
    pub fn peers(&self) -> Vec<Peer> {
        lock(&self.inner.peers).values().cloned().collect()
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

    /// Stops listening, closes every connection and forgets every peer; no
    /// event is delivered afterwards.
    pub fn close(&self) {
        self.inner.sink.silence();
        if let Some(s) = self.inner.server.get() {
            s.close();
        }
        for (_, p) in lock(&self.inner.peers).drain() {
            let mut st = lock(&p.inner.state);
            st.gone = true;
            if let Some(ch) = st.channel.take() {
                ch.close();
            }
        }
    }

    fn accept(&self, inc: Incoming) {
        let helloed = Arc::new(AtomicBool::new(false));
        let glue = Glue { server: Arc::downgrade(&self.inner), attached: None, enc: None, helloed: helloed.clone() };
        if let Ok(ch) = inc.start(glue) {
            self.inner.sink.feed_from(&ch);
            let timeout = self.inner.opts.hello_timeout;
            // The timer does not keep a closed connection alive.
            let ch = ch.downgrade();
            if let Ok(rt) = runtime::handle() {
                rt.spawn(async move {
                    tokio::time::sleep(timeout).await;
                    let Some(ch) = ch.upgrade() else { return };
                    if !helloed.load(Ordering::Acquire) && !ch.is_finished() {
                        ch.fail(errno::ETIMEDOUT);
                    }
                });
            }
        }
    }

    fn forget_later(&self, peer: Peer, generation: u64) {
        let timeout = self.inner.opts.peer_timeout;
        let Ok(rt) = runtime::handle() else { return };
        let weak = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(inner) = weak.upgrade() else { return };
            let server = ResumeServer { inner };
            {
                let mut st = lock(&peer.inner.state);
                if st.generation != generation || st.channel.is_some() || st.gone {
                    return;
                }
                st.gone = true;
            }
            lock(&server.inner.peers).remove(&peer.inner.token);
            server.inner.sink.emit(&server, ResumeEvent::PeerGone { peer });
        });
    }
}

/// The handler of one accepted connection.
struct Glue {
    server: Weak<ServerInner>,
    /// The peer and the generation this connection carries.
    /// (Weak: the peer holds this connection's channel, whose handler
    /// this is.)
    attached: Option<(Weak<PeerInner>, u64)>,
    enc: Option<Encoder>,
    /// Set once the hello is answered (the hello timeout stops mattering).
    helloed: Arc<AtomicBool>,
}

impl Glue {
    /// The attached peer, if any and still remembered.
    fn peer(&self) -> Option<(Peer, u64)> {
        let (w, g) = self.attached.as_ref()?;
        Some((Peer { inner: w.upgrade()? }, *g))
    }

    fn hello(&mut self, server: &ResumeServer, ch: &Channel, token: Bytes, received: u64) {
        if token.len() != 16 {
            ch.fail(errno::EBADMSG);
            return;
        }
        let (peer, known) = {
            let mut peers = lock(&server.inner.peers);
            match peers.get(&token) {
                Some(p) => (p.clone(), true),
                None if peers.len() >= server.inner.opts.max_peers => {
                    // Made-up tokens cannot fill the server's memory.
                    drop(peers);
                    ch.fail(errno::ECONNREFUSED);
                    return;
                }
                None => {
                    let p = Peer {
                        inner: Arc::new(PeerInner {
                            token: token.clone(),
                            state: Mutex::new(PeerState {
                                replay: Replay::new(server.inner.opts.resume.clone()),
                                enc: Encoder::new(ch.config().dialect, Profile::Compat),
                                channel: None,
                                typed: server.inner.opts.channel.session_state(),
                                generation: 0,
                                want_drain: false,
                                gone: false,
                            }),
                            deliver: Mutex::new(()),
                        }),
                    };
                    peers.insert(token.clone(), p.clone());
                    (p, false)
                }
            }
        };
        let order = peer.inner.clone();
        let _order = lock(&order.deliver);
        let generation = {
            let mut st = lock(&peer.inner.state);
            let st = &mut *st;
            let mut enc = Encoder::new(ch.config().dialect, Profile::Compat);
            // Our hello acknowledges everything delivered so far; then come
            // the frames the client missed, straight from the buffer.
            let hello = Control::Hello { token: token.clone(), received: st.replay.acknowledged(), known };
            let frames = match st.replay.resume(received) {
                Ok(frames) => frames,
                Err(_) => {
                    drop(_order);
                    ch.fail(errno::EBADMSG);
                    return;
                }
            };
            if let Some(old) = st.channel.take() {
                old.abort();
            }
            st.generation += 1;
            let _ = ch.send_raw(hello.encode(&mut enc));
            for f in frames {
                let _ = ch.send_raw_segments(f.segments());
            }
            st.channel = Some(ch.clone());
            st.generation
        };
        self.attached = Some((Arc::downgrade(&peer.inner), generation));
        self.helloed.store(true, Ordering::Release);
        self.enc = Some(Encoder::new(ch.config().dialect, Profile::Compat));
        server.inner.sink.emit(server, ResumeEvent::PeerConnected { peer, resumed: known });
    }
}

impl Handler for Glue {
    fn on_event(&mut self, ch: &Channel, event: Event) {
        let Some(inner) = self.server.upgrade() else {
            ch.abort();
            return;
        };
        let server = ResumeServer { inner };
        let frame_len = |ev: &Event| match ev {
            Event::Frame(f) => f.args.raw().len(),
            Event::Message { message: Message::Chunk { data }, .. } => data.len(),
            _ => 0,
        };
        match event {
            Event::Connected => {}
            Event::Frame(ref f) if f.session == CONTROL_ID => match Control::parse(f) {
                Some(Ok(Control::Hello { token, received, .. })) if self.attached.is_none() => self.hello(&server, ch, token, received),
                Some(Ok(Control::Ack(n))) => {
                    if let Some((peer, _)) = &self.peer() {
                        let drained = {
                            let mut st = lock(&peer.inner.state);
                            if st.replay.ack(n).is_err() {
                                drop(st);
                                ch.fail(errno::EBADMSG);
                                return;
                            }
                            let due = st.want_drain && st.replay.has_room();
                            if due {
                                st.want_drain = false;
                            }
                            due
                        };
                        if drained {
                            server.inner.sink.emit(&server, ResumeEvent::Drain { peer: peer.clone() });
                        }
                    }
                }
                Some(Ok(Control::Ping)) => {
                    if let (Some((peer, _)), Some(enc)) = (self.peer(), self.enc.as_mut()) {
                        let n = lock(&peer.inner.state).replay.acknowledged();
                        let _ = ch.send_raw(Control::Ack(n).encode(enc));
                    }
                }
                Some(_) => ch.fail(errno::EBADMSG),
                None => self.data(&server, ch, event, 0),
            },
            Event::Frame(_) | Event::Message { .. } => {
                let n = frame_len(&event);
                self.data(&server, ch, event, n)
            }
            Event::Drain => {}
            Event::SocketError(e) => {
                if let Some((peer, generation)) = self.peer().inspect(|_| self.attached = None) {
                    let current = {
                        let mut st = lock(&peer.inner.state);
                        let current = st.generation == generation && !st.gone;
                        if current {
                            st.channel = None;
                        }
                        current
                    };
                    if current {
                        server.inner.sink.emit(&server, ResumeEvent::PeerDisconnected { peer: peer.clone(), errno: e });
                        server.forget_later(peer, generation);
                    }
                }
            }
        }
    }
}

impl Glue {
    /// A data frame: counted, acknowledged when due, delivered, all in
    /// stream order.
    fn data(&mut self, server: &ResumeServer, ch: &Channel, event: Event, len: usize) {
        let size = event.bytes();
        let Some((peer, generation)) = self.peer() else {
            // Data before the hello: not a resumable client.
            ch.fail(errno::EBADMSG);
            return;
        };
        let order = peer.inner.clone();
        let _order = lock(&order.deliver);
        let (ack, event) = {
            let mut st = lock(&peer.inner.state);
            if st.generation != generation || st.gone {
                // A newer connection has taken over: the client sends this
                // frame again there.
                return;
            }
            let ack = st.replay.delivered(len);
            let event = match (event, st.typed.as_mut()) {
                (Event::Frame(f), Some(t)) => match t.receive_owned(f) {
                    Ok((session, message, headers)) => Event::Message { session, message, headers },
                    Err((f, _)) => Event::Frame(f),
                },
                (event, _) => event,
            };
            (ack, event)
        };
        if let (Some(n), Some(enc)) = (ack, self.enc.as_mut()) {
            let _ = ch.send_raw(Control::Ack(n).encode(enc));
        }
        let ev = match event {
            Event::Message { session, message, headers } => ResumeEvent::Message { peer, session, message, headers },
            Event::Frame(frame) => ResumeEvent::Frame { peer, frame },
            _ => return,
        };
        server.inner.sink.emit_sized(server, ev, size);
    }
}
