"""Type stubs of the native module ``sluice._sluice`` (re-exported by ``sluice``),
in one file as type checkers look for them."""

import os
import sys
from types import ModuleType, TracebackType
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Tuple, Type, TypeVar, Union, final, overload

from typing_extensions import Buffer, Self

from .events import Event

__all__ = ['__version__', 'DEFAULT_COPY_THRESHOLD', 'DEFAULT_BATCH', 'OPTIONS', 'SETTINGS', 'errno_name', 'errno_text', 'Channel', 'Server', 'events', 'Payload', 'poll', 'set_io_threads',
           'configure', 'setting',
           'Worker', 'WorkerStream', 'Engine', 'WorkerRef', 'EngineStream', 'Session', 'ResumeServer', 'Peer',
           'Locator', 'Resolved', 'Service', 'Call', 'Reply', 'Logger', 'ServiceDef', 'Responder', 'attach', 'Attached',
           'host', 'Hosted', 'Publication', 'Registry', 'Entry', 'LocatorServer', 'MAX_HANDLER_THREADS', 'MAX_QUEUED_CALLS']
__version__: str
#: Chunks of at least this many bytes arrive as a zero-copy :class:`Payload`.
DEFAULT_COPY_THRESHOLD: int
#: Events run per ``dispatch()`` call by default.
DEFAULT_BATCH: int
#: The channel options every constructor takes as keywords (``Channel``,
#: ``Server``; the role classes all but those they set themselves), from the
#: core's option table, in documentation order. One dict per option:
#: ``name`` (the keyword), ``kind`` (``"dialect"``, ``"role"``,
#: ``"profile"``, ``"count"`` — a whole number from ``min`` to ``max`` —,
#: ``"flag"``, ``"timeout"`` — seconds, 0 or None: no limit —,
#: ``"duration"`` — seconds), ``default`` (as text), ``doc``, and for
#: durations ``unit`` (``"seconds"``). A value the table refuses raises
#: ValueError with the table's text, the same as C's and Node's
#: (``"max_frame_size: must be a whole number from 16 to 4294967295, got 0"``).
OPTIONS: Tuple[Dict[str, Any], ...]
#: The process-wide settings :func:`configure` takes as keywords and
#: :func:`setting` reads, from the core's settings table (the one behind C's
#: ``sluice_set`` and Node's ``configure``), in documentation order; dicts
#: of the same form as :data:`OPTIONS`: ``max_service_connections``
#: (``"count"``), ``service_idle_timeout`` (``"timeout"``, seconds),
#: ``io_threads`` (``"count"``).
SETTINGS: Tuple[Dict[str, Any], ...]
#: The event classes (see :mod:`sluice.events`).
events: ModuleType

def errno_name(errno: int) -> str:
    """The symbolic name of an errno (``"ECONNRESET"``; ``"EUNKNOWN"`` for
    one sluice does not know). Linux values on every system."""
def errno_text(errno: int) -> str:
    """What an errno means for a sluice connection, in words."""

_PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
_DialectArg = Union[Literal[0, 1, "v0", "v1", "0", "1"], int, str]
_RoleArg = Optional[Literal["worker", "engine", "none"]]
#: What senders accept as data: bytes (shared when large), Payload (shared),
#: bytearray, memoryview or any other buffer (copied).
_Data = Union[bytes, "Payload", bytearray, memoryview, Buffer]
_Text = Union[str, bytes]
_ChunkData = Union[bytes, "Payload"]

