//! Property tests of the codec: random sequences of valid frames of both
//! dialects, concatenated and cut at random points, decode to the same
//! frames; encoding what was decoded gives back the same bytes; typed
//! messages survive encode → decode.

use std::collections::VecDeque;

use bytes::{Buf, Bytes};
use proptest::prelude::*;
use sluice_core::wire::{
    Args, Decoder, DecoderConfig, Dialect, Encoder, Frame, Header, HeaderEntry, HeaderName, Kind, Message, Profile, Role, Session, Value,
};

const CASES: u32 = 10_000;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A chunk payload: mostly small, sometimes past the 64 KiB boundary where
/// str16 becomes str32 and the encoder chains instead of copying.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        30 => bytes(2000),
        1 => (65_530usize..65_600, any::<u8>()).prop_map(|(n, b)| Bytes::from(vec![b; n])),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::Uint),
        (i64::MIN..0i64).prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::F64),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| Value::Str(b.into())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| Value::Bin(b.into())),
        payload().prop_map(Value::Bin),
        (any::<i8>(), prop_oneof![Just(1usize), Just(4), Just(16), Just(3), Just(300)])
            .prop_map(|(t, n)| Value::Ext(t, vec![0x5a; n].into())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

/// How a generated header entry is written; indexes are picked modulo the
/// table size at the time the frame is encoded.
#[derive(Debug, Clone)]
enum EntrySpec {
    Index(u16),
    Literal { store: bool, name_index: Option<u16>, name: Bytes, value: Bytes },
}

fn entry() -> impl Strategy<Value = EntrySpec> {
    prop_oneof![
        any::<u16>().prop_map(EntrySpec::Index),
        (any::<bool>(), proptest::option::of(any::<u16>()), bytes(12), bytes(40))
            .prop_map(|(store, name_index, name, value)| EntrySpec::Literal { store, name_index, name, value }),
    ]
}

#[derive(Debug, Clone)]
struct FrameSpec {
    session: u64,
    ty: u64,
    args: Vec<Value>,
    headers: Option<Vec<EntrySpec>>,
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..20, any::<u64>()]
}

fn frame(d: Dialect) -> impl Strategy<Value = FrameSpec> {
    let headers = match d {
        Dialect::V0 => Just(None).boxed(),
        Dialect::V1 => proptest::option::of(proptest::collection::vec(entry(), 0..5)).boxed(),
    };
    (id(), id(), proptest::collection::vec(value(), 0..4), headers).prop_map(|(session, ty, args, headers)| FrameSpec {
        session,
        ty,
        args,
        headers,
    })
}

/// A deliberately naive model of the header table (docs/PROTOCOL.md §4.2), to
/// check the decoder's against.
#[derive(Default)]
struct ModelTable(VecDeque<(Bytes, Bytes)>);

impl ModelTable {
    fn len(&self) -> u64 {
        82 + self.0.len() as u64
    }
    fn get(&self, i: u64) -> (Bytes, Bytes) {
        if i <= 82 {
            let (n, v) = sluice_core::wire::headers::STATIC_TABLE[i as usize - 1];
            (Bytes::from_static(n), Bytes::from_static(v))
        } else {
            self.0[(i - 83) as usize].clone()
        }
    }
    fn insert(&mut self, n: Bytes, v: Bytes) {
        let size = |(n, v): &(Bytes, Bytes)| 32 + n.len() + v.len();
        let e = (n, v);
        if size(&e) > 4096 {
            self.0.clear();
            return;
        }
        self.0.push_front(e);
        while self.0.iter().map(size).sum::<usize>() > 4096 {
            self.0.pop_back();
        }
    }
}

/// Encodes the specs and returns the bytes with the frames the decoder must
/// produce.
/// What the decoder must produce for one frame: ids, args, resolved headers.
type Expected = (u64, u64, Vec<Value>, Vec<Header>);

