"""SLA clocks on real tickets: attach, first and next response, pause, solve, priority."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from switchboard.db import utcnow
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.sla_support import (
    agent_replies,
    clock,
    clocks,
    customer_seen,
    make_policy,
    sla_pass,
)
from tests.tickets.support import customer_writes, get_ticket, open_ticket, set_status
from tickets import sla
from tickets.checks import TicketChanges
from tickets.models import Ticket, TicketPriority
from tickets.service import do_update_ticket, full_view, lock_ticket


async def test_no_policy_means_no_clocks(db: Database) -> None:
    conversation_id, _ = await customer_writes(db, "v_sla_none")
    ticket = await open_ticket(db, conversation_id)
    assert await clocks(db, ticket.id) == []
    assert ticket.sla_policy_id is None


async def test_a_new_ticket_gets_the_default_policys_clocks(db: Database) -> None:
    policy_id = await make_policy(db)
    before = utcnow()
    conversation_id, _ = await customer_writes(db, "v_sla_attach")
    ticket = await open_ticket(db, conversation_id)
    first = await clock(db, ticket.id, "first_response")
    resolution = await clock(db, ticket.id, "resolution")
    assert (first.status, first.target_minutes, first.policy_id) == ("active", 60, policy_id)
    assert first.due_at - first.started_at == timedelta(minutes=60)
    assert resolution.due_at - resolution.started_at == timedelta(minutes=480)
    assert first.started_at >= before
    stored = await get_ticket(db, ticket.id)
    assert stored.sla_policy_id == policy_id
    assert stored.first_response_due_at == first.due_at
    assert stored.resolution_due_at == resolution.due_at


async def test_first_agent_reply_meets_first_response_not_a_private_note(db: Database) -> None:
    await make_policy(db)
    agent = await create_user(db, "sla1@example.com")
    conversation_id, _ = await customer_writes(db, "v_sla_first")
    ticket = await open_ticket(db, conversation_id)
    await agent_replies(db, conversation_id, agent, private=True)
    assert (await clock(db, ticket.id, "first_response")).status == "active"
    replied_at = await agent_replies(db, conversation_id, agent)
    first = await clock(db, ticket.id, "first_response")
    assert (first.status, first.stopped_at) == ("hit", replied_at)
    assert (await get_ticket(db, ticket.id)).first_response_due_at is None
    # The resolution clock keeps running.
    assert (await clock(db, ticket.id, "resolution")).status == "active"


async def test_customer_message_after_a_reply_starts_next_response(db: Database) -> None:
    await make_policy(db)
    agent = await create_user(db, "sla2@example.com")
    conversation_id, _ = await customer_writes(db, "v_sla_next")
    ticket = await open_ticket(db, conversation_id)
    # A second customer message before any reply: still the first response's business.
    await customer_seen(db, conversation_id)
    assert [c.metric for c in await clocks(db, ticket.id)] == ["first_response", "resolution"]
    await agent_replies(db, conversation_id, agent)
    await customer_writes(db, "v_sla_next", "and another thing", n=1)
    await customer_seen(db, conversation_id)
    following = await clock(db, ticket.id, "next_response")
    assert (following.status, following.target_minutes) == ("active", 120)
    assert (await get_ticket(db, ticket.id)).first_response_due_at == following.due_at
    await agent_replies(db, conversation_id, agent)
    assert (await clock(db, ticket.id, "next_response")).status == "hit"
    # Once more: each customer message after a reply gets its own next-response clock.
    await customer_seen(db, conversation_id)
    assert [c.status for c in await clocks(db, ticket.id) if c.metric == "next_response"] == [
        "hit",
        "active",
    ]


async def test_pending_pauses_and_resuming_pushes_the_due_time(db: Database) -> None:
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "v_sla_pause")
    ticket = await open_ticket(db, conversation_id)
    due = (await clock(db, ticket.id, "resolution")).due_at
    await set_status(db, ticket.id, "pending")
    paused = await clock(db, ticket.id, "resolution")
    assert paused.paused_at is not None
    # Paused clocks never breach, however late it gets.
    assert await sla_pass(db, utcnow() + timedelta(days=3)) == 0
    await set_status(db, ticket.id, "open")
    resumed = await clock(db, ticket.id, "resolution")
    assert resumed.paused_at is None
    assert resumed.due_at - due == timedelta(seconds=resumed.paused_seconds)
    assert resumed.due_at >= due


async def test_solving_meets_resolution_and_reopening_starts_a_new_one(db: Database) -> None:
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "v_sla_solve")
    ticket = await open_ticket(db, conversation_id)
    await set_status(db, ticket.id, "solved")
    resolution = await clock(db, ticket.id, "resolution")
    assert (resolution.status, resolution.stopped_at is not None) == ("hit", True)
    stored = await get_ticket(db, ticket.id)
    assert (stored.resolution_due_at, stored.first_response_due_at) == (None, None)
    await set_status(db, ticket.id, "open")
    assert [c.status for c in await clocks(db, ticket.id) if c.metric == "resolution"] == [
        "hit",
        "active",
    ]
    # The first response is measured once per ticket.
    assert len([c for c in await clocks(db, ticket.id) if c.metric == "first_response"]) == 1


async def test_raising_priority_shortens_running_targets(db: Database) -> None:
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "v_sla_prio")
    ticket = await open_ticket(db, conversation_id)
    await db.run(
        lambda s: do_update_ticket(
            s, ticket.id, TicketChanges(priority=TicketPriority.URGENT), actor="system"
        )
    )
    first = await clock(db, ticket.id, "first_response")
    assert (first.priority, first.target_minutes) == ("urgent", 10)
    assert first.due_at - first.started_at == timedelta(minutes=10)


async def test_business_hours_policy_due_time_follows_the_calendar(db: Database) -> None:
    # Open no hour of the week but Monday 03:00–03:01 UTC: a 60-minute target is
    # weeks away, so the due time is far beyond 60 wall-clock minutes.
    await make_policy(db, calendar={"time_zone": "UTC", "hours": {"monday": [["03:00", "03:01"]]}})
    conversation_id, _ = await customer_writes(db, "v_sla_cal")
    ticket = await open_ticket(db, conversation_id)
    first = await clock(db, ticket.id, "first_response")
    assert first.due_at - first.started_at > timedelta(days=7 * 50)
    assert first.due_at.weekday() == 0 and first.due_at.hour == 3


async def test_a_policy_named_on_the_ticket_wins_over_the_default(db: Database) -> None:
    """What a routing rule does: it sets `sla_policy_id` before the policy attaches."""
    await make_policy(db)
    strict = await make_policy(db, name="strict", is_default=False)
    conversation_id, _ = await customer_writes(db, "v_sla_named")
    ticket = await open_ticket(db, conversation_id)

    async def route(session: Any) -> None:
        found = await lock_ticket(session, ticket.id)
        await sla.do_attach_policy(session, found, utcnow(), policy_id=strict)

    await db.run(route)
    first = await clock(db, ticket.id, "first_response")
    assert first.policy_id == strict
    assert (await get_ticket(db, ticket.id)).sla_policy_id == strict
    # Still one clock per metric: the running ones were re-targeted, not duplicated.
    assert len(await clocks(db, ticket.id)) == 2


async def test_next_response_is_missed_when_nobody_answers_in_time(db: Database) -> None:
    await make_policy(db)
    agent = await create_user(db, "sla3@example.com")
    conversation_id, _ = await customer_writes(db, "v_sla_next_missed")
    ticket = await open_ticket(db, conversation_id)
    await agent_replies(db, conversation_id, agent)
    await customer_seen(db, conversation_id)
    following = await clock(db, ticket.id, "next_response")
    await sla_pass(db, following.due_at + timedelta(seconds=1))
    missed = await clock(db, ticket.id, "next_response")
    assert (missed.status, missed.breached_at is not None) == ("missed", True)
    # A late answer is recorded on the missed clock, which stays missed.
    await agent_replies(db, conversation_id, agent)
    late = await clock(db, ticket.id, "next_response")
    assert (late.status, late.stopped_at is not None) == ("missed", True)


async def test_the_ticket_view_shows_about_to_breach(db: Database) -> None:
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "v_sla_view")
    ticket = await open_ticket(db, conversation_id)
    due = (await clock(db, ticket.id, "first_response")).due_at
    await sla_pass(db, due - timedelta(minutes=5))
    async with db.reading() as session:
        view = await full_view(session, await session.get(Ticket, ticket.id))
    first = next(c for c in view["sla"] if c["metric"] == "first_response")
    assert (first["status"], first["about_to_breach"], first["paused"]) == ("active", True, False)
    assert 0 < first["seconds_to_breach"] <= 3600


async def test_the_worker_reads_once_which_messages_touch_a_clock(db: Database) -> None:
    """Only conversations whose active ticket has a policy are worth a write transaction:
    no ticket, and a ticket opened before any policy existed, are left out."""
    from tickets.sla_worker import conversations_with_sla

    bare, _ = await customer_writes(db, "no-ticket")
    unpoliced, _ = await customer_writes(db, "no-policy")
    await open_ticket(db, unpoliced)
    await make_policy(db)
    timed, _ = await customer_writes(db, "timed")
    await open_ticket(db, timed)
    async with db.reading() as session:
        found = await conversations_with_sla(session, {bare, unpoliced, timed, 999_999})
    assert found == {timed}
