"""The admin console's API (web.admin_api) and page (web.admin), on SQLite and PostgreSQL:
users and roles with the last-admin guard, deactivation ending sessions and tokens,
knowledge-base preview/diff/revert, the "try the bot" box, the inbox connection test."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import BotReply
from conversations.models import Conversation, Inbox
from knowledge_base.commands import import_file
from switchboard.models import ApiToken, AuthSession
from switchboard.tx import Database
from tests.bot.dialogue_support import DEMO_KB
from tests.channels.slack.support import SECRET as SLACK_SECRET
from tests.channels.slack.support import TOKEN as SLACK_TOKEN
from tests.conftest import AppClient, ClientFactory, login
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi
from tests.knowledge_base.support import HOURS
from tests.security.support import bearer, staff_token, use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


async def _admin(db: Database, email: str = "root@example.com") -> tuple[int, dict[str, str]]:
    user_id, token = await staff_token(db, email, "admin", "Root Admin")
    return user_id, bearer(token)


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.reading() as session:
        found = await session.execute(select(func.count()).select_from(model).where(*where))
        return int(found.scalar_one())


# --- the page ------------------------------------------------------------------------------


async def test_the_console_is_for_admins_and_others_cannot_tell_it_exists(
    client: AppClient, db: Database
) -> None:
    _id, admin = await _admin(db)
    _sid, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    _aid, agent = await staff_token(db, "agent@example.com", "agent")

    anonymous = await client.get("/admin", allow_redirects=False)
    assert anonymous.status == 302
    assert anonymous.headers["Location"] == "/login?next=/admin"

    nothing = await client.get("/no-such-page", headers=bearer(agent))
    expected = await nothing.read()
    for headers in (bearer(agent), bearer(supervisor)):
        for path in ("/admin", "/admin/users", "/admin/audit"):
            denied = await client.get(path, headers=headers)
            assert denied.status == 404
            assert await denied.read() == expected

    for section, title in (
        ("kb", "Knowledge base"),
        ("users", "Users and roles"),
        ("audit", "Audit log"),
    ):
        page = await client.get(f"/admin/{section}", headers=admin)
        assert page.status == 200
        html = await page.text()
        assert f'<h1 class="page-title">{title}</h1>' in html
        assert 'aria-current="page">' + title in html
        assert "Content-Security-Policy" in page.headers
    assert (await client.get("/admin/nope", headers=admin)).status == 404


async def test_the_console_speaks_the_admins_language(client: AppClient, db: Database) -> None:
    _id, admin = await _admin(db)
    await client.patch("/api/v1/me", json={"locale": "zh"}, headers=admin)
    html = await (await client.get("/admin/kb", headers=admin)).text()
    assert "知识库" in html and "试用机器人" in html


# --- users -----------------------------------------------------------------------------------


async def test_create_users_with_a_one_time_or_a_chosen_password(
    client: AppClient, db: Database
) -> None:
    _id, admin = await _admin(db)
    created = await client.post(
        "/api/v1/users",
        json={"email": "New@Example.com", "name": "Nia", "role": "supervisor"},
        headers=admin,
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["user"]["email"] == "new@example.com"
    assert body["user"]["role"] == "supervisor"
    one_time = body["password"]
    assert len(one_time) >= 12
    await login(client, "new@example.com", one_time)  # the generated password works
    listed = await (await client.get("/api/v1/users", headers=admin)).json()
    assert "password" not in str(listed) and one_time not in str(listed)
    first = await (await client.get("/api/v1/users?limit=1", headers=admin)).json()
    rest = await (
        await client.get(f"/api/v1/users?cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert [u["email"] for u in first["users"] + rest["users"]] == [
        "root@example.com",
        "new@example.com",
    ]
    assert rest["next_cursor"] is None
    assert (await client.get("/api/v1/users?cursor=x", headers=admin)).status == 400

    chosen = await client.post(
        "/api/v1/users",
        json={"email": "chosen@example.com", "password": "a long enough password", "role": "agent"},
        headers=admin,
    )
    assert chosen.status == 201
    assert "password" not in await chosen.json()

    again = await client.post("/api/v1/users", json={"email": "new@example.com"}, headers=admin)
    assert again.status == 409
    for bad in (
        {"email": "x@example.com", "role": "owner"},
        {"email": "not an email"},
        {"email": "y@example.com", "password": "short"},
        {"role": "agent"},
        {"email": "nul\u0000@example.com"},
        {"email": "nul@example.com", "name": "N\u0000L"},
    ):
        refused = await client.post("/api/v1/users", json=bad, headers=admin)
        assert refused.status == 400, bad
    assert await _count(db, __import__("switchboard.models", fromlist=["User"]).User) == 3

    _sid, supervisor = await staff_token(db, "sup@example.com", "supervisor")
    promoted = await client.post(
        "/api/v1/users",
        json={"email": "z@example.com", "role": "admin"},
        headers=bearer(supervisor),
    )
    assert promoted.status == 403


async def test_roles_change_but_the_last_admin_stays(client: AppClient, db: Database) -> None:
    me, admin = await _admin(db)
    for change in ({"role": "supervisor"}, {"active": False}):
        refused = await client.patch(f"/api/v1/users/{me}", json=change, headers=admin)
        assert refused.status == 409
        assert (await refused.json())["error"]["code"] == "last_admin"
    assert (await client.get("/api/v1/me", headers=admin)).status == 200

    other, _token = await staff_token(db, "second@example.com", "agent")
    # Fields other than role, active and name are refused, not silently applied.
    sneaky = await client.patch(f"/api/v1/users/{other}", json={"email": "x@y.z"}, headers=admin)
    assert sneaky.status == 400
    promoted = await client.patch(f"/api/v1/users/{other}", json={"role": "admin"}, headers=admin)
    assert (await promoted.json())["user"]["role"] == "admin"
    demoted = await client.patch(f"/api/v1/users/{me}", json={"role": "agent"}, headers=admin)
    assert demoted.status == 200
    # I am an agent now: the admin API is closed to me at once.
    assert (await client.get("/api/v1/users", headers=admin)).status == 403
    assert (
        await client.patch(f"/api/v1/users/{other}", json={"name": "x"}, headers=admin)
    ).status == 403
    assert (
        await client.patch("/api/v1/users/2147483000", json={"name": "x"}, headers=admin)
    ).status == 403


async def test_deactivating_ends_every_session_and_token(client: AppClient, db: Database) -> None:
    _me, admin = await _admin(db)
    user_id, token = await staff_token(db, "leaver@example.com", "agent")
    await login(client, "leaver@example.com")  # a browser session in the client's cookies
    assert (await client.get("/api/v1/me")).status == 200
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200

    gone = await client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin)
    assert gone.status == 200
    assert (await gone.json())["user"]["active"] is False
    assert (await client.get("/api/v1/me")).status == 401
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401
    assert (
        await _count(
            db, AuthSession, AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        == 0
    )
    assert (
        await _count(db, ApiToken, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)) == 0
    )

    # Coming back does not revive the old credentials.
    back = await client.patch(f"/api/v1/users/{user_id}", json={"active": True}, headers=admin)
    assert back.status == 200
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401

    reset = await client.post(f"/api/v1/users/{user_id}/password", headers=admin)
    new_password = (await reset.json())["password"]
    await login(client, "leaver@example.com", new_password)
    assert (await client.get("/api/v1/me")).status == 200


# --- knowledge base: preview, diff, revert ---------------------------------------------------


async def test_preview_uses_the_safe_renderer(client: AppClient, db: Database) -> None:
    _me, admin = await _admin(db)
    source = (
        "**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    html = (
        await (
            await client.post("/api/v1/kb/preview", json={"answer_markdown": source}, headers=admin)
        ).json()
    )["html"]
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    too_long = await client.post(
        "/api/v1/kb/preview", json={"answer_markdown": "x" * 20_001}, headers=admin
    )
    assert too_long.status == 400


async def test_diff_and_revert_make_a_new_version(client: AppClient, db: Database) -> None:
    me, admin = await _admin(db)
    created = await client.post("/api/v1/kb/articles", json=HOURS, headers=admin)
    article = (await created.json())["article"]
    url = f"/api/v1/kb/articles/{article['id']}"
    edited = await client.patch(
        url,
        json={"answer_markdown": "We are open <b>24/7</b>.", "tags": ["hours", "new"]},
        headers=admin,
    )
    assert (await edited.json())["article"]["version"] == 2
    await client.post(f"{url}/publish", headers=admin)  # version 3

    diff = await (await client.get(f"{url}/diff?from=1&to=2", headers=admin)).json()
    fields = {f["field"]: f["lines"] for f in diff["fields"]}
    assert set(fields) == {"answer_markdown", "tags"}
    assert {"op": "-", "text": HOURS["answer_markdown"]} in fields["answer_markdown"]
    assert {"op": "+", "text": "We are open <b>24/7</b>."} in fields["answer_markdown"]
    assert {"op": "+", "text": "new"} in fields["tags"]
    latest = await (await client.get(f"{url}/diff", headers=admin)).json()
    assert (latest["from"], latest["to"]) == (2, 3)
    assert [f["field"] for f in latest["fields"]] == ["status"]

    reverted = await client.post(f"{url}/revert", json={"version": 1}, headers=admin)
    assert reverted.status == 200, await reverted.text()
    body = (await reverted.json())["article"]
    assert body["version"] == 4
    assert body["answer_markdown"] == HOURS["answer_markdown"]
    assert body["tags"] == ["hours"]
    assert body["status"] == "published"  # still serving, now with the old text
    versions = (await (await client.get(f"{url}/versions", headers=admin)).json())["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    assert versions[1]["answer_markdown"] == "We are open <b>24/7</b>."  # history kept
    assert versions[3]["change_note"] == "reverted to version 1"
    assert versions[3]["author_user_id"] == me

    for bad, status in (
        ({"version": 99}, 404),
        ({"version": "one"}, 400),
        ({}, 400),
        ({"version": True}, 400),
    ):
        refused = await client.post(f"{url}/revert", json=bad, headers=admin)
        assert refused.status == status, bad
    assert (await client.get(f"{url}/diff?from=0", headers=admin)).status == 400
    assert (
        await client.post(
            "/api/v1/kb/articles/2147483000/revert", json={"version": 1}, headers=admin
        )
    ).status == 404
    assert len((await (await client.get(f"{url}/versions", headers=admin)).json())["versions"]) == 4


# --- try the bot --------------------------------------------------------------------------------


async def test_try_the_bot_shows_the_match_and_stores_nothing(
    client: AppClient, db: Database
) -> None:
    _me, admin = await _admin(db)
    await import_file(db, DEMO_KB, note="tests")
    tried = await client.post(
        "/api/v1/bot/try", json={"text": "how much is shipping"}, headers=admin
    )
    assert tried.status == 200, await tried.text()
    body = await tried.json()
    assert body["decision"] == "answer"
    assert "shipping" in body["article"]["key"]
    assert body["article"]["answer_html"].startswith("<")
    assert 0.5 <= body["confidence"] <= 1
    assert body["alternatives"][0]["article"]["key"] == body["article"]["key"]
    assert len(body["alternatives"]) >= 2

    async with db.reading() as session:
        inbox_id = (
            await session.execute(select(Inbox.id).where(Inbox.kind == "webchat"))
        ).scalar_one()
    strict = await client.patch(
        f"/api/v1/inboxes/{inbox_id}/bot", json={"confidence": 1.0}, headers=admin
    )
    assert strict.status == 200
    unsure = await (
        await client.post(
            "/api/v1/bot/try",
            json={"text": "how much is shipping", "inbox_id": inbox_id},
            headers=admin,
        )
    ).json()
    assert unsure["decision"] != "answer"  # that inbox's thresholds apply
    assert unsure["thresholds"]["confidence"] == 1.0

    assert await _count(db, Conversation) == 0
    assert await _count(db, BotReply) == 0
    for bad in ({"text": ""}, {"text": "x" * 1001}, {"text": 5}, {}):
        assert (await client.post("/api/v1/bot/try", json=bad, headers=admin)).status == 400
    missing = await client.post(
        "/api/v1/bot/try", json={"text": "hi", "inbox_id": 2147483000}, headers=admin
    )
    assert missing.status == 404


# --- inbox connection test -------------------------------------------------------------------


async def test_connection_test_per_channel(make_client: ClientFactory, db: Database) -> None:
    api = FakeTelegramApi()
    await api.start()
    try:
        async with FakeSlackApi(token=SLACK_TOKEN).serve() as slack:
            client = await make_client(
                telegram_bot_token=TOKEN,
                telegram_api_url=api.url,
                slack_bot_token=SLACK_TOKEN,
                slack_signing_secret=SLACK_SECRET,
                slack_api_url=slack.api_url,
            )
            _me, admin = await _admin(db)
            listed = await client.get("/api/v1/inboxes", headers=admin)
            by_kind = {i["kind"]: i for i in (await listed.json())["inboxes"]}
            assert by_kind["telegram"]["webhook_url"].startswith(
                "http://127.0.0.1:8080/webhooks/telegram/"
            )

            async def test(kind: str) -> dict[str, Any]:
                response = await client.post(
                    f"/api/v1/inboxes/{by_kind[kind]['id']}/test", headers=admin
                )
                assert response.status == 200
                return await response.json()  # type: ignore[no-any-return]

            telegram = await test("telegram")
            assert telegram["ok"] is True, telegram
            assert telegram["detail"].startswith("getMe: @")
            assert api.calls("getMe")
            assert TOKEN not in str(telegram)

            answered = await test("slack")
            assert answered == {
                "inbox_id": by_kind["slack"]["id"],
                "kind": "slack",
                "ok": True,
                "detail": "auth.test: switchboard in Acme",
            }
            slack.fail_next("auth.test", 200, error="invalid_auth")
            refused = await test("slack")
            assert refused["ok"] is False and "invalid_auth" in refused["detail"]

            assert (await test("webchat"))["ok"] is True
            if "email" in by_kind:  # SMTP on localhost:587, where nothing listens in tests
                email = await test("email")
                assert email["ok"] is False and "SMTP" in email["detail"]

            missing = await client.post("/api/v1/inboxes/2147483000/test", headers=admin)
            assert missing.status == 404
    finally:
        await api.close()


async def test_email_connection_test_reaches_the_smtp_server(
    make_client: ClientFactory, db: Database
) -> None:
    from tests.channels.email.conftest import _PortZeroController

    class Quiet:
        async def handle_DATA(self, *_args: Any) -> str:
            return "250 OK"

    controller = _PortZeroController(Quiet(), hostname="127.0.0.1", port=0, ready_timeout=10)
    controller.start()
    try:
        client = await make_client(
            email_address="help@example.com",
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            smtp_tls="none",
        )
        _me, admin = await _admin(db)
        listed = await client.get("/api/v1/inboxes", headers=admin)
        email_id = next(i["id"] for i in (await listed.json())["inboxes"] if i["kind"] == "email")
        answered = await (
            await client.post(f"/api/v1/inboxes/{email_id}/test", headers=admin)
        ).json()
        assert answered["ok"] is True, answered
        assert answered["detail"] == (
            f"SMTP 127.0.0.1:{controller.port} EHLO ok; no IMAP mailbox configured"
        )
    finally:
        controller.stop()
    down = await (await client.post(f"/api/v1/inboxes/{email_id}/test", headers=admin)).json()
    assert down["ok"] is False and down["detail"].startswith("SMTP 127.0.0.1:")
