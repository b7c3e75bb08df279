//! The protocol test vectors (`tests/vectors.json`, docs/PROTOCOL.md §11),
//! byte for byte: valid vectors decode to exactly the described frames and
//! typed messages, whatever the split of the input, and re-encode to exactly
//! the given bytes; invalid vectors give the documented outcome.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use sluice_core::wire::frame::value_len;
use sluice_core::wire::{
    Args, DecodeError, Decoder, DecoderConfig, Dialect, Encoder, Frame, Header, HeaderEntry, HeaderName, Kind, Message, Profile, Role,
    Session, Value,
};

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn vectors() -> Vec<Json> {
    let text = std::fs::read_to_string(here().join("vectors.json")).unwrap();
    serde_json::from_str::<Json>(&text).unwrap().as_array().unwrap().clone()
}

/// The copy in this repository must match `../shared/protocol` when that
/// folder exists beside the checkout.
#[test]
fn vectors_match_the_shared_copy() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/protocol");
    if !shared.exists() {
        eprintln!("{} not found: nothing to compare with", shared.display());
        return;
    }
    for f in ["vectors.json", "make_vectors.py"] {
        let ours = std::fs::read(here().join(f)).unwrap();
        let theirs = std::fs::read(shared.join(f)).unwrap();
        assert!(ours == theirs, "core/tests/{f} differs from {}: copy it again", shared.join(f).display());
    }
}

/// The specification the code cites (`docs/PROTOCOL.md`) must match
/// `../shared/protocol/PROTOCOL.md` when that folder exists beside the
/// checkout.
#[test]
fn protocol_md_matches_the_shared_copy() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared/protocol");
    if !shared.exists() {
        eprintln!("{} not found: nothing to compare with", shared.display());
        return;
    }
    let ours = std::fs::read(root.join("docs/PROTOCOL.md")).unwrap();
    let theirs = std::fs::read(shared.join("PROTOCOL.md")).unwrap();
    assert!(ours == theirs, "docs/PROTOCOL.md differs from {}: copy it again", shared.join("PROTOCOL.md").display());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn input(v: &Json) -> Vec<u8> {
    if let Some(h) = v["hex"].as_str() {
        return unhex(h);
    }
    let g = &v["generator"];
    let mut out = unhex(g["frame_prefix_hex"].as_str().unwrap());
    let byte = unhex(g["payload_byte_hex"].as_str().unwrap())[0];
    out.extend(vec![byte; g["payload_length"].as_u64().unwrap() as usize]);
    out.extend(unhex(g["frame_suffix_hex"].as_str().unwrap()));
    assert_eq!(out.len() as u64, g["total_length"].as_u64().unwrap());
    let digest: String = Sha256::digest(&out).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, g["sha256"].as_str().unwrap(), "{}", v["name"]);
    out
}

fn dialect(v: &Json) -> Dialect {
    match v["dialect"].as_str().unwrap() {
        "v0" => Dialect::V0,
        _ => Dialect::V1,
    }
}

fn profile(v: &Json) -> Profile {
    match v["encoding_profile"].as_str() {
        Some("modern") => Profile::Modern,
        _ => Profile::Compat,
    }
}

/// The JSON value notation of §11 as a msgpack value.
fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::Uint(u),
            (None, Some(i)) => Value::Int(i),
            _ => panic!("bare float {n}"),
        },
        Json::String(s) => Value::Str(Bytes::copy_from_slice(s.as_bytes())),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => {
            if let Some(h) = o.get("str_hex") {
                Value::Str(unhex(h.as_str().unwrap()).into())
            } else if let Some(h) = o.get("hex") {
                Value::Bin(unhex(h.as_str().unwrap()).into())
            } else if let Some(m) = o.get("map") {
                let pairs = m.as_array().unwrap();
                Value::Map(pairs.iter().map(|p| (to_value(&p[0]), to_value(&p[1]))).collect())
            } else if let Some(f) = o.get("float") {
                Value::F64(f.as_f64().unwrap())
            } else if let Some(g) = o.get("generated_payload") {
                let byte = unhex(g["byte_hex"].as_str().unwrap())[0];
                let data = Bytes::from(vec![byte; g["length"].as_u64().unwrap() as usize]);
                match g["family"].as_str().unwrap() {
                    "bin" => Value::Bin(data),
                    _ => Value::Str(data),
                }
            } else {
                panic!("unknown value notation {j}")
            }
        }
    }
}

