"""A service provided over a Locator connection (the Python version of the
demo service program; the Rust, C and Node ones follow the same contract).

    usage: service.py --locator HOST:PORT --name NAME

Attaches the service NAME (version 1) to the Locator with the methods
``ping(args...)`` (answers ``value(args...)``), ``count(n)`` (writes ``[0]``
… ``[n-1]``, then closes) and ``fail()`` (answers ``error([42, 7], "failed
on request")``); prints ``ready NAME`` once attached, and stays until its
stdin reaches end of file, then detaches and exits 0. Errors (no Locator,
bad arguments): one line on stderr, exit 1.
"""

from __future__ import annotations

import sys
from typing import Any, List, NoReturn, Tuple

import sluice

USAGE = "usage: service --locator HOST:PORT --name NAME"


def fail(message: str) -> NoReturn:
    print(f"service: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse(argv: List[str]) -> Tuple[str, str]:
    locator = name = None
    it = iter(argv)
    for arg in it:
        if arg in ("--locator", "--name"):
            value = next(it, None)
            if value is None:
                fail(f"{arg} needs a value ({USAGE})")
            if arg == "--locator":
                locator = value
            else:
                name = value
        else:
            fail(f"unknown argument '{arg}' ({USAGE})")
    if locator is None or name is None:
        fail(USAGE)
    return locator, name


def definition(name: str) -> sluice.ServiceDef:
    svc = sluice.ServiceDef(name, 1)

    @svc.primitive("ping")
    def ping(*args: Any) -> Tuple[Any, ...]:
        return args  # a tuple: value(args...) unchanged

    @svc.streaming("count")
    def count(out: sluice.Responder, n: int = 0, *_: Any) -> None:
        for i in range(max(int(n), 0)):
            out.write(i)
        out.close()

    @svc.primitive("fail")
    def fail_(*_: Any) -> None:
        raise sluice.ServiceError(42, 7, "failed on request")

    return svc


def main() -> None:
    endpoint, name = parse(sys.argv[1:])
    try:
        locator = sluice.Locator([endpoint])
    except (TypeError, ValueError) as e:
        fail(f"bad locator endpoint '{endpoint}': {e}")
    try:
        attached = sluice.attach(locator, definition(name))
    except sluice.Error as e:
        fail(f"cannot attach to {endpoint}: {e}")
    print(f"ready {name}", flush=True)
    try:
        sys.stdin.buffer.read()
    except KeyboardInterrupt:
        pass
    attached.detach()


if __name__ == "__main__":
    main()
