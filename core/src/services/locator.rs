//! A Locator service whose table is a registry of online services
//! (docs/PROTOCOL.md §7.2), with the sluice extensions `attach` and `services`
//! (`docs/attach.md`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::attach::Proxy;
use super::client::{endpoint_from_value, endpoint_to_value, ids};
use super::graph::{Graph, Node, Protocol, Transition};
use super::host::{advertised, serve_on, Responder};
use super::peer::{Call, Follow, Inbound, Peer, Serve};
use super::{
    Error, Locator, ServiceError, DISPATCH_CATEGORY, DUPLICATE_SERVICE, INVALID_ARGUMENT, LOCATOR_CATEGORY, SERVICE_NOT_AVAILABLE,
    SLOT_NOT_FOUND,
};
use crate::net::{Endpoint, Server};
use crate::wire::{Dialect, Header, Value};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Offline entries kept for listing (the oldest go first past this).
const MAX_OFFLINE: usize = 1024;

/// Services registered at most (further registrations are refused).
pub const MAX_SERVICES: usize = 10_000;

/// Names one connection may hold registered at once (`publish` and
/// `attach`; each attach also holds a listening socket): past it a
/// registration is refused, so one client cannot fill the registry or the
/// descriptor table for everyone else.
pub const MAX_NAMES_PER_CONNECTION: usize = 64;

/// A service the registry knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The service name.
    pub name: String,
    /// Where callers reach it.
    pub endpoints: Vec<Endpoint>,
    /// Its protocol version.
    pub version: u64,
    /// Its method graph.
    pub graph: Graph,
    /// Whether it can be resolved now.
    pub online: bool,
    /// Who registered it: `local`, `published by ADDR`, `attached by ADDR`.
    pub origin: String,
}

struct Slot {
    entry: Entry,
    /// 0: registered in-process, for good.
    owner: u64,
    /// The connection of a client that attached the service.
    attached: Option<Peer>,
    /// When it went offline (for trimming), by a counter.
    offline_since: u64,
}

type Listener = Arc<dyn Fn(&Entry) + Send + Sync>;

#[derive(Default)]
struct RegInner {
    slots: BTreeMap<String, Slot>,
    next_owner: u64,
    clock: u64,
    listeners: Vec<Listener>,
}

