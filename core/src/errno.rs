//! The errno values sluice reports (PROTOCOL.md §8.3).
//!
//! These are the Linux numbers on every operating system: the Cocaine Node.js
//! framework maps errors by symbolic name onto the Linux table, so programs
//! written for it compare against these values.

/// No such file or directory (a Unix socket path that does not exist).
pub const ENOENT: i32 = 2;
/// Bad file descriptor; also the fallback for errors without a better number.
pub const EBADF: i32 = 9;
/// Permission denied.
pub const EACCES: i32 = 13;
/// Broken pipe: writing to a closed peer, or a socket closed without an error.
pub const EPIPE: i32 = 32;
/// Bad message: the peer sent bytes that are not a valid frame.
pub const EBADMSG: i32 = 74;
/// Message too long: a frame larger than the configured limit.
pub const EMSGSIZE: i32 = 90;
/// Connection reset by peer.
pub const ECONNRESET: i32 = 104;
/// No buffer space: a served call's replies went past the send queue's
/// hard bound ([`ChannelConfig::max_queued`](crate::net::ChannelConfig::max_queued))
/// because the peer does not read them; the connection is ended.
pub const ENOBUFS: i32 = 105;
/// The peer closed the connection (end of stream).
pub const ESHUTDOWN: i32 = 108;
/// Timed out: a connect timeout, or a peer silent for longer than allowed.
pub const ETIMEDOUT: i32 = 110;
/// Connection refused.
pub const ECONNREFUSED: i32 = 111;
