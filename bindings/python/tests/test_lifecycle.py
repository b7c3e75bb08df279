"""Servers, process exit with channels open, and no leaks over many
messages."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc

import pytest

import sluice
from conftest import engine_and_worker, pump


def test_server_on_accept_and_iteration(sock_path):
    accepted = []
    server = sluice.Server(sock_path, dialect="v0", on_accept=accepted.append)
    assert server.address == sock_path and server.port is None
    assert server.endpoint == "unix:" + sock_path
    clients = [sluice.Channel(sock_path, dialect="v0") for _ in range(3)]
    pump(server, until=lambda: len(accepted) == 3)
    assert all(isinstance(c, sluice.Channel) and c.dialect == 0 and c.role == "engine" for c in accepted)
    with pytest.raises(sluice.Error):
        server.accept(timeout=0)  # with on_accept set, channels go there
    for c in clients + accepted:
        c.close()
    server.close()
    assert server.closed and not os.path.exists(sock_path), "close removes the socket file"


def test_server_accept_iterate_and_timeout():
    with sluice.Server("127.0.0.1", 0, role="worker") as server:
        host, port = server.address
        assert host == "127.0.0.1" and port == server.port > 0
        with pytest.raises(TimeoutError):
            server.accept(timeout=0.05)
        clients = [sluice.Channel("127.0.0.1", port, role="engine") for _ in range(2)]
        got = []
        for ch in server:
            got.append(ch)
            if len(got) == 2:
                break
        assert {c.role for c in got} == {"worker"}
        # Each accepted channel starts with on_connect, waiting until dispatched.
        connects = []
        for c in got:
            c.on_connect = lambda: connects.append(1)
        pump(*got, until=lambda: len(connects) == 2)
        for c in clients + got:
            c.close()
    assert server.closed
    with pytest.raises(sluice.Closed):
        server.accept(timeout=0)
    assert list(server) == []


def run_script(code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_process_exits_cleanly_with_channels_open(tmp_path):
    # Open channels, a server, unsent data, a thread blocked in run(): the
    # interpreter still exits at once with status 0.
    r = run_script(
        f"""
        import threading, sluice
        server = sluice.Server({str(tmp_path / "exit.sock")!r})
        worker = sluice.Channel({str(tmp_path / "exit.sock")!r})
        engine = server.accept(timeout=10)
        other = sluice.Channel("127.0.0.1", server.port or 9)  # fails in the background
        for i in range(1000):
            engine.send_chunk(2, b"x" * 1000)
        t = threading.Thread(target=worker.run, daemon=True)
        t.start()
        print("ok", flush=True)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert "Traceback" not in r.stderr and "panicked" not in r.stderr


def test_process_exits_cleanly_when_interrupted_in_run():
    # SIGINT while blocked in run() with the GIL released: KeyboardInterrupt.
    # The script installs Python's SIGINT handler itself: a test run started
    # with SIGINT ignored (a background job of a non-interactive shell)
    # passes that on to the child, where Python then installs none.
    code = """
        import os, signal, threading, sys, sluice, socket
        signal.signal(signal.SIGINT, signal.default_int_handler)
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
        ch = sluice.Channel("127.0.0.1", s.getsockname()[1])
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            ch.run()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        """
    r = run_script(code)
    assert r.returncode == 3 and r.stdout.strip() == "interrupted", r.stderr


def test_fork_child_gets_its_own_runtime(tmp_path):
    r = run_script(
        f"""
        import os, sluice
        path = {str(tmp_path / "fork.sock")!r}
        server = sluice.Server(path)
        pid = os.fork()
        if pid == 0:
            got = []
            ch = sluice.Channel(path, on_connect=lambda: got.append(1))
            ch.dispatch(timeout=10)
            os._exit(0 if got else 1)
        engine = server.accept(timeout=10)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


@pytest.mark.parametrize("mode", ["on_chunk", "on_chunks", "events"])
def test_no_leaks_over_100k_messages(sock_path, mode):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    pump(worker, engine, until=lambda: ("connect",) in w.log)
    s = engine.send_invoke("leak")
    count = [0]
    small, large = b"m" * 64, b"L" * 20000  # bytes and Payload chunks

    def on_chunk(session, data):
        count[0] += 1

    def on_chunks(session, chunks):
        count[0] += len(chunks)

    if mode == "on_chunk":
        worker.on_chunk = on_chunk
    elif mode == "on_chunks":
        worker.on_chunks = on_chunks
    cb = on_chunk if mode == "on_chunk" else on_chunks

    def pump_messages(n: int) -> None:
        target = count[0] + n
        sent = 0
        while count[0] < target:
            while sent < n and engine.queued < (4 << 20):
                engine.send_chunk(s, large if sent % 100 == 0 else small)
                sent += 1
            if mode == "events":
                count[0] += sum(1 for ev in worker.events(timeout=0.05) if isinstance(ev, sluice.events.Chunk))
            else:
                sluice.poll(worker, timeout=0.05)
            engine.dispatch()

    pump_messages(10_000)  # warm up: caches, free lists, vector capacities
    gc.collect()
    refs = (sys.getrefcount(cb), sys.getrefcount(worker))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pump_messages(100_000)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert count[0] == 110_000
    assert after - before < 256 << 10, f"Python memory grew by {after - before} bytes over 100,000 messages"
    assert (sys.getrefcount(cb), sys.getrefcount(worker)) == refs, "no reference leaked"
    worker.close()
    engine.close()
    server.close()


def test_poll_returns_at_once_when_everything_is_done(sock_path):
    import time

    server = sluice.Server(sock_path)
    ch = sluice.Channel(sock_path)
    ch.close()
    server.close()
    t0 = time.monotonic()
    assert sluice.poll(ch, server) == 0  # no timeout: would wait forever otherwise
    assert time.monotonic() - t0 < 1
    with pytest.raises(TypeError):
        sluice.poll(ch, object())


def test_a_raising_on_accept_propagates_and_the_rest_follow(sock_path):
    import time

    got = []

    def on_accept(ch):
        got.append(ch)
        if len(got) == 1:
            raise RuntimeError("first")

    server = sluice.Server(sock_path, on_accept=on_accept)
    clients = [sluice.Channel(sock_path) for _ in range(3)]
    time.sleep(0.3)  # all three wait to be accepted
    with pytest.raises(RuntimeError, match="first"):
        pump(server, until=lambda: False)
    pump(server, until=lambda: len(got) == 3)
    for c in clients + got:
        c.close()
    server.close()


def test_send_chunks_and_abort(sock_path):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    s = engine.send_invoke("x")
    assert engine.send_chunks(s, [b"a", bytearray(b"b"), memoryview(b"c")]) == 3
    pump(worker, engine, until=lambda: sum(1 for x in w.log if x[0] == "chunk") == 3)
    assert [x[2] for x in w.log if x[0] == "chunk"] == [b"a", b"b", b"c"]
    engine.abort()
    assert engine.closed
    worker.run(timeout=10)
    assert w.log[-1][0] == "socket_error"
    with pytest.raises(sluice.Closed):
        engine.send_chunks(s, [b"x"])
    server.close()


def test_generic_frames_as_events(raw_peer):
    from sluice.events import Connected, Frame

    ch = sluice.Channel("127.0.0.1", raw_peer.port, role=None)
    raw_peer.accept()
    raw_peer.send(b"\x93\x05\x01\x92\xa2ok\x2a")
    got = []
    while len(got) < 2:
        got += ch.events(timeout=10)
    assert got == [Connected(), Frame(5, 1, ["ok", 42])]
    ch.close()