fn encode(d: Dialect, p: Profile, specs: &[FrameSpec]) -> (Vec<u8>, Vec<Expected>) {
    let mut enc = Encoder::new(d, p);
    let mut table = ModelTable::default();
    let mut expected = Vec::new();
    for s in specs {
        let raw = Value::Array(s.args.clone()).to_bytes(p);
        let args = Args::from_raw(raw.clone()).unwrap();
        // What a reader sees: compat has no bin family.
        let seen = match Value::decode_all(&raw).unwrap() {
            Value::Array(v) => v,
            _ => unreachable!(),
        };
        let mut resolved = Vec::new();
        match &s.headers {
            None => enc.frame(s.session, s.ty, &args, &[]),
            Some(specs) => {
                let mut entries = Vec::new();
                for e in specs {
                    match e {
                        EntrySpec::Index(i) => {
                            let i = 1 + *i as u64 % table.len();
                            let (n, v) = table.get(i);
                            resolved.push(Header::new(n, v));
                            entries.push(HeaderEntry::Indexed(i));
                        }
                        EntrySpec::Literal { store, name_index, name, value } => {
                            let (name_entry, n) = match name_index {
                                Some(i) => {
                                    let i = 1 + *i as u64 % table.len();
                                    (HeaderName::Indexed(i), table.get(i).0)
                                }
                                None => (HeaderName::Literal(name.clone()), name.clone()),
                            };
                            resolved.push(Header::new(n.clone(), value.clone()));
                            if *store {
                                table.insert(n, value.clone());
                            }
                            entries.push(HeaderEntry::Literal { store: *store, name: name_entry, value: value.clone() });
                        }
                    }
                }
                enc.frame_with_entries(s.session, s.ty, &args, &entries);
            }
        }
        expected.push((s.session, s.ty, seen, resolved));
    }
    let n = enc.out().remaining();
    (enc.out().copy_to_bytes(n).to_vec(), expected)
}