@final
class Payload:
    """A received chunk's bytes shared with the receive buffer (no copy):
    read-only buffer protocol, ``len()``, ``tobytes()``, ``==`` with bytes.
    Made by sluice for chunks of at least ``copy_threshold`` bytes."""

    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def tobytes(self) -> bytes:
        """A copy of the bytes as ``bytes``."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

class _Handle:
    """The base of every object with a descriptor to poll (``Channel``,
    ``Server``, ``Worker``, ``Engine``, ``Session``, ``ResumeServer``):
    ``sluice.poll`` takes any of them."""
    def fileno(self) -> int:
        """The descriptor readable while events wait (level-triggered)."""
    def dispatch(self, timeout: Optional[float] = 0.0) -> int:
        """Runs the callbacks of one batch of waiting events; returns how many ran."""
    def run(self, timeout: Optional[float] = None) -> None:
        """Dispatches until ``done`` or ``timeout`` seconds."""
    @property
    def pending(self) -> int:
        """Events left undelivered by a callback that raised (dispatch runs them first)."""
    @property
    def done(self) -> bool:
        """Nothing more will be delivered: closed, or the last event ran."""
    def close(self) -> None:
        """Closes gracefully; no callback runs afterwards. Idempotent."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class Channel(_Handle):
    """A connection carrying Cocaine frames: ``Channel(path)`` (Unix) or
    ``Channel(host, port)`` (TCP), connected in the background. Callbacks
    run only on the thread that calls ``dispatch``/``run``/``sluice.poll``."""

    def __new__(
        cls,
        host: _PathLike,
        port: Optional[int] = None,
        *,
        dialect: _DialectArg = 1,
        role: _RoleArg = "worker",
        profile: Literal["compat", "modern"] = "compat",
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        max_pending: Optional[int] = None,
        copy_threshold: Optional[int] = None,
        batch: Optional[int] = None,
        read_size: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        close_linger: float = 10.0,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_connect: Optional[Callable[[], Any]] = None,
        on_socket_error: Optional[Callable[[int], Any]] = None,
        on_handshake: Optional[Callable[[str], Any]] = None,
        on_heartbeat: Optional[Callable[[], Any]] = None,
        on_terminate: Optional[Callable[[int, int, str], Any]] = None,
        on_invoke: Optional[Callable[[int, str], Any]] = None,
        on_chunk: Optional[Callable[[int, _ChunkData], Any]] = None,
        on_chunks: Optional[Callable[[int, List[_ChunkData]], Any]] = None,
        on_choke: Optional[Callable[[int], Any]] = None,
        on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]] = None,
        on_frame: Optional[Callable[[int, int, List[Any]], Any]] = None,
        on_drain: Optional[Callable[[], Any]] = None,
    ) -> Self: ...

    # Callbacks (None: the event is dropped).
    on_connect: Optional[Callable[[], Any]]
    """``on_connect()``: the connection is established."""
    on_socket_error: Optional[Callable[[int], Any]]
    """``on_socket_error(errno)``: the connection ended; the last event."""
    on_handshake: Optional[Callable[[str], Any]]
    """``on_handshake(uuid)``: engine role, the worker's handshake."""
    on_heartbeat: Optional[Callable[[], Any]]
    """``on_heartbeat()``."""
    on_terminate: Optional[Callable[[int, int, str], Any]]
    """``on_terminate(session, code, reason)`` on the control session."""
    on_invoke: Optional[Callable[[int, str], Any]]
    """``on_invoke(session, event)``: worker role, a new session."""
    on_chunk: Optional[Callable[[int, _ChunkData], Any]]
    """``on_chunk(session, data)``: bytes, or a Payload from ``copy_threshold``."""
    on_chunks: Optional[Callable[[int, List[_ChunkData]], Any]]
    """``on_chunks(session, chunks)``: a run of chunks of one session in one call."""
    on_choke: Optional[Callable[[int], Any]]
    """``on_choke(session)``: the peer's direction of the session ends."""
    on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]]
    """``on_error(session, category, code, message)``; category None in v0."""
    on_frame: Optional[Callable[[int, int, List[Any]], Any]]
    """``on_frame(session, type_id, args)``: frames that are not worker-protocol messages."""
    on_drain: Optional[Callable[[], Any]]
    """``on_drain()``: sends are accepted again after ``WouldBlock``."""

    def fileno(self) -> int:
        """The descriptor readable while events wait (level-triggered)."""
    def dispatch(self, timeout: Optional[float] = 0.0) -> int:
        """Runs the callbacks of one batch of waiting events; returns how many."""
    def run(self, timeout: Optional[float] = None) -> None:
        """Dispatches until the channel is done or ``timeout`` passes."""
    def events(self, timeout: Optional[float] = 0.0, max: Optional[int] = None) -> List[Event]:
        """Takes waiting events as objects instead of running callbacks."""

    def send(self, data: _Data) -> None:
        """Queues pre-encoded frames as they are."""
    def send_chunk(self, session: int, data: _Data) -> None:
        """Queues a chunk (v0 ``chunk``, v1 ``write``)."""
    def send_chunks(self, session: int, chunks: Iterable[_Data]) -> int:
        """Queues several chunks of one session; returns how many."""
    def send_choke(self, session: int) -> None:
        """Ends this side of ``session`` (v0 ``choke``, v1 ``close``)."""
    def send_error(self, session: int, code: int, message: Optional[_Text] = None, category: Optional[int] = None) -> None:
        """Fails ``session`` (v1 category 42 when None)."""
    def send_terminate(self, code: int, reason: _Text) -> None:
        """Sends terminate on the control session."""
    def send_heartbeat(self) -> None:
        """Sends a heartbeat on the control session."""
    def send_handshake(self, uuid: _Text) -> None:
        """Sends the worker's handshake."""
    def send_invoke(self, event: _Text, session: Optional[int] = None) -> int:
        """Opens a session for ``event``; returns its id."""
    def send_frame(self, session: int, type_id: int, args: Optional[Iterable[Any]] = None) -> None:
        """Queues a generic frame with msgpack-encoded ``args``."""
    def next_session(self) -> int:
        """The id for a new session opened by this side."""
    def _arm_drain(self) -> bool: ...

    def close(self) -> None:
        """Closes gracefully; no callback runs afterwards."""
    def abort(self) -> None:
        """Closes at once, dropping what is queued."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

    @property
    def dialect(self) -> int:
        """0 (Cocaine 0.10/0.11) or 1 (0.12)."""
    @property
    def role(self) -> Optional[str]:
        """``"worker"``, ``"engine"`` or None."""
    @property
    def peer(self) -> str:
        """Where the channel connected to, or an accepted channel's peer address."""
    @property
    def closed(self) -> bool:
        """``close()`` was called or the connection ended."""
    @property
    def queued(self) -> int:
        """Bytes queued to send."""
    @property
    def pending(self) -> int:
        """Events left undelivered by a raising callback (dispatch delivers them first)."""
    copy_threshold: int
    """Chunks of at least this many bytes arrive as a Payload."""
    @property
    def batch(self) -> int:
        """The most events one dispatch runs."""

@final
class Server(_Handle):
    """Listens on a Unix path (``Server(path)``) or TCP (``Server(host, port)``)
    and accepts channels (role ``"engine"`` by default)."""

    def __new__(
        cls,
        host: _PathLike,
        port: Optional[int] = None,
        *,
        dialect: _DialectArg = 1,
        role: _RoleArg = "engine",
        profile: Literal["compat", "modern"] = "compat",
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        max_pending: Optional[int] = None,
        copy_threshold: Optional[int] = None,
        batch: Optional[int] = None,
        read_size: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        close_linger: float = 10.0,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_accept: Optional[Callable[[Channel], Any]] = None,
    ) -> Self: ...

    on_accept: Optional[Callable[[Channel], Any]]
    """``on_accept(channel)``, run by ``dispatch()``; None: use ``accept()``."""

    def fileno(self) -> int:
        """The descriptor readable while connections wait."""
    def dispatch(self, timeout: Optional[float] = 0.0) -> int:
        """Accepts waiting connections (to ``on_accept`` if set); returns how many."""
    def accept(self, timeout: Optional[float] = None) -> Channel:
        """The next accepted channel (raises TimeoutError, or Closed)."""
    def __iter__(self) -> Iterator[Channel]: ...
    def __next__(self) -> Channel: ...
    def close(self) -> None:
        """Stops listening; removes the Unix socket file it created."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...
    @property
    def address(self) -> Union[Tuple[str, int], str]:
        """``(host, port)`` for TCP, the path for a Unix socket."""
    @property
    def port(self) -> Optional[int]:
        """The TCP port, or None for a Unix socket."""
    @property
    def endpoint(self) -> str:
        """``host:port``, ``[v6]:port`` or ``unix:PATH``."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""

