//! The server: listens on a TCP or Unix endpoint and hands each accepted
//! connection to its owner, who starts a [`Channel`] on it.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use super::channel::{Channel, Handler, Stream};
use super::config::{ChannelConfig, Delivery, Endpoint};
use super::poller::Poller;
use super::runtime;

/// An accepted connection, not yet read from. Start it with a handler, or
/// drop it to close the connection.
pub struct Incoming {
    stream: Stream,
    peer: String,
    config: ChannelConfig,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl Incoming {
    /// The peer's address (`ip:port`, or the socket path for Unix peers,
    /// often empty).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The settings the channel will have; change them before `start`.
    pub fn config_mut(&mut self) -> &mut ChannelConfig {
        &mut self.config
    }

    /// Starts the channel: reading begins, and `handler` gets
    /// [`Event::Connected`](super::Event::Connected) first.
    pub fn start(self, handler: impl Handler) -> std::io::Result<Channel> {
        Channel::start(self.stream, self.config, Box::new(handler))
    }
}

/// Receives a server's accepted connections.
pub trait AcceptHandler: Send + 'static {
    /// A connection was accepted. Runs on an I/O thread (inline delivery)
    /// or in [`Server::dispatch`] (poll delivery).
    fn on_accept(&mut self, server: &Server, incoming: Incoming);
}

impl<F: FnMut(&Server, Incoming) + Send + 'static> AcceptHandler for F {
    fn on_accept(&mut self, server: &Server, incoming: Incoming) {
        self(server, incoming)
    }
}

struct Inner {
    local: Endpoint,
    handler: Mutex<Option<Box<dyn AcceptHandler>>>,
    poller: Option<Poller<Incoming>>,
    stop: watch::Sender<bool>,
    closed: AtomicBool,
    /// A Unix socket file this server created (path, device and inode),
    /// removed on close if it is still that file.
    unlink: Option<(std::path::PathBuf, (u64, u64))>,
}

/// A listening socket. Cheap to clone; listens until [`close`](Server::close).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local", &self.inner.local).finish_non_exhaustive()
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Server {
    /// Listens on `endpoint` (TCP port 0 picks a free port: see
    /// [`local`](Server::local)). Accepted channels get `config`;
    /// `config.delivery` also says how accepts are delivered.
    ///
    /// A Unix path is taken only if nothing is there or it holds a stale
    /// socket (one nothing answers on), which is replaced. A path that
    /// holds anything else (a regular file, a directory, a link) is left
    /// alone and the bind fails with `AlreadyExists`; a socket that a live
    /// server answers on fails it with `AddrInUse`. The socket file is
    /// removed on [`close`](Server::close) unless another file has taken
    /// its place.
    pub fn bind(endpoint: &Endpoint, config: ChannelConfig, handler: impl AcceptHandler) -> std::io::Result<Server> {
        let rt = runtime::handle()?;
        let _guard = rt.enter();
        let (listener, local, unlink) = match endpoint {
            Endpoint::Tcp(host, port) => {
                let l = std::net::TcpListener::bind((host.as_str(), *port))?;
                l.set_nonblocking(true)?;
                let addr = l.local_addr()?;
                (Listener::Tcp(TcpListener::from_std(l)?), Endpoint::Tcp(addr.ip().to_string(), addr.port()), None)
            }
            Endpoint::Unix(path) => {
                replace_stale_socket(path)?;
                let l = std::os::unix::net::UnixListener::bind(path)?;
                l.set_nonblocking(true)?;
                let id = file_id(path);
                (Listener::Unix(UnixListener::from_std(l)?), endpoint.clone(), id.map(|id| (path.clone(), id)))
            }
        };
        let poller = match config.delivery {
            Delivery::Poll => Some(Poller::new(usize::MAX)?),
            Delivery::Inline => None,
        };
        let (stop, mut stopped) = watch::channel(false);
        let server = Server {
            inner: Arc::new(Inner {
                local,
                handler: Mutex::new(Some(Box::new(handler))),
                poller,
                stop,
                closed: AtomicBool::new(false),
                unlink,
            }),
        };
        let task = server.clone();
        rt.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = accept(&listener) => a,
                    _ = stopped.wait_for(|s| *s) => break,
                };
                match accepted {
                    Ok((stream, peer)) => task.deliver(Incoming { stream, peer, config: config.clone() }),
                    // Out of descriptors and the like: wait a little, go on.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
        Ok(server)
    }

    fn deliver(&self, incoming: Incoming) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        match &self.inner.poller {
            Some(p) => {
                p.push([incoming], 0);
            }
            None => {
                let mut h = self.inner.handler.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(h) = h.as_mut() {
                    h.on_accept(self, incoming);
                }
            }
        }
    }

    /// Where the server listens (with the actual port when bound to 0).
    pub fn local(&self) -> &Endpoint {
        &self.inner.local
    }

    /// Poll mode: the descriptor that is readable while accepts wait.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.poller.as_ref().map(Poller::fd)
    }

    /// Poll mode: runs the accept handler on this thread for up to `max`
    /// waiting connections; returns how many.
    pub fn dispatch(&self, max: usize) -> Result<usize, super::DispatchError> {
        let p = self.inner.poller.as_ref().ok_or(super::DispatchError::NotPolled)?;
        let mut h = super::poller::lock_for_dispatch(&self.inner.handler).ok_or(super::DispatchError::Reentrant)?;
        let items = p.take(max, |_| 0);
        let n = items.len();
        if let Some(h) = h.as_mut() {
            for i in items {
                h.on_accept(self, i);
            }
        }
        Ok(n)
    }

    /// Stops listening (channels already accepted stay open) and removes the
    /// Unix socket file it created.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.stop.send_replace(true);
        if let Some(p) = &self.inner.poller {
            p.clear();
        }
        if let Ok(mut h) = self.inner.handler.try_lock() {
            h.take();
        }
        if let Some((path, id)) = &self.inner.unlink {
            // Not a file that has taken its place since.
            if file_id(path) == Some(*id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The device and inode of the file at `path` (not following a link).
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Makes way for a Unix listening socket at `path`: removes a socket file
/// nothing answers on; refuses a live socket and anything that is not a
/// socket.
fn replace_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket: not replaced (remove it or choose another path)", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(Error::new(ErrorKind::AddrInUse, format!("a server is listening on {}", path.display()))),
        // Nothing listens: a socket left by a server that has gone.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(Error::new(e.kind(), format!("{}: {e}; not replaced", path.display()))),
    }
}

async fn accept(l: &Listener) -> std::io::Result<(Stream, String)> {
    match l {
        Listener::Tcp(l) => {
            let (s, a) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Stream::Tcp(s), a.to_string()))
        }
        Listener::Unix(l) => {
            let (s, a) = l.accept().await?;
            let peer = a.as_pathname().map(|p| p.display().to_string()).unwrap_or_default();
            Ok((Stream::Unix(s), peer))
        }
    }
}
