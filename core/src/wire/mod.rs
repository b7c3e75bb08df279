//! The sans-IO wire codec: bytes in, frames out; messages in, bytes out.
//!
//! Nothing here touches a socket, a runtime or a clock, so everything above
//! it can trust it and every case is tested with byte vectors.
//!
//! * [`Decoder`] — incremental, any split, linear cost, zero-copy payloads,
//!   both dialects, v1 header tables, size limits.
//! * [`Encoder`] — the compat profile byte-exactly (and the modern one),
//!   payloads chained without copies into an [`OutBuf`].
//! * [`Message`] and [`Session`] — the typed worker ↔ engine protocol.
//! * [`Frame`], [`Args`], [`Value`] — generic frames for every other service.

pub mod decoder;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod headers;
pub mod message;
pub mod msgpack;
pub mod names;
pub mod resume;
pub mod value;

pub use decoder::{Decoder, DecoderConfig, FrameRef, InPlace, DEFAULT_MAX_FRAME_SIZE};
pub use encoder::{Encoder, OutBuf};
pub use error::{ArgsError, DecodeError, FrameError, HeaderError, ValueError};
pub use frame::{ArgReader, Args, Dialect, Frame};
pub use headers::{Header, HeaderEntry, HeaderName, HeaderTable, TraceIds};
pub use message::{Dropped, Kind, Message, Role, Session, DEFAULT_MAX_SESSIONS};
pub use msgpack::Profile;
pub use names::UnknownName;
pub use value::Value;
