//! Idle connections to a hosted service are ended after the service idle
//! timeout; connections with a channel open are not (its own test binary:
//! the timeout is process-wide).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{demo, service_idle_timeout, set_service_idle_timeout, Hosted, DEFAULT_SERVICE_IDLE_TIMEOUT};

/// Reads until the connection ends; how long that took (`None`: still open
/// after `within`).
fn ends_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 4096];
    while start.elapsed() < within {
        match s.read(&mut b) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn idle_connections_are_ended_and_busy_ones_kept() {
    assert_eq!(service_idle_timeout(), Some(DEFAULT_SERVICE_IDLE_TIMEOUT));
    set_service_idle_timeout(Some(Duration::from_millis(300)));
    let echo = Hosted::bind(demo::echo(), &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let Endpoint::Tcp(_, port) = echo.local().clone() else { unreachable!() };
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A relay stream opened and left open: [1, 3, []] (relay's tx and rx
    // are streams), then nothing for longer than the timeout.
    let mut busy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    busy.write_all(&[0x93, 0x01, 0x03, 0x90]).unwrap();
    let t = ends_within(&mut idle, Duration::from_secs(10)).expect("the idle connection is ended");
    assert!(t >= Duration::from_millis(250), "not before the timeout: {t:?}");
    // A caller that pings now and then (for longer than the timeout in all)
    // stays.
    let mut chatty = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for i in 1..=8u8 {
        chatty.write_all(&[0x93, i, 0x01, 0x91, 0xa1, b'x']).unwrap();
        assert_eq!(ends_within(&mut chatty, Duration::from_millis(100)), None, "a caller with calls now and then is kept");
    }
    assert_eq!(ends_within(&mut busy, Duration::from_millis(200)), None, "a connection with a stream open is kept");
    // Once its stream ends, it is idle too: close() of relay's tx.
    busy.write_all(&[0x93, 0x01, 0x02, 0x90]).unwrap();
    assert!(ends_within(&mut busy, Duration::from_secs(10)).is_some(), "ended once idle");
    set_service_idle_timeout(None);
    assert_eq!(service_idle_timeout(), None);
}
