//! `LocatorServer`, its `Registry` and the demo services.

use super::*;

/// A service a registry knows.
#[napi(object)]
pub struct Entry {
    /// The service name.
    pub name: String,
    /// Where callers reach it.
    pub endpoints: Vec<String>,
    /// Its protocol version.
    pub version: f64,
    /// Whether it can be resolved now.
    pub online: bool,
    /// Who registered it: `local`, `published by ADDR`, `attached by ADDR`.
    pub origin: String,
    /// Its methods.
    pub graph: Vec<MethodInfo>,
}

fn entry_of(e: &core::Entry) -> Entry {
    Entry {
        name: e.name.clone(),
        endpoints: e.endpoints.iter().map(endpoint_string).collect(),
        version: e.version as f64,
        online: e.online,
        origin: e.origin.clone(),
        graph: methods(&e.graph),
    }
}

/// The services a `LocatorServer` announces. An EventEmitter: `'change'
/// (entry)` whenever a service comes online or goes offline.
#[napi]
pub struct Registry {
    core: core::Registry,
}

#[napi]
impl Registry {
    /// Every service known, online or not, by name.
    #[napi]
    pub fn list(&self) -> Vec<Entry> {
        self.core.list().iter().map(entry_of).collect()
    }

    /// The service `name`, online or not (`null` if unknown).
    #[napi]
    pub fn get(&self, name: String) -> Option<Entry> {
        self.core.get(&name).as_ref().map(entry_of)
    }

    /// Registers a hosted service as online for good (origin `local`).
    #[napi]
    pub fn add(&self, hosted: &Hosted) {
        self.core.add(&hosted.name, hosted.endpoints.clone(), hosted.version as u64, hosted.graph.clone());
    }

    /// Invokes `method` of a service a client attached, over that client's
    /// connection (remote invocation); the replies come through the `Call`.
    #[napi(ts_args_type = "name: string, method: string, args?: any[]")]
    pub fn invoke<'a>(&self, env: &'a Env, name: String, method: String, args: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Call>> {
        let values = args_of(env.raw(), args.as_ref())?;
        let r = self.core.invoke(&name, &method, values);
        start_call(env, name, method, async move { r })
    }
}

/// Options of the demo services.
#[napi(object)]
#[derive(Default)]
pub struct DemoOptions {
    /// The `logging` service's verbosity (`'debug'`… `'error'`, default `'debug'`).
    pub verbosity: Option<String>,
}

/// A message the demo `logging` service received (the `'log'` event).
#[napi(object)]
pub struct LogRecord {
    /// Its level: `debug`, `info`, `warning` or `error`.
    pub level: String,
    /// Its source.
    pub source: String,
    /// The message.
    pub message: String,
}

/// A Locator listening for clients, answering from its `registry`
/// (`resolve`, `publish`, and the sluice extensions `attach` and
/// `services`). An EventEmitter: `'log' (record)` for each message the
/// demo `logging` service accepts. Keeps Node running until `close()`.
#[napi]
pub struct LocatorServer {
    core: Mutex<Option<core::LocatorServer>>,
    registry_obj: SendPtr<sys::napi_ref>,
    /// Until `close()`: they hold the registry and this object.
    changes: Arc<Mutex<Option<Arc<Post>>>>,
    logs: Arc<Mutex<Option<Arc<Post>>>>,
    demos: Mutex<Vec<core::Hosted>>,
    endpoint: String,
    host: String,
}

