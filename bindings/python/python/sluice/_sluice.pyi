"""Type stubs of the native module ``sluice._sluice`` (re-exported by ``sluice``)."""

import os
import sys
from types import ModuleType, TracebackType
from typing import Any, Callable, Iterable, Iterator, List, Literal, Optional, Tuple, Type, Union, final

from typing_extensions import Buffer, Self

from .events import Event

__all__ = ['__version__', 'DEFAULT_COPY_THRESHOLD', 'DEFAULT_BATCH', 'Channel', 'Server', 'events', 'Payload', 'poll', 'set_io_threads']
__version__: str
#: Chunks of at least this many bytes arrive as a zero-copy :class:`Payload`.
DEFAULT_COPY_THRESHOLD: int
#: Events run per ``dispatch()`` call by default.
DEFAULT_BATCH: int
#: The event classes (see :mod:`sluice.events`).
events: ModuleType

_PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
_DialectArg = Union[Literal[0, 1, "v0", "v1", "0", "1"], int, str]
_RoleArg = Optional[Literal["worker", "engine"]]
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

@final
class Channel:
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
class Server:
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

def poll(*objects: Union[Channel, Server], timeout: Optional[float] = None) -> int:
    """Waits until one of ``objects`` has events, dispatches each that has;
    returns the number of events run."""

def set_io_threads(n: int) -> bool:
    """Sets the number of I/O threads (before the first channel); returns whether it took effect."""
