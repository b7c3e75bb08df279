//! Soak: churns connections, sessions and reconnects through a sluice
//! server and sluice workers in this process for a while, sampling its
//! resident memory and open file descriptors once a second at the end of
//! a cycle (when every connection of the cycle is gone). After the warm-up
//! both must be flat: the program fails if RSS drifts by more than
//! `--rss-bound-kib` (default 4096) or the descriptors by more than 4.
//!
//! ```text
//! cargo run --release -p sluice-core --example soak -- --seconds 60
//! ```
//!
//! Each cycle: 16 workers connect and handshake; the engine invokes 4
//! sessions on each, sends 3 chunks and a choke on each, the worker
//! echoes and chokes back; then the engine closes — or, every fourth
//! cycle, resets the connection, and the worker reconnects and handshakes
//! once more before the engine closes that one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, Server};
use sluice_core::wire::{Dialect, Message, Role};

const WORKERS: usize = 16;
const SESSIONS: u64 = 4;
const CHUNKS: usize = 3;

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

struct Counters {
    connections: AtomicUsize,
    sessions: AtomicUsize,
    reconnects: AtomicUsize,
    /// Handlers alive (worker and engine side).
    live: AtomicUsize,
}

struct Live(Arc<Counters>);
impl Live {
    fn new(c: &Arc<Counters>) -> Live {
        c.live.fetch_add(1, Ordering::AcqRel);
        Live(c.clone())
    }
}
impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The engine side of one accepted connection.
fn engine(c: Arc<Counters>, reset: bool) -> impl FnMut(&Channel, Event) + Send + 'static {
    let live = Live::new(&c);
    let mut chokes = 0;
    move |ch: &Channel, ev: Event| {
        let _ = &live;
        match ev {
            Event::Message { message: Message::Handshake { uuid }, .. } => {
                // A worker that reconnected says so in its uuid: close it normally.
                let reset = reset && !uuid.ends_with(b"+");
                if reset {
                    ch.abort();
                    return;
                }
                let chunk = Bytes::from(vec![7u8; 1024]);
                for _ in 0..SESSIONS {
                    let s = ch.next_session();
                    let _ = ch.send(s, &Message::Invoke { event: Bytes::from_static(b"echo") });
                    for _ in 0..CHUNKS {
                        let _ = ch.send_chunk(s, &chunk);
                    }
                    let _ = ch.send(s, &Message::Choke);
                }
            }
            Event::Message { message: Message::Choke, .. } => {
                chokes += 1;
                c.sessions.fetch_add(1, Ordering::Relaxed);
                if chokes == SESSIONS {
                    ch.close();
                }
            }
            Event::SocketError(_) => {}
            _ => {}
        }
    }
}

/// A worker: handshake, echo, choke back; reconnects once after a reset.
fn worker(ep: Endpoint, c: Arc<Counters>, done: mpsc::Sender<()>, again: bool) -> std::io::Result<Channel> {
    let live = Live::new(&c);
    let c2 = c.clone();
    let mut invoked = false;
    Channel::connect(ep.clone(), ChannelConfig::new(Dialect::V1, Some(Role::Worker)), move |ch: &Channel, ev: Event| {
        let _ = &live;
        match ev {
            Event::Connected => {
                c2.connections.fetch_add(1, Ordering::Relaxed);
                let uuid: &'static [u8] = if again { b"soak+" } else { b"soak" };
                let _ = ch.send(1, &Message::Handshake { uuid: Bytes::from_static(uuid) });
            }
            Event::Message { message: Message::Invoke { .. }, .. } => invoked = true,
            Event::Message { session, message: Message::Chunk { data }, .. } => {
                let _ = ch.send_chunk(session, &data);
            }
            Event::Message { session, message: Message::Choke, .. } => {
                let _ = ch.send(session, &Message::Choke);
            }
            Event::SocketError(e) => {
                let _ = e;
                if !invoked && !again {
                    // Cut off by the engine before any work: reconnect once.
                    c2.reconnects.fetch_add(1, Ordering::Relaxed);
                    worker(ep.clone(), c2.clone(), done.clone(), true).expect("reconnect");
                } else {
                    let _ = done.send(());
                }
            }
            _ => {}
        }
    })
}

