//! The serving side: `ServiceDef` with JavaScript handlers, `Responder`,
//! `attach()` → `Attached`, `host()` → `Hosted`.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primitive,
    Streaming,
}

/// A service to provide: a name, a protocol version and methods whose
/// handlers are JavaScript functions, run on the JavaScript thread.
///
/// * `primitive(name, handler)`: `handler(...args)` returns the arguments
///   of the `value` reply as an array (a non-array `v` answers `value(v)`,
///   `undefined` answers `value()`), or a Promise of them; throwing (or
///   rejecting) answers `error`: a `ServiceError`'s category and code, else
///   `[7, 7]` with the message.
/// * `streaming(name, handler)`: `handler(responder, ...args)` answers
///   through the `Responder` (`write`*, then `close`; or `error`), at once
///   or later; throwing before the answer is complete answers `error`.
///
/// ```js
/// const def = new ServiceDef('greeter', 1)
///   .primitive('hello', (name) => [`hello, ${name}`])
///   .streaming('count', (out, n) => { for (let i = 0; i < n; i++) out.write(i); out.close() })
/// const attached = await attach(locator, def)
/// ```
#[napi]
pub struct ServiceDef {
    name: String,
    version: u32,
    methods: Vec<(String, Kind)>,
}

#[napi]
impl ServiceDef {
    /// An empty service `name` of protocol version `version` (default 1).
    #[napi(constructor)]
    pub fn new(name: String, version: Option<u32>) -> Self {
        ServiceDef { name, version: version.unwrap_or(1), methods: Vec::new() }
    }

    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The protocol version.
    #[napi(getter)]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The method names, in id order.
    #[napi(getter)]
    pub fn methods(&self) -> Vec<String> {
        self.methods.iter().map(|m| m.0.clone()).collect()
    }

    /// Adds a primitive method (see the class); returns the definition.
    #[napi(ts_args_type = "name: string, handler: (...args: any[]) => unknown", ts_return_type = "this")]
    pub fn primitive(&mut self, env: Env, name: String, handler: Unknown<'_>) -> Result<()> {
        self.add(env, name, handler, Kind::Primitive)
    }

    /// Adds a streaming method (see the class); returns the definition.
    #[napi(ts_args_type = "name: string, handler: (responder: Responder, ...args: any[]) => unknown", ts_return_type = "this")]
    pub fn streaming(&mut self, env: Env, name: String, handler: Unknown<'_>) -> Result<()> {
        self.add(env, name, handler, Kind::Streaming)
    }

    fn add(&mut self, env: Env, name: String, handler: Unknown<'_>, kind: Kind) -> Result<()> {
        // The handler itself is kept by lib/services.js, by method index.
        if js::type_of(env.raw(), handler.raw()) != sys::ValueType::napi_function {
            return Err(js::type_error(env.raw(), "a handler must be a function"));
        }
        if self.methods.iter().any(|m| m.0 == name) {
            return Err(js::throw(env.raw(), js::Kind::Error, "ERR_DUPLICATE_METHOD", &format!("method '{name}' is defined already")));
        }
        self.methods.push((name, kind));
        Ok(())
    }
}

/// The core definition whose handlers post each request to JavaScript.
fn build_def(def: &ServiceDef, post: &Arc<Post>) -> core::ServiceDef {
    let mut out = core::ServiceDef::new(&def.name, def.version as u64);
    for (index, (name, kind)) in def.methods.iter().enumerate() {
        let rx = match kind {
            Kind::Primitive => Node::primitive(),
            Kind::Streaming => Node::streaming(),
        };
        let post = post.clone();
        out = out.method(name, Node::Terminal, rx, move |req, responder| {
            let args = req.args;
            post.post(move |env, def_obj| {
                let args = args_js(env, &args);
                let r = match (Responder { out: Mutex::new(Some(responder)) }).into_instance(&Env::from_raw(env)) {
                    Ok(r) => r.value,
                    Err(_) => return,
                };
                let f = registered(env, |f| f.on_request);
                call_fn(env, f, js::undefined(env), &[def_obj, js::number(env, index as f64), args, r]);
            });
            None
        });
    }
    out
}

