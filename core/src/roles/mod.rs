//! Protocol roles built on [`net`](crate::net): what people write with the
//! channel.
//!
//! * [`worker`] — the app side of the engine protocol (docs/PROTOCOL.md §6):
//!   handshake, heartbeat, disown, terminate, sessions as streams.
//! * [`engine`] — the runtime side: accepts workers, checks handshakes,
//!   answers heartbeats, invokes events, terminates workers.
//! * [`session`] — a client connection that stays up: reconnection with
//!   backoff and failover, liveness, and (between two sluice peers) resume
//!   without loss or duplication, served by [`resume::ResumeServer`].
//!
//! Every role keeps its timers in a small state machine that is driven by
//! explicit instants ([`worker::Timers`], [`engine::WorkerTimers`],
//! [`session::Backoff`], [`resume::Replay`]), so their behaviour is tested
//! with a fake clock; the roles run them on the shared runtime.

mod replay;
mod sink;
mod streams;

pub mod engine;
pub mod resume;
pub mod session;
pub mod worker;

pub use engine::{Engine, EngineEvent, EngineHandler, EngineOptions, EngineStream, WorkerRef};
pub use resume::{Encoded, Peer, ResumeEvent, ResumeHandler, ResumeServer, ResumeServerOptions};
pub use session::{Backoff, Liveness, ResumeOptions, Session, SessionEvent, SessionHandler, SessionOptions};
pub use worker::{protocol_from_args, StreamError, Worker, WorkerArgsError, WorkerEvent, WorkerHandler, WorkerOptions, WorkerStream};

/// A 64-bit random number from the OS (for jitter and resume tokens).
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // No entropy source: fall back to the clock and the address space.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        return (t as u64) ^ ((&b as *const _ as u64).rotate_left(32));
    }
    u64::from_le_bytes(b)
}
