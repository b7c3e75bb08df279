//! The protocol roles over real Unix sockets: a sluice worker and a sluice
//! engine in both dialects — handshake, 1,000 sessions with chunks both
//! ways, errors, terminate both ways, disown when the engine falls silent,
//! and the engine cutting a silent worker.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Delivery, Endpoint, Event, Server};
use sluice_core::roles::{Engine, EngineEvent, EngineOptions, Worker, WorkerEvent, WorkerOptions};
use sluice_core::wire::Dialect;

const WAIT: Duration = Duration::from_secs(20);

fn temp_sock(name: &str) -> Endpoint {
    let p = std::env::temp_dir().join(format!("sluice-roles-{}-{name}.sock", std::process::id()));
    Endpoint::Unix(p)
}

fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(WAIT).expect("no event within 20 s")
}

/// A worker that echoes every chunk upper-cased and answers sessions whose
/// event is "fail" with an error; it answers the engine's terminate with
/// its own (echoing the code).
fn echo_worker(opts: WorkerOptions) -> (Worker, mpsc::Receiver<WorkerEvent>) {
    let (tx, rx) = mpsc::channel();
    let mut failing = std::collections::HashSet::new();
    let w = Worker::connect(opts, move |w: &Worker, ev: WorkerEvent| {
        match &ev {
            WorkerEvent::Invoke { stream, event, .. } if &event[..] == b"fail" => {
                failing.insert(stream.session());
            }
            WorkerEvent::Chunk { session, data } if !failing.contains(session) => {
                w.stream(*session).write(&Bytes::from(data.to_ascii_uppercase())).unwrap();
            }
            WorkerEvent::Close { session } => {
                if failing.remove(session) {
                    w.stream(*session).error(42, "refused").unwrap();
                } else {
                    w.stream(*session).close().unwrap();
                }
            }
            WorkerEvent::Terminate { code, .. } => w.terminate(*code, "worker shut down"),
            _ => {}
        }
        let _ = tx.send(ev);
    })
    .unwrap();
    (w, rx)
}

fn engine(endpoint: Endpoint, dialect: Dialect, tune: impl FnOnce(&mut EngineOptions)) -> (Engine, mpsc::Receiver<EngineEvent>) {
    let (tx, rx) = mpsc::channel();
    let mut o = EngineOptions::new(endpoint, dialect);
    tune(&mut o);
    let e = Engine::bind(o, move |_: &Engine, ev| drop(tx.send(ev))).unwrap();
    (e, rx)
}

