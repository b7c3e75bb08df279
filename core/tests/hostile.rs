//! Hostile peers: each is held by a documented limit with a clear error,
//! and the process's memory stays under a stated bound while it lasts
//! (docs/RELIABILITY.md quotes the figures these tests print).
//!
//! The tests take turns (one lock) so that each one's memory figure is
//! its own.
#![allow(clippy::field_reassign_with_default)]

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Buf;
use bytes::Bytes;
use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Delivery, Endpoint, Event, Incoming, SendError, Server};
use sluice_core::wire::{Dialect, Encoder, Message, Profile, Role};
use support::rss_kib;

const WAIT: Duration = Duration::from_secs(30);

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

fn events() -> (impl FnMut(&Channel, Event) + Send + 'static, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    (move |_: &Channel, ev: Event| drop(tx.send(ev)), rx)
}

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(WAIT).expect("no event within 30 s")
}

fn raw_peer() -> (TcpListener, Endpoint) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, Endpoint::Tcp("127.0.0.1".into(), port))
}

fn report(name: &str, figures: &str) {
    println!("hostile: {name}: held; {figures}");
}

/// A frame header declaring the largest chunk the channel accepts, then
/// one byte a second: `frame_timeout` ends the connection with ETIMEDOUT.
#[test]
fn max_size_frame_dribbled_a_byte_a_second() {
    let _turn = one_at_a_time();
    let (l, ep) = raw_peer();
    let mut config = ChannelConfig::new(Dialect::V1, None);
    config.frame_timeout = Some(Duration::from_millis(2500));
    let max = config.max_frame_size;
    let (h, rx) = events();
    let before = rss_kib();
    let _ch = Channel::connect(ep, config, h).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    assert_eq!(next(&rx), Event::Connected);
    // [2, 0, [bin32 of max - 16 bytes], ...: the whole frame would be
    // just under the limit.
    let mut head = vec![0x94, 0x02, 0x00, 0x91, 0xc6];
    head.extend_from_slice(&((max - 16) as u32).to_be_bytes());
    peer.write_all(&head).unwrap();
    let stop = Arc::new(AtomicUsize::new(0));
    let s = stop.clone();
    let dribbler = std::thread::spawn(move || {
        let mut sent = 0;
        while s.load(Ordering::Acquire) == 0 && peer.write_all(b"x").is_ok() {
            sent += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        sent
    });
    assert_eq!(next(&rx), Event::SocketError(errno::ETIMEDOUT));
    stop.store(1, Ordering::Release);
    let sent = dribbler.join().unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "one error, nothing after it");
    let grew = rss_kib().saturating_sub(before);
    assert!(grew < 16 << 10, "memory grew by {grew} KiB");
    report("max-size frame dribbled 1 byte/s", &format!("ETIMEDOUT after {sent} bytes; rss growth {grew} KiB (bound 16384)"));
}

/// A stream that keeps completing frames, however slowly each arrives, is
/// not cut by `frame_timeout`: it counts from the last complete frame.
#[test]
fn slow_but_progressing_stream_is_not_cut() {
    let _turn = one_at_a_time();
    let (l, ep) = raw_peer();
    let mut config = ChannelConfig::new(Dialect::V1, None);
    config.frame_timeout = Some(Duration::from_millis(1500));
    let (h, rx) = events();
    let ch = Channel::connect(ep, config, h).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    assert_eq!(next(&rx), Event::Connected);
    // Each frame in two halves 0.6 s apart, and the next one's first half
    // right behind it: a partial frame is always buffered, for 4 s.
    let frame = [0x93, 0x02, 0x00, 0x91, 0xa4, b'p', b'i', b'n', b'g'];
    peer.write_all(&frame[..4]).unwrap();
    for _ in 0..7 {
        std::thread::sleep(Duration::from_millis(600));
        let mut b = frame[4..].to_vec();
        b.extend_from_slice(&frame[..4]);
        peer.write_all(&b).unwrap();
        assert!(matches!(next(&rx), Event::Frame(f) if f.ty == 0));
    }
    assert!(rx.try_recv().is_err());
    ch.abort();
    report("slow but progressing stream", "7 frames at 0.6 s each under a 1.5 s frame_timeout: not cut");
}

