//! Typed messages of the worker ↔ engine protocol (docs/PROTOCOL.md §2.2,
//! §3.4) and the per-connection bookkeeping that tells, in v1, what a type id
//! means on a given channel.

use std::collections::HashSet;

use bytes::Bytes;

use super::error::ArgsError;
use super::frame::{Args, Dialect, Frame};
use super::headers::Header;

/// The error category the frameworks use for worker-side errors (v1).
pub const FRAMEWORK_CATEGORY: i64 = 42;

/// How many sessions the peer may have open at once by default
/// ([`Session::set_max_sessions`]).
pub const DEFAULT_MAX_SESSIONS: usize = 1 << 16;

/// The control session (v0) / channel (v1).
pub const CONTROL_SESSION: u64 = 1;

/// terminate code: normal shutdown (v0 meaning; v1 engines send their own codes).
pub const TERMINATE_NORMAL: i64 = 1;
/// terminate code: abnormal shutdown.
pub const TERMINATE_ABNORMAL: i64 = 2;

/// What a worker-protocol message is, without its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `handshake(uuid)`: the worker's first frame.
    Handshake,
    /// `heartbeat()`, from either side.
    Heartbeat,
    /// `terminate(code, reason)`, from either side.
    Terminate,
    /// `invoke(event)`: the engine opens a session.
    Invoke,
    /// v0 `chunk(data)` / v1 `write(chunk)`.
    Chunk,
    /// `error(code, message)` (v0) / `error([category, code], message?)` (v1).
    Error,
    /// v0 `choke()` / v1 `close()`: the sender's direction of the session ends.
    Choke,
}

impl Kind {
    /// The type id of this message on the wire.
    pub fn type_id(self, dialect: Dialect) -> u64 {
        match dialect {
            Dialect::V0 => match self {
                Kind::Handshake => 0,
                Kind::Heartbeat => 1,
                Kind::Terminate => 2,
                Kind::Invoke => 3,
                Kind::Chunk => 4,
                Kind::Error => 5,
                Kind::Choke => 6,
            },
            Dialect::V1 => match self {
                Kind::Handshake | Kind::Heartbeat | Kind::Invoke | Kind::Chunk => 0,
                Kind::Terminate | Kind::Error => 1,
                Kind::Choke => 2,
            },
        }
    }

    /// The message named by a v0 type id.
    pub fn from_v0(ty: u64) -> Option<Kind> {
        Some(match ty {
            0 => Kind::Handshake,
            1 => Kind::Heartbeat,
            2 => Kind::Terminate,
            3 => Kind::Invoke,
            4 => Kind::Chunk,
            5 => Kind::Error,
            6 => Kind::Choke,
            _ => return None,
        })
    }

    /// The message's name in the dialect's own vocabulary (v1 calls a chunk
    /// `write` and a choke `close`).
    pub fn name(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Kind::Handshake, _) => "handshake",
            (Kind::Heartbeat, _) => "heartbeat",
            (Kind::Terminate, _) => "terminate",
            (Kind::Invoke, _) => "invoke",
            (Kind::Chunk, Dialect::V0) => "chunk",
            (Kind::Chunk, Dialect::V1) => "write",
            (Kind::Error, _) => "error",
            (Kind::Choke, Dialect::V0) => "choke",
            (Kind::Choke, Dialect::V1) => "close",
        }
    }

    /// Whether the message ends its sender's direction of a session.
    pub fn is_terminal(self) -> bool {
        matches!(self, Kind::Error | Kind::Choke)
    }

    /// Whether the message belongs to the control session.
    pub fn is_control(self) -> bool {
        matches!(self, Kind::Handshake | Kind::Heartbeat | Kind::Terminate)
    }
}

