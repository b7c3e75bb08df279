//! The fault matrix: every fault the test proxy (`support/proxy.rs`) can
//! inject, against every role a channel can take, over real sockets. Two
//! sluice peers hold a scripted conversation through the proxy — the
//! worker's handshake, the engine's invoke, `K` chunks and a choke, the
//! worker echoing each chunk and choking back — while the proxy splits,
//! delays, reorders, truncates, corrupts, stops reading, resets or
//! half-closes. Each case asserts the documented outcome (docs/RELIABILITY.md):
//!
//! * a fault that loses no byte changes nothing: the whole conversation, in
//!   order, and no error;
//! * a fault that ends the connection gives each side exactly one
//!   `SocketError`, last, with the documented errno, after a prefix of the
//!   conversation in order (nothing duplicated, nothing out of order);
//! * another conversation over the same server, started after the fault,
//!   completes (other channels are unaffected);
//! * both handlers are dropped when the connection is over: nothing of the
//!   connection stays behind.
#![allow(clippy::field_reassign_with_default)]

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, SendError, Server};
use sluice_core::wire::{Dialect, Message, Role};
use support::proxy::{Dir, Fault, Plan, Proxy};

const WAIT: Duration = Duration::from_secs(20);
/// Chunks the engine sends on the invoked session.
const K: usize = 20;
const UUID: &str = "f00dfeed-0000-4000-8000-000000000001";

/// The roles a channel takes in the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// v1 worker ↔ engine, typed messages.
    V1,
    /// v0 worker ↔ engine, typed messages.
    V0,
    /// Channels without a role (v1 framing): generic frames.
    Plain,
}

const KINDS: [Kind; 3] = [Kind::V1, Kind::V0, Kind::Plain];

impl Kind {
    fn config(self, role: Role) -> ChannelConfig {
        match self {
            Kind::V1 => ChannelConfig::new(Dialect::V1, Some(role)),
            Kind::V0 => ChannelConfig::new(Dialect::V0, Some(role)),
            Kind::Plain => ChannelConfig::new(Dialect::V1, None),
        }
    }
    fn control(self) -> u64 {
        if self == Kind::V0 {
            0
        } else {
            1
        }
    }
}

/// An event reduced to what the matrix compares.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Connected,
    Handshake,
    Invoke,
    Chunk(Bytes),
    Choke,
    Drain,
    Error(i32),
    Other(String),
}

fn seen(ev: Event) -> Seen {
    match ev {
        Event::Connected => Seen::Connected,
        Event::Drain => Seen::Drain,
        Event::SocketError(e) => Seen::Error(e),
        Event::Message { message, .. } => match message {
            Message::Handshake { .. } => Seen::Handshake,
            Message::Invoke { .. } => Seen::Invoke,
            Message::Chunk { data } => Seen::Chunk(data),
            Message::Choke => Seen::Choke,
            m => Seen::Other(format!("{m:?}")),
        },
        // Plain channels: the same conversation as v1 frames.
        Event::Frame(f) => {
            let first = f.args.clone().into_first_bytes().ok();
            match (f.session, f.ty, first.as_deref()) {
                (1, 0, Some(u)) if u == UUID.as_bytes() => Seen::Handshake,
                (2, 0, Some(b"echo")) => Seen::Invoke,
                (2, 0, Some(_)) => Seen::Chunk(first.unwrap()),
                (2, 2, _) => Seen::Choke,
                _ => Seen::Other(format!("{f:?}")),
            }
        }
        other => Seen::Other(format!("{other:?}")),
    }
}

fn chunk(i: usize) -> Bytes {
    Bytes::from(format!("{i:04}").repeat(25))
}

/// The conversation each side sees when nothing goes wrong.
fn worker_script() -> Vec<Seen> {
    let mut v = vec![Seen::Connected, Seen::Invoke];
    v.extend((0..K).map(|i| Seen::Chunk(chunk(i))));
    v.push(Seen::Choke);
    v
}

fn engine_script() -> Vec<Seen> {
    let mut v = vec![Seen::Connected, Seen::Handshake];
    v.extend((0..K).map(|i| Seen::Chunk(chunk(i))));
    v.push(Seen::Choke);
    v
}

/// One side of a conversation: its events and a token its handler holds
/// (the handler is gone when the count falls back to 1).
struct Side {
    rx: mpsc::Receiver<Seen>,
    token: Arc<()>,
}

