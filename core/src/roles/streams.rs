//! The sessions of a worker or engine connection as two-way streams: each
//! side ends its own direction (`error` or `choke`), and a session is
//! forgotten once both directions have ended.

use std::collections::HashMap;

use crate::net::Channel;
use crate::wire::{Dialect, Kind, Message};

use super::worker::StreamError;

/// Which directions of a session are still open.
#[derive(Debug, Clone, Copy)]
struct Ends {
    /// The peer may still send.
    rx: bool,
    /// This side may still send.
    tx: bool,
}

/// The open sessions of one connection.
#[derive(Debug, Default)]
pub(crate) struct Streams(HashMap<u64, Ends>);

impl Streams {
    /// Opens `session` in both directions; false if it is already open.
    pub(crate) fn open(&mut self, session: u64) -> bool {
        if self.0.contains_key(&session) {
            return false;
        }
        self.0.insert(session, Ends { rx: true, tx: true });
        true
    }

    /// Whether the peer may still send on `session`.
    pub(crate) fn receiving(&self, session: u64) -> bool {
        matches!(self.0.get(&session), Some(e) if e.rx)
    }

    /// Records the peer's end of `session` (its `error` or `choke`);
    /// false if the peer's direction was not open (the message is dropped).
    pub(crate) fn end_rx(&mut self, session: u64) -> bool {
        let Some(ends) = self.0.get_mut(&session).filter(|e| e.rx) else { return false };
        ends.rx = false;
        if !ends.tx {
            self.0.remove(&session);
        }
        true
    }

    /// Sends `msg` on `session` if this side's direction is open, and ends
    /// that direction when `msg` is terminal. In v0 an `error` is followed
    /// by `choke`: the other side forgets a session only on choke (§2.2).
    pub(crate) fn send(&mut self, ch: &Channel, session: u64, msg: &Message) -> Result<(), StreamError> {
        let ends = self.0.get_mut(&session).ok_or(StreamError::NoSession)?;
        if !ends.tx {
            return Err(StreamError::Ended);
        }
        ch.send(session, msg)?;
        if msg.kind().is_terminal() {
            if ch.config().dialect == Dialect::V0 && msg.kind() == Kind::Error {
                let _ = ch.send(session, &Message::Choke);
            }
            ends.tx = false;
            if !ends.rx {
                self.0.remove(&session);
            }
        }
        Ok(())
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Forgets every session, returning their ids in ascending order.
    pub(crate) fn take_all(&mut self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.0.drain().map(|(s, _)| s).collect();
        ids.sort_unstable();
        ids
    }
}
