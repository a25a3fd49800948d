"""Open websockets per app: a cap per client address, and a clean goodbye at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from switchboard.errors import TooManyRequests


class FrameBudget:
    """At most `limit` frames per `seconds` from one socket (a fixed window): what a
    client may send before its frames stop costing the hub database reads and bus
    publishes."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._window_start = 0.0
        self._frames = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self._window_start > self.seconds:
            self._window_start, self._frames = now, 0
        self._frames += 1
        return self._frames <= self.limit

    @property
    def flooding(self) -> bool:
        """Twice over the budget in one window: not a busy page, a flood."""
        return self._frames > 2 * self.limit


class SocketRegistry:
    def __init__(self) -> None:
        self._open: set[web.WebSocketResponse] = set()
        self._per_address: Counter[str] = Counter()

    def check_room(self, address: str, limit: int) -> None:
        """Refuse (429) before the handshake when this address has `limit` sockets open."""
        if self._per_address[address] >= limit:
            raise TooManyRequests("too many open connections from this address", retry_after=30)

    @contextlib.asynccontextmanager
    async def holding(self, address: str, ws: web.WebSocketResponse) -> AsyncIterator[None]:
        self._open.add(ws)
        self._per_address[address] += 1
        try:
            yield
        finally:
            self._open.discard(ws)
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    async def close_all(self) -> None:
        # 1001 Going Away: widgets and inboxes reconnect (to another process behind the
        # load balancer) at once, instead of waiting for a heartbeat to time out.
        await asyncio.gather(
            *(
                ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                for ws in list(self._open)
            ),
            return_exceptions=True,
        )


SOCKETS = web.AppKey("sockets", SocketRegistry)


async def _close_all(app: web.Application) -> None:
    await app[SOCKETS].close_all()


def setup(app: web.Application) -> None:
    app[SOCKETS] = SocketRegistry()
    app.on_shutdown.append(_close_all)
