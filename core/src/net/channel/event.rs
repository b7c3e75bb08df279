//! What a channel tells its handler, and the handler.

use super::*;

/// What a channel tells its handler. Within a channel, events arrive in
/// wire order, one at a time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    pub(super) fn borrowed(session: u64, buf: &'a Bytes, start: usize, end: usize) -> Chunk<'a> {
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

impl<F: FnMut(&Channel, Event) + Send + 'static> Handler for F {
    fn on_event(&mut self, channel: &Channel, event: Event) {
        self(channel, event)
    }
}

/// Why a send was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum DispatchError {
    /// The channel delivers inline, not by dispatch.
    #[error("the channel does not use poll delivery")]
    NotPolled,
    /// Called from inside this channel's own handler.
    #[error("dispatch called from the channel's own handler")]
    Reentrant,
}
