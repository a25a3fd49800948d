"""The running hub: a message in an inbox without a bot opens a ticket, and an open
inbox sees ticket changes live."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from conversations.models import Conversation
from routing.models import Queue, QueueMember
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
from tests.tickets.support import customer_writes, open_ticket, tickets_of
from tickets.models import Ticket, TicketWatch

HUB_ORIGIN = "http://127.0.0.1:8080"


async def test_inbox_sees_the_ticket_open_and_change(
    make_client: ClientFactory, db: Database
) -> None:
    client = await make_client()  # with its workers
    await create_user(db, "live@example.com")
    _, token = await staff_token(db, "live-api@example.com", "agent")
    visitor, visitor_id = await new_visitor(client)  # before login: no CSRF token needed
    widget = await open_widget(client, visitor)
    await login(client, "live@example.com")
    inbox = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})

    assert (await send_text(widget, "live-0001", "my card was charged twice"))["type"] == "ack"
    conversation_id = await conversation_of(db, visitor_id)

    # Generous: on a loaded machine the worker's pass may take a while; this is not a
    # timing test (the follow-up is woken by the message, not by its poll).
    created = (await receive(inbox, "ticket.created", within=30))["data"]
    assert created["ticket"]["conversation_ids"] == [conversation_id]
    assert created["ticket"]["subject"] == "my card was charged twice"
    ticket_id = created["ticket_id"]

    response = await client.patch(
        f"/api/v1/tickets/{ticket_id}", json={"priority": "high"}, headers=bearer(token)
    )
    assert response.status == 200
    updated = (await receive(inbox, "ticket.updated", within=30))["data"]
    assert updated["changes"] == {"priority": {"from": "normal", "to": "high"}}
    assert updated["ticket"]["priority"] == "high"
    # A second message is the same ticket's: no second ticket.created.
    assert (await send_text(widget, "live-0002", "hello?"))["type"] == "ack"
    listed = await (
        await client.get(
            f"/api/v1/tickets?conversation_id={conversation_id}", headers=bearer(token)
        )
    ).json()
    assert [t["id"] for t in listed["tickets"]] == [ticket_id]
    await widget.close()
    await inbox.close()


async def test_concurrent_messages_on_two_instances_open_exactly_one_ticket(
    make_client: ClientFactory, db: Database
) -> None:
    # Two hubs on one database (and one Redis on PostgreSQL), each running its workers.
    first, second = await make_client(), await make_client()
    visitor, visitor_id = await new_visitor(first)
    sockets = [await open_widget(first, visitor), await open_widget(second, visitor)]

    async def burst(n: int) -> None:
        for k in range(5):
            ack = await send_text(sockets[n], f"burst-{n}-{k:04d}", f"message {n}.{k}")
            assert ack["type"] == "ack"

    await asyncio.gather(burst(0), burst(1))
    conversation_id = await conversation_of(db, visitor_id)
    # Let both follow-up workers finish whatever they were woken for.
    async with asyncio.timeout(10):
        while True:
            async with db.reading() as session:
                watched = await session.get(TicketWatch, conversation_id)
                conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            if watched is not None and watched.seen_seq == conversation.last_seq:
                break
            await asyncio.sleep(0.05)
    assert len(await tickets_of(db, conversation_id)) == 1
    for ws in sockets:
        await ws.close()


async def test_ticket_events_reach_only_agents_who_may_see_the_ticket(
    make_client: ClientFactory, db: Database
) -> None:
    """A queued ticket's changes go live to its queue's members, not to an agent outside
    the queue, who also gets 404 for it over REST (SECURITY.md 4: 31)."""
    client = await make_client(run_workers=False)
    member_id, member = await staff_token(db, "member@example.com", "agent")
    _, outsider = await staff_token(db, "outsider@example.com", "agent")
    _, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    queued_conv, _ = await customer_writes(db, "v_scope_q")
    open_conv, _ = await customer_writes(db, "v_scope_o")
    queued, unqueued = await open_ticket(db, queued_conv), await open_ticket(db, open_conv)

    async def arrange(session: Any) -> None:
        queue = Queue(name="billing")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=member_id))
        await session.execute(
            update(Ticket).where(Ticket.id == queued.id).values(queue_id=queue.id)
        )

    await db.run(arrange)
    sockets = {
        token: await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
        for token in (member, outsider)
    }
    for ws in sockets.values():  # subscribed: the socket answers frames once it serves
        await ws.send_json({"type": "ping"})
        await receive(ws, "pong")

    for ticket_id in (queued.id, unqueued.id):  # the queued change first, then a public one
        response = await client.patch(
            f"/api/v1/tickets/{ticket_id}", json={"priority": "high"}, headers=bearer(supervisor)
        )
        assert response.status == 200

    first = (await receive(sockets[member], "ticket.updated", within=30))["data"]
    second = (await receive(sockets[member], "ticket.updated", within=30))["data"]
    assert [first["ticket_id"], second["ticket_id"]] == [queued.id, unqueued.id]
    # Events arrive in publish order: the outsider's first ticket frame is the public one.
    only = (await receive(sockets[outsider], "ticket.updated", within=30))["data"]
    assert only["ticket_id"] == unqueued.id
    # And REST agrees.
    response = await client.get(f"/api/v1/tickets/{queued.id}", headers=bearer(outsider))
    assert response.status == 404
    for ws in sockets.values():
        await ws.close()
