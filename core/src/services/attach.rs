//! Remote invocation (a sluice extension, `docs/attach.md`): a client
//! attaches a service to a sluice Locator over its own connection; the
//! Locator gives it an endpoint (a proxy) for everyone else, and sends each
//! call to the client over that connection, where the client answers.

use std::sync::{Arc, Mutex};

use super::client::{endpoint_from_value, ids};
use super::graph::{Graph, Method, Node};
use super::host::{serve_on, Responder, ServiceDef};
use super::peer::{Call, Follow, Inbound, Peer, Serve};
use super::{block_on, within, Error, Locator, ServiceError, DISPATCH_CATEGORY, SLOT_NOT_FOUND};
use crate::net::{Endpoint, Server};
use crate::wire::{Dialect, Header, Value};

/// The type of the message that opens an invocation on the attaching
/// client's connection: `invoke(service, method_id, args)`.
pub(crate) const INVOKE: u64 = 0;

/// Dispatch code "not connected" (docs/PROTOCOL.md §3.5).
const NOT_CONNECTED: i64 = 3;

/// Sends a call of `m` to the client that attached `name`, over `peer`.
pub(crate) fn invoke(peer: &Peer, name: &str, m: &Method, args: Vec<Value>, headers: &[Header]) -> Result<Call, Error> {
    let wrapped = [Value::from(name), Value::Uint(m.id), Value::Array(args)];
    peer.call(INVOKE, &wrapped, headers, &m.tx, &m.rx)
}

/// Serves callers of an attached service by relaying to the client.
struct Relay {
    client: Peer,
    name: String,
    graph: Graph,
}

impl Serve for Relay {
    fn open(&self, caller: &Peer, id: u64, ty: u64, args: Vec<Value>, headers: Vec<Header>) -> Option<(Node, Follow)> {
        let Some(m) = self.graph.method_by_id(ty) else {
            let mut out = Responder::new(caller, id, &Node::primitive(), "");
            let _ = out.error(&ServiceError::new(DISPATCH_CATEGORY, SLOT_NOT_FOUND, format!("service '{}' has no method {ty}", self.name)));
            return None;
        };
        let mut out = Responder::new(caller, id, &m.rx, &m.name);
        let mut call = match invoke(&self.client, &self.name, m, args, &headers) {
            Ok(c) => c,
            Err(e) => {
                let _ = out.error(&ServiceError::new(DISPATCH_CATEGORY, NOT_CONNECTED, format!("service '{}': {e}", self.name)));
                return None;
            }
        };
        let sender = call.sender();
        let rt = crate::net::runtime::handle().ok()?;
        rt.spawn(async move {
            // The caller reads at its own pace: a full send queue waits for
            // room (the client's replies wait meanwhile in the call, within
            // its limit of unread bytes), so nothing is lost on the way.
            while let Some(item) = call.recv().await {
                let sent = match item {
                    Ok(r) => out.send_async(&r.name, &r.args).await,
                    Err(Error::Service(e)) => out.send_async("error", &e.to_args()).await,
                    Err(e) => out.send_async("error", &ServiceError::new(DISPATCH_CATEGORY, NOT_CONNECTED, e.to_string()).to_args()).await,
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        Some((
            m.tx.clone(),
            Box::new(move |ev: Inbound| {
                if let Inbound::Message(r) = ev {
                    let _ = sender.send(&r.name, &r.args);
                }
            }),
        ))
    }
}

/// The listening side of an attached service, inside the Locator.
pub(crate) struct Proxy {
    server: Server,
    peers: Arc<Mutex<Vec<Peer>>>,
}

impl Proxy {
    pub(crate) fn bind(host: &str, client: &Peer, name: &str, graph: &Graph) -> Result<Proxy, Error> {
        let relay = Arc::new(Relay { client: client.clone(), name: name.to_string(), graph: graph.clone() });
        let peers = Arc::new(Mutex::new(Vec::new()));
        let server = serve_on(&Endpoint::Tcp(host.to_string(), 0), Dialect::V1, relay, peers.clone(), true)?;
        Ok(Proxy { server, peers })
    }

    pub(crate) fn local(&self) -> &Endpoint {
        self.server.local()
    }

    pub(crate) fn close(&self) {
        self.server.close();
        let peers = std::mem::take(&mut *self.peers.lock().unwrap_or_else(|e| e.into_inner()));
        for p in peers {
            p.close();
        }
    }
}

/// Serves the invocations the Locator sends to an attaching client.
struct Attachment(Arc<ServiceDef>);

impl Serve for Attachment {
    fn open(&self, peer: &Peer, id: u64, ty: u64, args: Vec<Value>, headers: Vec<Header>) -> Option<(Node, Follow)> {
        let (name, method, inner) = match (ty, &args[..]) {
            (INVOKE, [name, method, Value::Array(inner), ..]) => (name.as_bytes(), method.as_u64(), inner.clone()),
            _ => (None, None, Vec::new()),
        };
        match (name, method) {
            (Some(n), Some(m)) if &n[..] == self.0.name().as_bytes() => self.0.dispatch(peer, id, m, inner, headers),
            _ => {
                let mut out = Responder::new(peer, id, &Node::primitive(), "");
                let _ = out.error(&ServiceError::new(DISPATCH_CATEGORY, SLOT_NOT_FOUND, "no such attached service or method"));
                None
            }
        }
    }
}

/// A service this program provides over its connection to a sluice
/// Locator, without listening anywhere itself (`docs/attach.md`). Online
/// while this lives: [`detach`](Self::detach) or dropping it takes the
/// service offline, and so does the end of the connection.
pub struct Attached {
    peer: Peer,
    call: Call,
    name: String,
    endpoints: Vec<Endpoint>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").field("name", &self.name).field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl Attached {
    /// Attaches `def` to the Locator: from then on the Locator announces
    /// it, and every call to it reaches `def`'s handlers over this
    /// connection.
    pub async fn attach(locator: &Locator, def: ServiceDef) -> Result<Attached, Error> {
        let def = Arc::new(def);
        let peer = locator.connect(Some(Arc::new(Attachment(def.clone())))).await?;
        let args = [Value::from(def.name()), Value::Uint(def.version()), def.graph().to_value()];
        let m = Locator::graph().method_by_id(ids::ATTACH).cloned().expect("attach is in the locator graph");
        let r = within(locator.config().request_timeout, async {
            let mut call = peer.call(m.id, &args, &[], &m.tx, &m.rx)?;
            match call.recv().await {
                Some(Ok(r)) if r.name == "value" => {
                    let eps = r.args.first().and_then(Value::as_array).map(|a| a.iter().filter_map(endpoint_from_value).collect());
                    Ok((call, eps.unwrap_or_default()))
                }
                Some(Ok(r)) => Err(Error::BadReply(format!("attach answered '{}'", r.name))),
                Some(Err(e)) => Err(e),
                None => Err(Error::Closed),
            }
        })
        .await;
        match r {
            Ok((call, endpoints)) => Ok(Attached { peer, call, name: def.name().to_string(), endpoints }),
            Err(e) => {
                peer.close();
                Err(e)
            }
        }
    }

    /// [`attach`](Self::attach) for threads outside the runtime.
    pub fn attach_blocking(locator: &Locator, def: ServiceDef) -> Result<Attached, Error> {
        block_on(Attached::attach(locator, def))?
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the Locator lets other clients reach the service.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Whether the connection to the Locator is still up.
    pub fn is_live(&self) -> bool {
        self.peer.is_up()
    }

    /// Takes the service offline (`discard`) and closes the connection.
    pub fn detach(self) {}
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.call.send("discard", &[]);
        self.peer.close();
    }
}
