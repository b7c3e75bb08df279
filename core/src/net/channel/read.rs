//! The read loop: reads in batches, decodes them and delivers the events
//! (inline, or queued for poll mode), pausing while backpressure asks.

use super::*;

impl Channel {
    /// Reads and decodes until the connection fails; returns its errno.
    pub(super) async fn read_loop(&self, sock: &Sock) -> i32 {
        let c = &self.inner.config;
        let mut dec = Decoder::new(DecoderConfig {
            dialect: c.dialect,
            max_frame_size: c.max_frame_size,
            header_table_size: c.header_table_size,
            lenient: c.lenient,
        });
        // Reads start at `FIRST_READ` and grow (fourfold) each time a read
        // fills the buffer, up to `read_size`: a connection that carries
        // small messages never holds a `read_size` buffer, and churning
        // connections do not churn the allocator with them (whose freed
        // large blocks stay resident in its arenas).
        let read_size = c.read_size.max(4096);
        let mut want = read_size.min(FIRST_READ);
        let mut recs = Vec::new();
        let mut events = Vec::new();
        // When the unfinished frame at the end of the buffer started (or
        // the last frame before it completed): what `frame_timeout` counts.
        let mut frame_since: Option<tokio::time::Instant> = None;
        loop {
            let buf = dec.buffer_mut();
            if buf.capacity() - buf.len() < want / 4 {
                buf.reserve(want);
            }
            let spare = buf.capacity() - buf.len();
            let deadline =
                [frame_since.zip(c.frame_timeout).map(|(t, d)| t + d), c.read_idle_timeout.map(|d| tokio::time::Instant::now() + d)]
                    .into_iter()
                    .flatten()
                    .min();
            let read = sock.read_buf(buf);
            let res = match deadline {
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r,
                    Err(_) => return errno::ETIMEDOUT,
                },
                None => read.await,
            };
            let n = match res {
                Ok(n) => n,
                Err(e) => return errno_of(&e),
            };
            if n >= spare && want < read_size {
                want = (want * 4).min(read_size);
            }
            let dropped = dec.dropped();
            if n > 0 {
                // A tick of the loop has passed: the first send (from the
                // handler, or from a thread it wakes) may write directly.
                lock(&self.inner.tx).idle = true;
            }
            let mut delivered = false;
            let failed = loop {
                let (batch, failed) = self.decode_batch(&mut dec, &mut recs, &mut events);
                if recs.is_empty() {
                    break failed;
                }
                delivered = true;
                let over = self.deliver_batch(&batch, &mut recs, &mut events);
                drop(batch);
                if over {
                    if let Some(p) = &self.inner.poller {
                        p.wait_for_space().await;
                    }
                } else if let Some(g) = self.inner.gate.get() {
                    if g.over() {
                        g.wait().await;
                    }
                }
                if self.inner.config.pause_reads_on_full_queue {
                    self.wait_for_room().await;
                }
                if failed.is_some() {
                    break failed;
                }
            };
            if delivered && self.inner.poller.is_none() {
                self.batch_end();
            }
            let progress = delivered || dec.dropped() != dropped;
            frame_since = match dec.partial() {
                0 => None,
                _ if progress || frame_since.is_none() => Some(tokio::time::Instant::now()),
                _ => frame_since,
            };
            if let Some(e) = failed {
                return e;
            }
            if n == 0 {
                return errno::ESHUTDOWN;
            }
        }
    }

    /// Takes frames from the decoder until a run of in-place frames ends,
    /// and cuts the run out: chunks stay in it as `Rec::Chunk`s,
    /// everything else becomes an event. Returns the run's bytes, and the
    /// errno if the stream turned out to be bad.
    pub(super) fn decode_batch(&self, dec: &mut Decoder, recs: &mut Vec<Rec>, events: &mut Vec<Event>) -> (Bytes, Option<i32>) {
        let mut session = self.inner.session.as_ref().map(|s| lock(s));
        let mut pending = Vec::new();
        loop {
            let Some(s) = session.as_deref_mut() else {
                // Without a role every frame is an event, built once the
                // run is cut.
                if dec.decode_run(|r| {
                    pending.push(r);
                    true
                }) > 0
                {
                    let batch = dec.take_batch();
                    events.extend(pending.iter().map(|r| Event::Frame(r.to_frame(&batch))));
                    recs.extend(pending.iter().map(|_| Rec::Event));
                    return (batch, None);
                }
                match dec.decode_in_place() {
                    Ok(Some(InPlace::Owned(frame))) => {
                        events.push(Event::Frame(frame));
                        recs.push(Rec::Event);
                        continue;
                    }
                    Ok(Some(InPlace::Ref(r))) => {
                        let batch = dec.take_batch();
                        events.push(Event::Frame(r.to_frame(&batch)));
                        recs.push(Rec::Event);
                        return (batch, None);
                    }
                    Ok(None) => return (Bytes::new(), None),
                    Err(e) => return (Bytes::new(), Some(e.errno())),
                }
            };
            // Chunks stay in the run; anything else ends it, so that its
            // message is read (and the session state follows it) before
            // the next frame is looked at.
            let mut last = None;
            let n = dec.decode_run(|r| {
                let kind = s.classify(r.session, r.ty);
                if let (Ok(Kind::Chunk), Some(b)) = (&kind, r.first_bytes()) {
                    recs.push(Rec::Chunk { session: r.session, start: b.start, end: b.end });
                    return true;
                }
                last = Some((r, kind));
                false
            });
            if n > 0 {
                let batch = dec.take_batch();
                if let Some((r, kind)) = last {
                    let frame = r.to_frame(&batch);
                    events.push(match kind {
                        Ok(kind) => match s.receive_classified(kind, frame) {
                            Ok((session, message, headers)) => Event::Message { session, message, headers },
                            Err((frame, _)) => Event::Frame(frame),
                        },
                        Err(_) => Event::Frame(frame),
                    });
                    recs.push(Rec::Event);
                }
                return (batch, None);
            }
            let frame = match dec.decode_in_place() {
                Ok(Some(InPlace::Owned(frame))) => frame,
                // decode_run takes every frame that could come in place.
                Ok(Some(InPlace::Ref(r))) => r.to_frame(&dec.take_batch()),
                Ok(None) => return (Bytes::new(), None),
                Err(e) => return (Bytes::new(), Some(e.errno())),
            };
            events.push(match s.receive_owned(frame) {
                Ok((session, message, headers)) => Event::Message { session, message, headers },
                Err((frame, _)) => Event::Frame(frame),
            });
            recs.push(Rec::Event);
        }
    }

    /// Delivers a decoded batch (see [`deliver`](Self::deliver)). Empties
    /// `recs` and `events`.
    pub(super) fn deliver_batch(&self, batch: &Bytes, recs: &mut Vec<Rec>, events: &mut Vec<Event>) -> bool {
        if self.inner.silenced.load(Ordering::Acquire) {
            recs.clear();
            events.clear();
            return false;
        }
        match &self.inner.poller {
            Some(p) => {
                let chunk_bytes: usize = recs
                    .iter()
                    .map(|r| match r {
                        Rec::Chunk { start, end, .. } => end - start,
                        Rec::Event => 0,
                    })
                    .sum();
                let bytes = chunk_bytes + events.iter().map(Event::bytes).sum::<usize>();
                let mut owned = events.drain(..);
                let queued = recs.drain(..).filter_map(|r| match r {
                    Rec::Chunk { session, start, end } => {
                        Some(Event::Message { session, message: Message::Chunk { data: batch.slice(start..end) }, headers: Vec::new() })
                    }
                    Rec::Event => owned.next(),
                });
                p.push(queued, bytes)
            }
            None => {
                let mut h = lock(&self.inner.handler);
                if let Some(h) = h.as_mut() {
                    let mut owned = events.drain(..);
                    for r in recs.drain(..) {
                        if self.inner.silenced.load(Ordering::Acquire) {
                            break;
                        }
                        match r {
                            Rec::Chunk { session, start, end } => h.on_chunk(self, Chunk::borrowed(session, batch, start, end)),
                            Rec::Event => {
                                if let Some(ev) = owned.next() {
                                    handle(h.as_mut(), self, ev);
                                }
                            }
                        }
                    }
                }
                recs.clear();
                events.clear();
                false
            }
        }
    }

    /// With [`ChannelConfig::pause_reads_on_full_queue`]: while the send
    /// queue is at or over the high watermark, waits until the writer has
    /// brought it down to the low watermark (or the channel stops taking
    /// sends).
    pub(super) async fn wait_for_room(&self) {
        loop {
            {
                let mut tx = lock(&self.inner.tx);
                if tx.state != TxState::Open || tx.queued() < self.inner.config.high_watermark {
                    tx.reader_waiting = false;
                    return;
                }
                tx.reader_waiting = true;
            }
            // `notify_one` keeps a permit: a wake-up between the check
            // and this wait is not lost.
            self.inner.room.notified().await;
        }
    }

    /// Whether the paused read loop should be woken now (and marks it).
    pub(super) fn room_due(&self, tx: &mut Tx) -> bool {
        if tx.reader_waiting && (tx.queued() <= self.inner.config.low_watermark || tx.state != TxState::Open) {
            tx.reader_waiting = false;
            return true;
        }
        false
    }

    /// Inline: tells the handler a run of events is over.
    pub(super) fn batch_end(&self) {
        if let Some(h) = lock(&self.inner.handler).as_mut() {
            h.on_batch_end(self);
        }
    }

    /// Hands events to the handler (inline) or the poll queue. Returns
    /// whether the poll queue is over its limit.
    pub(super) fn deliver(&self, events: &mut Vec<Event>) -> bool {
        if self.inner.silenced.load(Ordering::Acquire) {
            events.clear();
            return false;
        }
        match &self.inner.poller {
            Some(p) => {
                let bytes = events.iter().map(Event::bytes).sum();
                p.push(events.drain(..), bytes)
            }
            None => {
                let mut h = lock(&self.inner.handler);
                if let Some(h) = h.as_mut() {
                    for ev in events.drain(..) {
                        if self.inner.silenced.load(Ordering::Acquire) {
                            break;
                        }
                        handle(h.as_mut(), self, ev);
                    }
                    h.on_batch_end(self);
                }
                events.clear();
                false
            }
        }
    }
}
