#!/usr/bin/env python3
"""Hostile peers against a real `sluice serve` process.

Each attack runs against the Locator and demo services of one `sluice serve`
while a well-behaved client calls `echo.ping` on its own connection the whole
time, and the server's resident memory is sampled from /proc. For every
attack the suite asserts:

* the server process is still running afterwards;
* its RSS stayed under the attack's bound (peak minus the RSS before it);
* every call of the well-behaved client succeeded (none failed or went
  unanswered for 10 s);
* the attacker got what the documented limit promises (a close, a refusal,
  or — for the late reader — every reply).

It prints one line per attack (bound, measured peak, the well-behaved
client's calls and p99 during it) and exits non-zero if any assertion failed.

    python3 tests/hostile/serve.py --sluice target/debug/sluice [--full]

`--full` runs the attacks at the sizes docs/RELIABILITY.md quotes (minutes);
the default is a short form for CI (well under a minute).
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

import msgpack

# Service frame ids (docs/PROTOCOL.md §7).
PING, RELAY = 1, 3
PUBLISH = 4
VALUE, ERROR, CLOSE = 0, 1, 2


class Serve:
    """A `sluice serve` on a free port, with the endpoints it prints."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", "0", "--verbosity", "error"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.services = {}
        self.lines = []
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = re.search(r"sluice: (\S+) is online at ([\d.]+):(\d+)", line)
            if m:
                self.services[m.group(1)] = (m.group(2), int(m.group(3)))
            m = re.search(r"locator listening on ([\d.]+):(\d+)", line)
            if m:
                self.services["locator"] = (m.group(1), int(m.group(2)))
            if "ready" in line or time.monotonic() > deadline:
                break
        if "echo" not in self.services or "locator" not in self.services:
            raise SystemExit("sluice serve did not start:\n" + "\n".join(self.lines))
        # Keep reading its output so that it never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            del self.lines[:-200]

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Conn:
    """One connection speaking v1 frames."""

    def __init__(self, addr, timeout=10.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=256 << 20)

    def send(self, *frames):
        self.sock.sendall(b"".join(msgpack.packb(f) for f in frames))

    def frame(self):
        """The next frame, or None when the server closed the connection."""
        while True:
            for f in self.unpacker:
                return f
            data = self.sock.recv(1 << 16)
            if not data:
                return None
            self.unpacker.feed(data)

    def closed_by_peer(self):
        """Whether the server closes the connection (any frames before are skipped)."""
        try:
            while self.frame() is not None:
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Sampler(threading.Thread):
    """The server's peak RSS while an attack runs."""

    def __init__(self, serve):
        super().__init__(daemon=True)
        self.serve, self.peak, self.stop = serve, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.serve.rss_mb())
            except OSError:
                return
            time.sleep(0.02)


