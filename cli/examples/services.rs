//! Services in several languages, resolved and called through a Locator.
//!
//! Starts `sluice serve` on a free port, then one service program per
//! language (`LABEL=COMMAND`; each is run as `COMMAND --locator HOST:PORT
//! --name LABEL-echo` and must print `ready NAME` once it has attached its
//! service to the Locator), and calls each service by name through the
//! Locator: `ping` (primitive) many times, `count` (streaming) and `fail`
//! (an error reply). Then it shows `sluice resolve` and `sluice call` on
//! one of them, closes the programs' stdin (they detach and exit), checks
//! that their services went offline, and prints a table.
//!
//! ```sh
//! cargo build -q -p sluice-cli && cargo run -q -p sluice-cli --example services -- \
//!     --sluice target/debug/sluice c=target/c/service python=".venv/bin/python bindings/python/examples/service.py"
//! ```
//!
//! Options: `--sluice PATH` (the `sluice` binary, default: next to this
//! example's target directory), `--calls N` pings per service (2000),
//! `--chunks K` for `count` (100). Exits non-zero if any service misbehaved.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_core::net::Endpoint;
use sluice_core::services::{ClientConfig, Error, Locator, Service};
use sluice_core::wire::Value;

const TIMEOUT: Duration = Duration::from_secs(20);

struct Spec {
    label: String,
    argv: Vec<String>,
}

struct Row {
    name: String,
    start: Duration,
    resolve: Duration,
    methods: usize,
    pings: usize,
    p50: Duration,
    rate: f64,
    chunks: usize,
    fail: String,
    offline: bool,
    exit: Option<i32>,
    problems: Vec<String>,
}

fn usage() -> ! {
    eprintln!("usage: services [--sluice PATH] [--calls N] [--chunks K] LABEL=COMMAND...");
    std::process::exit(2);
}

/// Lines of a child's stdout, read on a thread so that waits can time out.
fn lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line satisfying `f`, returning what it extracted.
fn wait_for<T>(rx: &mpsc::Receiver<String>, echo: Option<&str>, mut f: impl FnMut(&str) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        if let Some(prefix) = echo {
            println!("{prefix}{line}");
        }
        if let Some(v) = f(&line) {
            return Some(v);
        }
    }
}

struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn default_sluice() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/examples/services -> target/<profile>/sluice
    exe.parent().and_then(|p| p.parent()).map(|p| p.join("sluice")).unwrap_or_else(|| PathBuf::from("sluice"))
}

