//! The errno values sluice reports (docs/PROTOCOL.md §8.3).
//!
//! These are the Linux numbers on every operating system: the Cocaine Node.js
//! framework maps errors by symbolic name onto the Linux table, so programs
//! written for it compare against these values.

/// No such file or directory (a Unix socket path that does not exist).
pub const ENOENT: i32 = 2;
/// Host not found: a host name that could not be resolved to an address
/// (sluice's use of Linux's `ENXIO`, "no such device or address"; named
/// `ENOTFOUND` like the DNS errors of Node.js).
pub const ENOTFOUND: i32 = 6;
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

/// Symbolic names of the errno values a connection can end with: sluice's
/// own and those the operating system gives sockets.
const NAMES: &[(i32, &str)] = &[
    (1, "EPERM"),
    (ENOENT, "ENOENT"),
    (ENOTFOUND, "ENOTFOUND"),
    (EBADF, "EBADF"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (EACCES, "EACCES"),
    (22, "EINVAL"),
    (24, "EMFILE"),
    (EPIPE, "EPIPE"),
    (EBADMSG, "EBADMSG"),
    (EMSGSIZE, "EMSGSIZE"),
    (97, "EAFNOSUPPORT"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (100, "ENETDOWN"),
    (101, "ENETUNREACH"),
    (103, "ECONNABORTED"),
    (ECONNRESET, "ECONNRESET"),
    (ENOBUFS, "ENOBUFS"),
    (106, "EISCONN"),
    (107, "ENOTCONN"),
    (ESHUTDOWN, "ESHUTDOWN"),
    (ETIMEDOUT, "ETIMEDOUT"),
    (ECONNREFUSED, "ECONNREFUSED"),
    (112, "EHOSTDOWN"),
    (113, "EHOSTUNREACH"),
];

/// The symbolic name of `errno` (`"ECONNRESET"`); `"EUNKNOWN"` for a value
/// not in the table.
pub fn name(errno: i32) -> &'static str {
    NAMES.iter().find(|(n, _)| *n == errno).map_or("EUNKNOWN", |(_, s)| s)
}

/// The errno called `name` (`"ECONNRESET"` → 104).
pub fn from_name(name: &str) -> Option<i32> {
    NAMES.iter().find(|(_, s)| *s == name).map(|(n, _)| *n)
}

/// Every errno sluice names, with its name.
pub fn all() -> &'static [(i32, &'static str)] {
    NAMES
}

/// What `errno` means for a sluice connection, in words: sluice's own
/// meaning where it gives the value one, else the system's text.
pub fn text(errno: i32) -> String {
    match errno {
        ENOTFOUND => "host not found: the host name could not be resolved".into(),
        EBADMSG => "bad message: the peer sent bytes that are not a valid frame".into(),
        EMSGSIZE => "message too long: a frame larger than the limit".into(),
        ESHUTDOWN => "the peer closed the connection".into(),
        ENOBUFS => "no buffer space: replies past the send queue's bound, the peer does not read them".into(),
        103 => "the channel was closed before it connected".into(),
        _ => {
            let s = std::io::Error::from_raw_os_error(errno).to_string();
            // "Connection refused (os error 111)" → "Connection refused".
            match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts() {
        assert_eq!(name(ECONNRESET), "ECONNRESET");
        assert_eq!(name(9999), "EUNKNOWN");
        assert_eq!(from_name("ENOBUFS"), Some(ENOBUFS));
        assert_eq!(text(ECONNREFUSED), "Connection refused");
        assert!(text(EBADMSG).contains("not a valid frame"));
        assert_eq!(from_name("ENOTFOUND"), Some(ENOTFOUND));
        assert!(text(ENOTFOUND).starts_with("host not found"));
        let mut seen: Vec<_> = all().iter().map(|(n, _)| *n).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), all().len());
    }
}
