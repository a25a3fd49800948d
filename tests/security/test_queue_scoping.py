"""Queue scoping of conversations, end to end (SECURITY.md 4: 26, 30, 31; issue 6 point 1):
an agent outside a conversation's queue finds it in no list, search or profile, and an
agent removed from the queue stops receiving its events on an already-open socket and
gets 404 over REST at once. Success and failure share their setup (the member and the
outsider look at the same rows), so a denial cannot pass for the wrong reason."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse
from sqlalchemy import insert, update

from routing.models import Queue, QueueMember
from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory
from tests.security.support import (
    bearer,
    conversation_of,
    new_visitor,
    open_widget,
    receive,
    send_text,
    staff_token,
)
from tests.tickets.support import customer_writes, open_ticket
from tickets.models import Ticket

HUB_ORIGIN = "http://127.0.0.1:8080"


async def queue_with(db: Database, name: str, member_id: int) -> int:
    async def create(session: Any) -> int:
        queue = Queue(name=name)
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=member_id))
        return queue.id

    return await db.run(create)


async def into_queue(db: Database, conversation_id: int, queue_id: int) -> int:
    """Open the conversation's ticket and put it in the queue; the ticket id."""
    ticket = await open_ticket(db, conversation_id)
    await db.run(
        lambda s: s.execute(update(Ticket).where(Ticket.id == ticket.id).values(queue_id=queue_id))
    )
    return ticket.id


async def agent_socket(client: AppClient, token: str) -> ClientWebSocketResponse:
    ws = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
    await ws.send_json({"type": "ping"})  # answered once the socket serves (subscribed)
    await receive(ws, "pong")
    return ws


