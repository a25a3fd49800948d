"""The running hub: a message in an inbox without a bot opens a ticket, and an open
inbox sees ticket changes live."""

from __future__ import annotations

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

    created = (await receive(inbox, "ticket.created"))["data"]
    assert created["ticket"]["conversation_ids"] == [conversation_id]
    assert created["ticket"]["subject"] == "my card was charged twice"
    ticket_id = created["ticket_id"]

    response = await client.patch(
        f"/api/v1/tickets/{ticket_id}", json={"priority": "high"}, headers=bearer(token)
    )
    assert response.status == 200
    updated = (await receive(inbox, "ticket.updated"))["data"]
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
