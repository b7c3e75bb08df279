//! Delivery of a role's own events (roles that outlive one connection or
//! gather several): inline on an I/O thread, or queued behind a pollable
//! descriptor for the host to dispatch, like a channel's.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::net::poller::{Gate, Poller};
use crate::net::{Channel, Delivery, DispatchError};

type Callback<O, E> = Box<dyn FnMut(&O, E) + Send>;

pub(crate) struct Sink<O, E> {
    handler: Mutex<Option<Callback<O, E>>>,
    /// Events with the bytes they hold.
    poller: Option<Arc<Poller<(E, usize)>>>,
    /// Closed by the owner: nothing more is delivered.
    silenced: AtomicBool,
}

impl<O, E: Send + 'static> Sink<O, E> {
    /// `limit`: in poll mode, the bytes of queued events past which the
    /// channels feeding the sink stop reading (see [`gate`](Self::gate)).
    pub(crate) fn new(delivery: Delivery, limit: usize, handler: Callback<O, E>) -> std::io::Result<Self> {
        let poller = match delivery {
            Delivery::Poll => Some(Arc::new(Poller::new(limit)?)),
            Delivery::Inline => None,
        };
        Ok(Sink { handler: Mutex::new(Some(handler)), poller, silenced: AtomicBool::new(false) })
    }

    /// Delivers one event (inline: runs the handler now, on this thread;
    /// poll: queues it). Never call it from a path the handler can reach
    /// synchronously: the handler's lock is not reentrant.
    pub(crate) fn emit(&self, owner: &O, event: E) {
        self.emit_sized(owner, event, 64)
    }

    /// [`emit`](Self::emit) of an event holding `bytes` bytes.
    pub(crate) fn emit_sized(&self, owner: &O, event: E, bytes: usize) {
        if self.silenced.load(Ordering::Acquire) {
            return;
        }
        match &self.poller {
            Some(p) => {
                p.push([(event, bytes)], bytes);
            }
            None => {
                let mut h = self.handler.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(h) = h.as_mut() {
                    h(owner, event);
                }
            }
        }
    }

    /// Nothing more is delivered; queued events are dropped.
    pub(crate) fn silence(&self) {
        self.silenced.store(true, Ordering::Release);
        if let Some(p) = &self.poller {
            p.clear();
        }
        self.drop_handler();
    }

    fn drop_handler(&self) {
        // Not from inside the handler itself (it holds the lock): then it
        // is dropped with the sink.
        let taken = match self.handler.try_lock() {
            Ok(mut h) => h.take(),
            Err(_) => None,
        };
        // Dropped after the lock is let go (see `dispatch`).
        drop(taken);
    }

    /// Makes `ch` feed this sink: in poll mode it stops reading while the
    /// queued events are past the limit.
    pub(crate) fn feed_from(&self, ch: &Channel) {
        if let Some(p) = &self.poller {
            ch.set_gate(p.clone() as Arc<dyn Gate>);
        }
    }

    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.poller.as_ref().map(|p| p.fd())
    }

    pub(crate) fn dispatch(&self, owner: &O, max: usize) -> Result<usize, DispatchError> {
        let p = self.poller.as_ref().ok_or(DispatchError::NotPolled)?;
        let mut h = crate::net::poller::lock_for_dispatch(&self.handler).ok_or(DispatchError::Reentrant)?;
        let events = p.take(max, |(_, b)| *b);
        let mut n = 0;
        if let Some(handler) = h.as_mut() {
            for (ev, _) in events {
                if self.silenced.load(Ordering::Acquire) {
                    break;
                }
                handler(owner, ev);
                n += 1;
            }
        }
        Ok(n)
    }
}
