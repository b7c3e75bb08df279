//! Decoder throughput on the two standard streams.
//!
//! * stream A: 1,000,000 v1 frames `[7, 0, [<64-byte bin>]]`
//!   (`93 07 00 91 c4 40` + 64 bytes each), concatenated;
//! * stream B: 20,000 v1 frames `[7, 0, [<65536-byte bin>]]`
//!   (`93 07 00 91 c6 00 01 00 00` + 65536 bytes each), concatenated (1.3 GB).
//!
//! Contenders, each over the whole stream per iteration:
//!
//! * `sluice` — `Decoder` (v1, default config) fed in 256 KiB reads, the way
//!   a socket read loop appends to `buffer_mut()`; every frame's payload is
//!   taken as a zero-copy `Bytes` slice and black-boxed.
//! * `sluice-in-place` — the same reads through the in-place path of a
//!   channel's read loop (`decode_run`/`take_batch`): payloads read where
//!   they lie, one `Bytes` per run of frames.
//! * `rmpv` — `rmpv::decode::read_value` from a `&[u8]` cursor, message by
//!   message (allocates the arrays and copies every payload).
//! * `memscan` — a plain read pass summing the stream as u64 words: the
//!   memory-read-speed reference.
//! * `memcpy256k` — copying the stream 256 KiB at a time into a reused
//!   buffer: the cost of the copy a read(2) makes, which `sluice` includes.
//! * `minimal` — a hand-written parser of exactly this frame shape over the
//!   contiguous stream, yielding `&[u8]` payloads: the upper bound for any
//!   decoder (no copy in, no refcounting out).
//! * `minimal-bytes` — the same, yielding `Bytes::slice`s of one `Bytes`:
//!   the floor for zero-copy refcounted payloads.
//!
//! Criterion measures each contender with `Throughput::Elements` (messages).
//! Afterwards `main` times every contender again with a simple loop (one
//! warm-up run, then 5 runs, median) and prints a self-contained summary
//! with messages/s, payload and wire GB/s and the ratios to rmpv and memscan.
//!
//! Run: `CARGO_INCREMENTAL=0 cargo bench -p sluice-core --bench decode`.
//! Without `--bench` (e.g. `cargo test --benches`) the streams are shrunk and
//! the summary is skipped, so the smoke run stays fast.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput};
use sluice_core::wire::{Decoder, DecoderConfig, Dialect};

/// The size of one simulated socket read.
const READ: usize = 256 * 1024;

/// Runs of the summary's own timing loop (after one warm-up run).
const SUMMARY_RUNS: usize = 5;

struct Stream {
    name: &'static str,
    msgs: u64,
    payload_len: usize,
    /// The stream, one buffer shared by every contender (`minimal-bytes`
    /// slices it; the others read it as `&[u8]`).
    data: Bytes,
}

impl Stream {
    fn new(name: &'static str, msgs: u64, payload_len: usize) -> Stream {
        let mut head = vec![0x93, 0x07, 0x00, 0x91];
        if payload_len < 0x100 {
            head.extend_from_slice(&[0xc4, payload_len as u8]);
        } else if payload_len < 0x1_0000 {
            head.push(0xc5);
            head.extend_from_slice(&(payload_len as u16).to_be_bytes());
        } else {
            head.push(0xc6);
            head.extend_from_slice(&(payload_len as u32).to_be_bytes());
        }
        let frame_len = head.len() + payload_len;
        let mut data = Vec::with_capacity(frame_len * msgs as usize);
        // A non-constant payload pattern, so nothing is a zero page.
        let pattern: Vec<u8> = (0..payload_len).map(|i| (i * 31 + 7) as u8).collect();
        for i in 0..msgs {
            data.extend_from_slice(&head);
            let at = data.len();
            data.extend_from_slice(&pattern);
            data[at] = i as u8;
        }
        Stream { name, msgs, payload_len, data: Bytes::from(data) }
    }