impl Side {
    fn next(&self) -> Seen {
        self.rx.recv_timeout(WAIT).expect("no event within 20 s")
    }

    /// Events until (and with) the socket error, or the whole script.
    fn collect(&self, script_len: usize) -> Vec<Seen> {
        let mut v = Vec::new();
        while v.len() < script_len {
            let s = self.next();
            let end = matches!(s, Seen::Error(_));
            v.push(s);
            if end {
                break;
            }
        }
        v
    }

    /// Waits for the handler to be dropped, then checks nothing more came.
    fn released(&self, what: &str) {
        let t = Instant::now();
        while Arc::strong_count(&self.token) > 1 {
            assert!(t.elapsed() < WAIT, "{what}: the handler was never dropped");
            std::thread::sleep(Duration::from_millis(2));
        }
        let rest: Vec<Seen> = self.rx.try_iter().collect();
        assert!(rest.is_empty(), "{what}: events after the end: {rest:?}");
    }
}

/// The worker's handler: handshake on connect, echo each chunk, choke back.
fn worker_handler(kind: Kind, tx: mpsc::Sender<Seen>, token: Arc<()>) -> impl FnMut(&Channel, Event) + Send + 'static {
    move |ch: &Channel, ev: Event| {
        let _hold = &token;
        let s = seen(ev);
        match &s {
            Seen::Connected => {
                let _ = ch.send(kind.control(), &Message::Handshake { uuid: Bytes::from_static(UUID.as_bytes()) });
            }
            Seen::Chunk(d) => {
                let _ = ch.send_chunk(2, d);
            }
            Seen::Choke => {
                let _ = ch.send(2, &Message::Choke);
            }
            _ => {}
        }
        let _ = tx.send(s);
    }
}

/// The engine's handler: on the handshake, invoke session 2 and send the
/// chunks and a choke.
fn engine_handler(tx: mpsc::Sender<Seen>, token: Arc<()>) -> impl FnMut(&Channel, Event) + Send + 'static {
    move |ch: &Channel, ev: Event| {
        let _hold = &token;
        let s = seen(ev);
        if s == Seen::Handshake {
            let _ = ch.send(2, &Message::Invoke { event: Bytes::from_static(b"echo") });
            for i in 0..K {
                let _ = ch.send_chunk(2, &chunk(i));
            }
            let _ = ch.send(2, &Message::Choke);
        }
        let _ = tx.send(s);
    }
}

/// A server whose accepted channels run the engine script; each accepted
/// connection's events go to the next `Side` taken from `engines`.
struct Engine {
    server: Server,
    sides: mpsc::Receiver<(Channel, Side)>,
}

fn engine(kind: Kind, ep: &Endpoint) -> Engine {
    let (tx, sides) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::bind(ep, kind.config(Role::Engine), move |_: &Server, inc: Incoming| {
        let (etx, erx) = mpsc::channel();
        let token = Arc::new(());
        let ch = inc.start(engine_handler(etx, token.clone())).unwrap();
        let _ = tx.lock().unwrap().send((ch, Side { rx: erx, token }));
    })
    .unwrap();
    Engine { server, sides }
}

fn worker(kind: Kind, ep: Endpoint) -> (Channel, Side) {
    let (tx, rx) = mpsc::channel();
    let token = Arc::new(());
    let ch = Channel::connect(ep, kind.config(Role::Worker), worker_handler(kind, tx, token.clone())).unwrap();
    (ch, Side { rx, token })
}

/// A whole conversation that must succeed, then both ends close.
fn clean_conversation(kind: Kind, eng: &Engine, ep: Endpoint, what: &str) {
    let (w, ws) = worker(kind, ep);
    let (e, es) = eng.sides.recv_timeout(WAIT).expect("no accept");
    assert_eq!(ws.collect(K + 3), worker_script(), "{what}: worker");
    assert_eq!(es.collect(K + 3), engine_script(), "{what}: engine");
    w.close();
    assert_eq!(es.next(), Seen::Error(errno::ESHUTDOWN), "{what}: engine sees the worker's close");
    e.close();
    ws.released(&format!("{what}: worker"));
    es.released(&format!("{what}: engine"));
}

