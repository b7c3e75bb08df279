//! Sessions over real sockets: a server killed and restarted 50 times,
//! failover between endpoints, a silent peer cut by the liveness timeout,
//! and resume — 1,000,000 numbered messages through 100 cuts, each
//! delivered exactly once, in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, SendError, Server};
use sluice_core::roles::{
    Backoff, Liveness, ResumeEvent, ResumeOptions, ResumeServer, ResumeServerOptions, Session, SessionEvent, SessionOptions,
};
use sluice_core::wire::{Dialect, Message, Role};

const WAIT: Duration = Duration::from_secs(30);

fn temp_sock(name: &str) -> Endpoint {
    let p = std::env::temp_dir().join(format!("sluice-session-{}-{name}.sock", std::process::id()));
    Endpoint::Unix(p)
}

fn recv<T>(rx: &mpsc::Receiver<(Instant, T)>) -> (Instant, T) {
    rx.recv_timeout(WAIT).expect("no event within 30 s")
}

fn session(opts: SessionOptions) -> (Session, mpsc::Receiver<(Instant, SessionEvent)>) {
    let (tx, rx) = mpsc::channel();
    let s = Session::connect(opts, move |_: &Session, ev| drop(tx.send((Instant::now(), ev)))).unwrap();
    (s, rx)
}

/// A server that keeps the channels it accepts (to kill them later).
fn server(ep: &Endpoint, accepted: Arc<Mutex<Vec<Channel>>>) -> Server {
    Server::bind(ep, ChannelConfig::new(Dialect::V1, None), move |_: &Server, inc: Incoming| {
        let ch = inc.start(|_: &Channel, _: Event| {}).unwrap();
        accepted.lock().unwrap().push(ch);
    })
    .unwrap()
}

#[test]
fn reconnects_across_50_server_restarts_with_bounded_backoff() {
    let ep = temp_sock("restarts");
    let backoff = Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(40), multiplier: 2.0, jitter: 0.3 };
    let mut opts = SessionOptions::new(vec![ep.clone()], ChannelConfig::new(Dialect::V1, None));
    opts.backoff = backoff;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut srv = server(&ep, accepted.clone());
    let (s, rx) = session(opts);
    let mut attempts_seen = 0;
    for round in 0..50 {
        // Up: attempts already under way while the server came back may
        // still fail; then one Connected, to this endpoint.
        loop {
            match recv(&rx).1 {
                SessionEvent::Connected { endpoint, resumed } => {
                    assert_eq!(endpoint, ep);
                    assert!(!resumed);
                    break;
                }
                SessionEvent::ReconnectAttempt { attempt, delay, .. } if round > 0 => {
                    let (lo, hi) = backoff.bounds(attempt - 1);
                    assert!(delay >= lo && delay <= hi, "attempt {attempt}: {delay:?} not in {lo:?}..{hi:?}");
                }
                other => panic!("round {round}: expected connected, got {other:?}"),
            }
        }
        assert!(s.is_connected());
        // A Unix connect completes in the listener's backlog: wait until the
        // server has accepted it, or a close racing the accept could leave
        // that connection up with nobody to cut it.
        let t = Instant::now();
        while accepted.lock().unwrap().is_empty() {
            assert!(t.elapsed() < WAIT, "round {round}: the server never accepted the connection");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Kill the server: the listener and the connection.
        srv.close();
        for ch in accepted.lock().unwrap().drain(..) {
            ch.abort();
        }
        match recv(&rx).1 {
            SessionEvent::Disconnected { errno: e } => {
                assert!(e == errno::ESHUTDOWN || e == errno::ECONNRESET, "round {round}: errno {e}")
            }
            other => panic!("round {round}: expected disconnected, got {other:?}"),
        }
        // Down for a while: attempts fail, each delay within its bounds,
        // the attempt numbers counting up from 1.
        let down_until = Instant::now() + Duration::from_millis(60);
        let mut expect_attempt = 1;
        loop {
            let (t, ev) = recv(&rx);
            match ev {
                SessionEvent::ReconnectAttempt { attempt, endpoint, delay } => {
                    assert_eq!(attempt, expect_attempt, "round {round}");
                    assert_eq!(endpoint, ep);
                    let (lo, hi) = backoff.bounds(attempt - 1);
                    assert!(delay >= lo && delay <= hi, "attempt {attempt}: {delay:?} not in {lo:?}..{hi:?}");
                    expect_attempt += 1;
                    attempts_seen += 1;
                    if t >= down_until {
                        break;
                    }
                }
                other => panic!("round {round}: expected an attempt, got {other:?}"),
            }
        }
        // Back up: the attempt already scheduled reaches it.
        srv = server(&ep, accepted.clone());
    }
    assert!(attempts_seen >= 100, "{attempts_seen}");
    s.stop();
    srv.close();
}

