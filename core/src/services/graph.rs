//! Method graphs: the self-description a service publishes through the
//! Locator (docs/PROTOCOL.md §3.3, §7.2, §7.3).
//!
//! A graph maps each method id to `[name, tx, rx]`: `tx` is the protocol the
//! caller continues with after the call, `rx` the protocol of the replies.
//! Each protocol node is `nil` (stay in the current protocol: the message may
//! repeat), `{}` (terminal: nothing more in that direction) or a map
//! `{id: [name, next]}`. Ids need not be dense and may be anything up to
//! 2^64-1 (newer runtimes add 65532–65535 to every root protocol), so a graph
//! keeps every entry it is given and never assumes a fixed table.
//!
//! ```
//! use sluice_core::services::graph::{Graph, Method, Node};
//!
//! let g = Graph::new(vec![
//!     Method::new(0, "read", Node::terminal(), Node::primitive()),
//!     Method::new(1, "enqueue", Node::streaming(), Node::streaming()),
//! ]);
//! let back = Graph::from_value(&g.to_value()).unwrap();
//! assert_eq!(back, g);
//! assert_eq!(back.method("read").unwrap().id, 0);
//! assert!(back.method("enqueue").unwrap().rx.is_streaming());
//! ```

use std::fmt;

use crate::wire::Value;

/// A protocol node of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `nil`: the protocol does not change (a repeatable message).
    Recursive,
    /// `{}`: terminal, nothing more may be sent in this direction.
    Terminal,
    /// A map of the messages allowed next.
    Protocol(Protocol),
}

/// The messages a protocol allows, by id (ascending).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Protocol {
    /// The messages, sorted by id.
    pub messages: Vec<Transition>,
}

/// One message of a protocol and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The message type id on the wire.
    pub id: u64,
    /// The message name (`value`, `error`, `write`, `close`, ...).
    pub name: String,
    /// The protocol after this message (in the same direction).
    pub next: Node,
}

/// One method of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// The method id: the type of the frame that opens a call.
    pub id: u64,
    /// The method name.
    pub name: String,
    /// What the caller may send after the call.
    pub tx: Node,
    /// What the service answers.
    pub rx: Node,
}

/// A service's method graph (its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    methods: Vec<Method>,
}

/// Why a msgpack value is not a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a method graph: {0}")]
pub struct GraphError(pub String);

fn bad(what: impl Into<String>) -> GraphError {
    GraphError(what.into())
}

/// The most a decoded method graph may hold: the bytes of its names plus
/// 64 for each method and message (what each costs in memory beyond its
/// name). Real services' graphs are a few KiB; a larger one is refused
/// when it is decoded — from a publish or attach (refused `[7, 2]`, so the
/// Locator never keeps or hands out more) and from a resolve (the caller's
/// resolve fails) — so a peer cannot make the Locator or a client hold
/// megabytes per service.
pub const MAX_GRAPH_SIZE: usize = 1 << 20;

/// Costs of the entries decoded so far, against [`MAX_GRAPH_SIZE`].
struct Budget(usize);

impl Budget {
    fn spend(&mut self, name: &str) -> Result<(), GraphError> {
        self.0 += 64 + name.len();
        if self.0 > MAX_GRAPH_SIZE {
            return Err(bad(format!("the method graph is larger than {MAX_GRAPH_SIZE} bytes (names plus 64 a method or message)")));
        }
        Ok(())
    }
}

/// A name: a byte string that is valid UTF-8 (not decoded lossily, so
/// that two different names never become one).
fn text(v: &Value) -> Option<String> {
    v.as_bytes().and_then(|b| String::from_utf8(b.to_vec()).ok())
}

impl Transition {
    /// A transition from its parts.
    pub fn new(id: u64, name: &str, next: Node) -> Transition {
        Transition { id, name: name.to_string(), next }
    }
}

impl Protocol {
    /// A protocol of these messages (sorted by id here).
    pub fn new(mut messages: Vec<Transition>) -> Protocol {
        messages.sort_by_key(|t| t.id);
        Protocol { messages }
    }

    /// The message with this id.
    pub fn get(&self, id: u64) -> Option<&Transition> {
        self.messages.binary_search_by_key(&id, |t| t.id).ok().map(|i| &self.messages[i])
    }

    /// The message with this name.
    pub fn by_name(&self, name: &str) -> Option<&Transition> {
        self.messages.iter().find(|t| t.name == name)
    }
}

impl Node {
    /// `{}`.
    pub fn terminal() -> Node {
        Node::Terminal
    }

    /// The primitive reply protocol: `{0: [value, {}], 1: [error, {}]}`.
    pub fn primitive() -> Node {
        Node::Protocol(Protocol::new(vec![Transition::new(0, "value", Node::Terminal), Transition::new(1, "error", Node::Terminal)]))
    }

