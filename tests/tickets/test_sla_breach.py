"""The breach worker: about-to-breach, breach, escalations, exactly once across workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from conversations.models import AuthorKind
from conversations.service import do_reply
from switchboard.bus import InProcessBus
from switchboard.db import create_engine, create_sessionmaker, utcnow
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import create_user
from tests.tickets.sla_support import clock, make_policy, sla_pass
from tests.tickets.support import activities, customer_writes, get_ticket, open_ticket
from tickets.checks import TicketChanges
from tickets.events import ticket_topic
from tickets.models import TicketActivity
from tickets.service import do_update_ticket
from tickets.sla_events import SlaBreached, SlaWarning
from tickets.sla_worker import SlaWorkerPolicy, do_sla_pass


async def test_warning_then_breach_each_once_with_timeline_and_events(db: Database) -> None:
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "v_br_1")
    ticket = await open_ticket(db, conversation_id)
    due = (await clock(db, ticket.id, "first_response")).due_at
    async with db.bus.subscribe([ticket_topic(ticket.id)]) as events:
        # Half an hour before: not yet within the 15-minute lead.
        assert await sla_pass(db, due - timedelta(minutes=30)) == 0
        assert await sla_pass(db, due - timedelta(minutes=10)) == 1
        first = await clock(db, ticket.id, "first_response")
        assert (first.status, first.warned_at is not None) == ("active", True)
        # Warned once: the next pass before the due time has nothing to do.
        assert await sla_pass(db, due - timedelta(minutes=5)) == 0
        assert await sla_pass(db, due + timedelta(seconds=1)) == 1
        breached = await clock(db, ticket.id, "first_response")
        assert (breached.status, breached.breached_at is not None) == ("missed", True)
        assert await sla_pass(db, due + timedelta(minutes=5)) == 0
        seen = []
        async with asyncio.timeout(5):
            async for event in events:
                if isinstance(event, SlaWarning | SlaBreached):
                    seen.append(event)
                if len(seen) == 2:
                    break
    assert [(type(e).__name__, e.metric) for e in seen] == [
        ("SlaWarning", "first_response"),
        ("SlaBreached", "first_response"),
    ]
    assert seen[1].ticket["sla"][0]["status"] == "missed"
    kinds = [a["kind"] for a in await activities(db, ticket.id)]
    assert kinds.count("sla_warning") == 1 and kinds.count("sla_breach") == 1
    # The resolution clock (8 hours) is untouched.
    assert (await clock(db, ticket.id, "resolution")).status == "active"


async def test_a_reply_the_worker_never_heard_of_still_counts(db: Database) -> None:
    """Events lost (Redis down): the scan finds the reply in the conversation itself."""
    await make_policy(db)
    agent = await create_user(db, "br2@example.com")
    conversation_id, _ = await customer_writes(db, "v_br_2")
    ticket = await open_ticket(db, conversation_id)
    due = (await clock(db, ticket.id, "first_response")).due_at
    await db.run(
        lambda s: do_reply(
            s,
            conversation_id=conversation_id,
            text="hello",
            author_kind=AuthorKind.AGENT,
            author_user_id=agent,
        )
    )
    assert await sla_pass(db, due + timedelta(minutes=1)) == 1
    first = await clock(db, ticket.id, "first_response")
    assert (first.status, first.breached_at) == ("hit", None)
    assert "sla_breach" not in [a["kind"] for a in await activities(db, ticket.id)]


async def test_breach_escalation_raises_priority_and_unassigns(db: Database) -> None:
    agent = await create_user(db, "br3@example.com")
    await make_policy(
        db,
        escalations=[
            {"when": "breach", "action": "raise_priority", "metrics": ["first_response"]},
            {"when": "breach", "action": "reassign"},
        ],
    )
    conversation_id, _ = await customer_writes(db, "v_br_3")
    ticket = await open_ticket(db, conversation_id)
    await db.run(
        lambda s: do_update_ticket(
            s, ticket.id, TicketChanges(assignee_user_id=agent), actor="system"
        )
    )
    due = (await clock(db, ticket.id, "first_response")).due_at
    await sla_pass(db, due + timedelta(seconds=1))
    after = await get_ticket(db, ticket.id)
    assert (after.priority, after.assignee_user_id) == ("high", None)
    entries = await activities(db, ticket.id)
    breach = next(a for a in entries if a["kind"] == "sla_breach")
    assert breach["data"]["actions"] == ["raise_priority", "reassign"]
    assert {"priority", "assignee"} <= {a["kind"] for a in entries if a["actor"] == "system"}
    # The running resolution clock now measures the high-priority target.
    assert (await clock(db, ticket.id, "resolution")).target_minutes == 240


async def test_a_refused_escalation_still_marks_the_breach_once(db: Database) -> None:
    # The policy reassigns to a user who has left since: the reassignment is refused, but
    # the breach stands, the rest of the escalation runs, and the clock is not due again.
    gone = await create_user(db, "gone@example.com")
    first = "first_response"
    await make_policy(
        db,
        escalations=[
            {"when": "breach", "action": "reassign", "user_id": gone, "metrics": [first]},
            {"when": "breach", "action": "raise_priority", "metrics": [first]},
        ],
    )
    await db.run(lambda s: s.execute(update(User).where(User.id == gone).values(active=False)))
    conversation_id, _ = await customer_writes(db, "v_br_gone")
    ticket = await open_ticket(db, conversation_id)
    due = (await clock(db, ticket.id, "first_response")).due_at
    at = due + timedelta(seconds=1)
    assert await sla_pass(db, at) >= 1
    assert (await clock(db, ticket.id, "first_response")).status == "missed"
    kinds = [a["kind"] for a in await activities(db, ticket.id)]
    assert kinds.count("sla_breach") == 1
    assert kinds.count("sla_escalation_failed") == 1
    assert (await get_ticket(db, ticket.id)).priority == "high"
    # Before the fix the mark was rolled back with the action, and every pass took the
    # same clock again.
    assert await sla_pass(db, at) == 0


async def test_two_workers_breach_and_escalate_each_clock_exactly_once(
    db: Database, settings: object
) -> None:
    await make_policy(db, escalations=[{"when": "breach", "action": "raise_priority"}])
    tickets = []
    for n in range(12):
        conversation_id, _ = await customer_writes(db, f"v_br_many_{n}")
        tickets.append((await open_ticket(db, conversation_id)).id)
    late = utcnow() + timedelta(days=2)  # every first response and resolution overdue
    # A second process: its own engine and connection pool on the same database.
    other_engine = create_engine(db.engine.url.render_as_string(hide_password=False))
    other = Database(other_engine, create_sessionmaker(other_engine), InProcessBus())
    policy = SlaWorkerPolicy(batch=5)

    async def drain(worker: Database) -> int:
        total = 0
        while handled := await worker.run(lambda s: do_sla_pass(s, late, policy)):
            total += handled
        return total

    try:
        handled = await asyncio.gather(drain(db), drain(other))
    finally:
        await other_engine.dispose()
    assert sum(handled) == 2 * len(tickets)
    async with db.reading() as session:
        breaches = (
            await session.execute(select(func.count()).where(TicketActivity.kind == "sla_breach"))
        ).scalar_one()
    assert breaches == 2 * len(tickets)
    # Two breaches per ticket, each raising once: normal → high → urgent, never skipped.
    for ticket_id in tickets:
        assert (await get_ticket(db, ticket_id)).priority == "urgent"
        priority_steps = [
            a["data"] for a in await activities(db, ticket_id) if a["kind"] == "priority"
        ]
        assert priority_steps == [
            {"from": "normal", "to": "high"},
            {"from": "high", "to": "urgent"},
        ]


async def test_messages_before_anything_is_due_cost_no_scan(
    db: Database, monkeypatch: object
) -> None:
    """Every customer message wakes the SLA worker; a scan (a write transaction, SQLite's
    write lock) ran on each, finding nothing due. Now a wake-up before the next due time
    only records the message, and a clock that falls due is still breached."""
    import tickets.sla_worker as sla_worker
    from tickets.sla_worker import MessageSeen, SlaWorker

    scans: list[int] = []
    real = sla_worker.do_sla_pass

    async def counted(*args: object, **kwargs: object) -> int:
        scans.append(1)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sla_worker, "do_sla_pass", counted)  # type: ignore[attr-defined]
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "wakes")
    ticket = await open_ticket(db, conversation_id)
    worker = SlaWorker(db, SlaWorkerPolicy(poll_interval=30, message_gap=0))

    await worker.run_once()  # the first pass scans
    assert len(scans) == 1
    await worker.pause()  # nothing due for hours: the next scan is a poll interval away
    for _ in range(5):
        worker._seen.append(MessageSeen(conversation_id, utcnow(), agent=False))
        await worker.run_once()
    assert len(scans) == 1

    # The resolution clock falls due: the next pause sees it and the scan breaches it.
    await db.run(
        lambda s: s.execute(
            update(sla_worker.SlaClock)
            .where(sla_worker.SlaClock.ticket_id == ticket.id)
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
    )
    wait = await worker.pause()
    assert wait <= 0.5
    await asyncio.sleep(wait + 0.1)
    assert await worker.run_once() >= 1
    assert len(scans) == 2
    assert (await clock(db, ticket.id, "resolution")).status == "missed"


async def test_a_stream_of_messages_shares_a_few_reads(db: Database, monkeypatch: object) -> None:
    """Each pass reads which of the conversations heard have an SLA clock. With one
    customer writing, every message woke the worker for a pass of its own: a session and
    a query per message, most of the hub's CPU per message. Messages heard within the
    gap after a pass now wait for the next one; none is dropped."""
    import tickets.sla_worker as sla_worker
    from tickets.sla_worker import MessageSeen, SlaWorker

    reads: list[int] = []
    handled: list[int] = []
    all_handled = asyncio.Event()
    real_read, real_seen = sla_worker.conversations_with_sla, sla_worker.do_message_seen

    async def counted_read(*args: object) -> set[int]:
        reads.append(1)
        return await real_read(*args)  # type: ignore[arg-type]

    async def counted_seen(*args: object) -> None:
        handled.append(1)
        await real_seen(*args)  # type: ignore[arg-type]
        if len(handled) == 40:
            all_handled.set()

    monkeypatch.setattr(sla_worker, "conversations_with_sla", counted_read)  # type: ignore[attr-defined]
    monkeypatch.setattr(sla_worker, "do_message_seen", counted_seen)  # type: ignore[attr-defined]
    await make_policy(db)
    conversation_id, _ = await customer_writes(db, "stream")
    await open_ticket(db, conversation_id)
    worker = SlaWorker(db, SlaWorkerPolicy(poll_interval=30, message_gap=1.0))
    running = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(40):
            worker._seen.append(MessageSeen(conversation_id, utcnow(), agent=False))
            worker.wake()
            await asyncio.sleep(0.005)  # the worker gets the loop between messages
        async with asyncio.timeout(10):
            await all_handled.wait()
    finally:
        worker.stop()
        await running
    assert len(handled) == 40  # every message heard reached its ticket's clocks
    assert 2 <= len(reads) <= 4, reads  # was one read per message
