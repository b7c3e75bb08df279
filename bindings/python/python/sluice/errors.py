"""The exceptions sluice raises: every one derives from :class:`Error`.

==================  =====================================  ==========================
class               raised when                            also an instance of
==================  =====================================  ==========================
``Error``           base; misuse (re-entrant dispatch...)  ``Exception``
``ConnectionError`` a connection failed or ended (.errno)  ``builtins.ConnectionError``
``ProtocolError``   the peer sent a bad or oversized       ``OSError``
                    frame (.errno EBADMSG 74 / EMSGSIZE 90)
``WouldBlock``      a send past the high watermark         ``BlockingIOError``
                    (.errno EAGAIN): wait for ``on_drain``
``Closed``          a send on a closed/ended channel,      ``Error``
                    ``accept`` on a closed server, a
                    stream send after its close/error
``BadArguments``    worker arguments (``--uuid``...) that  ``ValueError``
                    cannot be used
``ServiceError``    a service answered ``error``:          ``Error``
                    ``.category``, ``.code``, ``.message``
``NotFound``        the Locator does not have the service  ``LookupError``
                    online (``.name``)
``UnknownMethod``   the service has no such method         ``LookupError``
                    (``.service``, ``.method``)
``Disconnected``    a service connection ended during a    ``ConnectionError``
                    call (``.errno``)
``Timeout``         a blocking service call ran out of     ``TimeoutError``
                    time (``.errno`` ETIMEDOUT)
==================  =====================================  ==========================

A Locator or service that cannot be reached raises :class:`ConnectionError`
with the errno of the last endpoint tried.

Callbacks report connection failures as ``on_socket_error(errno)``; the
asyncio API raises :func:`from_errno` of that errno instead.
"""

from __future__ import annotations

import builtins

from ._sluice import errno_name, errno_text

__all__ = [
    "Error",
    "ConnectionError",
    "ProtocolError",
    "WouldBlock",
    "Closed",
    "BadArguments",
    "ServiceError",
    "NotFound",
    "UnknownMethod",
    "Disconnected",
    "Timeout",
    "from_errno",
    "errno_name",
    "errno_text",
]


class Error(Exception):
    """Base class of every exception sluice raises. ``errno`` is the
    error number where there is one (None otherwise)."""

    def __getattr__(self, name: str) -> object:
        # OSError subclasses have a real ``errno``; the others answer None.
        if name == "errno":
            return None
        raise AttributeError(name)


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001 - deliberately mirrors the builtin
    """A connection failed or ended; ``errno`` says why (Linux numbering,
    PROTOCOL.md §8.3): ECONNREFUSED 111, ENOENT 2, EACCES 13, ECONNRESET
    104, EPIPE 32, ESHUTDOWN 108 (the peer closed), ETIMEDOUT 110, ENOTFOUND 6
    (a host name that does not resolve)."""


class ProtocolError(Error, builtins.OSError):
    """The peer sent bytes that are not the protocol: ``errno`` EBADMSG 74
    (bad framing) or EMSGSIZE 90 (a frame larger than ``max_frame_size``).
    The connection is closed."""


class WouldBlock(Error, builtins.BlockingIOError):
    """The send queue is at its high watermark: nothing was queued. Retry
    after ``on_drain`` (or ``await channel.drain()``). ``errno`` is EAGAIN."""


class Closed(Error):
    """The channel is closed or its connection has ended (or the server is
    closed); for a role's stream: this side has ended it (close or error
    sent), or the session is not open."""


class BadArguments(Error, builtins.ValueError):
    """Worker arguments (``--app --uuid --endpoint --locator --protocol``)
    that cannot be used: a flag without a value, no ``--uuid`` or
    ``--endpoint``, an unknown ``--protocol``."""


class ServiceError(Error):
    """A service answered ``error([category, code], message)``.

    Raise it from a handler of a :class:`sluice.ServiceDef` to answer the
    caller with exactly that error; any other exception a handler raises
    reaches the caller as ``ServiceError(7, 7, "TypeName: text")`` (the
    dispatch category's "uncaught error")."""

    def __init__(self, category: "int | None", code: int, message: str = "") -> None:
        self.category = category
        self.code = code
        self.message = message
        super().__init__(category, code, message)

    def __str__(self) -> str:
        head = f"[{self.code}]" if self.category is None else f"[{self.category}, {self.code}]"
        return f"{head} {self.message}" if self.message else head


class NotFound(Error, builtins.LookupError):
    """The Locator does not know the service ``name`` or it is offline."""

    def __init__(self, message: str, name: str = "") -> None:
        self.name = name
        super().__init__(message)


class UnknownMethod(Error, builtins.LookupError):
    """The service's method graph has no method of that name."""

    def __init__(self, message: str, service: str = "", method: str = "") -> None:
        self.service = service
        self.method = method
        super().__init__(message)


class Disconnected(ConnectionError):
    """The connection to a service ended while a call was open; ``errno``
    says how (ECONNRESET, ESHUTDOWN, ...)."""


class Timeout(Error, builtins.TimeoutError):
    """Nothing came within the ``timeout`` a blocking call was given
    (``errno`` ETIMEDOUT). A call that timed out stays usable."""


def from_errno(errno: int) -> Error:
    """The exception for a connection that ended with ``errno`` (Linux
    numbering): :class:`ProtocolError` for EBADMSG and EMSGSIZE,
    :class:`ConnectionError` otherwise (``errno`` and ``strerror`` set;
    ``strerror`` is :func:`errno_text`, the core's text for the value)."""
    message = errno_text(errno)
    if errno_name(errno) in ("EBADMSG", "EMSGSIZE"):
        return ProtocolError(errno, message)
    return ConnectionError(errno, message)
