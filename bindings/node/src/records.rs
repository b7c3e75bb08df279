//! The record format events travel in to JavaScript, defined here once:
//! the kinds (exported to `lib/dispatch.js` by `_recordFormat()`, so the
//! numbers are never written twice) and the one converter from the core's
//! event model (`sluice_core::host::Event`) to records.
//!
//! A batch is a list of numbers (`recs`), one record after another, each
//! its kind then its fields; small payloads and strings are copied into one
//! byte `arena` (a field pair `off, len`), large payloads are kept as they
//! are (`bigs`, a field index).

use std::collections::HashMap;

use bytes::Bytes;
use napi_derive::napi;
use sluice_core::host::{Event, Source};
use sluice_core::net::Incoming;
use sluice_core::wire::Message;

use crate::options::endpoint_string;

/// Defines numbered constants and the table of their names.
macro_rules! numbered {
    ($table:ident: $ty:ty { $($(#[doc = $doc:literal])* $name:ident = $n:literal,)* }) => {
        $($(#[doc = $doc])* pub(crate) const $name: $ty = $n as $ty;)*
        const $table: &[(&str, u32)] = &[$((stringify!($name), $n)),*];
    };
}

numbered!(RECORDS: f64 {
    /// `[k, resumed, off, len]`: connected (the endpoint's text, if any).
    R_CONNECT = 1,
    /// `[k, sid]`.
    R_HEARTBEAT = 2,
    /// `[k, sid, off, len]`: the event name.
    R_INVOKE = 3,
    /// `[k, sid, off, len]`.
    R_CHUNK = 4,
    /// `[k, sid, big]`: a chunk as an external Buffer.
    R_CHUNK_EXT = 5,
    /// `[k, sid]`.
    R_CHOKE = 6,
    /// `[k, sid, category | NaN, code, off, len | -1]`.
    R_ERROR = 7,
    /// `[k, sid, code, off, len]`: the reason.
    R_TERMINATE = 8,
    /// `[k, sid, off, len]`: the uuid.
    R_HANDSHAKE = 9,
    /// `[k, sid, type, off, len]`: the msgpack arguments.
    R_FRAME = 10,
    /// `[k, sid, type, big]`.
    R_FRAME_EXT = 11,
    /// `[k]`.
    R_DRAIN = 12,
    /// `[k, errno, n, (hi, lo) × n]`: the connection ended; sessions left open.
    R_DISCONNECT = 13,
    /// `[k, big]`: a server's new Connection.
    R_ACCEPT = 14,
    /// `[k, hi, lo]`: the next record's id (NaN there) is above 2^53.
    R_BIGSID = 15,
    /// `[k, id]`: the next record is about object `id` (an engine's worker, a peer).
    R_ABOUT = 16,
    /// `[k]`.
    R_DISOWN = 17,
    /// `[k, attempt, delay ms, off, len]`: the endpoint.
    R_RECONNECT = 18,
    /// `[k, off, len]`: the uuid refused.
    R_REJECTED = 19,
    /// `[k]`: a resume peer is forgotten.
    R_GONE = 20,
});

numbered!(OWNERS: u32 {
    /// The framework-compatible `Channel`, v0 parameter lists.
    K_COMPAT_V0 = 0,
    /// The framework-compatible `Channel`, v1 (master) parameter lists.
    K_COMPAT_V1 = 1,
    /// A `Connection`.
    K_CONNECTION = 2,
    /// A `Server`.
    K_SERVER = 3,
    /// A `Worker`.
    K_WORKER = 4,
    /// An `Engine`.
    K_ENGINE = 5,
    /// A `Session`.
    K_SESSION = 6,
    /// A `ResumeServer`.
    K_RESUME = 7,
});

numbered!(FLAGS: u32 {
    /// The owner is finished: `'close'` is due.
    F_RELEASED = 1,
    /// A `ready` promise waits.
    F_WAITERS = 2,
});

/// Internal: the record format `lib/dispatch.js` reads at load: record
/// kinds (`R_*`), owner kinds (`K_*`) and batch flags (`F_*`) by name.
#[napi(js_name = "_recordFormat", ts_return_type = "Record<string, number>")]
pub fn record_format() -> HashMap<String, u32> {
    RECORDS.iter().chain(OWNERS).chain(FLAGS).map(|(n, v)| (n.to_string(), *v)).collect()
}

const MAX_SAFE: u64 = (1 << 53) - 1;

/// One owner's events on their way to JavaScript.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) recs: Vec<f64>,
    pub(crate) arena: Vec<u8>,
    pub(crate) bigs: Vec<Bytes>,
    /// Servers: accepted connections, started on the JavaScript thread.
    pub(crate) incoming: Vec<Incoming>,
    /// Objects (engine workers, resume peers) JavaScript has not seen yet.
    pub(crate) news: Vec<(u64, Source)>,
    /// Objects JavaScript may forget after this batch.
    pub(crate) forget: Vec<u64>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    fn id(&mut self, kind: f64, sid: u64) {
        if sid > MAX_SAFE {
            self.recs.extend_from_slice(&[R_BIGSID, (sid >> 32) as f64, (sid & 0xffff_ffff) as f64, kind, f64::NAN]);
        } else {
            self.recs.extend_from_slice(&[kind, sid as f64]);
        }
    }

    fn text(&mut self, b: &[u8]) {
        let off = self.arena.len();
        self.arena.extend_from_slice(b);
        self.recs.extend_from_slice(&[off as f64, b.len() as f64]);
    }

    /// A payload: copied into the arena, or kept whole from `zero_copy` bytes.
    fn payload(&mut self, small: f64, big: f64, sid: u64, ty: Option<u64>, data: Bytes, zero_copy: usize) {
        self.id(if data.len() >= zero_copy { big } else { small }, sid);
        self.recs.extend(ty.map(|t| t as f64));
        if data.len() >= zero_copy {
            self.recs.push(self.bigs.len() as f64);
            self.bigs.push(data);
        } else {
            self.text(&data);
        }
    }

    /// Marks the next record as about object `id`.
    pub(crate) fn about(&mut self, id: u64) {
        self.recs.extend_from_slice(&[R_ABOUT, id as f64]);
    }

    /// The one converter: appends the records of `event`.
    pub(crate) fn push(&mut self, event: Event, zero_copy: usize) {
        match event {
            Event::Connected { endpoint, resumed } => {
                self.recs.extend_from_slice(&[R_CONNECT, resumed as u8 as f64]);
                self.text(endpoint.map(|e| endpoint_string(&e)).unwrap_or_default().as_bytes());
            }
            Event::Accepted(inc) => {
                self.recs.extend_from_slice(&[R_ACCEPT, self.incoming.len() as f64]);
                self.incoming.push(*inc);
            }
            Event::Message { session, message, .. } => self.message(session, message, zero_copy),
            Event::Frame(f) => self.payload(R_FRAME, R_FRAME_EXT, f.session, Some(f.ty), f.args.into_raw(), zero_copy),
            Event::Drain => self.recs.push(R_DRAIN),
            Event::Disown => self.recs.push(R_DISOWN),
            Event::Rejected { uuid } => {
                self.recs.push(R_REJECTED);
                self.text(uuid.as_bytes());
            }
            Event::Reconnecting { attempt, endpoint, delay } => {
                self.recs.extend_from_slice(&[R_RECONNECT, attempt as f64, delay.as_secs_f64() * 1000.0]);
                self.text(endpoint_string(&endpoint).as_bytes());
            }
            Event::Disconnected { errno, sessions } => {
                self.recs.extend_from_slice(&[R_DISCONNECT, errno as f64, sessions.len() as f64]);
                for s in sessions {
                    self.recs.extend_from_slice(&[(s >> 32) as f64, (s & 0xffff_ffff) as f64]);
                }
            }
            Event::Gone => self.recs.push(R_GONE),
            _ => {}
        }
    }

    fn message(&mut self, session: u64, message: Message, zero_copy: usize) {
        match message {
            Message::Chunk { data } => self.payload(R_CHUNK, R_CHUNK_EXT, session, None, data, zero_copy),
            Message::Heartbeat => self.id(R_HEARTBEAT, session),
            Message::Choke => self.id(R_CHOKE, session),
            Message::Invoke { event } => {
                self.id(R_INVOKE, session);
                self.text(&event);
            }
            Message::Error { category, code, message } => {
                self.id(R_ERROR, session);
                self.recs.extend_from_slice(&[category.map_or(f64::NAN, |c| c as f64), code as f64]);
                match message {
                    Some(m) => self.text(&m),
                    None => self.recs.extend_from_slice(&[0.0, -1.0]),
                }
            }
            Message::Terminate { code, reason } => {
                self.id(R_TERMINATE, session);
                self.recs.push(code as f64);
                self.text(&reason);
            }
            Message::Handshake { uuid } => {
                self.id(R_HANDSHAKE, session);
                self.text(&uuid);
            }
        }
    }
}
