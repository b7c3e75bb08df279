//! The workloads of `make bench`, for the Rust contenders (plain sockets and
//! sluice through its core, the path the C ABI uses too), and the peers
//! that the Python and Node contenders are measured against.
//!
//! Every workload runs on loopback, over TCP or a Unix socket:
//!
//! * [`Workload::Recv64`] — a peer writes `[7, 0, ["bench"]]` (an invoke)
//!   then `[7, 0, [<64-byte bin>]]` frames in 1 MiB writes; the contender
//!   counts chunks until the last one (messages/s).
//! * [`Workload::Recv64K`] — the same with 64 KiB payloads (payload GB/s).
//! * [`Workload::Send64`] — the contender sends 64-byte chunks to a peer
//!   that reads until it has every byte (messages/s).
//! * [`Workload::Rtt64`] — one 64-byte chunk to an echoing peer of the same
//!   kind and back, one at a time (p50 and p99 µs).
//! * [`Workload::Mixed`] — a worker load: an engine opens waves of 1,000
//!   concurrent sessions (1,000 invokes, then 10 chunks of 64 bytes for
//!   each session, then 1,000 chokes, interleaved); the worker echoes each
//!   chunk and answers each choke with its own (sessions/s, timed by the
//!   engine until the last choke is back).
//!
//! The receive and send workloads also give the CPU time the measured side
//! spent per message (`cpu_ns_per_msg`: the process's CPU time over the
//! run less the peer thread's): a cost that, unlike a rate, hardly depends
//! on what else the machine runs or where the scheduler puts the threads.
//!
//! [`run`] measures the Rust contenders; [`peer`] has the feeding, sinking
//! and engine sides, which the `sluice-bench` program also serves to the
//! other languages' contenders.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::net::{Channel, ChannelConfig, Chunk, Endpoint, Event, Handler, Incoming, SendError, Server};
use sluice_core::wire::{Dialect, Message, Profile, Role};

pub mod peer;

use peer::{Listener, Plain};

/// The socket family a workload runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// TCP on 127.0.0.1, `TCP_NODELAY` set.
    Tcp,
    /// A Unix stream socket under the temporary directory.
    Unix,
}

impl Net {
    /// Every family.
    pub const ALL: [Net; 2] = [Net::Tcp, Net::Unix];

    /// `"tcp"` or `"unix"`.
    pub fn name(self) -> &'static str {
        match self {
            Net::Tcp => "tcp",
            Net::Unix => "unix",
        }
    }

    /// The family named `s` (`"tcp"`, `"unix"`).
    pub fn parse(s: &str) -> Option<Net> {
        Net::ALL.into_iter().find(|n| n.name() == s)
    }
}

/// One of the measured workloads (see the crate documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Receive 64-byte chunks: messages/s.
    Recv64,
    /// Receive 64 KiB chunks: payload GB/s.
    Recv64K,
    /// Send 64-byte chunks: messages/s.
    Send64,
    /// Round trip of one 64-byte chunk: p50 and p99 µs.
    Rtt64,
    /// Waves of 1,000 concurrent sessions (invoke, 10 chunks, choke) echoed
    /// by a worker: sessions/s.
    Mixed,
}

impl Workload {
    /// Every workload, in the order of the results table.
    pub const ALL: [Workload; 5] = [Workload::Recv64, Workload::Recv64K, Workload::Send64, Workload::Rtt64, Workload::Mixed];

    /// The short name used in the results (`recv64`, `recv64k`, `send64`,
    /// `rtt64`, `mixed`).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Recv64 => "recv64",
            Workload::Recv64K => "recv64k",
            Workload::Send64 => "send64",
            Workload::Rtt64 => "rtt64",
            Workload::Mixed => "mixed",
        }
    }

    /// The workload named `s`.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// How many messages (round trips, waves of sessions) one run of the
    /// Rust contenders uses at `scale` 1.0 (each takes well under a second
    /// here at the plain-socket rate).
    pub fn default_count(self) -> usize {
        match self {
            Workload::Recv64 | Workload::Send64 => 4_000_000,
            Workload::Recv64K => 20_000,
            Workload::Rtt64 => 20_000,
            Workload::Mixed => 20,
        }
    }

    /// [`default_count`](Workload::default_count) times `scale`, with a
    /// floor that keeps every run meaningful.
    pub fn count(self, scale: f64) -> usize {
        let floor = match self {
            Workload::Recv64 | Workload::Send64 => 10_000,
            Workload::Recv64K => 200,
            Workload::Rtt64 => 500,
            Workload::Mixed => 1,
        };
        ((self.default_count() as f64 * scale) as usize).max(floor)
    }
}

/// A Rust contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// Plain blocking sockets doing the same reads and writes without a
    /// protocol: the physical limit.
    Plain,
    /// A sluice channel (and server) of the core, handler inline on the I/O
    /// thread: what Rust and C programs get.
    Sluice,
}

