//! v1 frame headers: the HPACK-like table scheme of docs/PROTOCOL.md §4.
//!
//! A header list is a msgpack array whose entries are either a bare index
//! into the tables or a literal `[store, name, value]`. Indexes 1–82 address
//! the static table, 83 and up the dynamic table (83 = newest). The decoder
//! keeps one [`HeaderTable`] per connection and applies every frame's
//! insertions in wire order.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes};

use super::error::HeaderError;
use super::msgpack::{self, Head, Profile, Read};

/// The default (and, in Cocaine, fixed) dynamic table capacity in bytes.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Bytes an entry costs in the dynamic table besides its name and value.
pub const ENTRY_OVERHEAD: usize = 32;

/// Index of the first dynamic table entry.
pub const FIRST_DYNAMIC_INDEX: u64 = STATIC_TABLE.len() as u64 + 1;

/// Static index of `trace_id`.
pub const TRACE_ID_INDEX: u64 = 80;
/// Static index of `span_id`.
pub const SPAN_ID_INDEX: u64 = 81;
/// Static index of `parent_id`.
pub const PARENT_ID_INDEX: u64 = 82;

const ZERO8: &[u8] = &[0; 8];

/// The static table, index 1 first (docs/PROTOCOL.md §4.2): RFC 7541's 61
/// entries, 18 empty placeholders, and the three tracing ids.
pub static STATIC_TABLE: [(&[u8], &[u8]); 82] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"", b""),
    (b"trace_id", ZERO8),
    (b"span_id", ZERO8),
    (b"parent_id", ZERO8),
];

/// One resolved header: a name and a value, both arbitrary bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name, e.g. `trace_id`.
    pub name: Bytes,
    /// The header's value; tracing ids are 8 bytes, little-endian.
    pub value: Bytes,
}

impl Header {
    /// A header from any two byte strings.
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header { name: name.into(), value: value.into() }
    }

    /// A tracing header (`trace_id`, `span_id`, `parent_id`) with its id
    /// written little-endian, as every Cocaine implementation does.
    pub fn trace(name: &'static str, id: u64) -> Header {
        Header::new(Bytes::from_static(name.as_bytes()), Bytes::copy_from_slice(&id.to_le_bytes()))
    }

    fn size(&self) -> usize {
        ENTRY_OVERHEAD + self.name.len() + self.value.len()
    }
}

/// The tracing ids of a frame (docs/PROTOCOL.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceIds {
    /// `trace_id`.
    pub trace_id: u64,
    /// `span_id`.
    pub span_id: u64,
    /// `parent_id`.
    pub parent_id: u64,
}

impl TraceIds {
    /// Reads the three tracing ids from a resolved header list. `None` when
    /// any of the three is missing (the runtime starts a trace only when all
    /// three are present); an error when one of them is not 8 bytes.
    pub fn from_headers(headers: &[Header]) -> Result<Option<TraceIds>, HeaderError> {
        let mut ids = [None; 3];
        for h in headers {
            let slot = match &h.name[..] {
                b"trace_id" => 0,
                b"span_id" => 1,
                b"parent_id" => 2,
                _ => continue,
            };
            let v: [u8; 8] = h.value[..].try_into().map_err(|_| HeaderError::BadTraceValue(h.value.len()))?;
            ids[slot] = Some(u64::from_le_bytes(v));
        }
        Ok(match ids {
            [Some(trace_id), Some(span_id), Some(parent_id)] => Some(TraceIds { trace_id, span_id, parent_id }),
            _ => None,
        })
    }

    /// The three headers, in the order the runtime writes them.
    pub fn to_headers(self) -> [Header; 3] {
        [Header::trace("trace_id", self.trace_id), Header::trace("span_id", self.span_id), Header::trace("parent_id", self.parent_id)]
    }
}

/// The name part of a literal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderName {
    /// The name of the table entry at this index.
    Indexed(u64),
    /// A literal name.
    Literal(Bytes),
}

/// One entry of a header list as it travels (docs/PROTOCOL.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEntry {
    /// A bare index: the whole (name, value) pair at that index.
    Indexed(u64),
    /// `[store, name, value]`; with `store` both sides insert the pair into
    /// their dynamic table.
    Literal {
        /// Whether to insert the pair into the dynamic table.
        store: bool,
        /// The name, literal or by index.
        name: HeaderName,
        /// The value.
        value: Bytes,
    },
}

