"""Type stubs of :mod:`sluice.events` (the classes live in the native module)."""

from typing import Any, List, Optional, Tuple, Union, final

from typing_extensions import Self

from ._sluice import Payload

__all__ = ["Event", "Connected", "SocketError", "Drain", "Handshake", "Heartbeat", "Terminate", "Invoke", "Chunk", "Choke", "Error", "Frame"]

@final
class Connected:
    """The connection is established (the first event of a channel)."""
    __match_args__: Tuple[()]
    def __new__(cls) -> Self: ...

@final
class SocketError:
    """The connection ended with ``errno``: the last event of a channel."""
    __match_args__: Tuple[str]
    errno: int
    def __new__(cls, errno: int) -> Self: ...

@final
class Drain:
    """After ``WouldBlock``: the send queue is down to the low watermark."""
    __match_args__: Tuple[()]
    def __new__(cls) -> Self: ...

@final
class Handshake:
    """Engine role: the worker's handshake."""
    __match_args__: Tuple[str]
    uuid: str
    def __new__(cls, uuid: str) -> Self: ...

@final
class Heartbeat:
    """A heartbeat (worker role: also the engine's reply)."""
    __match_args__: Tuple[()]
    def __new__(cls) -> Self: ...

@final
class Terminate:
    """``terminate(code, reason)`` on the control session."""
    __match_args__: Tuple[str, str, str]
    session: int
    code: int
    reason: str
    def __new__(cls, session: int, code: int, reason: str) -> Self: ...

@final
class Invoke:
    """Worker role: the engine opens ``session`` for ``event``."""
    __match_args__: Tuple[str, str]
    session: int
    event: str
    def __new__(cls, session: int, event: str) -> Self: ...

@final
class Chunk:
    """A chunk of ``session``'s data: bytes, or a Payload from ``copy_threshold``."""
    __match_args__: Tuple[str, str]
    session: int
    data: Union[bytes, Payload]
    def __new__(cls, session: int, data: Union[bytes, Payload]) -> Self: ...

@final
class Choke:
    """The peer's direction of ``session`` ends."""
    __match_args__: Tuple[str]
    session: int
    def __new__(cls, session: int) -> Self: ...

@final
class Error:
    """``session`` failed: category (None in v0), code, message (None if absent)."""
    __match_args__: Tuple[str, str, str, str]
    session: int
    category: Optional[int]
    code: int
    message: Optional[str]
    def __new__(cls, session: int, category: Optional[int], code: int, message: Optional[str]) -> Self: ...

@final
class Frame:
    """A frame that is not a worker-protocol message, with decoded ``args``."""
    __match_args__: Tuple[str, str, str]
    session: int
    type_id: int
    args: List[Any]
    def __new__(cls, session: int, type_id: int, args: List[Any]) -> Self: ...

#: Any event.
Event = Union[Connected, SocketError, Drain, Handshake, Heartbeat, Terminate, Invoke, Chunk, Choke, Error, Frame]
