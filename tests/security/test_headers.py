"""Security headers on every answer of every GET route, errors and redirects included,
no visitor token in any of them, and markup in staff names escaped on every page
(SECURITY.md 4: 20, 37, 40; issue 6 point 8).
The routes come from the access matrix's table, so a new page is checked here too."""

from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import update

from switchboard.models import User
from tests.security.support import XSS, open_widget, send_text
from tests.security.test_access_matrix import ROUTES, Arrange, World, call
from tests.security.test_access_matrix import world as world  # the fixture, shared

GETS = sorted(k for k, r in ROUTES.items() if k.startswith("GET ") and not r.websocket)


def check_headers(key: str, caller: str, status: int, headers: dict[str, str]) -> None:
    where = (key, caller, status)
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("text/html"):
        csp = headers.get("Content-Security-Policy", "")
        for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'"):
            assert directive in csp, (where, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (where, csp)
        if key != "GET /widget/frame":  # the widget is meant to be embedded anywhere
            assert "frame-ancestors 'none'" in csp, (where, csp)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_every_get_route_answers_with_security_headers(world: World) -> None:
    arrange = Arrange(world)
    # The world's visitor has a conversation, so lists and profiles include them.
    widget = await open_widget(world.client, world.visitor_token)
    assert (await send_text(widget, "hdr-00000001", "hello"))["type"] == "ack"
    await widget.close()
    for key in GETS:
        route = ROUTES[key]
        for caller in ("anonymous", "customer", "outsider", "admin"):
            ids = await route.ids(arrange) if route.ids else {}
            answer = await call(world, key, route, caller, ids)
            check_headers(key, caller, answer.status, answer.headers)
            # A visitor token is a credential: no read hands it out (SECURITY.md 4: 37).
            assert world.visitor_token.encode() not in answer.body, (key, caller)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_staff_name_with_markup_is_inert_on_every_page(world: World) -> None:
    """Every page an admin can open (the admin console, the dashboard, the inbox, the
    preferences) shows their name escaped, never as markup."""
    await world.db.run(
        lambda s: s.execute(update(User).where(User.id == world.user_ids["admin"]).values(name=XSS))
    )
    arrange = Arrange(world)
    pages = 0
    for key in GETS:
        route = ROUTES[key]
        ids = await route.ids(arrange) if route.ids else {}
        answer = await call(world, key, route, "admin", ids)
        if not answer.headers.get("Content-Type", "").startswith("text/html"):
            continue
        pages += 1
        html = answer.body.decode()
        assert XSS not in html, key
        assert "<script>alert(1)" not in html, key
        if key in ("GET /inbox", "GET /supervisor", "GET /admin", "GET /preferences"):
            assert str(escape(XSS)) in html or "&lt;script&gt;" in html, key
    assert pages >= 5
