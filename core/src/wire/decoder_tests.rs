//! Tests of the incremental frame decoder.

use super::*;

fn all(dec: &mut Decoder) -> Result<Vec<Frame>, DecodeError> {
    let mut out = Vec::new();
    while let Some(f) = dec.decode()? {
        out.push(f);
    }
    Ok(out)
}

/// Every frame of `dec`'s input so far by the in-place path, as owned
/// frames (the way a channel reads it).
fn all_in_place(dec: &mut Decoder) -> Result<Vec<Frame>, DecodeError> {
    let mut out = Vec::new();
    loop {
        let mut refs = Vec::new();
        let n = dec.decode_run(|r| {
            refs.push(r);
            // Alternate run endings: cut after a frame now and then.
            r.session % 3 != 0
        });
        if n > 0 {
            let batch = dec.take_batch();
            out.extend(refs.iter().map(|r| r.to_frame(&batch)));
            continue;
        }
        match dec.decode_in_place()? {
            Some(InPlace::Owned(f)) => out.push(f),
            Some(InPlace::Ref(r)) => {
                let mut more = vec![r];
                while let Some(InPlace::Ref(r)) = dec.decode_in_place()? {
                    more.push(r);
                }
                let batch = dec.take_batch();
                out.extend(more.iter().map(|r| r.to_frame(&batch)));
            }
            None => return Ok(out),
        }
    }
}

#[test]
fn in_place_frames_are_the_frames_decode_gives_at_any_split() {
    use crate::wire::{Encoder, Header, Message, Profile};
    let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
    let big = Bytes::from(vec![7u8; 70_000]);
    for i in 0..300u64 {
        let h = [Header::new(Bytes::from_static(b"trace_id"), Bytes::from(i.to_le_bytes().to_vec()))];
        match i % 7 {
            0 => enc.chunk(i, &Bytes::from(vec![i as u8; (i * 13 % 300) as usize]), &[]),
            1 => enc.chunk(i, &Bytes::from_static(b"with headers"), &h),
            2 => enc.message(i, &Message::Error { category: Some(42), code: i as i64, message: None }, &[]),
            3 => enc.message(i, &Message::Heartbeat, &[]),
            4 if i % 5 == 0 => enc.chunk(i, &big, &[]),
            _ => enc.message(i, &Message::Terminate { code: 1, reason: Bytes::from_static(b"bye") }, &[]),
        }
    }
    let n = enc.out().remaining();
    let bytes = enc.out().copy_to_bytes(n);
    let mut whole = Decoder::new(DecoderConfig::new(Dialect::V1));
    whole.feed(&bytes);
    let want = all(&mut whole).unwrap();
    assert_eq!(want.len(), 300);
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..40 {
        let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let k = if round == 0 { 1 } else { 1 + (seed % 9000) as usize };
            let end = (pos + k).min(bytes.len());
            dec.feed(&bytes[pos..end]);
            pos = end;
            got.extend(all_in_place(&mut dec).unwrap());
        }
        assert_eq!(got, want, "round {round}");
        assert_eq!((dec.buffered(), dec.partial()), (0, 0));
    }
    // Errors come after the frames before them, and stay.
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    dec.feed(&[0x93, 0x02, 0x00, 0x91, 0xa2, b'h', b'i', 0xc1]);
    let mut refs = Vec::new();
    assert_eq!(
        dec.decode_run(|r| {
            refs.push(r);
            true
        }),
        1
    );
    let batch = dec.take_batch();
    assert_eq!(&batch[refs[0].first_bytes().unwrap()], b"hi");
    assert_eq!(dec.decode_in_place().unwrap_err(), DecodeError::Msgpack { offset: 7 });
    assert_eq!(dec.decode().unwrap_err(), DecodeError::Msgpack { offset: 7 });
}

#[test]
fn many_frames_in_one_read_cross_batches_in_order() {
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let mut bytes = Vec::new();
    for i in 0..1000u32 {
        bytes.extend_from_slice(&[0x93, 0xcd, (i >> 8) as u8, i as u8, 0x00, 0x90]);
    }
    bytes.extend_from_slice(&[0x93, 0x01]); // the start of one more
    dec.feed(&bytes);
    let frames = all(&mut dec).unwrap();
    assert_eq!(frames.len(), 1000);
    assert!(frames.iter().enumerate().all(|(i, f)| f.session == i as u64));
    assert_eq!(dec.partial(), 2);
    dec.feed(&[0x00, 0x90]);
    assert_eq!(all(&mut dec).unwrap().len(), 1);
}

