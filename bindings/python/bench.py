"""Receive-side benchmark: sluice against the pure-Python channel it replaces.

One run over TCP loopback measures, for two standard streams (64-byte chunks
and 64 KiB chunks, v1 frames ``[2, 0, [<bin payload>]]`` after an invoke):

* baseline  — what the Cocaine Python framework does: a ``recv_into`` loop
  feeding ``msgpack.Unpacker``, iterating the frames and taking each
  chunk's payload (``n += len(payload)``, inline: the cheapest form);
* baseline+call — the same with a handler call per chunk;
* on_chunk  — sluice, one ``on_chunk(session, data)`` callback per chunk;
* on_chunks — sluice, the batch callback ``on_chunks(session, [data...])``;
* events    — sluice, pull-style ``Channel.events()`` objects.

A separate sender process listens, accepts one connection per run and
writes the pre-encoded stream with ``sendall``; each receiver connects and
counts chunks and payload bytes until end of stream (the counts are
checked). The receivers take turns, round after round; figures are
medians of ``--runs`` rounds and ratios are against the inline baseline.

    python bench.py [--runs 5] [--small 1000000] [--large 20000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Optional

SMALL = 64
LARGE = 64 << 10


# ---------------------------------------------------------------------------
# The stream


def _bin(n: int) -> bytes:
    if n < 256:
        return b"\xc4" + bytes([n])
    if n < 65536:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def frame_chunk(payload: bytes) -> bytes:
    # [2, 0, [payload]]: v1 write on channel 2
    return b"\x93\x02\x00\x91" + _bin(len(payload)) + payload


INVOKE = b"\x93\x02\x00\x91\xa5bench"  # [2, 0, ["bench"]] opens channel 2
CLOSE = b"\x93\x02\x02\x90"  # [2, 2, []]


def sender(port_file: str) -> None:
    """The sender process. A sluice channel only reads, so each run is
    announced on a control connection ("COUNT SIZE\\n", answered "ok");
    the next data connection then gets that stream: the invoke, COUNT
    chunks of SIZE bytes written with sendall in blocks of about 256 KiB,
    the close, end of stream. "quit" ends the process."""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(lst.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while True:
        ctl, _ = lst.accept()
        line = b""
        while not line.endswith(b"\n"):
            d = ctl.recv(64)
            if not d:
                break
            line += d
        if not line.strip() or line.strip() == b"quit":
            ctl.close()
            return
        count, size = map(int, line.split())
        ctl.sendall(b"ok\n")
        data, _ = lst.accept()
        data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = frame_chunk(bytes(range(256)) * (size // 256) + bytes(size % 256))
        per_block = max(1, (256 << 10) // len(frame))
        block = frame * per_block
        data.sendall(INVOKE)
        left = count
        while left >= per_block:
            data.sendall(block)
            left -= per_block
        if left:
            data.sendall(frame * left)
        data.sendall(CLOSE)
        data.close()
        ctl.close()


class Sender:
    def __init__(self) -> None:
        self.port_file = f"/tmp/sluice-bench-{os.getpid()}.port"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.port_file])
        deadline = time.time() + 30
        while not os.path.exists(self.port_file):
            if time.time() > deadline:
                raise RuntimeError("sender did not start")
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read())
        os.unlink(self.port_file)

    def arm(self, count: int, size: int) -> None:
        """Tells the sender what the next data connection gets."""
        self.ctl = socket.create_connection(("127.0.0.1", self.port))
        self.ctl.sendall(f"{count} {size}\n".encode())
        assert self.ctl.recv(16).startswith(b"ok")

    def done(self) -> None:
        self.ctl.close()

    def stop(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as c:
            c.sendall(b"quit\n")
        self.proc.wait(10)


# ---------------------------------------------------------------------------
# Receivers: each returns (chunks, payload bytes, seconds)


def recv_baseline(port: int, call: bool) -> tuple:
    import msgpack

    sock = socket.create_connection(("127.0.0.1", port))
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
    buf = bytearray(256 << 10)
    view = memoryview(buf)
    n = nbytes = 0
    got = [0, 0]

    def on_chunk(session: int, data: bytes) -> None:
        got[0] += 1
        got[1] += len(data)

    t0 = time.perf_counter()
    while True:
        k = sock.recv_into(buf)
        if not k:
            break
        unpacker.feed(view[:k])
        if call:
            for channel, ty, args in unpacker:
                if ty == 0 and channel == 2:
                    on_chunk(channel, args[0])
        else:
            for channel, ty, args in unpacker:
                if ty == 0 and channel == 2:
                    n += 1
                    nbytes += len(args[0])
    dt = time.perf_counter() - t0
    sock.close()
    if call:
        n, nbytes = got
    # the invoke is type 0 on channel 2 too
    return n - 1, nbytes - 5, dt


def recv_sluice(port: int, mode: str, copy_threshold: Optional[int] = None) -> tuple:
    import sluice

    n = nbytes = 0

    def on_chunk(session: int, data: bytes) -> None:
        nonlocal n, nbytes
        n += 1
        nbytes += len(data)

    def on_chunks(session: int, chunks: list) -> None:
        nonlocal n, nbytes
        n += len(chunks)
        for d in chunks:
            nbytes += len(d)

    start = [0.0]

    def on_connect() -> None:
        start[0] = time.perf_counter()

    if mode == "events":
        from sluice.events import Chunk, SocketError

        ch = sluice.Channel("127.0.0.1", port, dialect=1)
        t0 = time.perf_counter()
        done = False
        while not done:
            for ev in ch.events(timeout=None):
                if type(ev) is Chunk:
                    n += 1
                    nbytes += len(ev.data)
                elif type(ev) is SocketError:
                    done = True
        dt = time.perf_counter() - t0
        ch.close()
        return n, nbytes, dt
    kw = {"on_chunks": on_chunks} if mode == "on_chunks" else {"on_chunk": on_chunk}
    ch = sluice.Channel("127.0.0.1", port, dialect=1, on_connect=on_connect, copy_threshold=copy_threshold, **kw)
    t0 = time.perf_counter()
    c0 = time.thread_time()
    ch.run()
    t1 = time.perf_counter()
    LAST_CPU[0] = time.thread_time() - c0
    ch.close()
    return n, nbytes, t1 - (start[0] or t0)


#: CPU seconds of the Python thread in the last sluice run (delivery cost).
LAST_CPU = [0.0]


VARIANTS = {
    "baseline": lambda p: recv_baseline(p, call=False),
    "baseline+call": lambda p: recv_baseline(p, call=True),
    "on_chunk": lambda p: recv_sluice(p, "on_chunk"),
    "on_chunks": lambda p: recv_sluice(p, "on_chunks"),
    "events": lambda p: recv_sluice(p, "events"),
}


def measure_once(snd: Sender, variant: str, count: int, size: int) -> tuple:
    snd.arm(count, size)
    n, nbytes, dt = VARIANTS[variant](snd.port)
    snd.done()
    if n != count or nbytes != count * size:
        raise AssertionError(f"{variant}: got {n} chunks / {nbytes} bytes, expected {count} / {count * size}")
    return count / dt, count * size / dt


def threshold_sweep(snd: Sender, runs: int, total: int) -> None:
    """on_chunks throughput per chunk size with every chunk delivered as
    bytes (a copy) against every chunk as a zero-copy Payload: where the
    Payload starts to pay is the copy_threshold."""
    print(f"copy threshold: on_chunks, bytes (copied) vs Payload (zero-copy); {total >> 20} MiB per run, median of {runs}")
    print(f"{'chunk':>8}{'bytes GB/s':>12}{'Payload GB/s':>14}{'ratio':>8}{'bytes ns/chunk':>16}{'Payload ns/chunk':>18}")
    for size in (512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 256 << 10):
        count = max(1000, total // size)
        res = {"bytes": [], "payload": []}
        cpu = {"bytes": [], "payload": []}
        for _ in range(runs):
            for kind, thr in (("bytes", 1 << 40), ("payload", 0)):
                snd.arm(count, size)
                n, nbytes, dt = recv_sluice(snd.port, "on_chunks", copy_threshold=thr)
                snd.done()
                assert n == count and nbytes == count * size
                res[kind].append(nbytes / dt)
                cpu[kind].append(LAST_CPU[0] / count * 1e9)
        b, p = statistics.median(res["bytes"]), statistics.median(res["payload"])
        cb, cp = statistics.median(cpu["bytes"]), statistics.median(cpu["payload"])
        print(f"{size:>8}{b / 1e9:>12.2f}{p / 1e9:>14.2f}{p / b:>7.2f}x{cb:>16,.0f}{cp:>18,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--small", type=int, default=1_000_000, help="64-byte chunks per run")
    ap.add_argument("--large", type=int, default=20_000, help="64 KiB chunks per run")
    ap.add_argument("--quick", action="store_true", help="3 runs of a tenth of the messages")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threshold-sweep", action="store_true", help="measure bytes vs Payload per chunk size instead")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        sender(a.serve)
        return
    if a.quick:
        a.runs, a.small, a.large = 3, a.small // 10, a.large // 10
    import msgpack

    import sluice

    if a.threshold_sweep:
        snd = Sender()
        try:
            threshold_sweep(snd, a.runs, 256 << 20 if not a.quick else 32 << 20)
        finally:
            snd.stop()
        return
    variants = a.variants.split(",")
    print(f"sluice {sluice.__version__}, msgpack {msgpack.version}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; copy_threshold {sluice.DEFAULT_COPY_THRESHOLD}, batch {sluice.DEFAULT_BATCH}")
    print(f"TCP loopback, v1 chunks; median of {a.runs} runs\n")
    snd = Sender()
    results = {}
    try:
        for label, count, size in (("64 B chunks", a.small, SMALL), ("64 KiB chunks", a.large, LARGE)):
            # Round-robin: every round runs each receiver once, so a change
            # in the machine's load affects all of them alike.
            rates: dict = {v: [] for v in variants}
            for _ in range(a.runs):
                for v in variants:
                    rates[v].append(measure_once(snd, v, count, size))
            for v in variants:
                results[(label, v)] = (statistics.median(r[0] for r in rates[v]), statistics.median(r[1] for r in rates[v]))
    finally:
        snd.stop()
    print(f"{'stream':<15}{'receiver':<15}{'msgs/s':>14}{'GB/s':>9}{'vs baseline':>13}")
    for label in ("64 B chunks", "64 KiB chunks"):
        base = results.get((label, "baseline"))
        for v in variants:
            mps, bps = results[(label, v)]
            ratio = f"{mps / base[0]:.2f}x" if base else "-"
            print(f"{label:<15}{v:<15}{mps:>14,.0f}{bps / 1e9:>9.2f}{ratio:>13}")
        print()


if __name__ == "__main__":
    main()
