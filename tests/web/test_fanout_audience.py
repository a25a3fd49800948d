"""The live inbox's per-event audience (`web.access.conversation_audience`,
`tickets.access.ticket_view_audience`) decides exactly as `may_see_conversation` and
`may_see_ticket_view` do, for every user and every shape of the rule, on SQLite and
PostgreSQL; and `web.inbox.AudienceCache` reads it once per event, never across events."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import delete, select, update

from routing.models import Queue, QueueMember
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.support import customer_writes, open_ticket, set_status
from tickets.models import Ticket
from web.access import (
    conversation_audience,
    may_see_conversation,
    may_see_ticket_view,
    ticket_view_audience,
)
from web.inbox import Audience, AudienceCache


async def new_queue(db: Database, name: str, members: list[int]) -> int:
    async def create(session: Any) -> int:
        queue = Queue(name=name)
        session.add(queue)
        await session.flush()
        session.add_all(QueueMember(queue_id=queue.id, user_id=u) for u in members)
        return queue.id

    return await db.run(create)


async def place(db: Database, ticket_id: int, queue_id: int | None, assignee: int | None) -> None:
    await db.run(
        lambda s: s.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(queue_id=queue_id, assignee_user_id=assignee)
        )
    )


async def users(db: Database) -> dict[str, User]:
    async with db.reading() as session:
        found = (await session.execute(select(User))).scalars().all()
    return {u.email.split("@")[0]: u for u in found}


async def test_audiences_decide_as_may_see_for_every_user_and_shape(db: Database) -> None:
    for name, role in (
        ("m1", "agent"),
        ("m2", "agent"),
        ("both", "agent"),
        ("outsider", "agent"),
        ("assignee", "agent"),
        ("sup", "supervisor"),
        ("admin", "admin"),
    ):
        await create_user(db, f"{name}@example.com", role=role)
    people = await users(db)
    q1 = await new_queue(db, "q1", [people["m1"].id, people["both"].id])
    q2 = await new_queue(db, "q2", [people["m2"].id, people["both"].id])

    bot_only, _ = await customer_writes(db, "v_bot")  # no ticket: everyone's
    unrouted, _ = await customer_writes(db, "v_unrouted")
    unrouted_ticket = (await open_ticket(db, unrouted)).id  # a ticket in no queue
    queued, _ = await customer_writes(db, "v_queued")
    queued_ticket = (await open_ticket(db, queued)).id
    await place(db, queued_ticket, q1, None)
    assigned, _ = await customer_writes(db, "v_assigned")
    assigned_ticket = (await open_ticket(db, assigned)).id
    await place(db, assigned_ticket, q1, people["assignee"].id)
    # Outlived a ticket in q1 (closed), now covered by one in q2: visible through either.
    two, _ = await customer_writes(db, "v_two")
    old_ticket = (await open_ticket(db, two)).id
    await place(db, old_ticket, q1, None)
    await set_status(db, old_ticket, "solved")
    await set_status(db, old_ticket, "closed")
    new_ticket = (await open_ticket(db, two)).id
    assert new_ticket != old_ticket
    await place(db, new_ticket, q2, people["assignee"].id)
    missing = 2_000_000  # no such conversation

    conversations = {
        "bot_only": bot_only,
        "unrouted": unrouted,
        "queued": queued,
        "assigned": assigned,
        "two": two,
        "missing": missing,
    }
    tickets = [unrouted_ticket, queued_ticket, assigned_ticket, old_ticket, new_ticket]

    async def decisions() -> dict[tuple[str, str], bool]:
        seen: dict[tuple[str, str], bool] = {}
        for label, cid in conversations.items():
            audience = await conversation_audience(db, cid)
            assert audience is not None
            for who, user in people.items():
                expected = await may_see_conversation(db, user, cid)
                assert audience.admits(user) is expected, (label, who)
                seen[label, who] = expected
        async with db.reading() as session:
            rows = (await session.execute(select(Ticket).where(Ticket.id.in_(tickets)))).scalars()
            views = [
                {"id": t.id, "queue_id": t.queue_id, "assignee_id": t.assignee_user_id}
                for t in rows
            ]
        views.append({"id": 0, "queue_id": q2, "assignee_id": None})
        views.append({"id": -1, "queue_id": 999_999, "assignee_id": None})  # no such queue
        for view in views:
            ticket_audience = await ticket_view_audience(db, view)
            assert ticket_audience is not None
            for who, user in people.items():
                expected = await may_see_ticket_view(db, user, view)
                assert ticket_audience.admits(user) is expected, (view, who)
                seen[f"ticket {view['id']}", who] = expected
        return seen

    seen = await decisions()
    # The matrix is not trivially uniform: each branch of the rule shows.
    agents = ("m1", "m2", "both", "outsider", "assignee")
    assert {a for a in agents if seen["bot_only", a]} == set(agents)
    assert {a for a in agents if seen["unrouted", a]} == set(agents)
    assert {a for a in agents if seen["queued", a]} == {"m1", "both"}
    assert {a for a in agents if seen["assigned", a]} == {"m1", "both", "assignee"}
    assert {a for a in agents if seen["two", a]} == {"m1", "m2", "both", "assignee"}
    assert not any(seen["missing", a] for a in agents)
    assert seen["missing", "sup"] and seen["queued", "admin"]
    assert {a for a in agents if seen[f"ticket {queued_ticket}", a]} == {"m1", "both"}

    # Memberships change: the next read follows, and still agrees.
    await db.run(
        lambda s: s.execute(
            delete(QueueMember).where(
                QueueMember.queue_id == q1, QueueMember.user_id == people["m1"].id
            )
        )
    )
    seen = await decisions()
    assert {a for a in agents if seen["queued", a]} == {"both"}
    assert {a for a in agents if seen["two", a]} == {"m2", "both", "assignee"}


class Everyone:
    def admits(self, user: User) -> bool:
        return True


class Reads:
    """A read that counts its calls and waits until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Audience | None:
        self.calls += 1
        await self.release.wait()
        return Everyone()


class Event:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.n == self.n

    def __hash__(self) -> int:
        return self.n


async def test_one_read_per_event_shared_by_concurrent_sockets() -> None:
    cache = AudienceCache()
    read = Reads()
    event = Event(1)
    waiters = [asyncio.create_task(cache.audience(event, read)) for _ in range(50)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # a socket closing meanwhile does not cancel the others' read
    read.release.set()
    results = await asyncio.gather(*waiters[1:])
    assert read.calls == 1
    assert len({id(r) for r in results}) == 1
    # A socket that comes late still gets it without another read.
    assert await cache.audience(event, read) is results[0]
    assert read.calls == 1


async def test_never_shared_across_events_and_bounded() -> None:
    now = [0.0]
    cache = AudienceCache(seconds=5, limit=3, clock=lambda: now[0])
    read = Reads()
    read.release.set()
    first = Event(1)
    await cache.audience(first, read)
    await cache.audience(Event(1), read)  # equal, but another event: read again
    assert read.calls == 2
    await cache.audience(first, read)
    assert read.calls == 2
    for n in range(2, 10):
        await cache.audience(Event(n), read)
        assert len(cache) <= 3
    now[0] = 100.0  # every entry is old: gone, and the same event is read afresh
    await cache.audience(first, read)
    assert len(cache) == 1
    assert read.calls == 2 + 8 + 1