/// A resolved header `[name, {"hex": ...}]`.
fn to_header(j: &Json) -> Header {
    Header::new(Bytes::copy_from_slice(j[0].as_str().unwrap().as_bytes()), unhex(j[1]["hex"].as_str().unwrap()))
}

fn headers_of(j: &Json) -> Vec<Header> {
    j.as_array().map(|a| a.iter().map(to_header).collect()).unwrap_or_default()
}

fn to_entry(j: &Json) -> HeaderEntry {
    match to_value(j) {
        Value::Uint(i) => HeaderEntry::Indexed(i),
        Value::Array(e) => {
            let [Value::Bool(store), name, value] = &e[..] else { panic!("bad entry {j}") };
            let name = match name {
                Value::Uint(i) => HeaderName::Indexed(*i),
                n => HeaderName::Literal(n.as_bytes().unwrap().clone()),
            };
            HeaderEntry::Literal { store: *store, name, value: value.as_bytes().unwrap().clone() }
        }
        _ => panic!("bad entry {j}"),
    }
}

/// The frames a vector describes.
fn expected_frames(v: &Json) -> Vec<Json> {
    let d = &v["decoded"];
    match d.get("messages") {
        Some(m) => m.as_array().unwrap().clone(),
        None => vec![d.clone()],
    }
}

fn tail_len(v: &Json) -> usize {
    v["decoded"].get("incomplete_tail_hex").and_then(|t| t.as_str()).map_or(0, |t| t.len() / 2)
}

/// Decodes `bytes` fed in pieces of `step` bytes (0 = all at once).
fn decode(d: Dialect, bytes: &[u8], step: usize, lenient: bool) -> (Vec<Frame>, Option<DecodeError>, Decoder) {
    let mut cfg = DecoderConfig::new(d);
    cfg.lenient = lenient;
    let mut dec = Decoder::new(cfg);
    let mut frames = Vec::new();
    let pieces: Vec<&[u8]> = if step == 0 { vec![bytes] } else { bytes.chunks(step).collect() };
    for p in pieces {
        dec.feed(p);
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e), dec),
            }
        }
    }
    (frames, None, dec)
}

/// The bytes of each complete frame in `bytes`.
fn split_frames(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    for _ in 0..n {
        let len = value_len(&bytes[pos..]).unwrap();
        out.push(&bytes[pos..pos + len]);
        pos += len;
    }
    out
}

fn ids(d: Dialect, e: &Json) -> (u64, u64) {
    match d {
        Dialect::V0 => (e["session"].as_u64().unwrap(), e["type_id"].as_u64().unwrap()),
        Dialect::V1 => (e["channel"].as_u64().unwrap(), e["type_id"].as_u64().unwrap()),
    }
}

fn check_frame(name: &str, d: Dialect, f: &Frame, e: &Json) {
    assert_eq!((f.session, f.ty), ids(d, e), "{name}: ids");
    let args: Vec<Value> = e["args"].as_array().unwrap().iter().map(to_value).collect();
    assert_eq!(f.args.to_values().unwrap(), args, "{name}: args");
    assert_eq!(f.headers, headers_of(&e["headers"]), "{name}: headers");
}

