"""Helpers for the routing tests: queues, agents online, tickets routed to a queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from customers.models import Customer
from routing.assignment import do_assign_queue
from routing.models import AgentProfile
from routing.presence import do_socket_closed, do_socket_opened
from routing.rulebook import do_create_rule
from routing.rules import check_rule
from routing.service import do_add_member, do_create_queue, do_update_profile
from switchboard.tx import Database
from tests.conftest import create_user
from tickets.models import Ticket, TicketActivity
from tickets.service import do_create_ticket


async def make_queue(db: Database, name: str, strategy: str = "round_robin") -> int:
    queue = await db.run(lambda s: do_create_queue(s, {"name": name, "strategy": strategy}))
    return queue.id


async def make_agent(
    db: Database, email: str, queue_ids: list[int], *, capacity: int = 5, **profile: Any
) -> int:
    user_id = await create_user(db, email)
    for queue_id in queue_ids:
        await db.run(lambda s, q=queue_id: do_add_member(s, q, user_id))
    await db.run(lambda s: do_update_profile(s, user_id, {"capacity": capacity, **profile}))
    return user_id


async def connect(db: Database, user_id: int, socket_id: str | None = None) -> str:
    socket = socket_id or f"s{user_id}"
    await db.run(lambda s: do_socket_opened(s, user_id, socket))
    return socket


async def disconnect(db: Database, user_id: int, socket_id: str | None = None) -> None:
    await db.run(lambda s: do_socket_closed(s, user_id, socket_id or f"s{user_id}"))


async def route_all_to(db: Database, queue_id: int, admin_id: int) -> None:
    """A catch-all rule sending every new ticket to the queue."""
    checked = check_rule({"name": "all", "actions": {"queue_id": queue_id}})
    await db.run(lambda s: do_create_rule(s, checked, admin_id))


async def make_customer(db: Database) -> int:
    async def create(session: Any) -> int:
        customer = Customer(name="Ada")
        session.add(customer)
        await session.flush()
        return customer.id

    return await db.run(create)


async def new_ticket(db: Database, customer_id: int, priority: str = "normal") -> int:
    from tickets.models import TicketPriority

    ticket = await db.run(
        lambda s: do_create_ticket(
            s, customer_id=customer_id, actor="system", priority=TicketPriority(priority)
        )
    )
    return ticket.id


async def assign_pass(db: Database, queue_id: int) -> int:
    return await db.run(lambda s: do_assign_queue(s, queue_id))


async def assignees(db: Database, ticket_ids: list[int]) -> list[int | None]:
    async with db.reading() as session:
        rows = dict(
            (
                await session.execute(
                    select(Ticket.id, Ticket.assignee_user_id).where(Ticket.id.in_(ticket_ids))
                )
            ).all()
        )
    return [rows[t] for t in ticket_ids]


async def presence_of(db: Database, user_id: int) -> str:
    async with db.reading() as session:
        profile = await session.get(AgentProfile, user_id)
        assert profile is not None
        return profile.presence


async def assignment_entries(db: Database, ticket_id: int) -> int:
    async with db.reading() as session:
        return (
            await session.execute(
                select(func.count()).where(
                    TicketActivity.ticket_id == ticket_id, TicketActivity.kind == "assignee"
                )
            )
        ).scalar_one()
