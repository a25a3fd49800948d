"""The supervisor dashboard's API: who may call it, the floor now, the tickets behind a
number, reassigning with capacity, CSV exports, and presence reaching the socket live."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from routing.models import AgentProfile, Queue, QueueMember
from switchboard.db import utcnow
from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory, create_user, login
from tests.security.support import bearer, receive, staff_token, use_cheap_password_hashing
from tests.tickets.report_support import FIRST_DAY, LAST_DAY, ZONE, arrange
from tests.tickets.support import customer_writes, make_inbox, open_ticket
from tickets.models import Ticket
from tickets.sla_models import SlaClock
from web.supervisor_api import csv_cell

HUB_ORIGIN = "http://127.0.0.1:8080"
ROUTES = [
    ("GET", "/api/v1/supervisor/overview"),
    ("GET", "/api/v1/supervisor/tickets"),
    ("GET", "/api/v1/supervisor/tickets.csv"),
    ("POST", "/api/v1/supervisor/tickets/1/assign"),
    ("GET", "/api/v1/reports/sla"),
    ("GET", "/api/v1/reports/csat.csv"),
]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    # No workers: routing must not assign the arranged tickets behind the test's back.
    return await make_client(run_workers=False)


async def queue_with(db: Database, name: str, *members: int, capacity: int = 5) -> int:
    async def write(session: Any) -> int:
        queue = Queue(name=name, strategy="round_robin")
        session.add(queue)
        await session.flush()
        for user_id in members:
            session.add(QueueMember(queue_id=queue.id, user_id=user_id))
            session.add(AgentProfile(user_id=user_id, capacity=capacity, presence="online"))
        return queue.id

    return await db.run(write)


async def queued_ticket(
    db: Database, inbox_id: int, name: str, queue_id: int, **values: Any
) -> int:
    conversation_id, _ = await customer_writes(db, name, subject_text(name), inbox_id=inbox_id)
    ticket = await open_ticket(db, conversation_id)
    await db.run(
        lambda s: s.execute(
            update(Ticket).where(Ticket.id == ticket.id).values(queue_id=queue_id, **values)
        )
    )
    return ticket.id


def subject_text(name: str) -> str:
    return f"about {name}"


async def test_agents_are_refused_and_outsiders_learn_nothing(
    client: AppClient, db: Database
) -> None:
    _, agent = await staff_token(db, "agent@example.com", "agent")
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    for method, path in ROUTES:
        anonymous = await client.request(method, path, json={})
        assert anonymous.status == 401, path
        refused = await client.request(method, path, json={}, headers=bearer(agent))
        assert refused.status == 403, path
        assert (await refused.json())["error"]["code"] == "forbidden"
    assert (await client.get(ROUTES[0][1], headers=bearer(supervisor))).status == 200
    assert (await client.get("/api/v1/reports/nope", headers=bearer(supervisor))).status == 404
    bad = await client.get("/api/v1/reports/sla?period=forever", headers=bearer(supervisor))
    assert bad.status == 400
    bad = await client.get("/api/v1/supervisor/tickets?state=all", headers=bearer(supervisor))
    assert bad.status == 400
    bad = await client.get("/api/v1/supervisor/tickets?sort=id", headers=bearer(supervisor))
    assert (await bad.json())["error"]["code"] == "unknown_parameter"

    # The page: agents get the same 404 as for no page; anonymous callers are sent to log in.
    await create_user(db, "agent2@example.com", "agent")
    await login(client, "agent2@example.com")
    assert (await client.get("/supervisor", allow_redirects=False)).status == 404


async def test_page_for_supervisors(client: AppClient, db: Database) -> None:
    redirect = await client.get("/supervisor", allow_redirects=False)
    assert redirect.status == 302
    assert redirect.headers["Location"].startswith("/login")
    await create_user(db, "boss@example.com", "supervisor")
    await login(client, "boss@example.com")
    page = await client.get("/supervisor")
    assert page.status == 200
    html = await page.text()
    assert 'src="/static/supervisor.js"' in html
    assert "<script>" not in html  # the CSP allows no inline script


async def test_overview_and_drill_down(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    ann = await create_user(db, "ann@example.com", "agent", "Ann")
    queue_id = await queue_with(db, "Billing", ann, capacity=3)
    inbox = await make_inbox(db)
    waiting = await queued_ticket(db, inbox, "waiting", queue_id)
    mine = await queued_ticket(db, inbox, "mine", queue_id, assignee_user_id=ann, status="open")
    late = await queued_ticket(db, inbox, "late", queue_id)
    now = utcnow()

    async def clocks(session: Any) -> None:
        for ticket_id, minutes, breached in (
            (waiting, 30, False),
            (mine, 5, False),
            (late, -5, True),
        ):
            session.add(
                SlaClock(
                    ticket_id=ticket_id,
                    metric="first_response",
                    status="missed" if breached else "active",
                    priority="normal",
                    target_minutes=60,
                    started_at=now - timedelta(hours=1),
                    due_at=now + timedelta(minutes=minutes),
                    paused_seconds=0,
                    breached_at=now if breached else None,
                )
            )

    await db.run(clocks)
    data = await (
        await client.get("/api/v1/supervisor/overview", headers=bearer(supervisor))
    ).json()
    billing = next(q for q in data["queues"] if q["id"] == queue_id)
    assert (billing["open"], billing["waiting"], billing["breached"]) == (3, 2, 1)
    # Soonest first, breached ones left out (they are counted as breached).
    assert [s["ticket_id"] for s in billing["soonest"]] == [mine, waiting]
    assert 0 < billing["soonest"][0]["seconds_to_breach"] <= 300
    agent = next(a for a in data["agents"] if a["id"] == ann)
    assert (agent["load"], agent["capacity"], agent["presence"]) == (1, 3, "online")
    assert [t["id"] for t in agent["tickets"]] == [mine]
    assert agent["queue_ids"] == [queue_id]

    async def ids(query: str) -> list[int]:
        response = await client.get(
            f"/api/v1/supervisor/tickets?{query}", headers=bearer(supervisor)
        )
        assert response.status == 200, await response.text()
        return [t["id"] for t in (await response.json())["tickets"]]

    assert await ids(f"queue_id={queue_id}&state=waiting") == [late, waiting]
    assert await ids(f"queue_id={queue_id}&state=breached") == [late]
    assert await ids(f"assignee_id={ann}") == [mine]
    first = await client.get(
        f"/api/v1/supervisor/tickets?queue_id={queue_id}&limit=2", headers=bearer(supervisor)
    )
    page = await first.json()
    rest = await ids(f"queue_id={queue_id}&limit=2&cursor={page['next_cursor']}")
    assert [t["id"] for t in page["tickets"]] + rest == [late, mine, waiting]


async def test_report_drill_down(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    known = await arrange(db)
    period = f"period=custom&from={FIRST_DAY}&to={LAST_DAY}&tz={ZONE}"
    response = await client.get(
        f"/api/v1/reports/first_response?{period}", headers=bearer(supervisor)
    )
    assert (await response.json())["total"]["median"] == 120.0
    drilled = await client.get(
        f"/api/v1/supervisor/tickets?report=first_response&bucket=0&{period}",
        headers=bearer(supervisor),
    )
    got = {t["id"] for t in (await drilled.json())["tickets"]}
    assert got == {known.tickets["t1"], known.tickets["t2"]}
    outside = await client.get(
        f"/api/v1/supervisor/tickets?report=sla&bucket=7&{period}", headers=bearer(supervisor)
    )
    assert outside.status == 400


async def test_reassign_respects_capacity(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    bob = await create_user(db, "bob@example.com", "agent", "Bob")
    queue_id = await queue_with(db, "Returns", bob, capacity=1)
    inbox = await make_inbox(db)
    held = await queued_ticket(db, inbox, "held", queue_id, assignee_user_id=bob)
    other = await queued_ticket(db, inbox, "other", queue_id)
    path = f"/api/v1/supervisor/tickets/{other}/assign"

    full = await client.post(path, json={"assignee_id": bob}, headers=bearer(supervisor))
    assert full.status == 409
    error = (await full.json())["error"]
    assert error["code"] == "over_capacity"
    assert "Bob is at capacity (1 of 1 tickets)" in error["message"]
    anyway = await client.post(
        path, json={"assignee_id": bob, "over_capacity": True}, headers=bearer(supervisor)
    )
    assert anyway.status == 200
    assert (await anyway.json())["ticket"]["assignee_id"] == bob
    # Unassigning needs no room; a body naming anything else is refused.
    back = await client.post(
        f"/api/v1/supervisor/tickets/{held}/assign",
        json={"assignee_id": None},
        headers=bearer(supervisor),
    )
    assert (await back.json())["ticket"]["assignee_id"] is None
    sneaky = await client.post(
        path, json={"assignee_id": bob, "role": "admin"}, headers=bearer(supervisor)
    )
    assert sneaky.status == 400
    missing = await client.post(
        "/api/v1/supervisor/tickets/999999/assign",
        json={"assignee_id": bob},
        headers=bearer(supervisor),
    )
    assert missing.status == 404


def test_csv_cells_are_never_formulas() -> None:
    assert csv_cell('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    starts = ("+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "＝1+1", "＠SUM(A1)", " =1+1", "\u3000=1")
    for start in starts:
        assert csv_cell(start) == "'" + start
    assert csv_cell(-5) == "-5"  # our own numbers stay numbers
    assert csv_cell("退款问题") == "退款问题"
    assert csv_cell(None) == ""


async def test_ticket_csv_export(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    queue_id = await queue_with(db, "导出")
    inbox = await make_inbox(db)
    evil = await queued_ticket(db, inbox, "evil", queue_id, subject='=HYPERLINK("http://x")')
    chinese = await queued_ticket(db, inbox, "cn", queue_id, subject="退款问题 @客服")
    await queued_ticket(db, inbox, "elsewhere", await queue_with(db, "Other"))

    response = await client.get(
        f"/api/v1/supervisor/tickets.csv?queue_id={queue_id}&tz=Asia/Shanghai",
        headers=bearer(supervisor),
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="tickets-')
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["id", "subject", "status", "priority"]
    assert rows[0][9] == "created (Asia/Shanghai)"
    body = {int(r[0]): r for r in rows[1:]}
    assert set(body) == {evil, chinese}
    assert body[evil][1] == '\'=HYPERLINK("http://x")'
    assert body[chinese][1] == "退款问题 @客服"
    assert body[chinese][4] == "导出"


async def test_report_csv_export(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    await arrange(db)
    period = f"period=custom&from={FIRST_DAY}&to={LAST_DAY}&tz={ZONE}"
    response = await client.get(f"/api/v1/reports/csat.csv?{period}", headers=bearer(supervisor))
    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="csat-{FIRST_DAY}-{LAST_DAY}.csv"'
    )
    rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert rows[0] == ["period", "ratings", "average"]
    assert rows[1:4] == [[FIRST_DAY, "1", "5.0"], [LAST_DAY, "2", "3.0"], ["total", "3", "3.67"]]
    assert ["rating 5", "1"] in rows
    reasons = await client.get(
        f"/api/v1/reports/handoff_reasons.csv?{period}", headers=bearer(supervisor)
    )
    text = (await reasons.read()).decode("utf-8-sig")
    assert text.splitlines()[0] == "reason,count"
    assert "out_of_scope,1" in text


async def test_presence_reaches_supervisors_not_agents(client: AppClient, db: Database) -> None:
    await create_user(db, "boss@example.com", "supervisor")
    await login(client, "boss@example.com")
    supervisor_socket = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})
    ann, token = await staff_token(db, "ann@example.com", "agent", "Ann")
    # The agent's socket (an API token, on the same app and bus) opens: Ann is online.
    agent_socket = await client.ws_connect(
        "/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)}
    )
    frame = await receive(supervisor_socket, "agent.presence_changed")
    while frame["data"]["user_id"] != ann:  # the supervisor's own socket may come first
        frame = await receive(supervisor_socket, "agent.presence_changed")
    assert frame["data"] == {"user_id": ann, "presence": "online"}
    await agent_socket.send_json({"type": "ping"})
    # The agent's socket hears its pong, and no presence frame comes before it.
    reply = await agent_socket.receive_json(timeout=5)
    assert reply["type"] == "pong"
    await agent_socket.close()
    await supervisor_socket.close()


async def test_openapi_lists_the_dashboard_routes(client: AppClient) -> None:
    paths = (await (await client.get("/api/v1/openapi.json")).json())["paths"]
    assert "409" in paths["/supervisor/tickets/{id}/assign"]["post"]["responses"]
    for path in ("/supervisor/overview", "/supervisor/tickets.csv", "/reports/{name}.csv"):
        assert "403" in paths[path]["get"]["responses"]


async def test_every_report_answers_for_every_period(client: AppClient, db: Database) -> None:
    _, supervisor = await staff_token(db, "boss@example.com", "supervisor")
    await arrange(db)
    for period in ("today", "7d", "30d"):
        for name in ("first_response", "resolution", "sla", "csat", "containment"):
            response = await client.get(
                f"/api/v1/reports/{name}?period={period}&tz=America/New_York",
                headers=bearer(supervisor),
            )
            assert response.status == 200, await response.text()
            data = await response.json()
            assert len(data["series"]) == {"today": 24, "7d": 7, "30d": 30}[period]
            assert data["period"]["tz"] == "America/New_York"
    today = await client.get(
        "/api/v1/reports/sla.csv?period=today&tz=America/New_York", headers=bearer(supervisor)
    )
    name = today.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert re.fullmatch(r"sla-\d{4}-\d{2}-\d{2}\.csv", name), name
