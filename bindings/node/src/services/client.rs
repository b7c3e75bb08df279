//! The client side: `Locator`, `Service`, `Call`, `Logger`.

use super::*;

/// Settings of a `Locator` (and the services and loggers made from it).
#[napi(object)]
#[derive(Default)]
pub struct LocatorOptions {
    /// Milliseconds a connect may take before the next endpoint is tried (default 5000).
    pub connect_timeout: Option<f64>,
    /// Milliseconds to wait for the Locator's answer (default 30000; 0: no limit).
    pub request_timeout: Option<f64>,
}

/// A Locator to ask (docs/PROTOCOL.md §7): one or more endpoints, tried in
/// order until one connects (failover).
///
/// ```js
/// const locator = new Locator(['127.0.0.1:10053', 'backup:10053'])
/// const info = await locator.resolve('echo')
/// const [sum] = await locator.service('math').call('add', 2, 3).value()
/// ```
#[napi]
pub struct Locator {
    pub(super) core: core::Locator,
}

#[napi]
impl Locator {
    /// A Locator at `endpoints` (`'host:port'`, a socket path, `{ host,
    /// port }`, or a list of them; default `'localhost:10053'`).
    #[napi(
        constructor,
        ts_args_type = "endpoints?: string | { host?: string, port: number } | Array<string | { host?: string, port: number }>, options?: LocatorOptions"
    )]
    pub fn new(env: Env, endpoints: Option<Unknown<'_>>, options: Option<LocatorOptions>) -> Result<Self> {
        let e = env.raw();
        let eps = match endpoints.filter(|v| !js::is_nullish(e, v.raw())) {
            Some(v) => read_endpoints(e, v.raw(), || js::type_error(e, "at least one endpoint is needed"))?,
            None => vec![Endpoint::Tcp("localhost".into(), 10053)],
        };
        let o = options.unwrap_or_default();
        let mut c = ClientConfig::default();
        let ms = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_secs_f64(v / 1000.0))
            } else {
                Err(js::throw(
                    e,
                    js::Kind::RangeError,
                    "ERR_OUT_OF_RANGE",
                    &format!("{what} must be a non-negative number of milliseconds"),
                ))
            }
        };
        if let Some(v) = o.connect_timeout {
            c.connect_timeout = ms(v, "connectTimeout")?;
        }
        if let Some(v) = o.request_timeout {
            c.request_timeout = if v == 0.0 { None } else { Some(ms(v, "requestTimeout")?) };
        }
        Ok(Locator { core: core::Locator::new(eps).with_config(c) })
    }

    /// Its endpoints, in the order they are tried.
    #[napi(getter)]
    pub fn endpoints(&self) -> Vec<String> {
        self.core.endpoints().iter().map(endpoint_string).collect()
    }

    /// Resolves a service: its endpoints, version and methods. Rejects with
    /// a `NotFoundError` if the Locator does not have it online, a
    /// `ConnectError` if no endpoint answers.
    #[napi(ts_return_type = "Promise<Resolved>")]
    pub fn resolve<'a>(&self, env: &'a Env, name: String) -> Result<Unknown<'a>> {
        let l = self.core.clone();
        promise(env, async move { l.resolve(&name).await }, |env, r| resolved_js(env, &r))
    }

    /// A client for the service `name` (resolved and connected on its first call).
    #[napi]
    pub fn service(&self, name: String) -> Service {
        Service { core: self.core.service(&name) }
    }
}

/// A method of a service graph.
#[napi(object)]
pub struct MethodInfo {
    /// Its id (the message type that opens a call).
    pub id: f64,
    /// Its name.
    pub name: String,
    /// The caller's protocol after the call opens (`none`, or
    /// `{0 write*, 1 error, 2 close}`…).
    pub tx: String,
    /// The replies' protocol, in the same form.
    pub rx: String,
}

/// What the Locator says about a service.
#[napi(object)]
pub struct Resolved {
    /// The service name.
    pub name: String,
    /// Where it listens (`host:port`).
    pub endpoints: Vec<String>,
    /// Its protocol version.
    pub version: f64,
    /// Its methods.
    pub graph: Vec<MethodInfo>,
    /// The printable form: the service, its endpoints and one line per method.
    pub text: String,
}

pub(super) fn methods(g: &core::graph::Graph) -> Vec<MethodInfo> {
    g.methods().iter().map(|m| MethodInfo { id: m.id as f64, name: m.name.clone(), tx: m.tx.to_string(), rx: m.rx.to_string() }).collect()
}

impl From<&core::Resolved> for Resolved {
    fn from(r: &core::Resolved) -> Resolved {
        let endpoints = r.endpoints.iter().map(endpoint_string).collect();
        Resolved { name: r.name.clone(), endpoints, version: r.version as f64, graph: methods(&r.graph), text: r.to_string() }
    }
}

