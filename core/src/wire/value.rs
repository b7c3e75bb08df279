//! A dynamic msgpack value, for the arguments of generic frames (service
//! calls, locator answers) and for tools that print frames.
//!
//! Byte strings keep their family (str or bin) and are never required to be
//! UTF-8: Cocaine peers put arbitrary bytes in the str family
//! (docs/PROTOCOL.md §1.3). Decoding takes `Bytes` and returns slices of it,
//! so large strings are not copied.

use std::fmt;

use bytes::{BufMut, Bytes};

use super::error::ValueError;
use super::msgpack::{self, Head, Profile, Read};

/// Nesting deeper than this is refused by [`Value::decode`] (the frame
/// decoder itself never recurses; only conversion into a tree does).
pub const MAX_DEPTH: usize = 256;

/// One msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
    /// A str-family ("raw") byte string; not necessarily UTF-8.
    Str(Bytes),
    /// A bin-family byte string.
    Bin(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// A map, as key/value pairs in wire order.
    Map(Vec<(Value, Value)>),
    /// An extension value.
    Ext(i8, Bytes),
}

impl Value {
    /// Decodes exactly one value from `buf` and returns it with the number of
    /// bytes it took. Errors on truncated input, on the reserved byte `c1`
    /// and on nesting deeper than [`MAX_DEPTH`].
    pub fn decode(buf: &Bytes) -> Result<(Value, usize), ValueError> {
        let (mut pos, mut unlimited) = (0, usize::MAX);
        let v = decode_at(buf, &mut pos, 0, &mut unlimited)?;
        Ok((v, pos))
    }

    /// [`decode`](Self::decode) building at most `*budget` values in all
    /// (every element of every array and map counts one), which it takes
    /// off `*budget`: [`ValueError::TooMany`] past it, before the values
    /// are built. A decoded value costs about 40 bytes whatever its size on
    /// the wire (a nil is one byte), so a budget bounds the memory a frame
    /// can make its receiver spend.
    pub fn decode_within(buf: &Bytes, budget: &mut usize) -> Result<(Value, usize), ValueError> {
        let mut pos = 0;
        let v = decode_at(buf, &mut pos, 0, budget)?;
        Ok((v, pos))
    }

    /// Decodes one value that must fill `buf` exactly.
    pub fn decode_all(buf: &Bytes) -> Result<Value, ValueError> {
        let (v, n) = Value::decode(buf)?;
        if n != buf.len() {
            return Err(ValueError::TrailingBytes);
        }
        Ok(v)
    }

    /// Appends the msgpack encoding of this value. Integers take their
    /// smallest form; `Str` uses the str family (`d9` only in the modern
    /// profile); `Bin` uses bin in the modern profile and the str family in
    /// the compat profile, which has no bin.
    pub fn encode(&self, out: &mut impl BufMut, profile: Profile) {
        match self {
            Value::Nil => out.put_u8(0xc0),
            Value::Bool(b) => out.put_u8(if *b { 0xc3 } else { 0xc2 }),
            Value::Uint(v) => msgpack::write_uint(out, *v),
            Value::Int(v) => msgpack::write_int(out, *v),
            Value::F32(v) => {
                out.put_u8(0xca);
                out.put_f32(*v);
            }
            Value::F64(v) => {
                out.put_u8(0xcb);
                out.put_f64(*v);
            }
            Value::Str(s) => msgpack::write_str(out, s, profile),
            Value::Bin(s) => msgpack::write_payload(out, s, profile),
            Value::Array(items) => {
                msgpack::write_array_len(out, items.len() as u32);
                for v in items {
                    v.encode(out, profile);
                }
            }
            Value::Map(pairs) => {
                msgpack::write_map_len(out, pairs.len() as u32);
                for (k, v) in pairs {
                    k.encode(out, profile);
                    v.encode(out, profile);
                }
            }
            Value::Ext(ty, data) => {
                let n = data.len();
                match n {
                    1 => out.put_u8(0xd4),
                    2 => out.put_u8(0xd5),
                    4 => out.put_u8(0xd6),
                    8 => out.put_u8(0xd7),
                    16 => out.put_u8(0xd8),
                    n if n <= 0xff => out.put_slice(&[0xc7, n as u8]),
                    n if n <= 0xffff => {
                        out.put_u8(0xc8);
                        out.put_u16(n as u16);
                    }
                    n => {
                        out.put_u8(0xc9);
                        out.put_u32(n as u32);
                    }
                }
                out.put_i8(*ty);
                out.put_slice(data);
            }
        }
    }

