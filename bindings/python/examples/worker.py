#!/usr/bin/env python3
"""An echo worker, started by an engine with the runtime's arguments:

    worker.py --app NAME --endpoint PATH --protocol 1 --uuid UUID [--locator HOST:PORT]

It connects and handshakes, echoes every chunk of every session back,
closes each session when the engine closes its side (an engine error is
answered with an error), answers the engine's terminate with its own and
exits 0. It exits 1 when the connection is lost otherwise (refused, the
engine went away, or the engine fell silent and the worker disowned
itself), and 2 on bad arguments.
"""

from __future__ import annotations

import sys

import sluice


def main(argv: list[str]) -> int:
    status = 1

    def on_invoke(stream: sluice.WorkerStream, event: str) -> None:
        pass  # every event is an echo; the chunks follow

    def on_chunk(session: int, data: bytes | sluice.Payload) -> None:
        worker.stream(session).write(data)  # echo (a Payload is sent without a copy)

    def on_choke(session: int) -> None:
        worker.stream(session).close()

    def on_error(session: int, category: int | None, code: int, message: str | None) -> None:
        worker.stream(session).error(code, f"engine failed the session: {message}")

    def on_terminate(code: int, reason: str) -> None:
        nonlocal status
        print(f"worker: terminate {code} {reason!r}", file=sys.stderr)
        status = 0
        worker.terminate(code, "worker shut down")  # no callback runs after this

    def on_disown() -> None:
        print("worker: the engine is silent: disowned", file=sys.stderr)

    def on_disconnect(errno: int, sessions: list[int]) -> None:
        print(f"worker: disconnected, errno {errno}, open sessions {sessions}", file=sys.stderr)

    try:
        worker = sluice.Worker.from_args(
            argv,
            on_invoke=on_invoke,
            on_chunk=on_chunk,
            on_choke=on_choke,
            on_error=on_error,
            on_terminate=on_terminate,
            on_disown=on_disown,
            on_disconnect=on_disconnect,
        )
    except sluice.BadArguments as e:
        print(f"worker: {e}", file=sys.stderr)
        print(__doc__, file=sys.stderr)
        return 2
    with worker:
        worker.run()  # until terminate or the end of the connection
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