/// A worker-protocol message with its arguments. Byte strings are slices of
/// the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The worker introduces itself with the uuid it was started with.
    Handshake {
        /// The worker's `--uuid`.
        uuid: Bytes,
    },
    /// Keep-alive.
    Heartbeat,
    /// Shut down: `code` is 1 (normal) or 2 (abnormal) in v0, an engine
    /// error code in v1.
    Terminate {
        /// The terminate code.
        code: i64,
        /// Why.
        reason: Bytes,
    },
    /// A new session for `event`.
    Invoke {
        /// The event name.
        event: Bytes,
    },
    /// A piece of a session's data.
    Chunk {
        /// The bytes.
        data: Bytes,
    },
    /// A session failed.
    Error {
        /// The v1 error category; `None` in v0. Encoding a v1 error without
        /// one uses [`FRAMEWORK_CATEGORY`].
        category: Option<i64>,
        /// The error code.
        code: i64,
        /// The message; optional in v1.
        message: Option<Bytes>,
    },
    /// The sender's direction of the session ends.
    Choke,
}

const fn bad(message: &'static str, expected: &'static str) -> ArgsError {
    ArgsError { message, expected }
}

impl Message {
    /// Which message this is.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Handshake { .. } => Kind::Handshake,
            Message::Heartbeat => Kind::Heartbeat,
            Message::Terminate { .. } => Kind::Terminate,
            Message::Invoke { .. } => Kind::Invoke,
            Message::Chunk { .. } => Kind::Chunk,
            Message::Error { .. } => Kind::Error,
            Message::Choke => Kind::Choke,
        }
    }

    /// Reads the arguments of a `kind` message. Extra trailing arguments are
    /// ignored, as every Cocaine implementation does; missing or mistyped
    /// ones are an [`ArgsError`].
    pub fn from_args(kind: Kind, dialect: Dialect, args: &Args) -> Result<Message, ArgsError> {
        let mut r = args.reader();
        Ok(match kind {
            Kind::Handshake => Message::Handshake { uuid: r.bytes().ok_or(bad("handshake", "[uuid: str]"))? },
            Kind::Heartbeat => Message::Heartbeat,
            Kind::Choke => Message::Choke,
            Kind::Terminate => {
                const E: ArgsError = bad("terminate", "[code: int, reason: str]");
                let code = r.int().ok_or(E)?;
                let reason = r.bytes().ok_or(E)?;
                Message::Terminate { code, reason }
            }
            Kind::Invoke => Message::Invoke { event: r.bytes().ok_or(bad("invoke", "[event: str]"))? },
            Kind::Chunk => Message::Chunk { data: r.bytes().ok_or(bad("chunk", "[data: bytes]"))? },
            Kind::Error => match dialect {
                Dialect::V0 => {
                    const E: ArgsError = bad("error", "[code: int, message: str]");
                    let code = r.int().ok_or(E)?;
                    let message = Some(r.bytes().ok_or(E)?);
                    Message::Error { category: None, code, message }
                }
                Dialect::V1 => {
                    const E: ArgsError = bad("error", "[[category: int, code: int], message?: str]");
                    let outer = r.remaining();
                    if r.enter_array().ok_or(E)? < 2 {
                        return Err(E);
                    }
                    let category = r.int().ok_or(E)?;
                    let code = r.int().ok_or(E)?;
                    // Skip anything else inside the pair, then the optional message.
                    while r.remaining() >= outer {
                        r.raw_value().ok_or(E)?;
                    }
                    let message = if r.remaining() > 0 { Some(r.bytes().ok_or(E)?) } else { None };
                    Message::Error { category: Some(category), code, message }
                }
            },
        })
    }
}

/// Why a frame was dropped instead of delivered as a message. None of these
/// ends the connection (docs/PROTOCOL.md §3.6, §9.1): the frame is dropped and
/// logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// A type id that names no message in the session's protocol.
    #[error("unknown message type {ty} on session {session}")]
    UnknownType {
        /// The session.
        session: u64,
        /// The type id.
        ty: u64,
    },
    /// A new v1 channel whose first message is not `invoke`.
    #[error("new channel {session} must start with invoke, not type {ty}")]
    NotInvoke {
        /// The channel.
        session: u64,
        /// The type id.
        ty: u64,
    },
    /// A channel that is closed or was never opened by this side.
    #[error("no open session {session}")]
    NoSession {
        /// The channel.
        session: u64,
    },
    /// A v1 worker frame before its handshake.
    #[error("frame on channel {session} before the handshake")]
    BeforeHandshake {
        /// The channel.
        session: u64,
    },
    /// A new session past the limit of sessions open at once
    /// ([`Session::set_max_sessions`]); it is not opened.
    #[error("new session {session} refused: {limit} sessions are open")]
    SessionLimit {
        /// The session.
        session: u64,
        /// The limit.
        limit: usize,
    },
    /// Arguments that do not match the message.
    #[error("session {session}: {error}")]
    BadArgs {
        /// The session.
        session: u64,
        /// What is wrong.
        error: ArgsError,
    },
}

