"""The routing API: who may do what, rules kept with versions, queue scoping of tickets,
and claiming (409 naming the owner)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select, update

from routing.models import Queue, RoutingRule
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.routing.support import make_customer, new_ticket
from tests.security.support import bearer, staff_token
from tickets.models import Ticket


async def count(db: Database, model: Any) -> int:
    async with db.reading() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_only_admins_write_supervisors_read_agents_see_their_own(
    client: AppClient, db: Database
) -> None:
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    _sup_id, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    ada_id, ada = await staff_token(db, "ada@example.com", "agent")

    assert (await client.get("/api/v1/queues")).status == 401
    body = {"name": "Billing", "strategy": "least_loaded"}
    for token in (ada, supervisor):
        denied = await client.post("/api/v1/queues", json=body, headers=bearer(token))
        assert denied.status == 403
    assert await count(db, Queue) == 0
    created = await client.post("/api/v1/queues", json=body, headers=bearer(admin))
    assert created.status == 201
    queue = (await created.json())["queue"]
    other = await client.post("/api/v1/queues", json={"name": "Sales"}, headers=bearer(admin))
    assert other.status == 201

    # Agents see only the queues they belong to.
    assert (await (await client.get("/api/v1/queues", headers=bearer(ada))).json())["queues"] == []
    added = await client.put(
        f"/api/v1/queues/{queue['id']}/members/{ada_id}", headers=bearer(admin)
    )
    assert added.status == 200 and (await added.json())["queue"]["member_ids"] == [ada_id]
    mine = await (await client.get("/api/v1/queues", headers=bearer(ada))).json()
    assert [q["name"] for q in mine["queues"]] == ["Billing"]
    everything = await (await client.get("/api/v1/queues", headers=bearer(supervisor))).json()
    assert [q["name"] for q in everything["queues"]] == ["Billing", "Sales"]

    assert (await client.get("/api/v1/agents", headers=bearer(ada))).status == 403
    agents = await (await client.get("/api/v1/agents", headers=bearer(supervisor))).json()
    ada_row = next(a for a in agents["agents"] if a["id"] == ada_id)
    assert ada_row["presence"] == "offline" and ada_row["queue_ids"] == [queue["id"]]

    changed = await client.patch(
        f"/api/v1/agents/{ada_id}",
        json={"capacity": 3, "skills": ["billing"], "languages": ["de"]},
        headers=bearer(admin),
    )
    assert changed.status == 200
    assert (await changed.json())["agent"]["capacity"] == 3
    refused = await client.patch(
        f"/api/v1/agents/{ada_id}", json={"capacity": 3}, headers=bearer(ada)
    )
    assert refused.status == 403


async def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    client: AppClient, db: Database
) -> None:
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    bad_queue = await client.post(
        "/api/v1/queues", json={"name": "x", "strategy": "random"}, headers=bearer(admin)
    )
    assert bad_queue.status == 400 and "strategy" in (await bad_queue.json())["error"]["message"]
    bad_rule = await client.post(
        "/api/v1/routing/rules",
        json={"name": "r", "conditions": {"languages": ["en", 5]}, "actions": {"priority": "high"}},
        headers=bearer(admin),
    )
    assert bad_rule.status == 400
    assert "conditions.languages" in (await bad_rule.json())["error"]["message"]
    missing_queue = await client.post(
        "/api/v1/routing/rules",
        json={"name": "r", "actions": {"queue_id": 999}},
        headers=bearer(admin),
    )
    assert missing_queue.status == 400
    assert "actions.queue_id" in (await missing_queue.json())["error"]["message"]
    capacity = await client.patch("/api/v1/agents/1", json={"capacity": -1}, headers=bearer(admin))
    assert capacity.status == 400 and "capacity" in (await capacity.json())["error"]["message"]
    assert await count(db, Queue) == 0
    assert await count(db, RoutingRule) == 0


async def test_rules_are_versioned_with_who_and_when_and_reordered(
    client: AppClient, db: Database
) -> None:
    admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    _sup, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    first = await client.post(
        "/api/v1/routing/rules",
        json={
            "name": "refunds",
            "conditions": {"keywords": ["refund"]},
            "actions": {"priority": "high"},
        },
        headers=bearer(admin),
    )
    assert first.status == 201
    rule = (await first.json())["rule"]
    second = await client.post(
        "/api/v1/routing/rules",
        json={"name": "rest", "actions": {"priority": "low"}},
        headers=bearer(admin),
    )
    rest = (await second.json())["rule"]
    assert (rule["position"], rest["position"]) == (1, 2)

    edited = await client.put(
        f"/api/v1/routing/rules/{rule['id']}",
        json={
            "name": "refunds",
            "conditions": {"keywords": ["refund", "money back"]},
            "actions": {"priority": "urgent"},
        },
        headers=bearer(admin),
    )
    assert edited.status == 200 and (await edited.json())["rule"]["version"] == 2
    order = await client.put(
        "/api/v1/routing/rules/order", json={"ids": [rest["id"], rule["id"]]}, headers=bearer(admin)
    )
    assert [r["name"] for r in (await order.json())["rules"]] == ["rest", "refunds"]
    partial = await client.put(
        "/api/v1/routing/rules/order", json={"ids": [rest["id"]]}, headers=bearer(admin)
    )
    assert partial.status == 400

    versions = await client.get(
        f"/api/v1/routing/rules/{rule['id']}/versions", headers=bearer(supervisor)
    )
    history = (await versions.json())["versions"]
    assert [(v["version"], v["change"]) for v in history] == [
        (1, "created"),
        (2, "updated"),
        (3, "reordered"),
    ]
    assert history[0]["rule"]["actions"] == {"priority": "high"}
    assert history[1]["rule"]["actions"] == {"priority": "urgent"}
    assert all(v["actor_user_id"] == admin_id and v["created_at"] for v in history)

    assert (
        await client.delete(f"/api/v1/routing/rules/{rule['id']}", headers=bearer(admin))
    ).status == 200
    listed = await (await client.get("/api/v1/routing/rules", headers=bearer(supervisor))).json()
    assert [r["name"] for r in listed["rules"]] == ["rest"]
    kept = await (
        await client.get(f"/api/v1/routing/rules/{rule['id']}/versions", headers=bearer(admin))
    ).json()
    assert kept["versions"][-1]["change"] == "deleted"


async def test_agents_see_their_queues_tickets_and_removal_applies_at_once(
    client: AppClient, db: Database
) -> None:
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    ada_id, ada = await staff_token(db, "ada@example.com", "agent")
    _sup, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    queue = (
        await (
            await client.post("/api/v1/queues", json={"name": "vip"}, headers=bearer(admin))
        ).json()
    )["queue"]
    await client.post(
        "/api/v1/routing/rules",
        json={"name": "vip", "actions": {"queue_id": queue["id"]}},
        headers=bearer(admin),
    )
    ticket_id = await new_ticket(db, await make_customer(db))
    url = f"/api/v1/tickets/{ticket_id}"

    async def ada_sees() -> tuple[int, list[int]]:
        one = await client.get(url, headers=bearer(ada))
        listed = await (await client.get("/api/v1/tickets", headers=bearer(ada))).json()
        return one.status, [t["id"] for t in listed["tickets"]]

    assert await ada_sees() == (404, [])
    assert (await client.get(url, headers=bearer(supervisor))).status == 200
    await client.put(f"/api/v1/queues/{queue['id']}/members/{ada_id}", headers=bearer(admin))
    assert await ada_sees() == (200, [ticket_id])
    await client.delete(f"/api/v1/queues/{queue['id']}/members/{ada_id}", headers=bearer(admin))
    assert await ada_sees() == (404, [])
    assert (await client.post(f"{url}/claim", headers=bearer(ada))).status == 404


async def test_claiming_a_claimed_ticket_is_a_409_naming_the_owner(
    client: AppClient, db: Database
) -> None:
    ada_id, ada = await staff_token(db, "ada@example.com", "agent", name="Ada Lovelace")
    _bob_id, bob = await staff_token(db, "bob@example.com", "agent")
    ticket_id = await new_ticket(db, await make_customer(db))
    url = f"/api/v1/tickets/{ticket_id}/claim"

    first = await client.post(url, headers=bearer(ada))
    assert first.status == 200 and (await first.json())["ticket"]["assignee_id"] == ada_id
    again = await client.post(url, headers=bearer(ada))
    assert again.status == 200
    lost = await client.post(url, headers=bearer(bob))
    assert lost.status == 409
    error = (await lost.json())["error"]
    assert error["code"] == "already_claimed" and "Ada Lovelace" in error["message"]


async def test_two_agents_claiming_at_once_one_wins(client: AppClient, db: Database) -> None:
    _ada_id, ada = await staff_token(db, "ada@example.com", "agent")
    _bob_id, bob = await staff_token(db, "bob@example.com", "agent")
    customer = await make_customer(db)
    for _ in range(5):
        url = f"/api/v1/tickets/{await new_ticket(db, customer)}/claim"
        answers = await asyncio.gather(
            client.post(url, headers=bearer(ada)), client.post(url, headers=bearer(bob))
        )
        assert sorted(a.status for a in answers) == [200, 409]


async def test_every_routing_route_is_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    prefixes = ("/queues", "/agents", "/routing")
    served: dict[str, set[str]] = {}
    for route in client.app.router.routes():
        path = (route.resource.canonical if route.resource else "").removeprefix("/api/v1")
        if path.startswith(prefixes) and route.method != "HEAD":
            served.setdefault(path, set()).add(route.method.lower())
    described = {p: set(ops) for p, ops in document["paths"].items() if p.startswith(prefixes)}
    assert served == described
    assert "post" in document["paths"]["/tickets/{id}/claim"]


async def test_every_routing_route_refuses_anonymous_callers_and_odd_ids(
    client: AppClient, db: Database
) -> None:
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    routes = [
        ("GET", "/api/v1/queues"),
        ("POST", "/api/v1/queues"),
        ("GET", "/api/v1/queues/1"),
        ("PATCH", "/api/v1/queues/1"),
        ("DELETE", "/api/v1/queues/1"),
        ("PUT", "/api/v1/queues/1/members/1"),
        ("DELETE", "/api/v1/queues/1/members/1"),
        ("GET", "/api/v1/agents"),
        ("GET", "/api/v1/agents/1"),
        ("PATCH", "/api/v1/agents/1"),
        ("PUT", "/api/v1/agents/me/presence"),
        ("GET", "/api/v1/routing/rules"),
        ("POST", "/api/v1/routing/rules"),
        ("PUT", "/api/v1/routing/rules/order"),
        ("GET", "/api/v1/routing/rules/1"),
        ("PUT", "/api/v1/routing/rules/1"),
        ("DELETE", "/api/v1/routing/rules/1"),
        ("GET", "/api/v1/routing/rules/1/versions"),
        ("POST", "/api/v1/tickets/1/claim"),
    ]
    for method, url in routes:
        response = await client.request(method, url, json={})
        assert response.status == 401, (method, url)
    for odd in ("0", "-1", "99999999999", "1e3", "²", "abc"):
        for url in (f"/api/v1/queues/{odd}", f"/api/v1/routing/rules/{odd}"):
            response = await client.get(url, headers=bearer(admin))
            assert response.status == 404, url


async def test_a_queue_with_tickets_not_closed_is_not_deleted(
    client: AppClient, db: Database
) -> None:
    """Its tickets would lose the queue and so become every agent's to see."""
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    queue = (
        await (
            await client.post("/api/v1/queues", json={"name": "vip"}, headers=bearer(admin))
        ).json()
    )["queue"]
    customer = await make_customer(db)
    tickets = [await new_ticket(db, customer) for _ in range(3)]
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(Ticket).where(Ticket.id.in_(tickets)).values(queue_id=queue["id"])
        )
        # One closed already, one solved (not closed: it may reopen).
        await session.execute(update(Ticket).where(Ticket.id == tickets[0]).values(status="closed"))
        await session.execute(update(Ticket).where(Ticket.id == tickets[1]).values(status="solved"))
    url = f"/api/v1/queues/{queue['id']}"

    refused = await client.delete(url, headers=bearer(admin))
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "queue_not_empty" and "2 ticket" in error["message"]
    assert (await client.get(url, headers=bearer(admin))).status == 200
    async with db.reading() as session:
        kept = (
            await session.execute(select(Ticket.queue_id).where(Ticket.id.in_(tickets)))
        ).scalars()
        assert set(kept) == {queue["id"]}

    async with db.sessionmaker.begin() as session:
        await session.execute(update(Ticket).where(Ticket.id.in_(tickets)).values(status="closed"))
    assert (await client.delete(url, headers=bearer(admin))).status == 200
    assert (await client.get(url, headers=bearer(admin))).status == 404
