"""Error paths: refused, missing path, reset, bad frame, oversize frame,
backpressure, closed channels, the exception hierarchy, and callbacks that
raise."""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest

import sluice
from conftest import Recorder, engine_and_worker, pump, settle


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connected(raw_peer, **kw):
    rec = Recorder()
    ch = sluice.Channel("127.0.0.1", raw_peer.port, **rec.kwargs(), **kw)
    raw_peer.accept()
    pump(ch, until=lambda: rec.log == [("connect",)])
    rec.take()
    return ch, rec


def test_unresolvable_host_reports_enotfound():
    rec = Recorder()
    ch = sluice.Channel("no-such-host.invalid", 1, **rec.kwargs())
    ch.run(timeout=30)
    assert rec.log == [("socket_error", 6)]
    assert sluice.errors.errno_name(6) == "ENOTFOUND"
    assert sluice.errors.errno_text(6).startswith("host not found")


def test_refused_reports_econnrefused():
    rec = Recorder()
    ch = sluice.Channel("127.0.0.1", free_port(), **rec.kwargs())
    ch.run(timeout=10)
    assert rec.log == [("socket_error", errno.ECONNREFUSED)]
    assert errno.ECONNREFUSED == 111
    assert ch.closed
    settle(ch)
    assert rec.log == [("socket_error", 111)], "exactly one socket error, nothing after"


def test_missing_unix_path_reports_enoent(tmp_path):
    rec = Recorder()
    ch = sluice.Channel(tmp_path / "nothing.sock", **rec.kwargs())  # os.PathLike works
    ch.run(timeout=10)
    assert rec.log == [("socket_error", errno.ENOENT)]


def test_reset_reports_econnreset(raw_peer):
    ch, rec = connected(raw_peer)
    raw_peer.reset()
    ch.run(timeout=10)
    assert rec.log == [("socket_error", errno.ECONNRESET)]
    assert errno.ECONNRESET == 104


def test_bad_frame_reports_ebadmsg_after_the_good_frames(raw_peer):
    ch, rec = connected(raw_peer)
    raw_peer.send(b"\x93\x01\x00\x90\xc1\x93\x01\x00\x90")
    ch.run(timeout=10)
    assert rec.log == [("heartbeat",), ("socket_error", errno.EBADMSG)]
    assert errno.EBADMSG == 74


def test_oversize_frame_reports_emsgsize(raw_peer):
    ch, rec = connected(raw_peer, max_frame_size=1 << 20)
    raw_peer.send(b"\x93\x02\x00\x91\xc6\x00\x20\x00\x00")  # declares a 2 MiB chunk
    ch.run(timeout=10)
    assert rec.log == [("socket_error", errno.EMSGSIZE)]
    assert errno.EMSGSIZE == 90


def test_peer_close_reports_eshutdown_after_the_frames(raw_peer):
    ch, rec = connected(raw_peer)
    raw_peer.send(b"\x93\x02\x00\x91\xa4http\x93\x02\x00\x91\xa4ping\x93\x02")  # a partial frame at the end
    raw_peer.conn.close()
    raw_peer.conn = None
    ch.run(timeout=10)
    assert rec.log == [("invoke", 2, "http"), ("chunk", 2, b"ping"), ("socket_error", errno.ESHUTDOWN)]


def test_exception_hierarchy():
    e = sluice.errors.from_errno(errno.ECONNREFUSED)
    assert isinstance(e, sluice.ConnectionError) and isinstance(e, ConnectionError) and isinstance(e, sluice.Error)
    assert e.errno == 111 and e.strerror
    p = sluice.errors.from_errno(errno.EBADMSG)
    assert isinstance(p, sluice.ProtocolError) and isinstance(p, OSError) and p.errno == 74
    assert isinstance(sluice.errors.from_errno(errno.EMSGSIZE), sluice.ProtocolError)
    assert isinstance(sluice.errors.from_errno(errno.ESHUTDOWN), sluice.ConnectionError)
    assert sluice.Closed("x").errno is None and sluice.Error("x").errno is None
    for cls in (sluice.ConnectionError, sluice.ProtocolError, sluice.WouldBlock, sluice.Closed):
        assert issubclass(cls, sluice.Error)
    assert issubclass(sluice.WouldBlock, BlockingIOError)