impl Dropped {
    /// A short stable name for the reason.
    pub fn class(&self) -> &'static str {
        match self {
            Dropped::UnknownType { .. } => "unknown_type",
            Dropped::NotInvoke { .. } => "new_channel_not_opened_by_invoke",
            Dropped::NoSession { .. } => "no_session",
            Dropped::BeforeHandshake { .. } => "before_handshake",
            Dropped::SessionLimit { .. } => "session_limit",
            Dropped::BadArgs { .. } => "bad_args",
        }
    }
}

/// Which end of a worker ↔ engine connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The app process: receives invokes, sends the handshake.
    Worker,
    /// The runtime side: receives the handshake, sends invokes.
    Engine,
}

/// The receive-side state of a worker ↔ engine connection: which sessions
/// are open, the highest id seen, whether the handshake came. It turns
/// frames into [`Message`]s or says why a frame is dropped.
///
/// v0 is stateless (every type id has one meaning); v1 follows §3.2: a
/// channel above the highest id seen opens with `invoke`, `error` and
/// `close` end the peer's direction, and later frames on it are dropped.
#[derive(Debug, Clone)]
pub struct Session {
    dialect: Dialect,
    role: Role,
    max_seen: u64,
    open: HashSet<u64>,
    /// The channel of the last stream frame (0: none), known to be open.
    last_open: u64,
    handshake: bool,
    max_open: usize,
}

impl Session {
    /// A fresh connection's state.
    pub fn new(dialect: Dialect, role: Role) -> Session {
        Session { dialect, role, max_seen: 0, open: HashSet::new(), last_open: 0, handshake: false, max_open: DEFAULT_MAX_SESSIONS }
    }

    /// Limits the sessions the peer may have open at once (v1; default
    /// [`DEFAULT_MAX_SESSIONS`]): a frame that would open one more is
    /// dropped as [`Dropped::SessionLimit`] and the session stays closed,
    /// so a peer that opens sessions without end cannot grow this state
    /// without bound. Sessions this side opens ([`sent`](Self::sent)) are
    /// not limited.
    pub fn set_max_sessions(&mut self, limit: usize) {
        self.max_open = limit;
    }