fn resolved_js(env: sys::napi_env, r: &core::Resolved) -> sys::napi_value {
    unsafe { Resolved::to_napi_value(env, r.into()) }.unwrap_or_else(|_| js::undefined(env))
}

/// A client for one service: resolved through its Locator and connected on
/// the first call (again after the connection ends).
#[napi]
pub struct Service {
    core: core::Service,
}

#[napi]
impl Service {
    /// The service name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.core.name().to_string()
    }

    /// `'closed'`, `'connecting'`, `'connected'` or `'error'` (the last connect failed).
    #[napi(getter, ts_return_type = "'closed' | 'connecting' | 'connected' | 'error'")]
    pub fn state(&self) -> &'static str {
        match self.core.state() {
            core::ServiceState::Closed => "closed",
            core::ServiceState::Connecting => "connecting",
            core::ServiceState::Connected => "connected",
            core::ServiceState::Error => "error",
        }
    }

    /// What the last resolve said (`null` before the first connection).
    #[napi(getter)]
    pub fn info(&self) -> Option<Resolved> {
        self.core.info().as_ref().map(Resolved::from)
    }

    /// The endpoint of the current connection (`null` when not connected).
    #[napi(getter)]
    pub fn connected_to(&self) -> Option<String> {
        self.core.connected_to().as_ref().map(endpoint_string)
    }

    /// Resolves and connects unless connected.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'a>(&self, env: &'a Env) -> Result<Unknown<'a>> {
        let s = self.core.clone();
        promise(env, async move { s.connect().await }, |env, ()| js::undefined(env))
    }

    /// Calls `method` with `args`; the replies come through the returned
    /// `Call`. Errors (not found, unknown method, no connection) come
    /// through the call too.
    #[napi(ts_args_type = "method: string, ...args: any[]")]
    pub fn call<'a>(&self, env: &'a Env, method: String, args: Option<Unknown<'_>>) -> Result<ClassInstance<'a, Call>> {
        let values = args_of(env.raw(), args.as_ref())?;
        let s = self.core.clone();
        let m = method.clone();
        start_call(env, self.core.name().to_string(), method, async move { s.call(&m, values).await })
    }

    /// Closes the connection (calls in progress fail); the next call connects again.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }
}

enum Sending {
    /// Before the call is open: sends wait here.
    Queued(Vec<(String, Vec<Value>)>),
    Open(CallSender),
    Failed,
}

/// A call in progress: a stream of replies, each `{ name, args }` (`value`,
/// `write`, `close`…). An `error` reply, or the failure of the call, is a
/// `ServiceError` (or another error) that ends it.
///
/// Use it as an async iterator (`for await (const r of call)`, throws the
/// error), through `value()` (primitive methods: the arguments of `value`)
/// or `collect()` (every reply), or as an EventEmitter: `'reply' (reply)`,
/// `'error' (err)` (emitted only if listened to), `'end' ()`. Replies are
/// kept for the iterator, `value()` and `collect()` unless a `'reply'`
/// listener takes them first. A call in progress keeps Node running.
#[napi]
pub struct Call {
    service: String,
    method: String,
    sending: Arc<Mutex<Sending>>,
}

pub(super) fn start_call<'a>(
    env: &'a Env,
    service: String,
    method: String,
    open: impl std::future::Future<Output = std::result::Result<CoreCall, CoreError>> + Send + 'static,
) -> Result<ClassInstance<'a, Call>> {
    let e = env.raw();
    let rt = runtime(e)?;
    let sending = Arc::new(Mutex::new(Sending::Queued(Vec::new())));
    let inst = Call { service, method, sending: sending.clone() }.into_instance(env)?;
    let post = Post::new(e, Some(inst.value))?;
    // Replies posted to JavaScript and not yet run: past this the task
    // stops reading, and the call's unread replies wait in the core (which
    // fails the call past its own limit, ClientConfig::max_pending).
    let window = Arc::new(tokio::sync::Semaphore::new(CALL_WINDOW));
    let deliver =
        move |post: &Post, item: Option<std::result::Result<Reply, CoreError>>, permit: Option<tokio::sync::OwnedSemaphorePermit>| {
            post.post(move |env, obj| {
                let _permit = permit;
                let f = registered(env, |f| f.on_call);
                let s = |x: &str| js::string(env, x);
                let args = match &item {
                    Some(Ok(r)) => [s("reply"), reply_js(env, r)],
                    Some(Err(e)) => [s("error"), error_value(env, e)],
                    None => [s("end"), js::undefined(env)],
                };
                call_fn(env, f, js::undefined(env), &[obj, args[0], args[1]]);
            })
        };
    rt.spawn(async move {
        let mut call = match open.await {
            Ok(c) => c,
            Err(e) => {
                *lock(&sending) = Sending::Failed;
                return deliver(&post, Some(Err(e)), None);
            }
        };
        let queued = std::mem::replace(&mut *lock(&sending), Sending::Open(call.sender()));
        if let Sending::Queued(q) = queued {
            for (name, args) in q {
                if let Err(e) = call.send(&name, &args) {
                    *lock(&sending) = Sending::Failed;
                    return deliver(&post, Some(Err(e)), None);
                }
            }
        }
        loop {
            let Ok(permit) = window.clone().acquire_owned().await else { return };
            let Some(item) = call.recv().await else { break };
            let failed = item.is_err();
            deliver(&post, Some(item), Some(permit));
            if failed {
                *lock(&sending) = Sending::Failed;
                return;
            }
        }
        deliver(&post, None, None);
    });
    Ok(inst)
}