fn decode_split(d: Dialect, bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut dec = Decoder::new(DecoderConfig::new(d));
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut frames = Vec::new();
    for w in points.windows(2) {
        dec.feed(&bytes[w[0]..w[1]]);
        while let Some(f) = dec.decode().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(dec.partial(), 0);
    frames
}

fn check_split(d: Dialect, p: Profile, specs: Vec<FrameSpec>, cuts: Vec<usize>) -> Result<(), TestCaseError> {
    let (bytes, expected) = encode(d, p, &specs);
    let frames = decode_split(d, &bytes, &cuts);
    prop_assert_eq!(frames.len(), expected.len());
    let mut again = Encoder::new(d, p);
    for (f, (session, ty, args, headers)) in frames.iter().zip(&expected) {
        prop_assert_eq!((f.session, f.ty), (*session, *ty));
        prop_assert_eq!(&f.args.to_values().unwrap(), args);
        prop_assert_eq!(&f.headers, headers);
        // decode → encode: the args as values give back the same bytes.
        let reencoded = Args::from_raw(Value::Array(f.args.to_values().unwrap()).to_bytes(p)).unwrap();
        prop_assert_eq!(reencoded.raw(), f.args.raw());
        again.frame(f.session, f.ty, &reencoded, &[]);
    }
    // Without headers, re-encoding the decoded frames is the identity.
    if specs.iter().all(|s| s.headers.is_none()) {
        let n = again.out().remaining();
        prop_assert_eq!(again.out().copy_to_bytes(n).to_vec(), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn v0_frames_decode_the_same_at_any_split(
        specs in proptest::collection::vec(frame(Dialect::V0), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        check_split(Dialect::V0, Profile::Compat, specs, cuts)?;
    }

    #[test]
    fn v1_frames_decode_the_same_at_any_split(
        specs in proptest::collection::vec(frame(Dialect::V1), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        modern in any::<bool>(),
    ) {
        let p = if modern { Profile::Modern } else { Profile::Compat };
        check_split(Dialect::V1, p, specs, cuts)?;
    }
}

// ---------------------------------------------------------------------------
// Typed messages

fn text() -> impl Strategy<Value = Bytes> {
    bytes(80)
}

/// A message an engine sends to a worker on some session, as (kind, message).
fn engine_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Heartbeat),
        (any::<i64>(), text()).prop_map(|(code, reason)| Message::Terminate { code, reason }),
        text().prop_map(|event| Message::Invoke { event }),
        payload().prop_map(|data| Message::Chunk { data }),
        (any::<i64>(), any::<i64>(), proptest::option::of(text())).prop_map(|(category, code, message)| Message::Error {
            category: Some(category),
            code,
            message
        }),
        Just(Message::Choke),
    ]
}

/// Runs a script of engine → worker messages through encoder, decoder and
/// session state, as the engine would send them: `invoke` opens the next
/// channel, stream messages go to an open one, terminals close it.
fn engine_to_worker(d: Dialect, p: Profile, script: Vec<(Message, u8)>, cuts: Vec<usize>) -> Result<(), TestCaseError> {
    let mut enc = Encoder::new(d, p);
    let mut engine = Session::new(d, Role::Engine);
    let mut open: Vec<u64> = Vec::new();
    let mut sent = Vec::new();
    for (mut m, pick) in script {
        let kind = m.kind();
        let session = if kind.is_control() {
            if d == Dialect::V0 {
                0
            } else {
                1
            }
        } else if kind == Kind::Invoke {
            let s = engine.next_session();
            open.push(s);
            s
        } else if open.is_empty() {
            continue;
        } else {
            let i = pick as usize % open.len();
            let s = open[i];
            if kind.is_terminal() {
                open.remove(i);
            }
            s
        };
        if d == Dialect::V0 {
            if let Message::Error { category, message, .. } = &mut m {
                *category = None;
                message.get_or_insert_with(Bytes::new);
            }
        }
        engine.sent(session, kind);
        enc.message(session, &m, &[]);
        sent.push((session, m));
    }
    let n = enc.out().remaining();
    let bytes = enc.out().copy_to_bytes(n).to_vec();
    let frames = decode_split(d, &bytes, &cuts);
    let mut worker = Session::new(d, Role::Worker);
    prop_assert_eq!(frames.len(), sent.len());
    for (f, (session, m)) in frames.iter().zip(&sent) {
        prop_assert_eq!(f.session, *session);
        prop_assert_eq!(&worker.receive(f).unwrap(), m);
    }
    prop_assert_eq!(worker.open_sessions(), if d == Dialect::V1 { open.len() } else { 0 });
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn v0_typed_messages_round_trip(
        script in proptest::collection::vec((engine_message(), any::<u8>()), 1..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        engine_to_worker(Dialect::V0, Profile::Compat, script, cuts)?;
    }

    #[test]
    fn v1_typed_messages_round_trip(
        script in proptest::collection::vec((engine_message(), any::<u8>()), 1..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        modern in any::<bool>(),
    ) {
        let p = if modern { Profile::Modern } else { Profile::Compat };
        engine_to_worker(Dialect::V1, p, script, cuts)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Arbitrary bytes, valid frames with bytes flipped: never a panic, and
    /// the outcome does not depend on how the input was split.
    #[test]
    fn garbage_gives_the_same_outcome_at_any_split(
        specs in proptest::collection::vec(frame(Dialect::V1), 0..4),
        noise in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        v0 in any::<bool>(),
        lenient in any::<bool>(),
    ) {
        let (mut bytes, _) = encode(Dialect::V1, Profile::Compat, &specs);
        if bytes.is_empty() {
            bytes.push(0xc1);
        }
        let len = bytes.len();
        for (at, b) in noise {
            bytes[at % len] = b;
        }
        let d = if v0 { Dialect::V0 } else { Dialect::V1 };
        let run = |cuts: &[usize]| {
            let mut cfg = DecoderConfig::new(d);
            cfg.lenient = lenient;
            cfg.max_frame_size = 1 << 20;
            let mut dec = Decoder::new(cfg);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
            points.extend([0, len]);
            points.sort_unstable();
            let mut out = Vec::new();
            for w in points.windows(2) {
                dec.feed(&bytes[w[0]..w[1]]);
                loop {
                    match dec.decode() {
                        Ok(Some(f)) => out.push(Ok((f.session, f.ty, f.args.raw().clone(), f.headers))),
                        Ok(None) => break,
                        Err(e) => {
                            out.push(Err(e));
                            return (out, dec.dropped());
                        }
                    }
                }
            }
            (out, dec.dropped())
        };
        prop_assert_eq!(run(&cuts), run(&[]));
    }
}
