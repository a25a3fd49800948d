"""CSAT on web chat through the running hub: an agent solves the ticket, the widget
shows the rating request with buttons, the customer presses one, the rating is stored
with the agent who solved it, the customer is thanked and the ticket stays solved."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse

from switchboard.tx import Database
from tests.conftest import ClientFactory
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
from tickets.csat import BUTTONS


async def bot_message(widget: ClientWebSocketResponse, within: float = 15) -> dict[str, Any]:
    """The next message the hub (not the customer) shows in the widget."""
    while True:
        message: dict[str, Any] = (await receive(widget, "message", within))["message"]
        if message["author_kind"] == "bot":
            return message


async def test_solve_request_press_stored_thanks(make_client: ClientFactory, db: Database) -> None:
    client = await make_client()  # with its workers: follow-up and CSAT
    agent_id, agent = await staff_token(db, "solver@example.com", "agent")
    _, boss = await staff_token(db, "boss@example.com", "supervisor")
    visitor, visitor_id = await new_visitor(client)
    widget = await open_widget(client, visitor)
    assert (await send_text(widget, "csat-0001", "my parcel never came"))["type"] == "ack"
    conversation_id = await conversation_of(db, visitor_id)
    for _ in range(200):  # the follow-up worker opens the ticket (no bot in this inbox)
        if await tickets_of(db, conversation_id):
            break
        await asyncio.sleep(0.05)
    [ticket] = await tickets_of(db, conversation_id)

    solved = await client.patch(
        f"/api/v1/tickets/{ticket.id}", json={"status": "solved"}, headers=bearer(agent)
    )
    assert solved.status == 200, await solved.text()

    request = await bot_message(widget)
    assert "1 (poor) to 5 (excellent)" in request["text"]
    assert request["choices"] == BUTTONS["en"]
    assert "/csat/" not in request["text"]  # buttons here, no link

    assert (await send_text(widget, "csat-0002", request["choices"][3]))["type"] == "ack"
    thanks = await bot_message(widget)
    assert thanks["text"].startswith("Thank you for your rating")
    assert (await send_text(widget, "csat-0003", "Quick and kind, thanks"))["type"] == "ack"
    assert (await bot_message(widget))["text"] == "Thank you for your comment."

    view = await (await client.get(f"/api/v1/tickets/{ticket.id}", headers=bearer(agent))).json()
    assert view["ticket"]["status"] == "solved"  # the rating did not reopen it
    survey = view["ticket"]["csat"]
    assert survey["rating"] == 4
    assert "comment" not in survey and survey["commented_at"]  # the report has it
    assert survey["agent_id"] == agent_id
    assert survey["answered_via"] == "reply"
    assert len(await tickets_of(db, conversation_id)) == 1

    report = await client.get("/api/v1/csat", headers=bearer(boss))
    assert report.status == 200
    body = await report.json()
    assert [(r["ticket_id"], r["comment"]) for r in body["ratings"]] == [
        (ticket.id, "Quick and kind, thanks")
    ]
    assert body["summary"] == {"count": 1, "average": 4.0, "satisfied_percent": 100.0}
    assert (await client.get("/api/v1/csat", headers=bearer(agent))).status == 403
    await widget.close()
