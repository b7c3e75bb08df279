//! The built-in demo services of `sluice serve`: `echo` (streaming),
//! `math` and `kv` (primitive) and `logging` (the Logger protocol,
//! docs/PROTOCOL.md §7.4).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::graph::Node;
use super::{Inbound, Level, ServiceDef, ServiceError, DISPATCH_CATEGORY, INVALID_ARGUMENT};
use crate::wire::Value;

/// The category of the demo services' own errors (the frameworks'
/// application category).
pub const APP_CATEGORY: i64 = 42;

fn invalid(msg: &str) -> ServiceError {
    ServiceError::new(DISPATCH_CATEGORY, INVALID_ARGUMENT, msg)
}

/// `echo`, version 1:
/// * `echo(args...)` — streaming: one `write(arg)` per argument, then `close`;
/// * `ping(args...)` — primitive: `value(args...)`;
/// * `fail(code, message)` — answers `error([42, code], message)`;
/// * `relay()` — tx and rx streaming: each `write` of the caller comes
///   back as a `write`, its `close` as a `close`.
pub fn echo() -> ServiceDef {
    ServiceDef::new("echo", 1)
        .streaming("echo", |req, mut out| {
            for a in req.args {
                if out.write(vec![a]).is_err() {
                    return;
                }
            }
            let _ = out.close();
        })
        .primitive("ping", Ok)
        .primitive("fail", |args| {
            let code = args.first().and_then(Value::as_i64).unwrap_or(1);
            let msg = args
                .get(1)
                .and_then(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| "failed on request".into());
            Err(ServiceError::new(APP_CATEGORY, code, msg))
        })
        .method("relay", Node::streaming(), Node::streaming(), |_, out| {
            let mut out = Some(out);
            Some(Box::new(move |ev: Inbound| {
                let Some(o) = out.as_mut() else { return };
                let _ = match ev {
                    Inbound::Message(m) if m.name == "write" => o.write(m.args),
                    Inbound::Message(m) if m.name == "error" => {
                        out = None; // dropping the responder answers with an error
                        Ok(())
                    }
                    Inbound::Message(_) => o.close(),
                    Inbound::Gone(_) => {
                        out = None;
                        Ok(())
                    }
                };
            }))
        })
}

enum Num {
    I(i128),
    F(f64),
}

fn num(v: &Value) -> Result<Num, ServiceError> {
    match v {
        Value::Uint(u) => Ok(Num::I(*u as i128)),
        Value::Int(i) => Ok(Num::I(*i as i128)),
        Value::F32(f) => Ok(Num::F(*f as f64)),
        Value::F64(f) => Ok(Num::F(*f)),
        other => Err(invalid(&format!("{other} is not a number"))),
    }
}

fn to_value(n: Num) -> Value {
    match n {
        Num::I(i) if i >= 0 && i <= u64::MAX as i128 => Value::Uint(i as u64),
        Num::I(i) if i >= i64::MIN as i128 && i < 0 => Value::Int(i as i64),
        Num::I(i) => Value::F64(i as f64),
        Num::F(f) => Value::F64(f),
    }
}

fn fold(args: Vec<Value>, op: &str) -> Result<Vec<Value>, ServiceError> {
    if args.len() < 2 {
        return Err(invalid(&format!("{op} needs at least two numbers")));
    }
    let mut it = args.iter();
    let mut acc = num(it.next().expect("two arguments"))?;
    for v in it {
        let x = num(v)?;
        acc = match (acc, x) {
            (Num::I(a), Num::I(b)) => match op {
                "add" => Num::I(a + b),
                "sub" => Num::I(a - b),
                "mul" => a.checked_mul(b).map(Num::I).unwrap_or(Num::F(a as f64 * b as f64)),
                _ if b == 0 => return Err(ServiceError::new(APP_CATEGORY, 1, "division by zero")),
                _ if a % b == 0 => Num::I(a / b),
                _ => Num::F(a as f64 / b as f64),
            },
            (a, b) => {
                let f = |n: Num| match n {
                    Num::I(i) => i as f64,
                    Num::F(f) => f,
                };
                let (a, b) = (f(a), f(b));
                match op {
                    "add" => Num::F(a + b),
                    "sub" => Num::F(a - b),
                    "mul" => Num::F(a * b),
                    _ if b == 0.0 => return Err(ServiceError::new(APP_CATEGORY, 1, "division by zero")),
                    _ => Num::F(a / b),
                }
            }
        };
    }
    Ok(vec![to_value(acc)])
}

/// `math`, version 1: primitive `add`, `sub`, `mul`, `div` of two or more
/// numbers; `div` by zero answers `error([42, 1], "division by zero")`.
pub fn math() -> ServiceDef {
    ServiceDef::new("math", 1)
        .primitive("add", |a| fold(a, "add"))
        .primitive("sub", |a| fold(a, "sub"))
        .primitive("mul", |a| fold(a, "mul"))
        .primitive("div", |a| fold(a, "div"))
}