def poll(*objects: _Handle, timeout: Optional[float] = None) -> int:
    """Waits until one of ``objects`` has events, dispatches each that has;
    returns the number of events run."""

def set_io_threads(n: int) -> bool:
    """Sets the number of I/O threads (before the first channel); returns whether it took effect."""
def configure(
    *,
    max_service_connections: Optional[int] = ...,
    service_idle_timeout: Optional[float] = ...,
    io_threads: Optional[int] = ...,
) -> None:
    """Sets process-wide settings (see :data:`SETTINGS`), shared by every
    server and connection of the process: ``max_service_connections``
    (connections the services of this process keep open at once, all
    servers together; None leaves it), ``service_idle_timeout`` (seconds an
    idle connection to a hosted or attached service may stay open; 0 or
    None: never; default 300), ``io_threads`` (before the first channel or
    server only). A value the core's table refuses raises ValueError with
    its text (``"max_service_connections: must be a whole number from 1 to
    4294967295, got 0"``), as does an unknown name (``"no_such: unknown
    setting"``); settings are applied in the order given, and those before
    a refused one stay set."""
def setting(name: str) -> Union[int, float, None]:
    """The current value of a process-wide setting (see :data:`SETTINGS`):
    an int for a count, float seconds for a duration, None for a timeout
    that is off. An unknown name raises ValueError."""

# ---------------------------------------------------------------------------
# The protocol roles. Each delivers its events like a channel: ``on_*``
# callbacks (attributes or constructor keywords) run by ``dispatch()`` /
# ``run()`` on the calling thread, or on the event loop by ``sluice.aio.run``.

#: An endpoint: a Unix socket path, ``"unix:PATH"``, ``"host:port"`` or ``(host, port)``.
_Endpoint = Union[_PathLike, Tuple[str, int]]
_Cb = Optional[Callable[..., Any]]

class _Role(_Handle):
    """What every role has (not a runtime class: roles derive from ``_Handle``)."""

@final
class WorkerStream:
    """A session the engine opened, seen from the worker."""
    @property
    def session(self) -> int:
        """The session id."""
    def write(self, data: _Data) -> None:
        """Sends a chunk."""
    def close(self) -> None:
        """Ends this side of the session."""
    def error(self, code: int, message: Optional[_Text] = None, category: Optional[int] = None) -> None:
        """Fails the session (v1 category 42 when None; v0 error then choke)."""

