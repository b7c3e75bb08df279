//! The send side: the bounded queue, direct writes from the sending thread,
//! and the writer task that flushes what is queued.

use super::*;

impl Channel {
    /// Writes whatever is queued, until closed (`None`) or failed.
    pub(super) async fn write_loop(&self, sock: &Sock) -> Option<i32> {
        loop {
            enum Next {
                Write(crate::wire::OutBuf),
                Wait,
                Shutdown,
            }
            let next = {
                let mut tx = lock(&self.inner.tx);
                tx.woken = false;
                if let Some(e) = tx.error.take() {
                    return Some(e);
                }
                if !tx.enc.out().is_empty() {
                    let spare = tx.spare.take().unwrap_or_default();
                    let out = std::mem::replace(tx.enc.out(), spare);
                    tx.inflight = out.remaining();
                    Next::Write(out)
                } else if tx.state == TxState::Closing {
                    tx.state = TxState::Closed;
                    Next::Shutdown
                } else {
                    tx.idle = true;
                    Next::Wait
                }
            };
            let mut out = match next {
                Next::Write(out) => out,
                Next::Wait => {
                    self.inner.wake_writer.notified().await;
                    continue;
                }
                Next::Shutdown => {
                    sock.shutdown_write();
                    return None;
                }
            };
            while out.has_remaining() {
                let mut iov = [IoSlice::new(&[]); 64];
                let k = out.chunks_vectored(&mut iov);
                match sock.write_vectored(&iov[..k]).await {
                    Ok(0) => return Some(errno::EPIPE),
                    Ok(n) => {
                        out.advance(n);
                        let (drained, room) = {
                            let mut tx = lock(&self.inner.tx);
                            tx.inflight -= n;
                            if !out.has_remaining() && tx.spare.is_none() {
                                out.reset();
                                tx.spare = Some(std::mem::take(&mut out));
                            }
                            (self.drain_due(&mut tx), self.room_due(&mut tx))
                        };
                        if room {
                            self.inner.room.notify_one();
                        }
                        if drained {
                            self.deliver(&mut vec![Event::Drain]);
                        }
                    }
                    Err(e) => return Some(errno_of(&e)),
                }
            }
        }
    }

    /// Whether a drain notice is due now (and marks it given).
    pub(super) fn drain_due(&self, tx: &mut Tx) -> bool {
        if tx.want_drain && tx.queued() <= self.inner.config.low_watermark {
            tx.want_drain = false;
            return true;
        }
        false
    }

    // ------------------------------------------------------------------
    // Sending

    pub(super) fn with_tx(&self, f: impl FnOnce(&mut Encoder)) -> Result<(), SendError> {
        let mut tx = lock(&self.inner.tx);
        if tx.state != TxState::Open {
            return Err(SendError::Closed);
        }
        if tx.queued() >= self.inner.config.high_watermark {
            tx.want_drain = true;
            return Err(SendError::WouldBlock);
        }
        self.queue_locked(tx, f);
        Ok(())
    }

    /// Queues what `f` encodes whatever the high watermark (a served
    /// call's reply, which has nowhere else to go), up to
    /// [`ChannelConfig::max_queued`]: past it the connection ends with
    /// `ENOBUFS` (the owner's [`Event::SocketError`], a close the peer
    /// sees) and the send is refused with [`SendError::Closed`].
    pub(super) fn with_tx_unrefused(&self, f: impl FnOnce(&mut Encoder)) -> Result<(), SendError> {
        let mut tx = lock(&self.inner.tx);
        if tx.state != TxState::Open {
            return Err(SendError::Closed);
        }
        if tx.queued() >= self.inner.config.max_queued {
            drop(tx);
            self.fail(errno::ENOBUFS);
            return Err(SendError::Closed);
        }
        self.queue_locked(tx, f);
        Ok(())
    }

    pub(super) fn queue_locked(&self, mut tx: MutexGuard<'_, Tx>, f: impl FnOnce(&mut Encoder)) {
        f(&mut tx.enc);
        // A lone message on an idle connection is written at once from this
        // thread: no hop to the I/O thread, which is what a round trip
        // costs. Under load the writer is busy and messages coalesce.
        if tx.idle && tx.inflight == 0 {
            if let Some(sock) = tx.sock.clone() {
                tx.idle = false;
                let out = tx.enc.out();
                let mut iov = [IoSlice::new(&[]); 64];
                let k = out.chunks_vectored(&mut iov);
                // An error is left for the writer to report.
                match sock.try_write_vectored(&iov[..k]) {
                    Ok(n) => out.advance(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => tx.error = Some(errno_of(&e)),
                }
                if tx.enc.out().is_empty() {
                    return;
                }
            }
        }
        let wake = !tx.woken;
        tx.woken = true;
        drop(tx);
        if wake {
            self.inner.wake_writer.notify_one();
        }
    }

    /// Queues a generic frame that is not refused at the high watermark:
    /// see [`ChannelConfig::max_queued`].
    pub(crate) fn send_frame_unrefused(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.with_tx_unrefused(|e| e.frame(session, ty, args, headers))
    }

    /// Whether a send would be refused now for a full queue. If so, a
    /// [`Event::Drain`] is delivered once the queue is down to the low
    /// watermark.
    pub(crate) fn is_full(&self) -> bool {
        let mut tx = lock(&self.inner.tx);
        let full = tx.state == TxState::Open && tx.queued() >= self.inner.config.high_watermark;
        if full {
            tx.want_drain = true;
        }
        full
    }

    /// Queues pre-encoded bytes (whole frames) as they are.
    pub fn send_raw(&self, bytes: Bytes) -> Result<(), SendError> {
        self.with_tx(|e| e.raw(bytes))
    }

    /// Queues pre-encoded bytes given in segments (for example an
    /// [`OutBuf`](crate::wire::OutBuf)'s), all or none; long segments are
    /// queued without a copy.
    pub fn send_raw_segments(&self, segments: &[Bytes]) -> Result<(), SendError> {
        self.with_tx(|e| e.raw_segments(segments))
    }

    /// Queues a typed worker-protocol message on `session`.
    pub fn send(&self, session: u64, message: &Message) -> Result<(), SendError> {
        self.send_with_headers(session, message, &[])
    }

    /// Queues a typed message with v1 headers.
    pub fn send_with_headers(&self, session: u64, message: &Message, headers: &[Header]) -> Result<(), SendError> {
        // Recorded before the bytes can reach the peer: a direct write can
        // bring its answer back to the read loop before this call returns.
        if let Some(s) = &self.inner.session {
            lock(s).sent(session, message.kind());
        }
        self.with_tx(|e| e.message(session, message, headers))
    }

    /// Queues a chunk (v0 `chunk`, v1 `write`); large payloads are not copied.
    pub fn send_chunk(&self, session: u64, data: &Bytes) -> Result<(), SendError> {
        self.with_tx(|e| e.chunk(session, data, &[]))
    }

    /// Queues a generic frame.
    pub fn send_frame(&self, session: u64, ty: u64, args: &Args, headers: &[Header]) -> Result<(), SendError> {
        self.with_tx(|e| e.frame(session, ty, args, headers))
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        lock(&self.inner.tx).queued()
    }
}