/// Keys at most in the demo store (a client cannot grow it without bound).
pub const KV_MAX_KEYS: usize = 10_000;

/// `kv`, version 1, an in-memory store (up to [`KV_MAX_KEYS`] keys):
/// `get(key)` → `value(v)` or `error([42, 2], "no such key")`;
/// `set(key, v)` → `value()`; `del(key)` → `value(existed)`; `keys()` →
/// `value([key, ...])`.
pub fn kv() -> ServiceDef {
    let store: Arc<Mutex<BTreeMap<Vec<u8>, Value>>> = Arc::default();
    let key = |args: &[Value]| args.first().and_then(Value::as_bytes).map(|b| b.to_vec()).ok_or_else(|| invalid("expected a string key"));
    let (s1, s2, s3, s4) = (store.clone(), store.clone(), store.clone(), store);
    ServiceDef::new("kv", 1)
        .primitive("get", move |a| {
            let k = key(&a)?;
            let v = s1.lock().unwrap_or_else(|e| e.into_inner()).get(&k).cloned();
            v.map(|v| vec![v]).ok_or_else(|| ServiceError::new(APP_CATEGORY, 2, "no such key"))
        })
        .primitive("set", move |a| {
            let k = key(&a)?;
            // Copied out of the receive buffer, which a stored value would
            // otherwise keep alive whole.
            let v = a.get(1).map(Value::detached).ok_or_else(|| invalid("set(key, value)"))?;
            let mut m = s2.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() >= KV_MAX_KEYS && !m.contains_key(&k) {
                return Err(ServiceError::new(APP_CATEGORY, 3, "the store is full"));
            }
            m.insert(k, v);
            Ok(vec![])
        })
        .primitive("del", move |a| {
            let k = key(&a)?;
            Ok(vec![Value::Bool(s3.lock().unwrap_or_else(|e| e.into_inner()).remove(&k).is_some())])
        })
        .primitive("keys", move |_| {
            let m = s4.lock().unwrap_or_else(|e| e.into_inner());
            Ok(vec![Value::Array(m.keys().map(|k| Value::Str(k.clone().into())).collect())])
        })
}

/// A message the demo `logging` service received.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Its priority.
    pub level: Level,
    /// Its source (`app/<name>`).
    pub source: String,
    /// The message.
    pub message: String,
    /// Its attributes as `name=value` pairs.
    pub attributes: Vec<(String, Value)>,
}

impl std::fmt::Display for LogRecord {
    /// `[info] app/x: message {name=value, ...}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Remote text: no control characters reach a terminal or a log.
        let p = crate::host::printable;
        write!(f, "[{}] {}: {}", self.level.name(), p(&self.source), p(&self.message))?;
        if !self.attributes.is_empty() {
            let a: Vec<String> = self.attributes.iter().map(|(k, v)| format!("{}={v}", p(k))).collect();
            write!(f, " {{{}}}", a.join(", "))?;
        }
        Ok(())
    }
}

fn lossy(v: Option<&Value>) -> String {
    v.and_then(Value::as_bytes).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

/// `logging`, version 2 (docs/PROTOCOL.md §7.4): `emit(priority, source,
/// message, [attributes])` (no reply) hands each message at or above the
/// verbosity to `sink`; `verbosity()` → `value(priority)`;
/// `set_verbosity(priority)` → `value()`.
pub fn logging(verbosity: Level, sink: impl Fn(LogRecord) + Send + Sync + 'static) -> ServiceDef {
    let level = Arc::new(AtomicI64::new(verbosity as i64));
    let (l1, l2, l3) = (level.clone(), level.clone(), level);
    ServiceDef::new("logging", 2)
        .mute("emit", move |a| {
            let p = a.first().and_then(Value::as_i64).unwrap_or(0);
            if p < l1.load(Ordering::Relaxed) {
                return;
            }
            let attributes = a
                .get(3)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|kv| match kv.as_array() {
                            Some([k, v, ..]) => Some((lossy(Some(k)), v.clone())),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            sink(LogRecord { level: Level::from_i64(p), source: lossy(a.get(1)), message: lossy(a.get(2)), attributes });
        })
        .primitive("verbosity", move |_| Ok(vec![Value::from(l2.load(Ordering::Relaxed))]))
        .method("set_verbosity", Node::Terminal, Node::primitive(), move |req, mut out| {
            let _ = match req.args.first().and_then(Value::as_i64) {
                Some(p) => {
                    l3.store(p, Ordering::Relaxed);
                    out.value(vec![])
                }
                None => out.error(&invalid("set_verbosity(priority)")),
            };
            None
        })
}
