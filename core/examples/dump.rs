//! Decodes a captured Cocaine byte stream and prints its frames.
//!
//! ```text
//! cargo run --example dump -- [--dialect v0|v1] [--role worker|engine] FILE|-
//! ```
//!
//! `--role` says which side received the stream: with it, frames are typed
//! as worker-protocol messages (and dropped ones say why); without it they
//! are printed as generic frames.

use std::io::Read;
use std::process::ExitCode;

use sluice_core::wire::{value, Decoder, DecoderConfig, Dialect, Frame, Message, Role, Session, Value};

fn usage() -> ExitCode {
    eprintln!("usage: dump [--dialect v0|v1] [--role worker|engine] FILE|-");
    ExitCode::from(2)
}

struct Bytes<'a>(&'a [u8]);

impl std::fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        value::fmt_bytes(f, self.0)
    }
}

fn describe(m: &Message) -> String {
    match m {
        Message::Handshake { uuid } => format!("handshake {}", Bytes(uuid)),
        Message::Heartbeat => "heartbeat".into(),
        Message::Terminate { code, reason } => format!("terminate {code} {}", Bytes(reason)),
        Message::Invoke { event } => format!("invoke {}", Bytes(event)),
        Message::Chunk { data } => format!("chunk of {} bytes: {}", data.len(), Bytes(data)),
        Message::Error { category, code, message } => {
            let cat = category.map(|c| format!("[{c}, {code}]")).unwrap_or_else(|| code.to_string());
            format!("error {cat} {}", message.as_deref().map(|m| Bytes(m).to_string()).unwrap_or_default())
        }
        Message::Choke => "choke (v1: close)".into(),
    }
}

fn print(n: usize, f: &Frame, session: Option<&mut Session>) {
    let what = match session.map(|s| s.receive(f)) {
        Some(Ok(m)) => describe(&m),
        Some(Err(drop)) => format!("DROPPED ({drop})"),
        None => match f.args.to_values() {
            Ok(args) => Value::Array(args).to_string(),
            Err(e) => format!("args: {e}"),
        },
    };
    print!("#{n:<3} session {:<3} type {:<3} {what}", f.session, f.ty);
    if !f.headers.is_empty() {
        let hs: Vec<String> = f.headers.iter().map(|h| format!("{}={}", String::from_utf8_lossy(&h.name), Bytes(&h.value))).collect();
        print!("  [{}]", hs.join(", "));
    }
    println!();
}

fn main() -> ExitCode {
    let mut dialect = Dialect::V1;
    let mut role = None;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dialect" => match args.next().as_deref() {
                Some("v0") => dialect = Dialect::V0,
                Some("v1") => dialect = Dialect::V1,
                _ => return usage(),
            },
            "--role" => match args.next().as_deref() {
                Some("worker") => role = Some(Role::Worker),
                Some("engine") => role = Some(Role::Engine),
                _ => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ if path.is_none() => path = Some(a),
            _ => return usage(),
        }
    }
    let Some(path) = path else { return usage() };
    let mut input: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(&path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("dump: cannot open {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let mut dec = Decoder::new(DecoderConfig::new(dialect));
    let mut session = role.map(|r| Session::new(dialect, r));
    let (mut n, mut total) = (0, 0);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let got = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) => {
                eprintln!("dump: read error: {e}");
                return ExitCode::FAILURE;
            }
        };
        total += got;
        dec.feed(&buf[..got]);
        loop {
            match dec.decode() {
                Ok(Some(f)) => {
                    n += 1;
                    print(n, &f, session.as_mut());
                }
                Ok(None) => break,
                Err(e) => {
                    println!("BAD STREAM after {n} frames: {e} (errno {})", e.errno());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    print!("{n} frames in {total} bytes");
    if dec.partial() > 0 {
        print!("; end of stream inside a frame: {} bytes discarded", dec.partial());
    }
    println!();
    ExitCode::SUCCESS
}
