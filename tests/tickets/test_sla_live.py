"""The running hub's SLA worker: an agent's reply meets the first response, and a breach
reaches an open inbox live, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from switchboard.db import utcnow
from switchboard.tx import Database
from tests.conftest import ClientFactory, create_user, login
from tests.security.support import (
    bearer,
    conversation_of,
    new_visitor,
    open_widget,
    receive,
    send_text,
    staff_token,
)
from tests.tickets.sla_support import clock, make_policy
from tests.tickets.support import activities
from tickets.sla_models import SlaClock

HUB_ORIGIN = "http://127.0.0.1:8080"


async def test_breach_reaches_the_inbox_and_a_reply_meets_the_response(
    make_client: ClientFactory, db: Database
) -> None:
    await make_policy(db)
    client = await make_client()  # with its workers
    await create_user(db, "sla-live@example.com")
    _, token = await staff_token(db, "sla-live-api@example.com", "agent")
    visitor, visitor_id = await new_visitor(client)
    widget = await open_widget(client, visitor)
    await login(client, "sla-live@example.com")
    inbox = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})

    assert (await send_text(widget, "sla-live-1", "where is my parcel"))["type"] == "ack"
    conversation_id = await conversation_of(db, visitor_id)
    created = (await receive(inbox, "ticket.created", within=20))["data"]
    ticket_id = created["ticket_id"]
    assert {c["metric"] for c in created["ticket"]["sla"]} == {"first_response", "resolution"}

    # The resolution clock falls due (moved into the past, instead of waiting 8 hours);
    # the customer's next message wakes the worker.
    await db.run(
        lambda s: s.execute(
            update(SlaClock)
            .where(SlaClock.ticket_id == ticket_id, SlaClock.metric == "resolution")
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
    )
    assert (await send_text(widget, "sla-live-2", "hello?"))["type"] == "ack"
    breached = (await receive(inbox, "ticket.sla_breached", within=20))["data"]
    assert (breached["ticket_id"], breached["metric"]) == (ticket_id, "resolution")

    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "it ships today"},
        headers=bearer(token),
    )
    assert response.status == 201
    updated = (await receive(inbox, "ticket.updated", within=20))["data"]
    while "sla" not in updated["changes"]:  # the reply's own updates may come first
        updated = (await receive(inbox, "ticket.updated", within=20))["data"]
    assert updated["changes"]["sla"] == [{"metric": "first_response", "status": "hit"}]
    assert (await clock(db, ticket_id, "first_response")).status == "hit"
    kinds = [a["kind"] for a in await activities(db, ticket_id)]
    assert kinds.count("sla_breach") == 1
    await widget.close()
