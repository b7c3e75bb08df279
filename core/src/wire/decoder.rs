//! The incremental frame decoder (docs/PROTOCOL.md §1.2). One file because
//! its scan, in-place and fast paths share one state machine.
//!
//! Bytes go in at any split; frames come out in wire order. The decoder walks
//! each frame's structure once, keeping its place between calls: a byte
//! string whose header has arrived is skipped by its declared length, so a
//! multi-MiB chunk costs the same whether it arrives in one read or in a
//! thousand. Complete frames are cut from the receive buffer in batches and
//! their arguments handed out as `Bytes` slices of it, without a copy.
//!
//! ```
//! use sluice_core::wire::{Decoder, DecoderConfig, Dialect};
//!
//! let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
//! dec.feed(&[0x93, 0x02, 0x00, 0x91, 0xa4, b'p', b'i']);
//! assert!(dec.decode().unwrap().is_none()); // the frame is not complete yet
//! dec.feed(b"ng");
//! let frame = dec.decode().unwrap().unwrap();
//! assert_eq!((frame.session, frame.ty), (2, 0));
//! assert_eq!(&frame.args.reader().bytes().unwrap()[..], b"ping");
//! ```

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::error::{DecodeError, FrameError};
use super::frame::{Args, Dialect, Frame};
use super::headers::{HeaderTable, DEFAULT_TABLE_SIZE};
use super::msgpack::{self, Head, Read};

/// The default maximum frame size: 512 MiB (docs/PROTOCOL.md §1.2).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 512 << 20;

/// How many frames one scan of the buffer cuts out at most, which bounds the
/// bookkeeping kept for frames not yet handed out.
const BATCH: usize = 256;

/// Settings of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// The dialect of the connection.
    pub dialect: Dialect,
    /// Frames whose declared size exceeds this many bytes are refused with
    /// [`DecodeError::TooLarge`] as soon as the declaration is read, before
    /// their contents are buffered.
    pub max_frame_size: usize,
    /// Capacity in bytes of the v1 dynamic header table.
    pub header_table_size: usize,
    /// When set, a well-formed msgpack value that is not a valid frame is
    /// skipped and counted (see [`Decoder::dropped`]) instead of ending the
    /// stream; the byte stream is still in step. Invalid msgpack, oversized
    /// frames and header errors stay fatal.
    pub lenient: bool,
}

impl DecoderConfig {
    /// The defaults for `dialect`: 512 MiB frames, a 4096-byte header table,
    /// strict validation.
    pub const fn new(dialect: Dialect) -> DecoderConfig {
        DecoderConfig { dialect, max_frame_size: DEFAULT_MAX_FRAME_SIZE, header_table_size: DEFAULT_TABLE_SIZE, lenient: false }
    }
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig::new(Dialect::V1)
    }
}

/// Where a complete frame lies in the frozen batch.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Offset just past the frame.
    end: usize,
    first: u64,
    second: u64,
    args_start: usize,
    args_end: usize,
    args_len: u32,
    headers: Option<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    First,
    Second,
    ArgsHead,
    Args,
    HeadersHead,
    Headers,
    Extra,
    /// Lenient mode: skipping the rest of an invalid frame.
    Invalid,
}

/// The resumable walk through the frame being received. Offsets are into
/// the receive buffer.
#[derive(Debug, Clone)]
struct Scan {
    stage: Stage,
    frame_start: usize,
    pos: usize,
    arity: u32,
    first: u64,
    second: u64,
    args_start: usize,
    args_end: usize,
    args_len: u32,
    headers_start: usize,
    headers_end: usize,
    /// Values still to walk in the current element (the counting skipper:
    /// an array adds its elements, a map twice its pairs).
    values: u64,
    /// Content bytes of a byte string still to skip.
    bytes: u64,
}

impl Scan {
    fn new() -> Scan {
        Scan {
            stage: Stage::Start,
            frame_start: 0,
            pos: 0,
            arity: 0,
            first: 0,
            second: 0,
            args_start: 0,
            args_end: 0,
            args_len: 0,
            headers_start: 0,
            headers_end: 0,
            values: 0,
            bytes: 0,
        }
    }
}

enum Step {
    Frame(Layout),
    /// A frame was skipped (lenient mode).
    Skipped,
    NeedMore,
}

