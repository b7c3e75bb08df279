//! Bounds a hosted service keeps per connection, against a caller on a raw
//! socket that does not play by the rules.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{demo, Hosted};
use sluice_core::wire::{Decoder, DecoderConfig, Dialect, Value};

/// The demo `echo` service's `relay` (tx and rx streaming) and `ping`.
const RELAY: u8 = 3;
const PING: u8 = 1;

fn call(out: &mut Vec<u8>, channel: u32, method: u8) {
    out.extend_from_slice(&[0x94, 0xce]);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&[method, 0x90, 0x90]);
}

#[test]
fn channels_opened_without_end_are_refused_past_max_sessions() {
    const LIMIT: u32 = 65536; // ChannelConfig::max_sessions' default
    let echo = Hosted::bind(demo::echo(), &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = echo.local().clone() else { unreachable!() };
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // LIMIT relay streams opened and never closed, then one more: it is
    // refused with [1, ENOBUFS]. Once one stream ends, a call is answered
    // on the same connection.
    let mut out = Vec::new();
    for id in 1..=LIMIT + 1 {
        call(&mut out, id, RELAY);
    }
    sock.write_all(&out).unwrap();
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let got = replies(&mut sock, &mut dec, 1);
    let refused = &got[0];
    assert_eq!((refused.0, refused.1), (u64::from(LIMIT) + 1, 1), "{got:?}");
    assert_eq!(refused.2[0], Value::Array(vec![Value::Uint(1), Value::Uint(105)]));
    assert!(refused.2[1].as_bytes().is_some_and(|m| m.starts_with(b"too many channels open")), "{got:?}");
    // close() on stream 1 (relay's tx: write, error, close), then a ping.
    sock.write_all(&[0x94, 0x01, 0x02, 0x90, 0x90]).unwrap();
    let mut out = Vec::new();
    call(&mut out, LIMIT + 2, PING);
    sock.write_all(&out).unwrap();
    let got = replies(&mut sock, &mut dec, 2);
    assert_eq!((got[0].0, got[0].1), (1, 2), "stream 1 closed back: {got:?}");
    assert_eq!((got[1].0, got[1].1), (u64::from(LIMIT) + 2, 0), "the ping answered: {got:?}");
}

type Reply = (u64, u64, Vec<Value>);

fn replies(sock: &mut TcpStream, dec: &mut Decoder, want: usize) -> Vec<Reply> {
    let mut buf = vec![0u8; 64 << 10];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while got.len() < want {
        assert!(Instant::now() < deadline, "replies so far: {got:?}");
        let n = match sock.read(&mut buf) {
            Ok(0) => panic!("the service closed the connection"),
            Ok(n) => n,
            Err(_) => continue,
        };
        dec.feed(&buf[..n]);
        while let Some(f) = dec.decode().unwrap() {
            got.push((f.session, f.ty, f.args.to_values().unwrap()));
        }
    }
    got
}

#[test]
fn names_that_are_not_utf8_are_refused_not_merged() {
    use sluice_core::services::{LocatorServer, Registry};
    let registry = Registry::new();
    let loc = LocatorServer::bind(&Endpoint::Tcp("127.0.0.1".into(), 0), registry.clone()).unwrap();
    let Endpoint::Tcp(_, port) = loc.local().clone() else { unreachable!() };
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // publish("ech\xff\xfe", [["127.0.0.1", 1]]) and resolve("ech\xfe\xff"):
    // lossily decoded, both would be "ech\u{fffd}\u{fffd}".
    let mut out = vec![0x94, 0x01, 0x04, 0x92, 0xa5, b'e', b'c', b'h', 0xff, 0xfe];
    out.extend_from_slice(&[0x91, 0x92, 0xa9]);
    out.extend_from_slice(b"127.0.0.1");
    out.extend_from_slice(&[0x01, 0x90]);
    out.extend_from_slice(&[0x94, 0x02, 0x00, 0x91, 0xa5, b'e', b'c', b'h', 0xfe, 0xff, 0x90]);
    sock.write_all(&out).unwrap();
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let got = replies(&mut sock, &mut dec, 2);
    for (id, ty, args) in &got {
        assert_eq!(*ty, 1, "channel {id} refused: {got:?}");
        assert_eq!(args[0], Value::Array(vec![Value::Uint(7), Value::Uint(2)]), "{got:?}");
        assert!(args[1].as_bytes().is_some_and(|m| m.ends_with(b"(a UTF-8 string)")), "{got:?}");
    }
    assert!(registry.resolve("ech\u{fffd}\u{fffd}").is_none());
}

#[test]
fn arguments_that_would_decode_into_too_many_values_are_refused_first() {
    let echo = Hosted::bind(demo::echo(), &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = echo.local().clone() else { unreachable!() };
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // ping([nil × 4,000,000]): a 4 MB frame that would be 160 MB of values.
    let n: u32 = 4_000_000;
    let mut out = vec![0x94, 0x01, PING, 0x91, 0xdd];
    out.extend_from_slice(&n.to_be_bytes());
    out.resize(out.len() + n as usize, 0xc0);
    out.push(0x90);
    call(&mut out, 2, PING);
    sock.write_all(&out).unwrap();
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let got = replies(&mut sock, &mut dec, 2);
    assert_eq!((got[0].0, got[0].1), (1, 1), "{got:?}");
    assert_eq!(got[0].2[0], Value::Array(vec![Value::Uint(7), Value::Uint(2)]));
    assert!(got[0].2[1].as_bytes().is_some_and(|m| m.ends_with(b"more than 262144 msgpack values")), "{got:?}");
    assert_eq!((got[1].0, got[1].1), (2, 0), "the next call is answered: {got:?}");
}

#[test]
fn a_frame_past_the_service_limit_ends_only_that_connection() {
    let kv = Hosted::bind(demo::kv(), &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = kv.local().clone() else { unreachable!() };
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // get(<a 400 MiB string>): only the head is sent; the declared size
    // alone ends the connection.
    let mut head = vec![0x94, 0x01, 0x00, 0x91, 0xdb];
    head.extend_from_slice(&(400u32 << 20).to_be_bytes());
    sock.write_all(&head).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(sock.read(&mut buf), Ok(0) | Err(_)), "the connection was not ended");
    // Others are served.
    let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
    other.write_all(&[0x94, 0x01, 0x00, 0x91, 0xa1, b'k', 0x90]).unwrap();
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let got = replies(&mut other, &mut dec, 1);
    assert_eq!(got[0].1, 1, "get of a missing key: an error reply, {got:?}");
}

#[test]
fn one_connection_cannot_fill_the_registry() {
    use sluice_core::services::{LocatorServer, Registry, MAX_NAMES_PER_CONNECTION};
    let registry = Registry::new();
    let loc = LocatorServer::bind(&Endpoint::Tcp("127.0.0.1".into(), 0), registry.clone()).unwrap();
    let Endpoint::Tcp(_, port) = loc.local().clone() else { unreachable!() };
    // publish("sN", [["127.0.0.1", 1]]) on channel N.
    let publish = |out: &mut Vec<u8>, n: u32| {
        let name = format!("s{n}");
        out.extend_from_slice(&[0x94, 0xce]);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&[0x04, 0x92, 0xa0 | name.len() as u8]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&[0x91, 0x92, 0xa9]);
        out.extend_from_slice(b"127.0.0.1");
        out.extend_from_slice(&[0x01, 0x90]);
    };
    let limit = MAX_NAMES_PER_CONNECTION as u32;
    let mut greedy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = Vec::new();
    for n in 1..=limit + 1 {
        publish(&mut out, n);
    }
    greedy.write_all(&out).unwrap();
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let got = replies(&mut greedy, &mut dec, limit as usize + 1);
    assert!(got[..limit as usize].iter().all(|r| r.1 == 0), "the first {limit} are taken");
    let last = &got[limit as usize];
    assert_eq!(last.1, 1, "{last:?}");
    assert_eq!(last.2[0], Value::Array(vec![Value::Uint(10), Value::Uint(2)]));
    assert!(registry.resolve(&format!("s{limit}")).is_some() && registry.resolve(&format!("s{}", limit + 1)).is_none());
    // Another connection registers as usual.
    let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = Vec::new();
    publish(&mut out, 1000);
    other.write_all(&out).unwrap();
    let got = replies(&mut other, &mut Decoder::new(DecoderConfig::new(Dialect::V1)), 1);
    assert_eq!(got[0].1, 0, "{got:?}");
    // When the greedy connection ends, its names go offline and its count
    // with them: it could register again on a new connection.
    drop(greedy);
    let t = Instant::now();
    while registry.resolve("s1").is_some() {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
}
