//! A service provided over a Locator connection: the Rust version of the
//! demo service program (the C, Python and Node ones follow the same
//! contract).
//!
//! ```text
//! usage: service --locator HOST:PORT --name NAME
//! ```
//!
//! Attaches the service NAME (version 1) to the Locator with the methods
//! `ping(args...)` (answers `value(args...)`), `count(n)` (writes `[0]` …
//! `[n-1]`, then closes) and `fail()` (answers `error([42, 7], "failed on
//! request")`); prints `ready NAME` once attached, and stays until its stdin
//! reaches end of file, then detaches and exits 0.

use std::io::{Read, Write};

use sluice_core::net::Endpoint;
use sluice_core::services::{Attached, Locator, ServiceDef, ServiceError};
use sluice_core::wire::Value;

fn fail(msg: &str) -> ! {
    eprintln!("service: {msg}");
    std::process::exit(1);
}

fn main() {
    let mut locator = None;
    let mut name = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--locator" => locator = args.next(),
            "--name" => name = args.next(),
            other => fail(&format!("unknown argument '{other}' (usage: service --locator HOST:PORT --name NAME)")),
        }
    }
    let (Some(locator), Some(name)) = (locator, name) else { fail("usage: service --locator HOST:PORT --name NAME") };
    let endpoint = Endpoint::parse(&locator).unwrap_or_else(|| fail(&format!("bad locator endpoint '{locator}'")));

    let def = ServiceDef::new(&name, 1)
        .primitive("ping", Ok)
        .streaming("count", |req, mut out| {
            let n = req.args.first().and_then(Value::as_i64).unwrap_or(0).max(0) as u64;
            for i in 0..n {
                if out.write(vec![Value::from(i)]).is_err() {
                    return;
                }
            }
            let _ = out.close();
        })
        .primitive("fail", |_| Err(ServiceError::new(42, 7, "failed on request")));
    let attached =
        Attached::attach_blocking(&Locator::new(vec![endpoint]), def).unwrap_or_else(|e| fail(&format!("cannot attach to {locator}: {e}")));
    println!("ready {name}");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    attached.detach();
}