/// A peer that connects and says nothing: `read_idle_timeout`.
#[test]
fn silent_peer_and_read_idle_timeout() {
    let _turn = one_at_a_time();
    let (l, ep) = raw_peer();
    let mut config = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
    config.read_idle_timeout = Some(Duration::from_millis(300));
    let (h, rx) = events();
    let _ch = Channel::connect(ep, config, h).unwrap();
    let (_peer, _) = l.accept().unwrap();
    assert_eq!(next(&rx), Event::Connected);
    assert_eq!(next(&rx), Event::SocketError(errno::ETIMEDOUT));
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    report("silent peer", "ETIMEDOUT after read_idle_timeout");
}

/// An engine (sluice) that opens sessions without end and never closes
/// them: the worker opens `max_sessions`, drops the rest as frames, and
/// its state stays bounded; closing sessions makes room again.
#[test]
fn endless_new_sessions() {
    let _turn = one_at_a_time();
    let grew = sessions(1000);
    assert!(grew < 16 << 10, "memory grew by {grew} KiB");
    // For comparison (not a check): the same peer without the limit.
    let unlimited = sessions(usize::MAX);
    report(
        "endless new sessions",
        &format!(
            "1000000 invokes, max_sessions 1000: 1000 opened, the rest dropped; rss growth {grew} KiB \
             (bound 16384; {unlimited} KiB with no limit)"
        ),
    );
}

/// Opens a million sessions on a worker with `LIMIT`; returns its memory growth.
#[allow(non_snake_case)]
fn sessions(LIMIT: usize) -> usize {
    const N: u64 = 1_000_000;
    // The engine is a plain socket writing encoded invokes, so that the
    // memory measured is the worker's alone.
    let (l, ep) = raw_peer();
    let invokes = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let (i2, d2) = (invokes.clone(), dropped.clone());
    let mut config = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
    config.max_sessions = LIMIT;
    let before = rss_kib();
    let worker = Channel::connect(ep, config, move |ch: &Channel, ev: Event| match ev {
        Event::Connected => ch.send(1, &Message::Handshake { uuid: Bytes::from_static(b"w") }).unwrap(),
        Event::Message { message: Message::Invoke { .. }, .. } => drop(i2.fetch_add(1, Ordering::AcqRel)),
        Event::Frame(_) => drop(d2.fetch_add(1, Ordering::AcqRel)),
        Event::Message { message: Message::Heartbeat, .. } => drop(done_tx.send(())),
        _ => {}
    })
    .unwrap();
    let (mut engine, _) = l.accept().unwrap();
    let send = |engine: &mut TcpStream, msgs: &[(u64, Message)]| {
        let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
        for (s, m) in msgs {
            enc.message(*s, m, &[]);
        }
        let n = enc.out().remaining();
        engine.write_all(&enc.out().copy_to_bytes(n)).unwrap();
    };
    let ev = Message::Invoke { event: Bytes::from_static(b"e") };
    let mut s = 2u64;
    while s < N + 2 {
        let batch: Vec<_> = (s..(s + 10_000).min(N + 2)).map(|i| (i, ev.clone())).collect();
        s += batch.len() as u64;
        send(&mut engine, &batch);
    }
    send(&mut engine, &[(1, Message::Heartbeat)]);
    done_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(invokes.load(Ordering::Acquire), LIMIT.min(N as usize));
    assert_eq!(dropped.load(Ordering::Acquire), N as usize - LIMIT.min(N as usize));
    let grew = rss_kib().saturating_sub(before);
    // Room again once a session closes.
    send(&mut engine, &[(2, Message::Choke), (s, ev.clone()), (1, Message::Heartbeat)]);
    done_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(invokes.load(Ordering::Acquire), LIMIT.min(N as usize) + 1);
    worker.abort();
    grew
}

/// A flood of chunks at a poll-mode consumer that never dispatches:
/// reading pauses at `max_pending`, the sender's queue fills to its high
/// watermark and refuses; memory stays bounded; nothing is lost once the
/// consumer reads.
#[test]
fn chunk_flood_at_a_consumer_that_does_not_read() {
    let _turn = one_at_a_time();
    flood(Message::Chunk { data: Bytes::from(vec![b'c'; 64 << 10]) }, "chunk flood (64 KiB chunks)");
}

/// The same with empty messages (heartbeats): each event counts towards
/// `max_pending`, so they are bounded too.
#[test]
fn heartbeat_flood_at_a_consumer_that_does_not_read() {
    let _turn = one_at_a_time();
    flood(Message::Heartbeat, "heartbeat flood");
}

