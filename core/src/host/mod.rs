//! What the C, Python and Node bindings share: the rules they must apply
//! alike, written once here so that a binding only marshals values between
//! its language and these functions.
//!
//! * [`options`] — the option table: every channel setting's name in each
//!   language, its kind, default, bounds and documentation, and the one
//!   check ([`Options::set`], [`Options::validate`]).
//! * [`errno_name`] / [`errno_text`] — what an errno is called and what it
//!   means, for every error message of every binding.
//! * [`protocol_from_args`] — the runtime's `--protocol` flag, both forms.
//! * Dialect, role and profile words: `FromStr` and `Display` on
//!   [`Dialect`](crate::wire::Dialect), [`Role`](crate::wire::Role) and
//!   [`Profile`](crate::wire::Profile).

pub mod options;

pub use crate::roles::protocol_from_args;
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
