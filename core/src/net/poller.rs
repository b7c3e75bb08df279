//! Poll-mode delivery: a queue of items plus a level-triggered file
//! descriptor that is readable exactly while the queue is not empty, so a
//! host event loop (select, epoll, asyncio's `add_reader`, libuv) can wait
//! on it and then take the items on its own thread, in batches.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

struct Queue<T> {
    items: VecDeque<T>,
    /// Bytes the queued items hold (payloads), for backpressure.
    bytes: usize,
}

/// A queue whose non-emptiness is signalled on a file descriptor.
pub(crate) struct Poller<T> {
    queue: Mutex<Queue<T>>,
    /// The read end is what the host polls; one byte sits in the pair while
    /// the queue is non-empty.
    rx: UnixStream,
    tx: UnixStream,
    /// Signalled when the queue falls below `limit` bytes.
    space: Notify,
    limit: usize,
}

impl<T> Poller<T> {
    /// A poller that asks producers to wait once `limit` bytes are queued.
    pub(crate) fn new(limit: usize) -> std::io::Result<Poller<T>> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Poller { queue: Mutex::new(Queue { items: VecDeque::new(), bytes: 0 }), rx, tx, space: Notify::new(), limit })
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The descriptor to poll for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Queues items (with the bytes they hold). Returns whether the queue is
    /// now over its limit, in which case the producer should
    /// [`wait_for_space`](Self::wait_for_space).
    pub(crate) fn push(&self, items: impl IntoIterator<Item = T>, bytes: usize) -> bool {
        let mut q = self.lock();
        let was_empty = q.items.is_empty();
        q.items.extend(items);
        q.bytes += bytes;
        if was_empty && !q.items.is_empty() {
            // The pair is empty whenever the queue is: this cannot block.
            let _ = (&self.tx).write(&[1]);
        }
        q.bytes > self.limit
    }

    /// Whether more than the limit is queued.
    pub(crate) fn over(&self) -> bool {
        self.lock().bytes > self.limit
    }

    /// Waits until the consumer has brought the queue under its limit.
    pub(crate) async fn wait_for_space(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().bytes <= self.limit {
                return;
            }
            notified.await;
        }
    }

    /// Takes up to `max` items; `size` tells the bytes each holds.
    pub(crate) fn take(&self, max: usize, size: impl Fn(&T) -> usize) -> Vec<T> {
        let mut q = self.lock();
        let n = q.items.len().min(max);
        let out: Vec<T> = q.items.drain(..n).collect();
        let freed: usize = out.iter().map(size).sum();
        let was_over = q.bytes > self.limit;
        q.bytes -= freed.min(q.bytes);
        if q.items.is_empty() {
            q.bytes = 0;
            let mut sink = [0u8; 16];
            while matches!((&self.rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        if was_over && q.bytes <= self.limit {
            self.space.notify_waiters();
        }
        out
    }

    /// Drops everything queued (after a close: nothing more is delivered).
    pub(crate) fn clear(&self) {
        let mut q = self.lock();
        q.items.clear();
        q.bytes = 0;
        let mut sink = [0u8; 16];
        while matches!((&self.rx).read(&mut sink), Ok(n) if n > 0) {}
        self.space.notify_waiters();
    }

    /// Whether anything is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }
}

/// Backpressure from a queue a channel does not own (a role's event queue):
/// the channel's read loop stops reading while the gate is over its limit.
pub(crate) trait Gate: Send + Sync {
    /// Whether reading should pause.
    fn over(&self) -> bool;
    /// Resolves when reading may go on.
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

impl<T: Send> Gate for Poller<T> {
    fn over(&self) -> bool {
        Poller::over(self)
    }

    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.wait_for_space())
    }
}

/// Locks a handler for a dispatch. Refused (`None`) when the handler is
/// busy: running on this thread (a dispatch from inside a callback) or
/// dispatched by another thread. A lock held for a moment by other work
/// (a close taking the handler away on an I/O thread) is waited out with
/// a few retries, so that it does not look like a concurrent dispatch.
pub(crate) fn lock_for_dispatch<T>(m: &std::sync::Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    for _ in 0..64 {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    None
}
