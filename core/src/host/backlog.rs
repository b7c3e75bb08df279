//! Sends with the contract of Node.js streams, for a binding whose users
//! expect it: a send is always taken (unless the channel is closed); it
//! reports that it had to wait once the channel's queue is at its high
//! watermark, and the owner's drain follows when everything waiting went.
//!
//! A channel refuses a send at the high watermark (and then delivers
//! [`Event::Drain`](crate::net::Event::Drain)); the refused message waits
//! in a [`Backlog`], in order with every later one, until
//! [`Backlog::flush`] (called on the drain event) lets them through.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::Streams;
use crate::net::Channel;
use crate::roles::StreamError;
use crate::wire::Message;
use bytes::Bytes;

/// A message waiting for room.
#[derive(Debug)]
pub enum Pending {
    /// Bytes sent as they are.
    Raw(Bytes),
    /// A chunk on a session.
    Chunk(u64, Bytes),
    /// A typed message on a session.
    Message(u64, Message),
}

impl Pending {
    /// Sends through the core: typed messages as every class sends them
    /// (`host::Streams`), raw bytes as they are.
    fn send(&self, ch: &Channel) -> Result<(), StreamError> {
        match self {
            Pending::Raw(b) => ch.send_raw(b.clone()).map_err(StreamError::from),
            Pending::Chunk(s, b) => Streams::send_chunk(ch, *s, b),
            Pending::Message(s, m) => Streams::send_message(ch, *s, m, &[]),
        }
    }
}

/// Why a send was not taken: the channel is closed (or closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

#[derive(Default)]
struct State {
    waiting: VecDeque<Pending>,
    /// A graceful close waits for `waiting` to empty.
    close_after: bool,
}

/// The sends of one channel waiting for room.
#[derive(Default)]
pub struct Backlog {
    state: Mutex<State>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `p` now, or queues it behind what waits; `Ok(false)` when it
    /// had to wait (the owner's drain follows once [`flush`](Self::flush)
    /// has let everything through).
    pub fn send(&self, ch: &Channel, p: Pending) -> Result<bool, Closed> {
        let mut st = self.lock();
        if st.close_after {
            return Err(Closed);
        }
        if st.waiting.is_empty() {
            match p.send(ch) {
                Ok(()) => return Ok(true),
                Err(StreamError::WouldBlock) => {}
                Err(_) => return Err(Closed),
            }
        } else if ch.is_finished() {
            return Err(Closed);
        }
        // A typed message that opens a session counts as sent now, so that
        // `next_session` does not hand out its id again.
        if let Pending::Message(s, m) = &p {
            ch.note_sent(*s, m.kind());
        }
        st.waiting.push_back(p);
        Ok(false)
    }

    /// After `Event::Drain`: lets waiting messages through. Returns whether
    /// all of them went (then the owner's `'drain'` is due).
    pub fn flush(&self, ch: &Channel) -> bool {
        let mut st = self.lock();
        while let Some(p) = st.waiting.front() {
            match p.send(ch) {
                Ok(()) => {
                    st.waiting.pop_front();
                }
                Err(StreamError::WouldBlock) => return false,
                Err(_) => {
                    st.waiting.clear();
                    break;
                }
            }
        }
        if st.close_after {
            st.close_after = false;
            ch.close();
        }
        true
    }

    /// Closes gracefully: at once if nothing waits here, else once the
    /// waiting messages are through.
    pub fn close(&self, ch: &Channel) {
        let mut st = self.lock();
        if st.waiting.is_empty() || ch.is_finished() {
            st.waiting.clear();
            drop(st);
            ch.close();
        } else {
            st.close_after = true;
        }
    }

    /// Forgets what waits (an abort).
    pub fn clear(&self) {
        let mut st = self.lock();
        st.waiting.clear();
        st.close_after = false;
    }

    /// Bytes waiting here (approximate for typed messages).
    pub fn bytes(&self) -> usize {
        self.lock()
            .waiting
            .iter()
            .map(|p| match p {
                Pending::Raw(b) | Pending::Chunk(_, b) => b.len() + 16,
                Pending::Message(..) => 32,
            })
            .sum()
    }
}