/// Checks `got` is a prefix of `script` (in order, nothing duplicated)
/// followed by one socket error with an errno of `errnos`.
fn prefix_then_error(got: &[Seen], script: &[Seen], errnos: &[i32], what: &str) {
    let (last, head) = got.split_last().unwrap_or_else(|| panic!("{what}: no events"));
    assert!(
        matches!(last, Seen::Error(e) if errnos.contains(e)),
        "{what}: ends with {last:?}, not one of errnos {errnos:?}; events {got:?}"
    );
    assert!(script.starts_with(head), "{what}: not a prefix of the conversation: {head:?}");
}

const UNIX_ERRS: &[i32] = &[errno::ESHUTDOWN, errno::ECONNRESET, errno::EPIPE];

/// Bytes of the worker's handshake frame on the wire (where the worker →
/// engine stream starts its chunks).
fn handshake_len(kind: Kind) -> usize {
    let mut enc = sluice_core::wire::Encoder::new(kind.config(Role::Worker).dialect, Default::default());
    enc.message(kind.control(), &Message::Handshake { uuid: Bytes::from_static(UUID.as_bytes()) }, &[]);
    bytes::Buf::remaining(enc.out())
}

/// A listening endpoint: a fresh Unix path, or TCP on any port.
fn fresh_endpoint(unix: bool) -> Endpoint {
    if unix {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("sluice-faults-{}-{n}.sock", std::process::id()));
        Endpoint::Unix(p)
    } else {
        Endpoint::Tcp("127.0.0.1".into(), 0)
    }
}

/// The errnos a fault that ends the connection may give: on the side that
/// receives the faulty direction, and on its peer.
fn ending_errnos(fault: Fault) -> (&'static [i32], &'static [i32]) {
    let near: &'static [i32] = match fault {
        Fault::Corrupt(..) => &[errno::EBADMSG],
        Fault::HalfClose(_) => &[errno::ESHUTDOWN],
        // The proxy closes the whole connection: a reply written
        // straight after a read may meet the close (EPIPE) before
        // the next read sees the end.
        Fault::Truncate(_) => &[errno::ESHUTDOWN, errno::EPIPE],
        // A write may meet the reset before the read does.
        _ => &[errno::ECONNRESET, errno::EPIPE],
    };
    let far: &'static [i32] = match fault {
        Fault::Reset(_) => &[errno::ECONNRESET, errno::EPIPE],
        _ => UNIX_ERRS,
    };
    (near, far)
}

