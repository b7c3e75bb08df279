//! `sluice dump`: decode a byte stream of either dialect into readable frames.

use std::io::Read;

use sluice_core::wire::{value, Decoder, DecoderConfig, Dialect, Frame, Message, Role, Session, Value};

struct Shown<'a>(&'a [u8]);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        value::fmt_bytes(f, self.0)
    }
}

/// One line for a typed worker-protocol message.
pub fn describe(m: &Message) -> String {
    match m {
        Message::Handshake { uuid } => format!("handshake {}", Shown(uuid)),
        Message::Heartbeat => "heartbeat".into(),
        Message::Terminate { code, reason } => format!("terminate {code} {}", Shown(reason)),
        Message::Invoke { event } => format!("invoke {}", Shown(event)),
        Message::Chunk { data } => format!("chunk of {} bytes: {}", data.len(), Shown(data)),
        Message::Error { category, code, message } => {
            let cat = category.map(|c| format!("[{c}, {code}]")).unwrap_or_else(|| code.to_string());
            format!("error {cat} {}", message.as_deref().map(|m| Shown(m).to_string()).unwrap_or_default())
        }
        Message::Choke => "choke (v1: close)".into(),
    }
}

/// One line for a frame, typed when a session is given.
pub fn line(n: usize, f: &Frame, session: Option<&mut Session>) -> String {
    let what = match session.map(|s| s.receive(f)) {
        Some(Ok(m)) => describe(&m),
        Some(Err(drop)) => format!("DROPPED ({drop})"),
        None => match f.args.to_values() {
            Ok(args) => Value::Array(args).to_string(),
            Err(e) => format!("BAD ARGS ({e})"),
        },
    };
    let mut s = format!("#{n:<3} session {:<3} type {:<3} {what}", f.session, f.ty);
    if !f.headers.is_empty() {
        let hs: Vec<String> = f.headers.iter().map(|h| format!("{}={}", String::from_utf8_lossy(&h.name), Shown(&h.value))).collect();
        s.push_str(&format!("  [{}]", hs.join(", ")));
    }
    s
}

/// Decodes `input` and prints every frame; returns whether the stream was
/// well formed. A stream cut inside its last frame (a capture stopped
/// midway) is flagged INCOMPLETE but is not malformed.
pub fn run(mut input: impl Read, dialect: Dialect, role: Option<Role>, out: &mut impl std::io::Write) -> std::io::Result<bool> {
    let mut dec = Decoder::new(DecoderConfig::new(dialect));
    let mut session = role.map(|r| Session::new(dialect, r));
    let (mut n, mut total) = (0, 0);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let got = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += got;
        dec.feed(&buf[..got]);
        loop {
            match dec.decode() {
                Ok(Some(f)) => {
                    n += 1;
                    writeln!(out, "{}", line(n, &f, session.as_mut()))?;
                }
                Ok(None) => break,
                Err(e) => {
                    writeln!(out, "BAD STREAM after {n} frames ({total} bytes read): {e} (errno {})", e.errno())?;
                    return Ok(false);
                }
            }
        }
    }
    write!(out, "{n} frames in {total} bytes")?;
    let partial = dec.partial();
    if partial > 0 {
        write!(out, "; INCOMPLETE: the stream ends inside a frame ({partial} bytes left over)")?;
    }
    writeln!(out)?;
    Ok(true)
}
