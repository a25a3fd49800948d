"""Login, sessions, CSRF, throttling, redirects, API tokens and settings validation.

SECURITY.md section 4, lines 32-35; ASVS V3. Every denial is checked next to the
matching success on the same setup, so a 401/403/429 cannot pass for the wrong reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
from http.cookies import Morsel
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from switchboard import accounts
from switchboard.settings import SettingsError, load_settings
from tests.conftest import PASSWORD, AppClient, ClientFactory, create_user, login
from tests.security.support import (
    agent_token,
    bearer,
    start_conversation,
    use_cheap_password_hashing,
)

SESSION = "sb_session"
LOGIN_CSRF = "sb_login_csrf"


def jar_cookie(client: AppClient, name: str) -> str | None:
    found = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(name)
    return found.value if found is not None else None


async def login_form_token(client: AppClient) -> str:
    """Open the login page as a logged-out browser does; return the form's CSRF token."""
    page = await client.get("/login", allow_redirects=False)
    assert page.status == 200, await page.text()
    token = jar_cookie(client, LOGIN_CSRF)
    assert token
    return token


async def submit_login(
    client: AppClient,
    email: str,
    password: str = PASSWORD,
    *,
    next_url: str = "/inbox",
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    """Fetch a fresh login form (dropping any session cookie) and submit it."""
    client.session.cookie_jar.clear()
    token = await login_form_token(client)
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_url},
        headers=headers,
        allow_redirects=False,
    )


async def me_status(client: AppClient, session_token: str) -> int:
    client.session.cookie_jar.clear()
    response = await client.get("/api/v1/me", headers={"Cookie": f"{SESSION}={session_token}"})
    return response.status


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_password_hashing(monkeypatch)


# --- session cookie ----------------------------------------------------------------------


def _session_morsel(response: ClientResponse) -> Morsel[str]:
    assert SESSION in response.cookies, response.headers.getall("Set-Cookie", [])
    return response.cookies[SESSION]


async def test_login_sets_httponly_lax_session_cookie(client: AppClient, db: Any) -> None:
    await create_user(db, "alex@example.com")
    response = await submit_login(client, "alex@example.com")
    assert response.status == 303
    assert response.headers["Location"] == "/inbox"
    morsel = _session_morsel(response)
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert not morsel["secure"]  # plain-http public URL: a Secure cookie would never come back
    assert morsel["path"] == "/"
    assert await me_status(client, morsel.value) == 200


async def test_session_cookie_is_secure_when_public_url_is_https(
    make_client: ClientFactory, db: Any
) -> None:
    client = await make_client(public_url="https://hub.example")
    await create_user(db, "alex@example.com")
    page = await client.get("/login")
    csrf = page.cookies[LOGIN_CSRF]
    assert csrf["secure"] and csrf["httponly"]
    # The jar will not send a Secure cookie over the test's plain http; send it by hand.
    response = await client.post(
        "/login",
        data={"email": "alex@example.com", "password": PASSWORD, "csrf_token": csrf.value},
        headers={"Cookie": f"{LOGIN_CSRF}={csrf.value}"},
        allow_redirects=False,
    )
    assert response.status == 303
    morsel = _session_morsel(response)
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"