impl Contender {
    /// Both Rust contenders.
    pub const ALL: [Contender; 2] = [Contender::Plain, Contender::Sluice];

    /// The name in the results: `"plain"` or `"sluice-rust"`.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Plain => "plain",
            Contender::Sluice => "sluice-rust",
        }
    }

    /// The contender named `s` (`plain`, `sluice-rust` or `sluice`).
    pub fn parse(s: &str) -> Option<Contender> {
        match s {
            "plain" => Some(Contender::Plain),
            "sluice" | "sluice-rust" => Some(Contender::Sluice),
            _ => None,
        }
    }
}

/// What [`run`] measures.
#[derive(Clone, Debug)]
pub struct Options {
    /// The workloads, run in this order.
    pub workloads: Vec<Workload>,
    /// The socket families, each workload over each.
    pub nets: Vec<Net>,
    /// The contenders, each once per workload and family.
    pub contenders: Vec<Contender>,
    /// Multiplies every workload's [`default_count`](Workload::default_count).
    pub scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { workloads: Workload::ALL.to_vec(), nets: Net::ALL.to_vec(), contenders: Contender::ALL.to_vec(), scale: 1.0 }
    }
}

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Who was measured (`plain`, `sluice-rust`).
    pub contender: &'static str,
    /// The workload's short name.
    pub workload: &'static str,
    /// `tcp` or `unix`.
    pub net: &'static str,
    /// What `value` is: `msgs_per_s`, `gb_per_s`, `cpu_ns_per_msg`,
    /// `p50_us`, `p99_us`, `sessions_per_s`.
    pub metric: &'static str,
    /// The figure.
    pub value: f64,
    /// Messages, round trips or sessions in the run.
    pub count: u64,
    /// Seconds the run took (for round trips: the sum of all of them).
    pub seconds: f64,
}

impl Sample {
    /// The sample as one line of JSON (the form the benchmark driver reads).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"contender\":\"{}\",\"workload\":\"{}\",\"net\":\"{}\",\"metric\":\"{}\",\"value\":{},\"count\":{},\"seconds\":{}}}",
            self.contender, self.workload, self.net, self.metric, self.value, self.count, self.seconds
        )
    }
}

/// Runs every requested workload over every family for every contender,
/// in that nesting order, and returns the samples (two per round-trip
/// run: `p50_us` and `p99_us`). Panics if a run fails (a benchmark has no
/// way to go on without its figure).
pub fn run(opts: &Options) -> Vec<Sample> {
    let mut out = Vec::new();
    for &w in &opts.workloads {
        let n = w.count(opts.scale);
        for &net in &opts.nets {
            for &c in &opts.contenders {
                out.extend(measure(c, w, net, n));
            }
        }
    }
    out
}

/// One run of one contender on one workload with `n` messages (round
/// trips, waves).
pub fn measure(c: Contender, w: Workload, net: Net, n: usize) -> Vec<Sample> {
    let sample = |metric: &'static str, value: f64, count: usize, seconds: f64| Sample {
        contender: c.name(),
        workload: w.name(),
        net: net.name(),
        metric,
        value,
        count: count as u64,
        seconds,
    };
    match w {
        Workload::Recv64 | Workload::Recv64K => {
            let size = if w == Workload::Recv64 { 64 } else { 65536 };
            let (secs, cpu) = match c {
                Contender::Plain => recv_plain(net, n, size),
                Contender::Sluice => recv_sluice(net, n, size),
            };
            let rate = if size == 64 {
                sample("msgs_per_s", n as f64 / secs, n, secs)
            } else {
                sample("gb_per_s", (n * size) as f64 / secs / 1e9, n, secs)
            };
            vec![rate, sample("cpu_ns_per_msg", cpu * 1e9 / n as f64, n, secs)]
        }
        Workload::Send64 => {
            let (secs, cpu) = match c {
                Contender::Plain => send_plain(net, n),
                Contender::Sluice => send_sluice(net, n),
            };
            vec![sample("msgs_per_s", n as f64 / secs, n, secs), sample("cpu_ns_per_msg", cpu * 1e9 / n as f64, n, secs)]
        }
        Workload::Rtt64 => {
            let mut lat = match c {
                Contender::Plain => rtt_plain(net, n),
                Contender::Sluice => rtt_sluice(net, n),
            };
            let total: f64 = lat.iter().sum::<f64>() / 1e6;
            lat.sort_by(|a, b| a.total_cmp(b));
            vec![sample("p50_us", percentile(&lat, 0.5), n, total), sample("p99_us", percentile(&lat, 0.99), n, total)]
        }
        Workload::Mixed => {
            let secs = match c {
                Contender::Plain => mixed_plain(net, n),
                Contender::Sluice => mixed_sluice(net, n),
            };
            let sessions = n * peer::WAVE;
            vec![sample("sessions_per_s", sessions as f64 / secs, sessions, secs)]
        }
    }
}

