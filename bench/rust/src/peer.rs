//! The fixed sides of the workloads, on plain blocking sockets: the feeder
//! of the receive workloads, the sink of the send workload, the echo of
//! plain round trips and the engine of the worker load. The same code
//! serves every contender, in a thread for the Rust ones and in the
//! `sluice-bench` program (`feed`, `sink`, `engine`) for the others.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sluice_core::wire::{Decoder, DecoderConfig, Dialect};

use crate::Net;

/// Sessions per wave of the worker load.
pub const WAVE: usize = 1000;
/// Chunks per session of the worker load.
pub const CHUNKS_PER_SESSION: usize = 10;
/// Payload bytes of each chunk of the worker load.
pub const MIXED_CHUNK: usize = 64;
/// The session every decode stream uses.
pub const STREAM_SESSION: u64 = 7;

/// The CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time the whole process (every thread) has used so far.
pub fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let r = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A connected plain blocking socket.
pub enum Plain {
    /// TCP, with `TCP_NODELAY`.
    Tcp(std::net::TcpStream),
    /// A Unix stream socket.
    Unix(std::os::unix::net::UnixStream),
}

impl Plain {
    /// Connects to `address` (`host:port` for TCP, a path for Unix).
    pub fn connect(net: Net, address: &str) -> Plain {
        match net {
            Net::Tcp => {
                let s = std::net::TcpStream::connect(address).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                Plain::Tcp(s)
            }
            Net::Unix => Plain::Unix(std::os::unix::net::UnixStream::connect(address).expect("connect")),
        }
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> Plain {
        match self {
            Plain::Tcp(s) => Plain::Tcp(s.try_clone().expect("clone")),
            Plain::Unix(s) => Plain::Unix(s.try_clone().expect("clone")),
        }
    }

    /// Shuts down one or both directions (errors ignored: the peer may be gone).
    pub fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Plain::Tcp(s) => s.shutdown(how),
            Plain::Unix(s) => s.shutdown(how),
        };
    }
}

impl Read for Plain {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.read(b),
            Plain::Unix(s) => s.read(b),
        }
    }
}

impl Write for Plain {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Plain::Tcp(s) => s.write(b),
            Plain::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A listening socket; a Unix one removes its file when dropped.
pub enum Listener {
    /// On 127.0.0.1, a port chosen by the system.
    Tcp(std::net::TcpListener),
    /// On a fresh path under the temporary directory.
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

/// A fresh socket path under the temporary directory, unique per process
/// and `tag`.
pub fn socket_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sluice-bench-{}-{tag}.sock", std::process::id()))
}

impl Listener {
    /// Listens on loopback (TCP) or a fresh path (Unix).
    pub fn bind(net: Net, tag: &str) -> Listener {
        match net {
            Net::Tcp => Listener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").expect("bind")),
            Net::Unix => {
                let p = socket_path(tag);
                let _ = std::fs::remove_file(&p);
                Listener::Unix(std::os::unix::net::UnixListener::bind(&p).expect("bind"), p)
            }
        }
    }

    /// Where to connect: `127.0.0.1:PORT` or the socket path.
    pub fn address(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().expect("address").to_string(),
            Listener::Unix(_, p) => p.display().to_string(),
        }
    }