#[napi]
impl LocatorServer {
    /// Listens on `endpoint` (default `'127.0.0.1:0'`: a free port).
    #[napi(constructor, ts_args_type = "endpoint?: string | { host?: string, port: number }")]
    pub fn new(env: Env, this: This, endpoint: Option<Unknown<'_>>) -> Result<Self> {
        let e = env.raw();
        let ep = match endpoint {
            Some(v) if !js::is_nullish(e, v.raw()) => read_endpoint(e, v.raw())?,
            _ => Endpoint::Tcp("127.0.0.1".into(), 0),
        };
        let host = match &ep {
            Endpoint::Tcp(h, _) if h != "0.0.0.0" && h != "::" => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let registry = core::Registry::new();
        let server = core::LocatorServer::bind(&ep, registry.clone()).map_err(|err| throw_core(e, &err))?;
        let endpoint = endpoint_string(server.local());
        let reg = Registry { core: registry.clone() }.into_instance(&env)?;
        let mut r = ptr::null_mut();
        unsafe { sys::napi_create_reference(e, reg.value, 1, &mut r) };
        let changes = Arc::new(Mutex::new(Some(Post::new(e, Some(reg.value))?)));
        let c = changes.clone();
        registry.on_change(move |entry| {
            let entry = entry_of(entry);
            let Some(post) = lock(&c).clone() else { return };
            post.post(move |env, obj| {
                let v = unsafe { Entry::to_napi_value(env, entry) }.unwrap_or_else(|_| js::undefined(env));
                emit(env, obj, "change", &[v]);
            });
        });
        let logs = Post::new(e, Some(this.raw()))?;
        logs.unref(e);
        let logs = Arc::new(Mutex::new(Some(logs)));
        Ok(LocatorServer {
            core: Mutex::new(Some(server)),
            registry_obj: SendPtr(r),
            changes,
            logs,
            demos: Mutex::default(),
            endpoint,
            host,
        })
    }

    /// Where it listens (`host:port`, with the actual port).
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Its registry (the same object each time).
    #[napi(getter, ts_return_type = "Registry")]
    pub fn registry<'a>(&self, env: &'a Env) -> Unknown<'a> {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_reference_value(env.raw(), self.registry_obj.0, &mut v) };
        unsafe { Unknown::from_raw_unchecked(env.raw(), v) }
    }

    /// A `Locator` client of this server.
    #[napi]
    pub fn locator(&self) -> Locator {
        let ep = Endpoint::parse(&self.endpoint).expect("a listening endpoint parses");
        Locator { core: core::Locator::new(vec![ep]) }
    }

    /// Hosts the built-in demo services on free ports and registers them:
    /// `echo` (echo, ping, fail, relay), `math` (add, sub, mul, div), `kv`
    /// (get, set, del, keys) and `logging` (with `verbosity`; the messages
    /// it accepts are `'log'` events). Returns their names.
    #[napi]
    pub fn add_demo_services(&self, env: Env, options: Option<DemoOptions>) -> Result<Vec<String>> {
        let e = env.raw();
        let o = options.unwrap_or_default();
        let verbosity = match o.verbosity.as_deref() {
            None => Level::Debug,
            Some(s) => Level::from_name(s).ok_or_else(|| js::type_error(e, "verbosity is 'debug', 'info', 'warning' or 'error'"))?,
        };
        let logs = self.logs.clone();
        let sink = move |rec: demo::LogRecord| {
            let r = LogRecord { level: rec.level.name().into(), source: rec.source, message: rec.message };
            let Some(post) = lock(&logs).clone() else { return };
            post.post(move |env, obj| {
                let v = unsafe { LogRecord::to_napi_value(env, r) }.unwrap_or_else(|_| js::undefined(env));
                emit(env, obj, "log", &[v]);
            });
        };
        let reg = lock(&self.core).as_ref().map(|s| s.registry().clone()).ok_or_else(|| throw_core(e, &CoreError::Closed))?;
        let mut names = Vec::new();
        let mut demos = lock(&self.demos);
        for def in [demo::echo(), demo::math(), demo::kv(), demo::logging(verbosity, sink)] {
            let h = core::Hosted::bind(def, &Endpoint::Tcp(self.host.clone(), 0)).map_err(|err| throw_core(e, &err))?;
            let d = h.def();
            reg.add(d.name(), h.endpoints(), d.version(), d.graph().clone());
            names.push(d.name().to_string());
            demos.push(h);
        }
        Ok(names)
    }

    /// How many clients are connected.
    #[napi(getter)]
    pub fn connections(&self) -> u32 {
        lock(&self.core).as_ref().map_or(0, |s| s.connections() as u32)
    }

    /// Stops listening and closes every client connection (what they
    /// registered goes offline) and the demo services.
    #[napi]
    pub fn close(&self) {
        if let Some(s) = lock(&self.core).take() {
            s.close();
            for h in lock(&self.demos).drain(..) {
                h.close();
            }
            // Released: Node may exit, and the objects they held may go.
            let changes = lock(&self.changes).take();
            let logs = lock(&self.logs).take();
            drop((changes, logs));
        }
    }
}
