"""The Python contenders of ``make bench``: one run of one workload.

    python contenders.py CONTENDER WORKLOAD NET COUNT --peer PATH/TO/sluice-bench

prints one JSON sample per line (two for ``rtt64``: p50 and p99), the form
``sluice-bench run`` prints for the Rust contenders. Contenders:

* ``sluice-py`` — the ``sluice`` package: ``on_chunk`` per chunk,
  ``send_chunk`` per chunk, a sluice echo server for round trips;
* ``sluice-py-batch`` — the receive workloads through ``on_chunks``, the
  batch callback (a run of chunks of one session per call);
* ``pure-py`` — the channel a pure-Python framework has: a socket, a
  ``msgpack.Unpacker`` fed by ``recv_into``, a handler call per chunk,
  ``msgpack.Packer`` frames written in 256 KiB batches;
* ``zmq`` — pyzmq (bundled libzmq): PUSH/PULL for the streaming
  workloads, REQ/REP for round trips; each message is the bare payload
  (ZeroMQ frames it). There is no session layer, so no worker load.

The peers of the streaming workloads and of the worker load are the Rust
``sluice-bench`` program (``feed``, ``sink``, ``engine``), the same for
every language; round trips go to an echo of the contender's own kind in a
second process (``--echo``), as two programs using one library would talk.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

SESSION = 7
RTT_WARMUP = 200
#: Processes this run started: ended when it ends, also on an error.
CHILDREN: list = []


def spawn(argv: list) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    CHILDREN.append(p)
    return p


class Peer:
    """A ``sluice-bench`` peer process: its first line is the address."""

    def __init__(self, argv: list) -> None:
        self.proc = spawn(argv)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError(f"peer {argv} did not start")

    def rest(self, timeout: float = 120) -> str:
        out = self.proc.stdout.read()
        self.proc.wait(timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"peer exited with {self.proc.returncode}")
        return out


class EchoProc:
    """This script in ``--echo`` mode for the contender; first line: address."""

    def __init__(self, contender: str, net: str) -> None:
        self.proc = spawn([sys.executable, __file__, "--echo", contender, net])
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("echo did not start")

    def stop(self) -> None:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tcp_addr(address: str) -> tuple:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def sock_connect(net: str, address: str) -> socket.socket:
    if net == "tcp":
        s = socket.create_connection(tcp_addr(address))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(address)
    return s


def sluice_channel(net: str, address: str, **kw):
    import sluice

    if net == "tcp":
        host, port = tcp_addr(address)
        return sluice.Channel(host, port, dialect=1, **kw)
    return sluice.Channel(address, dialect=1, **kw)


def socket_path(tag: str) -> str:
    return f"/tmp/sluice-bench-{os.getpid()}-{tag}.sock"


# ---------------------------------------------------------------------------
# sluice


def sluice_recv(peer: str, net: str, n: int, size: int, batch: bool = False) -> float:
    feeder = Peer([peer, "feed", net, str(size), str(n)])
    count = 0
    end = [0.0]

    def on_chunk(session: int, data) -> None:
        nonlocal count
        count += 1
        if count == n:
            end[0] = time.perf_counter()

    def on_chunks(session: int, chunks: list) -> None:
        nonlocal count
        for data in chunks:
            count += 1
            if count == n:
                end[0] = time.perf_counter()

    t0 = time.perf_counter()
    kw = {"on_chunks": on_chunks} if batch else {"on_chunk": on_chunk}
    ch = sluice_channel(net, feeder.address, **kw)
    ch.run()  # until the feeder's end of stream
    ch.close()
    feeder.rest()
    if count != n:
        raise AssertionError(f"{count} chunks of {n}")
    return end[0] - t0


def sluice_send(peer: str, net: str, n: int) -> float:
    import sluice

    sink = Peer([peer, "sink", net, str(n * 70)])
    ended = []
    ch = sluice_channel(net, sink.address, profile="modern", on_socket_error=lambda e: ended.append(time.perf_counter()))
    payload = b"\x5a" * 64
    t0 = time.perf_counter()
    send = ch.send_chunk
    i = 0
    while i < n:
        try:
            send(SESSION, payload)
            i += 1
        except sluice.WouldBlock:
            ch.dispatch(timeout=1)
    while not ended:
        ch.dispatch(timeout=10)
    ch.close()
    sink.rest()
    return ended[0] - t0


def sluice_echo(net: str) -> None:
    import sluice

    if net == "tcp":
        server = sluice.Server("127.0.0.1", 0, dialect=1, role=None)
        print(f"127.0.0.1:{server.port}", flush=True)
    else:
        path = socket_path("echo")
        server = sluice.Server(path, dialect=1, role=None)
        print(path, flush=True)
    ch = server.accept(timeout=30)
    ch.on_frame = lambda session, ty, args: ch.send_frame(session, ty, args)
    ch.run()
    server.close()


def sluice_rtt(net: str, n: int) -> list:
    echo = EchoProc("sluice-py", net)
    got = []
    ch = sluice_channel(net, echo.address, role=None, on_frame=lambda s, t, a: got.append(1))
    payload = b"\x5a" * 64
    out = []
    perf = time.perf_counter
    for i in range(n + RTT_WARMUP):
        t = perf()
        ch.send_chunk(SESSION, payload)
        while not got:
            ch.dispatch(timeout=10)
        dt = perf() - t
        got.clear()
        if i >= RTT_WARMUP:
            out.append(dt * 1e6)
    ch.close()
    echo.stop()
    return out


def sluice_mixed(peer: str, net: str, waves: int) -> float:
    engine = Peer([peer, "engine", net, str(waves)])
    ch = None

    def on_chunk(session: int, data) -> None:
        ch.send_chunk(session, data)

    def on_choke(session: int) -> None:
        ch.send_choke(session)

    ch = sluice_channel(net, engine.address, profile="modern", high_watermark=1 << 30, low_watermark=1 << 20,
                        on_chunk=on_chunk, on_choke=on_choke)
    ch.run()
    ch.close()
    return float(engine.rest().split()[0])


# ---------------------------------------------------------------------------
# The pure-Python channel


class PureChannel:
    """A minimal v1 worker channel as a pure-Python framework writes it:
    frames from a ``msgpack.Unpacker``, sessions tracked in a set, one
    handler call per message."""

    def __init__(self, sock: socket.socket, on_invoke, on_chunk, on_choke) -> None:
        import msgpack

        self.sock = sock
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
        self.packer = msgpack.Packer(use_bin_type=True)
        self.sessions: set = set()
        self.on_invoke, self.on_chunk, self.on_choke = on_invoke, on_chunk, on_choke
        self.buf = bytearray(256 << 10)
        self.out = bytearray()

    def read_once(self) -> bool:
        """One recv and the messages in it; False at end of stream."""
        k = self.sock.recv_into(self.buf)
        if not k:
            return False
        self.unpacker.feed(memoryview(self.buf)[:k])
        sessions = self.sessions
        for frame in self.unpacker:
            session, ty, args = frame[0], frame[1], frame[2]
            if session in sessions:
                if ty == 0:
                    self.on_chunk(session, args[0])
                elif ty == 2:
                    sessions.discard(session)
                    self.on_choke(session)
            elif ty == 0:
                sessions.add(session)
                self.on_invoke(session, args[0])
        return True

    def write(self, session: int, ty: int, args: list) -> None:
        self.out += self.packer.pack([session, ty, args])
        if len(self.out) >= 256 << 10:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out = bytearray()


def pure_recv(peer: str, net: str, n: int, size: int) -> float:
    feeder = Peer([peer, "feed", net, str(size), str(n)])
    count = 0
    end = 0.0

    def on_chunk(session: int, data) -> None:
        nonlocal count, end
        count += 1
        if count == n:
            end = time.perf_counter()

    t0 = time.perf_counter()
    ch = PureChannel(sock_connect(net, feeder.address), lambda s, e: None, on_chunk, lambda s: None)
    while count < n and ch.read_once():
        pass
    ch.sock.close()
    feeder.rest()
    if count != n:
        raise AssertionError(f"{count} chunks of {n}")
    return end - t0


def pure_send(peer: str, net: str, n: int) -> float:
    sink = Peer([peer, "sink", net, str(n * 70)])
    ch = PureChannel(sock_connect(net, sink.address), None, None, None)
    payload = b"\x5a" * 64
    t0 = time.perf_counter()
    write = ch.write
    for _ in range(n):
        write(SESSION, 0, [payload])
    ch.flush()
    while ch.sock.recv(4096):
        pass
    end = time.perf_counter()
    ch.sock.close()
    sink.rest()
    return end - t0


def pure_echo(net: str) -> None:
    import msgpack

    # Listening before the address is announced: the client connects at once.
    if net == "tcp":
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        print(f"127.0.0.1:{lst.getsockname()[1]}", flush=True)
    else:
        path = socket_path("echo")
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        lst.listen(1)
        print(path, flush=True)
    s, _ = lst.accept()
    if net == "tcp":
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    unpacker = msgpack.Unpacker(raw=False)
    packer = msgpack.Packer(use_bin_type=True)
    buf = bytearray(64 << 10)
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        unpacker.feed(memoryview(buf)[:k])
        out = b"".join(packer.pack(f) for f in unpacker)
        if out:
            s.sendall(out)
    s.close()
    lst.close()
    if net == "unix":
        os.unlink(path)


def pure_rtt(net: str, n: int) -> list:
    import msgpack

    echo = EchoProc("pure-py", net)
    s = sock_connect(net, echo.address)
    unpacker = msgpack.Unpacker(raw=False)
    packer = msgpack.Packer(use_bin_type=True)
    payload = b"\x5a" * 64
    buf = bytearray(64 << 10)
    out = []
    perf = time.perf_counter
    for i in range(n + RTT_WARMUP):
        t = perf()
        s.sendall(packer.pack([SESSION, 0, [payload]]))
        frame = None
        while frame is None:
            k = s.recv_into(buf)
            if not k:
                raise ConnectionError("the echo closed the connection")
            unpacker.feed(memoryview(buf)[:k])
            for frame in unpacker:
                break
        dt = perf() - t
        if i >= RTT_WARMUP:
            out.append(dt * 1e6)
    s.close()
    echo.stop()
    return out


def pure_mixed(peer: str, net: str, waves: int) -> float:
    engine = Peer([peer, "engine", net, str(waves)])
    ch = None

    def on_chunk(session: int, data) -> None:
        ch.write(session, 0, [data])

    def on_choke(session: int) -> None:
        ch.write(session, 2, [])

    ch = PureChannel(sock_connect(net, engine.address), lambda s, e: None, on_chunk, on_choke)
    while ch.read_once():
        ch.flush()
    ch.sock.close()
    return float(engine.rest().split()[0])


# ---------------------------------------------------------------------------
# ZeroMQ


def zmq_endpoint(net: str, tag: str) -> str:
    return "tcp://127.0.0.1:*" if net == "tcp" else f"ipc://{socket_path(tag)}"


def zmq_pusher(address: str, n: int, size: int, done_address: str) -> None:
    """The sending process of the PUSH/PULL pipeline; with a done address
    it waits for the receiver's word before exiting."""
    import zmq

    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(address)
    payload = b"\x5a" * size
    send = push.send
    for _ in range(n):
        send(payload, copy=size >= 16384)
    push.close(linger=-1)
    ctx.term()


