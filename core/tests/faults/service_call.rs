//! A service call through the proxy: a `Service` client (resolved through a
//! `Locator` client from a `LocatorServer`) calling the demo `echo` service
//! (`Hosted`) over TCP, with the proxy either between the client and the
//! service, or between the client and the Locator. The call is `echo` with
//! `K` arguments; the service answers with one `write` per argument and a
//! `close`.
//!
//! Outcomes (docs/RELIABILITY.md, "The fault matrix"):
//!
//! * a fault that loses no byte changes nothing: every reply, in order;
//! * a fault that ends the service connection during a call ends the call
//!   with a prefix of its replies and then exactly one
//!   `Err(Disconnected(errno))` (the channel's errno), then `None`; the
//!   service's state becomes `Closed`, and the next call resolves again
//!   and reconnects (`generation` 2) and succeeds;
//! * a fault on the Locator connection fails the resolve, so the call
//!   fails with `Disconnected(errno)` (or `Timeout` when the Locator does
//!   not answer within `request_timeout`) and the state is `Error`; the next
//!   call resolves again and succeeds;
//! * stop-reading refuses calls with `WouldBlock` at the high watermark;
//!   once the proxy reads again every accepted call completes;
//! * another client's connection to the same service, open during the
//!   fault, goes on (its `generation` stays 1);
//! * neither the service nor the Locator keeps a connection of the client
//!   once its last handle is gone.

use super::*;
use sluice_core::services::{demo, ClientConfig, Error, Hosted, Locator, LocatorServer, Registry, Reply, Service, ServiceState};
use sluice_core::wire::Value;

/// The locator, the echo service, and counting proxies in front of each.
struct Stage {
    loc: LocatorServer,
    hosted: Hosted,
    /// Between the client and the service.
    svc_proxy: Proxy,
    /// Between the client and the Locator (counts resolves).
    loc_proxy: Proxy,
    locator: Locator,
}

fn tcp() -> Endpoint {
    Endpoint::Tcp("127.0.0.1".into(), 0)
}

fn stage(svc_plan: Plan, loc_plan: Plan, config: ClientConfig) -> Stage {
    let registry = Registry::new();
    let loc = LocatorServer::bind(&tcp(), registry.clone()).unwrap();
    let hosted = Hosted::bind(demo::echo(), &tcp()).unwrap();
    let svc_proxy = Proxy::start(hosted.endpoints()[0].clone(), svc_plan);
    registry.add("echo", vec![svc_proxy.endpoint()], hosted.def().version(), hosted.def().graph().clone());
    let loc_proxy = Proxy::start(loc.local().clone(), loc_plan);
    let locator = Locator::new(vec![loc_proxy.endpoint()]).with_config(config);
    Stage { loc, hosted, svc_proxy, loc_proxy, locator }
}

const NO_FAULT: Plan = Plan { fault: Fault::None, dir: Dir::Up, conn: 0 };

fn args() -> Vec<Value> {
    (0..K).map(|i| Value::Bin(chunk(i))).collect()
}

fn reply(r: Option<Result<Reply, Error>>) -> Seen {
    match r {
        Some(Ok(r)) if r.name == "write" && !r.last => match r.args.as_slice() {
            // Bytes come back as msgpack raw (str) strings.
            [Value::Bin(b) | Value::Str(b)] => Seen::Chunk(b.clone()),
            other => Seen::Other(format!("write {other:?}")),
        },
        Some(Ok(r)) if r.name == "close" && r.last => Seen::Choke,
        Some(Err(Error::Disconnected(e))) => Seen::Error(e),
        other => Seen::Other(format!("{other:?}")),
    }
}

/// Replies of the echo call when nothing goes wrong.
fn script() -> Vec<Seen> {
    let mut v: Vec<Seen> = (0..K).map(|i| Seen::Chunk(chunk(i))).collect();
    v.push(Seen::Choke);
    v
}