fn main() {
    let mut seconds = 60u64;
    let mut rss_bound = 4096usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--rss-bound-kib" => rss_bound = args.next().and_then(|v| v.parse().ok()).expect("--rss-bound-kib N"),
            _ => panic!("usage: soak [--seconds N] [--rss-bound-kib N]"),
        }
    }
    let c = Arc::new(Counters {
        connections: AtomicUsize::new(0),
        sessions: AtomicUsize::new(0),
        reconnects: AtomicUsize::new(0),
        live: AtomicUsize::new(0),
    });
    let cycle = Arc::new(AtomicUsize::new(0));
    let (cc, cy) = (c.clone(), cycle.clone());
    let server = Server::bind(
        &Endpoint::Tcp("127.0.0.1".into(), 0),
        ChannelConfig::new(Dialect::V1, Some(Role::Engine)),
        move |_: &Server, inc: Incoming| {
            let reset = cy.load(Ordering::Relaxed) % 4 == 3;
            let _ = inc.start(engine(cc.clone(), reset));
        },
    )
    .expect("bind");
    let ep = server.local().clone();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let warmup = Duration::from_secs((seconds / 5).max(5).min(seconds / 2));
    let mut samples: Vec<(f64, usize, usize)> = Vec::new();
    let mut next_sample = start;
    let mut cycles = 0usize;
    println!("soak rust: {seconds} s, warm-up {} s", warmup.as_secs());
    while Instant::now() < end {
        cycle.store(cycles, Ordering::Relaxed);
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..WORKERS {
            worker(ep.clone(), c.clone(), done_tx.clone(), false).expect("connect");
        }
        for _ in 0..WORKERS {
            done_rx.recv_timeout(Duration::from_secs(30)).expect("a worker never finished");
        }
        // Every handler of the cycle is gone.
        let t = Instant::now();
        while c.live.load(Ordering::Acquire) > 0 {
            assert!(t.elapsed() < Duration::from_secs(30), "handlers still alive: {}", c.live.load(Ordering::Acquire));
            std::thread::sleep(Duration::from_millis(1));
        }
        cycles += 1;
        if Instant::now() >= next_sample {
            let s = (start.elapsed().as_secs_f64(), rss_kib(), open_fds());
            println!(
                "soak-sample lang=rust t={:.1} rss_kib={} fds={} cycles={} connections={} sessions={} reconnects={}",
                s.0,
                s.1,
                s.2,
                cycles,
                c.connections.load(Ordering::Relaxed),
                c.sessions.load(Ordering::Relaxed),
                c.reconnects.load(Ordering::Relaxed)
            );
            samples.push(s);
            next_sample += Duration::from_secs(1);
        }
    }
    server.close();
    let after: Vec<_> = samples.iter().filter(|s| s.0 >= warmup.as_secs_f64()).collect();
    assert!(after.len() >= 2, "too few samples after the warm-up: run longer");
    let k = (after.len() / 4).max(1);
    let mean = |v: &[&(f64, usize, usize)], f: fn(&(f64, usize, usize)) -> usize| v.iter().map(|s| f(s)).sum::<usize>() / v.len();
    let (first, last) = (&after[..k], &after[after.len() - k..]);
    let rss_drift = mean(last, |s| s.1) as i64 - mean(first, |s| s.1) as i64;
    // Descriptors: the least of each window (a sample may catch sockets
    // of the cycle that are still closing).
    let least = |v: &[&(f64, usize, usize)]| v.iter().map(|s| s.2).min().unwrap_or(0);
    let fd_drift = least(last) as i64 - least(first) as i64;
    let ok = rss_drift < rss_bound as i64 && fd_drift.abs() <= 4;
    println!(
        "soak-summary lang=rust seconds={seconds} cycles={cycles} connections={} sessions={} reconnects={} \
         rss_start_kib={} rss_end_kib={} rss_drift_kib={rss_drift} rss_bound_kib={rss_bound} fds_start={} fds_end={} \
         fd_drift={fd_drift} result={}",
        c.connections.load(Ordering::Relaxed),
        c.sessions.load(Ordering::Relaxed),
        c.reconnects.load(Ordering::Relaxed),
        mean(first, |s| s.1),
        mean(last, |s| s.1),
        least(first),
        least(last),
        if ok { "ok" } else { "failed" }
    );
    if !ok {
        std::process::exit(1);
    }
}
