"""The agent inbox's list side: views and filters, per-agent unread counts, saved views,
and search over messages, customers and tickets (English and Chinese), each narrowed by
what the caller may see. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from conversations.search_terms import index_customer, index_ticket
from customers.models import Customer, Identity
from routing.models import Queue, QueueMember
from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory, create_user, login
from tests.tickets.support import customer_writes, make_inbox, open_ticket
from tickets.models import Ticket, TicketNote, TicketTag


async def _queue(db: Database, name: str, *members: int) -> int:
    async def create(session: Any) -> int:
        queue = Queue(name=name)
        session.add(queue)
        await session.flush()
        for user_id in members:
            session.add(QueueMember(queue_id=queue.id, user_id=user_id))
        return queue.id

    return await db.run(create)


async def _set_ticket(
    db: Database, ticket_id: int, tags: tuple[str, ...] = (), **values: Any
) -> None:
    async def write(session: Any) -> None:
        if values:
            await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))
        for tag in tags:
            session.add(TicketTag(ticket_id=ticket_id, tag=tag))

    await db.run(write)


async def _ids(client: AppClient, query: str = "") -> list[int]:
    response = await client.get(f"/api/v1/inbox/conversations{query}")
    assert response.status == 200, await response.text()
    return [c["id"] for c in (await response.json())["conversations"]]


class Floor:
    """Ana works queue "billing"; Bo is a supervisor. Four conversations:
    mine (billing, assigned to Ana), billing_open (billing, nobody), other (queue
    "vip", which Ana is not in), bare (no ticket yet: everyone's)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def build(self) -> Floor:
        db = self.db
        self.ana = await create_user(db, "ana@example.com", "agent", "Ana")
        self.bo = await create_user(db, "bo@example.com", "supervisor", "Bo")
        billing = await _queue(db, "billing", self.ana)
        vip = await _queue(db, "vip")
        self.inbox = await make_inbox(db)
        self.mine, _ = await customer_writes(
            db, "v-mine", "my invoice is wrong", inbox_id=self.inbox
        )
        self.billing_open, _ = await customer_writes(
            db, "v-billing", "退款什么时候到账", inbox_id=self.inbox
        )
        self.other, _ = await customer_writes(
            db, "v-other", "refund please vip", inbox_id=self.inbox
        )
        self.bare, _ = await customer_writes(db, "v-bare", "hello there", inbox_id=self.inbox)
        t_mine = await open_ticket(db, self.mine)
        t_billing = await open_ticket(db, self.billing_open)
        t_other = await open_ticket(db, self.other)
        await _set_ticket(db, t_mine.id, queue_id=billing, assignee_user_id=self.ana)
        await _set_ticket(
            db, t_billing.id, ("vip",), queue_id=billing, priority="high", status="pending"
        )
        await _set_ticket(db, t_other.id, queue_id=vip, subject="Refund for order 77")
        self.t_billing = t_billing.id
        self.t_other = t_other.id
        return self


@pytest.fixture
async def floor(db: Database) -> Floor:
    return await Floor(db).build()


async def test_views_show_what_each_agent_may_see(make_client: ClientFactory, floor: Floor) -> None:
    client = await make_client(run_workers=False)
    await login(client, "ana@example.com")
    # Newest activity first; "other" is in a queue Ana is not in, so never listed.
    assert await _ids(client) == [floor.bare, floor.billing_open, floor.mine]
    assert await _ids(client, "?view=mine") == [floor.mine]
    assert await _ids(client, "?view=unassigned") == [floor.bare, floor.billing_open]
    assert await _ids(client, "?view=my_queues") == [floor.billing_open, floor.mine]
    # Filters combine (all must hold).
    assert await _ids(client, "?priority=high") == [floor.billing_open]
    assert await _ids(client, "?status=pending&tag=VIP&view=my_queues") == [floor.billing_open]
    assert await _ids(client, "?status=open,new") == [floor.mine]
    assert await _ids(client, "?channel=email") == []
    assert await _ids(client, "?channel=webchat&view=mine") == [floor.mine]

    first = (await (await client.get("/api/v1/inbox/conversations?view=mine")).json())[
        "conversations"
    ][0]
    assert first["ticket"]["assignee_id"] == floor.ana
    assert first["last_preview"] == "my invoice is wrong"

    supervisor = await make_client(run_workers=False)
    await login(supervisor, "bo@example.com")
    assert floor.other in await _ids(supervisor)
    assert await _ids(supervisor, "?view=unassigned") == [
        floor.bare,
        floor.other,
        floor.billing_open,
    ]


async def test_the_list_pages_with_a_cursor_and_refuses_bad_filters(
    make_client: ClientFactory, db: Database
) -> None:
    await create_user(db, "ana@example.com", "agent", "Ana")
    inbox = await make_inbox(db)
    made = [
        (await customer_writes(db, f"v{n}", f"message {n}", inbox_id=inbox))[0] for n in range(5)
    ]
    client = await make_client(run_workers=False)
    await login(client, "ana@example.com")
    seen: list[int] = []
    cursor = ""
    for _ in range(5):
        response = await client.get(f"/api/v1/inbox/conversations?limit=2{cursor}")
        page = await response.json()
        seen += [c["id"] for c in page["conversations"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == list(reversed(made))

    for bad in (
        "?view=everything",
        "?status=lost",
        "?priority=high;drop table tickets",
        "?colour=red",
        "?cursor=bm90IGEgY3Vyc29y",
        "?limit=0",
        "?ids=1,abc",
        "?saved=1&view=mine",
    ):
        response = await client.get(f"/api/v1/inbox/conversations{bad}")
        assert response.status == 400, bad
        assert "error" in await response.json()
    anonymous = await make_client(run_workers=False)
    assert (await anonymous.get("/api/v1/inbox/conversations")).status == 401


async def test_unread_counts_are_each_agents_own(make_client: ClientFactory, floor: Floor) -> None:
    await create_user(floor.db, "cy@example.com", "agent", "Cy")
    await _queue(floor.db, "billing-2")
    ana = await make_client(run_workers=False)
    ana_csrf = await login(ana, "ana@example.com")
    bo = await make_client(run_workers=False)
    await login(bo, "bo@example.com")
    await customer_writes(floor.db, "v-mine", "and the total too", n=1, inbox_id=floor.inbox)

    async def unread(client: AppClient, conversation_id: int) -> int:
        items = (
            await (await client.get(f"/api/v1/inbox/conversations?ids={conversation_id}")).json()
        )["conversations"]
        return int(items[0]["unread_count"])

    assert await unread(ana, floor.mine) == 2
    assert await unread(bo, floor.mine) == 2
    response = await ana.post(
        f"/api/v1/conversations/{floor.mine}/read", headers={"X-CSRF-Token": ana_csrf}, json={}
    )
    assert response.status == 200
    assert await unread(ana, floor.mine) == 0
    assert await unread(bo, floor.mine) == 2  # Bo has read nothing
    await customer_writes(floor.db, "v-mine", "hello?", n=2, inbox_id=floor.inbox)
    assert await unread(ana, floor.mine) == 1

    counts = (await (await ana.get("/api/v1/inbox/counts")).json())["counts"]
    assert counts["mine"] == {"total": 1, "unread": 1}
    assert counts["all"] == {"total": 3, "unread": 3}
    assert counts["unassigned"] == {"total": 2, "unread": 2}
    # `ids` only returns those in the view: the client learns a conversation left it.
    assert await _ids(ana, f"?view=mine&ids={floor.mine},{floor.bare},{floor.other}") == [
        floor.mine
    ]


async def test_saved_views_belong_to_their_agent(make_client: ClientFactory, floor: Floor) -> None:
    ana = await make_client(run_workers=False)
    csrf = await login(ana, "ana@example.com")
    headers = {"X-CSRF-Token": csrf}
    created = await ana.post(
        "/api/v1/inbox/views",
        json={"name": "  Urgent  billing ", "filters": {"view": "my_queues", "priority": ["high"]}},
        headers=headers,
    )
    assert created.status == 201, await created.text()
    view = (await created.json())["view"]
    assert view["name"] == "Urgent billing"
    assert view["filters"]["priority"] == ["high"]
    assert await _ids(ana, f"?saved={view['id']}") == [floor.billing_open]
    counts = (await (await ana.get("/api/v1/inbox/counts")).json())["counts"]
    assert counts[f"saved:{view['id']}"]["total"] == 1

    twin = await ana.post(
        "/api/v1/inbox/views", json={"name": "Urgent billing", "filters": {}}, headers=headers
    )
    assert twin.status == 409
    for body in ({"name": ""}, {"name": "x", "filters": {"view": "nope"}}, {"name": "x" * 101}):
        assert (await ana.post("/api/v1/inbox/views", json=body, headers=headers)).status == 400
    no_csrf = await ana.post("/api/v1/inbox/views", json={"name": "sneaky"})
    assert no_csrf.status == 403

    renamed = await ana.patch(
        f"/api/v1/inbox/views/{view['id']}", json={"name": "Hot"}, headers=headers
    )
    assert (await renamed.json())["view"]["name"] == "Hot"

    # Bo cannot see, rename, use or delete Ana's view: the same 404 as no view at all.
    bo = await make_client(run_workers=False)
    bo_csrf = await login(bo, "bo@example.com")
    assert (await (await bo.get("/api/v1/inbox/views")).json())["views"] == []
    assert (
        await bo.patch(
            f"/api/v1/inbox/views/{view['id']}",
            json={"name": "mine"},
            headers={"X-CSRF-Token": bo_csrf},
        )
    ).status == 404
    assert (
        await bo.delete(f"/api/v1/inbox/views/{view['id']}", headers={"X-CSRF-Token": bo_csrf})
    ).status == 404
    assert (await bo.get(f"/api/v1/inbox/conversations?saved={view['id']}")).status == 404
    assert (
        await bo.delete("/api/v1/inbox/views/999999", headers={"X-CSRF-Token": bo_csrf})
    ).status == 404

    gone = await ana.delete(f"/api/v1/inbox/views/{view['id']}", headers=headers)
    assert gone.status == 204
    assert (await (await ana.get("/api/v1/inbox/views")).json())["views"] == []


async def _search(client: AppClient, query: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/search?{query}")
    assert response.status == 200, await response.text()
    results: dict[str, Any] = (await response.json())["results"]
    return results


async def test_search_finds_messages_customers_and_tickets_in_english_and_chinese(
    make_client: ClientFactory, floor: Floor
) -> None:
    db = floor.db

    async def arrange(session: Any) -> None:
        # Written directly, so indexed as a bulk load would be (the services index as
        # they write: tests/conversations/test_search_terms.py).
        customer_id = (await session.get(Ticket, floor.t_billing)).customer_id
        await session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(name="陳小明", email="xiaoming@example.cn", phone="+86 138 0000 1111")
        )
        session.add(TicketNote(ticket_id=floor.t_billing, body="客户要求退款到信用卡"))
        await session.flush()
        await index_customer(session, customer_id)
        await index_ticket(session, floor.t_billing)

    await db.run(arrange)
    ana = await make_client(run_workers=False)
    await login(ana, "ana@example.com")

    # Chinese: a traditional-script query finds the simplified message, and back.
    found = await _search(ana, "q=退款")
    assert [m["conversation_id"] for m in found["messages"]["items"]] == [floor.billing_open]
    assert "退款" in found["messages"]["items"][0]["snippet"]
    found = await _search(ana, "q=到賬")
    assert [m["conversation_id"] for m in found["messages"]["items"]] == [floor.billing_open]
    # A word also finds longer words it begins; every word must match.
    found = await _search(ana, "q=INVOI")
    assert [m["conversation_id"] for m in found["messages"]["items"]] == [floor.mine]
    assert (await _search(ana, "q=invoice+hello"))["messages"]["items"] == []
    # Customers by name (either script), email, phone; tickets by a note.
    names = await _search(ana, "q=陈小明&kind=customers")
    assert [c["name"] for c in names["customers"]["items"]] == ["陳小明"]
    assert list(names) == ["customers"]
    assert (await _search(ana, "q=xiaoming@"))["customers"]["items"][0]["name"] == "陳小明"
    assert (await _search(ana, "q=0000 1111"))["customers"]["items"][0]["name"] == "陳小明"
    tickets = (await _search(ana, "q=信用卡"))["tickets"]["items"]
    assert [t["id"] for t in tickets] == [floor.t_billing]
    assert tickets[0]["conversation_id"] == floor.billing_open

    # Ana is not in the vip queue: its message, ticket and customer are not found for
    # her, and are for a supervisor.
    hidden = await _search(ana, "q=refund")
    assert hidden["messages"]["items"] == []
    assert hidden["tickets"]["items"] == []
    bo = await make_client(run_workers=False)
    await login(bo, "bo@example.com")
    shown = await _search(bo, "q=refund")
    assert [m["conversation_id"] for m in shown["messages"]["items"]] == [floor.other]
    assert [t["id"] for t in shown["tickets"]["items"]] == [floor.t_other]
    # The vip customer too (found by the identity's visitor id, through the term index).
    assert (await _search(ana, "q=v-other&kind=customers"))["customers"]["items"] == []
    vip = (await _search(bo, "q=v-other&kind=customers"))["customers"]["items"]
    assert len(vip) == 1
    assert (await _search(ana, "q=v-billing&kind=customers"))["customers"]["items"] != []

    # A message stored a moment ago is found at once.
    await customer_writes(db, "v-bare", "где мой заказ 订单号 A-1", n=1, inbox_id=floor.inbox)
    assert (await _search(ana, "q=订单"))["messages"]["items"][0]["conversation_id"] == floor.bare
    assert (await _search(ana, "q=заказ"))["messages"]["items"][0]["conversation_id"] == floor.bare


async def test_search_pages_and_refuses_bad_queries(
    make_client: ClientFactory, db: Database
) -> None:
    await create_user(db, "ana@example.com", "agent", "Ana")
    inbox = await make_inbox(db)
    for n in range(3):
        await customer_writes(db, f"p{n}", f"parcel number {n} is late", inbox_id=inbox)

    async def add_identity(session: Any) -> None:
        customer = await session.get(Customer, 1)
        assert customer is not None
        session.add(
            Identity(
                customer_id=customer.id,
                inbox_id=inbox,
                channel="telegram",
                external_id="tg-424242",
                display_name="Parcel Fan",
            )
        )
        await session.flush()
        await index_customer(session, customer.id)

    await db.run(add_identity)
    client = await make_client(run_workers=False)
    await login(client, "ana@example.com")
    seen: list[int] = []
    cursor = ""
    for _ in range(4):
        page = (await _search(client, f"q=parcel&kind=messages&limit=2{cursor}"))["messages"]
        seen += [m["id"] for m in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)
    assert (await _search(client, "q=424242&kind=customers"))["customers"]["items"][0]["id"] == 1

    for bad in (
        "",
        "q=",
        "q=%20%20",
        "q=!!!",
        "q=a&kind=files",
        "q=" + "x" * 201,
        "q=a&cursor=abc",
    ):
        response = await client.get(f"/api/v1/search?{bad}")
        assert response.status == 400, bad
    # A percent sign or underscore is text, not a wildcard.
    assert (await _search(client, "q=p_rcel&kind=tickets"))["tickets"]["items"] == []
    anonymous = await make_client(run_workers=False)
    assert (await anonymous.get("/api/v1/search?q=parcel")).status == 401


async def test_search_scanning_newest_first_finds_the_same(
    make_client: ClientFactory, floor: Floor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no term rare enough to drive the search (as for common words in a big
    hub), the newest messages are scanned instead: the same answers, newest first."""
    import conversations.search

    monkeypatch.setattr(conversations.search, "SELECTIVE", 0)
    await customer_writes(floor.db, "v-mine", "the invoice again", n=1, inbox_id=floor.inbox)
    ana = await make_client(run_workers=False)
    await login(ana, "ana@example.com")
    found = (await _search(ana, "q=invoi&kind=messages"))["messages"]["items"]
    assert [m["snippet"] for m in found] == ["the invoice again", "my invoice is wrong"]
    page = (await _search(ana, "q=invoice&kind=messages&limit=1"))["messages"]
    rest = await _search(ana, f"q=invoice&kind=messages&cursor={page['next_cursor']}")
    assert [m["snippet"] for m in rest["messages"]["items"]] == ["my invoice is wrong"]
    assert (await _search(ana, "q=到账"))["messages"]["items"][0]["conversation_id"] == (
        floor.billing_open
    )
    assert (await _search(ana, "q=refund"))["messages"]["items"] == []


async def test_a_scan_over_common_terms_stops_and_says_truncated(
    make_client: ClientFactory, floor: Floor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanning newest first examines at most MAX_SCANNED messages a page: a match older
    than that is not reached, the page says so, and its cursor scans on to it."""
    import conversations.search

    monkeypatch.setattr(conversations.search, "SELECTIVE", 0)
    monkeypatch.setattr(conversations.search, "MAX_SCANNED", 3)
    for n in range(4):
        await customer_writes(floor.db, "v-bare", f"nothing here {n}", n=n, inbox_id=floor.inbox)
    bo = await make_client(run_workers=False)
    await login(bo, "bo@example.com")
    first = (await _search(bo, "q=invoice&kind=messages"))["messages"]
    assert first["items"] == [] and first["truncated"] is True
    assert first["next_cursor"]
    found: list[str] = []
    cursor, pages = first["next_cursor"], 1
    while cursor:
        page = (await _search(bo, f"q=invoice&kind=messages&cursor={cursor}"))["messages"]
        found += [m["snippet"] for m in page["items"]]
        cursor, pages = page["next_cursor"], pages + 1
        assert pages < 10
    assert found == ["my invoice is wrong"]
    # An agent whose queues hold no match stops the same way (the vip refund is not hers).
    ana = await make_client(run_workers=False)
    await login(ana, "ana@example.com")
    scoped = (await _search(ana, "q=refund&kind=messages"))["messages"]
    assert scoped["items"] == [] and scoped["truncated"] is True
    # A page that fills within the window, or a rare term, is not truncated.
    monkeypatch.setattr(conversations.search, "MAX_SCANNED", 100)
    whole = (await _search(bo, "q=nothing&kind=messages&limit=2"))["messages"]
    assert len(whole["items"]) == 2 and whole["truncated"] is False
    monkeypatch.setattr(conversations.search, "SELECTIVE", 5000)
    monkeypatch.setattr(conversations.search, "MAX_SCANNED", 1)
    rare = (await _search(bo, "q=invoice&kind=messages"))["messages"]
    assert [m["snippet"] for m in rare["items"]] == ["my invoice is wrong"]
    assert rare["truncated"] is False and rare["next_cursor"] is None


async def test_every_inbox_list_route_is_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    for path, methods in {
        "/inbox/conversations": {"get"},
        "/inbox/counts": {"get"},
        "/inbox/views": {"get", "post"},
        "/inbox/views/{id}": {"patch", "delete"},
        "/search": {"get"},
    }.items():
        assert methods <= set(document["paths"][path]), path
