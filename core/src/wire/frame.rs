//! A decoded frame: its two ids, its arguments (raw msgpack, read lazily) and
//! its resolved headers.

use bytes::Bytes;

use super::error::ValueError;
use super::headers::Header;
use super::msgpack::{self, Head, Read};
use super::value::Value;

/// The protocol dialect of a connection (docs/PROTOCOL.md §2, §3). It cannot
/// be told from the bytes (a heartbeat is `93 01 00 90` in both); the
/// application chooses it, e.g. from the worker's `--protocol` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Cocaine 0.10/0.11: `[type, session, args]`, exactly three elements.
    V0,
    /// Cocaine 0.12: `[channel, type, args]` or `[channel, type, args, headers]`.
    #[default]
    V1,
}

impl Dialect {
    /// The session (v0) or channel (v1) that carries the worker protocol's
    /// control messages — handshake, heartbeat, terminate: 0 in v0, 1 in v1
    /// (docs/PROTOCOL.md §2.2, §3.4).
    pub const fn control_session(self) -> u64 {
        match self {
            Dialect::V0 => 0,
            Dialect::V1 => super::message::CONTROL_SESSION,
        }
    }
}

/// One frame, in either dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The v0 session id or the v1 channel id.
    pub session: u64,
    /// The message type id, meaningful relative to the session's protocol.
    pub ty: u64,
    /// The arguments array.
    pub args: Args,
    /// The resolved v1 headers, in wire order (empty in v0 and when the
    /// frame has none).
    pub headers: Vec<Header>,
}

/// The arguments of a frame: the msgpack encoding of the args array, sliced
/// from the receive buffer without a copy, plus its element count.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    raw: Bytes,
    len: u32,
}

impl Args {
    /// Wraps the encoding of an array with `len` elements. The decoder has
    /// already checked the structure; [`Args::from_raw`] checks it for
    /// bytes from elsewhere.
    #[inline]
    pub(crate) fn new_unchecked(raw: Bytes, len: u32) -> Args {
        Args { raw, len }
    }

    /// Reads `raw` as one complete msgpack array.
    pub fn from_raw(raw: Bytes) -> Result<Args, ValueError> {
        let len = match msgpack::read_head(&raw) {
            Read::Done(Head::Array(n), _) => n,
            Read::Done(..) => return Err(ValueError::Truncated),
            Read::Incomplete => return Err(ValueError::Truncated),
            Read::Reserved => return Err(ValueError::Reserved),
        };
        match value_len(&raw) {
            Some(n) if n == raw.len() => Ok(Args { raw, len }),
            Some(_) => Err(ValueError::TrailingBytes),
            None => Err(ValueError::Truncated),
        }
    }

    /// The empty array.
    pub fn empty() -> Args {
        Args { raw: Bytes::from_static(&[0x90]), len: 0 }
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The msgpack encoding of the whole array.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The arguments' bytes, consumed.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    /// The first argument if it is a byte string, taking the arguments'
    /// buffer instead of slicing it (the fast way to a chunk's payload).
    /// Gives the arguments back untouched if it is not.
    #[inline]
    pub fn into_first_bytes(mut self) -> Result<Bytes, Args> {
        let Some((start, len)) = self.first_bytes_range() else { return Err(self) };
        self.raw.truncate(start + len);
        bytes::Buf::advance(&mut self.raw, start);
        Ok(self.raw)
    }

    #[inline]
    fn first_bytes_range(&self) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        // The args array header: a fixarray in every common encoding.
        if let [0x91, m @ 0xa0..=0xbf, ..] = self.raw[..] {
            let len = (m & 0x1f) as usize;
            return (2 + len <= self.raw.len()).then_some((2, len));
        }
        if let [0x91, 0xc4 | 0xd9, len, ..] = self.raw[..] {
            return (3 + len as usize <= self.raw.len()).then_some((3, len as usize));
        }
        let a = match self.raw.first()? {
            0x90..=0x9f => 1,
            _ => match msgpack::read_head(&self.raw) {
                Read::Done(_, k) => k,
                _ => return None,
            },
        };
        let (len, h) = match self.raw.get(a..)? {
            [m @ 0xa0..=0xbf, ..] => ((m & 0x1f) as usize, 1),
            [0xc4 | 0xd9, l, ..] => (*l as usize, 2),
            rest => match msgpack::read_head(rest) {
                Read::Done(h, k) if h.is_bytes() => (h.payload_len() as usize, k),
                _ => return None,
            },
        };
        (a + h + len <= self.raw.len()).then_some((a + h, len))
    }