def test_send_past_the_high_watermark_would_block_then_drains(raw_peer):
    ch, rec = connected(raw_peer, high_watermark=1 << 20, low_watermark=256 << 10)
    chunk = b"\x07" * (64 << 10)
    sent = 0
    # Fill the queue and the kernel's socket buffers: send until a send is
    # refused and no drain follows while the peer does not read.
    while True:
        try:
            ch.send_chunk(2, chunk)
            sent += 1
            assert sent < 100_000, "the queue never filled"
            continue
        except sluice.WouldBlock as e:
            assert e.errno == errno.EAGAIN and isinstance(e, BlockingIOError)
        assert ch.queued <= (1 << 20) + (64 << 10) + 64, "memory stays bounded"
        settle(ch, seconds=0.2)
        if not rec.take():
            break  # stuck: nothing drains while the peer does not read
    # The peer reads everything: drain comes and sends work again.
    total = 0
    expected = sent * (len(chunk) + 9)
    raw_peer.conn.settimeout(0.05)

    def read_some():
        nonlocal total
        try:
            while True:
                d = raw_peer.conn.recv(1 << 20)
                if not d:
                    return
                total += len(d)
        except socket.timeout:
            pass

    while rec.log != [("drain",)]:
        read_some()
        sluice.poll(ch, timeout=0.01)
    ch.send_chunk(2, chunk)
    while total < expected + len(chunk) + 9:
        read_some()
    assert total == expected + len(chunk) + 9, "every accepted chunk was written"
    ch.close()


def test_sends_after_close_raise_closed(raw_peer):
    ch, _ = connected(raw_peer)
    ch.close()
    ch.close()  # idempotent
    for send in (lambda: ch.send(b"x"), ch.send_heartbeat, lambda: ch.send_chunk(2, b"x"), lambda: ch.send_invoke("e")):
        with pytest.raises(sluice.Closed):
            send()
    assert ch.dispatch() == 0 and ch.events() == []
    ch.run(timeout=1)  # returns at once


class Boom(Exception):
    pass


@pytest.mark.parametrize("batch_callback", [False, True])
def test_a_raising_callback_propagates_and_the_rest_stays_queued(sock_path, batch_callback):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    pump(worker, engine, until=lambda: w.log == [("connect",)])
    w.take()
    # One write, so that the worker reads and queues it all at once.
    s = engine.next_session()
    engine.send(
        bytes([0x93, s, 0x00, 0x91, 0xA1]) + b"x"
        + b"".join(bytes([0x93, s, 0x00, 0x91, 0xA1]) + b"%d" % i for i in range(5))
        + bytes([0x93, s, 0x02, 0x90])
    )
    seen = []
    if batch_callback:
        # on_chunks raises on its first call: the run counts as delivered,
        # the choke after it is delivered by the next dispatch.
        def on_chunks(session, chunks):
            seen.extend(chunks)
            if len(seen) == 5:
                raise Boom("in on_chunks")

        worker.on_chunks = on_chunks
        with pytest.raises(Boom):
            pump(worker, until=lambda: False, timeout=10)
        assert seen == [b"0", b"1", b"2", b"3", b"4"]
    else:
        def on_chunk(session, data):
            seen.append(data)
            if data == b"1":
                raise Boom("in on_chunk")

        worker.on_chunk = on_chunk
        time.sleep(0.3)  # let every event reach the queue: one batch takes them all
        with pytest.raises(Boom, match="in on_chunk"):
            worker.run(timeout=10)
        assert seen == [b"0", b"1"]
        assert worker.pending == 4  # chunks 2, 3, 4 and the choke
        # The descriptor does not signal them, but dispatch delivers them first.
        assert worker.dispatch() == 4
        assert seen == [b"0", b"1", b"2", b"3", b"4"]
    pump(worker, until=lambda: ("choke", s) in w.log)
    assert [x for x in w.log if x[0] != "chunk"] == [("invoke", s, "x"), ("choke", s)]
    assert worker.pending == 0
    worker.close()
    engine.close()
    server.close()


def test_a_raising_on_socket_error_reaches_run(raw_peer):
    ch = sluice.Channel("127.0.0.1", free_port())

    def fail(errno_):
        raise Boom(errno_)

    ch.on_socket_error = fail
    with pytest.raises(Boom) as ei:
        ch.run(timeout=10)
    assert ei.value.args == (errno.ECONNREFUSED,)
    ch.run(timeout=1)  # done: returns