/// Answers one call. Dropped (garbage-collected) before the answer is
/// complete, it answers `error([7, 7])`, so the caller never waits forever.
///
/// Its sends throw `Error`s with a `code`: `'EAGAIN'` while 8 MiB wait to
/// be written on the connection (nothing was sent: retry a little later),
/// `'ERR_NOT_ALLOWED'` for a message the protocol does not allow now,
/// `'ERR_CALL_CLOSED'` once the answer is complete.
#[napi]
pub struct Responder {
    out: Mutex<Option<CoreResponder>>,
}

#[napi]
impl Responder {
    fn with(&self, env: Env, f: impl FnOnce(&mut CoreResponder) -> std::result::Result<(), CoreError>) -> Result<()> {
        let mut g = lock(&self.out);
        let Some(r) = g.as_mut() else { return Err(throw_core(env.raw(), &CoreError::Closed)) };
        let res = f(r);
        if r.is_done() {
            *g = None;
        }
        res.map_err(|e| throw_core(env.raw(), &e))
    }

    /// Sends message `name` of the reply protocol in force.
    #[napi(ts_args_type = "name: string, ...args: any[]")]
    pub fn send(&self, env: Env, name: String, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.send(&name, &values))
    }

    /// `value(args...)`: the answer of a primitive method.
    #[napi(ts_args_type = "...args: any[]")]
    pub fn value(&self, env: Env, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.value(values))
    }

    /// `write(args...)`: one piece of a stream.
    #[napi(ts_args_type = "...args: any[]")]
    pub fn write(&self, env: Env, args: Option<Unknown<'_>>) -> Result<()> {
        let values = args_of(env.raw(), args.as_ref())?;
        self.with(env, |r| r.write(values))
    }

    /// `close()`: the end of a stream.
    #[napi]
    pub fn close(&self, env: Env) -> Result<()> {
        self.with(env, |r| r.close())
    }

    /// `error([category, code], message)` from a `ServiceError` (or any
    /// object with a numeric `code`, and `category`); any other error
    /// answers `[7, 7]` (uncaught error) with its message.
    #[napi(ts_args_type = "error: ServiceError | { category?: number | null, code: number, message?: string } | Error")]
    pub fn error(&self, env: Env, error: Unknown<'_>) -> Result<()> {
        let se = service_error_of(env.raw(), error.raw());
        self.with(env, |r| r.error(&se))
    }

    /// Whether the answer is complete.
    #[napi(getter)]
    pub fn done(&self) -> bool {
        lock(&self.out).is_none()
    }
}

fn service_error_of(env: sys::napi_env, v: sys::napi_value) -> CoreServiceError {
    let t = js::type_of(env, v);
    let message = |v: sys::napi_value| {
        if let Some(s) = js::get_string(env, v) {
            return s;
        }
        let mut s = ptr::null_mut();
        unsafe { sys::napi_coerce_to_string(env, v, &mut s) };
        let mut pending = false;
        unsafe { sys::napi_is_exception_pending(env, &mut pending) };
        if pending {
            let mut ex = ptr::null_mut();
            unsafe { sys::napi_get_and_clear_last_exception(env, &mut ex) };
            return "an error without a message".into();
        }
        js::get_string(env, s).unwrap_or_default()
    };
    if t == sys::ValueType::napi_object || t == sys::ValueType::napi_function {
        let code = js::get_int(env, js::get_prop(env, v, "code"));
        let cat = js::get_prop(env, v, "category");
        let msg = js::get_prop(env, v, "message");
        let msg = if js::is_nullish(env, msg) { String::new() } else { message(msg) };
        if let Some(code) = code {
            let category = if js::is_nullish(env, cat) { None } else { js::get_int(env, cat) };
            if js::is_nullish(env, cat) || category.is_some() {
                return CoreServiceError { category, code, message: msg };
            }
        }
        return CoreServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, msg);
    }
    CoreServiceError::new(DISPATCH_CATEGORY, UNCAUGHT_ERROR, message(v))
}

/// A service provided over this program's connection to a sluice Locator
/// (remote invocation, `docs/attach.md`): online while attached; its
/// handlers answer the Locator's invocations. Keeps Node running until
/// `detach()`.
#[napi]
pub struct Attached {
    core: Mutex<Option<core::Attached>>,
    post: Arc<Post>,
    name: String,
    endpoints: Vec<String>,
}

