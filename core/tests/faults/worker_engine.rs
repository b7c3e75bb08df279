//! The worker/engine roles (`roles::Worker` ↔ `roles::Engine`, v1) through
//! the proxy, over TCP and Unix sockets. The engine invokes `echo` on each
//! worker that handshakes, writes `K` chunks and closes; the worker echoes
//! each chunk and closes back. Heartbeats (the worker's first one and the
//! engine's answer) flow too but are left out of the comparison.
//!
//! Outcomes (docs/RELIABILITY.md, "The fault matrix"):
//!
//! * a fault that loses no byte changes nothing;
//! * a fault that ends the connection gives the worker exactly one
//!   `Disconnected { errno, sessions }`, last, listing the session it had
//!   not finished, and the engine exactly one `Gone { errno }` for that
//!   worker, last (also for a worker that never got to handshake); the
//!   errnos are those of the plain channel;
//! * afterwards the engine holds nothing of the worker (`workers()` without
//!   it, no open session, sends refused) and the worker's handler is
//!   dropped;
//! * another worker connecting afterwards completes the conversation.

use super::*;
use sluice_core::roles::{Engine, EngineEvent, EngineOptions, StreamError, Worker, WorkerEvent, WorkerOptions, WorkerRef};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

/// The engine's events, sorted by worker connection.
struct EngineLog {
    rx: mpsc::Receiver<(WorkerRef, Seen)>,
    queues: HashMap<u64, VecDeque<Seen>>,
    fresh: VecDeque<WorkerRef>,
}

impl EngineLog {
    fn pump(&mut self) {
        let (w, s) = self.rx.recv_timeout(WAIT).expect("no engine event within 20 s");
        if !self.queues.contains_key(&w.id()) {
            self.fresh.push_back(w.clone());
        }
        self.queues.entry(w.id()).or_default().push_back(s);
    }

    /// The next worker connection the engine reports (in order of its
    /// first event).
    fn next_worker(&mut self) -> WorkerRef {
        loop {
            if let Some(w) = self.fresh.pop_front() {
                return w;
            }
            self.pump();
        }
    }

    fn next(&mut self, w: &WorkerRef) -> Seen {
        loop {
            if let Some(s) = self.queues.get_mut(&w.id()).and_then(VecDeque::pop_front) {
                return s;
            }
            self.pump();
        }
    }

    fn collect(&mut self, w: &WorkerRef, len: usize) -> Vec<Seen> {
        let mut v = Vec::new();
        while v.len() < len {
            let s = self.next(w);
            let end = matches!(s, Seen::Error(_));
            v.push(s);
            if end {
                break;
            }
        }
        v
    }

    /// Once the engine is closed: nothing arrived for any worker after
    /// what the case consumed.
    fn nothing_more(&mut self, what: &str) {
        for (w, s) in self.rx.try_iter() {
            self.queues.entry(w.id()).or_default().push_back(s);
        }
        for (id, q) in &self.queues {
            assert!(q.is_empty(), "{what}: engine events for worker {id} after the end: {q:?}");
        }
    }
}

/// Checks the engine keeps nothing of a worker whose connection ended.
fn forgotten(engine: &Engine, w: &WorkerRef, what: &str) {
    assert!(!engine.workers().contains(w), "{what}: the engine still lists the worker");
    assert_eq!(w.open_sessions(), 0, "{what}: sessions left on the engine side");
    assert!(matches!(w.invoke("echo"), Err(StreamError::Closed)), "{what}: an ended worker can still be invoked");
}

fn engine(ep: &Endpoint) -> (Engine, EngineLog) {
    let (tx, rx) = mpsc::channel();
    let mut opts = EngineOptions::new(ep.clone(), Dialect::V1);
    opts.heartbeat_timeout = Duration::from_secs(120);
    let engine = Engine::bind(opts, move |_: &Engine, ev: EngineEvent| {
        let (w, s) = match ev {
            EngineEvent::Handshake { worker } => {
                if let Ok(s) = worker.invoke("echo") {
                    for i in 0..K {
                        let _ = s.write(&chunk(i));
                    }
                    let _ = s.close();
                }
                (worker, Seen::Handshake)
            }
            EngineEvent::Chunk { worker, data, .. } => (worker, Seen::Chunk(data)),
            EngineEvent::Close { worker, .. } => (worker, Seen::Choke),
            EngineEvent::Drain { worker } => (worker, Seen::Drain),
            EngineEvent::Gone { worker, errno } => (worker, Seen::Error(errno)),
            EngineEvent::Heartbeat { .. } => return,
            EngineEvent::Error { worker, .. } | EngineEvent::Terminate { worker, .. } => (worker, Seen::Other("error".into())),
            EngineEvent::Rejected { uuid } => panic!("rejected {uuid}"),
            other => panic!("unexpected {other:?}"),
        };
        let _ = tx.send((w, s));
    })
    .unwrap();
    (engine, EngineLog { rx, queues: HashMap::new(), fresh: VecDeque::new() })
}