fn exercise(svc: &Service, calls: usize, chunks: usize, row: &mut Row) {
    let mut times = Vec::with_capacity(calls);
    let started = Instant::now();
    for i in 0..calls {
        let t = Instant::now();
        let args = vec![Value::from(i as u64), Value::from("hello")];
        match svc.call_blocking("ping", args.clone()).and_then(|c| c.value_blocking()) {
            Ok(v) if v == args => {}
            Ok(v) => {
                row.problems.push(format!("ping {i} answered {}", Value::Array(v)));
                break;
            }
            Err(e) => {
                row.problems.push(format!("ping {i}: {e}"));
                break;
            }
        }
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    row.pings = times.len();
    times.sort();
    row.p50 = times.get(times.len() / 2).copied().unwrap_or_default();
    row.rate = times.len() as f64 / total.as_secs_f64().max(1e-9);

    match svc.call_blocking("count", vec![Value::from(chunks as u64)]).and_then(|c| c.collect_blocking()) {
        Ok(replies) => {
            let writes: Vec<&Value> = replies.iter().filter(|r| r.name == "write").filter_map(|r| r.args.first()).collect();
            row.chunks = writes.len();
            let in_order = writes.iter().enumerate().all(|(i, v)| v.as_i64() == Some(i as i64));
            let closed = replies.last().map(|r| r.name == "close").unwrap_or(false);
            if writes.len() != chunks || !in_order || !closed {
                row.problems.push(format!("count({chunks}): {} writes, in order: {in_order}, closed: {closed}", writes.len()));
            }
        }
        Err(e) => row.problems.push(format!("count: {e}")),
    }

    row.fail = match svc.call_blocking("fail", vec![]).and_then(|c| c.value_blocking()) {
        Err(Error::Service(e)) => {
            if e.category != Some(42) || e.code != 7 {
                row.problems.push(format!("fail answered {e}"));
            }
            format!("{e}")
        }
        Ok(v) => {
            row.problems.push(format!("fail answered a value {}", Value::Array(v)));
            "value".into()
        }
        Err(e) => {
            row.problems.push(format!("fail: {e}"));
            e.to_string()
        }
    };
}

fn main() {
    let mut sluice = default_sluice();
    let mut calls = 2000usize;
    let mut chunks = 100usize;
    let mut specs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sluice" => sluice = args.next().map(PathBuf::from).unwrap_or_else(|| usage()),
            "--calls" => calls = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--chunks" => chunks = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            spec => {
                let (label, cmd) = spec.split_once('=').unwrap_or_else(|| usage());
                let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    usage();
                }
                specs.push(Spec { label: label.to_string(), argv });
            }
        }
    }
    if specs.is_empty() {
        usage();
    }

    let mut guard = Guard(Vec::new());
    println!("$ {} serve --port 0", sluice.display());
    let mut serve = Command::new(&sluice).args(["serve", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
        eprintln!("services: cannot run {}: {e}", sluice.display());
        std::process::exit(1)
    });
    let serve_out = lines(serve.stdout.take().expect("piped"));
    guard.0.push(serve);
    let addr = wait_for(&serve_out, Some("  "), |l| {
        l.strip_prefix("sluice: locator listening on ").and_then(|r| r.split_whitespace().next()).map(str::to_string)
    });
    let Some(addr) = addr else {
        eprintln!("services: sluice serve did not start");
        std::process::exit(1);
    };
    wait_for(&serve_out, Some("  "), |l| l.starts_with("sluice: ready").then_some(()));
    let endpoint = Endpoint::parse(&addr).unwrap_or_else(|| {
        eprintln!("services: bad locator address {addr}");
        std::process::exit(1)
    });
    // From here on, what `sluice serve` logs is printed as it comes.
    let serve_log = std::thread::spawn(move || {
        let mut offline = Vec::new();
        while let Ok(line) = serve_out.recv() {
            println!("  {line}");
            if let Some(rest) = line.strip_prefix("sluice: ") {
                if let Some((name, _)) = rest.split_once(" went offline") {
                    offline.push(name.to_string());
                }
            }
        }
        offline
    });

    let config = ClientConfig { request_timeout: Some(TIMEOUT), ..ClientConfig::default() };
    let locator = Locator::new(vec![endpoint]).with_config(config);
    let mut rows = Vec::new();
    let mut children = Vec::new();
    for spec in &specs {
        let name = format!("{}-echo", spec.label);
        let mut row = Row {
            name: name.clone(),
            start: Duration::ZERO,
            resolve: Duration::ZERO,
            methods: 0,
            pings: 0,
            p50: Duration::ZERO,
            rate: 0.0,
            chunks: 0,
            fail: String::new(),
            offline: false,
            exit: None,
            problems: Vec::new(),
        };
        let t = Instant::now();
        println!("$ {} --locator {addr} --name {name}", spec.argv.join(" "));
        let child = Command::new(&spec.argv[0])
            .args(&spec.argv[1..])
            .args(["--locator", &addr, "--name", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                row.problems.push(format!("cannot start: {e}"));
                rows.push(row);
                continue;
            }
        };
        let out = lines(child.stdout.take().expect("piped"));
        let ready = wait_for(&out, Some("  "), |l| (l.trim() == format!("ready {name}")).then_some(()));
        row.start = t.elapsed();
        if ready.is_none() {
            row.problems.push("never printed 'ready'".into());
            guard.0.push(child);
            rows.push(row);
            continue;
        }
        children.push((rows.len(), child));
        rows.push(row);
    }

    for row in rows.iter_mut().filter(|r| r.problems.is_empty()) {
        let t = Instant::now();
        match locator.resolve_blocking(&row.name) {
            Ok(info) => {
                row.resolve = t.elapsed();
                row.methods = info.graph.methods().len();
            }
            Err(e) => {
                row.problems.push(format!("resolve: {e}"));
                continue;
            }
        }
        let svc = locator.service(&row.name);
        exercise(&svc, calls, chunks, row);
        svc.close();
    }

    if let Some(first) = rows.iter().find(|r| r.problems.is_empty()) {
        for argv in [vec!["resolve", first.name.as_str()], vec!["call", first.name.as_str(), "count", "[3]"]] {
            println!("\n$ sluice --locator {addr} {}", argv.join(" "));
            let status = Command::new(&sluice).args(["--locator", &addr]).args(&argv).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("services: sluice {} failed: {status:?}", argv[0]);
            }
        }
        println!();
    }

    // Closing stdin asks each program to detach and exit.
    for (i, mut child) in children {
        drop(child.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        let code = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s.code(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        rows[i].exit = code;
        if code != Some(0) {
            rows[i].problems.push(format!("exit {code:?}"));
        }
    }
    // Every detached service must be offline in the Locator now.
    for row in rows.iter_mut().filter(|r| r.exit.is_some()) {
        row.offline = matches!(locator.resolve_blocking(&row.name), Err(Error::NotFound(_)));
        if !row.offline {
            row.problems.push("still resolvable after its program exited".into());
        }
    }
    drop(guard);
    let _ = serve_log.join();

    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>7} {:<24} {:>8} {:>5}",
        "service", "start", "resolve", "methods", "pings", "p50", "calls/s", "chunks", "fail", "offline", "exit"
    );
    let mut bad = false;
    for r in &rows {
        println!(
            "{:<14} {:>6}ms {:>6.1}ms {:>8} {:>7} {:>7.0}µs {:>9.0} {:>7} {:<24} {:>8} {:>5}",
            r.name,
            r.start.as_millis(),
            r.resolve.as_secs_f64() * 1e3,
            r.methods,
            r.pings,
            r.p50.as_secs_f64() * 1e6,
            r.rate,
            r.chunks,
            r.fail,
            if r.offline { "yes" } else { "no" },
            r.exit.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        );
    }
    for r in &rows {
        for p in &r.problems {
            bad = true;
            eprintln!("services: {}: {p}", r.name);
        }
    }
    let _ = std::io::stdout().flush();
    if bad {
        std::process::exit(1);
    }
}
