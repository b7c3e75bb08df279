//! Channel throughput and latency over loopback, beside plain sockets doing
//! the same reads and writes without a protocol (the physical limit).
//!
//! `cargo bench -p sluice-core --bench channel` (or `make bench`). Prints,
//! for TCP and Unix sockets: receive rate of 64-byte chunks and GB/s of
//! 64 KiB chunks through the chunk event, send rate of 64-byte chunks, and
//! the p50/p99 round trip of a 64-byte chunk. Each figure is the median of
//! `ROUNDS` runs (min–max beside it); ratios compare with plain sockets
//! measured in the same run. `SLUICE_BENCH_SCALE=0.1` shortens everything;
//! `SLUICE_BENCH_ONLY=tcp,recv` runs only the named workloads (see
//! [`enabled`]).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::net::{Channel, ChannelConfig, Chunk, Endpoint, Event, Handler, SendError, Server};
use sluice_core::wire::{Dialect, Encoder, Message, Profile, Role};

const ROUNDS: usize = 5;

fn scale() -> f64 {
    std::env::var("SLUICE_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Net {
    Tcp,
    Unix,
}

/// A connected pair of plain blocking sockets.
enum Plain {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Read for Plain {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.read(b),
            Plain::Unix(s) => s.read(b),
        }
    }
}

impl Write for Plain {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.write(b),
            Plain::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sock_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sluice-bench-{}-{tag}.sock", std::process::id()))
}

/// A listener of the kind; returns the endpoint and an accept function.
fn listen(net: Net, tag: &str) -> (Endpoint, Box<dyn FnOnce() -> Plain + Send>) {
    match net {
        Net::Tcp => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            (
                Endpoint::Tcp("127.0.0.1".into(), port),
                Box::new(move || {
                    let (s, _) = l.accept().unwrap();
                    s.set_nodelay(true).unwrap();
                    Plain::Tcp(s)
                }),
            )
        }
        Net::Unix => {
            let p = sock_path(tag);
            let _ = std::fs::remove_file(&p);
            let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
            (Endpoint::Unix(p), Box::new(move || Plain::Unix(l.accept().unwrap().0)))
        }
    }
}

fn plain_connect(ep: &Endpoint) -> Plain {
    match ep {
        Endpoint::Tcp(h, p) => {
            let s = std::net::TcpStream::connect((h.as_str(), *p)).unwrap();
            s.set_nodelay(true).unwrap();
            Plain::Tcp(s)
        }
        Endpoint::Unix(p) => Plain::Unix(std::os::unix::net::UnixStream::connect(p).unwrap()),
    }
}

/// `invoke("bench")` on channel 7 then `n` chunks of `size` bytes, encoded
/// in the compat profile: `[7, 0, [<payload>]]` each.
fn stream(n: usize, size: usize) -> (Vec<u8>, Vec<u8>) {
    let mut enc = Encoder::new(Dialect::V1, Profile::Modern);
    enc.message(7, &Message::Invoke { event: Bytes::from_static(b"bench") }, &[]);
    let head = take(&mut enc);
    let payload = Bytes::from(vec![0x5au8; size]);
    enc.chunk(7, &payload, &[]);
    let one = take(&mut enc);
    let mut body = Vec::with_capacity(one.len() * n);
    for _ in 0..n {
        body.extend_from_slice(&one);
    }
    (head, body)
}

fn take(enc: &mut Encoder) -> Vec<u8> {
    use bytes::Buf;
    let n = enc.out().remaining();
    enc.out().copy_to_bytes(n).to_vec()
}

fn write_all_in_batches(s: &mut Plain, head: &[u8], body: &[u8]) {
    s.write_all(head).unwrap();
    for c in body.chunks(1 << 20) {
        s.write_all(c).unwrap();
    }
}

