//! The connected socket shared by the reader, the writer and direct sends,
//! and dialling an endpoint.

use super::*;

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Resolves once the abort flag is set.
pub(super) async fn aborted(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|a| *a).await;
}

/// `sendmsg(2)` with `MSG_NOSIGNAL`.
fn send_nosignal(fd: RawFd, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix; the message
    // header only points at `iov`, which outlives the call; `fd` is open.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connected socket shared by the reader, the writer and direct sends.
pub(crate) struct Sock(pub(super) Stream);

impl Sock {
    pub(super) async fn read_buf(&self, buf: &mut bytes::BytesMut) -> std::io::Result<usize> {
        use tokio::io::Interest;
        // A read that does not fill the space offered has emptied the
        // socket: the readiness seen before it is cleared, so the next read
        // waits for new data instead of first failing with EAGAIN (a system
        // call saved per message in a request/response exchange). The read
        // runs inside `try_io`, which clears readiness only if no new event
        // came after it was observed: data arriving meanwhile is not missed.
        loop {
            let room = buf.capacity() - buf.len();
            let mut got = None;
            let mut read = |r: std::io::Result<usize>| match r {
                Ok(n) if n > 0 && n < room => {
                    got = Some(n);
                    Err(std::io::ErrorKind::WouldBlock.into())
                }
                r => r,
            };
            let r = match &self.0 {
                Stream::Tcp(s) => {
                    s.readable().await?;
                    s.try_io(Interest::READABLE, || read(s.try_read_buf(buf)))
                }
                Stream::Unix(s) => {
                    s.readable().await?;
                    s.try_io(Interest::READABLE, || read(s.try_read_buf(buf)))
                }
            };
            if let Some(n) = got {
                return Ok(n);
            }
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// A non-blocking vectored write that never raises SIGPIPE: a peer
    /// that has gone gives `EPIPE`, whatever the host does with the signal
    /// (a C program's default is to die of it).
    pub(super) fn try_write_vectored(&self, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        use tokio::io::Interest;
        match &self.0 {
            Stream::Tcp(s) => s.try_io(Interest::WRITABLE, || send_nosignal(s.as_raw_fd(), iov)),
            Stream::Unix(s) => s.try_io(Interest::WRITABLE, || send_nosignal(s.as_raw_fd(), iov)),
        }
    }

    pub(super) async fn write_vectored(&self, iov: &[IoSlice<'_>]) -> std::io::Result<usize> {
        loop {
            match &self.0 {
                Stream::Tcp(s) => s.writable().await?,
                Stream::Unix(s) => s.writable().await?,
            }
            match self.try_write_vectored(iov) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    pub(super) fn shutdown_write(&self) {
        use std::os::fd::AsRawFd;
        let fd = match &self.0 {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        };
        // SAFETY: `fd` is this socket's open descriptor; shutdown(2) does not
        // close it or touch memory.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    }
}

pub(super) async fn dial(endpoint: &Endpoint) -> Result<Stream, i32> {
    match endpoint {
        Endpoint::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix).map_err(|e| errno_of(&e)),
        Endpoint::Tcp(host, port) => {
            // A name that does not resolve, or resolves to no address.
            let addrs = tokio::net::lookup_host((host.as_str(), *port)).await.map_err(|_| errno::ENOTFOUND)?;
            let mut last = errno::ENOTFOUND;
            for a in addrs {
                match TcpStream::connect(a).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = errno_of(&e),
                }
            }
            Err(last)
        }
    }
}