def zmq_puller(address: str, n: int) -> None:
    """The receiving process of the send workload: counts ``n`` messages,
    then says so on ``address`` + a PUSH back."""
    import zmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(address.split(" ")[0])
    done = ctx.socket(zmq.PUSH)
    done.connect(address.split(" ")[1])
    recv = pull.recv
    for _ in range(n):
        recv()
    done.send(b"done")
    done.close(linger=-1)
    pull.close()
    ctx.term()


def zmq_recv(net: str, n: int, size: int) -> float:
    import zmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(zmq_endpoint(net, "pull"))
    address = pull.getsockopt(zmq.LAST_ENDPOINT).decode()
    proc = spawn([sys.executable, __file__, "--zmq-push", address, str(n), str(size)])
    # Small messages are cheapest copied into bytes, large ones as frames.
    copy = size < 16384
    recv = pull.recv
    recv(copy=copy)
    t0 = time.perf_counter()
    for _ in range(n - 1):
        recv(copy=copy)
    dt = time.perf_counter() - t0
    proc.wait(60)
    pull.close()
    ctx.term()
    # The first message starts the clock: n - 1 messages were timed.
    return dt * n / (n - 1)


def zmq_send(net: str, n: int) -> float:
    import zmq

    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.bind(zmq_endpoint(net, "push"))
    done = ctx.socket(zmq.PULL)
    done.bind(zmq_endpoint(net, "done"))
    a = push.getsockopt(zmq.LAST_ENDPOINT).decode()
    b = done.getsockopt(zmq.LAST_ENDPOINT).decode()
    proc = spawn([sys.executable, __file__, "--zmq-pull", f"{a} {b}", str(n)])
    # Wait until the puller is connected so that the clock runs on sending only.
    push.send(b"\x5a" * 64)
    payload = b"\x5a" * 64
    send = push.send
    t0 = time.perf_counter()
    for _ in range(n - 1):
        send(payload)
    done.recv()
    dt = time.perf_counter() - t0
    proc.wait(60)
    push.close()
    done.close()
    ctx.term()
    return dt * n / (n - 1)


