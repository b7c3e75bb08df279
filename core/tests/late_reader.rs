//! Callers that do not read their replies while they send: a hosted
//! service stops reading their calls instead of dropping replies, and a
//! caller that makes the replies outgrow the send queue's hard bound has
//! its connection closed (ENOBUFS) while everyone else is served.
//!
//! The callers here are raw TCP sockets writing pre-encoded v1 frames, so
//! that nothing on the calling side paces them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{demo, ClientConfig, Hosted, Resolved, Service};
use sluice_core::wire::{Decoder, DecoderConfig, Dialect, Value};

/// The demo `echo` service's `ping` and the `kv` service's `get` / `set`.
const PING: u8 = 1;
const KV_GET: u8 = 0;
const KV_SET: u8 = 1;

fn host(def: sluice_core::services::ServiceDef) -> (Hosted, std::net::SocketAddr) {
    let h = Hosted::bind(def, &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = h.local().clone() else { unreachable!() };
    (h, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

fn uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

/// `[channel, method, [args...], []]` with the arguments already encoded.
fn call(out: &mut Vec<u8>, channel: u64, method: u8, argc: u8, args: &[u8]) {
    out.push(0x94);
    uint(out, channel);
    out.push(method);
    out.push(0x90 | argc);
    out.extend_from_slice(args);
    out.push(0x90);
}

/// Reads frames from `sock` until `want` replies have come or the
/// connection ends; returns the channel ids of the `value` replies, in
/// order, and whether the connection ended.
fn read_replies(sock: &mut TcpStream, want: usize, limit: Duration) -> (Vec<u64>, bool) {
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let mut ids = Vec::with_capacity(want);
    let mut buf = vec![0u8; 256 << 10];
    let deadline = Instant::now() + limit;
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while ids.len() < want {
        assert!(Instant::now() < deadline, "{} of {want} replies after {limit:?}", ids.len());
        let n = match sock.read(&mut buf) {
            Ok(0) => return (ids, true),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return (ids, true),
        };
        dec.feed(&buf[..n]);
        while let Some(f) = dec.decode().expect("the service sends valid frames") {
            assert_eq!(f.ty, 0, "a value reply on channel {}: {:?}", f.session, f.args.to_values());
            ids.push(f.session);
        }
    }
    (ids, false)
}

#[test]
fn a_million_pipelined_calls_from_a_caller_that_reads_late_all_get_replies() {
    const CALLS: u64 = 1_000_000;
    let (echo, addr) = host(demo::echo());
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut writer = sock.try_clone().unwrap();
    // The caller writes every call before it reads anything: the service
    // runs until its replies fill the send queue, then stops reading, and
    // the writer blocks until the reader below catches up.
    let sender = std::thread::spawn(move || {
        let mut out = Vec::with_capacity(64 << 10);
        for id in 1..=CALLS {
            // ping(id, 64 bytes): 1,000,000 replies of ~80 bytes, far more
            // than the send queue and the kernel's buffers hold.
            let mut arg = Vec::with_capacity(72);
            uint(&mut arg, id);
            arg.extend_from_slice(&[0xd9, 64]);
            arg.extend_from_slice(&[b'p'; 64]);
            call(&mut out, id, PING, 2, &arg);
            if out.len() >= 60 << 10 {
                writer.write_all(&out).unwrap();
                out.clear();
            }
        }
        writer.write_all(&out).unwrap();
    });
    // Reads late: only once the service has had time to back up.
    std::thread::sleep(Duration::from_secs(1));
    let (ids, ended) = read_replies(&mut sock, CALLS as usize, Duration::from_secs(600));
    sender.join().unwrap();
    assert!(!ended, "the connection ended after {} replies", ids.len());
    // Every call answered once, in order (one connection, primitive calls).
    assert_eq!(ids.len() as u64, CALLS);
    assert!(ids.iter().zip(1..).all(|(&got, want)| got == want), "replies out of order or missing");
    assert_eq!(echo.connections(), 1);
}

#[test]
fn replies_past_the_hard_bound_close_the_connection_and_others_are_served() {
    let (kv, addr) = host(demo::kv());
    let mut sock = TcpStream::connect(addr).unwrap();
    // One 1 MiB value, then 200 gets of it in one write, never read: 200
    // MiB of replies against a 64 MiB bound.
    let mut out = Vec::new();
    let mut args = vec![0xa1, b'k', 0xc6];
    args.extend_from_slice(&(1u32 << 20).to_be_bytes());
    args.resize(args.len() + (1 << 20), b'x');
    call(&mut out, 1, KV_SET, 2, &args);
    for id in 2..202 {
        call(&mut out, id, KV_GET, 1, &[0xa1, b'k']);
    }
    sock.write_all(&out).unwrap();
    // The service ends the connection: the caller reads what was written
    // before the cut, then the end.
    let (ids, ended) = read_replies(&mut sock, 201, Duration::from_secs(60));
    assert!(ended, "the connection stayed up with {} replies", ids.len());
    assert!(ids.len() < 201, "every reply arrived although the bound is 64 MiB");
    let t = Instant::now();
    while kv.connections() != 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "the service still holds the connection");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Another caller is served as usual.
    let info = Resolved { name: "kv".into(), endpoints: kv.endpoints(), version: 1, graph: kv.def().graph().clone() };
    let svc = Service::direct(info, ClientConfig::default());
    let v = svc.call_blocking("get", vec![Value::from("k")]).unwrap().value_blocking().unwrap();
    assert_eq!(v[0].as_bytes().map(|b| b.len()), Some(1 << 20));
}