    /// The limit of [`set_max_sessions`](Self::set_max_sessions).
    pub fn max_sessions(&self) -> usize {
        self.max_open
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The highest session id seen in either direction.
    pub fn max_session(&self) -> u64 {
        self.max_seen
    }

    /// The id for a new session opened by this side: one above the highest
    /// seen (v1 channel ids are never reused, and channel 1 is the control
    /// channel; v0 engines number sessions from 1, session 0 being control).
    pub fn next_session(&self) -> u64 {
        let first = match self.dialect {
            Dialect::V0 => 1,
            Dialect::V1 => 2,
        };
        self.max_seen.saturating_add(1).max(first)
    }

    /// Sessions whose peer direction is still open (v1).
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Records a message this side sends: an engine's `invoke` opens the
    /// session for the worker's answer; every id counts as seen.
    pub fn sent(&mut self, session: u64, kind: Kind) {
        self.max_seen = self.max_seen.max(session);
        if self.dialect == Dialect::V1 && self.role == Role::Engine && kind == Kind::Invoke {
            self.open.insert(session);
            self.last_open = session;
        }
    }

    /// Classifies a received frame.
    pub fn receive(&mut self, frame: &Frame) -> Result<Message, Dropped> {
        let kind = self.classify(frame.session, frame.ty)?;
        let msg =
            Message::from_args(kind, self.dialect, &frame.args).map_err(|error| Dropped::BadArgs { session: frame.session, error })?;
        self.received(frame.session, kind);
        Ok(msg)
    }

    /// Classifies a received frame, consuming it: a chunk's payload takes the
    /// frame's buffer without another reference count. A dropped frame is
    /// given back with the reason.
    #[inline]
    // The frame comes back by value on a drop: boxing it would allocate on
    // a path that must not.
    #[allow(clippy::result_large_err)]
    pub fn receive_owned(&mut self, frame: Frame) -> Result<(u64, Message, Vec<Header>), (Frame, Dropped)> {
        let kind = match self.classify(frame.session, frame.ty) {
            Ok(k) => k,
            Err(d) => return Err((frame, d)),
        };
        self.receive_classified(kind, frame)
    }

    /// The rest of [`receive_owned`](Self::receive_owned) for a frame
    /// already classified as `kind`.
    #[inline]
    #[allow(clippy::result_large_err)]
    pub(crate) fn receive_classified(&mut self, kind: Kind, frame: Frame) -> Result<(u64, Message, Vec<Header>), (Frame, Dropped)> {
        let Frame { session, ty, args, headers } = frame;
        let msg = match kind {
            Kind::Chunk | Kind::Invoke | Kind::Handshake => match args.into_first_bytes() {
                Ok(b) => match kind {
                    Kind::Chunk => Message::Chunk { data: b },
                    Kind::Invoke => Message::Invoke { event: b },
                    _ => Message::Handshake { uuid: b },
                },
                Err(args) => {
                    let error = Message::from_args(kind, self.dialect, &args)
                        .err()
                        .unwrap_or(ArgsError { message: kind.name(self.dialect), expected: "[bytes]" });
                    return Err((Frame { session, ty, args, headers }, Dropped::BadArgs { session, error }));
                }
            },
            _ => match Message::from_args(kind, self.dialect, &args) {
                Ok(m) => m,
                Err(error) => return Err((Frame { session, ty, args, headers }, Dropped::BadArgs { session, error })),
            },
        };
        self.received(session, kind);
        Ok((session, msg, headers))
    }

    #[inline]
    pub(crate) fn received(&mut self, s: u64, kind: Kind) {
        if self.dialect == Dialect::V1 && kind.is_terminal() {
            self.open.remove(&s);
            if self.last_open == s {
                self.last_open = 0;
            }
        }
    }

    /// What a received frame on `s` of type `ty` is, updating what is
    /// known of the sessions (a new v1 channel opens); the frame's
    /// arguments are not looked at. [`received`](Self::received) completes
    /// the bookkeeping once they were found right.
    #[inline]
    pub(crate) fn classify(&mut self, s: u64, ty: u64) -> Result<Kind, Dropped> {
        match self.dialect {
            Dialect::V0 => Kind::from_v0(ty).ok_or(Dropped::UnknownType { session: s, ty }),
            Dialect::V1 => {
                // Streams come in runs on one channel: the last open one is
                // checked before the set.
                // (`last_open` 0 means none: channel 0 takes the slow path.)
                if s == self.last_open && s != CONTROL_SESSION && s != 0 {
                    return Self::stream_kind(s, ty);
                }
                self.classify_v1(s, ty)
            }
        }
    }

    #[inline]
    fn stream_kind(s: u64, ty: u64) -> Result<Kind, Dropped> {
        match ty {
            0 => Ok(Kind::Chunk),
            1 => Ok(Kind::Error),
            2 => Ok(Kind::Choke),
            _ => Err(Dropped::UnknownType { session: s, ty }),
        }
    }

    fn classify_v1(&mut self, s: u64, ty: u64) -> Result<Kind, Dropped> {
        let seen = self.max_seen;
        self.max_seen = seen.max(s);
        if s == CONTROL_SESSION {
            if self.role == Role::Engine && !self.handshake {
                return match ty {
                    0 => {
                        self.handshake = true;
                        Ok(Kind::Handshake)
                    }
                    _ => Err(Dropped::BeforeHandshake { session: s }),
                };
            }
            return match ty {
                0 => Ok(Kind::Heartbeat),
                1 => Ok(Kind::Terminate),
                _ => Err(Dropped::UnknownType { session: s, ty }),
            };
        }
        // A session this side opened takes its answers, even an engine's
        // opened before the worker's handshake.
        if self.open.contains(&s) {
            self.last_open = s;
            return Self::stream_kind(s, ty);
        }
        if self.role == Role::Engine && !self.handshake {
            return Err(Dropped::BeforeHandshake { session: s });
        }
        if s > seen && self.role == Role::Worker {
            if ty != 0 {
                return Err(Dropped::NotInvoke { session: s, ty });
            }
            if self.open.len() >= self.max_open {
                return Err(Dropped::SessionLimit { session: s, limit: self.max_open });
            }
            self.open.insert(s);
            self.last_open = s;
            return Ok(Kind::Invoke);
        }
        Err(Dropped::NoSession { session: s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(session: u64, ty: u64, arg: &'static [u8]) -> Frame {
        let mut raw = vec![0x91, 0xc4, arg.len() as u8];
        raw.extend_from_slice(arg);
        Frame { session, ty, args: Args::from_raw(raw.into()).unwrap(), headers: vec![] }
    }

    #[test]
    fn channel_zero_is_never_an_open_session() {
        // "No last open channel" is 0: a frame on channel 0 is dropped, not
        // taken for a chunk of an open session.
        let mut w = Session::new(Dialect::V1, Role::Worker);
        assert_eq!(w.receive(&frame(0, 0, b"x")), Err(Dropped::NoSession { session: 0 }));
        assert_eq!(w.receive(&frame(2, 0, b"ev")), Ok(Message::Invoke { event: Bytes::from_static(b"ev") }));
        let mut w = Session::new(Dialect::V1, Role::Worker);
        assert!(w.receive(&frame(2, 0, b"ev")).is_ok());
        assert_eq!(w.receive_owned(Frame { args: Args::empty(), ..frame(2, 2, b"") }).map(|m| m.1), Ok(Message::Choke));
        assert_eq!(w.receive(&frame(0, 0, b"x")), Err(Dropped::NoSession { session: 0 }));
    }

    #[test]
    fn an_engine_takes_answers_on_its_own_sessions_even_before_the_handshake() {
        let mut e = Session::new(Dialect::V1, Role::Engine);
        e.sent(4, Kind::Invoke);
        e.sent(6, Kind::Invoke);
        // Whichever session was opened last (the fast path) or before.
        assert_eq!(e.receive(&frame(4, 0, b"x")), Ok(Message::Chunk { data: Bytes::from_static(b"x") }));
        assert_eq!(e.receive(&frame(6, 0, b"y")), Ok(Message::Chunk { data: Bytes::from_static(b"y") }));
        assert_eq!(e.receive(&frame(4, 0, b"z")), Ok(Message::Chunk { data: Bytes::from_static(b"z") }));
        // Anything else before the handshake is dropped.
        assert_eq!(e.receive(&frame(8, 0, b"x")), Err(Dropped::BeforeHandshake { session: 8 }));
        assert!(e.receive(&frame(1, 0, b"uuid")).is_ok());
    }

    #[test]
    fn the_session_limit_refuses_new_sessions_until_one_closes() {
        let mut w = Session::new(Dialect::V1, Role::Worker);
        w.set_max_sessions(2);
        assert!(w.receive(&frame(2, 0, b"a")).is_ok());
        assert!(w.receive(&frame(3, 0, b"b")).is_ok());
        assert_eq!(w.receive(&frame(4, 0, b"c")), Err(Dropped::SessionLimit { session: 4, limit: 2 }));
        // The refused session stays closed.
        assert_eq!(w.receive(&frame(4, 0, b"more")), Err(Dropped::NoSession { session: 4 }));
        assert_eq!(w.open_sessions(), 2);
        assert!(w.receive(&Frame { args: Args::empty(), ..frame(2, 2, b"") }).is_ok());
        assert!(w.receive(&frame(5, 0, b"d")).is_ok());
        assert_eq!(w.open_sessions(), 2);
    }
}