/// Runs one fault against one role; returns a line for the summary.
fn case(kind: Kind, fault: Fault, dir: Dir, unix: bool) {
    let what = format!("{kind:?} {fault:?} {dir:?}{}", if unix { " unix" } else { "" });
    let ep = fresh_endpoint(unix);
    let eng = engine(kind, &ep);
    let proxy = Proxy::start(eng.server.local().clone(), Plan { fault, dir, conn: 0 });
    let (w, ws) = worker(kind, proxy.endpoint());

    match fault {
        Fault::None | Fault::Split(_) | Fault::Delay(_) => {
            let (e, es) = eng.sides.recv_timeout(WAIT).unwrap();
            assert_eq!(ws.collect(K + 3), worker_script(), "{what}: worker");
            assert_eq!(es.collect(K + 3), engine_script(), "{what}: engine");
            w.close();
            assert_eq!(es.next(), Seen::Error(errno::ESHUTDOWN), "{what}");
            e.close();
            ws.released(&what);
            es.released(&what);
        }
        Fault::Reorder => {
            // Connection 0's writes wait until connection 1 has written:
            // the second conversation starts first, both complete.
            let (w2, ws2) = worker(kind, proxy.endpoint());
            let (e_a, es_a) = eng.sides.recv_timeout(WAIT).unwrap();
            let (e_b, es_b) = eng.sides.recv_timeout(WAIT).unwrap();
            assert_eq!(ws.collect(K + 3), worker_script(), "{what}: first worker");
            assert_eq!(ws2.collect(K + 3), worker_script(), "{what}: second worker");
            assert_eq!(es_a.collect(K + 3), engine_script(), "{what}: engine A");
            assert_eq!(es_b.collect(K + 3), engine_script(), "{what}: engine B");
            for c in [&w, &w2] {
                c.close();
            }
            for (e, es) in [(&e_a, &es_a), (&e_b, &es_b)] {
                assert_eq!(es.next(), Seen::Error(errno::ESHUTDOWN), "{what}");
                e.close();
                es.released(&what);
            }
            ws.released(&what);
            ws2.released(&what);
        }
        Fault::Corrupt(..) | Fault::Truncate(_) | Fault::Reset(_) | Fault::HalfClose(_) => {
            let (_e, es) = eng.sides.recv_timeout(WAIT).unwrap();
            // The side that receives the faulty direction, and its peer.
            let (near, far, near_script, far_script) = match dir {
                Dir::Down => (&ws, &es, worker_script(), engine_script()),
                Dir::Up => (&es, &ws, engine_script(), worker_script()),
            };
            let (near_errs, far_errs) = ending_errnos(fault);
            let got = near.collect(K + 4);
            prefix_then_error(&got, &near_script, near_errs, &format!("{what}: receiving side"));
            if matches!(fault, Fault::Corrupt(0, _)) {
                // The very first frame is bad: nothing before the error.
                assert_eq!(got.len(), 2, "{what}: {got:?}");
            }
            let got = far.collect(K + 4);
            prefix_then_error(&got, &far_script, far_errs, &format!("{what}: other side"));
            ws.released(&what);
            es.released(&what);
            drop(w);
        }
        Fault::StopReading(at) => {
            // The proxy stops reading after the handshake: the worker's
            // sends fill the socket buffers, then the queue to its high
            // watermark, and are refused; once the proxy reads again,
            // `Drain` comes and everything arrives in order.
            let (e, es) = eng.sides.recv_timeout(WAIT).unwrap();
            assert_eq!(at, handshake_len(kind));
            assert_eq!(ws.collect(K + 3), worker_script(), "{what}: worker");
            assert_eq!(es.collect(2), engine_script()[..2].to_vec(), "{what}: engine");
            let big = Bytes::from(vec![b'x'; 64 << 10]);
            let mut sent = 0usize;
            loop {
                match w.send_chunk(2, &big) {
                    Ok(()) => sent += 1,
                    Err(SendError::WouldBlock) => break,
                    Err(e) => panic!("{what}: {e}"),
                }
                assert!(sent < 100_000, "{what}: the queue never filled");
            }
            assert!(w.queued() <= w.config().high_watermark + big.len() + 64, "{what}: queue over the watermark");
            proxy.resume();
            assert_eq!(ws.next(), Seen::Drain, "{what}: drain once the proxy reads again");
            w.send(2, &Message::Choke).unwrap();
            // The echoes of the script, the big chunks, the choke: in order.
            let mut want: Vec<Seen> = (0..K).map(|i| Seen::Chunk(chunk(i))).collect();
            want.push(Seen::Choke);
            want.extend(std::iter::repeat_n(Seen::Chunk(big.clone()), sent));
            want.push(Seen::Choke);
            for (i, s) in want.iter().enumerate() {
                let got = es.next();
                assert!(&got == s, "{what}: engine event {i}: {:?}", got);
            }
            w.close();
            assert_eq!(es.next(), Seen::Error(errno::ESHUTDOWN), "{what}");
            e.close();
            ws.released(&what);
            es.released(&what);
        }
    }
    // Another conversation through the same server is unaffected.
    clean_conversation(kind, &eng, eng.server.local().clone(), &format!("{what}: bystander"));
    eng.server.close();
    println!("fault-matrix: {what}: passed");
}

/// An offset in the middle of the engine → worker stream (inside the chunks).
const MID: usize = 777;

#[test]
fn no_fault() {
    for k in KINDS {
        case(k, Fault::None, Dir::Up, false);
        case(k, Fault::None, Dir::Up, true);
    }
}

#[test]
fn split_into_single_bytes_and_odd_pieces() {
    for k in KINDS {
        case(k, Fault::Split(1), Dir::Down, false);
        case(k, Fault::Split(1), Dir::Up, true);
        case(k, Fault::Split(7), Dir::Down, true);
    }
}

#[test]
fn delay() {
    for k in KINDS {
        case(k, Fault::Delay(Duration::from_millis(30)), Dir::Down, false);
        case(k, Fault::Delay(Duration::from_millis(30)), Dir::Up, false);
    }
}

#[test]
fn reorder_writes_across_connections() {
    for k in KINDS {
        case(k, Fault::Reorder, Dir::Up, false);
    }
}

#[test]
fn truncate() {
    for k in KINDS {
        case(k, Fault::Truncate(MID), Dir::Down, false);
        case(k, Fault::Truncate(MID), Dir::Up, true);
        case(k, Fault::Truncate(1), Dir::Down, false);
    }
}

