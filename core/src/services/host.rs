//! Hosting a service: a method graph with a handler per method, served on a
//! listening socket and published to a Locator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::client::endpoint_to_value;
use super::graph::{Cursor, Graph, Method, Node};
use super::peer::{Call, Follow, Peer, Serve};
use super::{block_on, within, Error, Locator, ServiceError, DISPATCH_CATEGORY, SLOT_NOT_FOUND, UNCAUGHT_ERROR};
use crate::net::{ChannelConfig, Endpoint, Incoming, Server};
use crate::wire::{Dialect, Header, Value};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call to a hosted method.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The service called.
    pub service: String,
    /// The method called.
    pub method: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Its v1 headers.
    pub headers: Vec<Header>,
}

/// Answers one call along the method's rx graph. It is `Send`: a handler
/// may keep it and answer later, from any thread.
///
/// Dropped before a terminal message, it sends `error([7, 7], ...)`
/// (uncaught error) when the protocol allows an error, so a caller never
/// waits for an answer that will not come.
pub struct Responder {
    peer: Peer,
    id: u64,
    rx: Cursor,
    method: String,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").field("channel", &self.id).field("method", &self.method).finish_non_exhaustive()
    }
}

impl Responder {
    pub(crate) fn new(peer: &Peer, id: u64, rx: &Node, method: &str) -> Responder {
        Responder { peer: peer.clone(), id, rx: Cursor::new(rx), method: method.to_string() }
    }

    /// Sends the message called `name` of the protocol in force.
    ///
    /// A reply is never refused or dropped for a full send queue: while
    /// the caller does not read, its connection stops reading new calls
    /// and replies queue past the high watermark up to
    /// [`ChannelConfig::max_queued`](crate::net::ChannelConfig::max_queued);
    /// past that bound the connection is ended with `ENOBUFS` (the caller
    /// sees it close) and this fails with [`Error::Disconnected`]. A
    /// handler that writes a long stream uses
    /// [`send_async`](Self::send_async), which waits for room.
    pub fn send(&mut self, name: &str, args: &[Value]) -> Result<(), Error> {
        if self.rx.is_done() {
            return Err(Error::Closed);
        }
        self.peer.reply_on(self.id, &mut self.rx, name, args)
    }

    /// [`send`](Self::send) that first waits while the connection's send
    /// queue is at its high watermark (until the caller has read enough).
    pub async fn send_async(&mut self, name: &str, args: &[Value]) -> Result<(), Error> {
        self.peer.room().await;
        self.send(name, args)
    }

    /// `value(args...)`: the result of a primitive method.
    pub fn value(&mut self, args: Vec<Value>) -> Result<(), Error> {
        self.send("value", &args)
    }

    /// `write(args...)`: one piece of a stream.
    pub fn write(&mut self, args: Vec<Value>) -> Result<(), Error> {
        self.send("write", &args)
    }

    /// `close()`: the end of a stream.
    pub fn close(&mut self) -> Result<(), Error> {
        self.send("close", &[])
    }

    /// `error([category, code], message)`.
    pub fn error(&mut self, e: &ServiceError) -> Result<(), Error> {
        self.send("error", &e.to_args())
    }

    /// Whether the answer is complete.
    pub fn is_done(&self) -> bool {
        self.rx.is_done()
    }

    /// The channel id of the call.
    pub fn channel_id(&self) -> u64 {
        self.id
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.rx.is_done() && self.rx.id_of("error").is_some() {
            let e = ServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, format!("'{}' ended without a reply", self.method));
            let _ = self.error(&e);
        }
    }
}

/// A method handler: gets the request and the responder; returns how to
/// follow the caller's further messages when the method's tx graph allows
/// some (`None` drops them).
///
/// Handlers (and followers) run on an I/O thread of the runtime, one
/// message at a time per connection: they must not block. A handler that
/// needs time keeps the [`Responder`] and answers later from elsewhere.
pub type MethodFn = Arc<dyn Fn(Request, Responder) -> Option<Follow> + Send + Sync>;