/// Attaches `def` to the Locator: from then on the Locator announces it and
/// sends every call to its handlers over this connection. Resolves once the
/// Locator has it online.
#[napi(ts_return_type = "Promise<Attached>")]
pub fn attach<'a>(env: &'a Env, locator: &Locator, def: ClassInstance<'_, ServiceDef>) -> Result<Unknown<'a>> {
    let post = Post::new(env.raw(), Some(def.value))?;
    let core_def = build_def(&def, &post);
    let l = locator.core.clone();
    promise(env, async move { core::Attached::attach(&l, core_def).await }, move |env, a| {
        let name = a.name().to_string();
        let endpoints = a.endpoints().iter().map(endpoint_string).collect();
        let obj = Attached { core: Mutex::new(Some(a)), post, name, endpoints };
        obj.into_instance(&Env::from_raw(env)).map(|i| i.value).unwrap_or_else(|_| js::undefined(env))
    })
}

#[napi]
impl Attached {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Where the Locator lets other clients reach the service.
    #[napi(getter)]
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.clone()
    }

    /// Whether the connection to the Locator is up (the service online).
    #[napi(getter)]
    pub fn live(&self) -> bool {
        lock(&self.core).as_ref().is_some_and(|a| a.is_live())
    }

    /// Takes the service offline (`discard`) and closes the connection.
    #[napi]
    pub fn detach(&self, env: Env) {
        if let Some(a) = lock(&self.core).take() {
            a.detach();
            self.post.unref(env.raw());
        }
    }
}

/// A service listening on its own endpoint. Keeps Node running until `close()`.
#[napi]
pub struct Hosted {
    core: Arc<Mutex<Option<core::Hosted>>>,
    publication: Arc<Mutex<Option<core::Publication>>>,
    post: Arc<Post>,
    pub(super) name: String,
    pub(super) version: u32,
    pub(super) graph: core::graph::Graph,
    endpoint: String,
    pub(super) endpoints: Vec<Endpoint>,
}

/// Serves `def` on `endpoint` (`'host:port'`, port 0 picks a free one, or a
/// socket path).
#[napi(ts_args_type = "def: ServiceDef, endpoint?: string | { host?: string, port: number } | { path: string }")]
pub fn host<'a>(env: &'a Env, def: ClassInstance<'_, ServiceDef>, endpoint: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Hosted>> {
    let e = env.raw();
    let ep = match endpoint {
        Some(v) if !js::is_nullish(e, v.raw()) => read_endpoint(e, v.raw())?,
        _ => Endpoint::Tcp("127.0.0.1".into(), 0),
    };
    let post = Post::new(e, Some(def.value))?;
    let core_def = build_def(&def, &post);
    let graph = core_def.graph().clone();
    let h = core::Hosted::bind(core_def, &ep).map_err(|err| throw_core(e, &err))?;
    let endpoint = endpoint_string(h.local());
    let endpoints = h.endpoints();
    Hosted {
        core: Arc::new(Mutex::new(Some(h))),
        publication: Arc::default(),
        post,
        name: def.name.clone(),
        version: def.version,
        graph,
        endpoint,
        endpoints,
    }
    .into_instance(env)
}

#[napi]
impl Hosted {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Where it listens (with the actual port).
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Publishes the service to a Locator (`publish`, docs/PROTOCOL.md §7.2):
    /// it is online there until `unpublish()` or `close()`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn publish<'a>(&self, env: &'a Env, locator: &Locator) -> Result<Unknown<'a>> {
        let (l, name, eps, version, graph, slot) = (
            locator.core.clone(),
            self.name.clone(),
            self.endpoints.clone(),
            self.version as u64,
            self.graph.clone(),
            self.publication.clone(),
        );
        promise(
            env,
            async move {
                let p = core::Publication::publish(&l, &name, &eps, version, &graph).await?;
                *lock(&slot) = Some(p);
                Ok(())
            },
            |env, ()| js::undefined(env),
        )
    }

    /// Takes the publication offline (the service keeps listening).
    #[napi]
    pub fn unpublish(&self) {
        lock(&self.publication).take();
    }

    /// Stops listening, closes the callers' connections and the publication.
    #[napi]
    pub fn close(&self, env: Env) {
        lock(&self.publication).take();
        if let Some(h) = lock(&self.core).take() {
            h.close();
            self.post.unref(env.raw());
        }
    }
}
