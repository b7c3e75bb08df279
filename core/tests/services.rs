//! Service clients, hosting, the Locator and its registry, over real TCP
//! sockets between sluice peers (and raw channels where a test needs to
//! write or cut exact frames).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::errno;
use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, Server};
use sluice_core::services::graph::{Graph, Node};
use sluice_core::services::{
    demo, Attached, ClientConfig, Entry, Error, Hosted, Level, Locator, LocatorServer, Logger, Registry, Resolved, Service, ServiceDef,
    ServiceError, ServiceState,
};
use sluice_core::wire::{Dialect, Value};

fn any_port() -> Endpoint {
    Endpoint::Tcp("127.0.0.1".into(), 0)
}

/// A Locator with the demo services registered in-process.
fn setup() -> (LocatorServer, Vec<Hosted>, Locator) {
    let registry = Registry::new();
    let loc = LocatorServer::bind(&any_port(), registry.clone()).unwrap();
    let mut hosted = Vec::new();
    for def in [demo::echo(), demo::math(), demo::kv()] {
        let h = Hosted::bind(def, &any_port()).unwrap();
        registry.add(h.name(), h.endpoints(), h.def().version(), h.def().graph().clone());
        hosted.push(h);
    }
    let client = Locator::new(vec![loc.local().clone()]);
    (loc, hosted, client)
}

/// Waits for registry changes (a safety limit only: never expected to run out).
fn changes(registry: &Registry) -> mpsc::Receiver<Entry> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    registry.on_change(move |e| {
        let _ = tx.lock().unwrap().send(e.clone());
    });
    rx
}

fn next(rx: &mpsc::Receiver<Entry>) -> Entry {
    rx.recv_timeout(Duration::from_secs(60)).expect("a registry change")
}

fn s(v: &str) -> Value {
    Value::from(v)
}

#[test]
fn resolve_gives_endpoints_version_and_graph() {
    let (_loc, hosted, locator) = setup();
    let r = locator.resolve_blocking("echo").unwrap();
    assert_eq!(r.endpoints, hosted[0].endpoints());
    assert_eq!(r.version, 1);
    assert_eq!(&r.graph, hosted[0].def().graph());
    assert!(r.graph.method("echo").unwrap().rx.is_streaming());
    assert!(r.graph.method("ping").unwrap().rx.is_primitive());
    let shown = r.to_string();
    assert!(shown.contains("service echo (protocol version 1)"), "{shown}");
    // The locator announces itself too.
    let l = locator.resolve_blocking("locator").unwrap();
    assert_eq!(l.version, 3);
    assert_eq!(l.graph, Locator::graph());
    match locator.resolve_blocking("nope") {
        Err(Error::NotFound(n)) => assert_eq!(n, "nope"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn streaming_and_primitive_calls() {
    let (_loc, _hosted, locator) = setup();
    let echo = locator.service("echo");
    assert_eq!(echo.state(), ServiceState::Closed);
    let replies = echo.call_blocking("echo", vec![s("a"), Value::Uint(2), s("c")]).unwrap().collect_blocking().unwrap();
    let names: Vec<_> = replies.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["write", "write", "write", "close"]);
    assert_eq!(replies[1].args, [Value::Uint(2)]);
    assert!(replies[3].last && !replies[2].last);
    assert_eq!(echo.state(), ServiceState::Connected);

    let math = locator.service("math");
    assert_eq!(math.call_blocking("add", vec![Value::Uint(2), Value::Int(-5)]).unwrap().value_blocking().unwrap(), [Value::Int(-3)]);
    assert_eq!(math.call_blocking("div", vec![Value::Uint(7), Value::Uint(2)]).unwrap().value_blocking().unwrap(), [Value::F64(3.5)]);
    // Many calls in flight on one connection, answered by channel id.
    let calls: Vec<_> = (0..200u64).map(|i| math.call_blocking("mul", vec![Value::Uint(i), Value::Uint(3)]).unwrap()).collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.value_blocking().unwrap(), [Value::Uint(3 * i as u64)]);
    }
    let kv = locator.service("kv");
    kv.call_blocking("set", vec![s("k"), s("v")]).unwrap().value_blocking().unwrap();
    assert_eq!(kv.call_blocking("get", vec![s("k")]).unwrap().value_blocking().unwrap(), [s("v")]);
}