#[test]
fn corrupt_a_byte() {
    for k in KINDS {
        // 0x93 (a frame's array head) becomes 0xc1, which msgpack never uses.
        case(k, Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Down, false);
        case(k, Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Up, true);
    }
}

#[test]
fn stop_reading() {
    for k in KINDS {
        case(k, Fault::StopReading(handshake_len(k)), Dir::Up, false);
    }
}

#[test]
fn reset() {
    for k in KINDS {
        case(k, Fault::Reset(MID), Dir::Down, false);
        case(k, Fault::Reset(1), Dir::Up, false);
    }
}

#[test]
fn half_close() {
    for k in KINDS {
        case(k, Fault::HalfClose(MID), Dir::Down, false);
        case(k, Fault::HalfClose(handshake_len(k)), Dir::Up, false);
        case(k, Fault::HalfClose(MID), Dir::Down, true);
    }
}

// ---------------------------------------------------------------------
// The resumable session (roles::Session with resume, served by a
// roles::ResumeServer): through every fault that ends a connection, it
// reconnects by itself and resumes; every message arrives exactly once,
// in order, both ways.

mod resume {
    use super::*;
    use sluice_core::roles::{Backoff, ResumeEvent, ResumeOptions, ResumeServer, ResumeServerOptions, SessionEvent, SessionOptions};
    use std::sync::atomic::{AtomicU64, Ordering};

    const N: u64 = 3000;

    fn num(b: Bytes) -> u64 {
        u64::from_le_bytes(b[..8].try_into().unwrap())
    }

    pub fn case(fault: Fault, dir: Dir) {
        let what = format!("Session+resume {fault:?} {dir:?}");
        let ropts = ResumeOptions { max_unacked: 1 << 20, ack_every: 64, ack_bytes: 64 << 10 };
        let got = Arc::new(AtomicU64::new(0));
        let (err_tx, err_rx) = mpsc::channel::<String>();
        let (g, etx) = (got.clone(), err_tx.clone());
        let mut sopts = ResumeServerOptions::new(Endpoint::Tcp("127.0.0.1".into(), 0), ChannelConfig::new(Dialect::V1, None));
        sopts.resume = ropts.clone();
        let srv = ResumeServer::bind(sopts, move |_: &ResumeServer, ev| {
            if let ResumeEvent::Frame { peer, frame } = ev {
                let n = num(frame.args.clone().into_first_bytes().unwrap());
                let want = g.load(Ordering::Relaxed);
                if n != want {
                    let _ = etx.send(format!("server got {n}, expected {want}"));
                }
                g.store(n + 1, Ordering::Relaxed);
                if n.is_multiple_of(10) {
                    peer.send_chunk(frame.session, &Bytes::copy_from_slice(&n.to_le_bytes())).unwrap();
                }
            }
        })
        .unwrap();
        let proxy = Proxy::start(srv.local(), Plan { fault, dir, conn: 0 });
        let echoed = Arc::new(AtomicU64::new(0));
        let resumed = Arc::new(AtomicU64::new(0));
        let (e, r, etx) = (echoed.clone(), resumed.clone(), err_tx.clone());
        let mut opts = SessionOptions::new(vec![proxy.endpoint()], ChannelConfig::new(Dialect::V1, None));
        opts.backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(20), multiplier: 2.0, jitter: 0.2 };
        opts.resume = Some(ropts);
        let s = sluice_core::roles::Session::connect(opts, move |_: &sluice_core::roles::Session, ev| match ev {
            SessionEvent::Frame(f) => {
                let n = num(f.args.into_first_bytes().unwrap());
                let want = e.load(Ordering::Relaxed) * 10;
                if n != want {
                    let _ = etx.send(format!("client got {n}, expected {want}"));
                }
                e.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Connected { resumed: true, .. } => drop(r.fetch_add(1, Ordering::Relaxed)),
            _ => {}
        })
        .unwrap();
        let t = Instant::now();
        for n in 0..N {
            let data = Bytes::copy_from_slice(&n.to_le_bytes());
            loop {
                match s.send_chunk(1, &data) {
                    Ok(()) => break,
                    Err(SendError::WouldBlock) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("{what}: send {n}: {e}"),
                }
                assert!(t.elapsed() < WAIT * 3, "{what}: stuck at {n}");
            }
        }
        while got.load(Ordering::Relaxed) < N || echoed.load(Ordering::Relaxed) < N / 10 {
            assert!(
                t.elapsed() < WAIT * 3,
                "{what}: server has {} of {N}, client {} of {} echoes",
                got.load(Ordering::Relaxed),
                echoed.load(Ordering::Relaxed),
                N / 10
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        let errors: Vec<String> = err_rx.try_iter().take(5).collect();
        assert!(errors.is_empty(), "{what}: {errors:?}");
        assert_eq!(got.load(Ordering::Relaxed), N, "{what}: nothing duplicated");
        assert_eq!(echoed.load(Ordering::Relaxed), N / 10, "{what}: nothing duplicated");
        let connections = proxy.accepted();
        if !matches!(fault, Fault::None | Fault::Split(_) | Fault::Delay(_)) {
            assert!(resumed.load(Ordering::Relaxed) >= 1, "{what}: the session resumed ({connections} connections)");
        }
        s.stop();
        srv.close();
        println!("fault-matrix: {what}: passed ({connections} connections, {} resumed)", resumed.load(Ordering::Relaxed));
    }
}

#[test]
fn resumable_session_through_every_fault() {
    resume::case(Fault::None, Dir::Up);
    resume::case(Fault::Split(7), Dir::Up);
    resume::case(Fault::Delay(Duration::from_millis(20)), Dir::Down);
    for dir in [Dir::Up, Dir::Down] {
        resume::case(Fault::Truncate(MID), dir);
        resume::case(Fault::Reset(MID), dir);
        resume::case(Fault::HalfClose(MID), dir);
    }
}

// ---------------------------------------------------------------------
// The worker/engine roles (roles::Worker ↔ roles::Engine), and a service
// call (Locator client, Service::call ↔ LocatorServer, Hosted).

#[path = "faults/service_call.rs"]
mod service_call;
#[path = "faults/worker_engine.rs"]
mod worker_engine;

#[test]
fn worker_engine_through_every_fault() {
    use worker_engine::case;
    case(Fault::None, Dir::Up, true);
    case(Fault::Split(1), Dir::Down, false);
    case(Fault::Split(7), Dir::Up, true);
    case(Fault::Delay(Duration::from_millis(20)), Dir::Down, false);
    case(Fault::Reorder, Dir::Up, true);
    case(Fault::Truncate(MID), Dir::Down, true);
    case(Fault::Truncate(MID), Dir::Up, false);
    case(Fault::Truncate(1), Dir::Down, false);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Down, true);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Up, false);
    case(Fault::StopReading(handshake_len(Kind::V1)), Dir::Up, true);
    case(Fault::Reset(MID), Dir::Down, false);
    case(Fault::Reset(1), Dir::Up, false);
    case(Fault::HalfClose(MID), Dir::Down, true);
    case(Fault::HalfClose(handshake_len(Kind::V1)), Dir::Up, false);
}