/// Runs the echo call to its end: its replies, and `None` after them.
fn echo(svc: &Service, what: &str) -> Vec<Seen> {
    let mut call = svc.call_blocking("echo", args()).unwrap_or_else(|e| panic!("{what}: call: {e}"));
    let mut got = Vec::new();
    loop {
        let s = reply(call.recv_timeout_blocking(Some(WAIT)));
        let end = matches!(s, Seen::Choke | Seen::Error(_) | Seen::Other(_));
        got.push(s);
        if end {
            break;
        }
    }
    assert_eq!(call.recv_timeout_blocking(Some(WAIT)), None, "{what}: the call goes on after its end");
    got
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < WAIT, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A client straight to the service (not through the proxy), connected
/// before the fault.
fn bystander(st: &Stage) -> Service {
    let info = st.locator.resolve_blocking("echo").unwrap();
    let info = sluice_core::services::Resolved { endpoints: st.hosted.endpoints(), ..info };
    let b = Service::direct(info, ClientConfig::default());
    assert_eq!(echo(&b, "bystander before"), script());
    b
}

/// The end of every case: the bystander still on its first connection,
/// and nothing left on the service or the Locator once the clients are gone.
fn finish(st: Stage, clients: Vec<Service>, by: Service, what: &str) {
    assert_eq!(echo(&by, &format!("{what}: bystander")), script(), "{what}: bystander");
    assert_eq!(by.generation(), 1, "{what}: the bystander reconnected");
    drop(clients);
    drop(by);
    wait_until(&format!("{what}: the service keeps a connection"), || st.hosted.connections() == 0);
    wait_until(&format!("{what}: the locator keeps a connection"), || st.loc.connections() == 0);
    println!("fault-matrix: {what}: passed ({} service connections, {} resolves)", st.svc_proxy.accepted(), st.loc_proxy.accepted());
}

/// One fault between the client and the service.
pub fn service(fault: Fault, dir: Dir) {
    let what = format!("Service call {fault:?} {dir:?}");
    let st = stage(Plan { fault, dir, conn: 0 }, NO_FAULT, ClientConfig::default());
    let by = bystander(&st);
    let resolves = st.loc_proxy.accepted();
    let svc = st.locator.service("echo");
    let mut clients = vec![];
    match fault {
        Fault::None | Fault::Split(_) | Fault::Delay(_) => {
            assert_eq!(echo(&svc, &what), script(), "{what}");
            assert_eq!(echo(&svc, &what), script(), "{what}: a second call");
            assert_eq!((svc.state(), svc.generation()), (ServiceState::Connected, 1), "{what}");
        }
        Fault::Reorder => {
            // Two clients: the first one's request is held until the
            // second has written; both complete.
            let svc2 = st.locator.service("echo");
            svc.connect_blocking().unwrap();
            svc2.connect_blocking().unwrap();
            let mut a = svc.call_blocking("echo", args()).unwrap();
            let mut b = svc2.call_blocking("echo", args()).unwrap();
            for (c, n) in [(&mut b, "second"), (&mut a, "first")] {
                let got: Vec<Seen> = (0..=K).map(|_| reply(c.recv_timeout_blocking(Some(WAIT)))).collect();
                assert_eq!(got, script(), "{what}: {n} client");
            }
            clients.push(svc2);
        }
        Fault::Corrupt(..) | Fault::Truncate(_) | Fault::Reset(_) | Fault::HalfClose(_) => {
            let (near, far) = ending_errnos(fault);
            let errs = if dir == Dir::Down { near } else { far };
            let got = echo(&svc, &what);
            prefix_then_error(&got, &script(), errs, &format!("{what}: call"));
            wait_until(&format!("{what}: the state becomes closed ({:?})", svc.state()), || svc.state() == ServiceState::Closed);
            assert_eq!(svc.generation(), 1);
            // The next call resolves again and reconnects.
            assert_eq!(echo(&svc, &what), script(), "{what}: the next call");
            assert_eq!((svc.state(), svc.generation()), (ServiceState::Connected, 2), "{what}");
            assert_eq!(st.loc_proxy.accepted(), resolves + 2, "{what}: resolved again");
            assert_eq!(st.svc_proxy.accepted(), 2, "{what}: connections");
            // The service let go of the broken connection.
            wait_until(&format!("{what}: the service keeps the broken connection"), || st.hosted.connections() == 2);
        }
        Fault::StopReading(_) => {
            // Nothing reaches the service: calls fill the socket buffers,
            // then the queue, and are refused; then the proxy reads again.
            svc.connect_blocking().unwrap();
            let big = Value::Bin(Bytes::from(vec![b'x'; 64 << 10]));
            let mut calls = Vec::new();
            loop {
                match svc.call_blocking("echo", vec![big.clone()]) {
                    Ok(c) => calls.push(c),
                    Err(Error::WouldBlock) => break,
                    Err(e) => panic!("{what}: {e}"),
                }
                assert!(calls.len() < 100_000, "{what}: the queue never filled");
            }
            st.svc_proxy.resume();
            let n = calls.len();
            for (i, c) in calls.into_iter().enumerate() {
                let got = c.collect_blocking().unwrap_or_else(|e| panic!("{what}: call {i} of {n}: {e}"));
                assert_eq!(got.len(), 2, "{what}: call {i}");
                assert_eq!(got[0].args[0].as_bytes(), big.as_bytes(), "{what}: call {i}");
            }
            assert_eq!(echo(&svc, &what), script(), "{what}: after the drain");
            assert_eq!(svc.generation(), 1, "{what}");
            println!("  {what}: {n} calls accepted before the queue was full");
        }
    }
    clients.push(svc);
    finish(st, clients, by, &what);
}

/// Bytes into the Locator's request or answer: inside the first frame.
pub const LOC_AT: usize = 5;

/// One fault between the client and the Locator.
pub fn locator(fault: Fault, dir: Dir) {
    let what = format!("Locator resolve {fault:?} {dir:?}");
    let mut config = ClientConfig::default();
    if matches!(fault, Fault::StopReading(_)) {
        config.request_timeout = Some(Duration::from_millis(300));
    }
    let st = stage(NO_FAULT, Plan { fault, dir, conn: 0 }, config);
    // The fault hits the proxy's first connection: the bystander resolves
    // straight from the Locator.
    let direct = Locator::new(vec![st.loc.local().clone()]);
    let info = direct.resolve_blocking("echo").unwrap();
    let by = Service::direct(sluice_core::services::Resolved { endpoints: st.hosted.endpoints(), ..info }, ClientConfig::default());
    assert_eq!(echo(&by, "bystander before"), script());
    let svc = st.locator.service("echo");
    match fault {
        Fault::None | Fault::Split(_) | Fault::Delay(_) => {
            assert_eq!(echo(&svc, &what), script(), "{what}");
            assert_eq!((svc.state(), svc.generation()), (ServiceState::Connected, 1), "{what}");
        }
        Fault::StopReading(_) => {
            // The Locator's answer never comes: the call fails with
            // `Timeout` after `request_timeout`.
            match svc.call_blocking("echo", args()) {
                Err(Error::Timeout) => {}
                other => panic!("{what}: {other:?}"),
            }
            assert_eq!(svc.state(), ServiceState::Error, "{what}");
            st.loc_proxy.resume();
            assert_eq!(echo(&svc, &what), script(), "{what}: the next call");
        }
        Fault::Corrupt(..) | Fault::Truncate(_) | Fault::Reset(_) | Fault::HalfClose(_) => {
            let (near, far) = ending_errnos(fault);
            let errs = if dir == Dir::Down { near } else { far };
            match svc.call_blocking("echo", args()) {
                Err(Error::Disconnected(e)) if errs.contains(&e) => {}
                other => panic!("{what}: {other:?}, not Disconnected with one of {errs:?}"),
            }
            assert_eq!((svc.state(), svc.generation()), (ServiceState::Error, 0), "{what}");
            // The next call resolves again (a new Locator connection).
            assert_eq!(echo(&svc, &what), script(), "{what}: the next call");
            assert_eq!((svc.state(), svc.generation()), (ServiceState::Connected, 1), "{what}");
            assert_eq!(st.loc_proxy.accepted(), 2, "{what}: Locator connections");
        }
        Fault::Reorder => unreachable!("one connection at a time"),
    }
    finish(st, vec![svc], by, &what);
}
