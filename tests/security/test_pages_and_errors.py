"""Escaping in server-rendered pages, error answers without internals, and what an
outsider can learn from the API (SECURITY.md 4: 10, 20, 26)."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import update

import web.api
from conversations.models import Inbox
from switchboard.settings import Settings
from tests.conftest import AppClient, create_user, login
from tests.security.support import (
    XSS,
    agent_token,
    bearer,
    new_visitor,
    open_widget,
    send_text,
    start_conversation,
    webchat_inbox,
)

ESCAPED = str(escape(XSS))


async def test_markup_from_customers_and_names_is_escaped_in_every_page(
    aiohttp_client: Any, settings: Settings, db: Any
) -> None:
    from switchboard.app import create_app
    from web.demo import DEMO_LOGINS

    app = create_app(settings, demo_page=True)
    app[DEMO_LOGINS] = [{"email": XSS, "password": XSS, "role": XSS}]
    client: AppClient = await aiohttp_client(app)
    inbox = await webchat_inbox(db)
    await db.run(lambda s: s.execute(update(Inbox).where(Inbox.id == inbox.id).values(name=XSS)))
    await create_user(db, "alex@example.com", name=XSS)

    visitor, _ = await new_visitor(client)
    widget = await open_widget(client, visitor)
    assert (await send_text(widget, "xss-00000001", XSS))["type"] == "ack"
    await widget.close()

    # The API hands the text back as JSON data, verbatim: escaping is the renderer's job.
    api = bearer(await agent_token(db))
    conversations = await (await client.get("/api/v1/conversations", headers=api)).json()
    [conversation] = conversations["conversations"]
    assert conversation["last_preview"] == XSS
    listing = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=api)
    assert listing.headers["Content-Type"].startswith("application/json")
    assert listing.headers["X-Content-Type-Options"] == "nosniff"
    assert (await listing.json())["messages"][0]["text"] == XSS

    # Every page that can show one of those values shows it escaped (so it did reach the
    # page) and never raw.
    login_page = await client.get("/login", params={"next": "/" + XSS})
    frame = await client.get("/widget/frame", params={"inbox": inbox.public_key})
    demo = await client.get("/demo")
    await login(client, "alex@example.com")
    inbox_page = await client.get("/inbox")
    for name, page in [
        ("login", login_page),
        ("frame", frame),
        ("demo", demo),
        ("inbox", inbox_page),
    ]:
        html = await page.text()
        assert page.status == 200, name
        assert page.headers["Content-Type"].startswith("text/html"), name
        assert XSS not in html, name
        assert "<script>alert" not in html and "onerror=alert" not in html.replace(ESCAPED, ""), (
            name
        )
        assert ESCAPED in html, name
        assert "script-src 'self'" in page.headers["Content-Security-Policy"], name


async def test_unknown_routes_and_wrong_methods_get_json_errors(client: AppClient, db: Any) -> None:
    api = bearer(await agent_token(db))
    assert (await client.get("/api/v1/me", headers=api)).status == 200
    cases = [
        ("GET", "/api/v1/no-such-thing", 404, "not_found"),
        ("GET", "/api/v1/conversations/1/nope", 404, "not_found"),
        ("GET", "/no-such-page", 404, "not_found"),
        ("POST", "/api/v1/me", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/conversations/1", 405, "method_not_allowed"),
        ("PUT", "/login", 405, "method_not_allowed"),
    ]
    for method, path, status, code in cases:
        response = await client.request(method, path, headers=api)
        assert response.status == status, (method, path)
        assert response.headers["Content-Type"].startswith("application/json"), (method, path)
        body = await response.json()
        assert body["error"]["code"] == code, (method, path)
        assert "Traceback" not in await response.text()
        if status == 405:
            assert "GET" in response.headers["Allow"]


async def test_an_unexpected_failure_is_a_plain_500(
    client: AppClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = bearer(await agent_token(db))
    assert (await client.get("/api/v1/conversations", headers=api)).status == 200

    async def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise RuntimeError("connection to db.internal:5432 failed, password=hunter2")

    monkeypatch.setattr(web.api, "list_conversations", broken)
    response = await client.get("/api/v1/conversations", headers=api)
    assert response.status == 500
    assert await response.json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    text = await response.text()
    for leak in ("Traceback", "RuntimeError", "hunter2", "db.internal", ".py"):
        assert leak not in text


BAD_IDS = [
    "abc",
    "-1",
    "0",
    "1.0",
    "1e3",
    "0x1",
    "²",
    "١",
    "1 ",
    "%20",
    "2147483648",
    "99999999999999999999",
    "9" * 200,
]


async def test_outsiders_and_odd_ids(client: AppClient, db: Any) -> None:
    conversation_id = await start_conversation(db)
    api = bearer(await agent_token(db))
    paths = [
        f"/api/v1/conversations/{conversation_id}",
        f"/api/v1/conversations/{conversation_id}/messages",
    ]

    for path in paths:
        assert (await client.get(path, headers=api)).status == 200, path
        anonymous = await client.get(path)
        assert anonymous.status == 401, path
        assert (await anonymous.json())["error"]["code"] == "unauthenticated"
    anonymous_post = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "x"}
    )
    assert anonymous_post.status == 401

    # To an agent (who may see every inbox for now) a missing conversation is a 404.
    missing = await client.get(f"/api/v1/conversations/{conversation_id + 1000}", headers=api)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"

    for bad in BAD_IDS:
        for method, suffix in [
            ("GET", ""),
            ("GET", "/messages"),
            ("POST", "/messages"),
            ("POST", "/read"),
        ]:
            response = await client.request(
                method, f"/api/v1/conversations/{bad}{suffix}", headers=api, json={"text": "x"}
            )
            assert response.status == 404, (bad, method, suffix, await response.text())
            assert (await response.json())["error"]["code"] == "not_found"