/// Vectors whose bytes are not what our encoder writes for their profile,
/// and why. Each still decodes exactly; its re-encoding is checked to decode
/// to the same frames.
const NOT_OUR_ENCODING: &[(&str, &str)] = &[
    ("v0_type_id_noncanonical_uint8", "type id 1 written as cc 01; we write the smallest form"),
    ("v1_channel_id_as_int8", "channel id written as d0 02; we write the smallest form"),
    ("v1_five_elements", "a 5th element we ignore and never write"),
    ("v1_heartbeat_reply_runtime_headers", "runtime header indexes as fixed-width cf uint64"),
    ("v1_invoke_runtime_headers", "runtime header indexes as fixed-width cf uint64"),
    ("v1_locator_resolve_response_storage", "runtime header indexes as fixed-width cf uint64"),
    ("v1_headers_rust_style_bin", "header names in the bin family; we write names as text"),
];

fn reencode(d: Dialect, p: Profile, f: &Frame, e: &Json) -> Vec<u8> {
    let mut enc = Encoder::new(d, p);
    let args = Args::from_raw(Value::Array(f.args.to_values().unwrap()).to_bytes(p)).unwrap();
    match e.get("headers_raw") {
        Some(raw) if !raw.is_null() => {
            let entries: Vec<HeaderEntry> = raw.as_array().unwrap().iter().map(to_entry).collect();
            enc.frame_with_entries(f.session, f.ty, &args, &entries);
        }
        _ => enc.frame(f.session, f.ty, &args, &[]),
    }
    let n = bytes::Buf::remaining(enc.out());
    bytes::Buf::copy_to_bytes(enc.out(), n).to_vec()
}

#[test]
fn valid_vectors_decode_exactly_at_every_split() {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v["valid"] == true) {
        let name = v["name"].as_str().unwrap();
        let d = dialect(v);
        let bytes = input(v);
        let expected = expected_frames(v);
        let steps: &[usize] = if bytes.len() > 4096 { &[0, 65536, 4093] } else { &[0, 1, 2, 3, 7] };
        for &step in steps {
            let (frames, err, dec) = decode(d, &bytes, step, false);
            assert!(err.is_none(), "{name} (split {step}): {err:?}");
            assert_eq!(frames.len(), expected.len(), "{name} (split {step}): frame count");
            for (f, e) in frames.iter().zip(&expected) {
                check_frame(name, d, f, e);
            }
            assert_eq!(dec.partial(), tail_len(v), "{name} (split {step}): unfinished bytes kept");
            // The header table after the last frame.
            if let Some(last) = expected.last().and_then(|e| e.get("dynamic_table_after")) {
                let table: Vec<Header> = dec.header_table().dynamic_entries().cloned().collect();
                assert_eq!(table, headers_of(last), "{name}: dynamic table");
            }
        }
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} valid vectors");
}