#[test]
fn fails_over_to_the_next_endpoint() {
    let dead = temp_sock("dead");
    let live = temp_sock("live");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let srv = server(&live, accepted.clone());
    let mut opts = SessionOptions::new(vec![dead.clone(), live.clone()], ChannelConfig::new(Dialect::V1, None));
    opts.backoff.initial = Duration::from_millis(5);
    let (s, rx) = session(opts);
    match recv(&rx).1 {
        SessionEvent::ReconnectAttempt { attempt: 1, endpoint, .. } => assert_eq!(endpoint, live),
        other => panic!("expected an attempt on the second endpoint, got {other:?}"),
    }
    match recv(&rx).1 {
        SessionEvent::Connected { endpoint, .. } => assert_eq!(endpoint, live),
        other => panic!("expected connected, got {other:?}"),
    }
    // Sends go through the live connection.
    s.send_chunk(1, &Bytes::from_static(b"x")).unwrap();
    s.stop();
    assert_eq!(s.send_chunk(1, &Bytes::from_static(b"y")), Err(SendError::Closed));
    srv.close();
}

#[test]
fn a_silent_peer_is_cut_by_the_liveness_timeout() {
    let ep = temp_sock("silent");
    let (frames_tx, frames_rx) = mpsc::channel();
    let keep = Arc::new(Mutex::new(Vec::new()));
    let k = keep.clone();
    let srv = Server::bind(&ep, ChannelConfig::new(Dialect::V1, None), move |_: &Server, inc: Incoming| {
        let tx = frames_tx.clone();
        let ch = inc
            .start(move |_: &Channel, ev: Event| {
                if let Event::Frame(f) = ev {
                    let _ = tx.send((f.session, f.ty));
                }
            })
            .unwrap();
        k.lock().unwrap().push(ch);
    })
    .unwrap();
    let mut opts = SessionOptions::new(vec![ep.clone()], ChannelConfig::new(Dialect::V1, None));
    opts.liveness = Some(Liveness { interval: Duration::from_millis(20), timeout: Duration::from_millis(200) });
    opts.backoff.initial = Duration::from_millis(5);
    let (s, rx) = session(opts);
    let (t0, ev) = recv(&rx);
    assert!(matches!(ev, SessionEvent::Connected { .. }));
    let (t1, ev) = recv(&rx);
    match ev {
        SessionEvent::Disconnected { errno: e } => assert_eq!(e, errno::ETIMEDOUT),
        other => panic!("expected disconnected, got {other:?}"),
    }
    assert!(t1 - t0 >= Duration::from_millis(200));
    // It heartbeat meanwhile ([1, 0, []]), then reconnected.
    assert_eq!(frames_rx.recv_timeout(WAIT).unwrap(), (1, 0));
    assert!(matches!(recv(&rx).1, SessionEvent::ReconnectAttempt { attempt: 1, .. }));
    assert!(matches!(recv(&rx).1, SessionEvent::Connected { .. }));
    s.stop();
    srv.close();
}