/// The services a Locator announces. A service registered over a
/// connection (`publish`, `attach`) is online while that registration
/// lives, and goes offline at once when its channel is discarded or its
/// connection drops; registering the name again brings it back. Cheap to
/// clone (clones share the table).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<RegInner>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("services", &lock(&self.inner).slots.len()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a service of this process: online for good.
    pub fn add(&self, name: &str, endpoints: Vec<Endpoint>, version: u64, graph: Graph) {
        let entry = Entry { name: name.into(), endpoints, version, graph, online: true, origin: "local".into() };
        let _ = self.register(entry, 0, None, true);
    }

    /// Every service known, online or not, by name.
    pub fn list(&self) -> Vec<Entry> {
        lock(&self.inner).slots.values().map(|s| s.entry.clone()).collect()
    }

    /// The service `name`, online or not.
    pub fn get(&self, name: &str) -> Option<Entry> {
        lock(&self.inner).slots.get(name).map(|s| s.entry.clone())
    }

    /// The service `name` if it is online.
    pub fn resolve(&self, name: &str) -> Option<Entry> {
        self.get(name).filter(|e| e.online)
    }

    /// Calls `f` whenever a service comes online or goes offline (on the
    /// thread that changed it; it must not block).
    pub fn on_change(&self, f: impl Fn(&Entry) + Send + Sync + 'static) {
        lock(&self.inner).listeners.push(Arc::new(f));
    }

    /// Invokes `method` of a service a connected client attached: the call
    /// goes over that client's own connection and the client answers on it
    /// (remote invocation, `docs/attach.md`).
    pub fn invoke(&self, name: &str, method: &str, args: Vec<Value>) -> Result<Call, Error> {
        let (peer, graph) = {
            let inner = lock(&self.inner);
            let slot = inner.slots.get(name).filter(|s| s.entry.online).ok_or_else(|| Error::NotFound(name.into()))?;
            let peer = slot.attached.clone().ok_or_else(|| Error::NotFound(format!("{name} (not attached by a client)")))?;
            (peer, slot.entry.graph.clone())
        };
        let m = graph.method(method).ok_or_else(|| Error::UnknownMethod { service: name.into(), method: method.into() })?;
        super::attach::invoke(&peer, name, m, args, &[])
    }

    fn owner(&self) -> u64 {
        let mut inner = lock(&self.inner);
        inner.next_owner += 1;
        inner.next_owner
    }

    /// Puts an entry online for `owner`; refused if another owner has the
    /// name online.
    fn register(&self, entry: Entry, owner: u64, attached: Option<Peer>, replace: bool) -> Result<(), Error> {
        let listeners = {
            let mut inner = lock(&self.inner);
            if inner.slots.len() >= MAX_SERVICES && !inner.slots.contains_key(&entry.name) {
                return Err(Error::Service(ServiceError::new(LOCATOR_CATEGORY, super::ROUTING_STORAGE_ERROR, "the registry is full")));
            }
            if let Some(s) = inner.slots.get(&entry.name) {
                if s.entry.online && s.owner != owner && !replace {
                    return Err(Error::Service(ServiceError::new(
                        LOCATOR_CATEGORY,
                        DUPLICATE_SERVICE,
                        format!("service '{}' is already online", entry.name),
                    )));
                }
            }
            inner.slots.insert(entry.name.clone(), Slot { entry: entry.clone(), owner, attached, offline_since: 0 });
            inner.listeners.clone()
        };
        for l in listeners {
            l(&entry);
        }
        Ok(())
    }

    /// Takes `name` offline if `owner` still holds it.
    fn unregister(&self, name: &str, owner: u64) {
        let (entry, listeners) = {
            let mut inner = lock(&self.inner);
            inner.clock += 1;
            let now = inner.clock;
            let Some(s) = inner.slots.get_mut(name).filter(|s| s.owner == owner && s.entry.online) else { return };
            s.entry.online = false;
            s.attached = None;
            s.offline_since = now;
            // Listeners see the entry as it was; the registry keeps an
            // offline entry's name, version, endpoints and origin, not its
            // graph (up to MAX_OFFLINE entries of up to MAX_GRAPH_SIZE each).
            let graph = std::mem::take(&mut s.entry.graph);
            let entry = Entry { graph, ..s.entry.clone() };
            let offline: Vec<(u64, String)> =
                inner.slots.values().filter(|s| !s.entry.online).map(|s| (s.offline_since, s.entry.name.clone())).collect();
            if offline.len() > MAX_OFFLINE {
                let oldest = offline.iter().min().map(|(_, n)| n.clone()).unwrap_or_default();
                inner.slots.remove(&oldest);
            }
            (entry, inner.listeners.clone())
        };
        for l in listeners {
            l(&entry);
        }
    }
}

/// A Locator listening for clients, answering from its [`Registry`].
///
/// Methods: `resolve`, `publish` (the service stays online while the
/// publishing channel is open), `cluster`, `uuid`, and the sluice
/// extensions `attach` and `services` (`docs/attach.md`). `connect`,
/// `refresh` and `routing` are answered with a dispatch error.
pub struct LocatorServer {
    server: Server,
    registry: Registry,
    peers: Arc<Mutex<Vec<Peer>>>,
    uuid: String,
}

impl std::fmt::Debug for LocatorServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocatorServer").field("local", self.server.local()).finish_non_exhaustive()
    }
}

struct LocServe {
    registry: Registry,
    uuid: String,
    local: Mutex<Option<Endpoint>>,
    /// Where proxies for attached services listen.
    proxy_host: String,
    /// Names each connection holds registered ([`Peer::key`]).
    held: Arc<Mutex<std::collections::HashMap<usize, usize>>>,
}

/// A service name: a byte string that is valid UTF-8 (decoded strictly,
/// so that two different names never become one).
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_bytes).and_then(|b| String::from_utf8(b.to_vec()).ok())
}

fn discard_follow(registry: Registry, name: String, owner: u64, on_end: Option<Box<dyn FnOnce() + Send>>) -> Follow {
    let mut on_end = on_end;
    Box::new(move |ev: Inbound| {
        let ended = match ev {
            Inbound::Message(m) => m.name == "discard",
            Inbound::Gone(_) => true,
        };
        if ended {
            registry.unregister(&name, owner);
            if let Some(f) = on_end.take() {
                f();
            }
        }
    })
}

impl LocServe {
    fn reply(&self, peer: &Peer, id: u64, result: Result<Vec<Value>, ServiceError>) {
        let mut out = Responder::new(peer, id, &Node::primitive(), "");
        let _ = match result {
            Ok(v) => out.value(v),
            Err(e) => out.error(&e),
        };
    }

