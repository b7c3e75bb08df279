//! A sluice engine driving workers in any language: it listens on a Unix
//! socket, starts each worker command with the runtime's arguments
//! (`--app LABEL --endpoint PATH --protocol 1 --uuid UUID`), waits for its
//! handshake, runs sessions of `invoke` + chunks + close on it, checks that
//! every chunk comes back, terminates it, and prints a table.
//!
//! ```sh
//! cargo run -q -p sluice-core --example engine -- \
//!     rust="target/debug/examples/worker" python=".venv/bin/python bindings/python/examples/worker.py"
//! ```
//!
//! Options: `--sessions N` (200), `--chunks K` per session (3),
//! `--dialect v0|v1` (v1). Exits non-zero if any worker misbehaved.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::net::Endpoint;
use sluice_core::roles::{Engine, EngineEvent, EngineOptions};
use sluice_core::wire::Dialect;

struct Spec {
    label: String,
    argv: Vec<String>,
}

#[derive(Default)]
struct Row {
    handshake: Option<Duration>,
    started: Option<Instant>,
    elapsed: Option<Duration>,
    echoed: usize,
    closed: usize,
    bad: usize,
    terminate: Option<i64>,
    gone: Option<i32>,
    exit: Option<i32>,
}

fn usage() -> ! {
    eprintln!("usage: engine [--sessions N] [--chunks K] [--dialect v0|v1] LABEL=COMMAND...");
    std::process::exit(2);
}

fn main() {
    let mut sessions = 200usize;
    let mut chunks = 3usize;
    let mut dialect = Dialect::V1;
    let mut specs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sessions" => sessions = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--chunks" => chunks = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--dialect" => {
                dialect = match args.next().as_deref() {
                    Some("v0") => Dialect::V0,
                    Some("v1") => Dialect::V1,
                    _ => usage(),
                }
            }
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

    let path = std::env::temp_dir().join(format!("sluice-engine-demo.{}", std::process::id()));
    let mut opts = EngineOptions::new(Endpoint::Unix(path.clone()), dialect);
    let uuids: Vec<String> = (0..specs.len()).map(|i| format!("{:08x}-demo-{i}", std::process::id())).collect();
    opts.uuids = Some(uuids.iter().cloned().collect());
    let (tx, rx) = mpsc::channel();
    let engine = Engine::bind(opts, move |_: &Engine, ev| drop(tx.send(ev))).unwrap_or_else(|e| {
        eprintln!("engine: cannot listen on {}: {e}", path.display());
        std::process::exit(1);
    });
    println!("engine: listening on {} ({dialect:?}), {sessions} sessions × {chunks} chunks per worker", path.display());

    let t0 = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut rows: Vec<Row> = specs.iter().map(|_| Row::default()).collect();
    for (i, s) in specs.iter().enumerate() {
        let mut cmd = Command::new(&s.argv[0]);
        cmd.args(&s.argv[1..]).args(["--app", &s.label, "--endpoint"]).arg(&path).args(["--uuid", &uuids[i]]);
        if dialect == Dialect::V1 {
            cmd.args(["--protocol", "1"]);
        }
        match cmd.spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                eprintln!("engine: cannot start {}: {e}", s.argv.join(" "));
                std::process::exit(1);
            }
        }
    }

    let index: HashMap<String, usize> = uuids.iter().enumerate().map(|(i, u)| (u.clone(), i)).collect();
    let mut by_worker: HashMap<u64, usize> = HashMap::new();
    let mut expected: HashMap<(usize, u64), Vec<Bytes>> = HashMap::new();
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while done < specs.len() && Instant::now() < deadline {
        let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
        match ev {
            EngineEvent::Handshake { worker } => {
                let i = index[&worker.uuid().unwrap_or_default()];
                by_worker.insert(worker.id(), i);
                rows[i].handshake = Some(t0.elapsed());
                rows[i].started = Some(Instant::now());
                for n in 0..sessions {
                    let s = worker.invoke("echo").expect("invoke");
                    let mut want = Vec::new();
                    for k in 0..chunks {
                        let data = Bytes::from(format!("{}:{n}:{k}:{}", specs[i].label, "x".repeat(40)));
                        s.write(&data).expect("write");
                        want.push(data);
                    }
                    s.close().expect("close");
                    want.reverse();
                    expected.insert((i, s.session()), want);
                }
            }
            EngineEvent::Chunk { worker, session, data } => {
                let i = by_worker[&worker.id()];
                match expected.get_mut(&(i, session)).and_then(Vec::pop) {
                    Some(w) if w == data => rows[i].echoed += 1,
                    _ => rows[i].bad += 1,
                }
            }
            EngineEvent::Close { worker, session } => {
                let i = by_worker[&worker.id()];
                if expected.remove(&(i, session)).is_some_and(|rest| rest.is_empty()) {
                    rows[i].closed += 1;
                } else {
                    rows[i].bad += 1;
                }
                if rows[i].closed + rows[i].bad == sessions && rows[i].elapsed.is_none() {
                    rows[i].elapsed = rows[i].started.map(|t| t.elapsed());
                    let _ = worker.terminate(1, "the engine is shutting down");
                }
            }
            EngineEvent::Error { worker, .. } => rows[by_worker[&worker.id()]].bad += 1,
            EngineEvent::Terminate { worker, code, .. } => rows[by_worker[&worker.id()]].terminate = Some(code),
            EngineEvent::Gone { worker, errno } => {
                if let Some(&i) = by_worker.get(&worker.id()) {
                    rows[i].gone = Some(errno);
                    done += 1;
                }
            }
            EngineEvent::Rejected { uuid } => eprintln!("engine: rejected a worker with uuid {uuid}"),
            _ => {}
        }
    }
    for (i, c) in children.iter_mut().enumerate() {
        let wait_until = Instant::now() + Duration::from_secs(10);
        loop {
            match c.try_wait() {
                Ok(Some(st)) => {
                    rows[i].exit = st.code();
                    break;
                }
                Ok(None) if Instant::now() < wait_until => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
            }
        }
    }
    engine.close();

    println!();
    println!(
        "{:<8} {:>10} {:>9} {:>8} {:>10} {:>12} {:>10} {:>6}",
        "worker", "handshake", "sessions", "chunks", "time", "sessions/s", "terminate", "exit"
    );
    let mut ok = true;
    for (s, r) in specs.iter().zip(&rows) {
        let time = r.elapsed.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3)).unwrap_or_else(|| "-".into());
        let rate = r.elapsed.map(|d| format!("{:.0}", sessions as f64 / d.as_secs_f64())).unwrap_or_else(|| "-".into());
        let hs = r.handshake.map(|d| format!("{} ms", d.as_millis())).unwrap_or_else(|| "none".into());
        let term = r.terminate.map(|c| format!("code {c}")).unwrap_or_else(|| "none".into());
        let exit = r.exit.map(|c| c.to_string()).unwrap_or_else(|| "killed".into());
        println!("{:<8} {:>10} {:>9} {:>8} {:>10} {:>12} {:>10} {:>6}", s.label, hs, r.closed, r.echoed, time, rate, term, exit);
        let good = r.closed == sessions && r.echoed == sessions * chunks && r.bad == 0 && r.terminate.is_some() && r.exit == Some(0);
        ok &= good;
    }
    if !ok {
        eprintln!("engine: some workers did not complete every session, terminate and exit 0");
        std::process::exit(1);
    }
}
