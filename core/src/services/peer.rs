//! One connection carrying service calls: the calls this side opens (replies
//! routed by channel id along each method's rx graph) and, when the
//! connection serves something, the channels the other side opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::graph::{Cursor, Node};
use super::{block_on, Error, ServiceError};
use crate::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, SendError};
use crate::wire::{Args, Dialect, Frame, Header, Value};

/// Channel ids from here up are opened by the serving side of a connection
/// where both sides open channels (the attach extension, `docs/attach.md`).
pub(crate) const HIGH_IDS: u64 = 1 << 63;

/// One message received on a call's channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The message's name in the protocol in force (`value`, `write`,
    /// `close`, ...; `#id` where the graph does not describe the replies).
    pub name: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Its v1 headers.
    pub headers: Vec<Header>,
    /// Whether it ends the call (a terminal message of the graph).
    pub last: bool,
}

/// What a served channel's follower gets: the caller's further messages
/// (along the method's tx graph), or the end of the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Inbound {
    /// A message from the caller.
    Message(Reply),
    /// The connection ended (errno) before the caller's side was finished.
    Gone(i32),
}

/// Receives the caller's further messages on a served channel.
pub type Follow = Box<dyn FnMut(Inbound) + Send>;

/// A reply (or the error that ends the call) and its size on the wire.
type Item = (Result<Reply, Error>, usize);

struct OutCall {
    rx: Cursor,
    sink: mpsc::UnboundedSender<Item>,
    pending: Arc<AtomicUsize>,
    /// An error was delivered: the rest of the channel is not.
    failed: bool,
}

struct InCall {
    tx: Cursor,
    follow: Option<Follow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Connecting,
    Up,
    Down(i32),
}

struct State {
    link: Link,
    /// The last id this side opened.
    last_local: u64,
    /// The highest id the other side opened.
    max_remote: u64,
    out: HashMap<u64, OutCall>,
    inc: HashMap<u64, InCall>,
    waiters: Vec<oneshot::Sender<Result<(), i32>>>,
    on_down: Vec<Box<dyn FnOnce(i32) + Send>>,
    /// When the last frame arrived (or the connection was made).
    last_frame: std::time::Instant,
}

/// What serves the channels the other side opens.
pub(crate) trait Serve: Send + Sync + 'static {
    /// The other side opened channel `id` with message `ty`. Returns how
    /// to follow the caller's further messages, with the tx graph, if any.
    fn open(&self, peer: &Peer, id: u64, ty: u64, args: Vec<Value>, headers: Vec<Header>) -> Option<(Node, Follow)>;
}

pub(crate) struct Shared {
    channel: OnceLock<Channel>,
    dialect: Dialect,
    st: Mutex<State>,
    serve: Option<Arc<dyn Serve>>,
    /// This side accepted the connection: it opens ids from [`HIGH_IDS`]
    /// up, the other side below.
    high: bool,
    max_pending: usize,
    /// Most channels the other side may have open on this connection at
    /// once (`ChannelConfig::max_sessions`); a call past it is refused.
    max_open: usize,
    /// The other side's address (accepted connections).
    addr: OnceLock<String>,
    /// No owner is left: close once no call awaits replies.
    orphan: std::sync::atomic::AtomicBool,
    /// Woken when the send queue has drained (and when the connection ends).
    drained: tokio::sync::Notify,
}

/// A handle to a connection (cheap to clone).
#[derive(Clone)]
pub(crate) struct Peer {
    sh: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The v0 reply protocol of every call (docs/PROTOCOL.md §2.3): chunks, then
/// choke; or error, then choke.
pub(crate) fn v0_replies() -> Node {
    use super::graph::{Protocol, Transition};
    let choke = Node::Protocol(Protocol::new(vec![Transition::new(6, "close", Node::Terminal)]));
    Node::Protocol(Protocol::new(vec![
        Transition::new(4, "write", Node::Recursive),
        Transition::new(5, "error", choke),
        Transition::new(6, "close", Node::Terminal),
    ]))
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::WouldBlock => Error::WouldBlock,
        SendError::Closed => Error::Closed,
    }
}

fn encode_args(args: &[Value]) -> Args {
    let mut out = Vec::with_capacity(16);
    crate::wire::msgpack::write_array_len(&mut out, args.len() as u32);
    for v in args {
        v.encode(&mut out, crate::wire::Profile::Compat);
    }
    Args::from_raw(Bytes::from(out)).expect("an encoded array is valid")
}