#[test]
fn oversized_declarations_are_refused_before_buffering() {
    let mut cfg = DecoderConfig::new(Dialect::V1);
    cfg.max_frame_size = 1000;
    // A 4 GiB chunk: refused as soon as its 5-byte header is in.
    let mut dec = Decoder::new(cfg);
    dec.feed(&[0x93, 0x02, 0x00, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff]);
    let e = dec.decode().unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { limit: 1000, .. }), "{e}");
    assert_eq!(e.errno(), crate::errno::EMSGSIZE);
    // An array of 2^32-1 elements: each needs a byte, so it cannot fit.
    let mut dec = Decoder::new(cfg);
    dec.feed(&[0x93, 0x02, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(dec.decode(), Err(DecodeError::TooLarge { .. })));
    // A top-level array of 2^32-1 elements.
    let mut dec = Decoder::new(cfg);
    dec.feed(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(dec.decode(), Err(DecodeError::TooLarge { .. })));
    // Exactly at the limit is fine: 7 bytes of frame + 993 of payload.
    let mut dec = Decoder::new(cfg);
    let mut frame = vec![0x93, 0x02, 0x00, 0x91, 0xda, (993 >> 8) as u8, 993u16 as u8];
    frame.resize(1000, b'x');
    dec.feed(&frame);
    assert_eq!(all(&mut dec).unwrap().len(), 1);
    // One byte more is not.
    let mut dec = Decoder::new(cfg);
    frame[5..7].copy_from_slice(&994u16.to_be_bytes());
    dec.feed(&frame[..7]);
    assert_eq!(dec.decode().unwrap_err(), DecodeError::TooLarge { declared: 1001, limit: 1000 });
    // The same two through the in-place path a channel takes: the one
    // at the limit is taken in a run, the one past it is refused even
    // when it is complete in the buffer.
    frame[5..7].copy_from_slice(&993u16.to_be_bytes());
    let mut dec = Decoder::new(cfg);
    dec.feed(&frame);
    let mut refs = Vec::new();
    assert_eq!(
        dec.decode_run(|r| {
            refs.push(r);
            true
        }),
        1
    );
    assert_eq!(refs[0].first_bytes(), Some(7..1000));
    frame[5..7].copy_from_slice(&994u16.to_be_bytes());
    frame.push(b'x');
    let mut dec = Decoder::new(cfg);
    dec.feed(&frame);
    assert_eq!(dec.decode_run(|_| true), 0);
    assert!(matches!(dec.decode_in_place(), Err(DecodeError::TooLarge { limit: 1000, .. })));
}

#[test]
fn a_large_chunk_in_one_byte_reads_is_sliced_not_copied() {
    let payload = vec![0x5au8; 100_000];
    let mut bytes = vec![0x93, 0x03, 0x00, 0x91, 0xc6, 0x00, 0x01, 0x86, 0xa0];
    bytes.extend_from_slice(&payload);
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    for b in &bytes[..bytes.len() - 1] {
        dec.feed(std::slice::from_ref(b));
        assert!(dec.decode().unwrap().is_none());
    }
    dec.feed(&bytes[bytes.len() - 1..]);
    let f = dec.decode().unwrap().unwrap();
    let data = f.args.reader().bytes().unwrap();
    assert_eq!(data.len(), 100_000);
    assert_eq!(&data[..], &payload[..]);
    // The payload points into the frame's own bytes.
    let raw = f.args.raw();
    assert!(raw.as_ptr() <= data.as_ptr() && data.as_ptr() < raw.as_ptr().wrapping_add(raw.len()));
}

#[test]
fn frames_before_an_error_come_out_first_and_the_error_repeats() {
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    dec.feed(&[0x93, 0x01, 0x00, 0x90, 0xc1, 0x93, 0x01, 0x00, 0x90]);
    assert_eq!(dec.decode().unwrap().unwrap().session, 1);
    let e = dec.decode().unwrap_err();
    assert_eq!(e, DecodeError::Msgpack { offset: 4 });
    assert_eq!(dec.decode().unwrap_err(), e);
    dec.feed(&[0x93, 0x01, 0x00, 0x90]);
    assert_eq!(dec.decode().unwrap_err(), e);
}

#[test]
fn a_header_error_stays_the_error_when_worse_follows() {
    // [2, 0, [], [0], 0] (header index 0), then a byte that is no frame.
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    dec.feed(&[0x95, 0x02, 0x00, 0x90, 0x91, 0x00, 0x00, 0x05]);
    let e = dec.decode().unwrap_err();
    assert_eq!(e, DecodeError::Headers(crate::wire::HeaderError::BadIndex(0)));
    assert_eq!(dec.decode().unwrap_err(), e);
}

#[test]
fn lenient_mode_skips_invalid_frames_and_stays_in_step() {
    let mut cfg = DecoderConfig::new(Dialect::V0);
    cfg.lenient = true;
    let mut dec = Decoder::new(cfg);
    // 4 elements (bad in v0, with a nested payload), then a valid choke.
    dec.feed(&[0x94, 0x04, 0x01, 0x91, 0xa1, b'x', 0x92, 0x90, 0x80, 0x93, 0x06, 0x01, 0x90]);
    let frames = all(&mut dec).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].ty, frames[0].session), (6, 1));
    assert_eq!(dec.dropped(), 1);
}
