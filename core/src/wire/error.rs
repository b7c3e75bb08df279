//! The errors of the wire codec. Every malformed input maps to one of these;
//! none of them is a panic.

use crate::errno;

/// Why the decoder stopped. After any of these the byte stream cannot be
/// trusted any more (docs/PROTOCOL.md §1.2, §4.1): the connection must be
/// closed, and every later call to the decoder returns the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A byte that is not msgpack (the reserved marker `0xc1`).
    #[error("not msgpack: reserved byte 0xc1 at stream offset {offset}")]
    Msgpack {
        /// Offset of the byte from the start of the stream.
        offset: u64,
    },
    /// A well-formed msgpack value that is not a frame of the dialect.
    #[error("invalid frame: {0}")]
    Frame(#[from] FrameError),
    /// A value whose declared size would make the frame larger than the
    /// configured maximum; refused before its bytes are buffered.
    #[error("frame of at least {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The smallest size the frame can have, given what it declared.
        declared: u64,
        /// The configured maximum frame size.
        limit: u64,
    },
    /// The header list of a v1 frame is invalid; the header table may now be
    /// out of step with the peer's.
    #[error("invalid headers: {0}")]
    Headers(#[from] HeaderError),
}

impl DecodeError {
    /// The errno a channel reports for this error: `EMSGSIZE` for an
    /// oversized frame, `EBADMSG` for everything else.
    pub fn errno(&self) -> i32 {
        match self {
            DecodeError::TooLarge { .. } => errno::EMSGSIZE,
            _ => errno::EBADMSG,
        }
    }

    /// A short stable name for the error class (the `error` field of the
    /// protocol test vectors).
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::Msgpack { .. } => "msgpack_parse_error",
            DecodeError::TooLarge { .. } => "frame_too_large",
            DecodeError::Frame(e) => e.class(),
            DecodeError::Headers(e) => e.class(),
        }
    }
}

/// How a msgpack value fails to be a frame
/// (docs/PROTOCOL.md §1.4, §2.1, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The value is not an array.
    #[error("a frame must be an array")]
    NotArray,
    /// The array has the wrong number of elements (v0: exactly 3; v1: 3 or more).
    #[error("a frame of {0} elements (v0 needs exactly 3, v1 at least 3)")]
    BadArity(u32),
    /// The first element (v0 type id, v1 channel id) is not a non-negative integer.
    #[error("the first element must be a non-negative integer")]
    BadFirstId,
    /// The second element (v0 session id, v1 type id) is not a non-negative integer.
    #[error("the second element must be a non-negative integer")]
    BadSecondId,
    /// The third element (the arguments) is not an array.
    #[error("the arguments must be an array")]
    ArgsNotArray,
    /// The fourth element of a v1 frame (the headers) is not an array.
    #[error("the headers must be an array")]
    HeadersNotArray,
}

impl FrameError {
    /// A short stable name for the error class.
    pub fn class(&self) -> &'static str {
        match self {
            FrameError::NotArray => "not_array",
            FrameError::BadArity(_) => "bad_arity",
            FrameError::BadFirstId => "bad_first_id",
            FrameError::BadSecondId => "bad_second_id",
            FrameError::ArgsNotArray => "args_not_array",
            FrameError::HeadersNotArray => "headers_not_array",
        }
    }
}

/// How a v1 header list is invalid (docs/PROTOCOL.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// An entry that is neither an index nor `[store: bool, name, value]`
    /// with a byte-string value and a byte-string or index name.
    #[error("a header entry must be an index or [store, name, value]")]
    BadEntry,
    /// An index that is 0 or past the end of the static and dynamic tables.
    #[error("header index {0} is not in the table")]
    BadIndex(u64),
    /// A tracing header (`trace_id`, `span_id`, `parent_id`) whose value is
    /// not 8 bytes long.
    #[error("a tracing header value must be 8 bytes, not {0}")]
    BadTraceValue(usize),
}

impl HeaderError {
    /// A short stable name for the error class.
    pub fn class(&self) -> &'static str {
        match self {
            HeaderError::BadEntry => "bad_header_entry",
            HeaderError::BadIndex(_) => "bad_header_index",
            HeaderError::BadTraceValue(_) => "bad_trace_value",
        }
    }
}

/// Why a byte slice could not be read as one msgpack value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value ends past the end of the input.
    #[error("truncated msgpack value")]
    Truncated,
    /// The reserved byte `0xc1`.
    #[error("not msgpack: reserved byte 0xc1")]
    Reserved,
    /// Arrays or maps nested deeper than the limit.
    #[error("msgpack value nested too deeply")]
    TooDeep,
    /// Bytes left over after the value.
    #[error("bytes left after the msgpack value")]
    TrailingBytes,
    /// More values (counting every element of every array and map) than
    /// the decoding allows ([`Args::to_values_within`](crate::wire::Args::to_values_within)).
    #[error("more than {0} msgpack values")]
    TooMany(usize),
}

/// Why a frame's arguments do not match the message its type id names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} expects arguments {expected}")]
pub struct ArgsError {
    /// The message the frame's ids name, e.g. `"chunk"`.
    pub message: &'static str,
    /// What its arguments must be, e.g. `"[data: bytes]"`.
    pub expected: &'static str,
}
