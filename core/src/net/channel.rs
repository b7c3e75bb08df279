//! The channel: one connection, its read loop, its bounded send queue and
//! the delivery of its events.

use std::io::IoSlice;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{watch, Notify};

use super::config::{ChannelConfig, Delivery, Endpoint};
use super::poller::Poller;
use super::{errno_of, runtime};
use crate::errno;
use crate::wire::{Args, Decoder, DecoderConfig, Encoder, Frame, Header, InPlace, Kind, Message, Session};

/// What a channel tells its handler. Within a channel, events arrive in
/// wire order, one at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The connection is established (also delivered for accepted channels).
    Connected,
    /// A worker-protocol message (channels with a [`role`](ChannelConfig::role)).
    Message {
        /// The v0 session / v1 channel id.
        session: u64,
        /// The message.
        message: Message,
        /// Its v1 headers.
        headers: Vec<Header>,
    },
    /// A frame that is not a worker-protocol message: every frame on a
    /// channel without a role; on a channel with one, frames the protocol
    /// drops (unknown type, unknown or finished session).
    Frame(Frame),
    /// The send queue fell to the low watermark after a send was refused.
    Drain,
    /// The connection ended with this errno (docs/PROTOCOL.md §8.3): the last
    /// event of the channel, delivered exactly once unless the owner closed
    /// the channel first.
    SocketError(i32),
}

impl Event {
    /// The memory the event holds, counted for poll-mode backpressure: its
    /// byte strings and headers plus the event itself, so that a flood of
    /// empty messages (heartbeats, invokes) is bounded like one of chunks.
    pub(crate) fn bytes(&self) -> usize {
        let headers = |h: &[Header]| h.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
        std::mem::size_of::<Event>()
            + match self {
                Event::Message { message, headers: h, .. } => {
                    headers(h)
                        + match message {
                            Message::Chunk { data } => data.len(),
                            Message::Invoke { event } => event.len(),
                            Message::Handshake { uuid } => uuid.len(),
                            Message::Terminate { reason, .. } => reason.len(),
                            Message::Error { message, .. } => message.as_ref().map_or(0, |m| m.len()),
                            Message::Heartbeat | Message::Choke => 0,
                        }
                }
                Event::Frame(f) => f.args.raw().len() + headers(&f.headers),
                _ => 0,
            }
    }
}

/// A chunk (v0 `chunk`, v1 `write`) handed to [`Handler::on_chunk`]. It
/// borrows its payload for the duration of the call (inline, straight
/// from the receive buffer): reading it costs nothing, and
/// [`to_bytes`](Chunk::to_bytes) keeps it beyond the call without a copy.
/// A `Chunk` is `Copy` and has nothing to drop.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    session: u64,
    /// The payload, within `buf`.
    data: &'a [u8],
    buf: &'a Bytes,
    headers: &'a [Header],
}

impl<'a> Chunk<'a> {
    #[inline]
    fn borrowed(session: u64, buf: &'a Bytes, start: usize, end: usize) -> Chunk<'a> {
        Chunk { session, data: &buf[start..end], buf, headers: &[] }
    }

    /// A chunk of `session` whose payload is the whole of `data`, with
    /// `headers`.
    #[inline]
    pub fn new(session: u64, data: &'a Bytes, headers: &'a [Header]) -> Chunk<'a> {
        Chunk { session, data, buf: data, headers }
    }

    /// The v0 session / v1 channel id.
    #[inline]
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The payload, borrowed.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The payload as a `Bytes` that may outlive the call: it shares the
    /// receive buffer (a reference count, no copy).
    #[inline]
    pub fn to_bytes(&self) -> Bytes {
        if self.data.len() == self.buf.len() {
            self.buf.clone()
        } else {
            self.buf.slice_ref(self.data)
        }
    }

    /// The payload as a `Bytes` (as [`to_bytes`](Chunk::to_bytes)).
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.to_bytes()
    }

    /// The chunk's v1 headers (empty in v0 and when it has none).
    #[inline]
    pub fn headers(&self) -> &'a [Header] {
        self.headers
    }

    /// The chunk as the [`Event::Message`] that [`Handler::on_event`] takes.
    #[inline]
    pub fn into_event(self) -> Event {
        Event::Message { session: self.session, message: Message::Chunk { data: self.to_bytes() }, headers: self.headers.to_vec() }
    }
}

impl std::ops::Deref for Chunk<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

/// Receives a channel's events. Implemented for closures.
///
/// In [`Delivery::Inline`] mode the methods run on an I/O thread and must
/// not block; in [`Delivery::Poll`] mode they run on the thread that calls
/// [`Channel::dispatch`]. They may send on and close any channel,
/// including `channel`. Calls for one channel never overlap and follow
/// wire order.
pub trait Handler: Send + 'static {
    /// Handles one event.
    fn on_event(&mut self, channel: &Channel, event: Event);

    /// Handles a chunk message: every [`Message::Chunk`] comes here rather
    /// than to [`on_event`](Self::on_event). Inline, its payload is
    /// borrowed from the receive buffer, so a handler that only reads it
    /// costs no allocation or reference count per chunk
    /// ([`Chunk::to_bytes`] keeps it). The default hands the chunk to
    /// `on_event` as an [`Event::Message`].
    #[inline]
    fn on_chunk(&mut self, channel: &Channel, chunk: Chunk<'_>) {
        self.on_event(channel, chunk.into_event())
    }

    /// Called after a run of events delivered together: inline, after the
    /// events decoded from one read of the socket (and after a connect,
    /// drain or socket error event); in poll mode, at the end of a
    /// [`Channel::dispatch`] that ran any. Also called when a close cut
    /// the run short. A place to flush work gathered per event, or to let
    /// go of what was held through the run. The default does nothing.
    #[inline]
    fn on_batch_end(&mut self, channel: &Channel) {
        let _ = channel;
    }
}

