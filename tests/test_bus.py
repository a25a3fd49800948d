"""The event bus: topic filtering, bounded queues, Redis fan-out across processes, and a
customer and an agent talking through two app instances."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientWebSocketResponse

from channels.base import InboundMessage
from conversations.events import INBOX_TOPIC, Typing, conversation_topic
from conversations.models import Message
from conversations.service import do_intake
from switchboard import accounts
from switchboard import bus as bus_module
from switchboard.bus import EventBus, RedisBus, Resync, Subscription, create_bus
from switchboard.events import Event, register
from switchboard.inboxes import do_ensure_inbox
from switchboard.models import User
from switchboard.settings import Settings
from switchboard.tx import Database
from tests.conftest import REDIS_URL, Backend, ClientFactory, _need, create_user, widget_session

TIMEOUT = 5.0


@register
@dataclasses.dataclass(frozen=True)
class Probe(Event):
    """A marker: once a subscriber has it, everything published before it was delivered."""

    type_name: ClassVar[str] = "test.probe"

    def topics(self) -> tuple[str, ...]:
        return ("probe",)


def typing(conversation_id: int, name: str = "Alice") -> Typing:
    return Typing(
        actor="customer:1",
        conversation_id=conversation_id,
        inbox_id=1,
        side="customer",
        name=name,
        typing=True,
    )


async def next_item(sub: Subscription) -> Event | Resync:
    return await asyncio.wait_for(sub.get(), timeout=TIMEOUT)


async def assert_nothing_queued(sub: Subscription) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sub.get(), timeout=0.1)


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[EventBus]:
    """The bus each backend runs with: in-process beside SQLite, Redis beside PostgreSQL."""
    started = create_bus(settings.redis_url, settings.redis_prefix)
    await started.start()
    yield started
    await started.close()


@pytest.fixture
def redis_url() -> str:
    _need("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
async def redis_buses(redis_url: str) -> AsyncIterator[list[RedisBus]]:
    """Three processes' buses: the first two share a prefix, the third is another hub."""
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    buses = [
        RedisBus(redis_url, prefix),
        RedisBus(redis_url, prefix),
        RedisBus(redis_url, f"sbtest:{secrets.token_hex(6)}:"),
    ]
    for each in buses:
        await each.start()
    yield buses
    for each in buses:
        await each.close()


# --- every bus -------------------------------------------------------------------------------


async def test_subscribers_get_only_their_topics(bus: EventBus) -> None:
    async with (
        bus.subscribe([conversation_topic(1)]) as first,
        bus.subscribe([conversation_topic(2)]) as second,
        bus.subscribe([INBOX_TOPIC, conversation_topic(1)]) as inbox,
    ):
        await bus.publish(typing(1, "one"))
        await bus.publish(typing(2, "two"))

        assert await next_item(first) == typing(1, "one")
        assert await next_item(second) == typing(2, "two")
        # Subscribed to two of the event's topics, the inbox still hears it once.
        assert await next_item(inbox) == typing(1, "one")
        assert await next_item(inbox) == typing(2, "two")
        await assert_nothing_queued(first)
        await assert_nothing_queued(inbox)


