"""The event bus: one interface, an in-process implementation and a Redis one.

Events are published after commit. The bus is for live fan-out only: durable state is
in the database, so a subscriber that falls behind (or loses Redis) is told to re-sync
from the database rather than being fed a stalled queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Protocol

import redis.asyncio as aioredis

from switchboard.events import Event, from_json

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
PUBLISH_BATCH = 256  # events per Redis message, at most (more when one transaction has more)


class Resync:
    """Delivered in place of events a subscriber missed: reload state from the database."""


Listener = Callable[[Event | Resync], None]


class Subscription:
    """A bounded queue of events for one consumer (one websocket, one worker), or, with a
    `listener`, a synchronous call per event in the publisher's turn instead of a queue.

    The queue is a deque and one waiting future rather than an `asyncio.Queue`: every
    event is offered to every subscriber of its topic, so this is on the path of every
    message, and the plain form costs a fraction of the general one. It has one reader.
    A listener suits a consumer that only needs to note an event (a worker waking up):
    no task is scheduled per event. It must be quick and must not raise.
    """

    def __init__(self, topics: Iterable[str], listener: Listener | None = None) -> None:
        self.topics = set(topics)
        self._listener = listener
        self._items: deque[Event | Resync] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False

    def offer(self, item: Event | Resync) -> None:
        if self._listener is not None:
            try:
                self._listener(item)
            except Exception:
                # One broken listener must not keep the event from the other subscribers.
                log.exception("event listener failed")
            return
        if self._overflowed:
            return
        if len(self._items) >= QUEUE_LIMIT:
            # A slow reader must not grow memory without bound or slow the publisher:
            # drop what is queued and ask it to re-sync from the database.
            self._overflowed = True
            self._items.clear()
            self._items.append(Resync())
        else:
            self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Event | Resync:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a subscription has one reader")
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, Resync):
            self._overflowed = False
        return item

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event | Resync:
        # A plain coroutine per item (an async generator would add a frame to each).
        return await self.get()


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, event: Event) -> None: ...
    async def publish_many(self, events: Sequence[Event]) -> None: ...
    def subscribe(
        self, topics: Iterable[str], listener: Listener | None = None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]: ...


class _LocalFanout:
    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = defaultdict(set)

    def add(self, sub: Subscription) -> None:
        for topic in sub.topics:
            self._by_topic[topic].add(sub)

    def remove(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def deliver(self, event: Event) -> None:
        seen: set[int] = set()
        for topic in event.topics():
            for sub in self._by_topic.get(topic, ()):
                if id(sub) not in seen:
                    seen.add(id(sub))
                    sub.offer(event)

    def resync_all(self) -> None:
        for subs in self._by_topic.values():
            for sub in subs:
                sub.offer(Resync())

    @contextlib.asynccontextmanager
    async def subscription(
        self, topics: Iterable[str], listener: Listener | None = None
    ) -> AsyncIterator[Subscription]:
        sub = Subscription(topics, listener)
        self.add(sub)
        try:
            yield sub
        finally:
            self.remove(sub)


class InProcessBus:
    """For one process (the embedded default): publish delivers straight to subscribers."""

    def __init__(self) -> None:
        self._fanout = _LocalFanout()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, event: Event) -> None:
        self._fanout.deliver(event)

    async def publish_many(self, events: Sequence[Event]) -> None:
        for event in events:
            self._fanout.deliver(event)

    def subscribe(
        self, topics: Iterable[str], listener: Listener | None = None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self._fanout.subscription(topics, listener)


class RedisBus:
    """Across processes: every process publishes to one Redis channel and fans out locally.

    One pub/sub connection per process, however many websockets it serves. A process's
    own events go to its own subscribers at once, as on the in-process bus, not through
    Redis and back: each payload on the channel starts with its publisher's origin tag,
    and the listener skips its own without decoding them. A payload carries the events
    of every transaction committed since the last one was sent, one JSON per line. If
    Redis drops, local subscribers get `Resync` when the listener reconnects, because
    other processes' events published meanwhile were lost to them (never to the
    database).
    """

    def __init__(self, url: str, prefix: str = "switchboard:") -> None:
        self._redis = aioredis.from_url(url)
        self._channel = f"{prefix}events"
        # `<16 hex digits>:` before each event's JSON; unique per bus (per process).
        self._origin = secrets.token_hex(8).encode() + b":"
        self._fanout = _LocalFanout()
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outgoing: asyncio.Queue[Sequence[Event]] = asyncio.Queue(QUEUE_LIMIT)
        self._ready = asyncio.Event()

    async def start(self) -> None:
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen(), name="redis-bus-listener")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        if self._publisher is not None:
            # Let committed events go out before the connection closes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outgoing.join(), timeout=5)
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()

    async def publish(self, event: Event) -> None:
        await self.publish_many([event])

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Deliver a transaction's events to this process's subscribers, and queue them
        for the others; one task sends them in commit order, so the committer (an ack,
        an HTTP answer) does not wait for Redis."""
        for event in events:
            self._fanout.deliver(event)
        if self._publisher is None:
            # Started on first use: a bus that only publishes needs no listener.
            self._publisher = asyncio.create_task(self._publish_loop(), name="redis-bus-publisher")
        try:
            self._outgoing.put_nowait(events)
        except asyncio.QueueFull:
            # Redis is far behind: drop rather than stall commits. This process's own
            # subscribers have them already; other processes' miss them.
            log.warning("event queue full; %d events not published", len(events))

    async def _publish_loop(self) -> None:
        while True:
            # The transactions that committed meanwhile go out together.
            waiting = [await self._outgoing.get()]
            count = len(waiting[0])
            while count < PUBLISH_BATCH and not self._outgoing.empty():
                waiting.append(self._outgoing.get_nowait())
                count += len(waiting[-1])
            try:
                await self._send([event for events in waiting for event in events])
            finally:
                for _ in waiting:
                    self._outgoing.task_done()
            if _being_cancelled():
                raise asyncio.CancelledError

    async def _send(self, events: Sequence[Event]) -> None:
        """One PUBLISH for several transactions' events, in commit order: the origin tag,
        then one JSON document per line (JSON text never holds a raw newline)."""
        try:
            await self._redis.publish(
                self._channel, self._origin + b"\n".join(event.encode() for event in events)
            )
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
            # The change is committed already; live viewers re-sync when Redis is back.
            log.warning("events not published (Redis unavailable): %s", exc)

    def subscribe(
        self, topics: Iterable[str], listener: Listener | None = None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self._fanout.subscription(topics, listener)

    async def _listen(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if not first:
                        self._fanout.resync_all()
                    first = False
                    self._ready.set()
                    delay = 0.5
                    async for raw in pubsub.listen():
                        if raw.get("type") != "message":
                            continue
                        data = raw["data"]
                        if data.startswith(self._origin):
                            continue  # ours: delivered locally when published
                        for line in data[len(self._origin) :].split(b"\n"):
                            try:
                                event = from_json(line)
                            except (KeyError, ValueError, TypeError):
                                log.exception("undecodable event on the bus")
                                continue
                            self._fanout.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _being_cancelled():
                    raise asyncio.CancelledError from exc
                log.warning("Redis bus listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


def _being_cancelled() -> bool:
    """True when this task was asked to stop. The Redis client may turn a cancellation into
    a connection error; a loop that retried on it would never end."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def create_bus(redis_url: str | None, prefix: str = "switchboard:") -> EventBus:
    return RedisBus(redis_url, prefix) if redis_url else InProcessBus()