@final
class Worker(_Role):
    """The app side of the engine protocol: handshake, heartbeats, disown,
    sessions as :class:`WorkerStream`."""

    def __new__(
        cls,
        endpoint: _Endpoint,
        uuid: _Text,
        *,
        dialect: _DialectArg = 1,
        app: str = "",
        locator: Optional[List[str]] = None,
        heartbeat_interval: Optional[float] = 5.0,
        disown_timeout: Optional[float] = 30.0,
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        max_pending: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        profile: Literal["compat", "modern"] = "compat",
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        close_linger: float = 10.0,
        read_size: Optional[int] = None,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_connect: Optional[Callable[[], Any]] = None,
        on_invoke: Optional[Callable[[WorkerStream, str], Any]] = None,
        on_chunk: Optional[Callable[[int, _ChunkData], Any]] = None,
        on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]] = None,
        on_choke: Optional[Callable[[int], Any]] = None,
        on_heartbeat: Optional[Callable[[], Any]] = None,
        on_terminate: Optional[Callable[[int, str], Any]] = None,
        on_disown: Optional[Callable[[], Any]] = None,
        on_drain: Optional[Callable[[], Any]] = None,
        on_disconnect: Optional[Callable[[int, List[int]], Any]] = None,
    ) -> Self: ...
    @staticmethod
    def from_args(
        args: Iterable[str],
        *,
        heartbeat_interval: Optional[float] = 5.0,
        disown_timeout: Optional[float] = 30.0,
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        max_pending: Optional[int] = None,
        profile: Literal["compat", "modern"] = "compat",
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        close_linger: float = 10.0,
        read_size: Optional[int] = None,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_connect: Optional[Callable[[], Any]] = None,
        on_invoke: Optional[Callable[[WorkerStream, str], Any]] = None,
        on_chunk: Optional[Callable[[int, _ChunkData], Any]] = None,
        on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]] = None,
        on_choke: Optional[Callable[[int], Any]] = None,
        on_heartbeat: Optional[Callable[[], Any]] = None,
        on_terminate: Optional[Callable[[int, str], Any]] = None,
        on_disown: Optional[Callable[[], Any]] = None,
        on_drain: Optional[Callable[[], Any]] = None,
        on_disconnect: Optional[Callable[[int, List[int]], Any]] = None,
    ) -> "Worker":
        """A worker from the runtime's arguments (``sys.argv[1:]``); raises ``BadArguments``."""

    on_connect: Optional[Callable[[], Any]]
    """``on_connect()``: connected, handshake sent."""
    on_invoke: Optional[Callable[[WorkerStream, str], Any]]
    """``on_invoke(stream, event)``: the engine opens a session."""
    on_chunk: Optional[Callable[[int, _ChunkData], Any]]
    """``on_chunk(session, data)``: request data."""
    on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]]
    """``on_error(session, category, code, message)``: the engine failed the session."""
    on_choke: Optional[Callable[[int], Any]]
    """``on_choke(session)``: the engine's direction ended."""
    on_heartbeat: Optional[Callable[[], Any]]
    """``on_heartbeat()``: the engine answered a heartbeat."""
    on_terminate: Optional[Callable[[int, str], Any]]
    """``on_terminate(code, reason)``: the engine asks the worker to stop."""
    on_disown: Optional[Callable[[], Any]]
    """``on_disown()``: the engine was silent for ``disown_timeout``."""
    on_drain: Optional[Callable[[], Any]]
    """``on_drain()``: sends are accepted again."""
    on_disconnect: Optional[Callable[[int, List[int]], Any]]
    """``on_disconnect(errno, sessions)``: the connection ended; the last event."""

    def stream(self, session: int) -> WorkerStream:
        """The stream of ``session``."""
    def terminate(self, code: int = 1, reason: Optional[_Text] = None) -> None:
        """Sends terminate and closes; no callback runs afterwards."""
    def close(self) -> None:
        """Closes without a terminate; no callback runs afterwards."""
    @property
    def app(self) -> str:
        """``--app``."""
    @property
    def uuid(self) -> str:
        """``--uuid``."""
    @property
    def endpoint(self) -> str:
        """``--endpoint`` as ``unix:PATH`` or ``host:port``."""
    @property
    def locator(self) -> List[str]:
        """``--locator`` entries."""
    @property
    def dialect(self) -> int:
        """0 or 1."""
    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats."""
    @property
    def disown_timeout(self) -> float:
        """Seconds of engine silence before disowning."""
    @property
    def open_sessions(self) -> int:
        """Sessions open in at least one direction."""

@final
class WorkerRef:
    """A worker connected to an :class:`Engine` (``==`` and ``hash`` by connection)."""
    @property
    def id(self) -> int:
        """Unique to this connection within the process."""
    @property
    def uuid(self) -> Optional[str]:
        """The handshake's uuid (None before it)."""
    @property
    def open_sessions(self) -> int:
        """Sessions open in at least one direction."""
    def invoke(self, event: _Text) -> "EngineStream":
        """Opens a session for ``event``."""
    def stream(self, session: int) -> "EngineStream":
        """The stream of a session this engine opened."""
    def terminate(self, code: int = 1, reason: Optional[_Text] = None) -> None:
        """Sends terminate; the worker is cut after the terminate timeout."""
    def kill(self, errno: int = 104) -> None:
        """Disconnects the worker at once."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class EngineStream:
    """A session an :class:`Engine` opened on a worker."""
    @property
    def session(self) -> int:
        """The session id."""
    @property
    def worker(self) -> WorkerRef:
        """The worker it runs on."""
    def write(self, data: _Data) -> None:
        """Sends a request chunk."""
    def close(self) -> None:
        """Ends the request."""
    def error(self, code: int, message: Optional[_Text] = None) -> None:
        """Fails the session."""

@final
class Engine(_Role):
    """Listens and drives workers: handshakes, heartbeats, timeouts, invokes, terminate."""

    def __new__(
        cls,
        endpoint: _Endpoint,
        dialect: _DialectArg = 1,
        *,
        uuids: Optional[Iterable[_Text]] = None,
        handshake_timeout: float = 5.0,
        heartbeat_timeout: float = 30.0,
        terminate_timeout: float = 10.0,
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        max_pending: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        profile: Literal["compat", "modern"] = "compat",
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        close_linger: float = 10.0,
        read_size: Optional[int] = None,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_handshake: Optional[Callable[[WorkerRef], Any]] = None,
        on_rejected: Optional[Callable[[str], Any]] = None,
        on_heartbeat: Optional[Callable[[WorkerRef], Any]] = None,
        on_chunk: Optional[Callable[[WorkerRef, int, _ChunkData], Any]] = None,
        on_error: Optional[Callable[[WorkerRef, int, Optional[int], int, Optional[str]], Any]] = None,
        on_choke: Optional[Callable[[WorkerRef, int], Any]] = None,
        on_terminate: Optional[Callable[[WorkerRef, int, str], Any]] = None,
        on_drain: Optional[Callable[[WorkerRef], Any]] = None,
        on_gone: Optional[Callable[[WorkerRef, int], Any]] = None,
    ) -> Self: ...

    on_handshake: Optional[Callable[[WorkerRef], Any]]
    """``on_handshake(worker)``: a worker with an accepted uuid."""
    on_rejected: Optional[Callable[[str], Any]]
    """``on_rejected(uuid)``: an unknown uuid, disconnected."""
    on_heartbeat: Optional[Callable[[WorkerRef], Any]]
    """``on_heartbeat(worker)``: answered already."""
    on_chunk: Optional[Callable[[WorkerRef, int, _ChunkData], Any]]
    """``on_chunk(worker, session, data)``: reply data."""
    on_error: Optional[Callable[[WorkerRef, int, Optional[int], int, Optional[str]], Any]]
    """``on_error(worker, session, category, code, message)``."""
    on_choke: Optional[Callable[[WorkerRef, int], Any]]
    """``on_choke(worker, session)``: the worker's direction ended."""
    on_terminate: Optional[Callable[[WorkerRef, int, str], Any]]
    """``on_terminate(worker, code, reason)``."""
    on_drain: Optional[Callable[[WorkerRef], Any]]
    """``on_drain(worker)``."""
    on_gone: Optional[Callable[[WorkerRef, int], Any]]
    """``on_gone(worker, errno)``: the worker's last event."""

    @property
    def workers(self) -> List[WorkerRef]:
        """Handshaken workers, oldest first."""
    def worker(self, uuid: _Text) -> Optional[WorkerRef]:
        """The connected worker with this uuid."""
    def close(self) -> None:
        """Stops listening and closes every worker connection."""
    @property
    def address(self) -> Union[Tuple[str, int], str]:
        """``(host, port)`` or the path."""
    @property
    def port(self) -> Optional[int]:
        """The TCP port, or None."""
    @property
    def endpoint(self) -> str:
        """``host:port`` or ``unix:PATH``."""

