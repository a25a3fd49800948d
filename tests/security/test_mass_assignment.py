"""No field a caller sends changes their own role or anyone's ownership (SECURITY.md 4: 28,
29; issue 6 point 1): on every write route where such a field could sneak in (users and
agents, preferences, tickets, notes, messages, customers, the knowledge base, saved
views, presence), an extra `role`, `user_id`, `author…`, `assignee…`, `customer_id`,
`queue_id`, `id` or `password` is refused with 400 or ignored, and never applied."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from conversations.models import Message
from customers.models import Customer
from routing.models import AgentProfile
from switchboard.models import User
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.knowledge_base.support import HOURS
from tests.security.support import bearer, staff_token
from tests.tickets.support import customer_writes, open_ticket
from tickets.models import Ticket

SNEAKY = {
    "id": 999,
    "role": "admin",
    "user_id": 1,
    "author_id": 1,
    "author_user_id": 1,
    "author_kind": "customer",
    "assignee_id": 1,
    "assignee_user_id": 1,
    "customer_id": 1,
    "queue_id": 1,
    "inbox_id": 1,
    "merged_into_id": 1,
    "password": "pwned-pwned-pwned",
    "password_hash": "x",
    "active": True,
    "created_at": "2000-01-01T00:00:00+00:00",
}


async def row(db: Database, model: Any, key: Any) -> Any:
    async with db.reading() as session:
        return await session.get(model, key)


def refused_or_fine(status: int, good: int = 200) -> None:
    assert status in (400, good), status


async def test_no_body_field_changes_a_role_an_owner_or_an_author(
    client: AppClient, db: Database
) -> None:
    admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    agent_id, agent = await staff_token(db, "agent@example.com", "agent")
    other_id, _other = await staff_token(db, "other@example.com", "agent")
    conversation_id, customer_id = await customer_writes(db, "v_mass")
    ticket_id = (await open_ticket(db, conversation_id)).id
    evil = {**SNEAKY, "user_id": other_id, "author_user_id": other_id, "author_id": other_id}

    async def send(method: str, path: str, token: str, body: dict[str, Any]) -> int:
        response = await client.request(method, f"/api/v1{path}", json=body, headers=bearer(token))
        return response.status

    # Own account: preferences, and the admins' user route.
    refused_or_fine(await send("PATCH", "/me", agent, {"locale": "en", **evil}))
    assert await send("PATCH", f"/users/{agent_id}", agent, {"role": "admin"}) == 403
    assert await send("PATCH", f"/users/{sup_id}", supervisor, {"role": "admin"}) == 403
    assert await send("POST", "/users", supervisor, {"email": "x@e.com", "role": "admin"}) == 403
    refused_or_fine(
        await send("PATCH", f"/users/{agent_id}", admin, {"name": "Al", "password": "x" * 12})
    )
    refused_or_fine(await send("PATCH", f"/agents/{agent_id}", admin, {"capacity": 3, **evil}))
    for who in (agent_id, sup_id):
        user = await row(db, User, who)
        assert user.role == ("agent" if who == agent_id else "supervisor") and user.active
    refused_or_fine(await send("PUT", "/agents/me/presence", agent, {"status": "away", **evil}))
    other_profile = await row(db, AgentProfile, other_id)
    assert other_profile is None or other_profile.wants != "away"

    # Tickets: an agent cannot hand a ticket to someone else or move it by a stray field.
    patched = await send("PATCH", f"/tickets/{ticket_id}", agent, {"priority": "high", **evil})
    assert patched in (400, 403), patched
    ignored = await send(
        "PATCH",
        f"/tickets/{ticket_id}",
        agent,
        {"priority": "high", "queue_id": 1, "customer_id": 999, "id": 5, "merged_into_id": 1},
    )
    refused_or_fine(ignored)
    ticket = await row(db, Ticket, ticket_id)
    assert (ticket.assignee_user_id, ticket.queue_id, ticket.customer_id) == (
        None,
        None,
        customer_id,
    )
    assert ticket.merged_into_id is None
    note = await client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json={"body": "mine", **evil}, headers=bearer(agent)
    )
    if note.status == 201:
        assert (await note.json())["note"]["author_id"] == agent_id

    # Messages and internal notes: the author is the caller, an agent.
    for path, text_field in (("messages", "text"), ("notes", "text")):
        sent = await client.post(
            f"/api/v1/conversations/{conversation_id}/{path}",
            json={text_field: f"from {path}", **evil, "attachments": []},
            headers=bearer(agent),
        )
        assert sent.status in (201, 400), (path, sent.status)
    async with db.reading() as session:
        staff_rows = (
            await session.execute(
                select(Message.author_user_id, Message.author_kind).where(
                    Message.conversation_id == conversation_id, Message.author_user_id.isnot(None)
                )
            )
        ).all()
    assert staff_rows and all(r == (agent_id, "agent") for r in staff_rows), staff_rows

    # Customers: the profile and its notes take only their own fields.
    profile = await send("PATCH", f"/customers/{customer_id}", agent, {"tier": "vip", **evil})
    assert profile == 400
    customer = await row(db, Customer, customer_id)
    assert customer.merged_into_id is None and customer.id == customer_id
    assert (
        await send("POST", f"/customers/{customer_id}/notes", agent, {"body": "x", **evil}) == 400
    )

    # The knowledge base: the version's author is the admin who saved it.
    created = await client.post(
        "/api/v1/kb/articles", json={**HOURS, **evil}, headers=bearer(admin)
    )
    assert created.status in (201, 400)
    if created.status == 201:
        article = (await created.json())["article"]
        assert article["id"] != 999
        versions = await client.get(
            f"/api/v1/kb/articles/{article['id']}/versions", headers=bearer(admin)
        )
        authors = {
            v.get("author_id", v.get("author_user_id")) for v in (await versions.json())["versions"]
        }
        assert authors <= {admin_id, None}, authors

    # Saved views belong to whoever saves them.
    view = await client.post(
        "/api/v1/inbox/views", json={"name": "mine", "user_id": other_id}, headers=bearer(agent)
    )
    assert view.status in (201, 400)
    if view.status == 201:
        view_id = (await view.json())["view"]["id"]
        theirs = await client.patch(
            f"/api/v1/inbox/views/{view_id}", json={"name": "x"}, headers=bearer(_other)
        )
        assert theirs.status == 404
