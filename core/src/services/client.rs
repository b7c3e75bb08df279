//! The client side: resolving through the Locator, connecting to a
//! service's endpoints and calling its methods (docs/PROTOCOL.md §7).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::graph::{Graph, Method, Node};
use super::peer::{Call, Peer};
use super::{block_on, within, ClientConfig, Error, LOCATOR_CATEGORY, LOCATOR_PORT, SERVICE_NOT_AVAILABLE};
use crate::net::Endpoint;
use crate::wire::{Dialect, Header, Value};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the Locator says about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The service name asked for.
    pub name: String,
    /// Where it listens, in the Locator's order.
    pub endpoints: Vec<Endpoint>,
    /// Its protocol version.
    pub version: u64,
    /// Its method graph.
    pub graph: Graph,
}

/// Reads `[host, port]`.
pub(crate) fn endpoint_from_value(v: &Value) -> Option<Endpoint> {
    let pair = v.as_array()?;
    let host = String::from_utf8_lossy(pair.first()?.as_bytes()?).into_owned();
    let port = u16::try_from(pair.get(1)?.as_u64()?).ok()?;
    Some(Endpoint::Tcp(host, port))
}

/// `[host, port]` for a TCP endpoint (Unix endpoints have no such form).
pub(crate) fn endpoint_to_value(e: &Endpoint) -> Option<Value> {
    match e {
        Endpoint::Tcp(h, p) => Some(Value::Array(vec![Value::from(h.as_str()), Value::from(*p as u64)])),
        Endpoint::Unix(_) => None,
    }
}