/// Receive through a sluice channel: returns seconds from connect to the
/// last chunk event.
fn recv_sluice(net: Net, n: usize, size: usize) -> f64 {
    let (head, body) = stream(n, size);
    let (ep, accept) = listen(net, "recv");
    let sender = std::thread::spawn(move || {
        let mut s = accept();
        write_all_in_batches(&mut s, &head, &body);
        // Keep the socket open until the receiver is done.
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let count = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let c = count.clone();
    let start = Instant::now();
    let ch = Channel::connect(ep, ChannelConfig::new(Dialect::V1, Some(Role::Worker)), move |_: &Channel, ev: Event| {
        if let Event::Message { message: Message::Chunk { data }, .. } = ev {
            std::hint::black_box(&data);
            if c.fetch_add(1, Ordering::Relaxed) + 1 == n as u64 {
                let _ = done_tx.send(Instant::now());
            }
        }
    })
    .unwrap();
    let end = done_rx.recv_timeout(Duration::from_secs(120)).expect("all chunks");
    ch.abort();
    sender.join().unwrap();
    (end - start).as_secs_f64()
}

/// Counts chunks through [`Handler::on_chunk`], reading each payload where
/// it lies in the receive buffer (the path C's `on_chunk` takes).
struct Counter {
    n: u64,
    total: u64,
    done: Option<mpsc::Sender<Instant>>,
}

impl Handler for Counter {
    fn on_event(&mut self, _: &Channel, _: Event) {}
    fn on_chunk(&mut self, _: &Channel, chunk: Chunk<'_>) {
        std::hint::black_box(chunk.data());
        self.n += 1;
        if self.n == self.total {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(Instant::now());
            }
        }
    }
}

/// As [`recv_sluice`], with a handler that takes chunks borrowed.
fn recv_sluice_borrowed(net: Net, n: usize, size: usize) -> f64 {
    let (head, body) = stream(n, size);
    let (ep, accept) = listen(net, "recvb");
    let sender = std::thread::spawn(move || {
        let mut s = accept();
        write_all_in_batches(&mut s, &head, &body);
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let (done_tx, done_rx) = mpsc::channel();
    let start = Instant::now();
    let handler = Counter { n: 0, total: n as u64, done: Some(done_tx) };
    let ch = Channel::connect(ep, ChannelConfig::new(Dialect::V1, Some(Role::Worker)), handler).unwrap();
    let end = done_rx.recv_timeout(Duration::from_secs(120)).expect("all chunks");
    ch.abort();
    sender.join().unwrap();
    (end - start).as_secs_f64()
}

/// The same bytes read by a plain socket in 256 KiB reads, counting only.
fn recv_plain(net: Net, n: usize, size: usize) -> f64 {
    let (head, body) = stream(n, size);
    let total = head.len() + body.len();
    let (ep, accept) = listen(net, "recvp");
    let sender = std::thread::spawn(move || {
        let mut s = accept();
        write_all_in_batches(&mut s, &head, &body);
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let start = Instant::now();
    let mut s = plain_connect(&ep);
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0;
    while got < total {
        got += s.read(&mut buf).unwrap();
    }
    let t = start.elapsed().as_secs_f64();
    drop(s);
    sender.join().unwrap();
    t
}

/// Send `n` chunks of `size` bytes through a sluice channel to a plain
/// reader; seconds until the reader has every byte.
fn send_sluice(net: Net, n: usize, size: usize) -> f64 {
    let (ep, accept) = listen(net, "send");
    let (head, body) = stream(n, size);
    let total = head.len() + body.len() - head.len();
    let reader = std::thread::spawn(move || {
        let mut s = accept();
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        while got < total {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0);
            got += k;
        }
        Instant::now()
    });
    let (drain_tx, drain_rx) = mpsc::channel();
    let mut cfg = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
    cfg.profile = Profile::Modern; // [7, 0, [<bin>]], byte for byte the plain stream
    let ch = Channel::connect(ep, cfg, move |_: &Channel, ev: Event| {
        if ev == Event::Drain {
            let _ = drain_tx.send(());
        }
    })
    .unwrap();
    let payload = Bytes::from(vec![0x5au8; size]);
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        match ch.send_chunk(7, &payload) {
            Ok(()) => i += 1,
            Err(SendError::WouldBlock) => drain_rx.recv().unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    let end = reader.join().unwrap();
    ch.abort();
    (end - start).as_secs_f64()
}

fn send_plain(net: Net, n: usize, size: usize) -> f64 {
    let (ep, accept) = listen(net, "sendp");
    let (_, body) = stream(n, size);
    let total = body.len();
    let reader = std::thread::spawn(move || {
        let mut s = accept();
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0;
        while got < total {
            got += s.read(&mut buf).unwrap();
        }
        Instant::now()
    });
    let mut s = plain_connect(&ep);
    let start = Instant::now();
    // The physical limit: the same bytes, already encoded, in large writes.
    for c in body.chunks(256 << 10) {
        s.write_all(c).unwrap();
    }
    let end = reader.join().unwrap();
    (end - start).as_secs_f64()
}

/// Round trips of one 64-byte chunk through a sluice client and a sluice
/// echo server; returns sorted latencies in µs.
fn rtt_sluice(net: Net, n: usize) -> Vec<f64> {
    let ep = match net {
        Net::Tcp => Endpoint::Tcp("127.0.0.1".into(), 0),
        Net::Unix => {
            let p = sock_path("rtt");
            let _ = std::fs::remove_file(&p);
            Endpoint::Unix(p)
        }
    };
    let server = Server::bind(&ep, ChannelConfig::new(Dialect::V1, Some(Role::Engine)), |_: &Server, inc: sluice_core::net::Incoming| {
        let mut inc = inc;
        inc.config_mut().role = None; // echo every frame as it is
        inc.start(|ch: &Channel, ev: Event| {
            if let Event::Frame(f) = ev {
                let _ = ch.send_frame(f.session, f.ty, &f.args, &[]);
            }
        })
        .unwrap();
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut cfg = ChannelConfig::new(Dialect::V1, None);
    cfg.role = None;
    let ch = Channel::connect(server.local().clone(), cfg, move |_: &Channel, ev: Event| {
        if let Event::Frame(_) = ev {
            let _ = tx.send(Instant::now());
        }
    })
    .unwrap();
    let payload = Bytes::from(vec![0x5au8; 64]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        ch.send_chunk(7, &payload).unwrap();
        let back = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if i >= 100 {
            out.push((back - t).as_secs_f64() * 1e6);
        }
    }
    ch.abort();
    server.close();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

fn rtt_plain(net: Net, n: usize) -> Vec<f64> {
    let (ep, accept) = listen(net, "rttp");
    let echo = std::thread::spawn(move || {
        let mut s = accept();
        let mut buf = [0u8; 70];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut s = plain_connect(&ep);
    let msg = [0x5au8; 70];
    let mut buf = [0u8; 70];
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut buf).unwrap();
        if i >= 100 {
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(s);
    echo.join().unwrap();
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stat { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

fn rounds(f: impl Fn() -> f64) -> Stat {
    stat((0..ROUNDS).map(|_| f()).collect())
}

/// Whether a workload runs: `SLUICE_BENCH_ONLY` (comma-separated words
/// among `tcp`, `unix`, `recv`, `borrowed`, `bulk`, `send`, `rtt`) narrows
/// the run to the workloads and socket kinds it names.
fn enabled(what: &str) -> bool {
    let Ok(only) = std::env::var("SLUICE_BENCH_ONLY") else { return true };
    let words: Vec<&str> = only.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    let nets = ["tcp", "unix"];
    let (net_words, work_words): (Vec<&str>, Vec<&str>) = words.iter().partition(|w| nets.contains(w));
    if nets.contains(&what) {
        return net_words.is_empty() || net_words.contains(&what);
    }
    work_words.is_empty() || work_words.contains(&what)
}

fn main() {
    // Criterion-style arguments (`--bench`) are accepted and ignored.
    let s = scale();
    let small = ((2_000_000.0 * s) as usize).max(10_000);
    let bulk = ((20_000.0 * s) as usize).max(200);
    let rtt_n = ((20_000.0 * s) as usize).max(1_000);
    println!("sluice channel benchmark: median of {ROUNDS} rounds [min–max], ratio = sluice / plain sockets in the same run");
    println!("{small} x 64 B chunks, {bulk} x 64 KiB chunks, {rtt_n} round trips\n");
    for net in [Net::Tcp, Net::Unix] {
        let name = format!("{net:?}").to_lowercase();
        if !enabled(&name) {
            continue;
        }
        let rate = |secs: &Stat, n: usize| (n as f64 / secs.median / 1e6, n as f64 / secs.max / 1e6, n as f64 / secs.min / 1e6);
        let gbs = |secs: &Stat, n: usize| {
            let b = (n * 65536) as f64 / 1e9;
            (b / secs.median, b / secs.max, b / secs.min)
        };
        if enabled("recv") || enabled("borrowed") {
            let rs = enabled("recv").then(|| rounds(|| recv_sluice(net, small, 64)));
            let rp = rounds(|| recv_plain(net, small, 64));
            let (b, b0, b1) = rate(&rp, small);
            if let Some(rs) = rs {
                let (a, a0, a1) = rate(&rs, small);
                println!("{name:4} receive 64 B     sluice {a:7.2} M msg/s [{a0:.2}–{a1:.2}]   plain {b:7.2} M msg/s [{b0:.2}–{b1:.2}]   ratio {:.2}", a / b);
            }
            if enabled("borrowed") {
                let rs = rounds(|| recv_sluice_borrowed(net, small, 64));
                let (a, a0, a1) = rate(&rs, small);
                println!(
                    "{name:4} receive 64 B  on_chunk (borrowed) {a:7.2} M msg/s [{a0:.2}–{a1:.2}]   plain {b:7.2} M msg/s   ratio {:.2}",
                    a / b
                );
            }
        }
        if enabled("bulk") {
            let rs = rounds(|| recv_sluice(net, bulk, 65536));
            let rp = rounds(|| recv_plain(net, bulk, 65536));
            let (a, a0, a1) = gbs(&rs, bulk);
            let (b, b0, b1) = gbs(&rp, bulk);
            println!("{name:4} receive 64 KiB   sluice {a:7.2} GB/s     [{a0:.2}–{a1:.2}]   plain {b:7.2} GB/s     [{b0:.2}–{b1:.2}]   ratio {:.2}", a / b);
        }
        if enabled("send") {
            let ss = rounds(|| send_sluice(net, small, 64));
            let sp = rounds(|| send_plain(net, small, 64));
            let (a, a0, a1) = rate(&ss, small);
            let (b, b0, b1) = rate(&sp, small);
            println!("{name:4} send 64 B        sluice {a:7.2} M msg/s [{a0:.2}–{a1:.2}]   plain {b:7.2} M msg/s [{b0:.2}–{b1:.2}]   ratio {:.2}", a / b);
        }
        if enabled("rtt") {
            let lat_s: Vec<Vec<f64>> = (0..ROUNDS).map(|_| rtt_sluice(net, rtt_n)).collect();
            let lat_p: Vec<Vec<f64>> = (0..ROUNDS)
                .map(|_| {
                    let mut v = rtt_plain(net, rtt_n);
                    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    v
                })
                .collect();
            let p50s = stat(lat_s.iter().map(|v| pct(v, 0.5)).collect());
            let p99s = stat(lat_s.iter().map(|v| pct(v, 0.99)).collect());
            let p50p = stat(lat_p.iter().map(|v| pct(v, 0.5)).collect());
            let p99p = stat(lat_p.iter().map(|v| pct(v, 0.99)).collect());
            println!(
                "{name:4} round trip 64 B  sluice p50 {:6.1} µs p99 {:6.1} µs   plain p50 {:6.1} µs p99 {:6.1} µs   ratio p50 {:.2}",
                p50s.median,
                p99s.median,
                p50p.median,
                p99p.median,
                p50s.median / p50p.median
            );
        }
        println!();
    }
}