class Legit(threading.Thread):
    """A well-behaved client: one echo.ping at a time on its own connection."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.stop = addr, threading.Event()
        self.latencies, self.failures = [], []

    def run(self):
        try:
            conn = Conn(self.addr, timeout=10.0)
        except OSError as e:
            self.failures.append(f"connect: {e}")
            return
        sid = 1
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                conn.send([sid, PING, ["legit"]])
                f = conn.frame()
            except OSError as e:
                self.failures.append(f"call: {e}")
                return
            if f is None or f[0] != sid or f[1] != VALUE:
                self.failures.append(f"reply: {f!r}")
                return
            self.latencies.append(time.perf_counter() - t)
            sid += 1
            time.sleep(0.002)
        conn.close()

    def p99_ms(self):
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(len(s) * 0.99))] * 1000


# ---------------------------------------------------------------------------
# Attacks. Each returns (passed, what the attacker saw).


def garbage(s, full):
    c = Conn(s.services["echo"])
    c.sock.sendall(b"\xc1" * 4096)
    return c.closed_by_peer(), "closed"


def huge_string(s, full):
    c = Conn(s.services["echo"])
    # [1, 1, [str32 of 4 GiB]]: declared, never sent.
    c.sock.sendall(b"\x93\x01\x01\x91\xdb\xff\xff\xff\xff" + b"x" * 1024)
    return c.closed_by_peer(), "closed"


def deep_nesting(s, full):
    c = Conn(s.services["echo"])
    c.sock.sendall(b"\x93\x01\x01" + b"\x91" * 100_000 + b"\xc0")
    f = c.frame()
    # Refused with [7, 2] "nested too deeply" (the connection stays) or closed.
    return f is None or (f[0] == 1 and f[1] == ERROR), "closed" if f is None else f"error {f[2][0]}"


def oversized_frame(s, full):
    c = Conn(s.services["echo"])
    # A 100 MiB bin argument: past the 64 MiB limit of service connections.
    c.sock.sendall(b"\x93\x01\x01\x91\xc6" + (100 << 20).to_bytes(4, "big") + b"\0" * 65536)
    return c.closed_by_peer(), "closed"


def nil_flood(s, full):
    """A frame of millions of nils to echo.ping: refused by count while decoding."""
    n = 20_000_000 if full else 4_000_000
    c = Conn(s.services["echo"])
    c.sock.sendall(b"\x93\x01\x01\xdd" + n.to_bytes(4, "big"))
    chunk = b"\xc0" * (1 << 20)
    sent = 0
    try:
        while sent < n:
            c.sock.sendall(chunk[: min(len(chunk), n - sent)])
            sent += len(chunk)
    except OSError:
        pass
    f = None
    try:
        f = c.frame()
    except OSError:
        pass
    ok = f is None or (f[0] == 1 and f[1] == ERROR)
    return ok, "closed" if f is None else f"error {f[2][0]}"


def open_streams(s, full):
    """relay streams opened and never closed: refused past max_sessions (65,536)."""
    n = 500_000 if full else 70_000
    c = Conn(s.services["echo"])
    batch = 10_000
    for start in range(1, n + 1, batch):
        c.sock.sendall(b"".join(msgpack.packb([sid, RELAY, []]) for sid in range(start, min(start + batch, n + 1))))
    # The refusals come back as errors on the sessions past the bound; the
    # last session's answer tells that all were read.
    refused, closed = 0, False
    c.sock.settimeout(10)
    while True:
        try:
            f = c.frame()
        except socket.timeout:
            break
        if f is None:
            closed = True
            break
        if f[1] == ERROR:
            refused += 1
            if f[0] == n:
                break
    return refused > 0 or closed, f"{refused} refused" + (", closed" if closed else "")


def late_reader(s, full):
    """Pipelined pings whose replies are read only after all are sent."""
    n = 1_000_000 if full else 100_000
    c = Conn(s.services["echo"], timeout=30)
    got = {"n": 0, "bad": 0}

    def read():
        time.sleep(1.0)
        try:
            while got["n"] + got["bad"] < n:
                f = c.frame()
                if f is None:
                    return
                if f[1] == VALUE:
                    got["n"] += 1
                else:
                    got["bad"] += 1
        except OSError:
            return

    r = threading.Thread(target=read, daemon=True)
    r.start()
    batch = 20_000
    for start in range(1, n + 1, batch):
        c.sock.sendall(b"".join(msgpack.packb([sid, PING, ["x" * 16]]) for sid in range(start, min(start + batch, n + 1))))
    r.join(120)
    return got["n"] == n, f"{got['n']}/{n} replies"


def publish_flood(s, full):
    """Registering names without end on one connection: refused past 64."""
    n = 10_000 if full else 1_000
    c = Conn(s.services["locator"])
    c.send(*([sid, PUBLISH, [f"flood{sid}", [["127.0.0.1", 1]]]] for sid in range(1, n + 1)))
    ok = refused = 0
    c.sock.settimeout(10)
    while ok + refused < n:
        f = c.frame()
        if f is None:
            break
        if f[1] == VALUE:
            ok += 1
        elif f[1] == ERROR:
            refused += 1
    # Someone else can still publish.
    other = Conn(s.services["locator"])
    other.send([1, PUBLISH, ["legit-name", [["127.0.0.1", 1]]]])
    g = other.frame()
    c.close()
    other.close()
    return ok <= 64 and refused == n - ok and g is not None and g[1] == VALUE, f"{ok} accepted, {refused} refused"


ATTACKS = [
    # name, function, RSS bound in MB (peak over the RSS before the attack)
    ("garbage bytes", garbage, 16),
    ("4 GiB declared string", huge_string, 16),
    ("100,000 levels of nesting", deep_nesting, 16),
    ("100 MiB frame (limit 64 MiB)", oversized_frame, 32),
    ("frame of millions of nils", nil_flood, 96),
    ("relay streams never closed", open_streams, 96),
    ("pipelined pings, late reader", late_reader, 160),
    ("publish flood on one connection", publish_flood, 32),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/debug/sluice", help="the sluice binary")
    ap.add_argument("--full", action="store_true", help="the sizes docs/RELIABILITY.md quotes")
    ap.add_argument("--only", help="run the attacks whose name contains this")
    args = ap.parse_args()
    serve = Serve(args.sluice)
    failed = []
    print(f"hostile: sluice serve pid {serve.proc.pid}, RSS {serve.rss_mb():.1f} MB at start ({'full' if args.full else 'short'} form)")
    print(f"{'attack':34} {'bound':>7} {'peak':>8} {'legit calls':>11} {'legit p99':>10}  attacker saw")
    try:
        for name, fn, bound in ATTACKS:
            if args.only and args.only not in name:
                continue
            before = serve.rss_mb()
            sampler, legit = Sampler(serve), Legit(serve.services["echo"])
            sampler.start()
            legit.start()
            time.sleep(0.05)
            try:
                passed, saw = fn(serve, args.full)
            except Exception as e:  # noqa: BLE001 - reported as the attack's failure
                passed, saw = False, f"{type(e).__name__}: {e}"
            time.sleep(0.2)
            legit.stop.set()
            legit.join(15)
            sampler.stop.set()
            sampler.join()
            grew = max(0.0, sampler.peak - before)
            problems = []
            if not passed:
                problems.append("the attacker did not get the documented answer")
            if not serve.alive():
                problems.append("the server died")
            if grew > bound:
                problems.append(f"RSS grew {grew:.0f} MB > {bound} MB")
            if legit.failures or not legit.latencies:
                problems.append(f"the well-behaved client failed: {legit.failures or 'no call completed'}")
            print(
                f"{name:34} {bound:>4} MB {grew:>5.1f} MB {len(legit.latencies):>11} {legit.p99_ms():>7.1f} ms  {saw}"
                + ("" if not problems else "  FAILED: " + "; ".join(problems)),
                flush=True,
            )
            if problems:
                failed.append(name)
            if not serve.alive():
                break
    finally:
        serve.stop()
    if failed:
        print(f"hostile: {len(failed)} attack(s) failed: {', '.join(failed)}")
        print("\n".join(serve.lines[-20:]))
        sys.exit(1)
    print("hostile: every attack held")


if __name__ == "__main__":
    main()
