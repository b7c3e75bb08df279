//! `sluice`: serve, resolve and call Cocaine services; decode captured streams.

mod bench;
mod dump;
mod json;

use std::process::ExitCode;
use std::time::Duration;

use sluice_core::host::printable;
use sluice_core::net::Endpoint;
use sluice_core::services::{demo, ClientConfig, Error, Hosted, Level, Locator, LocatorServer, Registry, LOCATOR_PORT};
use sluice_core::wire::{Dialect, Role, Value};

const USAGE: &str = "\
sluice — a native channel for the Cocaine RPC protocol

usage: sluice [OPTIONS] COMMAND [ARGS]

commands:
  serve                    a Locator and the demo services (echo, math, kv, logging)
  resolve NAME             a service's endpoints and method graph
  call NAME METHOD [ARGS]  call a method and print the replies
  list                     the services a sluice Locator knows, online or not
  dump [FILE|-]            decode a captured byte stream into frames
  bench                    the channel benchmarks against plain sockets

options (every command):
  -l, --locator ENDPOINTS  Locator endpoints, comma-separated, tried in order
                           (default: $SLUICE_LOCATOR or localhost:10053)
  -t, --timeout SECONDS    how long to wait for connects and answers (default 10)
  -h, --help               help for sluice or for a command

`sluice COMMAND --help` describes each command.";

const SERVE_USAGE: &str = "\
usage: sluice serve [--host HOST] [--port PORT] [--verbosity LEVEL] [--config FILE] [--print-config]

Runs a Locator (default 127.0.0.1:10053) with the demo services of the
configuration registered in it, each on a free port of the same host, and
logs what happens: services coming online and going offline, and what the
logging service receives. Programs publish or attach their own services to
it. Stops with Ctrl-C.

  --host HOST        listen address (default 127.0.0.1)
  --port PORT        Locator port (default 10053; 0 picks a free one)
  --verbosity LEVEL  the logging service's verbosity: debug, info, warning, error
  --config FILE      a configuration instead of the embedded one
  --print-config     print the embedded configuration and exit";

const RESOLVE_USAGE: &str = "\
usage: sluice resolve NAME

Asks the Locator for the service NAME and prints its endpoints, protocol
version and method graph: per method, what the caller may send after the
call (tx) and what the service answers (rx); `*` marks a repeatable message.";

const CALL_USAGE: &str = "\
usage: sluice call NAME METHOD [ARGS]

Resolves NAME, calls METHOD and prints each reply as it comes: `value ...`,
`write ...`, `close`. An error from the service is printed to stderr and the
exit status is 1. A method that takes a request stream (an app's enqueue)
gets an empty one (`close` right after the call). ARGS is one JSON array of
the arguments, or each argument as a JSON value:

  sluice call math add '[1, 2]'
  sluice call echo echo '\"a\"' 2 '{\"k\": true}'";

const LIST_USAGE: &str = "\
usage: sluice list

Lists every service a sluice Locator knows (a sluice extension of the
Locator protocol): name, online or offline, version, endpoints, and who
registered it.";

const DUMP_USAGE: &str = "\
usage: sluice dump [--dialect v0|v1] [--role worker|engine] [FILE|-]

Decodes a captured byte stream (a file, or stdin with - or no FILE) into
one line per frame. With --role, frames are typed as worker-protocol
messages as seen by that side, and frames it would drop are flagged
DROPPED. Malformed bytes are flagged BAD STREAM (with the errno a channel
reports) and the exit status is 1; a stream cut inside its last frame is
flagged INCOMPLETE.";

/// The configuration `sluice serve` runs without --config.
const DEFAULT_CONFIG: &str = "\
# sluice serve: the embedded default configuration.
# listen HOST:PORT          where the Locator listens
# service NAME [OPTION=..]  a demo service: echo, math, kv, logging
listen 127.0.0.1:10053
service echo
service math
service kv
service logging verbosity=info
";

/// A failure: its message and exit status (2 for usage mistakes).
struct Fail(String, u8);

fn usage_err(msg: impl Into<String>) -> Fail {
    Fail(msg.into(), 2)
}

fn fail(e: Error) -> Fail {
    Fail(e.to_string(), 1)
}

struct Opts {
    locator: Option<String>,
    timeout: Duration,
    help: bool,
    rest: Vec<String>,
}

/// Takes the global options out of the argument list, wherever they are.
fn parse_global(args: Vec<String>) -> Result<Opts, Fail> {
    let mut o = Opts { locator: None, timeout: Duration::from_secs(10), help: false, rest: Vec::new() };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        // `--timeout=2` as well as `--timeout 2`.
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if matches!(f, "-l" | "--locator" | "-t" | "--timeout") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        match flag.as_str() {
            "-l" | "--locator" => o.locator = Some(inline.or_else(|| it.next()).ok_or_else(|| usage_err("--locator needs ENDPOINTS"))?),
            "-t" | "--timeout" => {
                let v = inline.or_else(|| it.next()).ok_or_else(|| usage_err("--timeout needs SECONDS"))?;
                o.timeout = timeout_secs(&v)?;
            }
            "-h" | "--help" => o.help = true,
            "--" => {
                o.rest.extend(it.by_ref());
            }
            _ => o.rest.push(a),
        }
    }
    Ok(o)
}

