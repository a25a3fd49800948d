"""The tickets REST API: create, read, update, notes, merge, timeline, and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory, login
from tests.security.support import bearer, staff_token
from tests.tickets.support import activities, customer_writes, get_ticket, ticket_count


async def create(client: AppClient, token: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/tickets", json=body, headers=bearer(token))
    return response.status, await response.json()


async def patch(client: AppClient, token: str, ticket_id: int, body: Any) -> tuple[int, Any]:
    response = await client.patch(f"/api/v1/tickets/{ticket_id}", json=body, headers=bearer(token))
    return response.status, await response.json()


async def test_agent_opens_a_ticket_for_a_conversation_once(
    client: AppClient, db: Database
) -> None:
    agent_id, token = await staff_token(db, "a1@example.com", "agent")
    conversation_id, customer_id = await customer_writes(db, "v_api_1", "printer on fire")
    status, body = await create(
        client, token, conversation_id=conversation_id, priority="high", tags=["Fire", "fire"]
    )
    assert status == 201, body
    ticket = body["ticket"]
    assert ticket["conversation_ids"] == [conversation_id]
    assert (ticket["customer_id"], ticket["status"], ticket["priority"]) == (
        customer_id,
        "new",
        "high",
    )
    assert (ticket["tags"], ticket["subject"], ticket["source"]) == (
        ["fire"],
        "printer on fire",
        "agent",
    )
    # The conversation's open ticket comes back rather than a second one.
    status, again = await create(client, token, conversation_id=conversation_id)
    assert (status, again["ticket"]["id"]) == (200, ticket["id"])
    assert await ticket_count(db) == 1
    [entry] = await activities(db, ticket["id"])
    assert (entry["kind"], entry["actor"], entry["user"]) == (
        "created",
        f"agent:{agent_id}",
        agent_id,
    )


async def test_agent_opens_a_ticket_for_a_customer_without_conversation(
    client: AppClient, db: Database
) -> None:
    _, token = await staff_token(db, "a2@example.com", "agent")
    _, customer_id = await customer_writes(db, "v_api_2")
    status, body = await create(client, token, customer_id=customer_id, subject="phone call")
    assert status == 201
    assert (body["ticket"]["conversation_ids"], body["ticket"]["subject"]) == ([], "phone call")
    for bad in (
        {},
        {"customer_id": customer_id, "conversation_id": 1},
        {"customer_id": "1"},
        {"customer_id": True},
        {"customer_id": 2**40},
    ):
        status, error = await create(client, token, **bad)
        assert status == 400, (bad, error)
    status, _ = await create(client, token, customer_id=999_999)
    assert status == 404
    status, _ = await create(client, token, conversation_id=999_999)
    assert status == 404
    assert await ticket_count(db) == 1


async def test_patch_changes_fields_and_records_who(client: AppClient, db: Database) -> None:
    # A supervisor: only supervisors and admins assign a ticket to someone else.
    agent_id, token = await staff_token(db, "a3@example.com", "supervisor")
    other_id, _ = await staff_token(db, "a4@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_3")
    _, body = await create(client, token, conversation_id=conversation_id)
    ticket_id = body["ticket"]["id"]
    status, changed = await patch(
        client,
        token,
        ticket_id,
        {
            "status": "pending",
            "priority": "urgent",
            "tags": ["billing", "vip"],
            "subject": "Refund",
            "assignee_id": other_id,
        },
    )
    assert status == 200, changed
    view = changed["ticket"]
    assert (view["status"], view["priority"], view["tags"]) == (
        "pending",
        "urgent",
        ["billing", "vip"],
    )
    assert (view["subject"], view["assignee_id"]) == ("Refund", other_id)
    kinds = {a["kind"]: a for a in await activities(db, ticket_id)}
    assert set(kinds) == {"created", "status", "priority", "tags", "subject", "assignee"}
    assert all(a["actor"] == f"agent:{agent_id}" for k, a in kinds.items() if k != "created")
    assert kinds["tags"]["data"] == {"added": ["billing", "vip"], "removed": []}
    assert kinds["assignee"]["data"] == {"from": None, "to": other_id}

    # Unassign and untag.
    status, changed = await patch(client, token, ticket_id, {"assignee_id": None, "tags": []})
    assert (changed["ticket"]["assignee_id"], changed["ticket"]["tags"]) == (None, [])


async def test_fields_a_caller_may_not_set_are_never_applied(
    client: AppClient, db: Database
) -> None:
    _, token = await staff_token(db, "a5@example.com", "agent")
    conversation_id, customer_id = await customer_writes(db, "v_api_4")
    _, body = await create(client, token, conversation_id=conversation_id)
    ticket_id = body["ticket"]["id"]
    status, _ = await patch(
        client,
        token,
        ticket_id,
        {
            "id": 999,
            "customer_id": 12345,
            "queue_id": 7,
            "merged_into_id": 1,
            "source": "bot_handoff",
            "created_at": "2000-01-01T00:00:00+00:00",
            "priority": "low",
        },
    )
    assert status == 200
    stored = await get_ticket(db, ticket_id)
    assert (stored.id, stored.customer_id, stored.queue_id, stored.merged_into_id) == (
        ticket_id,
        customer_id,
        None,
        None,
    )
    assert (stored.source, stored.priority) == ("agent", "low")


BAD_PATCHES = [
    ({"status": "archived"}, "invalid_status"),
    ({"status": 3}, "invalid_status"),
    ({"status": None}, "invalid_status"),
    ({"priority": "critical"}, "invalid_priority"),
    ({"priority": ["high"]}, "invalid_priority"),
    ({"tags": "billing"}, "invalid_tags"),
    ({"tags": [f"t{n}" for n in range(1000)]}, "invalid_tags"),
    ({"tags": [f"t{n}" for n in range(10_000)]}, "too_large"),  # past the body cap
    ({"tags": ["ok", 5]}, "invalid_tags"),
    ({"tags": ["has space"]}, "invalid_tags"),
    ({"tags": ["nul\u0000byte"]}, "invalid_tags"),
    ({"tags": ["x" * 51]}, "invalid_tags"),
    ({"subject": "nul\u0000byte"}, "invalid_subject"),
    ({"subject": 12}, "invalid_subject"),
    ({"subject": "s" * 501}, "invalid_subject"),
    ({"assignee_id": "1"}, "invalid_assignee_id"),
    ({"assignee_id": True}, "invalid_assignee_id"),
    ({"assignee_id": 999_999}, "invalid_assignee"),
    # A good field beside a bad one: the good one is not applied either.
    ({"priority": "urgent", "status": "bogus"}, "invalid_status"),
    ({"priority": "urgent", "assignee_id": 999_999}, "invalid_assignee"),
]


@pytest.mark.parametrize(("body", "code"), BAD_PATCHES)
async def test_bad_input_is_a_clear_400_and_stores_nothing(
    client: AppClient, db: Database, body: dict[str, Any], code: str
) -> None:
    _, token = await staff_token(db, "a6@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_5", "original")
    _, created = await create(client, token, conversation_id=conversation_id)
    ticket_id = created["ticket"]["id"]
    before = await activities(db, ticket_id)
    status, error = await patch(client, token, ticket_id, body)
    assert status == 400, error
    assert error["error"]["code"] == code
    stored = await get_ticket(db, ticket_id)
    assert (stored.status, stored.priority, stored.subject, stored.assignee_user_id) == (
        "new",
        "normal",
        "original",
        None,
    )
    assert await activities(db, ticket_id) == before


async def test_non_object_bodies_are_refused(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "a7@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_6")
    _, created = await create(client, token, conversation_id=conversation_id)
    ticket_id = created["ticket"]["id"]
    for raw in (b"[1]", b"not json", b'"status"', b"{" * 10_000):
        response = await client.patch(
            f"/api/v1/tickets/{ticket_id}",
            data=raw,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status == 400


async def test_forbidden_transition_is_409_naming_both(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "a8@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_7")
    _, created = await create(client, token, conversation_id=conversation_id)
    ticket_id = created["ticket"]["id"]
    assert (await patch(client, token, ticket_id, {"status": "solved"}))[0] == 200
    status, error = await patch(client, token, ticket_id, {"status": "pending"})
    assert status == 409
    assert error["error"] == {
        "code": "transition_forbidden",
        "message": "a ticket cannot go from solved to pending",
    }
    assert (await patch(client, token, ticket_id, {"status": "closed"}))[0] == 200
    status, error = await patch(client, token, ticket_id, {"priority": "high"})
    assert (status, error["error"]["code"]) == (409, "ticket_closed")


async def test_notes_are_kept_with_author_and_time(client: AppClient, db: Database) -> None:
    agent_id, token = await staff_token(db, "a9@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_8")
    _, created = await create(client, token, conversation_id=conversation_id)
    ticket_id = created["ticket"]["id"]
    url = f"/api/v1/tickets/{ticket_id}/notes"
    response = await client.post(url, json={"body": "called, no answer"}, headers=bearer(token))
    assert response.status == 201
    note = (await response.json())["note"]
    assert (note["author_id"], note["body"]) == (agent_id, "called, no answer")
    assert note["created_at"]
    for bad in ({"body": ""}, {"body": 5}, {}, {"body": "x" * 10_001}, {"body": "\u0000"}):
        response = await client.post(url, json=bad, headers=bearer(token))
        assert response.status == 400, bad
    # Controls are dropped as in messages (PostgreSQL refuses NUL): the rest is kept.
    response = await client.post(url, json={"body": "left\u0000right"}, headers=bearer(token))
    assert (await response.json())["note"]["body"] == "leftright"
    listed = await (await client.get(url, headers=bearer(token))).json()
    assert [n["body"] for n in listed["notes"]] == ["called, no answer", "leftright"]
    timeline = await (
        await client.get(f"/api/v1/tickets/{ticket_id}/timeline", headers=bearer(token))
    ).json()
    assert [(e["kind"], e["actor"]) for e in timeline["timeline"]] == [
        ("created", f"agent:{agent_id}"),
        ("note", f"agent:{agent_id}"),
        ("note", f"agent:{agent_id}"),
    ]


async def test_merge_by_api_and_crossed_merges_from_two_instances(
    make_client: ClientFactory, db: Database
) -> None:
    first, second = await make_client(), await make_client()
    _, token = await staff_token(db, "a10@example.com", "agent")
    for round_ in range(3):
        conversation_a, customer_id = await customer_writes(db, f"v_api_m{round_}")
        _, a = await create(first, token, conversation_id=conversation_a)
        _, b = await create(first, token, customer_id=customer_id)
        a_id, b_id = a["ticket"]["id"], b["ticket"]["id"]

        async def merge(client: AppClient, survivor: int, other: int) -> int:
            response = await client.post(
                f"/api/v1/tickets/{survivor}/merge", json={"other_id": other}, headers=bearer(token)
            )
            return response.status

        statuses = await asyncio.gather(merge(first, a_id, b_id), merge(second, b_id, a_id))
        assert sorted(statuses) == [200, 409], statuses
        merged = [await get_ticket(db, a_id), await get_ticket(db, b_id)]
        assert sorted(t.status for t in merged) == ["closed", "new"]


async def test_merge_refuses_bad_other_ids(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "a11@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_9")
    _, created = await create(client, token, conversation_id=conversation_id)
    url = f"/api/v1/tickets/{created['ticket']['id']}/merge"
    for bad, status in (
        ({"other_id": "2"}, 400),
        ({"other_id": None}, 400),
        ({"other_id": 999_999}, 404),
        ({"other_id": created["ticket"]["id"]}, 400),
    ):
        response = await client.post(url, json=bad, headers=bearer(token))
        assert response.status == status, bad


async def test_a_browser_session_needs_its_csrf_token(client: AppClient, db: Database) -> None:
    await staff_token(db, "a12@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_10")
    csrf = await login(client, "a12@example.com")
    response = await client.post("/api/v1/tickets", json={"conversation_id": conversation_id})
    assert response.status == 403
    response = await client.post(
        "/api/v1/tickets",
        json={"conversation_id": conversation_id},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201


async def test_every_ticket_route_is_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    served: dict[str, set[str]] = {}
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/tickets") and route.method != "HEAD":
            served.setdefault(path.removeprefix("/api/v1"), set()).add(route.method.lower())
    described = {p: set(ops) for p, ops in document["paths"].items() if p.startswith("/tickets")}
    assert served == described
    schemas = document["components"]["schemas"]
    assert {"Ticket", "TicketCreate", "TicketUpdate", "TicketNote", "TicketActivity"} <= set(
        schemas
    )


async def test_bad_create_bodies_store_nothing(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "a13@example.com", "agent")
    conversation_id, customer_id = await customer_writes(db, "v_api_11")
    for target in ({"conversation_id": conversation_id}, {"customer_id": customer_id}):
        for bad in (
            {"status": "solved"},  # not a create field: ignored, so this one is created…
            {"priority": "asap"},
            {"tags": ["ok"] * 21},
            {"tags": ["<script>"]},
            {"subject": "a\u0000b"},
            {"subject": ["x"]},
        ):
            status, body = await create(client, token, **target, **bad)
            if "status" in bad:
                assert status == 201 and body["ticket"]["status"] == "new"
                continue
            assert status == 400, (target, bad, body)
    # …and nothing else was.
    assert await ticket_count(db) == 2


async def test_concurrent_status_changes_from_two_instances_apply_in_turn(
    make_client: ClientFactory, db: Database
) -> None:
    """Each change is checked against the status the other one left (the row is locked):
    "solved" and "pending" at once end solved either way — pending then solved, or
    solved and a 409 for solved→pending — and the timeline holds exactly what happened."""
    first, second = await make_client(run_workers=False), await make_client(run_workers=False)
    _, token = await staff_token(db, "a14@example.com", "agent")
    for round_ in range(3):
        conversation_id, _ = await customer_writes(db, f"v_api_c{round_}")
        _, created = await create(first, token, conversation_id=conversation_id)
        ticket_id = created["ticket"]["id"]
        outcomes = await asyncio.gather(
            patch(first, token, ticket_id, {"status": "solved"}),
            patch(second, token, ticket_id, {"status": "pending"}),
        )
        statuses = sorted(status for status, _ in outcomes)
        stored = await get_ticket(db, ticket_id)
        changes = [a["data"] for a in await activities(db, ticket_id) if a["kind"] == "status"]
        if statuses == [200, 200]:
            # Both succeed only in this order: solved→pending is forbidden.
            assert changes == [
                {"from": "new", "to": "pending"},
                {"from": "pending", "to": "solved"},
            ]
            assert stored.status == "solved"
        else:
            assert statuses == [200, 409]
            assert changes == [{"from": "new", "to": "solved"}]
            assert stored.status == "solved"


async def test_timeline_pages_with_after_id(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "a15@example.com", "agent")
    conversation_id, _ = await customer_writes(db, "v_api_12")
    _, created = await create(client, token, conversation_id=conversation_id)
    ticket_id = created["ticket"]["id"]
    for priority in ("high", "low", "urgent"):
        assert (await patch(client, token, ticket_id, {"priority": priority}))[0] == 200
    url = f"/api/v1/tickets/{ticket_id}/timeline"
    everything = (await (await client.get(url, headers=bearer(token))).json())["timeline"]
    assert [e["kind"] for e in everything] == ["created", "priority", "priority", "priority"]
    after = everything[1]["id"]
    rest = await (await client.get(f"{url}?after_id={after}", headers=bearer(token))).json()
    assert [e["data"]["to"] for e in rest["timeline"]] == ["low", "urgent"]
    for bad in ("-1", "x", "1e3", "99999999999"):
        response = await client.get(f"{url}?after_id={bad}", headers=bearer(token))
        assert response.status == 400, bad