/// 1,000,000 numbered chunks from the client, one in 100 echoed back by
/// the server; the connection is cut 100 times at random points, from
/// either side. Each side gets every number exactly once, in order.
#[test]
fn resume_loses_and_duplicates_nothing_across_100_cuts() {
    const N: u64 = 1_000_000;
    const CUTS: u64 = 100;
    let ep = temp_sock("resume");
    let got = Arc::new(AtomicU64::new(0));
    let (err_tx, err_rx) = mpsc::channel::<String>();
    let (peer_tx, peer_rx) = mpsc::channel();
    let (g, etx) = (got.clone(), err_tx.clone());
    let mut sopts = ResumeServerOptions::new(ep.clone(), ChannelConfig::new(Dialect::V1, None));
    sopts.resume = ResumeOptions { max_unacked: 1 << 20, ack_every: 512, ack_bytes: 256 << 10 };
    let srv = ResumeServer::bind(sopts, move |_: &ResumeServer, ev| match ev {
        ResumeEvent::PeerConnected { peer, .. } => drop(peer_tx.send(peer)),
        ResumeEvent::Frame { peer, frame } => {
            let n = u64::from_le_bytes(frame.args.clone().into_first_bytes().unwrap()[..8].try_into().unwrap());
            let want = g.load(Ordering::Relaxed);
            if n != want {
                let _ = etx.send(format!("server got {n}, expected {want}"));
            }
            g.store(n + 1, Ordering::Relaxed);
            if n % 100 == 0 {
                // Echo: refused only when the replay buffer is full, which
                // the 1 MiB bound never reaches at this rate.
                peer.send_chunk(frame.session, &Bytes::copy_from_slice(&n.to_le_bytes())).unwrap();
            }
        }
        _ => {}
    })
    .unwrap();

    let echoed = Arc::new(AtomicU64::new(0));
    let (e, etx) = (echoed.clone(), err_tx.clone());
    let (conn_tx, conn_rx) = mpsc::channel();
    let mut opts = SessionOptions::new(vec![ep.clone()], ChannelConfig::new(Dialect::V1, None));
    opts.backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(10), multiplier: 2.0, jitter: 0.2 };
    opts.resume = Some(ResumeOptions { max_unacked: 1 << 20, ack_every: 512, ack_bytes: 256 << 10 });
    let s = Session::connect(opts, move |_: &Session, ev| match ev {
        SessionEvent::Frame(f) => {
            let n = u64::from_le_bytes(f.args.into_first_bytes().unwrap()[..8].try_into().unwrap());
            let want = e.load(Ordering::Relaxed) * 100;
            if n != want {
                let _ = etx.send(format!("client got {n}, expected {want}"));
            }
            e.fetch_add(1, Ordering::Relaxed);
        }
        SessionEvent::Connected { resumed, .. } => drop(conn_tx.send(resumed)),
        _ => {}
    })
    .unwrap();
    assert!(!conn_rx.recv_timeout(WAIT).unwrap(), "the first connection is new");

    // Cut points, spread at random over the stream.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut cuts: Vec<u64> = (0..CUTS).map(|_| next() % N).collect();
    cuts.sort_unstable();
    let mut cut = 0;
    let mut resumed = 0;
    let started = Instant::now();
    for n in 0..N {
        while cut < cuts.len() && cuts[cut] == n {
            // Each cut severs a live connection.
            let t = Instant::now();
            while !s.is_connected() || !srv.peers().first().is_some_and(|p| p.is_connected()) {
                assert!(t.elapsed() < WAIT, "not reconnected");
                std::thread::sleep(Duration::from_micros(100));
            }
            if cut % 2 == 0 {
                s.disconnect(errno::ECONNRESET);
            } else if let Some(peer) = srv.peers().first() {
                peer.disconnect(errno::ECONNRESET);
            }
            cut += 1;
            // The session comes back by itself and resumes.
            assert!(conn_rx.recv_timeout(WAIT).expect("reconnected"), "every reconnection resumes");
            resumed += 1;
        }
        let data = Bytes::copy_from_slice(&n.to_le_bytes());
        loop {
            match s.send_chunk(1, &data) {
                Ok(()) => break,
                Err(SendError::WouldBlock) => std::thread::sleep(Duration::from_micros(200)),
                Err(e) => panic!("send {n}: {e}"),
            }
            assert!(started.elapsed() < Duration::from_secs(300), "stuck at {n}");
        }
        while let Ok(r) = conn_rx.try_recv() {
            assert!(r, "every reconnection resumes");
            resumed += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (got.load(Ordering::Relaxed) < N || echoed.load(Ordering::Relaxed) < N / 100) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    while let Ok(r) = conn_rx.try_recv() {
        assert!(r);
        resumed += 1;
    }
    let errors: Vec<String> = err_rx.try_iter().take(5).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.load(Ordering::Relaxed), N);
    assert_eq!(echoed.load(Ordering::Relaxed), N / 100);
    assert!(resumed >= CUTS, "{resumed} resumed connections");
    // The server may have answered a hello whose connection was cut before
    // the client read the answer: at least one peer connection per resume.
    assert!(peer_rx.try_iter().count() as u64 > resumed);
    s.stop();
    srv.close();
}