#[napi]
impl Call {
    /// The service called.
    #[napi(getter)]
    pub fn service(&self) -> String {
        self.service.clone()
    }

    /// The method called.
    #[napi(getter)]
    pub fn method(&self) -> String {
        self.method.clone()
    }

    /// Sends message `name` of the method's tx protocol (e.g. `write`
    /// then `close` for a method whose tx is streaming, like
    /// `echo.relay`). Before the call is open, messages wait and go out in
    /// order. Throws if the protocol does not allow it now.
    #[napi(ts_args_type = "name: string, ...args: any[]")]
    pub fn send(&self, env: Env, name: String, args: Option<Unknown<'_>>) -> Result<()> {
        let e = env.raw();
        let values = args_of(e, args.as_ref())?;
        let mut st = lock(&self.sending);
        match &mut *st {
            Sending::Queued(q) => {
                q.push((name, values));
                Ok(())
            }
            Sending::Open(s) => s.send(&name, &values).map_err(|err| throw_core(e, &err)),
            Sending::Failed => Err(throw_core(e, &CoreError::Closed)),
        }
    }
}

fn level_of(env: sys::napi_env, v: &Unknown<'_>) -> Result<Level> {
    if let Some(n) = js::get_int(env, v.raw()) {
        return Ok(Level::from_i64(n));
    }
    js::get_string(env, v.raw())
        .and_then(|s| Level::from_name(&s))
        .ok_or_else(|| js::type_error(env, "a level is 'debug', 'info', 'warning', 'error' or 0..3"))
}

fn attributes_of(env: sys::napi_env, v: Option<&Unknown<'_>>) -> Result<Vec<(String, Value)>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if js::is_nullish(env, v.raw()) {
        return Ok(Vec::new());
    }
    match from_js(env, v.raw(), 0).map_err(|m| js::type_error(env, &m))? {
        Value::Map(pairs) => Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_else(|| k.to_string()), v))
            .collect()),
        _ => Err(js::type_error(env, "attributes must be an object")),
    }
}

/// A client of the `logging` service (docs/PROTOCOL.md §7.4). Messages below
/// the service's verbosity (asked once per connection) are not sent.
#[napi]
pub struct Logger {
    core: Arc<core::Logger>,
}

#[napi]
impl Logger {
    /// A logger whose messages carry `source` (e.g. `'app/name'`), through
    /// the `logging` service of `locator`.
    #[napi(constructor)]
    pub fn new(locator: &Locator, source: String) -> Self {
        Logger { core: Arc::new(core::Logger::with_service(locator.core.service("logging"), &source)) }
    }

    /// The source every message carries.
    #[napi(getter)]
    pub fn source(&self) -> String {
        self.core.source().to_string()
    }

    /// Sends a message with attributes (`{ name: value }`) unless its level
    /// (`'debug'`, `'info'`, `'warning'`, `'error'` or 0..3) is below the
    /// service's verbosity; resolves whether it was sent.
    #[napi(
        ts_args_type = "level: 'debug' | 'info' | 'warning' | 'error' | number, message: string, attributes?: Record<string, any>",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn emit<'a>(&self, env: &'a Env, level: Unknown<'_>, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let level = level_of(env.raw(), &level)?;
        self.send(env, level, message, attributes)
    }

    fn send<'a>(&self, env: &'a Env, level: Level, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        let attrs = attributes_of(env.raw(), attributes.as_ref())?;
        let l = self.core.clone();
        promise(
            env,
            async move {
                let a: Vec<(&str, Value)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                l.emit(level, &message, &a).await
            },
            |env, sent| {
                let mut v = ptr::null_mut();
                unsafe { sys::napi_get_boolean(env, sent, &mut v) };
                v
            },
        )
    }

    /// `emit('debug', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn debug<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Debug, message, attributes)
    }

    /// `emit('info', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn info<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Info, message, attributes)
    }

    /// `emit('warning', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn warning<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Warning, message, attributes)
    }

    /// `emit('error', message, attributes)`.
    #[napi(ts_args_type = "message: string, attributes?: Record<string, any>", ts_return_type = "Promise<boolean>")]
    pub fn error<'a>(&self, env: &'a Env, message: String, attributes: Option<Unknown<'_>>) -> Result<Unknown<'a>> {
        self.send(env, Level::Error, message, attributes)
    }
}
