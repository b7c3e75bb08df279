"""The asyncio API: channels and servers on the event loop.

Each channel's delivery descriptor is watched with ``loop.add_reader`` (no
thread per channel, nothing waits for the GIL on an I/O thread); when it is
readable the reader takes every waiting event in one batch::

    import sluice.aio
    from sluice.events import Invoke, Chunk, Choke, SocketError

    async def worker(path, uuid):
        async with await sluice.aio.connect(path, dialect="v1") as ch:
            ch.send_handshake(uuid)
            async for event in ch:
                match event:
                    case Invoke(session, name): ...
                    case Chunk(session, data):
                        await ch.write(session, data)   # send_chunk, waiting out backpressure
                    case Choke(session):
                        ch.send_choke(session)

Iteration ends after the channel's last event, ``SocketError(errno)``
(which it yields), or when the channel is closed. Everything here must be
used from the loop's thread.

The protocol roles (:class:`sluice.Worker`, :class:`sluice.Engine`,
:class:`sluice.Session`, :class:`sluice.ResumeServer`) keep their ``on_*``
callbacks; :func:`run` runs them on the loop::

    worker = sluice.Worker.from_args(sys.argv[1:], on_chunk=..., on_terminate=...)
    await sluice.aio.run(worker)     # returns once worker.done
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any, AsyncIterator, Deque, Dict, Iterable, List, Optional, Union

from . import _sluice, errors
from .events import Drain, Event, SocketError

__all__ = ["Channel", "Server", "connect", "serve", "run"]

_PathOrHost = Union[str, bytes, "os.PathLike[str]"]


def _no_callbacks(kwargs: Dict[str, Any]) -> None:
    bad = [k for k in kwargs if k.startswith("on_")]
    if bad:
        raise TypeError(f"the asyncio API delivers events by iteration, not callbacks: {', '.join(sorted(bad))}")


class Channel:
    """A :class:`sluice.Channel` driven by the event loop.

    ``async for event in channel`` yields :mod:`sluice.events` objects one
    by one; :meth:`next_batch` returns every waiting event at once (faster
    for many small messages). Sends are the channel's own (``send_chunk``,
    ``send_choke``...) and raise :class:`sluice.WouldBlock` past the high
    watermark: ``await drain()`` then, or use :meth:`write`.

    Reading follows consumption: once 4 batches of events wait unconsumed,
    the channel stops taking more until they are consumed, and the core
    pauses reading the socket once ``max_pending`` bytes wait; memory stays
    bounded whatever the peer sends.
    """

    def __init__(self, channel: _sluice.Channel, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.channel = channel
        """The underlying :class:`sluice.Channel` (its ``on_*`` callbacks are not used)."""
        self._loop = loop or asyncio.get_running_loop()
        self._events: Deque[Event] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._drainers: List[asyncio.Future[None]] = []
        self._error: Optional[BaseException] = None
        self._ended = False  # the last event (SocketError) was taken, or closed
        # Backpressure: past _high events taken and not yet consumed, stop
        # taking more (the core then pauses reading at its max_pending).
        self._high = 4 * channel.batch
        self._low = channel.batch
        self._paused = False
        self._fd = channel.fileno()
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True

    # -- delivery -------------------------------------------------------

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _pause(self) -> None:
        if self._reading:
            self._stop_reading()
            self._paused = True

    def _resume(self) -> None:
        if self._paused and not self._ended:
            self._paused = False
            self._reading = True
            self._loop.add_reader(self._fd, self._on_readable)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _on_readable(self) -> None:
        try:
            batch = self.channel.events()
        except BaseException as e:  # handed to the awaiting task, never lost
            self._error = e
            self._wake()
            return
        for ev in batch:
            if isinstance(ev, Drain):
                self._release_drainers(None)
            elif isinstance(ev, SocketError):
                self._ended = True
                self._stop_reading()
                self._release_drainers(errors.from_errno(ev.errno))
        self._events.extend(batch)
        if len(self._events) >= self._high:
            self._pause()
        if self.channel.closed and not self._events and not self.channel.pending:
            # Closed with nothing left: nothing more will come.
            self._ended = True
            self._stop_reading()
        self._wake()

    def _release_drainers(self, exc: Optional[BaseException]) -> None:
        drainers, self._drainers = self._drainers, []
        for f in drainers:
            if not f.done():
                if exc is None:
                    f.set_result(None)
                else:
                    f.set_exception(exc)

    async def _wait(self) -> None:
        while not self._events:
            if self._error is not None:
                e, self._error = self._error, None
                raise e
            if self._ended or self.channel.closed and not self._reading and not self._paused:
                return
            self._resume()
            if self.channel.pending:
                # Left by a failed conversion: the descriptor does not signal them.
                self._on_readable()
                continue
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        """The next event; the iteration ends after ``SocketError`` or
        :meth:`close`."""
        if not self._events:
            await self._wait()
            if not self._events:
                raise StopAsyncIteration
        event = self._events.popleft()
        if self._paused and len(self._events) <= self._low:
            self._resume()
        return event

    async def next_batch(self) -> List[Event]:
        """Every event waiting (at least one), in order; an empty list once
        the channel has ended and everything was taken."""
        if not self._events:
            await self._wait()
        batch = list(self._events)
        self._events.clear()
        self._resume()
        return batch

    # -- flow control ------------------------------------------------------

    async def drain(self) -> None:
        """Returns once sends are accepted: at once while the send queue is
        under ``high_watermark``; otherwise when it is down to
        ``low_watermark``. Raises :class:`sluice.ConnectionError` if the
        connection ends first and :class:`sluice.Closed` after ``close()``."""
        if self.channel._arm_drain():
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._drainers.append(fut)
        await fut

    async def write(self, session: int, data: Any) -> None:
        """``send_chunk(session, data)``, waiting with :meth:`drain` while
        the queue is full."""
        while True:
            try:
                self.channel.send_chunk(session, data)
                return
            except errors.WouldBlock:
                await self.drain()

    # -- sends (the channel's own; see sluice.Channel) ----------------------

    def send(self, data: Any) -> None:
        """Queues pre-encoded frames (:meth:`sluice.Channel.send`)."""
        self.channel.send(data)

    def send_chunk(self, session: int, data: Any) -> None:
        """Queues a chunk (:meth:`sluice.Channel.send_chunk`)."""
        self.channel.send_chunk(session, data)

    def send_chunks(self, session: int, chunks: Iterable[Any]) -> int:
        """Queues several chunks (:meth:`sluice.Channel.send_chunks`)."""
        return self.channel.send_chunks(session, chunks)

    def send_choke(self, session: int) -> None:
        """Ends this side of ``session`` (:meth:`sluice.Channel.send_choke`)."""
        self.channel.send_choke(session)

    def send_error(self, session: int, code: int, message: Optional[Union[str, bytes]] = None, category: Optional[int] = None) -> None:
        """Fails ``session`` (:meth:`sluice.Channel.send_error`)."""
        self.channel.send_error(session, code, message, category)

    def send_terminate(self, code: int, reason: Union[str, bytes]) -> None:
        """Sends terminate (:meth:`sluice.Channel.send_terminate`)."""
        self.channel.send_terminate(code, reason)

    def send_heartbeat(self) -> None:
        """Sends a heartbeat (:meth:`sluice.Channel.send_heartbeat`)."""
        self.channel.send_heartbeat()

    def send_handshake(self, uuid: Union[str, bytes]) -> None:
        """Sends the worker's handshake (:meth:`sluice.Channel.send_handshake`)."""
        self.channel.send_handshake(uuid)

    def send_invoke(self, event: Union[str, bytes], session: Optional[int] = None) -> int:
        """Opens a session (:meth:`sluice.Channel.send_invoke`); returns its id."""
        return self.channel.send_invoke(event, session)

    def send_frame(self, session: int, type_id: int, args: Optional[Iterable[Any]] = None) -> None:
        """Queues a generic frame (:meth:`sluice.Channel.send_frame`)."""
        self.channel.send_frame(session, type_id, args)

    def next_session(self) -> int:
        """The id for a new session opened by this side."""
        return self.channel.next_session()

    # -- closing ---------------------------------------------------------------

    def close(self) -> None:
        """Closes gracefully (:meth:`sluice.Channel.close`): iteration ends,
        waiting ``drain()`` calls raise :class:`sluice.Closed`."""
        self._stop_reading()
        self.channel.close()
        self._ended = True
        self._events.clear()
        self._release_drainers(errors.Closed("the channel is closed"))
        self._wake()

    @property
    def closed(self) -> bool:
        """Whether the channel is closed or its connection has ended."""
        return self.channel.closed

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sluice.aio.Channel {self.channel!r}>"


