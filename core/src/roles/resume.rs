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

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes};

use super::sink::Sink;
use crate::errno;
use crate::net::{runtime, Channel, ChannelConfig, DispatchError, Endpoint, Event, Handler, Incoming, SendError, Server};
use crate::wire::{Args, Encoder, Frame, Header, Message, Profile, Session as Streams, Value};

/// `hello(token: bin, received: uint[, known: bool])`: the first frame of
/// each side on every connection of a resumable session.
pub const HELLO: u64 = 0xFF00;
/// `ack(received: uint)`: frames delivered so far.
pub const ACK: u64 = 0xFF01;
/// `ping()`: asks for an `ack` (the liveness heartbeat of resumable
/// sessions).
pub const PING: u64 = 0xFF02;
/// The control id the extension frames use.
pub const CONTROL_ID: u64 = 0;

/// Bounds of the replay buffer and how often acknowledgements go out.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    /// Sends are refused ("would block") while this many bytes wait for the
    /// peer's acknowledgement.
    pub max_unacked: usize,
    /// Acknowledge after this many frames delivered...
    pub ack_every: u64,
    /// ...or this many bytes, whichever comes first. Keep it well below the
    /// peer's `max_unacked`.
    pub ack_bytes: usize,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions { max_unacked: 8 << 20, ack_every: 256, ack_bytes: 1 << 20 }
    }
}

/// A peer's `hello` or `ack` that cannot be true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer acknowledges {claimed} frames; {sent} were sent, {acked} acknowledged before")]
pub struct BadAck {
    /// What the peer claimed.
    pub claimed: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames acknowledged before.
    pub acked: u64,
}

/// One encoded frame kept for replay: its segments as the encoder made
/// them (a large payload stays shared with the sender's buffer, not copied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    segments: Vec<Bytes>,
    len: usize,
}

impl Encoded {
    /// A frame from its segments.
    pub fn new(segments: Vec<Bytes>) -> Encoded {
        let len = segments.iter().map(Bytes::len).sum();
        Encoded { segments, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its segments, in order.
    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }
}

impl From<Bytes> for Encoded {
    fn from(b: Bytes) -> Encoded {
        Encoded::new(vec![b])
    }
}

/// One direction's bookkeeping, sans-IO: frames sent and not yet
/// acknowledged (to replay), and frames received (to acknowledge).
#[derive(Debug)]
pub struct Replay {
    opts: ResumeOptions,
    /// Frames sent so far (the next frame's number).
    sent: u64,
    /// The peer has received every frame below this number.
    acked: u64,
    buffer: VecDeque<Encoded>,
    bytes: usize,
    received: u64,
    told: u64,
    bytes_since_ack: usize,
}

impl Replay {
    /// An empty state.
    pub fn new(opts: ResumeOptions) -> Replay {
        Replay { opts, sent: 0, acked: 0, buffer: VecDeque::new(), bytes: 0, received: 0, told: 0, bytes_since_ack: 0 }
    }

    /// Keeps an encoded frame until acknowledged. Refused while the buffer
    /// holds `max_unacked` bytes (an empty buffer takes any frame).
    pub fn push(&mut self, frame: Encoded) -> Result<(), SendError> {
        if !self.buffer.is_empty() && self.bytes + frame.len() > self.opts.max_unacked {
            return Err(SendError::WouldBlock);
        }
        self.bytes += frame.len();
        self.buffer.push_back(frame);
        self.sent += 1;
        Ok(())
    }

    /// The frame pushed last, if still unacknowledged.
    pub fn last(&self) -> Option<&Encoded> {
        self.buffer.back()
    }

    /// The peer has received the first `upto` frames.
    pub fn ack(&mut self, upto: u64) -> Result<(), BadAck> {
        if upto > self.sent {
            return Err(BadAck { claimed: upto, sent: self.sent, acked: self.acked });
        }
        while self.acked < upto {
            if let Some(f) = self.buffer.pop_front() {
                self.bytes -= f.len();
            }
            self.acked += 1;
        }
        Ok(())
    }