impl Resolved {
    /// Reads the value of a v1 `resolve`: `[endpoints, version, graph]`.
    pub fn from_args(name: &str, args: &[Value]) -> Result<Resolved, Error> {
        let bad = |what: &str| Error::BadReply(format!("resolve '{name}': {what}"));
        let [eps, version, graph, ..] = args else { return Err(bad("expected [endpoints, version, graph]")) };
        let endpoints = eps
            .as_array()
            .ok_or_else(|| bad("endpoints are not an array"))?
            .iter()
            .map(|e| endpoint_from_value(e).ok_or_else(|| bad(&format!("endpoint {e} is not [host, port]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let version = version.as_u64().ok_or_else(|| bad("the version is not an unsigned integer"))?;
        let graph = Graph::from_value(graph).map_err(|e| bad(&e.to_string()))?;
        Ok(Resolved { name: name.to_string(), endpoints, version, graph })
    }

    /// Reads a v0 `resolve` result: `[[host, port], version, {id: name}]`.
    pub fn from_v0_value(name: &str, v: &Value) -> Result<Resolved, Error> {
        let bad = |what: &str| Error::BadReply(format!("resolve '{name}': {what}"));
        let [ep, version, table, ..] = v.as_array().ok_or_else(|| bad("not an array"))? else {
            return Err(bad("expected [endpoint, version, methods]"));
        };
        Ok(Resolved {
            name: name.to_string(),
            endpoints: vec![endpoint_from_value(ep).ok_or_else(|| bad("the endpoint is not [host, port]"))?],
            version: version.as_u64().ok_or_else(|| bad("the version is not an unsigned integer"))?,
            graph: Graph::from_v0_value(table).map_err(|e| bad(&e.to_string()))?,
        })
    }

    /// The `value` arguments that announce this service.
    pub fn to_args(&self) -> Vec<Value> {
        vec![Value::Array(self.endpoints.iter().filter_map(endpoint_to_value).collect()), Value::Uint(self.version), self.graph.to_value()]
    }
}

impl fmt::Display for Resolved {
    /// The service, its endpoints and its methods, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "service {} (protocol version {})", crate::host::printable(&self.name), self.version)?;
        let eps: Vec<String> = self.endpoints.iter().map(|e| crate::host::printable(&e.to_string()).into_owned()).collect();
        writeln!(f, "endpoints: {}", if eps.is_empty() { "none".to_string() } else { eps.join(", ") })?;
        writeln!(f, "methods:")?;
        write!(f, "{}", self.graph)
    }
}

/// A Locator to ask: one or more endpoints, tried in order until one
/// connects (failover). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Locator {
    endpoints: Vec<Endpoint>,
    config: ClientConfig,
}

impl Default for Locator {
    /// `localhost:10053`.
    fn default() -> Self {
        Locator::new(vec![Endpoint::Tcp("localhost".into(), LOCATOR_PORT)])
    }
}

/// Locator method ids (docs/PROTOCOL.md §7.2) and the sluice extensions.
pub(crate) mod ids {
    pub const RESOLVE: u64 = 0;
    pub const CONNECT: u64 = 1;
    pub const REFRESH: u64 = 2;
    pub const CLUSTER: u64 = 3;
    pub const PUBLISH: u64 = 4;
    pub const ROUTING: u64 = 5;
    pub const UUID: u64 = 6;
    /// sluice: attach a service served over this connection (docs/attach.md).
    pub const ATTACH: u64 = 0x5100;
    /// sluice: list the registry.
    pub const SERVICES: u64 = 0x5101;
}

impl Locator {
    /// A Locator reached at `endpoints` (tried in this order).
    pub fn new(endpoints: Vec<Endpoint>) -> Locator {
        Locator { endpoints, config: ClientConfig::default() }
    }

    /// The same Locator with other client settings (also used by the
    /// services it resolves).
    pub fn with_config(mut self, config: ClientConfig) -> Locator {
        self.config = config;
        self
    }

    /// Its endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The client settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The Locator's own method graph (docs/PROTOCOL.md §7.2, version 3), with
    /// the sluice extensions `attach` and `services`.
    pub fn graph() -> Graph {
        let discard = Node::Protocol(super::graph::Protocol::new(vec![super::graph::Transition::new(0, "discard", Node::Terminal)]));
        Graph::new(vec![
            Method::new(ids::RESOLVE, "resolve", Node::Terminal, Node::primitive()),
            Method::new(ids::CONNECT, "connect", Node::Terminal, Node::streaming()),
            Method::new(ids::REFRESH, "refresh", Node::Terminal, Node::primitive()),
            Method::new(ids::CLUSTER, "cluster", Node::Terminal, Node::primitive()),
            Method::new(ids::PUBLISH, "publish", discard.clone(), Node::primitive()),
            Method::new(ids::ROUTING, "routing", discard.clone(), Node::streaming()),
            Method::new(ids::UUID, "uuid", Node::Terminal, Node::primitive()),
            Method::new(ids::ATTACH, "attach", discard, Node::primitive()),
            Method::new(ids::SERVICES, "services", Node::Terminal, Node::primitive()),
        ])
    }

    /// Connects to the first endpoint that answers.
    pub(crate) async fn connect(&self, serve: Option<Arc<dyn super::peer::Serve>>) -> Result<Peer, Error> {
        let mut tried = Vec::new();
        for ep in &self.endpoints {
            match Peer::connect(ep, self.config.dialect, self.config.connect_timeout, serve.clone(), self.config.max_pending).await {
                Ok(p) => return Ok(p),
                Err(e) => tried.push((ep.to_string(), e)),
            }
        }
        Err(Error::Connect { what: "the locator".into(), tried })
    }

    /// Calls a primitive Locator method by name and returns its value.
    pub async fn call(&self, method: &str, args: Vec<Value>) -> Result<Vec<Value>, Error> {
        let graph = Locator::graph();
        let m = graph.method(method).ok_or_else(|| Error::UnknownMethod { service: "locator".into(), method: method.into() })?;
        let peer = self.connect(None).await?;
        let result = within(self.config.request_timeout, async { peer.call(m.id, &args, &[], &m.tx, &m.rx)?.value().await }).await;
        peer.close();
        result
    }

    /// [`call`](Self::call) for threads outside the runtime.
    pub fn call_blocking(&self, method: &str, args: Vec<Value>) -> Result<Vec<Value>, Error> {
        block_on(self.call(method, args))?
    }

    /// Resolves a service: its endpoints, version and method graph.
    /// [`Error::NotFound`] if the Locator does not have it online.
    pub async fn resolve(&self, name: &str) -> Result<Resolved, Error> {
        let not_found = |e: Error| match e {
            Error::Service(s) if s.category == Some(LOCATOR_CATEGORY) && s.code == SERVICE_NOT_AVAILABLE => Error::NotFound(name.into()),
            // v0: `error(1, message)` (docs/PROTOCOL.md §2.3).
            Error::Service(s) if s.category.is_none() => Error::NotFound(name.into()),
            e => e,
        };
        let v = self.call("resolve", vec![Value::from(name)]).await.map_err(not_found)?;
        match self.config.dialect {
            Dialect::V1 => Resolved::from_args(name, &v),
            Dialect::V0 => Resolved::from_v0_value(name, v.first().unwrap_or(&Value::Nil)),
        }
    }

    /// [`resolve`](Self::resolve) for threads outside the runtime.
    pub fn resolve_blocking(&self, name: &str) -> Result<Resolved, Error> {
        block_on(self.resolve(name))?
    }

    /// A client for the service `name`, resolved through this Locator when
    /// it first connects and again after each disconnection.
    pub fn service(&self, name: &str) -> Service {
        Service::build(name, Source::Locator(self.clone()), self.config.clone())
    }
}

/// Where a [`Service`] is in its life (the framework's states,
/// docs/PROTOCOL.md §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Not connected (never, or the connection ended): the next call
    /// resolves and connects again.
    Closed,
    /// Resolving and connecting.
    Connecting,
    /// Connected: calls go out at once.
    Connected,
    /// The last attempt to connect failed; the next call tries again.
    Error,
}

enum Source {
    Locator(Locator),
    Fixed(Resolved),
}

struct SvcState {
    state: ServiceState,
    peer: Option<Peer>,
    info: Option<Resolved>,
    endpoint: Option<Endpoint>,
    generation: u64,
}

struct SvcInner {
    name: String,
    source: Source,
    config: ClientConfig,
    st: Mutex<SvcState>,
    connecting: tokio::sync::Mutex<()>,
    spread: AtomicUsize,
}

impl Drop for SvcInner {
    fn drop(&mut self) {
        // The last handle is gone: the connection closes once the calls
        // still in progress have ended (or been dropped).
        let peer = self.st.get_mut().unwrap_or_else(|e| e.into_inner()).peer.take();
        if let Some(p) = peer {
            p.release();
        }
    }
}

/// A client for one service. Cheap to clone (clones share the connection,
/// which closes when the last clone and the last call in progress are
/// gone).
///
/// It resolves (through a [`Locator`]) and connects on the first call or
/// [`connect`](Self::connect); it picks among the service's endpoints in
/// turn, one connection at a time, and tries the others if one fails. When
/// the connection ends, calls in progress fail with
/// [`Error::Disconnected`], the state becomes [`ServiceState::Closed`], and
/// the next call resolves and connects again.
#[derive(Clone)]
pub struct Service {
    inner: Arc<SvcInner>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service").field("name", &self.inner.name).field("state", &self.state()).finish_non_exhaustive()
    }
}

