"""Sessions and CSRF across the whole app (SECURITY.md 4: 32, 33; issue 6 point 8):
every unsafe route refuses a session-cookie request without the session's CSRF token,
except the few authorised by something else (named, and asserted to be exactly those);
logging out everywhere and deactivating a user end every session and socket at once."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientWebSocketResponse, WSServerHandshakeError
from aiohttp.test_utils import TestClient

from switchboard.tx import Database
from tests.conftest import AppClient, ClientFactory, create_user, login, widget_session
from tests.security.support import bearer, new_visitor, receive, staff_token
from tests.security.test_access_matrix import ROUTES
from web.auth import CSRF_EXEMPT_ROUTES

HUB_ORIGIN = "http://127.0.0.1:8080"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Authorised by something other than the session (a signed link, a visitor token, a
# channel's signature, the login form's own token pair): no session CSRF token needed.
NOT_BY_SESSION = {
    "POST /login",
    "POST /csat/{token}",
    "POST /widget/session",
    "POST /widget/upload",
    "POST /webhooks/{kind}/{key}",
    "POST /webhooks/slack/{key}",
}


async def another_browser(client: AppClient) -> AppClient:
    """A second client (its own cookie jar) of the same running app."""
    other: AppClient = TestClient(client.server)
    await other.start_server()
    return other


async def _ping(ws: ClientWebSocketResponse) -> None:
    await ws.send_json({"type": "ping"})
    await receive(ws, "pong")


async def _closed(ws: ClientWebSocketResponse) -> int | None:
    message = await ws.receive(timeout=10)
    assert message.type.name in ("CLOSE", "CLOSED", "CLOSING"), message
    return ws.close_code


async def test_every_unsafe_route_refuses_a_session_request_without_its_csrf_token(
    client: AppClient, db: Database
) -> None:
    await create_user(db, "alex@example.com", role="admin")
    csrf = await login(client, "alex@example.com")
    # POST /login has its own token pair (cookie + form field; tests/web/test_auth.py).
    unsafe = sorted(k for k in ROUTES if k.split(" ", 1)[0] in UNSAFE and k != "POST /login")
    assert len(unsafe) > 40
    for key in unsafe:
        method, path = key.split(" ", 1)
        url = path.replace("{token}", "x").replace("{kind}", "telegram")
        url = url.replace("{key}", "x").replace("{section}", "kb")
        url = url.replace("{id}", "1").replace("{user_id}", "1")
        for headers in ({}, {"X-CSRF-Token": "wrong" + csrf}):
            response = await client.request(
                method, url, json={}, headers=headers, allow_redirects=False
            )
            body = await response.read()
            refused = response.status == 403 and b'"csrf"' in body
            assert refused is (key not in NOT_BY_SESSION), (key, headers, response.status, body)
    # The exemptions are by route name, and exactly these.
    assert {
        "csat-rate",
        "widget-session",
        "widget-upload",
        "webhook",
        "webhook-slack",
    } == CSRF_EXEMPT_ROUTES
    # With the token, the same session is let through (to the handler's own answer).
    me = await client.patch("/api/v1/me", json={"locale": "en"}, headers={"X-CSRF-Token": csrf})
    assert me.status == 200, await me.text()


async def test_the_widget_works_for_a_logged_in_agent_in_the_same_browser(
    client: AppClient, db: Database
) -> None:
    """The widget is served from the hub's origin, so an agent trying it carries their
    session cookie: its POSTs (authorised by the visitor token) must not be refused."""
    await create_user(db, "alex@example.com")
    await login(client, "alex@example.com")
    public_key, _token = await widget_session(client)
    again = await client.post("/widget/session", json={"inbox": public_key})
    assert again.status == 200


async def test_logout_everywhere_ends_every_session_and_closes_every_socket(
    make_client: ClientFactory, db: Database
) -> None:
    await create_user(db, "alex@example.com")
    _other_id, other = await staff_token(db, "other@example.com", "agent")
    # Three browsers on one hub process (on SQLite each app instance has its own bus).
    laptop = await make_client()
    phone, colleague = await another_browser(laptop), await another_browser(laptop)
    csrf = await login(laptop, "alex@example.com")
    await login(phone, "alex@example.com")
    sockets = [
        await laptop.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN}),
        await phone.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN}),
    ]
    bystander = await colleague.ws_connect(
        "/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(other)}
    )
    for ws in [*sockets, bystander]:
        await _ping(ws)

    # Without the CSRF token a cross-site form cannot log anyone out everywhere.
    refused = await laptop.post("/logout/everywhere", allow_redirects=False)
    assert refused.status == 403
    out = await laptop.post("/logout/everywhere", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"

    for ws in sockets:
        assert await _closed(ws) == 1008
    for browser in (laptop, phone):
        assert (await browser.get("/api/v1/me")).status == 401
        assert (await browser.get("/inbox", allow_redirects=False)).status == 302
    await _ping(bystander)  # somebody else's socket is untouched
    await bystander.close()


async def test_deactivating_a_user_ends_their_sessions_tokens_and_open_sockets(
    make_client: ClientFactory, db: Database
) -> None:
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    user_id, token = await staff_token(db, "leaver@example.com", "agent")
    browser = await make_client()
    api = await another_browser(browser)
    await login(browser, "leaver@example.com")
    cookie_ws = await browser.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN})
    token_ws = await api.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
    for ws in (cookie_ws, token_ws):
        await _ping(ws)

    changed = await api.patch(
        f"/api/v1/users/{user_id}", json={"active": False}, headers=bearer(admin)
    )
    assert changed.status == 200, await changed.text()

    assert await _closed(cookie_ws) == 1008
    assert await _closed(token_ws) == 1008
    assert (await browser.get("/api/v1/me")).status == 401
    assert (await api.get("/api/v1/me", headers=bearer(token))).status == 401
    # And they cannot log in again, with the right password, or reconnect.
    page = await browser.get("/login")
    assert page.status == 200
    try:
        await login(browser, "leaver@example.com")
    except AssertionError:
        pass
    else:
        raise AssertionError("a deactivated user logged in")
    refused: Any = None
    try:
        await api.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
    except Exception as exc:  # WSServerHandshakeError
        refused = getattr(exc, "status", None)
    assert refused == 401


async def test_both_sockets_refuse_a_handshake_from_a_foreign_origin(
    client: AppClient, db: Database
) -> None:
    """Cross-site websocket hijacking: the agent socket rides on the session cookie, the
    widget socket on a token a hostile page could have copied; both check the Origin."""
    await create_user(db, "alex@example.com")
    await login(client, "alex@example.com")
    visitor, _ = await new_visitor(client)
    for path, params in (("/inbox/ws", {}), ("/widget/ws", {"token": visitor})):
        for origin, expected in (("https://evil.example", 403), (HUB_ORIGIN, 101)):
            try:
                ws = await client.ws_connect(path, params=params, headers={"Origin": origin})
            except WSServerHandshakeError as exc:
                status = exc.status
            else:
                status = 101
                await ws.close()
            assert status == expected, (path, origin, status)


async def test_a_role_change_closes_the_users_open_sockets_at_once(
    client: AppClient, db: Database
) -> None:
    """A supervisor demoted to agent must not keep a socket authorised as a supervisor
    (which forwards every queue's events): it closes, and the reconnect is an agent's."""
    _admin_id, admin = await staff_token(db, "admin@example.com", "admin")
    user_id, token = await staff_token(db, "demoted@example.com", "supervisor")
    _bystander_id, bystander = await staff_token(db, "other@example.com", "supervisor")
    ws = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
    other = await client.ws_connect(
        "/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(bystander)}
    )
    for socket in (ws, other):
        await _ping(socket)

    renamed = await client.patch(
        f"/api/v1/users/{user_id}", json={"name": "Still Here"}, headers=bearer(admin)
    )
    assert renamed.status == 200
    await _ping(ws)  # a change that is not the role leaves the socket alone

    demoted = await client.patch(
        f"/api/v1/users/{user_id}", json={"role": "agent"}, headers=bearer(admin)
    )
    assert demoted.status == 200, await demoted.text()
    assert await _closed(ws) == 4001
    await _ping(other)
    again = await client.ws_connect("/inbox/ws", headers={"Origin": HUB_ORIGIN, **bearer(token)})
    await _ping(again)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    assert (await (await client.get("/api/v1/me", headers=bearer(token))).json())["role"] == "agent"
    for socket in (again, other):
        await socket.close()


async def test_an_expired_session_signs_nobody_in(make_client: ClientFactory, db: Database) -> None:
    """A session past its lifetime is refused like no session at all, and one still in
    its lifetime keeps working (the check reads the clock per request)."""
    from datetime import timedelta

    from sqlalchemy import update

    from switchboard.db import utcnow
    from switchboard.models import AuthSession

    await create_user(db, "sam@example.com")
    browser = await make_client()
    await login(browser, "sam@example.com")
    assert (await browser.get("/api/v1/me")).status == 200
    await db.run(
        lambda s: s.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    )
    assert (await browser.get("/api/v1/me")).status == 401
    assert (await browser.get("/inbox", allow_redirects=False)).status == 302
    await db.run(
        lambda s: s.execute(update(AuthSession).values(expires_at=utcnow() + timedelta(hours=1)))
    )
    assert (await browser.get("/api/v1/me")).status == 200