impl Peer {
    fn new(dialect: Dialect, serve: Option<Arc<dyn Serve>>, high: bool, max_pending: usize, max_open: usize) -> Peer {
        Peer {
            sh: Arc::new(Shared {
                channel: OnceLock::new(),
                dialect,
                st: Mutex::new(State {
                    link: Link::Connecting,
                    last_local: if high { HIGH_IDS } else { 0 },
                    max_remote: 0,
                    out: HashMap::new(),
                    inc: HashMap::new(),
                    waiters: Vec::new(),
                    on_down: Vec::new(),
                    last_frame: std::time::Instant::now(),
                }),
                serve,
                high,
                max_pending,
                max_open,
                addr: OnceLock::new(),
                orphan: std::sync::atomic::AtomicBool::new(false),
                drained: tokio::sync::Notify::new(),
            }),
        }
    }

    fn config(dialect: Dialect, connect_timeout: Option<Duration>) -> ChannelConfig {
        let mut c = ChannelConfig::new(dialect, None);
        c.connect_timeout = connect_timeout;
        c
    }

    /// Connects and waits until the connection is up (or has failed, with
    /// its errno).
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        dialect: Dialect,
        connect_timeout: Duration,
        serve: Option<Arc<dyn Serve>>,
        max_pending: usize,
    ) -> Result<Peer, i32> {
        let peer = Peer::new(dialect, serve, false, max_pending, ChannelConfig::default().max_sessions);
        let (tx, rx) = oneshot::channel();
        lock(&peer.sh.st).waiters.push(tx);
        let h = peer.clone();
        let ch =
            Channel::connect(endpoint.clone(), Peer::config(dialect, Some(connect_timeout)), move |ch: &Channel, ev| h.on_event(ch, ev))
                .map_err(|e| crate::net::errno_of(&e))?;
        let _ = peer.sh.channel.set(ch);
        match rx.await {
            Ok(Ok(())) => Ok(peer),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(crate::errno::ECONNRESET),
        }
    }

    /// Serves an accepted connection. The accepting side opens channels
    /// (remote invocation only) from [`HIGH_IDS`] up; the connecting side's
    /// ids stay below.
    pub(crate) fn accept(mut incoming: Incoming, serve: Arc<dyn Serve>) -> std::io::Result<Peer> {
        incoming.config_mut().role = None;
        let config = incoming.config_mut();
        let peer = Peer::new(config.dialect, Some(serve), true, 64 << 20, config.max_sessions);
        let _ = peer.sh.addr.set(incoming.peer().to_string());
        let h = peer.clone();
        let ch = incoming.start(move |ch: &Channel, ev| h.on_event(ch, ev))?;
        let _ = peer.sh.channel.set(ch);
        Ok(peer)
    }

    /// The other side's address, for accepted connections.
    pub(crate) fn addr(&self) -> &str {
        self.sh.addr.get().map(String::as_str).unwrap_or("")
    }

    /// The protocol dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        self.sh.dialect
    }

    /// A number that tells this connection from the others alive now.
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.sh) as usize
    }

    /// Whether both handles are the same connection.
    pub(crate) fn same(&self, other: &Peer) -> bool {
        Arc::ptr_eq(&self.sh, &other.sh)
    }

    /// How long the connection has been idle: nothing received for that
    /// long and no channel open either way (`None` while one is open).
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        let st = lock(&self.sh.st);
        (st.out.is_empty() && st.inc.is_empty()).then(|| st.last_frame.elapsed())
    }

    /// Ends the connection at once with `errno` (what is queued is dropped).
    pub(crate) fn cut(&self, errno: i32) {
        match self.sh.channel.get() {
            Some(ch) => ch.fail(errno),
            None => self.down(errno),
        }
    }

    /// Whether the connection is up.
    pub(crate) fn is_up(&self) -> bool {
        matches!(lock(&self.sh.st).link, Link::Up | Link::Connecting)
    }

    /// Runs `f` with the errno when the connection ends (at once if it has).
    pub(crate) fn on_down(&self, f: impl FnOnce(i32) + Send + 'static) {
        let mut st = lock(&self.sh.st);
        if let Link::Down(e) = st.link {
            drop(st);
            f(e);
        } else {
            st.on_down.push(Box::new(f));
        }
    }

    /// Closes the connection (flushing what is queued).
    pub(crate) fn close(&self) {
        if let Some(ch) = self.sh.channel.get() {
            ch.close();
        }
        self.down(crate::errno::ECONNRESET);
    }

    /// The owner is gone: closes the connection now if no call awaits
    /// replies, or else when the last one ends or is dropped.
    pub(crate) fn release(&self) {
        self.sh.orphan.store(true, Ordering::Release);
        self.close_if_orphan();
    }

    fn close_if_orphan(&self) {
        if !self.sh.orphan.load(Ordering::Acquire) {
            return;
        }
        let idle = lock(&self.sh.st).out.values().all(|c| c.failed);
        if idle {
            self.close();
        }
    }

    /// Opens a channel with message `ty` and `args`; replies follow `rx`,
    /// further messages of this side follow `tx`.
    pub(crate) fn call(&self, ty: u64, args: &[Value], headers: &[Header], tx: &Node, rx: &Node) -> Result<Call, Error> {
        let (sink, recv) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let mut st = lock(&self.sh.st);
        if let Link::Down(e) = st.link {
            return Err(Error::Disconnected(e));
        }
        let Some(ch) = self.sh.channel.get() else { return Err(Error::Closed) };
        let id = st.last_local + 1;
        let rx = if self.sh.dialect == Dialect::V0 { v0_replies() } else { rx.clone() };
        ch.send_frame(id, ty, &encode_args(args), headers).map_err(send_error)?;
        st.last_local = id;
        let cursor = Cursor::new(&rx);
        if !cursor.is_done() {
            st.out.insert(id, OutCall { rx: cursor, sink, pending: pending.clone(), failed: false });
        }
        drop(st);
        Ok(Call { sender: CallSender { peer: self.clone(), id, tx: Arc::new(Mutex::new(Cursor::new(tx))) }, recv, pending, ended: false })
    }

    /// Sends message `name` on channel `id`, moving `cursor` along. A send
    /// that meets a full queue is refused with [`Error::WouldBlock`].
    pub(crate) fn send_on(&self, id: u64, cursor: &mut Cursor, name: &str, args: &[Value]) -> Result<(), Error> {
        let ty = cursor.id_of(name).ok_or_else(|| Error::NotAllowed(name.to_string()))?;
        let ch = self.sh.channel.get().ok_or(Error::Closed)?;
        ch.send_frame(id, ty, &encode_args(args), &[]).map_err(send_error)?;
        cursor.step(ty);
        Ok(())
    }

    /// [`send_on`](Self::send_on) for a reply to a call the other side
    /// opened: never refused for a full queue (a reply has nowhere else to
    /// go, and the connection stops reading new calls meanwhile); past
    /// the channel's `max_queued` bound the connection ends with
    /// `ENOBUFS`, which both sides see, and the send fails with
    /// [`Error::Disconnected`].
    pub(crate) fn reply_on(&self, id: u64, cursor: &mut Cursor, name: &str, args: &[Value]) -> Result<(), Error> {
        let ty = cursor.id_of(name).ok_or_else(|| Error::NotAllowed(name.to_string()))?;
        let ch = self.sh.channel.get().ok_or(Error::Closed)?;
        if let Err(e) = ch.send_frame_unrefused(id, ty, &encode_args(args), &[]) {
            return Err(match ch.failed_with() {
                0 => send_error(e),
                errno => Error::Disconnected(errno),
            });
        }
        cursor.step(ty);
        Ok(())
    }

    /// Waits until the send queue is under its high watermark (or the
    /// connection has ended).
    pub(crate) async fn room(&self) {
        loop {
            let drained = self.sh.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let full = match self.sh.channel.get() {
                Some(ch) => ch.is_full(),
                None => false,
            };
            if !full || matches!(lock(&self.sh.st).link, Link::Down(_)) {
                return;
            }
            drained.await;
        }
    }

    fn is_remote_id(&self, id: u64) -> bool {
        (id >= HIGH_IDS) != self.sh.high
    }

    fn on_event(&self, ch: &Channel, ev: Event) {
        let _ = self.sh.channel.set(ch.clone());
        match ev {
            Event::Connected => {
                let waiters = {
                    let mut st = lock(&self.sh.st);
                    if st.link == Link::Connecting {
                        st.link = Link::Up;
                    }
                    std::mem::take(&mut st.waiters)
                };
                for w in waiters {
                    let _ = w.send(Ok(()));
                }
            }
            Event::Frame(f) => self.on_frame(f),
            Event::Drain => self.sh.drained.notify_waiters(),
            Event::Message { .. } => {}
            Event::SocketError(e) => self.down(e),
        }
    }

    fn down(&self, e: i32) {
        let (waiters, out, inc, hooks) = {
            let mut st = lock(&self.sh.st);
            if matches!(st.link, Link::Down(_)) {
                return;
            }
            st.link = Link::Down(e);
            (std::mem::take(&mut st.waiters), std::mem::take(&mut st.out), std::mem::take(&mut st.inc), std::mem::take(&mut st.on_down))
        };
        for w in waiters {
            let _ = w.send(Err(e));
        }
        for (_, c) in out {
            if !c.failed {
                let _ = c.sink.send((Err(Error::Disconnected(e)), 0));
            }
        }
        for (_, c) in inc {
            if let Some(mut f) = c.follow {
                f(Inbound::Gone(e));
            }
        }
        for h in hooks {
            h(e);
        }
        // Sends waiting for room find the connection gone.
        self.sh.drained.notify_waiters();
    }

    fn on_frame(&self, f: Frame) {
        let Frame { session: id, ty, args, headers } = f;
        let size = args.raw().len();
        let mut st = lock(&self.sh.st);
        st.last_frame = std::time::Instant::now();
        if let Some(call) = st.out.get_mut(&id) {
            // A reply to one of our calls.
            let Some(name) = call.rx.step(ty) else { return }; // not allowed now: dropped
            let last = call.rx.is_done();
            if !call.failed {
                let item = match args.to_values_within(super::MAX_ARG_VALUES) {
                    Err(e) => Err(Error::BadReply(format!("{name}: {e}"))),
                    Ok(args) if name == "error" => Err(match ServiceError::from_args(&args) {
                        Some(e) => Error::Service(e),
                        None => Error::BadReply(format!("error arguments {}", Value::Array(args))),
                    }),
                    Ok(args) => Ok(Reply { name, args, headers, last }),
                };
                let total = call.pending.fetch_add(size, Ordering::AcqRel) + size;
                let item = if total > self.sh.max_pending { Err(Error::Overflow(self.sh.max_pending)) } else { item };
                call.failed = item.is_err();
                let _ = call.sink.send((item, size));
            }
            if last {
                st.out.remove(&id);
                drop(st);
                self.close_if_orphan();
            }
            return;
        }
        if let Some(mut c) = st.inc.remove(&id) {
            // The caller's next message on a channel we serve.
            let Some(name) = c.tx.step(ty) else {
                st.inc.insert(id, c);
                return;
            };
            let last = c.tx.is_done();
            drop(st);
            if let (Some(f), Ok(args)) = (c.follow.as_mut(), args.to_values_within(super::MAX_ARG_VALUES)) {
                f(Inbound::Message(Reply { name, args, headers, last }));
            }
            if !last {
                lock(&self.sh.st).inc.insert(id, c);
            }
            return;
        }
        if !self.is_remote_id(id) || id <= st.max_remote {
            return; // a finished or unknown channel: dropped (docs/PROTOCOL.md §3.2)
        }
        st.max_remote = id;
        let full = st.inc.len() >= self.sh.max_open;
        drop(st);
        let Some(serve) = self.sh.serve.clone() else { return };
        if full {
            // Each open channel keeps its state until the caller ends it: a
            // caller that opens them without end is refused past the bound.
            let mut out = super::host::Responder::new(self, id, &Node::primitive(), "");
            let _ = out.error(&ServiceError::new(
                super::SYSTEM_CATEGORY,
                i64::from(crate::errno::ENOBUFS),
                format!("too many channels open on this connection (at most {})", self.sh.max_open),
            ));
            return;
        }
        let values = match args.to_values_within(super::MAX_ARG_VALUES) {
            Ok(v) => v,
            Err(e) => {
                // Well-framed but unreadable arguments (nesting too deep):
                // refused, so the caller does not wait for an answer.
                let mut out = super::host::Responder::new(self, id, &Node::primitive(), "");
                let _ =
                    out.error(&ServiceError::new(super::DISPATCH_CATEGORY, super::INVALID_ARGUMENT, format!("unreadable arguments: {e}")));
                return;
            }
        };
        if let Some((tx, follow)) = serve.open(self, id, ty, values, headers) {
            let tx = Cursor::new(&tx);
            if !tx.is_done() {
                let mut st = lock(&self.sh.st);
                if let Link::Down(e) = st.link {
                    drop(st);
                    let mut follow = follow;
                    follow(Inbound::Gone(e));
                } else {
                    st.inc.insert(id, InCall { tx, follow: Some(follow) });
                }
            }
        }
    }
}