@final
class Session(_Role):
    """A connection that reconnects (backoff, failover, liveness), optionally resumable."""

    def __new__(
        cls,
        endpoints: Union[_Endpoint, List[_Endpoint]],
        *,
        dialect: _DialectArg = 1,
        role: _RoleArg = None,
        profile: Literal["compat", "modern"] = "compat",
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        backoff_multiplier: float = 2.0,
        backoff_jitter: float = 0.2,
        heartbeat_interval: Optional[float] = None,
        liveness_timeout: Optional[float] = None,
        resume: bool = False,
        max_unacked: Optional[int] = None,
        ack_every: Optional[int] = None,
        ack_bytes: Optional[int] = None,
        max_frame_size: Optional[int] = None,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        max_pending: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        max_queued: Optional[int] = None,
        close_linger: float = 10.0,
        read_size: Optional[int] = None,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_connect: Optional[Callable[[str, bool], Any]] = None,
        on_disconnect: Optional[Callable[[int], Any]] = None,
        on_reconnect_attempt: Optional[Callable[[int, str, float], Any]] = None,
        on_handshake: Optional[Callable[[str], Any]] = None,
        on_heartbeat: Optional[Callable[[], Any]] = None,
        on_terminate: Optional[Callable[[int, int, str], Any]] = None,
        on_invoke: Optional[Callable[[int, str], Any]] = None,
        on_chunk: Optional[Callable[[int, _ChunkData], Any]] = None,
        on_choke: Optional[Callable[[int], Any]] = None,
        on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]] = None,
        on_frame: Optional[Callable[[int, int, List[Any]], Any]] = None,
        on_drain: Optional[Callable[[], Any]] = None,
    ) -> Self: ...

    on_connect: Optional[Callable[[str, bool], Any]]
    """``on_connect(endpoint, resumed)``: a connection is up."""
    on_disconnect: Optional[Callable[[int], Any]]
    """``on_disconnect(errno)``: the connection was lost; a reconnection follows."""
    on_reconnect_attempt: Optional[Callable[[int, str, float], Any]]
    """``on_reconnect_attempt(attempt, endpoint, delay)``."""
    on_handshake: Optional[Callable[[str], Any]]
    """As :attr:`Channel.on_handshake`."""
    on_heartbeat: Optional[Callable[[], Any]]
    """As :attr:`Channel.on_heartbeat`."""
    on_terminate: Optional[Callable[[int, int, str], Any]]
    """As :attr:`Channel.on_terminate`."""
    on_invoke: Optional[Callable[[int, str], Any]]
    """As :attr:`Channel.on_invoke`."""
    on_chunk: Optional[Callable[[int, _ChunkData], Any]]
    """As :attr:`Channel.on_chunk`."""
    on_choke: Optional[Callable[[int], Any]]
    """As :attr:`Channel.on_choke`."""
    on_error: Optional[Callable[[int, Optional[int], int, Optional[str]], Any]]
    """As :attr:`Channel.on_error`."""
    on_frame: Optional[Callable[[int, int, List[Any]], Any]]
    """As :attr:`Channel.on_frame`."""
    on_drain: Optional[Callable[[], Any]]
    """A refused send may be retried."""

    def send_chunk(self, session: int, data: _Data) -> None:
        """Queues a chunk (kept while disconnected with resume)."""
    def send_choke(self, session: int) -> None:
        """Ends this side of ``session``."""
    def send_error(self, session: int, code: int, message: Optional[_Text] = None, category: Optional[int] = None) -> None:
        """Fails ``session``."""
    def send_invoke(self, event: _Text, session: Optional[int] = None) -> int:
        """Opens a session; returns its id."""
    def send_frame(self, session: int, type_id: int, args: Optional[Iterable[Any]] = None) -> None:
        """Queues a generic frame."""
    def next_session(self) -> int:
        """The id for a new session opened by this side."""
    def disconnect(self, errno: int = 104) -> None:
        """Cuts the current connection; the session reconnects."""
    def stop(self) -> None:
        """Stops for good."""
    def close(self) -> None:
        """The same as :meth:`stop`."""
    @property
    def connected(self) -> bool:
        """Whether a connection is up and usable."""
    @property
    def received(self) -> int:
        """With resume: frames delivered so far."""
    @property
    def endpoints(self) -> List[str]:
        """The endpoints in order."""
    @property
    def dialect(self) -> int:
        """0 or 1."""
    @property
    def resume(self) -> bool:
        """Whether the stream resumes across reconnections."""