#[test]
fn errors_from_the_service() {
    let (_loc, _hosted, locator) = setup();
    let math = locator.service("math");
    let e = math.call_blocking("div", vec![Value::Uint(1), Value::Uint(0)]).unwrap().value_blocking().unwrap_err();
    assert_eq!(e, Error::Service(ServiceError::new(42, 1, "division by zero")));
    let e = math.call_blocking("add", vec![s("x"), Value::Uint(1)]).unwrap().value_blocking().unwrap_err();
    assert!(matches!(e, Error::Service(ServiceError { category: Some(7), code: 2, .. })), "{e:?}");
    let echo = locator.service("echo");
    let mut call = echo.call_blocking("fail", vec![Value::Uint(9), s("on purpose")]).unwrap();
    assert_eq!(call.recv_blocking(), Some(Err(Error::Service(ServiceError::new(42, 9, "on purpose")))));
    assert_eq!(call.recv_blocking(), None);
    match echo.call_blocking("nothing", vec![]) {
        Err(Error::UnknownMethod { service, method }) => assert_eq!((service.as_str(), method.as_str()), ("echo", "nothing")),
        other => panic!("{other:?}"),
    }
    // A stream that fails midway: the writes, then the error, then the end.
    let def = ServiceDef::new("flaky", 1).streaming("run", |_, mut out| {
        out.write(vec![s("one")]).unwrap();
        out.error(&ServiceError::new(42, 5, "broke")).unwrap();
    });
    let h = Hosted::bind(def, &any_port()).unwrap();
    let info = Resolved { name: "flaky".into(), endpoints: h.endpoints(), version: 1, graph: h.def().graph().clone() };
    let flaky = Service::direct(info, ClientConfig::default());
    let mut call = flaky.call_blocking("run", vec![]).unwrap();
    assert_eq!(call.recv_blocking().unwrap().unwrap().args, [s("one")]);
    assert_eq!(call.recv_blocking(), Some(Err(Error::Service(ServiceError::new(42, 5, "broke")))));
    assert_eq!(call.recv_blocking(), None);
    // A handler that drops its responder without answering: an uncaught error.
    let def = ServiceDef::new("mute", 1).method("forget", Node::Terminal, Node::primitive(), |_, _| None);
    let h = Hosted::bind(def, &any_port()).unwrap();
    let info = Resolved { name: "mute".into(), endpoints: h.endpoints(), version: 1, graph: h.def().graph().clone() };
    let e = Service::direct(info, ClientConfig::default()).call_blocking("forget", vec![]).unwrap().value_blocking().unwrap_err();
    assert!(matches!(e, Error::Service(ServiceError { category: Some(7), code: 7, .. })), "{e:?}");
}

