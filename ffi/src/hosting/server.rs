//! A Locator in this process: `sluice_locator_server`, with the demo services.

use super::*;

/// Log lines of the demo `logging` service kept at most.
const DEMO_LOG_LINES: usize = 1000;

/// A Locator listening in this process, answering from its registry
/// (`resolve`, `publish`, `attach`, `services`, ...). Opaque; made by
/// `sluice_locator_server_bind`, stopped and released by
/// `sluice_locator_server_free`. Thread-safe.
#[allow(non_camel_case_types)]
pub struct sluice_locator_server {
    srv: LocatorServer,
    endpoint: CString,
    demos: Mutex<Vec<Hosted>>,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// Starts a Locator on `endpoint` (`host:port`; port 0 picks a free one)
/// answering from `reg` (NULL: a new registry; a registry is shared, not
/// copied), where it registers itself as `locator`. The handle goes to
/// `*out` (NULL on failure). Errors: `SLUICE_E_INVALID` (endpoint),
/// `SLUICE_E_IO` (e.g. the address is in use).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_bind(
    endpoint: *const c_char,
    reg: *const sluice_registry,
    out: *mut *mut sluice_locator_server,
) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let ep = endpoint_of(unsafe { str_arg(endpoint, "endpoint") }?.trim())?;
        let registry = match unsafe { reg.as_ref() } {
            Some(r) => r.reg.clone(),
            None => Registry::new(),
        };
        let srv = LocatorServer::bind(&ep, registry).map_err(fail)?;
        let local = match srv.local() {
            Endpoint::Tcp(h, p) if h == "0.0.0.0" => Endpoint::Tcp("127.0.0.1".into(), *p),
            Endpoint::Tcp(h, p) if h == "::" => Endpoint::Tcp("::1".into(), *p),
            e => e.clone(),
        };
        let s = sluice_locator_server { srv, endpoint: c_string(local.to_string()), demos: Mutex::new(Vec::new()), log: Arc::default() };
        Ok(s)
    })
}

/// Where the Locator listens (`host:port` with the actual port; a wildcard
/// address is given as loopback): what `sluice_locator_new` takes. NULL
/// for NULL; owned by `srv`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_endpoint(srv: *const sluice_locator_server) -> *const c_char {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(std::ptr::null(), || unsafe { srv.as_ref() }.map_or(std::ptr::null(), |s| s.endpoint.as_ptr()))
}

/// A handle to the server's registry into `*out` (release it with
/// `sluice_registry_free`).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_registry(srv: *const sluice_locator_server, out: *mut *mut sluice_registry) -> c_int {
    // SAFETY (here and below): NULL or valid pointers, per the C contract.
    make_box(out, || {
        let s = unsafe { arg(srv, "srv") }?;
        Ok(sluice_registry { reg: s.srv.registry().clone() })
    })
}

/// Hosts the built-in demo services next to the Locator (same host, free
/// ports) and registers them: `echo` (`echo(args...)` streams each
/// argument back, `ping(args...)` answers them as a value, `fail(code,
/// msg)` answers `error([42, code], msg)`, `relay()` echoes the caller's
/// writes), `math` (`add`, `sub`, `mul`, `div` of numbers), `kv` (`get`,
/// `set`, `del`, `keys`) and `logging` with `verbosity` (`SLUICE_LOG_*`:
/// messages below it are refused by loggers; those received are kept for
/// `sluice_locator_server_demo_log`). They stop with the server. Errors:
/// `SLUICE_E_INVALID` (verbosity), `SLUICE_E_STATE` (already added),
/// `SLUICE_E_IO`.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_add_demo(srv: *const sluice_locator_server, verbosity: c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, per the C contract.
        let s = unsafe { arg(srv, "srv") }?;
        let level = level_of(verbosity)?;
        let mut demos = lock(&s.demos);
        if !demos.is_empty() {
            return Err(Fail::fixed(SLUICE_E_STATE, c"the demo services were already added"));
        }
        let host = match s.srv.local() {
            Endpoint::Tcp(h, _) => h.clone(),
            Endpoint::Unix(_) => "127.0.0.1".into(),
        };
        let log = s.log.clone();
        let logging = demo::logging(level, move |r| {
            let mut l = lock(&log);
            if l.len() == DEMO_LOG_LINES {
                l.pop_front();
            }
            l.push_back(r.to_string());
        });
        let mut hosted = Vec::new();
        for def in [demo::echo(), demo::math(), demo::kv(), logging] {
            hosted.push(Hosted::bind(def, &Endpoint::Tcp(host.clone(), 0)).map_err(fail)?);
        }
        let entries: Vec<_> =
            hosted.iter().map(|h| (h.name().to_string(), h.endpoints(), h.def().version(), h.def().graph().clone())).collect();
        *demos = hosted;
        drop(demos);
        // Change callbacks run here: not under the lock.
        for (name, endpoints, version, graph) in entries {
            s.srv.registry().add(&name, endpoints, version, graph);
        }
        Ok(())
    })
}

/// The messages the demo `logging` service received (the last 1000), one
/// per line (`[error] app/NAME: message {name=value, ...}`), into `buf`
/// (`cap` bytes, NUL-terminated); the full length goes to `*len` (may be
/// NULL). `SLUICE_E_BUFFER` if `buf` was too small (truncated).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_demo_log(
    srv: *const sluice_locator_server,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY (here and below): NULL or valid pointers, per the C contract.
        let s = unsafe { arg(srv, "srv") }?;
        let text: String = lock(&s.log).iter().map(|l| format!("{l}\n")).collect();
        unsafe { copy_out(&text, buf, cap, len) }
    })
}

/// The number of clients connected to the Locator (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_connections(srv: *const sluice_locator_server) -> usize {
    // SAFETY: NULL or a live handle, per the C contract.
    guard_or(0, || unsafe { srv.as_ref() }.map_or(0, |s| s.srv.connections()))
}

/// Stops the Locator: stops listening, closes every client connection
/// (what they attached or published goes offline) and the demo services,
/// and releases the handle. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn sluice_locator_server_free(srv: *mut sluice_locator_server) {
    free_box(srv)
}