@final
class Peer:
    """A client of a :class:`ResumeServer` across its connections (``==``/``hash`` by token)."""
    @property
    def token(self) -> bytes:
        """The client's 16-byte token."""
    @property
    def received(self) -> int:
        """Frames received from it so far."""
    @property
    def connected(self) -> bool:
        """Whether a connection is attached."""
    def send_chunk(self, session: int, data: _Data) -> None:
        """Queues a chunk (replayed after a reconnection if needed)."""
    def send_choke(self, session: int) -> None:
        """Ends this side of ``session``."""
    def send_error(self, session: int, code: int, message: Optional[_Text] = None, category: Optional[int] = None) -> None:
        """Fails ``session``."""
    def send_frame(self, session: int, type_id: int, args: Optional[Iterable[Any]] = None) -> None:
        """Queues a generic frame."""
    def disconnect(self, errno: int = 104) -> None:
        """Cuts the current connection; the client resumes."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ResumeServer(_Role):
    """The server of resumable sessions."""

    def __new__(
        cls,
        endpoint: _Endpoint,
        dialect: _DialectArg = 1,
        *,
        role: _RoleArg = None,
        profile: Literal["compat", "modern"] = "compat",
        peer_timeout: float = 60.0,
        hello_timeout: float = 10.0,
        max_unacked: Optional[int] = None,
        ack_every: Optional[int] = None,
        ack_bytes: Optional[int] = None,
        max_frame_size: Optional[int] = None,
        max_pending: Optional[int] = None,
        protocol: Optional[_DialectArg] = None,
        header_table_size: Optional[int] = None,
        lenient: bool = False,
        high_watermark: Optional[int] = None,
        low_watermark: Optional[int] = None,
        max_queued: Optional[int] = None,
        connect_timeout: Optional[float] = 30.0,
        close_linger: float = 10.0,
        read_size: Optional[int] = None,
        frame_timeout: Optional[float] = 60.0,
        read_idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        on_peer_connect: Optional[Callable[[Peer, bool], Any]] = None,
        on_peer_disconnect: Optional[Callable[[Peer, int], Any]] = None,
        on_peer_gone: Optional[Callable[[Peer], Any]] = None,
        on_handshake: Optional[Callable[[Peer, str], Any]] = None,
        on_heartbeat: Optional[Callable[[Peer], Any]] = None,
        on_terminate: Optional[Callable[[Peer, int, int, str], Any]] = None,
        on_invoke: Optional[Callable[[Peer, int, str], Any]] = None,
        on_chunk: Optional[Callable[[Peer, int, _ChunkData], Any]] = None,
        on_choke: Optional[Callable[[Peer, int], Any]] = None,
        on_error: Optional[Callable[[Peer, int, Optional[int], int, Optional[str]], Any]] = None,
        on_frame: Optional[Callable[[Peer, int, int, List[Any]], Any]] = None,
        on_drain: Optional[Callable[[Peer], Any]] = None,
    ) -> Self: ...

    on_peer_connect: Optional[Callable[[Peer, bool], Any]]
    """``on_peer_connect(peer, resumed)``."""
    on_peer_disconnect: Optional[Callable[[Peer, int], Any]]
    """``on_peer_disconnect(peer, errno)``: it may come back."""
    on_peer_gone: Optional[Callable[[Peer], Any]]
    """``on_peer_gone(peer)``: forgotten after ``peer_timeout``."""
    on_handshake: Optional[Callable[[Peer, str], Any]]
    """``on_handshake(peer, uuid)``."""
    on_heartbeat: Optional[Callable[[Peer], Any]]
    """``on_heartbeat(peer)``."""
    on_terminate: Optional[Callable[[Peer, int, int, str], Any]]
    """``on_terminate(peer, session, code, reason)``."""
    on_invoke: Optional[Callable[[Peer, int, str], Any]]
    """``on_invoke(peer, session, event)``."""
    on_chunk: Optional[Callable[[Peer, int, _ChunkData], Any]]
    """``on_chunk(peer, session, data)``."""
    on_choke: Optional[Callable[[Peer, int], Any]]
    """``on_choke(peer, session)``."""
    on_error: Optional[Callable[[Peer, int, Optional[int], int, Optional[str]], Any]]
    """``on_error(peer, session, category, code, message)``."""
    on_frame: Optional[Callable[[Peer, int, int, List[Any]], Any]]
    """``on_frame(peer, session, type_id, args)``."""
    on_drain: Optional[Callable[[Peer], Any]]
    """``on_drain(peer)``: its replay buffer has room again."""

    @property
    def peers(self) -> List[Peer]:
        """The peers it remembers."""
    def close(self) -> None:
        """Stops listening and forgets every peer."""
    @property
    def address(self) -> Union[Tuple[str, int], str]:
        """``(host, port)`` or the path."""
    @property
    def port(self) -> Optional[int]:
        """The TCP port, or None."""
    @property
    def endpoint(self) -> str:
        """``host:port`` or ``unix:PATH``."""


# ---------------------------------------------------------------------------
# Cocaine services.

#: A msgpack value as Python: None, bool, int, float, str, bytes, list/tuple, dict.
_Value = Any
#: An endpoint: ``"host:port"``, ``"[v6]:port"``, ``"unix:PATH"`` or ``(host, port)``.
_EndpointArg = Union[str, Tuple[str, int]]
#: An endpoint as reported: ``(host, port)`` for TCP, ``"unix:PATH"`` otherwise.
_Address = Union[Tuple[str, int], str]
#: A method graph: ``{id: (name, tx, rx)}``, protocols in their wire form.
_Graph = Dict[int, Tuple[str, Any, Any]]
_Level = Union[Literal["debug", "info", "warning", "warn", "error"], int]
_Attributes = Optional[Union[Mapping[str, _Value], Iterable[Tuple[str, _Value]]]]

#: Handler threads at most (calls beyond wait for a free one).
MAX_HANDLER_THREADS: int
#: Calls waiting for a handler thread at most (more are answered ``error([7, 7], ...)`` at once).
MAX_QUEUED_CALLS: int

@final
class Locator:
    """A Locator to ask: ``Locator()`` is ``localhost:10053``; several
    endpoints are tried in order until one connects (failover).
    ``connect_timeout`` bounds each connection attempt, ``request_timeout``
    the wait for the Locator's answers (None: no limit)."""

    def __new__(
        cls,
        endpoints: Optional[Union[_EndpointArg, Iterable[_EndpointArg]]] = None,
        *,
        connect_timeout: float = 5.0,
        request_timeout: Optional[float] = 30.0,
    ) -> Locator: ...
    @property
    def endpoints(self) -> List[str]:
        """The endpoints, in the order they are tried (``"host:port"``)."""
    def resolve(self, name: str, *, timeout: Optional[float] = None) -> Resolved:
        """Resolves the service ``name`` (GIL released). Raises
        :class:`NotFound` when the Locator does not have it online,
        :class:`ConnectionError` when no endpoint answers, :class:`Timeout`."""
    def service(self, name: str) -> Service:
        """A client for the service ``name`` (resolved and connected on its
        first call, again after a disconnection). Does not block."""