#[test]
fn unknown_method_ids_in_the_graph_and_on_the_wire() {
    // A service whose graph has sparse ids and the connection-control ids of
    // newer runtimes.
    let mut def = ServiceDef::new("newer", 5).primitive("first", |_| Ok(vec![Value::Uint(1)]));
    for (id, name) in [(65532, "goaway"), (65533, "ping"), (65534, "settings"), (65535, "revoke")] {
        def = def.method_with_id(id, name, Node::Terminal, Node::primitive(), |_, mut out| {
            out.value(vec![s("control")]).unwrap();
            None
        });
    }
    def = def.method_with_id(1000, "late", Node::Terminal, Node::primitive(), |req, mut out| {
        out.value(req.args).unwrap();
        None
    });
    let (loc, _hosted, locator) = setup();
    let h = Hosted::bind(def, &any_port()).unwrap();
    let _p = h.publish_blocking(&locator).unwrap();
    let r = locator.resolve_blocking("newer").unwrap();
    assert_eq!(r.graph.methods().iter().map(|m| m.id).collect::<Vec<_>>(), [0, 1000, 65532, 65533, 65534, 65535]);
    assert_eq!(r.version, 5);
    let svc = locator.service("newer");
    assert_eq!(svc.call_blocking("late", vec![s("x")]).unwrap().value_blocking().unwrap(), [s("x")]);
    assert_eq!(svc.call_blocking("ping", vec![]).unwrap().value_blocking().unwrap(), [s("control")]);
    assert!(loc.registry().resolve("newer").is_some());

    // A raw service answers with a type the graph does not have (dropped),
    // then with the value; and answers a call to an id nobody serves.
    let server = Server::bind(&any_port(), ChannelConfig::new(Dialect::V1, None), |_: &Server, inc: Incoming| {
        inc.start(|ch: &Channel, ev: Event| {
            if let Event::Frame(f) = ev {
                ch.send_frame(f.session, 7, &f.args, &[]).unwrap();
                ch.send_frame(f.session, 0, &f.args, &[]).unwrap();
                ch.send_frame(f.session, 0, &f.args, &[]).unwrap(); // after the terminal value: dropped
            }
        })
        .unwrap();
    })
    .unwrap();
    let graph = Graph::new(vec![sluice_core::services::graph::Method::new(3, "get", Node::Terminal, Node::primitive())]);
    let svc = Service::direct(
        Resolved { name: "raw".into(), endpoints: vec![server.local().clone()], version: 1, graph },
        ClientConfig::default(),
    );
    for i in 0..3u64 {
        assert_eq!(svc.call_blocking("get", vec![Value::Uint(i)]).unwrap().value_blocking().unwrap(), [Value::Uint(i)]);
    }
    // A method id the hosted service does not have: a dispatch error.
    let bogus = Graph::new(vec![sluice_core::services::graph::Method::new(4242, "bogus", Node::Terminal, Node::primitive())]);
    let svc =
        Service::direct(Resolved { name: "newer".into(), endpoints: h.endpoints(), version: 5, graph: bogus }, ClientConfig::default());
    let e = svc.call_blocking("bogus", vec![]).unwrap().value_blocking().unwrap_err();
    assert!(matches!(e, Error::Service(ServiceError { category: Some(7), code: 5, .. })), "{e:?}");
    server.close();
}

fn dead_port() -> Endpoint {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    Endpoint::Tcp("127.0.0.1".into(), port)
}

#[test]
fn locator_failover() {
    let (loc, _hosted, _) = setup();
    let dead = dead_port();
    let locator = Locator::new(vec![dead.clone(), loc.local().clone()]);
    assert_eq!(locator.resolve_blocking("math").unwrap().name, "math");
    let sum = locator.service("math").call_blocking("add", vec![Value::Uint(1), Value::Uint(1)]).unwrap().value_blocking().unwrap();
    assert_eq!(sum, [Value::Uint(2)]);
    let all_dead = Locator::new(vec![dead.clone(), dead_port()]);
    match all_dead.resolve_blocking("math") {
        Err(Error::Connect { what, tried }) => {
            assert_eq!(what, "the locator");
            assert_eq!(tried.len(), 2);
            assert!(tried.iter().all(|(_, e)| *e == errno::ECONNREFUSED), "{tried:?}");
        }
        other => panic!("{other:?}"),
    }
    let svc = all_dead.service("math");
    assert!(svc.call_blocking("add", vec![]).is_err());
    assert_eq!(svc.state(), ServiceState::Error);
}