/// The longest `--timeout`: about 31 years.
const MAX_TIMEOUT_SECS: f64 = 1e9;

fn timeout_secs(v: &str) -> Result<Duration, Fail> {
    let secs: f64 = v.trim().parse().map_err(|_| usage_err(format!("bad --timeout '{v}': not a number of seconds")))?;
    if !(secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        return Err(usage_err(format!("bad --timeout '{v}': must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds")));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn locator(o: &Opts) -> Result<Locator, Fail> {
    let spec = o.locator.clone().or_else(|| std::env::var("SLUICE_LOCATOR").ok()).unwrap_or_else(|| format!("localhost:{LOCATOR_PORT}"));
    let endpoints = spec
        .split(',')
        .map(|s| Endpoint::parse(s.trim()).ok_or_else(|| usage_err(format!("bad locator endpoint '{s}' (expected HOST:PORT)"))))
        .collect::<Result<Vec<_>, _>>()?;
    let config = ClientConfig { connect_timeout: o.timeout, request_timeout: Some(o.timeout), ..ClientConfig::default() };
    Ok(Locator::new(endpoints).with_config(config))
}

fn main() -> ExitCode {
    let opts = match parse_global(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(f) => return finish(Err(f)),
    };
    let result = match opts.rest.first().map(String::as_str) {
        None if opts.help => {
            println!("{USAGE}");
            Ok(())
        }
        None => Err(usage_err("no command given (try 'sluice --help')")),
        Some(cmd) => {
            let args = &opts.rest[1..];
            let help = match cmd {
                "serve" => SERVE_USAGE,
                "resolve" => RESOLVE_USAGE,
                "call" => CALL_USAGE,
                "list" => LIST_USAGE,
                "dump" => DUMP_USAGE,
                "bench" => bench::USAGE,
                "help" => USAGE,
                other => return finish(Err(usage_err(format!("unknown command '{other}' (try 'sluice --help')")))),
            };
            if opts.help || cmd == "help" {
                println!("{help}");
                Ok(())
            } else {
                match cmd {
                    "serve" => serve(args),
                    "resolve" => resolve(&opts, args),
                    "call" => call(&opts, args),
                    "list" => list(&opts, args),
                    "bench" => bench::bench(args),
                    _ => dump_cmd(args),
                }
            }
        }
    };
    finish(result)
}

fn finish(r: Result<(), Fail>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg, code)) => {
            eprintln!("sluice: {}", printable(&msg));
            ExitCode::from(code)
        }
    }
}

fn resolve(o: &Opts, args: &[String]) -> Result<(), Fail> {
    let [name] = args else { return Err(usage_err("usage: sluice resolve NAME")) };
    let r = locator(o)?.resolve_blocking(name).map_err(fail)?;
    print!("{r}");
    Ok(())
}