/// Poll delivery: events wait behind the session's descriptor, and a host
/// that does not dispatch stops the reading (memory stays bounded), so
/// the flooding peer's sends are refused with "would block".
#[test]
fn a_session_that_is_not_dispatched_stops_reading() {
    let ep = temp_sock("flood");
    let (acc_tx, acc_rx) = mpsc::channel();
    let srv = Server::bind(&ep, ChannelConfig::new(Dialect::V1, None), move |_: &Server, inc: Incoming| {
        acc_tx.send(inc.start(|_: &Channel, _: Event| {}).unwrap()).unwrap();
    })
    .unwrap();
    let mut cfg = ChannelConfig::new(Dialect::V1, None);
    cfg.delivery = sluice_core::net::Delivery::Poll;
    cfg.max_pending = 1 << 20;
    let s = Session::connect(SessionOptions::new(vec![ep.clone()], cfg), |_: &Session, _| {}).unwrap();
    let fd = s.fd().expect("a descriptor");
    let peer = acc_rx.recv_timeout(WAIT).unwrap();
    let chunk = Bytes::from(vec![7u8; 64 << 10]);
    let mut sent = 0usize;
    let t = Instant::now();
    loop {
        match peer.send_chunk(1, &chunk) {
            Ok(()) => sent += 1,
            Err(SendError::WouldBlock) => {
                // Blocked for good only once the reader has stopped.
                std::thread::sleep(Duration::from_millis(50));
                if peer.send_chunk(1, &chunk).is_err() {
                    break;
                }
                sent += 1;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 400, "the session kept reading: {} MiB queued", sent / 16);
        assert!(t.elapsed() < WAIT);
    }
    // 1 MiB of events, the socket buffers and the peer's 8 MiB queue.
    assert!(sent >= 16, "{sent}");
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1, "events wait");
    drop(s);
    peer.abort();
    srv.close();
}

#[test]
fn next_session_skips_the_v1_control_channel() {
    for (dialect, first) in [(Dialect::V1, 2), (Dialect::V0, 1)] {
        let ep = temp_sock(&format!("next-{first}"));
        let (s, _rx) = session(SessionOptions::new(vec![ep], ChannelConfig::new(dialect, None)));
        assert_eq!(s.next_session(), first);
        s.stop();
    }
}