#[test]
fn service_endpoint_failover_and_reconnect_after_disconnect() {
    let registry = Registry::new();
    let loc = LocatorServer::bind(&any_port(), registry.clone()).unwrap();
    let locator = Locator::new(vec![loc.local().clone()]);
    let h = Hosted::bind(demo::math(), &any_port()).unwrap();
    // Two endpoints, one dead: whichever comes first, the live one answers.
    registry.add("math", vec![dead_port(), h.endpoints()[0].clone()], 1, h.def().graph().clone());
    let math = locator.service("math");
    for _ in 0..3 {
        let m = locator.service("math");
        assert_eq!(m.call_blocking("add", vec![Value::Uint(1), Value::Uint(2)]).unwrap().value_blocking().unwrap(), [Value::Uint(3)]);
    }
    assert_eq!(math.call_blocking("add", vec![Value::Uint(1), Value::Uint(2)]).unwrap().value_blocking().unwrap(), [Value::Uint(3)]);
    assert_eq!(math.generation(), 1);
    assert_eq!(math.connected_to(), Some(h.endpoints()[0].clone()));
    // The service goes away: the connection ends, the state is closed.
    let pending = math.call_blocking("add", vec![]).unwrap(); // answered with an error first
    drop(pending);
    h.close();
    drop(h);
    while math.state() != ServiceState::Closed {
        std::thread::sleep(Duration::from_millis(5));
    }
    // It comes back elsewhere: the next call resolves again and reconnects.
    let h2 = Hosted::bind(demo::math(), &any_port()).unwrap();
    registry.add("math", h2.endpoints(), 1, h2.def().graph().clone());
    assert_eq!(math.call_blocking("mul", vec![Value::Uint(4), Value::Uint(5)]).unwrap().value_blocking().unwrap(), [Value::Uint(20)]);
    assert_eq!(math.generation(), 2);
    assert_eq!(math.state(), ServiceState::Connected);
    assert_eq!(math.connected_to(), Some(h2.endpoints()[0].clone()));
}

#[test]
fn calls_in_progress_fail_when_the_connection_drops() {
    // A service that never answers, then closes the connection.
    let (tx, rx) = mpsc::channel::<Channel>();
    let tx = Mutex::new(tx);
    let server = Server::bind(&any_port(), ChannelConfig::new(Dialect::V1, None), move |_: &Server, inc: Incoming| {
        let ch = inc.start(|_: &Channel, _: Event| {}).unwrap();
        tx.lock().unwrap().send(ch).unwrap();
    })
    .unwrap();
    let graph = Graph::new(vec![sluice_core::services::graph::Method::new(0, "wait", Node::Terminal, Node::streaming())]);
    let svc =
        Service::direct(Resolved { name: "w".into(), endpoints: vec![server.local().clone()], version: 1, graph }, ClientConfig::default());
    let mut call = svc.call_blocking("wait", vec![]).unwrap();
    let ch = rx.recv().unwrap();
    ch.close();
    assert_eq!(call.recv_blocking(), Some(Err(Error::Disconnected(errno::ESHUTDOWN))));
    assert_eq!(call.recv_blocking(), None);
}

#[test]
fn logger_filters_below_the_verbosity() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    let (loc, _hosted, locator) = setup();
    let h = Hosted::bind(demo::logging(Level::Warning, move |r| sink.lock().unwrap().push(r)), &any_port()).unwrap();
    loc.registry().add("logging", h.endpoints(), 2, h.def().graph().clone());
    let log = Logger::new(&locator, "test");
    assert_eq!(log.source(), "app/test");
    assert_eq!(log.info("not sent"), Ok(false));
    assert_eq!(log.debug("not sent"), Ok(false));
    assert_eq!(log.error("sent"), Ok(true));
    assert_eq!(log.emit_blocking(Level::Warning, "with attributes", &[("uuid", s("u-1")), ("n", Value::Uint(3))]), Ok(true));
    // The verbosity is asked once per connection: lowering it on the service
    // does not reach this connection...
    let svc = log.service();
    svc.call_blocking("set_verbosity", vec![Value::Uint(0)]).unwrap().value_blocking().unwrap();
    assert_eq!(log.debug("still filtered"), Ok(false));
    // ...a new connection asks again.
    svc.close();
    assert_eq!(log.debug("now sent"), Ok(true));
    // A call on the same connection is answered after the emits before it.
    svc.call_blocking("verbosity", vec![]).unwrap().value_blocking().unwrap();
    let got = records.lock().unwrap().clone();
    let lines: Vec<String> = got.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "[error] app/test: sent");
    assert_eq!(lines[1], "[warning] app/test: with attributes {uuid=\"u-1\", n=3}");
    assert_eq!(lines[2], "[debug] app/test: now sent");
}

