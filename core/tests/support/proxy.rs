//! A fault-injecting proxy for tests: a real TCP or Unix listener that
//! forwards each accepted connection to an upstream endpoint byte for byte,
//! except for the one fault it was told to inject — split, delay, truncate,
//! corrupt a byte, stop reading, reset, half-close (each at a chosen byte
//! offset of one direction of one connection), or hold one connection's
//! writes back until a later connection has written (reordering writes
//! across connections).
//!
//! Plain blocking sockets and two threads per connection: nothing here
//! shares code with the library under test.
#![allow(dead_code)] // each test file uses a part of it

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sluice_core::net::Endpoint;

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the connecting client to the upstream server.
    Up,
    /// From the upstream server back to the client.
    Down,
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: a plain relay.
    None,
    /// Every read is forwarded in writes of at most this many bytes, with a
    /// pause between them so that they arrive as separate reads.
    Split(usize),
    /// Every read is held this long before it is forwarded.
    Delay(Duration),
    /// The connection is cut (FIN both ways) once this many bytes have
    /// passed; the bytes from that offset on are lost.
    Truncate(usize),
    /// The byte at this offset is XORed with the mask.
    Corrupt(usize, u8),
    /// The proxy stops reading once this many bytes have passed, until
    /// [`Proxy::resume`].
    StopReading(usize),
    /// Both sides are reset (RST over TCP) once this many bytes have passed.
    Reset(usize),
    /// The proxy ends this direction (FIN towards the receiver) once this
    /// many bytes have passed; the other direction keeps flowing.
    HalfClose(usize),
    /// The first connection's writes in this direction are held back until
    /// the second connection has forwarded at least one write.
    Reorder,
}

/// Where and when the fault applies.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The fault.
    pub fault: Fault,
    /// The direction it applies to.
    pub dir: Dir,
    /// The accepted connection it applies to (0: the first). `Reorder`
    /// always holds connection 0 back for connection 1.
    pub conn: usize,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A connected socket of either kind.
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) => (&*s).read(buf),
        }
    }
    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => (&*s).write_all(buf),
            Sock::Unix(s) => (&*s).write_all(buf),
        }
    }
    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(how),
            Sock::Unix(s) => s.shutdown(how),
        };
    }
    /// Makes the last close send an RST (TCP); a Unix socket closed with
    /// unread input resets its peer's reads too.
    fn linger_zero(&self) {
        use std::os::fd::AsRawFd;
        if let Sock::Tcp(s) = self {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid option struct for an open socket.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &linger as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}

fn dial(ep: &Endpoint) -> std::io::Result<Sock> {
    Ok(match ep {
        Endpoint::Tcp(h, p) => {
            let s = TcpStream::connect((h.as_str(), *p))?;
            s.set_nodelay(true)?;
            Sock::Tcp(s)
        }
        Endpoint::Unix(p) => Sock::Unix(UnixStream::connect(p)?),
    })
}

struct Shared {
    plan: Plan,
    stopped: AtomicBool,
    resumed: Mutex<bool>,
    resume_cv: Condvar,
    /// Connection 1 has forwarded a write (for `Reorder`).
    second_wrote: Mutex<bool>,
    second_cv: Condvar,
    accepted: AtomicUsize,
    /// Bytes forwarded per (connection, direction).
    forwarded: Mutex<Vec<[usize; 2]>>,
}

/// A running proxy. Dropping it stops accepting; connections in progress
/// run until either side ends them.
pub struct Proxy {
    endpoint: Endpoint,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a fresh TCP port of 127.0.0.1 (or a fresh Unix path when
    /// `upstream` is a Unix endpoint) and relays to `upstream` with `plan`.
    pub fn start(upstream: Endpoint, plan: Plan) -> Proxy {
        let (listener, endpoint) = match &upstream {
            Endpoint::Tcp(..) => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                (Listener::Tcp(l), Endpoint::Tcp("127.0.0.1".into(), port))
            }
            Endpoint::Unix(p) => {
                let path = PathBuf::from(format!("{}.proxy", p.display()));
                let _ = std::fs::remove_file(&path);
                (Listener::Unix(UnixListener::bind(&path).unwrap(), path.clone()), Endpoint::Unix(path))
            }
        };
        let shared = Arc::new(Shared {
            plan,
            stopped: AtomicBool::new(false),
            resumed: Mutex::new(false),
            resume_cv: Condvar::new(),
            second_wrote: Mutex::new(false),
            second_cv: Condvar::new(),
            accepted: AtomicUsize::new(0),
            forwarded: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        std::thread::spawn(move || loop {
            let client = match &listener {
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Sock::Tcp(s)
                }),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Sock::Unix(s)),
            };
            if sh.stopped.load(Ordering::Acquire) {
                if let Listener::Unix(_, p) = &listener {
                    let _ = std::fs::remove_file(p);
                }
                return;
            }
            let Ok(client) = client else { continue };
            let Ok(server) = dial(&upstream) else { continue };
            let conn = sh.accepted.fetch_add(1, Ordering::AcqRel);
            sh.forwarded.lock().unwrap().push([0, 0]);
            let link = Arc::new(Link { client, server, dead: AtomicBool::new(false) });
            for dir in [Dir::Up, Dir::Down] {
                let (sh, link) = (sh.clone(), link.clone());
                std::thread::spawn(move || pump(&sh, &link, conn, dir));
            }
        });
        Proxy { endpoint, shared }
    }

    /// Where clients connect.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    /// Ends a `StopReading` fault: the proxy reads and forwards again.
    pub fn resume(&self) {
        *self.shared.resumed.lock().unwrap() = true;
        self.shared.resume_cv.notify_all();
    }

    /// Bytes forwarded so far on `conn` in `dir`.
    pub fn forwarded(&self, conn: usize, dir: Dir) -> usize {
        self.shared.forwarded.lock().unwrap().get(conn).map_or(0, |f| f[dir as usize])
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Acquire)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.resume();
        // Wake the accept loop.
        let _ = dial(&self.endpoint);
    }
}

