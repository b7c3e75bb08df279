//! The network layer: channels over TCP and Unix sockets, servers, the one
//! shared tokio runtime.
//!
//! ```no_run
//! use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event};
//! use sluice_core::wire::{Dialect, Message, Role};
//!
//! let config = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
//! let ch = Channel::connect(Endpoint::parse("/run/cocaine/app.123").unwrap(), config, |ch: &Channel, ev| match ev {
//!     Event::Connected => {
//!         ch.send(1, &Message::Handshake { uuid: "6d0b4c1e".into() }).unwrap();
//!     }
//!     Event::Message { session, message: Message::Invoke { event }, .. } => {
//!         println!("invoke {event:?} on {session}");
//!     }
//!     Event::SocketError(errno) => eprintln!("connection lost: errno {errno}"),
//!     _ => {}
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod channel;
mod config;
pub(crate) mod poller;
pub mod runtime;
mod server;

pub use channel::{Channel, Chunk, DispatchError, Event, Handler, SendError};
pub use config::{ChannelConfig, Delivery, Endpoint};
pub use server::{AcceptHandler, Incoming, Server};

use crate::errno;

/// The errno (Linux numbering, docs/PROTOCOL.md §8.3) for an I/O error.
pub fn errno_of(e: &std::io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => errno::ENOENT,
        PermissionDenied => errno::EACCES,
        ConnectionRefused => errno::ECONNREFUSED,
        ConnectionReset | ConnectionAborted => errno::ECONNRESET,
        BrokenPipe => errno::EPIPE,
        UnexpectedEof => errno::ESHUTDOWN,
        TimedOut => errno::ETIMEDOUT,
        _ => errno::EBADF,
    }
}