#[test]
fn registry_follows_the_publishing_connection() {
    let loc = LocatorServer::bind(&any_port(), Registry::new()).unwrap();
    let locator = Locator::new(vec![loc.local().clone()]);
    let events = changes(loc.registry());
    let h = Hosted::bind(demo::echo(), &any_port()).unwrap();
    let def_graph = h.def().graph().clone();
    // Published: online, resolvable, listed.
    let publication = Publication(h.publish_blocking(&locator).unwrap());
    let e = next(&events);
    assert_eq!((e.name.as_str(), e.online), ("echo", true));
    assert!(e.origin.starts_with("published by 127.0.0.1:"), "{}", e.origin);
    assert_eq!(locator.resolve_blocking("echo").unwrap().graph, def_graph);
    // Discarded: offline at once, not resolvable, still listed as offline.
    drop(publication);
    let e = next(&events);
    assert_eq!((e.name.as_str(), e.online), ("echo", false));
    assert_eq!(e.graph, def_graph, "the listener sees the entry as it was");
    assert!(matches!(locator.resolve_blocking("echo"), Err(Error::NotFound(_))));
    assert!(loc.registry().list().iter().any(|e| e.name == "echo" && !e.online));
    // The offline entry no longer keeps the graph.
    assert!(loc.registry().list().iter().any(|e| e.name == "echo" && e.graph.methods().is_empty()));
    // Published again: back online.
    let p = h.publish_blocking(&locator).unwrap();
    assert!(next(&events).online);
    assert_eq!(locator.resolve_blocking("echo").unwrap().endpoints, h.endpoints());
    // A second publisher of an online name is refused.
    let h2 = Hosted::bind(demo::echo(), &any_port()).unwrap();
    let e = h2.publish_blocking(&locator).unwrap_err();
    assert!(matches!(e, Error::Service(ServiceError { category: Some(10), code: 4, .. })), "{e:?}");
    drop(p);
    assert!(!next(&events).online);

    // A publisher whose connection drops (no discard): offline at once.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let raw = Channel::connect(loc.local().clone(), ChannelConfig::new(Dialect::V1, None), move |_: &Channel, ev: Event| {
        if let Event::Frame(f) = ev {
            tx.lock().unwrap().send(f).unwrap();
        }
    })
    .unwrap();
    let eps = Value::Array(vec![Value::Array(vec![s("127.0.0.1"), Value::Uint(1)])]);
    let args = [s("raw"), eps, Value::Array(vec![Value::Uint(1), Graph::default().to_value()])];
    let mut enc = sluice_core::wire::Encoder::new(Dialect::V1, sluice_core::wire::Profile::Compat);
    enc.frame_values(1, 4, &args, &[]);
    let mut out = std::mem::take(enc.out());
    let n = out.len();
    raw.send_raw(bytes::Buf::copy_to_bytes(&mut out, n)).unwrap();
    let reply = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((reply.session, reply.ty), (1, 0)); // value()
    assert!(next(&events).online);
    assert!(locator.resolve_blocking("raw").is_ok());
    raw.abort();
    let e = next(&events);
    assert_eq!((e.name.as_str(), e.online), ("raw", false));
    assert!(matches!(locator.resolve_blocking("raw"), Err(Error::NotFound(_))));
}