/// A call in progress: its replies, in order, and the caller's further
/// messages (along the method's tx graph).
pub struct Call {
    sender: CallSender,
    recv: mpsc::UnboundedReceiver<Item>,
    pending: Arc<AtomicUsize>,
    ended: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("channel", &self.sender.id).finish_non_exhaustive()
    }
}

impl Call {
    /// The channel id of the call.
    pub fn channel_id(&self) -> u64 {
        self.sender.id
    }

    /// A handle that sends the caller's further messages, usable while
    /// another thread or task reads the replies.
    pub fn sender(&self) -> CallSender {
        self.sender.clone()
    }

    fn took(&mut self, item: Option<Item>) -> Option<Result<Reply, Error>> {
        let Some((item, n)) = item else {
            self.ended = true;
            return None;
        };
        self.pending.fetch_sub(n, Ordering::AcqRel);
        match &item {
            Ok(r) if !r.last => {}
            _ => self.ended = true,
        }
        Some(item)
    }

    /// The next reply; `None` once the call has ended. An error (from the
    /// service, or the connection's end) is the last item.
    pub async fn recv(&mut self) -> Option<Result<Reply, Error>> {
        if self.ended {
            return None;
        }
        let item = self.recv.recv().await;
        self.took(item)
    }

    /// [`recv`](Self::recv) for threads outside the runtime.
    pub fn recv_blocking(&mut self) -> Option<Result<Reply, Error>> {
        self.recv_timeout_blocking(None)
    }