/// One direction's header table: the static table plus a dynamic table with
/// size accounting and eviction. The decoder's table mirrors the peer
/// encoder's, so every insertion must be applied in wire order.
#[derive(Debug, Clone)]
pub struct HeaderTable {
    dynamic: VecDeque<Header>,
    size: usize,
    capacity: usize,
}

impl Default for HeaderTable {
    fn default() -> Self {
        HeaderTable::new(DEFAULT_TABLE_SIZE)
    }
}

impl HeaderTable {
    /// An empty table whose dynamic part holds at most `capacity` bytes
    /// (entry size = 32 + name + value).
    pub fn new(capacity: usize) -> HeaderTable {
        HeaderTable { dynamic: VecDeque::new(), size: 0, capacity }
    }

    /// The dynamic table's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The dynamic table's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The dynamic entries, newest (index 83) first.
    pub fn dynamic_entries(&self) -> impl Iterator<Item = &Header> {
        self.dynamic.iter()
    }

    /// The (name, value) pair at `index`, or `None` if there is none.
    pub fn get(&self, index: u64) -> Option<(Bytes, Bytes)> {
        if index == 0 {
            return None;
        }
        if index < FIRST_DYNAMIC_INDEX {
            let (n, v) = STATIC_TABLE[index as usize - 1];
            return Some((Bytes::from_static(n), Bytes::from_static(v)));
        }
        let h = self.dynamic.get(usize::try_from(index - FIRST_DYNAMIC_INDEX).ok()?)?;
        Some((h.name.clone(), h.value.clone()))
    }

    /// Inserts a pair: an entry larger than the capacity empties the table
    /// and is not inserted; otherwise it becomes index 83 and the oldest
    /// entries are evicted until the size fits (docs/PROTOCOL.md §4.2).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        // Copy: the entry may outlive the receive buffer it came from by
        // long, and must not pin a large buffer in memory.
        let h = Header::new(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        let size = h.size();
        if size > self.capacity {
            self.dynamic.clear();
            self.size = 0;
            return;
        }
        self.dynamic.push_front(h);
        self.size += size;
        while self.size > self.capacity {
            if let Some(old) = self.dynamic.pop_back() {
                self.size -= old.size();
            }
        }
    }

    /// Decodes one complete header list (the msgpack array in `list`),
    /// applying its insertions, and returns the resolved headers. Names and
    /// values of literal entries are slices of `list`.
    pub fn decode_list(&mut self, list: &Bytes) -> Result<Vec<Header>, HeaderError> {
        let mut r = Reader { buf: list, pos: 0 };
        let n = match r.head()? {
            Head::Array(n) => n,
            _ => return Err(HeaderError::BadEntry),
        };
        let mut out = Vec::with_capacity((n as usize).min(list.len()));
        for _ in 0..n {
            match r.head()? {
                Head::Uint(i) => {
                    let (name, value) = self.get(i).ok_or(HeaderError::BadIndex(i))?;
                    out.push(Header { name, value });
                }
                Head::Array(3) => {
                    let store = match r.head()? {
                        Head::Bool(b) => b,
                        _ => return Err(HeaderError::BadEntry),
                    };
                    let name = match r.head()? {
                        Head::Uint(i) => self.get(i).ok_or(HeaderError::BadIndex(i))?.0,
                        h if h.is_bytes() => r.take(h.payload_len())?,
                        _ => return Err(HeaderError::BadEntry),
                    };
                    let value = match r.head()? {
                        h if h.is_bytes() => r.take(h.payload_len())?,
                        _ => return Err(HeaderError::BadEntry),
                    };
                    if store {
                        self.insert(&name, &value);
                    }
                    out.push(Header { name, value });
                }
                _ => return Err(HeaderError::BadEntry),
            }
        }
        Ok(out)
    }
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn head(&mut self) -> Result<Head, HeaderError> {
        match msgpack::read_head(&self.buf[self.pos..]) {
            Read::Done(h, n) => {
                self.pos += n;
                Ok(h)
            }
            _ => Err(HeaderError::BadEntry),
        }
    }