def test_close_from_a_callback_stops_delivery(sock_path):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    s = engine.send_invoke("x")
    for i in range(10):
        engine.send_chunk(s, b"%d" % i)
    seen = []

    def on_chunk(session, data):
        seen.append(data)
        if data == b"3":
            worker.close()

    worker.on_chunk = on_chunk
    worker.run(timeout=10)
    assert seen == [b"0", b"1", b"2", b"3"]
    assert worker.closed
    engine.close()
    server.close()


def test_unicode_and_bytes_arguments(raw_peer):
    ch, _ = connected(raw_peer, dialect="v0")
    ch.send_terminate(2, "caf\u00e9")
    want = b"\x93\x02\x00\x92\x02\xa5caf\xc3\xa9"
    assert raw_peer.recv_exactly(len(want)) == want
    ch.send_error(1, 1, "\udcff")  # surrogateescape: the raw byte 0xff
    assert raw_peer.recv_exactly(7) == b"\x93\x05\x01\x92\x01\xa1\xff"
    ch.close()


def test_fileno_is_level_triggered(raw_peer):
    import select

    ch, rec = connected(raw_peer)
    fd = ch.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    raw_peer.send(b"\x93\x01\x00\x90")
    assert select.select([fd], [], [], 10)[0] == [fd]
    assert select.select([fd], [], [], 0)[0] == [fd], "stays readable until dispatched"
    assert ch.dispatch() == 1
    assert select.select([fd], [], [], 0)[0] == []
    ch.close()


def test_dispatch_timeout_waits_and_returns(raw_peer):
    import time

    ch, rec = connected(raw_peer)
    t0 = time.monotonic()
    assert ch.dispatch(timeout=0.2) == 0
    assert 0.15 <= time.monotonic() - t0 < 5
    raw_peer.send(b"\x93\x01\x00\x90")
    assert ch.dispatch(timeout=None) == 1
    with pytest.raises(ValueError):
        ch.dispatch(timeout=-1)
    ch.close()


def test_payload_buffer_protocol(sock_path):
    server, worker, w, engine, e = engine_and_worker("unix", sock_path, "v1")
    s = engine.send_invoke("x")
    data = os.urandom(100_000)
    engine.send_chunk(s, data)
    pump(worker, engine, until=lambda: any(x[0] == "chunk" for x in w.log))
    p = [x for x in w.log if x[0] == "chunk"][0][2]
    assert isinstance(p, sluice.Payload)
    m = memoryview(p)
    assert m.readonly and m.nbytes == len(data) and m.format == "B" and m.tobytes() == data
    assert bytes(p) == data and p.tobytes() == data and len(p) == len(data)
    assert p == data and p != data[:-1] and not (p != data)
    assert repr(p) == "<sluice.Payload of 100000 bytes>"
    import hashlib

    assert hashlib.sha256(p).digest() == hashlib.sha256(data).digest()
    with pytest.raises(TypeError):
        hash(p)
    with pytest.raises(TypeError):
        sluice.Payload()
    with pytest.raises(TypeError):
        memoryview(p)[0] = 1
    # Forwarded without a copy, and still valid after the channel is gone.
    worker.send_chunk(s, p)
    pump(worker, engine, until=lambda: any(x[0] == "chunk" for x in e.log))
    assert [x for x in e.log if x[0] == "chunk"][0][2] == data
    worker.close()
    engine.close()
    server.close()
    del worker
    assert bytes(m) == data
    # A lower threshold turns small chunks into payloads too.
    assert sluice.DEFAULT_COPY_THRESHOLD > 64


def test_copy_threshold(sock_path):
    server = sluice.Server(sock_path, copy_threshold=4)
    got = []
    worker = sluice.Channel(sock_path, copy_threshold=4, on_chunk=lambda s, d: got.append(d))
    engine = server.accept(timeout=10)
    assert worker.copy_threshold == engine.copy_threshold == 4
    s = engine.send_invoke("x")
    engine.send_chunk(s, b"abc")
    engine.send_chunk(s, b"abcd")
    pump(worker, until=lambda: len(got) == 2)
    assert type(got[0]) is bytes and isinstance(got[1], sluice.Payload)
    worker.copy_threshold = 1 << 30
    engine.send_chunk(s, b"abcd")
    pump(worker, until=lambda: len(got) == 3)
    assert type(got[2]) is bytes
    worker.close()
    engine.close()
    server.close()