    /// [`recv`](Self::recv) with a time limit ([`Error::Timeout`], and the
    /// call stays usable).
    pub fn recv_timeout_blocking(&mut self, limit: Option<Duration>) -> Option<Result<Reply, Error>> {
        if self.ended {
            return None;
        }
        let item = match block_on(async {
            match limit {
                Some(d) => tokio::time::timeout(d, self.recv.recv()).await.map_err(|_| Error::Timeout),
                None => Ok(self.recv.recv().await),
            }
        }) {
            Ok(Ok(item)) => item,
            Ok(Err(e)) | Err(e) => return Some(Err(e)),
        };
        self.took(item)
    }

    /// The result of a primitive method: the arguments of `value` (v0: the
    /// chunk's payload unpacked, or nothing for a void method), or the error.
    pub async fn value(mut self) -> Result<Vec<Value>, Error> {
        let mut got = None;
        while let Some(item) = self.recv().await {
            let r = item?;
            match r.name.as_str() {
                "value" => return Ok(r.args),
                // v0: chunk(msgpack(result)) then choke; a void method chokes at once.
                "write" if self.sender.peer.dialect() == Dialect::V0 => {
                    let payload = r.args.first().and_then(Value::as_bytes).ok_or_else(|| Error::BadReply("chunk without bytes".into()))?;
                    let v = Value::decode_all(payload).map_err(|e| Error::BadReply(e.to_string()))?;
                    got = Some(vec![v]);
                }
                "close" if self.sender.peer.dialect() == Dialect::V0 => return Ok(got.unwrap_or_default()),
                other => return Err(Error::BadReply(format!("expected a value, got '{other}'"))),
            }
        }
        Err(Error::BadReply("the call ended without a value".into()))
    }