    /// Accepts one connection.
    pub fn accept(&self) -> Plain {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                Plain::Tcp(s)
            }
            Listener::Unix(l, _) => Plain::Unix(l.accept().expect("accept").0),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn bin_header(out: &mut Vec<u8>, n: usize) {
    if n < 256 {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n < 65536 {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    }
}

/// `[session, 0, [<bin payload>]]`: a v1 write (a chunk) of `size` bytes.
pub fn chunk_frame(session: u64, size: usize) -> Vec<u8> {
    let mut f = vec![0x93];
    uint(&mut f, session);
    f.extend_from_slice(&[0x00, 0x91]);
    bin_header(&mut f, size);
    f.resize(f.len() + size, 0x5a);
    f
}

/// `[7, 0, [<bin payload>]]` with a payload of `size` bytes: the frame of
/// the decode streams.
pub fn frame(size: usize) -> Vec<u8> {
    chunk_frame(STREAM_SESSION, size)
}

/// `[session, 0, ["bench"]]`: a v1 invoke when `session` is new.
pub fn invoke_frame(session: u64) -> Vec<u8> {
    let mut f = vec![0x93];
    uint(&mut f, session);
    f.extend_from_slice(&[0x00, 0x91, 0xa5]);
    f.extend_from_slice(b"bench");
    f
}

/// `[session, 2, []]`: a v1 close (choke).
pub fn choke_frame(session: u64) -> Vec<u8> {
    let mut f = vec![0x93];
    uint(&mut f, session);
    f.extend_from_slice(&[0x02, 0x90]);
    f
}

/// Bytes of a decode stream: the invoke and `n` frames of `size`.
pub fn stream_len(size: usize, n: usize) -> usize {
    invoke_frame(STREAM_SESSION).len() + frame(size).len() * n
}

/// Writes a decode stream — the invoke on session 7, then `n` chunk
/// frames of `size` bytes in writes of about 1 MiB — then shuts down its
/// side and waits for the reader to close. Returns the CPU time the
/// writing took on this thread.
pub fn feed(s: &mut Plain, size: usize, n: usize) -> Duration {
    let cpu = thread_cpu();
    let f = frame(size);
    let per = ((1 << 20) / f.len()).max(1);
    let block = f.repeat(per);
    if s.write_all(&invoke_frame(STREAM_SESSION)).is_err() {
        return thread_cpu() - cpu;
    }
    let mut left = n;
    while left > 0 {
        let k = left.min(per);
        if s.write_all(&block[..k * f.len()]).is_err() {
            return thread_cpu() - cpu;
        }
        left -= k;
    }
    let spent = thread_cpu() - cpu;
    s.shutdown(Shutdown::Write);
    let mut b = [0u8; 4096];
    while let Ok(k) = s.read(&mut b) {
        if k == 0 {
            break;
        }
    }
    spent
}

/// Reads until `total` bytes have arrived (in 256 KiB reads), then closes;
/// returns when the last byte came and the CPU time the reading took on
/// this thread.
pub fn sink(s: &mut Plain, total: usize) -> (Instant, Duration) {
    let cpu = thread_cpu();
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0;
    while got < total {
        match s.read(&mut buf) {
            Ok(0) => panic!("the sender closed after {got} of {total} bytes"),
            Ok(k) => got += k,
            Err(e) => panic!("sink: {e}"),
        }
    }
    let end = Instant::now();
    let spent = thread_cpu() - cpu;
    s.shutdown(Shutdown::Both);
    (end, spent)
}

/// Echoes messages of exactly `len` bytes until the peer closes.
pub fn echo_fixed(s: &mut Plain, len: usize) {
    let mut buf = vec![0u8; len];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            break;
        }
    }
}

/// The worker load's engine stream: per wave, [`WAVE`] invokes on new
/// sessions, then [`CHUNKS_PER_SESSION`] rounds of one 64-byte chunk for
/// each session, then a choke for each.
pub fn engine_stream(waves: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for w in 0..waves {
        let first = 2 + (w * WAVE) as u64;
        let ids = first..first + WAVE as u64;
        for s in ids.clone() {
            out.extend_from_slice(&invoke_frame(s));
        }
        for _ in 0..CHUNKS_PER_SESSION {
            for s in ids.clone() {
                out.extend_from_slice(&chunk_frame(s, MIXED_CHUNK));
            }
        }
        for s in ids {
            out.extend_from_slice(&choke_frame(s));
        }
    }
    out
}

/// Runs the engine of the worker load on an accepted connection: writes
/// [`engine_stream`] from one thread while this one decodes the replies,
/// until a choke has come back for every session and at least every chunk
/// has been echoed. Returns the seconds from the first write to that
/// point, then closes the connection.
pub fn engine(s: &mut Plain, waves: usize) -> f64 {
    let stream = engine_stream(waves);
    let sessions = (waves * WAVE) as u64;
    let mut w = s.try_clone();
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        for c in stream.chunks(256 << 10) {
            if w.write_all(c).is_err() {
                break;
            }
        }
    });
    let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
    let mut buf = vec![0u8; 256 << 10];
    let (mut chokes, mut chunks) = (0u64, 0u64);
    'read: while chokes < sessions {
        let k = match s.read(&mut buf) {
            Ok(0) => panic!("the worker closed after {chokes} of {sessions} sessions"),
            Ok(k) => k,
            Err(e) => panic!("engine: {e}"),
        };
        dec.feed(&buf[..k]);
        loop {
            match dec.decode() {
                Ok(Some(f)) => match f.ty {
                    2 => chokes += 1,
                    0 => chunks += 1,
                    _ => {}
                },
                Ok(None) => break,
                Err(e) => {
                    eprintln!("engine: bad reply: {e}");
                    break 'read;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(chunks >= sessions * CHUNKS_PER_SESSION as u64, "{chunks} chunks echoed for {sessions} sessions");
    writer.join().expect("writer");
    s.shutdown(Shutdown::Both);
    secs
}
