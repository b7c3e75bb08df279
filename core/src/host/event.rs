//! One event model and one handle for every object a binding hosts.
//!
//! Each role has its own event type, fitted to Rust callers
//! ([`net::Event`](crate::net::Event), [`WorkerEvent`], [`EngineEvent`],
//! [`SessionEvent`], [`ResumeEvent`], a server's [`Incoming`]). A binding
//! does not want six converters: [`IntoEvent`] turns each of them into one
//! ([`Source`], [`Event`]) pair, so C, Python and Node each write one
//! converter per *kind* of event — an event's [`name`](Event::name) is the
//! stem of its callback in every language (`chunk` → `on_chunk`, the
//! `'chunk'` event) and [`bytes`](Event::bytes) what it costs in a queue.
//!
//! [`Pollable`] is what every pollable object has in common (descriptor,
//! dispatch, close), so a binding writes one handle class; [`Streams`] is
//! the one way to send on a session of any object that has sessions.

use std::os::fd::RawFd;
use std::time::Duration;

use bytes::Bytes;

use crate::net::{Channel, DispatchError, Endpoint, Incoming, SendError, Server};
use crate::roles::{
    Engine, EngineEvent, EngineStream, Peer, ResumeEvent, ResumeServer, Session, SessionEvent, StreamError, Worker, WorkerEvent, WorkerRef,
    WorkerStream,
};
use crate::wire::{Args, Frame, Header, Message};

/// Whom an [`Event`] concerns, beside the object that delivers it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// The object itself (a channel, worker, session or server).
    Own,
    /// One of an engine's workers.
    Worker(WorkerRef),
    /// One of a resume server's peers.
    Peer(Peer),
    /// A session a worker was invoked on (only with [`Event::Message`]
    /// carrying [`Message::Invoke`]): the stream to answer on.
    Stream(WorkerStream),
}

/// What any hosted object tells its host: the events of every role in one
/// type. Variants are added over time; match with a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Connected: a channel's connection is up, a worker has sent its
    /// handshake, an engine's worker has handshaken (source
    /// [`Source::Worker`]), a session reached `endpoint`, a resume peer
    /// (re)connected. `resumed`: a session's or peer's stream goes on where
    /// it was.
    Connected {
        /// The endpoint reached (sessions only).
        endpoint: Option<Endpoint>,
        /// Whether an earlier stream continues (sessions and resume peers).
        resumed: bool,
    },
    /// A server accepted a connection: start a channel on it or drop it.
    /// (Boxed: every event is as large as the largest variant, and events
    /// are moved once per message.)
    Accepted(Box<Incoming>),
    /// A worker-protocol message on `session` (invoke, chunk, choke,
    /// error, heartbeat, terminate, handshake). Control messages
    /// (heartbeat, terminate) come with the dialect's control session.
    Message {
        /// The v0 session / v1 channel id.
        session: u64,
        /// The message.
        message: Message,
        /// Its v1 headers.
        headers: Vec<Header>,
    },
    /// A frame that is not a worker-protocol message (objects without a
    /// role, or frames the role drops).
    Frame(Frame),
    /// A refused send may be retried.
    Drain,
    /// A worker's engine fell silent for the disown timeout: the
    /// connection is closed; [`Event::Disconnected`] follows.
    Disown,
    /// An engine refused a handshake with this uuid (the connection is
    /// closed).
    Rejected {
        /// The uuid the worker sent.
        uuid: String,
    },
    /// A session will try to reconnect after `delay`.
    Reconnecting {
        /// 1 for the first attempt after a loss, then 2, 3...
        attempt: u32,
        /// The endpoint it will try.
        endpoint: Endpoint,
        /// How long it waits first.
        delay: Duration,
    },
    /// The connection ended with `errno` (docs/PROTOCOL.md §8.3): a
    /// channel's or worker's last event, an engine worker's end, a session
    /// or resume peer losing a connection it may get back. `sessions`: a
    /// worker's sessions that were still open.
    Disconnected {
        /// Why.
        errno: i32,
        /// Sessions still open (workers; empty elsewhere).
        sessions: Vec<u64>,
    },
    /// A resume peer did not come back in time and is forgotten.
    Gone,
}