/// The value at fraction `p` of sorted `v` (nearest rank below).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn endpoint(l: &Listener) -> Endpoint {
    Endpoint::parse(&l.address()).expect("listener address")
}

/// The sluice channel config of the worker side; `Profile::Modern` so
/// that sent chunks are `[7, 0, [<bin>]]`, byte for byte what plain
/// sockets send.
fn worker_config() -> ChannelConfig {
    let mut cfg = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
    cfg.profile = Profile::Modern;
    cfg
}

/// The receiving side of `recv_sluice`: chunks arrive through
/// [`Handler::on_chunk`], borrowed from the receive buffer — the path the C
/// ABI's `on_chunk` takes.
struct Counter {
    n: usize,
    count: usize,
    /// Payload bytes seen, checked at the end.
    bytes: usize,
    done: mpsc::Sender<(Instant, usize)>,
}

impl Counter {
    /// Reports the last chunk's arrival (out of line: the per-chunk path
    /// stays as small as a C callback's).
    #[cold]
    #[inline(never)]
    fn finish(&self) {
        let _ = self.done.send((Instant::now(), self.bytes));
    }
}

impl Handler for Counter {
    fn on_event(&mut self, _: &Channel, _: Event) {}

    fn on_chunk(&mut self, _: &Channel, chunk: Chunk<'_>) {
        // What a C `on_chunk` gets: the payload's address and length.
        let data = chunk.data();
        std::hint::black_box(data.as_ptr());
        self.bytes += data.len();
        self.count += 1;
        if self.count == self.n {
            self.finish();
        }
    }
}

/// The seconds of CPU time the measured side spent: the process's CPU
/// time since `before`, less what the peer thread reports for itself.
fn cpu_since(before: Duration, peer: Duration) -> f64 {
    (peer::process_cpu() - before).saturating_sub(peer).as_secs_f64()
}

/// Returns the seconds to the last chunk and the receiver's CPU seconds.
fn recv_sluice(net: Net, n: usize, size: usize) -> (f64, f64) {
    let l = Listener::bind(net, "recv");
    let ep = endpoint(&l);
    let feeder = std::thread::spawn(move || peer::feed(&mut l.accept(), size, n));
    let (done_tx, done_rx) = mpsc::channel();
    let cpu = peer::process_cpu();
    let start = Instant::now();
    let ch = Channel::connect(ep, worker_config(), Counter { n, count: 0, bytes: 0, done: done_tx }).expect("connect");
    let (end, bytes) = done_rx.recv_timeout(Duration::from_secs(300)).expect("every chunk");
    let cpu_end = peer::process_cpu();
    assert_eq!(bytes, n * size, "payload bytes received");
    ch.abort();
    let fed = feeder.join().expect("feeder");
    ((end - start).as_secs_f64(), (cpu_end - cpu).saturating_sub(fed).as_secs_f64())
}

/// As [`recv_sluice`], with plain 256 KiB reads.
fn recv_plain(net: Net, n: usize, size: usize) -> (f64, f64) {
    let total = peer::stream_len(size, n);
    let l = Listener::bind(net, "recvp");
    let addr = l.address();
    let feeder = std::thread::spawn(move || peer::feed(&mut l.accept(), size, n));
    let cpu = peer::process_cpu();
    let start = Instant::now();
    let mut s = Plain::connect(net, &addr);
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0;
    while got < total {
        let k = s.read(&mut buf).expect("read");
        assert!(k > 0, "the feeder ended early");
        got += k;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_end = peer::process_cpu();
    drop(s);
    let fed = feeder.join().expect("feeder");
    (secs, (cpu_end - cpu).saturating_sub(fed).as_secs_f64())
}

/// Returns the seconds to the last byte at the sink and the sender's CPU
/// seconds.
fn send_sluice(net: Net, n: usize) -> (f64, f64) {
    let l = Listener::bind(net, "send");
    let ep = endpoint(&l);
    let total = peer::frame(64).len() * n;
    let sink = std::thread::spawn(move || peer::sink(&mut l.accept(), total));
    let (drain_tx, drain_rx) = mpsc::channel();
    let ch = Channel::connect(ep, worker_config(), move |_: &Channel, ev: Event| {
        if ev == Event::Drain {
            let _ = drain_tx.send(());
        }
    })
    .expect("connect");
    let payload = Bytes::from(vec![0x5au8; 64]);
    let cpu = peer::process_cpu();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        match ch.send_chunk(7, &payload) {
            Ok(()) => i += 1,
            Err(SendError::WouldBlock) => drain_rx.recv_timeout(Duration::from_secs(60)).expect("drain"),
            Err(e) => panic!("send: {e}"),
        }
    }
    let (end, sunk) = sink.join().expect("sink");
    let spent = cpu_since(cpu, sunk);
    ch.abort();
    ((end - start).as_secs_f64(), spent)
}

