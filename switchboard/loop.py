"""The event loop the hub's long-running processes (`serve`, `worker`, `demo`) run on.

uvloop by default where it is installed (every platform but Windows): the hub spends a
large share of each message in the event loop itself — waking tasks, reading and writing
sockets — and uvloop does that work in C (`docs/benchmarks.md`, intake). Short CLI
commands keep asyncio's own loop. `SWITCHBOARD_EVENT_LOOP=asyncio` turns it off, for
debugging with asyncio's own tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A fresh loop of the kind the settings name (`uvloop` or `asyncio`)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], kind: str) -> T:
    """`asyncio.run` on a loop of that kind."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        return runner.run(main)
