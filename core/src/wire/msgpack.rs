//! The msgpack primitives the codec is built from: reading one value header
//! (a "marker" and its length fields) and writing the encodings the two
//! profiles of docs/PROTOCOL.md §1.3 allow.
//!
//! Reading never looks past a value's header: a byte string's contents or an
//! array's elements are described by [`Head`], not walked, so the caller can
//! skip a multi-MiB payload in O(1).

use bytes::BufMut;

/// What a value header says about the value that follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer (any encoding, including `d0`–`d3` holding a
    /// non-negative value).
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// `float 32`.
    F32(f32),
    /// `float 64`.
    F64(f64),
    /// The str ("raw") family: `a0`–`bf`, `d9`, `da`, `db`; the length of the
    /// contents that follow.
    Str(u32),
    /// The bin family: `c4`, `c5`, `c6`; the length of the contents.
    Bin(u32),
    /// An array: the number of elements that follow.
    Array(u32),
    /// A map: the number of key/value pairs that follow.
    Map(u32),
    /// An extension value: its type and the length of its data.
    Ext(i8, u32),
}

impl Head {
    /// How many bytes of contents follow the header (byte strings and
    /// extension data; zero for everything else).
    #[inline]
    pub fn payload_len(self) -> u64 {
        match self {
            Head::Str(n) | Head::Bin(n) | Head::Ext(_, n) => n as u64,
            _ => 0,
        }
    }

    /// How many nested values follow the header (array elements, or twice the
    /// number of map pairs).
    #[inline]
    pub fn children(self) -> u64 {
        match self {
            Head::Array(n) => n as u64,
            Head::Map(n) => 2 * n as u64,
            _ => 0,
        }
    }

    /// Whether this is a byte string of either family.
    #[inline]
    pub fn is_bytes(self) -> bool {
        matches!(self, Head::Str(_) | Head::Bin(_))
    }
}

/// Outcome of reading a header from a slice that may end early.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Read {
    /// The header and its size in bytes.
    Done(Head, usize),
    /// The slice ends inside the header: more input is needed.
    Incomplete,
    /// The byte is not a msgpack marker (only `0xc1` is reserved).
    Reserved,
}

#[inline(always)]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
#[inline(always)]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
#[inline(always)]
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads the header of the value starting at `buf[0]`.
///
/// Never panics, whatever `buf` holds; an empty slice is `Incomplete`.
#[inline]
pub fn read_head(buf: &[u8]) -> Read {
    let Some(&m) = buf.first() else {
        return Read::Incomplete;
    };
    // Fixed-size forms first: they are the common case on the hot path.
    match m {
        0x00..=0x7f => return Read::Done(Head::Uint(m as u64), 1),
        0x80..=0x8f => return Read::Done(Head::Map((m & 0x0f) as u32), 1),
        0x90..=0x9f => return Read::Done(Head::Array((m & 0x0f) as u32), 1),
        0xa0..=0xbf => return Read::Done(Head::Str((m & 0x1f) as u32), 1),
        0xc0 => return Read::Done(Head::Nil, 1),
        0xc1 => return Read::Reserved,
        0xc2 => return Read::Done(Head::Bool(false), 1),
        0xc3 => return Read::Done(Head::Bool(true), 1),
        0xe0..=0xff => return Read::Done(Head::Int(m as i8 as i64), 1),
        _ => {}
    }
    let need = match m {
        0xc4 | 0xcc | 0xd0 | 0xd9 => 2,
        0xc5 | 0xcd | 0xd1 | 0xda | 0xdc | 0xde => 3,
        0xc6 | 0xca | 0xce | 0xd2 | 0xdb | 0xdd | 0xdf => 5,
        0xcb | 0xcf | 0xd3 => 9,
        0xc7 | 0xd4 | 0xd5 | 0xd6 | 0xd7 | 0xd8 => 3,
        0xc8 => 4,
        0xc9 => 6,
        // Only the variable-length markers reach this match (the fixed
        // forms returned above), so this arm is never taken.
        _ => return Read::Reserved,
    };
    if buf.len() < need {
        return Read::Incomplete;
    }
    let b = &buf[1..need];
    let head = match m {
        0xc4 => Head::Bin(b[0] as u32),
        0xc5 => Head::Bin(be16(b) as u32),
        0xc6 => Head::Bin(be32(b)),
        0xc7 => Head::Ext(b[1] as i8, b[0] as u32),
        0xc8 => Head::Ext(b[2] as i8, be16(b) as u32),
        0xc9 => Head::Ext(b[4] as i8, be32(b)),
        0xca => Head::F32(f32::from_bits(be32(b))),
        0xcb => Head::F64(f64::from_bits(be64(b))),
        0xcc => Head::Uint(b[0] as u64),
        0xcd => Head::Uint(be16(b) as u64),
        0xce => Head::Uint(be32(b) as u64),
        0xcf => Head::Uint(be64(b)),
        0xd0 => int(b[0] as i8 as i64),
        0xd1 => int(be16(b) as i16 as i64),
        0xd2 => int(be32(b) as i32 as i64),
        0xd3 => int(be64(b) as i64),
        // fixext 1/2/4/8/16: the header is marker + type, the data follows.
        0xd4 => return Read::Done(Head::Ext(b[0] as i8, 1), 2),
        0xd5 => return Read::Done(Head::Ext(b[0] as i8, 2), 2),
        0xd6 => return Read::Done(Head::Ext(b[0] as i8, 4), 2),
        0xd7 => return Read::Done(Head::Ext(b[0] as i8, 8), 2),
        0xd8 => return Read::Done(Head::Ext(b[0] as i8, 16), 2),
        0xd9 => Head::Str(b[0] as u32),
        0xda => Head::Str(be16(b) as u32),
        0xdb => Head::Str(be32(b)),
        0xdc => Head::Array(be16(b) as u32),
        0xdd => Head::Array(be32(b)),
        0xde => Head::Map(be16(b) as u32),
        0xdf => Head::Map(be32(b)),
        _ => return Read::Reserved,
    };
    Read::Done(head, need)
}

