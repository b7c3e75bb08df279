//! JSON arguments in, readable values out.

use serde_json::Value as Json;
use sluice_core::wire::Value;

/// A JSON value as msgpack: strings as str, integers as the smallest
/// integer, other numbers as float 64, objects as maps with string keys.
pub fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::Uint(u),
            (None, Some(i)) => Value::Int(i),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (Value::from(k.as_str()), to_value(v))).collect()),
    }
}

/// The call arguments from the command line: one JSON array (the argument
/// list), or each argument as a JSON value.
pub fn args(tokens: &[String]) -> Result<Vec<Value>, String> {
    let parse = |t: &String| serde_json::from_str::<Json>(t).map_err(|e| format!("bad JSON argument '{t}': {e}"));
    if let [one] = tokens {
        if let Json::Array(items) = parse(one)? {
            return Ok(items.iter().map(to_value).collect());
        }
    }
    tokens.iter().map(|t| parse(t).map(|j| to_value(&j))).collect()
}

/// The arguments of a reply, readably (`a, b, c`).
pub fn show(args: &[Value]) -> String {
    args.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