impl Event {
    /// The event's name in every binding: `connect`, `accept`, `invoke`,
    /// `chunk`, `choke`, `error`, `heartbeat`, `terminate`, `handshake`,
    /// `frame`, `drain`, `disown`, `rejected`, `reconnect`, `disconnect`,
    /// `gone` (the callback `on_<name>`, the Node event `'<name>'`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Connected { .. } => "connect",
            Event::Accepted(_) => "accept",
            Event::Message { message, .. } => message_name(message),
            Event::Frame(_) => "frame",
            Event::Drain => "drain",
            Event::Disown => "disown",
            Event::Rejected { .. } => "rejected",
            Event::Reconnecting { .. } => "reconnect",
            Event::Disconnected { .. } => "disconnect",
            Event::Gone => "gone",
        }
    }

    /// The memory the event holds, counted for backpressure on a host's
    /// queue: its byte strings and headers plus the event itself, so that a
    /// flood of empty messages is bounded like one of chunks.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Event>()
            + match self {
                Event::Message { message, headers, .. } => headers_len(headers) + message_len(message),
                Event::Frame(f) => f.args.raw().len() + headers_len(&f.headers),
                Event::Rejected { uuid } => uuid.len(),
                Event::Disconnected { sessions, .. } => sessions.len() * 8,
                _ => 0,
            }
    }
}

/// A message's name (see [`Event::name`]): `choke` for v0 `choke` and v1
/// `close` alike.
pub fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Handshake { .. } => "handshake",
        Message::Heartbeat => "heartbeat",
        Message::Terminate { .. } => "terminate",
        Message::Invoke { .. } => "invoke",
        Message::Chunk { .. } => "chunk",
        Message::Error { .. } => "error",
        Message::Choke => "choke",
    }
}

fn headers_len(h: &[Header]) -> usize {
    h.iter().map(|h| h.name.len() + h.value.len()).sum()
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Chunk { data } => data.len(),
        Message::Invoke { event } => event.len(),
        Message::Handshake { uuid } => uuid.len(),
        Message::Terminate { reason, .. } => reason.len(),
        Message::Error { message, .. } => message.as_ref().map_or(0, |m| m.len()),
        Message::Heartbeat | Message::Choke => 0,
    }
}

/// A role's own event as the one model's ([`Source`], [`Event`]).
pub trait IntoEvent {
    /// Converts.
    fn into_event(self) -> (Source, Event);
}

fn msg(session: u64, message: Message) -> Event {
    Event::Message { session, message, headers: Vec::new() }
}

impl IntoEvent for crate::net::Event {
    fn into_event(self) -> (Source, Event) {
        use crate::net::Event as E;
        let ev = match self {
            E::Connected => Event::Connected { endpoint: None, resumed: false },
            E::Message { session, message, headers } => Event::Message { session, message, headers },
            E::Frame(f) => Event::Frame(f),
            E::Drain => Event::Drain,
            E::SocketError(errno) => Event::Disconnected { errno, sessions: Vec::new() },
        };
        (Source::Own, ev)
    }
}

impl IntoEvent for Incoming {
    fn into_event(self) -> (Source, Event) {
        (Source::Own, Event::Accepted(Box::new(self)))
    }
}

impl IntoEvent for WorkerEvent {
    fn into_event(self) -> (Source, Event) {
        // Control messages come on the control session, as on the wire.
        let ev = match self {
            WorkerEvent::Connected => Event::Connected { endpoint: None, resumed: false },
            WorkerEvent::Invoke { stream, event, headers } => {
                let session = stream.session();
                return (Source::Stream(stream), Event::Message { session, message: Message::Invoke { event }, headers });
            }
            WorkerEvent::Chunk { session, data } => msg(session, Message::Chunk { data }),
            WorkerEvent::Error { session, category, code, message } => msg(session, Message::Error { category, code, message }),
            WorkerEvent::Close { session } => msg(session, Message::Choke),
            WorkerEvent::Heartbeat => msg(0, Message::Heartbeat),
            WorkerEvent::Terminate { code, reason } => msg(0, Message::Terminate { code, reason }),
            WorkerEvent::Disown => Event::Disown,
            WorkerEvent::Drain => Event::Drain,
            WorkerEvent::Disconnected { errno, sessions } => Event::Disconnected { errno, sessions },
        };
        (Source::Own, ev)
    }
}

impl IntoEvent for EngineEvent {
    fn into_event(self) -> (Source, Event) {
        let (w, ev) = match self {
            EngineEvent::Handshake { worker } => (Some(worker), Event::Connected { endpoint: None, resumed: false }),
            EngineEvent::Rejected { uuid } => (None, Event::Rejected { uuid }),
            EngineEvent::Heartbeat { worker } => (Some(worker), msg(0, Message::Heartbeat)),
            EngineEvent::Chunk { worker, session, data } => (Some(worker), msg(session, Message::Chunk { data })),
            EngineEvent::Error { worker, session, category, code, message } => {
                (Some(worker), msg(session, Message::Error { category, code, message }))
            }
            EngineEvent::Close { worker, session } => (Some(worker), msg(session, Message::Choke)),
            EngineEvent::Terminate { worker, code, reason } => (Some(worker), msg(0, Message::Terminate { code, reason })),
            EngineEvent::Drain { worker } => (Some(worker), Event::Drain),
            EngineEvent::Gone { worker, errno } => (Some(worker), Event::Disconnected { errno, sessions: Vec::new() }),
        };
        (w.map_or(Source::Own, Source::Worker), ev)
    }
}

