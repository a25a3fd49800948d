"""Who may use the ticket routes: staff yes; anonymous callers and visitor tokens get 401;
a ticket that does not exist and one that does look alike to anyone refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from routing.models import Queue, QueueMember
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.security.support import bearer, new_visitor, staff_token
from tests.tickets.support import customer_writes, open_ticket, ticket_count
from tickets.models import Ticket
from tickets.service import do_create_ticket

ROUTES = [
    ("GET", "/api/v1/tickets", None),
    ("POST", "/api/v1/tickets", "create"),
    ("GET", "/api/v1/tickets/{id}", None),
    ("PATCH", "/api/v1/tickets/{id}", {"priority": "high"}),
    ("GET", "/api/v1/tickets/{id}/notes", None),
    ("POST", "/api/v1/tickets/{id}/notes", {"body": "a note"}),
    ("GET", "/api/v1/tickets/{id}/timeline", None),
    ("POST", "/api/v1/tickets/{id}/merge", "merge"),
]


async def arrange(db: Database, name: str) -> dict[str, Any]:
    conversation_id, customer_id = await customer_writes(db, f"v_acc_{name}")
    ticket = await open_ticket(db, conversation_id)
    other = await db.run(
        lambda s: do_create_ticket(s, customer_id=customer_id, actor="system", subject="call")
    )
    return {
        "id": ticket.id,
        "other": other.id,
        "conversation_id": conversation_id,
        "customer_id": customer_id,
    }


async def call(
    client: AppClient, method: str, path: str, body: Any, ids: dict[str, Any], headers: Any
) -> int:
    if body == "create":
        body = {"customer_id": ids["customer_id"]}
    elif body == "merge":
        body = {"other_id": ids["other"]}
    url = path.format(id=ids["id"])
    response = await client.request(method, url, json=body, headers=headers)
    return response.status


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_staff_of_every_role_may_use_every_route(
    client: AppClient, db: Database, method: str, path: str, body: Any
) -> None:
    for n, role in enumerate(("agent", "supervisor", "admin")):
        ids = await arrange(db, f"{role}{n}")
        _, token = await staff_token(db, f"{role}@example.com", role)
        status = await call(client, method, path, body, ids, bearer(token))
        assert status in (200, 201), (role, method, path, status)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_anonymous_and_visitors_get_401_and_change_nothing(
    client: AppClient, db: Database, method: str, path: str, body: Any
) -> None:
    # First: the tests' own inboxes would make "the" web-chat inbox ambiguous.
    visitor_token, _ = await new_visitor(client)
    ids = await arrange(db, "anon")
    before = await ticket_count(db)
    for headers in (
        {},
        bearer(visitor_token),
        {"X-Visitor-Token": visitor_token},
        bearer("sbt_made-up-token"),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ):
        status = await call(client, method, path, body, ids, headers)
        assert status == 401, (headers, method, path, status)
    assert await ticket_count(db) == before


@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if "{id}" in r[1]])
async def test_missing_and_malformed_ids_are_404(
    client: AppClient, db: Database, method: str, path: str, body: Any
) -> None:
    ids = await arrange(db, "missing")
    _, token = await staff_token(db, "agent@example.com", "agent")
    for bad in ("999999", "0", "-1", "abc", "1.0", "²", "99999999999", "%00"):
        status = await call(client, method, path, body, {**ids, "id": bad}, bearer(token))
        assert status == 404, (bad, method, path, status)


async def test_an_agent_outside_the_queue_cannot_reach_its_ticket_by_any_route(
    client: AppClient, db: Database
) -> None:
    member_id, member = await staff_token(db, "member@example.com", "agent")
    _, outsider = await staff_token(db, "outsider@example.com", "agent")
    ids = await arrange(db, "queued")

    async def into_queue(session: Any) -> None:
        queue = Queue(name="vip")
        session.add(queue)
        await session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=member_id))
        await session.execute(
            update(Ticket).where(Ticket.id == ids["id"]).values(queue_id=queue.id)
        )

    await db.run(into_queue)
    for method, path, body in ROUTES:
        if "{id}" in path:
            assert await call(client, method, path, body, ids, bearer(outsider)) == 404, path
    # Asking to open a ticket for its conversation does not hand it over either.
    reopen = {"conversation_id": ids["conversation_id"]}
    response = await client.post("/api/v1/tickets", json=reopen, headers=bearer(outsider))
    assert response.status == 404
    listed = await client.get(
        f"/api/v1/tickets?conversation_id={ids['conversation_id']}", headers=bearer(outsider)
    )
    assert (await listed.json())["tickets"] == []
    # The member reaches it, by the same calls.
    response = await client.post("/api/v1/tickets", json=reopen, headers=bearer(member))
    assert (response.status, (await response.json())["ticket"]["id"]) == (200, ids["id"])
    assert await call(client, "GET", "/api/v1/tickets/{id}", None, ids, bearer(member)) == 200
