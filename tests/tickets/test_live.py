"""The running hub: a message in an inbox without a bot opens a ticket, and an open
inbox sees ticket changes live."""

from __future__ import annotations

import asyncio

from conversations.models import Conversation
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
from tests.tickets.support import tickets_of
from tickets.models import TicketWatch

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
