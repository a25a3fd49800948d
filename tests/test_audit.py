"""The audit log (switchboard.audit, GET /api/v1/audit) on SQLite and PostgreSQL: every
kind of admin write and security event leaves one entry, in the same transaction as the
change (a refused write leaves none), secrets never reach it, and the log is searchable
and paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from switchboard.audit import AuditEntry, record
from switchboard.models import User
from switchboard.settings import Settings
from switchboard.tx import Database
from tests.conftest import AppClient, create_user, login
from tests.knowledge_base.support import HOURS
from tests.security.support import bearer, staff_token, use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


async def _entries(
    client: AppClient, headers: dict[str, str], **query: str
) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": "200", **query}, headers=headers)
    assert response.status == 200, await response.text()
    entries: list[dict[str, Any]] = (await response.json())["entries"]
    return entries


async def _count(db: Database) -> int:
    async with db.reading() as session:
        return int((await session.execute(select(func.count(AuditEntry.id)))).scalar_one())


async def test_security_events_are_recorded_with_the_address(
    client: AppClient, db: Database
) -> None:
    await create_user(db, "ann@example.com", "agent", "Ann")
    _admin_id, token = await staff_token(db, "root@example.com", "admin")
    admin = bearer(token)

    page = await client.get("/login")
    assert page.status == 200
    form_token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
        "sb_login_csrf"
    ].value
    wrong = await client.post(
        "/login",
        data={"email": "Ann@example.com", "password": "not it at all", "csrf_token": form_token},
        allow_redirects=False,
    )
    assert wrong.status == 401
    nul = await client.post(
        "/login",
        data={"email": "eve\x00@example.com", "password": "x", "csrf_token": form_token},
        allow_redirects=False,
    )
    assert nul.status == 401  # recorded without the NUL, never a 500
    csrf = await login(client, "ann@example.com")
    out = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303

    csrf = await login(client, "ann@example.com")
    everywhere = await client.post(
        "/logout/everywhere", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert everywhere.status == 303

    eve = await _entries(client, admin, actor="eve")
    assert [(e["action"], e["actor"]) for e in eve] == [("auth.login_failed", "eve@example.com")]
    entries = await _entries(client, admin, action="auth.", actor="ann")
    assert [e["action"] for e in entries] == [
        "auth.sessions_revoked",
        "auth.login",
        "auth.logout",
        "auth.login",
        "auth.login_failed",
    ]
    assert all(e["actor"] == "ann@example.com" for e in entries)
    assert entries[4]["actor_user_id"] is None  # a failed login proves no identity
    assert entries[3]["actor_user_id"] is not None
    assert all(e["address"] == "127.0.0.1" for e in entries)
    assert "not it at all" not in str(entries)


async def test_users_and_tokens_made_on_the_command_line_are_recorded(
    client: AppClient, db: Database, settings: Settings
) -> None:
    from switchboard.cli import _create_token, _create_user

    await _create_user(settings, "bot@example.com", "Bot", "agent", "a long enough password")
    async with db.reading() as session:
        user_id = (
            await session.execute(select(User.id).where(User.email == "bot@example.com"))
        ).scalar_one()
    _admin_id, token = await staff_token(db, "root@example.com", "admin")
    await _create_token(settings, "bot@example.com", "ci")
    made = await _entries(client, bearer(token), action="user.created")
    assert [(e["actor"], e["target"]) for e in made] == [("cli", "bot@example.com")]
    entry = await _entries(client, bearer(token), action="token.created")
    assert len(entry) == 1  # the test helper's token skips the CLI: only the CLI's is here
    assert entry[0]["target_id"] == str(user_id) and entry[0]["actor"] == "cli"
    assert entry[0]["details"] == {"name": "ci"}


async def test_every_kind_of_admin_write_is_recorded(client: AppClient, db: Database) -> None:
    admin_id, token = await staff_token(db, "root@example.com", "admin")
    admin = bearer(token)

    async def ok(method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        response = await client.request(method, "/api/v1" + path, json=body, headers=admin)
        assert response.status == status, (path, await response.text())
        return await response.json()  # type: ignore[no-any-return]

    article = (await ok("POST", "/kb/articles", HOURS, 201))["article"]
    await ok("PATCH", f"/kb/articles/{article['id']}", {"question": "Opening hours?"})
    await ok("POST", f"/kb/articles/{article['id']}/publish")
    await ok("POST", f"/kb/articles/{article['id']}/unpublish")
    await ok("POST", f"/kb/articles/{article['id']}/revert", {"version": 1})
    created = await ok(
        "POST", "/users", {"email": "bo@example.com", "password": "a secret password 1"}, 201
    )
    user_id = created["user"]["id"]
    await ok("PATCH", f"/users/{user_id}", {"role": "supervisor"})
    await ok("PATCH", f"/users/{user_id}", {"active": False})
    await ok("POST", f"/users/{user_id}/password")
    queue = (await ok("POST", "/queues", {"name": "Billing"}, 201))["queue"]
    agent_id = await create_user(db, "cy@example.com", "agent")
    await ok("PUT", f"/queues/{queue['id']}/members/{agent_id}")
    await ok("PATCH", f"/agents/{agent_id}", {"capacity": 3, "skills": ["billing"]})
    rule = {
        "name": "refunds",
        "conditions": {"keywords": ["refund"]},
        "actions": {"priority": "high"},
    }
    await ok("POST", "/routing/rules", rule, 201)
    calendar = {
        "name": "office",
        "time_zone": "Europe/Berlin",
        "hours": {"monday": [["09:00", "17:00"]]},
    }
    await ok("POST", "/sla/calendars", calendar, 201)
    inboxes = (await ok("GET", "/inboxes"))["inboxes"]
    inbox_id = inboxes[0]["id"]
    await ok("PATCH", f"/inboxes/{inbox_id}/bot", {"confidence": 0.6})
    await ok("PUT", f"/inboxes/{inbox_id}/csat", {"enabled": True})
    await ok("POST", "/canned-replies", {"shortcut": "hi", "title": "Hello", "body": "Hello!"}, 201)

    entries = await _entries(client, admin)
    actions = [e["action"] for e in reversed(entries)]
    expected = [
        "kb.article.created",
        "kb.article.edited",
        "kb.article.published",
        "kb.article.unpublished",
        "kb.article.reverted",
        "user.created",
        "user.role_changed",
        "user.deactivated",
        "user.password_reset",
        "queue.created",
        "queue.member_added",
        "agent.updated",
        "routing_rule.created",
        "sla.calendar.created",
        "bot.settings_changed",
        "csat.settings_changed",
    ]
    assert [a for a in actions if a in expected] == expected
    assert any(a.startswith("canned") for a in actions), actions  # engineer B's module
    by_action = {e["action"]: e for e in entries}
    assert all(e["actor_user_id"] == admin_id and e["actor"] == "root@example.com" for e in entries)
    assert by_action["user.role_changed"]["details"] == {"role": ["agent", "supervisor"]}
    assert by_action["user.role_changed"]["target"] == "bo@example.com"
    assert by_action["kb.article.published"]["target"] == HOURS["key"]
    assert by_action["queue.member_added"]["details"] == {"user_id": agent_id}
    assert "a secret password 1" not in str(entries)


async def test_a_refused_write_leaves_no_entry_and_secrets_are_hidden(
    client: AppClient, db: Database
) -> None:
    admin_id, token = await staff_token(db, "root@example.com", "admin")
    before = await _count(db)
    refused = await client.patch(
        f"/api/v1/users/{admin_id}", json={"role": "agent"}, headers=bearer(token)
    )
    assert refused.status == 409
    assert await _count(db) == before

    class Boom(Exception):
        pass

    async def failing(session: Any) -> None:
        await record(
            session, "test.rolled_back", details={"password": "hunter2", "nested": {"token": "t"}}
        )
        raise Boom

    with pytest.raises(Boom):
        await db.run(failing)
    assert await _count(db) == before

    async def kept(session: Any) -> None:
        await record(
            session, "test.kept", details={"password": "hunter2", "nested": {"token": "t"}, "n": 1}
        )

    await db.run(kept)
    entry = (await _entries(client, bearer(token), action="test.kept"))[0]
    assert entry["details"] == {"password": "[hidden]", "nested": {"token": "[hidden]"}, "n": 1}
    assert entry["actor"] == "system"


async def test_search_filters_and_pages_through_everything(client: AppClient, db: Database) -> None:
    _admin_id, token = await staff_token(db, "root@example.com", "admin")
    admin = bearer(token)
    for n in range(7):
        await client.post("/api/v1/queues", json={"name": f"Queue {n}"}, headers=admin)
    await client.post("/api/v1/kb/articles", json=HOURS, headers=admin)

    assert len(await _entries(client, admin, action="queue.")) == 7
    assert len(await _entries(client, admin, action="queue.created")) == 7
    assert len(await _entries(client, admin, action="queue")) == 0  # exact unless it ends in "."
    assert [e["action"] for e in await _entries(client, admin, q="opening_hours")] == [
        "kb.article.created"
    ]
    assert len(await _entries(client, admin, actor="ROOT@")) == 8
    assert await _entries(client, admin, actor="nobody") == []
    assert await _entries(client, admin, q="100%_") == []  # LIKE wildcards are literal

    now = datetime.now(UTC)
    assert len(await _entries(client, admin, since=(now - timedelta(minutes=5)).isoformat())) == 8
    assert await _entries(client, admin, until=(now - timedelta(minutes=5)).isoformat()) == []

    seen: list[int] = []
    cursor = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/v1/audit", params=query, headers=admin)).json()
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 8 and seen == sorted(seen, reverse=True) and len(set(seen)) == 8

    for bad in (
        {"cursor": "abc"},
        {"cursor": "99999999999"},
        {"since": "yesterday"},
        {"until": "9999-12-31T23:59-01:00"},  # no UTC equivalent
        {"limit": "0"},
        {"q": "x" * 201},
        {"actor": "a\x00b"},
    ):
        response = await client.get("/api/v1/audit", params=bad, headers=admin)
        assert response.status == 400, bad
    _sid, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    assert (await client.get("/api/v1/audit", headers=bearer(supervisor))).status == 403
