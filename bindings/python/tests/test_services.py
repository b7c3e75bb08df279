"""Cocaine services over real sockets: an in-process LocatorServer, the
demo services, and services defined here in Python (attached to the
Locator or hosted on their own endpoint), called through sluice clients."""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List

import pytest

import sluice

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "service.py"


def eventually(cond: Callable[[], Any], what: str = "condition", limit: float = 20.0) -> None:
    """Waits for ``cond()`` (things that happen on other threads)."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached")
        time.sleep(0.01)


def dead_endpoint() -> str:
    """A TCP port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


@pytest.fixture
def server():
    srv = sluice.LocatorServer()
    yield srv
    srv.close()


@pytest.fixture
def demo(server):
    server.add_demo(["echo", "math", "kv"])
    return server


def example_def(name: str = "pyx") -> sluice.ServiceDef:
    svc = sluice.ServiceDef(name, 3)

    @svc.primitive("ping")
    def ping(*args):
        return args

    @svc.streaming("count")
    def count(out, n):
        for i in range(n):
            out.write(i)
        out.close()

    @svc.primitive("fail")
    def fail():
        raise sluice.ServiceError(42, 7, "failed on request")

    @svc.primitive("boom")
    def boom(x):
        return 1 // x

    @svc.primitive("none")
    def none():
        return None

    @svc.primitive("unencodable")
    def unencodable():
        return object()

    return svc


# --- resolve and the demo services ------------------------------------------


def test_resolve_gives_endpoints_version_and_graph(demo):
    loc = demo.locator()
    r = loc.resolve("echo")
    assert r.name == "echo"
    assert r.version == 1
    assert len(r.endpoints) == 1
    host, port = r.endpoints[0]
    assert host == "127.0.0.1" and port > 0
    assert r.methods == ["echo", "ping", "fail", "relay"]
    g = r.graph
    assert g[1] == ("ping", {}, {0: ["value", {}], 1: ["error", {}]})
    assert g[0][2] == {0: ["write", None], 1: ["error", {}], 2: ["close", {}]}
    # relay: both directions streaming
    assert g[3][1] == g[3][2]
    text = str(r)
    assert text.startswith("service echo (protocol version 1)\n")
    assert "relay" in text and f"127.0.0.1:{port}" in text


def test_locator_itself_resolves(server):
    r = server.locator().resolve("locator")
    assert "resolve" in r.methods and "attach" in r.methods


def test_primitive_and_streaming_demo_calls(demo):
    loc = demo.locator()
    math = loc.service("math")
    assert math.state == "closed"
    assert math.call("add", 2, 3).value() == 5
    assert math.state == "connected"
    assert math.info.name == "math" and math.info.methods == ["add", "sub", "mul", "div"]
    assert math.call("mul", 1.5, 4).value() == 6.0
    echo = loc.service("echo")
    replies = echo.call("echo", 1, "two", [3, {"k": None}]).collect()
    assert [(r.name, r.args, r.last) for r in replies] == [
        ("write", [1], False),
        ("write", ["two"], False),
        ("write", [[3, {"k": None}]], False),
        ("close", [], True),
    ]
    assert [tuple(r) for r in echo.call("echo", True)] == [("write", [True]), ("close", [])]
    assert echo.call("ping", 1, 2).value() == (1, 2)
    assert echo.call("ping").value() is None
    kv = loc.service("kv")
    assert kv.call("set", "k", {"a": [1, 2]}).value() is None
    assert kv.call("get", "k").value() == {"a": [1, 2]}
    assert kv.call("keys").value() == ["k"]
    math.close()
    assert math.state == "closed"
    assert math.call("sub", 10, 4).value() == 6  # connects again