async def connect(host: _PathOrHost, port: Optional[int] = None, **options: Any) -> Channel:
    """Connects (``connect(path)`` for a Unix socket, ``connect(host,
    port)`` for TCP) and returns the :class:`Channel` once the connection
    is up. ``options`` are :class:`sluice.Channel`'s keywords (``dialect``,
    ``role``, watermarks...; no callbacks). Raises
    :class:`sluice.ConnectionError` (``errno`` ECONNREFUSED, ENOENT,
    ETIMEDOUT...) when it fails."""
    _no_callbacks(options)
    loop = asyncio.get_running_loop()
    ch = Channel(_sluice.Channel(host, port, **options), loop)
    try:
        first = await ch.__anext__()
    except StopAsyncIteration:
        raise errors.Closed("the channel was closed while connecting") from None
    except BaseException:
        ch.close()
        raise
    if isinstance(first, SocketError):
        ch.close()
        raise errors.from_errno(first.errno)
    return ch


class Server:
    """A :class:`sluice.Server` driven by the event loop: ``await
    server.accept()`` or ``async for channel in server`` gives
    :class:`Channel` objects whose first event is ``Connected``."""

    def __init__(self, server: _sluice.Server, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.server = server
        """The underlying :class:`sluice.Server`."""
        self._loop = loop or asyncio.get_running_loop()
        self._ready: Deque[Channel] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._fd = server.fileno()
        self._loop.add_reader(self._fd, self._on_readable)
        self._closed = False

    def _on_readable(self) -> None:
        self.server.dispatch()
        while True:
            try:
                ch = self.server.accept(0)
            except TimeoutError:
                break
            self._ready.append(Channel(ch, self._loop))
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def accept(self) -> Channel:
        """The next accepted channel. Raises :class:`sluice.Closed` once the
        server is closed."""
        while not self._ready:
            if self._closed:
                raise errors.Closed("the server is closed")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._ready.popleft()

    def __aiter__(self) -> AsyncIterator[Channel]:
        return self

    async def __anext__(self) -> Channel:
        """The next accepted channel; the iteration ends when the server is closed."""
        try:
            return await self.accept()
        except errors.Closed:
            raise StopAsyncIteration from None

    @property
    def address(self) -> Any:
        """As :attr:`sluice.Server.address`."""
        return self.server.address

    @property
    def port(self) -> Optional[int]:
        """As :attr:`sluice.Server.port`."""
        return self.server.port

    def close(self) -> None:
        """Stops listening; channels already accepted stay open."""
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._fd)
            self.server.close()
            for ch in self._ready:
                ch.close()
            self._ready.clear()
            w = self._waiter
            if w is not None and not w.done():
                w.set_result(None)

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sluice.aio.Server {self.server!r}>"


