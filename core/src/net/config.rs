//! Endpoints and channel settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::wire::{Dialect, Profile, Role, DEFAULT_MAX_FRAME_SIZE};

/// Where a channel connects or a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP host (name, IPv4 or IPv6 literal) and port.
    Tcp(String, u16),
    /// A Unix stream socket path.
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses `host:port`, `[v6]:port`, `unix:PATH`, or a path (anything
    /// starting with `/` or `.`).
    pub fn parse(s: &str) -> Option<Endpoint> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Some(Endpoint::Unix(p.into()));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Some(Endpoint::Unix(s.into()));
        }
        let (host, port) = s.rsplit_once(':')?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        Some(Endpoint::Tcp(host.to_string(), port.parse().ok()?))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Endpoint::Tcp(h, p) => write!(f, "{h}:{p}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// How a channel's events reach its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// The handler runs on an I/O thread of the runtime as events arrive:
    /// the simplest and fastest mode for Rust and C. It must not block.
    #[default]
    Inline,
    /// Events queue up and the channel's [`fd`](crate::net::Channel::fd)
    /// becomes readable (level-triggered); the host calls
    /// [`dispatch`](crate::net::Channel::dispatch) on its own thread, which
    /// runs the handler for a batch of events. Reading pauses while more
    /// than [`ChannelConfig::max_pending`] bytes wait to be dispatched.
    Poll,
}

/// Settings of a channel (and of the channels a server accepts).
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Protocol dialect.
    pub dialect: Dialect,
    /// Encoding profile for sends (v0 always uses compat).
    pub profile: Profile,
    /// Which side of the worker protocol this is: frames are typed as
    /// [`Message`](crate::wire::Message)s for it. `None`: every frame is
    /// delivered as a generic [`Frame`](crate::wire::Frame).
    pub role: Option<Role>,
    /// Largest frame accepted (`EMSGSIZE` beyond).
    pub max_frame_size: usize,
    /// v1 header table capacity.
    pub header_table_size: usize,
    /// Skip well-formed values that are not frames instead of failing.
    pub lenient: bool,
    /// Sends are refused with "would block" while this many bytes are queued.
    pub high_watermark: usize,
    /// After a refused send, `Drain` is delivered once the queue holds no
    /// more than this many bytes.
    pub low_watermark: usize,
    /// Sends that are never refused for a full queue — a served call's
    /// replies, which have nowhere else to go — are queued past the high
    /// watermark up to this many bytes. One more ends the connection with
    /// `ENOBUFS`: the owner gets it as the channel's [`SocketError`]
    /// event and the peer sees the connection close, so no reply is lost
    /// without both sides being told.
    ///
    /// [`SocketError`]: crate::net::Event::SocketError
    pub max_queued: usize,
    /// Stop reading while the send queue is at or over the high watermark,
    /// until it is down to the low watermark: a peer that sends requests
    /// and does not read their replies is held to the pace at which it
    /// reads, instead of growing the queue (flow control per connection,
    /// as HTTP/2 does it). On for the connections a hosted service, the
    /// Locator or an attached service accepts; off by default, where a
    /// send past the high watermark is refused instead.
    pub pause_reads_on_full_queue: bool,
    /// Give up connecting after this long (`ETIMEDOUT`); `None`: the OS's.
    pub connect_timeout: Option<Duration>,
    /// After [`close`](crate::net::Channel::close): how long the queue may
    /// take to flush and the peer to close its side before the connection
    /// is cut.
    pub close_linger: Duration,
    /// Event delivery mode.
    pub delivery: Delivery,
    /// Poll mode: pause reading while this many payload bytes wait.
    pub max_pending: usize,
    /// Bytes asked of each read from the socket, at most: reads start at
    /// 16 KiB and grow to this while they fill the buffer.
    pub read_size: usize,
    /// Longest a frame may take to arrive once its first byte has, counted
    /// from that byte or from the last complete frame, whichever is later
    /// (time spent paused at [`max_pending`](Self::max_pending) does not
    /// count). A peer that starts a frame and stalls, or dribbles it a byte
    /// at a time, ends the connection with `ETIMEDOUT`. `None`: no limit.
    pub frame_timeout: Option<Duration>,
    /// End the connection with `ETIMEDOUT` when nothing at all arrives for
    /// this long. `None` (the default): an idle connection stays up; the
    /// worker protocol's heartbeats are the liveness check.
    pub read_idle_timeout: Option<Duration>,
    /// Most sessions the peer may have open at once on a channel with a
    /// v1 [`role`](Self::role) (a worker's sessions opened by `invoke`). A
    /// new session past the limit is not opened: its frames are delivered
    /// as [`Event::Frame`](crate::net::Event::Frame)s like other dropped
    /// frames (`Dropped::SessionLimit`). v0 keeps no per-session state.
    pub max_sessions: usize,
}

impl ChannelConfig {
    /// The defaults for a dialect and role.
    pub fn new(dialect: Dialect, role: Option<Role>) -> ChannelConfig {
        ChannelConfig { dialect, role, ..ChannelConfig::default() }
    }

    /// The protocol session state these settings call for: with a role,
    /// a fresh [`Session`](crate::wire::Session) of the dialect limited
    /// to `max_sessions`; without one, none.
    pub(crate) fn session_state(&self) -> Option<crate::wire::Session> {
        self.role.map(|role| {
            let mut s = crate::wire::Session::new(self.dialect, role);
            s.set_max_sessions(self.max_sessions);
            s
        })
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            dialect: Dialect::V1,
            profile: Profile::Compat,
            role: Some(Role::Worker),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            header_table_size: crate::wire::headers::DEFAULT_TABLE_SIZE,
            lenient: false,
            high_watermark: 8 << 20,
            low_watermark: 2 << 20,
            max_queued: 64 << 20,
            pause_reads_on_full_queue: false,
            connect_timeout: Some(Duration::from_secs(30)),
            close_linger: Duration::from_secs(10),
            delivery: Delivery::Inline,
            max_pending: 16 << 20,
            read_size: 256 << 10,
            frame_timeout: Some(Duration::from_secs(60)),
            read_idle_timeout: None,
            max_sessions: crate::wire::DEFAULT_MAX_SESSIONS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_endpoint_form() {
        assert_eq!(Endpoint::parse("localhost:10053"), Some(Endpoint::Tcp("localhost".into(), 10053)));
        assert_eq!(Endpoint::parse("[::1]:80"), Some(Endpoint::Tcp("::1".into(), 80)));
        assert_eq!(Endpoint::parse("/run/app.sock"), Some(Endpoint::Unix("/run/app.sock".into())));
        assert_eq!(Endpoint::parse("unix:rel.sock"), Some(Endpoint::Unix("rel.sock".into())));
        assert_eq!(Endpoint::parse("nohost"), None);
        assert_eq!(Endpoint::parse("h:99999"), None);
        assert_eq!(Endpoint::Tcp("::1".into(), 80).to_string(), "[::1]:80");
    }
}
