"""Assignment against the database (SQLite and PostgreSQL): only available agents get
work, capacity holds across queues, a queue with nobody available holds its tickets in
order and drains them when someone comes online, and presence has a grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conversations.models import AuthorKind
from conversations.service import do_reply
from routing import presence
from routing.presence import do_choose_presence, do_sweep_presence
from switchboard.tx import Database
from tests.clock import clock_for
from tests.conftest import create_user
from tests.routing.support import (
    assign_pass,
    assignees,
    connect,
    disconnect,
    make_agent,
    make_customer,
    make_queue,
    new_ticket,
    presence_of,
    route_all_to,
)
from tests.tickets.support import customer_writes, open_ticket, set_status

GRACE = 60


async def test_rules_route_new_tickets_to_the_queue(db: Database) -> None:
    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "support")
    await route_all_to(db, queue, admin)
    ticket_id = await new_ticket(db, await make_customer(db))
    from tests.tickets.support import get_ticket

    assert (await get_ticket(db, ticket_id)).queue_id == queue


async def test_a_queue_with_nobody_online_holds_tickets_in_order_then_drains(
    db: Database,
) -> None:
    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "support")
    await route_all_to(db, queue, admin)
    ada = await make_agent(db, "ada@example.com", [queue], capacity=2)
    customer = await make_customer(db)
    tickets = [await new_ticket(db, customer) for _ in range(3)]

    assert await assign_pass(db, queue) == 0  # offline: nobody gets work
    assert await assignees(db, tickets) == [None, None, None]

    await connect(db, ada)
    assert await assign_pass(db, queue) == 2
    # Oldest first; the third waits: Ada is at capacity.
    assert await assignees(db, tickets) == [ada, ada, None]
    assert await assign_pass(db, queue) == 0

    await set_status(db, tickets[0], "solved")  # room again
    assert await assign_pass(db, queue) == 1
    assert await assignees(db, tickets) == [ada, ada, ada]


async def test_away_agents_and_agents_at_capacity_are_skipped(db: Database) -> None:
    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "support")
    await route_all_to(db, queue, admin)
    ada = await make_agent(db, "ada@example.com", [queue], capacity=1)
    bob = await make_agent(db, "bob@example.com", [queue], capacity=5)
    cy = await make_agent(db, "cy@example.com", [queue], capacity=5)
    for agent in (ada, bob, cy):
        await connect(db, agent)
    await db.run(lambda s: do_choose_presence(s, cy, "away"))
    customer = await make_customer(db)
    tickets = [await new_ticket(db, customer) for _ in range(4)]

    assert await assign_pass(db, queue) == 4
    got = await assignees(db, tickets)
    assert got.count(ada) == 1 and got.count(bob) == 3 and cy not in got


async def test_capacity_counts_tickets_from_every_queue(db: Database) -> None:
    admin = await create_user(db, "admin@example.com", role="admin")
    sales = await make_queue(db, "sales")
    support = await make_queue(db, "support")
    ada = await make_agent(db, "ada@example.com", [sales, support], capacity=3)
    await connect(db, ada)
    customer = await make_customer(db)
    await route_all_to(db, sales, admin)
    sales_tickets = [await new_ticket(db, customer) for _ in range(2)]
    assert await assign_pass(db, sales) == 2
    from routing.rulebook import do_reorder_rules, list_rules

    await route_all_to(db, support, admin)
    rules = await db.run(list_rules)
    await db.run(lambda s: do_reorder_rules(s, [rules[1].id, rules[0].id], admin))
    support_tickets = [await new_ticket(db, customer) for _ in range(2)]

    assert await assign_pass(db, support) == 1
    assert await assignees(db, sales_tickets + support_tickets) == [ada, ada, ada, None]


async def test_going_offline_after_the_grace_period_hands_back_unstarted_tickets(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = clock_for(presence, monkeypatch)
    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "support")
    await route_all_to(db, queue, admin)
    ada = await make_agent(db, "ada@example.com", [queue])
    bob = await make_agent(db, "bob@example.com", [queue])
    await connect(db, ada)
    started_conversation, _ = await customer_writes(db, "v1", "help")
    started = (await open_ticket(db, started_conversation)).id
    unstarted_conversation, _ = await customer_writes(db, "v2", "help")
    unstarted = (await open_ticket(db, unstarted_conversation)).id
    assert await assign_pass(db, queue) == 2
    await db.run(
        lambda s: do_reply(
            s,
            conversation_id=started_conversation,
            text="On it",
            author_kind=AuthorKind.AGENT,
            author_user_id=ada,
        )
    )
    sweep = lambda s: do_sweep_presence(s, timedelta(seconds=GRACE))  # noqa: E731

    await disconnect(db, ada)
    clock.advance(GRACE - 1)
    assert await db.run(sweep) == []
    assert await presence_of(db, ada) == "online"  # a reload is not going offline

    await connect(db, ada, "second-tab")  # back within the grace period
    await disconnect(db, ada, "second-tab")
    clock.advance(GRACE - 1)
    assert await db.run(sweep) == []  # the grace period restarted at the last close
    clock.advance(2)
    assert await db.run(sweep) == [ada]
    assert await presence_of(db, ada) == "offline"
    assert await assignees(db, [started, unstarted]) == [ada, None]

    await connect(db, bob)
    assert await assign_pass(db, queue) == 1
    assert await assignees(db, [started, unstarted]) == [ada, bob]


async def test_a_socket_left_by_a_dead_process_stops_counting(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = clock_for(presence, monkeypatch)
    queue = await make_queue(db, "support")
    ada = await make_agent(db, "ada@example.com", [queue])
    await connect(db, ada)  # and never closed: the process died
    sweep = lambda s: do_sweep_presence(s, timedelta(seconds=GRACE))  # noqa: E731
    clock.advance(presence.STALE.total_seconds() - 1)
    assert await db.run(sweep) == []
    clock.advance(2)
    assert await db.run(sweep) == [ada]


async def test_a_rule_on_an_sla_calendars_business_hours(db: Database) -> None:
    from routing.rulebook import do_create_rule
    from routing.rules import check_rule
    from tests.tickets.support import get_ticket
    from tickets.sla_models import SlaCalendar

    admin = await create_user(db, "admin@example.com", role="admin")
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

    async def calendar(session: object, name: str, hours: dict[str, object]) -> int:
        row = SlaCalendar(name=name, time_zone="Asia/Shanghai", hours=hours, holidays=[])
        session.add(row)  # type: ignore[attr-defined]
        await session.flush()  # type: ignore[attr-defined]
        return row.id

    always = await db.run(lambda s: calendar(s, "always", {d: [["00:00", "24:00"]] for d in days}))
    never = await db.run(lambda s: calendar(s, "never", {}))
    queue = await make_queue(db, "night shift")
    for name, calendar_id, priority in (("closed", never, "urgent"), ("open", always, "high")):
        checked = check_rule(
            {
                "name": name,
                "conditions": {"business_hours": {"calendar_id": calendar_id}},
                "actions": {"priority": priority, "queue_id": queue},
            }
        )
        await db.run(lambda s, c=checked: do_create_rule(s, c, admin))
    ticket = await get_ticket(db, await new_ticket(db, await make_customer(db)))
    assert (ticket.priority, ticket.queue_id) == ("high", queue)


async def test_a_hand_off_reason_and_keywords_route_and_assign_directly(db: Database) -> None:
    from routing.rulebook import do_create_rule
    from routing.rules import check_rule
    from tests.tickets.support import activities, get_ticket
    from tickets.service import do_open_for_conversation

    admin = await create_user(db, "admin@example.com", role="admin")
    lead = await create_user(db, "lead@example.com")
    queue = await make_queue(db, "escalations")
    rules = [
        {
            "name": "angry",
            "conditions": {"handoff_reasons": ["frustration"], "keywords": ["cancel"]},
            "actions": {
                "queue_id": queue,
                "priority": "urgent",
                "add_tags": ["churn-risk"],
                "assign_user_id": lead,
            },
        },
        {"name": "rest", "actions": {"priority": "low"}},
    ]
    for body in rules:
        checked = check_rule(body)
        await db.run(lambda s, c=checked: do_create_rule(s, c, admin))

    async def hand_off(conversation_id: int) -> int:
        ticket = await db.run(
            lambda s: do_open_for_conversation(
                s,
                conversation_id=conversation_id,
                source="bot_handoff",
                reason="frustration: the customer is upset",
                actor="bot:0",
            )
        )
        return ticket.id

    angry, _ = await customer_writes(db, "v1", "I will CANCEL my plan")
    calm, _ = await customer_writes(db, "v2", "what are your hours")
    angry_ticket = await get_ticket(db, await hand_off(angry))
    calm_ticket = await get_ticket(db, await hand_off(calm))

    assert (angry_ticket.queue_id, angry_ticket.priority, angry_ticket.assignee_user_id) == (
        queue,
        "urgent",
        lead,
    )
    assert (calm_ticket.queue_id, calm_ticket.priority) == (None, "low")
    routed = [a for a in await activities(db, angry_ticket.id) if a["kind"] == "routed"]
    assert routed[0]["actor"] == "system"
    assert routed[0]["data"]["tags"]["added"] == ["churn-risk"]
    assert routed[0]["data"]["rule"]["version"] == 1


async def test_skills_queue_gives_a_german_ticket_to_the_german_speaker_first(
    db: Database,
) -> None:
    from customers.models import Customer

    admin = await create_user(db, "admin@example.com", role="admin")
    queue = await make_queue(db, "europe", "skills")
    await route_all_to(db, queue, admin)
    english = await make_agent(db, "en@example.com", [queue], capacity=1, languages=["en"])
    german = await make_agent(db, "de@example.com", [queue], capacity=1, languages=["de"])
    for agent in (english, german):
        await connect(db, agent)

    async def customer(session: object, locale: str) -> int:
        row = Customer(name="Kunde", locale=locale)
        session.add(row)  # type: ignore[attr-defined]
        await session.flush()  # type: ignore[attr-defined]
        return row.id

    first = await new_ticket(db, await db.run(lambda s: customer(s, "de-AT")))
    second = await new_ticket(db, await db.run(lambda s: customer(s, "de")))
    assert await assign_pass(db, queue) == 2
    # The first goes to the German speaker although the English one is as free (and
    # first in turn); the second falls back to the English one: the German is full.
    assert await assignees(db, [first, second]) == [german, english]