    /// The streaming protocol: `{0: [write, nil], 1: [error, {}], 2: [close, {}]}`.
    pub fn streaming() -> Node {
        Node::Protocol(Protocol::new(vec![
            Transition::new(0, "write", Node::Recursive),
            Transition::new(1, "error", Node::Terminal),
            Transition::new(2, "close", Node::Terminal),
        ]))
    }

    /// The protocol's messages, if this node is a map.
    pub fn protocol(&self) -> Option<&Protocol> {
        match self {
            Node::Protocol(p) => Some(p),
            _ => None,
        }
    }

    /// Whether nothing may be sent in this state.
    pub fn is_terminal(&self) -> bool {
        match self {
            Node::Terminal => true,
            Node::Protocol(p) => p.messages.is_empty(),
            Node::Recursive => false,
        }
    }

    /// Whether this is a primitive reply protocol (it has a `value` message).
    pub fn is_primitive(&self) -> bool {
        self.protocol().is_some_and(|p| p.by_name("value").is_some())
    }

    /// Whether this is a streaming protocol (it has a `write` message).
    pub fn is_streaming(&self) -> bool {
        self.protocol().is_some_and(|p| p.by_name("write").is_some())
    }

    /// Decodes `nil`, `{}` or `{id: [name, next], ...}` (at most
    /// [`MAX_GRAPH_SIZE`]).
    pub fn from_value(v: &Value) -> Result<Node, GraphError> {
        Node::decode(v, &mut Budget(0))
    }

    fn decode(v: &Value, budget: &mut Budget) -> Result<Node, GraphError> {
        match v {
            Value::Nil => Ok(Node::Recursive),
            Value::Map(pairs) if pairs.is_empty() => Ok(Node::Terminal),
            Value::Map(pairs) => {
                let mut messages = Vec::with_capacity(pairs.len());
                for (k, e) in pairs {
                    let id = k.as_u64().ok_or_else(|| bad(format!("message id {k} is not an unsigned integer")))?;
                    let items = e.as_array().ok_or_else(|| bad(format!("message {id}: {e} is not [name, next]")))?;
                    let name = items.first().and_then(text).ok_or_else(|| bad(format!("message {id} has no name (a UTF-8 string)")))?;
                    budget.spend(&name)?;
                    let next = match items.get(1) {
                        Some(n) => Node::decode(n, budget)?,
                        None => Node::Recursive,
                    };
                    messages.push(Transition { id, name, next });
                }
                Ok(Node::Protocol(Protocol::new(messages)))
            }
            other => Err(bad(format!("protocol node {other} is neither nil nor a map"))),
        }
    }

    /// The msgpack form.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Recursive => Value::Nil,
            Node::Terminal => Value::Map(Vec::new()),
            Node::Protocol(p) => Value::Map(
                p.messages
                    .iter()
                    .map(|t| (Value::Uint(t.id), Value::Array(vec![Value::from(t.name.as_str()), t.next.to_value()])))
                    .collect(),
            ),
        }
    }
}

impl Method {
    /// A method from its parts.
    pub fn new(id: u64, name: &str, tx: Node, rx: Node) -> Method {
        Method { id, name: name.to_string(), tx, rx }
    }
}

impl Graph {
    /// A graph of these methods (sorted by id here).
    pub fn new(mut methods: Vec<Method>) -> Graph {
        methods.sort_by_key(|m| m.id);
        Graph { methods }
    }

    /// The methods, by ascending id.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The method with this name.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The method with this id.
    pub fn method_by_id(&self, id: u64) -> Option<&Method> {
        self.methods.binary_search_by_key(&id, |m| m.id).ok().map(|i| &self.methods[i])
    }

    /// Decodes a v1 graph: `{id: [name, tx, rx]}`. Entries may carry more
    /// elements (ignored) or fewer (a missing node is `nil`). A graph past
    /// [`MAX_GRAPH_SIZE`] is refused.
    pub fn from_value(v: &Value) -> Result<Graph, GraphError> {
        let Value::Map(pairs) = v else { return Err(bad(format!("{v} is not a map"))) };
        let mut methods = Vec::with_capacity(pairs.len().min(4096));
        let mut budget = Budget(0);
        for (k, e) in pairs {
            let id = k.as_u64().ok_or_else(|| bad(format!("method id {k} is not an unsigned integer")))?;
            let items = e.as_array().ok_or_else(|| bad(format!("method {id}: {e} is not [name, tx, rx]")))?;
            let name = items.first().and_then(text).ok_or_else(|| bad(format!("method {id} has no name (a UTF-8 string)")))?;
            budget.spend(&name)?;
            let mut node = |i: usize| items.get(i).map(|n| Node::decode(n, &mut budget)).unwrap_or(Ok(Node::Recursive));
            let tx = node(1)?;
            let rx = node(2)?;
            methods.push(Method { id, name, tx, rx });
        }
        Ok(Graph::new(methods))
    }

