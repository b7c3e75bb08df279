"""Helpers shared by the tests: event recorders, a pump that dispatches
channels until a condition holds, raw socket peers, engine/worker pairs."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from typing import Callable, List, Optional, Tuple

import pytest

import sluice

CALLBACKS = (
    "on_connect",
    "on_socket_error",
    "on_handshake",
    "on_heartbeat",
    "on_terminate",
    "on_invoke",
    "on_chunk",
    "on_choke",
    "on_error",
    "on_frame",
    "on_drain",
)


class Recorder:
    """Records every callback of a channel as a tuple ``(name, *args)``."""

    def __init__(self) -> None:
        self.log: List[tuple] = []

    def attach(self, ch: sluice.Channel) -> "Recorder":
        for name in CALLBACKS:
            setattr(ch, name, self._make(name[3:]))
        return self

    def kwargs(self) -> dict:
        return {name: self._make(name[3:]) for name in CALLBACKS}

    def _make(self, name: str) -> Callable[..., None]:
        def cb(*args: object) -> None:
            self.log.append((name,) + args)

        return cb

    def names(self) -> List[str]:
        return [e[0] for e in self.log]

    def take(self) -> List[tuple]:
        out, self.log = self.log, []
        return out


def pump(*objs: object, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Dispatches ``objs`` until ``until()`` holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        sluice.poll(*objs, timeout=0.05)


def settle(*objs: object, seconds: float = 0.2) -> None:
    """Dispatches ``objs`` for a while (to show nothing more comes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sluice.poll(*objs, timeout=0.02)


@pytest.fixture
def sock_path():
    d = tempfile.mkdtemp(prefix="sluice-py-")
    path = os.path.join(d, "s.sock")
    yield path
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.rmdir(d)


class RawPeer:
    """A plain TCP listener whose one connection the test drives by hand."""

    def __init__(self) -> None:
        self.lst = socket.socket()
        self.lst.bind(("127.0.0.1", 0))
        self.lst.listen(4)
        self.port = self.lst.getsockname()[1]
        self.conn: Optional[socket.socket] = None

    def accept(self) -> socket.socket:
        self.lst.settimeout(10)
        self.conn, _ = self.lst.accept()
        self.conn.settimeout(10)
        return self.conn

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def recv_exactly(self, n: int) -> bytes:
        assert self.conn is not None
        out = b""
        while len(out) < n:
            d = self.conn.recv(n - len(out))
            if not d:
                break
            out += d
        return out

    def reset(self) -> None:
        """Closes with an RST (SO_LINGER 0)."""
        assert self.conn is not None
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.lst.close()


@pytest.fixture
def raw_peer():
    p = RawPeer()
    yield p
    p.close()


def endpoint_args(transport: str, path: str) -> Tuple:
    return (path,) if transport == "unix" else ("127.0.0.1", 0)


def engine_and_worker(transport: str, path: str, dialect: str) -> Tuple[sluice.Server, sluice.Channel, Recorder, sluice.Channel, Recorder]:
    """A sluice server (engine role) and a sluice worker connected to it;
    returns (server, worker, worker events, engine channel, engine events)."""
    server = sluice.Server(*endpoint_args(transport, path), dialect=dialect)
    target = (path,) if transport == "unix" else ("127.0.0.1", server.port)
    w_rec = Recorder()
    worker = sluice.Channel(*target, dialect=dialect, **w_rec.kwargs())
    engine = server.accept(timeout=10)
    e_rec = Recorder().attach(engine)
    return server, worker, w_rec, engine, e_rec