@final
class Resolved:
    """What the Locator says about a service; ``str()`` prints it with its methods."""

    @property
    def name(self) -> str:
        """The service name."""
    @property
    def endpoints(self) -> List[_Address]:
        """Where it listens, in the Locator's order."""
    @property
    def version(self) -> int:
        """Its protocol version."""
    @property
    def graph(self) -> _Graph:
        """``{id: (name, tx, rx)}``: tx/rx protocols in wire form (``{}``
        terminal, ``None`` recursive, ``{id: [message, next]}``)."""
    @property
    def methods(self) -> List[str]:
        """The method names, by id."""

@final
class Service:
    """A client for one service (from :meth:`Locator.service`); connects on
    the first call, reconnects on the call after a disconnection."""

    @property
    def name(self) -> str:
        """The service name."""
    @property
    def state(self) -> Literal["closed", "connecting", "connected", "error"]:
        """Where it is in its life."""
    @property
    def info(self) -> Optional[Resolved]:
        """What the last resolve said, or None before the first connection."""
    def connect(self, *, timeout: Optional[float] = None) -> None:
        """Resolves and connects unless connected (GIL released)."""
    def call(self, method: str, *args: _Value, timeout: Optional[float] = None) -> Call:
        """Calls ``method`` with ``args``; connects first if needed (GIL
        released, ``timeout`` bounds that part). Raises
        :class:`UnknownMethod` for a method the graph lacks."""
    def close(self) -> None:
        """Closes the connection: calls in progress fail with
        :class:`Disconnected`; the next call connects again."""

@final
class Reply:
    """One reply of a call; unpacks as ``name, args = reply``."""

    @property
    def name(self) -> str:
        """``"value"``, ``"write"``, ``"close"``, ... (the method's protocol)."""
    @property
    def args(self) -> List[_Value]:
        """Its arguments."""
    @property
    def last(self) -> bool:
        """Whether it ended the call."""
    def __iter__(self) -> Iterator[Any]: ...

@final
class Call:
    """A call in progress: iterate for its replies (an ``error`` reply is
    raised as :class:`ServiceError`, the connection's end as
    :class:`Disconnected`), or take ``value()``/``collect()``. Waiting
    releases the GIL."""

    @property
    def channel_id(self) -> int:
        """The channel id of the call."""
    def next(self, *, timeout: Optional[float] = None) -> Optional[Reply]:
        """The next reply, or None once the call has ended. :class:`Timeout`
        after ``timeout`` seconds leaves the call usable."""
    def __iter__(self) -> Iterator[Reply]: ...
    def __next__(self) -> Reply: ...
    def value(self, *, timeout: Optional[float] = None) -> Any:
        """A primitive method's result: None (no arguments), the argument,
        or a tuple of several. Raises :class:`ServiceError` for an ``error``
        reply; after :class:`Timeout` the call stays usable."""
    def collect(self, *, timeout: Optional[float] = None) -> List[Reply]:
        """Every reply to the end (the ``write`` replies and the ``close``);
        :class:`ServiceError` if it ends with an error. After
        :class:`Timeout` the replies taken so far come again first."""
    def send(self, name: str, *args: _Value) -> None:
        """Sends message ``name`` of the method's tx protocol (e.g. ``write``,
        ``close`` of ``echo.relay``). Does not block."""

@final
class Logger:
    """A client of the ``logging`` service; messages carry ``source`` and
    are not sent below the service's verbosity. Methods return whether the
    message was sent."""

    def __new__(cls, locator: Locator, source: str, *, service: str = "logging") -> Logger: ...
    @property
    def source(self) -> str:
        """The source every message carries."""
    def verbosity(self, *, timeout: Optional[float] = None) -> int:
        """The service's verbosity (0 debug … 3 error)."""
    def emit(self, level: _Level, message: str, attributes: _Attributes = None, *, timeout: Optional[float] = None) -> bool:
        """Sends ``message`` at ``level`` unless below the verbosity."""
    def debug(self, message: str, attributes: _Attributes = None, *, timeout: Optional[float] = None) -> bool:
        """``emit("debug", ...)``."""
    def info(self, message: str, attributes: _Attributes = None, *, timeout: Optional[float] = None) -> bool:
        """``emit("info", ...)``."""
    def warning(self, message: str, attributes: _Attributes = None, *, timeout: Optional[float] = None) -> bool:
        """``emit("warning", ...)``."""
    def error(self, message: str, attributes: _Attributes = None, *, timeout: Optional[float] = None) -> bool:
        """``emit("error", ...)``."""

_F = TypeVar("_F", bound=Callable[..., Any])

@final
class ServiceDef:
    """A service to provide, its methods defined by Python functions
    (``@svc.primitive("name")``, ``@svc.streaming("name")``). A primitive
    handler's return value is the ``value`` (None: no arguments, a tuple:
    its items, else one argument); a streaming handler gets a
    :class:`Responder` first. Raising :class:`ServiceError` answers that
    error, any other exception ``error([7, 7], "Type: text")``. Handlers
    run with the GIL on sluice's handler threads and may make blocking
    sluice calls."""

    def __new__(cls, name: str, version: int = 1) -> ServiceDef: ...
    @property
    def name(self) -> str:
        """The service name."""
    @property
    def version(self) -> int:
        """The protocol version."""
    @property
    def methods(self) -> List[str]:
        """The method names, by id."""
    @property
    def graph(self) -> _Graph:
        """The method graph, as :attr:`Resolved.graph`."""
    @overload
    def primitive(self, name: str, handler: None = None) -> Callable[[_F], _F]:
        """A decorator adding a primitive method."""
    @overload
    def primitive(self, name: str, handler: _F) -> _F:
        """Adds a primitive method: ``handler(*args)`` returns the result."""
    @overload
    def streaming(self, name: str, handler: None = None) -> Callable[[_F], _F]:
        """A decorator adding a streaming method."""
    @overload
    def streaming(self, name: str, handler: _F) -> _F:
        """Adds a streaming method: ``handler(responder, *args)``."""