/// Hands `event` to `h`: chunk messages to `on_chunk`, the rest to
/// `on_event`.
#[inline]
fn handle(h: &mut dyn Handler, ch: &Channel, event: Event) {
    match event {
        Event::Message { session, message: Message::Chunk { data }, headers } => h.on_chunk(ch, Chunk::new(session, &data, &headers)),
        ev => h.on_event(ch, ev),
    }
}

/// One frame of a decoded batch, waiting for delivery: a chunk left in the
/// batch, or the next of the batch's owned events.
#[derive(Debug, Clone, Copy)]
enum Rec {
    Chunk { session: u64, start: usize, end: usize },
    Event,
}

impl<F: FnMut(&Channel, Event) + Send + 'static> Handler for F {
    fn on_event(&mut self, channel: &Channel, event: Event) {
        self(channel, event)
    }
}

/// Why a send was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The send queue is at its high watermark; wait for [`Event::Drain`].
    #[error("the send queue is full (would block)")]
    WouldBlock,
    /// The channel is closed or its connection ended.
    #[error("the channel is closed")]
    Closed,
}

/// Errors of [`Channel::dispatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The channel delivers inline, not by dispatch.
    #[error("the channel does not use poll delivery")]
    NotPolled,
    /// Called from inside this channel's own handler.
    #[error("dispatch called from the channel's own handler")]
    Reentrant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Open,
    /// Flush what is queued, then shut down.
    Closing,
    Closed,
}

struct Tx {
    enc: Encoder,
    /// Bytes taken by the writer and not yet written.
    inflight: usize,
    want_drain: bool,
    /// The writer has been woken and not yet taken the queue.
    woken: bool,
    /// Nothing was written directly since the loop last went round: a send
    /// may write directly.
    idle: bool,
    /// The connected socket, for direct writes.
    sock: Option<Arc<Sock>>,
    /// A written-out queue whose memory the next one reuses.
    spare: Option<crate::wire::OutBuf>,
    state: TxState,
    /// The error a direct write met (it consumes the socket's pending
    /// error, e.g. the `ECONNRESET` of a reset, which later reads and
    /// writes no longer see): reported by the writer as the channel's end.
    error: Option<i32>,
    /// The read loop waits for the queue to fall to the low watermark
    /// ([`ChannelConfig::pause_reads_on_full_queue`]).
    reader_waiting: bool,
}

impl Tx {
    fn queued(&mut self) -> usize {
        self.enc.out().remaining() + self.inflight
    }
}

pub(crate) struct Inner {
    config: ChannelConfig,
    tx: Mutex<Tx>,
    wake_writer: Notify,
    session: Option<Mutex<Session>>,
    handler: Mutex<Option<Box<dyn Handler>>>,
    poller: Option<Poller<Event>>,
    /// Set by close/abort: no event is delivered afterwards.
    silenced: AtomicBool,
    /// Tells the I/O task to stop at once.
    abort: watch::Sender<bool>,
    /// Set when the I/O task has ended.
    finished: AtomicBool,
    /// The errno [`Channel::fail`] asked to report (0: none).
    fail_errno: AtomicI32,
    /// A role's event queue that this channel feeds: reading pauses while
    /// it is over its limit.
    gate: std::sync::OnceLock<Arc<dyn super::poller::Gate>>,
    /// Wakes the read loop paused on a full send queue.
    room: Notify,
}

/// A connection carrying Cocaine frames. Cheap to clone: clones are handles
/// to the same connection.
///
/// The connection lives until [`close`](Channel::close) or
/// [`abort`](Channel::abort) is called or it fails; dropping the handles does
/// not close it.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

/// A channel handle that does not keep the channel alive (for timers that
/// should not outlive the connection they watch).
#[derive(Clone)]
pub(crate) struct WeakChannel(std::sync::Weak<Inner>);

impl WeakChannel {
    /// The channel, if something else still holds it.
    pub(crate) fn upgrade(&self) -> Option<Channel> {
        self.0.upgrade().map(|inner| Channel { inner })
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("dialect", &self.inner.config.dialect).finish_non_exhaustive()
    }
}

/// The first read's size on a new connection (reads grow up to
/// `ChannelConfig::read_size` while they fill the buffer).
const FIRST_READ: usize = 16 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Resolves once the abort flag is set.
async fn aborted(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|a| *a).await;
}