    /// The encoding of this value as a new buffer.
    pub fn to_bytes(&self, profile: Profile) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out, profile);
        out.into()
    }

    /// The value with its byte strings in memory of their own. A decoded
    /// value's strings share the receive buffer they came in (a large
    /// buffer stays alive while any of them does): a value kept for long,
    /// such as a stored one, is detached first.
    pub fn detached(&self) -> Value {
        match self {
            Value::Str(b) => Value::Str(Bytes::copy_from_slice(b)),
            Value::Bin(b) => Value::Bin(Bytes::copy_from_slice(b)),
            Value::Array(items) => Value::Array(items.iter().map(Value::detached).collect()),
            Value::Map(pairs) => Value::Map(pairs.iter().map(|(k, v)| (k.detached(), v.detached())).collect()),
            Value::Ext(t, b) => Value::Ext(*t, Bytes::copy_from_slice(b)),
            other => other.clone(),
        }
    }

    /// The contents of a byte string of either family.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Str(b) | Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Uint(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        if v >= 0 {
            Value::Uint(v as u64)
        } else {
            Value::Int(v)
        }
    }
}

/// Writes a byte string readably: quoted text when it is printable UTF-8,
/// hex otherwise; long contents are cut with their length shown.
pub fn fmt_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    const SHOWN: usize = 48;
    let cut = &b[..b.len().min(SHOWN)];
    match std::str::from_utf8(cut) {
        Ok(s) if !s.chars().any(|c| c.is_control()) => write!(f, "{s:?}")?,
        _ => {
            f.write_str("0x")?;
            for x in cut {
                write!(f, "{x:02x}")?;
            }
        }
    }
    if b.len() > SHOWN {
        write!(f, "…({} bytes)", b.len())?;
    }
    Ok(())
}

impl fmt::Display for Value {
    /// A compact one-line rendering, JSON-like; `bin:` marks the bin family.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Uint(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v:?}"),
            Value::F64(v) => write!(f, "{v:?}"),
            Value::Str(b) => fmt_bytes(f, b),
            Value::Bin(b) => {
                f.write_str("bin:")?;
                fmt_bytes(f, b)
            }
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Ext(t, b) => {
                write!(f, "ext{t}:")?;
                fmt_bytes(f, b)
            }
        }
    }
}

fn take(buf: &Bytes, pos: &mut usize, n: u64) -> Result<Bytes, ValueError> {
    let end = (*pos as u64).checked_add(n).filter(|&e| e <= buf.len() as u64).ok_or(ValueError::Truncated)? as usize;
    let b = buf.slice(*pos..end);
    *pos = end;
    Ok(b)
}

