//! The process-wide cap on service connections (its own test binary: the
//! cap is process-wide).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{demo, max_service_connections, service_connections, set_max_service_connections, Hosted};

/// `[1, 1, ["x"]]`: echo.ping("x") on channel 1.
const PING: &[u8] = &[0x93, 0x01, 0x01, 0x91, 0xa1, b'x'];

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a ping on a new connection is answered (rather than the
/// connection closed unanswered).
fn ping(port: u16) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(PING);
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(n) if n > 0)
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_served_again_once_others_end() {
    // The default comes from the descriptor limit, less the reserve.
    assert!(max_service_connections() >= 16);
    set_max_service_connections(8);
    assert_eq!(max_service_connections(), 8);
    let echo = Hosted::bind(demo::echo(), &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = echo.local().clone() else { unreachable!() };
    // Eight idle connections take the whole cap.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    wait_for("8 connections are open", || service_connections() == 8);
    // The ninth is closed before any reply.
    assert!(!ping(port), "a connection past the cap is closed unanswered");
    assert_eq!(service_connections(), 8);
    // Once one idle connection ends, a caller is served again.
    drop(idle);
    wait_for("the idle connections are given back", || service_connections() == 0);
    assert!(ping(port), "served again once connections ended");
    wait_for("the caller's connection is given back", || service_connections() == 0);
}