def test_iteration_one_reply_at_a_time(demo):
    call = demo.locator().service("echo").call("echo", "a", "b")
    r = call.next(timeout=10)
    assert (r.name, r.args) == ("write", ["a"])
    assert [(r.name, r.args) for r in call] == [("write", ["b"]), ("close", [])]
    assert call.next() is None
    with pytest.raises(sluice.Error, match="ended without a value"):
        call.value()
    with pytest.raises(sluice.Error, match="expected a value, got 'write'"):
        demo.locator().service("echo").call("echo", 1).value()


def test_timeouts_leave_the_call_usable(server):
    kept: List[sluice.Responder] = []
    svc_def = sluice.ServiceDef("slow")
    svc_def.streaming("wait", lambda out: kept.append(out))
    loc = server.locator()
    with sluice.attach(loc, svc_def):
        call = loc.service("slow").call("wait")
        with pytest.raises(sluice.Timeout):
            call.value(timeout=0.05)
        eventually(lambda: kept, "handler ran")
        kept[0].write("a")
        with pytest.raises(sluice.Timeout):
            call.collect(timeout=0.2)  # took "a", then timed out: "a" is kept
        kept[0].write("b")
        with pytest.raises(sluice.Timeout):
            call.collect(timeout=0.2)
        kept[0].close()
        assert [(r.name, r.args) for r in call.collect(timeout=10)] == [("write", ["a"]), ("write", ["b"]), ("close", [])]
        assert call.next() is None


def test_relay_sends_on_a_streaming_tx(demo):
    call = demo.locator().service("echo").call("relay")
    call.send("write", "one")
    assert tuple(call.next(timeout=10)) == ("write", ["one"])
    call.send("write", b"two")
    assert call.next(timeout=10).args == ["two"]  # the compat profile: bytes travel as str
    call.send("close")
    assert [(r.name, r.last) for r in call.collect()] == [("close", True)]
    with pytest.raises(sluice.Error):
        call.send("write", "late")


# --- errors -------------------------------------------------------------------


def test_service_error_carries_category_code_message(demo):
    echo = demo.locator().service("echo")
    with pytest.raises(sluice.ServiceError) as ei:
        echo.call("fail", 9, "on purpose").value()
    e = ei.value
    assert (e.category, e.code, e.message) == (42, 9, "on purpose")
    assert str(e) == "[42, 9] on purpose"
    with pytest.raises(sluice.ServiceError) as ei:
        demo.locator().service("math").call("div", 1, 0).value()
    assert (ei.value.category, ei.value.code) == (42, 1)
    # the error ends an iteration too
    call = demo.locator().service("kv").call("get", "missing")
    with pytest.raises(sluice.ServiceError) as ei:
        list(call)
    assert ei.value.code == 2
    assert call.next() is None


def test_unknown_method_and_unknown_service(demo):
    loc = demo.locator()
    with pytest.raises(sluice.UnknownMethod) as ei:
        loc.service("echo").call("nope", 1)
    assert (ei.value.service, ei.value.method) == ("echo", "nope")
    assert "has no method 'nope'" in str(ei.value)
    assert isinstance(ei.value, LookupError)
    with pytest.raises(sluice.NotFound) as ei:
        loc.resolve("nothing-here")
    assert ei.value.name == "nothing-here"
    with pytest.raises(sluice.NotFound):
        loc.service("nothing-here").call("x")


def test_no_locator_is_a_connection_error():
    loc = sluice.Locator([dead_endpoint()])
    with pytest.raises(sluice.ConnectionError) as ei:
        loc.resolve("echo")
    assert ei.value.errno == errno.ECONNREFUSED
    assert "cannot connect to the locator" in str(ei.value)
    svc = loc.service("echo")
    with pytest.raises(sluice.ConnectionError):
        svc.call("ping")
    assert svc.state == "error" and svc.info is None