#[test]
fn service_call_through_every_fault() {
    use service_call::service as case;
    case(Fault::None, Dir::Up);
    case(Fault::Split(1), Dir::Down);
    case(Fault::Split(7), Dir::Up);
    case(Fault::Delay(Duration::from_millis(20)), Dir::Down);
    case(Fault::Reorder, Dir::Up);
    case(Fault::Truncate(MID), Dir::Down);
    case(Fault::Truncate(MID), Dir::Up);
    case(Fault::Truncate(1), Dir::Down);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Down);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Up);
    case(Fault::StopReading(0), Dir::Up);
    case(Fault::Reset(MID), Dir::Down);
    case(Fault::Reset(1), Dir::Up);
    case(Fault::HalfClose(MID), Dir::Down);
    case(Fault::HalfClose(MID), Dir::Up);
}

#[test]
fn locator_resolve_through_every_fault() {
    use service_call::{locator as case, LOC_AT};
    case(Fault::None, Dir::Up);
    case(Fault::Split(1), Dir::Down);
    case(Fault::Delay(Duration::from_millis(20)), Dir::Up);
    case(Fault::Truncate(LOC_AT), Dir::Down);
    case(Fault::Truncate(LOC_AT), Dir::Up);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Down);
    case(Fault::Corrupt(0, 0x93 ^ 0xc1), Dir::Up);
    case(Fault::StopReading(0), Dir::Down);
    case(Fault::Reset(LOC_AT), Dir::Down);
    case(Fault::Reset(1), Dir::Up);
    case(Fault::HalfClose(LOC_AT), Dir::Down);
    case(Fault::HalfClose(LOC_AT), Dir::Up);
}
