//! The resume extension's frames (docs/RESUME.md): a sluice-to-sluice
//! extension whose frames use control id 0 (never a v1 channel, and a v0
//! session no Cocaine peer uses with these type ids) and type ids from
//! [`HELLO`] up. The roles that speak it are in
//! [`roles::resume`](crate::roles::resume).

use bytes::{Buf, Bytes};

#[cfg(test)]
use super::Profile;
use super::{Encoder, Frame, Value};

/// `hello(token: bin, received: uint[, known: bool])`: the first frame of
/// each side on every connection of a resumable session.
pub const HELLO: u64 = 0xFF00;
/// `ack(received: uint)`: frames delivered so far.
pub const ACK: u64 = 0xFF01;
/// `ping()`: asks for an `ack` (the liveness heartbeat of resumable
/// sessions).
pub const PING: u64 = 0xFF02;
/// The control id the extension frames use.
pub const CONTROL_ID: u64 = 0;

/// An extension frame, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Hello { token: Bytes, received: u64, known: bool },
    Ack(u64),
    Ping,
}

impl Control {
    /// Parses a frame on the control id; `None` if it is not an extension
    /// frame, `Some(Err)` if it is one with bad arguments.
    pub(crate) fn parse(frame: &Frame) -> Option<Result<Control, ()>> {
        if frame.session != CONTROL_ID || !(HELLO..=PING).contains(&frame.ty) {
            return None;
        }
        let mut r = frame.args.reader();
        Some(match frame.ty {
            HELLO => (|| {
                let token = r.bytes().ok_or(())?;
                let received = r.uint().ok_or(())?;
                let known = matches!(r.value(), Ok(Value::Bool(true)));
                Ok(Control::Hello { token, received, known })
            })(),
            ACK => r.uint().map(Control::Ack).ok_or(()),
            _ => Ok(Control::Ping),
        })
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) -> Bytes {
        let (ty, args) = match self {
            Control::Hello { token, received, known } => {
                (HELLO, vec![Value::Bin(token.clone()), Value::Uint(*received), Value::Bool(*known)])
            }
            Control::Ack(n) => (ACK, vec![Value::Uint(*n)]),
            Control::Ping => (PING, vec![]),
        };
        enc.frame_values(CONTROL_ID, ty, &args, &[]);
        take(enc)
    }
}

/// Everything the encoder holds, as one buffer (for short control frames).
pub(crate) fn take(enc: &mut Encoder) -> Bytes {
    let out = enc.out();
    let n = out.remaining();
    out.copy_to_bytes(n)
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    /// The bytes docs/RESUME.md shows.
    #[test]
    fn extension_frames_are_the_documented_bytes() {
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let token = Bytes::from_static(&[0xab; 16]);
        let hello = Control::Hello { token, received: 1_000_000, known: true }.encode(&mut enc);
        let mut want = b"\x93\x00\xcd\xff\x00\x93\xb0".to_vec();
        want.extend_from_slice(&[0xab; 16]);
        want.extend_from_slice(b"\xce\x00\x0f\x42\x40\xc3");
        assert_eq!(&hello[..], &want[..]);
        assert_eq!(&Control::Ack(512).encode(&mut enc)[..], b"\x93\x00\xcd\xff\x01\x91\xcd\x02\x00");
        assert_eq!(&Control::Ping.encode(&mut enc)[..], b"\x93\x00\xcd\xff\x02\x90");
    }
}