def test_locator_failover_first_endpoint_dead(demo):
    loc = sluice.Locator([dead_endpoint(), ("127.0.0.1", demo.port)])
    assert loc.endpoints[1] == demo.endpoint
    assert loc.resolve("math").name == "math"
    assert loc.service("math").call("add", 1, 1).value() == 2
    # a tuple of endpoints, a single (host, port), a single string
    assert sluice.Locator((dead_endpoint(), dead_endpoint(), demo.endpoint)).resolve("kv").name == "kv"
    assert sluice.Locator(("127.0.0.1", demo.port)).endpoints == [demo.endpoint]
    assert sluice.Locator(demo.endpoint).resolve("echo").version == 1
    assert sluice.Locator().endpoints == ["localhost:10053"]


def test_bad_arguments_are_type_and_value_errors(demo):
    with pytest.raises(ValueError):
        sluice.Locator("no-port-here")
    with pytest.raises(ValueError):
        sluice.Locator([])
    with pytest.raises(TypeError):
        demo.locator().service("echo").call("ping", object())
    with pytest.raises(ValueError):
        demo.add_demo(["nope"])
    svc = sluice.ServiceDef("twice")
    svc.primitive("m", lambda: 1)
    with pytest.raises(ValueError, match="already has a method 'm'"):
        svc.primitive("m", lambda: 2)
    with pytest.raises(TypeError):
        svc.streaming("s", 42)
    assert svc.methods == ["m"] and svc.name == "twice" and svc.version == 1
    assert svc.graph == {0: ("m", {}, {0: ["value", {}], 1: ["error", {}]})}


# --- Python services ------------------------------------------------------------


def test_attached_python_service(server):
    loc = server.locator()
    att = sluice.attach(loc, example_def("pyx"))
    assert att.live and att.name == "pyx"
    r = loc.resolve("pyx")
    assert r.version == 3
    assert r.methods == ["ping", "count", "fail", "boom", "none", "unencodable"]
    assert r.endpoints == att.endpoints
    svc = loc.service("pyx")
    assert svc.call("ping", 1, "a", [None, 2.5], {"k": b"v"}).value() == (1, "a", [None, 2.5], {"k": "v"})
    assert svc.call("ping", 7).value() == 7
    assert svc.call("none").value() is None
    assert [(r.name, r.args) for r in svc.call("count", 3).collect()] == [
        ("write", [0]),
        ("write", [1]),
        ("write", [2]),
        ("close", []),
    ]
    assert svc.call("count", 0).collect()[0].name == "close"
    with pytest.raises(sluice.ServiceError) as ei:
        svc.call("fail").value()
    assert (ei.value.category, ei.value.code, ei.value.message) == (42, 7, "failed on request")
    att.detach()
    assert not att.live


def test_handler_exceptions_become_service_errors(server):
    loc = server.locator()
    with sluice.attach(loc, example_def("raiser")):
        svc = loc.service("raiser")
        with pytest.raises(sluice.ServiceError) as ei:
            svc.call("boom", 0).value()
        assert (ei.value.category, ei.value.code) == (7, 7)
        assert ei.value.message.startswith("ZeroDivisionError: ")
        with pytest.raises(sluice.ServiceError) as ei:
            svc.call("unencodable").value()
        assert ei.value.message.startswith("TypeError: cannot encode object")
        with pytest.raises(sluice.ServiceError) as ei:
            svc.call("count").collect()  # count() lacks its argument
        assert ei.value.message.startswith("TypeError: ")
        # many failing calls in a row: the service keeps answering
        for i in range(1, 50):
            with pytest.raises(sluice.ServiceError):
                svc.call("boom", 0).value()
            assert svc.call("boom", i).value() == 1 // i


def test_streaming_handler_raising_after_writes(server):
    svc_def = sluice.ServiceDef("partial")

    @svc_def.streaming("half")
    def half(out, n):
        out.write("first")
        raise RuntimeError(f"stopped at {n}")

    loc = server.locator()
    with sluice.attach(loc, svc_def):
        call = loc.service("partial").call("half", 3)
        assert call.next(timeout=10).args == ["first"]
        with pytest.raises(sluice.ServiceError) as ei:
            call.next(timeout=10)
        assert ei.value.message == "RuntimeError: stopped at 3"