/// A service to host: name, protocol version, method graph and handlers.
///
/// ```
/// use sluice_core::services::{ServiceDef, ServiceError};
/// use sluice_core::wire::Value;
///
/// let def = ServiceDef::new("greeter", 1)
///     .primitive("hello", |args| match args.first().and_then(Value::as_bytes) {
///         Some(name) => Ok(vec![Value::from(format!("hello, {}", String::from_utf8_lossy(name)).as_str())]),
///         None => Err(ServiceError::new(7, 2, "hello(name)")),
///     })
///     .streaming("count", |req, mut out| {
///         for i in 0..3u64 {
///             let _ = out.write(vec![Value::from(i)]);
///         }
///         let _ = out.close();
///     });
/// assert_eq!(def.graph().methods().len(), 2);
/// ```
#[derive(Clone)]
pub struct ServiceDef {
    name: String,
    version: u64,
    graph: Graph,
    handlers: HashMap<u64, MethodFn>,
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

impl ServiceDef {
    /// An empty service.
    pub fn new(name: &str, version: u64) -> ServiceDef {
        ServiceDef { name: name.to_string(), version, graph: Graph::default(), handlers: HashMap::new() }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The protocol version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The method graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Adds a method with any graph, at the next free id.
    pub fn method(
        self,
        name: &str,
        tx: Node,
        rx: Node,
        handler: impl Fn(Request, Responder) -> Option<Follow> + Send + Sync + 'static,
    ) -> ServiceDef {
        let id = self.graph.methods().last().map_or(0, |m| m.id + 1);
        self.method_with_id(id, name, tx, rx, handler)
    }

    /// Adds (or replaces) a method at a given id.
    pub fn method_with_id(
        mut self,
        id: u64,
        name: &str,
        tx: Node,
        rx: Node,
        handler: impl Fn(Request, Responder) -> Option<Follow> + Send + Sync + 'static,
    ) -> ServiceDef {
        let mut methods: Vec<Method> = self.graph.methods().iter().filter(|m| m.id != id).cloned().collect();
        methods.push(Method::new(id, name, tx, rx));
        self.graph = Graph::new(methods);
        self.handlers.insert(id, Arc::new(handler));
        self
    }

    /// Adds a primitive method: `f(args)` gives the `value` arguments or the error.
    pub fn primitive(self, name: &str, f: impl Fn(Vec<Value>) -> Result<Vec<Value>, ServiceError> + Send + Sync + 'static) -> ServiceDef {
        self.method(name, Node::Terminal, Node::primitive(), move |req, mut out| {
            let _ = match f(req.args) {
                Ok(v) => out.value(v),
                Err(e) => out.error(&e),
            };
            None
        })
    }

    /// Adds a streaming method (nothing more from the caller; the answer is
    /// `write*` then `close`, or `error`).
    pub fn streaming(self, name: &str, f: impl Fn(Request, Responder) + Send + Sync + 'static) -> ServiceDef {
        self.method(name, Node::Terminal, Node::streaming(), move |req, out| {
            f(req, out);
            None
        })
    }

    /// Adds a method that answers nothing (rx `{}`, like the Logger's `emit`).
    pub fn mute(self, name: &str, f: impl Fn(Vec<Value>) + Send + Sync + 'static) -> ServiceDef {
        self.method(name, Node::Terminal, Node::Terminal, move |req, _| {
            f(req.args);
            None
        })
    }

    /// Runs the method `ty` for a channel the caller opened.
    pub(crate) fn dispatch(&self, peer: &Peer, id: u64, ty: u64, args: Vec<Value>, headers: Vec<Header>) -> Option<(Node, Follow)> {
        let (Some(m), Some(h)) = (self.graph.method_by_id(ty), self.handlers.get(&ty)) else {
            let mut out = Responder::new(peer, id, &Node::primitive(), "");
            let _ = out.error(&ServiceError::new(DISPATCH_CATEGORY, SLOT_NOT_FOUND, format!("service '{}' has no method {ty}", self.name)));
            return None;
        };
        let req = Request { service: self.name.clone(), method: m.name.clone(), args, headers };
        let out = Responder::new(peer, id, &m.rx, &m.name);
        let follow = h(req, out)?;
        Some((m.tx.clone(), follow))
    }
}

struct Direct(Arc<ServiceDef>);

impl Serve for Direct {
    fn open(&self, peer: &Peer, id: u64, ty: u64, args: Vec<Value>, headers: Vec<Header>) -> Option<(Node, Follow)> {
        self.0.dispatch(peer, id, ty, args, headers)
    }
}

/// A service listening for callers. Stops with [`close`](Self::close).
pub struct Hosted {
    server: Server,
    def: Arc<ServiceDef>,
    peers: Arc<Mutex<Vec<Peer>>>,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted").field("name", &self.def.name).field("local", self.server.local()).finish_non_exhaustive()
    }
}

/// Where a server bound to `local` can be reached: a wildcard address is
/// advertised as loopback.
pub(crate) fn advertised(local: &Endpoint) -> Endpoint {
    match local {
        Endpoint::Tcp(h, p) if h == "0.0.0.0" => Endpoint::Tcp("127.0.0.1".into(), *p),
        Endpoint::Tcp(h, p) if h == "::" => Endpoint::Tcp("::1".into(), *p),
        e => e.clone(),
    }
}

/// `idle`: whether idle connections are ended after
/// [`service_idle_timeout`](super::service_idle_timeout) (services: yes;
/// the Locator, whose publishers' connections hold their names: no).
pub(crate) fn serve_on(
    endpoint: &Endpoint,
    dialect: Dialect,
    serve: Arc<dyn Serve>,
    peers: Arc<Mutex<Vec<Peer>>>,
    idle: bool,
) -> Result<Server, Error> {
    // The settings of every service connection, in one place: frames sized
    // for calls, and replies never refused (the connection stops reading
    // new calls while they back up: ChannelConfig::max_queued).
    let mut config = ChannelConfig::new(dialect, None);
    config.max_frame_size = super::SERVICE_MAX_FRAME_SIZE;
    config.pause_reads_on_full_queue = true;
    let swept = Arc::downgrade(&peers);
    let server = Server::bind(endpoint, config, move |_: &Server, incoming: Incoming| {
        // Past the process's connection cap the connection is dropped
        // (closed) unread.
        if !super::take_connection() {
            return;
        }
        match Peer::accept(incoming, serve.clone()) {
            Ok(p) => {
                let list = peers.clone();
                let me = p.clone();
                let mut l = lock(&peers);
                l.push(p);
                drop(l);
                me.clone().on_down(move |_| {
                    lock(&list).retain(|q| !q.same(&me));
                    super::give_connection();
                });
            }
            Err(_) => super::give_connection(),
        }
    })?;
    if idle {
        sweep_idle(swept);
    }
    Ok(server)
}

/// Ends the idle connections of one server until the server's peer list
/// is gone.
fn sweep_idle(peers: std::sync::Weak<Mutex<Vec<Peer>>>) {
    use std::time::Duration;
    let Ok(rt) = crate::net::runtime::handle() else { return };
    rt.spawn(async move {
        loop {
            let every = super::service_idle_timeout().map_or(Duration::from_secs(10), |t| (t / 4).min(Duration::from_secs(10)));
            tokio::time::sleep(every.max(Duration::from_millis(1))).await;
            let Some(list) = peers.upgrade() else { return };
            let Some(limit) = super::service_idle_timeout() else { continue };
            let idle: Vec<Peer> = lock(&list).iter().filter(|p| p.idle_for().is_some_and(|t| t >= limit)).cloned().collect();
            drop(list);
            for p in idle {
                p.cut(crate::errno::ETIMEDOUT);
            }
        }
    });
}

impl Hosted {
    /// Serves `def` on `endpoint` (TCP port 0 picks a free port).
    pub fn bind(def: ServiceDef, endpoint: &Endpoint) -> Result<Hosted, Error> {
        let def = Arc::new(def);
        let peers = Arc::new(Mutex::new(Vec::new()));
        let server = serve_on(endpoint, Dialect::V1, Arc::new(Direct(def.clone())), peers.clone(), true)?;
        Ok(Hosted { server, def, peers })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The service definition.
    pub fn def(&self) -> &ServiceDef {
        &self.def
    }

    /// Where it listens (with the actual port).
    pub fn local(&self) -> &Endpoint {
        self.server.local()
    }

    /// The endpoints to announce (a wildcard address becomes loopback).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        vec![advertised(self.server.local())]
    }

