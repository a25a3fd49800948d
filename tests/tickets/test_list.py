"""The ticket list: each filter, and cursor pages that stay put while tickets arrive."""

from __future__ import annotations

from typing import Any

from customers.merge import do_merge
from switchboard.appkeys import DB
from switchboard.tx import Database
from tests.conftest import AppClient
from tests.security.support import bearer, staff_token
from tests.tickets.support import customer_writes


async def listing(client: AppClient, token: str, query: str = "") -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/api/v1/tickets{query}", headers=bearer(token))
    return response.status, await response.json()


async def ids(client: AppClient, token: str, query: str) -> list[int]:
    status, body = await listing(client, token, query)
    assert status == 200, body
    return [t["id"] for t in body["tickets"]]


async def new_ticket(client: AppClient, token: str, visitor: str, **body: Any) -> dict[str, Any]:
    conversation_id, _ = await customer_writes(client.app[DB], visitor)
    response = await client.post(
        "/api/v1/tickets", json={"conversation_id": conversation_id, **body}, headers=bearer(token)
    )
    assert response.status == 201
    ticket: dict[str, Any] = (await response.json())["ticket"]
    return ticket


async def test_each_filter_narrows_the_list(client: AppClient, db: Database) -> None:
    me, token = await staff_token(db, "l1@example.com", "agent")
    other, _ = await staff_token(db, "l2@example.com", "agent")
    _, supervisor = await staff_token(db, "l3@example.com", "supervisor")
    a = await new_ticket(client, token, "v_ls_a", priority="high", tags=["billing"])
    b = await new_ticket(client, token, "v_ls_b", priority="low", tags=["billing", "vip"])
    c = await new_ticket(client, token, "v_ls_c")
    for ticket_id, body, by in (
        (a["id"], {"status": "pending", "assignee_id": me}, token),
        (b["id"], {"assignee_id": other}, supervisor),  # an agent assigns only themselves
    ):
        response = await client.patch(f"/api/v1/tickets/{ticket_id}", json=body, headers=bearer(by))
        assert response.status == 200

    assert await ids(client, token, "") == [c["id"], b["id"], a["id"]]
    assert await ids(client, token, "?status=pending") == [a["id"]]
    assert await ids(client, token, "?status=new,pending") == [c["id"], b["id"], a["id"]]
    assert await ids(client, token, "?priority=high,low") == [b["id"], a["id"]]
    assert await ids(client, token, "?assignee_id=me") == [a["id"]]
    assert await ids(client, token, f"?assignee_id={other}") == [b["id"]]
    assert await ids(client, token, "?assignee_id=none") == [c["id"]]
    assert await ids(client, token, "?tag=billing") == [b["id"], a["id"]]
    assert await ids(client, token, "?tag=VIP") == [b["id"]]
    assert await ids(client, token, f"?customer_id={a['customer_id']}") == [a["id"]]
    conversation = a["conversation_ids"][0]
    assert await ids(client, token, f"?conversation_id={conversation}") == [a["id"]]
    assert await ids(client, token, "?order=oldest") == [a["id"], b["id"], c["id"]]
    assert await ids(client, token, "?tag=billing&priority=low&assignee_id=none") == []


async def test_bad_filters_are_400(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "l3@example.com", "agent")
    for query in (
        "?status=archived",
        "?status=open;DROP TABLE tickets",
        "?priority=1",
        "?assignee_id=someone",
        "?assignee_id=-1",
        "?customer_id=1e3",
        "?conversation_id=99999999999",
        "?tag=a%20b",
        "?tag=%00",
        "?order=random",
        "?limit=0",
        "?limit=201",
        "?limit=abc",
        "?sort=id",
        "?status__ne=open",
        "?status=new&status=open",
        "?cursor=not-a-cursor",
        "?cursor=" + "A" * 300,
        "?status=" + ",".join(["new"] * 11),
    ):
        status, body = await listing(client, token, query)
        assert status == 400, (query, body)
        assert set(body) == {"error"}


async def test_cursor_pages_are_stable_while_tickets_arrive(
    client: AppClient, db: Database
) -> None:
    _, token = await staff_token(db, "l4@example.com", "agent")
    first = [(await new_ticket(client, token, f"v_pg_{n}"))["id"] for n in range(7)]
    seen: list[int] = []
    status, page = await listing(client, token, "?limit=3")
    seen += [t["id"] for t in page["tickets"]]
    arrived = 0
    while page["next_cursor"] is not None:
        # Tickets created between pages are newer than the cursor: they never shift it.
        await new_ticket(client, token, f"v_pg_new_{arrived}")
        arrived += 1
        status, page = await listing(client, token, f"?limit=3&cursor={page['next_cursor']}")
        assert status == 200
        seen += [t["id"] for t in page["tickets"]]
    assert seen == sorted(first, reverse=True)
    assert arrived == 2

    # Oldest first, the same: every ticket once, in order, whatever arrives meanwhile.
    status, page = await listing(client, token, "?limit=4&order=oldest")
    forward = [t["id"] for t in page["tickets"]]
    while page["next_cursor"] is not None:
        status, page = await listing(
            client, token, f"?limit=4&order=oldest&cursor={page['next_cursor']}"
        )
        forward += [t["id"] for t in page["tickets"]]
    assert forward == sorted(forward) and len(forward) == len(set(forward)) == 9

    # A cursor is bound to its order.
    _, newest = await listing(client, token, "?limit=1")
    status, body = await listing(client, token, f"?order=oldest&cursor={newest['next_cursor']}")
    assert (status, body["error"]["code"]) == (400, "bad_cursor")


async def test_a_filtered_page_keeps_its_filter(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "l5@example.com", "agent")
    tagged = []
    for n in range(5):
        ticket = await new_ticket(client, token, f"v_pf_{n}", tags=["even"] if n % 2 == 0 else [])
        if n % 2 == 0:
            tagged.append(ticket["id"])
    _, page = await listing(client, token, "?tag=even&limit=2")
    seen = [t["id"] for t in page["tickets"]]
    _, page = await listing(client, token, f"?tag=even&limit=2&cursor={page['next_cursor']}")
    seen += [t["id"] for t in page["tickets"]]
    assert page["next_cursor"] is None
    assert seen == sorted(tagged, reverse=True)


async def test_customer_filter_follows_customer_merges(client: AppClient, db: Database) -> None:
    _, token = await staff_token(db, "l6@example.com", "agent")
    first = await new_ticket(client, token, "v_cm_a")
    second = await new_ticket(client, token, "v_cm_b")
    third = await new_ticket(client, token, "v_cm_c")
    # c merged into b, then b into a: a's list holds all three.
    for survivor, merged in ((second, third), (first, second)):
        survivor_id, merged_id = survivor["customer_id"], merged["customer_id"]

        async def merge(session: Any, into: int = survivor_id, other: int = merged_id) -> None:
            await do_merge(session, survivor_id=into, merged_id=other, actor_user_id=None)

        await db.run(merge)
    everyone = await ids(client, token, f"?customer_id={first['customer_id']}")
    assert everyone == [third["id"], second["id"], first["id"]]
    assert await ids(client, token, f"?customer_id={third['customer_id']}") == [third["id"]]