    fn publish(&self, peer: &Peer, id: u64, args: &[Value], attach: bool) -> Option<(Node, Follow)> {
        let invalid = |m: &str| ServiceError::new(DISPATCH_CATEGORY, INVALID_ARGUMENT, m.to_string());
        let Some(name) = text(args.first()) else {
            self.reply(peer, id, Err(invalid("expected the service name first (a UTF-8 string)")));
            return None;
        };
        // publish(name, endpoints, [version, graph]?) / attach(name, version, graph)
        let (endpoints, vg): (Vec<Endpoint>, Option<(&Value, &Value)>) = if attach {
            (Vec::new(), args.get(1).zip(args.get(2)))
        } else {
            let eps = args.get(1).and_then(Value::as_array).map(|a| a.iter().filter_map(endpoint_from_value).collect());
            let Some(eps) = eps else {
                self.reply(peer, id, Err(invalid("expected endpoints as [[host, port], ...]")));
                return None;
            };
            let vg = args.get(2).and_then(Value::as_array).and_then(|a| a.first().zip(a.get(1)));
            (eps, vg)
        };
        let (version, graph) = match vg {
            Some((v, g)) => match (v.as_u64(), Graph::from_value(g)) {
                (Some(v), Ok(g)) => (v, g),
                (_, Err(e)) => {
                    self.reply(peer, id, Err(invalid(&e.to_string())));
                    return None;
                }
                (None, _) => {
                    self.reply(peer, id, Err(invalid("the version is not an unsigned integer")));
                    return None;
                }
            },
            None if attach => {
                self.reply(peer, id, Err(invalid("attach(name, version, graph)")));
                return None;
            }
            None => (0, Graph::default()),
        };
        // One more name held by this connection, or refused; given back
        // when the registration ends (or fails below).
        let key = peer.key();
        {
            let mut held = lock(&self.held);
            let n = held.entry(key).or_insert(0);
            if *n >= MAX_NAMES_PER_CONNECTION {
                drop(held);
                let e = ServiceError::new(
                    LOCATOR_CATEGORY,
                    super::ROUTING_STORAGE_ERROR,
                    format!("this connection holds {MAX_NAMES_PER_CONNECTION} registered names, the most one may"),
                );
                self.reply(peer, id, Err(e));
                return None;
            }
            *n += 1;
        }
        let held = self.held.clone();
        let release = move || {
            let mut held = lock(&held);
            if let Some(n) = held.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&key);
                }
            }
        };
        let peer_addr = match peer.addr() {
            "" => "a local client",
            a => a,
        };
        let owner = self.registry.owner();
        let origin = format!("{} by {peer_addr}", if attach { "attached" } else { "published" });
        if attach {
            let proxy = match Proxy::bind(&self.proxy_host, peer, &name, &graph) {
                Ok(p) => p,
                Err(e) => {
                    release();
                    self.reply(peer, id, Err(ServiceError::new(DISPATCH_CATEGORY, SLOT_NOT_FOUND, e.to_string())));
                    return None;
                }
            };
            let endpoints = vec![advertised(proxy.local())];
            let entry = Entry { name: name.clone(), endpoints: endpoints.clone(), version, graph, online: true, origin };
            if let Err(Error::Service(e)) = self.registry.register(entry, owner, Some(peer.clone()), false) {
                proxy.close();
                release();
                self.reply(peer, id, Err(e));
                return None;
            }
            self.reply(peer, id, Ok(vec![Value::Array(endpoints.iter().filter_map(endpoint_to_value).collect())]));
            let tx = Locator::graph().method_by_id(ids::ATTACH).map(|m| m.tx.clone()).unwrap_or(Node::Terminal);
            let end = move || {
                proxy.close();
                release();
            };
            return Some((tx, discard_follow(self.registry.clone(), name, owner, Some(Box::new(end)))));
        }
        let entry = Entry { name: name.clone(), endpoints, version, graph, online: true, origin };
        if let Err(Error::Service(e)) = self.registry.register(entry, owner, None, false) {
            release();
            self.reply(peer, id, Err(e));
            return None;
        }
        self.reply(peer, id, Ok(vec![]));
        let tx = Node::Protocol(Protocol::new(vec![Transition::new(0, "discard", Node::Terminal)]));
        Some((tx, discard_follow(self.registry.clone(), name, owner, Some(Box::new(release)))))
    }
}