def test_responder_kept_and_answered_later_and_timeout(server):
    kept: List[sluice.Responder] = []
    svc_def = sluice.ServiceDef("later")

    @svc_def.streaming("wait")
    def wait(out):
        kept.append(out)

    @svc_def.streaming("drop")
    def drop(out):
        pass  # the responder is dropped unanswered

    loc = server.locator()
    with sluice.attach(loc, svc_def):
        svc = loc.service("later")
        call = svc.call("wait")
        with pytest.raises(sluice.Timeout) as ei:
            call.next(timeout=0.2)
        assert isinstance(ei.value, TimeoutError) and ei.value.errno == errno.ETIMEDOUT
        eventually(lambda: kept, "handler ran")
        out = kept[0]
        assert out.method == "wait" and not out.done
        threading.Thread(target=lambda: (out.write("late"), out.close())).start()
        assert [(r.name, r.args) for r in call.collect(timeout=10)] == [("write", ["late"]), ("close", [])]
        assert out.done
        with pytest.raises(sluice.Closed):
            out.write("after close")
        with pytest.raises(sluice.ServiceError) as ei:
            svc.call("drop").collect()
        assert (ei.value.category, ei.value.code) == (7, 7)
        assert "ended without a reply" in ei.value.message


def test_handler_making_blocking_calls_does_not_deadlock(demo):
    loc = demo.locator()
    svc_def = sluice.ServiceDef("nested")

    @svc_def.primitive("sum_via_math")
    def sum_via_math(a, b):
        return loc.service("math").call("add", a, b).value(timeout=30)

    @svc_def.primitive("depth")
    def depth(n):
        # calls its own service again, n levels deep: each level waits
        # (blocking, GIL released) for the next one
        if n == 0:
            return 0
        return loc.service("nested").call("depth", n - 1).value(timeout=30) + 1

    with sluice.attach(loc, svc_def):
        svc = loc.service("nested")
        assert svc.call("sum_via_math", 20, 22).value() == 42
        assert svc.call("depth", 8).value() == 8
        # many callers at once, each making nested calls
        results: List[Any] = []

        def caller(i: int) -> None:
            c = loc.service("nested")
            results.append((i, c.call("depth", 3).value(timeout=60), c.call("sum_via_math", i, 1).value(timeout=60)))

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [(i, 3, i + 1) for i in range(16)]


def test_disconnected_while_a_call_is_open(server):
    kept: List[sluice.Responder] = []
    svc_def = sluice.ServiceDef("hang")

    @svc_def.streaming("wait")
    def wait(out):
        kept.append(out)

    hosted = sluice.host(svc_def)
    server.registry.add(hosted)
    svc = server.locator().service("hang")
    call = svc.call("wait")
    eventually(lambda: kept and hosted.connections == 1, "call arrived")
    hosted.close()
    with pytest.raises(sluice.Disconnected) as ei:
        call.collect(timeout=10)
    assert isinstance(ei.value, sluice.ConnectionError)
    assert ei.value.errno in (errno.ECONNRESET, errno.ESHUTDOWN, errno.EPIPE)
    eventually(lambda: svc.state == "closed", "service closed")


def test_hosted_service_published_and_discarded(server):
    hosted = sluice.host(example_def("pub"), "127.0.0.1:0")
    assert hosted.address[0] == "127.0.0.1" and hosted.address[1] > 0
    assert hosted.endpoints == [hosted.address]
    loc = server.locator()
    pub = hosted.publish(loc)
    assert pub.live and pub.name == "pub"
    assert loc.resolve("pub").endpoints == [hosted.address]
    assert loc.service("pub").call("ping", "x").value() == "x"
    entry = server.registry.get("pub")
    assert entry.online and entry.origin.startswith("published by ")
    pub.discard()
    eventually(lambda: not server.registry.get("pub").online, "offline")
    with pytest.raises(sluice.NotFound):
        loc.resolve("pub")
    hosted.close()


