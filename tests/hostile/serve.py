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
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

import msgpack

# Service frame ids (docs/PROTOCOL.md §7).
RELAY = 3
# The descriptor limit `sluice serve` runs with here (a common default).
FD_LIMIT = 1024
PUBLISH = 4
VALUE, ERROR, CLOSE = 0, 1, 2


class Serve:
    """A `sluice serve` on a free port, with the endpoints it prints."""

    def __init__(self, binary):
        # The usual descriptor limit, so that the connection cap is reached.
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

        self.proc = subprocess.Popen(
            [binary, "serve", "--port", "0", "--verbosity", "error"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=limit,
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
        return rss_mb(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Target:
    """What an attack goes at: a service's address, the id of its `ping`
    method, and the processes whose memory counts."""

    def __init__(self, label, addr, ping, pids):
        self.label, self.addr, self.ping, self.pids = label, addr, ping, pids


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def resolve(serve, name):
    """A service's first endpoint and its method ids by name, via the Locator."""
    c = Conn(serve.services["locator"])
    c.send([1, 0, [name]])
    f = c.frame()
    c.close()
    if f is None or f[1] != VALUE:
        raise SystemExit(f"resolve {name}: {f!r}")
    endpoints, _version, graph = f[2]
    host, port = endpoints[0]
    return (host, port), {m[0]: int(i) for i, m in graph.items()}


class Program:
    """A service program attached to the Locator (`COMMAND --locator HOST:PORT
    --name NAME`, printing `ready NAME`), as `make demo-services` runs them."""

    def __init__(self, serve, label, command):
        host, port = serve.services["locator"]
        self.name = f"hostile-{label}"
        self.proc = subprocess.Popen(
            command.split() + ["--locator", f"{host}:{port}", "--name", self.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"{command}: did not attach ({line!r})")

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
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
    """How far the RSS of the target's processes rose over its level before
    the attack (the largest rise of any of them)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.stop = pids, threading.Event()
        self.before = {p: rss_mb(p) for p in pids}
        self.grew = 0.0

    def run(self):
        while not self.stop.is_set():
            try:
                for p in self.pids:
                    self.grew = max(self.grew, rss_mb(p) - self.before[p])
            except OSError:
                return
            time.sleep(0.02)


class Legit(threading.Thread):
    """A well-behaved client: one echo.ping at a time on its own connection."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.addr, self.ping, self.stop = target.addr, target.ping, threading.Event()
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
                conn.send([sid, self.ping, ["legit"]])
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


def garbage(t, full):
    c = Conn(t.addr)
    c.sock.sendall(b"\xc1" * 4096)
    return c.closed_by_peer(), "closed"


def huge_string(t, full):
    c = Conn(t.addr)
    # [1, 1, [str32 of 4 GiB]]: declared, never sent.
    c.sock.sendall(b"\x93\x01\x01\x91\xdb\xff\xff\xff\xff" + b"x" * 1024)
    return c.closed_by_peer(), "closed"


def deep_nesting(t, full):
    c = Conn(t.addr)
    c.sock.sendall(b"\x93\x01\x01" + b"\x91" * 100_000 + b"\xc0")
    f = c.frame()
    # Refused with [7, 2] "nested too deeply" (the connection stays) or closed.
    return f is None or (f[0] == 1 and f[1] == ERROR), "closed" if f is None else f"error {f[2][0]}"


def oversized_frame(t, full):
    c = Conn(t.addr)
    # A 100 MiB bin argument: past the 64 MiB limit of service connections.
    c.sock.sendall(b"\x93\x01\x01\x91\xc6" + (100 << 20).to_bytes(4, "big") + b"\0" * 65536)
    return c.closed_by_peer(), "closed"


def nil_flood(t, full):
    """A frame of millions of nils to ping: refused by count while decoding."""
    n = 20_000_000 if full else 4_000_000
    c = Conn(t.addr)
    c.sock.sendall(b"\x93\x01" + bytes([t.ping]) + b"\xdd" + n.to_bytes(4, "big"))
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


def open_streams(t, full):
    """relay streams opened and never closed: refused past max_sessions (65,536)."""
    n = 500_000 if full else 70_000
    c = Conn(t.addr)
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


def late_reader(t, full):
    """Pipelined pings whose replies are read only after all are sent."""
    n = (1_000_000 if full else 100_000) // (1 if t.label == "serve" else 10)
    c = Conn(t.addr, timeout=30)
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
        c.sock.sendall(b"".join(msgpack.packb([sid, t.ping, ["x" * 16]]) for sid in range(start, min(start + batch, n + 1))))
    r.join(120)
    return got["n"] == n, f"{got['n']}/{n} replies"


def big_graph(t, full):
    """publish with a method graph of 30,000 methods with 100-byte names
    (about 3.4 MB): refused by the graph bound before the Locator keeps it."""
    graph = {i: [f"{i:0>100}", None, {}] for i in range(30_000)}
    c = Conn(t.locator)
    c.send([1, PUBLISH, ["big-graph", [["127.0.0.1", 1]], [1, graph]]])
    f = c.frame()
    c.close()
    ok = f is not None and f[1] == ERROR and "larger than" in str(f[2][1])
    return ok, "closed" if f is None else f"error {f[2][0]} {str(f[2][1])[:40]}" if f[1] == ERROR else f"accepted {f!r:.60}"


def idle_connections(t, full):
    """More idle connections than the server has descriptors: the ones past
    its connection cap are closed at once; once they go, new callers are
    served (the well-behaved caller, connected before, is served throughout)."""
    n = FD_LIMIT + 100
    held, closed = [], 0
    for _ in range(n):
        try:
            held.append(socket.create_connection(t.addr, timeout=10))
        except OSError:
            closed += 1
    # Those past the cap read end-of-file at once.
    time.sleep(0.5)
    sel = selectors.DefaultSelector()
    for c in held:
        sel.register(c, selectors.EVENT_READ)
    ready = [key.fileobj for key, _ in sel.select(1.0)]
    sel.close()
    for c in ready:
        try:
            if c.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
    for c in held:
        c.close()
    time.sleep(0.3)
    # A new caller is served again.
    c = Conn(t.addr)
    c.send([1, t.ping, ["after"]])
    f = c.frame()
    c.close()
    served = f is not None and f[1] == VALUE
    return closed > 0 and served, f"{closed} of {n} closed at once, new caller served: {served}"


def publish_flood(t, full):
    """Registering names without end on one connection: refused past 64."""
    n = 10_000 if full else 1_000
    c = Conn(t.locator)
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
    other = Conn(t.locator)
    other.send([1, PUBLISH, ["legit-name", [["127.0.0.1", 1]]]])
    g = other.frame()
    c.close()
    other.close()
    return ok <= 64 and refused == n - ok and g is not None and g[1] == VALUE, f"{ok} accepted, {refused} refused"


ATTACKS = [
    # name, function, RSS bound in MB (rise over the RSS before the attack),
    # whether it runs against the programs' services too (not only serve's echo)
    ("garbage bytes", garbage, 16, True),
    ("4 GiB declared string", huge_string, 16, True),
    ("100,000 levels of nesting", deep_nesting, 16, True),
    ("100 MiB frame (limit 64 MiB)", oversized_frame, 32, True),
    ("frame of millions of nils", nil_flood, 96, True),
    ("relay streams never closed", open_streams, 160, False),
    ("pipelined pings, late reader", late_reader, 160, True),
    ("publish flood on one connection", publish_flood, 32, False),
    ("publish with a 3.4 MB method graph", big_graph, 64, False),
    (f"{FD_LIMIT + 100} idle connections ({FD_LIMIT} fds)", idle_connections, 32, False),
]


def run(target, full, only, failed):
    print(f"== {target.label}: {target.addr[0]}:{target.addr[1]}, pids {target.pids}")
    print(f"{'attack':34} {'bound':>7} {'rise':>8} {'legit calls':>11} {'legit p99':>10}  attacker saw")
    for name, fn, bound, anywhere in ATTACKS:
        if (only and only not in name) or (target.label != "serve" and not anywhere):
            continue
        sampler, legit = Sampler(target.pids), Legit(target)
        sampler.start()
        legit.start()
        time.sleep(0.05)
        try:
            passed, saw = fn(target, full)
        except Exception as e:  # noqa: BLE001 - reported as the attack's failure
            passed, saw = False, f"{type(e).__name__}: {e}"
        time.sleep(0.2)
        legit.stop.set()
        legit.join(15)
        sampler.stop.set()
        sampler.join()
        problems = []
        if not passed:
            problems.append("the attacker did not get the documented answer")
        dead = [p for p in target.pids if not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z"]
        if dead:
            problems.append(f"process {dead} died")
        if sampler.grew > bound:
            problems.append(f"RSS rose {sampler.grew:.0f} MB > {bound} MB")
        if legit.failures or not legit.latencies:
            problems.append(f"the well-behaved client failed: {legit.failures or 'no call completed'}")
        print(
            f"{name:34} {bound:>4} MB {sampler.grew:>5.1f} MB {len(legit.latencies):>11} {legit.p99_ms():>7.1f} ms  {saw}"
            + ("" if not problems else "  FAILED: " + "; ".join(problems)),
            flush=True,
        )
        if problems:
            failed.append(f"{target.label}: {name}")
        if dead:
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/debug/sluice", help="the sluice binary")
    ap.add_argument("--full", action="store_true", help="the sizes docs/RELIABILITY.md quotes")
    ap.add_argument("--only", help="run the attacks whose name contains this")
    ap.add_argument("programs", nargs="*", metavar="LABEL=COMMAND", help="service programs to attack too (as make demo-services runs them)")
    args = ap.parse_args()
    serve = Serve(args.sluice)
    failed, programs = [], []
    print(f"hostile: sluice serve pid {serve.proc.pid} ({'full' if args.full else 'short'} form)")
    try:
        addr, ids = resolve(serve, "echo")
        t = Target("serve", addr, ids["ping"], [serve.proc.pid])
        t.locator = serve.services["locator"]
        run(t, args.full, args.only, failed)
        for spec in args.programs:
            label, _, command = spec.partition("=")
            prog = Program(serve, label, command)
            programs.append(prog)
            addr, ids = resolve(serve, prog.name)
            # Calls to an attached service pass through serve to the program.
            run(Target(label, addr, ids["ping"], [serve.proc.pid, prog.proc.pid]), args.full, args.only, failed)
    finally:
        for p in programs:
            p.stop()
        serve.stop()
    if failed:
        print(f"hostile: {len(failed)} attack(s) failed: {', '.join(failed)}")
        print("\n".join(line for line in serve.lines[-40:] if " went o" not in line))
        sys.exit(1)
    print("hostile: every attack held")


if __name__ == "__main__":
    main()
