//! Chunks delivered borrowed through `Handler::on_chunk`, and the
//! end-of-batch hook, over real sockets: a raw peer writes a v1 stream at
//! random splits and the handler sees every message in wire order, chunk
//! payloads intact (also those it keeps past the call), headers included.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Chunk, Delivery, Endpoint, Event, Handler};
use sluice_core::wire::{Dialect, Encoder, Header, Message, Profile, Role};

const WAIT: Duration = Duration::from_secs(10);

/// What the handler saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// From `on_chunk`: session, payload, header names.
    Chunk(u64, Bytes, Vec<Bytes>),
    /// From `on_event`.
    Event(Event),
    /// `on_batch_end`.
    BatchEnd,
}

struct Recorder {
    tx: mpsc::Sender<Seen>,
    /// Payloads kept past the call (to_bytes), checked at the end.
    kept: Vec<Bytes>,
    keep: mpsc::Sender<Vec<Bytes>>,
}

impl Handler for Recorder {
    fn on_event(&mut self, _: &Channel, event: Event) {
        assert!(!matches!(event, Event::Message { message: Message::Chunk { .. }, .. }), "chunks go to on_chunk");
        let last = matches!(event, Event::SocketError(_));
        let _ = self.tx.send(Seen::Event(event));
        if last {
            let _ = self.keep.send(std::mem::take(&mut self.kept));
        }
    }

    fn on_chunk(&mut self, _: &Channel, chunk: Chunk<'_>) {
        assert_eq!(&chunk[..], chunk.data());
        let kept = chunk.to_bytes();
        assert_eq!(kept, chunk.data());
        self.kept.push(kept.clone());
        let names = chunk.headers().iter().map(|h| h.name.clone()).collect();
        let _ = self.tx.send(Seen::Chunk(chunk.session(), kept, names));
    }

    fn on_batch_end(&mut self, _: &Channel) {
        let _ = self.tx.send(Seen::BatchEnd);
    }
}

fn payload(n: usize, seed: u8) -> Bytes {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into()
}

/// A v1 engine's stream: invoke, chunks of every string size class (both
/// profiles), a chunk with a header, close, then a chunk on the closed
/// channel (dropped: delivered as a frame).
fn stream() -> (Vec<u8>, Vec<Seen>) {
    let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
    let mut modern = Encoder::new(Dialect::V1, Profile::Modern);
    let mut bytes = Vec::new();
    let mut take = |e: &mut Encoder| {
        use bytes::Buf;
        let n = e.out().remaining();
        bytes.extend_from_slice(&e.out().copy_to_bytes(n));
    };
    let mut want = Vec::new();
    enc.message(2, &Message::Invoke { event: Bytes::from_static(b"echo") }, &[]);
    take(&mut enc);
    want.push(Seen::Event(Event::Message { session: 2, message: Message::Invoke { event: Bytes::from_static(b"echo") }, headers: vec![] }));
    for (i, n) in [0usize, 5, 31, 32, 64, 255, 256, 1000, 65535, 65536, 70000, 3].into_iter().enumerate() {
        let p = payload(n, i as u8);
        let e = if i % 2 == 0 { &mut enc } else { &mut modern };
        e.chunk(2, &p, &[]);
        take(e);
        want.push(Seen::Chunk(2, p, vec![]));
    }
    let h = Header::new(Bytes::from_static(b"trace_id"), Bytes::from_static(&[1, 0, 0, 0, 0, 0, 0, 0]));
    let p = payload(10, 99);
    enc.chunk(2, &p, std::slice::from_ref(&h));
    take(&mut enc);
    want.push(Seen::Chunk(2, p, vec![Bytes::from_static(b"trace_id")]));
    enc.message(2, &Message::Choke, &[]);
    take(&mut enc);
    want.push(Seen::Event(Event::Message { session: 2, message: Message::Choke, headers: vec![] }));
    enc.chunk(2, &Bytes::from_static(b"late"), &[]);
    take(&mut enc);
    // [2, 0, ["late"]] on a closed channel: a generic frame.
    want.push(Seen::Event(Event::Frame(sluice_core::wire::Frame {
        session: 2,
        ty: 0,
        args: sluice_core::wire::Args::from_raw(Bytes::from_static(b"\x91\xa4late")).unwrap(),
        headers: vec![],
    })));
    (bytes, want)
}

fn raw_peer() -> (std::net::TcpListener, Endpoint) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, Endpoint::Tcp("127.0.0.1".into(), port))
}