/// Keeps a publication alive until dropped (named for readability).
struct Publication(#[allow(dead_code)] sluice_core::services::Publication);

#[test]
fn remote_invocation_over_the_attaching_connection() {
    let (loc, _hosted, locator) = setup();
    let events = changes(loc.registry());
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let def = ServiceDef::new("upper", 1)
        .primitive("shout", move |args| {
            *seen.lock().unwrap() += 1;
            let t = args.first().and_then(Value::as_bytes).ok_or_else(|| ServiceError::new(42, 1, "text"))?;
            Ok(vec![Value::from(String::from_utf8_lossy(t).to_uppercase().as_str())])
        })
        .streaming("count", |req, mut out| {
            let n = req.args.first().and_then(Value::as_u64).unwrap_or(0);
            for i in 0..n {
                out.write(vec![Value::Uint(i)]).unwrap();
            }
            out.close().unwrap();
        });
    let attached = Attached::attach_blocking(&locator, def).unwrap();
    let e = next(&events);
    assert!(e.online && e.origin.starts_with("attached by"), "{e:?}");
    assert_eq!(attached.endpoints(), &e.endpoints[..]);

    // The server invokes the client's service over the client's connection.
    let v = loc.registry().invoke("upper", "shout", vec![s("hi")]).unwrap().value_blocking().unwrap();
    assert_eq!(v, [s("HI")]);
    let e = loc.registry().invoke("upper", "shout", vec![Value::Uint(1)]).unwrap().value_blocking().unwrap_err();
    assert_eq!(e, Error::Service(ServiceError::new(42, 1, "text")));
    let replies = loc.registry().invoke("upper", "count", vec![Value::Uint(3)]).unwrap().collect_blocking().unwrap();
    assert_eq!(replies.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["write", "write", "write", "close"]);
    assert!(matches!(loc.registry().invoke("upper", "nope", vec![]), Err(Error::UnknownMethod { .. })));
    assert!(matches!(loc.registry().invoke("echo", "echo", vec![]), Err(Error::NotFound(_))));

    // Any client resolves it and calls it like any service.
    let upper = locator.service("upper");
    assert_eq!(upper.call_blocking("shout", vec![s("abc")]).unwrap().value_blocking().unwrap(), [s("ABC")]);
    let replies = upper.call_blocking("count", vec![Value::Uint(2)]).unwrap().collect_blocking().unwrap();
    assert_eq!(replies.len(), 3);
    let many: Vec<_> = (0..50).map(|i| upper.call_blocking("shout", vec![s(&format!("m{i}"))]).unwrap()).collect();
    for (i, c) in many.into_iter().enumerate() {
        assert_eq!(c.value_blocking().unwrap(), [s(&format!("M{i}"))]);
    }
    assert_eq!(*calls.lock().unwrap(), 53);

    // Detached: offline at once; invoking fails; re-attaching brings it back.
    drop(attached);
    assert!(!next(&events).online);
    assert!(matches!(loc.registry().invoke("upper", "shout", vec![s("x")]), Err(Error::NotFound(_))));
    assert!(matches!(locator.resolve_blocking("upper"), Err(Error::NotFound(_))));
    let again = Attached::attach_blocking(&locator, ServiceDef::new("upper", 2).primitive("shout", Ok)).unwrap();
    assert!(next(&events).online);
    assert_eq!(loc.registry().invoke("upper", "shout", vec![s("same")]).unwrap().value_blocking().unwrap(), [s("same")]);
    assert_eq!(again.name(), "upper");
}

#[test]
fn blocking_calls_refuse_to_run_on_the_runtime() {
    let rt = sluice_core::net::runtime::handle().unwrap();
    let r = rt.block_on(async { tokio_spawned(|| Locator::default().resolve_blocking("x")).await });
    assert_eq!(r, Err(Error::InRuntime));
}

async fn tokio_spawned<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    sluice_core::net::runtime::handle().unwrap().spawn(async move { f() }).await.unwrap()
}