fn flood(msg: Message, name: &str) {
    let (acc_tx, acc_rx) = mpsc::channel();
    let mut sconf = ChannelConfig::new(Dialect::V0, Some(Role::Worker));
    sconf.delivery = Delivery::Poll;
    sconf.max_pending = 4 << 20;
    let consumer_count = Arc::new(AtomicUsize::new(0));
    let cc = consumer_count.clone();
    let server = Server::bind(&Endpoint::Tcp("127.0.0.1".into(), 0), sconf, move |_: &Server, inc: Incoming| {
        let cc = cc.clone();
        let ch = inc
            .start(move |_: &Channel, ev: Event| {
                if let Event::Message { .. } = ev {
                    cc.fetch_add(1, Ordering::AcqRel);
                }
            })
            .unwrap();
        let _ = acc_tx.send(ch);
    })
    .unwrap();
    // Accepting is in poll mode too.
    let (drain_tx, drain_rx) = mpsc::channel();
    let before = rss_kib();
    let sender =
        Channel::connect(server.local().clone(), ChannelConfig::new(Dialect::V0, Some(Role::Engine)), move |_: &Channel, ev: Event| {
            if ev == Event::Drain {
                let _ = drain_tx.send(());
            }
        })
        .unwrap();
    let consumer = loop {
        server.dispatch(usize::MAX).unwrap();
        if let Ok(c) = acc_rx.try_recv() {
            break c;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let s = if let Message::Heartbeat = msg { 0 } else { 1 };
    let mut sent = 0usize;
    let mut peak = 0usize;
    // Send until the sender is refused and no drain follows: the consumer
    // holds its max_pending, the sockets are full, the queue is at its
    // watermark.
    loop {
        match sender.send(s, &msg) {
            Ok(()) => sent += 1,
            Err(SendError::WouldBlock) => {
                if drain_rx.recv_timeout(Duration::from_millis(500)).is_err() {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
        if sent.is_multiple_of(1024) {
            peak = peak.max(rss_kib().saturating_sub(before));
        }
        assert!(sent < 50_000_000, "the flood was never held");
    }
    let grew = rss_kib().saturating_sub(before).max(peak);
    assert!(grew < 96 << 10, "memory grew by {grew} KiB");
    assert!(sender.queued() <= sender.config().high_watermark + (64 << 10) + 64);
    // The consumer reads again: every message arrives.
    while consumer_count.load(Ordering::Acquire) < sent {
        if consumer.dispatch(usize::MAX).unwrap() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(consumer_count.load(Ordering::Acquire), sent, "nothing duplicated");
    sender.abort();
    consumer.abort();
    server.close();
    report(name, &format!("{sent} messages held until read, none lost; rss growth {grew} KiB (bound 98304, max_pending 4 MiB)"));
}

/// A valid handshake, then garbage: the engine reports EBADMSG once,
/// after delivering the handshake.
#[test]
fn garbage_after_a_valid_handshake() {
    let _turn = one_at_a_time();
    let (acc_tx, acc_rx) = mpsc::channel();
    let server = Server::bind(
        &Endpoint::Tcp("127.0.0.1".into(), 0),
        ChannelConfig::new(Dialect::V1, Some(Role::Engine)),
        move |_: &Server, inc: Incoming| {
            let (h, rx) = events();
            let ch = inc.start(h).unwrap();
            let _ = acc_tx.send((ch, rx));
        },
    )
    .unwrap();
    let Endpoint::Tcp(host, port) = server.local().clone() else { unreachable!() };
    let mut peer = TcpStream::connect((host.as_str(), port)).unwrap();
    peer.write_all(&[0x93, 0x01, 0x00, 0x91, 0xa2, b'i', b'd']).unwrap();
    peer.write_all(&[0xc1; 64]).unwrap();
    let (_engine, rx) = acc_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(next(&rx), Event::Connected);
    assert_eq!(next(&rx), Event::Message { session: 1, message: Message::Handshake { uuid: Bytes::from_static(b"id") }, headers: vec![] });
    assert_eq!(next(&rx), Event::SocketError(errno::EBADMSG));
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    server.close();
    report("garbage after a valid handshake", "EBADMSG once, after the handshake");
}