impl IntoEvent for SessionEvent {
    fn into_event(self) -> (Source, Event) {
        let ev = match self {
            SessionEvent::Connected { endpoint, resumed } => Event::Connected { endpoint: Some(endpoint), resumed },
            SessionEvent::Disconnected { errno } => Event::Disconnected { errno, sessions: Vec::new() },
            SessionEvent::ReconnectAttempt { attempt, endpoint, delay } => Event::Reconnecting { attempt, endpoint, delay },
            SessionEvent::Message { session, message, headers } => Event::Message { session, message, headers },
            SessionEvent::Frame(f) => Event::Frame(f),
            SessionEvent::Drain => Event::Drain,
        };
        (Source::Own, ev)
    }
}

impl IntoEvent for ResumeEvent {
    fn into_event(self) -> (Source, Event) {
        let (p, ev) = match self {
            ResumeEvent::PeerConnected { peer, resumed } => (peer, Event::Connected { endpoint: None, resumed }),
            ResumeEvent::PeerDisconnected { peer, errno } => (peer, Event::Disconnected { errno, sessions: Vec::new() }),
            ResumeEvent::PeerGone { peer } => (peer, Event::Gone),
            ResumeEvent::Message { peer, session, message, headers } => (peer, Event::Message { session, message, headers }),
            ResumeEvent::Frame { peer, frame } => (peer, Event::Frame(frame)),
            ResumeEvent::Drain { peer } => (peer, Event::Drain),
        };
        (Source::Peer(p), ev)
    }
}

/// What every object a host polls has: the descriptor that is readable
/// while events wait (poll delivery), the dispatch that runs them, and
/// close. Implemented by [`Channel`], [`Server`], [`Worker`], [`Engine`],
/// [`Session`] and [`ResumeServer`], so a binding writes one handle type
/// over `Arc<dyn Pollable>` (and one `poll()` over any of them).
pub trait Pollable: Send + Sync {
    /// Poll delivery: the descriptor to wait on (`None`: inline delivery,
    /// or not started).
    fn fd(&self) -> Option<RawFd>;
    /// Poll delivery: runs the handler on this thread for up to `max`
    /// waiting events; how many ran.
    fn dispatch(&self, max: usize) -> Result<usize, DispatchError>;
    /// Closes gracefully: no event is delivered afterwards.
    fn close(&self);
}

macro_rules! pollable {
    ($($t:ty => $close:ident),* $(,)?) => {$(
        impl Pollable for $t {
            fn fd(&self) -> Option<RawFd> {
                <$t>::fd(self)
            }
            fn dispatch(&self, max: usize) -> Result<usize, DispatchError> {
                <$t>::dispatch(self, max)
            }
            fn close(&self) {
                <$t>::$close(self)
            }
        }
    )*};
}

pollable!(Channel => close, Server => close, Worker => close, Engine => close, Session => stop, ResumeServer => close);

/// Sending on a session of any object that has sessions: a channel, a
/// session, a resume peer (any message, and frames), a worker or an
/// engine's worker (the stream messages: chunk, choke, error). One
/// refusal type for all: [`StreamError`].
pub trait Streams: Send + Sync {
    /// Sends `message` on `session` with v1 `headers`.
    fn send_message(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), StreamError>;
    /// Sends a chunk (without copying `data`).
    fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), StreamError> {
        self.send_message(session, &Message::Chunk { data: data.clone() }, &[])
    }
    /// Sends a generic frame. Objects that speak only the worker protocol
    /// refuse with [`StreamError::NoSession`].
    fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), StreamError> {
        let _ = (session, ty, args, headers);
        Err(StreamError::NoSession)
    }
}

fn sent(r: Result<(), SendError>) -> Result<(), StreamError> {
    r.map_err(StreamError::from)
}

impl Streams for Channel {
    fn send_message(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), StreamError> {
        sent(Channel::send_with_headers(self, session, message, headers))
    }
    fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), StreamError> {
        sent(Channel::send_chunk(self, session, data))
    }
    fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), StreamError> {
        sent(Channel::send_frame(self, session, ty, args, headers))
    }
}

impl Streams for Session {
    fn send_message(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), StreamError> {
        sent(Session::send_with_headers(self, session, message, headers))
    }
    fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), StreamError> {
        sent(Session::send_chunk(self, session, data))
    }
    fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), StreamError> {
        sent(Session::send_frame(self, session, ty, args, headers))
    }
}