struct Link {
    client: Sock,
    server: Sock,
    /// Reset or cut: the pumps stop without another word.
    dead: AtomicBool,
}

impl Link {
    fn ends(&self, dir: Dir) -> (&Sock, &Sock) {
        match dir {
            Dir::Up => (&self.client, &self.server),
            Dir::Down => (&self.server, &self.client),
        }
    }

    /// Cuts both connections: FIN both ways.
    fn cut(&self) {
        self.dead.store(true, Ordering::Release);
        self.client.shutdown(Shutdown::Both);
        self.server.shutdown(Shutdown::Both);
    }

    /// Resets both connections: RST when the sockets close, which happens
    /// when both pumps have let go of the link; SHUT_RD wakes the other
    /// pump's read without sending anything.
    fn reset(&self) {
        self.dead.store(true, Ordering::Release);
        self.client.linger_zero();
        self.server.linger_zero();
        self.client.shutdown(Shutdown::Read);
        self.server.shutdown(Shutdown::Read);
    }
}

fn pump(sh: &Shared, link: &Link, conn: usize, dir: Dir) {
    let (src, dst) = link.ends(dir);
    let plan = sh.plan;
    let fault = if plan.dir == dir && (plan.conn == conn || plan.fault == Fault::Reorder) { plan.fault } else { Fault::None };
    let mut buf = vec![0u8; 64 << 10];
    let mut off = 0usize;
    let mut half_closed = false;
    loop {
        if let Fault::StopReading(at) = fault {
            if off >= at {
                let mut r = sh.resumed.lock().unwrap();
                while !*r {
                    r = sh.resume_cv.wait(r).unwrap();
                }
            }
        }
        let n = src.read(&mut buf).unwrap_or(0);
        if link.dead.load(Ordering::Acquire) {
            return;
        }
        if n == 0 {
            if !half_closed {
                dst.shutdown(Shutdown::Write);
            }
            return;
        }
        if half_closed {
            continue; // read and discard: the receiver has seen our FIN
        }
        let data = &mut buf[..n];
        // How much of this read goes through before an offset fault fires.
        let mut pass = n;
        match fault {
            Fault::Corrupt(at, mask) if (off..off + n).contains(&at) => data[at - off] ^= mask,
            Fault::Truncate(at) | Fault::Reset(at) | Fault::HalfClose(at) | Fault::StopReading(at) if off + n > at => {
                pass = at.saturating_sub(off)
            }
            _ => {}
        }
        let ok = match fault {
            Fault::Split(k) => data[..pass].chunks(k.max(1)).all(|piece| {
                std::thread::sleep(Duration::from_micros(200));
                dst.write_all(piece).is_ok()
            }),
            Fault::Delay(d) => {
                std::thread::sleep(d);
                dst.write_all(&data[..pass]).is_ok()
            }
            Fault::Reorder if conn == 0 => {
                // Held until connection 1 has written.
                let mut g = sh.second_wrote.lock().unwrap();
                while !*g && !sh.stopped.load(Ordering::Acquire) {
                    g = sh.second_cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
                }
                drop(g);
                dst.write_all(data).is_ok()
            }
            _ => dst.write_all(&data[..pass]).is_ok(),
        };
        if fault == Fault::Reorder && conn == 1 {
            *sh.second_wrote.lock().unwrap() = true;
            sh.second_cv.notify_all();
        }
        if !ok {
            link.cut();
            return;
        }
        off += pass;
        sh.forwarded.lock().unwrap()[conn][dir as usize] += pass;
        if pass < n {
            match fault {
                Fault::Truncate(_) => {
                    link.cut();
                    return;
                }
                Fault::Reset(_) => {
                    link.reset();
                    return;
                }
                Fault::HalfClose(_) => {
                    dst.shutdown(Shutdown::Write);
                    half_closed = true;
                }
                Fault::StopReading(_) => {
                    // The rest of this read waits with the proxy.
                    let rest = data[pass..].to_vec();
                    let mut r = sh.resumed.lock().unwrap();
                    while !*r {
                        r = sh.resume_cv.wait(r).unwrap();
                    }
                    drop(r);
                    if dst.write_all(&rest).is_err() {
                        link.cut();
                        return;
                    }
                    off += rest.len();
                    sh.forwarded.lock().unwrap()[conn][dir as usize] += rest.len();
                }
                _ => {}
            }
        }
    }
}