fn call(o: &Opts, args: &[String]) -> Result<(), Fail> {
    let [name, method, rest @ ..] = args else { return Err(usage_err("usage: sluice call NAME METHOD [ARGS]")) };
    let values = json::args(rest).map_err(usage_err)?;
    let service = locator(o)?.service(name);
    let mut call = service.call_blocking(method, values).map_err(fail)?;
    // A method that takes a request stream (tx streaming, like an app's
    // enqueue) gets an empty one; elsewhere `close` is not allowed and
    // nothing is sent.
    let _ = call.send("close", &[]);
    loop {
        match call.recv_timeout_blocking(Some(o.timeout)) {
            None => return Ok(()),
            Some(Ok(r)) if r.args.is_empty() => println!("{}", printable(&r.name)),
            Some(Ok(r)) => println!("{} {}", printable(&r.name), printable(&json::show(&r.args))),
            Some(Err(Error::Service(e))) => return Err(Fail(format!("{name}.{method} failed: {e}"), 1)),
            Some(Err(e)) => return Err(Fail(format!("{name}.{method}: {e}"), 1)),
        }
    }
}

fn list(o: &Opts, args: &[String]) -> Result<(), Fail> {
    if !args.is_empty() {
        return Err(usage_err("usage: sluice list"));
    }
    let v = locator(o)?.call_blocking("services", vec![]).map_err(fail)?;
    let Some(Value::Map(entries)) = v.first() else { return Err(Fail("the locator's list is not a map".into(), 1)) };
    for (name, info) in entries {
        let name = name.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let (online, version, eps, origin) = match info.as_array() {
            Some([Value::Bool(on), v, eps, origin, ..]) => (
                *on,
                v.to_string(),
                eps.to_string(),
                origin.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            ),
            _ => (false, "?".into(), info.to_string(), String::new()),
        };
        let (name, eps, origin) = (printable(&name), printable(&eps), printable(&origin));
        println!("{name:<16} {:<8} v{version:<3} {eps}  ({origin})", if online { "online" } else { "offline" });
    }
    Ok(())
}

fn dump_cmd(args: &[String]) -> Result<(), Fail> {
    let mut dialect = Dialect::V1;
    let mut role = None;
    let mut path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dialect" => match it.next().map(String::as_str) {
                Some("v0") => dialect = Dialect::V0,
                Some("v1") => dialect = Dialect::V1,
                other => return Err(usage_err(format!("bad --dialect '{}' (v0 or v1)", other.unwrap_or("")))),
            },
            "--role" => match it.next().map(String::as_str) {
                Some("worker") => role = Some(Role::Worker),
                Some("engine") => role = Some(Role::Engine),
                other => return Err(usage_err(format!("bad --role '{}' (worker or engine)", other.unwrap_or("")))),
            },
            s if s.starts_with("--") => return Err(usage_err(format!("unknown option '{s}' for dump"))),
            _ if path.is_none() => path = Some(a.clone()),
            _ => return Err(usage_err("usage: sluice dump [--dialect v0|v1] [--role worker|engine] [FILE|-]")),
        }
    }
    let input: Box<dyn std::io::Read> = match path.as_deref() {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| Fail(format!("cannot open {p}: {e}"), 1))?),
    };
    let mut out = std::io::stdout().lock();
    match dump::run(input, dialect, role, &mut out) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Fail("the stream is malformed".into(), 1)),
        Err(e) => Err(Fail(format!("read error: {e}"), 1)),
    }
}

/// A parsed `sluice serve` configuration.
struct ServeConfig {
    listen: Endpoint,
    services: Vec<(String, Vec<(String, String)>)>,
}

