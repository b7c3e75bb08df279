//! The `sluice` binary run as a process: `serve` in the background, then
//! every other command against it, and their errors.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// `sluice serve --port 0`, killed when dropped.
struct Serve {
    child: Child,
    locator: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(SLUICE)
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut locator = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("sluice: locator listening on ") {
                locator = Some(rest.split(' ').next().unwrap().to_string());
            }
            if line.starts_with("sluice: ready") {
                break;
            }
        }
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve { child, locator: locator.expect("serve printed its address"), log }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(SLUICE).args(["--locator", &self.locator]).args(args).output().unwrap()
    }

    /// The next line `serve` prints that contains `what`.
    fn wait_for(&self, what: &str) -> String {
        loop {
            let line = self.log.recv_timeout(std::time::Duration::from_secs(60)).expect("serve output");
            if line.contains(what) {
                return line;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A user mistake: exit status 2 and one line on stderr.
fn assert_usage_error(o: &Output, contains: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert_one_line(o, contains);
}

/// A failure: exit status 1 and one line on stderr.
fn assert_failure(o: &Output, contains: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    assert_one_line(o, contains);
}

fn assert_one_line(o: &Output, contains: &str) {
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("sluice: ") && e.contains(contains), "{e}");
}

#[test]
fn resolve_prints_endpoints_and_the_graph() {
    let s = Serve::start(&[]);
    let o = s.run(&["resolve", "echo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("service echo (protocol version 1)\nendpoints: 127.0.0.1:"), "{out}");
    assert!(out.contains("0 echo   tx: none  rx: {0 write*, 1 error, 2 close}"), "{out}");
    assert!(out.contains("1 ping   tx: none  rx: {0 value, 1 error}"), "{out}");
    let o = s.run(&["resolve", "locator"]);
    assert!(stdout(&o).contains("4 publish   tx: {0 discard}  rx: {0 value, 1 error}"), "{}", stdout(&o));
    assert_failure(&s.run(&["resolve", "nope"]), "service 'nope' is not available");
    assert_usage_error(&s.run(&["resolve"]), "usage: sluice resolve NAME");
}

#[test]
fn call_prints_the_reply_stream() {
    let s = Serve::start(&[]);
    let o = s.run(&["call", "echo", "echo", "\"a\"", "2", "{\"k\": [true, null]}"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "write \"a\"\nwrite 2\nwrite {\"k\": [true, nil]}\nclose\n");
    // A method that takes a request stream gets an empty one.
    assert_eq!(stdout(&s.run(&["call", "echo", "relay"])), "close\n");
    let o = s.run(&["call", "math", "add", "[1, -3]"]);
    assert_eq!(stdout(&o), "value -2\n");
    let o = s.run(&["call", "kv", "set", "[\"k\", 1.5]"]);
    assert_eq!(stdout(&o), "value\n");
    assert_eq!(stdout(&s.run(&["call", "kv", "get", "\"k\""])), "value 1.5\n");
    // Errors: from the service, unknown service and method, bad JSON.
    let o = s.run(&["call", "math", "div", "[1, 0]"]);
    assert_failure(&o, "math.div failed: [42, 1] division by zero");
    assert_eq!(stdout(&o), "");
    assert_failure(&s.run(&["call", "nope", "x"]), "service 'nope' is not available");
    assert_failure(&s.run(&["call", "math", "pow", "1"]), "service 'math' has no method 'pow'");
    assert_usage_error(&s.run(&["call", "math", "add", "[1,"]), "bad JSON argument '[1,'");
    assert_usage_error(&s.run(&["call", "math"]), "usage: sluice call NAME METHOD [ARGS]");
}

#[test]
fn logging_service_prints_what_passes_its_verbosity() {
    let s = Serve::start(&["--verbosity", "warning"]);
    let o = s.run(&["call", "logging", "verbosity"]);
    assert_eq!(stdout(&o), "value 2\n");
    // emit has no reply: the call ends at once.
    let o = s.run(&["call", "logging", "emit", "[1, \"app/cli\", \"quiet\", []]"]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stderr(&o));
    let o = s.run(&["call", "logging", "emit", "[3, \"app/cli\", \"loud\", [[\"k\", 1]]]"]);
    assert!(o.status.success());
    assert_eq!(s.wait_for("log: "), "log: [error] app/cli: loud {k=1}");
}

#[test]
fn list_shows_the_registry() {
    let s = Serve::start(&[]);
    let o = s.run(&["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for name in ["echo", "kv", "locator", "logging", "math"] {
        assert!(out.lines().any(|l| l.starts_with(name) && l.contains("online")), "{out}");
    }
}

#[test]
fn unreachable_locator() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let o = Command::new(SLUICE).args(["--locator", &addr, "resolve", "echo"]).output().unwrap();
    assert_failure(&o, &format!("cannot connect to the locator: {addr} (ECONNREFUSED)"));
    let o = Command::new(SLUICE).args(["call", "echo", "echo"]).env("SLUICE_LOCATOR", &addr).output().unwrap();
    assert_failure(&o, "cannot connect to the locator");
    let o = Command::new(SLUICE).args(["--locator", "nonsense", "resolve", "echo"]).output().unwrap();
    assert_usage_error(&o, "bad locator endpoint 'nonsense'");
}

#[test]
fn locator_failover_from_the_command_line() {
    let s = Serve::start(&[]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let both = format!("{addr},{}", s.locator);
    let o = Command::new(SLUICE).args(["--locator", &both, "call", "math", "mul", "[6, 7]"]).output().unwrap();
    assert_eq!(stdout(&o), "value 42\n", "{}", stderr(&o));
}

#[test]
fn dump_decodes_both_dialects_and_flags_bad_streams() {
    let captures = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/examples/captures/");
    let o = Command::new(SLUICE)
        .args(["dump", "--dialect", "v1", "--role", "worker", &format!("{captures}v1_engine_to_worker.bin")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("invoke \"http\""), "{out}");
    let o = Command::new(SLUICE).args(["dump", "--dialect", "v0", &format!("{captures}v0_engine_to_worker.bin")]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // From stdin: a heartbeat, then the reserved byte.
    let mut child =
        Command::new(SLUICE).args(["dump", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"\x93\x01\x00\x90\xc1").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "#1   session 1   type 0   []\nBAD STREAM after 1 frames (5 bytes read): not msgpack: reserved byte 0xc1 at stream offset 4 (errno 74)\n");
    assert_failure(&o, "the stream is malformed");
    // Cut inside a frame: flagged, not malformed.
    let mut child = Command::new(SLUICE).args(["dump"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"\x93\x01\x00\x90\x93\x02").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(
        stdout(&o).ends_with("1 frames in 6 bytes; INCOMPLETE: the stream ends inside a frame (2 bytes left over)\n"),
        "{}",
        stdout(&o)
    );
    assert_failure(&Command::new(SLUICE).args(["dump", "/nonexistent/capture"]).output().unwrap(), "cannot open /nonexistent/capture");
    assert_usage_error(&Command::new(SLUICE).args(["dump", "--dialect", "v7"]).output().unwrap(), "bad --dialect 'v7'");
}

#[test]
fn help_on_every_command_and_usage_errors() {
    let o = Command::new(SLUICE).arg("--help").output().unwrap();
    assert!(o.status.success() && stdout(&o).contains("commands:"));
    for (cmd, first) in [
        ("serve", "usage: sluice serve"),
        ("resolve", "usage: sluice resolve NAME"),
        ("call", "usage: sluice call NAME METHOD [ARGS]"),
        ("list", "usage: sluice list"),
        ("dump", "usage: sluice dump"),
    ] {
        let o = Command::new(SLUICE).args([cmd, "--help"]).output().unwrap();
        assert!(o.status.success(), "{cmd}");
        assert!(stdout(&o).starts_with(first), "{cmd}: {}", stdout(&o));
    }
    assert_usage_error(&Command::new(SLUICE).output().unwrap(), "no command given");
    assert_usage_error(&Command::new(SLUICE).arg("frobnicate").output().unwrap(), "unknown command 'frobnicate'");
    assert_usage_error(&Command::new(SLUICE).args(["serve", "--port", "x"]).output().unwrap(), "bad --port 'x'");
    assert_usage_error(&Command::new(SLUICE).args(["serve", "--verbosity", "loud"]).output().unwrap(), "bad --verbosity 'loud'");
    assert_usage_error(&Command::new(SLUICE).args(["--timeout", "-1", "list"]).output().unwrap(), "bad --timeout '-1'");
    // Too large for a duration: refused, not a panic (exit 101).
    assert_usage_error(
        &Command::new(SLUICE).args(["--timeout", "1e30", "list"]).output().unwrap(),
        "bad --timeout '1e30': must be more than 0",
    );
    assert_usage_error(&Command::new(SLUICE).args(["--timeout=nan", "list"]).output().unwrap(), "bad --timeout 'nan'");
    let o = Command::new(SLUICE).args(["serve", "--print-config"]).output().unwrap();
    assert!(stdout(&o).contains("service logging verbosity=info"));
}

#[test]
fn serve_reports_a_port_in_use() {
    let s = Serve::start(&[]);
    let port = s.locator.rsplit(':').next().unwrap().to_string();
    let o = Command::new(SLUICE).args(["serve", "--port", &port]).output().unwrap();
    assert_failure(&o, &format!("cannot listen on 127.0.0.1:{port}"));
}

#[test]
fn bench_prints_sluice_beside_plain_sockets() {
    let o = Command::new(SLUICE)
        .args(["bench", "--scale", "0.01", "--rounds", "3", "--workloads", "recv64,rtt64", "--nets", "unix"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("workload"), "{out}");
    assert_eq!(rows.len(), 5, "{out}");
    for (row, metric) in rows[1..].iter().zip(["msgs_per_s", "cpu_ns_per_msg", "p50_us", "p99_us"]) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[2], metric, "{row}");
        for v in &cols[3..5] {
            assert!(v.parse::<f64>().unwrap() > 0.0, "{row}");
        }
        assert!(cols[5].ends_with('×'), "{row}");
        // The lowest and highest ratio of a round, around the ratio of the medians.
        let (lo, hi) = cols[6].split_once('–').unwrap();
        let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
        assert!(lo <= hi, "{row}");
    }
    // --json: every round's sample of each contender.
    let o = Command::new(SLUICE)
        .args(["bench", "--scale", "0.01", "--rounds", "2", "--workloads", "recv64", "--nets", "tcp", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 8, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("\"contender\":\"plain\"")).count(), 4, "{out}");
    let o = Command::new(SLUICE).args(["bench", "--rounds", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "sluice: bad --rounds '0'");
    let o = Command::new(SLUICE).args(["bench", "--workloads", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "sluice: --workloads: unknown name 'nope'");
}

#[test]
fn remote_names_cannot_forge_lines_or_send_terminal_escapes() {
    use sluice_core::net::Endpoint;
    use sluice_core::services::{Hosted, Locator, ServiceDef};
    let s = Serve::start(&[]);
    let evil = "evil\n\u{1b}[2Jsluice: forged";
    let def = ServiceDef::new(evil, 1).primitive("m\u{1b}]0;title\u{7}", Ok);
    let hosted = Hosted::bind(def, &Endpoint::Tcp("127.0.0.1".into(), 0)).unwrap();
    let locator = Locator::new(vec![Endpoint::parse(&s.locator).unwrap()]);
    let _publication = hosted.publish_blocking(&locator).unwrap();
    // The serve console's line about it.
    let line = s.wait_for("is online");
    assert!(line.contains("evil\\n\\e[2Jsluice: forged"), "{line}");
    for out in [s.run(&["list"]), s.run(&["resolve", evil])] {
        let text = stdout(&out);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(!text.lines().any(|l| l.starts_with("sluice: forged")), "{text:?}");
        assert!(text.contains("evil\\n\\e[2Jsluice: forged"), "{text:?}");
    }
}
