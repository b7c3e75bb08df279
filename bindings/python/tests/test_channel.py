"""Every message type of both dialects over real sockets, between a Python
sluice engine (sluice.Server) and a Python sluice worker (sluice.Channel),
and from raw sockets for bytes a sluice peer never sends."""

from __future__ import annotations

import errno
import gc
import time
import weakref

import pytest

import sluice
from conftest import Recorder, engine_and_worker, pump, settle

DIALECTS = ["v0", "v1"]
TRANSPORTS = ["tcp", "unix"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_worker_engine_life(dialect, transport, sock_path):
    server, worker, w, engine, e = engine_and_worker(transport, sock_path, dialect)
    control = 0 if dialect == "v0" else 1
    assert worker.dialect == engine.dialect == int(dialect[1])
    assert worker.role == "worker" and engine.role == "engine"

    # Worker → engine: handshake and heartbeat.
    worker.send_handshake("6d0b4c1e-3f5a")
    worker.send_heartbeat()
    pump(worker, engine, until=lambda: len(e.log) >= 3 and len(w.log) >= 1)
    assert w.take() == [("connect",)]
    assert e.take() == [("connect",), ("handshake", "6d0b4c1e-3f5a"), ("heartbeat",)]

    # Engine → worker: heartbeat, a session with data, in order.
    engine.send_heartbeat()
    s = engine.send_invoke("ping")
    assert s == engine.next_session() - 1 or s >= 1
    engine.send_chunk(s, b"body")
    engine.send_chunk(s, bytearray(b"second"))
    engine.send_chunk(s, memoryview(b"third!"))
    engine.send_choke(s)
    pump(worker, engine, until=lambda: len(w.log) >= 6)
    got = w.take()
    assert got == [
        ("heartbeat",),
        ("invoke", s, "ping"),
        ("chunk", s, b"body"),
        ("chunk", s, b"second"),
        ("chunk", s, b"third!"),
        ("choke", s),
    ]
    assert type(got[2][2]) is bytes

    # The answer: a large chunk arrives as a zero-copy Payload.
    big = bytes(range(256)) * 4096  # 1 MiB
    worker.send_chunk(s, big)
    worker.send_chunk(s, b"")
    worker.send_choke(s)
    pump(worker, engine, until=lambda: len(e.log) >= 3)
    got = e.take()
    assert [g[0] for g in got] == ["chunk", "chunk", "choke"]
    assert isinstance(got[0][2], sluice.Payload) and got[0][2] == big and bytes(got[0][2]) == big
    assert got[1] == ("chunk", s, b"")

    # A second session fails: error in both directions.
    s2 = engine.send_invoke("fail")
    assert s2 > s
    engine.send_error(s2, 7, "engine side error", category=3)
    pump(worker, engine, until=lambda: len(w.log) >= 2)
    if dialect == "v1":
        assert w.take() == [("invoke", s2, "fail"), ("error", s2, 3, 7, "engine side error")]
    else:
        assert w.take() == [("invoke", s2, "fail"), ("error", s2, None, 7, "engine side error")]
    worker.send_error(s2, 200, "no handler")
    if dialect == "v0":
        worker.send_choke(s2)  # v0: error then choke
    pump(worker, engine, until=lambda: len(e.log) >= (2 if dialect == "v0" else 1))
    if dialect == "v1":
        assert e.take() == [("error", s2, 42, 200, "no handler")]
    else:
        assert e.take() == [("error", s2, None, 200, "no handler"), ("choke", s2)]

    # v1: an error without a message (allowed there).
    if dialect == "v1":
        s3 = engine.send_invoke("quiet")
        engine.send_error(s3, 5)
        pump(worker, engine, until=lambda: len(w.log) >= 2)
        assert w.take() == [("invoke", s3, "quiet"), ("error", s3, 42, 5, None)]

    # Terminate both ways, then the engine closes: the worker sees ESHUTDOWN.
    engine.send_terminate(1, "the engine is shutting down")
    pump(worker, engine, until=lambda: len(w.log) >= 1)
    assert w.take() == [("terminate", control, 1, "the engine is shutting down")]
    worker.send_terminate(1, "worker shut down")
    pump(worker, engine, until=lambda: len(e.log) >= 1)
    assert e.take() == [("terminate", control, 1, "worker shut down")]
    engine.close()
    worker.run(timeout=10)
    assert w.take() == [("socket_error", errno.ESHUTDOWN)]
    settle(worker, engine)
    assert w.log == [] and e.log == [], "nothing after the socket error or after close"
    assert worker.closed and engine.closed
    with pytest.raises(sluice.Closed):
        worker.send_heartbeat()
    with pytest.raises(sluice.Closed):
        engine.send_heartbeat()
    server.close()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_on_chunks_batches_runs_in_order(dialect, sock_path):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, dialect)
    runs = []
    worker.on_chunks = lambda session, chunks: runs.append((session, list(chunks)))
    a = engine.send_invoke("a")
    b = engine.send_invoke("b")
    for i in range(100):
        engine.send_chunk(a, b"a%d" % i)
    for i in range(50):
        engine.send_chunk(b, b"b%d" % i)
    engine.send_chunk(a, b"a-last")
    engine.send_choke(a)
    engine.send_choke(b)
    pump(worker, engine, until=lambda: sum(1 for x in w.log if x[0] == "choke") == 2)
    # Order across callbacks is wire order: invokes, runs, chokes.
    flat = [(s, c) for s, cs in runs for c in cs]
    assert flat == [(a, b"a%d" % i) for i in range(100)] + [(b, b"b%d" % i) for i in range(50)] + [(a, b"a-last")]
    assert all(cs for _, cs in runs)
    assert [x for x in w.log if x[0] != "connect"] == [("invoke", a, "a"), ("invoke", b, "b"), ("choke", a), ("choke", b)]
    # on_chunk is not called while on_chunks is set.
    assert not [x for x in w.log if x[0] == "chunk"]
    worker.close()
    engine.close()
    server.close()