async def test_planted_session_cookie_is_replaced_at_login(client: AppClient, db: Any) -> None:
    """Session fixation: a value chosen before login is never the session after it."""
    await create_user(db, "alex@example.com")
    planted = "attacker-chosen-session-value-0123456789"
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({SESSION: planted})
    token = await login_form_token(client)
    response = await client.post(
        "/login",
        data={"email": "alex@example.com", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 303
    issued = _session_morsel(response).value
    assert issued != planted
    assert await me_status(client, issued) == 200
    assert await me_status(client, planted) == 401


async def test_every_login_issues_a_new_token_and_ends_the_old_one(
    client: AppClient, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    first = _session_morsel(await submit_login(client, "alex@example.com")).value
    assert await me_status(client, first) == 200

    # Log in again in a browser that still carries the first session.
    client.session.cookie_jar.clear()
    token = await login_form_token(client)
    client.session.cookie_jar.update_cookies({SESSION: first})
    again = await client.post(
        "/login",
        data={"email": "alex@example.com", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert again.status == 303
    second = _session_morsel(again).value
    assert second != first
    assert await me_status(client, second) == 200
    assert await me_status(client, first) == 401


# --- wrong credentials -------------------------------------------------------------------


async def test_wrong_password_and_unknown_email_get_identical_answers(
    client: AppClient, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    client.session.cookie_jar.clear()
    token = await login_form_token(client)

    async def attempt(email: str, password: str) -> tuple[int, str]:
        response = await client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token, "next": "/inbox"},
            allow_redirects=False,
        )
        return response.status, await response.text()

    wrong_password = await attempt("alex@example.com", "not the password")
    unknown_email = await attempt("nobody@example.com", "not the password")
    not_an_email = await attempt("nobody", "not the password")
    assert wrong_password[0] == 401
    assert "Wrong email or password." in wrong_password[1]
    assert wrong_password == unknown_email == not_an_email
    # The same form with the right password gets in.
    assert (await attempt("alex@example.com", PASSWORD))[0] == 303


# --- logout ------------------------------------------------------------------------------


async def test_logout_revokes_the_session_on_the_server(client: AppClient, db: Any) -> None:
    await create_user(db, "alex@example.com")
    csrf = await login(client, "alex@example.com")
    session_token = jar_cookie(client, SESSION)
    assert session_token
    assert (await client.get("/api/v1/me")).status == 200

    refused = await client.post("/logout", data={}, allow_redirects=False)
    assert refused.status == 403  # no CSRF token: the session survives a cross-site logout
    assert await me_status(client, session_token) == 200

    client.session.cookie_jar.update_cookies({SESSION: session_token})
    response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    # Replaying the old cookie value after logout does not get in.
    assert await me_status(client, session_token) == 401


# --- CSRF --------------------------------------------------------------------------------


async def test_api_post_with_session_cookie_needs_the_csrf_token(
    client: AppClient, db: Any
) -> None:
    await create_user(db, "alex@example.com")
    conversation_id = await start_conversation(db)
    csrf = await login(client, "alex@example.com")
    url = f"/api/v1/conversations/{conversation_id}/messages"
    body = {"text": "We are on it."}

    missing = await client.post(url, json=body)
    wrong = await client.post(url, json=body, headers={"X-CSRF-Token": csrf[:-1] + "x"})
    non_ascii = await client.post(url, json=body, headers={"X-CSRF-Token": "é" * len(csrf)})
    right = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})

    for denied in (missing, wrong, non_ascii):
        assert denied.status == 403, await denied.text()
        assert (await denied.json())["error"]["code"] == "csrf"
    assert right.status == 201, await right.text()
    assert (await right.json())["message"]["text"] == "We are on it."


@pytest.mark.parametrize(
    ("cookie", "field"),
    [
        (None, None),
        ("tok-abcdefgh", None),
        (None, "tok-abcdefgh"),
        ("tok-abcdefgh", "tok-zzzzzzzz"),
        ("tok-abcdefgh", "tök-abcdefgh"),
    ],
    ids=["neither", "cookie-only", "field-only", "mismatch", "non-ascii"],
)
async def test_login_form_without_its_csrf_pair_is_refused(
    client: AppClient, db: Any, cookie: str | None, field: str | None
) -> None:
    await create_user(db, "alex@example.com")

    async def post(cookie: str | None, field: str | None) -> ClientResponse:
        client.session.cookie_jar.clear()
        data = {"email": "alex@example.com", "password": PASSWORD}
        if field is not None:
            data["csrf_token"] = field
        headers = {"Cookie": f"{LOGIN_CSRF}={cookie}"} if cookie is not None else {}
        return await client.post("/login", data=data, headers=headers, allow_redirects=False)

    refused = await post(cookie, field)
    assert refused.status == 403, await refused.text()
    assert (await refused.json())["error"]["code"] == "csrf"
    assert SESSION not in refused.cookies
    # The matching pair, otherwise identical, logs in.
    assert (await post("tok-abcdefgh", "tok-abcdefgh")).status == 303


# --- throttling --------------------------------------------------------------------------


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the email of every password verification the login handler asks for."""
    checked: list[str] = []
    real = accounts.authenticate

    async def counting(session: Any, email: str, password: str) -> Any:
        checked.append(email)
        return await real(session, email, password)

    monkeypatch.setattr(accounts, "authenticate", counting)
    return checked


async def test_five_failures_lock_the_account_but_not_other_accounts(
    client: AppClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_user(db, "alex@example.com")
    await create_user(db, "blake@example.com")
    checked = count_password_checks(monkeypatch)
    for _ in range(5):
        assert (await submit_login(client, "alex@example.com", "wrong password!")).status == 401
    assert len(checked) == 5

    locked = await submit_login(client, "alex@example.com")  # the right password
    assert len(checked) == 5  # refused before any password hashing
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert (await locked.json())["error"]["code"] == "too_many_requests"
    assert SESSION not in locked.cookies
    # Same address (every test request comes from 127.0.0.1; 5 of its 20 failures used).
    other = await submit_login(client, "blake@example.com")
    assert other.status == 303


async def test_rotating_x_forwarded_for_does_not_escape_the_address_limit(
    client: AppClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 failures from one peer, spread over 4 accounts (under each account's limit of 5),
    each claiming a different client address in forwarding headers."""
    await create_user(db, "fresh@example.com")
    assert (await submit_login(client, "fresh@example.com")).status == 303  # the control
    attempt = 0
    for account in range(4):
        for _ in range(5):
            attempt += 1
            spoofed = f"203.0.113.{attempt}"
            response = await submit_login(
                client,
                f"user{account}@example.com",
                "wrong password!",
                headers={
                    "X-Forwarded-For": spoofed,
                    "X-Real-IP": spoofed,
                    "Forwarded": f"for={spoofed}",
                },
            )
            assert response.status == 401, attempt
    spoofed = "198.51.100.77"
    checked = count_password_checks(monkeypatch)
    blocked = await submit_login(
        client, "fresh@example.com", headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed}
    )
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert checked == []  # a locked-out address costs the server no password hashing


# --- redirects after login ---------------------------------------------------------------


NEXT_ATTACKS = [
    "//evil.com",
    "/\\evil.com",
    "https://evil.com",
    "/\t/evil.com",
    "\\\\evil.com",
    "javascript:alert(1)",
    "http:/evil.com",
    "/\r\nLocation: //evil.com",
]


async def test_next_never_leaves_the_hub(client: AppClient, db: Any) -> None:
    await create_user(db, "alex@example.com")
    for target in NEXT_ATTACKS:
        evil = await submit_login(client, "alex@example.com", next_url=target)
        assert evil.status == 303, target
        assert evil.headers["Location"] == "/inbox", target
        # Already logged in: GET /login?next=... redirects at once, by the same rule.
        again = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert again.status == 302, target
        assert again.headers["Location"] == "/inbox", target
    # A same-origin path is kept.
    local = await submit_login(client, "alex@example.com", next_url="/api/v1/me?x=1")
    assert local.headers["Location"] == "/api/v1/me?x=1"


# --- API tokens --------------------------------------------------------------------------


async def test_api_bearer_token(client: AppClient, db: Any) -> None:
    token = await agent_token(db, "bot@example.com")
    good = await client.get("/api/v1/me", headers=bearer(token))
    assert good.status == 200
    assert (await good.json())["email"] == "bot@example.com"

    wrong = await client.get("/api/v1/me", headers=bearer(token[:-2] + "xx"))
    assert wrong.status == 401
    assert (await wrong.json())["error"]["code"] == "bad_token"
    none = await client.get("/api/v1/me")
    assert none.status == 401
    assert (await none.json())["error"]["code"] == "unauthenticated"


async def _raw_get(client: AppClient, path: str, header: bytes) -> bytes:
    """One HTTP/1.1 request with a header the HTTP client library would refuse to send."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET "
        + path.encode()
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + header
        + b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "header",
    [b"Authorization: Bearer \xff\xfe\x80", b"Cookie: sb_session=\xc3\x28\xff"],
    ids=["bearer", "cookie"],
)
async def test_credentials_that_are_not_utf8_are_refused_not_a_crash(
    client: AppClient, db: Any, header: bytes
) -> None:
    token = await agent_token(db)
    ok = await _raw_get(client, "/api/v1/me", b"Authorization: Bearer " + token.encode())
    assert ok.startswith(b"HTTP/1.1 200")
    answer = await _raw_get(client, "/api/v1/me", header)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_behind_a_trusted_proxy_each_client_has_its_own_address_limit(
    make_client: ClientFactory, db: Any
) -> None:
    """Behind a load balancer every request comes from the balancer; with it trusted, the
    client named by X-Forwarded-For is throttled, not everyone at once. What a client
    writes to the left of the proxy's own entry changes nothing."""
    client = await make_client(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    await create_user(db, "fresh@example.com")
    attacker = "203.0.113.66"
    for attempt in range(20):
        response = await submit_login(
            client,
            f"user{attempt // 5}@example.com",
            "wrong password!",
            # A forged left part, then the address the proxy saw.
            headers={"X-Forwarded-For": f"198.51.100.{attempt}, {attacker}"},
        )
        assert response.status == 401, attempt
    locked = await submit_login(
        client, "fresh@example.com", headers={"X-Forwarded-For": f"192.0.2.1, {attacker}"}
    )
    assert locked.status == 429
    neighbour = await submit_login(
        client, "fresh@example.com", headers={"X-Forwarded-For": "203.0.113.67"}
    )
    assert neighbour.status == 303


# --- settings ----------------------------------------------------------------------------


GOOD_SECRET = "s" * 40


@pytest.mark.parametrize(
    ("variable", "overrides"),
    [
        ("SWITCHBOARD_PORT", {"SWITCHBOARD_PORT": "abc"}),
        ("SWITCHBOARD_PORT", {"SWITCHBOARD_PORT": "70000"}),
        ("SWITCHBOARD_DATABASE_URL", {"SWITCHBOARD_DATABASE_URL": "mysql://x"}),
        ("SWITCHBOARD_SMTP_TLS", {"SWITCHBOARD_SMTP_TLS": "maybe"}),
        ("SWITCHBOARD_SECRET_KEY", {"SWITCHBOARD_SECRET_KEY": "short"}),
        ("SWITCHBOARD_RASA_URL", {"SWITCHBOARD_BOT_ENGINE": "rasa"}),
        ("SWITCHBOARD_TRUSTED_PROXIES", {"SWITCHBOARD_TRUSTED_PROXIES": "10.0.0.0/8, lb-1"}),
    ],
    ids=[
        "port-abc",
        "port-range",
        "mysql",
        "smtp-tls",
        "short-secret",
        "rasa-without-url",
        "proxies",
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_variable(
    tmp_path: Path, variable: str, overrides: dict[str, str]
) -> None:
    base = {"SWITCHBOARD_VAR_DIR": str(tmp_path), "SWITCHBOARD_SECRET_KEY": GOOD_SECRET}
    good = load_settings(base)  # the same environment without the bad value loads
    assert good.port == 8080
    with pytest.raises(SettingsError) as caught:
        load_settings({**base, **overrides})
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message
    assert "Traceback" not in message
