"""Event objects, for pull-style delivery (:meth:`sluice.Channel.events`)
and the asyncio API's ``async for event in channel``.

Each is a small immutable object that compares by value and supports
positional pattern matching::

    match event:
        case Invoke(session, name): ...
        case Chunk(session, data): ...        # bytes, or a zero-copy Payload
        case Choke(session): ...
        case Error(session, category, code, message): ...
        case SocketError(errno): ...          # the last event of a channel

Callbacks receive the same values as arguments.
"""

from __future__ import annotations

from typing import Union

from ._sluice import events as _events

Connected = _events.Connected
SocketError = _events.SocketError
Drain = _events.Drain
Handshake = _events.Handshake
Heartbeat = _events.Heartbeat
Terminate = _events.Terminate
Invoke = _events.Invoke
Chunk = _events.Chunk
Choke = _events.Choke
Error = _events.Error
Frame = _events.Frame

#: Any event.
Event = Union[Connected, SocketError, Drain, Handshake, Heartbeat, Terminate, Invoke, Chunk, Choke, Error, Frame]

__all__ = [
    "Event",
    "Connected",
    "SocketError",
    "Drain",
    "Handshake",
    "Heartbeat",
    "Terminate",
    "Invoke",
    "Chunk",
    "Choke",
    "Error",
    "Frame",
]
