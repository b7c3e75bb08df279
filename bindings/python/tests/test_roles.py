"""The protocol roles over real Unix sockets: a sluice.Worker against a
sluice.Engine in both dialects (many sessions with chunks both ways, an
error, terminate both ways, a refused uuid), disown when the engine falls
silent, an engine cutting a silent worker, the example worker as a child
process, sessions reconnecting across server restarts, and a resumable
session that loses nothing through cuts."""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import select
import subprocess
import sys
import time
from typing import Callable, List

import pytest

import sluice
import sluice.aio
from sluice.events import Handshake, Heartbeat

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "worker.py"


def pump(*objs: object, until: Callable[[], bool], timeout: float = 20.0) -> None:
    """Dispatches the roles (and channels) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        live = [o for o in objs if not getattr(o, "done", False)]
        if live:
            select.select([o.fileno() for o in live], [], [], 0.02)
        for o in live:
            o.dispatch()


class Log:
    """Records callbacks as tuples ``(name, *args)``."""

    def __init__(self) -> None:
        self.log: List[tuple] = []

    def cb(self, name: str, then: Callable[..., None] | None = None) -> Callable[..., None]:
        def f(*args: object) -> None:
            self.log.append((name,) + args)
            if then is not None:
                then(*args)

        return f

    def names(self) -> List[str]:
        return [e[0] for e in self.log]

    def of(self, name: str) -> List[tuple]:
        return [e[1:] for e in self.log if e[0] == name]


def engine_log(path: str, dialect: str, **kw: object) -> tuple:
    log = Log()
    names = ["handshake", "rejected", "heartbeat", "chunk", "error", "choke", "terminate", "drain", "gone"]
    engine = sluice.Engine(path, dialect, **kw, **{f"on_{n}": log.cb(n) for n in names})
    return engine, log


def echo_worker(path: str, uuid: str, dialect: str, **kw: object) -> tuple:
    """A worker that echoes chunks upper-cased, fails sessions whose event
    is "fail", and answers terminate with its own."""
    log = Log()
    failing = set()
    holder: List[sluice.Worker] = []

    def on_invoke(stream: sluice.WorkerStream, event: str) -> None:
        if event == "fail":
            failing.add(stream.session)

    def on_chunk(session: int, data: bytes) -> None:
        if session not in failing:
            holder[0].stream(session).write(data.upper())

    def on_choke(session: int) -> None:
        if session in failing:
            holder[0].stream(session).error(42, "refused")
        else:
            holder[0].stream(session).close()

    def on_terminate(code: int, reason: str) -> None:
        holder[0].terminate(code, "worker shut down")

    w = sluice.Worker(
        path,
        uuid,
        dialect=dialect,
        on_connect=log.cb("connect"),
        on_invoke=log.cb("invoke", on_invoke),
        on_chunk=log.cb("chunk", on_chunk),
        on_choke=log.cb("choke", on_choke),
        on_error=log.cb("error"),
        on_heartbeat=log.cb("heartbeat"),
        on_terminate=log.cb("terminate", on_terminate),
        on_disown=log.cb("disown"),
        on_drain=log.cb("drain"),
        on_disconnect=log.cb("disconnect"),
        **kw,
    )
    holder.append(w)
    return w, log


@pytest.mark.parametrize("dialect", ["v0", "v1"])
def test_worker_and_engine(dialect, sock_path):
    engine, elog = engine_log(sock_path, dialect, uuids=["6d0b4c1e", "second"])
    worker, wlog = echo_worker(sock_path, "6d0b4c1e", dialect, heartbeat_interval=0.05)
    pump(engine, worker, until=lambda: elog.of("handshake"))
    assert wlog.names()[0] == "connect"
    (w,) = elog.of("handshake")[0]
    assert w.uuid == "6d0b4c1e"
    assert engine.workers == [w] and engine.worker("6d0b4c1e") == w and engine.worker("x") is None
    assert hash(w) == hash(engine.workers[0])

    # 300 sessions, three chunks each; every tenth fails.
    n = 300
    expected = {}
    for i in range(n):
        s = w.invoke("fail" if i % 10 == 9 else "echo")
        for k in range(3):
            s.write(b"s%d-c%d" % (i, k))
        s.close()
        with pytest.raises(sluice.Closed):
            s.write(b"after close")
        expected[s.session] = i
    pump(engine, worker, until=lambda: len(elog.of("choke")) + len(elog.of("error")) == n)
    replies: dict = {}
    for name, *args in elog.log:
        if name == "chunk":
            ww, session, data = args
            assert ww == w
            replies.setdefault(session, []).append(data)
    for ww, session in elog.of("choke"):
        i = expected[session]
        assert i % 10 != 9
        assert replies.pop(session) == [b"S%d-C%d" % (i, k) for k in range(3)]
    for ww, session, category, code, message in elog.of("error"):
        assert expected[session] % 10 == 9 and session not in replies
        assert (category, code, message) == (42 if dialect == "v1" else None, 42, "refused")
    assert len(elog.of("error")) == n // 10 and not replies
    assert w.open_sessions == 0 and worker.open_sessions == 0

    # The worker saw each session in order: invoke, 3 chunks, choke.
    per = [e for e in wlog.log if e[0] in ("invoke", "chunk", "choke")]
    assert len(per) == 5 * n
    for j in range(n):
        inv, c0, c1, c2, ch = per[5 * j : 5 * j + 5]
        s = inv[1].session
        assert [inv[0], c0[:2], c1[:2], c2[:2], ch] == ["invoke", ("chunk", s), ("chunk", s), ("chunk", s), ("choke", s)]
    # Heartbeats went both ways.
    pump(engine, worker, until=lambda: elog.of("heartbeat") and wlog.of("heartbeat"))

    # Engine-initiated terminate: the worker answers with its own.
    w.terminate(7, "slave is idle")
    pump(engine, worker, until=lambda: elog.of("gone"))
    assert elog.of("terminate") == [(w, 7, "worker shut down")]
    assert elog.of("gone") == [(w, errno.ESHUTDOWN)]
    assert wlog.of("terminate") == [(7, "slave is idle")]
    assert worker.done and "disconnect" not in wlog.names()
    assert engine.workers == []
    with pytest.raises(sluice.Closed):
        w.invoke("late")

    # Worker-initiated terminate (abnormal).
    elog.log.clear()
    w2, w2log = echo_worker(sock_path, "second", dialect)
    pump(engine, w2, until=lambda: elog.of("handshake"))
    w2.terminate(2, "self-terminating")
    pump(engine, until=lambda: elog.of("gone"))
    assert [e[0] for e in elog.log if e[0] != "heartbeat"] == ["handshake", "terminate", "gone"]
    assert elog.of("terminate")[0][1:] == (2, "self-terminating")
    assert elog.of("gone")[0][1] == errno.ESHUTDOWN

    # A uuid the engine does not know is refused and disconnected.
    w3, w3log = echo_worker(sock_path, "stranger", dialect)
    pump(engine, w3, until=lambda: w3.done)
    assert elog.of("rejected") == [("stranger",)]
    ((e, sessions),) = w3log.of("disconnect")
    # (EPIPE when its heartbeat was written into the reset connection)
    assert e in (errno.ECONNRESET, errno.ESHUTDOWN, errno.EPIPE) and sessions == []
    engine.close()
    assert engine.done


@pytest.mark.parametrize("dialect", ["v0", "v1"])
def test_worker_disowns_a_silent_engine(dialect, sock_path):
    # An engine that accepts and reads but never answers.
    server = sluice.Server(sock_path, dialect=dialect)
    worker, wlog = echo_worker(sock_path, "u", dialect, heartbeat_interval=0.03, disown_timeout=0.3)
    assert (worker.heartbeat_interval, worker.disown_timeout) == (0.03, 0.3)
    engine_side = server.accept(timeout=10)
    pump(worker, until=lambda: wlog.of("connect"))
    s = engine_side.send_invoke("ping")
    pump(worker, until=lambda: worker.done)
    assert wlog.names()[-2:] == ["disown", "disconnect"]
    assert wlog.of("disconnect") == [(errno.ETIMEDOUT, [s])]
    assert wlog.of("invoke")[0][0].session == s
    # The engine side got the handshake and several heartbeats, then the end.
    events = []
    while not any(isinstance(e, sluice.events.SocketError) for e in events):
        events += engine_side.events(timeout=5)
    assert events[1] == Handshake("u")
    assert sum(isinstance(e, Heartbeat) for e in events) >= 3
    engine_side.close()
    server.close()


def test_engine_cuts_a_silent_worker(sock_path):
    engine, elog = engine_log(sock_path, "v1", handshake_timeout=5.0, heartbeat_timeout=0.3)
    # A raw worker that handshakes and then says nothing.
    ch = sluice.Channel(sock_path, dialect="v1")
    ch.send_handshake("quiet")
    pump(engine, until=lambda: elog.of("gone"), timeout=10)
    (w, e) = elog.of("gone")[0]
    assert e == errno.ETIMEDOUT and w.uuid == "quiet"
    ch.close()
    engine.close()


@pytest.mark.parametrize("dialect", ["v0", "v1"])
def test_engine_drives_the_example_worker(dialect, sock_path):
    engine, elog = engine_log(sock_path, dialect, uuids=["demo-uuid"])
    args = ["--app", "echo", "--endpoint", sock_path, "--uuid", "demo-uuid", "--locator", "127.0.0.1:10053"]
    if dialect == "v1":
        args += ["--protocol", "1"]
    proc = subprocess.Popen([sys.executable, str(EXAMPLE)] + args, stderr=subprocess.PIPE, text=True)
    try:
        pump(engine, until=lambda: elog.of("handshake"))
        (w,) = elog.of("handshake")[0]
        streams = []
        for i in range(50):
            s = w.invoke("echo")
            s.write(b"hello %d" % i)
            s.write(b"x" * (20000 + i))  # large enough to arrive as a Payload
            s.close()
            streams.append(s.session)
        failed = w.invoke("echo")
        failed.error(5, "no more input")
        pump(engine, until=lambda: len(elog.of("choke")) == 50 and elog.of("error"))
        got: dict = {}
        for ww, session, data in elog.of("chunk"):
            got.setdefault(session, []).append(bytes(data))
        for i, session in enumerate(streams):
            assert got[session] == [b"hello %d" % i, b"x" * (20000 + i)]
        (ww, session, category, code, message) = elog.of("error")[0]
        assert session == failed.session and code == 5 and message == "engine failed the session: no more input"
        w.terminate(1, "bye")
        pump(engine, until=lambda: elog.of("gone"))
        assert elog.of("terminate") == [(w, 1, "worker shut down")]
        assert elog.of("gone") == [(w, errno.ESHUTDOWN)]
        assert proc.wait(timeout=20) == 0
        assert "terminate 1 'bye'" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        engine.close()


def test_worker_arguments(sock_path):
    with pytest.raises(sluice.BadArguments) as e:
        sluice.Worker.from_args(["--endpoint", sock_path])
    assert isinstance(e.value, ValueError) and "--uuid" in str(e.value)
    with pytest.raises(sluice.BadArguments):
        sluice.Worker.from_args(["--uuid", "u", "--endpoint", sock_path, "--protocol", "7"])
    with pytest.raises(TypeError):
        sluice.Worker.from_args(["--uuid", "u", "--endpoint", sock_path], on_chunkk=print)
    w = sluice.Worker.from_args(["--app", "a", "--uuid", "u", "--endpoint", sock_path, "--locator", "h:1,g:2", "--extra", "x"])
    assert (w.app, w.uuid, w.endpoint, w.locator, w.dialect) == ("a", "u", "unix:" + sock_path, ["h:1", "g:2"], 0)
    log = Log()
    w.on_disconnect = log.cb("disconnect")
    assert w.on_disconnect is not None and w.on_chunk is None
    w.run(timeout=10)  # nothing listens: ENOENT or ECONNREFUSED, the last event
    assert w.done and log.of("disconnect")[0][0] in (errno.ENOENT, errno.ECONNREFUSED)


def test_session_reconnects_across_server_restarts(sock_path):
    log = Log()
    session = sluice.Session(
        [sock_path],
        backoff_initial=0.01,
        backoff_max=0.05,
        on_connect=log.cb("connect"),
        on_disconnect=log.cb("disconnect"),
        on_reconnect_attempt=log.cb("attempt"),
        on_frame=log.cb("frame"),
    )
    assert session.endpoints == ["unix:" + sock_path] and not session.resume
    for rnd in range(5):
        server = sluice.Server(sock_path, role=None)
        ch = server.accept(timeout=20)
        pump(session, until=lambda: len(log.of("connect")) == rnd + 1)
        assert log.of("connect")[-1] == ("unix:" + sock_path, False) and session.connected
        session.send_frame(3, 7, ["round", rnd])
        events = []
        while not any(isinstance(e, sluice.events.Frame) for e in events):
            events += ch.events(timeout=5)
        assert sluice.events.Frame(3, 7, ["round", rnd]) in events
        ch.send_frame(4, 8, [rnd])
        pump(session, until=lambda: len(log.of("frame")) == rnd + 1)
        assert log.of("frame")[-1] == (4, 8, [rnd])
        # Kill the server: the listener and the connection.
        server.close()
        ch.abort()
        pump(session, until=lambda: len(log.of("disconnect")) == rnd + 1)
        assert log.of("disconnect")[-1][0] in (errno.ESHUTDOWN, errno.ECONNRESET)
        pump(session, until=lambda: len([e for e in log.log[-3:] if e[0] == "attempt"]) >= 2)
        with pytest.raises(sluice.Closed):
            session.send_chunk(1, b"nobody there")
    attempts = log.of("attempt")
    assert len(attempts) >= 10
    for attempt, endpoint, delay in attempts:
        assert attempt >= 1 and endpoint == "unix:" + sock_path and 0 < delay <= 0.05 * 1.2 + 1e-9
    session.stop()
    assert session.done


def test_resumable_session_loses_nothing_through_cuts(sock_path):
    slog = Log()
    received_by_server: List[int] = []
    peers: List[sluice.Peer] = []

    def on_frame(peer: sluice.Peer, session: int, type_id: int, args: list) -> None:
        received_by_server.append(args[0])
        peer.send_frame(session, type_id, [args[0] * 2])  # answer each one

    server = sluice.ResumeServer(
        sock_path,
        peer_timeout=30.0,
        ack_every=16,
        on_peer_connect=lambda p, resumed: (peers.append(p), slog.log.append(("connect", resumed))),
        on_peer_disconnect=slog.cb("disconnect"),
        on_peer_gone=slog.cb("gone"),
        on_frame=on_frame,
    )
    clog = Log()
    answers: List[int] = []
    session = sluice.Session(
        sock_path,
        resume=True,
        ack_every=16,
        backoff_initial=0.01,
        backoff_max=0.05,
        on_connect=clog.cb("connect"),
        on_disconnect=clog.cb("disconnect"),
        on_frame=lambda s, t, a: answers.append(a[0]),
    )
    n = 20000
    i = 0
    for cut in range(10):
        pump(session, server, until=lambda: len(clog.of("connect")) == cut + 1)
        for _ in range(n // 10):
            session.send_frame(5, 9, [i])
            i += 1
        # Cut the connection from either side while frames are in flight.
        if cut % 2 == 0:
            session.disconnect()
        else:
            peers[-1].disconnect()
        # Sends made while disconnected are kept too.
        session.send_frame(5, 9, [i])
        i += 1
    n = i
    pump(session, server, until=lambda: len(answers) == n and len(received_by_server) == n, timeout=60)
    assert received_by_server == list(range(n)), "each frame delivered once, in order"
    assert answers == [2 * k for k in range(n)]
    assert clog.of("connect")[0] == ("unix:" + sock_path, False)
    assert all(resumed for _, resumed in clog.of("connect")[1:])
    assert slog.log[0] == ("connect", False)
    assert [e for e in slog.log if e[0] == "connect"][1:] == [("connect", True)] * (len(slog.of("connect")) - 1)
    # (the server may see a cut connection end after its replacement attached: then it reports nothing)
    assert len(clog.of("disconnect")) == 10 and 1 <= len(slog.of("disconnect")) <= 10 and not slog.of("gone")
    (peer,) = server.peers
    assert peer == peers[0] and len(peer.token) == 16 and peer.received == n
    assert session.received == n
    session.stop()
    server.close()


def test_roles_on_the_event_loop(sock_path):
    async def main() -> None:
        engine, elog = engine_log(sock_path, "v1")
        worker, wlog = echo_worker(sock_path, "aio", "v1")
        tasks = [asyncio.ensure_future(sluice.aio.run(worker)), asyncio.ensure_future(sluice.aio.run(engine))]
        while not elog.of("handshake"):
            await asyncio.sleep(0.01)
        (w,) = elog.of("handshake")[0]
        s = w.invoke("echo")
        s.write(b"over the loop")
        s.close()
        while not elog.of("choke"):
            await asyncio.sleep(0.01)
        assert [e[2] for e in elog.of("chunk")] == [b"OVER THE LOOP"]
        w.terminate(1, "done")
        await asyncio.wait_for(tasks[0], 20)  # the worker terminated: done
        assert worker.done
        while not elog.of("gone"):
            await asyncio.sleep(0.01)
        engine.close()
        await asyncio.wait_for(tasks[1], 20)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_raising_callback_keeps_the_rest(sock_path):
    calls = []

    def boom(worker: sluice.WorkerRef) -> None:
        calls.append(worker)
        raise RuntimeError("boom")

    engine = sluice.Engine(sock_path, on_handshake=boom)
    w1 = sluice.Worker(sock_path, "a")
    w2 = sluice.Worker(sock_path, "b")
    # Each raise propagates from dispatch; the next dispatch goes on.
    for _ in range(2):
        with pytest.raises(RuntimeError):
            pump(engine, w1, w2, until=lambda: False)
    assert sorted(c.uuid for c in calls) == ["a", "b"]
    for o in (w1, w2, engine):
        o.close()
    assert os.path.exists(sock_path) is False


def test_session_cuts_a_silent_peer(sock_path):
    # A server that accepts and reads but never answers the heartbeats.
    server = sluice.Server(sock_path, role=None)
    log = Log()
    session = sluice.Session(
        sock_path,
        heartbeat_interval=0.05,
        liveness_timeout=0.3,
        backoff_initial=5.0,
        on_connect=log.cb("connect"),
        on_disconnect=log.cb("disconnect"),
        on_reconnect_attempt=log.cb("attempt"),
    )
    ch = server.accept(timeout=10)
    pump(session, until=lambda: log.of("disconnect"))
    assert log.names()[:2] == ["connect", "disconnect"]
    assert log.of("disconnect") == [(errno.ETIMEDOUT,)]
    events = []
    while not any(isinstance(e, sluice.events.SocketError) for e in events):
        events += ch.events(timeout=5)
    # The heartbeats it sent meanwhile: [1, 0, []] (v1: channel 1, type 0).
    assert sum(e == sluice.events.Frame(1, 0, []) for e in events) >= 3
    session.stop()
    ch.close()
    server.close()


def test_roles_over_tcp():
    engine, elog = engine_log(("127.0.0.1", 0), "v1")
    assert engine.address == ("127.0.0.1", engine.port) and engine.endpoint == f"127.0.0.1:{engine.port}"
    worker, wlog = echo_worker(f"127.0.0.1:{engine.port}", "tcp-worker", "v1")
    assert worker.endpoint == f"127.0.0.1:{engine.port}"
    pump(engine, worker, until=lambda: elog.of("handshake"))
    (w,) = elog.of("handshake")[0]
    s = w.invoke("echo")
    s.write(b"tcp")
    s.close()
    pump(engine, worker, until=lambda: elog.of("choke"))
    assert [e[2] for e in elog.of("chunk")] == [b"TCP"]
    w.kill()
    pump(engine, worker, until=lambda: worker.done)
    assert elog.of("gone")[0][1] == errno.ECONNRESET
    assert wlog.of("disconnect")[0][0] in (errno.ECONNRESET, errno.ESHUTDOWN, errno.EPIPE)
    engine.close()


def test_poll_takes_any_object_with_a_descriptor():
    engine, elog = engine_log(("127.0.0.1", 0), "v1")
    worker, wlog = echo_worker(f"127.0.0.1:{engine.port}", "poll-worker", "v1")
    server = sluice.Server("127.0.0.1", 0)
    accepted: List[sluice.Channel] = []
    server.on_accept = accepted.append
    channel = sluice.Channel("127.0.0.1", server.port)
    assert all(isinstance(o, sluice._sluice._Handle) for o in (engine, worker, server, channel))
    deadline = time.monotonic() + 20
    while not (elog.of("handshake") and accepted):
        assert time.monotonic() < deadline, "nothing came"
        sluice.poll(engine, worker, server, channel, timeout=0.5)
    with pytest.raises(TypeError):
        sluice.poll(engine, object())
    for o in (channel, server, worker, engine, *accepted):
        o.close()
    assert all(o.done for o in (channel, server, worker, engine))
    assert sluice.poll(channel, server, worker, engine, timeout=None) == 0