async def test_a_subscriber_that_falls_behind_is_told_to_resync(
    bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A smaller queue than production's keeps the test quick; the mechanism is the same.
    monkeypatch.setattr(bus_module, "QUEUE_LIMIT", 20)
    async with bus.subscribe([conversation_topic(1)]) as slow, bus.subscribe(["probe"]) as probe:
        for n in range(50):
            await bus.publish(typing(1, f"event {n}"))
        # The probe's event comes after all fifty: once it arrives, they were all offered.
        await bus.publish(Probe(actor="test"))
        assert isinstance(await next_item(probe), Probe)

        # The backlog was dropped rather than kept: one Resync, then nothing stale.
        assert isinstance(await next_item(slow), Resync)
        await assert_nothing_queued(slow)
        # Having re-synced, the subscriber gets live events again.
        await bus.publish(typing(1, "after"))
        assert await next_item(slow) == typing(1, "after")


async def test_a_listener_hears_its_topics_as_they_are_published(bus: EventBus) -> None:
    """Workers listen instead of reading a queue: called in the publisher's turn, once per
    event of its topics; one that raises keeps nothing from the other subscribers."""
    heard: list[Event | Resync] = []

    def broken(_item: Event | Resync) -> None:
        raise RuntimeError("a bug in one worker")

    async with (
        bus.subscribe([INBOX_TOPIC, conversation_topic(1)], listener=heard.append),
        bus.subscribe([conversation_topic(1)], listener=broken),
        bus.subscribe([conversation_topic(1)]) as reader,
    ):
        await bus.publish(typing(1, "one"))
        assert heard == [typing(1, "one")]  # already, before anything else ran
        await bus.publish(typing(2, "two"))
        assert heard == [typing(1, "one"), typing(2, "two")]
        assert await next_item(reader) == typing(1, "one")
        await assert_nothing_queued(reader)
    await bus.publish(typing(1, "after"))
    assert len(heard) == 2  # gone with its subscription


# --- Redis across processes ------------------------------------------------------------------


async def test_redis_event_reaches_a_subscriber_on_another_instance(
    redis_buses: list[RedisBus],
) -> None:
    publisher, other_process, _ = redis_buses
    async with other_process.subscribe([conversation_topic(7)]) as sub:
        await publisher.publish(typing(7, "from A"))
        assert await next_item(sub) == typing(7, "from A")


async def test_redis_hubs_with_different_prefixes_do_not_hear_each_other(
    redis_buses: list[RedisBus],
) -> None:
    publisher, _, other_hub = redis_buses
    async with other_hub.subscribe([conversation_topic(7)]) as sub:
        await publisher.publish(typing(7, "for the first hub"))
        await other_hub.publish(typing(7, "for the other hub"))
        # Had the first hub's event leaked, it would have arrived first.
        assert await next_item(sub) == typing(7, "for the other hub")
        await assert_nothing_queued(sub)


async def test_redis_bus_gives_its_own_subscribers_its_events_once(
    redis_buses: list[RedisBus],
) -> None:
    publisher, other_process, _ = redis_buses
    async with (
        publisher.subscribe([conversation_topic(7)]) as mine,
        other_process.subscribe([conversation_topic(7)]) as theirs,
    ):
        await publisher.publish(typing(7, "one"))
        await publisher.publish_many([typing(7, "two"), typing(7, "three")])
        assert [await next_item(mine) for _ in range(3)] == [
            typing(7, "one"),
            typing(7, "two"),
            typing(7, "three"),
        ]
        # The other process hears them through Redis, in order.
        assert [await next_item(theirs) for _ in range(3)] == [
            typing(7, "one"),
            typing(7, "two"),
            typing(7, "three"),
        ]
        # They are on the channel before this one, so had the publisher's listener fed
        # its own events back to its subscribers, they would come before it.
        await other_process.publish(typing(7, "from the other process"))
        assert await next_item(mine) == typing(7, "from the other process")
        await assert_nothing_queued(mine)
        assert await next_item(theirs) == typing(7, "from the other process")
        await assert_nothing_queued(theirs)


async def test_redis_events_of_many_transactions_arrive_whole_and_in_order(
    redis_buses: list[RedisBus],
) -> None:
    """Transactions that commit while the previous ones are being sent share a Redis
    message, one event per line: text with newlines must not split an event."""
    publisher, other_process, _ = redis_buses
    expected = [
        event
        for n in range(40)
        for event in (typing(7, f"line {n}\nand the next line"), typing(7, f"after {n}"))
    ]
    async with other_process.subscribe([conversation_topic(7)]) as theirs:
        for first in range(0, len(expected), 2):
            await publisher.publish_many(expected[first : first + 2])
        assert [await next_item(theirs) for _ in expected] == expected
        await assert_nothing_queued(theirs)


async def test_redis_bus_without_redis_still_serves_its_own_subscribers() -> None:
    """Redis down: other processes miss this one's events (they re-sync later), but the
    viewers connected to this process keep seeing what it commits."""
    unreachable = RedisBus("redis://127.0.0.1:1/0")
    try:
        async with unreachable.subscribe([conversation_topic(3)]) as sub:
            await unreachable.publish(typing(3, "still live here"))
            assert await next_item(sub) == typing(3, "still live here")
    finally:
        await unreachable.close()


class DroppableProxy:
    """A TCP proxy in front of Redis that can cut every connection, as a network blip or
    a Redis restart does."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 6379
        self.connections: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        self.connections += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, RuntimeError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop_all(self) -> None:
        for writer in self.connections:
            writer.transport.abort()
        self.connections.clear()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        self.drop_all()
        await self.server.wait_closed()


async def test_redis_subscribers_resync_after_the_connection_drops(redis_url: str) -> None:
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    proxy = DroppableProxy(redis_url)
    behind_proxy = RedisBus(await proxy.start(), prefix)
    publisher = RedisBus(redis_url, prefix)
    await behind_proxy.start()
    try:
        async with behind_proxy.subscribe([conversation_topic(7)]) as sub:
            await publisher.publish(typing(7, "before"))
            assert await next_item(sub) == typing(7, "before")

            proxy.drop_all()
            # Whatever was published while it was cut off is lost to the bus, not to the
            # database: the subscriber is told to reload.
            assert isinstance(await next_item(sub), Resync)

            async with asyncio.timeout(TIMEOUT):
                while True:
                    await publisher.publish(typing(7, "after"))
                    with contextlib.suppress(TimeoutError):
                        assert await asyncio.wait_for(sub.get(), 0.1) == typing(7, "after")
                        break
    finally:
        await behind_proxy.close()
        await publisher.close()
        await proxy.close()


async def test_a_commit_is_kept_when_redis_is_unreachable(db: Database) -> None:
    unreachable = RedisBus("redis://127.0.0.1:1/0")
    cut_off = Database(db.engine, db.sessionmaker, unreachable)
    inbox = await db.run(lambda s: do_ensure_inbox(s, key="web", kind="webchat", name="Chat"))
    msg = InboundMessage(
        channel="webchat",
        inbox_id=inbox.id,
        sender_id="v_bob",
        external_id="v_bob:1",
        thread_key="v_bob",
        text="Anyone?",
    )
    try:
        result = await cut_off.run(lambda s: do_intake(s, msg))
    finally:
        await unreachable.close()

    async with db.reading() as s:
        stored = await s.get(Message, result.message_id)
    assert stored is not None and stored.text == "Anyone?"


# --- two app instances -----------------------------------------------------------------------


async def receive(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next frame of this type (frames of other types are skipped)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame: dict[str, Any] = await ws.receive_json()
            if frame.get("type") == kind:
                return frame


async def agent_login(db: Database, email: str) -> accounts.NewSession:
    user_id = await create_user(db, email)

    async def start(s: Any) -> accounts.NewSession:
        user = await s.get(User, user_id)
        return await accounts.do_start_session(s, user)

    return await db.run(start)


# Two processes share events only through Redis: this one runs on PostgreSQL + Redis only.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_customer_on_one_instance_and_agent_on_another_talk_live(
    backend: Backend, db: Database, make_client: ClientFactory
) -> None:
    login = await agent_login(db, "sam@example.com")
    # Instance A runs no outbox worker: anything its widget shows must come over the bus.
    instance_a = await make_client(run_workers=False)
    instance_b = await make_client()

    _, token = await widget_session(instance_a)
    widget = await instance_a.ws_connect(f"/widget/ws?token={token}")
    await receive(widget, "hello")
    await widget.send_json({"type": "resume", "last_seq": 0})

    instance_b.session.cookie_jar.update_cookies({"sb_session": login.token})
    inbox = await instance_b.ws_connect("/inbox/ws")
    # A pong means the socket's bus subscription is in place.
    await inbox.send_json({"type": "ping"})
    await receive(inbox, "pong")

    await widget.send_json(
        {"type": "message", "client_msg_id": "two-inst-0001", "text": "Is my parcel lost?"}
    )
    assert (await receive(widget, "ack"))["seq"] == 1
    created = (await receive(inbox, "message.created"))["data"]
    assert created["message"]["text"] == "Is my parcel lost?"
    assert created["message"]["author_kind"] == "customer"
    # The widget echoes its own message once it listens to its conversation.
    assert (await receive(widget, "message"))["message"]["seq"] == 1

    response = await instance_b.post(
        f"/api/v1/conversations/{created['conversation_id']}/messages",
        json={"text": "No, it arrives tomorrow."},
        headers={"X-CSRF-Token": login.csrf_token},
    )
    assert response.status == 201, await response.text()

    shown = (await receive(widget, "message"))["message"]
    assert (shown["seq"], shown["direction"]) == (2, "out")
    assert shown["text"] == "No, it arrives tomorrow."
    await widget.close()
    await inbox.close()
