"""The asyncio API: connect/serve, async iteration, batches, drain, errors."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

import sluice
import sluice.aio
from sluice.events import Chunk, Choke, Connected, Drain, Error, Handshake, Heartbeat, Invoke, SocketError, Terminate


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("dialect", ["v0", "v1"])
def test_worker_and_engine_on_one_loop(dialect, sock_path):
    async def main():
        server = await sluice.aio.serve(sock_path, dialect=dialect)
        worker = await sluice.aio.connect(sock_path, dialect=dialect)
        engine = await server.accept()
        assert await engine.__anext__() == Connected()
        control = 0 if dialect == "v0" else 1

        worker.send_handshake("uuid-1")
        worker.send_heartbeat()
        assert [await engine.__anext__(), await engine.__anext__()] == [Handshake("uuid-1"), Heartbeat()]

        s = engine.send_invoke("echo")
        engine.send_chunk(s, b"hello")
        engine.send_choke(s)

        async def serve_one():
            # The worker echoes every session's data back, as a framework would.
            async for ev in worker:
                if isinstance(ev, Invoke):
                    pass
                elif isinstance(ev, Chunk):
                    await worker.write(ev.session, ev.data)
                elif isinstance(ev, Choke):
                    worker.send_choke(ev.session)
                elif isinstance(ev, Terminate):
                    worker.send_terminate(1, "bye")
                    return ev

        task = asyncio.create_task(serve_one())
        got = [await engine.__anext__(), await engine.__anext__()]
        assert got == [Chunk(s, b"hello"), Choke(s)]
        engine.send_terminate(1, "shutting down")
        assert await task == Terminate(control, 1, "shutting down")
        assert await engine.__anext__() == Terminate(control, 1, "bye")
        engine.close()
        rest = [ev async for ev in worker]
        assert rest == [SocketError(errno.ESHUTDOWN)]
        assert [ev async for ev in worker] == [], "iteration stays ended"
        server.close()
        with pytest.raises(sluice.Closed):
            await server.accept()

    run(main())


def test_next_batch_delivers_many_at_once(sock_path):
    async def main():
        async with await sluice.aio.serve(sock_path) as server:
            async with await sluice.aio.connect(sock_path) as worker:
                engine = await server.accept()
                s = engine.send_invoke("bulk")
                n = 20_000
                for i in range(n):
                    engine.send_chunk(s, b"%d" % i)
                engine.send_choke(s)
                got = []
                batches = 0
                while not got or not isinstance(got[-1], Choke):
                    batch = await worker.next_batch()
                    assert batch
                    batches += 1
                    got += batch
                assert got[0] == Invoke(s, "bulk") and got[-1] == Choke(s)
                assert [ev.data for ev in got[1:-1]] == [b"%d" % i for i in range(n)]
                assert batches < n // 10, "events come in batches"
                engine.close()
            assert worker.closed

    run(main())


def test_connect_refused_raises_connection_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def main():
        with pytest.raises(sluice.ConnectionError) as ei:
            await sluice.aio.connect("127.0.0.1", port)
        assert ei.value.errno == errno.ECONNREFUSED
        with pytest.raises(ConnectionError):  # the builtin too
            await sluice.aio.connect("/nonexistent/sluice.sock")

    run(main())


def test_callbacks_are_refused():
    async def main():
        with pytest.raises(TypeError):
            await sluice.aio.connect("127.0.0.1", 1, on_chunk=print)

    run(main())


def test_drain_waits_for_a_slow_reader():
    async def main():
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.setblocking(False)
        loop = asyncio.get_running_loop()
        connecting = asyncio.ensure_future(
            sluice.aio.connect("127.0.0.1", lst.getsockname()[1], high_watermark=256 << 10, low_watermark=64 << 10)
        )
        peer, _ = await loop.sock_accept(lst)
        ch = await connecting
        chunk = b"z" * (32 << 10)
        # Writes until the queue and the socket buffers are full, then drain() waits.
        writes = 0

        async def writer():
            nonlocal writes
            for _ in range(2000):
                await ch.write(2, chunk)
                writes += 1

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.3)
        assert not task.done(), "the writer waits for the reader"
        stalled = writes
        # Read everything: the writer finishes.
        total = 0
        expected = 2000 * (len(chunk) + 7)  # 93 02 00 91 da 80 00 + data
        while total < expected:
            data = await loop.sock_recv(peer, 1 << 20)
            assert data
            total += len(data)
        await task
        assert stalled < 2000 and total == expected
        assert await ch.drain() is None  # returns at once when writable
        ch.close()
        with pytest.raises(sluice.Closed):
            await ch.drain()
        peer.close()
        lst.close()

    run(main())


def test_error_events_and_frames(sock_path):
    async def main():
        server = await sluice.aio.serve(sock_path, dialect="v1")
        worker = await sluice.aio.connect(sock_path, dialect="v1")
        engine = await server.accept()
        await engine.__anext__()  # Connected
        s = engine.send_invoke("x")
        engine.send_error(s, 7, "nope", category=2)
        assert await worker.__anext__() == Invoke(s, "x")
        ev = await worker.__anext__()
        assert ev == Error(s, 2, 7, "nope") and (ev.category, ev.code, ev.message) == (2, 7, "nope")
        worker.close()
        engine.close()
        server.close()

    run(main())


def test_many_channels_on_one_loop(sock_path):
    async def main():
        server = await sluice.aio.serve(sock_path)
        workers = [await sluice.aio.connect(sock_path) for _ in range(50)]
        engines = [await server.accept() for _ in range(50)]

        async def exchange(i, engine):
            assert await engine.__anext__() == Connected()
            s = engine.send_invoke("n%d" % i)
            engine.send_chunk(s, b"%d" % i)

        await asyncio.gather(*(exchange(i, e) for i, e in enumerate(engines)))
        seen = set()
        for w in workers:
            inv = await w.__anext__()
            chunk = await w.__anext__()
            assert inv.event == "n" + chunk.data.decode()
            seen.add(chunk.data)
        assert len(seen) == 50
        for c in workers + engines:
            c.close()
        server.close()

    run(main())


def test_async_server_iteration_ends_on_close(sock_path):
    async def main():
        server = await sluice.aio.serve(sock_path)
        clients = [await sluice.aio.connect(sock_path) for _ in range(2)]
        got = []

        async def collect():
            async for ch in server:
                got.append(ch)

        task = asyncio.create_task(collect())
        while len(got) < 2:
            await asyncio.sleep(0.01)
        server.close()
        await task  # iteration ended
        assert [await ch.__anext__() for ch in got] == [Connected(), Connected()]
        for c in clients + got:
            c.close()

    run(main())


def test_a_slow_consumer_bounds_what_is_taken(sock_path):
    async def main():
        server = await sluice.aio.serve(sock_path)
        worker = await sluice.aio.connect(sock_path, batch=100, max_pending=64 << 10)
        engine = await server.accept()
        s = engine.send_invoke("flood")
        n = 30_000
        for i in range(n):  # 30,000 small chunks; the worker does not consume yet
            engine.send_chunk(s, b"%05d" % i)
        await asyncio.sleep(0.3)
        assert len(worker._events) <= 4 * 100 + 100, "events taken and not consumed stay bounded"
        chunks = []
        while len(chunks) < n:  # consuming lets the rest flow
            chunks += [ev.data for ev in await worker.next_batch() if isinstance(ev, Chunk)]
        assert chunks == [b"%05d" % i for i in range(n)]
        for c in (worker, engine):
            c.close()
        server.close()

    run(main())