/// `sendmsg(2)` with `MSG_NOSIGNAL`.
fn send_nosignal(fd: RawFd, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix; the message
    // header only points at `iov`, which outlives the call; `fd` is open.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connected socket shared by the reader, the writer and direct sends.
pub(crate) struct Sock(Stream);

impl Sock {
    async fn read_buf(&self, buf: &mut bytes::BytesMut) -> std::io::Result<usize> {
        use tokio::io::Interest;
        // A read that does not fill the space offered has emptied the
        // socket: the readiness seen before it is cleared, so the next read
        // waits for new data instead of first failing with EAGAIN (a system
        // call saved per message in a request/response exchange). The read
        // runs inside `try_io`, which clears readiness only if no new event
        // came after it was observed: data arriving meanwhile is not missed.
        loop {
            let room = buf.capacity() - buf.len();
            let mut got = None;
            let mut read = |r: std::io::Result<usize>| match r {
                Ok(n) if n > 0 && n < room => {
                    got = Some(n);
                    Err(std::io::ErrorKind::WouldBlock.into())
                }
                r => r,
            };
            let r = match &self.0 {
                Stream::Tcp(s) => {
                    s.readable().await?;
                    s.try_io(Interest::READABLE, || read(s.try_read_buf(buf)))
                }
                Stream::Unix(s) => {
                    s.readable().await?;
                    s.try_io(Interest::READABLE, || read(s.try_read_buf(buf)))
                }
            };
            if let Some(n) = got {
                return Ok(n);
            }
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// A non-blocking vectored write that never raises SIGPIPE: a peer
    /// that has gone gives `EPIPE`, whatever the host does with the signal
    /// (a C program's default is to die of it).
    fn try_write_vectored(&self, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;
        match &self.0 {
            Stream::Tcp(s) => s.try_io(Interest::WRITABLE, || send_nosignal(s.as_raw_fd(), iov)),
            Stream::Unix(s) => s.try_io(Interest::WRITABLE, || send_nosignal(s.as_raw_fd(), iov)),
        }
    }

    async fn write_vectored(&self, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
        loop {
            match &self.0 {
                Stream::Tcp(s) => s.writable().await?,
                Stream::Unix(s) => s.writable().await?,
            }
            match self.try_write_vectored(iov) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    fn shutdown_write(&self) {
        use std::os::fd::AsRawFd;
        let fd = match &self.0 {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        };
        // SAFETY: `fd` is this socket's open descriptor; shutdown(2) does not
        // close it or touch memory.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    }
}

impl Channel {
    fn build(config: ChannelConfig, handler: Box<dyn Handler>) -> std::io::Result<Channel> {
        let poller = match config.delivery {
            Delivery::Poll => Some(Poller::new(config.max_pending)?),
            Delivery::Inline => None,
        };
        let (abort, _) = watch::channel(false);
        let inner = Inner {
            tx: Mutex::new(Tx {
                enc: Encoder::new(config.dialect, config.profile),
                inflight: 0,
                want_drain: false,
                woken: false,
                idle: false,
                sock: None,
                spare: None,
                state: TxState::Open,
                error: None,
                reader_waiting: false,
            }),
            wake_writer: Notify::new(),
            session: config.session_state().map(Mutex::new),
            handler: Mutex::new(Some(handler)),
            poller,
            silenced: AtomicBool::new(false),
            abort,
            finished: AtomicBool::new(false),
            fail_errno: AtomicI32::new(0),
            gate: std::sync::OnceLock::new(),
            room: Notify::new(),
            config,
        };
        Ok(Channel { inner: Arc::new(inner) })
    }

    /// Connects to `endpoint` in the background; `handler` gets
    /// [`Event::Connected`] or [`Event::SocketError`] first. Sends made
    /// before the connection is up are queued.
    pub fn connect(endpoint: Endpoint, config: ChannelConfig, handler: impl Handler) -> std::io::Result<Channel> {
        let rt = runtime::handle()?;
        let ch = Channel::build(config, Box::new(handler))?;
        let task = ch.clone();
        rt.spawn(async move {
            let timeout = task.inner.config.connect_timeout;
            let dial = dial(&endpoint);
            let dial = async {
                match timeout {
                    Some(t) => tokio::time::timeout(t, dial).await.unwrap_or(Err(errno::ETIMEDOUT)),
                    None => dial.await,
                }
            };
            let mut abort = task.inner.abort.subscribe();
            let res = tokio::select! {
                r = dial => r.map_err(Some),
                // Aborted or failed while connecting.
                _ = aborted(&mut abort) => Err(match task.inner.fail_errno.load(Ordering::Acquire) {
                    0 => None,
                    e => Some(e),
                }),
            };
            match res {
                Ok(stream) => task.run(stream).await,
                Err(e) => task.finish(e),
            }
        });
        Ok(ch)
    }

    /// Starts a channel over an accepted connection.
    pub(crate) fn start(stream: Stream, config: ChannelConfig, handler: Box<dyn Handler>) -> std::io::Result<Channel> {
        let rt = runtime::handle()?;
        let ch = Channel::build(config, handler)?;
        let task = ch.clone();
        rt.spawn(async move { task.run(stream).await });
        Ok(ch)
    }

    /// The channel's settings.
    pub fn config(&self) -> &ChannelConfig {
        &self.inner.config
    }

    async fn run(&self, stream: Stream) {
        let sock = Arc::new(Sock(stream));
        {
            let mut tx = lock(&self.inner.tx);
            tx.sock = Some(sock.clone());
            tx.idle = true;
        }
        self.deliver(&mut vec![Event::Connected]);
        let mut abort = self.inner.abort.subscribe();
        let end = tokio::select! {
            e = self.read_loop(&sock) => match self.closing() {
                // The peer ended its side while we flush: go on flushing.
                true => {
                    let mut abort = self.inner.abort.subscribe();
                    tokio::select! {
                        e = self.write_loop(&sock) => e,
                        _ = aborted(&mut abort) => None,
                    }
                }
                // A direct write may have taken the socket's error (a
                // reset) before the read, which then saw only the end.
                false => Some(lock(&self.inner.tx).error.take().unwrap_or(e)),
            },
            e = self.write_loop(&sock) => e,
            _ = aborted(&mut abort) => None,
        };
        let cut = *abort.borrow();
        let failed = self.inner.fail_errno.load(Ordering::Acquire);
        let end = if end.is_none() && cut && failed != 0 { Some(failed) } else { end };
        if end.is_none() && !cut {
            // Closed by the owner: no event will be delivered any more, so
            // the handler (and whatever it holds) goes now, not after the
            // linger below.
            self.drop_handler();
            // Flushed and shut down: read what the peer still sends until it
            // closes (or the linger runs out). Closing a socket with unread
            // input makes the kernel reset the connection, and the peer
            // would lose what we just flushed.
            let mut sink = bytes::BytesMut::with_capacity(64 << 10);
            tokio::select! {
                _ = async {
                    loop {
                        sink.clear();
                        if !matches!(sock.read_buf(&mut sink).await, Ok(n) if n > 0) {
                            break;
                        }
                    }
                } => {}
                _ = aborted(&mut abort) => {}
            }
        }
        lock(&self.inner.tx).sock = None;
        self.finish(end);
    }

    fn closing(&self) -> bool {
        lock(&self.inner.tx).state != TxState::Open
    }

    /// Reads and decodes until the connection fails; returns its errno.
    async fn read_loop(&self, sock: &Sock) -> i32 {
        let c = &self.inner.config;
        let mut dec = Decoder::new(DecoderConfig {
            dialect: c.dialect,
            max_frame_size: c.max_frame_size,
            header_table_size: c.header_table_size,
            lenient: c.lenient,
        });
        // Reads start at `FIRST_READ` and grow (fourfold) each time a read
        // fills the buffer, up to `read_size`: a connection that carries
        // small messages never holds a `read_size` buffer, and churning
        // connections do not churn the allocator with them (whose freed
        // large blocks stay resident in its arenas).
        let read_size = c.read_size.max(4096);
        let mut want = read_size.min(FIRST_READ);
        let mut recs = Vec::new();
        let mut events = Vec::new();
        // When the unfinished frame at the end of the buffer started (or
        // the last frame before it completed): what `frame_timeout` counts.
        let mut frame_since: Option<tokio::time::Instant> = None;
        loop {
            let buf = dec.buffer_mut();
            if buf.capacity() - buf.len() < want / 4 {
                buf.reserve(want);
            }
            let spare = buf.capacity() - buf.len();
            let deadline =
                [frame_since.zip(c.frame_timeout).map(|(t, d)| t + d), c.read_idle_timeout.map(|d| tokio::time::Instant::now() + d)]
                    .into_iter()
                    .flatten()
                    .min();
            let read = sock.read_buf(buf);
            let res = match deadline {
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r,
                    Err(_) => return errno::ETIMEDOUT,
                },
                None => read.await,
            };
            let n = match res {
                Ok(n) => n,
                Err(e) => return errno_of(&e),
            };
            if n >= spare && want < read_size {
                want = (want * 4).min(read_size);
            }
            let dropped = dec.dropped();
            if n > 0 {
                // A tick of the loop has passed: the first send (from the
                // handler, or from a thread it wakes) may write directly.
                lock(&self.inner.tx).idle = true;
            }
            let mut delivered = false;
            let failed = loop {
                let (batch, failed) = self.decode_batch(&mut dec, &mut recs, &mut events);
                if recs.is_empty() {
                    break failed;
                }
                delivered = true;
                let over = self.deliver_batch(&batch, &mut recs, &mut events);
                drop(batch);
                if over {
                    if let Some(p) = &self.inner.poller {
                        p.wait_for_space().await;
                    }
                } else if let Some(g) = self.inner.gate.get() {
                    if g.over() {
                        g.wait().await;
                    }
                }
                if self.inner.config.pause_reads_on_full_queue {
                    self.wait_for_room().await;
                }
                if failed.is_some() {
                    break failed;
                }
            };
            if delivered && self.inner.poller.is_none() {
                self.batch_end();
            }
            let progress = delivered || dec.dropped() != dropped;
            frame_since = match dec.partial() {
                0 => None,
                _ if progress || frame_since.is_none() => Some(tokio::time::Instant::now()),
                _ => frame_since,
            };
            if let Some(e) = failed {
                return e;
            }
            if n == 0 {
                return errno::ESHUTDOWN;
            }
        }
    }

    /// Takes frames from the decoder until a run of in-place frames ends,
    /// and cuts the run out: chunks stay in it as `Rec::Chunk`s,
    /// everything else becomes an event. Returns the run's bytes, and the
    /// errno if the stream turned out to be bad.
    fn decode_batch(&self, dec: &mut Decoder, recs: &mut Vec<Rec>, events: &mut Vec<Event>) -> (Bytes, Option<i32>) {
        let mut session = self.inner.session.as_ref().map(|s| lock(s));
        let mut pending = Vec::new();
        loop {
            let Some(s) = session.as_deref_mut() else {
                // Without a role every frame is an event, built once the
                // run is cut.
                if dec.decode_run(|r| {
                    pending.push(r);
                    true
                }) > 0
                {
                    let batch = dec.take_batch();
                    events.extend(pending.iter().map(|r| Event::Frame(r.to_frame(&batch))));
                    recs.extend(pending.iter().map(|_| Rec::Event));
                    return (batch, None);
                }
                match dec.decode_in_place() {
                    Ok(Some(InPlace::Owned(frame))) => {
                        events.push(Event::Frame(frame));
                        recs.push(Rec::Event);
                        continue;
                    }
                    Ok(Some(InPlace::Ref(r))) => {
                        let batch = dec.take_batch();
                        events.push(Event::Frame(r.to_frame(&batch)));
                        recs.push(Rec::Event);
                        return (batch, None);
                    }
                    Ok(None) => return (Bytes::new(), None),
                    Err(e) => return (Bytes::new(), Some(e.errno())),
                }
            };
            // Chunks stay in the run; anything else ends it, so that its
            // message is read (and the session state follows it) before
            // the next frame is looked at.
            let mut last = None;
            let n = dec.decode_run(|r| {
                let kind = s.classify(r.session, r.ty);
                if let (Ok(Kind::Chunk), Some(b)) = (&kind, r.first_bytes()) {
                    recs.push(Rec::Chunk { session: r.session, start: b.start, end: b.end });
                    return true;
                }
                last = Some((r, kind));
                false
            });
            if n > 0 {
                let batch = dec.take_batch();
                if let Some((r, kind)) = last {
                    let frame = r.to_frame(&batch);
                    events.push(match kind {
                        Ok(kind) => match s.receive_classified(kind, frame) {
                            Ok((session, message, headers)) => Event::Message { session, message, headers },
                            Err((frame, _)) => Event::Frame(frame),
                        },
                        Err(_) => Event::Frame(frame),
                    });
                    recs.push(Rec::Event);
                }
                return (batch, None);
            }
            let frame = match dec.decode_in_place() {
                Ok(Some(InPlace::Owned(frame))) => frame,
                // decode_run takes every frame that could come in place.
                Ok(Some(InPlace::Ref(r))) => r.to_frame(&dec.take_batch()),
                Ok(None) => return (Bytes::new(), None),
                Err(e) => return (Bytes::new(), Some(e.errno())),
            };
            events.push(match s.receive_owned(frame) {
                Ok((session, message, headers)) => Event::Message { session, message, headers },
                Err((frame, _)) => Event::Frame(frame),
            });
            recs.push(Rec::Event);
        }
    }

    /// Delivers a decoded batch (see [`deliver`](Self::deliver)). Empties
    /// `recs` and `events`.
    fn deliver_batch(&self, batch: &Bytes, recs: &mut Vec<Rec>, events: &mut Vec<Event>) -> bool {
        if self.inner.silenced.load(Ordering::Acquire) {
            recs.clear();
            events.clear();
            return false;
        }
        match &self.inner.poller {
            Some(p) => {
                let chunk_bytes: usize = recs
                    .iter()
                    .map(|r| match r {
                        Rec::Chunk { start, end, .. } => end - start,
                        Rec::Event => 0,
                    })
                    .sum();
                let bytes = chunk_bytes + events.iter().map(Event::bytes).sum::<usize>();
                let mut owned = events.drain(..);
                let queued = recs.drain(..).filter_map(|r| match r {
                    Rec::Chunk { session, start, end } => {
                        Some(Event::Message { session, message: Message::Chunk { data: batch.slice(start..end) }, headers: Vec::new() })
                    }
                    Rec::Event => owned.next(),
                });
                p.push(queued, bytes)
            }
            None => {
                let mut h = lock(&self.inner.handler);
                if let Some(h) = h.as_mut() {
                    let mut owned = events.drain(..);
                    for r in recs.drain(..) {
                        if self.inner.silenced.load(Ordering::Acquire) {
                            break;
                        }
                        match r {
                            Rec::Chunk { session, start, end } => h.on_chunk(self, Chunk::borrowed(session, batch, start, end)),
                            Rec::Event => {
                                if let Some(ev) = owned.next() {
                                    handle(h.as_mut(), self, ev);
                                }
                            }
                        }
                    }
                }
                recs.clear();
                events.clear();
                false
            }
        }
    }

    /// With [`ChannelConfig::pause_reads_on_full_queue`]: while the send
    /// queue is at or over the high watermark, waits until the writer has
    /// brought it down to the low watermark (or the channel stops taking
    /// sends).
    async fn wait_for_room(&self) {
        loop {
            {
                let mut tx = lock(&self.inner.tx);
                if tx.state != TxState::Open || tx.queued() < self.inner.config.high_watermark {
                    tx.reader_waiting = false;
                    return;
                }
                tx.reader_waiting = true;
            }
            // `notify_one` keeps a permit: a wake-up between the check
            // and this wait is not lost.
            self.inner.room.notified().await;
        }
    }

    /// Whether the paused read loop should be woken now (and marks it).
    fn room_due(&self, tx: &mut Tx) -> bool {
        if tx.reader_waiting && (tx.queued() <= self.inner.config.low_watermark || tx.state != TxState::Open) {
            tx.reader_waiting = false;
            return true;
        }
        false
    }

    /// Inline: tells the handler a run of events is over.
    fn batch_end(&self) {
        if let Some(h) = lock(&self.inner.handler).as_mut() {
            h.on_batch_end(self);
        }
    }

    /// Hands events to the handler (inline) or the poll queue. Returns
    /// whether the poll queue is over its limit.
    fn deliver(&self, events: &mut Vec<Event>) -> bool {
        if self.inner.silenced.load(Ordering::Acquire) {
            events.clear();
            return false;
        }
        match &self.inner.poller {
            Some(p) => {
                let bytes = events.iter().map(Event::bytes).sum();
                p.push(events.drain(..), bytes)
            }
            None => {
                let mut h = lock(&self.inner.handler);
                if let Some(h) = h.as_mut() {
                    for ev in events.drain(..) {
                        if self.inner.silenced.load(Ordering::Acquire) {
                            break;
                        }
                        handle(h.as_mut(), self, ev);
                    }
                    h.on_batch_end(self);
                }
                events.clear();
                false
            }
        }
    }

    /// Writes whatever is queued, until closed (`None`) or failed.
    async fn write_loop(&self, sock: &Sock) -> Option<i32> {
        loop {
            enum Next {
                Write(crate::wire::OutBuf),
                Wait,
                Shutdown,
            }
            let next = {
                let mut tx = lock(&self.inner.tx);
                tx.woken = false;
                if let Some(e) = tx.error.take() {
                    return Some(e);
                }
                if !tx.enc.out().is_empty() {
                    let spare = tx.spare.take().unwrap_or_default();
                    let out = std::mem::replace(tx.enc.out(), spare);
                    tx.inflight = out.remaining();
                    Next::Write(out)
                } else if tx.state == TxState::Closing {
                    tx.state = TxState::Closed;
                    Next::Shutdown
                } else {
                    tx.idle = true;
                    Next::Wait
                }
            };
            let mut out = match next {
                Next::Write(out) => out,
                Next::Wait => {
                    self.inner.wake_writer.notified().await;
                    continue;
                }
                Next::Shutdown => {
                    sock.shutdown_write();
                    return None;
                }
            };
            while out.has_remaining() {
                let mut iov = [IoSlice::new(&[]); 64];
                let k = out.chunks_vectored(&mut iov);
                match sock.write_vectored(&iov[..k]).await {
                    Ok(0) => return Some(errno::EPIPE),
                    Ok(n) => {
                        out.advance(n);
                        let (drained, room) = {
                            let mut tx = lock(&self.inner.tx);
                            tx.inflight -= n;
                            if !out.has_remaining() && tx.spare.is_none() {
                                out.reset();
                                tx.spare = Some(std::mem::take(&mut out));
                            }
                            (self.drain_due(&mut tx), self.room_due(&mut tx))
                        };
                        if room {
                            self.inner.room.notify_one();
                        }
                        if drained {
                            self.deliver(&mut vec![Event::Drain]);
                        }
                    }
                    Err(e) => return Some(errno_of(&e)),
                }
            }
        }
    }

    /// Whether a drain notice is due now (and marks it given).
    fn drain_due(&self, tx: &mut Tx) -> bool {
        if tx.want_drain && tx.queued() <= self.inner.config.low_watermark {
            tx.want_drain = false;
            return true;
        }
        false
    }

    /// The end of the connection: the one final event, then the handler is
    /// dropped (which breaks any cycle through a handle it holds).
    fn finish(&self, errno: Option<i32>) {
        lock(&self.inner.tx).state = TxState::Closed;
        if let Some(e) = errno {
            self.deliver(&mut vec![Event::SocketError(e)]);
        }
        self.inner.finished.store(true, Ordering::Release);
        if self.inner.poller.is_none() || self.inner.silenced.load(Ordering::Acquire) {
            self.drop_handler();
        }
    }

    fn drop_handler(&self) {
        // Not while the handler runs on this thread (close from a callback):
        // `try_lock` fails then, and the handler is dropped by whoever
        // holds it when it returns... or at the latest with the channel.
        let taken = match self.inner.handler.try_lock() {
            Ok(mut h) => h.take(),
            Err(_) => None,
        };
        // Dropped after the lock is let go: a dispatch on another thread
        // meanwhile waits a moment at most (see `dispatch`).
        drop(taken);
    }

    // ------------------------------------------------------------------
    // Sending

    fn with_tx(&self, f: impl FnOnce(&mut Encoder)) -> Result<(), SendError> {
        let mut tx = lock(&self.inner.tx);
        if tx.state != TxState::Open {
            return Err(SendError::Closed);
        }
        if tx.queued() >= self.inner.config.high_watermark {
            tx.want_drain = true;
            return Err(SendError::WouldBlock);
        }
        self.queue_locked(tx, f);
        Ok(())
    }

    /// Queues what `f` encodes whatever the high watermark (a served
    /// call's reply, which has nowhere else to go), up to
    /// [`ChannelConfig::max_queued`]: past it the connection ends with
    /// `ENOBUFS` (the owner's [`Event::SocketError`], a close the peer
    /// sees) and the send is refused with [`SendError::Closed`].
    fn with_tx_unrefused(&self, f: impl FnOnce(&mut Encoder)) -> Result<(), SendError> {
        let mut tx = lock(&self.inner.tx);
        if tx.state != TxState::Open {
            return Err(SendError::Closed);
        }
        if tx.queued() >= self.inner.config.max_queued {
            drop(tx);
            self.fail(errno::ENOBUFS);
            return Err(SendError::Closed);
        }
        self.queue_locked(tx, f);
        Ok(())
    }

    fn queue_locked(&self, mut tx: MutexGuard<'_, Tx>, f: impl FnOnce(&mut Encoder)) {
        f(&mut tx.enc);
        // A lone message on an idle connection is written at once from this
        // thread: no hop to the I/O thread, which is what a round trip
        // costs. Under load the writer is busy and messages coalesce.
        if tx.idle && tx.inflight == 0 {
            if let Some(sock) = tx.sock.clone() {
                tx.idle = false;
                let out = tx.enc.out();
                let mut iov = [IoSlice::new(&[]); 64];
                let k = out.chunks_vectored(&mut iov);
                // An error is left for the writer to report.
                match sock.try_write_vectored(&iov[..k]) {
                    Ok(n) => out.advance(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => tx.error = Some(errno_of(&e)),
                }
                if tx.enc.out().is_empty() {
                    return;
                }
            }
        }
        let wake = !tx.woken;
        tx.woken = true;
        drop(tx);
        if wake {
            self.inner.wake_writer.notify_one();
        }
    }

    /// Queues a generic frame that is not refused at the high watermark:
    /// see [`ChannelConfig::max_queued`].
    pub(crate) fn send_frame_unrefused(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.with_tx_unrefused(|e| e.frame(session, ty, args, headers))
    }

    /// The errno the connection was ended with by [`fail`](Self::fail)
    /// (including `ENOBUFS` past [`ChannelConfig::max_queued`]); 0: none.
    pub(crate) fn failed_with(&self) -> i32 {
        self.inner.fail_errno.load(Ordering::Acquire)
    }

    /// Whether a send would be refused now for a full queue. If so, a
    /// [`Event::Drain`] is delivered once the queue is down to the low
    /// watermark.
    pub(crate) fn is_full(&self) -> bool {
        let mut tx = lock(&self.inner.tx);
        let full = tx.state == TxState::Open && tx.queued() >= self.inner.config.high_watermark;
        if full {
            tx.want_drain = true;
        }
        full
    }

    /// A handle that does not keep this channel alive.
    pub(crate) fn downgrade(&self) -> WeakChannel {
        WeakChannel(Arc::downgrade(&self.inner))
    }

    /// Queues pre-encoded bytes (whole frames) as they are.
    pub fn send_raw(&self, bytes: Bytes) -> Result<(), SendError> {
        self.with_tx(|e| e.raw(bytes))
    }

    /// Queues pre-encoded bytes given in segments (for example an
    /// [`OutBuf`](crate::wire::OutBuf)'s), all or none; long segments are
    /// queued without a copy.
    pub fn send_raw_segments(&self, segments: &[Bytes]) -> Result<(), SendError> {
        self.with_tx(|e| e.raw_segments(segments))
    }

    /// Queues a typed worker-protocol message on `session`.
    pub fn send(&self, session: u64, message: &Message) -> Result<(), SendError> {
        self.send_with_headers(session, message, &[])
    }

    /// Queues a typed message with v1 headers.
    pub fn send_with_headers(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), SendError> {
        // Recorded before the bytes can reach the peer: a direct write can
        // bring its answer back to the read loop before this call returns.
        if let Some(s) = &self.inner.session {
            lock(s).sent(session, message.kind());
        }
        self.with_tx(|e| e.message(session, message, headers))
    }

    /// Queues a chunk (v0 `chunk`, v1 `write`); large payloads are not copied.
    pub fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), SendError> {
        self.with_tx(|e| e.chunk(session, data, &[]))
    }

    /// Queues a generic frame.
    pub fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.with_tx(|e| e.frame(session, ty, args, headers))
    }

    /// The id for a new session opened by this side (an engine's `invoke`,
    /// a client's call): one above the highest id seen in either direction.
    pub fn next_session(&self) -> u64 {
        match &self.inner.session {
            Some(s) => lock(s).next_session(),
            None => 1,
        }
    }

    /// Records that this side opens `session` with a message of `kind` sent
    /// by [`send_raw`](Self::send_raw) (typed sends record it themselves).
    pub fn note_sent(&self, session: u64, kind: Kind) {
        if let Some(s) = &self.inner.session {
            lock(s).sent(session, kind);
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        lock(&self.inner.tx).queued()
    }

    // ------------------------------------------------------------------
    // Closing

    /// Closes gracefully: no event is delivered after this call returns
    /// (except one already running on another thread), sends are refused,
    /// what is queued is written, then the connection is shut down.
    ///
    /// A peer that does not read what is queued, or does not close its side
    /// after ours, is cut off after [`ChannelConfig::close_linger`].
    pub fn close(&self) {
        self.silence();
        let started = {
            let mut tx = lock(&self.inner.tx);
            let open = tx.state == TxState::Open;
            if open {
                tx.state = TxState::Closing;
            }
            open
        };
        self.inner.wake_writer.notify_one();
        if started && !self.is_finished() {
            if let Ok(rt) = runtime::handle() {
                let linger = self.inner.config.close_linger;
                let inner = Arc::downgrade(&self.inner);
                // Ends early when the channel is gone (the sender drops
                // with it) or aborted: the timer does not keep the
                // channel's memory for the whole linger.
                let mut gone = self.inner.abort.subscribe();
                rt.spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(linger) => {
                            if let Some(inner) = inner.upgrade() {
                                inner.abort.send_replace(true);
                            }
                        }
                        _ = gone.wait_for(|a| *a) => {}
                    }
                });
            }
        }
    }

    /// Closes at once, dropping whatever is queued.
    pub fn abort(&self) {
        self.silence();
        lock(&self.inner.tx).state = TxState::Closed;
        self.inner.abort.send_replace(true);
    }

    /// Makes reading pause while `gate` is over its limit (roles that queue
    /// this channel's events for a host). Set once.
    pub(crate) fn set_gate(&self, gate: Arc<dyn super::poller::Gate>) {
        let _ = self.inner.gate.set(gate);
    }

    /// Ends the connection at once as if it had failed with `errno`: what
    /// is queued is dropped and the handler gets [`Event::SocketError`]
    /// with `errno` as its last event (unless the channel was closed or had
    /// already ended). Roles use it for their timeouts (`ETIMEDOUT` when a
    /// peer falls silent).
    pub fn fail(&self, errno: i32) {
        let _ = self.inner.fail_errno.compare_exchange(0, errno, Ordering::AcqRel, Ordering::Acquire);
        lock(&self.inner.tx).state = TxState::Closed;
        self.inner.abort.send_replace(true);
    }

    fn silence(&self) {
        self.inner.silenced.store(true, Ordering::Release);
        if let Some(p) = &self.inner.poller {
            p.clear();
        }
        if self.inner.finished.load(Ordering::Acquire) {
            self.drop_handler();
        }
    }

    /// Whether the connection has ended (failed, or closed and flushed).
    pub fn is_finished(&self) -> bool {
        self.inner.finished.load(Ordering::Acquire)
    }

    // ------------------------------------------------------------------
    // Poll mode

    /// Poll mode: the descriptor that is readable while events wait.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.poller.as_ref().map(Poller::fd)
    }

    /// Poll mode: runs the handler on this thread for up to `max` waiting
    /// events; returns how many ran.
    pub fn dispatch(&self, max: usize) -> Result<usize, DispatchError> {
        let p = self.inner.poller.as_ref().ok_or(DispatchError::NotPolled)?;
        let mut h = crate::net::poller::lock_for_dispatch(&self.inner.handler).ok_or(DispatchError::Reentrant)?;
        let events = p.take(max, Event::bytes);
        let mut n = 0;
        if let Some(handler) = h.as_mut() {
            for ev in events {
                if self.inner.silenced.load(Ordering::Acquire) {
                    break;
                }
                handle(handler.as_mut(), self, ev);
                n += 1;
            }
            if n > 0 {
                handler.on_batch_end(self);
            }
        }
        // Nothing more will run the handler: the connection has ended and
        // its events are out, or the channel was closed (by a callback of
        // this dispatch, say, when the close could not take the handler
        // away because this dispatch held it). Dropped now, not after the
        // close's linger.
        if (self.inner.finished.load(Ordering::Acquire) && p.is_empty()) || self.inner.silenced.load(Ordering::Acquire) {
            let gone = h.take();
            drop(h);
            drop(gone);
        }
        Ok(n)
    }
}

async fn dial(endpoint: &Endpoint) -> Result<Stream, i32> {
    match endpoint {
        Endpoint::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix).map_err(|e| errno_of(&e)),
        Endpoint::Tcp(host, port) => {
            let addrs = tokio::net::lookup_host((host.as_str(), *port)).await.map_err(|_| errno::EBADF)?;
            let mut last = errno::EBADF;
            for a in addrs {
                match TcpStream::connect(a).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = errno_of(&e),
                }
            }
            Err(last)
        }
    }
}