    /// Decodes a v0 method table `{id: name}` (docs/PROTOCOL.md §2.3): the
    /// caller sends nothing after a call, replies are not described (`nil`).
    pub fn from_v0_value(v: &Value) -> Result<Graph, GraphError> {
        let Value::Map(pairs) = v else { return Err(bad(format!("{v} is not a map"))) };
        let mut methods = Vec::with_capacity(pairs.len().min(4096));
        let mut budget = Budget(0);
        for (k, e) in pairs {
            let id = k.as_u64().ok_or_else(|| bad(format!("method id {k} is not an unsigned integer")))?;
            let name = text(e).ok_or_else(|| bad(format!("method {id} has no name (a UTF-8 string)")))?;
            budget.spend(&name)?;
            methods.push(Method { id, name, tx: Node::Terminal, rx: Node::Recursive });
        }
        Ok(Graph::new(methods))
    }

    /// The msgpack form `{id: [name, tx, rx]}`.
    pub fn to_value(&self) -> Value {
        Value::Map(
            self.methods
                .iter()
                .map(|m| (Value::Uint(m.id), Value::Array(vec![Value::from(m.name.as_str()), m.tx.to_value(), m.rx.to_value()])))
                .collect(),
        )
    }
}

impl fmt::Display for Node {
    /// `none` for `{}`, `same` for `nil`, otherwise the messages with `*`
    /// marking the repeatable ones: `{0 write*, 1 error, 2 close}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Recursive => f.write_str("same"),
            Node::Terminal => f.write_str("none"),
            Node::Protocol(p) => {
                f.write_str("{")?;
                for (i, t) in p.messages.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {}", t.id, crate::host::printable(&t.name))?;
                    match &t.next {
                        Node::Recursive => f.write_str("*")?,
                        Node::Terminal => {}
                        n @ Node::Protocol(_) => write!(f, " -> {n}")?,
                    }
                }
                f.write_str("}")
            }
        }
    }
}

impl fmt::Display for Graph {
    /// One line per method: `id name  tx: ...  rx: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.methods.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for m in &self.methods {
            writeln!(f, "{:>5} {:<w$}  tx: {}  rx: {}", m.id, crate::host::printable(&m.name), m.tx, m.rx)?;
        }
        Ok(())
    }
}

/// Where a direction of a channel stands: the protocol in force, or done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The protocol in force; `None` once a terminal message has passed.
    /// `Some(Node::Recursive)` means "not described": any message passes.
    state: Option<Node>,
}

impl Cursor {
    /// A cursor at `node` (a method's tx or rx).
    pub fn new(node: &Node) -> Cursor {
        Cursor { state: if node.is_terminal() { None } else { Some(node.clone()) } }
    }

    /// Whether the direction has ended.
    pub fn is_done(&self) -> bool {
        self.state.is_none()
    }

    /// The protocol in force (`None` when done or not described).
    pub fn protocol(&self) -> Option<&Protocol> {
        self.state.as_ref().and_then(Node::protocol)
    }

    /// The id of the message called `name` allowed now.
    pub fn id_of(&self, name: &str) -> Option<u64> {
        self.protocol()?.by_name(name).map(|t| t.id)
    }

