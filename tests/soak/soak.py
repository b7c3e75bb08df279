#!/usr/bin/env python3
"""Soak through the Python binding: churns connections, sessions and
reconnects through a sluice.Server and sluice.Channel workers in this
process, sampling RSS and open descriptors once a second at the end of a
cycle. Fails if, after the warm-up, RSS drifts by more than the bound or
descriptors by more than 4.

    python3 tests/soak/soak.py SECONDS [RSS_BOUND_KIB]

Each cycle: 8 workers connect and handshake; each engine channel invokes 4
sessions (3 chunks and a choke each), the worker echoes and chokes back,
the engine closes. Every fourth cycle the engine aborts at the handshake
and the worker reconnects once.
"""

import gc
import os
import sys
import time

import sluice
from sluice.events import Chunk, Choke, Handshake, Invoke, SocketError

WORKERS, SESSIONS, CHUNKS = 8, 4, 3
T = 30.0


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds():
    return len(os.listdir("/proc/self/fd"))


_left = {}


def until(ch, pred):
    """Takes events until one matches; returns it and the ones before (the
    rest of that batch waits for the next call)."""
    seen = []
    pending = _left.setdefault(id(ch), [])
    deadline = time.monotonic() + T
    while True:
        if not pending:
            pending.extend(ch.events(timeout=1.0))
        while pending:
            ev = pending.pop(0)
            seen.append(ev)
            if pred(ev):
                return seen
        if time.monotonic() > deadline:
            raise SystemExit("soak: waited too long; got %r" % seen[-5:])


def forget(ch):
    _left.pop(id(ch), None)


def conversation(server, reset):
    stats = {"connections": 0, "sessions": 0, "reconnects": 0}
    workers = [sluice.Channel("127.0.0.1", server.port, dialect="v1") for _ in range(WORKERS)]
    engines = [server.accept(timeout=T) for _ in range(WORKERS)]
    for w in workers:
        w.send_handshake("soak")
    if reset:
        for e in engines:
            until(e, lambda ev: isinstance(ev, Handshake))
            e.abort()
            forget(e)
        for w in workers:
            until(w, lambda ev: isinstance(ev, SocketError))
            w.close()
            forget(w)
        stats["reconnects"] += WORKERS
        stats["connections"] += WORKERS
        workers = [sluice.Channel("127.0.0.1", server.port, dialect="v1") for _ in range(WORKERS)]
        engines = [server.accept(timeout=T) for _ in range(WORKERS)]
        for w in workers:
            w.send_handshake("soak+")
    chunk = b"\x07" * 1024
    for e in engines:
        until(e, lambda ev: isinstance(ev, Handshake))
        for _ in range(SESSIONS):
            s = e.send_invoke("echo")
            for _ in range(CHUNKS):
                e.send_chunk(s, chunk)
            e.send_choke(s)
    for w in workers:
        chokes = 0
        while chokes < SESSIONS:
            for ev in until(w, lambda ev: isinstance(ev, (Chunk, Choke))):
                if isinstance(ev, Chunk):
                    w.send_chunk(ev.session, ev.data)
                elif isinstance(ev, Choke):
                    w.send_choke(ev.session)
                    chokes += 1
    for e in engines:
        chokes = 0
        while chokes < SESSIONS:
            chokes += sum(isinstance(ev, Choke) for ev in until(e, lambda ev: isinstance(ev, Choke)))
        stats["sessions"] += chokes
        e.close()
        forget(e)
    for w in workers:
        until(w, lambda ev: isinstance(ev, SocketError))
        w.close()
        forget(w)
    stats["connections"] += WORKERS
    return stats


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    bound = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
    warmup = min(max(seconds / 5, 5), seconds / 2)
    server = sluice.Server("127.0.0.1", 0, dialect="v1")
    totals = {"connections": 0, "sessions": 0, "reconnects": 0}
    samples = []
    start = time.monotonic()
    nxt = start
    cycles = 0
    print("soak python: %.0f s, warm-up %.0f s" % (seconds, warmup), flush=True)
    while time.monotonic() - start < seconds:
        for k, v in conversation(server, cycles % 4 == 3).items():
            totals[k] += v
        cycles += 1
        gc.collect()
        if time.monotonic() >= nxt:
            t = time.monotonic() - start
            s = (t, rss_kib(), open_fds())
            samples.append(s)
            print("soak-sample lang=python t=%.1f rss_kib=%d fds=%d cycles=%d connections=%d sessions=%d reconnects=%d"
                  % (t, s[1], s[2], cycles, totals["connections"], totals["sessions"], totals["reconnects"]), flush=True)
            nxt += 1
    server.close()
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 2:
        raise SystemExit("too few samples after the warm-up: run longer")
    k = max(len(after) // 4, 1)
    first, last = after[:k], after[-k:]
    r0, r1 = sum(s[1] for s in first) // k, sum(s[1] for s in last) // k
    f0, f1 = min(s[2] for s in first), min(s[2] for s in last)
    ok = r1 - r0 < bound and abs(f1 - f0) <= 4
    print("soak-summary lang=python seconds=%.0f cycles=%d connections=%d sessions=%d reconnects=%d rss_start_kib=%d "
          "rss_end_kib=%d rss_drift_kib=%d rss_bound_kib=%d fds_start=%d fds_end=%d fd_drift=%d result=%s"
          % (seconds, cycles, totals["connections"], totals["sessions"], totals["reconnects"], r0, r1, r1 - r0, bound,
             f0, f1, f1 - f0, "ok" if ok else "failed"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