fn parse_config(text: &str) -> Result<ServeConfig, String> {
    let mut c = ServeConfig { listen: Endpoint::Tcp("127.0.0.1".into(), LOCATOR_PORT), services: Vec::new() };
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["listen", ep] => c.listen = Endpoint::parse(ep).ok_or_else(|| format!("line {}: bad endpoint '{ep}'", n + 1))?,
            ["service", name, opts @ ..] => {
                if !["echo", "math", "kv", "logging"].contains(name) {
                    return Err(format!("line {}: unknown demo service '{name}' (echo, math, kv, logging)", n + 1));
                }
                let opts = opts
                    .iter()
                    .map(|o| {
                        o.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| format!("line {}: expected OPTION=VALUE, got '{o}'", n + 1))
                    })
                    .collect::<Result<_, _>>()?;
                c.services.push((name.to_string(), opts));
            }
            _ => return Err(format!("line {}: cannot read '{line}'", n + 1)),
        }
    }
    Ok(c)
}

fn serve(args: &[String]) -> Result<(), Fail> {
    let mut host = None;
    let mut port = None;
    let mut verbosity = None;
    let mut text = DEFAULT_CONFIG.to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or_else(|| usage_err(format!("{a} needs {what}")));
        match a.as_str() {
            "--host" => host = Some(value("HOST")?),
            "--port" => {
                let v = value("PORT")?;
                port = Some(v.parse::<u16>().map_err(|_| usage_err(format!("bad --port '{v}'")))?);
            }
            "--verbosity" => {
                let v = value("LEVEL")?;
                verbosity =
                    Some(Level::from_name(&v).ok_or_else(|| usage_err(format!("bad --verbosity '{v}' (debug, info, warning, error)")))?);
            }
            "--config" => {
                let p = value("FILE")?;
                text = std::fs::read_to_string(&p).map_err(|e| Fail(format!("cannot read {p}: {e}"), 1))?;
            }
            "--print-config" => {
                print!("{DEFAULT_CONFIG}");
                return Ok(());
            }
            other => return Err(usage_err(format!("unknown option '{other}' for serve"))),
        }
    }
    let mut config = parse_config(&text).map_err(|e| usage_err(format!("configuration: {e}")))?;
    if let Endpoint::Tcp(h, p) = &mut config.listen {
        if let Some(host) = host {
            *h = host;
        }
        if let Some(port) = port {
            *p = port;
        }
    }
    let registry = Registry::new();
    registry.on_change(|e| {
        let eps: Vec<String> = e.endpoints.iter().map(ToString::to_string).collect();
        match e.online {
            true => println!(
                "sluice: {} is online at {} ({}, {} methods)",
                printable(&e.name),
                printable(&eps.join(", ")),
                printable(&e.origin),
                e.graph.methods().len()
            ),
            false => println!("sluice: {} went offline ({})", printable(&e.name), printable(&e.origin)),
        }
    });
    let loc =
        LocatorServer::bind(&config.listen, registry.clone()).map_err(|e| Fail(format!("cannot listen on {}: {e}", config.listen), 1))?;
    println!("sluice: locator listening on {} (uuid {})", loc.local(), loc.uuid());
    let svc_host = match loc.local() {
        Endpoint::Tcp(h, _) => h.clone(),
        Endpoint::Unix(_) => "127.0.0.1".into(),
    };
    let mut hosted = Vec::new();
    for (name, opts) in &config.services {
        let def = match name.as_str() {
            "echo" => demo::echo(),
            "math" => demo::math(),
            "kv" => demo::kv(),
            _ => {
                let from_config = opts.iter().find(|(k, _)| k == "verbosity").map(|(_, v)| v.as_str()).unwrap_or("info");
                let level = match verbosity {
                    Some(l) => l,
                    None => {
                        Level::from_name(from_config).ok_or_else(|| usage_err(format!("configuration: bad verbosity '{from_config}'")))?
                    }
                };
                println!("sluice: logging verbosity {}", level.name());
                demo::logging(level, |r| println!("log: {r}"))
            }
        };
        let h = Hosted::bind(def, &Endpoint::Tcp(svc_host.clone(), 0)).map_err(|e| Fail(format!("cannot start {name}: {e}"), 1))?;
        registry.add(h.name(), h.endpoints(), h.def().version(), h.def().graph().clone());
        hosted.push(h);
    }
    println!("sluice: ready ({} services); Ctrl-C stops", hosted.len());
    loop {
        std::thread::park();
    }
}