#[inline(always)]
fn int(v: i64) -> Head {
    if v >= 0 {
        Head::Uint(v as u64)
    } else {
        Head::Int(v)
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Which msgpack encodings an encoder may produce (docs/PROTOCOL.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Every byte string in the old str ("raw") family using only `a0`–`bf`,
    /// `da` and `db`: understood by every runtime and framework version.
    /// Required for v0 connections.
    #[default]
    Compat,
    /// Byte payloads in the bin family, short text with `d9`: for peers built
    /// on msgpack-c ≥ 0.5.8 (0.12 runtimes, Rust, modern Python and Node).
    Modern,
}

/// Writes an unsigned integer in its smallest encoding.
#[inline]
pub fn write_uint(out: &mut impl BufMut, v: u64) {
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v <= 0xff {
        out.put_slice(&[0xcc, v as u8]);
    } else if v <= 0xffff {
        out.put_u8(0xcd);
        out.put_u16(v as u16);
    } else if v <= 0xffff_ffff {
        out.put_u8(0xce);
        out.put_u32(v as u32);
    } else {
        out.put_u8(0xcf);
        out.put_u64(v);
    }
}

/// Writes a signed integer in its smallest encoding (non-negative values as
/// unsigned, like msgpack-c and msgpack-python do).
#[inline]
pub fn write_int(out: &mut impl BufMut, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -32 {
        out.put_u8(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        out.put_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        out.put_u8(0xd1);
        out.put_i16(v as i16);
    } else if v >= i32::MIN as i64 {
        out.put_u8(0xd2);
        out.put_i32(v as i32);
    } else {
        out.put_u8(0xd3);
        out.put_i64(v);
    }
}

/// Writes an array header for `n` elements.
#[inline]
pub fn write_array_len(out: &mut impl BufMut, n: u32) {
    if n < 16 {
        out.put_u8(0x90 | n as u8);
    } else if n <= 0xffff {
        out.put_u8(0xdc);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xdd);
        out.put_u32(n);
    }
}

/// Writes a map header for `n` pairs.
#[inline]
pub fn write_map_len(out: &mut impl BufMut, n: u32) {
    if n < 16 {
        out.put_u8(0x80 | n as u8);
    } else if n <= 0xffff {
        out.put_u8(0xde);
        out.put_u16(n as u16);
    } else {
        out.put_u8(0xdf);
        out.put_u32(n);
    }
}

/// Writes the header of a str-family value of `len` bytes. The compat
/// profile never uses `d9` (str8), which pre-2014 msgpack-c cannot parse.
#[inline]
pub fn write_str_head(out: &mut impl BufMut, len: u32, profile: Profile) {
    if len < 32 {
        out.put_u8(0xa0 | len as u8);
    } else if len <= 0xff && profile == Profile::Modern {
        out.put_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.put_u8(0xda);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0xdb);
        out.put_u32(len);
    }
}

/// Writes the header of a bin-family value of `len` bytes.
#[inline]
pub fn write_bin_head(out: &mut impl BufMut, len: u32) {
    if len <= 0xff {
        out.put_slice(&[0xc4, len as u8]);
    } else if len <= 0xffff {
        out.put_u8(0xc5);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0xc6);
        out.put_u32(len);
    }
}

