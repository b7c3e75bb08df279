//! The typed message layer (`wire::Session`) on arbitrary frames, in both
//! dialects and both roles, fed in arbitrary splits, checked against a
//! naive model of docs/PROTOCOL.md §3.2 and against itself.
//!
//! Input: byte 0 = control, byte 1 = session limit, the rest = the stream.
//!   bit 0: dialect (0 = v0, 1 = v1)
//!   bit 1: the receiving side also opens sessions of its own (an engine's
//!          invoke, `Session::sent`) after every third frame
//!   bit 2: role of the receiving side (0 = worker, 1 = engine)
//!   bits 3-7: split pattern (see `sluice_fuzz::chunks`)
//!   byte 1: `Session::set_max_sessions(byte % 8)` (small, so the limit is hit)
//!
//! Checks, besides "no panic, no hang":
//! * `receive` (borrowing) and `receive_owned` (consuming) agree on every
//!   frame: the same message or the same drop reason, the same state after;
//! * the outcome (message kind or drop class) is what the model says, and
//!   a delivered message has the frame's type id;
//! * the model's and the session's open-session counts, highest id and next
//!   id agree after every frame; the open count never passes the limit;
//! * a dropped frame given back by `receive_owned` is the frame that went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::wire::{
    Decoder, DecoderConfig, Dialect, Dropped, Frame, Kind, Message, Role, Session, message::CONTROL_SESSION as CONTROL_SESSION_V1,
};
use sluice_fuzz::{chunks, drain, Outcome, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let [ctl, lim, stream @ ..] = data else { return };
    let dialect = if ctl & 1 == 0 { Dialect::V0 } else { Dialect::V1 };
    let opens = ctl & 2 != 0;
    let role = if ctl & 4 == 0 { Role::Worker } else { Role::Engine };
    let limit = (*lim % 8) as usize;
    let config = DecoderConfig { dialect, max_frame_size: MAX_FRAME, header_table_size: 4096, lenient: true };

    let mut borrowed = Session::new(dialect, role);
    let mut owned = Session::new(dialect, role);
    borrowed.set_max_sessions(limit);
    owned.set_max_sessions(limit);
    assert_eq!(owned.max_sessions(), limit);
    let mut model = Model { dialect, role, limit, max_seen: 0, open: Vec::new(), handshake: false };
    let mut dec = Decoder::new(config);
    let mut out = Outcome::default();
    let mut n = 0u32;
    for chunk in chunks(ctl >> 3, stream) {
        dec.feed(chunk);
        drain(&mut dec, &mut out, |f| {
            n += 1;
            step(f, &mut borrowed, &mut owned, &mut model);
            if opens && n % 3 == 0 && role == Role::Engine {
                let s = owned.next_session();
                assert_eq!(s, borrowed.next_session());
                for sess in [&mut borrowed, &mut owned] {
                    sess.sent(s, Kind::Invoke);
                }
                model.sent(s);
                same_state(&borrowed, &owned, &model);
            }
        });
    }
});

fn step(f: &Frame, borrowed: &mut Session, owned: &mut Session, model: &mut Model) {
    let a = borrowed.receive(f);
    let b = owned.receive_owned(f.clone());
    match (&a, &b) {
        (Ok(m), Ok((s, m2, h))) => {
            assert_eq!(m, m2, "receive and receive_owned differ");
            assert_eq!((*s, h), (f.session, &f.headers));
            assert_eq!(m.kind().type_id(model.dialect), f.ty, "{m:?} delivered for type {}", f.ty);
        }
        (Err(d), Err((back, d2))) => {
            assert_eq!(d, d2, "different drop reasons");
            assert_eq!((back.session, back.ty, back.args.raw(), &back.headers), (f.session, f.ty, f.args.raw(), &f.headers));
        }
        _ => panic!("receive gave {a:?}, receive_owned {b:?}"),
    }
    let want = model.receive(f);
    let got = a.as_ref().map(Message::kind).map_err(Dropped::class);
    assert_eq!(got, want, "session {} type {}: the model disagrees", f.session, f.ty);
    same_state(borrowed, owned, model);
}

fn same_state(a: &Session, b: &Session, m: &Model) {
    for s in [a, b] {
        assert_eq!(s.open_sessions(), m.open.len(), "open sessions");
        assert_eq!(s.max_session(), m.max_seen, "highest session id");
        assert_eq!(s.next_session(), m.next(), "next session id");
    }
}

/// §3.2 written out longhand: open sessions in a `Vec`.
struct Model {
    dialect: Dialect,
    role: Role,
    limit: usize,
    max_seen: u64,
    open: Vec<u64>,
    handshake: bool,
}

impl Model {
    fn next(&self) -> u64 {
        let first = if self.dialect == Dialect::V0 { 1 } else { 2 };
        self.max_seen.saturating_add(1).max(first)
    }

    fn sent(&mut self, s: u64) {
        self.max_seen = self.max_seen.max(s);
        if self.dialect == Dialect::V1 && self.role == Role::Engine && !self.open.contains(&s) {
            self.open.push(s);
        }
    }

    fn receive(&mut self, f: &Frame) -> Result<Kind, &'static str> {
        let kind = self.classify(f.session, f.ty)?;
        if Message::from_args(kind, self.dialect, &f.args).is_err() {
            return Err("bad_args");
        }
        if self.dialect == Dialect::V1 && matches!(kind, Kind::Error | Kind::Choke) {
            self.open.retain(|&o| o != f.session);
        }
        Ok(kind)
    }

    fn classify(&mut self, s: u64, ty: u64) -> Result<Kind, &'static str> {
        if self.dialect == Dialect::V0 {
            return Kind::from_v0(ty).ok_or("unknown_type");
        }
        let seen = self.max_seen;
        self.max_seen = seen.max(s);
        if s == CONTROL_SESSION_V1 {
            if self.role == Role::Engine && !self.handshake {
                if ty == 0 {
                    self.handshake = true;
                    return Ok(Kind::Handshake);
                }
                return Err("before_handshake");
            }
            return match ty {
                0 => Ok(Kind::Heartbeat),
                1 => Ok(Kind::Terminate),
                _ => Err("unknown_type"),
            };
        }
        if self.open.contains(&s) {
            return match ty {
                0 => Ok(Kind::Chunk),
                1 => Ok(Kind::Error),
                2 => Ok(Kind::Choke),
                _ => Err("unknown_type"),
            };
        }
        if self.role == Role::Engine && !self.handshake {
            return Err("before_handshake");
        }
        if self.role == Role::Worker && s > seen {
            if ty != 0 {
                return Err("new_channel_not_opened_by_invoke");
            }
            if self.open.len() >= self.limit {
                return Err("session_limit");
            }
            self.open.push(s);
            return Ok(Kind::Invoke);
        }
        Err("no_session")
    }
}