/// A frame decoded in place by [`Decoder::decode_in_place`]: its ids and
/// where its arguments lie in the bytes of its run
/// ([`Decoder::take_batch`]). Nothing is copied or reference-counted until
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// The v0 session id or the v1 channel id.
    pub session: u64,
    /// The message type id.
    pub ty: u64,
    args_start: usize,
    args_end: usize,
    args_len: u32,
    /// The first argument's contents when it is a byte string.
    first: Option<(usize, usize)>,
}

impl FrameRef {
    /// The msgpack encoding of the arguments array, within the run's bytes.
    pub fn args_range(&self) -> std::ops::Range<usize> {
        self.args_start..self.args_end
    }

    /// The number of arguments.
    pub fn args_len(&self) -> usize {
        self.args_len as usize
    }

    /// Where the contents of the first argument lie within the run, if it
    /// is a byte string (str or bin): a chunk's payload, an invoke's event.
    #[inline]
    pub fn first_bytes(&self) -> Option<std::ops::Range<usize>> {
        self.first.map(|(a, b)| a..b)
    }

    /// The frame as an owned [`Frame`] whose arguments share `batch` (what
    /// [`Decoder::take_batch`] returned for this frame's run).
    pub fn to_frame(&self, batch: &Bytes) -> Frame {
        Frame {
            session: self.session,
            ty: self.ty,
            args: Args::new_unchecked(batch.slice(self.args_start..self.args_end), self.args_len),
            headers: Vec::new(),
        }
    }
}

/// What [`Decoder::decode_in_place`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum InPlace {
    /// A frame without headers, left where it is in the batch.
    Ref(FrameRef),
    /// A frame with v1 headers (which are resolved as it is decoded, in
    /// wire order), owned.
    Owned(Frame),
}

/// An incremental decoder for one direction of one connection.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    buf: BytesMut,
    scan: Scan,
    /// Complete frames cut from `buf`, not yet handed out.
    batch: Bytes,
    /// `None` marks a frame lenient mode skipped, counted when reached so
    /// that the count follows wire order.
    ready: VecDeque<Option<Layout>>,
    /// An error found after the frames in `ready`; reported once they are out.
    error: Option<DecodeError>,
    /// Set once an error has been reported: every later call repeats it.
    failed: Option<DecodeError>,
    table: HeaderTable,
    /// Bytes removed from the front of `buf` so far (for error offsets).
    consumed: u64,
    dropped: u64,
    /// Bytes at the front of `buf` taken as in-place frames and not yet
    /// cut out by `take_batch`.
    run: usize,
}

impl Decoder {
    /// A decoder with the given settings and an empty buffer.
    pub fn new(config: DecoderConfig) -> Decoder {
        Decoder {
            config,
            buf: BytesMut::new(),
            scan: Scan::new(),
            batch: Bytes::new(),
            ready: VecDeque::new(),
            error: None,
            failed: None,
            table: HeaderTable::new(config.header_table_size),
            consumed: 0,
            dropped: 0,
            run: 0,
        }
    }