impl Service {
    fn build(name: &str, source: Source, config: ClientConfig) -> Service {
        Service {
            inner: Arc::new(SvcInner {
                name: name.to_string(),
                source,
                config,
                st: Mutex::new(SvcState { state: ServiceState::Closed, peer: None, info: None, endpoint: None, generation: 0 }),
                connecting: tokio::sync::Mutex::new(()),
                spread: AtomicUsize::new(std::process::id() as usize),
            }),
        }
    }

    /// A client for a service whose endpoints and graph are already known
    /// (no Locator involved).
    pub fn direct(info: Resolved, config: ClientConfig) -> Service {
        Service::build(&info.name.clone(), Source::Fixed(info), config)
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How long internal requests may wait for an answer.
    pub(crate) fn request_timeout(&self) -> Option<std::time::Duration> {
        self.inner.config.request_timeout
    }

    /// The current state.
    pub fn state(&self) -> ServiceState {
        lock(&self.inner.st).state
    }

    /// What the last resolve said (endpoints, version, graph).
    pub fn info(&self) -> Option<Resolved> {
        lock(&self.inner.st).info.clone()
    }

    /// How many connections have been made so far (it grows by one with
    /// each reconnection).
    pub fn generation(&self) -> u64 {
        lock(&self.inner.st).generation
    }

    /// The endpoint of the current connection.
    pub fn connected_to(&self) -> Option<Endpoint> {
        let st = lock(&self.inner.st);
        st.peer.as_ref().and(st.endpoint.clone())
    }

    /// Resolves and connects unless connected.
    pub async fn connect(&self) -> Result<(), Error> {
        if self.live_peer().is_some() {
            return Ok(());
        }
        let _one = self.inner.connecting.lock().await;
        if self.live_peer().is_some() {
            return Ok(());
        }
        lock(&self.inner.st).state = ServiceState::Connecting;
        let result = self.establish().await;
        let mut st = lock(&self.inner.st);
        match result {
            Ok((peer, info, endpoint)) => {
                st.peer = Some(peer.clone());
                st.endpoint = Some(endpoint);
                st.info = Some(info);
                st.generation += 1;
                st.state = ServiceState::Connected;
                drop(st);
                let weak: Weak<SvcInner> = Arc::downgrade(&self.inner);
                let me = peer.clone();
                peer.on_down(move |_| {
                    if let Some(inner) = weak.upgrade() {
                        let mut st = lock(&inner.st);
                        if st.peer.as_ref().is_some_and(|p| p.same(&me)) {
                            st.peer = None;
                            st.state = ServiceState::Closed;
                        }
                    }
                });
                Ok(())
            }
            Err(e) => {
                st.state = ServiceState::Error;
                Err(e)
            }
        }
    }

    /// [`connect`](Self::connect) for threads outside the runtime.
    pub fn connect_blocking(&self) -> Result<(), Error> {
        block_on(self.connect())?
    }

    fn live_peer(&self) -> Option<Peer> {
        let st = lock(&self.inner.st);
        st.peer.clone().filter(Peer::is_up)
    }

    async fn establish(&self) -> Result<(Peer, Resolved, Endpoint), Error> {
        let info = match &self.inner.source {
            Source::Locator(l) => l.resolve(&self.inner.name).await?,
            Source::Fixed(r) => r.clone(),
        };
        let n = info.endpoints.len();
        let start = if n > 0 { self.inner.spread.fetch_add(1, Ordering::Relaxed) % n } else { 0 };
        let mut tried = Vec::new();
        for k in 0..n {
            let ep = info.endpoints[(start + k) % n].clone();
            let c = &self.inner.config;
            match Peer::connect(&ep, c.dialect, c.connect_timeout, None, c.max_pending).await {
                Ok(p) => return Ok((p, info, ep)),
                Err(e) => tried.push((ep.to_string(), e)),
            }
        }
        Err(Error::Connect { what: format!("service '{}'", self.inner.name), tried })
    }

    /// Calls `method` with `args`. Replies come through the returned
    /// [`Call`]: [`Call::value`] for a primitive method, [`Call::recv`] or
    /// [`Call::collect`] for a stream.
    pub async fn call(&self, method: &str, args: Vec<Value>) -> Result<Call, Error> {
        self.call_with_headers(method, args, &[]).await
    }

    /// [`call`](Self::call) with v1 headers (e.g. tracing ids).
    pub async fn call_with_headers(&self, method: &str, args: Vec<Value>, headers: &[Header]) -> Result<Call, Error> {
        for attempt in 0..2 {
            self.connect().await?;
            let (peer, m) = {
                let st = lock(&self.inner.st);
                let (Some(peer), Some(info)) = (st.peer.clone(), st.info.as_ref()) else { continue };
                let m = info
                    .graph
                    .method(method)
                    .cloned()
                    .ok_or_else(|| Error::UnknownMethod { service: self.inner.name.clone(), method: method.into() })?;
                (peer, m)
            };
            match peer.call(m.id, &args, headers, &m.tx, &m.rx) {
                // The connection ended just now: connect again once.
                Err(Error::Disconnected(_) | Error::Closed) if attempt == 0 => continue,
                r => return r,
            }
        }
        Err(Error::Closed)
    }

    /// [`call`](Self::call) for threads outside the runtime.
    pub fn call_blocking(&self, method: &str, args: Vec<Value>) -> Result<Call, Error> {
        block_on(self.call(method, args))?
    }

    /// Closes the connection (calls in progress fail); the next call
    /// connects again.
    pub fn close(&self) {
        let peer = {
            let mut st = lock(&self.inner.st);
            st.state = ServiceState::Closed;
            st.peer.take()
        };
        if let Some(p) = peer {
            p.close();
        }
    }
}