#[test]
fn chunks_split_anywhere_arrive_borrowed_in_order_and_can_be_kept() {
    let (bytes, want) = stream();
    let mut seed = 0x2545f4914f6cdd1du64;
    for round in 0..12 {
        let (l, ep) = raw_peer();
        let (tx, rx) = mpsc::channel();
        let (keep_tx, keep_rx) = mpsc::channel();
        let mut config = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
        config.read_size = 4096; // many reads: payloads cross read boundaries
        let ch = Channel::connect(ep, config, Recorder { tx, kept: Vec::new(), keep: keep_tx }).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        peer.set_nodelay(true).unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = match round {
                0 => bytes.len(),
                1 => 1 + (seed % 7) as usize,
                _ => 1 + (seed % 20_000) as usize,
            };
            let end = (pos + n).min(bytes.len());
            peer.write_all(&bytes[pos..end]).unwrap();
            pos = end;
            if seed.is_multiple_of(5) {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        drop(peer);
        let mut got = Vec::new();
        let mut batch_ends = 0;
        loop {
            match rx.recv_timeout(WAIT).expect("an event") {
                Seen::BatchEnd => batch_ends += 1,
                Seen::Event(Event::SocketError(e)) => {
                    assert_eq!(e, errno::ESHUTDOWN);
                    break;
                }
                Seen::Event(Event::Connected) => {}
                s => got.push(s),
            }
        }
        assert_eq!(got, want, "round {round}");
        assert!(batch_ends >= 1, "on_batch_end after the runs of events");
        // Kept payloads stay intact after the receive buffer moved on.
        let kept = keep_rx.recv_timeout(WAIT).unwrap();
        let want_kept: Vec<Bytes> = want
            .iter()
            .filter_map(|s| match s {
                Seen::Chunk(_, p, _) => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(kept, want_kept);
        ch.close();
    }
}

#[test]
fn a_closure_handler_still_gets_chunks_as_events() {
    let (bytes, want) = stream();
    let (l, ep) = raw_peer();
    let (tx, rx) = mpsc::channel();
    let ch = Channel::connect(ep, ChannelConfig::new(Dialect::V1, Some(Role::Worker)), move |_: &Channel, ev: Event| {
        let _ = tx.send(ev);
    })
    .unwrap();
    let (mut peer, _) = l.accept().unwrap();
    peer.write_all(&bytes).unwrap();
    drop(peer);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Event::Connected);
    for w in want {
        let ev = rx.recv_timeout(WAIT).unwrap();
        match w {
            Seen::Chunk(session, data, names) => match ev {
                Event::Message { session: s, message: Message::Chunk { data: d }, headers } => {
                    assert_eq!((s, d), (session, data));
                    assert_eq!(headers.iter().map(|h| h.name.clone()).collect::<Vec<_>>(), names);
                }
                other => panic!("expected a chunk, got {other:?}"),
            },
            Seen::Event(e) => assert_eq!(ev, e),
            Seen::BatchEnd => unreachable!(),
        }
    }
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Event::SocketError(errno::ESHUTDOWN));
    ch.close();
}

#[test]
fn poll_delivery_gives_chunks_to_on_chunk_and_ends_each_dispatch() {
    let (bytes, want) = stream();
    let (l, ep) = raw_peer();
    let (tx, rx) = mpsc::channel();
    let (keep_tx, _keep_rx) = mpsc::channel();
    let mut config = ChannelConfig::new(Dialect::V1, Some(Role::Worker));
    config.delivery = Delivery::Poll;
    let ch = Channel::connect(ep, config, Recorder { tx, kept: Vec::new(), keep: keep_tx }).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    peer.write_all(&bytes).unwrap();
    drop(peer);
    let fd = ch.fd().unwrap();
    let mut got = Vec::new();
    let mut dispatches = 0;
    let mut ends = 0;
    'outer: loop {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut p, 1, 10_000) }, 1, "the fd became readable");
        // Small dispatches: every one that runs events ends with the hook.
        let n = ch.dispatch(3).unwrap();
        if n > 0 {
            dispatches += 1;
        }
        for s in rx.try_iter() {
            match s {
                Seen::BatchEnd => ends += 1,
                Seen::Event(Event::SocketError(_)) => break 'outer,
                Seen::Event(Event::Connected) => {}
                s => got.push(s),
            }
        }
    }
    assert_eq!(got, want);
    assert_eq!(ends + 1, dispatches, "one on_batch_end per dispatch (the last one is still running when the loop ends)");
    ch.close();
}

/// Many short writes, each read as it comes while more arrive: every chunk
/// is delivered (a read loop that lost a readiness event would stall with
/// data unread).
#[test]
fn a_stream_of_small_writes_is_read_to_the_end() {
    let (l, ep) = raw_peer();
    let (tx, rx) = mpsc::channel();
    let total = 200_000u64;
    let mut n = 0u64;
    let ch = Channel::connect(ep, ChannelConfig::new(Dialect::V1, Some(Role::Worker)), move |_: &Channel, ev: Event| {
        if let Event::Message { message: Message::Chunk { .. }, .. } = ev {
            n += 1;
            if n.is_multiple_of(10_000) {
                let _ = tx.send(n);
            }
        }
    })
    .unwrap();
    let (mut peer, _) = l.accept().unwrap();
    peer.set_nodelay(true).unwrap();
    let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
    enc.message(2, &Message::Invoke { event: Bytes::from_static(b"e") }, &[]);
    for i in 0..total {
        enc.chunk(2, &payload(1 + (i % 90) as usize, i as u8), &[]);
    }
    let bytes = {
        use bytes::Buf;
        let k = enc.out().remaining();
        enc.out().copy_to_bytes(k)
    };
    let writer = std::thread::spawn(move || {
        let mut seed = 0x853c49e6748fea9bu64;
        let mut pos = 0;
        while pos < bytes.len() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let end = (pos + 1 + (seed % 3000) as usize).min(bytes.len());
            peer.write_all(&bytes[pos..end]).unwrap();
            pos = end;
            if seed.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
        peer
    });
    let mut last = 0;
    while last < total {
        last = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("stalled after {last} chunks"));
    }
    drop(writer.join().unwrap());
    ch.close();
}
