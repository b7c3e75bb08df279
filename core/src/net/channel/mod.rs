//! The channel: one connection, its read loop, its bounded send queue and
//! the delivery of its events.
//!
//! * [`event`] — what a channel tells its handler, and the handler;
//! * `read` — the read loop: decoding in batches and delivery (inline or
//!   queued for poll mode), with the pauses backpressure asks for;
//! * `write` — the send queue, direct writes and the writer;
//! * `socket` — the connected socket and dialling.

mod event;
mod read;
mod socket;
mod write;

pub use event::{Chunk, DispatchError, Event, Handler, SendError};
pub(crate) use socket::Stream;
use socket::{aborted, dial, Sock};

use std::io::IoSlice;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{watch, Notify};

use crate::errno;
use crate::net::config::{ChannelConfig, Delivery, Endpoint};
use crate::net::poller::Poller;
use crate::net::{errno_of, runtime};
use crate::wire::{Args, Decoder, DecoderConfig, Encoder, Frame, Header, InPlace, Kind, Message, Session};

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
    gate: std::sync::OnceLock<Arc<dyn crate::net::poller::Gate>>,
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

    /// The errno the connection was ended with by [`fail`](Self::fail)
    /// (including `ENOBUFS` past [`ChannelConfig::max_queued`]); 0: none.
    pub(crate) fn failed_with(&self) -> i32 {
        self.inner.fail_errno.load(Ordering::Acquire)
    }

    /// A handle that does not keep this channel alive.
    pub(crate) fn downgrade(&self) -> WeakChannel {
        WeakChannel(Arc::downgrade(&self.inner))
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
    pub(crate) fn note_sent(&self, session: u64, kind: Kind) {
        if let Some(s) = &self.inner.session {
            lock(s).sent(session, kind);
        }
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
    pub(crate) fn set_gate(&self, gate: Arc<dyn crate::net::poller::Gate>) {
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
