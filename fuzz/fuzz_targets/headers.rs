//! The v1 header table (docs/PROTOCOL.md §4) on arbitrary header lists,
//! checked against a naive model of the same rules.
//!
//! Input: byte 0 picks the dynamic table capacity (0..=1020 bytes, in steps
//! of 4, so that evictions are frequent); the rest is cut into msgpack
//! values with `frame::value_len`, each decoded in turn as one header list
//! with the same table. A tail that is no complete value is decoded as the
//! last list (it must fail cleanly).
//!
//! Checks: no panic; after every list the table's size is within its
//! capacity and equals the sum of its entries' sizes; and the resolved
//! headers, the error and the table's contents match the model, whose
//! entries are in a plain `Vec` with eviction written out longhand.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_core::wire::frame::value_len;
use sluice_core::wire::headers::{ENTRY_OVERHEAD, FIRST_DYNAMIC_INDEX, STATIC_TABLE};
use sluice_core::wire::msgpack::{read_head, Head, Read};
use sluice_core::wire::{Header, HeaderError, HeaderTable, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else { return };
    let capacity = cap as usize * 4;
    let mut table = HeaderTable::new(capacity);
    let mut model = Model { entries: Vec::new(), capacity };
    let buf = Bytes::copy_from_slice(rest);
    let mut pos = 0;
    while pos < buf.len() {
        let end = value_len(&buf[pos..]).map_or(buf.len(), |n| pos + n);
        assert!(end > pos, "value_len of nothing");
        let list = buf.slice(pos..end);
        pos = end;

        let got = table.decode_list(&list);
        let want = model.decode_list(&list);
        assert_eq!(got, want, "decode_list differs from the model on {:02x?}", &list[..]);

        assert!(table.size() <= table.capacity(), "size {} > capacity {}", table.size(), table.capacity());
        assert_eq!(table.capacity(), capacity);
        let entries: Vec<Header> = table.dynamic_entries().cloned().collect();
        let sum: usize = entries.iter().map(|h| ENTRY_OVERHEAD + h.name.len() + h.value.len()).sum();
        assert_eq!(table.size(), sum, "size() is not the sum of the entries' sizes");
        assert_eq!(entries, model.entries, "table contents differ from the model");
        for (i, h) in entries.iter().enumerate() {
            let got = table.get(FIRST_DYNAMIC_INDEX + i as u64);
            assert_eq!(got, Some((h.name.clone(), h.value.clone())), "get() disagrees with dynamic_entries()");
        }
        assert_eq!(table.get(FIRST_DYNAMIC_INDEX + entries.len() as u64), None);

        // The generic value decoder on the same bytes must not panic, and
        // agrees with value_len about where a complete value ends.
        if let Ok((_, n)) = Value::decode(&list) {
            assert_eq!(Some(n), value_len(&list), "Value::decode and value_len disagree on the length");
        }
    }
});

/// The dynamic table as the spec states it: newest first, entries cost
/// 32 + name + value bytes, an entry larger than the capacity empties the
/// table, otherwise the oldest go until the rest fits.
struct Model {
    entries: Vec<Header>,
    capacity: usize,
}

impl Model {
    fn size(&self) -> usize {
        self.entries.iter().map(|h| ENTRY_OVERHEAD + h.name.len() + h.value.len()).sum()
    }

    fn get(&self, i: u64) -> Result<(Bytes, Bytes), HeaderError> {
        if (1..FIRST_DYNAMIC_INDEX).contains(&i) {
            let (n, v) = STATIC_TABLE[(i - 1) as usize];
            return Ok((Bytes::from_static(n), Bytes::from_static(v)));
        }
        i.checked_sub(FIRST_DYNAMIC_INDEX)
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| self.entries.get(k))
            .map(|h| (h.name.clone(), h.value.clone()))
            .ok_or(HeaderError::BadIndex(i))
    }

    fn insert(&mut self, name: Bytes, value: Bytes) {
        if ENTRY_OVERHEAD + name.len() + value.len() > self.capacity {
            self.entries.clear();
            return;
        }
        self.entries.insert(0, Header { name, value });
        while self.size() > self.capacity {
            self.entries.pop();
        }
    }

    fn decode_list(&mut self, list: &Bytes) -> Result<Vec<Header>, HeaderError> {
        let mut pos = 0;
        let head = |pos: &mut usize| match read_head(&list[*pos..]) {
            Read::Done(h, n) => {
                *pos += n;
                Ok(h)
            }
            _ => Err(HeaderError::BadEntry),
        };
        let bytes = |pos: &mut usize, n: u32| {
            let end = *pos + n as usize;
            if end > list.len() {
                return Err(HeaderError::BadEntry);
            }
            let b = list.slice(*pos..end);
            *pos = end;
            Ok(b)
        };
        let Head::Array(n) = head(&mut pos)? else { return Err(HeaderError::BadEntry) };
        let mut out = Vec::new();
        for _ in 0..n {
            match head(&mut pos)? {
                Head::Uint(i) => {
                    let (name, value) = self.get(i)?;
                    out.push(Header { name, value });
                }
                Head::Array(3) => {
                    let Head::Bool(store) = head(&mut pos)? else { return Err(HeaderError::BadEntry) };
                    let name = match head(&mut pos)? {
                        Head::Uint(i) => self.get(i)?.0,
                        Head::Str(k) | Head::Bin(k) => bytes(&mut pos, k)?,
                        _ => return Err(HeaderError::BadEntry),
                    };
                    let value = match head(&mut pos)? {
                        Head::Str(k) | Head::Bin(k) => bytes(&mut pos, k)?,
                        _ => return Err(HeaderError::BadEntry),
                    };
                    if store {
                        self.insert(name.clone(), value.clone());
                    }
                    out.push(Header { name, value });
                }
                _ => return Err(HeaderError::BadEntry),
            }
        }
        Ok(out)
    }
}
