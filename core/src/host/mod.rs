//! What the C, Python and Node bindings share: the rules they must apply
//! alike, written once here so that a binding only marshals values between
//! its language and these functions.
//!
//! * [`event`] — one event model for every role ([`Event`], [`Source`],
//!   [`IntoEvent`]), one handle ([`Pollable`]: descriptor, dispatch,
//!   close) and one way to send on a session ([`Streams`]).
//! * [`backlog`] — sends that are always taken, waiting in order while the
//!   channel's queue is full (the contract of Node.js streams).
//! * [`options`] — the option table: every channel setting's name in each
//!   language, its kind, default, bounds and documentation, and the one
//!   check ([`Options::set`], [`Options::validate`]).
//! * [`settings`] — the process-wide settings (service connection cap,
//!   idle timeout, I/O threads) in a table of the same form.
//! * [`errno_name`] / [`errno_text`] — what an errno is called and what it
//!   means, for every error message of every binding.
//! * [`protocol_from_args`] — the runtime's `--protocol` flag, both forms.
//! * [`printable`] — text from the wire made safe for a terminal or a log
//!   line.
//! * Dialect, role and profile words: `FromStr` and `Display` on
//!   [`Dialect`](crate::wire::Dialect), [`Role`](crate::wire::Role) and
//!   [`Profile`](crate::wire::Profile).

pub mod backlog;
pub mod event;
pub mod options;
pub mod settings;

pub use crate::roles::protocol_from_args;
pub use event::{message_name, Event, IntoEvent, Pollable, Source, Streams};
pub use options::{Input, Kind, Lang, OptionError, Options, Spec, OPTIONS};

/// The symbolic name of an errno (`"ECONNRESET"`), `"EUNKNOWN"` for one
/// sluice does not know. Values are Linux's on every system (see
/// [`crate::errno`]).
pub fn errno_name(errno: i32) -> &'static str {
    crate::errno::name(errno)
}

/// What an errno means, in words, for error messages: sluice's own
/// meaning where it gives the value one (`EBADMSG`: the peer sent bytes
/// that are not a valid frame), else the system's description.
pub fn errno_text(errno: i32) -> String {
    crate::errno::text(errno)
}

/// The errno the Cocaine Node.js framework's channel reported for a
/// failure sluice reports as `errno`: the framework mapped error codes by
/// name onto the Linux table and reported `EBADF` (9) for names it did not
/// know, a host name that does not resolve among them (docs/PROTOCOL.md
/// §8.3), where sluice reports [`ENOTFOUND`](crate::errno::ENOTFOUND). A
/// channel that stands in for the framework's reports what it did.
pub fn framework_errno(errno: i32) -> i32 {
    match errno {
        crate::errno::ENOTFOUND => crate::errno::EBADF,
        e => e,
    }
}

/// `text` made safe to print on one line of a terminal or a log: control
/// characters (C0 and C1, DEL; so also newlines and escape sequences) are
/// written as `\n`, `\t`, `\r`, `\e` or `\u{..}`, so that a peer's string can neither forge lines nor drive the terminal.
/// Text without any of these is returned as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_what_could_forge_a_line_or_drive_a_terminal() {
        use super::printable;
        assert_eq!(printable("echo"), "echo");
        assert_eq!(printable("a\nsluice: forged"), "a\\nsluice: forged");
        assert_eq!(printable("\u{1b}[2J\u{7}x\u{9b}"), "\\e[2J\\u{7}x\\u{9b}");
        assert_eq!(printable("back\\slash\ttab"), "back\\slash\\ttab");
        assert_eq!(printable("ünï"), "ünï");
    }
}
