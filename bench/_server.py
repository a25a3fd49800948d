"""The hub under test, in its own process, for `bench.intake`.

    python -m bench._server '{"database_url": ..., "redis_url": ..., ...}'

Serves `create_app(Settings(...))` with aiohttp's AppRunner on 127.0.0.1, port 0, prints
one line `BENCH-READY {"port": N, "pid": P}` on stdout, and stops cleanly on SIGTERM,
SIGINT or when its stdin closes (so it never outlives the benchmark that started it).

The widget socket's per-socket anti-abuse limits (settings `widget_send_limit`, 20
messages per 10 s, and `widget_frame_limit`, 60 frames per 10 s) would cap one socket at
2 messages/s; with `"lift_socket_limits": true` (the default) this hub is configured
with them raised, so the benchmark measures the intake path rather than the limiter.

With `"cprofile_dir": DIR`, SIGUSR1 starts cProfile on the event loop's thread (timed by
that thread's CPU clock, so time the hub spends preempted by other processes is not
counted) and SIGUSR2 stops it and writes `DIR/cprofile-N.prof` (N = 1, 2, ...), so the
benchmark can profile exactly its timed parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web


async def serve(config: dict[str, Any]) -> None:
    from switchboard.app import create_app
    from switchboard.settings import Settings

    lifted = bool(config.get("lift_socket_limits", True))
    ceiling = 10**9 if lifted else None

    var_dir = Path(config.get("var_dir") or tempfile.mkdtemp(prefix="sb-bench-var-"))
    settings = Settings(
        database_url=config["database_url"],
        redis_url=config.get("redis_url"),
        secret_key=config["secret_key"],
        var_dir=var_dir,
        public_url="http://127.0.0.1:8080",
        redis_prefix=config.get("redis_prefix", "switchboard:"),
        run_workers=True,
    )
    if ceiling is not None:
        settings = settings.with_overrides(widget_send_limit=ceiling, widget_frame_limit=ceiling)
    # Channel settings for `bench.channels` (tokens, fake API URLs), passed through as is.
    settings = settings.with_overrides(**config.get("overrides", {}))
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    cprofile_dir = config.get("cprofile_dir")
    if cprofile_dir:
        _install_cprofile(loop, Path(cprofile_dir))

    def _stdin_closed() -> None:
        with contextlib.suppress(OSError):
            if not os.read(sys.stdin.fileno(), 4096):
                stop.set()

    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(sys.stdin.fileno(), _stdin_closed)

    ready = {"port": port, "pid": os.getpid(), "socket_limits_lifted": lifted}
    print("BENCH-READY " + json.dumps(ready), flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(sys.stdin.fileno())
        await runner.cleanup()


def _install_cprofile(loop: asyncio.AbstractEventLoop, directory: Path) -> None:
    """SIGUSR1 starts a profile of the loop's thread, SIGUSR2 stops and writes it."""
    state: dict[str, Any] = {"profile": None, "count": 0}

    def start() -> None:
        if state["profile"] is None:
            profile = cProfile.Profile(time.thread_time)
            state["profile"] = profile
            profile.enable()

    def stop() -> None:
        profile = state["profile"]
        if profile is None:
            return
        profile.disable()
        state["profile"] = None
        state["count"] += 1
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"cprofile-{state['count']}.prof"
        profile.dump_stats(str(target) + ".part")
        os.replace(str(target) + ".part", target)  # appears whole or not at all

    loop.add_signal_handler(signal.SIGUSR1, start)
    loop.add_signal_handler(signal.SIGUSR2, stop)


def main() -> None:
    config = json.loads(sys.argv[1])
    logging.basicConfig(
        level=config.get("log_level", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from switchboard import loop

    # The loop `switchboard serve` would run on, unless the benchmark names one.
    kind = config.get("event_loop") or ("uvloop" if loop.uvloop_available() else "asyncio")
    loop.run(serve(config), kind)


if __name__ == "__main__":
    main()