def test_duplicate_attach_is_refused(server):
    loc = server.locator()
    with sluice.attach(loc, example_def("dup")):
        with pytest.raises(sluice.ServiceError) as ei:
            sluice.attach(loc, example_def("dup"))
        assert ei.value.category == 10


# --- the Logger ------------------------------------------------------------------


def test_logger_verbosity_filters(server):
    records: List[tuple] = []
    server.add_demo(["logging"], verbosity="warning", on_log=lambda *r: records.append(r))
    log = sluice.Logger(server.locator(), "app/pytest")
    assert log.source == "app/pytest"
    assert log.verbosity() == 2
    assert log.info("not sent") is False
    assert log.debug("not sent either") is False
    assert log.error("sent", {"user": "x", "n": 3}) is True
    assert log.emit("warning", "also sent", [("k", [1, 2])]) is True
    assert log.emit(3, "by number") is True
    eventually(lambda: len(records) == 3, "three records")
    assert records == [
        ("error", "app/pytest", "sent", {"user": "x", "n": 3}),
        ("warning", "app/pytest", "also sent", {"k": [1, 2]}),
        ("error", "app/pytest", "by number", {}),
    ]
    with pytest.raises(ValueError):
        log.emit("loud", "x")


# --- the registry ----------------------------------------------------------------


def test_registry_lists_attached_service_online_then_offline_then_back(server):
    changes: List[tuple] = []
    reg = server.registry
    reg.on_change(lambda e: changes.append((e.name, e.online)))
    names = {e.name for e in reg.list()}
    assert names == {"locator"}
    loc = server.locator()
    att = sluice.attach(loc, example_def("reg"))
    e = reg.get("reg")
    assert e.online and e.version == 3 and e.origin.startswith("attached by 127.0.0.1:")
    assert e.endpoints == att.endpoints
    assert e.graph[0][0] == "ping"
    assert [x.name for x in reg.list()] == ["locator", "reg"]
    eventually(lambda: changes == [("reg", True)], "online notified")
    att.detach()
    eventually(lambda: changes == [("reg", True), ("reg", False)], "offline notified")
    assert not reg.get("reg").online
    with pytest.raises(sluice.NotFound):
        loc.resolve("reg")
    att2 = sluice.attach(loc, example_def("reg"))
    eventually(lambda: changes[-1] == ("reg", True), "back online")
    assert loc.service("reg").call("ping", 1).value() == 1
    att2.detach()
    assert reg.get("missing") is None


def test_registry_offline_when_the_attaching_process_dies(server):
    changes: List[tuple] = []
    server.registry.on_change(lambda e: changes.append((e.name, e.online)))
    p = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--locator", server.endpoint, "--name", "victim"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert p.stdout.readline() == "ready victim\n"
        assert server.registry.get("victim").online
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        eventually(lambda: not server.registry.get("victim").online, "offline after the connection dropped")
        eventually(lambda: changes == [("victim", True), ("victim", False)], "changes notified")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()


def test_registry_invoke_remote_invocation(server):
    loc = server.locator()
    with sluice.attach(loc, example_def("remote")):
        reg = server.registry
        assert reg.invoke("remote", "ping", 1, "b").value() == (1, "b")
        assert [r.args for r in reg.invoke("remote", "count", 2).collect()] == [[0], [1], []]
        with pytest.raises(sluice.ServiceError) as ei:
            reg.invoke("remote", "fail").value()
        assert ei.value.code == 7
        with pytest.raises(sluice.UnknownMethod):
            reg.invoke("remote", "nope")
    eventually(lambda: not server.registry.get("remote").online, "offline after detach")
    with pytest.raises(sluice.NotFound):
        server.registry.invoke("remote", "ping")