#[test]
fn async_api() {
    let (_loc, _hosted, locator) = setup();
    let rt = sluice_core::net::runtime::handle().unwrap();
    let v = rt.block_on(async move {
        let math = locator.service("math");
        let a = math.call("add", vec![Value::Uint(40), Value::Uint(2)]).await?.value().await?;
        let mut call = locator.service("echo").call("echo", vec![s("x")]).await?;
        let first = call.recv().await.unwrap()?;
        assert_eq!(first.name, "write");
        Ok::<_, Error>(a)
    });
    assert_eq!(v.unwrap(), [Value::Uint(42)]);
}

/// A v0 peer (Cocaine 0.11, docs/PROTOCOL.md §2.3) answering every call with
/// `chunk(msgpack(answer(method, args)))` then `choke`.
fn v0_server(answer: impl Fn(u64, Vec<Value>) -> Value + Send + Sync + 'static) -> Server {
    let answer = Arc::new(answer);
    Server::bind(&any_port(), ChannelConfig::new(Dialect::V0, None), move |_: &Server, inc: Incoming| {
        let answer = answer.clone();
        inc.start(move |ch: &Channel, ev: Event| {
            if let Event::Frame(f) = ev {
                let result = answer(f.ty, f.args.to_values().unwrap());
                let payload = result.to_bytes(sluice_core::wire::Profile::Compat);
                ch.send_frame(
                    f.session,
                    4,
                    &sluice_core::wire::Args::from_raw(
                        Value::Array(vec![Value::Str(payload)]).to_bytes(sluice_core::wire::Profile::Compat),
                    )
                    .unwrap(),
                    &[],
                )
                .unwrap();
                ch.send_frame(f.session, 6, &sluice_core::wire::Args::empty(), &[]).unwrap();
            }
        })
        .unwrap();
    })
    .unwrap()
}

#[test]
fn v0_resolve_and_call() {
    let svc = v0_server(|ty, args| match ty {
        0 => Value::Uint(args.iter().filter_map(Value::as_u64).sum()),
        _ => Value::Nil,
    });
    let Endpoint::Tcp(host, port) = svc.local().clone() else { unreachable!() };
    let loc = v0_server(move |ty, args| {
        assert_eq!((ty, args.clone()), (0, vec![s("adder")]));
        Value::Array(vec![
            Value::Array(vec![s(&host), Value::Uint(port as u64)]),
            Value::Uint(1),
            Value::Map(vec![(Value::Uint(0), s("sum")), (Value::Uint(1), s("noop"))]),
        ])
    });
    let config = ClientConfig { dialect: Dialect::V0, ..ClientConfig::default() };
    let locator = Locator::new(vec![loc.local().clone()]).with_config(config);
    let r = locator.resolve_blocking("adder").unwrap();
    assert_eq!(r.endpoints, [svc.local().clone()]);
    assert_eq!(r.graph.method("noop").unwrap().id, 1);
    let adder = locator.service("adder");
    assert_eq!(adder.call_blocking("sum", vec![Value::Uint(2), Value::Uint(40)]).unwrap().value_blocking().unwrap(), [Value::Uint(42)]);
    assert_eq!(adder.call_blocking("noop", vec![]).unwrap().value_blocking().unwrap(), [Value::Nil]);
}