async def messages_until(
    ws: ClientWebSocketResponse, conversation_id: int, within: float = 30
) -> list[dict[str, Any]]:
    """Every message.created frame up to and including the first one of this conversation."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            frame = (await receive(ws, "message.created", within=within))["data"]
            seen.append(frame)
            if frame["conversation_id"] == conversation_id:
                return seen


async def test_removing_an_agent_from_a_queue_stops_its_events_on_the_open_socket_at_once(
    make_client: ClientFactory, db: Database
) -> None:
    client = await make_client(run_workers=False)
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    member_id, member = await staff_token(db, "member@example.com", "agent")
    _sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    queue_id = await queue_with(db, "vip", member_id)

    # A: a conversation in the queue. B: one with no ticket (everyone's), the barrier.
    token_a, visitor_a = await new_visitor(client)
    token_b, visitor_b = await new_visitor(client)
    widget_a, widget_b = await open_widget(client, token_a), await open_widget(client, token_b)
    sent = await send_text(widget_a, "msg-a-0001", "my order is late")
    assert sent["type"] == "ack", sent
    assert (await send_text(widget_b, "msg-b-0001", "hello"))["type"] == "ack"
    conversation_a = await conversation_of(db, visitor_a)
    conversation_b = await conversation_of(db, visitor_b)
    await into_queue(db, conversation_a, queue_id)

    member_ws, supervisor_ws = (
        await agent_socket(client, member),
        await agent_socket(client, supervisor),
    )
    assert (await send_text(widget_a, "msg-a-0002", "still waiting"))["type"] == "ack"
    seen = await messages_until(member_ws, conversation_a)
    assert seen[-1]["message"]["text"] == "still waiting"
    assert (
        await client.get(f"/api/v1/conversations/{conversation_a}", headers=bearer(member))
    ).status == 200

    removed = await client.delete(
        f"/api/v1/queues/{queue_id}/members/{member_id}", headers=bearer(admin)
    )
    assert removed.status == 200, await removed.text()

    # The next message in A, then one in B: the member's socket, still open, shows B's
    # and never A's; the supervisor's shows both, in order.
    assert (await send_text(widget_a, "msg-a-0003", "my card ends 4242"))["type"] == "ack"
    assert (await send_text(widget_b, "msg-b-0002", "barrier"))["type"] == "ack"
    member_saw = await messages_until(member_ws, conversation_b)
    assert [f["conversation_id"] for f in member_saw] == [conversation_b]
    assert member_saw[0]["message"]["text"] == "barrier"
    supervisor_saw = await messages_until(supervisor_ws, conversation_b)
    texts = [f["message"]["text"] for f in supervisor_saw]
    assert texts[-2:] == ["my card ends 4242", "barrier"]
    # Typing in A is refused too, and REST agrees, at once.
    await member_ws.send_json({"type": "typing", "conversation_id": conversation_a, "typing": True})
    assert (await receive(member_ws, "error"))["code"] == "not_found"
    gone = await client.get(f"/api/v1/conversations/{conversation_a}", headers=bearer(member))
    assert gone.status == 404
    for ws in (member_ws, supervisor_ws, widget_a, widget_b):
        await ws.close()


async def test_lists_search_and_profiles_show_an_outsider_nothing_of_another_queue(
    make_client: ClientFactory, db: Database
) -> None:
    client = await make_client(run_workers=False)
    member_id, member = await staff_token(db, "member@example.com", "agent")
    _out_id, outsider = await staff_token(db, "outsider@example.com", "agent")
    queue_id = await queue_with(db, "vip", member_id)
    hidden, hidden_customer = await customer_writes(db, "v_hidden", "zebrafish refund please")
    public, public_customer = await customer_writes(db, "v_public", "zebrafish opening hours")
    ticket_id = await into_queue(db, hidden, queue_id)
    public_ticket = (await open_ticket(db, public)).id

    async def get(token: str, path: str) -> Any:
        response = await client.get(f"/api/v1{path}", headers=bearer(token))
        assert response.status == 200, (path, await response.text())
        return await response.json()

    for token, sees_hidden in ((member, True), (outsider, False)):
        listed = {c["id"] for c in (await get(token, "/conversations"))["conversations"]}
        assert (hidden in listed) is sees_hidden and public in listed
        tickets = {t["id"] for t in (await get(token, "/tickets"))["tickets"]}
        assert (ticket_id in tickets) is sees_hidden and public_ticket in tickets
        inbox = await get(token, "/inbox/conversations")
        inbox_ids = {c["id"] for c in inbox["conversations"]}
        assert (hidden in inbox_ids) is sees_hidden and public in inbox_ids
        found = (await get(token, "/search?q=zebrafish"))["results"]
        texts = repr(found["messages"]["items"])
        assert ("refund" in texts) is sees_hidden and "opening hours" in texts
        for kind in ("customers", "tickets"):
            ids = {item["id"] for item in found[kind]["items"]}
            assert not ids & {hidden_customer, ticket_id} or sees_hidden, kind
        profile = await client.get(f"/api/v1/customers/{hidden_customer}", headers=bearer(token))
        assert profile.status == (200 if sees_hidden else 404)
        visible_profile = await get(token, f"/customers/{public_customer}")
        assert [c["id"] for c in visible_profile["customer"]["conversations"]] == [public]


async def test_the_conversation_rule_case_by_case(client: AppClient, db: Database) -> None:
    """`web.access.visible_conversations` for an agent outside the queue, one case per
    branch; a supervisor sees every one of them."""
    member_id, _member = await staff_token(db, "member@example.com", "agent")
    agent_id, agent = await staff_token(db, "agent@example.com", "agent")
    _sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    queue_id = await queue_with(db, "vip", member_id)

    bot_only, _ = await customer_writes(db, "v_case_bot")  # no ticket at all
    unrouted, _ = await customer_writes(db, "v_case_unrouted")
    await open_ticket(db, unrouted)  # a ticket in no queue
    queued, _ = await customer_writes(db, "v_case_queued")
    await into_queue(db, queued, queue_id)
    assigned, _ = await customer_writes(db, "v_case_assigned")
    assigned_ticket = await into_queue(db, assigned, queue_id)
    await db.run(
        lambda s: s.execute(
            update(Ticket).where(Ticket.id == assigned_ticket).values(assignee_user_id=agent_id)
        )
    )

    async def status(token: str, conversation_id: int) -> int:
        path = f"/api/v1/conversations/{conversation_id}"
        return (await client.get(path, headers=bearer(token))).status

    expected = {bot_only: 200, unrouted: 200, queued: 404, assigned: 200}
    assert {c: await status(agent, c) for c in expected} == expected
    assert {c: await status(supervisor, c) for c in expected} == dict.fromkeys(expected, 200)


async def test_an_event_costs_one_access_read_per_hub_however_many_agent_sockets(
    make_client: ClientFactory, db: Database, monkeypatch: Any
) -> None:
    """The fan-out: every agent socket of a hub decides on one shared read of the event's
    audience (`web.inbox.AudienceCache`), and still decides per agent."""
    import web.access
    import web.inbox

    reads: list[int] = []
    asked: list[int] = []
    real_read = web.access.conversation_audience
    real_ask = web.inbox.AudienceCache.audience

    async def counting_read(db: Database, conversation_id: int) -> Any:
        reads.append(conversation_id)
        return await real_read(db, conversation_id)

    async def counting_ask(self: Any, event: Any, read: Any) -> Any:
        asked.append(id(event))
        return await real_ask(self, event, read)

    monkeypatch.setattr(web.inbox, "conversation_audience", counting_read)
    monkeypatch.setattr(web.inbox.AudienceCache, "audience", counting_ask)
    client = await make_client(run_workers=False)
    member_id, member = await staff_token(db, "member@example.com", "agent")
    other_id, other = await staff_token(db, "other@example.com", "agent")
    _out_id, outsider = await staff_token(db, "outsider@example.com", "agent")
    queue_id = await queue_with(db, "vip", member_id)
    await db.run(
        lambda s: s.execute(insert(QueueMember).values(queue_id=queue_id, user_id=other_id))
    )
    token_a, visitor_a = await new_visitor(client)
    token_b, visitor_b = await new_visitor(client)
    widget_a, widget_b = await open_widget(client, token_a), await open_widget(client, token_b)
    assert (await send_text(widget_a, "msg-a-0001", "my order is late"))["type"] == "ack"
    assert (await send_text(widget_b, "msg-b-0001", "hello"))["type"] == "ack"
    conversation_a = await conversation_of(db, visitor_a)
    conversation_b = await conversation_of(db, visitor_b)
    await into_queue(db, conversation_a, queue_id)

    sockets = [await agent_socket(client, t) for t in (member, other, outsider)]
    reads.clear()
    asked.clear()
    assert (await send_text(widget_a, "msg-a-0002", "still waiting"))["type"] == "ack"
    assert (await send_text(widget_b, "msg-b-0002", "barrier"))["type"] == "ack"
    for ws in sockets[:2]:
        seen = await messages_until(ws, conversation_b)
        assert [f["conversation_id"] for f in seen] == [conversation_a, conversation_b]
    outsider_saw = await messages_until(sockets[2], conversation_b)
    assert [f["conversation_id"] for f in outsider_saw] == [conversation_b]
    # Each event was asked about by all three sockets and read once.
    events = set(asked)
    assert len(events) >= 2 and len(asked) == 3 * len(events)
    assert len(reads) == len(events)
    assert reads.count(conversation_a) >= 1 and reads.count(conversation_b) >= 1
    for ws in (*sockets, widget_a, widget_b):
        await ws.close()
