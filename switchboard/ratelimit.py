"""Fixed-window rate limits, in process or shared through Redis.

If Redis is unreachable the Redis limiter falls back to its process-local window:
limits still hold per process (fail to local), and nothing waits on a dead server.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> int:
        """Count one event; return 0 if allowed, else seconds until the window resets."""
        ...

    async def blocked(self, key: str, limit: int, window: int) -> int:
        """Without counting: 0 if under the limit, else seconds until the window resets."""
        ...

    async def reset(self, key: str) -> None: ...


class LocalRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int, window: int) -> int:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        if len(self._windows) > 100_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < 3600}
        if count > limit:
            return max(1, int(window - (now - started)))
        return 0

    async def blocked(self, key: str, limit: int, window: int) -> int:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window or count < limit:
            return 0
        return max(1, int(window - (now - started)))

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix + "rl:"
        self._local = LocalRateLimiter()

    async def hit(self, key: str, limit: int, window: int) -> int:
        full = self._prefix + key
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                pipe.expire(full, window, nx=True)
                pipe.ttl(full)
                count, _, ttl = await pipe.execute()
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
            log.warning("rate limiter using the local window (Redis unavailable: %s)", exc)
            return await self._local.hit(key, limit, window)
        if int(count) > limit:
            return max(1, int(ttl))
        return 0

    async def blocked(self, key: str, limit: int, window: int) -> int:
        full = self._prefix + key
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(full)
                pipe.ttl(full)
                count, ttl = await pipe.execute()
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
            return await self._local.blocked(key, limit, window)
        if count is None or int(count) < limit:
            return 0
        return max(1, int(ttl))

    async def reset(self, key: str) -> None:
        with contextlib.suppress(aioredis.ConnectionError, aioredis.TimeoutError, OSError):
            await self._redis.delete(self._prefix + key)
        await self._local.reset(key)