def zmq_echo(net: str) -> None:
    import zmq

    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.bind(zmq_endpoint(net, "rep"))
    print(rep.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
    while True:
        m = rep.recv(copy=False)
        if len(m) == 0:
            rep.send(b"")
            break
        rep.send(m, copy=False)
    rep.close()
    ctx.term()


def zmq_rtt(net: str, n: int) -> list:
    import zmq

    echo = EchoProc("zmq", net)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.connect(echo.address)
    payload = b"\x5a" * 64
    out = []
    perf = time.perf_counter
    for i in range(n + RTT_WARMUP):
        t = perf()
        req.send(payload)
        req.recv(copy=False)
        dt = perf() - t
        if i >= RTT_WARMUP:
            out.append(dt * 1e6)
    req.send(b"")
    req.recv()
    req.close()
    ctx.term()
    echo.stop()
    return out


# ---------------------------------------------------------------------------


def measure(contender: str, workload: str, net: str, n: int, peer: str) -> list:
    def sample(metric: str, value: float, count: int, seconds: float) -> dict:
        return {"contender": contender, "workload": workload, "net": net, "metric": metric, "value": value,
                "count": count, "seconds": seconds}

    if workload in ("recv64", "recv64k"):
        size = 64 if workload == "recv64" else 65536
        fn = {"sluice-py": lambda: sluice_recv(peer, net, n, size),
              "sluice-py-batch": lambda: sluice_recv(peer, net, n, size, batch=True),
              "pure-py": lambda: pure_recv(peer, net, n, size),
              "zmq": lambda: zmq_recv(net, n, size)}[contender]
        secs = fn()
        if size == 64:
            return [sample("msgs_per_s", n / secs, n, secs)]
        return [sample("gb_per_s", n * size / secs / 1e9, n, secs)]
    if workload == "send64":
        fn = {"sluice-py": lambda: sluice_send(peer, net, n), "pure-py": lambda: pure_send(peer, net, n),
              "zmq": lambda: zmq_send(net, n)}[contender]
        secs = fn()
        return [sample("msgs_per_s", n / secs, n, secs)]
    if workload == "rtt64":
        fn = {"sluice-py": sluice_rtt, "pure-py": pure_rtt, "zmq": zmq_rtt}[contender]
        lat = sorted(fn(net, n))
        total = sum(lat) / 1e6
        pct = lambda p: lat[int((len(lat) - 1) * p)]  # noqa: E731
        return [sample("p50_us", pct(0.5), n, total), sample("p99_us", pct(0.99), n, total)]
    if workload == "mixed":
        fn = {"sluice-py": sluice_mixed, "pure-py": pure_mixed}.get(contender)
        if fn is None:
            return []
        secs = fn(peer, net, n)
        return [sample("sessions_per_s", n * 1000 / secs, n * 1000, secs)]
    raise SystemExit(f"unknown workload {workload}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--echo":
        {"sluice-py": sluice_echo, "pure-py": pure_echo, "zmq": zmq_echo}[sys.argv[2]](sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--zmq-push":
        zmq_pusher(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--zmq-pull":
        zmq_puller(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("contender", choices=["sluice-py", "sluice-py-batch", "pure-py", "zmq"])
    ap.add_argument("workload", choices=["recv64", "recv64k", "send64", "rtt64", "mixed"])
    ap.add_argument("net", choices=["tcp", "unix"])
    ap.add_argument("count", type=int)
    ap.add_argument("--peer", required=True, help="the sluice-bench program")
    a = ap.parse_args()
    try:
        for s in measure(a.contender, a.workload, a.net, a.count, a.peer):
            print(json.dumps(s), flush=True)
    finally:
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
