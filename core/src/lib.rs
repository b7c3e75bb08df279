//! sluice-core: a native channel for the Cocaine RPC protocol.
//!
//! * [`wire`] — the sans-IO codec for both dialects (no sockets, no clock).
//! * [`net`] — channels and servers over TCP and Unix sockets (tokio).
//! * [`roles`] — worker, engine, reconnecting sessions with resume.
//! * [`services`] — Locator, service and Logger clients; hosting services.
//! * [`errno`] — the errno values channels report.
//!
//! The tour below shows each module at work; its examples compile and run as
//! doc tests.
//!
//! # The wire codec ([`wire`])
//!
//! ```rust
//! use sluice_core::wire::{Decoder, DecoderConfig, Dialect, Encoder, Message, Profile, Role, Session};
//!
//! // Bytes in, at any split; frames out, in wire order.
//! let mut dec = Decoder::new(DecoderConfig::new(Dialect::V1));
//! let mut session = Session::new(Dialect::V1, Role::Worker);
//! dec.feed(b"\x93\x02\x00\x91\xa4http\x93\x02\x00\x91\xa4ping");
//! while let Some(frame) = dec.decode()? {
//!     match session.receive(&frame) {
//!         Ok(Message::Invoke { event }) => println!("invoke {event:?} on {}", frame.session),
//!         Ok(Message::Chunk { data }) => println!("{} bytes", data.len()), // a slice of the receive buffer
//!         Ok(other) => println!("{other:?}"),
//!         Err(dropped) => eprintln!("dropped: {dropped}"),                  // never fatal
//!     }
//! }
//!
//! // Messages in, bytes out (the compat profile by default: what every runtime reads).
//! let mut enc = Encoder::new(Dialect::V1, Profile::Compat);
//! enc.message(2, &Message::Chunk { data: "pong".into() }, &[]);
//! enc.message(2, &Message::Choke, &[]);
//! # Ok::<(), sluice_core::wire::DecodeError>(())
//! ```
//!
//! * **Decoder** — incremental and linear whatever the split: it keeps its place
//!   inside a frame between reads and skips a byte string by its declared length,
//!   so a 512 MiB chunk costs the same in one read or a million. Complete frames
//!   are cut from the receive buffer in batches; arguments and chunk payloads are
//!   `bytes::Bytes` slices of it (no copy). Accepts every encoding a tolerant
//!   decoder must (any integer width for ids, str/bin/raw strings, any array
//!   form). Limits: `max_frame_size` (default 512 MiB, refused as soon as a
//!   larger size is declared), `header_table_size` (4096). Every malformed input
//!   is a typed `DecodeError` with its errno (`EBADMSG`, or `EMSGSIZE` past the
//!   limit); frames before the bad bytes are delivered first; nothing panics.
//! * **Headers** — the v1 table scheme in full: the 82-entry static table, the
//!   dynamic table with size accounting and eviction, indexed and literal
//!   entries, tracing ids little-endian (`TraceIds`).
//! * **Typed messages** — `Message` (handshake, heartbeat, terminate, invoke,
//!   chunk/write, error with v1 category, choke/close) and `Session`, which
//!   tracks per connection what a v1 type id means on each channel and drops
//!   (never fails on) frames for unknown or finished channels.
//! * **Encoder** — the compat profile byte-exactly (only `a0`–`bf`, `da`, `db`
//!   strings; always used for v0) or the modern one (bin payloads, `d9`);
//!   small parts go into a scratch buffer and large payloads are chained by
//!   reference into an `OutBuf` ready for a vectored write.
//!
//! # Channels and servers ([`net`])
//!
//! ```rust,no_run
//! use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Server};
//! use sluice_core::wire::{Dialect, Message, Role};
//!
//! // An engine: accept workers, answer their heartbeats, invoke "ping".
//! let engine = Server::bind(&Endpoint::parse("/tmp/app.sock").unwrap(), ChannelConfig::new(Dialect::V1, Some(Role::Engine)), |_: &Server, incoming: sluice_core::net::Incoming| {
//!     incoming.start(|ch: &Channel, ev: Event| match ev {
//!         Event::Message { message: Message::Handshake { .. }, .. } => {
//!             let s = ch.next_session();
//!             ch.send(s, &Message::Invoke { event: "ping".into() }).unwrap();
//!         }
//!         Event::Message { message: Message::Heartbeat, .. } => ch.send(1, &Message::Heartbeat).unwrap(),
//!         Event::Message { session, message: Message::Chunk { data }, .. } => println!("{session}: {data:?}"),
//!         _ => {}
//!     }).unwrap();
//! })?;
//!
//! // A worker: handshake on connect, answer every invoke with a chunk and close.
//! let worker = Channel::connect(engine.local().clone(), ChannelConfig::new(Dialect::V1, Some(Role::Worker)), |ch: &Channel, ev: Event| match ev {
//!     Event::Connected => ch.send(1, &Message::Handshake { uuid: "6d0b4c1e".into() }).unwrap(),
//!     Event::Message { session, message: Message::Invoke { .. }, .. } => {
//!         ch.send_chunk(session, &"pong".into()).unwrap();
//!         ch.send(session, &Message::Choke).unwrap();
//!     }
//!     Event::SocketError(errno) => eprintln!("connection ended: errno {errno}"),
//!     _ => {}
//! })?;
//! # worker.close(); engine.close();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! * One tokio runtime per process, made on first use with 2 I/O threads
//!   (`SLUICE_THREADS` or `net::runtime::set_threads`); a child after `fork()`
//!   gets a fresh one.
//! * Reads of up to 256 KiB into the decoder's buffer; every complete frame
//!   becomes one `Event`, in wire order: `Connected`, `Message` (typed, for a
//!   channel with a role: the channel tracks sessions itself), `Frame` (every
//!   frame without a role, and frames the worker protocol drops), `Drain`,
//!   `SocketError(errno)` — exactly once per connection, after every complete
//!   frame, with the errno of PROTOCOL.md §8.3 (`ECONNREFUSED`, `ENOENT`,
//!   `ESHUTDOWN` at end of stream, `EPIPE`, `ECONNRESET`, `EBADMSG`, `EMSGSIZE`,
//!   `ETIMEDOUT` for the connect timeout). Writes never raise SIGPIPE.
//! * Sends never block: small frames are coalesced, large payloads chained
//!   without a copy and written with `writev`; a lone message on an idle
//!   connection is written at once from the caller's thread. A send is refused
//!   with `SendError::WouldBlock` while `high_watermark` bytes are queued; a
//!   `Drain` event follows when the queue is down to `low_watermark`.
//! * Delivery: `Delivery::Inline` runs the handler on an I/O thread;
//!   `Delivery::Poll` queues events, makes `Channel::fd()` readable
//!   (level-triggered) and runs the handler in `Channel::dispatch` on the
//!   host's thread, pausing reads while `max_pending` bytes wait.
//! * `close()` flushes what is queued, then shuts down; `abort()` drops it.
//!   No event is delivered after either.
//!
//! # Protocol roles ([`roles`])
//!
//! What people build with the channel, with the same behaviour from every
//! language:
//!
//! * `Worker` — the app side of the engine protocol (PROTOCOL.md §6): reads the
//!   runtime's arguments (`WorkerOptions::from_args`), handshakes with its uuid,
//!   heartbeats every 5 s, disowns itself (`Disown`, then `Disconnected` with
//!   `ETIMEDOUT`) after 30 s without a word from the engine, answers the
//!   engine's `terminate`, and hands each `invoke` over as a `WorkerStream`
//!   (`write`, then `close` or `error`; v0's error is followed by the choke the
//!   engine needs; nothing can be sent after a stream's end).
//! * `Engine` — the runtime side, for tests, demos and small hubs: accepts
//!   workers, checks their uuids, answers heartbeats, cuts workers that stay
//!   silent (`Gone` with `ETIMEDOUT`), invokes events and streams replies,
//!   terminates workers (and cuts them if they do not go).
//! * `Session` — a client connection that stays up: `Connected` /
//!   `Disconnected` / `ReconnectAttempt` events, exponential backoff with
//!   jitter, endpoints tried in order, heartbeats with a liveness timeout, and
//!   opt-in **resume** against a `ResumeServer`: nothing lost, nothing
//!   duplicated across reconnections (the wire extension is described in
//!   `docs/RESUME.md` in the repository).
//!
//! ```rust,no_run
//! use bytes::Bytes;
//! use sluice_core::net::Endpoint;
//! use sluice_core::roles::{Engine, EngineEvent, EngineOptions, Worker, WorkerEvent, WorkerOptions};
//! use sluice_core::wire::Dialect;
//!
//! let path = Endpoint::parse("/tmp/echo.sock").unwrap();
//! let engine = Engine::bind(EngineOptions::new(path.clone(), Dialect::V1), |_: &Engine, ev| match ev {
//!     EngineEvent::Handshake { worker } => {
//!         let s = worker.invoke("echo").unwrap();
//!         s.write(&Bytes::from_static(b"hello")).unwrap();
//!         s.close().unwrap();
//!     }
//!     EngineEvent::Chunk { data, .. } => println!("echoed {data:?}"),
//!     _ => {}
//! })?;
//! let worker = Worker::connect(WorkerOptions::new("6d0b4c1e", path, Dialect::V1), |w: &Worker, ev| match ev {
//!     WorkerEvent::Chunk { session, data } => drop(w.stream(session).write(&data)),
//!     WorkerEvent::Close { session } => drop(w.stream(session).close()),
//!     WorkerEvent::Terminate { code, .. } => w.terminate(code, "worker shut down"),
//!     _ => {}
//! })?;
//! # worker.close(); engine.close();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Timers (heartbeat, disown, silence, backoff, acknowledgements) are small
//! state machines driven by explicit instants (`worker::Timers`,
//! `engine::WorkerTimers`, `session::Backoff`, `resume::Replay`), tested with a
//! fake clock; the roles run them on the shared runtime.
//! `cargo run -p sluice-core --example engine -- rust=target/debug/examples/worker`
//! starts workers as the runtime would and drives sessions through them.
//!
//! # Services ([`services`])
//!
//! Clients that resolve services through the Locator and call them by name,
//! a Logger client, and the serving side: hosting services, a Locator whose
//! table is a registry of online services, and services a client attaches
//! over its own connection.
//!
//! ```rust
//! use sluice_core::net::Endpoint;
//! use sluice_core::services::{Hosted, Locator, LocatorServer, Registry, ServiceDef, ServiceError};
//! use sluice_core::wire::Value;
//!
//! // A Locator, and a service published to it (online while `_online` lives).
//! let locator_server = LocatorServer::bind(&Endpoint::parse("127.0.0.1:0").unwrap(), Registry::new())?;
//! let locator = Locator::new(vec![locator_server.local().clone()]); // Locator::default(): localhost:10053
//! let squares = ServiceDef::new("squares", 1)
//!     .primitive("square", |args| match args.first().and_then(Value::as_u64) {
//!         Some(n) => Ok(vec![Value::Uint(n * n)]),
//!         None => Err(ServiceError::new(42, 1, "square(n)")),
//!     })
//!     .streaming("upto", |req, mut out| {
//!         for i in 0..req.args.first().and_then(Value::as_u64).unwrap_or(0) {
//!             let _ = out.write(vec![Value::Uint(i * i)]);
//!         }
//!         let _ = out.close();
//!     });
//! let hosted = Hosted::bind(squares, &Endpoint::parse("127.0.0.1:0").unwrap())?;
//! let _online = hosted.publish_blocking(&locator)?;
//!
//! // A client: resolve by name, call a primitive and a streaming method.
//! let svc = locator.service("squares");
//! assert_eq!(svc.call_blocking("square", vec![Value::Uint(7)])?.value_blocking()?, [Value::Uint(49)]);
//! let mut call = svc.call_blocking("upto", vec![Value::Uint(3)])?;
//! while let Some(reply) = call.recv_blocking() {
//!     let reply = reply?; // an error from the service ends the stream
//!     println!("{} {:?}", reply.name, reply.args); // write [0], write [1], write [4], close []
//! }
//! # Ok::<(), sluice_core::services::Error>(())
//! ```
//!
//! * `graph` — method graphs (the manifest of PROTOCOL.md §7.2/§7.3): decoded
//!   from and encoded to msgpack values, sparse and unknown ids kept (newer
//!   runtimes' 65532–65535), printed one method per line with its tx and rx.
//! * `Locator` — several endpoints tried in order (failover); `resolve` gives
//!   endpoints, version and graph. `Service` connects on its first call to one
//!   of the endpoints (spread across them, the others tried if it fails),
//!   follows each call's rx graph (`value`/`error`, or `write*` then
//!   `close`/`error`) and tolerates reply types the graph lacks. States
//!   closed / connecting / connected / error (PROTOCOL.md §8.4): when the
//!   connection ends, calls in progress fail with `Disconnected(errno)` and
//!   the next call resolves and connects again. Service errors carry category,
//!   code and message. v0 services (§2.3) work with `ClientConfig { dialect:
//!   Dialect::V0, .. }`.
//! * `Logger` — `emit(level, message, attributes)` and `debug`/`info`/
//!   `warning`/`error` with the source `app/<app>`; the verbosity is asked once
//!   per connection, and messages below it are not sent.
//! * Serving — `ServiceDef` (graph + a closure per method), `Hosted` (listens,
//!   `publish` to a Locator), `LocatorServer` + `Registry` (services go
//!   offline at once when the registering channel or connection ends, and
//!   come back when registered again), `Attached` and `Registry::invoke`:
//!   a client provides a service over its own Locator connection and the
//!   server invokes it there (`docs/attach.md` in the repository).
//! * Every network call has an `async` form and a `_blocking` one for threads
//!   outside the runtime (C, Python); a blocking call on a runtime thread
//!   returns `Error::InRuntime` instead of deadlocking.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod errno;
pub mod host;
pub mod net;
pub mod roles;
pub mod services;
pub mod wire;

// The README's examples are compiled and run as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