def test_callbacks_as_attributes_and_kwargs(raw_peer):
    def f(*a):
        pass

    ch = sluice.Channel("127.0.0.1", raw_peer.port, on_chunk=f)
    assert ch.on_chunk is f
    assert ch.on_invoke is None
    ch.on_invoke = f
    assert ch.on_invoke is f
    ch.on_invoke = None
    assert ch.on_invoke is None
    with pytest.raises(TypeError):
        ch.on_chunk = 42
    with pytest.raises(TypeError):
        sluice.Channel("127.0.0.1", raw_peer.port, on_choke="nope")
    with pytest.raises(TypeError):
        sluice.Channel("127.0.0.1", raw_peer.port, on_nothing=f)
    with pytest.raises(AttributeError):
        ch.on_chnuk = f  # typos fail loudly
    ch.close()
    assert ch.on_chunk is None, "close drops the callbacks"


@pytest.mark.parametrize("value, expected", [(0, 0), (1, 1), ("v0", 0), ("v1", 1), ("V1", 1), ("0", 0)])
def test_dialect_forms(raw_peer, value, expected):
    with sluice.Channel("127.0.0.1", raw_peer.port, dialect=value) as ch:
        assert ch.dialect == expected


@pytest.mark.parametrize("bad", [2, "v2", 1.5, [1]])
def test_bad_options(raw_peer, bad):
    with pytest.raises((ValueError, TypeError)):
        sluice.Channel("127.0.0.1", raw_peer.port, dialect=bad)
    with pytest.raises(ValueError):
        sluice.Channel("127.0.0.1", raw_peer.port, role="boss")
    with pytest.raises(ValueError):
        sluice.Channel("127.0.0.1", raw_peer.port, high_watermark=10, low_watermark=20)
    with pytest.raises(TypeError):
        sluice.Channel(12345)


def test_context_manager_and_repr(raw_peer):
    with sluice.Channel("127.0.0.1", raw_peer.port, dialect="v0", role=None) as ch:
        assert ch.role is None
        assert "v0" in repr(ch) and "open" in repr(ch)
        assert ch.peer == f"127.0.0.1:{raw_peer.port}"
        assert isinstance(ch.fileno(), int)
    assert ch.closed and "closed" in repr(ch)
    with pytest.raises(sluice.Closed) as ei:
        ch.send(b"\x93\x01\x00\x90")
    assert isinstance(ei.value, sluice.Error)


def test_channel_with_a_cycle_is_collected(raw_peer):
    ch = sluice.Channel("127.0.0.1", raw_peer.port)
    ch.on_chunk = lambda s, d: ch.send_chunk(s, d)  # callback → channel → callback
    ref = weakref.ref(ch)
    del ch
    gc.collect()
    assert ref() is None


def test_reentrant_dispatch_is_refused(sock_path):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    errors = []

    def nested():
        try:
            worker.dispatch()
        except sluice.Error as err:
            errors.append(err)

    worker.on_connect = nested
    pump(worker, until=lambda: bool(errors))
    assert "own callback" in str(errors[0])
    worker.close()
    engine.close()
    server.close()


def test_events_pull_api(sock_path):
    from sluice.events import Chunk, Choke, Connected, Heartbeat, Invoke, SocketError

    server = sluice.Server(sock_path, dialect="v1")
    worker = sluice.Channel(sock_path, dialect="v1")
    engine = server.accept(timeout=10)
    s = engine.send_invoke("ping")
    engine.send_chunk(s, b"data")
    engine.send_choke(s)
    engine.send_heartbeat()
    engine.close()
    got = []
    while not got or not isinstance(got[-1], SocketError):
        got += worker.events(timeout=10)
    assert got == [Connected(), Invoke(s, "ping"), Chunk(s, b"data"), Choke(s), Heartbeat(), SocketError(errno.ESHUTDOWN)]
    assert repr(got[2]) == f"Chunk(session={s}, data=b'data')"
    assert Invoke.__match_args__ == ("session", "event")  # case Invoke(session, name):
    assert (got[1].session, got[1].event) == (s, "ping")
    with pytest.raises(TypeError):
        hash(got[0])
    assert worker.events() == []
    worker.close()
    server.close()


def test_channels_accepted_before_on_accept_was_set_go_to_it():
    server = sluice.Server("127.0.0.1", 0)
    client = sluice.Channel("127.0.0.1", server.port)
    deadline = time.monotonic() + 10
    while server.dispatch(timeout=0.2) == 0:
        assert time.monotonic() < deadline
    got = []
    server.on_accept = got.append
    assert server.pending == 1
    assert sluice.poll(server, timeout=0) == 0 and len(got) == 1
    for ch in (client, got[0], server):
        ch.close()


def test_pull_style_delivery_of_the_last_event_makes_a_channel_done():
    from sluice.events import SocketError

    server = sluice.Server("127.0.0.1", 0)
    client = sluice.Channel("127.0.0.1", server.port)
    server.accept(timeout=10).close()
    seen = []
    deadline = time.monotonic() + 10
    while not any(isinstance(e, SocketError) for e in seen):
        assert time.monotonic() < deadline
        seen += client.events(timeout=0.2)
    assert client.done
    assert sluice.poll(client, timeout=None) == 0 and client.dispatch(timeout=None) == 0
    server.close()