/// As [`send_sluice`], with the frames encoded once and written in 256 KiB
/// blocks.
fn send_plain(net: Net, n: usize) -> (f64, f64) {
    let l = Listener::bind(net, "sendp");
    let addr = l.address();
    let frame = peer::frame(64);
    let total = frame.len() * n;
    let sink = std::thread::spawn(move || peer::sink(&mut l.accept(), total));
    let mut s = Plain::connect(net, &addr);
    // The physical limit: the same bytes, encoded once, in 256 KiB writes.
    let per = (256 << 10) / frame.len();
    let block = frame.repeat(per);
    let cpu = peer::process_cpu();
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(per);
        s.write_all(&block[..k * frame.len()]).expect("write");
        left -= k;
    }
    let (end, sunk) = sink.join().expect("sink");
    ((end - start).as_secs_f64(), cpu_since(cpu, sunk))
}

/// Warm-up round trips before the measured ones.
const RTT_WARMUP: usize = 200;

fn rtt_sluice(net: Net, n: usize) -> Vec<f64> {
    let ep = match net {
        Net::Tcp => Endpoint::Tcp("127.0.0.1".into(), 0),
        Net::Unix => {
            let p = peer::socket_path("rtt");
            let _ = std::fs::remove_file(&p);
            Endpoint::Unix(p)
        }
    };
    // The echo side: every chunk goes back on its session as it came.
    let server = Server::bind(&ep, ChannelConfig::new(Dialect::V1, None), |_: &Server, inc: Incoming| {
        inc.start(|ch: &Channel, ev: Event| {
            if let Event::Frame(f) = ev {
                let _ = ch.send_frame(f.session, f.ty, &f.args, &[]);
            }
        })
        .expect("accept");
    })
    .expect("bind");
    let (tx, rx) = mpsc::channel();
    let mut cfg = worker_config();
    cfg.role = None;
    let ch = Channel::connect(server.local().clone(), cfg, move |_: &Channel, ev: Event| {
        if let Event::Frame(_) = ev {
            let _ = tx.send(Instant::now());
        }
    })
    .expect("connect");
    let payload = Bytes::from(vec![0x5au8; 64]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n + RTT_WARMUP {
        let t = Instant::now();
        ch.send_chunk(7, &payload).expect("send");
        let back = rx.recv_timeout(Duration::from_secs(30)).expect("echo");
        if i >= RTT_WARMUP {
            out.push((back - t).as_secs_f64() * 1e6);
        }
    }
    ch.abort();
    server.close();
    out
}

fn rtt_plain(net: Net, n: usize) -> Vec<f64> {
    let l = Listener::bind(net, "rttp");
    let addr = l.address();
    let len = peer::frame(64).len();
    let echo = std::thread::spawn(move || peer::echo_fixed(&mut l.accept(), len));
    let mut s = Plain::connect(net, &addr);
    let msg = peer::frame(64);
    let mut buf = vec![0u8; len];
    let mut out = Vec::with_capacity(n);
    for i in 0..n + RTT_WARMUP {
        let t = Instant::now();
        s.write_all(&msg).expect("write");
        s.read_exact(&mut buf).expect("read");
        if i >= RTT_WARMUP {
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(s);
    echo.join().expect("echo");
    out
}

fn mixed_sluice(net: Net, waves: usize) -> f64 {
    let l = Listener::bind(net, "mixed");
    let ep = endpoint(&l);
    let engine = std::thread::spawn(move || peer::engine(&mut l.accept(), waves));
    // The engine reads while it writes; the queue never holds more than
    // the replies to what it wrote, which the limit must not refuse.
    let mut cfg = worker_config();
    cfg.high_watermark = 1 << 30;
    let ch = Channel::connect(ep, cfg, move |ch: &Channel, ev: Event| match ev {
        Event::Message { session, message: Message::Chunk { data }, .. } => {
            ch.send_chunk(session, &data).expect("echo a chunk");
        }
        Event::Message { session, message: Message::Choke, .. } => {
            ch.send(session, &Message::Choke).expect("choke");
        }
        _ => {}
    })
    .expect("connect");
    let secs = engine.join().expect("engine");
    ch.abort();
    secs
}

fn mixed_plain(net: Net, waves: usize) -> f64 {
    let l = Listener::bind(net, "mixedp");
    let addr = l.address();
    let engine = std::thread::spawn(move || peer::engine(&mut l.accept(), waves));
    // The physical limit of a worker: every byte read is written back.
    let mut s = Plain::connect(net, &addr);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if s.write_all(&buf[..k]).is_err() {
                    break;
                }
            }
        }
    }
    engine.join().expect("engine")
}
