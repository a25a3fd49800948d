"""Two hub processes assigning at once (two engines, two routing workers on one database;
PostgreSQL decides by row locks, SQLite by its one writer at a time): no ticket gets two
agents, no capacity is exceeded, nothing is lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select, text

from routing.rulebook import do_create_rule
from routing.rules import check_rule
from routing.worker import RoutingWorker
from switchboard.bus import InProcessBus
from switchboard.db import create_engine, create_sessionmaker
from switchboard.settings import Settings
from switchboard.tx import Database
from tests.conftest import create_user
from tests.routing.support import (
    assign_pass,
    assignees,
    assignment_entries,
    connect,
    make_agent,
    make_customer,
    make_queue,
    new_ticket,
    route_all_to,
)
from tickets.checks import TicketChanges
from tickets.models import Ticket
from tickets.service import claim_conflict, do_update_ticket, lock_ticket

CAPACITY = 4


async def test_two_processes_assigning_at_once_never_double_assign_or_overfill(
    db: Database, settings: Settings
) -> None:
    admin = await create_user(db, "admin@example.com", role="admin")
    queues = [
        await make_queue(db, f"q{i}", s)
        for i, s in enumerate(["round_robin", "least_loaded", "skills"])
    ]
    # Every agent is in two queues, so two queues' assignments compete for one capacity.
    agents = [
        await make_agent(
            db, f"a{i}@example.com", [queues[i % 3], queues[(i + 1) % 3]], capacity=CAPACITY
        )
        for i in range(6)
    ]
    for agent in agents:
        await connect(db, agent)
    customer = await make_customer(db)
    tickets: list[int] = []
    for queue in queues:
        rule = check_rule({"name": f"to {queue}", "actions": {"queue_id": queue}})
        created = await db.run(lambda s, r=rule: do_create_rule(s, r, admin))
        for _ in range(20):
            tickets.append(await new_ticket(db, customer))
        # Retire the rule so the next queue's rule decides the next tickets.
        from routing.rulebook import do_delete_rule

        await db.run(lambda s, c=created.id: do_delete_rule(s, c, admin))

    engines = [create_engine(settings.database_url) for _ in range(2)]
    try:
        workers = [
            RoutingWorker(Database(e, create_sessionmaker(e), InProcessBus())) for e in engines
        ]
        for _ in range(4):
            await asyncio.gather(*(w.run_once() for w in workers))
    finally:
        for engine in engines:
            await engine.dispose()

    async with db.reading() as session:
        rows = (
            await session.execute(
                select(Ticket.id, Ticket.assignee_user_id).where(Ticket.id.in_(tickets))
            )
        ).all()
    loads = Counter(assignee for _id, assignee in rows if assignee is not None)
    # 6 agents x 4 places: all filled, none over, the other 36 tickets wait.
    assert sum(loads.values()) == 6 * CAPACITY
    assert max(loads.values()) <= CAPACITY
    for ticket_id, assignee in rows:
        assert await assignment_entries(db, ticket_id) == (1 if assignee else 0)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_claim_racing_the_assigner_is_counted_so_the_assigner_never_overfills(
    db: Database, settings: Settings
) -> None:
    """An agent claims a ticket while an assignment pass runs. The claim locks the agent's
    profile row, which the pass locks before counting her tickets: the pass waits and
    counts the claim, so she ends at capacity, not one past it. (A claim by itself may
    exceed capacity; the automatic assigner never does.) PostgreSQL only: SQLite has one
    writer at a time, so there the two cannot interleave."""
    assert settings.database_url.startswith("postgresql")
    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "q")
    ada = await make_agent(db, "ada@example.com", [queue], capacity=2)
    await connect(db, ada)
    await route_all_to(db, queue, admin)
    customer = await make_customer(db)
    claimed, *waiting = [await new_ticket(db, customer) for _ in range(3)]

    async with db.sessionmaker() as claiming, claiming.begin():
        # What the claim route does, held open before its commit.
        ticket = await lock_ticket(claiming, claimed)
        await claim_conflict(claiming, ticket, ada)
        await do_update_ticket(
            claiming, claimed, TicketChanges(assignee_user_id=ada), actor=f"agent:{ada}"
        )
        assigning = asyncio.create_task(assign_pass(db, queue))
        # Commit only once the pass waits for a lock (or has finished without waiting).
        while not assigning.done():
            async with db.reading() as session:
                waits = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                ).scalar_one()
            if waits:
                break
            await asyncio.sleep(0.05)
    await assigning

    loads = Counter(a for a in await assignees(db, [claimed, *waiting]) if a is not None)
    assert loads[ada] == 2  # the claimed ticket and one more; the third waits
