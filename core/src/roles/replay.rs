//! The replay buffer of a resumable stream: the frames sent and not yet
//! acknowledged, kept (without copying large payloads) to be sent again
//! after a reconnection; and the encoding of one frame of the stream.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::net::SendError;
use crate::wire::{Args, Encoder, Header, Message};

/// Bounds of the replay buffer and how often acknowledgements go out.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    /// Sends are refused ("would block") while this many bytes wait for the
    /// peer's acknowledgement.
    pub max_unacked: usize,
    /// Acknowledge after this many frames delivered...
    pub ack_every: u64,
    /// ...or this many bytes, whichever comes first. Keep it well below the
    /// peer's `max_unacked`.
    pub ack_bytes: usize,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions { max_unacked: 8 << 20, ack_every: 256, ack_bytes: 1 << 20 }
    }
}

/// A peer's `hello` or `ack` that cannot be true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer acknowledges {claimed} frames; {sent} were sent, {acked} acknowledged before")]
pub struct BadAck {
    /// What the peer claimed.
    pub claimed: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames acknowledged before.
    pub acked: u64,
}

/// One encoded frame kept for replay: its segments as the encoder made
/// them (a large payload stays shared with the sender's buffer, not copied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    segments: Vec<Bytes>,
    len: usize,
}

impl Encoded {
    /// A frame from its segments.
    pub fn new(segments: Vec<Bytes>) -> Encoded {
        let len = segments.iter().map(Bytes::len).sum();
        Encoded { segments, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its segments, in order.
    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }
}

impl From<Bytes> for Encoded {
    fn from(b: Bytes) -> Encoded {
        Encoded::new(vec![b])
    }
}

/// One direction's bookkeeping, sans-IO: frames sent and not yet
/// acknowledged (to replay), and frames received (to acknowledge).
#[derive(Debug)]
pub struct Replay {
    opts: ResumeOptions,
    /// Frames sent so far (the next frame's number).
    sent: u64,
    /// The peer has received every frame below this number.
    acked: u64,
    buffer: VecDeque<Encoded>,
    bytes: usize,
    received: u64,
    told: u64,
    bytes_since_ack: usize,
}

impl Replay {
    /// An empty state.
    pub fn new(opts: ResumeOptions) -> Replay {
        Replay { opts, sent: 0, acked: 0, buffer: VecDeque::new(), bytes: 0, received: 0, told: 0, bytes_since_ack: 0 }
    }

    /// Keeps an encoded frame until acknowledged. Refused while the buffer
    /// holds `max_unacked` bytes (an empty buffer takes any frame).
    pub fn push(&mut self, frame: Encoded) -> Result<(), SendError> {
        if !self.buffer.is_empty() && self.bytes + frame.len() > self.opts.max_unacked {
            return Err(SendError::WouldBlock);
        }
        self.bytes += frame.len();
        self.buffer.push_back(frame);
        self.sent += 1;
        Ok(())
    }

    /// The frame pushed last, if still unacknowledged.
    pub fn last(&self) -> Option<&Encoded> {
        self.buffer.back()
    }

    /// The peer has received the first `upto` frames.
    pub fn ack(&mut self, upto: u64) -> Result<(), BadAck> {
        if upto > self.sent {
            return Err(BadAck { claimed: upto, sent: self.sent, acked: self.acked });
        }
        while self.acked < upto {
            if let Some(f) = self.buffer.pop_front() {
                self.bytes -= f.len();
            }
            self.acked += 1;
        }
        Ok(())
    }

    /// A new connection: the peer has received `peer_received` frames.
    /// Returns the frames to send again, in order.
    pub fn resume(&mut self, peer_received: u64) -> Result<impl Iterator<Item = &Encoded>, BadAck> {
        if peer_received < self.acked {
            return Err(BadAck { claimed: peer_received, sent: self.sent, acked: self.acked });
        }
        self.ack(peer_received)?;
        Ok(self.buffer.iter())
    }

    /// The peer lost its state (a fresh peer answered): renumber what is
    /// buffered from 0, and count received frames from 0.
    pub fn restart(&mut self) {
        self.sent -= self.acked;
        self.acked = 0;
        self.received = 0;
        self.told = 0;
        self.bytes_since_ack = 0;
    }

    /// A frame of `len` bytes was delivered. Returns the count to
    /// acknowledge when an `ack` is due.
    pub fn delivered(&mut self, len: usize) -> Option<u64> {
        self.received += 1;
        self.bytes_since_ack += len;
        if self.received - self.told >= self.opts.ack_every || self.bytes_since_ack >= self.opts.ack_bytes {
            return Some(self.acknowledged());
        }
        None
    }