    fn take(&mut self, n: u64) -> Result<Bytes, HeaderError> {
        let end = self.pos as u64 + n;
        if end > self.buf.len() as u64 {
            return Err(HeaderError::BadEntry);
        }
        let b = self.buf.slice(self.pos..end as usize);
        self.pos = end as usize;
        Ok(b)
    }
}

/// Writes a header list the way our encoder always does
/// (docs/PROTOCOL.md §4.3): a bare static index when name and value equal a
/// static entry exactly, otherwise a non-storing literal
/// `[false, name, value]`. Names are text; values are byte payloads (bin in
/// the modern profile).
pub fn write_headers(out: &mut impl BufMut, headers: &[Header], profile: Profile) {
    msgpack::write_array_len(out, headers.len() as u32);
    for h in headers {
        if let Some(i) = STATIC_TABLE.iter().position(|(n, v)| *n == &h.name[..] && *v == &h.value[..]) {
            msgpack::write_uint(out, i as u64 + 1);
            continue;
        }
        out.put_slice(&[0x93, 0xc2]);
        msgpack::write_str(out, &h.name, profile);
        msgpack::write_payload(out, &h.value, profile);
    }
}

/// Writes a header list entry by entry, as given (for peers that want
/// indexed or storing entries). Whoever stores must mirror the peer's
/// decoder table.
pub fn write_entries(out: &mut impl BufMut, entries: &[HeaderEntry], profile: Profile) {
    msgpack::write_array_len(out, entries.len() as u32);
    for e in entries {
        match e {
            HeaderEntry::Indexed(i) => msgpack::write_uint(out, *i),
            HeaderEntry::Literal { store, name, value } => {
                out.put_slice(&[0x93, if *store { 0xc3 } else { 0xc2 }]);
                match name {
                    HeaderName::Indexed(i) => msgpack::write_uint(out, *i),
                    HeaderName::Literal(n) => msgpack::write_str(out, n, profile),
                }
                msgpack::write_payload(out, value, profile);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table_matches_the_spec_landmarks() {
        let t = HeaderTable::default();
        assert_eq!(t.get(1).unwrap().0, ":authority");
        assert_eq!(t.get(61).unwrap().0, "www-authenticate");
        assert_eq!(t.get(62).unwrap(), (Bytes::new(), Bytes::new()));
        assert_eq!(t.get(79).unwrap(), (Bytes::new(), Bytes::new()));
        assert_eq!(t.get(80).unwrap(), (Bytes::from_static(b"trace_id"), Bytes::from_static(ZERO8)));
        assert_eq!(t.get(82).unwrap().0, "parent_id");
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(83), None);
        assert_eq!(t.get(u64::MAX), None);
    }

    #[test]
    fn eviction_keeps_the_size_within_capacity() {
        let mut t = HeaderTable::new(100);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"2"); // 68
        t.insert(b"c", b"3"); // 102 > 100: "a" goes
        assert_eq!(t.size(), 68);
        assert_eq!(t.get(83).unwrap().0, "c");
        assert_eq!(t.get(84).unwrap().0, "b");
        assert_eq!(t.get(85), None);
        t.insert(b"big", &[0; 80]); // 115 > 100: table emptied, not inserted
        assert_eq!(t.size(), 0);
        assert_eq!(t.get(83), None);
    }

    #[test]
    fn trace_ids_are_little_endian() {
        let ids = TraceIds { trace_id: 0x0102030405060708, span_id: 2, parent_id: 3 };
        let hs = ids.to_headers();
        assert_eq!(&hs[0].value[..], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(TraceIds::from_headers(&hs).unwrap(), Some(ids));
        let bad = [Header::new("trace_id", "short")];
        assert_eq!(TraceIds::from_headers(&bad), Err(HeaderError::BadTraceValue(5)));
    }

    #[test]
    fn writes_static_matches_as_indexes() {
        let mut out = Vec::new();
        write_headers(&mut out, &TraceIds::default().to_headers(), Profile::Compat);
        assert_eq!(out, [0x93, 80, 81, 82]);
        out.clear();
        write_headers(&mut out, &[Header::trace("trace_id", 1)], Profile::Compat);
        assert_eq!(out, b"\x91\x93\xc2\xa8trace_id\xa8\x01\0\0\0\0\0\0\0");
    }
}