    /// [`value`](Self::value) for threads outside the runtime.
    pub fn value_blocking(self) -> Result<Vec<Value>, Error> {
        block_on(self.value())?
    }

    /// Every reply up to the end of the call; the error if it failed.
    pub async fn collect(mut self) -> Result<Vec<Reply>, Error> {
        let mut all = Vec::new();
        while let Some(item) = self.recv().await {
            all.push(item?);
        }
        Ok(all)
    }

    /// [`collect`](Self::collect) for threads outside the runtime.
    pub fn collect_blocking(self) -> Result<Vec<Reply>, Error> {
        block_on(self.collect())?
    }

    /// Sends message `name` of the method's tx graph (e.g. `write`, then
    /// `close`, for a method whose tx is streaming).
    pub fn send(&self, name: &str, args: &[Value]) -> Result<(), Error> {
        self.sender.send(name, args)
    }
}

/// Sends the caller's messages of a [`Call`] along the method's tx graph.
#[derive(Clone)]
pub struct CallSender {
    peer: Peer,
    id: u64,
    tx: Arc<Mutex<Cursor>>,
}

impl std::fmt::Debug for CallSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSender").field("channel", &self.id).finish_non_exhaustive()
    }
}

impl CallSender {
    /// Sends message `name` of the method's tx graph now in force.
    pub fn send(&self, name: &str, args: &[Value]) -> Result<(), Error> {
        let mut tx = lock(&self.tx);
        self.peer.send_on(self.id, &mut tx, name, args)
    }

    /// Whether this side's direction has ended.
    pub fn is_done(&self) -> bool {
        lock(&self.tx).is_done()
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Replies to an abandoned call are dropped as they come.
        if !self.ended {
            if let Some(c) = lock(&self.sender.peer.sh.st).out.get_mut(&self.sender.id) {
                c.failed = true;
            }
            self.sender.peer.close_if_orphan();
        }
    }
}