#[test]
fn unreadable_arguments_are_refused_and_dropped_services_hang_up() {
    let h = Hosted::bind(demo::echo(), &any_port()).unwrap();
    // A well-framed call whose arguments nest deeper than values may.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let raw = Channel::connect(h.local().clone(), ChannelConfig::new(Dialect::V1, None), move |_: &Channel, ev: Event| {
        if let Event::Frame(f) = ev {
            tx.lock().unwrap().send(f).unwrap();
        }
    })
    .unwrap();
    let mut frame = vec![0x93, 0x01, 0x00, 0x91];
    frame.extend(std::iter::repeat_n(0x91, 300));
    frame.push(0xc0);
    raw.send_raw(frame.into()).unwrap();
    let reply = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((reply.session, reply.ty), (1, 1));
    let err = ServiceError::from_args(&reply.args.to_values().unwrap()).unwrap();
    assert_eq!((err.category, err.code), (Some(7), 2));
    raw.close();

    // The last handle of a service client closes its connection.
    let info = Resolved { name: "echo".into(), endpoints: h.endpoints(), version: 1, graph: h.def().graph().clone() };
    let svc = Service::direct(info, ClientConfig::default());
    svc.call_blocking("ping", vec![]).unwrap().value_blocking().unwrap();
    assert!(h.connections() >= 1);
    drop(svc);
    while h.connections() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn request_streams_directly_and_through_an_attached_relay() {
    let talk = |svc: &Service| {
        let mut call = svc.call_blocking("relay", vec![]).unwrap();
        call.send("write", &[s("one")]).unwrap();
        assert_eq!(call.recv_blocking().unwrap().unwrap().args, [s("one")]);
        call.send("write", &[Value::Uint(2)]).unwrap();
        call.send("close", &[]).unwrap();
        assert_eq!(call.send("write", &[]), Err(Error::NotAllowed("write".into())));
        let rest = call.collect_blocking().unwrap();
        assert_eq!(rest.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["write", "close"]);
        assert_eq!(rest[0].args, [Value::Uint(2)]);
    };
    let (_loc, _hosted, locator) = setup();
    talk(&locator.service("echo"));
    // The same service attached by a client: the caller's writes travel
    // caller → locator → client and back.
    let loc = LocatorServer::bind(&any_port(), Registry::new()).unwrap();
    let locator = Locator::new(vec![loc.local().clone()]);
    let _attached = Attached::attach_blocking(&locator, demo::echo()).unwrap();
    talk(&locator.service("echo"));
    let replies = loc.registry().invoke("echo", "echo", vec![s("x"), s("y")]).unwrap().collect_blocking().unwrap();
    assert_eq!(replies.len(), 3);
}

/// A stream larger than the send queues through an attached service's
/// relay: the relay waits for the caller to read instead of giving up, so
/// every chunk arrives, in order, and the stream ends with `close`.
#[test]
fn a_large_stream_through_an_attached_relay_arrives_whole() {
    const CHUNKS: u64 = 48;
    let loc = LocatorServer::bind(&any_port(), Registry::new()).unwrap();
    let locator = Locator::new(vec![loc.local().clone()]);
    let def = ServiceDef::new("big", 1).streaming("blobs", |_, mut out| {
        // Answered from a thread of its own: a handler must not block.
        std::thread::spawn(move || {
            for i in 0..CHUNKS {
                let blob = Value::Bin(bytes::Bytes::from(vec![i as u8; 1 << 20]));
                loop {
                    match out.write(vec![Value::Uint(i), blob.clone()]) {
                        Ok(()) => break,
                        Err(Error::WouldBlock) => std::thread::sleep(Duration::from_millis(2)),
                        Err(e) => panic!("write {i}: {e}"),
                    }
                }
            }
            while let Err(Error::WouldBlock) = out.close() {
                std::thread::sleep(Duration::from_millis(2));
            }
        });
    });
    let _attached = Attached::attach_blocking(&locator, def).unwrap();
    let mut call = locator.service("big").call_blocking("blobs", vec![]).unwrap();
    let mut n = 0;
    while let Some(r) = call.recv_timeout_blocking(Some(Duration::from_secs(60))) {
        let r = r.unwrap();
        if r.name == "close" {
            break;
        }
        assert_eq!(r.name, "write");
        assert_eq!(r.args[0], Value::Uint(n));
        assert_eq!(r.args[1].as_bytes().map(|b| (b.len(), b[0])), Some((1 << 20, n as u8)));
        n += 1;
        if n % 8 == 0 {
            // A slow reader: the queues fill while it sleeps.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(n, CHUNKS);
}
