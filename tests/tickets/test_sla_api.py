"""The SLA REST API: calendars and policies CRUD, access, bad input, clocks in ticket views."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from switchboard.tx import Database
from tests.conftest import AppClient
from tests.security.support import bearer, staff_token
from tests.tickets.support import customer_writes, open_ticket
from tickets.sla_models import SlaCalendar, SlaPolicy

OFFICE = {d: [["09:00", "17:00"]] for d in ("monday", "tuesday", "wednesday", "thursday")}
CALENDAR = {
    "name": "Berlin office",
    "time_zone": "Europe/Berlin",
    "hours": OFFICE,
    "holidays": ["2026-12-25"],
}
POLICY = {
    "name": "Standard",
    "targets": {"normal": {"first_response": 60, "resolution": 480}},
    "is_default": True,
}


async def call(
    client: AppClient, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.request(method, f"/api/v1{path}", json=body, headers=bearer(token))
    return response.status, await response.json()


async def stored(db: Database) -> tuple[int, int]:
    async with db.reading() as session:
        calendars = (await session.execute(select(func.count(SlaCalendar.id)))).scalar_one()
        policies = (await session.execute(select(func.count(SlaPolicy.id)))).scalar_one()
        return calendars, policies


async def test_admin_creates_calendar_and_policy_and_tickets_show_clocks(
    client: AppClient, db: Database
) -> None:
    _, admin = await staff_token(db, "sla-admin@example.com", "admin")
    status, body = await call(client, "POST", "/sla/calendars", admin, CALENDAR)
    assert status == 201, body
    calendar = body["calendar"]
    assert calendar["hours"]["monday"] == [["09:00", "17:00"]]
    assert calendar["hours"]["friday"] == []
    status, body = await call(
        client, "POST", "/sla/policies", admin, {**POLICY, "calendar_id": calendar["id"]}
    )
    assert status == 201, body
    policy = body["policy"]
    assert policy["escalations"] == [
        {"when": "warning", "action": "notify"},
        {"when": "breach", "action": "notify"},
    ]
    conversation_id, _ = await customer_writes(db, "v_sla_api_1")
    ticket = await open_ticket(db, conversation_id)
    status, body = await call(client, "GET", f"/tickets/{ticket.id}", admin)
    assert status == 200, body
    view = body["ticket"]
    assert view["sla_policy_id"] == policy["id"]
    metrics = {c["metric"]: c for c in view["sla"]}
    assert set(metrics) == {"first_response", "resolution"}
    assert metrics["first_response"]["status"] == "active"
    assert metrics["first_response"]["target_minutes"] == 60
    assert isinstance(metrics["first_response"]["seconds_to_breach"], int)
    # A calendar in use cannot go; the policy can once nothing active uses it.
    status, body = await call(client, "DELETE", f"/sla/calendars/{calendar['id']}", admin)
    assert (status, body["error"]["code"]) == (409, "calendar_in_use")
    status, body = await call(client, "DELETE", f"/sla/policies/{policy['id']}", admin)
    assert (status, body["error"]["code"]) == (409, "policy_in_use")


async def test_update_keeps_what_the_body_leaves_out(client: AppClient, db: Database) -> None:
    _, admin = await staff_token(db, "sla-admin2@example.com", "admin")
    _, body = await call(client, "POST", "/sla/calendars", admin, CALENDAR)
    calendar_id = body["calendar"]["id"]
    status, body = await call(
        client, "PATCH", f"/sla/calendars/{calendar_id}", admin, {"time_zone": "America/New_York"}
    )
    assert status == 200, body
    assert (body["calendar"]["time_zone"], body["calendar"]["holidays"]) == (
        "America/New_York",
        ["2026-12-25"],
    )
    _, body = await call(client, "POST", "/sla/policies", admin, POLICY)
    first = body["policy"]["id"]
    _, body = await call(client, "POST", "/sla/policies", admin, {**POLICY, "name": "Other"})
    # One default at a time: the newer default takes over.
    status, body = await call(client, "GET", "/sla/policies", admin)
    defaults = [p["id"] for p in body["policies"] if p["is_default"]]
    assert defaults != [first] and len(defaults) == 1
    status, _ = await call(client, "DELETE", f"/sla/policies/{first}", admin)
    assert status == 200
    assert await stored(db) == (1, 1)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"time_zone": 5}, "IANA time zone"),
        ({"hours": {"monday": [["09:00", "24:30"]]}}, "out of range"),
        ({"hours": {"monday": [["08:00", "12:00"], ["11:30", "14:00"]]}}, "overlap"),
        ({"hours": {"monday": "9-5"}}, "list"),
        ({"holidays": ["25.12.2026"]}, "YYYY-MM-DD"),
        ({"name": ""}, "name"),
    ],
)
async def test_bad_calendar_is_a_clear_400_and_stores_nothing(
    client: AppClient, db: Database, change: dict[str, Any], fragment: str
) -> None:
    _, admin = await staff_token(db, "sla-admin3@example.com", "admin")
    status, body = await call(client, "POST", "/sla/calendars", admin, {**CALENDAR, **change})
    assert status == 400, body
    assert fragment in body["error"]["message"]
    assert await stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"targets": {"normal": {"first_response": 0}}}, "1 to"),
        ({"targets": {"normal": {"first_response": "60"}}}, "1 to"),
        ({"targets": {"critical": {"first_response": 60}}}, "unknown priority"),
        ({"targets": {"normal": {"first_reply": 60}}}, "unknown metric"),
        ({"targets": {}}, "targets"),
        ({"calendar_id": 999}, "calendar"),
        ({"escalations": [{"when": "later", "action": "notify"}]}, "when"),
        ({"escalations": [{"when": "breach", "action": "page"}]}, "action"),
        ({"escalations": [{"when": "breach", "action": "reassign", "user_id": 999}]}, "user_id"),
        ({"escalations": [{"when": "breach", "action": "notify", "extra": 1}]}, "escalation"),
        ({"is_default": "yes"}, "is_default"),
    ],
)
async def test_bad_policy_is_a_clear_400_and_stores_nothing(
    client: AppClient, db: Database, change: dict[str, Any], fragment: str
) -> None:
    _, admin = await staff_token(db, "sla-admin4@example.com", "admin")
    status, body = await call(client, "POST", "/sla/policies", admin, {**POLICY, **change})
    assert status == 400, body
    assert fragment in body["error"]["message"]
    assert await stored(db) == (0, 0)


async def test_duplicate_name_is_a_409(client: AppClient, db: Database) -> None:
    _, admin = await staff_token(db, "sla-admin5@example.com", "admin")
    assert (await call(client, "POST", "/sla/calendars", admin, CALENDAR))[0] == 201
    status, body = await call(client, "POST", "/sla/calendars", admin, CALENDAR)
    assert (status, body["error"]["code"]) == (409, "name_taken")


async def test_who_may_read_and_write(client: AppClient, db: Database) -> None:
    _, admin = await staff_token(db, "sla-a@example.com", "admin")
    _, supervisor = await staff_token(db, "sla-s@example.com", "supervisor")
    _, agent = await staff_token(db, "sla-g@example.com", "agent")
    _, body = await call(client, "POST", "/sla/calendars", admin, CALENDAR)
    calendar_id = body["calendar"]["id"]
    for path in ("/sla/calendars", f"/sla/calendars/{calendar_id}", "/sla/policies"):
        assert (await call(client, "GET", path, supervisor))[0] == 200
        assert (await call(client, "GET", path, agent))[0] == 403
        response = await client.get(f"/api/v1{path}")
        assert response.status == 401
    writes = [
        ("POST", "/sla/calendars", {**CALENDAR, "name": "x"}),
        ("PATCH", f"/sla/calendars/{calendar_id}", {"name": "y"}),
        ("DELETE", f"/sla/calendars/{calendar_id}", None),
        ("POST", "/sla/policies", POLICY),
    ]
    for method, path, body in writes:
        for token in (supervisor, agent):
            assert (await call(client, method, path, token, body))[0] == 403
    assert await stored(db) == (1, 0)
    assert (await call(client, "GET", "/sla/calendars/99999", admin))[0] == 404
    assert (await call(client, "GET", "/sla/calendars/abc", admin))[0] == 404


async def test_the_sla_routes_are_in_the_openapi_document(client: AppClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/sla/calendars"]) == {"get", "post"}
    assert set(paths["/sla/policies/{id}"]) == {"get", "patch", "delete"}
    assert "sla" in document["components"]["schemas"]["Ticket"]["properties"]