    /// The decoder's settings.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, to read from a socket straight into its spare
    /// capacity (`reserve`, then `BufMut` writes). Only append to it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet returned as frames (complete frames not
    /// yet taken plus the start of an unfinished one).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.run + if self.ready.is_empty() { 0 } else { self.batch.len() }
    }

    /// Bytes of an unfinished frame at the end of the stream: what is lost if
    /// the peer closes now (docs/PROTOCOL.md §1.2 step 2).
    pub fn partial(&self) -> usize {
        self.buf.len() - self.run
    }

    /// How many invalid frames lenient mode has skipped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The v1 header table this decoder keeps in step with the peer.
    pub fn header_table(&self) -> &HeaderTable {
        &self.table
    }

    /// The next complete frame: `Ok(None)` when more input is needed.
    ///
    /// An error is final: the frames before the bad bytes have all been
    /// returned first, and every later call returns the same error.
    #[inline]
    pub fn decode(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.run > 0 {
            // The run's frames were handed out in place already.
            drop(self.take_batch());
        }
        self.decode_up_to(BATCH)
    }

    /// [`decode`](Self::decode), cutting at most `max` frames at a time
    /// when it has to walk them.
    #[inline]
    fn decode_up_to(&mut self, max: usize) -> Result<Option<Frame>, DecodeError> {
        // The common case, a whole frame in the usual encodings at the front
        // of the buffer with nothing queued: cut it out on its own.
        if self.ready.is_empty() && self.scan.stage == Stage::Start && self.scan.pos == 0 && self.error.is_none() && self.failed.is_none() {
            if let Some(f) = self.fast_chunk() {
                return Ok(Some(f));
            }
            if let Some(l) = fast_frame(&self.buf, &self.config, 0) {
                let bytes = self.buf.split_to(l.end).freeze();
                self.consumed += l.end as u64;
                return self.build(bytes, l).map(Some);
            }
        }
        self.decode_slow(max)
    }

    /// The hottest shape of all: `[fixint, fixint, [byte string]]` with a
    /// short string header, whole in the buffer.
    #[inline(always)]
    fn fast_chunk(&mut self) -> Option<Frame> {
        let b = &self.buf[..];
        let head: &[u8; 6] = b.get(..6)?.try_into().ok()?;
        if head[0] != 0x93 || head[1] > 0x7f || head[2] > 0x7f || head[3] != 0x91 {
            return None;
        }
        let (start, len) = match head[4] {
            m @ 0xa0..=0xbf => (5, (m & 0x1f) as usize),
            0xc4 | 0xd9 => (6, head[5] as usize),
            0xc5 | 0xda => (7, u16::from_be_bytes([head[5], *b.get(6)?]) as usize),
            _ => return None,
        };
        let end = start + len;
        if end > b.len() || end > self.config.max_frame_size {
            return None;
        }
        let (first, second) = (head[1] as u64, head[2] as u64);
        let mut args = self.buf.split_to(end).freeze();
        self.consumed += end as u64;
        bytes::Buf::advance(&mut args, 3);
        let (session, ty) = match self.config.dialect {
            Dialect::V0 => (second, first),
            Dialect::V1 => (first, second),
        };
        Some(Frame { session, ty, args: Args::new_unchecked(args, 1), headers: Vec::new() })
    }

    /// The next frame, decoded in place where possible: a frame in the
    /// common encodings (no headers) is left in the receive buffer and
    /// described by a [`FrameRef`] whose ranges count from the start of
    /// the current run of such frames; the run is cut out, as one `Bytes`,
    /// by [`take_batch`](Self::take_batch). Any other frame comes owned,
    /// and only when no run is pending.
    ///
    /// `Ok(None)`: the run ends here (call `take_batch`, use the frames,
    /// then call this again), or, when no run is pending, more input is
    /// needed. Frames come in wire order, mixed freely with
    /// [`decode`](Self::decode) calls between runs; errors are final, as
    /// there.
    #[inline]
    pub fn decode_in_place(&mut self) -> Result<Option<InPlace>, DecodeError> {
        if self.ready.is_empty() && self.scan.stage == Stage::Start && self.scan.pos == 0 && self.error.is_none() && self.failed.is_none() {
            let run = self.run;
            if let Some(l) = fast_frame(&self.buf[run..], &self.config, run) {
                if l.headers.is_none() {
                    self.run = l.end;
                    let (session, ty) = match self.config.dialect {
                        Dialect::V0 => (l.second, l.first),
                        Dialect::V1 => (l.first, l.second),
                    };
                    let first = if l.args_len > 0 { first_bytes(&self.buf[..l.args_end], l.args_start) } else { None };
                    return Ok(Some(InPlace::Ref(FrameRef {
                        session,
                        ty,
                        args_start: l.args_start,
                        args_end: l.args_end,
                        args_len: l.args_len,
                        first,
                    })));
                }
            }
        }
        if self.run > 0 {
            return Ok(None);
        }
        // One frame the general way (a frame with headers, or one that
        // came in pieces); the next may be in place again.
        Ok(self.decode_up_to(1)?.map(InPlace::Owned))
    }

    /// Extends the current run of in-place frames (see
    /// [`decode_in_place`](Self::decode_in_place)) as far as it goes,
    /// calling `f` for each frame; `f` returning `false` ends the run after
    /// that frame. Returns how many frames were taken: 0 when the next
    /// frame is not one for a run (take it with `decode_in_place`) or more
    /// input is needed.
    #[inline]
    pub fn decode_run(&mut self, mut f: impl FnMut(FrameRef) -> bool) -> usize {
        if !(self.ready.is_empty()
            && self.scan.stage == Stage::Start
            && self.scan.pos == 0
            && self.error.is_none()
            && self.failed.is_none())
        {
            return 0;
        }
        let mut taken = 0;
        let v1 = self.config.dialect == Dialect::V1;
        let max = self.config.max_frame_size;
        loop {
            let run = self.run;
            // The common frame first: one byte-string argument, no headers
            // (a chunk, an invoke), read in one pass.
            if let Some((first, second, args, data)) = fast_single_bin(&self.buf[run..], max) {
                let end = run + data.1;
                self.run = end;
                taken += 1;
                let (session, ty) = if v1 { (first, second) } else { (second, first) };
                let more =
                    f(FrameRef { session, ty, args_start: run + args, args_end: end, args_len: 1, first: Some((run + data.0, end)) });
                if !more {
                    break;
                }
                continue;
            }
            let Some(l) = fast_frame(&self.buf[run..], &self.config, run) else { break };
            if l.headers.is_some() {
                break;
            }
            self.run = l.end;
            taken += 1;
            let (session, ty) = if v1 { (l.first, l.second) } else { (l.second, l.first) };
            let first = if l.args_len > 0 { first_bytes(&self.buf[..l.args_end], l.args_start) } else { None };
            let more = f(FrameRef { session, ty, args_start: l.args_start, args_end: l.args_end, args_len: l.args_len, first });
            if !more {
                break;
            }
        }
        taken
    }

    /// Cuts the current run of in-place frames out of the receive buffer
    /// (empty if there is none): the bytes their [`FrameRef`]s point into.
    pub fn take_batch(&mut self) -> Bytes {
        if self.run == 0 {
            return Bytes::new();
        }
        let n = std::mem::take(&mut self.run);
        self.consumed += n as u64;
        self.buf.split_to(n).freeze()
    }

    #[inline(never)]
    fn decode_slow(&mut self, max: usize) -> Result<Option<Frame>, DecodeError> {
        loop {
            match self.ready.pop_front() {
                Some(Some(l)) => {
                    let bytes = self.batch.clone();
                    return self.build(bytes, l).map(Some);
                }
                Some(None) => {
                    self.dropped += 1;
                    continue;
                }
                None => {}
            }
            if let Some(e) = self.error.take() {
                self.failed = Some(e.clone());
                return Err(e);
            }
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if !self.scan_batch(max) {
                // Let go of the last batch: while it is held the receive
                // buffer is shared, and the next read could not reuse it.
                self.batch = Bytes::new();
                return Ok(None);
            }
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.ready.clear();
        // A later error found by the same scan is moot: this one is final.
        self.error = None;
        self.failed = Some(e.clone());
        e
    }

    /// Makes the frame whose layout is `l` in `bytes` (which it consumes:
    /// the args become `bytes` itself, narrowed, without another slice).
    #[inline]
    fn build(&mut self, mut bytes: Bytes, l: Layout) -> Result<Frame, DecodeError> {
        let headers = match l.headers {
            None => Vec::new(),
            Some((a, b)) => {
                let list = bytes.slice(a..b);
                match self.table.decode_list(&list) {
                    Ok(h) => h,
                    Err(e) => return Err(self.fail(e.into())),
                }
            }
        };
        let (session, ty) = match self.config.dialect {
            Dialect::V0 => (l.second, l.first),
            Dialect::V1 => (l.first, l.second),
        };
        bytes.truncate(l.args_end);
        bytes.advance(l.args_start);
        Ok(Frame { session, ty, args: Args::new_unchecked(bytes, l.args_len), headers })
    }

    /// Walks as many complete frames as the buffer holds (up to a batch),
    /// cuts them out in one piece and queues their layouts. Returns whether
    /// anything (frames or an error) became ready.
    fn scan_batch(&mut self, max: usize) -> bool {
        let mut end = 0;
        while self.ready.len() < max {
            match self.step() {
                Ok(Step::Frame(l)) => {
                    self.ready.push_back(Some(l));
                    end = self.scan.pos;
                }
                Ok(Step::Skipped) => {
                    self.ready.push_back(None);
                    end = self.scan.pos;
                }
                Ok(Step::NeedMore) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        if end > 0 {
            // One cut per batch: every frame's args become slices of it.
            self.batch = self.buf.split_to(end).freeze();
            self.consumed += end as u64;
            self.scan.pos -= end;
            self.scan.frame_start = self.scan.frame_start.saturating_sub(end);
            self.scan.args_start = self.scan.args_start.saturating_sub(end);
            self.scan.args_end = self.scan.args_end.saturating_sub(end);
            self.scan.headers_start = self.scan.headers_start.saturating_sub(end);
            self.scan.headers_end = self.scan.headers_end.saturating_sub(end);
        }
        !self.ready.is_empty() || self.error.is_some()
    }

    /// Reads one value header at the scan position.
    #[inline(always)]
    fn head(&mut self) -> Result<Option<Head>, DecodeError> {
        match msgpack::read_head(&self.buf[self.scan.pos..]) {
            Read::Done(h, n) => {
                self.scan.pos += n;
                Ok(Some(h))
            }
            Read::Incomplete => Ok(None),
            Read::Reserved => Err(DecodeError::Msgpack { offset: self.consumed + self.scan.pos as u64 }),
        }
    }

    /// Refuses a frame whose declared contents cannot fit the limit. `extra`
    /// counts elements of the frame still to come after the current one.
    #[inline(always)]
    fn check_size(&self, extra: u64) -> Result<(), DecodeError> {
        let s = &self.scan;
        let declared = (s.pos - s.frame_start) as u64 + s.bytes + s.values + extra;
        let limit = self.config.max_frame_size as u64;
        if declared > limit {
            return Err(DecodeError::TooLarge { declared, limit });
        }
        Ok(())
    }

    /// Skips values and bytes until the current element is walked. Returns
    /// whether it is.
    #[inline(always)]
    fn skip(&mut self) -> Result<bool, DecodeError> {
        loop {
            if self.scan.bytes > 0 {
                let avail = (self.buf.len() - self.scan.pos) as u64;
                let n = avail.min(self.scan.bytes);
                self.scan.pos += n as usize;
                self.scan.bytes -= n;
                if self.scan.bytes > 0 {
                    return Ok(false);
                }
            }
            if self.scan.values == 0 {
                return Ok(true);
            }
            let Some(h) = self.head()? else { return Ok(false) };
            self.scan.values = self.scan.values - 1 + h.children();
            self.scan.bytes = h.payload_len();
            if self.scan.values > 0 || self.scan.bytes > 0 {
                self.check_size(0)?;
            }
        }
    }

    /// An element that makes the frame invalid: fatal, or (lenient) skip the
    /// rest of the frame. `head` is the offending element's header, already
    /// consumed; `after` the number of elements of the frame after it.
    fn invalid(&mut self, e: FrameError, head: Head, after: u64) -> Result<(), DecodeError> {
        if !self.config.lenient {
            return Err(e.into());
        }
        self.scan.stage = Stage::Invalid;
        self.scan.values = head.children() + after;
        self.scan.bytes = head.payload_len();
        self.check_size(0)
    }

    /// An element that must be a non-negative integer id.
    #[inline(always)]
    fn id(&mut self, e: FrameError, after: u64) -> Result<Option<u64>, DecodeError> {
        match self.head()? {
            None => Ok(None),
            Some(Head::Uint(v)) => Ok(Some(v)),
            Some(h) => self.invalid(e, h, after).map(|_| None),
        }
    }

    /// Advances the walk of the current frame as far as the buffer allows.
    fn step(&mut self) -> Result<Step, DecodeError> {
        loop {
            match self.scan.stage {
                Stage::Start => {
                    self.scan.frame_start = self.scan.pos;
                    if let Some(l) = fast_frame(&self.buf[self.scan.pos..], &self.config, self.scan.pos) {
                        self.scan.pos = l.end;
                        return Ok(Step::Frame(l));
                    }
                    let Some(h) = self.head()? else { return Ok(Step::NeedMore) };
                    let Head::Array(n) = h else {
                        self.invalid(FrameError::NotArray, h, 0)?;
                        continue;
                    };
                    let ok = match self.config.dialect {
                        Dialect::V0 => n == 3,
                        Dialect::V1 => n >= 3,
                    };
                    if !ok {
                        self.invalid(FrameError::BadArity(n), h, 0)?;
                        continue;
                    }
                    self.scan.arity = n;
                    self.scan.values = 0;
                    self.scan.bytes = 0;
                    self.check_size(n as u64)?;
                    self.scan.stage = Stage::First;
                }
                Stage::First => {
                    let after = self.scan.arity as u64 - 1;
                    match self.id(FrameError::BadFirstId, after)? {
                        Some(v) => {
                            self.scan.first = v;
                            self.scan.stage = Stage::Second;
                        }
                        None if self.scan.stage == Stage::Invalid => continue,
                        None => return Ok(Step::NeedMore),
                    }
                }
                Stage::Second => {
                    let after = self.scan.arity as u64 - 2;
                    match self.id(FrameError::BadSecondId, after)? {
                        Some(v) => {
                            self.scan.second = v;
                            self.scan.stage = Stage::ArgsHead;
                        }
                        None if self.scan.stage == Stage::Invalid => continue,
                        None => return Ok(Step::NeedMore),
                    }
                }
                Stage::ArgsHead => {
                    self.scan.args_start = self.scan.pos;
                    let Some(h) = self.head()? else { return Ok(Step::NeedMore) };
                    let Head::Array(n) = h else {
                        self.invalid(FrameError::ArgsNotArray, h, self.scan.arity as u64 - 3)?;
                        continue;
                    };
                    self.scan.args_len = n;
                    self.scan.values = n as u64;
                    self.check_size(self.scan.arity as u64 - 3)?;
                    self.scan.stage = Stage::Args;
                }
                Stage::Args => {
                    if !self.skip()? {
                        return Ok(Step::NeedMore);
                    }
                    self.scan.args_end = self.scan.pos;
                    if self.scan.arity == 3 {
                        return Ok(self.complete(None));
                    }
                    self.scan.stage = Stage::HeadersHead;
                }
                Stage::HeadersHead => {
                    self.scan.headers_start = self.scan.pos;
                    let Some(h) = self.head()? else { return Ok(Step::NeedMore) };
                    let Head::Array(n) = h else {
                        self.invalid(FrameError::HeadersNotArray, h, self.scan.arity as u64 - 4)?;
                        continue;
                    };
                    self.scan.values = n as u64;
                    self.check_size(self.scan.arity as u64 - 4)?;
                    self.scan.stage = Stage::Headers;
                }
                Stage::Headers => {
                    if !self.skip()? {
                        return Ok(Step::NeedMore);
                    }
                    self.scan.headers_end = self.scan.pos;
                    if self.scan.arity == 4 {
                        return Ok(self.complete(Some(self.scan.pos)));
                    }
                    // Elements after the 4th are walked and ignored (§3.1).
                    self.scan.values = self.scan.arity as u64 - 4;
                    self.scan.stage = Stage::Extra;
                }
                Stage::Extra => {
                    if !self.skip()? {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(self.complete(Some(self.scan.headers_end)));
                }
                Stage::Invalid => {
                    if !self.skip()? {
                        return Ok(Step::NeedMore);
                    }
                    self.scan.stage = Stage::Start;
                    return Ok(Step::Skipped);
                }
            }
        }
    }

    fn complete(&mut self, headers_end: Option<usize>) -> Step {
        let s = &mut self.scan;
        s.stage = Stage::Start;
        Step::Frame(Layout {
            end: s.pos,
            first: s.first,
            second: s.second,
            args_start: s.args_start,
            args_end: s.args_end,
            args_len: s.args_len,
            headers: headers_end.map(|e| (s.headers_start, e)),
        })
    }
}

/// Where the contents of the first element of the array at `b[a..]` lie,
/// if it is a byte string. `b` ends where the array does; its structure
/// has been checked.
#[inline(always)]
fn first_bytes(b: &[u8], a: usize) -> Option<(usize, usize)> {
    let p = match *b.get(a)? {
        0x90..=0x9f => a + 1,
        0xdc => a + 3,
        0xdd => a + 5,
        _ => return None,
    };
    let m = *b.get(p)?;
    let (h, len) = match m {
        0xa0..=0xbf => (1, (m & 0x1f) as usize),
        0xc4 | 0xd9 => (2, *b.get(p + 1)? as usize),
        0xc5 | 0xda => (3, u16::from_be_bytes(b.get(p + 1..p + 3)?.try_into().ok()?) as usize),
        0xc6 | 0xdb => (5, u32::from_be_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as usize),
        _ => return None,
    };
    let start = p + h;
    let end = start.checked_add(len)?;
    (end <= b.len()).then_some((start, end))
}

/// The most common frame, `[id, id, [<bin or str>]]` (a fixarray of
/// three, ids as positive fixints or uint 8/16/32, one byte string as the
/// argument), complete in `b` and within `max` bytes: returns its two ids,
/// where its args array starts, and where the string's contents lie (they
/// end the frame). Any other shape gives `None` (and goes the general way).
#[inline(always)]
fn fast_single_bin(b: &[u8], max: usize) -> Option<(u64, u64, usize, (usize, usize))> {
    if b.len() < 5 || b[0] != 0x93 {
        return None;
    }
    let mut p = 1;
    let first = fast_id(b, &mut p)?;
    let second = fast_id(b, &mut p)?;
    if *b.get(p)? != 0x91 {
        return None;
    }
    let h = p + 1;
    let m = *b.get(h)?;
    let (start, len) = match m {
        0xc4 | 0xd9 => (h + 2, *b.get(h + 1)? as usize),
        0xa0..=0xbf => (h + 1, (m & 0x1f) as usize),
        0xc5 | 0xda => (h + 3, u16::from_be_bytes(b.get(h + 1..h + 3)?.try_into().ok()?) as usize),
        0xc6 | 0xdb => (h + 5, u32::from_be_bytes(b.get(h + 1..h + 5)?.try_into().ok()?) as usize),
        _ => return None,
    };
    let end = start + len;
    (end <= b.len() && end <= max).then_some((first, second, p, (start, end)))
}

/// A non-negative integer id in its common encodings, or `None`.
#[inline(always)]
fn fast_id(b: &[u8], p: &mut usize) -> Option<u64> {
    let m = *b.get(*p)?;
    let (v, n) = match m {
        0x00..=0x7f => (m as u64, 1),
        0xcc => (*b.get(*p + 1)? as u64, 2),
        0xcd => (u16::from_be_bytes(b.get(*p + 1..*p + 3)?.try_into().ok()?) as u64, 3),
        0xce => (u32::from_be_bytes(b.get(*p + 1..*p + 5)?.try_into().ok()?) as u64, 5),
        0xcf => (u64::from_be_bytes(b.get(*p + 1..*p + 9)?.try_into().ok()?), 9),
        _ => return None,
    };
    *p += n;
    Some(v)
}

/// The length of the complete value at `b[p..]` when it is a short scalar
/// or byte string (the common argument), else the general walk.
#[inline(always)]
fn fast_skip(b: &[u8], p: usize) -> Option<usize> {
    let m = *b.get(p)?;
    let n = match m {
        0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 1,
        0xa0..=0xbf => 1 + (m & 0x1f) as usize,
        0xc4 | 0xd9 => 2 + *b.get(p + 1)? as usize,
        0xc5 | 0xda => 3 + u16::from_be_bytes(b.get(p + 1..p + 3)?.try_into().ok()?) as usize,
        0xc6 | 0xdb => 5 + u32::from_be_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as usize,
        _ => super::frame::value_len(b.get(p..)?)?,
    };
    (p + n <= b.len()).then_some(p + n)
}

/// Decodes a frame that is entirely in `b` and uses the common encodings
/// (a fixarray frame with 3 or 4 elements, a fixarray of args) in one
/// straight pass. Anything else, including a frame not yet complete, is
/// left to the resumable walk: the fast path never decides an error.
#[inline]
fn fast_frame(b: &[u8], config: &DecoderConfig, base: usize) -> Option<Layout> {
    let arity = match *b.first()? {
        0x93 => 3,
        0x94 if config.dialect == Dialect::V1 => 4,
        _ => return None,
    };
    let mut p = 1;
    let first = fast_id(b, &mut p)?;
    let second = fast_id(b, &mut p)?;
    let args_start = p;
    let args_len = match *b.get(p)? {
        m @ 0x90..=0x9f => (m & 0x0f) as u32,
        _ => return None,
    };
    p += 1;
    for _ in 0..args_len {
        p = fast_skip(b, p)?;
    }
    let args_end = p;
    let headers = if arity == 4 {
        if !matches!(*b.get(p)?, 0x90..=0x9f | 0xdc | 0xdd) {
            return None;
        }
        p = p + super::frame::value_len(b.get(p..)?)?;
        Some((base + args_end, base + p))
    } else {
        None
    };
    if p > config.max_frame_size {
        return None;
    }
    Some(Layout { end: base + p, first, second, args_start: base + args_start, args_end: base + args_end, args_len, headers })
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