/// Writes the header of a byte payload (a chunk): bin in the modern profile,
/// the str family in the compat profile.
#[inline]
pub fn write_payload_head(out: &mut impl BufMut, len: u32, profile: Profile) {
    match profile {
        Profile::Compat => write_str_head(out, len, profile),
        Profile::Modern => write_bin_head(out, len),
    }
}

/// Writes a text value (event names, reasons, messages): always the str family.
#[inline]
pub fn write_str(out: &mut impl BufMut, s: &[u8], profile: Profile) {
    write_str_head(out, s.len() as u32, profile);
    out.put_slice(s);
}

/// Writes a byte payload with [`write_payload_head`].
#[inline]
pub fn write_payload(out: &mut impl BufMut, s: &[u8], profile: Profile) {
    write_payload_head(out, s.len() as u32, profile);
    out.put_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_is_handled_without_panicking() {
        for m in 0u16..=255 {
            let m = m as u8;
            // Enough trailing bytes for any header.
            let buf = [m, 0, 0, 0, 1, 0, 0, 0, 0, 0];
            let r = read_head(&buf);
            assert_eq!(r == Read::Reserved, m == 0xc1, "marker {m:#x}");
            // Every truncation of a header is Incomplete, never a panic.
            if let Read::Done(_, n) = r {
                for k in 0..n {
                    assert_eq!(read_head(&buf[..k]), Read::Incomplete, "marker {m:#x} cut at {k}");
                }
            }
        }
    }

    #[test]
    fn ids_in_every_integer_width() {
        let cases: &[(&[u8], Head)] = &[
            (&[0x02], Head::Uint(2)),
            (&[0xcc, 0x02], Head::Uint(2)),
            (&[0xcd, 0, 2], Head::Uint(2)),
            (&[0xce, 0, 0, 0, 2], Head::Uint(2)),
            (&[0xcf, 0, 0, 0, 0, 0, 0, 0, 2], Head::Uint(2)),
            (&[0xd0, 0x02], Head::Uint(2)),
            (&[0xd3, 0, 0, 0, 0, 0, 0, 0, 2], Head::Uint(2)),
            (&[0xd0, 0xfe], Head::Int(-2)),
            (&[0xff], Head::Int(-1)),
        ];
        for (bytes, head) in cases {
            assert_eq!(read_head(bytes), Read::Done(*head, bytes.len()));
        }
    }

    #[test]
    fn compat_profile_never_writes_str8_or_bin() {
        let mut out = Vec::new();
        write_str_head(&mut out, 200, Profile::Compat);
        assert_eq!(out, [0xda, 0, 200]);
        out.clear();
        write_payload_head(&mut out, 8, Profile::Compat);
        assert_eq!(out, [0xa8]);
        out.clear();
        write_payload_head(&mut out, 8, Profile::Modern);
        assert_eq!(out, [0xc4, 8]);
        out.clear();
        write_str_head(&mut out, 200, Profile::Modern);
        assert_eq!(out, [0xd9, 200]);
    }

    #[test]
    fn integers_use_the_smallest_form() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (410, &[0xcd, 0x01, 0x9a]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-100, &[0xd0, 0x9c]),
            (-129, &[0xd1, 0xff, 0x7f]),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            write_int(&mut out, *v);
            assert_eq!(&out[..], *bytes, "{v}");
        }
    }
}