#[test]
fn valid_vectors_reencode_byte_exactly() {
    for v in vectors().iter().filter(|v| v["valid"] == true) {
        let name = v["name"].as_str().unwrap();
        let (d, p) = (dialect(v), profile(v));
        let bytes = input(v);
        let (frames, _, _) = decode(d, &bytes, 0, false);
        let expected = expected_frames(v);
        let originals = split_frames(&bytes, frames.len());
        for ((f, e), orig) in frames.iter().zip(&expected).zip(originals) {
            let ours = reencode(d, p, f, e);
            if let Some((_, why)) = NOT_OUR_ENCODING.iter().find(|(n, _)| *n == name) {
                assert_ne!(ours, orig, "{name} is listed as not our encoding ({why}) but re-encodes exactly");
                let (again, err, _) = decode(d, &ours, 0, false);
                assert!(err.is_none() && again.len() == 1, "{name}");
                check_frame(name, d, &again[0], e);
            } else {
                assert_eq!(hex(&ours), hex(orig), "{name}: re-encoding");
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn role(v: &Json) -> Option<Role> {
    match v["direction"].as_str()? {
        "engine->worker" => Some(Role::Worker),
        "worker->engine" => Some(Role::Engine),
        _ => None,
    }
}

/// A session state ready for the frames of a vector: an engine has had the
/// handshake (unless the vector brings one) and has invoked every channel
/// the worker answers on.
fn session_for(v: &Json, d: Dialect, role: Role, frames: &[Frame]) -> Session {
    let mut s = Session::new(d, role);
    if role == Role::Engine && d == Dialect::V1 {
        if expected_frames(v)[0]["type"] != "handshake" {
            let (hs, _, _) = decode(d, b"\x93\x01\x00\x91\xa1x", 0, false);
            s.receive(&hs[0]).unwrap();
        }
        for f in frames.iter().filter(|f| f.session > 1) {
            s.sent(f.session, Kind::Invoke);
        }
    }
    s
}

/// The typed message for a frame, re-encoded with our typed encoder.
fn encode_message(d: Dialect, p: Profile, session: u64, m: &Message) -> Vec<u8> {
    let mut enc = Encoder::new(d, p);
    enc.message(session, m, &[]);
    let n = bytes::Buf::remaining(enc.out());
    bytes::Buf::copy_to_bytes(enc.out(), n).to_vec()
}

#[test]
fn worker_protocol_vectors_give_typed_messages() {
    let mut typed = 0;
    for v in vectors().iter().filter(|v| v["decoded"].is_object()) {
        let Some(role) = role(v) else { continue };
        let name = v["name"].as_str().unwrap();
        let (d, p) = (dialect(v), profile(v));
        let bytes = input(v);
        let (frames, err, _) = decode(d, &bytes, 0, false);
        if err.is_some() {
            continue;
        }
        let mut session = session_for(v, d, role, &frames);
        let originals = split_frames(&bytes, frames.len());
        let expected = expected_frames(v);
        for (i, (f, e)) in frames.iter().zip(&expected).enumerate() {
            let got = session.receive(f);
            let want = e.get("type").and_then(|t| t.as_str());
            let last = i + 1 == frames.len();
            match (&got, want) {
                (Ok(m), Some(t)) => {
                    assert_eq!(m.kind().name(d), t, "{name}: message {i}");
                    check_message_fields(name, m, e);
                    let ours = encode_message(d, p, f.session, m);
                    // A typed chunk does not remember whether its payload
                    // came as str or bin: in the modern profile we write bin.
                    let str_chunk = p == Profile::Modern
                        && matches!(m, Message::Chunk { .. })
                        && matches!(f.args.to_values().unwrap()[0], Value::Str(_));
                    if e["headers_raw"].is_null() && !str_chunk && !NOT_OUR_ENCODING.iter().any(|(n, _)| *n == name) {
                        assert_eq!(hex(&ours), hex(originals[i]), "{name}: typed re-encoding");
                    } else {
                        let (again, _, _) = decode(d, &ours, 0, false);
                        let mut s2 = session_for(v, d, role, &frames);
                        for prior in &frames[..i] {
                            let _ = s2.receive(prior);
                        }
                        assert_eq!(s2.receive(&again[0]).as_ref(), Ok(m), "{name}: typed re-encoding decodes back");
                    }
                    typed += 1;
                }
                (Err(drop), want) => {
                    // Drops are what the vector documents: an unknown control
                    // type, a frame on a forgotten channel, a new channel
                    // without invoke.
                    let documented =
                        v["expect"] == "drop_message" && last || want == Some("unknown") || v["error"].as_str() == Some(drop.class());
                    assert!(documented, "{name}: message {i} dropped: {drop}");
                }
                (Ok(m), None) => panic!("{name}: message {i} typed as {m:?} but the vector says it is not"),
            }
        }
    }
    assert!(typed >= 50, "only {typed} typed messages checked");
}

fn check_message_fields(name: &str, m: &Message, e: &Json) {
    let args: Vec<Value> = e["args"].as_array().unwrap().iter().map(to_value).collect();
    let b = |i: usize| args[i].as_bytes().unwrap().clone();
    let int = |v: &Value| v.as_i64().unwrap();
    let want = match m {
        Message::Handshake { .. } => Message::Handshake { uuid: b(0) },
        Message::Heartbeat => Message::Heartbeat,
        Message::Choke => Message::Choke,
        Message::Terminate { .. } => Message::Terminate { code: int(&args[0]), reason: b(1) },
        Message::Invoke { .. } => Message::Invoke { event: b(0) },
        Message::Chunk { .. } => Message::Chunk { data: b(0) },
        Message::Error { category: None, .. } => Message::Error { category: None, code: int(&args[0]), message: Some(b(1)) },
        Message::Error { category: Some(_), .. } => {
            let pair = args[0].as_array().unwrap();
            Message::Error {
                category: Some(int(&pair[0])),
                code: int(&pair[1]),
                message: args.get(1).map(|m| m.as_bytes().unwrap().clone()),
            }
        }
    };
    assert_eq!(m, &want, "{name}: fields");
}

#[test]
fn invalid_vectors_give_the_documented_outcome() {
    let mut seen = 0;
    for v in vectors().iter().filter(|v| v["valid"] == false) {
        let name = v["name"].as_str().unwrap();
        let d = dialect(v);
        let bytes = input(v);
        let class = v["error"].as_str().unwrap();
        match v["expect"].as_str().unwrap() {
            "need_more_input" => {
                for step in [0, 1] {
                    let (frames, err, dec) = decode(d, &bytes, step, false);
                    assert!(frames.is_empty() && err.is_none(), "{name}");
                    assert_eq!(dec.partial(), bytes.len(), "{name}: everything stays buffered");
                }
            }
            expect @ ("reject_frame" | "reject_headers" | "close_connection") => {
                for step in [0, 1] {
                    let (frames, err, mut dec) = decode(d, &bytes, step, false);
                    let err = err.unwrap_or_else(|| panic!("{name}: accepted"));
                    assert_eq!(err.class(), class, "{name}: {err}");
                    assert_eq!(err.errno(), sluice_core::errno::EBADMSG, "{name}");
                    // Frames before the bad one were delivered first.
                    assert_eq!(frames.len(), expected_frames_before_error(v), "{name}");
                    // The error is final.
                    assert_eq!(dec.decode().unwrap_err(), err, "{name}: error repeats");
                }
                // Lenient mode skips an invalid frame and stays in step; it
                // never forgives broken msgpack or headers.
                let (frames, err, dec) = decode(d, &bytes, 0, true);
                if expect == "reject_frame" {
                    assert!(err.is_none(), "{name}: lenient mode still failed: {err:?}");
                    assert_eq!(dec.dropped(), 1, "{name}");
                    assert_eq!(dec.partial(), 0, "{name}: the whole invalid frame was skipped");
                    assert!(frames.is_empty(), "{name}");
                } else {
                    assert_eq!(err.map(|e| e.class()), Some(class), "{name}: lenient");
                }
            }
            "drop_message" => {
                let (frames, err, _) = decode(d, &bytes, 0, false);
                assert!(err.is_none(), "{name}: the frame itself is valid");
                let mut s = Session::new(d, role(v).unwrap());
                let drop = frames.iter().map(|f| s.receive(f)).last().unwrap().unwrap_err();
                assert_eq!(drop.class(), class, "{name}: {drop}");
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 25, "the file documents 25 invalid vectors");
}

/// Invalid vectors that begin with valid frames (header errors after a
/// storing frame, for instance) deliver those first.
fn expected_frames_before_error(v: &Json) -> usize {
    match &v["decoded"] {
        Json::Object(o) => o.get("messages").and_then(|m| m.as_array()).map_or(0, |m| m.len().saturating_sub(1)),
        _ => 0,
    }
}