    /// A new connection: the peer has received `peer_received` frames.
    /// Returns the frames to send again, in order.
    pub fn resume(&mut self, peer_received: u64) -> Result<impl Iterator<Item = &Encoded>, BadAck> {
        if peer_received < self.acked {
            return Err(BadAck { claimed: peer_received, sent: self.sent, acked: self.acked });
        }
        self.ack(peer_received)?;
        Ok(self.buffer.iter())
    }

    /// The peer lost its state (a fresh peer answered): renumber what is
    /// buffered from 0, and count received frames from 0.
    pub fn restart(&mut self) {
        self.sent -= self.acked;
        self.acked = 0;
        self.received = 0;
        self.told = 0;
        self.bytes_since_ack = 0;
    }

    /// A frame of `len` bytes was delivered. Returns the count to
    /// acknowledge when an `ack` is due.
    pub fn delivered(&mut self, len: usize) -> Option<u64> {
        self.received += 1;
        self.bytes_since_ack += len;
        if self.received - self.told >= self.opts.ack_every || self.bytes_since_ack >= self.opts.ack_bytes {
            return Some(self.acknowledged());
        }
        None
    }

    /// Records that the current count is being acknowledged; returns it.
    pub fn acknowledged(&mut self) -> u64 {
        self.told = self.received;
        self.bytes_since_ack = 0;
        self.received
    }

    /// Frames delivered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Frames sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes waiting for acknowledgement.
    pub fn unacked_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a refused push would now be accepted with room to spare
    /// (the buffer is at most half full).
    pub fn has_room(&self) -> bool {
        self.bytes <= self.opts.max_unacked / 2
    }
}

/// An extension frame, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Hello { token: Bytes, received: u64, known: bool },
    Ack(u64),
    Ping,
}

impl Control {
    /// Parses a frame on the control id; `None` if it is not an extension
    /// frame, `Some(Err)` if it is one with bad arguments.
    pub(crate) fn parse(frame: &Frame) -> Option<Result<Control, ()>> {
        if frame.session != CONTROL_ID || !(HELLO..=PING).contains(&frame.ty) {
            return None;
        }
        let mut r = frame.args.reader();
        Some(match frame.ty {
            HELLO => (|| {
                let token = r.bytes().ok_or(())?;
                let received = r.uint().ok_or(())?;
                let known = matches!(r.value(), Ok(Value::Bool(true)));
                Ok(Control::Hello { token, received, known })
            })(),
            ACK => r.uint().map(Control::Ack).ok_or(()),
            _ => Ok(Control::Ping),
        })
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) -> Bytes {
        let (ty, args) = match self {
            Control::Hello { token, received, known } => {
                (HELLO, vec![Value::Bin(token.clone()), Value::Uint(*received), Value::Bool(*known)])
            }
            Control::Ack(n) => (ACK, vec![Value::Uint(*n)]),
            Control::Ping => (PING, vec![]),
        };
        enc.frame_values(CONTROL_ID, ty, &args, &[]);
        take(enc)
    }
}

/// Everything the encoder holds, as one buffer (for short control frames).
pub(crate) fn take(enc: &mut Encoder) -> Bytes {
    let out = enc.out();
    let n = out.remaining();
    out.copy_to_bytes(n)
}

/// Encodes one frame of the session's data stream.
pub(crate) enum Outgoing<'a> {
    Message(u64, &'a Message, &'a [Header]),
    Chunk(u64, &'a Bytes),
    Frame(u64, u64, &'a Args, &'a [Header]),
}