    fn header_len(&self) -> usize {
        self.data.len() / self.msgs as usize - self.payload_len
    }

    fn payload_bytes(&self) -> u64 {
        self.msgs * self.payload_len as u64
    }

    fn describe(&self) -> String {
        format!(
            "stream {}: {} msgs [7, 0, [<{}-byte bin>]] ({}-byte header), {:.1} MB wire, {:.1} MB payload",
            self.name,
            self.msgs,
            self.payload_len,
            self.header_len(),
            self.data.len() as f64 / 1e6,
            self.payload_bytes() as f64 / 1e6,
        )
    }
}

/// (messages, payload bytes) seen by a contender: checked against the stream
/// once, and black-boxed in every run.
type Seen = (u64, u64);

fn sluice(data: &[u8]) -> Seen {
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let (mut n, mut bytes) = (0u64, 0u64);
    for chunk in data.chunks(READ) {
        // What a socket read does: one copy into the decoder's buffer.
        dec.buffer_mut().extend_from_slice(chunk);
        while let Some(f) = dec.decode().unwrap() {
            let payload: Bytes = f.args.into_first_bytes().unwrap();
            n += 1;
            bytes += payload.len() as u64;
            black_box(payload);
        }
    }
    assert_eq!(dec.buffered(), 0);
    (n, bytes)
}

/// As `sluice`, through the in-place path a channel's read loop takes:
/// payloads read where they lie in the receive buffer, one `Bytes` cut per
/// run of frames instead of one per frame.
fn sluice_in_place(data: &[u8]) -> Seen {
    use sluice_core::wire::InPlace;
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let (mut n, mut bytes) = (0u64, 0u64);
    for chunk in data.chunks(READ) {
        dec.buffer_mut().extend_from_slice(chunk);
        loop {
            let mut seen = 0u64;
            let mut len = 0u64;
            let k = dec.decode_run(|r| {
                let b = r.first_bytes().unwrap();
                seen += 1;
                len += b.len() as u64;
                true
            });
            if k > 0 {
                black_box(dec.take_batch());
                n += seen;
                bytes += len;
                continue;
            }
            match dec.decode_in_place().unwrap() {
                Some(InPlace::Owned(f)) => {
                    let payload: Bytes = f.args.into_first_bytes().unwrap();
                    n += 1;
                    bytes += payload.len() as u64;
                    black_box(payload);
                }
                Some(InPlace::Ref(_)) => unreachable!("decode_run takes these"),
                None => break,
            }
        }
    }
    assert_eq!(dec.buffered(), 0);
    (n, bytes)
}

fn rmpv(data: &[u8]) -> Seen {
    use rmpv::Value;
    let mut rd = data;
    let (mut n, mut bytes) = (0u64, 0u64);
    while !rd.is_empty() {
        let v = rmpv::decode::read_value(&mut rd).unwrap();
        let Value::Array(items) = &v else { panic!("not an array") };
        let Value::Array(args) = &items[2] else { panic!("args not an array") };
        let Value::Binary(payload) = &args[0] else { panic!("not bin") };
        n += 1;
        bytes += payload.len() as u64;
        black_box(&v);
    }
    (n, bytes)
}

fn memscan(data: &[u8]) -> u64 {
    let words = data.chunks_exact(8);
    let tail = words.remainder().iter().map(|&b| b as u64).sum::<u64>();
    words.fold(tail, |acc, w| acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap())))
}

fn memcpy256k(data: &[u8], buf: &mut Vec<u8>) -> u64 {
    let mut total = 0u64;
    for chunk in data.chunks(READ) {
        buf.clear();
        buf.extend_from_slice(chunk);
        black_box(&mut *buf);
        total += buf.len() as u64;
    }
    total
}