async def serve(host: _PathOrHost, port: Optional[int] = None, **options: Any) -> Server:
    """Listens (``serve(path)`` or ``serve(host, port)``; port 0 picks one)
    and returns the :class:`Server`. ``options`` are
    :class:`sluice.Server`'s keywords (``dialect``, ``role``...; no
    ``on_accept``)."""
    _no_callbacks(options)
    return Server(_sluice.Server(host, port, **options), asyncio.get_running_loop())


#: What :func:`run` drives: an object with ``fileno()``, ``dispatch()`` and ``done``.
_Role = Union[_sluice.Worker, _sluice.Engine, _sluice.Session, _sluice.ResumeServer]


async def run(role: _Role, *, check_interval: float = 0.1) -> None:
    """Runs a role's callbacks on the running loop until it is done.

    ``role`` is a :class:`sluice.Worker`, :class:`sluice.Engine`,
    :class:`sluice.Session` or :class:`sluice.ResumeServer`. Its descriptor
    is watched with ``loop.add_reader``; when it is readable the waiting
    events are dispatched (their callbacks run on the loop's thread, where
    they may create tasks). Returns once ``role.done`` holds: the worker's
    ``on_disconnect`` ran, or ``terminate()``/``close()``/``stop()`` was
    called (from a callback or another task; checked every
    ``check_interval`` seconds as well). An exception raised by a callback
    is raised from here (the events after it stay queued). Cancelling the
    task stops watching; the role itself stays open.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    fd = role.fileno()

    def ready() -> None:
        if done.done():
            return
        try:
            # One batch; the reader is level-triggered and fires again.
            role.dispatch()
        except BaseException as e:  # handed to the awaiting task
            done.set_exception(e)
            return
        if role.done:
            done.set_result(None)

    timer: Optional[asyncio.TimerHandle] = None

    def tick() -> None:
        nonlocal timer
        ready()
        if not done.done():
            timer = loop.call_later(check_interval, tick)

    loop.add_reader(fd, ready)
    timer = loop.call_later(check_interval, tick)
    try:
        ready()
        await done
    finally:
        if timer is not None:
            timer.cancel()
        loop.remove_reader(fd)