    /// A cursor over the arguments, first to last.
    pub fn reader(&self) -> ArgReader<'_> {
        let start = match msgpack::read_head(&self.raw) {
            Read::Done(_, n) => n,
            _ => self.raw.len(),
        };
        ArgReader { raw: &self.raw, pos: start, left: self.len }
    }

    /// Every argument as a [`Value`], building at most `max` values in all
    /// (the arguments and every element of their arrays and maps):
    /// [`ValueError::TooMany`]`(max)` past it, checked while decoding, so a
    /// frame of a million nils is refused before a million values are made.
    pub fn to_values_within(&self, max: usize) -> Result<Vec<Value>, ValueError> {
        if self.len as usize > max {
            return Err(ValueError::TooMany(max));
        }
        let mut budget = max;
        let mut r = self.reader();
        let mut out = Vec::with_capacity(self.len as usize);
        while r.remaining() > 0 {
            let raw = r.raw_value().ok_or(ValueError::Truncated)?;
            let (v, n) = Value::decode_within(&raw, &mut budget).map_err(|e| match e {
                ValueError::TooMany(_) => ValueError::TooMany(max),
                e => e,
            })?;
            if n != raw.len() {
                return Err(ValueError::TrailingBytes);
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Every argument as a [`Value`].
    pub fn to_values(&self) -> Result<Vec<Value>, ValueError> {
        let mut r = self.reader();
        let mut out = Vec::with_capacity(self.len as usize);
        while r.remaining() > 0 {
            out.push(r.value()?);
        }
        Ok(out)
    }
}

/// Reads the arguments of a frame one by one. Each read consumes one
/// argument; a read of the wrong type returns `None` and consumes nothing.
#[derive(Debug, Clone)]
pub struct ArgReader<'a> {
    raw: &'a Bytes,
    pos: usize,
    left: u32,
}

impl ArgReader<'_> {
    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.left as usize
    }

    fn head(&self) -> Option<(Head, usize)> {
        if self.left == 0 {
            return None;
        }
        match msgpack::read_head(&self.raw[self.pos..]) {
            Read::Done(h, n) => Some((h, n)),
            _ => None,
        }
    }

    /// The next argument if it is a byte string of either family, as a slice
    /// of the receive buffer.
    pub fn bytes(&mut self) -> Option<Bytes> {
        let (h, n) = self.head()?;
        if !h.is_bytes() {
            return None;
        }
        let start = self.pos + n;
        let end = start.checked_add(h.payload_len() as usize).filter(|&e| e <= self.raw.len())?;
        self.pos = end;
        self.left -= 1;
        Some(self.raw.slice(start..end))
    }

    /// The next argument if it is an integer that fits an `i64`.
    pub fn int(&mut self) -> Option<i64> {
        let (h, n) = self.head()?;
        let v = match h {
            Head::Int(v) => v,
            Head::Uint(v) => i64::try_from(v).ok()?,
            _ => return None,
        };
        self.pos += n;
        self.left -= 1;
        Some(v)
    }

    /// The next argument if it is a non-negative integer.
    pub fn uint(&mut self) -> Option<u64> {
        let (h, n) = self.head()?;
        let Head::Uint(v) = h else { return None };
        self.pos += n;
        self.left -= 1;
        Some(v)
    }

    /// The next argument if it is an array: its element count. The reader
    /// then walks the elements as if they were arguments that come next.
    pub fn enter_array(&mut self) -> Option<u32> {
        let (h, n) = self.head()?;
        let Head::Array(k) = h else { return None };
        self.pos += n;
        self.left = self.left - 1 + k;
        Some(k)
    }

    /// The next argument's raw msgpack encoding.
    pub fn raw_value(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let n = value_len(&self.raw[self.pos..])?;
        let b = self.raw.slice(self.pos..self.pos + n);
        self.pos += n;
        self.left -= 1;
        Some(b)
    }

    /// The next argument as a [`Value`].
    pub fn value(&mut self) -> Result<Value, ValueError> {
        let raw = self.raw_value().ok_or(ValueError::Truncated)?;
        Value::decode_all(&raw)
    }
}

/// The length of the complete msgpack value at the start of `buf`, or `None`
/// if it is truncated or not msgpack. Iterative: nesting depth costs nothing.
pub fn value_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    let mut values: u64 = 1;
    while values > 0 {
        let Read::Done(h, n) = msgpack::read_head(buf.get(pos..)?) else {
            return None;
        };
        pos = pos.checked_add(n)?.checked_add(usize::try_from(h.payload_len()).ok()?)?;
        if pos > buf.len() {
            return None;
        }
        values = values - 1 + h.children();
    }
    Some(pos)
}