impl Outgoing<'_> {
    /// The frame's segments; a large payload is shared, not copied.
    pub(crate) fn encode(&self, enc: &mut Encoder) -> Encoded {
        match self {
            Outgoing::Message(s, m, h) => enc.message(*s, m, h),
            Outgoing::Chunk(s, d) => enc.chunk(*s, d, &[]),
            Outgoing::Frame(s, t, a, h) => enc.frame(*s, *t, a, h),
        }
        Encoded::new(enc.out().take_segments())
    }

    pub(crate) fn session(&self) -> u64 {
        match self {
            Outgoing::Message(s, ..) | Outgoing::Chunk(s, _) | Outgoing::Frame(s, ..) => *s,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: u8) -> Encoded {
        Bytes::from(vec![n; 10]).into()
    }

    #[test]
    fn a_large_payload_is_kept_for_replay_without_a_copy() {
        let payload = Bytes::from(vec![7u8; 64 << 10]);
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let frame = Outgoing::Chunk(3, &payload).encode(&mut enc);
        assert!(frame.segments().iter().any(|s| s.as_ptr() == payload.as_ptr() && s.len() == payload.len()));
        assert!(frame.len() > payload.len() && frame.len() < payload.len() + 16);
        assert!(enc.out().is_empty());
        // The segments are the bytes a plain encoding gives.
        let mut plain = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        plain.chunk(3, &payload, &[]);
        let whole = take(&mut plain);
        assert_eq!(frame.segments().concat(), whole.to_vec());
    }

    #[test]
    fn replays_exactly_what_the_peer_missed() {
        let mut r = Replay::new(ResumeOptions { max_unacked: 45, ack_every: 2, ack_bytes: 1 << 20 });
        for i in 0..4 {
            r.push(f(i)).unwrap();
        }
        // Full: 40 bytes held, 10 more would pass 45.
        assert_eq!(r.push(f(9)), Err(SendError::WouldBlock));
        assert!(!r.has_room());
        r.ack(1).unwrap();
        assert_eq!(r.unacked_bytes(), 30);
        // The peer reconnects having received 2 frames: 2 and 3 again.
        let again: Vec<Encoded> = r.resume(2).unwrap().cloned().collect();
        assert_eq!(again, vec![f(2), f(3)]);
        assert!(r.has_room());
        // Claims beyond what was sent, or below what was acknowledged, are
        // refused.
        assert!(r.ack(5).is_err());
        assert!(r.resume(1).is_err());
        r.push(f(4)).unwrap();
        assert_eq!(r.sent(), 5);
        // A peer that lost its state: what is buffered is numbered from 0.
        r.restart();
        assert_eq!(r.sent(), 3);
        let again: Vec<Encoded> = r.resume(0).unwrap().cloned().collect();
        assert_eq!(again, vec![f(2), f(3), f(4)]);
    }

    #[test]
    fn acknowledges_by_count_and_by_bytes() {
        let mut r = Replay::new(ResumeOptions { max_unacked: 1 << 20, ack_every: 3, ack_bytes: 100 });
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.delivered(1), Some(3));
        assert_eq!(r.delivered(150), Some(4));
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.acknowledged(), 5);
        assert_eq!(r.received(), 5);
    }

    #[test]
    fn control_frames_round_trip() {
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let mut dec = crate::wire::Decoder::new(crate::wire::DecoderConfig::default());
        for c in [Control::Hello { token: Bytes::from_static(&[7; 16]), received: 1 << 40, known: true }, Control::Ack(12), Control::Ping] {
            let b = c.encode(&mut enc);
            dec.buffer_mut().extend_from_slice(&b);
            let frame = dec.decode().unwrap().unwrap();
            assert_eq!(Control::parse(&frame), Some(Ok(c)));
        }
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    /// The bytes docs/RESUME.md shows.
    #[test]
    fn extension_frames_are_the_documented_bytes() {
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let token = Bytes::from_static(&[0xab; 16]);
        let hello = Control::Hello { token, received: 1_000_000, known: true }.encode(&mut enc);
        let mut want = b"\x93\x00\xcd\xff\x00\x93\xb0".to_vec();
        want.extend_from_slice(&[0xab; 16]);
        want.extend_from_slice(b"\xce\x00\x0f\x42\x40\xc3");
        assert_eq!(&hello[..], &want[..]);
        assert_eq!(&Control::Ack(512).encode(&mut enc)[..], b"\x93\x00\xcd\xff\x01\x91\xcd\x02\x00");
        assert_eq!(&Control::Ping.encode(&mut enc)[..], b"\x93\x00\xcd\xff\x02\x90");
    }
}
