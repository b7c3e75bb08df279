//! The frame encoder (docs/PROTOCOL.md §1.3, §9.2).
//!
//! Small parts of frames (array headers, ids, short strings) are written into
//! a scratch buffer; payloads at or above a threshold are chained into the
//! output as they are, without a copy. The output is an [`OutBuf`]: a
//! `bytes::Buf` whose `chunks_vectored` feeds a vectored write.
//!
//! ```
//! use bytes::{Buf, Bytes};
//! use sluice_core::wire::{Dialect, Encoder, Message, Profile};
//!
//! let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
//! enc.message(2, &Message::Chunk { data: Bytes::from_static(b"pong") }, &[]);
//! enc.message(2, &Message::Choke, &[]);
//! let n = enc.out().remaining();
//! let out = enc.out().copy_to_bytes(n);
//! assert_eq!(&out[..], b"\x93\x02\x00\x91\xa4pong\x93\x02\x02\x90");
//! ```

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::frame::{Args, Dialect};
use super::headers::{self, Header, HeaderEntry};
use super::message::{Message, FRAMEWORK_CATEGORY};
use super::msgpack::{self, Profile};
use super::value::Value;

/// Payloads shorter than this are copied into the scratch buffer; longer
/// ones are chained by reference. Copying a few hundred bytes is cheaper
/// than another segment in the write queue.
pub const DEFAULT_COPY_MAX: usize = 1024;

/// Encoded bytes waiting to be written: a queue of segments. Implements
/// `bytes::Buf`; `chunks_vectored` yields every segment for one `writev`.
#[derive(Debug, Default)]
pub struct OutBuf {
    segs: VecDeque<Bytes>,
    tail: BytesMut,
    /// Bytes in `segs` (the tail counts separately).
    len: usize,
}

impl OutBuf {
    /// An empty queue.
    pub fn new() -> OutBuf {
        OutBuf::default()
    }

    /// Total bytes queued.
    pub fn len(&self) -> usize {
        self.len + self.tail.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the queue, keeping the scratch buffer's memory for reuse
    /// (a written-out queue can be handed back to be filled again).
    pub fn reset(&mut self) {
        self.segs.clear();
        self.len = 0;
        self.tail.clear();
        self.rewind_tail();
    }

    /// A tail written out to its last byte points past the end of its
    /// memory; reserving moves it back to the start (reusing the memory
    /// when nothing else holds it; the next write would reserve anyway), so
    /// that a live buffer is never held only by a pointer past its end,
    /// which leak checkers take for lost memory.
    fn rewind_tail(&mut self) {
        if self.tail.is_empty() && self.tail.capacity() == 0 {
            self.tail.reserve(1);
        }
    }

    /// Number of segments (a measure of write fragmentation).
    pub fn segments(&self) -> usize {
        self.segs.len() + usize::from(!self.tail.is_empty())
    }

    /// Appends pre-encoded bytes: copied if short, chained if not.
    pub fn push(&mut self, b: Bytes, copy_max: usize) {
        if b.is_empty() {
            // An empty segment would make `chunk()` empty with bytes left.
            return;
        }
        if b.len() < copy_max {
            self.tail.extend_from_slice(&b);
        } else {
            self.seal();
            self.len += b.len();
            self.segs.push_back(b);
        }
    }

    /// Takes everything queued as a list of segments (large payloads stay
    /// shared, not copied), leaving the queue empty.
    pub fn take_segments(&mut self) -> Vec<Bytes> {
        self.seal();
        self.len = 0;
        self.segs.drain(..).collect()
    }

    /// Moves the scratch tail into the segment queue.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let t = self.tail.split().freeze();
            self.len += t.len();
            self.segs.push_back(t);
        }
    }

    /// The scratch buffer, to encode small parts into.
    fn scratch(&mut self) -> &mut BytesMut {
        &mut self.tail
    }
}