    /// Moves past message `id`; returns its name, or `None` if the message
    /// is not allowed now (the cursor does not move). In an undescribed
    /// protocol every id passes, named `#id`.
    pub fn step(&mut self, id: u64) -> Option<String> {
        match self.state.as_ref()? {
            Node::Recursive => Some(format!("#{id}")),
            Node::Terminal => None,
            Node::Protocol(p) => {
                let t = p.get(id)?;
                let name = t.name.clone();
                match &t.next {
                    Node::Recursive => {}
                    Node::Terminal => self.state = None,
                    n @ Node::Protocol(_) => self.state = if n.is_terminal() { None } else { Some(n.clone()) },
                }
                Some(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_graph_past_the_size_bound_is_refused() {
        let method =
            |i: u64, name: String| (Value::Uint(i), Value::Array(vec![Value::from(name.as_str()), Value::Nil, Value::Map(vec![])]));
        // 40,000 methods with 100-byte names: 6.6 MB of entries.
        let big = Value::Map((0..40_000).map(|i| method(i, format!("{i:0>100}"))).collect());
        let e = Graph::from_value(&big).unwrap_err();
        assert!(e.0.contains("larger than 1048576 bytes"), "{e:?}");
        // Message trees count too (the wire decoder bounds their depth).
        let mut node = Value::Nil;
        for i in 0..100u64 {
            node = Value::Map(vec![(Value::Uint(i), Value::Array(vec![Value::from("w".repeat(20_000).as_str()), node]))]);
        }
        assert!(Node::from_value(&node).is_err());
        // A service of a few hundred methods is far below it.
        let ok = Value::Map((0..500).map(|i| method(i, format!("method_{i}"))).collect());
        assert_eq!(Graph::from_value(&ok).unwrap().methods().len(), 500);
    }

    fn hex(s: &str) -> Bytes {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<_>>().into()
    }

    #[test]
    fn decodes_the_app_graph_of_the_vectors() {
        // v1_locator_resolve_response_app: [1, 0, [endpoints, 1, graph]].
        let frame = Value::decode_all(&hex("930100939192ac323030313a6462383a3a3137cd947101830093a7656e7175657565830092a57772697465c00192a56572726f72800292a5636c6f736580830092a57772697465c00192a56572726f72800292a5636c6f7365800193a4696e666f80820092a576616c7565800192a56572726f72800293a7636f6e74726f6c830092a57772697465c00192a56572726f72800292a5636c6f736580820092a576616c7565800192a56572726f7280")).unwrap();
        let args = frame.as_array().unwrap()[2].as_array().unwrap();
        let g = Graph::from_value(&args[2]).unwrap();
        let expected = Graph::new(vec![
            Method::new(0, "enqueue", Node::streaming(), Node::streaming()),
            Method::new(1, "info", Node::terminal(), Node::primitive()),
            Method::new(2, "control", Node::streaming(), Node::primitive()),
        ]);
        assert_eq!(g, expected);
        assert_eq!(g.to_value(), args[2]);
        let shown = g.to_string();
        assert!(shown.contains("enqueue  tx: {0 write*, 1 error, 2 close}  rx: {0 write*, 1 error, 2 close}"), "{shown}");
        assert!(shown.contains("    1 info     tx: none  rx: {0 value, 1 error}"), "{shown}");
    }

    #[test]
    fn keeps_unknown_and_sparse_ids() {
        let v = Value::Map(vec![
            (Value::Uint(65535), Value::Array(vec!["revoke".into(), Value::Map(vec![]), Value::Nil, Value::Uint(9)])),
            (Value::Uint(65533), Value::Array(vec!["ping".into()])),
            (Value::Uint(0), Value::Array(vec!["resolve".into(), Value::Map(vec![]), Node::primitive().to_value()])),
        ]);
        let g = Graph::from_value(&v).unwrap();
        assert_eq!(g.methods().iter().map(|m| m.id).collect::<Vec<_>>(), [0, 65533, 65535]);
        assert_eq!(g.method_by_id(65533).unwrap().rx, Node::Recursive);
        assert_eq!(g.method("revoke").unwrap().tx, Node::Terminal);
        assert!(Graph::from_value(&Value::Array(vec![])).is_err());
        assert!(Graph::from_value(&Value::Map(vec![(Value::from("x"), Value::Nil)])).is_err());
        assert!(Graph::from_value(&Value::Map(vec![(Value::Uint(1), Value::Array(vec![Value::Uint(3)]))])).is_err());
    }

    #[test]
    fn cursor_follows_transitions() {
        let mut c = Cursor::new(&Node::streaming());
        assert_eq!(c.step(0).as_deref(), Some("write"));
        assert_eq!(c.step(0).as_deref(), Some("write"));
        assert_eq!(c.step(7), None);
        assert!(!c.is_done());
        assert_eq!(c.step(2).as_deref(), Some("close"));
        assert!(c.is_done());
        assert_eq!(c.step(0), None);
        let mut p = Cursor::new(&Node::primitive());
        assert_eq!(p.id_of("error"), Some(1));
        assert_eq!(p.step(1).as_deref(), Some("error"));
        assert!(p.is_done());
        assert!(Cursor::new(&Node::Terminal).is_done());
        let nested = Node::Protocol(Protocol::new(vec![Transition::new(0, "open", Node::streaming())]));
        let mut n = Cursor::new(&nested);
        assert_eq!(n.step(0).as_deref(), Some("open"));
        assert_eq!(n.id_of("close"), Some(2));
    }

    #[test]
    fn reads_v0_tables() {
        let v = Value::Map(vec![(Value::Uint(0), "read".into()), (Value::Uint(3), "find".into())]);
        let g = Graph::from_v0_value(&v).unwrap();
        assert_eq!(g.method("find").unwrap().id, 3);
    }
}