    /// Records that the current count is being acknowledged; returns it.
    pub fn acknowledged(&mut self) -> u64 {
        self.told = self.received;
        self.bytes_since_ack = 0;
        self.received
    }

    /// Frames delivered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Frames sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes waiting for acknowledgement.
    pub fn unacked_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a refused push would now be accepted with room to spare
    /// (the buffer is at most half full).
    pub fn has_room(&self) -> bool {
        self.bytes <= self.opts.max_unacked / 2
    }
}

/// Encodes one frame of the session's data stream.
pub(crate) enum Outgoing<'a> {
    Message(u64, &'a Message, &'a [Header]),
    Chunk(u64, &'a Bytes),
    Frame(u64, u64, &'a Args, &'a [Header]),
}

impl Outgoing<'_> {
    /// The frame's segments; a large payload is shared, not copied.
    pub(crate) fn encode(&self, enc: &mut Encoder) -> Encoded {
        match self {
            Outgoing::Message(s, m, h) => enc.message(*s, m, h),
            Outgoing::Chunk(s, d) => enc.chunk(*s, d, &[]),
            Outgoing::Frame(s, t, a, h) => enc.frame(*s, *t, a, h),
        }
        Encoded::new(enc.out().take_segments())
    }

    pub(crate) fn session(&self) -> u64 {
        match self {
            Outgoing::Message(s, ..) | Outgoing::Chunk(s, _) | Outgoing::Frame(s, ..) => *s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::resume::{take, Control};
    use crate::wire::Profile;

    fn f(n: u8) -> Encoded {
        Bytes::from(vec![n; 10]).into()
    }

    #[test]
    fn a_large_payload_is_kept_for_replay_without_a_copy() {
        let payload = Bytes::from(vec![7u8; 64 << 10]);
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let frame = Outgoing::Chunk(3, &payload).encode(&mut enc);
        assert!(frame.segments().iter().any(|s| s.as_ptr() == payload.as_ptr() && s.len() == payload.len()));
        assert!(frame.len() > payload.len() && frame.len() < payload.len() + 16);
        assert!(enc.out().is_empty());
        // The segments are the bytes a plain encoding gives.
        let mut plain = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        plain.chunk(3, &payload, &[]);
        let whole = take(&mut plain);
        assert_eq!(frame.segments().concat(), whole.to_vec());
    }

    #[test]
    fn replays_exactly_what_the_peer_missed() {
        let mut r = Replay::new(ResumeOptions { max_unacked: 45, ack_every: 2, ack_bytes: 1 << 20 });
        for i in 0..4 {
            r.push(f(i)).unwrap();
        }
        // Full: 40 bytes held, 10 more would pass 45.
        assert_eq!(r.push(f(9)), Err(SendError::WouldBlock));
        assert!(!r.has_room());
        r.ack(1).unwrap();
        assert_eq!(r.unacked_bytes(), 30);
        // The peer reconnects having received 2 frames: 2 and 3 again.
        let again: Vec<Encoded> = r.resume(2).unwrap().cloned().collect();
        assert_eq!(again, vec![f(2), f(3)]);
        assert!(r.has_room());
        // Claims beyond what was sent, or below what was acknowledged, are
        // refused.
        assert!(r.ack(5).is_err());
        assert!(r.resume(1).is_err());
        r.push(f(4)).unwrap();
        assert_eq!(r.sent(), 5);
        // A peer that lost its state: what is buffered is numbered from 0.
        r.restart();
        assert_eq!(r.sent(), 3);
        let again: Vec<Encoded> = r.resume(0).unwrap().cloned().collect();
        assert_eq!(again, vec![f(2), f(3), f(4)]);
    }

    #[test]
    fn acknowledges_by_count_and_by_bytes() {
        let mut r = Replay::new(ResumeOptions { max_unacked: 1 << 20, ack_every: 3, ack_bytes: 100 });
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.delivered(1), Some(3));
        assert_eq!(r.delivered(150), Some(4));
        assert_eq!(r.delivered(1), None);
        assert_eq!(r.acknowledged(), 5);
        assert_eq!(r.received(), 5);
    }

    #[test]
    fn control_frames_round_trip() {
        let mut enc = Encoder::new(crate::wire::Dialect::V1, Profile::Compat);
        let mut dec = crate::wire::Decoder::new(crate::wire::DecoderConfig::default());
        for c in [Control::Hello { token: Bytes::from_static(&[7; 16]), received: 1 << 40, known: true }, Control::Ack(12), Control::Ping] {
            let b = c.encode(&mut enc);
            dec.buffer_mut().extend_from_slice(&b);
            let frame = dec.decode().unwrap().unwrap();
            assert_eq!(Control::parse(&frame), Some(Ok(c)));
        }
    }
}