impl Buf for OutBuf {
    fn remaining(&self) -> usize {
        self.len + self.tail.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.segs.front() {
            Some(s) => s,
            None => &self.tail,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.segs.front_mut() else {
                self.tail.advance(cnt);
                if self.tail.is_empty() {
                    self.rewind_tail();
                }
                return;
            };
            let n = cnt.min(front.len());
            front.advance(n);
            self.len -= n;
            cnt -= n;
            if front.is_empty() {
                self.segs.pop_front();
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for s in self.segs.iter().map(|b| &b[..]).chain(std::iter::once(&self.tail[..])) {
            if n == dst.len() {
                break;
            }
            if !s.is_empty() {
                dst[n] = IoSlice::new(s);
                n += 1;
            }
        }
        n
    }
}

/// Encodes frames of one dialect and profile into an [`OutBuf`].
#[derive(Debug)]
pub struct Encoder {
    dialect: Dialect,
    profile: Profile,
    copy_max: usize,
    out: OutBuf,
}

/// The head of a frame up to its arguments: the array header and the ids
/// in the dialect's order.
#[inline]
fn write_prefix(s: &mut impl BufMut, dialect: Dialect, session: u64, ty: u64, has_headers: bool) {
    match dialect {
        Dialect::V0 => {
            s.put_u8(0x93);
            msgpack::write_uint(s, ty);
            msgpack::write_uint(s, session);
        }
        Dialect::V1 => {
            s.put_u8(if has_headers { 0x94 } else { 0x93 });
            msgpack::write_uint(s, session);
            msgpack::write_uint(s, ty);
        }
    }
}

/// How far past a small chunk the scratch buffer is fetched into the cache.
const PREFETCH_AHEAD: usize = 512;

/// Asks for the cache line at `p` ahead of the writes that will reach it
/// (a queue of small frames writes memory that is not in the cache: each
/// line would otherwise stall a store). Only a hint: `p` may be anywhere.
#[inline(always)]
fn prefetch_for_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch does not access memory architecturally and cannot
    // fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Encoder {
    /// An encoder for `dialect`. v0 connections always use the compat
    /// profile (docs/PROTOCOL.md §1.3), whatever `profile` says.
    pub fn new(dialect: Dialect, profile: Profile) -> Encoder {
        let profile = if dialect == Dialect::V0 { Profile::Compat } else { profile };
        Encoder { dialect, profile, copy_max: DEFAULT_COPY_MAX, out: OutBuf::new() }
    }

    /// Sets the payload size from which payloads are chained, not copied.
    pub fn set_copy_max(&mut self, n: usize) {
        self.copy_max = n;
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The profile in use.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The queue of encoded bytes.
    pub fn out(&mut self) -> &mut OutBuf {
        &mut self.out
    }

    /// Writes the frame prefix up to (not including) the args.
    fn prefix(&mut self, session: u64, ty: u64, has_headers: bool) {
        let dialect = self.dialect;
        write_prefix(self.out.scratch(), dialect, session, ty, has_headers);
    }

    fn headers(&mut self, headers: &[Header]) {
        if !headers.is_empty() {
            let profile = self.profile;
            headers::write_headers(self.out.scratch(), headers, profile);
        }
    }

    fn has_headers(&self, headers: &[Header]) -> bool {
        // v0 frames have exactly three elements: headers are not sent.
        self.dialect == Dialect::V1 && !headers.is_empty()
    }

    /// Appends a byte string, chaining it if it is large.
    fn payload(&mut self, text: bool, b: &Bytes) {
        let s = self.out.scratch();
        let len = b.len() as u32;
        if text {
            msgpack::write_str_head(s, len, self.profile);
        } else {
            msgpack::write_payload_head(s, len, self.profile);
        }
        if b.len() < self.copy_max {
            // Copied into the scratch buffer: no reference taken.
            self.out.scratch().extend_from_slice(b);
        } else {
            self.out.push(b.clone(), self.copy_max);
        }
    }

    /// A chunk (v0 `chunk`, v1 `write`): the hot path of sending.
    pub fn chunk(&mut self, session: u64, data: &Bytes, headers: &[Header]) {
        if data.len() < self.copy_max && !self.has_headers(headers) {
            // The common small chunk: its head (at most 19 bytes) is built
            // on the stack and appended with the payload in two copies.
            let mut head = [0u8; 24];
            let room = {
                let mut w = &mut head[..];
                write_prefix(&mut w, self.dialect, session, super::message::Kind::Chunk.type_id(self.dialect), false);
                w.put_u8(0x91);
                msgpack::write_payload_head(&mut w, data.len() as u32, self.profile);
                w.len()
            };
            let n = head.len() - room;
            let s = self.out.scratch();
            // Room for the whole head array, so that it is copied as a
            // fixed-size block (no call), then the payload after its used part.
            s.reserve(head.len() + data.len());
            let len = s.len();
            let dst = s.spare_capacity_mut().as_mut_ptr().cast::<u8>();
            // SAFETY: `reserve` made room for `head.len() + data.len()`
            // bytes past `len`; the sources are distinct from the scratch
            // buffer; the first `n + data.len()` of them are written before
            // `set_len` covers exactly those.
            unsafe {
                std::ptr::copy_nonoverlapping(head.as_ptr(), dst, head.len());
                std::ptr::copy_nonoverlapping(data.as_ptr(), dst.add(n), data.len());
                s.set_len(len + n + data.len());
            }
            prefetch_for_write(dst.wrapping_add(PREFETCH_AHEAD));
            return;
        }
        if data.len() < self.copy_max {
            // Room for the whole frame at once (without headers, its ids
            // and payload head take at most 32 bytes).
            self.out.scratch().reserve(data.len() + 32);
        }
        let h = self.has_headers(headers);
        self.prefix(session, super::message::Kind::Chunk.type_id(self.dialect), h);
        self.out.scratch().put_u8(0x91);
        self.payload(false, data);
        if h {
            self.headers(headers);
        }
    }

    /// A typed worker-protocol message on `session` (v1 control messages
    /// belong on channel 1; the caller picks the session in both dialects).
    pub fn message(&mut self, session: u64, msg: &Message, headers: &[Header]) {
        if let Message::Chunk { data } = msg {
            return self.chunk(session, data, headers);
        }
        let h = self.has_headers(headers);
        self.prefix(session, msg.kind().type_id(self.dialect), h);
        match msg {
            Message::Handshake { uuid } => {
                self.out.scratch().put_u8(0x91);
                self.payload(true, uuid);
            }
            Message::Heartbeat | Message::Choke => self.out.scratch().put_u8(0x90),
            Message::Terminate { code, reason } => {
                let s = self.out.scratch();
                s.put_u8(0x92);
                msgpack::write_int(s, *code);
                self.payload(true, reason);
            }
            Message::Invoke { event } => {
                self.out.scratch().put_u8(0x91);
                self.payload(true, event);
            }
            Message::Chunk { .. } => {}
            Message::Error { category, code, message } => {
                let dialect = self.dialect;
                let s = self.out.scratch();
                match dialect {
                    Dialect::V0 => {
                        s.put_u8(0x92);
                        msgpack::write_int(s, *code);
                        let empty = Bytes::new();
                        self.payload(true, message.as_ref().unwrap_or(&empty));
                    }
                    Dialect::V1 => {
                        s.put_u8(if message.is_some() { 0x92 } else { 0x91 });
                        s.put_u8(0x92);
                        msgpack::write_int(s, category.unwrap_or(FRAMEWORK_CATEGORY));
                        msgpack::write_int(s, *code);
                        if let Some(m) = message {
                            self.payload(true, m);
                        }
                    }
                }
            }
        }
        if h {
            self.headers(headers);
        }
    }

    /// A generic frame whose args are already encoded (an [`Args`] from a
    /// decoded frame, or [`Args::from_raw`] of bytes packed elsewhere).
    pub fn frame(&mut self, session: u64, ty: u64, args: &Args, headers: &[Header]) {
        let h = self.has_headers(headers);
        self.prefix(session, ty, h);
        self.out.push(args.raw().clone(), self.copy_max);
        if h {
            self.headers(headers);
        }
    }

    /// A generic frame whose header list is given entry by entry (indexed or
    /// storing entries). Whoever stores entries must mirror the peer's
    /// decoder table (docs/PROTOCOL.md §4.3); [`Encoder::frame`] with resolved
    /// headers never stores.
    pub fn frame_with_entries(&mut self, session: u64, ty: u64, args: &Args, entries: &[HeaderEntry]) {
        self.prefix(session, ty, self.dialect == Dialect::V1);
        self.out.push(args.raw().clone(), self.copy_max);
        if self.dialect == Dialect::V1 {
            let profile = self.profile;
            headers::write_entries(self.out.scratch(), entries, profile);
        }
    }

    /// A generic frame with args given as values.
    pub fn frame_values(&mut self, session: u64, ty: u64, args: &[Value], headers: &[Header]) {
        let h = self.has_headers(headers);
        self.prefix(session, ty, h);
        let profile = self.profile;
        let s = self.out.scratch();
        msgpack::write_array_len(s, args.len() as u32);
        for v in args {
            v.encode(s, profile);
        }
        if h {
            self.headers(headers);
        }
    }

    /// Pre-encoded frames, sent as they are.
    pub fn raw(&mut self, bytes: Bytes) {
        self.out.push(bytes, self.copy_max);
    }

    /// Pre-encoded frames in several segments, sent as they are (short
    /// segments are copied together, long ones chained).
    pub fn raw_segments(&mut self, segments: &[Bytes]) {
        for s in segments {
            self.out.push(s.clone(), self.copy_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_out_queue_reuses_its_memory_from_the_start() {
        let mut out = OutBuf::new();
        out.push(Bytes::from_static(&[1; 27]), DEFAULT_COPY_MAX);
        let start = out.chunk().as_ptr();
        out.advance(27);
        assert!(!out.has_remaining());
        // Back at the start at once, not past the end until the next push.
        assert_eq!(out.tail.as_ptr(), start);
        out.reset();
        assert_eq!(out.tail.as_ptr(), start);
        out.push(Bytes::from_static(&[2; 20]), DEFAULT_COPY_MAX);
        assert_eq!(out.chunk().as_ptr(), start);
        assert_eq!(out.chunk(), &[2; 20]);
    }

    fn take(enc: &mut Encoder) -> Vec<u8> {
        let n = enc.out().remaining();
        enc.out().copy_to_bytes(n).to_vec()
    }

    #[test]
    fn large_payloads_are_chained_not_copied() {
        let mut enc = Encoder::new(Dialect::V1, Profile::Modern);
        let big = Bytes::from(vec![7u8; 100_000]);
        enc.chunk(3, &big, &[]);
        enc.message(3, &Message::Choke, &[]);
        let out = enc.out();
        assert_eq!(out.segments(), 3); // prefix, payload, choke
        let mut iov = [IoSlice::new(&[]); 8];
        assert_eq!(out.chunks_vectored(&mut iov), 3);
        assert_eq!(iov[1].as_ptr(), big.as_ptr(), "the payload is the caller's buffer");
        assert_eq!(out.remaining(), 9 + 100_000 + 4);
    }

    #[test]
    fn v0_is_always_compat_and_never_sends_headers() {
        let mut enc = Encoder::new(Dialect::V0, Profile::Modern);
        enc.chunk(1, &Bytes::from_static(b"ab"), &[Header::trace("trace_id", 1)]);
        assert_eq!(take(&mut enc), b"\x93\x04\x01\x91\xa2ab");
    }

    #[test]
    fn v1_error_with_and_without_message() {
        let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
        enc.message(1, &Message::Error { category: Some(7), code: 5, message: None }, &[]);
        assert_eq!(take(&mut enc), b"\x93\x01\x01\x91\x92\x07\x05");
        enc.message(2, &Message::Error { category: None, code: 200, message: Some(Bytes::from_static(b"x")) }, &[]);
        assert_eq!(take(&mut enc), b"\x93\x02\x01\x92\x92\x2a\xcc\xc8\xa1x");
    }

    #[test]
    fn empty_payloads_never_leave_an_empty_segment() {
        let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
        enc.set_copy_max(0);
        enc.message(1, &Message::Handshake { uuid: Bytes::new() }, &[]);
        enc.message(1, &Message::Heartbeat, &[]);
        let out = enc.out();
        assert!(!out.chunk().is_empty());
        assert_eq!(take(&mut enc), b"\x93\x01\x00\x91\xa0\x93\x01\x00\x90");
    }

    #[test]
    fn partial_advance_keeps_the_rest_in_order() {
        let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
        enc.set_copy_max(4);
        let a = Bytes::from_static(b"0123456789");
        enc.chunk(2, &a, &[]);
        enc.chunk(2, &a, &[]);
        let mut all = Vec::new();
        while enc.out().has_remaining() {
            let n = enc.out().chunk().len().min(3);
            all.extend_from_slice(&enc.out().chunk()[..n]);
            enc.out().advance(n);
        }
        assert_eq!(all, b"\x93\x02\x00\x91\xaa0123456789\x93\x02\x00\x91\xaa0123456789");
    }
}
