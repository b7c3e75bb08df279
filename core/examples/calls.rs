//! Prints call rates of the service client against a hosted service over
//! TCP loopback: sequential round trips (with p50/p99), pipelined calls,
//! and a streamed reply.
//!
//! ```text
//! cargo run --release --example calls [-- SCALE]   # SCALE 0.1 for a short run
//! ```

use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{demo, Error, Hosted, Locator, LocatorServer, Registry};
use sluice_core::wire::Value;

fn main() -> Result<(), Error> {
    let scale: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let n = |k: f64| ((k * scale) as usize).max(1);
    let any = Endpoint::Tcp("127.0.0.1".into(), 0);
    let registry = Registry::new();
    let server = LocatorServer::bind(&any, registry.clone())?;
    let mut hosted = Vec::new();
    for def in [demo::math(), demo::echo()] {
        let h = Hosted::bind(def, &any)?;
        registry.add(h.name(), h.endpoints(), h.def().version(), h.def().graph().clone());
        hosted.push(h);
    }
    let locator = Locator::new(vec![server.local().clone()]);

    let t = Instant::now();
    let resolves = n(2_000.0);
    for _ in 0..resolves {
        locator.resolve_blocking("math")?;
    }
    let e = t.elapsed();
    println!("resolve (new connection each)   {:>10.0} /s", resolves as f64 / e.as_secs_f64());

    let math = locator.service("math");
    let args = || vec![Value::Uint(20), Value::Uint(22)];
    math.call_blocking("add", args())?.value_blocking()?;
    let rounds = n(20_000.0);
    let mut lat = Vec::with_capacity(rounds);
    let t = Instant::now();
    for _ in 0..rounds {
        let s = Instant::now();
        math.call_blocking("add", args())?.value_blocking()?;
        lat.push(s.elapsed());
    }
    let e = t.elapsed();
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!("primitive call, one at a time   {:>10.0} /s   p50 {:?}  p99 {:?}", rounds as f64 / e.as_secs_f64(), p(0.5), p(0.99));

    let batch = n(100_000.0);
    let t = Instant::now();
    let calls: Vec<_> = (0..batch).map(|_| math.call_blocking("add", args())).collect::<Result<_, _>>()?;
    for c in calls {
        c.value_blocking()?;
    }
    let e = t.elapsed();
    println!("primitive calls, pipelined      {:>10.0} /s", batch as f64 / e.as_secs_f64());

    let echo = locator.service("echo");
    let chunk = Value::Bin(vec![7u8; 64].into());
    let per_call = 1000;
    let streams = n(200.0);
    let t = Instant::now();
    for _ in 0..streams {
        let mut call = echo.call_blocking("echo", vec![chunk.clone(); per_call])?;
        while let Some(r) = call.recv_blocking() {
            r?;
        }
    }
    let e: Duration = t.elapsed();
    println!("streamed 64-byte writes         {:>10.0} /s", (streams * per_call) as f64 / e.as_secs_f64());
    Ok(())
}