/// A worker's events, the sessions its `Disconnected` listed, and whether
/// it holds back its close (for stop-reading).
struct WorkerSide {
    side: Side,
    sessions: Arc<Mutex<Option<Vec<u64>>>>,
    invoked: Arc<Mutex<Option<u64>>>,
}

fn worker(ep: Endpoint, hold_close: bool) -> (Worker, WorkerSide) {
    let (tx, rx) = mpsc::channel();
    let token = Arc::new(());
    let sessions = Arc::new(Mutex::new(None));
    let invoked = Arc::new(Mutex::new(None));
    let hold = AtomicBool::new(hold_close);
    let mut opts = WorkerOptions::new(UUID, ep, Dialect::V1);
    opts.heartbeat_interval = Duration::from_secs(60);
    opts.disown_timeout = Duration::from_secs(120);
    let (tok, ses, inv) = (token.clone(), sessions.clone(), invoked.clone());
    let w = Worker::connect(opts, move |w: &Worker, ev: WorkerEvent| {
        let _hold = &tok;
        let s = match ev {
            WorkerEvent::Connected => Seen::Connected,
            WorkerEvent::Invoke { stream, .. } => {
                *inv.lock().unwrap() = Some(stream.session());
                Seen::Invoke
            }
            WorkerEvent::Chunk { session, data } => {
                let _ = w.stream(session).write(&data);
                Seen::Chunk(data)
            }
            WorkerEvent::Close { session } => {
                if !hold.load(Ordering::Relaxed) {
                    let _ = w.stream(session).close();
                }
                Seen::Choke
            }
            WorkerEvent::Drain => Seen::Drain,
            WorkerEvent::Heartbeat => return,
            WorkerEvent::Disconnected { errno, sessions } => {
                *ses.lock().unwrap() = Some(sessions);
                Seen::Error(errno)
            }
            other => Seen::Other(format!("{other:?}")),
        };
        let _ = tx.send(s);
    })
    .unwrap();
    (w, WorkerSide { side: Side { rx, token }, sessions, invoked })
}

fn engine_side_script() -> Vec<Seen> {
    engine_script()[1..].to_vec()
}

/// A whole conversation through `ep`, then the worker closes.
fn clean(engine: &Engine, log: &mut EngineLog, ep: Endpoint, what: &str) {
    let (w, ws) = worker(ep, false);
    let ew = log.next_worker();
    assert_eq!(ws.side.collect(K + 3), worker_script(), "{what}: worker");
    assert_eq!(log.collect(&ew, K + 2), engine_side_script(), "{what}: engine");
    assert_eq!(w.open_sessions(), 0, "{what}: worker sessions");
    w.close();
    assert_eq!(log.next(&ew), Seen::Error(errno::ESHUTDOWN), "{what}: the engine sees the worker close");
    forgotten(engine, &ew, what);
    ws.side.released(&format!("{what}: worker"));
}