impl Serve for LocServe {
    fn open(&self, peer: &Peer, id: u64, ty: u64, args: Vec<Value>, _headers: Vec<Header>) -> Option<(Node, Follow)> {
        match ty {
            ids::RESOLVE => {
                let Some(name) = text(args.first()) else {
                    let e = ServiceError::new(DISPATCH_CATEGORY, INVALID_ARGUMENT, "expected the service name (a UTF-8 string)");
                    self.reply(peer, id, Err(e));
                    return None;
                };
                let r = match self.registry.resolve(&name) {
                    Some(e) => Ok(vec![
                        Value::Array(e.endpoints.iter().filter_map(endpoint_to_value).collect()),
                        Value::Uint(e.version),
                        e.graph.to_value(),
                    ]),
                    None => Err(ServiceError::new(LOCATOR_CATEGORY, SERVICE_NOT_AVAILABLE, "service is not available")),
                };
                self.reply(peer, id, r);
                None
            }
            ids::PUBLISH => self.publish(peer, id, &args, false),
            ids::ATTACH => self.publish(peer, id, &args, true),
            ids::UUID => {
                self.reply(peer, id, Ok(vec![Value::from(self.uuid.as_str())]));
                None
            }
            ids::CLUSTER => {
                let me = lock(&self.local).clone().and_then(|e| endpoint_to_value(&e)).unwrap_or(Value::Nil);
                self.reply(peer, id, Ok(vec![Value::Map(vec![(Value::from(self.uuid.as_str()), me)])]));
                None
            }
            ids::SERVICES => {
                let list = self
                    .registry
                    .list()
                    .into_iter()
                    .map(|e| {
                        let eps = Value::Array(e.endpoints.iter().filter_map(endpoint_to_value).collect());
                        (
                            Value::from(e.name.as_str()),
                            Value::Array(vec![Value::Bool(e.online), Value::Uint(e.version), eps, Value::from(e.origin.as_str())]),
                        )
                    })
                    .collect();
                self.reply(peer, id, Ok(vec![Value::Map(list)]));
                None
            }
            other => {
                let name = Locator::graph().method_by_id(other).map(|m| m.name.clone()).unwrap_or_else(|| other.to_string());
                let m = Locator::graph().method_by_id(other).cloned();
                let rx = m.map(|m| m.rx).unwrap_or_else(Node::primitive);
                let mut out = Responder::new(peer, id, &rx, &name);
                let _ =
                    out.error(&ServiceError::new(DISPATCH_CATEGORY, SLOT_NOT_FOUND, format!("'{name}' is not supported by this locator")));
                None
            }
        }
    }
}

fn make_uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        h.write_u32(std::process::id());
        h.write_usize(i);
        *p = h.finish();
    }
    let [a, b] = parts;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

impl LocatorServer {
    /// Listens on `endpoint` and answers from `registry`, where it also
    /// registers itself as `locator`. Proxies for attached services listen
    /// on the same host, on free ports.
    pub fn bind(endpoint: &Endpoint, registry: Registry) -> Result<LocatorServer, Error> {
        let proxy_host = match endpoint {
            Endpoint::Tcp(h, _) => h.clone(),
            Endpoint::Unix(_) => "127.0.0.1".into(),
        };
        let uuid = make_uuid();
        let serve = Arc::new(LocServe {
            registry: registry.clone(),
            uuid: uuid.clone(),
            local: Mutex::new(None),
            proxy_host,
            held: Arc::default(),
        });
        let peers = Arc::new(Mutex::new(Vec::new()));
        let server = serve_on(endpoint, Dialect::V1, serve.clone(), peers.clone(), false)?;
        let local = advertised(server.local());
        *lock(&serve.local) = Some(local.clone());
        if matches!(local, Endpoint::Tcp(..)) {
            registry.add("locator", vec![local], 3, Locator::graph());
        }
        Ok(LocatorServer { server, registry, peers, uuid })
    }

    /// Where it listens (with the actual port).
    pub fn local(&self) -> &Endpoint {
        self.server.local()
    }

    /// Its registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The uuid it answers `uuid` with.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// How many clients are connected.
    pub fn connections(&self) -> usize {
        lock(&self.peers).len()
    }

    /// Stops listening and closes every client connection (what they
    /// registered goes offline).
    pub fn close(&self) {
        self.server.close();
        let peers = std::mem::take(&mut *lock(&self.peers));
        for p in peers {
            p.close();
        }
    }
}

impl Drop for LocatorServer {
    fn drop(&mut self) {
        self.close();
    }
}