impl Streams for Peer {
    fn send_message(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), StreamError> {
        sent(Peer::send_message(self, session, message, headers))
    }
    fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), StreamError> {
        sent(Peer::send_chunk(self, session, data))
    }
    fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), StreamError> {
        sent(Peer::send_frame(self, session, ty, args, headers))
    }
}

/// The stream messages (chunk, choke, error) a worker or an engine's
/// worker sends; anything else is refused with `NoSession`.
fn stream_message(
    message: &Message,
    write: impl FnOnce(&Bytes) -> Result<(), StreamError>,
    close: impl FnOnce() -> Result<(), StreamError>,
    error: impl FnOnce(i64, i64, &str) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    match message {
        Message::Chunk { data } => write(data),
        Message::Choke => close(),
        Message::Error { category, code, message } => {
            let text = message.as_ref().map(|m| String::from_utf8_lossy(m)).unwrap_or_default();
            error(category.unwrap_or(crate::wire::message::FRAMEWORK_CATEGORY), *code, &text)
        }
        _ => Err(StreamError::NoSession),
    }
}

impl Streams for Worker {
    fn send_message(&self, session: u64, message: &Message, _headers: &[Header]) -> Result<(), StreamError> {
        let s = self.stream(session);
        stream_message(message, |d| s.write(d), || s.close(), |cat, code, m| s.error_with_category(cat, code, m))
    }
}

impl Streams for WorkerRef {
    fn send_message(&self, session: u64, message: &Message, _headers: &[Header]) -> Result<(), StreamError> {
        let s: EngineStream = self.stream(session);
        stream_message(message, |d| s.write(d), || s.close(), |_, code, m| s.error(code, m))
    }
}

impl StreamError {
    /// The code every binding names the refusal with: `EAGAIN` (nothing
    /// was sent; retry after the drain event), `ERR_CHANNEL_CLOSED`,
    /// `ERR_STREAM_ENDED`, `ERR_NO_SESSION`.
    pub fn code(&self) -> &'static str {
        match self {
            StreamError::WouldBlock => "EAGAIN",
            StreamError::Closed => "ERR_CHANNEL_CLOSED",
            StreamError::Ended => "ERR_STREAM_ENDED",
            StreamError::NoSession => "ERR_NO_SESSION",
        }
    }

    /// The refusal in a sentence that says what to do, for error messages.
    pub fn explain(&self) -> &'static str {
        match self {
            StreamError::WouldBlock => "the send queue is full: nothing was sent; retry after the drain event",
            StreamError::Closed => "the connection is closed",
            StreamError::Ended => "this side already ended the session (close or error sent)",
            StreamError::NoSession => "no such open session",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_event_maps_to_one_name_per_kind() {
        let (s, e) = crate::net::Event::SocketError(104).into_event();
        assert!(matches!(s, Source::Own));
        assert!(matches!(e, Event::Disconnected { errno: 104, ref sessions } if sessions.is_empty()));
        assert_eq!(e.name(), "disconnect");
        let (_, e) = SessionEvent::Disconnected { errno: 110 }.into_event();
        assert_eq!(e.name(), "disconnect");
        let (_, e) = EngineEvent::Rejected { uuid: "u".into() }.into_event();
        assert_eq!(e.name(), "rejected");
        let names: Vec<_> = [
            Message::Chunk { data: Bytes::from_static(b"x") },
            Message::Choke,
            Message::Invoke { event: Bytes::new() },
            Message::Heartbeat,
            Message::Error { category: None, code: 1, message: None },
        ]
        .into_iter()
        .map(|m| crate::net::Event::Message { session: 1, message: m, headers: vec![] }.into_event().1.name())
        .collect();
        assert_eq!(names, ["chunk", "choke", "invoke", "heartbeat", "error"]);
    }

    #[test]
    fn an_event_is_no_larger_than_a_channel_event() {
        // Events are moved once per message on the way to a host.
        assert!(std::mem::size_of::<Event>() <= std::mem::size_of::<crate::net::Event>(), "{}", std::mem::size_of::<Event>());
    }

    #[test]
    fn an_event_costs_its_bytes_and_at_least_its_size() {
        let small = Event::Drain.bytes();
        assert_eq!(small, std::mem::size_of::<Event>());
        let chunk = Event::Message { session: 1, message: Message::Chunk { data: Bytes::from(vec![0u8; 1000]) }, headers: vec![] };
        assert_eq!(chunk.bytes(), small + 1000);
    }

    #[test]
    fn refusals_have_one_code_each() {
        let codes: Vec<_> =
            [StreamError::WouldBlock, StreamError::Closed, StreamError::Ended, StreamError::NoSession].iter().map(|e| e.code()).collect();
        assert_eq!(codes, ["EAGAIN", "ERR_CHANNEL_CLOSED", "ERR_STREAM_ENDED", "ERR_NO_SESSION"]);
    }
}
