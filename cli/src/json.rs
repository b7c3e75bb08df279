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
    let parse = |t: &String| {
        let j = serde_json::from_str::<Json>(t).map_err(|e| format!("bad JSON argument '{t}': {e}"))?;
        match too_wide(t) {
            Some(n) => Err(format!(
                "bad JSON argument '{t}': the integer {n} does not fit in 64 bits (msgpack's widest); write it as a string, or as a float (1e19)"
            )),
            None => Ok(j),
        }
    };
    if let [one] = tokens {
        if let Json::Array(items) = parse(one)? {
            return Ok(items.iter().map(to_value).collect());
        }
    }
    tokens.iter().map(|t| parse(t).map(|j| to_value(&j))).collect()
}

/// The first integer literal of the JSON text `t` (outside strings) that
/// neither i64 nor u64 holds: serde_json would read it as a float and lose
/// its low digits without a word.
fn too_wide(t: &str) -> Option<&str> {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
                let n = &t[start..i];
                let integer = !n.contains(['.', 'e', 'E']);
                if integer && n.parse::<i64>().is_err() && n.parse::<u64>().is_err() {
                    return Some(n);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The arguments of a reply, readably (`a, b, c`).
pub fn show(args: &[Value]) -> String {
    args.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_wider_than_64_bits_are_refused_not_rounded() {
        let one = |t: &str| args(&[t.to_string()]);
        assert_eq!(one("18446744073709551615").unwrap(), vec![Value::Uint(u64::MAX)]);
        assert_eq!(one("-9223372036854775808").unwrap(), vec![Value::Int(i64::MIN)]);
        let e = one("[1, 18446744073709551616]").unwrap_err();
        assert!(e.contains("the integer 18446744073709551616 does not fit in 64 bits"), "{e}");
        assert!(one("-9223372036854775809").unwrap_err().contains("-9223372036854775809"));
        assert_eq!(one("1e19").unwrap(), vec![Value::F64(1e19)]);
        assert_eq!(one(r#"{"k": "123456789012345678901234567890"}"#).unwrap().len(), 1, "digits in a string are text");
        assert_eq!(one(r#"["a\"99999999999999999999"]"#).unwrap().len(), 1, "an escaped quote does not end the string");
    }
}
