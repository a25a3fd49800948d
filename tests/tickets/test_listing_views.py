"""A page of ticket views costs two statements (the page, then everything the views
show in one), and shows exactly what the per-part readers show, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from conversations.models import Conversation
from switchboard.db import utcnow
from switchboard.models import Role, User
from switchboard.tx import Database
from tests.tickets.sla_support import make_policy
from tests.tickets.support import customer_writes, open_ticket
from tickets import sla
from tickets.access import visible_tickets
from tickets.checks import TicketChanges
from tickets.csat_models import CsatSurvey
from tickets.csat_views import csat_views
from tickets.listing import TicketFilter, list_tickets
from tickets.models import ACTIVE_STATUSES, TicketConversation, TicketTag
from tickets.service import do_update_ticket, ticket_view, ticket_views
from tickets.sla_models import SlaClock


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH", "(")):
            seen.append(statement)

    target = db.engine.sync_engine
    event.listen(target, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", count)


async def _arrange(db: Database) -> list[int]:
    """Three tickets: tags, two conversations, SLA clocks (one metric twice), a survey."""
    await make_policy(db)
    tickets = []
    for n in range(3):
        conversation_id, _ = await customer_writes(db, f"v_views_{n}", f"question {n}")
        tickets.append((await open_ticket(db, conversation_id)).id)
    first, second, _third = tickets
    changes = TicketChanges(tags=("vip", "billing", "a-b", "a_b"))
    await db.run(lambda s: do_update_ticket(s, first, changes, actor="system"))

    async def more(session: Any) -> None:
        conversation_id, _ = await customer_writes(db, "v_views_extra", "another thread")
        session.add(TicketConversation(ticket_id=first, conversation_id=conversation_id))
        # A later clock of the same metric: the view shows the latest.
        now = utcnow()
        session.add(
            SlaClock(
                ticket_id=first,
                metric="resolution",
                status="active",
                priority="normal",
                target_minutes=99,
                started_at=now,
                due_at=now + timedelta(minutes=99),
                paused_seconds=0,
            )
        )
        conversation = await session.get(Conversation, conversation_id)
        session.add(
            CsatSurvey(
                ticket_id=second,
                conversation_id=conversation_id,
                inbox_id=conversation.inbox_id,
                customer_id=conversation.customer_id,
                locale="en",
                requested_at=now,
                expires_at=now + timedelta(days=7),
                rating=4,
                comment="secret comment",
                answered_via="link",
                rated_at=now,
                commented_at=now,
            )
        )

    await db.run(more)
    return tickets


async def _reference(session: Any, tickets: list[Any]) -> list[dict[str, Any]]:
    """The views as the per-part readers build them (one query each)."""
    ids = [t.id for t in tickets]
    tags = {i: [] for i in ids}  # type: dict[int, list[str]]
    for ticket_id, tag in await session.execute(
        select(TicketTag.ticket_id, TicketTag.tag)
        .where(TicketTag.ticket_id.in_(ids))
        .order_by(TicketTag.tag)
    ):
        tags[ticket_id].append(tag)
    links = {i: [] for i in ids}  # type: dict[int, list[int]]
    for ticket_id, conversation_id in await session.execute(
        select(TicketConversation.ticket_id, TicketConversation.conversation_id)
        .where(TicketConversation.ticket_id.in_(ids))
        .order_by(TicketConversation.id)
    ):
        links[ticket_id].append(conversation_id)
    now = utcnow()
    clocks = await sla.sla_views(session, ids, now)
    surveys = await csat_views(session, ids)
    return [
        ticket_view(t, tags[t.id], links[t.id], clocks[t.id], surveys.get(t.id)) for t in tickets
    ]


def _without_countdown(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # seconds_to_breach counts from "now", read a moment apart by the two builders.
    return [{**v, "sla": [{**c, "seconds_to_breach": None} for c in v["sla"]]} for v in views]


async def test_a_page_of_views_is_two_statements_and_shows_what_the_parts_show(
    db: Database,
) -> None:
    first, second, third = await _arrange(db)
    supervisor = User(id=1, role=Role.SUPERVISOR)
    filters = TicketFilter(statuses=tuple(sorted(ACTIVE_STATUSES)))

    async with db.reading() as session:
        with statements(db) as seen:
            page = await list_tickets(
                session, visible=visible_tickets(supervisor), filters=filters, limit=50
            )
            views = await ticket_views(session, page.tickets)
        assert len(seen) == 2, seen
        expected = await _reference(session, list(page.tickets))

    assert [v["id"] for v in views] == [third, second, first]
    assert _without_countdown(views) == _without_countdown(expected)
    by_id = {v["id"]: v for v in views}
    assert by_id[first]["tags"] == expected[2]["tags"]
    assert sorted(by_id[first]["tags"]) == ["a-b", "a_b", "billing", "vip"]
    assert len(by_id[first]["conversation_ids"]) == 2
    resolution = [c for c in by_id[first]["sla"] if c["metric"] == "resolution"]
    assert [c["target_minutes"] for c in resolution] == [99]
    assert [c["metric"] for c in by_id[third]["sla"]] == ["first_response", "resolution"]
    survey = by_id[second]["csat"]
    assert survey["rating"] == 4 and "comment" not in survey
    assert survey["commented_at"] is not None
    assert by_id[third]["csat"] is None and by_id[third]["tags"] == []


async def test_no_tickets_no_statement(db: Database) -> None:
    async with db.reading() as session:
        with statements(db) as seen:
            assert await ticket_views(session, []) == []
    assert seen == []