fn decode_at(buf: &Bytes, pos: &mut usize, depth: usize, budget: &mut usize) -> Result<Value, ValueError> {
    // `usize::MAX`: no budget.
    if *budget != usize::MAX {
        if *budget == 0 {
            return Err(ValueError::TooMany(0));
        }
        *budget -= 1;
    }
    let head = match msgpack::read_head(&buf[*pos..]) {
        Read::Done(h, n) => {
            *pos += n;
            h
        }
        Read::Incomplete => return Err(ValueError::Truncated),
        Read::Reserved => return Err(ValueError::Reserved),
    };
    Ok(match head {
        Head::Nil => Value::Nil,
        Head::Bool(b) => Value::Bool(b),
        Head::Uint(v) => Value::Uint(v),
        Head::Int(v) => Value::Int(v),
        Head::F32(v) => Value::F32(v),
        Head::F64(v) => Value::F64(v),
        Head::Str(n) => Value::Str(take(buf, pos, n as u64)?),
        Head::Bin(n) => Value::Bin(take(buf, pos, n as u64)?),
        Head::Ext(t, n) => Value::Ext(t, take(buf, pos, n as u64)?),
        Head::Array(n) | Head::Map(n) => {
            if depth >= MAX_DEPTH {
                return Err(ValueError::TooDeep);
            }
            // Each element takes at least one byte: a declared count larger
            // than what is left cannot be honest, so do not reserve for it.
            let left = (buf.len() - *pos) as u64;
            if head.children() > left {
                return Err(ValueError::Truncated);
            }
            // Nor more than the budget allows.
            if head.children() > *budget as u64 {
                return Err(ValueError::TooMany(*budget));
            }
            if let Head::Array(_) = head {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(decode_at(buf, pos, depth + 1, budget)?);
                }
                Value::Array(items)
            } else {
                let mut pairs = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let k = decode_at(buf, pos, depth + 1, budget)?;
                    let v = decode_at(buf, pos, depth + 1, budget)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_bounds_the_values_built() {
        // [nil, [nil, nil], {1: nil}]: 1 + 1 + 1 + 2 + 1 + 2 = 8 values.
        let buf = Bytes::from_static(&[0x93, 0xc0, 0x92, 0xc0, 0xc0, 0x81, 0x01, 0xc0]);
        let mut budget = 8;
        assert!(Value::decode_within(&buf, &mut budget).is_ok());
        assert_eq!(budget, 0);
        let mut budget = 7;
        assert!(matches!(Value::decode_within(&buf, &mut budget), Err(ValueError::TooMany(_))));
        // A declared count past the budget is refused before anything is
        // reserved for it.
        let big = Bytes::from([&[0xdd, 0x00, 0x10, 0x00, 0x00][..], &[0xc0; 1 << 20]].concat());
        let mut budget = 1000;
        assert!(matches!(Value::decode_within(&big, &mut budget), Err(ValueError::TooMany(_))));
        let args = crate::wire::Args::from_raw(Bytes::from([&[0x91][..], &big[..]].concat())).unwrap();
        assert_eq!(args.to_values_within(1000), Err(ValueError::TooMany(1000)));
        assert_eq!(args.to_values_within(2 << 20).unwrap().len(), 1);
    }

    #[test]
    fn detached_values_do_not_share_the_receive_buffer() {
        let buf = Bytes::from(vec![b'x'; 4096]);
        let v = Value::Array(vec![Value::Str(buf.slice(0..3)), Value::Map(vec![(Value::Bin(buf.slice(3..5)), Value::Uint(1))])]);
        let d = v.detached();
        assert_eq!(d, v);
        let Value::Array(items) = &d else { unreachable!() };
        let inner = |v: &Value| v.as_bytes().unwrap().as_ptr() as usize;
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        assert!(!range.contains(&inner(&items[0])));
        let Value::Map(pairs) = &items[1] else { unreachable!() };
        assert!(!range.contains(&inner(&pairs[0].0)));
    }

    #[test]
    fn round_trips_in_the_modern_profile() {
        let v = Value::Array(vec![
            Value::Nil,
            Value::Bool(true),
            Value::Uint(300),
            Value::Int(-5),
            Value::F64(1.5),
            Value::from("text"),
            Value::Bin(Bytes::from_static(b"\x00\xff")),
            Value::Map(vec![(Value::Uint(0), Value::from("read"))]),
            Value::Ext(5, Bytes::from_static(b"abcd")),
        ]);
        let bytes = v.to_bytes(Profile::Modern);
        assert_eq!(Value::decode_all(&bytes).unwrap(), v);
    }

    #[test]
    fn compat_profile_turns_bin_into_str() {
        let v = Value::Bin(Bytes::from_static(b"ab"));
        let bytes = v.to_bytes(Profile::Compat);
        assert_eq!(&bytes[..], b"\xa2ab");
        assert_eq!(Value::decode_all(&bytes).unwrap(), Value::Str(Bytes::from_static(b"ab")));
    }

    #[test]
    fn displays_readably() {
        let v = Value::Array(vec![Value::from("ping"), Value::Bin(Bytes::from_static(b"\x00\xff")), Value::Int(-3)]);
        assert_eq!(v.to_string(), r#"["ping", bin:0x00ff, -3]"#);
        let long = Value::Str(Bytes::from(vec![b'a'; 100]));
        assert!(long.to_string().ends_with("…(100 bytes)"));
    }

    #[test]
    fn refuses_lies_and_depth() {
        assert_eq!(Value::decode(&Bytes::from_static(b"\xdd\xff\xff\xff\xff")), Err(ValueError::Truncated));
        assert_eq!(Value::decode(&Bytes::from_static(b"\xdb\xff\xff\xff\xff")), Err(ValueError::Truncated));
        assert_eq!(Value::decode(&Bytes::from_static(b"\xc1")), Err(ValueError::Reserved));
        let deep = Bytes::from(vec![0x91; 10_000]);
        assert_eq!(Value::decode(&deep), Err(ValueError::TooDeep));
    }
}
