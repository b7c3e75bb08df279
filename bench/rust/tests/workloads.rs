//! The benchmark's streams are what the workloads say, and every workload
//! runs to a figure for both Rust contenders over both socket families.

use sluice_bench::peer::{self, CHUNKS_PER_SESSION, WAVE};
use sluice_bench::{measure, Contender, Net, Workload};
use sluice_core::wire::{Decoder, DecoderConfig, Dialect};

fn frames(bytes: &[u8]) -> Vec<sluice_core::wire::Frame> {
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    dec.feed(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.decode().expect("a valid stream") {
        out.push(f);
    }
    assert_eq!(dec.buffered(), 0, "no bytes left over");
    out
}

#[test]
fn decode_stream_frames_are_seven_zero_bin() {
    for size in [64usize, 65536] {
        let f = peer::frame(size);
        // fixarray(3), 7, 0, fixarray(1), bin8/bin32 header, payload
        assert_eq!(&f[..4], &[0x93, 0x07, 0x00, 0x91]);
        assert_eq!(f[4], if size == 64 { 0xc4 } else { 0xc6 });
        let mut stream = peer::invoke_frame(peer::STREAM_SESSION);
        for _ in 0..3 {
            stream.extend_from_slice(&f);
        }
        assert_eq!(stream.len(), peer::stream_len(size, 3));
        let got = frames(&stream);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].args.reader().bytes().as_deref(), Some(&b"bench"[..]));
        for fr in &got[1..] {
            assert_eq!((fr.session, fr.ty), (7, 0));
            let data = fr.args.reader().bytes().expect("a byte string");
            assert_eq!(data.len(), size);
        }
    }
}

#[test]
fn engine_stream_opens_feeds_and_closes_each_wave() {
    let got = frames(&peer::engine_stream(2));
    let per_wave = WAVE * (CHUNKS_PER_SESSION + 2);
    assert_eq!(got.len(), 2 * per_wave);
    for (w, wave) in got.chunks(per_wave).enumerate() {
        let first = 2 + (w * WAVE) as u64;
        let (invokes, rest) = wave.split_at(WAVE);
        let (chunks, chokes) = rest.split_at(WAVE * CHUNKS_PER_SESSION);
        for (i, f) in invokes.iter().enumerate() {
            assert_eq!((f.session, f.ty), (first + i as u64, 0));
            assert_eq!(f.args.reader().bytes().as_deref(), Some(&b"bench"[..]));
        }
        for (i, f) in chunks.iter().enumerate() {
            assert_eq!((f.session, f.ty), (first + (i % WAVE) as u64, 0));
            assert_eq!(f.args.reader().bytes().map(|b| b.len()), Some(peer::MIXED_CHUNK));
        }
        for (i, f) in chokes.iter().enumerate() {
            assert_eq!((f.session, f.ty), (first + i as u64, 2));
            assert!(f.args.is_empty());
        }
    }
}

#[test]
fn every_workload_gives_its_figures() {
    for w in Workload::ALL {
        let n = match w {
            Workload::Recv64 | Workload::Send64 => 20_000,
            Workload::Recv64K => 50,
            Workload::Rtt64 => 50,
            Workload::Mixed => 1,
        };
        for net in Net::ALL {
            for c in Contender::ALL {
                let samples = measure(c, w, net, n);
                let metrics: Vec<&str> = samples.iter().map(|s| s.metric).collect();
                let want: &[&str] = match w {
                    Workload::Recv64 | Workload::Send64 => &["msgs_per_s", "cpu_ns_per_msg"],
                    Workload::Recv64K => &["gb_per_s", "cpu_ns_per_msg"],
                    Workload::Rtt64 => &["p50_us", "p99_us"],
                    Workload::Mixed => &["sessions_per_s"],
                };
                assert_eq!(metrics, want, "{w:?} {net:?} {c:?}");
                for s in &samples {
                    // CPU time per message is the process's CPU time less the
                    // peer thread's, which a short run can round down to 0.
                    let least = if s.metric == "cpu_ns_per_msg" { 0.0 } else { f64::MIN_POSITIVE };
                    assert!(s.value.is_finite() && s.value >= least, "{s:?}");
                    assert_eq!((s.contender, s.workload, s.net), (c.name(), w.name(), net.name()));
                    let json = s.to_json();
                    assert!(json.starts_with('{') && json.contains(&format!("\"metric\":\"{}\"", s.metric)), "{json}");
                }
            }
        }
    }
}