/// One fault against the worker/engine pair.
pub fn case(fault: Fault, dir: Dir, unix: bool) {
    let what = format!("Worker/Engine {fault:?} {dir:?}{}", if unix { " unix" } else { "" });
    let ep = fresh_endpoint(unix);
    let (engine, mut log) = engine(&ep);
    let proxy = Proxy::start(engine.local(), Plan { fault, dir, conn: 0 });
    let hold = matches!(fault, Fault::StopReading(_));
    let (w, ws) = worker(proxy.endpoint(), hold);

    match fault {
        Fault::None | Fault::Split(_) | Fault::Delay(_) => {
            let ew = log.next_worker();
            assert_eq!(ws.side.collect(K + 3), worker_script(), "{what}: worker");
            assert_eq!(log.collect(&ew, K + 2), engine_side_script(), "{what}: engine");
            w.close();
            assert_eq!(log.next(&ew), Seen::Error(errno::ESHUTDOWN), "{what}");
            forgotten(&engine, &ew, &what);
            ws.side.released(&what);
        }
        Fault::Reorder => {
            let (w2, ws2) = worker(proxy.endpoint(), false);
            let (ea, eb) = (log.next_worker(), log.next_worker());
            assert_eq!(ws.side.collect(K + 3), worker_script(), "{what}: first worker");
            assert_eq!(ws2.side.collect(K + 3), worker_script(), "{what}: second worker");
            assert_eq!(log.collect(&ea, K + 2), engine_side_script(), "{what}: engine A");
            assert_eq!(log.collect(&eb, K + 2), engine_side_script(), "{what}: engine B");
            w.close();
            w2.close();
            for ew in [&ea, &eb] {
                assert_eq!(log.next(ew), Seen::Error(errno::ESHUTDOWN), "{what}");
                forgotten(&engine, ew, &what);
            }
            ws.side.released(&what);
            ws2.side.released(&what);
        }
        Fault::Corrupt(..) | Fault::Truncate(_) | Fault::Reset(_) | Fault::HalfClose(_) => {
            let ew = log.next_worker();
            let (near_errs, far_errs) = ending_errnos(fault);
            let (worker_errs, engine_errs) = match dir {
                Dir::Down => (near_errs, far_errs),
                Dir::Up => (far_errs, near_errs),
            };
            let got = ws.side.collect(K + 4);
            prefix_then_error(&got, &worker_script(), worker_errs, &format!("{what}: worker"));
            if matches!(fault, Fault::Corrupt(0, _)) && dir == Dir::Down {
                assert_eq!(got.len(), 2, "{what}: {got:?}");
            }
            // The session the worker had not finished is listed, and only it.
            let unfinished = got.contains(&Seen::Invoke) && !got.contains(&Seen::Choke);
            let want: Vec<u64> = if unfinished { vec![ws.invoked.lock().unwrap().unwrap()] } else { vec![] };
            assert_eq!(ws.sessions.lock().unwrap().clone(), Some(want), "{what}: sessions of the Disconnected event");
            assert_eq!(w.open_sessions(), 0, "{what}: worker sessions after the end");
            let got = log.collect(&ew, K + 3);
            prefix_then_error(&got, &engine_side_script(), engine_errs, &format!("{what}: engine"));
            if matches!(fault, Fault::Corrupt(0, _)) && dir == Dir::Up {
                // The handshake itself was bad: Gone without a Handshake.
                assert_eq!(got.len(), 1, "{what}: {got:?}");
            }
            forgotten(&engine, &ew, &what);
            ws.side.released(&what);
        }
        Fault::StopReading(at) => {
            // The proxy stops reading the worker after its handshake: the
            // echoes fill the socket buffers, then the worker's queue, and
            // stream writes are refused; once the proxy reads again the
            // worker gets `Drain` and the engine everything, in order.
            assert_eq!(at, handshake_len(Kind::V1));
            let ew = log.next_worker();
            assert_eq!(ws.side.collect(K + 3), worker_script(), "{what}: worker");
            assert_eq!(log.next(&ew), Seen::Handshake, "{what}: engine");
            let s = w.stream(ws.invoked.lock().unwrap().unwrap());
            let big = Bytes::from(vec![b'x'; 64 << 10]);
            let mut sent = 0usize;
            loop {
                match s.write(&big) {
                    Ok(()) => sent += 1,
                    Err(StreamError::WouldBlock) => break,
                    Err(e) => panic!("{what}: {e:?}"),
                }
                assert!(sent < 100_000, "{what}: the queue never filled");
            }
            let ch = w.channel().unwrap();
            assert!(ch.queued() <= ch.config().high_watermark + big.len() + 64, "{what}: queue over the watermark");
            proxy.resume();
            assert_eq!(ws.side.next(), Seen::Drain, "{what}: drain once the proxy reads again");
            s.close().unwrap();
            let mut want: Vec<Seen> = (0..K).map(|i| Seen::Chunk(chunk(i))).collect();
            want.extend(std::iter::repeat_n(Seen::Chunk(big.clone()), sent));
            want.push(Seen::Choke);
            for (i, s) in want.iter().enumerate() {
                let got = log.next(&ew);
                assert!(&got == s, "{what}: engine event {i}: {got:?}");
            }
            w.close();
            assert_eq!(log.next(&ew), Seen::Error(errno::ESHUTDOWN), "{what}");
            forgotten(&engine, &ew, &what);
            ws.side.released(&what);
        }
    }
    drop(w);
    // Another worker, straight to the engine, is unaffected.
    clean(&engine, &mut log, engine.local(), &format!("{what}: bystander"));
    assert!(engine.workers().is_empty(), "{what}: workers left");
    engine.close();
    log.nothing_more(&what);
    println!("fault-matrix: {what}: passed");
}