def test_on_change_callback_errors_do_not_stop_notifications(server):
    seen: List[str] = []
    hooks: List[Any] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: hooks.append(u.exc_value)
    try:
        server.registry.on_change(lambda e: 1 / 0)
        server.registry.on_change(lambda e: seen.append(e.name))
        loc = server.locator()
        with sluice.attach(loc, example_def("noisy")):
            eventually(lambda: seen == ["noisy"], "second callback ran")
        eventually(lambda: seen == ["noisy", "noisy"], "offline too")
        assert all(isinstance(h, ZeroDivisionError) for h in hooks) and len(hooks) == 2
    finally:
        sys.unraisablehook = old


# --- the demo service program --------------------------------------------------------


def test_example_service_program(server):
    p = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--locator", server.endpoint, "--name", "prog"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert p.stdout.readline() == "ready prog\n"
        svc = server.locator().service("prog")
        assert server.locator().resolve("prog").version == 1
        assert svc.call("ping", 1, "two", [3]).value() == (1, "two", [3])
        assert svc.call("ping").value() is None
        assert [(r.name, r.args) for r in svc.call("count", 4).collect()] == [
            ("write", [0]), ("write", [1]), ("write", [2]), ("write", [3]), ("close", []),
        ]
        with pytest.raises(sluice.ServiceError) as ei:
            svc.call("fail").value()
        assert (ei.value.category, ei.value.code, ei.value.message) == (42, 7, "failed on request")
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        assert p.stdout.read() == ""
        assert p.stderr.read() == ""
        eventually(lambda: not server.registry.get("prog").online, "offline after exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--name", "x"], "usage: service --locator HOST:PORT --name NAME"),
        (["--locator", "127.0.0.1:1", "--name", "x", "--what"], "unknown argument '--what'"),
        (["--locator", "no-port", "--name", "x"], "bad locator endpoint 'no-port'"),
        (["--locator", None, "--name", "x"], "cannot attach to"),
    ],
)
def test_example_service_program_errors(args, needle):
    args = [a if a is not None else dead_endpoint() for a in args]
    r = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_handler_threads_are_bounded_and_the_queue_too(server):
    """More calls than handler threads wait for one; past MAX_QUEUED_CALLS
    waiting, calls are refused at once with an error (memory stays bounded)."""
    gate = threading.Event()
    svc_def = sluice.ServiceDef("gated")

    @svc_def.primitive("wait")
    def wait(i):
        gate.wait(60)
        return i

    loc = server.locator()
    with sluice.attach(loc, svc_def):
        svc = loc.service("gated")
        n = sluice.MAX_HANDLER_THREADS + sluice.MAX_QUEUED_CALLS + 20
        calls = [svc.call("wait", i) for i in range(n)]
        # the last ones are refused while the gate is shut
        refused = []
        for i in range(n - 1, -1, -1):
            try:
                calls[i].value(timeout=0.5 if not refused else 5)
            except sluice.ServiceError as e:
                assert "too many calls waiting for a handler" in e.message
                refused.append(i)
            except sluice.Timeout:
                break  # a call that is waiting for a handler: the refused ones are behind us
        assert len(refused) >= 20
        gate.set()
        answered = 0
        for i in range(n):
            if i in refused:
                continue
            assert calls[i].value(timeout=120) == i
            answered += 1
        assert answered + len(refused) == n
        assert answered >= sluice.MAX_QUEUED_CALLS


def _forked_child(endpoint: str, conn) -> None:
    svc_def = sluice.ServiceDef("forked")
    svc_def.primitive("pid", lambda: os.getpid())
    with sluice.attach(sluice.Locator([endpoint]), svc_def):
        conn.send("ready")
        conn.recv()  # stay until told


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_handlers_work_in_a_forked_child(server):
    import multiprocessing

    loc = server.locator()
    # handler threads exist in this process before the fork
    with sluice.attach(loc, example_def("parent")):
        assert loc.service("parent").call("ping", 1).value() == 1
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    child = ctx.Process(target=_forked_child, args=(server.endpoint, there))
    child.start()
    try:
        assert here.poll(60) and here.recv() == "ready"
        assert loc.service("forked").call("pid").value(timeout=60) == child.pid
        here.send("exit")
        child.join(60)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join()
