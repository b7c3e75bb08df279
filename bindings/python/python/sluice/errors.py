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
==================  =====================================  ==========================

Callbacks report connection failures as ``on_socket_error(errno)``; the
asyncio API raises :func:`from_errno` of that errno instead.
"""

from __future__ import annotations

import builtins
import errno as _errno
import os

__all__ = ["Error", "ConnectionError", "ProtocolError", "WouldBlock", "Closed", "BadArguments", "from_errno"]


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
    104, EPIPE 32, ESHUTDOWN 108 (the peer closed), ETIMEDOUT 110, EBADF 9
    (unresolvable host)."""


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


_MESSAGES = {
    _errno.ESHUTDOWN: "the peer closed the connection",
    _errno.EBADMSG: "invalid frame from the peer",
    _errno.EMSGSIZE: "frame larger than max_frame_size",
    _errno.EBADF: "bad descriptor or unresolvable host",
}


def from_errno(errno: int) -> Error:
    """The exception for a connection that ended with ``errno``:
    :class:`ProtocolError` for EBADMSG and EMSGSIZE, :class:`ConnectionError`
    otherwise (``errno`` and ``strerror`` set)."""
    message = _MESSAGES.get(errno) or os.strerror(errno)
    if errno in (_errno.EBADMSG, _errno.EMSGSIZE):
        return ProtocolError(errno, message)
    return ConnectionError(errno, message)