/// Parses one `[fixint, fixint, [bin]]` frame at `d`: (payload start, end).
#[inline(always)]
fn minimal_frame(d: &[u8]) -> (usize, usize) {
    assert!(d.len() >= 6 && d[0] == 0x93 && d[1] < 0x80 && d[2] < 0x80 && d[3] == 0x91, "bad frame");
    let (len, h) = match d[4] {
        0xc4 => (d[5] as usize, 6),
        0xc5 => (u16::from_be_bytes([d[5], d[6]]) as usize, 7),
        0xc6 => (u32::from_be_bytes([d[5], d[6], d[7], d[8]]) as usize, 9),
        _ => panic!("not bin"),
    };
    (h, h + len)
}

fn minimal(data: &[u8]) -> Seen {
    let (mut p, mut n, mut bytes) = (0usize, 0u64, 0u64);
    while p < data.len() {
        let (s, e) = minimal_frame(&data[p..]);
        let payload = &data[p + s..p + e];
        n += 1;
        bytes += payload.len() as u64;
        black_box(payload);
        p += e;
    }
    (n, bytes)
}

fn minimal_bytes(data: &Bytes) -> Seen {
    let (mut p, mut n, mut bytes) = (0usize, 0u64, 0u64);
    while p < data.len() {
        let (s, e) = minimal_frame(&data[p..]);
        let payload = data.slice(p + s..p + e);
        n += 1;
        bytes += payload.len() as u64;
        black_box(payload);
        p += e;
    }
    (n, bytes)
}

const CONTENDERS: [&str; 7] = ["sluice", "sluice-in-place", "rmpv", "memscan", "memcpy256k", "minimal", "minimal-bytes"];

/// One full pass of contender `name` over `s`.
fn run(name: &str, s: &Stream, scratch: &mut Vec<u8>) -> u64 {
    match name {
        "sluice" => black_box(sluice(black_box(&s.data))).0,
        "sluice-in-place" => black_box(sluice_in_place(black_box(&s.data))).0,
        "rmpv" => black_box(rmpv(black_box(&s.data))).0,
        "memscan" => black_box(memscan(black_box(&s.data))),
        "memcpy256k" => black_box(memcpy256k(black_box(&s.data), scratch)),
        "minimal" => black_box(minimal(black_box(&s.data))).0,
        "minimal-bytes" => black_box(minimal_bytes(black_box(&s.data))).0,
        _ => unreachable!(),
    }
}

fn check(s: &Stream) {
    let want = (s.msgs, s.payload_bytes());
    assert_eq!(sluice(&s.data), want, "sluice on stream {}", s.name);
    assert_eq!(sluice_in_place(&s.data), want, "sluice-in-place on stream {}", s.name);
    assert_eq!(rmpv(&s.data), want, "rmpv on stream {}", s.name);
    assert_eq!(minimal(&s.data), want, "minimal on stream {}", s.name);
    assert_eq!(minimal_bytes(&s.data), want, "minimal-bytes on stream {}", s.name);
}

fn criterion_group(c: &mut Criterion, s: &Stream, measurement: Duration) {
    let mut g = c.benchmark_group(format!("decode/{}", s.name));
    g.throughput(Throughput::Elements(s.msgs));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(measurement);
    let mut scratch = Vec::with_capacity(READ);
    for name in CONTENDERS {
        g.bench_function(name, |b| b.iter(|| run(name, s, &mut scratch)));
    }
    g.finish();
}

/// (median, best) wall time of `SUMMARY_RUNS` runs after one warm-up.
fn time_runs(name: &str, s: &Stream) -> (Duration, Duration) {
    let mut scratch = Vec::with_capacity(READ);
    run(name, s, &mut scratch);
    let mut t: Vec<Duration> = (0..SUMMARY_RUNS)
        .map(|_| {
            let start = Instant::now();
            run(name, s, &mut scratch);
            start.elapsed()
        })
        .collect();
    t.sort();
    (t[SUMMARY_RUNS / 2], t[0])
}