fn worker_and_engine(dialect: Dialect, name: &str) {
    let ep = temp_sock(name);
    let (engine, erx) = engine(ep.clone(), dialect, |o| {
        o.uuids = Some(["6d0b4c1e".to_string(), "second".to_string()].into_iter().collect());
    });
    let mut opts = WorkerOptions::new("6d0b4c1e", ep.clone(), dialect);
    opts.heartbeat_interval = Duration::from_millis(50);
    let (_worker, wrx) = echo_worker(opts);
    assert!(matches!(recv(&wrx), WorkerEvent::Connected));
    let w = match recv(&erx) {
        EngineEvent::Handshake { worker } => worker,
        other => panic!("expected the handshake, got {other:?}"),
    };
    assert_eq!(w.uuid().as_deref(), Some("6d0b4c1e"));
    assert_eq!(engine.workers(), vec![w.clone()]);

    // 1,000 sessions, three chunks each; every tenth one fails.
    const N: usize = 1000;
    let mut expected = HashMap::new();
    for i in 0..N {
        let event = if i % 10 == 9 { "fail" } else { "echo" };
        let s = w.invoke(event).unwrap();
        for k in 0..3 {
            s.write(&Bytes::from(format!("s{i}-c{k}"))).unwrap();
        }
        s.close().unwrap();
        expected.insert(s.session(), i);
    }
    let mut replies: HashMap<u64, Vec<String>> = HashMap::new();
    let (mut closed, mut failed, mut heartbeats) = (0, 0, 0);
    while closed + failed < N {
        match recv(&erx) {
            EngineEvent::Chunk { session, data, .. } => replies.entry(session).or_default().push(String::from_utf8(data.to_vec()).unwrap()),
            EngineEvent::Close { session, .. } => {
                let i = expected[&session];
                assert_ne!(i % 10, 9);
                let want: Vec<String> = (0..3).map(|k| format!("S{i}-C{k}")).collect();
                assert_eq!(replies.remove(&session).unwrap_or_default(), want, "session {session}");
                closed += 1;
            }
            EngineEvent::Error { session, category, code, message, .. } => {
                assert_eq!(expected[&session] % 10, 9);
                assert!(!replies.contains_key(&session));
                assert_eq!(code, 42);
                assert_eq!(category, if dialect == Dialect::V1 { Some(42) } else { None });
                assert_eq!(message.as_deref(), Some(&b"refused"[..]));
                failed += 1;
            }
            EngineEvent::Heartbeat { .. } => heartbeats += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((closed, failed), (900, 100));
    assert_eq!(w.open_sessions(), 0);

    // The worker got every invoke, chunk and close in order.
    let (mut seen, mut chunks, mut closes, mut hb) = (0, 0, 0, 0);
    while closes < N {
        match recv(&wrx) {
            WorkerEvent::Invoke { stream, .. } => {
                assert_eq!((chunks, closes), (3 * seen, seen), "sessions arrive one after the other");
                assert!(expected.contains_key(&stream.session()));
                seen += 1;
            }
            WorkerEvent::Chunk { .. } => chunks += 1,
            WorkerEvent::Close { .. } => closes += 1,
            WorkerEvent::Heartbeat => hb += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((seen, chunks), (N, 3 * N));
    // Heartbeats went both ways and were answered.
    while heartbeats == 0 || hb == 0 {
        match recv(&erx) {
            EngineEvent::Heartbeat { .. } => heartbeats += 1,
            other => panic!("unexpected {other:?}"),
        }
        if let Ok(WorkerEvent::Heartbeat) = wrx.recv_timeout(Duration::from_millis(100)) {
            hb += 1;
        }
    }

    // Engine-initiated terminate: the worker answers with the same code.
    w.terminate(7, "slave is idle").unwrap();
    loop {
        match recv(&erx) {
            EngineEvent::Heartbeat { .. } => continue,
            EngineEvent::Terminate { code, reason, .. } => {
                assert_eq!(code, 7);
                assert_eq!(&reason[..], b"worker shut down");
                break;
            }
            other => panic!("expected terminate, got {other:?}"),
        }
    }
    match recv(&erx) {
        EngineEvent::Gone { errno: e, worker } => {
            assert_eq!(e, errno::ESHUTDOWN);
            assert_eq!(worker, w);
        }
        other => panic!("expected gone, got {other:?}"),
    }
    assert!(engine.workers().is_empty());

    // Worker-initiated terminate (abnormal).
    let (w2, w2rx) = echo_worker(WorkerOptions::new("second", ep.clone(), dialect));
    assert!(matches!(recv(&w2rx), WorkerEvent::Connected));
    assert!(matches!(recv(&erx), EngineEvent::Handshake { .. }));
    w2.terminate(2, "self-terminating");
    let mut got = vec![];
    loop {
        match recv(&erx) {
            EngineEvent::Heartbeat { .. } => {}
            EngineEvent::Terminate { code, reason, .. } => got.push(format!("terminate {code} {}", String::from_utf8_lossy(&reason))),
            EngineEvent::Gone { errno: e, .. } => {
                got.push(format!("gone {e}"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, vec!["terminate 2 self-terminating".to_string(), format!("gone {}", errno::ESHUTDOWN)]);

    // A uuid the engine did not spawn is refused and disconnected.
    let (_w3, w3rx) = echo_worker(WorkerOptions::new("stranger", ep.clone(), dialect));
    assert!(matches!(recv(&w3rx), WorkerEvent::Connected));
    match recv(&erx) {
        EngineEvent::Rejected { uuid } => assert_eq!(uuid, "stranger"),
        other => panic!("expected rejected, got {other:?}"),
    }
    match recv(&w3rx) {
        WorkerEvent::Disconnected { errno: e, sessions } => {
            // Cut while its heartbeat was on the way: EPIPE is as right.
            assert!([errno::ECONNRESET, errno::ESHUTDOWN, errno::EPIPE].contains(&e), "errno {e}");
            assert!(sessions.is_empty());
        }
        other => panic!("expected disconnected, got {other:?}"),
    }
    engine.close();
}

#[test]
fn worker_and_engine_v1() {
    worker_and_engine(Dialect::V1, "life-v1");
}

#[test]
fn worker_and_engine_v0() {
    worker_and_engine(Dialect::V0, "life-v0");
}

/// An engine that accepts and reads but never answers: the worker
/// heartbeats, then disowns itself with ETIMEDOUT; its open session is
/// reported failed.
#[test]
fn worker_disowns_a_silent_engine() {
    for dialect in [Dialect::V0, Dialect::V1] {
        let ep = temp_sock(&format!("silent-engine-{dialect:?}"));
        let (acc_tx, acc_rx) = mpsc::channel();
        let (frames_tx, frames_rx) = mpsc::channel();
        let mut cfg = ChannelConfig::new(dialect, None);
        cfg.delivery = Delivery::Inline;
        let server = Server::bind(&ep, cfg, move |_: &Server, inc: sluice_core::net::Incoming| {
            let tx = frames_tx.clone();
            let ch = inc.start(move |_: &Channel, ev: Event| drop(tx.send(ev))).unwrap();
            acc_tx.send(ch).unwrap();
        })
        .unwrap();
        let mut opts = WorkerOptions::new("u", ep.clone(), dialect);
        opts.heartbeat_interval = Duration::from_millis(30);
        opts.disown_timeout = Duration::from_millis(300);
        let (_w, wrx) = echo_worker(opts);
        assert!(matches!(recv(&wrx), WorkerEvent::Connected));
        let engine_side = recv(&acc_rx);
        // Open one session, then fall silent.
        let invoke: &[u8] = match dialect {
            Dialect::V0 => b"\x93\x03\x01\x91\xa4ping",
            Dialect::V1 => b"\x93\x02\x00\x91\xa4ping",
        };
        engine_side.send_raw(Bytes::from_static(invoke)).unwrap();
        let s = match recv(&wrx) {
            WorkerEvent::Invoke { stream, .. } => stream.session(),
            other => panic!("expected invoke, got {other:?}"),
        };
        assert!(matches!(recv(&wrx), WorkerEvent::Disown));
        match recv(&wrx) {
            WorkerEvent::Disconnected { errno: e, sessions } => {
                assert_eq!(e, errno::ETIMEDOUT);
                assert_eq!(sessions, vec![s]);
            }
            other => panic!("expected disconnected, got {other:?}"),
        }
        // Handshake first, then several heartbeats reached the engine side.
        let mut frames = vec![];
        while let Ok(ev) = frames_rx.recv_timeout(Duration::from_millis(500)) {
            if let Event::Frame(f) = ev {
                frames.push(f.ty);
            }
        }
        let hb = if dialect == Dialect::V0 { 1 } else { 0 };
        assert_eq!(frames[0], 0, "handshake first");
        assert!(frames[1..].iter().filter(|&&t| t == hb).count() >= 3, "{frames:?}");
        server.close();
    }
}

/// Workers that stop talking are cut by the engine: one never handshakes,
/// one handshakes and then sends nothing.
#[test]
fn engine_cuts_silent_workers() {
    let ep = temp_sock("silent-worker");
    let (engine, erx) = engine(ep.clone(), Dialect::V1, |o| {
        o.handshake_timeout = Duration::from_millis(200);
        o.heartbeat_timeout = Duration::from_millis(400);
    });
    let Endpoint::Unix(path) = &ep else { unreachable!() };
    let mut mute = std::os::unix::net::UnixStream::connect(path).unwrap();
    match recv(&erx) {
        EngineEvent::Gone { errno: e, worker } => {
            assert_eq!(e, errno::ETIMEDOUT);
            assert_eq!(worker.uuid(), None);
        }
        other => panic!("expected gone, got {other:?}"),
    }
    let mut sink = vec![];
    assert_eq!(mute.read_to_end(&mut sink).unwrap_or(0), 0);

    let mut quiet = std::os::unix::net::UnixStream::connect(path).unwrap();
    quiet.write_all(b"\x93\x01\x00\x91\xa5quiet").unwrap();
    assert!(matches!(recv(&erx), EngineEvent::Handshake { .. }));
    match recv(&erx) {
        EngineEvent::Gone { errno: e, worker } => {
            assert_eq!(e, errno::ETIMEDOUT);
            assert_eq!(worker.uuid().as_deref(), Some("quiet"));
        }
        other => panic!("expected gone, got {other:?}"),
    }
    engine.close();
}

/// Poll delivery: the worker's events wait behind its descriptor and run
/// in `dispatch` on this thread.
#[test]
fn worker_in_poll_mode() {
    let ep = temp_sock("poll");
    let (engine, erx) = engine(ep.clone(), Dialect::V1, |_| {});
    let mut opts = WorkerOptions::new("p", ep.clone(), Dialect::V1);
    opts.channel.delivery = Delivery::Poll;
    let here = std::thread::current().id();
    let (tx, rx) = mpsc::channel();
    let w = Worker::connect(opts, move |w: &Worker, ev: WorkerEvent| {
        assert_eq!(std::thread::current().id(), here);
        if let WorkerEvent::Chunk { session, data } = &ev {
            w.stream(*session).write(data).unwrap();
            w.stream(*session).close().unwrap();
        }
        tx.send(ev).unwrap();
    })
    .unwrap();
    let fd = w.fd().expect("a descriptor");
    let wait = |fd| assert!(libc_poll(fd) > 0, "descriptor readable");
    wait(fd);
    w.dispatch(100).unwrap();
    assert!(matches!(recv(&rx), WorkerEvent::Connected));
    let worker = match recv(&erx) {
        EngineEvent::Handshake { worker } => worker,
        other => panic!("{other:?}"),
    };
    let s = worker.invoke("poll").unwrap();
    s.write(&Bytes::from_static(b"x")).unwrap();
    let mut got = vec![];
    while got.len() < 2 {
        wait(fd);
        w.dispatch(100).unwrap();
        while let Ok(ev) = rx.try_recv() {
            match ev {
                WorkerEvent::Heartbeat => {}
                ev => got.push(format!("{ev:?}")),
            }
        }
    }
    assert!(got[0].starts_with("Invoke"), "{got:?}");
    assert!(got[1].starts_with("Chunk"), "{got:?}");
    loop {
        match recv(&erx) {
            EngineEvent::Chunk { data, .. } => assert_eq!(&data[..], b"x"),
            EngineEvent::Close { .. } => break,
            EngineEvent::Heartbeat { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    engine.close();
}

fn libc_poll(fd: i32) -> i32 {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    extern "C" {
        fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    let mut pfd = PollFd { fd, events: 1, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { poll(&mut pfd, 1, 20_000) }
}