@final
class Responder:
    """Answers one call of a streaming method: ``write`` any number of
    times then ``close``, or ``error``. May be kept and answered later from
    any thread; dropped unanswered it sends ``error([7, 7], ...)``."""

    @property
    def method(self) -> str:
        """The method called."""
    @property
    def done(self) -> bool:
        """Whether the answer is complete."""
    def write(self, *args: _Value) -> None:
        """One piece of the stream."""
    def close(self) -> None:
        """The end of the stream."""
    def value(self, *args: _Value) -> None:
        """The result, for a primitive protocol."""
    def error(self, category: Optional[int], code: int, message: str = "") -> None:
        """``error([category, code], message)``: ends the answer."""
    def send(self, name: str, *args: _Value) -> None:
        """The message ``name`` of the method's rx protocol."""

def attach(locator: Locator, service: ServiceDef, *, timeout: Optional[float] = None) -> Attached:
    """Attaches ``service`` to the Locator: it relays every call of it over
    this program's own connection. Blocks until accepted (GIL released)."""

@final
class Attached:
    """An attached service: online while this lives and its connection is up."""

    @property
    def name(self) -> str:
        """The service name."""
    @property
    def endpoints(self) -> List[_Address]:
        """Where the Locator lets other clients reach it."""
    @property
    def live(self) -> bool:
        """Whether the Locator connection is up."""
    def detach(self) -> None:
        """Takes the service offline and closes the connection (idempotent)."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...

def host(service: ServiceDef, endpoint: Optional[_EndpointArg] = None) -> Hosted:
    """Serves ``service`` on ``endpoint`` (default ``127.0.0.1:0``, a free port)."""

@final
class Hosted:
    """A service listening on its own endpoint."""

    @property
    def name(self) -> str:
        """The service name."""
    @property
    def address(self) -> Union[Tuple[str, int], str]:
        """Where it listens: ``(host, port)`` with the actual port, or the path of a Unix socket."""
    @property
    def endpoints(self) -> List[_Address]:
        """The endpoints announced for it."""
    @property
    def connections(self) -> int:
        """How many callers are connected."""
    def publish(self, locator: Locator, *, timeout: Optional[float] = None) -> Publication:
        """Announces it to a Locator while the :class:`Publication` lives."""
    def close(self) -> None:
        """Stops listening and closes the callers' connections."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...

@final
class Publication:
    """A hosted service announced to a Locator."""

    @property
    def name(self) -> str:
        """The name published."""
    @property
    def live(self) -> bool:
        """Whether the Locator connection is up."""
    def discard(self) -> None:
        """Takes the service offline (idempotent)."""

@final
class Entry:
    """A service the registry knows."""

    @property
    def name(self) -> str:
        """The service name."""
    @property
    def endpoints(self) -> List[_Address]:
        """Where callers reach it."""
    @property
    def version(self) -> int:
        """Its protocol version."""
    @property
    def graph(self) -> _Graph:
        """Its method graph."""
    @property
    def online(self) -> bool:
        """Whether it can be resolved now."""
    @property
    def origin(self) -> str:
        """``"local"``, ``"published by ADDR"`` or ``"attached by ADDR"``."""

@final
class Registry:
    """The services a :class:`LocatorServer` announces."""

    def list(self) -> List[Entry]:
        """Every service known, online or not, by name."""
    def get(self, name: str) -> Optional[Entry]:
        """The service ``name`` (online or not), or None."""
    def on_change(self, callback: Callable[[Entry], Any]) -> Callable[[Entry], Any]:
        """``callback(entry)`` whenever a service comes online or goes
        offline, in order, on sluice's notification thread."""
    def invoke(self, name: str, method: str, *args: _Value) -> Call:
        """Calls ``method`` of a service a client attached, over that
        client's connection (remote invocation)."""
    def add(self, hosted: Hosted) -> None:
        """Registers a hosted service of this process, online for good."""
    def __len__(self) -> int: ...

@final
class LocatorServer:
    """A Locator listening for clients (default ``127.0.0.1:0``), answering
    from its :attr:`registry`."""

    def __new__(cls, endpoint: Optional[_EndpointArg] = None) -> LocatorServer: ...
    @property
    def endpoint(self) -> str:
        """``"host:port"`` (the actual port)."""
    @property
    def address(self) -> Union[Tuple[str, int], str]:
        """``(host, port)`` with the actual port, or the path of a Unix socket."""
    @property
    def port(self) -> Optional[int]:
        """The TCP port, or None."""
    @property
    def uuid(self) -> str:
        """The uuid it answers ``uuid`` with."""
    @property
    def connections(self) -> int:
        """How many clients are connected."""
    @property
    def registry(self) -> Registry:
        """Its registry."""
    def locator(self, *, connect_timeout: float = 5.0, request_timeout: Optional[float] = 30.0) -> Locator:
        """A :class:`Locator` client for this server."""
    def add_demo(
        self,
        names: Optional[List[str]] = None,
        *,
        verbosity: Optional[_Level] = None,
        on_log: Optional[Callable[[str, str, str, Dict[str, Any]], Any]] = None,
    ) -> List[str]:
        """Hosts and registers the demo services ``echo``, ``math``, ``kv``,
        ``logging`` (``on_log(level, source, message, attributes)`` for the
        messages at or above ``verbosity``)."""
    def close(self) -> None:
        """Stops listening, closes the clients' connections and the demo services."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...