fn summary(streams: &[&Stream]) {
    println!();
    println!("======================== sluice decoder summary ========================");
    println!("median (and best) of {SUMMARY_RUNS} runs after 1 warm-up, each run = the whole stream;");
    println!("sluice is fed in {} KiB reads and takes every payload as a zero-copy Bytes.", READ / 1024);
    println!("rates use the median; ratios are speed ratios: time(other) / time(sluice).");
    println!("minimal* parse headers only and never touch payload bytes (an upper bound");
    println!("for the parse, not for memory); memscan reads every byte, memcpy256k copies");
    println!("every byte the way a socket read into the decoder's buffer does.");
    let mut verdicts = Vec::new();
    for s in streams {
        println!();
        println!("{}", s.describe());
        println!(
            "  {:<14} {:>10} {:>10} {:>11} {:>9} {:>9} {:>13} {:>13}",
            "contender", "median ms", "best ms", "M msgs/s", "payload", "wire", "sluice/this", "this/memscan"
        );
        println!("  {:<14} {:>10} {:>10} {:>11} {:>9} {:>9}", "", "", "", "", "GB/s", "GB/s");
        let times: Vec<(&str, Duration, Duration)> = CONTENDERS
            .iter()
            .map(|&n| {
                let (med, best) = time_runs(n, s);
                (n, med, best)
            })
            .collect();
        let of = |n: &str| times.iter().find(|t| t.0 == n).unwrap().1.as_secs_f64();
        let (sluice_t, rmpv_t, scan_t, copy_t) = (of("sluice"), of("rmpv"), of("memscan"), of("memcpy256k"));
        for &(name, med, best) in &times {
            let t = med.as_secs_f64();
            println!(
                "  {:<14} {:>10.2} {:>10.2} {:>11.2} {:>9.2} {:>9.2} {:>12.2}x {:>12.2}x",
                name,
                t * 1e3,
                best.as_secs_f64() * 1e3,
                s.msgs as f64 / t / 1e6,
                s.payload_bytes() as f64 / t / 1e9,
                s.data.len() as f64 / t / 1e9,
                t / sluice_t,
                scan_t / t,
            );
        }
        println!(
            "  => sluice on {}: {:.2} M msgs/s, {:.2} GB/s payload; sluice/rmpv = {:.2}x, \
             sluice/memscan = {:.2}x, sluice/memcpy256k = {:.2}x",
            s.name,
            s.msgs as f64 / sluice_t / 1e6,
            s.payload_bytes() as f64 / sluice_t / 1e9,
            rmpv_t / sluice_t,
            scan_t / sluice_t,
            copy_t / sluice_t,
        );
        if s.payload_len == 64 {
            let mps = s.msgs as f64 / sluice_t;
            verdicts.push(format!(
                "target A (>= 40 M msgs/s): sluice {:.2} M msgs/s -> {}",
                mps / 1e6,
                if mps >= 40e6 { "MET" } else { "NOT MET" }
            ));
        } else {
            verdicts.push(format!(
                "target B (memory speed): sluice {:.2} GB/s payload = {:.2}x memscan, {:.2}x memcpy256k",
                s.payload_bytes() as f64 / sluice_t / 1e9,
                scan_t / sluice_t,
                copy_t / sluice_t,
            ));
        }
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
    println!("========================================================================");
}

fn main() {
    // Full streams and the summary only when criterion will benchmark:
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (and
    // `--test` / `--list` ask for a smoke run or a listing).
    let has = |f: &str| std::env::args().any(|a| a == f);
    let full = has("--bench") && !has("--test") && !has("--list");
    let (a_msgs, b_msgs) = if full { (1_000_000, 20_000) } else { (1_000, 20) };
    let a = Stream::new("A", a_msgs, 64);
    let b = Stream::new("B", b_msgs, 65536);
    check(&a);
    check(&b);

    let mut c = Criterion::default().configure_from_args();
    criterion_group(&mut c, &a, Duration::from_secs(2));
    criterion_group(&mut c, &b, Duration::from_secs(4));
    c.final_summary();

    if full && std::env::var_os("SLUICE_BENCH_NO_SUMMARY").is_none() {
        summary(&[&a, &b]);
    }
}