    /// How many callers are connected.
    pub fn connections(&self) -> usize {
        lock(&self.peers).len()
    }

    /// Publishes the service to a Locator: it stays online there while the
    /// returned [`Publication`] lives.
    pub async fn publish(&self, locator: &Locator) -> Result<Publication, Error> {
        Publication::publish(locator, &self.def.name, &self.endpoints(), self.def.version, &self.def.graph).await
    }

    /// [`publish`](Self::publish) for threads outside the runtime.
    pub fn publish_blocking(&self, locator: &Locator) -> Result<Publication, Error> {
        block_on(self.publish(locator))?
    }

    /// Stops listening and closes the callers' connections.
    pub fn close(&self) {
        self.server.close();
        let peers = std::mem::take(&mut *lock(&self.peers));
        for p in peers {
            p.close();
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        self.close();
    }
}

/// A service announced to a Locator with `publish` (docs/PROTOCOL.md §7.2). It
/// stays online while this lives: [`discard`](Self::discard) (or dropping
/// it) takes it offline, and so does the end of its Locator connection.
pub struct Publication {
    peer: Peer,
    call: Call,
    name: String,
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Publication {
    /// Publishes `name` at `endpoints` with its version and graph.
    pub async fn publish(locator: &Locator, name: &str, endpoints: &[Endpoint], version: u64, graph: &Graph) -> Result<Publication, Error> {
        let eps = Value::Array(endpoints.iter().filter_map(endpoint_to_value).collect());
        let args = vec![Value::from(name), eps, Value::Array(vec![Value::Uint(version), graph.to_value()])];
        let peer = locator.connect(None).await?;
        let m = Locator::graph().method("publish").cloned().expect("publish is in the locator graph");
        let r = within(locator.config().request_timeout, async {
            let mut call = peer.call(m.id, &args, &[], &m.tx, &m.rx)?;
            match call.recv().await {
                Some(Ok(r)) if r.name == "value" => Ok(call),
                Some(Ok(r)) => Err(Error::BadReply(format!("publish answered '{}'", r.name))),
                Some(Err(e)) => Err(e),
                None => Err(Error::Closed),
            }
        })
        .await;
        match r {
            Ok(call) => Ok(Publication { peer, call, name: name.to_string() }),
            Err(e) => {
                peer.close();
                Err(e)
            }
        }
    }

    /// The name published.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the Locator connection is still up (the service online).
    pub fn is_live(&self) -> bool {
        self.peer.is_up()
    }

    /// Takes the service offline: sends `discard` and closes the connection.
    pub fn discard(self) {}
}

impl Drop for Publication {
    fn drop(&mut self) {
        let _ = self.call.send("discard", &[]);
        self.peer.close();
    }
}
