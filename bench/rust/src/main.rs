//! `sluice-bench`: the Rust contenders of `make bench`, and the peers the
//! other languages' contenders are measured against.
//!
//! ```text
//! sluice-bench run [--workloads recv64,recv64k,send64,rtt64,mixed] [--nets tcp,unix]
//!                  [--contenders plain,sluice-rust] [--scale 1.0] [--count N]
//!     one JSON sample per line on stdout
//! sluice-bench feed tcp|unix SIZE COUNT   serve one decode stream
//! sluice-bench sink tcp|unix BYTES        read BYTES, then close
//! sluice-bench engine tcp|unix WAVES      the worker load's engine; prints its seconds
//! ```
//!
//! The peers print the address to connect to (`127.0.0.1:PORT` or a
//! socket path) on the first line of stdout, serve one connection and exit.

use std::io::Write;
use std::process::ExitCode;

use sluice_bench::peer::{self, Listener};
use sluice_bench::{measure, Contender, Net, Options, Workload};

fn usage() -> ExitCode {
    eprintln!(
        "usage: sluice-bench run [--workloads W,..] [--nets tcp,unix] [--contenders plain,sluice-rust] [--scale X] [--count N]\n       sluice-bench feed NET SIZE COUNT | sink NET BYTES | engine NET WAVES"
    );
    ExitCode::from(2)
}

fn list<T>(s: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    s.split(',').filter(|x| !x.is_empty()).map(|x| parse(x).ok_or_else(|| format!("unknown name {x:?}"))).collect()
}

fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Options::default();
    let mut count: Option<usize> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--workloads" => opts.workloads = list(&val()?, Workload::parse)?,
            "--nets" => opts.nets = list(&val()?, Net::parse)?,
            "--contenders" => opts.contenders = list(&val()?, Contender::parse)?,
            "--scale" => opts.scale = val()?.parse().map_err(|e| format!("--scale: {e}"))?,
            "--count" => count = Some(val()?.parse().map_err(|e| format!("--count: {e}"))?),
            // `cargo bench` passes --bench.
            "--bench" => {}
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let stdout = std::io::stdout();
    for &w in &opts.workloads {
        let n = count.unwrap_or_else(|| w.count(opts.scale));
        for &net in &opts.nets {
            for &c in &opts.contenders {
                for s in measure(c, w, net, n) {
                    let mut out = stdout.lock();
                    writeln!(out, "{}", s.to_json()).map_err(|e| e.to_string())?;
                    out.flush().map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

fn serve(kind: &str, args: &[String]) -> Result<(), String> {
    let num = |i: usize| -> Result<usize, String> { args.get(i).ok_or("missing argument")?.parse().map_err(|e| format!("{e}")) };
    let net = Net::parse(args.first().ok_or("missing NET")?).ok_or("NET is tcp or unix")?;
    let l = Listener::bind(net, kind);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", l.address()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    match kind {
        "feed" => {
            let (size, count) = (num(1)?, num(2)?);
            peer::feed(&mut l.accept(), size, count);
        }
        "sink" => {
            let bytes = num(1)?;
            peer::sink(&mut l.accept(), bytes);
        }
        _ => {
            let waves = num(1)?;
            let secs = peer::engine(&mut l.accept(), waves);
            println!("{secs}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some(k @ ("feed" | "sink" | "engine")) => serve(k, &args[1..]),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            ExitCode::from(2)
        }
    }
}
