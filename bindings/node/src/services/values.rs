//! msgpack values to JavaScript and back.

use super::*;

pub(super) fn set(env: sys::napi_env, obj: sys::napi_value, name: &str, v: sys::napi_value) {
    let key = js::string(env, name);
    unsafe { sys::napi_set_property(env, obj, key, v) };
}

pub(super) fn object(env: sys::napi_env) -> sys::napi_value {
    let mut o = ptr::null_mut();
    unsafe { sys::napi_create_object(env, &mut o) };
    o
}

const SAFE: f64 = 9_007_199_254_740_991.0;

/// A msgpack value as JavaScript: nil → null, integers → number (BigInt
/// beyond 2^53), str → string (a Buffer if not UTF-8), bin → Buffer,
/// arrays → arrays, maps → objects (a `Map` if a key is not a string),
/// ext → `{ type, data }`.
pub(super) fn to_js(env: sys::napi_env, v: &Value) -> sys::napi_value {
    let mut out = ptr::null_mut();
    let buffer = |b: &[u8]| unsafe { crate::port::buffer_copy(env, b) };
    match v {
        Value::Nil => return js::null(env),
        Value::Bool(b) => _ = unsafe { sys::napi_get_boolean(env, *b, &mut out) },
        Value::Uint(u) if (*u as f64) <= SAFE => return js::number(env, *u as f64),
        Value::Uint(u) => _ = unsafe { sys::napi_create_bigint_uint64(env, *u, &mut out) },
        Value::Int(i) if (*i as f64) >= -SAFE => return js::number(env, *i as f64),
        Value::Int(i) => _ = unsafe { sys::napi_create_bigint_int64(env, *i, &mut out) },
        Value::F32(f) => return js::number(env, *f as f64),
        Value::F64(f) => return js::number(env, *f),
        Value::Str(b) => return std::str::from_utf8(b).map_or_else(|_| buffer(b), |s| js::string(env, s)),
        Value::Bin(b) => return buffer(b),
        Value::Array(items) => return js::array(env, items.iter().map(|x| to_js(env, x))),
        Value::Map(pairs) if pairs.iter().all(|(k, _)| matches!(k, Value::Str(b) if std::str::from_utf8(b).is_ok())) => {
            out = object(env);
            for (k, x) in pairs {
                unsafe { sys::napi_set_property(env, out, to_js(env, k), to_js(env, x)) };
            }
        }
        Value::Map(pairs) => {
            let mut global = ptr::null_mut();
            unsafe { sys::napi_get_global(env, &mut global) };
            let ctor = js::get_prop(env, global, "Map");
            unsafe { sys::napi_new_instance(env, ctor, 0, ptr::null(), &mut out) };
            let setter = js::get_prop(env, out, "set");
            for (k, x) in pairs {
                call_fn(env, setter, out, &[to_js(env, k), to_js(env, x)]);
            }
        }
        Value::Ext(t, b) => {
            out = object(env);
            set(env, out, "type", js::number(env, *t as f64));
            set(env, out, "data", buffer(b));
        }
    };
    out
}

/// A JavaScript value as msgpack: null/undefined → nil, integers → int,
/// other numbers → float, BigInt → int, strings → str, Buffer/Uint8Array →
/// bin, arrays → arrays, `Map` and plain objects → maps.
pub(super) fn from_js(env: sys::napi_env, v: sys::napi_value, depth: usize) -> std::result::Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("a value nested too deeply (or cyclic)".into());
    }
    match js::type_of(env, v) {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(Value::Nil),
        sys::ValueType::napi_boolean => {
            let mut b = false;
            unsafe { sys::napi_get_value_bool(env, v, &mut b) };
            Ok(Value::Bool(b))
        }
        sys::ValueType::napi_number => {
            let n = js::get_number(env, v).unwrap_or(0.0);
            Ok(if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) {
                Value::Uint(n as u64)
            } else if n.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&n) {
                Value::Int(n as i64)
            } else {
                Value::F64(n)
            })
        }
        sys::ValueType::napi_bigint => {
            let mut u = 0u64;
            let mut lossless = false;
            unsafe { sys::napi_get_value_bigint_uint64(env, v, &mut u, &mut lossless) };
            if lossless {
                return Ok(Value::Uint(u));
            }
            let mut i = 0i64;
            unsafe { sys::napi_get_value_bigint_int64(env, v, &mut i, &mut lossless) };
            if lossless {
                return Ok(Value::Int(i));
            }
            Err("a BigInt outside the 64-bit range".into())
        }
        sys::ValueType::napi_string => Ok(Value::Str(js::get_string(env, v).unwrap_or_default().into_bytes().into())),
        sys::ValueType::napi_object => {
            if let Some(b) = js::get_bytes(env, v) {
                return Ok(Value::Bin(bytes::Bytes::copy_from_slice(b)));
            }
            if js::is_array(env, v) {
                return js::elements(env, v)
                    .into_iter()
                    .map(|x| from_js(env, x, depth + 1))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(Value::Array);
            }
            let mut global = ptr::null_mut();
            unsafe { sys::napi_get_global(env, &mut global) };
            let map_ctor = js::get_prop(env, global, "Map");
            let mut is_map = false;
            unsafe { sys::napi_instanceof(env, v, map_ctor, &mut is_map) };
            if is_map {
                let from = js::get_prop(env, js::get_prop(env, global, "Array"), "from");
                let pairs = call_fn(env, from, js::undefined(env), &[v]);
                let mut out = Vec::new();
                for pair in js::elements(env, pairs) {
                    let kv = js::elements(env, pair);
                    out.push((from_js(env, kv[0], depth + 1)?, from_js(env, kv[1], depth + 1)?));
                }
                return Ok(Value::Map(out));
            }
            let mut keys = ptr::null_mut();
            unsafe { sys::napi_get_property_names(env, v, &mut keys) };
            let mut out = Vec::new();
            for k in js::elements(env, keys) {
                let mut x = ptr::null_mut();
                unsafe { sys::napi_get_property(env, v, k, &mut x) };
                if js::type_of(env, x) == sys::ValueType::napi_function {
                    continue;
                }
                let key = js::get_string(env, k).unwrap_or_default();
                out.push((Value::Str(key.into_bytes().into()), from_js(env, x, depth + 1)?));
            }
            Ok(Value::Map(out))
        }
        _ => Err("functions and symbols have no msgpack form".into()),
    }
}

/// The elements of an array argument (or nothing for undefined).
pub(super) fn args_of(env: sys::napi_env, v: Option<&Unknown<'_>>) -> Result<Vec<Value>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if js::is_nullish(env, v.raw()) {
        return Ok(Vec::new());
    }
    if !js::is_array(env, v.raw()) {
        return Err(js::type_error(env, "the arguments must be an array"));
    }
    js::elements(env, v.raw())
        .into_iter()
        .map(|x| from_js(env, x, 1))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| js::type_error(env, &m))
}

pub(super) fn args_js(env: sys::napi_env, args: &[Value]) -> sys::napi_value {
    js::array(env, args.iter().map(|x| to_js(env, x)))
}

pub(super) fn reply_js(env: sys::napi_env, r: &Reply) -> sys::napi_value {
    let o = object(env);
    set(env, o, "name", js::string(env, &r.name));
    set(env, o, "args", args_js(env, &r.args));
    o
}