/// Resume with roles: the sessions opened before a cut are still known
/// after it, on both sides, so their messages keep arriving typed (an
/// engine-side session opens a stream with `invoke`; after the cut, the
/// worker-side server still sees `write`/`close` of that stream as chunk
/// and choke, and the session sees the answers the same way).
#[test]
fn resume_with_roles_keeps_streams_typed_across_cuts() {
    let ep = temp_sock("typed");
    let (srv_tx, srv_rx) = mpsc::channel();
    let mut sopts = ResumeServerOptions::new(ep.clone(), ChannelConfig::new(Dialect::V1, Some(Role::Worker)));
    sopts.resume = ResumeOptions { max_unacked: 1 << 20, ack_every: 1, ack_bytes: 1 };
    let srv = ResumeServer::bind(sopts, move |_: &ResumeServer, ev| match ev {
        ResumeEvent::Message { peer, session, message, .. } => {
            let answer = match &message {
                Message::Chunk { data } => Some(Message::Chunk { data: Bytes::from(data.to_ascii_uppercase()) }),
                Message::Choke => Some(Message::Choke),
                _ => None,
            };
            if let Some(a) = answer {
                peer.send_message(session, &a, &[]).unwrap();
            }
            let _ = srv_tx.send(format!("message {session} {message:?}"));
        }
        ResumeEvent::Frame { frame, .. } => drop(srv_tx.send(format!("frame {} type {}", frame.session, frame.ty))),
        _ => {}
    })
    .unwrap();

    let (cli_tx, cli_rx) = mpsc::channel();
    let mut opts = SessionOptions::new(vec![ep.clone()], ChannelConfig::new(Dialect::V1, Some(Role::Engine)));
    opts.backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(10), multiplier: 2.0, jitter: 0.2 };
    opts.resume = Some(ResumeOptions { max_unacked: 1 << 20, ack_every: 1, ack_bytes: 1 });
    let s = Session::connect(opts, move |_: &Session, ev| match ev {
        SessionEvent::Message { session, message, .. } => drop(cli_tx.send(format!("message {session} {message:?}"))),
        SessionEvent::Frame(f) => drop(cli_tx.send(format!("frame {} type {}", f.session, f.ty))),
        SessionEvent::Connected { resumed, .. } => drop(cli_tx.send(format!("connected {resumed}"))),
        _ => {}
    })
    .unwrap();
    let next = |rx: &mpsc::Receiver<String>| rx.recv_timeout(WAIT).expect("an event");
    assert_eq!(next(&cli_rx), "connected false");

    let sid = s.next_session();
    s.send(sid, &Message::Invoke { event: Bytes::from_static(b"upper") }).unwrap();
    s.send_chunk(sid, &Bytes::from_static(b"one")).unwrap();
    assert_eq!(next(&srv_rx), format!("message {sid} Invoke {{ event: b\"upper\" }}"));
    assert_eq!(next(&srv_rx), format!("message {sid} Chunk {{ data: b\"one\" }}"));
    assert_eq!(next(&cli_rx), format!("message {sid} Chunk {{ data: b\"ONE\" }}"));

    // Cut from the client's side, then from the server's: the stream
    // goes on over each new connection.
    for (i, word) in ["two", "three"].into_iter().enumerate() {
        if i == 0 {
            s.disconnect(errno::ECONNRESET);
        } else {
            srv.peers()[0].disconnect(errno::ECONNRESET);
        }
        assert_eq!(next(&cli_rx), "connected true");
        s.send_chunk(sid, &Bytes::copy_from_slice(word.as_bytes())).unwrap();
        assert_eq!(next(&srv_rx), format!("message {sid} Chunk {{ data: b{:?} }}", word));
        assert_eq!(next(&cli_rx), format!("message {sid} Chunk {{ data: b{:?} }}", word.to_uppercase()));
    }
    s.send(sid, &Message::Choke).unwrap();
    assert_eq!(next(&srv_rx), format!("message {sid} Choke"));
    assert_eq!(next(&cli_rx), format!("message {sid} Choke"));
    // Nothing arrived as an untyped frame.
    assert!(srv_rx.try_recv().is_err() && cli_rx.try_recv().is_err());
    s.stop();
    srv.close();
}

#[test]
fn made_up_resume_tokens_cannot_fill_the_server() {
    use std::io::{Read, Write};
    let ep = temp_sock("max-peers");
    let mut sopts = ResumeServerOptions::new(ep.clone(), ChannelConfig::new(Dialect::V1, None));
    sopts.max_peers = 3;
    let srv = ResumeServer::bind(sopts, |_: &ResumeServer, _| {}).unwrap();
    let Endpoint::Unix(path) = srv.local() else { unreachable!() };
    // hello(token, 0): [0, 0xff00, [bin16 token, 0]]
    let hello = |t: u8| {
        let mut f = vec![0x93, 0x00, 0xcd, 0xff, 0x00, 0x92, 0xc4, 16];
        f.extend_from_slice(&[t; 16]);
        f.push(0x00);
        f
    };
    // Whether the server answers the hello (its own hello back) or ends
    // the connection.
    let answered = |t: u8| {
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&hello(t)).unwrap();
        let mut buf = [0u8; 64];
        let ok = matches!(s.read(&mut buf), Ok(n) if n > 0);
        (ok, s)
    };
    let kept: Vec<_> = (1..=3).map(&answered).collect();
    assert!(kept.iter().all(|(ok, _)| *ok), "the first three peers are taken");
    let (fourth, _s) = answered(4);
    assert!(!fourth, "a fourth made-up token is refused while three peers are remembered");
    // A known token still resumes.
    let (again, _s) = answered(1);
    assert!(again, "a known peer resumes");
    srv.close();
}
