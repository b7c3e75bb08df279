//! sluice for Node.js: a napi-rs addon over `sluice-core`.
//!
//! * [`compat::CompatChannel`] (`Channel` in JavaScript) — the drop-in
//!   replacement for the Cocaine Node.js framework's channel object.
//! * [`connection`] — `connect()` → `Connection`, `listen()` → `Server`:
//!   EventEmitters with promises and Node-stream backpressure
//!   (the core's `host::backlog`).
//! * The protocol roles: [`worker`] (`startWorker()`), [`engine`]
//!   (`listenEngine()`), [`session`] (`openSession()`), [`resume`]
//!   (`listenResume()`); their sends are one family ([`sends`]).
//! * [`services`] — Cocaine services: `Locator`, `Service`, `Call`,
//!   `Logger`, `ServiceDef` with JavaScript handlers, `attach()`, `host()`,
//!   `LocatorServer` and its `Registry` (`lib/services.js`: errors, calls).
//! * [`port`] — how events of every object reach JavaScript: one port
//!   type, batches of [`records`] built on the I/O threads, delivered
//!   through the [`hub`]'s one threadsafe function (`lib/dispatch.js` runs
//!   the owner's callbacks).
//!
//! The package's `index.js` loads this addon, hands it the dispatcher
//! (`_init`) and makes `Connection` and `Server` EventEmitters.
#![deny(unsafe_op_in_unsafe_fn)]
// Under `cargo test` the `#[napi]` exports are not registered, so what only
// they reach looks unused to the test build of this crate.
#![cfg_attr(test, allow(dead_code))]

mod compat;
mod connection;
mod engine;
mod hub;
mod js;
mod options;
mod port;
mod records;
mod resume;
mod sends;
mod services;
mod session;
mod worker;

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Internal: `index.js` calls it once with the batch dispatcher of
/// `lib/dispatch.js` before anything else of the addon is used.
#[napi(js_name = "_init", ts_args_type = "dispatch: (...args: any[]) => unknown")]
pub fn init(env: Env, dispatch: Unknown<'_>) -> Result<()> {
    if js::type_of(env.raw(), dispatch.raw()) != sys::ValueType::napi_function {
        return Err(js::type_error(env.raw(), "_init takes the dispatcher function"));
    }
    hub::init(env.raw(), dispatch.raw())
}

/// The version of the sluice addon (the workspace version).
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Sets how many I/O threads the shared runtime gets (default 2, or the
/// `SLUICE_THREADS` environment variable). Takes effect only before the
/// first channel or server is made; returns whether it did.
#[napi]
pub fn set_io_threads(n: u32) -> bool {
    sluice_core::net::runtime::set_threads(n as usize)
}

/// The errno names sluice knows, by Linux number (`{ 104: 'ECONNRESET',
/// … }`): what `err.code` says for a socket error (`'EUNKNOWN'` for
/// another).
#[napi(ts_return_type = "Record<number, string>")]
pub fn errno_names() -> HashMap<String, String> {
    sluice_core::errno::all().iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
}

/// What an errno means, in words, as error messages say it.
#[napi]
pub fn errno_text(errno: i32) -> String {
    sluice_core::errno::text(errno)
}
