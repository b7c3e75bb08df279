//! sluice-core: a native channel for the Cocaine RPC protocol.
//!
//! * [`wire`] — the sans-IO codec for both dialects (no sockets, no clock).
//! * [`net`] — channels and servers over TCP and Unix sockets (tokio).
//! * [`roles`] — worker, engine, reconnecting sessions with resume.
//! * [`services`] — Locator, service and Logger clients; hosting services.
//! * [`errno`] — the errno values channels report.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod errno;
pub mod net;
pub mod roles;
pub mod services;
pub mod wire;

// The README's examples are compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
