"""sluice: a native channel for the Cocaine RPC protocol.

A Rust core does the socket work and all decoding and encoding of both
dialects (v0: Cocaine 0.10/0.11, v1: 0.12); this package delivers its
events to Python on your thread, in batches:

* :class:`Channel` — ``Channel(path)`` / ``Channel(host, port)``, ``on_*``
  callbacks, ``send_*`` methods; ``dispatch()``/``run()``/``fileno()``.
* :class:`Server` — listen and accept channels (an engine or a service).
* :func:`poll` — wait on several channels, servers, workers, engines, sessions
  and resume servers at once, dispatch them.
* The protocol roles: :class:`Worker` (the app side: handshake, heartbeats,
  disown, sessions as :class:`WorkerStream`), :class:`Engine` (accepts
  workers: :class:`WorkerRef`, :class:`EngineStream`), :class:`Session` (a
  connection that reconnects, optionally resumable) and
  :class:`ResumeServer` (its server: :class:`Peer`). Same delivery as a
  channel: ``on_*`` callbacks run by ``dispatch()``/``run()`` or
  :func:`sluice.aio.run`.
* Cocaine services: :class:`Locator` (``resolve``, ``service``) →
  :class:`Service` → :class:`Call` of :class:`Reply`\ s; :class:`Logger`;
  :class:`ServiceDef` (handlers in Python) served by :func:`attach`
  (over the Locator connection) or :func:`host` (own endpoint);
  :class:`LocatorServer` with its :class:`Registry` (and the demo services).
* :mod:`sluice.aio` — the asyncio API (``await sluice.aio.connect(...)``).
* :mod:`sluice.events` — event objects for pull-style delivery.
* :mod:`sluice.errors` — exceptions, rooted at :class:`Error`.
* :data:`OPTIONS` — the channel options every constructor takes as
  keywords (name, kind, default, doc), from the core's option table.
* :func:`configure` / :func:`setting` — the process-wide settings
  (:data:`SETTINGS`: service connection cap, service idle timeout, I/O
  threads), from the core's settings table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors, events
from ._sluice import (
    MAX_HANDLER_THREADS,
    MAX_QUEUED_CALLS,
    Attached,
    Call,
    Entry,
    Hosted,
    Locator,
    LocatorServer,
    Logger,
    Publication,
    Registry,
    Reply,
    Resolved,
    Responder,
    Service,
    ServiceDef,
    attach,
    host,
    DEFAULT_BATCH,
    DEFAULT_COPY_THRESHOLD,
    OPTIONS,
    SETTINGS,
    Channel,
    Engine,
    EngineStream,
    Payload,
    Peer,
    ResumeServer,
    Server,
    Session,
    Worker,
    WorkerRef,
    WorkerStream,
    __version__,
    configure,
    poll,
    set_io_threads,
    setting,
)
from .errors import (
    BadArguments,
    Closed,
    ConnectionError,
    Disconnected,
    Error,
    NotFound,
    ProtocolError,
    ServiceError,
    Timeout,
    UnknownMethod,
    WouldBlock,
)
from .events import Event

if TYPE_CHECKING:
    from . import aio

__all__ = [
    "Channel",
    "Server",
    "Payload",
    "Worker",
    "WorkerStream",
    "Engine",
    "WorkerRef",
    "EngineStream",
    "Session",
    "ResumeServer",
    "Peer",
    "poll",
    "set_io_threads",
    "configure",
    "setting",
    "Event",
    "Error",
    "ProtocolError",
    "WouldBlock",
    "Closed",
    "BadArguments",
    "Locator",
    "Resolved",
    "Service",
    "Call",
    "Reply",
    "Logger",
    "ServiceDef",
    "Responder",
    "attach",
    "Attached",
    "host",
    "Hosted",
    "Publication",
    "LocatorServer",
    "Registry",
    "Entry",
    "ServiceError",
    "NotFound",
    "UnknownMethod",
    "Disconnected",
    "Timeout",
    "MAX_HANDLER_THREADS",
    "MAX_QUEUED_CALLS",
    "errors",
    "events",
    "aio",
    "DEFAULT_COPY_THRESHOLD",
    "DEFAULT_BATCH",
    "OPTIONS",
    "SETTINGS",
    "__version__",
]
# sluice.ConnectionError is exported but left out of __all__: a star import
# would shadow the builtin of the same name.


def __getattr__(name: str) -> object:
    # sluice.aio imports asyncio: load it on first use only.
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'sluice' has no attribute {name!r}")
