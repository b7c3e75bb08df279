//! Helpers shared by the fuzz targets: how an input is cut into reads, and
//! how a decoder's output is recorded and checked for the invariants that
//! hold whatever the bytes are.

use std::sync::OnceLock;

use bytes::{Buf, Bytes};
use sluice_core::wire::{DecodeError, Decoder, Frame, Header, OutBuf};

/// Whether the check or the trigger of known core bug `n` (README.md,
/// "Known findings") is skipped, so that a run can explore past it. Set by
/// the environment: `SLUICE_FUZZ_TOLERATE=1,3` or `=all`. By default every
/// check is on, and a run fails on those bugs until core is fixed.
pub fn tolerate(n: u32) -> bool {
    static SET: OnceLock<Vec<String>> = OnceLock::new();
    let set = SET.get_or_init(|| {
        std::env::var("SLUICE_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    set.iter().any(|s| s == "all" || s == &n.to_string())
}

/// The frame limit every target's decoder uses: inputs are small, and a
/// frame that declares more is refused before anything is buffered, so the
/// memory a run takes stays bounded.
pub const MAX_FRAME: usize = 1 << 20;

/// Cuts `data` into the reads a socket might deliver. `pattern` (5 bits of
/// the input's first byte) picks how:
///
/// * mode 0: a fixed size (1, 2, 3, 4, 7, 16, 64 or 256 bytes),
/// * mode 1: a fixed cycle of sizes that includes empty reads,
/// * mode 2: pseudo-random sizes (0 included) up to a bound,
/// * mode 3: each read's size taken from the byte it starts with, so the
///   fuzzer steers the split through the content itself.
pub fn chunks(pattern: u8, data: &[u8]) -> Vec<&[u8]> {
    let mode = pattern & 3;
    let param = ((pattern >> 2) & 7) as usize;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ ((param as u64) << 32) ^ data.len() as u64;
    const CYCLE: [usize; 10] = [1, 0, 2, 5, 1, 13, 3, 0, 64, 8];
    let mut out = Vec::new();
    let mut pos = 0;
    let mut step = 0usize;
    let mut last_empty = false;
    while pos < data.len() {
        let mut size = match mode {
            0 => [1, 2, 3, 4, 7, 16, 64, 256][param],
            1 => CYCLE[(param + step) % CYCLE.len()],
            2 => {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let max = [2u64, 4, 8, 16, 32, 128, 512, 4096][param];
                (rng % (max + 1)) as usize
            }
            _ => ((data[pos].rotate_left(param as u32) & 0x0f) as usize) + 1,
        };
        step += 1;
        if size == 0 && last_empty {
            size = 1;
        }
        last_empty = size == 0;
        let end = (pos + size).min(data.len());
        out.push(&data[pos..end]);
        pos = end;
    }
    out
}

/// What the decoder said about one frame, in comparable form.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRec {
    pub session: u64,
    pub ty: u64,
    pub args_len: usize,
    pub raw: Bytes,
    pub headers: Vec<Header>,
}

impl From<&Frame> for FrameRec {
    fn from(f: &Frame) -> FrameRec {
        FrameRec {
            session: f.session,
            ty: f.ty,
            args_len: f.args.len(),
            raw: f.args.raw().clone(),
            headers: f.headers.clone(),
        }
    }
}

/// Everything one decoder produced: its frames in order and the error that
/// ended the stream, if any.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub frames: Vec<FrameRec>,
    pub error: Option<DecodeError>,
}

/// Takes every frame the decoder has ready, calling `on_frame` for each, and
/// checks the error contract: no frame after an error, and every call after
/// an error returns that same error.
pub fn drain(dec: &mut Decoder, out: &mut Outcome, mut on_frame: impl FnMut(&Frame)) {
    loop {
        match dec.decode() {
            Ok(Some(f)) => {
                assert!(out.error.is_none(), "a frame after the error {:?}: {:?}", out.error, f);
                on_frame(&f);
                out.frames.push(FrameRec::from(&f));
            }
            Ok(None) => {
                assert!(out.error.is_none(), "Ok(None) after the error {:?}", out.error);
                return;
            }
            Err(e) => {
                match &out.error {
                    None => out.error = Some(e),
                    Some(first) => {
                        // Known finding 1: a header error followed by a scan error.
                        if !tolerate(1) {
                            assert_eq!(first, &e, "the decoder's error changed after it was reported");
                        }
                    }
                }
                return;
            }
        }
    }
}

/// Reads an encoder's whole output through the `Buf` interface, in steps
/// of varying size, checking it against `chunks_vectored` and the `Buf`
/// contract (`chunk()` is empty only when nothing remains).
pub fn take_out(out: &mut OutBuf, steps: &[u8]) -> Vec<u8> {
    let total = out.remaining();
    // Known finding 3 (fixed in 3ac9c56): len() and is_empty() left out the
    // unsealed tail.
    if !tolerate(3) {
        assert_eq!(out.len(), total, "OutBuf::len() differs from remaining()");
        assert_eq!(out.is_empty(), total == 0, "OutBuf::is_empty() differs from remaining() == 0");
    }
    let mut iov = vec![std::io::IoSlice::new(&[]); out.segments() + 1];
    let n = out.chunks_vectored(&mut iov);
    let vectored: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(vectored.len(), total, "chunks_vectored does not cover remaining()");

    let mut all = Vec::with_capacity(total);
    let mut i = 0;
    while out.has_remaining() {
        let c = out.chunk();
        // Known finding 2: an empty payload chained with copy_max 0 queues an
        // empty segment; a chunk()/advance() loop would spin here forever.
        assert!(!c.is_empty(), "OutBuf::chunk() is empty while {} bytes remain", out.remaining());
        let want = steps.get(i % steps.len().max(1)).map_or(c.len(), |&s| s as usize + 1);
        let k = want.min(c.len());
        all.extend_from_slice(&c[..k]);
        out.advance(k);
        i += 1;
    }
    assert_eq!(all, vectored, "chunk()/advance() and chunks_vectored disagree");
    all
}
